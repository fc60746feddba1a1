"""What formatters need to know beyond the event itself (the community's unit names and status labels), and
our colours. The CAD's own labels for its codes are in :mod:`bot.cad.codes`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from bot.cad.codes import UNIT_STATUS
from bot.formatting.text import neutralise


class Colour:
    """Embed colours by urgency: red demands action, amber needs attention, the rest inform."""

    RED = 0xD32F2F
    AMBER = 0xF2A900
    GREEN = 0x2E7D32
    GREY = 0x757575
    NEUTRAL = 0x546E7A
    INFO = 0x1E88E5
    DISPATCH = 0x5865F2
    PRIORITY: Mapping[int, int] = MappingProxyType({1: 0xE65100, 2: 0xF9A825, 3: 0x1E88E5})

    @classmethod
    def for_priority(cls, priority: int | None) -> int:
        if priority is None:
            return cls.DISPATCH
        return cls.PRIORITY.get(priority, cls.DISPATCH)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def unit_status_text(status: int | None, custom: Mapping[int, str] | None = None) -> str:
    """What every screen shows for a unit status: the community's own label for it (CAD text, neutralised)
    when ``custom`` has one, else the CAD's default (``Available``), else ``Code 7``; ``Unknown`` for none."""
    own = neutralise(custom.get(status, "")).strip() if custom and status is not None else ""
    return own or UNIT_STATUS.label(status)


@dataclass(frozen=True)
class FormatContext:
    """Per-guild facts for formatting: who the community is, what its units and statuses are called.

    ``unit_names`` maps identifier IDs to display names ("1A-12 Jordan Reyes") the bot has learnt;
    ``status_labels`` the community's own names for status codes (the CAD's defaults otherwise); ``now`` the
    embed time.
    """

    community_label: str
    unit_names: Mapping[int, str] = field(default_factory=dict)
    status_labels: Mapping[int, str] = field(default_factory=dict)
    now: datetime = field(default_factory=_utc_now)

    @property
    def timestamp(self) -> str:
        moment = self.now if self.now.tzinfo is not None else self.now.replace(tzinfo=UTC)
        return moment.isoformat()

    @property
    def footer(self) -> dict[str, str]:
        label = neutralise(self.community_label).strip()
        return {"text": label or "Sonoran CAD"}

    def unit_label(self, ident: int | None, own_name: str = "") -> str:
        """Safe display name for a unit: the name the event itself carries (freshest), else the name the
        bot has learnt, else "Unit #57"."""
        name = neutralise(own_name).strip()
        if not name and ident is not None:
            name = neutralise(self.unit_names.get(ident, "")).strip()
        if name:
            return name
        return f"Unit #{ident}" if ident is not None else "Unknown unit"

    def status_label(self, status: int | None) -> str:
        """Safe label for a unit status (see :func:`unit_status_text`)."""
        return unit_status_text(status, self.status_labels)
