"""Work done aside: a generator run in a second process, its items handed back in order.

Intake reads, parses and routes a file in a child process while this one writes it: SQLite
has one writer, and that is about half of an import's CPU. The child is forked (it has this
process's modules already; it reads files and touches nothing else) and sends each item as soon
as it is made, running at most `AHEAD` items ahead of this process (a busy moment here does not
stall it), so memory stays flat however long the file. An exception in the child is raised
again here; leaving the `with` early stops the child.

While the child runs, this process's heap as it was at the fork (its modules, the database's
and the map's objects: long-lived) is frozen (`gc.freeze`): the collector's full passes, set
off by the churn of the items received, skip it (the writer of an import spent a tenth of its
time in them), and, as Python's documentation advises before a fork, the child's copy of those
pages stays shared.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["aside", "available"]


def available() -> bool:
    """Whether a second process can help: fork exists here and there is a second core."""
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


#: Items the child may have made and not yet sent: while the reader is slow for a moment
#: (this machine is shared), the child goes on making them, and the reader finds them ready.
AHEAD = 2


def _run(send: Connection, produce: Callable[..., Iterator[Any]], args: tuple[Any, ...]) -> None:
    """The child: every item, then the end or the exception that stopped it. A thread sends
    them (pickling, then waiting on the pipe) while this one makes the next, up to `AHEAD`."""
    made: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=AHEAD)
    sender = threading.Thread(target=_send, args=(send, made), name="aside-send")
    sender.start()
    try:
        for item in produce(*args):
            made.put(("item", item))
        made.put(("end", None))
    except BaseException as exc:  # handed to the parent, raised there
        made.put(("error", exc))
    finally:
        sender.join()
        send.close()


def _send(send: Connection, made: queue.Queue[tuple[str, Any]]) -> None:
    """The child's sending thread. An item that cannot be sent ends the child, with why."""
    while True:
        kind, value = made.get()
        try:
            send.send((kind, value))
        except Exception as exc:
            reason = value if kind == "error" else exc
            with contextlib.suppress(Exception):  # the reader may be gone: terminate() follows
                try:
                    send.send(("error", reason))
                except Exception:  # an exception that cannot be pickled: its text, then
                    send.send(("error", RuntimeError(f"{type(reason).__name__}: {reason}")))
            os._exit(1)  # the maker may be waiting to hand over its next item
        if kind != "item":
            return


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
    # Unfrozen again at the end only if it was this that froze (`board serve` freezes too).
    ours = gc.get_freeze_count() == 0
    gc.disable()
    gc.freeze()
    try:
        child.start()
    except BaseException:
        if ours:
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
        if ours:
            gc.unfreeze()
