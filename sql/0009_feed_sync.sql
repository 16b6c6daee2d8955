-- Health workers and sync (issue 6).
-- 1. The hr role: an HR system's token reads everything and writes only Practitioner and
--    PractitionerRole (RELIABILITY.md's auth matrix, "HR system token").
-- 2. sync_cursor: where `mahali sync --from URL` stands in another Directory's change feed, per
--    source and resource type, so an interrupted sync resumes and a finished one polls from there.
ALTER TABLE api_token DROP CONSTRAINT api_token_role_check;
ALTER TABLE api_token ADD CONSTRAINT api_token_role_check
    CHECK (role IN ('reader', 'hr', 'editor', 'admin'));

CREATE TABLE sync_cursor (
    source       text        NOT NULL,  -- the other Directory's FHIR base URL
    rtype        text        NOT NULL,
    since        text,                  -- the _since of the next poll (the last walk's horizon)
    applied      bigint      NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, rtype)
);
