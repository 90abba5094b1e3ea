// Live updates: glue around the htmx ws extension. The server sends HTML fragments that htmx
// swaps out-of-band by id; this file only keeps the LIVE / RECONNECTING indicator honest,
// reconnects with capped exponential backoff and jitter, re-syncs the map after a swap,
// fills the page's CSRF token into re-rendered forms and beeps for a newly assigned job.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !window.htmx) return;
  const label = live.querySelector(".live-label");
  const ageEl = live.querySelector(".live-age");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const STALE_MS = 45000;  // the server beats every 15 s: silence this long means a dead link
  const state = { state: "connecting", lastMessage: 0, lastUpdate: Date.now(), messages: 0,
                  updates: 0, opens: 0, beeps: 0, socket: null };
  window.boardLive = state;

  // Backoff: 0.5 s doubling to a 15 s cap, with jitter so a restarted server isn't stampeded.
  htmx.config.wsReconnectDelay = function (retry) {
    const cap = Math.min(15000, 500 * Math.pow(2, retry));
    return cap / 2 + Math.random() * cap / 2;
  };

  function setState(s, text) {
    // No network at all says so, whatever the socket is doing.
    if (!navigator.onLine && s !== "denied") { s = "offline"; text = "OFFLINE"; }
    state.state = s;
    live.dataset.state = s;
    label.textContent = text;
    tick();
  }

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m`;
    if (s >= 86400) return `${Math.floor(s / 86400)}d`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }

  function tick() {
    const now = Date.now();
    ageEl.textContent = state.state === "live" ? `updated ${ago(now - state.lastUpdate)} ago`
      : `last update ${ago(now - state.lastUpdate)} ago`;
    if (state.state === "live" && state.lastMessage && now - state.lastMessage > STALE_MS && state.socket) {
      setState("reconnecting", "RECONNECTING");
      state.socket.reconnect();
    }
    const clock = document.getElementById("wall-clock");
    if (clock) clock.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "America/New_York" });
  }
  setInterval(tick, 1000);

  // The browser knows at once when the network goes; a socket may take 45 s to notice.
  window.addEventListener("offline", () => setState("offline", "OFFLINE"));
  window.addEventListener("online", () => {
    setState("reconnecting", "RECONNECTING");
    if (state.socket) state.socket.reconnect();
  });
  // A short heartbeat (phones): when the socket has been quiet, ask the server directly, so a
  // dead link (a stopped server, a captive Wi-Fi) shows within seconds.
  const beatMs = Number(live.dataset.heartbeat || 0);
  if (beatMs) {
    let asking = false;
    setInterval(() => {
      if (asking || state.state === "denied" || Date.now() - state.lastMessage < beatMs) return;
      asking = true;
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), beatMs);
      fetch("/ping", { cache: "no-store", credentials: "same-origin", signal: stop.signal })
        .then((r) => {
          if (!r.ok) throw new Error(String(r.status));
          if (state.state === "live") state.lastMessage = Date.now();
        })
        .catch(() => {
          if (state.state === "live" || state.state === "offline") {
            setState("reconnecting", "RECONNECTING");
            if (state.socket && navigator.onLine) state.socket.reconnect();
          }
        })
        .finally(() => { clearTimeout(timer); asking = false; });
    }, beatMs);
  }

  // Ages count up between pushes (a push only comes when something changes).
  function ages() {
    const now = Date.now();
    document.querySelectorAll(".age[data-since]").forEach((el) => {
      el.textContent = `${ago(now - 1000 * Number(el.dataset.since))} old`;
    });
  }
  setInterval(ages, 15000);

  function jobIds() {
    return new Set(Array.from(document.querySelectorAll("#my-queue .job-card"), (c) => c.dataset.jobId));
  }
  let mine = jobIds();

  // Sound for a newly assigned job (officers), with a mute toggle remembered on the device.
  const toggle = document.getElementById("sound-toggle");
  let audio = null;
  function muted() { return localStorage.getItem("board.sound") === "off"; }
  function showToggle() {
    if (!toggle) return;
    toggle.textContent = muted() ? "Sound off" : "Sound on";
    toggle.setAttribute("aria-pressed", String(muted()));
  }
  if (toggle) {
    toggle.addEventListener("click", () => {
      localStorage.setItem("board.sound", muted() ? "on" : "off");
      if (!muted()) unlock();
      showToggle();
    });
    showToggle();
  }
  function unlock() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
  }
  document.addEventListener("pointerdown", unlock, { once: true });
  // One short tone at each of `starts` (seconds from now): the page's one audio context, shared
  // with the supervisor's alert banner (static/alerts.js).
  function tones(freq, starts, volume, length) {
    unlock();
    if (!audio) return;
    starts.forEach((at) => {
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.value = volume;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + at);
      osc.stop(audio.currentTime + at + length);
    });
  }
  window.boardTones = tones;
  function beep() {
    if (muted()) return;
    state.beeps += 1;
    tones(880, [0, 0.3], 0.2, 0.18);
  }

  live.addEventListener("htmx:wsConnecting", () => {
    if (state.state !== "connecting") setState("reconnecting", "RECONNECTING");
  });
  live.addEventListener("htmx:wsOpen", (e) => {
    state.opens += 1;
    state.socket = e.detail.socketWrapper;
    state.lastMessage = Date.now();
    setState("live", "LIVE");
    document.body.dispatchEvent(new CustomEvent("board:online"));
  });
  live.addEventListener("htmx:wsClose", (e) => {
    const code = e.detail.event && e.detail.event.code;
    if (code === 4403) { setState("denied", "NOT ALLOWED"); return; }
    if (code === 4401) {
      // Session gone (logged out, revoked, timed out): reload, which shows the log-in page.
      setState("reconnecting", "RECONNECTING");
      setTimeout(() => window.location.reload(), 2000 + Math.random() * 3000);
      return;
    }
    setState("reconnecting", "RECONNECTING");
    if ([1006, 1011, 1012, 1013].indexOf(code) < 0 && e.detail.socketWrapper) {
      // Closed "normally" by something in between (proxy, sleep): the extension would give up.
      const wrapper = e.detail.socketWrapper;
      setTimeout(() => wrapper.reconnect(), htmx.config.wsReconnectDelay(1));
    }
  });
  // A push replaces whole regions: never under a drag in progress (the drop re-fetches the
  // board), and keep what the user was typing in a form that gets re-rendered.
  let kept = [];
  function dirtyFields() {
    return Array.from(document.querySelectorAll("[id] input:not([type=hidden]), [id] textarea, [id] select"))
      .filter((f) => (f.tagName === "SELECT" ? f.selectedIndex !== Math.max(0, Array.from(f.options).findIndex((o) => o.defaultSelected))
        : f.value !== f.defaultValue) || f === document.activeElement || (f.form && f.form.dataset.kept))
      .map((f) => ({ owner: f.closest("[id]").id, name: f.name, value: f.value, focus: f === document.activeElement }));
  }
  // Nor the folds the user opened, nor the keyboard's place (a skip link's target, a card's
  // link): found again in the re-rendered region by its owner's id and what it says or links to.
  let folds = [];
  let place = null;
  const said = (el) => ((el && el.textContent) || "").trim();
  function openFolds() {
    return Array.from(document.querySelectorAll("[id] details[open]"))
      .map((d) => ({ owner: d.closest("[id]").id, summary: said(d.querySelector("summary")) }));
  }
  function keyboardPlace() {
    const el = document.activeElement;
    if (!el || el === document.body || el.matches("input, textarea, select")) return null;
    if (el.id) return { owner: el.id };
    const owner = el.closest("[id]");
    return owner && { owner: owner.id, tag: el.tagName, href: el.getAttribute("href"), text: said(el) };
  }
  function findPlace(p) {
    const owner = document.getElementById(p.owner);
    if (!owner || !p.tag) return owner;
    return Array.from(owner.querySelectorAll(p.tag)).find(
      (el) => el.getAttribute("href") === p.href && said(el) === p.text) || null;
  }
  live.addEventListener("htmx:wsBeforeMessage", (e) => {
    if (document.body.dataset.dragging) {
      state.missed = true;
      e.preventDefault();
      return;
    }
    kept = dirtyFields();
    folds = openFolds();
    place = keyboardPlace();
  });
  function restore() {
    folds.forEach((f) => {
      const owner = document.getElementById(f.owner);
      if (!owner) return;
      const fold = [owner, ...owner.querySelectorAll("details")].find(
        (d) => d.tagName === "DETAILS" && !d.open && said(d.querySelector("summary")) === f.summary);
      if (fold) fold.open = true;
    });
    folds = [];
    if (place && (!document.activeElement || document.activeElement === document.body)) {
      const el = findPlace(place);
      if (el) el.focus({ preventScroll: true });
    }
    place = null;
    kept.forEach((k) => {
      const owner = document.getElementById(k.owner);
      const field = owner && k.name && owner.querySelector(`[name="${CSS.escape(k.name)}"]`);
      if (!field) return;
      field.value = k.value;
      const fold = field.closest("details");
      if (fold) fold.open = true;  // what the user was filling in stays in view
      if (k.focus) field.focus();
    });
    kept = [];
  }

  live.addEventListener("htmx:wsAfterMessage", (e) => {
    restore();
    state.messages += 1;
    state.lastMessage = Date.now();
    if (state.state !== "live") setState("live", "LIVE");
    const msg = e.detail.message || "";
    if (msg.startsWith('<span id="live-beat"')) return;
    state.updates += 1;
    state.lastUpdate = Date.now();
    document.querySelectorAll('input[name="csrf"]').forEach((i) => { if (!i.value) i.value = csrf; });
    // Out-of-band swaps don't fire htmx:afterSettle: tell the map and the drag glue.
    document.body.dispatchEvent(new CustomEvent("board:updated", { detail: { live: true } }));
    const now = jobIds();
    let fresh = false;
    now.forEach((id) => { if (!mine.has(id)) fresh = true; });
    mine = now;
    if (fresh) beep();
    tick();
  });
})();
