"""Helpers for the lookup, blip and dispatch-board cog tests (shared so the three files read the same)."""

from __future__ import annotations

from typing import Any

from bot.cad.client import CadClient, CadResponse
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


def install_impatient_cad(world: World, timeout_s: float = 0.3) -> CadClient:
    """A real CadClient with a short timeout whose requests SimCord knows to be external waits.

    SimCord only moves its clock when all bot work is idle, so a request still waiting on a slow CAD would
    keep the client's timeout from ever firing. Declaring the wait lets ``env.advance_time`` fire it, as the
    wall clock would in production; everything else about the client is unchanged.
    """
    env = world.env

    class DeclaredWaitCadClient(CadClient):
        async def request(self, *args: Any, **kwargs: Any) -> CadResponse:
            return await env.external_wait(super().request(*args, **kwargs), reason="slow CAD")

    client = DeclaredWaitCadClient(
        world.extra["session"], base_url=world.sim.base_url, timeout_s=timeout_s, rate_per_s=200, burst=200
    )
    world.bot.services.cad = client
    return client


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
