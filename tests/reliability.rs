//! Reliability (issue 6): every kind of bad input is refused or quarantined with a reason, the
//! manifest reconciles, nothing half-done is ever published.

use std::path::Path;

use crate::common::*;
use lakestitch::config::{JobConfig, JobFile};
use lakestitch::pipeline;
use lakestitch::progress::Progress;
use lakestitch::read::schema;
use lakestitch::{Error, ExitCode};
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

// ---- quarantined or counted: rows the run cannot use ----------------------------------------

/// A lake holding every quarantine reason of every source, and the other counted oddities.
fn mixed_lake() -> TestLake {
    let mut lake = TestLake::new();
    let long_id = "x".repeat(1025);
    let long_blob = format!("{{\"k\":\"{}\"}}", "v".repeat(70_000));
    let e = |id: &str, ts: &str, anon: Option<&str>, user: Option<&str>| {
        ev(id, "page_viewed", ts, anon, user)
    };
    let mut missing_id = e("x", "2026-11-02T09:00:00Z", Some("a"), None);
    missing_id.event_id = None;
    let mut blank_id = e("x", "2026-11-02T09:00:00Z", Some("a"), None);
    blank_id.event_id = Some("   ".into());
    let mut missing_event = e("no_name", "2026-11-02T09:00:00Z", Some("a"), None);
    missing_event.event = Some(" ".into());
    let mut missing_ts = e("no_ts", "2026-11-02T09:00:00Z", Some("a"), None);
    missing_ts.ts = None;
    lake.events(
        "2026-11-01",
        &[
            e("ok1", "2026-11-01T09:00:00Z", Some("a"), Some("u1")),
            e("dup", "2026-11-01T09:01:00Z", Some("a"), None),
            e("dup_conflict", "2026-11-01T09:02:00Z", Some("a"), None),
        ],
    );
    lake.events(
        "2026-11-02",
        &[
            // Repeated deliveries: one identical, one with different content.
            e("dup", "2026-11-01T09:01:00Z", Some("a"), None),
            e("dup_conflict", "2026-11-01T09:03:00Z", Some("a"), None),
            missing_id,
            blank_id,
            missing_event,
            missing_ts,
            // Junk ids everywhere: no identity left.
            e(
                "junk",
                "2026-11-02T09:00:00Z",
                Some(" NULL "),
                Some("\"undefined\""),
            ),
            e("blank", "2026-11-02T09:00:00Z", Some("  "), None),
            e("nothing", "2026-11-02T09:00:00Z", None, None),
            // A junk anon_id with a real user is used (and counted as a junk id).
            e(
                "junk_anon_real_user",
                "2026-11-02T09:00:00Z",
                Some("[object Object]"),
                Some("u1"),
            ),
            // Clock errors.
            e("y1999", "1999-12-31T23:59:59Z", Some("a"), None),
            e("y1970", "1970-01-01T00:00:00Z", Some("a"), None),
            e("future", "2026-11-04T00:00:00Z", Some("a"), None),
            e("tomorrow_ok", "2026-11-03T23:59:59Z", Some("a"), None),
            // Absurd ids and blobs.
            e("long_anon", "2026-11-02T09:00:00Z", Some(&long_id), None),
            e(&long_id, "2026-11-02T09:00:00Z", Some("a"), None),
            e(
                "long_user",
                "2026-11-02T09:00:00Z",
                Some("a"),
                Some(&long_id),
            ),
            e("long_blob", "2026-11-02T09:00:00Z", Some("a"), None).props(&long_blob),
        ],
    );
    let mut t_no_ts = touch("a", "2026-11-02T08:00:00Z");
    t_no_ts.ts = None;
    let mut t_no_anon = touch("a", "2026-11-02T08:00:00Z");
    t_no_anon.anon_id = Some("guest".into());
    lake.touches(
        "2026-11-02",
        &[
            touch("a", "2026-11-02T08:00:00Z").gclid("G1"),
            t_no_ts,
            t_no_anon,
            touch("a", "1999-01-01T00:00:00Z").gclid("G_old"),
            touch("a", "2030-01-01T00:00:00Z").gclid("G_future"),
            touch(&long_id, "2026-11-02T08:00:00Z").gclid("G_long"),
            touch("a", "2026-11-02T08:30:00Z").landing(&format!(
                "https://www.example.com/?q={}",
                "q".repeat(70_000)
            )),
        ],
    );
    let users = df!(
        "user_id" => [Some("u1"), Some("u1"), None, Some("nil"), Some(long_id.as_str())],
        "email" => [Some("u1@example.com"), None, None, None, None]
    )
    .unwrap();
    lake.frame("raw/users/part-0.parquet", &users);
    let orgs = df!("org_id" => [Some("org1"), None, Some(long_id.as_str()), Some("org1")]).unwrap();
    lake.frame("raw/orgs/part-0.parquet", &orgs);
    let members = df!(
        "user_id" => [Some("u1"), Some("u1"), Some("0"), Some(long_id.as_str())],
        "org_id" => [Some("org1"), Some("org1"), Some("org1"), Some("org1")]
    )
    .unwrap();
    lake.frame("raw/memberships/part-0.parquet", &members);
    lake
}

fn q_count(q: &DataFrame, source: &str, reason: &str) -> usize {
    q.clone()
        .lazy()
        .filter(
            col("source")
                .eq(lit(source))
                .and(col("reason").eq(lit(reason))),
        )
        .collect()
        .unwrap()
        .height()
}

#[test]
fn bad_input_every_row_is_used_deduplicated_or_quarantined_and_the_manifest_reconciles() {
    let lake = mixed_lake();
    let run = lake.run(BAD);
    let m = run.manifest();
    let q = run.table("quarantine");

    // Per source: read = used + deduplicated + quarantined; the quarantine table holds exactly
    // the quarantined rows, by reason.
    let mut total_quarantined = 0;
    for (source, s) in m["inputs"].as_object().unwrap() {
        let n = |k: &str| s[k].as_u64().unwrap();
        assert_eq!(
            n("rows_read"),
            n("rows_used") + n("rows_deduplicated") + n("rows_quarantined"),
            "{source}: {s}"
        );
        let files: u64 = s["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rows"].as_u64().unwrap())
            .sum();
        assert_eq!(files, n("rows_read"), "{source}");
        let mut by_reason = 0;
        for (reason, c) in s["quarantined_by_reason"].as_object().unwrap() {
            assert_eq!(
                q_count(&q, source, reason) as u64,
                c.as_u64().unwrap(),
                "{source} {reason}"
            );
            by_reason += c.as_u64().unwrap();
        }
        assert_eq!(by_reason, n("rows_quarantined"), "{source}");
        total_quarantined += n("rows_quarantined");
    }
    assert_eq!(q.height() as u64, total_quarantined);

    // Every reason shows up where it should.
    let expect = [
        ("events", "missing_event_id", 2),
        ("events", "missing_event", 1),
        ("events", "missing_ts", 1),
        ("events", "no_identity", 3),
        ("events", "ts_out_of_range", 3),
        ("events", "id_too_long", 3),
        ("touches", "missing_ts", 1),
        ("touches", "no_identity", 1),
        ("touches", "ts_out_of_range", 2),
        ("touches", "id_too_long", 1),
        ("users", "no_identity", 2),
        ("users", "id_too_long", 1),
        ("orgs", "no_identity", 1),
        ("orgs", "id_too_long", 1),
        ("memberships", "no_identity", 1),
        ("memberships", "id_too_long", 1),
    ];
    for (source, reason, n) in expect {
        assert_eq!(q_count(&q, source, reason), n, "{source} {reason}");
    }
    let ev = &m["inputs"]["events"];
    assert_eq!(ev["rows_read"], 21);
    assert_eq!(ev["rows_deduplicated"], 2);
    assert_eq!(ev["conflicting_duplicates"], 1);
    assert_eq!(ev["values_too_long"], 1);
    assert_eq!(m["inputs"]["touches"]["values_too_long"], 1);
    assert_eq!(m["inputs"]["users"]["rows_deduplicated"], 1);
    assert_eq!(m["inputs"]["orgs"]["rows_deduplicated"], 1);
    assert_eq!(m["inputs"]["memberships"]["rows_deduplicated"], 1);
    // Junk ids: events " NULL ", "\"undefined\"", "  ", "[object Object]"; touches "guest";
    // users "nil"; memberships "0"; none among the orgs (a null is not junk).
    assert_eq!(ev["junk_ids"], 4);
    assert_eq!(m["inputs"]["touches"]["junk_ids"], 1);
    assert_eq!(m["inputs"]["users"]["junk_ids"], 1);
    assert_eq!(m["inputs"]["memberships"]["junk_ids"], 1);
    assert_eq!(m["inputs"]["orgs"]["junk_ids"], 0);

    // The quarantine never repeats a 1,025-character id as a row key.
    assert!(strings(&q, "row_key")
        .iter()
        .all(|k| k.as_ref().is_some_and(|k| k.len() <= 1024)));
    // Kept rows: the day-after event, the blob event (without its blob), the long landing URL
    // touch (without its URL), the copy of the earliest delivery.
    let j = run.table("journeys");
    for id in [
        "tomorrow_ok",
        "long_blob",
        "junk_anon_real_user",
        "dup",
        "dup_conflict",
        "ok1",
    ] {
        assert_eq!(run.rows("journeys", "event_id", id).height(), 1, "{id}");
    }
    assert_eq!(j.height() as u64, ev["rows_used"].as_u64().unwrap());
    let kept = run.rows("journeys", "event_id", "dup_conflict");
    assert_eq!(micros(&kept, "ts"), vec![Some(us("2026-11-01T09:02:00Z"))]);
}

#[test]
fn bad_input_ts_bounds_follow_the_job_file() {
    let mut lake = TestLake::new();
    lake.events(
        BAD,
        &[
            ev(
                "y1999",
                "page_viewed",
                "1999-06-01T00:00:00Z",
                Some("a"),
                None,
            ),
            ev("d5", "page_viewed", "2026-11-05T12:00:00Z", Some("a"), None),
        ],
    );
    let default = lake.run(BAD);
    assert_eq!(default.table("journeys").height(), 0);
    let job = JobFile::parse(
        "[read]\nearliest_date = \"1990-01-01\"\nmax_days_after_run_date = 3\n",
        "job.toml",
    )
    .unwrap();
    let cfg: JobConfig = job.into_config(
        "job.toml",
        Some(date(BAD)),
        Some(lake.input().display().to_string()),
        Some(lake.output().display().to_string()),
    );
    let run = lake.run_with(cfg);
    assert_eq!(run.table("journeys").height(), 2);
}

#[test]
fn bad_input_timestamps_too_large_for_microseconds_are_out_of_range_not_wrapped() {
    let mut lake = TestLake::new();
    // Milliseconds near i64::MAX: in microseconds they overflow.
    let ts = Series::new(
        "ts".into(),
        [
            i64::MAX / 10,
            i64::MIN / 10,
            us("2026-11-02T09:00:00Z") / 1000,
        ],
    )
    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
    .unwrap();
    let df = DataFrame::new(
        3,
        vec![
            Column::new("event_id".into(), ["huge", "tiny", "ok"]),
            Column::new("event".into(), ["page_viewed"; 3]),
            ts.into(),
            Column::new("anon_id".into(), ["a"; 3]),
        ],
    )
    .unwrap();
    lake.frame(&format!("raw/events/dt={BAD}/part-0.parquet"), &df);
    let run = lake.run(BAD);
    assert_eq!(
        strings(&run.table("journeys"), "event_id"),
        vec![Some("ok".into())]
    );
    let q = run.table("quarantine");
    assert_eq!(q_count(&q, "events", "ts_out_of_range"), 2);
}

// ---- the job file ---------------------------------------------------------------------------

#[test]
fn bad_job_file_names_the_key_and_the_file() {
    for (text, needles) in [
        ("[identity]\nmax_cookies = 3\n", vec!["max_cookies"]),
        ("[identiy]\n", vec!["identiy"]),
        (
            "[attribution]\nlookback_days = \"ten\"\n",
            vec!["lookback_days"],
        ),
        ("[events]\nconversions = [\n", vec!["line 2"]),
        (
            "[read]\nearliest_date = \"2000-13-01\"\n",
            vec!["read.earliest_date", "2000-13-01"],
        ),
        (
            "[read]\nmax_days_after_run_date = -1\n",
            vec!["max_days_after_run_date"],
        ),
    ] {
        let err = JobFile::parse(text, "jobs/broken.toml").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Config { .. }), "{text}: {msg}");
        assert_eq!(err.exit_code(), ExitCode::BadInput);
        assert!(msg.contains("jobs/broken.toml"), "{text}: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{text}: `{n}` not in {msg}");
        }
    }
}

#[test]
fn the_shipped_job_file_is_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/nightly.toml");
    let job = JobFile::load(path.to_str().unwrap()).unwrap();
    let d = JobFile::default();
    assert_eq!(job.read, d.read);
    assert_eq!(job.attribution, d.attribution);
    assert_eq!(job.storage, d.storage);
    assert_eq!(
        job.identity.max_cookies_per_user,
        d.identity.max_cookies_per_user
    );
}

// ---- security and privacy -------------------------------------------------------------------

fn lakestitch() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_lakestitch"))
}

/// Run the binary on `lake` for `date`, with plain log lines at `level`.
fn run_binary(lake: &TestLake, date: &str, env: &[(&str, &str)]) -> std::process::Output {
    let job = lake.dir.path().join("job.toml");
    if !job.exists() {
        std::fs::write(&job, "").unwrap();
    }
    lakestitch()
        .args(["run", "--no-progress", "--date", date, "--job"])
        .arg(&job)
        .arg("--input")
        .arg(lake.input())
        .arg("--output")
        .arg(lake.output())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Raw personal data planted in the lake below.
const SECRETS: [&str; 13] = [
    "ava.secret@example.com",
    "Ava.Secret@Example.com",
    "+1 (415) 555-0123",
    "4155550123",
    "bo.receipt@example.org",
    "07700 900461",
    // an email used as user id, a cookie id that is an email
    "cy.id@example.net",
    "dee.cookie@example.net",
    // in touches: a column named `email`, an unknown column whose values are emails, a utm
    // value, URL query parameters, URL credentials
    "fay.column@example.com",
    "gus.value@example.org",
    "hal.utm@example.com",
    "ivy.param@example.com",
    "s3cr3t-pw",
];

/// The digits of phone numbers planted in the lake, however they are punctuated.
const PHONE_DIGITS: [&str; 3] = ["4155550123", "7700900461", "2079460958"];

/// A user id that is an email, of a user who is a member of `org_x`, whose cookie id is an email.
const CY: &str = "cy.id@example.net";
const DEE_COOKIE: &str = "dee.cookie@example.net";
/// A user id that is a phone number.
const PHONE_USER: &str = "+44 7700 900461";

fn pii_lake() -> TestLake {
    let mut lake = TestLake::new();
    lake.touches(
        BAD,
        &[
            // A phone number without `+` is caught by the column's name only.
            touch("c_ava", "2026-11-02T08:00:00Z")
                .gclid("G_ava")
                .extra("phone", "020 7946 0958"),
            touch(DEE_COOKIE, "2026-11-02T08:10:00Z")
                .gclid("G_cy")
                .landing("https://www.example.com/welcome?email=ivy.param%40example.com&utm_source=news#tel=020%207946%200958")
                .extra("email", "fay.column@example.com"),
            touch("c_gus", "2026-11-02T08:20:00Z")
                .referrer("https://ivy:s3cr3t-pw@partner.example.org/?Phone=%2B44%2020%207946%200958")
                .extra("partner_contact", "gus.value@example.org"),
            touch("c_hal", "2026-11-02T08:30:00Z").utm("newsletter", "email", "promo hal.utm@example.com +1 415 555 0123"),
        ],
    );
    let mut cy_purchase = ev(
        "b3",
        "purchase_completed",
        "2026-11-02T12:00:00Z",
        None,
        Some(format!(" {CY}").as_str()),
    )
    .purchase(30.0, None)
    .org("org_x")
    .version(2)
    .props(r#"{"url":"https://shop.example.com/thanks?email=cy.id%40example.net&mail=cy.id@example.net"}"#);
    cy_purchase.user_agent = Some("Mozilla/5.0 (test)".into());
    lake.events(
        BAD,
        &[
            ev(
                "s1",
                "signup_completed",
                "2026-11-02T09:00:00Z",
                Some("c_ava"),
                Some("ava"),
            ),
            ev(
                "b1",
                "purchase_completed",
                "2026-11-02T10:00:00Z",
                Some("c_ava"),
                None,
            )
            .purchase(20.0, Some("Ava.Secret@Example.com")),
            ev(
                "b2",
                "purchase_completed",
                "2026-11-02T11:00:00Z",
                None,
                Some("bo"),
            )
            .purchase(5.0, Some("bo.receipt@example.org")),
            ev(
                "s2",
                "signup_completed",
                "2026-11-02T09:30:00Z",
                Some(DEE_COOKIE),
                Some(CY),
            ),
            cy_purchase,
            ev(
                "p1",
                "signed_in",
                "2026-11-02T09:40:00Z",
                Some("c_phone"),
                Some(PHONE_USER),
            ),
        ],
    );
    let users = df!(
        "user_id" => ["ava", "bo", CY],
        "email" => ["ava.secret@example.com", "bo.receipt@example.org", "cy.mail@example.net"],
        "phone" => ["+1 (415) 555-0123", "07700 900461", "+44 20 7946 0958"],
        "country" => ["US", "GB", "GB"]
    )
    .unwrap();
    lake.frame("raw/users/part-0.parquet", &users);
    lake.orgs(&["org_x"]);
    lake.memberships(&[(CY, "org_x")]);
    lake
}

fn assert_no_secret(what: &str, text: &str) {
    // Percent-encoded too (`%40` for `@`, `%2B` for `+`, `%20` for a space).
    let lower = text
        .to_lowercase()
        .replace("%40", "@")
        .replace("%2b", "+")
        .replace("%20", " ");
    for s in SECRETS {
        assert!(!lower.contains(&s.to_lowercase()), "{what} holds `{s}`");
    }
    // Digits of the phone numbers, however they are punctuated.
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    for d in PHONE_DIGITS {
        assert!(!digits.contains(d), "{what} holds the digits {d}");
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn privacy_no_raw_email_or_phone_in_tables_manifest_or_log() {
    let lake = pii_lake();
    let out = run_binary(&lake, BAD, &[("LAKESTITCH_LOG", "debug")]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_secret("the log", &stderr);
    assert_no_secret("stdout", &String::from_utf8_lossy(&out.stdout));

    let run_dir = lake.output().join(format!("runs/{BAD}"));
    let files = files_under(&run_dir);
    let mut scanned = 0;
    for f in &files {
        let name = f.display().to_string();
        if name.ends_with(".parquet") {
            let df = ParquetReader::new(std::fs::File::open(f).unwrap())
                .finish()
                .unwrap();
            for c in df.columns() {
                let s = c.as_materialized_series().cast(&DataType::String).unwrap();
                for v in s.str().unwrap().iter().flatten() {
                    assert_no_secret(&format!("{name}: {}", c.name()), v);
                }
            }
            scanned += 1;
        } else {
            assert_no_secret(&name, &String::from_utf8_lossy(&std::fs::read(f).unwrap()));
        }
    }
    assert!(scanned >= 8, "{files:?}");
    assert!(run_dir.join("manifest.json").exists());
    // The emails did reach the run: the purchases are there, with their users.
    let run_journeys = files
        .iter()
        .filter(|f| f.display().to_string().contains("journeys"))
        .count();
    assert!(run_journeys > 0);

    // An error about a column that holds personal data names the column, never a value.
    let users = df!("user_id" => ["ava"], "phone" => [4155550123i64]).unwrap();
    let mut lake = lake;
    lake.frame("raw/users/part-0.parquet", &users);
    let out = run_binary(&lake, BAD, &[("LAKESTITCH_LOG", "debug")]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`phone`"), "{stderr}");
    assert_no_secret("the error", &stderr);
}

#[test]
fn privacy_ids_that_are_emails_or_phones_are_pseudonymized_and_stitch_as_before() {
    use lakestitch::export::normalize::sha256_hex;
    use lakestitch::read::privacy::pseudonym;
    let lake = pii_lake();
    let run = lake.run(BAD);
    let cy = pseudonym(CY);
    let dee = pseudonym(DEE_COOKIE);
    assert_eq!(cy, format!("sha256:{}", sha256_hex(CY)));

    // The email cookie is linked to the email user: one person, whose id is the pseudonym.
    assert_eq!(
        run.str_of("identity_map", "anon_id", &dee, "user_id"),
        Some(cy.clone())
    );
    assert_eq!(
        run.str_of("identity_map", "anon_id", &dee, "person_id"),
        Some(cy.clone())
    );
    // The purchase's user id was written with a space: same pseudonym, same person.
    assert_eq!(run.journey_of("b3"), (cy.clone(), Some(cy.clone())));
    assert_eq!(
        run.str_of("journeys", "event_id", "b3", "raw_user_id"),
        Some(cy.clone())
    );
    // The touch of the email cookie is the email user's first touch.
    let ft = run
        .str_of("user_attribution", "user_id", &cy, "first_touch")
        .expect("a first touch");
    assert!(ft.contains("G_cy") && ft.contains(&dee), "{ft}");
    // A phone number used as user id is pseudonymized too.
    assert_eq!(
        run.journey_of("p1").1,
        Some(pseudonym(PHONE_USER)),
        "phone user id"
    );
    // The membership of the email user is found (its user_id was pseudonymized the same way),
    // so the purchase keeps its org.
    assert_eq!(
        run.str_of("journeys", "event_id", "b3", "org_id")
            .as_deref(),
        Some("org_x")
    );

    let m = run.manifest();
    let inputs = &m["inputs"];
    assert_eq!(inputs["events"]["org_not_member"], 0);
    assert_eq!(inputs["events"]["ids_pseudonymized"], 4, "{inputs}");
    assert_eq!(inputs["touches"]["ids_pseudonymized"], 1);
    assert_eq!(inputs["users"]["ids_pseudonymized"], 1);
    assert_eq!(inputs["memberships"]["ids_pseudonymized"], 1);
    assert_eq!(inputs["orgs"]["ids_pseudonymized"], 0);

    // The Meta event of the email user: external_id is still the SHA-256 of the id as read,
    // the users snapshot joined on the pseudonym gives the email match key, and the page URL
    // from `properties` is redacted.
    let body = run
        .out
        .get(&format!("runs/{BAD}/exports/meta/batch-00001.json"))
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let event = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == "b3")
        .expect("the purchase of the email user is exported");
    assert_eq!(event["user_data"]["external_id"][0], sha256_hex(CY));
    assert_eq!(
        event["user_data"]["em"][0],
        sha256_hex("cy.mail@example.net")
    );
    assert_eq!(
        event["event_source_url"],
        "https://shop.example.com/thanks?email=[redacted]&mail=[redacted]"
    );
}

#[test]
fn privacy_touch_columns_named_like_pii_are_ignored_and_values_redacted() {
    use lakestitch::read::privacy::pseudonym;
    let lake = pii_lake();
    let run = lake.run(BAD);
    let m = run.manifest();
    let t = &m["inputs"]["touches"];
    assert_eq!(
        t["pii_columns_ignored"],
        serde_json::json!(["email", "phone"]),
        "{t}"
    );
    // landing_url of the email cookie, referrer and partner_contact of c_gus, utm_campaign of
    // c_hal.
    assert_eq!(t["values_redacted"], 4, "{t}");

    let persons = run.table("persons");
    let touch_of = |person: &str| {
        let df = persons
            .clone()
            .lazy()
            .filter(col("person_id").eq(lit(person)))
            .collect()
            .unwrap();
        strings(&df, "first_touch")[0]
            .clone()
            .expect("a first touch")
    };
    // The column named `email` is not an attribution key: it is not in the touch.
    let cy = touch_of(&pseudonym(CY));
    let json: serde_json::Value = serde_json::from_str(&cy).unwrap();
    assert!(json.get("email").is_none(), "{cy}");
    assert_eq!(
        json["landing_url"],
        "https://www.example.com/welcome?email=[redacted]&utm_source=news#tel=[redacted]"
    );
    // An unknown column is still an attribution key, its email value redacted; the URL keeps its
    // host (the referrer still counts as another site).
    let gus: serde_json::Value = serde_json::from_str(&touch_of("c_gus")).unwrap();
    assert_eq!(gus["partner_contact"], "[redacted]");
    assert_eq!(
        gus["referrer"],
        "https://[redacted]@partner.example.org/?Phone=[redacted]"
    );
    let hal: serde_json::Value = serde_json::from_str(&touch_of("c_hal")).unwrap();
    assert_eq!(hal["utm_campaign"], "promo [redacted] [redacted]");
    let channel = run.str_of("user_attribution", "user_id", "ava", "first_touch_channel");
    assert_eq!(channel.as_deref(), Some("Paid Search"));
}

/// path → (modified time, bytes) of every file under `dir`.
fn snapshot_files(dir: &Path) -> Vec<(String, std::time::SystemTime, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).unwrap();
            (
                p.display().to_string(),
                meta.modified().unwrap(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn privacy_inputs_are_read_only() {
    let mut lake = mixed_lake();
    lake.frame(
        "raw/users/part-1.parquet",
        &df!("user_id" => ["ava"], "email" => ["ava.secret@example.com"]).unwrap(),
    );
    let before = snapshot_files(&lake.input());
    let dirs_before: Vec<_> = walk_dirs(&lake.input());
    assert!(before.len() >= 6);
    let out = run_binary(&lake, BAD, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A refused run leaves the input alone too.
    put_bytes(
        &lake,
        &format!("raw/events/dt={BAD}/zz-garbage.parquet"),
        b"garbage",
    );
    let before_bad = snapshot_files(&lake.input());
    let out = run_binary(&lake, BAD, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(snapshot_files(&lake.input()), before_bad);
    std::fs::remove_file(
        lake.input()
            .join(format!("raw/events/dt={BAD}/zz-garbage.parquet")),
    )
    .unwrap();
    assert_eq!(snapshot_files(&lake.input()), before);
    assert_eq!(walk_dirs(&lake.input()), dirs_before);
}

fn walk_dirs(dir: &Path) -> Vec<String> {
    let mut out = vec![dir.display().to_string()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_dirs(&p));
        }
    }
    out.sort();
    out
}

// ---- determinism ----------------------------------------------------------------------------

/// Every published table of a run, each sorted by all of its columns (contents, not order).
fn contents(out: &Path, run_date: &str) -> Vec<(String, DataFrame)> {
    let lake =
        lakestitch::storage::Lake::open(out.to_str().unwrap(), lakestitch::storage::Access::Read)
            .unwrap();
    lake_contents(&lake, run_date)
}

/// [`contents`] of a run at any location.
fn lake_contents(lake: &lakestitch::storage::Lake, run_date: &str) -> Vec<(String, DataFrame)> {
    let mut tables = Vec::new();
    for name in [
        "identity_map",
        "persons",
        "anon_visitors",
        "user_attribution",
        "journeys",
        "attribution",
        "attribution_summary",
        "quarantine",
    ] {
        let mut df = lakestitch::publish::read_table(lake, date(run_date), name)
            .unwrap()
            .unwrap();
        if name == "quarantine" {
            // `file` and a `row N` key name a place in the input, which a split moves.
            df = df
                .drop("file")
                .unwrap()
                .lazy()
                .with_column(
                    when(col("row_key").str().starts_with(lit("row ")))
                        .then(lit("row"))
                        .otherwise(col("row_key"))
                        .alias("row_key"),
                )
                .collect()
                .unwrap();
        }
        let by: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let df = df
            .sort(by, SortMultipleOptions::default().with_nulls_last(true))
            .unwrap();
        tables.push((name.to_string(), df));
    }
    tables
}

fn assert_same_contents(a: &[(String, DataFrame)], b: &[(String, DataFrame)], what: &str) {
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(
            x.height() > 0 || name == "quarantine",
            "{what}: {name} is empty"
        );
        assert_eq!(x.schema(), y.schema(), "{what}: {name}");
        assert!(x.equals_missing(y), "{what}: {name} differs\n{x}\n{y}");
    }
}

/// A seeded 64-bit mix (splitmix64).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e9b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Rewrite every partitioned file of `src` into `dst` shuffled and split over 3 files with other
/// names. Copies of one event stay in one file in their order (the contract's tie-break for
/// repeated deliveries is file path, then row); everything else moves.
fn reshuffle(src: &Path, dst: &Path, seed: u64) {
    for f in files_under(src) {
        let rel = f.strip_prefix(src).unwrap().to_path_buf();
        let rel_s = rel.display().to_string();
        if !rel_s.contains("dt=") {
            let target = dst.join(&rel);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&f, target).unwrap();
            continue;
        }
        let df = ParquetReader::new(std::fs::File::open(&f).unwrap())
            .finish()
            .unwrap();
        let keys: Vec<u64> = match df.column("event_id") {
            Ok(ids) => ids
                .str()
                .unwrap()
                .iter()
                .map(|id| {
                    let mut h = seed;
                    for b in id.unwrap_or("").bytes() {
                        h = mix(h ^ u64::from(b));
                    }
                    h
                })
                .collect(),
            Err(_) => (0..df.height() as u64).map(|i| mix(seed ^ i)).collect(),
        };
        let mut df = df
            .hstack(&[Column::new("_k".into(), keys)])
            .unwrap()
            .sort(
                ["_k"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .unwrap();
        let part = df
            .column("_k")
            .unwrap()
            .u64()
            .unwrap()
            .apply_values(|k| (k >> 7) % 3)
            .into_series();
        df.with_column(part.with_name("_part".into()).into_column())
            .unwrap();
        for (i, name) in ["zz-late", "aa-early", "mm-middle"].iter().enumerate() {
            let piece = df
                .clone()
                .lazy()
                .filter(col("_part").eq(lit(i as u64)))
                .drop(cols(["_k", "_part"]))
                .collect()
                .unwrap();
            let target = dst
                .join(rel.parent().unwrap())
                .join(format!("{name}-{seed}.parquet"));
            write_parquet(&target, &piece);
        }
    }
}

#[test]
fn determinism_file_order_and_splits_do_not_change_the_tables() {
    let lake = generated_lake(120);
    lake.run(GEN_DATE);
    let reference = contents(&lake.output(), GEN_DATE);
    let other = TestLake::new();
    reshuffle(&lake.input(), &other.input(), 5);
    assert!(files_under(&other.input()).len() > files_under(&lake.input()).len() * 2);
    other.run(GEN_DATE);
    assert_same_contents(
        &reference,
        &contents(&other.output(), GEN_DATE),
        "reshuffled",
    );
}

#[test]
fn determinism_thread_count_does_not_change_the_tables() {
    let lake = generated_lake(120);
    let out1 = lake.dir.path().join("out1");
    let out2 = lake.dir.path().join("out2");
    std::fs::write(lake.dir.path().join("job.toml"), "").unwrap();
    for (out, threads) in [(&out1, "1"), (&out2, "2")] {
        let o = lakestitch()
            .args(["run", "--no-progress", "--date", GEN_DATE, "--job"])
            .arg(lake.dir.path().join("job.toml"))
            .arg("--input")
            .arg(lake.input())
            .arg("--output")
            .arg(out)
            .env("POLARS_MAX_THREADS", threads)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_same_contents(
        &contents(&out1, GEN_DATE),
        &contents(&out2, GEN_DATE),
        "1 vs 2 threads",
    );
    // The Parquet files are byte-for-byte the same too.
    let bytes = |out: &Path| -> Vec<(String, Vec<u8>)> {
        files_under(&out.join("runs"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .map(|p| {
                (
                    p.strip_prefix(out).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let (b1, b2) = (bytes(&out1), bytes(&out2));
    assert_eq!(
        b1.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b2.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((path, x), (_, y)) in b1.iter().zip(&b2) {
        assert!(x == y, "{path} differs in bytes between 1 and 2 threads");
    }
}

// ---- crash safety ---------------------------------------------------------------------------

fn run_into(lake: &TestLake, out: &Path) -> std::process::Child {
    let job = lake.dir.path().join("job.toml");
    std::fs::write(&job, "").unwrap();
    lakestitch()
        .args(["run", "--no-progress", "--date", GEN_DATE, "--job"])
        .arg(&job)
        .arg("--input")
        .arg(lake.input())
        .arg("--output")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Parquet files of a run folder: relative path → bytes.
fn run_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(&out.join(format!("runs/{GEN_DATE}")))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| {
            (
                p.strip_prefix(out).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// SIGKILL the binary at seeded random moments of a run: no kill ever leaves a `_SUCCESS` or
/// moves `latest`; a rerun then publishes the same tables as a run that was never killed.
#[test]
fn crash_sigkill_at_random_moments_never_publishes_and_a_rerun_recovers() {
    let lake = generated_lake(600);
    let reference = lake.dir.path().join("reference");
    let started = std::time::Instant::now();
    let status = run_into(&lake, &reference).wait().unwrap();
    let first = started.elapsed();
    assert!(status.success());
    assert!(reference.join(format!("runs/{GEN_DATE}/_SUCCESS")).exists());
    // The kills are aimed at fractions of a run's length: the shorter of two runs, so that a
    // first run slowed by a cold cache or a busy host does not aim them past the reruns' end.
    let again = lake.dir.path().join("reference-again");
    let started = std::time::Instant::now();
    assert!(run_into(&lake, &again).wait().unwrap().success());
    let full = first.min(started.elapsed());
    std::fs::remove_dir_all(&again).unwrap();

    let out = lake.output();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("latest"), "2026-11-20\n").unwrap();
    let success = out.join(format!("runs/{GEN_DATE}/_SUCCESS"));
    let mut seed = 0x5eed_u64;
    let (mut killed, mut mid_publish) = (0, 0);
    for i in 0..8 {
        seed = mix(seed);
        let unit = (seed >> 11) as f64 / (1u64 << 53) as f64;
        // Half of the kills anywhere, half late in the run, where it publishes. Reruns are a
        // little faster than the first run, so no kill is aimed at its very end.
        let at = if i % 2 == 0 {
            0.85 * unit
        } else {
            0.55 + 0.3 * unit
        };
        let mut child = run_into(&lake, &out);
        std::thread::sleep(full.mul_f64(at));
        child.kill().ok();
        // A killed run never exits with success; one that did outran the kill (on a fast
        // machine, or between the sleep's end and the signal).
        let outran = child.wait().unwrap().success();
        if !outran {
            killed += 1;
            if out.join(format!("runs/{GEN_DATE}")).exists() {
                mid_publish += 1;
            }
        }
        let latest = std::fs::read_to_string(out.join("latest")).unwrap();
        if success.exists() {
            // Published whole, or killed after the marker: the run is whole all the same.
            assert_eq!(
                run_files(&out),
                run_files(&reference),
                "kill {i} at {at:.2}"
            );
            // Start the next attempt from the same state as the others: the date unpublished,
            // `latest` on the day before. (A rerun of the date `latest` names removes the
            // marker first, and `latest` would name a folder being rewritten.)
            std::fs::remove_dir_all(out.join("runs")).unwrap();
            std::fs::write(out.join("latest"), "2026-11-20\n").unwrap();
        } else {
            assert_eq!(
                latest.trim(),
                "2026-11-20",
                "kill {i} at {at:.2} moved latest"
            );
        }
    }
    assert!(killed >= 4, "only {killed} of 8 runs were killed mid-way");
    eprintln!("{killed} kills, {mid_publish} while publishing (a full run: {full:?})");

    let status = run_into(&lake, &out).wait().unwrap();
    assert!(status.success());
    assert!(success.exists());
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).unwrap().trim(),
        GEN_DATE
    );
    assert_same_contents(
        &contents(&reference, GEN_DATE),
        &contents(&out, GEN_DATE),
        "rerun after kills",
    );
    // Nothing a killed attempt left behind survives the rerun.
    let names = |o: &Path| -> Vec<String> {
        files_under(&o.join(format!("runs/{GEN_DATE}")))
            .iter()
            .map(|p| p.strip_prefix(o).unwrap().display().to_string())
            .collect()
    };
    assert_eq!(names(&out), names(&reference));
    assert_eq!(run_files(&out), run_files(&reference));
}

// ---- a real object store (S3 on loopback) ---------------------------------------------------

/// The S3-compatible endpoint `.ci/run` starts (moto), or `None` (the test is skipped) when
/// `LAKESTITCH_TEST_S3` is unset.
fn s3_endpoint(test: &str) -> Option<String> {
    if std::env::var_os("LAKESTITCH_TEST_S3").is_none() {
        eprintln!("skipped {test}: set LAKESTITCH_TEST_S3=1 and AWS_ENDPOINT_URL (see .ci/run)");
        return None;
    }
    Some(std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL for LAKESTITCH_TEST_S3"))
}

/// Create a bucket with a plain HTTP request (moto does not check signatures).
fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// Upload a local lake folder to a location.
fn upload(dir: &Path, to: &str) {
    let lake = lakestitch::storage::Lake::open(to, lakestitch::storage::Access::Write).unwrap();
    for f in files_under(dir) {
        let rel = f.strip_prefix(dir).unwrap().display().to_string();
        lake.put(&rel, bytes::Bytes::from(std::fs::read(&f).unwrap()))
            .unwrap();
    }
}

fn run_locations(job_dir: &Path, input: &str, output: &str, day: &str) -> std::process::Output {
    let job = job_dir.join("job.toml");
    std::fs::write(&job, "").unwrap();
    lakestitch()
        .args(["run", "--no-progress", "--date", day, "--job"])
        .arg(&job)
        .args(["--input", input, "--output", output])
        .output()
        .unwrap()
}

#[test]
fn s3_end_to_end_run_publishes_the_same_tables_as_a_local_run() {
    let Some(endpoint) = s3_endpoint("s3_end_to_end_run_publishes_the_same_tables_as_a_local_run")
    else {
        return;
    };
    let bucket = format!("lakestitch-e2e-{}", std::process::id());
    create_bucket(&endpoint, &bucket);
    let lake = mixed_lake();
    lake.run(BAD);
    upload(&lake.input(), &format!("s3://{bucket}/lake"));
    let output = format!("s3://{bucket}/out");
    let out = run_locations(
        lake.dir.path(),
        &format!("s3://{bucket}/lake"),
        &output,
        BAD,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let remote =
        lakestitch::storage::Lake::open(&output, lakestitch::storage::Access::Read).unwrap();
    assert!(remote
        .get_opt(&format!("runs/{BAD}/_SUCCESS"))
        .unwrap()
        .is_some());
    assert_eq!(
        remote.get("latest").unwrap().as_ref(),
        format!("{BAD}\n").as_bytes()
    );
    // The tables equal those of the local run of the same lake.
    let local = lakestitch::storage::Lake::open(
        lake.output().to_str().unwrap(),
        lakestitch::storage::Access::Read,
    )
    .unwrap();
    for name in [
        "identity_map",
        "persons",
        "journeys",
        "quarantine",
        "attribution",
    ] {
        let a = lakestitch::publish::read_table(&local, date(BAD), name)
            .unwrap()
            .unwrap();
        let b = lakestitch::publish::read_table(&remote, date(BAD), name)
            .unwrap()
            .unwrap();
        let show = |df: &DataFrame| -> Vec<Vec<String>> {
            df.columns()
                .iter()
                .map(|c| {
                    let s = c.as_materialized_series().cast(&DataType::String).unwrap();
                    s.str().unwrap().iter().map(|v| format!("{v:?}")).collect()
                })
                .collect()
        };
        assert!(
            a.equals_missing(&b),
            "{name}\n{:?}\n{:?}",
            show(&a),
            show(&b)
        );
    }

    // A permanent storage error (a bucket that does not exist) ends the run with exit code 1
    // and a clear message, and publishes nothing.
    let out = run_locations(
        lake.dir.path(),
        "s3://lakestitch-no-such-bucket/lake",
        &output,
        "2026-11-03",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("storage") && stderr.contains("lakestitch-no-such-bucket"),
        "{stderr}"
    );
    assert!(remote
        .get_opt("runs/2026-11-03/_SUCCESS")
        .unwrap()
        .is_none());
    assert_eq!(
        remote.get("latest").unwrap().as_ref(),
        format!("{BAD}\n").as_bytes()
    );
    let out = run_locations(
        lake.dir.path(),
        &format!("s3://{bucket}/lake"),
        "s3://lakestitch-no-such-bucket/out",
        "2026-11-03",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lakestitch-no-such-bucket"), "{stderr}");
}

// ---- storage errors: retried when transient, fatal when permanent ---------------------------

use crate::fault_proxy::{Fault, FaultProxy, Plan};

/// Under [`Plan::FirstAttempts`]: every request failed once and was then forwarded, so each is
/// sent twice as often as it failed. The raw event and touch files are read again for the
/// columns the run does not hold (`journeys`' pass-through columns, the link events' ids, the
/// touch columns only the touch JSON and the exports show): such a read repeats a request
/// already answered, so it is forwarded at once, and only those may come more than twice.
fn each_request_failed_once_then_went_through(requests: &[String], faults: &[(Fault, String)]) {
    let mut keys: Vec<&String> = requests.iter().collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let sent = requests.iter().filter(|r| *r == key).count();
        let failed = faults.iter().filter(|(_, r)| r == key).count();
        assert!(failed >= 1, "{key} never failed");
        if key.starts_with("GET") && (key.contains("/raw/events/") || key.contains("/raw/touches/"))
        {
            assert!(
                sent >= 2 * failed,
                "{key}: {sent} requests, {failed} faults"
            );
        } else {
            assert_eq!(sent, 2 * failed, "{key}: {sent} requests, {failed} faults");
        }
    }
}

/// Short retries, so the fault tests take seconds: 2 retries, 5–50 ms apart.
const FAST_RETRIES: &str =
    "[storage]\nmax_retries = 2\nretry_timeout_secs = 30\ninitial_backoff_ms = 5\nmax_backoff_ms = 50\n";

/// Run the binary with `job` as its job file and `endpoint` as the S3 endpoint.
fn run_s3(
    dir: &Path,
    job: &str,
    endpoint: &str,
    input: &str,
    output: &str,
    day: &str,
) -> std::process::Output {
    let path = dir.join("s3-job.toml");
    std::fs::write(&path, job).unwrap();
    lakestitch()
        .args(["run", "--no-progress", "--date", day, "--job"])
        .arg(&path)
        .args(["--input", input, "--output", output])
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .unwrap()
}

fn s3_lake(location: &str) -> lakestitch::storage::Lake {
    lakestitch::storage::Lake::open(location, lakestitch::storage::Access::Read).unwrap()
}

/// A generated lake uploaded to a fresh bucket: (lake, bucket, input location).
fn s3_generated_lake(endpoint: &str, name: &str) -> (TestLake, String, String) {
    let bucket = format!("lakestitch-{name}-{}", std::process::id());
    create_bucket(endpoint, &bucket);
    let lake = generated_lake(30);
    let input = format!("s3://{bucket}/lake");
    upload(&lake.input(), &input);
    (lake, bucket, input)
}

#[test]
fn s3_transient_errors_are_retried_and_the_tables_are_unchanged() {
    let Some(endpoint) =
        s3_endpoint("s3_transient_errors_are_retried_and_the_tables_are_unchanged")
    else {
        return;
    };
    let (lake, bucket, input) = s3_generated_lake(&endpoint, "retry");
    let dir = lake.dir.path();

    // A run without faults.
    let clean = format!("s3://{bucket}/clean");
    let out = run_s3(dir, FAST_RETRIES, &endpoint, &input, &clean, GEN_DATE);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The first attempt of every request fails (503 Slow Down, 500, a dropped connection in
    // turn): listing, reading, writing, the create-only `_SUCCESS`, `latest`.
    let proxy = FaultProxy::start(&endpoint, Plan::FirstAttempts);
    let faulty = format!("s3://{bucket}/faulty");
    let started = std::time::Instant::now();
    let out = run_s3(
        dir,
        FAST_RETRIES,
        &proxy.endpoint(),
        &input,
        &faulty,
        GEN_DATE,
    );
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let counts = proxy.fault_counts();
    let requests = proxy.requests();
    eprintln!(
        "faulty run: {} requests, {} faults injected {counts:?}, {:.1}s",
        requests.len(),
        proxy.faults().len(),
        elapsed.as_secs_f64()
    );
    for kind in [Fault::SlowDown, Fault::Internal, Fault::Drop] {
        assert!(
            counts.get(&kind).copied().unwrap_or(0) > 0,
            "no {kind:?} injected: {counts:?}"
        );
    }
    each_request_failed_once_then_went_through(&requests, &proxy.faults());
    for method in ["GET", "PUT"] {
        assert!(
            proxy.faults().iter().any(|(_, r)| r.starts_with(method)),
            "no {method} failed"
        );
    }
    assert!(
        proxy
            .faults()
            .iter()
            .any(|(_, r)| r.contains("list-type=2")),
        "no listing failed"
    );
    assert!(
        proxy
            .faults()
            .iter()
            .any(|(_, r)| r.starts_with("PUT") && r.contains("/_SUCCESS")),
        "the marker was not failed"
    );

    let remote = s3_lake(&faulty);
    assert!(remote
        .get_opt(&format!("runs/{GEN_DATE}/_SUCCESS"))
        .unwrap()
        .is_some());
    assert_eq!(
        remote.get("latest").unwrap().as_ref(),
        format!("{GEN_DATE}\n").as_bytes()
    );
    assert_same_contents(
        &lake_contents(&s3_lake(&clean), GEN_DATE),
        &lake_contents(&remote, GEN_DATE),
        "run with transient storage errors",
    );

    // A rerun of the date under the same faults: it deletes the earlier files (each delete, a
    // `POST ?delete`, failing once), writes the same tables again and publishes.
    let proxy = FaultProxy::start(&endpoint, Plan::FirstAttempts);
    let out = run_s3(
        dir,
        FAST_RETRIES,
        &proxy.endpoint(),
        &input,
        &faulty,
        GEN_DATE,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deletes = |p: &FaultProxy| {
        p.faults()
            .iter()
            .filter(|(_, r)| r.starts_with("POST") && r.ends_with("?delete"))
            .count()
    };
    assert!(deletes(&proxy) > 10, "{:?}", proxy.faults());
    each_request_failed_once_then_went_through(&proxy.requests(), &proxy.faults());
    eprintln!(
        "faulty rerun: {} faults injected, {} on deletes",
        proxy.faults().len(),
        deletes(&proxy)
    );
    assert_same_contents(
        &lake_contents(&s3_lake(&clean), GEN_DATE),
        &lake_contents(&remote, GEN_DATE),
        "rerun with transient storage errors",
    );

    // Without retries the same faults end the run (so the retries are what made it succeed),
    // with exit code 1, and nothing is published.
    let proxy = FaultProxy::start(&endpoint, Plan::FirstAttempts);
    let no_retries = FAST_RETRIES.replace("max_retries = 2", "max_retries = 0");
    let out = run_s3(
        dir,
        &no_retries,
        &proxy.endpoint(),
        &input,
        &faulty,
        "2026-11-22",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("storage"), "{stderr}");
    assert_eq!(proxy.faults().len(), 1, "{:?}", proxy.requests());
    assert!(remote
        .get_opt("runs/2026-11-22/_SUCCESS")
        .unwrap()
        .is_none());
    assert_eq!(
        remote.get("latest").unwrap().as_ref(),
        format!("{GEN_DATE}\n").as_bytes()
    );
}

#[test]
fn s3_permanent_errors_end_the_run_naming_the_object_and_publish_nothing() {
    let Some(endpoint) =
        s3_endpoint("s3_permanent_errors_end_the_run_naming_the_object_and_publish_nothing")
    else {
        return;
    };
    let (lake, bucket, input) = s3_generated_lake(&endpoint, "permanent");
    let dir = lake.dir.path();
    // A published run the failing runs must leave alone.
    let output = format!("s3://{bucket}/out");
    let previous = "2026-11-20";
    let out = run_s3(dir, FAST_RETRIES, &endpoint, &input, &output, previous);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remote = s3_lake(&output);
    let assert_nothing_published = |stderr: &str| {
        assert!(
            remote
                .get_opt(&format!("runs/{GEN_DATE}/_SUCCESS"))
                .unwrap()
                .is_none(),
            "{stderr}"
        );
        assert_eq!(
            remote.get("latest").unwrap().as_ref(),
            format!("{previous}\n").as_bytes(),
            "{stderr}"
        );
        assert!(remote
            .get_opt(&format!("runs/{previous}/_SUCCESS"))
            .unwrap()
            .is_some());
    };

    // One output object answers 503 Slow Down to every attempt: it is tried 1 + max_retries
    // times, then the run ends.
    let object = format!("out/runs/{GEN_DATE}/persons/part-00000.parquet");
    let proxy = FaultProxy::start(
        &endpoint,
        Plan::Always {
            needle: object.clone(),
            fault: Fault::SlowDown,
        },
    );
    let started = std::time::Instant::now();
    let out = run_s3(
        dir,
        FAST_RETRIES,
        &proxy.endpoint(),
        &input,
        &output,
        GEN_DATE,
    );
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("503 on {object}: {:.1}s\n{stderr}", elapsed.as_secs_f64());
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("storage") && stderr.contains(&object),
        "{stderr}"
    );
    assert!(stderr.contains("503"), "{stderr}");
    assert_eq!(proxy.faults().len(), 3, "{:?}", proxy.faults());
    assert_nothing_published(&stderr);

    // One input object is denied (403): not retried, the run ends naming it.
    let object = format!("lake/raw/events/dt={previous}/part-00000.parquet");
    assert!(s3_lake(&input)
        .get_opt(&format!("raw/events/dt={previous}/part-00000.parquet"))
        .unwrap()
        .is_some());
    let proxy = FaultProxy::start(
        &endpoint,
        Plan::Always {
            needle: object.clone(),
            fault: Fault::Denied,
        },
    );
    let out = run_s3(
        dir,
        FAST_RETRIES,
        &proxy.endpoint(),
        &input,
        &output,
        GEN_DATE,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("403 on {object}:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("storage") && stderr.contains(&object),
        "{stderr}"
    );
    assert_eq!(proxy.faults().len(), 1, "{:?}", proxy.faults());
    assert_nothing_published(&stderr);
}
