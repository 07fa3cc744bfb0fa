//! lakestitch: nightly identity stitching and attribution over a Parquet data lake.
//!
//! The pipeline runs in stages, each a function from typed input to typed output; storage I/O
//! happens only at the edges (`read` in, `publish` out):
//!
//! ```text
//! storage ─► read ─► identity ─► stitch ─► publish ─► storage
//!            raw      segments,   journeys,   tables, manifest,
//!            lake     persons     touches     _SUCCESS, latest
//! ```
//!
//! Attribution models and ad-platform exports slot in between `stitch` and `publish`.
#![warn(missing_docs)]

pub mod attribute;
pub mod codes;
pub mod config;
pub mod error;
pub mod explain;
pub mod export;
pub mod gen;
pub mod identity;
pub mod parallel;
pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod quality;
pub mod read;
pub mod report;
pub mod stitch;
pub mod storage;

pub use config::{JobConfig, JobFile};
pub use error::{Error, ExitCode, Result};
