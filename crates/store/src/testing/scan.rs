//! Scanners for card data left in clear in what a database holds: the SQLite file and its
//! write-ahead log, or a `pg_dump`. Tests of the vault and of whole payment flows run them
//! after the fact, over the bytes themselves.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use super::{FixtureError, TestDatabase};

/// Any run of this many consecutive digits of a PAN counts as a leak (brand and last four
/// are stored on purpose and are shorter).
pub const PAN_WINDOW: usize = 7;

/// Turns a run of ASCII digits into the bytes of one text encoding.
type Encode = fn(&[u8]) -> Vec<u8>;

/// Every window of [`PAN_WINDOW`] digits of every card that occurs in `bytes`, as ASCII or
/// as UTF-16 (either byte order), described without the digits. One pass over the bytes per
/// encoding, looking each window up in the set of the cards' windows.
#[must_use]
pub fn pan_leaks(bytes: &[u8], cards: &[String]) -> Vec<String> {
    let encodings: [(&str, Encode); 3] = [
        ("ASCII", |w| w.to_vec()),
        ("UTF-16LE", |w| w.iter().flat_map(|&b| [b, 0]).collect()),
        ("UTF-16BE", |w| w.iter().flat_map(|&b| [0, b]).collect()),
    ];
    let mut found = Vec::new();
    for (encoding, encode) in encodings {
        let mut needles: HashMap<Vec<u8>, String> = HashMap::new();
        for card in cards {
            for window in card.as_bytes().windows(PAN_WINDOW) {
                needles.insert(
                    encode(window),
                    format!("{}… of a card ({} digits)", &card[..2], card.len()),
                );
            }
        }
        let len = encode(&[b'0'; PAN_WINDOW]).len();
        for hay in bytes.windows(len) {
            if let Some(card) = needles.get(hay) {
                found.push(format!("{card} in {encoding}"));
            }
        }
    }
    found
}

/// Security codes found in `bytes` as a run of ASCII digits standing alone (a code is too
/// short for windows: `7391` occurs inside any long number). Runs touching a letter or a
/// digit are parts of identifiers and hex strings, runs after a `.` fractions of logged
/// durations and amounts: a code written as a value has a delimiter either side.
#[must_use]
pub fn code_leaks(bytes: &[u8], codes: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let after = bytes.get(i).copied();
        let embedded = before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
            || after.is_some_and(|b| b.is_ascii_alphanumeric());
        let run = &bytes[start..i];
        if !embedded && codes.iter().any(|code| code.as_bytes() == run) {
            found.push(format!("a {}-digit security code at byte {start}", run.len()));
        }
    }
    found
}

/// What a database holds, as bytes to scan: for SQLite the file and its write-ahead log
/// (committed rows may be in either); for PostgreSQL a data-only `pg_dump` of the fixture's
/// schema, with `bytea` hex literals decoded into a second buffer (hex digits would
/// otherwise form digit runs by chance).
///
/// # Errors
/// [`FixtureError`] when the file cannot be read or `pg_dump` cannot run.
pub fn database_bytes(db: &TestDatabase) -> Result<Vec<Vec<u8>>, FixtureError> {
    if let Some(path) = db.sqlite_path() {
        return Ok(vec![sqlite_bytes(&path)?]);
    }
    let (url, schema) = db
        .postgres_schema()
        .ok_or_else(|| FixtureError("the fixture has neither SQLite nor PostgreSQL".to_owned()))?;
    let dump = Command::new("pg_dump")
        .args(["--schema", schema, "--data-only", "--no-owner", url])
        .output()
        .map_err(|e| {
            FixtureError(format!(
                "cannot run pg_dump ({e}): install the Debian package postgresql-client"
            ))
        })?;
    if !dump.status.success() {
        return Err(FixtureError(format!(
            "pg_dump failed: {}",
            String::from_utf8_lossy(&dump.stderr)
        )));
    }
    let (text, binary) = split_bytea(&dump.stdout);
    Ok(vec![text, binary])
}

/// The SQLite file followed by its write-ahead log, if there is one.
///
/// # Errors
/// [`FixtureError`] when the file cannot be read.
pub fn sqlite_bytes(path: &Path) -> Result<Vec<u8>, FixtureError> {
    let mut bytes =
        std::fs::read(path).map_err(|e| FixtureError(format!("{}: {e}", path.display())))?;
    if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
        bytes.extend(wal);
    }
    Ok(bytes)
}

/// Splits a dump into its text without `bytea` hex literals, and those literals decoded.
#[must_use]
pub fn split_bytea(dump: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let (mut rest, mut binary) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < dump.len() {
        if dump[i..].starts_with(b"\\x") || dump[i..].starts_with(b"\\\\x") {
            let start = i + if dump[i..].starts_with(b"\\x") { 2 } else { 3 };
            let mut j = start;
            while j + 1 < dump.len() {
                match (hex(dump[j]), hex(dump[j + 1])) {
                    (Some(hi), Some(lo)) => binary.push(hi << 4 | lo),
                    _ => break,
                }
                j += 2;
            }
            binary.push(b'|');
            i = j;
        } else {
            rest.push(dump[i]);
            i += 1;
        }
    }
    (rest, binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanners_find_what_was_planted() {
        let cards = vec!["4242424242424242".to_owned()];
        assert!(!pan_leaks(b"...4242424242424242...", &cards).is_empty());
        assert!(!pan_leaks(b"xx2424242yy", &cards).is_empty(), "a 7-digit window");
        let utf16: Vec<u8> = "4242424242".bytes().flat_map(|b| [b, 0]).collect();
        assert!(!pan_leaks(&utf16, &cards).is_empty());
        assert!(pan_leaks(b"last four 4242, brand visa", &cards).is_empty());

        let codes = vec!["7391".to_owned()];
        assert_eq!(code_leaks(b"cvc=7391;", &codes).len(), 1);
        assert_eq!(code_leaks(b"\"7391\"", &codes).len(), 1);
        assert_eq!(code_leaks(b"cvv: 7391\n", &codes).len(), 1);
        assert!(code_leaks(b"17391 73910 took 1.7391ms", &codes).is_empty());
        assert!(code_leaks(b"dlv_0fa7391c2 pay_01k7391x", &codes).is_empty(), "inside ids");
    }

    #[test]
    fn bytea_literals_are_decoded_apart_from_the_text() {
        let (text, binary) = split_bytea(b"tok_1\t\\x0a1b\tvisa\n");
        assert_eq!(text, b"tok_1\t\tvisa\n");
        assert_eq!(binary, [0x0a, 0x1b, b'|']);
    }
}
