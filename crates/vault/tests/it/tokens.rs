//! Tokenize and detokenize: round trips, randomness, fingerprints, tenants, expiry.

use ivrpay_card::{Brand, TokenType};
use ivrpay_store::testing::TestDatabase;
use ivrpay_vault::VaultError;

use crate::support::{KeyDir, at, expiry, pan, random_pan_digits, tenant};

crate::on_both!(round_trips, fingerprints_find_repeat_cards, tenants_and_expiry);

async fn round_trips(db: &TestDatabase) {
    let keys = KeyDir::new();
    let vault = keys.vault(db);
    let t = tenant(db.store(), "acme").await;
    for digits in [
        "4242424242424242".to_owned(),
        "378282246310005".to_owned(),
        "5555555555554444".to_owned(),
        random_pan_digits("4", 19),
        random_pan_digits("62", 16),
    ] {
        let card = pan(&digits);
        let token = vault
            .tokenize(&t, &card, expiry(), TokenType::Reusable, None, at(1))
            .await
            .expect("tokenize");
        assert!(token.id.as_str().starts_with("tok_"));
        assert_eq!(token.id.as_str().len(), "tok_".len() + 26);
        assert_eq!(token.last4, &digits[digits.len() - 4..]);
        assert_eq!(token.brand, card.brand());
        let back = vault.detokenize(&t, &token.id, at(2)).await.expect("detokenize");
        assert_eq!(back.pan.expose(), digits);
        assert_eq!((back.expiry.month(), back.expiry.year()), (12, 2030));
        // Debug of what the vault hands out shows no digit.
        let shown = format!("{back:?} {token:?}");
        assert!(!shown.contains(&digits[..6]), "{shown}");
    }
    // A cold vault (new process, empty caches) reads the same tokens.
    let amex = vault
        .tokenize(&t, &pan("378282246310005"), expiry(), TokenType::OneTime, None, at(3))
        .await
        .expect("tokenize");
    assert_eq!(amex.brand, Some(Brand::Amex));
    let cold = keys.vault(db);
    assert_eq!(
        cold.detokenize(&t, &amex.id, at(4)).await.expect("cold").pan.expose(),
        "378282246310005"
    );
}

async fn fingerprints_find_repeat_cards(db: &TestDatabase) {
    let keys = KeyDir::new();
    let vault = keys.vault(db);
    let t = tenant(db.store(), "acme").await;
    let digits = random_pan_digits("4", 16);
    let first = vault
        .tokenize(&t, &pan(&digits), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("first");
    let second = vault
        .tokenize(&t, &pan(&digits), expiry(), TokenType::Reusable, None, at(2))
        .await
        .expect("second");
    assert_ne!(first.id, second.id, "every tokenization gets a fresh random token");
    assert_eq!(first.seen_before, None);
    assert_eq!(second.seen_before.as_ref(), Some(&first.id));
    assert_eq!(first.fingerprint, second.fingerprint);
    let other = vault
        .tokenize(&t, &pan(&random_pan_digits("4", 16)), expiry(), TokenType::Reusable, None, at(3))
        .await
        .expect("other");
    assert_ne!(other.fingerprint, first.fingerprint);
    assert_eq!(other.seen_before, None);

    let mut found = vault.tokens_for_card(&t, &pan(&digits), at(4)).await.expect("lookup");
    found.sort();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(found, expected);

    // Stable: the same in a fresh vault instance and after a master key rotation.
    let cold = keys.vault(db);
    assert_eq!(cold.fingerprint(&t, &pan(&digits), at(5)).await.expect("fp"), first.fingerprint);
    cold.rotate(at(6)).await.expect("rotate");
    assert_eq!(cold.fingerprint(&t, &pan(&digits), at(7)).await.expect("fp"), first.fingerprint);
    assert_eq!(
        keys.vault(db).fingerprint(&t, &pan(&digits), at(8)).await.expect("fp"),
        first.fingerprint
    );
}

async fn tenants_and_expiry(db: &TestDatabase) {
    let keys = KeyDir::new();
    let vault = keys.vault(db);
    let a = tenant(db.store(), "acme").await;
    let b = tenant(db.store(), "globex").await;
    let digits = random_pan_digits("5", 16);
    let ta = vault
        .tokenize(&a, &pan(&digits), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("a");
    let tb = vault
        .tokenize(&b, &pan(&digits), expiry(), TokenType::Reusable, None, at(1))
        .await
        .expect("b");
    assert_ne!(ta.fingerprint, tb.fingerprint, "fingerprints are keyed per tenant");
    assert_eq!(tb.seen_before, None, "one tenant's cards say nothing about another's");
    assert!(matches!(vault.detokenize(&b, &ta.id, at(2)).await, Err(VaultError::UnknownToken)));
    assert!(matches!(
        vault.detokenize(&a, &ivrpay_store::TokenId::random(), at(2)).await,
        Err(VaultError::UnknownToken)
    ));

    let short = vault
        .tokenize(&a, &pan(&digits), expiry(), TokenType::OneTime, Some(at(100)), at(1))
        .await
        .expect("short-lived");
    assert!(vault.detokenize(&a, &short.id, at(99)).await.is_ok());
    assert!(matches!(
        vault.detokenize(&a, &short.id, at(100)).await,
        Err(VaultError::TokenExpired)
    ));
}
