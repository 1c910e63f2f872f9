-- Version 0002 on SQLite (0002_cheaper_status_checks.sql). PostgreSQL's 0001 already has this schema; this version
-- exists so that the numbers mean the same schema on both backends.
SELECT 1;
