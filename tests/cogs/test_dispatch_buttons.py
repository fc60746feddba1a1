"""Attach me / Detach me on live dispatch cards (also after a restart), and the buttons the pipeline draws."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.cad import events as ev
from bot.storage.models import Category, CommandGroup
from cogs.dispatch import Dispatch
from tests.cogs._member_helpers import reply
from tests.cogs.test_dispatch import (
    DISPATCHER_UUID,
    OFFICER_UUID,
    Desk,
    button_labels,
    card_requests,
    card_text,
    desk,
)

__all__ = ["desk"]  # the fixture, imported so pytest finds it here


@pytest.fixture
async def patrol(desk: Desk) -> Any:
    """The officer, given the Dispatch role too: a linked member who may use the card's buttons."""
    world = desk.world
    officer = world.guild.add_member(world.env.create_user("sergeant"), roles=[desk.role])
    await world.storage.links.link(world.guild.id, officer.id, OFFICER_UUID, username="jreyes")
    return officer


async def test_attach_me_attaches_the_clickers_unit_and_updates_the_card(desk: Desk, patrol: Any) -> None:
    call = await desk.new_call()
    card = await desk.card()

    result = await patrol.click(card, label="Attach me")

    assert reply(result) == "✅ **1A-12 Jordan Reyes** attached to call **#7**."
    [sent] = desk.world.sim.requests_of("ATTACH_UNIT")
    assert sent.data == [{"serverId": 1, "callId": call, "account": OFFICER_UUID}]
    updated = await desk.card()
    assert updated.id == card.id
    assert "1A-12 Jordan Reyes" in card_text(updated)
    assert button_labels(updated) == ["Attach me", "Detach me"]


async def test_detach_me_detaches_the_clickers_unit_and_updates_the_card(desk: Desk) -> None:
    call = await desk.new_call(attach_me=True)
    card = await desk.card()

    result = await desk.dispatcher.click(card, label="Detach me")

    assert reply(result) == "✅ **D-01 Kim Morgan** detached from call **#7**."
    [sent] = desk.world.sim.requests_of("DETACH_UNIT")
    assert sent.data == [{"serverId": 1, "account": DISPATCHER_UUID}]
    assert desk.world.community.dispatches[call].idents == []
    assert "None attached" in card_text(await desk.card())


async def test_buttons_on_a_card_posted_before_a_restart_still_work(desk: Desk, patrol: Any) -> None:
    await desk.new_call(attach_me=True)
    old_card = await desk.card()

    await desk.world.restart()
    attached = await patrol.click(old_card, label="Attach me")
    detached = await desk.dispatcher.click(old_card, label="Detach me")

    assert reply(attached) == "✅ **1A-12 Jordan Reyes** attached to call **#7**."
    assert reply(detached) == "✅ **D-01 Kim Morgan** detached from call **#7**."
    card = await desk.card()
    assert card.id == old_card.id
    shown = card_text(card)
    assert "1A-12 Jordan Reyes" in shown and "D-01 Kim Morgan" not in shown
    assert len(card_requests(desk.world, "POST")) == 1


async def test_a_member_who_never_linked_is_sent_to_link(desk: Desk) -> None:
    await desk.new_call()

    result = await desk.world.admin.click(await desk.card(), label="Attach me")

    assert reply(result) == "Your Discord account isn't linked to a Sonoran CAD account yet; run /link first."
    assert desk.world.sim.requests_of("ATTACH_UNIT") == []


@pytest.mark.parametrize("label", ["Attach me", "Detach me"])
async def test_a_member_without_the_dispatch_role_is_refused(desk: Desk, label: str) -> None:
    await desk.new_call()

    result = await desk.world.officer.click(await desk.card(), label=label)

    assert reply(result) == "You need **@Dispatch** to use dispatch commands."
    assert desk.world.sim.requests_of("ATTACH_UNIT") == desk.world.sim.requests_of("DETACH_UNIT") == []


async def test_a_member_without_the_dispatch_role_is_refused_after_a_restart_too(desk: Desk) -> None:
    await desk.new_call()
    card = await desk.card()
    await desk.world.restart()

    result = await desk.world.officer.click(card, label="Attach me")

    assert reply(result) == "You need **@Dispatch** to use dispatch commands."


async def test_detach_me_on_a_call_the_clicker_is_not_on_is_refused(desk: Desk) -> None:
    await desk.new_call()  # nobody attached

    result = await desk.dispatcher.click(await desk.card(), label="Detach me")

    assert reply(result) == (
        "You aren't attached to call #7; /dispatch detach takes you off whichever call you are on."
    )
    assert desk.world.sim.requests_of("DETACH_UNIT") == []


async def test_attach_me_without_a_unit_on_duty_is_refused(desk: Desk) -> None:
    await desk.new_call()
    desk.dispatcher_unit.online = False

    result = await desk.dispatcher.click(await desk.card(), label="Attach me")

    assert (
        reply(result) == "You have no unit logged in to the CAD right now; log in to a unit, then try again."
    )


async def test_a_cad_error_on_click_is_one_sentence(desk: Desk) -> None:
    await desk.new_call()
    desk.world.community.api_enabled = False

    result = await desk.dispatcher.click(await desk.card(), label="Attach me")

    assert "not enabled for this community" in reply(result)


async def test_a_slow_cad_on_click_is_still_answered(desk: Desk) -> None:
    await desk.new_call()
    card = await desk.card()
    await desk.world.install_impatient_cad()
    desk.world.sim.latency_s = 30.0

    result = await desk.dispatcher.click(card, label="Attach me")

    assert reply(result).startswith("The CAD took too long to answer")


async def test_a_bug_behind_a_button_is_reported_with_an_error_id(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await desk.new_call()
    card = await desk.card()
    # discord.py executes each extension module afresh, so compare by name rather than by class identity.
    cog = desk.world.bot.get_cog(Dispatch.__cog_name__)
    assert cog is not None

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cog, "press_card_button", broken)
    result = await desk.dispatcher.click(card, label="Attach me")

    assert reply(result).startswith("Something went wrong on our side (error id `")
    assert "component 'cad:card:attach:7'" in caplog.text


async def test_checking_the_call_and_naming_units_never_hold_the_action_back(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    made_in_cad = desk.world.community.add_dispatch(title="Shots fired", address="Grove St")
    cad = desk.world.bot.services.cad

    async def never_answers(*args: Any, **kwargs: Any) -> Any:
        await desk.world.env.external_wait(asyncio.Event().wait(), reason="a CAD that never lists anything")

    monkeypatch.setattr(cad, "get_calls", never_answers)
    monkeypatch.setattr(cad, "get_active_units", never_answers)
    result = await desk.dispatcher.slash(
        desk.world.channel, "dispatch attach", call=made_in_cad.call_id, member=desk.world.officer
    )
    assert result.deferred

    await desk.world.env.advance_time(10)

    assert reply(result) == "✅ **officer** attached to call **#7**."
    assert made_in_cad.idents == [desk.officer_unit.id]
    await desk.delivered()
    assert desk.world.alerts.history() == []  # unverified: no card is started


# ------------------------------------------------------------------------------------------------ pipeline


async def test_911_cards_get_no_components(desk: Desk) -> None:
    world = desk.world
    await world.storage.routes.set_channel(world.guild.id, Category.CALLS_911, world.alerts.id)
    event = ev.Emergency911Event.model_validate(
        {"call": {"callId": 1042, "isEmergency": True, "caller": "Maria", "location": "Alta St"}}
    )

    await desk.pipeline.publish_local(world.guild.id, event)

    card = await desk.card()
    [post] = card_requests(world, "POST")
    assert "components" not in post.json
    assert button_labels(card) == []


async def test_a_card_whose_buttons_cannot_be_drawn_is_still_shown(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(card: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(desk.pipeline.delivery, "_card_components", broken)

    await desk.new_call()

    card = await desk.card()
    assert card.embeds[0].title == "📟 Call #7 — Traffic Stop"
    assert button_labels(card) == []


async def test_a_call_the_cad_numbered_below_zero_gets_working_buttons(desk: Desk) -> None:
    world = desk.world
    event = ev.DispatchNewEvent.model_validate(
        {"dispatch": {"callId": -7, "title": "Shots fired", "address": "Grove St", "status": 1}}
    )
    await desk.pipeline.publish_local(world.guild.id, event)
    card = await desk.card()
    assert card.embeds[0].title == "📟 Call #-7 — Shots fired"
    assert button_labels(card) == ["Attach me", "Detach me"]

    result = await desk.dispatcher.click(card, label="Attach me")

    assert reply(result) == "✅ **D-01 Kim Morgan** attached to call **#-7**."
    [sent] = world.sim.requests_of("ATTACH_UNIT")
    assert sent.data == [{"serverId": 1, "callId": -7, "account": DISPATCHER_UUID}]
    assert "D-01 Kim Morgan" in card_text(await desk.card())


async def test_without_a_dispatch_role_only_admins_may_click(desk: Desk) -> None:
    await desk.new_call()
    await desk.world.storage.roles.set(desk.world.guild.id, CommandGroup.DISPATCH, None)

    result = await desk.dispatcher.click(await desk.card(), label="Attach me")

    assert reply(result) == (
        "Only server admins can use dispatch commands until an admin picks a role with `/config role dispatch`."
    )
    assert desk.world.sim.requests_of("ATTACH_UNIT") == []
