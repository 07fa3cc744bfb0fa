//! Phone numbers to E.164, the way libphonenumber reads them.
//!
//! The numbering plans (calling codes, trunk prefixes, patterns and lengths of valid numbers)
//! come from the `phonenumber` crate, which carries Google's libphonenumber metadata. The steps
//! that read a number follow libphonenumber's reference implementation (Java, and its Python
//! port `phonenumbers`), because the crate's own parser differs from it on inputs that real
//! users type, as the cross-check (`ci/crosscheck_normalizers.py`) showed:
//! - it may take a trunk prefix off twice (`+43 00 345 778 90`) or when libphonenumber keeps it
//!   (`8 812 345-67-89`, RU), and takes a country code off a national number in more cases
//!   (`4915 1759 000 56`, DE);
//! - its validity check anchors the plan's patterns at the start only (`+55 4007837800` is
//!   "valid") and misses numbers whose region it cannot resolve (Italian fixed lines).
//!
//! Steps (`PhoneNumberUtil.parse` + `isValidNumber`):
//! 1. the calling code: after a `+` (or `00`), the first 1–3 digits that are a calling code;
//!    for a national number, the user's region's code, unless the number starts with that code
//!    and reads better without it (`maybeExtractCountryCode`);
//! 2. the trunk prefix and carrier code are taken off with the region's
//!    `nationalPrefixForParsing` and transform rule (`maybeStripNationalPrefixAndCarrierCode`),
//!    unless the number as written fits the plan and the rest would not, or the rest has a
//!    length no number of the plan has;
//! 3. valid: the national number fully matches the plan of a region of its calling code and
//!    one number type of it (fixed line, mobile, toll free, ...), lengths included.

use std::sync::{Arc, Mutex, OnceLock};

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use polars::prelude::PlHashMap;
use regex::{Regex, RegexBuilder};

/// Shortest and longest national significant number libphonenumber accepts.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// `raw` as E.164 (`+` and digits) when it is a valid phone number; `country` (ISO 3166-1
/// alpha-2, any case) is used for a number written without an international prefix.
///
/// Accepted characters: digits, whitespace, `-`, `.`, `(`, `)`, `/` and one leading `+`;
/// anything else (letters, `ext.`, `tel:`) makes the value invalid.
pub fn e164(raw: &str, country: Option<&str>) -> Option<String> {
    let t = raw.trim();
    let mut digits = String::with_capacity(t.len());
    let mut plus = false;
    for (i, c) in t.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => plus = true,
            '-' | '.' | '(' | ')' | '/' => {}
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    if digits.is_empty() {
        return None;
    }
    let international = if plus {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    let (code, national, meta) = match international {
        Some(rest) => {
            let (code, national) = split_calling_code(rest)?;
            (code, national.to_string(), main_region(code)?)
        }
        None => {
            let region = region(country?)?;
            let (code, national) = extract_own_code(region, &digits);
            let meta = if code == region.country_code() {
                region
            } else {
                main_region(code)?
            };
            (code, national, meta)
        }
    };
    let national = strip_national_prefix(meta, &national);
    if national.len() < MIN_NSN || national.len() > MAX_NSN {
        return None;
    }
    // E.164 allows at most 15 digits in all; libphonenumber's plans accept a few longer
    // national numbers (German fixed lines of 14 digits), which no ad platform can match.
    let out = format!("+{code}{national}");
    (out.len() - 1 <= MAX_E164_DIGITS && valid_national(code, &national)).then_some(out)
}

/// Load the numbering plans now (the `phonenumber` crate decodes them and compiles their
/// patterns on first use: about 600 million instructions, a tenth of a second, during which
/// every other thread reading a number waits). The pipeline does this beside the identity
/// graph, where a core has time, rather than at the start of the exports.
pub fn load_plans() {
    let _ = DATABASE.by_code(&1);
}

/// Most digits an E.164 number has (calling code included).
const MAX_E164_DIGITS: usize = 15;

/// The region of an ISO 3166-1 alpha-2 code (any case, spaces around).
fn region(code: &str) -> Option<&'static Metadata> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    DATABASE.by_id(code.as_str())
}

/// The main region of a calling code (US for 1, RU for 7, ...).
fn main_region(code: u16) -> Option<&'static Metadata> {
    let regions = DATABASE.by_code(&code)?;
    regions
        .iter()
        .find(|m| m.is_main_country_for_code())
        .or(regions.first())
        .copied()
}

/// The calling code at the start of `digits` (written after a `+`) and the rest
/// (`extractCountryCode`: calling codes never start with 0 and none is a prefix of another).
fn split_calling_code(digits: &str) -> Option<(u16, &str)> {
    if digits.starts_with('0') {
        return None;
    }
    (1..=3).filter(|&len| len <= digits.len()).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        DATABASE.by_code(&code).map(|_| (code, &digits[len..]))
    })
}

/// A national number of `region` that starts with the region's calling code: the code and the
/// national number (`maybeExtractCountryCode`). The code is taken off only when the whole number
/// does not fit the plan and the rest (without its trunk prefix) does, or when the whole number
/// is too long.
fn extract_own_code(region: &Metadata, digits: &str) -> (u16, String) {
    let code = region.country_code();
    let Some(rest) = digits.strip_prefix(code.to_string().as_str()) else {
        return (code, digits.to_string());
    };
    let general = region.descriptors().general();
    let rest_national = strip_national_prefix(region, rest);
    let too_long = matches!(test_length(region, digits), Length::TooLong);
    if too_long || (!fits(general, digits) && fits(general, &rest_national)) {
        (code, rest.to_string())
    } else {
        (code, digits.to_string())
    }
}

/// `national` without its trunk prefix and carrier code, as libphonenumber takes them off
/// (`maybeStripNationalPrefixAndCarrierCode`, then kept only when the rest has a length a number
/// of the plan has).
fn strip_national_prefix(meta: &Metadata, national: &str) -> String {
    let prefix = match meta.national_prefix_for_parsing() {
        Some(re) => plan_regex(re.as_str(), Anchor::Start),
        None => match meta.national_prefix() {
            Some(p) if !p.is_empty() => plan_regex(p, Anchor::LiteralStart),
            _ => return national.to_string(),
        },
    };
    let Some(prefix) = prefix else {
        return national.to_string();
    };
    let Some(caps) = prefix.captures(national) else {
        return national.to_string();
    };
    let whole = caps.get(0).map(|m| m.end()).unwrap_or(0);
    let general = meta.descriptors().general();
    let viable_before = fits(general, national);
    let last_group = caps.len().checked_sub(1).filter(|&n| n > 0);
    let rule = meta
        .national_prefix_transform_rule()
        .filter(|r| !r.is_empty());
    let candidate = match (rule, last_group.and_then(|n| caps.get(n))) {
        (Some(rule), Some(_)) => {
            let mut out = String::new();
            caps.expand(&java_replacement(rule), &mut out);
            out.push_str(&national[whole..]);
            out
        }
        _ => national[whole..].to_string(),
    };
    if viable_before && !fits(general, &candidate) {
        return national.to_string();
    }
    match test_length(meta, &candidate) {
        Length::TooShort | Length::LocalOnly | Length::Invalid => national.to_string(),
        Length::Possible | Length::TooLong => candidate,
    }
}

/// A Java replacement string (`9$1`) in the regex crate's syntax (`9${1}`).
fn java_replacement(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len() + 4);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('$', Some(d)) if d.is_ascii_digit() => {
                out.push_str("${");
                out.push(*d);
                out.push('}');
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

/// libphonenumber's `ValidationResult` for a number of unknown type.
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// The descriptors whose lengths make up the plan's (libphonenumber's build step unions them
/// into the general descriptor; the crate keeps them apart).
fn types(meta: &Metadata) -> [Option<&Descriptor>; 10] {
    let d = meta.descriptors();
    [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
}

/// `testNumberLength` against the plan's lengths (the union over its number types).
fn test_length(meta: &Metadata, national: &str) -> Length {
    let general = meta.descriptors().general();
    let mut possible: Vec<u16> = general.possible_length().to_vec();
    let mut local: Vec<u16> = general.possible_local_length().to_vec();
    for desc in types(meta).into_iter().flatten() {
        possible.extend_from_slice(desc.possible_length());
        local.extend_from_slice(desc.possible_local_length());
    }
    possible.sort_unstable();
    possible.dedup();
    local.retain(|l| !possible.contains(l));
    let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
    let (Some(&min), Some(&max)) = (possible.first(), possible.last()) else {
        return Length::Invalid;
    };
    if local.contains(&len) {
        Length::LocalOnly
    } else if len < min {
        Length::TooShort
    } else if len > max {
        Length::TooLong
    } else if possible.contains(&len) {
        Length::Possible
    } else {
        Length::Invalid
    }
}

/// `isValidNumber`: `national` fully matches the plan of a region of calling code `code` and
/// one of its number types, with a length that type has.
fn valid_national(code: u16, national: &str) -> bool {
    let Some(regions) = DATABASE.by_code(&code) else {
        return false;
    };
    let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
    let matches = |desc: &Descriptor| {
        (desc.possible_length().is_empty() || desc.possible_length().contains(&len))
            && fits(desc, national)
    };
    regions.into_iter().any(|meta| {
        matches(meta.descriptors().general()) && types(meta).into_iter().flatten().any(matches)
    })
}

/// Whether `national` matches the whole of `desc`'s pattern (`matchNationalNumber`; the
/// crate's `Descriptor::is_match` only anchors the start).
fn fits(desc: &Descriptor, national: &str) -> bool {
    plan_regex(desc.national_number().as_str(), Anchor::Whole)
        .is_some_and(|re| re.is_match(national))
}

/// How [`plan_regex`] anchors a pattern of the numbering plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Anchor {
    /// Matched at the start (`^(?:p)`).
    Start,
    /// The text taken literally, matched at the start (`^(?:escaped p)`).
    LiteralStart,
    /// Matched whole (`^(?:p)$`).
    Whole,
}

/// A pattern of the numbering plans, anchored, compiled ([`regex`]), found again by the
/// pattern's address in a cache of this thread.
///
/// Every number the exports check looks up a few patterns; building each anchored source
/// (`format!`) and hashing it for the shared cache behind its lock cost more than the matches
/// (about 1 % of a 10M-event run's CPU, on the export side's critical path). The patterns are
/// the metadata's own strings, which stay in place for the whole process; the key holds the
/// address and length, and a hit is checked against the pattern itself, so a string that
/// took another's place could never get the other's regex.
fn plan_regex(pattern: &str, anchor: Anchor) -> Option<Arc<Regex>> {
    /// (address, length, anchor) → (the pattern, its regex).
    type ByPlace = PlHashMap<(usize, usize, Anchor), (String, Option<Arc<Regex>>)>;
    thread_local! {
        static BY_PLACE: std::cell::RefCell<ByPlace> = Default::default();
    }
    let key = (pattern.as_ptr() as usize, pattern.len(), anchor);
    BY_PLACE.with(|cache| {
        if let Some((source, re)) = cache.borrow().get(&key) {
            if source == pattern {
                return re.clone();
            }
        }
        let re = regex(&match anchor {
            Anchor::Start => format!("^(?:{pattern})"),
            Anchor::LiteralStart => format!("^(?:{})", regex::escape(pattern)),
            Anchor::Whole => format!("^(?:{pattern})$"),
        });
        cache
            .borrow_mut()
            .insert(key, (pattern.to_string(), re.clone()));
        re
    })
}

/// A compiled metadata pattern (whitespace in the XML patterns is ignored), cached.
///
/// The cache hands out shared handles: a cloned `Regex` gets a fresh, empty match cache (the
/// lazy DFA is rebuilt on its first search), which cost more than the match itself.
fn regex(source: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<Mutex<PlHashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(re) = cache.get(source) {
        return re.clone();
    }
    let re = RegexBuilder::new(source)
        .ignore_whitespace(true)
        .build()
        .ok()
        .map(Arc::new);
    cache.insert(source.to_string(), re.clone());
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_replacements() {
        assert_eq!(java_replacement("9$1"), "9${1}");
        assert_eq!(java_replacement("$1$2"), "${1}${2}");
        assert_eq!(java_replacement("2$15"), "2${1}5");
        assert_eq!(java_replacement("$"), "$$");
    }

    #[test]
    fn calling_codes() {
        assert_eq!(split_calling_code("16505551212"), Some((1, "6505551212")));
        assert_eq!(split_calling_code("442079460018"), Some((44, "2079460018")));
        assert_eq!(split_calling_code("3581234567"), Some((358, "1234567")));
        assert_eq!(split_calling_code("0123"), None);
        assert_eq!(split_calling_code(""), None);
    }

    /// A national number the plan accepts but E.164 cannot hold (16 digits with the code) is
    /// not a phone for the platforms (found by the fuzz test: it failed the 15-digit check).
    #[test]
    fn more_than_fifteen_digits_is_not_e164() {
        assert_eq!(e164("20100000000000", Some("DE")), None);
        assert_eq!(e164("+49 20100000000000", None), None);
        assert_eq!(
            e164("030 12345678", Some("DE")).as_deref(),
            Some("+493012345678")
        );
    }

    #[test]
    fn readings_that_differ_from_the_crate() {
        // Trunk prefix kept when taking it off leaves no plan number (RU).
        assert_eq!(
            e164("8 (812) 345-67-89", Some("RU")).as_deref(),
            Some("+78123456789")
        );
        assert_eq!(
            e164("+7 812 345 67 89", None).as_deref(),
            Some("+78123456789")
        );
        // Only one trunk prefix is taken off.
        assert_eq!(e164("+43 00 345 778 90", Some("AT")), None);
        // Argentina: the transform rule turns the trunk 0 + area + 15 into the mobile 9.
        assert_eq!(
            e164("011 15 2345-6789", Some("AR")).as_deref(),
            Some("+5491123456789")
        );
        // Italian fixed lines keep their leading 0.
        assert_eq!(
            e164("02 1234 5678", Some("IT")).as_deref(),
            Some("+390212345678")
        );
        // Full-pattern validity.
        assert_eq!(e164("+55 4007837800", None), None);
    }

    #[test]
    fn plan_regex_anchors_and_never_hands_out_another_patterns_regex() {
        let whole = plan_regex("[1-9]\\d{3}", Anchor::Whole).unwrap();
        assert!(whole.is_match("1234") && !whole.is_match("12345") && !whole.is_match("01234"));
        let start = plan_regex("0(?:1)?", Anchor::Start).unwrap();
        assert_eq!(start.find("01234").map(|m| m.end()), Some(2));
        let literal = plan_regex("8(?:", Anchor::LiteralStart).unwrap();
        assert!(literal.is_match("8(?:12") && !literal.is_match("812"));
        // A pattern freed and another of its length put at its address (the allocator
        // usually hands the same block back): the second gets its own regex.
        let first = String::from("a+");
        assert!(plan_regex(&first, Anchor::Whole).unwrap().is_match("aaa"));
        let address = first.as_ptr() as usize;
        drop(first);
        let second = String::from("b+");
        let re = plan_regex(&second, Anchor::Whole).unwrap();
        assert!(re.is_match("bbb") && !re.is_match("aaa"));
        if second.as_ptr() as usize != address {
            eprintln!("the allocator did not reuse the address: the cache check was not exercised");
        }
    }
}
