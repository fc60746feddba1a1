"""The Discord side of the process: the bot class, extension discovery, and the invite URL.

Resources (settings, database, HTTP session, CAD client, push pipeline) are created by the process owner
(``bot.__main__``) and injected, so tests build the very same bot with loopback fakes.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import discord
from discord.ext import commands

from bot.cad.board import CadBoard
from bot.cad.client import CadClient
from bot.cad.errors import CadError
from bot.cad.interface import CadApi
from bot.cad.models import CadCredentials
from bot.cad.v2 import CadV2Client
from bot.config import Settings
from bot.push.discord_sender import DiscordPySender
from bot.push.hub_client import HubAuthenticated
from bot.push.hub_sessions import HubSessions
from bot.push.pipeline import PushPipeline
from bot.services.catch_up import refresh_open_cards
from bot.storage import Storage
from bot.timing import IdleWait
from bot.tree import CadCommandTree

log = logging.getLogger(__name__)


# Exactly what the bot does in a channel: see it, post alerts, put them in embeds, keep editing its own live
# call cards (needs history to fetch them), and ping the configured role even when that role is not mentionable.
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    read_message_history=True,
    mention_everyone=True,
)


class Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Services:
    """What cogs and background work need, owned by the process and injected into the bot.

    ``board`` is the one cache of the CAD's rate-limited reads (units on duty, open calls) that every cog
    shares; it always reads through the current ``cad``, so replacing ``cad`` (tests) needs nothing else.
    Assign a new :class:`CadBoard` to change its TTLs or clock.
    """

    settings: Settings
    storage: Storage
    cad: CadApi
    pipeline: PushPipeline | None = None
    background: list[Startable] = field(default_factory=list)
    board: CadBoard = field(init=False)

    def __post_init__(self) -> None:
        self.board = CadBoard(lambda: self.cad)


@dataclass
class _BoardCloser:
    """Closes whichever board ``services`` holds when the bot stops, so no CAD read outlives the bot."""

    services: Services

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.services.board.close()


EXTENSIONS_PACKAGE = "cogs"


def discover_extensions(package_name: str = EXTENSIONS_PACKAGE) -> Iterator[str]:
    """Every public module of the extensions package that defines ``setup`` (``_private`` modules are helpers).

    Extensions are found and loaded by name, as discord.py's ``load_extension`` does: the cogs depend on the
    bot, never the other way round.
    """
    package = importlib.import_module(package_name)
    for module in pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."):
        if module.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        imported = importlib.import_module(module.name)
        if callable(getattr(imported, "setup", None)):
            yield module.name


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(
        application_id,
        permissions=REQUIRED_PERMISSIONS,
        scopes=("bot", "applications.commands"),
    )


class CadBot(commands.Bot):
    def __init__(
        self,
        services: Services,
        *,
        extensions: Sequence[str] | None = None,
        idle_wait: IdleWait | None = None,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            tree_cls=CadCommandTree,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self.services = services
        self.idle_wait = idle_wait
        self._extensions_to_load = list(extensions) if extensions is not None else None
        self._started: list[Startable] = []
        self._services_started = False

    async def start_services(self, *, deliver: bool = True) -> None:
        """Start the push pipeline and the background services, once.

        The process calls it with ``deliver=False`` *before* logging in to Discord: the listener then
        acknowledges and stores the CAD's events (and they are processed into the outbox) however long Discord
        stays unreachable, and :meth:`setup_hook`, which runs once logged in, lets delivery go. Called only from
        :meth:`setup_hook` (tests), everything starts at once.
        """
        pipeline = self.services.pipeline
        if self._services_started:
            if deliver and pipeline is not None:
                await pipeline.start_delivery()
            return
        self._services_started = True
        if pipeline is not None:
            await pipeline.start(deliver=deliver)
            self._started.append(pipeline)
        for service in self.services.background:
            await service.start()
            self._started.append(service)

    async def setup_hook(self) -> None:
        names = self._extensions_to_load
        if names is None:
            names = list(discover_extensions())
        for name in names:
            await self.load_extension(name)
        log.info("loaded %d extensions: %s", len(names), ", ".join(names))
        await self.start_services(deliver=True)
        if self.application_id is not None:
            log.info("invite the bot with: %s", invite_url(self.application_id))

    async def close(self) -> None:
        # Reverse order of start-up; discord.py's own teardown always runs last.
        try:
            while self._started:
                service = self._started.pop()
                try:
                    await service.stop()
                except Exception:
                    log.exception("error while stopping %s", type(service).__name__)
        finally:
            await super().close()


def build_cad_client(settings: Settings, session: aiohttp.ClientSession) -> CadApi:
    """The process's one CAD client, speaking the API ``[cad] api_version`` names, on the shared session."""
    if settings.cad.api_version == 2:
        # v2 paces by the CAD's own per-key budgets (shared by every guild on a key), not by our rate.
        return CadV2Client(session, base_url=settings.cad.api_base, timeout_s=settings.cad.timeout_s)
    return CadClient(
        session,
        base_url=settings.cad.api_base,
        timeout_s=settings.cad.timeout_s,
        rate_per_s=settings.cad.requests_per_second,
        burst=settings.cad.burst,
    )


class _BotHttp:
    """discord.py's REST client as the bot has it *now* (tests and reconnects may swap ``bot.http``)."""

    def __init__(self, bot: CadBot) -> None:
        self._bot = bot

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self._bot.http.request(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # The rest (the rate-limit bookkeeping the sender reads) from the same current client.
        return getattr(self._bot.http, name)


def build_pipeline(
    settings: Settings, storage: Storage, bot: CadBot, *, idle_wait: IdleWait | None = None
) -> PushPipeline:
    """The bot's push pipeline: delivery through the bot's own REST client, the listener only when ``[server]
    enabled`` (slash commands publish their own alerts and card updates through the pipeline either way)."""

    def bot_idle_wait(awaitable: Awaitable[Any]) -> Awaitable[Any]:
        # Read at wait time, so a harness can declare idle waits after the bot object exists.
        hook = idle_wait or bot.idle_wait
        return hook(awaitable) if hook is not None else awaitable

    pipeline = PushPipeline(
        storage,
        DiscordPySender(_BotHttp(bot)),  # type: ignore[arg-type]
        idle_wait=bot_idle_wait,
        discord_connected=bot.is_ready,
    )
    if settings.server.enabled:
        pipeline.attach_server(pipeline.create_server(settings.server, discord_connected=bot.is_ready))
    return pipeline


def create_bot(
    settings: Settings,
    storage: Storage,
    session: aiohttp.ClientSession,
    *,
    with_pipeline: bool = True,
    idle_wait: IdleWait | None = None,
    cad: CadApi | None = None,
) -> CadBot:
    """The one factory for the real bot: production (``python -m bot run``) and tests both use it.

    The push pipeline is built whether or not the HTTP listener is on (``[server] enabled``): websocket
    guilds receive their events through it, and /panic and the dispatch commands post through it.
    ``with_pipeline=False`` is for a process that only talks to Discord's API (``sync-commands``)."""
    services = Services(settings=settings, storage=storage, cad=cad or build_cad_client(settings, session))
    services.background.append(_BoardCloser(services))
    bot = CadBot(services, idle_wait=idle_wait)
    if with_pipeline:
        pipeline = services.pipeline = build_pipeline(settings, storage, bot, idle_wait=idle_wait)
        pipeline.attach_hub(build_hub_sessions(settings, services, pipeline, session, bot))
    return bot


def build_hub_sessions(
    settings: Settings,
    services: Services,
    pipeline: PushPipeline,
    session: aiohttp.ClientSession,
    bot: CadBot,
) -> HubSessions:
    """The websocket sessions of the guilds whose push transport is ``websocket``; after a gap their open
    cards are refreshed from the CAD through the shared board."""

    async def catch_up(creds: CadCredentials, guild_ids: tuple[int, ...], _: HubAuthenticated) -> None:
        try:
            await refresh_open_cards(services.board, pipeline, creds, guild_ids)
        except CadError as exc:
            log.info("no catch-up for community %s: %s", creds.community_id, type(exc).__name__)

    def idle_wait(awaitable: Awaitable[Any]) -> Awaitable[Any]:
        hook = bot.idle_wait
        return hook(awaitable) if hook is not None else awaitable

    return HubSessions(
        services.storage,
        pipeline.ingest,
        session,
        settings.cad.hub_url,
        metrics=pipeline.metrics,
        on_catch_up=catch_up,
        idle_wait=idle_wait,
    )


def apply_discord_endpoints(settings: Settings) -> None:
    """Point discord.py at the configured REST base and gateway (REST proxies, tests)."""
    import yarl
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    Route.BASE = settings.discord.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord.gateway_url + "/")
