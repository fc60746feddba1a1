"""Admin CLI for self-hosters: ``python -m bot <verb>``.

The ``guild`` verbs write the same settings the slash commands write, so a server can be configured
before the bot is invited or while Discord is unreachable. ``run`` and ``sync-commands`` need a Discord
login and are dispatched by ``bot/__main__.py``; this module only parses them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.config import Settings
from bot.storage import Database, DatabaseError, Storage
from bot.storage.models import Category, CommandGroup, GuildConfig, PushTransport, RouteConfig
from bot.storage.repositories import MAX_DISCORD_ID
from bot.storage.secrets import KeyVault, SecretKeyError, generate_secret_key

log = logging.getLogger(__name__)

# Verbs this module parses but does not run: they need the Discord client (see bot/__main__.py).
BOT_VERBS = frozenset({"run", "sync-commands"})

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_CATEGORY_LIST = ", ".join(category.value for category in Category)
_NO_CHANNEL = {"none", "off"}


def out(text: str = "") -> None:
    """One line of CLI output (stdout); the linter forbids print in bot/."""
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    """One line of CLI diagnostics (stderr), so stdout stays clean for scripts."""
    sys.stderr.write(text + "\n")


class CliError(Exception):
    """A problem the user can fix; its message is shown as-is and the CLI exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _discord_id(value: str) -> int:
    text = value.strip()
    if not text.isdigit() or not 0 < int(text) <= MAX_DISCORD_ID:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Discord ID (enable Developer Mode, then right-click > Copy ID)"
        )
    return int(text)


def _channel_or_none(value: str) -> int | None:
    return None if value.strip().lower() in _NO_CHANNEL else _discord_id(value)


def _category(value: str) -> Category:
    try:
        return Category(value.strip().lower())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown category {value!r}; valid categories: {_CATEGORY_LIST}"
        ) from None


def _server_id(value: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a CAD server ID (a whole number such as 1)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``python -m bot`` command line; ``args.command`` is None when no verb was given."""
    # --config is accepted before or after the verb (`python -m bot run --config x.toml`). SUPPRESS keeps a
    # subcommand that lacks it from overwriting a value given before the verb.
    config_option = argparse.ArgumentParser(add_help=False)
    config_option.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS, help="settings file (default: ./config.toml)"
    )
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Sonoran CAD Discord bot: run it, or manage its settings."
    )
    parser.add_argument(
        "--config", metavar="PATH", default=None, help="settings file (default: $BOT_CONFIG or ./config.toml)"
    )
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND")

    verbs.add_parser("run", parents=[config_option], help="run the bot")

    sync = verbs.add_parser(
        "sync-commands", parents=[config_option], help="publish the slash commands to Discord"
    )
    target = sync.add_mutually_exclusive_group()
    target.add_argument("--guild", type=_discord_id, metavar="ID", help="sync to one guild only (instant)")
    target.add_argument("--dev", action="store_true", help="sync to discord.dev_guild_id from the settings")

    verbs.add_parser(
        "generate-secret-key",
        parents=[config_option],
        help="print a new BOT_SECRET_KEY (encrypts CAD API keys at rest)",
    )

    guild = verbs.add_parser("guild", parents=[config_option], help="show or change one guild's settings")
    actions = guild.add_subparsers(dest="guild_action", metavar="ACTION", required=True)

    setup = actions.add_parser(
        "setup",
        parents=[config_option],
        help="connect a guild to a CAD community (API key read from stdin)",
        description="Connect a guild to a CAD community. The API key is read from stdin, never from the "
        "command line, e.g. `python -m bot guild setup 123 --community-id abc --api-key-stdin < key.txt`.",
    )
    setup.add_argument("guild_id", type=_discord_id, metavar="GUILD_ID")
    setup.add_argument(
        "--community-id", required=True, metavar="ID", help="Admin > In-Game Integration > API"
    )
    setup.add_argument(
        "--api-key-stdin",
        action="store_true",
        required=True,
        help="read the CAD API key from stdin (hidden prompt on a terminal)",
    )
    setup.add_argument(
        "--server-id", type=_server_id, default=1, metavar="N", help="CAD server ID (default 1)"
    )
    setup.add_argument(
        "--push",
        choices=[transport.value for transport in PushTransport],
        default=PushTransport.HTTP.value,
        help="how push events arrive (default http): websocket = the bot's own session on Sonoran's hub, for "
        "a CAD server id no game server uses (ER:LC, Discord-only; no open port); http = the listener or "
        "FiveM's pushEventForwardUrl, when a FiveM server uses this server id",
    )

    route = actions.add_parser(
        "route",
        parents=[config_option],
        help="send one category of CAD events to a channel",
        description=f"Send one category of CAD events to a channel. Categories: {_CATEGORY_LIST}. "
        "Use 'none' as the channel to stop posting that category.",
    )
    route.add_argument("guild_id", type=_discord_id, metavar="GUILD_ID")
    route.add_argument("category", type=_category, metavar="CATEGORY", help=_CATEGORY_LIST)
    route.add_argument("channel_id", type=_channel_or_none, metavar="CHANNEL_ID", help="channel ID or 'none'")

    show = actions.add_parser("show", parents=[config_option], help="show a guild's settings (never the key)")
    show.add_argument("guild_id", type=_discord_id, metavar="GUILD_ID")
    return parser


async def run_cli(args: argparse.Namespace, settings: Settings | None) -> int:
    """Run an admin verb; returns the process exit code. ``run``/``sync-commands`` belong to bot/__main__.

    ``settings`` may be None only for ``generate-secret-key``, which needs none.
    """
    command = getattr(args, "command", None)
    try:
        if command == "generate-secret-key":
            return _generate_secret_key()
        if settings is None:
            raise CliError(f"'{command}' needs the settings", EXIT_FAILED)
        guild_verb = (
            _GUILD_VERBS.get(getattr(args, "guild_action", None) or "") if command == "guild" else None
        )
        if guild_verb is not None:
            return await guild_verb(args, settings)
        if command in BOT_VERBS:
            raise CliError(f"'{command}' needs the Discord client; run it through `python -m bot {command}`")
        raise CliError("no verb given; see `python -m bot --help`")
    except CliError as exc:
        err(f"error: {exc}")
        return exc.exit_code
    except SecretKeyError as exc:
        err(f"error: {exc}")
        return EXIT_USAGE
    except DatabaseError as exc:
        err(f"error: {exc}")
        return EXIT_FAILED


GuildVerb = Callable[[argparse.Namespace, Settings], Awaitable[int]]


def _generate_secret_key() -> int:
    out(generate_secret_key())
    err(
        "Put it in .env as BOT_SECRET_KEY=<key> and keep a copy: "
        "without it, stored CAD API keys are unreadable."
    )
    return EXIT_OK


def _read_api_key(stream: TextIO) -> str:
    """Blocking: read the key from a pipe, or prompt without echo on a terminal."""
    if stream.isatty():
        return getpass.getpass("CAD API key (input hidden): ")
    return stream.read()


async def _open_storage(settings: Settings, vault: KeyVault) -> Storage:
    db = await Database.open(settings.database.path)
    return Storage(db, vault)


async def _guild_setup(args: argparse.Namespace, settings: Settings) -> int:
    vault = KeyVault(settings.secret_key)
    # Checked before reading the key, so nobody pastes a secret for a command that cannot store it.
    vault.require_key()
    api_key = (await asyncio.to_thread(_read_api_key, sys.stdin)).strip()
    if not api_key:
        raise CliError(
            "no API key on stdin; pipe it in, e.g. `... --api-key-stdin < key.txt` "
            "(find it under Admin > In-Game Integration > API)"
        )
    if any(character.isspace() for character in api_key):
        raise CliError("the API key must be one line without spaces")
    community_id = args.community_id.strip()
    if not community_id:
        raise CliError("--community-id is empty")
    storage = await _open_storage(settings, vault)
    try:
        config = await storage.guilds.set_cad(args.guild_id, community_id, api_key, args.server_id)
        await storage.guilds.set_push_transport(args.guild_id, args.push)
        sharing = len(await storage.guilds.guilds_for_push_key(api_key))
    finally:
        await storage.close()
    out(
        f"Guild {config.guild_id}: connected to community {config.community_id}, server {config.server_id}; "
        "API key saved (encrypted)."
    )
    if sharing > 1:
        out(f"{sharing} guilds now use this community's API key; its push events reach all of them.")
    if args.push == PushTransport.WEBSOCKET:
        out(
            "Push events: over Sonoran's websocket (no listener port needed); a running bot opens the session "
            "within 30 s. Only for a CAD server id no game server uses."
        )
    else:
        out("Push events: over HTTP (the listener, or FiveM's pushEventForwardUrl).")
    out(f"Next: python -m bot guild route {config.guild_id} 911 <CHANNEL_ID>")
    return EXIT_OK


async def _guild_route(args: argparse.Namespace, settings: Settings) -> int:
    # Routes hold no secrets, so this works (and is allowed) without BOT_SECRET_KEY.
    storage = await _open_storage(settings, KeyVault(None))
    try:
        route = await storage.routes.set_channel(args.guild_id, args.category, args.channel_id)
    finally:
        await storage.close()
    if route.channel_id is None:
        out(f"Guild {route.guild_id}: {route.category} events will not be posted.")
    else:
        out(f"Guild {route.guild_id}: {route.category} events go to channel {route.channel_id}.")
        if not route.enabled:
            out(f"Note: the {route.category} route is disabled; enable it with /routes in Discord.")
    return EXIT_OK


async def _guild_show(args: argparse.Namespace, settings: Settings) -> int:
    storage = await _open_storage(settings, KeyVault(None))
    try:
        config = await storage.guilds.get(args.guild_id)
        routes = await storage.routes.list(args.guild_id)
        roles = await storage.roles.list(args.guild_id)
        linked = await storage.links.count(args.guild_id)
    finally:
        await storage.close()
    for line in describe_guild(args.guild_id, config, routes, roles, linked):
        out(line)
    return EXIT_OK


def describe_guild(
    guild_id: int,
    config: GuildConfig | None,
    routes: dict[Category, RouteConfig],
    roles: dict[CommandGroup, int | None],
    linked_users: int,
) -> list[str]:
    """The ``guild show`` report. Shows whether an API key is set, never the key."""
    lines = [f"Guild {guild_id}"]
    if config is None:
        lines.append(f"  (no settings yet: start with `python -m bot guild setup {guild_id} ...`)")
    community = config.community_id if config and config.community_id else "not set"
    lines += [
        f"  Community ID:  {community}",
        f"  Server ID:     {config.server_id if config else 1}",
        f"  API key:       {'set' if config and config.has_api_key else 'not set'}",
        f"  Push events:   {config.push_transport.value if config else 'http'}",
        f"  911 cooldown:  {config.cooldown_911_s if config else 30} s",
        f"  Linked users:  {linked_users}",
    ]
    if config is not None:
        lines.append(f"  Last change:   {config.updated_at.isoformat(timespec='seconds')}")
    lines.append("Routes:")
    for category, route in routes.items():
        channel = f"channel {route.channel_id}" if route.channel_id is not None else "no channel"
        state = "enabled" if route.enabled else "disabled"
        ping = f"ping role {route.ping_role_id}" if route.ping_role_id is not None else "no ping"
        lines.append(f"  {category.value:<9} {channel:<28} {state:<9} {ping}")
        if route.last_error is not None:
            when = (
                route.last_error_at.isoformat(timespec="seconds") if route.last_error_at else "unknown time"
            )
            lines.append(f"  {'':<9} last error ({when}): {route.last_error}")
    lines.append("Command roles:")
    for group, role_id in roles.items():
        lines.append(f"  {group.value:<9} {f'role {role_id}' if role_id is not None else 'everyone'}")
    return lines


# The `guild` verbs, by sub-command name (run_cli looks them up when it runs, after this module is loaded).
_GUILD_VERBS: dict[str, GuildVerb] = {"setup": _guild_setup, "route": _guild_route, "show": _guild_show}
