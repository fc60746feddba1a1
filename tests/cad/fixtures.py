"""Reusable fixtures for anything that talks to the CAD: a running simulator and a client pointed at it.

Other test folders can use them with ``from tests.cad.fixtures import cad_sim, cad_client, ...`` in their own
conftest (pytest picks fixtures up by name from the conftest's namespace).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.cad.client import CadClient
from bot.cad.models import CadCredentials
from bot.cad.tiers import Tier
from bot.cad.v2 import CadV2Client
from testing.cad_simulator import CadSimulator, SimCommunity

COMMUNITY_ID = "test-community"
# Distinctive so a leak anywhere (logs, reprs, exception text) is easy to search for.
API_KEY = "sk-LEAKCHECK-7f3a9c21-do-not-print"

# Fast defaults for tests: no real pacing, tiny backoff, a timeout far above loopback latency.
FAST_CLIENT: dict[str, Any] = {
    "timeout_s": 5.0,
    "rate_per_s": 1000.0,
    "burst": 1000,
    "max_retries": 2,
    "backoff_s": 0.01,
    "max_retry_after_s": 0.5,
}


# The v2 client with the same fast defaults (its per-key budgets are the real ones).
FAST_V2_CLIENT: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01}


class FakeClock:
    """A monotonic clock tests move by hand (tier TTLs, 429 pauses)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def cad_sim() -> AsyncIterator[CadSimulator]:
    async with CadSimulator() as simulator:
        yield simulator


@pytest.fixture
def cad_community(cad_sim: CadSimulator) -> SimCommunity:
    """A Pro community (every type the client uses is allowed)."""
    return cad_sim.add_community(COMMUNITY_ID, API_KEY, Tier.PRO)


@pytest.fixture
def cad_creds(cad_community: SimCommunity) -> CadCredentials:
    return CadCredentials(community_id=cad_community.community_id, api_key=API_KEY, server_id=1)


@pytest.fixture
async def cad_http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def make_cad_client(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator
) -> Callable[..., CadClient]:
    """Build a client against the simulator; keyword arguments override ``FAST_CLIENT``."""

    def build(**overrides: Any) -> CadClient:
        options = {**FAST_CLIENT, **overrides}
        base_url = options.pop("base_url", cad_sim.base_url)
        return CadClient(cad_http_session, base_url=base_url, **options)

    return build


@pytest.fixture
def cad_client(make_cad_client: Callable[..., CadClient]) -> CadClient:
    return make_cad_client()


@pytest.fixture
def make_v2_client(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator
) -> Callable[..., CadV2Client]:
    """Build a v2 client against the simulator; keyword arguments override ``FAST_V2_CLIENT``."""

    def build(**overrides: Any) -> CadV2Client:
        options = {**FAST_V2_CLIENT, **overrides}
        base_url = options.pop("base_url", cad_sim.base_url)
        return CadV2Client(cad_http_session, base_url=base_url, **options)

    return build


@pytest.fixture
def v2_client(make_v2_client: Callable[..., CadV2Client]) -> CadV2Client:
    return make_v2_client()
