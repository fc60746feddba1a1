"""The Sonoran CAD v2 operations: method, path, per-key limit and what a 404 means, in one table.

Every number is the ``rate_limit_per_min`` of ``v2-endpoints.yaml`` (requests per minute, per API key, per
endpoint). Where a page states none (dispatch templates, custom dispatch) the bot limits itself to
``SELF_LIMIT_PER_MINUTE``. The three lookups share one budget on the bot's side: the lookups page states one
figure "for lookup endpoints", and budgeting them together can only be safer. Shared by the client and the
simulator so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

# What a 404 that is not "unknown server" means for an operation: the member target (or the account in the
# path) has no CAD account, or a call/blip/template/secret is not there. ``call_or_target`` is attach: either.
NotFoundMeaning = Literal["target", "call", "call_or_target", "blip", "template", "secret"] | None

SELF_LIMIT_PER_MINUTE = 10
WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Operation:
    """One v2 operation. ``request_type`` is the v1 name of the same operation (or the name errors use for
    it), so feature names, plan hints and ``CadError.request_type`` read the same whichever API answered."""

    id: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    per_minute: int | None
    request_type: str
    read: bool
    not_found: NotFoundMeaning = None
    bucket: str | None = None
    success: int = 200
    used_by_bot: bool = True

    @property
    def server_scoped(self) -> bool:
        return "{serverId}" in self.path

    @property
    def budget_key(self) -> str:
        """Operations that share one per-key budget share this key (the three lookups)."""
        return self.bucket or self.id

    @property
    def budget_per_minute(self) -> int:
        return self.per_minute if self.per_minute is not None else SELF_LIMIT_PER_MINUTE

    def url_path(self, **params: object) -> str:
        """The path with its parameters filled in (each URL-quoted): ``url_path(serverId=1, callId=5)``."""
        return self.path.format(**{key: quote(str(value), safe="") for key, value in params.items()})


_S = "/v2/emergency/servers/{serverId}"

_ALL = (
    # 911
    Operation("create_911_call", "POST", f"{_S}/calls/911", 10, "CALL_911", read=False),
    Operation(
        "remove_911_call",
        "DELETE",
        f"{_S}/calls/911/{{callId}}",
        10,
        "REMOVE_911",
        read=False,
        not_found="call",
    ),
    # units
    Operation(
        "set_unit_panic", "PATCH", f"{_S}/units/panic", 20, "UNIT_PANIC", read=False, not_found="target"
    ),
    Operation(
        "set_unit_status", "PATCH", f"{_S}/units/status", 30, "UNIT_STATUS", read=False, not_found="target"
    ),
    Operation("get_active_units", "GET", f"{_S}/units", 3, "GET_ACTIVE_UNITS", read=True),
    Operation(
        "get_account_units",
        "GET",
        f"{_S}/accounts/{{accountUuid}}/units",
        10,
        "GET_IDENTIFIERS",
        read=True,
        not_found="target",
    ),
    # calls
    Operation("get_calls", "GET", f"{_S}/calls", 5, "GET_CALLS", read=True),
    Operation(
        "get_current_call",
        "GET",
        "/v2/emergency/accounts/{accountUuid}/current-call",
        10,
        "GET_MY_CALL",
        read=True,
        not_found="target",
    ),
    Operation(
        "create_dispatch_call",
        "POST",
        f"{_S}/dispatch-calls",
        20,
        "NEW_DISPATCH",
        read=False,
        not_found="target",
        success=201,
    ),
    Operation(
        "update_dispatch_call",
        "PATCH",
        f"{_S}/dispatch-calls/{{callId}}",
        10,
        "EDIT_DISPATCH",
        read=False,
        not_found="call",
    ),
    Operation(
        "attach_units",
        "POST",
        f"{_S}/dispatch-calls/{{callId}}/attachments",
        10,
        "ATTACH_UNIT",
        read=False,
        not_found="call_or_target",
    ),
    Operation(
        "detach_units",
        "DELETE",
        f"{_S}/dispatch-calls/attachments",
        10,
        "DETACH_UNIT",
        read=False,
        not_found="target",
    ),
    Operation(
        "add_call_note",
        "POST",
        f"{_S}/dispatch-calls/{{callId}}/notes",
        60,
        "ADD_CALL_NOTE",
        read=False,
        not_found="call",
    ),
    Operation(
        "close_dispatch_calls",
        "POST",
        f"{_S}/dispatch-calls/close",
        20,
        "CLOSE_CALL",
        read=False,
        not_found="call",
    ),
    # custom dispatch: no limit stated
    Operation(
        "get_dispatch_templates",
        "GET",
        "/v2/emergency/dispatch-templates",
        None,
        "GET_DISPATCH_TEMPLATES",
        read=True,
    ),
    Operation(
        "get_dispatch_template",
        "GET",
        "/v2/emergency/dispatch-templates/{templateId}",
        None,
        "GET_DISPATCH_TEMPLATES",
        read=True,
        not_found="template",
    ),
    Operation(
        "create_custom_dispatch_call",
        "POST",
        f"{_S}/custom-dispatch-calls",
        None,
        "CUSTOM_DISPATCH",
        read=False,
        not_found="template",
        success=201,
    ),
    # map blips
    Operation("get_blips", "GET", f"{_S}/blips", 10, "GET_BLIPS", read=True),
    Operation("create_blip", "POST", f"{_S}/blips", 30, "ADD_BLIP", read=False),
    Operation(
        "update_blip", "PATCH", f"{_S}/blips/{{blipId}}", 30, "MODIFY_BLIP", read=False, not_found="blip"
    ),
    Operation("delete_blips", "POST", f"{_S}/blips/delete", 30, "REMOVE_BLIP", read=False, not_found="blip"),
    # lookups: POST, but they change nothing
    Operation(
        "lookup_name_or_plate", "POST", "/v2/general/lookups", 30, "LOOKUP", read=True, bucket="lookups"
    ),
    Operation(
        "lookup_by_value",
        "POST",
        "/v2/general/lookups/by-value",
        30,
        "LOOKUP_INT",
        read=True,
        bucket="lookups",
    ),
    Operation(
        "lookup_by_custom",
        "POST",
        "/v2/general/lookups/custom",
        30,
        "LOOKUP_CUSTOM",
        read=True,
        bucket="lookups",
    ),
    # civilian
    Operation(
        "get_characters",
        "GET",
        "/v2/civilian/characters",
        10,
        "GET_CHARACTERS",
        read=True,
        not_found="target",
    ),
    # accounts and linking
    Operation(
        "get_account", "GET", "/v2/general/accounts/account", 10, "GET_ACCOUNT", read=True, not_found="target"
    ),
    Operation(
        "modify_account_permissions",
        "PATCH",
        "/v2/general/accounts/permissions",
        10,
        "SET_ACCOUNT_PERMISSIONS",
        read=False,
        not_found="target",
        used_by_bot=False,
    ),
    Operation(
        "apply_permission_key",
        "POST",
        "/v2/general/permission-keys/applications",
        10,
        "APPLY_PERMISSION_KEY",
        read=False,
        not_found="target",
        used_by_bot=False,
    ),
    # The bot never creates community links: they write the account's communityUserId, the game's link.
    Operation(
        "create_community_link", "POST", "/v2/general/links", 30, "SET_API_ID", read=False, used_by_bot=False
    ),
    Operation(
        "check_community_link",
        "POST",
        "/v2/general/links/check",
        30,
        "CHECK_APIID",
        read=True,
        used_by_bot=False,
    ),
    Operation(
        "verify_secret",
        "POST",
        "/v2/general/secrets/verify",
        10,
        "VERIFY_SECRET",
        read=True,
        not_found="secret",
    ),
    # community
    Operation("get_servers", "GET", "/v2/general/servers", 10, "GET_SERVERS", read=True),
    Operation("get_version", "GET", "/v2/general/version", 10, "GET_VERSION", read=True),
    Operation("get_info", "GET", "/v2/general/info", 10, "GET_INFO", read=True),
)

OPERATIONS: dict[str, Operation] = {operation.id: operation for operation in _ALL}


def operation(operation_id: str) -> Operation:
    """The operation named ``operation_id``; ``KeyError`` for a name the table does not have."""
    return OPERATIONS[operation_id]
