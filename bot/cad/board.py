"""The CAD's rate-limited reads, kept briefly per community: units on duty, open calls, the account a Discord
user linked, and the dispatch templates.

``GET_ACTIVE_UNITS`` is the CAD's most tightly rate-limited read (v2 allows 3 a minute) and ``GET_CALLS`` is
not far behind (~5 a minute); after a 429 the client pauses the type for a minute, which would break every
feature that reads it. So every reader in the process (``/units``, ``/calls``, naming the unit in a ``/panic``
alert, the dispatcher's call picker and checks) shares ONE :class:`CadBoard`: a busy guild costs one request
per community and server per TTL, whoever asks.

Readers get the list and its age in seconds, so replies can say "as of 12 s ago", and a reader that needs
something newer (a call opened a moment ago) can :meth:`CadBoard.invalidate_calls` and read again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

from bot.cad.errors import CadNotLinkedError
from bot.cad.interface import CadApi
from bot.cad.models import Account, CadCredentials, CallsSnapshot, DispatchTemplate, MemberTarget, Unit
from bot.cad.v2 import CadV2Client
from bot.timing import IdleWait, MonotonicClock

log = logging.getLogger(__name__)

UNITS_TTL_S = 20.0
CALLS_TTL_S = 10.0
# v2 allows 10 account reads a minute per key, shared by every guild on it: who a Discord user is in the CAD
# changes rarely, so it is kept for minutes; "not linked" is asked again sooner (they may be linking now).
ACCOUNT_TTL_S = 300.0
NOT_LINKED_RECHECK_S = 60.0
# Dispatch templates change when an admin edits them in the CAD; autocomplete asks on every keystroke.
TEMPLATES_TTL_S = 120.0

_V = TypeVar("_V")
BoardKey = tuple[str, int, str]


def _monotonic() -> float:
    # Looked up on every call (not bound at import) so a test clock that replaces time.monotonic applies.
    return time.monotonic()


@dataclass(frozen=True, slots=True)
class _Entry(Generic[_V]):
    value: _V
    fetched_at: float


class TtlCache(Generic[_V]):
    """Values kept for ``ttl_s`` per key; concurrent misses on one key share a single fetch.

    The fetch runs as its own task, so a caller that stops waiting (its own time budget ran out) leaves the
    answer in the cache for the next caller instead of paying for a request nobody reads. Failures are not
    cached, so the next caller tries again. :meth:`invalidate` also keeps a fetch already in flight from
    storing its answer, which may predate whatever made the caller invalidate.
    """

    def __init__(
        self, ttl_s: float, *, clock: MonotonicClock = _monotonic, shared_wait: IdleWait | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.ttl_s = ttl_s
        self.shared_wait = shared_wait
        self._clock = clock
        self._entries: dict[Hashable, _Entry[_V]] = {}
        self._fetches: dict[Hashable, asyncio.Task[_Entry[_V]]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[_V]]) -> tuple[_V, float]:
        """The cached value for ``key`` (fetched when missing or stale) and its age in seconds."""
        entry = self._fresh(key)
        if entry is None:
            task = self._fetches.get(key)
            if task is None:
                task = asyncio.create_task(self._fill(key, fetch), name="cad-board-fetch")
                self._fetches[key] = task
                task.add_done_callback(partial(self._fetch_done, key))
            shielded = asyncio.shield(task)
            entry = await (self.shared_wait(shielded) if self.shared_wait is not None else shielded)
        return entry.value, max(0.0, self._clock() - entry.fetched_at)

    def invalidate(self, key: Hashable) -> None:
        self._entries.pop(key, None)
        # Callers already waiting still get that fetch's answer; later callers start a fresh one.
        self._fetches.pop(key, None)

    def known_keys(self) -> set[Hashable]:
        """Keys with a value or a fetch in flight."""
        return set(self._entries) | set(self._fetches)

    async def close(self) -> None:
        """Cancel fetches in flight (shutdown), so none outlives its owner."""
        tasks = list(self._fetches.values())
        self._fetches.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _fresh(self, key: Hashable) -> _Entry[_V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry.fetched_at >= self.ttl_s:
            del self._entries[key]
            return None
        return entry

    async def _fill(self, key: Hashable, fetch: Callable[[], Awaitable[_V]]) -> _Entry[_V]:
        value = await fetch()
        entry = _Entry(value, self._clock())
        if self._fetches.get(key) is asyncio.current_task():  # not invalidated meanwhile
            self._forget_stale()
            self._entries[key] = entry
        return entry

    def _fetch_done(self, key: Hashable, task: asyncio.Task[_Entry[_V]]) -> None:
        if self._fetches.get(key) is task:
            del self._fetches[key]
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so a failure nobody waited for any more is not reported as "never retrieved";
            # callers that waited got it themselves.
            log.debug("cache fetch failed: %s", type(task.exception()).__name__)

    def _forget_stale(self) -> None:
        now = self._clock()
        for key in [key for key, entry in self._entries.items() if now - entry.fetched_at >= self.ttl_s]:
            del self._entries[key]


def _key(creds: CadCredentials) -> BoardKey:
    # The key's digest is part of the cache key: a guild that typed another community's id with a wrong (or
    # stale) key must get the CAD's refusal, never the list a correctly configured guild fetched.
    digest = hashlib.sha256(creds.api_key.get_secret_value().encode()).hexdigest()[:16]
    return (creds.community_id, creds.server_id, digest)


class CadBoard:
    """Units on duty and open calls per (community, CAD server), shared by every reader in the process.

    ``cad`` is the client itself or a callable returning the current one; the bot passes
    ``lambda: services.cad`` so a swapped client (tests) is used for the next fetch. Plan checks stay with
    the callers (``cad.explain_refusal``); CAD errors reach every caller that waited on the failed fetch.
    Treat what comes back as read-only: it is shared.

    ``shared_wait`` (settable later) wraps each caller's wait for the read, which runs in a task of its own;
    like the pipeline's ``idle_wait`` it lets SimCord tests declare that wait. Production leaves it None.
    """

    def __init__(
        self,
        cad: CadApi | Callable[[], CadApi],
        *,
        units_ttl_s: float = UNITS_TTL_S,
        calls_ttl_s: float = CALLS_TTL_S,
        clock: MonotonicClock = _monotonic,
        shared_wait: IdleWait | None = None,
    ) -> None:
        self._current_cad: Callable[[], CadApi] = cad if callable(cad) else (lambda: cad)
        self._units: TtlCache[list[Unit]] = TtlCache(units_ttl_s, clock=clock, shared_wait=shared_wait)
        self._calls: TtlCache[CallsSnapshot] = TtlCache(calls_ttl_s, clock=clock, shared_wait=shared_wait)
        self._accounts: TtlCache[Account | None] = TtlCache(
            ACCOUNT_TTL_S, clock=clock, shared_wait=shared_wait
        )
        self._templates: TtlCache[list[DispatchTemplate]] = TtlCache(
            TEMPLATES_TTL_S, clock=clock, shared_wait=shared_wait
        )

    @property
    def shared_wait(self) -> IdleWait | None:
        return self._units.shared_wait

    @shared_wait.setter
    def shared_wait(self, hook: IdleWait | None) -> None:
        self._units.shared_wait = hook
        self._calls.shared_wait = hook
        self._accounts.shared_wait = hook
        self._templates.shared_wait = hook

    @property
    def units_ttl_s(self) -> float:
        return self._units.ttl_s

    @property
    def calls_ttl_s(self) -> float:
        return self._calls.ttl_s

    async def active_units(self, creds: CadCredentials) -> tuple[list[Unit], float]:
        """Units logged in on the community's server (``GET_ACTIVE_UNITS``) and the list's age in seconds."""
        cad = self._current_cad()

        async def fetch() -> list[Unit]:
            return await cad.get_active_units(creds)

        units, age_s = await self._units.get(_key(creds), fetch)
        return list(units), age_s

    async def calls(self, creds: CadCredentials) -> tuple[CallsSnapshot, float]:
        """Open dispatch calls and open 911 calls (``GET_CALLS``) and the snapshot's age in seconds."""
        cad = self._current_cad()

        async def fetch() -> CallsSnapshot:
            # Only what is open is shown or checked; closed calls would cost bandwidth for nothing.
            return await cad.get_calls(creds, closed_limit=0)

        return await self._calls.get(_key(creds), fetch)

    async def discord_account(self, creds: CadCredentials, discord_id: str) -> Account | None:
        """The CAD account that linked Discord user ``discord_id`` (v2 ``get_account?discord=``), or None when
        the CAD says none did. Kept :data:`ACCOUNT_TTL_S`; a "none" older than :data:`NOT_LINKED_RECHECK_S` is
        asked again. CAD errors (and v1, which cannot ask) reach the caller and are not kept."""
        cad = self._current_cad()
        key = (*_key(creds), discord_id)

        async def fetch() -> Account | None:
            try:
                return await cad.get_account(creds, target=MemberTarget.discord(discord_id))
            except CadNotLinkedError:
                return None

        account, age_s = await self._accounts.get(key, fetch)
        if account is None and age_s >= NOT_LINKED_RECHECK_S:
            self._accounts.invalidate(key)
            account, _ = await self._accounts.get(key, fetch)
        return account

    async def dispatch_templates(self, cad: CadV2Client, creds: CadCredentials) -> list[DispatchTemplate]:
        """The community's dispatch templates (v2 only: ``cad`` is the v2 client), kept :data:`TEMPLATES_TTL_S`."""

        async def fetch() -> list[DispatchTemplate]:
            return await cad.get_dispatch_templates(creds)

        templates, _ = await self._templates.get(_key(creds), fetch)
        return list(templates)

    def forget_account(self, community_id: str, discord_id: str) -> None:
        """Ask the CAD again next time (the member just linked or unlinked)."""
        for key in self._accounts.known_keys():
            if isinstance(key, tuple) and key[0] == community_id and key[-1] == discord_id:
                self._accounts.invalidate(key)

    def invalidate_units(self, community_id: str, server_id: int | None = None) -> None:
        """Read the units again next time (one server of the community, or all of them)."""
        _invalidate(self._units, community_id, server_id)

    def invalidate_calls(self, community_id: str, server_id: int | None = None) -> None:
        """Read the calls again next time, e.g. after the bot created or closed one."""
        _invalidate(self._calls, community_id, server_id)

    async def close(self) -> None:
        """Cancel reads in flight (the bot stops), so none outlives it."""
        await self._units.close()
        await self._calls.close()
        await self._accounts.close()
        await self._templates.close()


def _invalidate(cache: TtlCache[_V], community_id: str, server_id: int | None) -> None:
    for key in cache.known_keys():
        if isinstance(key, tuple) and key[0] == community_id and (server_id is None or key[1] == server_id):
            cache.invalidate(key)
