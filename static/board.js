// "Assign to…": the page carries the available units once (#assign-units); each card's menu is
// filled from it here, leaving out the unit that already has the job.
(function () {
  "use strict";
  // Suggested first: a free unit (nothing stacked), then one in the job's sector, then the
  // nearest by last reported position; each option says why ("free · sector 75A · 0.4 km").
  function km(aLat, aLon, bLat, bLon) {
    const rad = Math.PI / 180, dLat = (bLat - aLat) * rad, dLon = (bLon - aLon) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(aLat * rad) * Math.cos(bLat * rad) * Math.sin(dLon / 2) ** 2;
    return 12742 * Math.asin(Math.sqrt(h));
  }
  function ranked(units, card) {
    const lat = parseFloat(card.dataset.lat), lon = parseFloat(card.dataset.lon), sector = card.dataset.sector;
    return units.map((u) => {
      const d = [lat, lon, u.lat, u.lon].some(Number.isNaN) ? Infinity : km(lat, lon, u.lat, u.lon);
      const why = [u.jobs ? `${u.jobs} job${u.jobs > 1 ? "s" : ""} stacked` : "free"];
      if (sector && u.sector === sector) why.push(`sector ${u.sector}`);
      if (d !== Infinity) why.push(`${d.toFixed(1)} km`);
      return { ...u, d, same: sector && u.sector === sector ? 1 : 0, why: why.join(" · ") };
    }).sort((a, b) => (a.jobs === 0 ? 0 : 1) - (b.jobs === 0 ? 0 : 1) || b.same - a.same || a.d - b.d
      || a.callsign.localeCompare(b.callsign));
  }
  function fill() {
    const list = document.getElementById("assign-units");
    if (!list) return;
    const units = Array.from(list.children, (li) => ({
      id: li.dataset.unitId, callsign: li.textContent, sector: li.dataset.sector,
      lat: parseFloat(li.dataset.lat), lon: parseFloat(li.dataset.lon), jobs: Number(li.dataset.jobs || 0) }));
    const key = Array.from(list.children, (li) => Object.values(li.dataset).join(":")).join(",");
    document.querySelectorAll("select[data-assign]").forEach((sel) => {
      if (sel.dataset.filled === key) return;
      const card = sel.closest(".job-card");
      sel.querySelectorAll("option[data-unit]").forEach((o) => o.remove());
      const back = sel.querySelector('option[value="queue"]');
      ranked(units.filter((u) => u.id !== sel.dataset.assign), card).forEach((u, i) => {
        const o = new Option(`${u.callsign}${i === 0 ? " (suggested)" : ""} — ${u.why}`, u.id);
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

  // Where the card was let go: a card released outside every lane (over the closed column,
  // the map, the counters) goes back where it was, whatever lane it passed over on the way.
  function releasedOn(evt) {
    const e = evt.originalEvent;
    const p = e && (e.changedTouches ? e.changedTouches[0] : e);
    if (!p || p.clientX === undefined) return evt.to;
    const under = document.elementFromPoint(p.clientX, p.clientY);
    return under ? under.closest("#board-body .dropzone") : null;
  }
  function putBack(evt) {
    const card = evt.item;
    card.remove();
    evt.from.insertBefore(card, evt.from.children[evt.oldIndex] || null);
  }
  function say(kind, text) {
    const p = document.createElement("p");
    p.className = `flash flash-${kind}`;
    p.setAttribute("role", "alert");
    p.textContent = text;
    document.getElementById("flash").append(p);
  }

  function onEnd(evt) {
    delete document.body.dataset.dragging;
    const card = evt.item;
    const live = window.boardLive;
    if (releasedOn(evt) !== evt.to) {
      putBack(evt);
      if (live) live.missed = false;
      Promise.resolve(refresh()).finally(() => say("error",
        `Not moved: job ${card.dataset.jobId} was let go outside the queue and the lanes, so it went back. Let go over a unit's lane to assign it.`));
      return;
    }
    const to = evt.to.dataset.unitId, from = evt.from.dataset.unitId;
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
    // A refused move (someone else changed the job first, a unit went out of service) says
    // why and who; the board then shows the true state, so the card returns.
    fetch(`/jobs/${card.dataset.jobId}/move`, {
      method: "POST", body, credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRF-Token": csrf },
    }).then((r) => (r.ok ? "" : r.text().then((t) => t || `Not saved (${r.status}).`)))
      .catch(() => "Not saved: no answer from the server. The board shows the current state.")
      .then((message) => {
        if (message) putBack(evt);
        const shown = refresh();
        if (message) Promise.resolve(shown).finally(() => say(message.includes("changed by") ? "conflict" : "error", message));
      });
  }

  function bind() {
    document.querySelectorAll("#board-body .dropzone").forEach((zone) => {
      if (zone._sortable) return;
      zone._sortable = Sortable.create(zone, {
        group: "jobs", animation: 120, forceFallback: true, fallbackTolerance: 3, draggable: ".job-card", filter: "select, input, button, a",
        // Held near the edge of a lane, the lanes column or the window, the card scrolls it:
        // every lane is in reach however long the tour's lanes grow.
        scroll: true, bubbleScroll: true, scrollSensitivity: 90, scrollSpeed: 22,
        preventOnFilter: false, onEnd,
        onStart: () => {
          document.body.dataset.dragging = "1";
          document.dispatchEvent(new CustomEvent("board:action"));  // old banners go
        },
      });
    });
  }
  document.addEventListener("DOMContentLoaded", bind);
  document.body.addEventListener("htmx:afterSettle", bind);
  document.body.addEventListener("board:updated", bind);
  bind();
  window.boardRefresh = refresh;
})();
