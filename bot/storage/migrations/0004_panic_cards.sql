-- /panic posts its alert at once as a live card (kind 'panic') and edits in the CAD's answer afterwards, so the
-- card kinds grow by one. SQLite cannot change a CHECK in place: push_card is rebuilt with the same columns
-- and ids.
--
-- Foreign keys stay on inside a migration's transaction, and dropping push_card would cascade-delete the outbox
-- rows that refer to it (card posts, pending or sent): they are set aside first and put back unchanged.

CREATE TABLE push_card_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id         INTEGER NOT NULL REFERENCES guild_config (guild_id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('dispatch', '911', 'panic')),
    call_id          INTEGER NOT NULL,
    community_id     TEXT,
    channel_id       INTEGER NOT NULL,
    state            TEXT NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1,
    rendered_version INTEGER NOT NULL DEFAULT 0,
    message_id       INTEGER,
    finished         INTEGER NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    UNIQUE (guild_id, kind, call_id)
);

INSERT INTO push_card_new (
    id, guild_id, kind, call_id, community_id, channel_id, state, version, rendered_version, message_id,
    finished, attempts, next_attempt_at, last_error, created_at, updated_at
)
SELECT
    id, guild_id, kind, call_id, community_id, channel_id, state, version, rendered_version, message_id,
    finished, attempts, next_attempt_at, last_error, created_at, updated_at
FROM push_card;

-- Ids of deleted cards are never handed out again.
DELETE FROM sqlite_sequence WHERE name = 'push_card_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'push_card_new', seq FROM sqlite_sequence WHERE name = 'push_card';

CREATE TEMP TABLE card_posts_kept AS SELECT * FROM push_outbox WHERE card_id IS NOT NULL;
DROP TABLE push_card;
ALTER TABLE push_card_new RENAME TO push_card;
INSERT INTO push_outbox SELECT * FROM card_posts_kept;
DROP TABLE card_posts_kept;

CREATE INDEX push_card_edit_due ON push_card (channel_id, next_attempt_at)
    WHERE message_id IS NOT NULL AND version > rendered_version;
