"""What a JSON API endpoint is: one row of board.web.api's table, from which both the router
and the OpenAPI document (board.web.openapi) are built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from board.domain.access import Actor
from board.usecases import Dispatch

PREFIX = "/api/v1"


class Views(Protocol):
    """The views this process's sockets follow (board.live.hub.Hub)."""

    def view_of(self, audience: tuple[Any, ...], newest: Callable[[], int],
                wait_s: float = 0.0) -> Any | None: ...


@dataclass(frozen=True)
class Call:
    """One authenticated request, as an endpoint's run() sees it (in a worker thread)."""

    dispatch: Dispatch
    actor: Actor
    path: dict[str, Any]
    body: Any  # the endpoint's body model, validated
    live: Views | None = None  # None: a process without sockets (or a test's bare call)

    @property
    def now(self) -> datetime:
        return self.dispatch.clock()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under PREFIX
    name: str  # the OpenAPI operationId
    tag: str
    summary: str
    run: Callable[[Call], Any]
    returns: type[BaseModel]  # board.web.outputs: what a success answers
    errors: tuple[int, ...] = (401,)
    body: type[BaseModel] | None = None  # board.web.inputs: the JSON body it takes
    status: int = 200
    public: bool = False
    location: Callable[[Any], str] | None = None  # Location header of a 201
    also: tuple[type[BaseModel], ...] = ()  # other shapes a success may answer
    no_store: bool = False  # a recorded reveal: no browser or proxy keeps the answer
    # A write's answer made from the event it wrote: what a retry under the same
    # Idempotency-Key gets when the first request committed but its answer was never stored.
    answer: Callable[[Call, dict[str, Any]], Any] | None = None
