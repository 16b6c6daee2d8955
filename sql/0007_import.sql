-- Imports (importers/, `mahali import`). Each imported version carries where it came from in a
-- meta extension (import-provenance: file, checksum, line); that is not content, so a re-import
-- of an unchanged row from another file or line is still a no-op. And a checkpoint per import,
-- written in the same transaction as each committed chunk, so an import killed at any moment
-- resumes after the last chunk that committed: no row twice, none missed.
CREATE OR REPLACE FUNCTION mahali_strip_meta(c jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    WITH m AS (
        SELECT CASE WHEN jsonb_typeof(c -> 'meta' -> 'extension') = 'array' THEN
                    CASE WHEN x.kept = '[]'::jsonb THEN (c -> 'meta') - 'extension'
                         ELSE jsonb_set(c -> 'meta', '{extension}', x.kept) END
                    ELSE c -> 'meta' END AS meta
          FROM (SELECT coalesce(jsonb_agg(e ORDER BY o), '[]'::jsonb) AS kept
                  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(c -> 'meta' -> 'extension') = 'array'
                                                 THEN c -> 'meta' -> 'extension' ELSE '[]' END)
                       WITH ORDINALITY AS t(e, o)
                 WHERE e ->> 'url' IS DISTINCT FROM
                       'https://profiles.mahali.health/fhir/StructureDefinition/import-provenance') x
    )
    SELECT CASE WHEN m.meta IS NULL THEN c
                WHEN m.meta - 'versionId' - 'lastUpdated' = '{}'::jsonb THEN c - 'meta'
                ELSE jsonb_set(c, '{meta}', m.meta - 'versionId' - 'lastUpdated') END
      FROM m
$$;

CREATE TABLE import_checkpoint (
    source     text        PRIMARY KEY,  -- the import's key: format, file checksum, mapping checksum
    file_name  text        NOT NULL,
    line       bigint      NOT NULL,     -- every record that starts before this line is done
    state      jsonb       NOT NULL,     -- the counters so far
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished   boolean     NOT NULL DEFAULT false
);

-- The issues an import reported, saved with each chunk, so a resumed import's report still
-- names the lines the first run read.
CREATE TABLE import_issue (
    source text   NOT NULL REFERENCES import_checkpoint (source) ON DELETE CASCADE,
    seq    bigint GENERATED ALWAYS AS IDENTITY,
    issue  jsonb  NOT NULL,
    PRIMARY KEY (source, seq)
);
