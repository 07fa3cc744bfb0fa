//! Personal data in untrusted input, kept out of the analyst tables (contract §4: "No analyst
//! table holds a raw email or phone number").
//!
//! Three rules, applied by the read stage before anything else sees the rows:
//! - **Ids that are personal data are pseudonymized.** An id (`user_id`, `anon_id`, ...) that
//!   holds an email address, or is a phone number written with its `+` country code, is replaced
//!   by `sha256:` + the SHA-256 (64 lowercase hex) of the trimmed id. The same id gives the same
//!   pseudonym in every source and every run, so stitching is unchanged.
//! - **Touch columns named like personal data are ignored** ([`is_pii_column`]): they are never
//!   attribution keys, and the manifest lists them.
//! - **Touch values are redacted** ([`redact_text`]): email addresses, `+` phone numbers, the
//!   values of personal query parameters (`?email=`, `&phone=`, ...) and URL credentials become
//!   `[redacted]`.
//!
//! Each rule is a regular expression applied by polars to whole columns; the same patterns are
//! exposed as plain Rust functions ([`redact_text`], [`pseudonym`]) for single values and tests.

use std::sync::LazyLock;

use crate::error::Result;
use crate::export::normalize::sha256_hex;
use polars::prelude::*;
use regex::Regex;

/// What a redacted part of a value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The prefix of a pseudonymized id.
pub const PSEUDONYM_PREFIX: &str = "sha256:";

/// An email address anywhere in a value, plain or percent-encoded (`%40`). The domain needs a
/// dot and a top-level label that starts with a letter, so `pkg@1.2.3` is not an email.
pub const EMAIL_RE: &str = r"(?i)[\w.+%'\-]+(?:@|%40)(?:[\w\-]+\.)+\p{L}[\p{L}\d\-]*";

/// A phone number written with its international `+` (or `%2B`): 8 or more digits, with at most
/// two separators between digits.
pub const PHONE_RE: &str = r"(?i)(?:\+|%2B)\d(?:[ \-.()/]{0,2}\d){7,}";

/// An id that is a whole international phone number (`+14155550123`, `+44 7700 900461`).
pub const PHONE_ID_RE: &str = r"^\s*\+\d(?:[ \-.()/]{0,2}\d){7,}\s*$";

/// The value of a query (or fragment) parameter whose key names personal data: keys holding
/// `email`, `e-mail`, `phone` or `msisdn` (`user_email`, `customer[phone]`), and the short keys
/// `e`, `em`, `mail`, `ph`, `tel`, `mobile`, `cell`, `sms`. Group 1 is the key with its `=`.
pub const PII_PARAM_RE: &str = r"(?i)([?&;#](?:[\w.\[\]%\-]*(?:e[_\-]?mail|phone|msisdn)[\w.\[\]%\-]*|e|em|mail|ph|tel|telephone|mobile|cell|sms)=)[^&#;]+";

/// The credentials of a URL (`https://user:password@host/`). Group 1 is the scheme with `//`.
pub const USERINFO_RE: &str = r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(EMAIL_RE).expect("email pattern"));
static PHONE_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(PHONE_ID_RE).expect("phone id pattern"));

/// What a credentials match becomes.
const USERINFO_WITH: &str = "${1}[redacted]@";
/// What a personal query parameter's value becomes.
const PARAM_WITH: &str = "${1}[redacted]";

/// The rules of [`redact_text`], in order: (pattern, replacement, every match or the first).
///
/// Credentials go first, so that `user:pw@host` is not read as an email and the host is kept,
/// and last again, because a redaction can remove a `/` that hid an `@` from the first pass.
/// With this order, redacting twice gives what redacting once gives.
const TEXT_RULES: [(&str, &str, bool); 5] = [
    (USERINFO_RE, USERINFO_WITH, false),
    (EMAIL_RE, REDACTED, true),
    (PHONE_RE, REDACTED, true),
    (PII_PARAM_RE, PARAM_WITH, true),
    (USERINFO_RE, USERINFO_WITH, false),
];

/// Per rule of [`TEXT_RULES`], literals of which a value holds at least one when the rule can
/// match it, as text: the tests check [`RULE_NEEDS`] and [`held_literals`] against it.
#[cfg(test)]
const TEXT_RULE_NEEDS: [&[&str]; 5] = [&["@"], &["@", "%40"], &["+", "%2B", "%2b"], &["="], &["@"]];

/// [`held_literals`]' bits: `@`, `%40`, `+` (or `%2B`, `%2b`), `=`.
const AT: u8 = 1;
const PERCENT_40: u8 = 2;
const PLUS: u8 = 4;
const EQUALS: u8 = 8;

/// Per rule of [`TEXT_RULES`], the literals ([`held_literals`]' bits) of which a value holds at
/// least one when the rule can match it: `@` for credentials, `@` or `%40` for an email, `+`,
/// `%2B` or `%2b` for a phone number, `=` for a query parameter. A value holding none of them
/// skips the rule: the regex scan is the costly part.
const RULE_NEEDS: [u8; 5] = [AT, AT | PERCENT_40, PLUS, EQUALS, AT];

/// Which of the rules' literals ([`RULE_NEEDS`]) `v` holds, in one pass over its bytes (a
/// substring search per literal and rule set a searcher up every time: most of redaction's
/// time went there, not into the regexes). A `%` is looked at again only when the value holds
/// one.
fn held_literals(v: &str) -> u8 {
    /// A bit that is not a literal: the value holds a `%`.
    const PERCENT: u8 = 16;
    const BITS: [u8; 256] = {
        let mut t = [0u8; 256];
        t[b'@' as usize] = AT;
        t[b'+' as usize] = PLUS;
        t[b'=' as usize] = EQUALS;
        t[b'%' as usize] = PERCENT;
        t
    };
    let b = v.as_bytes();
    let held = b.iter().fold(0u8, |held, &c| held | BITS[c as usize]);
    if held & PERCENT == 0 {
        return held;
    }
    let encoded = memchr::memchr_iter(b'%', b).fold(0u8, |bits, i| {
        bits | match b.get(i + 1..i + 3) {
            Some(b"40") => PERCENT_40,
            Some(b"2B" | b"2b") => PLUS,
            _ => 0,
        }
    });
    (held & !PERCENT) | encoded
}

/// Whether any value of `ca` may hold a literal every personal id holds (see
/// [`may_be_personal_id`]): one scan of its arrays' buffers for `@`, `+` and `%`, and of its
/// short values (kept in their views, not in the buffers). A column of cookie ids or event ids
/// is then passed over without looking at each value; a byte found anywhere (even in a value
/// no row shows any more) only sends the column to the value-by-value check.
fn may_hold_personal_ids(ca: &StringChunked) -> bool {
    use polars_arrow::array::View;
    let held = |b: &[u8]| memchr::memchr3(b'@', b'+', b'%', b).is_some();
    ca.downcast_iter().any(|arr| {
        arr.data_buffers().iter().any(|b| held(b))
            || arr.views().iter().any(|v| {
                // SAFETY: the view is inline (checked first).
                v.length <= View::MAX_INLINE_SIZE
                    && held(unsafe { v.get_inlined_slice_unchecked() })
            })
    })
}

/// Whether `v` holds a literal every personal id holds (`@` or `%40` of an email, `+` of a
/// phone): one byte scan, and the regexes only for the values that pass it.
fn may_be_personal_id(v: &str) -> bool {
    let b = v.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr3(b'@', b'+', b'%', &b[from..]) {
        let at = from + i;
        if b[at] != b'%' || b[at + 1..].starts_with(b"40") {
            return true;
        }
        from = at + 1;
    }
    false
}

static TEXT_REGEXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    TEXT_RULES
        .iter()
        .map(|(p, _, _)| Regex::new(p).expect("redaction pattern"))
        .collect()
});

/// `s` with URL credentials, email addresses, `+` phone numbers and the values of personal
/// query parameters replaced by `[redacted]`. Idempotent: redacting twice changes nothing more.
pub fn redact_text(s: &str) -> String {
    let mut out = s.to_string();
    for (re, (_, with, all)) in TEXT_REGEXES.iter().zip(TEXT_RULES) {
        let next = if all {
            re.replace_all(&out, with)
        } else {
            re.replace(&out, with)
        };
        if let std::borrow::Cow::Owned(next) = next {
            out = next;
        }
    }
    out
}

/// `s` with email addresses replaced by `[redacted]` (for opaque values such as user agents,
/// which a phone pattern would misread).
pub fn redact_emails(s: &str) -> String {
    EMAIL.replace_all(s, REDACTED).into_owned()
}

/// Whether an id (trimmed) is personal data: it holds an email address or is a `+` phone number.
pub fn is_personal_id(id: &str) -> bool {
    let t = id.trim();
    EMAIL.is_match(t) || PHONE_ID.is_match(t)
}

/// The pseudonym of an id: `sha256:` + SHA-256 of the trimmed id, 64 lowercase hex digits.
pub fn pseudonym(id: &str) -> String {
    format!("{PSEUDONYM_PREFIX}{}", sha256_hex(id.trim()))
}

/// `id` without its `sha256:` prefix when it is a pseudonym (the hex is the SHA-256 of the id as
/// read, so a platform that wants the hashed id gets the same hash as before).
pub fn pseudonym_hash(id: &str) -> Option<&str> {
    let hex = id.strip_prefix(PSEUDONYM_PREFIX)?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// Whether a touch column named `name` holds personal data by its name (`email`, `e_mail`,
/// `user_email`, `phone_number`, `mobile`, `tel`, ...), or is itself an email address or phone
/// number. Compared lowercased, without `_`, `-`, `.` and spaces.
pub fn is_pii_column(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    const CONTAINS: [&str; 3] = ["email", "phone", "msisdn"];
    const EXACT: [&str; 12] = [
        "e",
        "em",
        "mail",
        "mailaddress",
        "ph",
        "tel",
        "telephone",
        "mobile",
        "mobilenumber",
        "mobileno",
        "cell",
        "sms",
    ];
    CONTAINS.iter().any(|w| n.contains(w)) || EXACT.contains(&n.as_str()) || is_personal_id(name)
}

/// How a column name is listed in the manifest: itself, or `[redacted]` when the name is an
/// email address or phone number.
pub fn listed_name(name: &str) -> String {
    if is_personal_id(name) {
        REDACTED.to_string()
    } else {
        name.to_string()
    }
}

/// Replace the personal ids (see [`is_personal_id`]) of the string columns `ids` of `df` by
/// their [`pseudonym`]; values longer than `max_chars` are left for the caller to quarantine.
/// Returns the frame and the number of values replaced.
///
/// One pass over each column: only values holding `@`, `%40` or `+` are matched against the
/// patterns, and hashes are computed once per distinct personal id.
pub fn pseudonymize_ids(df: DataFrame, ids: &[&str], max_chars: u32) -> Result<(DataFrame, u64)> {
    let present: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|c| {
            df.column(c)
                .map(|c| matches!(c.dtype(), DataType::String))
                .unwrap_or(false)
        })
        .collect();
    if present.is_empty() || df.height() == 0 {
        return Ok((df, 0));
    }
    let max_chars = max_chars as usize;
    let mut df = df;
    let mut total = 0u64;
    let mut hashes: std::collections::HashMap<String, String> = Default::default();
    for c in present {
        let ca = df.column(c)?.str()?.clone();
        if !may_hold_personal_ids(&ca) {
            continue;
        }
        // The rows holding a personal id, and its pseudonym.
        let mut found: Vec<(usize, String)> = Vec::new();
        for (i, v) in ca.iter().enumerate() {
            let Some(v) = v.filter(|v| may_be_personal_id(v)) else {
                continue;
            };
            let t = v.trim();
            if t.chars().count() <= max_chars && is_personal_id(t) {
                let hash = hashes.entry(t.to_string()).or_insert_with(|| pseudonym(t));
                found.push((i, hash.clone()));
            }
        }
        if found.is_empty() {
            continue;
        }
        total += found.len() as u64;
        df.replace(c, with_values_at(&ca, &found).into_column())?;
    }
    Ok((df, total))
}

/// `ca` with the value of row `i` replaced by `v` for each `(i, v)` of `changed` (rows
/// ascending).
fn with_values_at(ca: &StringChunked, changed: &[(usize, String)]) -> StringChunked {
    let mut next = changed.iter().peekable();
    let out: StringChunked = ca
        .iter()
        .enumerate()
        .map(|(i, v)| match next.peek() {
            Some((row, new)) if *row == i => {
                next.next();
                Some(new.as_str())
            }
            _ => v,
        })
        .collect();
    out.with_name(ca.name().clone())
}

/// Redact (see [`redact_text`]) the string columns `text` of `df` with every rule and the
/// columns `opaque` with the email rule only; return the frame and the number of values changed.
pub fn redact_columns(
    df: DataFrame,
    text: &[String],
    opaque: &[String],
) -> Result<(DataFrame, u64)> {
    let is_str = |c: &String| {
        df.column(c)
            .map(|c| matches!(c.dtype(), DataType::String))
            .unwrap_or(false)
    };
    let targets: Vec<(String, bool)> = text
        .iter()
        .filter(|c| is_str(c))
        .map(|c| (c.clone(), true))
        .chain(
            opaque
                .iter()
                .filter(|c| is_str(c))
                .map(|c| (c.clone(), false)),
        )
        .collect();
    if targets.is_empty() || df.height() == 0 {
        return Ok((df, 0));
    }
    // Value by value, each rule only where its literal is present (the regex scan is the costly
    // part), and a column is replaced only when a value in it changed. Columns side by side.
    let redacted = crate::parallel::map(&targets, 4, |_, (c, all)| {
        let ca = df.column(c)?.str()?;
        let mut changed: Vec<(usize, String)> = Vec::new();
        for (i, v) in ca.iter().enumerate() {
            if let Some(new) = v.and_then(|v| redact_value(v, *all)) {
                changed.push((i, new));
            }
        }
        if changed.is_empty() {
            return Ok(None);
        }
        Ok(Some((changed.len() as u64, with_values_at(ca, &changed))))
    })?;
    let mut total = 0u64;
    let mut df = df;
    for ((c, _), out) in targets.iter().zip(redacted) {
        if let Some((n, out)) = out {
            total += n;
            df.replace(c, out.into_column())?;
        }
    }
    Ok((df, total))
}

/// [`redact_text`] (`all_rules`) or [`redact_emails`] of one value, skipping each rule whose
/// literals the value does not hold; `None` when nothing changed.
fn redact_value(v: &str, all_rules: bool) -> Option<String> {
    let mut out = std::borrow::Cow::Borrowed(v);
    // The literals of the value as it is now: scanned again only after a rule changed it.
    let mut held = held_literals(v);
    if held == 0 {
        return None;
    }
    for (i, (re, (pattern, with, every))) in TEXT_REGEXES.iter().zip(TEXT_RULES).enumerate() {
        if !(all_rules || pattern == EMAIL_RE) || held & RULE_NEEDS[i] == 0 {
            continue;
        }
        let next = if every {
            re.replace_all(&out, with)
        } else {
            re.replace(&out, with)
        };
        if let std::borrow::Cow::Owned(next) = next {
            held = held_literals(&next);
            out = std::borrow::Cow::Owned(next);
        }
    }
    match out {
        std::borrow::Cow::Owned(s) if s != v => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass scan finds a rule's literals exactly when a substring search for each
        /// of them does.
        #[test]
        fn held_literals_is_a_substring_search_per_literal(
            v in "(a|=|@|\\+|%|%4|%40|%2|%2B|%2b|%4b|é){0,6}"
        ) {
            for (needs, bits) in TEXT_RULE_NEEDS.iter().zip(RULE_NEEDS) {
                let searched = needs.iter().any(|n| v.contains(n));
                prop_assert_eq!(held_literals(&v) & bits != 0, searched, "{:?} {:?}", v, needs);
            }
        }

        /// Every personal id passes the byte scan, and `pseudonymize_ids` replaces exactly the
        /// values a per-value check picks: trimmed, matched, at most `max` characters.
        #[test]
        fn pseudonymize_ids_replaces_exactly_the_personal_ids(
            values in proptest::collection::vec(
                proptest::option::weighted(
                    0.9,
                    "[ a.+%@40bé9]{0,4}(ann@ex\\.com|ann%40ex\\.com|\\+4915112345678|x)?[ 1]{0,2}",
                ),
                0..30,
            ),
            max in 5u32..30,
        ) {
            for v in values.iter().flatten() {
                prop_assert!(!is_personal_id(v) || may_be_personal_id(v), "{v:?}");
            }
            let df = df! {
                "user_id" => values.clone(),
                "n" => (0..values.len() as i64).collect::<Vec<_>>(),
            }
            .unwrap();
            let (out, n) = pseudonymize_ids(df, &["user_id", "missing"], max).unwrap();
            let expected: Vec<Option<String>> = values
                .iter()
                .map(|v| {
                    v.as_ref().map(|v| {
                        let t = v.trim();
                        if is_personal_id(t) && t.chars().count() <= max as usize {
                            pseudonym(t)
                        } else {
                            v.clone()
                        }
                    })
                })
                .collect();
            let changed = expected
                .iter()
                .zip(&values)
                .filter(|(e, v)| e != v)
                .count() as u64;
            let got: Vec<Option<String>> = out
                .column("user_id")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(n, changed);
        }
    }

    #[test]
    fn emails_phones_parameters_and_credentials_are_redacted() {
        let cases = [
            (
                "https://x.com/?email=a@b.com&utm_source=g",
                "https://x.com/?email=[redacted]&utm_source=g",
            ),
            ("https://x.com/?e=a%40b.com", "https://x.com/?e=[redacted]"),
            (
                "https://x.com/p?user_email=anything&x=1",
                "https://x.com/p?user_email=[redacted]&x=1",
            ),
            (
                "https://x.com/?Phone=4155550123#top",
                "https://x.com/?Phone=[redacted]#top",
            ),
            (
                "https://x.com/#tel=4155550123",
                "https://x.com/#tel=[redacted]",
            ),
            ("https://x.com/?ph=&q=1", "https://x.com/?ph=&q=1"),
            (
                "https://x.com/unsubscribe/jo.doe+news@mail.example.co.uk/ok",
                "https://x.com/unsubscribe/[redacted]/ok",
            ),
            (
                "https://bob:secret@www.example.com/a",
                "https://[redacted]@www.example.com/a",
            ),
            (
                "https://bob@example.com@www.example.com/",
                "https://[redacted]@www.example.com/",
            ),
            ("call +1 (415) 555-0123 now", "call [redacted] now"),
            ("spring_sale jörg@exämple.de", "spring_sale [redacted]"),
            ("pkg@1.2.3", "pkg@1.2.3"),
            (
                "https://www.example.com/?utm_source=google&mobile_app=1",
                "https://www.example.com/?utm_source=google&mobile_app=1",
            ),
            (
                "https://x.com/?q=shoes&telemetry=on",
                "https://x.com/?q=shoes&telemetry=on",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_text(raw), want, "{raw}");
            assert_eq!(redact_text(want), want, "{want} again");
        }
        assert_eq!(
            redact_emails("Bot/1.0 (+mailto:ops@example.com) +14155550123"),
            "Bot/1.0 (+mailto:[redacted]) +14155550123"
        );
    }

    #[test]
    fn the_column_rules_are_the_value_rules() {
        let values = [
            "https://bob:pw@x.com/?email=a@b.com&tel=+1%20415#e=x",
            "utm+4915112345678",
            "plain",
            "a@b.co",
        ];
        let df = df!("v" => values, "o" => values).unwrap();
        let (out, n) = redact_columns(df, &["v".into()], &["o".into()]).unwrap();
        let v: Vec<_> = out
            .column("v")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .map(str::to_string)
            .collect();
        let o: Vec<_> = out
            .column("o")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .map(str::to_string)
            .collect();
        assert_eq!(v, values.map(redact_text));
        assert_eq!(o, values.map(redact_emails));
        assert_eq!(n, 3 + 2);
    }

    /// The column scan that lets a column pass without a value-by-value check finds a
    /// personal id's literal wherever polars keeps the value: in the view (12 bytes or less),
    /// in a data buffer, in any chunk.
    #[test]
    fn the_column_scan_finds_literals_in_views_buffers_and_later_chunks() {
        let ids = |v: &[&str]| StringChunked::from_slice("id".into(), v);
        let long_ids = ids(&["a_0000100f2a9b88d2", "a_0000225f7a84e7b4", "c1"]);
        assert!(!may_hold_personal_ids(&long_ids));
        // Inline (6 bytes) and in a buffer (17 bytes), each alone in its column.
        assert!(may_hold_personal_ids(&ids(&["c1", "a@b.co"])));
        assert!(may_hold_personal_ids(&ids(&["c1", "+14155550123"])));
        assert!(may_hold_personal_ids(&ids(&[
            "a_0000100f2a9b88d2",
            "ava@example.com"
        ])));
        assert!(may_hold_personal_ids(&ids(&[
            "a_0000100f2a9b88d2",
            "ava%40example.com"
        ])));
        // In the second chunk only.
        let mut two = long_ids.clone();
        two.append(&ids(&["x", "bo@ex.io"])).unwrap();
        assert_eq!(two.chunks().len(), 2);
        assert!(may_hold_personal_ids(&two));
        // Through the whole function: short and long personal ids in columns of several chunks.
        let mut user = ids(&["u_1", "a_0000100f2a9b88d2"]);
        user.append(&ids(&["a@b.co", "ava@example.com"])).unwrap();
        let df = DataFrame::new(4, vec![user.into_series().into_column()]).unwrap();
        let (out, n) = pseudonymize_ids(df, &["id"], 1024).unwrap();
        assert_eq!(n, 2);
        let out = out.column("id").unwrap().str().unwrap().clone();
        assert_eq!(out.get(0), Some("u_1"));
        assert_eq!(out.get(2), Some(pseudonym("a@b.co").as_str()));
        assert_eq!(out.get(3), Some(pseudonym("ava@example.com").as_str()));
    }

    #[test]
    fn personal_ids_become_stable_pseudonyms() {
        assert!(is_personal_id(" ava@example.com "));
        assert!(is_personal_id("+44 7700 900461"));
        assert!(!is_personal_id("u_ava"));
        assert!(!is_personal_id("12345678901"));
        assert!(!is_personal_id("auth0|abc@clients"));
        let p = pseudonym(" ava@example.com");
        assert_eq!(p, pseudonym("ava@example.com"));
        assert_eq!(
            pseudonym_hash(&p),
            Some(crate::export::normalize::sha256_hex("ava@example.com").as_str())
        );
        assert_eq!(pseudonym_hash("u_ava"), None);

        let df = df!(
            "user_id" => [Some("ava@example.com"), Some("u_bo"), None, Some(" ava@example.com"), Some("+14155550123")],
            "anon_id" => [Some("c1"), Some("ava@example.com"), Some("c3"), None, Some("c5")]
        )
        .unwrap();
        let (out, n) = pseudonymize_ids(df, &["user_id", "anon_id", "absent"], 1024).unwrap();
        assert_eq!(n, 4);
        let u = out.column("user_id").unwrap().str().unwrap();
        let a = out.column("anon_id").unwrap().str().unwrap();
        let ava = pseudonym("ava@example.com");
        assert_eq!(u.get(0), Some(ava.as_str()));
        assert_eq!(u.get(1), Some("u_bo"));
        assert_eq!(u.get(2), None);
        assert_eq!(u.get(3), Some(ava.as_str()));
        assert_eq!(u.get(4), Some(pseudonym("+14155550123").as_str()));
        assert_eq!(a.get(1), Some(ava.as_str()));
        assert_eq!(a.get(0), Some("c1"));
        // A value too long to be an id is left alone (the read stage quarantines it).
        let long = format!("{}@example.com", "a".repeat(2000));
        let df = df!("user_id" => [long.as_str()]).unwrap();
        let (out, n) = pseudonymize_ids(df, &["user_id"], 1024).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            out.column("user_id").unwrap().str().unwrap().get(0),
            Some(long.as_str())
        );
    }

    #[test]
    fn pii_columns_by_name() {
        for n in [
            "email",
            "E-Mail",
            "e_mail",
            "user_email",
            "emailAddress",
            "phone",
            "phone_number",
            "customerPhone",
            "mobile",
            "tel",
            "e",
            "em",
            "msisdn",
            "bob@example.com",
        ] {
            assert!(is_pii_column(n), "{n}");
        }
        for n in [
            "partner_ref",
            "hotel",
            "mobile_app",
            "campaign_id",
            "mc_eid",
            "telemetry",
        ] {
            assert!(!is_pii_column(n), "{n}");
        }
        assert_eq!(listed_name("user_email"), "user_email");
        assert_eq!(listed_name("bob@example.com"), REDACTED);
    }
}
