"""The simulator's v2 contract, spoken to with plain aiohttp so nothing in the client can mask a mistake."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from testing.cad_simulator import CadSimulator, SimCommunity
from tests.cad.fixtures import API_KEY, FakeClock

LINKED = "111111111111111111"


async def call(
    session: aiohttp.ClientSession,
    sim: CadSimulator,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    auth: str | None = f"Bearer {API_KEY}",
) -> tuple[int, Any, str, aiohttp.typedefs.LooseHeaders]:
    headers = {"Authorization": auth} if auth is not None else {}
    async with session.request(
        method, sim.base_url + path, json=json, params=params, headers=headers
    ) as response:
        body = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, body, response.content_type, response.headers


def is_problem(body: Any, status: int, instance: str) -> bool:
    return (
        isinstance(body, dict)
        and body["type"] == f"https://httpstatuses.com/{status}"
        and body["status"] == status
        and body["instance"] == instance
        and body["traceId"].startswith("00-")
        and body["traceId"].endswith("-01")
    )


async def test_auth_is_bearer_with_the_exact_key(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    path = "/v2/emergency/servers/1/units"
    for auth, detail in (
        (None, "Missing Authorization header."),
        (f"Basic {API_KEY}", "Authorization header must use the Bearer scheme."),
        ("Bearer wrong", "Invalid API key."),
        (f"Bearer {API_KEY.upper()}", "Invalid API key."),
    ):
        status, body, content_type, _ = await call(cad_http_session, cad_sim, "GET", path, auth=auth)
        assert (status, content_type) == (401, "application/problem+json")
        assert is_problem(body, 401, path) and body["title"] == "Unauthorized" and body["detail"] == detail
    status, _, _, _ = await call(cad_http_session, cad_sim, "GET", path, auth=f"bearer {API_KEY}")
    assert status == 200
    assert API_KEY not in repr(cad_sim.requests)


async def test_unknown_server_is_a_404_problem(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    status, body, _, _ = await call(cad_http_session, cad_sim, "GET", "/v2/emergency/servers/7/calls")
    assert status == 404 and body["detail"] == "Server 7 is not configured for this community."
    status, body, _, _ = await call(cad_http_session, cad_sim, "GET", "/v2/emergency/servers/one/calls")
    assert status == 400
    cad_community.add_server(7, "Seven")
    status, body, _, _ = await call(cad_http_session, cad_sim, "GET", "/v2/emergency/servers/7/calls")
    assert status == 200 and set(body) == {"ActiveCalls", "EmergencyCalls", "ClosedCalls", "ClosedCallCount"}


async def test_limits_answer_the_gateway_429_with_retry_after(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    clock = FakeClock(now=1_800_000_000.0 + 42)
    cad_sim.v2.clock = clock
    path = "/v2/emergency/servers/1/units"
    for _ in range(3):
        assert (await call(cad_http_session, cad_sim, "GET", path))[0] == 200
    status, body, content_type, headers = await call(cad_http_session, cad_sim, "GET", path)
    assert (status, content_type, headers["Retry-After"]) == (429, "application/json", "18")
    assert body["message"] == "API rate limit exceeded" and len(body["request_id"]) == 32
    assert cad_sim.v2.requests_left(cad_community.community_id, "get_active_units") == 0
    # Another endpoint has its own window; the next minute starts afresh.
    assert (await call(cad_http_session, cad_sim, "GET", "/v2/emergency/servers/1/calls"))[0] == 200
    clock.advance(18)
    assert (await call(cad_http_session, cad_sim, "GET", path))[0] == 200


async def test_targets_exactly_one_and_the_discord_link(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    alice = cad_community.add_account("alice", discord_id=LINKED, api_ids=["STEAM:a"])
    unit = cad_community.add_unit(account=alice, unit_num="A-10")
    path = "/v2/emergency/servers/1/units/panic"
    status, body, _, _ = await call(
        cad_http_session,
        cad_sim,
        "PATCH",
        path,
        json={"discord": LINKED, "apiId": "STEAM:a", "isPanic": True},
    )
    assert status == 400 and body["detail"].startswith("Provide exactly one of")
    status, body, _, _ = await call(
        cad_http_session, cad_sim, "PATCH", path, json={"discord": "42", "isPanic": True}
    )
    assert (status, body["detail"]) == (404, "Account 42 was not found in this community.")
    assert not unit.is_panic
    status, body, _, _ = await call(
        cad_http_session, cad_sim, "PATCH", path, json={"discord": LINKED, "isPanic": True}
    )
    assert (status, body) == (200, {"updated": 1, "isPanic": True}) and unit.is_panic
    # The official clients' alias for an API ID.
    status, body, _, _ = await call(
        cad_http_session, cad_sim, "PATCH", path, json={"apiId": "STEAM:a", "isPanic": False}
    )
    assert status == 200 and not unit.is_panic
    status, body, _, _ = await call(
        cad_http_session, cad_sim, "GET", "/v2/general/accounts/account", params={"discord": LINKED}
    )
    assert status == 200 and body["uuid"] == alice.uuid and "apiIds" not in body


async def test_dispatch_create_is_201_and_needs_a_target_key(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    path = "/v2/emergency/servers/1/dispatch-calls"
    call_body = {"origin": 0, "status": 1, "priority": 1, "title": "Robbery"}
    status, body, _, _ = await call(cad_http_session, cad_sim, "POST", path, json=call_body)
    assert status == 400 and "at least one unit target" in body["detail"]
    status, body, _, _ = await call(
        cad_http_session, cad_sim, "POST", path, json={**call_body, "communityUserIds": []}
    )
    assert status == 201 and body["title"] == "Robbery" and body["idents"] == []
    assert cad_community.dispatches[body["callId"]].title == "Robbery"
    status, body, _, _ = await call(cad_http_session, cad_sim, "POST", path, json={"origin": 0})
    assert status == 400 and body["detail"] == "status is required."


async def test_faults_latency_5xx_and_drops(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    path = "/v2/general/version"
    cad_sim.fail_next(1, status=503, request_type="get_version")
    status, body, content_type, _ = await call(cad_http_session, cad_sim, "GET", path)
    assert (status, content_type) == (503, "application/problem+json") and is_problem(body, 503, path)
    # A POST, because aiohttp quietly repeats an idempotent GET whose kept-alive connection was dropped.
    lookup = {"first": "John", "types": [7]}
    cad_sim.drop_next(1, request_type="lookup_name_or_plate")
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(cad_http_session, cad_sim, "POST", "/v2/general/lookups", json=lookup)
    assert [r.status for r in cad_sim.requests_of("lookup_name_or_plate")] == [None]
    cad_sim.latency_s = 0.2
    started = time.monotonic()
    status, body, _, _ = await call(cad_http_session, cad_sim, "GET", path)
    assert status == 200 and body == {"version": 4, "name": "PRO"}
    assert time.monotonic() - started >= 0.15
    assert [r.status for r in cad_sim.requests_of("get_version")] == [503, 200]


async def test_plan_refusal_switch_answers_402(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    cad_sim.v2.refuse_for_plan(cad_community.community_id, "get_blips")
    status, body, _, _ = await call(cad_http_session, cad_sim, "GET", "/v2/emergency/servers/1/blips")
    assert (status, body["title"]) == (402, "Payment Required")
    with pytest.raises(ValueError):
        cad_sim.v2.refuse_for_plan(cad_community.community_id, "no_such_operation")


async def test_unknown_routes_and_methods(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    assert (await call(cad_http_session, cad_sim, "GET", "/v2/nothing/here"))[0] == 404
    assert (await call(cad_http_session, cad_sim, "PUT", "/v2/general/version"))[0] == 405
    status, _, _, _ = await call(
        cad_http_session, cad_sim, "POST", "/v2/general/links", json={"communityUserId": "x"}
    )
    assert status == 501  # documented, but the bot never creates community links
