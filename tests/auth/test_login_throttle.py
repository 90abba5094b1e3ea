"""Log-in throttling (issue 10, defect 4): per user name and per address (429 + Retry-After),
password hashing bounded, accounts locked after repeated failures until a time passes or an
admin unlocks them, failed log-ins logged."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from board.auth import accounts as auth
from board.auth.throttle import LoginGuard, Window
from board.cli import main as cli
from tests.cli.test_cli import _env
from tests.conftest import GEO_DIR, PASSWORD


def attempt(client: TestClient, username: str, password: str):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf": csrf, "next": ""}, follow_redirects=False)


def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, world, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="board.auth")
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


def test_repeated_failures_lock_the_account_until_time_passes_or_an_admin_unlocks(
        world, dispatch, monkeypatch, tmp_path, capsys) -> None:
    """Failures spread over many processes (a fresh guard each time) still lock the account:
    the count is in the database."""
    engine = dispatch.engine
    now = datetime.now(UTC)
    for _ in range(auth.LOCK_AFTER):
        assert auth.login(engine, "sgt75", "wrong", LoginGuard(), "1.2.3.4", now).actor is None
    locked = auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "5.6.7.8", now)
    assert locked.actor is None and locked.locked and locked.retry_after > 600
    later = now + auth.LOCK_FOR + timedelta(seconds=1)
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "5.6.7.8", later).actor

    for _ in range(auth.LOCK_AFTER):
        auth.login(engine, "sgt75", "wrong", LoginGuard(), "1.2.3.4", now)
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "", now).locked
    _env(monkeypatch, str(engine.url.render_as_string(hide_password=False)), tmp_path, GEO_DIR)
    assert cli.main(["users", "unlock", "sgt75"]) == 0
    assert "unlocked" in capsys.readouterr().out
    assert auth.login(engine, "sgt75", PASSWORD, LoginGuard(), "", now).actor is not None


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
