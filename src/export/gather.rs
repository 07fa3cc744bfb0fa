//! Each conversion's match keys, gathered from the stitched run (contract §5).
//!
//! Columnar work first: the conversion events with their person, the person's user and
//! oversized flag, and the user's email, phone, country and consent (a polars join). Then one
//! pass over the conversions looks up the person's touches, which are grouped by person in time
//! order, with a binary search: the latest touch at or before the conversion (its `fbc`, `fbp`,
//! ip, user agent and landing page), the latest Google click (`gclid`, `gbraid`, `wbraid`) and
//! the latest Meta click (`fbclid`).
//!
//! The conversion's own page URL is read from its `properties` JSON (`url`, `page_url`,
//! `$current_url` or `href`, the first present); ip and user agent of the conversion event win
//! over the touch's.

use polars::prelude::*;

use super::{Click, Conversion};
use crate::error::Result;
use crate::identity::union_find::NONE;
use crate::identity::IdentityGraph;
use crate::read::RawLake;
use crate::stitch::Tables;

/// Keys of `properties` that hold the conversion's page URL, in order of preference.
pub const PAGE_URL_KEYS: [&str; 4] = ["url", "page_url", "$current_url", "href"];

/// The conversions of the run ([`RawLake::conversions`]) as typed records.
pub fn conversions(
    raw: &RawLake,
    graph: &IdentityGraph,
    tables: &Tables,
    touches: &ExportTouches,
) -> Result<Vec<Conversion>> {
    // Value, currency, order id, receipt email, ip, user agent and properties are kept for
    // conversions only, apart (joined here).
    let mut ev = raw.conversions.clone();
    let person: Vec<u32> = ev
        .column("_i")?
        .idx()?
        .into_no_null_iter()
        .map(|i| graph.event_persons()[i as usize])
        .collect();
    ev.with_column(Column::new("person".into(), person))?;
    let person_users = &tables.person_users;
    let oversized: Vec<bool> = graph.persons.iter().map(|p| p.oversized).collect();
    let persons = DataFrame::new(
        person_users.len(),
        vec![
            Column::new(
                "person".into(),
                (0..person_users.len() as u32).collect::<Vec<_>>(),
            ),
            person_users.clone().with_name("user_id".into()).into(),
            Column::new("oversized".into(), oversized),
        ],
    )?;
    let users = raw
        .users
        .select([
            "user_id",
            "email",
            "phone",
            "country",
            "ad_user_data",
            "ad_personalization",
        ])?
        .lazy()
        .select([
            col("user_id"),
            col("email").alias("user_email"),
            col("phone"),
            col("country"),
            col("ad_user_data"),
            col("ad_personalization"),
        ]);
    let left = || JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    let df = ev
        .lazy()
        .join(persons.lazy(), [col("person")], [col("person")], left())
        .join(users, [col("user_id")], [col("user_id")], left())
        .collect()?;

    let by_person = TouchIndex::new(touches, graph.persons.len())?;
    let s = |name: &str| -> Result<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (event_id, event, currency, order_id) =
        (s("event_id")?, s("event")?, s("currency")?, s("order_id")?);
    let (receipt, ip, ua, props) = (s("email")?, s("ip")?, s("user_agent")?, s("properties")?);
    let (user_id, user_email, phone, country) =
        (s("user_id")?, s("user_email")?, s("phone")?, s("country")?);
    let ts = df.column("ts")?.i64()?.clone();
    let value = df.column("value")?.f64()?.clone();
    let person = df.column("person")?.u32()?.clone();
    let oversized = df.column("oversized")?.bool()?.clone();
    let consent = df.column("ad_user_data")?.bool()?.clone();
    let personalization = df.column("ad_personalization")?.bool()?.clone();

    let owned = |v: Option<&str>| v.map(str::to_string);
    // Row by row (each conversion's touches, its page URL parsed out of its properties), in
    // consecutive slices on all cores, put back in order.
    let slices = crate::parallel::slices(df.height(), GATHER_SLICES);
    let parts = crate::parallel::map(&slices, 4, |_, slice| -> Result<Vec<Conversion>> {
        let mut out = Vec::with_capacity(slice.len());
        for i in slice.clone() {
            let t = ts.get(i).unwrap_or(0);
            let p = person.get(i).unwrap_or(NONE);
            let touches = by_person.at_or_before(p, t);
            let mut emails: Vec<String> = Vec::new();
            for e in [user_email.get(i), receipt.get(i)].into_iter().flatten() {
                if !e.trim().is_empty() && !emails.iter().any(|x| x == e) {
                    emails.push(e.to_string());
                }
            }
            let phones = phone
                .get(i)
                .filter(|v| !v.trim().is_empty())
                .map(|v| vec![(v.to_string(), owned(country.get(i)))])
                .unwrap_or_default();
            let latest = touches.last().copied();
            let click = |column: &TouchColumn| by_person.latest_with(touches, column);
            let page_url = props.get(i).and_then(page_url_of);
            out.push(Conversion {
                event_id: event_id.get(i).unwrap_or_default().to_string(),
                event: event.get(i).unwrap_or_default().to_string(),
                ts_us: t,
                value: value.get(i),
                currency: owned(currency.get(i)),
                order_id: owned(order_id.get(i)),
                user_id: owned(user_id.get(i)),
                emails,
                phones,
                gclid: click(&by_person.gclid),
                gbraid: click(&by_person.gbraid),
                wbraid: click(&by_person.wbraid),
                fbclid: click(&by_person.fbclid),
                fbc: latest.and_then(|r| by_person.fbc.value(r)),
                fbp: latest.and_then(|r| by_person.fbp.value(r)),
                ip: owned(ip.get(i)).or_else(|| latest.and_then(|r| by_person.ip.value(r))),
                user_agent: owned(ua.get(i))
                    .filter(|v| !v.trim().is_empty())
                    .or_else(|| latest.and_then(|r| by_person.user_agent.value(r))),
                event_source_url: page_url
                    .or_else(|| latest.and_then(|r| by_person.landing_url.value(r))),
                ad_user_data: consent.get(i),
                ad_personalization: personalization.get(i),
                oversized: oversized.get(i).unwrap_or(false),
            });
        }
        Ok(out)
    })?;
    Ok(parts.into_iter().flatten().collect())
}

/// Slices of the conversions gathered side by side by [`conversions`].
const GATHER_SLICES: usize = 8;

/// The conversion's page URL from its `properties` JSON object, with personal data redacted
/// like the touches' URLs (`?email=...` → `?email=[redacted]`).
pub fn page_url_of(properties: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(properties).ok()?;
    PAGE_URL_KEYS.iter().find_map(|k| {
        v.get(k)
            .and_then(|u| u.as_str())
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(crate::read::privacy::redact_text)
    })
}

/// One string column of the touches, read by row.
struct TouchColumn(Option<StringChunked>);

impl TouchColumn {
    fn new(touches: &DataFrame, name: &str) -> Result<Self> {
        Ok(TouchColumn(match touches.column(name) {
            Ok(c) => Some(c.str()?.clone()),
            Err(_) => None,
        }))
    }

    /// The non-blank value of `row`.
    fn value(&self, row: u32) -> Option<String> {
        self.0
            .as_ref()
            .and_then(|c| c.get(row as usize))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// Touch rows grouped by person, in time order, with the columns the exports read.
struct TouchIndex {
    offsets: Vec<u32>,
    rows: Vec<u32>,
    ts: Vec<i64>,
    gclid: TouchColumn,
    gbraid: TouchColumn,
    wbraid: TouchColumn,
    fbclid: TouchColumn,
    fbc: TouchColumn,
    fbp: TouchColumn,
    ip: TouchColumn,
    user_agent: TouchColumn,
    landing_url: TouchColumn,
}

/// The touches the exports read: those of the persons with a conversion (a conversion's
/// clicks, cookies, IP and user agent come from its own person's touches), with
/// [`TOUCH_COLUMNS`], in the touches' (time) order, and the person of each.
///
/// The run does not hold the exports' columns of every touch (at 10M events they were about
/// 1.1 GB: IP, user agent and landing URL of 3M touches), nor, while it stitches, those of the
/// touches of persons who convert: the export stage reads them again from the raw files for
/// those touches only (`again`, see [`crate::read::touch_columns`]).
#[derive(Debug, Clone)]
pub struct ExportTouches {
    /// [`TOUCH_COLUMNS`] of the touches kept.
    frame: DataFrame,
    /// Person of each row of `frame`.
    person: Vec<u32>,
}

/// The [`ExportTouches`] of the run: the touches of the persons who have an event named in
/// `conversion_events`.
pub fn export_touches(
    raw: &RawLake,
    graph: &IdentityGraph,
    conversion_events: &[String],
    again: crate::read::TouchesAgain<'_>,
) -> Result<ExportTouches> {
    let is_conversion = raw
        .event_codes
        .names_where(|n| conversion_events.iter().any(|c| c == n))?;
    let mut converts = vec![false; graph.persons.len()];
    let names = raw.events.column("_event")?.u32()?;
    for (&p, c) in graph.event_persons().iter().zip(names.iter()) {
        if c.is_some_and(|c| is_conversion.get(c as usize) == Some(&true)) {
            if let Some(x) = converts.get_mut(p as usize) {
                *x = true;
            }
        }
    }
    let (rows, person): (Vec<IdxSize>, Vec<u32>) = graph
        .touch_person
        .iter()
        .enumerate()
        .filter(|(_, &p)| converts.get(p as usize).copied().unwrap_or(false))
        .map(|(r, &p)| (r as IdxSize, p))
        .unzip();
    let rows = IdxCa::from_vec("rows".into(), rows);
    let at = raw
        .touches
        .select([crate::read::FIDX_COL, crate::read::schema::ROW_COL])?
        .take(&rows)?;
    let mut frame = raw.touches.select(["ts"])?.take(&rows)?;
    let read_again: Vec<&str> = TOUCH_COLUMNS.into_iter().filter(|c| *c != "ts").collect();
    for c in again(&at, &read_again)?.into_columns() {
        frame.with_column(c)?;
    }
    Ok(ExportTouches { frame, person })
}

/// The touch columns the exports read (with `ts`), kept in [`ExportTouches`].
pub const TOUCH_COLUMNS: [&str; 10] = [
    "ts",
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "fbc",
    "fbp",
    "ip",
    "user_agent",
    "landing_url",
];

impl TouchIndex {
    fn new(touches: &ExportTouches, n_persons: usize) -> Result<Self> {
        let t = &touches.frame;
        let ts: Vec<i64> = t
            .column("ts")?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        // Counting sort by person; touches are already in time order, so each person's rows are.
        let n = n_persons;
        let mut offsets = vec![0u32; n + 1];
        for &p in &touches.person {
            offsets[p as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut rows = vec![0u32; touches.person.len()];
        for (row, &p) in touches.person.iter().enumerate() {
            rows[fill[p as usize] as usize] = row as u32;
            fill[p as usize] += 1;
        }
        Ok(TouchIndex {
            offsets,
            rows,
            ts,
            gclid: TouchColumn::new(t, "gclid")?,
            gbraid: TouchColumn::new(t, "gbraid")?,
            wbraid: TouchColumn::new(t, "wbraid")?,
            fbclid: TouchColumn::new(t, "fbclid")?,
            fbc: TouchColumn::new(t, "fbc")?,
            fbp: TouchColumn::new(t, "fbp")?,
            ip: TouchColumn::new(t, "ip")?,
            user_agent: TouchColumn::new(t, "user_agent")?,
            landing_url: TouchColumn::new(t, "landing_url")?,
        })
    }

    /// The person's touch rows at or before `ts`, in time order.
    fn at_or_before(&self, person: u32, ts: i64) -> &[u32] {
        if person == NONE || person as usize + 1 >= self.offsets.len() {
            return &[];
        }
        let rows = &self.rows
            [self.offsets[person as usize] as usize..self.offsets[person as usize + 1] as usize];
        let end = rows.partition_point(|&r| self.ts[r as usize] <= ts);
        &rows[..end]
    }

    /// The latest of `rows` with a value in `column`, as a click.
    fn latest_with(&self, rows: &[u32], column: &TouchColumn) -> Option<Click> {
        rows.iter().rev().find_map(|&r| {
            column.value(r).map(|id| Click {
                id,
                at_us: self.ts[r as usize],
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_url_comes_from_the_first_known_property() {
        assert_eq!(
            page_url_of(r#"{"page_url":"https://a.example/p","href":"x"}"#).as_deref(),
            Some("https://a.example/p")
        );
        assert_eq!(
            page_url_of(r#"{"$current_url":" https://b.example/ "}"#).as_deref(),
            Some("https://b.example/")
        );
        assert_eq!(page_url_of(r#"{"url":""}"#), None);
        assert_eq!(page_url_of("not json"), None);
        assert_eq!(
            page_url_of(r#"{"url":"https://a.example/thanks?email=ava@example.com&x=1"}"#)
                .as_deref(),
            Some("https://a.example/thanks?email=[redacted]&x=1")
        );
    }
}
