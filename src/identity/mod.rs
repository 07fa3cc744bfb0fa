//! Stage 2, **identity**: who is who (contract §3.1–3.3, §3.5).
//!
//! Ids are dense integers: the read stage's codes of the events' ids, with the cookie
//! dictionary merged with the touches' cookies (sorted, so the smallest `anon_id` has the
//! smallest id). Cookies are cut into segments ([`segments`]), and segments and users are
//! joined into persons by a
//! union-find ([`union_find`]) fed with links and aliases in event-time order. A union that
//! would put two different users in one person is refused and counted.

pub mod segments;
pub mod union_find;

use polars::prelude::*;
use serde::Serialize;

use crate::codes::extend_dictionary;
pub use crate::codes::{dictionary, encode};
use crate::config::JobConfig;
use crate::error::{Error, Result};
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
    /// The `event_id` of each refused union's event, in the order of `refused`.
    pub refused_event_ids: Series,
    /// The `event_id` of each segment's link event (null for a segment without a link).
    pub link_event_ids: Series,
    /// Person of each user.
    pub user_person: Vec<u32>,
    /// All persons.
    pub persons: Vec<Person>,
    /// Person of each event (row of `RawLake::events`), as a column (`_person`): `journeys`
    /// holds it as is (the same buffer) until its days are written. Read it as a slice with
    /// [`IdentityGraph::event_persons`].
    pub event_person: UInt32Chunked,
    /// Person of each touch (row of `RawLake::touches`).
    pub touch_person: Vec<u32>,
    /// Whether each event names a user (after cleaning): a bit an event, where the dense user
    /// itself (4 bytes an event) was held through stitch for this alone.
    pub event_named_user: polars_arrow::bitmap::Bitmap,
    /// Counts.
    pub stats: IdentityStats,
}

impl IdentityGraph {
    /// The person of each event (row of `RawLake::events`).
    pub fn event_persons(&self) -> &[u32] {
        self.event_person
            .cont_slice()
            .expect("the events' persons are built as one chunk without nulls")
    }

    /// Free all but what attribution and the exports read: `persons`, `event_person`,
    /// `touch_person` and `stats` stay; the segments, cookies, users, refused unions and the
    /// other per-event and per-segment maps are left empty (the pipeline calls this once the
    /// stitched tables are built).
    pub fn keep_persons_only(&mut self) {
        self.segmentation = Segmentation::default();
        for ids in [
            &mut self.anon_ids,
            &mut self.user_ids,
            &mut self.link_event_ids,
            &mut self.refused_event_ids,
        ] {
            *ids = ids.clear();
        }
        for v in [&mut self.segment_person, &mut self.user_person] {
            *v = Vec::new();
        }
        self.segment_refused = Vec::new();
        self.refused = Vec::new();
        self.event_named_user = Default::default();
    }
}

/// The `event_id` of given events (rows of `RawLake::events`; `NONE` for none, giving null),
/// in their order. The run does not hold the events' ids after the read stage: the pipeline
/// reads them again from the raw files ([`crate::read::event_ids`]).
pub type EventIds<'a> = &'a (dyn Fn(&[u32]) -> Result<Series> + Sync);

/// Build the identity graph from the cleaned raw lake; `event_ids` names the events the tables
/// show by id (each segment's link and each refused union's event).
pub fn build(raw: &RawLake, cfg: &JobConfig, event_ids: EventIds<'_>) -> Result<IdentityGraph> {
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
    let mut seg = segments::segment(n_cookies, &ev, &touch_anon, &touch_ts);
    let n_segments = seg.segments.len();
    log("segments");

    // The link events' ids are read again from the raw files beside the unions and persons
    // (mostly one thread): the segments name them. The refused unions' events are known only
    // after the unions, and read after them (most runs have none).
    let links: Vec<u32> = (seg.segments.iter())
        .map(|s| s.link.map_or(NONE, |l| l.2))
        .collect();
    // The graph is built on its own thread but for those ids, filled in once read.
    let unite = move || -> Result<IdentityGraph> {
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
        // Only the unions read the alias events' previous segments: not held through stitch
        // (4 bytes an event, about 40 MB at 10M events).
        seg.alias_prev_segment = Vec::new();
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
        let event_person = UInt32Chunked::from_vec("_person".into(), event_person);
        let touch_person: Vec<u32> = seg
            .touch_segment
            .iter()
            .map(|&sg| segment_person[sg as usize])
            .collect();
        log("persons");
        let no_ids = Series::new_empty("event_id".into(), &DataType::String);
        Ok(IdentityGraph {
            anon_ids,
            user_ids,
            segment_person,
            segment_refused,
            refused,
            refused_event_ids: no_ids.clone(),
            link_event_ids: no_ids,
            user_person,
            persons,
            event_person,
            touch_person,
            event_named_user: ev.user.iter().map(|&u| u != NONE).collect(),
            segmentation: seg,
            stats,
        })
    };
    let (link_ids, graph) = crate::parallel::join(|| event_ids(&links), unite);
    let mut graph = graph?;
    let link_ids = link_ids?;
    let refused_rows: Vec<u32> = graph.refused.iter().map(|r| r.event).collect();
    let refused_ids = event_ids(&refused_rows)?;
    for (ids, rows) in [(&link_ids, links.len()), (&refused_ids, refused_rows.len())] {
        if ids.len() != rows {
            return Err(Error::Internal(format!(
                "identity: {} event ids for {rows} events",
                ids.len(),
            )));
        }
    }
    graph.link_event_ids = link_ids.with_name("link_event_id".into());
    graph.refused_event_ids = refused_ids.with_name("event_id".into());
    log("event ids read again");
    Ok(graph)
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
    let codes = &raw.event_codes;

    // Event kinds: the kind of each event name, then of each event by its name's code.
    let names = &cfg.events;
    let kind_of_name: Vec<EventKind> = codes
        .event
        .str()?
        .iter()
        .map(|n| match n {
            Some(n) if n == names.signup => EventKind::Signup,
            Some(n) if n == names.signin => EventKind::Signin,
            Some(n) if n == names.logout => EventKind::Logout,
            Some(n) if n == names.alias => EventKind::Alias,
            _ => EventKind::Other,
        })
        .collect();
    let u32s = |name: &str| -> Result<Vec<u32>> {
        Ok(crate::codes::values_or(events.column(name)?.u32()?, NONE))
    };
    // The cookie dictionary: sorted distinct cookies of the events (read encoded them, with
    // the alias events' previous_id) and of the touches, so the smallest anon_id has the
    // smallest dense id. The events' dictionary is extended with the touches' cookies it lacks
    // (only those are sorted), and the events' codes are renumbered into it. Beside it, the
    // columns that do not need it.
    let (extended, others) = crate::parallel::join(
        || {
            extend_dictionary(
                codes.anon.str()?,
                &[raw.touches.column("anon_id")?.str()?.clone()],
            )
        },
        || -> Result<_> {
            let kind: Vec<EventKind> = u32s("_event")?
                .into_iter()
                .map(|c| {
                    kind_of_name
                        .get(c as usize)
                        .copied()
                        .unwrap_or(EventKind::Other)
                })
                .collect();
            Ok((kind, u32s("_user")?, i64_values(events.column("ts")?)?))
        },
    );
    let (anon_ids, renumber, mut touch_codes) = extended?;
    let (kind, user, ts) = others?;
    let touch_anon = touch_codes.pop().unwrap_or_default();
    let (mut anon, mut prev) = (u32s("_anon")?, u32s("_prev")?);
    crate::codes::renumber_in_place(&mut anon, &renumber);
    crate::codes::renumber_in_place(&mut prev, &renumber);
    let ev = EventColumns {
        anon,
        user,
        prev,
        ts,
        kind,
    };
    let touch_ts = i64_values(raw.touches.column("ts")?)?;
    Ok(Encoded {
        anon_ids,
        user_ids: codes.user.clone(),
        events: ev,
        touch_anon,
        touch_ts,
    })
}

/// The values of a time column (a null read as 0: read quarantines rows without a time).
fn i64_values(c: &Column) -> Result<Vec<i64>> {
    Ok(crate::codes::values_or(c.i64()?, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::GenOptions;
    use crate::storage::{Access, Lake};

    /// What the graph hands to stitch: a bit per event for "names a user", equal to the
    /// events' `_user` codes, and not the per-event maps only the unions read.
    #[test]
    fn the_graph_keeps_a_bit_per_event_for_its_user_and_not_the_alias_map() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let lake = dir.path().join("lake");
        let lake = lake.to_str().expect("utf-8 path");
        let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("a date");
        let opts = GenOptions {
            persons: 300,
            days: 10,
            seed: 7,
            end_date: end,
            stories: true,
            visits_scale: 1,
        };
        crate::pipeline::generate(lake, &opts).expect("generate");
        let cfg = JobConfig::new(lake, "memory://", end);
        let input = Lake::open(lake, Access::Read).expect("open lake");
        let raw = crate::read::read_lake(&input, &cfg).expect("read");
        let ids =
            |rows: &[u32]| crate::read::event_ids(&input, &raw.event_files, &raw.events, rows);
        let graph = build(&raw, &cfg, &ids).expect("graph");

        let users =
            crate::codes::values_or(raw.events.column("_user").unwrap().u32().unwrap(), NONE);
        assert_eq!(graph.event_named_user.len(), users.len());
        let named: Vec<bool> = graph.event_named_user.iter().collect();
        let expected: Vec<bool> = users.iter().map(|&u| u != NONE).collect();
        assert_eq!(named, expected);
        assert!(named.iter().any(|&n| n) && named.iter().any(|&n| !n));
        assert!(
            graph.stats.alias_events > 0,
            "the stories have alias events"
        );
        assert!(graph.segmentation.alias_prev_segment.is_empty());
    }
}
