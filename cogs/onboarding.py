"""/setup: connect this server to a Sonoran CAD community, after the CAD itself accepted the credentials.

The modal is the first response (it is the only one that cannot be deferred); the submit is deferred at once,
checked for shape, checked against the CAD with GET_VERSION, and only then stored. The API key is never put in a
modal default, a reply or a log line; it leaves this module only inside the CAD request and encrypted storage.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands
from pydantic import SecretStr

from bot.cad.errors import (
    CadCredentialsError,
    CadError,
    CadRateLimitedError,
    CadTimeoutError,
    CadUnavailableError,
)
from bot.cad.models import CadCredentials
from bot.cad.tiers import Tier
from bot.errors import UserFacingError
from bot.formatting.admin import (
    SETUP_REJECTED,
    setup_success_embed,
    setup_unreachable,
)
from bot.storage import MissingSecretKeyError
from bot.storage.models import PushTransport
from bot.tree import report_interaction_error
from cogs._admin import (
    RETRY_SLACK_S,
    admin_only,
    forget_push_keys,
    push_target,
    reconcile_push_sessions,
    require_admin,
)
from cogs._shared import NO_MENTIONS, guild_id_of, services, to_embed

log = logging.getLogger(__name__)

MAX_COMMUNITY_ID_LENGTH = 100
MAX_API_KEY_LENGTH = 200
MAX_SERVER_ID = 2**31 - 1


class SetupInput:
    """The modal's three values, checked for shape before anything is sent to the CAD."""

    def __init__(
        self,
        community_id: str,
        api_key: str,
        server_id: int,
        transport: PushTransport = PushTransport.HTTP,
    ) -> None:
        self.community_id = community_id
        self.api_key = SecretStr(api_key)
        self.server_id = server_id
        self.transport = transport

    def __repr__(self) -> str:
        return f"SetupInput(community_id={self.community_id!r}, api_key=<hidden>, server_id={self.server_id})"

    @classmethod
    def parse(
        cls,
        community_id: str,
        api_key: str,
        server_id: str,
        transport: PushTransport = PushTransport.HTTP,
    ) -> SetupInput:
        community = community_id.strip()
        key = api_key.strip()
        if not community:
            raise UserFacingError(
                "The community ID is empty; copy it from Admin > In-Game Integration > API."
            )
        if len(community) > MAX_COMMUNITY_ID_LENGTH or any(char.isspace() for char in community):
            raise UserFacingError("That community ID doesn't look right: it is one word, with no spaces.")
        if not key:
            raise UserFacingError("The API key is empty; copy it from Admin > In-Game Integration > API.")
        if len(key) > MAX_API_KEY_LENGTH or any(char.isspace() for char in key):
            raise UserFacingError("That API key doesn't look right: it is one word, with no spaces.")
        server_text = server_id.strip() or "1"
        if not server_text.isascii() or not server_text.isdigit() or int(server_text) > MAX_SERVER_ID:
            raise UserFacingError(
                "The server ID must be a whole number such as 1 (the CAD server listed under "
                "Admin > Advanced > In-Game Integration). Nothing was saved."
            )
        return cls(community, key, int(server_text), transport)

    def credentials(self) -> CadCredentials:
        return CadCredentials(community_id=self.community_id, api_key=self.api_key, server_id=self.server_id)


class SetupModal(discord.ui.Modal, title="Connect to Sonoran CAD"):
    community_id: discord.ui.TextInput[SetupModal] = discord.ui.TextInput(
        label="Community ID",
        placeholder="Admin > In-Game Integration > API",
        min_length=1,
        max_length=MAX_COMMUNITY_ID_LENGTH,
        custom_id="setup:community_id",
    )
    api_key: discord.ui.TextInput[SetupModal] = discord.ui.TextInput(
        label="API key",
        placeholder="Shown next to the community ID; stored encrypted",
        min_length=1,
        max_length=MAX_API_KEY_LENGTH,
        custom_id="setup:api_key",
    )
    server_id: discord.ui.TextInput[SetupModal] = discord.ui.TextInput(
        label="CAD server ID",
        placeholder="1",
        default="1",
        required=False,
        max_length=10,
        custom_id="setup:server_id",
    )

    def __init__(
        self, *, community_id: str | None, server_id: int, transport: PushTransport = PushTransport.HTTP
    ) -> None:
        super().__init__(timeout=600)
        self.transport = transport
        # Re-running /setup (e.g. to rotate the key) keeps what is not secret; the key field always starts empty.
        if community_id:
            self.community_id.default = community_id
        self.server_id.default = str(server_id)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        require_admin(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        entered = SetupInput.parse(
            self.community_id.value, self.api_key.value, self.server_id.value, self.transport
        )
        await connect(interaction, entered)

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]  # discord.py types Modal.on_error like View.on_error
        await report_interaction_error(interaction, error)


async def check_credentials(interaction: discord.Interaction[Any], entered: SetupInput) -> Tier:
    """The community's plan, read from the CAD with exactly these credentials (never from a cache)."""
    svc = services(interaction)
    creds = entered.credentials()
    svc.cad.invalidate_tier(creds.community_id)
    timeout_s = svc.settings.cad.timeout_s
    try:
        async with asyncio.timeout(timeout_s + RETRY_SLACK_S):
            return await svc.cad.get_version(creds)
    except CadCredentialsError:
        raise UserFacingError(SETUP_REJECTED) from None
    except (TimeoutError, CadTimeoutError):
        raise UserFacingError(setup_unreachable(f"the CAD didn't answer within {timeout_s:g} s.")) from None
    except CadRateLimitedError:
        raise UserFacingError(setup_unreachable("the CAD asked the bot to slow down.")) from None
    except CadUnavailableError:
        raise UserFacingError(
            setup_unreachable("the CAD could not be reached (status.sonorancad.com shows outages).")
        ) from None


async def check_server_id(interaction: discord.Interaction[Any], entered: SetupInput) -> None:
    """Refuse a CAD server id the community does not have, naming the ones it has. Only a clear answer
    counts: when the CAD can't list its servers now, the id is taken as typed (commands will say if it is
    wrong)."""
    svc = services(interaction)
    try:
        async with asyncio.timeout(svc.settings.cad.timeout_s + RETRY_SLACK_S):
            servers = await svc.cad.get_servers(entered.credentials())
    except (CadError, TimeoutError) as exc:
        log.info("/setup could not list the CAD's servers: %s", type(exc).__name__)
        return
    known = sorted({server.id for server in servers})
    if known and entered.server_id not in known:
        listed = ", ".join(str(server_id) for server_id in known)
        raise UserFacingError(
            f"This CAD community has no server {entered.server_id}; its servers are {listed} (Admin > Advanced > "
            "In-Game Integration). Run /setup again with one of them. Nothing was saved."
        )


async def connect(interaction: discord.Interaction[Any], entered: SetupInput) -> None:
    svc = services(interaction)
    guild_id = guild_id_of(interaction)
    if not svc.storage.vault.has_key:
        raise UserFacingError(str(MissingSecretKeyError()))
    previous = await svc.storage.guilds.get(guild_id)
    tier = await check_credentials(interaction, entered)
    await check_server_id(interaction, entered)
    try:
        await svc.storage.guilds.set_cad(guild_id, entered.community_id, entered.api_key, entered.server_id)
    except MissingSecretKeyError as exc:
        raise UserFacingError(str(exc)) from None
    await svc.storage.guilds.set_push_transport(guild_id, entered.transport)
    if previous is not None and previous.community_id and previous.community_id != entered.community_id:
        svc.cad.invalidate_tier(previous.community_id)
    forget_push_keys(svc)
    reconcile_push_sessions(svc)
    log.info(
        "guild %s connected to CAD community %s (server %s, plan %s)",
        guild_id,
        entered.community_id,
        entered.server_id,
        tier.short_name,
    )
    embed = setup_success_embed(
        entered.community_id,
        entered.server_id,
        tier,
        push_target(svc),
        transport=entered.transport,
        plan_name=svc.cad.cached_plan_label(entered.community_id),
        api_version=svc.cad.api_version,
    )
    await interaction.followup.send(embed=to_embed(embed), ephemeral=True, allowed_mentions=NO_MENTIONS)


class Setup(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="setup", description="Connect this server to Sonoran CAD (admins).")
    @app_commands.describe(push="How CAD push events reach the bot (default: unchanged; a new server: http)")
    @app_commands.choices(
        push=[
            Choice(
                name="websocket: no game server uses this CAD server id (ER:LC, Discord-only); no port",
                value=PushTransport.WEBSOCKET.value,
            ),
            Choice(
                name="http: a FiveM server uses it (the listener, or FiveM's pushEventForwardUrl)",
                value=PushTransport.HTTP.value,
            ),
        ]
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only
    async def setup_command(self, interaction: discord.Interaction[Any], push: str | None = None) -> None:
        svc = services(interaction)
        if not svc.storage.vault.has_key:
            # Say so before the admin types a key that could not be stored anyway.
            raise UserFacingError(str(MissingSecretKeyError()))
        current = await svc.storage.guilds.get(guild_id_of(interaction))
        modal = SetupModal(
            community_id=current.community_id if current else None,
            server_id=current.server_id if current else 1,
            transport=PushTransport(push)
            if push
            else (current.push_transport if current else PushTransport.HTTP),
        )
        await interaction.response.send_modal(modal)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Setup(bot))
