-- What subscribers may see of a list. Until now the subscription form offered every list by
-- its internal name (`glo-act.staff-test`), and the pages and the confirmation mail showed
-- that name too. A list now says whether the public form offers it, and carries the name and
-- description people read, one per language.
--
-- Lists that already exist stay public, so that a form that offered them keeps doing so after
-- the upgrade; `bulletin lists set NAME --private` hides one.
ALTER TABLE lists ADD COLUMN public BOOLEAN NOT NULL DEFAULT TRUE;

-- One row per (list, language). A page in a language without a row falls back to English,
-- then to any language the list has, then to the newsletter's own name: never to the
-- internal list name.
CREATE TABLE list_texts (
    list_id         INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    -- A normalised BCP 47 tag, as subscribers.language (`es`, `pt-BR`).
    language        TEXT    NOT NULL,
    display_name    TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (list_id, language)
);
