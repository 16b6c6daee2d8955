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
    records    bigint      NOT NULL,     -- the first `records` records of the file are done
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

-- Many writes in one statement (imports, registry/bulk.c): each item exactly as
-- mahali_write(rtype, id, 'update', content, NULL, actor, NULL, index) would write it: a new
-- version unless the content is unchanged, history, index rows, the partof closure, audit.
-- p_items: [{"t": rtype, "i": id, "c": content, "x": index, "p": the id its partof reference
-- names (of the same type), or absent}], ids unique within the batch.
-- Rows are locked in key order. New Locations and Organizations whose parent is not in the
-- batch get their closure rows in one statement (under the same advisory locks as
-- mahali_hier_sync takes); every other partof change goes through mahali_hier_sync.
-- A concurrent writer that creates one of the new ids first makes the history insert fail
-- (23505): the caller then writes the items one by one.
CREATE FUNCTION mahali_write_batch(p_actor text, p_items jsonb)
RETURNS TABLE (o_ord integer, o_version integer, o_instant text, o_created boolean,
               o_noop boolean)
LANGUAGE plpgsql AS $$
DECLARE
    ts    timestamptz := date_trunc('milliseconds', clock_timestamp());
    inst  text := to_char(date_trunc('milliseconds', clock_timestamp()) AT TIME ZONE 'UTC',
                          'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    chain text[];
    locked text[] := '{}';
    t text;
    ids text[];
BEGIN
    inst := to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    IF to_regclass('pg_temp.mahali_wb') IS NULL THEN
        CREATE TEMP TABLE mahali_wb (
            ord integer, rtype text, id text, content jsonb, idx jsonb, cur_version integer,
            cur_deleted boolean, cur_instant text, noop boolean, parent text, new_leaf boolean
        ) ON COMMIT DELETE ROWS;
        -- staged once, read back once: not worth compressing
        ALTER TABLE mahali_wb ALTER content SET STORAGE EXTERNAL;
    END IF;
    DELETE FROM mahali_wb;

    PERFORM 1 FROM resource r
     WHERE (r.rtype, r.id) IN (SELECT e ->> 't', e ->> 'i' FROM jsonb_array_elements(p_items) e)
     ORDER BY r.rtype, r.id FOR UPDATE;

    INSERT INTO mahali_wb (ord, rtype, id, content, idx, cur_version, cur_deleted, cur_instant,
                           noop, parent, new_leaf)
    WITH a AS MATERIALIZED (
        SELECT q.o::integer AS o, q.e ->> 't' AS t, q.e ->> 'i' AS i, q.e -> 'c' AS c,
               q.e -> 'x' AS x, q.e ->> 'p' AS p
          FROM jsonb_array_elements(p_items) WITH ORDINALITY q(e, o)),
    b AS (
        SELECT a.*, r.version, r.deleted, r.last_updated,
               CASE WHEN r.version IS NULL OR r.deleted THEN false
                    ELSE mahali_strip_meta(r.content)::text = mahali_strip_meta(a.c)::text
                    END AS noop,
               a.p AS parent
          FROM a LEFT JOIN LATERAL (
               -- one index probe per item (OFFSET 0 keeps the planner from turning this into a
               -- hash join over the whole table, planned once when the table was small)
               SELECT r.version, r.deleted, r.last_updated, r.content FROM resource r
                WHERE r.rtype = a.t AND r.id = a.i OFFSET 0) r ON true)
    SELECT b.o, b.t, b.i,
           CASE WHEN b.noop THEN b.c
                ELSE jsonb_set(b.c, '{meta}',
                               coalesce(b.c -> 'meta', '{}'::jsonb)
                               || jsonb_build_object('versionId',
                                                     (coalesce(b.version, 0) + 1)::text,
                                                     'lastUpdated', inst)) END,
           b.x, b.version, b.deleted,
           to_char(b.last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           b.noop, b.parent,
           NOT b.noop AND b.version IS NULL AND b.parent IS NOT NULL
           AND b.t IN ('Location', 'Organization')
           AND (b.t, b.parent) NOT IN (SELECT p.t, p.i FROM a p)
      FROM b;

    INSERT INTO resource (rtype, id, version, last_updated, deleted, content)
    SELECT rtype, id, coalesce(cur_version, 0) + 1, ts, false, content
      FROM mahali_wb WHERE NOT noop ORDER BY rtype, id
    ON CONFLICT (rtype, id) DO UPDATE
       SET version = EXCLUDED.version, last_updated = EXCLUDED.last_updated, deleted = false,
           content = EXCLUDED.content;

    INSERT INTO resource_history (rtype, id, version, last_updated, method, status, content)
    SELECT rtype, id, coalesce(cur_version, 0) + 1, ts, 'PUT',
           CASE WHEN cur_version IS NULL OR cur_deleted THEN 201 ELSE 200 END, content
      FROM mahali_wb WHERE NOT noop ORDER BY ord;

    -- the index rows, replaced (mahali_index_rows for many resources at once)
    FOR t, ids IN SELECT w.rtype, array_agg(w.id) FROM mahali_wb w
                   WHERE NOT w.noop AND w.cur_version IS NOT NULL GROUP BY w.rtype LOOP
        DELETE FROM sp_string WHERE rtype = t AND id = ANY (ids);
        DELETE FROM sp_token WHERE rtype = t AND id = ANY (ids);
        DELETE FROM sp_ref WHERE rtype = t AND id = ANY (ids);
        DELETE FROM sp_date WHERE rtype = t AND id = ANY (ids);
        DELETE FROM sp_geo WHERE rtype = t AND id = ANY (ids);
    END LOOP;
    INSERT INTO sp_string (rtype, id, param, norm, value)
    SELECT w.rtype, w.id, e ->> 'p', mahali_norm(e ->> 'v'), e ->> 'v'
      FROM mahali_wb w, jsonb_array_elements(w.idx) e WHERE NOT w.noop AND e ->> 'k' = 's';
    INSERT INTO sp_token (rtype, id, param, system, code)
    SELECT DISTINCT w.rtype, w.id, e ->> 'p', e ->> 's', e ->> 'c'
      FROM mahali_wb w, jsonb_array_elements(w.idx) e WHERE NOT w.noop AND e ->> 'k' = 't';
    INSERT INTO sp_ref (rtype, id, param, target_type, target_id)
    SELECT DISTINCT w.rtype, w.id, e ->> 'p', e ->> 'rt', e ->> 'ri'
      FROM mahali_wb w, jsonb_array_elements(w.idx) e WHERE NOT w.noop AND e ->> 'k' = 'r';
    INSERT INTO sp_date (rtype, id, param, lo, hi)
    SELECT w.rtype, w.id, e ->> 'p', (e ->> 'lo')::timestamptz, (e ->> 'hi')::timestamptz
      FROM mahali_wb w, jsonb_array_elements(w.idx) e WHERE NOT w.noop AND e ->> 'k' = 'd';
    INSERT INTO sp_geo (rtype, id, param, geog, geom)
    SELECT rtype, id, p, g::geography, g
      FROM (SELECT w.rtype, w.id, e ->> 'p' AS p,
                   CASE e ->> 'k'
                   WHEN 'g' THEN ST_SetSRID(ST_MakePoint((e ->> 'lon')::float8,
                                                         (e ->> 'lat')::float8), 4326)
                   ELSE ST_SetSRID(ST_GeomFromGeoJSON(e ->> 'gj'), 4326) END AS g
              FROM mahali_wb w, jsonb_array_elements(w.idx) e
             WHERE NOT w.noop AND e ->> 'k' IN ('g', 'b')) x;

    -- the closure: new leaves at once, under shared locks on their parents' chains
    LOOP
        SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}') INTO chain FROM (
            SELECT w.rtype || '/' || w.parent AS k FROM mahali_wb w WHERE w.new_leaf
            UNION SELECT w.rtype || '/' || b.anc FROM mahali_wb w
                    CROSS JOIN LATERAL (SELECT b.anc FROM sp_below b
                                         WHERE b.rtype = w.rtype AND b.id = w.parent
                                         OFFSET 0) b
                    WHERE w.new_leaf) c;
        EXIT WHEN chain <@ locked;
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(x, 52817))
           FROM unnest(chain) x WHERE NOT x = ANY (locked) ORDER BY x;
        locked := locked || chain;
    END LOOP;
    INSERT INTO sp_below (rtype, anc, id, depth)
    SELECT w.rtype, w.parent, w.id, 1 FROM mahali_wb w WHERE w.new_leaf AND w.parent <> w.id
    UNION ALL
    SELECT w.rtype, b.anc, w.id, b.depth + 1 FROM mahali_wb w
     CROSS JOIN LATERAL (SELECT b.anc, b.depth FROM sp_below b
                          WHERE b.rtype = w.rtype AND b.id = w.parent OFFSET 0) b
     WHERE w.new_leaf AND b.anc <> w.id
    ON CONFLICT DO NOTHING;
    PERFORM mahali_hier_sync(w.rtype, w.id) FROM mahali_wb w
     WHERE NOT w.noop AND NOT w.new_leaf AND w.rtype IN ('Location', 'Organization')
       AND NOT (w.cur_version IS NULL AND w.parent IS NULL)
     ORDER BY w.ord;

    INSERT INTO audit_event (actor, action, rtype, id, version, remote_addr)
    SELECT p_actor, 'update', rtype, id, coalesce(cur_version, 0) + 1, NULL
      FROM mahali_wb WHERE NOT noop ORDER BY ord;

    RETURN QUERY
    SELECT w.ord, CASE WHEN w.noop THEN w.cur_version ELSE coalesce(w.cur_version, 0) + 1 END,
           CASE WHEN w.noop THEN w.cur_instant ELSE inst END,
           NOT w.noop AND (w.cur_version IS NULL OR w.cur_deleted), w.noop
      FROM mahali_wb w ORDER BY w.ord;
END;
$$;

-- Whether p lies inside one of the topmost boundaries (of Locations none of whose ancestors
-- has a boundary: the countries, or the provinces of a country stored without one). The
-- import's swapped-coordinates check uses it when a point's own jurisdiction has no boundary.
-- Candidates come from the boundary index by bounding box.
CREATE FUNCTION mahali_in_top_boundary(p geometry) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM sp_geo g
         WHERE g.param = 'boundary' AND g.rtype = 'Location' AND g.geom && p
           AND ST_Covers(g.geom, p)
           AND NOT EXISTS (SELECT 1 FROM sp_below b
                             JOIN sp_geo a ON a.rtype = 'Location' AND a.id = b.anc
                                          AND a.param = 'boundary'
                            WHERE b.rtype = 'Location' AND b.id = g.id))
$$;
