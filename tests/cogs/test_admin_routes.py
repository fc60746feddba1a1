"""/config test through SimCord: a labelled sample in every routed channel, and a per-route verdict that names
the channel and what is wrong, recorded on the route so /config show and /status agree."""

from __future__ import annotations

import json
from typing import Any

import discord

from bot.storage.models import Category
from tests.harness import World

TEST_LABEL = "Test alert from /config test"


def report_of(result: Any) -> str:
    assert result.response is not None and result.ephemeral
    [embed] = result.response.embeds
    return str(embed.description)


def posts_to(world: World, channel_id: int, since: int) -> list[Any]:
    return [
        entry
        for entry in world.env.http_requests[since:]
        if entry.method == "POST" and entry.path == f"/channels/{channel_id}/messages"
    ]


async def test_config_test_posts_a_labelled_sample_in_every_routed_channel(world: World) -> None:
    guild_id = world.guild.id
    responders = world.guild.create_role("Responders")
    await world.storage.routes.set_channel(guild_id, Category.CALLS_911, world.alerts.id)
    await world.storage.routes.set_ping_role(guild_id, Category.CALLS_911, responders.id)
    await world.storage.routes.set_channel(guild_id, Category.DISPATCH, world.channel.id)
    await world.storage.routes.mark_failed(guild_id, Category.DISPATCH, "HTTP 403 earlier")
    since = len(world.env.http_requests)

    result = await world.admin.slash(world.channel, "config test")

    report = report_of(result)
    assert report.startswith("Every route works.")
    assert f"✅ **911 calls** → <#{world.alerts.id}>: posted" in report
    assert f"✅ **Dispatch calls** → <#{world.channel.id}>: posted" in report
    sample = world.alerts.last_message
    assert sample is not None
    [embed] = sample.embeds
    assert embed.author.name == TEST_LABEL
    assert embed.title is not None and embed.title.startswith("🧪 TEST · 🚨 911 #1042")
    assert embed.footer.text is not None and embed.footer.text.startswith(TEST_LABEL)
    # A test never pings the 911 role.
    [post] = posts_to(world, world.alerts.id, since)
    assert str(responders.id) not in json.dumps(post.json)
    assert post.json["allowed_mentions"]["parse"] == []
    # Success clears a failure recorded earlier (here by the delivery worker).
    assert await world.storage.routes.failed(guild_id) == []


async def test_config_test_names_the_channel_and_the_missing_permission(world: World) -> None:
    guild_id = world.guild.id
    mute = world.guild.create_text_channel(
        "mute", overwrites={world.guild.default_role: discord.PermissionOverwrite(send_messages=False)}
    )
    hidden = world.guild.create_text_channel(
        "hidden", overwrites={world.guild.default_role: discord.PermissionOverwrite(view_channel=False)}
    )
    plain = world.guild.create_text_channel(
        "plain", overwrites={world.guild.default_role: discord.PermissionOverwrite(embed_links=False)}
    )
    await world.storage.routes.set_channel(guild_id, Category.CALLS_911, mute.id)
    await world.storage.routes.set_channel(guild_id, Category.PANIC, hidden.id)
    await world.storage.routes.set_channel(guild_id, Category.UNITS, plain.id)
    await world.storage.routes.set_channel(guild_id, Category.RECORDS, world.alerts.id)
    since = len(world.env.http_requests)

    result = await world.admin.slash(world.channel, "config test")

    report = report_of(result)
    assert report.startswith("3 of 4 routes can't be posted to.")
    assert f"❌ **911 calls** → <#{mute.id}>: I'm missing **Send Messages, Embed Links** in #mute" in report
    assert (
        f"❌ **Panic alerts** → <#{hidden.id}>: I'm missing **View Channel, Send Messages, Embed Links** in #hidden"
        in report
    )
    assert f"❌ **Unit activity** → <#{plain.id}>: I'm missing **Embed Links** in #plain" in report
    assert f"✅ **Records** → <#{world.alerts.id}>: posted" in report
    for channel in (mute, hidden, plain):
        assert posts_to(world, channel.id, since) == []  # checked before posting, not by failing
    failed = {route.category: route.last_error for route in await world.storage.routes.failed(guild_id)}
    assert set(failed) == {Category.CALLS_911, Category.PANIC, Category.UNITS}
    assert "Send Messages" in (failed[Category.CALLS_911] or "")
    assert "View Channel" in (failed[Category.PANIC] or "")
    assert "#plain" in (failed[Category.UNITS] or "")


async def test_config_test_reports_deleted_channels(world: World) -> None:
    guild_id = world.guild.id
    doomed = world.guild.create_text_channel("doomed")
    await world.storage.routes.set_channel(guild_id, Category.DISPATCH, doomed.id)
    await world.storage.routes.set_channel(guild_id, Category.OTHER, 4242424242)  # an id that never existed
    world.env.backend.delete_channel(doomed.id)
    await world.env.settle()

    result = await world.admin.slash(world.channel, "config test")

    report = report_of(result)
    assert f"❌ **Dispatch calls** → <#{doomed.id}>: channel {doomed.id} no longer exists" in report
    assert "❌ **Other CAD events** → <#4242424242>: channel 4242424242 no longer exists" in report
    failed = {route.category: route.last_error for route in await world.storage.routes.failed(guild_id)}
    assert failed[Category.DISPATCH] is not None and "no longer exists" in failed[Category.DISPATCH]
    assert failed[Category.OTHER] is not None and "no longer exists" in failed[Category.OTHER]


async def test_config_test_reports_what_discord_refused(world: World) -> None:
    guild_id = world.guild.id
    await world.storage.routes.set_channel(guild_id, Category.CALLS_911, world.alerts.id)
    await world.storage.routes.set_channel(guild_id, Category.DISPATCH, world.channel.id)
    world.env.inject_error("POST", f"/channels/{world.alerts.id}/messages", status=403)
    world.env.inject_error("POST", f"/channels/{world.channel.id}/messages", status=404)

    result = await world.admin.slash(world.channel, "config test")

    report = report_of(result)
    assert f"❌ **911 calls** → <#{world.alerts.id}>: Discord refused the post in #dispatch-alerts" in report
    assert (
        f"❌ **Dispatch calls** → <#{world.channel.id}>: channel {world.channel.id} no longer exists"
        in report
    )
    assert len(await world.storage.routes.failed(guild_id)) == 2


async def test_config_test_tries_switched_off_routes_and_says_they_are_off(world: World) -> None:
    await world.storage.routes.set_channel(world.guild.id, Category.RECORDS, world.alerts.id)
    await world.storage.routes.set_enabled(world.guild.id, Category.RECORDS, False)

    result = await world.admin.slash(world.channel, "config test")

    assert "posted (the route is off; `/config toggle records on` to use it)" in report_of(result)
    sample = world.alerts.last_message
    assert sample is not None and sample.embeds[0].author.name == TEST_LABEL


async def test_config_test_without_routes_says_what_to_do(world: World) -> None:
    result = await world.admin.slash(world.channel, "config test")

    assert report_of(result).startswith("No channels are set yet: pick them with `/config route`")
