// The job page follows its precinct's live board: when this job's version moves on, show the
// new state at once (or, if the user is typing, say so and let them choose when).
(function () {
  "use strict";
  const pageEl = document.querySelector(".job-page[data-job-id]");
  if (!pageEl) return;
  const banner = document.getElementById("job-changed");
  function typing() {
    return Array.from(document.querySelectorAll(".job-page textarea, .job-page input:not([type=hidden])"))
      .some((f) => f.value !== f.defaultValue);
  }
  // The board's updates replace job cards by id: only the offstage board's copy, never the
  // card this page shows (it is re-rendered for this page, with this page's forms).
  document.body.addEventListener("htmx:oobBeforeSwap", (e) => {
    if (!e.detail.target.closest("#board-body") && e.detail.target.id !== "review-count") {
      e.detail.shouldSwap = false;
    }
  });
  // A form of this page on its way: its answer shows the new state (a reload now would
  // cancel it and lose its message).
  let sending = false;
  document.addEventListener("submit", (e) => { if (!e.defaultPrevented) sending = true; });
  document.body.addEventListener("board:updated", () => {
    const card = document.querySelector(`#board-body #job-${pageEl.dataset.jobId}`);
    if (sending || !card || card.dataset.version === pageEl.dataset.version) return;
    if (typing()) { banner.hidden = false; return; }
    window.location.reload();
  });
})();
