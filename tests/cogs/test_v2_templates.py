"""/dispatch template: a call from one of the community's dispatch templates (CAD v2), asked in a modal.

Through SimCord against the simulator's v2 routes: the templates autocomplete (default first), the form asks
the required fields first (at most five, Discord's limit), select fields take one of their options, the status
is the template's active option, the dispatcher's own unit is the unit target (by Discord ID), and the call's
live card starts from the template's bound fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.storage.models import Category
from testing.cad_simulator import CadSimulator
from tests.cogs._member_helpers import refusal, reply
from tests.harness import COMMUNITY_ID, World, test_settings


@pytest.fixture
def bot_settings(cad_world_sim: CadSimulator, tmp_path: Path) -> Settings:
    return test_settings(cad_world_sim.base_url, tmp_path / "bot.sqlite3", api_version=2)


@pytest.fixture
def dispatcher(world: World) -> Any:
    """The admin (dispatch is admin-only until a role is set), whose CAD account links their Discord."""
    account = world.community.add_account("kmorgan", discord_id=world.admin.id)
    world.community.add_unit(account=account, unit_num="D-01", name="Kim Morgan")
    return world.admin


def template_with(template_id: int, name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "templateId": template_id,
        "name": name,
        "statusOptions": [{"id": "new", "label": "New", "status": 1}],
        "sections": [{"uid": "main", "label": "Main", "fields": fields}],
    }


def text_field(uid: str, *, required: bool) -> dict[str, Any]:
    return {"uid": uid, "type": "text", "label": uid.replace("_", " ").title(), "required": required}


async def open_form(world: World, actor: Any, template_id: int = 1) -> Any:
    shown = await actor.slash(world.channel, "dispatch template", template=template_id)
    assert shown.modal is not None, shown
    return shown


def input_ids(shown: Any) -> list[str]:
    return [row["components"][0]["custom_id"] for row in shown.modal["components"]]


async def test_templates_autocomplete_default_first(world: World, dispatcher: Any) -> None:
    world.sim.v2.add_dispatch_template(COMMUNITY_ID)  # "UK Control Room", the default (id 1)
    world.sim.v2.add_dispatch_template(COMMUNITY_ID, template_with(2, "Alpha Traffic", []))

    choices = await dispatcher.autocomplete(world.channel, "dispatch template", "template", "")

    assert choices == [{"name": "UK Control Room", "value": 1}, {"name": "Alpha Traffic", "value": 2}]
    assert await dispatcher.autocomplete(world.channel, "dispatch template", "template", "alp") == [
        {"name": "Alpha Traffic", "value": 2}
    ]


async def test_a_call_from_a_template_fills_its_fields_and_attaches_the_dispatcher(
    world: World, dispatcher: Any
) -> None:
    world.sim.v2.add_dispatch_template(COMMUNITY_ID)
    await world.storage.routes.set_channel(world.guild.id, Category.DISPATCH, world.alerts.id)

    shown = await open_form(world, dispatcher)
    # Required first (Grade, Description), then optional (Caller, Code); units and status are not asked.
    assert input_ids(shown) == [
        "template:priority",
        "template:description",
        "template:caller_name",
        "template:code",
    ]
    result = await dispatcher.submit_modal(
        shown,
        {
            "template:priority": "immediate",
            "template:description": "Disturbance outside the station",
            "template:caller_name": "Alex Smith",
            "template:code": "",
        },
    )

    assert "created" in reply(result), reply(result)
    assert "D-01 Kim Morgan" in reply(result)
    [sent] = world.sim.requests_of("create_custom_dispatch_call")
    assert sent.data == {
        "templateId": 1,
        "values": {
            "status": "deployed",
            "priority": "Immediate",
            "description": "Disturbance outside the station",
            "caller_name": "Alex Smith",
        },
        "discord": str(dispatcher.id),
    }
    pipeline = world.bot.services.pipeline
    assert pipeline is not None
    await pipeline.wait_until_idle(timeout_s=5)
    await world.env.settle()
    [card] = world.alerts.history()
    assert "UK Control Room" in card.embeds[0].title
    assert "Disturbance outside the station" in card.embeds[0].description


async def test_a_select_answer_outside_its_options_is_refused_and_nothing_is_sent(
    world: World, dispatcher: Any
) -> None:
    world.sim.v2.add_dispatch_template(COMMUNITY_ID)
    shown = await open_form(world, dispatcher)

    result = await dispatcher.submit_modal(
        shown, {"template:priority": "Whenever", "template:description": "x", "template:caller_name": ""}
    )

    assert (
        refusal(world, result)
        == "**Grade** takes one of: Immediate, Priority, Routine. Run the command again."
    )
    assert world.sim.requests_of("create_custom_dispatch_call") == []


async def test_a_long_template_asks_required_fields_first_and_says_what_did_not_fit(
    world: World, dispatcher: Any
) -> None:
    fields = [text_field(f"opt_{n}", required=False) for n in range(3)]
    fields += [text_field(f"req_{n}", required=True) for n in range(3)]
    world.sim.v2.add_dispatch_template(COMMUNITY_ID, template_with(1, "Long", fields))

    shown = await open_form(world, dispatcher)
    assert input_ids(shown) == [
        "template:req_0",
        "template:req_1",
        "template:req_2",
        "template:opt_0",
        "template:opt_1",
    ]
    result = await dispatcher.submit_modal(
        shown, {"template:req_0": "a", "template:req_1": "b", "template:req_2": "c"}
    )

    assert "The form had no room for **Opt 2**; fill them in the CAD if needed." in reply(result)
    [sent] = world.sim.requests_of("create_custom_dispatch_call")
    assert sent.data["values"] == {"req_0": "a", "req_1": "b", "req_2": "c"}  # no status field to fill


async def test_a_template_with_more_required_fields_than_a_form_holds_is_refused(
    world: World, dispatcher: Any
) -> None:
    fields = [text_field(f"req_{n}", required=True) for n in range(6)]
    world.sim.v2.add_dispatch_template(COMMUNITY_ID, template_with(1, "Huge", fields))

    result = await dispatcher.slash(world.channel, "dispatch template", template=1)

    assert refusal(world, result) == (
        "The template **Huge** has 6 required fields; a Discord form holds 5. Create this call in the CAD, "
        "or ask an admin to trim the template."
    )


async def test_an_unknown_template_number_is_refused(world: World, dispatcher: Any) -> None:
    world.sim.v2.add_dispatch_template(COMMUNITY_ID)

    result = await dispatcher.slash(world.channel, "dispatch template", template=9)

    assert refusal(world, result) == "This CAD has no dispatch template #9; pick one from the list."
