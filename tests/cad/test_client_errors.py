"""Every documented CAD error answer becomes its typed exception and a message a member can act on.

Answers come from a real loopback server that replies whatever a test sets, so the status codes, headers and
bodies travel over HTTP exactly as the CAD's would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from bot.cad.client import CadClient
from bot.cad.errors import (
    CadCredentialsError,
    CadEmptySearchError,
    CadError,
    CadNotEnabledError,
    CadNotLinkedError,
    CadRateLimitedError,
    CadRequestTypeError,
    CadUnavailableError,
    CadUnexpectedResponseError,
    CadWrongEndpointError,
)
from bot.cad.models import CadCredentials
from testing.cad_simulator import CadSimulator
from tests.cad.fixtures import API_KEY, COMMUNITY_ID, FAST_CLIENT


@dataclass
class Canned:
    status: int = 200
    body: str = ""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0


@pytest.fixture
async def canned(cad_http_session: aiohttp.ClientSession) -> AsyncIterator[tuple[Canned, CadClient]]:
    answer = Canned()

    async def reply(request: web.Request) -> web.Response:
        answer.hits += 1
        await request.read()
        return web.Response(
            status=answer.status, text=answer.body, content_type=answer.content_type, headers=answer.headers
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", reply)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    client = CadClient(cad_http_session, base_url=base_url, **{**FAST_CLIENT, "max_retries": 0})
    try:
        yield answer, client
    finally:
        await runner.cleanup()


CREDS = CadCredentials(community_id=COMMUNITY_ID, api_key=API_KEY)

CREDENTIALS_MESSAGE = "The CAD rejected this server's API credentials; an admin needs to run /setup again."


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, "INVALID API KEY", CadCredentialsError),
        (400, "INVALID COMMUNITY ID", CadCredentialsError),
        (401, "INVALID API KEY", CadCredentialsError),
        (400, "API IS NOT ENABLED FOR THIS COMMUNITY", CadNotEnabledError),
        (400, "API ENDPOINT IS NOT ENABLED FOR THIS COMMUNITY", CadNotEnabledError),
        (400, "INVALID REQUEST TYPE", CadRequestTypeError),
        (400, "INVALID EMPTY SEARCH", CadEmptySearchError),
        (404, "API ID NOT LINKED TO AN ACCOUNT IN THIS COMMUNITY", CadNotLinkedError),
        (429, "Too Many Requests", CadRateLimitedError),
        (500, "Internal Server Error", CadUnavailableError),
        (503, "", CadUnavailableError),
        (200, "Backend Service Reached", CadWrongEndpointError),
        (200, "Sonoran CAD: Backend Service Reached", CadWrongEndpointError),
        (418, "I'M A TEAPOT", CadUnexpectedResponseError),
        (
            400,
            "ERROR: Missing editable dispatch fields. Provide at least one field to update.",
            CadUnexpectedResponseError,
        ),
    ],
)
async def test_documented_answers_map_to_typed_errors(
    canned: tuple[Canned, CadClient], status: int, body: str, expected: type[CadError]
) -> None:
    answer, client = canned
    answer.status, answer.body = status, body
    with pytest.raises(expected) as caught:
        await client.request(CREDS, "GET_CALLS", [{"serverId": 1}])
    error = caught.value
    assert error.status == status
    assert error.request_type == "GET_CALLS"
    # One sentence for members, ending like one, never the raw CAD text.
    assert error.user_message.endswith(".")
    if body.strip():
        assert body.strip() not in error.user_message


@pytest.mark.parametrize("body", ["INVALID API KEY", "INVALID COMMUNITY ID"])
async def test_bad_credentials_tell_an_admin_to_run_setup(
    canned: tuple[Canned, CadClient], body: str
) -> None:
    answer, client = canned
    answer.status, answer.body = 400, body
    with pytest.raises(CadCredentialsError) as caught:
        await client.get_version(CREDS)
    assert caught.value.user_message == CREDENTIALS_MESSAGE


async def test_not_enabled_names_the_plan_the_feature_needs(canned: tuple[Canned, CadClient]) -> None:
    answer, client = canned
    answer.status, answer.body = 400, "API ENDPOINT IS NOT ENABLED FOR THIS COMMUNITY"
    with pytest.raises(CadNotEnabledError) as caught:
        await client.get_blips(CREDS)
    assert "Sonoran CAD Pro" in caught.value.user_message
    assert caught.value.user_message.startswith("The CAD says blips are not enabled")


async def test_unexpected_error_text_is_kept_for_logs_but_not_shown(canned: tuple[Canned, CadClient]) -> None:
    answer, client = canned
    answer.status, answer.body = 400, "ERROR: Missing editable dispatch fields."
    with pytest.raises(CadUnexpectedResponseError) as caught:
        await client.request(CREDS, "EDIT_DISPATCH", [{"serverId": 1, "callId": 1}])
    assert "Missing editable dispatch fields" in str(caught.value)
    assert "Missing" not in caught.value.user_message


async def test_a_key_echoed_by_the_server_is_redacted(canned: tuple[Canned, CadClient]) -> None:
    answer, client = canned
    answer.status, answer.body = 400, f"INVALID API KEY {API_KEY}"
    with pytest.raises(CadCredentialsError) as caught:
        await client.get_version(CREDS)
    text = f"{caught.value} {caught.value!r} {caught.value.user_message} {caught.value.detail}"
    assert API_KEY not in text
    assert "[redacted]" in str(caught.value)


async def test_json_expected_but_text_received(canned: tuple[Canned, CadClient]) -> None:
    answer, client = canned
    answer.status, answer.body = 200, "OK"
    with pytest.raises(CadUnexpectedResponseError):
        await client.get_calls(CREDS)
    answer.body, answer.content_type = "{not json", "application/json"
    with pytest.raises(CadUnexpectedResponseError):
        await client.get_calls(CREDS)
    answer.body = '["not", "an", "object"]'
    with pytest.raises(CadUnexpectedResponseError):
        await client.get_calls(CREDS)
    # Inside an object, a member of the wrong shape reads as its default, as in every CAD model.
    answer.body = '{"activeCalls": "nope", "emergencyCalls": [{"callId": 7}]}'
    snapshot = await client.get_calls(CREDS)
    assert (snapshot.active_calls, [call.call_id for call in snapshot.emergency_calls]) == ([], [7])


async def test_json_without_a_json_content_type_is_still_parsed(canned: tuple[Canned, CadClient]) -> None:
    answer, client = canned
    answer.status, answer.content_type = 200, "text/html"
    answer.body = '{"activeCalls": [{"callId": "5", "notes": "", "idents": "3"}], "emergencyCalls": null}'
    snapshot = await client.get_calls(CREDS)
    assert snapshot.active_calls[0].call_id == 5
    assert snapshot.active_calls[0].idents == [3]
    assert snapshot.emergency_calls == []


async def test_missing_id_and_unreadable_version(canned: tuple[Canned, CadClient]) -> None:
    answer, client = canned
    answer.status, answer.body = 200, "EMERGENCY CALL ADDED"
    with pytest.raises(CadUnexpectedResponseError):
        await client.call_911(CREDS, caller="a", location="b", description="c", emergency=True)
    answer.body = "PRO PLAN"
    with pytest.raises(CadUnexpectedResponseError):
        await client.get_version(CREDS)


async def test_success_is_judged_by_status_not_text(canned: tuple[Canned, CadClient]) -> None:
    answer, client = canned
    # CLOSE_CALL's documented body is copied from ATTACH_UNIT; any 200 means done.
    answer.status, answer.body = 200, "UNITS ATTACHED"
    await client.close_call(CREDS, 5)
    answer.body = ""
    await client.remove_911(CREDS, 5)


async def test_verify_secret_reads_the_documented_uuid_to_secret_map(
    canned: tuple[Canned, CadClient],
) -> None:
    answer, client = canned
    secret = "41d2169d-3079-4a05-b92d-df2af78e8b3e"
    answer.status, answer.content_type = 200, "application/json"
    answer.body = f'{{"91de0ce8-c571-11e9-9714-5600023b2434": "{secret}"}}'
    assert await client.verify_secret(CREDS, secret) == "91de0ce8-c571-11e9-9714-5600023b2434"


async def test_wrong_base_path_reaches_backend_service(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator
) -> None:
    cad_sim.add_community(COMMUNITY_ID, API_KEY)
    client = CadClient(cad_http_session, base_url=cad_sim.base_url + "/v1", **FAST_CLIENT)
    with pytest.raises(CadWrongEndpointError) as caught:
        await client.get_version(CREDS)
    assert "CAD API URL" in caught.value.user_message


async def test_simulator_credential_checks_reach_the_client(
    cad_http_session: aiohttp.ClientSession, cad_sim: CadSimulator
) -> None:
    cad_sim.add_community(COMMUNITY_ID, API_KEY)
    client = CadClient(cad_http_session, base_url=cad_sim.base_url, **FAST_CLIENT)
    wrong_key = CadCredentials(community_id=COMMUNITY_ID, api_key="nope")
    wrong_id = CadCredentials(community_id="other", api_key=API_KEY)
    with pytest.raises(CadCredentialsError, match="INVALID API KEY"):
        await client.get_version(wrong_key)
    with pytest.raises(CadCredentialsError, match="INVALID COMMUNITY ID"):
        await client.get_version(wrong_id)
    # Client errors are final: exactly one request each.
    assert len(cad_sim.requests) == 2


async def test_simulator_empty_search_reaches_the_client(
    cad_client: CadClient, cad_creds: CadCredentials
) -> None:
    # The typed method refuses this itself; the raw path shows the CAD's own answer maps the same way.
    with pytest.raises(CadEmptySearchError):
        await cad_client.request(
            cad_creds, "LOOKUP", [{"first": "", "last": "", "mi": "", "plate": "", "types": []}]
        )
