"""Every event type end to end: HTTP POST in, the expected embed in the routed channel of the Discord fake."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.cad import events as ev
from bot.cad.models import Unit
from bot.cards.render import render_911_card, render_dispatch_card
from bot.cards.state import (
    DispatchCardState,
    apply_911_event,
    apply_dispatch_event,
    is_card_event,
)
from bot.formatting.context import FormatContext
from bot.formatting.events import format_event
from bot.formatting.limits import EmbedDict, clamp_embed
from bot.push.routing import category_for
from bot.push.unit_directory import UnitDirectory
from bot.storage.inbox import InboxEntry
from bot.storage.models import Category
from tests.formatting.samples import (
    DOCUMENTED_TYPES,
    PRINT_RECORD_ENVELOPE,
    SAMPLE_ENVELOPES,
    sample_event,
)
from tests.push.conftest import API_KEY, COMMUNITY_ID, GUILD_A, PushWorld, channel_of, envelope


def _learnt_names(event: ev.PushEvent) -> dict[int, str]:
    units: list[Unit] = []
    if isinstance(event, ev.UnitLoginEvent):
        units.append(event.unit)
    elif isinstance(event, ev.UnitUpdateEvent | ev.UnitStatusEvent):
        units.extend(event.units)
    return {unit.id: unit.display_name for unit in units if unit.display_name}


def _expected_embed(type_: str) -> EmbedDict:
    """What a guild with every category routed must see for this sample, on a fresh database."""
    event = sample_event(type_)
    ctx = FormatContext(community_label=COMMUNITY_ID, unit_names=_learnt_names(event))
    if is_card_event(event) and not isinstance(event, ev.DispatchBodycamEvent):
        card: Any = (
            apply_911_event(None, event)
            if category_for(event) == Category.CALLS_911
            else apply_dispatch_event(None, event)
        )
        if card is not None:
            rendered = (
                render_dispatch_card(card, ctx)
                if isinstance(card, DispatchCardState)
                else render_911_card(card, ctx)
            )
            return clamp_embed(rendered)
    expected = format_event(event, ctx)
    assert expected is not None, type_
    return expected


def _comparable(embed: EmbedDict) -> EmbedDict:
    return {key: value for key, value in embed.items() if key != "timestamp"}


def test_the_samples_cover_every_documented_type() -> None:
    assert len(DOCUMENTED_TYPES) == 26


@pytest.mark.parametrize("type_", list(SAMPLE_ENVELOPES))
async def test_event_reaches_its_routed_channel_as_the_expected_embed(
    push_world: PushWorld, type_: str
) -> None:
    sample = SAMPLE_ENVELOPES[type_]
    status, answer, _ = await push_world.post({**sample, "key": API_KEY})
    assert (status, answer["status"]) == (200, "accepted")
    await push_world.settle()

    category = category_for(type_)
    messages = push_world.fake.messages(channel_of(GUILD_A, category))
    assert len(messages) == 1, f"{type_} -> {category}: {messages}"
    assert len(messages[0].embeds) == 1
    assert _comparable(messages[0].embeds[0]) == _comparable(_expected_embed(type_))
    for other in Category:
        if other != category:
            assert push_world.fake.messages(channel_of(GUILD_A, other)) == [], other


async def test_an_in_game_printer_action_is_acknowledged_and_not_posted(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post({**PRINT_RECORD_ENVELOPE, "key": API_KEY})
    assert (status, answer["status"]) == (200, "ignored")
    # Stored before an upgrade: an inbox row of it is read as ignored too, not posted.
    await push_world.pipeline.store.inbox.add(
        [
            InboxEntry(
                received_at=0.0,
                event_type="EVENT_PRINT_RECORD",
                community_id=COMMUNITY_ID,
                guild_ids=(GUILD_A,),
                body=PRINT_RECORD_ENVELOPE,
            )
        ]
    )
    push_world.pipeline.wake()
    await push_world.settle()

    assert push_world.fake.requests == []
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_events_received_total{outcome="ignored",type="EVENT_PRINT_RECORD"} 1.0' in metrics
    assert 'sonoran_push_events_processed_total{outcome="ignored",type="EVENT_PRINT_RECORD"} 1.0' in metrics


async def test_unit_names_learnt_from_login_name_later_events(push_world: PushWorld) -> None:
    login = SAMPLE_ENVELOPES["EVENT_UNIT_LOGIN"]
    await push_world.post({**login, "key": API_KEY})
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57], "isPanic": True}))
    await push_world.settle()
    [panic] = push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))
    assert "1A-12 Jordan Reyes" in panic.embeds[0]["title"]


async def test_unit_directory_survives_a_restart(push_world: PushWorld) -> None:
    await push_world.post({**SAMPLE_ENVELOPES["EVENT_UNIT_LOGIN"], "key": API_KEY})
    await push_world.settle()
    await push_world.restart()
    await push_world.post(envelope("EVENT_UNIT_STATUS", {"identIds": [57], "status": 3}))
    await push_world.settle()
    messages = push_world.fake.messages(channel_of(GUILD_A, Category.UNITS))
    assert "1A-12 Jordan Reyes" in messages[-1].embeds[0]["title"]


async def test_a_name_learnt_while_the_directory_loads_is_kept(push_world: PushWorld) -> None:
    # A command teaches a name while the delivery worker, drawing a card, loads the same community's names.
    directory = UnitDirectory(push_world.pipeline.store.unit_names)
    named = [Unit.model_validate({"id": 57, "data": {"unitNum": "1A-12"}})]

    await asyncio.gather(directory.learn_units(COMMUNITY_ID, named), directory.names(COMMUNITY_ID))

    assert (await directory.names(COMMUNITY_ID)).get(57) == "1A-12"


async def test_units_the_cad_listed_teach_their_names_and_a_nameless_one_blanks_none(
    push_world: PushWorld,
) -> None:
    # What /panic and /dispatch do with the units on duty they read: the same Unit the API returned.
    directory = UnitDirectory(push_world.pipeline.store.unit_names)
    listed = [
        Unit.model_validate({"id": 57, "data": {"unitNum": "1A-12", "name": "Jordan Reyes"}}),
        Unit.model_validate({"id": 58}),
    ]
    await directory.learn_units(COMMUNITY_ID, listed)
    await directory.learn_units(COMMUNITY_ID, [Unit.model_validate({"id": 57, "data": {"name": " "}})])

    assert dict(await directory.names(COMMUNITY_ID)) == {57: "1A-12 Jordan Reyes"}
    assert dict(await UnitDirectory(push_world.pipeline.store.unit_names).names(COMMUNITY_ID)) == {
        57: "1A-12 Jordan Reyes"
    }


async def test_unit_update_renames_a_unit(push_world: PushWorld) -> None:
    await push_world.post({**SAMPLE_ENVELOPES["EVENT_UNIT_LOGIN"], "key": API_KEY})
    renamed = {"units": [{"id": 57, "status": 2, "data": {"unitNum": "2B-01", "name": "Jordan Reyes"}}]}
    await push_world.post(envelope("EVENT_UNIT_UPDATE", renamed))
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    [panic] = push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))
    assert "2B-01 Jordan Reyes" in panic.embeds[0]["title"]


async def test_array_data_posts_one_embed_per_element(push_world: PushWorld) -> None:
    elements = [{"identIds": [57], "isPanic": True}, {"identIds": [58], "isPanic": True}]
    await push_world.post(envelope("EVENT_UNIT_PANIC", elements))
    await push_world.settle()
    embeds = push_world.fake.all_embeds(channel_of(GUILD_A, Category.PANIC))
    assert [embed["title"] for embed in embeds] == ["🚨 PANIC — Unit #57", "🚨 PANIC — Unit #58"]


async def test_disabled_category_posts_nothing(push_world: PushWorld) -> None:
    await push_world.storage.routes.set_enabled(GUILD_A, Category.PANIC, False)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    assert push_world.fake.messages(channel_of(GUILD_A, Category.PANIC)) == []


async def test_a_formatter_bug_on_one_event_does_not_block_the_next(
    push_world: PushWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.push.processor as processor

    real_format = processor.format_event

    def broken_for_tones(event: ev.PushEvent, ctx: FormatContext) -> EmbedDict | None:
        if isinstance(event, ev.ToneEvent):
            raise RuntimeError("formatter bug")
        return real_format(event, ctx)

    monkeypatch.setattr(processor, "format_event", broken_for_tones)
    await push_world.post({**SAMPLE_ENVELOPES["EVENT_TONE"], "key": API_KEY})
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.settle()
    assert len(push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))) == 1
    assert push_world.fake.messages(channel_of(GUILD_A, Category.OTHER)) == []
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_events_processed_total{outcome="error",type="EVENT_TONE"} 1.0' in metrics
