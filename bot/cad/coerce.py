"""Lenient reading of what the CAD sends: the one set of coercions behind every ``bot.cad`` model.

The CAD's docs, its official parsers and real payloads disagree (numbers sent as strings, ``null`` where a
string is documented, a scalar where a list is documented, ``""`` for "no notes"). Every function here accepts
*any* decoded JSON value and returns a clean value or a neutral one; none raises. The ``Annotated`` field types
at the bottom put them on model fields, so a model never fails on a field's shape, only on a missing ID.

The rules, where a looser reading would have been possible:

- Text never shows a non-text value's repr: ``null`` and objects are ``""`` (never ``"None"``, ``"{...}"`` or
  ``"[object]"``), a list of scalars is joined with ``", "``, an integral float is written without ``.0``,
  ``NaN``/``Infinity`` are ``""``, and lone UTF-16 surrogates become U+FFFD so the text always encodes.
- Integers are whole numbers inside int64 (what SQLite and every CAD ID can hold); a bool is never a number;
  ``"12"``, ``12.0`` and ``"12.0"`` are 12; anything else is "absent".
- Floats are finite (``NaN`` and ``Infinity`` cannot go through JSON).
- Flags read true/1/"true"/"yes"/"on" as on and everything else, including junk, as off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticUseDefault

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Deeper nesting than any real payload has; beyond it the value is dropped instead of recursed into.
MAX_DEPTH = 32
# Far more values than a push body within the listener's size limit can hold.
MAX_NODES = 100_000
_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y", "t"})
# Longer than any number worth reading ("-9223372036854775808" is 20); int() on a huge string is slow.
_MAX_NUMBER_TEXT = 40
_MAX_FLOAT_TEXT = 64


def repair_surrogates(text: str) -> str:
    """Replace lone UTF-16 surrogates with U+FFFD (joining valid pairs) so UTF-8/JSON encoding never fails."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


# ---------------------------------------------------------------------------------------------- scalars


def coerce_int(value: object) -> int | None:
    """An int from an int, an integral float or a numeric string; None for anything else or out of int64."""
    if isinstance(value, bool):
        return None
    result: int
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        result = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > _MAX_NUMBER_TEXT:
            return None
        try:
            result = int(text)
        except ValueError:
            number = coerce_float(text)
            if number is None or not number.is_integer():
                return None
            result = int(number)
    else:
        return None
    return result if INT64_MIN <= result <= INT64_MAX else None


def coerce_float(value: object) -> float | None:
    """A finite float from a number or numeric string; None otherwise (NaN would break JSON)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str) and 0 < len(value.strip()) <= _MAX_FLOAT_TEXT:
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def coerce_bool(value: object) -> bool:
    """Truthiness as the CAD means it: true/1/"true"/"yes" are on; missing, null and anything odd are off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return False


def coerce_optional_bool(value: object) -> bool | None:
    return None if value is None or value == "" else coerce_bool(value)


def _is_nested(value: object) -> bool:
    return isinstance(value, Mapping | list | tuple | BaseModel)


def coerce_text(value: object) -> str:
    """A string from text or a scalar; lists of scalars are joined; objects and null become ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return repair_surrogates(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than Python will print (only a Python caller can build one)
            return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, list | tuple):
        parts = (coerce_text(item) for item in value if not _is_nested(item))
        return ", ".join(part for part in parts if part.strip())
    return ""


def coerce_optional_text(value: object) -> str | None:
    """Like :func:`coerce_text`, but "not given" (null, an object, a list) stays None."""
    if value is None or _is_nested(value):
        return None
    return coerce_text(value)


# ---------------------------------------------------------------------------------------------- containers


def as_list(value: object) -> list[Any]:
    """A list from a list, or a lone value as a one-item list; null and "" are the empty list."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def coerce_int_list(value: object) -> list[int]:
    """Integers from a list or a lone scalar, unparseable items dropped, duplicates removed (order kept)."""
    seen: dict[int, None] = {}
    for item in as_list(value):
        number = coerce_int(item)
        if number is not None:
            seen.setdefault(number, None)
    return list(seen)


def coerce_text_list(value: object) -> list[str]:
    """Non-blank strings from a list or a lone scalar (objects and nested lists dropped)."""
    texts = (coerce_text(item) for item in as_list(value) if not _is_nested(item))
    return [text for text in texts if text.strip()]


def coerce_mapping(value: object) -> dict[str, Any]:
    """A plain dict from a mapping or a pydantic model; {} for anything else."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    return {}


def coerce_text_map(value: object) -> dict[str, str]:
    """A ``string -> string`` object (``metaData``): scalar values as text; null, objects and lists dropped
    (they are integration plumbing, not something to show or to write back as text)."""
    if not isinstance(value, Mapping):
        return {}
    return {
        repair_surrogates(str(key)): coerce_text(item)
        for key, item in value.items()
        if item is not None and not _is_nested(item)
    }


def coerce_flag_map(value: object) -> dict[str, bool]:
    """A ``string -> boolean`` object (account permissions); null and nested values dropped."""
    if not isinstance(value, Mapping):
        return {}
    return {
        repair_surrogates(str(key)): coerce_bool(item)
        for key, item in value.items()
        if item is not None and not _is_nested(item)
    }


def object_or_empty(value: object) -> Any:
    """A model as is, any other mapping as a dict with string keys, and anything else as an empty object."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    return {}


def coerce_object_list(value: object) -> list[Any]:
    """Only the object elements of a list (or a lone object); anything else is noise and is dropped."""
    return [object_or_empty(item) for item in as_list(value) if isinstance(item, Mapping | BaseModel)]


def first_present(payload: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first key that holds something (not null, not "")."""
    for key in keys:
        if payload.get(key) not in (None, ""):
            return payload[key]
    return None


def merged_values(payload: Mapping[str, Any], *keys: str) -> list[Any]:
    """Values of several single/list fields (e.g. legacy ``identId`` beside ``identIds``) in one list."""
    merged: list[Any] = []
    for key in keys:
        merged.extend(as_list(payload.get(key)))
    return merged


def sanitise_json(value: object) -> Any:
    """A copy of decoded JSON with every string surrogate-repaired and absurd nesting or size cut off.

    Decoded JSON is a tree, but a Python caller could pass shared references (a DAG) whose tree walk
    is exponential; the node budget keeps the walk linear in what we actually keep.
    """
    budget = [MAX_NODES]
    return _sanitise(value, 0, budget)


def _sanitise(value: object, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        return None
    if isinstance(value, str):
        return repair_surrogates(value)
    if isinstance(value, Mapping):
        return {
            repair_surrogates(str(key)): _sanitise(item, depth + 1, budget) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_sanitise(item, depth + 1, budget) for item in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return None


# ---------------------------------------------------------------------------------------------- field types


def _require_int(value: object) -> int:
    number = coerce_int(value)
    if number is None:
        raise ValueError("expected an integer ID")
    return number


def _require_text(value: object) -> str:
    text = coerce_text(value)
    if not text.strip():
        raise ValueError("expected a non-empty string")
    return text


def _int_or_default(value: object) -> int:
    number = coerce_int(value)
    if number is None:
        raise PydanticUseDefault()
    return number


def _float_or_default(value: object) -> float:
    number = coerce_float(value)
    if number is None:
        raise PydanticUseDefault()
    return number


def _object_or_default(value: object) -> Any:
    if isinstance(value, Mapping | BaseModel):
        return object_or_empty(value)
    raise PydanticUseDefault()


ReqInt = Annotated[int, BeforeValidator(_require_int)]
"""An ID the model cannot exist without: a missing or unreadable one makes the payload invalid."""
Int = Annotated[int, BeforeValidator(_int_or_default)]
"""A number with a default: null or junk reads as the field's default."""
OptInt = Annotated[int | None, BeforeValidator(coerce_int)]
Float = Annotated[float, BeforeValidator(_float_or_default)]
OptFloat = Annotated[float | None, BeforeValidator(coerce_float)]
Flag = Annotated[bool, BeforeValidator(coerce_bool)]
OptFlag = Annotated[bool | None, BeforeValidator(coerce_optional_bool)]
Text = Annotated[str, BeforeValidator(coerce_text)]
ReqText = Annotated[str, BeforeValidator(_require_text)]
OptText = Annotated[str | None, BeforeValidator(coerce_optional_text)]
IntList = Annotated[list[int], BeforeValidator(coerce_int_list)]
TextList = Annotated[list[str], BeforeValidator(coerce_text_list)]
TextMap = Annotated[dict[str, str], BeforeValidator(coerce_text_map)]
FlagMap = Annotated[dict[str, bool], BeforeValidator(coerce_flag_map)]

AS_OBJECT = BeforeValidator(_object_or_default)
"""On a nested-model field with a default: anything but an object reads as the default
(``data: Annotated[UnitData, AS_OBJECT] = UnitData()``)."""
AS_OBJECTS = BeforeValidator(coerce_object_list)
"""On a list-of-models field: only the object elements are kept (``Annotated[list[X], AS_OBJECTS] = []``)."""
