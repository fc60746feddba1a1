"""How a member's stored link names their unit in CAD requests (shared by /link and the unit commands).

A member linked with an Account Secret always has an account UUID. A member linked by API ID on a plan that
cannot read accounts (``GET_ACCOUNT`` needs Plus) has only the API ID; storage still needs a unique account
key, so that link stores ``api-id:<id>`` in its place and unit requests must target the API ID instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.cad.models import Unit
from bot.storage.models import UserLink

API_ID_ACCOUNT_PREFIX = "api-id:"

ACCOUNT_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def is_uuid(text: str) -> bool:
    """True for the 8-4-4-4-12 hex form the CAD uses for account UUIDs and account secrets."""
    return ACCOUNT_UUID.fullmatch(text.strip()) is not None


def api_id_account_key(api_id: str) -> str:
    """The stand-in account key for a link that only knows the member's API ID."""
    return API_ID_ACCOUNT_PREFIX + api_id


def known_account_uuid(link: UserLink) -> str | None:
    """The linked CAD account UUID, or None when the link only knows an API ID."""
    if link.account_uuid.startswith(API_ID_ACCOUNT_PREFIX):
        return None
    return link.account_uuid


@dataclass(frozen=True, slots=True)
class UnitTarget:
    """Exactly one of ``account`` / ``api_id``: the selector unit requests use for this member."""

    account: str | None = None
    api_id: str | None = None

    def owns(self, unit: Unit) -> bool:
        """Whether ``unit`` (from GET_ACTIVE_UNITS) is this member's."""
        if self.account:
            return unit.acc_id.strip().lower() == self.account.lower()
        return bool(self.api_id) and self.api_id in unit.api_ids


def unit_target(link: UserLink) -> UnitTarget:
    """Target by account UUID when known (unambiguous); otherwise by the API ID the member proved."""
    account = known_account_uuid(link)
    if account is not None:
        return UnitTarget(account=account)
    if link.api_id:
        return UnitTarget(api_id=link.api_id)
    # A stand-in key without its API ID cannot come from /link; recover the ID from the key itself.
    return UnitTarget(api_id=link.account_uuid.removeprefix(API_ID_ACCOUNT_PREFIX))
