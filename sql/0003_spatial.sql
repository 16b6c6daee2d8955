-- Spatial indexes. A Location's position and boundary are indexed on write like every other
-- search value (registry/search_param.c extracts them; geo/ has validated the boundary):
-- positions as geography (true geodesic distance on WGS84, GiST for `near`), boundaries as
-- geography plus a geometry copy (point-in-polygon with ST_Covers on a geometry GiST index is
-- 2-3x faster than on geography, DESIGN.md).
CREATE TABLE sp_geo (
    rtype text NOT NULL, id text NOT NULL, param text NOT NULL,  -- 'position' | 'boundary'
    geog  geography NOT NULL,
    geom  geometry NOT NULL
);
CREATE INDEX sp_geo_position ON sp_geo USING gist (geog) WHERE param = 'position';
CREATE INDEX sp_geo_position_box ON sp_geo USING gist (geom) WHERE param = 'position';
CREATE INDEX sp_geo_boundary ON sp_geo USING gist (geom) WHERE param = 'boundary';
CREATE INDEX sp_geo_owner ON sp_geo (rtype, id);

-- mahali_index as in 0002, plus entries {"p": param, "k": "g", "lon": x, "lat": y} (a point)
-- and {"p": param, "k": "b", "gj": "<GeoJSON geometry>"} (a polygonal boundary).
CREATE OR REPLACE FUNCTION mahali_index(p_rtype text, p_id text, p_index jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sp_string WHERE rtype = p_rtype AND id = p_id;
    DELETE FROM sp_token WHERE rtype = p_rtype AND id = p_id;
    DELETE FROM sp_ref WHERE rtype = p_rtype AND id = p_id;
    DELETE FROM sp_date WHERE rtype = p_rtype AND id = p_id;
    DELETE FROM sp_geo WHERE rtype = p_rtype AND id = p_id;
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
    INSERT INTO sp_geo (rtype, id, param, geog, geom)
    SELECT p_rtype, p_id, e ->> 'p', g::geography, g
      FROM (SELECT e, ST_SetSRID(ST_MakePoint((e ->> 'lon')::float8, (e ->> 'lat')::float8), 4326) g
              FROM jsonb_array_elements(p_index) e WHERE e ->> 'k' = 'g') pts;
    INSERT INTO sp_geo (rtype, id, param, geog, geom)
    SELECT p_rtype, p_id, e ->> 'p', g::geography, g
      FROM (SELECT e, ST_SetSRID(ST_GeomFromGeoJSON(e ->> 'gj'), 4326) g
              FROM jsonb_array_elements(p_index) e WHERE e ->> 'k' = 'b') bs;
END;
$$;
