"""Open a published run's tables with DuckDB and pyarrow (readers that are not ours) and
check the types the contract promises, without casts: timestamps as UTC timestamps, ids as
strings, booleans as booleans. Usage: python ci/check_tables.py OUTPUT_DIR RUN_DATE"""

import json
import pathlib
import sys

import duckdb
import pyarrow.parquet as pq

out = pathlib.Path(sys.argv[1])
run = out / "runs" / sys.argv[2]
assert (run / "_SUCCESS").exists(), "run not published"

EXPECT = {
    "identity_map": {"anon_id": "VARCHAR", "person_id": "VARCHAR", "user_id": "VARCHAR",
                     "link_kind": "VARCHAR", "link_event_id": "VARCHAR",
                     "valid_from": "TIMESTAMP WITH TIME ZONE", "valid_to": "TIMESTAMP WITH TIME ZONE",
                     "linked_at": "TIMESTAMP WITH TIME ZONE", "conflict": "BOOLEAN"},
    "persons": {"person_id": "VARCHAR", "user_id": "VARCHAR", "oversized": "BOOLEAN"},
    "anon_visitors": {"anon_id": "VARCHAR", "first_seen_at": "TIMESTAMP WITH TIME ZONE",
                      "last_seen_at": "TIMESTAMP WITH TIME ZONE", "first_touch": "VARCHAR",
                      "last_touch": "VARCHAR", "merged_user_id": "VARCHAR",
                      "merged_at": "TIMESTAMP WITH TIME ZONE", "person_id": "VARCHAR"},
    "user_attribution": {"user_id": "VARCHAR", "person_id": "VARCHAR", "first_touch": "VARCHAR",
                         "first_touch_channel": "VARCHAR", "first_touch_source": "VARCHAR",
                         "first_touch_medium": "VARCHAR", "first_touch_campaign": "VARCHAR",
                         "first_touch_at": "TIMESTAMP WITH TIME ZONE",
                         "signup_at": "TIMESTAMP WITH TIME ZONE",
                         "first_purchase_at": "TIMESTAMP WITH TIME ZONE"},
    "journeys": {"event_id": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE", "seq": "BIGINT",
                 "event": "VARCHAR", "person_id": "VARCHAR", "user_id": "VARCHAR",
                 "raw_user_id": "VARCHAR", "anon_id": "VARCHAR", "org_id": "VARCHAR",
                 "backfilled": "BOOLEAN", "is_conversion": "BOOLEAN", "value": "DOUBLE",
                 "currency": "VARCHAR"},
    "attribution": {"conversion_event_id": "VARCHAR", "person_id": "VARCHAR", "user_id": "VARCHAR",
                    "converted_at": "TIMESTAMP WITH TIME ZONE", "value": "DOUBLE",
                    "currency": "VARCHAR", "model": "VARCHAR",
                    "touch_at": "TIMESTAMP WITH TIME ZONE", "channel": "VARCHAR",
                    "source": "VARCHAR", "medium": "VARCHAR", "campaign": "VARCHAR",
                    "credit": "DOUBLE"},
    "attribution_summary": {"model": "VARCHAR", "channel": "VARCHAR", "campaign": "VARCHAR",
                            "conversions_credited": "DOUBLE", "value_credited": "DOUBLE"},
    "export_status": {"conversion_event_id": "VARCHAR", "platform": "VARCHAR",
                      "exported": "BOOLEAN", "reason": "VARCHAR"},
    "quarantine": {"source": "VARCHAR", "file": "VARCHAR", "row_key": "VARCHAR", "reason": "VARCHAR"},
    # Beyond the contract: one row per union refused because it would join two users.
    "refused_unions": {"event_id": "VARCHAR", "at": "TIMESTAMP WITH TIME ZONE", "kind": "VARCHAR",
                       "anon_id": "VARCHAR", "segment": "UINTEGER", "person_id": "VARCHAR",
                       "user_id": "VARCHAR", "other_anon_id": "VARCHAR",
                       "other_segment": "UINTEGER", "other_person_id": "VARCHAR",
                       "other_user_id": "VARCHAR"},
}

manifest = json.loads((run / "manifest.json").read_text())
con = duckdb.connect()
failures = 0
for table, cols in EXPECT.items():
    glob = str(run / table / "**" / "*.parquet")
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    types = dict(zip(rel.columns, [str(t) for t in rel.types]))
    for col, want in cols.items():
        got = types.get(col)
        ok = got == want
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} duckdb {table}.{col}: {got} (want {want})")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
    want_rows = manifest["outputs"][table]["rows"]
    ok = rows == want_rows
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} duckdb {table}: {rows} rows (manifest {want_rows})")
    for f in (run / table).rglob("*.parquet"):
        schema = pq.read_schema(f)
        for field in schema:
            if field.name in cols and "TIMESTAMP" in cols[field.name]:
                ok = str(field.type) == "timestamp[us, tz=UTC]"
                failures += not ok
                if not ok:
                    print(f"FAIL pyarrow {f}: {field.name} is {field.type}")

print(f"{sum(len(c) + 1 for c in EXPECT.values()) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
