-- The Bloom filters of a region's nodes load, after every generation job,
-- the codes created since their last load. Without an index on created_at
-- that was a scan of the whole table per page of 50,000 codes (a region
-- holding 6 M codes scanned it 20 times to learn 1 M new ones). Codes are
-- appended, so created_at follows the heap's order: a BRIN index finds the
-- recent block ranges for almost nothing per insert.
CREATE INDEX IF NOT EXISTS codes_created_brin ON codes USING brin (created_at)
    WITH (autosummarize = on);
