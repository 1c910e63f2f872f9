-- Version 0005 on SQLite (0005_delivery_attempts.sql). PostgreSQL's 0001 already has this schema; this version
-- exists so that the numbers mean the same schema on both backends.
SELECT 1;
