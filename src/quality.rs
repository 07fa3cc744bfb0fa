//! Stitching quality against the ground truth of a generated lake (`lakestitch quality`).
//!
//! `lakestitch gen` writes, beside the raw lake, `truth/events` (event_id, human_id) and
//! `truth/humans` (human_id, user_id, first_touch_at). A run publishes `journeys` (event_id,
//! person_id, ...), `persons` (person_id, first_touch_at, ...) and `user_attribution`
//! (user_id, first_touch_at, ...). This module compares the two.
//!
//! - **B-cubed precision and recall of persons over events.** Each event's predicted cluster is
//!   its `person_id`, its true cluster its `human_id`. For an event `e` with predicted cluster
//!   `P(e)` and true cluster `T(e)`, precision(e) = |P(e) ∩ T(e)| / |P(e)| and
//!   recall(e) = |P(e) ∩ T(e)| / |T(e)|; the scores are the means over events. Only events
//!   present in both the truth and `journeys` are scored; events of the truth missing from
//!   `journeys` (quarantined rows) are counted apart and left out of every cluster size.
//!   Computed with group-bys: with n(p, t) the events of person p and human t,
//!   Σ_e precision(e) = Σ_(p,t) n(p, t)² / n(p), and likewise for recall with n(t).
//! - **First-touch accuracy.** A human maps to the person holding most of the human's scored
//!   events (ties: the smallest `person_id`). Over the humans whose truth `first_touch_at` is
//!   not null, the share whose person's `persons.first_touch_at` equals it exactly (to the
//!   microsecond). A human with no scored event has no person and counts as a miss.
//! - **User first-touch accuracy** (a cross-check that needs no mapping): over the humans with a
//!   `user_id` and a truth `first_touch_at`, the share whose `user_attribution.first_touch_at`
//!   equals it exactly.
//!
//! [`evaluate`] is pure computation over frames; [`measure`] reads them from a lake and a run.

use std::io::Cursor;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::publish::run_prefix;
use crate::storage::{Access, Lake};

/// B-cubed scores of a clustering.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BCubed {
    /// Items scored.
    pub items: u64,
    /// Mean over items of |predicted ∩ true| / |predicted| (NaN without items).
    pub precision: f64,
    /// Mean over items of |predicted ∩ true| / |true| (NaN without items).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

/// B-cubed precision and recall of `pairs`, one row per item, whose columns `predicted` and
/// `truth` are the item's predicted and true cluster labels (any type; null is a label too).
pub fn bcubed(pairs: &DataFrame, predicted: &str, truth: &str) -> Result<BCubed> {
    let f = |name: &str| col(name).cast(DataType::Float64);
    let cells = pairs
        .clone()
        .lazy()
        .select([col(predicted).alias("_p"), col(truth).alias("_t")])
        .group_by([col("_p"), col("_t")])
        .agg([len().alias("_n_pt")]);
    let sizes_p = cells
        .clone()
        .group_by([col("_p")])
        .agg([col("_n_pt").sum().alias("_n_p")]);
    let sizes_t = cells
        .clone()
        .group_by([col("_t")])
        .agg([col("_n_pt").sum().alias("_n_t")]);
    let join = || {
        let mut args = JoinArgs::new(JoinType::Inner);
        args.nulls_equal = true;
        args
    };
    let sums = cells
        .join(sizes_p, [col("_p")], [col("_p")], join())
        .join(sizes_t, [col("_t")], [col("_t")], join())
        .select([
            (f("_n_pt") * f("_n_pt") / f("_n_p"))
                .sum()
                .alias("precision"),
            (f("_n_pt") * f("_n_pt") / f("_n_t")).sum().alias("recall"),
            f("_n_pt").sum().alias("items"),
        ])
        .collect()?;
    let get = |name: &str| -> Result<f64> { Ok(sums.column(name)?.f64()?.get(0).unwrap_or(0.0)) };
    let items = get("items")?;
    let (precision, recall) = if items > 0.0 {
        (get("precision")? / items, get("recall")? / items)
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(BCubed {
        items: items as u64,
        precision,
        recall,
        f1: 2.0 * precision * recall / (precision + recall),
    })
}

/// What [`evaluate`] measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    /// Events in the truth (distinct event ids).
    pub truth_events: u64,
    /// Events of the truth found in `journeys`: the ones scored.
    pub events_scored: u64,
    /// Events of the truth missing from `journeys` (quarantined): excluded from the scores.
    pub events_missing: u64,
    /// Rows of `journeys` whose event id is not in the truth (should be 0).
    pub events_unknown: u64,
    /// Distinct persons over the scored events.
    pub persons: u64,
    /// Distinct humans over the scored events.
    pub humans: u64,
    /// B-cubed scores of persons over events.
    pub bcubed: BCubed,
    /// Humans whose truth `first_touch_at` is not null.
    pub humans_with_first_touch: u64,
    /// Of those, the humans whose person has exactly that `first_touch_at`.
    pub first_touch_correct: u64,
    /// Of those, the humans with no scored event (hence no person).
    pub first_touch_unmapped: u64,
    /// `first_touch_correct / humans_with_first_touch` (NaN when there are none).
    pub first_touch_accuracy: f64,
    /// Humans with a user id and a truth `first_touch_at` (None without `user_attribution`).
    pub users_with_first_touch: Option<u64>,
    /// Of those, the ones whose `user_attribution.first_touch_at` is exactly that.
    pub user_first_touch_correct: Option<u64>,
    /// `user_first_touch_correct / users_with_first_touch`.
    pub user_first_touch_accuracy: Option<f64>,
}

/// The published frames of a run and the truth of its lake, as [`evaluate`] reads them.
#[derive(Debug, Clone)]
pub struct QualityInput {
    /// `truth/events`: event_id, human_id.
    pub truth_events: DataFrame,
    /// `truth/humans`: human_id, user_id, first_touch_at.
    pub truth_humans: DataFrame,
    /// `journeys`: event_id, person_id (other columns ignored).
    pub journeys: DataFrame,
    /// `persons`: person_id, first_touch_at.
    pub persons: DataFrame,
    /// `user_attribution`: user_id, first_touch_at (optional).
    pub user_attribution: Option<DataFrame>,
}

fn count(lf: LazyFrame) -> Result<u64> {
    Ok(lf.collect()?.height() as u64)
}

/// Microseconds since the epoch of a timestamp column, whatever its unit or zone.
fn micros(name: &str, alias: &str) -> Expr {
    col(name)
        .cast(DataType::Datetime(TimeUnit::Microseconds, None))
        .cast(DataType::Int64)
        .alias(alias)
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

/// Compare a run's published tables with the truth of its lake.
pub fn evaluate(input: &QualityInput) -> Result<Quality> {
    let truth = input
        .truth_events
        .clone()
        .lazy()
        .select([col("event_id"), col("human_id")]);
    let journeys = input
        .journeys
        .clone()
        .lazy()
        .select([col("event_id"), col("person_id")]);
    let anti = || JoinArgs::new(JoinType::Anti);

    // Scored events. An event without a person (never expected) is a cluster of its own.
    let scored = truth
        .clone()
        .join(
            journeys.clone(),
            [col("event_id")],
            [col("event_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .with_column(
            when(col("person_id").is_null())
                .then(concat_str([lit("\u{0}event:"), col("event_id")], "", false))
                .otherwise(col("person_id"))
                .alias("person_id"),
        )
        .collect()?;
    let truth_events = count(truth.clone())?;
    let events_missing = count(truth.clone().join(
        journeys.clone(),
        [col("event_id")],
        [col("event_id")],
        anti(),
    ))?;
    let events_unknown = count(journeys.join(truth, [col("event_id")], [col("event_id")], anti()))?;
    let bcubed = bcubed(&scored, "person_id", "human_id")?;
    let persons = scored.column("person_id")?.n_unique()? as u64;
    let humans = scored.column("human_id")?.n_unique()? as u64;

    // Each human's person: the one holding most of its events, ties to the smallest id.
    let human_person = scored
        .clone()
        .lazy()
        .group_by([col("human_id"), col("person_id")])
        .agg([len().alias("_n")])
        .sort_by_exprs(
            [col("human_id"), col("_n"), col("person_id")],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .unique_stable_generic(Some(vec![col("human_id")]), UniqueKeepStrategy::First)
        .select([col("human_id"), col("person_id")]);
    let left = || JoinArgs::new(JoinType::Left);
    let firsts = input
        .truth_humans
        .clone()
        .lazy()
        .select([
            col("human_id"),
            col("user_id"),
            micros("first_touch_at", "_truth"),
        ])
        .filter(col("_truth").is_not_null());
    let judged = firsts
        .clone()
        .join(human_person, [col("human_id")], [col("human_id")], left())
        .join(
            input
                .persons
                .clone()
                .lazy()
                .select([col("person_id"), micros("first_touch_at", "_pred")]),
            [col("person_id")],
            [col("person_id")],
            left(),
        )
        .select([
            len().alias("n"),
            col("person_id").is_null().sum().alias("unmapped"),
            col("_pred")
                .eq(col("_truth"))
                .fill_null(lit(false))
                .sum()
                .alias("correct"),
        ])
        .collect()?;
    let cell = |df: &DataFrame, name: &str| -> Result<u64> {
        let c = df.column(name)?.cast(&DataType::UInt64)?;
        Ok(c.u64()?.get(0).unwrap_or(0))
    };
    let humans_with_first_touch = cell(&judged, "n")?;
    let first_touch_correct = cell(&judged, "correct")?;

    let (mut users_with, mut users_correct, mut users_acc) = (None, None, None);
    if let Some(ua) = &input.user_attribution {
        let by_user = firsts
            .filter(col("user_id").is_not_null())
            .join(
                ua.clone()
                    .lazy()
                    .select([col("user_id"), micros("first_touch_at", "_pred")]),
                [col("user_id")],
                [col("user_id")],
                left(),
            )
            .select([
                len().alias("n"),
                col("_pred")
                    .eq(col("_truth"))
                    .fill_null(lit(false))
                    .sum()
                    .alias("correct"),
            ])
            .collect()?;
        let (n, ok) = (cell(&by_user, "n")?, cell(&by_user, "correct")?);
        users_with = Some(n);
        users_correct = Some(ok);
        users_acc = Some(ratio(ok, n));
    }

    Ok(Quality {
        truth_events,
        events_scored: scored.height() as u64,
        events_missing,
        events_unknown,
        persons,
        humans,
        bcubed,
        humans_with_first_touch,
        first_touch_correct,
        first_touch_unmapped: cell(&judged, "unmapped")?,
        first_touch_accuracy: ratio(first_touch_correct, humans_with_first_touch),
        users_with_first_touch: users_with,
        user_first_touch_correct: users_correct,
        user_first_touch_accuracy: users_acc,
    })
}

/// Every Parquet file under `prefix`, only `columns`, in one frame (None when there is none).
fn read_parquet(lake: &Lake, prefix: &str, columns: &[&str]) -> Result<Option<DataFrame>> {
    let mut frames = Vec::new();
    let mut paths: Vec<String> = lake
        .list(prefix)?
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    paths.sort();
    for path in paths {
        let bytes = lake.get(&path)?;
        let df = ParquetReader::new(Cursor::new(bytes))
            .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
            .finish()
            .map_err(|e| Error::bad_input(&path, e))?;
        frames.push(df.lazy());
    }
    if frames.is_empty() {
        return Ok(None);
    }
    Ok(Some(concat(frames, UnionArgs::default())?.collect()?))
}

fn required(lake: &Lake, prefix: &str, columns: &[&str]) -> Result<DataFrame> {
    read_parquet(lake, prefix, columns)?.ok_or_else(|| {
        Error::bad_input(
            format!("{}/{prefix}", lake.url().trim_end_matches('/')),
            "no Parquet file found",
        )
    })
}

/// Read the truth of the lake at `lake_url` and the tables of the run at `run_url` (the run
/// of `date`, by default the one `latest` names), then [`evaluate`].
pub fn measure(lake_url: &str, run_url: &str, date: Option<NaiveDate>) -> Result<Quality> {
    let lake = Lake::open(lake_url, Access::Read)?;
    let run = Lake::open(run_url, Access::Read)?;
    let date = match date {
        Some(d) => d,
        None => {
            let latest = run.get_opt("latest")?.ok_or_else(|| {
                Error::Usage(format!(
                    "{run_url}: no `latest` marker; name the run with --date"
                ))
            })?;
            let text = String::from_utf8_lossy(&latest).trim().to_string();
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map_err(|_| Error::bad_input("latest", format!("`{text}` is not a date")))?
        }
    };
    let prefix = run_prefix(date);
    if run.get_opt(&format!("{prefix}/_SUCCESS"))?.is_none() {
        return Err(Error::Usage(format!(
            "{run_url}: {prefix} is not a published run (no _SUCCESS)"
        )));
    }
    let input = QualityInput {
        truth_events: required(&lake, "truth/events", &["event_id", "human_id"])?,
        truth_humans: required(
            &lake,
            "truth/humans",
            &["human_id", "user_id", "first_touch_at"],
        )?,
        journeys: required(
            &run,
            &format!("{prefix}/journeys"),
            &["event_id", "person_id"],
        )?,
        persons: required(
            &run,
            &format!("{prefix}/persons"),
            &["person_id", "first_touch_at"],
        )?,
        user_attribution: read_parquet(
            &run,
            &format!("{prefix}/user_attribution"),
            &["user_id", "first_touch_at"],
        )?,
    };
    evaluate(&input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(predicted: &[&str], truth: &[&str]) -> DataFrame {
        df!("p" => predicted, "t" => truth).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn a_perfect_clustering_scores_one_and_one() {
        let b = bcubed(
            &pairs(
                &["x", "x", "y", "z", "z", "z"],
                &["1", "1", "2", "3", "3", "3"],
            ),
            "p",
            "t",
        )
        .unwrap();
        assert_eq!(b.items, 6);
        assert!(close(b.precision, 1.0) && close(b.recall, 1.0) && close(b.f1, 1.0));
    }

    #[test]
    fn one_cluster_for_everything_has_full_recall_and_low_precision() {
        // truth: {a,b} {c} {d,e,f}; all six predicted together.
        // precision = (2·2/6 + 1·1/6 + 3·3/6) / 6 = (14/6) / 6 = 7/18; recall = 1.
        let b = bcubed(&pairs(&["x"; 6], &["1", "1", "2", "3", "3", "3"]), "p", "t").unwrap();
        assert!(close(b.precision, 7.0 / 18.0), "{}", b.precision);
        assert!(close(b.recall, 1.0));
        assert!(close(b.f1, 2.0 * (7.0 / 18.0) / (7.0 / 18.0 + 1.0)));
    }

    #[test]
    fn all_singletons_have_full_precision_and_low_recall() {
        // truth: {a,b} {c} {d,e,f}; recall = (2·1/2 + 1 + 3·1/3) / 6 = 3/6.
        let b = bcubed(
            &pairs(
                &["a", "b", "c", "d", "e", "f"],
                &["1", "1", "2", "3", "3", "3"],
            ),
            "p",
            "t",
        )
        .unwrap();
        assert!(close(b.precision, 1.0));
        assert!(close(b.recall, 0.5), "{}", b.recall);
    }

    #[test]
    fn a_mixed_clustering_matches_the_hand_computation() {
        // predicted {a,b,c} {d,e}; truth {a,b} {c,d,e}.
        // precision: a,b 2/3 each, c 1/3, d,e 2/2 → (2/3+2/3+1/3+1+1)/5 = (11/3)/5 = 11/15.
        // recall:    a,b 2/2 each, c 1/3, d,e 2/3 → (1+1+1/3+2/3+2/3)/5 = (11/3)/5 = 11/15.
        let b = bcubed(
            &pairs(&["x", "x", "x", "y", "y"], &["1", "1", "2", "2", "2"]),
            "p",
            "t",
        )
        .unwrap();
        assert!(close(b.precision, 11.0 / 15.0), "{}", b.precision);
        assert!(close(b.recall, 11.0 / 15.0), "{}", b.recall);
    }

    #[test]
    fn no_items_gives_nan_not_a_panic() {
        let b = bcubed(&pairs(&[], &[]), "p", "t").unwrap();
        assert_eq!(b.items, 0);
        assert!(b.precision.is_nan() && b.recall.is_nan());
    }

    fn ts(v: &[Option<i64>]) -> Column {
        Series::new("first_touch_at".into(), v)
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap()
            .into_column()
    }

    #[test]
    fn evaluate_excludes_missing_events_and_maps_humans_to_their_main_person() {
        // h1: e1 e2 e3 (e3 quarantined) → person P; h2: e4 e5 → e4 in P, e5 in Q.
        // h3: e6 only, quarantined → unmapped.
        let truth_events = df!(
            "event_id" => ["e1", "e2", "e3", "e4", "e5", "e6"],
            "human_id" => ["h1", "h1", "h1", "h2", "h2", "h3"],
        )
        .unwrap();
        let journeys = df!(
            "event_id" => ["e1", "e2", "e4", "e5", "zz"],
            "person_id" => ["P", "P", "P", "Q", "R"],
        )
        .unwrap();
        let truth_humans = DataFrame::new(
            3,
            vec![
                Column::new("human_id".into(), ["h1", "h2", "h3"]),
                Column::new("user_id".into(), [Some("u1"), None, Some("u3")]),
                ts(&[Some(100), Some(200), Some(300)]),
            ],
        )
        .unwrap();
        // h2's events are split 1/1 between P and Q: the tie goes to P (smallest id).
        let persons = DataFrame::new(
            2,
            vec![
                Column::new("person_id".into(), ["P", "Q"]),
                ts(&[Some(100), Some(200)]),
            ],
        )
        .unwrap();
        let user_attribution = DataFrame::new(
            1,
            vec![Column::new("user_id".into(), ["u1"]), ts(&[Some(100)])],
        )
        .unwrap();
        let q = evaluate(&QualityInput {
            truth_events,
            truth_humans,
            journeys,
            persons,
            user_attribution: Some(user_attribution),
        })
        .unwrap();
        assert_eq!(q.truth_events, 6);
        assert_eq!(q.events_scored, 4);
        assert_eq!(q.events_missing, 2);
        assert_eq!(q.events_unknown, 1);
        assert_eq!((q.persons, q.humans), (2, 2));
        // predicted {e1,e2,e4} {e5}; truth {e1,e2} {e4,e5}.
        // precision: e1,e2 2/3, e4 1/3, e5 1 → (2/3+2/3+1/3+1)/4 = 2/3.
        // recall: e1,e2 1, e4 1/2, e5 1/2 → 3/4.
        assert!(
            close(q.bcubed.precision, 2.0 / 3.0),
            "{}",
            q.bcubed.precision
        );
        assert!(close(q.bcubed.recall, 0.75), "{}", q.bcubed.recall);
        // h1 → P (100 = 100, correct); h2 → P (100 ≠ 200); h3 unmapped.
        assert_eq!(q.humans_with_first_touch, 3);
        assert_eq!(q.first_touch_correct, 1);
        assert_eq!(q.first_touch_unmapped, 1);
        assert!(close(q.first_touch_accuracy, 1.0 / 3.0));
        // users: u1 correct, u3 missing from user_attribution.
        assert_eq!(q.users_with_first_touch, Some(2));
        assert_eq!(q.user_first_touch_correct, Some(1));
    }
}
