"""/link, /unlink, /whoami: tie a Discord member to their own Sonoran CAD account, with proof.

Two proofs are accepted, and nothing else: the member's Account Secret ID (``VERIFY_SECRET`` resolves it to
the account), or their Discord user ID written as an API ID on their CAD account (``CHECK_APIID``). Only the
resulting account UUID (and username) is stored; the secret lives in memory for the one request that checks it
and is never stored, logged, echoed or put in an exception.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.cad.client import CadClient
from bot.cad.errors import NOT_LINKED_HOW_TO, CadError, CadNotLinkedError
from bot.cad.interface import CadApi
from bot.cad.models import CadCredentials, MemberTarget
from bot.errors import NotLinkedError, UserFacingError
from bot.formatting import member_actions
from bot.services.members import api_id_account_key, is_uuid, known_account_uuid
from bot.storage.models import UserLink
from bot.tree import report_interaction_error, send_ephemeral, user_message_for
from cogs._shared import NO_MENTIONS, guild_credentials, guild_id_of, services

log = logging.getLogger(__name__)

METHOD_SECRET = "secret"  # noqa: S105 (the name of a /link choice, not a credential)
METHOD_API_ID = "api-id"
# A member may fetch the secret from another device; the modal should outlive that trip.
MODAL_TIMEOUT_S = 900.0


async def _username_of(cad: CadApi, creds: CadCredentials, account_uuid: str) -> str | None:
    """The account's CAD username, or None when the plan (Plus) or the CAD won't say: the link is already
    proven, so a missing name must not undo it."""
    try:
        await cad.ensure_allowed(creds, "GET_ACCOUNT")
        account = await cad.get_account(creds, target=MemberTarget.account(account_uuid))
    except CadError as exc:
        log.info("linked without a username (community %s): %s", creds.community_id, type(exc).__name__)
        return None
    return account.username.strip() or None


class AccountSecretModal(discord.ui.Modal, title="Link your Sonoran CAD account"):
    secret: discord.ui.TextInput[AccountSecretModal] = discord.ui.TextInput(
        label="Account Secret ID",
        custom_id="account_secret",
        placeholder="xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (CAD > account settings)",
        min_length=32,
        max_length=64,
    )

    def __init__(self, cog: Account) -> None:
        super().__init__(timeout=MODAL_TIMEOUT_S)
        self.cog = cog

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self.cog.link_with_secret(interaction, self.secret.value)

    # discord.py's Modal narrows BaseView.on_error (no Item argument); its own stub ignores the same override.
    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        # Modal errors bypass the tree handler. The generic handler logs ``interaction.data`` when there is no
        # command, and a modal submit's data holds the secret, so unexpected errors are logged here without it.
        if user_message_for(error) is not None:
            await report_interaction_error(interaction, error)
            return
        error_id = secrets.token_hex(4)
        log.error(
            "unexpected error %s in /link (guild %s, user %s)",
            error_id,
            interaction.guild_id,
            interaction.user.id,
            exc_info=(type(error), error, error.__traceback__),
        )
        await send_ephemeral(
            interaction,
            f"Something went wrong on our side (error id `{error_id}`). "
            "Try again; if it keeps happening, give that id to a server admin.",
        )


class Account(commands.Cog):
    """Linking members to their CAD accounts."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(
        name="link",
        description="Link your CAD account by its Account Secret ID (not needed if it links your Discord).",
    )
    @app_commands.describe(
        method="secret: paste your Account Secret ID (default). api-id: your Discord ID is an API ID in the CAD."
    )
    @app_commands.choices(
        method=[
            Choice(name=METHOD_SECRET, value=METHOD_SECRET),
            Choice(name=METHOD_API_ID, value=METHOD_API_ID),
        ]
    )
    @app_commands.guild_only()
    async def link(self, interaction: discord.Interaction[Any], method: str = METHOD_SECRET) -> None:
        creds = await guild_credentials(interaction)
        if method == METHOD_API_ID:
            await self.link_with_api_id(interaction, creds)
            return
        # Only the cached plan may be consulted: the modal has to be the first answer, within 3 s.
        refusal = services(interaction).cad.explain_refusal(creds, "VERIFY_SECRET")
        if refusal is not None:
            raise refusal
        await interaction.response.send_modal(AccountSecretModal(self))

    async def link_with_secret(self, interaction: discord.Interaction[Any], secret: str) -> None:
        secret = secret.strip()
        if not is_uuid(secret):
            raise UserFacingError(member_actions.secret_format_refusal())
        await interaction.response.defer(ephemeral=True, thinking=True)
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        await cad.ensure_allowed(creds, "VERIFY_SECRET")
        account_uuid = (await cad.verify_secret(creds, secret)).strip()
        if not is_uuid(account_uuid):
            raise UserFacingError("The CAD answered without an account; try /link again in a moment.")
        username = await _username_of(cad, creds, account_uuid)
        await services(interaction).storage.links.link(
            guild_id_of(interaction), interaction.user.id, account_uuid, username=username
        )
        services(interaction).board.forget_account(creds.community_id, str(interaction.user.id))
        log.info("member linked a CAD account by secret in guild %s", interaction.guild_id)
        await interaction.followup.send(
            member_actions.link_confirmation(username), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def link_with_api_id(self, interaction: discord.Interaction[Any], creds: CadCredentials) -> None:
        cad = services(interaction).cad
        if not isinstance(cad, CadClient):
            # v2 has no API-ID proof; its `discord` target does that job without any /link.
            raise UserFacingError(member_actions.API_ID_NOT_NEEDED)
        await interaction.response.defer(ephemeral=True, thinking=True)
        api_id = str(interaction.user.id)
        await cad.ensure_allowed(creds, "CHECK_APIID")
        try:
            username: str | None = await cad.check_apiid(creds, api_id)
        except CadNotLinkedError:
            raise UserFacingError(member_actions.api_id_not_set(interaction.user.id)) from None
        account_key = api_id_account_key(api_id)
        try:
            await cad.ensure_allowed(creds, "GET_ACCOUNT")
            account = await cad.get_account(creds, target=MemberTarget.api(api_id))
        except CadError as exc:
            # CHECK_APIID already proved ownership; without the UUID, unit requests target the API ID.
            log.info(
                "api-id link without an account UUID (community %s): %s",
                creds.community_id,
                type(exc).__name__,
            )
        else:
            if is_uuid(account.uuid):
                account_key = account.uuid
            username = account.username.strip() or username
        await services(interaction).storage.links.link(
            guild_id_of(interaction), interaction.user.id, account_key, username=username, api_id=api_id
        )
        log.info("member linked a CAD account by API ID in guild %s", interaction.guild_id)
        await interaction.followup.send(
            member_actions.link_confirmation(username), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="unlink", description="Forget which CAD account is yours in this server.")
    @app_commands.guild_only()
    async def unlink(self, interaction: discord.Interaction[Any]) -> None:
        links = services(interaction).storage.links
        guild_id = guild_id_of(interaction)
        existing = await links.get(guild_id, interaction.user.id)
        removed = await links.unlink(guild_id, interaction.user.id)
        await interaction.response.send_message(
            member_actions.unlink_confirmation(existing.username if existing else None, was_linked=removed),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="whoami", description="Show which CAD account you're linked to.")
    @app_commands.guild_only()
    async def whoami(self, interaction: discord.Interaction[Any]) -> None:
        svc = services(interaction)
        link = await svc.storage.links.get(guild_id_of(interaction), interaction.user.id)
        if svc.cad.api_version >= 2:
            await self._whoami_by_discord(interaction, link)
            return
        if link is None:
            raise NotLinkedError()
        await interaction.response.send_message(
            _link_text(link), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def _whoami_by_discord(self, interaction: discord.Interaction[Any], link: UserLink | None) -> None:
        """v2: the account the CAD links to this Discord user first, then the stored link."""
        creds = await guild_credentials(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            account = await services(interaction).board.discord_account(creds, str(interaction.user.id))
        except CadError:
            if link is None:
                raise
            account = None  # the CAD can't say now; the stored link still answers
        if account is not None:
            text = member_actions.whoami_by_discord(
                username=account.username.strip() or None,
                account_uuid=account.uuid.strip() or None,
                link_too=link is not None,
            )
        elif link is not None:
            text = _link_text(link)
        else:
            raise CadNotLinkedError("no CAD account for this Discord user", user_message=NOT_LINKED_HOW_TO)
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def _link_text(link: UserLink) -> str:
    return member_actions.whoami(
        username=link.username,
        account_uuid=known_account_uuid(link),
        api_id=link.api_id,
        linked_at=link.linked_at,
    )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Account(bot))
