//! `lakestitch explain`: one person of a published run, traced end to end (contract §1).
//!
//! Given a user id or a cookie id, [`explain`] reads the published tables of one run (the
//! `latest` by default) and assembles an [`Explanation`]: the person, why its ids are together
//! (every segment with the link that put it there), why some ids are apart (shared-device cuts
//! and refused unions), first and last touch, the journey, and each conversion with its credits
//! per model and its export status per destination. Nothing is recomputed but the touches'
//! channels, which use the run's own classifier on the published touch JSON.
//!
//! Only what can hold the person is fetched: for each published file, `explain` first reads
//! the Parquet footer with a ranged request, picks the row groups whose min/max statistics of
//! the id column can hold the id, fetches only their byte ranges, and has polars decode just
//! those row groups (see [`scan_table_pruned`]). `journeys` is sorted by `person_id` within
//! each day in small row groups (see [`crate::publish::ROW_GROUP_ROWS`]), so a
//! 10M-event run fetches and decodes a few row groups per day.
//!
//! # JSON shape (`--json`)
//!
//! [`Explanation`] serializes with its fields in declaration order; this shape is stable (new
//! keys may be added, none renamed or removed). Times are RFC 3339 strings in UTC, absent
//! values are `null`, lists are never absent (possibly empty):
//!
//! ```json
//! {"run_date": "2026-11-21", "query": {"kind": "user", "id": "u_ava"},
//!  "person": {"person_id": "u_ava", "user_id": "u_ava", "anon_count": 2, "segment_count": 2,
//!             "conflict_count": 0, "oversized": false, "signup_at": "...", "first_purchase_at": "..."},
//!  "segments": [{"anon_id": "...", "segment": 0, "valid_from": "...", "valid_to": null,
//!                "user_id": "u_ava", "link_kind": "signup", "linked_at": "...",
//!                "link_event_id": "ev_ava_04", "conflict": false}],
//!  "apart": {"segments": [{"anon_id": "...", "segment": 1, "valid_from": "...", "valid_to": null,
//!                          "person_id": "u_cy", "user_id": "u_cy", "link_kind": "signin", ...}],
//!            "shared_cookies": ["anon_shared_laptop"], "refused_unions": 1,
//!            "refused": [{"event_id": "ev_alias_1", "at": "...", "kind": "alias",
//!                         "anon_id": "...", "segment": 0, "user_id": "u_ava",
//!                         "other_person_id": "u_bob", "other_user_id": "u_bob",
//!                         "other_anon_id": "...", "other_segment": 0}]},
//!  "first_touch": {"at": "...", "anon_id": "...", "channel": "Paid Search", "source": "google",
//!                  "medium": "cpc", "campaign": "brand_search", "touch": {...the touch JSON...}},
//!  "last_touch": {...same keys...},
//!  "journey": [{"step": 1, "ts": "...", "event": "page_viewed", "anon_id": "...",
//!               "raw_user_id": null, "user_id": "u_ava", "segment": 0, "backfilled": true,
//!               "is_conversion": false, "value": null, "currency": null, "event_id": "..."}],
//!  "conversions": [{"event_id": "ev_ava_08", "converted_at": "...", "value": 49.0,
//!                   "currency": "USD",
//!                   "credits": [{"model": "first_touch", "credit": 1.0, "touch_at": "...",
//!                                "channel": "Paid Search", "source": "google", "medium": "cpc",
//!                                "campaign": "brand_search"}],
//!                   "exports": [{"platform": "meta", "exported": true, "reason": null}]}],
//!  "raw": null}
//! ```
//!
//! With a raw lake (`explain --input URL`, or `--raw` for the job's input), `raw` is
//! [`raw::RawTrace`]: `{"input": "...", "files": 58, "rows_found": 12, "in_journey": 9,
//! "rows": [{"source": "events", "file": "raw/events/dt=.../part-0.parquet", "row": 71,
//! "event_id": "...", "event": "page_viewed", "ts": "...", "anon_id": "...", "user_id": "u_90",
//! "outcome": "deduplicated", "reason": null, "kept_copy": "raw/events/dt=.../... row 48",
//! "other_person_id": null}]}` — the person's raw rows that did not reach its journey, each
//! `quarantined` (with the run's reason), `deduplicated` (with the copy kept) or
//! `other_person` (with the person whose journey holds it). See [`raw`].
//!
//! `apart.segments` are the other segments of the person's cookies, which belong to other
//! persons: a cut after a logout, or before a link to another user (a shared device).
//! `apart.shared_cookies` are the person's cookies linked to more than one user.
//! `apart.refused_unions` counts the unions the run refused because they would have put two
//! users in this person; `apart.refused` lists them from the `refused_unions` table, each from
//! this person's side (`anon_id`, `segment`, `user_id`: the side in this person) with **the
//! other side** (`other_person_id`, `other_user_id`, and for an alias the other cookie's
//! `other_anon_id` and `other_segment`; for a link those two are null and the other side is the
//! user node). For a run published before that table existed, `apart.refused` is empty and
//! `apart.refused_unions` falls back to `persons.conflict_count` less the shared cookies.
//! `exports` is empty for a run published before the `export_status` table existed.

pub mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use crate::attribute::channel::{classify, TouchFields};
use crate::error::{Error, Result};
use crate::publish::{published_runs, run_prefix};
use crate::storage::Lake;

/// Whom to explain: a user id or a cookie id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Query {
    /// `user` or `anon`.
    pub kind: &'static str,
    /// The id as given.
    pub id: String,
}

impl Query {
    /// A user id (`--user`).
    pub fn user(id: impl Into<String>) -> Self {
        Query {
            kind: "user",
            id: id.into(),
        }
    }

    /// A cookie id (`--anon`).
    pub fn anon(id: impl Into<String>) -> Self {
        Query {
            kind: "anon",
            id: id.into(),
        }
    }
}

/// Everything `explain` shows about one person of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The run read (`YYYY-MM-DD`).
    pub run_date: String,
    /// What was asked.
    pub query: Query,
    /// The person the id belongs to.
    pub person: PersonInfo,
    /// The person's segments: why these ids are together.
    pub segments: Vec<SegmentInfo>,
    /// Why some ids are apart.
    pub apart: Apart,
    /// The earliest counting touch of any of the person's cookies.
    pub first_touch: Option<TouchInfo>,
    /// The latest counting touch.
    pub last_touch: Option<TouchInfo>,
    /// The journey, in step order.
    pub journey: Vec<Step>,
    /// The person's conversions, in time order.
    pub conversions: Vec<ConversionInfo>,
    /// With a raw lake (`--input`): the person's raw rows that did not reach its journey
    /// ([`raw::trace`]); null otherwise.
    pub raw: Option<raw::RawTrace>,
}

/// The `persons` row (and the user's write-once facts).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonInfo {
    /// Stable person id.
    pub person_id: String,
    /// The person's user, if any.
    pub user_id: Option<String>,
    /// Distinct cookies.
    pub anon_count: u32,
    /// Segments.
    pub segment_count: u32,
    /// Shared cookies plus refused unions involving the person.
    pub conflict_count: u32,
    /// More cookies than the job's limit: held back from exports.
    pub oversized: bool,
    /// The user's signup (from `user_attribution`).
    pub signup_at: Option<String>,
    /// The user's first purchase (from `user_attribution`).
    pub first_purchase_at: Option<String>,
}

/// One `identity_map` row: a segment of a cookie and the link that put it in its person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentInfo {
    /// The cookie.
    pub anon_id: String,
    /// Segment number within the cookie (0-based).
    pub segment: u32,
    /// Start of the segment.
    pub valid_from: Option<String>,
    /// End of the segment (null = open).
    pub valid_to: Option<String>,
    /// Person of the segment (the explained person, except in [`Apart::segments`]).
    pub person_id: Option<String>,
    /// The segment's user.
    pub user_id: Option<String>,
    /// `signup`, `signin`, `seen` (null: never linked, an anonymous segment).
    pub link_kind: Option<String>,
    /// Time of the segment's first link.
    pub linked_at: Option<String>,
    /// The event that made the link.
    pub link_event_id: Option<String>,
    /// The cookie was linked to more than one user, or a link of this segment was refused.
    pub conflict: bool,
}

/// Why some ids are not in the person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Apart {
    /// Other segments of the person's cookies, in other persons.
    pub segments: Vec<SegmentInfo>,
    /// The person's cookies that were linked to more than one user (shared devices).
    pub shared_cookies: Vec<String>,
    /// Unions refused because they would have joined two users in this person.
    pub refused_unions: u32,
    /// Those unions, each with the other side (from the `refused_unions` table).
    pub refused: Vec<RefusedInfo>,
}

/// One refused union that touched the person, seen from the person's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedInfo {
    /// The event that asked for the union.
    pub event_id: Option<String>,
    /// Its time.
    pub at: Option<String>,
    /// `link` (a cookie segment with a user) or `alias` (two cookies of one browser).
    pub kind: String,
    /// This person's side: the cookie (null when this side is the user node of a link).
    pub anon_id: Option<String>,
    /// Its segment.
    pub segment: Option<u32>,
    /// This person's user.
    pub user_id: Option<String>,
    /// The person on the other side.
    pub other_person_id: Option<String>,
    /// That person's user.
    pub other_user_id: Option<String>,
    /// The other side's cookie (alias), or the event's cookie when this side is the user node.
    pub other_anon_id: Option<String>,
    /// The other side's segment.
    pub other_segment: Option<u32>,
}

/// A touch, with the channel the run's classifier gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TouchInfo {
    /// When it happened.
    pub at: Option<String>,
    /// The cookie it was seen on.
    pub anon_id: Option<String>,
    /// GA4 default channel group.
    pub channel: String,
    /// Source.
    pub source: Option<String>,
    /// Medium.
    pub medium: Option<String>,
    /// Campaign.
    pub campaign: Option<String>,
    /// The published touch JSON.
    pub touch: serde_json::Value,
}

/// One `journeys` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// 1-based step within the person.
    pub step: u32,
    /// Event time.
    pub ts: Option<String>,
    /// Event name.
    pub event: Option<String>,
    /// Cookie.
    pub anon_id: Option<String>,
    /// `user_id` as read.
    pub raw_user_id: Option<String>,
    /// Resolved user.
    pub user_id: Option<String>,
    /// Segment number of the cookie.
    pub segment: Option<u32>,
    /// The raw user id was null and the person's user was filled in.
    pub backfilled: bool,
    /// A conversion event.
    pub is_conversion: bool,
    /// Value.
    pub value: Option<f64>,
    /// Currency.
    pub currency: Option<String>,
    /// The event's id.
    pub event_id: String,
}

/// One conversion: its credits per model and its exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversionInfo {
    /// The conversion's event id.
    pub event_id: String,
    /// When it happened.
    pub converted_at: Option<String>,
    /// Value.
    pub value: Option<f64>,
    /// Currency.
    pub currency: Option<String>,
    /// `attribution` rows, by model then touch time.
    pub credits: Vec<Credit>,
    /// `export_status` rows, one per destination.
    pub exports: Vec<ExportInfo>,
}

/// One `attribution` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Credit {
    /// Model.
    pub model: String,
    /// Share of the conversion (the credits of one model add up to 1).
    pub credit: f64,
    /// The credited touch's time (null for `Direct`).
    pub touch_at: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// Medium.
    pub medium: Option<String>,
    /// Campaign.
    pub campaign: Option<String>,
}

/// One `export_status` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportInfo {
    /// `meta`, `google` (Data Manager) or `google_click_csv`.
    pub platform: String,
    /// Written to the platform's files by this run.
    pub exported: bool,
    /// Why not (a manifest skip reason), when not exported.
    pub reason: Option<String>,
}

/// The run to read: `date`, else the one `latest` names. Errors with [`Error::NotFound`]
/// when that run is not published.
pub fn run_date(out: &Lake, date: Option<NaiveDate>) -> Result<NaiveDate> {
    let date = match date {
        Some(d) => d,
        None => {
            let latest = out.get_opt("latest")?.ok_or_else(|| {
                Error::NotFound(format!(
                    "no published run under {} (no `latest`)",
                    out.url()
                ))
            })?;
            let text = String::from_utf8_lossy(&latest).trim().to_string();
            NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
                Error::bad_input(
                    "latest",
                    format!("expected a date YYYY-MM-DD, found `{text}`"),
                )
            })?
        }
    };
    if out
        .get_opt(&format!("{}/_SUCCESS", run_prefix(date)))?
        .is_none()
    {
        let known: Vec<String> = published_runs(out)?
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        return Err(Error::NotFound(format!(
            "the run of {date} is not published under {} (published: {})",
            out.url(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    Ok(date)
}

/// Read the rows of a published table that match `predicate`, letting the Parquet reader skip
/// row groups by their statistics. `None` when the run has no such table.
pub fn scan_table(
    out: &Lake,
    date: NaiveDate,
    table: &str,
    predicate: Expr,
) -> Result<Option<DataFrame>> {
    scan_table_pruned(out, date, table, predicate, None)
}

/// Which rows a scan wants, for choosing row groups by their statistics: those whose string
/// column `column` is one of `values`. The scan's predicate must imply it.
#[derive(Debug, Clone)]
pub struct Prune<'a> {
    /// The column.
    pub column: &'a str,
    /// Its wanted values.
    pub values: Vec<String>,
}

/// [`scan_table`], fetching from the store only what can hold the rows `prune` wants: each
/// file's footer, then the byte ranges of the row groups whose `prune.column` statistics
/// (min ≤ value ≤ max) can hold one of the values (see [`read_ranged`]). Without `prune`,
/// whole files are read.
pub fn scan_table_pruned(
    out: &Lake,
    date: NaiveDate,
    table: &str,
    predicate: Expr,
    prune: Option<&Prune>,
) -> Result<Option<DataFrame>> {
    let prefix = format!("{}/{table}/", run_prefix(date));
    let files: Vec<(String, u64)> = out
        .list(&prefix)?
        .into_iter()
        .filter(|(p, _)| p.ends_with(".parquet"))
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let before = out.bytes_fetched();
    let mut frames = Vec::new();
    for (path, size) in &files {
        let parts = match prune {
            Some(prune) => read_ranged(out, path, *size, prune)?,
            None => vec![Part::whole(out.get(path)?)],
        };
        for part in parts {
            frames.push(part.scan(predicate.clone())?);
        }
    }
    tracing::debug!(
        table,
        files = files.len(),
        file_bytes = files.iter().map(|f| f.1).sum::<u64>(),
        bytes_fetched = out.bytes_fetched() - before,
        "scanned"
    );
    Ok(Some(match frames.len() {
        1 => frames.remove(0),
        // Every file of a table has one schema; an empty part (no row group selected) has
        // the file's schema too.
        _ => polars::functions::concat_df_diagonal(&frames)?,
    }))
}

/// Bytes of one published file for polars to scan, and the rows to decode.
struct Part {
    buffer: polars_buffer::Buffer<u8>,
    /// `(first row, rows)`: a run of consecutive selected row groups; `None` = every row.
    rows: Option<(i64, usize)>,
}

impl Part {
    fn whole(bytes: bytes::Bytes) -> Part {
        Part {
            buffer: polars_buffer::Buffer::from_owner(bytes),
            rows: None,
        }
    }

    fn scan(&self, predicate: Expr) -> Result<DataFrame> {
        let lf = LazyFrame::scan_parquet_sources(
            ScanSources::Buffers(vec![self.buffer.clone()].into()),
            ScanArgsParquet {
                hive_options: HiveOptions::new_disabled(),
                ..ScanArgsParquet::default()
            },
        )?;
        // The slice comes first, so it is pushed into the reader, which then touches only the
        // row groups it overlaps; the filter applies to those rows.
        let lf = match self.rows {
            Some((offset, len)) => lf.slice(offset, len as IdxSize),
            None => lf,
        };
        Ok(lf.filter(predicate).collect()?)
    }
}

/// Bytes fetched speculatively from a file's end: most footers fit, so one request gets the
/// footer and its length.
const FOOTER_GUESS: u64 = 64 * 1024;

/// Fetch what `prune` needs of one Parquet file: its footer, then the row groups whose
/// statistics of `prune.column` can hold a wanted value. Returns one [`Part`] per run of
/// consecutive selected row groups, over a buffer of the file's length that holds the footer
/// and those row groups' bytes and zeros elsewhere (zeroed pages are not touched, so the
/// unread parts cost no memory either). Each part's row slice covers exactly its row groups,
/// and the reader reads only the row groups a slice overlaps, so it never decodes a zero.
///
/// A row group is kept unless its statistics prove that it holds none of the values: no
/// statistics, or a column of another type, keep it. When every row group is kept, the rest
/// of the file is fetched in one request (so a file of one row group costs its size). A footer that does not decode falls back to the
/// whole file, for polars to report.
fn read_ranged(out: &Lake, path: &str, size: u64, prune: &Prune) -> Result<Vec<Part>> {
    use polars_parquet::parquet::read::deserialize_metadata;
    use polars_parquet::parquet::statistics::Statistics;

    if size < 12 {
        return Ok(vec![Part::whole(out.get(path)?)]);
    }
    let guess = size.min(FOOTER_GUESS);
    let mut tail = out.get_range(path, size - guess..size)?;
    let n = tail.len();
    if &tail[n - 4..] != b"PAR1" {
        return Ok(vec![Part::whole(out.get(path)?)]);
    }
    let meta_len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as u64;
    if meta_len + 8 > size {
        return Ok(vec![Part::whole(out.get(path)?)]);
    }
    if meta_len + 8 > guess {
        tail = out.get_range(path, size - meta_len - 8..size)?;
    }
    let n = tail.len();
    let footer = tail.slice(n - 8 - meta_len as usize..n - 8);
    let Ok(meta) = deserialize_metadata(polars_buffer::Buffer::from_owner(footer)) else {
        return Ok(vec![Part::whole(out.get(path)?)]);
    };

    // Which row groups can hold a wanted value.
    let keep: Vec<bool> = meta
        .row_groups
        .iter()
        .map(|rg| {
            let Some(chunk) = rg.parquet_columns().iter().find(|c| {
                c.descriptor().path_in_schema.len() == 1
                    && c.descriptor().path_in_schema[0].as_str() == prune.column
            }) else {
                return true;
            };
            match chunk.statistics(&meta.footer_buf) {
                Some(Ok(Statistics::Binary(st))) => match (&st.min_value, &st.max_value) {
                    (Some(min), Some(max)) => prune.values.iter().any(|v| {
                        let v = v.as_bytes();
                        min.as_slice() <= v && v <= max.as_slice()
                    }),
                    // No min and max: every value is null (the anonymous persons' `user_id`)
                    // when the null count says so, and a wanted id is never null.
                    _ => st.null_count != Some(rg.num_rows() as i64),
                },
                _ => true,
            }
        })
        .collect();
    if keep.iter().all(|k| *k) {
        // The whole file: what the footer request did not bring, then that.
        let mut whole = Vec::with_capacity(size as usize);
        if (n as u64) < size {
            whole.extend_from_slice(&out.get_range(path, 0..size - n as u64)?);
        }
        whole.extend_from_slice(&tail);
        return Ok(vec![Part::whole(bytes::Bytes::from(whole))]);
    }

    // Runs of consecutive kept row groups: their rows and their bytes.
    let mut runs: Vec<(i64, usize, std::ops::Range<u64>)> = Vec::new();
    let mut first_row = 0i64;
    let mut prev_kept = false;
    for (rg, kept) in meta.row_groups.iter().zip(&keep) {
        let bytes = rg.full_byte_range();
        if *kept {
            match runs.last_mut() {
                Some(run) if prev_kept => {
                    run.1 += rg.num_rows();
                    run.2.start = run.2.start.min(bytes.start);
                    run.2.end = run.2.end.max(bytes.end);
                }
                _ => runs.push((first_row, rg.num_rows(), bytes)),
            }
        }
        prev_kept = *kept;
        first_row += rg.num_rows() as i64;
    }
    // A file of only skipped row groups: scan its footer alone, for the schema (no rows).
    let ranges: Vec<std::ops::Range<u64>> = runs.iter().map(|r| r.2.clone()).collect();
    let parts = out.get_ranges(path, &ranges)?;
    let mut buf = vec![0u8; size as usize];
    buf[..4].copy_from_slice(b"PAR1");
    let footer_start = size as usize - n;
    buf[footer_start..].copy_from_slice(&tail);
    for (range, bytes) in ranges.iter().zip(&parts) {
        buf[range.start as usize..range.start as usize + bytes.len()].copy_from_slice(bytes);
    }
    let buffer = polars_buffer::Buffer::from_vec(buf);
    if runs.is_empty() {
        return Ok(vec![Part {
            buffer,
            rows: Some((0, 0)),
        }]);
    }
    Ok(runs
        .into_iter()
        .map(|(offset, len, _)| Part {
            buffer: buffer.clone(),
            rows: Some((offset, len)),
        })
        .collect())
}

fn required(
    out: &Lake,
    date: NaiveDate,
    table: &str,
    predicate: Expr,
    prune: Option<&Prune>,
) -> Result<DataFrame> {
    scan_table_pruned(out, date, table, predicate, prune)?.ok_or_else(|| {
        Error::bad_input(
            format!("{}/{table}", run_prefix(date)),
            "the published run has no such table",
        )
    })
}

/// The rows of `table` whose `column` is one of `values`, reading only the row groups whose
/// statistics can hold them. `None` when the run has no such table.
fn find(
    out: &Lake,
    date: NaiveDate,
    table: &str,
    column: &str,
    values: Vec<String>,
) -> Result<Option<DataFrame>> {
    let predicate = match values.as_slice() {
        [one] => col(column).eq(lit(one.clone())),
        _ => col(column).is_in(
            lit(Series::new("values".into(), values.clone())).implode(true),
            false,
        ),
    };
    let prune = Prune { column, values };
    scan_table_pruned(out, date, table, predicate, Some(&prune))
}

/// [`find`] in a table every run has.
fn find_required(
    out: &Lake,
    date: NaiveDate,
    table: &str,
    column: &str,
    values: Vec<String>,
) -> Result<DataFrame> {
    find(out, date, table, column, values)?.ok_or_else(|| {
        Error::bad_input(
            format!("{}/{table}", run_prefix(date)),
            "the published run has no such table",
        )
    })
}

/// Explain the person `query` belongs to, in the run of `date` (the latest when `None`).
pub fn explain(out: &Lake, date: Option<NaiveDate>, query: &Query) -> Result<Explanation> {
    let date = run_date(out, date)?;
    let day = date.format("%Y-%m-%d").to_string();
    let not_found = || {
        Error::NotFound(format!(
            "{} `{}` is not in the run of {day} (no {} in {})",
            if query.kind == "user" {
                "user"
            } else {
                "cookie"
            },
            query.id,
            if query.kind == "user" {
                "persons row"
            } else {
                "identity_map row"
            },
            out.url()
        ))
    };

    // The person.
    let person_id = if query.kind == "user" {
        let p = find_required(out, date, "persons", "user_id", vec![query.id.clone()])?;
        strs(&p, "person_id")?
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(not_found)?
    } else {
        let m = find_required(out, date, "identity_map", "anon_id", vec![query.id.clone()])?
            .sort(["segment"], Default::default())?;
        // A cut cookie belongs to the person of its latest segment (as in `anon_visitors`).
        strs(&m, "person_id")?
            .into_iter()
            .flatten()
            .last()
            .ok_or_else(not_found)?
    };
    let is_person = || col("person_id").eq(lit(person_id.clone()));
    let me = || vec![person_id.clone()];

    let p = find_required(out, date, "persons", "person_id", me())?;
    if p.height() == 0 {
        return Err(not_found());
    }
    let ua = find(out, date, "user_attribution", "person_id", me())?;
    let ua_time = |name: &str| -> Result<Option<String>> {
        Ok(match &ua {
            Some(df) if df.height() > 0 && df.column(name).is_ok() => {
                times(df, name)?.into_iter().next().flatten()
            }
            _ => None,
        })
    };
    let person = PersonInfo {
        person_id: person_id.clone(),
        user_id: strs(&p, "user_id")?.remove(0),
        anon_count: u32s(&p, "anon_count")?[0].unwrap_or(0),
        segment_count: u32s(&p, "segment_count")?[0].unwrap_or(0),
        conflict_count: u32s(&p, "conflict_count")?[0].unwrap_or(0),
        oversized: bools(&p, "oversized")?[0].unwrap_or(false),
        signup_at: ua_time("signup_at")?,
        first_purchase_at: ua_time("first_purchase_at")?,
    };

    // Segments: the person's, then every other segment of its cookies.
    let mine = find_required(out, date, "identity_map", "person_id", me())?;
    let segments = segment_rows(&mine)?;
    let cookies: BTreeSet<String> = segments.iter().map(|s| s.anon_id.clone()).collect();
    let cookie_list = Series::new(
        "cookies".into(),
        cookies.iter().cloned().collect::<Vec<_>>(),
    );
    let others = required(
        out,
        date,
        "identity_map",
        col("anon_id")
            .is_in(lit(cookie_list).implode(true), false)
            .and(col("person_id").neq(lit(person_id.clone()))),
        Some(&Prune {
            column: "anon_id",
            values: cookies.iter().cloned().collect(),
        }),
    )?;
    let other_segments = segment_rows(&others)?;
    let mut users_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in segments.iter().chain(&other_segments) {
        if let Some(u) = &s.user_id {
            users_of.entry(&s.anon_id).or_default().insert(u);
        }
    }
    let shared_cookies: Vec<String> = users_of
        .iter()
        .filter(|(_, u)| u.len() > 1)
        .map(|(a, _)| a.to_string())
        .collect();
    let refused = match scan_table(
        out,
        date,
        "refused_unions",
        is_person().or(col("other_person_id").eq(lit(person_id.clone()))),
    )? {
        Some(df) => Some(refused_rows(&df, &person_id)?),
        None => None, // a run published before the table existed
    };
    let apart = Apart {
        refused_unions: match &refused {
            Some(r) => r.len() as u32,
            None => person
                .conflict_count
                .saturating_sub(shared_cookies.len() as u32),
        },
        refused: refused.unwrap_or_default(),
        segments: other_segments,
        shared_cookies,
    };

    let touch = |json: &str, at: &str| -> Result<Option<TouchInfo>> {
        let js = strs(&p, json)?.remove(0);
        let at = if p.column(at).is_ok() {
            times(&p, at)?.remove(0)
        } else {
            None
        };
        Ok(js.map(|js| touch_info(&js, at)))
    };
    let first_touch = touch("first_touch", "first_touch_at")?;
    let last_touch = touch("last_touch", "last_touch_at")?;

    // Journey.
    let j = find_required(out, date, "journeys", "person_id", me())?
        .sort(["step"], Default::default())?;
    let journey = journey_rows(&j)?;

    // Conversions: attribution credits and export status.
    let conv: Vec<&Step> = journey.iter().filter(|s| s.is_conversion).collect();
    let a = find_required(out, date, "attribution", "person_id", me())?;
    let credits = credit_rows(&a)?;
    let st = find(
        out,
        date,
        "export_status",
        "conversion_event_id",
        conv.iter().map(|s| s.event_id.clone()).collect(),
    )?;
    let mut exports: BTreeMap<String, Vec<ExportInfo>> = BTreeMap::new();
    if let Some(st) = &st {
        let ids = strs(st, "conversion_event_id")?;
        let platforms = strs(st, "platform")?;
        let done = bools(st, "exported")?;
        let reasons = strs(st, "reason")?;
        for i in 0..st.height() {
            if let (Some(id), Some(platform)) = (&ids[i], &platforms[i]) {
                exports.entry(id.clone()).or_default().push(ExportInfo {
                    platform: platform.clone(),
                    exported: done[i].unwrap_or(false),
                    reason: reasons[i].clone(),
                });
            }
        }
    }
    let conversions = conv
        .iter()
        .map(|s| ConversionInfo {
            event_id: s.event_id.clone(),
            converted_at: s.ts.clone(),
            value: s.value,
            currency: s.currency.clone(),
            credits: credits.get(&s.event_id).cloned().unwrap_or_default(),
            exports: exports.remove(&s.event_id).unwrap_or_default(),
        })
        .collect();

    Ok(Explanation {
        run_date: day,
        query: query.clone(),
        person,
        segments,
        apart,
        first_touch,
        last_touch,
        journey,
        conversions,
        raw: None,
    })
}

/// Channel, source, medium and campaign of a published touch JSON, by the run's classifier.
pub fn touch_info(json: &str, at: Option<String>) -> TouchInfo {
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or(serde_json::Value::String(json.to_string()));
    let obj = value.as_object();
    let get = |k: &str| obj.and_then(|o| o.get(k)).and_then(|v| v.as_str());
    let known: BTreeSet<&str> = crate::read::schema::TOUCHES
        .iter()
        .map(|c| c.name)
        .collect();
    let has_extra_key = obj.is_some_and(|o| {
        o.iter()
            .any(|(k, v)| !known.contains(k.as_str()) && v.as_str().is_some_and(|s| !s.is_empty()))
    });
    let fields = TouchFields {
        utm_source: get("utm_source"),
        utm_medium: get("utm_medium"),
        utm_campaign: get("utm_campaign"),
        utm_content: get("utm_content"),
        utm_term: get("utm_term"),
        gclid: get("gclid"),
        gbraid: get("gbraid"),
        wbraid: get("wbraid"),
        msclkid: get("msclkid"),
        fbclid: get("fbclid"),
        ttclid: get("ttclid"),
        li_fat_id: get("li_fat_id"),
        referrer: get("referrer"),
        landing_url: get("landing_url"),
        has_extra_key,
    };
    let c = classify(&fields);
    TouchInfo {
        at: at.or_else(|| get("ts").map(str::to_string)),
        anon_id: get("anon_id").map(str::to_string),
        channel: c.channel.to_string(),
        source: c.source,
        medium: c.medium,
        campaign: c.campaign,
        touch: value,
    }
}

fn segment_rows(df: &DataFrame) -> Result<Vec<SegmentInfo>> {
    let df = df.sort(["anon_id", "segment"], Default::default())?;
    let anon = strs(&df, "anon_id")?;
    let seg = u32s(&df, "segment")?;
    let from = times(&df, "valid_from")?;
    let to = times(&df, "valid_to")?;
    let person = strs(&df, "person_id")?;
    let user = strs(&df, "user_id")?;
    let kind = strs(&df, "link_kind")?;
    let linked = times(&df, "linked_at")?;
    let link_ev = strs(&df, "link_event_id")?;
    let conflict = bools(&df, "conflict")?;
    Ok((0..df.height())
        .map(|i| SegmentInfo {
            anon_id: anon[i].clone().unwrap_or_default(),
            segment: seg[i].unwrap_or(0),
            valid_from: from[i].clone(),
            valid_to: to[i].clone(),
            person_id: person[i].clone(),
            user_id: user[i].clone(),
            link_kind: kind[i].clone(),
            linked_at: linked[i].clone(),
            link_event_id: link_ev[i].clone(),
            conflict: conflict[i].unwrap_or(false),
        })
        .collect())
}

/// `refused_unions` rows, each turned so that `person_id`'s side comes first.
fn refused_rows(df: &DataFrame, person_id: &str) -> Result<Vec<RefusedInfo>> {
    let df = df.sort(["at", "event_id"], Default::default())?;
    let ev = strs(&df, "event_id")?;
    let at = times(&df, "at")?;
    let kind = strs(&df, "kind")?;
    let side = |prefix: &str| -> Result<_> {
        Ok((
            strs(&df, &format!("{prefix}anon_id"))?,
            u32s(&df, &format!("{prefix}segment"))?,
            strs(&df, &format!("{prefix}person_id"))?,
            strs(&df, &format!("{prefix}user_id"))?,
        ))
    };
    let a = side("")?;
    let b = side("other_")?;
    Ok((0..df.height())
        .map(|i| {
            // This person is side a, unless only side b is.
            let (me, other) = if a.2[i].as_deref() == Some(person_id) {
                (&a, &b)
            } else {
                (&b, &a)
            };
            RefusedInfo {
                event_id: ev[i].clone(),
                at: at[i].clone(),
                kind: kind[i].clone().unwrap_or_default(),
                anon_id: me.0[i].clone(),
                segment: me.1[i],
                user_id: me.3[i].clone(),
                other_person_id: other.2[i].clone(),
                other_user_id: other.3[i].clone(),
                other_anon_id: other.0[i].clone(),
                other_segment: other.1[i],
            }
        })
        .collect())
}

fn journey_rows(df: &DataFrame) -> Result<Vec<Step>> {
    let step = u32s(df, "step")?;
    let ts = times(df, "ts")?;
    let event = strs(df, "event")?;
    let anon = strs(df, "anon_id")?;
    let raw = strs(df, "raw_user_id")?;
    let user = strs(df, "user_id")?;
    let segment = u32s(df, "segment")?;
    let backfilled = bools(df, "backfilled")?;
    let conv = bools(df, "is_conversion")?;
    let value = f64s(df, "value")?;
    let currency = strs(df, "currency")?;
    let id = strs(df, "event_id")?;
    Ok((0..df.height())
        .map(|i| Step {
            step: step[i].unwrap_or(0),
            ts: ts[i].clone(),
            event: event[i].clone(),
            anon_id: anon[i].clone(),
            raw_user_id: raw[i].clone(),
            user_id: user[i].clone(),
            segment: segment[i],
            backfilled: backfilled[i].unwrap_or(false),
            is_conversion: conv[i].unwrap_or(false),
            value: value[i],
            currency: currency[i].clone(),
            event_id: id[i].clone().unwrap_or_default(),
        })
        .collect())
}

/// Model order of the attribution table (contract §4).
const MODELS: [&str; 5] = [
    "first_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "time_decay",
];

fn credit_rows(df: &DataFrame) -> Result<BTreeMap<String, Vec<Credit>>> {
    let id = strs(df, "conversion_event_id")?;
    let model = strs(df, "model")?;
    let credit = f64s(df, "credit")?;
    let touch_at = times(df, "touch_at")?;
    let touch_us = i64s(df, "touch_at")?;
    let channel = strs(df, "channel")?;
    let source = strs(df, "source")?;
    let medium = strs(df, "medium")?;
    let campaign = strs(df, "campaign")?;
    let mut rows: Vec<(String, usize, Option<i64>, Credit)> = (0..df.height())
        .map(|i| {
            let m = model[i].clone().unwrap_or_default();
            let rank = MODELS.iter().position(|x| *x == m).unwrap_or(MODELS.len());
            (
                id[i].clone().unwrap_or_default(),
                rank,
                touch_us[i],
                Credit {
                    model: m,
                    credit: credit[i].unwrap_or(0.0),
                    touch_at: touch_at[i].clone(),
                    channel: channel[i].clone(),
                    source: source[i].clone(),
                    medium: medium[i].clone(),
                    campaign: campaign[i].clone(),
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.0, a.1, &a.3.model, a.2)
            .partial_cmp(&(&b.0, b.1, &b.3.model, b.2))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out: BTreeMap<String, Vec<Credit>> = BTreeMap::new();
    for (id, _, _, c) in rows {
        out.entry(id).or_default().push(c);
    }
    Ok(out)
}

/// The values of a column as strings (cast), nulls as `None`.
pub(crate) fn strs(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|s| s.map(str::to_string)).collect())
}

fn u32s(df: &DataFrame, name: &str) -> Result<Vec<Option<u32>>> {
    let c = df.column(name)?.cast(&DataType::UInt32)?;
    Ok(c.u32()?.iter().collect())
}

fn i64s(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().collect())
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().collect())
}

fn bools(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>> {
    Ok(df.column(name)?.bool()?.iter().collect())
}

/// A timestamp column (µs since the epoch, any zone) as RFC 3339 UTC strings.
fn times(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = df.column(name)?;
    let us = match c.dtype() {
        DataType::Datetime(TimeUnit::Milliseconds, _) => 1_000,
        DataType::Datetime(TimeUnit::Nanoseconds, _) => -1_000,
        _ => 1,
    };
    Ok(i64s(df, name)?
        .into_iter()
        .map(|v| {
            v.map(|v| match us {
                1_000 => v * 1_000,
                -1_000 => v / 1_000,
                _ => v,
            })
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
        .collect())
}

fn or_dash(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

fn touch_line(t: &Option<TouchInfo>) -> String {
    match t {
        None => "none (no counting touch)".to_string(),
        Some(t) => format!(
            "{}  {}  {} / {} / {}  on {}",
            or_dash(&t.at),
            t.channel,
            or_dash(&t.source),
            or_dash(&t.medium),
            or_dash(&t.campaign),
            or_dash(&t.anon_id)
        ),
    }
}

fn segment_line(s: &SegmentInfo, w: usize) -> String {
    let link = match (&s.link_kind, &s.linked_at, &s.link_event_id) {
        (Some(k), at, ev) => format!("{k} at {} by {}", or_dash(at), or_dash(ev)),
        (None, _, _) => "never linked (anonymous)".to_string(),
    };
    format!(
        "{:w$} #{}  {} → {}  user {}  {}{}",
        s.anon_id,
        s.segment,
        or_dash(&s.valid_from),
        s.valid_to.as_deref().unwrap_or("open"),
        or_dash(&s.user_id),
        link,
        if s.conflict { "  [conflict]" } else { "" }
    )
}

impl Explanation {
    /// The explanation as readable text for a terminal.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let p = &self.person;
        let _ = writeln!(
            o,
            "Person {} (user {}) in the run of {}",
            p.person_id,
            or_dash(&p.user_id),
            self.run_date
        );
        let _ = writeln!(
            o,
            "  {} cookies, {} segments, conflict count {}, oversized: {}",
            p.anon_count,
            p.segment_count,
            p.conflict_count,
            if p.oversized {
                "yes (held back from exports)"
            } else {
                "no"
            }
        );
        if p.signup_at.is_some() || p.first_purchase_at.is_some() {
            let _ = writeln!(
                o,
                "  signup {}, first purchase {}",
                or_dash(&p.signup_at),
                or_dash(&p.first_purchase_at)
            );
        }

        let aw = self
            .segments
            .iter()
            .chain(&self.apart.segments)
            .map(|s| s.anon_id.len())
            .max()
            .unwrap_or(0);
        let _ = writeln!(o, "\nWhy these ids are together (segment: link)");
        for s in &self.segments {
            let _ = writeln!(o, "  {}", segment_line(s, aw));
        }

        let _ = writeln!(o, "\nWhy some ids are apart");
        let a = &self.apart;
        if a.segments.is_empty() && a.shared_cookies.is_empty() && a.refused_unions == 0 {
            let _ = writeln!(o, "  nothing: no cut cookie, no refused union");
        }
        for s in &a.segments {
            let _ = writeln!(
                o,
                "  {}  → person {}",
                segment_line(s, aw),
                or_dash(&s.person_id)
            );
        }
        for c in &a.shared_cookies {
            let _ = writeln!(
                o,
                "  {c} was linked to more than one user (shared device): cut into segments"
            );
        }
        for r in &a.refused {
            let mine = match &r.anon_id {
                Some(c) => format!("{c} #{}", r.segment.unwrap_or(0)),
                None => format!("user {}", or_dash(&r.user_id)),
            };
            let theirs = match &r.other_anon_id {
                Some(c) => format!("{c} #{} of ", r.other_segment.unwrap_or(0)),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "  refused {} union at {} by {}: {mine} would have joined {theirs}person {} (user {}); two users never share a person",
                r.kind,
                or_dash(&r.at),
                or_dash(&r.event_id),
                or_dash(&r.other_person_id),
                or_dash(&r.other_user_id),
            );
        }
        let unlisted = (a.refused_unions as usize).saturating_sub(a.refused.len());
        if unlisted > 0 {
            let _ = writeln!(
                o,
                "  {unlisted} union(s) refused: they would have put two users in one person \
                 (the run has no refused_unions table to say with whom)"
            );
        }

        let _ = writeln!(o, "\nFirst touch  {}", touch_line(&self.first_touch));
        let _ = writeln!(o, "Last touch   {}", touch_line(&self.last_touch));

        let backfilled = self.journey.iter().filter(|s| s.backfilled).count();
        let _ = writeln!(
            o,
            "\nJourney ({} events, {backfilled} backfilled)",
            self.journey.len()
        );
        let w = self
            .journey
            .iter()
            .map(|s| s.event.as_deref().unwrap_or("-").len())
            .max()
            .unwrap_or(0);
        let jw = self
            .journey
            .iter()
            .map(|s| or_dash(&s.anon_id).len())
            .max()
            .unwrap_or(0);
        for s in &self.journey {
            let mut flags = Vec::new();
            if s.backfilled {
                flags.push("backfilled".to_string());
            }
            if s.is_conversion {
                flags.push(match (s.value, &s.currency) {
                    (Some(v), Some(c)) => format!("conversion {v:.2} {c}"),
                    (Some(v), None) => format!("conversion {v:.2}"),
                    _ => "conversion".to_string(),
                });
            }
            let _ = writeln!(
                o,
                "  {:>4}  {}  {:w$}  {:jw$}  user {}{}",
                s.step,
                or_dash(&s.ts),
                s.event.as_deref().unwrap_or("-"),
                or_dash(&s.anon_id),
                or_dash(&s.user_id),
                if flags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", flags.join(", "))
                }
            );
        }

        let _ = writeln!(o, "\nConversions ({})", self.conversions.len());
        for c in &self.conversions {
            let value = match (c.value, &c.currency) {
                (Some(v), Some(cur)) => format!("{v:.2} {cur}"),
                (Some(v), None) => format!("{v:.2}"),
                _ => "no value".to_string(),
            };
            let _ = writeln!(o, "  {}  {}  {value}", c.event_id, or_dash(&c.converted_at));
            for k in &c.credits {
                let _ = writeln!(
                    o,
                    "    {:<16} {:>5.2}  {}  {} / {} / {}  touch {}",
                    k.model,
                    k.credit,
                    or_dash(&k.channel),
                    or_dash(&k.source),
                    or_dash(&k.medium),
                    or_dash(&k.campaign),
                    or_dash(&k.touch_at)
                );
            }
            if c.exports.is_empty() {
                let _ = writeln!(o, "    exports: unknown (the run has no export_status)");
            }
            for e in &c.exports {
                let _ = writeln!(
                    o,
                    "    {:<16} {}",
                    e.platform,
                    if e.exported {
                        "exported".to_string()
                    } else {
                        format!("not exported: {}", or_dash(&e.reason))
                    }
                );
            }
        }
        if let Some(r) = &self.raw {
            let _ = writeln!(
                o,
                "\nRaw rows not in the journey ({}: {} files read, {} rows of these ids, {} in the journey)",
                r.input, r.files, r.rows_found, r.in_journey
            );
            if r.rows.is_empty() {
                let _ = writeln!(o, "  none");
            }
            for row in &r.rows {
                let why = match row.outcome.as_str() {
                    "quarantined" => format!("quarantined: {}", or_dash(&row.reason)),
                    "deduplicated" => {
                        format!("repeated delivery, kept {}", or_dash(&row.kept_copy))
                    }
                    "other_person" => {
                        format!("in the journey of person {}", or_dash(&row.other_person_id))
                    }
                    other => other.to_string(),
                };
                let _ = writeln!(
                    o,
                    "  {} row {}  {}  {}  {}  anon {}  user {}  {why}",
                    row.file,
                    row.row,
                    or_dash(&row.event_id),
                    or_dash(&row.ts),
                    row.event.as_deref().unwrap_or(row.source.as_str()),
                    or_dash(&row.anon_id),
                    or_dash(&row.user_id),
                );
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::parquet_bytes_grouped;
    use crate::storage::Access;

    /// A `journeys`-like file sorted by person in row groups of 100 rows: 50 persons of 60
    /// rows each, so a person spans one or two row groups.
    /// `n` values that are hard to compress, so a file is large next to its footer (as
    /// journeys files are).
    fn payload(n: usize) -> Vec<String> {
        let mut x = 88172645463325252u64;
        (0..n)
            .map(|_| {
                (0..16)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("{x:016x}")
                    })
                    .collect()
            })
            .collect()
    }

    fn lake_with_sorted_file() -> (Lake, NaiveDate, u64) {
        let date = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let n = 3_000;
        let person: Vec<String> = (0..n).map(|i| format!("p{:03}", i / 60)).collect();
        let step: Vec<u32> = (0..n).map(|i| (i % 60) as u32 + 1).collect();
        let payload = payload(n);
        let df = DataFrame::new(
            n,
            vec![
                Column::new("person_id".into(), person),
                Column::new("step".into(), step),
                Column::new("payload".into(), payload),
            ],
        )
        .unwrap();
        let lake = Lake::open("memory://", Access::Write).unwrap();
        let bytes = parquet_bytes_grouped(&df, Some(100)).unwrap();
        let size = bytes.len() as u64;
        lake.put(
            "runs/2026-11-21/journeys/dt=2026-11-20/part-00000.parquet",
            bytes,
        )
        .unwrap();
        (lake, date, size)
    }

    /// A `persons`-like file: anonymous persons first (`user_id` null in their row groups,
    /// which then have no min/max statistics), then users, whose `user_id` is their person_id.
    #[test]
    fn row_groups_whose_id_column_is_all_null_are_not_fetched() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let n = 3_000;
        let person: Vec<String> = (0..n)
            .map(|i| {
                if i < 2_000 {
                    format!("a{i:04}")
                } else {
                    format!("u{i:04}")
                }
            })
            .collect();
        let user: Vec<Option<String>> = person
            .iter()
            .map(|p| p.starts_with('u').then(|| p.clone()))
            .collect();
        let payload = payload(n);
        let df = DataFrame::new(
            n,
            vec![
                Column::new("person_id".into(), person),
                Column::new("user_id".into(), user),
                Column::new("payload".into(), payload),
            ],
        )
        .unwrap();
        let lake = Lake::open("memory://", Access::Write).unwrap();
        let bytes = parquet_bytes_grouped(&df, Some(100)).unwrap();
        let size = bytes.len() as u64;
        lake.put("runs/2026-11-21/persons/part-00000.parquet", bytes)
            .unwrap();
        let before = lake.bytes_fetched();
        let ranged = find(&lake, date, "persons", "user_id", vec!["u2500".into()])
            .unwrap()
            .unwrap();
        let fetched = lake.bytes_fetched() - before;
        let whole = scan_table(&lake, date, "persons", col("user_id").eq(lit("u2500")))
            .unwrap()
            .unwrap();
        assert_eq!(ranged.height(), 1);
        assert!(ranged.equals_missing(&whole));
        // The footer request (the last 64 KiB) and one row group of 30: the 20 all-null row
        // groups are skipped (fetched, they would be two thirds of the file).
        assert!(fetched * 4 < size, "fetched {fetched} of {size} bytes");
    }

    #[test]
    fn ranged_reads_fetch_only_the_row_groups_of_the_person_and_agree_with_whole_files() {
        let (lake, date, size) = lake_with_sorted_file();
        let mut fetched = Vec::new();
        for p in 0..50 {
            let id = format!("p{p:03}");
            let pred = || col("person_id").eq(lit(id.clone()));
            let whole = scan_table(&lake, date, "journeys", pred())
                .unwrap()
                .unwrap();
            let before = lake.bytes_fetched();
            let ranged = find(&lake, date, "journeys", "person_id", vec![id.clone()])
                .unwrap()
                .unwrap();
            fetched.push(lake.bytes_fetched() - before);
            assert_eq!(ranged.height(), 60, "{id}");
            assert!(
                ranged.equals_missing(&whole),
                "{id}: {ranged:?} vs {whole:?}"
            );
        }
        // A person spans at most 2 of 30 row groups: with the footer, far less than the file.
        let max = *fetched.iter().max().unwrap();
        assert!(max * 4 < size, "fetched {max} of {size} bytes");

        // Several values, in row groups far apart: two runs of row groups, in file order.
        let ids = vec!["p001".to_string(), "p047".to_string()];
        let ranged = find(&lake, date, "journeys", "person_id", ids.clone())
            .unwrap()
            .unwrap();
        let whole = scan_table(
            &lake,
            date,
            "journeys",
            col("person_id").is_in(lit(Series::new("v".into(), ids)).implode(true), false),
        )
        .unwrap()
        .unwrap();
        assert!(ranged.equals_missing(&whole));
        assert_eq!(ranged.height(), 120);

        // An id no row group can hold: the footer only, and no rows.
        let before = lake.bytes_fetched();
        let none = find(&lake, date, "journeys", "person_id", vec!["zzz".into()])
            .unwrap()
            .unwrap();
        assert_eq!(none.height(), 0);
        assert_eq!(none.width(), 3);
        assert!(lake.bytes_fetched() - before < size / 4);
    }
}
