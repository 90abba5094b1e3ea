// The precinct map: boundaries from /geo/<pct>.json, markers read from the job cards and unit
// lanes on the page (their data-* attributes), so the list and the map never disagree.
// Nearby jobs are grouped (leaflet.markercluster): a group is drawn as a ring split by its jobs'
// statuses, in the board's own colours, with the count in the middle; the station house and
// units have their own shapes; a legend says what colour, size, ring and group mean. Markers stay out of the
// keyboard's tab order (the cards are the keyboard's way in); on a wall nothing is clickable.
(function () {
  "use strict";
  const el = document.getElementById("map");
  if (!el || !window.L) return;
  const wall = document.body.classList.contains("wall");
  L.Marker.prototype.options.keyboard = false;  // one tab stop for the map, not one per marker
  const map = L.map(el, { maxZoom: 19, minZoom: 10, zoomControl: !wall, attributionControl: !!el.dataset.tiles, keyboard: !wall });
  if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19 }).addTo(map);
  const COLORS = { new: "#d62828", held: "#8d99ae", assigned: "#f77f00", acknowledged: "#fcbf49",
                   en_route: "#4361ee", on_scene: "#2a9d8f", closed: "#6c757d" };
  const ORDER = ["new", "held", "assigned", "acknowledged", "en_route", "on_scene"];
  // A group of nearby jobs: a ring cut into one arc per status (its share of the group), the
  // number of jobs in the middle, as large as the cards' text (the wall's cards are 24 px).
  function ring(counts, total, size) {
    const r = size / 2 - size * 0.09, c = 2 * Math.PI * r, w = size * 0.18;
    let at = 0;
    const arcs = ORDER.filter((s) => counts[s]).map((s) => {
      const len = (counts[s] / total) * c;
      const arc = `<circle r="${r}" cx="${size / 2}" cy="${size / 2}" fill="none" stroke="${COLORS[s]}"
        stroke-width="${w}" stroke-dasharray="${len} ${c - len}" stroke-dashoffset="${-at}"
        transform="rotate(-90 ${size / 2} ${size / 2})"/>`;
      at += len;
      return arc;
    }).join("");
    return `<svg width="${size}" height="${size}" viewBox="0 0 ${size} ${size}" aria-hidden="true">
      <circle r="${r}" cx="${size / 2}" cy="${size / 2}" fill="${wall ? "#0d1117" : "#fff"}"/>${arcs}
      <text x="50%" y="50%" dy=".35em" text-anchor="middle" font-size="${wall ? 24 : 13}" font-weight="bold"
        fill="${wall ? "#fff" : "#1b1f24"}">${total}</text></svg>`;
  }
  function clusterIcon(cluster) {
    const counts = {};
    const children = cluster.getAllChildMarkers();
    children.forEach((m) => { counts[m.options.status] = (counts[m.options.status] || 0) + 1; });
    const size = (wall ? 56 : 34) + Math.min(16, Math.floor(Math.log2(children.length)) * 2);
    const words = ORDER.filter((s) => counts[s]).map((s) => `${counts[s]} ${NAMES[s]}`).join(", ");
    const said = `<span class="sr-only">${children.length} nearby jobs: ${words}</span>`;
    return L.divIcon({ html: ring(counts, children.length, size) + said, className: "job-cluster",
                       iconSize: [size, size], iconAnchor: [size / 2, size / 2] });
  }
  const jobsLayer = L.markerClusterGroup
    ? L.markerClusterGroup({ maxClusterRadius: 24, showCoverageOnHover: false, spiderfyOnMaxZoom: !wall,
                             zoomToBoundsOnClick: !wall, iconCreateFunction: clusterIcon })
    : L.layerGroup();
  jobsLayer.addTo(map);
  const unitsLayer = L.layerGroup().addTo(map);
  const NAMES = { new: "new", held: "held", assigned: "assigned", acknowledged: "acknowledged",
                  en_route: "en route", on_scene: "on scene" };
  const OUTLINE = wall ? "#ffd166" : "#1d3557";  // legible on the wall's dark background too

  // Leaflet puts a string tooltip in as HTML: 311 text goes in as a text node, never markup.
  function text(value) {
    const span = document.createElement("span");
    span.textContent = String(value == null ? "" : value);
    return span;
  }
  function icon(className, label) {
    const span = document.createElement("span");
    span.textContent = label;
    return L.divIcon({ className, html: span, iconSize: null });
  }

  fetch(el.dataset.geo, { credentials: "same-origin" }).then((r) => r.json()).then((g) => {
    L.geoJSON(g.sectors, { interactive: !wall,
      style: { color: wall ? "#8fa3bf" : "#888", weight: wall ? 2 : 1, fill: false, dashArray: "4", className: "sector-outline" },
      onEachFeature: (f, layer) => { if (!wall) layer.bindTooltip(text(f.properties.sector), { sticky: true }); } }).addTo(map);
    const pct = L.geoJSON(g.precinct, { interactive: false,
      style: { color: OUTLINE, weight: wall ? 5 : 3, fillOpacity: wall ? 0 : 0.03, className: "precinct-outline" } }).addTo(map);
    if (g.house) {
      // under every job and group: its label never covers a cluster
      L.marker([g.house.lat, g.house.lon], { icon: icon("house-icon", "★ Station house"), title: "Station house",
                                             interactive: false, zIndexOffset: -100000 }).addTo(map);
    }
    map.fitBounds(pct.getBounds());
    sync();  // the clustering needs the map's view: markers go on once it has one
  });

  const legend = L.control({ position: wall ? "topright" : "bottomright" });
  legend.onAdd = function () {
    const div = L.DomUtil.create("div", "map-legend");
    div.setAttribute("aria-label", "map legend");
    const rows = Object.keys(NAMES).map((s) =>
      `<li><span class="dot" style="background:${COLORS[s]}"></span>${NAMES[s]}</li>`).join("");
    div.innerHTML = `<strong>Legend</strong><ul>${rows}
      <li><span class="dot big"></span>bigger = higher priority</li>
      <li><span class="dot ring"></span>thick dashed ring = overdue</li>
      <li><span class="cluster-sample">${ring({ new: 1, assigned: 1, on_scene: 1 }, 3, wall ? 30 : 20)}</span>nearby jobs grouped: the ring shows their statuses</li>
      <li><span class="unit-sample">75-A</span>unit (last reported)</li>
      <li><span class="house-sample">★</span>station house</li></ul>`;
    return div;
  };
  legend.addTo(map);

  function sync() {
    if (!map._loaded) return;
    jobsLayer.clearLayers();
    unitsLayer.clearLayers();
    const markers = [];
    document.querySelectorAll("#queue .job-card[data-lat], #lanes .job-card[data-lat]").forEach((card) => {
      const lat = parseFloat(card.dataset.lat), lon = parseFloat(card.dataset.lon);
      if (Number.isNaN(lat) || Number.isNaN(lon)) return;
      const prio = parseInt(card.dataset.priority, 10);
      const late = !!card.dataset.overdue;
      const m = L.circleMarker([lat, lon], {
        radius: 12 - 2 * prio, color: late ? (wall ? "#fff" : "#000") : "#fff", weight: late ? 4 : 1,
        dashArray: late ? "4 3" : null, fillColor: COLORS[card.dataset.status] || "#333", fillOpacity: 0.9,
        interactive: !wall,
      });
      m.options.jobId = card.dataset.jobId;
      m.options.status = card.dataset.status;
      const words = `#${card.dataset.jobId} P${prio} ${card.dataset.title}${late ? ` · OVERDUE: ${card.dataset.overdue}` : ""}`;
      m.bindTooltip(text(words));
      if (!wall) m.on("click", () => { window.location.href = `/jobs/${card.dataset.jobId}`; });
      markers.push(m);
      card.dataset.marker = "1";
    });
    if (jobsLayer.addLayers) jobsLayer.addLayers(markers); else markers.forEach((m) => m.addTo(jobsLayer));
    document.querySelectorAll(".lane[data-lat]").forEach((lane) => {
      const lat = parseFloat(lane.dataset.lat), lon = parseFloat(lane.dataset.lon);
      if (Number.isNaN(lat) || Number.isNaN(lon)) return;
      L.marker([lat, lon], { icon: icon("unit-icon", lane.dataset.callsign), title: lane.dataset.callsign,
                             interactive: !wall })
        .bindTooltip(text(lane.dataset.callsign)).addTo(unitsLayer);
    });
    el.dataset.markers = String(jobsLayer.getLayers().length);
  }
  window.boardMap = { map, sync, jobsLayer, unitsLayer, COLORS };
  document.addEventListener("DOMContentLoaded", sync);
  document.body.addEventListener("htmx:afterSettle", sync);
  document.body.addEventListener("board:updated", sync);
  sync();
})();
