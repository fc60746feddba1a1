"""Per-community unit names ("1A-12 Jordan Reyes"): learnt from the units the CAD lists, kept for every embed.

Stored in SQLite (``bot.storage.unit_names``) so names survive a restart, cached in memory because every embed
needs them. The processor learns them from login/update/status events inside its batch transaction; commands
teach the units they read from the CAD through :meth:`UnitDirectory.learn_units`.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from bot.cad import events as ev
from bot.cad.models import Unit
from bot.storage.unit_names import UnitNames


def names_of(units: Iterable[Unit]) -> dict[int, str]:
    return {unit.id: unit.display_name for unit in units if unit.display_name.strip()}


def units_named_by(event: ev.PushEvent) -> dict[int, str]:
    if isinstance(event, ev.UnitLoginEvent):
        return names_of([event.unit])
    if isinstance(event, ev.UnitUpdateEvent | ev.UnitStatusEvent):
        return names_of(event.units)
    return {}


class UnitDirectory:
    """Per-community unit names ("1A-12 Jordan Reyes"), learnt from login/update/status events.

    Stored in SQLite so names survive a restart; cached in memory because every embed needs them. The cache
    changes only once what was learnt is committed (:meth:`committed`).
    """

    def __init__(self, stored: UnitNames) -> None:
        self._stored = stored
        self._cache: dict[str, dict[int, str]] = {}

    async def names(self, community_id: str | None) -> Mapping[int, str]:
        if not community_id:
            return {}
        return MappingProxyType(await self._known(community_id))

    async def with_learnt(self, community_id: str | None, learnt: dict[int, str]) -> Mapping[int, str]:
        """The names as they will be once ``learnt`` (not committed yet, and still growing) is."""
        if not community_id:
            return {}
        return ChainMap(learnt, await self._known(community_id))

    async def learn_units(self, community_id: str | None, units: Iterable[Unit]) -> None:
        """Remember at once the names of units the CAD listed (for callers outside the processor, e.g. a
        command that read the units on duty)."""
        if not community_id:
            return
        known = await self._known(community_id)
        changed = {ident: label for ident, label in names_of(units).items() if known.get(ident) != label}
        if not changed:
            return
        await self._stored.remember(community_id, changed)
        known.update(changed)

    def committed(self, learnt: Mapping[str, Mapping[int, str]]) -> None:
        for community_id, names in learnt.items():
            # A community never loaded stays unloaded: a partial cache would hide the stored names.
            cached = self._cache.get(community_id)
            if cached is not None:
                cached.update(names)

    async def _known(self, community_id: str) -> dict[int, str]:
        cached = self._cache.get(community_id)
        if cached is None:
            loaded = await self._stored.get(community_id)
            # Another caller may have loaded (and since taught) the names while this one read: keep theirs,
            # or a name learnt meanwhile would vanish from the cache.
            cached = self._cache.setdefault(community_id, loaded)
        return cached
