//! The export ledger: which conversion went to which platform, by the run of which date.
//!
//! A conversion already exported by the run of another date is not exported again, while a
//! rerun of the same date writes the same files again (its own entries are ignored and then
//! replaced). The ledger lives under the output's `state/` and is written only after the run
//! is published; `publish` does the storage I/O, this module only the bookkeeping.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::{Error, Result};

/// Where the ledger lives, relative to the output location.
pub const LEDGER_PATH: &str = "state/export_ledger.parquet";

/// (platform, conversion event_id) → date of the run that first exported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    entries: BTreeMap<(String, String), NaiveDate>,
}

impl Ledger {
    /// Whether the run of `date` must leave `event_id` out for `platform`: the run of another
    /// date exported it.
    pub fn already_exported(&self, platform: &str, event_id: &str, date: NaiveDate) -> bool {
        self.entries
            .get(&(platform.to_string(), event_id.to_string()))
            .is_some_and(|d| *d != date)
    }

    /// The ledger after the run of `date` exported `exported` (platform, event ids): the run's
    /// earlier entries are replaced by these.
    pub fn updated<'a>(
        &self,
        date: NaiveDate,
        exported: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Ledger {
        let mut entries: BTreeMap<(String, String), NaiveDate> = self
            .entries
            .iter()
            .filter(|(_, d)| **d != date)
            .map(|(k, d)| (k.clone(), *d))
            .collect();
        for (platform, ids) in exported {
            for id in ids {
                entries
                    .entry((platform.to_string(), id.clone()))
                    .or_insert(date);
            }
        }
        Ledger { entries }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ledger as a frame: platform, event_id, run_date (`YYYY-MM-DD`), sorted.
    pub fn to_frame(&self) -> Result<DataFrame> {
        let n = self.entries.len();
        let platform: Vec<&str> = self.entries.keys().map(|k| k.0.as_str()).collect();
        let event_id: Vec<&str> = self.entries.keys().map(|k| k.1.as_str()).collect();
        let run_date: Vec<String> = self
            .entries
            .values()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        Ok(DataFrame::new(
            n,
            vec![
                Column::new("platform".into(), platform),
                Column::new("event_id".into(), event_id),
                Column::new("run_date".into(), run_date),
            ],
        )?)
    }

    /// Read the frame [`Ledger::to_frame`] wrote.
    pub fn from_frame(df: &DataFrame) -> Result<Ledger> {
        let bad = |e: PolarsError| Error::Internal(format!("{LEDGER_PATH}: {e}"));
        let platform = df.column("platform").map_err(bad)?.str().map_err(bad)?;
        let event_id = df.column("event_id").map_err(bad)?.str().map_err(bad)?;
        let run_date = df.column("run_date").map_err(bad)?.str().map_err(bad)?;
        let mut entries = BTreeMap::new();
        for i in 0..df.height() {
            let (Some(p), Some(e), Some(d)) = (platform.get(i), event_id.get(i), run_date.get(i))
            else {
                continue;
            };
            let d = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|e| Error::Internal(format!("{LEDGER_PATH}: run_date {d:?}: {e}")))?;
            entries.insert((p.to_string(), e.to_string()), d);
        }
        Ok(Ledger { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_conversion_exported_by_another_date_is_held_back_but_a_rerun_is_not() {
        let ids = vec!["e1".to_string()];
        let ledger = Ledger::default().updated(d("2026-11-20"), [("meta", ids.as_slice())]);
        assert!(ledger.already_exported("meta", "e1", d("2026-11-21")));
        assert!(!ledger.already_exported("meta", "e1", d("2026-11-20")));
        assert!(!ledger.already_exported("google", "e1", d("2026-11-21")));
        // A rerun of 2026-11-20 that no longer exports e1 drops its entry.
        let rerun = ledger.updated(d("2026-11-20"), [("meta", &[][..])]);
        assert!(rerun.is_empty());
        // A later run does not move the first date.
        let later = ledger.updated(d("2026-11-21"), [("meta", ids.as_slice())]);
        assert!(later.already_exported("meta", "e1", d("2026-11-21")));
        let back = Ledger::from_frame(&later.to_frame().unwrap()).unwrap();
        assert_eq!(back, later);
    }
}
