"""The listener's envelope rules, each with its status code, in the order the contract promises."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.storage.db import DatabaseUnavailableError
from bot.storage.models import Category
from tests.push.conftest import (
    API_KEY,
    GUILD_A,
    GUILD_B,
    OTHER_KEY,
    PushWorld,
    channel_of,
    envelope,
)

PANIC = {"identIds": [57], "isPanic": True}
MAX_BODY = 1_048_576


async def _inbox_depth(world: PushWorld) -> int:
    rows = await world.storage.db.conn.execute_fetchall("SELECT COUNT(*) FROM push_inbox")
    return int(next(iter(rows))[0])


def _no_secret_in(answer: Any) -> None:
    text = str(answer)
    assert API_KEY not in text
    assert OTHER_KEY not in text
    assert "LEAKCHECK" not in text


# -- 413 -------------------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413_and_not_stored(push_world: PushWorld) -> None:
    padding = "x" * MAX_BODY
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, note=padding))
    assert status == 413
    assert answer["error"] == "too_large"
    assert await _inbox_depth(push_world) == 0


async def test_chunked_body_over_the_limit_is_413(push_world: PushWorld) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"key": "' + API_KEY.encode() + b'", "type": "EVENT_UNIT_PANIC", "pad": "'
        for _ in range(80):
            yield b"y" * 16_384
        yield b'"}'

    async with push_world.session.post(push_world.url + "/sonorancad/event", data=chunks()) as response:
        assert response.status == 413
    assert await _inbox_depth(push_world) == 0


async def test_body_just_under_the_limit_is_accepted(push_world: PushWorld) -> None:
    body = envelope("EVENT_UNIT_PANIC", PANIC, note="")
    overhead = len(json.dumps(body).encode())
    body["note"] = "z" * (MAX_BODY - overhead - 10)
    status, answer, _ = await push_world.post(body)
    assert status == 200, answer


# -- 400: not a JSON object ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "nested more than 64 levels deep"),
        (b'["key", "type"]', "JSON object"),
        (b'"EVENT_911"', "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
    ],
    ids=["empty", "blank", "broken", "binary", "too-deep", "array", "string", "number", "null"],
)
async def test_body_that_is_not_a_json_object_is_400(push_world: PushWorld, raw: bytes, message: str) -> None:
    status, answer, _ = await push_world.post(raw=raw)
    assert status == 400
    assert message in answer["message"]
    assert await _inbox_depth(push_world) == 0


# -- 401: the key ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"type": "EVENT_UNIT_PANIC", "data": PANIC},
        {"key": 12345, "type": "EVENT_UNIT_PANIC", "data": PANIC},
        {"key": ["x"], "type": "EVENT_UNIT_PANIC", "data": PANIC},
        {"key": "", "type": "EVENT_UNIT_PANIC", "data": PANIC},
        {"key": "wrong-key-LEAKCHECK", "type": "EVENT_UNIT_PANIC", "data": PANIC},
        {"key": API_KEY + "x", "type": "EVENT_UNIT_PANIC", "data": PANIC},
        {"key": "k" * 10_000, "type": "EVENT_UNIT_PANIC", "data": PANIC},
    ],
    ids=["missing", "number", "list", "empty", "wrong", "near-miss", "huge"],
)
async def test_missing_or_unknown_key_is_401_and_nothing_is_stored(push_world: PushWorld, body: Any) -> None:
    status, answer, _ = await push_world.post(body)
    assert status == 401
    assert answer["error"] == "unauthorized"
    _no_secret_in(answer)
    await push_world.settle()
    assert await _inbox_depth(push_world) == 0
    assert push_world.fake.requests_to(channel_of(GUILD_A, Category.PANIC)) == []


async def test_key_is_compared_case_insensitively_like_fivem(push_world: PushWorld) -> None:
    status, _, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key=f"  {API_KEY.lower()} "))
    assert status == 200


async def test_key_is_never_stored(push_world: PushWorld) -> None:
    await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC))
    rows = await push_world.storage.db.conn.execute_fetchall("SELECT body FROM push_inbox")
    bodies = [row[0] for row in rows]
    assert len(bodies) == 1
    assert API_KEY not in bodies[0]
    assert "LEAKCHECK" not in bodies[0]


async def test_repeated_failures_from_one_address_are_throttled_with_retry_after(
    push_world: PushWorld,
) -> None:
    for _ in range(5):  # the test throttle allows 5 failures per minute
        status, _, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess"))
        assert status == 401
    status, answer, headers = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess"))
    assert status == 429
    assert answer["error"] == "throttled"
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert await _inbox_depth(push_world) == 0
    # Another wrong key waits too, and does not reach the database.
    status, _, headers = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess-2"))
    assert status == 429
    assert "Retry-After" in headers


async def test_a_right_key_is_never_refused_by_the_throttle(push_world: PushWorld) -> None:
    """Whoever shares the CAD's address (a NAT, a proxy not in trusted_proxies) must not silence it by
    sending wrong keys: the block holds for guesses, not for the configured key."""
    for _ in range(5):
        assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess")))[0] == 401
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess")))[0] == 429
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key=f" {API_KEY.lower()}"))
    assert (status, answer["status"]) == (200, "accepted")
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess")))[0] == 429
    await push_world.settle()
    assert len(push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))) == 1


async def test_a_key_set_while_an_address_is_blocked_passes_once_the_cache_is_invalidated(
    push_world: PushWorld,
) -> None:
    for _ in range(6):
        await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess"))
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC)))[0] == 200
    await push_world.storage.guilds.set_cad(GUILD_A, "4711", "a-brand-new-key")
    push_world.pipeline.invalidate_key_cache()
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="a-brand-new-key")))[0] == 200


async def test_a_success_resets_the_failure_count(push_world: PushWorld) -> None:
    for _ in range(4):
        assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess")))[0] == 401
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC)))[0] == 200
    for _ in range(4):
        assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess")))[0] == 401
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC)))[0] == 200


# -- after authentication: type strict, content lenient ---------------------------------------------


@pytest.mark.parametrize("type_", [None, 7, ["EVENT_911"], {"name": "EVENT_911"}, "", "   "])
async def test_missing_or_non_string_type_is_400(push_world: PushWorld, type_: Any) -> None:
    body: dict[str, Any] = {"key": API_KEY, "data": PANIC}
    if type_ is not None:
        body["type"] = type_
    status, answer, _ = await push_world.post(body)
    assert status == 400
    assert "type" in answer["message"]
    assert await _inbox_depth(push_world) == 0


async def test_unknown_type_is_acknowledged_counted_and_not_posted(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post(envelope("EVENT_SOMETHING_NEW", {"x": 1}))
    assert status == 200
    assert answer["status"] == "ignored"
    await push_world.settle()
    assert push_world.fake.requests == []
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_events_received_total{outcome="unknown_type",type="OTHER"} 1.0' in metrics


async def test_get_logs_is_acknowledged_and_ignored(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post({"key": API_KEY, "type": "GET_LOGS", "logKey": "abc"})
    assert (status, answer["status"]) == (200, "ignored")


@pytest.mark.parametrize(
    "data",
    ["missing", None, "a string", 42, True, [], {}, [1, 2]],
    ids=["missing", "null", "string", "number", "bool", "empty-list", "empty-object", "list-of-numbers"],
)
async def test_missing_or_wrong_kind_of_data_is_acknowledged_and_nothing_posted(
    push_world: PushWorld, data: Any
) -> None:
    body: dict[str, Any] = {"key": API_KEY, "type": "EVENT_UNIT_PANIC"}
    if data != "missing":
        body["data"] = data
    status, _, _ = await push_world.post(body)
    assert status == 200
    await push_world.settle()
    assert push_world.fake.requests == []


async def test_data_with_wrong_fields_is_acknowledged_and_nothing_posted(push_world: PushWorld) -> None:
    status, _, _ = await push_world.post(envelope("EVENT_UNIT_LOGOUT", {"identId": "not a number"}))
    assert status == 200
    await push_world.settle()
    assert push_world.fake.requests == []


async def test_lower_case_type_is_accepted(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post(envelope("event_unit_panic", PANIC))
    assert (status, answer["status"]) == (200, "accepted")
    await push_world.settle()
    assert len(push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))) == 1


async def test_fivem_style_path_without_the_resource_prefix_is_accepted(push_world: PushWorld) -> None:
    status, _, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC), path="/event")
    assert status == 200
    await push_world.settle()
    assert len(push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))) == 1


async def test_hostile_text_is_stored_and_posted_without_a_5xx(push_world: PushWorld) -> None:
    hostile = {
        "identIds": [57, "58", None, 1e400, -(2**70)],
        "isPanic": "yes",
        "note": "\ud800 lone surrogate and @everyone <@&1> " + "🚨" * 500,
    }
    # json.dumps writes the lone surrogate as the escape "\ud800": valid JSON that is not valid UTF-8 text,
    # and 1e400 as Infinity, which is not JSON: the raw number is put back (it parses as a float infinity).
    raw = json.dumps(envelope("EVENT_UNIT_PANIC", hostile)).replace("Infinity", "1e400")
    status, _, _ = await push_world.post(raw=raw.encode())
    assert status == 200
    await push_world.settle()
    messages = push_world.fake.messages(channel_of(GUILD_A, Category.PANIC))
    assert len(messages) == 1


# -- server_id -------------------------------------------------------------------------------------


async def test_server_id_restricts_fan_out(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC), params={"server_id": "2"})
    assert (status, answer["guilds"]) == (200, 1)
    await push_world.settle()
    assert push_world.fake.messages(channel_of(GUILD_A, Category.PANIC)) == []
    assert len(push_world.fake.messages(channel_of(GUILD_B, Category.PANIC))) == 1


async def test_server_id_no_guild_uses_is_acknowledged(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC), params={"server_id": "7"})
    assert (status, answer["status"]) == (200, "ignored")
    await push_world.settle()
    assert push_world.fake.requests == []


async def test_server_id_that_is_not_a_number_is_400(push_world: PushWorld) -> None:
    status, _, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC), params={"server_id": "two"})
    assert status == 400


# -- storage failures: 503, never an acknowledgement --------------------------------------------------


async def test_failed_inbox_commit_is_503_with_retry_after(
    push_world: PushWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def locked(entries: object) -> list[int]:
        raise DatabaseUnavailableError("database is locked")

    monkeypatch.setattr(push_world.pipeline.store.inbox, "add", locked)
    status, answer, headers = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC))
    assert status == 503
    assert answer["ok"] is False
    assert "Retry-After" in headers
    _no_secret_in(answer)
    monkeypatch.undo()
    assert await _inbox_depth(push_world) == 0


async def test_database_gone_during_authentication_is_503(push_world: PushWorld) -> None:
    await push_world.storage.db.close()
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC))
    assert status == 503
    _no_secret_in(answer)


async def test_other_routes_and_methods_are_4xx(push_world: PushWorld) -> None:
    status, _ = await push_world.get("/sonorancad/event")
    assert status == 405
    status, _ = await push_world.get("/nope")
    assert status == 404


# -- what /status and /setup ask the pipeline ---------------------------------------------------------


async def test_a_changed_key_stops_working_once_the_cache_is_invalidated(push_world: PushWorld) -> None:
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC)))[0] == 200
    for guild in (GUILD_A, GUILD_B):
        await push_world.storage.guilds.set_cad(guild, "4711", "a-brand-new-key")
    push_world.pipeline.invalidate_key_cache()
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC)))[0] == 401
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="a-brand-new-key")))[0] == 200


async def test_last_event_received_at_tracks_the_community(push_world: PushWorld) -> None:
    pipeline = push_world.pipeline
    assert await pipeline.last_event_received_at("4711") is None
    before = time.time()
    await push_world.post(envelope("EVENT_SOMETHING_UNKNOWN", PANIC))
    seen = await pipeline.last_event_received_at("4711")
    assert seen is not None and seen >= before
    assert await pipeline.last_event_received_at("9000") is None
    # Stored events answer from the database too, so the answer survives a restart.
    await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC))
    await push_world.restart()
    after_restart = await push_world.pipeline.last_event_received_at("4711")
    assert after_restart is not None and after_restart >= seen
