//! The ad-platform exports through the real pipeline (contract §5): the three kinds of file,
//! match keys gathered across devices, windows, consent, oversized persons, the ledger and the
//! manifest's reasons.

use crate::common::*;
use polars::prelude::*;

const D: &str = "2026-11-21";

/// Users: ava (consent given, US phone), bob (refused), cy (unknown consent).
fn users() -> DataFrame {
    DataFrame::new(
        3,
        vec![
            Column::new("user_id".into(), ["ava", "bob", "cy"]),
            Column::new(
                "email".into(),
                [
                    Some("John_Smith@gmail.com"),
                    Some("bob@example.com"),
                    Some("cy@example.com"),
                ],
            ),
            Column::new(
                "phone".into(),
                [Some("(650)555-1212"), None::<&str>, Some("not a phone")],
            ),
            Column::new("country".into(), [Some("US"), None::<&str>, Some("US")]),
            Column::new("ad_user_data".into(), [Some(true), Some(false), None]),
            Column::new("ad_personalization".into(), [Some(true), Some(false), None]),
        ],
    )
    .unwrap()
}

/// Ava signs in on her phone (where her ad touches were).
fn phone_signin() -> Ev {
    ev(
        "in",
        "signed_in",
        "2026-11-18T09:05:00Z",
        Some("phone"),
        Some("ava"),
    )
}

/// Ava buys on her laptop, with a checkout page URL.
fn laptop_purchase(receipt: Option<&str>) -> Ev {
    ev(
        "buy",
        "purchase_completed",
        "2026-11-20T10:00:00Z",
        Some("laptop"),
        Some("ava"),
    )
    .purchase(49.5, receipt)
    .props(r#"{"url":"https://www.example.com/checkout/done"}"#)
}

fn lake() -> TestLake {
    let mut lake = TestLake::new();
    lake.frame("raw/users/part-0.parquet", &users());
    let mut paid = touch("phone", "2026-11-18T09:00:00Z")
        .gclid("GCLID_ava")
        .utm("google", "cpc", "brand");
    paid.fbclid = Some("FBCLID_ava".into());
    lake.touches("2026-11-18", &[paid]);
    let mut buy = laptop_purchase(Some("Receipt.Ava@Example.com"));
    buy.user_agent = Some("Mozilla/5.0 laptop".into());
    lake.events("2026-11-18", &[phone_signin()]);
    lake.events(
        "2026-11-20",
        &[
            buy,
            ev(
                "bob_buy",
                "purchase_completed",
                "2026-11-20T11:00:00Z",
                Some("b"),
                Some("bob"),
            )
            .purchase(5.0, None),
            ev(
                "cy_old",
                "purchase_completed",
                "2026-11-10T11:00:00Z",
                Some("c"),
                Some("cy"),
            )
            .purchase(7.0, None),
        ],
    );
    lake
}

fn file(run: &Run, rel: &str) -> String {
    let path = format!("runs/{D}/exports/{rel}");
    String::from_utf8(run.out.get(&path).unwrap().to_vec()).unwrap()
}

fn meta_events(run: &Run) -> Vec<serde_json::Value> {
    let body: serde_json::Value =
        serde_json::from_str(&file(run, "meta/batch-00001.json")).unwrap();
    body["data"].as_array().unwrap().clone()
}

#[test]
fn export_meta_event_carries_hashed_keys_from_every_device() {
    let lake = lake();
    let run = lake.run(D);
    let events = meta_events(&run);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["event_name"], "Purchase");
    assert_eq!(e["event_id"], "buy");
    assert_eq!(e["event_time"], 1_795_168_800i64);
    assert_eq!(e["action_source"], "website");
    assert_eq!(
        e["event_source_url"],
        "https://www.example.com/checkout/done"
    );
    let ud = &e["user_data"];
    // Meta's normalization of the account email: trim + lowercase, gmail dots kept.
    let em: Vec<&str> = ud["em"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(em.contains(&"62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"));
    assert_eq!(em.len(), 2, "account and receipt email: {em:?}");
    assert_eq!(
        ud["ph"][0],
        "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    );
    // The click happened on the phone; the purchase on the laptop.
    let fbc = ud["fbc"].as_str().unwrap();
    assert!(
        fbc.starts_with("fb.1.") && fbc.ends_with(".FBCLID_ava"),
        "{fbc}"
    );
    assert_eq!(ud["client_user_agent"], "Mozilla/5.0 laptop");
    assert_eq!(e["custom_data"]["value"], 49.5);
    assert_eq!(e["custom_data"]["currency"], "USD");
}

#[test]
fn export_google_files_use_the_latest_click_and_googles_normalization() {
    let lake = lake();
    let run = lake.run(D);
    let csv = file(&run, "google/click_conversions.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "Parameters:TimeZone=+0000");
    assert_eq!(
        lines[1],
        "Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency"
    );
    assert_eq!(lines[2], "GCLID_ava,Purchase,2026-11-20 10:00:00,49.5,USD");
    assert_eq!(lines.len(), 3, "{csv}");

    let dm: serde_json::Value =
        serde_json::from_str(&file(&run, "google/data_manager/batch-00001.json")).unwrap();
    let text = dm.to_string();
    assert!(text.contains("GCLID_ava"), "{text}");
    // Google's phone normalization keeps the +: sha256("+16505551212").
    assert!(
        text.contains("1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8"),
        "{text}"
    );
    // Google keeps the dots of a non-gmail local part: sha256("receipt.ava@example.com").
    let receipt = lakestitch::export::normalize::sha256_hex("receipt.ava@example.com");
    assert!(text.contains(&receipt), "{text}");
    assert!(text.contains("CONSENT_GRANTED"));
}

#[test]
fn export_files_hold_no_raw_email_or_phone() {
    let lake = lake();
    let run = lake.run(D);
    for (path, _) in run.out.list(&format!("runs/{D}/exports")).unwrap() {
        let body = String::from_utf8(run.out.get(&path).unwrap().to_vec()).unwrap();
        let lower = body.to_lowercase();
        for raw in [
            "john_smith@gmail.com",
            "receipt.ava@example.com",
            "bob@example.com",
            "650",
            "not a phone",
        ] {
            assert!(!lower.contains(raw), "{path} holds {raw}");
        }
    }
}

#[test]
fn export_consent_window_and_reasons_are_counted_in_the_manifest() {
    let lake = lake();
    let run = lake.run(D);
    let m = run.manifest();
    let meta = &m["exports"]["meta"];
    assert_eq!(meta["conversions"], 3);
    assert_eq!(meta["exported"], 1);
    assert_eq!(meta["skipped"]["no_consent"], 1, "{meta}");
    // cy's purchase is 11 days before the end of the run date: too old for Meta.
    assert_eq!(meta["skipped"]["outside_window"], 1, "{meta}");
    let google = &m["exports"]["google"];
    assert_eq!(google["skipped"]["no_consent"], 1, "{google}");
    // cy: unknown consent is exported as unspecified; the phone that is not one is left out.
    assert_eq!(google["exported"], 2, "{google}");
    assert_eq!(google["skipped"]["bad_phone"], 1, "{google}");
    let dm = file(&run, "google/data_manager/batch-00001.json");
    assert!(dm.contains("CONSENT_STATUS_UNSPECIFIED"), "{dm}");
    for platform in ["meta", "google"] {
        let p = &m["exports"][platform];
        let skipped: u64 = [
            "no_match_key",
            "outside_window",
            "no_consent",
            "oversized",
            "already_exported",
            "missing_user_agent",
            "missing_source_url",
            "missing_value",
        ]
        .iter()
        .map(|k| p["skipped"][k].as_u64().unwrap())
        .sum();
        assert_eq!(
            p["exported"].as_u64().unwrap() + skipped,
            p["conversions"].as_u64().unwrap(),
            "{platform} does not reconcile: {p}"
        );
    }
}

/// `export_status`: each conversion once per destination, with the reason it was left out,
/// agreeing with the manifest's counts; the next day's run marks them `already_exported`.
#[test]
fn export_status_says_why_each_conversion_was_not_exported() {
    let lake = lake();
    let run = lake.run(D);
    let st = run.table("export_status");
    let rows: Vec<(String, String, bool, Option<String>)> = strings(&st, "conversion_event_id")
        .into_iter()
        .zip(strings(&st, "platform"))
        .zip(bools(&st, "exported"))
        .zip(strings(&st, "reason"))
        .map(|(((id, p), e), r)| (id.unwrap(), p.unwrap(), e.unwrap(), r))
        .collect();
    let row = |id: &str, p: &str| {
        rows.iter()
            .find(|r| r.0 == id && r.1 == p)
            .map(|r| (r.2, r.3.clone()))
            .unwrap_or_else(|| panic!("no row {id} {p}: {rows:?}"))
    };
    assert_eq!(rows.len(), 9, "3 conversions x 3 destinations: {rows:?}");
    let place = |p: &str| {
        ["meta", "google", "google_click_csv"]
            .iter()
            .position(|x| *x == p)
    };
    assert!(
        rows.windows(2)
            .all(|w| (&w[0].0, place(&w[0].1)) < (&w[1].0, place(&w[1].1))),
        "in event id, then platform order: {rows:?}"
    );
    assert_eq!(row("buy", "meta"), (true, None));
    assert_eq!(row("buy", "google_click_csv"), (true, None));
    assert_eq!(row("bob_buy", "meta"), (false, Some("no_consent".into())));
    assert_eq!(
        row("cy_old", "meta"),
        (false, Some("outside_window".into()))
    );
    assert_eq!(row("cy_old", "google"), (true, None));
    assert_eq!(
        row("cy_old", "google_click_csv"),
        (false, Some("no_match_key".into()))
    );
    let m = run.manifest();
    for (platform, key) in [("meta", "meta"), ("google", "google")] {
        let exported = rows.iter().filter(|r| r.1 == platform && r.2).count();
        assert_eq!(
            exported as u64,
            m["exports"][key]["exported"].as_u64().unwrap()
        );
    }
    assert_eq!(
        m["outputs"]["export_status"]["rows"], 9,
        "listed in the manifest"
    );

    let next = lake.run("2026-11-22");
    let st = next.table("export_status");
    let reasons = strings(&st, "reason");
    let platforms = strings(&st, "platform");
    let ids = strings(&st, "conversion_event_id");
    for i in 0..st.height() {
        if ids[i].as_deref() == Some("buy") {
            assert_eq!(
                reasons[i].as_deref(),
                Some("already_exported"),
                "{:?}",
                platforms[i]
            );
        }
    }
}

#[test]
fn export_oversized_person_is_held_back() {
    let lake = lake();
    let mut cfg = lake.config(D);
    cfg.identity.max_cookies_per_user = 1; // ava has a phone and a laptop
    let run = lake.run_with(cfg);
    let m = run.manifest();
    assert_eq!(m["exports"]["meta"]["skipped"]["oversized"], 1);
    assert_eq!(m["exports"]["google"]["skipped"]["oversized"], 1);
    assert_eq!(m["exports"]["meta"]["exported"], 0);
    assert!(run
        .out
        .list(&format!("runs/{D}/exports/meta"))
        .unwrap()
        .is_empty());
}

#[test]
fn export_ledger_never_sends_a_conversion_twice_but_a_rerun_writes_the_same_files() {
    let lake = lake();
    let first = lake.run(D);
    let meta = file(&first, "meta/batch-00001.json");
    let csv = file(&first, "google/click_conversions.csv");

    // A rerun of the same date writes the same files again.
    let rerun = lake.run(D);
    assert_eq!(file(&rerun, "meta/batch-00001.json"), meta);
    assert_eq!(file(&rerun, "google/click_conversions.csv"), csv);

    // The next day's run still sees the purchase inside every window, but it went out already.
    let next = lake.run("2026-11-22");
    let m = next.manifest();
    assert_eq!(m["exports"]["meta"]["exported"], 0, "{}", m["exports"]);
    assert_eq!(m["exports"]["meta"]["skipped"]["already_exported"], 1);
    assert_eq!(m["exports"]["google"]["skipped"]["already_exported"], 2);
    let csv_next = String::from_utf8(
        next.out
            .get("runs/2026-11-22/exports/google/click_conversions.csv")
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(csv_next.lines().count(), 2, "header only: {csv_next}");
}

/// The three export files of the small lake, compared with `tests/golden/exports/`. Set
/// `UPDATE_GOLDEN=1` to rewrite them after an intended change, and review the diff.
#[test]
fn export_files_match_the_golden_files() {
    let lake = lake();
    let run = lake.run(D);
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/exports");
    for (rel, name) in [
        ("meta/batch-00001.json", "meta_batch-00001.json"),
        (
            "google/click_conversions.csv",
            "google_click_conversions.csv",
        ),
        (
            "google/data_manager/batch-00001.json",
            "google_data_manager_batch-00001.json",
        ),
    ] {
        let got = file(&run, rel);
        let path = golden.join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(got, want, "{rel} differs from {}", path.display());
    }
}

/// The touch columns the run does not hold for every touch (`fbp`, `fbc`, `ip`, `user_agent`)
/// are read again from the raw files for the touches the tables and the exports show: each
/// from its own file and row, redacted as when first read.
#[test]
fn touch_columns_read_again_reach_the_touch_json_and_the_exports() {
    let mut lake = TestLake::new();
    lake.frame("raw/users/part-0.parquet", &users());
    let with = |rows: &[Touch], more: [(&str, &[Option<&str>]); 4]| -> DataFrame {
        let mut df = touches_frame(rows);
        for (name, values) in more {
            df.with_column(Column::new(name.into(), values.to_vec()))
                .unwrap();
        }
        df
    };
    // File 1: another cookie's touch first (an email where `fbp` should be), then the phone's
    // first touch. File 2: the phone's latest touch before the purchase.
    let zed = touch("zed", "2026-11-18T08:00:00Z").utm("newsletter", "email", "nov");
    let first = touch("phone", "2026-11-18T09:00:00Z").gclid("GCLID_ava");
    lake.frame(
        "raw/touches/dt=2026-11-18/part-0.parquet",
        &with(
            &[zed, first],
            [
                ("fbp", &[Some("zed@example.com"), Some("fb.1.1.111")]),
                ("fbc", &[None, None]),
                ("ip", &[Some("203.0.113.9"), Some("198.51.100.1")]),
                (
                    "user_agent",
                    &[Some("Mozilla/5.0 zed"), Some("Mozilla/5.0 phone-1")],
                ),
            ],
        ),
    );
    let latest = touch("phone", "2026-11-19T08:00:00Z").utm("facebook", "paid_social", "retarget");
    lake.frame(
        "raw/touches/dt=2026-11-19/part-0.parquet",
        &with(
            &[latest],
            [
                ("fbp", &[Some("fb.1.2.222")]),
                ("fbc", &[Some("fb.1.1795000000000.CLICK")]),
                ("ip", &[Some("198.51.100.2")]),
                ("user_agent", &[Some("Mozilla/5.0 phone-2")]),
            ],
        ),
    );
    lake.events("2026-11-18", &[phone_signin()]);
    // Bought on the laptop: no ip or user agent of its own, so the touch's are sent.
    lake.events("2026-11-20", &[laptop_purchase(None)]);
    let run = lake.run(D);

    let persons = run.table("persons");
    let json_of = |person: &str, column: &str| -> serde_json::Value {
        let ids = strings(&persons, "person_id");
        let at = ids
            .iter()
            .position(|p| p.as_deref() == Some(person))
            .unwrap();
        serde_json::from_str(strings(&persons, column)[at].as_deref().unwrap()).unwrap()
    };
    let first = json_of("ava", "first_touch");
    assert_eq!(first["user_agent"], "Mozilla/5.0 phone-1");
    assert_eq!(first["ip"], "198.51.100.1");
    assert_eq!(first["fbp"], "fb.1.1.111");
    assert!(first.get("fbc").is_none(), "{first}");
    let last = json_of("ava", "last_touch");
    assert_eq!(last["user_agent"], "Mozilla/5.0 phone-2");
    assert_eq!(last["fbc"], "fb.1.1795000000000.CLICK");
    assert_eq!(json_of("zed", "first_touch")["fbp"], "[redacted]");

    let events = meta_events(&run);
    assert_eq!(events.len(), 1, "{events:?}");
    let ud = &events[0]["user_data"];
    assert_eq!(ud["client_user_agent"], "Mozilla/5.0 phone-2");
    assert_eq!(ud["client_ip_address"], "198.51.100.2");
    assert_eq!(ud["fbp"], "fb.1.2.222");
    assert_eq!(ud["fbc"], "fb.1.1795000000000.CLICK");
}
