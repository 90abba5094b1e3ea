"""Work done aside: a generator run in a second process, its items handed back in order.

Intake reads and parses a file in a child process while this one writes it: SQLite has one
writer, and parsing is a third of an import's CPU. The child is forked (it has this process's
modules already; it reads files and touches nothing else) and sends each item as soon as it is
made; a send waits while the item before it is unread, so memory stays flat however long the
file. An exception in the child is raised again here; leaving the `with` early stops the child.

While the child runs, this process's heap as it was at the fork (its modules, the database's
and the map's objects: long-lived) is frozen (`gc.freeze`): the collector's full passes, set
off by the churn of the items received, skip it (the writer of an import spent a tenth of its
time in them), and, as Python's documentation advises before a fork, the child's copy of those
pages stays shared.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["aside", "available"]


def available() -> bool:
    """Whether a second process can help: fork exists here and there is a second core."""
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


def _run(send: Connection, produce: Callable[..., Iterator[Any]], args: tuple[Any, ...]) -> None:
    """The child: every item, then the end or the exception that stopped it."""
    try:
        for item in produce(*args):
            send.send(("item", item))
        send.send(("end", None))
    except BaseException as exc:  # handed to the parent, raised there
        try:
            send.send(("error", exc))
        except Exception:  # an exception that cannot be pickled: its text, then
            send.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        send.close()


def _received(receive: Connection, ended: list[bool]) -> Iterator[Any]:
    while True:
        try:
            kind, value = receive.recv()
        except EOFError:
            raise RuntimeError("the process working aside ended without a word") from None
        if kind != "item":
            ended.append(True)
            if kind == "error":
                raise value
            return
        yield value


@contextmanager
def aside(produce: Callable[..., Iterator[Any]], *args: Any) -> Iterator[Iterator[Any]]:
    """`produce(*args)` run in a forked child; the items it yields, in order, here."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run, args=(send, produce, args), name="aside", daemon=True)
    # The child must never finalise this process's objects (an unreachable database connection
    # would say goodbye on a socket this process still owns): it is forked with the cyclic
    # collector off and keeps it off. What it makes itself, reference counting frees.
    collecting = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        child.start()
    except BaseException:
        gc.unfreeze()
        raise
    finally:
        if collecting:
            gc.enable()
    send.close()
    ended: list[bool] = []
    try:
        yield _received(receive, ended)
    finally:
        if not ended:  # left early (an error here): the child may be waiting on a send
            child.terminate()
        child.join()
        receive.close()
        gc.unfreeze()
