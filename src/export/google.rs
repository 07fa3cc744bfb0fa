//! Google Ads exports: the click conversion upload file and Data Manager API request bodies.
//!
//! **`exports/google/click_conversions.csv`** (file import in the Google Ads UI, "legacy"):
//!
//! ```text
//! Parameters:TimeZone=Europe/Paris
//! Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency
//! EAIaIQobChMI...,Purchase,2026-11-21 11:00:00,49.9,EUR
//! ```
//!
//! One row per conversion whose person's latest `gclid` click came before it and at most 90
//! days before it (and at most 90 days before the end of the run date). The time is written
//! `yyyy-MM-dd HH:mm:ss` in the declared zone: an IANA zone (`Europe/Paris`, via `chrono-tz`,
//! daylight saving included) or a fixed offset `+HHMM` / `-HHMM`. Fields with a comma, a quote
//! or a line break are quoted (RFC 4180). No personal data is in the file.
//!
//! **`exports/google/data_manager/batch-NNNNN.json`**: `events:ingest` request bodies
//! (`POST https://datamanager.googleapis.com/v1/events:ingest`), at most [`MAX_EVENTS`] events
//! each, shaped as the API's `IngestEventsRequest`:
//!
//! ```json
//! {"destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "..."},
//!                    "productDestinationId": "<conversion action id>"}],
//!  "encoding": "HEX",
//!  "events": [{"transactionId": "...", "eventTimestamp": "2026-11-21T10:00:00Z",
//!              "adIdentifiers": {"gclid": "..."},
//!              "userData": {"userIdentifiers": [{"emailAddress": "<sha256>"},
//!                                               {"phoneNumber": "<sha256>"}]},
//!              "conversionValue": 49.9, "currency": "EUR",
//!              "consent": {"adUserData": "CONSENT_GRANTED",
//!                          "adPersonalization": "CONSENT_STATUS_UNSPECIFIED"}}]}
//! ```
//!
//! Rules: at most one of gclid / gbraid / wbraid (the first inside the window, gclid first);
//! a gbraid or wbraid is never sent with hashed identifiers (the identifiers are dropped); at
//! most [`MAX_IDENTIFIERS`] identifiers (emails first, then phones, each sorted by hash);
//! `transactionId` is the `order_id`, else the `event_id`; consent per event
//! (`CONSENT_GRANTED`, `CONSENT_DENIED`, `CONSENT_STATUS_UNSPECIFIED`); a user who refused
//! `ad_user_data` is never exported. `destinations` is written when the customer id and the
//! conversion action id are configured; otherwise the uploader adds it.
//!
//! Not checked here: Google's "click at least 6 hours old at upload" rule depends on when the
//! file is uploaded; the uploader sends after the run, and a click that is too recent is
//! reported by Google and can be retried.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;

use super::{
    batches, hashed_emails, hashed_phones, held_back, made_events, non_blank, sorted, Click,
    Conversion, Made, Platform, Reason, Skipped, DAY_US,
};

/// Most events the Data Manager API accepts in one `events:ingest` request.
pub const MAX_EVENTS: usize = 2_000;

/// Most user identifiers Google takes per conversion.
pub const MAX_IDENTIFIERS: usize = 5;

/// Longest time between a click and its conversion, and between a click and the end of the run
/// date (Google's longest click-through conversion window).
pub const CLICK_WINDOW_DAYS: i64 = 90;

/// The header row of the click conversion upload file.
pub const CSV_HEADER: &str =
    "Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency";

/// Google export settings (the job file's `[exports.google]`, when the pipeline wires it in).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleSettings {
    /// The conversion action's name in Google Ads (the CSV's `Conversion Name`).
    pub conversion_name: String,
    /// The zone of the CSV's conversion times: an IANA zone (`Europe/Paris`) or `+HHMM`.
    pub time_zone: String,
    /// Google Ads customer id receiving the conversions (Data Manager `operatingAccount`);
    /// dashes are removed.
    pub customer_id: Option<String>,
    /// The conversion action's numeric id (Data Manager `productDestinationId`).
    pub conversion_action_id: Option<String>,
    /// The manager account the uploader signs in with, when not the customer itself
    /// (Data Manager `loginAccount`).
    pub login_customer_id: Option<String>,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        GoogleSettings {
            conversion_name: "Purchase".into(),
            time_zone: "+0000".into(),
            customer_id: None,
            conversion_action_id: None,
            login_customer_id: None,
        }
    }
}

impl GoogleSettings {
    /// Check the settings; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.conversion_name.trim().is_empty() {
            return Err("conversion_name: empty".into());
        }
        Zone::parse(&self.time_zone)?;
        for (key, v) in [
            ("customer_id", &self.customer_id),
            ("login_customer_id", &self.login_customer_id),
            ("conversion_action_id", &self.conversion_action_id),
        ] {
            if let Some(v) = v {
                let digits = v.replace('-', "");
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{key} = {v:?}: expected digits (dashes allowed)"));
                }
            }
        }
        Ok(())
    }
}

/// The declared zone of the CSV's conversion times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// An IANA zone, daylight saving included.
    Named(chrono_tz::Tz),
    /// A fixed offset from UTC (`+HHMM` / `-HHMM`).
    Fixed(FixedOffset),
}

impl Zone {
    /// Parse `+HHMM` / `-HHMM` or an IANA zone name.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 5 && (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
            let hh = i32::from(b[1] - b'0') * 10 + i32::from(b[2] - b'0');
            let mm = i32::from(b[3] - b'0') * 10 + i32::from(b[4] - b'0');
            let secs = (hh * 60 + mm) * 60 * if b[0] == b'-' { -1 } else { 1 };
            return if hh <= 14 && mm < 60 {
                FixedOffset::east_opt(secs)
                    .map(Zone::Fixed)
                    .ok_or_else(|| format!("time_zone = {t:?}: offset out of range"))
            } else {
                Err(format!("time_zone = {t:?}: offset out of range"))
            };
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("time_zone = {t:?}: expected an IANA zone (Europe/Paris) or +HHMM / -HHMM")
        })
    }

    /// `us` (µs since the epoch, UTC) as `yyyy-MM-dd HH:mm:ss` in this zone.
    pub fn format(&self, us: i64) -> String {
        const F: &str = "%Y-%m-%d %H:%M:%S";
        let utc = DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default();
        match self {
            Zone::Named(tz) => tz.from_utc_datetime(&utc.naive_utc()).format(F).to_string(),
            Zone::Fixed(off) => off
                .from_utc_datetime(&utc.naive_utc())
                .format(F)
                .to_string(),
        }
    }
}

/// The click conversion upload file of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClickCsv {
    /// The file's content (ends with a line break).
    pub body: String,
    /// Number of conversion rows.
    pub rows: usize,
    /// `event_id` of every conversion in the file, in file order.
    pub exported: Vec<String>,
    /// Conversions not in the file, by reason (`no_match_key`: no gclid; `outside_window`:
    /// its gclid click is too old or after the conversion).
    pub skipped: Skipped,
    /// `event_id` and reason of every conversion not in the file, in output order.
    pub not_exported: Vec<(String, Reason)>,
}

/// The Data Manager request bodies of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataManagerExport {
    /// Request bodies, in order: `batches[i]` is `batch_file_name(i)`.
    pub batches: Vec<String>,
    /// `event_id` of every exported conversion, in output order (for the ledger).
    pub exported: Vec<String>,
    /// What was left out, by reason.
    pub skipped: Skipped,
    /// `event_id` and reason of every conversion left out, in output order.
    pub not_exported: Vec<(String, Reason)>,
}

/// Both Google exports of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoogleExport {
    /// `exports/google/click_conversions.csv`.
    pub click_csv: ClickCsv,
    /// `exports/google/data_manager/batch-NNNNN.json`.
    pub data_manager: DataManagerExport,
}

impl GoogleExport {
    /// Every conversion exported to Google (the Data Manager's; each CSV row is among them).
    pub fn exported(&self) -> &[String] {
        &self.data_manager.exported
    }

    /// The manifest's `exports.google.skipped` (the Data Manager's: a conversion missing from
    /// the CSV for lack of a gclid may still go through the Data Manager).
    pub fn skipped(&self) -> &Skipped {
        &self.data_manager.skipped
    }
}

/// Build both Google exports. Errors only on settings that [`GoogleSettings::validate`] refuses.
pub fn build<C: Borrow<Conversion> + Sync>(
    conversions: &[C],
    settings: &GoogleSettings,
    window_end_us: i64,
) -> Result<GoogleExport, String> {
    settings.validate()?;
    // The two files read the same conversions and nothing of each other: side by side (the
    // pipeline builds Meta's beside Google's, and the three are about the same work).
    let (click_csv, data_manager) = crate::parallel::join(
        || click_conversions_csv(conversions, settings, window_end_us),
        || data_manager_batches(conversions, settings, window_end_us),
    );
    Ok(GoogleExport {
        click_csv: click_csv?,
        data_manager,
    })
}

/// Whether `click` may be credited with a conversion at `ts_us`: at or before it, at most 90
/// days before it and at most 90 days before the end of the run date.
fn click_in_window(click: &Click, ts_us: i64, window_end_us: i64) -> bool {
    let max = CLICK_WINDOW_DAYS * DAY_US;
    !click.id.trim().is_empty()
        && click.at_us <= ts_us
        && ts_us - click.at_us <= max
        && window_end_us.saturating_sub(click.at_us) <= max
}

/// The click conversion upload file for `conversions`.
pub fn click_conversions_csv<C: Borrow<Conversion>>(
    conversions: &[C],
    settings: &GoogleSettings,
    window_end_us: i64,
) -> Result<ClickCsv, String> {
    settings.validate()?;
    let zone = Zone::parse(&settings.time_zone)?;
    let mut out = ClickCsv {
        body: format!(
            "Parameters:TimeZone={}\n{CSV_HEADER}\n",
            settings.time_zone.trim()
        ),
        ..ClickCsv::default()
    };
    for c in sorted(conversions) {
        let mut skip = |reason: Reason| {
            out.skipped.add(reason);
            out.not_exported.push((c.event_id.clone(), reason));
        };
        if let Some(reason) = held_back(c) {
            skip(reason);
            continue;
        }
        if c.ts_us >= window_end_us {
            skip(Reason::OutsideWindow);
            continue;
        }
        let Some(gclid) = &c.gclid else {
            skip(Reason::NoMatchKey);
            continue;
        };
        if gclid.id.trim().is_empty() {
            skip(Reason::NoMatchKey);
            continue;
        }
        if !click_in_window(gclid, c.ts_us, window_end_us) {
            skip(Reason::OutsideWindow);
            continue;
        }
        let value = c
            .value
            .filter(|v| v.is_finite())
            .map(|v| v.to_string())
            .unwrap_or_default();
        let currency = non_blank(&c.currency)
            .map(str::to_ascii_uppercase)
            .unwrap_or_default();
        let fields = [
            gclid.id.trim().to_string(),
            settings.conversion_name.trim().to_string(),
            zone.format(c.ts_us),
            value,
            currency,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.body.push_str(&line.join(","));
        out.body.push('\n');
        out.rows += 1;
        out.exported.push(c.event_id.clone());
    }
    Ok(out)
}

/// One CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The parts [`data_manager_batches`] makes its events in.
const DM_PARTS: usize = 8;

/// The Data Manager `events:ingest` request bodies for `conversions`.
pub fn data_manager_batches<C: Borrow<Conversion>>(
    conversions: &[C],
    settings: &GoogleSettings,
    window_end_us: i64,
) -> DataManagerExport {
    // The events (each normalizes and hashes its identifiers) and then the batches' JSON are
    // made in parts on two threads: this file is the biggest of the exports, and the other
    // two are made beside it. The parts are put together in order.
    let sorted = sorted(conversions);
    let parts: Vec<&[&Conversion]> = crate::parallel::slices(sorted.len(), DM_PARTS)
        .into_iter()
        .map(|r| &sorted[r])
        .collect();
    let made = crate::parallel::map(&parts, 2, |_, part| {
        Ok(made_events(part, |c, skipped| {
            dm_event(c, window_end_us, skipped)
        }))
    })
    .expect("making the events does not fail");
    let mut all = Made::default();
    for part in made {
        all.extend(part);
    }
    let Made {
        events,
        exported,
        not_exported,
        skipped,
    } = all;
    let destinations = destination(settings).into_iter().collect::<Vec<_>>();
    let batches = crate::parallel::map(&batches(events, MAX_EVENTS), 2, |_, events| {
        let body = IngestEventsRequest {
            destinations: &destinations,
            encoding: "HEX",
            events,
        };
        Ok(serde_json::to_string(&body).expect("serializing plain structs"))
    })
    .expect("serializing does not fail");
    DataManagerExport {
        batches,
        exported,
        skipped,
        not_exported,
    }
}

fn destination(settings: &GoogleSettings) -> Option<Destination> {
    let digits = |s: &Option<String>| {
        non_blank(s).map(|v| v.chars().filter(|c| *c != '-').collect::<String>())
    };
    let customer = digits(&settings.customer_id)?;
    let action = non_blank(&settings.conversion_action_id)?.to_string();
    Some(Destination {
        operating_account: Account {
            account_type: "GOOGLE_ADS",
            account_id: customer,
        },
        login_account: digits(&settings.login_customer_id).map(|id| Account {
            account_type: "GOOGLE_ADS",
            account_id: id,
        }),
        product_destination_id: action,
    })
}

fn consent_status(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "CONSENT_GRANTED",
        Some(false) => "CONSENT_DENIED",
        None => "CONSENT_STATUS_UNSPECIFIED",
    }
}

fn dm_event(c: &Conversion, window_end_us: i64, skipped: &mut Skipped) -> Result<Event, Reason> {
    if let Some(reason) = held_back(c) {
        return Err(reason);
    }
    if c.ts_us >= window_end_us {
        return Err(Reason::OutsideWindow);
    }
    let clicks = [
        ("gclid", &c.gclid),
        ("gbraid", &c.gbraid),
        ("wbraid", &c.wbraid),
    ];
    let any_click = clicks
        .iter()
        .any(|(_, k)| k.as_ref().is_some_and(|k| !k.id.trim().is_empty()));
    let chosen = clicks.iter().find_map(|(kind, k)| {
        k.as_ref()
            .filter(|k| click_in_window(k, c.ts_us, window_end_us))
            .map(|k| (*kind, k.id.trim().to_string()))
    });
    let mut ad = AdIdentifiers::default();
    let braid = match chosen {
        Some(("gclid", id)) => {
            ad.gclid = Some(id);
            false
        }
        Some(("gbraid", id)) => {
            ad.gbraid = Some(id);
            true
        }
        Some((_, id)) => {
            ad.wbraid = Some(id);
            true
        }
        None => false,
    };
    let mut identifiers: Vec<UserIdentifier> = Vec::new();
    if !braid {
        let emails = hashed_emails(Platform::Google, c, skipped);
        let phones = hashed_phones(Platform::Google, c, skipped);
        identifiers.extend(emails.into_iter().map(UserIdentifier::email));
        identifiers.extend(phones.into_iter().map(UserIdentifier::phone));
        identifiers.truncate(MAX_IDENTIFIERS);
    }
    let has_click = ad.gclid.is_some() || ad.gbraid.is_some() || ad.wbraid.is_some();
    if !has_click && identifiers.is_empty() {
        return Err(if any_click {
            Reason::OutsideWindow
        } else {
            Reason::NoMatchKey
        });
    }
    let transaction_id = non_blank(&c.order_id).unwrap_or(&c.event_id).to_string();
    let event_timestamp = DateTime::<Utc>::from_timestamp_micros(c.ts_us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true);
    Ok(Event {
        transaction_id,
        event_timestamp,
        ad_identifiers: has_click.then_some(ad),
        user_data: (!identifiers.is_empty()).then_some(UserData {
            user_identifiers: identifiers,
        }),
        conversion_value: c.value.filter(|v| v.is_finite()),
        currency: non_blank(&c.currency).map(str::to_ascii_uppercase),
        consent: Consent {
            ad_user_data: consent_status(c.ad_user_data),
            ad_personalization: consent_status(c.ad_personalization),
        },
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IngestEventsRequest<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    destinations: &'a [Destination],
    encoding: &'static str,
    events: &'a [Event],
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Destination {
    operating_account: Account,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_account: Option<Account>,
    product_destination_id: String,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Account {
    account_type: &'static str,
    account_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    transaction_id: String,
    event_timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ad_identifiers: Option<AdIdentifiers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data: Option<UserData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversion_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    consent: Consent,
}

#[derive(Serialize, Default)]
struct AdIdentifiers {
    #[serde(skip_serializing_if = "Option::is_none")]
    gclid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gbraid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wbraid: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserData {
    user_identifiers: Vec<UserIdentifier>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentifier {
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<String>,
}

impl UserIdentifier {
    fn email(h: String) -> Self {
        UserIdentifier {
            email_address: Some(h),
            phone_number: None,
        }
    }

    fn phone(h: String) -> Self {
        UserIdentifier {
            email_address: None,
            phone_number: Some(h),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Consent {
    ad_user_data: &'static str,
    ad_personalization: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{normalize, window_end_us, Phone};

    fn end() -> i64 {
        window_end_us(chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap())
    }

    /// 2026-11-21T10:00:00Z.
    const T0: i64 = 1_795_255_200_000_000;
    const HOUR: i64 = 3_600_000_000;

    fn conv(id: &str, ts_us: i64) -> Conversion {
        Conversion {
            event_id: id.into(),
            event: "purchase_completed".into(),
            ts_us,
            ..Conversion::default()
        }
    }

    fn two_conversions() -> Vec<Conversion> {
        let a = Conversion {
            value: Some(49.9),
            currency: Some("eur".into()),
            order_id: Some("order-1".into()),
            emails: vec![
                "Jefferson.Loves.hiking@gmail.com".into(),
                "jeffersonloveshiking@gmail.com".into(),
            ],
            phones: vec![Phone::new("+44-113-496-0987", None)],
            gclid: Some(Click::new("EAIaIQ,obCh\"MI", T0 - 2 * HOUR)),
            ad_user_data: Some(true),
            ad_personalization: Some(false),
            ..conv("ev-a", T0)
        };
        let b = Conversion {
            value: Some(120.0),
            currency: Some("USD".into()),
            emails: vec!["  ALEXZ@example.com   ".into()],
            gbraid: Some(Click::new("GB-1", T0 - 30 * DAY_US)),
            ..conv("ev-b", T0 + HOUR)
        };
        vec![b, a]
    }

    fn settings() -> GoogleSettings {
        GoogleSettings {
            conversion_name: "Offline purchase, paid".into(),
            time_zone: "Europe/Paris".into(),
            customer_id: Some("123-456-7890".into()),
            conversion_action_id: Some("987654321".into()),
            login_customer_id: None,
        }
    }

    #[test]
    fn golden_csv() {
        let out = click_conversions_csv(&two_conversions(), &settings(), end()).unwrap();
        let want = concat!(
            "Parameters:TimeZone=Europe/Paris\n",
            "Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency\n",
            "\"EAIaIQ,obCh\"\"MI\",\"Offline purchase, paid\",2026-11-21 11:00:00,49.9,EUR\n",
        );
        assert_eq!(out.body, want);
        assert_eq!(out.rows, 1);
        assert_eq!(out.exported, vec!["ev-a"]);
        // ev-b has a gbraid only: not a row of the gclid file.
        assert_eq!(out.skipped.no_match_key, 1);
    }

    #[test]
    fn golden_data_manager_body() {
        let out = data_manager_batches(&two_conversions(), &settings(), end());
        assert_eq!(out.exported, vec!["ev-a", "ev-b"]);
        assert_eq!(out.batches.len(), 1);
        let want = concat!(
            r#"{"destinations":[{"operatingAccount":{"accountType":"GOOGLE_ADS","accountId":"1234567890"},"#,
            r#""productDestinationId":"987654321"}],"encoding":"HEX","events":["#,
            r#"{"transactionId":"order-1","eventTimestamp":"2026-11-21T10:00:00Z","#,
            r#""adIdentifiers":{"gclid":"EAIaIQ,obCh\"MI"},"#,
            r#""userData":{"userIdentifiers":[{"emailAddress":"515d2f967f73864e76937ab2b897210a86fd286016903b1b08c3da07c75f513e"},"#,
            r#"{"phoneNumber":"0fac52d27ec377f8ad2f9de75d1f9bace693237e31868ae6f4616b8bbd0e94fb"}]},"#,
            r#""conversionValue":49.9,"currency":"EUR","#,
            r#""consent":{"adUserData":"CONSENT_GRANTED","adPersonalization":"CONSENT_DENIED"}},"#,
            r#"{"transactionId":"ev-b","eventTimestamp":"2026-11-21T11:00:00Z","#,
            r#""adIdentifiers":{"gbraid":"GB-1"},"#,
            r#""conversionValue":120.0,"currency":"USD","#,
            r#""consent":{"adUserData":"CONSENT_STATUS_UNSPECIFIED","adPersonalization":"CONSENT_STATUS_UNSPECIFIED"}}"#,
            r#"]}"#
        );
        assert_eq!(out.batches[0], want);
        let mut reversed = two_conversions();
        reversed.reverse();
        assert_eq!(data_manager_batches(&reversed, &settings(), end()), out);
        for raw in ["Jefferson", "jefferson", "alexz", "ALEXZ", "113"] {
            assert!(!out.batches[0].contains(raw), "{raw}");
        }
    }

    #[test]
    fn without_account_ids_the_uploader_adds_destinations() {
        let out = data_manager_batches(&two_conversions(), &GoogleSettings::default(), end());
        let v: serde_json::Value = serde_json::from_str(&out.batches[0]).unwrap();
        assert!(v.get("destinations").is_none());
        assert_eq!(v["encoding"], "HEX");
    }

    #[test]
    fn batches_hold_at_most_2000_events() {
        let convs: Vec<Conversion> = (0..4_001)
            .map(|i| Conversion {
                gclid: Some(Click::new(format!("g{i}"), T0 - HOUR)),
                ..conv(&format!("ev-{i:05}"), T0 + i)
            })
            .collect();
        let out = data_manager_batches(&convs, &settings(), end());
        let counts: Vec<usize> = out
            .batches
            .iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_str(b).unwrap();
                assert!(v["destinations"].is_array());
                v["events"].as_array().unwrap().len()
            })
            .collect();
        assert_eq!(counts, vec![2_000, 2_000, 1]);
        assert_eq!(
            data_manager_batches(&convs[..2_000], &settings(), end())
                .batches
                .len(),
            1
        );
        let csv = click_conversions_csv(&convs, &settings(), end()).unwrap();
        assert_eq!(csv.rows, 4_001);
        assert_eq!(csv.body.lines().count(), 4_003);
    }

    /// The events are made in parts side by side: the batches, the exported and the skipped
    /// conversions still come in time order (ties by event id) whatever the input's order, and
    /// the reasons add up over the parts.
    #[test]
    fn events_made_in_parts_keep_their_order_and_counts() {
        let mut convs: Vec<Conversion> = (0..5_003i64)
            .map(|i| Conversion {
                gclid: (i % 7 != 0).then(|| Click::new(format!("g{i}"), T0 - HOUR)),
                // Every 11th on the next day: outside the run's window.
                ..conv(
                    &format!("ev-{i:05}"),
                    T0 + (i % 11 == 0) as i64 * 24 * HOUR + i % 50,
                )
            })
            .collect();
        convs.reverse();
        convs.swap(10, 4_000);
        let out = data_manager_batches(&convs, &settings(), end());
        let order: Vec<String> = sorted(&convs).iter().map(|c| c.event_id.clone()).collect();
        let in_batches: Vec<String> = (out.batches.iter())
            .flat_map(|b| {
                let v: serde_json::Value = serde_json::from_str(b).unwrap();
                (v["events"].as_array().unwrap().iter())
                    .map(|e| e["transactionId"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(in_batches, out.exported);
        let skipped: Vec<String> = out.not_exported.iter().map(|n| n.0.clone()).collect();
        let kept = |ids: &[String]| -> Vec<String> {
            order.iter().filter(|o| ids.contains(o)).cloned().collect()
        };
        assert_eq!(out.exported, kept(&out.exported), "in time order");
        assert_eq!(skipped, kept(&skipped), "in time order");
        assert_eq!(out.exported.len() + skipped.len(), convs.len());
        let outside = (0..5_003).filter(|i| i % 11 == 0).count() as u64;
        let no_key = (0..5_003).filter(|i| i % 7 == 0 && i % 11 != 0).count() as u64;
        assert_eq!(out.skipped.outside_window, outside);
        assert_eq!(out.skipped.no_match_key, no_key);
        assert_eq!(out.skipped.conversions(), outside + no_key);
    }

    #[test]
    fn braids_are_never_sent_with_identifiers() {
        let with_ids = Conversion {
            emails: vec!["a@example.com".into()],
            phones: vec![Phone::new("+16505551212", None)],
            ..conv("x", T0)
        };
        for (gbraid, wbraid, key) in [
            (Some(Click::new("GB", T0 - HOUR)), None, "gbraid"),
            (None, Some(Click::new("WB", T0 - HOUR)), "wbraid"),
        ] {
            let c = Conversion {
                gbraid,
                wbraid,
                ..with_ids.clone()
            };
            let out = data_manager_batches(&[c], &settings(), end());
            let v: serde_json::Value = serde_json::from_str(&out.batches[0]).unwrap();
            let e = &v["events"][0];
            assert!(e["adIdentifiers"][key].is_string(), "{key}");
            assert!(e.get("userData").is_none(), "{key}");
        }
        // A gclid keeps the identifiers, and wins over a gbraid and a wbraid.
        let c = Conversion {
            gclid: Some(Click::new("GC", T0 - HOUR)),
            gbraid: Some(Click::new("GB", T0 - HOUR)),
            wbraid: Some(Click::new("WB", T0 - HOUR)),
            ..with_ids.clone()
        };
        let out = data_manager_batches(&[c], &settings(), end());
        let v: serde_json::Value = serde_json::from_str(&out.batches[0]).unwrap();
        let e = &v["events"][0];
        assert_eq!(e["adIdentifiers"], serde_json::json!({"gclid": "GC"}));
        assert_eq!(
            e["userData"]["userIdentifiers"].as_array().unwrap().len(),
            2
        );
        // A gclid outside the window gives way to a gbraid inside it.
        let c = Conversion {
            gclid: Some(Click::new("GC", T0 - 91 * DAY_US)),
            gbraid: Some(Click::new("GB", T0 - HOUR)),
            ..with_ids
        };
        let out = data_manager_batches(&[c], &settings(), end());
        let v: serde_json::Value = serde_json::from_str(&out.batches[0]).unwrap();
        assert_eq!(
            v["events"][0]["adIdentifiers"],
            serde_json::json!({"gbraid": "GB"})
        );
    }

    #[test]
    fn at_most_five_identifiers() {
        let c = Conversion {
            emails: (0..4).map(|i| format!("user{i}@example.com")).collect(),
            phones: vec![
                Phone::new("+16505551212", None),
                Phone::new("+442079460018", None),
                Phone::new("030 12345678", Some("DE")),
            ],
            ..conv("many", T0)
        };
        let out = data_manager_batches(&[c], &settings(), end());
        let v: serde_json::Value = serde_json::from_str(&out.batches[0]).unwrap();
        let ids = v["events"][0]["userData"]["userIdentifiers"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(ids.len(), MAX_IDENTIFIERS);
        let emails = ids
            .iter()
            .filter(|i| i.get("emailAddress").is_some())
            .count();
        assert_eq!(emails, 4);
        let mut email_hashes: Vec<String> = (0..4)
            .map(|i| normalize::sha256_hex(&format!("user{i}@example.com")))
            .collect();
        email_hashes.sort();
        let got: Vec<&str> = ids[..4]
            .iter()
            .map(|i| i["emailAddress"].as_str().unwrap())
            .collect();
        assert_eq!(got, email_hashes);
    }

    #[test]
    fn click_window_and_reasons() {
        let cases = vec![
            // gclid 89 days before: inside.
            Conversion {
                gclid: Some(Click::new("in", T0 - 89 * DAY_US)),
                ..conv("inside", T0)
            },
            // gclid 91 days before the conversion: outside, and nothing else to match on.
            Conversion {
                gclid: Some(Click::new("old", T0 - 91 * DAY_US)),
                ..conv("old-click", T0)
            },
            // gclid after the conversion: not credited.
            Conversion {
                gclid: Some(Click::new("later", T0 + HOUR)),
                ..conv("click-after", T0)
            },
            // Old click but an email: exported with the email only.
            Conversion {
                gclid: Some(Click::new("old", T0 - 91 * DAY_US)),
                emails: vec!["a@example.com".into()],
                ..conv("old-click-email", T0)
            },
            // Nothing at all.
            conv("bare", T0),
            // After the end of the run date.
            Conversion {
                gclid: Some(Click::new("g", T0)),
                ..conv("future", end())
            },
            // Refused consent, oversized.
            Conversion {
                gclid: Some(Click::new("g", T0 - HOUR)),
                ad_user_data: Some(false),
                ..conv("refused", T0)
            },
            Conversion {
                gclid: Some(Click::new("g", T0 - HOUR)),
                oversized: true,
                ..conv("oversized", T0)
            },
            // Bad values are counted and left out.
            Conversion {
                emails: vec!["nope".into()],
                phones: vec![Phone::new("123", Some("FR"))],
                ..conv("bad-values", T0)
            },
        ];
        let out = data_manager_batches(&cases, &settings(), end());
        assert_eq!(out.exported, vec!["inside", "old-click-email"]);
        let s = out.skipped;
        assert_eq!(s.outside_window, 3); // old-click, click-after, future
        assert_eq!(s.no_match_key, 2); // bare, bad-values
        assert_eq!(s.no_consent, 1);
        assert_eq!(s.oversized, 1);
        assert_eq!((s.bad_email, s.bad_phone), (1, 1));
        assert_eq!(s.conversions() as usize + out.exported.len(), cases.len());

        let csv = click_conversions_csv(&cases, &settings(), end()).unwrap();
        assert_eq!(csv.exported, vec!["inside"]);
        assert_eq!(csv.skipped.conversions() as usize + csv.rows, cases.len());
        // A click older than 90 days before the end of the run date is out even when the
        // conversion came soon after it.
        let stale = Conversion {
            gclid: Some(Click::new("g", end() - 91 * DAY_US)),
            ..conv("stale", end() - 90 * DAY_US)
        };
        let csv = click_conversions_csv(&[stale], &settings(), end()).unwrap();
        assert_eq!((csv.rows, csv.skipped.outside_window), (0, 1));
    }

    #[test]
    fn transaction_id_falls_back_to_event_id() {
        let c = Conversion {
            order_id: Some("  ".into()),
            gclid: Some(Click::new("g", T0 - HOUR)),
            ..conv("ev-9", T0 + 123_456)
        };
        let out = data_manager_batches(&[c], &settings(), end());
        let v: serde_json::Value = serde_json::from_str(&out.batches[0]).unwrap();
        assert_eq!(v["events"][0]["transactionId"], "ev-9");
        assert_eq!(
            v["events"][0]["eventTimestamp"],
            "2026-11-21T10:00:00.123456Z"
        );
    }

    #[test]
    fn zones() {
        // Paris is UTC+1 in November, UTC+2 in July.
        let paris = Zone::parse("Europe/Paris").unwrap();
        assert_eq!(paris.format(T0), "2026-11-21 11:00:00");
        let july = T0 - 133 * DAY_US;
        assert_eq!(paris.format(july), "2026-07-11 12:00:00");
        assert_eq!(
            Zone::parse("+0000").unwrap().format(T0),
            "2026-11-21 10:00:00"
        );
        assert_eq!(
            Zone::parse("-0530").unwrap().format(T0),
            "2026-11-21 04:30:00"
        );
        assert_eq!(
            Zone::parse("America/Los_Angeles").unwrap().format(T0),
            "2026-11-21 02:00:00"
        );
        for bad in ["Mars/Olympus", "+2500", "0100", "", "+01:00"] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
        let bad = GoogleSettings {
            time_zone: "CEST+2".into(),
            ..GoogleSettings::default()
        };
        assert!(build::<Conversion>(&[], &bad, end()).is_err());
        let empty =
            click_conversions_csv::<Conversion>(&[], &GoogleSettings::default(), end()).unwrap();
        assert_eq!(
            empty.body,
            format!("Parameters:TimeZone=+0000\n{CSV_HEADER}\n")
        );
    }

    #[test]
    fn settings_parse_and_validate() {
        let s: GoogleSettings = toml::from_str(
            "conversion_name = \"Purchase\"\ntime_zone = \"Europe/Berlin\"\ncustomer_id = \"123-456-7890\"\n",
        )
        .unwrap();
        assert!(s.validate().is_ok());
        let bad = GoogleSettings {
            customer_id: Some("abc".into()),
            ..GoogleSettings::default()
        };
        assert!(bad.validate().unwrap_err().contains("customer_id"));
        assert!(toml::from_str::<GoogleSettings>("zone = \"UTC\"").is_err());
    }
}
