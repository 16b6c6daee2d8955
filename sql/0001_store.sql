-- The versioned FHIR store. `resource` holds the current version of every resource, one
-- partition per type (type-specific search columns and indexes go on the partitions);
-- `resource_history` holds every version, the change feed; `audit_event` records who changed
-- what; `api_token` holds bearer tokens as hashes only. Every write goes through mahali_write(),
-- so resource, history and audit change in one transaction.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE resource (
    rtype        text        NOT NULL,
    id           text        NOT NULL,
    version      integer     NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    content      jsonb       NOT NULL,  -- the last version's content (kept when deleted)
    PRIMARY KEY (rtype, id)
) PARTITION BY LIST (rtype);

CREATE TABLE resource_organization PARTITION OF resource FOR VALUES IN ('Organization');
CREATE TABLE resource_location PARTITION OF resource FOR VALUES IN ('Location');
CREATE TABLE resource_healthcareservice PARTITION OF resource FOR VALUES IN ('HealthcareService');
CREATE TABLE resource_practitioner PARTITION OF resource FOR VALUES IN ('Practitioner');
CREATE TABLE resource_practitionerrole PARTITION OF resource FOR VALUES IN ('PractitionerRole');
CREATE TABLE resource_endpoint PARTITION OF resource FOR VALUES IN ('Endpoint');
CREATE TABLE resource_organizationaffiliation PARTITION OF resource
    FOR VALUES IN ('OrganizationAffiliation');

-- Every version. seq is the feed's stable paging order; txid records the writing transaction.
CREATE TABLE resource_history (
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    rtype        text        NOT NULL,
    id           text        NOT NULL,
    version      integer     NOT NULL,
    last_updated timestamptz NOT NULL,
    method       text        NOT NULL CHECK (method IN ('POST', 'PUT', 'DELETE')),
    status       smallint    NOT NULL CHECK (status IN (200, 201, 204)), -- what the write answered
    content      jsonb,      -- NULL for DELETE
    txid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (rtype, id, version)
);
CREATE UNIQUE INDEX resource_history_seq ON resource_history (seq);
CREATE INDEX resource_history_type_seq ON resource_history (rtype, seq);
CREATE INDEX resource_history_updated ON resource_history (last_updated);

CREATE TABLE audit_event (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    rtype        text,
    id           text,
    version      integer,
    remote_addr  text
);
CREATE INDEX audit_event_resource ON audit_event (rtype, id);

CREATE TABLE api_token (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('reader', 'editor', 'admin')),
    hash         bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Content without the server-owned meta elements: two versions that differ only there are the
-- same resource, so writing one over the other is a no-op (re-imports create no new versions).
CREATE FUNCTION mahali_strip_meta(c jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN (c -> 'meta') - 'versionId' - 'lastUpdated' = '{}'::jsonb THEN c - 'meta'
                ELSE c #- '{meta,versionId}' #- '{meta,lastUpdated}' END
$$;

-- One versioned write. p_mode: 'create' (new id), 'update' (update, or create when absent),
-- 'delete' (soft). p_if_match: expected current version or NULL. Errors carry SQLSTATEs the
-- registry maps: MH404 not found, MH409 id taken, MH412 version mismatch.
-- Returns the new version, its instant as FHIR text, whether it created the resource, and
-- whether nothing changed (delete of a deleted resource, or an update to identical content:
-- then the current version and instant are returned).
CREATE FUNCTION mahali_write(p_rtype text, p_id text, p_mode text, p_content jsonb,
                             p_if_match integer, p_actor text, p_remote text,
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
    INSERT INTO audit_event (actor, action, rtype, id, version, remote_addr)
    VALUES (p_actor, p_mode, p_rtype, p_id, o_version, p_remote);
END;
$$;

-- The change feed's horizon: the feed shows only versions stamped before it, so a client that
-- continues from the newest lastUpdated it saw can never skip a version that commits later.
-- Every writer stamps its versions at or after the start of its transaction, so the horizon is
-- the start of the oldest transaction of a client of this database that is still open (or now).
-- It must be read in a statement before the one that reads the history (READ COMMITTED takes a
-- fresh snapshot per statement): a writer still open then is counted; one that starts later
-- stamps at or after the horizon. Milliseconds, like the stamps. Versions stamped exactly at the
-- horizon may be shown: `_since` is inclusive, so a later one stamped in the same millisecond is
-- still returned by the client's next poll (a version may come twice, never not at all).
CREATE FUNCTION mahali_feed_horizon() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT to_char(date_trunc('milliseconds',
                              least(coalesce(min(xact_start), clock_timestamp()),
                                    clock_timestamp())) AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND backend_type = 'client backend' AND xact_start IS NOT NULL
$$;
