-- References and deletes that race (found by the mirror test): a reference written while its
-- target is being deleted passed both deferred checks, each reading the other side without a
-- lock (write skew), and left a live resource referring to a deleted one. The reference check
-- now takes a share lock on its target; the delete's FOR UPDATE (mahali_write) conflicts with
-- it, so one of the two waits for the other and then fails its check: 422 for the reference
-- written second, 409 for the delete committed second. Otherwise as in 0005.
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
    IF mahali_stored_type(NEW.target_type) THEN
        -- FOR SHARE: a delete of the target still open makes this wait for it (and then see
        -- it deleted); a delete that comes after waits for this transaction, whose reference
        -- its own check then sees
        PERFORM 1 FROM resource WHERE rtype = NEW.target_type AND id = NEW.target_id
           AND NOT deleted FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION '%/% refers to %/%, which does not exist', NEW.rtype, NEW.id,
                  NEW.target_type, NEW.target_id
                  USING ERRCODE = 'MH422', DETAIL = NEW.param;
        END IF;
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
