"""Hostile input from the audit (issue 19): what a client sends that the database or the
parser cannot take is refused at the edge with a 4xx, on both engines, before login too.

Run on SQLite and with DATABASE_URL on PostgreSQL, where a NUL byte reaching a query is an
error of the driver (a 500 and a reset connection before these tests)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.web.test_pages import login

CONTROLS = ["a\x00b", "a\x01b", "a\x1bb", "a\x7fb"]


def _login_form(client, username: str):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf": csrf}, follow_redirects=False)


@pytest.mark.parametrize("name", CONTROLS)
def test_a_user_name_with_a_control_character_is_refused_before_login(world, client, name):
    """Audit defect 7: POST /login with a NUL in the user name was a 500 on PostgreSQL."""
    r = _login_form(client, name)
    assert r.status_code == 400 and "control character" in r.text
    assert _login_form(client, "sgt75").status_code == 303  # the next request is served


@pytest.mark.parametrize("path", [
    "/log/75?q=a%00b", "/log/75?from=2026-11-01%00",
    "/qstat/jobs?figure=jobs&of=precinct&group=7%005",
    "/qstat?by=precinct%00", "/qstat.csv?precinct=7%005", "/api/v1/qstat?group=a%00b",
    "/board/75?next=%01", "/open311/v2/requests.json?service_code=a%00b",
    "/open311/v2/requests.json?status=open%00",
])
def test_a_control_character_in_a_query_is_a_400(world, client, path):
    """Audit defect 7: GET /log/75?q=a%00b and the QSTAT drill-down's parameters were 500s on
    PostgreSQL; every surface refuses them in its own form."""
    login(client, "cmd")
    r = client.get(path)
    assert r.status_code == 400, (path, r.status_code, r.text[:200])
    if path.startswith("/api/"):
        assert r.json()["error"] == "bad_request"
    assert client.get("/log/75?q=ab").status_code == 200


def test_a_tab_or_a_newline_in_a_search_is_still_text(world, client):
    login(client, "cmd")
    assert client.get("/log/75?q=a%09b").status_code == 200


@pytest.fixture
def quarantined(dispatch, tmp_path) -> int:  # type: ignore[no-untyped-def]
    """A quarantined row (a bad created date) for the admin to retry."""
    from board.intake.file_import import import_file
    from board.intake.quarantine import quarantine_rows
    from tests.intake.test_intake import bad_rows_file

    import_file(dispatch, bad_rows_file(tmp_path))
    return quarantine_rows(dispatch.engine)[0].id


HOSTILE_JSON = {
    "a 5,000-digit number": "9" * 5000,
    "a big integer inside an object": '{"Created Date": ' + "9" * 4000 + "}",
    "a big number as a key's value, deeper": '{"a": {"b": [' + "1" * 400 + "]}}",
    "100,000 brackets": "[" * 100_000,
    "deep objects": '{"a":' * 60 + "1" + "}" * 60,
    "a float out of range": '{"Created Date": 1e400}',
    "too long": '{"Descriptor": "' + "x" * 300_000 + '"}',
}


@pytest.mark.parametrize("what", HOSTILE_JSON)
def test_a_quarantine_retry_bounds_what_it_parses(world, client, quarantined, what):
    """Audit defect 8: an admin's edited row is parsed within bounds of size, depth and
    number length; anything past them is a 422 that names the field, never a 500 or a closed
    connection, and nothing is written."""
    from board.intake.quarantine import quarantine_rows

    csrf = login(client, "admin")
    before = quarantine_rows(client.app.state.dispatch.engine)
    r = client.post(f"/admin/quarantine/{quarantined}/retry",
                    data={"csrf": csrf, "raw": HOSTILE_JSON[what]},
                    headers={"HX-Request": "true"})
    assert r.status_code == 422, (what, r.status_code, r.text[:200])
    assert "raw" in r.text.lower()
    assert quarantine_rows(client.app.state.dispatch.engine) == before
