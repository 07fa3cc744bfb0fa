//! The attribution stage through the real pipeline (contract §4 `attribution`, issue 3):
//! channels of `user_attribution`, the five models over a cross-device path, the lookback,
//! conversions without touches, the summary, and configurable value columns.

use crate::common::*;
use lakestitch::config::JobFile;
use polars::prelude::*;

const D: &str = "2026-11-10";

/// Ava clicks a Google ad on her phone, later comes to the laptop from a news site, visits
/// directly, signs up on the laptop, signs in on the phone and buys on the laptop.
fn cross_device_lake() -> TestLake {
    let mut lake = TestLake::new();
    lake.touches(
        D,
        &[
            touch("phone", "2026-11-01T09:00:00Z")
                .gclid("G")
                .utm("google", "cpc", "brand"),
            touch("laptop", "2026-11-05T09:00:00Z").referrer("https://news.example.org/story"),
            touch("laptop", "2026-11-06T09:00:00Z"),
            // after the conversion: never credited
            touch("laptop", "2026-11-09T12:00:00Z").utm("newsletter", "email", "nov"),
        ],
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
            .purchase(100.0, None),
            // a conversion of a person with no counting touch
            ev(
                "solo",
                "purchase_completed",
                "2026-11-09T11:00:00Z",
                Some("kiosk"),
                Some("bob"),
            )
            .purchase(10.0, None),
        ],
    );
    lake
}

/// (model, channel) → credit of conversion `id`.
fn credits(run: &Run, id: &str) -> Vec<(String, String, f64)> {
    let df = run
        .rows("attribution", "conversion_event_id", id)
        .sort(["model", "touch_at"], SortMultipleOptions::default())
        .unwrap();
    let models = strings(&df, "model");
    let channels = strings(&df, "channel");
    let credit: Vec<f64> = df
        .column("credit")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|c| c.unwrap())
        .collect();
    models
        .into_iter()
        .zip(channels)
        .zip(credit)
        .map(|((m, c), x)| (m.unwrap(), c.unwrap(), x))
        .collect()
}

fn credit_of(rows: &[(String, String, f64)], model: &str, channel: &str) -> f64 {
    rows.iter()
        .filter(|(m, c, _)| m == model && c == channel)
        .map(|r| r.2)
        .sum()
}

#[test]
fn attribution_credits_touches_of_every_device_under_five_models() {
    let lake = cross_device_lake();
    let run = lake.run(D);
    let rows = credits(&run, "buy");
    for model in [
        "first_touch",
        "last_non_direct",
        "linear",
        "position_based",
        "time_decay",
    ] {
        let sum: f64 = rows.iter().filter(|r| r.0 == model).map(|r| r.2).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{model} credits sum to {sum}");
        assert!(
            rows.iter().filter(|r| r.0 == model).all(|r| r.1 != "Email"),
            "{model}: a touch after the conversion was credited: {rows:?}"
        );
    }
    // The phone's paid click and the laptop's referral: the direct visit takes no part.
    assert_eq!(credit_of(&rows, "first_touch", "Paid Search"), 1.0);
    assert_eq!(credit_of(&rows, "last_non_direct", "Referral"), 1.0);
    assert_eq!(credit_of(&rows, "linear", "Paid Search"), 0.5);
    assert_eq!(credit_of(&rows, "linear", "Referral"), 0.5);
    assert_eq!(credit_of(&rows, "position_based", "Paid Search"), 0.5);
    // time decay: the referral (4 days 1 hour before) outweighs the click (8 days 1 hour).
    let decay_click = credit_of(&rows, "time_decay", "Paid Search");
    let expected = 1.0 / (1.0 + 2f64.powf(4.0 / 7.0));
    assert!((decay_click - expected).abs() < 1e-9, "{decay_click}");

    let attribution = run.rows("attribution", "conversion_event_id", "buy");
    assert!(strings(&attribution, "person_id")
        .iter()
        .all(|p| p.as_deref() == Some("ava")));
    assert!(strings(&attribution, "user_id")
        .iter()
        .all(|p| p.as_deref() == Some("ava")));
}

#[test]
fn attribution_conversion_without_touch_gets_one_direct_row_per_model() {
    let lake = cross_device_lake();
    let run = lake.run(D);
    let rows = credits(&run, "solo");
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows.iter().all(|r| r.1 == "Direct" && r.2 == 1.0));
    let df = run.rows("attribution", "conversion_event_id", "solo");
    assert!(micros(&df, "touch_at").iter().all(Option::is_none));
}

#[test]
fn attribution_ignores_touches_outside_the_lookback_window() {
    let mut lake = TestLake::new();
    lake.touches(
        "2026-07-01",
        &[touch("a", "2026-07-01T09:00:00Z").utm("google", "cpc", "old")],
    );
    lake.touches(
        D,
        &[touch("a", "2026-11-01T09:00:00Z").utm("facebook", "paid_social", "new")],
    );
    lake.events(
        D,
        &[ev(
            "buy",
            "purchase_completed",
            "2026-11-09T10:00:00Z",
            Some("a"),
            Some("u"),
        )
        .purchase(5.0, None)],
    );
    let run = lake.run(D);
    let rows = credits(&run, "buy");
    assert_eq!(credit_of(&rows, "first_touch", "Paid Social"), 1.0);
    assert_eq!(credit_of(&rows, "linear", "Paid Search"), 0.0);

    // With a longer lookback, the July click is the first touch.
    let mut cfg = lake.config(D);
    cfg.attribution.lookback_days = 200;
    let run = lake.run_with(cfg);
    let rows = credits(&run, "buy");
    assert_eq!(credit_of(&rows, "first_touch", "Paid Search"), 1.0);
}

#[test]
fn user_attribution_first_touch_channel_comes_from_the_classifier() {
    let lake = cross_device_lake();
    let run = lake.run(D);
    for (field, want) in [
        ("first_touch_channel", "Paid Search"),
        ("first_touch_source", "google"),
        ("first_touch_medium", "cpc"),
        ("first_touch_campaign", "brand"),
    ] {
        assert_eq!(
            run.str_of("user_attribution", "user_id", "ava", field)
                .as_deref(),
            Some(want),
            "{field}"
        );
    }
    assert_eq!(
        run.str_of("user_attribution", "user_id", "bob", "first_touch_channel"),
        None
    );
}

#[test]
fn attribution_summary_adds_credits_and_values_per_model_and_channel() {
    let lake = cross_device_lake();
    let run = lake.run(D);
    let summary = run
        .table("attribution_summary")
        .lazy()
        .filter(col("model").eq(lit("linear")))
        .collect()
        .unwrap();
    let channels = strings(&summary, "channel");
    let conv = summary
        .column("conversions_credited")
        .unwrap()
        .f64()
        .unwrap();
    let value = summary.column("value_credited").unwrap().f64().unwrap();
    let at = |name: &str| {
        let i = channels
            .iter()
            .position(|c| c.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in {summary:?}"));
        (conv.get(i).unwrap(), value.get(i).unwrap())
    };
    assert_eq!(at("Paid Search"), (0.5, 50.0));
    assert_eq!(at("Referral"), (0.5, 50.0));
    assert_eq!(at("Direct"), (1.0, 10.0));
    let m = run.manifest();
    assert_eq!(m["attribution"]["conversions"], 2);
    assert_eq!(
        m["outputs"]["attribution"]["rows"],
        run.table("attribution").height()
    );
}

#[test]
fn attribution_value_and_currency_columns_are_configurable() {
    let mut lake = TestLake::new();
    let mut events = events_frame(&[ev(
        "buy",
        "order_paid",
        "2026-11-09T10:00:00Z",
        Some("a"),
        Some("u"),
    )
    .purchase(5.0, None)]);
    events.rename("value", "amount".into()).unwrap();
    events.rename("currency", "ccy".into()).unwrap();
    lake.frame(&format!("raw/events/dt={D}/part-0.parquet"), &events);
    let job = JobFile::parse(
        "[events]\nconversions = [\"order_paid\"]\n[attribution]\nvalue_column = \"amount\"\ncurrency_column = \"ccy\"\n",
        "job.toml",
    )
    .unwrap();
    std::fs::create_dir_all(lake.input()).unwrap();
    let cfg = job.into_config(
        "job.toml",
        Some(date(D)),
        Some(lake.input().to_str().unwrap().into()),
        Some(lake.output().to_str().unwrap().into()),
    );
    let run = lake.run_with(cfg);
    let df = run.rows("attribution", "conversion_event_id", "buy");
    assert_eq!(df.height(), 5);
    let value = df.column("value").unwrap().f64().unwrap();
    assert!(value.iter().all(|v| v == Some(5.0)), "{df:?}");
    assert!(strings(&df, "currency")
        .iter()
        .all(|c| c.as_deref() == Some("USD")));
    let journey = run.rows("journeys", "event_id", "buy");
    assert_eq!(bools(&journey, "is_conversion"), [Some(true)]);
}
