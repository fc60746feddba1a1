"""Replies to dispatcher actions (/dispatch and the card buttons) and the call picker's choices.

Pure functions returning text. Unit names from the CAD and member names from Discord are neutralised before
they are echoed; autocomplete choice names are plain text (Discord shows them without markdown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.cad.models import DispatchCall
from bot.formatting.text import neutralise, repair_surrogates, truncate

MAX_CHOICES = 25
CHOICE_NAME_LIMIT = 100
_NAME_LIMIT = 80
_SHOWN_NAMES = 5

# Invisible or direction-changing characters make a picker entry read as something else.
_INVISIBLE = re.compile("[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _plain(text: str | None) -> str:
    """One line of plain text: controls dropped, runs of whitespace collapsed."""
    if not text:
        return ""
    return " ".join(_INVISIBLE.sub(" ", repair_surrogates(str(text))).split())


def _bold(name: str) -> str:
    shown = truncate(neutralise(name).strip(), _NAME_LIMIT)
    return f"**{shown}**" if shown else "**someone**"


def _names(names: Sequence[str]) -> str:
    shown = [_bold(name) for name in names[:_SHOWN_NAMES]]
    if len(names) > _SHOWN_NAMES:
        shown.append(f"{len(names) - _SHOWN_NAMES} more")
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]


# ---------------------------------------------------------------------------------------------- call picker


def call_choice_name(call: DispatchCall) -> str:
    """``#311 Traffic Stop — Legion Square`` (title, else code; address when known), at most 100 characters."""
    name = _plain(call.title) or _plain(call.code)
    place = _plain(call.address)
    text = f"#{call.call_id}"
    if name:
        text += f" {name}"
    if place:
        text += f" — {place}"
    return truncate(text, CHOICE_NAME_LIMIT)


def _matches(call: DispatchCall, typed: str) -> bool:
    if not typed:
        return True
    if typed.startswith("#"):
        # "#31" asks for a call number, not for "31" anywhere (an address like "Route 31").
        return str(call.call_id).startswith(typed[1:].strip())
    words = typed.casefold().split()
    haystack = " ".join(
        (str(call.call_id), _plain(call.title), _plain(call.code), _plain(call.address), _plain(call.postal))
    ).casefold()
    return all(word in haystack for word in words)


def call_choices(
    calls: Iterable[DispatchCall], typed: str, *, limit: int = MAX_CHOICES
) -> list[tuple[str, int]]:
    """``(name, call_id)`` for the open calls matching what was typed: ``#31`` matches call numbers starting
    with 31; anything else matches when every word appears in the call's number, title, code, address or
    postal. Calls whose number starts with what was typed come first, then the newest."""
    typed = _plain(typed)
    digits = typed.lstrip("#")
    open_calls = [call for call in calls if not call.is_closed and _matches(call, typed)]
    open_calls.sort(
        key=lambda call: (not (digits.isdigit() and str(call.call_id).startswith(digits)), -call.call_id)
    )
    return [(call_choice_name(call), call.call_id) for call in open_calls[: max(0, limit)]]


# ---------------------------------------------------------------------------------------------- confirmations


def dispatch_created(call_id: int, attached: Sequence[str], off_duty: Sequence[str]) -> str:
    """``📟 Dispatch call #7 created with **1A-12 Jordan Reyes** attached.`` plus who could not be attached."""
    text = f"📟 Dispatch call **#{call_id}** created"
    text += f" with {_names(attached)} attached." if attached else "."
    if off_duty:
        verb = "has" if len(off_duty) == 1 else "have"
        text += f" {_names(off_duty)} {verb} no unit on duty in the CAD, so nothing was attached for them."
    return text


def template_left_out(labels: Sequence[str]) -> str:
    """Said after a call made from a template whose optional fields did not fit in the form."""
    if not labels:
        return ""
    shown = ", ".join(_bold(label) for label in labels)
    return f" The form had no room for {shown}; fill them in the CAD if needed."


def units_attached(call_id: int, who: Sequence[str]) -> str:
    return f"✅ {_names(who)} attached to call **#{call_id}**."


def units_detached(who: Sequence[str], call_ids: Sequence[int]) -> str:
    if not call_ids:
        return f"✅ {_names(who)} detached from their call."
    calls = ", ".join(f"**#{call_id}**" for call_id in call_ids)
    return f"✅ {_names(who)} detached from call {calls}."


def note_added(call_id: int) -> str:
    return f"📝 Note added to call **#{call_id}**."


def call_closed(call_id: int) -> str:
    return f"✅ Call **#{call_id}** closed."


# ---------------------------------------------------------------------------------------------- refusals


def blank_option(option: str) -> str:
    return f"The {option} can't be blank."


def member_not_linked(name: str, *, discord_link: bool = False) -> str:
    """``discord_link``: the CAD recognises Discord accounts linked in its own settings (v2)."""
    if discord_link:
        return (
            f"{_bold(name)} hasn't linked a CAD account yet: they need to link Discord in their CAD account "
            "settings, or run /link with their Account Secret ID."
        )
    return f"{_bold(name)} hasn't linked a CAD account yet; they need to run /link first."


def no_unit_on_duty(name: str | None) -> str:
    """``name`` None means the member asking about themselves."""
    if name is None:
        return "You have no unit logged in to the CAD right now; log in to a unit, then try again."
    return f"{_bold(name)} has no unit logged in to the CAD right now."


def not_an_open_call(call_id: int) -> str:
    return f"There is no open dispatch call #{call_id} in the CAD; pick a call from the list."


def call_already_closed(call_id: int) -> str:
    return f"Call #{call_id} is already closed."


def not_on_this_call(call_id: int) -> str:
    return (
        f"You aren't attached to call #{call_id}; /dispatch detach takes you off whichever call you are on."
    )
