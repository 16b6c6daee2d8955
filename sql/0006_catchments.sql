-- Catchments (issue: spatial). A catchment is a Location of its own: partOf the facility it
-- serves, type location-role|catchment (approved) or location-role|catchment-draft (generated,
-- waiting for review), its polygon in the location-boundary-geojson extension (see
-- docs/DESIGN-NOTES.md). Being ordinary Locations, catchments are versioned, validated, audited
-- and indexed by the normal write path; this file only computes geometry: the draft polygons
-- that registry/catchment.c then writes, and the coverage check.
--
-- Facilities are the live Locations carrying the mCSD facility type, found through the partof
-- closure (sp_below, 0005), so "the facilities of a jurisdiction" is one index range.

-- The mCSD facilities strictly below p_root (partOf, any depth): name, whether their status is
-- active, and their position (NULL when they have none). The type is tested on the resource's
-- own content (jsonb containment) and the position fetched by id, so that the plan is the
-- closure's index range plus one probe per row whatever the statistics say (a join with
-- sp_token, planned before the first ANALYZE of thousands of new rows, scanned every facility
-- token once per facility).
CREATE FUNCTION mahali_facilities_below(p_root text)
RETURNS TABLE (id text, name text, active boolean, geom geometry)
LANGUAGE sql STABLE AS $$
    SELECT r.id, r.content ->> 'name', coalesce(r.content ->> 'status' = 'active', false),
           (SELECT g.geom FROM sp_geo g
             WHERE g.rtype = 'Location' AND g.id = r.id AND g.param = 'position' LIMIT 1)
      FROM sp_below b
      JOIN resource r ON r.rtype = 'Location' AND r.id = b.id AND NOT r.deleted
     WHERE b.rtype = 'Location' AND b.anc = p_root
       AND r.content -> 'type' @> '[{"coding": [{"system":
           "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types",
           "code": "facility"}]}]'
$$;

-- The catchments in use strictly below p_root: status active, type location-role|p_code
-- ('catchment' or 'catchment-draft'), with a boundary (several boundary extensions are merged).
-- facility_id: the Location it is partOf.
CREATE FUNCTION mahali_catchments_below(p_root text, p_code text)
RETURNS TABLE (id text, facility_id text, geom geometry)
LANGUAGE sql STABLE AS $$
    SELECT x.id, x.facility_id, x.geom FROM (
        SELECT r.id,
               (SELECT p.target_id FROM sp_ref p
                 WHERE p.rtype = 'Location' AND p.id = r.id AND p.param = 'partof'
                   AND p.target_type = 'Location' LIMIT 1) AS facility_id,
               (SELECT CASE WHEN count(*) = 1 THEN (array_agg(g.geom))[1]
                            ELSE ST_Union(array_agg(g.geom)) END
                  FROM sp_geo g
                 WHERE g.rtype = 'Location' AND g.id = r.id AND g.param = 'boundary') AS geom
          FROM sp_below b
          JOIN resource r ON r.rtype = 'Location' AND r.id = b.id AND NOT r.deleted
         WHERE b.rtype = 'Location' AND b.anc = p_root AND r.content ->> 'status' = 'active'
           AND r.content -> 'type' @> jsonb_build_array(jsonb_build_object('coding',
                   jsonb_build_array(jsonb_build_object(
                       'system', 'https://profiles.mahali.health/fhir/CodeSystem/location-role',
                       'code', p_code))))
    ) x
     WHERE x.geom IS NOT NULL
$$;

-- The UTM zone (WGS84, EPSG:326zz north / 327zz south) of a lon/lat point: a metric CRS in
-- which a Voronoi bisector is the set of points equally far from two facilities in metres
-- (in degrees, a longitude step is shorter than a latitude step away from the equator).
CREATE FUNCTION mahali_utm_srid(p geometry) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ST_Y(p) >= 0 THEN 32600 ELSE 32700 END
           + least(60, greatest(1, floor((ST_X(p) + 180.0) / 6.0)::integer + 1))
$$;

-- Draft catchments for the active facilities below p_root, clipped to p_root's boundary.
--   p_method 'voronoi': the Voronoi cell of each facility's position among those of the other
--     facilities, computed in the UTM zone of the jurisdiction's centroid, transformed back to
--     WGS84 and clipped there (so the outer edges are the jurisdiction's own); facilities with
--     the same position share one cell.
--   p_method 'buffer': the geodesic buffer of p_radius_m metres around each position (PostGIS
--     geography: 32-gon in the best local projection), clipped.
-- Polygons are snapped to 1e-7 degree with ST_ReducePrecision (valid output, the grid the
-- registry stores boundaries on), as GeoJSON with 7 decimals: what is written is exactly what
-- GEOS validates. One row per active facility, by id: geojson/area_km2 NULL when it gets no
-- polygon; shared_with: the other facilities at exactly the same position (comma-separated);
-- note: 'no-position', 'outside-jurisdiction' (its position is outside the boundary),
-- 'no-area' (no polygon inside the boundary, though the position is) or NULL.
-- Returns no rows when p_root has no boundary (the caller checks first).
-- Cells are matched to facilities through the GiST index on positions (sp_geo), not by
-- comparing every cell with every facility: thousands of facilities stay a few seconds.
CREATE FUNCTION mahali_catchment_drafts(p_root text, p_method text, p_radius_m float8)
RETURNS TABLE (facility_id text, facility_name text, geojson text, area_km2 float8,
               shared_with text, note text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    j geometry;    -- the jurisdiction's boundary, WGS84
    jm geometry;   -- the same in the metric CRS
    srid integer;
    ext geometry;  -- the extent the Voronoi diagram must cover (metric)
BEGIN
    SELECT ST_Union(g.geom) INTO j FROM sp_geo g
     WHERE g.rtype = 'Location' AND g.id = p_root AND g.param = 'boundary';
    IF j IS NULL THEN
        RETURN;
    END IF;
    srid := mahali_utm_srid(ST_Centroid(j));
    jm := ST_Transform(j, srid);
    -- 10 % + 1 km around the jurisdiction: lon/lat edges bulge slightly once projected
    ext := ST_Expand(ST_Envelope(jm),
                     greatest(ST_XMax(jm) - ST_XMin(jm), ST_YMax(jm) - ST_YMin(jm)) * 0.1 + 1000.0);
    -- Lookups by facility id go through jsonb maps (fac_set, shared, result: a binary search
    -- each), not joins, and every CTE used more than once is materialised: the planner cannot
    -- know how many cells and clipped polygons the geometry functions return (nor, before
    -- the first ANALYZE, how many facilities there are), guesses one, and then joined 2,000
    -- facilities by nested loops (8 million comparisons) or re-ran an aggregate per
    -- facility (30 s).
    RETURN QUERY
    WITH fac AS MATERIALIZED (
        SELECT f.id, f.name, f.geom FROM mahali_facilities_below(p_root) f WHERE f.active
    ),
    fac_set AS MATERIALIZED (SELECT jsonb_object_agg(f.id, true) AS m FROM fac f),
    pos AS MATERIALIZED (  -- distinct positions and who is at each
        SELECT ST_X(f.geom) AS x, ST_Y(f.geom) AS y, array_agg(f.id ORDER BY f.id) AS ids
          FROM fac f WHERE f.geom IS NOT NULL GROUP BY 1, 2
    ),
    shared AS MATERIALIZED (  -- facility id -> the other facilities at its position
        SELECT jsonb_object_agg(u.id, array_to_string(array_remove(p.ids, u.id), ',')) AS m
          FROM pos p CROSS JOIN LATERAL unnest(p.ids) AS u(id)
         WHERE cardinality(p.ids) > 1
    ),
    site AS (
        SELECT ST_Transform(ST_SetSRID(ST_MakePoint(p.x, p.y), 4326), srid) AS pm FROM pos p
    ),
    cell AS MATERIALIZED (
        -- Voronoi cells in metres (one site alone has the whole extent), each with the box to
        -- look for its site in: its envelope back in WGS84, densified so that the edges stay
        -- inside, computed once per cell (not once per position probed)
        SELECT v.cm, ST_Expand(ST_Transform(ST_Segmentize(ST_Envelope(v.cm), 10000.0), 4326),
                               0.001) AS box
          FROM (SELECT d.geom AS cm
                  FROM ST_Dump(ST_VoronoiPolygons(
                           CASE WHEN p_method = 'voronoi'
                                THEN (SELECT ST_Collect(s.pm) FROM site s) END, 0.0, ext)) d
                 WHERE (SELECT count(*) FROM site) > 1
                UNION ALL
                SELECT ext WHERE p_method = 'voronoi' AND (SELECT count(*) FROM site) = 1) v
    ),
    raw AS MATERIALIZED (
        -- each cell with the facilities whose position it contains, found with the position
        -- index
        SELECT m.id, ST_Transform(c.cm, 4326) AS g FROM cell c
         CROSS JOIN LATERAL (
             SELECT p.id FROM sp_geo p
              WHERE p.rtype = 'Location' AND p.param = 'position' AND p.geom && c.box
                AND (SELECT fs.m FROM fac_set fs) ? p.id
                AND ST_Contains(c.cm, ST_Transform(p.geom, srid))
             OFFSET 0) m  -- not flattened into a join: one index probe per cell
        UNION ALL
        SELECT f.id, ST_Buffer(f.geom::geography, p_radius_m)::geometry FROM fac f
         WHERE p_method = 'buffer' AND f.geom IS NOT NULL
    ),
    clipped AS MATERIALIZED (
        SELECT k.id, ST_CollectionExtract(ST_ReducePrecision(
                   CASE WHEN ST_Covers(j, k.g) THEN k.g ELSE ST_Intersection(k.g, j) END,
                   1e-7), 3) AS g
          FROM raw k
    ),
    result AS MATERIALIZED (  -- facility id -> [GeoJSON, km2]
        SELECT jsonb_object_agg(k.id, jsonb_build_array(
                   ST_AsGeoJSON(CASE WHEN ST_NumGeometries(k.g) = 1 THEN ST_GeometryN(k.g, 1)
                                     ELSE k.g END, 7),
                   ST_Area(k.g::geography) / 1e6)) AS m
          FROM clipped k WHERE NOT ST_IsEmpty(k.g)
    )
    SELECT f.id, f.name, rs.m -> f.id ->> 0, (rs.m -> f.id ->> 1)::float8, sh.m ->> f.id,
           CASE WHEN f.geom IS NULL THEN 'no-position'
                WHEN NOT ST_Covers(j, f.geom) THEN 'outside-jurisdiction'
                WHEN NOT coalesce(rs.m ? f.id, false) THEN 'no-area' END
      FROM fac f, result rs, shared sh
     ORDER BY f.id;
END;
$$;

-- The coverage of p_root by the catchments below it (p_code 'catchment': the approved ones,
-- 'catchment-draft': the drafts). One row per problem:
--   gap                part of the jurisdiction covered by no catchment: area_km2, and a point
--                      inside it (lat, lon)
--   overlap            two catchments whose intersection exceeds p_tol_km2: catchment_id,
--                      other_id (catchment_id < other_id), area_km2
--   facility-outside   a facility's position is outside its catchment(s): facility_id,
--                      catchment_id, distance_m to the catchment, lat/lon of the facility
--   no-catchment       an active facility with no catchment: facility_id, lat/lon if known
--   facility-inactive  a catchment whose facility's status is not active
--   not-a-facility     a catchment partOf a Location that is not an mCSD facility
-- Gaps and overlaps no larger than p_tol_km2 are not reported (slivers from snapping
-- coordinates to 1e-7 degree are far smaller). Areas and distances are geodesic (WGS84).
-- Overlapping pairs are found with the GiST index on boundaries, not by comparing all pairs.
CREATE FUNCTION mahali_catchment_check(p_root text, p_code text, p_tol_km2 float8)
RETURNS TABLE (check_code text, facility_id text, catchment_id text, other_id text,
               area_km2 float8, distance_m float8, lat float8, lon float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    j geometry;
BEGIN
    SELECT ST_Union(g.geom) INTO j FROM sp_geo g
     WHERE g.rtype = 'Location' AND g.id = p_root AND g.param = 'boundary';
    IF j IS NULL THEN
        RETURN;
    END IF;
    -- As in mahali_catchment_drafts, lookups by id go through jsonb maps, not joins between
    -- the two sets, whose sizes the planner cannot estimate (nested loops over 2,000 x 2,000
    -- rows took 25 s before the first ANALYZE).
    RETURN QUERY
    WITH c AS MATERIALIZED (SELECT * FROM mahali_catchments_below(p_root, p_code)),
    f AS MATERIALIZED (SELECT * FROM mahali_facilities_below(p_root)),
    c_set AS MATERIALIZED (SELECT jsonb_object_agg(c.id, true) AS m FROM c),
    f_active AS MATERIALIZED (  -- facility id -> its status is active
        SELECT jsonb_object_agg(f.id, f.active) AS m FROM f
    ),
    served AS MATERIALIZED (  -- the facilities that have a catchment
        SELECT jsonb_object_agg(x.fid, true) AS m
          FROM (SELECT DISTINCT c.facility_id AS fid FROM c WHERE c.facility_id IS NOT NULL) x
    ),
    cover AS (SELECT ST_Union(c.geom) AS u FROM c),
    gap AS (
        SELECT d.geom AS g, ST_Area(d.geom::geography) / 1e6 AS a
          FROM cover, ST_Dump(CASE WHEN cover.u IS NULL THEN j ELSE ST_Difference(j, cover.u) END) d
         WHERE ST_Dimension(d.geom) = 2
    ),
    pair AS MATERIALIZED (
        -- neighbours from the boundary index; a catchment with several boundary extensions is
        -- compared part by part and its areas added up
        SELECT a.id AS aid, n.id AS bid,
               sum(ST_Area(ST_CollectionExtract(ST_Intersection(a.geom, n.geom), 3)::geography))
                   / 1e6 AS area
          FROM c a
         CROSS JOIN LATERAL (
             SELECT g.id, g.geom FROM sp_geo g
              WHERE g.rtype = 'Location' AND g.param = 'boundary' AND g.geom && a.geom
                AND g.id > a.id AND (SELECT cs.m FROM c_set cs) ? g.id
             OFFSET 0) n  -- not flattened into a join: one index probe per catchment
         WHERE ST_Relate(a.geom, n.geom, 'T********')  -- interiors meet: more than a shared edge
         GROUP BY a.id, n.id
    ),
    placed AS MATERIALIZED (  -- each catchment of a facility with its facility's position
        SELECT k.id, k.facility_id, k.geom,
               (SELECT p.geom FROM sp_geo p
                 WHERE p.rtype = 'Location' AND p.id = k.facility_id AND p.param = 'position'
                 LIMIT 1) AS pos
          FROM c k
         WHERE (SELECT fa.m FROM f_active fa) ? k.facility_id
    ),
    outside AS MATERIALIZED (  -- catchments that do not cover their facility's position
        SELECT x.id, x.facility_id, x.pos AS geom,
               ST_Distance(x.geom::geography, x.pos::geography) AS d
          FROM placed x
         WHERE x.pos IS NOT NULL AND NOT ST_Covers(x.geom, x.pos)
    )
    SELECT 'gap'::text, NULL::text, NULL::text, NULL::text, gap.a, NULL::float8,
           ST_Y(ST_PointOnSurface(gap.g)), ST_X(ST_PointOnSurface(gap.g))
      FROM gap WHERE gap.a > p_tol_km2
    UNION ALL
    SELECT 'overlap', NULL, pair.aid, pair.bid, pair.area, NULL, NULL, NULL
      FROM pair WHERE pair.area > p_tol_km2
    UNION ALL
    SELECT 'facility-outside', o.facility_id, o.id, NULL, NULL, o.d, ST_Y(o.geom), ST_X(o.geom)
      FROM outside o
     WHERE NOT EXISTS (SELECT 1 FROM c k2  -- nor does any other catchment of that facility
                        WHERE k2.facility_id = o.facility_id AND ST_Covers(k2.geom, o.geom))
    UNION ALL
    SELECT 'no-catchment', fa.id, NULL, NULL, NULL, NULL, ST_Y(fa.geom), ST_X(fa.geom)
      FROM f fa, served sv
     WHERE fa.active AND NOT coalesce(sv.m ? fa.id, false)
    UNION ALL
    SELECT 'facility-inactive', k.facility_id, k.id, NULL, NULL, NULL, NULL, NULL
      FROM c k, f_active fa
     WHERE fa.m ->> k.facility_id = 'false'
    UNION ALL
    SELECT 'not-a-facility', k.facility_id, k.id, NULL, NULL, NULL, NULL, NULL
      FROM c k, f_active fa
     WHERE NOT coalesce(fa.m ? k.facility_id, false);
END;
$$;
