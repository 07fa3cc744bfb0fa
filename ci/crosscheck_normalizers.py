#!/usr/bin/env python3
"""Cross-check lakestitch's per-platform normalizers against independent references.

Generates a few hundred emails and phone numbers deterministically, runs them through
`cargo run --quiet --example normalize` (src/export/normalize.rs) and compares, value by value:

- phone numbers (Meta and Google) with `phonenumbers` (Python port of libphonenumber):
  parse with the user's country, `is_valid_number`, E.164 (Meta: without the `+`);
- Meta emails with the official SDK's normalizer,
  `facebook_business.adobjects.serverside.normalize.Normalize.normalize_field("em", ...)`;
- Google emails (and `+`-prefixed phones) with Google's `google-ads-datamanager-util`
  `Formatter` (`format_email_address`, `process_email_address(..., Encoding.HEX)`,
  `format_phone_number`).

Where lakestitch follows a rule the reference library does not implement, the rule is applied
around the reference, never replaced by our own output (each one is counted and printed):

- Unicode NFC before normalizing (contract §5; neither library does it);
- a 64-hex value is passed through lowercased (contract §5; Google's Formatter has no such rule);
- Meta: an email with whitespace inside or not exactly one `@` is rejected (the SDK's
  `.+@.+\\..+` accepts `a b@x.com` and `a@b@x.com`);
- Google: whitespace inside an email is removed, as Google's published formatting rules say
  (the Formatter refuses such an address instead);
- phones: digits, spaces and `-.()/` only, a leading `+` or `00` is the international prefix,
  a national number needs the user's country (the same preprocessing, then `phonenumbers`).

The `phonenumber` crate carries libphonenumber metadata of a given release (Cargo.lock:
`phonenumber 0.3.10+9.0.33` → 9.0.33); install the same `phonenumbers` release
(`pip install phonenumbers==9.0.33`), or numbering-plan changes show up as mismatches (the
script warns when the two differ).

Usage: python ci/crosscheck_normalizers.py [--seed N] [--count N]
Prints one line per mismatch and ends with `crosscheck: N passed, N failed`; exits 1 on any
mismatch, 2 when no reference library can be imported.
"""

import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import phonenumbers
except ImportError:  # pragma: no cover - reported below
    phonenumbers = None
try:
    from facebook_business.adobjects.serverside.normalize import Normalize as MetaNormalize
except ImportError:  # pragma: no cover
    MetaNormalize = None
try:
    from google.ads.datamanager_util import Formatter as GoogleFormatter
    from google.ads.datamanager_util.format import Encoding as GoogleEncoding
except ImportError:  # pragma: no cover
    GoogleFormatter = None
    GoogleEncoding = None

HEX64 = re.compile(r"[0-9a-fA-F]{64}")
PHONE_CHARS = re.compile(r"\+?[0-9\s\-.()/]*")


def sha(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def nfc(s):
    return unicodedata.normalize("NFC", s)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

NAMES = ["john", "Jane", "ALEX", "maria", "li", "o'neil", "anne-marie", "kim", "Zoë", "josé",
         "Björn", "françois", "Renée", "Ñandú", "ürsula", "åsa"]
DOMAINS = ["gmail.com", "GMail.com", "googlemail.com", "GOOGLEMAIL.COM", "example.com",
           "Example.ORG", "mail.co.uk", "gmail.co.uk", "outlook.com", "sub.gmail.com",
           "exämple.de"]


def accent_form(rng, s):
    """The same text in NFC or NFD, at random."""
    return unicodedata.normalize(rng.choice(["NFC", "NFD"]), s)


def gen_email(rng):
    kind = rng.random()
    if kind < 0.05:
        h = sha(str(rng.random()))
        return rng.choice(["", " ", "\t"]) + rng.choice([h, h.upper()]) + rng.choice(["", "  "])
    if kind < 0.12:
        bad = rng.choice(["no-at-sign.example.com", "@example.com", "ann@", "a@b@example.com",
                          "", "   ", "ann@@example.com", "+@gmail.com", "..@googlemail.com"])
        return bad
    parts = [rng.choice(NAMES) for _ in range(rng.randint(1, 3))]
    local = rng.choice([".", "_", "-", ""]).join(parts)
    if rng.random() < 0.3:
        local += str(rng.randint(0, 999))
    if rng.random() < 0.3:
        local += "+" + rng.choice(["promo", "NYC", "x.y", "shop"])
    if rng.random() < 0.2:
        local = "".join(c.upper() if rng.random() < 0.5 else c for c in local)
    email = accent_form(rng, local) + "@" + rng.choice(DOMAINS)
    if rng.random() < 0.3:
        email = rng.choice([" ", "\t", "  ", "\n "]) + email + rng.choice(["", " ", "\t "])
    if rng.random() < 0.08:
        i = rng.randint(1, len(email) - 1)
        email = email[:i] + " " + email[i:]
    return email


def rand_digits(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


# (country, calling code, national significant number generators)
def nsn(rng, country):
    if country == "US":
        area = rng.choice(["650", "212", "415", "312", "617", "800", "305", "206"])
        return area + rng.choice("23456789") + rand_digits(rng, 2) + rand_digits(rng, 4)
    if country == "GB":
        return rng.choice([
            "20" + "7946" + "0" + rand_digits(rng, 3),
            "7700" + "900" + rand_digits(rng, 3),
            "113" + "496" + "0" + rand_digits(rng, 3),
            "7" + rng.choice("4579") + rand_digits(rng, 8),
            "161" + rand_digits(rng, 7),
        ])
    if country == "DE":
        return rng.choice(["30" + rand_digits(rng, 8), "151" + rand_digits(rng, 8),
                           "89" + rand_digits(rng, 7), "40" + rand_digits(rng, 8)])
    if country == "FR":
        return rng.choice("1234567") + rand_digits(rng, 8)
    if country == "BR":
        return rng.choice(["11", "21", "31", "61"]) + rng.choice(["9" + rand_digits(rng, 8),
                                                                 "3" + rand_digits(rng, 7)])
    if country == "IN":
        return rng.choice("6789") + rand_digits(rng, 9)
    raise ValueError(country)


CODES = {"US": "1", "GB": "44", "DE": "49", "FR": "33", "BR": "55", "IN": "91"}
TRUNK = {"US": "1", "GB": "0", "DE": "0", "FR": "0", "BR": "0", "IN": "0"}


def group(rng, digits):
    """Write digits with random separators."""
    sep = rng.choice([" ", "-", ".", "", " "])
    out, i = [], 0
    while i < len(digits):
        n = rng.randint(2, 4)
        out.append(digits[i:i + n])
        i += n
    s = sep.join(out)
    if rng.random() < 0.2 and len(out) > 1:
        s = "(" + out[0] + ") " + sep.join(out[1:])
    return s


# More regions, from libphonenumber's own example numbers with some digits changed (so some are
# valid, some not): AR, MX, IT (leading 0 kept), RU (trunk 8), ...
MORE_REGIONS = ["AR", "MX", "IT", "JP", "AU", "CN", "RU", "ES", "NL", "CH", "SE", "ZA", "NG", "KR",
                "CA", "BE", "AT", "PL", "TR", "ID"]


def gen_region_phone(rng):
    region = rng.choice(MORE_REGIONS)
    kind = rng.choice([phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE])
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return "+1 650 555 1212", ""
    nat = str(example.national_number)
    if example.italian_leading_zero:
        nat = "0" * (example.number_of_leading_zeros or 1) + nat
    nat = "".join(ch if rng.random() < 0.7 else rng.choice("0123456789") for ch in nat)
    international = f"+{example.country_code}{nat}"
    style = rng.random()
    if style < 0.4:
        return f"+{example.country_code} {group(rng, nat)}", rng.choice([region, ""])
    if style < 0.8:
        try:
            written = phonenumbers.format_number(phonenumbers.parse(international),
                                                 phonenumbers.PhoneNumberFormat.NATIONAL)
        except phonenumbers.NumberParseException:
            written = nat
        return written, region
    return nat, region


def gen_phone(rng):
    country = rng.choice(list(CODES))
    number = nsn(rng, country)
    kind = rng.random()
    if kind < 0.06:
        number = number[: rng.randint(2, 6)]  # too short
    elif kind < 0.10:
        number = number + rand_digits(rng, rng.randint(2, 5))  # too long
    style = rng.random()
    if style < 0.35:
        raw = group(rng, number)
        if rng.random() < 0.5:
            raw = TRUNK[country] + (" " if rng.random() < 0.5 else "") + raw
    elif style < 0.65:
        raw = "+" + CODES[country] + " " + group(rng, number)
        if country in ("GB", "DE") and rng.random() < 0.2:
            raw = "+" + CODES[country] + " (0)" + group(rng, number)
    elif style < 0.85:
        raw = "00" + CODES[country] + " " + group(rng, number)
    else:
        raw = CODES[country] + group(rng, number)
    if rng.random() < 0.1:
        raw = " " + raw + " "
    given = rng.random()
    if given < 0.7:
        user_country = country
    elif given < 0.85:
        user_country = ""
    else:
        user_country = rng.choice([c for c in CODES if c != country] + ["XX", "gb"])
    if rng.random() < 0.02:
        raw = sha(raw).upper()
    return raw, user_country


# ---------------------------------------------------------------------------------------------
# Expected values from the references
# ---------------------------------------------------------------------------------------------

notes = {}


def note(key):
    notes[key] = notes.get(key, 0) + 1


def expected_e164(raw, country):
    t = raw.strip()
    if HEX64.fullmatch(t):
        note("phone: 64-hex passed through (contract)")
        return t.lower()
    if not PHONE_CHARS.fullmatch(t):
        return None
    digits = re.sub(r"\D", "", t)
    if not digits:
        return None
    region = None
    if t.startswith("+"):
        text = "+" + digits
    elif digits.startswith("00"):
        text = "+" + digits[2:]
        note("phone: leading 00 read as + (documented preprocessing)")
    else:
        if not country:
            return None
        text, region = digits, country.upper()
    try:
        n = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def expected_meta_email(raw):
    """(normalized, sha256) or None, from the Meta SDK plus the documented rules."""
    s = nfc(raw)
    t = s.strip()
    if HEX64.fullmatch(t):
        h = MetaNormalize.normalize_field("em", s)
        return h, h
    if re.search(r"\s", t) or t.count("@") != 1 or t.startswith("@") or t.endswith("@"):
        note("meta email: rejected by the documented rule (whitespace inside / not one @)")
        return None
    try:
        norm = MetaNormalize.normalize_field_skip_hashing("em", s)
        h = MetaNormalize.normalize_field("em", s)
    except (TypeError, ValueError):
        return None
    return nfc(norm), h


def expected_google_email(raw):
    t = raw.strip()
    if HEX64.fullmatch(t):
        note("google email: 64-hex passed through (contract)")
        return t.lower(), t.lower()
    if re.search(r"\s", t):
        note("google email: whitespace inside removed (published rule; the Formatter refuses)")
    # Whitespace first, then NFC: a space between a letter and its combining accent must not
    # keep the text out of NFC.
    s = nfc(re.sub(r"\s", "", raw))
    f = GoogleFormatter()
    try:
        norm = f.format_email_address(s)
        h = f.process_email_address(s, GoogleEncoding.HEX)
    except ValueError:
        return None
    return nfc(norm), h


# ---------------------------------------------------------------------------------------------


def crate_metadata_version():
    """The libphonenumber metadata version of the `phonenumber` crate in Cargo.lock."""
    try:
        lock = (ROOT / "Cargo.lock").read_text()
    except OSError:
        return None
    m = re.search(r'name = "phonenumber"\nversion = "[^"+]*\+([^"]+)"', lock)
    return m.group(1) if m else None


def escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def run_example(lines):
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache/lakestitch/target"))
    proc = subprocess.run(
        ["cargo", "run", "--quiet", "--example", "normalize"],
        input="".join(lines), capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"crosscheck: `cargo run --example normalize` failed ({proc.returncode})")
    out = proc.stdout.splitlines()
    if len(out) != len(lines):
        sys.exit(f"crosscheck: {len(lines)} inputs but {len(out)} outputs")
    return [None if o == "-" else tuple(o.split("\t")) for o in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--count", type=int, default=150,
                    help="generated emails, phones of 6 countries, phones of 20 more regions")
    args = ap.parse_args()

    missing = []
    if phonenumbers is None:
        missing.append("phonenumbers (phone E.164 checks skipped)")
    if MetaNormalize is None:
        missing.append("facebook-business (Meta email checks skipped)")
    if GoogleFormatter is None:
        missing.append("google-ads-datamanager-util (Google email and phone format checks skipped)")
    for m in missing:
        print(f"crosscheck: SKIPPED oracle: {m} is not installed")
    if len(missing) == 3:
        print("crosscheck: no reference library could be imported")
        return 2

    if phonenumbers is not None:
        crate = crate_metadata_version()
        if crate and crate != phonenumbers.__version__:
            print(f"crosscheck: WARNING: phonenumbers {phonenumbers.__version__} but the phonenumber "
                  f"crate carries libphonenumber metadata {crate}: install phonenumbers=={crate}, "
                  "or numbering-plan changes between the two show up as mismatches")

    rng = random.Random(args.seed)
    # Fixed cases first (the published vectors and the tricky ones), then generated ones.
    emails = ["John_Smith@gmail.com", "  ALEXZ@example.com   ", "Jefferson.Loves.hiking@gmail.com",
              "cloudy.sanfrancisco+shopping@gmail.com", "user.name+NYC@Example.com",
              "Rene\u0301e.Jo\u0308rg@Example.com", "Ren\u00e9e.J\u00f6rg@Example.com",
              "j.doe+promo@googlemail.com", "ann @example.com"]
    phones = [("(650)555-1212", "US"), ("1 800 555 0100", "US"), ("+44-113-496-0987", ""),
              ("020 7946 0018", "GB"), ("0044 20 7946 0018", ""), ("+44 (0)20 7946 0018", ""),
              ("030 12345678", "DE"), ("06.12.34.56.78", "FR"), ("(11) 91234-5678", "BR"),
              ("098765 43210", "IN"), ("555-1212", "US"), ("(650) 555-1212", "")]
    emails += [gen_email(rng) for _ in range(args.count)]
    phones += [gen_phone(rng) for _ in range(args.count)]
    if phonenumbers is not None:
        phones += [gen_region_phone(rng) for _ in range(args.count)]

    checks = []  # (platform, kind, raw, country, expected or None, oracle name)
    if MetaNormalize is not None:
        checks += [("meta", "email", e, "", expected_meta_email(e), "facebook-business") for e in emails]
    if GoogleFormatter is not None:
        checks += [("google", "email", e, "", expected_google_email(e), "datamanager-util") for e in emails]
    if phonenumbers is not None:
        for raw, c in phones:
            e164 = expected_e164(raw, c)
            google = None if e164 is None else (e164, sha(e164) if e164.startswith("+") else e164)
            meta = None
            if e164 is not None:
                m = e164[1:] if e164.startswith("+") else e164
                meta = (m, sha(m) if e164.startswith("+") else m)
            checks.append(("google", "phone", raw, c, google, "phonenumbers"))
            checks.append(("meta", "phone", raw, c, meta, "phonenumbers"))

    lines = [f"{p}\t{k}\t{escape(v)}\t{c}\n" for p, k, v, c, _, _ in checks]
    got = run_example(lines)

    passed = failed = 0
    for (p, k, raw, c, want, oracle), have in zip(checks, got):
        ok = have == want
        # Every accepted value hashes to SHA-256 of its normalized text (or is a passed-through hash).
        if ok and have is not None and not HEX64.fullmatch(have[0]) and have[1] != sha(have[0]):
            ok = False
        # Google's Formatter on `+`-prefixed phones written with exactly the E.164 digits (it
        # only keeps the digits and adds a `+`: no trunk prefix to drop).
        if (ok and GoogleFormatter is not None and p == "google" and k == "phone"
                and have is not None and raw.strip().startswith("+")
                and re.sub(r"\D", "", raw) == have[0][1:]):
            ok = GoogleFormatter().format_phone_number(raw) == have[0]
            note("google phone: also matched the Formatter's format_phone_number")
        if ok:
            passed += 1
        else:
            failed += 1
            # The inputs are generated test data, not anyone's personal data.
            print(f"MISMATCH [{oracle}] {p} {k} {raw!r} country={c!r}: lakestitch={have} reference={want}")

    for key in sorted(notes):
        print(f"crosscheck: note: {notes[key]} × {key}")
    print(f"crosscheck: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
