-- Idempotency keys are scoped to the caller and the campaign
-- (docs/decisions.md). A campaign lives in one region, so this is the one
-- scope every region can enforce alone: 0001's per-caller index held only
-- within a region, and a key reused on campaigns homed in two regions gave
-- two 201s there but a 422 within one region. Same key, same campaign:
-- at most one redemption, released or not.
DROP INDEX redemptions_idempotency_once;
CREATE UNIQUE INDEX redemptions_idempotency_once
    ON redemptions (campaign_id, user_id, idempotency_key);
