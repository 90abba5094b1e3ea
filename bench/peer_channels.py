"""The peer: the same broadcast as most Python teams would build it, Django Channels with the
channels-redis layer, served by the same uvicorn.

    python bench/peer_channels.py PORT REDIS_URL

Board clients connect to /ws (a consumer in group "board"), get the snapshot, then every
message sent to the group. The driver connects to /control and sends "S<text>" (snapshot) or
"B<text>" (group_send the text): the same bytes the board sent, at the same rate.
"""

from __future__ import annotations

import sys

import django
from django.conf import settings

PORT, REDIS_URL = int(sys.argv[1]), sys.argv[2]
settings.configure(
    DEBUG=False, SECRET_KEY="bench-only", ALLOWED_HOSTS=["*"], INSTALLED_APPS=["channels"],
    CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                # redis-py 8 reads with a 5 s timeout by default, which
                                # kills channels-redis 4.3's idle blocking receive (1011
                                # every 5 s): give the layer's reads no such limit.
                                "CONFIG": {"hosts": [{"address": REDIS_URL,
                                                      "socket_timeout": 3600}],
                                           "prefix": "bench-peer",
                                           "capacity": 1000}}},
)
django.setup()

import uvicorn  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

snapshot = [""]


class Board(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add("board", self.channel_name)
        await self.accept()
        await self.send(text_data=snapshot[0])

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard("board", self.channel_name)

    async def push(self, event: dict) -> None:
        await self.send(text_data=event["text"])


class Control(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        text = text_data or ""
        if text.startswith("S"):
            snapshot[0] = text[1:]
        else:
            await self.channel_layer.group_send("board", {"type": "push", "text": text[1:]})


application = ProtocolTypeRouter({"websocket": URLRouter([
    path("ws", Board.as_asgi()), path("control", Control.as_asgi())])})

if __name__ == "__main__":
    uvicorn.run(application, host="127.0.0.1", port=PORT, log_level="warning",
                ws_per_message_deflate=False, backlog=2048)
