// The precinct map: boundaries from /geo/<pct>.json, markers read from the job cards and unit
// lanes on the page (their data-* attributes), so the list and the map never disagree.
(function () {
  "use strict";
  const el = document.getElementById("map");
  if (!el || !window.L) return;
  const map = L.map(el, { zoomControl: true, attributionControl: !!el.dataset.tiles });
  if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19 }).addTo(map);
  const jobsLayer = L.layerGroup().addTo(map);
  const unitsLayer = L.layerGroup().addTo(map);
  const COLORS = { new: "#d62828", held: "#8d99ae", assigned: "#f77f00", acknowledged: "#fcbf49",
                   en_route: "#4361ee", on_scene: "#2a9d8f", closed: "#6c757d" };

  // Leaflet puts a string tooltip in as HTML: 311 text goes in as a text node, never markup.
  function text(value) {
    const span = document.createElement("span");
    span.textContent = String(value == null ? "" : value);
    return span;
  }

  fetch(el.dataset.geo, { credentials: "same-origin" }).then((r) => r.json()).then((g) => {
    L.geoJSON(g.sectors, { style: { color: "#888", weight: 1, fill: false, dashArray: "4" },
      onEachFeature: (f, layer) => layer.bindTooltip(text(f.properties.sector), { sticky: true }) }).addTo(map);
    const pct = L.geoJSON(g.precinct, { style: { color: "#1d3557", weight: 3, fillOpacity: 0.03 } }).addTo(map);
    if (g.house) L.marker([g.house.lat, g.house.lon], { title: "Station house" }).addTo(map);
    map.fitBounds(pct.getBounds());
  });

  function sync() {
    jobsLayer.clearLayers();
    unitsLayer.clearLayers();
    document.querySelectorAll("#queue .job-card[data-lat], #lanes .job-card[data-lat]").forEach((card) => {
      const lat = parseFloat(card.dataset.lat), lon = parseFloat(card.dataset.lon);
      if (Number.isNaN(lat) || Number.isNaN(lon)) return;
      const prio = parseInt(card.dataset.priority, 10);
      const m = L.circleMarker([lat, lon], {
        radius: 12 - 2 * prio, color: card.dataset.overdue ? "#000" : "#fff", weight: card.dataset.overdue ? 3 : 1,
        fillColor: COLORS[card.dataset.status] || "#333", fillOpacity: 0.9,
      });
      m.options.jobId = card.dataset.jobId;
      m.bindTooltip(text(`#${card.dataset.jobId} P${prio} ${card.dataset.title}`));
      m.on("click", () => { window.location.href = `/jobs/${card.dataset.jobId}`; });
      m.addTo(jobsLayer);
      card.dataset.marker = "1";
    });
    document.querySelectorAll(".lane[data-lat]").forEach((lane) => {
      const lat = parseFloat(lane.dataset.lat), lon = parseFloat(lane.dataset.lon);
      if (Number.isNaN(lat) || Number.isNaN(lon)) return;
      L.marker([lat, lon], { title: lane.dataset.callsign }).bindTooltip(text(lane.dataset.callsign)).addTo(unitsLayer);
    });
    el.dataset.markers = String(jobsLayer.getLayers().length);
  }
  window.boardMap = { map, sync, jobsLayer, COLORS };
  document.addEventListener("DOMContentLoaded", sync);
  document.body.addEventListener("htmx:afterSettle", sync);
  document.body.addEventListener("board:updated", sync);
  sync();
})();
