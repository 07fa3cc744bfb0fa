//! Micro-benchmarks of the hot parts of a run, on a generated lake (criterion).
//!
//! ```text
//! cargo bench --bench micro                      # all, about a minute
//! cargo bench --bench micro -- union_find        # one group
//! LAKESTITCH_BENCH_PERSONS=20000 cargo bench --bench micro
//! ```
//! The lake (5,000 random persons by default, about 65,000 events and 20,000 touches) is
//! generated and read once; each benchmark then times one step over its columns. Samples are
//! few and short on purpose (10 samples, 2 s): these show where time goes and catch large
//! regressions, they are not a fine-grained timing harness.

use std::time::Duration;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use lakestitch::attribute::channel::classify_touches;
use lakestitch::config::JobConfig;
use lakestitch::gen::GenOptions;
use lakestitch::identity::segments::{segment, EventKind};
use lakestitch::identity::union_find::{UnionFind, NONE};
use lakestitch::identity::{dictionary, encode, encode_lake};
use lakestitch::pipeline;
use lakestitch::read::{read_lake, RawLake, TOUCH_REREAD_COLS};
use lakestitch::stitch::touches::to_json;
use lakestitch::storage::{Access, Lake};

struct Fixture {
    raw: RawLake,
    cfg: JobConfig,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let persons = std::env::var("LAKESTITCH_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = tempfile::tempdir().expect("a temp dir");
    let lake = dir.path().join("lake");
    let lake = lake.to_str().expect("utf-8 path");
    let end = NaiveDate::from_ymd_opt(2026, 11, 21).expect("a date");
    let opts = GenOptions {
        persons,
        days: 30,
        seed: 42,
        end_date: end,
        stories: false,
        visits_scale: 1,
    };
    pipeline::generate(lake, &opts).expect("generate");
    let cfg = JobConfig::new(lake, "memory://", end);
    let input = Lake::open(lake, Access::Read).expect("open lake");
    let raw = read_lake(&input, &cfg).expect("read lake");
    Fixture {
        raw,
        cfg,
        _dir: dir,
    }
}

fn benches(c: &mut Criterion) {
    let fx = fixture();
    let raw = &fx.raw;
    let n_events = raw.events.height() as u64;
    let n_touches = raw.touches.height() as u64;
    // The read stage holds the events' cookies as codes into a sorted dictionary; identity
    // merges it with the touches' cookies.
    let event_anon = &raw.event_codes.anon;
    let touch_anon = raw.touches.column("anon_id").unwrap();
    let touch_anon = touch_anon.as_materialized_series();

    // The id dictionary and the encoding of ids as dense integers.
    let mut g = c.benchmark_group("ids");
    g.throughput(Throughput::Elements(event_anon.len() as u64 + n_touches));
    g.bench_function("dictionary/anon_id", |b| {
        b.iter(|| dictionary(&[event_anon, touch_anon]).unwrap())
    });
    let dict = dictionary(&[event_anon, touch_anon]).unwrap();
    g.throughput(Throughput::Elements(n_touches));
    g.bench_function("encode/touches.anon_id", |b| {
        b.iter(|| encode(touch_anon, &dict).unwrap())
    });
    g.throughput(Throughput::Elements(n_events + n_touches));
    g.bench_function("encode_lake", |b| {
        b.iter(|| encode_lake(raw, &fx.cfg).unwrap())
    });
    g.finish();

    // Cutting every cookie into segments.
    let enc = encode_lake(raw, &fx.cfg).unwrap();
    let mut g = c.benchmark_group("segments");
    g.throughput(Throughput::Elements(n_events + n_touches));
    g.bench_function("segment", |b| {
        b.iter(|| {
            segment(
                enc.anon_ids.len(),
                &enc.events,
                &enc.touch_anon,
                &enc.touch_ts,
            )
        })
    });
    g.finish();

    // Union-find: the run's own unions (segment–user links and aliases, in event order), and
    // random unions over as many nodes (no locality at all).
    let seg = segment(
        enc.anon_ids.len(),
        &enc.events,
        &enc.touch_anon,
        &enc.touch_ts,
    );
    let s = seg.segments.len() as u32;
    let mut labels: Vec<u32> = seg.segments.iter().map(|sg| sg.user).collect();
    labels.extend(0..enc.user_ids.len() as u32);
    let ev = &enc.events;
    let mut edges: Vec<(u32, u32)> = Vec::new();
    for e in 0..ev.anon.len() {
        let own = seg.event_segment[e];
        if own != NONE && ev.user[e] != NONE {
            edges.push((own, s + ev.user[e]));
        }
        let prev = seg.alias_prev_segment[e];
        if ev.kind[e] == EventKind::Alias && own != NONE && prev != NONE {
            edges.push((own, prev));
        }
    }
    let n_nodes = labels.len() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let random: Vec<(u32, u32)> = (0..edges.len())
        .map(|_| (rng.random_range(0..n_nodes), rng.random_range(0..n_nodes)))
        .collect();
    let mut g = c.benchmark_group("union_find");
    g.throughput(Throughput::Elements(edges.len() as u64));
    for (name, list) in [("run_links", &edges), ("random", &random)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || UnionFind::new(labels.clone()),
                |mut uf| {
                    for &(a, b) in list.iter() {
                        uf.union(a, b);
                    }
                    for x in 0..n_nodes {
                        std::hint::black_box(uf.find(x));
                    }
                    uf
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();

    // GA4 channel classification of every touch.
    let mut g = c.benchmark_group("channels");
    g.throughput(Throughput::Elements(n_touches));
    // The run holds the touches' text as codes; classification reads their values.
    let touches = raw
        .touch_text
        .decode(&raw.touches, None)
        .expect("touch text");
    g.bench_function("classify_touches", |b| {
        b.iter(|| classify_touches(&touches, &raw.touch_extra_keys).unwrap())
    });
    g.finish();

    // The touch JSON of `persons`, `anon_visitors` and `user_attribution`: every touch
    // rendered (the run renders those the tables show, with the columns it reads again,
    // here null).
    let mut touches = touches;
    for name in TOUCH_REREAD_COLS {
        let nulls = polars::prelude::Series::full_null(
            name.into(),
            touches.height(),
            &polars::prelude::DataType::String,
        );
        touches.with_column(nulls.into()).expect("a column");
    }
    let mut g = c.benchmark_group("touch_json");
    g.throughput(Throughput::Elements(n_touches));
    g.bench_function("to_json", |b| {
        b.iter(|| to_json(&touches, &raw.touch_extra_keys).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(micro);
