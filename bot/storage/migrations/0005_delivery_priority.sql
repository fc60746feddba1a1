-- Deliveries go out in urgency order (bot.storage.models.delivery_priority): 0 panic, 1 911 calls, 2 dispatch,
-- 3 everything else. Rows already queued get their category's priority, as new rows do.
ALTER TABLE push_outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 3;

UPDATE push_outbox
SET priority = CASE category WHEN 'panic' THEN 0 WHEN '911' THEN 1 WHEN 'dispatch' THEN 2 ELSE 3 END
WHERE status = 'pending';

-- A channel's next message: its most urgent pending row, the oldest of that priority first.
CREATE INDEX push_outbox_pending_priority ON push_outbox (channel_id, priority, id) WHERE status = 'pending';

-- The processor takes urgent events (panic, 911) out of a backlog first; it looks them up by type.
CREATE INDEX push_inbox_unprocessed_type ON push_inbox (event_type, id) WHERE processed_at IS NULL;
