//! Raw columns the run does not hold in memory for every row, read again from the raw files
//! for the rows that show them:
//!
//! - the columns of `journeys` ([`JOURNEY_REREAD_COLS`]), one day of `journeys` at a time,
//!   when that day is written ([`JourneyColumns`]);
//! - the `event_id` of the events identity names (each segment's link, each refused union:
//!   [`event_ids`]);
//! - the touch columns only the touch JSON and the exports show
//!   ([`TOUCH_REREAD_COLS`](super::TOUCH_REREAD_COLS)), for the touches they show
//!   ([`touch_columns`]).
//!
//! The read stage keeps, for all events, only what identity, stitch and the exports use (ids
//! and names as codes, times, the file and row each event came from). `raw_user_id`,
//! `session_id`, `value`, `currency` and `order_id` are only shown in `journeys`; at 10M
//! events they were about a gigabyte held from the first read to the last write, and
//! `event_id` about 330 MB more. Each value is a pure function of its own row (the file's
//! value, personal ids pseudonymized, `event_id` trimmed, runaway values nulled, touch values
//! redacted, exactly as the read stage does), so reading it again gives the same value the
//! first read gave.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use polars::prelude::*;

use super::schema::{self, ColumnSpec, ROW_COL};
use super::{null_values_too_long, privacy, FIDX_COL, JOURNEY_REREAD_COLS, MAX_ID_CHARS};
use crate::error::{Error, Result};
use crate::storage::Lake;

/// The files a run read of one source (events, touches), `(path, dt)` in read order (`_fidx`
/// is an index into it), and the job's column renames (`(file column, contract column)`).
#[derive(Debug, Clone, Default)]
pub struct SourceFiles {
    /// `(path, dt)` of each file, indexed by `_fidx`.
    pub files: Vec<(String, String)>,
    /// The job's renames (events: of `value` and `currency`).
    pub renames: Vec<(String, &'static str)>,
}

/// The raw columns read again ([`JOURNEY_REREAD_COLS`] under their file names).
const SPEC_NAMES: [&str; 7] = [
    "event_id",
    "seq",
    "user_id",
    "value",
    "currency",
    "order_id",
    "session_id",
];

/// Reads the [`JOURNEY_REREAD_COLS`] of given events from the raw files, keeping each file's
/// columns only until the last day that needs it has been written.
pub struct JourneyColumns<'a> {
    lake: &'a Lake,
    files: &'a SourceFiles,
    spec: Vec<ColumnSpec>,
    /// Decoded columns of the files in use.
    cache: Mutex<HashMap<u32, Arc<DataFrame>>>,
    /// For each file, how many of the days still to be written need it.
    uses: Vec<AtomicUsize>,
}

impl<'a> JourneyColumns<'a> {
    /// A reader for events of `files` under `lake`. `fidx` is the `_fidx` column of the
    /// events and `days` the rows of each day of `journeys` to be written (so a file's columns
    /// are dropped once the last day that needs it is written).
    pub fn new(
        lake: &'a Lake,
        files: &'a SourceFiles,
        fidx: &UInt32Chunked,
        days: &[&IdxCa],
    ) -> Result<Self> {
        let uses: Vec<AtomicUsize> = (0..files.files.len())
            .map(|_| AtomicUsize::new(0))
            .collect();
        for rows in days {
            for f in distinct(&fidx.take(*rows)?) {
                if let Some(u) = uses.get(f as usize) {
                    u.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let spec = schema::EVENTS
            .iter()
            .filter(|c| SPEC_NAMES.contains(&c.name))
            .copied()
            .collect();
        Ok(JourneyColumns {
            lake,
            files,
            spec,
            cache: Mutex::new(HashMap::new()),
            uses,
        })
    }

    /// `part` (rows of events with `_fidx` and `_row`) with the [`JOURNEY_REREAD_COLS`] of its
    /// rows added, read from the raw files. Call once per day listed in [`JourneyColumns::new`].
    pub fn complete(&self, mut part: DataFrame) -> Result<DataFrame> {
        let started = std::time::Instant::now();
        let fidx = part.column(FIDX_COL)?.u32()?.clone();
        let rows = part.column(ROW_COL)?.u32()?.clone();
        let used = distinct(&fidx);
        // Each file's rows of `part` taken from it, then the pieces put back in `part`'s order
        // (a day's events come almost all from its own partition: usually one or two files).
        let columns = match used.as_slice() {
            [] => self.empty(),
            [f] => self.file(*f)?.take(&rows.with_name("idx".into()))?,
            _ => {
                let mut pieces = Vec::with_capacity(used.len());
                let mut order: Vec<IdxSize> = Vec::with_capacity(part.height());
                for &f in &used {
                    let mut take: Vec<IdxSize> = Vec::new();
                    for (i, (pf, r)) in fidx
                        .into_no_null_iter()
                        .zip(rows.into_no_null_iter())
                        .enumerate()
                    {
                        if pf == f {
                            take.push(r as IdxSize);
                            order.push(i as IdxSize);
                        }
                    }
                    pieces.push(self.file(f)?.take(&IdxCa::from_vec("idx".into(), take))?);
                }
                let mut stacked = polars::functions::concat_df_diagonal(&pieces)?;
                drop(pieces);
                // One chunk per column (views only), so that the gather below copies views,
                // not strings.
                stacked.rechunk_mut();
                // Row `order[k]` of `part` is row `k` of the stack: invert.
                let mut back = vec![0 as IdxSize; order.len()];
                for (k, &i) in order.iter().enumerate() {
                    back[i as usize] = k as IdxSize;
                }
                stacked.take(&IdxCa::from_vec("idx".into(), back))?
            }
        };
        for f in used {
            self.release(f);
        }
        tracing::debug!(
            rows = part.height(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "journeys: columns read again"
        );
        for c in JOURNEY_REREAD_COLS {
            part.with_column(columns.column(c)?.clone())?;
        }
        Ok(part)
    }

    /// The columns of file `f`, decoded once for all the days that need it.
    fn file(&self, f: u32) -> Result<Arc<DataFrame>> {
        if let Some(df) = self.cache.lock().map_err(poisoned)?.get(&f) {
            return Ok(df.clone());
        }
        let (path, dt) = self
            .files
            .files
            .get(f as usize)
            .ok_or_else(|| Error::Internal(format!("no event file number {f}")))?;
        let df = schema::read_file(
            self.lake.get(path)?,
            path,
            dt,
            &self.spec,
            false,
            &self.files.renames,
        )?;
        let mut df = self.clean(df)?;
        // One chunk per column (the file's row groups' views put together; the text buffers
        // are shared, not copied): polars gathers strings from one chunk by copying their
        // views, from several by copying every string into new buffers. The days' columns
        // are written and dropped right after, so holding views into the file's buffers
        // costs nothing.
        df.rechunk_mut();
        tracing::debug!(file = %path, rows = df.height(), "journeys: file read again");
        let df = Arc::new(df);
        self.cache
            .lock()
            .map_err(poisoned)?
            .entry(f)
            .or_insert_with(|| df.clone());
        Ok(df)
    }

    /// The read stage's row-local cleaning of these columns, in the same order: personal ids
    /// pseudonymized, `event_id` trimmed, then runaway values nulled; `user_id` as read is
    /// `raw_user_id`.
    fn clean(&self, df: DataFrame) -> Result<DataFrame> {
        let mut df = clean_again(df)?.select(SPEC_NAMES)?;
        df.rename("user_id", "raw_user_id".into())?;
        Ok(df)
    }

    /// No rows, the columns' types.
    fn empty(&self) -> DataFrame {
        let cols = JOURNEY_REREAD_COLS
            .iter()
            .map(|&c| {
                let dtype = match c {
                    "value" => DataType::Float64,
                    "seq" => DataType::Int64,
                    _ => DataType::String,
                };
                Column::new_empty(c.into(), &dtype)
            })
            .collect();
        DataFrame::new(0, cols).expect("columns of equal length")
    }

    /// One day that needed file `f` is written: drop its columns after the last.
    fn release(&self, f: u32) {
        let Some(u) = self.uses.get(f as usize) else {
            return;
        };
        let before = u
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0);
        if before <= 1 {
            if let Ok(mut cache) = self.cache.lock() {
                cache.remove(&f);
            }
        }
    }
}

/// The read stage's row-local cleaning of event columns read again, in the same order:
/// personal ids pseudonymized, `event_id` trimmed, then runaway values nulled.
fn clean_again(df: DataFrame) -> Result<DataFrame> {
    let (df, _) = privacy::pseudonymize_ids(df, super::EVENT_PSEUDONYMIZED, MAX_ID_CHARS)?;
    let df = super::trim_event_ids(df)?;
    let (df, _) = null_values_too_long(df, super::EVENT_IDS)?;
    Ok(df)
}

/// The `event_id` of events `wanted` (rows of `events`, which has `_fidx` and `_row`; `NONE`
/// gives null), in their order, read again from the raw files `files` under `lake` and
/// cleaned as the read stage cleans them.
pub fn event_ids(
    lake: &Lake,
    files: &SourceFiles,
    events: &DataFrame,
    wanted: &[u32],
) -> Result<Series> {
    let spec = specs(schema::EVENTS, &["event_id"]);
    let df = read_again(lake, files, &spec, events, wanted, clean_again)?;
    Ok(df.column("event_id")?.as_materialized_series().clone())
}

/// The contract columns `names` of the touches at `at` (a frame of their `_fidx` and `_row`),
/// in its order, read again from the raw touch files `files` under `lake` and redacted as the
/// read stage redacts them.
pub fn touch_columns(
    lake: &Lake,
    files: &SourceFiles,
    at: &DataFrame,
    names: &[&str],
) -> Result<DataFrame> {
    let spec = specs(schema::TOUCHES, names);
    let all: Vec<u32> = (0..at.height() as u32).collect();
    let (text, opaque) = super::touch_redaction(&[]);
    read_again(lake, files, &spec, at, &all, |df| {
        Ok(privacy::redact_columns(df, &text, &opaque)?.0)
    })
}

/// The columns of `schema` named in `names`.
fn specs(schema: &[ColumnSpec], names: &[&str]) -> Vec<ColumnSpec> {
    schema
        .iter()
        .filter(|c| names.contains(&c.name))
        .copied()
        .collect()
}

/// Columns `spec` of the rows `wanted` of `held` (which has `_fidx` and `_row`: where each of
/// its rows was read; `NONE` gives a null row), in the order of `wanted`, read again from the
/// files `files` under `lake` and passed through `clean` (the read stage's row-local cleaning
/// of those columns). Only the files that hold a wanted row are read, only those columns, a
/// few files at a time; each file's values are copied out before the next is read.
fn read_again(
    lake: &Lake,
    files: &SourceFiles,
    spec: &[ColumnSpec],
    held: &DataFrame,
    wanted: &[u32],
    clean: impl Fn(DataFrame) -> Result<DataFrame> + Sync,
) -> Result<DataFrame> {
    let started = std::time::Instant::now();
    let fidx = held.column(FIDX_COL)?.u32()?;
    let rows = held.column(ROW_COL)?.u32()?;
    // For each file, (position in `wanted`, row of the file).
    let mut by_file: std::collections::BTreeMap<u32, Vec<(usize, IdxSize)>> = Default::default();
    for (k, &e) in wanted.iter().enumerate() {
        if e == crate::codes::NONE {
            continue;
        }
        let (Some(f), Some(r)) = (fidx.get(e as usize), rows.get(e as usize)) else {
            return Err(Error::Internal(format!("no row {e} to read again")));
        };
        by_file.entry(f).or_default().push((k, r as IdxSize));
    }
    let by_file: Vec<(u32, Vec<(usize, IdxSize)>)> = by_file.into_iter().collect();
    let names: Vec<&str> = spec.iter().map(|c| c.name).collect();
    let found = crate::parallel::map(&by_file, 4, |_, (f, picks)| {
        let (path, dt) = files
            .files
            .get(*f as usize)
            .ok_or_else(|| Error::Internal(format!("no file number {f} to read again")))?;
        let df = schema::read_file(lake.get(path)?, path, dt, spec, false, &files.renames)?;
        let idx = IdxCa::from_vec("idx".into(), picks.iter().map(|p| p.1).collect());
        // The rows wanted, copied out (so the file's columns are freed), then cleaned: the
        // cleaning is row by row, so only the rows wanted need it.
        let df = super::take_compact(df.select(names.iter().copied())?, &idx)?;
        clean(df)
    })?;
    // The files' rows one after another, then put in the order of `wanted`.
    let mut at = vec![crate::codes::NONE; wanted.len()];
    let mut stacked: Option<DataFrame> = None;
    for ((_, picks), df) in by_file.iter().zip(found) {
        let offset = stacked.as_ref().map_or(0, |s| s.height() as u32);
        for (&(k, _), i) in picks.iter().zip(offset..) {
            at[k] = i;
        }
        match stacked.as_mut() {
            Some(s) => {
                s.vstack_mut_owned(df)?;
            }
            None => stacked = Some(df),
        }
    }
    let Some(mut stacked) = stacked else {
        let columns = spec
            .iter()
            .map(|c| Column::full_null(c.name.into(), wanted.len(), &c.kind.canonical()))
            .collect();
        return Ok(DataFrame::new(wanted.len(), columns)?);
    };
    // Views only: the files' text buffers are shared, not copied.
    stacked.rechunk_mut();
    let columns = stacked
        .columns()
        .iter()
        .map(|c| {
            let name = c.name().to_string();
            Ok(crate::codes::gather(c.as_materialized_series(), &at, &name)?.into_column())
        })
        .collect::<Result<Vec<_>>>()?;
    tracing::debug!(
        columns = ?names,
        rows = wanted.len(),
        files = by_file.len(),
        elapsed_s = started.elapsed().as_secs_f64(),
        "columns read again"
    );
    Ok(DataFrame::new(wanted.len(), columns)?)
}

fn distinct(fidx: &UInt32Chunked) -> Vec<u32> {
    let mut seen: Vec<u32> = fidx.into_no_null_iter().collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Internal("a journeys writer thread panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Access;

    fn put_file(lake: &Lake, path: &str, mut df: DataFrame) {
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
        lake.put(path, buf.into()).unwrap();
    }

    fn strs(df: &DataFrame, c: &str) -> Vec<Option<String>> {
        crate::explain::strs(df, c).unwrap()
    }

    /// Days whose events come from two files (late events sit in the next partition): each
    /// row gets its own file's values, cleaned as the read stage cleans them, in the day's row
    /// order; a file's columns are kept until the last day that needs them is written.
    #[test]
    fn a_day_drawn_from_two_files_gets_each_rows_own_values() {
        let lake = Lake::open("memory://", Access::Write).unwrap();
        let (a, b) = (
            "raw/events/dt=2026-11-20/a.parquet",
            "raw/events/dt=2026-11-21/b.parquet",
        );
        put_file(
            &lake,
            a,
            df!(
                "event_id" => ["e1", " e2 ", "e3"],
                "user_id" => [Some("u1"), Some("Alice@Example.com"), None],
                "value" => [Some(1.0), None, Some(3.0)],
                "currency" => [Some("EUR"), None, Some("USD")],
                "order_id" => [Some("o1"), None, None],
                "session_id" => ["s1", "s2", "s3"],
            )
            .unwrap(),
        );
        put_file(
            &lake,
            b,
            df!(
                "event_id" => ["e9", "e8"],
                "user_id" => [Some("u9"), None],
                "value" => [Some(9.0), None],
                "currency" => [None, Some("GBP")],
                "order_id" => [None, Some("o9")],
                "session_id" => ["s9", "s8"],
            )
            .unwrap(),
        );
        let files = SourceFiles {
            files: vec![
                (a.to_string(), "2026-11-20".to_string()),
                (b.to_string(), "2026-11-21".to_string()),
            ],
            renames: Vec::new(),
        };
        // Five events: file a rows 0-2, file b rows 0-1. Day 1 takes b0, a0, a1; day 2 a2, b1.
        let fidx = UInt32Chunked::from_vec(FIDX_COL.into(), vec![0, 0, 0, 1, 1]);
        let row = [0u32, 1, 2, 0, 1];
        let day1 = IdxCa::from_vec("d".into(), vec![3, 0, 1]);
        let day2 = IdxCa::from_vec("d".into(), vec![2, 4]);
        let reader = JourneyColumns::new(&lake, &files, &fidx, &[&day1, &day2]).unwrap();
        let part = |rows: &IdxCa| {
            let idx: Vec<usize> = rows.into_no_null_iter().map(|i| i as usize).collect();
            df!(
                FIDX_COL => idx.iter().map(|&i| fidx.get(i).unwrap()).collect::<Vec<u32>>(),
                ROW_COL => idx.iter().map(|&i| row[i]).collect::<Vec<u32>>(),
            )
            .unwrap()
        };

        let first = reader.complete(part(&day1)).unwrap();
        let alice = privacy::pseudonymize_ids(
            df!("user_id" => ["Alice@Example.com"]).unwrap(),
            &["user_id"],
            MAX_ID_CHARS,
        )
        .unwrap()
        .0;
        let alice = strs(&alice, "user_id")[0].clone();
        assert_ne!(alice.as_deref(), Some("Alice@Example.com"));
        let some = |v: &str| Some(v.to_string());
        assert_eq!(strs(&first, "raw_user_id"), [some("u9"), some("u1"), alice]);
        // Trimmed, as the read stage trims it before anything reads it.
        assert_eq!(
            strs(&first, "event_id"),
            [some("e9"), some("e1"), some("e2")]
        );
        assert_eq!(
            strs(&first, "session_id"),
            [some("s9"), some("s1"), some("s2")]
        );
        assert_eq!(strs(&first, "currency"), [None, some("EUR"), None]);
        assert_eq!(strs(&first, "order_id"), [None, some("o1"), None]);
        let value: Vec<Option<f64>> = first
            .column("value")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(value, [Some(9.0), Some(1.0), None]);
        assert_eq!(
            reader.cache.lock().unwrap().len(),
            2,
            "both files are needed again"
        );

        let second = reader.complete(part(&day2)).unwrap();
        assert_eq!(strs(&second, "session_id"), [some("s3"), some("s8")]);
        assert_eq!(strs(&second, "currency"), [some("USD"), some("GBP")]);
        assert_eq!(strs(&second, "order_id"), [None, some("o9")]);
        assert!(
            reader.cache.lock().unwrap().is_empty(),
            "no day needs them any more"
        );
    }
}
