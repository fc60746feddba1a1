"""The simulator's own contract, spoken to with plain aiohttp so nothing in the client can mask a mistake."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.cad.tiers import Tier
from testing.cad_simulator import CadSimulator, SimCommunity, seed_demo
from tests.cad.fixtures import API_KEY, COMMUNITY_ID

REPO_ROOT = Path(__file__).resolve().parents[2]


async def post(
    session: aiohttp.ClientSession,
    sim: CadSimulator,
    path: str,
    request_type: str,
    data: Any = (),
    *,
    community_id: str = COMMUNITY_ID,
    key: str = API_KEY,
) -> tuple[int, str, str]:
    body = {"id": community_id, "key": key, "type": request_type, "data": list(data) if data == () else data}
    async with session.post(sim.base_url + path, json=body) as response:
        return response.status, await response.text(), response.content_type


async def test_checks_community_then_key_then_type(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    path = "/emergency/call_911"
    assert await post(cad_http_session, cad_sim, path, "CALL_911", community_id="x", key="y") == (
        400,
        "INVALID COMMUNITY ID",
        "text/plain",
    )
    assert (await post(cad_http_session, cad_sim, path, "CALL_911", key="wrong"))[:2] == (
        400,
        "INVALID API KEY",
    )
    assert (await post(cad_http_session, cad_sim, path, "GET_CALLS", key="wrong"))[:2] == (
        400,
        "INVALID API KEY",
    )
    assert (await post(cad_http_session, cad_sim, path, "GET_CALLS"))[:2] == (400, "INVALID REQUEST TYPE")
    assert (await post(cad_http_session, cad_sim, path, "call_911"))[
        0
    ] == 200  # type names are not case-bound


async def test_unrouted_paths_and_methods_reach_the_backend_banner(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    assert (await post(cad_http_session, cad_sim, "/emergency/make_coffee", "MAKE_COFFEE"))[:2] == (
        200,
        "Backend Service Reached",
    )
    assert (await post(cad_http_session, cad_sim, "/general/call_911", "CALL_911"))[
        1
    ] == "Backend Service Reached"
    async with cad_http_session.get(cad_sim.base_url + "/emergency/call_911") as response:
        assert (response.status, await response.text()) == (200, "Backend Service Reached")


async def test_garbage_body_is_refused(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    async with cad_http_session.post(cad_sim.base_url + "/general/get_version", data=b"{nope") as response:
        assert (response.status, await response.text()) == (400, "INVALID COMMUNITY ID")


async def test_plan_enforcement_wording(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    cad_community.tier = Tier.STANDARD
    assert (await post(cad_http_session, cad_sim, "/emergency/get_blips", "GET_BLIPS", [{"serverId": 1}]))[
        :2
    ] == (
        400,
        "API ENDPOINT IS NOT ENABLED FOR THIS COMMUNITY",
    )
    assert (await post(cad_http_session, cad_sim, "/emergency/get_calls", "GET_CALLS", [{}]))[:2] == (
        400,
        "API IS NOT ENABLED FOR THIS COMMUNITY",
    )
    status, body, content_type = await post(cad_http_session, cad_sim, "/general/get_version", "GET_VERSION")
    assert (status, body, content_type) == (200, "2 - STANDARD", "text/plain")


async def test_documented_bodies(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    call = {"serverId": 1, "isEmergency": True, "caller": "a", "location": "b", "description": "c"}
    assert (await post(cad_http_session, cad_sim, "/emergency/call_911", "CALL_911", [call]))[1] == (
        "EMERGENCY CALL ADDED ID: 1042"
    )
    dispatch = {"serverId": 1, "title": "t", "address": "a", "units": ["nobody"]}
    assert (await post(cad_http_session, cad_sim, "/emergency/new_dispatch", "NEW_DISPATCH", [dispatch]))[
        1
    ] == ("NEW DISPATCH CREATED - ID: 7")
    status, body, content_type = await post(
        cad_http_session, cad_sim, "/emergency/get_calls", "GET_CALLS", [{}]
    )
    assert (status, content_type) == (200, "application/json")
    assert '"activeCalls"' in body and '"emergencyCalls"' in body and '"closedCalls"' in body


async def test_lookup_int_answers_on_both_documented_paths(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    record = cad_community.add_record(fields={"first": "A"})
    item = [{"searchType": 3, "value": record.id, "types": []}]
    for path in ("/general/lookup_int", "/general/lookup_value"):
        status, body, _ = await post(cad_http_session, cad_sim, path, "LOOKUP_INT", item)
        assert status == 200 and f'"id":{record.id}' in body.replace(" ", "")
    empty = [{"searchType": 3, "value": "", "types": []}]
    assert (await post(cad_http_session, cad_sim, "/general/lookup_int", "LOOKUP_INT", empty))[:2] == (
        400,
        "INVALID EMPTY SEARCH",
    )


async def test_known_types_it_does_not_model_say_so(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    status, body, _ = await post(cad_http_session, cad_sim, "/general/set_api_id", "SET_API_ID", [{}])
    assert status == 501 and "SIMULATOR" in body


async def test_requests_are_recorded_without_keys(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    await post(cad_http_session, cad_sim, "/general/get_version", "GET_VERSION")
    await post(cad_http_session, cad_sim, "/general/get_version", "GET_VERSION", key="wrong-key")
    assert [(r.type, r.community_id, r.status, r.path) for r in cad_sim.requests] == [
        ("GET_VERSION", COMMUNITY_ID, 200, "/general/get_version"),
        ("GET_VERSION", COMMUNITY_ID, 400, "/general/get_version"),
    ]
    assert cad_sim.requests[0].data == [] and cad_sim.requests[0].at > 0
    everything = repr(cad_sim.requests) + repr(cad_community) + repr(cad_sim.communities)
    assert API_KEY not in everything and "wrong-key" not in everything


async def test_fault_queue_is_fifo_and_can_target_a_type(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    cad_sim.rate_limit_next(1, retry_after=2)
    cad_sim.fail_next(1, status=503)
    cad_sim.fail_next(1, status=500, request_type="GET_CALLS")
    body = {"id": COMMUNITY_ID, "key": API_KEY, "type": "GET_VERSION", "data": []}
    async with cad_http_session.post(cad_sim.base_url + "/general/get_version", json=body) as response:
        assert (response.status, response.headers.get("Retry-After")) == (429, "2")
    assert (await post(cad_http_session, cad_sim, "/general/get_version", "GET_VERSION"))[0] == 503
    assert (await post(cad_http_session, cad_sim, "/general/get_version", "GET_VERSION"))[0] == 200
    assert (await post(cad_http_session, cad_sim, "/emergency/get_calls", "GET_CALLS", [{}]))[0] == 500
    cad_sim.fail_next(3)
    cad_sim.clear_faults()
    assert (await post(cad_http_session, cad_sim, "/general/get_version", "GET_VERSION"))[0] == 200


async def test_faults_do_not_act(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator, cad_community: SimCommunity
) -> None:
    call = [{"serverId": 1, "isEmergency": True, "caller": "a", "location": "b", "description": "c"}]
    cad_sim.fail_next(1)
    cad_sim.drop_next(1)
    assert (await post(cad_http_session, cad_sim, "/emergency/call_911", "CALL_911", call))[0] == 500
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(cad_http_session, cad_sim, "/emergency/call_911", "CALL_911", call)
    assert cad_community.emergency_calls == {}
    assert [r.status for r in cad_sim.requests] == [500, None]


async def test_stop_does_not_wait_out_injected_latency(cad_http_session: aiohttp.ClientSession) -> None:
    sim = CadSimulator(latency_s=30)
    await sim.start()
    assert await sim.start() == sim.base_url  # starting twice is harmless
    sim.add_community(COMMUNITY_ID, API_KEY)
    pending = asyncio.create_task(post(cad_http_session, sim, "/general/get_version", "GET_VERSION"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await sim.stop()
    assert time.monotonic() - started < 5
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    with pytest.raises(RuntimeError):
        _ = sim.base_url


def test_seed_demo_fills_every_kind_of_state() -> None:
    community = CadSimulator().add_community("dev", "dev-key")
    seed_demo(community)
    assert community.accounts and community.units and community.records
    assert community.dispatches and community.emergency_calls


async def test_dev_server_runs_as_a_module(cad_http_session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CAD_SIM_API_KEY": "local-dev-key"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "testing.cad_simulator",
        str(port),
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        body = {"id": "dev", "key": "local-dev-key", "type": "GET_VERSION", "data": []}
        answer = None
        deadline = time.monotonic() + 20
        while answer is None and time.monotonic() < deadline:
            try:
                async with cad_http_session.post(
                    f"http://127.0.0.1:{port}/general/get_version", json=body
                ) as resp:
                    answer = (resp.status, await resp.text())
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        assert answer == (200, "4 - PRO")
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    assert b"local-dev-key" not in stderr
