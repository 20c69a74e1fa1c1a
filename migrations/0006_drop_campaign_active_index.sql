-- `redemptions_campaign_active (campaign_id) WHERE released_at IS NULL`
-- duplicated the prefix of `redemptions_user_use_once (campaign_id,
-- user_id, use_no) WHERE released_at IS NULL`, and the planner, planning a
-- new campaign's statements while its statistics still said "few rows",
-- chose it for the per-user use check of every redemption: a scan of every
-- active redemption of the campaign per winner (16.5 M index tuples read
-- for 5,000 winners). Queries by campaign alone use the remaining index's
-- prefix; one index fewer to maintain per redemption.
DROP INDEX IF EXISTS redemptions_campaign_active;
