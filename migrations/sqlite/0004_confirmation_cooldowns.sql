-- When the subscription form last made bulletin send a confirmation mail to an address, so
-- that the form cannot be used to flood one mailbox (`[server] confirm_cooldown_minutes`).
-- Kept in the database rather than in memory, so that the limit holds across restarts and
-- across several `serve` processes. Keyed by the same SHA-256 of the lower-cased address as
-- `suppressions`: addresses typed by strangers are not stored, and rows older than the
-- cooldown are deleted as new ones arrive.
CREATE TABLE confirmation_cooldowns (
    email_hash      TEXT    PRIMARY KEY,
    requested_at    TEXT    NOT NULL
);
CREATE INDEX confirmation_cooldowns_by_time ON confirmation_cooldowns (requested_at);
