// The officer's phone where phones are: a tap never lands on the browser's "no internet" page,
// and is never lost nor reported sent when it was not.
// Forms on this page are sent by fetch; when there is no link the tap (with the job version it
// was made against and a key of its own) waits on the phone, shows on its card, and is sent
// when the link is back. A tap is "Sent" only when the server says it wrote it (X-Board-Saved);
// the same tap sent twice (its first answer lost) is known by its key and is not a conflict.
// Signed out meanwhile, or any answer that is not a clear yes or no: the tap stays, the phone
// says why, and it goes once the officer signs in again. Taps belong to the officer who made
// them: another person signed in on the phone neither sends nor sees them.
// A service worker (static/sw.js) keeps the page itself so it opens without a network.
(function () {
  "use strict";
  const KEY = "board.pending";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const box = document.querySelector("[data-offline-actions]");

  function load() {
    try {
      const items = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(items) ? items.filter((a) => a && typeof a.url === "string") : [];
    } catch (e) { return []; }
  }
  const steps = (n) => `${n} waiting step${n === 1 ? "" : "s"}`;
  const signedOutText = (n) => `Not sent: you were signed out — sign in to send ${steps(n)}.`;

  // The log-in page: say what waits on the phone, nothing more (it is sent from the queue page).
  const waiting = document.querySelector("[data-offline-waiting]");
  if (!box) {
    const n = load().length;
    if (waiting && n) { waiting.textContent = signedOutText(n); waiting.hidden = false; }
    return;
  }
  const list = box.querySelector("ul");
  const user = box.dataset.user || "";

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  }

  function mine() { return load().filter((a) => a.user === user); }
  function save(items) { localStorage.setItem(KEY, JSON.stringify(items)); show(); }

  // Taps made by someone else signed in before on this phone are never sent as this officer's.
  const others = load().length - mine().length;
  if (others) {
    save(mine());
    say("error", `Not sent: ${steps(others)} tapped by someone signed in before on this phone ` +
        "(discarded).");
  }

  function show() {
    const items = mine();
    box.hidden = items.length === 0;
    list.replaceChildren(...items.map((a) => {
      const li = document.createElement("li");
      li.textContent = a.job ? `${what(a)} (version ${a.version}) · tapped ${a.at}`
        : `${what(a)} · tapped ${a.at}`;
      return li;
    }));
    mark(items);
  }

  // A waiting tap shows on its card: a note, and its button says it is already taken.
  function mark(items) {
    document.querySelectorAll(".pending-note").forEach((n) => n.remove());
    document.querySelectorAll(".job-card.step-pending").forEach((c) => c.classList.remove("step-pending"));
    document.querySelectorAll("[data-pending-step]").forEach((b) => {
      b.removeAttribute("data-pending-step");
      b.removeAttribute("aria-disabled");
    });
    items.forEach((a) => {
      const card = document.getElementById(`job-${a.job}`);
      if (!card) return;
      card.classList.add("step-pending");
      const note = document.createElement("p");
      note.className = "pending-note";
      note.textContent = `Waiting to send: ${a.label} (tapped ${a.at})`;
      const form = Array.from(card.querySelectorAll("form")).find((f) => f.getAttribute("action") === a.url);
      (form || card.lastElementChild || card).before(note);
      const button = form && form.querySelector("button[type=submit]");
      if (button) { button.dataset.pendingStep = "1"; button.setAttribute("aria-disabled", "true"); }
    });
  }

  function say(kind, text, link) {
    const p = document.createElement("p");
    p.className = `flash flash-${kind}`;
    p.setAttribute("role", "status");
    p.textContent = text;
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      p.append(" ", a);
    }
    document.getElementById("flash").append(p);
  }

  function what(a) { return a.job ? `${a.label} · job #${a.job}` : a.label; }
  // A step of a job's lifecycle is taken once, whatever else its form says; another form (a
  // note, a unit's status) is the same tap only when it says the same.
  function sameStep(a, b) {
    if (a.url !== b.url) return false;
    if (/^\/jobs\/\d+\/act\/(acknowledge|en_route|on_scene|close)$/.test(a.url)) return true;
    const plain = (body) => { const p = new URLSearchParams(body); p.delete("csrf"); return p.toString(); };
    return plain(a.body) === plain(b.body);
  }

  function key() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 14)}`;
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
    return { id: key(), user, url: form.getAttribute("action"), body: fields(form).toString(),
             label: button ? button.textContent.trim() : "Action", job,
             version: (form.querySelector("input[name=version]") || {}).value || "",
             at: new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) };
  }

  // One request for a tap, now or later: never follows a redirect (a signed-out answer is a
  // redirect to the log-in page, whose 200 must not read as "done"); the key makes it safe to
  // send again.
  function send(action, queued, form) {
    const body = form ? new FormData(form) : new URLSearchParams(action.body);
    if (queued) body.set("csrf", csrf || body.get("csrf"));
    const headers = { "X-Board-Tap": "1", "Idempotency-Key": action.id };
    if (queued) Object.assign(headers, { "HX-Request": "true", "X-CSRF-Token": csrf });
    return fetch(action.url, { method: "POST", body, credentials: "same-origin",
                               redirect: "manual", headers });
  }

  let blocked = "";  // "signed-out" | "stale-form": nothing is sent until the page is loaded again
  function signedOut() {
    if (blocked === "signed-out") return;
    blocked = "signed-out";
    const back = encodeURIComponent(window.location.pathname);
    say("error", signedOutText(mine().length), { href: `/login?next=${back}`, text: "Sign in" });
  }
  function staleForm() {
    if (blocked) return;
    blocked = "stale-form";
    say("error", `Not sent: this page is out of date — reload it to send ${steps(mine().length)}.`);
  }
  const refusedWhy = (r) => r.headers.get("X-Board-Refused") || "";

  // A form sent now: on an answer, show the page it leads to (it carries the message); on no
  // answer, signed out, or a server that could not take it, keep the tap for later.
  let leaving = false;
  window.addEventListener("pageshow", () => { leaving = false; });
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post"
        || form.getAttribute("action") === "/logout") return;
    e.preventDefault();
    if (leaving) return;  // one tap at a time: the page is already on its way to the answer
    const action = describe(form);
    const twin = mine().find((a) => sameStep(a, action));
    if (twin) {
      // After this tap's own clearing of old messages (static/flash.js) has run.
      setTimeout(() => say("info", `Already waiting to send: ${what(twin)}.`));
      flush();
      return;
    }
    const next = (form.querySelector("input[name=next]") || {}).value || window.location.pathname;
    const files = hasFiles(form);
    if (files) action.label += " (its photos are not kept offline)";
    if (!navigator.onLine || blocked) { queue(action); return; }
    leaving = true;
    send(action, false, files ? form : null)
      .then((r) => {
        if (r.status === 401 || refusedWhy(r)) {
          leaving = false;
          queue(action);
          if (refusedWhy(r) === "stale-form") staleForm(); else signedOut();
        } else if (r.status >= 500 || r.status === 429) {
          leaving = false;
          queue(action);
          say("error", `Not sent yet: ${what(action)} — the server could ` +
              `not take it (${r.status}); it waits on the phone and will be tried again.`);
        } else {
          window.location.assign(next);
        }
      })
      .catch(() => { leaving = false; queue(action); });
  }, true);

  function queue(action) {
    save([...load(), action]);
  }
  function drop(action) {
    save(load().filter((a) => a.id !== action.id));
  }

  // What the server said about one waiting tap; true when it is settled (sent or refused for
  // good), false when it stays.
  function settle(a, r, text) {
    if (r.type === "opaqueredirect" || r.status === 401 || refusedWhy(r) === "signed-out") {
      signedOut();
      return false;
    }
    if (refusedWhy(r) === "stale-form") { staleForm(); return false; }
    if (r.ok && r.headers.get("X-Board-Saved") === "1") {
      say("info", `Sent: ${what(a)}`);
      drop(a);
      return true;
    }
    if ([403, 404, 409, 422].includes(r.status)) {  // the server's no, with its reason
      say(r.status === 409 ? "conflict" : "error",
          text.trim() || `Not sent: ${what(a)} was refused (${r.status}).`);
      drop(a);
      return true;
    }
    if (a.told !== r.status) {  // busy, or an answer from something in between: try again
      say("error", `Not sent yet: ${what(a)} — no clear answer (${r.status || "redirect"}); ` +
          "it waits on the phone and will be tried again.");
      save(load().map((b) => (b.id === a.id ? { ...b, told: r.status } : b)));
    }
    return false;
  }

  // Send what waited, in the order it was tapped; each one's outcome is shown.
  let sending = false;
  function flush() {
    const items = mine();
    if (sending || blocked || !items.length || !navigator.onLine) return;
    sending = true;
    const first = items[0];
    let settled = false;
    send(first, true)
      .then((r) => r.text().then((text) => { settled = settle(first, r, text); }))
      .catch(() => {})  // still no link: try again on the next sign of one
      .finally(() => { sending = false; if (settled) flush(); });
  }
  window.addEventListener("online", flush);
  document.body.addEventListener("board:online", flush);
  document.body.addEventListener("board:updated", () => mark(mine()));  // a card re-rendered
  document.body.addEventListener("htmx:afterSettle", () => mark(mine()));
  setInterval(flush, 5000);
  show();
  flush();

  // Logging out leaves nothing of the queue or the kept pages on the phone.
  document.addEventListener("submit", (e) => {
    if (e.target.getAttribute && e.target.getAttribute("action") === "/logout") {
      localStorage.removeItem(KEY);
      if (window.caches) caches.keys().then((keys) => keys.forEach((k) => caches.delete(k)));
    }
  }, true);
})();
