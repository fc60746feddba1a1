"""Retries, timeouts, rate limits and dropped connections: only repeat what cannot do harm twice."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import pytest

from bot.cad.client import CadClient
from bot.cad.errors import CadRateLimitedError, CadTimeoutError, CadUnavailableError
from bot.cad.models import CadCredentials
from testing.cad_simulator import CadSimulator, SimCommunity
from tests.cad.fixtures import FakeClock


async def test_timeout_on_a_write_fails_fast_and_is_not_repeated(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    client = make_cad_client(timeout_s=0.2)
    cad_sim.latency_s = 2.0
    started = time.monotonic()
    with pytest.raises(CadTimeoutError) as caught:
        await client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    assert time.monotonic() - started < 1.5  # well under the simulator's delay
    assert len(cad_sim.requests_of("CALL_911")) == 1
    assert "may already be done" in caught.value.user_message


async def test_timeout_on_a_read_is_retried(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    client = make_cad_client(timeout_s=0.2, max_retries=1)
    cad_sim.latency_s = 2.0
    with pytest.raises(CadTimeoutError):
        await client.get_calls(cad_creds)
    assert len(cad_sim.requests_of("GET_CALLS")) == 2


async def test_429_then_success_is_retried_for_any_type(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    cad_sim.rate_limit_next(1)
    call_id = await cad_client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    assert [r.status for r in cad_sim.requests_of("CALL_911")] == [429, 200]
    assert list(cad_community.emergency_calls) == [call_id]


async def test_retry_after_is_honoured(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    client = make_cad_client(max_retry_after_s=5.0, backoff_s=0.0)
    cad_sim.rate_limit_next(1, retry_after=0.3)
    started = time.monotonic()
    await client.get_calls(cad_creds)
    assert time.monotonic() - started >= 0.25


async def test_retry_after_is_capped(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    client = make_cad_client(max_retry_after_s=0.05)
    cad_sim.rate_limit_next(1, retry_after=120)
    started = time.monotonic()
    await client.get_calls(cad_creds)
    assert time.monotonic() - started < 5.0


async def test_429_exhausted_pauses_only_that_type_for_60_s(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    clock = FakeClock()
    client = make_cad_client(max_retries=2, clock=clock)
    cad_sim.rate_limit_next(3, request_type="GET_CALLS")
    with pytest.raises(CadRateLimitedError) as caught:
        await client.get_calls(cad_creds)
    assert len(cad_sim.requests_of("GET_CALLS")) == 3
    assert caught.value.retry_after == 60
    assert "slow down" in caught.value.user_message

    # Refused at once, without a request, while paused.
    with pytest.raises(CadRateLimitedError):
        await client.get_calls(cad_creds)
    assert len(cad_sim.requests_of("GET_CALLS")) == 3

    # Other types are not affected.
    await client.get_active_units(cad_creds)

    clock.advance(61)
    await client.get_calls(cad_creds)
    assert len(cad_sim.requests_of("GET_CALLS")) == 4


async def test_pause_is_per_community(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    other = cad_sim.add_community("other-community", "other-key")
    other_creds = CadCredentials(community_id=other.community_id, api_key="other-key")
    client = make_cad_client(max_retries=0)
    cad_sim.rate_limit_next(1)
    with pytest.raises(CadRateLimitedError):
        await client.get_calls(cad_creds)
    await client.get_calls(other_creds)


async def test_500_is_retried_for_reads(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    cad_sim.fail_next(1, status=500)
    await cad_client.get_calls(cad_creds)
    assert [r.status for r in cad_sim.requests_of("GET_CALLS")] == [500, 200]


async def test_500_on_a_write_is_not_retried(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    cad_sim.fail_next(1, status=500)
    with pytest.raises(CadUnavailableError) as caught:
        await cad_client.unit_panic(cad_creds, is_panic=True, api_id="discord:1")
    assert caught.value.status == 500
    assert len(cad_sim.requests_of("UNIT_PANIC")) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried_even_for_writes(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator, status: int
) -> None:
    cad_sim.fail_next(1, status=status)
    await cad_client.call_911(cad_creds, caller="a", location="b", description="c", emergency=False)
    assert [r.status for r in cad_sim.requests_of("CALL_911")] == [status, 200]


async def test_persistent_outage_gives_up_after_max_retries(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    cad_sim.fail_next(5, status=500)
    with pytest.raises(CadUnavailableError):
        await cad_client.get_calls(cad_creds)
    assert len(cad_sim.requests_of("GET_CALLS")) == 3  # first try + max_retries


async def test_dropped_connection_is_retried_for_reads(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    cad_sim.drop_next(1)
    units = await cad_client.get_active_units(cad_creds)
    assert units == []
    assert [r.status for r in cad_sim.requests_of("GET_ACTIVE_UNITS")] == [None, 200]


async def test_dropped_connection_on_a_write_is_reported(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    cad_sim.drop_next(1)
    with pytest.raises(CadUnavailableError) as caught:
        await cad_client.close_call(cad_creds, 7)
    assert "try again" in caught.value.user_message
    assert len(cad_sim.requests_of("CLOSE_CALL")) == 1


async def test_connection_refused_is_retried_then_reported(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = make_cad_client(base_url=f"http://127.0.0.1:{closed_port}", max_retries=2)
    caplog.set_level(logging.DEBUG, logger="bot.cad")
    with pytest.raises(CadUnavailableError) as caught:
        # A write: a refused connection means nothing was applied, so it may be retried too.
        await client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    assert not isinstance(caught.value, CadTimeoutError)
    assert "attempt=3 failed" in caplog.text


async def test_limiter_spaces_requests_per_community(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    client = make_cad_client(rate_per_s=20.0, burst=2)
    started = time.monotonic()
    for _ in range(6):
        await client.get_version(cad_creds)
    # 2 immediate, then 4 at 50 ms each: at least ~0.2 s (generous lower bound only).
    assert time.monotonic() - started >= 0.15
    assert len(cad_sim.requests) == 6
