-- Spatial data quality of facility positions (issue: spatial). One row per problem found:
--   zero-position       the position is 0,0
--   low-precision       latitude or longitude written with fewer than 3 decimals (~100 m)
--   outside-jurisdiction the position is outside the boundary of its nearest ancestor (partOf)
--                       that has one; other_id = the innermost boundary it falls in, if any
--   outside-country     the position is inside no boundary at all
--   swapped-coordinates outside every boundary as given, inside one with latitude and longitude
--                       swapped; other_id = that boundary
--   same-position       another Location has exactly the same position; other_id = it
--   likely-duplicate    another Location within 1 km has a similar name (trigram similarity of
--                       the names, abbreviations unified by mahali_name_key, >= 0.65); other_id = it
-- p_root: only Locations at or below this Location (partOf), or NULL for all. Writes are never
-- refused for these: a ministry records what it has, and this makes every problem visible.
-- A facility name for duplicate detection: case and accents folded, punctuation dropped, and
-- the abbreviations master facility lists mix (Saint/St, Government/Govt, Centre/Center...) made
-- one, so that "Saint Mary Govt. Hospital" and "St Mary Government Hospital" compare equal.
CREATE FUNCTION mahali_name_key(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT btrim(regexp_replace(
             regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
               regexp_replace(mahali_norm(t), '[^a-z0-9 ]+', ' ', 'g'),
               '\msaint\M', 'st', 'g'), '\mgovernment\M', 'govt', 'g'),
               '\mcentre\M', 'center', 'g'), '\mhealth center\M', 'hc', 'g'),
               '\mhospital\M', 'hosp', 'g'),
             ' +', ' ', 'g'))
$$;

-- Every (Location with a position, Location with a boundary) pair where the boundary covers the
-- position. One indexed query per boundary: within each, ST_Covers is called with the same
-- polygon again and again, so PostGIS prepares it once (a join that alternates polygons
-- re-prepares on every call and is 100x slower).
CREATE FUNCTION mahali_covering_pairs()
RETURNS TABLE (fid text, bid text, area float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b record;
BEGIN
    FOR b IN SELECT g.id, g.geom, ST_Area(g.geog) AS area FROM sp_geo g
              WHERE g.rtype = 'Location' AND g.param = 'boundary' LOOP
        RETURN QUERY
            SELECT p.id, b.id, b.area FROM sp_geo p
             WHERE p.rtype = 'Location' AND p.param = 'position' AND p.geom && b.geom
               AND ST_Covers(b.geom, p.geom);
    END LOOP;
END;
$$;

CREATE FUNCTION mahali_data_quality(p_root text)
RETURNS TABLE (id text, name text, jurisdiction text, check_code text, reason text, other_id text)
LANGUAGE sql STABLE AS $$
WITH RECURSIVE
scope(id) AS (
    SELECT p_root WHERE p_root IS NOT NULL
    UNION
    SELECT c.id FROM sp_ref c JOIN scope s ON c.target_id = s.id
     WHERE c.rtype = 'Location' AND c.param = 'partof' AND c.target_type = 'Location'
),
fac AS (
    SELECT r.id, r.content ->> 'name' AS name, g.geom, g.geog,
           (r.content -> 'position' ->> 'latitude') AS lat_text,
           (r.content -> 'position' ->> 'longitude') AS lon_text,
           (SELECT f.target_id FROM sp_ref f WHERE f.rtype = 'Location' AND f.id = r.id
               AND f.param = 'partof' LIMIT 1) AS parent
      FROM resource r
      JOIN sp_geo g ON g.rtype = 'Location' AND g.id = r.id AND g.param = 'position'
     WHERE r.rtype = 'Location' AND NOT r.deleted
       AND (p_root IS NULL OR r.id IN (SELECT s.id FROM scope s))
),
-- the nearest ancestor with a boundary, walking partOf up (depth-limited)
anc(fid, aid, depth) AS (
    SELECT fac.id, fac.parent, 1 FROM fac WHERE fac.parent IS NOT NULL
    UNION ALL
    SELECT anc.fid, p.target_id, anc.depth + 1 FROM anc
      JOIN sp_ref p ON p.rtype = 'Location' AND p.id = anc.aid AND p.param = 'partof'
     WHERE anc.depth < 20 AND NOT EXISTS (SELECT 1 FROM sp_geo b WHERE b.rtype = 'Location'
                                             AND b.id = anc.aid AND b.param = 'boundary')
),
declared AS (
    SELECT DISTINCT ON (anc.fid) anc.fid, anc.aid FROM anc
      JOIN sp_geo b ON b.rtype = 'Location' AND b.id = anc.aid AND b.param = 'boundary'
     ORDER BY anc.fid, anc.depth
),
covers AS (SELECT * FROM mahali_covering_pairs()),
inner_b AS (  -- the innermost boundary covering each facility
    SELECT DISTINCT ON (covers.fid) covers.fid, covers.bid FROM covers
     ORDER BY covers.fid, covers.area
)
SELECT fac.id, fac.name, fac.parent, 'zero-position',
       'the position is 0,0 (latitude and longitude both zero)', NULL
  FROM fac WHERE ST_X(fac.geom) = 0 AND ST_Y(fac.geom) = 0
UNION ALL
SELECT fac.id, fac.name, fac.parent, 'low-precision',
       format('the position has fewer than 3 decimals (latitude %s, longitude %s): it may be '
              'off by more than 100 m', fac.lat_text, fac.lon_text), NULL
  FROM fac
 WHERE length(split_part(fac.lat_text, '.', 2)) < 3 OR length(split_part(fac.lon_text, '.', 2)) < 3
UNION ALL
SELECT fac.id, fac.name, fac.parent, 'outside-jurisdiction',
       format('the position is outside the boundary of Location/%s, the jurisdiction it is part of%s',
              d.aid, CASE WHEN i.bid IS NOT NULL THEN format('; it falls in Location/%s', i.bid)
                          ELSE '' END), i.bid
  FROM fac JOIN declared d ON d.fid = fac.id
  LEFT JOIN inner_b i ON i.fid = fac.id
 WHERE NOT EXISTS (SELECT 1 FROM covers c WHERE c.fid = fac.id AND c.bid = d.aid)
UNION ALL
SELECT fac.id, fac.name, fac.parent, 'outside-country',
       'the position is outside every jurisdiction boundary (in the sea, or another country?)', NULL
  FROM fac
 WHERE EXISTS (SELECT 1 FROM sp_geo b WHERE b.rtype = 'Location' AND b.param = 'boundary')
   AND NOT EXISTS (SELECT 1 FROM inner_b i WHERE i.fid = fac.id)
UNION ALL
SELECT fac.id, fac.name, fac.parent, 'swapped-coordinates',
       format('latitude and longitude look swapped: as given the position is outside every '
              'boundary, swapped (%s, %s) it falls in Location/%s', fac.lon_text, fac.lat_text, s.bid),
       s.bid
  FROM fac
  CROSS JOIN LATERAL (
      SELECT b.id AS bid FROM sp_geo b
       WHERE b.rtype = 'Location' AND b.param = 'boundary'
         AND ST_Covers(b.geom, ST_SetSRID(ST_MakePoint(ST_Y(fac.geom), ST_X(fac.geom)), 4326))
       ORDER BY ST_Area(b.geog) LIMIT 1) s
 WHERE NOT EXISTS (SELECT 1 FROM inner_b i WHERE i.fid = fac.id)
UNION ALL
SELECT a.id, a.name, a.parent, 'same-position',
       format('Location/%s has exactly the same position', b.id), b.id
  FROM fac a JOIN sp_geo b ON b.rtype = 'Location' AND b.param = 'position' AND b.id <> a.id
                          AND b.geom && a.geom AND ST_Equals(a.geom, b.geom)
UNION ALL
SELECT a.id, a.name, a.parent, 'likely-duplicate',
       format('Location/%s ("%s") is %s m away and has a similar name', b.id, x.content ->> 'name',
              round(ST_Distance(a.geog, b.geog))::text), b.id
  FROM fac a JOIN sp_geo b ON b.rtype = 'Location' AND b.param = 'position' AND b.id <> a.id
                          AND ST_DWithin(a.geog, b.geog, 1000)
  JOIN resource x ON x.rtype = 'Location' AND x.id = b.id AND NOT x.deleted
 WHERE a.name IS NOT NULL AND x.content ->> 'name' IS NOT NULL AND NOT ST_Equals(a.geom, b.geom)
   AND similarity(mahali_name_key(a.name), mahali_name_key(x.content ->> 'name')) >= 0.65
$$;
