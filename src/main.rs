//! The `lakestitch` command: parses flags, builds a validated configuration, calls the
//! library, and maps the outcome to an exit code (0 success, 1 failure, 2 bad input or
//! configuration) in one place.

use std::io::{IsTerminal, Write};
use std::process::ExitCode as ProcessExit;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use lakestitch::explain::{self, Query};
use lakestitch::gen::GenOptions;
use lakestitch::pipeline;
use lakestitch::progress::Progress;
use lakestitch::quality;
use lakestitch::storage::{Access, Lake};
use lakestitch::{Error, ExitCode, JobFile};

#[derive(Parser, Debug)]
#[command(
    name = "lakestitch",
    version,
    about = "Nightly identity stitching over a Parquet data lake"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the nightly job: read the raw lake, stitch identities, publish a run.
    Run {
        /// The job file (TOML), e.g. jobs/nightly.toml.
        #[arg(long)]
        job: String,
        /// Logical run date (Airflow's ds); reads partitions with dt <= date. Default: today (UTC).
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        /// Input location, overriding the job file's [lake] input.
        #[arg(long)]
        input: Option<String>,
        /// Output location, overriding the job file's [lake] output.
        #[arg(long)]
        output: Option<String>,
        /// No progress display, log lines only.
        #[arg(long)]
        no_progress: bool,
    },
    /// Explain one person of a published run: ids, links, cuts, touches, journey, conversions.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["user", "anon"])))]
    Explain {
        /// The job file (TOML); its [lake] output is the run's location.
        #[arg(long)]
        job: String,
        /// A user id.
        #[arg(long)]
        user: Option<String>,
        /// A cookie (anon_id).
        #[arg(long)]
        anon: Option<String>,
        /// The run to read (default: the one `latest` names).
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        /// Print JSON (a stable shape, see src/explain.rs) instead of text.
        #[arg(long)]
        json: bool,
        /// Also read this raw lake and list the person's raw rows that did not reach its
        /// journey (quarantined, repeated deliveries, other persons). Without it (or --raw)
        /// the raw lake is not read.
        #[arg(long)]
        input: Option<String>,
        /// Like --input, with the job file's [lake] input location.
        #[arg(long)]
        raw: bool,
        /// Output location, overriding the job file's [lake] output.
        #[arg(long)]
        output: Option<String>,
    },
    /// Write a synthetic raw lake with its ground truth.
    Gen {
        /// Output location of the lake (raw/ and truth/ are written under it).
        #[arg(long)]
        output: String,
        /// Random persons on top of the hand-made stories.
        #[arg(long, default_value_t = 200)]
        persons: usize,
        /// Days of history.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Random seed: the same seed gives the same lake.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Last day of the lake (default: 2026-11-21).
        #[arg(long, value_parser = parse_date)]
        end_date: Option<NaiveDate>,
        /// Leave out the hand-made stories.
        #[arg(long)]
        no_stories: bool,
        /// Multiply each person's number of visits (2 to 6) by this: longer histories of the
        /// same people, so more events per identity.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        visits_scale: u32,
    },
    /// Measure a run's stitching quality against the ground truth of a generated lake.
    Quality {
        /// The generated lake (holds truth/events and truth/humans).
        #[arg(long)]
        lake: String,
        /// The run's output location (holds runs/<date>/ and latest).
        #[arg(long)]
        run: String,
        /// The run date to judge. Default: the run named by `latest`.
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        /// Print the measures as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a date YYYY-MM-DD"))
}

fn main() -> ProcessExit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ProcessExit::from(if e.use_stderr() {
                ExitCode::BadInput as u8
            } else {
                0
            });
        }
    };
    init_logging();
    match dispatch(cli) {
        Ok(()) => ProcessExit::from(ExitCode::Success as u8),
        Err(e) => {
            tracing::error!("{e}");
            if !tracing::enabled!(tracing::Level::ERROR) {
                eprintln!("error: {e}");
            }
            ProcessExit::from(e.exit_code() as u8)
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run {
            job,
            date,
            input,
            output,
            no_progress,
        } => {
            let cfg = JobFile::load(&job)?.into_config(&job, date, input, output);
            tracing::info!(date = %cfg.date, input = %cfg.input, output = %cfg.output, "lakestitch run");
            let progress = Progress::new(pipeline::STAGES, !no_progress);
            let summary = pipeline::run(&cfg, &progress)?;
            let m = &summary.manifest;
            let ev = m.inputs.get("events");
            progress.finish(&format!(
                "published {}/{}: {} events used ({} deduplicated, {} quarantined), {} persons, {} refused unions",
                cfg.output.trim_end_matches('/'),
                summary.run_path,
                ev.map_or(0, |s| s.rows_used),
                ev.map_or(0, |s| s.rows_deduplicated),
                ev.map_or(0, |s| s.rows_quarantined),
                m.identity.persons,
                m.identity.refused_unions,
            ));
            Ok(())
        }
        Command::Explain {
            job,
            user,
            anon,
            date,
            json,
            input,
            raw,
            output,
        } => {
            let trace_raw = raw || input.is_some();
            let cfg = JobFile::load(&job)?.into_config(&job, date, input, output);
            let out = Lake::open_with(&cfg.output, Access::Read, &cfg.storage)?;
            let query = match (user, anon) {
                (Some(u), _) => Query::user(u),
                (None, Some(a)) => Query::anon(a),
                (None, None) => return Err(Error::Usage("give --user or --anon".into())),
            };
            let started = std::time::Instant::now();
            let mut explanation = explain::explain(&out, date, &query)?;
            if trace_raw {
                let input = Lake::open(&cfg.input, Access::Read)?;
                explain::raw::trace(&out, &input, &mut explanation)?;
            }
            tracing::debug!(
                elapsed_s = started.elapsed().as_secs_f64(),
                published_bytes_fetched = out.bytes_fetched(),
                "explained"
            );
            let mut stdout = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut stdout, &explanation)?;
                writeln!(stdout)?;
            } else {
                write!(stdout, "{}", explanation.to_text())?;
            }
            Ok(())
        }
        Command::Gen {
            output,
            persons,
            days,
            seed,
            end_date,
            no_stories,
            visits_scale,
        } => {
            let opts = GenOptions {
                persons,
                days,
                seed,
                end_date: end_date
                    .unwrap_or(NaiveDate::from_ymd_opt(2026, 11, 21).expect("a date")),
                stories: !no_stories,
                visits_scale,
            };
            let s = pipeline::generate(&output, &opts)?;
            tracing::info!(
                events = s.events,
                touches = s.touches,
                users = s.users,
                humans = s.humans,
                "wrote synthetic lake to {output}"
            );
            Ok(())
        }
        Command::Quality {
            lake,
            run,
            date,
            json,
        } => {
            let q = quality::measure(&lake, &run, date)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&q)?);
            } else {
                print!("{}", quality_report(&q));
            }
            Ok(())
        }
    }
}

fn quality_report(q: &quality::Quality) -> String {
    let mut s = String::new();
    let pct = |x: f64| format!("{:.4}", x);
    s += &format!(
        "events scored        {} of {} in the truth ({} missing from journeys: quarantined; {} in journeys not in the truth)\n",
        q.events_scored, q.truth_events, q.events_missing, q.events_unknown
    );
    s += &format!(
        "clusters             {} persons for {} humans\n",
        q.persons, q.humans
    );
    s += &format!("b-cubed precision    {}\n", pct(q.bcubed.precision));
    s += &format!("b-cubed recall       {}\n", pct(q.bcubed.recall));
    s += &format!("b-cubed f1           {}\n", pct(q.bcubed.f1));
    s += &format!(
        "first-touch accuracy {} ({} of {} humans with a first touch; {} without a person)\n",
        pct(q.first_touch_accuracy),
        q.first_touch_correct,
        q.humans_with_first_touch,
        q.first_touch_unmapped
    );
    if let (Some(acc), Some(ok), Some(n)) = (
        q.user_first_touch_accuracy,
        q.user_first_touch_correct,
        q.users_with_first_touch,
    ) {
        s += &format!(
            "user first touch     {} ({} of {} users, from user_attribution)\n",
            pct(acc),
            ok,
            n
        );
    }
    s
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAKESTITCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
