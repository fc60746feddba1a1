"""/911 and /311 through SimCord against the CAD simulator: what the member sees and what the CAD received."""

from __future__ import annotations

import pytest
from simcord import OptionError

from bot.cad.tiers import Tier
from bot.cooldowns import MemberCooldowns
from bot.storage.models import CommandGroup
from tests.cogs._member_helpers import (
    FakeClock,
    answer_types,
    channel_posts,
    refusal,
    reply,
    reply_mentions,
)
from tests.harness import API_KEY, COMMUNITY_ID, World


@pytest.fixture
def clock(world: World) -> FakeClock:
    """Cooldowns on a hand-driven clock: no sleeping, no flakes."""
    fake = FakeClock()
    # discord.py loads extensions as fresh module objects, so the class is not cogs.community.Community.
    cog = world.bot.get_cog("Community")
    assert isinstance(cog.cooldowns, MemberCooldowns)
    cog.cooldowns = MemberCooldowns(clock=fake)
    return fake


async def test_911_sends_an_emergency_call_and_confirms_with_the_call_id(world: World) -> None:
    since = len(world.env.http_requests)
    result = await world.member.slash(
        world.channel, "911", location="Legion Square", description="Car on fire"
    )

    assert reply(result) == "📞 911 call #1042 sent to dispatch."
    assert answer_types(world, since)[0] == 5  # deferred before talking to the CAD
    [sent] = world.sim.requests_of("CALL_911")
    assert sent.community_id == "4711"
    assert sent.data == [
        {
            "serverId": 1,
            "isEmergency": True,
            "caller": "civilian",
            "location": "Legion Square",
            "description": "Car on fire",
        }
    ]
    assert world.community.emergency_calls[1042].description == "Car on fire"
    # The 911 card comes from the CAD's EVENT_911 push, never from the command itself.
    assert channel_posts(world, since) == []
    assert reply_mentions(world, since) == [{"parse": []}]


async def test_311_sends_a_civil_call_with_the_caller_given(world: World) -> None:
    result = await world.member.slash(
        world.channel, "311", location="Vinewood Blvd", description="Noise complaint", caller="Jane Doe"
    )

    assert reply(result) == "📞 311 call #1042 sent to dispatch."
    [sent] = world.sim.requests_of("CALL_911")
    assert sent.data[0]["isEmergency"] is False
    assert sent.data[0]["caller"] == "Jane Doe"


async def test_caller_defaults_to_the_members_display_name(world: World) -> None:
    nicknamed = world.guild.add_member(world.env.create_user("ssmith"), nick="Sam the Baker")

    await nicknamed.slash(world.channel, "911", location="Paleto Bay", description="Robbery")

    [sent] = world.sim.requests_of("CALL_911")
    assert sent.data[0]["caller"] == "Sam the Baker"


async def test_the_guilds_server_id_is_used(world: World) -> None:
    await world.storage.guilds.set_cad(world.guild.id, COMMUNITY_ID, API_KEY, server_id=2)  # as /setup does

    await world.member.slash(world.channel, "911", location="Sandy Shores", description="Shots fired")

    [sent] = world.sim.requests_of("CALL_911")
    assert sent.data[0]["serverId"] == 2


@pytest.mark.parametrize(
    ("options", "blank"),
    [
        ({"location": "   ", "description": "Car fire"}, "location"),
        ({"location": "Legion Square", "description": " \t "}, "description"),
        ({"location": "Legion Square", "description": "Car fire", "caller": "  "}, "caller"),
    ],
)
async def test_blank_text_is_refused_before_the_cad(
    world: World, options: dict[str, str], blank: str
) -> None:
    result = await world.member.slash(world.channel, "911", **options)

    assert refusal(world, result) == f"The {blank} can't be blank; tell dispatch what to write there."
    assert world.sim.requests_of("CALL_911") == []


@pytest.mark.parametrize(("option", "limit"), [("location", 200), ("description", 1000), ("caller", 100)])
async def test_lengths_are_limited_in_the_signature(world: World, option: str, limit: int) -> None:
    options = {"location": "Legion Square", "description": "Car fire", option: "x" * (limit + 1)}

    # Discord's client refuses over-long options; SimCord enforces the same declared limits.
    with pytest.raises(OptionError):
        await world.member.slash(world.channel, "911", **options)

    options[option] = "x" * limit
    result = await world.member.slash(world.channel, "911", **options)
    assert reply(result).startswith("📞 911 call #")


async def test_role_restricted_911_refuses_members_without_the_role(world: World) -> None:
    callers = world.guild.create_role("Civilians")
    await world.storage.roles.set(world.guild.id, CommandGroup.CALLS_911, callers.id)

    result = await world.member.slash(world.channel, "311", location="Legion Square", description="Lost dog")

    assert refusal(world, result) == "You need **@Civilians** to use 911 calls."
    assert world.sim.requests == []


async def test_role_restricted_911_allows_members_with_the_role(world: World) -> None:
    callers = world.guild.create_role("Civilians")
    await world.storage.roles.set(world.guild.id, CommandGroup.CALLS_911, callers.id)
    civilian = world.guild.add_member(world.env.create_user("resident"), roles=[callers])

    result = await civilian.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert reply(result) == "📞 911 call #1042 sent to dispatch."


async def test_unconfigured_guild_is_told_to_run_setup(world: World) -> None:
    await world.storage.guilds.reset(world.guild.id)

    result = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert "an admin needs to run /setup" in refusal(world, result)
    assert world.sim.requests == []


async def test_plan_below_standard_is_explained(world: World) -> None:
    world.community.tier = Tier.STARTER

    result = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert refusal(world, result) == "911 calls need Sonoran CAD Standard; this community is on Starter."
    assert world.sim.requests_of("CALL_911") == []


async def test_rejected_api_key_asks_an_admin_to_run_setup(world: World) -> None:
    world.community.rotate_key("a-key-the-bot-does-not-have")

    result = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert (
        refusal(world, result)
        == "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


async def test_api_not_enabled_is_explained(world: World) -> None:
    world.community.api_enabled = False

    result = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    text = refusal(world, result)
    assert text.startswith("The CAD says 911 calls are not enabled for this community")
    assert "an admin should check the plan" in text


async def test_cad_timeout_is_still_answered_and_starts_no_cooldown(world: World, clock: FakeClock) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 30.0

    result = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert refusal(world, result).startswith("The CAD took too long to answer")
    # A write that timed out may have happened: it is reported, never repeated.
    assert len(world.sim.requests_of("CALL_911")) == 1
    world.sim.latency_s = 0.0
    retry = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")
    assert reply(retry).startswith("📞 911 call #")


async def test_second_call_within_the_cooldown_is_refused_then_allowed(
    world: World, clock: FakeClock
) -> None:
    first = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")
    assert reply(first).startswith("📞 911 call #")

    clock.now += 10
    second = await world.member.slash(
        world.channel, "311", location="Legion Square", description="Still burning"
    )
    assert refusal(world, second) == "Slow down: you can use this again in 20 s."
    assert len(world.sim.requests_of("CALL_911")) == 1

    clock.now += 20
    third = await world.member.slash(world.channel, "911", location="Legion Square", description="Spreading")
    assert reply(third).startswith("📞 911 call #")
    assert len(world.sim.requests_of("CALL_911")) == 2


async def test_cooldown_is_per_member(world: World, clock: FakeClock) -> None:
    await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    result = await world.officer.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert reply(result).startswith("📞 911 call #")


async def test_guild_cooldown_length_is_honoured(world: World, clock: FakeClock) -> None:
    await world.storage.guilds.set_cooldown(world.guild.id, 120)
    await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    clock.now += 60
    result = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert refusal(world, result) == "Slow down: you can use this again in 60 s."


async def test_zero_cooldown_allows_back_to_back_calls(world: World, clock: FakeClock) -> None:
    await world.storage.guilds.set_cooldown(world.guild.id, 0)

    for _ in range(3):
        result = await world.member.slash(
            world.channel, "911", location="Legion Square", description="Car fire"
        )
        assert reply(result).startswith("📞 911 call #")

    assert len(world.sim.requests_of("CALL_911")) == 3


async def test_refused_call_starts_no_cooldown(world: World, clock: FakeClock) -> None:
    world.community.api_enabled = False
    refused = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")
    assert "not enabled" in refusal(world, refused)
    world.community.api_enabled = True

    result = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")

    assert reply(result).startswith("📞 911 call #")


async def test_a_second_call_while_the_first_is_still_sending_is_refused(
    world: World, clock: FakeClock
) -> None:
    # The cooldown starts only once the CAD accepts, so a double submit needs its own guard.
    await world.install_impatient_cad(timeout_s=60)
    world.sim.latency_s = 30.0

    first = await world.member.slash(world.channel, "911", location="Legion Square", description="Car fire")
    assert first.deferred  # still waiting for the slow CAD
    second = await world.member.slash(world.channel, "311", location="Legion Square", description="Car fire")

    assert refusal(world, second) == (
        "Your previous call is still being sent to the CAD; wait for its confirmation."
    )
    assert len(world.sim.requests_of("CALL_911")) == 1
