-- One row per attempt to deliver a message: what `campaigns show` reports when an operator
-- asks what happened to a recipient (when each try began and ended, where in the SMTP
-- conversation it failed, the relay's words). `deliveries` keeps only the latest of these.
--
-- A row is written in the same transaction that settles the attempt's delivery, so the log
-- and the delivery never disagree. Attempts that were handed back untried (the relay could not
-- take mail, or refused us rather than the recipient) are not attempts and leave no row; nor
-- do messages a sender had in flight when it died, whose end nobody saw: their delivery says
-- `uncertain`.
--
-- `attempt` is the delivery's `attempts` count when the try was claimed (1, 2, ...).
-- `stage` is where a failure happened ("RCPT TO", "end of data", ...), NULL when accepted.
-- `outcome`: sent | deferred (refused for now, tried again later) | failed | uncertain (the
-- whole message handed over, no final reply) | skipped.
--
-- Portable SQL: the same statement creates the table on PostgreSQL. Times are RFC 3339 UTC
-- text like every other time in this schema. The CHECK uses the OR form for the reason
-- 0002 gives.
--
-- The foreign key makes a later rebuild of `deliveries` (the SQLite way to change a CHECK)
-- cascade into this table: such a migration must copy these rows aside first.

CREATE TABLE delivery_attempts (
    id              INTEGER PRIMARY KEY,
    delivery_id     INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT    NOT NULL,
    stage           TEXT,
    reply           TEXT    NOT NULL,
    outcome         TEXT    NOT NULL
                    CHECK (outcome = 'sent' OR outcome = 'deferred' OR outcome = 'failed'
                           OR outcome = 'uncertain' OR outcome = 'skipped')
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempt);
