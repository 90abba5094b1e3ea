"""Benchmark clients: N real WebSocket connections in a process of their own.

    python bench/clients.py URL N OUT [--cookie C] [--origin O] [--keep 2] [--seconds 60]
    python bench/clients.py SPEC.json 0 OUT [--seconds 60]

(SPEC.json: one socket per entry, each its own URL, cookie and `tag`; `keep` "all" (every
message), "last" (the last update only) or "none"; `mark` "last" (the hub's `data-seq` mark,
the last in a message), "max" (the greatest `data-seq` in it: a wall's ticker) or "versions"
(the job cards' `id`/`data-version` pairs: an officer's queue carries no mark).)

Opens N sockets to URL (a list of URLs is spread round-robin), writes OUT + ".ready" when all
are open, then records for every message the receipt time (time.time(), the same clock the
events table's `at` uses on this machine) and the sequence number in its `data-seq` mark.
Stops once every socket has a message covering the seq written to OUT + ".final", on
SIGTERM/SIGINT, or after --seconds, and writes OUT (JSON): per socket the (time, seq)
pairs and a digest of the messages after the first, plus the full messages of the first
--keep sockets, so the caller can check nothing was missed, nothing reordered, every socket got
the same bytes, and the page they build equals a fresh one. OUT + ".cpu": the CPU seconds this
process used once all its sockets were open.

Each socket is a real RFC 6455 client — the opening handshake with the session cookie, every
frame parsed, its text decoded, pings answered, closes replied to — done by the `websockets`
library's sans-I/O `ClientProtocol` on a plain asyncio protocol (uvloop). No task, future or
queue per message: with the library's asyncio client, the clients' process cost ~150 µs of
Python per frame and, on two cores, was the bottleneck of every server it measured, the bare
one included (BENCHMARKS.md). The receipt time is taken when the bytes reach the process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import uvloop
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

MARK = b'data-seq="'
BEAT = b'<span id="live-beat"'
SEQS = re.compile(rb'data-seq="(\d+)"')
VERSIONS = re.compile(rb'id="job-(\d+)"[^>]*?data-version="(\d+)"')


def seq_of(payload: bytes) -> int | None:
    """The last `data-seq` mark of a message (the hub appends it last), or None."""
    at = payload.rfind(MARK)
    if at < 0:
        return None
    start = at + len(MARK)
    return int(payload[start:payload.index(b'"', start)])


class Run:
    """What every socket of this process shares: how many are open, and when to stop."""

    def __init__(self, n: int, deflate: bool) -> None:
        self.n = n
        self.settled = 0
        self.opened = asyncio.Event()
        self.stop = asyncio.Event()
        self.deflate = deflate

    def settle(self) -> None:
        """A socket finished its handshake, or failed to."""
        self.settled += 1
        if self.settled == self.n:
            self.opened.set()


class Client(asyncio.Protocol):
    """One WebSocket: handshake, then every frame parsed as it arrives (sans-I/O)."""

    def __init__(self, url: str, headers: dict[str, str], keep: bool | str, run: Run,
                 tag: str = "", mark: str = "last") -> None:
        extensions = enable_client_permessage_deflate(None) if run.deflate else None
        self.ws = ClientProtocol(parse_uri(url), extensions=extensions, max_size=None)
        self.url = url
        self.headers = headers
        self.keep = keep
        self.run = run
        self.transport: Any = None
        self.open = False
        self.parts: list[bytes] = []  # a fragmented message, until its last frame
        self.recv: list[tuple[float, int]] = []
        self.texts: list[str] = []
        self.payloads: list[bytes] = []  # every message after the snapshot
        self.first = True
        self.first_len = 0
        self.closed: str | None = None
        self.tag = tag
        self.mark = mark
        self.versions: list[tuple[float, list[tuple[int, int]]]] = []  # mark "versions"
        self.last = ""  # keep "last": the newest update's text

    def seq(self, payload: bytes) -> int | None:
        if self.mark == "max":
            found = SEQS.findall(payload)
            return max(int(x) for x in found) if found else None
        return seq_of(payload)

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        request = self.ws.connect()
        request.headers.update(self.headers)
        self.ws.send_request(request)
        self.flush()

    def data_received(self, data: bytes) -> None:
        t = time.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                self.handshake(event)
            else:
                self.frame(t, event)
        self.flush()

    def handshake(self, response: Response) -> None:
        if self.ws.handshake_exc is not None:
            self.fail(repr(self.ws.handshake_exc))
            return
        self.open = True
        self.run.settle()

    def frame(self, t: float, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT and frame.fin:  # the usual case, first
            self.message(t, frame.data)
            return
        if opcode is Opcode.CLOSE:
            if not self.run.stop.is_set():
                self.fail(f"closed by the server: {self.ws.close_code} {self.ws.close_reason}")
            return
        if opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return  # ping (answered by the protocol) or pong
        self.parts.append(frame.data)
        if frame.fin:
            payload = b"".join(self.parts)
            self.parts = []
            self.message(t, payload)

    def message(self, t: float, payload: bytes) -> None:
        """Decode it (a text message must be UTF-8, a client checks) and note when it came
        and which events it shows; the bytes are kept, the digest made at the end."""
        text = payload.decode()
        if self.keep is True or self.keep == "all":
            self.texts.append(text)
        if self.mark == "versions" and not payload.startswith(BEAT):
            self.versions.append((t, [(int(j), int(v)) for j, v in VERSIONS.findall(payload)]))
        if self.first:  # the snapshot
            self.first = False
            self.first_len = len(payload)
            self.recv.append((t, self.seq(payload) or 0))
            if self.keep == "last":
                self.last = text
            return
        if payload.startswith(BEAT) and len(payload) < 120 and self.mark == "max":
            return  # the beat names the hub's last event, not the newest a wall's ticker shows
        if payload.startswith(BEAT) and len(payload) < 120:
            # The mark alone: the heartbeat, or a catch-up whose events the last update already
            # showed. Either says every event up to its seq is here (the hub's beat names only
            # events already sent), so it counts when it moves on; its bytes are not an update.
            seq = seq_of(payload)
            if seq is not None and self.recv and seq > self.recv[-1][1]:
                self.recv.append((t, seq))
            return
        self.payloads.append(payload)
        if self.keep == "last":
            self.last = text
        seq = self.seq(payload)
        if seq is not None:  # a message of the page's own audience (not the review count)
            self.recv.append((t, seq))

    def flush(self) -> None:
        out = self.ws.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            for chunk in out:
                if chunk:
                    self.transport.write(chunk)
                else:  # the protocol asks for the TCP connection to end (after a close)
                    self.transport.close()

    def fail(self, why: str) -> None:
        if self.closed is None:
            self.closed = why[:200]
        if not self.open:
            self.open = True  # counted as settled once
            self.run.settle()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.run.stop.is_set():
            self.fail(f"connection lost: {exc!r}")

    def close(self) -> None:
        """Say goodbye as a client does: a close frame, then the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(Exception):
            self.ws.send_close(1000)
            self.flush()
        self.transport.close()


async def connect(loop: asyncio.AbstractEventLoop, client: Client, url: str) -> None:
    uri = parse_uri(url)
    try:
        await asyncio.wait_for(loop.create_connection(lambda: client, uri.host, uri.port), 60)
    except Exception as e:  # noqa: BLE001 - reported, not raised: one socket is one figure
        client.fail(repr(e))


async def until_final(out: str, clients: list[Client], stop: asyncio.Event) -> None:
    """The driver writes OUT.final (the last event's seq): stop once every open socket
    has a message covering it."""
    final = Path(out + ".final")
    while not stop.is_set():
        await asyncio.sleep(0.25)
        if final.exists() and final.read_text().strip():
            want = int(final.read_text())
            if all(c.closed or (c.recv and c.recv[-1][1] >= want) for c in clients):
                stop.set()


def result(c: Client) -> dict[str, Any]:
    digest = hashlib.sha1()
    for payload in c.payloads:
        digest.update(payload)
    out = {"url": c.url, "recv": c.recv, "digest": digest.hexdigest(), "closed": c.closed,
           "first_len": c.first_len, "texts": c.texts}
    if c.tag:
        out.update(tag=c.tag, versions=c.versions, last=c.last,
                   messages=len(c.payloads), bytes=sum(len(p) for p in c.payloads))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--cookie", default="")
    ap.add_argument("--origin", default="")
    ap.add_argument("--keep", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--deflate", action="store_true",
                    help="offer permessage-deflate, as browsers do")
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    if args.url.endswith(".json"):  # a spec: every socket its own URL, cookie and tag
        spec = json.loads(Path(args.url).read_text())
        run = Run(len(spec), args.deflate)
        clients: list[Client] = []
        for s in spec:
            headers = {"Cookie": s["cookie"]} if s.get("cookie") else {}
            if s["url"].startswith("ws://"):
                headers["Origin"] = "http" + s["url"].split("/ws", 1)[0][2:]
            clients.append(Client(s["url"], headers, s.get("keep", "none"), run, s["tag"],
                                  s.get("mark", "last")))
    else:
        urls = args.url.split(",")
        headers = {"Cookie": args.cookie} if args.cookie else {}
        if args.origin and args.origin != "auto":
            headers["Origin"] = args.origin
        run = Run(args.n, args.deflate)
        clients = []
        for i in range(args.n):
            url = urls[i % len(urls)]
            own = dict(headers)
            if args.origin == "auto":  # each socket's own server's origin
                own["Origin"] = "http" + url.split("/ws", 1)[0][2:]
            clients.append(Client(url, own, i < args.keep, run))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, run.stop.set)
    pending = []
    for i, client in enumerate(clients):
        pending.append(asyncio.create_task(connect(loop, client, client.url)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # don't stampede the accept queue
    await asyncio.gather(*pending)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.opened.wait(), 120)
    Path(args.out + ".ready").write_text(str(run.settled))
    cpu = time.process_time()
    watcher = asyncio.create_task(until_final(args.out, clients, run.stop))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.stop.wait(), args.seconds)
    run.stop.set()
    watcher.cancel()
    for c in clients:
        c.close()
    Path(args.out + ".cpu").write_text(str(time.process_time() - cpu))  # once all were open
    # written aside and renamed: the bench reads the file as soon as it exists
    part = Path(args.out + ".part")
    part.write_text(json.dumps([result(c) for c in clients]))
    part.replace(args.out)


if __name__ == "__main__":
    uvloop.run(main())
