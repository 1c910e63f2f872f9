-- Click counting (issue #14 item 7), opt-in per edition (`track_clicks = true`): the links of
-- each language variant of a campaign, stored once when the campaign is sent, and how often
-- each was followed through `bulletin serve` (`/c/{token}`). The redirect only ever goes to a
-- `url` stored here for the campaign the token names, never to anything the request carries.
--
-- Counts are aggregated: there is no row per reader and click (privacy first, GDPR data
-- minimisation), so nothing here says who clicked.
CREATE TABLE campaign_links (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- The language variant the link is in (a normalised BCP 47 tag, as deliveries.language).
    language        TEXT    NOT NULL,
    -- Order of first appearance in that variant's HTML, from 1.
    position        INTEGER NOT NULL,
    -- The address as the edition wrote it (HTML entities decoded): where /c/ redirects.
    url             TEXT    NOT NULL,
    -- GET requests to the link's redirect from browsers (HEAD requests are not counted).
    clicks          INTEGER NOT NULL DEFAULT 0,
    -- GET requests that did not look like a browser (no Accept-Language header): link
    -- scanners and previewers, counted apart so that they can be told from readers.
    automated       INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    UNIQUE (campaign_id, language, url)
);

-- A list may ask for click counting on every campaign sent to it (`bulletin lists set NAME
-- --track-clicks`), as an edition may (`track_clicks = true`); either one is enough.
ALTER TABLE lists ADD COLUMN track_clicks BOOLEAN NOT NULL DEFAULT FALSE;
