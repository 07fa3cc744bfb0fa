//! The job file (`jobs/nightly.toml`) and the validated configuration a run uses.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The job file as written. Every section and key is optional; unknown keys are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobFile {
    /// `[lake]`: where the raw lake is and where runs are published.
    pub lake: LakeSection,
    /// `[events]`: the event names the identity rules react to.
    pub events: EventsSection,
    /// `[identity]`: limits of the identity graph.
    pub identity: IdentitySection,
    /// `[touches]`: how touch columns are read.
    pub touches: TouchesSection,
    /// `[attribution]`: lookback window, time-decay half-life, conversion value columns.
    pub attribution: AttributionSection,
    /// `[read]`: which event and touch times are plausible.
    pub read: ReadSection,
    /// `[exports.meta]`, `[exports.google]`: ad-platform export settings.
    pub exports: ExportsSection,
    /// `[storage]`: how failed requests to a cloud store are retried.
    pub storage: StorageSection,
}

/// `[exports]`: one sub-section per ad platform.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportsSection {
    /// `[exports.meta]`: Meta Conversions API.
    pub meta: crate::export::meta::MetaSettings,
    /// `[exports.google]`: Google Ads click conversions and Data Manager.
    pub google: crate::export::google::GoogleSettings,
}

/// `[lake]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSection {
    /// Input location (path or URL); `raw/` lives under it.
    pub input: String,
    /// Output location (path or URL); `runs/`, `latest` and `state/` live under it.
    pub output: String,
}

impl Default for LakeSection {
    fn default() -> Self {
        LakeSection {
            input: "sample-data".into(),
            output: "out".into(),
        }
    }
}

/// `[events]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSection {
    /// Signup event: links the cookie to the user (`link_kind = signup`).
    pub signup: String,
    /// Signin event: links the cookie to the user (`link_kind = signin`).
    pub signin: String,
    /// Logout event: ends the cookie's current segment.
    pub logout: String,
    /// Alias event: joins `previous_id` and `anon_id`.
    pub alias: String,
    /// Conversion events (`is_conversion`, `first_purchase_at`).
    pub conversions: Vec<String>,
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection {
            signup: "signup_completed".into(),
            signin: "signed_in".into(),
            logout: "signed_out".into(),
            alias: "$create_alias".into(),
            conversions: vec!["purchase_completed".into()],
        }
    }
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// A person with a user and more cookies than this is `oversized`.
    pub max_cookies_per_user: u32,
}

impl Default for IdentitySection {
    fn default() -> Self {
        IdentitySection {
            max_cookies_per_user: 500,
        }
    }
}

/// `[touches]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TouchesSection {
    /// Extra string columns of touches that are NOT attribution keys (by default every
    /// unknown string column is one).
    pub ignore_columns: Vec<String>,
}

/// `[attribution]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionSection {
    /// Only touches at most this many days before a conversion take part (at least 1).
    pub lookback_days: u32,
    /// Half-life of the `time_decay` model, in days (> 0).
    pub half_life_days: f64,
    /// Events column holding a conversion's value.
    pub value_column: String,
    /// Events column holding a conversion's currency.
    pub currency_column: String,
}

impl Default for AttributionSection {
    fn default() -> Self {
        AttributionSection {
            lookback_days: 90,
            half_life_days: 7.0,
            value_column: "value".into(),
            currency_column: "currency".into(),
        }
    }
}

/// `[read]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadSection {
    /// Events and touches timed before this UTC date (`YYYY-MM-DD`) are quarantined as
    /// `ts_out_of_range`.
    pub earliest_date: String,
    /// Events and touches timed more than this many days after the end of the run date (UTC)
    /// are quarantined as `ts_out_of_range`.
    pub max_days_after_run_date: u32,
}

impl Default for ReadSection {
    fn default() -> Self {
        ReadSection {
            earliest_date: "2000-01-01".into(),
            max_days_after_run_date: 1,
        }
    }
}

/// `[storage]`: the retry policy of requests to `s3://`, `gs://` and `az://` locations.
///
/// A request that fails with a transient error (a 5xx status such as 503 Slow Down, 429, 408,
/// a connection refused or closed before the answer, a timeout or reset of a request that is
/// safe to repeat) is retried with exponential backoff and jitter: the first wait is about
/// `initial_backoff_ms`, each next one up to twice as long, never more than `max_backoff_ms`.
/// A request is given up after `max_retries` retries or once `retry_timeout_secs` have passed
/// since its first attempt, whichever comes first; its error then ends the run (exit code 1).
/// Other errors (403, 404, a bucket that does not exist) are not retried. Local folders and
/// `memory://` are not affected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Retries of one request after its first attempt (0: no retries).
    pub max_retries: u32,
    /// No retry starts this many seconds after a request's first attempt (at least 1).
    pub retry_timeout_secs: u64,
    /// The first backoff, in milliseconds (at least 1).
    pub initial_backoff_ms: u64,
    /// The longest backoff, in milliseconds (at least `initial_backoff_ms`).
    pub max_backoff_ms: u64,
}

impl Default for StorageSection {
    /// object_store's own defaults, written out.
    fn default() -> Self {
        StorageSection {
            max_retries: 10,
            retry_timeout_secs: 180,
            initial_backoff_ms: 100,
            max_backoff_ms: 15_000,
        }
    }
}

impl StorageSection {
    fn validate(&self) -> std::result::Result<(), &'static str> {
        if self.retry_timeout_secs == 0 {
            Err("key `storage.retry_timeout_secs` must be at least 1")
        } else if self.initial_backoff_ms == 0 {
            Err("key `storage.initial_backoff_ms` must be at least 1")
        } else if self.max_backoff_ms < self.initial_backoff_ms {
            Err("key `storage.max_backoff_ms` must be at least `storage.initial_backoff_ms`")
        } else {
            Ok(())
        }
    }
}

impl ReadSection {
    /// The earliest plausible date (validated by [`JobFile::parse`]).
    pub fn earliest(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.earliest_date, "%Y-%m-%d")
            .unwrap_or(NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date"))
    }

    /// Plausible event and touch times for a run date: `[lower, upper)` in UTC microseconds.
    pub fn ts_bounds(&self, run_date: NaiveDate) -> (i64, i64) {
        let micros = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp_micros()
        };
        let day = 86_400_000_000i64;
        let upper = micros(run_date) + day * (1 + i64::from(self.max_days_after_run_date));
        (micros(self.earliest()), upper)
    }
}

/// A validated configuration for one run.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The job file it came from (for messages).
    pub job_file: String,
    /// Input location.
    pub input: String,
    /// Output location.
    pub output: String,
    /// Logical run date: partitions with `dt <= date` are read.
    pub date: NaiveDate,
    /// Event names.
    pub events: EventsSection,
    /// Identity limits.
    pub identity: IdentitySection,
    /// Touch reading options.
    pub touches: TouchesSection,
    /// Attribution options.
    pub attribution: AttributionSection,
    /// Plausible input times.
    pub read: ReadSection,
    /// Ad-platform export settings.
    pub exports: ExportsSection,
    /// Retry policy of cloud storage requests.
    pub storage: StorageSection,
}

impl JobFile {
    /// Parse a job file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<JobFile> {
        let job: JobFile = toml::from_str(text).map_err(|e| Error::Config {
            file: file.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let names = [
            ("events.signup", &job.events.signup),
            ("events.signin", &job.events.signin),
            ("events.logout", &job.events.logout),
            ("events.alias", &job.events.alias),
        ];
        for (key, value) in names {
            if value.trim().is_empty() {
                return Err(Error::Config {
                    file: file.to_string(),
                    message: format!("key `{key}` must not be empty"),
                });
            }
        }
        if job.identity.max_cookies_per_user == 0 {
            return Err(Error::Config {
                file: file.to_string(),
                message: "key `identity.max_cookies_per_user` must be at least 1".into(),
            });
        }
        let a = &job.attribution;
        let invalid = if a.lookback_days == 0 {
            Some("key `attribution.lookback_days` must be at least 1")
        } else if !(a.half_life_days.is_finite() && a.half_life_days > 0.0) {
            Some("key `attribution.half_life_days` must be a number greater than 0")
        } else if a.value_column.trim().is_empty() {
            Some("key `attribution.value_column` must not be empty")
        } else if a.currency_column.trim().is_empty() {
            Some("key `attribution.currency_column` must not be empty")
        } else {
            None
        };
        if NaiveDate::parse_from_str(&job.read.earliest_date, "%Y-%m-%d").is_err() {
            return Err(Error::Config {
                file: file.to_string(),
                message: format!(
                    "key `read.earliest_date` must be a date YYYY-MM-DD, found `{}`",
                    job.read.earliest_date
                ),
            });
        }
        if let Some(message) = invalid.or(job.storage.validate().err()) {
            return Err(Error::Config {
                file: file.to_string(),
                message: message.into(),
            });
        }
        let exports = [
            ("exports.meta", job.exports.meta.validate()),
            ("exports.google", job.exports.google.validate()),
        ];
        for (section, checked) in exports {
            if let Err(e) = checked {
                return Err(Error::Config {
                    file: file.to_string(),
                    message: format!("[{section}] {e}"),
                });
            }
        }
        Ok(job)
    }

    /// Read and parse a job file.
    pub fn load(path: &str) -> Result<JobFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            file: path.to_string(),
            message: format!("cannot read: {e}"),
        })?;
        JobFile::parse(&text, path)
    }

    /// Apply command-line overrides and produce the run's configuration.
    pub fn into_config(
        self,
        job_file: &str,
        date: Option<NaiveDate>,
        input: Option<String>,
        output: Option<String>,
    ) -> JobConfig {
        JobConfig {
            job_file: job_file.to_string(),
            input: input.unwrap_or(self.lake.input),
            output: output.unwrap_or(self.lake.output),
            date: date.unwrap_or_else(|| chrono::Utc::now().date_naive()),
            events: self.events,
            identity: self.identity,
            touches: self.touches,
            attribution: self.attribution,
            read: self.read,
            exports: self.exports,
            storage: self.storage,
        }
    }
}

impl JobConfig {
    /// A configuration with every default, for tests and library users.
    pub fn new(input: &str, output: &str, date: NaiveDate) -> JobConfig {
        JobFile::default().into_config(
            "<defaults>",
            Some(date),
            Some(input.into()),
            Some(output.into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named_with_the_file() {
        let err = JobFile::parse("[events]\nsignupp = \"x\"\n", "jobs/x.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("jobs/x.toml") && msg.contains("signupp"),
            "{msg}"
        );
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
    }

    #[test]
    fn defaults_follow_the_contract() {
        let job = JobFile::parse("", "j").unwrap();
        assert_eq!(job.events.signup, "signup_completed");
        assert_eq!(job.events.signin, "signed_in");
        assert_eq!(job.events.logout, "signed_out");
        assert_eq!(job.events.alias, "$create_alias");
        assert_eq!(job.events.conversions, vec!["purchase_completed"]);
        assert_eq!(job.identity.max_cookies_per_user, 500);
        assert_eq!(job.attribution, AttributionSection::default());
        assert_eq!(job.attribution.lookback_days, 90);
        assert_eq!(job.attribution.half_life_days, 7.0);
        assert_eq!(job.attribution.value_column, "value");
        assert_eq!(job.attribution.currency_column, "currency");
    }

    #[test]
    fn attribution_section_is_read_and_validated() {
        let job = JobFile::parse(
            "[attribution]\nlookback_days = 30\nhalf_life_days = 1.5\nvalue_column = \"revenue\"\n",
            "j",
        )
        .unwrap();
        assert_eq!(job.attribution.lookback_days, 30);
        assert_eq!(job.attribution.half_life_days, 1.5);
        assert_eq!(job.attribution.value_column, "revenue");
        assert_eq!(job.attribution.currency_column, "currency");
        let cfg = job.into_config("j", None, None, None);
        assert_eq!(cfg.attribution.lookback_days, 30);
        // An integer half-life is read as days too.
        let job = JobFile::parse("[attribution]\nhalf_life_days = 3\n", "j").unwrap();
        assert_eq!(job.attribution.half_life_days, 3.0);
        for (text, key) in [
            ("lookback_days = 0", "attribution.lookback_days"),
            ("half_life_days = 0.0", "attribution.half_life_days"),
            ("half_life_days = -1.0", "attribution.half_life_days"),
            ("half_life_days = nan", "attribution.half_life_days"),
            ("value_column = \" \"", "attribution.value_column"),
            ("currency_column = \"\"", "attribution.currency_column"),
            ("lookback = 3", "lookback"),
        ] {
            let err =
                JobFile::parse(&format!("[attribution]\n{text}\n"), "jobs/x.toml").unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains("jobs/x.toml"),
                "{text}: {msg}"
            );
            assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
        }
    }

    #[test]
    fn storage_section_is_read_and_validated() {
        let job = JobFile::parse("", "j").unwrap();
        assert_eq!(job.storage, StorageSection::default());
        assert_eq!(job.storage.max_retries, 10);
        let job = JobFile::parse(
            "[storage]\nmax_retries = 2\ninitial_backoff_ms = 5\nmax_backoff_ms = 20\n",
            "j",
        )
        .unwrap();
        assert_eq!(job.storage.max_retries, 2);
        assert_eq!(job.storage.initial_backoff_ms, 5);
        assert_eq!(job.storage.max_backoff_ms, 20);
        assert_eq!(job.storage.retry_timeout_secs, 180);
        let cfg = job.into_config("j", None, None, None);
        assert_eq!(cfg.storage.max_retries, 2);
        for (text, key) in [
            ("retry_timeout_secs = 0", "storage.retry_timeout_secs"),
            ("initial_backoff_ms = 0", "storage.initial_backoff_ms"),
            ("max_backoff_ms = 10", "storage.max_backoff_ms"),
            ("max_retries = -1", "max_retries"),
            ("retries = 3", "retries"),
        ] {
            let err = JobFile::parse(&format!("[storage]\n{text}\n"), "jobs/x.toml").unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(key) && msg.contains("jobs/x.toml"),
                "{text}: {msg}"
            );
            assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
        }
    }
}
