-- Version 0007 on SQLite (0007_bounces_and_complaints.sql). PostgreSQL's 0001 already has this schema; this version
-- exists so that the numbers mean the same schema on both backends.
SELECT 1;
