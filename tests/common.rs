//! Test helpers: a raw-lake builder and readers of published tables.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use lakestitch::config::JobConfig;
use lakestitch::pipeline::{self, RunSummary};
use lakestitch::progress::Progress;
use lakestitch::storage::{Access, Lake};
use polars::prelude::*;

/// Microseconds of an RFC 3339 time.
pub fn us(ts: &str) -> i64 {
    DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|e| panic!("bad test time {ts}: {e}"))
        .with_timezone(&Utc)
        .timestamp_micros()
}

/// The end date of [`generated_lake`]s.
pub const GEN_DATE: &str = "2026-11-21";

/// A generated lake (hand-made stories and `persons` random people, ending on [`GEN_DATE`]),
/// without its truth.
pub fn generated_lake(persons: usize) -> TestLake {
    let lake = TestLake::new();
    let opts = lakestitch::gen::GenOptions {
        persons,
        days: 30,
        seed: 11,
        end_date: date(GEN_DATE),
        stories: true,
        visits_scale: 1,
    };
    pipeline::generate(lake.input().to_str().unwrap(), &opts).unwrap();
    std::fs::remove_dir_all(lake.input().join("truth")).unwrap();
    lake
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// One raw event.
#[derive(Debug, Clone, Default)]
pub struct Ev {
    pub event_id: Option<String>,
    pub event: Option<String>,
    pub ts: Option<i64>,
    pub anon_id: Option<String>,
    pub user_id: Option<String>,
    pub previous_id: Option<String>,
    pub seq: Option<i64>,
    pub org_id: Option<String>,
    pub tracking_version: Option<i32>,
    pub value: Option<f64>,
    pub currency: Option<String>,
    pub email: Option<String>,
    pub properties: Option<String>,
    pub user_agent: Option<String>,
}

/// An event `id` named `event` at `ts` from cookie `anon` and user `user`.
pub fn ev(id: &str, event: &str, ts: &str, anon: Option<&str>, user: Option<&str>) -> Ev {
    Ev {
        event_id: Some(id.into()),
        event: Some(event.into()),
        ts: Some(us(ts)),
        anon_id: anon.map(Into::into),
        user_id: user.map(Into::into),
        ..Default::default()
    }
}

impl Ev {
    pub fn seq(mut self, s: i64) -> Self {
        self.seq = Some(s);
        self
    }
    pub fn prev(mut self, p: &str) -> Self {
        self.previous_id = Some(p.into());
        self
    }
    pub fn org(mut self, o: &str) -> Self {
        self.org_id = Some(o.into());
        self
    }
    pub fn version(mut self, v: i32) -> Self {
        self.tracking_version = Some(v);
        self
    }
    pub fn purchase(mut self, value: f64, email: Option<&str>) -> Self {
        self.value = Some(value);
        self.currency = Some("USD".into());
        self.email = email.map(Into::into);
        self
    }
    pub fn props(mut self, p: &str) -> Self {
        self.properties = Some(p.into());
        self
    }
}

/// One raw touch.
#[derive(Debug, Clone, Default)]
pub struct Touch {
    pub anon_id: Option<String>,
    pub ts: Option<i64>,
    pub gclid: Option<String>,
    pub fbclid: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub landing_url: Option<String>,
    pub referrer: Option<String>,
    pub extra: Option<(String, String)>,
}

pub fn touch(anon: &str, ts: &str) -> Touch {
    Touch {
        anon_id: Some(anon.into()),
        ts: Some(us(ts)),
        landing_url: Some("https://www.example.com/".into()),
        ..Default::default()
    }
}

impl Touch {
    pub fn gclid(mut self, g: &str) -> Self {
        self.gclid = Some(g.into());
        self
    }
    pub fn fbclid(mut self, f: &str) -> Self {
        self.fbclid = Some(f.into());
        self
    }
    pub fn utm(mut self, source: &str, medium: &str, campaign: &str) -> Self {
        self.utm_source = Some(source.into());
        self.utm_medium = Some(medium.into());
        self.utm_campaign = Some(campaign.into());
        self
    }
    pub fn referrer(mut self, r: &str) -> Self {
        self.referrer = Some(r.into());
        self
    }
    pub fn landing(mut self, l: &str) -> Self {
        self.landing_url = Some(l.into());
        self
    }
    pub fn extra(mut self, k: &str, v: &str) -> Self {
        self.extra = Some((k.into(), v.into()));
        self
    }
}

fn strs(name: &str, v: Vec<Option<String>>) -> Column {
    Column::new(name.into(), v)
}

fn times(name: &str, v: Vec<Option<i64>>) -> Column {
    // Written in milliseconds, naive (= UTC): the reader must accept any unit and zone.
    let ms: Vec<Option<i64>> = v.into_iter().map(|t| t.map(|t| t / 1000)).collect();
    Series::new(name.into(), ms)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap()
        .into()
}

pub fn events_frame(rows: &[Ev]) -> DataFrame {
    let g = |f: fn(&Ev) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    DataFrame::new(
        rows.len(),
        vec![
            strs("event_id", g(|e| e.event_id.clone())),
            strs("event", g(|e| e.event.clone())),
            times("ts", rows.iter().map(|e| e.ts).collect()),
            strs("anon_id", g(|e| e.anon_id.clone())),
            strs("user_id", g(|e| e.user_id.clone())),
            strs("previous_id", g(|e| e.previous_id.clone())),
            Column::new("seq".into(), rows.iter().map(|e| e.seq).collect::<Vec<_>>()),
            strs("org_id", g(|e| e.org_id.clone())),
            Column::new(
                "tracking_version".into(),
                rows.iter().map(|e| e.tracking_version).collect::<Vec<_>>(),
            ),
            Column::new(
                "value".into(),
                rows.iter().map(|e| e.value).collect::<Vec<_>>(),
            ),
            strs("currency", g(|e| e.currency.clone())),
            strs("email", g(|e| e.email.clone())),
            strs("properties", g(|e| e.properties.clone())),
            strs("user_agent", g(|e| e.user_agent.clone())),
        ],
    )
    .unwrap()
}

pub fn touches_frame(rows: &[Touch]) -> DataFrame {
    let g = |f: fn(&Touch) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let mut cols = vec![
        strs("anon_id", g(|t| t.anon_id.clone())),
        times("ts", rows.iter().map(|t| t.ts).collect()),
        strs("gclid", g(|t| t.gclid.clone())),
        strs("fbclid", g(|t| t.fbclid.clone())),
        strs("utm_source", g(|t| t.utm_source.clone())),
        strs("utm_medium", g(|t| t.utm_medium.clone())),
        strs("utm_campaign", g(|t| t.utm_campaign.clone())),
        strs("landing_url", g(|t| t.landing_url.clone())),
        strs("referrer", g(|t| t.referrer.clone())),
    ];
    let mut extra_names: Vec<String> = rows
        .iter()
        .filter_map(|t| t.extra.as_ref().map(|e| e.0.clone()))
        .collect();
    extra_names.sort();
    extra_names.dedup();
    for name in extra_names {
        let v = rows
            .iter()
            .map(|t| {
                t.extra
                    .as_ref()
                    .filter(|e| e.0 == name)
                    .map(|e| e.1.clone())
            })
            .collect();
        cols.push(strs(&name, v));
    }
    DataFrame::new(rows.len(), cols).unwrap()
}

pub fn write_parquet(path: &Path, df: &DataFrame) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    let mut df = df.clone();
    ParquetWriter::new(&mut f).finish(&mut df).unwrap();
}

/// A raw lake in a temp folder, and an output folder beside it.
pub struct TestLake {
    pub dir: tempfile::TempDir,
    files: usize,
}

impl TestLake {
    pub fn new() -> Self {
        TestLake {
            dir: tempfile::tempdir().unwrap(),
            files: 0,
        }
    }
    pub fn input(&self) -> PathBuf {
        self.dir.path().join("lake")
    }
    pub fn output(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    fn next_file(&mut self) -> String {
        self.files += 1;
        format!("part-{:05}.parquet", self.files)
    }
    pub fn events(&mut self, dt: &str, rows: &[Ev]) -> &mut Self {
        let name = self.next_file();
        let p = self.input().join(format!("raw/events/dt={dt}/{name}"));
        write_parquet(&p, &events_frame(rows));
        self
    }
    pub fn touches(&mut self, dt: &str, rows: &[Touch]) -> &mut Self {
        let name = self.next_file();
        let p = self.input().join(format!("raw/touches/dt={dt}/{name}"));
        write_parquet(&p, &touches_frame(rows));
        self
    }
    pub fn frame(&mut self, rel: &str, df: &DataFrame) -> &mut Self {
        write_parquet(&self.input().join(rel), df);
        self
    }
    pub fn orgs(&mut self, orgs: &[&str]) -> &mut Self {
        let df = DataFrame::new(
            orgs.len(),
            vec![Column::new("org_id".into(), orgs.to_vec())],
        )
        .unwrap();
        self.frame("raw/orgs/part-0.parquet", &df)
    }
    pub fn memberships(&mut self, pairs: &[(&str, &str)]) -> &mut Self {
        let df = DataFrame::new(
            pairs.len(),
            vec![
                Column::new(
                    "user_id".into(),
                    pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
                ),
                Column::new(
                    "org_id".into(),
                    pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap();
        self.frame("raw/memberships/part-0.parquet", &df)
    }
    pub fn config(&self, run_date: &str) -> JobConfig {
        std::fs::create_dir_all(self.input()).unwrap();
        JobConfig::new(
            self.input().to_str().unwrap(),
            self.output().to_str().unwrap(),
            date(run_date),
        )
    }
    pub fn run(&self, run_date: &str) -> Run {
        self.run_with(self.config(run_date))
    }
    pub fn run_with(&self, cfg: JobConfig) -> Run {
        let summary = pipeline::run(&cfg, &Progress::hidden()).expect("the run succeeds");
        Run {
            out: Lake::open(cfg.output.as_str(), Access::Read).unwrap(),
            date: cfg.date,
            summary,
        }
    }
}

/// A published run.
pub struct Run {
    pub out: Lake,
    pub date: NaiveDate,
    pub summary: RunSummary,
}

impl Run {
    pub fn table(&self, name: &str) -> DataFrame {
        lakestitch::publish::read_table(&self.out, self.date, name)
            .unwrap()
            .unwrap_or_else(|| panic!("table {name} was not written"))
    }
    pub fn manifest(&self) -> serde_json::Value {
        let path = format!("runs/{}/manifest.json", self.date.format("%Y-%m-%d"));
        serde_json::from_slice(&self.out.get(&path).unwrap()).unwrap()
    }
    /// Rows of `table` whose `key` column equals `value`.
    pub fn rows(&self, table: &str, key: &str, value: &str) -> DataFrame {
        self.table(table)
            .lazy()
            .filter(col(key).eq(lit(value)))
            .collect()
            .unwrap()
    }
    /// The value of string column `field` in the single row of `table` where `key == value`.
    pub fn str_of(&self, table: &str, key: &str, value: &str, field: &str) -> Option<String> {
        let df = self.rows(table, key, value);
        assert_eq!(df.height(), 1, "{table} rows with {key} = {value}: {df:?}");
        df.column(field)
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .map(str::to_string)
    }
    /// Journey of one event: (person_id, user_id).
    pub fn journey_of(&self, event_id: &str) -> (String, Option<String>) {
        let df = self.rows("journeys", "event_id", event_id);
        assert_eq!(df.height(), 1, "journeys rows for {event_id}");
        let p = df
            .column("person_id")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .unwrap()
            .to_string();
        let u = df
            .column("user_id")
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .map(str::to_string);
        (p, u)
    }
}

/// A column as `Vec<Option<String>>`.
pub fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// Timestamp column values as microseconds.
pub fn micros(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    let s = df.column(name).unwrap().as_materialized_series().clone();
    let phys = s.cast(&DataType::Int64).unwrap();
    phys.i64().unwrap().iter().collect()
}

pub fn bools(df: &DataFrame, name: &str) -> Vec<Option<bool>> {
    df.column(name).unwrap().bool().unwrap().iter().collect()
}

pub fn u32s(df: &DataFrame, name: &str) -> Vec<Option<u32>> {
    df.column(name)
        .unwrap()
        .as_materialized_series()
        .cast(&DataType::UInt32)
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .collect()
}
