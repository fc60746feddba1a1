"""Accepting a push event: who sent it (the key), whether to listen (throttle), and storing it durably.

The HTTP layer (``server.py``) calls these in order and turns each :class:`Answer` into a response.
The only authentication the CAD offers is the community API key in the body, so it is compared as a keyed
hash in constant time, never logged or echoed, and an address that keeps guessing is made to wait.
An event is acknowledged only once it is committed to the inbox; concurrent requests share one commit.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from bot.cad.events import EVENT_MODELS, IGNORED_EVENT_TYPES
from bot.push.dedupe import CrossTransportDedupe
from bot.push.metrics import NO_TYPE_LABEL, PushMetrics, type_label
from bot.storage import Storage
from bot.storage.db import DatabaseError, DatabaseUnavailableError
from bot.storage.inbox import MAX_INBOX_ROWS_PER_COMMIT, Inbox, InboxEntry
from bot.storage.models import GuildConfig
from bot.timing import MonotonicClock, WallClock

log = logging.getLogger(__name__)

# Real CAD keys are short; anything longer is not worth hashing.
MAX_KEY_CHARS = 512
MAX_TYPE_CHARS = 100
STORAGE_RETRY_AFTER_S = 5
# How long the configured keys' hashes are trusted in memory when nothing invalidated them.
CONFIGURED_KEYS_TTL_S = 30.0
# The transports an event can arrive over (what the cross-transport dedupe tells apart).
HTTP = "http"
WEBSOCKET = "websocket"


@dataclass(frozen=True)
class Answer:
    """What to tell the sender: an HTTP status and a small JSON body (never containing the key)."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def rejected(status: int, error: str, message: str, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, {"ok": False, "error": error, "message": message}, headers or {})


class StorageUnavailableError(Exception):
    """The inbox could not be written; the sender should try again."""


class AuthThrottle:
    """Counts failed authentications per address; too many within ``window_s`` blocks it for ``block_s``."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window_s: float = 60.0,
        block_s: float = 60.0,
        max_tracked: int = 10_000,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._block_s = block_s
        self._max_tracked = max_tracked
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, address: str) -> float | None:
        """Seconds the address must still wait, or None if it may try."""
        until = self._blocked_until.get(address)
        if until is None:
            return None
        remaining = until - self._clock()
        if remaining <= 0:
            del self._blocked_until[address]
            return None
        return remaining

    def failed(self, address: str) -> None:
        now = self._clock()
        failures = self._failures.pop(address, None) or deque()
        failures.append(now)
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        self._failures[address] = failures
        if len(failures) >= self._max_failures:
            self._blocked_until[address] = now + self._block_s
            failures.clear()
        self._forget_oldest(now)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _forget_oldest(self, now: float) -> None:
        # Bounded memory under a spray of addresses: the least recently failing are forgotten first.
        while len(self._failures) > self._max_tracked:
            self._failures.popitem(last=False)
        if len(self._blocked_until) > self._max_tracked:
            for address, until in list(self._blocked_until.items()):
                if until <= now:
                    del self._blocked_until[address]


class RejectionLog:
    """Refused requests (wrong or missing key, throttled) as a few log lines, however many arrive.

    The first refusal after a quiet spell is logged at once, with its address, so a self-hoster who mistyped
    the key sees it immediately. Refusals after that are counted, and one line every ``window_s`` says how many
    came from how many addresses (and which sent the most). A flood of 20,000 wrong keys is two lines a minute.
    """

    def __init__(self, *, window_s: float = 60.0, max_addresses: int = 10_000) -> None:
        self._window_s = window_s
        self._max_addresses = max_addresses
        self._counts: dict[str, int] = {}
        self._other_addresses = 0
        self._by_reason: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._window_started = 0.0

    @property
    def summarising(self) -> bool:
        """True while a window is open: refusals are being counted for the next summary line."""
        return self._timer is not None

    def refused(self, address: str, reason: str) -> None:
        """Note one refused request; ``reason`` is ``unauthorized`` or ``throttled``."""
        if self._timer is None:
            log.warning(
                "push event from %s refused (%s); further refusals are summarised every %g s",
                address,
                _REASON_TEXT.get(reason, reason),
                self._window_s,
            )
            loop = asyncio.get_running_loop()
            self._window_started = loop.time()
            self._timer = loop.call_later(self._window_s, self._window_ended)
            return
        self._by_reason[reason] = self._by_reason.get(reason, 0) + 1
        if address in self._counts or len(self._counts) < self._max_addresses:
            self._counts[address] = self._counts.get(address, 0) + 1
        else:
            self._other_addresses += 1

    def _window_ended(self) -> None:
        self._timer = None
        if self._summarise(self._window_s):
            # Refusals kept coming: keep summarising instead of logging the next one on its own.
            loop = asyncio.get_running_loop()
            self._window_started = loop.time()
            self._timer = loop.call_later(self._window_s, self._window_ended)

    def flush(self) -> None:
        """Log what was counted so far (the listener is stopping) and forget it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._summarise(asyncio.get_running_loop().time() - self._window_started)

    def _summarise(self, seconds: float) -> bool:
        total = sum(self._by_reason.values())
        if not total:
            return False
        addresses = len(self._counts) + (1 if self._other_addresses else 0)
        reasons = ", ".join(
            f"{self._by_reason[reason]} {text}"
            for reason, text in _REASON_TEXT.items()
            if reason in self._by_reason
        )
        top_address, top_count = max(self._counts.items(), key=lambda item: item[1], default=("?", 0))
        log.warning(
            "push listener refused %d more request(s) from %s%d address(es) in the last %g s (%s); "
            "most from %s (%d)",
            total,
            "at least " if self._other_addresses else "",
            addresses,
            round(seconds, 1),
            reasons,
            top_address,
            top_count,
        )
        self._counts.clear()
        self._by_reason.clear()
        self._other_addresses = 0
        return True


_REASON_TEXT = {"unauthorized": "missing or unknown key", "throttled": "throttled after failed attempts"}


class InboxWriter:
    """Group commit: requests that arrive while a commit is running are written together in the next one."""

    def __init__(self, inbox: Inbox, *, max_batch: int = MAX_INBOX_ROWS_PER_COMMIT) -> None:
        if not 1 <= max_batch <= MAX_INBOX_ROWS_PER_COMMIT:
            raise ValueError(f"max_batch must be between 1 and {MAX_INBOX_ROWS_PER_COMMIT}")
        self._inbox = inbox
        self._max_batch = max_batch
        self._queue: list[tuple[InboxEntry, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, entry: InboxEntry) -> int:
        """The new inbox row's id, once committed; raises :class:`StorageUnavailableError` otherwise."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="push-inbox-commit")
        # The commit runs in the flusher task: a client that hangs up cancels only its own future, never a
        # commit other requests are waiting on (the flusher skips futures that are already done).
        return await future

    async def _flush(self) -> None:
        while self._queue:
            if len(self._queue) < self._max_batch:
                # One turn of the event loop first: requests whose bytes have already arrived join this commit.
                # Under concurrency that makes fewer, larger commits (each a round trip to the database thread,
                # ~20% more throughput at 8 clients); a lone request pays one loop turn, a few microseconds.
                await asyncio.sleep(0)
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                ids = await self._inbox.add([entry for entry, _ in batch])
            except Exception as exc:  # any failure to commit must reach every waiting request as a 503
                if isinstance(exc, DatabaseUnavailableError):
                    # Disk full, read-only file: said once by the database's write tracker (and on /healthz);
                    # a traceback per commit would only help fill the disk further.
                    log.warning(
                        "could not store %d push event(s) (%s); the sender is asked to retry", len(batch), exc
                    )
                else:
                    log.exception(
                        "could not store %d push event(s); the sender is asked to retry", len(batch)
                    )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StorageUnavailableError())
                continue
            for (_, future), inbox_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(inbox_id)

    async def drain(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])


class PushIngest:
    def __init__(
        self,
        storage: Storage,
        inbox: Inbox,
        metrics: PushMetrics,
        *,
        on_stored: Callable[[], None],
        throttle: AuthThrottle | None = None,
        rejections: RejectionLog | None = None,
        auth_cache_ttl_s: float = 5.0,
        clock: WallClock = time.time,
        monotonic: MonotonicClock = time.monotonic,
    ) -> None:
        self._storage = storage
        self._metrics = metrics
        self._on_stored = on_stored
        self.throttle = throttle or AuthThrottle()
        self.rejections = rejections or RejectionLog()
        self._writer = InboxWriter(inbox)
        self.dedupe = CrossTransportDedupe(clock=monotonic)
        self._clock = clock
        self._monotonic = monotonic
        self._auth_cache_ttl_s = auth_cache_ttl_s
        # Keyed-hash -> (expiry, guilds): saves a query per event in a burst. Only successes are cached.
        self._auth_cache: OrderedDict[str, tuple[float, tuple[GuildConfig, ...]]] = OrderedDict()
        # Community -> when it last authenticated, stored or not (an unknown type still proves the link works).
        self._last_seen: dict[str, float] = {}
        # Keyed hashes of every configured key, for letting a right key past the throttle without a query.
        self._configured: tuple[float, tuple[str, ...]] | None = None
        self._configured_lock = asyncio.Lock()

    def invalidate_key_cache(self) -> None:
        """Forget cached key lookups, so a changed or removed key takes effect at once."""
        self._auth_cache.clear()
        self._configured = None

    def last_seen(self, community_id: str) -> float | None:
        return self._last_seen.get(community_id)

    async def check_throttle(self, address: str, key: object) -> Answer | None:
        """A 429 answer while ``address`` is blocked, unless ``key`` is a configured key.

        The throttle exists to stop guessing, and a right key is not a guess: refusing it would let anyone who
        shares the CAD's address (the same NAT, a proxy not listed in ``trusted_proxies``) silence the CAD's
        events by sending wrong keys. The check costs one keyed hash and a constant-time comparison with the
        configured keys' hashes held in memory (read at most every 30 s, or after a key changed), so a blocked
        address cannot make the bot query the database per request.
        """
        wait = self.throttle.retry_after(address)
        if wait is None:
            return None
        if await self._is_configured_key(key):
            return None
        self._metrics.received(NO_TYPE_LABEL, "throttled")
        self.rejections.refused(address, "throttled")
        seconds = max(1, int(wait + 0.999))
        return rejected(
            429,
            "throttled",
            f"too many failed attempts from this address; try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )

    async def authenticate(self, key: object, address: str) -> Sequence[GuildConfig] | Answer:
        """The guilds configured with this key, or a 401 answer. Storage errors propagate (-> 503)."""
        guilds = await self._guilds_for(key)
        if not guilds:
            self.throttle.failed(address)
            self._metrics.auth_failures.inc()
            self._metrics.received(NO_TYPE_LABEL, "unauthorized")
            self.rejections.refused(address, "unauthorized")
            return rejected(401, "unauthorized", "the key is missing or matches no community configured here")
        self.throttle.succeeded(address)
        now = self._clock()
        for guild in guilds:
            if guild.community_id:
                self._last_seen[guild.community_id] = now
        return guilds

    async def _is_configured_key(self, key: object) -> bool:
        if not _plausible_key(key) or not self._storage.vault.has_key:
            return False
        candidate = self._storage.vault.push_key_hash(key)
        try:
            configured = await self._configured_hashes()
        except (DatabaseError, OSError):  # the blocked address waits (429), as it would anyway
            log.debug("could not read the configured push keys", exc_info=True)
            return False
        matched = False
        for known in configured:  # every hash is compared, so the time taken does not depend on which matched
            matched |= hmac.compare_digest(known, candidate)
        return matched

    async def _configured_hashes(self) -> tuple[str, ...]:
        now = self._monotonic()
        if self._configured is not None and self._configured[0] > now:
            return self._configured[1]
        async with self._configured_lock:
            if self._configured is not None and self._configured[0] > now:
                return self._configured[1]
            hashes = tuple(sorted(await self._storage.guilds.all_push_key_hashes()))
            # Keys changed by /setup invalidate this at once; the TTL covers the admin CLI in another process.
            self._configured = (self._monotonic() + CONFIGURED_KEYS_TTL_S, hashes)
            return hashes

    async def _guilds_for(self, key: object) -> tuple[GuildConfig, ...]:
        if not _plausible_key(key):
            return ()
        vault = self._storage.vault
        if not vault.has_key:
            return ()
        expected = vault.push_key_hash(key)
        now = self._monotonic()
        cached = self._auth_cache.get(expected)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._storage.guilds.guilds_for_push_key(key)
        # The lookup is by hash already; comparing again in constant time keeps timing from telling anything.
        matched = tuple(
            guild
            for guild in found
            if guild.push_key_hash is not None and hmac.compare_digest(guild.push_key_hash, expected)
        )
        if matched:
            self._auth_cache[expected] = (now + self._auth_cache_ttl_s, matched)
            self._auth_cache.move_to_end(expected)
            while len(self._auth_cache) > 1000:
                self._auth_cache.popitem(last=False)
        return matched

    async def receive_pushed(
        self,
        envelope: Mapping[str, Any],
        *,
        source: str,
        community_id: str,
        server_id: int | None,
        transport: str = WEBSOCKET,
    ) -> Answer:
        """An envelope that did not come through the HTTP listener (a websocket ``pushEvent`` of the session of
        ``community_id``): the same key check (constant time, against the configured keys) and the same
        :meth:`accept` as an HTTP POST. A key of another community is as wrong as an unknown one: a session
        only ever speaks for its own community. ``source`` names the sender in refusal logs (never the key)."""
        result = await self.authenticate(envelope.get("key"), source)
        if isinstance(result, Answer):
            return result
        own = [guild for guild in result if guild.community_id == community_id]
        if not own:
            self._metrics.auth_failures.inc()
            self._metrics.received(NO_TYPE_LABEL, "unauthorized")
            self.rejections.refused(source, "unauthorized")
            return rejected(401, "unauthorized", "the key belongs to another community than this session's")
        return await self.accept(envelope, own, server_id, transport=transport)

    async def accept(
        self,
        envelope: Mapping[str, Any],
        guilds: Sequence[GuildConfig],
        server_id: int | None,
        *,
        transport: str = HTTP,
    ) -> Answer:
        """Check ``type``, then store the event for its guilds. Content problems are acknowledged (2xx); so is
        the other transport's copy of an event already stored (see :mod:`bot.push.dedupe`)."""
        raw_type = envelope.get("type")
        if not isinstance(raw_type, str) or not raw_type.strip():
            self._metrics.received(NO_TYPE_LABEL, "bad_request")
            return rejected(400, "bad_request", "`type` is missing or not a string")
        event_type = raw_type.strip().upper()[:MAX_TYPE_CHARS]
        label = type_label(event_type)
        targets = [guild for guild in guilds if server_id is None or guild.server_id == server_id]
        if not targets:
            self._metrics.received(label, "no_guild")
            return self._acknowledged("ignored", f"no guild here uses CAD server {server_id}")
        if event_type in IGNORED_EVENT_TYPES:
            self._metrics.received(label, "ignored")
            return self._acknowledged("ignored", "this event type carries nothing to post")
        if event_type not in EVENT_MODELS:
            self._metrics.received(label, "unknown_type")
            log.info("push event of unknown type %.60r acknowledged and ignored", event_type)
            return self._acknowledged("ignored", "unknown event type")
        data = envelope.get("data")
        if not isinstance(data, dict | list) or not data:
            self._metrics.received(label, "invalid_data")
            log.info("push event %s without usable data acknowledged and ignored", event_type)
            return self._acknowledged("ignored", "`data` is missing or not an object or array")
        if self.dedupe.is_copy(targets[0].community_id or "", transport, envelope):
            self._metrics.received(label, "duplicate")
            return self._acknowledged("duplicate", "already received over the other transport")
        entry = InboxEntry(
            received_at=self._clock(),
            event_type=event_type,
            community_id=targets[0].community_id,
            guild_ids=tuple(guild.guild_id for guild in targets),
            body={name: value for name, value in envelope.items() if name != "key"},
        )
        try:
            inbox_id = await self._writer.write(entry)
        except StorageUnavailableError:
            self._metrics.received(label, "storage_unavailable")
            return storage_unavailable()
        self._metrics.received(label, "accepted")
        self._on_stored()
        return Answer(200, {"ok": True, "status": "accepted", "id": inbox_id, "guilds": len(targets)})

    def _acknowledged(self, status: str, reason: str) -> Answer:
        return Answer(200, {"ok": True, "status": status, "reason": reason})

    async def drain(self) -> None:
        """Wait for a commit in progress and log the refusals counted so far (used when the listener stops)."""
        await self._writer.drain()
        self.rejections.flush()


def _plausible_key(key: object) -> TypeGuard[str]:
    """Worth hashing: a non-blank string no longer than any real key."""
    return isinstance(key, str) and bool(key.strip()) and len(key) <= MAX_KEY_CHARS


def storage_unavailable() -> Answer:
    return rejected(
        503,
        "storage_unavailable",
        "the event could not be stored; please retry",
        {"Retry-After": str(STORAGE_RETRY_AFTER_S)},
    )
