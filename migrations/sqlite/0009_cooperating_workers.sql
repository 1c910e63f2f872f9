-- Cooperating send workers, campaign-wide caps and scheduled campaigns (issue #16 items 4-6).
-- The same schema as migrations/postgres/0009_cooperating_workers.sql.

-- Where `send` found the edition (relative to the project folder when inside it), so that a
-- `bulletin worker` can compose it itself; NULL for campaigns from before this version.
ALTER TABLE campaigns ADD COLUMN edition_path TEXT;
-- The campaign's own caps, fixed when it is created ([smtp] rate / hourly_cap or --rate) and
-- held across every worker through campaign_pacing; 0 = none.
ALTER TABLE campaigns ADD COLUMN rate REAL NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN hourly_cap BIGINT NOT NULL DEFAULT 0;
-- `send --at`: a `draft` campaign with this RFC 3339 UTC time is scheduled; a worker starts it
-- (freezes its audience) once the time has come. The zone it was given in, for listings.
ALTER TABLE campaigns ADD COLUMN scheduled_at TEXT;
ALTER TABLE campaigns ADD COLUMN schedule_zone TEXT;

-- Exclusive (`send`: refuses while any live lease exists) or shared (`worker`: any number).
ALTER TABLE send_leases ADD COLUMN kind TEXT NOT NULL DEFAULT 'exclusive'
    CHECK (kind IN ('exclusive', 'shared'));
-- The worker's --name (host:pid by default), for `campaigns show` and logs.
ALTER TABLE send_leases ADD COLUMN name TEXT NOT NULL DEFAULT '';

-- One row per paced campaign: the slots every worker reserves from before it claims rows.
-- Times in microseconds since the Unix epoch (integer arithmetic, no text parsing per turn).
CREATE TABLE campaign_pacing (
    campaign_id     BIGINT  PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    -- The earliest time the next message may leave.
    next_slot_us    BIGINT  NOT NULL DEFAULT 0,
    -- The current hour window of hourly_cap, and how many messages it holds.
    window_start_us BIGINT  NOT NULL DEFAULT 0,
    window_count    BIGINT  NOT NULL DEFAULT 0
);
