"""Sonoran CAD subscription tiers and the minimum tier each v1 request type needs.

The CAD is the authority on what a community may call (Sonoran.js stopped checking client-side); the bot uses
these numbers only to hide or explain commands before a request is wasted. ``MIN_TIER`` follows the
majority rule of the shared v1 contract (restrictions table, endpoint page, Sonoran.js ``minVersion``).
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any

_LEADING_INTEGER = re.compile(r"^\s*(\d+)")


class Tier(IntEnum):
    """A community's plan. Compare with ``>=``; there is no tier 5 in any source."""

    FREE = 0
    STARTER = 1
    STANDARD = 2
    PLUS = 3
    PRO = 4
    SONORAN_ONE = 6

    @classmethod
    def _missing_(cls, value: object) -> Tier | None:
        # A plan number we have never seen (5, 7, ...) must still compare numerically, so it becomes a
        # pseudo-member that keeps its number instead of failing or being rounded to a known plan.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            member = int.__new__(cls, value)
            member._name_ = f"TIER_{value}"
            member._value_ = value
            known = cls._value2member_map_.setdefault(value, member)
            return known if isinstance(known, cls) else None
        return None

    @property
    def is_known(self) -> bool:
        return self.value in _SHORT_NAMES

    @property
    def short_name(self) -> str:
        """The plan as people say it: ``Plus``, ``Pro``, ``Sonoran One``."""
        return _SHORT_NAMES.get(self.value, f"plan {self.value}")

    @property
    def display_name(self) -> str:
        """The product name: ``Sonoran CAD Pro``."""
        if self.value == 6:
            return "Sonoran One"
        if self.is_known:
            return f"Sonoran CAD {self.short_name}"
        return f"Sonoran CAD plan {self.value}"


_SHORT_NAMES: dict[int, str] = {
    0: "Free",
    1: "Starter",
    2: "Standard",
    3: "Plus",
    4: "Pro",
    6: "Sonoran One",
}


def parse_tier(text: Any) -> Tier:
    """Read the plan from a ``GET_VERSION`` body such as ``"4 - PRO"`` (only the leading integer counts).

    Unknown numbers are kept (``Tier(5)`` compares as Pro-or-better). Raises ``ValueError`` when the text
    does not start with a number.
    """
    if isinstance(text, bool):
        raise ValueError("a plan tier is not a boolean")
    if isinstance(text, int):
        return Tier(text)
    match = _LEADING_INTEGER.match(str(text))
    if match is None:
        raise ValueError("the CAD's version answer does not start with a plan number")
    return Tier(int(match.group(1)))


S, P3, P4 = Tier.STANDARD, Tier.PLUS, Tier.PRO

# Minimum plan per request type (majority rule; disputed types noted where the majority decided).
MIN_TIER: dict[str, Tier] = {
    # 911 / emergency calls
    "CALL_911": S,
    "REMOVE_911": S,
    "GET_CALLS": P3,
    "GET_MY_CALL": P3,
    # dispatch calls
    "NEW_DISPATCH": P3,
    "EDIT_DISPATCH": P3,
    "ATTACH_UNIT": P3,
    "DETACH_UNIT": P3,
    "ADD_CALL_NOTE": P3,
    "CLOSE_CALL": S,  # disputed: restrictions table says Plus, page and SDK say Standard
    "SET_CALL_POSTAL": P3,
    "SET_CALL_PRIMARY": P3,
    # units / identifiers
    "UNIT_PANIC": S,
    "UNIT_STATUS": S,
    "GET_ACTIVE_UNITS": P3,
    "KICK_UNIT": S,
    "GET_IDENTIFIERS": P3,  # disputed: table Standard, page Plus, SDK Plus
    "SET_IDENTIFIER": P3,
    "MODIFY_IDENTIFIER": P4,
    "IDENTS_TO_GROUP": P4,
    "UNIT_LOCATION": S,
    # live-map blips
    "GET_BLIPS": P4,
    "ADD_BLIP": P4,
    "MODIFY_BLIP": P4,
    "REMOVE_BLIP": P4,
    # lookups and records
    "LOOKUP": P3,
    "LOOKUP_INT": P3,
    "LOOKUP_CUSTOM": P3,
    "GET_TEMPLATES": S,  # disputed: page says Plus
    "NEW_RECORD": P3,
    "EDIT_RECORD": P3,
    "REMOVE_RECORD": P3,
    # accounts and linking
    "GET_ACCOUNT": P3,
    "GET_ACCOUNTS": P3,
    "CHECK_APIID": S,
    "SET_API_ID": S,
    "VERIFY_SECRET": S,
    "APPLY_PERMISSION_KEY": P3,
    "SET_ACCOUNT_PERMISSIONS": P3,
    "BAN_USER": P3,
    # community / config
    "GET_VERSION": Tier.FREE,
    "GET_SERVERS": S,
    "SET_SERVERS": P3,
    "SET_PENAL_CODES": S,
    "SET_POSTALS": P4,
    "SET_CLOCK": S,  # disputed: SDK says Plus
    "HEARTBEAT": S,
    "SEND_DRAFT": P3,
    "SEND_PHOTO": P4,
    "AUTH_STREETSIGNS": P4,
    "SET_STREETSIGN_CONFIG": P4,
    "UPDATE_STREETSIGN": P4,
    "SET_AVAILABLE_CALLOUTS": P4,
    "SET_STATIONS": P3,
    "GET_PAGER_CONFIG": P3,
    "SET_PAGER_CONFIG": P3,
    # civilian
    "GET_CHARACTERS": S,  # disputed: page says Plus
    "SET_CHARACTER": P3,
    "NEW_CHARACTER": S,  # disputed: page says Plus
    "EDIT_CHARACTER": S,  # disputed: page says Plus
    "REMOVE_CHARACTER": S,  # disputed: page says Plus
    "GET_CHARACTER_LINKS": P3,
    "LINK_CHARACTER": P3,
}

del S, P3, P4


def required_tier(request_type: str) -> Tier | None:
    """The minimum plan for ``request_type``, or ``None`` when no source states one."""
    return MIN_TIER.get(request_type.upper())


def tier_from_plan_name(name: Any) -> Tier | None:
    """The plan v2 ``/general/version`` names (``"PLUS"``, ``"Sonoran One"``), or ``None`` for a name we
    do not know. v2 reports the plan by name; its number does not follow v1's table, so the name wins."""
    if not isinstance(name, str):
        return None
    words = " ".join(name.replace("_", " ").replace("-", " ").upper().split())
    words = words.removeprefix("SONORAN CAD ").strip()
    for tier, short in _SHORT_NAMES.items():
        if words == short.upper():
            return Tier(tier)
    return None
