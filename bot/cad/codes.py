"""The CAD's numeric codes, one table each, and the one label every screen shows for a code.

``/units``, the status picker, push embeds, live cards and replies all read their words from here, so a code
reads the same wherever a member meets it. Labels are sentence case ("En route", not the contract's
``ENROUTE``). A code the table does not know (communities add their own unit statuses) reads ``Code 7``
everywhere, which is also what members type into ``/unit status code:``; a code the CAD did not send at all
reads ``Unknown``. Communities may relabel unit statuses; ``bot.formatting.context.unit_status_text`` puts
their labels (CAD text, so neutralised) ahead of this table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

UNKNOWN = "Unknown"
"""What a code reads as when the CAD did not send one."""


@dataclass(frozen=True)
class CodeTable:
    """The labels of one CAD code. ``unknown`` is the one rendering of a code not in ``labels``, ``missing``
    what shows when the CAD sent no code at all."""

    labels: Mapping[int, str]
    unknown: str = "Code {code}"
    missing: str = UNKNOWN

    def known(self, code: int | None) -> str | None:
        """The label of a code this table knows, else None."""
        return self.labels.get(code) if code is not None else None

    def label(self, code: int | None) -> str:
        """What a screen shows for ``code``: this table's label, else the unknown-code rendering, else (no
        code) ``missing``."""
        if code is None:
            return self.missing
        return self.labels.get(code) or self.unknown.format(code=code)

    def __contains__(self, code: object) -> bool:
        return code in self.labels


def _table(labels: dict[int, str], unknown: str = "Code {code}", missing: str = UNKNOWN) -> CodeTable:
    return CodeTable(MappingProxyType(labels), unknown, missing)


# ---------------------------------------------------------------------------------------------- unit status


class UnitStatus(IntEnum):
    """The CAD's default unit statuses (communities relabel them and add their own numbers)."""

    UNAVAILABLE = 0
    BUSY = 1
    AVAILABLE = 2
    ENROUTE = 3
    ON_SCENE = 4
    OFFLINE = 100  # v2 only

    @property
    def label(self) -> str:
        return UNIT_STATUS.label(self)


UNIT_STATUS = _table(
    {
        UnitStatus.UNAVAILABLE: "Unavailable",
        UnitStatus.BUSY: "Busy",
        UnitStatus.AVAILABLE: "Available",
        UnitStatus.ENROUTE: "En route",
        UnitStatus.ON_SCENE: "On scene",
        UnitStatus.OFFLINE: "Offline",
    }
)

SETTABLE_UNIT_STATUSES: tuple[UnitStatus, ...] = (
    UnitStatus.UNAVAILABLE,
    UnitStatus.BUSY,
    UnitStatus.AVAILABLE,
    UnitStatus.ENROUTE,
    UnitStatus.ON_SCENE,
)
"""The defaults a member picks from (Offline is logging off, not a status one sets)."""


# ---------------------------------------------------------------------------------------------- calls


class CallStatus(IntEnum):
    PENDING = 0
    ACTIVE = 1
    CLOSED = 2

    @property
    def label(self) -> str:
        return CALL_STATUS.label(self)


CALL_STATUS = _table(
    {CallStatus.PENDING: "Pending", CallStatus.ACTIVE: "Active", CallStatus.CLOSED: "Closed"}
)


class CallOrigin(IntEnum):
    CALLER = 0
    RADIO_DISPATCH = 1
    OBSERVED = 2
    WALK_UP = 3

    @property
    def label(self) -> str:
        return CALL_ORIGIN.label(self)


CALL_ORIGIN = _table(
    {
        CallOrigin.CALLER: "Caller",
        CallOrigin.RADIO_DISPATCH: "Radio dispatch",
        CallOrigin.OBSERVED: "Observed",
        CallOrigin.WALK_UP: "Walk-up",
    }
)


class CallPriority(IntEnum):
    URGENT = 1
    NORMAL = 2
    LOW = 3

    @property
    def label(self) -> str:
        return CALL_PRIORITY.label(self)


# A priority is a number by nature: one outside 1-3 still reads as "P4".
CALL_PRIORITY = _table(
    {CallPriority.URGENT: "P1", CallPriority.NORMAL: "P2", CallPriority.LOW: "P3"}, unknown="P{code}"
)


# ---------------------------------------------------------------------------------------------- records


class RecordType(IntEnum):
    WARRANT = 2
    BOLO = 3
    LICENSE = 4
    VEHICLE_REGISTRATION = 5
    CHARACTER = 7
    POLICE_RECORD = 8
    POLICE_REPORT = 9
    MEDICAL_RECORD = 10
    MEDICAL_REPORT = 11
    FIRE_RECORD = 12
    FIRE_REPORT = 13
    DMV_RECORD = 14
    LAW_RECORD = 15
    LAW_REPORT = 16

    @property
    def label(self) -> str:
        return RECORD_TYPE.label(self)


# A record of a type the table does not know (or of none) is named by its template (``CustomRecord.name``),
# else "Record".
RECORD_TYPE = _table(
    {
        RecordType.WARRANT: "Warrant",
        RecordType.BOLO: "BOLO",
        RecordType.LICENSE: "License",
        RecordType.VEHICLE_REGISTRATION: "Vehicle Registration",
        RecordType.CHARACTER: "Character",
        RecordType.POLICE_RECORD: "Police Record",
        RecordType.POLICE_REPORT: "Police Report",
        RecordType.MEDICAL_RECORD: "Medical Record",
        RecordType.MEDICAL_REPORT: "Medical Report",
        RecordType.FIRE_RECORD: "Fire Record",
        RecordType.FIRE_REPORT: "Fire Report",
        RecordType.DMV_RECORD: "DMV Record",
        RecordType.LAW_RECORD: "Law Record",
        RecordType.LAW_REPORT: "Law Report",
    },
    unknown="Record",
    missing="Record",
)


# ---------------------------------------------------------------------------------------------- tones


class ToneTargetType(IntEnum):
    """Whom ``EVENT_TONE`` played to (``tone_target_type``)."""

    ALL_UNITS = 0
    CALL = 1
    AGENCY = 2
    DEPARTMENT = 3
    SUBDIVISION = 4
    UNIT = 5
    UNIT_GROUP = 6


TONE_TARGET = _table(
    {
        ToneTargetType.ALL_UNITS: "All active units",
        ToneTargetType.CALL: "Call",
        ToneTargetType.AGENCY: "Agency",
        ToneTargetType.DEPARTMENT: "Department",
        ToneTargetType.SUBDIVISION: "Subdivision",
        ToneTargetType.UNIT: "Unit",
        ToneTargetType.UNIT_GROUP: "Unit group",
    },
    unknown="Target",
    missing="Target",
)
