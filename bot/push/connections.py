"""Connection limits aiohttp does not have: a deadline for request heads and a cap on open connections.

:class:`ConnectionGuard` wraps the protocol factory of aiohttp's server (``loop.create_server(guard.wrap(...))``),
so every connection passes through a thin :class:`asyncio.Protocol` that

* refuses connections beyond ``max_connections`` at once: they are answered ``503`` with ``Retry-After`` and
  closed without reaching aiohttp (nothing was read, so the sender simply retries);
* gives a request head (request line and headers) ``header_timeout_s`` to arrive, counted from the moment the
  connection opens, or, on a kept-alive connection, from the first byte of the next request. A client that
  dribbles its headers (slowloris) gets ``408`` and is closed. The listener's middleware tells the guard when
  a request's head was complete (:meth:`ConnectionGuard.request_started`) and when it was answered.

A connection with nothing to say between requests is closed by aiohttp's ``keepalive_timeout``; a slow body is
the listener's business (``body_timeout_s``, 408), since only the handler reads it.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# A refused client gets this long to read its 503 before the socket is closed (closing with its request still
# unread would reset the connection and could lose the answer).
REFUSED_LINGER_S = 1.0
REFUSED_RETRY_AFTER_S = 1


def _raw_response(status: str, body: dict[str, object], extra_headers: str = "") -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"{extra_headers}"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + payload


BUSY_RESPONSE = _raw_response(
    "503 Service Unavailable",
    {"ok": False, "error": "busy", "message": "too many open connections; please retry"},
    f"Retry-After: {REFUSED_RETRY_AFTER_S}\r\n",
)
HEAD_TIMEOUT_RESPONSE = _raw_response(
    "408 Request Timeout",
    {"ok": False, "error": "timeout", "message": "the request headers did not arrive in time"},
)


class GuardEvents:
    """What the guard reports (the pipeline's metrics implement it); the default does nothing."""

    def opened(self, open_now: int) -> None:
        return None

    def closed(self, open_now: int) -> None:
        return None

    def refused(self) -> None:
        return None

    def head_timed_out(self) -> None:
        return None


class _State(enum.Enum):
    HEAD = "head"  # waiting for a request head; the deadline runs
    BUSY = "busy"  # a request is being handled
    IDLE = "idle"  # between requests on a kept-alive connection (aiohttp's keep-alive timeout applies)
    REFUSED = "refused"


class ConnectionGuard:
    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout_s: float,
        events: GuardEvents | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if header_timeout_s <= 0:
            raise ValueError("header_timeout_s must be positive")
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self._events = events or GuardEvents()
        self._open: dict[asyncio.BaseTransport, _GuardedProtocol] = {}
        self._refusing: set[_GuardedProtocol] = set()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def wrap(self, inner_factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` that guards each connection ``inner_factory`` serves."""

        def factory() -> asyncio.Protocol:
            return _GuardedProtocol(self, inner_factory)

        return factory

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        """A request's head is complete and its handler runs: the head deadline stops."""
        connection = self._open.get(transport) if transport is not None else None
        if connection is not None:
            connection.request_started()

    def request_finished(self, transport: asyncio.BaseTransport | None) -> None:
        connection = self._open.get(transport) if transport is not None else None
        if connection is not None:
            connection.request_finished()

    def close_all(self) -> None:
        """Close refused connections still lingering (aiohttp closes the ones it serves on shutdown)."""
        for connection in list(self._refusing):
            connection.close()

    # -- called by the connections ------------------------------------------------------------------

    def _admit(self, connection: _GuardedProtocol, transport: asyncio.BaseTransport) -> bool:
        if len(self._open) >= self.max_connections:
            self._events.refused()
            return False
        self._open[transport] = connection
        self._events.opened(len(self._open))
        return True

    def _linger_refused(self, connection: _GuardedProtocol) -> bool:
        # Refused connections may linger for a moment, but never more of them than the cap itself.
        if len(self._refusing) >= self.max_connections:
            return False
        self._refusing.add(connection)
        return True

    def _forget(self, connection: _GuardedProtocol, transport: asyncio.BaseTransport | None) -> None:
        self._refusing.discard(connection)
        if transport is not None and self._open.get(transport) is connection:
            del self._open[transport]
            self._events.closed(len(self._open))

    def _head_timed_out(self) -> None:
        self._events.head_timed_out()


class _GuardedProtocol(asyncio.Protocol):
    """Forwards everything to aiohttp's protocol, except for refused connections and late request heads."""

    def __init__(self, guard: ConnectionGuard, inner_factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._inner_factory = inner_factory
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._state = _State.HEAD
        self._timer: asyncio.TimerHandle | None = None
        # When the current request head's time is up (loop time). The timer is not moved for every request: it
        # stays set for an earlier deadline and, when it fires, looks again (see _head_deadline).
        self._head_due_at = 0.0

    # -- asyncio.Protocol -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._guard._admit(self, transport):
            self._refuse(transport)
            return
        self._start_head()
        self._inner = self._inner_factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return  # a refused connection: its request is never read
        if self._state is _State.IDLE and data:
            # The next request on a kept-alive connection has begun: its head gets the same deadline.
            self._state = _State.HEAD
            self._start_head()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is None:
            self.close()  # the refused client has read its answer and hung up
            return None
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._guard._forget(self, self._transport)
        self._transport = None
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    # -- from the listener's middleware ---------------------------------------------------------------

    def request_started(self) -> None:
        # The head deadline's timer is left to fire and find nothing to do: cancelling and setting one per
        # request would cost two timer operations per event.
        self._state = _State.BUSY

    def request_finished(self) -> None:
        if self._state is _State.BUSY:
            self._state = _State.IDLE

    def close(self) -> None:
        self._disarm()
        if self._transport is not None:
            self._transport.close()

    # -- internals ------------------------------------------------------------------------------------

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._state = _State.REFUSED
        transport.write(BUSY_RESPONSE)
        if self._guard._linger_refused(self) and transport.can_write_eof():
            transport.write_eof()
            self._arm(REFUSED_LINGER_S, self.close)
        else:
            transport.close()

    def _start_head(self) -> None:
        loop = asyncio.get_running_loop()
        self._head_due_at = loop.time() + self._guard.header_timeout_s
        if self._timer is None:
            self._timer = loop.call_at(self._head_due_at, self._head_deadline)

    def _head_deadline(self) -> None:
        self._timer = None
        if self._state is not _State.HEAD or self._transport is None:
            return  # the head came in time (a later one sets the timer again)
        loop = asyncio.get_running_loop()
        if loop.time() < self._head_due_at:
            # Set for an earlier request's head; this one's time is not up yet.
            self._timer = loop.call_at(self._head_due_at, self._head_deadline)
            return
        peer = self._transport.get_extra_info("peername")
        log.debug("closing a connection from %s: its request head was not complete in time", peer)
        self._guard._head_timed_out()
        self._transport.write(HEAD_TIMEOUT_RESPONSE)
        self._transport.close()

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
