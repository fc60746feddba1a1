"""What the delivery worker needs from Discord, without discord.py: the :class:`DiscordSender` protocol, the
two kinds of request it makes, what a rate-limit bucket allows, and the errors a send ends in.

The real implementation is :class:`bot.push.discord_sender.DiscordPySender`; tests and benchmarks may pass
their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class RequestKind(StrEnum):
    """The two kinds of request delivery makes; Discord limits each in its own per-channel bucket."""

    POST = "post"
    EDIT = "edit"


class DeliveryError(Exception):
    """A send failed; ``reason`` is short, safe to show admins, and never contains a secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableDeliveryError(DeliveryError):
    """Worth trying again later (5xx, timeout, connection trouble, rate limit); ``retry_after`` if Discord said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class RateLimitedError(RetryableDeliveryError):
    """A rate-limit answer (429): wait ``retry_after`` (None: the server did not say) and try again; no error."""


class ChannelUnavailableError(DeliveryError):
    """The channel refuses us for good (403 missing access/permissions, 404 unknown channel)."""


class UnknownMessageError(DeliveryError):
    """The message to edit no longer exists (someone deleted a live card)."""


class RejectedMessageError(DeliveryError):
    """Discord rejected the message itself (400): resending the same thing can never work."""


@dataclass(frozen=True, slots=True)
class BucketState:
    """What the rate limiter knows of one bucket: requests it still allows before it resets, and when that is
    (``resets_in`` None: not known, or already reset)."""

    remaining: int
    resets_in: float | None


class DiscordSender(Protocol):
    async def send_message(self, channel_id: int, payload: dict[str, Any]) -> int:
        """Post ``payload`` (Discord's message JSON) and return the new message's ID."""
        ...

    async def edit_message(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None: ...

    def bucket(self, channel_id: int, kind: RequestKind) -> BucketState | None:
        """The state of the channel's rate-limit bucket for ``kind``; None when nothing is known (send at once)."""
        ...
