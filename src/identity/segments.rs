//! Cutting each cookie's timeline into segments (contract §3.2).
//!
//! Input is dense integer columns; rows of every cookie are gathered with a stable sort by
//! cookie in two passes (events are already in journey order, touches in time order; see
//! [`by_cookie`]), then each cookie is walked once: a logout ends the current segment (the
//! logout belongs to it), and a link to a user other than the segment's starts a new one right
//! before that link.

use super::union_find::NONE;

/// Link kinds (contract §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The signup event.
    Signup,
    /// The signin event.
    Signin,
    /// Any other event that carries both ids.
    Seen,
}

impl LinkKind {
    /// Its name in `identity_map.link_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Signup => "signup",
            LinkKind::Signin => "signin",
            LinkKind::Seen => "seen",
        }
    }
}

/// What an event is, for the identity rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Signup.
    Signup,
    /// Signin.
    Signin,
    /// Logout: ends the segment.
    Logout,
    /// Alias: joins `previous_id` to `anon_id`.
    Alias,
    /// Anything else.
    Other,
}

/// The per-event columns the segment pass needs, in journey order.
#[derive(Debug, Clone, Default)]
pub struct EventColumns {
    /// Cookie of the event, or NONE.
    pub anon: Vec<u32>,
    /// User of the event, or NONE.
    pub user: Vec<u32>,
    /// `previous_id` of an alias event, or NONE.
    pub prev: Vec<u32>,
    /// Event time, microseconds.
    pub ts: Vec<i64>,
    /// Kind.
    pub kind: Vec<EventKind>,
}

/// One segment of one cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The cookie (dense id).
    pub anon: u32,
    /// 0-based number within the cookie.
    pub number: u32,
    /// Start (microseconds): the cookie's first sighting, or the cut time.
    pub valid_from: i64,
    /// End (microseconds); `None` while open.
    pub valid_to: Option<i64>,
    /// The segment's user (dense id) or NONE.
    pub user: u32,
    /// The link that gave the segment its user.
    pub link: Option<(LinkKind, i64, u32)>,
}

/// Per cookie facts gathered on the way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CookieFacts {
    /// Earliest time the cookie appears (touch, event or alias).
    pub first_seen: i64,
    /// Latest time.
    pub last_seen: i64,
    /// Linked to more than one user.
    pub conflict: bool,
}

/// Result of the segment pass.
#[derive(Debug, Clone, Default)]
pub struct Segmentation {
    /// All segments, grouped by cookie, in cookie id then number order.
    pub segments: Vec<Segment>,
    /// Index of the first segment of each cookie (`segments.len()` appended).
    pub cookie_offsets: Vec<u32>,
    /// Facts per cookie.
    pub cookies: Vec<CookieFacts>,
    /// Segment of each event's `anon_id` (NONE when the event has none).
    pub event_segment: Vec<u32>,
    /// Segment of each alias event's `previous_id` at the alias time (NONE otherwise).
    pub alias_prev_segment: Vec<u32>,
    /// Segment of each touch.
    pub touch_segment: Vec<u32>,
    /// Cuts made right before a link to another user (shared devices).
    pub shared_device_cuts: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Event(u32),
    Probe(u32),
    Touch(u32),
}

/// Cookies per bucket of [`by_cookie`]'s first pass: a bucket's counts (16 KB) and the
/// items being placed stay in the cache.
const BUCKET_COOKIES: usize = 4096;

/// Gather row ids per cookie, keeping row order: (offset of each cookie's first item, the
/// items). Two stable passes: the items are first placed by bucket (a range of
/// [`BUCKET_COOKIES`] cookies: a few hundred places to write at, each written in turn), then
/// each bucket's items by cookie, the buckets cut in `ranges` ranges placed on threads of
/// their own. One scattered pass over all the items (80 MB at 10M events) missed the cache at
/// nearly every write. The result depends on neither `ranges` nor the bucket size.
fn by_cookie<I: Iterator<Item = (u32, Item)>>(
    n_cookies: usize,
    keys: impl Fn() -> I,
    ranges: usize,
) -> (Vec<u32>, Vec<Item>) {
    by_cookie_in(n_cookies, keys, ranges, BUCKET_COOKIES)
}

/// [`by_cookie`] with buckets of `bucket_cookies` cookies.
fn by_cookie_in<I: Iterator<Item = (u32, Item)>>(
    n_cookies: usize,
    keys: impl Fn() -> I,
    ranges: usize,
    bucket_cookies: usize,
) -> (Vec<u32>, Vec<Item>) {
    let bucket_cookies = bucket_cookies.max(1);
    let n_buckets = n_cookies.div_ceil(bucket_cookies);
    // 1. Items per bucket, then each bucket's first place.
    let mut starts = vec![0u32; n_buckets + 1];
    for (c, _) in keys() {
        starts[c as usize / bucket_cookies + 1] += 1;
    }
    for b in 0..n_buckets {
        starts[b + 1] += starts[b];
    }
    // 2. The items placed by bucket, in the keys' order within each.
    let mut by_bucket = vec![(0u32, Item::Touch(0)); starts[n_buckets] as usize];
    let mut fill = starts.clone();
    for (c, item) in keys() {
        let f = &mut fill[c as usize / bucket_cookies];
        by_bucket[*f as usize] = (c, item);
        *f += 1;
    }
    drop(fill);
    // 3. Each bucket's items by cookie: a bucket's cookies are a range of them, so its items
    // go to its own part of the items, and its cookies' offsets to its own part of those.
    let mut offsets = vec![0u32; n_cookies + 1];
    offsets[n_cookies] = starts[n_buckets];
    let mut items = vec![Item::Touch(0); starts[n_buckets] as usize];
    let place = |b0: usize, b1: usize, offsets: &mut [u32], items: &mut [Item]| {
        let (c_base, i_base) = (b0 * bucket_cookies, starts[b0]);
        let mut counts: Vec<u32> = Vec::with_capacity(bucket_cookies);
        for b in b0..b1 {
            let c0 = b * bucket_cookies;
            let c1 = (c0 + bucket_cookies).min(n_cookies);
            let bucket = &by_bucket[starts[b] as usize..starts[b + 1] as usize];
            counts.clear();
            counts.resize(c1 - c0, 0);
            for &(c, _) in bucket {
                counts[c as usize - c0] += 1;
            }
            let mut at = starts[b] - i_base;
            for (k, n) in counts.iter_mut().enumerate() {
                offsets[c0 - c_base + k] = at + i_base;
                let here = at;
                at += *n;
                *n = here;
            }
            for &(c, item) in bucket {
                let f = &mut counts[c as usize - c0];
                items[*f as usize] = item;
                *f += 1;
            }
        }
    };
    let ranges = ranges.clamp(1, n_buckets.max(1));
    let bounds: Vec<usize> = (0..=ranges).map(|r| n_buckets * r / ranges).collect();
    std::thread::scope(|s| {
        let (mut offsets_rest, mut items_rest) = (&mut offsets[..n_cookies], &mut items[..]);
        for r in 0..ranges {
            let (b0, b1) = (bounds[r], bounds[r + 1]);
            let cookies =
                (b1 * bucket_cookies).min(n_cookies) - (b0 * bucket_cookies).min(n_cookies);
            let (o, o_tail) = std::mem::take(&mut offsets_rest).split_at_mut(cookies);
            let (i, i_tail) =
                std::mem::take(&mut items_rest).split_at_mut((starts[b1] - starts[b0]) as usize);
            (offsets_rest, items_rest) = (o_tail, i_tail);
            let place = &place;
            if r + 1 == ranges {
                place(b0, b1, o, i);
            } else {
                s.spawn(move || place(b0, b1, o, i));
            }
        }
    });
    (offsets, items)
}

/// Cut every cookie's timeline into segments.
pub fn segment(
    n_cookies: usize,
    ev: &EventColumns,
    touch_anon: &[u32],
    touch_ts: &[i64],
) -> Segmentation {
    let (events, touches) = cookie_order(n_cookies, ev, touch_anon);

    // Cookies are independent of each other here: the cookies are cut in parts of about equal
    // numbers of items, the parts are walked side by side, and their results put together in
    // cookie order (the same segments, in the same order, as one walk over all cookies).
    let parts = crate::parallel::threads(PART_THREADS) * 4;
    walk_in_parts(n_cookies, ev, touch_ts, events, touches, parts)
}

/// A cookie's items in row order, for every cookie: (offset of each cookie's first item,
/// the items).
type CookieItems = (Vec<u32>, Vec<Item>);

/// The items of each cookie: its events and the alias events probing it (by their
/// `previous_id`), and its touches. The two sorts by cookie run side by side, the events'
/// last pass on two threads.
fn cookie_order(
    n_cookies: usize,
    ev: &EventColumns,
    touch_anon: &[u32],
) -> (CookieItems, CookieItems) {
    let event_items = || {
        (0..ev.anon.len() as u32).flat_map(|i| {
            let a = ev.anon[i as usize];
            let p = ev.prev[i as usize];
            let own = (a != NONE).then_some((a, Item::Event(i)));
            let probe = (p != NONE).then_some((p, Item::Probe(i)));
            own.into_iter().chain(probe)
        })
    };
    let touch_items = || {
        (touch_anon.iter())
            .enumerate()
            .map(|(i, &a)| (a, Item::Touch(i as u32)))
    };
    // The events (about three times the touches) placed on two threads, the touches on a third.
    crate::parallel::join(
        || by_cookie(n_cookies, event_items, crate::parallel::threads(2)),
        || by_cookie(n_cookies, touch_items, 1),
    )
}

/// The part of [`segment`] after the cookie order: the walk over the cookies, cut in about
/// `parts` parts.
fn walk_in_parts(
    n_cookies: usize,
    ev: &EventColumns,
    touch_ts: &[i64],
    (ev_off, ev_items): CookieItems,
    (t_off, t_items): CookieItems,
    parts: usize,
) -> Segmentation {
    let n_events = ev.anon.len();
    let bounds = cookie_parts(&ev_off, &t_off, parts);
    let parts = crate::parallel::map(&bounds, PART_THREADS, |_, &(c0, c1)| {
        Ok(walk_cookies(
            c0, c1, ev, &ev_off, &ev_items, &t_off, &t_items, touch_ts,
        ))
    })
    .expect("walking cookies cannot fail");

    let mut out = Segmentation {
        segments: Vec::with_capacity(parts.iter().map(|p| p.segments.len()).sum()),
        cookie_offsets: Vec::with_capacity(n_cookies + 1),
        cookies: Vec::with_capacity(n_cookies),
        event_segment: vec![NONE; n_events],
        alias_prev_segment: vec![NONE; n_events],
        touch_segment: vec![NONE; touch_ts.len()],
        shared_device_cuts: 0,
    };
    for (part, &(c0, c1)) in parts.into_iter().zip(&bounds) {
        let base = out.segments.len() as u32;
        let (e0, u0) = (ev_off[c0] as usize, t_off[c0] as usize);
        for (k, &sg) in part.event_slots.iter().enumerate() {
            match ev_items[e0 + k] {
                Item::Event(e) => out.event_segment[e as usize] = base + sg,
                Item::Probe(e) => out.alias_prev_segment[e as usize] = base + sg,
                Item::Touch(_) => unreachable!("touches are not event items"),
            }
        }
        for (k, &sg) in part.touch_slots.iter().enumerate() {
            match t_items[u0 + k] {
                Item::Touch(t) => out.touch_segment[t as usize] = base + sg,
                _ => unreachable!("only touches are touch items"),
            }
        }
        out.cookie_offsets
            .extend(part.cookie_offsets.iter().map(|&o| base + o));
        out.cookies.extend(part.cookies);
        out.segments.extend(part.segments);
        out.shared_device_cuts += part.shared_device_cuts;
        debug_assert_eq!(out.cookies.len(), c1);
    }
    out.cookie_offsets.push(out.segments.len() as u32);
    out
}

/// Threads for the cookie walk.
const PART_THREADS: usize = 4;

/// `[c0, c1)` ranges of cookies, in order, covering all cookies, about `parts` of them with
/// about equal numbers of items (events, alias probes and touches).
fn cookie_parts(ev_off: &[u32], t_off: &[u32], parts: usize) -> Vec<(usize, usize)> {
    let n_cookies = ev_off.len() - 1;
    let items = |c: usize| ev_off[c] as usize + t_off[c] as usize;
    let total = items(n_cookies);
    let per_part = total.div_ceil(parts.max(1)).max(1);
    let mut bounds = Vec::with_capacity(parts);
    let mut c0 = 0;
    while c0 < n_cookies {
        // The first cookie at which the part holds at least per_part items.
        let goal = items(c0) + per_part;
        let c1 = (c0 + 1..=n_cookies)
            .find(|&c| items(c) >= goal)
            .unwrap_or(n_cookies);
        bounds.push((c0, c1));
        c0 = c1;
    }
    if bounds.is_empty() {
        bounds.push((0, 0));
    }
    bounds
}

/// The segments of the cookies `[c0, c1)`, indexes local to the part.
struct CookiePart {
    segments: Vec<Segment>,
    /// Index of each cookie's first segment among the part's segments.
    cookie_offsets: Vec<u32>,
    cookies: Vec<CookieFacts>,
    shared_device_cuts: u64,
    /// The segment of each of the part's event items (`ev_items[ev_off[c0]..ev_off[c1]]`).
    event_slots: Vec<u32>,
    /// The segment of each of the part's touch items.
    touch_slots: Vec<u32>,
}

/// Walk the cookies `[c0, c1)`: each cookie's events and touches merged by time (a touch
/// before an event of the same time), cut into segments (§3.2).
#[allow(clippy::too_many_arguments)]
fn walk_cookies(
    c0: usize,
    c1: usize,
    ev: &EventColumns,
    ev_off: &[u32],
    ev_items: &[Item],
    t_off: &[u32],
    t_items: &[Item],
    touch_ts: &[i64],
) -> CookiePart {
    let (e_base, t_base) = (ev_off[c0] as usize, t_off[c0] as usize);
    let mut out = CookiePart {
        segments: Vec::with_capacity(c1 - c0 + (c1 - c0) / 8),
        cookie_offsets: Vec::with_capacity(c1 - c0),
        cookies: Vec::with_capacity(c1 - c0),
        shared_device_cuts: 0,
        event_slots: vec![NONE; ev_off[c1] as usize - e_base],
        touch_slots: vec![NONE; t_off[c1] as usize - t_base],
    };
    let ts_of = |item: &Item| match *item {
        Item::Event(i) | Item::Probe(i) => ev.ts[i as usize],
        Item::Touch(i) => touch_ts[i as usize],
    };
    for c in c0..c1 {
        out.cookie_offsets.push(out.segments.len() as u32);
        let (e0, e1) = (ev_off[c] as usize, ev_off[c + 1] as usize);
        let evs = &ev_items[e0..e1];
        let (u0, u1) = (t_off[c] as usize, t_off[c + 1] as usize);
        let ts_ = &t_items[u0..u1];
        // Merge by time; on equal times the touch (the visit) comes first.
        let (mut i, mut j) = (0, 0);
        let mut facts: Option<CookieFacts> = None;
        let mut pending_from: Option<i64> = None; // a logout closed the segment at this time
        let mut users_seen: Vec<u32> = Vec::new();
        while i < evs.len() || j < ts_.len() {
            // Where this item's segment goes: its place among the part's items.
            let (item, slot) =
                if j < ts_.len() && (i >= evs.len() || ts_of(&ts_[j]) <= ts_of(&evs[i])) {
                    j += 1;
                    (ts_[j - 1], (false, u0 + j - 1 - t_base))
                } else {
                    i += 1;
                    (evs[i - 1], (true, e0 + i - 1 - e_base))
                };
            let t = ts_of(&item);
            let f = facts.get_or_insert(CookieFacts {
                first_seen: t,
                last_seen: t,
                conflict: false,
            });
            f.first_seen = f.first_seen.min(t);
            f.last_seen = f.last_seen.max(t);
            // Open the first segment, or the one after a logout.
            let first_of_cookie = out.segments.len() as u32 == *out.cookie_offsets.last().unwrap();
            if first_of_cookie || pending_from.is_some() {
                let from = pending_from.take().unwrap_or(t);
                let number = out.segments.len() as u32 - out.cookie_offsets[c - c0];
                out.segments.push(Segment {
                    anon: c as u32,
                    number,
                    valid_from: from,
                    valid_to: None,
                    user: NONE,
                    link: None,
                });
            }
            match item {
                Item::Touch(_) | Item::Probe(_) => {}
                Item::Event(e) => {
                    let e_us = e as usize;
                    let u = ev.user[e_us];
                    if u != NONE {
                        let kind = match ev.kind[e_us] {
                            EventKind::Signup => LinkKind::Signup,
                            EventKind::Signin => LinkKind::Signin,
                            _ => LinkKind::Seen,
                        };
                        if !users_seen.contains(&u) {
                            users_seen.push(u);
                        }
                        let cur = out.segments.last_mut().unwrap();
                        if cur.user == NONE {
                            cur.user = u;
                            cur.link = Some((kind, t, e));
                        } else if cur.user != u {
                            // A shared device whose cookie was never rotated: cut right before.
                            cur.valid_to = Some(t);
                            let number = cur.number + 1;
                            out.shared_device_cuts += 1;
                            out.segments.push(Segment {
                                anon: c as u32,
                                number,
                                valid_from: t,
                                valid_to: None,
                                user: u,
                                link: Some((kind, t, e)),
                            });
                        }
                    }
                    if ev.kind[e_us] == EventKind::Logout {
                        out.segments.last_mut().unwrap().valid_to = Some(t);
                        pending_from = Some(t);
                    }
                }
            }
            let current = out.segments.len() as u32 - 1;
            match slot {
                (true, k) => out.event_slots[k] = current,
                (false, k) => out.touch_slots[k] = current,
            }
        }
        let mut f = facts.unwrap_or(CookieFacts {
            first_seen: 0,
            last_seen: 0,
            conflict: false,
        });
        f.conflict = users_seen.len() > 1;
        out.cookies.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events in time order over `n_cookies` cookies and a few users, with logouts, aliases
    /// (probes of other cookies) and touches, from a fixed pseudo-random sequence.
    fn lake(n_cookies: u32, n_events: usize) -> (EventColumns, Vec<u32>, Vec<i64>) {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % m
        };
        let mut ev = EventColumns::default();
        for i in 0..n_events {
            let kind = match next(10) {
                0 => EventKind::Signup,
                1 => EventKind::Signin,
                2 => EventKind::Logout,
                3 => EventKind::Alias,
                _ => EventKind::Other,
            };
            let anon = if next(20) == 0 {
                NONE
            } else {
                next(n_cookies as u64) as u32
            };
            ev.anon.push(anon);
            ev.user
                .push(if next(3) == 0 { next(40) as u32 } else { NONE });
            ev.prev.push(if kind == EventKind::Alias {
                next(n_cookies as u64) as u32
            } else {
                NONE
            });
            // Several events share a time, as in the lakes.
            ev.ts.push(i as i64 / 3);
            ev.kind.push(kind);
        }
        let n_touches = n_events / 2;
        let touch_anon = (0..n_touches)
            .map(|_| next(n_cookies as u64) as u32)
            .collect();
        let touch_ts = (0..n_touches).map(|i| i as i64 * 2 / 3).collect();
        (ev, touch_anon, touch_ts)
    }

    fn walk(
        n_cookies: usize,
        lake: &(EventColumns, Vec<u32>, Vec<i64>),
        parts: usize,
    ) -> Segmentation {
        let (ev, touch_anon, touch_ts) = lake;
        let (events, touches) = cookie_order(n_cookies, ev, touch_anon);
        walk_in_parts(n_cookies, ev, touch_ts, events, touches, parts)
    }

    #[test]
    fn cookies_walked_in_parts_give_the_segments_of_one_walk() {
        let n_cookies = 300;
        let lake = lake(n_cookies as u32, 6_000);
        let one = walk(n_cookies, &lake, 1);
        assert!(one.shared_device_cuts > 0, "the lake has shared devices");
        assert!(one.segments.len() > n_cookies, "and logouts");
        for parts in [2, 7, 64, 10_000] {
            let split = walk(n_cookies, &lake, parts);
            assert_eq!(split.segments, one.segments, "{parts} parts");
            assert_eq!(split.cookie_offsets, one.cookie_offsets);
            assert_eq!(split.cookies, one.cookies);
            assert_eq!(split.event_segment, one.event_segment);
            assert_eq!(split.alias_prev_segment, one.alias_prev_segment);
            assert_eq!(split.touch_segment, one.touch_segment);
            assert_eq!(split.shared_device_cuts, one.shared_device_cuts);
        }
        // The public entry point takes the same walk.
        let (ev, ta, tt) = &lake;
        let public = segment(n_cookies, ev, ta, tt);
        assert_eq!(public.segments, one.segments);
        assert_eq!(public.event_segment, one.event_segment);
    }

    #[test]
    fn cookies_sorted_in_ranges_give_the_order_of_one_sort() {
        let n_cookies = 300;
        let (ev, touch_anon, _) = lake(n_cookies as u32, 6_000);
        let keys = || {
            (0..ev.anon.len() as u32)
                .filter(|&i| ev.anon[i as usize] != NONE)
                .map(|i| (ev.anon[i as usize], Item::Event(i)))
                .chain((touch_anon.iter().enumerate()).map(|(i, &a)| (a, Item::Touch(i as u32))))
        };
        let (offsets, items) = by_cookie(n_cookies, keys, 1);
        // One sort: each cookie's items, in the keys' order.
        for c in 0..n_cookies {
            let want: Vec<Item> = keys().filter(|k| k.0 as usize == c).map(|k| k.1).collect();
            let got = &items[offsets[c] as usize..offsets[c + 1] as usize];
            assert_eq!(got, want.as_slice(), "cookie {c}");
        }
        for ranges in [2, 3, 7, 300, 1_000] {
            for bucket in [1, 7, 64, 299, 300, 4096] {
                assert_eq!(
                    by_cookie_in(n_cookies, keys, ranges, bucket),
                    (offsets.clone(), items.clone()),
                    "{ranges} ranges, buckets of {bucket} cookies"
                );
            }
        }
        let none = || std::iter::empty::<(u32, Item)>();
        assert_eq!(by_cookie(0, none, 2), (vec![0], vec![]));
        assert_eq!(by_cookie(3, none, 2), (vec![0; 4], vec![]));
    }

    #[test]
    fn cookie_parts_cover_every_cookie_once_in_order() {
        let ev_off = [0u32, 5, 5, 5, 40, 41, 90];
        let t_off = [0u32, 0, 3, 3, 3, 10, 10];
        for parts in [1, 2, 3, 6, 100] {
            let b = cookie_parts(&ev_off, &t_off, parts);
            assert_eq!(b.first().unwrap().0, 0);
            assert_eq!(b.last().unwrap().1, 6);
            assert!(b.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
        }
        assert_eq!(cookie_parts(&[0], &[0], 4), vec![(0, 0)]);
    }
}
