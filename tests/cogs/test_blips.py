"""/blips list|add|edit|remove through SimCord against the CAD simulator."""

from __future__ import annotations

import pytest
from simcord import OptionError

from bot.cad.tiers import Tier
from bot.storage.models import CommandGroup
from tests.cogs.views_support import answer, cad_types, callback_types, refusal
from tests.harness import World

PLAN_REFUSAL = "Blips need Sonoran CAD Pro; this community is on Plus."


def seed_blip(world: World, **overrides: object) -> dict[str, object]:
    blip = {
        "coordinates": {"x": 120.5, "y": -340.0},
        "radius": 50.0,
        "color": "#ff0000",
        "tooltip": "Roadblock",
    }
    return world.community.add_blip({**blip, **overrides})


# ---------------------------------------------------------------------------------------------- success


async def test_list_shows_each_blip(world: World) -> None:
    seed_blip(world)
    seed_blip(world, tooltip=None, subType="hazard", coordinates={"x": 0, "y": 0}, radius=None, color="")

    result = await world.admin.slash(world.channel, "blips list")

    message = answer(result)
    assert message.ephemeral
    embed = message.embeds[0]
    assert embed.title == "Live-map blips (2)"
    assert embed.description.splitlines() == [
        "**#1** Roadblock — (120.5, -340) · radius 50 · #ff0000",
        "**#2** hazard — (0, 0)",
    ]
    assert world.sim.requests_of("GET_BLIPS")[0].data == [{"serverId": 1}]


async def test_list_pages_when_there_are_many(world: World) -> None:
    for number in range(20):
        seed_blip(world, tooltip=f"Cone {number}")

    result = await world.admin.slash(world.channel, "blips list")

    message = answer(result)
    assert message.embeds[0].footer.text == "Page 1/2 · 20 blips"
    await world.admin.click(message, label="Next ▶")
    assert answer(result).embeds[0].footer.text == "Page 2/2 · 20 blips"


async def test_empty_map_says_so(world: World) -> None:
    result = await world.admin.slash(world.channel, "blips list")

    assert answer(result).content == "There are no custom blips on the live map."


async def test_add_sends_the_blip_and_confirms_its_id(world: World) -> None:
    since = len(world.env.http_requests)
    result = await world.admin.slash(
        world.channel,
        "blips add",
        x=120.5,
        y=-340.0,
        radius=25.0,
        color="FF8800",
        icon="roadblock",
        tooltip="  Road closed  ",
        subtype="hazard",
    )

    assert callback_types(world, since)[0] == 5
    assert answer(result).content == "Added blip #1 at (120.5, -340)."
    [sent] = world.sim.requests_of("ADD_BLIP")
    blip = sent.data[0]["blip"]
    assert sent.data[0]["serverId"] == 1
    assert blip["id"] == -1
    assert blip["coordinates"] == {"x": 120.5, "y": -340.0}
    assert blip["radius"] == 25.0
    assert blip["color"] == "#ff8800"  # normalised
    assert (blip["icon"], blip["tooltip"], blip["subType"]) == ("roadblock", "Road closed", "hazard")
    assert world.community.blips[1]["tooltip"] == "Road closed"


async def test_add_with_only_a_position(world: World) -> None:
    result = await world.admin.slash(world.channel, "blips add", x=0.0, y=0.0)

    assert answer(result).content == "Added blip #1 at (0, 0)."
    blip = world.sim.requests_of("ADD_BLIP")[0].data[0]["blip"]
    assert "radius" not in blip and "tooltip" not in blip


async def test_edit_sends_only_what_changes(world: World) -> None:
    seed_blip(world)

    result = await world.admin.slash(world.channel, "blips edit", id=1, x=1.0, y=2.0, color="#00FF00")

    assert answer(result).content == "Updated blip #1: position (1, 2), colour “#00ff00”."
    [sent] = world.sim.requests_of("MODIFY_BLIP")
    assert sent.data == [{"id": 1, "coordinates": {"x": 1.0, "y": 2.0}, "color": "#00ff00"}]
    assert world.community.blips[1]["color"] == "#00ff00"
    assert world.community.blips[1]["tooltip"] == "Roadblock"


async def test_remove_takes_the_blip_off_the_map(world: World) -> None:
    seed_blip(world)

    result = await world.admin.slash(world.channel, "blips remove", id=1)

    assert answer(result).content == "Removed blip #1 from the live map."
    assert world.sim.requests_of("REMOVE_BLIP")[0].data == [{"ids": [1]}]
    assert world.community.blips == {}


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("colour", ["red", "#ff00", "#gg0000", "#ff00001", "0xff0000"])
async def test_bad_colour_gets_a_clear_answer_and_nothing_is_sent(world: World, colour: str) -> None:
    result = await world.admin.slash(world.channel, "blips add", x=1.0, y=2.0, color=colour)

    text = refusal(world, result)
    assert "isn't a colour the map understands" in text
    assert "#ff0000" in text
    assert world.sim.requests == []


async def test_bad_colour_text_is_neutralised_in_the_refusal(world: World) -> None:
    result = await world.admin.slash(world.channel, "blips add", x=1.0, y=2.0, color="@everyone")

    assert "@everyone" not in refusal(world, result)


@pytest.mark.parametrize(
    "options",
    [
        {"radius": -1.0},
        {"x": 100_001.0},
        {"y": -1e9},
        {"tooltip": "t" * 101},
    ],
)
async def test_out_of_range_options_never_reach_the_cad(world: World, options: dict[str, object]) -> None:
    values = {"x": 1.0, "y": 2.0, **options}
    with pytest.raises(OptionError):
        await world.admin.slash(world.channel, "blips add", **values)
    assert world.sim.requests == []


async def test_edit_without_changes_is_refused(world: World) -> None:
    result = await world.admin.slash(world.channel, "blips edit", id=1)

    assert refusal(world, result).startswith("Nothing to change")
    assert world.sim.requests == []


async def test_edit_with_only_blank_text_is_refused(world: World) -> None:
    result = await world.admin.slash(world.channel, "blips edit", id=1, tooltip="   ")

    assert refusal(world, result).startswith("Nothing to change")
    assert world.sim.requests == []


async def test_edit_with_half_a_position_is_refused(world: World) -> None:
    result = await world.admin.slash(world.channel, "blips edit", id=1, x=5.0)

    assert refusal(world, result) == "To move a blip, give both x and y."
    assert world.sim.requests == []


# ---------------------------------------------------------------------------------------------- refusals


async def test_members_are_refused_until_a_map_role_is_set(world: World) -> None:
    result = await world.member.slash(world.channel, "blips list")

    assert refusal(world, result) == (
        "Only server admins can use map blips until an admin picks a role with `/config role map`."
    )
    assert world.sim.requests == []


async def test_the_map_role_grants_access(world: World) -> None:
    mappers = world.guild.create_role("Mappers")
    mapper = world.guild.add_member(world.env.create_user("mapper"), roles=[mappers])
    await world.storage.roles.set(world.guild.id, CommandGroup.MAP, mappers.id)

    result = await mapper.slash(world.channel, "blips add", x=1.0, y=2.0)

    assert answer(result).content == "Added blip #1 at (1, 2)."


async def test_plus_plan_learns_blips_need_pro_then_is_refused_without_calling(world: World) -> None:
    world.community.tier = Tier.PLUS

    first = await world.admin.slash(world.channel, "blips add", x=1.0, y=2.0)

    # The plan was unknown: the CAD's "API ENDPOINT IS NOT ENABLED" answer is explained by reading the plan.
    assert refusal(world, first) == PLAN_REFUSAL
    assert cad_types(world) == ["ADD_BLIP", "GET_VERSION"]
    for command, options in (
        ("blips list", {}),
        ("blips add", {"x": 1.0, "y": 2.0}),
        ("blips edit", {"id": 1, "tooltip": "x"}),
        ("blips remove", {"id": 1}),
    ):
        since = len(world.env.http_requests)
        result = await world.admin.slash(world.channel, command, **options)
        assert refusal(world, result) == PLAN_REFUSAL
        assert callback_types(world, since) == [4]  # refused at once, not deferred
    assert cad_types(world) == ["ADD_BLIP", "GET_VERSION"]
    assert world.community.blips == {}


async def test_plan_known_in_advance_refuses_before_any_blip_request(world: World) -> None:
    world.community.tier = Tier.PLUS
    creds = await world.storage.guilds.get_credentials(world.guild.id)
    assert creds is not None
    await world.bot.services.cad.get_tier(creds)

    result = await world.admin.slash(world.channel, "blips list")

    assert refusal(world, result) == PLAN_REFUSAL
    assert world.sim.requests_of("GET_BLIPS") == []


async def test_api_switched_off_on_a_pro_plan_is_not_blamed_on_the_plan(world: World) -> None:
    world.community.api_enabled = False

    result = await world.admin.slash(world.channel, "blips list")

    text = refusal(world, result)
    assert text.startswith("The CAD says blips are not enabled for this community")
    assert cad_types(world) == ["GET_BLIPS", "GET_VERSION"]


async def test_invalid_api_key_asks_for_setup(world: World) -> None:
    world.community.rotate_key("a-different-key")

    result = await world.admin.slash(world.channel, "blips remove", id=3)

    assert refusal(world, result) == (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


async def test_cad_timeout_on_a_write_is_still_answered_and_not_repeated(world: World) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 5.0

    result = await world.admin.slash(world.channel, "blips add", x=1.0, y=2.0)
    await world.env.advance_time(10)

    assert refusal(world, result).startswith("The CAD took too long to answer")
    assert len(world.sim.requests_of("ADD_BLIP")) == 1


async def test_cad_timeout_on_the_list_is_still_answered(world: World) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 5.0

    result = await world.admin.slash(world.channel, "blips list")
    await world.env.advance_time(10)

    assert refusal(world, result).startswith("The CAD took too long to answer")
