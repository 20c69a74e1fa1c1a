-- The events feed must never skip a committed event (downstream fraud,
-- analytics and cart systems rely on it being complete).
--
-- `seq` is taken at insert, so a transaction can hold a lower `seq` and
-- commit after a later one: a cursor over `seq` alone can move past it for
-- good. Each event therefore records the id of the transaction that wrote
-- it, and the feed serves only events of transactions older than the
-- oldest one still running (`pg_snapshot_xmin(pg_current_snapshot())`),
-- ordered by (xid, seq). Below that horizon nothing can appear any more,
-- so a cursor (xid, seq) taken from what was served never skips an event.
ALTER TABLE outbox ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX outbox_feed_order ON outbox (xid, seq);
