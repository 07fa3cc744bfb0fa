//! Meta Conversions API request bodies (`exports/meta/batch-NNNNN.json`).
//!
//! Each body is `{"data": [event, ...]}` with at most [`MAX_EVENTS`] events, ready to POST to
//! `https://graph.facebook.com/<version>/<pixel id>/events` (the uploader adds the access
//! token). An event carries `event_name` (mapped by [`MetaSettings::event_names`]),
//! `event_time` (Unix seconds), `event_id` (Meta deduplicates on it with `event_name`),
//! `action_source`, `event_source_url`, `user_data` and `custom_data`.
//!
//! `user_data`: `em` and `ph` are SHA-256 of Meta-normalized emails and phones (lists,
//! deduplicated, sorted), `external_id` the SHA-256 of the user id (of the id as read, for a user id pseudonymized by the
//! read stage); `fbc` (the touch's cookie,
//! else `fb.1.<click ms>.<fbclid>`), `fbp`, `client_ip_address` and `client_user_agent` are
//! sent unhashed.
//!
//! Held back, and counted: oversized persons, users who refused consent, conversions older than
//! 7 days (62 for `physical_store`) before the end of the run date or after it, `website`
//! events without a user agent or a page URL, and conversions with no match key at all (none of
//! `em`, `ph`, `external_id`, `fbc`, `fbp`, nor ip and user agent together).

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    batches, hashed_emails, hashed_phones, held_back, made_events, non_blank, normalize, sorted,
    Conversion, Made, Platform, Reason, Skipped, DAY_US,
};

/// Most events Meta accepts in one request.
pub const MAX_EVENTS: usize = 1_000;

/// The `action_source` values Meta accepts.
pub const ACTION_SOURCES: &[&str] = &[
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];

/// Meta export settings (the job file's `[exports.meta]`, when the pipeline wires it in).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaSettings {
    /// Raw conversion event name → Meta event name. Events not listed keep their raw name.
    pub event_names: BTreeMap<String, String>,
    /// `action_source` of every event: `website` (default), `physical_store`, `app`, ...
    pub action_source: String,
    /// The site's URL: `event_source_url` of a conversion that has no page URL of its own.
    pub site_url: Option<String>,
}

impl Default for MetaSettings {
    fn default() -> Self {
        MetaSettings {
            event_names: BTreeMap::from([(
                "purchase_completed".to_string(),
                "Purchase".to_string(),
            )]),
            action_source: "website".into(),
            site_url: None,
        }
    }
}

impl MetaSettings {
    /// Check the settings; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !ACTION_SOURCES.contains(&self.action_source.as_str()) {
            return Err(format!(
                "action_source = {:?}: expected one of {}",
                self.action_source,
                ACTION_SOURCES.join(", ")
            ));
        }
        if let Some((k, _)) = self.event_names.iter().find(|(_, v)| v.trim().is_empty()) {
            return Err(format!("event_names.{k}: empty Meta event name"));
        }
        Ok(())
    }

    /// How many days back from the end of the run date Meta accepts an event.
    pub fn window_days(&self) -> i64 {
        if self.action_source == "physical_store" {
            62
        } else {
            7
        }
    }

    fn event_name<'a>(&'a self, raw: &'a str) -> &'a str {
        self.event_names.get(raw).map(String::as_str).unwrap_or(raw)
    }
}

/// The Meta export of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaExport {
    /// Request bodies, in order: `batches[i]` is `batch_file_name(i)`.
    pub batches: Vec<String>,
    /// `event_id` of every exported conversion, in output order (for the ledger).
    pub exported: Vec<String>,
    /// What was left out, by reason.
    pub skipped: Skipped,
    /// `event_id` and reason of every conversion left out, in output order.
    pub not_exported: Vec<(String, Reason)>,
}

/// Build the Meta request bodies for `conversions`. `window_end_us` is the end of the run date
/// (see [`super::window_end_us`]): events before it by more than the window, or at or after
/// it, are left out.
pub fn build<C: Borrow<Conversion>>(
    conversions: &[C],
    settings: &MetaSettings,
    window_end_us: i64,
) -> MetaExport {
    let window_start = window_end_us.saturating_sub(settings.window_days() * DAY_US);
    let website = settings.action_source == "website";
    let Made {
        events,
        exported,
        not_exported,
        skipped,
    } = made_events(&sorted(conversions), |c, skipped| {
        event(c, settings, website, window_start, window_end_us, skipped)
    });
    let batches = batches(events, MAX_EVENTS)
        .into_iter()
        .map(|data| serde_json::to_string(&Body { data }).expect("serializing plain structs"))
        .collect();
    MetaExport {
        batches,
        exported,
        skipped,
        not_exported,
    }
}

fn event<'a>(
    c: &'a Conversion,
    settings: &'a MetaSettings,
    website: bool,
    window_start: i64,
    window_end: i64,
    skipped: &mut Skipped,
) -> Result<Event<'a>, Reason> {
    if let Some(reason) = held_back(c) {
        return Err(reason);
    }
    if c.ts_us < window_start || c.ts_us >= window_end {
        return Err(Reason::OutsideWindow);
    }
    let event_name = settings.event_name(&c.event);
    let currency_ok = non_blank(&c.currency).is_some_and(|k| k.len() == 3);
    if event_name == "Purchase" && !(c.value.is_some_and(|v| v >= 0.0) && currency_ok) {
        return Err(Reason::MissingValue);
    }
    let user_agent = non_blank(&c.user_agent);
    let source_url = non_blank(&c.event_source_url).or(non_blank(&settings.site_url));
    if website && user_agent.is_none() {
        return Err(Reason::MissingUserAgent);
    }
    if website && source_url.is_none() {
        return Err(Reason::MissingSourceUrl);
    }
    let em = hashed_emails(Platform::Meta, c, skipped);
    let ph = hashed_phones(Platform::Meta, c, skipped);
    // A pseudonymized user id (an email used as id) already is the SHA-256 of the id as read.
    let external_id: Vec<String> = non_blank(&c.user_id)
        .map(|u| match crate::read::privacy::pseudonym_hash(u) {
            Some(hex) => vec![hex.to_string()],
            None => vec![normalize::sha256_hex(u)],
        })
        .unwrap_or_default();
    let fbc = non_blank(&c.fbc).map(str::to_string).or_else(|| {
        c.fbclid
            .as_ref()
            .filter(|k| !k.id.trim().is_empty())
            .map(|k| format!("fb.1.{}.{}", k.at_us.div_euclid(1_000), k.id.trim()))
    });
    let fbp = non_blank(&c.fbp);
    let ip = non_blank(&c.ip);
    let has_key = !em.is_empty()
        || !ph.is_empty()
        || !external_id.is_empty()
        || fbc.is_some()
        || fbp.is_some()
        || (ip.is_some() && user_agent.is_some());
    if !has_key {
        return Err(Reason::NoMatchKey);
    }
    Ok(Event {
        event_name,
        event_time: c.ts_us.div_euclid(1_000_000),
        event_id: &c.event_id,
        action_source: &settings.action_source,
        event_source_url: source_url,
        user_data: UserData {
            em,
            ph,
            external_id,
            fbc,
            fbp,
            client_ip_address: ip,
            client_user_agent: user_agent,
        },
        custom_data: CustomData {
            value: c.value.filter(|v| v.is_finite()),
            currency: non_blank(&c.currency).map(str::to_ascii_uppercase),
            order_id: non_blank(&c.order_id),
        },
    })
}

#[derive(Serialize)]
struct Body<'a> {
    data: Vec<Event<'a>>,
}

#[derive(Serialize)]
struct Event<'a> {
    event_name: &'a str,
    event_time: i64,
    event_id: &'a str,
    action_source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_source_url: Option<&'a str>,
    user_data: UserData<'a>,
    #[serde(skip_serializing_if = "CustomData::is_empty")]
    custom_data: CustomData<'a>,
}

#[derive(Serialize)]
struct UserData<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    em: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ph: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_id: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fbc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fbp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_user_agent: Option<&'a str>,
}

#[derive(Serialize)]
struct CustomData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
}

impl CustomData<'_> {
    fn is_empty(&self) -> bool {
        self.value.is_none() && self.currency.is_none() && self.order_id.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{window_end_us, Click, Phone};

    /// 2026-11-21, the run date of the tests; its window ends at 2026-11-22T00:00:00Z.
    fn end() -> i64 {
        window_end_us(chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap())
    }

    /// 2026-11-21T10:00:00Z.
    const T0: i64 = 1_795_255_200_000_000;

    fn purchase(id: &str, ts_us: i64) -> Conversion {
        Conversion {
            event_id: id.into(),
            event: "purchase_completed".into(),
            ts_us,
            user_agent: Some("Mozilla/5.0".into()),
            event_source_url: Some("https://shop.example.com/thanks".into()),
            user_id: Some(format!("user-{id}")),
            value: Some(1.0),
            currency: Some("USD".into()),
            ..Conversion::default()
        }
    }

    fn two_conversions() -> Vec<Conversion> {
        let a = Conversion {
            value: Some(49.9),
            currency: Some("eur".into()),
            order_id: Some("order-1".into()),
            user_id: Some("u1".into()),
            emails: vec![
                "John_Smith@gmail.com".into(),
                " john_smith@GMAIL.com ".into(),
                "not-an-email".into(),
            ],
            phones: vec![Phone::new("(650)555-1212", Some("US"))],
            fbclid: Some(Click::new("AbC123", T0 - 3_600_000_000)),
            fbp: Some("fb.1.1795000000000.123456789".into()),
            ip: Some("203.0.113.7".into()),
            ad_user_data: Some(true),
            ..purchase("ev-a", T0)
        };
        let b = Conversion {
            event: "trial_started".into(),
            user_id: None,
            fbc: Some("fb.1.1795250000000.XyZ".into()),
            fbclid: Some(Click::new("ignored-when-fbc-is-set", T0)),
            event_source_url: None,
            value: None,
            currency: None,
            ..purchase("ev-b", T0 - 1_000_000)
        };
        vec![a, b]
    }

    #[test]
    fn golden_body() {
        let settings = MetaSettings {
            site_url: Some("https://www.example.com/".into()),
            ..MetaSettings::default()
        };
        let out = build(&two_conversions(), &settings, end());
        assert_eq!(out.exported, vec!["ev-b", "ev-a"]);
        assert_eq!(out.skipped.bad_email, 1);
        assert_eq!(out.skipped.conversions(), 0);
        assert_eq!(out.batches.len(), 1);
        let want = concat!(
            r#"{"data":["#,
            r#"{"event_name":"trial_started","event_time":1795255199,"event_id":"ev-b","#,
            r#""action_source":"website","event_source_url":"https://www.example.com/","#,
            r#""user_data":{"fbc":"fb.1.1795250000000.XyZ","client_user_agent":"Mozilla/5.0"}},"#,
            r#"{"event_name":"Purchase","event_time":1795255200,"event_id":"ev-a","#,
            r#""action_source":"website","event_source_url":"https://shop.example.com/thanks","#,
            r#""user_data":{"em":["62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"],"#,
            r#""ph":["e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"],"#,
            r#""external_id":["EXT_U1"],"#,
            r#""fbc":"fb.1.1795251600000.AbC123","fbp":"fb.1.1795000000000.123456789","#,
            r#""client_ip_address":"203.0.113.7","client_user_agent":"Mozilla/5.0"},"#,
            r#""custom_data":{"value":49.9,"currency":"EUR","order_id":"order-1"}}"#,
            r#"]}"#
        )
        .replace("EXT_U1", &normalize::sha256_hex("u1"));
        assert_eq!(out.batches[0], want);
        // Same input, any order: byte-identical output.
        let mut reversed = two_conversions();
        reversed.reverse();
        assert_eq!(build(&reversed, &settings, end()), out);
        // No raw email or phone anywhere.
        for raw in ["john_smith", "John_Smith", "650", "not-an-email"] {
            assert!(!out.batches[0].contains(raw), "{raw}");
        }
    }

    #[test]
    fn purchase_without_value_or_currency_is_held_back() {
        let no_value = Conversion {
            value: None,
            ..purchase("ev-1", T0)
        };
        let negative = Conversion {
            value: Some(-1.0),
            ..purchase("ev-2", T0)
        };
        let no_currency = Conversion {
            currency: None,
            ..purchase("ev-3", T0)
        };
        let other_event = Conversion {
            event: "trial_started".into(),
            value: None,
            ..purchase("ev-4", T0)
        };
        let settings = MetaSettings {
            site_url: Some("https://www.example.com/".into()),
            ..MetaSettings::default()
        };
        let out = build(
            &[no_value, negative, no_currency, other_event],
            &settings,
            end(),
        );
        assert_eq!(out.skipped.missing_value, 3);
        assert_eq!(out.exported, vec!["ev-4"]);
    }

    #[test]
    fn batches_hold_at_most_1000_events() {
        let convs: Vec<Conversion> = (0..2_001)
            .map(|i| purchase(&format!("ev-{i:05}"), T0 + i))
            .collect();
        let out = build(&convs, &MetaSettings::default(), end());
        assert_eq!(out.batches.len(), 3);
        let counts: Vec<usize> = out
            .batches
            .iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_str(b).unwrap();
                v["data"].as_array().unwrap().len()
            })
            .collect();
        assert_eq!(counts, vec![1_000, 1_000, 1]);
        assert_eq!(out.exported.len(), 2_001);
        let first: serde_json::Value = serde_json::from_str(&out.batches[1]).unwrap();
        assert_eq!(first["data"][0]["event_id"], "ev-01000");

        let exactly = build(&convs[..1_000], &MetaSettings::default(), end());
        assert_eq!(exactly.batches.len(), 1);
        assert!(build::<Conversion>(&[], &MetaSettings::default(), end())
            .batches
            .is_empty());
    }

    #[test]
    fn window_is_7_days_from_the_end_of_the_run_date() {
        let seven = end() - 7 * DAY_US;
        let convs = vec![
            purchase("inside-edge", seven),
            purchase("too-old", seven - 1),
            purchase("last-moment", end() - 1),
            purchase("future", end()),
        ];
        let out = build(&convs, &MetaSettings::default(), end());
        assert_eq!(out.exported, vec!["inside-edge", "last-moment"]);
        assert_eq!(out.skipped.outside_window, 2);
        // A conversion outside the window is left out before its phone is read (a nightly
        // run's history holds far more conversions than the window).
        let mut old = purchase("too-old", seven - 1);
        let shared = Phone::new("(650) 555-1212", Some("US"));
        old.phones = vec![shared.clone()];
        let out = build(&[old], &MetaSettings::default(), end());
        assert_eq!(out.skipped.outside_window, 1);
        assert!(!shared.is_read());

        // physical_store: 62 days, and no user agent needed.
        let store = MetaSettings {
            action_source: "physical_store".into(),
            ..MetaSettings::default()
        };
        let mut old = purchase("store-60d", end() - 60 * DAY_US);
        old.user_agent = None;
        let too_old = purchase("store-63d", end() - 63 * DAY_US);
        let out = build(&[old, too_old], &store, end());
        assert_eq!(out.exported, vec!["store-60d"]);
        assert_eq!(out.skipped.outside_window, 1);
        assert!(out.batches[0].contains(r#""action_source":"physical_store""#));
    }

    #[test]
    fn consent_and_oversized_are_held_back() {
        let mut refused = purchase("refused", T0);
        refused.ad_user_data = Some(false);
        let mut unknown = purchase("unknown", T0);
        unknown.ad_user_data = None;
        let mut granted = purchase("granted", T0);
        granted.ad_user_data = Some(true);
        let mut big = purchase("oversized", T0);
        big.oversized = true;
        big.ad_user_data = Some(false);
        let out = build(
            &[refused, unknown, granted, big],
            &MetaSettings::default(),
            end(),
        );
        assert_eq!(out.exported, vec!["granted", "unknown"]);
        assert_eq!(out.skipped.no_consent, 1);
        assert_eq!(out.skipped.oversized, 1);
    }

    #[test]
    fn website_events_need_a_user_agent_and_a_page() {
        let mut no_ua = purchase("no-ua", T0);
        no_ua.user_agent = Some("  ".into());
        let mut no_url = purchase("no-url", T0);
        no_url.event_source_url = None;
        let out = build(
            &[no_ua.clone(), no_url.clone()],
            &MetaSettings::default(),
            end(),
        );
        assert!(out.exported.is_empty());
        assert!(out.batches.is_empty());
        assert_eq!(out.skipped.missing_user_agent, 1);
        assert_eq!(out.skipped.missing_source_url, 1);

        // The job's site_url stands in for a missing page URL.
        let with_site = MetaSettings {
            site_url: Some("https://example.com".into()),
            ..MetaSettings::default()
        };
        let out = build(&[no_ua.clone(), no_url], &with_site, end());
        assert_eq!(out.exported, vec!["no-url"]);

        // Other action sources do not need a user agent.
        let app = MetaSettings {
            action_source: "app".into(),
            ..MetaSettings::default()
        };
        assert_eq!(build(&[no_ua], &app, end()).exported, vec!["no-ua"]);
    }

    #[test]
    fn no_match_key() {
        let mut bare = purchase("bare", T0);
        bare.user_id = None;
        bare.emails = vec!["broken".into()];
        bare.phones = vec![Phone::new("12", Some("US"))];
        // ip without user agent is no key; user agent alone is no key either.
        let out = build(&[bare.clone()], &MetaSettings::default(), end());
        assert_eq!(out.skipped.no_match_key, 1);
        assert_eq!(out.skipped.bad_email, 1);
        assert_eq!(out.skipped.bad_phone, 1);
        assert!(out.batches.is_empty());

        let mut with_ip = bare.clone();
        with_ip.ip = Some("198.51.100.1".into());
        assert_eq!(
            build(&[with_ip], &MetaSettings::default(), end()).exported,
            vec!["bare"]
        );
        let mut with_fbp = bare;
        with_fbp.fbp = Some("fb.1.1.2".into());
        assert_eq!(
            build(&[with_fbp], &MetaSettings::default(), end()).exported,
            vec!["bare"]
        );
    }

    #[test]
    fn identical_hashes_are_sent_once() {
        let mut c = purchase("dup", T0);
        c.emails = vec![
            "A@Example.com".into(),
            "a@example.com ".into(),
            sha256_upper("a@example.com"),
        ];
        c.phones = vec![
            Phone::new("+1 650 555 1212", None),
            Phone::new("(650) 555-1212", Some("US")),
        ];
        let out = build(&[c], &MetaSettings::default(), end());
        let v: serde_json::Value = serde_json::from_str(&out.batches[0]).unwrap();
        assert_eq!(v["data"][0]["user_data"]["em"].as_array().unwrap().len(), 1);
        assert_eq!(v["data"][0]["user_data"]["ph"].as_array().unwrap().len(), 1);
    }

    fn sha256_upper(s: &str) -> String {
        normalize::sha256_hex(s).to_ascii_uppercase()
    }

    #[test]
    fn settings_validate() {
        assert!(MetaSettings::default().validate().is_ok());
        let bad = MetaSettings {
            action_source: "web".into(),
            ..MetaSettings::default()
        };
        assert!(bad.validate().unwrap_err().contains("action_source"));
        let parsed: MetaSettings = toml::from_str(
            "action_source = \"physical_store\"\n[event_names]\norder_paid = \"Purchase\"\n",
        )
        .unwrap();
        assert_eq!(parsed.window_days(), 62);
        assert_eq!(parsed.event_name("order_paid"), "Purchase");
        assert!(toml::from_str::<MetaSettings>("pixel = 1").is_err());
    }
}
