"""The websocket push transport over real loopback sockets: the fake SignalR hub and the bot's client.

Every interval is shortened (pings every 50 ms, a silent peer dropped after 2 s) and the client's backoff
sleeps go through :class:`ScriptedSleep`, which records each delay and returns at once (or holds it until the
test releases it), so the tests assert the scheduled delays instead of waiting them out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bot.cad.models import CadCredentials
from bot.push.hub_client import HubAuthenticated, HubSession, HubTiming
from testing.signalr_hub import FakeSignalRHub

COMMUNITY_ID = "4711"
# Distinctive, so a leak into any log, error or repr is easy to search for.
API_KEY = "hub-key-LEAKCHECK-5d2e"
SERVER_ID = 1
OTHER_SERVER_ID = 2

FAST_TIMING = HubTiming(
    keepalive_s=0.05,
    server_timeout_s=2.0,
    connect_timeout_s=5.0,
    handshake_timeout_s=5.0,
    invoke_timeout_s=5.0,
    send_timeout_s=5.0,
    close_timeout_s=2.0,
    jitter=0.0,
    stable_after_s=3600.0,
)


def credentials(key: str = API_KEY, server_id: int = SERVER_ID) -> CadCredentials:
    return CadCredentials(community_id=COMMUNITY_ID, api_key=key, server_id=server_id)


def envelope(type_: str = "EVENT_UNIT_STATUS", data: Any = None, key: str = API_KEY) -> dict[str, Any]:
    return {"key": key, "type": type_, "data": {"units": []} if data is None else data}


class ScriptedSleep:
    """Stands in for ``asyncio.sleep`` in the client's backoff: records every delay; returns at once, or, while
    ``hold`` is set, waits until the test calls ``release()``."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hold = False
        self._released = asyncio.Event()
        self._recorded = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._recorded.set()
        if self.hold:
            await self._released.wait()
            self._released.clear()
        else:
            await asyncio.sleep(0)

    def release(self) -> None:
        self._released.set()

    async def wait_count(self, count: int, within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s):
            while len(self.delays) < count:
                self._recorded.clear()
                await self._recorded.wait()


class Inbox:
    """The ``on_event`` callback: keeps every envelope, in order."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self.fail_next = 0

    async def __call__(self, envelope: dict[str, Any]) -> None:
        self.envelopes.append(envelope)
        self._arrived.set()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("the pipeline could not take this event")

    async def wait_count(self, count: int, within_s: float = 5.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(within_s):
            while len(self.envelopes) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.envelopes


class Hooks:
    """The ``on_authenticated`` callback: keeps what each (re)authentication reported."""

    def __init__(self) -> None:
        self.calls: list[HubAuthenticated] = []
        self._called = asyncio.Event()

    async def __call__(self, info: HubAuthenticated) -> None:
        self.calls.append(info)
        self._called.set()

    async def wait_count(self, count: int, within_s: float = 5.0) -> list[HubAuthenticated]:
        async with asyncio.timeout(within_s):
            while len(self.calls) < count:
                self._called.clear()
                await self._called.wait()
        return self.calls


@pytest.fixture
async def hub() -> AsyncIterator[FakeSignalRHub]:
    async with FakeSignalRHub(keepalive_s=0.05, client_timeout_s=2.0) as fake:
        fake.add_community(COMMUNITY_ID, API_KEY, server_ids=(SERVER_ID, OTHER_SERVER_ID))
        yield fake


SessionFactory = Callable[..., Awaitable[HubSession]]


@pytest.fixture
async def start_session(http_session: aiohttp.ClientSession) -> AsyncIterator[SessionFactory]:
    """Builds and starts client sessions (``hub_url`` first); stops every one of them at the end."""
    started: list[HubSession] = []

    async def factory(
        hub_url: str,
        *,
        creds: CadCredentials | None = None,
        on_event: Inbox | None = None,
        on_authenticated: Hooks | None = None,
        timing: HubTiming = FAST_TIMING,
        sleep: ScriptedSleep | None = None,
        **options: Any,
    ) -> HubSession:
        session = HubSession(
            http_session,
            hub_url,
            creds or credentials(),
            on_event=on_event or Inbox(),
            on_authenticated=on_authenticated,
            timing=timing,
            sleep=sleep or ScriptedSleep(),
            **options,
        )
        started.append(session)
        await session.start()
        return session

    yield factory
    for session in started:
        await session.stop()
