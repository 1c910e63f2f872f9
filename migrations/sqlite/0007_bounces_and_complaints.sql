-- Bounces and complaints (issue #14): a delivery that a DSN reports as undeliverable becomes
-- `bounced`, and every bounce, complaint or auto-reply read from the bounce mailbox is one
-- `feedback` row, so that reading the mailbox again does nothing twice.

-- Rebuilding `deliveries` (SQLite cannot change a CHECK) would cascade-delete the attempt log,
-- whose rows reference it with ON DELETE CASCADE: set the log aside first and put it back.
CREATE TABLE delivery_attempts_kept AS SELECT * FROM delivery_attempts;
DROP TABLE delivery_attempts;

CREATE TABLE deliveries_rebuilt (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- NULL once the subscriber was erased; the row stays so that counts still add up.
    subscriber_id   INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    language        TEXT,
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status = 'queued' OR status = 'sending' OR status = 'sent'
                           OR status = 'failed' OR status = 'skipped' OR status = 'uncertain'
                           OR status = 'bounced'),
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
    (id, campaign_id, subscriber_id, language, status, attempts, retry_from, next_attempt_at,
     last_reply, message_id, claimed_by, created_at, updated_at, sent_at)
SELECT id, campaign_id, subscriber_id, language, status, attempts, retry_from, next_attempt_at,
       last_reply, message_id, claimed_by, created_at, updated_at, sent_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
CREATE INDEX deliveries_by_status ON deliveries (campaign_id, status);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);

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
INSERT INTO delivery_attempts
    (id, delivery_id, attempt, started_at, finished_at, stage, reply, outcome)
SELECT id, delivery_id, attempt, started_at, finished_at, stage, reply, outcome
FROM delivery_attempts_kept;
DROP TABLE delivery_attempts_kept;
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempt);

CREATE TABLE feedback (
    id              INTEGER PRIMARY KEY,
    -- SHA-256 of the message's bytes: the same message read again (a second run, the same
    -- mailbox through IMAP) is recognised and skipped.
    message_key     TEXT    NOT NULL UNIQUE,
    received_at     TEXT    NOT NULL,
    -- Where it was read: `maildir:<file>`, `mbox:<file>#<n>`, `imap:<mailbox>/<uid>`.
    origin          TEXT    NOT NULL,
    kind            TEXT    NOT NULL
                    CHECK (kind = 'hard' OR kind = 'soft' OR kind = 'rejected'
                           OR kind = 'delayed' OR kind = 'complaint' OR kind = 'auto_reply'
                           OR kind = 'delivered'),
    delivery_id     INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    campaign_id     INTEGER REFERENCES campaigns (id) ON DELETE SET NULL,
    subscriber_id   INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    -- The evidence: RFC 3464 Action and Status, the remote server's diagnostic.
    action          TEXT,
    status          TEXT,
    diagnostic      TEXT,
    -- What bulletin did about it, for `campaigns show` and the report.
    decision        TEXT    NOT NULL
);
CREATE INDEX feedback_by_delivery ON feedback (delivery_id);
CREATE INDEX feedback_by_campaign ON feedback (campaign_id, kind);
