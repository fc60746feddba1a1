"""``python -m bot``: run the bot, or one of the admin verbs (see ``--help``).

Settings are built before the event loop starts; the process owns the database, the one HTTP session and the
bot, and tears them down in reverse order on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

import aiohttp
import discord
from discord.backoff import ExponentialBackoff

from bot.app import apply_discord_endpoints, create_bot
from bot.cli import build_parser, run_cli
from bot.config import ConfigError, Settings, load_settings, require_token
from bot.logs import setup_logging
from bot.storage import Storage

log = logging.getLogger("bot")


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2


async def run_bot(settings: Settings, token: str) -> None:
    apply_discord_endpoints(settings)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    storage = await Storage.open(settings.database.path, secret)
    try:
        async with aiohttp.ClientSession() as session:
            bot = create_bot(settings, storage, session)
            loop = asyncio.get_running_loop()
            stopping: set[asyncio.Task[None]] = set()

            def request_stop(signame: str) -> None:
                log.info("received %s, shutting down", signame)
                task = loop.create_task(bot.close())
                stopping.add(task)
                task.add_done_callback(stopping.discard)

            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):  # signal handlers are POSIX-only
                    loop.add_signal_handler(sig, request_stop, sig.name)
            async with bot:
                try:
                    await bot.login(token)
                except discord.LoginFailure:
                    log.error("Discord rejected DISCORD_TOKEN; reset the token in the Developer Portal")
                    raise SystemExit(2) from None
                await stay_connected(bot)
    finally:
        await storage.close()


async def stay_connected(bot: discord.Client) -> None:
    """Keep the gateway connected until the bot is closed.

    discord.py reconnects by itself once a session existed, but if the very first connection fails (Discord
    or the network down at boot) its retry path trips over the missing websocket. Retrying here keeps the push
    listener and deliveries (which need only REST) running until the gateway is back or we are told to stop.
    """
    backoff = ExponentialBackoff()
    while not bot.is_closed():
        try:
            await bot.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:  # pragma: no cover - we request no privileged intent
            log.error("a privileged intent is required but not enabled in the Developer Portal")
            raise SystemExit(2) from None
        except (OSError, discord.GatewayNotFound, discord.ConnectionClosed, AttributeError) as exc:
            if bot.is_closed():
                break
            delay = backoff.delay()
            log.warning("cannot reach Discord's gateway (%s); retrying in %.0f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)


async def sync_commands(settings: Settings, token: str, guild_id: int | None) -> int:
    """Sync the slash-command tree on purpose (never on every start: that burns Discord's rate limit)."""
    apply_discord_endpoints(settings)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    storage = await Storage.open(settings.database.path, secret)
    try:
        async with aiohttp.ClientSession() as session:
            bot = create_bot(settings, storage, session, with_pipeline=False)
            async with bot:
                await bot.login(token)
                if guild_id is not None:
                    guild = discord.Object(id=guild_id)
                    bot.tree.copy_global_to(guild=guild)
                    synced = await bot.tree.sync(guild=guild)
                    sys.stdout.write(f"synced {len(synced)} commands to guild {guild_id}\n")
                else:
                    synced = await bot.tree.sync()
                    sys.stdout.write(
                        f"synced {len(synced)} global commands (Discord may take up to an hour to show them)\n"
                    )
    finally:
        await storage.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = getattr(args, "command", None) or "run"
    if command == "generate-secret-key":
        return asyncio.run(run_cli(args, None))
    try:
        settings = load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        return _fail(str(exc))
    setup_logging(settings.logging)
    if command in {"run", "sync-commands"}:
        try:
            token = require_token(settings)
        except ConfigError as exc:
            return _fail(str(exc))
        if command == "sync-commands":
            guild_id = getattr(args, "guild", None)
            if getattr(args, "dev", False):
                if settings.discord.dev_guild_id is None:
                    return _fail("--dev needs [discord] dev_guild_id in config.toml")
                guild_id = settings.discord.dev_guild_id
            return asyncio.run(sync_commands(settings, token, guild_id))
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_bot(settings, token))
        return 0
    return asyncio.run(run_cli(args, settings))


if __name__ == "__main__":
    sys.exit(main())
