//! `explain --input`: the person's raw rows that did not reach its journey, and why.
//!
//! The published tables say what the run made of the rows it used; the raw lake also holds
//! the rows it did not use. With a raw lake location, [`trace`] reads the id columns of every
//! raw events and touches file the run read (`dt <= run date`), cleans and pseudonymizes them
//! with the read stage's own functions ([`crate::read::raw_event_ids`],
//! [`crate::read::raw_touch_ids`]), and keeps the rows that carry one of the person's cookies
//! or its user, plus every copy of an event of its journey. Each of those rows either reached
//! the journey (not listed), or is listed with its outcome:
//!
//! - `quarantined`, with the reason from the run's `quarantine` table (matched by source, file
//!   and `row_key`; the reasons the run gives before deduplication, `missing_event_id` and
//!   `id_too_long`, are recomputed by the same expressions);
//! - `deduplicated`: a repeated delivery of an `event_id`, dropped for the copy of the earliest
//!   `dt`, then file, then row (contract §3.6), which `kept_copy` names;
//! - `other_person`: used, but in another person's journey (a segment of a shared cookie that
//!   belongs to another user, or an event whose user is someone else).
//!
//! Raw files are not sorted by id, so row-group statistics cannot skip much: the cost is one
//! pass over the id columns of the raw files (no other column is decoded), plus a second pass
//! over `event_id` alone when some row needs every copy of its event to tell `deduplicated`
//! from `other_person`. A row with neither a usable cookie nor a user (quarantined as
//! `no_identity`) names no one and cannot be found this way.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use super::{scan_table, strs, times, u32s, Explanation};
use crate::error::Result;
use crate::read::{raw_event_ids, raw_touch_ids};
use crate::storage::Lake;

/// What the raw lake holds for the person beyond its journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawTrace {
    /// The raw lake read.
    pub input: String,
    /// Raw files read (events and touches with `dt <= run date`).
    pub files: u32,
    /// Raw rows that carry the person's cookies or user, or copy an event of its journey.
    pub rows_found: u32,
    /// Of those, the event rows that are the journey's events.
    pub in_journey: u32,
    /// The others, in the order the run read them (partition, file, row).
    pub rows: Vec<RawRow>,
}

/// One raw row that did not reach the person's journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawRow {
    /// `events` or `touches`.
    pub source: String,
    /// The raw file, relative to the input location.
    pub file: String,
    /// Row in the file (0-based).
    pub row: u32,
    /// The row's `event_id` (trimmed, pseudonymized as in the tables); null for touches.
    pub event_id: Option<String>,
    /// Event name; null for touches.
    pub event: Option<String>,
    /// Time of the row.
    pub ts: Option<String>,
    /// Cookie, cleaned as the run cleans it.
    pub anon_id: Option<String>,
    /// User, cleaned as the run cleans it; null for touches.
    pub user_id: Option<String>,
    /// `quarantined`, `deduplicated` or `other_person`.
    pub outcome: String,
    /// The quarantine reason.
    pub reason: Option<String>,
    /// For `deduplicated`: the copy the run kept, as `FILE row N`.
    pub kept_copy: Option<String>,
    /// For `other_person`: the person whose journey holds the row — its user's person when it
    /// names a user, else the person of its cookie's segment at its time (`identity_map`).
    pub other_person_id: Option<String>,
}

/// Reasons the read stage gives before it deduplicates (the rest are given to kept copies).
const EARLY_REASONS: [&str; 2] = ["missing_event_id", "id_too_long"];

/// A row's place in the read stage's order: partition, file, row.
type Place = (String, String, u32);

fn str_list(name: &str, v: impl IntoIterator<Item = String>) -> Expr {
    lit(Series::new(name.into(), v.into_iter().collect::<Vec<_>>())).implode(true)
}

/// Read the raw lake `raw` for the person of `x` (a run of `out`) and fill in `x.raw`.
pub fn trace(out: &Lake, raw: &Lake, x: &mut Explanation) -> Result<()> {
    let date = NaiveDate::parse_from_str(&x.run_date, "%Y-%m-%d")
        .map_err(|e| crate::error::Error::Internal(format!("run date {}: {e}", x.run_date)))?;
    let cookies: BTreeSet<String> = x.segments.iter().map(|s| s.anon_id.clone()).collect();
    let users: Vec<String> = x.person.user_id.iter().cloned().collect();
    let journey: BTreeSet<String> = x.journey.iter().map(|s| s.event_id.clone()).collect();

    // Pass 1: the rows that carry the person's ids, and every copy of its journey's events.
    let keep = col("anon_id")
        .is_in(str_list("c", cookies.iter().cloned()), false)
        .or(col("user_id").is_in(str_list("u", users), false))
        .or(col("event_id").is_in(str_list("j", journey.iter().cloned()), false))
        .fill_null(lit(false));
    let (ev, ev_files) = raw_event_ids(raw, date, keep)?;
    let (tc, tc_files) = raw_touch_ids(
        raw,
        date,
        col("anon_id")
            .is_in(str_list("c", cookies.iter().cloned()), false)
            .fill_null(lit(false)),
    )?;
    let ev = Rows::of(&ev, true)?;
    let tc = Rows::of(&tc, false)?;

    // The run's quarantine rows of the files involved, by (source, file, row_key).
    let files: BTreeSet<String> = ev.file.iter().chain(&tc.file).cloned().collect();
    let mut quarantined: BTreeMap<(String, String, String), String> = BTreeMap::new();
    if !files.is_empty() {
        if let Some(q) = scan_table(
            out,
            date,
            "quarantine",
            col("file").is_in(str_list("f", files), false),
        )? {
            let (s, f, k, r) = (
                strs(&q, "source")?,
                strs(&q, "file")?,
                strs(&q, "row_key")?,
                strs(&q, "reason")?,
            );
            for i in 0..q.height() {
                if let (Some(s), Some(f), Some(k), Some(r)) = (&s[i], &f[i], &k[i], &r[i]) {
                    // Keep a reason given to a kept copy over one given before deduplication
                    // to another copy with the same key.
                    let e = quarantined
                        .entry((s.clone(), f.clone(), k.clone()))
                        .or_insert_with(|| r.clone());
                    if EARLY_REASONS.contains(&e.as_str()) {
                        *e = r.clone();
                    }
                }
            }
        }
    }
    let late_reason = |source: &str, file: &str, key: &Option<String>| -> Option<String> {
        let key = key.clone()?;
        quarantined
            .get(&(source.to_string(), file.to_string(), key))
            .filter(|r| !EARLY_REASONS.contains(&r.as_str()))
            .cloned()
    };

    // The copy the run kept of each event: the first in read order among the copies that
    // reached deduplication. Every copy of a journey event is in pass 1; for the others,
    // pass 2 reads every copy.
    let mut kept: BTreeMap<String, Place> = BTreeMap::new();
    let mut see = |id: &str, place: Place| {
        let k = kept.entry(id.to_string()).or_insert_with(|| place.clone());
        if place < *k {
            *k = place;
        }
    };
    let mut others: BTreeSet<String> = BTreeSet::new();
    for i in 0..ev.len() {
        if let (Some(id), None) = (&ev.event_id[i], &ev.early[i]) {
            see(id, ev.place(i));
            if !journey.contains(id) {
                others.insert(id.clone());
            }
        }
    }
    if !others.is_empty() {
        let (copies, _) = raw_event_ids(
            raw,
            date,
            col("event_id")
                .is_in(str_list("o", others.iter().cloned()), false)
                .fill_null(lit(false))
                .and(col("early_reason").is_null()),
        )?;
        let copies = Rows::of(&copies, true)?;
        for i in 0..copies.len() {
            if let Some(id) = &copies.event_id[i] {
                see(id, copies.place(i));
            }
        }
    }

    let mut rows = Vec::new();
    let mut in_journey = 0u32;
    for i in 0..ev.len() {
        let (outcome, reason, kept_copy) = match (&ev.early[i], &ev.event_id[i]) {
            (Some(early), _) => ("quarantined", Some(early.clone()), None),
            (None, Some(id)) => {
                let k = &kept[id];
                if *k != ev.place(i) {
                    ("deduplicated", None, Some(format!("{} row {}", k.1, k.2)))
                } else if journey.contains(id) {
                    in_journey += 1;
                    continue;
                } else if let Some(r) = late_reason("events", &ev.file[i], &ev.row_key[i]) {
                    ("quarantined", Some(r), None)
                } else {
                    let mut r = ev.row(i, "other_person", None, None);
                    r.other_person_id = other_person(x, &r, ev.ts_us[i]);
                    rows.push(r);
                    continue;
                }
            }
            // A null event_id is always quarantined early; kept for completeness.
            (None, None) => ("quarantined", Some("missing_event_id".into()), None),
        };
        rows.push(ev.row(i, outcome, reason, kept_copy));
    }
    for i in 0..tc.len() {
        // Touches are never deduplicated: a touch of the person's cookies not quarantined was
        // used (by the person of its segment).
        if let Some(r) = quarantined.get(&(
            "touches".to_string(),
            tc.file[i].clone(),
            tc.row_key[i].clone().unwrap_or_default(),
        )) {
            rows.push(tc.row(i, "quarantined", Some(r.clone()), None));
        }
    }
    // Raw paths hold the partition (`raw/<source>/dt=.../`), so path order is read order.
    rows.sort_by(|a, b| (&a.source, &a.file, a.row).cmp(&(&b.source, &b.file, b.row)));
    x.raw = Some(RawTrace {
        input: raw.url().to_string(),
        files: (ev_files + tc_files) as u32,
        rows_found: (ev.len() + tc.len()) as u32,
        in_journey,
        rows,
    });
    Ok(())
}

/// Whose journey holds a used row of the person's ids that is not in its journey: the user's
/// person (`person_id` is the user id when the person has a user), else the person of the
/// cookie's latest segment that started at or before the row's time.
fn other_person(x: &Explanation, r: &RawRow, ts: Option<i64>) -> Option<String> {
    if let Some(u) = &r.user_id {
        return Some(u.clone());
    }
    let (anon, ts) = (r.anon_id.as_deref()?, ts?);
    let us = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_micros())
    };
    x.segments
        .iter()
        .chain(&x.apart.segments)
        .filter(|s| s.anon_id == anon && us(&s.valid_from).is_some_and(|f| f <= ts))
        .max_by_key(|s| s.segment)
        .and_then(|s| s.person_id.clone())
}

/// The columns of a [`raw_event_ids`] or [`raw_touch_ids`] frame.
struct Rows {
    source: Vec<String>,
    file: Vec<String>,
    dt: Vec<String>,
    row: Vec<u32>,
    row_key: Vec<Option<String>>,
    event_id: Vec<Option<String>>,
    event: Vec<Option<String>>,
    ts: Vec<Option<String>>,
    ts_us: Vec<Option<i64>>,
    anon_id: Vec<Option<String>>,
    user_id: Vec<Option<String>>,
    early: Vec<Option<String>>,
}

impl Rows {
    fn of(df: &DataFrame, events: bool) -> Result<Rows> {
        let n = df.height();
        if n == 0 {
            return Ok(Rows {
                source: vec![],
                file: vec![],
                dt: vec![],
                row: vec![],
                row_key: vec![],
                event_id: vec![],
                event: vec![],
                ts: vec![],
                ts_us: vec![],
                anon_id: vec![],
                user_id: vec![],
                early: vec![],
            });
        }
        let nulls = || vec![None; n];
        let flat = |v: Vec<Option<String>>| v.into_iter().map(Option::unwrap_or_default).collect();
        Ok(Rows {
            source: flat(strs(df, "source")?),
            file: flat(strs(df, "file")?),
            dt: flat(strs(df, "dt")?),
            row: u32s(df, "row")?
                .into_iter()
                .map(|r| r.unwrap_or(0))
                .collect(),
            row_key: strs(df, "row_key")?,
            event_id: if events {
                strs(df, "event_id")?
            } else {
                nulls()
            },
            event: if events { strs(df, "event")? } else { nulls() },
            ts: times(df, "ts")?,
            ts_us: super::i64s(df, "ts")?,
            anon_id: strs(df, "anon_id")?,
            user_id: if events {
                strs(df, "user_id")?
            } else {
                nulls()
            },
            early: if events {
                strs(df, "early_reason")?
            } else {
                nulls()
            },
        })
    }

    fn len(&self) -> usize {
        self.file.len()
    }

    fn place(&self, i: usize) -> Place {
        (self.dt[i].clone(), self.file[i].clone(), self.row[i])
    }

    fn row(
        &self,
        i: usize,
        outcome: &str,
        reason: Option<String>,
        kept_copy: Option<String>,
    ) -> RawRow {
        RawRow {
            source: self.source[i].clone(),
            file: self.file[i].clone(),
            row: self.row[i],
            event_id: self.event_id[i].clone(),
            event: self.event[i].clone(),
            ts: self.ts[i].clone(),
            anon_id: self.anon_id[i].clone(),
            user_id: self.user_id[i].clone(),
            outcome: outcome.to_string(),
            reason,
            kept_copy,
            other_person_id: None,
        }
    }
}
