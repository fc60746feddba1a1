"""The community API key never reaches a log line, a repr or an exception, whatever goes wrong."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from bot.cad.client import CadClient
from bot.cad.errors import CadError
from bot.cad.models import CadCredentials, LookupSearchType
from testing.cad_simulator import CadSimulator, SimCommunity
from tests.cad.fixtures import API_KEY


async def test_key_is_absent_from_debug_logs_reprs_and_errors(
    make_cad_client: Callable[..., CadClient],
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    cad_sim: CadSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_cad_client(timeout_s=0.3, max_retries=1)
    errors: list[CadError] = []

    async def attempt(action: Callable[[], object]) -> None:
        try:
            await action()  # type: ignore[misc]
        except CadError as error:
            errors.append(error)

    await attempt(lambda: client.get_version(cad_creds))
    await attempt(
        lambda: client.call_911(cad_creds, caller="a", location="b", description="c", emergency=True)
    )
    cad_sim.rate_limit_next(2)
    await attempt(lambda: client.get_calls(cad_creds))
    cad_sim.fail_next(1)
    await attempt(lambda: client.close_call(cad_creds, 1))
    cad_sim.drop_next(1)
    await attempt(lambda: client.remove_911(cad_creds, 1))
    await attempt(lambda: client.check_apiid(cad_creds, "nobody"))
    await attempt(lambda: client.lookup_int(cad_creds, search_type=LookupSearchType.SECRET, value="s"))
    wrong_key = CadCredentials(community_id=cad_community.community_id, api_key=API_KEY + "-old")
    await attempt(lambda: client.get_calls(wrong_key))
    cad_sim.latency_s = 1.0
    await attempt(lambda: client.unit_status(cad_creds, status=1, api_id="x"))

    assert len(errors) >= 5
    assert "CALL_911" in caplog.text and cad_creds.community_id in caplog.text  # logging did happen
    searchable = " ".join(
        [caplog.text, repr(cad_creds), str(cad_creds), repr(client.__dict__), repr(cad_sim.requests)]
        + [f"{e} {e!r} {e.user_message} {e.detail}" for e in errors]
    )
    assert API_KEY not in searchable
