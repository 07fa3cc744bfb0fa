//! Stage **attribute** (between `stitch` and `publish`): the `attribution` and
//! `attribution_summary` tables (contract §4), and the touch channels `user_attribution` uses.
//!
//! - [`channel`]: GA4 default channel group classification of touches
//!   ([`channel::classify_touches`]); [`channel::channel_columns`] gathers the
//!   `first_touch_channel` / `_source` / `_medium` / `_campaign` columns of
//!   `user_attribution` from it.
//! - [`models`]: the five attribution models as pure functions.
//! - [`attribute`]: one row per conversion, model and credited touch.
//!
//! Every conversion is credited to the counting touches (contract §3.4) of its person, on
//! every device of the person, at or before the conversion and inside the lookback window;
//! a conversion with no such touch gets one `Direct` row per model (source `(direct)`, medium
//! `(none)`, no touch).

pub mod channel;
pub mod models;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::identity::union_find::NONE;
use crate::stitch::{gather, ts_series};
use channel::{classify_touches, TouchChannels, DIRECT, UNASSIGNED};
use models::{all_models, PathTouch, Window};

/// The `[attribution]` section of the job file: lookback, half-life, value / currency columns.
pub type AttributionConfig = crate::config::AttributionSection;

/// What [`attribute`] reads: the run's touches and persons, and the conversions.
#[derive(Debug, Clone, Copy)]
pub struct AttributionInput<'a> {
    /// The touches frame of the raw lake (contract columns, extra keys, `ts` Int64 µs UTC).
    pub touches: &'a DataFrame,
    /// The touches' unknown attribution-key columns.
    pub extra_keys: &'a [String],
    /// [`channel::classify_touches`] of `touches`, when the caller already has it (it needs it
    /// for `user_attribution` too); `None` classifies here.
    pub classified: Option<&'a TouchChannels>,
    /// Person index of each touch row ([`crate::identity::IdentityGraph::touch_person`]).
    pub touch_person: &'a [u32],
    /// Whether each touch counts ([`crate::stitch::touches::counting`]).
    pub counting: &'a BooleanChunked,
    /// `person_id` (String) by person index.
    pub person_ids: &'a Series,
    /// The person's `user_id` (String, nullable) by person index.
    pub person_users: &'a Series,
    /// One row per conversion: `event_id` (String), `person` (UInt32 person index), `ts`
    /// (Int64 µs UTC), `value` (Float64, nullable), `currency` (String, nullable). See
    /// [`conversions_from_events`].
    pub conversions: &'a DataFrame,
}

/// Counts of the attribution stage, for the manifest.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AttributionStats {
    /// Conversions attributed.
    pub conversions: u64,
    /// Rows of `attribution`.
    pub rows: u64,
    /// Conversions with no counting touch in their window (a `Direct` row per model).
    pub direct_conversions: u64,
}

/// The stage's output.
#[derive(Debug, Clone)]
pub struct Attribution {
    /// `attribution`: conversion_event_id, person_id, user_id, converted_at, value, currency,
    /// model, touch_at, channel, source, medium, campaign, credit, value_credited. Sorted by
    /// converted_at, conversion_event_id, model, touch_at.
    pub attribution: DataFrame,
    /// `attribution_summary`: model, channel, campaign, currency, conversions_credited,
    /// value_credited, touches. Sorted by model, channel, campaign, currency (nulls first).
    pub summary: DataFrame,
    /// Counts.
    pub stats: AttributionStats,
}

/// The conversions frame [`attribute`] reads, from the events frame of the raw lake (`event_id`,
/// `event`, `ts` Int64 µs, `value`, `currency`) and the person of each event
/// ([`crate::identity::IdentityGraph::event_person`]): events whose name is one of
/// `conversion_events`, in the events' order. The read stage has already mapped the job's
/// `attribution.value_column` / `currency_column` onto `value` / `currency`.
pub fn conversions_from_events(
    events: &DataFrame,
    event_person: &[u32],
    conversion_events: &[String],
) -> Result<DataFrame> {
    let height = events.height();
    if event_person.len() != height {
        return Err(Error::Internal(format!(
            "{} events but {} event persons",
            height,
            event_person.len()
        )));
    }
    let names = Series::new("names".into(), conversion_events.to_vec());
    let mut frame = events.select(["event_id", "event", "ts", "value", "currency"])?;
    frame.with_column(Column::new("person".into(), event_person.to_vec()))?;
    Ok(frame
        .lazy()
        .filter(
            col("event")
                .is_in(lit(names).implode(true), false)
                .fill_null(lit(false)),
        )
        .select([
            col("event_id"),
            col("person"),
            col("ts").cast(DataType::Int64),
            col("value").cast(DataType::Float64),
            col("currency").cast(DataType::String),
        ])
        .collect()?)
}

/// Attribute every conversion under every model (see the module docs and [`models`]).
pub fn attribute(input: &AttributionInput<'_>, cfg: &AttributionConfig) -> Result<Attribution> {
    let touches = input.touches;
    let n_touches = touches.height();
    let owned;
    let classified = match input.classified {
        Some(c) => c,
        None => {
            owned = classify_touches(touches, input.extra_keys)?;
            &owned
        }
    };
    if input.touch_person.len() != n_touches
        || input.counting.len() != n_touches
        || classified.len() != n_touches
    {
        return Err(Error::Internal(format!(
            "attribution: {n_touches} touches, {} touch persons, {} counting flags, {} channels",
            input.touch_person.len(),
            input.counting.len(),
            classified.len()
        )));
    }
    let window = Window::from_days(cfg.lookback_days, cfg.half_life_days);
    let n_persons = input.person_ids.len();

    // Counting touches per person, sorted by (time, row): a CSR layout.
    let touch_ts = int64(touches.column("ts")?)?;
    let touch_ts = touch_ts.i64()?;
    let channels = classified.class_column("channel")?;
    let class = &classified.of_touch;
    let (offsets, mut path_rows) =
        crate::codes::rows_by_key(input.touch_person, n_persons, |row| {
            input.counting.get(row) == Some(true) && touch_ts.get(row).is_some()
        });
    let path_of = |p: usize| offsets[p] as usize..offsets[p + 1] as usize;
    let at = |row: u32| touch_ts.get(row as usize).unwrap_or(i64::MIN);
    for p in 0..n_persons {
        path_rows[path_of(p)].sort_unstable_by_key(|&r| (at(r), r));
    }

    // Conversions in (converted_at, event_id) order.
    let conv = input.conversions;
    let conv_ids = conv.column("event_id")?.as_materialized_series();
    let conv_id = conv_ids.str()?;
    let conv_person = conv
        .column("person")?
        .as_materialized_series()
        .cast(&DataType::UInt32)?;
    let conv_person = conv_person.u32()?;
    let conv_ts = int64(conv.column("ts")?)?;
    let conv_ts = conv_ts.i64()?;
    let conv_value = conv
        .column("value")?
        .as_materialized_series()
        .cast(&DataType::Float64)?;
    let conv_value = conv_value.f64()?;
    let mut order: Vec<u32> = (0..conv.height() as u32).collect();
    order.sort_by(|&a, &b| {
        let key = |i: u32| (conv_ts.get(i as usize), conv_id.get(i as usize));
        key(a).cmp(&key(b)).then(a.cmp(&b))
    });

    let mut stats = AttributionStats {
        conversions: conv.height() as u64,
        ..Default::default()
    };
    let mut row_conv: Vec<u32> = Vec::new();
    let mut row_person: Vec<u32> = Vec::new();
    let mut row_model: Vec<&'static str> = Vec::new();
    let mut row_touch: Vec<u32> = Vec::new();
    let mut row_credit: Vec<f64> = Vec::new();
    let mut path: Vec<PathTouch<'_>> = Vec::new();
    let mut path_row: Vec<u32> = Vec::new();
    for &c in &order {
        let ci = c as usize;
        let person = conv_person.get(ci).filter(|&p| (p as usize) < n_persons);
        path.clear();
        path_row.clear();
        if let Some(p) = person {
            for &r in &path_rows[path_of(p as usize)] {
                path.push(PathTouch {
                    at: at(r),
                    channel: channels
                        .get(class[r as usize] as usize)
                        .unwrap_or(UNASSIGNED),
                });
                path_row.push(r);
            }
        }
        // A conversion without a time has no window: Direct.
        let converted_at = conv_ts.get(ci);
        let results = match converted_at {
            Some(t) => all_models(t, &path, &window),
            None => all_models(0, &[], &window),
        };
        if results[0].1[0].touch.is_none() {
            stats.direct_conversions += 1;
        }
        for (model, credits) in results {
            for cr in credits {
                row_conv.push(c);
                row_person.push(person.unwrap_or(NONE));
                row_model.push(model.name());
                row_touch.push(cr.touch.map_or(NONE, |i| path_row[i]));
                row_credit.push(cr.credit);
            }
        }
    }
    stats.rows = row_conv.len() as u64;

    let n_rows = row_conv.len();
    let src = classified.class_column("source")?;
    let med = classified.class_column("medium")?;
    let camp = classified.class_column("campaign")?;
    let touch_str = |ca: &StringChunked, direct: Option<&'static str>| -> Series {
        let v: Vec<Option<&str>> = row_touch
            .iter()
            .map(|&r| {
                if r == NONE {
                    direct
                } else {
                    ca.get(class[r as usize] as usize)
                }
            })
            .collect();
        Series::new(PlSmallStr::EMPTY, v)
    };
    let attribution = DataFrame::new(
        n_rows,
        vec![
            gather(conv_ids, &row_conv, "conversion_event_id")?.into(),
            gather(input.person_ids, &row_person, "person_id")?.into(),
            gather(input.person_users, &row_person, "user_id")?.into(),
            ts_series(
                "converted_at",
                row_conv.iter().map(|&c| conv_ts.get(c as usize)).collect(),
            )?
            .into(),
            Column::new(
                "value".into(),
                row_conv
                    .iter()
                    .map(|&c| conv_value.get(c as usize))
                    .collect::<Vec<_>>(),
            ),
            gather(
                conv.column("currency")?.as_materialized_series(),
                &row_conv,
                "currency",
            )?
            .cast(&DataType::String)?
            .into(),
            Column::new("model".into(), row_model),
            ts_series(
                "touch_at",
                row_touch
                    .iter()
                    .map(|&r| (r != NONE).then(|| at(r)))
                    .collect(),
            )?
            .into(),
            touch_str(channels, Some(DIRECT))
                .with_name("channel".into())
                .into(),
            touch_str(src, Some("(direct)"))
                .with_name("source".into())
                .into(),
            touch_str(med, Some("(none)"))
                .with_name("medium".into())
                .into(),
            touch_str(camp, None).with_name("campaign".into()).into(),
            Column::new("credit".into(), row_credit.clone()),
            Column::new(
                "value_credited".into(),
                row_conv
                    .iter()
                    .zip(&row_credit)
                    .map(|(&c, &cr)| conv_value.get(c as usize).map(|v| v * cr))
                    .collect::<Vec<_>>(),
            ),
        ],
    )?;
    let summary = summarize(&attribution)?;
    Ok(Attribution {
        attribution,
        summary,
        stats,
    })
}

/// `attribution_summary`: per model, channel, campaign and currency (values of different
/// currencies are never added up), `conversions_credited` (sum of credit), `value_credited`
/// (sum of value × credit; 0 when no conversion has a value) and `touches` (rows: credited
/// touches, a `Direct` row counting one).
pub fn summarize(attribution: &DataFrame) -> Result<DataFrame> {
    let keys = [
        col("model"),
        col("channel"),
        col("campaign"),
        col("currency"),
    ];
    Ok(attribution
        .clone()
        .lazy()
        .group_by(keys.clone())
        .agg([
            col("credit").sum().alias("conversions_credited"),
            col("value_credited").sum().alias("value_credited"),
            len().cast(DataType::UInt64).alias("touches"),
        ])
        .sort_by_exprs(
            keys,
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

/// A timestamp column as Int64 microseconds (Int64 as is; a Datetime in µs as its physical
/// value).
fn int64(c: &Column) -> Result<Series> {
    Ok(c.as_materialized_series().cast(&DataType::Int64)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel::{ORGANIC_SEARCH, PAID_SEARCH, PAID_SOCIAL};
    use models::DAY_US;

    const T0: i64 = 1_790_000_000_000_000;

    struct Fixture {
        touches: DataFrame,
        touch_person: Vec<u32>,
        counting: BooleanChunked,
        person_ids: Series,
        person_users: Series,
        conversions: DataFrame,
    }

    /// ts, anon_id, [utm_source, utm_medium], fbclid, referrer, person.
    type TouchRow = (
        i64,
        &'static str,
        [Option<&'static str>; 2],
        Option<&'static str>,
        Option<&'static str>,
        u32,
    );

    /// Two persons. Person 0 (user u1) has touches on two devices: google/cpc 20 days before
    /// its conversion, an organic bing visit 10 days before (other cookie), a direct visit
    /// 5 days before (not counting), a fbclid click after the conversion, and one 100 days
    /// before (outside the lookback). Person 1 (no user) converts with no touch.
    fn fixture() -> Fixture {
        let c = T0 + 100 * DAY_US;
        let rows: Vec<TouchRow> = vec![
            (
                c - 100 * DAY_US,
                "a1",
                [Some("google"), Some("cpc")],
                None,
                None,
                0,
            ),
            (
                c - 20 * DAY_US,
                "a1",
                [Some("google"), Some("cpc")],
                None,
                None,
                0,
            ),
            (
                c - 10 * DAY_US,
                "a2",
                [None, None],
                None,
                Some("https://www.bing.com/"),
                0,
            ),
            (c - 5 * DAY_US, "a1", [None, None], None, None, 0),
            (c + DAY_US, "a1", [None, None], Some("IwAR"), None, 0),
            (c - DAY_US, "b1", [None, None], None, None, 1),
        ];
        let n = rows.len();
        let touches = DataFrame::new(
            n,
            vec![
                Column::new(
                    "anon_id".into(),
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                ),
                Column::new("ts".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new(
                    "utm_source".into(),
                    rows.iter().map(|r| r.2[0]).collect::<Vec<_>>(),
                ),
                Column::new(
                    "utm_medium".into(),
                    rows.iter().map(|r| r.2[1]).collect::<Vec<_>>(),
                ),
                Column::new(
                    "utm_campaign".into(),
                    rows.iter()
                        .map(|r| r.2[0].map(|_| "brand"))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "fbclid".into(),
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                ),
                Column::new(
                    "referrer".into(),
                    rows.iter().map(|r| r.4).collect::<Vec<_>>(),
                ),
                Column::new(
                    "landing_url".into(),
                    vec![Some("https://shop.example.com/"); n],
                ),
            ],
        )
        .unwrap();
        let counting: BooleanChunked = [true, true, true, false, true, false]
            .into_iter()
            .map(Some)
            .collect();
        let conversions = DataFrame::new(
            3,
            vec![
                Column::new("event_id".into(), ["e2", "e1", "e3"]),
                Column::new("person".into(), [1u32, 0, 0]),
                Column::new("ts".into(), [c, c, c + 2 * DAY_US]),
                Column::new("value".into(), [None, Some(100.0), Some(10.0)]),
                Column::new("currency".into(), [None, Some("EUR"), Some("USD")]),
            ],
        )
        .unwrap();
        Fixture {
            touches,
            touch_person: rows.iter().map(|r| r.5).collect(),
            counting,
            person_ids: Series::new("person_id".into(), ["u1", "b1"]),
            person_users: Series::new("user_id".into(), [Some("u1"), None]),
            conversions,
        }
    }

    fn run(f: &Fixture) -> Attribution {
        let input = AttributionInput {
            touches: &f.touches,
            extra_keys: &[],
            classified: None,
            touch_person: &f.touch_person,
            counting: &f.counting,
            person_ids: &f.person_ids,
            person_users: &f.person_users,
            conversions: &f.conversions,
        };
        attribute(&input, &AttributionConfig::default()).unwrap()
    }

    fn strs<'a>(df: &'a DataFrame, name: &str) -> Vec<Option<&'a str>> {
        df.column(name).unwrap().str().unwrap().iter().collect()
    }

    fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
        df.column(name).unwrap().f64().unwrap().iter().collect()
    }

    #[test]
    fn attribution_table_follows_the_contract() {
        let f = fixture();
        let out = run(&f);
        let a = &out.attribution;
        let names: Vec<&str> = a.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "conversion_event_id",
                "person_id",
                "user_id",
                "converted_at",
                "value",
                "currency",
                "model",
                "touch_at",
                "channel",
                "source",
                "medium",
                "campaign",
                "credit",
                "value_credited"
            ]
        );
        let utc_us = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
        assert_eq!(a.column("converted_at").unwrap().dtype(), &utc_us);
        assert_eq!(a.column("touch_at").unwrap().dtype(), &utc_us);
        assert_eq!(a.column("credit").unwrap().dtype(), &DataType::Float64);

        // e1 (person 0, two eligible touches on two devices) and e2 (person 1, none) convert at
        // the same time: e1 sorts first. e3 is two days later; the fbclid touch (one day after
        // e1) is eligible for it.
        // e1: first_touch 1, last_non_direct 1, linear 2, position 2, decay 2 = 8 rows.
        // e2: 5 Direct rows. e3: 1 + 1 + 3 + 3 + 3 = 11 rows.
        assert_eq!(a.height(), 8 + 5 + 11);
        assert_eq!(
            out.stats,
            AttributionStats {
                conversions: 3,
                rows: 24,
                direct_conversions: 1
            }
        );
        let ids = strs(a, "conversion_event_id");
        assert!(ids[..8].iter().all(|v| *v == Some("e1")));
        assert!(ids[8..13].iter().all(|v| *v == Some("e2")));
        assert!(ids[13..].iter().all(|v| *v == Some("e3")));

        let models = strs(a, "model");
        let channels = strs(a, "channel");
        let credit = f64s(a, "credit");
        assert_eq!(
            models[..8],
            [
                "first_touch",
                "last_non_direct",
                "linear",
                "linear",
                "position_based",
                "position_based",
                "time_decay",
                "time_decay"
            ]
            .map(Some)
        );
        assert_eq!(
            channels[..8],
            [
                PAID_SEARCH,
                ORGANIC_SEARCH,
                PAID_SEARCH,
                ORGANIC_SEARCH,
                PAID_SEARCH,
                ORGANIC_SEARCH,
                PAID_SEARCH,
                ORGANIC_SEARCH
            ]
            .map(Some)
        );
        // Time decay: 20 and 10 days before, half-life 7: weights 2^(-20/7), 2^(-10/7).
        let (w0, w1) = ((-20.0f64 / 7.0).exp2(), (-10.0f64 / 7.0).exp2());
        let want = [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, w0 / (w0 + w1), w1 / (w0 + w1)];
        for (g, w) in credit[..8].iter().zip(want) {
            assert!((g.unwrap() - w).abs() < 1e-12, "{credit:?}");
        }
        let value_credited = f64s(a, "value_credited");
        assert!((value_credited[2].unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(strs(a, "user_id")[0], Some("u1"));
        assert_eq!(strs(a, "person_id")[0], Some("u1"));
        assert_eq!(strs(a, "source")[1], Some("bing"));
        assert_eq!(strs(a, "medium")[1], Some("organic"));
        assert_eq!(strs(a, "campaign")[0], Some("brand"));
        assert_eq!(strs(a, "currency")[0], Some("EUR"));

        // e2: one Direct row per model, no touch, no user, no value.
        for i in 8..13 {
            assert_eq!(channels[i], Some(DIRECT));
            assert_eq!(credit[i], Some(1.0));
            assert_eq!(strs(a, "source")[i], Some("(direct)"));
            assert_eq!(strs(a, "medium")[i], Some("(none)"));
            assert_eq!(strs(a, "campaign")[i], None);
            assert_eq!(strs(a, "user_id")[i], None);
            assert_eq!(strs(a, "person_id")[i], Some("b1"));
            assert_eq!(value_credited[i], None);
            assert!(a.column("touch_at").unwrap().get(i).unwrap().is_null());
        }
        assert_eq!(
            models[8..13],
            [
                "first_touch",
                "last_non_direct",
                "linear",
                "position_based",
                "time_decay"
            ]
            .map(Some)
        );

        // e3: last_non_direct is the fbclid click (Paid Social); position based 40/20/40.
        assert_eq!(models[14], Some("last_non_direct"));
        assert_eq!(channels[14], Some(PAID_SOCIAL));
        assert_eq!(
            credit[18..21]
                .iter()
                .map(|c| c.unwrap())
                .collect::<Vec<_>>(),
            [0.4, 0.2, 0.4]
        );

        // Credits of each conversion and model add up to 1.
        let sums = a
            .clone()
            .lazy()
            .group_by([col("conversion_event_id"), col("model")])
            .agg([col("credit").sum()])
            .collect()
            .unwrap();
        assert_eq!(sums.height(), 15);
        for s in sums.column("credit").unwrap().f64().unwrap().iter() {
            assert!((s.unwrap() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn summary_groups_by_model_channel_campaign_currency() {
        let out = run(&fixture());
        let s = &out.summary;
        let names: Vec<&str> = s.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "model",
                "channel",
                "campaign",
                "currency",
                "conversions_credited",
                "value_credited",
                "touches"
            ]
        );
        // Every model credits 3 conversions in total.
        let per_model = s
            .clone()
            .lazy()
            .group_by([col("model")])
            .agg([col("conversions_credited").sum()])
            .collect()
            .unwrap();
        assert_eq!(per_model.height(), 5);
        for v in per_model
            .column("conversions_credited")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
        {
            assert!((v.unwrap() - 3.0).abs() < 1e-9);
        }
        // first_touch: Direct (e2), Paid Search / brand in EUR (e1) and USD (e3).
        let ft = s
            .clone()
            .lazy()
            .filter(col("model").eq(lit("first_touch")))
            .collect()
            .unwrap();
        assert_eq!(
            strs(&ft, "channel"),
            [Some(DIRECT), Some(PAID_SEARCH), Some(PAID_SEARCH)]
        );
        assert_eq!(strs(&ft, "currency"), [None, Some("EUR"), Some("USD")]);
        assert_eq!(
            f64s(&ft, "value_credited"),
            [Some(0.0), Some(100.0), Some(10.0)]
        );
        let touches: Vec<Option<u64>> = ft
            .column("touches")
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(touches, [Some(1), Some(1), Some(1)]);
    }

    #[test]
    fn classified_input_is_used_and_lengths_are_checked() {
        let f = fixture();
        let mut classified = classify_touches(&f.touches, &[]).unwrap();
        // Relabel every touch: the output follows the given classification.
        let n_classes = classified.classes.height();
        classified
            .classes
            .replace(
                "channel",
                Column::new("channel".into(), vec!["Email"; n_classes]),
            )
            .unwrap();
        let input = AttributionInput {
            touches: &f.touches,
            extra_keys: &[],
            classified: Some(&classified),
            touch_person: &f.touch_person,
            counting: &f.counting,
            person_ids: &f.person_ids,
            person_users: &f.person_users,
            conversions: &f.conversions,
        };
        let out = attribute(&input, &AttributionConfig::default()).unwrap();
        assert_eq!(strs(&out.attribution, "channel")[0], Some("Email"));

        let short = &f.touch_person[1..];
        let bad = AttributionInput {
            touch_person: short,
            ..input
        };
        assert!(attribute(&bad, &AttributionConfig::default()).is_err());
    }

    #[test]
    fn lookback_comes_from_the_config() {
        let f = fixture();
        let input = AttributionInput {
            touches: &f.touches,
            extra_keys: &[],
            classified: None,
            touch_person: &f.touch_person,
            counting: &f.counting,
            person_ids: &f.person_ids,
            person_users: &f.person_users,
            conversions: &f.conversions,
        };
        // 15 days: for e1 only the bing visit (10 days before) is left.
        let cfg = AttributionConfig {
            lookback_days: 15,
            ..Default::default()
        };
        let out = attribute(&input, &cfg).unwrap();
        let a = &out.attribution;
        let ids = strs(a, "conversion_event_id");
        let ch = strs(a, "channel");
        for (id, c) in ids.iter().zip(&ch) {
            if *id == Some("e1") {
                assert_eq!(*c, Some(ORGANIC_SEARCH));
            }
        }
    }

    #[test]
    fn no_conversions_gives_empty_tables() {
        let f = fixture();
        let conversions = f.conversions.head(Some(0));
        let input = AttributionInput {
            touches: &f.touches,
            extra_keys: &[],
            classified: None,
            touch_person: &f.touch_person,
            counting: &f.counting,
            person_ids: &f.person_ids,
            person_users: &f.person_users,
            conversions: &conversions,
        };
        let out = attribute(&input, &AttributionConfig::default()).unwrap();
        assert_eq!(out.attribution.height(), 0);
        assert_eq!(out.attribution.width(), 14);
        assert_eq!(out.summary.height(), 0);
        assert_eq!(out.stats, AttributionStats::default());
    }

    #[test]
    fn conversions_are_picked_from_events() {
        let events = DataFrame::new(
            4,
            vec![
                Column::new("event_id".into(), ["a", "b", "c", "d"]),
                Column::new(
                    "event".into(),
                    [
                        "page_viewed",
                        "purchase_completed",
                        "trial_started",
                        "purchase_completed",
                    ],
                ),
                Column::new("ts".into(), [1i64, 2, 3, 4]),
                Column::new("value".into(), [None, Some(9.5), None, None]),
                Column::new("currency".into(), [None, Some("EUR"), None, Some("USD")]),
            ],
        )
        .unwrap();
        let names = vec![
            "purchase_completed".to_string(),
            "trial_started".to_string(),
        ];
        let conv = conversions_from_events(&events, &[0, 1, 2, 3], &names).unwrap();
        assert_eq!(strs(&conv, "event_id"), [Some("b"), Some("c"), Some("d")]);
        let persons: Vec<Option<u32>> = conv
            .column("person")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(persons, [Some(1), Some(2), Some(3)]);
        assert_eq!(f64s(&conv, "value"), [Some(9.5), None, None]);
    }
}
