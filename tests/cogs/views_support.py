"""Helpers for the lookup, blip and dispatch-board cog tests (shared so the three files read the same)."""

from __future__ import annotations

from typing import Any

from bot.tree import user_message_for
from tests.harness import World


def answer(result: Any) -> Any:
    """The message the member saw for a slash command (the deferred reply, once edited, or the reply)."""
    assert result.response is not None, "the interaction was never answered"
    return result.response


def refusal(world: World, result: Any) -> str:
    """The one-sentence refusal the member saw; also proves it came from a known error, not a crash."""
    errors = world.env.errors  # reading them acknowledges them, so SimCord does not fail the test at teardown
    assert errors, "expected the command to be refused"
    assert user_message_for(errors[-1]) is not None, f"unexpected error: {errors[-1]!r}"
    message = answer(result)
    assert message.ephemeral
    return str(message.content)


def cad_types(world: World) -> list[str]:
    """Request types the simulated CAD received, in order."""
    return [request.type for request in world.sim.requests]


def callback_types(world: World, since: int) -> list[int]:
    """Interaction callback types the bot sent after HTTP request ``since`` (5 = deferred, 4 = message)."""
    return [
        entry.json["type"]
        for entry in world.env.http_requests[since:]
        if entry.path.endswith("/callback") and isinstance(entry.json, dict)
    ]


def shared(result: Any) -> Any:
    """The channel message a ``public=True`` command posted (its private reply only says where it went)."""
    note = answer(result)
    assert note.ephemeral and note.content == "Posted in the channel."
    [posted] = result.followups
    assert not posted.ephemeral
    return posted
