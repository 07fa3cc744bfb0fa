//! Ad-platform exports (contract §5): the storage-free core.
//!
//! The pipeline turns each conversion of the run into a typed [`Conversion`] (its match keys
//! already gathered: the user's and the receipt's emails, phones with the user's country, the
//! click ids and cookies of the person's latest touch before it, consent); the builders here turn
//! a list of them into file bodies and counts, without touching storage:
//!
//! - [`meta::build`]: Meta Conversions API request bodies (`exports/meta/batch-NNNNN.json`);
//! - [`google::click_conversions_csv`]: the Google Ads click conversion upload file
//!   (`exports/google/click_conversions.csv`);
//! - [`google::data_manager_batches`]: Data Manager API `events:ingest` request bodies
//!   (`exports/google/data_manager/batch-NNNNN.json`);
//! - [`normalize`]: per-platform normalization and SHA-256 of emails and phone numbers.
//!
//! Every conversion that is not exported is counted once in [`Skipped`], with the first reason
//! that applies, in this order: `oversized`, `no_consent`, `outside_window`,
//! `missing_user_agent` (Meta, `website` events), `missing_value` (Meta `Purchase` events
//! without a value >= 0 and a currency), `missing_source_url` (Meta, `website` events
//! with no page URL and no `site_url`), `no_match_key`. `already_exported` is the caller's (the
//! ledger lives in storage): it filters those conversions out and counts them with
//! [`Skipped::add`]. Emails and phones that cannot be normalized are left out of their
//! conversion and counted as values (`bad_email`, `bad_phone`), never sent raw.
//!
//! Output is deterministic: conversions are sorted by time then `event_id`, identifier lists
//! are deduplicated and sorted, JSON keys come in a fixed order. No raw email or phone number
//! reaches any output of this module: only their SHA-256.

use chrono::NaiveDate;
use polars::prelude::{Column, DataFrame};
use serde::Serialize;
use std::borrow::Borrow;

use crate::config::ExportsSection;
use crate::error::{Error, Result};

pub mod gather;
pub mod google;
pub mod ledger;
pub mod meta;
pub mod normalize;
mod phone;

pub use normalize::{Phone, Platform};
pub use phone::load_plans as load_phone_plans;

/// Microseconds in one day.
pub const DAY_US: i64 = 86_400_000_000;

/// A click id of a touch, with the touch's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// The click id as captured on the landing page (never hashed, case kept).
    pub id: String,
    /// When the click's touch happened, µs since the Unix epoch, UTC.
    pub at_us: i64,
}

impl Click {
    /// A click id `id` of a touch at `at_us` (µs, UTC).
    pub fn new(id: impl Into<String>, at_us: i64) -> Self {
        Click {
            id: id.into(),
            at_us,
        }
    }
}

/// One conversion of the run, with every match key the exports may use.
///
/// Emails and phones are raw (as read): the builders normalize and hash them per platform. A
/// phone ([`Phone`]) keeps its E.164 reading once a platform has read it, for the other
/// platform and the user's other conversions.
/// Click ids, `fbc`, `fbp`, ip and user agent are sent unhashed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversion {
    /// The conversion's `event_id` (Meta's deduplication key; Google's transaction id when the
    /// conversion has no `order_id`).
    pub event_id: String,
    /// The raw event name (`purchase_completed`), mapped to a platform name by the settings.
    pub event: String,
    /// When the conversion happened, µs since the Unix epoch, UTC.
    pub ts_us: i64,
    /// Conversion value.
    pub value: Option<f64>,
    /// ISO 4217 currency of `value`.
    pub currency: Option<String>,
    /// Order id (Meta `custom_data.order_id`, Google transaction id).
    pub order_id: Option<String>,
    /// The resolved user (Meta `external_id`, hashed).
    pub user_id: Option<String>,
    /// Raw emails: the user's and the receipt's. Duplicates are fine.
    pub emails: Vec<String>,
    /// Raw phone numbers with the user's ISO 3166-1 alpha-2 country (for national formats),
    /// read as E.164 at most once, by the first platform that needs them.
    pub phones: Vec<Phone>,
    /// Google click id of the person's latest Google touch before the conversion.
    pub gclid: Option<Click>,
    /// Google app-to-web iOS click id (`gbraid`) of that touch.
    pub gbraid: Option<Click>,
    /// Google web-to-app iOS click id (`wbraid`) of that touch.
    pub wbraid: Option<Click>,
    /// Meta click id of the person's latest Meta touch before the conversion; builds `fbc` when
    /// the touch carried no `fbc` cookie.
    pub fbclid: Option<Click>,
    /// Meta click cookie `_fbc`, opaque (from the touch).
    pub fbc: Option<String>,
    /// Meta browser cookie `_fbp`, opaque (from the touch).
    pub fbp: Option<String>,
    /// Client IP address (the conversion's, else its latest touch's).
    pub ip: Option<String>,
    /// Client user agent (the conversion's, else its latest touch's).
    pub user_agent: Option<String>,
    /// The page of the conversion (from `properties`, else the latest touch's `landing_url`).
    pub event_source_url: Option<String>,
    /// Consent to send this user's data to ad platforms: `Some(false)` is never exported,
    /// `None` is exported as unspecified.
    pub ad_user_data: Option<bool>,
    /// Consent to personalized advertising (sent to Google as is).
    pub ad_personalization: Option<bool>,
    /// The person is `oversized` (contract §3): held back from every export.
    pub oversized: bool,
}

/// Why a conversion, or a value of it, was left out of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not one key the platform can match on.
    NoMatchKey,
    /// Outside the platform's window (too old, in the future, or its click too old).
    OutsideWindow,
    /// The user refused consent (`ad_user_data = false`).
    NoConsent,
    /// The person is oversized.
    Oversized,
    /// Exported by the run of an earlier date (the ledger; counted by the caller).
    AlreadyExported,
    /// A Meta `website` event without a user agent.
    MissingUserAgent,
    /// A Meta `website` event without a page URL (and no `site_url` configured).
    MissingSourceUrl,
    /// A Meta `Purchase` without a value >= 0 or a currency (Meta would refuse the whole batch).
    MissingValue,
    /// An email that cannot be normalized (a value, not a conversion).
    BadEmail,
    /// A phone number that cannot be normalized (a value, not a conversion).
    BadPhone,
}

impl Reason {
    /// The reason's key in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoMatchKey => "no_match_key",
            Reason::OutsideWindow => "outside_window",
            Reason::NoConsent => "no_consent",
            Reason::Oversized => "oversized",
            Reason::AlreadyExported => "already_exported",
            Reason::MissingUserAgent => "missing_user_agent",
            Reason::MissingSourceUrl => "missing_source_url",
            Reason::MissingValue => "missing_value",
            Reason::BadEmail => "bad_email",
            Reason::BadPhone => "bad_phone",
        }
    }
}

/// Counts of what was left out of one platform's export, by reason (the manifest's
/// `exports.<platform>.skipped`). `bad_email` and `bad_phone` count values left out of
/// conversions that may still be exported; every other key counts conversions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Conversions with no key the platform can match on.
    pub no_match_key: u64,
    /// Conversions outside the platform's window.
    pub outside_window: u64,
    /// Conversions of users who refused consent.
    pub no_consent: u64,
    /// Conversions of oversized persons.
    pub oversized: u64,
    /// Conversions exported by an earlier date's run.
    pub already_exported: u64,
    /// Meta `website` conversions without a user agent.
    pub missing_user_agent: u64,
    /// Meta `website` conversions without a page URL.
    pub missing_source_url: u64,
    /// Meta `Purchase` events without a value or currency.
    pub missing_value: u64,
    /// Emails left out (cannot be normalized).
    pub bad_email: u64,
    /// Phone numbers left out (cannot be normalized).
    pub bad_phone: u64,
}

impl Skipped {
    /// Count one more conversion (or value) left out for `reason`.
    pub fn add(&mut self, reason: Reason) {
        *self.slot(reason) += 1;
    }

    /// Add `other`'s counts to these.
    pub fn absorb(&mut self, other: &Skipped) {
        let Skipped {
            no_match_key,
            outside_window,
            no_consent,
            oversized,
            already_exported,
            missing_user_agent,
            missing_source_url,
            missing_value,
            bad_email,
            bad_phone,
        } = *other;
        self.no_match_key += no_match_key;
        self.outside_window += outside_window;
        self.no_consent += no_consent;
        self.oversized += oversized;
        self.already_exported += already_exported;
        self.missing_user_agent += missing_user_agent;
        self.missing_source_url += missing_source_url;
        self.missing_value += missing_value;
        self.bad_email += bad_email;
        self.bad_phone += bad_phone;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        let mut copy = *self;
        *copy.slot(reason)
    }

    fn slot(&mut self, reason: Reason) -> &mut u64 {
        match reason {
            Reason::NoMatchKey => &mut self.no_match_key,
            Reason::OutsideWindow => &mut self.outside_window,
            Reason::NoConsent => &mut self.no_consent,
            Reason::Oversized => &mut self.oversized,
            Reason::AlreadyExported => &mut self.already_exported,
            Reason::MissingUserAgent => &mut self.missing_user_agent,
            Reason::MissingSourceUrl => &mut self.missing_source_url,
            Reason::MissingValue => &mut self.missing_value,
            Reason::BadEmail => &mut self.bad_email,
            Reason::BadPhone => &mut self.bad_phone,
        }
    }

    /// Conversions not exported (every reason but `bad_email` and `bad_phone`).
    pub fn conversions(&self) -> u64 {
        self.no_match_key
            + self.outside_window
            + self.no_consent
            + self.oversized
            + self.already_exported
            + self.missing_user_agent
            + self.missing_source_url
            + self.missing_value
    }

    /// Add every count of `other` to this one.
    pub fn merge(&mut self, other: &Skipped) {
        self.no_match_key += other.no_match_key;
        self.outside_window += other.outside_window;
        self.no_consent += other.no_consent;
        self.oversized += other.oversized;
        self.already_exported += other.already_exported;
        self.missing_user_agent += other.missing_user_agent;
        self.missing_source_url += other.missing_source_url;
        self.missing_value += other.missing_value;
        self.bad_email += other.bad_email;
        self.bad_phone += other.bad_phone;
    }
}

/// The reason shared by every platform that holds a conversion back before its own rules:
/// an oversized person, then refused consent.
pub(crate) fn held_back(c: &Conversion) -> Option<Reason> {
    if c.oversized {
        Some(Reason::Oversized)
    } else if c.ad_user_data == Some(false) {
        Some(Reason::NoConsent)
    } else {
        None
    }
}

/// Conversions made into a platform's events ([`made_events`]).
pub(crate) struct Made<E> {
    /// The events, in the conversions' order.
    pub events: Vec<E>,
    /// The ids of the conversions made into `events`, in the same order.
    pub exported: Vec<String>,
    /// The ids of the conversions left out, with why, in the conversions' order.
    pub not_exported: Vec<(String, Reason)>,
    /// The conversions (and values) left out, by reason.
    pub skipped: Skipped,
}

impl<E> Default for Made<E> {
    fn default() -> Self {
        Made {
            events: Vec::new(),
            exported: Vec::new(),
            not_exported: Vec::new(),
            skipped: Skipped::default(),
        }
    }
}

impl<E> Made<E> {
    /// `next`'s conversions after these.
    pub fn extend(&mut self, next: Made<E>) {
        self.events.extend(next.events);
        self.exported.extend(next.exported);
        self.not_exported.extend(next.not_exported);
        self.skipped.absorb(&next.skipped);
    }
}

/// Each of `conversions` made into an event by `make`, or left out for the reason it gives
/// (`make` may also count values it leaves out of an event in the `Skipped` it is handed).
pub(crate) fn made_events<'c, E>(
    conversions: &[&'c Conversion],
    mut make: impl FnMut(&'c Conversion, &mut Skipped) -> std::result::Result<E, Reason>,
) -> Made<E> {
    let mut made = Made::default();
    for &c in conversions {
        match make(c, &mut made.skipped) {
            Ok(e) => {
                made.exported.push(c.event_id.clone());
                made.events.push(e);
            }
            Err(reason) => {
                made.skipped.add(reason);
                made.not_exported.push((c.event_id.clone(), reason));
            }
        }
    }
    made
}

/// The conversions in output order: by time, then `event_id`.
pub(crate) fn sorted<C: Borrow<Conversion>>(conversions: &[C]) -> Vec<&Conversion> {
    let mut v: Vec<&Conversion> = conversions.iter().map(Borrow::borrow).collect();
    v.sort_by(|a, b| {
        a.ts_us
            .cmp(&b.ts_us)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    v
}

/// Hashed, deduplicated, sorted emails of `c` for platform `p`; bad values are counted.
pub(crate) fn hashed_emails(p: Platform, c: &Conversion, skipped: &mut Skipped) -> Vec<String> {
    let mut out = Vec::new();
    for raw in &c.emails {
        if raw.trim().is_empty() {
            continue;
        }
        match normalize::hashed_email(p, raw) {
            Some(h) => out.push(h),
            None => skipped.add(Reason::BadEmail),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Hashed, deduplicated, sorted phones of `c` for platform `p`; bad values are counted.
pub(crate) fn hashed_phones(p: Platform, c: &Conversion, skipped: &mut Skipped) -> Vec<String> {
    let mut out = Vec::new();
    for phone in &c.phones {
        if phone.raw().trim().is_empty() {
            continue;
        }
        match normalize::hashed_phone_read(p, phone) {
            Some(h) => out.push(h),
            None => skipped.add(Reason::BadPhone),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A non-blank string, trimmed.
pub(crate) fn non_blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Split `items` into chunks of at most `size` (no chunk when `items` is empty).
pub(crate) fn batches<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size.max(1)).collect());
    }
    out
}

/// The platform names of the ledger and the manifest.
pub const PLATFORMS: [&str; 2] = ["meta", "google"];

/// The destinations of the `export_status` table, in order: the platforms, then the Google
/// click conversion file.
pub const PLATFORMS_AND_FILES: [&str; 3] = ["meta", "google", "google_click_csv"];

/// What the export stage made of the run's conversions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exports {
    /// The Meta Conversions API bodies.
    pub meta: meta::MetaExport,
    /// The Google click conversion file and Data Manager bodies.
    pub google: google::GoogleExport,
}

impl Exports {
    /// The `export_status` table: one row per conversion and destination (`meta`, `google` for
    /// the Data Manager bodies, `google_click_csv` for the click conversion file), with
    /// `exported` and the `reason` it was left out (null when exported). Sorted by
    /// conversion_event_id, then destination.
    pub fn status_frame(&self) -> Result<DataFrame> {
        let mut rows: Vec<(&str, &str, Option<&'static str>)> = Vec::new();
        type Outcomes<'a> = (&'a str, &'a [String], &'a [(String, Reason)]);
        let lists: [Outcomes; 3] = [
            ("meta", &self.meta.exported, &self.meta.not_exported),
            (
                "google",
                &self.google.data_manager.exported,
                &self.google.data_manager.not_exported,
            ),
            (
                "google_click_csv",
                &self.google.click_csv.exported,
                &self.google.click_csv.not_exported,
            ),
        ];
        for (platform, done, skipped) in lists {
            rows.extend(done.iter().map(|id| (id.as_str(), platform, None)));
            rows.extend(
                skipped
                    .iter()
                    .map(|(id, r)| (id.as_str(), platform, Some(r.as_str()))),
            );
        }
        // By event id, then platform: the rows are appended in `PLATFORMS_AND_FILES` order, and
        // the sort keeps equal ids in row order.
        let order = crate::codes::arg_sort_strings(rows.iter().map(|r| Some(r.0)));
        let rows: Vec<(&str, &str, Option<&'static str>)> =
            (order.into_iter()).map(|i| rows[i as usize]).collect();
        Ok(DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    "conversion_event_id".into(),
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                ),
                Column::new(
                    "platform".into(),
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                ),
                Column::new(
                    "exported".into(),
                    rows.iter().map(|r| r.2.is_none()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "reason".into(),
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                ),
            ],
        )?)
    }

    /// (platform, exported event ids), for the ledger.
    pub fn exported(&self) -> [(&'static str, &[String]); 2] {
        [
            ("meta", self.meta.exported.as_slice()),
            ("google", self.google.exported()),
        ]
    }
}

/// Build every platform's export of `conversions` for the run of `date`. Conversions the ledger
/// says another date's run exported are left out and counted (`already_exported`).
pub fn export(
    conversions: &[Conversion],
    ledger: &ledger::Ledger,
    date: NaiveDate,
    settings: &ExportsSection,
) -> Result<Exports> {
    let end = window_end_us(date);
    // The conversions each platform has not had yet, by reference: both platforms read the
    // same records at once (a copy for each was about 500 MB at 10M events).
    let fresh = |platform: &str| -> (Vec<&Conversion>, Vec<(String, Reason)>) {
        let (done, todo): (Vec<&Conversion>, Vec<&Conversion>) = conversions
            .iter()
            .partition(|c| ledger.already_exported(platform, &c.event_id, date));
        let done = sorted(&done)
            .into_iter()
            .map(|c| (c.event_id.clone(), Reason::AlreadyExported))
            .collect();
        (todo, done)
    };
    // The two platforms' files side by side (each normalizes and hashes every identifier).
    let (meta, google) = crate::parallel::join(
        || {
            let (todo, done) = fresh("meta");
            let mut meta = meta::build(&todo, &settings.meta, end);
            meta.skipped.already_exported += done.len() as u64;
            meta.not_exported.extend(done);
            meta
        },
        || {
            let (todo, done) = fresh("google");
            google::build(&todo, &settings.google, end).map(|g| (g, done))
        },
    );
    let (mut google, done) =
        google.map_err(|e| Error::Internal(format!("[exports.google] {e}")))?;
    google.data_manager.skipped.already_exported += done.len() as u64;
    google.click_csv.skipped.already_exported += done.len() as u64;
    google
        .data_manager
        .not_exported
        .extend(done.iter().cloned());
    google.click_csv.not_exported.extend(done);
    Ok(Exports { meta, google })
}

/// The end of run date `date` (exclusive: midnight UTC of the next day), µs since the epoch:
/// the instant the platforms' windows are counted from.
pub fn window_end_us(date: chrono::NaiveDate) -> i64 {
    let next = date.succ_opt().unwrap_or(date);
    next.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or(i64::MAX)
}

/// The file name of batch `index` (0-based): `batch-00001.json`, `batch-00002.json`, ...
pub fn batch_file_name(index: usize) -> String {
    format!("batch-{:05}.json", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_serializes_every_reason() {
        let mut s = Skipped::default();
        s.add(Reason::NoConsent);
        s.add(Reason::BadEmail);
        s.add(Reason::BadEmail);
        assert_eq!(s.get(Reason::BadEmail), 2);
        assert_eq!(s.conversions(), 1);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"no_match_key":0,"outside_window":0,"no_consent":1,"oversized":0,"already_exported":0,"missing_user_agent":0,"missing_source_url":0,"missing_value":0,"bad_email":2,"bad_phone":0}"#
        );
        let mut t = Skipped::default();
        t.merge(&s);
        t.merge(&s);
        assert_eq!(t.no_consent, 2);
        for r in [
            Reason::NoMatchKey,
            Reason::OutsideWindow,
            Reason::NoConsent,
            Reason::Oversized,
            Reason::AlreadyExported,
            Reason::MissingUserAgent,
            Reason::MissingSourceUrl,
            Reason::MissingValue,
            Reason::BadEmail,
            Reason::BadPhone,
        ] {
            assert!(json.contains(&format!("\"{}\"", r.as_str())), "{r:?}");
        }
    }

    #[test]
    fn window_end_is_next_midnight() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        // 2026-11-22T00:00:00Z
        assert_eq!(window_end_us(d), 1_795_305_600_000_000);
    }

    #[test]
    fn batches_split_exactly() {
        assert!(batches(Vec::<u8>::new(), 3).is_empty());
        let b = batches((0..7).collect::<Vec<_>>(), 3);
        assert_eq!(b, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert_eq!(batch_file_name(0), "batch-00001.json");
        assert_eq!(batch_file_name(41), "batch-00042.json");
    }
}
