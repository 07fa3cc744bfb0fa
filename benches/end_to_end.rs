//! End-to-end benchmark: generate a synthetic lake, run each stage of the nightly job on it,
//! report wall time per stage, events per second and peak memory (VmHWM).
//!
//! ```text
//! cargo bench --bench end_to_end -- --persons 100000 [--days 30] [--lake DIR]
//! cargo bench --bench end_to_end -- --events 1000000 [--days 30] [--lake DIR]
//! ```
//! `--events N` asks for a lake of about N raw events: the generator makes about 13 events per
//! random person, so it generates N / 13 persons. With `--lake DIR` the lake is generated once
//! into DIR and reused by later invocations. Times are measured, never asserted.

use std::time::Instant;

use chrono::NaiveDate;
use lakestitch::config::JobConfig;
use lakestitch::gen::GenOptions;
use lakestitch::storage::{Access, Lake};
use lakestitch::{identity, pipeline, publish, read, stitch};

/// Raw events per random person of the generator (see `lakestitch::gen`).
const EVENTS_PER_PERSON: usize = 13;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Peak resident memory so far, MB (the run's own measure, as logged with each stage).
fn peak_rss_mb() -> f64 {
    lakestitch::progress::peak_rss_mb() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list` probes benches
    }
    let persons: usize = match (arg("--persons"), arg("--events")) {
        (Some(p), _) => p.parse()?,
        (None, Some(e)) => (e.parse::<usize>()? / EVENTS_PER_PERSON).max(1),
        (None, None) => 20_000,
    };
    let days: u32 = arg("--days").map_or(Ok(30), |v| v.parse())?;
    let end = NaiveDate::from_ymd_opt(2026, 11, 21).expect("a date");
    let tmp = tempfile::tempdir()?;
    let lake_dir = arg("--lake").map_or_else(|| tmp.path().join("lake"), Into::into);
    let out_dir = tmp.path().join("out");

    if !lake_dir.join("raw").exists() {
        let t = Instant::now();
        let opts = GenOptions {
            persons,
            days,
            seed: 42,
            end_date: end,
            stories: false,
            visits_scale: 1,
        };
        let s = pipeline::generate(lake_dir.to_str().expect("utf-8 path"), &opts)?;
        println!(
            "gen: {} persons, {} events, {} touches in {:.1}s",
            persons,
            s.events,
            s.touches,
            t.elapsed().as_secs_f64()
        );
    }

    let cfg = JobConfig::new(
        lake_dir.to_str().expect("utf-8 path"),
        out_dir.to_str().expect("utf-8 path"),
        end,
    );
    let input = Lake::open(&cfg.input, Access::Read)?;
    let output = Lake::open(&cfg.output, Access::Write)?;
    let rss0 = peak_rss_mb();
    // Reset the high-water mark, so the peak below is the run's, not the generator's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let total = Instant::now();

    let t = Instant::now();
    let mut raw = read::read_lake(&input, &cfg)?;
    let t_read = t.elapsed().as_secs_f64();
    let events = raw.stats["events"].rows_read;

    let t = Instant::now();
    let event_ids = |rows: &[u32]| read::event_ids(&input, &raw.event_files, &raw.events, rows);
    let graph = identity::build(&raw, &cfg, &event_ids)?;
    let t_identity = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let facts = stitch::touch_facts(&raw)?;
    let touch_files = raw.touch_files.clone();
    let touches_again = |at: &polars::prelude::DataFrame, names: &[&str]| {
        read::touch_columns(&input, &touch_files, at, names)
    };
    let picks = stitch::pick_touches(&mut raw, &graph, &facts, &touches_again)?;
    let tables = stitch::stitch(&raw, &graph, facts, picks, &cfg)?;
    let t_stitch = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let attribution = pipeline::attribute_stage(&raw, &graph, &tables, &cfg)?;
    let t_attribute = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for (name, df) in tables.by_name() {
        if name == "journeys" {
            let reread = tables.journey_columns(&input, &raw.event_files)?;
            let finish = |part| stitch::journey_day(part, &reread);
            let coded = tables.journey_coded();
            let days = publish::Partition {
                days: &tables.journey_days,
                finish: Some(&finish),
                coded: &coded,
            };
            publish::write_partitioned(&output, cfg.date, name, df, days)?;
        } else {
            publish::write_table(&output, cfg.date, name, df)?;
        }
    }
    publish::write_table(&output, cfg.date, "attribution", &attribution.attribution)?;
    publish::write_table(
        &output,
        cfg.date,
        "attribution_summary",
        &attribution.summary,
    )?;
    publish::write_table(&output, cfg.date, "quarantine", &raw.quarantine)?;
    let t_publish = t.elapsed().as_secs_f64();
    let wall = total.elapsed().as_secs_f64();

    println!("events read      {events}");
    println!("persons          {}", graph.stats.persons);
    println!("read             {t_read:8.2}s");
    println!("identity         {t_identity:8.2}s");
    println!("stitch           {t_stitch:8.2}s");
    println!("attribute        {t_attribute:8.2}s");
    println!("publish tables   {t_publish:8.2}s");
    println!(
        "total            {wall:8.2}s  ({:.0} events/s)",
        events as f64 / wall
    );
    println!(
        "peak RSS         {:8.0} MB ({})",
        peak_rss_mb(),
        if reset {
            format!("of the run; peak before it, generation included: {rss0:.0} MB")
        } else {
            format!("of the process, generation included; before the run: {rss0:.0} MB")
        }
    );
    Ok(())
}
