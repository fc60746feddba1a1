"""Every public CadClient method against the simulator, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.cad.client import CadClient
from bot.cad.codes import RecordType
from bot.cad.errors import CadEmptySearchError, CadNotLinkedError
from bot.cad.models import (
    Blip,
    BlipCoordinates,
    BlipData,
    CadCredentials,
    LookupSearchType,
    NewDispatch,
)
from bot.cad.tiers import Tier
from testing.cad_simulator import CadSimulator, SimAccount, SimCommunity, SimUnit
from tests.cad.fixtures import API_KEY


@dataclass
class People:
    alice: SimAccount
    bob: SimAccount
    a10: SimUnit
    m2: SimUnit
    dispatcher: SimUnit
    offline: SimUnit


@pytest.fixture
def people(cad_community: SimCommunity) -> People:
    alice = cad_community.add_account(
        "alice", api_ids=["discord:1001", "STEAM:abc"], secret="alice-secret-uuid"
    )
    bob = cad_community.add_account("bob", api_ids=["discord:1002"])
    return People(
        alice=alice,
        bob=bob,
        a10=cad_community.add_unit(account=alice, unit_num="A-10", name="Alice Adams", department="LSPD"),
        m2=cad_community.add_unit(account=bob, unit_num="M-2", name="Bob Brown", status=3),
        dispatcher=cad_community.add_unit(unit_num="D-1", name="Disp", is_dispatch=True),
        offline=cad_community.add_unit(unit_num="X-9", name="Gone", online=False),
    )


async def test_envelope_and_path_follow_the_contract(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    await cad_client.lookup_int(cad_creds, search_type=LookupSearchType.NUMBER, value=1)
    sent = cad_sim.requests[-1]
    assert sent.path == "/general/lookup_int"
    assert sent.type == "LOOKUP_INT"
    assert sent.community_id == cad_creds.community_id
    assert isinstance(sent.data, list) and sent.data[0]["searchType"] == 3


async def test_call_911_returns_the_new_id_and_stores_the_call(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    call_id = await cad_client.call_911(
        cad_creds,
        caller="Jane Doe",
        location="Legion Square",
        description="Car fire",
        emergency=True,
        metadata={"postal": "123"},
    )
    assert call_id == 1042
    stored = cad_community.emergency_calls[call_id]
    assert (stored.caller, stored.location, stored.is_emergency) == ("Jane Doe", "Legion Square", True)
    assert stored.metadata == {"postal": "123"}
    assert cad_sim.requests[-1].data == [
        {
            "serverId": 1,
            "isEmergency": True,
            "caller": "Jane Doe",
            "location": "Legion Square",
            "description": "Car fire",
            "metaData": {"postal": "123"},
        }
    ]


async def test_server_id_comes_from_the_credentials(
    cad_client: CadClient, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    creds = CadCredentials(community_id=cad_community.community_id, api_key=API_KEY, server_id="2")
    await cad_client.call_911(creds, caller="c", location="l", description="d", emergency=False)
    assert cad_sim.requests[-1].data[0]["serverId"] == 2


async def test_remove_911_succeeds_despite_the_copy_pasted_body(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    call = cad_community.add_emergency_call(caller="a", location="b", description="c")
    await cad_client.remove_911(cad_creds, call.call_id)
    assert call.call_id not in cad_community.emergency_calls


async def test_unit_panic_by_api_id_and_by_account(
    cad_client: CadClient, cad_creds: CadCredentials, people: People
) -> None:
    a10, m2, bob = people.a10, people.m2, people.bob
    await cad_client.unit_panic(cad_creds, is_panic=True, api_id="discord:1001")
    assert a10.is_panic is True
    await cad_client.unit_panic(cad_creds, is_panic=True, account=bob.uuid)
    assert m2.is_panic is True
    await cad_client.unit_panic(cad_creds, is_panic=False, api_id="discord:1001")
    assert a10.is_panic is False


async def test_unit_panic_for_an_unlinked_api_id_says_link_first(
    cad_client: CadClient, cad_creds: CadCredentials, people: People
) -> None:
    with pytest.raises(CadNotLinkedError) as caught:
        await cad_client.unit_panic(cad_creds, is_panic=True, api_id="discord:999")
    assert caught.value.status == 404
    assert "/link" in caught.value.user_message


async def test_unit_status_sets_the_code(
    cad_client: CadClient, cad_creds: CadCredentials, people: People, cad_sim: CadSimulator
) -> None:
    await cad_client.unit_status(cad_creds, status=4, api_id="STEAM:abc")
    assert people.a10.status == 4
    assert cad_sim.requests[-1].data == [{"apiId": "STEAM:abc", "status": 4, "serverId": 1}]


async def test_unit_targets_are_required(cad_client: CadClient, cad_creds: CadCredentials) -> None:
    with pytest.raises(ValueError, match="name the unit"):
        await cad_client.unit_panic(cad_creds, is_panic=True)
    with pytest.raises(ValueError):
        await cad_client.unit_status(cad_creds, status=-1, api_id="x")


async def test_get_active_units_merges_api_ids_and_filters(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    units = await cad_client.get_active_units(cad_creds)
    assert [u.unit_num for u in units] == ["A-10", "M-2"]
    alice_unit = units[0]
    assert alice_unit.api_ids == ["discord:1001", "STEAM:abc"]
    assert alice_unit.display_name == "A-10 Alice Adams"
    assert units[1].status_label == "En route"

    everyone = await cad_client.get_active_units(cad_creds, include_offline=True, only_units=False)
    assert {u.unit_num for u in everyone} == {"A-10", "M-2", "D-1", "X-9"}

    cad_community.unit_api_ids_style = "list"  # the login-event / legacy shape
    units = await cad_client.get_active_units(cad_creds, limit=1, offset=0)
    assert len(units) == 1 and units[0].api_ids == ["discord:1001", "STEAM:abc"]


async def test_get_calls_returns_all_three_lists(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    active = cad_community.add_dispatch(title="Traffic stop", address="Route 68", notes=["first note"])
    closed = cad_community.add_dispatch(title="Old", address="Somewhere", status=2)
    emergency = cad_community.add_emergency_call(
        caller="a", location="b", description="c", is_emergency=False
    )
    snapshot = await cad_client.get_calls(cad_creds)
    assert [c.call_id for c in snapshot.active_calls] == [active.call_id]
    assert snapshot.active_calls[0].notes[0].content == "first note"
    assert [c.call_id for c in snapshot.closed_calls] == [closed.call_id]
    assert snapshot.closed_calls[0].is_closed
    assert [c.call_id for c in snapshot.emergency_calls] == [emergency.call_id]
    assert snapshot.emergency_calls[0].is_emergency is False

    none_closed = await cad_client.get_calls(cad_creds, closed_limit=0)
    assert none_closed.closed_calls == []


async def test_new_dispatch_text_and_json_answers(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    dispatch = NewDispatch(title="Shots fired", address="Grove St", code="10-71", units=["discord:1001"])
    call_id = await cad_client.new_dispatch(cad_creds, dispatch)
    assert call_id == 7
    stored = cad_community.dispatches[call_id]
    assert stored.title == "Shots fired"
    assert stored.idents == [people.a10.id]

    cad_community.new_dispatch_answers_json = True  # Sonoran.js types the answer as a call object
    second = await cad_client.new_dispatch(cad_creds, NewDispatch(title="Second", address="Elm"))
    assert second == 8 and cad_community.dispatches[8].title == "Second"


async def test_attach_detach_note_and_close(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    a10, m2, bob = people.a10, people.m2, people.bob
    call = cad_community.add_dispatch(title="Pursuit", address="Highway")
    await cad_client.attach_unit(cad_creds, call.call_id, api_ids=["discord:1001"])
    await cad_client.attach_unit(cad_creds, call.call_id, account=bob.uuid)
    assert call.idents == [a10.id, m2.id]
    await cad_client.detach_unit(cad_creds, api_ids=["discord:1001"])
    assert call.idents == [m2.id]
    await cad_client.add_call_note(cad_creds, call.call_id, "Suspect heading north", label="A-10")
    assert call.notes[-1]["content"] == "Suspect heading north"
    assert call.notes[-1]["label"] == "A-10"
    await cad_client.close_call(cad_creds, call.call_id)
    assert call.status == 2

    with pytest.raises(ValueError):
        await cad_client.attach_unit(cad_creds, call.call_id)
    with pytest.raises(ValueError):
        await cad_client.detach_unit(cad_creds)
    with pytest.raises(ValueError):
        await cad_client.add_call_note(cad_creds, call.call_id, "   ")


async def test_blip_lifecycle(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    blip = Blip(
        coordinates=BlipCoordinates(x=10.5, y=-20),
        icon="police",
        color="#ff0000",
        tooltip="Roadblock",
        data=[BlipData(title="Officer", text="A-10")],
    )
    added = await cad_client.add_blip(cad_creds, blip)
    assert added.id > 0 and added.tooltip == "Roadblock"
    listed = await cad_client.get_blips(cad_creds)
    assert [b.id for b in listed] == [added.id]
    assert listed[0].coordinates.x == 10.5 and listed[0].data[0].text == "A-10"

    await cad_client.modify_blip(cad_creds, added.id, color="#00ff00", sub_type="checkpoint")
    assert cad_community.blips[added.id]["color"] == "#00ff00"
    assert cad_community.blips[added.id]["subType"] == "checkpoint"

    await cad_client.remove_blip(cad_creds, [added.id])
    assert await cad_client.get_blips(cad_creds) == []

    with pytest.raises(ValueError):
        await cad_client.modify_blip(cad_creds, added.id, colour="#000000")
    with pytest.raises(ValueError):
        await cad_client.modify_blip(cad_creds, added.id)
    with pytest.raises(ValueError):
        await cad_client.remove_blip(cad_creds, [])


async def test_lookup_by_name_and_plate(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    cad_community.add_record(fields={"first": "John", "last": "Smith"})
    cad_community.add_record(
        record_type=RecordType.VEHICLE_REGISTRATION,
        fields={"plate": "ABC123", "first": "John", "last": "Smith"},
    )
    cad_community.add_record(record_type=RecordType.WARRANT, fields={"first": "Jane", "last": "Doe"})

    by_name = await cad_client.lookup(cad_creds, first="jo", last="smi")
    assert {r.display_name for r in by_name.records} == {"John Smith", "Vehicle Registration ABC123"}
    assert [r.display_name for r in by_name.characters] == ["John Smith"]

    by_plate = await cad_client.lookup(cad_creds, plate="ABC123", types=[RecordType.VEHICLE_REGISTRATION])
    assert [r.field_value("plate") for r in by_plate.records] == ["ABC123"]

    exact = await cad_client.lookup(cad_creds, first="Jan", partial=False)
    assert exact.records == []


async def test_empty_lookup_is_refused_before_calling(
    cad_client: CadClient, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    with pytest.raises(CadEmptySearchError) as caught:
        await cad_client.lookup(cad_creds, first="  ", plate="")
    assert "search" in caught.value.user_message
    with pytest.raises(CadEmptySearchError):
        await cad_client.lookup_int(cad_creds, search_type=LookupSearchType.ACCOUNT, value=" ")
    assert cad_sim.requests == []


async def test_lookup_int_by_number_account_and_secret(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    alice = people.alice
    owned = cad_community.add_record(
        record_type=RecordType.POLICE_REPORT, fields={"first": "A"}, owner_account=alice, ident_id=5
    )
    other = cad_community.add_record(record_type=RecordType.BOLO, fields={"plate": "XYZ"})

    by_number = await cad_client.lookup_int(
        cad_creds, search_type=LookupSearchType.NUMBER, value=str(other.id)
    )
    assert [r.id for r in by_number] == [other.id]
    assert by_number[0].display_name == "BOLO XYZ"

    by_account = await cad_client.lookup_int(
        cad_creds,
        search_type=LookupSearchType.ACCOUNT,
        value=alice.uuid,
    )
    assert [r.id for r in by_account] == [owned.id]

    by_secret = await cad_client.lookup_int(
        cad_creds, search_type=LookupSearchType.SECRET, value="alice-secret-uuid"
    )
    assert [r.id for r in by_secret] == [owned.id]

    by_ident = await cad_client.lookup_int(
        cad_creds, search_type=LookupSearchType.IDENTIFIER, value=5, types=[RecordType.BOLO]
    )
    assert by_ident == []


async def test_get_account_three_ways(
    cad_client: CadClient, cad_creds: CadCredentials, people: People
) -> None:
    alice = people.alice
    by_api_id = await cad_client.get_account(cad_creds, api_id="STEAM:abc")
    by_name = await cad_client.get_account(cad_creds, username="ALICE")
    by_uuid = await cad_client.get_account(cad_creds, account=alice.uuid)
    assert by_api_id == by_name == by_uuid
    assert by_api_id.username == "alice"
    assert by_api_id.api_ids == ["discord:1001", "STEAM:abc"]
    with pytest.raises(CadNotLinkedError):
        await cad_client.get_account(cad_creds, api_id="discord:404")
    with pytest.raises(ValueError):
        await cad_client.get_account(cad_creds)


async def test_check_apiid_returns_the_username(
    cad_client: CadClient, cad_creds: CadCredentials, people: People
) -> None:
    assert await cad_client.check_apiid(cad_creds, "discord:1002") == "bob"
    with pytest.raises(CadNotLinkedError) as caught:
        await cad_client.check_apiid(cad_creds, "discord:0")
    assert caught.value.status == 404


async def test_verify_secret_returns_the_account_uuid(
    cad_client: CadClient, cad_creds: CadCredentials, people: People
) -> None:
    alice = people.alice
    assert await cad_client.verify_secret(cad_creds, "alice-secret-uuid") == alice.uuid
    with pytest.raises(CadNotLinkedError) as caught:
        await cad_client.verify_secret(cad_creds, "wrong-secret-123")
    assert "secret" in caught.value.user_message
    assert "wrong-secret-123" not in str(caught.value) + repr(caught.value)


async def test_get_version_and_servers(
    cad_client: CadClient, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    assert await cad_client.get_version(cad_creds) is Tier.PRO
    cad_community.add_server(2, "Night server", listenerPort=3233)
    servers = await cad_client.get_servers(cad_creds)
    assert [(s.id, s.name) for s in servers] == [(1, "Server 1"), (2, "Night server")]
    assert servers[1].listener_port == "3233"

    cad_community.servers_as_bare_array = True  # the shape current FiveM code also accepts
    assert [s.id for s in await cad_client.get_servers(cad_creds)] == [1, 2]


async def test_raw_request_rejects_unknown_types(cad_client: CadClient, cad_creds: CadCredentials) -> None:
    with pytest.raises(ValueError, match="unknown CAD request type"):
        await cad_client.request(cad_creds, "MAKE_COFFEE", [])


async def test_raw_request_reaches_types_without_a_typed_method(
    make_cad_client: Callable[..., CadClient], cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    client = make_cad_client()
    response = await client.request(cad_creds, "get_version", [])
    assert response.status == 200 and response.text.startswith("4")
    assert cad_sim.requests[-1].path == "/general/get_version"
