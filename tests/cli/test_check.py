"""`board check`: a good deployment passes with exit 0; each mistake is one named FAIL line and
exit 1; nothing is changed by looking. Both engines are checked in every run: a SQLite file of
the test's own, and a schema and role of the test's own on the local PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.cli import check
from board.cli import main as cli
from board.cli.demo import DEMO_PASSWORD
from board.settings import GEO_DIR, Settings
from board.storage import db
from board.storage.schema import users
from tests.auth.provider import provider

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
STRONG = "k" * 48
FAILS = check.FAIL


def findings(env: dict[str, str]) -> dict[str, list[check.Finding]]:
    by_name: dict[str, list[check.Finding]] = {}
    for f in check.run(Settings.from_env(env, make_secret=False), env):
        by_name.setdefault(f.name, []).append(f)
    return by_name


def failed(env: dict[str, str]) -> set[str]:
    return {name for name, fs in findings(env).items() if any(f.status == FAILS for f in fs)}


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A migrated SQLite deployment with its map loaded, and strong settings."""
    env = {"BOARD_VAR_DIR": str(tmp_path / "var"), "BOARD_GEO_DIR": str(GEO_DIR),
           "SECRET_KEY": STRONG}
    for key in ("DATABASE_URL", "REDIS_URL", "MIGRATE_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["geo", "load", str(GEO_DIR)]) == 0
    return env


def test_a_good_embedded_deployment_passes(embedded, capsys) -> None:
    capsys.readouterr()
    assert cli.main(["check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line[6:24].strip() for line in lines if line[:4].strip() in ("ok", "warn")]
    assert {"database", "migrations", "bus", "geography", "event log", "public url", "mail",
            "single sign-on", "secret key", "demo passwords", "proxies"} <= set(names)
    assert not [line for line in lines if line.startswith("FAIL")]


def test_looking_changes_nothing(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {"BOARD_VAR_DIR": str(var), "BOARD_GEO_DIR": str(GEO_DIR)}
    found = findings(env)
    assert found["database"][0].status == FAILS and "board migrate" in found["database"][0].text
    assert not var.exists()  # neither a database file nor a secret key was made


def test_an_empty_database_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    path.touch()  # an SQLite database with nothing in it
    env = {"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": STRONG}
    found = findings(env)
    assert found["migrations"][0].status == FAILS
    assert "board migrate" in found["migrations"][0].text


@pytest.mark.parametrize("extra, name, words", [
    ({"SECRET_KEY": "test-secret"}, "secret key", "demo value"),
    ({"SECRET_KEY": "short"}, "secret key", "shorter than"),
    ({"PUBLIC_URL": "http://board.example.org", "BOARD_HTTPS_ONLY": "1"}, "public url",
     "never send them"),
    ({"PUBLIC_URL": "board.example.org"}, "public url", "not an http(s)"),
    ({"SMTP_URL": "smtp://mail.example.org:notaport", "PUBLIC_URL": "https://b.example.org"},
     "mail", "cannot be read"),
    ({"SMTP_URL": "mail.example.org", "PUBLIC_URL": "https://b.example.org"}, "mail",
     "cannot be read"),
    ({"SMTP_URL": "smtp://mail.example.org"}, "public url", "set PUBLIC_URL"),
    ({"OIDC_ISSUER": "https://idp.example.org", "OIDC_CLIENT_ID": "board",
      "OIDC_CLIENT_SECRET": "s"}, "single sign-on", "needs PUBLIC_URL"),
    ({"OIDC_ISSUER": "https://idp.example.org"}, "single sign-on", "go together"),
    ({"OIDC_ISSUER": "http://idp.example.org", "OIDC_CLIENT_ID": "board",
      "OIDC_CLIENT_SECRET": "s", "PUBLIC_URL": "https://b.example.org"}, "single sign-on",
     "https://"),
    ({"OIDC_ISSUER": "https://idp.example.org", "OIDC_CLIENT_ID": "board",
      "OIDC_CLIENT_SECRET": "s", "PUBLIC_URL": "http://board.example.org"}, "single sign-on",
     "plain http"),
    ({"OIDC_ISSUER": "https://idp.example.org", "OIDC_CLIENT_ID": "board",
      "OIDC_CLIENT_SECRET": "s", "PUBLIC_URL": "https://b.example.org",
      "OIDC_GROUP_MAP": "x=wall:75"}, "single sign-on", "OIDC_GROUP_MAP"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "bus", "cannot reach"),
])
def test_each_mistake_is_named(embedded, extra, name, words) -> None:
    found = findings({**embedded, **extra})
    bad = [f for f in found[name] if f.status == FAILS]
    assert bad and words in bad[0].text
    assert failed({**embedded, **extra}) == {name}  # and nothing else is blamed


def test_the_exit_status_says_something_is_wrong(embedded, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    capsys.readouterr()
    assert cli.main(["check"]) == 1
    out = capsys.readouterr()
    assert [line for line in out.out.splitlines() if line.startswith("FAIL")] == [
        [line for line in out.out.splitlines() if "secret key" in line][0]]
    assert "1 problem(s)" in out.err


def test_demo_users_with_the_demo_password_are_caught(embedded) -> None:
    engine = db.make_engine(f"sqlite:///{Path(embedded['BOARD_VAR_DIR']) / 'board.db'}")
    try:
        auth.add_user(engine, "sgt75", DEMO_PASSWORD, "supervisor", "75")
        auth.add_user(engine, "admin", "another-password", "admin", "*")
        found = findings(embedded)["demo passwords"][0]
        assert found.status == FAILS and "1 demo user" in found.text and "sgt75" in found.text
        auth.disable_user(engine, "sgt75")
        assert findings(embedded)["demo passwords"][0].status == check.OK
    finally:
        engine.dispose()


def test_missing_append_only_triggers_are_caught(embedded) -> None:
    engine = db.make_engine(f"sqlite:///{Path(embedded['BOARD_VAR_DIR']) / 'board.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER events_no_update")
    finally:
        engine.dispose()
    found = findings(embedded)["event log"][0]
    assert found.status == FAILS and "events_no_update" in found.text


def test_single_sign_on_is_checked_against_the_real_discovery_document(embedded) -> None:
    with provider("http://127.0.0.1:8000") as op:
        env = {**embedded, "OIDC_ISSUER": op.issuer, "OIDC_CLIENT_ID": "board",
               "OIDC_CLIENT_SECRET": "board-secret", "PUBLIC_URL": "http://127.0.0.1:8000"}
        good = findings(env)["single sign-on"][0]
        assert good.status == check.OK and "with provider sign-out" in good.text
        wrong = findings({**env, "OIDC_ISSUER": op.issuer + "/other"})["single sign-on"][0]
        assert wrong.status == FAILS and "discovery document unreadable" in wrong.text


# -- PostgreSQL: the application's own role, or the owner's --------------------------------


@pytest.fixture
def pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A schema and an application role of this test's own, migrated by the owner."""
    suffix = f"{os.getpid()}"
    schema, role = f"check_{suffix}", f"board_check_{suffix}"
    admin = db.make_engine(LOCAL_PG)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        if not conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").first():
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    options = f"?options=-csearch_path%3D{schema}"
    env = {"MIGRATE_DATABASE_URL": LOCAL_PG + options,
           "DATABASE_URL": LOCAL_PG.replace("postgres@", f"{role}@") + options,
           "REDIS_URL": "redis://127.0.0.1:6379/15", "SECRET_KEY": STRONG,
           "BOARD_VAR_DIR": str(tmp_path / "var"), "BOARD_GEO_DIR": str(GEO_DIR),
           "PUBLIC_URL": "https://board.example.org", "BOARD_HTTPS_ONLY": "1",
           "SMTP_URL": "smtp://mail.example.org:587?starttls=1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        assert cli.main(["migrate"]) == 0
        assert cli.main(["geo", "load", str(GEO_DIR)]) == 0
        yield env
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


def test_a_good_postgres_deployment_passes(pg) -> None:
    found = findings(pg)
    assert [f for fs in found.values() for f in fs if f.status != check.OK] == []
    assert "may only read and add" in found["event log"][0].text
    assert "Redis reachable" in found["bus"][0].text


def test_an_application_connected_as_the_owner_could_change_events(pg) -> None:
    found = findings({**pg, "DATABASE_URL": pg["MIGRATE_DATABASE_URL"]})["event log"]
    bad = [f for f in found if f.status == FAILS]
    assert bad and "may DELETE, TRUNCATE, UPDATE" in bad[0].text


def test_a_database_behind_the_code_is_caught(pg) -> None:
    owner = db.make_engine(pg["MIGRATE_DATABASE_URL"])
    try:
        with owner.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '7e71e0000007'"))
    finally:
        owner.dispose()
    found = findings(pg)["migrations"][0]
    assert found.status == FAILS and "7e71e0000007" in found.text


def test_an_unreachable_database_is_named(pg) -> None:
    env = {**pg, "DATABASE_URL": "postgresql://board:secret@127.0.0.1:1/board"}
    found = findings(env)
    assert found["database"][0].status == FAILS
    assert "cannot connect" in found["database"][0].text
    assert "secret" not in found["database"][0].text  # the password is never printed
    owner = db.make_engine(pg["MIGRATE_DATABASE_URL"])
    try:
        with owner.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 0
    finally:
        owner.dispose()
