"""Plan tiers: explain refusals from the cached plan, fetch it when asked, and let the CAD decide."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.cad.client import CadClient
from bot.cad.errors import CadNotEnabledError, CadPlanError
from bot.cad.models import CadCredentials
from bot.cad.tiers import Tier
from testing.cad_simulator import CadSimulator, SimCommunity
from tests.cad.fixtures import FakeClock


async def test_known_lower_plan_is_refused_before_any_request(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    cad_community.tier = Tier.PLUS
    assert await cad_client.get_version(cad_creds) is Tier.PLUS
    cad_sim.clear_requests()
    with pytest.raises(CadPlanError) as caught:
        await cad_client.get_blips(cad_creds)
    assert caught.value.user_message == "Blips need Sonoran CAD Pro; this community is on Plus."
    assert (caught.value.required, caught.value.current) == (Tier.PRO, Tier.PLUS)
    assert cad_sim.requests == []
    # Plus-level types still go through.
    await cad_client.get_calls(cad_creds)


async def test_explain_refusal_uses_only_the_cache(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    assert cad_client.explain_refusal(cad_creds, "CALL_911") is None  # plan unknown: no opinion
    assert cad_sim.requests == []
    cad_community.tier = Tier.STANDARD
    await cad_client.get_version(cad_creds)
    assert cad_client.explain_refusal(cad_creds, "CALL_911") is None
    refusal = cad_client.explain_refusal(cad_creds, "lookup")
    assert isinstance(refusal, CadPlanError)
    assert refusal.user_message == "Lookups need Sonoran CAD Plus; this community is on Standard."
    assert cad_client.explain_refusal(cad_creds, "SOMETHING_NEW") is None


async def test_ensure_allowed_fetches_an_unknown_plan(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    cad_community.tier = Tier.STANDARD
    with pytest.raises(CadPlanError) as caught:
        await cad_client.ensure_allowed(cad_creds, "ADD_BLIP")
    assert caught.value.current is Tier.STANDARD
    await cad_client.ensure_allowed(cad_creds, "CALL_911")
    assert [r.type for r in cad_sim.requests] == ["GET_VERSION"]


async def test_tier_is_cached_shared_and_expires(
    make_cad_client: Callable[..., CadClient],
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    cad_sim: CadSimulator,
) -> None:
    clock = FakeClock()
    client = make_cad_client(clock=clock, tier_ttl_s=600)
    tiers = await asyncio.gather(*(client.get_tier(cad_creds) for _ in range(5)))
    assert set(tiers) == {Tier.PRO}
    assert len(cad_sim.requests_of("GET_VERSION")) == 1

    cad_community.tier = Tier.PLUS
    clock.advance(599)
    assert await client.get_tier(cad_creds) is Tier.PRO
    clock.advance(2)
    assert client.cached_tier(cad_creds.community_id) is None
    assert await client.get_tier(cad_creds) is Tier.PLUS
    assert len(cad_sim.requests_of("GET_VERSION")) == 2

    client.invalidate_tier(cad_creds.community_id)
    assert client.cached_tier(cad_creds.community_id) is None
    await client.get_tier(cad_creds)
    assert len(cad_sim.requests_of("GET_VERSION")) == 3


async def test_server_refusal_when_the_plan_is_unknown(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    cad_community.tier = Tier.PLUS
    with pytest.raises(CadNotEnabledError) as caught:
        await cad_client.get_blips(cad_creds)
    assert "ENDPOINT IS NOT ENABLED" in str(caught.value)
    assert caught.value.required is Tier.PRO
    assert "Sonoran CAD Pro" in caught.value.user_message
    # The refusal does not quietly invent a cached plan.
    assert cad_client.cached_tier(cad_creds.community_id) is None


async def test_server_decides_even_when_the_cache_says_yes(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    await cad_client.get_version(cad_creds)  # Pro, cached
    cad_community.tier = Tier.STANDARD  # downgraded since
    with pytest.raises(CadNotEnabledError, match="API IS NOT ENABLED"):
        await cad_client.get_calls(cad_creds)
    assert cad_client.cached_tier(cad_creds.community_id) is Tier.PRO


async def test_api_switched_off_still_answers_get_version(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    cad_community.api_enabled = False
    assert await cad_client.get_version(cad_creds) is Tier.PRO
    with pytest.raises(CadNotEnabledError):
        await cad_client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)


async def test_unknown_plan_number_counts_as_pro_or_better(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    cad_community.tier = Tier(5)
    tier = await cad_client.get_version(cad_creds)
    assert int(tier) == 5 and tier >= Tier.PRO
    assert await cad_client.get_blips(cad_creds) == []
