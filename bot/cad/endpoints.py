"""Where each v1 request type is posted, and which types are safe to send twice.

Every type goes to ``/{category}/{type lower-cased}``; the category is the only thing to look up. Shared by
the client and the simulator so the two cannot drift apart.
"""

from __future__ import annotations

EMERGENCY = "emergency"
GENERAL = "general"
CIVILIAN = "civilian"

_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    EMERGENCY: (
        "CALL_911",
        "REMOVE_911",
        "GET_CALLS",
        "GET_MY_CALL",
        "NEW_DISPATCH",
        "EDIT_DISPATCH",
        "ATTACH_UNIT",
        "DETACH_UNIT",
        "ADD_CALL_NOTE",
        "CLOSE_CALL",
        "SET_CALL_POSTAL",
        "SET_CALL_PRIMARY",
        "UNIT_PANIC",
        "UNIT_STATUS",
        "GET_ACTIVE_UNITS",
        "KICK_UNIT",
        "GET_IDENTIFIERS",
        "SET_IDENTIFIER",
        "MODIFY_IDENTIFIER",
        "IDENTS_TO_GROUP",
        "UNIT_LOCATION",
        "GET_BLIPS",
        "ADD_BLIP",
        "MODIFY_BLIP",
        "REMOVE_BLIP",
        "SET_STREETSIGN_CONFIG",
        "UPDATE_STREETSIGN",
        "SET_AVAILABLE_CALLOUTS",
        "SET_STATIONS",
        "GET_PAGER_CONFIG",
        "SET_PAGER_CONFIG",
    ),
    GENERAL: (
        "LOOKUP",
        "LOOKUP_INT",
        "LOOKUP_CUSTOM",
        "GET_TEMPLATES",
        "NEW_RECORD",
        "EDIT_RECORD",
        "REMOVE_RECORD",
        "GET_ACCOUNT",
        "GET_ACCOUNTS",
        "CHECK_APIID",
        "SET_API_ID",
        "VERIFY_SECRET",
        "APPLY_PERMISSION_KEY",
        "SET_ACCOUNT_PERMISSIONS",
        "BAN_USER",
        "GET_VERSION",
        "GET_SERVERS",
        "SET_SERVERS",
        "SET_PENAL_CODES",
        "SET_POSTALS",
        "SET_CLOCK",
        "HEARTBEAT",
        "SEND_DRAFT",
        "SEND_PHOTO",
        "AUTH_STREETSIGNS",
    ),
    CIVILIAN: (
        "GET_CHARACTERS",
        "SET_CHARACTER",
        "NEW_CHARACTER",
        "EDIT_CHARACTER",
        "REMOVE_CHARACTER",
        "GET_CHARACTER_LINKS",
        "LINK_CHARACTER",
    ),
}

CATEGORY: dict[str, str] = {
    request_type: category for category, types in _BY_CATEGORY.items() for request_type in types
}

# The docs page for LOOKUP_INT sits at /general/lookup_value while the restrictions table and Sonoran.js use
# /general/lookup_int; the client sends the latter, the simulator answers both.
PATH_ALIASES: dict[str, str] = {"/general/lookup_value": "LOOKUP_INT"}

# Types whose repetition changes nothing in the CAD, so a lost answer may be asked for again.
READ_TYPES: frozenset[str] = frozenset(
    {t for t in CATEGORY if t.startswith(("GET_", "LOOKUP"))}
    | {"CHECK_APIID", "VERIFY_SECRET", "GET_VERSION"}
)

# Pages for these types word the plan refusal as "API ENDPOINT IS NOT ENABLED FOR THIS COMMUNITY".
ENDPOINT_WORDING_TYPES: frozenset[str] = frozenset(
    {
        "GET_BLIPS",
        "ADD_BLIP",
        "MODIFY_BLIP",
        "REMOVE_BLIP",
        "APPLY_PERMISSION_KEY",
        "SET_ACCOUNT_PERMISSIONS",
        "BAN_USER",
    }
)


def path_for(request_type: str) -> str:
    """``CALL_911`` -> ``/emergency/call_911``. Raises ``KeyError`` for a type we do not know."""
    return f"/{CATEGORY[request_type]}/{request_type.lower()}"


def type_for_path(path: str) -> str | None:
    """The request type a path belongs to, or ``None`` for a path the CAD would not route."""
    if path in PATH_ALIASES:
        return PATH_ALIASES[path]
    parts = path.strip("/").split("/")
    if len(parts) != 2:
        return None
    category, name = parts
    request_type = name.upper()
    return request_type if CATEGORY.get(request_type) == category else None
