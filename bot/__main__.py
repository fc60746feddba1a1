"""``python -m bot``: run the bot, or one of the admin verbs (see ``--help``).

Settings are built before the event loop starts; the process owns the database, the one HTTP session and the
bot, and tears them down in reverse order on SIGINT/SIGTERM.

Start-up order matters when Discord is down: the database and the push listener come first, then the Discord
login is retried with back-off (one log line per try) while the CAD's events are acknowledged and stored; once
logged in, what was stored is delivered. Problems only the operator can fix (a bad token, a database or port
that can't be used) end the process with one line and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import signal
import sys
from collections.abc import Awaitable, Sequence

import aiohttp
import discord
from discord.backoff import ExponentialBackoff
from discord.utils import MISSING

from bot.app import CadBot, apply_discord_endpoints, create_bot
from bot.cli import build_parser, run_cli
from bot.config import ConfigError, Settings, load_settings, require_token
from bot.logs import setup_logging
from bot.storage import DatabaseError, Storage

log = logging.getLogger("bot")

# Login retries: 1 s, 2 s, 4 s, ... up to a minute between tries, each with some jitter.
LOGIN_RETRY_BASE_S = 1.0
LOGIN_RETRY_MAX_S = 60.0
# discord.py's requests have no timeout of their own (aiohttp's default is 5 min): one try gets this long.
LOGIN_ATTEMPT_TIMEOUT_S = 30.0
# Discord unreachable or failing: worth another try. (A rejected token is LoginFailure, handled apart.)
LOGIN_RETRY_ERRORS = (OSError, aiohttp.ClientError, TimeoutError, discord.HTTPException)
LOGIN_REJECTED = (
    "Discord rejected DISCORD_TOKEN: open the Discord Developer Portal, pick your application, Bot -> Reset "
    "Token, put the new token in .env and start the bot again"
)


class StartupError(Exception):
    """Start-up cannot go on and only the operator can fix it; the message says how."""


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2


async def run_bot(settings: Settings, token: str) -> None:
    apply_discord_endpoints(settings)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:
        storage = await Storage.open(settings.database.path, secret)
    except DatabaseError as exc:
        raise StartupError(str(exc)) from None
    try:
        async with aiohttp.ClientSession() as session:
            bot = create_bot(settings, storage, session)
            loop = asyncio.get_running_loop()
            stop_requested = asyncio.Event()
            stopping: set[asyncio.Task[None]] = set()

            def request_stop(signame: str) -> None:
                log.info("received %s, shutting down", signame)
                stop_requested.set()
                task = loop.create_task(bot.close())
                stopping.add(task)
                task.add_done_callback(stopping.discard)

            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):  # signal handlers are POSIX-only
                    loop.add_signal_handler(sig, request_stop, sig.name)
            async with bot:
                try:
                    # Storage and the push listener first: the CAD's events are taken in while Discord is away.
                    await bot.start_services(deliver=False)
                except OSError as exc:
                    raise StartupError(
                        f"the push listener cannot listen on {settings.server.host}:{settings.server.port} "
                        f"({exc.strerror or type(exc).__name__}); stop what uses that port or change [server] port"
                    ) from None
                freeze_startup_objects()
                if await log_in(bot, token, stop_requested):
                    await stay_connected(bot)
            if stopping:
                await asyncio.wait(stopping)
    finally:
        await storage.close()


def freeze_startup_objects() -> None:
    """Hide what start-up made from the cyclic garbage collector (``gc.freeze``): some 80,000 objects (modules,
    classes, pydantic's and discord.py's tables) that live as long as the process.

    A full collection walks every object it tracks while the event loop waits: 30-50 ms on a small machine,
    about every ten seconds under a steady 1,000 push events/s, which alone puts the listener's p99
    acknowledgement over 10 ms. Frozen objects are skipped (reference counting still frees them), so a full
    collection looks only at what was made since: a few milliseconds.
    """
    gc.collect()  # garbage start-up left behind is freed first, not frozen
    gc.freeze()


async def log_in(bot: CadBot, token: str, stop_requested: asyncio.Event) -> bool:
    """Log in to Discord (which runs ``setup_hook`` and so lets deliveries go), retrying with back-off while
    Discord can't be reached or fails; one log line per failed try. False when a stop was requested first.

    An invalid token can't get better by waiting: one line saying how to reset it, and exit code 2.
    """
    attempt = 0
    while not stop_requested.is_set():
        attempt += 1
        try:
            async with asyncio.timeout(LOGIN_ATTEMPT_TIMEOUT_S):
                logged_in = await _unless_stopped(bot.login(token), stop_requested)
        except discord.LoginFailure:
            log.error(LOGIN_REJECTED)
            raise SystemExit(2) from None
        except LOGIN_RETRY_ERRORS as exc:
            if stop_requested.is_set():
                return False
            await _forget_failed_login(bot)
            delay = min(LOGIN_RETRY_MAX_S, LOGIN_RETRY_BASE_S * 2 ** min(attempt - 1, 10))
            delay *= random.uniform(0.8, 1.2)
            log.warning(
                "cannot log in to Discord (try %d: %s); retrying in %.0f s. Push events are still accepted "
                "and stored, and go out once Discord answers",
                attempt,
                _describe(exc),
                delay,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop_requested.wait()
            continue
        if not logged_in:
            return False
        if attempt > 1:
            log.info("logged in to Discord after %d tries; delivering what was stored meanwhile", attempt)
        return True
    return False


async def _unless_stopped(work: Awaitable[None], stop_requested: asyncio.Event) -> bool:
    """Run ``work``: True once it is done (what it raised is raised), False if a stop was requested first (it is
    cancelled then, so a login hanging on an unreachable Discord never holds the shutdown up)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop_requested.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        return False
    task.result()
    return True


async def _forget_failed_login(bot: discord.Client) -> None:
    """discord.py opens a new HTTP session (on the client's connector, which it owns) for every login try:
    close the failed one so nothing leaks, and let the next try make a fresh connector."""
    with contextlib.suppress(Exception):
        await bot.http.close()
    bot.http.connector = MISSING


def _describe(exc: BaseException) -> str:
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status}"
    reason = getattr(exc, "strerror", None) or ""
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


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
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(run_bot(settings, token))
        except StartupError as exc:
            return _fail(str(exc))
        return 0
    return asyncio.run(run_cli(args, settings))


if __name__ == "__main__":
    sys.exit(main())
