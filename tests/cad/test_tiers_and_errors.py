"""Plan tiers, the minimum-tier table and the error classes' wording."""

from __future__ import annotations

import pytest

from bot.cad.endpoints import CATEGORY, READ_TYPES, path_for, type_for_path
from bot.cad.errors import (
    FEATURE_NAMES,
    CadCredentialsError,
    CadEmptySearchError,
    CadError,
    CadNotEnabledError,
    CadNotLinkedError,
    CadPlanError,
    CadRateLimitedError,
    CadRequestTypeError,
    CadTimeoutError,
    CadUnavailableError,
    CadUnexpectedResponseError,
    CadWrongEndpointError,
    error_from_response,
)
from bot.cad.tiers import MIN_TIER, Tier, parse_tier, required_tier
from bot.cad.v2_endpoints import OPERATIONS

CLIENT_TYPES = [
    "CALL_911",
    "REMOVE_911",
    "UNIT_PANIC",
    "UNIT_STATUS",
    "GET_ACTIVE_UNITS",
    "GET_CALLS",
    "NEW_DISPATCH",
    "ATTACH_UNIT",
    "DETACH_UNIT",
    "ADD_CALL_NOTE",
    "CLOSE_CALL",
    "GET_BLIPS",
    "ADD_BLIP",
    "MODIFY_BLIP",
    "REMOVE_BLIP",
    "LOOKUP",
    "LOOKUP_INT",
    "GET_ACCOUNT",
    "CHECK_APIID",
    "VERIFY_SECRET",
    "GET_VERSION",
    "GET_SERVERS",
]


@pytest.mark.parametrize(
    ("text", "tier"),
    [
        ("0 - FREE", Tier.FREE),
        ("4", Tier.PRO),
        ("  3 - PLUS", Tier.PLUS),
        ("6 - SONORAN ONE", Tier.SONORAN_ONE),
        ("2\n", Tier.STANDARD),
        (1, Tier.STARTER),
    ],
)
def test_parse_tier(text: object, tier: Tier) -> None:
    assert parse_tier(text) is tier


@pytest.mark.parametrize("text", ["", "PRO", "-1", "v4", True])
def test_parse_tier_refuses_text_without_a_number(text: object) -> None:
    with pytest.raises(ValueError):
        parse_tier(text)


def test_unknown_tiers_keep_their_number_and_compare() -> None:
    five = parse_tier("5 - SOMETHING NEW")
    assert int(five) == 5 and not five.is_known
    assert Tier.PRO <= five < Tier.SONORAN_ONE
    assert parse_tier("9") > Tier.SONORAN_ONE
    assert five is Tier(5)
    assert five.display_name == "Sonoran CAD plan 5"


def test_tier_names() -> None:
    assert Tier.PRO.display_name == "Sonoran CAD Pro"
    assert Tier.PLUS.short_name == "Plus"
    assert Tier.SONORAN_ONE.display_name == "Sonoran One"
    assert Tier.FREE.display_name == "Sonoran CAD Free"


def test_min_tier_covers_every_client_type_with_the_majority_rule() -> None:
    for request_type in CLIENT_TYPES:
        assert request_type in MIN_TIER, request_type
    assert MIN_TIER["CALL_911"] is Tier.STANDARD
    assert MIN_TIER["GET_CALLS"] is Tier.PLUS
    assert MIN_TIER["CLOSE_CALL"] is Tier.STANDARD  # disputed; page and SDK outvote the table
    assert MIN_TIER["GET_IDENTIFIERS"] is Tier.PLUS  # disputed; page and SDK outvote the table
    assert MIN_TIER["ADD_BLIP"] is Tier.PRO
    assert MIN_TIER["GET_VERSION"] is Tier.FREE
    assert required_tier("lookup") is Tier.PLUS
    assert required_tier("NOPE") is None


def test_every_tiered_type_has_a_path() -> None:
    assert set(MIN_TIER) == set(CATEGORY)
    assert path_for("CALL_911") == "/emergency/call_911"
    assert path_for("LOOKUP_INT") == "/general/lookup_int"
    assert path_for("GET_CHARACTERS") == "/civilian/get_characters"
    assert type_for_path("/general/lookup_value") == "LOOKUP_INT"
    assert type_for_path("/general/call_911") is None
    assert type_for_path("/emergency/call_911/x") is None


def test_read_types_are_exactly_the_harmless_ones() -> None:
    for request_type in ("GET_CALLS", "LOOKUP", "LOOKUP_INT", "CHECK_APIID", "VERIFY_SECRET", "GET_VERSION"):
        assert request_type in READ_TYPES
    for request_type in ("CALL_911", "UNIT_PANIC", "NEW_DISPATCH", "CLOSE_CALL", "ADD_BLIP", "SET_API_ID"):
        assert request_type not in READ_TYPES


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, "INVALID API KEY", CadCredentialsError),
        (400, "invalid community id", CadCredentialsError),
        (400, "API IS NOT ENABLED FOR THIS COMMUNITY", CadNotEnabledError),
        (400, "API ENDPOINT IS NOT ENABLED FOR THIS COMMUNITY", CadNotEnabledError),
        (302, "INVALID REQUEST TYPE", CadRequestTypeError),
        (400, "INVALID EMPTY SEARCH", CadEmptySearchError),
        (404, "API ID NOT LINKED TO AN ACCOUNT IN THIS COMMUNITY", CadNotLinkedError),
        (429, "", CadRateLimitedError),
        (429, "INVALID API KEY", CadRateLimitedError),
        (503, "<html>INVALID REQUEST TYPE</html>", CadUnavailableError),
        (502, "Bad Gateway", CadUnavailableError),
        (400, "SOMETHING ELSE", CadUnexpectedResponseError),
    ],
)
def test_error_from_response(status: int, body: str, expected: type[CadError]) -> None:
    error = error_from_response(status, body, request_type="LOOKUP")
    assert type(error) is expected
    assert error.status == status


def test_plan_error_wording() -> None:
    error = CadPlanError("ADD_BLIP", Tier.PRO, Tier.PLUS)
    assert error.user_message == "Blips need Sonoran CAD Pro; this community is on Plus."
    assert CadPlanError("CALL_911", Tier.STANDARD, Tier.FREE).user_message == (
        "911 calls need Sonoran CAD Standard; this community is on Free."
    )
    assert CadPlanError("SET_POSTALS", Tier.PRO, Tier.STARTER).user_message == (
        "This CAD feature needs Sonoran CAD Pro; this community is on Starter."
    )
    assert "ADD_BLIP" in str(error)


def test_not_enabled_wording_without_a_known_type() -> None:
    error = CadNotEnabledError("API IS NOT ENABLED FOR THIS COMMUNITY", status=400, request_type="SOMETHING")
    assert error.required is None
    assert error.user_message.startswith("The CAD says this CAD feature is not enabled")


def test_every_error_has_an_actionable_sentence() -> None:
    errors: list[CadError] = [
        CadCredentialsError(),
        CadNotEnabledError(request_type="LOOKUP"),
        CadRequestTypeError(),
        CadEmptySearchError(),
        CadNotLinkedError(),
        CadRateLimitedError(),
        CadUnavailableError(),
        CadTimeoutError(),
        CadWrongEndpointError(),
        CadUnexpectedResponseError(),
        CadPlanError("LOOKUP", Tier.PLUS, Tier.STANDARD),
    ]
    messages = {error.user_message for error in errors}
    assert len(messages) == len(errors)  # each failure explains itself differently
    for message in messages:
        assert message.endswith(".")
        assert message[0].isupper() or message[0].isdigit()
        assert len(message) < 220  # fits comfortably in one Discord reply line
    assert "/link" in CadNotLinkedError().user_message
    assert "/setup" in CadCredentialsError().user_message
    assert isinstance(CadTimeoutError(), CadUnavailableError)


def test_feature_names_are_plural_nouns_for_known_types() -> None:
    v2_names = {operation.request_type for operation in OPERATIONS.values()}
    for request_type, name in FEATURE_NAMES.items():
        assert request_type in MIN_TIER or request_type in v2_names
        assert name[0].isupper() or name[0].isdigit()


def test_repr_is_the_log_text() -> None:
    error = CadUnavailableError("connection reset", status=None, request_type="GET_CALLS")
    assert str(error) == "GET_CALLS: connection reset"
    assert repr(error) == "CadUnavailableError('GET_CALLS: connection reset')"
    assert str(CadError(status=500)) == "CAD request -> HTTP 500"
