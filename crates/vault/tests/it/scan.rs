//! After tokenizing test cards, neither the SQLite file (with its WAL) nor a `pg_dump` of
//! the PostgreSQL schema holds any PAN digits in clear: the PAN exists only as ciphertext.

use ivrpay_card::TokenType;
use ivrpay_store::testing::TestDatabase;
use ivrpay_store::testing::scan::{
    PAN_WINDOW as WINDOW, database_bytes, pan_leaks as leaks, sqlite_bytes,
};

use crate::support::{KeyDir, at, expiry, pan, random_pan_digits, tenant};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_has_no_clear_pan() {
    let cards = cards();
    let db = TestDatabase::sqlite().await.expect("fixture");
    tokenize_all(&db, &cards).await;
    let path = db.sqlite_path().expect("sqlite path");
    // Read the file and its write-ahead log while open (committed rows may be in either),
    // then again after close has checkpointed everything into the file.
    let open_bytes = sqlite_bytes(&path).expect("db file");
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
    let (_, schema) = db.postgres_schema().expect("postgres");
    let schema = schema.to_owned();
    // The dump's text, and its bytea values decoded (as hex, digit runs occur by chance).
    let [rest, binary]: [Vec<u8>; 2] =
        database_bytes(&db).expect("pg_dump").try_into().expect("text and binary");
    // The dump really holds the rows: one token row per card.
    let tokens = String::from_utf8_lossy(&rest).lines().filter(|l| l.starts_with("tok_")).count();
    assert_eq!(tokens, cards.len(), "the dump holds every token row");
    assert!(binary.len() >= cards.len() * (1 + 12 + 15 + 16), "the ciphertexts were decoded");
    let found: Vec<String> =
        leaks(&rest, &cards).into_iter().chain(leaks(&binary, &cards)).collect();
    assert!(found.is_empty(), "clear PAN digits in the dump of {schema}: {found:?}");
    println!(
        "scan: pg_dump {} bytes, {} token rows, no {}-digit PAN run in clear",
        rest.len() + binary.len(),
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
