//! Cutting each cookie's timeline into segments (contract §3.2).
//!
//! Input is dense integer columns; rows of every cookie are gathered with a counting sort
//! (events are already in journey order, touches in time order), then each cookie is walked
//! once: a logout ends the current segment (the logout belongs to it), and a link to a user
//! other than the segment's starts a new one right before that link.

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

#[derive(Clone, Copy)]
enum Item {
    Event(u32),
    Probe(u32),
    Touch(u32),
}

/// Gather row ids per cookie, keeping row order (counting sort).
fn by_cookie(
    n_cookies: usize,
    keys: impl Iterator<Item = (u32, Item)> + Clone,
) -> (Vec<u32>, Vec<Item>) {
    let mut offsets = vec![0u32; n_cookies + 1];
    for (c, _) in keys.clone() {
        offsets[c as usize + 1] += 1;
    }
    for i in 0..n_cookies {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut items = vec![Item::Touch(0); offsets[n_cookies] as usize];
    for (c, item) in keys {
        items[fill[c as usize] as usize] = item;
        fill[c as usize] += 1;
    }
    (offsets, items)
}

/// Cut every cookie's timeline into segments.
pub fn segment(
    n_cookies: usize,
    ev: &EventColumns,
    touch_anon: &[u32],
    touch_ts: &[i64],
) -> Segmentation {
    let n_events = ev.anon.len();
    let event_items = (0..n_events as u32).flat_map(|i| {
        let a = ev.anon[i as usize];
        let p = ev.prev[i as usize];
        let own = (a != NONE).then_some((a, Item::Event(i)));
        let probe = (p != NONE).then_some((p, Item::Probe(i)));
        own.into_iter().chain(probe)
    });
    let (ev_off, ev_items) = by_cookie(n_cookies, event_items);
    let (t_off, t_items) = by_cookie(
        n_cookies,
        touch_anon
            .iter()
            .enumerate()
            .map(|(i, &a)| (a, Item::Touch(i as u32))),
    );

    let mut out = Segmentation {
        segments: Vec::with_capacity(n_cookies + n_cookies / 8),
        cookie_offsets: Vec::with_capacity(n_cookies + 1),
        cookies: Vec::with_capacity(n_cookies),
        event_segment: vec![NONE; n_events],
        alias_prev_segment: vec![NONE; n_events],
        touch_segment: vec![NONE; touch_anon.len()],
        shared_device_cuts: 0,
    };
    let ts_of = |item: &Item| match *item {
        Item::Event(i) | Item::Probe(i) => ev.ts[i as usize],
        Item::Touch(i) => touch_ts[i as usize],
    };

    for c in 0..n_cookies {
        out.cookie_offsets.push(out.segments.len() as u32);
        let evs = &ev_items[ev_off[c] as usize..ev_off[c + 1] as usize];
        let ts_ = &t_items[t_off[c] as usize..t_off[c + 1] as usize];
        // Merge by time; on equal times the touch (the visit) comes first.
        let (mut i, mut j) = (0, 0);
        let mut facts: Option<CookieFacts> = None;
        let mut pending_from: Option<i64> = None; // a logout closed the segment at this time
        let mut users_seen: Vec<u32> = Vec::new();
        while i < evs.len() || j < ts_.len() {
            let item = if j < ts_.len() && (i >= evs.len() || ts_of(&ts_[j]) <= ts_of(&evs[i])) {
                j += 1;
                ts_[j - 1]
            } else {
                i += 1;
                evs[i - 1]
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
                let number = out.segments.len() as u32 - out.cookie_offsets[c];
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
                Item::Touch(k) => out.touch_segment[k as usize] = out.segments.len() as u32 - 1,
                Item::Probe(e) => {
                    out.alias_prev_segment[e as usize] = out.segments.len() as u32 - 1
                }
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
                    out.event_segment[e_us] = out.segments.len() as u32 - 1;
                    if ev.kind[e_us] == EventKind::Logout {
                        out.segments.last_mut().unwrap().valid_to = Some(t);
                        pending_from = Some(t);
                    }
                }
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
    out.cookie_offsets.push(out.segments.len() as u32);
    out
}
