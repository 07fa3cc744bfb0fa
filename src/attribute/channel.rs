//! Channel classification: GA4's default channel group over a touch's utm values, click ids
//! and referrer (contract §4).
//!
//! # Source and medium
//!
//! A touch's `source` / `medium` are its `utm_source` / `utm_medium` (trimmed, as written).
//! When both are absent:
//!
//! 1. a click id supplies them: `gclid`, `gbraid`, `wbraid` → `google` / `cpc`; `msclkid` →
//!    `bing` / `cpc`; `fbclid` → `facebook` / `paid_social`; `ttclid` → `tiktok` /
//!    `paid_social`; `li_fat_id` → `linkedin` / `paid_social`. When only one of the two utm
//!    values is present, the click id fills the other;
//! 2. else an external referrer supplies them (external: its registrable domain, from the public
//!    suffix list, differs from the landing page's, or there is no landing page — the rule of
//!    [`crate::stitch::touches::counting`]). A search engine listed in
//!    `data/channels/search_engines.txt` gives source = the engine (`google`, `bing`,
//!    `duckduckgo`, ...) and medium `organic`; any other site gives source = its host without
//!    `www.` (`l.facebook.com`, `news.ycombinator.com`, `example.org`: the source value GA4
//!    reports, and the form the GA4 source lists use) and medium `referral`;
//! 3. else a touch that still carries some utm value (`utm_campaign`, `utm_content`,
//!    `utm_term`) or an unknown extra key has no source and no medium (null);
//! 4. else the visit is direct: source `(direct)`, medium `(none)`.
//!
//! `campaign` is `utm_campaign`.
//!
//! # Channel
//!
//! A click id decides the channel (contract §4): a Google (`gclid`, `gbraid`, `wbraid`) or
//! Microsoft (`msclkid`) click id is `Paid Search`, a Meta (`fbclid`), TikTok (`ttclid`) or
//! LinkedIn (`li_fat_id`) click id `Paid Social`, whatever the utm values say (GA4 lets
//! auto-tagging win over manual tags the same way). Google and Microsoft click ids are checked
//! first. Every other touch goes through [`ga4_channel`]: GA4's ordered rules over
//! (source, medium, campaign), case-insensitive, first match wins — see that function.
//!
//! The source lists (`data/channels/{search,social,shopping,video}_sources.txt`) are Google's
//! source-category lists, embedded at build time.

use std::collections::HashSet;
use std::sync::OnceLock;

use polars::prelude::*;

use crate::codes::NONE;
use crate::error::{Error, Result};
use crate::stitch::gather;
use crate::stitch::touches::registrable_domain;

/// `Direct`: source `(direct)` and medium `(none)` or `(not set)`.
pub const DIRECT: &str = "Direct";
/// `Cross-network`: campaign name contains `cross-network`.
pub const CROSS_NETWORK: &str = "Cross-network";
/// `Paid Shopping`: shopping source or shopping campaign name, paid medium.
pub const PAID_SHOPPING: &str = "Paid Shopping";
/// `Paid Search`: search source, paid medium; or a Google / Microsoft click id.
pub const PAID_SEARCH: &str = "Paid Search";
/// `Paid Social`: social source, paid medium; or a Meta / TikTok / LinkedIn click id.
pub const PAID_SOCIAL: &str = "Paid Social";
/// `Paid Video`: video source, paid medium.
pub const PAID_VIDEO: &str = "Paid Video";
/// `Display`: medium `display`, `banner`, `expandable`, `interstitial` or `cpm`.
pub const DISPLAY: &str = "Display";
/// `Paid Other`: any other paid medium.
pub const PAID_OTHER: &str = "Paid Other";
/// `Organic Shopping`: shopping source or shopping campaign name.
pub const ORGANIC_SHOPPING: &str = "Organic Shopping";
/// `Organic Social`: social source or a social medium.
pub const ORGANIC_SOCIAL: &str = "Organic Social";
/// `Organic Video`: video source or a medium containing `video`.
pub const ORGANIC_VIDEO: &str = "Organic Video";
/// `Organic Search`: search source or medium `organic`.
pub const ORGANIC_SEARCH: &str = "Organic Search";
/// `Referral`: medium `referral`, `app` or `link`.
pub const REFERRAL: &str = "Referral";
/// `Email`: source or medium `email`, `e-mail`, `e_mail` or `e mail`.
pub const EMAIL: &str = "Email";
/// `Affiliates`: medium `affiliate`.
pub const AFFILIATES: &str = "Affiliates";
/// `Audio`: medium `audio`.
pub const AUDIO: &str = "Audio";
/// `SMS`: source or medium `sms`.
pub const SMS: &str = "SMS";
/// `Mobile Push Notifications`: medium ends with `push` or contains `mobile` or
/// `notification`, or source `firebase`.
pub const MOBILE_PUSH: &str = "Mobile Push Notifications";
/// `Unassigned`: no rule matched.
pub const UNASSIGNED: &str = "Unassigned";

/// Every channel, in the order GA4 evaluates its rules.
pub const CHANNELS: [&str; 19] = [
    DIRECT,
    CROSS_NETWORK,
    PAID_SHOPPING,
    PAID_SEARCH,
    PAID_SOCIAL,
    PAID_VIDEO,
    DISPLAY,
    PAID_OTHER,
    ORGANIC_SHOPPING,
    ORGANIC_SOCIAL,
    ORGANIC_VIDEO,
    ORGANIC_SEARCH,
    REFERRAL,
    EMAIL,
    AFFILIATES,
    AUDIO,
    SMS,
    MOBILE_PUSH,
    UNASSIGNED,
];

const SEARCH_SOURCES: &str = include_str!("../../data/channels/search_sources.txt");
const SOCIAL_SOURCES: &str = include_str!("../../data/channels/social_sources.txt");
const SHOPPING_SOURCES: &str = include_str!("../../data/channels/shopping_sources.txt");
const VIDEO_SOURCES: &str = include_str!("../../data/channels/video_sources.txt");
const SEARCH_ENGINES: &str = include_str!("../../data/channels/search_engines.txt");

/// One line of `search_engines.txt`.
#[derive(Debug)]
enum Engine {
    /// `name.*`: the engine's own registrable domain (bare or `www.`) under any suffix.
    Name(String),
    /// `*.domain`: the domain and its subdomains.
    Suffix(String),
    /// An exact host.
    Host(String),
}

#[derive(Debug)]
struct Lists {
    search: HashSet<String>,
    social: HashSet<String>,
    shopping: HashSet<String>,
    video: HashSet<String>,
    engines: Vec<Engine>,
}

/// Non-empty, non-comment lines of a data file, lower-cased.
fn entries(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_lowercase())
        .filter(|l| !l.is_empty())
}

fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| Lists {
        search: entries(SEARCH_SOURCES).collect(),
        social: entries(SOCIAL_SOURCES).collect(),
        shopping: entries(SHOPPING_SOURCES).collect(),
        video: entries(VIDEO_SOURCES).collect(),
        engines: entries(SEARCH_ENGINES)
            .map(|e| {
                if let Some(name) = e.strip_suffix(".*") {
                    Engine::Name(name.to_string())
                } else if let Some(domain) = e.strip_prefix("*.") {
                    Engine::Suffix(domain.to_string())
                } else {
                    Engine::Host(e)
                }
            })
            .collect(),
    })
}

/// The strings of one touch that decide its channel (borrowed from the touches frame).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TouchFields<'a> {
    /// `utm_source`.
    pub utm_source: Option<&'a str>,
    /// `utm_medium`.
    pub utm_medium: Option<&'a str>,
    /// `utm_campaign`.
    pub utm_campaign: Option<&'a str>,
    /// `utm_content` (only its presence matters).
    pub utm_content: Option<&'a str>,
    /// `utm_term` (only its presence matters).
    pub utm_term: Option<&'a str>,
    /// Google Ads click id.
    pub gclid: Option<&'a str>,
    /// Google Ads click id (iOS app-to-web).
    pub gbraid: Option<&'a str>,
    /// Google Ads click id (iOS web-to-app).
    pub wbraid: Option<&'a str>,
    /// Microsoft Advertising click id.
    pub msclkid: Option<&'a str>,
    /// Meta click id.
    pub fbclid: Option<&'a str>,
    /// TikTok click id.
    pub ttclid: Option<&'a str>,
    /// LinkedIn click id.
    pub li_fat_id: Option<&'a str>,
    /// The referring page's URL.
    pub referrer: Option<&'a str>,
    /// The landing page's URL.
    pub landing_url: Option<&'a str>,
    /// Whether an unknown extra attribution key is non-empty.
    pub has_extra_key: bool,
}

/// A touch's channel and the source / medium / campaign it was decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// One of [`CHANNELS`].
    pub channel: &'static str,
    /// Source (see the module docs); null when unknown.
    pub source: Option<String>,
    /// Medium; null when unknown.
    pub medium: Option<String>,
    /// `utm_campaign`; null when absent.
    pub campaign: Option<String>,
}

/// Which ad platform's click id a touch carries (first in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Click {
    Google,
    Microsoft,
    Meta,
    TikTok,
    LinkedIn,
}

impl Click {
    fn of(t: &TouchFields<'_>) -> Option<Click> {
        let has = |v: Option<&str>| clean(v).is_some();
        if has(t.gclid) || has(t.gbraid) || has(t.wbraid) {
            Some(Click::Google)
        } else if has(t.msclkid) {
            Some(Click::Microsoft)
        } else if has(t.fbclid) {
            Some(Click::Meta)
        } else if has(t.ttclid) {
            Some(Click::TikTok)
        } else if has(t.li_fat_id) {
            Some(Click::LinkedIn)
        } else {
            None
        }
    }

    fn source(self) -> &'static str {
        match self {
            Click::Google => "google",
            Click::Microsoft => "bing",
            Click::Meta => "facebook",
            Click::TikTok => "tiktok",
            Click::LinkedIn => "linkedin",
        }
    }

    fn medium(self) -> &'static str {
        match self {
            Click::Google | Click::Microsoft => "cpc",
            Click::Meta | Click::TikTok | Click::LinkedIn => "paid_social",
        }
    }

    fn channel(self) -> &'static str {
        match self {
            Click::Google | Click::Microsoft => PAID_SEARCH,
            Click::Meta | Click::TikTok | Click::LinkedIn => PAID_SOCIAL,
        }
    }
}

/// What classification depends on; many touches share one (classified once per distinct key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key<'a> {
    source: Option<&'a str>,
    medium: Option<&'a str>,
    campaign: Option<&'a str>,
    click: Option<Click>,
    /// Referrer and landing hosts, only when source, medium and click id are all absent.
    ref_host: Option<&'a str>,
    land_host: Option<&'a str>,
    /// Some other utm value or an extra key is present.
    keyed: bool,
}

fn clean(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// The host of a URL, exactly as `counting()`'s
/// `^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?([^/?#:]+)` extracts it.
pub fn url_host(url: &str) -> Option<&str> {
    let i = url.find("://")?;
    let mut scheme = url[..i].chars();
    let first_ok = scheme.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !scheme.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')) {
        return None;
    }
    let rest = &url[i + 3..];
    let host_of = |s: &str| -> Option<usize> {
        let end = s.find(['/', '?', '#', ':']).unwrap_or(s.len());
        (end > 0).then_some(end)
    };
    if let Some(j) = rest.find(['@', '/', '?', '#']) {
        if rest.as_bytes()[j] == b'@' {
            let after = &rest[j + 1..];
            if let Some(end) = host_of(after) {
                return Some(&after[..end]);
            }
        }
    }
    host_of(rest).map(|end| &rest[..end])
}

fn key_of<'a>(t: &TouchFields<'a>) -> Key<'a> {
    let source = clean(t.utm_source);
    let medium = clean(t.utm_medium);
    let campaign = clean(t.utm_campaign);
    let click = Click::of(t);
    let other_utm =
        campaign.is_some() || clean(t.utm_content).is_some() || clean(t.utm_term).is_some();
    let from_referrer = source.is_none() && medium.is_none() && click.is_none();
    Key {
        source,
        medium,
        campaign,
        click,
        ref_host: if from_referrer {
            t.referrer.and_then(url_host)
        } else {
            None
        },
        land_host: if from_referrer {
            t.landing_url.and_then(url_host)
        } else {
            None
        },
        keyed: other_utm || t.has_extra_key,
    }
}

/// `(source, medium)` of an external referrer host (lower case): a search engine's
/// `(engine, "organic")`, else `(host without www., "referral")`.
fn referrer_source(host: &str) -> (String, &'static str) {
    let lists = lists();
    let h = host.strip_prefix("www.").unwrap_or(host);
    let domain = registrable_domain(h);
    let label = domain.split('.').next().unwrap_or(&domain);
    let is_engine = lists.engines.iter().any(|e| match e {
        Engine::Name(n) => h == domain && label == n,
        Engine::Suffix(d) => h == d || h.strip_suffix(d.as_str()).is_some_and(|p| p.ends_with('.')),
        Engine::Host(x) => h == x,
    });
    if is_engine {
        let engine = if lists.search.contains(label) {
            label.to_string()
        } else {
            domain.clone()
        };
        (engine, "organic")
    } else {
        (h.to_string(), "referral")
    }
}

fn classify_key(k: &Key<'_>) -> Channel {
    let (source, medium): (Option<String>, Option<String>) =
        if k.source.is_none() && k.medium.is_none() {
            let external = k.ref_host.map(str::to_lowercase).filter(|r| {
                let land = k.land_host.map(str::to_lowercase);
                land.is_none_or(|l| registrable_domain(r) != registrable_domain(&l))
            });
            if let Some(c) = k.click {
                (Some(c.source().into()), Some(c.medium().into()))
            } else if let Some(r) = external {
                let (s, m) = referrer_source(&r);
                (Some(s), Some(m.into()))
            } else if k.keyed {
                (None, None)
            } else {
                (Some("(direct)".into()), Some("(none)".into()))
            }
        } else {
            (
                k.source
                    .map(String::from)
                    .or_else(|| k.click.map(|c| c.source().into())),
                k.medium
                    .map(String::from)
                    .or_else(|| k.click.map(|c| c.medium().into())),
            )
        };
    let channel = match k.click {
        Some(c) => c.channel(),
        None => ga4_channel(source.as_deref(), medium.as_deref(), k.campaign),
    };
    Channel {
        channel,
        source,
        medium,
        campaign: k.campaign.map(String::from),
    }
}

/// Classify one touch (see the module docs).
pub fn classify(t: &TouchFields<'_>) -> Channel {
    classify_key(&key_of(t))
}

/// `^(.*cp.*|ppc|retargeting|paid.*)$`
fn is_paid(m: &str) -> bool {
    m.contains("cp") || m == "ppc" || m == "retargeting" || m.starts_with("paid")
}

/// `^(.*(([^a-df-z]|^)shop|shopping).*)$`: `shopping` anywhere, or `shop` at the start or after
/// a character that is not a letter other than `e` (so `eshop` and `summer_shop`, not
/// `workshop`).
fn is_shop_campaign(c: &str) -> bool {
    if c.contains("shopping") {
        return true;
    }
    c.match_indices("shop").any(|(i, _)| {
        c[..i]
            .chars()
            .next_back()
            .is_none_or(|p| !(p.is_ascii_lowercase() && p != 'e'))
    })
}

/// Membership in a source list: the source itself, or (for a dotted source such as a referrer
/// host) its registrable domain, so `de.linkedin.com` counts as `linkedin.com`.
fn in_list(list: &HashSet<String>, s: &str) -> bool {
    !s.is_empty()
        && (list.contains(s) || (s.contains('.') && list.contains(&registrable_domain(s))))
}

/// GA4's default channel group rules over (source, medium, campaign), evaluated in order,
/// case-insensitively; the first that matches names the channel:
///
/// | channel | rule |
/// |---|---|
/// | Direct | source is `(direct)` and medium is `(not set)`, `(none)` or absent |
/// | Cross-network | campaign contains `cross-network` |
/// | Paid Shopping | (shopping source or campaign matches `^(.*(([^a-df-z]\|^)shop\|shopping).*)$`) and paid medium |
/// | Paid Search | search source and paid medium |
/// | Paid Social | social source and paid medium |
/// | Paid Video | video source and paid medium |
/// | Display | medium is `display`, `banner`, `expandable`, `interstitial` or `cpm` |
/// | Paid Other | paid medium |
/// | Organic Shopping | shopping source or shopping campaign |
/// | Organic Social | social source or medium is `social`, `social-network`, `social-media`, `sm`, `social network` or `social media` |
/// | Organic Video | video source or medium contains `video` |
/// | Organic Search | search source or medium is `organic` |
/// | Referral | medium is `referral`, `app` or `link` |
/// | Email | source or medium is `email`, `e-mail`, `e_mail` or `e mail` |
/// | Affiliates | medium is `affiliate` |
/// | Audio | medium is `audio` |
/// | SMS | source or medium is `sms` |
/// | Mobile Push Notifications | medium ends with `push` or contains `mobile` or `notification`, or source is `firebase` |
/// | Unassigned | otherwise |
///
/// Paid medium: `^(.*cp.*|ppc|retargeting|paid.*)$`. Search / social / shopping / video source:
/// listed in Google's source-category lists (`data/channels/*_sources.txt`); for social,
/// shopping and video, a dotted source (a host) also matches through its registrable domain.
pub fn ga4_channel(
    source: Option<&str>,
    medium: Option<&str>,
    campaign: Option<&str>,
) -> &'static str {
    let lists = lists();
    let s = source.map(|v| v.trim().to_lowercase()).unwrap_or_default();
    let m = medium.map(|v| v.trim().to_lowercase()).unwrap_or_default();
    let c = campaign
        .map(|v| v.trim().to_lowercase())
        .unwrap_or_default();
    let s = s.as_str();
    let m = m.as_str();

    let search = !s.is_empty() && lists.search.contains(s);
    let social = in_list(&lists.social, s);
    let shopping_source = in_list(&lists.shopping, s);
    let video = in_list(&lists.video, s);
    let shop_campaign = is_shop_campaign(&c);
    let paid = is_paid(m);
    let email = |v: &str| matches!(v, "email" | "e-mail" | "e_mail" | "e mail");

    if s == "(direct)" && matches!(m, "" | "(not set)" | "(none)") {
        DIRECT
    } else if c.contains("cross-network") {
        CROSS_NETWORK
    } else if (shopping_source || shop_campaign) && paid {
        PAID_SHOPPING
    } else if search && paid {
        PAID_SEARCH
    } else if social && paid {
        PAID_SOCIAL
    } else if video && paid {
        PAID_VIDEO
    } else if matches!(
        m,
        "display" | "banner" | "expandable" | "interstitial" | "cpm"
    ) {
        DISPLAY
    } else if paid {
        PAID_OTHER
    } else if shopping_source || shop_campaign {
        ORGANIC_SHOPPING
    } else if social
        || matches!(
            m,
            "social" | "social-network" | "social-media" | "sm" | "social network" | "social media"
        )
    {
        ORGANIC_SOCIAL
    } else if video || m.contains("video") {
        ORGANIC_VIDEO
    } else if search || m == "organic" {
        ORGANIC_SEARCH
    } else if matches!(m, "referral" | "app" | "link") {
        REFERRAL
    } else if email(s) || email(m) {
        EMAIL
    } else if m == "affiliate" {
        AFFILIATES
    } else if m == "audio" {
        AUDIO
    } else if s == "sms" || m == "sms" {
        SMS
    } else if m.ends_with("push")
        || m.contains("mobile")
        || m.contains("notification")
        || s == "firebase"
    {
        MOBILE_PUSH
    } else {
        UNASSIGNED
    }
}

/// The classification of every touch: each touch's class, an index into the distinct
/// classes' `channel`, `source`, `medium` and `campaign`. A touch holds 4 bytes; four string
/// columns held 64 bytes of views per touch (about 200 MB at 10M events), from identity to the
/// end of attribution.
#[derive(Debug, Clone, Default)]
pub struct TouchChannels {
    /// One row per distinct class: String columns `channel` (never null), `source`, `medium`,
    /// `campaign`.
    pub classes: DataFrame,
    /// Each touch's row in `classes`.
    pub of_touch: Vec<u32>,
}

impl TouchChannels {
    /// Number of touches classified.
    pub fn len(&self) -> usize {
        self.of_touch.len()
    }

    /// Whether no touch is classified.
    pub fn is_empty(&self) -> bool {
        self.of_touch.is_empty()
    }

    /// Column `name` (`channel`, `source`, `medium` or `campaign`) of the classes: touch `r`'s
    /// value is `column.get(of_touch[r])`.
    pub fn class_column(&self, name: &str) -> Result<&StringChunked> {
        Ok(self.classes.column(name)?.str()?)
    }

    /// The classification of touches `rows`, in their order: columns `channel`, `source`,
    /// `medium`, `campaign`; a row of [`NONE`](crate::identity::union_find::NONE) gives nulls.
    pub fn rows(&self, rows: &[u32]) -> Result<DataFrame> {
        let at: Vec<u32> = rows
            .iter()
            .map(|&r| self.of_touch.get(r as usize).copied().unwrap_or(NONE))
            .collect();
        let columns = ["channel", "source", "medium", "campaign"]
            .into_iter()
            .map(|name| {
                let s = self.classes.column(name)?.as_materialized_series();
                Ok(gather(s, &at, name)?.into_column())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DataFrame::new(rows.len(), columns)?)
    }

    /// The classification of every touch, one row per touch ([`TouchChannels::rows`] of all).
    pub fn frame(&self) -> Result<DataFrame> {
        self.rows(&(0..self.len() as u32).collect::<Vec<_>>())
    }

    /// `other`'s touches added after these (its classes after these classes).
    pub fn append(&mut self, other: TouchChannels) -> Result<()> {
        if self.classes.width() == 0 {
            *self = other;
            return Ok(());
        }
        let offset = self.classes.height() as u32;
        self.classes.vstack_mut(&other.classes)?;
        self.of_touch
            .extend(other.of_touch.into_iter().map(|c| c + offset));
        Ok(())
    }
}

/// Classify every touch of a touches frame (contract columns, optional ones may be missing;
/// `extra_keys` are the unknown attribution-key columns), in the frame's row order.
///
/// Every touch is classified, counting or not (a non-counting touch is `Direct`); distinct
/// combinations of the deciding values are classified once.
pub fn classify_touches(touches: &DataFrame, extra_keys: &[String]) -> Result<TouchChannels> {
    let height = touches.height();
    let col = |name: &str| -> Result<Option<&StringChunked>> {
        match touches.column(name) {
            Ok(c) => Ok(Some(c.str()?)),
            Err(_) => Ok(None),
        }
    };
    fn get(ca: Option<&StringChunked>, i: usize) -> Option<&str> {
        ca.and_then(|ca| ca.get(i))
    }
    let [utm_source, utm_medium, utm_campaign, utm_content, utm_term] = [
        col("utm_source")?,
        col("utm_medium")?,
        col("utm_campaign")?,
        col("utm_content")?,
        col("utm_term")?,
    ];
    let [gclid, gbraid, wbraid, msclkid, fbclid, ttclid, li_fat_id] = [
        col("gclid")?,
        col("gbraid")?,
        col("wbraid")?,
        col("msclkid")?,
        col("fbclid")?,
        col("ttclid")?,
        col("li_fat_id")?,
    ];
    let referrer = col("referrer")?;
    let landing_url = col("landing_url")?;
    let mut extras = Vec::with_capacity(extra_keys.len());
    for k in extra_keys {
        extras.push(
            col(k)?.ok_or_else(|| {
                Error::Internal(format!("touches have no extra key column `{k}`"))
            })?,
        );
    }

    let mut seen: PlHashMap<Key<'_>, u32> = PlHashMap::default();
    let mut classes: Vec<Channel> = Vec::new();
    let mut idx: Vec<u32> = Vec::with_capacity(height);
    for i in 0..height {
        let t = TouchFields {
            utm_source: get(utm_source, i),
            utm_medium: get(utm_medium, i),
            utm_campaign: get(utm_campaign, i),
            utm_content: get(utm_content, i),
            utm_term: get(utm_term, i),
            gclid: get(gclid, i),
            gbraid: get(gbraid, i),
            wbraid: get(wbraid, i),
            msclkid: get(msclkid, i),
            fbclid: get(fbclid, i),
            ttclid: get(ttclid, i),
            li_fat_id: get(li_fat_id, i),
            referrer: get(referrer, i),
            landing_url: get(landing_url, i),
            has_extra_key: extras.iter().any(|ca| clean(ca.get(i)).is_some()),
        };
        let key = key_of(&t);
        let n = classes.len() as u32;
        let k = *seen.entry(key).or_insert_with_key(|key| {
            classes.push(classify_key(key));
            n
        });
        idx.push(k);
    }
    let column = |name: &str, f: fn(&Channel) -> Option<&str>| -> Column {
        let values: Vec<Option<&str>> = classes.iter().map(f).collect();
        Column::new(name.into(), values)
    };
    let classes = DataFrame::new(
        classes.len(),
        vec![
            column("channel", |c| Some(c.channel)),
            column("source", |c| c.source.as_deref()),
            column("medium", |c| c.medium.as_deref()),
            column("campaign", |c| c.campaign.as_deref()),
        ],
    )?;
    Ok(TouchChannels {
        classes,
        of_touch: idx,
    })
}

/// Columns `<prefix>channel`, `<prefix>source`, `<prefix>medium`, `<prefix>campaign` holding
/// the classification of touches `rows` of `classified` (the output of [`classify_touches`]);
/// a row of [`NONE`](crate::identity::union_find::NONE) gives nulls.
///
/// For `user_attribution`: `channel_columns(&classified, &first_touch_rows, "first_touch_")`
/// with the person's first counting touch row per user.
pub fn channel_columns(
    classified: &TouchChannels,
    rows: &[u32],
    prefix: &str,
) -> Result<Vec<Column>> {
    Ok(classified
        .rows(rows)?
        .into_columns()
        .into_iter()
        .map(|c| {
            let name = format!("{prefix}{}", c.name());
            c.with_name(name.into())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::union_find::NONE;

    fn utm<'a>(source: &'a str, medium: &'a str, campaign: &'a str) -> TouchFields<'a> {
        let opt = |v: &'a str| (!v.is_empty()).then_some(v);
        TouchFields {
            utm_source: opt(source),
            utm_medium: opt(medium),
            utm_campaign: opt(campaign),
            landing_url: Some("https://www.example.com/landing"),
            ..Default::default()
        }
    }

    fn referred(referrer: &str) -> TouchFields<'_> {
        TouchFields {
            referrer: Some(referrer),
            landing_url: Some("https://www.example.com/pricing?x=1"),
            ..Default::default()
        }
    }

    #[test]
    fn data_files_are_loaded() {
        let l = lists();
        assert!(l.search.contains("google") && l.search.contains("duckduckgo"));
        assert!(l.social.contains("facebook") && l.social.contains("l.facebook.com"));
        assert!(l.shopping.contains("google shopping") && l.shopping.contains("igshopping"));
        assert!(l.video.contains("youtube") && l.video.contains("m.youtube.com"));
        assert!(l.search.len() > 100 && l.social.len() > 500);
        assert!(l.shopping.len() > 40 && l.video.len() > 40);
        assert!(!l.engines.is_empty());
        for list in [&l.search, &l.social, &l.shopping, &l.video] {
            assert!(list
                .iter()
                .all(|s| !s.contains('#') && s == &s.trim().to_lowercase()));
        }
    }

    #[test]
    fn ga4_rules_in_order() {
        // (source, medium, campaign, channel)
        let cases: &[(&str, &str, &str, &str)] = &[
            ("(direct)", "(none)", "", DIRECT),
            ("(direct)", "(not set)", "", DIRECT),
            ("(direct)", "", "", DIRECT),
            ("(direct)", "email", "", EMAIL),
            ("google", "cpc", "pmax_cross-network_q4", CROSS_NETWORK),
            ("", "", "Cross-Network brand", CROSS_NETWORK),
            ("google", "cpc", "summer_shop", PAID_SHOPPING),
            ("google", "cpc", "Shopping - all products", PAID_SHOPPING),
            ("newsletter", "paid", "eshop", PAID_SHOPPING),
            ("amazon", "ppc", "", PAID_SHOPPING),
            ("Google Shopping", "cpc", "", PAID_SHOPPING),
            ("google", "cpc", "workshop_signup", PAID_SEARCH),
            ("google", "cpc", "", PAID_SEARCH),
            ("Google", "CPC", "", PAID_SEARCH),
            ("bing", "ppc", "", PAID_SEARCH),
            ("duckduckgo", "paid_search", "", PAID_SEARCH),
            ("google", "retargeting", "", PAID_SEARCH),
            ("google", "cpm", "", PAID_SEARCH),
            ("facebook", "cpc", "", PAID_SOCIAL),
            ("facebook", "paid_social", "", PAID_SOCIAL),
            ("linkedin", "paid", "", PAID_SOCIAL),
            ("ig", "cpc", "", PAID_SOCIAL),
            ("youtube", "cpv", "", PAID_VIDEO),
            ("youtube", "paid", "", PAID_VIDEO),
            ("partner-network", "display", "", DISPLAY),
            ("partner-network", "banner", "", DISPLAY),
            ("partner-network", "expandable", "", DISPLAY),
            ("partner-network", "interstitial", "", DISPLAY),
            ("partner-network", "cpm", "", DISPLAY),
            ("partner-network", "cpc", "", PAID_OTHER),
            ("partner-network", "ppc", "", PAID_OTHER),
            ("partner-network", "paid_whatever", "", PAID_OTHER),
            ("partner-network", "retargeting", "", PAID_OTHER),
            ("partner-network", "pc", "", UNASSIGNED),
            ("partner-network", "prepaid", "", UNASSIGNED),
            ("ebay", "", "", ORGANIC_SHOPPING),
            ("newsletter", "", "shop_launch", ORGANIC_SHOPPING),
            (
                "newsletter",
                "email",
                "back-to-school shopping",
                ORGANIC_SHOPPING,
            ),
            ("newsletter", "email", "workshop", EMAIL),
            ("facebook", "", "", ORGANIC_SOCIAL),
            ("l.facebook.com", "referral", "", ORGANIC_SOCIAL),
            ("de.linkedin.com", "referral", "", ORGANIC_SOCIAL),
            ("myblog", "social", "", ORGANIC_SOCIAL),
            ("myblog", "social-network", "", ORGANIC_SOCIAL),
            ("myblog", "social media", "", ORGANIC_SOCIAL),
            ("myblog", "sm", "", ORGANIC_SOCIAL),
            ("youtube", "", "", ORGANIC_VIDEO),
            ("m.youtube.com", "referral", "", ORGANIC_VIDEO),
            ("myblog", "video_embed", "", ORGANIC_VIDEO),
            ("google", "organic", "", ORGANIC_SEARCH),
            ("duckduckgo", "", "", ORGANIC_SEARCH),
            ("some-engine", "organic", "", ORGANIC_SEARCH),
            ("accounts.google.com", "referral", "", REFERRAL),
            ("example.org", "referral", "", REFERRAL),
            ("partner", "app", "", REFERRAL),
            ("partner", "link", "", REFERRAL),
            ("newsletter", "email", "", EMAIL),
            ("newsletter", "Email", "", EMAIL),
            ("newsletter", "EMAIL", "", EMAIL),
            ("newsletter", "e-mail", "", EMAIL),
            ("newsletter", "e_mail", "", EMAIL),
            ("newsletter", "e mail", "", EMAIL),
            ("e-mail", "", "", EMAIL),
            ("newsletter", "emails", "", UNASSIGNED),
            ("partner", "affiliate", "", AFFILIATES),
            ("spotify", "audio", "", AUDIO),
            ("sms", "", "", SMS),
            ("twilio", "sms", "", SMS),
            ("app", "web-push", "", MOBILE_PUSH),
            ("app", "push", "", MOBILE_PUSH),
            ("app", "mobile", "", MOBILE_PUSH),
            ("app", "in_app_notification", "", MOBILE_PUSH),
            ("firebase", "", "", MOBILE_PUSH),
            ("partner", "", "", UNASSIGNED),
            ("", "", "", UNASSIGNED),
            ("", "banana", "", UNASSIGNED),
        ];
        for &(s, m, c, want) in cases {
            let opt = |v: &'static str| (!v.is_empty()).then_some(v);
            assert_eq!(
                ga4_channel(opt(s), opt(m), opt(c)),
                want,
                "source={s:?} medium={m:?} campaign={c:?}"
            );
        }
    }

    #[test]
    fn paid_medium_pattern() {
        for m in [
            "cpc",
            "cpm",
            "cpv",
            "cpa",
            "xcpx",
            "ppc",
            "retargeting",
            "paid",
            "paid_social",
            "paidsearch",
        ] {
            assert!(is_paid(m), "{m}");
        }
        for m in [
            "pc", "ppcx", "pp", "retarget", "prepaid", "unpaid", "c p", "organic",
        ] {
            assert!(!is_paid(m), "{m}");
        }
    }

    #[test]
    fn shop_campaign_pattern() {
        for c in [
            "shop",
            "shopping",
            "eshop",
            "summer_shop",
            "summer shop",
            "1shop",
            "shop-now",
            "workshopping",
        ] {
            assert!(is_shop_campaign(c), "{c}");
        }
        for c in ["workshop", "bishop", "photoshop", "", "sho p"] {
            assert!(!is_shop_campaign(c), "{c}");
        }
    }

    #[test]
    fn utm_touches() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("google", "cpc", "", PAID_SEARCH),
            ("google", "ppc", "", PAID_SEARCH),
            ("google", "paid_search", "", PAID_SEARCH),
            ("facebook", "paid_social", "spring", PAID_SOCIAL),
            ("google", "cpc", "shopping_feed", PAID_SHOPPING),
            ("newsletter", "e-mail", "", EMAIL),
            ("newsletter", "email", "", EMAIL),
            ("Newsletter", "Email", "", EMAIL),
            ("partner", "affiliate", "", AFFILIATES),
        ];
        for &(s, m, c, want) in cases {
            let got = classify(&utm(s, m, c));
            assert_eq!(got.channel, want, "{s}/{m}/{c}");
            assert_eq!(got.source.as_deref(), Some(s));
            assert_eq!(got.medium.as_deref(), Some(m));
            assert_eq!(got.campaign.as_deref(), (!c.is_empty()).then_some(c));
        }
        // Values are trimmed; blank is absent.
        let got = classify(&utm("  google ", " cpc ", "   "));
        assert_eq!(got.channel, PAID_SEARCH);
        assert_eq!(got.source.as_deref(), Some("google"));
        assert_eq!(got.medium.as_deref(), Some("cpc"));
        assert_eq!(got.campaign, None);
        // utm wins over the referrer.
        let t = TouchFields {
            referrer: Some("https://www.google.com/"),
            ..utm("newsletter", "email", "")
        };
        assert_eq!(classify(&t).channel, EMAIL);
    }

    #[test]
    fn referrer_only_touches() {
        // (referrer, channel, source, medium)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "https://www.google.com/",
                ORGANIC_SEARCH,
                "google",
                "organic",
            ),
            (
                "https://www.google.co.uk/search?q=x",
                ORGANIC_SEARCH,
                "google",
                "organic",
            ),
            ("https://google.de", ORGANIC_SEARCH, "google", "organic"),
            (
                "https://duckduckgo.com/",
                ORGANIC_SEARCH,
                "duckduckgo",
                "organic",
            ),
            (
                "https://www.bing.com/search?q=lakestitch",
                ORGANIC_SEARCH,
                "bing",
                "organic",
            ),
            ("https://cn.bing.com/", ORGANIC_SEARCH, "bing", "organic"),
            (
                "https://de.search.yahoo.com/",
                ORGANIC_SEARCH,
                "yahoo",
                "organic",
            ),
            (
                "https://www.ecosia.org/search?q=x",
                ORGANIC_SEARCH,
                "ecosia.org",
                "organic",
            ),
            (
                "HTTPS://WWW.GOOGLE.COM/",
                ORGANIC_SEARCH,
                "google",
                "organic",
            ),
            (
                "https://accounts.google.com/o/oauth2",
                REFERRAL,
                "accounts.google.com",
                "referral",
            ),
            (
                "https://partner.example.org/blog/post",
                REFERRAL,
                "partner.example.org",
                "referral",
            ),
            (
                "https://www.news.co.uk/a",
                REFERRAL,
                "news.co.uk",
                "referral",
            ),
            (
                "https://l.facebook.com/l.php?u=x",
                ORGANIC_SOCIAL,
                "l.facebook.com",
                "referral",
            ),
            ("https://t.co/abc", ORGANIC_SOCIAL, "t.co", "referral"),
            (
                "https://www.reddit.com/r/rust",
                ORGANIC_SOCIAL,
                "reddit.com",
                "referral",
            ),
            (
                "https://m.youtube.com/watch?v=1",
                ORGANIC_VIDEO,
                "m.youtube.com",
                "referral",
            ),
            (
                "https://www.amazon.com/dp/1",
                ORGANIC_SHOPPING,
                "amazon.com",
                "referral",
            ),
            (
                "https://mail.google.com/mail/u/0/",
                ORGANIC_SEARCH,
                "mail.google.com",
                "referral",
            ),
        ];
        for &(r, want, source, medium) in cases {
            let got = classify(&referred(r));
            assert_eq!(got.channel, want, "{r}");
            assert_eq!(got.source.as_deref(), Some(source), "{r}");
            assert_eq!(got.medium.as_deref(), Some(medium), "{r}");
            assert_eq!(got.campaign, None);
        }
        // No landing page: any referrer is external.
        let t = TouchFields {
            referrer: Some("https://duckduckgo.com/"),
            ..Default::default()
        };
        assert_eq!(classify(&t).channel, ORGANIC_SEARCH);
    }

    #[test]
    fn internal_and_direct_visits() {
        let direct = Channel {
            channel: DIRECT,
            source: Some("(direct)".into()),
            medium: Some("(none)".into()),
            campaign: None,
        };
        for r in [
            "https://app.example.com/dashboard",
            "https://www.example.com/other",
            "https://EXAMPLE.com",
            "not a url",
            "",
        ] {
            assert_eq!(classify(&referred(r)), direct, "{r:?}");
        }
        assert_eq!(classify(&TouchFields::default()), direct);
        // Blank click ids and utm values are absent.
        let t = TouchFields {
            gclid: Some("  "),
            utm_source: Some(""),
            ..Default::default()
        };
        assert_eq!(classify(&t), direct);
    }

    #[test]
    fn click_id_extensions() {
        // (field setter, channel, default source, default medium)
        type Set = fn(&mut TouchFields<'static>);
        let cases: &[(Set, &str, &str, &str)] = &[
            (|t| t.gclid = Some("Cj0KCQ"), PAID_SEARCH, "google", "cpc"),
            (|t| t.gbraid = Some("0AAAA"), PAID_SEARCH, "google", "cpc"),
            (|t| t.wbraid = Some("CkQK"), PAID_SEARCH, "google", "cpc"),
            (|t| t.msclkid = Some("abc"), PAID_SEARCH, "bing", "cpc"),
            (
                |t| t.fbclid = Some("IwAR"),
                PAID_SOCIAL,
                "facebook",
                "paid_social",
            ),
            (
                |t| t.ttclid = Some("E.C.P"),
                PAID_SOCIAL,
                "tiktok",
                "paid_social",
            ),
            (
                |t| t.li_fat_id = Some("1234"),
                PAID_SOCIAL,
                "linkedin",
                "paid_social",
            ),
        ];
        for (set, want, source, medium) in cases {
            // No utm: source / medium from the click id, even with an organic referrer.
            let mut t = referred("https://www.google.com/");
            set(&mut t);
            let got = classify(&t);
            assert_eq!(got.channel, *want);
            assert_eq!(got.source.as_deref(), Some(*source));
            assert_eq!(got.medium.as_deref(), Some(*medium));
            // With utm: the click id still decides the channel, utm values are kept.
            let mut t = utm("newsletter", "email", "spring");
            set(&mut t);
            let got = classify(&t);
            assert_eq!(got.channel, *want);
            assert_eq!(got.source.as_deref(), Some("newsletter"));
            assert_eq!(got.medium.as_deref(), Some("email"));
            assert_eq!(got.campaign.as_deref(), Some("spring"));
            // Only one utm value: the click id fills the other.
            let mut t = utm("", "", "spring");
            t.utm_source = Some("partner");
            set(&mut t);
            assert_eq!(classify(&t).medium.as_deref(), Some(*medium));
        }
        // Google before Meta.
        let t = TouchFields {
            gclid: Some("g"),
            fbclid: Some("f"),
            ..Default::default()
        };
        assert_eq!(classify(&t).channel, PAID_SEARCH);
    }

    #[test]
    fn unknown_keys_and_bare_utm() {
        let t = TouchFields {
            has_extra_key: true,
            landing_url: Some("https://www.example.com/"),
            ..Default::default()
        };
        let got = classify(&t);
        assert_eq!(got.channel, UNASSIGNED);
        assert_eq!((got.source, got.medium), (None, None));
        // An extra key with an external referrer: the referrer decides.
        let t = TouchFields {
            has_extra_key: true,
            ..referred("https://duckduckgo.com/")
        };
        assert_eq!(classify(&t).channel, ORGANIC_SEARCH);
        // Only utm_content / utm_term: counts, no source or medium.
        let t = TouchFields {
            utm_content: Some("hero"),
            ..Default::default()
        };
        assert_eq!(classify(&t).channel, UNASSIGNED);
        let t = TouchFields {
            utm_term: Some("boots"),
            ..referred("https://app.example.com/")
        };
        assert_eq!(classify(&t).channel, UNASSIGNED);
        // Only a campaign: referrer supplies source / medium, the campaign still counts.
        let t = TouchFields {
            utm_campaign: Some("spring_shop"),
            ..referred("https://partner.example.org/")
        };
        let got = classify(&t);
        assert_eq!(got.channel, ORGANIC_SHOPPING);
        assert_eq!(got.medium.as_deref(), Some("referral"));
    }

    #[test]
    fn hosts_like_counting() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://www.google.com/search?q=1", Some("www.google.com")),
            ("http://user:pw@Example.com:8080/x", Some("Example.com")),
            ("https://example.com?x=1", Some("example.com")),
            ("https://example.com#top", Some("example.com")),
            (
                "android-app://com.google.android.gm/",
                Some("com.google.android.gm"),
            ),
            ("//example.com/x", None),
            ("example.com/x", None),
            ("1http://example.com", None),
            (" https://example.com", None),
            ("https:///path", None),
            ("http://user@/x", Some("user@")),
        ];
        for &(url, want) in cases {
            assert_eq!(url_host(url), want, "{url}");
        }
    }

    #[test]
    fn hosts_match_the_counting_regex() {
        // The expression `counting()` extracts hosts with.
        use crate::stitch::touches::HOST_RE;
        let urls = [
            "https://www.google.com/search?q=1",
            "http://user:pw@Example.com:8080/x",
            "https://example.com?x=1",
            "https://example.com#top",
            "android-app://com.google.android.gm/",
            "//example.com/x",
            "example.com/x",
            "1http://example.com",
            " https://example.com",
            "https:///path",
            "http://user@/x",
            "http://a@b@c.com/",
            "ftp://files.example.co.uk:21",
            "https://xn--bcher-kva.example/",
            "mailto:someone@example.com",
            "",
        ];
        let df = DataFrame::new(urls.len(), vec![Column::new("u".into(), urls.to_vec())]).unwrap();
        let hosts = df
            .lazy()
            .select([col("u").str().extract(lit(HOST_RE), 1)])
            .collect()
            .unwrap();
        let want: Vec<Option<&str>> = hosts.column("u").unwrap().str().unwrap().iter().collect();
        let got: Vec<Option<&str>> = urls.iter().map(|u| url_host(u)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn direct_exactly_when_not_counting() {
        // Classification and `counting()` agree on which touches are direct.
        let rows: &[[Option<&str>; 5]] = &[
            // utm_source, gclid, referrer, landing_url, my_key
            [None, None, None, None, None],
            [Some("google"), None, None, None, None],
            [Some(" "), None, None, None, None],
            [None, Some("g"), None, None, None],
            [None, Some(""), None, None, None],
            [
                None,
                None,
                Some("https://www.bing.com/"),
                Some("https://example.com/"),
                None,
            ],
            [
                None,
                None,
                Some("https://app.example.com/"),
                Some("https://www.example.com/"),
                None,
            ],
            [
                None,
                None,
                Some("https://shop.example.co.uk/"),
                Some("https://example.co.uk/"),
                None,
            ],
            [
                None,
                None,
                Some("https://a.co.uk/"),
                Some("https://b.co.uk/"),
                None,
            ],
            [None, None, Some("https://partner.org/"), None, None],
            [
                None,
                None,
                Some("nonsense"),
                Some("https://example.com/"),
                None,
            ],
            [
                None,
                None,
                Some("HTTPS://WWW.EXAMPLE.COM/"),
                Some("https://example.com/"),
                None,
            ],
            [None, None, None, Some("https://example.com/"), Some("k")],
            [None, None, None, None, Some("  ")],
        ];
        let col_of = |i: usize, name: &str| {
            Column::new(name.into(), rows.iter().map(|r| r[i]).collect::<Vec<_>>())
        };
        let mut cols = vec![
            col_of(0, "utm_source"),
            col_of(1, "gclid"),
            col_of(2, "referrer"),
            col_of(3, "landing_url"),
            col_of(4, "my_key"),
        ];
        for name in crate::read::schema::CLICK_IDS
            .iter()
            .chain(crate::read::schema::UTMS.iter())
            .filter(|n| !matches!(**n, "utm_source" | "gclid"))
        {
            cols.push(Column::full_null(
                (*name).into(),
                rows.len(),
                &DataType::String,
            ));
        }
        let df = DataFrame::new(rows.len(), cols).unwrap();
        let keys = ["my_key".to_string()];
        let (coded, text) = crate::read::TouchText::encode(&df, &keys).unwrap();
        let counts = crate::stitch::touches::counting(&coded, &text, &keys).unwrap();
        let out = classify_touches(&df, &keys).unwrap().frame().unwrap();
        let ch = out.column("channel").unwrap().str().unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(
                ch.get(i) == Some(DIRECT),
                counts.get(i) != Some(true),
                "row {i}: {row:?} → {:?}",
                ch.get(i)
            );
        }
    }

    fn touches_frame() -> DataFrame {
        let s = |name: &str, v: [Option<&str>; 5]| Column::new(name.into(), v.to_vec());
        df_from(vec![
            s(
                "utm_source",
                [Some("google"), None, None, None, Some("google")],
            ),
            s("utm_medium", [Some("cpc"), None, None, None, Some("cpc")]),
            s(
                "utm_campaign",
                [Some("brand"), None, None, None, Some("brand")],
            ),
            s("fbclid", [None, Some("IwAR"), None, None, None]),
            s(
                "referrer",
                [None, None, Some("https://www.bing.com/"), None, None],
            ),
            s(
                "landing_url",
                [None, None, Some("https://example.com/"), None, None],
            ),
            s("my_key", [None, None, None, Some("k1"), None]),
        ])
    }

    fn df_from(cols: Vec<Column>) -> DataFrame {
        let h = cols[0].len();
        DataFrame::new(h, cols).unwrap()
    }

    #[test]
    fn classify_touches_frame() {
        let df = touches_frame();
        let classified = classify_touches(&df, &["my_key".to_string()]).unwrap();
        assert_eq!(classified.len(), 5);
        assert_eq!(
            classified.classes.height(),
            4,
            "the two paid-search touches: one class"
        );
        let out = classified.frame().unwrap();
        assert_eq!(
            out.get_column_names()
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>(),
            ["channel", "source", "medium", "campaign"]
        );
        let ch: Vec<Option<&str>> = out
            .column("channel")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            ch,
            [
                Some(PAID_SEARCH),
                Some(PAID_SOCIAL),
                Some(ORGANIC_SEARCH),
                Some(UNASSIGNED),
                Some(PAID_SEARCH)
            ]
        );
        let src: Vec<Option<&str>> = out
            .column("source")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            src,
            [
                Some("google"),
                Some("facebook"),
                Some("bing"),
                None,
                Some("google")
            ]
        );
        let camp: Vec<Option<&str>> = out
            .column("campaign")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(camp, [Some("brand"), None, None, None, Some("brand")]);
        // Without the extra key the unknown-key row is direct.
        let out = classify_touches(&df, &[]).unwrap().frame().unwrap();
        assert_eq!(
            out.column("channel").unwrap().str().unwrap().get(3),
            Some(DIRECT)
        );
        // A missing extra key column is a bug of the caller.
        assert!(classify_touches(&df, &["nope".to_string()]).is_err());
    }

    /// The run classifies the touches a part at a time: the parts' classifications appended
    /// give every touch the classification of the whole.
    #[test]
    fn parts_appended_classify_as_the_whole() {
        let df = touches_frame();
        let keys = ["my_key".to_string()];
        let whole = classify_touches(&df, &keys).unwrap();
        let mut parts = TouchChannels::default();
        for (start, len) in [(0, 2), (2, 0), (2, 3)] {
            parts
                .append(classify_touches(&df.slice(start, len), &keys).unwrap())
                .unwrap();
        }
        assert_eq!(parts.len(), 5);
        assert!(parts
            .frame()
            .unwrap()
            .equals_missing(&whole.frame().unwrap()));
        let picked = parts.rows(&[4, NONE, 1]).unwrap();
        assert!(picked.equals_missing(&whole.rows(&[4, NONE, 1]).unwrap()));
        let channel = picked.column("channel").unwrap().str().unwrap();
        assert_eq!(channel.get(0), Some(PAID_SEARCH));
        assert_eq!(channel.get(1), None);
    }

    #[test]
    fn channel_columns_gather_with_nulls() {
        let out = classify_touches(&touches_frame(), &["my_key".to_string()]).unwrap();
        let cols = channel_columns(&out, &[2, NONE, 0], "first_touch_").unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "first_touch_channel",
                "first_touch_source",
                "first_touch_medium",
                "first_touch_campaign"
            ]
        );
        let ch: Vec<Option<&str>> = cols[0].str().unwrap().iter().collect();
        assert_eq!(ch, [Some(ORGANIC_SEARCH), None, Some(PAID_SEARCH)]);
    }
}
