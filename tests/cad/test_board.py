"""The shared read cache of the CAD's rate-limited reads, against the CAD simulator with a real client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.cad.board import CALLS_TTL_S, UNITS_TTL_S, CadBoard, TtlCache
from bot.cad.client import CadClient
from bot.cad.errors import CadError
from bot.cad.models import CadCredentials
from bot.cad.tiers import Tier
from testing.cad_simulator import CadSimulator, SimCommunity
from tests.cad.fixtures import API_KEY, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def board(cad_client: CadClient, clock: FakeClock) -> CadBoard:
    return CadBoard(cad_client, clock=clock)


def on_server(creds: CadCredentials, server_id: int) -> CadCredentials:
    return creds.model_copy(update={"server_id": server_id})


# ---------------------------------------------------------------------------------------------- TTL


async def test_units_are_read_once_per_ttl_and_say_how_old_they_are(
    board: CadBoard,
    cad_sim: CadSimulator,
    cad_community: SimCommunity,
    cad_creds: CadCredentials,
    clock: FakeClock,
) -> None:
    unit = cad_community.add_unit(unit_num="1A-12", name="Jordan Reyes")

    first, first_age = await board.active_units(cad_creds)
    clock.advance(UNITS_TTL_S - 1)
    unit.status = 4  # a change the cached list does not show yet
    second, second_age = await board.active_units(cad_creds)

    assert [u.display_name for u in first] == ["1A-12 Jordan Reyes"]
    assert (first_age, second_age) == (0.0, UNITS_TTL_S - 1)
    assert second[0].status == 2
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 1

    clock.advance(1)
    third, third_age = await board.active_units(cad_creds)

    assert third[0].status == 4 and third_age == 0.0
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 2


async def test_calls_are_read_once_per_ttl_and_only_open_ones_are_asked_for(
    board: CadBoard,
    cad_sim: CadSimulator,
    cad_community: SimCommunity,
    cad_creds: CadCredentials,
    clock: FakeClock,
) -> None:
    cad_community.add_dispatch(title="Traffic stop", address="Route 68")
    cad_community.add_emergency_call(caller="Jane", location="Legion Square", description="Car fire")

    snapshot, _ = await board.calls(cad_creds)
    clock.advance(CALLS_TTL_S / 2)
    cad_community.add_dispatch(title="Later", address="Grove St")
    again, age_s = await board.calls(cad_creds)

    assert [call.title for call in snapshot.active_calls] == ["Traffic stop"]
    assert len(snapshot.emergency_calls) == 1
    assert again is snapshot and age_s == CALLS_TTL_S / 2
    [sent] = cad_sim.requests_of("GET_CALLS")
    assert sent.data == [{"serverId": 1, "closedLimit": 0, "closedOffset": 0}]

    clock.advance(CALLS_TTL_S / 2)
    fresh, _ = await board.calls(cad_creds)
    assert [call.title for call in fresh.active_calls] == ["Traffic stop", "Later"]


async def test_callers_cannot_change_the_shared_unit_list(
    board: CadBoard, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    cad_community.add_unit(unit_num="1A-12")

    units, _ = await board.active_units(cad_creds)
    units.clear()

    assert len((await board.active_units(cad_creds))[0]) == 1


# ---------------------------------------------------------------------------------------------- sharing


async def test_concurrent_misses_share_one_request(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    cad_community.add_unit(unit_num="1A-12")
    cad_sim.latency_s = 0.05  # all callers are waiting while the one request is out

    units = await asyncio.gather(*(board.active_units(cad_creds) for _ in range(5)))
    calls = await asyncio.gather(*(board.calls(cad_creds) for _ in range(5)))

    assert {len(found) for found, _ in units} == {1}
    assert len({id(snapshot) for snapshot, _ in calls}) == 1
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 1
    assert len(cad_sim.requests_of("GET_CALLS")) == 1


async def test_a_caller_that_stops_waiting_leaves_the_answer_for_the_next(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    cad_community.add_unit(unit_num="1A-12")
    cad_sim.latency_s = 0.3

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await board.active_units(cad_creds)
    units, _ = await board.active_units(cad_creds)  # joins the read still under way

    assert len(units) == 1
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 1


async def test_the_board_follows_the_current_client(
    cad_sim: CadSimulator, cad_creds: CadCredentials, make_cad_client: Callable[..., CadClient]
) -> None:
    async with CadSimulator() as other_sim:
        other_sim.add_community(cad_creds.community_id, API_KEY, Tier.PRO)
        clients = [make_cad_client()]
        board = CadBoard(lambda: clients[-1], clock=FakeClock())

        await board.calls(cad_creds)
        clients.append(make_cad_client(base_url=other_sim.base_url))
        board.invalidate_calls(cad_creds.community_id)
        await board.calls(cad_creds)

        assert len(cad_sim.requests_of("GET_CALLS")) == 1
        assert len(other_sim.requests_of("GET_CALLS")) == 1


# ---------------------------------------------------------------------------------------------- failures


async def test_a_failure_reaches_every_waiting_caller_and_is_not_cached(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    cad_community.add_unit(unit_num="1A-12")
    cad_sim.fail_next(1, 400, request_type="GET_ACTIVE_UNITS")
    cad_sim.latency_s = 0.05

    results = await asyncio.gather(*(board.active_units(cad_creds) for _ in range(3)), return_exceptions=True)
    cad_sim.latency_s = 0
    units, _ = await board.active_units(cad_creds)

    assert all(isinstance(result, CadError) for result in results)
    assert len(units) == 1
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 2


# ---------------------------------------------------------------------------------------------- invalidation


async def test_invalidating_calls_reads_them_again_and_leaves_units_alone(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    await board.calls(cad_creds)
    await board.active_units(cad_creds)
    created = cad_community.add_dispatch(title="Just opened", address="Here")

    board.invalidate_calls(cad_creds.community_id)
    snapshot, age_s = await board.calls(cad_creds)
    await board.active_units(cad_creds)

    assert [call.call_id for call in snapshot.active_calls] == [created.call_id] and age_s == 0.0
    assert len(cad_sim.requests_of("GET_CALLS")) == 2
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 1

    board.invalidate_units(cad_creds.community_id)
    await board.active_units(cad_creds)
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 2


async def test_invalidating_one_server_keeps_the_others(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    second = on_server(cad_creds, 2)
    for creds in (cad_creds, second):
        await board.active_units(creds)

    board.invalidate_units(cad_creds.community_id, server_id=2)
    for creds in (cad_creds, second):
        await board.active_units(creds)
    assert [request.data[0]["serverId"] for request in cad_sim.requests_of("GET_ACTIVE_UNITS")] == [1, 2, 2]

    board.invalidate_units(cad_creds.community_id)  # every server of the community
    for creds in (cad_creds, second):
        await board.active_units(creds)
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 5


async def test_a_read_under_way_when_invalidated_does_not_refill_the_cache(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    cad_sim.latency_s = 0.1
    before = asyncio.create_task(board.calls(cad_creds))
    while not cad_sim.requests_of("GET_CALLS"):
        await asyncio.sleep(0.005)
    created = cad_community.add_dispatch(title="Opened meanwhile", address="Here")
    board.invalidate_calls(cad_creds.community_id)  # e.g. the bot just created that call

    await before  # who asked before the change still gets that read's answer
    cad_sim.latency_s = 0
    new, _ = await board.calls(cad_creds)

    # That answer may predate the change, so it was not kept: the next caller read again.
    assert [call.call_id for call in new.active_calls] == [created.call_id]
    assert len(cad_sim.requests_of("GET_CALLS")) == 2


# ---------------------------------------------------------------------------------------------- keys


async def test_communities_and_servers_are_kept_apart(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    other = cad_sim.add_community("other-community", "other-key-0001", Tier.PRO)
    other_creds = CadCredentials(community_id=other.community_id, api_key="other-key-0001")
    cad_community.add_unit(unit_num="S1-UNIT")
    cad_community.add_unit(unit_num="S2-UNIT", server_id=2)
    other.add_unit(unit_num="OTHER")

    seen = {}
    for creds in (cad_creds, on_server(cad_creds, 2), other_creds):
        units, _ = await board.active_units(creds)
        seen[(creds.community_id, creds.server_id)] = [unit.unit_num for unit in units]

    assert seen == {
        (cad_creds.community_id, 1): ["S1-UNIT"],
        (cad_creds.community_id, 2): ["S2-UNIT"],
        ("other-community", 1): ["OTHER"],
    }
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 3


async def test_a_wrong_key_for_a_cached_community_gets_the_cads_refusal_not_the_cached_list(
    board: CadBoard, cad_sim: CadSimulator, cad_community: SimCommunity, cad_creds: CadCredentials
) -> None:
    cad_community.add_unit(unit_num="PRIVATE-UNIT")
    await board.active_units(cad_creds)  # a correctly configured guild fills the cache
    intruder = CadCredentials(community_id=cad_creds.community_id, api_key="guessed-key")

    with pytest.raises(CadError):
        await board.active_units(intruder)
    assert len(cad_sim.requests_of("GET_ACTIVE_UNITS")) == 2


# ---------------------------------------------------------------------------------------------- lifecycle


async def test_close_cancels_reads_under_way(
    board: CadBoard, cad_sim: CadSimulator, cad_creds: CadCredentials
) -> None:
    cad_sim.latency_s = 30
    waiting = asyncio.create_task(board.active_units(cad_creds))
    while not cad_sim.requests_of("GET_ACTIVE_UNITS"):
        await asyncio.sleep(0.005)

    await asyncio.wait_for(board.close(), timeout=5)

    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_ttls_must_be_positive(cad_client: CadClient) -> None:
    with pytest.raises(ValueError):
        CadBoard(cad_client, units_ttl_s=0)
    with pytest.raises(ValueError):
        CadBoard(cad_client, calls_ttl_s=-1)
    assert (CadBoard(cad_client).units_ttl_s, CadBoard(cad_client).calls_ttl_s) == (UNITS_TTL_S, CALLS_TTL_S)


# ---------------------------------------------------------------------------------------------- the TtlCache itself


async def test_cache_shares_one_fetch_between_concurrent_callers() -> None:
    cache: TtlCache[list[int]] = TtlCache(20, clock=FakeClock())
    release = asyncio.Event()
    fetches = 0

    async def fetch() -> list[int]:
        nonlocal fetches
        fetches += 1
        await release.wait()
        return [fetches]

    waiting = [asyncio.create_task(cache.get("community", fetch)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiting)

    assert fetches == 1
    assert {tuple(value) for value, _age in results} == {(1,)}


async def test_cache_expires_keeps_keys_apart_and_does_not_cache_failures() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(20, clock=clock)
    calls: list[str] = []

    def fetcher(value: str) -> Callable[[], Awaitable[str]]:
        async def fetch() -> str:
            calls.append(value)
            return value

        return fetch

    async def failing() -> str:
        calls.append("boom")
        raise RuntimeError("CAD down")

    assert await cache.get("a", fetcher("a1")) == ("a1", 0.0)
    assert await cache.get("b", fetcher("b1")) == ("b1", 0.0)
    clock.advance(5)
    assert await cache.get("a", fetcher("a2")) == ("a1", 5.0)
    clock.advance(15)
    assert await cache.get("a", fetcher("a3")) == ("a3", 0.0)
    with pytest.raises(RuntimeError):
        await cache.get("c", failing)
    assert await cache.get("c", fetcher("c1")) == ("c1", 0.0)
    assert calls == ["a1", "b1", "a3", "boom", "c1"]


async def test_cache_forgets_expired_entries_when_it_stores_new_ones() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(20, clock=clock)

    async def fetch() -> str:
        return "value"

    await cache.get("old", fetch)
    clock.advance(20)
    await cache.get("new", fetch)

    assert cache.known_keys() == {"new"}


def test_cache_needs_a_positive_ttl() -> None:
    with pytest.raises(ValueError):
        TtlCache(0)
