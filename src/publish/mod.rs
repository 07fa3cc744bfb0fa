//! Stage 6, **publish**: tables, manifest, `_SUCCESS`, `latest` (contract §4).
//!
//! A run is written under `runs/<date>/`. Anything left there by an earlier attempt is removed
//! first (the `_SUCCESS` marker before everything else), so a rerun reproduces the date. The
//! marker is written last, with create-only semantics, then `latest` moves forward. A reader
//! that sees no `_SUCCESS` must treat the folder as not published.

pub mod manifest;

use std::io::Cursor;

use bytes::Bytes;
use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::Result;
use crate::read::FileStat;
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

/// Rows per row group of `journeys` files. Each partition is sorted by `person_id`, so the
/// row groups' min/max statistics let a reader looking for one person (`explain`, DuckDB)
/// decode only the few row groups that can hold it.
pub const JOURNEY_ROW_GROUP_ROWS: usize = 16_384;

/// Encode a frame as one Parquet file (zstd, statistics on), with at most `row_group_rows`
/// rows per row group (the writer's default when `None`).
pub fn parquet_bytes_grouped(df: &DataFrame, row_group_rows: Option<usize>) -> Result<Bytes> {
    let mut buf = Cursor::new(Vec::new());
    let mut df = df.clone();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .with_row_group_size(row_group_rows)
        .finish(&mut df)?;
    Ok(Bytes::from(buf.into_inner()))
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
    let path = format!("{}/{name}/part-00000.parquet", run_prefix(date));
    out.put(&path, parquet_bytes(df)?)?;
    Ok(TableStat {
        rows: df.height() as u64,
        files: vec![FileStat {
            path,
            rows: df.height() as u64,
        }],
    })
}

/// Write a table partitioned by its `dt` column as `<name>/dt=YYYY-MM-DD/part-00000.parquet`
/// (the `dt` column lives in the folder name only). An empty table still gets one (empty)
/// file, under the run date's partition, so a reader's glob never fails. Files are written
/// in row groups of [`JOURNEY_ROW_GROUP_ROWS`]; sort the frame by the key readers filter on.
pub fn write_partitioned(
    out: &Lake,
    date: NaiveDate,
    name: &str,
    df: &DataFrame,
) -> Result<TableStat> {
    let mut stat = TableStat {
        rows: df.height() as u64,
        files: Vec::new(),
    };
    let run_day = date.format("%Y-%m-%d").to_string();
    let mut parts: Vec<(String, DataFrame)> = if df.height() == 0 {
        vec![(run_day, df.clone())]
    } else {
        df.partition_by_stable(["dt"], true)?
            .into_iter()
            .map(|p| {
                let dt = match p.column("dt").and_then(|c| c.str().cloned()) {
                    Ok(s) if !s.is_empty() => s.get(0).unwrap_or_default().to_string(),
                    _ => run_day.clone(),
                };
                (dt, p)
            })
            .collect()
    };
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    for (dt, part) in parts {
        let part = part.drop("dt")?;
        let path = format!("{}/{name}/dt={dt}/part-00000.parquet", run_prefix(date));
        out.put(
            &path,
            parquet_bytes_grouped(&part, Some(JOURNEY_ROW_GROUP_ROWS))?,
        )?;
        stat.files.push(FileStat {
            path,
            rows: part.height() as u64,
        });
    }
    Ok(stat)
}

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

/// Replace the export ledger (after the run is published).
pub fn write_ledger(out: &Lake, ledger: &Ledger) -> Result<()> {
    out.put(LEDGER_PATH, parquet_bytes(&ledger.to_frame()?)?)
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
