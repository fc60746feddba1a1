"""Live call cards end to end: one message per call and guild, edited in place, persisted across restarts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.cad import events as ev
from bot.cards.state import CardKind, DispatchCardState, closed, dispatch_state_from_call, with_note
from bot.storage.models import Category
from tests.push.conftest import GUILD_A, GUILD_B, PING_ROLE, PushWorld, channel_of, envelope

DISPATCH_CHANNEL = channel_of(GUILD_A, Category.DISPATCH)
CALLS_911_CHANNEL = channel_of(GUILD_A, Category.CALLS_911)


def _dispatch(call_id: int = 311, **changes: Any) -> dict[str, Any]:
    call = {
        "callId": call_id,
        "origin": 0,
        "status": 1,
        "priority": 2,
        "address": "Legion Square",
        "postal": "7153",
        "title": "Traffic Stop",
        "code": "10-38 - Traffic Stop",
        "description": "Silver sedan, plate 8KXP214",
        "notes": [],
        "idents": [57],
        "metaData": {},
    }
    call.update(changes)
    return {"eventOriginIdent": 12, "dispatch": call}


def _text(embed: dict[str, Any]) -> str:
    parts = [str(embed.get("title", "")), str(embed.get("description", ""))]
    parts += [f"{field['name']} {field['value']}" for field in embed.get("fields", [])]
    return "\n".join(parts)


async def _step(world: PushWorld, type_: str, data: Any) -> None:
    status, _, _ = await world.post(envelope(type_, data))
    assert status == 200
    await world.settle()


async def test_dispatch_card_through_a_whole_call(push_world: PushWorld) -> None:
    await _step(
        push_world,
        "EVENT_UNIT_LOGIN",
        {"unit": {"id": 58, "data": {"unitNum": "1A-14", "name": "Sam Ortiz"}}},
    )
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch())
    await _step(
        push_world,
        "EVENT_DISPATCH_NOTE",
        {"callId": 311, "note": {"label": "1A-12", "content": "Driver fled"}},
    )
    await _step(push_world, "EVENT_DISPATCH_UNIT_ATTACH", {"callId": 311, "idents": [58]})
    await _step(
        push_world,
        "EVENT_DISPATCH_EDIT",
        _dispatch(priority=1, title="Traffic Stop - Felony", idents=[57, 58]),
    )
    await _step(push_world, "EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 58, "state": True})
    await _step(push_world, "EVENT_DISPATCH_UNIT_DETACH", {"callId": 311, "ident": 57})
    await _step(push_world, "EVENT_DISPATCH_CLOSED", {"callIds": [311]})

    posts = push_world.fake.requests_to(DISPATCH_CHANNEL, "POST")
    edits = push_world.fake.requests_to(DISPATCH_CHANNEL, "PATCH")
    assert len(posts) == 1
    assert len(edits) == 6
    [card] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert {request.message_id for request in edits} == {card.id}
    final = _text(card.embeds[0])
    assert "Closed ✅" in final
    assert "Traffic Stop - Felony" in final
    assert "Driver fled" in final
    assert "1A-14 Sam Ortiz" in final and "📹" in final
    assert "Unit #57" not in final  # detached
    rows = await push_world.storage.db.conn.execute_fetchall(
        "SELECT message_id, finished, version, rendered_version FROM push_card WHERE guild_id = ?", (GUILD_A,)
    )
    [(message_id, finished, version, rendered)] = [tuple(row) for row in rows]
    assert (message_id, finished, version == rendered) == (card.id, 1, True)


async def test_911_card_is_posted_then_marked_removed(push_world: PushWorld) -> None:
    call = {"call": {"callId": 1042, "isEmergency": True, "caller": "Maria Lopez", "location": "Alta St"}}
    await _step(push_world, "EVENT_911", call)
    await _step(push_world, "EVENT_REMOVE_911", {"callIds": [1042]})
    [card] = push_world.fake.messages(CALLS_911_CHANNEL)
    assert len(push_world.fake.requests_to(CALLS_911_CHANNEL, "POST")) == 1
    assert len(card.edits) == 1
    assert "**Removed**" in _text(card.embeds[0])


async def test_updates_faster_than_discord_coalesce_into_one_edit_of_the_latest_state(
    push_world: PushWorld,
) -> None:
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch())
    # Edits fail while the burst arrives, so every change lands on a card that owes an edit.
    push_world.fake.fail_channel(DISPATCH_CHANNEL, 503)
    for number in range(1, 21):
        await push_world.post(envelope("EVENT_DISPATCH_EDIT", _dispatch(description=f"update {number}")))
    async with asyncio.timeout(10):
        while await push_world.pipeline.store.inbox.depth():
            await asyncio.sleep(0.02)
    push_world.fake.fail_channel(DISPATCH_CHANNEL, None)
    await push_world.settle()

    successful_edits = [
        request for request in push_world.fake.requests_to(DISPATCH_CHANNEL, "PATCH") if request.status == 200
    ]
    assert len(successful_edits) == 1
    [card] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert "update 20" in card.embeds[0]["description"]


async def test_card_survives_a_restart_and_keeps_its_message(push_world: PushWorld) -> None:
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch())
    await push_world.restart()
    await _step(push_world, "EVENT_DISPATCH_EDIT", _dispatch(description="after the restart"))
    [card] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert len(push_world.fake.requests_to(DISPATCH_CHANNEL, "POST")) == 1
    assert "after the restart" in card.embeds[0]["description"]


async def test_a_deleted_card_is_posted_again_and_edits_follow_it(push_world: PushWorld) -> None:
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch())
    [first] = push_world.fake.messages(DISPATCH_CHANNEL)
    push_world.fake.delete_message(DISPATCH_CHANNEL, first.id)
    await _step(push_world, "EVENT_DISPATCH_EDIT", _dispatch(description="reposted"))
    [second] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert second.id != first.id
    assert "reposted" in second.embeds[0]["description"]
    await _step(push_world, "EVENT_DISPATCH_CLOSED", {"callIds": [311]})
    [still_second] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert still_second.id == second.id
    assert "Closed ✅" in still_second.embeds[0]["description"]


async def test_events_for_calls_without_a_card_are_posted_as_plain_embeds(push_world: PushWorld) -> None:
    await _step(push_world, "EVENT_DISPATCH_CLOSED", {"callIds": [999]})
    await _step(push_world, "EVENT_REMOVE_911", {"callIds": [4242]})
    [closed_embed] = push_world.fake.all_embeds(DISPATCH_CHANNEL)
    [removed_embed] = push_world.fake.all_embeds(CALLS_911_CHANNEL)
    assert "999" in _text(closed_embed)
    assert "4242" in _text(removed_embed)
    rows = await push_world.storage.db.conn.execute_fetchall("SELECT COUNT(*) FROM push_card")
    assert next(iter(rows))[0] == 0


async def test_bodycam_for_a_unit_on_no_call_is_posted_as_an_embed(push_world: PushWorld) -> None:
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch(idents=[57]))
    await _step(push_world, "EVENT_DISPATCH_TOGGLE_BODYCAM", {"ident": 99, "state": True})
    messages = push_world.fake.messages(DISPATCH_CHANNEL)
    assert len(messages) == 2
    assert messages[0].edits == []


async def test_update_card_applies_api_made_changes(push_world: PushWorld) -> None:
    created = await push_world.pipeline.update_card(
        GUILD_A,
        CardKind.DISPATCH,
        500,
        lambda state: dispatch_state_from_call({"callId": 500, "title": "Made through /dispatch new"}),
    )
    assert created
    await push_world.settle()
    [card] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert "Made through /dispatch new" in _text(card.embeds[0])

    def add_note(state: DispatchCardState | None) -> DispatchCardState | None:
        return None if state is None else with_note(state, "DISP-1", "Units en route", "21:00:00")

    assert await push_world.pipeline.update_card(GUILD_A, "dispatch", 500, add_note)
    assert await push_world.pipeline.update_card(GUILD_A, "dispatch", 500, lambda s: s and closed(s))
    await push_world.settle()
    [card] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert "Units en route" in _text(card.embeds[0])
    assert "Closed ✅" in _text(card.embeds[0])
    # API-made changes touch this guild only.
    assert push_world.fake.messages(channel_of(GUILD_B, Category.DISPATCH)) == []


async def test_update_card_without_a_card_or_route_does_nothing(push_world: PushWorld) -> None:
    assert not await push_world.pipeline.update_card(GUILD_A, "dispatch", 77, lambda state: state)
    await push_world.storage.routes.set_channel(GUILD_A, Category.DISPATCH, None)
    made = await push_world.pipeline.update_card(
        GUILD_A, "dispatch", 78, lambda state: dispatch_state_from_call({"callId": 78})
    )
    assert not made


async def test_publish_local_takes_the_same_path_for_one_guild(push_world: PushWorld) -> None:
    panic = ev.UnitPanicEvent(ident_ids=[57], is_panic=True)
    assert await push_world.pipeline.publish_local(GUILD_A, panic) == 1
    dispatch = ev.DispatchNewEvent.model_validate(_dispatch(call_id=600))
    assert await push_world.pipeline.publish_local(GUILD_A, dispatch) == 1
    await push_world.settle()
    [panic_message] = push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))
    assert panic_message.allowed_mentions == {"parse": [], "roles": [str(PING_ROLE)]}
    assert "PANIC" in panic_message.embeds[0]["title"]
    [card] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert "600" in _text(card.embeds[0])
    assert push_world.fake.messages(channel_of(GUILD_B, Category.PANIC)) == []
    assert push_world.fake.messages(channel_of(GUILD_B, Category.DISPATCH)) == []


async def test_a_card_that_cannot_be_drawn_is_posted_as_a_placeholder(
    push_world: PushWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.cards.render as render

    def broken(state: object, ctx: object) -> dict[str, Any]:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(render, "render_dispatch_card", broken)
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch(call_id=808))
    [card] = push_world.fake.messages(DISPATCH_CHANNEL)
    assert card.embeds[0]["title"] == "Call #808"


async def test_closing_a_call_with_a_card_and_one_without_shows_both(push_world: PushWorld) -> None:
    # Only guild A saw call 311 open (a card made by its own /dispatch new); guild B has no card at all.
    opened = ev.DispatchNewEvent.model_validate(_dispatch(311))
    await push_world.pipeline.publish_local(GUILD_A, opened)
    await push_world.settle()

    await _step(push_world, "EVENT_DISPATCH_CLOSED", {"callIds": [311, 316]})

    card, closed_post = push_world.fake.messages(DISPATCH_CHANNEL)
    assert "Closed ✅" in _text(card.embeds[0]) and len(card.edits) == 1
    # The call guild A never saw open gets the ordinary post, naming only it.
    [embed] = closed_post.embeds
    assert embed["title"] == "✅ Call #316 closed"
    assert "311" not in _text(embed)
    assert len(push_world.fake.requests_to(DISPATCH_CHANNEL, "POST")) == 2
    # Guild B had no card: one post for the event, naming both calls.
    [other] = push_world.fake.messages(channel_of(GUILD_B, Category.DISPATCH))
    assert [(embed["title"], embed["description"]) for embed in other.embeds] == [
        ("✅ Calls closed", "#311, #316")
    ]


async def test_removing_911_calls_with_and_without_cards_shows_every_one_once(push_world: PushWorld) -> None:
    for call_id in (1042, 1044):
        await _step(
            push_world, "EVENT_911", {"call": {"callId": call_id, "caller": "Maria", "location": "Alta"}}
        )
    await _step(push_world, "EVENT_REMOVE_911", {"callIds": [1042, 1043, 1044, 1045]})

    first, second, removed_post = push_world.fake.messages(CALLS_911_CHANNEL)
    for card in (first, second):
        assert "**Removed**" in _text(card.embeds[0]) and len(card.edits) == 1
    # One post for the event, naming just the calls that had no card.
    [embed] = removed_post.embeds
    assert embed["title"] == "911 calls removed"
    assert "1043" in embed["description"] and "1045" in embed["description"]
    assert "1042" not in embed["description"] and "1044" not in embed["description"]
    assert len(push_world.fake.requests_to(CALLS_911_CHANNEL, "POST")) == 3


async def test_a_close_that_only_names_calls_with_cards_posts_nothing_more(push_world: PushWorld) -> None:
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch(311))
    await _step(push_world, "EVENT_DISPATCH_NEW", _dispatch(312))
    await _step(push_world, "EVENT_DISPATCH_CLOSED", {"callIds": [311, 312]})

    cards = push_world.fake.messages(DISPATCH_CHANNEL)
    assert len(cards) == 2
    assert all("Closed ✅" in _text(card.embeds[0]) for card in cards)
