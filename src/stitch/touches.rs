//! Which touches count (contract §3.4), and touches as JSON.
//!
//! A touch counts when it carries a non-empty click id, utm value or unknown extra key, or a
//! referrer whose registrable domain (public suffix list) differs from the landing page's.
//! Each distinct referrer and landing page (the touches' text is held as codes) is looked at
//! once; registrable domains are computed once per distinct host.

use polars::prelude::*;
use std::borrow::Cow;

use crate::attribute::channel::url_host;
use crate::codes::NONE;
use crate::error::{Error, Result};
use crate::read::schema::{CLICK_IDS, TOUCHES, UTMS};
use crate::read::TouchText;

/// Host of an absolute URL (scheme, optional userinfo, host), as a regex (`counting()` reads
/// hosts with [`url_host`], which extracts the same).
pub const HOST_RE: &str = r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?([^/?#:]+)";

/// The registrable domain of a host: its public-suffix-list domain, else the host itself.
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&host).unwrap_or(&host).to_string()
}

/// Whether each touch counts, from the touches' text as codes (`touches`, with the text
/// columns of [`TouchText`]): each distinct value is looked at once (is it blank, the
/// registrable domain of its host), then each touch by its codes.
pub fn counting(
    touches: &DataFrame,
    text: &TouchText,
    extra_keys: &[String],
) -> Result<BooleanChunked> {
    let coded = |name: &str| -> Result<(&StringChunked, &UInt32Chunked)> {
        let dict = text
            .dictionary(name)
            .ok_or_else(|| Error::Internal(format!("touches: `{name}` is not held as codes")))?;
        Ok((dict.str()?, touches.column(name)?.u32()?))
    };
    // Keyed: a non-blank click id, utm value or extra key.
    let mut keyed = vec![false; touches.height()];
    let keys = CLICK_IDS.iter().chain(UTMS.iter()).copied();
    for name in keys.chain(extra_keys.iter().map(String::as_str)) {
        let (dict, codes) = coded(name)?;
        let non_blank: Vec<bool> = dict
            .iter()
            .map(|v| v.is_some_and(|v| !v.trim().is_empty()))
            .collect();
        for (k, c) in keyed.iter_mut().zip(codes.iter()) {
            *k = *k || c.is_some_and(|c| non_blank[c as usize]);
        }
    }
    // The registrable domain of each distinct referrer's and landing page's host (`url_host`,
    // the same as `HOST_RE`, lowercased), as a number: equal domains, equal numbers; NONE for
    // a value without a host. Each distinct host's domain is worked out once.
    let mut domain_numbers: PlHashMap<String, u32> = PlHashMap::new();
    let mut host_domain: PlHashMap<String, u32> = PlHashMap::new();
    let mut domains = |dict: &StringChunked| -> Vec<u32> {
        dict.iter()
            .map(|v| {
                let Some(host) = v.and_then(url_host) else {
                    return NONE;
                };
                let host = host.to_lowercase();
                if let Some(&d) = host_domain.get(&host) {
                    return d;
                }
                let next = domain_numbers.len() as u32;
                let d = *domain_numbers
                    .entry(registrable_domain(&host))
                    .or_insert(next);
                host_domain.insert(host, d);
                d
            })
            .collect()
    };
    let (ref_dict, ref_codes) = coded("referrer")?;
    let (land_dict, land_codes) = coded("landing_url")?;
    let ref_domain = domains(ref_dict);
    let land_domain = domains(land_dict);
    let domain = |c: Option<u32>, of: &[u32]| c.map_or(NONE, |c| of[c as usize]);
    // Counts: keyed, or a referrer with a domain other than the landing page's.
    Ok(keyed
        .into_iter()
        .zip(ref_codes.iter().zip(land_codes.iter()))
        .map(|(k, (r, l))| {
            let (r, l) = (domain(r, &ref_domain), domain(l, &land_domain));
            k || (r != NONE && r != l)
        })
        .collect::<BooleanChunked>()
        .with_name("counts".into()))
}

/// Render every touch of `touches` as a JSON object (keys sorted): `ts` as RFC 3339 UTC and
/// every non-empty string column (contract columns and extra keys).
pub fn to_json(touches: &DataFrame, extra_keys: &[String]) -> Result<StringChunked> {
    // The rows in parts (zero-copy slices), rendered side by side.
    let parts = crate::parallel::slices(touches.height(), JSON_PARTS);
    to_json_made(parts.len(), extra_keys, |i| {
        Ok(touches.slice(parts[i].start as i64, parts[i].len()))
    })
}

/// Parts of the touches rendered at once by [`to_json`]; the pipeline renders the touches it
/// shows in as many parts ([`to_json_made`]).
pub const JSON_PARTS: usize = 8;

/// [`to_json`] of `n` parts of touches, one after another, each made by `make` (part `i`)
/// only when its turn comes, rendered side by side (one loop per row) and put together in
/// order. Each part is dropped as soon as its JSON is rendered: the JSON grows while only the
/// parts being rendered are held (one copy of the shown touches and all their JSON at once
/// were the run's peak at 10M events).
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
    // Each column as one array, read by index (`ChunkedArray::get` finds the chunk of every
    // value it is asked for: it showed in profiles).
    let mut cols: Vec<(&str, StringChunked)> = Vec::with_capacity(names.len());
    for n in &names {
        cols.push((n, touches.column(n)?.str()?.rechunk().into_owned()));
    }
    let ts = touches.column("ts")?.i64()?.rechunk();
    let rows = touches.height();
    let arrays: Vec<&polars_arrow::array::Utf8ViewArray> =
        cols.iter().map(|(_, c)| c.downcast_as_array()).collect();
    let ts = ts.downcast_as_array();
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
                Some(c) => arrays[*c]
                    .get(i)
                    .filter(|v| !is_blank(v))
                    .map(Cow::Borrowed),
            });
            if let Some(v) = value {
                if !first {
                    buf.push(b',');
                }
                first = false;
                buf.extend_from_slice(key.as_bytes());
                buf.push(b':');
                write_json_str(&mut buf, v.as_ref())?;
            }
        }
        buf.push(b'}');
        // Straight into the column (the buffer is reused: no String per row).
        out.append_value(std::str::from_utf8(&buf).unwrap_or_default());
    }
    Ok(out.finish())
}

/// `v` as a JSON string, as `serde_json` writes it: copied between quotes when it has nothing
/// to escape (nearly every value: serde_json's escaping loop showed in profiles), else by
/// `serde_json`. serde_json escapes only `"`, `\` and the control characters below 0x20.
fn write_json_str(buf: &mut Vec<u8>, v: &str) -> Result<()> {
    if !needs_escape(v.as_bytes()) {
        buf.reserve(v.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(v.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, v)?;
    }
    Ok(())
}

/// Whether `v` has a byte JSON escapes (`"`, `\`, or a control character below 0x20).
///
/// The whole value is scanned, without stopping at the first such byte, so that the compiler
/// scans it many bytes at a time: nearly no value has one, and a byte-by-byte scan that could
/// stop early took about 8 instructions a byte (1M events, callgrind: 0.4 billion, 1.3 % of
/// the run's instructions, over the touch JSON's text).
fn needs_escape(v: &[u8]) -> bool {
    v.iter().fold(0u8, |any, &b| {
        any | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    }) != 0
}

/// Whether `v` is empty or only whitespace (`v.trim().is_empty()`), without trimming when its
/// first byte is a printable ASCII character (nearly every value: the trim showed in profiles).
fn is_blank(v: &str) -> bool {
    match v.as_bytes().first() {
        Some(b) if b.is_ascii_graphic() => false,
        _ => v.trim().is_empty(),
    }
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

    /// `is_blank` is `trim().is_empty()`: ASCII and other whitespace, printable first bytes.
    #[test]
    fn is_blank_is_trimmed_empty() {
        for v in [
            "", " ", "\t\n", "\u{a0}", " a", "a", "a ", "\u{a0}x", "é", "~", "\u{7f}",
        ] {
            assert_eq!(is_blank(v), v.trim().is_empty(), "{v:?}");
        }
    }

    /// `write_json_str` writes what serde_json writes: every ASCII character alone and among
    /// others, with and without characters to escape, and characters beyond ASCII.
    #[test]
    fn json_strings_are_written_as_serde_json_writes_them() {
        let mut values: Vec<String> = (0u8..0x80)
            .flat_map(|b| {
                let c = char::from(b);
                [c.to_string(), format!("a{c}b"), format!("{c}{c}x")]
            })
            .collect();
        // Longer values, with the byte to escape (or a plain one) at the start, in the middle
        // and at the end of blocks of 16, 32 and 64 bytes, and after them.
        for b in [b'"', b'\\', 0x00, 0x1f, b'\n', b' ', b'~', 0x7f] {
            let c = char::from(b);
            for at in [0, 15, 16, 31, 32, 63, 64, 70] {
                values.push(format!("{}{c}{}", "x".repeat(at), "é".repeat(20)));
            }
        }
        values.extend(
            [
                "",
                "é",
                "naïve \"quoted\"",
                "tab\there",
                "\u{2028}",
                "😀 ok",
            ]
            .map(String::from),
        );
        for v in values {
            let mut buf = Vec::new();
            write_json_str(&mut buf, &v).unwrap();
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&v).unwrap(),
                "{v:?}"
            );
        }
    }

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
