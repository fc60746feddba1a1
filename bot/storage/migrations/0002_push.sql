-- Push-event pipeline: accepted events (inbox), what each guild must receive (outbox), live call cards,
-- and the unit names learnt from the CAD. Times are Unix seconds (REAL): they are compared, not shown.

-- Small facts the pipeline keeps, such as the random prefix that makes Discord nonces unique per database.
CREATE TABLE push_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per accepted push envelope (or API action), written and committed before the sender gets its 2xx.
-- The key is never stored: `body` is the envelope without it, `guild_ids` the fan-out decided on acceptance.
CREATE TABLE push_inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  REAL NOT NULL,
    event_type   TEXT NOT NULL,
    community_id TEXT,
    guild_ids    TEXT NOT NULL,
    body         TEXT NOT NULL,
    processed_at REAL,
    outcome      TEXT
);

CREATE INDEX push_inbox_unprocessed ON push_inbox (id) WHERE processed_at IS NULL;
-- /status asks when a community last reached the listener.
CREATE INDEX push_inbox_by_community ON push_inbox (community_id, received_at);

-- One live card (a single Discord message edited in place) per call, per guild.
-- `version` grows with every change; an edit is due while `rendered_version` is behind it, and it always
-- renders the latest state, so bursts of changes coalesce into one edit.
CREATE TABLE push_card (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id         INTEGER NOT NULL REFERENCES guild_config (guild_id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('dispatch', '911')),
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

CREATE INDEX push_card_edit_due ON push_card (channel_id, next_attempt_at)
    WHERE message_id IS NOT NULL AND version > rendered_version;

-- One row per embed a channel must receive, or per live card's first post (`card_id` set).
-- Rows packed into one Discord message share `batch_id` (the lead row's id, which also gives the nonce);
-- it is fixed and committed before the request, so a retry after a crash resends exactly the same message.
CREATE TABLE push_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id        INTEGER NOT NULL REFERENCES guild_config (guild_id) ON DELETE CASCADE,
    channel_id      INTEGER NOT NULL,
    category        TEXT NOT NULL,
    card_id         INTEGER REFERENCES push_card (id) ON DELETE CASCADE,
    embed           TEXT,
    ping_role_id    INTEGER,
    accepted_at     REAL NOT NULL,
    created_at      REAL NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    batch_id        INTEGER,
    solo            INTEGER NOT NULL DEFAULT 0 CHECK (solo IN (0, 1)),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    message_id      INTEGER,
    last_error      TEXT,
    finished_at     REAL
);

CREATE INDEX push_outbox_pending ON push_outbox (channel_id, id) WHERE status = 'pending';
CREATE INDEX push_outbox_finished ON push_outbox (finished_at) WHERE status != 'pending';

-- Unit directory per community, learnt from login/update events: identifier ID -> "1A-12 Jordan Reyes".
CREATE TABLE push_unit_name (
    community_id TEXT NOT NULL,
    ident_id     INTEGER NOT NULL,
    label        TEXT NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (community_id, ident_id)
);
