"""The bus: "something committed on this channel" nudges between processes.

Two implementations behind one small interface:

- `InProcessBus`, the embedded default: one process, nothing to run.
- `RedisBus`, Redis pub/sub (`REDIS_URL`): many web processes on many hosts.

Messages are nudges, not the truth. The events table is the outbox: a live hub that hears a
nudge reads the committed events after its last sequence number from the database, so a lost or
duplicated message costs at most a little latency (the hub's periodic anti-entropy check finds
whatever the bus dropped). Channels: `precinct:<p>`, `unit:<id>`, `city`.

`publish_threadsafe` may be called from any thread (the use cases run in a thread pool and call
their listeners after commit); it never blocks the caller and never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

from board.observability.logs import Throttled

log = logging.getLogger("board.bus")
# An outage fails every publish and every reconnect attempt: log the first, then a summary.
_publish_failures = Throttled(log)

# on_message(channel, data): called on the bus's event loop. channel "" means "I reconnected,
# anything may have been missed: catch up".
Handler = Callable[[str, str], None]
RECONNECTED = ""


class Bus:
    """The interface the live hub and the publishers use."""

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.channels: set[str] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self, handler: Handler) -> None:
        self.handler = handler
        self.loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self.handler = None

    async def subscribe(self, *channels: str) -> None:
        self.channels.update(channels)

    async def unsubscribe(self, *channels: str) -> None:
        self.channels.difference_update(channels)

    async def publish(self, channel: str, data: str) -> None:
        raise NotImplementedError

    def publish_threadsafe(self, messages: Iterable[tuple[str, str]]) -> None:
        """Hand messages to the bus's loop from any thread; fire and forget."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        batch = list(messages)

        async def send() -> None:
            for channel, data in batch:
                try:
                    await self.publish(channel, data)
                except Exception as e:  # noqa: BLE001 - a lost nudge is repaired by anti-entropy
                    _publish_failures.failed("bus publish failed: %s", e)
                    return  # the rest would fail the same way
            _publish_failures.recovered("bus publishing again")
        try:
            if _on_loop(loop):
                loop.create_task(send())
            else:
                asyncio.run_coroutine_threadsafe(send(), loop)
        except RuntimeError:  # loop shutting down
            pass

    @property
    def healthy(self) -> bool:
        return self.handler is not None


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class InProcessBus(Bus):
    """One process: a publish is delivered on the loop to this process's subscriber."""

    async def publish(self, channel: str, data: str) -> None:
        if self.handler is not None and channel in self.channels:
            self.handler(channel, data)


class RedisBus(Bus):
    """Redis pub/sub. One subscriber connection per process, re-made after any drop."""

    def __init__(self, url: str, prefix: str | None = None, name: str = "board-live",
                 retry_max_s: float = 5.0) -> None:
        super().__init__()
        self.url = url
        # Pub/sub ignores the database number: put it in the channel names so that, say, the
        # test suite on /15 never nudges a board on /0.
        self.prefix = prefix if prefix is not None else f"board:{_db_of(url)}:"
        self.name = name
        self.retry_max_s = retry_max_s
        self._pub: Any = None
        self._sub: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._lost = Throttled(log)

    def _client(self, name: str) -> Any:
        import redis.asyncio as aioredis

        return aioredis.from_url(self.url, client_name=name, socket_connect_timeout=2,
                                 socket_timeout=5, health_check_interval=10)

    async def start(self, handler: Handler) -> None:
        await super().start(handler)
        self._pub = self._client(f"{self.name}-pub")
        self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")

    async def stop(self) -> None:
        await super().stop()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)
        await self._close_sub()
        if self._pub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pub.aclose(), 2)
        self._pub = None

    async def _close_sub(self) -> None:
        pubsub, sub = self._pubsub, self._sub
        self._pubsub = self._sub = None
        self.connected.clear()
        for thing in (pubsub, sub):
            if thing is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(thing.aclose(), 2)

    async def _connect(self) -> None:
        self._sub = self._client(f"{self.name}-sub")
        self._pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
        async with self._lock:
            names = [self.prefix + c for c in self.channels]
            # A placeholder channel keeps the connection in pub/sub mode with no boards open.
            await self._pubsub.subscribe(self.prefix + "_", *names)
        self.connected.set()

    async def _read(self) -> None:
        delay = 0.1
        first = True
        while self.handler is not None:
            try:
                if self._pubsub is None:
                    await self._connect()
                    if not first:
                        self.reconnects += 1
                        if not self._lost.recovered("redis bus reconnected"):
                            log.info("redis bus reconnected")
                        self._deliver(RECONNECTED, "")
                    first = False
                    delay = 0.1
                msg = await self._pubsub.get_message(timeout=1.0)
                if msg and msg.get("type") == "message":
                    channel = _text(msg["channel"]).removeprefix(self.prefix)
                    self._deliver(channel, _text(msg["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any drop: back off, reconnect, catch up
                self._lost.failed("redis bus connection lost: %s", e)
                await self._close_sub()
                first = False
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.retry_max_s)

    def _deliver(self, channel: str, data: str) -> None:
        if self.handler is not None:
            try:
                self.handler(channel, data)
            except Exception:  # noqa: BLE001
                log.exception("bus handler failed")

    async def subscribe(self, *channels: str) -> None:
        new = [c for c in channels if c not in self.channels]
        await super().subscribe(*channels)
        if new and self._pubsub is not None and self.connected.is_set():
            try:
                async with self._lock:
                    await self._pubsub.subscribe(*(self.prefix + c for c in new))
            except Exception as e:  # noqa: BLE001 - the reader reconnects with all channels
                log.warning("redis subscribe failed: %s", e)

    async def unsubscribe(self, *channels: str) -> None:
        await super().unsubscribe(*channels)
        if channels and self._pubsub is not None and self.connected.is_set():
            with contextlib.suppress(Exception):
                async with self._lock:
                    await self._pubsub.unsubscribe(*(self.prefix + c for c in channels))

    async def publish(self, channel: str, data: str) -> None:
        if self._pub is None:
            raise RuntimeError("bus not started")
        await self._pub.publish(self.prefix + channel, data)

    @property
    def healthy(self) -> bool:
        return self.handler is not None and self.connected.is_set()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _db_of(url: str) -> str:
    path = urlparse(url).path.strip("/")
    return path or "0"


def make_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else InProcessBus()


class SyncPublisher:
    """For processes with no event loop (workers, the CLI): publish nudges synchronously.

    `board.bootstrap.worker_dispatch` attaches `publish(announcements(evs))` as a listener, so
    boards hear a worker's events at once; without it they still converge by anti-entropy.
    """

    def __init__(self, url: str, prefix: str | None = None) -> None:
        import redis

        self.prefix = prefix if prefix is not None else f"board:{_db_of(url)}:"
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._redis.close()

    def publish(self, messages: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            try:
                pipe = self._redis.pipeline(transaction=False)
                for channel, data in messages:
                    pipe.publish(self.prefix + channel, data)
                pipe.execute()
            except Exception as e:  # noqa: BLE001 - boards catch up by anti-entropy
                _publish_failures.failed("bus publish failed: %s", e)
                return
        _publish_failures.recovered("bus publishing again")
