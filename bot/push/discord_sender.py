"""The discord.py side of delivery: :class:`DiscordPySender` posts and edits messages through discord.py's REST
client, so its per-bucket rate limiting applies, reads that client's bucket bookkeeping, and turns its
exceptions into the delivery errors of :mod:`bot.push.sender`.

This module holds the only discord.py import of ``bot.push``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import discord
from discord.http import Route

from bot.push.sender import (
    BucketState,
    ChannelUnavailableError,
    DeliveryError,
    RateLimitedError,
    RejectedMessageError,
    RequestKind,
    RetryableDeliveryError,
    UnknownMessageError,
)

# Discord errors that mean "this message is gone" rather than "this channel is gone".
UNKNOWN_MESSAGE_CODE = 10008


def _route(channel_id: int, kind: RequestKind, message_id: int = 0) -> Route:
    if kind is RequestKind.POST:
        return Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
    return Route(
        "PATCH", "/channels/{channel_id}/messages/{message_id}", channel_id=channel_id, message_id=message_id
    )


class DiscordPySender:
    """:class:`DiscordSender` over discord.py's REST client, so its per-bucket rate limiting applies."""

    def __init__(self, http: discord.http.HTTPClient, *, timeout_s: float = 60.0) -> None:
        self._http = http
        # discord.py itself sleeps through 429s and retries some 5xx; this bounds the whole exchange.
        self._timeout_s = timeout_s

    async def send_message(self, channel_id: int, payload: dict[str, Any]) -> int:
        data = await self._request(_route(channel_id, RequestKind.POST), payload, editing=False)
        try:
            return int(data["id"])
        except (TypeError, KeyError, ValueError):
            raise RetryableDeliveryError("Discord answered without a message ID") from None

    async def edit_message(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
        await self._request(_route(channel_id, RequestKind.EDIT, message_id), payload, editing=True)

    def bucket(self, channel_id: int, kind: RequestKind) -> BucketState | None:
        """Read from discord.py's own bookkeeping (``HTTPClient._buckets``, updated from every answer's
        ``X-RateLimit-*`` headers). It is internal to discord.py: if it is missing or not as expected, this
        says "not known" and the request simply goes, with discord.py still keeping it within the limit."""
        route = _route(channel_id, kind)
        try:
            hashes = self._http._bucket_hashes
            buckets = self._http._buckets
            bucket_hash = hashes.get(route.key)
            ratelimit = buckets.get(f"{bucket_hash or route.key}:{route.major_parameters}")
            if ratelimit is None:
                return None
            now = asyncio.get_running_loop().time()
            expires: float | None = ratelimit.expires
            if expires is not None and now > expires:
                # discord.py resets the bucket on its next use.
                return BucketState(
                    remaining=max(0, int(ratelimit.limit) - int(ratelimit.outgoing)), resets_in=None
                )
            return BucketState(
                remaining=max(0, int(ratelimit.remaining)),
                resets_in=None if expires is None else expires - now,
            )
        except (AttributeError, TypeError, ValueError):
            return None

    async def _request(self, route: Route, payload: dict[str, Any], *, editing: bool) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._http.request(route, json=payload)
        except discord.HTTPException as exc:
            raise _delivery_error(exc, editing=editing) from None
        except discord.RateLimited as exc:
            raise RateLimitedError("rate limited by Discord", retry_after=exc.retry_after) from None
        except TimeoutError:
            raise RetryableDeliveryError(f"no answer from Discord within {self._timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RetryableDeliveryError(f"connection to Discord failed ({type(exc).__name__})") from None


def _delivery_error(exc: discord.HTTPException, *, editing: bool) -> DeliveryError:
    """What an answer Discord refused means for delivery: the channel is gone, the message is, the message
    itself is wrong, or try again later."""
    if isinstance(exc, discord.Forbidden):
        return ChannelUnavailableError(
            f"403 Forbidden: the bot lacks access or permissions in this channel (Discord code {exc.code})"
        )
    if isinstance(exc, discord.NotFound):
        if editing and exc.code == UNKNOWN_MESSAGE_CODE:
            return UnknownMessageError("404: the message was deleted")
        return ChannelUnavailableError(
            f"404 Not Found: the channel no longer exists (Discord code {exc.code})"
        )
    if isinstance(exc, discord.DiscordServerError):
        return RetryableDeliveryError(f"Discord server error {exc.status}")
    if exc.status == 429:
        # A 429 discord.py would not retry (no Via header: Cloudflare), or one it gave up retrying.
        return RateLimitedError("rate limited before reaching Discord", _retry_after_header(exc.response))
    if exc.status in (400, 413) or exc.code == 50035:
        return RejectedMessageError(f"{exc.status}: Discord rejected the message (code {exc.code})")
    return RetryableDeliveryError(f"Discord answered {exc.status} (code {exc.code})")


def _retry_after_header(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None
