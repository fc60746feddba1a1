"""/lookup name|plate|record through SimCord against the CAD simulator, plus the shared paginator."""

from __future__ import annotations

import discord
import pytest
from simcord import OptionError

from bot.cad.codes import RecordType
from bot.cad.tiers import Tier
from bot.storage.models import CommandGroup
from bot.ui.pagination import Paginator
from tests.cogs.views_support import (
    answer,
    cad_types,
    callback_types,
    refusal,
    shared,
)
from tests.harness import World

PREV, NEXT = "◀ Prev", "Next ▶"


def seed_whitfield(world: World, warrants: int = 1) -> None:
    community = world.community
    community.add_record(
        record_type=RecordType.LICENSE,
        fields={"first": "Dale", "last": "Whitfield", "status": "Suspended"},
    )
    for _ in range(warrants):
        community.add_record(
            record_type=RecordType.WARRANT,
            fields={"first": "Dale", "last": "Whitfield", "status": "Active", "flags": "Armed"},
        )
    community.add_record(fields={"first": "Dale", "last": "Whitfield", "dob": "1988-03-14"})


def field_names(message: object) -> list[str]:
    return [field.name for field in message.embeds[0].fields]  # type: ignore[attr-defined]


def button_labels(message: object) -> list[str]:
    return [
        component["label"]
        for row in message.components  # type: ignore[attr-defined]
        for component in row["components"]
    ]


# ---------------------------------------------------------------------------------------------- success


async def test_name_lookup_shows_characters_then_warrants_then_other_records(world: World) -> None:
    seed_whitfield(world)
    since = len(world.env.http_requests)

    result = await world.admin.slash(world.channel, "lookup name", first="Dale", last="Whitfield")

    assert callback_types(world, since) == [5]  # deferred before asking the CAD
    message = answer(result)
    assert message.ephemeral
    assert field_names(message) == ["Character #3", "⚠️ Warrant #2", "License #1"]
    embed = message.embeds[0]
    assert embed.title == "Records for name “Dale Whitfield”"
    assert embed.description == "1 Character · 1 Warrant · 1 License"
    warrant = embed.fields[1].value
    assert "**Name:** Dale Whitfield" in warrant
    assert "**Status:** Active" in warrant
    assert "**Flags:** Armed" in warrant
    assert message.components == []  # one page: no buttons
    [sent] = world.sim.requests_of("LOOKUP")
    assert sent.data[0]["first"] == "Dale"
    assert sent.data[0]["last"] == "Whitfield"
    assert sent.data[0]["plate"] == ""


async def test_middle_initial_is_sent_and_echoed(world: World) -> None:
    world.community.add_record(fields={"first": "Dale", "mi": "J", "last": "Whitfield"})

    result = await world.admin.slash(world.channel, "lookup name", first="Dale", last="Whitfield", middle="J")

    assert answer(result).embeds[0].title == "Records for name “Dale J Whitfield”"
    assert world.sim.requests_of("LOOKUP")[0].data[0]["mi"] == "J"


async def test_plate_lookup_shows_the_registration(world: World) -> None:
    world.community.add_record(
        record_type=RecordType.VEHICLE_REGISTRATION,
        fields={"plate": "ABC123", "first": "John", "last": "Smith", "status": "Valid"},
    )

    result = await world.admin.slash(world.channel, "lookup plate", plate=" abc1 ")

    embed = answer(result).embeds[0]
    assert embed.title == "Records for plate “abc1”"
    [field] = embed.fields
    assert field.name == "Vehicle Registration #1"
    assert "**Plate:** ABC123" in field.value
    assert "**Name:** John Smith" in field.value
    [sent] = world.sim.requests_of("LOOKUP")
    assert sent.data[0]["plate"] == "abc1"
    assert (sent.data[0]["first"], sent.data[0]["last"], sent.data[0]["mi"]) == ("", "", "")


async def test_record_lookup_uses_lookup_int_by_number(world: World) -> None:
    world.community.add_record(record_type=RecordType.BOLO, record_id=42, fields={"plate": "XYZ9"})

    result = await world.admin.slash(world.channel, "lookup record", number=42)

    assert field_names(answer(result)) == ["⚠️ BOLO #42"]
    [sent] = world.sim.requests_of("LOOKUP_INT")
    assert sent.data[0]["searchType"] == 3
    assert sent.data[0]["value"] == 42


async def test_no_results_says_so_plainly(world: World) -> None:
    result = await world.admin.slash(world.channel, "lookup plate", plate="NOPE")

    message = answer(result)
    assert message.content == "No records found for plate “NOPE”."
    assert message.ephemeral and message.embeds == []


async def test_cad_text_is_neutralised(world: World) -> None:
    world.community.add_record(fields={"first": "@everyone", "last": "Smith", "flags": "<@&123> **loud**"})

    result = await world.admin.slash(world.channel, "lookup name", first="every", last="Smith")

    value = answer(result).embeds[0].fields[0].value
    assert "@everyone" not in value
    assert "<@&123>" not in value
    assert "\\*\\*loud\\*\\*" in value


# ---------------------------------------------------------------------------------------------- refusals


async def test_blank_search_is_refused_before_calling_the_cad(world: World) -> None:
    since = len(world.env.http_requests)
    result = await world.admin.slash(world.channel, "lookup name", first="  ", last=" ")

    assert callback_types(world, since) == [4]  # answered at once, never deferred
    assert refusal(world, result).startswith("Give at least one thing to search for")
    assert world.sim.requests == []


async def test_blank_plate_is_refused_before_calling_the_cad(world: World) -> None:
    result = await world.admin.slash(world.channel, "lookup plate", plate="   ")

    assert refusal(world, result).startswith("Give at least one thing to search for")
    assert world.sim.requests == []


async def test_overlong_input_never_reaches_the_bot(world: World) -> None:
    with pytest.raises(OptionError):
        await world.admin.slash(world.channel, "lookup plate", plate="X" * 40)
    with pytest.raises(OptionError):
        await world.admin.slash(world.channel, "lookup record", number=-1)
    assert world.sim.requests == []


async def test_members_are_refused_until_a_role_is_set(world: World) -> None:
    result = await world.member.slash(world.channel, "lookup plate", plate="ABC")

    assert refusal(world, result) == (
        "Only server admins can use lookups until an admin picks a role with `/config role lookup`."
    )
    assert world.sim.requests == []


async def test_the_lookup_role_grants_access_and_others_are_told_which_role(world: World) -> None:
    police = world.guild.create_role("Police")
    cop = world.guild.add_member(world.env.create_user("cop"), roles=[police])
    await world.storage.roles.set(world.guild.id, CommandGroup.LOOKUP, police.id)

    allowed = await world.admin.slash(world.channel, "lookup plate", plate="ABC")
    assert answer(allowed).content == "No records found for plate “ABC”."
    allowed = await cop.slash(world.channel, "lookup plate", plate="ABC")
    assert answer(allowed).content == "No records found for plate “ABC”."
    refused = await world.member.slash(world.channel, "lookup plate", plate="ABC")
    assert refusal(world, refused) == "You need **@Police** to use lookups."
    assert len(world.sim.requests_of("LOOKUP")) == 2


async def test_standard_plan_is_told_lookups_need_plus_then_refused_without_calling(world: World) -> None:
    world.community.tier = Tier.STANDARD

    first = await world.admin.slash(world.channel, "lookup name", first="Dale", last="Whitfield")

    assert refusal(world, first) == "Lookups need Sonoran CAD Plus; this community is on Standard."
    assert cad_types(world) == ["LOOKUP", "GET_VERSION"]
    since = len(world.env.http_requests)
    again = await world.admin.slash(world.channel, "lookup record", number=1)
    assert callback_types(world, since) == [4]  # the plan is known now: refused at once, without a CAD call
    assert refusal(world, again) == "Lookups need Sonoran CAD Plus; this community is on Standard."
    assert cad_types(world) == ["LOOKUP", "GET_VERSION"]


async def test_api_switched_off_is_explained(world: World) -> None:
    world.community.api_enabled = False

    result = await world.admin.slash(world.channel, "lookup plate", plate="ABC")

    text = refusal(world, result)
    assert text.startswith("The CAD says lookups are not enabled for this community")
    assert "an admin should check the plan" in text


async def test_invalid_api_key_asks_for_setup(world: World) -> None:
    world.community.rotate_key("a-different-key")

    result = await world.admin.slash(world.channel, "lookup plate", plate="ABC")

    assert refusal(world, result) == (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


async def test_cad_timeout_is_still_answered(world: World) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 5.0

    since = len(world.env.http_requests)

    result = await world.admin.slash(world.channel, "lookup plate", plate="ABC")
    await world.env.advance_time(10)

    assert callback_types(world, since)[0] == 5  # acknowledged before waiting on the CAD
    assert refusal(world, result).startswith("The CAD took too long to answer")


async def test_unconfigured_server_is_told_to_run_setup(world: World) -> None:
    await world.storage.guilds.reset(world.guild.id)

    result = await world.admin.slash(world.channel, "lookup plate", plate="ABC")

    assert refusal(world, result) == (
        "This server isn't connected to Sonoran CAD yet; an admin needs to run /setup first."
    )
    assert world.sim.requests == []


# ---------------------------------------------------------------------------------------------- pagination


async def test_next_and_prev_page_through_results(world: World) -> None:
    seed_whitfield(world, warrants=7)  # 9 records: two pages of five

    result = await world.admin.slash(world.channel, "lookup name", first="Dale", last="Whitfield")

    message = answer(result)
    assert button_labels(message) == [PREV, "1/2", NEXT]
    assert message.embeds[0].footer.text == "Page 1/2 · 9 records"
    first_page = field_names(message)
    assert first_page[0] == "Character #9" and len(first_page) == 5

    await world.admin.click(message, label=NEXT)
    assert answer(result).embeds[0].footer.text == "Page 2/2 · 9 records"
    assert field_names(answer(result))[-1] == "License #1"
    assert button_labels(answer(result)) == [PREV, "2/2", NEXT]

    await world.admin.click(answer(result), label=PREV)
    assert field_names(answer(result)) == first_page
    assert len(world.sim.requests_of("LOOKUP")) == 1  # paging never asks the CAD again


async def test_disabled_buttons_at_the_ends(world: World) -> None:
    seed_whitfield(world, warrants=7)
    result = await world.admin.slash(world.channel, "lookup name", first="Dale", last="Whitfield")

    rows = answer(result).components[0]["components"]
    assert [button.get("disabled", False) for button in rows] == [True, True, False]


async def test_only_the_invoker_can_page_public_results(world: World) -> None:
    seed_whitfield(world, warrants=7)
    result = await world.admin.slash(
        world.channel, "lookup name", first="Dale", last="Whitfield", public=True
    )
    message = shared(result)  # in the channel, so others can see (and try) the buttons

    other = await world.officer.click(message, label=NEXT)

    assert other.response is not None and other.ephemeral
    assert other.response.content == "Only the person who ran this lookup can page it."
    assert shared(result).embeds[0].footer.text == "Page 1/2 · 9 records"
    await world.admin.click(message, label=NEXT)
    assert shared(result).embeds[0].footer.text == "Page 2/2 · 9 records"


async def test_public_single_page_is_posted_without_buttons(world: World) -> None:
    world.community.add_record(fields={"first": "Dale", "last": "Whitfield"})

    result = await world.admin.slash(world.channel, "lookup plate", plate="X", public=True)
    assert answer(result).content == "No records found for plate “X”."  # nothing to share: kept private
    assert answer(result).ephemeral and result.followups == []

    result = await world.admin.slash(
        world.channel, "lookup name", first="Dale", last="Whitfield", public=True
    )
    posted = shared(result)
    assert field_names(posted) == ["Character #1"]
    assert posted.components == []


async def test_refusals_stay_private_even_for_public_lookups(world: World) -> None:
    world.community.rotate_key("a-different-key")

    result = await world.admin.slash(world.channel, "lookup plate", plate="ABC", public=True)

    assert refusal(world, result).startswith("The CAD rejected this server's API credentials")
    assert result.followups == []


async def test_buttons_are_removed_cleanly_when_the_view_expires(world: World) -> None:
    seed_whitfield(world, warrants=7)
    result = await world.admin.slash(world.channel, "lookup name", first="Dale", last="Whitfield")
    await world.admin.click(answer(result), label=NEXT)

    await world.env.advance_time(301)

    message = answer(result)
    assert message.components == []
    assert message.embeds[0].footer.text == "Page 2/2 · 9 records"  # the page stays readable
    assert world.env.errors == []


async def test_expiry_after_the_message_was_deleted_is_quiet(world: World) -> None:
    seed_whitfield(world, warrants=7)
    result = await world.admin.slash(
        world.channel, "lookup name", first="Dale", last="Whitfield", public=True
    )
    moderators = world.guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True))
    moderator = world.guild.add_member(world.env.create_user("mod"), roles=[moderators])
    await moderator.delete(shared(result))

    await world.env.advance_time(301)

    assert world.env.errors == []


async def test_a_paginator_needs_pages() -> None:
    with pytest.raises(ValueError):
        Paginator([], owner_id=1)


async def test_paginator_clamps_and_tracks_its_position() -> None:
    paginator = Paginator([{"title": "t" * 400}, {"description": "two"}], owner_id=1, timeout=None)

    assert len(paginator.current.title or "") == 256  # pages are clamped to Discord's limits when shown
    assert paginator.position.label == "1/2"
    assert paginator.previous_page.disabled and not paginator.next_page.disabled
