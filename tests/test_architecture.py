"""The layer contracts cover the whole tree: a new package of board/ that no layer names would
escape `make lint`'s inward-only rule, so it must be placed in pyproject.toml's layers."""

from __future__ import annotations

import tomllib

from board.settings import ROOT


def _layers() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.split("|")}


def test_every_package_and_top_module_of_board_is_in_a_layer() -> None:
    tops = {f"board.{p.name}" for p in (ROOT / "board").iterdir()
            if p.is_dir() and (p / "__init__.py").exists()}
    tops |= {f"board.{p.stem}" for p in (ROOT / "board").glob("*.py") if p.stem != "__init__"}
    assert tops - _layers() == set()


def test_the_workers_are_a_layer_of_their_own() -> None:
    assert "workers" in _layers()
