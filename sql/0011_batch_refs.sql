-- Batch writes check their references once per batch instead of once per reference row at
-- commit. Measured on the WHO list (docs/PERFORMANCE.md): the deferred per-row trigger of
-- 0002/0010 (three probes and a row lock each) took a third of an import's database time.
--
-- The per-row trigger now skips rows inserted while mahali.refs_checked is 'on' (its WHEN is
-- evaluated as the row is inserted, so a skipped row queues no event at all). Only
-- mahali_write_batch turns it on, around the insert of the references whose targets it has
-- just found live and share-locked (FOR SHARE, as the trigger takes it: a concurrent delete of
-- a target waits for this transaction and then sees the reference); references to targets
-- not (yet) there go in with the setting off and are checked at commit as before, so that a
-- transaction may still write a reference before its target. A partof cycle is looked for
-- after the batch's closure rows are written; a cycle closed later in the transaction is
-- found by the check of the reference that closes it (the last edge written sees the others
-- in the closure). The errors are the trigger's: MH422, MH423.
DROP TRIGGER sp_ref_integrity ON sp_ref;
CREATE CONSTRAINT TRIGGER sp_ref_integrity AFTER INSERT ON sp_ref
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('mahali.refs_checked', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION mahali_check_ref();


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
CREATE OR REPLACE FUNCTION mahali_write_batch(p_actor text, p_items jsonb)
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
    cyc record;
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
    IF to_regclass('pg_temp.mahali_wb_ref') IS NULL THEN
        CREATE TEMP TABLE mahali_wb_ref (
            rtype text, id text, param text, target_type text, target_id text,
            live boolean NOT NULL DEFAULT false, here boolean
        ) ON COMMIT DELETE ROWS;
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
    -- the references: those whose targets are live now are checked here, all at once, their
    -- targets share-locked in key order; the others by the deferred trigger at commit
    DELETE FROM mahali_wb_ref;
    INSERT INTO mahali_wb_ref (rtype, id, param, target_type, target_id)
    SELECT DISTINCT w.rtype, w.id, e ->> 'p', e ->> 'rt', e ->> 'ri'
      FROM mahali_wb w, jsonb_array_elements(w.idx) e WHERE NOT w.noop AND e ->> 'k' = 'r';
    -- live: written by this batch (no other transaction can see, let alone delete, them
    -- before this one commits; a later delete in this transaction is checked by its own
    -- trigger), or else share-locked now, in key order (a delete racing with this waits for it
    -- or is waited for; after waiting, the row is read again and a deleted one is not live)
    UPDATE mahali_wb_ref f SET live = true
      FROM mahali_wb w
     WHERE w.rtype = f.target_type AND w.id = f.target_id AND NOT w.noop;
    UPDATE mahali_wb_ref f SET live = true
      FROM (SELECT l.rtype, l.id
              FROM (SELECT DISTINCT target_type, target_id FROM mahali_wb_ref
                     WHERE NOT live AND mahali_stored_type(target_type) ORDER BY 1, 2) t
             CROSS JOIN LATERAL (SELECT r.rtype, r.id FROM resource r
                                  WHERE r.rtype = t.target_type AND r.id = t.target_id
                                    AND NOT r.deleted FOR SHARE) l) l
     WHERE f.target_type = l.rtype AND f.target_id = l.id;
    -- checked here: live targets and targets of types the registry does not keep (which the
    -- trigger does not look up either); not the partof of other types (walked up at commit)
    UPDATE mahali_wb_ref SET here = (live OR NOT mahali_stored_type(target_type))
           AND NOT (param = 'partof' AND target_type = rtype
                    AND rtype NOT IN ('Location', 'Organization'));
    PERFORM set_config('mahali.refs_checked', 'on', true);
    INSERT INTO sp_ref (rtype, id, param, target_type, target_id)
    SELECT rtype, id, param, target_type, target_id FROM mahali_wb_ref
     WHERE here;
    PERFORM set_config('mahali.refs_checked', 'off', true);
    INSERT INTO sp_ref (rtype, id, param, target_type, target_id)
    SELECT rtype, id, param, target_type, target_id FROM mahali_wb_ref
     WHERE NOT here;
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

    -- a partof cycle through one of the batch's references checked here (now that the closure
    -- has the batch's rows): the trigger's test, for all of them at once
    SELECT f.rtype, f.id, f.target_type, f.target_id INTO cyc FROM mahali_wb_ref f
     WHERE f.live AND f.param = 'partof' AND f.target_type = f.rtype
       AND f.rtype IN ('Location', 'Organization')
       AND (f.target_id = f.id OR EXISTS (SELECT 1 FROM sp_below b WHERE b.rtype = f.rtype
                                             AND b.anc = f.id AND b.id = f.target_id))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%/% would be part of itself', cyc.rtype, cyc.id
              USING ERRCODE = 'MH423', DETAIL = 'partof';
    END IF;

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

