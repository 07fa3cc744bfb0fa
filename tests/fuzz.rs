//! Fuzz properties of the code that parses untrusted text: id cleaning, URL hosts and
//! registrable domains, redaction and pseudonyms of personal data, and the export normalizers.
//!
//! Inputs are arbitrary Unicode, lossy-decoded random bytes, and strings glued from the pieces
//! these parsers care about (`://`, `@`, `%40`, `?email=`, junk ids, quotes, odd spaces, ...).
//! Every property also checks that nothing panics. 256 cases each by default; for a longer run:
//! `PROPTEST_CASES=20000 cargo test --test tests fuzz::` (the cargo-fuzz targets under `fuzz/`
//! run the same checks with libFuzzer, see the README).

use lakestitch::attribute::channel::url_host;
use lakestitch::export::normalize::{self, Platform};
use lakestitch::read::{clean_id, privacy};
use lakestitch::stitch::touches::{registrable_domain, HOST_RE};
use polars::prelude::*;
use proptest::prelude::*;
use regex::Regex;

/// Random bytes, decoded as UTF-8 with replacement characters (Parquet strings are UTF-8).
fn bytes_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Strings glued from `pieces` and arbitrary characters.
fn glued(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(pieces).prop_map(str::to_string),
            1 => any::<char>().prop_map(String::from),
            1 => "[0-9]{1,12}",
        ],
        0..16,
    )
    .prop_map(|v| v.concat())
}

/// Anything at all: arbitrary Unicode, random bytes, or glued `pieces`.
fn text(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), bytes_text(), glued(pieces)]
}

const ID_PIECES: &[&str] = &[
    "null",
    "NULL",
    "Undefined",
    "none",
    "NaN",
    "nil",
    "anonymous",
    "Guest",
    "0",
    "-1",
    "[object Object]",
    "\"",
    "'",
    "`",
    " ",
    "\t",
    "\n",
    "\u{a0}",
    "\u{3000}",
    "\u{feff}",
    "u_",
    "anon_",
    "@",
    "example.com",
    ".",
    "+",
    "44",
    "%40",
];

const URL_PIECES: &[&str] = &[
    "http",
    "https",
    "android-app",
    "://",
    "//",
    ":",
    "@",
    "/",
    "?",
    "#",
    "&",
    ";",
    "=",
    "www.",
    "app.",
    "example",
    ".com",
    ".co.uk",
    ".",
    "-",
    "email",
    "e",
    "tel",
    "Phone",
    "user[email]",
    "a.b+c@gmail.com",
    "jörg@exämple.de",
    "%40",
    "%2B",
    "+",
    "+1 (415) 555-0123",
    " ",
    "[",
    "]",
    "[redacted]",
    "İ",
    "xn--p1ai",
    "localhost",
    "8080",
    "\u{0}",
];

const EMAIL_PIECES: &[&str] = &[
    "a",
    "B",
    ".",
    "+",
    "tag",
    "@",
    "gmail.com",
    "GoogleMail.com",
    "example.com",
    " ",
    "\t",
    "\u{a0}",
    "É",
    "e\u{301}",
    "İ",
    "ß",
    "\u{212a}",
    "\u{0}",
    "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
];

const PHONE_PIECES: &[&str] = &[
    "+", "00", "1", "44", "33", "0", "650", "555", "1212", "7700", "900461", " ", "-", ".", "(",
    ")", "/", "ext.", "tel:", "x", "\u{0660}", "\u{ff11}",
];

const COUNTRIES: &[&str] = &[
    "US", "GB", "gb", "DE", "FR", "IN", "RU", "BR", "ZZ", "", "U", "USA",
];

fn opt_values(s: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<Option<String>>> {
    prop::collection::vec(prop::option::weighted(0.9, s), 1..48)
}

fn column(values: &[Option<String>]) -> DataFrame {
    df!("v" => values.to_vec()).unwrap()
}

fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// `clean_id`: cleaned twice is cleaned once; a kept id is the value trimmed; junk in any
    /// dress (case, quotes, spaces) is null.
    #[test]
    fn clean_id_is_idempotent_and_only_trims_or_nulls(values in opt_values(text(ID_PIECES))) {
        let once = column(&values).lazy().select([clean_id("v")]).collect().unwrap();
        let twice = once.clone().lazy().select([clean_id("v")]).collect().unwrap();
        prop_assert_eq!(strs(&once, "v"), strs(&twice, "v"));
        for (raw, out) in values.iter().zip(strs(&once, "v")) {
            match (raw, out) {
                (None, out) => prop_assert_eq!(out, None),
                (Some(raw), Some(out)) => prop_assert_eq!(out.as_str(), raw.trim()),
                (Some(raw), None) => {
                    let bare = raw.trim().trim_matches(['"', '\'', '`']).trim().to_lowercase();
                    prop_assert!(
                        bare.is_empty() || lakestitch::read::JUNK_IDS.contains(&bare.as_str()),
                        "{:?} was cleaned away", raw
                    );
                }
            }
        }
    }

    #[test]
    fn junk_ids_in_any_dress_are_null(
        junk in prop::sample::select(&lakestitch::read::JUNK_IDS[..]),
        upper in prop::collection::vec(any::<bool>(), 16),
        quote in prop::sample::select(&["", "\"", "'", "`"][..]),
        pad in prop::sample::select(&["", " ", "\t", "\n ", "\u{a0}"][..]),
    ) {
        let cased: String = junk
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
            .collect();
        let v = format!("{pad}{quote}{cased}{quote}{pad}");
        let out = column(&[Some(v.clone())]).lazy().select([clean_id("v")]).collect().unwrap();
        prop_assert_eq!(strs(&out, "v"), vec![None], "{:?}", v);
    }

    /// `url_host` (used by the channel rules) extracts exactly what the touches' column regex
    /// extracts, on any input.
    #[test]
    fn url_host_agrees_with_the_column_regex(values in opt_values(text(URL_PIECES))) {
        let out = column(&values)
            .lazy()
            .select([col("v").str().extract(lit(HOST_RE), 1)])
            .collect()
            .unwrap();
        for (raw, by_column) in values.iter().zip(strs(&out, "v")) {
            let by_fn = raw.as_deref().and_then(url_host).map(str::to_string);
            prop_assert_eq!(by_fn, by_column, "{:?}", raw);
        }
    }

    /// `registrable_domain` never panics, is lowercase, is a suffix of the host and is its own
    /// registrable domain.
    #[test]
    fn registrable_domain_is_a_stable_suffix(raw in text(URL_PIECES)) {
        let host = url_host(&raw).unwrap_or(&raw);
        let d = registrable_domain(host);
        let lowered = host.trim_end_matches('.').to_ascii_lowercase();
        prop_assert!(lowered.ends_with(&d), "{:?} -> {:?}", host, d);
        prop_assert_eq!(d.to_ascii_lowercase(), d.clone());
        prop_assert_eq!(registrable_domain(&d), d);
    }

    /// Redaction: idempotent, leaves no email address or `+` phone number behind, and the
    /// column form (polars) equals the value form.
    #[test]
    fn redaction_is_idempotent_complete_and_columnar(values in opt_values(text(URL_PIECES))) {
        let email = Regex::new(privacy::EMAIL_RE).unwrap();
        let phone = Regex::new(privacy::PHONE_RE).unwrap();
        for v in values.iter().flatten() {
            let once = privacy::redact_text(v);
            prop_assert_eq!(privacy::redact_text(&once), once.clone(), "{:?}", v);
            prop_assert!(!email.is_match(&once), "{:?} -> {:?}", v, once);
            prop_assert!(!phone.is_match(&once), "{:?} -> {:?}", v, once);
            let opaque = privacy::redact_emails(v);
            prop_assert_eq!(privacy::redact_emails(&opaque), opaque.clone());
            prop_assert!(!email.is_match(&opaque), "{:?} -> {:?}", v, opaque);
        }
        let df = df!("t" => values.clone(), "o" => values.clone()).unwrap();
        let (out, _) = privacy::redact_columns(df, &["t".into()], &["o".into()]).unwrap();
        let want_t: Vec<_> = values.iter().map(|v| v.as_deref().map(privacy::redact_text)).collect();
        let want_o: Vec<_> = values.iter().map(|v| v.as_deref().map(privacy::redact_emails)).collect();
        prop_assert_eq!(strs(&out, "t"), want_t);
        prop_assert_eq!(strs(&out, "o"), want_o);
    }

    /// Pseudonyms: `sha256:` + 64 lowercase hex, never themselves personal, so pseudonymizing
    /// twice is pseudonymizing once; equal trimmed ids get equal pseudonyms.
    #[test]
    fn pseudonymizing_ids_is_idempotent(values in opt_values(text(ID_PIECES))) {
        let (once, n) = privacy::pseudonymize_ids(column(&values), &["v"], 1024).unwrap();
        let (twice, m) = privacy::pseudonymize_ids(once.clone(), &["v"], 1024).unwrap();
        prop_assert_eq!(m, 0);
        prop_assert_eq!(strs(&once, "v"), strs(&twice, "v"));
        let mut changed = 0;
        for (raw, out) in values.iter().zip(strs(&once, "v")) {
            if raw != &out {
                changed += 1;
                let (raw, out) = (raw.as_deref().unwrap(), out.unwrap());
                prop_assert!(privacy::is_personal_id(raw));
                prop_assert_eq!(out.clone(), privacy::pseudonym(raw));
                prop_assert!(is_hex64(privacy::pseudonym_hash(&out).unwrap()));
                prop_assert!(!privacy::is_personal_id(&out));
            }
        }
        prop_assert_eq!(changed, n);
    }

    /// Email normalizers, both platforms: no panic; a normalized email normalizes to itself and
    /// holds no whitespace; hashes are 64 lowercase hex.
    #[test]
    fn email_normalizers_are_idempotent(raw in text(EMAIL_PIECES)) {
        for p in [Platform::Meta, Platform::Google] {
            let n = normalize::email(p, &raw);
            if let Some(n) = &n {
                prop_assert_eq!(normalize::email(p, n), Some(n.clone()), "{:?} {:?}", p, raw);
                prop_assert!(!n.chars().any(char::is_whitespace));
            }
            let h = normalize::hashed_email(p, &raw);
            prop_assert_eq!(h.is_some(), n.is_some());
            if let Some(h) = h {
                prop_assert!(is_hex64(&h), "{:?}", h);
            }
        }
    }

    /// Phone normalizers, both platforms: no panic; Meta gives digits, Google `+` and digits,
    /// both E.164 (at most 15 digits); the result normalizes to itself; hashes are 64 hex.
    #[test]
    fn phone_normalizers_are_idempotent(
        raw in text(PHONE_PIECES),
        country in prop::option::of(prop::sample::select(COUNTRIES)),
    ) {
        let meta = normalize::phone(Platform::Meta, &raw, country);
        let google = normalize::phone(Platform::Google, &raw, country);
        prop_assert_eq!(meta.is_some(), google.is_some());
        if let (Some(m), Some(g)) = (&meta, &google) {
            if !normalize::is_sha256_hex(&raw) {
                prop_assert!(
                    !m.is_empty() && m.len() <= 15 && m.bytes().all(|b| b.is_ascii_digit()),
                    "{:?}", m
                );
                prop_assert_eq!(g.strip_prefix('+'), Some(m.as_str()));
                prop_assert_eq!(normalize::phone(Platform::Google, g, None), Some(g.clone()));
                prop_assert_eq!(normalize::phone(Platform::Meta, g, None), Some(m.clone()));
            }
        }
        for p in [Platform::Meta, Platform::Google] {
            if let Some(h) = normalize::hashed_phone(p, &raw, country) {
                prop_assert!(is_hex64(&h), "{:?}", h);
            }
        }
    }
}
