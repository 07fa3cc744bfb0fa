//! The nightly run, stage by stage: read → identity → stitch → attribute → export → publish.
//!
//! Storage is touched only by `read` (the raw lake), `publish` (tables, export files, manifest,
//! markers) and the export ledger under `state/`, read before the export stage and written
//! after the run is published.

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::publish::{self, manifest::Changes, Manifest};
use crate::storage::{Access, Lake};
use crate::{attribute, export, identity, read, report, stitch};

/// What a successful run published.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run folder, relative to the output location.
    pub run_path: String,
    /// The manifest written.
    pub manifest: Manifest,
}

/// Number of progress stages of a run.
pub const STAGES: u64 = 6;

/// Run the job: open the locations, then [`run_with`].
pub fn run(cfg: &JobConfig, progress: &Progress) -> Result<RunSummary> {
    let input = Lake::open_with(&cfg.input, Access::Read, &cfg.storage)?;
    let output = Lake::open_with(&cfg.output, Access::Write, &cfg.storage)?;
    run_with(&input, &output, cfg, progress)
}

/// Run the job over opened locations (tests pass in-memory stores).
pub fn run_with(
    input: &Lake,
    output: &Lake,
    cfg: &JobConfig,
    progress: &Progress,
) -> Result<RunSummary> {
    let started = chrono::Utc::now();
    progress.stage(1, "read: raw lake");
    let raw = read::read_lake(input, cfg)?;
    reconcile(&raw)?;

    progress.stage(
        2,
        "identity: segments and persons (touches classified beside)",
    );
    let mut raw = raw;
    // Which touches count and their channels depend on the touches alone: worked out beside
    // the identity graph (both mostly one thread).
    let event_ids = |rows: &[u32]| read::event_ids(input, &raw.event_files, &raw.events, rows);
    // Which click ids each touch carries is read beside them, while the click ids are held:
    // the exports choose their touches from it before they read any touch again. The phone
    // numbering plans the exports read numbers with are loaded there too.
    let (facts, graph) = crate::parallel::join(
        || -> Result<_> {
            let facts = stitch::touch_facts(&raw)?;
            let clicks = export::gather::TouchClicks::of(&raw.touches, &raw.touch_text)?;
            export::load_phone_plans();
            Ok((facts, clicks))
        },
        || identity::build(&raw, cfg, &event_ids),
    );
    // The graph's error first, as when it ran alone.
    let graph = graph?;
    let (facts, clicks) = facts?;
    // The events' user and previous ids (as codes) are read by the identity graph only
    // (journeys show the resolved user, and `raw_user_id` is read again from the raw files).
    // The events' ids are not held after read: identity read those it names again, the
    // conversions have theirs (`RawLake::conversions`) and `journeys` reads them again with
    // its other columns when each day is written.
    raw.events = raw.events.drop_many(["_user", "_prev"]);

    progress.stage(3, "stitch: journeys and touches");
    // From here on the touches are read for their time (stitch and attribution, which use the
    // channels classified above): the JSON of the touches the tables show is rendered, and the
    // other columns of all touches and their text's dictionaries are freed (`pick_touches`).
    // The columns not held (and, in the export stage, those the exports read) are read again
    // from the raw touch files for the touches that show them.
    let touch_files = raw.touch_files.clone();
    let touches_again = |at: &polars::prelude::DataFrame, names: &[&str]| {
        read::touch_columns(input, &touch_files, at, names)
    };
    let picks = stitch::pick_touches(&mut raw, &graph, &facts, &touches_again)?;
    // The tables of persons, cookies and users are written as they are built: their touch
    // JSON is the biggest text of the run, and each is freed once written (before attribution
    // and the exports build theirs). Nothing is published until `_SUCCESS` (written last,
    // below).
    let date = cfg.date;
    publish::clear_run(output, date)?;
    let early = std::sync::Mutex::new(EarlyTables::default());
    let sink = |name: &'static str, df: polars::prelude::DataFrame| {
        let lock = || {
            early
                .lock()
                .map_err(|_| Error::Internal("a table writer thread panicked".into()))
        };
        match name {
            "persons" => {
                let changes = publish::first_touch_changes(output, date, &df)?;
                let report = df.select(["anon_count"])?;
                let mut e = lock()?;
                e.changes = changes;
                e.report_persons = report;
            }
            "user_attribution" => lock()?.report_users = df.select(["first_touch_channel"])?,
            _ => {}
        }
        let stat = publish::write_table(output, date, name, &df)?;
        drop(df);
        crate::progress::release_memory();
        lock()?.outputs.insert(name.to_string(), stat);
        Ok(polars::prelude::DataFrame::empty())
    };
    // The exports' first step reads none of the tables: it chooses each conversion's touches
    // and reads their click columns again on the first of stitch's threads to be free, while
    // the other writes the last table. (Attribution and the conversions' gathering there too
    // held their records beside the last table: a peak up to about 450 MB higher, for no time.)
    let export_touches = std::sync::Mutex::new(None);
    let poisoned = || Error::Internal("the exports' touches were poisoned".into());
    let choose_touches = || -> Result<()> {
        let started = std::time::Instant::now();
        let chosen = export::gather::export_touches(&raw, &graph, &clicks, &touches_again)?;
        tracing::debug!(
            elapsed_s = started.elapsed().as_secs_f64(),
            "export: touches chosen and read again (beside stitch)"
        );
        *export_touches.lock().map_err(|_| poisoned())? = Some(chosen);
        Ok(())
    };
    let mut tables = stitch::stitch_into(
        &raw,
        &graph,
        facts,
        picks,
        cfg,
        &sink,
        Some(&choose_touches),
    )?;
    drop(clicks);
    let export_touches = (export_touches.into_inner().map_err(|_| poisoned())?)
        .ok_or_else(|| Error::Internal("the exports' touches were not chosen".into()))?;
    let EarlyTables {
        mut outputs,
        changes: (previous, changed, previous_persons),
        report_persons,
        report_users,
    } = early
        .into_inner()
        .map_err(|_| Error::Internal("a table writer thread panicked".into()))?;
    let stat = publish::write_table(output, date, "refused_unions", &tables.refused_unions)?;
    outputs.insert("refused_unions".to_string(), stat);
    tables.refused_unions = polars::prelude::DataFrame::empty();
    // Attribution and the exports read the graph's persons and the person of each event and
    // touch only: the rest (about 400 MB at 10M events) is freed before they build theirs.
    let mut graph = graph;
    graph.keep_persons_only();
    crate::progress::release_memory();
    tracing::info!(
        peak_rss_mb = crate::progress::peak_rss_mb(),
        "publish: persons, cookies and users written"
    );

    // Attribution and the exports read the same stitched tables and nothing of each other:
    // side by side (each mostly one thread).
    progress.stage(
        4,
        "attribute and export: channels, models, ad-platform files",
    );
    let ledger = publish::read_ledger(output)?;
    let (attribution, exports) = crate::parallel::join(
        || {
            let started = std::time::Instant::now();
            let attribution = attribute_stage(&raw, &graph, &tables, cfg);
            tracing::debug!(
                elapsed_s = started.elapsed().as_secs_f64(),
                "attribute: credited"
            );
            attribution
        },
        || -> Result<(Vec<export::Conversion>, export::Exports)> {
            let started = std::time::Instant::now();
            let log = |step: &str| {
                tracing::debug!(
                    elapsed_s = started.elapsed().as_secs_f64(),
                    "export: {step}"
                )
            };
            let conversions = export::gather::conversions(&raw, &graph, &tables, &export_touches)?;
            drop(export_touches);
            log("conversions gathered");
            let exports = export::export(&conversions, &ledger, cfg.date, &cfg.exports)?;
            log("platform batches built");
            Ok((conversions, exports))
        },
    );
    let (attribution, (conversions, exports)) = (attribution?, exports?);
    // What publishing still needs of the raw lake and the graph: free the rest (the events'
    // personal-data columns, the touches, the per-event id vectors) before the biggest writes.
    let read::RawLake {
        events,
        touches,
        users,
        quarantine,
        event_files,
        stats: input_stats,
        ..
    } = raw;
    drop((events, touches, users));
    let identity_stats = graph.stats.clone();
    drop(graph);
    tables.touch_channels = Default::default();

    progress.stage(5, "publish: tables and export files");
    // journeys: by person within each day (so a reader of one person skips most row groups),
    // with the columns not held in memory read again from the raw files, day by day.
    let reread = tables.journey_columns(input, &event_files)?;
    let journey_day = |part| stitch::journey_day(part, &reread);
    let coded = tables.journey_coded();
    let journeys = publish::Partition {
        days: &tables.journey_days,
        finish: Some(&journey_day),
        coded: &coded,
    };
    let mut files: Vec<publish::TableToWrite<'_>> =
        vec![("journeys", &tables.journeys, Some(journeys))];
    files.extend([
        ("attribution", &attribution.attribution, None),
        ("attribution_summary", &attribution.summary, None),
        ("quarantine", &quarantine, None),
    ]);
    // Beside the tables (each mostly one thread, and short): the ledger as it will be once
    // this run is published (written after the commit), `export_status` and the export files.
    let (stats, exported) = crate::parallel::join(
        || publish::write_tables(output, date, &files),
        || -> Result<_> {
            let ledger_file = publish::ledger_file(&ledger.updated(date, exports.exported()))?;
            let status =
                publish::write_table(output, date, "export_status", &exports.status_frame()?)?;
            let export_stats =
                publish::write_exports(output, date, &exports, conversions.len() as u64)?;
            Ok((ledger_file, status, export_stats))
        },
    );
    let stats = stats?;
    let (ledger_file, status, export_stats) = exported?;
    outputs.extend(files.iter().map(|(name, _, _)| name.to_string()).zip(stats));
    outputs.insert("export_status".to_string(), status);

    progress.stage(6, "publish: report, manifest, _SUCCESS, latest");
    let manifest = Manifest {
        run_date: date.format("%Y-%m-%d").to_string(),
        status: "succeeded".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        job: cfg.job_file.clone(),
        input: input.url().to_string(),
        output: output.url().to_string(),
        inputs: input_stats,
        identity: identity_stats,
        stitch: tables.stats.clone(),
        attribution: attribution.stats.clone(),
        outputs,
        exports: export_stats,
        changes: Changes {
            previous_run: previous.map(|d| d.format("%Y-%m-%d").to_string()),
            first_touch_changed: changed,
            previous_persons,
        },
        report: publish::report_path(date),
    };
    let html = report::render(&report::ReportInput {
        manifest: &manifest,
        persons: &report_persons,
        user_attribution: &report_users,
        attribution_summary: &attribution.summary,
        match_keys: &report::MatchKeys::of(&conversions),
        previous_persons,
    })?;
    // What the run built is not needed any more: it is freed on a thread of its own while the
    // run commits (freeing the conversions' and the exports' many small values took about
    // 0.4 s at 10M events, on the run's last, single-threaded stage). A process that exits
    // right after the run does not wait for it.
    drop(files);
    let built = (
        conversions,
        exports,
        tables,
        attribution,
        ledger,
        quarantine,
        report_persons,
        report_users,
    );
    std::thread::spawn(move || drop(built));
    publish::write_report(output, date, html)?;
    publish::commit(output, date, &manifest)?;
    // Only a published run counts as exported.
    publish::write_ledger(output, ledger_file)?;
    Ok(RunSummary {
        run_path: publish::run_prefix(date),
        manifest,
    })
}

/// What the run keeps of the tables written during stitch: their files, the first-touch
/// changes against the previous run (from `persons`) and the report's columns.
#[derive(Default)]
struct EarlyTables {
    outputs: std::collections::BTreeMap<String, publish::TableStat>,
    changes: (Option<chrono::NaiveDate>, Option<u64>, Option<u64>),
    report_persons: polars::prelude::DataFrame,
    report_users: polars::prelude::DataFrame,
}

/// Stage 4, **attribute**: credit every conversion of the run to the touches of its person,
/// under every model (public so the end-to-end benchmark can time it apart).
pub fn attribute_stage(
    raw: &read::RawLake,
    graph: &identity::IdentityGraph,
    tables: &stitch::Tables,
    cfg: &JobConfig,
) -> Result<attribute::Attribution> {
    let events = raw.conversions.clone();
    let event_person: Vec<u32> = events
        .column("_i")?
        .idx()?
        .into_no_null_iter()
        .map(|i| graph.event_persons()[i as usize])
        .collect();
    let conversions =
        attribute::conversions_from_events(&events, &event_person, &cfg.events.conversions)?;
    let input = attribute::AttributionInput {
        touches: &raw.touches,
        extra_keys: &raw.touch_extra_keys,
        classified: Some(&tables.touch_channels),
        touch_person: &graph.touch_person,
        counting: &tables.touch_counts,
        person_ids: &tables.person_ids,
        person_users: &tables.person_users,
        conversions: &conversions,
    };
    attribute::attribute(&input, &cfg.attribution)
}

/// Every source's counts must add up before anything is published.
fn reconcile(raw: &read::RawLake) -> Result<()> {
    for (name, s) in &raw.stats {
        if s.rows_read != s.rows_used + s.rows_deduplicated + s.rows_quarantined {
            return Err(Error::Internal(format!(
                "{name}: rows_read {} != used {} + deduplicated {} + quarantined {}",
                s.rows_read, s.rows_used, s.rows_deduplicated, s.rows_quarantined
            )));
        }
    }
    Ok(())
}

/// Write a synthetic raw lake (and its ground truth under `truth/`) to `output`.
pub fn generate(output: &str, opts: &crate::gen::GenOptions) -> Result<GenSummary> {
    let out = Lake::open(output, Access::Write)?;
    let lake = crate::gen::generate(opts)?;
    let mut summary = GenSummary::default();
    let day = |d: &chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    for (dt, df) in &lake.touches {
        out.put(
            &format!("raw/touches/dt={}/part-00000.parquet", day(dt)),
            publish::parquet_bytes(df)?,
        )?;
        summary.touches += df.height() as u64;
    }
    for (dt, df) in &lake.events {
        out.put(
            &format!("raw/events/dt={}/part-00000.parquet", day(dt)),
            publish::parquet_bytes(df)?,
        )?;
        summary.events += df.height() as u64;
    }
    let singles = [
        ("raw/users/part-00000.parquet", &lake.users),
        ("raw/orgs/part-00000.parquet", &lake.orgs),
        ("raw/memberships/part-00000.parquet", &lake.memberships),
        ("truth/events/part-00000.parquet", &lake.truth_events),
        ("truth/humans/part-00000.parquet", &lake.truth_humans),
    ];
    for (path, df) in singles {
        out.put(path, publish::parquet_bytes(df)?)?;
    }
    summary.users = lake.users.height() as u64;
    summary.humans = lake.truth_humans.height() as u64;
    Ok(summary)
}

/// What `generate` wrote.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    /// Event rows (with duplicated deliveries).
    pub events: u64,
    /// Touch rows.
    pub touches: u64,
    /// Users.
    pub users: u64,
    /// Humans in the ground truth.
    pub humans: u64,
}
