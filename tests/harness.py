"""End-to-end harness: the real bot (same factory as production) in SimCord, wired to the CAD simulator.

``world`` gives a running bot in a guild that is already connected to a Pro community on the simulator, with an
admin, a plain member, a member who linked a CAD account, and an alerts channel. Tests then act as those members
(`await world.member.slash(world.channel, "911", ...)`) and assert what Discord and the CAD saw.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import simcord
from cryptography.fernet import Fernet

from bot.app import CadBot, create_bot
from bot.cad.client import CadClient, CadResponse
from bot.cad.tiers import Tier
from bot.config import Settings
from bot.storage import Storage
from testing.cad_simulator import CadSimulator, SimAccount, SimCommunity

COMMUNITY_ID = "4711"
# Distinctive, so a leak into any message or log is easy to search for.
API_KEY = "cad-key-LEAKCHECK-0d9e-41c2"


class DeclaredWaitCadClient(CadClient):
    """The real client, with each request declared to SimCord as an external wait once ``env`` is set.

    SimCord holds back wall-clock timers while bot work waits on undeclared I/O, so against a slow or hung CAD
    the client's aiohttp timeout would never fire; declared, it fires on time (and ``env.advance_time`` moves
    past it). Nothing else about the client changes.
    """

    env: simcord.Env | None = None

    async def request(self, *args: Any, **kwargs: Any) -> CadResponse:
        if self.env is None:
            return await super().request(*args, **kwargs)
        return await self.env.external_wait(super().request(*args, **kwargs), reason="CAD request")


@dataclass
class World:
    env: simcord.Env
    bot: CadBot
    storage: Storage
    sim: CadSimulator
    community: SimCommunity
    guild: Any
    channel: Any
    alerts: Any
    admin: Any
    member: Any
    officer: Any
    officer_account: SimAccount
    settings: Settings
    extra: dict[str, Any] = field(default_factory=dict)

    async def install_impatient_cad(self, timeout_s: float = 0.3, *, warm_tier: bool = True) -> CadClient:
        """Swap the bot's CAD client for one that gives up after ``timeout_s`` and whose requests SimCord
        knows to be external waits; set ``world.sim.latency_s`` above ``timeout_s`` afterwards.

        ``warm_tier`` reads the guild's plan first (before any latency), so only the command's own request
        meets the slow CAD; pass False when the plan read itself is what should time out. No retries: a
        retry's back-off sleep would be a virtual timer inside the declared wait. The rate is high so the
        client's own limiter never paces a test. The shared board follows the new client by itself.
        """
        client = DeclaredWaitCadClient(
            self.extra["session"],
            base_url=self.sim.base_url,
            timeout_s=timeout_s,
            rate_per_s=200,
            burst=200,
            max_retries=0,
        )
        if warm_tier:
            creds = await self.storage.guilds.get_credentials(self.guild.id)
            assert creds is not None, "warm_tier needs the guild connected to the CAD"
            await client.get_tier(creds)  # outside bot work, so not declared (and the CAD is still quick)
        client.env = self.env
        self.bot.services.cad = client
        return client

    async def restart(self) -> None:
        """Stop this bot and start a new one (same database, same virtual Discord): what a redeploy does."""
        session = self.extra["session"]
        new_bot = create_bot(self.settings, self.storage, session, with_pipeline=True)
        declare_idle_waits(new_bot, self.env)
        await self.env.restart_bot(new_bot)
        self.bot = new_bot


def test_settings(sim_url: str, db_path: Path, **cad: Any) -> Settings:
    """Settings against the simulator. The suite written for the v1 client pins ``api_version = 1``; the v2
    tests (``tests/cogs/test_v2_*.py``) pass ``api_version=2``."""
    # The websocket hub: a closed loopback port unless a test brings its fake hub, so no test reaches Sonoran.
    cad = {"api_version": 1, "hub_url": "http://127.0.0.1:9/apiWsHub", **cad}
    return Settings(
        cad={"api_base": sim_url, "timeout_s": 2.0, "requests_per_second": 200.0, "burst": 200, **cad},
        server={"enabled": False, "port": 0, "host": "127.0.0.1"},
        database={"path": db_path},
    )


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
async def cad_world_sim() -> AsyncIterator[CadSimulator]:
    async with CadSimulator() as sim:
        yield sim


@pytest.fixture
async def bot_storage(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = await Storage.open(tmp_path / "bot.sqlite3", Fernet.generate_key().decode())
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def bot_settings(cad_world_sim: CadSimulator, bot_storage: Storage, tmp_path: Path) -> Settings:
    return test_settings(cad_world_sim.base_url, tmp_path / "bot.sqlite3")


@pytest.fixture
def simcord_bot(bot_settings: Settings, bot_storage: Storage, http_session: aiohttp.ClientSession) -> CadBot:
    """The real bot, built by the production factory (SimCord's plugin starts it as ``simcord_env``)."""
    return create_bot(bot_settings, bot_storage, http_session, with_pipeline=True)


def declare_idle_waits(bot: CadBot, env: simcord.Env) -> None:
    """Background loops idle on purpose; tell SimCord so settling does not wait for them. A command waiting
    for a CAD read the shared board runs in a task of its own is waiting on outside input too, so its own
    time budget stays on SimCord's clock (``env.advance_time``) as if it made the request itself."""

    def idle_wait(awaitable: Any) -> Any:
        return env.external_wait(awaitable, reason="push pipeline idle")

    def shared_read(awaitable: Any) -> Any:
        return env.external_wait(awaitable, reason="CAD read shared through the board")

    bot.idle_wait = idle_wait
    bot.services.board.shared_wait = shared_read


@pytest.fixture
async def simcord_env(simcord_bot: CadBot, request: pytest.FixtureRequest) -> AsyncIterator[simcord.Env]:
    """SimCord's own fixture, plus the idle-wait declaration, which must exist before the bot starts."""
    marker = request.node.get_closest_marker("simcord")
    env = simcord.Env(simcord_bot, **(marker.kwargs if marker else {}))
    declare_idle_waits(simcord_bot, env)
    await env.start()
    try:
        yield env
    finally:
        await env.shutdown()
        if env.check_errors:
            env._raise_errors_since(env._errors_acknowledged)


@pytest.fixture
async def world(
    simcord_env: simcord.Env,
    simcord_bot: CadBot,
    cad_world_sim: CadSimulator,
    bot_storage: Storage,
    bot_settings: Settings,
    http_session: aiohttp.ClientSession,
) -> World:
    env, bot, sim, storage = simcord_env, simcord_bot, cad_world_sim, bot_storage
    community = sim.add_community(COMMUNITY_ID, API_KEY, Tier.PRO)
    account = community.add_account(
        "jreyes", uuid="5b0f6c1e-8d2a-4c3b-9f4e-2a7d1c9e0b11", secret="9c1d2e3f-0000-4a4a-8b8b-123456789abc"
    )
    await bot.tree.sync()
    guild = env.create_guild(name="Los Santos RP")
    admin_role = guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    channel = guild.create_text_channel("general")
    alerts = guild.create_text_channel("dispatch-alerts")
    admin = guild.add_member(env.create_user("admin"), roles=[admin_role])
    member = guild.add_member(env.create_user("civilian"))
    officer = guild.add_member(env.create_user("officer"))
    await storage.guilds.set_cad(guild.id, COMMUNITY_ID, API_KEY, 1)
    await storage.links.link(guild.id, officer.id, account.uuid, username="jreyes")
    return World(
        env=env,
        bot=bot,
        storage=storage,
        sim=sim,
        community=community,
        guild=guild,
        channel=channel,
        alerts=alerts,
        admin=admin,
        member=member,
        officer=officer,
        officer_account=account,
        settings=bot_settings,
        extra={"session": http_session},
    )
