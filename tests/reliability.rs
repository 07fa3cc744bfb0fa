//! Reliability (issue 6): every kind of bad input is refused or quarantined with a reason, the
//! manifest reconciles, nothing half-done is ever published.

use std::path::Path;

use crate::common::*;

use lakestitch::pipeline;
use lakestitch::progress::Progress;
use lakestitch::read::schema;
use lakestitch::ExitCode;
use polars::prelude::*;

/// The date of the good run every refusal test publishes first.
const GOOD: &str = "2026-11-01";
/// The date of the run that meets the bad input.
const BAD: &str = "2026-11-02";

/// A lake with one good day, published: `latest` is [`GOOD`].
fn published_lake() -> TestLake {
    let mut lake = TestLake::new();
    lake.touches(
        GOOD,
        &[touch("c1", "2026-11-01T08:00:00Z").utm("google", "cpc", "brand")],
    );
    lake.events(
        GOOD,
        &[ev(
            "g1",
            "signup_completed",
            "2026-11-01T09:00:00Z",
            Some("c1"),
            Some("u1"),
        )],
    );
    lake.run(GOOD);
    assert_eq!(latest(&lake).as_deref(), Some(GOOD));
    lake
}

fn latest(lake: &TestLake) -> Option<String> {
    std::fs::read_to_string(lake.output().join("latest"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Run [`BAD`] and check it is refused with exit code 2, a message holding every `needle`,
/// and nothing published: no `_SUCCESS`, `latest` unchanged, the good run untouched.
fn assert_refused(lake: &TestLake, needles: &[&str]) -> String {
    let err = pipeline::run(&lake.config(BAD), &Progress::hidden())
        .expect_err("bad input must stop the run");
    let msg = err.to_string();
    assert_eq!(err.exit_code(), ExitCode::BadInput, "{msg}");
    for n in needles {
        assert!(msg.contains(n), "`{n}` not in: {msg}");
    }
    let out = lake.output();
    assert!(!out.join(format!("runs/{BAD}")).exists(), "{msg}");
    assert!(out.join(format!("runs/{GOOD}/_SUCCESS")).exists());
    assert_eq!(latest(lake).as_deref(), Some(GOOD));
    msg
}

fn bad_path(source: &str) -> String {
    format!("raw/{source}/dt={BAD}/part-bad.parquet")
}

fn parquet(df: &DataFrame) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
    buf
}

fn put_bytes(lake: &TestLake, rel: &str, bytes: &[u8]) {
    let p = lake.input().join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

// ---- refused: the file breaks the contract ---------------------------------------------------

#[test]
fn bad_input_missing_required_column_is_refused_naming_file_and_column() {
    let mut lake = published_lake();
    // A touches file without anon_id.
    let df = df!("ts" => [1i64]).unwrap();
    let df = df
        .lazy()
        .with_column(col("ts").cast(DataType::Datetime(TimeUnit::Milliseconds, None)))
        .collect()
        .unwrap();
    lake.frame(&bad_path("touches"), &df);
    assert_refused(
        &lake,
        &[
            &bad_path("touches"),
            "`anon_id`",
            "expected a string",
            "no such column",
        ],
    );
}

#[test]
fn bad_input_string_ts_is_refused_naming_the_types() {
    let mut lake = published_lake();
    let df = df!("event_id" => ["e"], "event" => ["x"], "ts" => ["2026-11-02T09:00:00Z"],
                 "anon_id" => ["a"])
    .unwrap();
    lake.frame(&bad_path("events"), &df);
    assert_refused(
        &lake,
        &[
            &bad_path("events"),
            "`ts`",
            "expected a timestamp",
            "found str",
        ],
    );
}

#[test]
fn bad_input_integer_anon_id_is_refused_naming_the_types() {
    let mut lake = published_lake();
    let df = df!("anon_id" => [42i64], "ts" => [1_700_000_000_000i64])
        .unwrap()
        .lazy()
        .with_column(col("ts").cast(DataType::Datetime(TimeUnit::Milliseconds, None)))
        .collect()
        .unwrap();
    lake.frame(&bad_path("touches"), &df);
    assert_refused(
        &lake,
        &[
            &bad_path("touches"),
            "`anon_id`",
            "expected a string",
            "found i64",
        ],
    );
}

#[test]
fn bad_input_garbage_file_is_refused() {
    let lake = published_lake();
    put_bytes(
        &lake,
        &bad_path("events"),
        b"event_id,event,ts\ne1,x,2026\n",
    );
    assert_refused(&lake, &[&bad_path("events"), "not a readable Parquet file"]);
}

#[test]
fn bad_input_empty_file_is_refused() {
    let lake = published_lake();
    put_bytes(&lake, &bad_path("touches"), b"");
    assert_refused(
        &lake,
        &[&bad_path("touches"), "not a readable Parquet file"],
    );
}

#[test]
fn bad_input_truncated_file_is_refused() {
    let lake = published_lake();
    let good = parquet(&events_frame(&[ev(
        "t1",
        "page_viewed",
        "2026-11-02T09:00:00Z",
        Some("a"),
        None,
    )]));
    put_bytes(&lake, &bad_path("events"), &good[..good.len() / 2]);
    assert_refused(&lake, &[&bad_path("events"), "not a readable Parquet file"]);
}

/// Every prefix of a Parquet file, and every single-byte corruption of it, is either read or
/// refused as bad input: the reader never panics and never reports another kind of error.
#[test]
fn bad_input_any_truncation_or_corrupt_byte_is_refused_not_a_crash() {
    let rows: Vec<Ev> = (0..20)
        .map(|i| {
            ev(
                &format!("e{i}"),
                "page_viewed",
                "2026-11-02T09:00:00Z",
                Some(&format!("c{i}")),
                (i % 3 == 0).then_some("u"),
            )
        })
        .collect();
    let good = parquet(&events_frame(&rows));
    let read = |bytes: Vec<u8>| {
        schema::read_file(
            bytes::Bytes::from(bytes),
            "raw/events/dt=2026-11-02/x.parquet",
            BAD,
            schema::EVENTS,
            false,
            &[],
        )
    };
    let check = |what: &str, r: lakestitch::Result<DataFrame>| {
        if let Err(e) = r {
            assert_eq!(e.exit_code(), ExitCode::BadInput, "{what}: {e}");
            assert!(e.to_string().contains("x.parquet"), "{what}: {e}");
        }
    };
    for cut in 0..good.len() {
        let r = read(good[..cut].to_vec());
        assert!(r.is_err(), "a file cut at byte {cut} was read");
        check(&format!("cut at {cut}"), r);
    }
    for at in (0..good.len()).step_by(3) {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        check(&format!("byte {at} flipped"), read(bad));
    }
}

#[test]
fn bad_input_non_parquet_file_is_refused() {
    let lake = published_lake();
    put_bytes(&lake, &format!("raw/events/dt={BAD}/part-0.csv"), b"a,b\n");
    assert_refused(
        &lake,
        &["raw/events/dt=2026-11-02/part-0.csv", "not a .parquet file"],
    );
}

// ---- accepted: layouts and schema drift that are not errors ---------------------------------

#[test]
fn bad_input_partition_folder_with_no_files_is_an_empty_day() {
    let lake = published_lake();
    std::fs::create_dir_all(lake.input().join(format!("raw/events/dt={BAD}"))).unwrap();
    std::fs::create_dir_all(lake.input().join(format!("raw/touches/dt={BAD}"))).unwrap();
    let run = lake.run(BAD);
    let m = run.manifest();
    assert_eq!(m["inputs"]["events"]["rows_read"], 1);
    assert_eq!(run.table("journeys").height(), 1);
    assert_eq!(latest(&lake).as_deref(), Some(BAD));
}

#[test]
fn schema_drift_a_column_only_in_newer_files_is_null_in_older_rows() {
    let mut lake = TestLake::new();
    // Old delivery: the required columns only.
    let old = df!("event_id" => ["old"], "event" => ["page_viewed"], "anon_id" => ["c"],
                  "ts" => [us("2026-11-01T09:00:00Z") / 1000])
    .unwrap()
    .lazy()
    .with_column(col("ts").cast(DataType::Datetime(TimeUnit::Milliseconds, None)))
    .collect()
    .unwrap();
    lake.frame("raw/events/dt=2026-11-01/part-0.parquet", &old);
    // New delivery: every optional column, and a touch key that did not exist before.
    lake.events(
        "2026-11-02",
        &[ev(
            "new",
            "purchase_completed",
            "2026-11-02T09:00:00Z",
            Some("c"),
            Some("u"),
        )
        .seq(7)
        .purchase(10.0, None)],
    );
    lake.touches(GOOD, &[touch("c", "2026-11-01T08:00:00Z")]);
    lake.touches(
        BAD,
        &[touch("c", "2026-11-02T08:00:00Z").extra("partner_click_id", "P1")],
    );
    let run = lake.run(BAD);
    let j = run.table("journeys");
    let j = j.sort(["event_id"], Default::default()).unwrap();
    assert_eq!(
        strings(&j, "event_id"),
        vec![Some("new".into()), Some("old".into())]
    );
    let seq: Vec<Option<i64>> = j.column("seq").unwrap().i64().unwrap().iter().collect();
    assert_eq!(seq, vec![Some(7), None]);
    let m = run.manifest();
    assert_eq!(m["inputs"]["touches"]["rows_used"], 2);
    let last = run
        .str_of("anon_visitors", "anon_id", "c", "last_touch")
        .unwrap();
    assert!(last.contains("partner_click_id"), "{last}");
}

/// A file from another writer (pyarrow): REQUIRED (non-nullable) columns, nanosecond
/// timestamps in a non-UTC zone, a large string, a dictionary-encoded string and an int32 `seq`;
/// mixed with our own nullable, naive millisecond files in one partition.
#[test]
fn schema_drift_units_zones_and_nullability_differ_across_files() {
    let mut lake = TestLake::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events_required_ns_newyork.parquet");
    put_bytes(
        &lake,
        "raw/events/dt=2026-11-01/part-a.parquet",
        &std::fs::read(fixture).unwrap(),
    );
    lake.events(
        "2026-11-01",
        &[ev(
            "ours",
            "page_viewed",
            "2026-11-01T09:00:02Z",
            Some("fixture_cookie"),
            None,
        )
        .seq(3)],
    );
    let run = lake.run("2026-11-01");
    let j = run
        .table("journeys")
        .sort(["ts"], Default::default())
        .unwrap();
    assert_eq!(
        strings(&j, "event_id"),
        vec![
            Some("req-1".into()),
            Some("req-2".into()),
            Some("ours".into())
        ]
    );
    assert_eq!(
        micros(&j, "ts"),
        vec![
            Some(us("2026-11-01T09:00:00Z")),
            Some(us("2026-11-01T09:00:01Z")),
            Some(us("2026-11-01T09:00:02Z")),
        ]
    );
    assert_eq!(strings(&j, "event"), vec![Some("page_viewed".into()); 3]);
    let seq: Vec<Option<i64>> = j.column("seq").unwrap().i64().unwrap().iter().collect();
    assert_eq!(seq, vec![Some(1), Some(2), Some(3)]);
}
