"""The one place interaction errors become member-facing messages.

Known errors (CAD errors, plan refusals, permission denials, cooldowns, bad input) become one short ephemeral
sentence. Anything unexpected is logged with a traceback and an error id the member can quote to an admin.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import discord
from discord import app_commands

from bot.cad.errors import CadError
from bot.errors import UserFacingError, cooldown_message

log = logging.getLogger(__name__)


class UserCheckFailure(app_commands.CheckFailure):
    """A check failure that carries a member-facing message (checks must raise CheckFailure subclasses)."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


def _unwrap(error: BaseException) -> BaseException:
    seen = 0
    while seen < 5:
        seen += 1
        if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
            inner = error.__cause__ or getattr(error, "original", None)
            if inner is None:
                break
            error = inner
            continue
        break
    return error


def user_message_for(error: BaseException) -> str | None:
    """The short sentence for a known error, or None when the error is unexpected."""
    error = _unwrap(error)
    if isinstance(error, UserCheckFailure | UserFacingError | CadError):
        return error.user_message
    if isinstance(error, app_commands.CommandOnCooldown):
        return cooldown_message(error.retry_after)
    if isinstance(error, app_commands.MissingPermissions):
        return "You need the Manage Server permission to use this command."
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return f"I'm missing permissions here: {missing}. Ask an admin to grant them."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works inside a server."
    if isinstance(error, app_commands.TransformerError):
        return f"'{error.value}' isn't a valid value for that option."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return None


async def send_ephemeral(interaction: discord.Interaction[Any], content: str) -> None:
    """Answer whether or not the interaction was already acknowledged; never raise."""
    allowed = discord.AllowedMentions.none()
    try:
        if interaction.response.is_done():
            await interaction.followup.send(content, ephemeral=True, allowed_mentions=allowed)
        else:
            await interaction.response.send_message(content, ephemeral=True, allowed_mentions=allowed)
    except discord.HTTPException:
        log.warning("could not deliver an error message for interaction %s", interaction.id)


def _where(interaction: discord.Interaction[Any]) -> str:
    """Name what failed without logging what the member typed (a modal may hold an account secret)."""
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data: Any = interaction.data or {}
    custom_id = data.get("custom_id") if isinstance(data, dict) else None
    return f"component {custom_id!r}" if custom_id else f"interaction type {interaction.type.name}"


async def report_interaction_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    message = user_message_for(error)
    if message is None:
        error_id = secrets.token_hex(4)
        original = _unwrap(error)
        log.error(
            "unexpected error %s in %s (guild %s, user %s)",
            error_id,
            _where(interaction),
            interaction.guild_id,
            interaction.user.id,
            exc_info=(type(original), original, original.__traceback__),
        )
        message = (
            f"Something went wrong on our side (error id `{error_id}`). "
            "Try again; if it keeps happening, give that id to a server admin."
        )
    await send_ephemeral(interaction, message)


class CadCommandTree(app_commands.CommandTree[Any]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await report_interaction_error(interaction, error)
