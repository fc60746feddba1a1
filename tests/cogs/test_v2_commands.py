"""The commands on CAD v2 (the default), through SimCord against the simulator's /v2 routes over real sockets.

Members act as themselves: a member whose CAD account links their Discord account is named by ``discord``
without any /link; a member the CAD does not know gets the how-to sentence and nothing is written; /link by
Account Secret stores the account UUID and acts by ``accountUuid`` from then on. The bot never sends
``communityUserId``. A command over the key's per-minute budget is answered at once with when to try again;
a plan refusal names the plan the CAD reports; a wrong CAD server id points at /setup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.cad.errors import NOT_LINKED_HOW_TO
from bot.cad.tiers import Tier
from bot.config import Settings
from bot.push.pipeline import PushPipeline
from bot.storage.models import Category, CommandGroup
from testing.cad_simulator import CadSimulator
from tests.cogs._member_helpers import channel_posts, refusal, reply
from tests.harness import API_KEY, COMMUNITY_ID, World, test_settings

OFFICER_UUID = "5b0f6c1e-8d2a-4c3b-9f4e-2a7d1c9e0b11"
OFFICER_SECRET = "9c1d2e3f-0000-4a4a-8b8b-123456789abc"


@pytest.fixture
def bot_settings(cad_world_sim: CadSimulator, tmp_path: Path) -> Settings:
    """The harness's settings on CAD v2 (the harness pins v1 for the suite written before v2)."""
    return test_settings(cad_world_sim.base_url, tmp_path / "bot.sqlite3", api_version=2)


@pytest.fixture
def discord_member(world: World) -> Any:
    """A member who never ran /link, whose CAD account links their Discord account, on duty as 2B-07."""
    account = world.community.add_account("mpatel", discord_id=world.member.id)
    world.community.add_unit(account=account, unit_num="2B-07", name="Maya Patel", status=1)
    world.extra["discord_account"] = account
    return world.member


def v2_requests(world: World, operation: str) -> list[Any]:
    return [r for r in world.sim.requests_of(operation) if r.path.startswith("/v2/")]


def sent_anywhere(world: World, key: str) -> bool:
    return any(key in json.dumps(r.data) for r in world.sim.requests)


# ---------------------------------------------------------------------------------------------- members


async def test_a_member_with_a_discord_link_presses_panic_without_link(
    world: World, discord_member: Any
) -> None:
    role = world.guild.create_role("Supervisors")
    await world.storage.routes.set_channel(world.guild.id, Category.PANIC, world.alerts.id)
    await world.storage.routes.set_ping_role(world.guild.id, Category.PANIC, role.id)
    since = len(world.env.http_requests)

    result = await discord_member.slash(world.channel, "panic")

    assert reply(result) == "🚨 Panic ON — dispatch has been alerted."
    [sent] = v2_requests(world, "set_unit_panic")
    assert sent.data == {"discord": str(discord_member.id), "isPanic": True}
    assert world.community.units_of_account(world.extra["discord_account"].uuid)[0].is_panic is True
    pipeline = world.bot.services.pipeline
    assert isinstance(pipeline, PushPipeline)
    await pipeline.wait_until_idle(timeout_s=5)
    await world.env.settle()
    [post] = channel_posts(world, since)
    assert post.json["content"] == f"<@&{role.id}>"
    # The alert names the member's unit, found through the account the CAD links to their Discord user.
    assert "2B-07" in world.alerts.history()[0].embeds[0].title
    assert not sent_anywhere(world, "communityUserId")


async def test_a_member_the_cad_does_not_know_gets_the_how_to_and_no_alert(world: World) -> None:
    await world.storage.routes.set_channel(world.guild.id, Category.PANIC, world.alerts.id)

    result = await world.member.slash(world.channel, "panic")

    assert refusal(world, result) == NOT_LINKED_HOW_TO
    assert v2_requests(world, "set_unit_panic") == []
    pipeline = world.bot.services.pipeline
    assert isinstance(pipeline, PushPipeline)
    await pipeline.wait_until_idle(timeout_s=5)
    assert world.alerts.history() == []


async def test_unit_status_by_discord_and_the_how_to_when_not_linked(
    world: World, discord_member: Any
) -> None:
    result = await discord_member.slash(world.channel, "unit status", status=3)
    assert "status" in reply(result).lower()
    [sent] = v2_requests(world, "set_unit_status")
    assert sent.data == {"discord": str(discord_member.id), "status": 3}
    assert world.community.units_of_account(world.extra["discord_account"].uuid)[0].status == 3

    stranger = world.guild.add_member(world.env.create_user("stranger"))
    result = await stranger.slash(world.channel, "unit status", status=2)
    assert refusal(world, result) == NOT_LINKED_HOW_TO
    assert (
        world.community.units_of_account(world.extra["discord_account"].uuid)[0].status == 3
    )  # nothing written


async def test_link_by_secret_verifies_on_v2_then_acts_by_account_uuid(world: World) -> None:
    world.community.add_unit(account=world.officer_account, unit_num="1A-12", name="Jordan Reyes")
    await world.storage.links.unlink(world.guild.id, world.member.id)

    opened = await world.member.slash(world.channel, "link")
    assert opened.modal is not None
    result = await world.member.submit_modal(opened, {"account_secret": OFFICER_SECRET})

    assert "jreyes" in reply(result)
    [verify] = v2_requests(world, "verify_secret")
    assert verify.path == "/v2/general/secrets/verify"
    link = await world.storage.links.get(world.guild.id, world.member.id)
    assert link is not None and link.account_uuid == OFFICER_UUID

    await world.member.slash(world.channel, "unit status", status=4)
    [sent] = v2_requests(world, "set_unit_status")
    assert sent.data == {"accountUuid": OFFICER_UUID, "status": 4}
    # The secret went to the CAD once, to be verified, and nowhere else.
    assert [r.type for r in world.sim.requests if OFFICER_SECRET in json.dumps(r.data)] == ["verify_secret"]


async def test_link_api_id_on_v2_explains_the_discord_link_and_writes_nothing(world: World) -> None:
    result = await world.member.slash(world.channel, "link", method="api-id")

    assert "link Discord in your CAD account settings" in refusal(world, result)
    assert await world.storage.links.get(world.guild.id, world.member.id) is None
    assert world.sim.requests == []


async def test_whoami_reads_the_account_by_discord_first(world: World, discord_member: Any) -> None:
    result = await discord_member.slash(world.channel, "whoami")

    assert "through the Discord link in your CAD account" in reply(result)
    assert "mpatel" in reply(result)
    [read] = v2_requests(world, "get_account")
    assert read.data == {"discord": str(discord_member.id)}

    stranger = world.guild.add_member(world.env.create_user("stranger"))
    assert refusal(world, await stranger.slash(world.channel, "whoami")) == NOT_LINKED_HOW_TO


async def test_an_officer_linked_before_v2_keeps_acting_by_account_uuid(world: World) -> None:
    world.community.add_unit(account=world.officer_account, unit_num="1A-12", name="Jordan Reyes")

    await world.officer.slash(world.channel, "panic")

    [sent] = v2_requests(world, "set_unit_panic")
    assert sent.data == {"accountUuid": OFFICER_UUID, "isPanic": True}


# ---------------------------------------------------------------------------------------------- dispatch


async def test_dispatch_attach_me_by_discord(world: World, discord_member: Any) -> None:
    call = world.community.add_dispatch(title="Shots fired", address="Grove St")
    admin_account = world.community.add_account("dispatch", discord_id=world.admin.id)
    world.community.add_unit(account=admin_account, unit_num="D-1", name="Dispatch One")

    result = await world.admin.slash(world.channel, "dispatch attach", call=call.call_id)

    assert "attached" in reply(result).lower()
    [sent] = v2_requests(world, "attach_units")
    assert sent.data == {"discord": str(world.admin.id)}


# ---------------------------------------------------------------------------------------------- limits, plans


async def test_a_911_over_the_keys_budget_is_answered_at_once_with_when_to_retry(world: World) -> None:
    await world.storage.guilds.set_cooldown(world.guild.id, 0)
    for n in range(10):  # v2 allows 10 new 911 calls a minute per key
        result = await world.member.slash(world.channel, "911", location=f"Grove St {n}", description="help")
        assert "911" in reply(result)

    result = await world.member.slash(world.channel, "911", location="Grove St", description="help")

    assert "try again in" in refusal(world, result).lower()
    assert len(v2_requests(world, "create_911_call")) == 10  # the 11th never reached the CAD


async def test_two_guilds_on_one_key_share_its_budget(world: World) -> None:
    other = world.env.create_guild(name="Second server")
    other_channel = other.create_text_channel("general")
    other_member = other.add_member(world.env.create_user("visitor"))
    await world.storage.guilds.set_cad(other.id, COMMUNITY_ID, API_KEY, 1)
    for guild in (world.guild, other):
        await world.storage.guilds.set_cooldown(guild.id, 0)
    for n in range(10):
        await world.member.slash(world.channel, "911", location=f"Grove St {n}", description="help")

    result = await other_member.slash(other_channel, "911", location="Vinewood", description="help")

    assert "try again in" in refusal(world, result).lower()
    assert len(v2_requests(world, "create_911_call")) == 10


async def test_a_plan_refusal_names_the_plan_the_cad_reports(world: World) -> None:
    world.community.tier = Tier.STANDARD
    world.sim.v2.refuse_for_plan(COMMUNITY_ID, "get_blips")

    result = await world.admin.slash(world.channel, "blips list")

    assert "Standard" in refusal(world, result)


async def test_a_wrong_cad_server_id_points_at_setup(world: World, discord_member: Any) -> None:
    await world.storage.guilds.set_cad(world.guild.id, COMMUNITY_ID, API_KEY, 7)

    result = await discord_member.slash(world.channel, "unit status", status=2)

    assert "/setup" in refusal(world, result)


async def test_setup_validates_with_v2_version_and_names_the_plan(world: World) -> None:
    opened = await world.admin.slash(world.channel, "setup")
    assert opened.modal is not None
    result = await world.admin.submit_modal(
        opened, {"setup:community_id": COMMUNITY_ID, "setup:api_key": API_KEY, "setup:server_id": "1"}
    )

    [version] = v2_requests(world, "get_version")
    assert version.path == "/v2/general/version"
    [embed] = result.response.embeds
    assert "API v2" in embed.description
    assert "this community is on **Sonoran CAD Pro**" in embed.description
    assert "Likely needs a higher plan (the CAD decides)" not in str(embed.to_dict())  # Pro: nothing locked


async def test_card_buttons_act_by_discord_for_a_member_without_link(world: World) -> None:
    role = world.guild.create_role("Dispatch")
    await world.storage.roles.set(world.guild.id, CommandGroup.DISPATCH, role.id)
    await world.storage.routes.set_channel(world.guild.id, Category.DISPATCH, world.alerts.id)
    clicker = world.guild.add_member(world.env.create_user("sergeant"), roles=[role])
    account = world.community.add_account("sgt", discord_id=clicker.id)
    world.community.add_unit(account=account, unit_num="3C-01", name="Sam Cole")
    result = await world.admin.slash(
        world.channel,
        "dispatch new",
        title="Traffic Stop",
        address="Legion Square",
        description="Sedan",
        priority=2,
    )
    assert "created" in reply(result), reply(result)
    pipeline = world.bot.services.pipeline
    assert isinstance(pipeline, PushPipeline)
    await pipeline.wait_until_idle(timeout_s=5)
    await world.env.settle()
    [card] = world.alerts.history()

    result = await clicker.click(card, label="Attach me")

    assert reply(result) == f"✅ **3C-01 Sam Cole** attached to call **#{max(world.community.dispatches)}**."
    [sent] = v2_requests(world, "attach_units")
    assert sent.data == {"discord": str(clicker.id)}


async def test_setup_refuses_a_server_id_the_cad_does_not_list(world: World) -> None:
    opened = await world.admin.slash(world.channel, "setup")
    result = await world.admin.submit_modal(
        opened, {"setup:community_id": COMMUNITY_ID, "setup:api_key": API_KEY, "setup:server_id": "7"}
    )

    assert refusal(world, result).startswith("This CAD community has no server 7; its servers are 1 ")
    [listed] = v2_requests(world, "get_servers")
    assert listed.path == "/v2/general/servers"
    config = await world.storage.guilds.get(world.guild.id)
    assert config is not None and config.server_id == 1  # nothing saved


async def test_attaching_another_member_the_cad_does_not_know_names_them(world: World) -> None:
    call = world.community.add_dispatch(title="Shots fired", address="Grove St")
    stranger = world.guild.add_member(world.env.create_user("stranger"))

    result = await world.admin.slash(world.channel, "dispatch attach", call=call.call_id, member=stranger)

    assert refusal(world, result).startswith("**stranger** hasn't linked a CAD account yet")
    assert "link Discord in their CAD account settings" in refusal(world, result)
    assert v2_requests(world, "attach_units") == []
