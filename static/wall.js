// The wall display: nothing on it navigates (one stray click must not leave a TV on another
// page for good), and every queued job gets its turn: a list longer than its space is shown a
// page at a time, turning every few seconds, with "page 2 of 3" in its heading.
(function () {
  "use strict";
  if (!document.body.classList.contains("wall")) return;
  ["click", "auxclick", "dblclick", "submit", "keydown"].forEach((type) => {
    document.addEventListener(type, (e) => { e.preventDefault(); e.stopPropagation(); }, true);
  });

  const TURN_MS = 8000;
  function Pager(listSel, itemSel) {
    this.listSel = listSel;
    this.itemSel = itemSel;
    this.page = 0;
    this.pages = [[]];
  }
  Pager.prototype.measure = function () {
    const list = document.querySelector(this.listSel);
    if (!list) { this.pages = [[]]; return; }
    const section = list.closest("section");
    const items = Array.from(list.querySelectorAll(this.itemSel));
    items.forEach((i) => { i.hidden = false; });
    // The room left for the list under its heading, in the section the layout gives it.
    const room = section.getBoundingClientRect().bottom - list.getBoundingClientRect().top - 4;
    const gap = parseFloat(getComputedStyle(list).rowGap) || 0;
    const pages = [[]];
    let used = 0;
    items.forEach((item) => {
      const h = item.getBoundingClientRect().height + gap;
      if (used + h > room && pages[pages.length - 1].length) { pages.push([]); used = 0; }
      pages[pages.length - 1].push(item);
      used += h;
    });
    this.pages = pages;
    this.page = Math.min(this.page, pages.length - 1);
    this.show();
  };
  Pager.prototype.show = function () {
    const list = document.querySelector(this.listSel);
    if (!list) return;
    this.pages.forEach((items, n) => items.forEach((i) => { i.hidden = n !== this.page; }));
    const heading = list.closest("section").querySelector("h2");
    let label = heading.querySelector(".wall-page");
    if (!label) {
      label = document.createElement("span");
      label.className = "wall-page";
      heading.append(" ", label);
    }
    label.textContent = this.pages.length > 1 ? `page ${this.page + 1} of ${this.pages.length}` : "";
    list.dataset.page = String(this.page + 1);
    list.dataset.pages = String(this.pages.length);
  };
  Pager.prototype.next = function () {
    this.page = (this.page + 1) % this.pages.length;
    this.show();
  };

  const pagers = { queue: new Pager("#wall-body #queue", ".job-card"),
                   lanes: new Pager("#wall-body #lanes", ".lane") };
  function measure() { Object.values(pagers).forEach((p) => p.measure()); }
  window.wallPager = pagers;
  document.body.addEventListener("board:updated", measure);
  window.addEventListener("resize", measure);
  // While the socket is down the lists are stale: say so across the screen and stop turning
  // pages (a page turned now would show old jobs as if they were current).
  function live() { return !window.boardLive || window.boardLive.state === "live"; }
  function notice() {
    const n = document.getElementById("wall-reconnecting");
    if (n) n.hidden = live() || (window.boardLive && window.boardLive.state === "connecting");
    document.body.classList.toggle("wall-stale", n ? !n.hidden : false);
  }
  const status = document.getElementById("live");
  if (status) new MutationObserver(notice).observe(status, { attributes: true, attributeFilter: ["data-state"] });
  setInterval(() => { if (live()) Object.values(pagers).forEach((p) => p.next()); }, TURN_MS);
  notice();
  measure();
})();
