"""/setup push:websocket end to end: the real bot (no listener port), the loopback hub, a CAD event in Discord.

The admin picks the websocket transport in /setup; the bot stores it, explains it, opens its session to the
hub at once, and an event the hub pushes reaches the routed channel. /status then shows the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.push.pipeline import PushPipeline
from bot.storage.models import Category, PushTransport
from testing.cad_simulator import CadSimulator
from testing.signalr_hub import FakeSignalRHub
from tests.harness import API_KEY, COMMUNITY_ID, World, test_settings

UNIT_STATUS = {
    "key": API_KEY,
    "type": "EVENT_UNIT_STATUS",
    "data": {"units": [{"id": 7, "status": 3, "data": {"unitNum": "1A-12", "name": "Jordan Reyes"}}]},
}


@pytest.fixture
async def hub() -> AsyncIterator[FakeSignalRHub]:
    async with FakeSignalRHub() as fake:
        fake.add_community(COMMUNITY_ID, API_KEY)
        yield fake


@pytest.fixture
def bot_settings(cad_world_sim: CadSimulator, tmp_path: Path, hub: FakeSignalRHub) -> Settings:
    # The harness runs without the push listener ([server] enabled = false): the hub is the only way in.
    return test_settings(cad_world_sim.base_url, tmp_path / "bot.sqlite3", hub_url=hub.hub_url)


async def test_setup_push_websocket_opens_a_session_and_events_reach_discord(
    world: World, hub: FakeSignalRHub
) -> None:
    assert not world.settings.server.enabled
    await world.storage.routes.set_channel(world.guild.id, Category.UNITS, world.alerts.id)

    opened = await world.admin.slash(world.channel, "setup", push="websocket")
    assert opened.modal is not None
    result = await world.admin.submit_modal(
        opened, {"setup:community_id": COMMUNITY_ID, "setup:api_key": API_KEY, "setup:server_id": "1"}
    )

    [embed] = result.response.embeds
    fields = {field.name: field.value for field in embed.fields}
    assert "Sonoran's websocket" in fields["Live alerts: websocket"]
    assert "no game server" in fields["Live alerts: websocket"]
    config = await world.storage.guilds.get(world.guild.id)
    assert config is not None and config.push_transport == PushTransport.WEBSOCKET
    await hub.wait_for(lambda: any(c.authenticated for c in hub.sessions_for(COMMUNITY_ID, 1)), within_s=10)

    outcome = await hub.push(COMMUNITY_ID, 1, UNIT_STATUS)
    assert outcome.delivered_to
    pipeline = world.bot.services.pipeline
    assert isinstance(pipeline, PushPipeline)
    async with asyncio.timeout(10):
        while await pipeline.store.inbox.depth() == 0 and not world.alerts.history():
            await asyncio.sleep(0.01)
    await pipeline.wait_until_idle(timeout_s=10)
    await world.env.settle()
    [message] = world.alerts.history()
    assert "1A-12" in str(message.embeds[0].to_dict())

    status = await world.admin.slash(world.channel, "status")
    push = (
        {field.name: field.value for field in status.followups[-1].embeds[0].fields}["Push events"]
        if (status.followups)
        else {field.name: field.value for field in status.response.embeds[0].fields}["Push events"]
    )
    assert push.startswith("Transport: websocket")
    assert "✅ connected and authenticated since" in push

    opened = await world.admin.slash(world.channel, "setup", push="http")
    await world.admin.submit_modal(
        opened, {"setup:community_id": COMMUNITY_ID, "setup:api_key": API_KEY, "setup:server_id": "1"}
    )
    await hub.wait_for(lambda: hub.live == [], within_s=10)  # the last guild left: the session closed


async def test_config_reset_closes_the_session_only_that_server_used(
    world: World, hub: FakeSignalRHub
) -> None:
    await world.storage.guilds.set_push_transport(world.guild.id, PushTransport.WEBSOCKET)
    pipeline = world.bot.services.pipeline
    assert isinstance(pipeline, PushPipeline) and pipeline.hub is not None
    pipeline.hub.reconcile_soon()
    await hub.wait_for(lambda: any(c.authenticated for c in hub.sessions_for(COMMUNITY_ID, 1)), within_s=10)
    [connection] = hub.sessions_for(COMMUNITY_ID, 1)

    prompt = await world.admin.slash(world.channel, "config reset")
    await world.admin.click(prompt.response, label="Reset everything")

    await hub.wait_for(lambda: connection.closed, within_s=10)
    assert connection.closed_by == "client" and connection.close_code == 1000
