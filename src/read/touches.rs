//! `raw/touches`: read and checked file by file, their text held as codes.
//!
//! Every check on a touch looks at that touch alone, so each file is read, checked, redacted
//! and encoded on its own (on all cores, beside the events' sort): no file's strings are held
//! beyond its own step. Each text column is then a code per touch into one dictionary per
//! column ([`TouchText`]). A code takes 4 bytes where a string value took a 16-byte view
//! and its bytes; most touches have no click id, and a null view took 16 bytes all the same.
//! The dictionaries are not sorted (their values are numbered as first seen, files in path
//! order): the touches' sort compares the codes of the rare rows that tie on time and cookie
//! by their values.

use polars::prelude::*;

use super::{
    clean_ids, empty_frame, filter_columnwise, id_too_long, list_files, null_values_too_long,
    privacy, quarantine_flags, quarantine_where, schema, sorted_rows, take_columnwise,
    touch_redaction, ts_out_of_range, without, FileStat, SourceFiles, SourceStats, FIDX_COL,
    MAX_ID_CHARS, TOUCH_REREAD_COLS,
};
use crate::codes::{self, NONE};
use crate::config::JobConfig;
use crate::error::Result;
use crate::storage::Lake;
use schema::{DT_COL, FILE_COL, ROW_COL};

/// The touches' text columns ([`text_columns`]) as codes: each such column of
/// [`RawLake::touches`](super::RawLake::touches) is UInt32, null for null, else an index into
/// its column's dictionary here. [`TouchText::decode`] gives the values back.
#[derive(Debug, Clone, Default)]
pub struct TouchText {
    /// `(column, its distinct values)`.
    dicts: Vec<(String, Series)>,
}

impl TouchText {
    /// The rows of `touches` at `rows` (all of them when `None`), with every coded column
    /// replaced by its values: the touches' columns as read and cleaned. The values are views
    /// into the dictionaries (no text is copied).
    pub fn decode(&self, touches: &DataFrame, rows: Option<&IdxCa>) -> Result<DataFrame> {
        let picked;
        let df = match rows {
            Some(rows) => {
                picked = touches.take(rows)?;
                &picked
            }
            None => touches,
        };
        let columns = df
            .columns()
            .iter()
            .map(
                |c| match self.dicts.iter().find(|(n, _)| n == c.name().as_str()) {
                    Some((_, dict)) => {
                        let at = c.as_materialized_series().cast(&IDX_DTYPE)?;
                        Ok(dict
                            .take(at.idx()?)?
                            .with_name(c.name().clone())
                            .into_column())
                    }
                    None => Ok(c.clone()),
                },
            )
            .collect::<Result<Vec<_>>>()?;
        Ok(DataFrame::new(df.height(), columns)?)
    }

    /// `touches` (touch columns as strings) with its text columns ([`text_columns`] of
    /// `extra`, those it has) as codes, and their dictionaries: what the read stage gives, for
    /// touches from elsewhere (tests, benchmarks).
    pub fn encode(touches: &DataFrame, extra: &[String]) -> Result<(DataFrame, TouchText)> {
        let mut df = touches.clone();
        let mut dicts = Vec::new();
        for name in text_columns(extra) {
            let Ok(column) = touches.column(&name) else {
                continue;
            };
            let (dict, mut codes) = codes::encode_columns(&[column.str()?.clone()])?;
            let codes: UInt32Chunked = (codes.pop().unwrap_or_default().into_iter())
                .map(|c| (c != NONE).then_some(c))
                .collect();
            df.with_column(codes.with_name(name.as_str().into()).into_column())?;
            dicts.push((name.clone(), dict.with_name(name.as_str().into())));
        }
        Ok((df, TouchText { dicts }))
    }

    /// The distinct values of a coded column (`None` for a column not held as codes).
    pub fn dictionary(&self, column: &str) -> Option<&Series> {
        self.dicts.iter().find(|(n, _)| n == column).map(|(_, d)| d)
    }

    /// Bytes the dictionaries hold (views and values), for the debug log.
    pub fn held_bytes(&self) -> usize {
        self.dicts
            .iter()
            .map(|(_, d)| {
                DataFrame::new(d.len(), vec![d.clone().into_column()])
                    .map_or(0, |df| super::held_bytes(&df))
            })
            .sum()
    }
}

/// The touch columns held as codes: the click ids, the utm values, `landing_url`, `referrer`
/// and the extra keys (`extra`). [`TOUCH_REREAD_COLS`] are not held at all.
pub fn text_columns(extra: &[String]) -> Vec<String> {
    schema::TOUCHES
        .iter()
        .map(|c| c.name)
        .filter(|n| !matches!(*n, "ts" | "anon_id") && !TOUCH_REREAD_COLS.contains(n))
        .map(str::to_string)
        .chain(extra.iter().cloned())
        .collect()
}

/// One touch file, read and checked by [`touch_file`].
struct TouchFileRead {
    rows: u64,
    /// `ts`, `anon_id`, `_row` and `_fidx` of the rows used.
    narrow: DataFrame,
    /// Each text column the file has: `(name, the file's own dictionary, codes into it)`.
    text: Vec<(String, StringChunked, Vec<u32>)>,
    extra: Vec<String>,
    pii: Vec<String>,
    quarantine: Vec<DataFrame>,
    stats: SourceStats,
}

/// Read the touch files: every row checked, cleaned and redacted, the rows used sorted by
/// `ts`, `anon_id` and content ([`RawLake::touches`](super::RawLake::touches)), their text as
/// codes. Returns the touches, their dictionaries, the extra keys (sorted), the files read and
/// the counts.
pub(super) fn read_touches(
    lake: &Lake,
    cfg: &JobConfig,
    q: &mut Vec<DataFrame>,
) -> Result<(DataFrame, TouchText, Vec<String>, SourceFiles, SourceStats)> {
    let started = std::time::Instant::now();
    let files = list_files(lake, "touches", Some(cfg.date))?;
    // Files are read and checked on all cores at once, then put together in file order: the
    // result does not depend on which thread read what.
    let per_file = if files.is_empty() {
        vec![touch_file(empty_frame(schema::TOUCHES), 0, cfg)?]
    } else {
        crate::parallel::map(&files, 4, |i, (path, dt)| {
            let bytes = lake.get(path)?;
            let df = schema::read_file(bytes, path, dt, schema::TOUCHES, true, &[])?;
            touch_file(df, i as u32, cfg)
        })?
    };
    crate::step_done!(started, "touches: files read and checked");

    let mut st = SourceStats {
        values_too_long: Some(0),
        ..Default::default()
    };
    let mut redacted = 0;
    let mut extra: Vec<String> = Vec::new();
    let mut pii: Vec<String> = Vec::new();
    for (i, f) in per_file.iter().enumerate() {
        if let Some((path, _)) = files.get(i) {
            st.files.push(FileStat {
                path: path.clone(),
                rows: f.rows,
            });
        }
        st.rows_read += f.rows;
        st.absorb_file_checks(&f.stats);
        st.junk_ids += f.stats.junk_ids;
        redacted += f.stats.values_redacted.unwrap_or(0);
        extra.extend(f.extra.iter().cloned());
        pii.extend(f.pii.iter().cloned());
    }
    for v in [&mut extra, &mut pii] {
        v.sort();
        v.dedup();
    }
    st.values_redacted = Some(redacted);
    st.pii_columns_ignored = Some(pii.iter().map(|n| privacy::listed_name(n)).collect());

    // Each text column's files' dictionaries merged into one dictionary, and each
    // file's codes renumbered into it (a file without the column: all null).
    let text_names = text_columns(&extra);
    let heights: Vec<usize> = per_file.iter().map(|f| f.narrow.height()).collect();
    let rows: usize = heights.iter().sum();
    // Column by column, on all cores.
    let merged = crate::parallel::map(&text_names, 4, |_, name| -> Result<(Series, Column)> {
        let in_files: Vec<Option<&(String, StringChunked, Vec<u32>)>> = per_file
            .iter()
            .map(|f| f.text.iter().find(|(n, _, _)| n == name))
            .collect();
        let empty = StringChunked::full_null(name.as_str().into(), 0);
        let file_dicts: Vec<StringChunked> = in_files
            .iter()
            .map(|t| t.map_or_else(|| empty.clone(), |(_, d, _)| d.clone()))
            .collect();
        // Values numbered as first seen (files in path order): no sort. The touches' sort
        // compares codes by their values.
        let bound = file_dicts.iter().map(|d| d.len()).sum();
        let (dict, renumber) = codes::number_columns(&file_dicts, bound);
        let mut values: Vec<u32> = Vec::with_capacity(rows);
        let mut valid = polars_arrow::bitmap::MutableBitmap::with_capacity(rows);
        for ((t, map), &height) in in_files.iter().zip(&renumber).zip(&heights) {
            match t {
                Some((_, _, c)) => {
                    for &c in c {
                        valid.push(c != NONE);
                        values.push(if c == NONE { 0 } else { map[c as usize] });
                    }
                }
                None => {
                    values.extend(std::iter::repeat_n(0, height));
                    valid.extend_constant(height, false);
                }
            }
        }
        let codes =
            UInt32Chunked::from_vec_validity(name.as_str().into(), values, Some(valid.into()));
        Ok((dict.with_name(name.as_str().into()), codes.into_column()))
    })?;
    let (dicts, coded): (Vec<(String, Series)>, Vec<Column>) = text_names
        .into_iter()
        .zip(merged)
        .map(|(name, (dict, codes))| ((name, dict), codes))
        .unzip();
    crate::step_done!(started, "touches: dictionaries merged");
    let mut narrow = Vec::with_capacity(per_file.len());
    for f in per_file {
        q.extend(f.quarantine);
        narrow.push(f.narrow);
    }
    let mut df = polars::functions::concat_df_diagonal(&narrow)?;
    drop(narrow);
    df.rechunk_mut();
    for c in coded {
        df.with_column(c)?;
    }
    crate::step_done!(started, "touches: files put together");

    let order = [
        "ts",
        "anon_id",
        "gclid",
        "fbclid",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "landing_url",
        "referrer",
        FIDX_COL,
        ROW_COL,
    ];
    let coded: Vec<(&str, &Series)> = dicts.iter().map(|(n, d)| (n.as_str(), d)).collect();
    let sorted = sorted_rows(&df, (0..df.height() as IdxSize).collect(), &order, &coded)?;
    let df = take_columnwise(df, &sorted)?;
    crate::step_done!(started, "touches: sorted");
    st.rows_used = df.height() as u64;
    let listing = SourceFiles {
        files,
        renames: Vec::new(),
    };
    Ok((df, TouchText { dicts }, extra, listing, st))
}

/// One touch file's rows checked (each check looks at its row alone): columns named like
/// personal data and ignored columns dropped, personal ids pseudonymized, ids too long
/// quarantined, personal data in the text redacted, junk ids made null (§3.5), the rows that
/// cannot be used quarantined; then the rows used, with their text as codes into the file's
/// own dictionaries.
fn touch_file(df: DataFrame, fidx: u32, cfg: &JobConfig) -> Result<TouchFileRead> {
    let rows = df.height() as u64;
    let mut st = SourceStats::default();
    let mut q = Vec::new();
    let bookkeeping = [FILE_COL, DT_COL, ROW_COL];
    let unnamed: Vec<String> = df
        .get_column_names()
        .into_iter()
        .map(|n| n.to_string())
        .filter(|n| {
            !schema::TOUCHES.iter().any(|c| c.name == n) && !bookkeeping.contains(&n.as_str())
        })
        .collect();
    // A column named like personal data is never an attribution key: it is dropped unread.
    let pii: Vec<String> = unnamed
        .iter()
        .filter(|n| privacy::is_pii_column(n))
        .cloned()
        .collect();
    let extra: Vec<String> = unnamed
        .into_iter()
        .filter(|n| !cfg.touches.ignore_columns.contains(n) && !pii.contains(n))
        .collect();
    let ignored: Vec<String> = cfg
        .touches
        .ignore_columns
        .iter()
        .filter(|c| {
            df.get_column_names()
                .iter()
                .any(|n| n.as_str() == c.as_str())
        })
        .cloned()
        .chain(pii.iter().cloned())
        .collect();
    let df = without(df, ignored);
    let (df, pseudonymized) = privacy::pseudonymize_ids(df, &["anon_id"], MAX_ID_CHARS)?;
    st.ids_pseudonymized = pseudonymized;
    let df = quarantine_where(
        df,
        id_too_long(&["anon_id"]),
        "touches",
        "id_too_long",
        false,
        &mut q,
        &mut st,
    )?;
    let (df, long_values) = null_values_too_long(df, &["anon_id"])?;
    st.values_too_long = Some(long_values);
    // Emails, phone numbers, personal query parameters and URL credentials become `[redacted]`:
    // every rule on free text (utm values, URLs, extra keys), the email rule on opaque values.
    let (text, opaque) = touch_redaction(&extra);
    let (df, redacted) = privacy::redact_columns(df, &text, &opaque)?;
    st.values_redacted = Some(redacted);
    let (df, junk) = clean_ids(df, &["anon_id"])?;
    st.junk_ids = junk;
    let flagged = quarantine_flags(
        &df,
        &[
            (col("ts").is_null(), "missing_ts"),
            (ts_out_of_range(cfg), "ts_out_of_range"),
            (col("anon_id").is_null(), "no_identity"),
        ],
        None,
        "touches",
        false,
        &mut q,
        &mut st,
    )?;
    // What only the touch JSON and the exports show is not held: they read it again for the
    // touches they show.
    let df = without(
        df,
        TOUCH_REREAD_COLS.iter().chain(&[FILE_COL, DT_COL]).copied(),
    );
    let df = match flagged {
        Some(f) => filter_columnwise(df, &!&f)?,
        None => df,
    };
    let mut encoded = Vec::new();
    for name in text_columns(&extra) {
        let values = df.column(&name)?.str()?.clone();
        let (dict, mut codes) = codes::number_columns(std::slice::from_ref(&values), 0);
        encoded.push((name, dict.str()?.clone(), codes.pop().unwrap_or_default()));
    }
    let height = df.height();
    let mut narrow = df.select(["ts", "anon_id", ROW_COL])?;
    narrow.with_column(Column::new(FIDX_COL.into(), vec![fidx; height]))?;
    Ok(TouchFileRead {
        rows,
        narrow,
        text: encoded,
        extra,
        pii,
        quarantine: q,
        stats: st,
    })
}
