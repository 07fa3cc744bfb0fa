//! Synthetic raw lakes with ground truth (`lakestitch gen`).
//!
//! [`generate`] is a pure, deterministic function: the same [`GenOptions`] always give the same
//! frames, row for row. It simulates `persons` humans browsing a site (`www.example.com` and
//! `app.example.com`) from one to three devices over `days` days ending on `end_date`, signing up,
//! signing in on their other devices, logging out, buying, and the usual dirt of real event
//! pipelines: cookie wipes, SDK aliases, server-side events, junk ids, duplicated deliveries,
//! legacy events that carry an organization id in `user_id`, equal timestamps ordered by `seq`.
//! With `stories`, a fixed set of hand-made cases (ids like `anon_phone_ava`, `u_ava`, `h_ava`)
//! is added; it neither uses nor disturbs the random part.
//!
//! Ground truth: `truth_events` says which human produced each event (junk-id rows included),
//! `truth_humans` gives each human's user id and the time of their earliest *counting* touch
//! (contract §3.4) over all their cookies. Touches whose `anon_id` is a junk id are left out of
//! `first_touch_at`: no one can attribute them.
//!
//! Rough volumes per random person: about 13 events (duplicates included) and 4 touches.

use chrono::{NaiveDate, NaiveTime, TimeDelta};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Options of [`generate`].
pub struct GenOptions {
    /// number of random humans
    pub persons: usize,
    /// length of the window, in days, ending on `end_date` (0 is read as 1)
    pub days: u32,
    /// seed of the ChaCha8 generator
    pub seed: u64,
    /// last day of the window (UTC), inclusive
    pub end_date: NaiveDate,
    /// add the hand-made stories (fixed ids such as `anon_phone_ava`, `u_ava`, `h_ava`)
    pub stories: bool,
    /// each random human's number of visits (2 to 6) times this (0 is read as 1): more events
    /// per identity, the same humans; 1 gives the lake of earlier versions, byte for byte
    pub visits_scale: u32,
}

/// A generated raw lake (contract §2) and its ground truth.
pub struct SyntheticLake {
    /// one DataFrame per dt partition (UTC date of the rows' ts, except duplicated deliveries, which may land in a later dt)
    pub touches: Vec<(NaiveDate, DataFrame)>,
    /// raw/events, one DataFrame per dt partition (same rule as `touches`)
    pub events: Vec<(NaiveDate, DataFrame)>,
    /// raw/users: one row per user id
    pub users: DataFrame,
    /// raw/orgs: org_id
    pub orgs: DataFrame,
    /// raw/memberships: user_id, org_id
    pub memberships: DataFrame,
    /// truth/events: event_id (str), human_id (str) — which human produced each event (one row per distinct event_id)
    pub truth_events: DataFrame,
    /// truth/humans: human_id (str), user_id (str, null if never signed up), first_touch_at (Datetime us UTC, null if none): earliest counting touch (see contract §3.4) of the human across all their devices
    pub truth_humans: DataFrame,
}

/// Generates a synthetic raw lake with its ground truth. Deterministic in `opts`.
pub fn generate(opts: &GenOptions) -> PolarsResult<SyntheticLake> {
    let days = opts.days.max(1) as i64;
    let end_ms = opts
        .end_date
        .and_time(NaiveTime::MIN)
        .and_utc()
        .timestamp_millis();
    let start_date = opts.end_date - TimeDelta::days(days - 1);
    let mut sink = Sink::new(start_date, days as usize);

    if opts.stories {
        let clock = StoryClock {
            d0: end_ms,
            ws: sink.ws,
            window: days * MS_PER_DAY,
            compress: days < STORY_SPAN_DAYS,
        };
        stories(&mut sink, &clock);
    }

    let mut gen = RandomPart::new(opts.seed, opts.persons, &mut sink);
    gen.visits_scale = opts.visits_scale.max(1) as usize;
    for i in 0..opts.persons {
        gen.human(i + 1);
    }

    sink.finish()
}

// ---------------------------------------------------------------------------------------------
// Constants and small helpers
// ---------------------------------------------------------------------------------------------

const MS_PER_DAY: i64 = 86_400_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// Ids that are not ids (contract §3.5), as they show up in real payloads.
const JUNK_IDS: [&str; 11] = [
    "",
    " ",
    "null",
    "undefined",
    "\"null\"",
    "0",
    "-1",
    "anonymous",
    "[object Object]",
    "NaN",
    "Guest",
];

const PHONE_UAS: [&str; 3] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36",
];
const LAPTOP_UAS: [&str; 4] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
];

const WWW_PAGES: [&str; 8] = [
    "https://www.example.com/",
    "https://www.example.com/pricing",
    "https://www.example.com/features",
    "https://www.example.com/blog/identity-stitching",
    "https://www.example.com/blog/server-side-tracking",
    "https://www.example.com/docs/getting-started",
    "https://www.example.com/customers",
    "https://www.example.com/integrations",
];
const APP_PAGES: [&str; 5] = [
    "https://app.example.com/dashboard",
    "https://app.example.com/projects",
    "https://app.example.com/settings",
    "https://app.example.com/billing",
    "https://app.example.com/team",
];

const FIRST_NAMES: [&str; 26] = [
    "ava", "ben", "chloe", "daniel", "emma", "felix", "grace", "henry", "isla", "jack", "kai",
    "lena", "mia", "noah", "olivia", "paul", "quinn", "rosa", "sam", "tara", "umar", "vera",
    "will", "xena", "yusuf", "zoe",
];
const LAST_NAMES: [&str; 15] = [
    "smith", "jones", "garcia", "muller", "martin", "dubois", "brown", "rossi", "nguyen",
    "kowalski", "silva", "kim", "patel", "okafor", "larsen",
];

/// splitmix64's finalizer: a bijection of u64, so distinct counters give distinct ids.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The registrable domain of a URL for the hosts this generator writes (last two labels).
fn site_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#', ':']).next()?;
    let mut dots = host.rmatch_indices('.');
    dots.next()?;
    match dots.next() {
        Some((i, _)) => Some(&host[i + 1..]),
        None => Some(host),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Rows and column builders
// ---------------------------------------------------------------------------------------------

/// One event row, borrowing its strings.
#[derive(Clone, Copy, Default)]
struct Ev<'a> {
    id: &'a str,
    name: &'a str,
    ts: i64,
    anon: Option<&'a str>,
    user: Option<&'a str>,
    prev: Option<&'a str>,
    seq: Option<i64>,
    org: Option<&'a str>,
    tv: Option<i32>,
    session: Option<&'a str>,
    ip: Option<&'a str>,
    ua: Option<&'a str>,
    value: Option<f64>,
    currency: Option<&'a str>,
    order: Option<&'a str>,
    email: Option<&'a str>,
    props: Option<&'a str>,
}

/// One touch row. `ts_us` is microseconds since the epoch.
#[derive(Clone, Default)]
struct Tc {
    anon: String,
    ts_us: i64,
    gclid: Option<String>,
    gbraid: Option<String>,
    wbraid: Option<String>,
    fbclid: Option<String>,
    ttclid: Option<String>,
    msclkid: Option<String>,
    li_fat_id: Option<String>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_content: Option<String>,
    utm_term: Option<String>,
    landing: Option<String>,
    referrer: Option<String>,
    fbp: Option<String>,
    fbc: Option<String>,
    ip: Option<String>,
    ua: Option<String>,
    partner_ref: Option<String>,
}

impl Tc {
    /// Contract §3.4: a click id, a utm value or an unknown key, or an external referrer.
    fn counts(&self) -> bool {
        let keyed = [
            &self.gclid,
            &self.gbraid,
            &self.wbraid,
            &self.fbclid,
            &self.ttclid,
            &self.msclkid,
            &self.li_fat_id,
            &self.utm_source,
            &self.utm_medium,
            &self.utm_campaign,
            &self.utm_content,
            &self.utm_term,
            &self.partner_ref,
        ]
        .iter()
        .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()));
        if keyed {
            return true;
        }
        match self.referrer.as_deref().and_then(site_of) {
            Some(r) => self.landing.as_deref().and_then(site_of) != Some(r),
            None => false,
        }
    }

    fn string_fields(&self) -> [Option<&str>; TOUCH_STR_COLS.len()] {
        [
            self.gclid.as_deref(),
            self.gbraid.as_deref(),
            self.wbraid.as_deref(),
            self.fbclid.as_deref(),
            self.ttclid.as_deref(),
            self.msclkid.as_deref(),
            self.li_fat_id.as_deref(),
            self.utm_source.as_deref(),
            self.utm_medium.as_deref(),
            self.utm_campaign.as_deref(),
            self.utm_content.as_deref(),
            self.utm_term.as_deref(),
            self.landing.as_deref(),
            self.referrer.as_deref(),
            self.fbp.as_deref(),
            self.fbc.as_deref(),
            self.ip.as_deref(),
            self.ua.as_deref(),
            self.partner_ref.as_deref(),
        ]
    }
}

fn sb(name: &str) -> StringChunkedBuilder {
    StringChunkedBuilder::new(name.into(), 0)
}

struct EventCols {
    rows: usize,
    event_id: StringChunkedBuilder,
    event: StringChunkedBuilder,
    ts: Vec<i64>,
    anon_id: StringChunkedBuilder,
    user_id: StringChunkedBuilder,
    previous_id: StringChunkedBuilder,
    seq: Vec<Option<i64>>,
    org_id: StringChunkedBuilder,
    tracking_version: Vec<Option<i32>>,
    session_id: StringChunkedBuilder,
    ip: StringChunkedBuilder,
    user_agent: StringChunkedBuilder,
    value: Vec<Option<f64>>,
    currency: StringChunkedBuilder,
    order_id: StringChunkedBuilder,
    email: StringChunkedBuilder,
    properties: StringChunkedBuilder,
}

impl EventCols {
    fn new() -> Self {
        EventCols {
            rows: 0,
            event_id: sb("event_id"),
            event: sb("event"),
            ts: Vec::new(),
            anon_id: sb("anon_id"),
            user_id: sb("user_id"),
            previous_id: sb("previous_id"),
            seq: Vec::new(),
            org_id: sb("org_id"),
            tracking_version: Vec::new(),
            session_id: sb("session_id"),
            ip: sb("ip"),
            user_agent: sb("user_agent"),
            value: Vec::new(),
            currency: sb("currency"),
            order_id: sb("order_id"),
            email: sb("email"),
            properties: sb("properties"),
        }
    }

    fn push(&mut self, e: &Ev) {
        self.rows += 1;
        self.event_id.append_value(e.id);
        self.event.append_value(e.name);
        self.ts.push(e.ts);
        self.anon_id.append_option(e.anon);
        self.user_id.append_option(e.user);
        self.previous_id.append_option(e.prev);
        self.seq.push(e.seq);
        self.org_id.append_option(e.org);
        self.tracking_version.push(e.tv);
        self.session_id.append_option(e.session);
        self.ip.append_option(e.ip);
        self.user_agent.append_option(e.ua);
        self.value.push(e.value);
        self.currency.append_option(e.currency);
        self.order_id.append_option(e.order);
        self.email.append_option(e.email);
        self.properties.append_option(e.props);
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        let ts = Series::new("ts".into(), self.ts)
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?;
        DataFrame::new(
            self.rows,
            vec![
                self.event_id.finish().into_column(),
                self.event.finish().into_column(),
                ts.into_column(),
                self.anon_id.finish().into_column(),
                self.user_id.finish().into_column(),
                self.previous_id.finish().into_column(),
                Column::new("seq".into(), self.seq),
                self.org_id.finish().into_column(),
                Column::new("tracking_version".into(), self.tracking_version),
                self.session_id.finish().into_column(),
                self.ip.finish().into_column(),
                self.user_agent.finish().into_column(),
                Column::new("value".into(), self.value),
                self.currency.finish().into_column(),
                self.order_id.finish().into_column(),
                self.email.finish().into_column(),
                self.properties.finish().into_column(),
            ],
        )
    }
}

/// Touch string columns after `anon_id` and `ts`, in order.
const TOUCH_STR_COLS: [&str; 19] = [
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "ttclid",
    "msclkid",
    "li_fat_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "landing_url",
    "referrer",
    "fbp",
    "fbc",
    "ip",
    "user_agent",
    "partner_ref",
];

struct TouchCols {
    rows: usize,
    anon_id: StringChunkedBuilder,
    ts: Vec<i64>,
    strs: [StringChunkedBuilder; TOUCH_STR_COLS.len()],
}

impl TouchCols {
    fn new() -> Self {
        TouchCols {
            rows: 0,
            anon_id: sb("anon_id"),
            ts: Vec::new(),
            strs: std::array::from_fn(|i| sb(TOUCH_STR_COLS[i])),
        }
    }

    fn push(&mut self, t: &Tc) {
        self.rows += 1;
        self.anon_id.append_value(&t.anon);
        self.ts.push(t.ts_us);
        for (b, v) in self.strs.iter_mut().zip(t.string_fields()) {
            b.append_option(v);
        }
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        let ts = Series::new("ts".into(), self.ts).cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))?;
        let mut cols = Vec::with_capacity(2 + TOUCH_STR_COLS.len());
        cols.push(self.anon_id.finish().into_column());
        cols.push(ts.into_column());
        cols.extend(self.strs.into_iter().map(|b| b.finish().into_column()));
        DataFrame::new(self.rows, cols)
    }
}

struct UserRow<'a> {
    user_id: &'a str,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    country: &'a str,
    created_at: Option<i64>,
    ad_user_data: Option<bool>,
    ad_personalization: Option<bool>,
}

struct UserCols {
    user_id: StringChunkedBuilder,
    email: StringChunkedBuilder,
    phone: StringChunkedBuilder,
    country: StringChunkedBuilder,
    created_at: Vec<Option<i64>>,
    ad_user_data: Vec<Option<bool>>,
    ad_personalization: Vec<Option<bool>>,
}

/// Everything written so far, partitioned by day, plus the truth.
struct Sink {
    start_date: NaiveDate,
    /// epoch ms of the window's first midnight
    ws: i64,
    ndays: usize,
    events: Vec<EventCols>,
    touches: Vec<TouchCols>,
    truth_event_id: StringChunkedBuilder,
    truth_human_id: StringChunkedBuilder,
    truth_rows: usize,
    users: UserCols,
    user_rows: usize,
    orgs: Vec<String>,
    memberships: Vec<(String, String)>,
    human_ids: Vec<String>,
    human_users: Vec<Option<String>>,
    human_first_touch: Vec<Option<i64>>,
}

impl Sink {
    fn new(start_date: NaiveDate, ndays: usize) -> Self {
        Sink {
            start_date,
            ws: start_date
                .and_time(NaiveTime::MIN)
                .and_utc()
                .timestamp_millis(),
            ndays,
            events: (0..ndays).map(|_| EventCols::new()).collect(),
            touches: (0..ndays).map(|_| TouchCols::new()).collect(),
            truth_event_id: sb("event_id"),
            truth_human_id: sb("human_id"),
            truth_rows: 0,
            users: UserCols {
                user_id: sb("user_id"),
                email: sb("email"),
                phone: sb("phone"),
                country: sb("country"),
                created_at: Vec::new(),
                ad_user_data: Vec::new(),
                ad_personalization: Vec::new(),
            },
            user_rows: 0,
            orgs: Vec::new(),
            memberships: Vec::new(),
            human_ids: Vec::new(),
            human_users: Vec::new(),
            human_first_touch: Vec::new(),
        }
    }

    /// Window end (exclusive), epoch ms.
    fn we(&self) -> i64 {
        self.ws + self.ndays as i64 * MS_PER_DAY
    }

    /// Partition index of an epoch-ms timestamp.
    fn day_of(&self, ms: i64) -> usize {
        let d = (ms - self.ws).div_euclid(MS_PER_DAY);
        debug_assert!(
            d >= 0 && (d as usize) < self.ndays,
            "timestamp {ms} outside the window"
        );
        d.clamp(0, self.ndays as i64 - 1) as usize
    }

    /// An event in its own dt partition, and its truth.
    fn event(&mut self, e: &Ev, human: &str) {
        let d = self.day_of(e.ts);
        self.events[d].push(e);
        self.truth_event_id.append_value(e.id);
        self.truth_human_id.append_value(human);
        self.truth_rows += 1;
    }

    /// Another delivery of an event already written with [`Sink::event`].
    fn event_copy(&mut self, e: &Ev, day: usize) {
        self.events[day].push(e);
    }

    fn touch(&mut self, t: &Tc) {
        let d = self.day_of(t.ts_us.div_euclid(1000));
        self.touches[d].push(t);
    }

    fn user(&mut self, u: &UserRow) {
        self.users.user_id.append_value(u.user_id);
        self.users.email.append_option(u.email);
        self.users.phone.append_option(u.phone);
        self.users.country.append_value(u.country);
        self.users.created_at.push(u.created_at);
        self.users.ad_user_data.push(u.ad_user_data);
        self.users.ad_personalization.push(u.ad_personalization);
        self.user_rows += 1;
    }

    fn human(&mut self, human_id: &str, user_id: Option<&str>, first_touch_us: Option<i64>) {
        self.human_ids.push(human_id.to_string());
        self.human_users.push(user_id.map(str::to_string));
        self.human_first_touch.push(first_touch_us);
    }

    fn finish(self) -> PolarsResult<SyntheticLake> {
        let date = |i: usize| self.start_date + TimeDelta::days(i as i64);
        let mut events = Vec::new();
        for (i, cols) in self.events.into_iter().enumerate() {
            if cols.rows > 0 {
                events.push((date(i), cols.finish()?));
            }
        }
        let mut touches = Vec::new();
        for (i, cols) in self.touches.into_iter().enumerate() {
            if cols.rows > 0 {
                touches.push((date(i), cols.finish()?));
            }
        }
        let u = self.users;
        let users = DataFrame::new(
            self.user_rows,
            vec![
                u.user_id.finish().into_column(),
                u.email.finish().into_column(),
                u.phone.finish().into_column(),
                u.country.finish().into_column(),
                Series::new("created_at".into(), u.created_at)
                    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
                    .into_column(),
                Column::new("ad_user_data".into(), u.ad_user_data),
                Column::new("ad_personalization".into(), u.ad_personalization),
            ],
        )?;
        let orgs = DataFrame::new(
            self.orgs.len(),
            vec![Column::new("org_id".into(), self.orgs)],
        )?;
        let (m_users, m_orgs): (Vec<String>, Vec<String>) = self.memberships.into_iter().unzip();
        let memberships = DataFrame::new(
            m_users.len(),
            vec![
                Column::new("user_id".into(), m_users),
                Column::new("org_id".into(), m_orgs),
            ],
        )?;
        let truth_events = DataFrame::new(
            self.truth_rows,
            vec![
                self.truth_event_id.finish().into_column(),
                self.truth_human_id.finish().into_column(),
            ],
        )?;
        let truth_humans = DataFrame::new(
            self.human_ids.len(),
            vec![
                Column::new("human_id".into(), self.human_ids),
                Column::new("user_id".into(), self.human_users),
                Series::new("first_touch_at".into(), self.human_first_touch)
                    .cast(&DataType::Datetime(
                        TimeUnit::Microseconds,
                        Some(TimeZone::UTC),
                    ))?
                    .into_column(),
            ],
        )?;
        Ok(SyntheticLake {
            touches,
            events,
            users,
            orgs,
            memberships,
            truth_events,
            truth_humans,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The random part
// ---------------------------------------------------------------------------------------------

struct Device {
    cookie: String,
    ip: String,
    ua: &'static str,
    phone: bool,
    /// `Some(last seq)` when this device's SDK sends `seq`
    seq: Option<i64>,
    /// whether this browser carries Meta's `_fbp` cookie
    fbp_on: bool,
    fbp: Option<String>,
    logged_in: bool,
    used: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Direct,
    DirectInternal,
    Organic,
    Referral,
    OrganicSocial,
    SocialUtm,
    Google,
    Meta,
    Email,
    TikTok,
    Bing,
    LinkedIn,
    Partner,
}

const KINDS: [Kind; 13] = [
    Kind::Direct,
    Kind::DirectInternal,
    Kind::Organic,
    Kind::Referral,
    Kind::OrganicSocial,
    Kind::SocialUtm,
    Kind::Google,
    Kind::Meta,
    Kind::Email,
    Kind::TikTok,
    Kind::Bing,
    Kind::LinkedIn,
    Kind::Partner,
];
/// Weights (per mille) of [`KINDS`] for a human's first visit and for later visits.
const FIRST_VISIT_W: [u32; 13] = [150, 30, 200, 100, 50, 30, 180, 120, 50, 30, 30, 20, 10];
const LATER_VISIT_W: [u32; 13] = [450, 100, 120, 50, 30, 10, 90, 60, 60, 10, 10, 7, 3];

struct RandomPart<'s> {
    rng: ChaCha8Rng,
    /// [`GenOptions::visits_scale`], at least 1.
    visits_scale: usize,
    salt: u64,
    ctr: u64,
    n_orgs: usize,
    next_user: usize,
    ws: i64,
    we: i64,
    sink: &'s mut Sink,
}

impl<'s> RandomPart<'s> {
    fn new(seed: u64, persons: usize, sink: &'s mut Sink) -> Self {
        let n_orgs = if persons == 0 {
            0
        } else {
            (persons / 40).max(1)
        };
        for o in 1..=n_orgs {
            sink.orgs.push(format!("org_{o}"));
        }
        RandomPart {
            rng: ChaCha8Rng::seed_from_u64(seed),
            visits_scale: 1,
            salt: mix(seed ^ 0x6c61_6b65_7374_6974),
            ctr: 0,
            n_orgs,
            next_user: 1,
            ws: sink.ws,
            we: sink.we(),
            sink,
        }
    }

    /// A unique id: `prefix` + 16 hex digits.
    fn uid(&mut self, prefix: &str) -> String {
        self.ctr += 1;
        format!("{prefix}{:016x}", mix(self.ctr ^ self.salt))
    }

    fn hex(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn weighted(&mut self, w: &[u32]) -> usize {
        let total: u32 = w.iter().sum();
        let mut r = self.rng.random_range(0..total);
        for (i, &x) in w.iter().enumerate() {
            if r < x {
                return i;
            }
            r -= x;
        }
        w.len() - 1
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn ip(&mut self) -> String {
        if self.chance(0.1) {
            let (a, b, c): (u16, u16, u16) = self.rng.random();
            return format!("2001:db8:{a:x}:{b:x}::{c:x}");
        }
        let mut a = self.rng.random_range(11..=223u8);
        if a == 127 {
            a = 128;
        }
        let b: u8 = self.rng.random();
        let c: u8 = self.rng.random();
        let d = self.rng.random_range(1..=254u8);
        format!("{a}.{b}.{c}.{d}")
    }

    fn new_device(&mut self, phone: bool) -> Device {
        let cookie = self.uid("a_");
        let ip = self.ip();
        let ua = if phone {
            self.pick(&PHONE_UAS)
        } else {
            self.pick(&LAPTOP_UAS)
        };
        Device {
            cookie,
            ip,
            ua,
            phone,
            seq: if self.chance(0.5) { Some(0) } else { None },
            fbp_on: self.chance(0.6),
            fbp: None,
            logged_in: false,
            used: false,
        }
    }

    /// Advances the session clock (or keeps it, for a tie ordered by `seq`) and the device's seq.
    fn stamp(&mut self, dev: &mut Device, t: &mut i64, tie_ok: bool) -> (i64, Option<i64>) {
        let tie = tie_ok && dev.seq.is_some() && self.chance(0.12);
        if !tie {
            *t += self.rng.random_range(800..75_000);
        }
        let seq = dev.seq.as_mut().map(|c| {
            *c += 1;
            *c
        });
        (*t, seq)
    }

    /// Writes an event, maybe with junk ids (`junkable`), maybe delivered twice.
    fn emit(&mut self, ev: &Ev, human: &str, junkable: bool) {
        let mut e = *ev;
        if junkable {
            let r: f64 = self.rng.random();
            if r < 0.003 && e.anon.is_some() {
                e.anon = Some(self.pick(&JUNK_IDS));
            } else if r < 0.006 && e.user.is_none() {
                e.user = Some(self.pick(&JUNK_IDS));
            } else if r < 0.0065 && e.anon.is_some() && e.user.is_none() {
                e.anon = Some(self.pick(&JUNK_IDS));
                e.user = Some(self.pick(&JUNK_IDS));
            }
        }
        self.sink.event(&e, human);
        let r: f64 = self.rng.random();
        if r < 0.0101 {
            let day = self.sink.day_of(e.ts);
            let day = if day + 1 < self.sink.ndays && self.chance(0.3) {
                day + 1
            } else {
                day
            };
            if r < 0.01 {
                self.sink.event_copy(&e, day);
            } else {
                // a conflicting duplicate: same event_id, different properties
                let props = match e.props {
                    Some(p) if p.ends_with('}') && p.len() > 2 => {
                        format!("{},\"retry\":true}}", &p[..p.len() - 1])
                    }
                    _ => "{\"retry\":true}".to_string(),
                };
                let c = Ev {
                    props: Some(&props),
                    ..e
                };
                self.sink.event_copy(&c, day);
            }
        }
    }

    fn email(&mut self, i: usize, first: &str, last: &str) -> String {
        let (f, l) = if self.chance(0.15) {
            (capitalize(first), capitalize(last))
        } else {
            (first.to_string(), last.to_string())
        };
        let e = match self.rng.random_range(0..6) {
            0 => format!("{f}.{l}{i}@gmail.com"),
            1 => {
                let tag = self.pick(&["ads", "news", "work", "saas"]);
                format!("{f}.{l}{i}+{tag}@gmail.com")
            }
            2 => format!("{}{l}{i}@example.org", &f[..1]),
            3 => format!("{f}{i}@{last}.example.com"),
            4 => format!("{f}_{l}{i}@outlook.com"),
            _ => format!("{f}.{l}{i}@googlemail.com"),
        };
        if self.chance(0.02) {
            e.to_uppercase()
        } else {
            e
        }
    }

    fn phone(&mut self, country: &str) -> Option<String> {
        if self.chance(0.2) {
            return None;
        }
        let n4 = self.rng.random_range(0..10_000);
        let n3 = self.rng.random_range(0..1000);
        let (a, b) = (
            self.rng.random_range(10..100),
            self.rng.random_range(10..100),
        );
        let style = self.rng.random_range(0..3);
        Some(match (country, style) {
            ("US", 0) => format!("(650) 555-{n4:04}"),
            ("US", 1) => format!("+1 415 555 {n4:04}"),
            ("US", _) => format!("212.555.{n4:04}"),
            ("GB", 0) => format!("+44 20 7946 {n4:04}"),
            ("GB", _) => format!("07700 900{n3:03}"),
            ("DE", 0) => format!("+49 30 {n3:03}{a}"),
            ("DE", 1) => format!("030 {n3:03}{b}"),
            ("DE", _) => format!("+49 151 {n4:04}{a}{b}"),
            (_, 0) => format!("+33 1 23 45 {a} {b}"),
            _ => format!("06 12 34 {a} {b}"),
        })
    }

    fn consent(&mut self, p_true: f64, p_false: f64) -> Option<bool> {
        let r: f64 = self.rng.random();
        if r < p_true {
            Some(true)
        } else if r < p_true + p_false {
            Some(false)
        } else {
            None
        }
    }

    /// A landing on `dev` at `ts_ms`; counting or direct.
    fn touch(&mut self, first_visit: bool, dev: &Device, anon: &str, ts_ms: i64) -> Tc {
        let w = if first_visit {
            &FIRST_VISIT_W
        } else {
            &LATER_VISIT_W
        };
        let kind = KINDS[self.weighted(w)];
        let mut page = self.pick(&WWW_PAGES);
        let mut t = Tc {
            anon: anon.to_string(),
            ts_us: ts_ms * 1000 + self.rng.random_range(0..1000),
            fbp: dev.fbp.clone(),
            ip: Some(dev.ip.clone()),
            ua: Some(dev.ua.to_string()),
            ..Tc::default()
        };
        let mut query = String::new();
        let s = |x: &str| Some(x.to_string());
        match kind {
            Kind::Direct => {
                if !first_visit && self.chance(0.3) {
                    page = self.pick(&APP_PAGES);
                }
                if self.chance(0.03) {
                    // an empty click id is no click id
                    t.gclid = s("");
                }
            }
            Kind::DirectInternal => {
                if self.chance(0.5) {
                    page = self.pick(&APP_PAGES);
                    t.referrer = s("https://www.example.com/blog");
                } else {
                    t.referrer = s("https://app.example.com/dashboard");
                }
            }
            Kind::Organic => {
                t.referrer = s(self.pick(&[
                    "https://www.google.com/",
                    "https://www.google.com/",
                    "https://www.google.com/",
                    "https://www.bing.com/",
                    "https://duckduckgo.com/",
                ]));
            }
            Kind::Referral => {
                let r = match self.rng.random_range(0..4) {
                    0 => format!(
                        "https://news.ycombinator.com/item?id={}",
                        self.rng.random_range(1..45_000_000)
                    ),
                    1 => "https://www.reddit.com/r/dataengineering/".to_string(),
                    2 => "https://github.com/lakestitch/lakestitch".to_string(),
                    _ => "https://dev.to/datafolks/stitching-identities".to_string(),
                };
                t.referrer = Some(r);
            }
            Kind::OrganicSocial => {
                t.referrer = s(self.pick(&[
                    "https://l.facebook.com/",
                    "https://t.co/",
                    "https://www.linkedin.com/feed/",
                ]));
            }
            Kind::SocialUtm => {
                t.utm_source = s("twitter");
                t.utm_medium = s("social");
                t.utm_campaign = s("launch_thread");
                t.referrer = s("https://t.co/");
                query = "utm_source=twitter&utm_medium=social&utm_campaign=launch_thread".into();
            }
            Kind::Google => {
                let campaign = self.pick(&["brand_search", "generic_search", "competitor_search"]);
                let term = self.pick(&[
                    "lakestitch",
                    "identity resolution",
                    "customer data platform",
                ]);
                let (key, id) = if dev.phone && self.chance(0.25) {
                    if self.chance(0.8) {
                        ("gbraid", format!("0AAAAA{}", self.hex()))
                    } else {
                        ("wbraid", format!("CjgKEAjw{}", self.hex()))
                    }
                } else {
                    ("gclid", format!("EAIaIQobChMI{}{}", self.hex(), self.hex()))
                };
                match key {
                    "gbraid" => t.gbraid = Some(id.clone()),
                    "wbraid" => t.wbraid = Some(id.clone()),
                    _ => t.gclid = Some(id.clone()),
                }
                t.utm_source = s("google");
                t.utm_medium = s("cpc");
                t.utm_campaign = s(campaign);
                t.utm_term = s(term);
                if self.chance(0.7) {
                    t.referrer = s("https://www.google.com/");
                }
                query =
                    format!("utm_source=google&utm_medium=cpc&utm_campaign={campaign}&{key}={id}");
            }
            Kind::Meta => {
                let fbclid = format!("IwAR{}{}", self.hex(), self.hex());
                let insta = self.chance(0.3);
                let source = if insta { "instagram" } else { "facebook" };
                let campaign =
                    self.pick(&["retargeting_q3", "lookalike_signup", "prospecting_video"]);
                t.fbclid = Some(fbclid.clone());
                t.utm_source = s(source);
                t.utm_medium = s("paid_social");
                t.utm_campaign = s(campaign);
                t.utm_content = s(self.pick(&["video_a", "carousel_b", "static_c"]));
                if self.chance(0.7) {
                    t.fbc = Some(format!("fb.1.{ts_ms}.{fbclid}"));
                }
                if self.chance(0.8) {
                    t.referrer = s(if insta {
                        "https://l.instagram.com/"
                    } else {
                        "https://l.facebook.com/"
                    });
                }
                query = format!(
                    "utm_source={source}&utm_medium=paid_social&utm_campaign={campaign}&fbclid={fbclid}"
                );
            }
            Kind::Email => {
                let campaign = self.pick(&["weekly_digest", "product_update", "onboarding_day3"]);
                t.utm_source = s("newsletter");
                t.utm_medium = s("email");
                t.utm_campaign = s(campaign);
                query = format!("utm_source=newsletter&utm_medium=email&utm_campaign={campaign}");
            }
            Kind::TikTok => {
                let id = format!("E.C.P.{}", self.hex());
                t.ttclid = Some(id.clone());
                t.utm_source = s("tiktok");
                t.utm_medium = s("paid_social");
                t.utm_campaign = s("spring_launch");
                query = format!(
                    "utm_source=tiktok&utm_medium=paid_social&utm_campaign=spring_launch&ttclid={id}"
                );
            }
            Kind::Bing => {
                let id = format!("{}{}", self.hex(), self.hex());
                t.msclkid = Some(id.clone());
                t.utm_source = s("bing");
                t.utm_medium = s("cpc");
                t.utm_campaign = s("brand_search");
                t.referrer = s("https://www.bing.com/");
                query = format!(
                    "utm_source=bing&utm_medium=cpc&utm_campaign=brand_search&msclkid={id}"
                );
            }
            Kind::LinkedIn => {
                let id = format!("li_{}", self.hex());
                t.li_fat_id = Some(id.clone());
                t.utm_source = s("linkedin");
                t.utm_medium = s("paid_social");
                t.utm_campaign = s("abm_q4");
                query = format!(
                    "utm_source=linkedin&utm_medium=paid_social&utm_campaign=abm_q4&li_fat_id={id}"
                );
            }
            Kind::Partner => {
                page = "https://www.example.com/partners";
                t.partner_ref = Some(format!("pr_{}", self.rng.random_range(100..1000)));
            }
        }
        if kind != Kind::Partner && kind != Kind::Direct && self.chance(0.01) {
            t.partner_ref = Some(format!("pr_{}", self.rng.random_range(100..1000)));
        }
        t.landing = Some(if query.is_empty() {
            page.to_string()
        } else {
            format!("{page}?{query}")
        });
        t
    }

    fn page_props(&mut self, logged_in: bool) -> Option<String> {
        if self.chance(0.05) {
            return None;
        }
        let url = if logged_in && self.chance(0.8) {
            self.pick(&APP_PAGES)
        } else {
            self.pick(&WWW_PAGES)
        };
        Some(format!("{{\"page_url\":\"{url}\"}}"))
    }

    /// One random human: devices, visits, events, user row, truth.
    fn human(&mut self, i: usize) {
        let hid = format!("h_{i}");
        let n_dev = 1 + self.weighted(&[45, 40, 15]);
        let first_phone = self.chance(0.55);
        let mut devs = Vec::with_capacity(n_dev);
        for d in 0..n_dev {
            let phone = match d {
                0 => first_phone,
                1 => !first_phone,
                _ => self.chance(0.5),
            };
            devs.push(self.new_device(phone));
        }

        // account
        let signs_up = self.chance(0.9);
        let first = self.pick(&FIRST_NAMES);
        let last = self.pick(&LAST_NAMES);
        let uid = signs_up.then(|| {
            let u = format!("u_{}", self.next_user);
            self.next_user += 1;
            u
        });
        let email = if signs_up {
            Some(self.email(i, first, last))
        } else {
            None
        };
        let org: Option<String> = if signs_up && self.n_orgs > 0 && self.chance(0.3) {
            let o = format!("org_{}", self.rng.random_range(1..=self.n_orgs));
            self.sink
                .memberships
                .push((uid.clone().unwrap_or_default(), o.clone()));
            Some(o)
        } else {
            None
        };
        let legacy = self.chance(0.4);
        let tv: Option<i32> = if !legacy {
            Some(2)
        } else if self.chance(0.6) {
            None
        } else {
            Some(1)
        };
        let mut purchases_left = if signs_up {
            self.weighted(&[70, 22, 8])
        } else {
            0
        };

        // visits
        let scale = self.visits_scale;
        let n_sess = self.rng.random_range(2 * scale..=6 * scale);
        let latest = self.we - 3 * MS_PER_HOUR;
        let start0 = self.rng.random_range(self.ws..=latest);
        let span_end = self.rng.random_range(start0..=latest);
        let mut starts: Vec<i64> = (0..n_sess)
            .map(|k| {
                if k == 0 {
                    start0
                } else {
                    self.rng.random_range(start0..=span_end)
                }
            })
            .collect();
        starts.sort_unstable();
        let signup_k = self.rng.random_range(0..n_sess.min(3));

        let mut cursor = self.ws;
        let mut first_touch: Option<i64> = None;
        let mut created_at: Option<i64> = None;
        for (k, &planned) in starts.iter().enumerate() {
            let d = if k == 0 {
                0
            } else if k == n_sess - 1 && devs.iter().any(|x| !x.used) {
                devs.iter().position(|x| !x.used).unwrap_or(0)
            } else {
                self.rng.random_range(0..n_dev)
            };
            let mut t = planned.max(cursor);

            // cookie wipe, or an SDK id aliased to the previous (server-set) id
            let mut alias_of: Option<String> = None;
            if devs[d].used && self.chance(0.06) {
                let fresh = self.uid("a_");
                let old = std::mem::replace(&mut devs[d].cookie, fresh);
                devs[d].fbp = None;
                if self.chance(0.3) {
                    alias_of = Some(old);
                } else {
                    devs[d].logged_in = false;
                }
            }
            devs[d].used = true;
            if devs[d].fbp_on && devs[d].fbp.is_none() {
                let digits = self.rng.random_range(1_000_000_000u64..10_000_000_000);
                devs[d].fbp = Some(format!("fb.1.{t}.{digits}"));
            }
            let cookie = devs[d].cookie.clone();
            let ip = devs[d].ip.clone();
            let ua = devs[d].ua;
            let sid = self.uid("s_");

            // the landing
            let touch_anon = alias_of.as_deref().unwrap_or(&cookie);
            let mut tc = self.touch(k == 0, &devs[d], touch_anon, t);
            if self.chance(0.002) {
                tc.anon = self.pick(&JUNK_IDS).to_string();
            }
            if tc.counts() && !JUNK_IDS.contains(&tc.anon.as_str()) {
                first_touch = Some(first_touch.map_or(tc.ts_us, |f| f.min(tc.ts_us)));
            }
            self.sink.touch(&tc);

            let base = Ev {
                anon: Some(&cookie),
                tv,
                session: Some(&sid),
                ip: Some(&ip),
                ua: Some(ua),
                ..Ev::default()
            };
            let mut first_in_session = true;

            if let Some(old) = alias_of.as_deref() {
                let id = self.uid("e_");
                let (ts, seq) = self.stamp(&mut devs[d], &mut t, false);
                let e = Ev {
                    id: &id,
                    name: "$create_alias",
                    ts,
                    seq,
                    prev: Some(old),
                    ..base
                };
                self.emit(&e, &hid, false);
                first_in_session = false;
            }

            let is_signup = signs_up && k == signup_k;
            let may_signin = signs_up && k > signup_k && !devs[d].logged_in;
            let n_pv = self.rng.random_range(1..=4usize);
            let pv_before = if is_signup || may_signin {
                self.rng.random_range(0..=n_pv.min(2))
            } else {
                n_pv
            };
            for j in 0..n_pv {
                if j == pv_before {
                    let name = if is_signup {
                        Some(("signup_completed", "{\"method\":\"email\"}"))
                    } else if may_signin && self.chance(0.8) {
                        Some(("signed_in", "{\"method\":\"password\"}"))
                    } else {
                        None
                    };
                    if let Some((name, props)) = name {
                        let id = self.uid("e_");
                        let (ts, seq) = self.stamp(&mut devs[d], &mut t, false);
                        let e = Ev {
                            id: &id,
                            name,
                            ts,
                            seq,
                            user: uid.as_deref(),
                            props: Some(props),
                            ..base
                        };
                        self.emit(&e, &hid, false);
                        if is_signup {
                            created_at = Some(ts);
                        }
                        devs[d].logged_in = true;
                        first_in_session = false;
                    }
                }
                let logged = devs[d].logged_in;
                let id = self.uid("e_");
                let props = self.page_props(logged);
                let (ts, seq) = self.stamp(&mut devs[d], &mut t, !first_in_session);
                let e = Ev {
                    id: &id,
                    name: "page_viewed",
                    ts,
                    seq,
                    user: if logged { uid.as_deref() } else { None },
                    props: props.as_deref(),
                    ..base
                };
                self.emit(&e, &hid, true);
                first_in_session = false;
            }
            if is_signup && pv_before >= n_pv {
                // signup after the last page view
                let id = self.uid("e_");
                let (ts, seq) = self.stamp(&mut devs[d], &mut t, false);
                let e = Ev {
                    id: &id,
                    name: "signup_completed",
                    ts,
                    seq,
                    user: uid.as_deref(),
                    props: Some("{\"method\":\"google\"}"),
                    ..base
                };
                self.emit(&e, &hid, false);
                created_at = Some(ts);
                devs[d].logged_in = true;
            }

            let mut server_end = t;
            if devs[d].logged_in {
                let user = uid.as_deref();
                // product events; legacy payloads of org members carry the org id in user_id
                let (p_user, p_org) = match (&org, legacy) {
                    (Some(o), true) => (Some(o.as_str()), None),
                    (Some(o), false) => (user, Some(o.clone())),
                    (None, _) => (user, None),
                };
                let p_org = match p_org {
                    Some(o) if self.n_orgs > 1 && self.chance(0.03) => {
                        // an actor who is not a member of this org
                        let n: usize = o[4..].parse().unwrap_or(1);
                        Some(format!("org_{}", n % self.n_orgs + 1))
                    }
                    o => o,
                };
                if self.chance(0.35) {
                    let id = self.uid("e_");
                    let project = self.uid("p_");
                    let props = format!("{{\"project_id\":\"{project}\"}}");
                    let (ts, seq) = self.stamp(&mut devs[d], &mut t, true);
                    let e = Ev {
                        id: &id,
                        name: "project_created",
                        ts,
                        seq,
                        user: p_user,
                        org: p_org.as_deref(),
                        props: Some(&props),
                        ..base
                    };
                    self.emit(&e, &hid, true);
                }
                if self.chance(0.15) {
                    let id = self.uid("e_");
                    let n = self.rng.random_range(1..=5);
                    let props = format!("{{\"invitee_count\":{n}}}");
                    let (ts, seq) = self.stamp(&mut devs[d], &mut t, true);
                    let e = Ev {
                        id: &id,
                        name: "invite_sent",
                        ts,
                        seq,
                        user,
                        org: p_org.as_deref(),
                        props: Some(&props),
                        ..base
                    };
                    self.emit(&e, &hid, true);
                }
                if org.is_some() && legacy && self.chance(0.1) {
                    let id = self.uid("e_");
                    let (ts, seq) = self.stamp(&mut devs[d], &mut t, true);
                    let e = Ev {
                        id: &id,
                        name: "invoice_paid",
                        ts,
                        seq,
                        user: p_user,
                        props: Some("{\"plan\":\"team\"}"),
                        ..base
                    };
                    self.emit(&e, &hid, false);
                }
                if purchases_left > 0 && (k == n_sess - 1 || self.chance(0.5)) {
                    purchases_left -= 1;
                    let id = self.uid("e_");
                    let order = self.uid("ord_");
                    let value = self.pick(&[19.0, 49.0, 99.0]);
                    let currency = if self.chance(0.7) { "USD" } else { "EUR" };
                    let server = self.chance(0.25);
                    let (p_own, p_other) = if server { (0.6, 0.25) } else { (0.4, 0.1) };
                    let r: f64 = self.rng.random();
                    let receipt = if r < p_own {
                        email.as_ref().map(|e| {
                            if self.chance(0.3) {
                                e.to_lowercase()
                            } else {
                                e.clone()
                            }
                        })
                    } else if r < p_own + p_other {
                        Some(match self.rng.random_range(0..3) {
                            0 => format!("billing@{last}{i}.example"),
                            1 => format!("{first}.{last}{i}@company.example"),
                            _ => format!("accounts+{i}@{last}-co.example"),
                        })
                    } else {
                        None
                    };
                    if server {
                        // the payment provider's webhook, seen by the backend only
                        let ts = t + self.rng.random_range(1_000..30_000);
                        server_end = server_end.max(ts);
                        let e = Ev {
                            id: &id,
                            name: "purchase_completed",
                            ts,
                            user,
                            tv: Some(2),
                            value: Some(value),
                            currency: Some(currency),
                            order: Some(&order),
                            email: receipt.as_deref(),
                            props: Some("{\"source\":\"stripe_webhook\",\"plan\":\"pro\"}"),
                            ..Ev::default()
                        };
                        self.emit(&e, &hid, false);
                    } else {
                        let (ts, seq) = self.stamp(&mut devs[d], &mut t, false);
                        let e = Ev {
                            id: &id,
                            name: "purchase_completed",
                            ts,
                            seq,
                            user,
                            value: Some(value),
                            currency: Some(currency),
                            order: Some(&order),
                            email: receipt.as_deref(),
                            props: Some(
                                "{\"page_url\":\"https://app.example.com/checkout/success\",\"plan\":\"pro\"}",
                            ),
                            ..base
                        };
                        self.emit(&e, &hid, false);
                    }
                    if let (Some(o), false) = (&org, legacy) {
                        if self.chance(0.3) {
                            let id = self.uid("e_");
                            let ts = t + self.rng.random_range(30_000..60_000);
                            server_end = server_end.max(ts);
                            let e = Ev {
                                id: &id,
                                name: "invoice_paid",
                                ts,
                                user,
                                org: Some(o),
                                tv: Some(2),
                                props: Some("{\"plan\":\"team\"}"),
                                ..Ev::default()
                            };
                            self.emit(&e, &hid, false);
                        }
                    }
                }
                if self.chance(0.1) {
                    let id = self.uid("e_");
                    let (ts, seq) = self.stamp(&mut devs[d], &mut t, false);
                    let e = Ev {
                        id: &id,
                        name: "signed_out",
                        ts,
                        seq,
                        user,
                        ..base
                    };
                    self.emit(&e, &hid, false);
                    devs[d].logged_in = false;
                }
            }
            cursor = t.max(server_end) + 1000;
        }

        if let (Some(u), Some(em)) = (uid.as_deref(), email.as_deref()) {
            let country = self.pick(&["US", "US", "US", "US", "US", "GB", "GB", "DE", "DE", "FR"]);
            let phone = self.phone(country);
            let ad_user_data = self.consent(0.85, 0.07);
            let ad_personalization = self.consent(0.8, 0.1);
            self.sink.user(&UserRow {
                user_id: u,
                email: Some(em),
                phone: phone.as_deref(),
                country,
                created_at,
                ad_user_data,
                ad_personalization,
            });
        }
        self.sink.human(&hid, uid.as_deref(), first_touch);
    }
}

// ---------------------------------------------------------------------------------------------
// Stories
// ---------------------------------------------------------------------------------------------

/// The stories span D-10 .. D; shorter windows squeeze them (order and ties preserved).
const STORY_SPAN_DAYS: i64 = 11;

struct StoryClock {
    /// epoch ms of `end_date` 00:00 UTC
    d0: i64,
    ws: i64,
    window: i64,
    compress: bool,
}

impl StoryClock {
    /// `back` days before end_date at hh:mm:ss.ms, in epoch ms.
    fn at(&self, back: i64, h: i64, m: i64, s: i64, ms: i64) -> i64 {
        let raw = self.d0 - back * MS_PER_DAY + h * MS_PER_HOUR + m * 60_000 + s * 1000 + ms;
        if !self.compress {
            return raw;
        }
        let span_start = self.d0 - (STORY_SPAN_DAYS - 1) * MS_PER_DAY;
        let rel = (raw - span_start) as i128;
        self.ws + (rel * self.window as i128 / (STORY_SPAN_DAYS * MS_PER_DAY) as i128) as i64
    }
}

/// A story's browser.
#[derive(Clone, Copy)]
struct SDev {
    anon: &'static str,
    ip: &'static str,
    ua: &'static str,
}

impl SDev {
    fn ev(&self, id: &'static str, name: &'static str, ts: i64) -> Ev<'static> {
        Ev {
            id,
            name,
            ts,
            anon: Some(self.anon),
            ip: Some(self.ip),
            ua: Some(self.ua),
            tv: Some(2),
            ..Ev::default()
        }
    }

    fn pv(&self, id: &'static str, ts: i64, url: &'static str) -> Ev<'static> {
        Ev {
            props: Some(url),
            ..self.ev(id, "page_viewed", ts)
        }
    }

    /// A direct visit (no referrer) to `landing` at `ts_ms` (+`us` microseconds).
    fn touch(&self, ts_ms: i64, us: i64, landing: &str) -> Tc {
        Tc {
            anon: self.anon.to_string(),
            ts_us: ts_ms * 1000 + us,
            landing: Some(landing.to_string()),
            ip: Some(self.ip.to_string()),
            ua: Some(self.ua.to_string()),
            ..Tc::default()
        }
    }
}

const IPHONE: &str = PHONE_UAS[0];
const ANDROID: &str = PHONE_UAS[1];
const MAC: &str = LAPTOP_UAS[0];
const WINDOWS: &str = LAPTOP_UAS[1];

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

struct StoryWriter<'a> {
    sink: &'a mut Sink,
    /// (human, user, first counting touch)
    humans: Vec<(&'static str, Option<&'static str>, Option<i64>)>,
}

impl StoryWriter<'_> {
    fn human(&mut self, h: &'static str, u: Option<&'static str>) {
        self.humans.push((h, u, None));
    }

    fn touch(&mut self, h: &str, t: Tc) {
        if t.counts() && !JUNK_IDS.contains(&t.anon.as_str()) {
            if let Some(entry) = self.humans.iter_mut().find(|x| x.0 == h) {
                entry.2 = Some(entry.2.map_or(t.ts_us, |f| f.min(t.ts_us)));
            }
        }
        self.sink.touch(&t);
    }

    fn ev(&mut self, h: &str, e: Ev) {
        self.sink.event(&e, h);
    }

    fn user(&mut self, u: UserRow) {
        self.sink.user(&u);
    }
}

const PV_HOME: &str = "{\"page_url\":\"https://www.example.com/\"}";
const PV_PRICING: &str = "{\"page_url\":\"https://www.example.com/pricing\"}";
const PV_BLOG: &str = "{\"page_url\":\"https://www.example.com/blog/identity-stitching\"}";
const PV_DASH: &str = "{\"page_url\":\"https://app.example.com/dashboard\"}";
const PV_SIGNUP: &str = "{\"page_url\":\"https://app.example.com/signup\"}";
const PV_CHECKOUT: &str =
    "{\"page_url\":\"https://app.example.com/checkout/success\",\"plan\":\"pro\"}";

fn consented(
    user_id: &'static str,
    email: &'static str,
    phone: Option<&'static str>,
    country: &'static str,
    created_at: i64,
) -> UserRow<'static> {
    UserRow {
        user_id,
        email: Some(email),
        phone,
        country,
        created_at: Some(created_at),
        ad_user_data: Some(true),
        ad_personalization: Some(true),
    }
}

/// The hand-made stories (see the module docs of the CLI and the tests below).
fn stories(sink: &mut Sink, c: &StoryClock) {
    let mut w = StoryWriter {
        sink,
        humans: Vec::new(),
    };
    for (h, u) in [
        ("h_ava", Some("u_ava")),
        ("h_ben", Some("u_ben")),
        ("h_cy", Some("u_cy")),
        ("h_dee", Some("u_dee")),
        ("h_eli", Some("u_eli")),
        ("h_fay", Some("u_fay")),
        ("h_gus", Some("u_gus")),
        ("h_hal", Some("u_hal")),
        ("h_lea", Some("u_lea")),
        ("h_max", Some("u_max")),
        ("h_ivy", Some("u_ivy")),
        ("h_jon", Some("u_jon")),
        ("h_kim", Some("u_kim")),
        ("h_zed", None),
    ] {
        w.human(h, u);
    }

    // 1. Ava: paid click on the phone, signup on the laptop, sign-in on the phone, purchase.
    let phone = SDev {
        anon: "anon_phone_ava",
        ip: "198.51.100.10",
        ua: IPHONE,
    };
    let laptop = SDev {
        anon: "anon_laptop_ava",
        ip: "203.0.113.20",
        ua: MAC,
    };
    let t = c.at(10, 9, 15, 0, 123);
    w.touch(
        "h_ava",
        Tc {
            gclid: s("EAIaIQobChMI_ava_story"),
            utm_source: s("google"),
            utm_medium: s("cpc"),
            utm_campaign: s("brand_search"),
            utm_term: s("lakestitch"),
            referrer: s("https://www.google.com/"),
            fbp: s(&format!("fb.1.{t}.1111111111")),
            ..phone.touch(
                t,
                456,
                "https://www.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=brand_search&gclid=EAIaIQobChMI_ava_story",
            )
        },
    );
    w.ev(
        "h_ava",
        phone.pv("ev_ava_01", c.at(10, 9, 15, 1, 0), PV_HOME),
    );
    w.ev(
        "h_ava",
        phone.pv("ev_ava_02", c.at(10, 9, 16, 30, 0), PV_PRICING),
    );
    w.touch(
        "h_ava",
        laptop.touch(c.at(6, 20, 0, 0, 0), 0, "https://www.example.com/pricing"),
    );
    w.ev(
        "h_ava",
        laptop.pv("ev_ava_03", c.at(6, 20, 0, 2, 0), PV_PRICING),
    );
    let ava_signup = c.at(6, 20, 5, 0, 0);
    w.ev(
        "h_ava",
        Ev {
            user: Some("u_ava"),
            props: Some(PV_SIGNUP),
            ..laptop.ev("ev_ava_04", "signup_completed", ava_signup)
        },
    );
    w.ev(
        "h_ava",
        Ev {
            user: Some("u_ava"),
            props: Some("{\"project_id\":\"p_ava_1\"}"),
            ..laptop.ev("ev_ava_05", "project_created", c.at(6, 20, 10, 0, 0))
        },
    );
    // a direct visit on the phone: overwrites nothing
    w.touch(
        "h_ava",
        phone.touch(c.at(3, 7, 59, 59, 0), 0, "https://app.example.com/login"),
    );
    w.ev(
        "h_ava",
        Ev {
            user: Some("u_ava"),
            ..phone.ev("ev_ava_06", "signed_in", c.at(3, 8, 0, 10, 0))
        },
    );
    w.ev(
        "h_ava",
        Ev {
            user: Some("u_ava"),
            ..phone.pv("ev_ava_07", c.at(3, 8, 1, 0, 0), PV_DASH)
        },
    );
    w.ev(
        "h_ava",
        Ev {
            user: Some("u_ava"),
            value: Some(49.0),
            currency: Some("USD"),
            order: Some("ord_ava_1"),
            email: Some("ava.receipts@example.org"),
            props: Some(PV_CHECKOUT),
            ..laptop.ev("ev_ava_08", "purchase_completed", c.at(2, 19, 30, 0, 0))
        },
    );
    w.user(consented(
        "u_ava",
        "Ava.Stone+ads@Gmail.com",
        Some("(650) 555-0101"),
        "US",
        ava_signup,
    ));

    // 2. A shared laptop, no logout: Ben, then Cy.
    let ben_phone = SDev {
        anon: "anon_phone_ben",
        ip: "198.51.100.21",
        ua: ANDROID,
    };
    let cy_phone = SDev {
        anon: "anon_phone_cy",
        ip: "198.51.100.22",
        ua: IPHONE,
    };
    let shared = SDev {
        anon: "anon_shared_laptop",
        ip: "203.0.113.30",
        ua: WINDOWS,
    };
    w.touch(
        "h_ben",
        Tc {
            referrer: s("https://www.google.com/"),
            ..ben_phone.touch(
                c.at(9, 12, 0, 0, 0),
                0,
                "https://www.example.com/blog/identity-stitching",
            )
        },
    );
    w.ev(
        "h_ben",
        ben_phone.pv("ev_ben_01", c.at(9, 12, 0, 3, 0), PV_BLOG),
    );
    let ben_signup = c.at(9, 12, 5, 0, 0);
    w.ev(
        "h_ben",
        Ev {
            user: Some("u_ben"),
            ..ben_phone.ev("ev_ben_02", "signup_completed", ben_signup)
        },
    );
    w.touch(
        "h_cy",
        Tc {
            utm_source: s("newsletter"),
            utm_medium: s("email"),
            utm_campaign: s("weekly_digest"),
            ..cy_phone.touch(
                c.at(8, 18, 0, 0, 0),
                0,
                "https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=weekly_digest",
            )
        },
    );
    w.ev(
        "h_cy",
        cy_phone.pv("ev_cy_01", c.at(8, 18, 0, 4, 0), PV_HOME),
    );
    let cy_signup = c.at(8, 18, 3, 0, 0);
    w.ev(
        "h_cy",
        Ev {
            user: Some("u_cy"),
            ..cy_phone.ev("ev_cy_02", "signup_completed", cy_signup)
        },
    );
    w.touch(
        "h_ben",
        Tc {
            referrer: s("https://news.ycombinator.com/item?id=1"),
            ..shared.touch(c.at(7, 10, 0, 0, 0), 0, "https://www.example.com/")
        },
    );
    w.ev(
        "h_ben",
        shared.pv("ev_ben_03", c.at(7, 10, 0, 5, 0), PV_HOME),
    );
    w.ev(
        "h_ben",
        Ev {
            user: Some("u_ben"),
            ..shared.ev("ev_ben_04", "signed_in", c.at(7, 10, 1, 0, 0))
        },
    );
    w.ev(
        "h_ben",
        Ev {
            user: Some("u_ben"),
            ..shared.pv("ev_ben_05", c.at(7, 10, 2, 0, 0), PV_DASH)
        },
    );
    w.ev(
        "h_ben",
        Ev {
            user: Some("u_ben"),
            props: Some("{\"project_id\":\"p_ben_1\"}"),
            ..shared.ev("ev_ben_06", "project_created", c.at(7, 10, 5, 0, 0))
        },
    );
    w.ev(
        "h_cy",
        Ev {
            user: Some("u_cy"),
            ..shared.ev("ev_cy_03", "signed_in", c.at(5, 21, 0, 0, 0))
        },
    );
    w.ev(
        "h_cy",
        Ev {
            user: Some("u_cy"),
            ..shared.pv("ev_cy_04", c.at(5, 21, 1, 0, 0), PV_DASH)
        },
    );
    w.ev(
        "h_cy",
        Ev {
            user: Some("u_cy"),
            props: Some("{\"invitee_count\":2}"),
            ..shared.ev("ev_cy_05", "invite_sent", c.at(5, 21, 3, 0, 0))
        },
    );
    w.user(UserRow {
        ad_user_data: None,
        ad_personalization: None,
        ..consented(
            "u_ben",
            "ben.okafor@example.org",
            Some("+1 415 555 0142"),
            "US",
            ben_signup,
        )
    });
    w.user(UserRow {
        ad_personalization: Some(false),
        ..consented(
            "u_cy",
            "cy.martin@gmail.com",
            Some("07700 900123"),
            "GB",
            cy_signup,
        )
    });

    // 3. A family PC: Dee signs in, logs out; Eli browses anonymously, then signs in.
    let dee_phone = SDev {
        anon: "anon_phone_dee",
        ip: "198.51.100.31",
        ua: IPHONE,
    };
    let eli_phone = SDev {
        anon: "anon_phone_eli",
        ip: "198.51.100.32",
        ua: ANDROID,
    };
    let family = SDev {
        anon: "anon_family_pc",
        ip: "203.0.113.40",
        ua: WINDOWS,
    };
    w.touch(
        "h_dee",
        dee_phone.touch(c.at(9, 8, 0, 0, 0), 0, "https://www.example.com/"),
    );
    w.ev(
        "h_dee",
        dee_phone.pv("ev_dee_01", c.at(9, 8, 0, 2, 0), PV_HOME),
    );
    let dee_signup = c.at(9, 8, 4, 0, 0);
    w.ev(
        "h_dee",
        Ev {
            user: Some("u_dee"),
            ..dee_phone.ev("ev_dee_02", "signup_completed", dee_signup)
        },
    );
    w.touch(
        "h_eli",
        Tc {
            referrer: s("https://l.facebook.com/"),
            ..eli_phone.touch(c.at(9, 20, 0, 0, 0), 0, "https://www.example.com/")
        },
    );
    w.ev(
        "h_eli",
        eli_phone.pv("ev_eli_01", c.at(9, 20, 0, 2, 0), PV_HOME),
    );
    let eli_signup = c.at(9, 20, 4, 0, 0);
    w.ev(
        "h_eli",
        Ev {
            user: Some("u_eli"),
            ..eli_phone.ev("ev_eli_02", "signup_completed", eli_signup)
        },
    );
    w.ev(
        "h_dee",
        Ev {
            user: Some("u_dee"),
            ..family.ev("ev_dee_03", "signed_in", c.at(6, 19, 0, 0, 0))
        },
    );
    w.ev(
        "h_dee",
        Ev {
            user: Some("u_dee"),
            ..family.pv("ev_dee_04", c.at(6, 19, 2, 0, 0), PV_DASH)
        },
    );
    w.ev(
        "h_dee",
        Ev {
            user: Some("u_dee"),
            ..family.ev("ev_dee_05", "signed_out", c.at(6, 19, 10, 0, 0))
        },
    );
    w.touch(
        "h_eli",
        Tc {
            msclkid: s("msclkid_eli_story"),
            utm_source: s("bing"),
            utm_medium: s("cpc"),
            utm_campaign: s("brand_search"),
            referrer: s("https://www.bing.com/"),
            ..family.touch(
                c.at(6, 19, 30, 0, 0),
                0,
                "https://www.example.com/pricing?utm_source=bing&utm_medium=cpc&utm_campaign=brand_search&msclkid=msclkid_eli_story",
            )
        },
    );
    w.ev(
        "h_eli",
        family.pv("ev_eli_03", c.at(6, 19, 30, 2, 0), PV_PRICING),
    );
    w.ev(
        "h_eli",
        family.pv("ev_eli_04", c.at(6, 19, 31, 0, 0), PV_HOME),
    );
    w.ev(
        "h_eli",
        Ev {
            user: Some("u_eli"),
            ..family.ev("ev_eli_05", "signed_in", c.at(6, 19, 45, 0, 0))
        },
    );
    w.ev(
        "h_eli",
        Ev {
            user: Some("u_eli"),
            ..family.pv("ev_eli_06", c.at(6, 19, 46, 0, 0), PV_DASH)
        },
    );
    w.user(consented(
        "u_dee",
        "DEE.WONG@example.org",
        None,
        "US",
        dee_signup,
    ));
    w.user(consented(
        "u_eli",
        "eli.novak+news@googlemail.com",
        Some("+49 30 901820"),
        "DE",
        eli_signup,
    ));

    // 4. Fay: a server-set id with the paid click, aliased to the browser SDK's id.
    let srv = SDev {
        anon: "anon_srv_fay",
        ip: "198.51.100.41",
        ua: IPHONE,
    };
    let sdk = SDev {
        anon: "anon_sdk_fay",
        ..srv
    };
    let t = c.at(9, 14, 0, 0, 0);
    w.touch(
        "h_fay",
        Tc {
            fbclid: s("IwAR_fay_story"),
            utm_source: s("facebook"),
            utm_medium: s("paid_social"),
            utm_campaign: s("retargeting_q3"),
            utm_content: s("video_a"),
            referrer: s("https://l.facebook.com/"),
            fbc: s(&format!("fb.1.{t}.IwAR_fay_story")),
            fbp: s(&format!("fb.1.{t}.2222222222")),
            ..srv.touch(
                t,
                0,
                "https://www.example.com/features?utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting_q3&fbclid=IwAR_fay_story",
            )
        },
    );
    w.ev("h_fay", srv.pv("ev_fay_01", c.at(9, 14, 0, 1, 0), PV_HOME));
    w.ev(
        "h_fay",
        Ev {
            prev: Some("anon_srv_fay"),
            ..sdk.ev("ev_fay_02", "$create_alias", c.at(9, 14, 0, 5, 0))
        },
    );
    w.ev(
        "h_fay",
        sdk.pv("ev_fay_03", c.at(9, 14, 1, 0, 0), PV_PRICING),
    );
    let fay_signup = c.at(7, 11, 0, 0, 0);
    w.ev(
        "h_fay",
        Ev {
            user: Some("u_fay"),
            ..sdk.ev("ev_fay_04", "signup_completed", fay_signup)
        },
    );
    w.ev(
        "h_fay",
        Ev {
            user: Some("u_fay"),
            value: Some(99.0),
            currency: Some("EUR"),
            order: Some("ord_fay_1"),
            props: Some(PV_CHECKOUT),
            ..sdk.ev("ev_fay_05", "purchase_completed", c.at(4, 11, 30, 0, 0))
        },
    );
    w.user(consented(
        "u_fay",
        "fay.dubois@example.org",
        Some("06 12 34 56 78"),
        "FR",
        fay_signup,
    ));

    // 5. Legacy org id in user_id: Gus and Hal of org_acme must stay two people.
    w.sink.orgs.push("org_acme".to_string());
    w.sink.orgs.push("org_globex".to_string());
    w.sink
        .memberships
        .push(("u_gus".to_string(), "org_acme".to_string()));
    w.sink
        .memberships
        .push(("u_hal".to_string(), "org_acme".to_string()));
    let gus = SDev {
        anon: "anon_gus",
        ip: "203.0.113.50",
        ua: MAC,
    };
    let gus_phone = SDev {
        anon: "anon_gus_phone",
        ip: "198.51.100.51",
        ua: IPHONE,
    };
    let hal = SDev {
        anon: "anon_hal",
        ip: "203.0.113.51",
        ua: WINDOWS,
    };
    let hal_phone = SDev {
        anon: "anon_hal_phone",
        ip: "198.51.100.52",
        ua: ANDROID,
    };
    w.touch(
        "h_gus",
        Tc {
            li_fat_id: s("li_gus_story"),
            utm_source: s("linkedin"),
            utm_medium: s("paid_social"),
            utm_campaign: s("abm_q4"),
            referrer: s("https://www.linkedin.com/"),
            ..gus.touch(
                c.at(8, 9, 0, 0, 0),
                0,
                "https://www.example.com/?utm_source=linkedin&utm_medium=paid_social&utm_campaign=abm_q4&li_fat_id=li_gus_story",
            )
        },
    );
    w.ev(
        "h_gus",
        Ev {
            tv: Some(1),
            ..gus.pv("ev_gus_01", c.at(8, 9, 0, 3, 0), PV_HOME)
        },
    );
    let gus_signup = c.at(8, 9, 5, 0, 0);
    w.ev(
        "h_gus",
        Ev {
            user: Some("u_gus"),
            tv: Some(1),
            ..gus.ev("ev_gus_02", "signup_completed", gus_signup)
        },
    );
    w.ev(
        "h_gus",
        Ev {
            user: Some("org_acme"),
            tv: Some(1),
            props: Some("{\"project_id\":\"p_acme_1\"}"),
            ..gus.ev("ev_gus_03", "project_created", c.at(8, 9, 10, 0, 0))
        },
    );
    w.touch(
        "h_hal",
        hal.touch(c.at(8, 15, 0, 0, 0), 0, "https://app.example.com/login"),
    );
    w.ev(
        "h_hal",
        Ev {
            user: Some("org_acme"),
            tv: None,
            props: Some("{\"project_id\":\"p_acme_2\"}"),
            ..hal.ev("ev_hal_01", "project_created", c.at(8, 15, 1, 0, 0))
        },
    );
    let hal_signup = c.at(8, 15, 5, 0, 0);
    w.ev(
        "h_hal",
        Ev {
            user: Some("u_hal"),
            tv: Some(1),
            ..hal.ev("ev_hal_02", "signup_completed", hal_signup)
        },
    );
    w.ev(
        "h_hal",
        Ev {
            user: Some("org_acme"),
            tv: Some(1),
            props: Some("{\"plan\":\"team\"}"),
            ..hal.ev("ev_hal_03", "invoice_paid", c.at(6, 9, 0, 0, 0))
        },
    );
    w.ev(
        "h_gus",
        Ev {
            user: Some("org_acme"),
            tv: None,
            props: Some("{\"plan\":\"team\"}"),
            ..gus.ev("ev_gus_04", "invoice_paid", c.at(5, 10, 0, 0, 0))
        },
    );
    w.ev(
        "h_gus",
        Ev {
            user: Some("u_gus"),
            org: Some("org_acme"),
            props: Some("{\"project_id\":\"p_acme_3\"}"),
            ..gus.ev("ev_gus_05", "project_created", c.at(4, 9, 0, 0, 0))
        },
    );
    w.ev(
        "h_hal",
        Ev {
            user: Some("u_hal"),
            org: Some("org_globex"),
            props: Some("{\"project_id\":\"p_globex_1\"}"),
            ..hal.ev("ev_hal_04", "project_created", c.at(4, 10, 0, 0, 0))
        },
    );
    w.ev(
        "h_gus",
        Ev {
            user: Some("u_gus"),
            ..gus_phone.ev("ev_gus_06", "signed_in", c.at(3, 8, 30, 0, 0))
        },
    );
    w.ev(
        "h_hal",
        Ev {
            user: Some("u_hal"),
            ..hal_phone.ev("ev_hal_05", "signed_in", c.at(3, 9, 30, 0, 0))
        },
    );
    w.user(consented(
        "u_gus",
        "gus@acme.example",
        Some("+44 20 7946 0958"),
        "GB",
        gus_signup,
    ));
    w.user(UserRow {
        ad_personalization: None,
        ..consented(
            "u_hal",
            "hal@acme.example",
            Some("030 901820"),
            "DE",
            hal_signup,
        )
    });

    // 6. Duplicated deliveries: an identical copy in the next day's partition, and a
    //    conflicting copy (different properties) in the same partition.
    let lea = SDev {
        anon: "anon_lea",
        ip: "203.0.113.60",
        ua: MAC,
    };
    w.touch(
        "h_lea",
        lea.touch(c.at(3, 10, 0, 0, 0), 0, "https://www.example.com/"),
    );
    let lea_signup = c.at(3, 10, 2, 0, 0);
    w.ev(
        "h_lea",
        Ev {
            user: Some("u_lea"),
            ..lea.ev("ev_lea_01", "signup_completed", lea_signup)
        },
    );
    let purchase = Ev {
        user: Some("u_lea"),
        value: Some(19.0),
        currency: Some("USD"),
        order: Some("ord_lea_1"),
        props: Some(PV_CHECKOUT),
        ..lea.ev(
            "ev_lea_purchase",
            "purchase_completed",
            c.at(2, 16, 0, 0, 0),
        )
    };
    w.ev("h_lea", purchase);
    let day = w.sink.day_of(purchase.ts);
    let next = if day + 1 < w.sink.ndays { day + 1 } else { day };
    w.sink.event_copy(&purchase, next);
    let project = Ev {
        user: Some("u_lea"),
        props: Some("{\"project_id\":\"p_lea_1\"}"),
        ..lea.ev("ev_lea_conflict", "project_created", c.at(2, 16, 5, 0, 0))
    };
    w.ev("h_lea", project);
    w.sink.event_copy(
        &Ev {
            props: Some("{\"project_id\":\"p_lea_1\",\"retry\":true}"),
            ..project
        },
        day,
    );
    w.user(UserRow {
        ad_user_data: Some(false),
        ad_personalization: Some(false),
        ..consented(
            "u_lea",
            "lea.schmidt@gmail.com",
            Some("+49 151 23456789"),
            "DE",
            lea_signup,
        )
    });

    // 7. Same millisecond: seq 1, 2, 3 written in reverse row order; event ids sort the
    //    other way round, so only seq gives the right order (signup, project, logout).
    let max = SDev {
        anon: "anon_max",
        ip: "203.0.113.70",
        ua: MAC,
    };
    w.touch(
        "h_max",
        Tc {
            referrer: s("https://www.bing.com/"),
            ..max.touch(c.at(2, 11, 0, 0, 0), 0, "https://www.example.com/features")
        },
    );
    w.ev("h_max", max.pv("ev_max_0", c.at(2, 11, 0, 0, 100), PV_HOME));
    let tie = c.at(2, 11, 0, 0, 500);
    w.ev(
        "h_max",
        Ev {
            user: Some("u_max"),
            seq: Some(3),
            ..max.ev("ev_max_a", "signed_out", tie)
        },
    );
    w.ev(
        "h_max",
        Ev {
            user: Some("u_max"),
            seq: Some(2),
            props: Some("{\"project_id\":\"p_max_1\"}"),
            ..max.ev("ev_max_b", "project_created", tie)
        },
    );
    w.ev(
        "h_max",
        Ev {
            user: Some("u_max"),
            seq: Some(1),
            ..max.ev("ev_max_c", "signup_completed", tie)
        },
    );
    w.user(consented(
        "u_max",
        "max.power@example.org",
        Some("(212) 555-0199"),
        "US",
        tie,
    ));

    // 8. Junk ids.
    let ivy = SDev {
        anon: "anon_ivy",
        ip: "203.0.113.80",
        ua: WINDOWS,
    };
    w.touch(
        "h_ivy",
        Tc {
            referrer: s("https://duckduckgo.com/"),
            ..ivy.touch(c.at(5, 13, 0, 0, 0), 0, "https://www.example.com/")
        },
    );
    for (id, user, m) in [
        ("ev_ivy_01", "undefined", 0),
        ("ev_ivy_02", "null", 1),
        ("ev_ivy_03", "", 2),
    ] {
        w.ev(
            "h_ivy",
            Ev {
                user: Some(user),
                ..ivy.pv(id, c.at(5, 13, m, 2, 0), PV_HOME)
            },
        );
    }
    let ivy_signup = c.at(5, 13, 5, 0, 0);
    w.ev(
        "h_ivy",
        Ev {
            user: Some("u_ivy"),
            ..ivy.ev("ev_ivy_04", "signup_completed", ivy_signup)
        },
    );
    w.ev(
        "h_ivy",
        Ev {
            anon: Some("0"),
            user: Some("u_ivy"),
            props: Some("{\"project_id\":\"p_ivy_1\"}"),
            ..ivy.ev("ev_ivy_05", "project_created", c.at(5, 13, 6, 0, 0))
        },
    );
    // no usable id at all
    w.ev(
        "h_ivy",
        Ev {
            anon: Some("[object Object]"),
            user: Some("undefined"),
            ..ivy.pv("ev_ivy_06", c.at(5, 13, 7, 0, 0), PV_DASH)
        },
    );
    w.touch(
        "h_ivy",
        Tc {
            anon: "[object Object]".to_string(),
            utm_source: s("newsletter"),
            utm_medium: s("email"),
            utm_campaign: s("product_update"),
            ..ivy.touch(
                c.at(5, 13, 10, 0, 0),
                0,
                "https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=product_update",
            )
        },
    );
    w.user(consented(
        "u_ivy",
        "ivy.chen@gmail.com",
        None,
        "US",
        ivy_signup,
    ));

    // 9. Receipt emails that differ from the account email.
    let jon = SDev {
        anon: "anon_jon",
        ip: "203.0.113.90",
        ua: MAC,
    };
    w.touch(
        "h_jon",
        Tc {
            ttclid: s("E.C.P.jon_story"),
            utm_source: s("tiktok"),
            utm_medium: s("paid_social"),
            utm_campaign: s("spring_launch"),
            ..jon.touch(
                c.at(6, 17, 0, 0, 0),
                0,
                "https://www.example.com/?utm_source=tiktok&utm_medium=paid_social&utm_campaign=spring_launch&ttclid=E.C.P.jon_story",
            )
        },
    );
    w.ev("h_jon", jon.pv("ev_jon_01", c.at(6, 17, 0, 2, 0), PV_HOME));
    let jon_signup = c.at(6, 17, 4, 0, 0);
    w.ev(
        "h_jon",
        Ev {
            user: Some("u_jon"),
            ..jon.ev("ev_jon_02", "signup_completed", jon_signup)
        },
    );
    w.ev(
        "h_jon",
        Ev {
            user: Some("u_jon"),
            value: Some(99.0),
            currency: Some("USD"),
            order: Some("ord_jon_1"),
            email: Some("billing@jonsbakery.example"),
            props: Some(PV_CHECKOUT),
            ..jon.ev("ev_jon_03", "purchase_completed", c.at(5, 9, 0, 0, 0))
        },
    );
    w.ev(
        "h_jon",
        Ev {
            id: "ev_jon_04",
            name: "purchase_completed",
            ts: c.at(1, 3, 0, 0, 0),
            user: Some("u_jon"),
            tv: Some(2),
            value: Some(19.0),
            currency: Some("USD"),
            order: Some("ord_jon_2"),
            email: Some("jon.doe@gmail.com"),
            props: Some("{\"source\":\"stripe_webhook\",\"plan\":\"pro\"}"),
            ..Ev::default()
        },
    );
    w.user(consented(
        "u_jon",
        "Jon.Doe+shop@gmail.com",
        Some("+44 20 7946 0959"),
        "GB",
        jon_signup,
    ));

    // 10. A touch whose only attribution is an unknown column.
    let kim = SDev {
        anon: "anon_kim",
        ip: "203.0.113.100",
        ua: MAC,
    };
    w.touch(
        "h_kim",
        Tc {
            partner_ref: s("pr_kim_001"),
            ..kim.touch(c.at(4, 16, 0, 0, 0), 0, "https://www.example.com/partners")
        },
    );
    w.ev("h_kim", kim.pv("ev_kim_01", c.at(4, 16, 0, 2, 0), PV_HOME));
    let kim_signup = c.at(4, 16, 5, 0, 0);
    w.ev(
        "h_kim",
        Ev {
            user: Some("u_kim"),
            ..kim.ev("ev_kim_02", "signup_completed", kim_signup)
        },
    );
    w.ev(
        "h_kim",
        Ev {
            user: Some("u_kim"),
            value: Some(49.0),
            currency: Some("EUR"),
            order: Some("ord_kim_1"),
            props: Some(PV_CHECKOUT),
            ..kim.ev("ev_kim_03", "purchase_completed", c.at(4, 16, 20, 0, 0))
        },
    );
    w.user(consented(
        "u_kim",
        "kim.lee@example.org",
        Some("650.555.0123"),
        "US",
        kim_signup,
    ));

    // Zed never signs up.
    let zed = SDev {
        anon: "anon_zed",
        ip: "203.0.113.110",
        ua: ANDROID,
    };
    w.touch(
        "h_zed",
        Tc {
            referrer: s("https://www.reddit.com/r/dataengineering/"),
            ..zed.touch(
                c.at(3, 22, 0, 0, 0),
                0,
                "https://www.example.com/blog/identity-stitching",
            )
        },
    );
    w.ev("h_zed", zed.pv("ev_zed_01", c.at(3, 22, 0, 2, 0), PV_BLOG));
    w.ev(
        "h_zed",
        zed.pv("ev_zed_02", c.at(3, 22, 3, 0, 0), PV_PRICING),
    );

    let humans = std::mem::take(&mut w.humans);
    for (h, u, first) in humans {
        w.sink.human(h, u, first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn opts(persons: usize, days: u32, seed: u64, stories: bool) -> GenOptions {
        GenOptions {
            persons,
            days,
            seed,
            end_date: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
            stories,
            visits_scale: 1,
        }
    }

    fn strs(df: &DataFrame, col: &str) -> Vec<Option<String>> {
        df.column(col)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn all_events(lake: &SyntheticLake) -> DataFrame {
        let mut it = lake.events.iter();
        let mut df = it.next().unwrap().1.clone();
        for (_, d) in it {
            df.vstack_mut(d).unwrap();
        }
        df
    }

    fn same(a: &[(NaiveDate, DataFrame)], b: &[(NaiveDate, DataFrame)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((da, x), (db, y))| da == db && x.equals_missing(y))
    }

    #[test]
    fn deterministic() {
        let a = generate(&opts(300, 30, 7, true)).unwrap();
        let b = generate(&opts(300, 30, 7, true)).unwrap();
        assert!(same(&a.events, &b.events));
        assert!(same(&a.touches, &b.touches));
        assert!(a.users.equals_missing(&b.users));
        assert!(a.orgs.equals_missing(&b.orgs));
        assert!(a.memberships.equals_missing(&b.memberships));
        assert!(a.truth_events.equals_missing(&b.truth_events));
        assert!(a.truth_humans.equals_missing(&b.truth_humans));
        let c = generate(&opts(300, 30, 8, true)).unwrap();
        assert!(!same(&a.events, &c.events));
    }

    /// More visits per human: as many humans (and about as many users: the random draws after
    /// the first human differ), about `visits_scale` times the events each.
    #[test]
    fn visits_scale_lengthens_histories_of_the_same_humans() {
        let one = generate(&opts(200, 30, 5, false)).unwrap();
        let three = generate(&GenOptions {
            visits_scale: 3,
            ..opts(200, 30, 5, false)
        })
        .unwrap();
        assert_eq!(one.truth_humans.height(), three.truth_humans.height());
        let (u1, u3) = (one.users.height() as f64, three.users.height() as f64);
        assert!((u3 / u1 - 1.0).abs() < 0.1, "{u1} users, then {u3}");
        let (e1, e3) = (all_events(&one).height(), all_events(&three).height());
        assert!(e3 > 2 * e1 && e3 < 4 * e1, "{e1} events, then {e3}");
    }

    #[test]
    fn stories_do_not_disturb_the_random_part() {
        let a = generate(&opts(50, 20, 3, false)).unwrap();
        let b = generate(&opts(50, 20, 3, true)).unwrap();
        let a_users = strs(&a.users, "user_id");
        let b_users = strs(&b.users, "user_id");
        assert_eq!(&b_users[b_users.len() - a_users.len()..], &a_users[..]);
        let a_truth = strs(&a.truth_events, "event_id");
        let b_truth: BTreeSet<_> = strs(&b.truth_events, "event_id").into_iter().collect();
        assert!(a_truth.iter().all(|e| b_truth.contains(e)));
    }

    #[test]
    fn dtypes() {
        let lake = generate(&opts(100, 10, 1, true)).unwrap();
        let ms = DataType::Datetime(TimeUnit::Milliseconds, None);
        let us_utc = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
        for (_, df) in &lake.events {
            let expect: Vec<(&str, DataType)> = vec![
                ("event_id", DataType::String),
                ("event", DataType::String),
                ("ts", ms.clone()),
                ("anon_id", DataType::String),
                ("user_id", DataType::String),
                ("previous_id", DataType::String),
                ("seq", DataType::Int64),
                ("org_id", DataType::String),
                ("tracking_version", DataType::Int32),
                ("session_id", DataType::String),
                ("ip", DataType::String),
                ("user_agent", DataType::String),
                ("value", DataType::Float64),
                ("currency", DataType::String),
                ("order_id", DataType::String),
                ("email", DataType::String),
                ("properties", DataType::String),
            ];
            let got: Vec<(&str, DataType)> = df
                .columns()
                .iter()
                .map(|c| (c.name().as_str(), c.dtype().clone()))
                .collect();
            assert_eq!(got, expect);
        }
        for (_, df) in &lake.touches {
            assert_eq!(df.width(), 21);
            assert_eq!(df.column("ts").unwrap().dtype(), &us_utc);
            for c in df.columns() {
                if c.name() != "ts" {
                    assert_eq!(c.dtype(), &DataType::String, "{}", c.name());
                }
            }
            assert_eq!(df.column("anon_id").unwrap().null_count(), 0);
        }
        let u = &lake.users;
        assert_eq!(u.column("created_at").unwrap().dtype(), &ms);
        assert_eq!(
            u.column("ad_user_data").unwrap().dtype(),
            &DataType::Boolean
        );
        assert_eq!(
            u.column("ad_personalization").unwrap().dtype(),
            &DataType::Boolean
        );
        for c in ["user_id", "email", "phone", "country"] {
            assert_eq!(u.column(c).unwrap().dtype(), &DataType::String);
        }
        assert_eq!(
            lake.orgs.column("org_id").unwrap().dtype(),
            &DataType::String
        );
        assert_eq!(lake.memberships.width(), 2);
        assert_eq!(
            lake.truth_humans.column("first_touch_at").unwrap().dtype(),
            &us_utc
        );
        assert_eq!(
            lake.truth_events.get_column_names_owned(),
            vec!["event_id", "human_id"]
        );
    }

    /// Every row lies in the window and in the partition of its date, except duplicate copies.
    #[test]
    fn partitions_and_window() {
        for days in [1u32, 3, 30] {
            let o = opts(400, days, 11, true);
            let lake = generate(&o).unwrap();
            let first = o.end_date - TimeDelta::days(days as i64 - 1);
            let ws = first.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
            let we = ws + days as i64 * MS_PER_DAY;
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            let mut off_day = Vec::new();
            for (dt, df) in &lake.events {
                let ts = df
                    .column("ts")
                    .unwrap()
                    .datetime()
                    .unwrap()
                    .physical()
                    .clone();
                let ids = strs(df, "event_id");
                for (t, id) in ts.iter().zip(ids) {
                    let t = t.unwrap();
                    assert!(t >= ws && t < we, "event outside window (days={days})");
                    let day = first + TimeDelta::days((t - ws).div_euclid(MS_PER_DAY));
                    let id = id.unwrap();
                    if day != *dt {
                        assert!(day < *dt);
                        off_day.push(id.clone());
                    }
                    *seen.entry(id).or_default() += 1;
                }
            }
            for id in off_day {
                assert!(seen[&id] >= 2, "{id} is off its day but not a duplicate");
            }
            for (dt, df) in &lake.touches {
                let ts = df
                    .column("ts")
                    .unwrap()
                    .datetime()
                    .unwrap()
                    .physical()
                    .clone();
                for t in ts.iter() {
                    let t = t.unwrap().div_euclid(1000);
                    assert!(t >= ws && t < we);
                    assert_eq!(
                        first + TimeDelta::days((t - ws).div_euclid(MS_PER_DAY)),
                        *dt
                    );
                }
            }
            // truth: one row per distinct event id, covering all of them
            let truth: BTreeSet<String> = strs(&lake.truth_events, "event_id")
                .into_iter()
                .map(Option::unwrap)
                .collect();
            assert_eq!(truth.len(), lake.truth_events.height());
            assert_eq!(truth, seen.keys().cloned().collect());
            assert!(seen.values().any(|&n| n >= 2));
        }
    }

    #[test]
    fn volumes() {
        let lake = generate(&opts(2000, 30, 42, false)).unwrap();
        let events: usize = lake.events.iter().map(|(_, d)| d.height()).sum();
        let touches: usize = lake.touches.iter().map(|(_, d)| d.height()).sum();
        let per_event = events as f64 / 2000.0;
        let per_touch = touches as f64 / 2000.0;
        eprintln!("{per_event:.2} events and {per_touch:.2} touches per person");
        assert!(
            (10.0..=15.0).contains(&per_event),
            "{per_event} events per person"
        );
        assert!(
            (3.0..=5.0).contains(&per_touch),
            "{per_touch} touches per person"
        );
        assert_eq!(lake.truth_humans.height(), 2000);
        let users = lake.users.height();
        assert!(users > 1600 && users < 1950);
        let df = all_events(&lake);
        let names: BTreeSet<String> = strs(&df, "event").into_iter().flatten().collect();
        for n in [
            "page_viewed",
            "signup_completed",
            "signed_in",
            "signed_out",
            "$create_alias",
            "purchase_completed",
            "project_created",
            "invite_sent",
            "invoice_paid",
        ] {
            assert!(names.contains(n), "no {n}");
        }
        let anon = strs(&df, "anon_id");
        let user = strs(&df, "user_id");
        assert!(anon
            .iter()
            .any(|a| a.as_deref().is_some_and(|a| JUNK_IDS.contains(&a))));
        assert!(user
            .iter()
            .any(|u| u.as_deref().is_some_and(|u| JUNK_IDS.contains(&u))));
        // server-side events, legacy org ids in user_id, seq ties
        assert!(anon
            .iter()
            .zip(&user)
            .any(|(a, u)| a.is_none() && u.is_some()));
        assert!(user
            .iter()
            .any(|u| u.as_deref().is_some_and(|u| u.starts_with("org_"))));
        assert!(df.column("seq").unwrap().null_count() < df.height());
        let pt: Vec<_> = lake
            .touches
            .iter()
            .flat_map(|(_, d)| strs(d, "partner_ref"))
            .flatten()
            .collect();
        assert!(!pt.is_empty());
        let firsts = lake.truth_humans.column("first_touch_at").unwrap();
        assert!(firsts.null_count() > 0 && firsts.null_count() < 2000);
    }

    fn event_row(lake: &SyntheticLake, id: &str) -> Vec<(NaiveDate, usize)> {
        let mut out = Vec::new();
        for (dt, df) in &lake.events {
            for (i, v) in strs(df, "event_id").into_iter().enumerate() {
                if v.as_deref() == Some(id) {
                    out.push((*dt, i));
                }
            }
        }
        out
    }

    #[test]
    fn stories_present() {
        let o = opts(0, 30, 0, true);
        let lake = generate(&o).unwrap();
        let d = |back: i64| o.end_date - TimeDelta::days(back);

        // truth of the stories
        let th = &lake.truth_humans;
        let hs = strs(th, "human_id");
        let us = strs(th, "user_id");
        let ft: Vec<Option<i64>> = th
            .column("first_touch_at")
            .unwrap()
            .datetime()
            .unwrap()
            .physical()
            .iter()
            .collect();
        let truth: BTreeMap<String, (Option<String>, Option<i64>)> = hs
            .into_iter()
            .map(Option::unwrap)
            .zip(us.into_iter().zip(ft))
            .collect();
        let at_us = |back: i64, h: u32, m: u32, s: u32| {
            d(back)
                .and_hms_opt(h, m, s)
                .unwrap()
                .and_utc()
                .timestamp_micros()
        };
        assert_eq!(
            truth["h_ava"],
            (Some("u_ava".into()), Some(at_us(10, 9, 15, 0) + 123_456))
        );
        assert_eq!(truth["h_ben"].1, Some(at_us(9, 12, 0, 0)));
        assert_eq!(truth["h_cy"].1, Some(at_us(8, 18, 0, 0)));
        assert_eq!(truth["h_dee"].1, None);
        assert_eq!(truth["h_eli"].1, Some(at_us(9, 20, 0, 0)));
        assert_eq!(truth["h_fay"].1, Some(at_us(9, 14, 0, 0)));
        assert_eq!(truth["h_ivy"].1, Some(at_us(5, 13, 0, 0)));
        assert_eq!(truth["h_kim"].1, Some(at_us(4, 16, 0, 0)));
        assert_eq!(truth["h_zed"], (None, Some(at_us(3, 22, 0, 0))));
        assert_eq!(truth.len(), 14);

        // 1. Ava's paid click is on the phone, D-10
        let touches = &lake.touches;
        let (dt, df) = touches
            .iter()
            .find(|(_, df)| strs(df, "gclid").contains(&Some("EAIaIQobChMI_ava_story".into())))
            .unwrap();
        assert_eq!(*dt, d(10));
        assert!(strs(df, "anon_id").contains(&Some("anon_phone_ava".into())));
        assert_eq!(event_row(&lake, "ev_ava_06")[0].0, d(3));

        // 6. duplicates
        let copies = event_row(&lake, "ev_lea_purchase");
        assert_eq!(
            copies.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![d(2), d(1)]
        );
        let conflict = event_row(&lake, "ev_lea_conflict");
        assert_eq!(conflict.len(), 2);
        let (dt, _) = conflict[0];
        let df = &lake.events.iter().find(|(x, _)| *x == dt).unwrap().1;
        let props = strs(df, "properties");
        assert_ne!(props[conflict[0].1], props[conflict[1].1]);

        // 7. same ms, reverse seq order in rows
        let rows: Vec<_> = ["ev_max_a", "ev_max_b", "ev_max_c"]
            .iter()
            .map(|id| event_row(&lake, id)[0])
            .collect();
        assert!(rows[0].1 < rows[1].1 && rows[1].1 < rows[2].1);
        let df = &lake.events.iter().find(|(x, _)| *x == rows[0].0).unwrap().1;
        let seq = df.column("seq").unwrap().i64().unwrap();
        let ts = df
            .column("ts")
            .unwrap()
            .datetime()
            .unwrap()
            .physical()
            .clone();
        assert_eq!(
            rows.iter().map(|r| seq.get(r.1)).collect::<Vec<_>>(),
            vec![Some(3), Some(2), Some(1)]
        );
        assert_eq!(ts.get(rows[0].1), ts.get(rows[2].1));

        // 5. orgs and memberships
        assert_eq!(
            strs(&lake.orgs, "org_id"),
            vec![Some("org_acme".into()), Some("org_globex".into())]
        );
        assert_eq!(lake.memberships.height(), 2);

        // 10. partner_ref only
        let kim: Vec<_> = touches
            .iter()
            .flat_map(|(_, df)| strs(df, "partner_ref"))
            .flatten()
            .collect();
        assert_eq!(kim, vec!["pr_kim_001".to_string()]);

        // users: one row per story user
        assert_eq!(lake.users.height(), 13);
        let all = all_events(&lake);
        let ids: BTreeSet<String> = strs(&all, "event_id").into_iter().flatten().collect();
        for id in [
            "ev_ava_01",
            "ev_ben_04",
            "ev_cy_03",
            "ev_dee_05",
            "ev_eli_05",
            "ev_fay_02",
            "ev_gus_03",
            "ev_hal_01",
            "ev_ivy_06",
            "ev_jon_04",
            "ev_kim_03",
        ] {
            assert!(ids.contains(id), "{id}");
        }
    }

    #[test]
    fn stories_squeeze_into_short_windows() {
        let lake = generate(&opts(0, 1, 0, true)).unwrap();
        assert_eq!(lake.events.len(), 1);
        assert_eq!(lake.touches.len(), 1);
        let copies = event_row(&lake, "ev_lea_purchase");
        assert_eq!(copies.len(), 2);
    }

    #[test]
    #[ignore = "timing; run with --release --ignored"]
    fn big() {
        let t = std::time::Instant::now();
        let lake = generate(&opts(800_000, 30, 1, true)).unwrap();
        let events: usize = lake.events.iter().map(|(_, d)| d.height()).sum();
        let touches: usize = lake.touches.iter().map(|(_, d)| d.height()).sum();
        eprintln!("{events} events, {touches} touches in {:?}", t.elapsed());
    }
}
