"""The notice worker as a process of its own: `python -m workers.notices`, like `board notices`
(the Procfile's). The worker itself is board.caller.notices; on the embedded default
`board serve` runs it as a thread instead."""

from __future__ import annotations

import logging

from board import bootstrap
from board.caller.notices import NoticeWorker
from board.settings import Settings


def main() -> None:  # pragma: no cover - the same worker `board notices` runs (tested there)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    NoticeWorker.from_settings(bootstrap.worker_dispatch(settings), settings).run_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
