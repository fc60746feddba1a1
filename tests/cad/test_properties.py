"""Property tests for the lenient reading of the CAD's data (hypothesis).

For every model of ``bot.cad`` and every push event:
- any JSON value in any field never raises: the model reads it (only a missing or unreadable ID may make
  the payload invalid, as a ``ValidationError``), and ``parse_event`` never raises for any envelope;
- what comes out never carries a non-text value's repr: no ``None``, ``null``, ``[object ...]`` or
  ``{'..`` / ``{"..`` text that the input did not contain, and every string encodes as UTF-8;
- known values round-trip: a valid unit, dispatch call, 911 call or record dumped by alias and read again
  (by the model and by the push parser) equals itself.

How many examples and how random: see the "ci" profile in ``tests/conftest.py``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from bot.cad import events as ev
from bot.cad import models
from bot.cad.events import ParseOutcome, parse_event
from bot.cad.models import CadModel, CustomRecord, DispatchCall, DispatchNote, EmergencyCall, Unit
from tests.formatting.samples import SAMPLE_ENVELOPES

# ---------------------------------------------------------------------------------------------- strategies

# Any character, lone UTF-16 surrogates included (JSON can carry them as \ud800 escapes).
_ANY_CHAR = st.one_of(st.characters(), st.characters(categories=["Cs"]))
_ANY_TEXT = st.text(_ANY_CHAR, max_size=12)
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _ANY_TEXT,
    st.sampled_from(["", " ", "0", "-1", "12", "1.5", "1e400", "nan", "true", "yes", "null"]),
)
JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_ANY_TEXT, children, max_size=4),
    max_leaves=12,
)

# Text a field's repr would show: never in the output unless the input itself contained it.
_REPR_MARKERS = ("None", "null", "[object", "{'", '{"', "nan", "inf")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, BaseModel):
        yield from _strings(value.model_dump())
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def assert_clean_text(output: Any, given_input: Any) -> None:
    """Every string of ``output`` encodes, and carries no repr marker the input did not contain."""
    seen = " ".join(_strings(given_input))
    for text in _strings(output):
        text.encode("utf-8")
        for marker in _REPR_MARKERS:
            assert marker not in text or marker in seen, (marker, text)


# ---------------------------------------------------------------------------------------------- the models


def _cad_models() -> list[type[CadModel]]:
    found: list[type[CadModel]] = []
    for module in (models, ev):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, CadModel) and cls.__module__ == module.__name__ and cls is not CadModel:
                found.append(cls)
    return found


DATA_MODELS = [cls for cls in _cad_models() if not issubclass(cls, ev.PushEvent)]

# What a model needs to exist at all (its IDs); every other field has a default.
MINIMAL: dict[type[CadModel], dict[str, Any]] = {
    models.Unit: {"id": 57},
    models.DispatchCall: {"callId": 311},
    models.EmergencyCall: {"callId": 1042},
    models.Server: {"id": 1},
    models.Account: {"uuid": "5b0f6c1e"},
    models.TemplateStatusOption: {"id": "open"},
    models.TemplateField: {"uid": "title"},
    models.DispatchTemplate: {"templateId": 1},
}
# Legacy or alternative member names the models also read.
EXTRA_KEYS: dict[type[CadModel], list[str]] = {
    models.Unit: ["identId"],
    models.UnitData: ["apiId1", "apiId2", "api_ids"],
    models.DispatchCall: ["id", "call_id"],
    models.EmergencyCall: ["emergency"],
    ev.Callout: ["data"],
}


def _keys(model: type[CadModel]) -> list[str]:
    keys = [name for name, info in model.model_fields.items() if not info.exclude]
    keys += [info.alias for info in model.model_fields.values() if info.alias and not info.exclude]
    return sorted({*keys, *EXTRA_KEYS.get(model, [])})


def _required_keys(model: type[CadModel]) -> set[str]:
    required = {name for name, info in model.model_fields.items() if info.is_required()}
    required |= {info.alias for name, info in model.model_fields.items() if name in required and info.alias}
    if model is models.Unit:
        required.add("identId")  # the ID's other name
    if model is models.DispatchCall:
        required |= {"id"}
    return required


def test_the_property_tests_see_every_model() -> None:
    assert {models.Unit, models.DispatchCall, models.CustomRecord, models.CadInfo, ev.Callout} <= set(
        DATA_MODELS
    )
    assert len(DATA_MODELS) >= 25


@pytest.mark.parametrize("model", DATA_MODELS, ids=lambda model: model.__name__)
@given(data=st.data())
def test_any_json_in_any_field_never_raises_nor_shows_a_repr(
    model: type[CadModel], data: st.DataObject
) -> None:
    changed = data.draw(st.dictionaries(st.sampled_from(_keys(model)), JSON, max_size=4), label="fields")
    payload = {**MINIMAL.get(model, {}), **changed}
    try:
        parsed = model.model_validate(payload)
    except ValidationError:
        # Only a required ID that the drawn value replaced may make the payload invalid.
        assert set(changed) & _required_keys(model), changed
        return
    assert_clean_text(parsed, payload)
    parsed.model_dump_json()


@pytest.mark.parametrize("model", DATA_MODELS, ids=lambda model: model.__name__)
@given(value=JSON)
def test_any_json_as_the_whole_payload_is_read_or_refused_cleanly(model: type[CadModel], value: Any) -> None:
    try:
        parsed = model.model_validate(value)
    except ValidationError:
        return
    assert_clean_text(parsed, value)


# ---------------------------------------------------------------------------------------------- events

EVENT_TYPES = sorted(SAMPLE_ENVELOPES)


def _event_keys(type_: str) -> list[str]:
    model = ev.EVENT_MODELS[type_]
    sample = SAMPLE_ENVELOPES[type_]["data"]
    return sorted(
        {*_keys(model), *(sample if isinstance(sample, dict) else {})} - {"event_type", "eventType"}
    )


@pytest.mark.parametrize("type_", EVENT_TYPES)
@given(data=st.data())
def test_any_json_in_any_field_of_an_event_never_raises(type_: str, data: st.DataObject) -> None:
    sample = SAMPLE_ENVELOPES[type_]["data"]
    changed = data.draw(
        st.dictionaries(st.sampled_from(_event_keys(type_)), JSON, max_size=4), label="fields"
    )
    payload = {**sample, **changed}
    outcome = parse_event(type_, payload, {"type": type_, "data": payload})
    assert len(outcome.events) + outcome.invalid_count == 1
    for event in outcome.events:
        assert_clean_text(event, payload)
        event.model_dump_json()


@given(
    type_=st.one_of(st.sampled_from([*ev.EVENT_MODELS, "GET_LOGS", "EVENT_PRINT_RECORD"]), _ANY_TEXT),
    data=JSON,
    envelope=st.one_of(st.none(), st.dictionaries(_ANY_TEXT, JSON, max_size=4)),
)
def test_parse_event_never_raises_for_any_envelope(type_: str, data: Any, envelope: Any) -> None:
    outcome = parse_event(type_, data, envelope)
    assert isinstance(outcome, ParseOutcome)
    for event in outcome.events:
        assert_clean_text(event, [data, envelope])
        event.model_dump_json()
    for invalid in outcome.invalid:
        invalid.reason.encode("utf-8")


# ---------------------------------------------------------------------------------------------- round trips

_TEXT = st.text(max_size=16)  # valid text: no lone surrogates
_WORD = st.text(min_size=1, max_size=12).filter(lambda text: bool(text.strip()))
_ID = st.integers(min_value=1, max_value=2**63 - 1)
_CODE = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
_TEXT_MAP = st.dictionaries(_TEXT, _TEXT, max_size=3)


@st.composite
def units(draw: st.DrawFn) -> Unit:
    return Unit.model_validate(
        {
            "id": draw(_ID),
            "accId": draw(_TEXT),
            "status": draw(_CODE),
            "isPanic": draw(st.booleans()),
            "location": draw(_TEXT),
            "aop": draw(_TEXT),
            "isDispatch": draw(st.booleans()),
            "data": {
                "apiIds": draw(st.lists(_WORD, unique=True, max_size=3)),
                "communityUserId": draw(_TEXT),
                "unitNum": draw(_TEXT),
                "name": draw(_TEXT),
                "department": draw(_TEXT),
                "group": draw(_TEXT),
                "page": draw(_CODE),
            },
        }
    )


_NOTES = st.lists(
    st.builds(
        DispatchNote,
        time=_TEXT,
        label=_TEXT,
        type=st.sampled_from(["text", "link"]),
        content=_TEXT,
    ),
    max_size=3,
)


@st.composite
def dispatch_calls(draw: st.DrawFn) -> DispatchCall:
    return DispatchCall.model_validate(
        {
            "callId": draw(_ID),
            "origin": draw(_CODE),
            "status": draw(_CODE),
            "priority": draw(_CODE),
            "block": draw(_TEXT),
            "address": draw(_TEXT),
            "postal": draw(_TEXT),
            "title": draw(_TEXT),
            "code": draw(_TEXT),
            "description": draw(_TEXT),
            "notes": draw(_NOTES),
            "idents": draw(st.lists(_ID, unique=True, max_size=4)),
            "primary": draw(st.none() | _ID),
            "trackPrimary": draw(st.booleans()),
            "metaData": draw(_TEXT_MAP),
            "updated": draw(st.none() | _TEXT),
        }
    )


emergency_calls = st.builds(
    lambda call_id, emergency, caller, location, description, metadata: EmergencyCall(
        call_id=call_id,
        is_emergency=emergency,
        caller=caller,
        location=location,
        description=description,
        metadata=metadata,
    ),
    _ID,
    st.booleans(),
    _TEXT,
    _TEXT,
    _TEXT,
    _TEXT_MAP,
)

_FIELD_DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=6,
)


@st.composite
def records(draw: st.DrawFn) -> CustomRecord:
    field = st.fixed_dictionaries(
        {
            "type": _TEXT,
            "label": _TEXT,
            "value": _TEXT,
            "uid": _TEXT,
            "data": _FIELD_DATA,
            "options": st.lists(_WORD, max_size=3),
            "size": _CODE,
            "isPreviewed": st.booleans(),
            "readOnly": st.booleans(),
            "mask": _TEXT,
        }
    )
    section = st.fixed_dictionaries(
        {
            "category": _CODE,
            "label": _TEXT,
            "searchCiv": st.booleans(),
            "fields": st.lists(field, max_size=3),
        }
    )
    return CustomRecord.model_validate(
        {
            "recordTypeId": draw(_CODE),
            "id": draw(_CODE),
            "syncId": draw(_TEXT),
            "name": draw(_TEXT),
            "type": draw(_CODE),
            "sections": draw(st.lists(section, max_size=3)),
        }
    )


def _round_trips(value: CadModel) -> None:
    model = type(value)
    assert model.model_validate(value.model_dump(by_alias=True)) == value
    assert model.model_validate_json(value.model_dump_json(by_alias=True)) == value
    assert model.model_validate(value.model_dump()) == value  # snake_case names build it too


@given(unit=units())
def test_a_unit_round_trips_through_the_api_and_the_push_parser(unit: Unit) -> None:
    _round_trips(unit)
    [login] = parse_event("EVENT_UNIT_LOGIN", {"unit": unit.model_dump(by_alias=True)}).events
    assert isinstance(login, ev.UnitLoginEvent) and login.unit == unit


@given(call=dispatch_calls())
def test_a_dispatch_call_round_trips_through_the_api_and_the_push_parser(call: DispatchCall) -> None:
    _round_trips(call)
    [new] = parse_event("EVENT_DISPATCH_NEW", {"dispatch": call.model_dump(by_alias=True)}).events
    assert isinstance(new, ev.DispatchNewEvent) and new.dispatch == call


@given(call=emergency_calls)
def test_a_911_call_round_trips_through_the_api_and_the_push_parser(call: EmergencyCall) -> None:
    _round_trips(call)
    [event] = parse_event("EVENT_911", {"call": call.model_dump(by_alias=True)}).events
    assert isinstance(event, ev.Emergency911Event) and event.call == call


@given(record=records())
def test_a_record_round_trips_through_the_api_and_the_push_parser(record: CustomRecord) -> None:
    _round_trips(record)
    [added] = parse_event("EVENT_RECORD_ADD", {"record": record.model_dump(by_alias=True)}).events
    assert isinstance(added, ev.RecordAddEvent) and added.record == record


def test_markers_cover_what_a_careless_coercion_would_write() -> None:
    # The markers catch str() of None/NaN/inf and JSON or repr of an object: a sanity check of the check.
    for leak in (
        str(None),
        "null",
        str(math.nan),
        str(math.inf),
        str({"a": 1}),
        '{"a": 1}',
        "[object Object]",
    ):
        assert any(marker in leak for marker in _REPR_MARKERS), leak
