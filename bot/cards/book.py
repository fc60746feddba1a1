"""The live cards one processor batch (or one command) touches: loaded once, changed in memory, written once.

Consecutive changes to one card within a batch become one write, and a batch that fails part-way restores
the checkpoint it took, so the cards always match the outbox rows written beside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from bot.cards.state import CardKind, CardState, dump_state, is_finished, load_state
from bot.storage.cards import CardSnapshot, CardStore, CardUpdate, NewCard, StoredCardKey
from bot.storage.push_store import PushChanges


@dataclass(frozen=True, slots=True)
class CardSlot:
    """A card as a batch sees it: loaded from the database, or created by an earlier event of the batch."""

    state: CardState
    channel_id: int
    community_id: str | None
    card_id: int | None  # None until a card created in this batch is written
    message_id: int | None
    post_pending: bool
    order: int
    changed: bool = False
    visible_changes: int = 0


class CardBook:
    """The live cards one batch touches: loaded once, changed in memory in event order, written once."""

    def __init__(self, stored: CardStore) -> None:
        self._stored = stored
        # A key mapped to None was looked up and does not exist (yet).
        self._slots: dict[StoredCardKey, CardSlot | None] = {}
        self._open_loaded: set[tuple[int, str]] = set()
        self._next_new_order = 1 << 62

    async def load(self, keys: Iterable[StoredCardKey]) -> None:
        wanted = [key for key in dict.fromkeys(keys) if key not in self._slots]
        if not wanted:
            return
        self._add(await self._stored.snapshots(wanted))
        for key in wanted:
            self._slots.setdefault(key, None)

    async def open_cards(self, guild_id: int, kind: CardKind) -> list[tuple[StoredCardKey, CardSlot]]:
        """The guild's unfinished cards of ``kind`` as they stand in this batch, oldest first."""
        if (guild_id, kind.value) not in self._open_loaded:
            self._open_loaded.add((guild_id, kind.value))
            self._add(await self._stored.unfinished_snapshots(guild_id, kind.value))
        found = [
            (key, slot)
            for key, slot in self._slots.items()
            if slot is not None
            and key[0] == guild_id
            and key[1] == kind.value
            and not is_finished(slot.state)
        ]
        return sorted(found, key=lambda pair: pair[1].order)

    def get(self, key: StoredCardKey) -> CardSlot | None:
        return self._slots[key]

    def create(self, key: StoredCardKey, state: CardState, channel_id: int, community_id: str | None) -> None:
        self._next_new_order += 1
        self._slots[key] = CardSlot(
            state=state,
            channel_id=channel_id,
            community_id=community_id,
            card_id=None,
            message_id=None,
            post_pending=True,
            order=self._next_new_order,
            changed=True,
        )

    def change(self, key: StoredCardKey, state: CardState, *, visible: bool = True) -> None:
        slot = self._slots[key]
        assert slot is not None
        self._slots[key] = replace(
            slot, state=state, changed=True, visible_changes=slot.visible_changes + int(visible)
        )

    def post_queued(self, key: StoredCardKey) -> None:
        slot = self._slots[key]
        assert slot is not None
        self._slots[key] = replace(slot, post_pending=True)

    def checkpoint(self) -> dict[StoredCardKey, CardSlot | None]:
        return dict(self._slots)

    def restore(self, checkpoint: dict[StoredCardKey, CardSlot | None]) -> None:
        self._slots = checkpoint

    def write_into(self, changes: PushChanges) -> None:
        for (guild_id, kind, call_id), slot in self._slots.items():
            if slot is None or not slot.changed:
                continue
            if slot.card_id is None:
                changes.new_cards.append(
                    NewCard(
                        guild_id=guild_id,
                        kind=kind,
                        call_id=call_id,
                        community_id=slot.community_id,
                        channel_id=slot.channel_id,
                        state=dump_state(slot.state),
                        finished=is_finished(slot.state),
                    )
                )
            else:
                changes.card_updates.append(
                    CardUpdate(
                        card_id=slot.card_id,
                        state=dump_state(slot.state),
                        finished=is_finished(slot.state),
                        version_increment=slot.visible_changes,
                    )
                )

    def _add(self, snapshots: Iterable[CardSnapshot]) -> None:
        for snapshot in snapshots:
            card = snapshot.card
            key = (card.guild_id, card.kind, card.call_id)
            if self._slots.get(key) is not None:
                continue  # already loaded, and perhaps changed by this batch
            self._slots[key] = CardSlot(
                state=load_state(card.kind, card.state),
                channel_id=card.channel_id,
                community_id=card.community_id,
                card_id=card.id,
                message_id=card.message_id,
                post_pending=snapshot.post_pending,
                order=card.id,
            )
