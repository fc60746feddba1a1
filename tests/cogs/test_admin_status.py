"""/status (and /setup against a hung CAD) through SimCord, with a short CAD timeout so a hung CAD costs
under a second: every part is answered, a failing part is described, nothing is raised at the admin."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Services
from bot.cad.client import CadClient
from bot.config import ServerSettings, Settings
from bot.push.discord_sender import DiscordPySender
from bot.push.pipeline import PushPipeline
from bot.storage import Storage
from bot.storage.models import Category
from cogs import status as status_cog
from testing.cad_simulator import CadSimulator
from tests.harness import API_KEY, COMMUNITY_ID, World, test_settings

CAD_TIMEOUT_S = 0.3
HUNG_CAD_S = 30.0


@pytest.fixture
def bot_settings(cad_world_sim: CadSimulator, bot_storage: Storage, tmp_path: Path) -> Settings:
    return test_settings(cad_world_sim.base_url, tmp_path / "bot.sqlite3", timeout_s=CAD_TIMEOUT_S)


async def install_hung_cad(world: World) -> None:
    # The plan is not read first: /status's own probe is the plan read, and it is what must time out.
    await world.install_impatient_cad(CAD_TIMEOUT_S, warm_tier=False)
    world.sim.latency_s = HUNG_CAD_S


@pytest.fixture
async def listening(world: World) -> AsyncIterator[PushPipeline]:
    """A real push pipeline whose listener takes events on a loopback port, installed as the bot's pipeline.

    Its loops are not started, so what is queued stays queued for /status to count.
    """
    pipeline = PushPipeline(world.storage, DiscordPySender(world.bot.http))
    server = pipeline.create_server(ServerSettings(host="127.0.0.1", port=0))
    pipeline.attach_server(server)
    await server.start()
    with_listener(world, pipeline)
    try:
        yield pipeline
    finally:
        await server.stop()


async def post_event(world: World, pipeline: PushPipeline, key: str) -> int:
    """POST a panic event to the listener as the CAD would; the HTTP status it answered."""
    assert pipeline.server is not None
    body = {"key": key, "type": "EVENT_UNIT_PANIC", "data": {"identIds": [57], "isPanic": True}}
    async with world.extra["session"].post(
        pipeline.server.url + "/sonorancad/event", json=body, timeout=aiohttp.ClientTimeout(total=10)
    ) as response:
        return response.status


def with_listener(world: World, pipeline: PushPipeline) -> None:
    server = world.settings.server.model_copy(update={"enabled": True})
    world.bot.services.settings = world.settings.model_copy(update={"server": server})
    world.bot.services.pipeline = pipeline


def fields_of(result: Any) -> dict[str, str]:
    assert result.response is not None and result.ephemeral
    [embed] = result.response.embeds
    return {field.name: str(field.value) for field in embed.fields}


async def test_status_with_the_cad_up(world: World) -> None:
    result = await world.admin.slash(world.channel, "status")

    fields = fields_of(result)
    assert fields["Sonoran CAD"].startswith("✅ answered in ")
    assert fields["Sonoran CAD"].endswith(" ms · plan: Sonoran CAD Pro")
    [probe] = world.sim.requests_of("GET_VERSION")
    assert probe.community_id == COMMUNITY_ID
    assert fields["Push events"].startswith(
        "Transport: http\nListener: off"
    )  # the harness runs without the listener
    assert fields["Alerts waiting to be posted"] == "This server: nothing waiting\nWhole bot: nothing waiting"
    assert fields["Failed routes"] == "No failures recorded."


async def test_status_answers_while_the_cad_hangs(world: World) -> None:
    await install_hung_cad(world)
    started = time.monotonic()

    result = await world.admin.slash(world.channel, "status")

    elapsed = time.monotonic() - started
    fields = fields_of(result)
    assert fields["Sonoran CAD"].startswith(f"❌ no answer within {CAD_TIMEOUT_S:g} s")
    assert elapsed < HUNG_CAD_S / 3  # bounded by the bot's timeout, not by the CAD
    assert world.env.errors == []  # reported, not raised


async def test_status_reports_an_outage(world: World) -> None:
    world.sim.fail_next(3, 503)

    result = await world.admin.slash(world.channel, "status")

    assert fields_of(result)["Sonoran CAD"].startswith("❌ the CAD could not be reached")


async def test_status_reports_credentials_the_cad_no_longer_accepts(world: World) -> None:
    world.community.rotate_key("rotated-in-the-cad")

    result = await world.admin.slash(world.channel, "status")

    assert (
        fields_of(result)["Sonoran CAD"] == "❌ the CAD rejected this server's credentials; run /setup again"
    )
    assert API_KEY not in str(result.response.embeds[0].to_dict())


async def test_status_on_a_server_that_never_ran_setup(world: World) -> None:
    await world.storage.guilds.reset(world.guild.id)

    result = await world.admin.slash(world.channel, "status")

    assert fields_of(result)["Sonoran CAD"] == "Not connected: run `/setup`."
    assert world.sim.requests_of("GET_VERSION") == []


async def test_status_lists_failed_routes_with_the_reason(world: World) -> None:
    await world.storage.routes.set_channel(world.guild.id, Category.PANIC, world.alerts.id)
    await world.storage.routes.mark_failed(
        world.guild.id, Category.PANIC, "missing permissions: Send Messages"
    )

    result = await world.admin.slash(world.channel, "status")

    failed = fields_of(result)["Failed routes"]
    assert failed.startswith(
        f"❌ **Panic alerts** → <#{world.alerts.id}>: missing permissions: Send Messages (<t:"
    )


async def test_status_shows_the_delivery_queue_and_when_events_last_arrived(
    world: World, listening: PushPipeline
) -> None:
    pipeline = listening
    before = int(time.time())
    assert await post_event(world, pipeline, API_KEY) == 200
    after = int(time.time()) + 1
    await pipeline.store.outbox.add(
        guild_id=world.guild.id,
        channel_id=world.alerts.id,
        category="911",
        embed={"title": "queued"},
        accepted_at=time.time(),
    )

    result = await world.admin.slash(world.channel, "status")

    fields = fields_of(result)
    transport, listener, last_event = fields["Push events"].split("\n")
    assert (transport, listener) == ("Transport: http", "Listener: on")
    received = re.fullmatch(r"Last event received for this community: <t:(\d+):R>", last_event)
    assert received is not None, last_event
    assert before <= int(received[1]) <= after
    queue = fields["Alerts waiting to be posted"]
    assert queue.startswith("This server: 1 waiting, oldest waiting ")
    assert "\nWhole bot: 1 waiting, oldest waiting " in queue


async def test_status_says_when_the_database_refuses_writes(world: World, listening: PushPipeline) -> None:
    pipeline = listening
    await pipeline.storage.db.conn.execute("PRAGMA query_only = 1")  # SQLite refuses every write from now on
    try:
        assert await post_event(world, pipeline, API_KEY) == 503

        result = await world.admin.slash(world.channel, "status")
    finally:
        await pipeline.storage.db.conn.execute("PRAGMA query_only = 0")

    push = fields_of(result)["Push events"]
    warning = push.split("\n")[-1]
    assert warning.startswith("⚠️ The database refuses writes (attempt to write a readonly database, last ")
    assert warning.endswith(
        "ago): events are answered 503 so the CAD sends them again. Free disk space or fix the file's permissions."
    )
    # Writes work again: the next event is stored and the warning is gone.
    assert await post_event(world, pipeline, API_KEY) == 200
    result = await world.admin.slash(world.channel, "status")
    assert "refuses writes" not in fields_of(result)["Push events"]


async def test_status_says_unknown_when_no_event_arrived_yet(world: World) -> None:
    with_listener(world, PushPipeline(world.storage, DiscordPySender(world.bot.http)))

    result = await world.admin.slash(world.channel, "status")

    fields = fields_of(result)
    assert (
        fields["Push events"]
        == "Transport: http\nListener: on\nLast event received for this community: unknown"
    )
    assert fields["Alerts waiting to be posted"] == "This server: nothing waiting\nWhole bot: nothing waiting"


async def test_setup_and_reset_stop_the_listener_accepting_the_old_key_at_once(
    world: World, listening: PushPipeline
) -> None:
    """The listener caches which guilds a key belongs to; /setup and /config reset must drop that cache, or
    events under a key the guild no longer uses would still be accepted for a while."""
    new_key = "new-key-0001"
    world.sim.add_community("9001", new_key, world.community.tier)
    assert await post_event(world, listening, API_KEY) == 200  # the key is now cached as this guild's

    shown = await world.admin.slash(world.channel, "setup")
    await world.admin.submit_modal(
        shown, {"setup:community_id": "9001", "setup:api_key": new_key, "setup:server_id": "1"}
    )
    assert await post_event(world, listening, API_KEY) == 401
    assert await post_event(world, listening, new_key) == 200

    prompt = await world.admin.slash(world.channel, "config reset")
    await world.admin.click(prompt.response, label="Reset everything")
    assert await post_event(world, listening, new_key) == 401


async def test_setup_against_a_hung_cad_answers_and_stores_nothing(world: World) -> None:
    world.sim.add_community("9001", "new-key-0001", world.community.tier)
    await install_hung_cad(world)
    shown = await world.admin.slash(world.channel, "setup")

    result = await world.admin.submit_modal(
        shown, {"setup:community_id": "9001", "setup:api_key": "new-key-0001", "setup:server_id": "1"}
    )

    errors = world.env.errors
    assert errors, "the refusal goes through the tree's error handler"
    assert result.response is not None
    assert result.response.content.startswith(
        f"Couldn't check those credentials: the CAD didn't answer within {CAD_TIMEOUT_S:g} s."
    )
    stored = await world.storage.guilds.get(world.guild.id)
    assert stored is not None and stored.community_id == COMMUNITY_ID


async def test_status_probe_gives_up_after_one_timeout_instead_of_every_retry(
    cad_world_sim: CadSimulator,
    bot_storage: Storage,
    http_session: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hung CAD with a client that would retry five times: /status stops at its own deadline."""
    cad_world_sim.add_community(COMMUNITY_ID, API_KEY)
    await bot_storage.guilds.set_cad(1234, COMMUNITY_ID, API_KEY)
    cad_world_sim.latency_s = HUNG_CAD_S
    settings = test_settings(cad_world_sim.base_url, tmp_path / "bot.sqlite3", timeout_s=CAD_TIMEOUT_S)
    patient = CadClient(http_session, base_url=cad_world_sim.base_url, timeout_s=CAD_TIMEOUT_S, max_retries=5)
    monkeypatch.setattr(status_cog, "RETRY_SLACK_S", 0.1)
    started = time.monotonic()

    probe = await status_cog.probe_cad(Services(settings=settings, storage=bot_storage, cad=patient), 1234)

    elapsed = time.monotonic() - started
    assert probe.state == "failed"
    assert probe.problem is not None and probe.problem.startswith(f"no answer within {CAD_TIMEOUT_S:g} s")
    # Six attempts would take 6 x 0.3 s plus back-offs; the deadline is 0.3 s + 0.1 s.
    assert elapsed < 6 * CAD_TIMEOUT_S / 2
