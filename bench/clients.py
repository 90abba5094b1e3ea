"""Benchmark clients: N real WebSocket connections in a process of their own.

    python bench/clients.py URL N OUT [--cookie C] [--origin O] [--keep 2] [--seconds 60]

Opens N sockets to URL (a list of URLs is spread round-robin), writes OUT + ".ready" when all
are open, then records for every message the receipt time (time.time(), the same clock the
events table's `at` uses on this machine) and the sequence number in its `data-seq` mark.
Stops once every socket has a message covering the seq written to OUT + ".final", on
SIGTERM/SIGINT, or after --seconds, and writes OUT (JSON): per socket the (time, seq)
pairs and a digest of the messages after the first, plus the full messages of the first
--keep sockets, so the caller can check nothing was missed, nothing reordered, every socket got
the same bytes, and the page they build equals a fresh one.
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

import websockets

SEQ = re.compile(r'data-seq="(\d+)"')
COMPRESSION: list[str | None] = [None]  # --deflate: offer permessage-deflate, as browsers do


async def one(i: int, url: str, headers: dict[str, str], keep: bool, out: dict,
              opened: asyncio.Event, counter: list[int], n: int, stop: asyncio.Event) -> None:
    rec: list[tuple[float, int]] = []
    texts: list[str] = []
    digest = hashlib.sha1()
    first = True
    out[i] = {"recv": rec, "texts": texts, "digest": digest, "closed": None, "first_len": 0}
    try:
        async with websockets.connect(url, additional_headers=headers, max_size=None,
                                      compression=COMPRESSION[0], open_timeout=60,
                                      ping_interval=None, close_timeout=1) as ws:
            counter[0] += 1
            if counter[0] == n:
                opened.set()
            while not stop.is_set():
                recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({recv, asyncio.ensure_future(stop.wait())},
                                             return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    break
                msg = recv.result()
                t = time.time()
                text = msg if isinstance(msg, str) else msg.decode()
                if keep:
                    texts.append(text)
                if first:
                    out[i]["first_len"] = len(text.encode())
                    first = False
                    m = SEQ.findall(text)
                    rec.append((t, int(m[-1]) if m else 0))
                    continue
                if text.startswith('<span id="live-beat"') and len(text) < 120:
                    continue  # the heartbeat
                digest.update(text.encode())
                m = SEQ.findall(text)
                if m:  # a message of the page's own audience (not, say, the review count)
                    rec.append((t, int(m[-1])))
    except Exception as e:  # noqa: BLE001 - reported, not raised: one socket is one figure
        out[i]["closed"] = repr(e)[:200]
        counter[0] += 1
        if counter[0] == n:
            opened.set()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--cookie", default="")
    ap.add_argument("--origin", default="")
    ap.add_argument("--keep", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--deflate", action="store_true")
    args = ap.parse_args()
    if args.deflate:
        COMPRESSION[0] = "deflate"
    urls = args.url.split(",")
    headers = {}
    if args.cookie:
        headers["Cookie"] = args.cookie
    if args.origin:
        headers["Origin"] = args.origin
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    out: dict[int, dict] = {}
    opened = asyncio.Event()
    counter = [0]
    tasks = []
    for i in range(args.n):
        url = urls[i % len(urls)]
        if args.origin == "auto":  # each socket's own server's origin
            headers = {**headers, "Origin": "http" + url.split("/ws", 1)[0][2:]}
        tasks.append(asyncio.create_task(one(i, url, headers, i < args.keep,
                                             out, opened, counter, args.n, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # don't stampede the accept queue
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(opened.wait(), 120)
    Path(args.out + ".ready").write_text(str(counter[0]))

    async def until_final() -> None:
        """The driver writes OUT.final (the last event's seq): stop once every open socket
        has a message covering it (or at --seconds)."""
        final = Path(args.out + ".final")
        while not stop.is_set():
            await asyncio.sleep(0.25)
            if final.exists() and final.read_text().strip():
                want = int(final.read_text())
                if all(v["closed"] or (v["recv"] and v["recv"][-1][1] >= want)
                       for v in out.values()):
                    stop.set()

    watcher = asyncio.create_task(until_final())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.seconds)
    watcher.cancel()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    result = [{"recv": v["recv"], "digest": v["digest"].hexdigest(), "closed": v["closed"],
               "first_len": v["first_len"], "texts": v["texts"]}
              for _, v in sorted(out.items())]
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
