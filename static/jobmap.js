// A small map of where one job is (the officer's "Now" job, the job page): the point on its
// precinct and sectors (from /geo/<pct>.json), on the department's tiles when TILE_URL is set.
// Re-drawn after a live swap replaces the element.
(function () {
  "use strict";
  if (!window.L) return;
  const outlines = {};
  function geo(precinct) {
    outlines[precinct] = outlines[precinct] || fetch(`/geo/${encodeURIComponent(precinct)}.json`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null)).catch(() => null);
    return outlines[precinct];
  }
  function draw(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    const at = [Number(el.dataset.lat), Number(el.dataset.lon)];
    const map = L.map(el, { zoomControl: false, attributionControl: !!el.dataset.tiles, keyboard: false,
                            scrollWheelZoom: false });
    if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19 }).addTo(map);
    map.setView(at, 16);
    el.jobMap = map;
    L.circleMarker(at, { radius: 16, color: "#d62828", weight: 3, fill: false, interactive: false }).addTo(map);
    L.circleMarker(at, { radius: 6, color: "#fff", weight: 2, fillColor: "#d62828", fillOpacity: 1,
                         interactive: false }).addTo(map);
    if (!el.dataset.precinct) return;
    geo(el.dataset.precinct).then((g) => {
      if (!g) return;
      L.geoJSON(g.sectors, { interactive: false, style: { color: "#5c6670", weight: 1, fill: false, dashArray: "4" } }).addTo(map);
      L.geoJSON(g.precinct, { interactive: false, style: { color: "#1d3557", weight: 3, fillOpacity: 0.04 } }).addTo(map);
      // Centred on the job at street zoom, whatever the tiles: the outlines only frame it.
      map.setView(at, 16);
      el.dataset.ready = "1";
    });
  }
  function scan() { document.querySelectorAll(".job-map[data-lat]").forEach(draw); }
  document.body.addEventListener("board:updated", scan);
  scan();
})();
