// The officer's phone where phones are: a tap never lands on the browser's "no internet" page.
// Forms on this page are sent by fetch; when there is no link the action (with the job version
// it was made against) waits on the phone and is sent when the link is back. The server then
// takes it, or refuses it as stale and says who changed the job. A service worker keeps the
// page itself (the shell and the last queue) so it opens without a network.
(function () {
  "use strict";
  const box = document.querySelector("[data-offline-actions]");
  if (!box) return;
  const list = box.querySelector("ul");
  const KEY = "board.pending";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  }

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { return []; }
  }
  function save(items) { localStorage.setItem(KEY, JSON.stringify(items)); show(); }
  function show() {
    const items = load();
    box.hidden = items.length === 0;
    list.replaceChildren(...items.map((a) => {
      const li = document.createElement("li");
      li.textContent = `${a.label} · job #${a.job} (version ${a.version}) · tapped ${a.at}`;
      return li;
    }));
  }

  function say(kind, text) {
    const p = document.createElement("p");
    p.className = `flash flash-${kind}`;
    p.setAttribute("role", "status");
    p.textContent = text;
    document.getElementById("flash").append(p);
  }

  // A form's text fields (a queued tap keeps these, the phone's position included); files
  // (a close's photos) go only with a form sent at once, as multipart.
  function fields(form) {
    const out = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (typeof v === "string") out.append(k, v);
    return out;
  }
  function hasFiles(form) {
    return Array.from(new FormData(form).values()).some((v) => typeof v !== "string" && v.size > 0);
  }

  function describe(form) {
    const button = form.querySelector("button[type=submit]");
    const job = (form.action.match(/\/jobs\/(\d+)\//) || [])[1] || "";
    return { url: form.getAttribute("action"), body: fields(form).toString(),
             label: button ? button.textContent.trim() : "Action", job,
             version: (form.querySelector("input[name=version]") || {}).value || "",
             at: new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) };
  }

  // A form sent now: on any answer, show the page it leads to (it carries the message);
  // on no answer at all, keep the action for later.
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post"
        || form.getAttribute("action") === "/logout") return;
    e.preventDefault();
    if (leaving) return;  // one tap at a time: the page is already on its way to the answer
    const action = describe(form);
    const next = (form.querySelector("input[name=next]") || {}).value || window.location.pathname;
    const files = hasFiles(form);
    if (files) action.label += " (its photos are not kept offline)";
    if (!navigator.onLine) { queue(action); return; }
    leaving = true;
    fetch(action.url, { method: "POST", body: files ? new FormData(form) : new URLSearchParams(action.body),
                        credentials: "same-origin", redirect: "manual" })
      .then(() => window.location.assign(next))
      .catch(() => { leaving = false; queue(action); });
  }, true);
  let leaving = false;
  window.addEventListener("pageshow", () => { leaving = false; });

  function queue(action) {
    save([...load(), action]);
  }

  // Send what waited, in the order it was tapped; each one's outcome is shown.
  let sending = false;
  function flush() {
    const items = load();
    if (sending || !items.length || !navigator.onLine) return;
    sending = true;
    const [first, ...rest] = items;
    const body = new URLSearchParams(first.body);
    body.set("csrf", csrf || body.get("csrf"));
    fetch(first.url, { method: "POST", body, credentials: "same-origin",
                       headers: { "HX-Request": "true", "X-CSRF-Token": csrf } })
      .then((r) => r.text().then((text) => {
        save(rest);
        if (r.ok) say("info", `Sent: ${first.label} · job #${first.job}`);
        else say(r.status === 409 ? "conflict" : "error",
                 text || `Not sent: ${first.label} · job #${first.job} was refused (${r.status}).`);
      }))
      .catch(() => {})  // still no link: try again on the next sign of one
      .finally(() => { sending = false; if (load().length < items.length) flush(); });
  }
  window.addEventListener("online", flush);
  document.body.addEventListener("board:online", flush);
  setInterval(flush, 5000);
  show();
  flush();

  // Logging out leaves nothing of the queue on the phone.
  document.addEventListener("submit", (e) => {
    if (e.target.getAttribute && e.target.getAttribute("action") === "/logout") {
      localStorage.removeItem(KEY);
      if (window.caches) caches.keys().then((keys) => keys.forEach((k) => caches.delete(k)));
    }
  }, true);
})();
