-- Version 11 ends PostgreSQL's index deliveries_by_status with id, so that a claim finds the
-- queued rows in id order (see migrations/postgres/0011_claims_in_id_order.sql). SQLite needs
-- nothing: `id` is the rowid, and every SQLite index already ends with the rowid. This file
-- keeps the two backends' schema version numbers the same.
SELECT 1;
