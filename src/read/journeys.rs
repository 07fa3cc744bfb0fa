//! The columns of `journeys` that the run does not hold in memory for every event
//! ([`JOURNEY_REREAD_COLS`]): read again from the raw event files, one day of `journeys` at a
//! time, when that day is written.
//!
//! The read stage keeps, for all events, only what identity, stitch and the exports use (ids
//! and names as codes, times, the file and row each event came from). `raw_user_id`,
//! `session_id`, `value`, `currency` and `order_id` are only shown in `journeys`; at 10M
//! events they were about a gigabyte held from the first read to the last write. `event_id`
//! is held only until identity is done (about 330 MB at 10M). Each is a pure function
//! of its own row (the file's value, personal ids pseudonymized, `event_id` trimmed and
//! runaway values nulled exactly as the read stage does), so reading it again gives the same
//! value the first read gave.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use polars::prelude::*;

use super::schema::{self, ColumnSpec, ROW_COL};
use super::{null_values_too_long, privacy, FIDX_COL, JOURNEY_REREAD_COLS, MAX_ID_CHARS};
use crate::error::{Error, Result};
use crate::storage::Lake;

/// The event files a run read, `(path, dt)` in read order (`_fidx` is an index into it), and
/// the job's column renames (`(file column, contract column)`).
#[derive(Debug, Clone, Default)]
pub struct EventFiles {
    /// `(path, dt)` of each file, indexed by `_fidx`.
    pub files: Vec<(String, String)>,
    /// The job's renames of `value` and `currency`.
    pub renames: Vec<(String, &'static str)>,
}

/// The raw columns read again ([`JOURNEY_REREAD_COLS`] under their file names).
const SPEC_NAMES: [&str; 6] = [
    "event_id",
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
    files: &'a EventFiles,
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
        files: &'a EventFiles,
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
                let stacked = polars::functions::concat_df_diagonal(&pieces)?;
                drop(pieces);
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
        let df = self.clean(df)?;
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
        let (df, _) = privacy::pseudonymize_ids(df, super::EVENT_PSEUDONYMIZED, MAX_ID_CHARS)?;
        let df = df.lazy().with_column(super::strip_event_id()).collect()?;
        let (df, _) = null_values_too_long(df, super::EVENT_IDS)?;
        let mut df = { df }.select(SPEC_NAMES)?;
        df.rename("user_id", "raw_user_id".into())?;
        Ok(df)
    }

    /// No rows, the columns' types.
    fn empty(&self) -> DataFrame {
        let cols = JOURNEY_REREAD_COLS
            .iter()
            .map(|&c| {
                let dtype = if c == "value" {
                    DataType::Float64
                } else {
                    DataType::String
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
        let files = EventFiles {
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
