"""What formatters need to know beyond the event itself, plus the CAD's enum labels and our colours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from bot.formatting.text import neutralise

DEFAULT_STATUS_LABELS: Mapping[int, str] = MappingProxyType(
    {0: "UNAVAILABLE", 1: "BUSY", 2: "AVAILABLE", 3: "ENROUTE", 4: "ON_SCENE"}
)
CALL_ORIGIN_LABELS: Mapping[int, str] = MappingProxyType(
    {0: "Caller", 1: "Radio dispatch", 2: "Observed", 3: "Walk-up"}
)
CALL_STATUS_LABELS: Mapping[int, str] = MappingProxyType({0: "PENDING", 1: "ACTIVE", 2: "CLOSED"})
RECORD_TYPE_LABELS: Mapping[int, str] = MappingProxyType(
    {
        2: "Warrant",
        3: "BOLO",
        4: "License",
        5: "Vehicle Registration",
        7: "Character",
        8: "Police Record",
        9: "Police Report",
        10: "Medical Record",
        11: "Medical Report",
        12: "Fire Record",
        13: "Fire Report",
        14: "DMV Record",
        15: "Law Record",
        16: "Law Report",
    }
)
TONE_TARGET_LABELS: Mapping[int, str] = MappingProxyType(
    {
        0: "All active units",
        1: "Call",
        2: "Agency",
        3: "Department",
        4: "Subdivision",
        5: "Unit",
        6: "Unit group",
    }
)


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


def _default_status_labels() -> Mapping[int, str]:
    return DEFAULT_STATUS_LABELS


@dataclass(frozen=True)
class FormatContext:
    """Per-guild facts for formatting: who the community is, what its units and statuses are called.

    ``unit_names`` maps identifier IDs to display names ("1A-12 Jordan Reyes") the bot has learnt;
    ``status_labels`` the community's status names (CAD defaults otherwise); ``now`` the embed time.
    """

    community_label: str
    unit_names: Mapping[int, str] = field(default_factory=dict)
    status_labels: Mapping[int, str] = field(default_factory=_default_status_labels)
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
        """Safe label for a unit status: the community's name for it, else "Code 7"."""
        if status is None:
            return "Unknown"
        label = neutralise(self.status_labels.get(status, "")).strip()
        return label or f"Code {status}"
