//! URL hosts, registrable domains and redaction on arbitrary text: `url_host` agrees with the
//! touches' column regex, `registrable_domain` is a stable suffix of the host, redaction is
//! idempotent and leaves no email address or `+` phone number.
#![no_main]

use std::sync::LazyLock;

use lakestitch::attribute::channel::url_host;
use lakestitch::read::privacy;
use lakestitch::stitch::touches::{registrable_domain, HOST_RE};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

static HOST: LazyLock<Regex> = LazyLock::new(|| Regex::new(HOST_RE).unwrap());
static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(privacy::EMAIL_RE).unwrap());
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(privacy::PHONE_RE).unwrap());

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let by_regex = HOST.captures(&s).and_then(|c| c.get(1)).map(|m| m.as_str());
    assert_eq!(url_host(&s), by_regex);

    let host = url_host(&s).unwrap_or(&s);
    let d = registrable_domain(host);
    assert!(host
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .ends_with(&d));
    assert_eq!(registrable_domain(&d), d);

    let r = privacy::redact_text(&s);
    assert_eq!(privacy::redact_text(&r), r);
    assert!(!EMAIL.is_match(&r) && !PHONE.is_match(&r));
    if privacy::is_personal_id(&s) {
        assert!(!privacy::is_personal_id(&privacy::pseudonym(&s)));
    }
});
