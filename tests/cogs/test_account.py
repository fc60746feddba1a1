"""/link (Account Secret modal and API-ID proof), /unlink and /whoami through SimCord and the CAD simulator."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.cad.tiers import Tier
from bot.storage.models import CommandGroup
from tests.cogs._member_helpers import answer_types, refusal, reply, reply_mentions
from tests.harness import World

# Distinctive, so any copy of it in a file, log or message is easy to find.
SECRET = "7e57c0de-5ec2-4e7a-9b1d-5ec2e7000042"
FOX_UUID = "a1b2c3d4-0000-4e7a-9b1d-0000000000f0"
SECRET_FIELD = "account_secret"


@pytest.fixture
def fox(world: World) -> Any:
    """The plain member's own CAD account (not linked yet)."""
    return world.community.add_account("mfox", uuid=FOX_UUID, secret=SECRET)


def read_database_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.glob("bot.sqlite3*")}


async def open_and_submit(world: World, actor: Any, secret: str) -> Any:
    shown = await actor.slash(world.channel, "link")
    assert shown.modal is not None, f"expected the secret modal, got {shown!r}"
    return await actor.submit_modal(shown, {SECRET_FIELD: secret})


# ------------------------------------------------------------------------------------- secret linking


async def test_link_opens_a_modal_asking_for_the_account_secret(world: World) -> None:
    since = len(world.env.http_requests)
    shown = await world.member.slash(world.channel, "link")

    assert answer_types(world, since) == [9]
    assert shown.modal is not None
    assert shown.modal["title"] == "Link your Sonoran CAD account"
    assert "Account Secret ID" in str(shown.modal["components"])
    assert world.sim.requests == []  # nothing slow before the modal


async def test_a_valid_secret_links_the_members_account(world: World, fox: Any) -> None:
    shown = await world.member.slash(world.channel, "link")
    since = len(world.env.http_requests)
    submitted = await world.member.submit_modal(shown, {SECRET_FIELD: f"  {SECRET}  "})

    assert answer_types(world, since)[0] == 5  # the submit is deferred before the CAD is asked
    assert reply(submitted) == (
        "🔗 Linked to **mfox**. /panic and /unit status now act on your unit; /unlink undoes this."
    )
    assert reply_mentions(world, since) == [{"parse": []}]
    link = await world.storage.links.get(world.guild.id, world.member.id)
    assert link is not None
    assert (link.account_uuid, link.username, link.api_id) == (FOX_UUID, "mfox", None)
    [verify] = world.sim.requests_of("VERIFY_SECRET")
    assert verify.data == [{"secret": SECRET}]
    [account] = world.sim.requests_of("GET_ACCOUNT")
    assert account.data == [{"account": FOX_UUID}]


async def test_after_linking_unit_commands_act_on_that_account(world: World, fox: Any) -> None:
    unit = world.community.add_unit(account=fox, unit_num="2B-04")
    await open_and_submit(world, world.member, SECRET)

    await world.member.slash(world.channel, "unit status", status=3)

    assert world.sim.requests_of("UNIT_STATUS")[0].data == [{"account": FOX_UUID, "status": 3, "serverId": 1}]
    assert unit.status == 3


async def test_the_secret_is_never_stored_logged_or_echoed(
    world: World, fox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    submitted = await open_and_submit(world, world.member, SECRET)
    assert reply(submitted).startswith("🔗 Linked to **mfox**")
    # A wrong secret travels the error path too.
    other = "0badc0de-5ec2-4e7a-9b1d-5ec2e7000099"
    refused = await open_and_submit(world, world.officer, other)
    refusal(world, refused)
    await world.member.slash(world.channel, "whoami")

    database_files = await asyncio.to_thread(read_database_files, tmp_path)
    assert "bot.sqlite3" in database_files, "the test should be reading the bot's real database"
    for name, raw in database_files.items():  # the database and its WAL and shared-memory files
        for secret in (SECRET, other):
            assert secret.encode() not in raw, name
            assert secret.upper().encode() not in raw, name
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    assert SECRET not in logged
    assert other not in logged
    for entry in world.env.http_requests:  # everything the bot sent to Discord
        assert SECRET not in repr(entry.json)
        assert other not in repr(entry.json)


async def test_unexpected_failure_while_linking_does_not_log_the_secret(
    world: World, fox: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)

    async def broken_verify(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("verification backend exploded")

    monkeypatch.setattr(world.bot.services.cad, "verify_secret", broken_verify)

    submitted = await open_and_submit(world, world.member, SECRET)

    assert "Something went wrong on our side (error id `" in reply(submitted)
    [error] = world.env.errors
    assert isinstance(error, RuntimeError)
    assert "unexpected error" in caplog.text  # logged, with its traceback...
    assert SECRET not in caplog.text  # ...but not with the modal's contents
    assert await world.storage.links.get(world.guild.id, world.member.id) is None


async def test_a_wrong_secret_is_refused_and_nothing_is_stored(world: World, fox: Any) -> None:
    submitted = await open_and_submit(world, world.member, "0badc0de-0000-4000-8000-000000000000")

    assert refusal(world, submitted) == (
        "That account secret does not match any account in this community's CAD; "
        "copy it again from your CAD account settings."
    )
    assert await world.storage.links.get(world.guild.id, world.member.id) is None


@pytest.mark.parametrize(
    "typed", ["not-a-secret-just-some-words-here!!", "7e57c0de5ec24e7a9b1d5ec2e7000042zz", "x" * 40]
)
async def test_a_secret_in_the_wrong_format_is_refused_before_the_cad(world: World, typed: str) -> None:
    submitted = await open_and_submit(world, world.member, typed)

    assert refusal(world, submitted).startswith("That doesn't look like an Account Secret ID")
    assert typed not in reply(submitted)
    assert world.sim.requests == []


async def test_linking_without_plus_stores_the_account_without_a_username(world: World, fox: Any) -> None:
    world.community.tier = Tier.STANDARD  # VERIFY_SECRET is Standard, GET_ACCOUNT needs Plus

    submitted = await open_and_submit(world, world.member, SECRET)

    assert reply(submitted).startswith("🔗 Linked to your CAD account.")
    link = await world.storage.links.get(world.guild.id, world.member.id)
    assert link is not None
    assert (link.account_uuid, link.username) == (FOX_UUID, None)
    assert world.sim.requests_of("GET_ACCOUNT") == []  # the known plan answered, no request wasted


async def test_a_failed_username_lookup_does_not_undo_a_proven_link(world: World, fox: Any) -> None:
    world.sim.fail_next(1, 400, request_type="GET_ACCOUNT")

    submitted = await open_and_submit(world, world.member, SECRET)

    assert reply(submitted).startswith("🔗 Linked to your CAD account.")
    link = await world.storage.links.get(world.guild.id, world.member.id)
    assert link is not None and link.account_uuid == FOX_UUID


async def test_secret_linking_below_standard_is_explained(world: World, fox: Any) -> None:
    world.community.tier = Tier.STARTER

    submitted = await open_and_submit(world, world.member, SECRET)
    assert (
        refusal(world, submitted) == "Account links need Sonoran CAD Standard; this community is on Starter."
    )

    # Once the plan is known, /link says so straight away instead of asking for a secret it can't check.
    again = await world.member.slash(world.channel, "link")
    assert again.modal is None
    assert refusal(world, again) == "Account links need Sonoran CAD Standard; this community is on Starter."
    assert world.sim.requests_of("VERIFY_SECRET") == []


async def test_secret_linking_with_a_rejected_api_key(world: World, fox: Any) -> None:
    world.community.rotate_key("not-the-key-the-bot-has")

    submitted = await open_and_submit(world, world.member, SECRET)

    assert refusal(world, submitted) == (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )
    assert await world.storage.links.get(world.guild.id, world.member.id) is None


async def test_secret_linking_with_the_api_switched_off(world: World, fox: Any) -> None:
    world.community.api_enabled = False

    submitted = await open_and_submit(world, world.member, SECRET)

    assert "account links are not enabled for this community" in refusal(world, submitted)


async def test_secret_linking_cad_timeout_is_still_answered(world: World, fox: Any) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 30.0

    submitted = await open_and_submit(world, world.member, SECRET)

    assert refusal(world, submitted).startswith("The CAD took too long to answer")
    assert await world.storage.links.get(world.guild.id, world.member.id) is None


async def test_link_in_an_unconfigured_guild_asks_for_setup(world: World) -> None:
    await world.storage.guilds.reset(world.guild.id)

    result = await world.member.slash(world.channel, "link")

    assert result.modal is None
    assert "an admin needs to run /setup" in refusal(world, result)


async def test_linking_stays_open_when_unit_commands_need_a_role(world: World, fox: Any) -> None:
    patrol = world.guild.create_role("Patrol")
    await world.storage.roles.set(world.guild.id, CommandGroup.UNITS, patrol.id)

    submitted = await open_and_submit(world, world.member, SECRET)

    # Linking only proves who the member is; the role still gates what they can do with it.
    assert reply(submitted).startswith("🔗 Linked to **mfox**")
    panic = await world.member.slash(world.channel, "panic")
    assert refusal(world, panic) == "You need **@Patrol** to use unit commands."


async def test_relinking_moves_an_account_to_the_member_who_proved_it(world: World) -> None:
    # The officer's account secret, proven by another member: the latest proof wins.
    submitted = await open_and_submit(world, world.member, world.officer_account.secret)

    assert reply(submitted).startswith("🔗 Linked to **jreyes**")
    assert await world.storage.links.get(world.guild.id, world.officer.id) is None


# ------------------------------------------------------------------------------------- API-ID linking


async def test_api_id_linking_stores_the_account_found_by_that_api_id(world: World) -> None:
    api_id = str(world.member.id)
    account = world.community.add_account("mfox", uuid=FOX_UUID, api_ids=["STEAM:1100001", api_id])

    since = len(world.env.http_requests)
    result = await world.member.slash(world.channel, "link", method="api-id")

    assert answer_types(world, since)[0] == 5
    assert reply(result).startswith("🔗 Linked to **mfox**")
    assert world.sim.requests_of("CHECK_APIID")[0].data == [{"apiId": api_id}]
    assert world.sim.requests_of("GET_ACCOUNT")[0].data == [{"apiId": api_id}]
    link = await world.storage.links.get(world.guild.id, world.member.id)
    assert link is not None
    assert (link.account_uuid, link.username, link.api_id) == (account.uuid, "mfox", api_id)

    await world.member.slash(world.channel, "panic")
    assert world.sim.requests_of("UNIT_PANIC")[0].data == [{"account": FOX_UUID, "isPanic": True}]


async def test_api_id_linking_without_plus_targets_units_by_api_id(world: World) -> None:
    world.community.tier = Tier.STANDARD
    api_id = str(world.member.id)
    account = world.community.add_account("mfox", api_ids=[api_id])
    unit = world.community.add_unit(account=account, unit_num="2B-04")

    result = await world.member.slash(world.channel, "link", method="api-id")

    assert reply(result).startswith("🔗 Linked to **mfox**")
    assert world.sim.requests_of("GET_ACCOUNT") == []
    link = await world.storage.links.get(world.guild.id, world.member.id)
    assert link is not None
    assert (link.username, link.api_id) == ("mfox", api_id)

    await world.member.slash(world.channel, "panic")
    assert world.sim.requests_of("UNIT_PANIC")[0].data == [{"apiId": api_id, "isPanic": True}]
    assert unit.is_panic is True
    whoami = await world.member.slash(world.channel, "whoami")
    assert f"Linked through API ID `{api_id}`" in reply(whoami)
    assert "api-id:" not in reply(whoami)


async def test_api_id_linking_when_the_id_is_not_on_any_account(world: World) -> None:
    world.community.add_account("mfox", api_ids=["someone-else"])

    result = await world.member.slash(world.channel, "link", method="api-id")

    assert refusal(world, result) == (
        f"No CAD account in this community has your Discord user ID (`{world.member.id}`) as an API ID. "
        "Add it under API IDs in your CAD account settings, then run `/link method:api-id` again."
    )
    assert await world.storage.links.get(world.guild.id, world.member.id) is None


async def test_api_id_linking_only_ever_checks_the_members_own_discord_id(world: World) -> None:
    # The officer's Discord ID is on an account; the plain member cannot borrow it.
    world.community.add_account("jreyes2", api_ids=[str(world.officer.id)])

    result = await world.member.slash(world.channel, "link", method="api-id")

    refusal(world, result)
    assert [r.data for r in world.sim.requests_of("CHECK_APIID")] == [[{"apiId": str(world.member.id)}]]
    assert await world.storage.links.get(world.guild.id, world.member.id) is None


async def test_api_id_linking_below_standard_is_explained(world: World) -> None:
    world.community.tier = Tier.STARTER

    result = await world.member.slash(world.channel, "link", method="api-id")

    assert refusal(world, result) == "Account links need Sonoran CAD Standard; this community is on Starter."
    assert world.sim.requests_of("CHECK_APIID") == []


async def test_api_id_linking_with_a_rejected_api_key(world: World) -> None:
    world.community.rotate_key("not-the-key-the-bot-has")

    result = await world.member.slash(world.channel, "link", method="api-id")

    assert refusal(world, result) == (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


async def test_api_id_linking_with_the_api_switched_off(world: World) -> None:
    world.community.api_enabled = False

    result = await world.member.slash(world.channel, "link", method="api-id")

    assert "account links are not enabled for this community" in refusal(world, result)


async def test_api_id_linking_cad_timeout_is_still_answered(world: World) -> None:
    await world.install_impatient_cad()
    world.sim.latency_s = 30.0

    result = await world.member.slash(world.channel, "link", method="api-id")

    assert refusal(world, result).startswith("The CAD took too long to answer")


# ------------------------------------------------------------------------------------- unlink, whoami


async def test_whoami_shows_the_linked_account(world: World) -> None:
    result = await world.officer.slash(world.channel, "whoami")

    text = reply(result)
    assert text.startswith("You're linked to **jreyes**.")
    assert "Account: `5b0f6c1e-8d2a-4c3b-9f4e-2a7d1c9e0b11`" in text
    assert "Linked <t:" in text
    assert world.sim.requests == []


async def test_whoami_when_not_linked(world: World) -> None:
    result = await world.member.slash(world.channel, "whoami")

    assert refusal(world, result) == (
        "Your Discord account isn't linked to a Sonoran CAD account yet; run /link first."
    )


async def test_whoami_neutralises_a_username_from_the_cad(world: World) -> None:
    await world.storage.links.link(world.guild.id, world.member.id, FOX_UUID, username="@everyone **boss**")

    result = await world.member.slash(world.channel, "whoami")

    text = reply(result)
    assert "@everyone" not in text
    assert "\\*\\*boss\\*\\*" in text


async def test_unlink_forgets_the_link(world: World) -> None:
    result = await world.officer.slash(world.channel, "unlink")

    assert reply(result) == "Unlinked from **jreyes**. Run /link to link again."
    assert await world.storage.links.get(world.guild.id, world.officer.id) is None
    panic = await world.officer.slash(world.channel, "panic")
    assert "run /link first" in refusal(world, panic)


async def test_unlink_when_not_linked(world: World) -> None:
    result = await world.member.slash(world.channel, "unlink")

    assert reply(result) == "You weren't linked to a CAD account here, so there was nothing to unlink."
