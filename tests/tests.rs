//! Integration tests: each builds a small raw lake of real Parquet files in a temp folder,
//! runs the real pipeline, and checks the published rows. One module per part of the contract.

mod common;

mod attribution;
mod cli;
mod explain;
mod exports;
mod fault_proxy;
mod fuzz;
mod identity_rules;
mod properties;
mod quality;
mod reliability;
mod report;
mod tables;
