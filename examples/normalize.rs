//! Normalize and hash identifiers read from stdin, for the cross-check against the platforms'
//! own libraries (`ci/crosscheck_normalizers.py`).
//!
//! Input, one per line: `platform<TAB>kind<TAB>value<TAB>country`, where platform is `meta` or
//! `google`, kind `email` or `phone`, and country an ISO 3166-1 alpha-2 code or empty. Values
//! may hold any character but a tab or a line break; `\t`, `\n`, `\r` and `\\` are unescaped.
//!
//! Output, one per input line: `normalized<TAB>sha256`, or `-` when the value is rejected.
//!
//! ```text
//! printf 'google\temail\tJohn.Smith+x@gmail.com\t\n' | cargo run --quiet --example normalize
//! ```

use std::io::{self, BufRead, BufWriter, Write};

use lakestitch::export::normalize::{self, Platform};

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        let mut fields = line.split('\t');
        let (Some(platform), Some(kind), Some(value)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!(
                "line {}: expected platform<TAB>kind<TAB>value<TAB>country",
                n + 1
            )
            .into());
        };
        let country = fields.next().map(str::trim).filter(|c| !c.is_empty());
        let platform: Platform = platform
            .parse()
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        let value = unescape(value);
        let normalized = match kind {
            "email" => normalize::email(platform, &value),
            "phone" => normalize::phone(platform, &value, country),
            other => return Err(format!("line {}: unknown kind `{other}`", n + 1).into()),
        };
        let hashed = match kind {
            "email" => normalize::hashed_email(platform, &value),
            _ => normalize::hashed_phone(platform, &value, country),
        };
        match (normalized, hashed) {
            (Some(n), Some(h)) => writeln!(out, "{n}\t{h}")?,
            _ => writeln!(out, "-")?,
        }
    }
    out.flush()?;
    Ok(())
}
