-- The partof hierarchies (Location.partOf, Organization.partOf) as a closure table, so that
-- "below X" is an index range instead of a recursive walk per search: one row per
-- (ancestor, descendant) pair at any depth, maintained on write by mahali_index. Only live
-- resources have rows as descendants (a delete detaches the resource; the integrity triggers
-- of 0002 make sure nothing live stays below a deleted resource at commit).
CREATE TABLE sp_below (
    rtype text NOT NULL,     -- the type of both ends (partof refers to the same type)
    anc   text NOT NULL,     -- an ancestor (parent at depth 1)
    id    text NOT NULL,     -- a descendant
    depth integer NOT NULL,
    PRIMARY KEY (rtype, anc, id)
);
CREATE INDEX sp_below_up ON sp_below (rtype, id, depth);

-- Keep the closure in step with the partof reference of p_rtype/p_id that mahali_index has
-- just written (none after a delete). Concurrency: moving X takes an exclusive advisory lock
-- on X and shared locks on X's current ancestors and on P and P's ancestors (the new parent),
-- re-read until both chains are stable. So a subtree cannot move while anything inside it
-- moves or is attached, and every statement below reads the chains and the subtree after
-- those locks (READ COMMITTED: each statement of this VOLATILE function takes a fresh
-- snapshot). Concurrent moves may deadlock; PostgreSQL then aborts one (409, retryable). A partof cycle is refused
-- at commit by mahali_check_ref (MH423), which rolls this back with everything else.
CREATE FUNCTION mahali_hier_sync(p_rtype text, p_id text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_parent text;
    old_parent text;
    chain text[];
    locked text[] := '{}';
BEGIN
    SELECT target_id INTO new_parent FROM sp_ref
     WHERE rtype = p_rtype AND id = p_id AND param = 'partof' AND target_type = p_rtype
     ORDER BY target_id LIMIT 1;
    SELECT anc INTO old_parent FROM sp_below WHERE rtype = p_rtype AND id = p_id AND depth = 1;
    IF new_parent IS NOT DISTINCT FROM old_parent THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_rtype || '/' || p_id, 52817));
    -- the ancestors X leaves and the ones it joins: neither chain may move meanwhile
    LOOP
        SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO chain FROM (
            SELECT new_parent AS x WHERE new_parent IS NOT NULL
            UNION SELECT anc FROM sp_below WHERE rtype = p_rtype AND id = new_parent
            UNION SELECT anc FROM sp_below WHERE rtype = p_rtype AND id = p_id) c;
        EXIT WHEN chain <@ locked;
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(p_rtype || '/' || x, 52817))
           FROM unnest(chain) x WHERE NOT x = ANY (locked) ORDER BY x;
        locked := locked || chain;
    END LOOP;
    -- detach X and everything below it from X's former ancestors
    DELETE FROM sp_below b
     WHERE b.rtype = p_rtype
       AND b.anc IN (SELECT a.anc FROM sp_below a WHERE a.rtype = p_rtype AND a.id = p_id)
       AND (b.id = p_id OR b.id IN (SELECT d.id FROM sp_below d
                                     WHERE d.rtype = p_rtype AND d.anc = p_id));
    IF new_parent IS NULL THEN
        RETURN;
    END IF;
    -- attach: every ancestor of the new parent (and the parent) above every node of X's subtree
    INSERT INTO sp_below (rtype, anc, id, depth)
    SELECT p_rtype, up.anc, down.id, up.depth + down.depth
      FROM (SELECT new_parent AS anc, 1 AS depth
            UNION ALL
            SELECT anc, depth + 1 FROM sp_below WHERE rtype = p_rtype AND id = new_parent) up
     CROSS JOIN (SELECT p_id AS id, 0 AS depth
                 UNION ALL
                 SELECT id, depth FROM sp_below WHERE rtype = p_rtype AND anc = p_id) down
     WHERE up.anc <> down.id   -- a cycle (refused at commit) must not make self-rows
    ON CONFLICT DO NOTHING;
END;
$$;

-- mahali_index keeps its body (0003) under a new name; the new mahali_index adds the closure.
-- mahali_write and `mahali reindex` call mahali_index by name and get the new one.
ALTER FUNCTION mahali_index(text, text, jsonb) RENAME TO mahali_index_rows;
CREATE FUNCTION mahali_index(p_rtype text, p_id text, p_index jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mahali_index_rows(p_rtype, p_id, p_index);
    IF p_rtype IN ('Location', 'Organization') THEN
        PERFORM mahali_hier_sync(p_rtype, p_id);
    END IF;
END;
$$;

-- The closure recomputed from the partof references (`mahali reindex` runs it after the
-- resources; this migration for what is stored already). The table lock lets searches read
-- on but holds back hierarchy changes until the new closure is committed. Returns its rows.
CREATE FUNCTION mahali_hier_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    LOCK TABLE sp_below IN EXCLUSIVE MODE;
    DELETE FROM sp_below;
    INSERT INTO sp_below (rtype, anc, id, depth)
    WITH RECURSIVE up(rtype, anc, id, depth) AS (
        SELECT rtype, target_id, id, 1 FROM sp_ref
         WHERE param = 'partof' AND target_type = rtype AND rtype IN ('Location', 'Organization')
        UNION ALL
        SELECT u.rtype, r.target_id, u.id, u.depth + 1
          FROM up u JOIN sp_ref r ON r.rtype = u.rtype AND r.id = u.anc AND r.param = 'partof'
                                 AND r.target_type = u.rtype
         WHERE u.depth < 1000
    )
    SELECT rtype, anc, id, min(depth) FROM up GROUP BY rtype, anc, id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
SELECT mahali_hier_rebuild();

-- Live resources by id, for index-only probes: a count over thousands of matches checks each
-- one's existence here instead of fetching its row (docs/PERFORMANCE.md).
CREATE INDEX resource_live ON resource (rtype, id) WHERE NOT deleted;

-- The columns of the search tables are strongly correlated (a type code comes with its
-- system and parameter): without these statistics the planner multiplies selectivities and
-- underestimates large results by three orders of magnitude (docs/PERFORMANCE.md).
CREATE STATISTICS sp_token_stats (dependencies, mcv) ON rtype, param, system, code FROM sp_token;
CREATE STATISTICS sp_ref_stats (dependencies, mcv) ON rtype, param, target_type, target_id
    FROM sp_ref;
CREATE STATISTICS sp_string_stats (dependencies) ON rtype, param, norm FROM sp_string;
ANALYZE resource;
ANALYZE sp_token;
ANALYZE sp_ref;
ANALYZE sp_string;
ANALYZE sp_below;

-- The partof cycle check of 0002 walked up the references, and round a cycle until a depth
-- of 10,000 (seconds per refused write). With the closure it is one probe: X may not be part
-- of a resource that is below X (or of itself). After a cycle was attempted, the closure
-- holds that pair (mahali_hier_sync attaches the subtree under the new parent's chain).
CREATE OR REPLACE FUNCTION mahali_check_ref() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    loop_found boolean;
BEGIN
    -- the row may have been replaced since (a later write in the same transaction)
    IF NOT EXISTS (SELECT 1 FROM sp_ref WHERE rtype = NEW.rtype AND id = NEW.id
                   AND param = NEW.param AND target_type = NEW.target_type
                   AND target_id = NEW.target_id) THEN
        RETURN NULL;
    END IF;
    IF mahali_stored_type(NEW.target_type) AND NOT EXISTS (
           SELECT 1 FROM resource WHERE rtype = NEW.target_type AND id = NEW.target_id
              AND NOT deleted) THEN
        RAISE EXCEPTION '%/% refers to %/%, which does not exist', NEW.rtype, NEW.id,
              NEW.target_type, NEW.target_id
              USING ERRCODE = 'MH422', DETAIL = NEW.param;
    END IF;
    IF NEW.param = 'partof' AND NEW.target_type = NEW.rtype THEN
        IF NEW.rtype IN ('Location', 'Organization') THEN
            loop_found := NEW.target_id = NEW.id OR EXISTS (
                SELECT 1 FROM sp_below WHERE rtype = NEW.rtype AND anc = NEW.id
                   AND id = NEW.target_id);
        ELSE
            -- a type without a closure: walk up, stopping at a node seen before
            WITH RECURSIVE up(t) AS (
                SELECT NEW.target_id
                UNION
                SELECT r.target_id FROM sp_ref r JOIN up ON r.id = up.t
                 WHERE r.rtype = NEW.rtype AND r.param = 'partof' AND r.target_type = NEW.rtype
            )
            SELECT bool_or(t = NEW.id) INTO loop_found FROM up;
        END IF;
        IF loop_found THEN
            RAISE EXCEPTION '%/% would be part of itself', NEW.rtype, NEW.id
                  USING ERRCODE = 'MH423', DETAIL = NEW.param;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
