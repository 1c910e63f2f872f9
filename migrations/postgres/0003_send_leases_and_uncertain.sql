-- Version 0003 on SQLite (0003_send_leases_and_uncertain.sql). PostgreSQL's 0001 already has this schema; this version
-- exists so that the numbers mean the same schema on both backends.
SELECT 1;
