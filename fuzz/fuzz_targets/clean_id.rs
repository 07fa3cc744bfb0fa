//! `read::clean_id` on a column of arbitrary values (one per line of the input): cleaned twice
//! is cleaned once, and a kept id is the value trimmed.
#![no_main]

use lakestitch::read::clean_id;
use libfuzzer_sys::fuzz_target;
use polars::prelude::*;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    let df = df!("v" => values.clone()).unwrap();
    let once = df.lazy().select([clean_id("v")]).collect().unwrap();
    let twice = once
        .clone()
        .lazy()
        .select([clean_id("v")])
        .collect()
        .unwrap();
    assert!(once.equals_missing(&twice));
    for (raw, out) in values
        .iter()
        .zip(once.column("v").unwrap().str().unwrap().iter())
    {
        if let Some(out) = out {
            assert_eq!(out, raw.trim());
        }
    }
});
