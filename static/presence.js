// Proof of presence: "On scene" and "Close" carry one position from the phone, asked for as the
// form goes (forms marked data-position="ask", only when the department's setting asks). This is
// not location sharing (static/position.js): one reading, for this step, then nothing.
// It runs before any other submit handler (window, capture phase), fills lat, lon and
// accuracy_m, then sends the form on; the offline queue (static/offline.js) keeps them in a
// queued tap. No position (refused, no fix in time) sends the step without one: the event says so.
(function () {
  "use strict";
  const TIMEOUT_MS = 8000;

  function field(form, name, value) {
    const input = form.querySelector(`input[name="${name}"]`);
    if (input) input.value = value;
  }
  function say(form, text) {
    const status = form.querySelector(".position-status");
    if (status) status.textContent = text;
  }
  const WHY = { 1: "location not allowed on this phone", 2: "no position available", 3: "no fix in time" };

  window.addEventListener("submit", (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || form.dataset.position !== "ask") return;
    if (form.dataset.positionDone === "1") { delete form.dataset.positionDone; return; }
    e.preventDefault();
    e.stopImmediatePropagation();
    if (form.dataset.positionPending === "1") return;  // one reading per tap
    const submitter = e.submitter && e.submitter.form === form ? e.submitter : undefined;
    const go = () => {
      delete form.dataset.positionPending;
      form.dataset.positionDone = "1";
      form.requestSubmit(submitter);
    };
    ["lat", "lon", "accuracy_m"].forEach((n) => field(form, n, ""));
    if (!navigator.geolocation) { say(form, "This phone gives no position: sent without one."); go(); return; }
    form.dataset.positionPending = "1";
    say(form, "Getting your position…");
    navigator.geolocation.getCurrentPosition((pos) => {
      const c = pos.coords;
      field(form, "lat", c.latitude.toFixed(6));
      field(form, "lon", c.longitude.toFixed(6));
      if (Number.isFinite(c.accuracy)) field(form, "accuracy_m", Math.min(10000, Math.round(c.accuracy * 10) / 10));
      say(form, `Position found (±${Math.round(c.accuracy)} m). Sending…`);
      go();
    }, (err) => {
      say(form, `No position (${WHY[err.code] || "unknown reason"}): sent without one.`);
      go();
    }, { enableHighAccuracy: true, timeout: TIMEOUT_MS, maximumAge: 30000 });
  }, true);
})();
