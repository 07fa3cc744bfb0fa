//! Stage 1, **read**: the raw lake in, typed and cleaned frames out.
//!
//! Lists `raw/<source>/dt=YYYY-MM-DD/*.parquet` up to the run date, checks every file against
//! the contract's schema, cleans junk ids (§3.5), reads org ids found in `user_id` as orgs and
//! checks memberships (§3.1), drops repeated deliveries of an event (§3.6) and quarantines every
//! row it cannot use, with a reason. Counts reconcile: for each source
//! `rows_read = rows_used + rows_deduplicated + rows_quarantined`.

mod journeys;
pub mod privacy;
pub mod schema;
mod touches;

pub use journeys::{event_ids, touch_columns, JourneyColumns, SourceFiles};
pub use touches::{text_columns, TouchText};

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use crate::codes::{self, NONE};
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::storage::Lake;
use schema::{ColumnSpec, DT_COL, FILE_COL, ROW_COL};

/// Events' file, as an index into [`RawLake::event_files`] (one number per row instead of a
/// path string per row).
pub const FIDX_COL: &str = "_fidx";
/// A hash of an event row's content as delivered (compared between copies of an event_id).
const CONTENT_HASH_COL: &str = "_h";
/// Whether an event row is the copy kept of its event_id.
const KEPT_COL: &str = "_kept";

/// Values that are not ids (compared trimmed, unquoted, lowercased). Empty strings too.
pub const JUNK_IDS: [&str; 10] = [
    "null",
    "undefined",
    "none",
    "nan",
    "anonymous",
    "guest",
    "0",
    "-1",
    "[object object]",
    "nil",
];

/// Ids longer than this many characters are not ids (a pasted blob, a serialized object): the
/// row is quarantined as `id_too_long`.
pub const MAX_ID_CHARS: u32 = 1024;

/// Other string values longer than this many bytes (a runaway `properties` blob, a landing URL
/// carrying a whole page) are replaced by null and counted (`values_too_long`).
pub const MAX_VALUE_BYTES: u32 = 65_536;

/// One file read.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileStat {
    /// Path relative to the input location.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
}

/// What happened to the rows of one source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStats {
    /// Rows in the files read.
    pub rows_read: u64,
    /// Rows the run used.
    pub rows_used: u64,
    /// Repeated deliveries dropped (§3.6).
    pub rows_deduplicated: u64,
    /// Rows written to `quarantine`.
    pub rows_quarantined: u64,
    /// Id values treated as null (§3.5).
    pub junk_ids: u64,
    /// Dropped copies whose content differed from the copy kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicting_duplicates: Option<u64>,
    /// Events whose actor is not a member of their `org_id` (org dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_not_member: Option<u64>,
    /// Org ids found in `user_id` and read as orgs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_ids_in_user_id: Option<u64>,
    /// String values (not ids) longer than [`MAX_VALUE_BYTES`], replaced by null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_too_long: Option<u64>,
    /// Id values that were an email address or a phone number, replaced by their pseudonym
    /// (see [`privacy`]).
    pub ids_pseudonymized: u64,
    /// Touch values in which an email address, a phone number, a personal query parameter or
    /// URL credentials were replaced by `[redacted]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_redacted: Option<u64>,
    /// Touch columns named like personal data (`email`, `phone`, ...), never read as
    /// attribution keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pii_columns_ignored: Option<Vec<String>>,
    /// Quarantined rows by reason.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Files read, in path order.
    pub files: Vec<FileStat>,
}

impl SourceStats {
    /// Add the counts of the checks run on one file ([`event_file`]) to the source's.
    fn absorb_file_checks(&mut self, file: &SourceStats) {
        self.rows_quarantined += file.rows_quarantined;
        self.ids_pseudonymized += file.ids_pseudonymized;
        if let Some(n) = file.values_too_long {
            *self.values_too_long.get_or_insert(0) += n;
        }
        for (reason, n) in &file.quarantined_by_reason {
            *self
                .quarantined_by_reason
                .entry(reason.clone())
                .or_default() += n;
        }
    }
}

/// One raw event file, read and checked by [`event_file`].
struct EventFileRead {
    rows: u64,
    narrow: DataFrame,
    codes: FileCodes,
    details: DataFrame,
    quarantine: Vec<DataFrame>,
    stats: SourceStats,
}

/// The columns of [`RawLake::events`] held as codes (UInt32, [`NONE`] for null), each an index
/// into its dictionary in [`EventCodes`]: `(code column, contract column)`. `_prev` is the
/// `previous_id` of alias events only (the only ones that read it, §3.2); the others' are null.
pub const EVENT_CODE_COLS: [(&str, &str); 5] = [
    ("_event", "event"),
    ("_anon", "anon_id"),
    ("_prev", "previous_id"),
    ("_user", "user_id"),
    ("_org", "org_id"),
];

/// The dictionaries of the events' ids and names (sorted distinct values; a code is an index).
///
/// At 10M events the six string columns of ids and names took about 140 bytes an event (a
/// 16-byte view each, most of them with the text beside it); as codes they take 20.
#[derive(Debug, Clone)]
pub struct EventCodes {
    /// `event` names.
    pub event: Series,
    /// Cookies: the events' `anon_id` and the alias events' `previous_id`.
    pub anon: Series,
    /// The events' `user_id` (after org ids are moved to `org_id`, §3.1).
    pub user: Series,
    /// The events' `org_id` (after memberships are checked).
    pub org: Series,
}

impl EventCodes {
    /// The dictionaries cut down to the codes `events` uses, and its code columns renumbered
    /// into them (each dictionary stays sorted: the same as encoding `events` alone).
    fn used_by(self, mut events: DataFrame) -> Result<(DataFrame, EventCodes)> {
        // Each dictionary with the code columns into it. The codes each uses are found for the
        // four side by side, over the columns' chunks as slices, without a copy. Then the
        // columns are renumbered one at a time, each replacing its old column at once (a new
        // column per dictionary held side by side was 400 MB at 20M events, at read's peak).
        let cuts: [(Series, &[&str]); 4] = [
            (self.event, &["_event"]),
            (self.anon, &["_anon", "_prev"]),
            (self.user, &["_user"]),
            (self.org, &["_org"]),
        ];
        let cut = |_: usize, (dict, names): &(Series, &[&str])| -> Result<_> {
            let mut used = vec![false; dict.len()];
            for name in names.iter() {
                codes::for_each_code(events.column(name)?.u32()?, |c| {
                    if c != NONE {
                        used[c as usize] = true;
                    }
                });
            }
            let mut renumber = vec![NONE; dict.len()];
            let kept = renumber.iter_mut().zip(&used).filter(|(_, &u)| u);
            for (next, (r, _)) in kept.enumerate() {
                *r = next as u32;
            }
            let dict = dict.filter(&BooleanChunked::from_slice("used".into(), &used))?;
            Ok((dict, renumber))
        };
        let mut done = crate::parallel::map(&cuts, 4, cut)?.into_iter().zip(&cuts);
        let mut next = || -> Result<Series> {
            let ((dict, renumber), (_, names)) = done
                .next()
                .ok_or_else(|| Error::Internal("a dictionary was not cut".into()))?;
            for name in names.iter() {
                let mut column = codes::values_or(events.column(name)?.u32()?, NONE);
                codes::renumber_in_place(&mut column, &renumber);
                events.with_column(Column::new((*name).into(), column))?;
            }
            Ok(dict)
        };
        let codes = EventCodes {
            event: next()?,
            anon: next()?,
            user: next()?,
            org: next()?,
        };
        Ok((events, codes))
    }

    /// The code of each event name for which `pred` holds.
    pub fn names_where(&self, pred: impl Fn(&str) -> bool) -> Result<Vec<bool>> {
        Ok(self
            .event
            .str()?
            .iter()
            .map(|n| n.is_some_and(&pred))
            .collect())
    }
}

/// The raw lake, read and cleaned.
#[derive(Debug, Clone)]
pub struct RawLake {
    /// Used events, one row per `event_id`, sorted by `ts`, `seq` (nulls first), `event_id`.
    /// Columns: `ts` (Int64 microseconds UTC), `_fidx` (the file, an index into the events'
    /// `SourceStats::files`), `_row` (the row in that file), and the ids and names as codes
    /// into [`RawLake::event_codes`] ([`EVENT_CODE_COLS`]). `event_id` and `seq` are not held:
    /// the conversions have their ids, and `journeys` reads both again.
    pub events: DataFrame,
    /// The dictionaries of the events' code columns.
    pub event_codes: EventCodes,
    /// The used events named in `[events] conversions`, in journey order, with their
    /// [`EVENT_DETAIL_COLS`]. Columns: `_i` (the row in `events`), `event_id`, `event`, `ts`,
    /// `_fidx`, `_row`, then the details.
    pub conversions: DataFrame,
    /// Used touches, sorted by `ts`, `anon_id` and content. Columns: `ts`, `anon_id`, `_fidx`
    /// (an index into [`RawLake::touch_files`]), `_row`, and the text columns
    /// ([`text_columns`]) as codes into [`RawLake::touch_text`]. [`TOUCH_REREAD_COLS`] are not
    /// held.
    pub touches: DataFrame,
    /// The dictionaries of the touches' text columns.
    pub touch_text: TouchText,
    /// Touch columns that are attribution keys no one has invented yet.
    pub touch_extra_keys: Vec<String>,
    /// Users snapshot, one row per `user_id` (possibly empty).
    pub users: DataFrame,
    /// Rows not used: source, file, row_key, reason.
    pub quarantine: DataFrame,
    /// The event files read, `(path, dt)`, indexed by `_fidx`, and the job's column renames:
    /// what [`JourneyColumns`] needs to read them again.
    pub event_files: SourceFiles,
    /// The touch files read, `(path, dt)`, indexed by the touches' `_fidx`: what
    /// [`touch_columns`] needs to read [`TOUCH_REREAD_COLS`] again.
    pub touch_files: SourceFiles,
    /// Per-source counts, keyed by source name.
    pub stats: BTreeMap<String, SourceStats>,
}

/// The used events named in `names` (conversions), in journey order, with their details
/// (`details`: [`EVENT_DETAIL_COLS`] of the conversion rows of every copy read, keyed by
/// `_fidx` and `_row`): [`RawLake::conversions`].
fn conversion_events(
    events: &InOrder,
    codes: &EventCodes,
    details: DataFrame,
    names: &[String],
) -> Result<DataFrame> {
    let wanted = codes.names_where(|n| names.iter().any(|c| c == n))?;
    let name_of = events.df.column("_event")?.u32()?;
    let rows: Vec<IdxSize> = name_of
        .into_no_null_iter()
        .enumerate()
        .filter(|(_, c)| wanted.get(*c as usize).copied().unwrap_or(false))
        .map(|(i, _)| i as IdxSize)
        .collect();
    let event: Vec<u32> = rows
        .iter()
        .map(|&i| name_of.get(i as usize).unwrap_or(NONE))
        .collect();
    let idx = IdxCa::from_vec("_i".into(), rows);
    let mut picked = events.df.select(["ts", FIDX_COL, ROW_COL])?.take(&idx)?;
    let read_at = events.order.take(&idx)?;
    picked.insert_column(0, events.event_id.take(&read_at)?)?;
    picked.insert_column(0, idx.into_series().into_column())?;
    picked.insert_column(
        2,
        crate::codes::gather(&codes.event, &event, "event")?.into_column(),
    )?;
    let key = || [col(FIDX_COL), col(ROW_COL)];
    let left = JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    // The conversions are a few rows of every event file: without their own strings they
    // would hold every event's `event_id` (those of `events` are dropped after read) and the
    // details of every file read, about 300 MB at 10M events, to the end of the run.
    compact(
        picked
            .lazy()
            .join(details.lazy(), key(), key(), left)
            .collect()?,
    )
}

/// Read the raw lake under `lake` for the run described by `cfg`.
pub fn read_lake(lake: &Lake, cfg: &JobConfig) -> Result<RawLake> {
    let mut quarantine: Vec<DataFrame> = Vec::new();
    let mut stats = BTreeMap::new();

    let (orgs, s) = read_orgs(lake, &mut quarantine)?;
    stats.insert("orgs".to_string(), s);
    let (memberships, s) = read_memberships(lake, &mut quarantine)?;
    if let Some(s) = s {
        stats.insert("memberships".to_string(), s);
    }
    let (users, s) = read_users(lake, &mut quarantine)?;
    stats.insert("users".to_string(), s);
    let checked = read_events(lake, cfg, &orgs, memberships.as_ref(), &mut quarantine)?;
    // The events put in order beside the touches' read (which does not depend on the events).
    // Not earlier: until their ids are encoded the events hold every column of every event,
    // and the touches' read would add to that peak (3.8 GB at 10M events, against 2.6).
    let mut touch_quarantine = Vec::new();
    let (events, touches) = crate::parallel::join(
        || -> Result<_> {
            let (events, event_codes, event_details, event_files, s) = checked.in_order()?;
            let conversions = conversion_events(
                &events,
                &event_codes,
                event_details,
                &cfg.events.conversions,
            )?;
            // The events' ids are not held after this: the conversions have theirs,
            // `journeys` reads them again with its other columns, and identity reads again
            // those of the events it names ([`event_ids`]). At 10M events they are about
            // 330 MB.
            let events = events.df;
            crate::progress::release_memory();
            Ok((events, event_codes, conversions, event_files, s))
        },
        || touches::read_touches(lake, cfg, &mut touch_quarantine),
    );
    let (events, event_codes, conversions, event_files, s) = events?;
    stats.insert("events".to_string(), s);
    let (touches, touch_text, touch_extra_keys, touch_files, s) = touches?;
    stats.insert("touches".to_string(), s);
    quarantine.extend(touch_quarantine);

    // In file and row order, however the reasons were found.
    let quarantine = if quarantine.is_empty() {
        empty_quarantine()
    } else {
        polars::functions::concat_df_diagonal(&quarantine)?
            .lazy()
            .sort_by_exprs(
                [col("file"), col(ROW_COL)],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .drop(cols([ROW_COL]))
            .collect()?
    };
    let mb = |df: &DataFrame| held_bytes(df) / (1 << 20);
    tracing::debug!(
        events_mb = mb(&events),
        conversions_mb = mb(&conversions),
        touches_mb = mb(&touches) + touch_text.held_bytes() / (1 << 20),
        quarantine_mb = mb(&quarantine),
        "read: frames in memory"
    );
    Ok(RawLake {
        events,
        event_codes,
        conversions,
        touches,
        touch_text,
        touch_extra_keys,
        users,
        quarantine,
        event_files,
        touch_files,
        stats,
    })
}

/// `df` filtered by `mask` one column at a time, each input column dropped once filtered: the
/// frame is never held twice (a whole-frame filter holds both copies at its peak).
pub fn filter_columnwise(df: DataFrame, mask: &BooleanChunked) -> Result<DataFrame> {
    let height = mask.sum().unwrap_or(0) as usize;
    let mut out = Vec::with_capacity(df.width());
    for c in df.into_columns() {
        out.push(c.filter(mask)?);
    }
    Ok(DataFrame::new(height, out)?)
}

/// The rows `idx` of `df`, gathered column by column on the thread pool, each input column
/// dropped once gathered (see [`filter_columnwise`]).
pub fn take_columnwise(df: DataFrame, idx: &IdxCa) -> Result<DataFrame> {
    use rayon::prelude::*;
    let out = df
        .into_columns()
        .into_par_iter()
        .map(|c| c.take(idx))
        .collect::<PolarsResult<Vec<_>>>()?;
    Ok(DataFrame::new(idx.len(), out)?)
}

/// `df` with one chunk per column, except the columns `as_they_are` (left in their chunks:
/// columns read only by expressions, which work over chunks alike). Two columns at a time on
/// two threads; each column's chunks are freed, and their memory handed back, once it is
/// copied (rechunking the whole frame at once held all of it twice: about 1 GB more at 10M
/// events).
fn rechunked(df: DataFrame, as_they_are: &[&str]) -> Result<DataFrame> {
    let height = df.height();
    let out = column_by_column(df, |c| {
        if as_they_are.contains(&c.name().as_str()) {
            return Ok(c);
        }
        let one = c.rechunk();
        drop(c);
        crate::progress::release_memory();
        Ok(one)
    })?;
    Ok(DataFrame::new(height, out)?)
}

/// `f` of each column of `df`, consumed, two columns at a time on two threads, the results in
/// the columns' order: each column is freed as soon as `f` is done with it.
fn column_by_column(
    df: DataFrame,
    f: impl Fn(Column) -> Result<Column> + Sync,
) -> Result<Vec<Column>> {
    let columns: Vec<std::sync::Mutex<Option<Column>>> = df
        .into_columns()
        .into_iter()
        .map(|c| std::sync::Mutex::new(Some(c)))
        .collect();
    crate::parallel::map(&columns, 2, |_, c| {
        let c = c
            .lock()
            .map_err(|_| Error::Internal("a column thread panicked".into()))?
            .take()
            .ok_or_else(|| Error::Internal("a column taken twice".into()))?;
        f(c)
    })
}

/// `df` without the columns `names`, consuming it. `let df = df.drop_many(..)` would keep the
/// old frame, shadowed, alive to the end of the function: every column it had, even after the
/// new frame's columns are replaced (at 10M events the touches' sort then held its input's
/// string views, about 1 GB, beside its output).
fn without<I, S>(df: DataFrame, names: I) -> DataFrame
where
    I: IntoIterator<Item = S>,
    S: Into<PlSmallStr>,
{
    df.drop_many(names)
}

/// Rows `idx` of `df` in a frame that holds no more of `df`'s memory than its own values: string
/// columns are copied into buffers of their own (a gather alone would keep every value of the
/// column alive behind the views it takes) unless the gather already did ([`owned_strings`]),
/// two columns at a time on two threads, each input column dropped once copied and its memory
/// handed back.
pub fn take_compact(df: DataFrame, idx: &IdxCa) -> Result<DataFrame> {
    let out = column_by_column(df, |c| {
        let taken = owned_strings(c.as_materialized_series().take(idx)?);
        let freed = c.as_materialized_series().estimated_size();
        drop(c);
        crate::progress::release_memory_after_freeing(freed);
        Ok(taken)
    })?;
    Ok(DataFrame::new(idx.len(), out)?)
}

/// [`take_compact`] into `parts` frames of consecutive rows of `idx` (about equal, in order),
/// each with buffers of its own, so that each can be freed on its own once used.
pub fn take_compact_parts(df: DataFrame, idx: &IdxCa, parts: usize) -> Result<Vec<DataFrame>> {
    let ranges = idx_parts(idx, parts);
    let mut out: Vec<Vec<Column>> = ranges
        .iter()
        .map(|_| Vec::with_capacity(df.width()))
        .collect();
    for c in df.into_columns() {
        // The parts of one column side by side (one part: on this thread).
        let taken = crate::parallel::map(&ranges, 4, |_, range| -> Result<Column> {
            Ok(owned_strings(c.as_materialized_series().take(range)?))
        })?;
        for (columns, part) in out.iter_mut().zip(taken) {
            columns.push(part);
        }
        // The input column is freed here: hand its memory back before the next copy is made
        // (freed heap memory is otherwise kept, and the copies would add to it).
        let freed = c.as_materialized_series().estimated_size();
        drop(c);
        crate::progress::release_memory_after_freeing(freed);
    }
    ranges
        .iter()
        .zip(out)
        .map(|(range, columns)| Ok(DataFrame::new(range.len(), columns)?))
        .collect()
}

/// `idx` in `parts` runs of consecutive entries (about equal, in order); one empty run when
/// `idx` is empty, so that a frame taken per run still has its columns.
pub fn idx_parts(idx: &IdxCa, parts: usize) -> Vec<IdxCa> {
    let mut ranges: Vec<IdxCa> = crate::parallel::slices(idx.len(), parts)
        .into_iter()
        .map(|r| idx.slice(r.start as i64, r.len()))
        .collect();
    if ranges.is_empty() {
        ranges.push(idx.clone());
    }
    ranges
}

/// `column` with its strings copied into buffers of its own (other columns as they are): a
/// string column gathered or filtered from another keeps every value of that column alive
/// behind its views.
///
/// A column whose buffers hold no more than its own values is left as it is: polars' gather
/// from a column of several chunks has already copied every value it took into new buffers.
fn owned_strings(column: Series) -> Column {
    match column.str() {
        Ok(s) if !s.downcast_iter().all(holds_only_its_values) => s
            .iter()
            .collect::<StringChunked>()
            .with_name(s.name().clone())
            .into_column(),
        _ => column.into_column(),
    }
}

/// Whether the buffers behind `a`'s views hold no more bytes than its values kept there (the
/// values longer than a view's 12 inline bytes, each counted as often as it is shown).
fn holds_only_its_values(a: &polars_arrow::array::Utf8ViewArray) -> bool {
    let shown = |i: usize| polars_arrow::array::Array::is_valid(a, i);
    let outside: usize = (a.views().iter().enumerate())
        .map(|(i, v)| (i, v.length as usize))
        .filter(|&(i, n)| n > polars_arrow::array::View::MAX_INLINE_SIZE as usize && shown(i))
        .map(|(_, n)| n)
        .sum();
    a.total_buffer_len() <= outside
}

/// `df` with every string column in buffers of its own ([`owned_strings`]): for a frame of a
/// few rows picked from big ones, which would otherwise hold the big ones' strings.
fn compact(df: DataFrame) -> Result<DataFrame> {
    let height = df.height();
    let columns = (df.into_columns())
        .into_iter()
        .map(|c| owned_strings(c.take_materialized_series()))
        .collect();
    Ok(DataFrame::new(height, columns)?)
}

/// About the bytes `df` holds, for the debug log. polars' `estimated_size` counts a string
/// column's bytes of values only: not the 16-byte view of every row (null or not), nor the
/// buffers behind the views, which a column picked by row shares with the whole column it came
/// from. Here each buffer is counted once, however many columns or chunks share it.
fn held_bytes(df: &DataFrame) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for c in df.columns() {
        let s = c.as_materialized_series();
        let Ok(ca) = s.str() else {
            total += s.estimated_size();
            continue;
        };
        for a in ca.downcast_iter() {
            total += a.len() * std::mem::size_of::<polars_arrow::array::View>();
            total += polars_arrow::array::Array::validity(a).map_or(0, |v| v.len().div_ceil(8));
            for b in a.data_buffers().iter() {
                if seen.insert(b.storage_ptr() as usize) {
                    total += b.len();
                }
            }
        }
    }
    total
}

/// Rows grouped by a key of each (`rows()` gives each row with its key, the same every call),
/// groups ascending and rows in their given order within a group: each group's key and size,
/// and the rows placed group after group. Two passes over the rows (counted, then placed), so only the rows themselves are held; rows that come in key
/// order make long runs, and a group is looked up only when the key changes.
pub fn grouped_rows<I>(rows: impl Fn() -> I) -> (Vec<(i64, usize)>, Vec<IdxSize>)
where
    I: Iterator<Item = (IdxSize, i64)>,
{
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut run: Option<(i64, usize)> = None;
    for (_, key) in rows() {
        match run.as_mut() {
            Some((k, n)) if *k == key => *n += 1,
            _ => {
                if let Some((k, n)) = run.replace((key, 1)) {
                    *counts.entry(k).or_default() += n;
                }
            }
        }
    }
    if let Some((k, n)) = run {
        *counts.entry(k).or_default() += n;
    }
    let groups: Vec<(i64, usize)> = counts.into_iter().collect();
    let mut next: Vec<usize> = Vec::with_capacity(groups.len());
    let mut at = 0;
    for &(_, n) in &groups {
        next.push(at);
        at += n;
    }
    let mut placed = vec![0 as IdxSize; at];
    let mut g = 0;
    for (row, key) in rows() {
        if groups[g].0 != key {
            g = groups.partition_point(|&(k, _)| k < key);
        }
        placed[next[g]] = row;
        next[g] += 1;
    }
    (groups, placed)
}

/// The span of first keys [`sorted_rows`] sorts at a time: a day of a time in microseconds.
const SORT_SPAN: i64 = 86_400_000_000;

/// `rows` of `df` ordered by the columns `keys`, ascending, nulls first, ties in row order: the
/// order of polars' stable multi-column sort. The first key must be an Int64 column (a time);
/// the others (Int64, String or UInt32) are only compared where the earlier keys tie, which is
/// rare for a time in microseconds, so no string is read for most rows (polars' sort encodes
/// every key of every row). A key named in `coded` is a UInt32 column of codes into the
/// dictionary given with it (in any order): it is compared by the codes' values.
pub fn sorted_rows(
    df: &DataFrame,
    rows: Vec<IdxSize>,
    keys: &[&str],
    coded: &[(&str, &Series)],
) -> Result<IdxCa> {
    use rayon::prelude::*;
    use std::cmp::Ordering;
    enum Tie {
        I64(Int64Chunked),
        Str(StringChunked),
        U32(UInt32Chunked),
        Coded(UInt32Chunked, StringChunked),
    }
    let Some((first, rest)) = keys.split_first() else {
        return Ok(IdxCa::from_vec("_i".into(), rows));
    };
    let first = df.column(first)?.i64()?.rechunk();
    let ties = rest
        .iter()
        .map(|k| {
            let c = df.column(k)?;
            if let Some((_, dict)) = coded.iter().find(|(n, _)| n == k) {
                let codes = c.u32()?.rechunk().into_owned();
                return Ok(Tie::Coded(codes, dict.str()?.rechunk().into_owned()));
            }
            Ok(match c.dtype() {
                DataType::Int64 => Tie::I64(c.i64()?.rechunk().into_owned()),
                DataType::UInt32 => Tie::U32(c.u32()?.rechunk().into_owned()),
                _ => Tie::Str(c.str()?.rechunk().into_owned()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tie = |a: IdxSize, b: IdxSize| -> Ordering {
        let (a, b) = (a as usize, b as usize);
        for t in &ties {
            let o = match t {
                Tie::I64(c) => c.get(a).cmp(&c.get(b)),
                Tie::U32(c) => c.get(a).cmp(&c.get(b)),
                Tie::Str(c) => c.get(a).cmp(&c.get(b)),
                Tie::Coded(c, d) => {
                    let value = |i: usize| c.get(i).and_then(|k| d.get(k as usize));
                    value(a).cmp(&value(b))
                }
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.cmp(&b)
    };
    // The rows with a first key are sorted as (key, row) pairs side by side in memory (a sort
    // of row numbers that looked their key up at every comparison missed the cache on nearly
    // every one), one span of keys at a time ([`SORT_SPAN`]: a day of a time in
    // microseconds): the rows are first placed by span, so the pairs (16 bytes a row) are
    // only held for the spans being sorted, not for all rows at once (at 20M events they were
    // 320 MB beside the frame at read's peak). The rare runs of equal keys are then ordered by
    // the other keys. Rows without a first key come first.
    let (keys, valid) = match first.downcast_iter().next() {
        Some(a) => (a.values().as_slice(), a.validity()),
        None => (&[][..], None),
    };
    let has_key = |r: IdxSize| valid.is_none_or(|v| v.get_bit(r as usize));
    let (mut out, keyed): (Vec<IdxSize>, Vec<IdxSize>) =
        rows.into_iter().partition(|&r| !has_key(r));
    out.sort_unstable_by(|&a, &b| tie(a, b));
    let n_nulls = out.len();
    let (spans, placed) =
        grouped_rows(|| (keyed.iter()).map(|&r| (r, keys[r as usize].div_euclid(SORT_SPAN))));
    drop(keyed);
    out.extend_from_slice(&placed);
    drop(placed);
    // The spans as disjoint slices of `out`, sorted side by side.
    let mut rest = &mut out[n_nulls..];
    let mut slices: Vec<&mut [IdxSize]> = Vec::with_capacity(spans.len());
    for &(_, n) in &spans {
        let (this, tail) = std::mem::take(&mut rest).split_at_mut(n);
        slices.push(this);
        rest = tail;
    }
    slices.into_par_iter().for_each(|slice| {
        let mut keyed: Vec<(i64, IdxSize)> = slice.iter().map(|&r| (keys[r as usize], r)).collect();
        keyed.par_sort_unstable_by_key(|&(k, _)| k);
        for (o, &(_, r)) in slice.iter_mut().zip(&keyed) {
            *o = r;
        }
        let mut start = 0;
        while start < keyed.len() {
            let mut end = start + 1;
            while end < keyed.len() && keyed[end].0 == keyed[start].0 {
                end += 1;
            }
            if end - start > 1 {
                slice[start..end].sort_unstable_by(|&a, &b| tie(a, b));
            }
            start = end;
        }
    });
    Ok(IdxCa::from_vec("_i".into(), out))
}

/// An empty `quarantine` frame.
pub fn empty_quarantine() -> DataFrame {
    let cols = ["source", "file", "row_key", "reason"]
        .iter()
        .map(|n| Column::new_empty((*n).into(), &DataType::String))
        .collect();
    DataFrame::new(0, cols).expect("columns of equal length")
}

/// List the Parquet files of a source, with their partition (`""` when unpartitioned).
fn list_files(lake: &Lake, source: &str, date: Option<NaiveDate>) -> Result<Vec<(String, String)>> {
    let root = format!("raw/{source}");
    let mut out = Vec::new();
    for (path, _) in lake.list(&root)? {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .trim_start_matches('/');
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name.starts_with('_')
            || name.starts_with('.')
            || rel.contains("/_")
            || rel.contains("/.")
        {
            continue; // markers (_SUCCESS), hidden and temporary files of writers
        }
        if !name.ends_with(".parquet") {
            return Err(Error::bad_input(
                &path,
                "not a .parquet file (raw folders hold Parquet files only)",
            ));
        }
        match date {
            Some(run_date) => {
                let part = rel.split('/').next().unwrap_or("");
                let dt = part
                    .strip_prefix("dt=")
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .filter(|_| rel.contains('/'))
                    .ok_or_else(|| {
                        Error::bad_input(
                            &path,
                            format!(
                                "expected the file under a partition folder {root}/dt=YYYY-MM-DD/"
                            ),
                        )
                    })?;
                if dt <= run_date {
                    out.push((path.clone(), dt.format("%Y-%m-%d").to_string()));
                }
            }
            None => out.push((path.clone(), String::new())),
        }
    }
    // Partition, then path: the order in which copies of an event are preferred (§3.6).
    out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    Ok(out)
}

/// Read every file of a source into one frame (canonical columns + bookkeeping), with each
/// file's rows and the listing read, `(path, dt)` in order (empty: no file).
fn read_source(
    lake: &Lake,
    source: &str,
    spec: &[ColumnSpec],
    date: Option<NaiveDate>,
    extra_strings: bool,
    renames: &[(String, &'static str)],
) -> Result<(DataFrame, Vec<FileStat>, SourceFiles)> {
    let files = list_files(lake, source, date)?;
    let mut frames = Vec::with_capacity(files.len());
    let mut stats = Vec::with_capacity(files.len());
    for (path, dt) in &files {
        let bytes = lake.get(path)?;
        let df = schema::read_file(bytes, path, dt, spec, extra_strings, renames)?;
        stats.push(FileStat {
            path: path.clone(),
            rows: df.height() as u64,
        });
        frames.push(df);
    }
    let df = if frames.is_empty() {
        empty_frame(spec)
    } else {
        polars::functions::concat_df_diagonal(&frames)?
    };
    let files = SourceFiles {
        files,
        renames: renames.to_vec(),
    };
    Ok((df, stats, files))
}

fn empty_frame(spec: &[ColumnSpec]) -> DataFrame {
    let mut cols: Vec<Column> = spec
        .iter()
        .map(|c| Column::new_empty(c.name.into(), &c.kind.canonical()))
        .collect();
    cols.push(Column::new_empty(FILE_COL.into(), &DataType::String));
    cols.push(Column::new_empty(DT_COL.into(), &DataType::String));
    cols.push(Column::new_empty(ROW_COL.into(), &DataType::UInt32));
    DataFrame::new(0, cols).expect("columns of equal length")
}

/// An id with junk values (§3.5) turned into null; real ids are trimmed (see
/// [`clean_id_value`]). A column with nothing to clean is returned as it is, uncopied.
pub fn clean_id(name: &str) -> Expr {
    col(name)
        .map(
            |c| {
                let ca = c.str()?;
                let unchanged = ca.iter().all(|v| {
                    v.is_none_or(|v| clean_id_value(v).is_some_and(|k| k.len() == v.len()))
                });
                if unchanged {
                    return Ok(c);
                }
                let out: StringChunked = ca.iter().map(|v| v.and_then(clean_id_value)).collect();
                Ok(out.with_name(c.name().clone()).into_column())
            },
            |_, field| Ok(field.clone()),
        )
        .alias(name)
}

/// One id value cleaned: `None` when it is junk (empty, or one of [`JUNK_IDS`] in any case,
/// once trimmed of whitespace and quotes), else the value trimmed of whitespace.
///
/// ASCII case folding is enough: the junk values are ASCII, and no non-ASCII character
/// lowercases to one of their letters.
pub fn clean_id_value(v: &str) -> Option<&str> {
    // Nearly every id starts and ends with a printable ASCII character that is not a quote:
    // then there is nothing to trim (the trims showed in profiles).
    let plain = |b: Option<&u8>| {
        b.is_some_and(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'`'))
    };
    let (trimmed, core) = if plain(v.as_bytes().first()) && plain(v.as_bytes().last()) {
        (v, v)
    } else {
        let trimmed = v.trim();
        let core = trimmed
            .trim_matches(|c| matches!(c, '"' | '\'' | '`'))
            .trim();
        (trimmed, core)
    };
    let junk = core.is_empty()
        || (core.len() <= 15 && JUNK_IDS.iter().any(|j| j.eq_ignore_ascii_case(core)));
    (!junk).then_some(trimmed)
}

/// `df` with the junk values of its columns `ids` made null ([`clean_id`], §3.5), and how many
/// values were present but cleaned away (cleaning never fills a null).
fn clean_ids(df: DataFrame, ids: &[&str]) -> Result<(DataFrame, u64)> {
    let present = |df: &DataFrame| -> Result<u64> {
        ids.iter()
            .map(|c| Ok(df.column(c).map(|c| (c.len() - c.null_count()) as u64)?))
            .sum()
    };
    let before = present(&df)?;
    let df = df
        .lazy()
        .with_columns(ids.iter().map(|c| clean_id(c)).collect::<Vec<_>>())
        .collect()?;
    let junk = before - present(&df)?;
    Ok((df, junk))
}

fn row_key_expr(with_event_id: bool) -> Expr {
    let row = concat_str(
        [lit("row "), col(ROW_COL).cast(DataType::String)],
        "",
        false,
    );
    if with_event_id {
        when(
            col("event_id")
                .str()
                .len_chars()
                .lt_eq(lit(MAX_ID_CHARS))
                .fill_null(lit(false)),
        )
        .then(col("event_id"))
        .otherwise(row)
    } else {
        row
    }
}

/// Whether any of the id columns `ids` is longer than [`MAX_ID_CHARS`].
fn id_too_long(ids: &[&str]) -> Expr {
    ids.iter()
        .map(|c| {
            col(*c).map(
                |c| Ok(more_chars_than(c.str()?, MAX_ID_CHARS as usize).into_column()),
                |_, f| Ok(Field::new(f.name().clone(), DataType::Boolean)),
            )
        })
        .reduce(Expr::or)
        .unwrap_or(lit(false))
}

/// Whether each value of `ca` has more than `max` characters (false for a null). A value of
/// at most `max` bytes has at most `max` characters: only longer ones are read and counted
/// (counting the characters of every id was about 7 % of reading the event files).
fn more_chars_than(ca: &StringChunked, max: usize) -> BooleanChunked {
    longer_than(ca, max, |v| v.chars().count() > max)
}

/// Whether each value of `ca` has more than `max` bytes and passes `also` (false for a null).
/// Lengths are read from the values' views: only the longer values themselves are read.
fn longer_than(ca: &StringChunked, max: usize, also: impl Fn(&str) -> bool) -> BooleanChunked {
    let values = ca.downcast_iter().flat_map(|arr| {
        let also = &also;
        arr.views().iter().enumerate().map(move |(i, v)| {
            v.length as usize > max
                && polars_arrow::array::Array::is_valid(arr, i)
                // SAFETY: `i` is below the array's length (an index of its views).
                && also(unsafe { arr.value_unchecked(i) })
        })
    });
    BooleanChunked::from_iter_values(ca.name().clone(), values)
}

/// Replace string values longer than [`MAX_VALUE_BYTES`] in the string columns of `df` other
/// than `ids` and the bookkeeping columns by null; return the frame and how many were replaced.
fn null_values_too_long(df: DataFrame, ids: &[&str]) -> Result<(DataFrame, u64)> {
    let targets: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| {
            matches!(c.dtype(), DataType::String)
                && !ids.contains(&c.name().as_str())
                && !c.name().starts_with('_')
        })
        .map(|c| c.name().to_string())
        .collect();
    if targets.is_empty() {
        return Ok((df, 0));
    }
    // Each column's long values found from the values' views (no column of lengths), and
    // the column replaced only when it has any.
    let mut df = df;
    let mut total = 0u64;
    for c in &targets {
        let ca = df.column(c)?.str()?;
        let long = longer_than(ca, MAX_VALUE_BYTES as usize, |_| true);
        let n = long.sum().unwrap_or(0) as u64;
        if n > 0 {
            let none = StringChunked::full_null(ca.name().clone(), ca.len());
            let kept = none.zip_with(&long, ca)?;
            df.replace(c, kept.into_column())?;
            total += n;
        }
    }
    Ok((df, total))
}

/// Times outside the job's plausible range (contract: events before 2000 or far after the run
/// date are clock errors, not history).
fn ts_out_of_range(cfg: &JobConfig) -> Expr {
    let (lower, upper) = cfg.read.ts_bounds(cfg.date);
    col("ts").lt(lit(lower)).or(col("ts").gt_eq(lit(upper)))
}

/// Move the rows of `df` matching `pred` to quarantine with `reason`; return the rest.
fn quarantine_where(
    df: DataFrame,
    pred: Expr,
    source: &str,
    reason: &str,
    with_event_id: bool,
    out: &mut Vec<DataFrame>,
    stats: &mut SourceStats,
) -> Result<DataFrame> {
    quarantine_reasons(df, &[(pred, reason)], source, with_event_id, out, stats)
}

/// Move the rows of `df` matching any of `reasons` to quarantine, each with the first reason
/// it matches (the same as applying them one after the other); return the rest. One pass
/// computes the reasons; when no row matches, `df` is returned as it is, uncopied.
///
/// The file of a row is its `_file` column, or, for events after their files were put
/// together, its `_fidx` index into `files` (see [`RawLake::event_files`]).
fn quarantine_reasons(
    df: DataFrame,
    reasons: &[(Expr, &str)],
    source: &str,
    with_event_id: bool,
    out: &mut Vec<DataFrame>,
    stats: &mut SourceStats,
) -> Result<DataFrame> {
    match quarantine_flags(&df, reasons, None, source, with_event_id, out, stats)? {
        Some(flagged) => filter_columnwise(df, &!&flagged),
        None => Ok(df),
    }
}

/// The quarantine of [`quarantine_reasons`] without removing the rows: pushes the quarantine
/// rows of the rows of `df` (among `among`, when given) matching a reason and returns which
/// rows they are, or `None` when there are none.
fn quarantine_flags(
    df: &DataFrame,
    reasons: &[(Expr, &str)],
    among: Option<&BooleanChunked>,
    source: &str,
    with_event_id: bool,
    out: &mut Vec<DataFrame>,
    stats: &mut SourceStats,
) -> Result<Option<BooleanChunked>> {
    if reasons.is_empty() {
        return Ok(None);
    }
    // when(p1) then r1 otherwise (when(p2) then r2 otherwise (... null)): first match wins.
    let reason_expr =
        reasons
            .iter()
            .rev()
            .fold(lit(NULL).cast(DataType::String), |rest, (pred, reason)| {
                when(pred.clone().fill_null(lit(false)))
                    .then(lit(*reason))
                    .otherwise(rest)
            });
    let by_index = df.column(FILE_COL).is_err() && df.column(FIDX_COL).is_ok();
    let file_expr = if by_index {
        col(FIDX_COL)
    } else {
        col(FILE_COL)
    };
    // First only a flag per row; the reasons and row keys of the (few) flagged rows after.
    let any = reasons
        .iter()
        .map(|(p, _)| p.clone().fill_null(lit(false)))
        .reduce(Expr::or)
        .unwrap_or(lit(false))
        .alias("_q");
    let flags = df.clone().lazy().select([any]).collect()?;
    let mut flagged = flags.column("_q")?.bool()?.clone();
    if let Some(among) = among {
        flagged = &flagged & among;
    }
    if flagged.sum().unwrap_or(0) == 0 {
        return Ok(None);
    }
    let tagged = df
        .filter(&flagged)?
        .lazy()
        .select([
            reason_expr.alias("reason"),
            file_expr.alias("file"),
            row_key_expr(with_event_id).alias("row_key"),
            col(ROW_COL),
        ])
        .collect()?;
    let q = if by_index {
        let names = stats
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>();
        let file: Vec<Option<&str>> = tagged
            .column("file")?
            .u32()?
            .iter()
            .map(|i| i.and_then(|i| names.get(i as usize).copied()))
            .collect();
        let mut t = tagged;
        t.replace("file", Series::new("file".into(), file).into())?;
        t
    } else {
        tagged
    };
    let q = q
        .lazy()
        .select([
            lit(source).alias("source"),
            col("file"),
            col("row_key"),
            col("reason"),
            col(ROW_COL),
        ])
        .collect()?;
    stats.rows_quarantined += q.height() as u64;
    for reason in q.column("reason")?.str()?.iter().flatten() {
        *stats
            .quarantined_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
    }
    out.push(q);
    Ok(Some(flagged))
}

/// `event_id` trimmed, as the read stage keys, deduplicates and quarantines events.
fn strip_event_id() -> Expr {
    col("event_id").str().strip_chars(lit(NULL))
}

/// `df` with its `event_id` trimmed ([`strip_event_id`]). A column with nothing to trim (every
/// event id in a well-kept lake) is kept as it is: trimming copies every id.
fn trim_event_ids(df: DataFrame) -> Result<DataFrame> {
    let untrimmed = |v: &str| match (v.as_bytes().first(), v.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => false,
        _ => v.trim().len() != v.len(),
    };
    if !df
        .column("event_id")?
        .str()?
        .iter()
        .flatten()
        .any(untrimmed)
    {
        return Ok(df);
    }
    Ok(df.lazy().with_column(strip_event_id()).collect()?)
}

/// An event whose (trimmed) `event_id` is null or empty: quarantined as `missing_event_id`.
fn missing_event_id() -> Expr {
    col("event_id").is_null().or(col("event_id").eq(lit("")))
}

/// The id columns of events: never longer than [`MAX_ID_CHARS`].
const EVENT_IDS: &[&str] = &["event_id", "anon_id", "user_id", "previous_id", "org_id"];

/// The event columns that reach the tables as ids, pseudonymized when they are personal data.
const EVENT_PSEUDONYMIZED: &[&str] = &[
    "event_id",
    "anon_id",
    "user_id",
    "previous_id",
    "org_id",
    "session_id",
    "order_id",
];

/// Keep the first row of each `key` in (`_dt`, `_file`, `_row`) order; count the rest.
fn dedup_first(df: DataFrame, key: &[&str]) -> Result<(DataFrame, u64)> {
    let before = df.height();
    let mut by: Vec<Expr> = key.iter().map(|k| col(*k)).collect();
    by.extend([col(DT_COL), col(FILE_COL), col(ROW_COL)]);
    let n = by.len();
    let out = df
        .lazy()
        .sort_by_exprs(
            by,
            SortMultipleOptions::default().with_order_descending_multi(vec![false; n]),
        )
        .unique_stable_generic(
            Some(key.iter().map(|k| col(*k)).collect()),
            UniqueKeepStrategy::First,
        )
        .collect()?;
    let removed = (before - out.height()) as u64;
    Ok((out, removed))
}

fn read_orgs(lake: &Lake, q: &mut Vec<DataFrame>) -> Result<(Vec<String>, SourceStats)> {
    let (df, files, _) = read_source(lake, "orgs", schema::ORGS, None, false, &[])?;
    let (df, pseudonymized) = privacy::pseudonymize_ids(df, &["org_id"], MAX_ID_CHARS)?;
    let mut st = SourceStats {
        rows_read: df.height() as u64,
        ids_pseudonymized: pseudonymized,
        files,
        ..Default::default()
    };
    let df = quarantine_where(
        df,
        id_too_long(&["org_id"]),
        "orgs",
        "id_too_long",
        false,
        q,
        &mut st,
    )?;
    let (df, junk) = clean_ids(df, &["org_id"])?;
    st.junk_ids = junk;
    let df = quarantine_where(
        df,
        col("org_id").is_null(),
        "orgs",
        "no_identity",
        false,
        q,
        &mut st,
    )?;
    let (df, dups) = dedup_first(df, &["org_id"])?;
    st.rows_deduplicated = dups;
    st.rows_used = df.height() as u64;
    let orgs = df
        .column("org_id")?
        .str()?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    Ok((orgs, st))
}

fn read_memberships(
    lake: &Lake,
    q: &mut Vec<DataFrame>,
) -> Result<(Option<DataFrame>, Option<SourceStats>)> {
    let (df, files, listing) =
        read_source(lake, "memberships", schema::MEMBERSHIPS, None, false, &[])?;
    if listing.files.is_empty() {
        return Ok((None, None));
    }
    let (df, pseudonymized) = privacy::pseudonymize_ids(df, &["user_id", "org_id"], MAX_ID_CHARS)?;
    let mut st = SourceStats {
        rows_read: df.height() as u64,
        ids_pseudonymized: pseudonymized,
        files,
        ..Default::default()
    };
    let df = quarantine_where(
        df,
        id_too_long(&["user_id", "org_id"]),
        "memberships",
        "id_too_long",
        false,
        q,
        &mut st,
    )?;
    let (df, junk) = clean_ids(df, &["user_id", "org_id"])?;
    st.junk_ids = junk;
    let df = quarantine_where(
        df,
        col("user_id").is_null().or(col("org_id").is_null()),
        "memberships",
        "no_identity",
        false,
        q,
        &mut st,
    )?;
    let (df, dups) = dedup_first(df, &["user_id", "org_id"])?;
    st.rows_deduplicated = dups;
    st.rows_used = df.height() as u64;
    let pairs = df.select(["user_id", "org_id"])?;
    Ok((Some(pairs), Some(st)))
}

fn read_users(lake: &Lake, q: &mut Vec<DataFrame>) -> Result<(DataFrame, SourceStats)> {
    let (df, files, _) = read_source(lake, "users", schema::USERS, None, false, &[])?;
    let (df, pseudonymized) = privacy::pseudonymize_ids(df, &["user_id"], MAX_ID_CHARS)?;
    let mut st = SourceStats {
        rows_read: df.height() as u64,
        ids_pseudonymized: pseudonymized,
        files,
        ..Default::default()
    };
    let df = quarantine_where(
        df,
        id_too_long(&["user_id"]),
        "users",
        "id_too_long",
        false,
        q,
        &mut st,
    )?;
    let (df, junk) = clean_ids(df, &["user_id"])?;
    st.junk_ids = junk;
    let df = quarantine_where(
        df,
        col("user_id").is_null(),
        "users",
        "no_identity",
        false,
        q,
        &mut st,
    )?;
    let (df, dups) = dedup_first(df, &["user_id"])?;
    st.rows_deduplicated = dups;
    st.rows_used = df.height() as u64;
    Ok((df, st))
}

/// Event columns read only for conversions (by attribution and the ad-platform export): kept
/// for conversion rows only, in [`RawLake::conversions`], so the run never holds them for
/// every event (they are over half of an event's bytes). `journeys` shows `value`, `currency`
/// and `order_id` of every event: it reads them again ([`JourneyColumns`]).
pub const EVENT_DETAIL_COLS: [&str; 7] = [
    "email",
    "ip",
    "user_agent",
    "properties",
    "value",
    "currency",
    "order_id",
];

/// Event columns not used after reading (still part of the content compared between
/// repeated deliveries). `session_id` reaches `journeys` only: it is read again from the raw
/// files when each day of `journeys` is written ([`JourneyColumns`]).
const EVENT_UNUSED_COLS: [&str; 2] = ["tracking_version", "session_id"];

/// Reads touch columns again for the touches at given places: given a frame of their `_fidx`
/// and `_row` and the names of contract columns, those columns of each, in its order (the
/// pipeline passes [`touch_columns`] over its input; stages that show them take this instead
/// of the store).
pub type TouchesAgain<'a> = &'a (dyn Fn(&DataFrame, &[&str]) -> Result<DataFrame> + Sync);

/// The touch columns the read stage redacts, `(text, opaque)` (see
/// [`privacy::redact_columns`]): every rule on free text (utm values, URLs, extra keys), the
/// email rule on opaque values (click ids, `fbp`, `fbc`, IP, user agent).
fn touch_redaction(extra: &[String]) -> (Vec<String>, Vec<String>) {
    let opaque = schema::CLICK_IDS
        .iter()
        .chain(&["fbp", "fbc", "ip", "user_agent"])
        .map(|c| c.to_string())
        .collect();
    let text = schema::UTMS
        .iter()
        .chain(&["landing_url", "referrer"])
        .map(|c| c.to_string())
        .chain(extra.iter().cloned())
        .collect();
    (text, opaque)
}

/// Touch columns the run does not hold for every touch: only the touch JSON of the tables and
/// the exports show them, for a fraction of the touches, and read them again from the raw
/// files ([`touch_columns`]). At 10M events (3M touches) they are about 450 MB, mostly the
/// user agent. No rule of the run reads them otherwise: not the order of the touches, which
/// touches count, nor their channels.
pub const TOUCH_REREAD_COLS: [&str; 4] = ["fbp", "fbc", "ip", "user_agent"];

/// The columns of `journeys` that come straight from the raw event files and are not held in
/// memory for every event: [`JourneyColumns`] reads them again, file by file, when each day of
/// `journeys` is written. `raw_user_id` is the file's `user_id` as the run saw it before
/// cleaning (personal ids pseudonymized).
pub const JOURNEY_REREAD_COLS: [&str; 7] = [
    "event_id",
    "seq",
    "raw_user_id",
    "value",
    "currency",
    "order_id",
    "session_id",
];

/// The events after their rows are checked and their ids and names encoded (steps 0 to 7 of
/// [`read_events`]): every row read, which ones are used, and what putting them in order
/// ([`EventsChecked::in_order`]) needs.
struct EventsChecked {
    df: DataFrame,
    codes: EventCodes,
    used: BooleanChunked,
    details: DataFrame,
    files: Vec<(String, String)>,
    renames: Vec<(String, &'static str)>,
    st: SourceStats,
    started: std::time::Instant,
}

fn read_events(
    lake: &Lake,
    cfg: &JobConfig,
    orgs: &[String],
    memberships: Option<&DataFrame>,
    q: &mut Vec<DataFrame>,
) -> Result<EventsChecked> {
    let renames = event_renames(cfg);
    let conversions = Series::new("conv".into(), cfg.events.conversions.clone());
    let org_series = Series::new("orgs".into(), orgs.to_vec());
    let mut st = SourceStats {
        values_too_long: Some(0),
        ..Default::default()
    };

    // File by file, so that no column but the ids' codes, times and marks is ever held for all
    // events: the checks that quarantine before deduplication, content hashes for the duplicate
    // check, the conversions' details (steps 0-1), then the row-local steps 3 to 6 as marks
    // (which rows they clean, move, quarantine, strip of their org) and the ids and names as
    // codes into the file's own dictionaries. Only the duplicate check (step 2) needs all
    // files at once: the steps' counts and quarantine are taken over the rows it keeps.
    let started = std::time::Instant::now();
    let files = list_files(lake, "events", Some(cfg.date))?;
    // Files are read and checked on all cores at once (the checks are mostly one thread each),
    // then put together in file order: the result does not depend on which thread read what.
    let read_one = |fidx: usize, df: DataFrame| -> Result<EventFileRead> {
        let mut fst = SourceStats {
            values_too_long: Some(0),
            ..Default::default()
        };
        let mut fq = Vec::new();
        let rows = df.height() as u64;
        let (narrow, details) = event_file(df, fidx as u32, &conversions, &mut fq, &mut fst)?;
        let marked = event_marks(narrow, cfg, &org_series, memberships)?;
        let (narrow, codes) = encode_file(marked, &cfg.events.alias)?;
        Ok(EventFileRead {
            rows,
            narrow,
            codes,
            details,
            quarantine: fq,
            stats: fst,
        })
    };
    let per_file = if files.is_empty() {
        vec![read_one(0, empty_frame(schema::EVENTS))?]
    } else {
        crate::parallel::map(&files, 4, |i, (path, dt)| {
            let bytes = lake.get(path)?;
            read_one(
                i,
                schema::read_file(bytes, path, dt, schema::EVENTS, false, &renames)?,
            )
        })?
    };
    let mut encoded: Vec<(DataFrame, FileCodes)> = Vec::with_capacity(per_file.len());
    let mut details: Vec<DataFrame> = Vec::with_capacity(per_file.len());
    for (i, f) in per_file.into_iter().enumerate() {
        if let Some((path, _)) = files.get(i) {
            st.files.push(FileStat {
                path: path.clone(),
                rows: f.rows,
            });
        }
        st.absorb_file_checks(&f.stats);
        q.extend(f.quarantine);
        encoded.push((f.narrow, f.codes));
        details.push(f.details);
    }
    let event_details = polars::functions::concat_df_diagonal(&details)?;
    crate::step_done!(started, "events: files read");
    let log = |step: &str| crate::step_done!(started, "events: {step}");

    // 2. Repeated deliveries: keep the copy of the earliest dt, then file, then row (§3.6).
    // Beside it (it reads only the ids and content hashes), the files' dictionaries are put
    // together and each file's codes renumbered into them.
    let mut ids = DataFrame::empty();
    for (df, _) in &encoded {
        ids.vstack_mut_owned(df.select(["event_id", CONTENT_HASH_COL])?)?;
    }
    let (kept, merged) = crate::parallel::join(
        || first_copies(&ids, &mut st),
        || EventCodes::merge(encoded),
    );
    drop(ids);
    let (kept, (frames, codes)) = (kept?, merged?);
    let mut frames = frames.into_iter();
    let mut df = frames.next().expect("at least one frame");
    for f in frames {
        df.vstack_mut_owned(f)?;
    }
    // One chunk per column: the gather that puts the rows in order is much slower over the
    // files' chunks (3.7 s against 1.8 s at 10M events) than this copy (0.45 s). The marks
    // are only read by the checks below, then dropped: they stay in their chunks.
    let df = rechunked(df, &MARK_COLS)?;
    log("deduplicated, ids and names encoded");

    // From here on no row is removed until the end: each step computes a column or a mask over
    // all rows read, and one gather at the end takes the used rows in journey order (a filter
    // per step would copy the whole frame each time).

    // 3-6, counted over the rows kept: junk ids (§3.5; ids, not rows: a row may have several),
    // org ids in user_id (§3.1), the rows that cannot be used (quarantined with the first
    // reason that applies) and, among the rows used, actors who are not members of the event's
    // org (§3.1).
    let count = |name: &str, among: &BooleanChunked| -> Result<u64> {
        let values = df.column(name)?.as_materialized_series();
        let among = among.iter().map(|a| a == Some(true));
        Ok(match values.dtype() {
            DataType::Boolean => (values.bool()?.iter().zip(among))
                .filter(|&(v, a)| a && v == Some(true))
                .count() as u64,
            _ => (values.u32()?.iter().zip(among))
                .filter(|&(_, a)| a)
                .map(|(v, _)| u64::from(v.unwrap_or(0)))
                .sum(),
        })
    };
    st.junk_ids = count(JUNK_COL, &kept)?;
    st.org_ids_in_user_id = Some(count(IS_ORG_COL, &kept)?);
    let reasons: Vec<(Expr, &str)> = (EVENT_REASONS.iter().enumerate())
        .map(|(i, r)| (col(REASON_COL).eq(lit(i as u32 + 1)), *r))
        .collect();
    let flagged = quarantine_flags(&df, &reasons, Some(&kept), "events", true, q, &mut st)?;
    let used = match &flagged {
        Some(f) => &kept & &!f,
        None => kept,
    };
    if memberships.is_some() {
        st.org_not_member = Some(count(NOT_MEMBER_COL, &used)?);
    }
    let df = without(df, MARK_COLS);
    log("checked");
    Ok(EventsChecked {
        df,
        codes,
        used,
        details: event_details,
        files,
        renames,
        st,
        started,
    })
}

/// The columns of marks that [`read_events`] reads in its checks, then drops.
const MARK_COLS: [&str; 5] = [
    CONTENT_HASH_COL,
    JUNK_COL,
    IS_ORG_COL,
    REASON_COL,
    NOT_MEMBER_COL,
];

/// Per event row (for [`event_marks`]): how many of its ids were junk (UInt32).
const JUNK_COL: &str = "_junk";
/// Per event row: whether its `user_id` was a known org id, moved to `org_id` (Boolean).
const IS_ORG_COL: &str = "_is_org";
/// Per event row: 0, or 1 + the index in [`EVENT_REASONS`] of the first reason it cannot be
/// used (UInt32).
const REASON_COL: &str = "_reason";
/// Per event row: whether its org was dropped, its actor not a member (Boolean).
const NOT_MEMBER_COL: &str = "_not_member";

/// Why an event row that passed the file's checks and the duplicate check cannot be used, in
/// the order they are tried (§3.6).
const EVENT_REASONS: [&str; 4] = [
    "missing_ts",
    "ts_out_of_range",
    "missing_event",
    "no_identity",
];

/// Steps 3 to 6 of [`read_events`] on the rows of one file (each row on its own): junk ids
/// made null (§3.5), org ids in `user_id` moved to `org_id` (§3.1), the first reason a row
/// cannot be used, and orgs dropped from actors who are not their members (§3.1). Each step
/// leaves a mark ([`JUNK_COL`], [`IS_ORG_COL`], [`REASON_COL`], [`NOT_MEMBER_COL`]): the
/// counts and the quarantine are taken over the rows the duplicate check keeps, once all files
/// are read. Returns the columns [`encode_file`] takes, with the marks.
fn event_marks(
    df: DataFrame,
    cfg: &JobConfig,
    orgs: &Series,
    memberships: Option<&DataFrame>,
) -> Result<DataFrame> {
    // 3. Junk ids are null (§3.5); each row counts the ids it had that were cleaned away.
    let ids = ["anon_id", "user_id", "previous_id", "org_id"];
    let raw = |c: &str| format!("_raw_{c}");
    // Steps 3 to 5 are one lazy plan, collected once.
    let plan = df
        .lazy()
        .with_columns(ids.map(|c| col(c).alias(raw(c))))
        .with_columns(ids.map(clean_id));
    let cleaned = |c: &str| {
        col(raw(c))
            .is_not_null()
            .and(col(c).is_null())
            .cast(DataType::UInt32)
    };
    let junk = ids
        .iter()
        .map(|c| cleaned(c))
        .reduce(|a, b| a + b)
        .expect("four ids");
    let plan = plan
        .with_column(junk.alias(JUNK_COL))
        .drop(cols(ids.map(raw)));

    // 4. A user_id that is a known org id is the event's organization, not a user (§3.1).
    let is_org = col("user_id")
        .is_in(lit(orgs.clone()).implode(true), false)
        .fill_null(lit(false));
    let plan = plan.with_column(is_org.alias(IS_ORG_COL)).with_columns([
        when(col(IS_ORG_COL))
            .then(col("user_id"))
            .otherwise(col("org_id"))
            .alias("org_id"),
        when(col(IS_ORG_COL))
            .then(lit(NULL).cast(DataType::String))
            .otherwise(col("user_id"))
            .alias("user_id"),
    ]);

    // 5. The first reason, in the order of EVENT_REASONS, that a row cannot be used.
    let blank = col("event").map(
        // Whitespace only (trimmed and empty, without allocating the trimmed values or running
        // a regex over every name).
        |c| {
            let blank: BooleanChunked = c
                .str()?
                .iter()
                .map(|v| v.is_none_or(|v| v.trim().is_empty()))
                .collect();
            Ok(blank.with_name(c.name().clone()).into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::Boolean)),
    );
    let tests = [
        col("ts").is_null(),
        ts_out_of_range(cfg),
        blank,
        col("anon_id").is_null().and(col("user_id").is_null()),
    ];
    let reason = (tests.into_iter().enumerate().rev()).fold(lit(0u32), |rest, (i, test)| {
        when(test.fill_null(lit(false)))
            .then(lit(i as u32 + 1))
            .otherwise(rest)
    });
    let mut df = plan.with_column(reason.alias(REASON_COL)).collect()?;

    // 6. An actor who is not a member of the event's org keeps no org (§3.1). Only rows with
    // both a user and an org are looked up.
    if let Some(m) = memberships {
        let m = m.clone().lazy().with_column(lit(true).alias("_member"));
        let not_member = df
            .clone()
            .lazy()
            .select([col("user_id"), col("org_id")])
            .with_row_index("_i", None)
            .filter(
                col("user_id")
                    .is_not_null()
                    .and(col("org_id").is_not_null()),
            )
            .join(
                m,
                [col("user_id"), col("org_id")],
                [col("user_id"), col("org_id")],
                JoinArgs::new(JoinType::Left),
            )
            .filter(col("_member").is_null())
            .select([col("_i")])
            .collect()?;
        let mut mask = vec![false; df.height()];
        for i in not_member.column("_i")?.idx()?.iter().flatten() {
            mask[i as usize] = true;
        }
        let drop = BooleanChunked::from_slice(NOT_MEMBER_COL.into(), &mask);
        if not_member.height() > 0 {
            let org = df.column("org_id")?.as_materialized_series().clone();
            let nulls = Series::full_null("org_id".into(), org.len(), &DataType::String);
            let kept_org = org.zip_with(&!&drop, &nulls)?;
            df.replace("org_id", kept_org.with_name("org_id".into()).into())?;
        }
        df.with_column(drop.into_column())?;
    }

    // 7 (its first half). The columns the run keeps: the contract's, less the conversions'
    // details and the unused ones, with the file and row, the content hash and the marks.
    let mut keep: Vec<Expr> = schema::EVENTS
        .iter()
        .filter(|c| !EVENT_DETAIL_COLS.contains(&c.name) && !EVENT_UNUSED_COLS.contains(&c.name))
        .map(|c| col(c.name))
        .collect();
    keep.extend(
        [
            FIDX_COL,
            ROW_COL,
            CONTENT_HASH_COL,
            JUNK_COL,
            IS_ORG_COL,
            REASON_COL,
        ]
        .map(col),
    );
    if memberships.is_some() {
        keep.push(col(NOT_MEMBER_COL));
    }
    Ok(df.lazy().select(keep).collect()?)
}

impl EventsChecked {
    /// The end of step 7: the rows used in journey order, the dictionaries cut to their values.
    /// `event_id` and `seq` order the rows but are not put in order with the other columns:
    /// nothing after the read stage holds them for every event (the conversions take their
    /// ids through [`InOrder`], `journeys` reads both again).
    fn in_order(self) -> Result<(InOrder, EventCodes, DataFrame, SourceFiles, SourceStats)> {
        let started = self.started;
        let log = |step: &str| crate::step_done!(started, "events: {step}");
        let rows: Vec<IdxSize> = (self.used.iter())
            .enumerate()
            .filter(|(_, u)| *u == Some(true))
            .map(|(i, _)| i as IdxSize)
            .collect();
        let order = sorted_rows(&self.df, rows, &["ts", "seq", "event_id"], &[])?;
        let event_id = self.df.column("event_id")?.clone();
        let df = take_columnwise(without(self.df, ["event_id", "seq"]), &order)?;
        let (df, codes) = self.codes.used_by(df)?;
        log("sorted");
        let mut st = self.st;
        st.rows_used = df.height() as u64;
        st.rows_read = st.files.iter().map(|f| f.rows).sum();
        let files = SourceFiles {
            files: self.files,
            renames: self.renames,
        };
        let events = InOrder {
            df,
            event_id,
            order,
        };
        Ok((events, codes, self.details, files, st))
    }
}

/// The used events in journey order, and the ids of all rows read with the order that picked
/// them (row `i` of `df` is row `order[i]` of `event_id`).
struct InOrder {
    df: DataFrame,
    event_id: Column,
    order: IdxCa,
}

/// One file's ids and names as codes ([`encode_file`]): each dictionary holds the file's
/// distinct values in the order first seen ([`codes::number_columns`]), until
/// [`EventCodes::merge`] puts the files' dictionaries together.
struct FileCodes {
    event: StringChunked,
    anon: StringChunked,
    user: StringChunked,
    org: StringChunked,
}

/// The events' ids and names as codes ([`EVENT_CODE_COLS`]) into the file's own dictionaries:
/// the string columns are replaced by UInt32 columns. The cookie dictionary takes the
/// `previous_id` of alias events (`alias` names them) and no other.
fn encode_file(mut df: DataFrame, alias: &str) -> Result<(DataFrame, FileCodes)> {
    use crate::codes::number_columns;
    let strs = |name: &str| -> Result<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (event, mut event_codes) = number_columns(&[strs("event")?], 0);
    let event_codes = event_codes.pop().unwrap_or_default();
    let alias_code = event
        .str()?
        .iter()
        .position(|n| n == Some(alias))
        .map_or(NONE, |i| i as u32);
    let alias_prev: StringChunked = strs("previous_id")?
        .iter()
        .zip(&event_codes)
        .map(|(p, &c)| if c == alias_code { p } else { None })
        .collect();
    let (anon, mut anon_codes) = number_columns(&[strs("anon_id")?, alias_prev], 0);
    let (user, mut user_codes) = number_columns(&[strs("user_id")?], 0);
    let (org, mut org_codes) = number_columns(&[strs("org_id")?], 0);
    let prev_codes = anon_codes.pop().unwrap_or_default();
    let anon_codes = anon_codes.pop().unwrap_or_default();
    let columns = [
        ("_event", event_codes),
        ("_anon", anon_codes),
        ("_prev", prev_codes),
        ("_user", user_codes.pop().unwrap_or_default()),
        ("_org", org_codes.pop().unwrap_or_default()),
    ];
    df = df.drop_many(EVENT_CODE_COLS.map(|(_, name)| name));
    for (name, codes) in columns {
        df.with_column(Column::new(name.into(), codes))?;
    }
    let codes = FileCodes {
        event: event.str()?.clone(),
        anon: anon.str()?.clone(),
        user: user.str()?.clone(),
        org: org.str()?.clone(),
    };
    Ok((df, codes))
}

/// All events' ids and names as codes into sorted dictionaries, as [`read_events`] encodes
/// them file by file ([`encode_file`], then [`EventCodes::merge`]), for one frame.
#[cfg(test)]
fn encode_events(df: DataFrame, alias: &str) -> Result<(DataFrame, EventCodes)> {
    let (mut frames, codes) = EventCodes::merge(vec![encode_file(df, alias)?])?;
    Ok((frames.pop().expect("one frame"), codes))
}

impl EventCodes {
    /// The dictionaries of all `files` (each encoded alone by [`encode_file`]): the sorted
    /// distinct values of theirs, and each file's code columns renumbered into them. The same
    /// codes and dictionaries as encoding the files' rows together.
    fn merge(files: Vec<(DataFrame, FileCodes)>) -> Result<(Vec<DataFrame>, EventCodes)> {
        use crate::codes::merge_dictionaries;
        let (frames, codes): (Vec<DataFrame>, Vec<FileCodes>) = files.into_iter().unzip();
        let of = |pick: fn(&FileCodes) -> &StringChunked| -> Vec<StringChunked> {
            codes.iter().map(|c| pick(c).clone()).collect()
        };
        // Cookies on one thread, names, users and orgs on the other. Each file's dictionary
        // has distinct values, so its codes in the merged one are a map from its own codes.
        let (anon, others) = crate::parallel::join(
            || merge_dictionaries(&of(|c| &c.anon)),
            || -> Result<_> {
                Ok((
                    merge_dictionaries(&of(|c| &c.event))?,
                    merge_dictionaries(&of(|c| &c.user))?,
                    merge_dictionaries(&of(|c| &c.org))?,
                ))
            },
        );
        drop(codes);
        let (anon, anon_maps) = anon?;
        let ((event, event_maps), (user, user_maps), (org, org_maps)) = others?;
        // Each frame is taken by the thread that renumbers it, its old codes freed there.
        let frames: Vec<std::sync::Mutex<DataFrame>> =
            frames.into_iter().map(std::sync::Mutex::new).collect();
        let renumbered = crate::parallel::map(&frames, 4, |i, df| -> Result<DataFrame> {
            let mut df = std::mem::take(
                &mut *df
                    .lock()
                    .map_err(|_| Error::Internal("an event file's frame was poisoned".into()))?,
            );
            for (name, map) in [
                ("_event", &event_maps[i]),
                ("_anon", &anon_maps[i]),
                ("_prev", &anon_maps[i]),
                ("_user", &user_maps[i]),
                ("_org", &org_maps[i]),
            ] {
                let mut codes = codes::values_or(df.column(name)?.u32()?, NONE);
                codes::renumber_in_place(&mut codes, map);
                df.with_column(Column::new(name.into(), codes))?;
            }
            Ok(df)
        })?;
        Ok((
            renumbered,
            EventCodes {
                event,
                anon,
                user,
                org,
            },
        ))
    }
}

/// The job may name other columns for a conversion's value and currency.
fn event_renames(cfg: &JobConfig) -> Vec<(String, &'static str)> {
    [
        (&cfg.attribution.value_column, "value"),
        (&cfg.attribution.currency_column, "currency"),
    ]
    .into_iter()
    .filter(|(from, to)| from.as_str() != *to)
    .map(|(from, to)| (from.clone(), to))
    .collect()
}

/// The row-local steps of reading one event file: pseudonymize personal ids, quarantine rows
/// without an event_id or with absurd ids, null runaway values, hash each row's content (to
/// tell conflicting repeated deliveries later) and split off the conversions' details.
/// Returns the narrow frame (with `_fidx`, `_row`, `_h`) and the details (`_fidx`, `_row` and
/// [`EVENT_DETAIL_COLS`], conversion rows only).
fn event_file(
    df: DataFrame,
    fidx: u32,
    conversions: &Series,
    q: &mut Vec<DataFrame>,
    st: &mut SourceStats,
) -> Result<(DataFrame, DataFrame)> {
    // 0. Ids that are emails or phone numbers are pseudonymized before anything reads them.
    let (df, pseudonymized) = privacy::pseudonymize_ids(df, EVENT_PSEUDONYMIZED, MAX_ID_CHARS)?;
    st.ids_pseudonymized += pseudonymized;

    // 1. An event without an event_id cannot be deduplicated or referenced.
    let df = trim_event_ids(df)?;
    let df = quarantine_reasons(
        df,
        &[
            (missing_event_id(), "missing_event_id"),
            (id_too_long(EVENT_IDS), "id_too_long"),
        ],
        "events",
        true,
        q,
        st,
    )?;
    let (mut df, long_values) = null_values_too_long(df, EVENT_IDS)?;
    *st.values_too_long.get_or_insert(0) += long_values;

    // The content of a delivery, as compared between copies of one event_id.
    let mut hashes: Vec<u64> = Vec::with_capacity(df.height());
    let state = PlSeedableRandomStateQuality::fixed();
    for (i, c) in schema::EVENTS.iter().enumerate() {
        let s = df.column(c.name)?.as_materialized_series();
        if i == 0 {
            s.vec_hash(state.clone(), &mut hashes)?;
        } else {
            s.vec_hash_combine(state.clone(), &mut hashes)?;
        }
    }
    let height = df.height();
    df.with_column(Column::new(CONTENT_HASH_COL.into(), hashes))?;
    df.with_column(Column::new_scalar(
        FIDX_COL.into(),
        Scalar::from(fidx),
        height,
    ))?;

    let is_conv = df
        .clone()
        .lazy()
        .select([col("event")
            .is_in(lit(conversions.clone()).implode(true), false)
            .fill_null(lit(false))
            .alias("c")])
        .collect()?;
    let mut detail_cols = vec![FIDX_COL, ROW_COL];
    detail_cols.extend(EVENT_DETAIL_COLS);
    let details = df
        .select(detail_cols)?
        .filter(is_conv.column("c")?.bool()?)?;
    let mut dropped: Vec<&str> = EVENT_DETAIL_COLS.to_vec();
    dropped.extend(EVENT_UNUSED_COLS);
    dropped.extend([FILE_COL, DT_COL]);
    let mut narrow = df.drop_many(dropped);
    narrow.rechunk_mut();
    Ok((narrow, details))
}

/// The id columns of the raw events of a run (files with `dt <= date`, in the read stage's
/// order: partition, then path, then row), cleaned as the read stage cleans them, for the rows
/// matching `keep`; used by `explain --input` to find a person's raw rows.
///
/// Only the columns `event_id`, `event`, `ts`, `anon_id`, `user_id`, `previous_id` and
/// `org_id` of each file are decoded, and each file is checked against the contract like the run
/// checks it. Columns out: `source` (`events`), `file`, `dt`, `row` (0-based in the file),
/// `row_key` (the `quarantine` table's key), `event_id` (trimmed, pseudonymized), `event`, `ts`
/// (µs UTC), `anon_id`, `user_id` (junk ids null, personal ids pseudonymized, as in the
/// tables), and `early_reason`: `missing_event_id` or `id_too_long` for rows the run
/// quarantines before deduplication (null otherwise). `keep` is evaluated over these columns.
pub fn raw_event_ids(lake: &Lake, date: NaiveDate, keep: Expr) -> Result<(DataFrame, usize)> {
    let names = [
        "event_id",
        "event",
        "ts",
        "anon_id",
        "user_id",
        "previous_id",
        "org_id",
    ];
    raw_ids(lake, "events", date, &names, |df| {
        let (df, _) = privacy::pseudonymize_ids(df, EVENT_PSEUDONYMIZED, MAX_ID_CHARS)?;
        Ok(df
            .lazy()
            .with_column(strip_event_id())
            .with_columns([
                row_key_expr(true).alias("row_key"),
                when(missing_event_id())
                    .then(lit("missing_event_id"))
                    .when(id_too_long(EVENT_IDS))
                    .then(lit("id_too_long"))
                    .otherwise(lit(NULL).cast(DataType::String))
                    .alias("early_reason"),
            ])
            .with_columns([clean_id("anon_id"), clean_id("user_id")])
            .select([
                lit("events").alias("source"),
                col(FILE_COL).alias("file"),
                col(DT_COL).alias("dt"),
                col(ROW_COL).alias("row"),
                col("row_key"),
                col("event_id"),
                col("event"),
                col("ts"),
                col("anon_id"),
                col("user_id"),
                col("early_reason"),
            ])
            .filter(keep.clone()))
    })
}

/// The `anon_id` of the raw touches of a run (files with `dt <= date`), cleaned as the read
/// stage cleans it, for the rows matching `keep`. Columns out: `source` (`touches`), `file`,
/// `dt`, `row`, `row_key` (`row N`, the `quarantine` key of a touch), `ts`, `anon_id`.
pub fn raw_touch_ids(lake: &Lake, date: NaiveDate, keep: Expr) -> Result<(DataFrame, usize)> {
    raw_ids(lake, "touches", date, &["anon_id", "ts"], |df| {
        let (df, _) = privacy::pseudonymize_ids(df, &["anon_id"], MAX_ID_CHARS)?;
        Ok(df
            .lazy()
            .with_column(row_key_expr(false).alias("row_key"))
            .with_column(clean_id("anon_id"))
            .select([
                lit("touches").alias("source"),
                col(FILE_COL).alias("file"),
                col(DT_COL).alias("dt"),
                col(ROW_COL).alias("row"),
                col("row_key"),
                col("ts"),
                col("anon_id"),
            ])
            .filter(keep.clone()))
    })
}

/// The columns `names` of each raw file of `source` with `dt <= date` (checked against the
/// contract like the run checks them), through `rows`, put together; and the number of files.
fn raw_ids(
    lake: &Lake,
    source: &str,
    date: NaiveDate,
    names: &[&str],
    rows: impl Fn(DataFrame) -> Result<LazyFrame>,
) -> Result<(DataFrame, usize)> {
    let all = if source == "events" {
        schema::EVENTS
    } else {
        schema::TOUCHES
    };
    let spec: Vec<ColumnSpec> = all
        .iter()
        .filter(|c| names.contains(&c.name))
        .copied()
        .collect();
    let files = list_files(lake, source, Some(date))?;
    let mut frames = Vec::new();
    for (path, dt) in &files {
        let df = schema::read_file(lake.get(path)?, path, dt, &spec, false, &[])?;
        frames.push(rows(df)?.collect()?);
    }
    let df = match frames.len() {
        0 => DataFrame::empty(),
        _ => polars::functions::concat_df_diagonal(&frames)?,
    };
    Ok((df, files.len()))
}

/// Which rows are the copy kept of their event_id: the first in read order (files by
/// partition, then path; rows in file order), so no sort is needed. Counts the other copies,
/// and those whose content differs from the kept copy's.
fn first_copies(df: &DataFrame, st: &mut SourceStats) -> Result<BooleanChunked> {
    // The rows are spread over buckets by a hash of their id (in row order within a bucket),
    // and each bucket keeps the first row of each id in a small table of its own, side by side
    // on all cores: one hash table over all 10M ids would miss the cache on every row. A later
    // copy is compared with the kept one by content hash.
    let n = df.height();
    let ids = df.column("event_id")?.str()?.rechunk().into_owned();
    let mut id_hash: Vec<u64> = Vec::with_capacity(n);
    ids.clone()
        .into_series()
        .vec_hash(PlSeedableRandomStateQuality::fixed(), &mut id_hash)?;
    let content: Vec<u64> = df
        .column(CONTENT_HASH_COL)?
        .u64()?
        .iter()
        .map(|h| h.unwrap_or(0))
        .collect();
    let (keep, dropped, differs) = keep_first_copies(&ids, &id_hash, &content)?;
    st.rows_deduplicated = dropped;
    st.conflicting_duplicates = Some(differs);
    Ok(BooleanChunked::from_slice(KEPT_COL.into(), &keep))
}

/// For [`first_copies`]: whether each row is the first of its id (`id_hash` a hash of each
/// row's id), the number of other copies, and of those whose `content` hash differs from the
/// kept copy's. Ids are compared whenever their hashes are equal.
fn keep_first_copies(
    ids: &StringChunked,
    id_hash: &[u64],
    content: &[u64],
) -> Result<(Vec<bool>, u64, u64)> {
    const BUCKET_BITS: u32 = 8;
    let n = id_hash.len();
    let bucket = |h: u64| (h >> (64 - BUCKET_BITS)) as usize;
    let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
    for &h in id_hash {
        starts[bucket(h) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut rows = vec![0 as IdxSize; n];
    let mut fill = starts.clone();
    for (i, &h) in id_hash.iter().enumerate() {
        let b = bucket(h);
        rows[fill[b]] = i as IdxSize;
        fill[b] += 1;
    }
    let buckets: Vec<std::ops::Range<usize>> = (0..1usize << BUCKET_BITS)
        .map(|b| starts[b]..starts[b + 1])
        .collect();
    let groups: Vec<&[std::ops::Range<usize>]> = buckets.chunks(32).collect();
    let found = crate::parallel::map(&groups, 4, |_, group| {
        let mut dropped: Vec<IdxSize> = Vec::new();
        let mut differs = 0u64;
        let mut first: PlHashMap<u64, IdxSize> = PlHashMap::default();
        // Kept rows whose id hash equals an earlier kept row's (another id): almost never.
        let mut collided: Vec<IdxSize> = Vec::new();
        for range in group.iter() {
            first.clear();
            collided.clear();
            for &row in &rows[range.clone()] {
                let i = row as usize;
                let kept = *first.entry(id_hash[i]).or_insert(row) as usize;
                if kept == i {
                    continue;
                }
                let same = |k: usize| ids.get(k) == ids.get(i);
                let kept = if same(kept) {
                    Some(kept)
                } else {
                    collided
                        .iter()
                        .map(|&k| k as usize)
                        .find(|&k| id_hash[k] == id_hash[i] && same(k))
                };
                match kept {
                    Some(k) => {
                        dropped.push(row);
                        differs += u64::from(content[k] != content[i]);
                    }
                    None => collided.push(row),
                }
            }
        }
        Ok((dropped, differs))
    })?;
    let mut keep = vec![true; n];
    let (mut n_dropped, mut n_differs) = (0u64, 0u64);
    for (dropped, differs) in found {
        n_dropped += dropped.len() as u64;
        n_differs += differs;
        for row in dropped {
            keep[row as usize] = false;
        }
    }
    Ok((keep, n_dropped, n_differs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values over [`MAX_VALUE_BYTES`] bytes become null and are counted, in every string
    /// column but the ids and the bookkeeping columns; a value of exactly the limit stays.
    #[test]
    fn values_too_long_are_nulled_and_counted() {
        let max = MAX_VALUE_BYTES as usize;
        let long = "é".repeat(max / 2) + "x"; // over the limit in bytes, not in characters
        let limit = "v".repeat(max);
        let df = df!(
            "event_id" => [Some(long.as_str()), Some("e2"), Some("e3"), Some("e4")],
            "_note" => [Some(long.as_str()), None, None, None],
            "session_id" => [Some("s1"), Some(long.as_str()), None, Some(limit.as_str())],
            "order_id" => [Some(long.as_str()), Some(long.as_str()), Some("o3"), None],
            "value" => [1.0, 2.0, 3.0, 4.0],
        )
        .unwrap();
        let (out, n) = null_values_too_long(df.clone(), &["event_id"]).unwrap();
        assert_eq!(n, 3);
        let strs = |name: &str| -> Vec<Option<String>> {
            let ca = out.column(name).unwrap().str().unwrap().clone();
            ca.iter().map(|v| v.map(str::to_string)).collect()
        };
        assert_eq!(strs("event_id")[0].as_deref(), Some(long.as_str()));
        assert_eq!(strs("_note")[0].as_deref(), Some(long.as_str()));
        assert_eq!(
            strs("session_id"),
            [Some("s1".into()), None, None, Some(limit.clone())]
        );
        assert_eq!(strs("order_id"), [None, None, Some("o3".into()), None]);
        assert!(out
            .column("value")
            .unwrap()
            .equals(df.column("value").unwrap()));
    }

    /// `trim_event_ids` gives what trimming every id gives, and keeps a column with nothing
    /// to trim as it is (the same buffers, not a copy).
    #[test]
    fn event_ids_are_trimmed_and_clean_ones_kept() {
        let trimmed = |ids: &[Option<&str>]| {
            let df =
                df!("event_id" => ids, "n" => (0..ids.len() as u32).collect::<Vec<_>>()).unwrap();
            let expected = (df.clone().lazy().with_column(strip_event_id()))
                .collect()
                .unwrap();
            let got = trim_event_ids(df.clone()).unwrap();
            assert!(got.equals_missing(&expected), "{ids:?}");
            (df, got)
        };
        let long = "an-event-id-longer-than-twelve-bytes";
        for dirty in [
            " e1",
            "e1 ",
            "\te1",
            "e1\n",
            "\u{a0}e1",
            "e1\u{3000}",
            " ",
            "é ",
        ] {
            let ids = [Some(long), None, Some("e2"), Some(dirty), Some("")];
            let (df, got) = trimmed(&ids);
            assert!(!got.equals_missing(&df), "{dirty:?} was not trimmed");
        }
        let clean = [Some(long), None, Some("e2"), Some("é-ü"), Some("")];
        let (df, got) = trimmed(&clean);
        let buffers = |df: &DataFrame| -> Vec<*const u8> {
            let ca = df.column("event_id").unwrap().str().unwrap().clone();
            (ca.downcast_iter())
                .flat_map(|a| {
                    a.data_buffers()
                        .iter()
                        .map(|b| b.as_ptr())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(buffers(&got), buffers(&df));
    }

    /// The four dictionaries of `codes`: names, cookies, users, orgs.
    fn dictionaries(codes: &EventCodes) -> [&Series; 4] {
        [&codes.event, &codes.anon, &codes.user, &codes.org]
    }

    /// An event's name, anon_id, previous_id, user_id and org_id.
    type EncodedRow = (
        &'static str,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    proptest! {
        /// The fast path of `clean_id_value` (nothing to trim) gives what trimming gives:
        /// whitespace (ASCII and not), quotes, junk ids in any case, plain ids.
        #[test]
        fn clean_id_value_is_trim_then_junk_check(
            v in "[ \"'`\u{a0}\t]{0,2}(nUll|NaN|none|a_1|é|x y|)[ \"'`\u{a0}\t]{0,2}"
        ) {
            let trimmed = v.trim();
            let core = trimmed.trim_matches(|c| matches!(c, '"' | '\'' | '`')).trim();
            let junk = core.is_empty()
                || JUNK_IDS.iter().any(|j| j.eq_ignore_ascii_case(core));
            prop_assert_eq!(clean_id_value(&v), (!junk).then_some(trimmed));
        }
    }

    proptest! {
        /// `more_chars_than` is polars' character count compared with the limit, nulls false.
        #[test]
        fn more_chars_than_counts_characters_not_bytes(
            values in proptest::collection::vec(proptest::option::of("[aé€😀]{0,8}"), 0..40),
            max in 0usize..8,
        ) {
            let ca = StringChunked::new("id".into(), &values);
            let ours: Vec<bool> = more_chars_than(&ca, max).iter().map(|b| b == Some(true)).collect();
            let theirs: Vec<bool> = values
                .iter()
                .map(|v| v.as_ref().is_some_and(|v| v.chars().count() > max))
                .collect();
            prop_assert_eq!(ours, theirs);
        }

        /// Files encoded one by one and merged give the codes and dictionaries of all their
        /// rows encoded together: any split of the rows into files, values shared between
        /// files or not, nulls, and alias events whose previous_id joins the cookies.
        #[test]
        fn files_encoded_apart_and_merged_equal_encoding_them_together(
            rows in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["alias", "page", "signup"]),
                    proptest::option::of("[a-d]{1,2}"),
                    proptest::option::of("[a-e]{1,2}"),
                    proptest::option::of("u[0-3]"),
                    proptest::option::of("o[0-2]"),
                ),
                0..30,
            ),
            cuts in proptest::collection::vec(0usize..30, 0..4),
        ) {
            let frame = |rows: &[EncodedRow]| {
                df!(
                    "event" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                    "anon_id" => rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
                    "previous_id" => rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
                    "user_id" => rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>(),
                    "org_id" => rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>(),
                )
                .unwrap()
            };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(rows.len())).collect();
            cuts.sort_unstable();
            let bounds: Vec<usize> = std::iter::once(0)
                .chain(cuts)
                .chain(std::iter::once(rows.len()))
                .collect();
            let files: Vec<(DataFrame, FileCodes)> = bounds
                .windows(2)
                .map(|w| encode_file(frame(&rows[w[0]..w[1]]), "alias").unwrap())
                .collect();
            let (frames, merged) = EventCodes::merge(files).unwrap();
            let mut apart = frames[0].clone();
            for f in &frames[1..] {
                apart.vstack_mut(f).unwrap();
            }
            let (together, codes) = encode_events(frame(&rows), "alias").unwrap();
            prop_assert!(apart.equals_missing(&together), "{apart:?} != {together:?}");
            for (a, b) in dictionaries(&merged).into_iter().zip(dictionaries(&codes)) {
                prop_assert!(a.equals_missing(b), "{a:?} != {b:?}");
                // Sorted and distinct: a code is an index into a sorted dictionary.
                let values: Vec<&str> = a.str().unwrap().iter().flatten().collect();
                prop_assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
            }
            // Every value of the rows is in its dictionary, and only those.
            let mut cookies: Vec<String> = rows
                .iter()
                .flat_map(|r| {
                    let prev = if r.0 == "alias" { r.2.clone() } else { None };
                    [r.1.clone(), prev]
                })
                .flatten()
                .collect();
            cookies.sort();
            cookies.dedup();
            let anon: Vec<String> = merged.anon.str().unwrap().iter().flatten().map(String::from).collect();
            prop_assert_eq!(anon, cookies);
        }

        /// `sorted_rows` gives the order of polars' stable multi-column sort (nulls first),
        /// over any subset of the rows: times with nulls and many ties, over several of the
        /// spans it sorts one at a time (before and after 1970 too), ties broken by an
        /// integer, then a string, then the row.
        #[test]
        fn sorted_rows_is_polars_stable_sort_nulls_first(
            rows in proptest::collection::vec(
                (
                    proptest::option::weighted(
                        0.9,
                        (-4i64..8).prop_map(|t| t * (SORT_SPAN / 3) + t % 2),
                    ),
                    proptest::option::weighted(0.8, 0i64..3),
                    proptest::option::of("[ab]{0,2}"),
                    any::<bool>(),
                ),
                0..60,
            )
        ) {
            let df = df! {
                "ts" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                "seq" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                "event_id" => rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
            }
            .unwrap();
            let picked: Vec<IdxSize> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.3)
                .map(|(i, _)| i as IdxSize)
                .collect();
            let ours: Vec<IdxSize> = sorted_rows(&df, picked.clone(), &["ts", "seq", "event_id"], &[])
                .unwrap()
                .into_no_null_iter()
                .collect();
            let theirs: Vec<IdxSize> = df
                .take(&IdxCa::from_vec("i".into(), picked.clone()))
                .unwrap()
                .with_column(Column::new("_pick".into(), picked.clone()))
                .unwrap()
                .sort(
                    ["ts", "seq", "event_id"],
                    SortMultipleOptions::default()
                        .with_nulls_last(false)
                        .with_maintain_order(true),
                )
                .unwrap()
                .column("_pick")
                .unwrap()
                .idx()
                .unwrap()
                .into_no_null_iter()
                .collect();
            prop_assert_eq!(ours, theirs);
        }
    }

    /// Encoding all rows, putting the used ones in order and cutting the dictionaries gives
    /// the codes and dictionaries of encoding the used rows alone: values only unused rows
    /// have leave the dictionaries, and only alias events put their previous_id in the
    /// cookies' dictionary.
    #[test]
    fn event_codes_cut_to_the_rows_used_equal_encoding_those_rows_alone() {
        let frame = |rows: &[usize]| {
            let pick = |v: &[Option<&'static str>]| -> Vec<Option<&'static str>> {
                rows.iter().map(|&r| v[r]).collect()
            };
            df!(
                "event_id" => pick(&[Some("e0"), Some("e1"), Some("e2"), Some("e3"), Some("e4")]),
                "event" => pick(&[Some("alias"), Some("page"), Some("junk"), Some("signup"), Some("alias")]),
                "anon_id" => pick(&[Some("c2"), Some("c1"), Some("c9"), None, Some("c1")]),
                "previous_id" => pick(&[Some("c0"), Some("c8"), None, None, Some("c3")]),
                "user_id" => pick(&[None, Some("u2"), Some("u9"), Some("u1"), None]),
                "org_id" => pick(&[None, Some("o1"), Some("o9"), None, None]),
            )
            .unwrap()
        };
        // Row 2 is not used; the used rows in their journey order: 4, 0, 3, 1.
        let order = [4usize, 0, 3, 1];
        let (all, codes) = encode_events(frame(&[0, 1, 2, 3, 4]), "alias").unwrap();
        let idx = IdxCa::from_vec("i".into(), order.iter().map(|&i| i as IdxSize).collect());
        let (cut, codes) = codes.used_by(all.take(&idx).unwrap()).unwrap();
        let (alone, alone_codes) = encode_events(frame(&order), "alias").unwrap();
        assert_eq!(cut, alone);
        for (a, b) in dictionaries(&codes)
            .into_iter()
            .zip(dictionaries(&alone_codes))
        {
            assert!(a.equals_missing(b), "{a:?} != {b:?}");
        }
        let anon: Vec<Option<&str>> = codes.anon.str().unwrap().iter().collect();
        // c8 is the previous_id of a page view, c9 only on the unused row.
        assert_eq!(anon, [Some("c0"), Some("c1"), Some("c2"), Some("c3")]);
        let events: Vec<Option<&str>> = codes.event.str().unwrap().iter().collect();
        assert_eq!(events, [Some("alias"), Some("page"), Some("signup")]);
    }

    /// The first copy of each id is kept whatever the id hashes are: with every hash equal
    /// (each id collides with all the others) and with distinct hashes, the same answer.
    #[test]
    fn first_copies_are_exact_even_when_id_hashes_collide() {
        let ids = StringChunked::new(
            "event_id".into(),
            [
                Some("a"),
                Some("b"),
                Some("a"),
                Some("c"),
                Some("b"),
                Some("a"),
                None,
                None,
            ],
        );
        let content = [1, 2, 1, 3, 9, 7, 5, 5];
        let expected = vec![true, true, false, true, false, false, true, false];
        let all_equal = vec![42u64; ids.len()];
        let mut real = Vec::new();
        ids.clone()
            .into_series()
            .vec_hash(PlSeedableRandomStateQuality::fixed(), &mut real)
            .unwrap();
        for hashes in [all_equal, real] {
            let (keep, dropped, differs) = keep_first_copies(&ids, &hashes, &content).unwrap();
            assert_eq!(keep, expected);
            assert_eq!(dropped, 4);
            // b: 9 against 2; a: 7 against 1 (the second a matches); the nulls match.
            assert_eq!(differs, 2);
        }
    }

    /// A few rows picked from a column of long strings hold the whole column's buffers (which
    /// polars' estimate does not count), and nothing more once compacted.
    #[test]
    fn held_bytes_counts_the_buffers_a_picked_column_keeps() {
        let long = |i: usize| format!("a value longer than twelve bytes, number {i:05}");
        let values: Vec<String> = (0..1000).map(long).collect();
        let all: usize = values.iter().map(String::len).sum();
        let df = df!("s" => values).unwrap();
        let picked = df
            .take(&IdxCa::from_vec("i".into(), vec![3, 500, 999]))
            .unwrap();
        assert!(picked.estimated_size() < 200);
        assert!(
            held_bytes(&picked) >= all,
            "the column's buffers are counted"
        );
        let own = compact(picked).unwrap();
        let mine = 3 * long(0).len();
        assert_eq!(held_bytes(&own), mine + 3 * 16);
    }

    /// A column gathered from several chunks (whose strings polars copies) is kept as it is,
    /// one gathered from a single chunk (views into the whole column's buffers) is copied; both
    /// end up holding only their own values, and the same values.
    #[test]
    fn strings_are_copied_only_when_their_buffers_hold_more_than_their_values() {
        let long = |i: usize| format!("a value longer than twelve bytes, number {i:05}");
        let mut two = df!("s" => (0..100).map(|i| Some(long(i))).collect::<Vec<_>>()).unwrap();
        two.vstack_mut_owned(
            df!("s" => (100..200).map(|i| (i % 7 != 0).then(|| long(i))).collect::<Vec<_>>())
                .unwrap(),
        )
        .unwrap();
        let mut one = two.clone();
        one.rechunk_mut();
        assert_eq!(two.column("s").unwrap().n_chunks(), 2);
        assert_eq!(one.column("s").unwrap().n_chunks(), 1);
        let idx = IdxCa::from_vec("i".into(), vec![150, 3, 3, 99, 140, 101]);
        let buffers = |c: &Column| -> Vec<usize> {
            let s = c.str().unwrap();
            s.downcast_iter().map(|a| a.total_buffer_len()).collect()
        };
        let from_two = two.column("s").unwrap().take(&idx).unwrap();
        let from_one = one.column("s").unwrap().take(&idx).unwrap();
        assert!(holds_only_its_values(
            from_two.str().unwrap().downcast_iter().next().unwrap()
        ));
        assert!(!holds_only_its_values(
            from_one.str().unwrap().downcast_iter().next().unwrap()
        ));
        let kept = owned_strings(from_two.as_materialized_series().clone());
        let copied = owned_strings(from_one.as_materialized_series().clone());
        assert_eq!(buffers(&kept), buffers(&from_two), "not copied again");
        let values: usize = (copied.str().unwrap().iter().flatten()).map(str::len).sum();
        assert_eq!(buffers(&copied).iter().sum::<usize>(), values);
        assert!(kept.equals_missing(&copied));
        assert!(kept.equals_missing(&from_one));
    }

    /// The parts hold, in order, the rows a single compact take gives; each part's strings
    /// are in buffers of its own (no part keeps the input's values alive), and no rows still
    /// give one empty frame with the columns.
    #[test]
    fn compact_parts_are_the_rows_in_order_each_with_its_own_buffers() {
        let long = |i: usize| format!("a value longer than twelve bytes, number {i}");
        let df = df!(
            "s" => (0..10).map(|i| Some(long(i))).collect::<Vec<_>>(),
            "n" => (0..10u32).collect::<Vec<_>>(),
        )
        .unwrap();
        let idx = IdxCa::from_vec("i".into(), vec![9, 2, 4, 4, 7, 0, 1]);
        let whole = take_compact(df.clone(), &idx).unwrap();
        let parts = take_compact_parts(df.clone(), &idx, 3).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.height()).collect::<Vec<_>>(),
            [3, 3, 1]
        );
        let mut stacked = parts[0].clone();
        for p in &parts[1..] {
            stacked.vstack_mut(p).unwrap();
        }
        assert!(stacked.equals(&whole));
        for p in &parts {
            let bytes: usize = p
                .column("s")
                .unwrap()
                .str()
                .unwrap()
                .downcast_iter()
                .map(|a| a.total_buffer_len())
                .sum();
            let values: usize = p
                .column("s")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .flatten()
                .map(str::len)
                .sum();
            assert_eq!(bytes, values, "a part holds only its own values");
        }
        let none = take_compact_parts(df, &IdxCa::from_vec("i".into(), vec![]), 3).unwrap();
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].height(), 0);
        assert_eq!(none[0].get_column_names(), ["s", "n"]);
    }
}
