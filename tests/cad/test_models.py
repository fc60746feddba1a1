"""Models read real payloads leniently and keep secrets out of every representation."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from bot.cad.models import (
    Account,
    Blip,
    CadCredentials,
    CallNote,
    CallOrigin,
    CallStatus,
    CustomRecord,
    DispatchCall,
    EmergencyCall,
    LookupResult,
    NewDispatch,
    RecordType,
    Server,
    Unit,
    UnitStatus,
    unit_status_label,
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
        assert unit.display_name == "Unit 4"

    def test_status_labels(self) -> None:
        assert UnitStatus.ON_SCENE.label == "On scene"
        assert unit_status_label(2) == "Available"
        assert unit_status_label(9) == "Status 9"


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
        assert DispatchCall.model_validate({"callId": 1, "origin": 9}).origin_label == "Origin 9"

    def test_emergency_call(self) -> None:
        call = EmergencyCall.model_validate({"callId": 1042, "isEmergency": False, "caller": None})
        assert call.is_emergency is False and call.caller == ""
        assert CallOrigin.RADIO_DISPATCH.label == "Radio dispatch"
        assert CallStatus.PENDING.label == "Pending"

    def test_call_note_from_a_string(self) -> None:
        assert CallNote.model_validate("hello").content == "hello"


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
        assert record.field_value("flags") == '{"flags":["armed"]}'
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
