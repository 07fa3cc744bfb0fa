//! Each conversion's match keys, gathered from the stitched run (contract §5).
//!
//! Columnar work first: the conversion events with their person, the person's user and
//! oversized flag, and the user's email, phone, country and consent (a polars join). The
//! touches a conversion reads are chosen before any touch column is read again
//! ([`export_touches`]): its person's latest touch at or before it (its `fbc`, `fbp`, ip, user
//! agent and landing page), the latest Google click (`gclid`, `gbraid`, `wbraid`, each its
//! own) and the latest Meta click (`fbclid`), found from the touches' times and the bits of
//! [`TouchClicks`]. Only those touches are read again from the raw files.
//!
//! The conversion's own page URL is read from its `properties` JSON (`url`, `page_url`,
//! `$current_url` or `href`, the first present); ip and user agent of the conversion event win
//! over the touch's.

use polars::prelude::*;

use polars_arrow::bitmap::{Bitmap, MutableBitmap};

use super::{Click, Conversion, Phone};
use crate::codes::{self, NONE};
use crate::error::Result;
use crate::identity::IdentityGraph;
use crate::read::{RawLake, TouchText};
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

    let chosen = Chosen::new(touches)?;
    if chosen.picks.len() != df.height() {
        return Err(crate::error::Error::Internal(format!(
            "{} conversions, touches chosen for {}",
            df.height(),
            chosen.picks.len()
        )));
    }
    let s = |name: &str| -> Result<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (event_id, event, currency, order_id) =
        (s("event_id")?, s("event")?, s("currency")?, s("order_id")?);
    let (receipt, ip, ua, props) = (s("email")?, s("ip")?, s("user_agent")?, s("properties")?);
    let (user_id, user_email, phone, country) =
        (s("user_id")?, s("user_email")?, s("phone")?, s("country")?);
    let ts = df.column("ts")?.i64()?.clone();
    let value = df.column("value")?.f64()?.clone();
    let oversized = df.column("oversized")?.bool()?.clone();
    let consent = df.column("ad_user_data")?.bool()?.clone();
    let personalization = df.column("ad_personalization")?.bool()?.clone();

    let owned = |v: Option<&str>| v.map(str::to_string);
    let phones = shared_phones(&phone, &country);
    // Row by row (each conversion's touches, its page URL parsed out of its properties), in
    // consecutive slices on all cores, put back in order.
    let slices = crate::parallel::slices(df.height(), GATHER_SLICES);
    let parts = crate::parallel::map(&slices, 4, |_, slice| -> Result<Vec<Conversion>> {
        let mut out = Vec::with_capacity(slice.len());
        for i in slice.clone() {
            let t = ts.get(i).unwrap_or(0);
            let mut emails: Vec<String> = Vec::new();
            for e in [user_email.get(i), receipt.get(i)].into_iter().flatten() {
                if !e.trim().is_empty() && !emails.iter().any(|x| x == e) {
                    emails.push(e.to_string());
                }
            }
            let latest = |column: &TouchColumn| chosen.of_latest(i, column);
            let click = |k: usize| chosen.click(i, k);
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
                phones: phones[i].iter().cloned().collect(),
                gclid: click(0),
                gbraid: click(1),
                wbraid: click(2),
                fbclid: click(3),
                fbc: latest(&chosen.fbc),
                fbp: latest(&chosen.fbp),
                ip: owned(ip.get(i)).or_else(|| latest(&chosen.ip)),
                user_agent: owned(ua.get(i))
                    .filter(|v| !v.trim().is_empty())
                    .or_else(|| latest(&chosen.user_agent)),
                event_source_url: page_url.or_else(|| latest(&chosen.landing_url)),
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

/// Each conversion's phone (`phone`, `country`: the users' columns, one row per conversion;
/// `None` for a missing or blank one), one [`Phone`] per distinct `(phone, country)` shared by
/// every conversion that has it: a user's phone comes with each of their conversions, and a
/// shared phone is read as E.164 at most once, by the first platform that needs it (each
/// platform reading each conversion's own was most of the exports' work).
fn shared_phones(phone: &StringChunked, country: &StringChunked) -> Vec<Option<Phone>> {
    let mut distinct: PlHashMap<(&str, Option<&str>), Phone> = PlHashMap::new();
    phone
        .iter()
        .zip(country.iter())
        .map(|(p, c)| {
            let p = p.filter(|v| !v.trim().is_empty())?;
            Some(
                distinct
                    .entry((p, c))
                    .or_insert_with(|| Phone::new(p, c))
                    .clone(),
            )
        })
        .collect()
}

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

/// One string column of the touches read again, read by row.
struct TouchColumn(Option<StringChunked>);

impl TouchColumn {
    fn new(touches: &DataFrame, name: &str) -> Result<Self> {
        Ok(TouchColumn(match touches.column(name) {
            Ok(c) => Some(c.str()?.clone()),
            Err(_) => None,
        }))
    }

    /// The non-blank value of `row` (a row of the frame: callers check for [`NONE`] first).
    fn value(&self, row: u32) -> Option<String> {
        self.0
            .as_ref()
            .and_then(|c| c.get(row as usize))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// The click id columns of the touches, in the order of [`TouchClicks`] and of
/// [`ExportTouches`]' picks (after the latest touch).
pub const CLICK_COLUMNS: [&str; 4] = ["gclid", "gbraid", "wbraid", "fbclid"];

/// Which touches carry each click id (a non-blank value, as the exports read it), one bit a
/// touch and a column of [`CLICK_COLUMNS`]: worked out while the touches' click ids are held
/// (the identity stage), so that the exports can choose each conversion's touches before they
/// read any touch column again.
#[derive(Debug, Clone, Default)]
pub struct TouchClicks {
    has: [Bitmap; 4],
}

impl TouchClicks {
    /// The bits of `touches` (the read stage's touches, click ids as codes into `text`).
    pub fn of(touches: &DataFrame, text: &TouchText) -> Result<Self> {
        let n = touches.height();
        let mut has: [Bitmap; 4] = Default::default();
        for (bits, name) in has.iter_mut().zip(CLICK_COLUMNS) {
            let (Ok(codes), Some(dict)) = (touches.column(name), text.dictionary(name)) else {
                *bits = Bitmap::new_zeroed(n);
                continue;
            };
            // Blank or not, decided once per distinct value.
            let filled: Vec<bool> = dict
                .str()?
                .iter()
                .map(|v| v.is_some_and(|v| !v.trim().is_empty()))
                .collect();
            let mut out = MutableBitmap::with_capacity(n);
            codes::for_each_code(codes.u32()?, |c| {
                out.push(filled.get(c as usize).copied().unwrap_or(false))
            });
            *bits = out.into();
        }
        Ok(TouchClicks { has })
    }

    /// Whether touch `row` has a value in column `k` of [`CLICK_COLUMNS`].
    fn has(&self, k: usize, row: u32) -> bool {
        let bits = &self.has[k];
        (row as usize) < bits.len() && bits.get_bit(row as usize)
    }
}

/// The touches the exports read, chosen for each conversion before any is read again: its
/// person's latest touch at or before it (its `fbc`, `fbp`, ip, user agent and landing page)
/// and the latest such touch with each click id of [`CLICK_COLUMNS`]. At most five touches a
/// conversion; the touches' other columns and the person's other touches are never read.
#[derive(Debug, Clone)]
pub struct ExportTouches {
    /// `ts` and [`REREAD_COLUMNS`] of the touches chosen, in the touches' (time) order.
    frame: DataFrame,
    /// For each conversion (row of [`RawLake::conversions`]): the row in `frame` of its
    /// latest touch, then of its latest touch with each of [`CLICK_COLUMNS`] ([`NONE`]: none).
    picks: Vec<[u32; 5]>,
}

/// The columns of the chosen touches read again from the raw files.
pub const REREAD_COLUMNS: [&str; 9] = [
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

/// The [`ExportTouches`] of the run's conversions ([`RawLake::conversions`]), their columns
/// read again from the raw touch files (`again`, see [`crate::read::touch_columns`]).
pub fn export_touches(
    raw: &RawLake,
    graph: &IdentityGraph,
    clicks: &TouchClicks,
    again: crate::read::TouchesAgain<'_>,
) -> Result<ExportTouches> {
    let persons = graph.event_persons();
    let conversion_person: Vec<u32> = (raw.conversions.column("_i")?.idx()?)
        .into_no_null_iter()
        .map(|i| persons[i as usize])
        .collect();
    let conversion_ts = codes::values_or(raw.conversions.column("ts")?.i64()?, 0);
    let touch_ts = codes::values_slice(raw.touches.column("ts")?.i64()?, 0);
    let index =
        PersonTouches::of_converting(&graph.touch_person, &conversion_person, graph.persons.len());
    let chosen: Vec<[u32; 5]> = conversion_person
        .iter()
        .zip(&conversion_ts)
        .map(|(&p, &t)| choose(index.at_or_before(p, t, &touch_ts), clicks))
        .collect();
    // Each touch read once, in the touches' order.
    let mut rows: Vec<u32> = chosen
        .iter()
        .flatten()
        .copied()
        .filter(|&r| r != NONE)
        .collect();
    rows.sort_unstable();
    rows.dedup();
    let at_row = |r: u32| match rows.binary_search(&r) {
        Ok(i) => i as u32,
        Err(_) => NONE,
    };
    let picks = chosen.iter().map(|c| c.map(at_row)).collect();
    let idx = IdxCa::from_vec("rows".into(), rows.iter().map(|&r| r as IdxSize).collect());
    let at = raw
        .touches
        .select([crate::read::FIDX_COL, crate::read::schema::ROW_COL])?
        .take(&idx)?;
    let mut frame = raw.touches.select(["ts"])?.take(&idx)?;
    for c in again(&at, &REREAD_COLUMNS)?.into_columns() {
        frame.with_column(c)?;
    }
    Ok(ExportTouches { frame, picks })
}

/// Of a person's touches at or before a conversion (`rows`, in time order): the latest, then
/// the latest with each click id of [`CLICK_COLUMNS`] ([`NONE`]: none).
fn choose(rows: &[u32], clicks: &TouchClicks) -> [u32; 5] {
    let mut out = [NONE; 5];
    out[0] = rows.last().copied().unwrap_or(NONE);
    for (k, slot) in out[1..].iter_mut().enumerate() {
        *slot = rows
            .iter()
            .rev()
            .copied()
            .find(|&r| clicks.has(k, r))
            .unwrap_or(NONE);
    }
    out
}

/// The touch rows of the persons who convert, grouped by person, each person's in time order.
struct PersonTouches {
    offsets: Vec<u32>,
    rows: Vec<u32>,
}

impl PersonTouches {
    /// Of the touches with person `touch_person` (in time order), those of `converting`.
    /// `n` is the number of persons.
    fn of_converting(touch_person: &[u32], converting: &[u32], n: usize) -> Self {
        let mut wanted = vec![false; n];
        for &p in converting {
            if let Some(x) = wanted.get_mut(p as usize) {
                *x = true;
            }
        }
        // The touches are in time order, so each person's rows are.
        let (offsets, rows) =
            codes::rows_by_key(touch_person, n, |row| wanted[touch_person[row] as usize]);
        PersonTouches { offsets, rows }
    }

    /// The person's touch rows at or before `ts` (touch times `touch_ts`), in time order.
    fn at_or_before(&self, person: u32, ts: i64, touch_ts: &[i64]) -> &[u32] {
        if person == NONE || person as usize + 1 >= self.offsets.len() {
            return &[];
        }
        let p = person as usize;
        let rows = &self.rows[self.offsets[p] as usize..self.offsets[p + 1] as usize];
        let end = rows.partition_point(|&r| touch_ts[r as usize] <= ts);
        &rows[..end]
    }
}

/// The chosen touches' columns, read by [`ExportTouches`]' picks.
struct Chosen<'a> {
    picks: &'a [[u32; 5]],
    ts: Vec<i64>,
    clicks: [TouchColumn; 4],
    fbc: TouchColumn,
    fbp: TouchColumn,
    ip: TouchColumn,
    user_agent: TouchColumn,
    landing_url: TouchColumn,
}

impl<'a> Chosen<'a> {
    fn new(touches: &'a ExportTouches) -> Result<Self> {
        let t = &touches.frame;
        let column = |name: &str| TouchColumn::new(t, name);
        Ok(Chosen {
            picks: &touches.picks,
            ts: codes::values_or(t.column("ts")?.i64()?, 0),
            clicks: [
                column(CLICK_COLUMNS[0])?,
                column(CLICK_COLUMNS[1])?,
                column(CLICK_COLUMNS[2])?,
                column(CLICK_COLUMNS[3])?,
            ],
            fbc: column("fbc")?,
            fbp: column("fbp")?,
            ip: column("ip")?,
            user_agent: column("user_agent")?,
            landing_url: column("landing_url")?,
        })
    }

    /// The latest touch of conversion `i` ([`NONE`]: none).
    fn latest(&self, i: usize) -> u32 {
        self.picks.get(i).map_or(NONE, |p| p[0])
    }

    /// `column` of the latest touch of conversion `i`.
    fn of_latest(&self, i: usize, column: &TouchColumn) -> Option<String> {
        let r = self.latest(i);
        (r != NONE).then(|| column.value(r)).flatten()
    }

    /// The click of column `k` of [`CLICK_COLUMNS`] of conversion `i`.
    fn click(&self, i: usize, k: usize) -> Option<Click> {
        let r = self.picks.get(i).map_or(NONE, |p| p[k + 1]);
        if r == NONE {
            return None;
        }
        self.clicks[k].value(r).map(|id| Click {
            id,
            at_us: self.ts[r as usize],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The touches a conversion reads are chosen from the times and the click bits alone:
    /// the latest at or before it, and the latest with each click id, a blank id not counting.
    #[test]
    fn each_conversion_chooses_its_latest_touch_and_latest_click_of_each_kind() {
        let s = |name: &str, v: [Option<&str>; 6]| Column::new(name.into(), v.to_vec());
        // Touch rows in time order; person 0 owns rows 0, 2, 3, 5, person 1 row 1 and 4.
        let touches = DataFrame::new(
            6,
            vec![
                Column::new("ts".into(), [1i64, 1, 2, 3, 3, 5].to_vec()),
                s(
                    "gclid",
                    [Some("G1"), Some("Gx"), Some("  "), None, None, Some("G5")],
                ),
                s("gbraid", [None, None, None, Some("B3"), None, None]),
                s("wbraid", [None, None, None, None, Some("Wx"), None]),
                s("fbclid", [None, None, Some("F2"), Some(""), None, None]),
            ],
        )
        .unwrap();
        let (coded, text) = TouchText::encode(&touches, &[]).unwrap();
        let clicks = TouchClicks::of(&coded, &text).unwrap();
        let touch_person = [0, 1, 0, 0, 1, 0];
        let ts = [1i64, 1, 2, 3, 3, 5];
        let index = PersonTouches::of_converting(&touch_person, &[0], 3);
        let at = |p: u32, t: i64| choose(index.at_or_before(p, t, &ts), &clicks);
        // At 4: latest is row 3; gclid from row 0 (row 2's is blank), gbraid row 3, no
        // wbraid of its own (row 4 is person 1's), fbclid row 2 (row 3's is blank).
        assert_eq!(at(0, 4), [3, 0, 3, NONE, 2]);
        // A touch in the same microsecond counts; the click after it does not.
        assert_eq!(at(0, 2), [2, 0, NONE, NONE, 2]);
        assert_eq!(at(0, 5), [5, 5, 3, NONE, 2]);
        assert_eq!(at(0, 0), [NONE; 5]);
        // Person 1 converts nowhere: not indexed. No person: nothing.
        assert_eq!(at(1, 9), [NONE; 5]);
        assert_eq!(at(NONE, 9), [NONE; 5]);
    }

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

    /// Each distinct (phone, country) is one phone, shared by its conversions and not read
    /// here: one national number in two countries is two numbers, a repeated one shares its
    /// reading, and a missing or blank phone gives none.
    #[test]
    fn conversions_share_one_phone_per_number_and_country() {
        let phone = StringChunked::from_iter([
            Some("030 901820"),
            Some("030 901820"),
            None,
            Some("030 901820"),
            Some("  "),
            Some("+1 415 555 0142"),
        ]);
        let country =
            StringChunked::from_iter([Some("DE"), Some("GB"), Some("DE"), Some("DE"), None, None]);
        let shared = shared_phones(&phone, &country);
        let given: Vec<Option<Phone>> = phone
            .iter()
            .zip(country.iter())
            .map(|(p, c)| p.filter(|p| !p.trim().is_empty()).map(|p| Phone::new(p, c)))
            .collect();
        assert_eq!(shared, given);
        let at = |i: usize| shared[i].as_ref().unwrap();
        assert!(at(0).same_reading(at(3)));
        assert!(!at(0).same_reading(at(1)) && !at(0).same_reading(at(5)));
        assert!(shared.iter().flatten().all(|p| !p.is_read()));
        let e164: Vec<Option<&str>> = [0, 1, 3, 5].map(|i| at(i).e164()).to_vec();
        assert_eq!(
            e164,
            [
                Some("+4930901820"),
                None,
                Some("+4930901820"),
                Some("+14155550142")
            ]
        );
        assert!(at(3).is_read());
    }
}
