"""The lighter receive queue and flow-control flag of `LeanSocketProtocol` behave as the
asyncio ones they replace do, where uvicorn uses them."""

from __future__ import annotations

import asyncio

import pytest

from board.web.socket_protocol import Flag, Inbox
from tests.conftest import run


def test_the_inbox_gives_messages_in_order_and_waits_for_the_next() -> None:
    async def go() -> list[object]:
        inbox = Inbox()
        inbox.put_nowait({"type": "websocket.connect"})
        inbox.put_nowait({"type": "websocket.receive", "text": "a"})
        got = [await inbox.get(), await inbox.get()]
        assert inbox.empty() and inbox.qsize() == 0
        reader = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        assert not reader.done()  # nothing yet: it waits
        inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        got.append(await asyncio.wait_for(reader, 1))
        return got

    assert [m["type"] for m in run(go())] == [  # type: ignore[index]
        "websocket.connect", "websocket.receive", "websocket.disconnect"]


def test_a_cancelled_read_leaves_the_message_for_the_next_one() -> None:
    async def go() -> object:
        inbox = Inbox()
        reader = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        inbox.put_nowait("kept")
        assert inbox.qsize() == 1
        return await asyncio.wait_for(inbox.get(), 1)

    assert run(go()) == "kept"


def test_two_readers_each_get_one_message() -> None:
    async def go() -> set[object]:
        inbox = Inbox()
        readers = [asyncio.create_task(inbox.get()) for _ in range(2)]
        await asyncio.sleep(0)
        inbox.put_nowait(1)
        inbox.put_nowait(2)
        return set(await asyncio.wait_for(asyncio.gather(*readers), 1))

    assert run(go()) == {1, 2}


def test_the_flag_holds_writers_while_cleared_and_lets_them_go_when_set() -> None:
    async def go() -> None:
        flag = Flag()
        assert not flag.is_set()
        flag.set()
        assert await asyncio.wait_for(flag.wait(), 1)  # set: no wait
        flag.clear()  # the transport paused writing
        writers = [asyncio.create_task(flag.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in writers)
        flag.set()  # resumed
        assert await asyncio.wait_for(asyncio.gather(*writers), 1) == [True] * 3
        late = asyncio.create_task(flag.wait())
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late
        flag.clear()
        flag.set()
        assert flag.is_set()

    run(go())
