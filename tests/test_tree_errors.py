"""The tree error handler: known errors become one sentence; unexpected ones get an id and never log input."""

from __future__ import annotations

import logging
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest
from discord import app_commands

from bot.cad.errors import CadCredentialsError
from bot.errors import CooldownError, NotLinkedError
from bot.tree import UserCheckFailure, report_interaction_error, user_message_for

SECRET = "9c1d2e3f-0000-4a4a-8b8b-SECRETVALUE"


def modal_interaction() -> Any:
    interaction = MagicMock(spec=discord.Interaction)
    interaction.command = None
    interaction.type = discord.InteractionType.modal_submit
    interaction.data = {
        "custom_id": "link:secret",
        "components": [{"components": [{"custom_id": "secret", "value": SECRET}]}],
    }
    interaction.id = 1
    interaction.guild_id = 2
    interaction.user = MagicMock(spec=discord.Member, id=3)
    interaction.response = MagicMock(spec=discord.InteractionResponse)
    interaction.response.is_done.return_value = False
    interaction.response.send_message = AsyncMock()
    interaction.followup = MagicMock(spec=discord.Webhook)
    interaction.followup.send = AsyncMock()
    return interaction


async def test_unexpected_error_in_a_modal_logs_an_id_but_not_what_was_typed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interaction = modal_interaction()
    with caplog.at_level(logging.DEBUG):
        await report_interaction_error(interaction, RuntimeError("boom"))
    assert SECRET not in caplog.text
    assert "link:secret" in caplog.text
    [call] = interaction.response.send_message.await_args_list
    message = call.args[0]
    assert "error id" in message and SECRET not in message
    assert call.kwargs["ephemeral"] is True


async def test_after_defer_the_answer_is_a_followup() -> None:
    interaction = modal_interaction()
    interaction.response.is_done.return_value = True
    await report_interaction_error(interaction, NotLinkedError())
    [call] = interaction.followup.send.await_args_list
    assert "/link" in call.args[0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (UserCheckFailure("You need **@Dispatch**."), "You need **@Dispatch**."),
        (CadCredentialsError("INVALID API KEY"), "/setup"),
        (app_commands.CommandOnCooldown(app_commands.Cooldown(1, 30), 12.4), "12 s"),
        (app_commands.NoPrivateMessage(), "inside a server"),
    ],
)
def test_known_errors_become_one_sentence(error: Exception, expected: str) -> None:
    message = user_message_for(error)
    assert message is not None and expected in message


def test_discord_pys_cooldown_and_the_guilds_own_read_the_same() -> None:
    theirs = user_message_for(app_commands.CommandOnCooldown(app_commands.Cooldown(1, 30), 12.4))

    assert theirs == user_message_for(CooldownError(12.4)) == "Slow down: you can use this again in 12 s."
    assert user_message_for(CooldownError(0.2)) == "Slow down: you can use this again in 1 s."


def test_unexpected_errors_have_no_canned_sentence() -> None:
    assert user_message_for(KeyError("x")) is None
