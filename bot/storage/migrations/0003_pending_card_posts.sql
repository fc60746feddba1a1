-- The processor asks, for every card an event changes, whether the card's post still waits in the outbox;
-- housekeeping asks the same before deleting old cards. Only pending card posts are indexed: a handful of rows,
-- however long the outbox's backlog of ordinary messages grows.
CREATE INDEX push_outbox_pending_card ON push_outbox (card_id) WHERE status = 'pending' AND card_id IS NOT NULL;
