"""With the default settings every CAD request the bot makes is a v2 request.

The bot is built from ``Settings`` that do not mention ``api_version`` at all; every command that talks to the
CAD is driven through SimCord, and the simulator must have seen only ``/v2/`` paths (and never
``communityUserId``, which belongs to the game server's link).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.storage.models import Category
from testing.cad_simulator import CadSimulator
from tests.harness import World

OFFICER_SECRET = "9c1d2e3f-0000-4a4a-8b8b-123456789abc"


@pytest.fixture
def bot_settings(cad_world_sim: CadSimulator, tmp_path: Path) -> Settings:
    return Settings(
        cad={"api_base": cad_world_sim.base_url, "timeout_s": 2.0},
        server={"enabled": False, "port": 0, "host": "127.0.0.1"},
        database={"path": tmp_path / "bot.sqlite3"},
    )


async def test_default_settings_speak_only_v2(world: World) -> None:
    assert world.bot.services.cad.api_version == 2
    account = world.community.add_account("mpatel", discord_id=world.admin.id)
    world.community.add_unit(account=account, unit_num="2B-07", name="Maya Patel")
    world.community.add_unit(account=world.officer_account, unit_num="1A-12", name="Jordan Reyes")
    world.sim.v2.add_dispatch_template(world.community.community_id)
    await world.storage.routes.set_channel(world.guild.id, Category.PANIC, world.alerts.id)
    await world.storage.guilds.set_cooldown(world.guild.id, 0)
    admin, channel = world.admin, world.channel

    commands: list[tuple[Any, str, dict[str, Any]]] = [
        (world.member, "911", {"location": "Grove St", "description": "Shots fired"}),
        (world.member, "311", {"location": "Grove St", "description": "Noise"}),
        (admin, "panic", {}),
        (admin, "panic", {"state": "off"}),
        (admin, "unit status", {"status": 3}),
        (world.officer, "unit status", {"status": 2}),
        (admin, "whoami", {}),
        (admin, "calls", {}),
        (admin, "units", {}),
        (admin, "lookup name", {"first": "Dale", "last": "Whitfield"}),
        (admin, "lookup plate", {"plate": "ABC1"}),
        (admin, "blips list", {}),
        (admin, "blips add", {"x": 1.0, "y": 2.0}),
        (
            admin,
            "dispatch new",
            {"title": "Traffic Stop", "address": "Legion Square", "description": "Sedan", "priority": 2},
        ),
        (admin, "status", {}),
    ]
    for actor, name, options in commands:
        await actor.slash(channel, name, **options)
    call_id = max(world.community.dispatches)
    for actor, name, options in [
        (admin, "dispatch attach", {"call": call_id, "member": world.officer}),
        (admin, "dispatch note", {"call": call_id, "text": "Suspect fled north"}),
        (admin, "dispatch detach", {"member": world.officer}),
        (admin, "dispatch close", {"call": call_id}),
    ]:
        await actor.slash(channel, name, **options)
    opened = await world.member.slash(channel, "link")
    await world.member.submit_modal(opened, {"account_secret": OFFICER_SECRET})
    opened = await admin.slash(channel, "setup")
    await admin.submit_modal(
        opened,
        {
            "setup:community_id": world.community.community_id,
            "setup:api_key": "cad-key-LEAKCHECK-0d9e-41c2",
            "setup:server_id": "1",
        },
    )

    seen = {(r.path.split("?")[0], r.type) for r in world.sim.requests}
    assert len(seen) >= 15, seen  # the commands above really reached the CAD
    assert [path for path, _ in seen if not path.startswith("/v2/")] == []
    assert not any("communityUserId" in json.dumps(r.data) for r in world.sim.requests)
    assert [(r.type, r.status) for r in world.sim.requests if r.status is None or r.status >= 400] == []
    assert {operation for _, operation in seen} >= {
        "create_911_call",
        "set_unit_panic",
        "set_unit_status",
        "get_account",
        "get_active_units",
        "get_calls",
        "lookup_name_or_plate",
        "get_blips",
        "create_blip",
        "create_dispatch_call",
        "attach_units",
        "add_call_note",
        "detach_units",
        "close_dispatch_calls",
        "verify_secret",
        "get_version",
        "get_servers",
    }
