// "Assign to…": the page carries the available units once (#assign-units); each card's menu is
// filled from it here, leaving out the unit that already has the job.
(function () {
  "use strict";
  function fill() {
    const list = document.getElementById("assign-units");
    if (!list) return;
    const units = Array.from(list.children, (li) => [li.dataset.unitId, li.textContent]);
    const key = units.map((u) => u[0]).join(",");
    document.querySelectorAll("select[data-assign]").forEach((sel) => {
      if (sel.dataset.filled === key) return;
      sel.querySelectorAll("option[data-unit]").forEach((o) => o.remove());
      const back = sel.querySelector('option[value="queue"]');
      units.forEach(([id, callsign]) => {
        if (id === sel.dataset.assign) return;
        const o = new Option(callsign, id);
        o.dataset.unit = "1";
        sel.insertBefore(o, back);
      });
      sel.dataset.filled = key;
    });
  }
  document.addEventListener("DOMContentLoaded", fill);
  document.body.addEventListener("htmx:afterSettle", fill);
  // Capture: before live.js puts back what the user had chosen in a re-rendered menu.
  document.addEventListener("htmx:wsAfterMessage", fill, true);
  document.body.addEventListener("board:updated", fill);
  fill();
})();

// The supervisor board's glue: drag a job card between the queue and unit lanes.
// The server decides what the move means (assign, reassign, reorder, back to queue).
(function () {
  "use strict";
  const board = document.querySelector(".board");
  if (!board || board.dataset.mode !== "supervisor" || !window.Sortable) return;
  const precinct = board.dataset.precinct;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  function refresh() {
    return htmx.ajax("GET", `/board/${encodeURIComponent(precinct)}`, { target: "#board-body", swap: "outerHTML" });
  }

  function onEnd(evt) {
    delete document.body.dataset.dragging;
    const card = evt.item;
    const to = evt.to.dataset.unitId, from = evt.from.dataset.unitId;
    const live = window.boardLive;
    if (to === from && evt.oldIndex === evt.newIndex) {
      if (live && live.missed) { live.missed = false; refresh(); }  // pushes held back during the drag
      return;
    }
    if (live) live.missed = false;
    const body = new URLSearchParams({ csrf, version: card.dataset.version, unit_id: to,
      position: String(evt.newIndex) });
    if (to === "queue") {
      const reason = window.prompt("Why is this job going back to the queue?");
      if (!reason) { refresh(); return; }
      body.set("reason", reason);
    }
    fetch(`/jobs/${card.dataset.jobId}/move`, {
      method: "POST", body, credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRF-Token": csrf },
    }).finally(refresh);
  }

  function bind() {
    document.querySelectorAll("#board-body .dropzone").forEach((zone) => {
      if (zone._sortable) return;
      zone._sortable = Sortable.create(zone, {
        group: "jobs", animation: 120, forceFallback: true, fallbackTolerance: 3, draggable: ".job-card", filter: "select, input, button, a",
        preventOnFilter: false, onEnd,
        onStart: () => { document.body.dataset.dragging = "1"; },
      });
    });
  }
  document.addEventListener("DOMContentLoaded", bind);
  document.body.addEventListener("htmx:afterSettle", bind);
  document.body.addEventListener("board:updated", bind);
  bind();
  window.boardRefresh = refresh;
})();
