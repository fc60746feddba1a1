"""Models read real payloads leniently and keep secrets out of every representation."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from bot.cad.codes import RecordType
from bot.cad.events import parse_event
from bot.cad.models import (
    Account,
    Blip,
    CadCredentials,
    CallsSnapshot,
    CustomRecord,
    DispatchCall,
    DispatchNote,
    DispatchTemplate,
    EmergencyCall,
    LookupResult,
    NewDispatch,
    Server,
    Unit,
)

KEY = "sk-MODEL-secret-9d8c"


class TestCredentials:
    def test_key_never_shows(self) -> None:
        creds = CadCredentials(community_id="c1", api_key=KEY)
        assert KEY not in repr(creds)
        assert KEY not in str(creds)
        assert KEY not in f"{creds!r} {creds.model_dump()}"
        assert creds.api_key.get_secret_value() == KEY

    def test_numeric_string_server_id_and_trimming(self) -> None:
        creds = CadCredentials(community_id="  c1 ", api_key=f" {KEY} ", server_id=" 3 ")
        assert (creds.community_id, creds.server_id) == ("c1", 3)
        assert creds.api_key.get_secret_value() == KEY
        assert CadCredentials(community_id="c1", api_key=SecretStr(KEY)).server_id == 1

    @pytest.mark.parametrize("server_id", [True, "one", "-1", -1, "1.5"])
    def test_bad_server_ids(self, server_id: object) -> None:
        with pytest.raises(ValidationError):
            CadCredentials(community_id="c1", api_key=KEY, server_id=server_id)

    @pytest.mark.parametrize(
        "kwargs", [{"community_id": "", "api_key": KEY}, {"community_id": "c", "api_key": " "}]
    )
    def test_blank_values_are_refused(self, kwargs: dict[str, str]) -> None:
        with pytest.raises(ValidationError):
            CadCredentials(**kwargs)

    def test_validation_errors_do_not_echo_the_key(self) -> None:
        with pytest.raises(ValidationError) as caught:
            CadCredentials(community_id="", api_key=KEY, server_id="x")
        assert KEY not in str(caught.value)

    def test_frozen_and_hashable(self) -> None:
        creds = CadCredentials(community_id="c1", api_key=KEY)
        with pytest.raises(ValidationError):
            creds.server_id = 2  # type: ignore[misc]
        assert len({creds, CadCredentials(community_id="c1", api_key=KEY)}) == 1


class TestUnits:
    def test_api_ids_merge_pair_and_list(self) -> None:
        unit = Unit.model_validate(
            {
                "id": "12",
                "status": "3",
                "isPanic": "true",
                "data": {
                    "apiId1": "STEAM:1",
                    "apiId2": "",
                    "apiIds": ["discord:9", "STEAM:1", None],
                    "unitNum": 101,
                    "name": None,
                    "page": "",
                },
                "somethingNew": {"ignored": True},
            }
        )
        assert unit.id == 12 and unit.status == 3 and unit.is_panic
        assert unit.api_ids == ["discord:9", "STEAM:1"]
        assert unit.unit_num == "101" and unit.name == "" and unit.data.page is None
        assert unit.display_name == "101"
        assert unit.status_label == "En route"

    def test_single_api_id_string_and_fallback_name(self) -> None:
        unit = Unit.model_validate({"id": 4, "data": {"apiIds": "discord:5"}})
        assert unit.api_ids == ["discord:5"]
        assert unit.display_name == ""
        assert unit.label == "Unit #4"

    def test_status_label_is_the_shared_one(self) -> None:
        assert Unit.model_validate({"id": 1, "status": 9}).status_label == "Code 9"
        assert Unit.model_validate({"id": 1}).status_label == "Unknown"


class TestCalls:
    @pytest.mark.parametrize(
        ("notes", "contents"),
        [
            ("", []),
            (None, []),
            ("bare note", ["bare note"]),
            ({"content": "one", "label": "A-1"}, ["one"]),
            (["text", {"time": "12:00:00", "label": "A", "type": "link", "content": "x"}, ""], ["text", "x"]),
        ],
    )
    def test_notes_in_every_shape(self, notes: object, contents: list[str]) -> None:
        call = DispatchCall.model_validate({"callId": 1, "notes": notes})
        assert [n.content for n in call.notes] == contents

    def test_dispatch_leniency_and_labels(self) -> None:
        call = DispatchCall.model_validate(
            {
                "callId": "7",
                "origin": 3,
                "status": 2,
                "priority": "",
                "postal": 1234,
                "idents": "5",
                "metaData": {"x": 1.5, "silenceAlert": True, "none": None},
            }
        )
        assert call.call_id == 7 and call.priority is None and call.postal == "1234"
        assert call.idents == [5]
        assert call.metadata == {"x": "1.5", "silenceAlert": "true"}
        assert call.origin_label == "Walk-up" and call.status_label == "Closed" and call.is_closed
        assert DispatchCall.model_validate({"callId": 1, "origin": 9}).origin_label == "Code 9"

    def test_emergency_call(self) -> None:
        call = EmergencyCall.model_validate({"callId": 1042, "isEmergency": False, "caller": None})
        assert call.is_emergency is False and call.caller == ""

    def test_call_note_from_a_string(self) -> None:
        assert DispatchNote.model_validate("hello").content == "hello"


class TestNewDispatch:
    def test_wire_shape(self) -> None:
        dispatch = NewDispatch(
            title=" Pursuit ",
            address="Route 68",
            priority=1,
            units=["discord:1"],
            metadata={"postal": "100"},
            track_primary=True,
        )
        assert dispatch.to_wire(2) == {
            "serverId": 2,
            "title": "Pursuit",
            "address": "Route 68",
            "origin": 0,
            "status": 1,
            "priority": 1,
            "block": "",
            "postal": "",
            "code": "",
            "description": "",
            "trackPrimary": True,
            "notes": [],
            "metaData": {"postal": "100"},
            "units": ["discord:1"],
        }
        assert NewDispatch(title="t", address="a", accounts=["uuid"]).to_wire(1)["accounts"] == ["uuid"]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"title": "", "address": "a"},
            {"title": "t", "address": "   "},
            {"title": "t", "address": "a", "priority": 4},
            {"title": "t", "address": "a", "unknown": 1},
        ],
    )
    def test_bad_dispatches_are_refused(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValidationError):
            NewDispatch.model_validate(kwargs)


class TestRecords:
    RECORD: ClassVar[dict[str, Any]] = {
        "recordTypeId": 7,
        "id": "12",
        "name": "",
        "type": 7,
        "sections": [
            {
                "category": 0,
                "fields": [
                    {"uid": "first", "value": "John", "label": "First", "isPreviewed": True},
                    {"uid": "mi", "value": None},
                    {"uid": "Last", "value": "Smith", "label": "Last", "isPreviewed": True},
                    {"uid": "age", "value": 42, "label": "Age"},
                    {"uid": "flags", "value": {"flags": ["armed"]}},
                ],
            }
        ],
    }

    def test_field_values_and_names(self) -> None:
        record = CustomRecord.model_validate(self.RECORD)
        assert record.field_value("FIRST") == "John"
        assert record.field_value("last") == "Smith"
        assert record.field_value("age") == "42"
        assert record.field_value("flags") == ""  # an object is not text; structured values live in `data`
        assert record.field_value("missing") is None
        assert record.display_name == "John Smith"
        assert record.record_type is RecordType.CHARACTER
        assert record.previewed_fields() == [("First", "John"), ("Last", "Smith")]

    @pytest.mark.parametrize(
        ("record", "name"),
        [
            (
                {"type": 5, "sections": [{"fields": [{"uid": "plate", "value": "ABC1"}]}]},
                "Vehicle Registration ABC1",
            ),
            ({"type": 2, "sections": [{"fields": [{"uid": "last", "value": "Doe"}]}]}, "Warrant: Doe"),
            ({"type": 3, "id": 9}, "BOLO #9"),
            ({"type": 99, "name": "Parking Ticket", "id": 1}, "Parking Ticket #1"),
            ({}, "Record"),
        ],
    )
    def test_display_names(self, record: dict[str, object], name: str) -> None:
        assert CustomRecord.model_validate(record).display_name == name

    def test_lookup_shapes(self) -> None:
        modern = LookupResult.model_validate({"records": [self.RECORD, {"type": 2, "id": 3}]})
        assert len(modern.records) == 2
        assert [r.id for r in modern.characters] == [12]
        assert [r.id for r in modern.of_type(RecordType.WARRANT)] == [3]

        bare = LookupResult.model_validate([self.RECORD])
        assert bare.records[0].id == 12

        legacy = LookupResult.model_validate(
            {"warrantRecords": [{"id": 1, "type": 2}], "bolos": [], "characters": [self.RECORD], "note": "x"}
        )
        assert sorted(r.id or 0 for r in legacy.records) == [1, 12]
        assert set(legacy.legacy_sections) == {"warrantRecords", "bolos", "characters"}

        assert LookupResult.model_validate({"records": None}).records == []


class TestOthers:
    def test_account_drops_blank_api_ids(self) -> None:
        account = Account.model_validate(
            {"uuid": "u1", "username": "alice", "status": 4, "apiIds": ["", "discord:1", None]}
        )
        assert account.api_ids == ["discord:1"] and account.is_banned

    def test_server_listener_port_number_or_string(self) -> None:
        assert (
            Server.model_validate({"id": "1", "listenerPort": 3232, "signal": None}).listener_port == "3232"
        )

    def test_blip_wire_uses_aliases_and_omits_nulls(self) -> None:
        blip = Blip.model_validate({"id": 3, "subType": "pin", "coordinates": {"x": "1", "y": 2}})
        assert blip.to_wire() == {
            "id": 3,
            "subType": "pin",
            "coordinates": {"x": 1.0, "y": 2.0},
            "icon": "",
            "color": "",
            "data": [],
        }


class TestOneModelForApiAndPush:
    """The API clients and the push parser read the same payload into the same class, the same way. Each case
    is a point where the two former copies (``Unit``/``UnitPayload``, ``DispatchCall``/``DispatchPayload``,
    ``EmergencyCall``/``Emergency911Call``, two record trees) disagreed; the choice is pinned here."""

    @staticmethod
    def _pushed(type_: str, data: dict[str, Any]) -> Any:
        outcome = parse_event(type_, data)
        assert len(outcome.events) == 1, outcome
        return outcome.events[0]

    def test_the_push_events_carry_the_api_classes(self) -> None:
        unit = {"id": 57, "status": 2, "data": {"unitNum": "1A-12", "name": "Jordan Reyes"}}
        login = self._pushed("EVENT_UNIT_LOGIN", {"unit": unit})
        assert login.unit == Unit.model_validate(unit)
        call = {"callId": 311, "status": 1, "idents": [57], "notes": ["Suspect fled"]}
        assert self._pushed("EVENT_DISPATCH_NEW", {"dispatch": call}).dispatch == DispatchCall.model_validate(
            call
        )
        emergency = {"callId": 1042, "caller": "Maria", "metaData": {"postal": "7012"}}
        assert self._pushed("EVENT_911", {"call": emergency}).call == EmergencyCall.model_validate(emergency)
        record = {"id": 3, "type": 2, "sections": [{"fields": [{"uid": "last", "value": "Doe"}]}]}
        assert self._pushed("EVENT_RECORD_ADD", {"record": record}).record == CustomRecord.model_validate(
            record
        )

    def test_is_emergency_missing_reads_as_civil(self) -> None:
        # The official parsers test the flag for truth, so a missing one is a civil call (v1 read it as an
        # emergency); dispatchnotify's `emergency` is the same flag.
        assert EmergencyCall.model_validate({"callId": 1}).is_emergency is False
        assert EmergencyCall.model_validate({"callId": 1, "emergency": "true"}).is_emergency is True

    @pytest.mark.parametrize("location", [{"x": 1.5, "y": 2}, ["a", {"b": 1}], None])
    def test_a_location_sent_as_an_object_is_no_text(self, location: object) -> None:
        # Never JSON or "None" in a text field (v1 wrote the object's JSON); a list of scalars is joined.
        expected = "a" if isinstance(location, list) else ""
        assert EmergencyCall.model_validate({"callId": 1, "location": location}).location == expected
        assert Unit.model_validate({"id": 1, "location": location}).location == expected

    @pytest.mark.parametrize("primary", [0, -1, "0", "", None, "x"])
    def test_no_primary_unit_is_none(self, primary: object) -> None:
        # The contract writes "no primary" as -1, real payloads as 0 (v1 kept both as IDs).
        assert DispatchCall.model_validate({"callId": 1, "primary": primary}).primary is None
        assert DispatchCall.model_validate({"callId": 1, "primary": "57"}).primary == 57

    def test_a_unit_with_neither_number_nor_name(self) -> None:
        # display_name stays blank so a name learnt earlier is not replaced by a placeholder (v1 said
        # "Unit 12"); label is the one placeholder every screen shows.
        unit = Unit.model_validate({"identId": "12", "data": {"unitNum": " ", "name": None}})
        assert (unit.id, unit.display_name, unit.label) == (12, "", "Unit #12")
        assert Unit.model_validate({"id": 12, "data": {"name": "Jordan"}}).label == "Jordan"

    def test_metadata_is_one_text_map_under_one_name(self) -> None:
        # `metadata` in Python, `metaData` on the wire (the push copy called it meta_data and kept any JSON).
        call = DispatchCall.model_validate({"callId": 1, "metaData": {"postal": 7012, "deep": {"a": 1}}})
        assert call.metadata == {"postal": "7012"}
        assert call.model_dump(by_alias=True)["metaData"] == {"postal": "7012"}
        assert EmergencyCall(call_id=1, metadata={"k": "v"}).metadata == {"k": "v"}

    def test_status_origin_and_priority_not_sent_are_none(self) -> None:
        # Not sent is not PENDING / CALLER / UNAVAILABLE (v1 read 0): an edit without a status must not
        # reopen a closed card, and /units must not call a unit of unknown status "Unavailable".
        call = DispatchCall.model_validate({"callId": 1})
        assert (call.origin, call.status, call.priority, call.is_closed) == (None, None, None, False)
        assert Unit.model_validate({"id": 1}).status is None

    def test_lists_keep_the_items_they_can_use(self) -> None:
        snapshot = CallsSnapshot.model_validate(
            {
                "activeCalls": [{"title": "no id"}, {"id": 5}, "junk", {"callId": "6"}],
                "emergencyCalls": {"callId": 7},
                "closedCalls": None,
            }
        )
        assert [c.call_id for c in snapshot.active_calls] == [5, 6]
        assert [c.call_id for c in snapshot.emergency_calls] == [7]
        assert snapshot.closed_calls == []
        template = DispatchTemplate.model_validate(
            {"templateId": 1, "statusOptions": [{}, {"id": "open"}], "sections": [{"fields": {"label": "x"}}]}
        )
        assert [option.id for option in template.status_options] == ["open"]
        assert template.sections[0].fields == []

    def test_junk_in_a_field_reads_as_its_default(self) -> None:
        account = Account.model_validate(
            {"uuid": "u", "status": "banned?", "permissions": {"police": "yes", "x": None}, "joined": {}}
        )
        assert (account.status, account.permissions, account.joined) == (1, {"police": True}, None)
        blip = Blip.model_validate({"id": None, "coordinates": "here", "radius": "nan", "data": [1, {}]})
        assert (blip.id, blip.coordinates.x, blip.radius, len(blip.data)) == (-1, 0.0, None, 1)
