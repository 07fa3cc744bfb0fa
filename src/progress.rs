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

    /// Enter a stage (the memory the previous one freed is handed back first: see
    /// [`release_memory`]).
    pub fn stage(&self, n: u64, what: &str) {
        release_memory();
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
    status_mb("VmHWM:")
}

/// The process's resident memory now, in MB (Linux: `VmRSS`; 0 elsewhere).
pub fn rss_mb() -> u64 {
    status_mb("VmRSS:")
}

/// A `kB` line of `/proc/self/status`, in MB (0 where that is not available).
fn status_mb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// The end of one step of a stage: hands freed memory back ([`release_memory`]) and logs, at
/// debug level under the caller's module (`lakestitch::read=debug`, ...), the time since
/// `$started` (an `Instant`), the peak memory so far and the memory held now (`live_mb`).
#[macro_export]
macro_rules! step_done {
    ($started:expr, $($msg:tt)+) => {{
        $crate::progress::release_memory();
        tracing::debug!(
            elapsed_s = $started.elapsed().as_secs_f64(),
            peak_rss_mb = $crate::progress::peak_rss_mb(),
            live_mb = $crate::progress::rss_mb(),
            $($msg)+
        )
    }};
}

/// [`release_memory`] once at least [`TRIM_AFTER_BYTES`] were just freed: a trim walks the
/// allocator's heaps (about 1.6 ms each on a 10M-event run's heap), and the copies of one
/// file's columns read again are not worth one each (about 400 trims, 0.6 s, at 10M events).
pub fn release_memory_after_freeing(bytes: usize) {
    if bytes >= TRIM_AFTER_BYTES {
        release_memory();
    }
}

/// What [`release_memory_after_freeing`] waits for.
const TRIM_AFTER_BYTES: usize = 32 << 20;

/// Make the allocator hand the memory freed so far back to the system (glibc's
/// `malloc_trim`; elsewhere nothing). Called between stages: a run allocates and frees large
/// column buffers stage after stage, and glibc otherwise keeps much of what is freed in its
/// heaps, so the process's resident memory only grows.
///
/// Measured at 10M events (see docs/performance.md): this alone, 5.6 GB peak; also setting
/// `M_TRIM_THRESHOLD` to 0 (every free at the top of a heap returned at once, big buffers in
/// their own mappings) gave 5.1 GB but cost about 8 s of page faults, so the run does not.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
