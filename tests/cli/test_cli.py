"""The `board` command: set-up commands, the demo, and plain errors instead of tracebacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.cli import main as cli
from board.cli.demo import DEMO_PASSWORD, DEMO_PRECINCTS, seed
from board.settings import Settings
from board.storage import db
from board.storage.schema import events, jobs, units, users
from tests.conftest import GEO_DIR, HOUR_CSV


def _env(monkeypatch, database_url: str, tmp_path, geo=GEO_DIR) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOARD_GEO_DIR", str(geo))
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    monkeypatch.delenv("REDIS_URL", raising=False)


def test_setup_commands(monkeypatch, database_url, engine, tmp_path, capsys) -> None:
    _env(monkeypatch, database_url, tmp_path)
    assert cli.main(["migrate"]) == 0
    assert cli.main(["geo", "load", str(GEO_DIR)]) == 0
    assert "loaded 78 precincts" in capsys.readouterr().out
    assert cli.main(["units", "add", "75-Z", "--precinct", "75", "--sector", "75A"]) == 0
    assert cli.main(["units", "add", "75-Z", "--precinct", "75"]) == 2  # exists already
    assert "exists already" in capsys.readouterr().err
    assert cli.main(["units", "add", "999-A", "--precinct", "999"]) == 2
    assert "no precinct '999'" in capsys.readouterr().err
    assert cli.main(["users", "add", "pat", "--role", "officer", "--precincts", "75",
                     "--unit", "75-Z", "--password", "long enough"]) == 0
    assert cli.main(["users", "add", "lee", "--role", "officer", "--precincts", "120",
                     "--unit", "75-Z", "--password", "long enough"]) == 2
    assert "outside the user's precincts" in capsys.readouterr().err
    assert cli.main(["users", "add", "short", "--role", "supervisor", "--precincts", "75",
                     "--password", "abc"]) == 2
    capsys.readouterr()
    assert cli.main(["tokens", "create", "pat", "--name", "phone"]) == 0
    token = capsys.readouterr().out.strip()
    actor = auth.token_actor(engine, token)
    assert actor is not None and actor.name == "pat" and actor.unit_id is not None
    with engine.connect() as conn:
        added = conn.execute(sa.select(events.c.kind, events.c.source)
                             .where(events.c.kind == "unit_added")).all()
    assert len(added) == 1  # the unit went through the use cases, with an event


def test_missing_geography_is_a_plain_message(monkeypatch, database_url, engine, tmp_path,
                                              capsys) -> None:
    empty = tmp_path / "nogeo"
    empty.mkdir()
    _env(monkeypatch, database_url, tmp_path, geo=empty)
    assert cli.main(["units", "add", "75-Z", "--precinct", "75"]) == 2
    err = capsys.readouterr().err
    assert "precinct.geojson" in err and "BOARD_GEO_DIR" in err and "Police Precincts" in err


def test_demo_loads_people_units_and_the_real_hour(database_url, engine, tmp_path) -> None:
    settings = Settings.from_env({"DATABASE_URL": database_url, "SECRET_KEY": "x",
                                  "BOARD_VAR_DIR": str(tmp_path), "BOARD_GEO_DIR": str(GEO_DIR)})
    seed(settings, hour=HOUR_CSV)
    with engine.connect() as conn:
        n_jobs = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar()
        n_units = conn.execute(sa.select(sa.func.count()).select_from(units)).scalar()
        people = conn.execute(sa.select(sa.func.count()).select_from(users)).scalar()
        oldest = conn.execute(sa.select(sa.func.min(jobs.c.created_at))).scalar()
    assert n_jobs == 885 and n_units == 4 * len(DEMO_PRECINCTS)
    # on today's timeline, so QSTAT's default period (the last 28 days) shows the demo's jobs
    assert oldest > datetime.now(UTC) - timedelta(hours=1)
    assert auth.login(engine, "sgt75", DEMO_PASSWORD).actor is not None
    assert auth.login(engine, "officer75a", DEMO_PASSWORD).actor.unit_id is not None
    seed(settings, hour=HOUR_CSV)  # a second start keeps what is there
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == people
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 885


def test_demo_prints_the_wall_token_only_to_a_terminal_or_on_request(
        database_url, engine, tmp_path, capsys, monkeypatch) -> None:
    """Audit defect 13: `board demo`'s output goes to a log under a process manager; the
    wall's live token is a credential, so it is printed to a person, not into a log."""
    settings = Settings.from_env({"DATABASE_URL": database_url, "SECRET_KEY": "x",
                                  "BOARD_VAR_DIR": str(tmp_path), "BOARD_GEO_DIR": str(GEO_DIR)})
    # stderr is captured: not a terminal
    db.close(seed(settings, hour=tmp_path / "no-hour.csv").engine)
    err = capsys.readouterr().err
    assert "token=brd_" not in err and "brd_" not in err
    assert "board tokens create wall75" in err  # how to get one instead
    db.close(seed(settings, reset=True, hour=tmp_path / "no-hour.csv",
                  show_wall_token=True).engine)
    assert "/wall/75?token=brd_" in capsys.readouterr().err


def test_a_database_error_logs_the_shape_of_a_value_not_the_value(engine, caplog) -> None:
    """Audit defect 13: a statement's error (and so the 500's log line) names the SQL and the
    shape of what was bound, never a user name, a search text or a password."""
    from board.observability.redact import shape

    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as e:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE x = :v"),
                     {"v": "secret\x01name"})
    assert "secret" not in str(e.value) and "no_such_table" in str(e.value)
    assert shape({"v": "secret\x01name"}) == "{v: str[11] with control characters}"
    assert shape(("ab", 3, None, b"\x00")) == "(str[2], int, None, bytes[1])"
