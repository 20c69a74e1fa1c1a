-- Rows that record what was handed out never change underneath the limits.
--
-- 0001's redemption trigger re-checked limits only on INSERT; its UPDATE
-- branch forbade un-releasing and nothing else, so an
-- `UPDATE redemptions SET seat_no = 999` (or use_no, campaign_id, pool_code)
-- skipped every limit check. A redemption is immutable except for its
-- release: `released_at` and `release_reason` go from NULL to a value once.
-- The same holds for the other rows the limits rest on: a generated code
-- keeps its campaign, number and intended user (only `used` flips), and a
-- campaign keeps its id, slot and code. Deleting stays possible: a slot move
-- replaces the target's rows of the slot, and a delete never exceeds a limit.

CREATE OR REPLACE FUNCTION redemptions_within_limits() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c campaigns%ROWTYPE;
    code_campaign text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.released_at IS NOT NULL AND NEW.released_at IS NULL THEN
            RAISE EXCEPTION 'a released redemption stays released'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'redemptions_release_final';
        END IF;
        -- Everything but the release columns is fixed at insert, and a
        -- release is recorded once.
        IF (to_jsonb(NEW) - 'released_at' - 'release_reason')
               IS DISTINCT FROM (to_jsonb(OLD) - 'released_at' - 'release_reason')
           OR (OLD.released_at IS NOT NULL
               AND (NEW.released_at IS DISTINCT FROM OLD.released_at
                    OR NEW.release_reason IS DISTINCT FROM OLD.release_reason)) THEN
            RAISE EXCEPTION 'a redemption is immutable except for its release'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'redemptions_immutable';
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

-- A generated code belongs to one campaign, at one number, for one intended
-- user, for good; only `used` changes.
CREATE FUNCTION codes_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'used') IS DISTINCT FROM (to_jsonb(OLD) - 'used') THEN
        RAISE EXCEPTION 'a code is immutable except for `used`'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'codes_immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER codes_immutable BEFORE UPDATE ON codes
    FOR EACH ROW EXECUTE FUNCTION codes_immutable();

-- A campaign's identity (id, home slot, code) is what every redemption,
-- code and Redis key of it refers to; 0001 already fixes kind and limits.
CREATE FUNCTION campaigns_identity_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.campaign_id <> OLD.campaign_id
       OR NEW.slot <> OLD.slot
       OR NEW.code IS DISTINCT FROM OLD.code THEN
        RAISE EXCEPTION 'campaign id, slot and code are immutable'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'campaigns_identity_immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER campaigns_identity_immutable BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaigns_identity_immutable();

-- Events are facts already published to consumers: never rewritten.
CREATE FUNCTION outbox_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'outbox events are never rewritten'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'outbox_append_only';
END $$;
CREATE TRIGGER outbox_append_only BEFORE UPDATE ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_append_only();
