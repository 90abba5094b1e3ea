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
      // a card's menu, or a job page's (its card is elsewhere on the page: data-job)
      const card = sel.closest(".job-card") || document.querySelector(`.job-lead #job-${sel.dataset.job}`);
      if (!card) return;
      sel.querySelectorAll("option[data-unit]").forEach((o) => o.remove());
      // the page's own unit options (there without script) give way to the ranked ones
      sel.querySelectorAll("option").forEach((o) => { if (o.value && o.value !== "queue") o.remove(); });
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
    p.setAttribute("role", kind === "ok" ? "status" : "alert");  // a done thing is said politely
    p.textContent = text;
    document.getElementById("flash").append(p);
    return p;
  }
  function unitName(id) {
    if (id === "queue") return "the queue";
    const lane = document.getElementById(`unit-${id}`);
    return lane ? lane.dataset.callsign : `unit ${id}`;
  }

  // One move, by drag or by the card's menu: saved through the same endpoint as a form post.
  // Resolves to "" when saved, else the reason it was not.
  function move(jobId, version, unitId, position, reason) {
    const body = new URLSearchParams({ csrf, version, unit_id: unitId });
    if (position !== undefined) body.set("position", String(position));
    if (reason) body.set("reason", reason);
    return fetch(`/jobs/${jobId}/move`, {
      method: "POST", body, credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRF-Token": csrf },
    }).then((r) => (r.ok ? "" : r.text().then((t) => t || `Not saved (${r.status}).`)))
      .catch(() => "Not saved: no answer from the server. The board shows the current state.");
  }
  function outcome(message, done) {
    const shown = refresh();
    return Promise.resolve(shown).finally(() => {
      if (message) say(message.includes("changed by") ? "conflict" : "error", message);
      else say("ok", done);
    });
  }

  // Back to the queue needs a reason: asked for beside the board (never the browser's prompt),
  // focus in the field; Escape or Cancel leaves the job where it was.
  function askReason(jobId, version) {
    if (window.boardFlash) window.boardFlash.clear();
    const form = document.createElement("form");
    form.className = "back-to-queue";
    form.innerHTML = `<label>Why is job ${jobId} going back to the queue?
      <input name="reason" required maxlength="300"></label>
      <button type="submit" class="primary">Back to queue</button> <button type="button" class="cancel">Cancel</button>`;
    document.getElementById("flash").append(form);
    const input = form.querySelector("input");
    input.focus();
    const card = () => document.getElementById(`job-${jobId}`);
    const close = () => {
      form.remove();
      const back = card() && card().querySelector(".move-job summary, .job-link");
      if (back) back.focus();
    };
    form.querySelector(".cancel").addEventListener("click", close);
    form.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      e.stopPropagation();
      const reason = input.value.trim();
      if (!reason) { input.focus(); return; }
      form.remove();
      move(jobId, version, "queue", undefined, reason)
        .then((m) => outcome(m, `Job ${jobId} is back in the queue.`));
    });
  }

  // The card's "Assign…" menu, from the keyboard too: saved without leaving the page, the
  // outcome said in a live region, and focus on the next job of the queue (or the queue).
  document.addEventListener("submit", (e) => {
    const form = e.target.closest && e.target.closest("#board-body form.assign-to");
    if (!form) return;
    e.preventDefault();
    const card = form.closest(".job-card");
    const jobId = card.dataset.jobId, unitId = form.elements.unit_id.value;
    const reason = form.elements.reason ? form.elements.reason.value.trim() : "";
    if (unitId === "queue" && !reason) { askReason(jobId, card.dataset.version); return; }
    const next = card.nextElementSibling && card.nextElementSibling.id;
    move(jobId, form.elements.version.value, unitId, undefined, reason)
      .then((m) => outcome(m, unitId === "queue" ? `Job ${jobId} is back in the queue.`
                                                 : `Job ${jobId} assigned to ${unitName(unitId)}.`))
      .then(() => {
        const after = (next && document.querySelector(`#${next} .move-job summary`))
          || document.querySelector("#queue .job-card .move-job summary") || document.getElementById("queue");
        if (after) after.focus();
      });
  });

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
    if (to === "queue") {  // asked beside the board; the card waits where it was
      putBack(evt);
      askReason(card.dataset.jobId, card.dataset.version);
      return;
    }
    // A refused move (someone else changed the job first, a unit went out of service) says
    // why and who; the board then shows the true state, so the card returns.
    move(card.dataset.jobId, card.dataset.version, to, evt.newIndex).then((message) => {
      if (message) putBack(evt);
      const moved = to === from ? `Job ${card.dataset.jobId} moved in ${unitName(to)}'s stack.`
        : `Job ${card.dataset.jobId} assigned to ${unitName(to)}.`;
      return outcome(message, moved);
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
