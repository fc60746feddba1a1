"""Helpers shared by the member-command tests (/911, /311, /panic, /unit, /link)."""

from __future__ import annotations

from typing import Any

from bot.tree import user_message_for
from tests.harness import World


def answer_types(world: World, since: int) -> list[int]:
    """Interaction callback types the bot sent after request ``since`` (5 deferred, 4 message, 9 modal)."""
    return [
        entry.json["type"]
        for entry in world.env.http_requests[since:]
        if entry.path.endswith("/callback") and isinstance(entry.json, dict)
    ]


def channel_posts(world: World, since: int) -> list[Any]:
    """Messages the bot posted to channels (not interaction replies) after request ``since``."""
    return [
        entry
        for entry in world.env.http_requests[since:]
        if entry.method == "POST" and entry.path.startswith("/channels/")
    ]


def reply_mentions(world: World, since: int) -> list[Any]:
    """``allowed_mentions`` of every interaction reply the bot sent after request ``since``."""
    return [
        entry.json.get("allowed_mentions")
        for entry in world.env.http_requests[since:]
        if entry.path.startswith("/webhooks/") and isinstance(entry.json, dict)
    ]


def reply(result: Any) -> str:
    """The ephemeral answer the member saw."""
    assert result.response is not None, "the interaction was never answered"
    assert result.ephemeral
    return str(result.response.content)


def refusal(world: World, result: Any) -> str:
    """The refusal the member saw; also checks it came from a known error, not a crash."""
    errors = world.env.errors  # reading acknowledges them, so SimCord won't fail the test at teardown
    assert errors, "expected the command to be refused"
    assert user_message_for(errors[-1]) is not None, f"unexpected error: {errors[-1]!r}"
    return reply(result)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
