-- Version 0008 on SQLite (0008_campaign_links.sql). PostgreSQL's 0001 already has this schema; this version
-- exists so that the numbers mean the same schema on both backends.
SELECT 1;
