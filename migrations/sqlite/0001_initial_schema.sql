-- The whole data model of ARCHITECTURE.md. Later migrations add columns; they do not redesign.
--
-- Portability: only types with a direct PostgreSQL counterpart are used (INTEGER/BIGINT, TEXT,
-- BOOLEAN). Timestamps are RFC 3339 UTC text ("2026-11-28T15:23:40.123Z"), which sorts correctly
-- and reads the same in both databases. JSON is stored as TEXT here (JSONB on PostgreSQL).

CREATE TABLE lists (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    double_opt_in   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY,
    -- The address as the person wrote it, with the domain lower-cased and IDNA-encoded.
    email           TEXT    NOT NULL,
    -- The whole address lower-cased: two rows differing only in case are the same person.
    email_key       TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL DEFAULT '',
    language        TEXT,
    attributes      TEXT    NOT NULL DEFAULT '{}',
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocklisted')),
    -- Mixed into every unsubscribe/confirm token of this subscriber; changing it revokes them.
    token_nonce     TEXT    NOT NULL DEFAULT (lower(hex(randomblob(8)))),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

CREATE TABLE subscriptions (
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id         INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    status          TEXT    NOT NULL CHECK (status IN ('unconfirmed', 'confirmed', 'unsubscribed')),
    -- Where consent came from: "cli", "import:<file>", "form", ... (GDPR art. 7(1)).
    consent_source  TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    confirmed_at    TEXT,
    unsubscribed_at TEXT,
    PRIMARY KEY (subscriber_id, list_id)
);
CREATE INDEX subscriptions_by_list ON subscriptions (list_id, status);

-- Addresses erased on request keep only a SHA-256 of their lower-cased form, so that an
-- import cannot silently add the person back without new consent.
CREATE TABLE suppressions (
    email_hash      TEXT    PRIMARY KEY,
    reason          TEXT    NOT NULL CHECK (reason IN ('erased')),
    created_at      TEXT    NOT NULL
);

CREATE TABLE campaigns (
    id              INTEGER PRIMARY KEY,
    edition_slug    TEXT    NOT NULL,
    list_id         INTEGER REFERENCES lists (id) ON DELETE SET NULL,
    -- Kept so that history still reads after a list is removed.
    list_name       TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'running', 'paused', 'finished', 'cancelled')),
    total           BIGINT  NOT NULL DEFAULT 0,
    sent            BIGINT  NOT NULL DEFAULT 0,
    failed          BIGINT  NOT NULL DEFAULT 0,
    skipped         BIGINT  NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    UNIQUE (edition_slug, list_id, content_hash)
);

-- One row per (campaign, recipient): what makes resume exact and answers "who got it".
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- NULL once the subscriber was erased; the row stays so that counts still add up.
    subscriber_id   INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    language        TEXT,
    status          TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- After a temporary failure: not before this time (exponential backoff with jitter).
    next_attempt_at TEXT,
    last_reply      TEXT,
    message_id      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    sent_at         TEXT,
    UNIQUE (campaign_id, subscriber_id)
);
CREATE INDEX deliveries_by_status ON deliveries (campaign_id, status);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);

-- Append-only audit log. It names subscribers by id only, never by address, so that
-- erasing a subscriber (which sets subscriber_id to NULL) leaves no personal data behind.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    occurred_at     TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    subscriber_id   INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    list_id         INTEGER REFERENCES lists (id) ON DELETE SET NULL,
    campaign_id     INTEGER REFERENCES campaigns (id) ON DELETE SET NULL,
    source          TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT '{}'
);
-- Needed by erasure (ON DELETE SET NULL looks events up by subscriber) and `subscribers show`.
CREATE INDEX events_by_subscriber ON events (subscriber_id);
