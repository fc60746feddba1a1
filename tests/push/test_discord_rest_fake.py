"""The Discord REST fake itself: it must behave like Discord where the delivery tests rely on it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import discord
import pytest
from discord.http import Route

from testing.discord_rest import DiscordRestFake
from tests.push.conftest import BOT_TOKEN

CHANNEL = 4242


def _create(channel_id: int = CHANNEL) -> Route:
    return Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)


async def test_static_login_and_channel_lookup(discord_http: discord.http.HTTPClient) -> None:
    channel = await discord_http.request(Route("GET", "/channels/{channel_id}", channel_id=CHANNEL))
    assert channel["id"] == str(CHANNEL)


async def test_same_nonce_with_enforce_nonce_returns_the_first_message(
    rest_fake: DiscordRestFake, discord_http: discord.http.HTTPClient
) -> None:
    payload: dict[str, Any] = {"embeds": [{"title": "one"}], "nonce": "abc123", "enforce_nonce": True}
    first = await discord_http.request(_create(), json=payload)
    second = await discord_http.request(_create(), json={**payload, "embeds": [{"title": "two"}]})
    assert first["id"] == second["id"]
    assert [message.embeds for message in rest_fake.messages(CHANNEL)] == [[{"title": "one"}]]
    # Without enforce_nonce Discord makes no promise, and neither does the fake.
    await discord_http.request(_create(), json={"content": "x", "nonce": "abc123"})
    assert len(rest_fake.messages(CHANNEL)) == 2


async def test_discord_py_never_sends_into_an_exhausted_bucket(
    rest_fake: DiscordRestFake, discord_http: discord.http.HTTPClient
) -> None:
    for number in range(12):
        await discord_http.request(_create(), json={"content": f"m{number}"})
    assert len(rest_fake.messages(CHANNEL)) == 12
    assert rest_fake.exhausted_bucket_requests == []
    # 12 requests at 5 per 0.5 s need at least two full windows.
    times = [request.at for request in rest_fake.requests_to(CHANNEL)]
    assert times[-1] - times[0] >= 1.0


async def test_a_client_that_ignores_the_headers_is_caught(rest_fake: DiscordRestFake) -> None:
    url = f"{rest_fake.api_base}/channels/{CHANNEL}/messages"
    headers = {"Authorization": f"Bot {BOT_TOKEN}"}
    statuses = []
    async with aiohttp.ClientSession() as session:
        for number in range(6):
            async with session.post(url, json={"content": f"m{number}"}, headers=headers) as response:
                statuses.append(response.status)
                last_headers = response.headers
                body = await response.json(content_type=None)
    assert statuses == [200] * 5 + [429]
    assert body["global"] is False and body["retry_after"] > 0
    assert last_headers["Via"] == "1.1 google"
    assert last_headers["X-RateLimit-Remaining"] == "0"
    assert {"X-RateLimit-Limit", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} <= set(
        last_headers
    )
    assert len(rest_fake.exhausted_bucket_requests) == 1


@pytest.mark.parametrize(("status", "error"), [(403, discord.Forbidden), (404, discord.NotFound)])
async def test_permanent_faults_carry_discord_codes(
    rest_fake: DiscordRestFake, discord_http: discord.http.HTTPClient, status: int, error: type[Exception]
) -> None:
    rest_fake.inject(CHANNEL, status)
    with pytest.raises(error) as raised:
        await discord_http.request(_create(), json={"content": "x"})
    assert raised.value.code == {403: 50013, 404: 10003}[status]  # type: ignore[attr-defined]


async def test_edits_and_unknown_messages(
    rest_fake: DiscordRestFake, discord_http: discord.http.HTTPClient
) -> None:
    created = await discord_http.request(_create(), json={"embeds": [{"title": "v1"}]})
    edit = Route(
        "PATCH", "/channels/{channel_id}/messages/{message_id}", channel_id=CHANNEL, message_id=created["id"]
    )
    await discord_http.request(edit, json={"embeds": [{"title": "v2"}]})
    [message] = rest_fake.messages(CHANNEL)
    assert message.embeds == [{"title": "v2"}]
    rest_fake.delete_message(CHANNEL, message.id)
    with pytest.raises(discord.NotFound) as raised:
        await discord_http.request(edit, json={"embeds": [{"title": "v3"}]})
    assert raised.value.code == 10008


async def test_held_answers_are_stored_first(
    rest_fake: DiscordRestFake, discord_http: discord.http.HTTPClient
) -> None:
    rest_fake.hold_responses(CHANNEL)
    request = asyncio.ensure_future(discord_http.request(_create(), json={"content": "held"}))
    async with asyncio.timeout(5):
        while not rest_fake.messages(CHANNEL):
            await asyncio.sleep(0.01)
    assert not request.done()
    rest_fake.release(CHANNEL)
    assert (await request)["content"] == "held"
