// An officer's position, only with consent: the toggle starts and stops reporting, and the
// choice is remembered on this device. The board shows units where they last reported.
(function () {
  "use strict";
  const button = document.getElementById("share-position");
  if (!button || !navigator.geolocation) { if (button) button.hidden = true; return; }
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const EVERY_MS = 30000;
  let watch = null, lastSent = 0;

  function send(pos) {
    if (Date.now() - lastSent < EVERY_MS) return;
    lastSent = Date.now();
    const body = new URLSearchParams({ csrf, lat: pos.coords.latitude, lon: pos.coords.longitude });
    fetch("/my/position", { method: "POST", body, credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRF-Token": csrf } });
  }
  function show(on) {
    button.textContent = on ? "Sharing location (stop)" : "Share my location";
    button.setAttribute("aria-pressed", String(on));
  }
  function start() {
    watch = navigator.geolocation.watchPosition(send, () => stop(), { enableHighAccuracy: true, maximumAge: 15000 });
    localStorage.setItem("board.position", "on");
    show(true);
  }
  function stop() {
    if (watch !== null) navigator.geolocation.clearWatch(watch);
    watch = null;
    localStorage.setItem("board.position", "off");
    show(false);
  }
  button.addEventListener("click", () => (watch === null ? start() : stop()));
  if (localStorage.getItem("board.position") === "on") start(); else show(false);
})();
