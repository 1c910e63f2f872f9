-- One sender per campaign, and honest outcomes for messages whose fate is unknown.
--
-- `send_leases`: a sender holds a lease on the campaign it sends (owner, host, pid, heartbeat,
-- expiry). It is taken and renewed in the same transactions that claim deliveries, so a second
-- `send` of the same campaign sees a live lease and refuses, naming the holder; a crashed
-- sender's lease expires (or, on the same host, is seen to belong to a process that no longer
-- exists) and the next `send` takes over. The key is (campaign, owner) so that several
-- cooperating workers can later hold leases on one campaign at once; today the store admits one.
--
-- `deliveries` is rebuilt (nothing points at it) to add:
-- - the status `uncertain`: the message was handed over whole but no final reply came back
--   (the connection dropped or timed out after the final dot), or a sender died with it in
--   flight. The relay may have it. `send` treats these on resume as it always treated crash
--   leftovers: sent again, or skipped with --skip-uncertain;
-- - `claimed_by`: the lease owner that claimed a `sending` row. Only that owner may settle it,
--   and a row is only ever crash leftover when its owner's lease is gone;
-- - `retry_from`: the attempt count when an operator last asked to retry failed deliveries
--   (`campaigns retry`); the attempts limit counts from there, and `attempts` keeps the total.
--
-- `campaigns.halt_reason` says why a campaign is paused (the relay refused us, with its reply;
-- paused by an operator; ...), for `campaigns show`.

CREATE TABLE send_leases (
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- A random token per sender process, never reused.
    owner           TEXT    NOT NULL,
    host            TEXT    NOT NULL,
    pid             INTEGER NOT NULL,
    -- The process's start time as the kernel counts it, so a recycled pid is not taken for
    -- the original holder. Empty where unknown.
    pid_started     TEXT    NOT NULL DEFAULT '',
    acquired_at     TEXT    NOT NULL,
    heartbeat_at    TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    PRIMARY KEY (campaign_id, owner)
);

ALTER TABLE campaigns ADD COLUMN halt_reason TEXT;

CREATE TABLE deliveries_rebuilt (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- NULL once the subscriber was erased; the row stays so that counts still add up.
    subscriber_id   INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    language        TEXT,
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status = 'queued' OR status = 'sending' OR status = 'sent'
                           OR status = 'failed' OR status = 'skipped' OR status = 'uncertain'),
    attempts        INTEGER NOT NULL DEFAULT 0,
    retry_from      INTEGER NOT NULL DEFAULT 0,
    -- After a temporary failure: not before this time (exponential backoff with jitter).
    next_attempt_at TEXT,
    last_reply      TEXT,
    message_id      TEXT,
    claimed_by      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    sent_at         TEXT,
    UNIQUE (campaign_id, subscriber_id)
);
INSERT INTO deliveries_rebuilt
    (id, campaign_id, subscriber_id, language, status, attempts, next_attempt_at, last_reply,
     message_id, created_at, updated_at, sent_at)
SELECT id, campaign_id, subscriber_id, language, status, attempts, next_attempt_at, last_reply,
       message_id, created_at, updated_at, sent_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
CREATE INDEX deliveries_by_status ON deliveries (campaign_id, status);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
