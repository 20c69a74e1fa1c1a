-- Coupon node schema. Every business limit of docs/architecture.md §3.1 is enforced
-- here, by a named constraint, whatever Redis or a node believes.
-- All timestamps are timestamptz and are written and read in UTC.

-- Slots this region's Postgres believes it owns (docs/architecture.md §3.4). A node
-- serves a slot only while its row is 'active'; the redeem transaction takes
-- a shared advisory lock on the slot and re-reads this row, and a freeze takes
-- the exclusive lock, so it waits out every in-flight transaction.
CREATE TABLE slot_ownership (
    slot       integer PRIMARY KEY CONSTRAINT slot_ownership_slot_range CHECK (slot >= 0 AND slot < 1024),
    epoch      bigint  NOT NULL CONSTRAINT slot_ownership_epoch_positive CHECK (epoch >= 1),
    state      text    NOT NULL CONSTRAINT slot_ownership_state_known CHECK (state IN ('active', 'frozen')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaigns (
    campaign_id       text PRIMARY KEY,
    slot              integer NOT NULL,
    name              text NOT NULL,
    kind              text NOT NULL CONSTRAINT campaigns_kind_known CHECK (kind IN ('shared', 'unique', 'pool')),
    -- Shared: the vanity code users type. Pool: an optional claim code that
    -- hands out the next unused pool code. Unique: none.
    code              text CONSTRAINT campaigns_code_unique UNIQUE,
    discount          jsonb NOT NULL,
    -- Shared only; NULL = unlimited. Pool and unique campaigns are capped by
    -- their codes.
    total_limit       integer CONSTRAINT campaigns_total_limit_positive CHECK (total_limit IS NULL OR total_limit >= 1),
    per_user_limit    integer NOT NULL CONSTRAINT campaigns_per_user_limit_positive CHECK (per_user_limit >= 1),
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'active' CONSTRAINT campaigns_status_known CHECK (status IN ('active', 'paused')),
    release_on_refund boolean NOT NULL,
    audience          jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_window_ordered CHECK (starts_at < ends_at),
    CONSTRAINT campaigns_shared_has_code CHECK (kind <> 'shared' OR code IS NOT NULL),
    CONSTRAINT campaigns_total_limit_shared_only CHECK (kind = 'shared' OR total_limit IS NULL)
);

-- Limits are fixed at creation: the seat and use numbers already handed out
-- are only sound if they cannot change underneath.
CREATE FUNCTION campaigns_limits_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.total_limit IS DISTINCT FROM OLD.total_limit
       OR NEW.per_user_limit <> OLD.per_user_limit
       OR NEW.kind <> OLD.kind THEN
        RAISE EXCEPTION 'campaign limits and kind are immutable'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'campaigns_limits_immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER campaigns_limits_immutable BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaigns_limits_immutable();

-- Generated codes of pool and unique campaigns. `seq` numbers a campaign's
-- codes 1..n so a pool claim can start at a random point and skip used rows
-- through the partial index instead of walking them.
CREATE TABLE codes (
    code          text PRIMARY KEY,
    campaign_id   text NOT NULL,
    seq           bigint NOT NULL,
    intended_user text,
    used          boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT codes_seq_unique UNIQUE (campaign_id, seq)
);
CREATE INDEX codes_unused ON codes (campaign_id, seq) WHERE NOT used;
CREATE INDEX codes_intended_user ON codes (campaign_id, intended_user) WHERE intended_user IS NOT NULL;

-- No foreign key to campaigns on purpose: it would KEY SHARE-lock the one
-- campaign row on every insert (a hidden hot row under a burst). The trigger
-- below reads the campaign without locking it.
CREATE TABLE redemptions (
    redemption_id   text PRIMARY KEY,
    campaign_id     text NOT NULL,
    slot            integer NOT NULL,
    epoch           bigint NOT NULL,
    user_id         text NOT NULL,
    order_id        text NOT NULL,
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,
    -- What the user typed, normalized (vanity, claim or generated code).
    code            text NOT NULL,
    -- The generated code consumed (pool and unique campaigns).
    pool_code       text,
    -- Shared campaigns with a total limit: the seat taken, 1..total_limit.
    seat_no         integer CONSTRAINT redemptions_seat_positive CHECK (seat_no IS NULL OR seat_no >= 1),
    -- This user's use number in the campaign, 1..per_user_limit.
    use_no          integer NOT NULL CONSTRAINT redemptions_use_positive CHECK (use_no >= 1),
    -- Frozen discount snapshot: later campaign edits never change it.
    discount        jsonb NOT NULL,
    redeemed_at     timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz,
    release_reason  text
);

-- Total cap: at most one active redemption per seat, and seats are 1..total_limit
-- (checked by the trigger), so at most total_limit active redemptions.
CREATE UNIQUE INDEX redemptions_seat_once ON redemptions (campaign_id, seat_no)
    WHERE released_at IS NULL AND seat_no IS NOT NULL;
-- Single-use codes: a generated code has at most one active redemption.
CREATE UNIQUE INDEX redemptions_code_once ON redemptions (pool_code)
    WHERE released_at IS NULL AND pool_code IS NOT NULL;
-- Per-user cap: use numbers 1..per_user_limit (trigger), each at most once.
CREATE UNIQUE INDEX redemptions_user_use_once ON redemptions (campaign_id, user_id, use_no)
    WHERE released_at IS NULL;
-- One caller's Idempotency-Key consumes at most one use, released or not.
CREATE UNIQUE INDEX redemptions_idempotency_once ON redemptions (user_id, idempotency_key);
CREATE INDEX redemptions_campaign_active ON redemptions (campaign_id) WHERE released_at IS NULL;

CREATE FUNCTION redemptions_within_limits() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c campaigns%ROWTYPE;
    code_campaign text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- Only a release may change a redemption, and never back.
        IF OLD.released_at IS NOT NULL AND NEW.released_at IS NULL THEN
            RAISE EXCEPTION 'a released redemption stays released'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'redemptions_release_final';
        END IF;
        RETURN NEW;
    END IF;
    SELECT * INTO c FROM campaigns WHERE campaign_id = NEW.campaign_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'campaign % does not exist', NEW.campaign_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'redemptions_campaign_exists';
    END IF;
    IF NEW.use_no > c.per_user_limit THEN
        RAISE EXCEPTION 'use % exceeds per_user_limit %', NEW.use_no, c.per_user_limit
            USING ERRCODE = 'check_violation', CONSTRAINT = 'redemptions_use_within_per_user_limit';
    END IF;
    IF c.kind = 'shared' THEN
        IF c.total_limit IS NOT NULL AND (NEW.seat_no IS NULL OR NEW.seat_no > c.total_limit) THEN
            RAISE EXCEPTION 'seat % outside 1..%', NEW.seat_no, c.total_limit
                USING ERRCODE = 'check_violation', CONSTRAINT = 'redemptions_seat_within_total_limit';
        END IF;
        IF NEW.pool_code IS NOT NULL THEN
            RAISE EXCEPTION 'shared campaigns have no pool codes'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'redemptions_code_matches_kind';
        END IF;
    ELSE
        SELECT campaign_id INTO code_campaign FROM codes WHERE code = NEW.pool_code;
        IF code_campaign IS DISTINCT FROM NEW.campaign_id THEN
            RAISE EXCEPTION 'code % is not a code of campaign %', NEW.pool_code, NEW.campaign_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'redemptions_code_matches_kind';
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER redemptions_within_limits BEFORE INSERT OR UPDATE ON redemptions
    FOR EACH ROW EXECUTE FUNCTION redemptions_within_limits();

-- Every attempt, including failures, for fraud signals. Written in batches
-- off the hot path.
CREATE TABLE redemption_attempts (
    attempt_id   bigserial PRIMARY KEY,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    campaign_id  text,
    code         text NOT NULL,
    user_id      text,
    ip           text,
    result       text NOT NULL
);
CREATE INDEX redemption_attempts_user ON redemption_attempts (user_id, attempted_at DESC);

-- Transactional outbox: written in the same transaction as the state change.
-- event_id is deterministic (redemption id + type) so consumers deduplicate.
CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    event_id    text NOT NULL CONSTRAINT outbox_event_once UNIQUE,
    type        text NOT NULL,
    campaign_id text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    data        jsonb NOT NULL
);

CREATE TABLE jobs (
    job_id      text PRIMARY KEY,
    campaign_id text NOT NULL,
    kind        text NOT NULL,
    state       text NOT NULL CONSTRAINT jobs_state_known CHECK (state IN ('running', 'done', 'failed')),
    done        bigint NOT NULL DEFAULT 0,
    total       bigint NOT NULL,
    report      jsonb,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
