//! Stage 2, **identity**: who is who (contract §3.1–3.3, §3.5).
//!
//! Ids are encoded as dense integers with a sorted dictionary (a polars join), cookies are cut
//! into segments ([`segments`]), and segments and users are joined into persons by a
//! union-find ([`union_find`]) fed with links and aliases in event-time order. A union that
//! would put two different users in one person is refused and counted.

pub mod segments;
pub mod union_find;

use polars::prelude::*;
use serde::Serialize;

use crate::config::JobConfig;
use crate::error::Result;
use crate::read::RawLake;
use segments::{EventColumns, EventKind, Segmentation};
use union_find::{Union, UnionFind, NONE};

/// Counts of the identity stage, for the manifest.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IdentityStats {
    /// Distinct cookies.
    pub cookies: u64,
    /// Distinct users.
    pub users: u64,
    /// Segments (rows of `identity_map`).
    pub segments: u64,
    /// Persons.
    pub persons: u64,
    /// Persons with a user.
    pub persons_with_user: u64,
    /// Events that link a cookie to a user.
    pub link_events: u64,
    /// Alias events applied or refused.
    pub alias_events: u64,
    /// Cookies linked to more than one user (shared devices).
    pub conflicted_cookies: u64,
    /// Segment cuts made because a cookie was linked to another user.
    pub shared_device_cuts: u64,
    /// Unions refused because they would join two users.
    pub refused_unions: u64,
    /// Persons with more cookies than the job's limit.
    pub oversized_persons: u64,
}

/// One person (a connected component).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Stable id: the user's id, else the smallest anon_id.
    pub person_id: String,
    /// Dense user id, or NONE.
    pub user: u32,
    /// Distinct cookies.
    pub anon_count: u32,
    /// Segments.
    pub segment_count: u32,
    /// Conflicted cookies plus refused unions involving the person.
    pub conflict_count: u32,
    /// Has a user and more cookies than the job's limit.
    pub oversized: bool,
}

/// What a refused union would have joined (contract §3.3): the event that asked for it and
/// the two nodes of the union-find, each a segment (`< segments.len()`) or a user node
/// (`segments.len() + user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedUnion {
    /// Row of `RawLake::events` that asked for the union.
    pub event: u32,
    /// `link` (a cookie segment with the event's user) or `alias` (two cookies' segments).
    pub kind: RefusedKind,
    /// The event's own side: the segment of its `anon_id`.
    pub a: u32,
    /// The other side: the user node (link) or the segment of `previous_id` (alias).
    pub b: u32,
}

/// Which edge a refused union was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedKind {
    /// An event carrying both `anon_id` and `user_id`.
    Link,
    /// An alias event (`previous_id` → `anon_id`).
    Alias,
}

impl RefusedKind {
    /// Its name in the `refused_unions` table.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedKind::Link => "link",
            RefusedKind::Alias => "alias",
        }
    }
}

/// The identity graph of one run.
#[derive(Debug, Clone)]
pub struct IdentityGraph {
    /// Sorted distinct cookies; a cookie's dense id is its index.
    pub anon_ids: Series,
    /// Sorted distinct users; a user's dense id is its index.
    pub user_ids: Series,
    /// Segments, cookie facts and row → segment maps.
    pub segmentation: Segmentation,
    /// Person of each segment.
    pub segment_person: Vec<u32>,
    /// Whether a link or alias of the segment was refused.
    pub segment_refused: Vec<bool>,
    /// Every refused union, in the order the unions were applied (event-time order).
    pub refused: Vec<RefusedUnion>,
    /// Person of each user.
    pub user_person: Vec<u32>,
    /// All persons.
    pub persons: Vec<Person>,
    /// Person of each event (row of `RawLake::events`).
    pub event_person: Vec<u32>,
    /// Person of each touch (row of `RawLake::touches`).
    pub touch_person: Vec<u32>,
    /// Dense user of each event after cleaning, or NONE.
    pub event_user: Vec<u32>,
    /// Counts.
    pub stats: IdentityStats,
}

/// Build the identity graph from the cleaned raw lake.
pub fn build(raw: &RawLake, cfg: &JobConfig) -> Result<IdentityGraph> {
    let started = std::time::Instant::now();
    let log = |step: &str| crate::step_done!(started, "identity: {step}");
    let Encoded {
        anon_ids,
        user_ids,
        events: ev,
        touch_anon,
        touch_ts,
    } = encode_lake(raw, cfg)?;

    let n_cookies = anon_ids.len();
    let n_users = user_ids.len();
    log("ids encoded");
    let seg = segments::segment(n_cookies, &ev, &touch_anon, &touch_ts);
    let n_segments = seg.segments.len();
    log("segments");

    // Union-find over segments [0, S) and users [S, S + U), in event-time order.
    let s = n_segments as u32;
    // A segment carries its user from the start: by retroactive backfill (§3.2) the whole
    // segment is that user's, so time order decides only between segments (aliases).
    let mut labels: Vec<u32> = seg.segments.iter().map(|sg| sg.user).collect();
    labels.extend(0..n_users as u32);
    let mut uf = UnionFind::new(labels);
    let mut segment_refused = vec![false; n_segments];
    let mut refused: Vec<RefusedUnion> = Vec::new();
    let mut stats = IdentityStats {
        cookies: n_cookies as u64,
        users: n_users as u64,
        segments: n_segments as u64,
        ..Default::default()
    };
    for e in 0..ev.anon.len() {
        let own = seg.event_segment[e];
        if own != NONE && ev.user[e] != NONE {
            stats.link_events += 1;
            let user_node = s + ev.user[e];
            if uf.union(own, user_node) == Union::Refused {
                segment_refused[own as usize] = true;
                refused.push(RefusedUnion {
                    event: e as u32,
                    kind: RefusedKind::Link,
                    a: own,
                    b: user_node,
                });
            }
        }
        let prev = seg.alias_prev_segment[e];
        if ev.kind[e] == EventKind::Alias && own != NONE && prev != NONE {
            stats.alias_events += 1;
            if uf.union(own, prev) == Union::Refused {
                segment_refused[own as usize] = true;
                segment_refused[prev as usize] = true;
                refused.push(RefusedUnion {
                    event: e as u32,
                    kind: RefusedKind::Alias,
                    a: own,
                    b: prev,
                });
            }
        }
    }
    stats.refused_unions = refused.len() as u64;
    log("unions");

    // Persons: one per component, numbered in node order.
    let n_nodes = uf.len();
    let mut node_person = vec![NONE; n_nodes];
    let mut root_person = vec![NONE; n_nodes];
    let mut persons: Vec<Person> = Vec::new();
    let mut min_anon: Vec<u32> = Vec::new();
    for node in 0..n_nodes as u32 {
        let root = uf.find(node);
        if root_person[root as usize] == NONE {
            root_person[root as usize] = persons.len() as u32;
            persons.push(Person {
                person_id: String::new(),
                user: uf.user_of(root),
                anon_count: 0,
                segment_count: 0,
                conflict_count: 0,
                oversized: false,
            });
            min_anon.push(NONE);
        }
        node_person[node as usize] = root_person[root as usize];
    }
    let segment_person: Vec<u32> = node_person[..n_segments].to_vec();
    let user_person: Vec<u32> = node_person[n_segments..].to_vec();

    let mut last_cookie = vec![NONE; persons.len()];
    for (i, sg) in seg.segments.iter().enumerate() {
        let p = segment_person[i] as usize;
        persons[p].segment_count += 1;
        min_anon[p] = min_anon[p].min(sg.anon);
        if last_cookie[p] != sg.anon {
            last_cookie[p] = sg.anon;
            persons[p].anon_count += 1;
            if seg.cookies[sg.anon as usize].conflict {
                persons[p].conflict_count += 1;
            }
        }
    }
    for r in &refused {
        persons[node_person[r.a as usize] as usize].conflict_count += 1;
        persons[node_person[r.b as usize] as usize].conflict_count += 1;
    }
    let anon_str = anon_ids.str()?;
    let user_str = user_ids.str()?;
    let limit = cfg.identity.max_cookies_per_user;
    for (p, person) in persons.iter_mut().enumerate() {
        person.person_id = if person.user != NONE {
            user_str
                .get(person.user as usize)
                .unwrap_or_default()
                .to_string()
        } else {
            anon_str
                .get(min_anon[p] as usize)
                .unwrap_or_default()
                .to_string()
        };
        person.oversized = person.user != NONE && person.anon_count > limit;
    }
    stats.persons = persons.len() as u64;
    stats.persons_with_user = persons.iter().filter(|p| p.user != NONE).count() as u64;
    stats.oversized_persons = persons.iter().filter(|p| p.oversized).count() as u64;
    stats.conflicted_cookies = seg.cookies.iter().filter(|c| c.conflict).count() as u64;
    stats.shared_device_cuts = seg.shared_device_cuts;

    // Each event belongs to its user's person when it names a user, else to its segment's.
    let event_person: Vec<u32> = (0..ev.anon.len())
        .map(|e| {
            if ev.user[e] != NONE {
                user_person[ev.user[e] as usize]
            } else {
                segment_person[seg.event_segment[e] as usize]
            }
        })
        .collect();
    let touch_person: Vec<u32> = seg
        .touch_segment
        .iter()
        .map(|&sg| segment_person[sg as usize])
        .collect();
    log("persons");

    Ok(IdentityGraph {
        anon_ids,
        user_ids,
        segment_person,
        segment_refused,
        refused,
        user_person,
        persons,
        event_person,
        touch_person,
        event_user: ev.user,
        segmentation: seg,
        stats,
    })
}

/// The id columns of a run as dense integers, with their dictionaries.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Sorted distinct cookies (`anon_id` of events and touches, `previous_id` of aliases).
    pub anon_ids: Series,
    /// Sorted distinct users.
    pub user_ids: Series,
    /// The per-event columns of the segment pass, in the order of `RawLake::events`.
    pub events: EventColumns,
    /// Cookie of each touch (dense id).
    pub touch_anon: Vec<u32>,
    /// Time of each touch, microseconds.
    pub touch_ts: Vec<i64>,
}

/// Encode the ids of the cleaned raw lake: build the cookie and user dictionaries and map
/// every event and touch to dense ids.
pub fn encode_lake(raw: &RawLake, cfg: &JobConfig) -> Result<Encoded> {
    let events = &raw.events;
    let touches = &raw.touches;

    // Event kinds and the previous_id of alias events, as columns.
    let names = &cfg.events;
    let kinds = events
        .clone()
        .lazy()
        .select([
            when(col("event").eq(lit(names.signup.as_str())))
                .then(lit(1i32))
                .when(col("event").eq(lit(names.signin.as_str())))
                .then(lit(2i32))
                .when(col("event").eq(lit(names.logout.as_str())))
                .then(lit(3i32))
                .when(col("event").eq(lit(names.alias.as_str())))
                .then(lit(4i32))
                .otherwise(lit(0i32))
                .alias("kind"),
            when(col("event").eq(lit(names.alias.as_str())))
                .then(col("previous_id"))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias("alias_prev"),
        ])
        .collect()?;
    let kind: Vec<EventKind> = kinds
        .column("kind")?
        .i32()?
        .iter()
        .map(|k| match k {
            Some(1) => EventKind::Signup,
            Some(2) => EventKind::Signin,
            Some(3) => EventKind::Logout,
            Some(4) => EventKind::Alias,
            _ => EventKind::Other,
        })
        .collect();

    // Dictionaries: sorted distinct ids, so the smallest anon_id has the smallest dense id.
    // The cookie and user ids are encoded side by side (one hash pass over each column).
    let str_of = |c: &Column| -> Result<StringChunked> { Ok(c.str()?.clone()) };
    let anon_cols = [
        str_of(events.column("anon_id")?)?,
        str_of(kinds.column("alias_prev")?)?,
        str_of(touches.column("anon_id")?)?,
    ];
    let user_cols = [str_of(events.column("user_id")?)?];
    let (anon, user) =
        crate::parallel::join(|| encode_columns(&anon_cols), || encode_columns(&user_cols));
    let (anon_ids, mut anon_codes) = anon?;
    let (user_ids, mut user_codes) = user?;
    let touch_anon = anon_codes.pop().unwrap_or_default();
    let prev = anon_codes.pop().unwrap_or_default();
    let ev = EventColumns {
        anon: anon_codes.pop().unwrap_or_default(),
        user: user_codes.pop().unwrap_or_default(),
        prev,
        ts: i64_values(events.column("ts")?)?,
        kind,
    };
    let touch_ts = i64_values(touches.column("ts")?)?;
    Ok(Encoded {
        anon_ids,
        user_ids,
        events: ev,
        touch_anon,
        touch_ts,
    })
}

/// Sorted distinct non-null values of string columns: the dictionary of a dense id, where a
/// value's id is its index (so the smallest value gets the smallest id).
pub fn dictionary(columns: &[&Series]) -> Result<Series> {
    let columns = columns
        .iter()
        .map(|c| Ok(c.str()?.clone()))
        .collect::<Result<Vec<_>>>()?;
    Ok(encode_columns(&columns)?.0)
}

/// Dense ids of `values` in `dict`, a sorted [`dictionary`]; [`NONE`] for null or for a value
/// not in `dict`.
pub fn encode(values: &Series, dict: &Series) -> Result<Vec<u32>> {
    let dict = dict.str()?;
    let mut index: PlHashMap<&str, u32> = PlHashMap::with_capacity(dict.len());
    for (i, v) in dict.iter().enumerate() {
        if let Some(v) = v {
            index.insert(v, i as u32);
        }
    }
    Ok(values
        .str()?
        .iter()
        .map(|v| v.and_then(|v| index.get(v).copied()).unwrap_or(NONE))
        .collect())
}

/// The [`dictionary`] of `columns` and the dense id of each of their values in it ([`NONE`]
/// for null), in one hash pass: values are numbered as first seen, then renumbered in sorted
/// order.
pub fn encode_columns(columns: &[StringChunked]) -> Result<(Series, Vec<Vec<u32>>)> {
    let mut seen: PlHashMap<&str, u32> = PlHashMap::default();
    let mut distinct: Vec<&str> = Vec::new();
    let mut codes: Vec<Vec<u32>> = Vec::with_capacity(columns.len());
    for c in columns {
        let mut out = Vec::with_capacity(c.len());
        for v in c.iter() {
            out.push(match v {
                None => NONE,
                Some(v) => *seen.entry(v).or_insert_with(|| {
                    distinct.push(v);
                    (distinct.len() - 1) as u32
                }),
            });
        }
        codes.push(out);
    }
    drop(seen);
    let first_seen = Series::new("id".into(), distinct);
    let order = first_seen.arg_sort(SortOptions::default());
    let mut renumber = vec![0u32; first_seen.len()];
    for (new, old) in order.into_no_null_iter().enumerate() {
        renumber[old as usize] = new as u32;
    }
    for c in &mut codes {
        for v in c.iter_mut().filter(|v| **v != NONE) {
            *v = renumber[*v as usize];
        }
    }
    let dict = first_seen.take(&order)?;
    Ok((dict, codes))
}

fn i64_values(c: &Column) -> Result<Vec<i64>> {
    Ok(c.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
}
