"""/dispatch new|attach|detach|note|close through SimCord against the CAD simulator, live cards included.

The ``desk`` fixture routes dispatch cards to ``world.alerts``, makes a Dispatch role and a dispatcher who
holds it (linked, on duty as D-01 Kim Morgan), and puts the linked officer on duty as 1A-12 Jordan Reyes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from simcord import OptionError

import bot.cad.client as cad_client
from bot.cad.board import CALLS_TTL_S
from bot.cad.endpoints import path_for
from bot.cad.tiers import Tier
from bot.push.pipeline import PushPipeline
from bot.storage.db import DatabaseUnavailableError
from bot.storage.models import Category, CommandGroup
from cogs.dispatch import AUTOCOMPLETE_BUDGET_S
from testing.cad_simulator import SimUnit
from tests.cogs._member_helpers import answer_types, refusal, reply, reply_mentions
from tests.harness import World

DISPATCHER_UUID = "7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
OFFICER_UUID = "5b0f6c1e-8d2a-4c3b-9f4e-2a7d1c9e0b11"
FIRST_CALL = 7  # the simulator numbers dispatch calls from 7


@dataclass
class Desk:
    world: World
    dispatcher: Any
    dispatcher_unit: SimUnit
    officer_unit: SimUnit
    role: Any

    @property
    def pipeline(self) -> PushPipeline:
        running = self.world.bot.services.pipeline  # read each time: world.restart() swaps the bot
        assert running is not None
        return running

    async def delivered(self) -> None:
        await self.pipeline.wait_until_idle(timeout_s=5)
        await self.world.env.settle()

    async def card(self) -> discord.Message:
        """The one live card in the dispatch channel, once everything owed to Discord went out."""
        await self.delivered()
        messages = self.world.alerts.history()
        assert len(messages) == 1, f"expected one live card, found {len(messages)} messages"
        return messages[0]

    async def new_call(self, **options: Any) -> int:
        values = {
            "title": "Traffic Stop",
            "address": "Legion Square",
            "description": "Silver sedan, plate 8KXP214",
            "priority": 2,
            **options,
        }
        result = await self.dispatcher.slash(self.world.channel, "dispatch new", **values)
        assert "created" in reply(result), reply(result)
        return max(self.world.community.dispatches)


@pytest.fixture
async def desk(world: World) -> Desk:
    role = world.guild.create_role("Dispatch")
    await world.storage.roles.set(world.guild.id, CommandGroup.DISPATCH, role.id)
    dispatcher = world.guild.add_member(world.env.create_user("dispatcher"), roles=[role])
    account = world.community.add_account("kmorgan", uuid=DISPATCHER_UUID)
    await world.storage.links.link(world.guild.id, dispatcher.id, account.uuid, username="kmorgan")
    dispatcher_unit = world.community.add_unit(account=account, unit_num="D-01", name="Kim Morgan")
    officer_unit = world.community.add_unit(
        account=world.officer_account, unit_num="1A-12", name="Jordan Reyes"
    )
    await world.storage.routes.set_channel(world.guild.id, Category.DISPATCH, world.alerts.id)
    return Desk(world, dispatcher, dispatcher_unit, officer_unit, role)


def card_text(message: discord.Message) -> str:
    embed = message.embeds[0]
    parts = [embed.title or "", embed.description or ""]
    parts += [f"{field.name}: {field.value}" for field in embed.fields]
    return "\n".join(parts)


def button_labels(message: discord.Message) -> list[str]:
    return [
        str(child.label)
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
        if isinstance(child, discord.Button)
    ]


def card_requests(world: World, method: str) -> list[Any]:
    return [
        entry
        for entry in world.env.http_requests
        if entry.method == method and entry.path.startswith(f"/channels/{world.alerts.id}/messages")
    ]


# ------------------------------------------------------------------------------------------------ /dispatch new


async def test_new_creates_the_call_attaches_the_dispatcher_and_posts_a_live_card(desk: Desk) -> None:
    world = desk.world
    since = len(world.env.http_requests)

    result = await desk.dispatcher.slash(
        world.channel,
        "dispatch new",
        title="Traffic Stop",
        address="Legion Square",
        description="Silver sedan, plate 8KXP214",
        priority=1,
        code="10-38",
        postal="7153",
        origin=1,
        status=0,
        attach_me=True,
    )

    assert reply(result) == "📟 Dispatch call **#7** created with **D-01 Kim Morgan** attached."
    assert answer_types(world, since)[0] == 5
    assert reply_mentions(world, since) == [{"parse": []}]
    [sent] = world.sim.requests_of("NEW_DISPATCH")
    assert sent.data == [
        {
            "serverId": 1,
            "title": "Traffic Stop",
            "address": "Legion Square",
            "origin": 1,
            "status": 0,
            "priority": 1,
            "block": "",
            "postal": "7153",
            "code": "10-38",
            "description": "Silver sedan, plate 8KXP214",
            "notes": [],
            "units": [],
            "accounts": [DISPATCHER_UUID],
        }
    ]
    created = world.community.dispatches[FIRST_CALL]
    assert created.idents == [desk.dispatcher_unit.id]
    card = await desk.card()
    assert card.embeds[0].title == "📟 Call #7 — Traffic Stop"
    shown = card_text(card)
    assert "Pending" in shown and "P1" in shown and "7153" in shown
    assert "D-01 Kim Morgan ★" in shown
    assert button_labels(card) == ["Attach me", "Detach me"]
    [post] = card_requests(world, "POST")
    assert post.json["allowed_mentions"] == {"parse": []}
    assert [button["custom_id"] for button in post.json["components"][0]["components"]] == [
        "cad:card:attach:7",
        "cad:card:detach:7",
    ]


async def test_new_defaults_to_an_active_caller_call_without_code_postal_or_units(desk: Desk) -> None:
    result = await desk.dispatcher.slash(
        desk.world.channel,
        "dispatch new",
        title="  Noise complaint ",
        address="Vinewood Blvd",
        description="Loud music",
        priority=3,
    )

    assert reply(result) == "📟 Dispatch call **#7** created."
    [sent] = desk.world.sim.requests_of("NEW_DISPATCH")
    item = sent.data[0]
    assert (item["title"], item["origin"], item["status"], item["code"], item["postal"]) == (
        "Noise complaint",
        0,
        1,
        "",
        "",
    )
    assert item["units"] == [] and "accounts" not in item
    assert desk.world.sim.requests_of("GET_ACTIVE_UNITS") == []  # nobody to name
    card = await desk.card()
    assert "None attached" in card_text(card)


async def test_new_attaches_another_linked_member_too(desk: Desk) -> None:
    await desk.new_call(attach_me=True, member=desk.world.officer)

    [sent] = desk.world.sim.requests_of("NEW_DISPATCH")
    assert sent.data[0]["accounts"] == [DISPATCHER_UUID, OFFICER_UUID]
    assert desk.world.community.dispatches[FIRST_CALL].idents == [
        desk.dispatcher_unit.id,
        desk.officer_unit.id,
    ]
    shown = card_text(await desk.card())
    assert "D-01 Kim Morgan ★" in shown and "1A-12 Jordan Reyes" in shown


async def test_new_says_who_could_not_be_attached_for_having_no_unit_on_duty(desk: Desk) -> None:
    desk.officer_unit.online = False

    result = await desk.dispatcher.slash(
        desk.world.channel,
        "dispatch new",
        title="Traffic Stop",
        address="Legion Square",
        description="Sedan",
        priority=2,
        member=desk.world.officer,
    )

    assert reply(result) == (
        "📟 Dispatch call **#7** created. **officer** has no unit on duty in the CAD, "
        "so nothing was attached for them."
    )


async def test_new_targets_a_member_linked_by_api_id_by_that_api_id(desk: Desk) -> None:
    world = desk.world
    api_id = str(world.member.id)
    account = world.community.add_account("mfox", api_ids=[api_id])
    unit = world.community.add_unit(account=account, unit_num="2B-04", name="Max Fox")
    await world.storage.links.link(world.guild.id, world.member.id, f"api-id:{api_id}", api_id=api_id)

    await desk.new_call(member=world.member)

    [sent] = world.sim.requests_of("NEW_DISPATCH")
    assert sent.data[0]["units"] == [api_id] and "accounts" not in sent.data[0]
    assert world.community.dispatches[FIRST_CALL].idents == [unit.id]


async def test_new_accepts_a_json_answer_from_the_cad(desk: Desk) -> None:
    desk.world.community.new_dispatch_answers_json = True

    result = await desk.dispatcher.slash(
        desk.world.channel,
        "dispatch new",
        title="Traffic Stop",
        address="Legion Square",
        description="Sedan",
        priority=2,
    )

    assert reply(result) == "📟 Dispatch call **#7** created."
    assert (await desk.card()).embeds[0].title == "📟 Call #7 — Traffic Stop"


async def test_new_without_a_dispatch_route_still_creates_the_call(desk: Desk) -> None:
    await desk.world.storage.routes.set_channel(desk.world.guild.id, Category.DISPATCH, None)

    await desk.new_call()

    await desk.delivered()
    assert desk.world.alerts.history() == []
    assert FIRST_CALL in desk.world.community.dispatches


@pytest.mark.parametrize("option", ["title", "address", "description"])
async def test_new_refuses_blank_text_before_the_cad(desk: Desk, option: str) -> None:
    values: dict[str, Any] = {"title": "Stop", "address": "Here", "description": "Sedan", "priority": 2}
    values[option] = "   "

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch new", **values)

    assert refusal(desk.world, result) == f"The {option} can't be blank."
    assert desk.world.sim.requests == []


@pytest.mark.parametrize(
    "options",
    [{"priority": 4}, {"origin": 9}, {"status": 2}, {"title": "x" * 201}, {"postal": "1" * 21}],
    ids=["priority", "origin", "closed-status", "long-title", "long-postal"],
)
async def test_new_options_are_bounded_in_the_signature(desk: Desk, options: dict[str, Any]) -> None:
    values: dict[str, Any] = {"title": "Stop", "address": "Here", "description": "Sedan", "priority": 2}
    with pytest.raises(OptionError):
        await desk.dispatcher.slash(desk.world.channel, "dispatch new", **{**values, **options})
    assert desk.world.sim.requests == []


async def test_new_with_attach_me_needs_a_link(desk: Desk) -> None:
    result = await desk.world.admin.slash(
        desk.world.channel,
        "dispatch new",
        title="Stop",
        address="Here",
        description="Sedan",
        priority=2,
        attach_me=True,
    )

    assert refusal(desk.world, result) == (
        "Your Discord account isn't linked to a Sonoran CAD account yet; run /link first."
    )
    assert desk.world.sim.requests == []


# ------------------------------------------------------------------------------------------------ a whole call


async def test_one_card_follows_the_call_from_creation_to_close(desk: Desk) -> None:
    world = desk.world
    call = await desk.new_call()
    first = await desk.card()

    attached = await desk.dispatcher.slash(world.channel, "dispatch attach", call=call, member=world.officer)
    assert reply(attached) == "✅ **1A-12 Jordan Reyes** attached to call **#7**."
    assert "1A-12 Jordan Reyes" in card_text(await desk.card())

    noted = await desk.dispatcher.slash(world.channel, "dispatch note", call=call, text="Driver fled on foot")
    assert reply(noted) == "📝 Note added to call **#7**."
    assert "**dispatcher:** Driver fled on foot" in card_text(await desk.card())

    detached = await desk.dispatcher.slash(world.channel, "dispatch detach", member=world.officer)
    assert reply(detached) == "✅ **1A-12 Jordan Reyes** detached from call **#7**."
    assert "1A-12 Jordan Reyes" not in card_text(await desk.card())

    closed = await desk.dispatcher.slash(world.channel, "dispatch close", call=call)
    assert reply(closed) == "✅ Call **#7** closed."

    final = await desk.card()
    assert final.id == first.id
    assert "Closed ✅" in card_text(final)
    assert "Driver fled on foot" in card_text(final)
    assert button_labels(final) == []
    assert len(card_requests(world, "POST")) == 1
    edits = card_requests(world, "PATCH")
    assert len(edits) == 4
    assert edits[-1].json["components"] == []
    assert all(edit.json["allowed_mentions"] == {"parse": []} for edit in edits)
    assert world.community.dispatches[call].status == 2


# ------------------------------------------------------------------------------------------------ /dispatch attach


async def test_attach_defaults_to_the_dispatchers_own_unit(desk: Desk) -> None:
    call = await desk.new_call()

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch attach", call=call)

    assert reply(result) == "✅ **D-01 Kim Morgan** attached to call **#7**."
    [sent] = desk.world.sim.requests_of("ATTACH_UNIT")
    assert sent.data == [{"serverId": 1, "callId": call, "account": DISPATCHER_UUID}]
    assert desk.world.community.dispatches[call].idents == [desk.dispatcher_unit.id]
    assert desk.world.sim.requests_of("GET_CALLS") == []  # the live card vouched for the call


async def test_attach_to_a_call_made_in_the_cad_starts_its_card(desk: Desk) -> None:
    made_in_cad = desk.world.community.add_dispatch(title="Shots fired", address="Grove St", priority=1)

    result = await desk.dispatcher.slash(
        desk.world.channel, "dispatch attach", call=made_in_cad.call_id, member=desk.world.officer
    )

    assert reply(result) == "✅ **1A-12 Jordan Reyes** attached to call **#7**."
    assert len(desk.world.sim.requests_of("GET_CALLS")) == 1
    card = await desk.card()
    assert card.embeds[0].title == "📟 Call #7 — Shots fired"
    assert "1A-12 Jordan Reyes" in card_text(card)


async def test_attach_refuses_a_call_that_is_not_open_in_the_cad(desk: Desk) -> None:
    desk.world.community.add_dispatch(title="Old call", address="Nowhere", status=2)

    for call in (7, 999):
        result = await desk.dispatcher.slash(desk.world.channel, "dispatch attach", call=call)
        assert refusal(desk.world, result) == (
            f"There is no open dispatch call #{call} in the CAD; pick a call from the list."
        )
    assert desk.world.sim.requests_of("ATTACH_UNIT") == []
    await desk.delivered()
    assert desk.world.alerts.history() == []


async def test_a_call_opened_moments_ago_is_found_despite_a_cached_list(desk: Desk) -> None:
    desk.world.community.add_dispatch(title="First", address="A")
    await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")
    await desk.world.env.advance_time(5)
    newer = desk.world.community.add_dispatch(title="Second", address="B")

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch attach", call=newer.call_id)

    assert reply(result) == "✅ **D-01 Kim Morgan** attached to call **#8**."
    assert len(desk.world.sim.requests_of("GET_CALLS")) == 2


async def test_attach_refuses_a_closed_card(desk: Desk) -> None:
    call = await desk.new_call()
    await desk.dispatcher.slash(desk.world.channel, "dispatch close", call=call)

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch attach", call=call)

    assert refusal(desk.world, result) == "Call #7 is already closed."
    assert desk.world.sim.requests_of("ATTACH_UNIT") == []


async def test_attach_refuses_a_member_with_no_unit_on_duty(desk: Desk) -> None:
    call = await desk.new_call()
    desk.officer_unit.online = False
    desk.dispatcher_unit.online = False

    other = await desk.dispatcher.slash(
        desk.world.channel, "dispatch attach", call=call, member=desk.world.officer
    )
    own = await desk.dispatcher.slash(desk.world.channel, "dispatch attach", call=call)

    assert refusal(desk.world, other) == "**officer** has no unit logged in to the CAD right now."
    assert refusal(desk.world, own) == (
        "You have no unit logged in to the CAD right now; log in to a unit, then try again."
    )
    assert desk.world.sim.requests_of("ATTACH_UNIT") == []


async def test_a_unit_logged_in_moments_ago_is_found_despite_a_cached_list(desk: Desk) -> None:
    desk.officer_unit.online = False
    call = await desk.new_call(attach_me=True)  # lists units on duty: the officer is not among them
    await desk.world.env.advance_time(5)
    late = desk.world.community.add_unit(
        account=desk.world.officer_account, unit_num="1A-13", name="Late Shift"
    )

    result = await desk.dispatcher.slash(
        desk.world.channel, "dispatch attach", call=call, member=desk.world.officer
    )

    assert reply(result) == "✅ **1A-13 Late Shift** attached to call **#7**."
    assert late.id in desk.world.community.dispatches[call].idents
    assert len(desk.world.sim.requests_of("GET_ACTIVE_UNITS")) == 2


async def test_attach_goes_ahead_when_the_units_on_duty_cannot_be_listed(desk: Desk) -> None:
    call = await desk.new_call()
    desk.world.sim.fail_next(1, 400, request_type="GET_ACTIVE_UNITS")

    result = await desk.dispatcher.slash(
        desk.world.channel, "dispatch attach", call=call, member=desk.world.officer
    )

    assert reply(result) == "✅ **officer** attached to call **#7**."
    assert desk.world.community.dispatches[call].idents == [desk.officer_unit.id]


async def test_attach_refuses_a_member_who_never_linked(desk: Desk) -> None:
    call = await desk.new_call()

    result = await desk.dispatcher.slash(
        desk.world.channel, "dispatch attach", call=call, member=desk.world.member
    )

    assert refusal(desk.world, result) == (
        "**civilian** hasn't linked a CAD account yet; they need to run /link first."
    )
    assert desk.world.sim.requests_of("ATTACH_UNIT") == []


@pytest.mark.parametrize("call", [-1, 2**31])
async def test_call_numbers_are_bounded_in_the_signature(desk: Desk, call: int) -> None:
    with pytest.raises(OptionError):
        await desk.dispatcher.slash(desk.world.channel, "dispatch attach", call=call)
    assert desk.world.sim.requests == []


# ------------------------------------------------------------------------------------------------ /dispatch detach


async def test_detach_takes_the_dispatcher_off_their_call(desk: Desk) -> None:
    call = await desk.new_call(attach_me=True)

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch detach")

    assert reply(result) == "✅ **D-01 Kim Morgan** detached from call **#7**."
    [sent] = desk.world.sim.requests_of("DETACH_UNIT")
    assert sent.data == [{"serverId": 1, "account": DISPATCHER_UUID}]
    assert desk.world.community.dispatches[call].idents == []
    assert "None attached" in card_text(await desk.card())


async def test_detach_from_a_call_without_a_card_still_detaches(desk: Desk) -> None:
    made_in_cad = desk.world.community.add_dispatch(
        title="Shots", address="Grove", units=[desk.officer_unit.id]
    )

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch detach", member=desk.world.officer)

    assert reply(result) == "✅ **1A-12 Jordan Reyes** detached from their call."
    assert made_in_cad.idents == []


async def test_detach_refuses_a_member_with_no_unit_on_duty(desk: Desk) -> None:
    desk.officer_unit.online = False

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch detach", member=desk.world.officer)

    assert refusal(desk.world, result) == "**officer** has no unit logged in to the CAD right now."
    assert desk.world.sim.requests_of("DETACH_UNIT") == []


# ------------------------------------------------------------------------------------------------ /dispatch note


async def test_note_is_signed_with_the_dispatchers_display_name(desk: Desk) -> None:
    call = await desk.new_call()

    result = await desk.dispatcher.slash(
        desk.world.channel, "dispatch note", call=call, text="Suspect is @everyone's **friend**"
    )

    assert reply(result) == "📝 Note added to call **#7**."
    [sent] = desk.world.sim.requests_of("ADD_CALL_NOTE")
    assert sent.data == [
        {"serverId": 1, "callId": call, "note": "Suspect is @everyone's **friend**", "label": "dispatcher"}
    ]
    assert desk.world.community.dispatches[call].notes[-1]["content"] == "Suspect is @everyone's **friend**"
    shown = card_text(await desk.card())
    assert "@\u200beveryone's \\*\\*friend\\*\\*" in shown  # neutralised on the card


async def test_note_cannot_be_blank_or_too_long(desk: Desk) -> None:
    call = await desk.new_call()

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch note", call=call, text="   ")
    assert refusal(desk.world, result) == "The note can't be blank."
    with pytest.raises(OptionError):
        await desk.dispatcher.slash(desk.world.channel, "dispatch note", call=call, text="x" * 501)
    assert desk.world.sim.requests_of("ADD_CALL_NOTE") == []


async def test_a_500_character_note_is_accepted(desk: Desk) -> None:
    call = await desk.new_call()

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch note", call=call, text="x" * 500)

    assert reply(result) == "📝 Note added to call **#7**."
    assert desk.world.sim.requests_of("ADD_CALL_NOTE")[0].data[0]["note"] == "x" * 500


# ------------------------------------------------------------------------------------------------ /dispatch close


async def test_close_closes_the_call_and_takes_the_buttons_off_its_card(desk: Desk) -> None:
    call = await desk.new_call()

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch close", call=call)

    assert reply(result) == "✅ Call **#7** closed."
    [sent] = desk.world.sim.requests_of("CLOSE_CALL")
    assert sent.data == [{"serverId": 1, "callId": call}]
    card = await desk.card()
    assert "Closed ✅" in card_text(card)
    assert button_labels(card) == []


async def test_close_works_on_standard_where_calls_cannot_be_listed(desk: Desk) -> None:
    call = await desk.new_call()
    desk.world.community.tier = Tier.STANDARD
    desk.world.bot.services.cad.invalidate_tier(desk.world.community.community_id)

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch close", call=call)

    assert reply(result) == "✅ Call **#7** closed."
    assert desk.world.sim.requests_of("GET_CALLS") == []
    assert "Closed ✅" in card_text(await desk.card())


async def test_closing_twice_is_refused_by_the_card(desk: Desk) -> None:
    call = await desk.new_call()
    await desk.dispatcher.slash(desk.world.channel, "dispatch close", call=call)

    result = await desk.dispatcher.slash(desk.world.channel, "dispatch close", call=call)

    assert refusal(desk.world, result) == "Call #7 is already closed."
    assert len(desk.world.sim.requests_of("CLOSE_CALL")) == 1


# ------------------------------------------------------------------------------------------------ refusals shared

NEW = {"title": "Stop", "address": "Here", "description": "Sedan", "priority": 2}
# Every command with options that make it succeed on call #7, and the CAD request it makes.
COMMANDS: list[tuple[str, dict[str, Any], str]] = [
    ("dispatch new", NEW, "NEW_DISPATCH"),
    ("dispatch attach", {"call": FIRST_CALL}, "ATTACH_UNIT"),
    ("dispatch detach", {}, "DETACH_UNIT"),
    ("dispatch note", {"call": FIRST_CALL, "text": "On scene"}, "ADD_CALL_NOTE"),
    ("dispatch close", {"call": FIRST_CALL}, "CLOSE_CALL"),
]
IDS = ["new", "attach", "detach", "note", "close"]


@pytest.fixture
def open_call(desk: Desk) -> int:
    """Call #7, open in the CAD with the dispatcher attached (no card: made in the CAD)."""
    return desk.world.community.add_dispatch(
        title="Traffic Stop", address="Legion Square", units=[desk.dispatcher_unit.id]
    ).call_id


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_members_without_the_dispatch_role_are_refused(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    result = await desk.world.officer.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result) == "You need **@Dispatch** to use dispatch commands."
    assert desk.world.sim.requests == []


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_without_a_role_only_admins_may_dispatch(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    await desk.world.storage.roles.set(desk.world.guild.id, CommandGroup.DISPATCH, None)

    refused = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, refused) == (
        "Only server admins can use dispatch commands until an admin picks a role with `/config role dispatch`."
    )
    assert desk.world.sim.requests == []


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS[1:3], ids=IDS[1:3])
async def test_acting_for_yourself_needs_a_link(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    result = await desk.world.admin.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result) == (
        "Your Discord account isn't linked to a Sonoran CAD account yet; run /link first."
    )
    assert desk.world.sim.requests == []


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS[:4], ids=IDS[:4])
async def test_standard_communities_are_told_they_need_plus(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    desk.world.community.tier = Tier.STANDARD

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    feature = "Call notes" if request_type == "ADD_CALL_NOTE" else "Dispatch calls"
    assert refusal(desk.world, result) == f"{feature} need Sonoran CAD Plus; this community is on Standard."
    assert desk.world.sim.requests_of(request_type) == []


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_unconfigured_guild_is_told_to_run_setup(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    await desk.world.storage.guilds.reset(desk.world.guild.id)
    await desk.world.storage.roles.set(desk.world.guild.id, CommandGroup.DISPATCH, desk.role.id)
    await desk.world.storage.links.link(desk.world.guild.id, desk.dispatcher.id, DISPATCHER_UUID)

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert "an admin needs to run /setup" in refusal(desk.world, result)
    assert desk.world.sim.requests == []


CREDENTIALS = "The CAD rejected this server's API credentials; an admin needs to run /setup again."


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_rejected_api_key_asks_an_admin_to_run_setup(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    desk.world.community.rotate_key("not-the-key-the-bot-has")

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result) == CREDENTIALS


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_unknown_community_asks_an_admin_to_run_setup(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    await desk.world.bot.services.cad.get_tier(await _creds(desk))  # plan known; only the action meets it
    del desk.world.sim.communities[desk.world.community.community_id]

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result) == CREDENTIALS
    assert len(desk.world.sim.requests_of(request_type)) == 1


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_api_switched_off_is_explained(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    desk.world.community.api_enabled = False

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert "not enabled for this community" in refusal(desk.world, result)
    assert len(desk.world.sim.requests_of(request_type)) == 1


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_cad_outage_is_explained_and_the_write_not_repeated(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    desk.world.sim.fail_next(1, 500, request_type=request_type)

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result).startswith("The CAD could not be reached right now")
    assert len(desk.world.sim.requests_of(request_type)) == 1


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_cad_rate_limit_is_explained(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    desk.world.sim.rate_limit_next(3, retry_after=0, request_type=request_type)

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result) == "The CAD is asking the bot to slow down; try again in a minute."


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_request_type_the_cad_does_not_know_is_explained(
    desk: Desk,
    open_call: int,
    command: str,
    options: dict[str, Any],
    request_type: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sending the request to another type's path is how the CAD's INVALID REQUEST TYPE is met for real.
    monkeypatch.setattr(
        cad_client, "path_for", lambda kind: path_for("GET_VERSION" if kind == request_type else kind)
    )

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result) == (
        "The CAD did not understand the bot's request; the bot may need an update, so please tell an admin."
    )
    assert [request.status for request in desk.world.sim.requests_of(request_type)] == [400]


@pytest.mark.parametrize(("command", "options", "request_type"), COMMANDS, ids=IDS)
async def test_cad_timeout_is_still_answered(
    desk: Desk, open_call: int, command: str, options: dict[str, Any], request_type: str
) -> None:
    await desk.world.install_impatient_cad()
    desk.world.sim.latency_s = 30.0

    result = await desk.dispatcher.slash(desk.world.channel, command, **options)

    assert refusal(desk.world, result) == (
        "The CAD took too long to answer; check the CAD before trying again, as the action may already be done."
    )
    assert len(desk.world.sim.requests_of(request_type)) == 1


async def _creds(desk: Desk) -> Any:
    creds = await desk.world.storage.guilds.get_credentials(desk.world.guild.id)
    assert creds is not None
    return creds


# ------------------------------------------------------------------------------------------------ autocomplete


async def test_call_choices_are_open_calls_filtered_by_what_was_typed(desk: Desk) -> None:
    community = desk.world.community
    community.add_dispatch(title="Traffic Stop", address="Legion Square")
    community.add_dispatch(title="Shots fired", address="Grove St", code="10-71")
    community.add_dispatch(title="Traffic collision", address="Route 68")
    community.add_dispatch(title="Traffic jam", address="Old road", status=2)

    everything = await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")
    traffic = await desk.dispatcher.autocomplete(desk.world.channel, "dispatch note", "call", "traf")
    by_number = await desk.dispatcher.autocomplete(desk.world.channel, "dispatch close", "call", "#8")

    assert everything == [
        {"name": "#9 Traffic collision — Route 68", "value": 9},
        {"name": "#8 Shots fired — Grove St", "value": 8},
        {"name": "#7 Traffic Stop — Legion Square", "value": 7},
    ]
    assert [choice["value"] for choice in traffic] == [9, 7]
    assert [choice["value"] for choice in by_number] == [8]
    [sent] = desk.world.sim.requests_of("GET_CALLS")  # one list served all three
    assert sent.data == [{"serverId": 1, "closedLimit": 0, "closedOffset": 0}]


async def test_call_choices_stop_at_25(desk: Desk) -> None:
    for number in range(30):
        desk.world.community.add_dispatch(title=f"Call {number}", address="Somewhere")

    choices = await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")

    assert len(choices) == 25
    assert all(len(choice["name"]) <= 100 for choice in choices)


async def test_call_list_is_read_again_once_the_boards_list_expires(desk: Desk) -> None:
    desk.world.community.add_dispatch(title="Traffic Stop", address="Legion Square")
    await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")
    await desk.world.env.advance_time(CALLS_TTL_S - 1)
    await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "t")
    assert len(desk.world.sim.requests_of("GET_CALLS")) == 1

    await desk.world.env.advance_time(1)
    late = desk.world.community.add_dispatch(title="Late call", address="Here")
    choices = await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")

    assert choices[0]["value"] == late.call_id
    assert len(desk.world.sim.requests_of("GET_CALLS")) == 2


async def test_creating_or_closing_a_call_refreshes_the_choices(desk: Desk) -> None:
    await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")
    call = await desk.new_call()
    assert [
        c["value"]
        for c in await desk.dispatcher.autocomplete(desk.world.channel, "dispatch close", "call", "")
    ] == [call]

    await desk.dispatcher.slash(desk.world.channel, "dispatch close", call=call)

    assert await desk.dispatcher.autocomplete(desk.world.channel, "dispatch close", "call", "") == []


async def test_no_call_choices_for_members_who_may_not_dispatch(desk: Desk) -> None:
    desk.world.community.add_dispatch(title="Traffic Stop", address="Legion Square")

    choices = await desk.world.officer.autocomplete(desk.world.channel, "dispatch attach", "call", "")

    assert choices == []
    assert desk.world.sim.requests == []


async def test_no_call_choices_on_standard(desk: Desk) -> None:
    desk.world.community.tier = Tier.STANDARD

    choices = await desk.dispatcher.autocomplete(desk.world.channel, "dispatch close", "call", "")

    assert choices == []
    assert desk.world.sim.requests_of("GET_CALLS") == []


async def test_no_call_choices_when_the_cad_fails_or_is_slow(desk: Desk) -> None:
    desk.world.community.add_dispatch(title="Traffic Stop", address="Legion Square")
    desk.world.sim.fail_next(1, 400, request_type="GET_CALLS")
    assert await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "") == []

    await desk.world.install_impatient_cad()
    desk.world.sim.latency_s = 30.0
    assert await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "") == []

    desk.world.sim.latency_s = 0.0
    assert len(await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")) == 1


async def test_call_choices_answer_in_time_when_the_cad_hangs(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    cad = desk.world.bot.services.cad
    await cad.get_tier(await _creds(desk))

    async def never_answers(*args: Any, **kwargs: Any) -> Any:
        await desk.world.env.external_wait(asyncio.Event().wait(), reason="a CAD that never lists its calls")

    monkeypatch.setattr(cad, "get_calls", never_answers)
    since = len(desk.world.env.http_requests)

    choices = await desk.dispatcher.autocomplete(desk.world.channel, "dispatch attach", "call", "")
    await desk.world.env.advance_time(AUTOCOMPLETE_BUDGET_S)  # under Discord's 3 s for choices

    assert choices == []
    assert answer_types(desk.world, since) == [8]  # answered, not left to expire


# ------------------------------------------------------------------------------------------------ storage trouble


async def test_a_card_that_cannot_be_stored_does_not_hide_that_the_cad_acted(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    call = await desk.new_call()

    async def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseUnavailableError("database or disk is full")

    monkeypatch.setattr(desk.pipeline, "update_card", disk_full)
    monkeypatch.setattr(desk.pipeline.units, "learn_units", disk_full)
    result = await desk.dispatcher.slash(
        desk.world.channel, "dispatch attach", call=call, member=desk.world.officer
    )

    assert reply(result) == "✅ **1A-12 Jordan Reyes** attached to call **#7**."
    assert desk.world.community.dispatches[call].idents == [desk.officer_unit.id]
    assert "could not update the live card of call 7" in caplog.text
    assert "could not remember unit names" in caplog.text
