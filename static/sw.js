// The officer's offline shell (served as /sw.js). Network first, always: a fresh page when
// there is a link; without one, the last copy of the queue and of the job pages seen, and the
// scripts, styles and precinct map they need, so a tap never shows "no internet".
//
// Pages are one session's: each is kept under the tag of the session it was rendered for (the
// server's X-Board-Session header, a non-secret HMAC of the session) and served only while the
// browser's tag cookie still names that session. Pages kept for any other session are deleted
// as soon as another tag (or none: logged out, timed out, revoked, cookies cleared) is seen, so
// one user's page is never shown to the next. Scripts, styles and the map are the same for
// everyone and are kept apart. Only GETs are looked at; posts, the API and sockets pass by.
"use strict";
const SHELL = "board-shell-v2";
const PAGES = "board-pages-";  // + the session's tag
const TAG_HEADER = "X-Board-Session";
const TAG_COOKIE = "board_tag";
const PAGE = /^\/(my|jobs\/\d+)$/;
const ASSET = [/^\/static\//, /^\/vendor\//, /^\/geo\/[^/]+\.json$/];
const ASSETS = ["/static/board.css", "/static/live.css", "/static/live.js", "/static/offline.js",
                "/static/jobmap.js", "/static/position.js", "/static/presence.js",
                "/static/flash.js", "/vendor/htmx.min.js",
                "/vendor/ws.js", "/vendor/leaflet/leaflet.js", "/vendor/leaflet/leaflet.css"];
const OFFLINE = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline · 311 Dispatch</title></head>
<body style="font:18px system-ui;margin:2rem"><main><h1>No link</h1>
<p>This page was not kept on the phone for whoever is signed in now. Your queue is:
<a href="/my">My queue</a>.</p></main></body></html>`;

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => Promise.all(
    ASSETS.map((url) => c.add(new Request(url, { credentials: "same-origin" })).catch(() => {})))));
  self.skipWaiting();
});
self.addEventListener("activate", (e) => {
  // Caches of earlier versions (board-officer-v1 kept everyone's pages together) go.
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys
    .filter((k) => k !== SHELL && !k.startsWith(PAGES)).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// The tag of the session the browser holds now: its cookie where a service worker can read
// cookies (the Cookie Store API); elsewhere, the tag of the last page the server sent.
let lastSeen = null;
async function currentTag() {
  if (self.cookieStore) {
    try {
      const c = await self.cookieStore.get(TAG_COOKIE);
      return (c && c.value) || "";
    } catch (err) { /* fall through */ }
  }
  if (lastSeen !== null) return lastSeen;
  const kept = (await caches.keys()).filter((k) => k.startsWith(PAGES));
  return kept.length === 1 ? kept[0].slice(PAGES.length) : "";
}

async function forgetAllBut(tag) {
  const keys = await caches.keys();
  await Promise.all(keys.filter((k) => k.startsWith(PAGES) && k !== PAGES + tag)
    .map((k) => caches.delete(k)));
}

// What a page's answer says about the session: another one (or none) ends every other's pages.
async function observe(res) {
  if (res.type !== "basic") return;  // a redirect not followed here: nothing readable
  let tag = res.headers.get(TAG_HEADER);
  if (res.status === 401) tag = "";
  if (tag === null) return;
  lastSeen = tag;
  await forgetAllBut(tag);
}

async function page(e, req, url) {
  let res;
  try {
    res = await fetch(req);
  } catch (err) {
    return kept(req, url);
  }
  await observe(res);
  const tag = res.headers.get(TAG_HEADER);
  if (PAGE.test(url.pathname) && res.type === "basic" && !res.redirected) {
    // Only the officer's own good pages, marked by the server: never a redirect to the log-in
    // page, an error, a supervisor's screen or a revealed contact.
    if (res.ok && tag && res.headers.get("X-Offline-Shell") === "1") {
      const copy = res.clone();
      e.waitUntil(caches.open(PAGES + tag).then((c) => c.put(url.pathname, copy)));
    } else if (tag && res.status >= 400) {
      e.waitUntil(caches.open(PAGES + tag).then((c) => c.delete(url.pathname)));
    }
  }
  return res;
}

async function kept(req, url) {
  const tag = await currentTag();
  await forgetAllBut(tag);  // another session's pages, or any when nobody is signed in
  const hit = tag && PAGE.test(url.pathname)
    ? await caches.match(url.pathname, { cacheName: PAGES + tag }) : undefined;
  if (hit) return hit;
  return req.mode === "navigate"
    ? new Response(OFFLINE, { headers: { "Content-Type": "text/html; charset=utf-8" } })
    : Response.error();
}

async function asset(e, req, url) {
  try {
    const res = await fetch(req);
    if (res.ok && res.type === "basic" && !res.redirected) {
      const copy = res.clone();
      e.waitUntil(caches.open(SHELL).then((c) => c.put(url.pathname, copy)));
    }
    return res;
  } catch (err) {
    return (await caches.match(url.pathname, { cacheName: SHELL })) || Response.error();
  }
}

self.addEventListener("fetch", (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  // Every page (each says whose session it was rendered for), not only those kept.
  if (PAGE.test(url.pathname) || req.mode === "navigate") e.respondWith(page(e, req, url));
  else if (ASSET.some((re) => re.test(url.pathname))) e.respondWith(asset(e, req, url));
});
