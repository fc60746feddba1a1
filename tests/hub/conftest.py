"""The websocket push transport over real loopback sockets, starting with the fake SignalR hub itself.

Every interval is shortened: pings every 50 ms, a silent peer dropped after 2 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from testing.signalr_hub import FakeSignalRHub

COMMUNITY_ID = "4711"
# Distinctive, so a leak into any log, error or repr is easy to search for.
API_KEY = "hub-key-LEAKCHECK-5d2e"
SERVER_ID = 1
OTHER_SERVER_ID = 2


def envelope(type_: str = "EVENT_UNIT_STATUS", data: Any = None, key: str = API_KEY) -> dict[str, Any]:
    return {"key": key, "type": type_, "data": {"units": []} if data is None else data}


@pytest.fixture
async def hub() -> AsyncIterator[FakeSignalRHub]:
    async with FakeSignalRHub(keepalive_s=0.05, client_timeout_s=2.0) as fake:
        fake.add_community(COMMUNITY_ID, API_KEY, server_ids=(SERVER_ID, OTHER_SERVER_ID))
        yield fake
