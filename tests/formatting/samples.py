"""One realistic envelope per push event type: the contract's examples (push-events.yaml), plus the two
undocumented types. Shared by the parser, card and golden formatting tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.cad.events import PushEvent, parse_event
from bot.formatting.events import FormatContext

ACCOUNT = "5b0f6c1e-8d2a-4c3b-9f4e-2a7d1c9e0b11"

SAMPLE_ENVELOPES: dict[str, dict[str, Any]] = {
    "EVENT_911": {
        "type": "EVENT_911",
        "data": {
            "call": {
                "callId": 1042,
                "isEmergency": True,
                "caller": "Maria Lopez",
                "location": "Alta St / Integrity Way",
                "description": "Two cars collided, one driver not responding",
            },
            "apiIds": ["steam:11000010a1b2c3d"],
            "communityUserId": "license:3f9a2c7e",
            "metaData": {"postal": "7012"},
        },
    },
    "EVENT_REMOVE_911": {"type": "EVENT_REMOVE_911", "data": {"callIds": [1042]}},
    "EVENT_UNIT_LOGIN": {
        "type": "EVENT_UNIT_LOGIN",
        "data": {
            "unit": {
                "id": 57,
                "accId": ACCOUNT,
                "status": 2,
                "isPanic": False,
                "location": "Mission Row PD",
                "aop": "Los Santos",
                "data": {
                    "apiIds": ["steam:11000010a1b2c3d"],
                    "unitNum": "1A-12",
                    "name": "Jordan Reyes",
                    "district": "Central",
                    "department": "LSPD",
                    "subdivision": "Patrol",
                    "rank": "Officer",
                    "group": "",
                    "page": 0,
                },
            },
            "isDispatch": False,
            "selfDispatch": False,
        },
    },
    "EVENT_UNIT_LOGOUT": {"type": "EVENT_UNIT_LOGOUT", "data": {"identId": 57}},
    "EVENT_UNIT_STATUS": {"type": "EVENT_UNIT_STATUS", "data": {"identIds": [57], "status": 3}},
    "EVENT_UNIT_PANIC": {"type": "EVENT_UNIT_PANIC", "data": {"identIds": [57], "isPanic": True}},
    "EVENT_UNIT_GROUP_ADD": {
        "type": "EVENT_UNIT_GROUP_ADD",
        "data": {"identId": 57, "groupName": "Ladder 61"},
    },
    "EVENT_UNIT_GROUP_REMOVE": {
        "type": "EVENT_UNIT_GROUP_REMOVE",
        "data": {"identId": 57, "groupName": "Ladder 61"},
    },
    "EVENT_UNIT_GROUP_CHANGE_NAME": {
        "type": "EVENT_UNIT_GROUP_CHANGE_NAME",
        "data": {"identIds": [57, 58], "oldName": "Ladder 61", "newName": "Truck 61"},
    },
    "EVENT_DISPATCH_NEW": {
        "type": "EVENT_DISPATCH_NEW",
        "data": {
            "eventOriginIdent": 12,
            "dispatch": {
                "callId": 311,
                "origin": 0,
                "status": 1,
                "priority": 2,
                "block": "",
                "address": "Legion Square",
                "postal": "7153",
                "title": "Traffic Stop",
                "code": "10-38 - Traffic Stop",
                "description": "Silver sedan, plate 8KXP214",
                "notes": [],
                "idents": [57],
                "metaData": {},
            },
        },
    },
    "EVENT_DISPATCH_EDIT": {
        "type": "EVENT_DISPATCH_EDIT",
        "data": {
            "eventOriginIdent": 12,
            "dispatch": {
                "callId": 311,
                "origin": 0,
                "status": 1,
                "priority": 1,
                "block": "",
                "address": "Legion Square",
                "postal": "7153",
                "title": "Traffic Stop - Felony",
                "code": "10-38 - Traffic Stop",
                "description": "Driver fled on foot",
                "notes": [],
                "idents": [57, 58],
                "primary": 57,
                "trackPrimary": True,
                "metaData": {},
            },
        },
    },
    "EVENT_DISPATCH_CLOSED": {
        "type": "EVENT_DISPATCH_CLOSED",
        "data": {"eventOriginIdent": 12, "callIds": [311]},
    },
    "EVENT_DISPATCH_NOTE": {
        "type": "EVENT_DISPATCH_NOTE",
        "data": {
            "callId": 311,
            "note": {"time": "21:14:05", "label": "1A-12", "type": "text", "content": "Suspect in custody"},
        },
    },
    "EVENT_DISPATCH_UNIT_ATTACH": {
        "type": "EVENT_DISPATCH_UNIT_ATTACH",
        "data": {"eventOriginIdent": 12, "idents": [58], "callId": 311},
    },
    "EVENT_DISPATCH_UNIT_DETACH": {
        "type": "EVENT_DISPATCH_UNIT_DETACH",
        "data": {"eventOriginIdent": 12, "ident": 58, "callId": 311},
    },
    "EVENT_DISPATCH_TOGGLE_BODYCAM": {
        "type": "EVENT_DISPATCH_TOGGLE_BODYCAM",
        "data": {"ident": 57, "state": True},
    },
    "EVENT_RECORD_ADD": {
        "type": "EVENT_RECORD_ADD",
        "data": {
            "record": {
                "recordTypeId": 3,
                "id": 884,
                "syncId": "",
                "name": "Warrant",
                "type": 2,
                "sections": [
                    {
                        "category": 0,
                        "label": "Subject",
                        "fields": [
                            {"type": "input", "label": "First Name", "value": "Dale", "uid": "first"},
                            {"type": "input", "label": "Last Name", "value": "Whitfield", "uid": "last"},
                        ],
                    }
                ],
            }
        },
    },
    "EVENT_RECORD_EDIT": {
        "type": "EVENT_RECORD_EDIT",
        "data": {
            "record": {
                "recordTypeId": 3,
                "id": 884,
                "syncId": "",
                "name": "Warrant",
                "type": 2,
                "sections": [],
            }
        },
    },
    "EVENT_RECORD_REMOVE": {
        "type": "EVENT_RECORD_REMOVE",
        "data": {
            "record": {
                "recordTypeId": 3,
                "id": 884,
                "syncId": "",
                "name": "Warrant",
                "type": 2,
                "sections": [],
            }
        },
    },
    "EVENT_STREETSIGN_UPDATED": {
        "type": "EVENT_STREETSIGN_UPDATED",
        "data": {
            "signData": {
                "ids": [4, 5],
                "text1": "ACCIDENT AHEAD",
                "text2": "LEFT LANE CLOSED",
                "text3": "SLOW DOWN",
            }
        },
    },
    "EVENT_TONE": {
        "type": "EVENT_TONE",
        "data": {
            "url": "https://s3.sonoransoftware.com/tones/structure-fire.mp3",
            "playTonesTo": [{"type": 3, "value": "LSFD", "label": "LSFD"}],
        },
    },
    "EVENT_CHAR_SELECTED": {"type": "EVENT_CHAR_SELECTED", "data": {"accId": ACCOUNT, "id": 2451}},
    "EVENT_NEW_CALLOUT": {
        "type": "EVENT_NEW_CALLOUT",
        "data": {
            "callout": {
                "calloutLocations": [{"x": 215.4, "y": -810.2, "z": 0}],
                "pedWeaponData": ["weapon_unarmed"],
                "pedActionOnNoActionFound": "flee",
                "pedChanceToFleeFromPlayer": 40,
                "pedChanceToObtainWeapons": 10,
                "pedChanceToAttackPlayer": 5,
                "pedChanceToSurrender": 45,
            }
        },
    },
    "EVENT_STATION_ALERT": {
        "type": "EVENT_STATION_ALERT",
        "data": {
            "locations": [{"name": "Fire Station 7", "open": ["Bay 1", "Bay 2"], "close": []}],
            "message": "Engine 7, structure fire, 1200 Vespucci Blvd",
            "colors": ["red"],
            "tone": "tone1",
        },
    },
    "EVENT_PAGER_REBORN": {
        "type": "EVENT_PAGER_REBORN",
        "data": {
            "addresses": ["FIRE-ST07"],
            "identIds": [61],
            "nature": "Emergency",
            "body": "Structure fire, 1200 Vespucci Blvd",
        },
    },
    "EVENT_COMMUNITY_LINK_VERIFIED": {
        "type": "EVENT_COMMUNITY_LINK_VERIFIED",
        "data": {"communityUserId": "license:3f9a2c7e", "accountUuid": ACCOUNT},
    },
    "EVENT_UNIT_UPDATE": {
        "type": "EVENT_UNIT_UPDATE",
        "data": {
            "units": [
                {
                    "id": 57,
                    "status": 2,
                    "isPanic": False,
                    "location": "Legion Square",
                    "data": {"unitNum": "1A-12", "name": "Jordan Reyes"},
                }
            ]
        },
    },
}

DOCUMENTED_TYPES = [name for name in SAMPLE_ENVELOPES if name != "EVENT_UNIT_UPDATE"]

# An in-game printer handing a unit a PDF of a record: recognised, acknowledged, never posted.
PRINT_RECORD_ENVELOPE: dict[str, Any] = {
    "type": "EVENT_PRINT_RECORD",
    "data": {"identId": 57, "url": "https://sonorancad.com/print/884.pdf"},
}

# Names the bot knows for the units in these samples, as the processor would pass in FormatContext.
UNIT_NAMES = {57: "1A-12 Jordan Reyes", 58: "1A-14 Sam Ortiz", 12: "DISP-1 Alex Kim", 61: "E7 Chris Lane"}

FIXED_NOW = datetime(2025, 3, 14, 21, 14, 5, tzinfo=UTC)


def make_context(**overrides: Any) -> FormatContext:
    """The context the golden files were rendered with (fixed time, known unit names)."""
    values: dict[str, Any] = {"community_label": "Los Santos RP", "unit_names": UNIT_NAMES, "now": FIXED_NOW}
    values.update(overrides)
    return FormatContext(**values)


def parse_one(type_: str, data: object, envelope: dict[str, Any] | None = None) -> PushEvent:
    """Parse an envelope that must yield exactly one event."""
    outcome = parse_event(type_, data, envelope)
    assert not outcome.invalid, outcome.invalid
    assert len(outcome.events) == 1, outcome
    return outcome.events[0]


def sample_event(type_: str) -> PushEvent:
    envelope = SAMPLE_ENVELOPES[type_]
    return parse_one(envelope["type"], envelope["data"], envelope)
