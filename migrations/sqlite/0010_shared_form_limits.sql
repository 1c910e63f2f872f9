-- The subscription form's per-client limit (issue #16 item 7), kept in the database rather than
-- in each `serve` process, so that several instances behind a load balancer count together and
-- a restart does not reset the count. One row per client address bucket (IPv4 address, IPv6
-- /64) and window; the bucket is stored as a SHA-256 hash, and rows are deleted an hour after
-- their window began.
CREATE TABLE form_rate_windows (
    client_hash     TEXT    PRIMARY KEY,
    window_start    TEXT    NOT NULL,
    requests        INTEGER NOT NULL
);
CREATE INDEX form_rate_windows_by_start ON form_rate_windows (window_start);
