//! The export normalizers of both platforms on arbitrary text: no panic, a normalized value
//! normalizes to itself, hashes are 64 lowercase hex. The first byte picks the user's country.
#![no_main]

use lakestitch::export::normalize::{self, Platform};
use libfuzzer_sys::fuzz_target;

const COUNTRIES: [&str; 8] = ["US", "GB", "DE", "FR", "IN", "RU", "BR", "ZZ"];

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let country = COUNTRIES.get(usize::from(first) % 9).copied();
    let raw = String::from_utf8_lossy(rest);
    for p in [Platform::Meta, Platform::Google] {
        if let Some(e) = normalize::email(p, &raw) {
            assert_eq!(normalize::email(p, &e).as_ref(), Some(&e));
        }
        if let Some(h) = normalize::hashed_email(p, &raw) {
            assert!(hex64(&h));
        }
        if let Some(h) = normalize::hashed_phone(p, &raw, country) {
            assert!(hex64(&h));
        }
    }
    if let Some(g) = normalize::phone(Platform::Google, &raw, country) {
        if !normalize::is_sha256_hex(&raw) {
            assert_eq!(
                normalize::phone(Platform::Google, &g, None).as_ref(),
                Some(&g)
            );
            let m = normalize::phone(Platform::Meta, &raw, country).unwrap();
            assert_eq!(g.strip_prefix('+'), Some(m.as_str()));
        }
    }
});
