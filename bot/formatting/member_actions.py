"""Replies to members' own actions: 911/311 calls, panic, unit status, account links.

Pure functions returning message text; anything that came from the CAD (usernames) is neutralised here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.formatting.context import unit_status_text
from bot.formatting.text import neutralise, truncate


def call_sent(call_id: int, *, emergency: bool) -> str:
    """``📞 911 call #1042 sent to dispatch.`` (311 for civil calls)."""
    kind = "911" if emergency else "311"
    return f"📞 {kind} call #{call_id} sent to dispatch."


def blank_option(option: str) -> str:
    return f"The {option} can't be blank; tell dispatch what to write there."


def panic_confirmation(is_panic: bool) -> str:
    if is_panic:
        return "🚨 Panic ON — dispatch has been alerted."
    return "Panic cleared."


def panic_not_confirmed(is_panic: bool, reason: str) -> str:
    """The alert went to Discord but the CAD did not take the press; ``reason`` is the CAD error's sentence."""
    what = (
        "🚨 Your panic alert was sent to Discord"
        if is_panic
        else "Your panic-cleared notice was sent to Discord"
    )
    return f"{what}, but the CAD did not confirm it: {reason}"


# The alert's line when sending UNIT_PANIC failed inside the bot (a bug), so the CAD's answer is unknown.
PANIC_NOT_SENT = "The bot could not send it to the CAD; check the unit's panic in the CAD."


def status_confirmation(code: int, labels: Mapping[int, str] | None = None) -> str:
    """``Your unit status is now **En route**.`` (the community's own label for the code when known)."""
    return f"Your unit status is now **{unit_status_text(code, labels)}**."


STATUS_CHOICE_REQUIRED = (
    "Pick a status from the list, or give a community status number as `code` — exactly one of the two."
)


def _account_name(username: str | None) -> str:
    name = truncate(neutralise(username), 100).strip() if username else ""
    return f"**{name}**" if name else "your CAD account"


def link_confirmation(username: str | None) -> str:
    return (
        f"🔗 Linked to {_account_name(username)}. "
        "/panic and /unit status now act on your unit; /unlink undoes this."
    )


def unlink_confirmation(username: str | None, *, was_linked: bool) -> str:
    if not was_linked:
        return "You weren't linked to a CAD account here, so there was nothing to unlink."
    return f"Unlinked from {_account_name(username)}. Run /link to link again."


def whoami(
    *,
    username: str | None,
    account_uuid: str | None,
    api_id: str | None,
    linked_at: datetime,
) -> str:
    """Who the member is linked to, for /whoami. The secret is never stored, so it can't appear here."""
    lines = [f"You're linked to {_account_name(username)}."]
    if account_uuid:
        lines.append(f"Account: `{neutralise(account_uuid)}`")
    if api_id:
        lines.append(f"Linked through API ID `{neutralise(api_id)}`")
    lines.append(f"Linked <t:{int(linked_at.timestamp())}:R>.")
    return "\n".join(lines)


def whoami_by_discord(*, username: str | None, account_uuid: str | None, link_too: bool) -> str:
    """/whoami on CAD v2 when the CAD recognises the member by the Discord account linked in its settings."""
    lines = [
        f"The CAD recognises you as {_account_name(username)} through the Discord link in your CAD account."
    ]
    if account_uuid:
        lines.append(f"Account: `{neutralise(account_uuid)}`")
    if link_too:
        lines.append("You also linked an account with /link here; commands act as that one.")
    return "\n".join(lines)


API_ID_NOT_NEEDED = (
    "This server's CAD recognises you by your Discord account: link Discord in your CAD account settings "
    "once and /panic, /unit and the dispatch buttons just work. Without that, run /link with your Account "
    "Secret ID instead."
)


def secret_format_refusal() -> str:
    return (
        "That doesn't look like an Account Secret ID: it should look like "
        "`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. Copy it from your CAD account settings and run /link again."
    )


def api_id_not_set(discord_user_id: int) -> str:
    return (
        f"No CAD account in this community has your Discord user ID (`{discord_user_id}`) as an API ID. "
        "Add it under API IDs in your CAD account settings, then run `/link method:api-id` again."
    )
