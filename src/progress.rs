//! Progress: a spinner with the current stage on a terminal, plain log lines otherwise
//! (cron, Airflow).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports the stages of a run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
}

impl Progress {
    /// A progress display for `total` stages: a spinner when stderr is a terminal and
    /// `enabled`, log lines otherwise.
    pub fn new(total: u64, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            total,
            started: Instant::now(),
        }
    }

    /// A run with no display at all (library use, tests).
    pub fn hidden() -> Self {
        Progress {
            bar: None,
            total: 0,
            started: Instant::now(),
        }
    }

    /// Enter a stage.
    pub fn stage(&self, n: u64, what: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(n - 1);
                bar.set_message(what.to_string());
            }
            None if self.total > 0 => tracing::info!(
                stage = n,
                of = self.total,
                elapsed_s = self.started.elapsed().as_secs_f64(),
                peak_rss_mb = peak_rss_mb(),
                "{what}"
            ),
            None => {}
        }
    }

    /// Leave the display with a final message.
    pub fn finish(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(msg.to_string()),
            None if self.total > 0 => {
                tracing::info!(
                    elapsed_s = self.started.elapsed().as_secs_f64(),
                    peak_rss_mb = peak_rss_mb(),
                    "{msg}"
                )
            }
            None => {}
        }
    }

    /// Print a line without breaking the display.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => tracing::info!("{line}"),
        }
    }
}

/// The process's peak resident memory so far, in MB (Linux: `VmHWM` of `/proc/self/status`;
/// 0 where that is not available). Logged with each stage, so a run's log shows which stage
/// set the peak.
pub fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
