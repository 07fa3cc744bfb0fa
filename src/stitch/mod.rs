//! Stage 3, **stitch**: persons' journeys and touches, as the analyst tables
//! `identity_map`, `persons`, `anon_visitors`, `user_attribution` and `journeys` (contract §4).
//!
//! Everything here is decided by event time over the whole history read (§3.7): the first
//! touch is the earliest counting touch of any of the person's cookies, `signup_at` and
//! `first_purchase_at` the earliest such events, whatever order links were made in.

pub mod touches;

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::attribute::channel::{channel_columns, classify_touches, TouchChannels};
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::identity::union_find::NONE;
use crate::identity::IdentityGraph;
use crate::read::RawLake;

/// The stitched tables of one run.
#[derive(Debug, Clone)]
pub struct Tables {
    /// One row per segment.
    pub identity_map: DataFrame,
    /// One row per person.
    pub persons: DataFrame,
    /// One row per cookie.
    pub anon_visitors: DataFrame,
    /// One row per user.
    pub user_attribution: DataFrame,
    /// One row per used event, in the order of `RawLake::events`: the columns of `journeys`
    /// held in memory, plus `_fidx` and `_row` (see [`JOURNEY_COLUMNS`]); `event`, `anon_id`
    /// and `org_id` as codes (`_event`, `_anon`, `_org`) into [`Tables::event_codes`].
    pub journeys: DataFrame,
    /// The dictionaries of the events' codes (see `RawLake::event_codes`).
    pub event_codes: crate::read::EventCodes,
    /// One row per refused union (an addition beyond the contract, see [`refused_unions`]).
    pub refused_unions: DataFrame,
    /// The rows of `journeys` by day (UTC date of `ts`, the `dt` partition), days ascending,
    /// each day's rows in publishing order.
    pub journey_days: Vec<DayRows>,
    /// Whether each touch (row of `RawLake::touches`) counts (contract §3.4).
    pub touch_counts: BooleanChunked,
    /// Channel, source, medium and campaign of each touch (GA4 default channel group).
    pub touch_channels: TouchChannels,
    /// `person_id` of each person, in person index order.
    pub person_ids: Series,
    /// `user_id` (nullable) of each person, in person index order.
    pub person_users: Series,
    /// Counts.
    pub stats: StitchStats,
}

/// Counts of the stitch stage, for the manifest.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StitchStats {
    /// Rows of `journeys`.
    pub journey_events: u64,
    /// Events whose user was filled in from their cookie's person.
    pub backfilled_events: u64,
    /// Touches that carry attribution.
    pub counting_touches: u64,
    /// Direct visits (overwrite nothing).
    pub direct_touches: u64,
    /// Persons with a first touch.
    pub persons_with_first_touch: u64,
    /// Conversion events.
    pub conversions: u64,
}

/// Datetime(µs, UTC) series from microseconds.
pub fn ts_series(name: &str, values: Vec<Option<i64>>) -> Result<Series> {
    let s = Series::new(name.into(), values);
    Ok(s.cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))?)
}

pub use crate::codes::gather;

fn opt_str(name: &str, values: Vec<Option<String>>) -> Series {
    Series::new(name.into(), values)
}

/// `person_id` and `user_id` (nullable) of every person, in person index order.
fn person_columns(graph: &IdentityGraph) -> Result<(Series, Series)> {
    let person_ids = Series::new(
        "person_id".into(),
        graph
            .persons
            .iter()
            .map(|p| p.person_id.as_str())
            .collect::<Vec<_>>(),
    );
    let person_user_idx: Vec<u32> = graph.persons.iter().map(|p| p.user).collect();
    let person_users = gather(&graph.user_ids, &person_user_idx, "user_id")?;
    Ok((person_ids, person_users))
}

/// First and last counting touch per owner (person or cookie).
struct FirstLast {
    first: Vec<u32>,
    last: Vec<u32>,
}

impl FirstLast {
    fn new(n: usize) -> Self {
        FirstLast {
            first: vec![NONE; n],
            last: vec![NONE; n],
        }
    }
    fn see(&mut self, owner: u32, row: u32) {
        let o = owner as usize;
        if self.first[o] == NONE {
            self.first[o] = row;
        }
        self.last[o] = row;
    }
}

/// What stitch needs to know of each touch that does not depend on the identity graph, so that
/// it can be worked out beside [`crate::identity::build`] (see [`touch_facts`]).
#[derive(Debug, Clone)]
pub struct TouchFacts {
    /// Whether each touch (row of `RawLake::touches`) counts (contract §3.4).
    pub counts: BooleanChunked,
    /// Channel, source, medium and campaign of each touch.
    pub channels: TouchChannels,
}

/// Touches classified at a time (their text looked up from codes for these only).
const FACT_PART_ROWS: usize = 1 << 18;

/// Which touches count, and their channels.
pub fn touch_facts(raw: &RawLake) -> Result<TouchFacts> {
    let started = std::time::Instant::now();
    // Which touches count is read from the codes. Classification reads the values: they are
    // looked up a part at a time, so that the views of every touch's text are never held at
    // once.
    let counts = touches::counting(&raw.touches, &raw.touch_text, &raw.touch_extra_keys)?;
    let mut channels = TouchChannels::default();
    let n = raw.touches.height();
    let mut parts = crate::parallel::slices(n, n.div_ceil(FACT_PART_ROWS));
    if parts.is_empty() {
        parts.push(0..0);
    }
    for range in parts {
        let rows = raw.touches.slice(range.start as i64, range.len());
        let part = raw.touch_text.decode(&rows, None)?;
        channels.append(classify_touches(&part, &raw.touch_extra_keys)?)?;
    }
    channels.classes.rechunk_mut();
    crate::step_done!(started, "stitch: touches counted and classified");
    Ok(TouchFacts { counts, channels })
}

/// The first and last counting touch of every person and cookie, and the JSON of each of those
/// touches (the only thing stitch reads of the touches' columns beyond their time): worked out
/// before [`stitch`], so that the run can drop the touch columns nothing else reads before the
/// tables are built.
pub struct TouchPicks {
    by_person: FirstLast,
    by_cookie: FirstLast,
    /// The rows of the touches the tables show, ascending.
    wanted: Vec<u32>,
    /// The JSON of each of `wanted`.
    json: Series,
    counting: u64,
    direct: u64,
}

/// Pick the first and last counting touches (rows are in time order, so the first seen is the
/// earliest and the last seen the latest) and render them as JSON.
///
/// The touches' columns are not read after this: `raw.touches` is left with `ts` (and where
/// each touch was read, for the exports to read theirs again) and the dictionaries of their
/// text are freed. The rows the tables show (about half of them) are rendered in
/// [`touches::JSON_PARTS`] parts: the columns not held for every touch are read again for them
/// first (`again`), and each part's text is looked up from its codes only when the part's turn
/// comes, and freed once its JSON is rendered.
pub fn pick_touches(
    raw: &mut RawLake,
    graph: &IdentityGraph,
    facts: &TouchFacts,
    again: crate::read::TouchesAgain<'_>,
) -> Result<TouchPicks> {
    let started = std::time::Instant::now();
    let seg = &graph.segmentation;
    let mut by_person = FirstLast::new(graph.persons.len());
    let mut by_cookie = FirstLast::new(seg.cookies.len());
    let (mut counting, mut direct) = (0u64, 0u64);
    for (row, c) in facts.counts.iter().enumerate() {
        if c == Some(true) {
            counting += 1;
            let sg = seg.touch_segment[row];
            by_person.see(graph.touch_person[row], row as u32);
            by_cookie.see(seg.segments[sg as usize].anon, row as u32);
        } else {
            direct += 1;
        }
    }
    let mut wanted: Vec<u32> = by_person
        .first
        .iter()
        .chain(&by_person.last)
        .chain(&by_cookie.first)
        .chain(&by_cookie.last)
        .copied()
        .filter(|&r| r != NONE)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    // The JSON of every touch a table shows, once; each table's column is a gather from it
    // (views into one buffer: up to four tables show one touch, and the text is the biggest
    // part of them). `publish` encodes such columns as they are, without a compact copy.
    let all = std::mem::take(&mut raw.touches);
    let text = std::mem::take(&mut raw.touch_text);
    raw.touches = all.select(["ts", crate::read::FIDX_COL, crate::read::schema::ROW_COL])?;
    // The shown touches' codes, taken before the files are read again: the other touches'
    // codes are freed first (at 20M events they were about 300 MB beside the columns read
    // again and the JSON being rendered: the run's peak). Their `anon_id`s are copied: views
    // would hold every touch's cookie text (about 170 MB at 20M events) while the JSON is
    // rendered.
    let rows = IdxCa::from_slice("rows".into(), &wanted);
    let shown = crate::read::take_compact(all, &rows)?;
    crate::progress::release_memory();
    let at = shown.select([crate::read::FIDX_COL, crate::read::schema::ROW_COL])?;
    // The columns not held for every touch, read again for these (one pass over the files)
    // and copied into parts.
    let read_again = again(&at, &crate::read::TOUCH_REREAD_COLS)?;
    drop(at);
    let in_order = IdxCa::from_vec("rows".into(), (0..wanted.len() as IdxSize).collect());
    let again_parts: Vec<std::sync::Mutex<Option<DataFrame>>> =
        crate::read::take_compact_parts(read_again, &in_order, touches::JSON_PARTS)?
            .into_iter()
            .map(|p| std::sync::Mutex::new(Some(p)))
            .collect();
    // Each part's text is looked up in the dictionaries (views into them, no copy) when its
    // turn to be rendered comes: only the parts being rendered are held as text.
    let row_parts = crate::read::idx_parts(&in_order, touches::JSON_PARTS);
    let json = touches::to_json_made(row_parts.len(), &raw.touch_extra_keys, |i| {
        let mut part = text.decode(&shown, Some(&row_parts[i]))?;
        let more = again_parts[i]
            .lock()
            .map_err(|_| Error::Internal("a touch JSON thread panicked".into()))?
            .take()
            .unwrap_or_default();
        for c in more.into_columns() {
            part.with_column(c)?;
        }
        Ok(part)
    })?
    .into_series();
    drop((shown, text));
    crate::step_done!(started, "stitch: touch JSON");
    Ok(TouchPicks {
        by_person,
        by_cookie,
        wanted,
        json,
        counting,
        direct,
    })
}

/// Build the analyst tables: the journeys and the person-level tables from the raw lake, its
/// identity graph, the [`touch_facts`] of its touches and the [`pick_touches`] of them.
pub fn stitch(
    raw: &RawLake,
    graph: &IdentityGraph,
    facts: TouchFacts,
    picks: TouchPicks,
    cfg: &JobConfig,
) -> Result<Tables> {
    stitch_into(raw, graph, facts, picks, cfg, &|_, df| Ok(df), None)
}

/// Where [`stitch_into`] hands each of `persons`, `identity_map`, `anon_visitors` and
/// `user_attribution` as soon as it is built, by name; what it returns is kept in [`Tables`]
/// (the pipeline writes the table and keeps nothing: the four together, with their touch
/// JSON, were about 750 MB at 10M events). Called from more than one thread.
pub type Sink<'a> = &'a (dyn Fn(&'static str, DataFrame) -> Result<DataFrame> + Sync);

/// Work of a later stage that [`stitch_into`] runs after its own tables, on the first of its
/// threads to be free: it reads none of the tables, and keeps what it makes itself.
pub type After<'a> = &'a (dyn Fn() -> Result<()> + Sync);

/// A piece of [`stitch_into`]'s work done.
enum Built {
    /// The work `after` ([`After`]) done.
    After,
    Table(DataFrame),
    Events {
        journeys: DataFrame,
        day_rows: Vec<DayRows>,
        user_attribution: DataFrame,
        conversions: u64,
        backfilled_events: u64,
    },
}

/// [`stitch`], handing the person-level tables to `sink` as they are built, and running
/// `after` on the first of its two threads to be free once the tables are handed out (see
/// [`After`]).
pub fn stitch_into(
    raw: &RawLake,
    graph: &IdentityGraph,
    facts: TouchFacts,
    picks: TouchPicks,
    cfg: &JobConfig,
    sink: Sink<'_>,
    after: Option<After<'_>>,
) -> Result<Tables> {
    let started = std::time::Instant::now();
    let log = |step: &str| crate::step_done!(started, "stitch: {step}");
    let mut stats = StitchStats::default();
    let seg = &graph.segmentation;
    let n_persons = graph.persons.len();
    let n_cookies = seg.cookies.len();

    let TouchFacts {
        counts,
        channels: touch_channels,
    } = facts;
    let TouchPicks {
        by_person,
        by_cookie,
        wanted,
        json: json_all,
        counting,
        direct,
    } = picks;
    stats.counting_touches = counting;
    stats.direct_touches = direct;
    // The touches' times as one slice: the column itself when it is one chunk without nulls
    // (as read leaves it), else a copy (8 bytes a touch).
    let touch_ts = crate::codes::values_slice(raw.touches.column("ts")?.i64()?, 0);
    // Where each touch's JSON is in `json_all` (NONE for a touch no table shows): one lookup
    // per row. A binary search in `wanted` missed the cache at nearly every step: replacing it
    // took 1.2-1.7 s off the stitch stage at 20M events, 0.3 s at 10M.
    let mut json_at = vec![NONE; touch_ts.len()];
    for (i, &r) in wanted.iter().enumerate() {
        if let Some(at) = json_at.get_mut(r as usize) {
            *at = i as u32;
        }
    }
    let json_of = |rows: &[u32], name: &str| -> Result<Series> {
        let idx: Vec<u32> = rows
            .iter()
            .map(|&r| json_at.get(r as usize).copied().unwrap_or(NONE))
            .collect();
        gather(&json_all, &idx, name)
    };
    let ts_of = |row: u32| (row != NONE).then(|| touch_ts[row as usize]);

    // Person ids and users, in person index order.
    let (person_ids, person_users) = person_columns(graph)?;
    // The persons in person_id order (ties in person order): the order of `persons`, and of
    // the persons within each day of `journeys`.
    let person_order: Vec<u32> = crate::codes::arg_sort_strings(person_ids.str()?.iter());
    stats.persons_with_first_touch = by_person.first.iter().filter(|&&r| r != NONE).count() as u64;

    // Four pieces of work (below) that share only read-only inputs: persons, identity_map,
    // anon_visitors, and journeys with user_attribution (which needs the journeys' signup and
    // first purchase per person).
    let segs = &seg.segments;
    let persons_task = || -> Result<Built> {
        // Built in the table's order: every column gathered once, never sorted afterwards (a
        // sort would copy the whole table, touch JSON included).
        let ps = &graph.persons;
        let ordered =
            |v: &[u32]| -> Vec<u32> { person_order.iter().map(|&p| v[p as usize]).collect() };
        let first = ordered(&by_person.first);
        let last = ordered(&by_person.last);
        let persons = DataFrame::new(
            n_persons,
            vec![
                gather(&person_ids, &person_order, "person_id")?.into(),
                gather(&person_users, &person_order, "user_id")?.into(),
                Column::new(
                    "anon_count".into(),
                    (person_order.iter())
                        .map(|&p| ps[p as usize].anon_count)
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "segment_count".into(),
                    (person_order.iter())
                        .map(|&p| ps[p as usize].segment_count)
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "conflict_count".into(),
                    (person_order.iter())
                        .map(|&p| ps[p as usize].conflict_count)
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "oversized".into(),
                    (person_order.iter())
                        .map(|&p| ps[p as usize].oversized)
                        .collect::<Vec<_>>(),
                ),
                ts_series("first_touch_at", first.iter().map(|&r| ts_of(r)).collect())?.into(),
                ts_series("last_touch_at", last.iter().map(|&r| ts_of(r)).collect())?.into(),
                json_of(&first, "first_touch")?.into(),
                json_of(&last, "last_touch")?.into(),
            ],
        )?;

        log("persons");
        Ok(Built::Table(sink("persons", persons)?))
    };
    let identity_map_task = || -> Result<Built> {
        let seg_anon: Vec<u32> = segs.iter().map(|s| s.anon).collect();
        let seg_user: Vec<u32> = segs.iter().map(|s| s.user).collect();
        let identity_map = DataFrame::new(
            segs.len(),
            vec![
                gather(&graph.anon_ids, &seg_anon, "anon_id")?.into(),
                Column::new(
                    "segment".into(),
                    segs.iter().map(|s| s.number).collect::<Vec<_>>(),
                ),
                ts_series(
                    "valid_from",
                    segs.iter().map(|s| Some(s.valid_from)).collect(),
                )?
                .into(),
                ts_series("valid_to", segs.iter().map(|s| s.valid_to).collect())?.into(),
                gather(&person_ids, &graph.segment_person, "person_id")?.into(),
                gather(&graph.user_ids, &seg_user, "user_id")?.into(),
                opt_str(
                    "link_kind",
                    segs.iter()
                        .map(|s| s.link.map(|l| l.0.as_str().to_string()))
                        .collect(),
                )
                .into(),
                ts_series(
                    "linked_at",
                    segs.iter().map(|s| s.link.map(|l| l.1)).collect(),
                )?
                .into(),
                graph.link_event_ids.clone().into(),
                Column::new(
                    "conflict".into(),
                    segs.iter()
                        .enumerate()
                        .map(|(i, s)| {
                            seg.cookies[s.anon as usize].conflict || graph.segment_refused[i]
                        })
                        .collect::<Vec<_>>(),
                ),
            ],
        )?;
        // Already in `anon_id` then `segment` order: the segments are grouped by cookie in
        // cookie id order, and the cookie ids are the sorted distinct `anon_id`s (a sort here
        // copied the table, about 0.3 s at 10M events).

        log("identity_map");
        Ok(Built::Table(sink("identity_map", identity_map)?))
    };
    let anon_visitors_task = || -> Result<Built> {
        let mut latest_seg = vec![NONE; n_cookies];
        let mut latest_linked = vec![NONE; n_cookies];
        for (i, s) in segs.iter().enumerate() {
            latest_seg[s.anon as usize] = i as u32;
            if s.user != NONE {
                latest_linked[s.anon as usize] = i as u32;
            }
        }
        let merged_user: Vec<u32> = latest_linked
            .iter()
            .map(|&i| {
                if i == NONE {
                    NONE
                } else {
                    segs[i as usize].user
                }
            })
            .collect();
        let cookie_person: Vec<u32> = latest_seg
            .iter()
            .map(|&i| graph.segment_person[i as usize])
            .collect();
        let all_cookies: Vec<u32> = (0..n_cookies as u32).collect();
        let anon_visitors = DataFrame::new(
            n_cookies,
            vec![
                gather(&graph.anon_ids, &all_cookies, "anon_id")?.into(),
                ts_series(
                    "first_seen_at",
                    seg.cookies.iter().map(|c| Some(c.first_seen)).collect(),
                )?
                .into(),
                ts_series(
                    "last_seen_at",
                    seg.cookies.iter().map(|c| Some(c.last_seen)).collect(),
                )?
                .into(),
                json_of(&by_cookie.first, "first_touch")?.into(),
                json_of(&by_cookie.last, "last_touch")?.into(),
                gather(&graph.user_ids, &merged_user, "merged_user_id")?.into(),
                ts_series(
                    "merged_at",
                    latest_linked
                        .iter()
                        .map(|&i| {
                            if i == NONE {
                                None
                            } else {
                                segs[i as usize].link.map(|l| l.1)
                            }
                        })
                        .collect(),
                )?
                .into(),
                gather(&person_ids, &cookie_person, "person_id")?.into(),
            ],
        )?;

        log("anon_visitors");
        Ok(Built::Table(sink("anon_visitors", anon_visitors)?))
    };
    let event_side = || -> Result<Built> {
        // Events: step, backfill, conversions, signup and first purchase per person.
        let events = &raw.events;
        let n_events = events.height();
        // Whether each event name is a conversion, or the signup; then each event by its code.
        let codes = &raw.event_codes;
        let conv_name = codes.names_where(|n| cfg.events.conversions.iter().any(|c| c == n))?;
        let signup_name = codes.names_where(|n| n == cfg.events.signup)?;
        let name_of = events.column("_event")?.u32()?;
        let by_name = |of_name: &[bool]| -> BooleanChunked {
            name_of
                .iter()
                .map(|c| Some(c.is_some_and(|c| of_name.get(c as usize) == Some(&true))))
                .collect()
        };
        let is_conv = by_name(&conv_name);
        let is_signup = &by_name(&signup_name);
        let ev_ts = events.column("ts")?.i64()?;
        let event_person = graph.event_persons();
        let mut step = vec![0u32; n_events];
        let mut counter = vec![0u32; n_persons];
        let mut backfilled = vec![false; n_events];
        let mut signup_at: Vec<Option<i64>> = vec![None; n_persons];
        let mut first_purchase_at: Vec<Option<i64>> = vec![None; n_persons];
        let mut conversions = 0u64;
        let flags = ev_ts.iter().zip(is_signup.iter()).zip(is_conv.iter());
        for (e, ((t, signup), conv)) in flags.enumerate() {
            let p = event_person[e] as usize;
            counter[p] += 1;
            step[e] = counter[p];
            let has_user = graph.persons[p].user != NONE;
            backfilled[e] = !graph.event_named_user.get_bit(e) && has_user;
            if signup == Some(true) && signup_at[p].is_none() {
                signup_at[p] = t;
            }
            if conv == Some(true) {
                conversions += 1;
                if first_purchase_at[p].is_none() {
                    first_purchase_at[p] = t;
                }
            }
        }
        let backfilled_events = backfilled.iter().filter(|&&b| b).count() as u64;

        let journeys = events
            .clone()
            .lazy()
            .select([
                col("ts"),
                col("_event"),
                col("_anon"),
                col("_org"),
                col(crate::read::FIDX_COL),
                col("_row"),
            ])
            .collect()?;
        let mut journeys = journeys;
        let day_rows = journey_days(ev_ts, event_person, &step, &person_ids, &person_order, cfg)?;
        let ts_col = events.column("ts")?.cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))?;
        journeys.replace("ts", ts_col)?;
        // The person (index); `person_id` and `user_id` are filled in day by day as `journeys`
        // is written ([`journey_day`]).
        // The graph's own column (shared, not copied).
        journeys.with_column(
            graph
                .event_person
                .clone()
                .with_name(PERSON_COL.into())
                .into_column(),
        )?;
        journeys.with_column(Column::from(Series::new("step".into(), step)))?;
        journeys.with_column(Column::from(Series::new("backfilled".into(), backfilled)))?;
        journeys.with_column(Column::from(
            is_conv.into_series().with_name("is_conversion".into()),
        ))?;
        // The segment number of each event's segment (null for an event without a cookie).
        let segment_no: UInt32Chunked = (seg.event_segment.iter())
            .map(|&sg| (sg != NONE).then(|| segs[sg as usize].number))
            .collect();
        journeys.with_column(segment_no.with_name("segment".into()).into_column())?;

        log("journeys");
        // user_attribution: one row per user, with the person's facts.
        let n_users = graph.user_ids.len();
        let up = &graph.user_person;
        let ft_row: Vec<u32> = up.iter().map(|&p| by_person.first[p as usize]).collect();
        let lt_row: Vec<u32> = up.iter().map(|&p| by_person.last[p as usize]).collect();
        let mut first_channel =
            channel_columns(&touch_channels, &ft_row, "first_touch_")?.into_iter();
        let mut next_channel = || first_channel.next().expect("four channel columns");
        let user_attribution = DataFrame::new(
            n_users,
            vec![
                graph.user_ids.clone().with_name("user_id".into()).into(),
                gather(&person_ids, up, "person_id")?.into(),
                json_of(&ft_row, "first_touch")?.into(),
                json_of(&lt_row, "last_touch")?.into(),
                ts_series("first_touch_at", ft_row.iter().map(|&r| ts_of(r)).collect())?.into(),
                next_channel(),
                next_channel(),
                next_channel(),
                next_channel(),
                ts_series(
                    "signup_at",
                    up.iter().map(|&p| signup_at[p as usize]).collect(),
                )?
                .into(),
                ts_series(
                    "first_purchase_at",
                    up.iter().map(|&p| first_purchase_at[p as usize]).collect(),
                )?
                .into(),
                Column::new(
                    "anon_count".into(),
                    up.iter()
                        .map(|&p| graph.persons[p as usize].anon_count)
                        .collect::<Vec<_>>(),
                ),
            ],
        )?;

        log("user_attribution");
        Ok(Built::Events {
            journeys,
            day_rows,
            user_attribution: sink("user_attribution", user_attribution)?,
            conversions,
            backfilled_events,
        })
    };
    // On up to two threads; each table goes to `sink` as soon as it is built. Longest first
    // (at 10M events, built and written: the journeys with user_attribution and anon_visitors
    // about 3 s each, persons 2.5 s, identity_map 1 s): the journeys and anon_visitors start
    // side by side, the first thread free takes persons and the other identity_map, and the
    // two end within about 0.8 s of each other. (With anon_visitors after the journeys on one
    // thread, the other was left idle for 1.3–1.5 s.)
    //
    // `after` comes last: the thread that ends its tables first takes it while the other
    // writes the last table (at 10M events the two threads end 0-1.9 s apart, the tables'
    // order and length varying from run to run).
    let after_task = || -> Result<Built> {
        if let Some(after) = after {
            after()?;
        }
        Ok(Built::After)
    };
    let tasks: [&(dyn Fn() -> Result<Built> + Sync); 5] = [
        &event_side,
        &anon_visitors_task,
        &persons_task,
        &identity_map_task,
        &after_task,
    ];
    let mut built = crate::parallel::map(&tasks, 2, |_, task| task())?.into_iter();
    let Some(Built::Events {
        journeys,
        day_rows,
        user_attribution,
        conversions,
        backfilled_events,
    }) = built.next()
    else {
        return Err(Error::Internal("stitch: journeys were not built".into()));
    };
    let mut table = || match built.next() {
        Some(Built::Table(df)) => Ok(df),
        _ => Err(Error::Internal("stitch: a table was not built".into())),
    };
    let (anon_visitors, persons, identity_map) = (table()?, table()?, table()?);
    stats.conversions = conversions;
    stats.backfilled_events = backfilled_events;
    stats.journey_events = raw.events.height() as u64;
    let refused_unions = refused_unions(raw, graph, &person_ids)?;

    Ok(Tables {
        identity_map,
        refused_unions,
        persons,
        anon_visitors,
        user_attribution,
        journeys,
        event_codes: raw.event_codes.clone(),
        journey_days: day_rows,
        touch_counts: counts,
        touch_channels,
        person_ids,
        person_users,
        stats,
    })
}

/// The `refused_unions` table (beyond the contract's tables): one row per union the run
/// refused because it would have put two users in one person (§3.3), in the order the unions
/// were applied. Columns: `event_id` (the event that asked for it), `at` (its time), `kind`
/// (`link` or `alias`); the event's own side — `anon_id`, `segment` (of its cookie at that
/// time), `person_id`, `user_id`; and the other side — `other_anon_id`, `other_segment` (the
/// `previous_id`'s segment for an alias, null for a link), `other_person_id`, `other_user_id`.
/// Ids are those of the other tables (cleaned, personal ids pseudonymized). A person's
/// `conflict_count` counts each row in which it is one of the two sides.
pub fn refused_unions(
    raw: &RawLake,
    graph: &IdentityGraph,
    person_ids: &Series,
) -> Result<DataFrame> {
    let seg = &graph.segmentation;
    let n_segments = seg.segments.len() as u32;
    let rows = &graph.refused;
    let event: Vec<u32> = rows.iter().map(|r| r.event).collect();
    // A node is a segment or a user: its cookie and segment number (NONE for a user), person
    // and the person's user.
    let side = |node: u32| -> (u32, Option<u32>, u32, u32) {
        if node < n_segments {
            let sg = &seg.segments[node as usize];
            let p = graph.segment_person[node as usize];
            (sg.anon, Some(sg.number), p, graph.persons[p as usize].user)
        } else {
            let u = node - n_segments;
            (NONE, None, graph.user_person[u as usize], u)
        }
    };
    let a: Vec<_> = rows.iter().map(|r| side(r.a)).collect();
    let b: Vec<_> = rows.iter().map(|r| side(r.b)).collect();
    let ts = raw
        .events
        .column("ts")?
        .as_materialized_series()
        .i64()?
        .clone();
    let columns = |s: &[(u32, Option<u32>, u32, u32)], prefix: &str| -> Result<Vec<Column>> {
        Ok(vec![
            gather(
                &graph.anon_ids,
                &s.iter().map(|x| x.0).collect::<Vec<_>>(),
                &format!("{prefix}anon_id"),
            )?
            .into(),
            Column::new(
                format!("{prefix}segment").into(),
                s.iter().map(|x| x.1).collect::<Vec<_>>(),
            ),
            gather(
                person_ids,
                &s.iter().map(|x| x.2).collect::<Vec<_>>(),
                &format!("{prefix}person_id"),
            )?
            .into(),
            gather(
                &graph.user_ids,
                &s.iter().map(|x| x.3).collect::<Vec<_>>(),
                &format!("{prefix}user_id"),
            )?
            .into(),
        ])
    };
    let mut cols: Vec<Column> = vec![
        graph.refused_event_ids.clone().into(),
        ts_series("at", event.iter().map(|&e| ts.get(e as usize)).collect())?.into(),
        Column::new(
            "kind".into(),
            rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ),
    ];
    cols.extend(columns(&a, "")?);
    cols.extend(columns(&b, "other_")?);
    Ok(DataFrame::new(rows.len(), cols)?)
}

/// The columns of `journeys`, in order. [`Tables::journeys`] holds all of them but
/// [`crate::read::JOURNEY_REREAD_COLS`] (read again from the raw files when each day is
/// written), `person_id` and `user_id` (from the person, when each day is written), and has
/// `_fidx` and `_row` (where each event was read) and `_person` instead: see [`journey_day`].
pub const JOURNEY_COLUMNS: [&str; 17] = [
    "event_id",
    "ts",
    "seq",
    "event",
    "person_id",
    "user_id",
    "raw_user_id",
    "anon_id",
    "org_id",
    "step",
    "backfilled",
    "is_conversion",
    "value",
    "currency",
    "order_id",
    "session_id",
    "segment",
];

/// One day of `journeys` as published: `part` (rows of [`Tables::journeys`]) with the columns
/// read again from the raw files by `raw`, in [`JOURNEY_COLUMNS`] order. `event`, `person_id`,
/// `user_id`, `anon_id` and `org_id` are codes there, written as the strings they point to
/// ([`Tables::journey_coded`]): the encoder builds each row group's dictionary from the codes.
pub fn journey_day(part: DataFrame, raw: &crate::read::JourneyColumns<'_>) -> Result<DataFrame> {
    let mut part = raw.complete(part)?;
    for (code, name) in [
        ("_event", "event"),
        ("_anon", "anon_id"),
        ("_org", "org_id"),
        (PERSON_COL, "user_id"),
        (PERSON_COL, "person_id"),
    ] {
        let codes = part.column(code)?.u32()?.clone().with_name(name.into());
        part.with_column(codes.into_column())?;
    }
    Ok(part.select(JOURNEY_COLUMNS)?)
}

impl Tables {
    /// The columns of [`journey_day`]'s frames that are codes, and what they point into.
    pub fn journey_coded(&self) -> [crate::publish::Coded<'_>; 5] {
        use crate::publish::Coded;
        let codes = &self.event_codes;
        [
            Coded {
                name: "event",
                values: &codes.event,
            },
            Coded {
                name: "anon_id",
                values: &codes.anon,
            },
            Coded {
                name: "org_id",
                values: &codes.org,
            },
            Coded {
                name: "person_id",
                values: &self.person_ids,
            },
            Coded {
                name: "user_id",
                values: &self.person_users,
            },
        ]
    }

    /// The reader of the columns of `journeys` not held in memory, for the events of
    /// `files` under `input`, set up for the days of [`Tables::journey_days`] (see
    /// [`journey_day`]).
    pub fn journey_columns<'a>(
        &self,
        input: &'a crate::storage::Lake,
        files: &'a crate::read::SourceFiles,
    ) -> Result<crate::read::JourneyColumns<'a>> {
        let days: Vec<&IdxCa> = self.journey_days.iter().map(|d| &d.rows).collect();
        crate::read::JourneyColumns::new(
            input,
            files,
            self.journeys.column(crate::read::FIDX_COL)?.u32()?,
            &days,
        )
    }
}

/// The person (index into [`Tables::person_ids`]) of each row of [`Tables::journeys`].
const PERSON_COL: &str = "_person";

/// The rows of one `dt` partition of `journeys`.
#[derive(Debug, Clone)]
pub struct DayRows {
    /// The UTC date, `YYYY-MM-DD`.
    pub dt: String,
    /// Row numbers of `journeys`, by `person_id` then `step`.
    pub rows: IdxCa,
}

/// Microseconds in one day.
const DAY_US: i64 = 86_400_000_000;

/// The rows of `journeys` grouped by UTC day, days ascending, each day's rows sorted by
/// `person_id` then `step` (what a reader of one person filters on).
///
/// Sorted by integer keys: the day number, the rank of the person's `person_id` among all
/// persons (from `person_order`, the persons in `person_id` order) and the step. Rows without
/// a time go to the run date's partition.
fn journey_days(
    ts: &Int64Chunked,
    event_person: &[u32],
    step: &[u32],
    person_ids: &Series,
    person_order: &[u32],
    cfg: &JobConfig,
) -> Result<Vec<DayRows>> {
    // Dense rank of person_id (equal ids share a rank; `step` then orders their rows).
    let ids = person_ids.str()?;
    let mut rank = vec![0u32; ids.len()];
    let mut prev: Option<Option<&str>> = None;
    let mut r = 0u32;
    for &i in person_order {
        let id = ids.get(i as usize);
        if prev.is_some_and(|p| p != id) {
            r += 1;
        }
        prev = Some(id);
        rank[i as usize] = r;
    }
    let run_day = cfg
        .date
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_micros().div_euclid(DAY_US));
    let day_of = |t: Option<i64>| {
        t.filter(|&t| chrono::DateTime::from_timestamp_micros(t).is_some())
            .map_or(run_day, |t| t.div_euclid(DAY_US))
    };
    // The rows placed by day first (only the rows are held for all events, 4 bytes each);
    // the sort keys (16 bytes each) are built one day at a time.
    let (days, placed) = crate::read::grouped_rows(|| {
        ts.iter()
            .enumerate()
            .map(|(row, t)| (row as IdxSize, day_of(t)))
    });
    let mut from = 0;
    let mut out = Vec::with_capacity(days.len());
    let mut keys: Vec<(u64, IdxSize)> = Vec::new();
    for (day, n) in days {
        let rows = &placed[from..from + n];
        from += n;
        keys.clear();
        keys.extend(rows.iter().map(|&row| {
            let r = row as usize;
            let key = (u64::from(rank[event_person[r] as usize]) << 32) | u64::from(step[r]);
            (key, row)
        }));
        keys.sort_unstable();
        let rows: Vec<IdxSize> = keys.iter().map(|&(_, r)| r).collect();
        let dt = chrono::DateTime::from_timestamp_micros(day * DAY_US)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        out.push(DayRows {
            dt,
            rows: IdxCa::from_vec("rows".into(), rows),
        });
    }
    Ok(out)
}

/// Table names in publishing order.
pub const TABLES: [&str; 6] = [
    "identity_map",
    "persons",
    "anon_visitors",
    "user_attribution",
    "journeys",
    "refused_unions",
];

impl Tables {
    /// The tables by name, for publishing.
    pub fn by_name(&self) -> BTreeMap<&'static str, &DataFrame> {
        BTreeMap::from([
            ("identity_map", &self.identity_map),
            ("persons", &self.persons),
            ("anon_visitors", &self.anon_visitors),
            ("user_attribution", &self.user_attribution),
            ("journeys", &self.journeys),
            ("refused_unions", &self.refused_unions),
        ])
    }
}
