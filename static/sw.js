// The officer's offline shell (served as /sw.js). Network first, always: a fresh page when
// there is a link; without one, the last copy of the queue, the job pages seen and the
// scripts, styles and precinct map they need, so a tap never shows "no internet".
// Only GETs of these paths are kept; everything else (the board, the API, sockets) passes by.
"use strict";
const CACHE = "board-officer-v1";
const KEEP = [/^\/my$/, /^\/jobs\/\d+$/, /^\/static\//, /^\/vendor\//, /^\/geo\/[^/]+\.json$/];
const SHELL = ["/static/board.css", "/static/live.css", "/static/live.js", "/static/offline.js",
               "/static/jobmap.js", "/static/position.js", "/static/presence.js", "/static/flash.js", "/vendor/htmx.min.js",
               "/vendor/ws.js", "/vendor/leaflet/leaflet.js", "/vendor/leaflet/leaflet.css"];
const OFFLINE = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline · 311 Dispatch</title></head>
<body style="font:18px system-ui;margin:2rem"><main><h1>No link</h1>
<p>This page was not kept on the phone. Your queue is: <a href="/my">My queue</a>.</p></main></body></html>`;

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => Promise.all(
    SHELL.map((url) => c.add(new Request(url, { credentials: "same-origin" })).catch(() => {})))));
  self.skipWaiting();
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin || !KEEP.some((re) => re.test(url.pathname))) return;
  e.respondWith(fetch(req).then((res) => {
    // Only the officer's own good pages (marked by the server), the scripts and the map:
    // never a redirect to the log-in page, an error, or a supervisor's screen.
    const page = /^\/(my|jobs\/\d+)$/.test(url.pathname);
    if (res.ok && !res.redirected && res.type === "basic" && (!page || res.headers.get("X-Offline-Shell") === "1")) {
      const copy = res.clone();
      caches.open(CACHE).then((c) => c.put(url.pathname, copy));
    }
    return res;
  }).catch(() => caches.match(url.pathname).then((hit) => hit || (req.mode === "navigate"
    ? new Response(OFFLINE, { headers: { "Content-Type": "text/html; charset=utf-8" } })
    : Response.error()))));
});
