"""Every CadV2Client operation against the simulator over real loopback HTTP: what it sends, what it returns,
and the error each documented failure becomes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.cad.codes import RecordType
from bot.cad.errors import (
    NOT_LINKED_HOW_TO,
    CadEmptySearchError,
    CadInvalidRequestError,
    CadNotFoundError,
    CadNotLinkedError,
)
from bot.cad.models import (
    Blip,
    BlipCoordinates,
    BlipData,
    CadCredentials,
    LookupSearchType,
    MemberTarget,
    NewDispatch,
)
from bot.cad.tiers import Tier
from bot.cad.v2 import CadV2Client
from testing.cad_simulator import CadSimulator, SimAccount, SimCommunity, SimUnit

ALICE_DISCORD = "111111111111111111"
CAROL_DISCORD = "333333333333333333"
STRANGER_DISCORD = "999999999999999999"


@dataclass
class People:
    alice: SimAccount
    bob: SimAccount
    carol: SimAccount
    a10: SimUnit
    m2: SimUnit
    dispatcher: SimUnit
    offline: SimUnit


@pytest.fixture
def people(cad_community: SimCommunity) -> People:
    """Alice linked Discord and is on duty; Bob has only an API ID; Carol linked Discord but is off duty."""
    alice = cad_community.add_account(
        "alice",
        api_ids=["STEAM:alice"],
        secret="alice-secret-0001",
        discord_id=ALICE_DISCORD,
        community_user_id="license:alice",
    )
    bob = cad_community.add_account("bob", api_ids=["STEAM:bob"])
    carol = cad_community.add_account("carol", discord_id=CAROL_DISCORD)
    return People(
        alice=alice,
        bob=bob,
        carol=carol,
        a10=cad_community.add_unit(account=alice, unit_num="A-10", name="Alice Adams", department="LSPD"),
        m2=cad_community.add_unit(account=bob, unit_num="M-2", name="Bob Brown", status=3),
        dispatcher=cad_community.add_unit(unit_num="D-1", name="Disp", is_dispatch=True),
        offline=cad_community.add_unit(account=carol, unit_num="X-9", name="Gone", online=False),
    )


def last(sim: CadSimulator, operation_id: str) -> object:
    sent = sim.requests_of(operation_id)
    assert sent, f"no {operation_id} request reached the simulator"
    return sent[-1].data


# ---------------------------------------------------------------------------------------------- 911


async def test_call_911_creates_the_call_and_returns_its_id(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    call_id = await v2_client.call_911(
        cad_creds,
        caller="Jane Doe",
        location="Legion Square",
        description="Car fire",
        emergency=False,
        metadata={"postal": "123"},
        delete_after_minutes=15,
    )
    stored = cad_community.emergency_calls[call_id]
    assert (stored.caller, stored.is_emergency, stored.metadata) == ("Jane Doe", False, {"postal": "123"})
    request = cad_sim.requests_of("create_911_call")[-1]
    assert (request.method, request.path) == ("POST", "/v2/emergency/servers/1/calls/911")
    assert request.data == {
        "isEmergency": False,
        "caller": "Jane Doe",
        "location": "Legion Square",
        "description": "Car fire",
        "metaData": {"postal": "123"},
        "deleteAfterMinutes": 15,
    }


async def test_remove_911_deletes_it_and_an_unknown_call_is_not_found(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    call = cad_community.add_emergency_call(caller="a", location="b", description="c")
    await v2_client.remove_911(cad_creds, call.call_id)
    assert call.call_id not in cad_community.emergency_calls
    with pytest.raises(CadNotFoundError) as caught:
        await v2_client.remove_911(cad_creds, call.call_id)
    assert caught.value.user_message.startswith("That call is no longer in the CAD")


# ---------------------------------------------------------------------------------------------- units


async def test_panic_by_discord_reaches_the_members_units_and_says_how_many(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People, cad_sim: CadSimulator
) -> None:
    updated = await v2_client.unit_panic(cad_creds, is_panic=True, target=MemberTarget.discord(ALICE_DISCORD))
    assert updated == 1
    assert people.a10.is_panic and not people.m2.is_panic
    assert last(cad_sim, "set_unit_panic") == {"discord": ALICE_DISCORD, "isPanic": True}


async def test_panic_of_a_linked_member_with_no_unit_on_duty_changes_nothing(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People
) -> None:
    updated = await v2_client.unit_panic(cad_creds, is_panic=True, target=MemberTarget.discord(CAROL_DISCORD))
    assert updated == 0
    assert not people.offline.is_panic


async def test_status_by_account_and_by_ident_ids(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People, cad_sim: CadSimulator
) -> None:
    assert await v2_client.unit_status(cad_creds, status=4, target=MemberTarget.account(people.bob.uuid)) == 1
    assert people.m2.status == 4
    assert last(cad_sim, "set_unit_status") == {"accountUuid": people.bob.uuid, "status": 4}
    assert await v2_client.unit_status(cad_creds, status=1, ident_ids=[people.a10.id]) == 1
    assert people.a10.status == 1


async def test_status_outside_the_enum_is_an_invalid_request(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People
) -> None:
    with pytest.raises(CadInvalidRequestError):
        await v2_client.unit_status(cad_creds, status=7, target=MemberTarget.discord(ALICE_DISCORD))
    assert people.a10.status == 2


async def test_a_unit_request_names_exactly_one_target(
    v2_client: CadV2Client, cad_creds: CadCredentials
) -> None:
    with pytest.raises(ValueError, match="exactly once"):
        await v2_client.unit_panic(cad_creds, is_panic=True)
    with pytest.raises(ValueError, match="exactly once"):
        await v2_client.unit_panic(cad_creds, is_panic=True, target=MemberTarget.api("x"), ident_ids=[1])


async def test_active_units_are_the_shared_unit_model(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People, cad_sim: CadSimulator
) -> None:
    units = await v2_client.get_active_units(cad_creds)
    assert [u.display_name for u in units] == ["A-10 Alice Adams", "M-2 Bob Brown"]
    assert units[0].acc_id == people.alice.uuid and units[0].api_ids == ["STEAM:alice"]
    assert last(cad_sim, "get_active_units") == {
        "includeOffline": "false",
        "onlyUnits": "true",
        "limit": "100",
        "offset": "0",
    }
    everyone = await v2_client.get_active_units(cad_creds, include_offline=True, only_units=False)
    assert {u.id for u in everyone} == {people.a10.id, people.m2.id, people.dispatcher.id, people.offline.id}


async def test_account_units_unwrap_the_pascal_case_list(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People
) -> None:
    units = await v2_client.get_account_units(cad_creds, people.alice.uuid)
    assert [u.id for u in units] == [people.a10.id]
    assert await v2_client.get_account_units(cad_creds, people.carol.uuid) == []
    with pytest.raises(CadNotLinkedError):
        await v2_client.get_account_units(cad_creds, "00000000-0000-0000-0000-000000000000")


# ---------------------------------------------------------------------------------------------- calls


async def test_get_calls_reads_the_pascal_case_lists(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    active = cad_community.add_dispatch(title="Robbery", address="Mission Row", units=[people.a10.id])
    closed = cad_community.add_dispatch(title="Old", status=2)
    emergency = cad_community.add_emergency_call(caller="Jane", location="Park", description="Fire")
    snapshot = await v2_client.get_calls(cad_creds, closed_limit=5)
    assert [c.call_id for c in snapshot.active_calls] == [active.call_id]
    assert snapshot.active_calls[0].idents == [people.a10.id]
    assert [c.call_id for c in snapshot.closed_calls] == [closed.call_id]
    assert [c.call_id for c in snapshot.emergency_calls] == [emergency.call_id]


async def test_current_call_of_an_account(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    assert await v2_client.get_current_call(cad_creds, people.alice.uuid) is None
    call = cad_community.add_dispatch(title="Stop", units=[people.a10.id])
    assert await v2_client.get_current_call(cad_creds, people.alice.uuid) == call.call_id
    assert await v2_client.get_current_call(cad_creds, people.carol.uuid) is None
    with pytest.raises(CadNotLinkedError):
        await v2_client.get_current_call(cad_creds, "00000000-0000-0000-0000-000000000000")


async def test_new_dispatch_is_a_201_and_attaches_the_member_by_discord(
    v2_client: CadV2Client,
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    people: People,
    cad_sim: CadSimulator,
) -> None:
    dispatch = NewDispatch(
        title="Armed robbery", address="Mission Row", code="211", priority=1, postal="9001"
    )
    call_id = await v2_client.new_dispatch(cad_creds, dispatch, attach=MemberTarget.discord(ALICE_DISCORD))
    stored = cad_community.dispatches[call_id]
    assert (stored.title, stored.code, stored.priority, stored.idents) == (
        "Armed robbery",
        "211",
        1,
        [people.a10.id],
    )
    assert cad_sim.requests_of("create_dispatch_call")[-1].status == 201
    sent = last(cad_sim, "create_dispatch_call")
    assert isinstance(sent, dict) and sent["discord"] == ALICE_DISCORD and "serverId" not in sent


async def test_new_dispatch_without_units_is_unassigned_and_api_ids_attach(
    v2_client: CadV2Client,
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    people: People,
    cad_sim: CadSimulator,
) -> None:
    bare = await v2_client.new_dispatch(cad_creds, NewDispatch(title="Noise", address="Vinewood"))
    assert cad_community.dispatches[bare].idents == []
    assert last(cad_sim, "create_dispatch_call")["accounts"] == []  # type: ignore[index]
    with_units = await v2_client.new_dispatch(
        cad_creds, NewDispatch(title="Chase", address="Route 68", units=["STEAM:bob"])
    )
    assert cad_community.dispatches[with_units].idents == [people.m2.id]


async def test_new_dispatch_naming_an_unlinked_member_is_not_linked_and_creates_nothing(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    before = dict(cad_community.dispatches)
    with pytest.raises(CadNotLinkedError) as caught:
        await v2_client.new_dispatch(
            cad_creds, NewDispatch(title="x", address="y"), attach=MemberTarget.discord(STRANGER_DISCORD)
        )
    assert caught.value.user_message == NOT_LINKED_HOW_TO
    assert cad_community.dispatches == before


async def test_new_dispatch_primary_follows_in_one_edit(
    v2_client: CadV2Client,
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    people: People,
    cad_sim: CadSimulator,
) -> None:
    dispatch = NewDispatch(
        title="Stop", address="Route 1", units=["STEAM:bob"], primary=people.m2.id, trackPrimary=True
    )
    call_id = await v2_client.new_dispatch(cad_creds, dispatch)
    stored = cad_community.dispatches[call_id]
    assert (stored.primary, stored.track_primary) == (people.m2.id, True)
    assert last(cad_sim, "update_dispatch_call") == {"primary": people.m2.id, "trackPrimary": True}


async def test_update_dispatch_returns_the_call_after_the_change(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    call = cad_community.add_dispatch(title="Stop", address="Route 1")
    updated = await v2_client.update_dispatch(cad_creds, call.call_id, postal="9002", track_primary=True)
    assert (updated.postal, updated.track_primary) == ("9002", True)
    assert call.postal == "9002"
    with pytest.raises(ValueError, match="say what to change"):
        await v2_client.update_dispatch(cad_creds, call.call_id)
    with pytest.raises(CadNotFoundError):
        await v2_client.update_dispatch(cad_creds, 9999, title="x")


async def test_attach_and_detach_by_discord(
    v2_client: CadV2Client,
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    people: People,
    cad_sim: CadSimulator,
) -> None:
    call = cad_community.add_dispatch(title="Stop")
    await v2_client.attach_unit(cad_creds, call.call_id, target=MemberTarget.discord(ALICE_DISCORD))
    assert call.idents == [people.a10.id] and call.primary == people.a10.id
    assert last(cad_sim, "attach_units") == {"discord": ALICE_DISCORD}
    await v2_client.detach_unit(cad_creds, target=MemberTarget.discord(ALICE_DISCORD))
    assert call.idents == []
    request = cad_sim.requests_of("detach_units")[-1]
    assert (request.method, request.data) == ("DELETE", {"discord": ALICE_DISCORD})


async def test_attach_to_a_missing_call_is_not_found_and_off_duty_is_explained(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, people: People
) -> None:
    with pytest.raises(CadNotFoundError) as missing:
        await v2_client.attach_unit(cad_creds, 9999, target=MemberTarget.discord(ALICE_DISCORD))
    assert "no longer in the CAD" in missing.value.user_message
    call = cad_community.add_dispatch(title="Stop")
    with pytest.raises(CadNotLinkedError) as off_duty:
        await v2_client.attach_unit(cad_creds, call.call_id, target=MemberTarget.discord(CAROL_DISCORD))
    assert "no unit on duty" in off_duty.value.user_message and "/link" in off_duty.value.user_message
    assert call.idents == []


async def test_notes_and_close(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    call = cad_community.add_dispatch(title="Stop")
    await v2_client.add_call_note(cad_creds, call.call_id, "Suspect fled north", label="Discord")
    assert call.notes[-1]["content"] == "Suspect fled north" and call.notes[-1]["label"] == "Discord"
    assert last(cad_sim, "add_call_note") == {
        "note": "Suspect fled north",
        "noteType": "text",
        "label": "Discord",
    }
    with pytest.raises(ValueError):
        await v2_client.add_call_note(cad_creds, call.call_id, "   ")
    with pytest.raises(CadNotFoundError):
        await v2_client.add_call_note(cad_creds, 9999, "hello")
    await v2_client.close_call(cad_creds, call.call_id)
    assert call.status == 2
    assert last(cad_sim, "close_dispatch_calls") == {"callIds": [call.call_id]}
    with pytest.raises(CadNotFoundError):  # already closed: nothing was closed this time
        await v2_client.close_call(cad_creds, call.call_id)
    with pytest.raises(CadNotFoundError):
        await v2_client.close_call(cad_creds, 9999)


# ---------------------------------------------------------------------------------------------- templates


async def test_templates_list_one_and_custom_dispatch(
    v2_client: CadV2Client,
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    cad_sim: CadSimulator,
    people: People,
) -> None:
    cad_sim.v2.add_dispatch_template(cad_community.community_id)
    templates = await v2_client.get_dispatch_templates(cad_creds)
    assert [t.display_name for t in templates] == ["UK Control Room"]
    template = await v2_client.get_dispatch_template(cad_creds, templates[0].template_id)
    status_field = template.bound_field("status")
    assert status_field is not None and [o.id for o in template.status_options][1] == "deployed"
    assert template.bound_field("priority") is not None
    call_id = await v2_client.new_custom_dispatch(
        cad_creds,
        template.template_id,
        {"status": "deployed", "priority": "Immediate", "description": "Disturbance", "caller_name": "Alex"},
        attach=MemberTarget.discord(ALICE_DISCORD),
    )
    stored = cad_community.dispatches[call_id]
    assert (stored.title, stored.status, stored.priority, stored.idents) == (
        "UK Control Room",
        1,
        1,
        [people.a10.id],
    )
    assert cad_sim.requests_of("create_custom_dispatch_call")[-1].status == 201
    extra = cad_sim.v2.custom_call_values(cad_community.community_id, call_id)
    assert extra is not None and extra["statusId"] == "deployed"


async def test_custom_dispatch_errors(
    v2_client: CadV2Client,
    cad_creds: CadCredentials,
    cad_community: SimCommunity,
    cad_sim: CadSimulator,
    people: People,
) -> None:
    cad_sim.v2.add_dispatch_template(cad_community.community_id)
    with pytest.raises(CadNotFoundError) as missing:
        await v2_client.get_dispatch_template(cad_creds, 42)
    assert "template" in missing.value.user_message
    before = dict(cad_community.dispatches)
    with pytest.raises(CadInvalidRequestError) as invalid:  # a numeric status, not a statusOptions id
        await v2_client.new_custom_dispatch(
            cad_creds,
            1,
            {"status": 1, "priority": "Immediate", "description": "x"},
            ident_ids=[people.a10.id],
        )
    assert "dispatch template" in invalid.value.user_message
    with pytest.raises(CadNotFoundError):
        await v2_client.new_custom_dispatch(cad_creds, 42, {"status": "deployed"}, ident_ids=[people.a10.id])
    assert cad_community.dispatches == before


# ---------------------------------------------------------------------------------------------- blips


async def test_blip_lifecycle(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    added = await v2_client.add_blip(
        cad_creds,
        Blip(
            coordinates=BlipCoordinates(x=441.2, y=-981.9),
            radius=50.0,
            tooltip="Scene",
            data=[BlipData(title="Units", text="2")],
        ),
    )
    assert added.id >= 1 and added.tooltip == "Scene" and added.radius == 50.0
    sent = last(cad_sim, "create_blip")
    assert isinstance(sent, dict)
    assert sent["coordinates"] == {"x": 441.2, "y": -981.9, "z": 0.0, "w": 0.0}
    assert (sent["subType"], sent["icon"], sent["color"]) == ("radius", "fa-location-dot", "#ff0000")
    blips = await v2_client.get_blips(cad_creds)
    assert [b.id for b in blips] == [added.id]
    await v2_client.modify_blip(cad_creds, added.id, color="#00a3ff", tooltip="Perimeter")
    assert cad_community.blips[added.id]["color"] == "#00a3ff"
    with pytest.raises(CadNotFoundError):
        await v2_client.modify_blip(cad_creds, 9999, color="red")
    await v2_client.remove_blip(cad_creds, [added.id])
    assert cad_community.blips == {}
    with pytest.raises(CadNotFoundError):
        await v2_client.remove_blip(cad_creds, [added.id])


# ---------------------------------------------------------------------------------------------- lookups


@pytest.fixture
def records(cad_community: SimCommunity, people: People) -> None:
    cad_community.add_record(
        fields={"first": "John", "last": "Smith"}, owner_account=people.alice, record_id=451
    )
    cad_community.add_record(
        record_type=RecordType.VEHICLE_REGISTRATION, fields={"plate": "ABC123", "drivers_license": "D1234567"}
    )


@pytest.mark.usefixtures("records")
async def test_lookups_by_name_plate_value_and_custom(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    by_name = await v2_client.lookup(cad_creds, first="john", types=[RecordType.CHARACTER])
    assert [r.person_name for r in by_name.records] == ["John Smith"]
    by_plate = await v2_client.lookup(cad_creds, plate="abc")
    assert [r.field_value("plate") for r in by_plate.records] == ["ABC123"]
    by_number = await v2_client.lookup_int(cad_creds, search_type=LookupSearchType.NUMBER, value=451)
    assert [r.id for r in by_number] == [451]
    assert last(cad_sim, "lookup_by_value")["searchType"] == "NUMBER"  # type: ignore[index]
    custom = await v2_client.lookup_custom(cad_creds, map_name="drivers_license", value="D1234567")
    assert [r.field_value("plate") for r in custom] == ["ABC123"]
    assert await v2_client.lookup_custom(cad_creds, map_name="unknown_map", value="x") == []


async def test_blank_searches_never_reach_the_cad(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    with pytest.raises(CadEmptySearchError):
        await v2_client.lookup(cad_creds, first="  ")
    with pytest.raises(CadEmptySearchError):
        await v2_client.lookup_int(cad_creds, search_type=LookupSearchType.NUMBER, value=" ")
    assert cad_sim.requests == []


@pytest.mark.usefixtures("records")
async def test_characters_of_a_member(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_sim: CadSimulator
) -> None:
    characters = await v2_client.get_characters(cad_creds, MemberTarget.discord(ALICE_DISCORD))
    assert [c.person_name for c in characters] == ["John Smith"]
    assert last(cad_sim, "get_characters") == {"discord": ALICE_DISCORD}
    with pytest.raises(CadNotLinkedError) as caught:
        await v2_client.get_characters(cad_creds, MemberTarget.discord(STRANGER_DISCORD))
    assert caught.value.user_message == NOT_LINKED_HOW_TO


# ---------------------------------------------------------------------------------------------- accounts


async def test_account_by_discord_by_account_and_by_username(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People
) -> None:
    by_discord = await v2_client.get_account(cad_creds, target=MemberTarget.discord(ALICE_DISCORD))
    assert (by_discord.uuid, by_discord.username, by_discord.community_user_id) == (
        people.alice.uuid,
        "alice",
        "license:alice",
    )
    assert by_discord.permissions["police"] is True and len(by_discord.permissions) == 43
    assert (
        await v2_client.get_account(cad_creds, target=MemberTarget.account(people.bob.uuid))
    ).username == "bob"
    assert (await v2_client.get_account(cad_creds, username="CAROL")).uuid == people.carol.uuid
    with pytest.raises(CadNotLinkedError, match="404"):
        await v2_client.get_account(cad_creds, username="nobody")


async def test_verify_secret_returns_the_account_uuid(
    v2_client: CadV2Client, cad_creds: CadCredentials, people: People
) -> None:
    assert await v2_client.verify_secret(cad_creds, " alice-secret-0001 ") == people.alice.uuid
    with pytest.raises(CadNotLinkedError) as caught:
        await v2_client.verify_secret(cad_creds, "not-a-secret")
    assert "does not match any account" in caught.value.user_message
    assert "not-a-secret" not in str(caught.value)


# ---------------------------------------------------------------------------------------------- community


async def test_version_names_the_plan_and_is_cached(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    cad_community.tier = Tier.PLUS
    assert await v2_client.get_tier(cad_creds) == Tier.PLUS
    assert await v2_client.get_tier(cad_creds) == Tier.PLUS
    assert len(cad_sim.requests_of("get_version")) == 1
    assert v2_client.cached_plan_label(cad_creds.community_id) == "Sonoran CAD Plus"
    v2_client.invalidate_tier(cad_creds.community_id)
    assert v2_client.cached_tier(cad_creds.community_id) is None


async def test_servers_and_info(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity
) -> None:
    cad_community.add_server(2, "Training")
    assert [s.name for s in await v2_client.get_servers(cad_creds)] == ["Server 1", "Training"]
    cad_community.servers_as_bare_array = True
    assert len(await v2_client.get_servers(cad_creds)) == 2
    info = await v2_client.get_info(cad_creds)
    assert info.community.com_id == cad_community.community_id and "10-8" in info.codes


async def test_nothing_is_refused_before_the_cad_decides(
    v2_client: CadV2Client, cad_creds: CadCredentials, cad_community: SimCommunity, cad_sim: CadSimulator
) -> None:
    cad_community.tier = Tier.FREE
    await v2_client.ensure_allowed(cad_creds, "GET_BLIPS")
    assert v2_client.explain_refusal(cad_creds, "GET_BLIPS") is None
    assert await v2_client.get_blips(cad_creds) == []
    assert [r.type for r in cad_sim.requests] == ["get_blips"]
