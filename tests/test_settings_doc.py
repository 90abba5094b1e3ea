"""docs/settings.md lists every setting the board reads: one read in board/settings.py (or the
poller's configuration) that the table lacks fails here, so the table cannot fall behind."""

from __future__ import annotations

import re

from board.settings import ROOT


def read_names(path: str) -> set[str]:
    return set(re.findall(r'env\.get\(\s*"([A-Z][A-Z0-9_]+)"', (ROOT / path).read_text()))


def documented() -> set[str]:
    table = (ROOT / "docs" / "settings.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", table, re.M))


def test_every_setting_read_is_in_the_table() -> None:
    names = read_names("board/settings.py") | read_names("workers/poller.py") | {"LOG_LEVEL"}
    assert len(names) > 30
    assert names - documented() == set()


def test_the_table_names_no_setting_that_is_not_read() -> None:
    names = read_names("board/settings.py") | read_names("workers/poller.py") | {"LOG_LEVEL"}
    assert documented() - names == set()
