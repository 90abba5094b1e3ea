"""A whole tour on the screen: the real hour replayed with simulated officers, then a desk
carrying eight units of ten jobs each, checked in Chromium as the people see it.

- the board (1920×1080): every card shows its number, type, address and age, uncovered and
  uncut, whatever badges it carries; every lane can be reached while a card is dragged; no
  alert line names a stage its job has passed, and every alert can be read;
- the wall (1920×1080): address, sector and age on each card, at least 8 cards a page;
- the phone (390×844): the officer's cards show their number and type.

Screenshots of the three go to docs/img/ (board-tour.png, wall-tour.png, phone-tour.png).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from board.accountability.deadlines import DeadlineWorker
from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.intake.files import read_csv
from board.settings import ROOT
from board.storage import db
from board.storage.schema import jobs
from tests.conftest import HOUR_CSV, browser_login, make_job
from workers.replay import Replay

pytestmark = pytest.mark.browser

DESK = {"viewport": {"width": 1920, "height": 1080}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
IMG = ROOT / "docs" / "img"
UNITS = ("75-A", "75-B", "75-C", "75-D", "75-E", "75-F", "75-G", "75-H")

# The statuses in which a job has not yet got past what an alert line says it missed.
NOT_PAST = {
    "P1 job": {"new", "held"},
    "not dispatched": {"new", "held"},
    "not acknowledged": {"assigned"},
    "not on scene": {"new", "held", "assigned", "acknowledged", "en_route"},
    "not closed": {"new", "held", "assigned", "acknowledged", "en_route", "on_scene"},
}

STATUS_COLOURS = {"new": "#d62828", "held": "#8d99ae", "assigned": "#f77f00",
                  "acknowledged": "#fcbf49", "en_route": "#4361ee", "on_scene": "#2a9d8f"}
# The font size of the map's group numbers.
CLUSTER_TEXT = """() => Math.min(...Array.from(document.querySelectorAll('#map .job-cluster text'),
  (t) => parseFloat(t.getAttribute('font-size'))))"""

# For each shown card: what of its number, type, address and age is hidden, cut or covered.
CARD_PROBLEMS = """(sel) => {
  const out = [];
  const own = (part, hit) => hit && (hit === part || part.contains(hit) || hit.contains(part));
  document.querySelectorAll(sel).forEach((card) => {
    if (!card.getClientRects().length) return;  // on another page of the wall, or folded
    card.scrollIntoView({ block: "nearest", inline: "nearest" });
    const box = card.getBoundingClientRect();
    const parts = { title: card.querySelector(".job-link"), where: card.querySelector(".where"),
                    age: card.querySelector(".age") };
    const say = (what) => out.push(`#${card.dataset.jobId} ${what}`);
    for (const [name, part] of Object.entries(parts)) {
      if (!part || !part.getClientRects().length) { say(`${name} not shown`); continue; }
      const r = part.getBoundingClientRect();
      if (name === "title" && r.width <= 40) say(`title ${Math.round(r.width)} px wide`);
      if (part.scrollWidth > part.clientWidth + 1) say(`${name} cut`);
      if (r.left < box.left - 1 || r.right > box.right + 1) say(`${name} outside the card`);
      const hit = document.elementFromPoint(r.left + Math.min(r.width / 2, 20),
                                            r.top + r.height / 2);
      const by = hit ? hit.className || hit.tagName : "nothing";
      if (!own(part, hit)) say(`${name} covered by ${by}`);
    }
    const title = parts.title ? parts.title.textContent : "";
    if (!title.includes(`#${card.dataset.jobId}`)) say("number missing");
    card.querySelectorAll(".badge").forEach((b) => {
      const r = b.getBoundingClientRect();
      const cut = r.right > box.right + 1 || b.scrollWidth > b.clientWidth + 1;
      if (r.width && cut) say("badge cut");
    });
  });
  return out;
}"""


def version(dispatch, job: int) -> int:  # type: ignore[no-untyped-def]
    with db.read(dispatch.engine) as conn:
        return conn.execute(sa.select(jobs.c.version).where(jobs.c.id == job)).scalar_one()


def statuses(dispatch) -> dict[int, str]:  # type: ignore[no-untyped-def]
    with db.read(dispatch.engine) as conn:
        return dict(conn.execute(sa.select(jobs.c.id, jobs.c.status)).all())


class TourTime:
    """The replay's sleep moves the board's clock; the deadline worker runs every minute."""

    def __init__(self, clock, worker: DeadlineWorker) -> None:  # type: ignore[no-untyped-def]
        self.clock, self.worker, self.last = clock, worker, clock.now

    def monotonic(self) -> float:
        return self.clock.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)
        if self.clock.now - self.last >= timedelta(minutes=1):
            self.last = self.clock.now
            self.worker.run_once()


@pytest.fixture
def tour(world, dispatch, clock):  # type: ignore[no-untyped-def]
    """The real hour, then a busy desk in the 75th: 8 units × 10 jobs and a queue of 21, with
    overdue, P1, "possibly the same as" and photos on the same cards; some jobs move past the
    stage they were alerted for."""
    # The pages read the real time: the tour ends now (the replay at 4× is half an hour here).
    clock.now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for callsign in UNITS[3:]:
        world.units[callsign] = dispatch.add_unit(SYSTEM, callsign, "75")["unit_id"]
    worker = DeadlineWorker(dispatch)
    t = TourTime(clock, worker)
    Replay(dispatch, list(read_csv(HOUR_CSV)), speed=4, simulate_officers=True,
           units_per_precinct=1, sleep=t.sleep, monotonic=t.monotonic).run()
    clock.now = max(clock.now, datetime.now(UTC) - timedelta(minutes=21))
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    kinds = [("Blocked Driveway", "No Access"), ("Illegal Parking", "Blocked Hydrant"),
             ("Noise - Residential", "Loud Music/Party"),
             ("Noise - Street/Sidewalk", "Loud Talking")]
    made = [make_job(dispatch, "75", *kinds[i % 4], media=("https://example.org/a.jpg",) * (i % 2))
            for i in range(101)]
    for n, job in enumerate(made[:80]):
        dispatch.assign(sgt, job, version(dispatch, job), world.unit(UNITS[n % 8]))
    clock.advance(minutes=21)
    worker.run_once()  # every one of them late: queued ones not dispatched, the rest not acked
    # Work moves on: a P1 that was alerted goes on scene, a queued one is dispatched and acked.
    first_a = made[0]  # 75-A's P1
    for step in ("acknowledge", "en_route", "on_scene"):
        getattr(dispatch, step)(off, first_a, version(dispatch, first_a))
    late_queued = made[80]
    dispatch.assign(sgt, late_queued, version(dispatch, late_queued), world.unit("75-A"))
    dispatch.acknowledge(off, late_queued, version(dispatch, late_queued))
    for job in made[81:86]:
        dispatch.admin_close(sgt, job, version(dispatch, job), "duplicate")
    worker.run_once()
    return {"made": made, "moved": (first_a, late_queued)}


def test_a_whole_tour_fits_the_screens(tour, world, dispatch, live_server, browser) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    sgt = browser_login(browser, live_server.url, "sgt75", **DESK)
    sgt.goto(f"{live_server.url}/board/75")
    sgt.wait_for_function("window.boardLive && window.boardLive.updates >= 1")
    sgt.wait_for_function("document.getElementById('map').dataset.markers > '0'")
    sgt.screenshot(path=str(IMG / "board-tour.png"))
    # The map's groups: rings in the board's own status colours, never the library's.
    rings = sgt.evaluate("""() => Array.from(document.querySelectorAll('#map .job-cluster'),
      (c) => Array.from(c.querySelectorAll('circle[stroke]'), (a) => a.getAttribute('stroke')))""")
    assert rings and all(set(r) <= set(STATUS_COLOURS.values()) for r in rings)
    assert sgt.locator("#map .marker-cluster-small, #map .marker-cluster-medium").count() == 0
    figures = sgt.evaluate("""() => ({
      page: document.documentElement.scrollHeight,
      lanes: Array.from(document.querySelectorAll('#lanes .lane'),
                        (l) => Math.round(l.getBoundingClientRect().height)),
      closed: Math.round(document.querySelector('.closed-col').getBoundingClientRect().height),
      queueShown: Array.from(document.querySelectorAll('#queue .job-card')).filter((c) => {
        const r = c.getBoundingClientRect();
        return r.top >= 0 && r.bottom <= innerHeight; }).length,
    })""")
    print("board figures", figures)

    problems = sgt.evaluate(CARD_PROBLEMS, "#board-body .job-card")
    assert problems == [], f"{len(problems)} card problems: {problems[:12]}"

    # Every alert line is readable, and none names a stage its job has got past.
    banner = sgt.locator("#board-alerts")
    lines = sgt.evaluate("""() => Array.from(document.querySelectorAll('#board-alerts .alert'),
      (li) => [li.querySelector('strong').textContent,
               li.querySelector('a').getAttribute('href')])""")
    now = statuses(dispatch)
    wrong = []
    for text, href in lines:
        job = int(href.rsplit("/", 1)[1])
        said = re.sub(r"^(P1 )?OVERDUE: ", "", text)
        if now[job] not in NOT_PAST[said]:
            wrong.append(f"#{job} {now[job]}: {text}")
    assert wrong == []
    said = {int(h.rsplit("/", 1)[1]): text for text, h in lines}
    on_scene, dispatched = tour["moved"]
    assert on_scene not in said  # alerted as not acknowledged, then on scene: answered
    assert "not dispatched" not in said.get(dispatched, "")
    assert len(lines) > 20  # 21 queued + 79 assigned went late: the banner drops none
    cut = sgt.evaluate("""() => { const list = document.querySelector('#board-alerts .alert-list');
      const s = getComputedStyle(list);
      const scrolls = /(auto|scroll)/.test(s.overflowY);
      return Array.from(list.children).filter((li) => { const r = li.getBoundingClientRect();
        const box = list.getBoundingClientRect();
        return !scrolls && (r.bottom > box.bottom + 1 || r.top < box.top - 1); }).length; }""")
    assert banner.is_visible() and cut == 0

    # Every lane can be reached with a card in hand: hold it at the window's bottom edge.
    sgt.evaluate("() => document.querySelectorAll('*').forEach((e) => { e.scrollTop = 0; })")
    card = sgt.locator("#queue .job-card").first
    job = int(card.get_attribute("data-job-id"))
    last = sgt.locator("#lanes .lane").last
    target = int(last.get_attribute("data-unit-id"))
    sgt.evaluate("""() => { window.seenLanes = new Set();
      const look = () => { document.querySelectorAll('#lanes .lane .stack').forEach((s) => {
        const r = s.getBoundingClientRect();
        if (r.top >= 0 && r.top < innerHeight - 20) window.seenLanes.add(s.dataset.unitId); });
        window.lookFrame = requestAnimationFrame(look); };
      look(); }""")
    box = card.locator(".where").bounding_box()
    sgt.mouse.move(box["x"] + 10, box["y"] + box["height"] / 2)
    sgt.mouse.down()
    sgt.mouse.move(box["x"] + 30, box["y"] + 20, steps=4)
    lanes_box = sgt.locator("#lanes").bounding_box()
    x = lanes_box["x"] + lanes_box["width"] / 2
    sgt.mouse.move(x, 1080 - 8, steps=15)
    for _ in range(60):  # hold at the edge, nudging as a hand does
        sgt.mouse.move(x + 1, 1080 - 6)
        sgt.mouse.move(x, 1080 - 8)
        stack = last.locator(".stack").bounding_box()
        if stack and 0 <= stack["y"] < 1080 - 40:
            break
        sgt.wait_for_timeout(100)
    stack = last.locator(".stack").bounding_box()
    assert stack and 0 <= stack["y"] < 1080 - 40, f"the last lane stays at y={stack and stack['y']}"
    sgt.mouse.move(stack["x"] + stack["width"] / 2, stack["y"] + min(stack["height"] / 2, 20),
                   steps=10)
    sgt.mouse.up()
    # saved, and the board redrawn from the server: the card is in the lane as assigned
    sgt.wait_for_selector(f'#unit-{target} #job-{job}.status-assigned', state="attached",
                          timeout=15000)
    seen = set(sgt.evaluate("Array.from(window.seenLanes)"))
    lanes = set(sgt.evaluate(
        "Array.from(document.querySelectorAll('#lanes .lane'), (l) => l.dataset.unitId)"))
    assert lanes <= seen
    with db.read(dispatch.engine) as conn:
        unit = conn.execute(sa.select(jobs.c.unit_id).where(jobs.c.id == job)).scalar_one()
    assert unit == target
    sgt.context.close()

    # The wall: address, sector and age on every card, at least 8 a page.
    token = auth.create_token(dispatch.engine, "wall75", "lobby")
    wall = browser.new_context(**DESK).new_page()
    wall.goto(f"{live_server.url}/wall/75?token={token}")
    wall.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    wall.wait_for_function("document.getElementById('map').dataset.markers > '0'")
    wall.screenshot(path=str(IMG / "wall-tour.png"))
    assert wall.evaluate(CARD_PROBLEMS, "#wall-body #queue .job-card") == []
    shown = wall.evaluate("""() => Array.from(
      document.querySelectorAll('#wall-body #queue .job-card'))
      .filter((c) => c.getClientRects().length).length""")
    assert shown >= 8
    sectors = wall.evaluate("""() => Array.from(
      document.querySelectorAll('#wall-body #queue .job-card'))
      .filter((c) => c.getClientRects().length && c.dataset.sector)
      .every((c) => c.querySelector('.where').innerText.includes(c.dataset.sector))""")
    assert sectors
    assert wall.evaluate(CLUSTER_TEXT) >= 24  # as large as the cards' text
    wall.context.close()

    # The phone: 75-A's officer reads every card of the queue.
    officer = browser_login(browser, live_server.url, "off75a", **PHONE)
    officer.goto(f"{live_server.url}/my")
    officer.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    officer.screenshot(path=str(IMG / "phone-tour.png"), full_page=True)
    assert officer.evaluate(CARD_PROBLEMS, ".job-card") == []
    # The small map of the job in hand is centred on it, at street zoom.
    officer.wait_for_function("document.querySelector('.job-map') && "
                              "document.querySelector('.job-map').dataset.ready === '1'")
    where = officer.evaluate("""() => { const el = document.querySelector('.job-map');
      const c = el.jobMap.getCenter();
      return [c.lat, c.lng, el.jobMap.getZoom(), +el.dataset.lat, +el.dataset.lon]; }""")
    assert where[2] >= 16 and abs(where[0] - where[3]) < 1e-4 and abs(where[1] - where[4]) < 1e-4
    officer.context.close()
