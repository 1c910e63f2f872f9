-- A worker's own hourly cap (issue #16 item 5: `bulletin worker --name mx1 --hourly-cap 500`).
-- The same schema as migrations/postgres/0012_worker_pacing.sql.

-- One row per worker name (the outbound IP's identity): every campaign the worker works and
-- every restart count against the same window, and workers sharing a name share the cap.
-- The same columns and arithmetic as campaign_pacing; times in microseconds since the Unix
-- epoch. next_slot_us is unused for now (a worker's rate is paced in its process).
CREATE TABLE worker_pacing (
    name            TEXT    PRIMARY KEY,
    next_slot_us    BIGINT  NOT NULL DEFAULT 0,
    -- The current hour window, counted from its first message, and how many it holds.
    window_start_us BIGINT  NOT NULL DEFAULT 0,
    window_count    BIGINT  NOT NULL DEFAULT 0
);
