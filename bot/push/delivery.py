"""The delivery worker: sends the outbox to Discord, per channel, exactly once as far as Discord allows.

* Channels are served in parallel, one request in flight per channel, so a channel's messages keep their order
  and one slow or broken channel never holds up another.
* When a backlog forms, consecutive embeds of a channel are packed into one message (up to 10 embeds and 6000
  characters). Which rows form a message is committed *before* the request, and the message carries a
  ``nonce`` derived from its lead row with ``enforce_nonce``: a resend after a crash is the same message with
  the same nonce, which Discord answers with the message it already has instead of posting a duplicate.
* Live cards are posted through the outbox (so they keep their place in the channel) and then edited in
  place; an edit always renders the card's latest state, so changes faster than Discord's rate limit coalesce.
* Rate limits are discord.py's: its HTTP client never sends into an exhausted bucket and waits out 429s.
  5xx answers and timeouts are retried here with exponential backoff; 403 and 404 (unknown channel) are
  permanent: recorded on the route for admins and the channel's queue is dropped instead of retried forever.

This module holds the only discord.py import of ``bot.push``: the :class:`DiscordPySender` adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
import discord
from discord.http import Route

from bot.formatting.limits import EMBEDS_PER_MESSAGE, EmbedDict, pack_embeds
from bot.push.metrics import PushMetrics
from bot.storage.db import DatabaseError
from bot.storage.push_store import CardRow, OutboxRow, PushStore

log = logging.getLogger(__name__)

T = TypeVar("T")
IdleWait = Callable[[Awaitable[Any]], Awaitable[Any]]
WallClock = Callable[[], float]

NO_MENTIONS: dict[str, Any] = {"parse": []}
# Discord errors that mean "this message is gone" rather than "this channel is gone".
UNKNOWN_MESSAGE_CODE = 10008
STORAGE_ERRORS = (sqlite3.Error, DatabaseError)


# --------------------------------------------------------------------------------------------------
# The sender: a narrow protocol, and its discord.py implementation.


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


class ChannelUnavailableError(DeliveryError):
    """The channel refuses us for good (403 missing access/permissions, 404 unknown channel)."""


class UnknownMessageError(DeliveryError):
    """The message to edit no longer exists (someone deleted a live card)."""


class RejectedMessageError(DeliveryError):
    """Discord rejected the message itself (400): resending the same thing can never work."""


class DiscordSender(Protocol):
    async def send_message(self, channel_id: int, payload: dict[str, Any]) -> int:
        """Post ``payload`` (Discord's message JSON) and return the new message's ID."""
        ...

    async def edit_message(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None: ...


class DiscordPySender:
    """:class:`DiscordSender` over discord.py's REST client, so its per-bucket rate limiting applies."""

    def __init__(self, http: discord.http.HTTPClient, *, timeout_s: float = 60.0) -> None:
        self._http = http
        # discord.py itself sleeps through 429s and retries some 5xx; this bounds the whole exchange.
        self._timeout_s = timeout_s

    async def send_message(self, channel_id: int, payload: dict[str, Any]) -> int:
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        data = await self._request(route, payload, editing=False)
        try:
            return int(data["id"])
        except (TypeError, KeyError, ValueError):
            raise RetryableDeliveryError("Discord answered without a message ID") from None

    async def edit_message(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
        route = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=channel_id,
            message_id=message_id,
        )
        await self._request(route, payload, editing=True)

    async def _request(self, route: Route, payload: dict[str, Any], *, editing: bool) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._http.request(route, json=payload)
        except discord.Forbidden as exc:
            raise ChannelUnavailableError(
                f"403 Forbidden: the bot lacks access or permissions in this channel (Discord code {exc.code})"
            ) from None
        except discord.NotFound as exc:
            if editing and exc.code == UNKNOWN_MESSAGE_CODE:
                raise UnknownMessageError("404: the message was deleted") from None
            raise ChannelUnavailableError(
                f"404 Not Found: the channel no longer exists (Discord code {exc.code})"
            ) from None
        except discord.RateLimited as exc:
            raise RetryableDeliveryError("rate limited by Discord", retry_after=exc.retry_after) from None
        except discord.DiscordServerError as exc:
            raise RetryableDeliveryError(f"Discord server error {exc.status}") from None
        except discord.HTTPException as exc:
            if exc.status == 429:
                # A 429 discord.py would not retry (no Via header: Cloudflare). Back off for a good while.
                retry_after = _retry_after_header(exc.response)
                raise RetryableDeliveryError("rate limited before reaching Discord", retry_after) from None
            if exc.status in (400, 413) or exc.code == 50035:
                raise RejectedMessageError(
                    f"{exc.status}: Discord rejected the message (code {exc.code})"
                ) from None
            raise RetryableDeliveryError(f"Discord answered {exc.status} (code {exc.code})") from None
        except TimeoutError:
            raise RetryableDeliveryError(f"no answer from Discord within {self._timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RetryableDeliveryError(f"connection to Discord failed ({type(exc).__name__})") from None


def _retry_after_header(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------
# Message building


def role_mention_payload(ping_role_id: int | None) -> dict[str, Any]:
    """``content`` and ``allowed_mentions`` for a message: the route's ping role is the only mention that
    can ever sound, and everything else is explicitly silenced."""
    if ping_role_id is None:
        return {"allowed_mentions": dict(NO_MENTIONS)}
    return {"content": f"<@&{ping_role_id}>", "allowed_mentions": {"parse": [], "roles": [str(ping_role_id)]}}


def make_nonce(prefix: str, lead_row_id: int) -> str:
    """At most 25 characters, unique per database (prefix) and per message (lead outbox row)."""
    nonce = f"{prefix}{lead_row_id}"
    return nonce[-25:]


# --------------------------------------------------------------------------------------------------
# The worker


CardRenderer = Callable[[CardRow], Awaitable[EmbedDict]]
# A card's message components (buttons); None leaves the message's components as they are.
CardComponents = Callable[[CardRow], list[dict[str, Any]] | None]


@dataclass(frozen=True)
class DeliveryConfig:
    max_parallel_channels: int = 16
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    # A channel that answered 403/404 gets no requests for this long; its new messages are dropped meanwhile.
    channel_cooldown_s: float = 300.0
    # Alerts older than this are no longer news: they are recorded as failed instead of posted late.
    max_age_s: float = 24 * 3600.0
    drain_timeout_s: float = 5.0
    housekeeping_interval_s: float = 600.0
    keep_finished_s: float = 24 * 3600.0
    keep_closed_cards_s: float = 7 * 24 * 3600.0
    storage_retry_s: float = 5.0


class RouteFailureRecorder(Protocol):
    async def mark_failed_channel(self, channel_id: int, reason: str) -> Any: ...
    async def clear_failure_channel(self, channel_id: int) -> Any: ...


class DeliveryWorker:
    """Runs until stopped; :meth:`wake` after queueing work."""

    def __init__(
        self,
        store: PushStore,
        sender: DiscordSender,
        routes: RouteFailureRecorder,
        metrics: PushMetrics,
        render_card: CardRenderer,
        *,
        config: DeliveryConfig | None = None,
        idle_wait: IdleWait | None = None,
        clock: WallClock = time.time,
        card_components: CardComponents | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._routes = routes
        self._metrics = metrics
        self._render_card = render_card
        self._card_components = card_components
        self._config = config or DeliveryConfig()
        self._idle_wait: IdleWait = idle_wait or _plain_await
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._channel_tasks: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(self._config.max_parallel_channels)
        self._cooldown_until: dict[int, float] = {}
        self._cooldown_reason: dict[int, str] = {}
        # Channels whose route may carry a failure from an earlier run or an earlier error: the first
        # success clears it, so /status stops showing a problem that is gone.
        self._clear_failure_on_success: set[int] = set()
        self._checked_channels: set[int] = set()
        self._nonce_prefix: str | None = None
        self._last_housekeeping = 0.0
        self._background_tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wakeup.set()

    def resume(self) -> None:
        """Allow :meth:`run` again after a :meth:`stop` (a pipeline that is stopped and started again)."""
        self._stopping = False

    @property
    def busy_channels(self) -> int:
        return len(self._channel_tasks)

    async def run(self) -> None:
        """Find channels with due work and serve each in its own task; sleep until woken or a retry is due."""
        while not self._stopping:
            self._wakeup.clear()
            now = self._clock()
            try:
                if self._nonce_prefix is None:
                    self._nonce_prefix = await self._store.nonce_prefix()
                channels = await self._store.channels_with_due_work(now)
                next_due = await self._store.earliest_future_attempt(now)
                await self._housekeeping(now)
            except Exception:  # the database failed (or a bug): the scheduler must outlive it
                log.exception(
                    "delivery worker cannot read the outbox; retrying in %.0f s", self._config.storage_retry_s
                )
                await self._idle_wait(self._sleep_or_wake(self._config.storage_retry_s))
                continue
            for channel_id in channels:
                if channel_id not in self._channel_tasks and not self._stopping:
                    task = asyncio.create_task(self._serve_channel(channel_id), name=f"deliver-{channel_id}")
                    self._channel_tasks[channel_id] = task
                    task.add_done_callback(functools.partial(self._channel_done, channel_id))
            timeout = self._config.housekeeping_interval_s
            if next_due is not None:
                timeout = min(timeout, max(0.0, next_due - self._clock()))
            await self._idle_wait(self._sleep_or_wake(timeout))

    async def stop(self) -> None:
        """Let in-flight requests finish (up to ``drain_timeout_s``), then cancel what is left.

        A request cut off here is not lost: its rows stay pending with their batch fixed, and the next start
        resends them with the same nonce.
        """
        self._stopping = True
        self._wakeup.set()
        tasks = list(self._channel_tasks.values())
        if tasks:
            _, still_running = await asyncio.wait(tasks, timeout=self._config.drain_timeout_s)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running)
        if self._background_tasks:
            await asyncio.wait(list(self._background_tasks), timeout=self._config.drain_timeout_s)

    def _channel_done(self, channel_id: int, task: asyncio.Task[None]) -> None:
        if self._channel_tasks.get(channel_id) is task:
            del self._channel_tasks[channel_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery to channel %s stopped unexpectedly", channel_id, exc_info=task.exception())
        # The channel may have received work after its last look; let the scheduler check again.
        self._wakeup.set()

    async def _sleep_or_wake(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()

    async def _serve_channel(self, channel_id: int) -> None:
        """Send this channel's due work, one request at a time, until none is due."""
        try:
            async with self._slots:
                if channel_id not in self._checked_channels:
                    self._checked_channels.add(channel_id)
                    self._clear_failure_on_success.add(channel_id)
                while not self._stopping:
                    # Edits first: they update messages people are already looking at.
                    edited = await self._edit_one_card(channel_id)
                    sent = await self._send_head(channel_id)
                    if not edited and not sent:
                        return
        except (
            Exception
        ):  # the database failed, or a bug: pause this channel instead of respawning it at once
            log.exception(
                "delivery to channel %s paused for %.0f s", channel_id, self._config.storage_retry_s
            )
            await self._idle_wait(asyncio.sleep(self._config.storage_retry_s))

    # -- outbox head ----------------------------------------------------------------------------------

    async def _send_head(self, channel_id: int) -> bool:
        now = self._clock()
        # One read serves both the checks on the lead row and the packing of the message it leads.
        head = await self._store.pending_head(channel_id, EMBEDS_PER_MESSAGE)
        if not head or head[0].next_attempt_at > now:
            return False
        lead = head[0]
        if self._cooling_down(channel_id, now):
            await self._drop_channel_queue(
                channel_id, self._cooldown_reason.get(channel_id, "channel unavailable")
            )
            return True
        if now - lead.accepted_at > self._config.max_age_s:
            await self._store.mark_failed([lead.id], "expired: not delivered in time")
            self._metrics.deliveries.labels(kind="message", outcome="failed").inc()
            log.warning("outbox row %s for channel %s expired undelivered", lead.id, channel_id)
            return True
        if lead.card_id is not None:
            await self._post_card(lead)
        else:
            await self._send_batch(channel_id, head)
        return True

    async def _claim_batch(self, head: list[OutboxRow]) -> tuple[list[OutboxRow], list[EmbedDict]]:
        """The rows of the message led by ``head[0]`` (an earlier claim as it was, or a fresh packing from the
        channel's pending ``head``), and the message's embeds."""
        lead = head[0]
        if lead.batch_id is not None:
            rows = await self._store.batch_rows(lead.batch_id)
            if rows:
                return rows, pack_embeds([row.embed or {} for row in rows])[0]
        candidates = [lead] if lead.solo else head
        run: list[OutboxRow] = []
        for row in candidates:
            compatible = (
                row.card_id is None
                and row.batch_id is None
                and not row.solo
                and row.ping_role_id == lead.ping_role_id
            )
            if run and not compatible:
                break
            run.append(row)
        first_message = pack_embeds([row.embed or {} for row in run])[0]
        rows = run[: len(first_message)]
        await self._store.set_batch([row.id for row in rows], lead.id)
        return rows, first_message

    async def _send_batch(self, channel_id: int, head: list[OutboxRow]) -> None:
        # Packed once: clamping and measuring the embeds is a large part of delivery's CPU.
        lead = head[0]
        rows, embeds = await self._claim_batch(head)
        payload: dict[str, Any] = {
            "embeds": embeds,
            **role_mention_payload(lead.ping_role_id),
            "nonce": make_nonce(self._prefix, lead.id),
            "enforce_nonce": True,
        }
        ids = [row.id for row in rows]
        try:
            message_id = await self._guarded(self._sender.send_message(channel_id, payload))
        except RetryableDeliveryError as exc:
            await self._retry_rows(rows, exc)
            return
        except (ChannelUnavailableError, UnknownMessageError) as exc:
            await self._channel_unavailable(channel_id, exc.reason)
            return
        except RejectedMessageError as exc:
            if len(rows) > 1:
                log.warning(
                    "Discord rejected a packed message for channel %s; sending its parts alone", channel_id
                )
                await self._store.split_batch(ids)
            else:
                log.warning(
                    "Discord rejected outbox row %s for channel %s: %s", lead.id, channel_id, exc.reason
                )
                await self._store.mark_failed(ids, exc.reason)
                self._metrics.deliveries.labels(kind="message", outcome="failed").inc()
            return
        await self._store.mark_sent(ids, message_id)
        self._delivered(channel_id, "message", rows)

    def _delivered(self, channel_id: int, kind: str, rows: Sequence[OutboxRow]) -> None:
        self._metrics.deliveries.labels(kind=kind, outcome="sent").inc()
        self._metrics.embeds_delivered.inc(max(1, len(rows)))
        now = self._clock()
        for row in rows:
            self._metrics.delivery_latency.observe(max(0.0, now - row.accepted_at))
        self._cooldown_until.pop(channel_id, None)
        if channel_id in self._clear_failure_on_success:
            self._clear_failure_on_success.discard(channel_id)
            self._spawn_clear_failure(channel_id)

    def _spawn_clear_failure(self, channel_id: int) -> None:
        task = asyncio.create_task(self._clear_failure(channel_id), name=f"clear-failure-{channel_id}")
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _clear_failure(self, channel_id: int) -> None:
        try:
            await self._routes.clear_failure_channel(channel_id)
        except STORAGE_ERRORS:
            log.warning("could not clear the recorded failure of channel %s", channel_id)

    async def _retry_rows(self, rows: Sequence[OutboxRow], exc: RetryableDeliveryError) -> None:
        attempts = max(row.attempts for row in rows) + 1
        delay = self._backoff(attempts, exc.retry_after)
        log.warning(
            "delivery to channel %s failed (%s); retry %d in %.1f s",
            rows[0].channel_id,
            exc.reason,
            attempts,
            delay,
        )
        await self._store.mark_retry([row.id for row in rows], exc.reason, self._clock() + delay)
        self._metrics.deliveries.labels(
            kind="message" if rows[0].card_id is None else "card_post", outcome="retried"
        ).inc()

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        exponential = self._config.backoff_base_s * 2 ** min(attempts - 1, 20)
        # Jitter spreads the retries of many channels that failed together (a Discord outage).
        delay = min(self._config.backoff_max_s, exponential) * random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    # -- channel-level failures ---------------------------------------------------------------------------

    def _cooling_down(self, channel_id: int, now: float) -> bool:
        until = self._cooldown_until.get(channel_id)
        if until is None:
            return False
        if now >= until:
            del self._cooldown_until[channel_id]
            return False
        return True

    async def _channel_unavailable(self, channel_id: int, reason: str) -> None:
        log.warning("channel %s is unavailable (%s); its queued messages are dropped", channel_id, reason)
        self._cooldown_until[channel_id] = self._clock() + self._config.channel_cooldown_s
        self._cooldown_reason[channel_id] = reason
        self._clear_failure_on_success.add(channel_id)
        await self._routes.mark_failed_channel(channel_id, reason)
        await self._drop_channel_queue(channel_id, reason)

    async def _drop_channel_queue(self, channel_id: int, reason: str) -> None:
        dropped = await self._store.fail_channel(channel_id, reason)
        if dropped:
            self._metrics.deliveries.labels(kind="message", outcome="failed").inc(dropped)

    # -- live cards --------------------------------------------------------------------------------------

    async def _post_card(self, row: OutboxRow) -> None:
        assert row.card_id is not None
        card = await self._store.get_card_by_id(row.card_id)
        if card is None:
            await self._store.mark_failed([row.id], "the live card no longer exists")
            return
        if card.message_id is not None:
            # Already posted (a duplicate request for the same card): nothing to send.
            await self._store.mark_sent([row.id], card.message_id)
            return
        await self._store.set_batch([row.id], row.id)
        version = card.version
        payload: dict[str, Any] = {
            "embeds": [await self._render_card(card)],
            **role_mention_payload(row.ping_role_id),
            "nonce": make_nonce(self._prefix, row.id),
            "enforce_nonce": True,
            **self._components_of(card),
        }
        try:
            message_id = await self._guarded(self._sender.send_message(card.channel_id, payload))
        except RetryableDeliveryError as exc:
            await self._retry_rows([row], exc)
            return
        except (ChannelUnavailableError, UnknownMessageError) as exc:
            await self._channel_unavailable(card.channel_id, exc.reason)
            return
        except RejectedMessageError as exc:
            log.warning("Discord rejected live card %s: %s", card.id, exc.reason)
            async with self._store.atomic():
                await self._store.mark_failed([row.id], exc.reason)
                await self._store.card_give_up(card.id, exc.reason)
            self._metrics.deliveries.labels(kind="card_post", outcome="failed").inc()
            return
        async with self._store.atomic():
            await self._store.card_shown(card.id, version, message_id)
            await self._store.mark_sent([row.id], message_id)
        self._delivered(card.channel_id, "card_post", [row])

    async def _edit_one_card(self, channel_id: int) -> bool:
        now = self._clock()
        due = await self._store.due_card_edits(channel_id, now, 1)
        if not due:
            return False
        card = due[0]
        assert card.message_id is not None
        if self._cooling_down(channel_id, now):
            await self._store.card_give_up(
                card.id, self._cooldown_reason.get(channel_id, "channel unavailable")
            )
            return True
        version = card.version
        payload: dict[str, Any] = {
            "embeds": [await self._render_card(card)],
            "allowed_mentions": dict(NO_MENTIONS),
            **self._components_of(card),
        }
        try:
            await self._guarded(self._sender.edit_message(channel_id, card.message_id, payload))
        except RetryableDeliveryError as exc:
            delay = self._backoff(card.attempts + 1, exc.retry_after)
            log.warning("editing live card %s failed (%s); retry in %.1f s", card.id, exc.reason, delay)
            await self._store.card_retry(card.id, exc.reason, self._clock() + delay)
            self._metrics.deliveries.labels(kind="card_edit", outcome="retried").inc()
            return True
        except UnknownMessageError:
            log.info("live card %s was deleted in Discord; posting it again", card.id)
            async with self._store.atomic():
                await self._store.card_message_lost(card.id)
                await self._store.add_outbox(
                    guild_id=card.guild_id,
                    channel_id=card.channel_id,
                    category=card.kind,
                    card_id=card.id,
                    accepted_at=self._clock(),
                )
            return True
        except ChannelUnavailableError as exc:
            await self._channel_unavailable(channel_id, exc.reason)
            return True
        except RejectedMessageError as exc:
            log.warning("Discord rejected an edit of live card %s: %s", card.id, exc.reason)
            await self._store.card_give_up(card.id, exc.reason)
            self._metrics.deliveries.labels(kind="card_edit", outcome="failed").inc()
            return True
        await self._store.card_shown(card.id, version, card.message_id)
        self._metrics.deliveries.labels(kind="card_edit", outcome="sent").inc()
        self._cooldown_until.pop(channel_id, None)
        return True

    def _components_of(self, card: CardRow) -> dict[str, Any]:
        """``{"components": [...]}`` for a card that has buttons (posts and edits alike, so a closed call's
        edit takes them away); empty when the card kind has none or drawing them failed."""
        if self._card_components is None:
            return {}
        try:
            components = self._card_components(card)
        except Exception:  # a bug here must not keep the card itself from being shown
            log.exception("the buttons of live card %s cannot be drawn", card.id)
            return {}
        return {} if components is None else {"components": components}

    async def _guarded(self, request: Awaitable[T]) -> T:
        """The sender's result; an exception it should never raise (a bug) backs off like an outage
        instead of failing the channel task, which would be restarted at once and spin."""
        try:
            return await request
        except DeliveryError:
            raise
        except Exception as exc:
            log.exception("the Discord sender failed unexpectedly")
            raise RetryableDeliveryError(f"unexpected {type(exc).__name__}") from None

    # -- upkeep --------------------------------------------------------------------------------------------

    @property
    def _prefix(self) -> str:
        if self._nonce_prefix is None:
            raise RuntimeError("the delivery worker sends only after reading its nonce prefix")
        return self._nonce_prefix

    async def _housekeeping(self, now: float) -> None:
        if now - self._last_housekeeping < self._config.housekeeping_interval_s:
            return
        self._last_housekeeping = now
        removed = await self._store.prune(
            finished_before=now - self._config.keep_finished_s,
            cards_before=now - self._config.keep_closed_cards_s,
        )
        if removed:
            log.info("pruned %d finished push rows", removed)


async def _plain_await(awaitable: Awaitable[T]) -> T:
    return await awaitable
