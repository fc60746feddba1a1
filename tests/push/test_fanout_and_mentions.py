"""Fan-out to every guild of a community, and the one mention that may ever sound."""

from __future__ import annotations

from bot.storage.models import Category
from tests.formatting.samples import SAMPLE_ENVELOPES
from tests.push.conftest import (
    API_KEY,
    GUILD_A,
    GUILD_B,
    GUILD_OTHER,
    OTHER_KEY,
    PING_ROLE,
    PushWorld,
    channel_of,
    envelope,
)

SILENT = {"parse": []}
PINGING = {"parse": [], "roles": [str(PING_ROLE)]}


def _all_messages(world: PushWorld, guild_id: int) -> list[object]:
    return [
        message for category in Category for message in world.fake.messages(channel_of(guild_id, category))
    ]


async def test_one_payload_reaches_every_guild_of_the_community_and_no_other(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    assert (status, answer["guilds"]) == (200, 2)
    await push_world.settle()
    assert len(push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))) == 1
    assert len(push_world.fake.messages(channel_of(GUILD_B, Category.PANIC))) == 1
    assert _all_messages(push_world, GUILD_OTHER) == []


async def test_the_other_key_reaches_only_its_own_guild(push_world: PushWorld) -> None:
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}, key=OTHER_KEY))
    await push_world.settle()
    assert len(push_world.fake.messages(channel_of(GUILD_OTHER, Category.PANIC))) == 1
    assert _all_messages(push_world, GUILD_A) == []
    assert _all_messages(push_world, GUILD_B) == []


async def test_each_guild_gets_its_own_live_card(push_world: PushWorld) -> None:
    await push_world.post({**SAMPLE_ENVELOPES["EVENT_DISPATCH_NEW"], "key": API_KEY})
    await push_world.settle()
    await push_world.post({**SAMPLE_ENVELOPES["EVENT_DISPATCH_CLOSED"], "key": API_KEY})
    await push_world.settle()
    for guild in (GUILD_A, GUILD_B):
        [card] = push_world.fake.messages(channel_of(guild, Category.DISPATCH))
        assert len(card.edits) == 1
        assert "Closed ✅" in card.embeds[0]["description"]


async def test_ping_role_sounds_only_for_911_and_panic(push_world: PushWorld) -> None:
    """Guild A has the ping role set on every category; only 911 and an activated panic may use it."""
    for type_ in (
        "EVENT_911",
        "EVENT_UNIT_PANIC",
        "EVENT_DISPATCH_NEW",
        "EVENT_UNIT_LOGIN",
        "EVENT_RECORD_ADD",
        "EVENT_TONE",
    ):
        await push_world.post({**SAMPLE_ENVELOPES[type_], "key": API_KEY})
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [58], "isPanic": False}))
    await push_world.settle()

    [call_911] = push_world.fake.messages(channel_of(GUILD_A, Category.CALLS_911))
    assert call_911.allowed_mentions == PINGING
    assert call_911.content == f"<@&{PING_ROLE}>"

    panic_on, panic_off = push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))
    assert panic_on.allowed_mentions == PINGING
    assert panic_on.content == f"<@&{PING_ROLE}>"
    assert panic_off.allowed_mentions == SILENT
    assert not panic_off.content

    for category in (Category.DISPATCH, Category.UNITS, Category.RECORDS, Category.OTHER):
        [message] = push_world.fake.messages(channel_of(GUILD_A, category))
        assert message.allowed_mentions == SILENT, category
        assert not message.content, category

    # Guild B has no ping role: even its 911 and panic messages are silent.
    for message in _all_messages(push_world, GUILD_B):
        assert message.allowed_mentions == SILENT  # type: ignore[attr-defined]
        assert not message.content  # type: ignore[attr-defined]


async def test_card_edits_never_ping_again(push_world: PushWorld) -> None:
    await push_world.post({**SAMPLE_ENVELOPES["EVENT_911"], "key": API_KEY})
    await push_world.settle()
    await push_world.post({**SAMPLE_ENVELOPES["EVENT_REMOVE_911"], "key": API_KEY})
    await push_world.settle()
    edits = push_world.fake.requests_to(channel_of(GUILD_A, Category.CALLS_911), "PATCH")
    assert len(edits) == 1
    assert edits[0].body is not None
    assert edits[0].body["allowed_mentions"] == SILENT
    assert "content" not in edits[0].body


async def test_every_request_sets_allowed_mentions(push_world: PushWorld) -> None:
    for sample in SAMPLE_ENVELOPES.values():
        await push_world.post({**sample, "key": API_KEY})
    await push_world.settle()
    writes = [request for request in push_world.fake.requests if request.method in {"POST", "PATCH"}]
    assert writes
    for request in writes:
        assert request.body is not None
        assert request.body["allowed_mentions"] in (SILENT, PINGING)


async def test_mention_text_from_the_cad_cannot_ping(push_world: PushWorld) -> None:
    note = {"callId": 311, "note": {"label": "@everyone", "content": "<@&123> @here ping"}}
    await push_world.post(envelope("EVENT_DISPATCH_NOTE", note))
    await push_world.settle()
    [card] = push_world.fake.messages(channel_of(GUILD_A, Category.DISPATCH))
    assert card.allowed_mentions == SILENT
    assert "@everyone" not in str(card.embeds).replace("@\u200beveryone", "")
