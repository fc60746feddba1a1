"""v2 failures become the same typed, member-facing errors as v1, and nothing from the CAD reaches a member.

Most cases run against the simulator; the shapes the simulator never sends (plain-JSON problems, an HTTP-date
``Retry-After``, ``X-RateLimit-Reset``, text bodies) come from a tiny canned loopback server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.cad.errors import (
    NOT_LINKED_HOW_TO,
    CadCredentialsError,
    CadError,
    CadNotEnabledError,
    CadNotLinkedError,
    CadPlanRefusedError,
    CadRateLimitedError,
    CadTimeoutError,
    CadUnavailableError,
    CadUnexpectedResponseError,
    CadUnknownServerError,
)
from bot.cad.models import CadCredentials, MemberTarget
from bot.cad.tiers import Tier
from bot.cad.v2 import CadV2Client
from bot.cad.v2_endpoints import OPERATIONS
from testing.cad_simulator import CadSimulator, SimCommunity
from tests.cad.fixtures import API_KEY, COMMUNITY_ID, FakeClock

LINKED = "111111111111111111"
STRANGER = "999999999999999999"


@pytest.fixture
def alice(cad_community: SimCommunity) -> Any:
    account = cad_community.add_account("alice", discord_id=LINKED)
    cad_community.add_unit(account=account, unit_num="A-10", name="Alice")
    return account


def server(creds: CadCredentials, server_id: int) -> CadCredentials:
    return creds.model_copy(update={"server_id": server_id})


# ---------------------------------------------------------------------------------------------- simulator


async def test_bad_key_asks_an_admin_to_run_setup(
    v2_client: CadV2Client, cad_creds: CadCredentials, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = CadCredentials(community_id=cad_creds.community_id, api_key="not-the-key", server_id=1)
    caplog.set_level(logging.DEBUG, logger="bot.cad")
    with pytest.raises(CadCredentialsError) as caught:
        await v2_client.get_calls(wrong)
    assert "an admin needs to run /setup" in caught.value.user_message
    assert "Invalid API key" not in caught.value.user_message  # the CAD's own words stay in the log
    assert "traceId 00-" in str(caught.value)
    assert "traceId=00-" in caplog.text
    assert "not-the-key" not in caplog.text and API_KEY not in caplog.text


async def test_unknown_server_id_says_setup_has_the_wrong_server(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_sim: CadSimulator, alice: Any
) -> None:
    creds = server(cad_creds, 7)
    with pytest.raises(CadUnknownServerError) as caught:
        await v2_client.get_calls(creds)
    assert "the CAD server id in /setup is wrong" in caught.value.user_message
    assert "Server 7" not in caught.value.user_message
    # A member-targeted write on the wrong server is still a server problem, not "not linked".
    with pytest.raises(CadUnknownServerError):
        await v2_client.unit_panic(creds, is_panic=True, target=MemberTarget.discord(LINKED))
    # The server list is read once and reused to tell the two 404s apart.
    assert len(cad_sim.requests_of("get_servers")) == 1


async def test_unlinked_discord_member_gets_the_how_to_and_nothing_is_written(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, alice: Any
) -> None:
    unit = next(iter(cad_community.units.values()))
    for attempt in (
        v2_client.unit_panic(cad_creds, is_panic=True, target=MemberTarget.discord(STRANGER)),
        v2_client.unit_status(cad_creds, status=4, target=MemberTarget.discord(STRANGER)),
        v2_client.get_account(cad_creds, target=MemberTarget.discord(STRANGER)),
    ):
        with pytest.raises(CadNotLinkedError) as caught:
            await attempt
        assert caught.value.user_message == NOT_LINKED_HOW_TO
    assert "link Discord in your CAD account settings" in NOT_LINKED_HOW_TO and "/link" in NOT_LINKED_HOW_TO
    assert (unit.is_panic, unit.status) == (False, 2)


async def test_a_stale_account_link_says_to_link_again(
    v2_client: CadV2Client, cad_creds: CadCredentials
) -> None:
    with pytest.raises(CadNotLinkedError) as caught:
        await v2_client.unit_panic(
            cad_creds, is_panic=True, target=MemberTarget.account("00000000-0000-0000-0000-000000000000")
        )
    assert "run /link again" in caught.value.user_message


async def test_plan_refusal_names_the_plan_the_cad_reports(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    cad_community.tier = Tier.PLUS
    cad_sim.v2.refuse_for_plan(cad_community.community_id, "get_blips")
    with pytest.raises(CadPlanRefusedError) as caught:
        await v2_client.get_blips(cad_creds)
    assert isinstance(caught.value, CadNotEnabledError)  # today's plan handling still applies
    assert caught.value.status == 402 and caught.value.plan == "Sonoran CAD Plus"
    assert caught.value.user_message == (
        "The CAD says blips are not available on this community's plan (Sonoran CAD Plus); they usually need "
        "Sonoran CAD Pro, so an admin should check the plan in the CAD."
    )


async def test_plan_refusal_on_a_plan_the_hint_says_is_enough_drops_the_hint(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    cad_community.tier = Tier.PRO
    cad_sim.v2.refuse_for_plan(cad_community.community_id, "create_blip", "get_blips")
    await v2_client.get_tier(cad_creds)
    with pytest.raises(CadPlanRefusedError) as caught:
        await v2_client.get_blips(cad_creds)
    assert "(Sonoran CAD Pro)" in caught.value.user_message and "usually" not in caught.value.user_message
    assert len(cad_sim.requests_of("get_version")) == 1  # the cached plan was used


async def test_gateway_429_and_problem_429_are_the_same_rate_limit_error(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    cad_sim.rate_limit_next(1, retry_after=12, request_type="get_calls")
    with pytest.raises(CadRateLimitedError) as gateway:
        await v2_client.get_calls(cad_creds)
    assert gateway.value.retry_after == 12
    assert gateway.value.user_message == "The CAD asked the bot to slow down; try again in 12 s."
    cad_sim.fail_next(1, status=429, request_type="get_blips")  # problem+json, no Retry-After
    with pytest.raises(CadRateLimitedError) as problem:
        await v2_client.get_blips(cad_creds)
    assert problem.value.retry_after == 10.0  # the default pause
    assert "try again in 10 s" in problem.value.user_message
    # Neither was retried.
    assert [r.status for r in cad_sim.requests] == [429, 429]


async def test_reads_are_retried_after_5xx_and_writes_are_not(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    cad_sim.fail_next(2, status=500, request_type="get_calls")
    await v2_client.get_calls(cad_creds)
    assert [r.status for r in cad_sim.requests_of("get_calls")] == [500, 500, 200]
    cad_sim.fail_next(1, status=500, request_type="create_911_call")
    with pytest.raises(CadUnavailableError):
        await v2_client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    assert len(cad_sim.requests_of("create_911_call")) == 1
    # 503 comes from the gateway: the CAD never saw the request, so even a create is safe to repeat.
    cad_sim.fail_next(1, status=503, request_type="create_911_call")
    call_id = await v2_client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    assert list(cad_community.emergency_calls) == [call_id]


async def test_dropped_connections_retry_reads_only(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    cad_sim.drop_next(1, request_type="get_blips")
    assert await v2_client.get_blips(cad_creds) == []
    assert len(cad_sim.requests_of("get_blips")) == 2
    cad_sim.drop_next(1, request_type="create_911_call")
    with pytest.raises(CadUnavailableError):
        await v2_client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    assert len(cad_sim.requests_of("create_911_call")) == 1
    assert cad_community.emergency_calls == {}


async def test_timeouts_say_whether_the_action_may_have_happened(
    make_v2_client: Callable[..., CadV2Client], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    client = make_v2_client(timeout_s=0.2, max_retries=1)
    cad_sim.latency_s = 2.0
    with pytest.raises(CadTimeoutError) as write:
        await client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    assert "may already be done" in write.value.user_message
    assert len(cad_sim.requests_of("create_911_call")) == 1
    with pytest.raises(CadTimeoutError) as read:
        await client.get_blips(cad_creds)
    assert read.value.user_message == CadTimeoutError.read_user_message
    assert len(cad_sim.requests_of("get_blips")) == 2


async def test_a_refused_connection_gives_the_slot_back(
    make_v2_client: Callable[..., CadV2Client], cad_creds: CadCredentials, unused_tcp_port: int
) -> None:
    client = make_v2_client(base_url=f"http://127.0.0.1:{unused_tcp_port}", max_retries=1)
    with pytest.raises(CadUnavailableError):
        await client.get_active_units(cad_creds)
    assert client.budgets.remaining(API_KEY, OPERATIONS["get_active_units"]) == 3


# ---------------------------------------------------------------------------------------------- canned server


@dataclass
class Canned:
    """A loopback server answering each request with the next queued ``web.Response``."""

    answers: list[web.Response] = field(default_factory=list)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path_qs, dict(request.headers)))
        return self.answers.pop(0)


@pytest.fixture
async def canned() -> AsyncIterator[Canned]:
    state = Canned()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()


@pytest.fixture
def canned_client(cad_http_session: aiohttp.ClientSession, canned: Canned) -> CadV2Client:
    return CadV2Client(cad_http_session, base_url=canned.base_url, max_retries=0, clock=FakeClock())


CREDS = CadCredentials(community_id=COMMUNITY_ID, api_key=API_KEY, server_id=1)


async def test_bearer_header_and_no_key_anywhere_else(canned: Canned, canned_client: CadV2Client) -> None:
    canned.answers.append(web.json_response({"version": 4, "name": "PRO"}))
    assert await canned_client.get_version(CREDS) == Tier.PRO
    method, path, headers = canned.seen[0]
    assert (method, path) == ("GET", "/v2/general/version")
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Accept"] == "application/json"
    assert API_KEY not in path


async def test_plain_json_problems_are_read_like_problem_json(
    canned: Canned, canned_client: CadV2Client
) -> None:
    canned.answers.append(
        web.json_response({"title": "Unauthorized", "status": 401, "detail": "Invalid API key."}, status=401)
    )
    with pytest.raises(CadCredentialsError):
        await canned_client.get_blips(CREDS)


async def test_retry_after_as_an_http_date_and_x_ratelimit_reset(
    canned: Canned, canned_client: CadV2Client
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=40)
    limited = web.json_response({"message": "API rate limit exceeded", "request_id": "r1"}, status=429)
    limited.headers["Retry-After"] = format_datetime(when, usegmt=True)
    canned.answers.append(limited)
    with pytest.raises(CadRateLimitedError) as dated:
        await canned_client.get_blips(CREDS)
    assert dated.value.retry_after is not None and 35 <= dated.value.retry_after <= 41
    kong = web.json_response({"message": "API rate limit exceeded", "request_id": "r2"}, status=429)
    kong.headers["X-RateLimit-Reset"] = "25"
    canned.answers.append(kong)
    with pytest.raises(CadRateLimitedError) as reset:
        await canned_client.get_calls(CREDS)
    assert reset.value.retry_after == 25


async def test_a_400_saying_a_version_is_required_is_a_plan_refusal(
    canned: Canned, canned_client: CadV2Client
) -> None:
    canned.answers.append(web.Response(status=400, text="VERSION PRO REQUIRED", content_type="text/plain"))
    canned.answers.append(web.json_response({"version": 3, "name": "PLUS"}))
    with pytest.raises(CadPlanRefusedError) as caught:
        await canned_client.get_blips(CREDS)
    assert caught.value.plan == "Sonoran CAD Plus"


async def test_an_unknown_plan_name_is_shown_cleaned_and_numbers_compare(
    canned: Canned, canned_client: CadV2Client
) -> None:
    canned.answers.append(web.json_response({"version": 7, "name": "ENTERPRISE <b>"}))
    assert await canned_client.get_version(CREDS) == 7
    assert canned_client.cached_plan_label(COMMUNITY_ID) == "Enterprise B"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            web.Response(status=200, text="<html>oops</html>", content_type="text/html"),
            CadUnexpectedResponseError,
        ),
        (web.json_response({"unexpected": True}), CadUnexpectedResponseError),
        (web.Response(status=418, text="teapot"), CadUnexpectedResponseError),
        (
            web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html"),
            CadUnavailableError,
        ),
    ],
)
async def test_odd_answers_are_typed_errors_never_raw(
    canned: Canned, canned_client: CadV2Client, answer: web.Response, expected: type[CadError]
) -> None:
    canned.answers.append(answer)
    with pytest.raises(expected) as caught:
        await canned_client.get_blips(CREDS)
    for raw in ("oops", "teapot", "Bad Gateway", "unexpected"):
        assert raw not in caught.value.user_message
