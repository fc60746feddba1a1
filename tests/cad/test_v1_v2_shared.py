"""One CAD, two APIs: what the v2 client writes the v1 client reads and the other way round, and both
clients are the same ``CadApi`` with the same models and the same way of naming a member."""

from __future__ import annotations

import pytest

from bot.cad.client import CadClient
from bot.cad.errors import CadTargetUnsupportedError
from bot.cad.interface import CadApi
from bot.cad.models import Blip, BlipCoordinates, CadCredentials, MemberTarget, NewDispatch
from bot.cad.v2 import CadV2Client
from testing.cad_simulator import CadSimulator, SimCommunity

LINKED = "111111111111111111"


async def test_a_911_call_made_over_v2_is_in_v1_get_calls_and_back(
    cad_client: CadClient, v2_client: CadV2Client, cad_creds: CadCredentials
) -> None:
    over_v2 = await v2_client.call_911(
        cad_creds, caller="Jane", location="Park", description="Fire", emergency=True
    )
    over_v1 = await cad_client.call_911(
        cad_creds, caller="Joe", location="Pier", description="Theft", emergency=False
    )
    seen_by_v1 = await cad_client.get_calls(cad_creds)
    seen_by_v2 = await v2_client.get_calls(cad_creds)
    assert [c.call_id for c in seen_by_v1.emergency_calls] == [over_v2, over_v1]
    assert seen_by_v1.emergency_calls == seen_by_v2.emergency_calls  # the same models, field for field
    await v2_client.remove_911(cad_creds, over_v1)
    assert [c.call_id for c in (await cad_client.get_calls(cad_creds)).emergency_calls] == [over_v2]


async def test_dispatch_units_and_blips_are_shared(
    cad_client: CadClient, v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    alice = cad_community.add_account("alice", discord_id=LINKED, api_ids=["STEAM:a"])
    cad_community.add_unit(account=alice, unit_num="A-10", name="Alice")
    call_id = await cad_client.new_dispatch(cad_creds, NewDispatch(title="Stop", address="Route 1"))
    await v2_client.attach_unit(cad_creds, call_id, target=MemberTarget.discord(LINKED))
    await v2_client.unit_status(cad_creds, status=4, target=MemberTarget.discord(LINKED))
    v1_calls = await cad_client.get_calls(cad_creds)
    v1_units = await cad_client.get_active_units(cad_creds)
    assert v1_calls.active_calls[0].idents == [v1_units[0].id] and v1_units[0].status == 4
    assert v1_units == await v2_client.get_active_units(cad_creds)
    await cad_client.close_call(cad_creds, call_id)
    assert [c.call_id for c in (await v2_client.get_calls(cad_creds)).closed_calls] == [call_id]
    blip = await v2_client.add_blip(cad_creds, Blip(coordinates=BlipCoordinates(x=1, y=2), tooltip="Scene"))
    assert [b.id for b in await cad_client.get_blips(cad_creds)] == [blip.id]


async def test_verify_secret_gives_the_same_uuid_on_both(
    cad_client: CadClient, v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    account = cad_community.add_account("alice", secret="0f8fad5b-d9cb-469f-a165-70867728950e")
    assert await v2_client.verify_secret(cad_creds, account.secret) == account.uuid
    assert await cad_client.verify_secret(cad_creds, account.secret) == account.uuid


def test_both_clients_are_a_cad_api(cad_client: CadClient, v2_client: CadV2Client) -> None:
    assert isinstance(cad_client, CadApi) and isinstance(v2_client, CadApi)
    assert (cad_client.api_version, v2_client.api_version) == (1, 2)


async def test_v1_cannot_target_a_discord_user_and_sends_nothing(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    with pytest.raises(CadTargetUnsupportedError) as caught:
        await cad_client.unit_panic(cad_creds, is_panic=True, target=MemberTarget.discord(LINKED))
    assert "/link" in caught.value.user_message
    with pytest.raises(CadTargetUnsupportedError):
        await cad_client.get_account(cad_creds, target=MemberTarget.discord(LINKED))
    assert cad_sim.requests == []


async def test_each_api_names_a_member_its_own_way_and_never_by_community_user_id(
    cad_client: CadClient,
    v2_client: CadV2Client,
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    cad_sim: CadSimulator,
) -> None:
    alice = cad_community.add_account("alice", discord_id=LINKED, api_ids=["STEAM:a"])
    cad_community.add_unit(account=alice, unit_num="A-10")
    by_account, by_api_id = MemberTarget.account(alice.uuid), MemberTarget.api("STEAM:a")
    await cad_client.unit_status(cad_creds, status=3, target=by_account)
    await cad_client.unit_status(cad_creds, status=3, target=by_api_id)
    assert [r.data[0] for r in cad_sim.requests_of("UNIT_STATUS")] == [  # type: ignore[index]
        {"account": alice.uuid, "status": 3, "serverId": 1},
        {"apiId": "STEAM:a", "status": 3, "serverId": 1},
    ]
    for target in (MemberTarget.discord(LINKED), by_account, by_api_id):
        assert await v2_client.unit_status(cad_creds, status=4, target=target) == 1
    assert [r.data for r in cad_sim.requests_of("set_unit_status")] == [
        {"discord": LINKED, "status": 4},
        {"accountUuid": alice.uuid, "status": 4},
        {"apiId": "STEAM:a", "status": 4},
    ]
    await v2_client.new_dispatch(cad_creds, NewDispatch(title="x", address="y", units=["STEAM:a"]))
    assert all("communityUserId" not in str(r.data) for r in cad_sim.requests)
