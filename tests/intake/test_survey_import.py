"""`board import-survey FILE` (board.intake.survey): the city's own answers, keyed by service
request number, through the status page's use case; rows that match nothing are quarantined."""

from __future__ import annotations

import sqlalchemy as sa

from board.cli.main import main
from board.intake.quarantine import quarantine_rows, retry
from board.storage import db
from board.storage.schema import events, job_facts, survey_answers
from board.usecases import Invalid
from tests.conftest import GEO_DIR, make_job


def closed_job(world, key: str) -> int:
    d = world.dispatch
    job_id = make_job(d, key=key)
    d.admin_close(world.actors["sgt75"], job_id, 1, "duplicate")
    return job_id


def _env(monkeypatch, database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOARD_GEO_DIR", str(GEO_DIR))
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    monkeypatch.delenv("REDIS_URL", raising=False)


def test_import_survey_counts_and_quarantines(world, tmp_path, capsys, database_url,
                                              monkeypatch):
    _env(monkeypatch, database_url, tmp_path)
    d = world.dispatch
    a, b = closed_job(world, "61000001"), closed_job(world, "61000002")
    make_job(d, key="61000003")  # still open: its answer cannot be taken
    path = tmp_path / "survey.csv"
    path.write_text(
        "Unique Key,Satisfaction,Still There,Answered At\n"
        "61000001,Strongly agree,no,2026-11-28 17:30\n"
        "61000002,1,yes,2026-11-28T18:00:00-05:00\n"
        "61000002,5,no,\n"           # a second answer for the same request
        "99999999,4,no,\n"           # no such request
        "61000003,4,no,\n"           # not closed
        "61000001,seven,no,\n"       # unreadable
        ",3,,\n", encoding="utf-8")
    assert main(["import-survey", str(path)]) == 0
    out = capsys.readouterr().out
    assert "imported 2, already answered 1, quarantined 4" in out
    with db.read(d.engine) as conn:
        answers = {r.job_id: (r.satisfaction, r.still_there, r.source)
                   for r in conn.execute(sa.select(survey_answers))}
        facts = dict(conn.execute(sa.select(job_facts.c.job_id, job_facts.c.satisfaction)
                                  .where(job_facts.c.job_id.in_([a, b]))).all())
        disputes = conn.execute(sa.select(sa.func.count()).where(
            events.c.kind == "caller_disputed")).scalar()
    assert answers == {a: (5, False, "import"), b: (1, True, "import")}
    assert facts == {a: 5, b: 1} and disputes == 1  # b: "still there" within a day of close
    rows = quarantine_rows(d.engine)
    assert [(r.source, r.external_key) for r in rows] == [
        ("survey", "99999999"), ("survey", "61000003"), ("survey", "61000001"), ("survey", None)]
    assert "no request" in rows[0].reason and "not closed" in rows[1].reason
    assert "satisfaction 'seven'" in rows[2].reason and "no service request" in rows[3].reason
    try:
        retry(d, rows[0].id)
    except Invalid as e:
        assert "import-survey" in str(e)
    else:
        raise AssertionError("a survey row is not a 311 row to retry")
    # the same file again: nothing new, the bad rows quarantined again
    assert main(["import-survey", str(path)]) == 0
    assert "imported 0, already answered 3, quarantined 4" in capsys.readouterr().out


def test_import_survey_needs_its_columns(world, tmp_path, capsys, database_url, monkeypatch):
    _env(monkeypatch, database_url, tmp_path)
    path = tmp_path / "bad.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    assert main(["import-survey", str(path)]) == 2
    assert "satisfaction" in capsys.readouterr().err
