-- Version 0004 on SQLite (0004_confirmation_cooldowns.sql). PostgreSQL's 0001 already has this schema; this version
-- exists so that the numbers mean the same schema on both backends.
SELECT 1;
