//! `explain` over a real run: a cross-device user, a shared laptop, a conversion with its
//! credits and export status; the JSON shape; unknown ids through the binary (exit 2).

use std::process::Command;

use crate::common::*;
use lakestitch::explain::{explain, Query};
use lakestitch::storage::Access;
use polars::prelude::*;

const D: &str = "2026-11-05";

/// Ann clicks a Google ad on her phone, signs up on her laptop, signs in on the phone, buys on
/// the laptop. Bob and Cy share a laptop that is never logged out.
fn lake() -> TestLake {
    let mut lake = TestLake::new();
    lake.touches(
        "2026-11-01",
        &[touch("ann_phone", "2026-11-01T09:00:00Z")
            .gclid("GCLID_ann")
            .utm("google", "cpc", "brand")],
    );
    lake.touches(
        "2026-11-02",
        &[touch("shared", "2026-11-02T08:59:00Z").utm("newsletter", "email", "weekly")],
    );
    lake.events(
        "2026-11-01",
        &[ev(
            "p1",
            "page_viewed",
            "2026-11-01T09:01:00Z",
            Some("ann_phone"),
            None,
        )],
    );
    let mut buy = ev(
        "buy",
        "purchase_completed",
        "2026-11-04T12:00:00Z",
        Some("ann_laptop"),
        Some("ann"),
    )
    .purchase(20.0, Some("ann@example.com"))
    .props(r#"{"url":"https://www.example.com/done"}"#);
    buy.user_agent = Some("Mozilla/5.0 laptop".into());
    lake.events(
        "2026-11-02",
        &[
            ev(
                "p2",
                "page_viewed",
                "2026-11-02T10:00:00Z",
                Some("ann_laptop"),
                None,
            ),
            ev(
                "su",
                "signup_completed",
                "2026-11-02T10:05:00Z",
                Some("ann_laptop"),
                Some("ann"),
            ),
            ev(
                "b1",
                "signed_in",
                "2026-11-02T09:00:00Z",
                Some("shared"),
                Some("bob"),
            ),
            ev(
                "b2",
                "page_viewed",
                "2026-11-02T09:01:00Z",
                Some("shared"),
                None,
            ),
        ],
    );
    lake.events(
        "2026-11-03",
        &[
            ev(
                "si",
                "signed_in",
                "2026-11-03T08:00:00Z",
                Some("ann_phone"),
                Some("ann"),
            ),
            ev(
                "c1",
                "signed_in",
                "2026-11-03T09:00:00Z",
                Some("shared"),
                Some("cy"),
            ),
        ],
    );
    lake.events("2026-11-04", &[buy]);
    lake
}

#[test]
fn explains_a_cross_device_user_end_to_end() {
    let lake = lake();
    let run = lake.run(D);
    let x = explain(&run.out, None, &Query::user("ann")).unwrap();
    assert_eq!(x.run_date, D);
    assert_eq!(x.person.person_id, "ann");
    assert_eq!(x.person.user_id.as_deref(), Some("ann"));
    assert!(!x.person.oversized);
    assert_eq!(x.person.anon_count, 2);

    // Why together: each cookie's segment with the link that made it.
    let links: Vec<_> = x
        .segments
        .iter()
        .map(|s| {
            (
                s.anon_id.as_str(),
                s.link_kind.as_deref(),
                s.link_event_id.as_deref(),
                s.linked_at.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        links,
        vec![
            (
                "ann_laptop",
                Some("signup"),
                Some("su"),
                Some("2026-11-02T10:05:00Z")
            ),
            (
                "ann_phone",
                Some("signin"),
                Some("si"),
                Some("2026-11-03T08:00:00Z")
            ),
        ]
    );
    assert!(x.apart.segments.is_empty() && x.apart.shared_cookies.is_empty());

    // First touch: the phone's Google click, classified like the run does.
    let ft = x.first_touch.as_ref().unwrap();
    assert_eq!(ft.at.as_deref(), Some("2026-11-01T09:00:00Z"));
    assert_eq!(ft.anon_id.as_deref(), Some("ann_phone"));
    assert_eq!(ft.channel, "Paid Search");
    assert_eq!(
        (
            ft.source.as_deref(),
            ft.medium.as_deref(),
            ft.campaign.as_deref()
        ),
        (Some("google"), Some("cpc"), Some("brand"))
    );
    assert_eq!(ft.touch["gclid"], "GCLID_ann");
    assert_eq!(
        run.str_of("user_attribution", "user_id", "ann", "first_touch_channel")
            .as_deref(),
        Some(ft.channel.as_str())
    );

    // The journey in step order, the pre-login events backfilled.
    let steps: Vec<_> = x
        .journey
        .iter()
        .map(|s| (s.step, s.event_id.as_str(), s.backfilled))
        .collect();
    assert_eq!(
        steps,
        vec![
            (1, "p1", true),
            (2, "p2", true),
            (3, "su", false),
            (4, "si", false),
            (5, "buy", false),
        ]
    );

    // The conversion: one credit row per model (each model's credits add up to 1) and one
    // export row per destination.
    assert_eq!(x.conversions.len(), 1);
    let c = &x.conversions[0];
    assert_eq!(c.event_id, "buy");
    assert_eq!(c.value, Some(20.0));
    let models: Vec<_> = c.credits.iter().map(|k| k.model.as_str()).collect();
    assert_eq!(
        models,
        [
            "first_touch",
            "last_non_direct",
            "linear",
            "position_based",
            "time_decay"
        ]
    );
    assert!(c
        .credits
        .iter()
        .all(|k| (k.credit - 1.0).abs() < 1e-9 && k.channel.as_deref() == Some("Paid Search")));
    let exports: Vec<_> = c
        .exports
        .iter()
        .map(|e| (e.platform.as_str(), e.exported, e.reason.as_deref()))
        .collect();
    assert_eq!(
        exports,
        vec![
            ("meta", true, None),
            ("google", true, None),
            ("google_click_csv", true, None),
        ]
    );

    let text = x.to_text();
    for needle in [
        "Person ann (user ann)",
        "ann_phone",
        "signin at 2026-11-03T08:00:00Z by si",
        "[backfilled]",
        "Paid Search  google / cpc / brand",
        "google_click_csv exported",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}

#[test]
fn explains_why_a_shared_laptop_is_cut() {
    let lake = lake();
    let run = lake.run(D);
    // The cookie belongs to the person of its latest segment.
    let x = explain(&run.out, None, &Query::anon("shared")).unwrap();
    assert_eq!(x.person.person_id, "cy");
    assert_eq!(x.person.conflict_count, 1);
    assert_eq!(x.segments.len(), 1);
    assert_eq!(x.segments[0].segment, 1);
    assert!(x.segments[0].conflict);
    assert_eq!(x.apart.shared_cookies, vec!["shared".to_string()]);
    assert_eq!(x.apart.refused_unions, 0);
    let other = &x.apart.segments[0];
    assert_eq!(
        (
            other.segment,
            other.person_id.as_deref(),
            other.valid_to.as_deref()
        ),
        (0, Some("bob"), Some("2026-11-03T09:00:00Z"))
    );
    // Bob's side of the same laptop.
    let b = explain(&run.out, Some(date(D)), &Query::user("bob")).unwrap();
    assert_eq!(b.apart.segments[0].person_id.as_deref(), Some("cy"));
    let steps: Vec<_> = b
        .journey
        .iter()
        .map(|s| (s.event_id.as_str(), s.backfilled))
        .collect();
    assert_eq!(steps, vec![("b1", false), ("b2", true)]);
    assert!(b.conversions.is_empty());
    assert!(x.to_text().contains("linked to more than one user"));
}

/// Dee signs in on her cookie, Eli on his; an alias event then says the two cookies are one
/// browser. The union would put two users in one person: refused, published in
/// `refused_unions`, and each side's explanation names the other person.
#[test]
fn explains_a_refused_union_with_the_other_side() {
    let mut lake = TestLake::new();
    lake.events(
        "2026-11-01",
        &[
            ev(
                "d1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("dee_cookie"),
                Some("dee"),
            ),
            ev(
                "e1",
                "signed_in",
                "2026-11-01T09:30:00Z",
                Some("eli_cookie"),
                Some("eli"),
            ),
            ev(
                "al",
                "$create_alias",
                "2026-11-01T10:00:00Z",
                Some("eli_cookie"),
                None,
            )
            .prev("dee_cookie"),
        ],
    );
    let run = lake.run(D);
    assert_eq!(run.table("refused_unions").height(), 1);

    let d = explain(&run.out, None, &Query::user("dee")).unwrap();
    assert_eq!(d.person.conflict_count, 1);
    assert_eq!(d.apart.refused_unions, 1);
    assert!(d.apart.shared_cookies.is_empty());
    let r = &d.apart.refused[0];
    assert_eq!(
        (
            r.kind.as_str(),
            r.event_id.as_deref(),
            r.at.as_deref(),
            r.anon_id.as_deref(),
            r.user_id.as_deref(),
            r.other_person_id.as_deref(),
            r.other_user_id.as_deref(),
            r.other_anon_id.as_deref(),
        ),
        (
            "alias",
            Some("al"),
            Some("2026-11-01T10:00:00Z"),
            Some("dee_cookie"),
            Some("dee"),
            Some("eli"),
            Some("eli"),
            Some("eli_cookie"),
        )
    );
    let text = d.to_text();
    assert!(
        text.contains(
            "refused alias union at 2026-11-01T10:00:00Z by al: dee_cookie #0 would have joined \
             eli_cookie #0 of person eli (user eli)"
        ),
        "{text}"
    );
    assert!(!text.contains("nothing: no cut cookie"), "{text}");

    // Eli's side, asked by his cookie: the same union, turned around.
    let e = explain(&run.out, None, &Query::anon("eli_cookie")).unwrap();
    assert_eq!(e.apart.refused.len(), 1);
    let r = &e.apart.refused[0];
    assert_eq!(r.anon_id.as_deref(), Some("eli_cookie"));
    assert_eq!(r.other_person_id.as_deref(), Some("dee"));
    assert!(e.to_text().contains("of person dee (user dee)"));
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["apart"]["refused"][0]["other_person_id"], "dee");
    assert_eq!(v["apart"]["refused_unions"], 1);
}

#[test]
fn explanation_json_has_the_documented_shape() {
    let lake = lake();
    let run = lake.run(D);
    let x = explain(&run.out, None, &Query::user("ann")).unwrap();
    let v = serde_json::to_value(&x).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |k: &[&str]| -> Vec<String> {
        let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        sorted(&[
            "run_date",
            "query",
            "person",
            "segments",
            "apart",
            "first_touch",
            "last_touch",
            "journey",
            "conversions",
            "raw"
        ])
    );
    assert!(v["raw"].is_null());
    assert_eq!(v["query"], serde_json::json!({"kind": "user", "id": "ann"}));
    assert_eq!(
        keys(&v["person"]),
        sorted(&[
            "person_id",
            "user_id",
            "anon_count",
            "segment_count",
            "conflict_count",
            "oversized",
            "signup_at",
            "first_purchase_at"
        ])
    );
    assert_eq!(
        keys(&v["segments"][0]),
        sorted(&[
            "anon_id",
            "segment",
            "valid_from",
            "valid_to",
            "person_id",
            "user_id",
            "link_kind",
            "linked_at",
            "link_event_id",
            "conflict"
        ])
    );
    assert_eq!(
        keys(&v["apart"]),
        sorted(&["segments", "shared_cookies", "refused_unions", "refused"])
    );
    assert_eq!(v["apart"]["refused"], serde_json::json!([]));
    assert_eq!(
        keys(&v["first_touch"]),
        sorted(&["at", "anon_id", "channel", "source", "medium", "campaign", "touch"])
    );
    assert_eq!(
        keys(&v["journey"][0]),
        sorted(&[
            "step",
            "ts",
            "event",
            "anon_id",
            "raw_user_id",
            "user_id",
            "segment",
            "backfilled",
            "is_conversion",
            "value",
            "currency",
            "event_id"
        ])
    );
    let c = &v["conversions"][0];
    assert_eq!(
        keys(c),
        sorted(&[
            "event_id",
            "converted_at",
            "value",
            "currency",
            "credits",
            "exports"
        ])
    );
    assert_eq!(
        keys(&c["credits"][0]),
        sorted(&["model", "credit", "touch_at", "channel", "source", "medium", "campaign"])
    );
    assert_eq!(
        keys(&c["exports"][0]),
        sorted(&["platform", "exported", "reason"])
    );
    assert_eq!(v["journey"][0]["ts"], "2026-11-01T09:01:00Z");
    assert!(v["segments"][0]["valid_to"].is_null());
}

#[test]
fn journeys_files_are_sorted_by_person() {
    let lake = lake();
    let run = lake.run(D);
    for f in &run.summary.manifest.outputs["journeys"].files {
        let bytes = run.out.get(&f.path).unwrap();
        let df = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        let p = strings(&df, "person_id");
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(p, sorted, "{}", f.path);
    }
}

/// The story lake, plus raw rows of Ann that never reach her journey: repeated deliveries
/// (one an exact copy, one whose cookie is junk, one with no ids at all), quarantined events
/// and a quarantined touch; and Eve, whose user id is an email (pseudonymized).
fn raw_lake() -> TestLake {
    let mut lake = lake();
    let mut copy_no_ids = ev("p2", "page_viewed", "2026-11-02T10:00:00Z", None, None);
    copy_no_ids.anon_id = Some("undefined".into());
    let mut blank_id = ev(
        "x",
        "page_viewed",
        "2026-11-03T07:00:00Z",
        Some("ann_phone"),
        None,
    );
    blank_id.event_id = Some("  ".into());
    let mut no_name = ev("noname", "x", "2026-11-03T07:30:00Z", None, Some("ann"));
    no_name.event = None;
    lake.events(
        "2026-11-03",
        &[
            ev(
                "p1",
                "page_viewed",
                "2026-11-01T09:01:00Z",
                Some("ann_phone"),
                None,
            ),
            ev(
                "su",
                "signup_completed",
                "2026-11-02T10:05:00Z",
                Some("null"),
                Some("ann"),
            ),
            copy_no_ids,
            ev(
                "late",
                "page_viewed",
                "2027-01-01T00:00:00Z",
                Some("ann_laptop"),
                None,
            ),
            blank_id,
            no_name,
        ],
    );
    lake.touches(
        "2026-11-03",
        &[Touch {
            anon_id: Some("ann_phone".into()),
            ts: None,
            ..Default::default()
        }],
    );
    lake.events(
        "2026-11-04",
        &[
            ev(
                "eve1",
                "signup_completed",
                "2026-11-04T09:00:00Z",
                Some("eve_c"),
                Some("Eve@Example.com"),
            ),
            ev(
                "eve2",
                "page_viewed",
                "1999-12-31T00:00:00Z",
                None,
                Some("  Eve@Example.com "),
            ),
        ],
    );
    lake
}

#[test]
fn explain_with_the_raw_lake_lists_rows_that_did_not_reach_the_journey() {
    let lake = raw_lake();
    let run = lake.run(D);
    let raw =
        lakestitch::storage::Lake::open(lake.input().to_str().unwrap(), Access::Read).unwrap();
    let mut x = explain(&run.out, None, &Query::user("ann")).unwrap();
    assert!(x.raw.is_none(), "the raw lake is read only when asked");
    lakestitch::explain::raw::trace(&run.out, &raw, &mut x).unwrap();
    let r = x.raw.as_ref().unwrap();
    assert_eq!(r.files, 9);
    assert_eq!(r.in_journey, 5);
    let e7 = "raw/events/dt=2026-11-03/part-00007.parquet";
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|r| {
            (
                r.file.as_str(),
                r.row,
                r.event_id.as_deref(),
                r.outcome.as_str(),
                r.reason.as_deref(),
                r.kept_copy.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                e7,
                0,
                Some("p1"),
                "deduplicated",
                None,
                Some("raw/events/dt=2026-11-01/part-00003.parquet row 0")
            ),
            (
                e7,
                1,
                Some("su"),
                "deduplicated",
                None,
                Some("raw/events/dt=2026-11-02/part-00004.parquet row 1")
            ),
            (
                e7,
                2,
                Some("p2"),
                "deduplicated",
                None,
                Some("raw/events/dt=2026-11-02/part-00004.parquet row 0")
            ),
            (
                e7,
                3,
                Some("late"),
                "quarantined",
                Some("ts_out_of_range"),
                None
            ),
            (
                e7,
                4,
                Some(""),
                "quarantined",
                Some("missing_event_id"),
                None
            ),
            (
                e7,
                5,
                Some("noname"),
                "quarantined",
                Some("missing_event"),
                None
            ),
            (
                "raw/touches/dt=2026-11-03/part-00008.parquet",
                0,
                None,
                "quarantined",
                Some("missing_ts"),
                None
            ),
        ]
    );
    // Ids are shown cleaned, as the run cleaned them: the junk cookie of the `su` copy is null.
    assert_eq!(r.rows[1].anon_id, None);
    assert_eq!(r.rows[1].user_id.as_deref(), Some("ann"));
    // Every reason agrees with the run's quarantine table.
    let q = run.table("quarantine");
    assert_eq!(
        q.height(),
        r.rows.iter().filter(|r| r.outcome == "quarantined").count() + 1,
        "Ann's four quarantined rows and Eve's one: {q:?}"
    );
    let text = x.to_text();
    for needle in [
        "Raw rows not in the journey",
        "row 0  p1  2026-11-01T09:01:00Z  page_viewed  anon ann_phone  user -  repeated delivery, kept raw/events/dt=2026-11-01/part-00003.parquet row 0",
        "quarantined: ts_out_of_range",
        "touches  anon ann_phone  user -  quarantined: missing_ts",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }

    // A shared laptop: the other user's rows on the same cookie are in that person's journey.
    let mut c = explain(&run.out, None, &Query::user("cy")).unwrap();
    lakestitch::explain::raw::trace(&run.out, &raw, &mut c).unwrap();
    let other: Vec<_> = c
        .raw
        .as_ref()
        .unwrap()
        .rows
        .iter()
        .map(|r| {
            (
                r.event_id.as_deref(),
                r.outcome.as_str(),
                r.other_person_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        other,
        vec![
            (Some("b1"), "other_person", Some("bob")),
            (Some("b2"), "other_person", Some("bob")),
        ]
    );

    // An email used as user id: found by its pseudonym, like the read stage computes it.
    let eve = lakestitch::read::privacy::pseudonym("Eve@Example.com");
    let mut e = explain(&run.out, None, &Query::user(eve.clone())).unwrap();
    lakestitch::explain::raw::trace(&run.out, &raw, &mut e).unwrap();
    let rows = &e.raw.as_ref().unwrap().rows;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].event_id.as_deref(), Some("eve2"));
    assert_eq!(rows[0].user_id.as_deref(), Some(eve.as_str()));
    assert_eq!(rows[0].reason.as_deref(), Some("ts_out_of_range"));
    assert!(!e.to_text().to_lowercase().contains("eve@example.com"));
}

#[test]
fn explain_input_flag_reads_the_raw_lake_through_the_binary() {
    let lake = raw_lake();
    lake.run(D);
    let job = lake.dir.path().join("job.toml");
    std::fs::write(&job, "").unwrap();
    let run = |extra: &[&str]| -> serde_json::Value {
        let out = lakestitch()
            .args(["explain", "--json", "--user", "ann", "--job"])
            .arg(&job)
            .arg("--output")
            .arg(lake.output())
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert!(run(&[])["raw"].is_null());
    let v = run(&["--input", lake.input().to_str().unwrap()]);
    let rows = v["raw"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let mut keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "anon_id",
            "event",
            "event_id",
            "file",
            "kept_copy",
            "other_person_id",
            "outcome",
            "reason",
            "row",
            "source",
            "ts",
            "user_id"
        ]
    );
}

fn lakestitch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lakestitch"))
}

#[test]
fn unknown_ids_and_unpublished_runs_exit_2() {
    let lake = lake();
    lake.run(D);
    let job = lake.dir.path().join("job.toml");
    std::fs::write(&job, "").unwrap();
    let explain = |args: &[&str]| {
        let out = lakestitch()
            .arg("explain")
            .arg("--job")
            .arg(&job)
            .arg("--output")
            .arg(lake.output())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stdout, err) = explain(&["--user", "nobody"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(stdout.is_empty());
    assert!(
        err.contains("user `nobody` is not in the run of 2026-11-05"),
        "{err}"
    );
    let (code, _, err) = explain(&["--anon", "no_cookie", "--json"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cookie `no_cookie`"), "{err}");
    let (code, _, err) = explain(&["--user", "ann", "--date", "2026-11-04"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("2026-11-04 is not published"), "{err}");
    // Neither --user nor --anon: a usage error, also 2.
    assert_eq!(explain(&[]).0, Some(2));

    // And a known id answers, as JSON, with exit 0.
    let (code, stdout, err) = explain(&["--user", "ann", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["person"]["person_id"], "ann");
}
