"""Log-in throttling (issue 10, defect 4; issue 19, defect 12): per user name and per address
(429 + Retry-After, growing), password hashing bounded, accounts held for unknown devices after
repeated failures until a growing delay passes or an admin unlocks them, failed log-ins logged
and counted; the account's known device or address passes an attack from elsewhere."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from board.auth import accounts as auth
from board.auth.throttle import Backoff, LoginGuard, Window
from board.cli import main as cli
from board.observability.metrics import LOGIN_FAILURES
from tests.cli.test_cli import _env
from tests.conftest import GEO_DIR, PASSWORD


def attempt(client: TestClient, username: str, password: str):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf": csrf, "next": ""}, follow_redirects=False)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def frozen_guard() -> LoginGuard:
    """The default limits with time standing still: a slow machine cannot outwait a delay."""
    clock = Clock()
    return LoginGuard(per_user=Backoff(5, clock=clock), per_address=Backoff(30, clock=clock),
                      per_device=Backoff(5, clock=clock))


def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, world, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="board.auth")
    client.app.state.login_guard = frozen_guard()
    codes = [attempt(client, "sgt75", f"guess {i}").status_code for i in range(30)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    right = attempt(client, "sgt75", PASSWORD)
    assert right.status_code == 429 and int(right.headers["retry-after"]) > 0
    assert "Too many failed log-ins" in right.text
    assert sum("login failed for 'sgt75'" in r.getMessage() for r in caplog.records) == 5
    assert any("login throttled for 'sgt75'" in r.getMessage() for r in caplog.records)
    # another user is not held up by sgt75's attacker
    assert attempt(client, "off75a", PASSWORD).status_code == 303


def test_one_address_guessing_many_names_is_throttled(client, world) -> None:
    guard: LoginGuard = client.app.state.login_guard
    guard.per_address = Window(8, 300)
    for i in range(8):
        assert attempt(client, f"nobody{i}", "x").status_code == 401
    assert attempt(client, "sgt120", PASSWORD).status_code == 429  # same address
    assert guard.per_address.retry_after("testclient") > 0


def test_repeated_failures_hold_the_account_until_time_passes_or_an_admin_unlocks(
        world, dispatch, monkeypatch, tmp_path, capsys) -> None:
    """Failures spread over many processes (a fresh guard each time) still hold the account
    for unknown devices: the count is in the database."""
    engine = dispatch.engine
    now = datetime.now(UTC)
    for _ in range(auth.LOCK_AFTER):
        assert auth.login(engine, "sgt75", "wrong", LoginGuard(), "1.2.3.4", now).actor is None
    held = auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "5.6.7.8", now)
    assert held.actor is None and held.locked and 0 < held.retry_after <= auth.LOCK_BASE
    later = now + timedelta(seconds=auth.LOCK_BASE + 1)
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "5.6.7.8", later).actor

    for _ in range(auth.LOCK_AFTER):
        auth.login(engine, "sgt75", "wrong", LoginGuard(), "1.2.3.4", now)
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "", now).locked
    _env(monkeypatch, str(engine.url.render_as_string(hide_password=False)), tmp_path, GEO_DIR)
    assert cli.main(["users", "unlock", "sgt75"]) == 0
    assert "unlocked" in capsys.readouterr().out
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "", now).actor is not None


def browser(app, address: str) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, client=(address, 50000))


def test_a_strangers_wrong_passwords_do_not_stop_the_right_one_from_a_known_device_or_address(
        app, world) -> None:
    """Defect 12 (a): twelve wrong passwords from elsewhere; the sergeant's own browser and
    his usual address still get in, a stranger's browser with the right password does not."""
    app.state.login_guard = frozen_guard()
    with browser(app, "10.0.0.5") as own, browser(app, "203.0.113.9") as stranger, \
            browser(app, "10.0.0.5") as same_desk, browser(app, "198.51.100.7") as elsewhere:
        assert attempt(own, "sgt75", PASSWORD).status_code == 303
        assert own.cookies.get(auth.DEVICE_COOKIE)
        codes = [attempt(stranger, "sgt75", f"guess {i}").status_code for i in range(12)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        assert attempt(elsewhere, "sgt75", PASSWORD).status_code == 429
        assert attempt(own, "sgt75", PASSWORD).status_code == 303  # known device
        assert attempt(same_desk, "sgt75", PASSWORD).status_code == 303  # known address
        assert attempt(stranger, "sgt75", PASSWORD).status_code == 429  # still slowed


def test_the_database_hold_lets_the_known_address_through(world, dispatch) -> None:
    """Defect 12 (a), across processes: ten failures hold the account in the database for
    unknown devices, not for an address it logged in from before."""
    engine = dispatch.engine
    now = datetime.now(UTC)
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "10.0.0.5", now).actor
    from board.auth import sessions
    sessions.start(engine, world.actors["sgt75"].id, address="10.0.0.5", user_agent="x")
    for _ in range(auth.LOCK_AFTER + 2):
        auth.login(engine, "sgt75", "wrong", LoginGuard(), "203.0.113.9", now)
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "198.51.100.7", now).locked
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "10.0.0.5", now).actor
    # the success from the known address leaves the attacker's hold in place
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "198.51.100.7", now).locked


def test_thirty_failures_from_one_address_do_not_stop_the_known_device_there(
        app, world) -> None:
    """Defect 12 (b): an attacker behind the same address (one NAT) guesses 30 names and
    sgt75's password; the sergeant's own browser there still logs in, the attacker does not."""
    app.state.login_guard = frozen_guard()
    with browser(app, "10.0.0.5") as own, browser(app, "10.0.0.5") as attacker:
        assert attempt(own, "sgt75", PASSWORD).status_code == 303
        assert [attempt(attacker, f"nobody{i}", "x").status_code for i in range(30)] \
            == [401] * 30
        assert attempt(attacker, "sgt75", "guess").status_code == 429
        assert attempt(attacker, "sgt75", PASSWORD).status_code == 429
        assert attempt(own, "sgt75", PASSWORD).status_code == 303


def test_the_attacker_waits_longer_after_each_failure(app, world, dispatch) -> None:
    """Defect 12 (c): per address and per account, from unknown devices, Retry-After grows."""
    clock = Clock()
    guard = LoginGuard(per_user=Backoff(5, clock=clock), per_address=Backoff(30, clock=clock))
    app.state.login_guard = guard
    with browser(app, "203.0.113.9") as attacker:
        for i in range(30):
            assert attempt(attacker, f"nobody{i}", "x").status_code == 401
        waits = []
        for i in range(4):
            refused = attempt(attacker, f"other{i}", "x")
            assert refused.status_code == 429
            waits.append(int(refused.headers["retry-after"]))
            clock.t += waits[-1]
            assert attempt(attacker, f"other{i}", "x").status_code == 401
        assert waits == [15, 30, 60, 120]
    waits = []
    for i in range(5):
        assert auth.login(dispatch.engine, "sgt120", "wrong", guard, f"192.0.2.{i}").actor is None
    for i in range(4):
        refused = auth.login(dispatch.engine, "sgt120", PASSWORD, guard, f"192.0.2.{10 + i}")
        assert refused.actor is None and refused.retry_after
        waits.append(refused.retry_after)
        clock.t += waits[-1]
        auth.login(dispatch.engine, "sgt120", "wrong", guard, f"192.0.2.{20 + i}")
    assert waits == [15, 30, 60, 120]
    # across processes: the database hold doubles too (30 s, 60 s, 120 s)
    now = datetime.now(UTC)
    held = []
    for _ in range(auth.LOCK_AFTER - 1):
        auth.login(dispatch.engine, "off75a", "wrong", LoginGuard(), "192.0.2.50", now)
    for _ in range(3):
        auth.login(dispatch.engine, "off75a", "wrong", LoginGuard(), "192.0.2.50", now)
        held.append(auth.login(dispatch.engine, "off75a", PASSWORD, LoginGuard(),
                               "192.0.2.51", now).retry_after)
        now += timedelta(seconds=held[-1] + 1)
    assert held == [30, 60, 120]


def test_failures_are_still_counted_and_alerted(app, world, caplog) -> None:
    """Defect 12 (d): every refusal counts in board_login_failures; failures and the account
    hold are logged, and a known device let through an attack is logged too."""
    caplog.set_level(logging.WARNING, logger="board.auth")
    app.state.login_guard = LoginGuard(per_user=Window(100, 300), per_address=Window(100, 300))
    before = LOGIN_FAILURES._value.get()
    with browser(app, "10.0.0.5") as own, browser(app, "203.0.113.9") as stranger:
        assert attempt(own, "sgt75", PASSWORD).status_code == 303
        codes = [attempt(stranger, "sgt75", "wrong").status_code
                 for _ in range(auth.LOCK_AFTER + 1)]
        assert codes == [401] * auth.LOCK_AFTER + [429]
        assert attempt(own, "sgt75", PASSWORD).status_code == 303
    assert LOGIN_FAILURES._value.get() - before == auth.LOCK_AFTER + 1
    lines = [r.getMessage() for r in caplog.records]
    assert sum("login failed for 'sgt75' from 203.0.113.9" in m for m in lines) == auth.LOCK_AFTER
    assert any("locked to unknown devices" in m for m in lines)
    assert any("login for 'sgt75' from 10.0.0.5 let through as a known device" in m
               for m in lines)


def test_locked_account_page_says_so(client, world, dispatch) -> None:
    guard = LoginGuard(per_user=Window(100, 300), per_address=Window(100, 300))
    client.app.state.login_guard = guard
    for _ in range(auth.LOCK_AFTER):
        assert attempt(client, "sgt75", "wrong").status_code == 401
    page = attempt(client, "sgt75", PASSWORD)
    assert page.status_code == 429 and "locked" in page.text and "retry-after" in page.headers


def test_password_hashing_is_bounded(world, dispatch, monkeypatch) -> None:
    """40 log-ins at once: never more than the guard's two hashes run together."""
    running = peak = 0
    lock = threading.Lock()
    verify = auth._hasher.verify

    def counted(hash_: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.02)
            return verify(hash_, password)
        finally:
            with lock:
                running -= 1

    class Counting:  # the real hasher, counting how many verify at once
        pass

    counting = Counting()
    counting.verify = counted  # type: ignore[attr-defined]
    monkeypatch.setattr(auth, "_hasher", counting)
    guard = LoginGuard(per_user=Window(1000, 300), per_address=Window(1000, 300))
    results: list[bool] = []
    barrier = threading.Barrier(40)

    def one(i: int) -> None:
        barrier.wait(timeout=30)
        name = ("sgt75", "sgt120", "off75a", "off75b", "cmd")[i % 5]  # cheap test hashes
        out = auth.login(dispatch.engine, name, f"guess {i}", guard, f"10.0.0.{i}")
        results.append(out.actor is None)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [True] * 40
    assert peak == 2


def test_two_server_processes_count_the_same_failures(app, world, dispatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Defect 12, across processes: the per-account, per-address and per-device counts were
    each process's own, so two `board serve` behind one balancer gave an attacker twice the
    attempts, and an address slowed by one process was free at the other. They are in the
    database now: two apps (each its own engine and guard) over one database count as one."""
    from board.settings import Settings
    from board.storage import db
    from board.usecases import Dispatch
    from board.web.app import create_app

    engine = db.make_engine(dispatch.engine.url.render_as_string(hide_password=False))
    other = create_app(Settings.from_env({
        "DATABASE_URL": str(dispatch.engine.url), "SECRET_KEY": "test-secret",
        "BOARD_VAR_DIR": str(tmp_path / "other"), "BOARD_GEO_DIR": str(GEO_DIR)}),
        Dispatch(engine, dispatch.geo, clock=dispatch.clock))
    clock = Clock()  # time stands still: a slow machine cannot outwait a delay
    for guard in (app.state.login_guard, other.state.login_guard):
        for backoff in (guard.per_user, guard.per_address, guard.per_device):
            backoff.clock = clock
    try:
        with browser(app, "10.0.0.5") as own, browser(app, "203.0.113.9") as one, \
                browser(other, "203.0.113.9") as two, browser(other, "10.0.0.5") as own_there, \
                browser(other, "198.51.100.7") as elsewhere:
            assert attempt(own, "sgt75", PASSWORD).status_code == 303  # a known device
            codes = [attempt((one, two)[i % 2], "sgt75", f"guess {i}").status_code
                     for i in range(8)]
            assert codes == [401] * 5 + [429] * 3, codes  # 5 free in all, not 5 in each
            assert attempt(elsewhere, "sgt75", PASSWORD).status_code == 429
            own_there.cookies.update(own.cookies)  # the same browser, sent to the other
            assert attempt(own_there, "sgt75", PASSWORD).status_code == 303
            # per address: 30 free in all, whichever process each failure reached
            codes = [attempt((one, two)[i % 2], f"nobody{i}", "x").status_code
                     for i in range(26)]
            assert codes == [401] * 25 + [429], codes  # 5 + 25 = 30 failures from there
            assert attempt(one, "sgt120", PASSWORD).status_code == 429
            assert attempt(two, "sgt120", PASSWORD).status_code == 429
            clock.t += 15 * 60  # quiet for the forget time: both processes start afresh
            assert attempt(two, "sgt120", PASSWORD).status_code == 303
    finally:
        engine.dispose()
