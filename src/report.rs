//! `runs/<date>/report.html`: the run's health at a glance (contract §4).
//!
//! One self-contained page: inline CSS, charts as inline SVG drawn by `plotters` (its SVG
//! backend only), no script and no network resource. [`render`] is pure: it takes the manifest
//! and a few small frames of the run and returns the page; `publish` writes it before
//! `_SUCCESS`. Every string that comes from data is HTML-escaped ([`escape`]); plotters escapes
//! the text it puts into its SVG.
//!
//! Sections: key figures; input volumes and the reconciliation; stitching health (persons,
//! cookies per person, backfilled share, conflicts, refused unions, oversized persons, junk
//! ids); first-touch channel mix; attribution by model and channel; export coverage (share of
//! conversions with each match key, skipped by reason per destination); what changed since the
//! previous run; the tables written.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::export::Conversion;
use crate::publish::Manifest;

/// Chart colours (a colour-blind-friendly palette).
const COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// How many conversions of the run carry each match key (for the export coverage section).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchKeys {
    /// Conversions of the run.
    pub conversions: u64,
    /// (key, conversions that carry it), in display order.
    pub counts: Vec<(&'static str, u64)>,
}

impl MatchKeys {
    /// Count the match keys of `conversions`.
    pub fn of(conversions: &[Conversion]) -> MatchKeys {
        let some = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        let count = |f: &dyn Fn(&Conversion) -> bool| conversions.iter().filter(|c| f(c)).count();
        let counts = vec![
            (
                "email",
                count(&|c| c.emails.iter().any(|e| !e.trim().is_empty())),
            ),
            (
                "phone",
                count(&|c| c.phones.iter().any(|p| !p.raw().trim().is_empty())),
            ),
            ("external_id (user)", count(&|c| some(&c.user_id))),
            ("gclid", count(&|c| c.gclid.is_some())),
            (
                "gbraid / wbraid",
                count(&|c| c.gbraid.is_some() || c.wbraid.is_some()),
            ),
            (
                "fbc / fbclid",
                count(&|c| c.fbclid.is_some() || some(&c.fbc)),
            ),
            ("fbp", count(&|c| some(&c.fbp))),
            ("ip", count(&|c| some(&c.ip))),
            ("user agent", count(&|c| some(&c.user_agent))),
        ];
        MatchKeys {
            conversions: conversions.len() as u64,
            counts: counts.into_iter().map(|(k, n)| (k, n as u64)).collect(),
        }
    }
}

/// What the report is drawn from.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// The run's manifest.
    pub manifest: &'a Manifest,
    /// `persons` (anon_count is used).
    pub persons: &'a DataFrame,
    /// `user_attribution` (first_touch_channel is used).
    pub user_attribution: &'a DataFrame,
    /// `attribution_summary`.
    pub attribution_summary: &'a DataFrame,
    /// Match keys of the run's conversions.
    pub match_keys: &'a MatchKeys,
    /// Persons in the previous published run, if known.
    pub previous_persons: Option<u64>,
}

/// Escape text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn chart_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Internal(format!("report chart: {e:?}"))
}

/// Inline SVG without the XML namespace attribute (not needed inline in HTML, and it keeps
/// every `http` string out of the page).
fn inline(svg: String) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replacen(" xmlns='http://www.w3.org/2000/svg'", "", 1)
}

/// A horizontal bar chart of `bars` (label, value).
pub fn bar_chart(bars: &[(String, f64)], value_label: &str) -> Result<String> {
    let mut svg = String::new();
    let n = bars.len().max(1);
    let height = 60 + 28 * n as u32;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0) * 1.08;
    let label_w = label_width(bars.iter().map(|b| &b.0));
    {
        let root = SVGBackend::with_string(&mut svg, (640, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..max, (0..n).into_segmented())
            .map_err(chart_err)?;
        // Segment 0 is at the bottom: draw the first bar at the top.
        let labels: Vec<String> = bars.iter().rev().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc(value_label)
            .x_labels(6)
            .x_label_formatter(&|v| short_number(*v))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(chart_err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let row = n - 1 - i;
                let mut r = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(row)),
                        (*v, SegmentValue::Exact(row + 1)),
                    ],
                    COLORS[0].filled(),
                );
                r.set_margin(4, 4, 0, 0);
                r
            }))
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(inline(svg))
}

/// Horizontal stacked bars: one bar per row label, one segment (and legend entry) per series.
pub fn stacked_chart(
    rows: &[String],
    series: &[(String, Vec<f64>)],
    value_label: &str,
) -> Result<String> {
    let mut svg = String::new();
    let n = rows.len().max(1);
    let legend_rows = series.len().div_ceil(3) as u32;
    let height = 70 + 34 * n as u32 + 22 * legend_rows;
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.1.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max).max(1.0) * 1.05;
    {
        let root = SVGBackend::with_string(&mut svg, (640, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let (plot, legend) = root.split_vertically(height - 22 * legend_rows - 6);
        let mut chart = ChartBuilder::on(&plot)
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(label_width(rows.iter()))
            .build_cartesian_2d(0f64..max, (0..n).into_segmented())
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => (n - 1)
                    .checked_sub(*i)
                    .and_then(|j| rows.get(j))
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc(value_label)
            .x_labels(6)
            .x_label_formatter(&|v| short_number(*v))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(chart_err)?;
        let mut start = vec![0.0; n];
        for (k, (_, values)) in series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let bars: Vec<Rectangle<(f64, SegmentValue<usize>)>> = (0..n)
                .map(|i| {
                    let v = values.get(i).copied().unwrap_or(0.0);
                    let row = n - 1 - i;
                    let mut r = Rectangle::new(
                        [
                            (start[i], SegmentValue::Exact(row)),
                            (start[i] + v, SegmentValue::Exact(row + 1)),
                        ],
                        color.filled(),
                    );
                    r.set_margin(5, 5, 0, 0);
                    start[i] += v;
                    r
                })
                .collect();
            chart.draw_series(bars).map_err(chart_err)?;
        }
        // Legend: coloured squares and names, three to a line.
        for (k, (name, _)) in series.iter().enumerate() {
            let x = 20 + 205 * (k % 3) as i32;
            let y = 6 + 22 * (k / 3) as i32;
            let color = COLORS[k % COLORS.len()];
            legend
                .draw(&Rectangle::new([(x, y), (x + 12, y + 12)], color.filled()))
                .map_err(chart_err)?;
            legend
                .draw(&Text::new(
                    name.clone(),
                    (x + 18, y),
                    ("sans-serif", 15).into_font(),
                ))
                .map_err(chart_err)?;
        }
        root.present().map_err(chart_err)?;
    }
    Ok(inline(svg))
}

/// Room for the longest label (about 8 px a character at the labels' size).
fn label_width<'a>(labels: impl Iterator<Item = &'a String>) -> u32 {
    labels
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 32) as u32
        * 8
        + 12
}

fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", 100.0 * n as f64 / d as f64)
    }
}

/// Thousands separated by a thin space.
fn num(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            o.push('\u{202f}');
        }
        o.push(c);
    }
    o
}

/// Persons by their number of cookies (`anon_count`): 0 or 1, 2, 3, 4, 5–9, 10–99, 100 and
/// more; a person without a count is not counted. Read as numbers (a million persons' counts
/// each made a string took about 0.3 s at the end of a 10M run).
fn cookie_buckets(persons: &DataFrame) -> Result<[u64; 7]> {
    let mut buckets = [0u64; 7];
    let Ok(counts) = persons.column("anon_count") else {
        return Ok(buckets);
    };
    for n in counts.cast(&DataType::UInt64)?.u64()?.iter().flatten() {
        let b = match n {
            0..=1 => 0,
            2 => 1,
            3 => 2,
            4 => 3,
            5..=9 => 4,
            10..=99 => 5,
            _ => 6,
        };
        buckets[b] += 1;
    }
    Ok(buckets)
}

/// Users by the channel of their first touch (`first_touch_channel`; none: `(no touch)`), the
/// most users first, then by name. Counted by reference to the column's values.
fn channel_mix(users: &DataFrame) -> Result<Vec<(String, u64)>> {
    let channels = match users.column("first_touch_channel") {
        Ok(c) => Some(c.cast(&DataType::String)?),
        Err(_) => None,
    };
    let mut by_channel: PlHashMap<Option<&str>, u64> = PlHashMap::new();
    match &channels {
        Some(c) => {
            for channel in c.str()?.iter() {
                *by_channel.entry(channel).or_default() += 1;
            }
        }
        None if users.height() > 0 => {
            by_channel.insert(None, users.height() as u64);
        }
        None => {}
    }
    let mut mix: BTreeMap<String, u64> = BTreeMap::new();
    for (channel, n) in by_channel {
        *mix.entry(channel.unwrap_or("(no touch)").to_string())
            .or_default() += n;
    }
    let mut mix: Vec<(String, u64)> = mix.into_iter().collect();
    mix.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(mix)
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    match df.column(name) {
        Ok(c) => Ok(c
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()),
        Err(_) => Ok(vec![None; df.height()]),
    }
}

fn floats(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    match df.column(name) {
        Ok(c) => Ok(c
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect()),
        Err(_) => Ok(vec![0.0; df.height()]),
    }
}

/// A table: header cells and rows of (already escaped) cells; numeric cells right-aligned.
fn table(o: &mut String, header: &[&str], rows: &[Vec<String>]) {
    o.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(o, "<th>{}</th>", escape(h));
    }
    o.push_str("</tr></thead><tbody>");
    for r in rows {
        o.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let cls = if i > 0 { " class=\"n\"" } else { "" };
            let _ = write!(o, "<td{cls}>{c}</td>");
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
margin:0;background:#f5f6f8;color:#1d2330}\
header{background:#1d2330;color:#fff;padding:18px 32px}\
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#b9c0cc;font-size:13px}\
main{max-width:1340px;margin:0 auto;padding:16px 24px}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:8px 0 16px}\
.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
.card .v{font-size:24px;font-weight:600}.card .k{font-size:12px;color:#5b6474;text-transform:uppercase}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(620px,1fr));gap:16px}\
section{overflow-x:auto;background:#fff;border-radius:8px;padding:12px 20px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
h2{font-size:17px;margin:6px 0 10px}h3{font-size:14px;margin:14px 0 6px;color:#3b4454}\
table{border-collapse:collapse;font-size:13px;margin:6px 0;width:100%}\
th,td{padding:4px 8px;border-bottom:1px solid #e4e7ec;text-align:left}\
th{background:#f0f2f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}\
td small{color:#5b6474}\
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}\
svg{max-width:100%;height:auto}p.note{font-size:12px;color:#5b6474;margin:4px 0}";

/// The report page for one run.
pub fn render(input: &ReportInput<'_>) -> Result<String> {
    let m = input.manifest;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>lakestitch run {date}</title><style>{STYLE}</style></head><body>\
         <header><h1>lakestitch run {date}</h1><p>status {status} · version {version} · \
         started {started} · finished {finished} · job {job}<br>input {input} · output {output}\
         </p></header><main>",
        date = escape(&m.run_date),
        status = escape(&m.status),
        version = escape(&m.version),
        started = escape(&m.started_at),
        finished = escape(&m.finished_at),
        job = escape(&m.job),
        input = escape(&m.input),
        output = escape(&m.output),
    );

    // Key figures.
    let ev = m.inputs.get("events");
    let exported = |p: &str| m.exports.get(p).map_or(0, |e| e.exported);
    let cards = [
        ("events used", num(ev.map_or(0, |s| s.rows_used))),
        ("persons", num(m.identity.persons)),
        ("cookies", num(m.identity.cookies)),
        ("conversions", num(m.stitch.conversions)),
        ("refused unions", num(m.identity.refused_unions)),
        ("exported to Meta", num(exported("meta"))),
        ("exported to Google", num(exported("google"))),
    ];
    o.push_str("<div class=\"cards\">");
    for (k, v) in cards {
        let _ = write!(
            o,
            "<div class=\"card\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
            escape(&v),
            escape(k)
        );
    }
    o.push_str("</div><div class=\"grid\">");

    // Inputs and reconciliation.
    o.push_str("<section id=\"inputs\"><h2>Input volumes and reconciliation</h2>");
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    for (name, s) in &m.inputs {
        let ok = s.rows_read == s.rows_used + s.rows_deduplicated + s.rows_quarantined;
        rows.push(vec![
            escape(name),
            num(s.rows_read),
            num(s.rows_used),
            num(s.rows_deduplicated),
            num(s.rows_quarantined),
            num(s.junk_ids),
            num(s.files.len() as u64),
            if ok {
                "<span class=\"ok\">✓</span>".to_string()
            } else {
                "<span class=\"bad\">✗ no</span>".to_string()
            },
        ]);
        bars.push((name.clone(), s.rows_read as f64));
    }
    table(
        &mut o,
        &[
            "source",
            "read",
            "used",
            "deduplicated",
            "quarantined",
            "junk ids",
            "files",
            "reconciles",
        ],
        &rows,
    );
    let quarantined: BTreeMap<String, u64> =
        m.inputs.iter().fold(BTreeMap::new(), |mut acc, (src, s)| {
            for (r, n) in &s.quarantined_by_reason {
                *acc.entry(format!("{src}: {r}")).or_default() += n;
            }
            acc
        });
    if !quarantined.is_empty() {
        let rows: Vec<Vec<String>> = quarantined
            .iter()
            .map(|(k, n)| vec![escape(k), num(*n)])
            .collect();
        o.push_str("<h3>Quarantined by reason</h3>");
        table(&mut o, &["source: reason", "rows"], &rows);
    }
    o.push_str("<p class=\"note\">Reconciles: rows read = used + deduplicated + quarantined.</p>");
    o.push_str(&bar_chart(&bars, "rows read")?);
    o.push_str("</section>");

    // Stitching health.
    let id = &m.identity;
    o.push_str("<section id=\"stitching\"><h2>Stitching health</h2>");
    let junk: u64 = m.inputs.values().map(|s| s.junk_ids).sum();
    let st = &m.stitch;
    let rows = vec![
        vec!["persons".into(), num(id.persons)],
        vec!["persons with a user".into(), num(id.persons_with_user)],
        vec!["cookies".into(), num(id.cookies)],
        vec!["segments".into(), num(id.segments)],
        vec![
            "backfilled events".into(),
            format!(
                "{} ({})",
                num(st.backfilled_events),
                pct(st.backfilled_events, st.journey_events)
            ),
        ],
        vec![
            "cookies linked to more than one user".into(),
            num(id.conflicted_cookies),
        ],
        vec!["shared-device cuts".into(), num(id.shared_device_cuts)],
        vec!["refused unions".into(), num(id.refused_unions)],
        vec!["oversized persons".into(), num(id.oversized_persons)],
        vec!["junk ids (treated as null)".into(), num(junk)],
        vec![
            "persons with a first touch".into(),
            num(st.persons_with_first_touch),
        ],
    ];
    table(&mut o, &["measure", "value"], &rows);
    let buckets = cookie_buckets(input.persons)?;
    let names = [
        "1 cookie",
        "2 cookies",
        "3 cookies",
        "4 cookies",
        "5–9 cookies",
        "10–99 cookies",
        "100+ cookies",
    ];
    let bars: Vec<(String, f64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), buckets[i] as f64))
        .collect();
    o.push_str("<h3>Cookies per person</h3>");
    o.push_str(&bar_chart(&bars, "persons")?);
    o.push_str("</section>");

    // First-touch channel mix.
    o.push_str("<section id=\"first-touch\"><h2>First-touch channel mix</h2>");
    let mix = channel_mix(input.user_attribution)?;
    let total: u64 = mix.iter().map(|m| m.1).sum();
    let rows: Vec<Vec<String>> = mix
        .iter()
        .map(|(c, n)| vec![escape(c), num(*n), pct(*n, total)])
        .collect();
    table(&mut o, &["channel", "users", "share"], &rows);
    let bars: Vec<(String, f64)> = mix.iter().map(|(c, n)| (c.clone(), *n as f64)).collect();
    o.push_str(&bar_chart(&bars, "users")?);
    o.push_str("<p class=\"note\">Users by the channel of their first touch, on any device.</p>");
    o.push_str("</section>");

    // Attribution by model and channel.
    o.push_str("<section id=\"attribution\"><h2>Attribution by model and channel</h2>");
    let s = input.attribution_summary;
    let models = strings(s, "model")?;
    let channels = strings(s, "channel")?;
    let credited = floats(s, "conversions_credited")?;
    let value = floats(s, "value_credited")?;
    let mut by: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for i in 0..s.height() {
        let k = (
            models[i].clone().unwrap_or_default(),
            channels[i].clone().unwrap_or_default(),
        );
        let e = by.entry(k).or_default();
        e.0 += credited[i];
        e.1 += value[i];
    }
    let model_order = [
        "first_touch",
        "last_non_direct",
        "linear",
        "position_based",
        "time_decay",
    ];
    let mut model_list: Vec<String> = model_order.iter().map(|s| s.to_string()).collect();
    for (mdl, _) in by.keys() {
        if !model_list.contains(mdl) {
            model_list.push(mdl.clone());
        }
    }
    model_list.retain(|mdl| by.keys().any(|k| &k.0 == mdl));
    let mut channel_list: Vec<String> = by.keys().map(|k| k.1.clone()).collect();
    channel_list.sort();
    channel_list.dedup();
    // Channels down, models across: conversions credited, and the value credited below.
    let rows: Vec<Vec<String>> = channel_list
        .iter()
        .map(|ch| {
            let mut r = vec![escape(ch)];
            for mdl in &model_list {
                r.push(by.get(&(mdl.clone(), ch.clone())).map_or_else(
                    || "–".to_string(),
                    |(c, v)| format!("{c:.2}<br><small>{v:.2}</small>"),
                ));
            }
            r
        })
        .collect();
    let series: Vec<(String, Vec<f64>)> = channel_list
        .iter()
        .map(|ch| {
            (
                ch.clone(),
                model_list
                    .iter()
                    .map(|mdl| by.get(&(mdl.clone(), ch.clone())).map_or(0.0, |e| e.0))
                    .collect(),
            )
        })
        .collect();
    o.push_str(&stacked_chart(
        &model_list,
        &series,
        "conversions credited",
    )?);
    let mut header: Vec<&str> = vec!["channel"];
    header.extend(model_list.iter().map(String::as_str));
    table(&mut o, &header, &rows);
    o.push_str(
        "<p class=\"note\">Conversions credited to each channel, and below them the value \
         credited (summed over currencies).</p>",
    );
    o.push_str("</section>");

    // Export coverage.
    o.push_str("<section id=\"exports\"><h2>Export coverage</h2>");
    let mk = input.match_keys;
    let rows: Vec<Vec<String>> = mk
        .counts
        .iter()
        .map(|(k, n)| vec![escape(k), num(*n), pct(*n, mk.conversions)])
        .collect();
    let _ = write!(
        o,
        "<h3>Match keys of the {} conversions</h3>",
        num(mk.conversions)
    );
    let bars: Vec<(String, f64)> = mk
        .counts
        .iter()
        .map(|(k, n)| {
            (
                k.to_string(),
                if mk.conversions == 0 {
                    0.0
                } else {
                    100.0 * *n as f64 / mk.conversions as f64
                },
            )
        })
        .collect();
    o.push_str(&bar_chart(&bars, "% of conversions")?);
    table(&mut o, &["match key", "conversions", "share"], &rows);
    o.push_str("<h3>Exported and skipped, by destination</h3>");
    let mut dests: Vec<(String, u64, u64, serde_json::Value)> = Vec::new();
    for (name, e) in &m.exports {
        dests.push((
            name.clone(),
            e.conversions,
            e.exported,
            serde_json::to_value(e.skipped)?,
        ));
        if let Some(c) = &e.click_conversions {
            dests.push((
                format!("{name} click conversion file"),
                e.conversions,
                c.exported,
                serde_json::to_value(c.skipped)?,
            ));
        }
    }
    let mut reasons: Vec<String> = Vec::new();
    for d in &dests {
        if let Some(obj) = d.3.as_object() {
            for (k, v) in obj {
                if v.as_u64().unwrap_or(0) > 0 && !reasons.contains(k) {
                    reasons.push(k.clone());
                }
            }
        }
    }
    // Reasons down, destinations across.
    let mut header: Vec<&str> = vec![""];
    header.extend(dests.iter().map(|d| d.0.as_str()));
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("conversions".to_string())
            .chain(dests.iter().map(|d| num(d.1)))
            .collect(),
        std::iter::once("exported".to_string())
            .chain(
                dests
                    .iter()
                    .map(|d| format!("{} ({})", num(d.2), pct(d.2, d.1))),
            )
            .collect(),
    ];
    for k in &reasons {
        rows.push(
            std::iter::once(format!("skipped: {}", escape(k)))
                .chain(dests.iter().map(|d| num(d.3[k].as_u64().unwrap_or(0))))
                .collect(),
        );
    }
    table(&mut o, &header, &rows);
    let series: Vec<(String, Vec<f64>)> = std::iter::once("exported".to_string())
        .chain(
            reasons
                .iter()
                .filter(|r| *r != "bad_email" && *r != "bad_phone")
                .cloned(),
        )
        .map(|k| {
            let values = dests
                .iter()
                .map(|d| {
                    if k == "exported" {
                        d.2 as f64
                    } else {
                        d.3[&k].as_u64().unwrap_or(0) as f64
                    }
                })
                .collect();
            (k, values)
        })
        .collect();
    let labels: Vec<String> = dests.iter().map(|d| d.0.clone()).collect();
    o.push_str(&stacked_chart(&labels, &series, "conversions")?);
    o.push_str(
        "<p class=\"note\">bad_email and bad_phone count values left out of conversions \
         that may still be exported.</p></section>",
    );

    // Changes since the previous run.
    o.push_str("<section id=\"changes\"><h2>Since the previous run</h2>");
    match &m.changes.previous_run {
        None => o.push_str("<p>This is the first published run of this output.</p>"),
        Some(prev) => {
            let persons_prev = input.previous_persons.map_or("–".to_string(), num);
            let delta = input.previous_persons.map_or("–".to_string(), |p| {
                format!("{:+}", id.persons as i64 - p as i64)
            });
            let rows = vec![
                vec!["previous run".into(), escape(prev)],
                vec!["persons then".into(), persons_prev],
                vec!["persons now".into(), num(id.persons)],
                vec!["change".into(), escape(&delta)],
                vec![
                    "persons whose first touch changed".into(),
                    m.changes.first_touch_changed.map_or("–".to_string(), num),
                ],
            ];
            table(&mut o, &["", ""], &rows);
        }
    }
    o.push_str("<h3>Tables written</h3>");
    let rows: Vec<Vec<String>> = m
        .outputs
        .iter()
        .map(|(name, t)| vec![escape(name), num(t.rows), num(t.files.len() as u64)])
        .collect();
    table(&mut o, &["table", "rows", "files"], &rows);
    o.push_str("</section></div></main></body></html>\n");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn charts_are_inline_svg_with_escaped_labels() {
        let svg = bar_chart(&[("<b>".into(), 3.0), ("two".into(), 1.0)], "n").unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(!svg.contains("http"), "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        let svg = stacked_chart(
            &["a".into(), "b".into()],
            &[("x".into(), vec![1.0, 2.0]), ("y".into(), vec![0.5, 0.0])],
            "n",
        )
        .unwrap();
        assert!(svg.contains("<rect") && svg.contains("\nx\n"), "{svg}");
    }

    /// The cookie buckets count numbers (nulls left out, 0 with 1), and the channel mix counts
    /// missing channels as `(no touch)`, the most users first, ties by name.
    #[test]
    fn cookie_buckets_and_channel_mix() {
        let persons = df!(
            "anon_count" => [Some(1u32), Some(0), Some(2), Some(2), None, Some(4), Some(9),
                Some(10), Some(99), Some(100), Some(5000)],
        )
        .unwrap();
        assert_eq!(cookie_buckets(&persons).unwrap(), [2, 2, 0, 1, 1, 2, 2]);
        assert_eq!(cookie_buckets(&DataFrame::empty()).unwrap(), [0; 7]);
        let users = df!(
            "first_touch_channel" => [Some("Paid Search"), None, Some("Direct"),
                Some("Paid Search"), None, Some("Email")],
        )
        .unwrap();
        let mix = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(c, n)| (c.to_string(), *n)).collect()
        };
        assert_eq!(
            channel_mix(&users).unwrap(),
            mix(&[
                ("(no touch)", 2),
                ("Paid Search", 2),
                ("Direct", 1),
                ("Email", 1)
            ])
        );
        let no_column = df!("user_id" => ["u1", "u2"]).unwrap();
        assert_eq!(channel_mix(&no_column).unwrap(), mix(&[("(no touch)", 2)]));
        assert!(channel_mix(&DataFrame::empty()).unwrap().is_empty());
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(num(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(num(12), "12");
        assert_eq!(pct(1, 4), "25.0 %");
        assert_eq!(pct(1, 0), "–");
    }
}
