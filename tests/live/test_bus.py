"""The bus: in-process, and Redis pub/sub against the real Redis (REDIS_URL, else the local one
at 127.0.0.1:6379/15). Every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import redis

from board.live.bus import RECONNECTED, InProcessBus, RedisBus, SyncPublisher, make_bus
from tests.conftest import run

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    def __call__(self, channel: str, data: str) -> None:
        self.got.append((channel, data))

    def data(self, channel: str) -> list[str]:
        return [d for c, d in self.got if c == channel]


async def until(pred, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


def test_make_bus_follows_settings() -> None:
    assert isinstance(make_bus(None), InProcessBus)
    bus = make_bus("redis://127.0.0.1:6379/7")
    assert isinstance(bus, RedisBus) and bus.prefix == "board:7:"


def test_in_process_bus_delivers_only_subscribed_channels() -> None:
    async def scenario() -> None:
        bus, inbox = InProcessBus(), Inbox()
        await bus.start(inbox)
        await bus.subscribe("precinct:75")
        await bus.publish("precinct:75", "a")
        await bus.publish("precinct:120", "b")
        bus.publish_threadsafe([("precinct:75", "c")])
        await asyncio.to_thread(bus.publish_threadsafe, [("precinct:75", "d")])
        await until(lambda: len(inbox.got) == 3)
        assert inbox.data("precinct:75") == ["a", "c", "d"]
        await bus.unsubscribe("precinct:75")
        await bus.publish("precinct:75", "e")
        await bus.stop()
        assert len(inbox.got) == 3

    run(scenario())


def redis_bus(prefix: str, name: str) -> RedisBus:
    return RedisBus(REDIS_URL, prefix=prefix, name=name)


def test_redis_publish_subscribe_and_channel_isolation() -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"

    async def scenario() -> None:
        a, b = redis_bus(prefix, "bus-a"), redis_bus(prefix, "bus-b")
        other = redis_bus(f"other:{prefix}", "bus-other")  # another deployment on one Redis
        ia, ib, io = Inbox(), Inbox(), Inbox()
        for bus, inbox in ((a, ia), (b, ib), (other, io)):
            await bus.start(inbox)
        try:
            await a.subscribe("precinct:75", "city")
            await b.subscribe("precinct:120")
            await other.subscribe("precinct:75")
            await until(lambda: all(x.connected.is_set() for x in (a, b, other)))
            await b.publish("precinct:75", "1")       # b → a, across connections
            await a.publish("precinct:120", "2")      # a → b
            await a.publish("city", "3")
            await until(lambda: len(ia.got) == 2 and len(ib.got) == 1)
            assert ia.got == [("precinct:75", "1"), ("city", "3")]
            assert ib.got == [("precinct:120", "2")]
            # From a thread with no loop, as a worker process would.
            SyncPublisher(REDIS_URL, prefix=prefix).publish([("precinct:120", "4")])
            await until(lambda: len(ib.got) == 2)
            await asyncio.sleep(0.2)
            assert io.got == []  # other prefix: never crosses
            await a.unsubscribe("precinct:75")
            await b.publish("precinct:75", "5")
            await b.publish("city", "6")
            await until(lambda: ("city", "6") in ia.got)
            assert ("precinct:75", "5") not in ia.got
        finally:
            for bus in (a, b, other):
                await bus.stop()

    run(scenario())


def test_redis_bus_reconnects_after_its_connection_is_killed() -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    name = f"bus-kill-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        sub, pub = redis_bus(prefix, name), redis_bus(prefix, "bus-pub")
        inbox = Inbox()
        await sub.start(inbox)
        await pub.start(Inbox())
        try:
            await sub.subscribe("precinct:75")
            await until(sub.connected.is_set)
            await pub.publish("precinct:75", "before")
            await until(lambda: inbox.data("precinct:75") == ["before"])
            admin = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
            killed = 0
            for c in admin.client_list():
                if c.get("name") == f"{name}-sub":
                    killed += admin.client_kill_filter(_id=c["id"])
            admin.close()
            assert killed == 1
            # The subscriber notices, reconnects, re-subscribes and says "catch up".
            await until(lambda: (RECONNECTED, "") in inbox.got, timeout=10)
            assert sub.reconnects >= 1
            deadline = time.monotonic() + 10
            while "after" not in inbox.data("precinct:75"):
                assert time.monotonic() < deadline, "no delivery after reconnect"
                await pub.publish("precinct:75", "after")
                await asyncio.sleep(0.1)
        finally:
            await sub.stop()
            await pub.stop()

    run(scenario())


def test_redis_down_does_not_break_the_publisher() -> None:
    """Publishing to a dead Redis logs and returns: the commit already happened."""
    async def scenario() -> None:
        bus = RedisBus("redis://127.0.0.1:1/0", name="bus-dead")
        await bus.start(Inbox())
        try:
            t0 = time.monotonic()
            bus.publish_threadsafe([("precinct:75", "x")])
            await asyncio.sleep(0.3)
            assert not bus.healthy
            assert time.monotonic() - t0 < 3
        finally:
            await bus.stop()
        SyncPublisher("redis://127.0.0.1:1/0").publish([("precinct:75", "x")])

    run(scenario())
