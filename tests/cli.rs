//! The binary: exit codes and messages.

use std::process::Command;

use crate::common::*;
use polars::prelude::*;

fn lakestitch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lakestitch"))
}

fn job_file(dir: &std::path::Path, body: &str) -> String {
    let p = dir.join("job.toml");
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn missing_required_column_exits_2_naming_file_and_column() {
    let lake = TestLake::new();
    let df = df!("event_id" => ["e1"], "event" => ["x"]).unwrap();
    write_parquet(
        &lake.input().join("raw/events/dt=2026-11-01/part-0.parquet"),
        &df,
    );
    let job = job_file(lake.dir.path(), "");
    let out = lakestitch()
        .args([
            "run",
            "--job",
            &job,
            "--date",
            "2026-11-02",
            "--no-progress",
            "--input",
        ])
        .arg(lake.input())
        .arg("--output")
        .arg(lake.output())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("raw/events/dt=2026-11-01/part-0.parquet") && err.contains("`ts`"),
        "{err}"
    );
    assert!(!lake.output().join("runs/2026-11-02/_SUCCESS").exists());
    assert!(!lake.output().join("latest").exists());
}

#[test]
fn wrong_column_type_exits_2_naming_the_expected_type() {
    let lake = TestLake::new();
    let df =
        df!("event_id" => ["e1"], "event" => ["x"], "ts" => ["2026-11-01"], "anon_id" => ["a"])
            .unwrap();
    write_parquet(
        &lake.input().join("raw/events/dt=2026-11-01/part-0.parquet"),
        &df,
    );
    let job = job_file(lake.dir.path(), "");
    let out = lakestitch()
        .args(["run", "--job", &job, "--date", "2026-11-02", "--input"])
        .arg(lake.input())
        .arg("--output")
        .arg(lake.output())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`ts`") && err.contains("expected a timestamp"),
        "{err}"
    );
}

#[test]
fn unknown_job_key_exits_2_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_file(dir.path(), "[identity]\nmax_cookies = 3\n");
    let out = lakestitch().args(["run", "--job", &job]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_cookies") && err.contains("job.toml"),
        "{err}"
    );
}

#[test]
fn timestamps_of_any_unit_and_zone_are_accepted() {
    let mut lake = TestLake::new();
    let t = us("2026-11-01T09:00:00Z");
    for (i, (unit, tz)) in [
        (TimeUnit::Nanoseconds, None),
        (TimeUnit::Microseconds, Some(TimeZone::UTC)),
        (
            TimeUnit::Milliseconds,
            Some(unsafe { TimeZone::from_static("Europe/Paris") }),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let factor = match unit {
            TimeUnit::Nanoseconds => 1000,
            TimeUnit::Microseconds => 1,
            TimeUnit::Milliseconds => 0,
        };
        let v = if factor == 0 { t / 1000 } else { t * factor };
        let ts = Series::new("ts".into(), [v])
            .cast(&DataType::Datetime(unit, tz))
            .unwrap();
        let df = DataFrame::new(
            1,
            vec![
                Column::new("event_id".into(), [format!("e{i}")]),
                Column::new("event".into(), ["page_viewed"]),
                ts.into(),
                Column::new("anon_id".into(), ["a"]),
            ],
        )
        .unwrap();
        lake.frame(&format!("raw/events/dt=2026-11-01/part-{i}.parquet"), &df);
    }
    let run = lake.run("2026-11-01");
    let j = run.table("journeys");
    assert_eq!(micros(&j, "ts"), vec![Some(t); 3]);
}

#[test]
fn run_command_publishes_and_exits_0() {
    let mut lake = TestLake::new();
    lake.events(
        "2026-11-01",
        &[ev(
            "e",
            "page_viewed",
            "2026-11-01T09:00:00Z",
            Some("a"),
            None,
        )],
    );
    let job = job_file(
        lake.dir.path(),
        "[events]\nconversions = [\"purchase_completed\"]\n",
    );
    let out = lakestitch()
        .args(["run", "--job", &job, "--date", "2026-11-01", "--input"])
        .arg(lake.input())
        .arg("--output")
        .arg(lake.output())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lake.output().join("runs/2026-11-01/_SUCCESS").exists());
    assert!(lake.output().join("runs/2026-11-01/manifest.json").exists());
}
