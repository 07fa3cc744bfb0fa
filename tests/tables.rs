//! One test per output of contract §4: table shapes and types, publishing, the manifest.

use crate::common::*;
use polars::prelude::*;

const D: &str = "2026-11-10";

fn story_lake() -> TestLake {
    let mut lake = TestLake::new();
    lake.touches(
        D,
        &[touch("phone", "2026-11-01T09:00:00Z")
            .gclid("G")
            .utm("google", "cpc", "brand")],
    );
    lake.events(
        D,
        &[
            ev(
                "p1",
                "page_viewed",
                "2026-11-01T09:00:01Z",
                Some("phone"),
                None,
            ),
            ev(
                "l1",
                "signup_completed",
                "2026-11-05T10:00:00Z",
                Some("laptop"),
                Some("ava"),
            ),
            ev(
                "p2",
                "signed_in",
                "2026-11-08T10:00:00Z",
                Some("phone"),
                Some("ava"),
            ),
            ev(
                "buy",
                "purchase_completed",
                "2026-11-09T10:00:00Z",
                Some("laptop"),
                None,
            )
            .purchase(49.0, Some("Ava.Receipt@Example.com")),
            ev(
                "srv",
                "invoice_paid",
                "2026-11-09T11:00:00Z",
                None,
                Some("ava"),
            ),
            ev(
                "bad",
                "page_viewed",
                "2026-11-09T11:00:00Z",
                Some("null"),
                None,
            ),
        ],
    );
    lake
}

const TABLES: [&str; 9] = [
    "identity_map",
    "persons",
    "anon_visitors",
    "user_attribution",
    "journeys",
    "attribution",
    "attribution_summary",
    "quarantine",
    "refused_unions",
];

fn utc_ts() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

#[test]
fn table_identity_map_has_the_contract_columns() {
    let lake = story_lake();
    let run = lake.run(D);
    let t = run.table("identity_map");
    let s = t.schema();
    for c in [
        "anon_id",
        "person_id",
        "user_id",
        "link_kind",
        "link_event_id",
    ] {
        assert_eq!(s.get(c), Some(&DataType::String), "{c}");
    }
    for c in ["valid_from", "valid_to", "linked_at"] {
        assert_eq!(s.get(c), Some(&utc_ts()), "{c}");
    }
    assert_eq!(s.get("conflict"), Some(&DataType::Boolean));
    assert!(s.get("segment").unwrap().is_integer());
    assert_eq!(t.height(), 2, "one row per segment");
}

/// `refused_unions` (beyond the contract): an alias that would put alice and bob (an email used
/// as user id, pseudonymized) in one person is one row naming both sides; a shared laptop
/// signed in as two users without logout is a cut, not a refused union.
#[test]
fn table_refused_unions_names_both_sides_of_each_refused_union() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev(
                "a1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("ca"),
                Some("alice"),
            ),
            ev(
                "b1",
                "signed_in",
                "2026-11-01T09:05:00Z",
                Some("cb"),
                Some("Bob@Example.com"),
            ),
            ev(
                "x",
                "$create_alias",
                "2026-11-01T10:00:00Z",
                Some("cb"),
                None,
            )
            .prev("ca"),
            ev(
                "s1",
                "signed_in",
                "2026-11-02T09:00:00Z",
                Some("shared"),
                Some("alice"),
            ),
            ev(
                "s2",
                "signed_in",
                "2026-11-02T10:00:00Z",
                Some("shared"),
                Some("cy"),
            ),
        ],
    );
    let run = lake.run(D);
    let t = run.table("refused_unions");
    let bob = lakestitch::read::privacy::pseudonym("Bob@Example.com");
    assert_eq!(t.height(), 1, "{t:?}");
    assert_eq!(run.manifest()["identity"]["refused_unions"], 1);
    assert_eq!(run.manifest()["outputs"]["refused_unions"]["rows"], 1);
    let s = t.schema();
    for c in [
        "event_id",
        "kind",
        "anon_id",
        "person_id",
        "user_id",
        "other_anon_id",
        "other_person_id",
        "other_user_id",
    ] {
        assert_eq!(s.get(c), Some(&DataType::String), "{c}");
    }
    assert_eq!(s.get("at"), Some(&utc_ts()));
    let row = |c: &str| strings(&t, c)[0].clone();
    assert_eq!(row("event_id").as_deref(), Some("x"));
    assert_eq!(row("kind").as_deref(), Some("alias"));
    assert_eq!(micros(&t, "at"), vec![Some(us("2026-11-01T10:00:00Z"))]);
    // The event's own side: cookie cb, bob's (pseudonymized: no raw email in the table).
    assert_eq!(row("anon_id").as_deref(), Some("cb"));
    assert_eq!(row("person_id"), Some(bob.clone()));
    assert_eq!(row("user_id"), Some(bob.clone()));
    // The other side: previous_id ca, alice's.
    assert_eq!(row("other_anon_id").as_deref(), Some("ca"));
    assert_eq!(row("other_person_id").as_deref(), Some("alice"));
    assert_eq!(row("other_user_id").as_deref(), Some("alice"));
    assert_eq!(u32s(&t, "segment"), vec![Some(0)]);
    assert_eq!(u32s(&t, "other_segment"), vec![Some(0)]);
    // conflict_count: the refused union, plus alice's shared laptop.
    assert_eq!(
        u32s(&run.rows("persons", "person_id", "alice"), "conflict_count"),
        vec![Some(2)]
    );
    assert_eq!(
        u32s(&run.rows("persons", "person_id", &bob), "conflict_count"),
        vec![Some(1)]
    );
}

#[test]
fn table_persons_counts_cookies_and_segments() {
    let lake = story_lake();
    let run = lake.run(D);
    let p = run.rows("persons", "person_id", "ava");
    assert_eq!(strings(&p, "user_id"), vec![Some("ava".into())]);
    assert_eq!(u32s(&p, "anon_count"), vec![Some(2)]);
    assert_eq!(u32s(&p, "segment_count"), vec![Some(2)]);
    assert_eq!(u32s(&p, "conflict_count"), vec![Some(0)]);
    assert_eq!(bools(&p, "oversized"), vec![Some(false)]);
}

#[test]
fn table_persons_is_in_person_id_order_with_each_row_its_own_facts() {
    let lake = generated_lake(60);
    let run = lake.run(GEN_DATE);
    let p = run.table("persons");
    let ids = strings(&p, "person_id");
    assert!(ids.len() >= 60, "{} persons", ids.len());
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    // A person with a user is named by it: the columns were put in order together.
    let users = strings(&p, "user_id");
    assert!(users.iter().any(Option::is_some) && users.iter().any(Option::is_none));
    for (id, user) in ids.iter().zip(&users) {
        if user.is_some() {
            assert_eq!(id, user);
        }
    }
}

/// `identity_map` is written in `anon_id` then `segment` order (the order the segments are
/// built in: it is not sorted again), with every cookie's segments numbered from 0.
#[test]
fn table_identity_map_is_in_anon_id_then_segment_order() {
    let lake = generated_lake(60);
    let run = lake.run(GEN_DATE);
    let t = run.table("identity_map");
    let anon = strings(&t, "anon_id");
    let segment: Vec<i64> = (t.column("segment").unwrap())
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert!(anon.len() > 60, "{} segments", anon.len());
    assert!(
        segment.iter().any(|&s| s > 0),
        "some cookie has a second segment"
    );
    for i in 1..anon.len() {
        let (a, b) = ((&anon[i - 1], segment[i - 1]), (&anon[i], segment[i]));
        assert!(a < b, "row {i}: {a:?} then {b:?}");
        if anon[i - 1] != anon[i] {
            assert_eq!(segment[i], 0, "row {i}: a cookie's first segment");
        } else {
            assert_eq!(segment[i], segment[i - 1] + 1, "row {i}");
        }
    }
}

#[test]
fn table_anon_visitors_has_one_row_per_cookie() {
    let lake = story_lake();
    let run = lake.run(D);
    let a = run.rows("anon_visitors", "anon_id", "phone");
    assert_eq!(
        micros(&a, "first_seen_at"),
        vec![Some(us("2026-11-01T09:00:00Z"))]
    );
    assert_eq!(
        micros(&a, "last_seen_at"),
        vec![Some(us("2026-11-08T10:00:00Z"))]
    );
    assert_eq!(strings(&a, "merged_user_id"), vec![Some("ava".into())]);
    assert_eq!(
        micros(&a, "merged_at"),
        vec![Some(us("2026-11-08T10:00:00Z"))]
    );
    assert_eq!(strings(&a, "person_id"), vec![Some("ava".into())]);
    assert!(strings(&a, "first_touch")[0]
        .as_ref()
        .unwrap()
        .contains("\"utm_campaign\":\"brand\""));
    assert_eq!(run.table("anon_visitors").height(), 2);
}

#[test]
fn table_user_attribution_has_write_once_facts() {
    let lake = story_lake();
    let run = lake.run(D);
    let u = run.rows("user_attribution", "user_id", "ava");
    assert_eq!(
        micros(&u, "signup_at"),
        vec![Some(us("2026-11-05T10:00:00Z"))]
    );
    assert_eq!(
        micros(&u, "first_purchase_at"),
        vec![Some(us("2026-11-09T10:00:00Z"))]
    );
    assert_eq!(
        micros(&u, "first_touch_at"),
        vec![Some(us("2026-11-01T09:00:00Z"))]
    );
    assert_eq!(u32s(&u, "anon_count"), vec![Some(2)]);
    let s = u.schema();
    for c in [
        "first_touch_channel",
        "first_touch_source",
        "first_touch_medium",
        "first_touch_campaign",
    ] {
        assert_eq!(s.get(c), Some(&DataType::String), "{c}");
    }
}

#[test]
fn table_journeys_is_partitioned_by_event_date_with_steps() {
    let lake = story_lake();
    let run = lake.run(D);
    let files: Vec<String> = run.summary.manifest.outputs["journeys"]
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert!(
        files.iter().any(|f| f.contains("/journeys/dt=2026-11-01/")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.contains("/journeys/dt=2026-11-09/")),
        "{files:?}"
    );
    let j = run
        .table("journeys")
        .sort(["step"], Default::default())
        .unwrap();
    assert_eq!(
        strings(&j, "event_id"),
        ["p1", "l1", "p2", "buy", "srv"]
            .map(|s| Some(s.to_string()))
            .to_vec()
    );
    assert_eq!(u32s(&j, "step"), (1..=5).map(Some).collect::<Vec<_>>());
    assert_eq!(
        bools(&j, "is_conversion"),
        vec![
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            Some(false)
        ]
    );
    assert_eq!(
        bools(&j, "backfilled"),
        vec![
            Some(true),
            Some(false),
            Some(false),
            Some(true),
            Some(false)
        ]
    );
    assert_eq!(j.schema().get("ts"), Some(&utc_ts()));
}

#[test]
fn table_quarantine_names_source_file_row_and_reason() {
    let lake = story_lake();
    let run = lake.run(D);
    let q = run.table("quarantine");
    assert_eq!(strings(&q, "source"), vec![Some("events".into())]);
    assert_eq!(strings(&q, "row_key"), vec![Some("bad".into())]);
    assert_eq!(strings(&q, "reason"), vec![Some("no_identity".into())]);
    assert!(strings(&q, "file")[0]
        .as_ref()
        .unwrap()
        .starts_with("raw/events/dt=2026-11-10/"));
}

#[test]
fn manifest_counts_reconcile_and_list_files() {
    let lake = story_lake();
    let run = lake.run(D);
    let m = run.manifest();
    assert_eq!(m["run_date"], D);
    assert_eq!(m["status"], "succeeded");
    for source in ["events", "touches"] {
        let s = &m["inputs"][source];
        let read = s["rows_read"].as_u64().unwrap();
        let sum = s["rows_used"].as_u64().unwrap()
            + s["rows_deduplicated"].as_u64().unwrap()
            + s["rows_quarantined"].as_u64().unwrap();
        assert_eq!(read, sum, "{source}: {s}");
        let file_rows: u64 = s["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rows"].as_u64().unwrap())
            .sum();
        assert_eq!(file_rows, read);
    }
    assert_eq!(m["inputs"]["events"]["rows_read"], 6);
    assert_eq!(m["inputs"]["events"]["junk_ids"], 1);
    assert_eq!(m["outputs"]["journeys"]["rows"], 5);
}

#[test]
fn publish_writes_success_last_and_moves_latest() {
    let lake = story_lake();
    let run = lake.run(D);
    let out = lake.output();
    assert!(out.join("runs/2026-11-10/_SUCCESS").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).unwrap().trim(),
        D
    );
    // An older date published later does not move latest back.
    lake.run("2026-11-09");
    assert_eq!(
        std::fs::read_to_string(out.join("latest")).unwrap().trim(),
        D
    );
    drop(run);
}

#[test]
fn every_table_folder_has_a_parquet_file_even_on_an_empty_day() {
    let lake = TestLake::new();
    let run = lake.run(D);
    for t in TABLES {
        let df = run.table(t);
        assert_eq!(df.height(), 0, "{t}");
    }
    assert_eq!(run.manifest()["inputs"]["events"]["rows_read"], 0);
}

#[test]
fn rerun_of_a_date_reproduces_its_tables_byte_for_byte() {
    let lake = story_lake();
    lake.run(D);
    let read_all = || {
        let mut files: Vec<(String, Vec<u8>)> = walk(&lake.output().join("runs").join(D))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let first = read_all();
    lake.run(D);
    assert_eq!(first, read_all());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_raw_email_in_any_table() {
    let lake = story_lake();
    let run = lake.run(D);
    for t in TABLES {
        let df = run.table(t);
        for c in df.columns() {
            if let Ok(s) = c.as_materialized_series().cast(&DataType::String) {
                for v in s.str().unwrap().iter().flatten() {
                    assert!(
                        !v.to_lowercase().contains("receipt@example.com"),
                        "{t}.{}: {v}",
                        c.name()
                    );
                }
            }
        }
    }
}

#[test]
fn partitions_after_the_run_date_are_not_read() {
    let mut lake = story_lake();
    lake.events(
        "2026-11-11",
        &[ev(
            "future",
            "page_viewed",
            "2026-11-11T09:00:00Z",
            Some("x"),
            None,
        )],
    );
    let run = lake.run(D);
    assert_eq!(run.rows("journeys", "event_id", "future").height(), 0);
}

/// The conversions are a few rows of every event file. Their strings are held in buffers of
/// their own: a gather alone would keep every event's `event_id` and every file's details
/// alive behind its views, from read to the end of the run (about 300 MB at 10M events).
#[test]
fn conversions_hold_only_their_own_strings() {
    let mut lake = TestLake::new();
    let id = |i: usize| format!("event-{i:06}-an-id-longer-than-twelve-bytes");
    let mut rows: Vec<Ev> = (0..2000)
        .map(|i| {
            ev(
                &id(i),
                "page_view",
                "2026-11-20T10:00:00Z",
                Some("c1"),
                None,
            )
            .seq(i as i64)
            .props(&format!("{{\"path\":\"/a/page/deep/in/the/site/{i}\"}}"))
        })
        .collect();
    rows.push(
        ev(
            &id(9999),
            "purchase_completed",
            "2026-11-20T11:00:00Z",
            Some("c1"),
            None,
        )
        .purchase(10.0, Some("buyer@example.com"))
        .props("{\"sku\":\"a-product-with-a-long-sku\"}"),
    );
    lake.events("2026-11-20", &rows);
    let cfg = lake.config("2026-11-21");
    let input =
        lakestitch::storage::Lake::open(cfg.input.as_str(), lakestitch::storage::Access::Read)
            .unwrap();
    let raw = lakestitch::read::read_lake(&input, &cfg).unwrap();
    assert_eq!(raw.conversions.height(), 1);
    let mut strings = 0;
    for c in raw.conversions.columns() {
        if let Ok(s) = c.str() {
            strings += 1;
            let held: usize = s.downcast_iter().map(|a| a.total_buffer_len()).sum();
            let values: usize = s.iter().flatten().map(str::len).sum();
            assert!(
                held <= values,
                "{}: {held} bytes held for {values} bytes of values",
                c.name()
            );
        }
    }
    assert!(strings >= 3, "event_id, event and the details are checked");
}

/// The touches' text is held as codes into one sorted dictionary per column, whatever file a
/// value came from: read back, each touch has the values it was written with, in the touches'
/// order (time, cookie, then content), an extra key that only one file has is null in the
/// other's rows, and each distinct value is held once.
#[test]
fn touch_text_is_held_as_codes_and_reads_back_as_written() {
    let mut lake = TestLake::new();
    lake.touches(
        "2026-11-19",
        &[
            touch("c1", "2026-11-19T10:00:00Z")
                .utm("google", "cpc", "brand")
                .extra("affiliate_id", "aff-7"),
            touch("c2", "2026-11-19T09:00:00Z").landing("https://shop.example.com/a"),
            touch("null", "2026-11-19T08:00:00Z"),
        ],
    );
    lake.touches(
        "2026-11-20",
        &[
            // The same time and cookie as the first: ordered by content (bing < google).
            touch("c1", "2026-11-19T10:00:00Z").utm("bing", "cpc", "brand"),
            touch("c3", "2026-11-20T07:00:00Z").gclid("g-1"),
        ],
    );
    let cfg = lake.config("2026-11-21");
    let input =
        lakestitch::storage::Lake::open(cfg.input.as_str(), lakestitch::storage::Access::Read)
            .unwrap();
    let raw = lakestitch::read::read_lake(&input, &cfg).unwrap();
    assert_eq!(raw.touch_extra_keys, vec!["affiliate_id".to_string()]);
    for name in lakestitch::read::text_columns(&raw.touch_extra_keys) {
        let dtype = raw.touches.column(&name).unwrap().dtype().clone();
        assert_eq!(dtype, DataType::UInt32, "{name} is held as codes");
    }
    let st = &raw.stats["touches"];
    assert_eq!((st.rows_read, st.rows_used, st.junk_ids), (5, 4, 1));
    assert_eq!(st.quarantined_by_reason.get("no_identity"), Some(&1));

    let df = raw.touch_text.decode(&raw.touches, None).unwrap();
    let values = |c: &str| -> Vec<Option<String>> {
        let s = df.column(c).unwrap().str().unwrap().clone();
        s.iter().map(|v| v.map(str::to_string)).collect()
    };
    let some = |v: &[Option<&str>]| -> Vec<Option<String>> {
        v.iter().map(|v| v.map(str::to_string)).collect()
    };
    assert_eq!(
        values("anon_id"),
        some(&[Some("c2"), Some("c1"), Some("c1"), Some("c3")])
    );
    assert_eq!(
        values("utm_source"),
        some(&[None, Some("bing"), Some("google"), None])
    );
    assert_eq!(
        values("affiliate_id"),
        some(&[None, None, Some("aff-7"), None])
    );
    assert_eq!(values("gclid"), some(&[None, None, None, Some("g-1")]));
    let home = Some("https://www.example.com/");
    assert_eq!(
        values("landing_url"),
        some(&[Some("https://shop.example.com/a"), home, home, home])
    );
    let landing = raw.touch_text.dictionary("landing_url").unwrap();
    assert_eq!(landing.len(), 2, "each distinct landing page held once");
}

/// Work a later stage hands to stitch (`stitch_into`'s `after`) runs exactly once, beside the
/// tables, which come out the same as without it; an error it returns is stitch's error.
#[test]
fn stitch_runs_the_work_handed_to_it_once_and_passes_on_its_error() {
    use lakestitch::{identity, read, stitch};
    let lake = generated_lake(40);
    let cfg = lake.config(GEN_DATE);
    let input =
        lakestitch::storage::Lake::open(cfg.input.as_str(), lakestitch::storage::Access::Read)
            .unwrap();
    let run = |after: Option<stitch::After<'_>>| {
        let mut raw = read::read_lake(&input, &cfg).unwrap();
        let event_ids = |rows: &[u32]| read::event_ids(&input, &raw.event_files, &raw.events, rows);
        let graph = identity::build(&raw, &cfg, &event_ids).unwrap();
        let facts = stitch::touch_facts(&raw).unwrap();
        let touch_files = raw.touch_files.clone();
        let again =
            |at: &DataFrame, names: &[&str]| read::touch_columns(&input, &touch_files, at, names);
        let picks = stitch::pick_touches(&mut raw, &graph, &facts, &again).unwrap();
        stitch::stitch_into(&raw, &graph, facts, picks, &cfg, &|_, df| Ok(df), after)
    };
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let count = || -> lakestitch::error::Result<()> {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    };
    let with = run(Some(&count)).unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let without = run(None).unwrap();
    for ((name, a), (_, b)) in with.by_name().into_iter().zip(without.by_name()) {
        assert!(
            a.equals_missing(b),
            "{name} differs with the work handed to stitch"
        );
    }
    let fail = || -> lakestitch::error::Result<()> {
        Err(lakestitch::error::Error::Internal(
            "the later stage failed".into(),
        ))
    };
    let err = run(Some(&fail)).expect_err("the error is passed on");
    assert!(err.to_string().contains("the later stage failed"), "{err}");
}
