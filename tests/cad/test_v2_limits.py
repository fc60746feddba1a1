"""The v2 per-key limits: one budget per API key shared by every guild, refused at once with when to try
again, and a 429's ``Retry-After`` honoured (nothing reaches the CAD on that endpoint before it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.cad.errors import CadRateLimitedError
from bot.cad.models import CadCredentials
from bot.cad.v2 import CadV2Client
from bot.cad.v2_endpoints import OPERATIONS, SELF_LIMIT_PER_MINUTE
from bot.cad.v2_limits import DEFAULT_PAUSE_S, KeyBudgets, retry_delay
from testing.cad_simulator import CadSimulator, SimCommunity
from tests.cad.fixtures import API_KEY, COMMUNITY_ID, FakeClock

ACTIVE_UNITS = OPERATIONS["get_active_units"]
LOOKUPS = [OPERATIONS[op] for op in ("lookup_name_or_plate", "lookup_by_value", "lookup_by_custom")]


# ---------------------------------------------------------------------------------------------- the table


def test_every_limit_is_the_documented_number() -> None:
    expected = {
        "create_911_call": 10,
        "remove_911_call": 10,
        "set_unit_panic": 20,
        "set_unit_status": 30,
        "get_active_units": 3,
        "get_account_units": 10,
        "get_calls": 5,
        "get_current_call": 10,
        "create_dispatch_call": 20,
        "update_dispatch_call": 10,
        "attach_units": 10,
        "detach_units": 10,
        "add_call_note": 60,
        "close_dispatch_calls": 20,
        "get_dispatch_templates": None,
        "get_dispatch_template": None,
        "create_custom_dispatch_call": None,
        "get_blips": 10,
        "create_blip": 30,
        "update_blip": 30,
        "delete_blips": 30,
        "lookup_name_or_plate": 30,
        "lookup_by_value": 30,
        "lookup_by_custom": 30,
        "get_characters": 10,
        "get_account": 10,
        "modify_account_permissions": 10,
        "apply_permission_key": 10,
        "create_community_link": 30,
        "check_community_link": 30,
        "verify_secret": 10,
        "get_servers": 10,
        "get_version": 10,
        "get_info": 10,
    }
    assert {op.id: op.per_minute for op in OPERATIONS.values()} == expected
    assert OPERATIONS["get_dispatch_templates"].budget_per_minute == SELF_LIMIT_PER_MINUTE == 10
    assert {op.budget_key for op in LOOKUPS} == {"lookups"}


# ---------------------------------------------------------------------------------------------- KeyBudgets


def test_a_full_budget_says_when_the_oldest_slot_frees() -> None:
    clock = FakeClock()
    budgets = KeyBudgets(clock=clock)
    for _ in range(3):
        assert budgets.acquire(API_KEY, ACTIVE_UNITS) == 0.0
        clock.advance(10)
    assert budgets.acquire(API_KEY, ACTIVE_UNITS) == pytest.approx(30.0)  # the first slot frees at t+60
    clock.advance(30)
    assert budgets.acquire(API_KEY, ACTIVE_UNITS) == 0.0
    assert budgets.remaining(API_KEY, ACTIVE_UNITS) == 0


def test_budgets_are_filed_under_a_digest_never_the_key() -> None:
    budgets = KeyBudgets(clock=FakeClock())
    budgets.acquire(API_KEY, ACTIVE_UNITS)
    budgets.pause(API_KEY, OPERATIONS["get_calls"], 5)
    assert API_KEY not in repr(vars(budgets))
    assert budgets.key_id(API_KEY) == budgets.key_id(API_KEY) != budgets.key_id("other-key")
    assert KeyBudgets().key_id(API_KEY) != budgets.key_id(API_KEY)  # salted per process


def test_the_three_lookups_draw_on_one_budget() -> None:
    budgets = KeyBudgets(clock=FakeClock())
    for i in range(30):
        assert budgets.acquire(API_KEY, LOOKUPS[i % 3]) == 0.0
    assert all(budgets.acquire(API_KEY, op) > 0 for op in LOOKUPS)


def test_pauses_take_the_later_end_and_forget_clears_a_key() -> None:
    clock = FakeClock()
    budgets = KeyBudgets(clock=clock)
    calls = OPERATIONS["get_calls"]
    budgets.pause(API_KEY, calls, 30)
    budgets.pause(API_KEY, calls, 5)
    assert budgets.paused_for(API_KEY, calls) == 30
    assert budgets.acquire(API_KEY, calls) == 30
    assert budgets.paused_for("another-key", calls) == 0.0
    budgets.forget(API_KEY)
    assert budgets.acquire(API_KEY, calls) == 0.0


def test_retry_delay_reads_every_header_the_gateway_may_send() -> None:
    now = datetime(2026, 4, 8, 12, 0, tzinfo=UTC)
    assert retry_delay({"Retry-After": "12"}, now=now) == 12
    assert (
        retry_delay({"Retry-After": format_datetime(now + timedelta(seconds=30), usegmt=True)}, now=now) == 30
    )
    assert retry_delay({"RateLimit-Reset": "7"}, now=now) == 7
    assert retry_delay({"X-RateLimit-Reset": str(int(now.timestamp()) + 20)}, now=now) == 20
    assert retry_delay({"Retry-After": "soon", "RateLimit-Reset": "4"}, now=now) == 4
    assert retry_delay({"Retry-After": "inf"}, now=now) is None
    assert retry_delay({}, now=now) is None


# ---------------------------------------------------------------------------------------------- with the CAD


@pytest.fixture
def clock(cad_sim: CadSimulator) -> FakeClock:
    """One fake clock for the client's budgets and the simulator's minute windows."""
    fake = FakeClock(now=1_800_000_000.0)  # on a minute boundary
    cad_sim.v2.clock = fake
    return fake


def guild(community: SimCommunity, name: str) -> CadCredentials:
    # Two Discord servers set up with the same CAD key: different rows in the bot, one community at the CAD.
    return CadCredentials(community_id=f"{community.community_id}-{name}", api_key=API_KEY, server_id=1)


async def test_two_guilds_on_one_key_share_one_budget(
    make_v2_client: Callable[..., CadV2Client],
    cad_community: SimCommunity,
    cad_sim: CadSimulator,
    clock: FakeClock,
) -> None:
    client = make_v2_client(clock=clock)
    first, second = guild(cad_community, "a"), guild(cad_community, "b")
    await client.get_active_units(first)
    await client.get_active_units(second)
    await client.get_active_units(first)
    with pytest.raises(CadRateLimitedError) as caught:
        await client.get_active_units(second)
    assert caught.value.retry_after == pytest.approx(60.0)
    assert caught.value.user_message == (
        "Unit lists are limited by the CAD to 3 a minute for this community, and those are used up; "
        "try again in 60 s."
    )
    assert len(cad_sim.requests_of("get_active_units")) == 3  # the refusal sent nothing
    # Other endpoints have their own budgets.
    await client.get_calls(second)
    clock.advance(61)
    await client.get_active_units(second)
    assert len(cad_sim.requests_of("get_active_units")) == 4


async def test_clients_sharing_the_process_budgets_share_the_key_budget(
    make_v2_client: Callable[..., CadV2Client],
    cad_creds: CadCredentials,
    cad_sim: CadSimulator,
    clock: FakeClock,
) -> None:
    budgets = KeyBudgets(clock=clock)
    one, two = make_v2_client(budgets=budgets, clock=clock), make_v2_client(budgets=budgets, clock=clock)
    for client in (one, two, one):
        await client.get_active_units(cad_creds)
    with pytest.raises(CadRateLimitedError):
        await two.get_active_units(cad_creds)
    assert len(cad_sim.requests_of("get_active_units")) == 3


async def test_different_keys_have_separate_budgets(
    make_v2_client: Callable[..., CadV2Client],
    cad_creds: CadCredentials,
    cad_sim: CadSimulator,
    clock: FakeClock,
) -> None:
    other = cad_sim.add_community("other-community", "other-key")
    other_creds = CadCredentials(community_id=other.community_id, api_key="other-key")
    client = make_v2_client(clock=clock)
    for _ in range(3):
        await client.get_active_units(cad_creds)
    with pytest.raises(CadRateLimitedError):
        await client.get_active_units(cad_creds)
    for _ in range(3):
        await client.get_active_units(other_creds)
    assert [r.community_id for r in cad_sim.requests_of("get_active_units")] == [COMMUNITY_ID] * 3 + [
        "other-community"
    ] * 3


async def test_retry_after_is_honoured_nothing_reaches_the_cad_before_it(
    make_v2_client: Callable[..., CadV2Client],
    cad_creds: CadCredentials,
    cad_sim: CadSimulator,
    clock: FakeClock,
) -> None:
    client = make_v2_client(clock=clock)
    cad_sim.rate_limit_next(1, retry_after=30, request_type="get_calls")
    with pytest.raises(CadRateLimitedError) as first:
        await client.get_calls(cad_creds)
    assert first.value.retry_after == 30
    clock.advance(29)
    with pytest.raises(CadRateLimitedError) as waiting:
        await client.get_calls(cad_creds)
    assert waiting.value.retry_after == pytest.approx(1.0)
    assert "try again in 1 s" in waiting.value.user_message
    assert len(cad_sim.requests_of("get_calls")) == 1
    await client.get_blips(cad_creds)  # another endpoint is not paused
    clock.advance(1.5)
    await client.get_calls(cad_creds)
    assert [r.status for r in cad_sim.requests_of("get_calls")] == [429, 200]


async def test_a_429_without_retry_after_pauses_for_the_default(
    make_v2_client: Callable[..., CadV2Client],
    cad_creds: CadCredentials,
    cad_sim: CadSimulator,
    clock: FakeClock,
) -> None:
    client = make_v2_client(clock=clock)
    cad_sim.rate_limit_next(1, request_type="get_blips")
    cad_sim.v2.enforce_limits = False  # so the simulator adds no Retry-After of its own
    with pytest.raises(CadRateLimitedError) as caught:
        await client.get_blips(cad_creds)
    assert caught.value.retry_after == DEFAULT_PAUSE_S
    clock.advance(DEFAULT_PAUSE_S - 1)
    with pytest.raises(CadRateLimitedError):
        await client.get_blips(cad_creds)
    clock.advance(1.5)
    assert await client.get_blips(cad_creds) == []
    assert len(cad_sim.requests_of("get_blips")) == 2


async def test_someone_else_on_the_key_spends_the_budget_and_the_cads_429_is_honoured(
    make_v2_client: Callable[..., CadV2Client],
    cad_creds: CadCredentials,
    cad_sim: CadSimulator,
    clock: FakeClock,
) -> None:
    """The game server's integration holds the same key: the CAD counts its requests, the bot cannot."""
    game_server = make_v2_client(clock=clock)
    bot = make_v2_client(clock=clock)
    clock.advance(15)  # 45 s before the simulator's minute window ends
    for _ in range(3):
        await game_server.get_active_units(cad_creds)
    with pytest.raises(CadRateLimitedError) as caught:
        await bot.get_active_units(cad_creds)
    assert caught.value.status == 429 and caught.value.retry_after == 45
    with pytest.raises(CadRateLimitedError):
        await bot.get_active_units(cad_creds)
    assert len(cad_sim.requests_of("get_active_units")) == 4
