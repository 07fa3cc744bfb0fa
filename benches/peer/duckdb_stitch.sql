-- The DuckDB peer of `lakestitch run`: the identity stitching a data team would write in SQL.
--
-- Run by benches/peer/run_peer.py, which replaces ${LAKE} (the raw lake), ${RUN} (the run
-- folder, runs/<date> under the output) and ${DATE} (the run date), runs the `setup` section
-- once, the `iterate` section until its last statement returns 0 (no label changed), then
-- the `finish` section.
--
-- What it does, in lakestitch's terms:
--   read      raw events and touches with dt <= date; one row per event_id (earliest dt, then
--             file, then row); junk ids nulled; an org id in user_id read as the org; rows
--             without an event_id, event, ts or any identity dropped.
--   identity  links (anon_id, user_id) from every event carrying both, aliases
--             (previous_id, anon_id); connected components by iterative label propagation
--             (each node takes the smallest label among itself and its neighbours) until no
--             label changes. A label sorts users before cookies, so a component's label is
--             its smallest user id, else its smallest anon_id: lakestitch's person_id.
--   stitch    backfill: every event takes the person of its user, else of its cookie; step
--             per person by (ts, seq nulls first, event_id); first and last counting touch per
--             person (click id, utm value, or a referrer from another registrable domain).
--   publish   journeys partitioned by dt (the UTC date of ts), persons; Parquet, zstd.
--
-- What it leaves out (and lakestitch does): segments (a logout starts a new anonymous
-- segment; a shared laptop is cut at each new user), refusing a union of two users, the
-- oversized flag, unknown attribution keys, the public suffix list (the registrable domain is
-- the last two labels of the host), attribution, identity_map / anon_visitors /
-- user_attribution, the manifest and its reconciliation.

-- @section setup
SET TimeZone = 'UTC';
SET preserve_insertion_order = false;

CREATE MACRO clean_id(x) AS CASE
    WHEN lower(trim(trim(x), '"''')) IN ('', 'null', 'undefined', 'none', 'nan', 'nil',
        'anonymous', 'guest', '0', '-1', '[object object]') THEN NULL
    ELSE trim(x) END;

CREATE MACRO site(url) AS array_to_string(
    string_split(regexp_replace(lower(regexp_extract(url, '^[a-zA-Z]+://([^/:?#]+)', 1)), '^www\.', ''), '.')[-2:],
    '.');

CREATE TABLE orgs AS
SELECT DISTINCT clean_id(org_id) AS org_id
FROM read_parquet('${LAKE}/raw/orgs/*.parquet')
WHERE clean_id(org_id) IS NOT NULL;

CREATE TABLE events AS
WITH raw AS (
    SELECT *
    FROM read_parquet('${LAKE}/raw/events/*/*.parquet', hive_partitioning = true,
                      union_by_name = true, filename = true, file_row_number = true)
    WHERE dt <= DATE '${DATE}'
),
dedup AS (
    SELECT * FROM raw
    WHERE event_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY dt, filename, file_row_number) = 1
),
cleaned AS (
    SELECT event_id, event, ts::TIMESTAMPTZ AS ts, seq, value, currency, order_id, session_id,
           clean_id(anon_id) AS anon_id,
           user_id AS raw_user_id,
           clean_id(user_id) AS uid,
           clean_id(previous_id) AS previous_id,
           clean_id(org_id) AS org_id
    FROM dedup
    WHERE event IS NOT NULL AND ts IS NOT NULL
)
SELECT c.* EXCLUDE (uid, org_id),
       CASE WHEN o.org_id IS NULL THEN c.uid END AS user_id,
       coalesce(c.org_id, o.org_id) AS org_id
FROM cleaned c LEFT JOIN orgs o ON o.org_id = c.uid
WHERE c.anon_id IS NOT NULL OR (c.uid IS NOT NULL AND o.org_id IS NULL);

CREATE TABLE touches AS
SELECT clean_id(anon_id) AS anon_id, ts::TIMESTAMPTZ AS ts,
       coalesce(gclid, gbraid, wbraid, fbclid, ttclid, msclkid, li_fat_id,
                utm_source, utm_medium, utm_campaign, utm_content, utm_term) IS NOT NULL
       OR (referrer IS NOT NULL AND site(referrer) <> '' AND site(referrer) <> site(landing_url))
           AS counting
FROM read_parquet('${LAKE}/raw/touches/*/*.parquet', hive_partitioning = true,
                  union_by_name = true)
WHERE dt <= DATE '${DATE}' AND clean_id(anon_id) IS NOT NULL AND ts IS NOT NULL;

-- Nodes: '0' || user_id and '1' || anon_id, so users sort before cookies.
CREATE TABLE edges AS
SELECT '1' || anon_id AS a, '0' || user_id AS b
FROM events WHERE anon_id IS NOT NULL AND user_id IS NOT NULL
UNION
SELECT '1' || previous_id, '1' || anon_id
FROM events WHERE event = '$create_alias' AND previous_id IS NOT NULL AND anon_id IS NOT NULL;

-- Both directions, and a self loop so a node keeps its own label in the minimum.
CREATE TABLE adj AS
SELECT a AS src, b AS dst FROM edges
UNION SELECT b, a FROM edges
UNION SELECT a, a FROM edges
UNION SELECT b, b FROM edges;

CREATE TABLE labels AS SELECT DISTINCT src AS node, src AS label FROM adj;

-- @section iterate
CREATE OR REPLACE TABLE labels_next AS
SELECT adj.src AS node, min(l.label) AS label
FROM adj JOIN labels l ON l.node = adj.dst
GROUP BY adj.src;
CREATE OR REPLACE TABLE changed AS
SELECT count(*) AS n FROM labels_next n JOIN labels l USING (node) WHERE n.label <> l.label;
DROP TABLE labels;
ALTER TABLE labels_next RENAME TO labels;
SELECT n FROM changed;

-- @section finish
CREATE TABLE journeys AS
WITH resolved AS (
    SELECT e.*,
           coalesce(lu.label, '0' || e.user_id, la.label, '1' || e.anon_id) AS label
    FROM events e
    LEFT JOIN labels lu ON lu.node = '0' || e.user_id
    LEFT JOIN labels la ON la.node = '1' || e.anon_id
)
SELECT event_id, ts, seq, event,
       substr(label, 2) AS person_id,
       CASE WHEN label[1] = '0' THEN substr(label, 2) END AS user_id,
       raw_user_id, anon_id, org_id,
       row_number() OVER (PARTITION BY label ORDER BY ts, seq NULLS FIRST, event_id) AS step,
       user_id IS NULL AND label[1] = '0' AS backfilled,
       event = 'purchase_completed' AS is_conversion,
       value, currency, order_id, session_id
FROM resolved;

CREATE TABLE persons AS
WITH touch_person AS (
    SELECT coalesce(l.label, '1' || t.anon_id) AS label, t.anon_id, t.ts, t.counting
    FROM touches t LEFT JOIN labels l ON l.node = '1' || t.anon_id
),
firsts AS (
    SELECT label,
           min(ts) FILTER (WHERE counting) AS first_touch_at,
           max(ts) FILTER (WHERE counting) AS last_touch_at
    FROM touch_person GROUP BY label
),
cookies AS (
    SELECT person_id, count(DISTINCT anon_id) AS anon_count FROM (
        SELECT person_id, anon_id FROM journeys WHERE anon_id IS NOT NULL
        UNION ALL
        SELECT substr(label, 2), anon_id FROM touch_person)
    GROUP BY person_id
)
SELECT substr(p.label, 2) AS person_id,
       CASE WHEN p.label[1] = '0' THEN substr(p.label, 2) END AS user_id,
       coalesce(c.anon_count, 0) AS anon_count, f.first_touch_at, f.last_touch_at
FROM (SELECT label FROM touch_person
      UNION SELECT '0' || user_id FROM journeys WHERE user_id IS NOT NULL
      UNION SELECT '1' || person_id FROM journeys WHERE user_id IS NULL) AS p
LEFT JOIN firsts f ON f.label = p.label
LEFT JOIN cookies c ON c.person_id = substr(p.label, 2);

COPY (SELECT *, ts::DATE AS dt FROM journeys)
TO '${RUN}/journeys' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (dt), OVERWRITE_OR_IGNORE);
COPY persons TO '${RUN}/persons/part-00000.parquet' (FORMAT parquet, COMPRESSION zstd);
