//! `manifest.json`: what a run read, made and skipped, with counts that reconcile.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attribute::AttributionStats;
use crate::export::Skipped;
use crate::identity::IdentityStats;
use crate::read::{FileStat, SourceStats};
use crate::stitch::StitchStats;

/// One output table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableStat {
    /// Rows over all files.
    pub rows: u64,
    /// Files written, relative to the output location.
    pub files: Vec<FileStat>,
}

/// One ad platform's export.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportStat {
    /// Conversions of the run (exported + every reason of `skipped` but `bad_email` and
    /// `bad_phone`, which count values left out of conversions).
    pub conversions: u64,
    /// Conversions exported.
    pub exported: u64,
    /// Files written (for Meta and the Data Manager, `rows` is the number of events).
    pub files: Vec<FileStat>,
    /// Conversions (and values) left out, by reason.
    pub skipped: Skipped,
    /// Google only: the click conversion upload file's own count and reasons (it holds the
    /// conversions with a gclid in the window; the others may still go through the Data
    /// Manager).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_conversions: Option<ClickConversionsStat>,
}

/// The Google click conversion upload file's counts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClickConversionsStat {
    /// Rows of the file.
    pub exported: u64,
    /// Conversions not in the file, by reason.
    pub skipped: Skipped,
}

/// Changes since the previous published run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Changes {
    /// The previous published run's date, if any.
    pub previous_run: Option<String>,
    /// Persons whose first touch differs from the previous run's (late data with an earlier
    /// time). Null when there is no previous run to compare with.
    pub first_touch_changed: Option<u64>,
    /// Persons in the previous published run (null without one).
    pub previous_persons: Option<u64>,
}

/// The manifest (contract §4).
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Logical run date.
    pub run_date: String,
    /// Always `succeeded` in a published run.
    pub status: String,
    /// lakestitch version.
    pub version: String,
    /// When the run started and finished (UTC, RFC 3339).
    pub started_at: String,
    /// When the run finished.
    pub finished_at: String,
    /// Job file.
    pub job: String,
    /// Input location.
    pub input: String,
    /// Output location.
    pub output: String,
    /// Per source: rows read, used, deduplicated, quarantined, junk ids, files.
    pub inputs: BTreeMap<String, SourceStats>,
    /// Identity graph counts.
    pub identity: IdentityStats,
    /// Stitching counts.
    pub stitch: StitchStats,
    /// Attribution counts.
    pub attribution: AttributionStats,
    /// Per table: rows and files.
    pub outputs: BTreeMap<String, TableStat>,
    /// Per ad platform: conversions exported, files written, conversions left out by reason.
    pub exports: BTreeMap<String, ExportStat>,
    /// Changes since the previous run.
    pub changes: Changes,
    /// The run's report page, relative to the output location (`runs/<date>/report.html`).
    pub report: String,
}
