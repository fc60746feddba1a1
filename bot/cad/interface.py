"""``CadApi``: what every CAD client offers, whichever API version it speaks.

The v1 client (``client.CadClient``) and the v2 client (``v2.CadV2Client``) both implement it with the same
method names, arguments and domain models, so commands can hold "the CAD" without caring which API answers.
Members are named by ``MemberTarget``; v1 cannot address a Discord user and raises
``CadTargetUnsupportedError`` for one. Operations only one version has (v2 dispatch templates, v1
``check_apiid``) stay on that client.

Return values differ only where one API says more: v2 answers panic/status with how many units changed,
v1 with nothing (``None``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.cad.codes import RecordType
from bot.cad.errors import CadPlanError
from bot.cad.models import (
    Account,
    Blip,
    CadCredentials,
    CallsSnapshot,
    CustomRecord,
    LookupResult,
    LookupSearchType,
    MemberTarget,
    NewDispatch,
    Server,
    Unit,
)
from bot.cad.tiers import Tier


@runtime_checkable
class CadApi(Protocol):
    """One CAD client for many communities (see the module docstring)."""

    @property
    def api_version(self) -> int: ...

    @property
    def base_url(self) -> str: ...

    # plans
    def cached_tier(self, community_id: str) -> Tier | None: ...

    def cached_plan_label(self, community_id: str) -> str | None: ...

    def invalidate_tier(self, community_id: str) -> None: ...

    async def get_tier(self, creds: CadCredentials) -> Tier: ...

    def explain_refusal(self, creds: CadCredentials, request_type: str) -> CadPlanError | None: ...

    async def ensure_allowed(self, creds: CadCredentials, request_type: str) -> None: ...

    # 911
    async def call_911(
        self,
        creds: CadCredentials,
        *,
        caller: str,
        location: str,
        description: str,
        emergency: bool,
        metadata: dict[str, str] | None = None,
    ) -> int: ...

    async def remove_911(self, creds: CadCredentials, call_id: int) -> None: ...

    # units
    async def unit_panic(
        self,
        creds: CadCredentials,
        *,
        is_panic: bool,
        target: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
    ) -> int | None: ...

    async def unit_status(
        self,
        creds: CadCredentials,
        *,
        status: int,
        target: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
    ) -> int | None: ...

    async def get_active_units(
        self,
        creds: CadCredentials,
        *,
        include_offline: bool = False,
        only_units: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Unit]: ...

    # dispatch
    async def get_calls(
        self, creds: CadCredentials, *, closed_limit: int = 10, closed_offset: int = 0
    ) -> CallsSnapshot: ...

    async def new_dispatch(self, creds: CadCredentials, dispatch: NewDispatch) -> int: ...

    async def attach_unit(
        self,
        creds: CadCredentials,
        call_id: int,
        *,
        target: MemberTarget | None = None,
        ident_ids: Sequence[int] | None = None,
    ) -> None: ...

    async def detach_unit(self, creds: CadCredentials, *, target: MemberTarget | None = None) -> None: ...

    async def add_call_note(
        self, creds: CadCredentials, call_id: int, note: str, *, label: str | None = None
    ) -> None: ...

    async def close_call(self, creds: CadCredentials, call_id: int) -> None: ...

    # blips
    async def get_blips(self, creds: CadCredentials) -> list[Blip]: ...

    async def add_blip(self, creds: CadCredentials, blip: Blip) -> Blip: ...

    async def modify_blip(self, creds: CadCredentials, blip_id: int, **changes: Any) -> None: ...

    async def remove_blip(self, creds: CadCredentials, ids: Sequence[int]) -> None: ...

    # lookups
    async def lookup(
        self,
        creds: CadCredentials,
        *,
        first: str = "",
        last: str = "",
        mi: str = "",
        plate: str = "",
        types: Iterable[RecordType | int] | None = None,
        partial: bool = True,
    ) -> LookupResult: ...

    async def lookup_int(
        self,
        creds: CadCredentials,
        *,
        search_type: LookupSearchType | int,
        value: int | str,
        types: Iterable[RecordType | int] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[CustomRecord]: ...

    # accounts
    async def get_account(
        self, creds: CadCredentials, *, target: MemberTarget | None = None, username: str | None = None
    ) -> Account: ...

    async def verify_secret(self, creds: CadCredentials, secret: str) -> str: ...

    # community
    async def get_version(self, creds: CadCredentials) -> Tier: ...

    async def get_servers(self, creds: CadCredentials) -> list[Server]: ...


if TYPE_CHECKING:  # mypy proves here that both clients implement the interface.
    from bot.cad.client import CadClient
    from bot.cad.v2 import CadV2Client

    def _v1_is_a_cad_api(client: CadClient) -> CadApi:
        return client

    def _v2_is_a_cad_api(client: CadV2Client) -> CadApi:
        return client
