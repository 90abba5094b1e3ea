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
})();
