"""/panic and /unit status through SimCord against the CAD simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from simcord import OptionError

from bot.cad.board import UNITS_TTL_S
from bot.cad.tiers import Tier
from bot.push.pipeline import PushPipeline
from bot.storage.models import Category, CommandGroup
from tests.cogs._member_helpers import (
    answer_types,
    channel_posts,
    refusal,
    reply,
    reply_mentions,
)
from tests.harness import API_KEY, COMMUNITY_ID, World

OFFICER_UUID = "5b0f6c1e-8d2a-4c3b-9f4e-2a7d1c9e0b11"

# Every unit command with options that make it succeed, for the refusals they all share.
UNIT_COMMANDS: list[tuple[str, dict[str, Any], str]] = [
    ("panic", {}, "UNIT_PANIC"),
    ("panic", {"state": "off"}, "UNIT_PANIC"),
    ("unit status", {"status": 3}, "UNIT_STATUS"),
]
COMMAND_IDS = ["panic-on", "panic-off", "unit-status"]


@pytest.fixture
def officer_unit(world: World) -> Any:
    return world.community.add_unit(account=world.officer_account, unit_num="1A-12", name="Jordan Reyes")


async def test_panic_turns_the_linked_units_panic_on(world: World, officer_unit: Any) -> None:
    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")

    assert reply(result) == "🚨 Panic ON — dispatch has been alerted."
    assert answer_types(world, since)[0] == 5
    assert reply_mentions(world, since) == [{"parse": []}]
    [sent] = world.sim.requests_of("UNIT_PANIC")
    assert sent.data == [{"account": OFFICER_UUID, "isPanic": True}]
    assert officer_unit.is_panic is True


async def test_panic_off_clears_it(world: World, officer_unit: Any) -> None:
    officer_unit.is_panic = True

    result = await world.officer.slash(world.channel, "panic", state="off")

    assert reply(result) == "Panic cleared."
    [sent] = world.sim.requests_of("UNIT_PANIC")
    assert sent.data == [{"account": OFFICER_UUID, "isPanic": False}]
    assert officer_unit.is_panic is False


async def test_panic_state_only_offers_on_and_off(world: World) -> None:
    with pytest.raises(OptionError):
        await world.officer.slash(world.channel, "panic", state="maybe")
    assert world.sim.requests == []


async def test_unit_status_sets_a_standard_status(world: World, officer_unit: Any) -> None:
    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "unit status", status=4)

    # The same label as the picker, /units and the push embeds (bot.cad.codes).
    assert reply(result) == "Your unit status is now **On scene**."
    assert answer_types(world, since)[0] == 5
    [sent] = world.sim.requests_of("UNIT_STATUS")
    assert sent.data == [{"account": OFFICER_UUID, "status": 4, "serverId": 1}]
    assert officer_unit.status == 4


async def test_unit_status_accepts_a_community_code(world: World, officer_unit: Any) -> None:
    await world.storage.guilds.set_cad(world.guild.id, COMMUNITY_ID, API_KEY, server_id=3)  # as /setup does
    officer_unit.server_id = 3

    result = await world.officer.slash(world.channel, "unit status", code=7)

    assert reply(result) == "Your unit status is now **Code 7**."
    [sent] = world.sim.requests_of("UNIT_STATUS")
    assert sent.data == [{"account": OFFICER_UUID, "status": 7, "serverId": 3}]
    assert officer_unit.status == 7


@pytest.mark.parametrize("options", [{}, {"status": 2, "code": 2}], ids=["neither", "both"])
async def test_unit_status_needs_exactly_one_of_status_and_code(
    world: World, options: dict[str, int]
) -> None:
    result = await world.officer.slash(world.channel, "unit status", **options)

    assert refusal(world, result) == (
        "Pick a status from the list, or give a community status number as `code` — exactly one of the two."
    )
    assert world.sim.requests == []


async def test_unit_status_code_is_bounded_in_the_signature(world: World) -> None:
    with pytest.raises(OptionError):
        await world.officer.slash(world.channel, "unit status", code=100)
    with pytest.raises(OptionError):
        await world.officer.slash(world.channel, "unit status", status=9)
    assert world.sim.requests == []


async def test_member_linked_by_api_id_is_targeted_by_api_id(world: World) -> None:
    api_id = str(world.member.id)
    account = world.community.add_account("mfox", api_ids=[api_id])
    unit = world.community.add_unit(account=account, unit_num="2B-04")
    await world.storage.links.link(
        world.guild.id, world.member.id, f"api-id:{api_id}", username="mfox", api_id=api_id
    )

    await world.member.slash(world.channel, "panic")
    await world.member.slash(world.channel, "unit status", status=1)

    assert world.sim.requests_of("UNIT_PANIC")[0].data == [{"apiId": api_id, "isPanic": True}]
    assert world.sim.requests_of("UNIT_STATUS")[0].data == [{"apiId": api_id, "status": 1, "serverId": 1}]
    assert unit.is_panic is True
    assert unit.status == 1


async def test_api_id_removed_from_the_cad_account_is_explained(world: World) -> None:
    api_id = str(world.member.id)
    await world.storage.links.link(world.guild.id, world.member.id, f"api-id:{api_id}", api_id=api_id)

    result = await world.member.slash(world.channel, "panic")

    assert (
        refusal(world, result)
        == "Your Discord account is not linked to a CAD account yet; link it with /link."
    )


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_members_who_never_linked_are_sent_to_link(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    result = await world.member.slash(world.channel, command, **options)

    assert refusal(world, result) == (
        "Your Discord account isn't linked to a Sonoran CAD account yet; run /link first."
    )
    assert world.sim.requests == []


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_units_role_is_required_when_set(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    patrol = world.guild.create_role("Patrol")
    await world.storage.roles.set(world.guild.id, CommandGroup.UNITS, patrol.id)

    result = await world.officer.slash(world.channel, command, **options)

    assert refusal(world, result) == "You need **@Patrol** to use unit commands."
    assert world.sim.requests == []


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_members_with_the_units_role_are_allowed(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    patrol = world.guild.create_role("Patrol")
    await world.storage.roles.set(world.guild.id, CommandGroup.UNITS, patrol.id)
    trooper = world.guild.add_member(world.env.create_user("trooper"), roles=[patrol])
    await world.storage.links.link(world.guild.id, trooper.id, "0d3c9a52-1111-4c3b-9f4e-2a7d1c9e0b22")

    result = await trooper.slash(world.channel, command, **options)

    assert not reply(result).startswith("You need")
    assert len(world.sim.requests_of(request_type)) == 1


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_plan_below_standard_is_explained(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    world.community.tier = Tier.STARTER

    result = await world.officer.slash(world.channel, command, **options)

    feature = "Panic buttons" if request_type == "UNIT_PANIC" else "Unit status changes"
    assert refusal(world, result) == f"{feature} need Sonoran CAD Standard; this community is on Starter."
    assert world.sim.requests_of(request_type) == []


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_rejected_api_key_asks_an_admin_to_run_setup(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    world.community.rotate_key("not-the-key-the-bot-has")

    result = await world.officer.slash(world.channel, command, **options)

    assert refusal(world, result) == (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_api_not_enabled_is_explained(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    world.community.api_enabled = False

    result = await world.officer.slash(world.channel, command, **options)

    assert "not enabled for this community" in refusal(world, result)
    assert len(world.sim.requests_of(request_type)) == 1


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_unconfigured_guild_is_told_to_run_setup(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    await world.storage.guilds.reset(world.guild.id)
    await world.storage.links.link(world.guild.id, world.officer.id, OFFICER_UUID)

    result = await world.officer.slash(world.channel, command, **options)

    assert "an admin needs to run /setup" in refusal(world, result)
    assert world.sim.requests == []


@pytest.mark.parametrize(("command", "options", "request_type"), UNIT_COMMANDS, ids=COMMAND_IDS)
async def test_cad_timeout_is_still_answered(
    world: World, command: str, options: dict[str, Any], request_type: str
) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 30.0

    result = await world.officer.slash(world.channel, command, **options)

    assert refusal(world, result).startswith("The CAD took too long to answer")
    assert len(world.sim.requests_of(request_type)) == 1


# ------------------------------------------------------------------------------------- panic alerts


@pytest.fixture
def pipeline(world: World) -> PushPipeline:
    """The bot's own push pipeline, built by the production factory and started with the bot."""
    running = world.bot.services.pipeline
    assert running is not None
    return running


@pytest.fixture
async def supervisors(world: World, pipeline: PushPipeline) -> Any:
    """A panic route to the alerts channel that pings this role."""
    role = world.guild.create_role("Supervisors")
    await world.storage.routes.set_channel(world.guild.id, Category.PANIC, world.alerts.id)
    await world.storage.routes.set_ping_role(world.guild.id, Category.PANIC, role.id)
    return role


async def delivered(world: World, pipeline: PushPipeline, since: int) -> list[Any]:
    await pipeline.wait_until_idle(timeout_s=5)
    await world.env.settle()
    return channel_posts(world, since)


def channel_edits(world: World, since: int) -> list[Any]:
    """Edits of channel messages (live cards amended in place) after request ``since``."""
    return [
        entry
        for entry in world.env.http_requests[since:]
        if entry.method == "PATCH" and entry.path.startswith("/channels/")
    ]


def shown_alert(world: World) -> Any:
    """The one alert in the panic channel, as Discord shows it now (after any edits)."""
    [message] = world.alerts.history()
    return message.embeds[0]


NOT_CONFIRMED = "⚠️ The CAD did not confirm: "


async def test_panic_alert_reaches_the_panic_route_and_pings_its_role(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")

    assert reply(result) == "🚨 Panic ON — dispatch has been alerted."
    [post] = await delivered(world, pipeline, since)
    assert post.path == f"/channels/{world.alerts.id}/messages"
    assert post.json["content"] == f"<@&{supervisors.id}>"
    assert post.json["allowed_mentions"] == {"parse": [], "roles": [str(supervisors.id)]}
    alert = shown_alert(world)
    assert alert.title == "🚨 PANIC — 1A-12 Jordan Reyes"  # named from the CAD's active units
    # Confirmed by the CAD: no line about it (and the confirmation itself costs no edit).
    assert alert.description == "**Panic button activated.** Check on the unit and send help."
    assert len(channel_edits(world, since)) <= 1  # at most the unit's name, amended in


async def test_clearing_a_panic_is_posted_without_a_ping(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    since = len(world.env.http_requests)
    await world.officer.slash(world.channel, "panic", state="off")

    [post] = await delivered(world, pipeline, since)
    assert shown_alert(world).title == "✅ Panic cleared — 1A-12 Jordan Reyes"
    assert shown_alert(world).description == "The panic was cleared from Discord."
    assert "content" not in post.json
    assert post.json["allowed_mentions"] == {"parse": []}


async def test_active_units_are_asked_once_for_presses_close_together(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    since = len(world.env.http_requests)
    await world.officer.slash(world.channel, "panic")
    await world.officer.slash(world.channel, "panic", state="off")

    assert len(await delivered(world, pipeline, since)) == 2
    assert len(world.sim.requests_of("GET_ACTIVE_UNITS")) == 1


async def test_units_then_a_panic_within_the_ttl_cost_one_unit_listing(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    listed = await world.admin.slash(world.channel, "units")
    await world.env.advance_time(UNITS_TTL_S - 5)

    since = len(world.env.http_requests)
    await world.officer.slash(world.channel, "panic")

    assert "1A-12 Jordan Reyes" in listed.response.embeds[0].description
    await delivered(world, pipeline, since)
    assert shown_alert(world).title == "🚨 PANIC — 1A-12 Jordan Reyes"  # named from /units' list
    assert len(world.sim.requests_of("GET_ACTIVE_UNITS")) == 1


async def test_panic_alert_is_posted_even_when_the_unit_cannot_be_named(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    world.community.tier = Tier.STANDARD  # panic works; listing units needs Plus

    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")

    assert reply(result) == "🚨 Panic ON — dispatch has been alerted."
    assert world.sim.requests_of("GET_ACTIVE_UNITS") == []
    [post] = await delivered(world, pipeline, since)
    assert post.json["content"] == f"<@&{supervisors.id}>"
    assert shown_alert(world).title == "🚨 PANIC — jreyes"  # the member's linked CAD username


async def test_panic_alert_survives_a_failed_unit_listing(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    world.sim.fail_next(1, 400, request_type="GET_ACTIVE_UNITS")

    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")

    assert reply(result) == "🚨 Panic ON — dispatch has been alerted."
    [post] = await delivered(world, pipeline, since)
    assert post.json["allowed_mentions"] == {"parse": [], "roles": [str(supervisors.id)]}


async def test_a_cad_that_refuses_the_panic_does_not_silence_the_alert(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    world.community.api_enabled = False  # the CAD answers UNIT_PANIC with its "not enabled" error string

    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")

    reason = (
        "The CAD says panic buttons are not enabled for this community; they need Sonoran CAD Standard or "
        "higher, so an admin should check the plan and that the API is switched on in the CAD's admin settings."
    )
    assert (
        reply(result) == f"🚨 Your panic alert was sent to Discord, but the CAD did not confirm it: {reason}"
    )
    [post] = await delivered(world, pipeline, since)
    assert post.json["content"] == f"<@&{supervisors.id}>"
    alert = shown_alert(world)
    assert alert.title == "🚨 PANIC — jreyes"
    assert alert.description == (
        f"**Panic button activated.** Check on the unit and send help.\n{NOT_CONFIRMED}{reason}"
    )
    assert "IS NOT ENABLED" not in alert.description  # the CAD's own words never reach the channel
    assert officer_unit.is_panic is False


async def test_a_cad_timing_out_does_not_hold_the_alert_back(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    await world.install_impatient_cad(timeout_s=20.0)
    world.sim.latency_s = 60.0

    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")
    assert result.deferred  # parked on the CAD, which has not answered

    # The alert is already in Discord, pinging once, before the CAD says anything.
    [post] = await delivered(world, pipeline, since)
    assert post.json["content"] == f"<@&{supervisors.id}>"
    assert post.json["allowed_mentions"] == {"parse": [], "roles": [str(supervisors.id)]}
    assert shown_alert(world).description == "**Panic button activated.** Check on the unit and send help."

    await world.env.advance_time(21)  # past the CAD's timeout

    timed_out = "The CAD took too long to answer; check the CAD before trying again, as the action may already be done."
    assert (
        reply(result)
        == f"🚨 Your panic alert was sent to Discord, but the CAD did not confirm it: {timed_out}"
    )
    assert await delivered(world, pipeline, since) == [post]  # amended in place: still one post, one ping
    edits = channel_edits(world, since)
    assert edits and all("content" not in edit.json for edit in edits)
    alert = shown_alert(world)
    assert alert.title == "🚨 PANIC — jreyes"
    assert alert.description.endswith(f"\n{NOT_CONFIRMED}{timed_out}")
    assert world.alerts.history()[0].content == f"<@&{supervisors.id}>"


async def test_clearing_a_panic_the_cad_does_not_confirm_says_so_too(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any
) -> None:
    officer_unit.is_panic = True
    world.sim.fail_next(1, 500, request_type="UNIT_PANIC")  # a write is not retried after a 500

    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic", state="off")

    unreachable = "The CAD could not be reached right now; try again in a few minutes (status.sonorancad.com shows outages)."
    assert reply(result) == (
        f"Your panic-cleared notice was sent to Discord, but the CAD did not confirm it: {unreachable}"
    )
    [post] = await delivered(world, pipeline, since)
    assert "content" not in post.json  # clearing never pings
    alert = shown_alert(world)
    assert alert.title == "✅ Panic cleared — 1A-12 Jordan Reyes"
    assert alert.description == f"The panic was cleared from Discord.\n{NOT_CONFIRMED}{unreachable}"
    assert officer_unit.is_panic is True


@pytest.mark.parametrize("who", ["never-linked", "without-the-role", "plan-known-too-low"])
async def test_members_who_may_not_press_panic_raise_no_alert(
    world: World, officer_unit: Any, pipeline: PushPipeline, supervisors: Any, who: str
) -> None:
    presser = world.officer
    if who == "never-linked":
        presser = world.member
    elif who == "without-the-role":
        patrol = world.guild.create_role("Patrol")
        await world.storage.roles.set(world.guild.id, CommandGroup.UNITS, patrol.id)
    else:
        world.community.tier = Tier.STARTER
        await world.admin.slash(world.channel, "units")  # reads (and caches) the plan

    since = len(world.env.http_requests)
    result = await presser.slash(world.channel, "panic")

    refusal(world, result)
    assert await delivered(world, pipeline, since) == []
    assert world.sim.requests_of("UNIT_PANIC") == []


async def test_panic_without_a_panic_route_still_confirms(
    world: World, officer_unit: Any, pipeline: PushPipeline
) -> None:
    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")

    assert reply(result) == "🚨 Panic ON — dispatch has been alerted."
    assert officer_unit.is_panic is True
    assert await delivered(world, pipeline, since) == []


async def test_a_cad_too_slow_to_list_units_does_not_hold_the_alert_back(
    world: World,
    officer_unit: Any,
    pipeline: PushPipeline,
    supervisors: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never_answers(*args: Any, **kwargs: Any) -> list[Any]:
        await world.env.external_wait(asyncio.Event().wait(), reason="a CAD that never lists its units")
        return []

    monkeypatch.setattr(world.bot.services.cad, "get_active_units", never_answers)
    since = len(world.env.http_requests)
    result = await world.officer.slash(world.channel, "panic")
    assert result.deferred  # parked on the unit listing

    await world.env.advance_time(3)  # past the lookup budget

    assert reply(result) == "🚨 Panic ON — dispatch has been alerted."
    [post] = await delivered(world, pipeline, since)
    assert post.json["content"] == f"<@&{supervisors.id}>"
