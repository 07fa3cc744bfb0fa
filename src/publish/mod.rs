//! Stage 6, **publish**: tables, manifest, `_SUCCESS`, `latest` (contract §4).
//!
//! A run is written under `runs/<date>/`. Anything left there by an earlier attempt is removed
//! first (the `_SUCCESS` marker before everything else), so a rerun reproduces the date. The
//! marker is written last, with create-only semantics, then `latest` moves forward. A reader
//! that sees no `_SUCCESS` must treat the folder as not published.

mod encode;
pub mod manifest;

pub use encode::Coded;

use std::borrow::Cow;
use std::io::Cursor;

use bytes::Bytes;
use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::read::FileStat;
use crate::stitch::DayRows;
use crate::storage::Lake;
pub use manifest::{ClickConversionsStat, ExportStat, Manifest, TableStat};

use crate::export::ledger::{Ledger, LEDGER_PATH};
use crate::export::{batch_file_name, Exports};

/// `runs/<date>` for a run date.
pub fn run_prefix(date: NaiveDate) -> String {
    format!("runs/{}", date.format("%Y-%m-%d"))
}

/// Encode a frame as one Parquet file (zstd, statistics on).
pub fn parquet_bytes(df: &DataFrame) -> Result<Bytes> {
    parquet_bytes_grouped(df, None)
}

/// Columns of free text, written with null counts but no min/max statistics: the touch JSON
/// of `persons`, `anon_visitors` and `user_attribution`. No reader filters a JSON document by
/// range; their min and max were whole documents (about 400 bytes each, in every page header
/// and row group of the footer), found by comparing every value: about 1.5 % of a 10M-event
/// run's CPU.
pub const TEXT_COLUMNS: [&str; 2] = ["first_touch", "last_touch"];

/// Rows per row group of every table file. `journeys` partitions are sorted by `person_id`,
/// `persons` and `user_attribution` by `person_id` (= `user_id` for a user), `identity_map`
/// and `anon_visitors` by `anon_id`, so the row groups' min/max statistics let a reader
/// looking for one person (`explain`, DuckDB) fetch and decode only the few row groups that
/// can hold it.
pub const ROW_GROUP_ROWS: usize = 16_384;

/// Rows per row group of [`parquet_bytes`] (polars' default).
const DEFAULT_GROUP_ROWS: usize = 512 * 512;

/// Encode a frame as one Parquet file (zstd, statistics on), with at most `row_group_rows`
/// rows per row group (polars' default, 262,144, when `None`).
pub fn parquet_bytes_grouped(df: &DataFrame, row_group_rows: Option<usize>) -> Result<Bytes> {
    let mut buf = Cursor::new(Vec::new());
    encode_table(
        df,
        &[],
        row_group_rows.unwrap_or(DEFAULT_GROUP_ROWS),
        &mut buf,
    )?;
    Ok(Bytes::from(buf.into_inner()))
}

/// Encode `df` into `w` as one Parquet file in row groups of at most `group_rows` rows
/// ([`encode::TableEncoder`]); the file's size. The columns named in `coded` are codes,
/// written as the strings they point to ([`Coded`]).
///
/// A string column gathered from a shared series (the tables' touch JSON) is encoded as it is:
/// its values point into buffers far bigger than themselves, but the encoder reads values
/// through their views and sizes pages by the values' bytes, so the file is byte for byte the
/// file of a compact copy (a test holds this). Copying each row group compact first cost about
/// 0.4 s of the stitch stage at 10M events.
fn encode_table<W: std::io::Write>(
    df: &DataFrame,
    coded: &[Coded<'_>],
    group_rows: usize,
    w: W,
) -> Result<u64> {
    let mut encoder = encode::TableEncoder::new(w, df.schema(), coded)?;
    let mut offset = 0usize;
    while offset < df.height() {
        let n = group_rows.min(df.height() - offset);
        let mut group = df.slice(offset as i64, n);
        group.rechunk_mut();
        encoder.write_group(&group)?;
        offset += n;
    }
    encoder.finish()
}

/// Remove whatever an earlier attempt left under the run's folder: marker first.
pub fn clear_run(out: &Lake, date: NaiveDate) -> Result<()> {
    let prefix = run_prefix(date);
    out.delete(&format!("{prefix}/_SUCCESS"))?;
    out.delete_prefix(&prefix)?;
    Ok(())
}

/// Write one table as `runs/<date>/<name>/part-00000.parquet`.
pub fn write_table(out: &Lake, date: NaiveDate, name: &str, df: &DataFrame) -> Result<TableStat> {
    let mut stats = write_tables(out, date, &[(name, df, None)])?;
    Ok(stats.remove(0))
}

/// Write a table partitioned by day as `<name>/dt=YYYY-MM-DD/part-00000.parquet` (the day
/// lives in the folder name only): each of `days` is one file of its rows of `df`, in their
/// order. Only the days being encoded are copied. An empty table still gets one (empty)
/// file, under the run date's partition, so a reader's glob never fails. Files are written in
/// row groups of [`ROW_GROUP_ROWS`]; order each day's rows by the key readers filter on.
pub fn write_partitioned(
    out: &Lake,
    date: NaiveDate,
    name: &str,
    df: &DataFrame,
    days: Partition<'_>,
) -> Result<TableStat> {
    let mut stats = write_tables(out, date, &[(name, df, Some(days))])?;
    Ok(stats.remove(0))
}

/// How a partitioned table is written: its days, and what turns a day's rows of the frame into
/// the file's columns (`journeys` reads some columns again from the raw lake; see
/// [`crate::stitch::journey_day`]). Days are encoded in the order given.
#[derive(Clone, Copy)]
pub struct Partition<'a> {
    /// The rows of each file.
    pub days: &'a [DayRows],
    /// Applied to each day's rows (and to the empty frame of an empty table) before writing.
    pub finish: Option<&'a (dyn Fn(DataFrame) -> Result<DataFrame> + Sync)>,
    /// The columns of the finished frame that are codes, written as the strings they point to.
    pub coded: &'a [Coded<'a>],
}

/// A table to write: its name, its rows, and its partition by day (`None`: one file).
pub type TableToWrite<'a> = (&'a str, &'a DataFrame, Option<Partition<'a>>);

/// One file to write: the rows of a table it holds.
enum FileRows<'a> {
    /// The whole table.
    Whole(&'a DataFrame),
    /// Some rows of a partitioned table, in [`ROW_GROUP_ROWS`] row groups.
    Rows(&'a DataFrame, &'a IdxCa, Partition<'a>),
    /// No rows (the one file of an empty partitioned table).
    Empty(&'a DataFrame, Partition<'a>),
}

/// Write tables: each `(name, frame, None)` as one file like [`write_table`], each
/// `(name, frame, Some(partition))` partitioned like [`write_partitioned`]. The files are
/// encoded and written by several threads at once (Parquet compression is single-threaded per
/// file); the stats come back in the order of `tables`.
pub fn write_tables(
    out: &Lake,
    date: NaiveDate,
    tables: &[TableToWrite<'_>],
) -> Result<Vec<TableStat>> {
    let prefix = run_prefix(date);
    let mut jobs: Vec<(usize, String, FileRows<'_>)> = Vec::new();
    for (t, &(name, df, days)) in tables.iter().enumerate() {
        match days {
            None => jobs.push((
                t,
                format!("{prefix}/{name}/part-00000.parquet"),
                FileRows::Whole(df),
            )),
            Some(p) if df.height() == 0 || p.days.is_empty() => jobs.push((
                t,
                format!(
                    "{prefix}/{name}/dt={}/part-00000.parquet",
                    date.format("%Y-%m-%d")
                ),
                FileRows::Empty(df, p),
            )),
            Some(p) => jobs.extend(p.days.iter().map(|d| {
                (
                    t,
                    format!("{prefix}/{name}/dt={}/part-00000.parquet", d.dt),
                    FileRows::Rows(df, &d.rows, p),
                )
            })),
        }
    }
    let finish = |df: DataFrame, p: &Partition<'_>| match p.finish {
        Some(f) => f(df),
        None => Ok(df),
    };
    let write = |path: &str, rows: &FileRows<'_>| -> Result<u64> {
        let started = std::time::Instant::now();
        let (part, coded) = match rows {
            FileRows::Whole(df) => (Cow::Borrowed(*df), &[][..]),
            FileRows::Rows(df, idx, p) => (Cow::Owned(finish(df.take(idx)?, p)?), p.coded),
            FileRows::Empty(df, p) => (Cow::Owned(finish(df.clear(), p)?), p.coded),
        };
        let prepared = started.elapsed().as_secs_f64();
        // Gathered strings (the touch JSON) are encoded as they are, never copied compact.
        // The file goes to the store as it is encoded (the biggest are hundreds of megabytes).
        // A failed upload surfaces in the encoder as an I/O error: the store's own error (which
        // names the object and its answer) is reported instead.
        let mut file = std::io::BufWriter::with_capacity(1 << 20, out.writer(path));
        let encoded = encode_table(&part, coded, ROW_GROUP_ROWS, &mut file);
        let upload_error = |w: &mut crate::storage::ObjectWriter, e: Error| {
            w.take_failure().map_or(e, Error::Storage)
        };
        if let Err(e) = encoded {
            return Err(upload_error(file.get_mut(), e));
        }
        let writer = match file.into_inner() {
            Ok(w) => w,
            Err(e) => {
                let (e, mut w) = e.into_parts();
                return Err(upload_error(w.get_mut(), e.into()));
            }
        };
        let size = writer.finish()?;
        tracing::debug!(
            path,
            rows = part.height(),
            mb = size / (1 << 20),
            prepare_s = prepared,
            encode_and_write_s = started.elapsed().as_secs_f64() - prepared,
            "publish: file written"
        );
        Ok(part.height() as u64)
    };
    // Biggest files first, so no thread is left alone with a big one at the end; the days of
    // a partitioned table count as equal, so they keep their order.
    let size = |rows: &FileRows<'_>| match rows {
        FileRows::Whole(df) => df.estimated_size(),
        FileRows::Rows(df, _, p) => df.estimated_size() / p.days.len().max(1),
        FileRows::Empty(..) => 0,
    };
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(size(&jobs[j].2)));
    let done = crate::parallel::map_in(&jobs, &order, WRITERS, |_, (_, path, rows)| {
        write(path, rows)
    })?;
    let mut stats: Vec<TableStat> = tables
        .iter()
        .map(|(_, df, _)| TableStat {
            rows: df.height() as u64,
            files: Vec::new(),
        })
        .collect();
    for ((t, path, _), rows) in jobs.into_iter().zip(done) {
        stats[t].files.push(FileStat { path, rows });
    }
    Ok(stats)
}

/// Files encoded at once by [`write_tables`] (at most one per core).
const WRITERS: usize = 4;

/// Dates of the published runs (those with `_SUCCESS`), ascending.
pub fn published_runs(out: &Lake) -> Result<Vec<NaiveDate>> {
    let mut dates: Vec<NaiveDate> = out
        .list("runs")?
        .into_iter()
        .filter_map(|(p, _)| {
            let rest = p.strip_prefix("runs/")?;
            let (d, file) = rest.split_once('/')?;
            (file == "_SUCCESS").then(|| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())?
        })
        .collect();
    dates.sort();
    Ok(dates)
}

/// Read a published table of a run into one frame (all its Parquet files).
pub fn read_table(out: &Lake, date: NaiveDate, name: &str) -> Result<Option<DataFrame>> {
    let prefix = format!("{}/{name}", run_prefix(date));
    let mut frames = Vec::new();
    for (path, _) in out.list(&prefix)? {
        if !path.ends_with(".parquet") {
            continue;
        }
        let bytes = out.get(&path)?;
        frames.push(ParquetReader::new(Cursor::new(bytes)).finish()?);
    }
    if frames.is_empty() {
        return Ok(None);
    }
    Ok(Some(polars::functions::concat_df_diagonal(&frames)?))
}

/// The previous published run, how many of its persons had a first touch that is now
/// different, and how many persons it had.
pub fn first_touch_changes(
    out: &Lake,
    date: NaiveDate,
    persons: &DataFrame,
) -> Result<(Option<NaiveDate>, Option<u64>, Option<u64>)> {
    let previous = published_runs(out)?.into_iter().rfind(|d| *d < date);
    let Some(prev) = previous else {
        return Ok((None, None, None));
    };
    let Some(old) = read_table(out, prev, "persons")? else {
        return Ok((Some(prev), None, None));
    };
    let old_persons = Some(old.height() as u64);
    if old.column("first_touch").is_err() {
        return Ok((Some(prev), None, old_persons));
    }
    let joined = old
        .lazy()
        .select([col("person_id"), col("first_touch").alias("_old")])
        .filter(col("_old").is_not_null())
        .join(
            persons
                .clone()
                .lazy()
                .select([col("person_id"), col("first_touch").alias("_new")]),
            [col("person_id")],
            [col("person_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("_new").is_null().or(col("_new").neq(col("_old"))))
        .collect()?;
    Ok((Some(prev), Some(joined.height() as u64), old_persons))
}

/// Write the run's ad-platform files under `runs/<date>/exports/`: Meta batches, the Google
/// click conversion file (always, with its header) and the Data Manager batches.
pub fn write_exports(
    out: &Lake,
    date: NaiveDate,
    exports: &Exports,
    conversions: u64,
) -> Result<std::collections::BTreeMap<String, ExportStat>> {
    let base = format!("{}/exports", run_prefix(date));
    let put = |path: String, body: &str, rows: usize| -> Result<FileStat> {
        out.put(&path, Bytes::from(body.to_string()))?;
        Ok(FileStat {
            path,
            rows: rows as u64,
        })
    };
    let batch_rows = |n: usize, size: usize, i: usize| (n - i * size).min(size);
    let mut meta_files = Vec::new();
    let n = exports.meta.exported.len();
    for (i, body) in exports.meta.batches.iter().enumerate() {
        let rows = batch_rows(n, crate::export::meta::MAX_EVENTS, i);
        meta_files.push(put(
            format!("{base}/meta/{}", batch_file_name(i)),
            body,
            rows,
        )?);
    }
    let g = &exports.google;
    let mut google_files = vec![put(
        format!("{base}/google/click_conversions.csv"),
        &g.click_csv.body,
        g.click_csv.rows,
    )?];
    let n = g.data_manager.exported.len();
    for (i, body) in g.data_manager.batches.iter().enumerate() {
        let rows = batch_rows(n, crate::export::google::MAX_EVENTS, i);
        google_files.push(put(
            format!("{base}/google/data_manager/{}", batch_file_name(i)),
            body,
            rows,
        )?);
    }
    Ok(std::collections::BTreeMap::from([
        (
            "meta".to_string(),
            ExportStat {
                conversions,
                exported: exports.meta.exported.len() as u64,
                files: meta_files,
                skipped: exports.meta.skipped,
                click_conversions: None,
            },
        ),
        (
            "google".to_string(),
            ExportStat {
                conversions,
                exported: g.exported().len() as u64,
                files: google_files,
                skipped: *g.skipped(),
                click_conversions: Some(ClickConversionsStat {
                    exported: g.click_csv.rows as u64,
                    skipped: g.click_csv.skipped,
                }),
            },
        ),
    ]))
}

/// The export ledger under `state/` (empty before the first published run).
pub fn read_ledger(out: &Lake) -> Result<Ledger> {
    match out.get_opt(LEDGER_PATH)? {
        Some(bytes) => Ledger::from_frame(&ParquetReader::new(Cursor::new(bytes)).finish()?),
        None => Ok(Ledger::default()),
    }
}

/// The export ledger's file ([`write_ledger`] writes it once the run is published; encoding
/// it earlier, beside other work, keeps it off the end of the run).
pub fn ledger_file(ledger: &Ledger) -> Result<Bytes> {
    parquet_bytes(&ledger.to_frame()?)
}

/// Replace the export ledger with `file` ([`ledger_file`]), after the run is published.
pub fn write_ledger(out: &Lake, file: Bytes) -> Result<()> {
    out.put(LEDGER_PATH, file)
}

/// `runs/<date>/report.html`.
pub fn report_path(date: NaiveDate) -> String {
    format!("{}/report.html", run_prefix(date))
}

/// Write the run's report page (before the run is committed).
pub fn write_report(out: &Lake, date: NaiveDate, html: String) -> Result<()> {
    out.put(&report_path(date), Bytes::from(html))
}

/// Mark the run published: `_SUCCESS` (create-only), then move `latest` forward.
pub fn commit(out: &Lake, date: NaiveDate, manifest: &Manifest) -> Result<()> {
    let prefix = run_prefix(date);
    let body = serde_json::to_vec_pretty(manifest)?;
    out.put(&format!("{prefix}/manifest.json"), Bytes::from(body))?;
    out.put_new(&format!("{prefix}/_SUCCESS"), Bytes::new())?;
    let day = date.format("%Y-%m-%d").to_string();
    let current = out
        .get_opt("latest")?
        .map(|b| String::from_utf8_lossy(&b).trim().to_string());
    if current.as_deref().is_none_or(|c| c <= day.as_str()) {
        out.put("latest", Bytes::from(format!("{day}\n")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ca` with its values copied into buffers of their own.
    fn compact(ca: &StringChunked) -> StringChunked {
        ca.iter()
            .collect::<StringChunked>()
            .with_name(ca.name().clone())
    }

    #[test]
    fn gathered_strings_are_written_as_their_compact_copy() {
        // Rows gathered from a big shared series point into all of its buffers (about 40 MB
        // of text for 3 row groups of about 2.6 MB each).
        let big: Series = Series::new(
            "json".into(),
            (0..400_000)
                .map(|i| {
                    format!(
                        "{{\"utm_source\":\"source-{i:08}\",\"pad\":\"{}\"}}",
                        "x".repeat(60)
                    )
                })
                .collect::<Vec<_>>(),
        );
        let n = ROW_GROUP_ROWS * 2 + 7;
        let idx = IdxCa::from_vec(
            "i".into(),
            (0..n as IdxSize).map(|i| (i * 11) % 400_000).collect(),
        );
        let gathered = big.take(&idx).unwrap();
        let gathered_ca = gathered.str().unwrap();
        let held: usize = gathered_ca
            .downcast_iter()
            .map(|a| a.total_buffer_len())
            .sum();
        let shown: usize = gathered_ca
            .downcast_iter()
            .map(|a| a.total_bytes_len())
            .sum();
        assert!(held > 10 * shown, "{held} bytes held for {shown} shown");
        let rows = Column::new("row".into(), (0..n as u32).collect::<Vec<_>>());
        let df = DataFrame::new(n, vec![gathered.clone().into(), rows.clone()]).unwrap();
        let whole = DataFrame::new(n, vec![compact(gathered_ca).into_column(), rows]).unwrap();
        let a = parquet_bytes_grouped(&df, Some(ROW_GROUP_ROWS)).unwrap();
        let b = parquet_bytes_grouped(&whole, Some(ROW_GROUP_ROWS)).unwrap();
        assert!(a == b, "{} bytes against {}", a.len(), b.len());
        let back = ParquetReader::new(Cursor::new(a)).finish().unwrap();
        assert!(back.equals_missing(&whole));
    }
}
