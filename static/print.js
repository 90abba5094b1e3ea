// The print view's "Print" button (no inline handlers: the pages run under a CSP without them).
document.querySelectorAll("[data-print]").forEach((button) =>
  button.addEventListener("click", () => window.print()));
