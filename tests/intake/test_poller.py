"""The Socrata poller (workers.poller) against a local server that speaks enough SoQL.

The server serves the real rows of the sample hour as the Socrata API does (snake_case, ISO
floating dates, :updated_at), and evaluates $where / $order / $limit / $offset / $select.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from board.cli import main as cli
from board.domain.clock import NEW_YORK
from board.intake.file_import import import_file
from board.intake.files import read_csv
from board.intake.rows import normalise_header
from board.storage import db
from board.storage.schema import cursors, events, jobs
from tests.conftest import GEO_DIR, HOUR_CSV
from workers.poller import CURSOR_NAME, Cursor, Poller, PollerConfig, PollError

# --------------------------------------------------------------------------- a tiny SoQL


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>>=|<=|!=|=|>|<)|(?P<par>[()])"
                    r"|(?P<word>[:A-Za-z_][A-Za-z0-9_]*))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"SoQL syntax error at {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        elif kind == "word" and value.upper() in ("AND", "OR"):
            kind, value = "bool", value.upper()
        out.append((kind, value))
        pos = m.end()
    return out


def soql_filter(where: str):  # type: ignore[no-untyped-def]
    """`$where` -> predicate(row): comparisons of a column with a string, AND, OR, brackets."""
    toks = _tokens(where)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def expr():  # type: ignore[no-untyped-def]
        left = term()
        while peek() == ("bool", "OR"):
            take()
            right = term()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def term():  # type: ignore[no-untyped-def]
        left = factor()
        while peek() == ("bool", "AND"):
            take()
            right = factor()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def factor():  # type: ignore[no-untyped-def]
        if peek() == ("par", "("):
            take()
            inner = expr()
            assert take() == ("par", ")"), "unbalanced brackets"
            return inner
        kind, column = take()
        op_kind, op = take()
        lit_kind, literal = take()
        if (kind, op_kind, lit_kind) != ("word", "op", "str"):
            raise ValueError("expected: column op 'literal'")
        ops = {"=": str.__eq__, "!=": str.__ne__, ">": str.__gt__, "<": str.__lt__,
               ">=": str.__ge__, "<=": str.__le__}[op]
        # timestamps are ISO text of one format, so text order is time order
        return lambda r: column in r and ops(str(r[column]), literal)

    pred = expr()
    if pos != len(toks):
        raise ValueError("trailing SoQL")
    return pred


def socrata_rows() -> list[dict[str, Any]]:
    """The real hour's rows as Socrata JSON, with :id and :updated_at system fields."""
    out = []
    for row in read_csv(HOUR_CSV):
        item: dict[str, Any] = {}
        stamps = []
        for key, value in row.items():
            if not value:
                continue
            name = normalise_header(key)
            if name.endswith("_date"):
                local = datetime.strptime(value, "%m/%d/%Y %I:%M:%S %p")
                stamps.append(local.replace(tzinfo=NEW_YORK))
                value = local.strftime("%Y-%m-%dT%H:%M:%S.000")
            item[name] = value
        if "latitude" in item:
            item["location"] = {"latitude": item["latitude"], "longitude": item["longitude"]}
        item[":id"] = f"row-{item['unique_key']}"
        item[":updated_at"] = zulu(max(stamps) + timedelta(seconds=5))
        out.append(item)
    return out


def zulu(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeSocrata:
    """A threaded local HTTP server standing in for data.cityofnewyork.us."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.requests: list[dict[str, Any]] = []
        self.fail: dict[int, tuple[int, dict[str, str], bytes]] = {}  # request no. -> reply
        self.fail_from: int | None = None  # every request from this number on: 503
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, headers, body = fake.answer(self.path, dict(self.headers))
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/resource/erm2-nwe9.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.lock:
            self.requests.append({"path": parts.path, "params": params, "headers": headers})
            number = len(self.requests)
            if number in self.fail:
                return self.fail[number]
            if self.fail_from is not None and number >= self.fail_from:
                return 503, {}, b'{"error": "service unavailable"}'
            rows = list(self.rows)
        if parts.path != "/resource/erm2-nwe9.json":
            return 404, {}, b'{"error": "no such dataset"}'
        try:
            if "$where" in params:
                pred = soql_filter(params["$where"])
                rows = [r for r in rows if pred(r)]
            for clause in reversed(params.get("$order", "").split(",")):
                if clause.strip():
                    column, *direction = clause.split()
                    rows.sort(key=lambda r, c=column: str(r.get(c, "")),
                              reverse=bool(direction) and direction[0].upper() == "DESC")
            offset = int(params.get("$offset", "0"))
            limit = int(params.get("$limit", "1000"))
        except (ValueError, AssertionError) as e:
            return 400, {}, json.dumps({"error": True, "message": str(e)}).encode()
        rows = rows[offset:offset + limit]
        if ":*" not in params.get("$select", ""):  # like Socrata: system fields on request
            rows = [{k: v for k, v in r.items() if not k.startswith(":")} for r in rows]
        return 200, {}, json.dumps(rows).encode()


@pytest.fixture
def server() -> Iterator[FakeSocrata]:
    fake = FakeSocrata(socrata_rows())
    yield fake
    fake.close()


@pytest.fixture
def small() -> Iterator[FakeSocrata]:
    """The hour's first 300 rows: three pages of 100, for tests about paging mechanics."""
    fake = FakeSocrata(socrata_rows()[:300])
    yield fake
    fake.close()


def nypd_count(server: FakeSocrata) -> int:
    return sum(1 for r in server.rows if r["agency"] == "NYPD")


class Sleeps(list):
    """An injectable sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_poller(dispatch, server: FakeSocrata, sleeps: Sleeps | None = None,
                **config: Any) -> Poller:
    settings = {"url": server.url, "page_size": 100, "since": "2022-01-01T00:00:00.000Z",
                "backoff_base": 2.0, **config}
    return Poller(dispatch, PollerConfig(**settings), sleep=sleeps if sleeps is not None
                  else Sleeps(), rng=lambda: 0.5, client=httpx.Client(timeout=5))


def count(engine: sa.Engine, table: sa.Table, *where: Any) -> int:
    with db.read(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()


def stored_cursor(engine: sa.Engine) -> dict[str, str]:
    with db.read(engine) as conn:
        return json.loads(conn.execute(sa.select(cursors.c.value)
                                       .where(cursors.c.name == CURSOR_NAME)).scalar())


# --------------------------------------------------------------------------- the tests


def test_the_tiny_soql_is_faithful():
    row = {"agency": "NYPD", ":updated_at": "2022-05-01T04:00:08.000Z", "unique_key": "5"}
    assert soql_filter("agency='NYPD' AND (:updated_at > '2022' OR unique_key = '5')")(row)
    assert not soql_filter("agency = 'DOT' OR (agency='NYPD' AND unique_key > '5')")(row)
    assert soql_filter("agency='O''Brien'")({"agency": "O'Brien"})
    with pytest.raises(ValueError):
        soql_filter("agency = NYPD")


def test_poll_imports_the_real_hour_page_by_page(dispatch, server):
    poller = make_poller(dispatch, server, app_token="tok-123")
    counts = poller.run_once()
    # a row the city had already closed when first seen is history, as in a file import
    assert counts.as_dict() == {"rows": 885, "new": 405, "history": 480, "updated": 0,
                                "unchanged": 0, "skipped_not_nypd": 0, "quarantined": 0,
                                "unrouted": 6}
    assert count(dispatch.engine, jobs) == 885
    assert count(dispatch.engine, events, events.c.kind == "create") == 405
    assert count(dispatch.engine, events, events.c.kind == "history") == 480
    assert count(dispatch.engine, jobs, jobs.c.history, jobs.c.status == "closed",
                 jobs.c.closed_at.is_not(None), jobs.c.unit_id.is_(None)) == 480
    assert count(dispatch.engine, jobs, jobs.c.history.is_(False), jobs.c.status == "new") == 405
    # 885 rows in pages of 100: 9 requests, the last one short
    assert len(server.requests) == 9
    first = server.requests[0]
    assert first["headers"].get("X-App-Token") == "tok-123"
    assert first["params"] == {
        "$select": ":*,*", "$where": "agency='NYPD' AND :updated_at > '2022-01-01T00:00:00.000Z'",
        "$order": ":updated_at,unique_key", "$limit": "100"}
    # every later page asks strictly after the last row of the one before
    nypd = sorted((r for r in server.rows if r["agency"] == "NYPD"),
                  key=lambda r: (r[":updated_at"], r["unique_key"]))
    hundredth = nypd[99]
    assert server.requests[1]["params"]["$where"] == (
        f"agency='NYPD' AND (:updated_at > '{hundredth[':updated_at']}' OR (:updated_at = "
        f"'{hundredth[':updated_at']}' AND unique_key > '{hundredth['unique_key']}'))")
    assert stored_cursor(dispatch.engine) == {"at": nypd[-1][":updated_at"],
                                              "key": nypd[-1]["unique_key"]}
    # caught up: the next poll reads one empty page and writes nothing
    before = count(dispatch.engine, events)
    assert poller.run_once().rows == 0
    assert count(dispatch.engine, events) == before


def test_a_server_error_is_retried_with_backoff_and_jitter(dispatch, small):
    server = small
    server.fail[2] = (500, {}, b'{"error": "internal"}')
    server.fail[4] = (200, {}, b"<html>maintenance</html>")  # a garbled body is transient too
    sleeps = Sleeps()
    counts = make_poller(dispatch, server, sleeps, backoff_base=2.0).run_once()
    assert len(server.requests) == 5  # three pages, two of them asked twice
    assert counts.new + counts.history == nypd_count(server) > 200
    assert count(dispatch.engine, jobs) == counts.new + counts.history
    # first retry: ceiling 2s, equal jitter with rng 0.5 -> 1.5s; never zero, never > ceiling
    assert sleeps == [1.5, 1.5]
    # the jitter really spreads: with rng 0 and 1 the delay spans [ceiling/2, ceiling]
    poller = make_poller(dispatch, server)
    poller.rng = lambda: 0.0
    assert [poller._delay(n, None) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    poller.rng = lambda: 1.0
    assert [poller._delay(n, None) for n in (0, 3, 20)] == [2.0, 16.0, 300.0]  # capped


def test_retry_after_is_honoured_and_a_refused_query_is_not_retried(dispatch, small):
    server = small
    server.fail[1] = (429, {"Retry-After": "7"}, b'{"error": "slow down"}')
    sleeps = Sleeps()
    make_poller(dispatch, server, sleeps).run_once()
    assert sleeps == [7.0]

    server.fail[len(server.requests) + 1] = (403, {}, b'{"error": "bad app token"}')
    sleeps.clear()
    with pytest.raises(PollError, match="refused the query: HTTP 403"):
        make_poller(dispatch, server, sleeps).run_once()
    assert sleeps == []


def test_the_poller_resumes_from_its_cursor_after_a_restart_without_duplicates(dispatch, server):
    # the feed goes down after three pages; the first poller gives up
    server.fail_from = 4
    sleeps = Sleeps()
    first = make_poller(dispatch, server, sleeps, max_attempts=3)
    with pytest.raises(PollError, match="failed 3 times"):
        first.run_once()
    assert len(sleeps) == 2
    assert count(dispatch.engine, jobs) == 300
    saved = stored_cursor(dispatch.engine)

    # a new process (new poller, new HTTP client) starts from the stored cursor
    server.fail_from = None
    seen = len(server.requests)
    second = make_poller(dispatch, server)
    counts = second.run_once()
    assert server.requests[seen]["params"]["$where"].endswith(
        f"AND unique_key > '{saved['key']}'))")
    assert (counts.new + counts.history, counts.unchanged, counts.updated) == (585, 0, 0)
    assert count(dispatch.engine, jobs) == 885
    assert count(dispatch.engine, events, events.c.kind.in_(["create", "history"])) == 885
    with db.read(dispatch.engine) as conn:
        keys = conn.execute(sa.select(jobs.c.external_key)).scalars().all()
    assert len(keys) == len(set(keys)) == 885


def test_a_crash_between_import_and_cursor_save_re_reads_a_page_harmlessly(dispatch, small):
    server = small
    poller = make_poller(dispatch, server)
    real_save = poller.save_cursor
    saves: list[Cursor] = []

    def crash_on_second(cursor: Cursor) -> None:
        saves.append(cursor)
        if len(saves) == 2:
            raise RuntimeError("power cut")
        real_save(cursor)

    poller.save_cursor = crash_on_second  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        poller.run_once()
    assert count(dispatch.engine, jobs) == 200  # page 2 imported, its cursor not saved
    counts = make_poller(dispatch, server).run_once()
    total = nypd_count(server)
    # page 2 again: no duplicates
    assert (counts.new + counts.history, counts.unchanged) == (total - 200, 100)
    assert count(dispatch.engine, jobs) == total


def test_rows_sharing_one_timestamp_are_paged_by_key(dispatch, small):
    # a city-side bulk refresh stamps thousands of rows with the same second
    for row in small.rows:
        row[":updated_at"] = "2024-01-01T00:00:00.000Z"
    counts = make_poller(dispatch, small, page_size=50).run_once()
    assert counts.new + counts.history == nypd_count(small) == count(dispatch.engine, jobs)
    assert len(small.requests) == nypd_count(small) // 50 + 1


def test_an_updated_row_updates_the_job_and_nothing_else(dispatch, server):
    poller = make_poller(dispatch, server)
    poller.run_once()
    row = next(r for r in server.rows if r["unique_key"] == "54049402")
    row.update({"status": "Closed", "closed_date": "2022-05-01T01:10:00.000",
                "resolution_description": "The Police Department responded and upon arrival "
                                          "those responsible for the condition were gone.",
                ":updated_at": "2022-05-02T09:00:00.000Z"})
    counts = poller.run_once()
    assert (counts.rows, counts.new, counts.updated) == (1, 0, 1)
    with db.read(dispatch.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.external_key == "54049402")).one()
        kinds = conn.execute(sa.select(events.c.kind).where(events.c.job_id == job.id)
                             .order_by(events.c.seq)).scalars().all()
    assert (job.external_status, job.status, job.version) == ("Closed", "new", 1)
    assert kinds == ["create", "update_311"]
    assert stored_cursor(dispatch.engine)["at"] == "2022-05-02T09:00:00.000Z"


def test_csv_import_then_poll_of_the_same_rows_changes_nothing(dispatch, server):
    import_file(dispatch, HOUR_CSV)
    before = count(dispatch.engine, events)
    counts = make_poller(dispatch, server).run_once()
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 885)
    assert count(dispatch.engine, events) == before


def test_created_date_cursor_and_config_from_the_environment(dispatch, server, clock):
    for row in server.rows:
        del row[":updated_at"]  # a mirror without Socrata's system fields
    poller = make_poller(dispatch, server, cursor_field="created_date",
                         since="2022-05-01T00:30:00.000")
    counts = poller.run_once()
    expected = sum(1 for r in server.rows if r["agency"] == "NYPD"
                   and r["created_date"] > "2022-05-01T00:30:00.000")
    assert 0 < counts.new + counts.history == expected < 885
    assert server.requests[0]["params"]["$order"] == "created_date,unique_key"

    config = PollerConfig.from_env({"SOCRATA_URL": "http://x/y.json", "SOCRATA_APP_TOKEN": "t",
                                    "SOCRATA_PAGE_SIZE": "50", "SOCRATA_POLL_SECONDS": "15"})
    assert (config.url, config.app_token, config.page_size, config.interval) == (
        "http://x/y.json", "t", 50, 15.0)
    assert PollerConfig.from_env({}).url == (
        "https://data.cityofnewyork.us/resource/erm2-nwe9.json")
    with pytest.raises(ValueError, match="SOCRATA_CURSOR_FIELD"):
        PollerConfig.from_env({"SOCRATA_CURSOR_FIELD": "closed_date"})
    # no stored cursor and no SOCRATA_SINCE: start one day back, in the field's own format
    fresh = Poller(dispatch, PollerConfig(url=server.url))
    assert fresh.initial_cursor().at == zulu(clock.now - timedelta(days=1))


def test_run_forever_keeps_going_through_failures(dispatch, small):
    server = small
    server.fail_from = 1
    sleeps = Sleeps()
    poller = make_poller(dispatch, server, sleeps, max_attempts=2, interval=60.0)
    poller.run_forever(max_runs=2)
    # each run: one retry sleep, then a longer pause (at least the interval) before the next
    assert len(sleeps) == 4 and sleeps[1] >= 60.0 and sleeps[3] >= 60.0
    server.fail_from = None
    poller.run_forever(max_runs=1)
    assert count(dispatch.engine, jobs) == nypd_count(server) and sleeps[-1] == 60.0


def test_cli_poll_once(monkeypatch, database_url, tmp_path, engine, server, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOARD_GEO_DIR", str(GEO_DIR))
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    monkeypatch.setenv("SOCRATA_URL", server.url)
    monkeypatch.setenv("SOCRATA_PAGE_SIZE", "500")
    assert cli.main(["poll-311", "--once", "--since", "2022-01-01T00:00:00.000Z"]) == 0
    assert "new 405, history 480" in capsys.readouterr().out
    assert cli.main(["poll-311", "--once"]) == 0  # the cursor is in the database now
    assert "rows 0" in capsys.readouterr().out
    server.fail_from = len(server.requests) + 1
    monkeypatch.setattr("workers.poller.time.sleep", lambda s: None)
    assert cli.main(["poll-311", "--once"]) == 1
    assert "failed 6 times" in capsys.readouterr().err
