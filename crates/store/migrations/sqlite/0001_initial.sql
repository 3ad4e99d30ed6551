-- ivrpay schema, SQLite dialect. Keep in step with ../postgres/0001_initial.sql: same tables,
-- columns and meaning. Times are INTEGER milliseconds since the Unix epoch (UTC); money is
-- INTEGER minor units plus a three-letter ISO 4217 code; ids are prefixed text (`pay_…`).
-- No column anywhere holds a clear PAN or a CVV.

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    -- Last sequence number handed to this tenant's outbox (the feed's `since=` cursor).
    event_seq     INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    sip_call_id   TEXT NOT NULL,
    profile       TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    end_reason    TEXT
);
CREATE INDEX calls_by_tenant ON calls (tenant_id, started_at_ms);

CREATE TABLE payment_sessions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    call_id         TEXT REFERENCES calls (id),
    idempotency_key TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT NOT NULL,
    description     TEXT,
    customer_ref    TEXT,
    token_type      TEXT NOT NULL,
    status          TEXT NOT NULL,
    -- The result of a completed session: the token (amount 0) or the payment.
    token_id        TEXT,
    payment_id      TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);

-- Envelope encryption: each tenant's data keys, wrapped (AES-256-GCM) by a master key that
-- never enters the database. `purpose` is 'pan' (encrypts PANs) or 'fingerprint' (HMAC key).
CREATE TABLE data_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    purpose       TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL,
    active        BOOLEAN NOT NULL,
    created_at_ms INTEGER NOT NULL,
    rewrapped_at_ms INTEGER
);
CREATE UNIQUE INDEX data_keys_one_active ON data_keys (tenant_id, purpose) WHERE active;
CREATE INDEX data_keys_by_master ON data_keys (master_key_id);

-- The vault's rows. `pan_ciphertext` is nonce || AES-256-GCM(PAN) under `data_key_id`;
-- `fingerprint` is HMAC-SHA256 of the PAN under the tenant's fingerprint key. Brand and last
-- four are the most PCI DSS 3.4.1 lets anyone see.
CREATE TABLE tokens (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    data_key_id    TEXT NOT NULL REFERENCES data_keys (id),
    pan_ciphertext BLOB NOT NULL,
    fingerprint    BLOB NOT NULL,
    brand          TEXT NOT NULL,
    last4          TEXT NOT NULL,
    exp_month      INTEGER NOT NULL,
    exp_year       INTEGER NOT NULL,
    token_type     TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER,
    used_at_ms     INTEGER
);
CREATE INDEX tokens_by_fingerprint ON tokens (tenant_id, fingerprint, created_at_ms);

CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    idempotency_key TEXT NOT NULL,
    session_id      TEXT REFERENCES payment_sessions (id),
    call_id         TEXT REFERENCES calls (id),
    token_id        TEXT REFERENCES tokens (id),
    amount_minor    INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT NOT NULL,
    description     TEXT,
    brand           TEXT,
    last4           TEXT,
    gateway         TEXT NOT NULL,
    status          TEXT NOT NULL,
    gateway_ref     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    refunded_minor  INTEGER NOT NULL DEFAULT 0,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX payments_by_time ON payments (tenant_id, created_at_ms);

CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    idempotency_key TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    reason          TEXT,
    status          TEXT NOT NULL,
    gateway_ref     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX refunds_by_payment ON refunds (payment_id);

-- The transactional outbox and the per-tenant event feed in one table: rows are written in
-- the transaction of the state change they describe. `seq` increases by one per tenant with
-- no gaps in commit order (a desktop resumes with `since=seq`). `published_at_ms` is set by
-- the relay to the multi-node event bus.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    seq             INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    published_at_ms INTEGER,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX outbox_unpublished ON outbox (created_at_ms) WHERE published_at_ms IS NULL;

-- Downstream targets: webhook endpoints, CRM, receipts, ledger. `event_types` is a JSON array
-- of event types, or ["*"].
CREATE TABLE sinks (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    event_types   TEXT NOT NULL,
    config        TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX sinks_by_tenant ON sinks (tenant_id) WHERE enabled;

-- Webhook-specific state of a sink of kind 'webhook' (Standard Webhooks signing).
CREATE TABLE webhook_endpoints (
    sink_id            TEXT PRIMARY KEY REFERENCES sinks (id),
    url                TEXT NOT NULL,
    -- The signing secret, encrypted like a PAN (never in clear), and the data key used.
    secret_ciphertext  BLOB,
    data_key_id        TEXT REFERENCES data_keys (id),
    first_failure_at_ms INTEGER,
    disabled_reason    TEXT
);

-- One row per event per sink: the unit of retry, dead-lettering and replay.
CREATE TABLE deliveries (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    event_id           TEXT NOT NULL REFERENCES outbox (id),
    sink_id            TEXT NOT NULL REFERENCES sinks (id),
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    lease_until_ms     INTEGER,
    last_error         TEXT,
    last_status        INTEGER,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    UNIQUE (event_id, sink_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at_ms);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    -- SHA-256 of the secret; the secret itself is shown once and never stored.
    secret_hash   BLOB NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_used_at_ms INTEGER,
    revoked_at_ms INTEGER
);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT,
    at_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject_id TEXT,
    detail     TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Double-entry journal lines written by the ledger sink (one entry = balanced lines).
CREATE TABLE ledger_entries (
    id            TEXT NOT NULL,
    line          INTEGER NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    event_id      TEXT REFERENCES outbox (id),
    payment_id    TEXT REFERENCES payments (id),
    account       TEXT NOT NULL,
    debit_minor   INTEGER NOT NULL DEFAULT 0,
    credit_minor  INTEGER NOT NULL DEFAULT 0,
    currency      TEXT NOT NULL,
    posted_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (id, line)
);

-- Amounts owed, for IVR self-service: a caller keys a reference and pays it.
CREATE TABLE payment_requests (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    reference     TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency      TEXT NOT NULL,
    description   TEXT,
    customer_ref  TEXT,
    status        TEXT NOT NULL,
    payment_id    TEXT REFERENCES payments (id),
    expires_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, reference)
);
