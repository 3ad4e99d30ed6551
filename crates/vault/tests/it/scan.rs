//! After tokenizing test cards, neither the SQLite file (with its WAL) nor a `pg_dump` of
//! the PostgreSQL schema holds any PAN digits in clear: the PAN exists only as ciphertext.

use std::collections::HashMap;
use std::process::Command;

use ivrpay_card::TokenType;
use ivrpay_store::testing::TestDatabase;

use crate::support::{KeyDir, at, expiry, pan, random_pan_digits, tenant};

/// Any run of this many consecutive digits of a PAN found in the bytes counts as a leak
/// (brand and last four are stored on purpose and are shorter).
const WINDOW: usize = 7;

/// The test cards: well-known ones plus random ones no one else could have written. (Stripe's
/// `4000000000009995` is left out: its runs of zeros also occur in ordinary numbers such as
/// the dump's millisecond timestamps, `1764000000001`.)
fn cards() -> Vec<String> {
    let mut cards: Vec<String> =
        ["4242424242424242", "5555555555554444", "378282246310005"].map(str::to_owned).to_vec();
    for prefix in ["4", "51", "37", "6011", "35"] {
        for len in [15, 16, 19] {
            cards.push(random_pan_digits(prefix, len));
        }
    }
    cards
}

/// Turns a run of ASCII digits into the bytes of one text encoding.
type Encode = fn(&[u8]) -> Vec<u8>;

/// Every window of `WINDOW` digits of every card that occurs in `bytes`, as ASCII or as
/// UTF-16 (either byte order). One pass over the bytes per encoding, looking each window up
/// in the set of the cards' windows.
fn leaks(bytes: &[u8], cards: &[String]) -> Vec<String> {
    let encodings: [(&str, Encode); 3] = [
        ("ASCII", |w| w.to_vec()),
        ("UTF-16LE", |w| w.iter().flat_map(|&b| [b, 0]).collect()),
        ("UTF-16BE", |w| w.iter().flat_map(|&b| [0, b]).collect()),
    ];
    let mut found = Vec::new();
    for (encoding, encode) in encodings {
        let mut needles: HashMap<Vec<u8>, String> = HashMap::new();
        for card in cards {
            for window in card.as_bytes().windows(WINDOW) {
                needles.insert(
                    encode(window),
                    format!("{}… of a card ({} digits)", &card[..2], card.len()),
                );
            }
        }
        let len = encode(&[b'0'; WINDOW]).len();
        for hay in bytes.windows(len) {
            if let Some(card) = needles.get(hay) {
                found.push(format!("{card} in {encoding}"));
            }
        }
    }
    found
}

/// Splits a dump into its text without bytea hex literals, and those literals decoded.
fn split_bytea(dump: &[u8]) -> (Vec<u8>, Vec<u8>) {
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

async fn tokenize_all(db: &TestDatabase, cards: &[String]) {
    let keys = KeyDir::new();
    let vault = keys.vault(db);
    let t = tenant(db.store(), "acme").await;
    for card in cards {
        let token = vault
            .tokenize(&t, &pan(card), expiry(), TokenType::Reusable, None, at(1))
            .await
            .expect("tokenize");
        // Detokenizing proves the data is there, encrypted.
        assert_eq!(
            &vault.detokenize(&t, &token.id, at(2)).await.expect("detokenize").pan.expose(),
            card
        );
    }
}

#[test]
fn the_scanner_finds_a_planted_pan() {
    let cards = vec!["4242424242424242".to_owned()];
    assert!(!leaks(b"...4242424242424242...", &cards).is_empty());
    assert!(!leaks(b"xx2424242yy", &cards).is_empty(), "a 7-digit window");
    let utf16: Vec<u8> = "4242424242".bytes().flat_map(|b| [b, 0]).collect();
    assert!(!leaks(&utf16, &cards).is_empty());
    assert!(leaks(b"last four 4242, brand visa", &cards).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_has_no_clear_pan() {
    let cards = cards();
    let db = TestDatabase::sqlite().await.expect("fixture");
    tokenize_all(&db, &cards).await;
    let path = db.sqlite_path().expect("sqlite path");
    // Read the file and its write-ahead log while open (committed rows may be in either),
    // then again after close has checkpointed everything into the file.
    let mut open_bytes = std::fs::read(&path).expect("db file");
    let wal = path.with_extension("db-wal");
    if let Ok(bytes) = std::fs::read(&wal) {
        open_bytes.extend(bytes);
    }
    assert!(open_bytes.len() > 16 * 1024, "the scan read the database");
    let dir = db.dir().expect("dir").to_path_buf();
    db.store().close().await;
    let closed_bytes = std::fs::read(&path).expect("db file");
    let found: Vec<String> =
        leaks(&open_bytes, &cards).into_iter().chain(leaks(&closed_bytes, &cards)).collect();
    assert!(found.is_empty(), "clear PAN digits in {}: {found:?}", dir.display());
    // The ciphertext is there: one row per card.
    println!(
        "scan: SQLite {} bytes (+WAL), {} cards, no {}-digit PAN run in clear",
        closed_bytes.len(),
        cards.len(),
        WINDOW
    );
    db.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dump_has_no_clear_pan() {
    let cards = cards();
    let db = match TestDatabase::postgres().await {
        Ok(db) => db,
        Err(e) => panic!("PostgreSQL fixture: {e}"),
    };
    tokenize_all(&db, &cards).await;
    let (url, schema) = db.postgres_schema().expect("postgres");
    let dump = Command::new("pg_dump")
        .args(["--schema", schema, "--data-only", "--no-owner", url])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run pg_dump ({e}): install the Debian package postgresql-client")
        });
    assert!(dump.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&dump.stderr));
    let text = dump.stdout;
    // The dump really holds the rows: one token row per card, ciphertext in bytea hex.
    let tokens = String::from_utf8_lossy(&text).lines().filter(|l| l.starts_with("tok_")).count();
    assert_eq!(tokens, cards.len(), "the dump holds every token row");
    // bytea values are printed as hex (`\\x0a1b…`), where digit runs occur by chance: scan
    // them decoded, as the bytes the database holds, and the rest of the dump as text.
    let (rest, binary) = split_bytea(&text);
    assert!(binary.len() >= cards.len() * (1 + 12 + 15 + 16), "the ciphertexts were decoded");
    let found: Vec<String> =
        leaks(&rest, &cards).into_iter().chain(leaks(&binary, &cards)).collect();
    assert!(found.is_empty(), "clear PAN digits in the dump of {schema}: {found:?}");
    println!(
        "scan: pg_dump {} bytes, {} token rows, no {}-digit PAN run in clear",
        text.len(),
        tokens,
        WINDOW
    );
    db.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pan_planted_in_the_file_is_found() {
    let cards = vec![random_pan_digits("4", 16)];
    let db = TestDatabase::sqlite().await.expect("fixture");
    tokenize_all(&db, &cards).await;
    // What a careless column would do: the scan must see it.
    db.exec(&format!("UPDATE tokens SET token_type = 'card {}'", cards[0])).await.expect("plant");
    let path = db.sqlite_path().expect("sqlite path");
    db.store().close().await;
    let bytes = std::fs::read(&path).expect("db file");
    assert!(!leaks(&bytes, &cards).is_empty(), "the planted PAN must be found");
    db.cleanup().await.expect("cleanup");
}
