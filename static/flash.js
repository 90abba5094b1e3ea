// A message answers the action that caused it: when the user starts another one (a form, a
// drag, a board refresh), the old banner goes, so it is never read as this action's outcome.
(function () {
  "use strict";
  function clear() {
    document.querySelectorAll("#flash .flash, .board-flash .flash").forEach((el) => el.remove());
  }
  document.addEventListener("submit", clear, true);
  document.addEventListener("board:action", clear);
  document.body.addEventListener("htmx:beforeRequest", clear);
  window.boardFlash = { clear };

  // A refused form comes back filled in as it was sent (`kept`): its refusal is said beside
  // it, not only at the top of a long page, and the cursor goes to it.
  function besideKept() {
    const meta = document.querySelector('meta[name="kept-form"]');
    const said = document.querySelectorAll("#flash .flash-error, #flash .flash-conflict");
    if (!meta || !said.length) return;
    const form = Array.from(document.querySelectorAll("form[action]"))
      .find((f) => f.getAttribute("action") === meta.content);
    if (!form) return;
    for (let d = form.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
    said.forEach((p) => {
      const copy = p.cloneNode(true);
      copy.setAttribute("role", "alert");
      copy.classList.add("beside-form");
      form.prepend(copy);
    });
    form.scrollIntoView({ block: "center" });
    const field = form.querySelector("select:not([hidden]), textarea, input:not([type=hidden])");
    if (field) field.focus({ preventScroll: true });
  }
  // A confirmation that came with the page (a finding, a close, a log entry saved) is said
  // again once the page is up: a status region announces what changes in it, not what it held.
  function announceDone() {
    document.querySelectorAll('#flash .flash-ok[role="status"]').forEach((p) => {
      const text = p.textContent;
      p.textContent = "";
      setTimeout(() => { p.textContent = text; }, 100);
    });
  }
  function ready() { besideKept(); announceDone(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
