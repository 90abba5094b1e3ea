// Supervisor alerts (P1 arrivals, overdue jobs): the server renders #board-alerts with every
// recent alert; this shows the ones newer than this device's last acknowledgement, beeps for
// new ones if the alert sound is on, and remembers both choices on the device (localStorage).
(function () {
  "use strict";
  const SOUND_KEY = "board.alert-sound";
  let heard = 0;  // the newest alert this page has already beeped for
  const state = { shown: 0, beeps: 0, acked: 0 };
  window.boardAlerts = state;

  function box() { return document.getElementById("board-alerts"); }
  function ackKey(b) { return `board.alerts-acked:${b.dataset.precinct}`; }
  function soundOn() { return localStorage.getItem(SOUND_KEY) !== "off"; }

  function beep() {
    if (!soundOn()) return;
    state.beeps += 1;
    // static/live.js (on every board page, loaded first) owns the page's audio context
    if (window.boardTones) window.boardTones(1200, [0, 0.25, 0.5], 0.25, 0.15);
  }

  function show() {
    const b = box();
    if (!b) return;
    const acked = Number(localStorage.getItem(ackKey(b)) || 0);
    let newest = 0, count = 0;
    b.querySelectorAll(".alert[data-seq]").forEach((li) => {
      const seq = Number(li.dataset.seq);
      const fresh = seq > acked;
      li.hidden = !fresh;
      if (fresh) { count += 1; newest = Math.max(newest, seq); }
    });
    b.hidden = count === 0;
    state.shown = count;
    // What the shown lines are about, counted: "21 not dispatched · 58 not acknowledged".
    const by = {};
    b.querySelectorAll(".alert[data-seq]:not([hidden]) strong").forEach((s) => {
      const words = s.textContent.replace(/^(P1 )?OVERDUE: /, "");
      by[words] = (by[words] || 0) + 1;
    });
    const counts = b.querySelector(".alert-counts");
    if (counts) counts.textContent = Object.entries(by).map(([w, n]) => `${n} ${w}`).join(" · ");
    state.acked = acked;
    const sound = b.querySelector(".alerts-sound");
    if (sound) {
      sound.textContent = soundOn() ? "Alert sound on" : "Alert sound off";
      sound.setAttribute("aria-pressed", String(!soundOn()));
    }
    if (newest > heard) {
      if (heard) beep();  // not for what was already there when the page opened
      heard = newest;
    }
  }

  document.addEventListener("click", (e) => {
    const b = box();
    if (!b || !b.contains(e.target)) return;
    if (e.target.closest(".alerts-ack")) {
      const seqs = Array.from(b.querySelectorAll(".alert[data-seq]"), (li) => Number(li.dataset.seq));
      localStorage.setItem(ackKey(b), String(Math.max(0, ...seqs)));
      show();
    } else if (e.target.closest(".alerts-sound")) {
      localStorage.setItem(SOUND_KEY, soundOn() ? "off" : "on");
      show();
    }
  });
  // Another tab or window of this device acknowledged: follow it.
  window.addEventListener("storage", show);
  document.body.addEventListener("board:updated", show);
  show();
  heard = heard || 1;  // from now on, anything newer beeps
})();
