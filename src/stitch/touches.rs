//! Which touches count (contract §3.4), and touches as JSON.
//!
//! A touch counts when it carries a non-empty click id, utm value or unknown extra key, or a
//! referrer whose registrable domain (public suffix list) differs from the landing page's.
//! Hosts are extracted by a column expression; registrable domains are computed once per
//! distinct host.

use polars::prelude::*;
use serde_json::{Map, Value};

use crate::attribute::channel::url_host;
use crate::error::Result;
use crate::read::schema::{CLICK_IDS, TOUCHES, UTMS};

/// Host of an absolute URL (scheme, optional userinfo, host), as a regex (`counting()` reads
/// hosts with [`url_host`], which extracts the same).
pub const HOST_RE: &str = r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?([^/?#:]+)";

fn non_empty(name: &str) -> Expr {
    col(name)
        .str()
        .strip_chars(lit(NULL))
        .neq(lit(""))
        .fill_null(lit(false))
}

/// The registrable domain of a host: its public-suffix-list domain, else the host itself.
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&host).unwrap_or(&host).to_string()
}

/// Whether each touch counts.
pub fn counting(touches: &DataFrame, extra_keys: &[String]) -> Result<BooleanChunked> {
    let mut keyed = lit(false);
    for c in CLICK_IDS.iter().chain(UTMS.iter()) {
        keyed = keyed.or(non_empty(c));
    }
    for c in extra_keys {
        keyed = keyed.or(non_empty(c));
    }
    // Hosts by a string scan (`url_host`, the same as `HOST_RE`), lowercased by polars.
    let host = |name: &str, alias: &str| -> Result<Column> {
        let hosts: StringChunked = touches
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.and_then(url_host))
            .collect();
        Ok(hosts.with_name(alias.into()).into_column())
    };
    let keyed = touches
        .clone()
        .lazy()
        .select([keyed.alias("_keyed")])
        .collect()?;
    let hosts = DataFrame::new(
        touches.height(),
        vec![
            keyed.column("_keyed")?.clone(),
            host("referrer", "_ref_host")?,
            host("landing_url", "_land_host")?,
        ],
    )?
    .lazy()
    .with_columns([
        col("_ref_host").str().to_lowercase(),
        col("_land_host").str().to_lowercase(),
    ])
    .collect()?;

    // Registrable domain per distinct host.
    let mut all = hosts.column("_ref_host")?.as_materialized_series().clone();
    all.append(
        &hosts
            .column("_land_host")?
            .as_materialized_series()
            .clone()
            .with_name("_ref_host".into()),
    )?;
    let distinct = all.drop_nulls().unique()?;
    let domains: Vec<String> = distinct
        .str()?
        .iter()
        .map(|h| registrable_domain(h.unwrap_or_default()))
        .collect();
    let dict = DataFrame::new(
        distinct.len(),
        vec![
            distinct.with_name("host".into()).into(),
            Column::new("domain".into(), domains),
        ],
    )?;
    let args = || JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    let out = hosts
        .lazy()
        .join(
            dict.clone()
                .lazy()
                .select([col("host"), col("domain").alias("_ref_dom")]),
            [col("_ref_host")],
            [col("host")],
            args(),
        )
        .join(
            dict.lazy()
                .select([col("host"), col("domain").alias("_land_dom")]),
            [col("_land_host")],
            [col("host")],
            args(),
        )
        .select([col("_keyed")
            .or(col("_ref_dom").is_not_null().and(
                col("_land_dom")
                    .is_null()
                    .or(col("_ref_dom").neq(col("_land_dom"))),
            ))
            .fill_null(lit(false))
            .alias("counts")])
        .collect()?;
    Ok(out.column("counts")?.bool()?.clone())
}

/// Render touches `rows` of `touches` as JSON objects (keys sorted): `ts` as RFC 3339 UTC and
/// every non-empty string column (contract columns and extra keys).
pub fn to_json(touches: &DataFrame, extra_keys: &[String], rows: &[u32]) -> Result<Vec<String>> {
    let mut names: Vec<&str> = TOUCHES
        .iter()
        .map(|c| c.name)
        .filter(|n| *n != "ts")
        .collect();
    names.extend(extra_keys.iter().map(String::as_str));
    let idx = IdxCa::from_vec("idx".into(), rows.to_vec());
    let mut cols: Vec<(&str, StringChunked)> = Vec::with_capacity(names.len());
    for n in &names {
        let s = touches.column(n)?.as_materialized_series().take(&idx)?;
        cols.push((n, s.str()?.clone()));
    }
    let ts = touches.column("ts")?.as_materialized_series().take(&idx)?;
    let ts = ts.i64()?;
    let mut out = Vec::with_capacity(rows.len());
    for i in 0..rows.len() {
        let mut m = Map::new();
        if let Some(t) = ts.get(i) {
            m.insert("ts".into(), Value::String(rfc3339(t)));
        }
        for (n, ca) in &cols {
            if let Some(v) = ca.get(i) {
                if !v.trim().is_empty() {
                    m.insert((*n).to_string(), Value::String(v.to_string()));
                }
            }
        }
        out.push(Value::Object(m).to_string());
    }
    Ok(out)
}

/// Microseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(registrable_domain("www.example.com"), "example.com");
        assert_eq!(registrable_domain("app.example.com"), "example.com");
        assert_eq!(registrable_domain("news.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(registrable_domain("shop.example.co.uk"), "example.co.uk");
    }
}
