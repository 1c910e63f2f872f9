-- A claim takes a campaign's queued rows in id order, after the id of the claimer's previous
-- claim (`settle_and_claim`, `ClaimCursor` in src/store/campaigns.rs). With the index on
-- (campaign_id, status) alone, PostgreSQL could only find them by sorting the whole queue on
-- every claim, or by walking the primary key past every row already sent (quadratic in the
-- campaign's size either way). Ending the index with id hands the queued rows over in the
-- order the claim wants them, from the cursor on, with no sort and no filter.
DROP INDEX deliveries_by_status;
CREATE INDEX deliveries_by_status ON deliveries (campaign_id, status, id);
