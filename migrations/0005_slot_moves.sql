-- Slot moves as a persisted state machine (docs/architecture.md §7).
--
-- Raft holds each move's record (id, slot, from, to, base epoch); each
-- region's Postgres holds its own step of it here, written in the same
-- transaction (and under the same exclusive slot lock) as the change it
-- describes. The target's row decides the one race that matters: activation
-- at epoch+1 and a roll-back both take the target's slot lock and read this
-- row, so once one of them wins the other is refused, whichever mover
-- process (a re-run, or a paused one that wakes up) asks.
CREATE TABLE slot_moves (
    move_id    text    NOT NULL,
    role       text    NOT NULL CONSTRAINT slot_moves_role_known CHECK (role IN ('source', 'target')),
    slot       integer NOT NULL,
    -- The slot's epoch when the move began; the target activates at epoch + 1.
    epoch      bigint  NOT NULL,
    -- source: frozen → (released | aborted)
    -- target: copying → copied → active → (done) | aborted
    step       text    NOT NULL CONSTRAINT slot_moves_step_known
        CHECK (step IN ('copying', 'copied', 'active', 'done', 'frozen', 'released', 'aborted')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (move_id, role)
);
CREATE INDEX slot_moves_slot ON slot_moves (slot, epoch);

-- Nodes keep an in-memory copy of slot_ownership to refuse requests for
-- slots they do not own before touching Redis (docs/architecture.md §3.4);
-- every change is announced so the copy follows within milliseconds, whoever
-- wrote it (the node's map sync, a mover in another process, an operator).
CREATE FUNCTION slot_ownership_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('slot_ownership', NEW.slot::text);
    RETURN NULL;
END $$;
CREATE TRIGGER slot_ownership_notify AFTER INSERT OR UPDATE ON slot_ownership
    FOR EACH ROW EXECUTE FUNCTION slot_ownership_notify();
