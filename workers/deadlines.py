"""The deadline worker as a process of its own: `python -m workers.deadlines`, like
`board deadlines` (the Procfile's). The watchdog itself is board.accountability.deadlines; on the
embedded default `board serve` runs it as a thread instead."""

from __future__ import annotations

import logging

from board import bootstrap
from board.accountability.deadlines import DeadlineWorker
from board.settings import Settings


def main() -> None:  # pragma: no cover - the same worker `board deadlines` runs (tested there)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    DeadlineWorker(bootstrap.worker_dispatch(Settings.from_env())).run_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
