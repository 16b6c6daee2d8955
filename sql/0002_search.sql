-- Search indexes. registry/ extracts the values of every search parameter when it writes a
-- resource (registry/search_param.c is the one list of parameters) and hands them to
-- mahali_write as a jsonb array; these tables keep them, one row per value, in the same
-- transaction as the resource. References are also what referential integrity is checked on.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Case- and accent-insensitive form of a string (R4 string search). IMMUTABLE is safe: the
-- unaccent dictionary is fixed at installation.
CREATE FUNCTION mahali_norm(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(public.unaccent('public.unaccent'::regdictionary, t))
$$;

CREATE TABLE sp_string (
    rtype text NOT NULL, id text NOT NULL, param text NOT NULL,
    norm  text NOT NULL,   -- mahali_norm(value): prefix and :contains matching
    value text NOT NULL    -- as written: :exact matching
);
CREATE INDEX sp_string_prefix ON sp_string (rtype, param, norm text_pattern_ops);
CREATE INDEX sp_string_trgm ON sp_string USING gin (norm gin_trgm_ops);
CREATE INDEX sp_string_owner ON sp_string (rtype, id);

CREATE TABLE sp_token (
    rtype text NOT NULL, id text NOT NULL, param text NOT NULL,
    system text,           -- NULL when the value has none
    code  text NOT NULL
);
CREATE INDEX sp_token_code ON sp_token (rtype, param, code, system);
CREATE INDEX sp_token_owner ON sp_token (rtype, id);
-- A business identifier (system and value) belongs to one live Location, Organization or
-- Practitioner only: the database, not a search, guarantees it (a racing second gets 23505).
CREATE UNIQUE INDEX sp_token_identifier_unique ON sp_token (rtype, system, code)
    WHERE param = 'identifier' AND system IS NOT NULL
      AND rtype IN ('Location', 'Organization', 'Practitioner');

CREATE TABLE sp_ref (
    rtype text NOT NULL, id text NOT NULL, param text NOT NULL,
    target_type text NOT NULL, target_id text NOT NULL
);
CREATE INDEX sp_ref_target ON sp_ref (target_type, target_id, param, rtype);
CREATE INDEX sp_ref_owner ON sp_ref (rtype, id, param);

CREATE TABLE sp_date (
    rtype text NOT NULL, id text NOT NULL, param text NOT NULL,
    lo timestamptz NOT NULL,  -- inclusive
    hi timestamptz NOT NULL   -- exclusive
);
CREATE INDEX sp_date_range ON sp_date (rtype, param, lo, hi);
CREATE INDEX sp_date_owner ON sp_date (rtype, id);

-- Keyset order by _lastUpdated.
CREATE INDEX resource_updated ON resource (rtype, last_updated, id);

-- The types the registry stores: references to them must resolve.
CREATE FUNCTION mahali_stored_type(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT t IN ('Organization', 'Location', 'HealthcareService', 'Practitioner',
                 'PractitionerRole', 'Endpoint', 'OrganizationAffiliation')
$$;

-- Replace the index rows of one resource by those in p_index (NULL or [] removes them).
-- Entries: {"p": param, "k": "s"|"t"|"r"|"d", "v": value, "s": system, "c": code,
--           "rt": target type, "ri": target id, "lo": instant, "hi": instant}.
CREATE FUNCTION mahali_index(p_rtype text, p_id text, p_index jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sp_string WHERE rtype = p_rtype AND id = p_id;
    DELETE FROM sp_token WHERE rtype = p_rtype AND id = p_id;
    DELETE FROM sp_ref WHERE rtype = p_rtype AND id = p_id;
    DELETE FROM sp_date WHERE rtype = p_rtype AND id = p_id;
    IF p_index IS NULL OR jsonb_array_length(p_index) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO sp_string (rtype, id, param, norm, value)
    SELECT p_rtype, p_id, e ->> 'p', mahali_norm(e ->> 'v'), e ->> 'v'
      FROM jsonb_array_elements(p_index) e WHERE e ->> 'k' = 's';
    INSERT INTO sp_token (rtype, id, param, system, code)
    SELECT DISTINCT p_rtype, p_id, e ->> 'p', e ->> 's', e ->> 'c'
      FROM jsonb_array_elements(p_index) e WHERE e ->> 'k' = 't';
    INSERT INTO sp_ref (rtype, id, param, target_type, target_id)
    SELECT DISTINCT p_rtype, p_id, e ->> 'p', e ->> 'rt', e ->> 'ri'
      FROM jsonb_array_elements(p_index) e WHERE e ->> 'k' = 'r';
    INSERT INTO sp_date (rtype, id, param, lo, hi)
    SELECT p_rtype, p_id, e ->> 'p', (e ->> 'lo')::timestamptz, (e ->> 'hi')::timestamptz
      FROM jsonb_array_elements(p_index) e WHERE e ->> 'k' = 'd';
END;
$$;

-- Referential integrity, checked at commit (deferred), so the entries of a transaction Bundle
-- may refer to each other in any order:
--  * a reference to a stored type must name a live resource (MH422);
--  * a partof chain must not come back to where it started (MH423);
--  * a deleted resource must have no live referrers, unless they go in the same
--    transaction (MH424).
CREATE FUNCTION mahali_check_ref() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF NEW.param = 'partof' THEN
        WITH RECURSIVE up(t, depth) AS (
            SELECT NEW.target_id, 1
            UNION
            SELECT r.target_id, up.depth + 1 FROM sp_ref r JOIN up ON r.id = up.t
             WHERE r.rtype = NEW.rtype AND r.param = 'partof' AND r.target_type = NEW.rtype
               AND up.depth < 10000
        )
        SELECT bool_or(t = NEW.id) INTO loop_found FROM up;
        IF loop_found THEN
            RAISE EXCEPTION '%/% would be part of itself', NEW.rtype, NEW.id
                  USING ERRCODE = 'MH423', DETAIL = NEW.param;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER sp_ref_integrity AFTER INSERT ON sp_ref
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mahali_check_ref();

CREATE FUNCTION mahali_check_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    who record;
BEGIN
    IF NOT NEW.deleted OR OLD.deleted THEN
        RETURN NULL;
    END IF;
    -- still deleted at commit?
    IF NOT EXISTS (SELECT 1 FROM resource WHERE rtype = NEW.rtype AND id = NEW.id AND deleted) THEN
        RETURN NULL;
    END IF;
    SELECT rtype, id, param INTO who FROM sp_ref
     WHERE target_type = NEW.rtype AND target_id = NEW.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%/% is still referred to by %/% (%)', NEW.rtype, NEW.id, who.rtype,
              who.id, who.param USING ERRCODE = 'MH424', DETAIL = who.rtype || '/' || who.id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER resource_delete_integrity AFTER UPDATE OF deleted ON resource
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mahali_check_unreferenced();

-- mahali_write as in 0001, now also replacing the resource's search index rows (p_index, see
-- mahali_index) in the same transaction; a delete removes them.
DROP FUNCTION mahali_write(text, text, text, jsonb, integer, text, text);
CREATE FUNCTION mahali_write(p_rtype text, p_id text, p_mode text, p_content jsonb,
                             p_if_match integer, p_actor text, p_remote text, p_index jsonb,
                             OUT o_version integer, OUT o_instant text, OUT o_created boolean,
                             OUT o_noop boolean)
LANGUAGE plpgsql AS $$
DECLARE
    cur  record;
    ts   timestamptz;
    body jsonb;
BEGIN
    LOOP
        o_created := false;   -- reset on every round: a lost insert race goes round again
        o_noop := false;
        SELECT version, deleted, last_updated, content INTO cur
          FROM resource WHERE rtype = p_rtype AND id = p_id FOR UPDATE;
        IF FOUND THEN
            IF p_mode = 'create' THEN
                RAISE EXCEPTION 'id % is taken', p_id USING ERRCODE = 'MH409';
            END IF;
            IF p_if_match IS NOT NULL AND cur.version <> p_if_match THEN
                RAISE EXCEPTION 'version is %', cur.version USING ERRCODE = 'MH412';
            END IF;
            IF (p_mode = 'delete' AND cur.deleted)
               OR (p_mode = 'update' AND NOT cur.deleted
                   AND mahali_strip_meta(cur.content)::text = mahali_strip_meta(p_content)::text) THEN
                o_version := cur.version;
                o_instant := to_char(cur.last_updated AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
                o_noop := true;
                RETURN;
            END IF;
            o_version := cur.version + 1;
            o_created := cur.deleted;   -- writing over a deleted resource brings it back
        ELSE
            IF p_mode = 'delete' THEN
                RAISE EXCEPTION 'no such resource' USING ERRCODE = 'MH404';
            END IF;
            IF p_if_match IS NOT NULL THEN
                RAISE EXCEPTION 'resource does not exist' USING ERRCODE = 'MH412';
            END IF;
            o_version := 1;
            o_created := true;
        END IF;

        ts := date_trunc('milliseconds', clock_timestamp());
        o_instant := to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
        IF p_mode <> 'delete' THEN
            body := jsonb_set(p_content, '{meta}',
                        coalesce(p_content -> 'meta', '{}'::jsonb)
                        || jsonb_build_object('versionId', o_version::text,
                                              'lastUpdated', o_instant));
        END IF;

        IF o_version = 1 THEN
            BEGIN
                INSERT INTO resource (rtype, id, version, last_updated, deleted, content)
                VALUES (p_rtype, p_id, 1, ts, false, body);
            EXCEPTION WHEN unique_violation THEN
                CONTINUE;  -- a concurrent writer created it first: go round as an update
            END;
        ELSIF p_mode = 'delete' THEN
            UPDATE resource SET version = o_version, last_updated = ts, deleted = true
             WHERE rtype = p_rtype AND id = p_id;
        ELSE
            UPDATE resource SET version = o_version, last_updated = ts, deleted = false,
                   content = body
             WHERE rtype = p_rtype AND id = p_id;
        END IF;
        EXIT;
    END LOOP;

    INSERT INTO resource_history (rtype, id, version, last_updated, method, status, content)
    VALUES (p_rtype, p_id, o_version, ts,
            CASE WHEN p_mode = 'delete' THEN 'DELETE'
                 WHEN o_version = 1 AND p_mode = 'create' THEN 'POST'
                 ELSE 'PUT' END,
            CASE WHEN p_mode = 'delete' THEN 204 WHEN o_created THEN 201 ELSE 200 END,
            body);
    PERFORM mahali_index(p_rtype, p_id, CASE WHEN p_mode = 'delete' THEN NULL ELSE p_index END);
    INSERT INTO audit_event (actor, action, rtype, id, version, remote_addr)
    VALUES (p_actor, p_mode, p_rtype, p_id, o_version, p_remote);
END;
$$;
