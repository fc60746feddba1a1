"""/calls and /units through SimCord against the CAD simulator, reading through the bot's shared board."""

from __future__ import annotations

from bot.cad.board import CALLS_TTL_S, UNITS_TTL_S
from bot.cad.tiers import Tier
from bot.storage.models import CommandGroup
from tests.cogs.views_support import (
    answer,
    cad_types,
    callback_types,
    refusal,
    shared,
)
from tests.harness import World


def seed_board(world: World) -> None:
    community = world.community
    reyes = community.add_unit(
        account=world.officer_account,
        unit_num="1A-12",
        name="Jordan Reyes",
        department="LSPD",
        location="Mission Row",
        ident_id=57,
    )
    community.add_unit(unit_num="M-2", name="Bob Brown", status=9, ident_id=58)
    community.add_dispatch(title="Traffic stop", address="Route 68", code="10-38", priority=2, postal="7012")
    community.add_dispatch(
        title="Shots fired", address="Grove St", code="10-71", priority=1, units=[reyes.id, 58]
    )
    community.add_dispatch(title="Old call", address="Nowhere", status=2)
    community.add_emergency_call(caller="Jane Doe", location="Legion Square", description="Car fire")
    community.add_emergency_call(
        caller="Sam", location="Vinewood", description="Noise complaint", is_emergency=False
    )


# ---------------------------------------------------------------------------------------------- /calls


async def test_calls_lists_open_calls_by_priority_then_911s(world: World) -> None:
    seed_board(world)
    since = len(world.env.http_requests)

    result = await world.admin.slash(world.channel, "calls")

    assert callback_types(world, since)[0] == 5
    message = answer(result)
    assert message.ephemeral
    embed = message.embeds[0]
    assert embed.title == "Active calls"
    assert embed.description == "2 dispatch calls · 2 open 911 calls"
    assert [field.name for field in embed.fields] == [
        "Call #8 · P1 · 10-71 Shots fired",
        "Call #7 · P2 · 10-38 Traffic stop",
        "911 #1042 · Emergency",
        "911 #1043 · Civil",
    ]
    assert embed.fields[0].value.splitlines() == ["📍 Grove St", "👮 2 units attached"]
    assert embed.fields[1].value.splitlines() == ["📍 Route 68 (postal 7012)", "👮 No units attached"]
    assert embed.fields[2].value.splitlines() == [
        "**Caller:** Jane Doe",
        "**Location:** Legion Square",
        "Car fire",
    ]
    [sent] = world.sim.requests_of("GET_CALLS")
    assert sent.data == [{"serverId": 1, "closedLimit": 0, "closedOffset": 0}]


async def test_calls_within_the_ttl_cost_one_cad_request_and_say_how_old_they_are(world: World) -> None:
    world.community.add_dispatch(title="Traffic stop", address="Route 68")

    first = await world.admin.slash(world.channel, "calls")
    await world.env.advance_time(CALLS_TTL_S - 3)
    world.community.add_dispatch(title="Shots fired", address="Grove St")  # not shown until the list expires
    second = await world.admin.slash(world.channel, "calls")

    assert len(world.sim.requests_of("GET_CALLS")) == 1
    assert answer(first).embeds[0].footer.text is None  # a fresh list needs no age
    assert answer(second).embeds[0].description == "1 dispatch call · 0 open 911 calls"
    assert answer(second).embeds[0].footer.text == f"as of {CALLS_TTL_S - 3:g} s ago"

    await world.env.advance_time(3)
    third = await world.admin.slash(world.channel, "calls")

    assert len(world.sim.requests_of("GET_CALLS")) == 2
    assert answer(third).embeds[0].description == "2 dispatch calls · 0 open 911 calls"


async def test_calls_and_the_dispatch_call_picker_share_one_read(world: World) -> None:
    world.community.add_dispatch(title="Traffic stop", address="Route 68")

    await world.admin.slash(world.channel, "calls")
    choices = await world.admin.autocomplete(world.channel, "dispatch close", "call", "")

    assert choices == [{"name": "#7 Traffic stop — Route 68", "value": 7}]
    assert len(world.sim.requests_of("GET_CALLS")) == 1


async def test_calls_with_nothing_open_says_so(world: World) -> None:
    result = await world.admin.slash(world.channel, "calls")

    assert answer(result).content == "No active dispatch calls or open 911 calls right now."


async def test_calls_page_and_can_be_posted_publicly(world: World) -> None:
    for number in range(8):
        world.community.add_dispatch(title=f"Call {number}", address="Route 68")

    result = await world.admin.slash(world.channel, "calls", public=True)

    message = shared(result)
    assert message.embeds[0].footer.text == "Page 1/2"
    stranger = await world.officer.click(message, label="Next ▶")
    assert stranger.response is not None
    assert stranger.response.content == "Only the person who ran this command can page it."
    await world.admin.click(message, label="Next ▶")
    assert shared(result).embeds[0].footer.text == "Page 2/2"
    await world.env.advance_time(301)
    assert shared(result).components == []


async def test_calls_refused_for_members_until_a_dispatch_role_is_set(world: World) -> None:
    result = await world.member.slash(world.channel, "calls")

    assert refusal(world, result) == (
        "Only server admins can use dispatch commands until an admin picks a role with "
        "`/config role dispatch`."
    )
    assert world.sim.requests == []


async def test_dispatch_role_grants_calls_and_units(world: World) -> None:
    dispatchers = world.guild.create_role("Dispatch")
    dispatcher = world.guild.add_member(world.env.create_user("dispatcher"), roles=[dispatchers])
    await world.storage.roles.set(world.guild.id, CommandGroup.DISPATCH, dispatchers.id)

    calls = await dispatcher.slash(world.channel, "calls")
    units = await dispatcher.slash(world.channel, "units")
    refused = await world.member.slash(world.channel, "units")

    assert answer(calls).content == "No active dispatch calls or open 911 calls right now."
    assert answer(units).content == "No units are on duty right now."
    assert refusal(world, refused) == "You need **@Dispatch** to use dispatch commands."


async def test_calls_on_standard_plan_need_plus(world: World) -> None:
    world.community.tier = Tier.STANDARD

    result = await world.admin.slash(world.channel, "calls")

    assert refusal(world, result) == "Call lists need Sonoran CAD Plus; this community is on Standard."
    assert cad_types(world) == ["GET_CALLS", "GET_VERSION"]


async def test_calls_with_the_api_switched_off(world: World) -> None:
    world.community.api_enabled = False

    result = await world.admin.slash(world.channel, "calls")

    assert refusal(world, result).startswith("The CAD says call lists are not enabled for this community")


async def test_calls_with_a_rejected_key(world: World) -> None:
    world.community.rotate_key("a-different-key")

    result = await world.admin.slash(world.channel, "calls")

    assert refusal(world, result) == (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


async def test_calls_timeout_is_still_answered(world: World) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 5.0

    result = await world.admin.slash(world.channel, "calls")
    await world.env.advance_time(10)

    assert refusal(world, result).startswith("The CAD took too long to answer")


# ---------------------------------------------------------------------------------------------- /units


async def test_units_show_status_location_and_panic(world: World) -> None:
    seed_board(world)
    world.community.units[58].is_panic = True

    result = await world.admin.slash(world.channel, "units")

    embed = answer(result).embeds[0]
    assert embed.title == "Active units (2)"
    assert embed.description.splitlines() == [
        "🚨 1 unit in panic",
        "",
        "🚨 **M-2 Bob Brown** — Code 9 · **PANIC**",
        "**1A-12 Jordan Reyes (LSPD)** — Available · Mission Row",
    ]
    assert embed.footer.text == "2 units"
    assert world.sim.requests_of("GET_ACTIVE_UNITS")[0].data[0]["serverId"] == 1


async def test_units_within_the_ttl_cost_one_cad_request(world: World) -> None:
    seed_board(world)

    first = await world.admin.slash(world.channel, "units")
    await world.env.advance_time(12)
    world.community.units[57].status = 4  # a change the cached list does not show yet
    second = await world.admin.slash(world.channel, "units")

    assert len(world.sim.requests_of("GET_ACTIVE_UNITS")) == 1
    assert answer(first).embeds[0].description == answer(second).embeds[0].description
    assert answer(second).embeds[0].footer.text == "2 units · as of 12 s ago"

    await world.env.advance_time(UNITS_TTL_S)
    third = await world.admin.slash(world.channel, "units")

    assert len(world.sim.requests_of("GET_ACTIVE_UNITS")) == 2
    assert "On scene · Mission Row" in answer(third).embeds[0].description


async def test_units_with_nobody_on_duty(world: World) -> None:
    result = await world.admin.slash(world.channel, "units")

    assert answer(result).content == "No units are on duty right now."


async def test_many_units_page(world: World) -> None:
    for number in range(20):
        world.community.add_unit(unit_num=f"U-{number:02}", name=f"Officer {number}")

    result = await world.admin.slash(world.channel, "units")

    assert answer(result).embeds[0].footer.text == "Page 1/2 · 20 units"
    await world.admin.click(answer(result), label="Next ▶")
    assert answer(result).embeds[0].footer.text == "Page 2/2 · 20 units"


async def test_units_on_standard_plan_need_plus_and_nothing_is_cached(world: World) -> None:
    world.community.tier = Tier.STANDARD

    result = await world.admin.slash(world.channel, "units")

    assert refusal(world, result) == "Unit lists need Sonoran CAD Plus; this community is on Standard."
    world.community.tier = Tier.PRO
    world.bot.services.cad.invalidate_tier(world.community.community_id)
    retry = await world.admin.slash(world.channel, "units")
    assert answer(retry).content == "No units are on duty right now."
    assert len(world.sim.requests_of("GET_ACTIVE_UNITS")) == 2


async def test_units_rate_limited_by_the_cad(world: World) -> None:
    world.sim.rate_limit_next(3, retry_after=0, request_type="GET_ACTIVE_UNITS")

    result = await world.admin.slash(world.channel, "units")

    assert refusal(world, result) == "The CAD is asking the bot to slow down; try again in a minute."
    again = await world.admin.slash(world.channel, "units")
    assert refusal(world, again) == "The CAD is asking the bot to slow down; try again in a minute."
    # The client pauses the type after a 429, and the failure was not cached as an empty list.
    assert len(world.sim.requests_of("GET_ACTIVE_UNITS")) == 3


async def test_units_with_a_rejected_key(world: World) -> None:
    world.community.rotate_key("a-different-key")

    result = await world.admin.slash(world.channel, "units")

    assert refusal(world, result) == (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


async def test_units_with_the_api_switched_off(world: World) -> None:
    world.community.api_enabled = False

    result = await world.admin.slash(world.channel, "units")

    assert refusal(world, result).startswith("The CAD says unit lists are not enabled for this community")


async def test_units_timeout_is_still_answered(world: World) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 5.0

    result = await world.admin.slash(world.channel, "units")
    await world.env.advance_time(10)

    assert refusal(world, result).startswith("The CAD took too long to answer")
