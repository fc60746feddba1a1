"""The delivery worker: sends the outbox to Discord, per channel, most urgent first, exactly once as far as
Discord allows.

* **Lanes.** Every channel has two lanes, each with one request in flight: *posts* (the outbox: alerts and the
  first post of live cards) and *edits* (live cards changed since Discord last showed them). Discord limits the
  two in separate buckets, so a channel busy editing cards never holds up its alerts, and one slow or broken
  channel never holds up another.
* **Urgency.** Every delivery has a priority (:func:`bot.storage.models.delivery_priority`: panic, then 911
  calls, then dispatch, then everything else). A channel's next message is led by its most urgent pending row,
  the oldest of that priority first; a message packs only rows of one priority, so a category's messages keep
  their order, and packing never waits for more rows to come (an alert leaves with whatever is pending when its
  turn comes). Card edits go 911 calls' cards first.
* **No starvation.** When the last ``fair_turn_every - 1`` messages of a channel all overtook an older, less
  urgent row, the next message is led by the channel's oldest row instead, so routine traffic keeps at least
  that share of the channel while urgent traffic fills it. Panic alerts are the one exception: a fair turn waits
  for them (only a channel flooded with panic alerts could hold routine work back, and then those matter most).
* **Slots are claimed when they are free.** discord.py's client waits for an exhausted bucket *inside* its
  request call, so a message handed to it while the bucket is empty would hold the next slot whatever became
  pending meanwhile. The worker therefore reads discord.py's own bucket bookkeeping (:meth:`DiscordSender.bucket`)
  and waits for the slot *before* it picks and claims the next message; a wait ends early when more urgent work
  arrives. Routine and dispatch traffic also leaves the last request of each rate-limit window to urgent
  alerts until ``urgent_headroom_s`` before the window resets (the window's throughput is unchanged: that last
  request still goes out before the reset), so an alert behind a flood waits at most that long for its slot.
* **Global budget.** At most ``max_parallel_requests`` requests are in flight across all channels; when lanes
  compete, the most urgent waiter gets the next free slot (then the longest waiting), and one slot is kept for
  urgent alerts.
* **Exactly once.** Which rows form a message is committed *before* the request, and the message carries a
  ``nonce`` derived from its batch (the id of its first row) with ``enforce_nonce``: a resend after a crash is
  the same message with the same nonce, which Discord answers with the message it already has instead of
  posting a duplicate.
* **Live cards** are posted through the outbox (so they keep their place among their category's messages) and
  then edited in place; an edit always renders the card's latest state, so changes faster than Discord's rate
  limit coalesce.
* **Failures.** 5xx answers and timeouts are retried with exponential back-off (jittered, counting attempts).
  A rate-limit answer that reaches the worker (discord.py retries most 429s itself) is not an error: the lane
  waits exactly the ``Retry-After`` it was given (kept within ``rate_limit_floor_s`` .. ``backoff_max_s``) and
  the attempt does not count towards later back-offs. 403 and 404 (unknown channel) are permanent: recorded on
  the route for admins and the channel's queue is dropped instead of retried forever.

The worker speaks to Discord through the :class:`~bot.push.sender.DiscordSender` protocol; the discord.py
adapter is :mod:`bot.push.discord_sender`, the bucket and slot primitives are :mod:`bot.push.slots`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from bot.formatting.limits import EMBEDS_PER_MESSAGE, EmbedDict, pack_embeds
from bot.push.metrics import PushMetrics
from bot.push.sender import (
    ChannelUnavailableError,
    DeliveryError,
    DiscordSender,
    RateLimitedError,
    RejectedMessageError,
    RequestKind,
    RetryableDeliveryError,
    UnknownMessageError,
)
from bot.push.slots import PrioritySlots, bucket_wait
from bot.storage.cards import CardRow
from bot.storage.db import DatabaseError
from bot.storage.models import Priority
from bot.storage.outbox import DueLane, OutboxRow, PendingHead
from bot.storage.push_store import PushStore
from bot.timing import IdleWait, WallClock, plain_await

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_MENTIONS: dict[str, Any] = {"parse": []}


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
    # Requests in flight at once across all channels (one slot of them is kept for urgent alerts).
    max_parallel_requests: int = 16
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    # A rate-limit answer is waited out for its Retry-After, but at least this long: a proxy answering
    # "Retry-After: 0" over and over must not make a channel spin (Discord's own pace is 1 message/s).
    rate_limit_floor_s: float = 0.5
    # A rate-limit answer without a Retry-After waits this long (one of Discord's message windows).
    rate_limit_default_s: float = 5.0
    # Routine traffic leaves the last request of each rate-limit window to urgent alerts until this long
    # before the window resets: the most an alert behind a flood waits for its slot.
    urgent_headroom_s: float = 0.5
    # At least one message in this many goes to a channel's oldest pending row (no starvation).
    fair_turn_every: int = 5
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


@dataclass(eq=False)
class _Lane:
    """One channel's posts or edits: served by one task, one request at a time."""

    channel_id: int
    kind: RequestKind
    # Set when more urgent work may have arrived (or the worker stops): a wait for a slot ends early.
    poked: asyncio.Event = field(default_factory=asyncio.Event)
    # The priority of the work the lane is waiting to send (None while it is not waiting).
    waiting_for: int | None = None
    # Messages in a row that overtook an older, less urgent row of the channel (posts only).
    overtakes: int = 0


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
        self._idle_wait: IdleWait = idle_wait or plain_await
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._lanes: dict[tuple[int, RequestKind], _Lane] = {}
        self._lane_tasks: dict[tuple[int, RequestKind], asyncio.Task[None]] = {}
        self._slots = PrioritySlots(self._config.max_parallel_requests)
        # A lane that got a rate-limit answer sends nothing before this (wall clock), whatever its priority.
        self._held_until: dict[tuple[int, RequestKind], float] = {}
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

    async def run(self) -> None:
        """Find lanes with due work and serve each in its own task; sleep until woken or a retry is due."""
        while not self._stopping:
            self._wakeup.clear()
            try:
                if self._nonce_prefix is None:
                    self._nonce_prefix = await self._store.nonce_prefix()
                lanes = await self._store.outbox.due_lanes()
                await self._housekeeping(self._clock())
            except Exception:  # the database failed (or a bug): the scheduler must outlive it
                log.exception(
                    "delivery worker cannot read the outbox; retrying in %.0f s", self._config.storage_retry_s
                )
                await self._idle_wait(self._sleep_or_wake(self._config.storage_retry_s))
                continue
            next_due = self._dispatch(lanes, self._clock())
            timeout = self._config.housekeeping_interval_s
            if next_due is not None:
                timeout = min(timeout, max(0.0, next_due - self._clock()))
            await self._idle_wait(self._sleep_or_wake(timeout))

    def _dispatch(self, due: Sequence[DueLane], now: float) -> float | None:
        """Start a task for every lane with work due now, and tell a waiting lane when more urgent work came;
        returns when the next backed-off work becomes due."""
        next_due: float | None = None
        for item in due:
            if item.due_at > now:
                next_due = item.due_at if next_due is None else min(next_due, item.due_at)
                continue
            key = (item.channel_id, RequestKind(item.lane))
            lane = self._lanes.get(key)
            if lane is None:
                if self._stopping:
                    continue
                lane = _Lane(item.channel_id, key[1])
                self._lanes[key] = lane
                serve = self._serve_posts if lane.kind is RequestKind.POST else self._serve_edits
                task = asyncio.create_task(serve(lane), name=f"deliver-{lane.kind}-{lane.channel_id}")
                self._lane_tasks[key] = task
                task.add_done_callback(functools.partial(self._lane_done, key))
            elif lane.waiting_for is not None and item.priority < lane.waiting_for:
                lane.poked.set()
        return next_due

    async def stop(self) -> None:
        """Let in-flight requests finish (up to ``drain_timeout_s``), then cancel what is left.

        A request cut off here is not lost: its rows stay pending with their batch fixed, and the next start
        resends them with the same nonce.
        """
        self._stopping = True
        self._wakeup.set()
        for lane in self._lanes.values():
            lane.poked.set()
        tasks = list(self._lane_tasks.values())
        if tasks:
            _, still_running = await asyncio.wait(tasks, timeout=self._config.drain_timeout_s)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running)
        if self._background_tasks:
            await asyncio.wait(list(self._background_tasks), timeout=self._config.drain_timeout_s)

    def _lane_done(self, key: tuple[int, RequestKind], task: asyncio.Task[None]) -> None:
        if self._lane_tasks.get(key) is task:
            del self._lane_tasks[key]
            self._lanes.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery to channel %s stopped unexpectedly", key[0], exc_info=task.exception())
        # The lane may have received work after its last look; let the scheduler check again.
        self._wakeup.set()

    async def _sleep_or_wake(self, seconds: float) -> None:
        await _event_or_timeout(self._wakeup, seconds)

    # -- lanes -------------------------------------------------------------------------------------------

    async def _serve_posts(self, lane: _Lane) -> None:
        """Send this channel's due messages, one request at a time, until none is due."""
        await self._serve(lane, self._send_next)

    async def _serve_edits(self, lane: _Lane) -> None:
        """Make this channel's owed card edits, one request at a time, until none is due."""
        await self._serve(lane, self._edit_next)

    async def _serve(self, lane: _Lane, step: Callable[[_Lane], Awaitable[bool]]) -> None:
        try:
            if lane.channel_id not in self._checked_channels:
                self._checked_channels.add(lane.channel_id)
                self._clear_failure_on_success.add(lane.channel_id)
            while not self._stopping and await step(lane):
                pass
        except Exception:  # the database failed, or a bug: pause this lane instead of respawning it at once
            log.exception(
                "delivery to channel %s paused for %.0f s", lane.channel_id, self._config.storage_retry_s
            )
            await self._idle_wait(asyncio.sleep(self._config.storage_retry_s))

    def _request_wait(self, lane: _Lane, priority: Priority) -> float:
        """Seconds before the lane may make a request for work of ``priority`` (0: now)."""
        key = (lane.channel_id, lane.kind)
        held = self._held_until.get(key)
        wait = 0.0
        if held is not None:
            wait = held - self._clock()
            if wait <= 0:
                del self._held_until[key]
                wait = 0.0
        state = self._sender.bucket(lane.channel_id, lane.kind)
        headroom = self._config.urgent_headroom_s
        return max(wait, bucket_wait(state, urgent=priority.urgent, headroom_s=headroom))

    async def _wait_for_slot(self, lane: _Lane, priority: Priority, seconds: float) -> None:
        """Wait ``seconds`` for the lane's bucket, or less if more urgent work arrives or the worker stops."""
        lane.waiting_for = int(priority)
        lane.poked.clear()
        try:
            await self._idle_wait(_event_or_timeout(lane.poked, seconds))
        finally:
            lane.waiting_for = None

    def _hold(self, lane_key: tuple[int, RequestKind], seconds: float) -> None:
        self._held_until[lane_key] = self._clock() + seconds

    # -- outbox: the post lane --------------------------------------------------------------------------

    async def _send_next(self, lane: _Lane) -> bool:
        """Send the channel's next message (or wait for its slot); False when nothing is due."""
        channel_id = lane.channel_id
        # One read serves the checks on the lead row and the packing of the message it leads.
        head = await self._store.outbox.pending_head(channel_id, EMBEDS_PER_MESSAGE)
        rows = await self._next_rows(lane, head)
        if rows is None:
            return False
        lead = rows[0]
        now = self._clock()
        if self._cooling_down(channel_id, now):
            await self._drop_channel_queue(
                channel_id, self._cooldown_reason.get(channel_id, "channel unavailable")
            )
            return True
        if now - lead.accepted_at > self._config.max_age_s:
            await self._store.outbox.mark_failed([lead.id], "expired: not delivered in time")
            self._metrics.deliveries.labels(kind="message", outcome="failed").inc()
            log.warning("outbox row %s for channel %s expired undelivered", lead.id, channel_id)
            return True
        priority = Priority(lead.priority)
        wait = self._request_wait(lane, priority)
        if wait > 0:
            await self._wait_for_slot(lane, priority, wait)
            return True  # look again: the slot is free now, or something more urgent came
        async with self._slots.take(priority) as waited:
            if waited:
                if self._stopping:
                    return False
                # Other channels went first; this one may have more urgent (or more) work by now.
                head = await self._store.outbox.pending_head(channel_id, EMBEDS_PER_MESSAGE)
                rows = await self._next_rows(lane, head)
                if rows is None:
                    return False
                lead = rows[0]
            if lead.card_id is not None:
                await self._post_card(lead)
            else:
                await self._send_batch(channel_id, rows)
        overtook = head.oldest_id is not None and lead.id > head.oldest_id
        lane.overtakes = lane.overtakes + 1 if overtook else 0
        return True

    async def _next_rows(self, lane: _Lane, head: PendingHead) -> list[OutboxRow] | None:
        """The rows the channel's next message is drawn from, its lead first; None when nothing is due.

        Usually the most urgent pending rows; on a fair turn, the rows from the channel's oldest pending row on.
        """
        if not head.rows:
            return None
        rows = list(head.rows)
        now = self._clock()
        fair_turn = (
            head.oldest_id is not None
            and head.oldest_id < rows[0].id
            and rows[0].priority != Priority.PANIC
            and lane.overtakes >= self._config.fair_turn_every - 1
        )
        if fair_turn and head.oldest_id is not None:
            oldest = await self._store.outbox.pending_from(
                lane.channel_id, head.oldest_id, EMBEDS_PER_MESSAGE
            )
            if oldest and oldest[0].next_attempt_at <= now:
                return oldest
        if rows[0].next_attempt_at > now:
            return None
        return rows

    async def _claim_batch(self, head: Sequence[OutboxRow]) -> tuple[list[OutboxRow], list[EmbedDict], int]:
        """The rows of the message led by ``head[0]`` (an earlier claim as it was, or a fresh packing of the
        following rows of ``head``, which share its priority), the message's embeds, and its batch id."""
        lead = head[0]
        if lead.batch_id is not None:
            rows = await self._store.outbox.batch_rows(lead.batch_id)
            if rows:
                return rows, pack_embeds([row.embed or {} for row in rows])[0], lead.batch_id
        candidates = [lead] if lead.solo else head
        run: list[OutboxRow] = []
        for row in candidates:
            compatible = (
                row.card_id is None
                and row.batch_id is None
                and not row.solo
                and row.ping_role_id == lead.ping_role_id
                and row.priority == lead.priority
            )
            if run and not compatible:
                break
            run.append(row)
        first_message = pack_embeds([row.embed or {} for row in run])[0]
        rows = run[: len(first_message)]
        await self._store.outbox.set_batch([row.id for row in rows], lead.id)
        return rows, first_message, lead.id

    async def _send_batch(self, channel_id: int, head: Sequence[OutboxRow]) -> None:
        # Packed once: clamping and measuring the embeds is a large part of delivery's CPU.
        rows, embeds, batch_id = await self._claim_batch(head)
        lead = rows[0]
        payload: dict[str, Any] = {
            "embeds": embeds,
            **role_mention_payload(lead.ping_role_id),
            "nonce": make_nonce(self._prefix, batch_id),
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
                await self._store.outbox.split_batch(ids)
            else:
                log.warning(
                    "Discord rejected outbox row %s for channel %s: %s", lead.id, channel_id, exc.reason
                )
                await self._store.outbox.mark_failed(ids, exc.reason)
                self._metrics.deliveries.labels(kind="message", outcome="failed").inc()
            return
        await self._store.outbox.mark_sent(ids, message_id)
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
        except DatabaseError:
            log.warning("could not clear the recorded failure of channel %s", channel_id)

    async def _retry_rows(self, rows: Sequence[OutboxRow], exc: RetryableDeliveryError) -> None:
        channel_id = rows[0].channel_id
        kind = "message" if rows[0].card_id is None else "card_post"
        ids = [row.id for row in rows]
        self._metrics.deliveries.labels(kind=kind, outcome="retried").inc()
        if isinstance(exc, RateLimitedError):
            delay = self._rate_limit_wait(exc.retry_after)
            self._hold((channel_id, RequestKind.POST), delay)
            log.warning(
                "delivery to channel %s was rate limited (%s); trying again in %.1f s as asked",
                channel_id,
                exc.reason,
                delay,
            )
            await self._store.outbox.mark_retry(ids, exc.reason, self._clock() + delay, failed_attempt=False)
            return
        attempts = max(row.attempts for row in rows) + 1
        delay = self._backoff(attempts)
        log.warning(
            "delivery to channel %s failed (%s); retry %d in %.1f s", channel_id, exc.reason, attempts, delay
        )
        await self._store.outbox.mark_retry(ids, exc.reason, self._clock() + delay)

    def _backoff(self, attempts: int) -> float:
        """The wait after ``attempts`` failed attempts in a row (5xx, timeouts): exponential, with jitter."""
        exponential = self._config.backoff_base_s * 2 ** min(attempts - 1, 20)
        # Jitter spreads the retries of many channels that failed together (a Discord outage).
        return min(self._config.backoff_max_s, exponential) * random.uniform(0.8, 1.2)

    def _rate_limit_wait(self, retry_after: float | None) -> float:
        """The wait a rate-limit answer asks for, within the floor and ``backoff_max_s`` (a garbled or huge
        value must not park a channel for days: asking again costs one request)."""
        wait = self._config.rate_limit_default_s if retry_after is None else retry_after
        return min(self._config.backoff_max_s, max(self._config.rate_limit_floor_s, wait))

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
        card = await self._store.cards.get_by_id(row.card_id)
        if card is None:
            await self._store.outbox.mark_failed([row.id], "the live card no longer exists")
            return
        if card.message_id is not None:
            # Already posted (a duplicate request for the same card): nothing to send.
            await self._store.outbox.mark_sent([row.id], card.message_id)
            return
        await self._store.outbox.set_batch([row.id], row.id)
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
                await self._store.outbox.mark_failed([row.id], exc.reason)
                await self._store.cards.give_up(card.id, exc.reason)
            self._metrics.deliveries.labels(kind="card_post", outcome="failed").inc()
            return
        async with self._store.atomic():
            await self._store.cards.shown(card.id, version, message_id)
            await self._store.outbox.mark_sent([row.id], message_id)
        self._delivered(card.channel_id, "card_post", [row])

    async def _edit_next(self, lane: _Lane) -> bool:
        """Make the channel's most urgent owed card edit (or wait for its slot); False when none is due."""
        channel_id = lane.channel_id
        due = await self._store.cards.due_edits(channel_id, self._clock(), 1)
        if not due:
            return False
        card = due[0]
        if self._cooling_down(channel_id, self._clock()):
            await self._store.cards.give_up(
                card.id, self._cooldown_reason.get(channel_id, "channel unavailable")
            )
            return True
        wait = self._request_wait(lane, card.priority)
        if wait > 0:
            await self._wait_for_slot(lane, card.priority, wait)
            return True
        async with self._slots.take(card.priority) as waited:
            if waited:
                if self._stopping:
                    return False
                due = await self._store.cards.due_edits(channel_id, self._clock(), 1)
                if not due:
                    return False
                card = due[0]
            await self._edit_card(lane, card)
        return True

    async def _edit_card(self, lane: _Lane, card: CardRow) -> None:
        channel_id = lane.channel_id
        assert card.message_id is not None
        version = card.version
        payload: dict[str, Any] = {
            "embeds": [await self._render_card(card)],
            "allowed_mentions": dict(NO_MENTIONS),
            **self._components_of(card),
        }
        try:
            await self._guarded(self._sender.edit_message(channel_id, card.message_id, payload))
        except RateLimitedError as exc:
            delay = self._rate_limit_wait(exc.retry_after)
            self._hold((channel_id, RequestKind.EDIT), delay)
            log.warning(
                "editing live card %s was rate limited (%s); trying again in %.1f s as asked",
                card.id,
                exc.reason,
                delay,
            )
            await self._store.cards.retry(card.id, exc.reason, self._clock() + delay, failed_attempt=False)
            self._metrics.deliveries.labels(kind="card_edit", outcome="retried").inc()
            return
        except RetryableDeliveryError as exc:
            delay = self._backoff(card.attempts + 1)
            log.warning("editing live card %s failed (%s); retry in %.1f s", card.id, exc.reason, delay)
            await self._store.cards.retry(card.id, exc.reason, self._clock() + delay)
            self._metrics.deliveries.labels(kind="card_edit", outcome="retried").inc()
            return
        except UnknownMessageError:
            log.info("live card %s was deleted in Discord; posting it again", card.id)
            async with self._store.atomic():
                await self._store.cards.message_lost(card.id)
                await self._store.outbox.add(
                    guild_id=card.guild_id,
                    channel_id=card.channel_id,
                    category=card.kind,
                    card_id=card.id,
                    accepted_at=self._clock(),
                )
            self.wake()  # the post lane
            return
        except ChannelUnavailableError as exc:
            await self._channel_unavailable(channel_id, exc.reason)
            return
        except RejectedMessageError as exc:
            log.warning("Discord rejected an edit of live card %s: %s", card.id, exc.reason)
            await self._store.cards.give_up(card.id, exc.reason)
            self._metrics.deliveries.labels(kind="card_edit", outcome="failed").inc()
            return
        await self._store.cards.shown(card.id, version, card.message_id)
        self._metrics.deliveries.labels(kind="card_edit", outcome="sent").inc()
        self._cooldown_until.pop(channel_id, None)

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
        instead of failing the lane's task, which would be restarted at once and spin."""
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


async def _event_or_timeout(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
