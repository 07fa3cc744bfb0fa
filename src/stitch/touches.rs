//! Which touches count (contract §3.4), and touches as JSON.
//!
//! A touch counts when it carries a non-empty click id, utm value or unknown extra key, or a
//! referrer whose registrable domain (public suffix list) differs from the landing page's.
//! Hosts are extracted by a column expression; registrable domains are computed once per
//! distinct host.

use polars::prelude::*;
use std::borrow::Cow;
use std::sync::Mutex;

use crate::attribute::channel::url_host;
use crate::error::{Error, Result};
use crate::read::schema::{CLICK_IDS, TOUCHES, UTMS};

/// Host of an absolute URL (scheme, optional userinfo, host), as a regex (`counting()` reads
/// hosts with [`url_host`], which extracts the same).
pub const HOST_RE: &str = r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?([^/?#:]+)";

/// The registrable domain of a host: its public-suffix-list domain, else the host itself.
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&host).unwrap_or(&host).to_string()
}

/// Whether each touch counts.
pub fn counting(touches: &DataFrame, extra_keys: &[String]) -> Result<BooleanChunked> {
    // Keyed: a non-blank click id, utm value or extra key (one pass over each column).
    let mut keyed = vec![false; touches.height()];
    let keys = CLICK_IDS.iter().chain(UTMS.iter()).copied();
    for name in keys.chain(extra_keys.iter().map(String::as_str)) {
        for (k, v) in keyed.iter_mut().zip(touches.column(name)?.str()?.iter()) {
            *k = *k || v.is_some_and(|v| !v.trim().is_empty());
        }
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
    let hosts = DataFrame::new(
        touches.height(),
        vec![
            Column::new("_keyed".into(), keyed),
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

/// Render every touch of `touches` as a JSON object (keys sorted): `ts` as RFC 3339 UTC and
/// every non-empty string column (contract columns and extra keys).
pub fn to_json(touches: &DataFrame, extra_keys: &[String]) -> Result<StringChunked> {
    // The rows in parts (zero-copy slices), rendered side by side.
    let parts: Vec<DataFrame> = crate::parallel::slices(touches.height(), JSON_PARTS)
        .into_iter()
        .map(|r| touches.slice(r.start as i64, r.len()))
        .collect();
    to_json_parts(parts, extra_keys)
}

/// Parts of the touches rendered at once by [`to_json`]; the pipeline renders the touches it
/// shows in as many parts ([`to_json_made`]).
pub const JSON_PARTS: usize = 8;

/// [`to_json`] of the rows of `parts`, one after another, rendered side by side (one loop per
/// row) and put together in order. Each part is dropped as soon as its JSON is rendered: the
/// JSON grows as the touches it is rendered from shrink (one copy of the shown touches and all
/// their JSON at once were the run's peak at 10M events).
pub fn to_json_parts(parts: Vec<DataFrame>, extra_keys: &[String]) -> Result<StringChunked> {
    let parts: Vec<Mutex<Option<DataFrame>>> =
        parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
    to_json_made(parts.len(), extra_keys, |i| {
        Ok(parts[i]
            .lock()
            .map_err(|_| Error::Internal("a touch JSON thread panicked".into()))?
            .take()
            .unwrap_or_default())
    })
}

/// [`to_json_parts`] of `n` parts made one at a time by `make` (part `i` when its turn
/// comes), so that only the parts being rendered are held.
pub fn to_json_made(
    n: usize,
    extra_keys: &[String],
    make: impl Fn(usize) -> Result<DataFrame> + Sync,
) -> Result<StringChunked> {
    let indexes: Vec<usize> = (0..n).collect();
    let rendered = crate::parallel::map(&indexes, 4, |_, &i| {
        let part = make(i)?;
        let json = to_json_part(&part, extra_keys);
        drop(part);
        crate::progress::release_memory();
        json
    })?;
    let mut out = StringChunked::full_null("json".into(), 0);
    for part in &rendered {
        out.append(part)?;
    }
    // Views only: the parts' text buffers are shared, not copied.
    out.rechunk_mut();
    Ok(out)
}

fn to_json_part(touches: &DataFrame, extra_keys: &[String]) -> Result<StringChunked> {
    let mut names: Vec<&str> = TOUCHES
        .iter()
        .map(|c| c.name)
        .filter(|n| *n != "ts")
        .collect();
    names.extend(extra_keys.iter().map(String::as_str));
    let mut cols: Vec<(&str, StringChunked)> = Vec::with_capacity(names.len());
    for n in &names {
        cols.push((n, touches.column(n)?.str()?.clone()));
    }
    let ts = touches.column("ts")?.i64()?;
    let rows = touches.height();
    // Written directly, as serde_json writes a `Map` (a BTreeMap: keys in byte order, a later
    // insert of a key replacing an earlier one) of the non-empty values: keys in order, and
    // for a key named twice the last of its sources with a value.
    let mut keys: Vec<(&str, Option<usize>)> = vec![("ts", None)];
    keys.extend(cols.iter().enumerate().map(|(i, (n, _))| (*n, Some(i))));
    keys.sort_by(|a, b| a.0.cmp(b.0)); // stable: sources of one key keep their order
    let mut groups: Vec<(String, Vec<Option<usize>>)> = Vec::new();
    for (name, source) in keys {
        match groups.last_mut() {
            Some((n, sources)) if n.as_str() == name => sources.push(source),
            _ => groups.push((name.to_string(), vec![source])),
        }
    }
    let groups: Vec<(String, Vec<Option<usize>>)> = groups
        .into_iter()
        .map(|(n, sources)| Ok((serde_json::to_string(&n)?, sources)))
        .collect::<Result<_>>()?;
    let mut out = StringChunkedBuilder::new("json".into(), rows);
    let mut buf: Vec<u8> = Vec::new();
    for i in 0..rows {
        buf.clear();
        buf.push(b'{');
        let mut first = true;
        for (key, sources) in &groups {
            let value = sources.iter().rev().find_map(|source| match source {
                None => ts.get(i).map(|t| Cow::Owned(rfc3339(t))),
                Some(c) => cols[*c]
                    .1
                    .get(i)
                    .filter(|v| !v.trim().is_empty())
                    .map(Cow::Borrowed),
            });
            if let Some(v) = value {
                if !first {
                    buf.push(b',');
                }
                first = false;
                buf.extend_from_slice(key.as_bytes());
                buf.push(b':');
                serde_json::to_writer(&mut buf, v.as_ref())?;
            }
        }
        buf.push(b'}');
        // Straight into the column (the buffer is reused: no String per row).
        out.append_value(std::str::from_utf8(&buf).unwrap_or_default());
    }
    Ok(out.finish())
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

    /// `to_json` as a serde_json object of the non-empty values.
    fn to_json_by_map(touches: &DataFrame, extra_keys: &[String], rows: &[u32]) -> Vec<String> {
        let mut names: Vec<&str> = TOUCHES.iter().map(|c| c.name).collect();
        names.extend(extra_keys.iter().map(String::as_str));
        rows.iter()
            .map(|&r| {
                let mut m = serde_json::Map::new();
                for n in &names {
                    let c = touches.column(n).unwrap();
                    if *n == "ts" {
                        if let Some(t) = c.i64().unwrap().get(r as usize) {
                            m.insert("ts".into(), rfc3339(t).into());
                        }
                    } else if let Some(v) = c.str().unwrap().get(r as usize) {
                        if !v.trim().is_empty() {
                            m.insert((*n).to_string(), v.into());
                        }
                    }
                }
                serde_json::Value::Object(m).to_string()
            })
            .collect()
    }

    #[test]
    fn touch_json_is_a_sorted_object_of_the_non_empty_values() {
        let values = [
            Some("plain"),
            None,
            Some(""),
            Some("  "),
            Some("q\"uote\\ back"),
            Some("ctl\u{1}\n\t"),
            Some("ünï €"),
            Some(" padded "),
        ];
        let n = values.len();
        let mut cols: Vec<Column> = Vec::new();
        for (k, spec) in TOUCHES.iter().enumerate() {
            if spec.name == "ts" {
                let ts: Vec<Option<i64>> = (0..n as i64)
                    .map(|i| (i != 3).then_some(1_763_700_000_000_000 + i * 1_234_567))
                    .collect();
                cols.push(Column::new("ts".into(), ts));
            } else {
                let v: Vec<Option<&str>> = (0..n).map(|i| values[(i + k) % n]).collect();
                cols.push(Column::new(spec.name.into(), v));
            }
        }
        let extra = vec!["a_key".to_string(), "zz\"key".to_string()];
        for (k, e) in extra.iter().enumerate() {
            let v: Vec<Option<&str>> = (0..n).map(|i| values[(i + 3 * k + 1) % n]).collect();
            cols.push(Column::new(e.as_str().into(), v));
        }
        let df = DataFrame::new(n, cols).unwrap();
        let rows: Vec<u32> = (0..n as u32).rev().collect();
        let taken = df.take(&IdxCa::from_slice("rows".into(), &rows)).unwrap();
        let got: Vec<String> = to_json(&taken, &extra)
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect();
        assert_eq!(got, to_json_by_map(&df, &extra, &rows));
    }
}
