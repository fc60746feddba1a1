-- How each guild receives the CAD's push events: 'http' (the listener, or FiveM's forwarding; every guild set up
-- before this migration) or 'websocket' (the bot's own session on Sonoran's API websocket hub).
ALTER TABLE guild_config ADD COLUMN push_transport TEXT NOT NULL DEFAULT 'http'
    CHECK (push_transport IN ('http', 'websocket'));

CREATE INDEX guild_config_websocket ON guild_config (community_id, server_id) WHERE push_transport = 'websocket';
