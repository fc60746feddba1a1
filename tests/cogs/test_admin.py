"""/setup and /config through SimCord against the CAD simulator: what the admin sees, what got stored, and
that the API key never leaves storage (not in the modal, any message, any Discord request or any log line)."""

from __future__ import annotations

import json
import logging
from typing import Any

import discord
import pytest
from simcord import OptionError, SetupError

from bot.cad.models import CadCredentials
from bot.cad.tiers import Tier
from bot.storage import Storage
from bot.storage.models import Category, CommandGroup
from bot.tree import user_message_for
from tests.harness import API_KEY, COMMUNITY_ID, World

NEW_COMMUNITY = "9001"
NEW_KEY = "new-key-LEAKCHECK-77aa-4bd1"
ADMIN_REFUSAL = "You need the Manage Server permission to use this command."


# ---------------------------------------------------------------------------------------------- helpers


def everything_sent_to_discord(world: World) -> str:
    """Every REST request body the bot made (interaction answers, modals, posts, edits), as one string."""
    return json.dumps(
        [[entry.path, entry.json, entry.params] for entry in world.env.http_requests], default=str
    )


def answer_types(world: World, since: int) -> list[int]:
    """Interaction callback types sent after request ``since`` (9 = modal, 5 = deferred, 4 = message)."""
    return [
        entry.json["type"]
        for entry in world.env.http_requests[since:]
        if entry.path.endswith("/callback") and isinstance(entry.json, dict)
    ]


def text_of(result: Any) -> str:
    """The ephemeral reply: its content plus every embed, as one searchable string."""
    assert result.response is not None, "the interaction was never answered"
    assert result.ephemeral
    embeds = [json.dumps(embed.to_dict()) for embed in result.response.embeds]
    return "\n".join([result.response.content, *embeds])


def embed_of(result: Any) -> dict[str, Any]:
    assert result.response is not None and result.ephemeral
    [embed] = result.response.embeds
    return embed.to_dict()


def refusal(world: World, result: Any) -> str:
    """The refusal shown; also checks it came from a known error, not a crash."""
    errors = world.env.errors  # reading acknowledges them, so SimCord won't fail the test at teardown
    assert errors, "expected the command to be refused"
    assert user_message_for(errors[-1]) is not None, f"unexpected error: {errors[-1]!r}"
    return text_of(result)


def allow_member_to_see(world: World, root_command: str, member: Any) -> None:
    """What a server owner can do in Server Settings > Integrations: let a non-admin run an admin command."""
    command = world.env.backend.find_command(root_command, world.guild.id)
    assert command is not None
    assert int(command["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    world.guild.set_command_permissions(int(command["id"]), {member: True})


def use_listener_settings(world: World, **changes: Any) -> None:
    """Run the bot as if its config.toml had these ``[server]`` values (the harness switches the listener off)."""
    server = world.settings.server.model_copy(update=changes)
    world.bot.services.settings = world.settings.model_copy(update={"server": server})


async def open_setup(world: World) -> Any:
    result = await world.admin.slash(world.channel, "setup")
    assert result.modal is not None
    return result


async def submit_setup(world: World, community: str, key: str, server: str = "1") -> Any:
    shown = await open_setup(world)
    return await world.admin.submit_modal(
        shown, {"setup:community_id": community, "setup:api_key": key, "setup:server_id": server}
    )


# ---------------------------------------------------------------------------------------------- /setup


async def test_setup_checks_the_credentials_with_the_cad_then_stores_them(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    use_listener_settings(world, enabled=True, port=8085)
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS).add_server(2, "Second server")
    since = len(world.env.http_requests)

    shown = await open_setup(world)
    result = await world.admin.submit_modal(
        shown,
        {
            "setup:community_id": f"  {NEW_COMMUNITY} ",
            "setup:api_key": f" {NEW_KEY}\n",
            "setup:server_id": "2",
        },
    )

    assert answer_types(world, since)[:2] == [9, 5]  # the modal first, then a deferral before the CAD call
    [check] = world.sim.requests_of("GET_VERSION")
    assert check.community_id == NEW_COMMUNITY
    stored = await world.storage.guilds.get_credentials(world.guild.id)
    assert stored == CadCredentials(community_id=NEW_COMMUNITY, api_key=NEW_KEY, server_id=2)
    # The stored credentials are the ones that work: the bot's own client gets the plan with them.
    assert await world.bot.services.cad.get_version(stored) == Tier.PLUS

    embed = embed_of(result)
    assert embed["title"] == "Connected to Sonoran CAD"
    assert "Sonoran CAD Plus" in embed["description"]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    works = fields["Works on your plan"]
    for feature in (
        "911 calls",
        "Panic button",
        "Unit status",
        "Lookups",
        "Call lists",
        "Unit lists",
        "Dispatch",
    ):
        assert feature in works
    assert fields["Needs a higher plan"] == "🔒 Map blips: Sonoran CAD Pro"
    # No public_url in the harness settings: the admin is told to use this host's public IP and the port.
    option_a = fields["Live alerts, option A: the CAD server entry"]
    assert "Admin > Advanced > In-Game Integration" in option_a
    assert "server **2**" in option_a
    assert "public IP" in option_a
    assert "Listener Port to `8085`" in option_a
    assert "pushEventForwardUrl" in fields["Live alerts, option B: FiveM forwarding"]

    # The key never appears anywhere: not in the modal, not in any reply or request, not in the logs.
    for secret in (NEW_KEY, API_KEY):
        assert secret not in json.dumps(shown.modal)
        assert secret not in text_of(result)
        assert secret not in everything_sent_to_discord(world)
        assert secret not in caplog.text


async def test_setup_modal_keeps_the_community_but_never_prefills_the_key(world: World) -> None:
    shown = await open_setup(world)

    inputs = {
        component["custom_id"]: component
        for row in shown.modal["components"]
        for component in row["components"]
    }
    assert inputs["setup:community_id"].get("value") == COMMUNITY_ID
    assert inputs["setup:server_id"].get("value") == "1"
    assert "value" not in inputs["setup:api_key"]
    assert API_KEY not in json.dumps(shown.modal)
    assert world.sim.requests_of("GET_VERSION") == []  # opening the modal asks nothing of the CAD


async def test_setup_shows_the_exact_address_when_the_public_url_is_known(world: World) -> None:
    use_listener_settings(world, enabled=True, public_url="http://203.0.113.7:8085/")

    result = await submit_setup(world, COMMUNITY_ID, API_KEY)

    fields = {field["name"]: field["value"] for field in embed_of(result)["fields"]}
    option_a = fields["Live alerts, option A: the CAD server entry"]
    assert "IP to `203.0.113.7`" in option_a
    assert "Listener Port to `8085`" in option_a
    assert "http://203.0.113.7:8085/sonorancad/event" in option_a
    option_b = fields["Live alerts, option B: FiveM forwarding"]
    assert "enablePushEventForwarding = true" in option_b
    assert 'pushEventForwardUrl = "http://203.0.113.7:8085/sonorancad/event"' in option_b
    assert "Needs a higher plan" not in fields  # the harness community is on Pro


async def test_setup_says_when_this_bot_does_not_listen_for_push_events(world: World) -> None:
    result = await submit_setup(world, COMMUNITY_ID, API_KEY)

    fields = {field["name"]: field["value"] for field in embed_of(result)["fields"]}
    assert fields["Live alerts"].startswith("This bot's push-event listener is switched off")
    assert not any(name.startswith("Live alerts, option") for name in fields)


async def test_setup_with_rejected_credentials_stores_nothing(world: World) -> None:
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS)

    result = await submit_setup(world, NEW_COMMUNITY, "not-the-key")

    assert refusal(world, result).startswith("The CAD rejected those credentials")
    assert "Nothing was saved" in text_of(result)
    assert len(world.sim.requests_of("GET_VERSION")) == 1
    stored = await world.storage.guilds.get_credentials(world.guild.id)
    assert stored is not None and stored.community_id == COMMUNITY_ID  # the old, working connection stays
    assert "not-the-key" not in everything_sent_to_discord(world)


async def test_setup_refuses_a_server_id_the_community_does_not_have(world: World) -> None:
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS).add_server(3, "Patrol")

    result = await submit_setup(world, NEW_COMMUNITY, NEW_KEY, server="7")

    assert refusal(world, result) == (
        "This CAD community has no server 7; its servers are 1, 3 (Admin > Advanced > In-Game Integration). "
        "Run /setup again with one of them. Nothing was saved."
    )
    stored = await world.storage.guilds.get(world.guild.id)
    assert stored is not None and stored.community_id == COMMUNITY_ID  # the old, working connection stays


async def test_setup_takes_the_server_id_as_typed_when_the_cad_cannot_list_servers(world: World) -> None:
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS)
    world.sim.fail_next(5, 500, request_type="GET_SERVERS")

    result = await submit_setup(world, NEW_COMMUNITY, NEW_KEY, server="2")

    assert embed_of(result)["title"] == "Connected to Sonoran CAD"
    stored = await world.storage.guilds.get_credentials(world.guild.id)
    assert stored is not None and stored.server_id == 2


async def test_setup_with_an_unknown_community_stores_nothing(world: World) -> None:
    result = await submit_setup(world, "no-such-community", NEW_KEY)

    assert refusal(world, result).startswith("The CAD rejected those credentials")
    stored = await world.storage.guilds.get(world.guild.id)
    assert stored is not None and stored.community_id == COMMUNITY_ID


async def test_setup_refreshes_a_cached_plan_instead_of_trusting_it(world: World) -> None:
    creds = await world.storage.guilds.get_credentials(world.guild.id)
    assert creds is not None
    cad = world.bot.services.cad
    assert await cad.get_tier(creds) == Tier.PRO
    world.community.tier = Tier.STANDARD  # the community downgraded since

    result = await submit_setup(world, COMMUNITY_ID, API_KEY)

    assert "Sonoran CAD Standard" in embed_of(result)["description"]
    assert len(world.sim.requests_of("GET_VERSION")) == 2
    assert cad.cached_tier(COMMUNITY_ID) == Tier.STANDARD


@pytest.mark.parametrize("server_id", ["one", "-1", "1.5", "1e3", "9999999999"])
async def test_setup_refuses_a_server_id_that_is_not_a_whole_number(world: World, server_id: str) -> None:
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS)

    result = await submit_setup(world, NEW_COMMUNITY, NEW_KEY, server=server_id)

    assert refusal(world, result).startswith("The server ID must be a whole number such as 1")
    assert world.sim.requests_of("GET_VERSION") == []  # refused before asking the CAD
    stored = await world.storage.guilds.get(world.guild.id)
    assert stored is not None and stored.community_id == COMMUNITY_ID


async def test_setup_treats_an_empty_server_id_as_server_1(world: World) -> None:
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS)

    await submit_setup(world, NEW_COMMUNITY, NEW_KEY, server="  ")

    stored = await world.storage.guilds.get(world.guild.id)
    assert stored is not None and stored.community_id == NEW_COMMUNITY and stored.server_id == 1


@pytest.mark.parametrize(
    ("community", "key", "expected"),
    [
        ("47 11", NEW_KEY, "That community ID doesn't look right"),
        (NEW_COMMUNITY, "two words", "That API key doesn't look right"),
        (NEW_COMMUNITY, "   ", "The API key is empty"),
    ],
)
async def test_setup_refuses_malformed_credentials_before_asking_the_cad(
    world: World, community: str, key: str, expected: str
) -> None:
    result = await submit_setup(world, community, key)

    assert refusal(world, result).startswith(expected)
    assert world.sim.requests_of("GET_VERSION") == []


async def test_setup_reports_a_cad_outage_and_stores_nothing(world: World) -> None:
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS)
    world.sim.fail_next(3, 503)  # every attempt the client makes

    result = await submit_setup(world, NEW_COMMUNITY, NEW_KEY)

    assert refusal(world, result).startswith("Couldn't check those credentials: the CAD could not be reached")
    stored = await world.storage.guilds.get(world.guild.id)
    assert stored is not None and stored.community_id == COMMUNITY_ID


async def test_setup_without_bot_secret_key_says_how_to_fix_it(world: World) -> None:
    keyless = await Storage.open(world.settings.database.path, None)
    world.bot.services.storage = keyless
    try:
        result = await world.admin.slash(world.channel, "setup")

        assert result.modal is None  # told before typing a key that could not be stored
        message = refusal(world, result)
        assert message.startswith("BOT_SECRET_KEY is not set, so CAD API keys cannot be stored or read")
        assert "python -m bot generate-secret-key" in message
        assert "Traceback" not in message
        assert world.sim.requests_of("GET_VERSION") == []
    finally:
        world.bot.services.storage = world.storage
        await keyless.close()


async def test_setup_submit_without_bot_secret_key_stores_nothing(world: World) -> None:
    """The key can disappear between opening the modal and submitting it (a restart with a new .env)."""
    world.sim.add_community(NEW_COMMUNITY, NEW_KEY, Tier.PLUS)
    shown = await open_setup(world)
    keyless = await Storage.open(world.settings.database.path, None)
    world.bot.services.storage = keyless
    try:
        result = await world.admin.submit_modal(
            shown, {"setup:community_id": NEW_COMMUNITY, "setup:api_key": NEW_KEY, "setup:server_id": "1"}
        )

        assert refusal(world, result).startswith("BOT_SECRET_KEY is not set")
        assert world.sim.requests_of("GET_VERSION") == []
    finally:
        world.bot.services.storage = world.storage
        await keyless.close()
    stored = await world.storage.guilds.get(world.guild.id)
    assert stored is not None and stored.community_id == COMMUNITY_ID


# ---------------------------------------------------------------------------------------------- permissions

ADMIN_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("setup", {}),
    ("status", {}),
    ("config route", {"category": "911"}),
    ("config toggle", {"category": "911", "state": "off"}),
    ("config ping", {"category": "911"}),
    ("config role", {"group": "lookup"}),
    ("config cooldown", {"seconds": 5}),
    ("config show", {}),
    ("config reset", {}),
    ("config test", {}),
]


@pytest.mark.parametrize(("command", "options"), ADMIN_COMMANDS, ids=[name for name, _ in ADMIN_COMMANDS])
async def test_admin_commands_are_hidden_from_members_by_default(
    world: World, command: str, options: dict[str, Any]
) -> None:
    with pytest.raises(SetupError, match="default-member-permissions"):
        await world.member.slash(world.channel, command, **options)


@pytest.mark.parametrize(("command", "options"), ADMIN_COMMANDS, ids=[name for name, _ in ADMIN_COMMANDS])
async def test_admin_commands_refuse_members_even_when_the_owner_unhides_them(
    world: World, command: str, options: dict[str, Any]
) -> None:
    allow_member_to_see(world, command.split()[0], world.member)
    before = await world.storage.guilds.get(world.guild.id)

    result = await world.member.slash(world.channel, command, **options)

    assert refusal(world, result) == ADMIN_REFUSAL
    assert result.modal is None
    assert world.sim.requests_of("GET_VERSION") == []
    assert await world.storage.guilds.get(world.guild.id) == before
    assert (await world.storage.routes.get(world.guild.id, Category.CALLS_911)).enabled
    assert API_KEY not in everything_sent_to_discord(world)


# ---------------------------------------------------------------------------------------------- /config verbs


async def test_config_route_stores_the_channel_and_warns_when_the_bot_cannot_post_there(world: World) -> None:
    result = await world.admin.slash(world.channel, "config route", category="dispatch", channel=world.alerts)

    assert text_of(result) == f"Dispatch calls will be posted in <#{world.alerts.id}>."
    route = await world.storage.routes.get(world.guild.id, Category.DISPATCH)
    assert route.channel_id == world.alerts.id and route.enabled

    locked = world.guild.create_text_channel(
        "locked", overwrites={world.guild.default_role: discord.PermissionOverwrite(send_messages=False)}
    )
    result = await world.admin.slash(world.channel, "config route", category="dispatch", channel=locked)

    assert "I'm missing **Send Messages, Embed Links** in that channel" in text_of(result)
    assert (await world.storage.routes.get(world.guild.id, Category.DISPATCH)).channel_id == locked.id


async def test_config_route_without_a_channel_stops_posting(world: World) -> None:
    await world.storage.routes.set_channel(world.guild.id, Category.UNITS, world.alerts.id)

    result = await world.admin.slash(world.channel, "config route", category="units")

    assert text_of(result) == "Unit activity won't be posted anywhere now (no channel)."
    assert (await world.storage.routes.get(world.guild.id, Category.UNITS)).channel_id is None


async def test_config_toggle_switches_a_route_off_and_on(world: World) -> None:
    await world.storage.routes.set_channel(world.guild.id, Category.PANIC, world.alerts.id)

    result = await world.admin.slash(world.channel, "config toggle", category="panic", state="off")

    assert text_of(result).startswith("Panic alerts are switched off")
    assert not (await world.storage.routes.get(world.guild.id, Category.PANIC)).enabled

    result = await world.admin.slash(world.channel, "config toggle", category="panic", state="on")

    assert text_of(result) == f"Panic alerts are switched on and go to <#{world.alerts.id}>."
    assert (await world.storage.routes.get(world.guild.id, Category.PANIC)).enabled


@pytest.mark.parametrize("category", ["911", "panic"])
async def test_config_ping_sets_and_clears_the_role_for_911_and_panic(world: World, category: str) -> None:
    responders = world.guild.create_role("Responders")

    result = await world.admin.slash(world.channel, "config ping", category=category, role=responders)

    assert text_of(result).endswith(f"will ping <@&{responders.id}>.")
    assert (await world.storage.routes.get(world.guild.id, Category(category))).ping_role_id == responders.id

    result = await world.admin.slash(world.channel, "config ping", category=category)

    assert text_of(result).endswith("no longer ping a role.")
    assert (await world.storage.routes.get(world.guild.id, Category(category))).ping_role_id is None


@pytest.mark.parametrize("category", ["dispatch", "units", "records", "other"])
async def test_config_ping_refuses_categories_that_never_ping(world: World, category: str) -> None:
    responders = world.guild.create_role("Responders")

    result = await world.admin.slash(world.channel, "config ping", category=category, role=responders)

    message = refusal(world, result)
    assert "can't ping a role: only new 911 calls and panic alerts ping" in message
    assert (await world.storage.routes.get(world.guild.id, Category(category))).ping_role_id is None


async def test_config_ping_refuses_everyone(world: World) -> None:
    result = await world.admin.slash(
        world.channel, "config ping", category="911", role=world.guild.default_role
    )

    assert refusal(world, result) == "Pick a specific role to ping, not @everyone."
    assert (await world.storage.routes.get(world.guild.id, Category.CALLS_911)).ping_role_id is None


async def test_config_role_sets_and_clears_a_command_role(world: World) -> None:
    dispatchers = world.guild.create_role("Dispatchers")

    result = await world.admin.slash(world.channel, "config role", group="dispatch", role=dispatchers)

    assert (
        text_of(result)
        == f"Only members with <@&{dispatchers.id}> (and server admins) can use dispatch commands now."
    )
    assert await world.storage.roles.get(world.guild.id, CommandGroup.DISPATCH) == dispatchers.id

    result = await world.admin.slash(world.channel, "config role", group="dispatch")

    assert text_of(result) == (
        "No role is required for dispatch commands any more: back to the default (server admins only)."
    )
    assert await world.storage.roles.get(world.guild.id, CommandGroup.DISPATCH) is None


async def test_config_cooldown_round_trips_and_zero_disables_it(world: World) -> None:
    result = await world.admin.slash(world.channel, "config cooldown", seconds=120)

    assert text_of(result) == "Members can send one /911 call every 120 s."
    config = await world.storage.guilds.get(world.guild.id)
    assert config is not None and config.cooldown_911_s == 120

    result = await world.admin.slash(world.channel, "config cooldown", seconds=0)

    assert text_of(result).startswith("The /911 cooldown is off")
    config = await world.storage.guilds.get(world.guild.id)
    assert config is not None and config.cooldown_911_s == 0


@pytest.mark.parametrize("seconds", [-1, 3601])
async def test_config_cooldown_refuses_out_of_range_values(world: World, seconds: int) -> None:
    # Discord itself refuses values outside the declared range, so the bot never sees them.
    with pytest.raises(OptionError, match="must be"):
        await world.admin.slash(world.channel, "config cooldown", seconds=seconds)
    config = await world.storage.guilds.get(world.guild.id)
    assert config is not None and config.cooldown_911_s == 30


async def test_config_show_lists_everything_but_the_key(world: World) -> None:
    responders = world.guild.create_role("Responders")
    await world.storage.routes.set_channel(world.guild.id, Category.CALLS_911, world.alerts.id)
    await world.storage.routes.set_ping_role(world.guild.id, Category.CALLS_911, responders.id)
    await world.storage.routes.set_channel(world.guild.id, Category.DISPATCH, world.channel.id)
    await world.storage.routes.set_enabled(world.guild.id, Category.DISPATCH, False)
    await world.storage.routes.mark_failed(
        world.guild.id, Category.DISPATCH, "missing permissions: Send Messages"
    )
    await world.storage.roles.set(world.guild.id, CommandGroup.LOOKUP, responders.id)
    await world.storage.guilds.set_cooldown(world.guild.id, 45)
    creds = await world.storage.guilds.get_credentials(world.guild.id)
    assert creds is not None
    await world.bot.services.cad.get_tier(creds)

    result = await world.admin.slash(world.channel, "config show")

    fields = {field["name"]: field["value"] for field in embed_of(result)["fields"]}
    assert fields["Sonoran CAD"] == (
        f"Community ID: `{COMMUNITY_ID}`\nCAD server: 1\nAPI key: set\nPlan: Sonoran CAD Pro\n"
        "Push events: http (the listener, or FiveM's pushEventForwardUrl)"
    )
    assert fields["911 calls"] == f"<#{world.alerts.id}> · on · ping <@&{responders.id}>"
    assert fields["Dispatch calls"].startswith(f"<#{world.channel.id}> · **off**\n⚠️ last error (<t:")
    assert fields["Dispatch calls"].endswith("missing permissions: Send Messages")
    assert fields["Panic alerts"] == "no channel · on · ping none"
    assert fields["Records"] == "no channel · on"
    assert f"lookups: <@&{responders.id}>" in fields["Who can use commands"]
    assert "911 calls: everyone" in fields["Who can use commands"]
    assert fields["Other"] == "/911 cooldown: 45 s\nLinked members: 1"
    assert API_KEY not in everything_sent_to_discord(world)


async def test_config_show_on_a_server_that_never_ran_setup(world: World) -> None:
    await world.storage.guilds.reset(world.guild.id)

    result = await world.admin.slash(world.channel, "config show")

    fields = {field["name"]: field["value"] for field in embed_of(result)["fields"]}
    assert fields["Sonoran CAD"] == "Not connected: run `/setup`."
    assert fields["Other"] == "/911 cooldown: 30 s\nLinked members: 0"


# ---------------------------------------------------------------------------------------------- /config reset


async def test_config_reset_needs_the_confirmation_button(world: World) -> None:
    prompt = await world.admin.slash(world.channel, "config reset")

    assert "forgets everything about this server" in text_of(prompt)
    assert await world.storage.guilds.get(world.guild.id) is not None  # nothing happens until confirmed

    confirmed = await world.admin.click(prompt.response, label="Reset everything")

    assert confirmed.response is not None
    assert confirmed.response.content.startswith("Done: this server's CAD connection")
    assert confirmed.response.components == []  # buttons removed: it can't be pressed twice
    assert await world.storage.guilds.get(world.guild.id) is None
    assert await world.storage.links.count(world.guild.id) == 0


async def test_config_reset_cancel_changes_nothing(world: World) -> None:
    prompt = await world.admin.slash(world.channel, "config reset")

    cancelled = await world.admin.click(prompt.response, label="Cancel")

    assert cancelled.response is not None
    assert cancelled.response.content == "Reset cancelled; nothing changed."
    assert await world.storage.guilds.get_credentials(world.guild.id) is not None


async def test_config_reset_can_only_be_confirmed_by_the_admin_who_asked(world: World) -> None:
    prompt = await world.admin.slash(world.channel, "config reset")
    other_admin = world.guild.add_member(world.env.create_user("admin2"), roles=[world.guild.roles["Admins"]])

    with pytest.raises(SetupError, match="not visible to this user"):
        await other_admin.click(prompt.response, label="Reset everything")
    assert await world.storage.guilds.get(world.guild.id) is not None


async def test_config_reset_expires_without_an_answer(world: World) -> None:
    prompt = await world.admin.slash(world.channel, "config reset")

    await world.env.advance_time(61)

    assert prompt.response is not None
    assert prompt.response.content == "Reset cancelled: no answer within a minute; nothing changed."
    assert prompt.response.components == []
    assert await world.storage.guilds.get(world.guild.id) is not None


async def test_config_reset_is_refused_to_an_admin_demoted_since_the_prompt(world: World) -> None:
    prompt = await world.admin.slash(world.channel, "config reset")
    world.env.backend.remove_member_role(world.guild.id, world.admin.id, world.guild.roles["Admins"].id)
    await world.env.settle()

    refused = await world.admin.click(prompt.response, label="Reset everything")

    assert refusal(world, refused) == ADMIN_REFUSAL
    assert await world.storage.guilds.get(world.guild.id) is not None
