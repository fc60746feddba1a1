-- Per-guild settings: CAD connection, event routes, command roles, linked accounts.
-- guild_config is the parent row of everything a guild owns; children cascade on delete,
-- so resetting a guild is one DELETE. Timestamps are ISO-8601 UTC text.

CREATE TABLE guild_config (
    guild_id          INTEGER PRIMARY KEY,
    community_id      TEXT,
    server_id         INTEGER NOT NULL DEFAULT 1 CHECK (server_id >= 0),
    -- Fernet token (BOT_SECRET_KEY); never the plain key.
    api_key_encrypted BLOB,
    -- HMAC of the upper-cased key, to find guilds from a push event's key without decrypting.
    push_key_hash     TEXT,
    cooldown_911_s    INTEGER NOT NULL DEFAULT 30 CHECK (cooldown_911_s >= 0),
    updated_at        TEXT NOT NULL
);

CREATE INDEX guild_config_by_push_key ON guild_config (push_key_hash) WHERE push_key_hash IS NOT NULL;

CREATE TABLE event_route (
    guild_id      INTEGER NOT NULL REFERENCES guild_config (guild_id) ON DELETE CASCADE,
    category      TEXT NOT NULL CHECK (category IN ('911', 'panic', 'dispatch', 'units', 'records', 'other')),
    channel_id    INTEGER,
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    ping_role_id  INTEGER,
    last_error    TEXT,
    last_error_at TEXT,
    PRIMARY KEY (guild_id, category)
);

-- The delivery worker reports failures per channel (deleted channel, lost permission).
CREATE INDEX event_route_by_channel ON event_route (channel_id) WHERE channel_id IS NOT NULL;

CREATE TABLE command_role (
    guild_id      INTEGER NOT NULL REFERENCES guild_config (guild_id) ON DELETE CASCADE,
    command_group TEXT NOT NULL CHECK (command_group IN ('911', 'units', 'lookup', 'map', 'dispatch')),
    role_id       INTEGER NOT NULL,
    PRIMARY KEY (guild_id, command_group)
);

CREATE TABLE user_link (
    guild_id     INTEGER NOT NULL REFERENCES guild_config (guild_id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL,
    account_uuid TEXT NOT NULL,
    username     TEXT,
    api_id       TEXT,
    linked_at    TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- One CAD account belongs to at most one member per guild, so an event about an account finds one member.
CREATE UNIQUE INDEX user_link_by_account ON user_link (guild_id, account_uuid);
