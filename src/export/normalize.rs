//! Per-platform normalization and hashing of emails and phone numbers.
//!
//! Meta and Google publish different rules, so the same person hashes differently on each
//! platform: there is one normalizer per platform, chosen by [`Platform`].
//!
//! | step | Meta | Google |
//! |---|---|---|
//! | email whitespace | trimmed; whitespace inside → rejected | every whitespace removed |
//! | email case | lowercase | lowercase |
//! | gmail.com / googlemail.com | kept as is | local part: every `.` removed, `+suffix` dropped |
//! | phone | E.164 digits without `+` (`16505551212`) | E.164 with `+` (`+16505551212`) |
//!
//! Both: text is lowercased and then put in Unicode NFC (so an accented letter typed as one
//! code point or as letter + combining mark hashes the same); an email needs exactly one `@` with
//! a non-empty local part and domain. SHA-256 is written as 64 lowercase hex digits. A value that
//! already is a 64-hex SHA-256 (any case, spaces around it) is passed through, lowercased and
//! trimmed, and never hashed again.
//!
//! Phone numbers are read as libphonenumber reads them, with its metadata from the
//! `phonenumber` crate (see `phone.rs` for why the crate's own parser is not used as is):
//! - accepted characters: digits, spaces, `-`, `.`, `(`, `)`, `/` and one leading `+`; anything
//!   else (letters, `ext.`, `tel:` URIs) is rejected rather than guessed;
//! - a leading `+` or `00` is an international prefix: the calling code follows;
//! - otherwise the number is national and needs the user's ISO 3166-1 alpha-2 `country`; the
//!   national trunk prefix (`0` in GB, DE, FR, IN, ...; `1` in the US; `8` in RU when the plan
//!   says so) is taken off. Without a (known) country a national number is rejected: no country
//!   is guessed;
//! - the number must be *valid* for libphonenumber (`isValidNumber`: it fully matches the plan
//!   of its region and one number type, length included), not just parseable or "possible", so a
//!   too-short number, an unassigned range or a wrong length is left out rather than sent as a
//!   wrong match key. Such a value is rejected (`None`), and the caller counts it (`bad_phone`);
//!   it is never sent raw.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// The ad platform whose normalization rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Meta Conversions API (`em`, `ph`).
    Meta,
    /// Google Ads / Data Manager API (`emailAddress`, `phoneNumber`).
    Google,
}

impl Platform {
    /// The platform's name as used on the command line and in the cross-check tool.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Meta => "meta",
            Platform::Google => "google",
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "meta" | "facebook" => Ok(Platform::Meta),
            "google" => Ok(Platform::Google),
            other => Err(format!(
                "unknown platform `{other}` (expected meta or google)"
            )),
        }
    }
}

/// SHA-256 of the UTF-8 bytes of `s`, as 64 lowercase hex digits.
pub fn sha256_hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `s`, once trimmed, is 64 hex digits (any case): a value that is already a SHA-256.
pub fn is_sha256_hex(s: &str) -> bool {
    let t = s.trim();
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pass-through form of an already-hashed value: trimmed and lowercased.
fn passthrough(s: &str) -> Option<String> {
    is_sha256_hex(s).then(|| s.trim().to_ascii_lowercase())
}

/// Lowercase, then Unicode NFC (lowercasing can decompose, so NFC comes last).
///
/// ASCII text (nearly every email) is lowercased byte by byte: its Unicode lowercase is its
/// ASCII lowercase, and ASCII text is already in NFC. The NFC pass cost more than the SHA-256
/// of the result (about 7,000 instructions an email, measured with callgrind).
fn lower_nfc(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.to_lowercase().nfc().collect()
}

/// The platform-normalized email, or `None` when `raw` is not an email address.
///
/// A 64-hex value is returned as is (lowercased, trimmed): it is already hashed.
pub fn email(p: Platform, raw: &str) -> Option<String> {
    if let Some(h) = passthrough(raw) {
        return Some(h);
    }
    let text = match p {
        Platform::Meta => {
            let t = raw.trim();
            if t.chars().any(char::is_whitespace) {
                return None;
            }
            lower_nfc(t)
        }
        Platform::Google => {
            let t: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            lower_nfc(&t)
        }
    };
    let (local, domain) = text.split_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return None;
    }
    if p == Platform::Google && (domain == "gmail.com" || domain == "googlemail.com") {
        let before_plus = local.split('+').next().unwrap_or("");
        let local: String = before_plus.chars().filter(|&c| c != '.').collect();
        if local.is_empty() {
            return None;
        }
        return Some(format!("{local}@{domain}"));
    }
    Some(text)
}

/// The platform-normalized phone number (Meta: E.164 digits without `+`; Google: E.164), or
/// `None` when `raw` is not a valid phone number. `country` is the user's ISO 3166-1 alpha-2
/// code, used for numbers written without a country code.
///
/// A 64-hex value is returned as is (lowercased, trimmed): it is already hashed.
pub fn phone(p: Platform, raw: &str, country: Option<&str>) -> Option<String> {
    if let Some(h) = passthrough(raw) {
        return Some(h);
    }
    e164(raw, country).map(|e| platform_phone(p, &e))
}

/// The platform's form of an E.164 number: Meta's digits without `+`, Google's as is.
fn platform_phone(p: Platform, e164: &str) -> String {
    match p {
        Platform::Meta => e164.trim_start_matches('+').to_string(),
        Platform::Google => e164.to_string(),
    }
}

/// `raw` as E.164 (`+` and digits) when it is a valid phone number (see the module docs).
pub fn e164(raw: &str, country: Option<&str>) -> Option<String> {
    super::phone::e164(raw, country)
}

/// SHA-256 hex of the platform-normalized email; an already-hashed value is passed through.
pub fn hashed_email(p: Platform, raw: &str) -> Option<String> {
    if let Some(h) = passthrough(raw) {
        return Some(h);
    }
    email(p, raw).map(|e| sha256_hex(&e))
}

/// SHA-256 hex of the platform-normalized phone; an already-hashed value is passed through.
pub fn hashed_phone(p: Platform, raw: &str, country: Option<&str>) -> Option<String> {
    hashed_phone_read(p, &Phone::new(raw, country))
}

/// [`hashed_phone`] of a [`Phone`], read as E.164 on its first use ([`Phone::e164`]).
pub fn hashed_phone_read(p: Platform, phone: &Phone) -> Option<String> {
    if let Some(h) = passthrough(phone.raw()) {
        return Some(h);
    }
    phone.e164().map(|e| sha256_hex(&platform_phone(p, e)))
}

/// A raw phone number with the user's country, read as E.164 when first asked and then kept:
/// clones share the reading, so a number is read at most once however many platforms and
/// conversions use it, and never when none does (reading one takes a few regex matches
/// against its numbering plan, and was most of the exports' work when each platform read each
/// conversion's own).
#[derive(Debug, Clone, Default)]
pub struct Phone(std::sync::Arc<PhoneNumber>);

#[derive(Debug, Default)]
struct PhoneNumber {
    raw: String,
    country: Option<String>,
    e164: std::sync::OnceLock<Option<String>>,
}

impl Phone {
    /// `raw` as given, with the user's ISO 3166-1 alpha-2 `country` (for national formats).
    pub fn new(raw: &str, country: Option<&str>) -> Phone {
        Phone(std::sync::Arc::new(PhoneNumber {
            raw: raw.to_string(),
            country: country.map(str::to_string),
            e164: std::sync::OnceLock::new(),
        }))
    }

    /// The number as given.
    pub fn raw(&self) -> &str {
        &self.0.raw
    }

    /// [`e164`] of the number with its country, read on the first call (by whichever thread
    /// asks first; the others wait for it); `None` when it is not a valid number, or when it
    /// already is a SHA-256 (passed through, never read).
    pub fn e164(&self) -> Option<&str> {
        let n = &self.0;
        n.e164
            .get_or_init(|| {
                if is_sha256_hex(&n.raw) {
                    None
                } else {
                    e164(&n.raw, n.country.as_deref())
                }
            })
            .as_deref()
    }

    /// Whether [`Phone::e164`] has read the number yet (for the tests).
    #[cfg(test)]
    pub(crate) fn is_read(&self) -> bool {
        self.0.e164.get().is_some()
    }

    /// Whether `self` and `other` share one reading (clones of one [`Phone::new`]; for the
    /// tests).
    #[cfg(test)]
    pub(crate) fn same_reading(&self, other: &Phone) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Equal when the number and the country are (whether or not either has been read).
impl PartialEq for Phone {
    fn eq(&self, other: &Phone) -> bool {
        self.0.raw == other.0.raw && self.0.country == other.0.country
    }
}

#[cfg(test)]
mod tests {
    use super::Platform::{Google, Meta};
    use super::*;

    // The published vectors of ../shared/platforms.md.
    #[test]
    fn meta_email_vector() {
        assert_eq!(
            email(Meta, "John_Smith@gmail.com").as_deref(),
            Some("john_smith@gmail.com")
        );
        assert_eq!(
            hashed_email(Meta, "John_Smith@gmail.com").as_deref(),
            Some("62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f")
        );
    }

    #[test]
    fn meta_phone_vector() {
        assert_eq!(
            phone(Meta, "(650)555-1212", Some("US")).as_deref(),
            Some("16505551212")
        );
        assert_eq!(
            hashed_phone(Meta, "(650)555-1212", Some("US")).as_deref(),
            Some("e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176")
        );
    }

    #[test]
    fn meta_first_name_vector_hashes_nfc() {
        // `Valéry` typed with a precomposed é and with e + combining acute accent.
        let nfc = "Val\u{e9}ry";
        let nfd = "Vale\u{301}ry";
        assert_ne!(nfc, nfd);
        let want = "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c";
        assert_eq!(sha256_hex(&lower_nfc(nfc)), want);
        assert_eq!(sha256_hex(&lower_nfc(nfd)), want);
        assert_eq!(lower_nfc(nfd), "val\u{e9}ry");
        // Hashing the NFD text as is would not match the published vector.
        assert_ne!(sha256_hex("vale\u{301}ry"), want);
    }

    #[test]
    fn google_email_vectors() {
        let cases = [
            (
                "  ALEXZ@example.com   ",
                "alexz@example.com",
                "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a",
            ),
            (
                "Jefferson.Loves.hiking@gmail.com",
                "jeffersonloveshiking@gmail.com",
                "515d2f967f73864e76937ab2b897210a86fd286016903b1b08c3da07c75f513e",
            ),
            (
                "cloudy.sanfrancisco+shopping@gmail.com",
                "cloudysanfrancisco@gmail.com",
                "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4",
            ),
            (
                "user.name+NYC@Example.com",
                "user.name+nyc@example.com",
                "f109a2a632fbcea5fc82049f50beed3d8621bf9034399f437fb622222acccdac",
            ),
        ];
        for (raw, normalized, hash) in cases {
            assert_eq!(email(Google, raw).as_deref(), Some(normalized), "{raw}");
            assert_eq!(hashed_email(Google, raw).as_deref(), Some(hash), "{raw}");
        }
    }

    #[test]
    fn google_phone_vectors() {
        // The published vector `1 800 555 0100` names no country: it is a US number written
        // with the US trunk prefix 1, read here with the user's country US.
        let cases = [
            (
                "1 800 555 0100",
                Some("US"),
                "+18005550100",
                "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
            ),
            (
                "+44-113-496-0987",
                None,
                "+441134960987",
                "0fac52d27ec377f8ad2f9de75d1f9bace693237e31868ae6f4616b8bbd0e94fb",
            ),
            (
                "(650)555-1212",
                Some("US"),
                "+16505551212",
                "1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8",
            ),
        ];
        for (raw, country, normalized, hash) in cases {
            assert_eq!(
                phone(Google, raw, country).as_deref(),
                Some(normalized),
                "{raw}"
            );
            assert_eq!(
                hashed_phone(Google, raw, country).as_deref(),
                Some(hash),
                "{raw}"
            );
        }
    }

    #[test]
    fn email_table() {
        // (input, meta, google)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                "Ann@Example.COM",
                Some("ann@example.com"),
                Some("ann@example.com"),
            ),
            (
                "\tann@example.com \n",
                Some("ann@example.com"),
                Some("ann@example.com"),
            ),
            // Spaces inside: Google removes every whitespace, Meta refuses a spaced address.
            ("ann @example.com", None, Some("ann@example.com")),
            (" a n n@exa mple.com ", None, Some("ann@example.com")),
            // gmail / googlemail: Google drops dots and +suffix, Meta keeps them.
            (
                "J.Doe+promo@Gmail.com",
                Some("j.doe+promo@gmail.com"),
                Some("jdoe@gmail.com"),
            ),
            (
                "j.d.o.e@googlemail.com",
                Some("j.d.o.e@googlemail.com"),
                Some("jdoe@googlemail.com"),
            ),
            (
                "jane.doe+x+y@GOOGLEMAIL.COM",
                Some("jane.doe+x+y@googlemail.com"),
                Some("janedoe@googlemail.com"),
            ),
            // Other domains keep dots and plus on both platforms, even look-alikes.
            (
                "j.doe+promo@example.com",
                Some("j.doe+promo@example.com"),
                Some("j.doe+promo@example.com"),
            ),
            (
                "j.doe+x@gmail.co.uk",
                Some("j.doe+x@gmail.co.uk"),
                Some("j.doe+x@gmail.co.uk"),
            ),
            (
                "j.doe@mail.gmail.com",
                Some("j.doe@mail.gmail.com"),
                Some("j.doe@mail.gmail.com"),
            ),
            // A gmail local part that is nothing but dots and a suffix is empty afterwards.
            ("+only@gmail.com", Some("+only@gmail.com"), None),
            ("...@gmail.com", Some("...@gmail.com"), None),
            // Not an email.
            ("no-at-sign.example.com", None, None),
            ("", None, None),
            ("   ", None, None),
            ("@example.com", None, None),
            ("ann@", None, None),
            ("a@b@example.com", None, None),
        ];
        for &(raw, meta, google) in cases {
            assert_eq!(email(Meta, raw).as_deref(), meta, "meta {raw:?}");
            assert_eq!(email(Google, raw).as_deref(), google, "google {raw:?}");
            assert_eq!(
                hashed_email(Meta, raw),
                meta.map(sha256_hex),
                "meta hash {raw:?}"
            );
            assert_eq!(
                hashed_email(Google, raw),
                google.map(sha256_hex),
                "google hash {raw:?}"
            );
        }
    }

    #[test]
    fn accented_local_parts_hash_equal_in_nfc_and_nfd() {
        let nfc = "Ren\u{e9}e.J\u{f6}rg@Example.com";
        let nfd = "Rene\u{301}e.Jo\u{308}rg@Example.com";
        for p in [Meta, Google] {
            let a = email(p, nfc).unwrap();
            let b = email(p, nfd).unwrap();
            assert_eq!(a, b, "{p:?}");
            assert_eq!(a, "ren\u{e9}e.j\u{f6}rg@example.com");
            assert_eq!(hashed_email(p, nfc), hashed_email(p, nfd));
        }
        // Uppercase accented letters lowercase to the same NFC text.
        assert_eq!(
            email(Meta, "\u{c9}LODIE@example.com"),
            email(Meta, "E\u{301}LODIE@example.com")
        );
        assert_eq!(
            email(Google, "\u{e9}.lo.die@gmail.com").as_deref(),
            Some("\u{e9}lodie@gmail.com")
        );
    }

    #[test]
    fn already_hashed_values_pass_through() {
        let h = "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F";
        let lower = h.to_ascii_lowercase();
        for p in [Meta, Google] {
            assert_eq!(
                hashed_email(p, &format!("  {h} ")).as_deref(),
                Some(lower.as_str())
            );
            assert_eq!(
                hashed_phone(p, &format!("\t{h}"), None).as_deref(),
                Some(lower.as_str())
            );
            assert_eq!(email(p, h).as_deref(), Some(lower.as_str()));
        }
        assert!(is_sha256_hex(h));
        assert!(is_sha256_hex(&format!(" {lower} ")));
        assert!(!is_sha256_hex(&h[1..]));
        assert!(!is_sha256_hex(&format!("{}g", &h[1..])));
        assert!(!is_sha256_hex(&format!("{h}0")));
    }

    #[test]
    fn sha256_known_values() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_hex(&sha256_hex("x")));
    }

    #[test]
    fn phone_table() {
        // (input, country, E.164 or None)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // US: parentheses, dots, dashes, spaces, trunk 1, +1, 001.
            ("(650) 555-1212", Some("US"), Some("+16505551212")),
            ("650.555.1212", Some("US"), Some("+16505551212")),
            ("650-555-1212", Some("us"), Some("+16505551212")),
            ("1-650-555-1212", Some("US"), Some("+16505551212")),
            ("+1 (650) 555-1212", None, Some("+16505551212")),
            ("+1 650 555 1212", Some("GB"), Some("+16505551212")),
            ("001 650 555 1212", None, Some("+16505551212")),
            ("00 1 650 555 1212", Some("DE"), Some("+16505551212")),
            // GB: national trunk 0, +44, 0044.
            ("020 7946 0018", Some("GB"), Some("+442079460018")),
            ("(020) 7946-0018", Some("gb"), Some("+442079460018")),
            ("+44 20 7946 0018", None, Some("+442079460018")),
            ("+44 (0)20 7946 0018", None, Some("+442079460018")),
            ("0044 20 7946 0018", Some("FR"), Some("+442079460018")),
            ("07400 123456", Some("GB"), Some("+447400123456")),
            // Ofcom's drama range for mobiles is not a valid number for libphonenumber.
            ("07700 900123", Some("GB"), None),
            // DE.
            ("030 12345678", Some("DE"), Some("+493012345678")),
            ("+49 30 12345678", None, Some("+493012345678")),
            ("0049 (0)30 1234-5678", None, Some("+493012345678")),
            ("01512 3456789", Some("DE"), Some("+4915123456789")),
            // A national number starting with the calling code, read as libphonenumber does:
            // the code is kept when the whole number fits the plan, taken off otherwise.
            ("4915 1759 000 56", Some("DE"), Some("+494915175900056")),
            ("491510", Some("DE"), Some("+49491510")),
            ("49 30 12345678", Some("DE"), Some("+493012345678")),
            ("44 20 7946 0018", Some("GB"), Some("+442079460018")),
            // FR.
            ("01 23 45 67 89", Some("FR"), Some("+33123456789")),
            ("06.12.34.56.78", Some("FR"), Some("+33612345678")),
            ("+33 6 12 34 56 78", None, Some("+33612345678")),
            // IT: the leading 0 of a fixed line stays (no trunk prefix).
            ("02 1234 5678", Some("IT"), Some("+390212345678")),
            ("+39 02 1234 5678", None, Some("+390212345678")),
            ("312 345 6789", Some("IT"), Some("+393123456789")),
            // RU: the trunk prefix 8 is kept when taking it off leaves no valid number.
            ("8 (812) 345-67-89", Some("RU"), Some("+78123456789")),
            ("+7 812 345 67 89", None, Some("+78123456789")),
            ("8 912 345 67 89", Some("RU"), Some("+79123456789")),
            // BR.
            ("(11) 91234-5678", Some("BR"), Some("+5511912345678")),
            ("+55 11 91234 5678", None, Some("+5511912345678")),
            // IN.
            ("098765 43210", Some("IN"), Some("+919876543210")),
            ("98765 43210", Some("IN"), Some("+919876543210")),
            ("+91 98765-43210", None, Some("+919876543210")),
            // Rejected: no country for a national number, unknown country, too short,
            // too long, letters, empty, an impossible number.
            ("(650) 555-1212", None, None),
            ("(650) 555-1212", Some("XX"), None),
            ("(650) 555-1212", Some("USA"), None),
            ("555-1212", Some("US"), None),
            ("12", Some("GB"), None),
            ("+44 20 7946 0018 0018 0018", None, None),
            ("1-800-FLOWERS", Some("US"), None),
            ("tel:+16505551212", None, None),
            ("", Some("US"), None),
            ("   ", Some("US"), None),
            ("+", None, None),
            ("--", Some("US"), None),
            ("+1 (650) 555-12+12", None, None),
            ("+999 1234 5678", None, None),
            ("000 000 0000", Some("US"), None),
        ];
        for &(raw, country, want) in cases {
            assert_eq!(
                phone(Google, raw, country).as_deref(),
                want,
                "google {raw:?} {country:?}"
            );
            let meta = want.map(|w| w.trim_start_matches('+').to_string());
            assert_eq!(phone(Meta, raw, country), meta, "meta {raw:?} {country:?}");
            assert_eq!(
                hashed_phone(Meta, raw, country),
                meta.as_deref().map(sha256_hex)
            );
        }
    }

    #[test]
    fn platform_names_round_trip() {
        for p in [Meta, Google] {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
        }
        assert!("tiktok".parse::<Platform>().is_err());
    }

    proptest::proptest! {
        /// ASCII text is lowercased without the NFC pass, to the same text: mixed case, digits,
        /// punctuation and control characters, and (to exercise the Unicode path beside it)
        /// accented letters, precomposed or combining, and a Turkish dotted capital I, which
        /// lowercases to two code points.
        #[test]
        fn lower_nfc_of_ascii_is_its_ascii_lowercase(
            s in "[A-Za-z0-9@._+\\- \\x00-\\x1f]{0,24}|[A-Za-z@.\u{e9}\u{c9}\u{301}\u{130}]{0,12}",
        ) {
            let full: String = s.to_lowercase().nfc().collect();
            proptest::prop_assert_eq!(lower_nfc(&s), full);
        }
    }

    /// A phone is read once for both platforms, on first use: each platform's hash of it is
    /// the hash of its own normalization of the raw number, a SHA-256 is passed through (and
    /// not read), an invalid number hashes to nothing on either platform, and clones share the
    /// reading.
    #[test]
    fn a_phone_read_once_hashes_as_each_platform_normalizes_it() {
        for (raw, country) in [
            ("(650)555-1212", Some("US")),
            ("+44 20 7946 0958", None),
            ("030 901820", Some("DE")),
            ("12", Some("US")),
            (
                "E323EC626319CA94EE8BFF2E4C87CF613BE6EA19919ED1364124E16807AB3176",
                None,
            ),
        ] {
            let number = Phone::new(raw, country);
            let clone = number.clone();
            assert_eq!(number.raw(), raw);
            assert!(!number.is_read());
            for p in [Meta, Google] {
                assert_eq!(
                    hashed_phone_read(p, &number),
                    phone(p, raw, country).map(|n| match passthrough(raw) {
                        Some(h) => h,
                        None => sha256_hex(&n),
                    }),
                    "{raw} for {p:?}"
                );
            }
            assert_eq!(clone.is_read(), passthrough(raw).is_none(), "{raw}");
            assert!(clone.same_reading(&number));
        }
        assert_eq!(
            Phone::new("(650)555-1212", Some("US")).e164(),
            Some("+16505551212")
        );
        assert_eq!(Phone::new("12", Some("US")).e164(), None);
        let hashed = Phone::new(&"a".repeat(64), None);
        assert_eq!(hashed.e164(), None);
        assert_eq!(hashed_phone_read(Meta, &hashed), Some("a".repeat(64)));
        // Equal by number and country, whether read or not; not one reading.
        let (a, b) = (Phone::new("12", Some("US")), Phone::new("12", Some("US")));
        a.e164();
        assert!(a == b && !a.same_reading(&b));
        assert!(Phone::new("12", Some("FR")) != b);
    }
}
