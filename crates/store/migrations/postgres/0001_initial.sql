-- ivrpay schema, PostgreSQL dialect. Keep in step with ../sqlite/0001_initial.sql: same tables,
-- columns and meaning. Times are BIGINT milliseconds since the Unix epoch (UTC); money is
-- BIGINT minor units plus a three-letter ISO 4217 code; ids are prefixed text (`pay_…`).
-- No column anywhere holds a clear PAN or a CVV.

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    -- Last sequence number handed to this tenant's outbox (the feed's `since=` cursor).
    event_seq     BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE calls (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    sip_call_id   TEXT NOT NULL,
    profile       TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms   BIGINT,
    end_reason    TEXT
);
CREATE INDEX calls_by_tenant ON calls (tenant_id, started_at_ms);

CREATE TABLE payment_sessions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    call_id         TEXT REFERENCES calls (id),
    idempotency_key TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT NOT NULL,
    description     TEXT,
    customer_ref    TEXT,
    token_type      TEXT NOT NULL,
    status          TEXT NOT NULL,
    -- The result of a completed session: the token (amount 0) or the payment.
    token_id        TEXT,
    payment_id      TEXT,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);

-- Envelope encryption: each tenant's data keys, wrapped (AES-256-GCM) by a master key that
-- never enters the database. `purpose` is 'pan' (encrypts PANs) or 'fingerprint' (HMAC key).
CREATE TABLE data_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    purpose       TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped_key   BYTEA NOT NULL,
    active        BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    rewrapped_at_ms BIGINT
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
    pan_ciphertext BYTEA NOT NULL,
    fingerprint    BYTEA NOT NULL,
    brand          TEXT NOT NULL,
    last4          TEXT NOT NULL,
    exp_month      BIGINT NOT NULL,
    exp_year       BIGINT NOT NULL,
    token_type     TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT,
    used_at_ms     BIGINT
);
CREATE INDEX tokens_by_fingerprint ON tokens (tenant_id, fingerprint, created_at_ms);

CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    idempotency_key TEXT NOT NULL,
    session_id      TEXT REFERENCES payment_sessions (id),
    call_id         TEXT REFERENCES calls (id),
    token_id        TEXT REFERENCES tokens (id),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT NOT NULL,
    description     TEXT,
    brand           TEXT,
    last4           TEXT,
    gateway         TEXT NOT NULL,
    status          TEXT NOT NULL,
    gateway_ref     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    refunded_minor  BIGINT NOT NULL DEFAULT 0,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX payments_by_time ON payments (tenant_id, created_at_ms);

CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    idempotency_key TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    reason          TEXT,
    status          TEXT NOT NULL,
    gateway_ref     TEXT,
    error_code      TEXT,
    error_message   TEXT,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
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
    seq             BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    payload         JSONB NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    published_at_ms BIGINT,
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
    event_types   JSONB NOT NULL,
    config        JSONB NOT NULL,
    enabled       BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX sinks_by_tenant ON sinks (tenant_id) WHERE enabled;

-- Webhook-specific state of a sink of kind 'webhook' (Standard Webhooks signing).
CREATE TABLE webhook_endpoints (
    sink_id            TEXT PRIMARY KEY REFERENCES sinks (id),
    url                TEXT NOT NULL,
    -- The signing secret, encrypted like a PAN (never in clear), and the data key used.
    secret_ciphertext  BYTEA,
    data_key_id        TEXT REFERENCES data_keys (id),
    first_failure_at_ms BIGINT,
    disabled_reason    TEXT
);

-- One row per event per sink: the unit of retry, dead-lettering and replay.
CREATE TABLE deliveries (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    event_id           TEXT NOT NULL REFERENCES outbox (id),
    sink_id            TEXT NOT NULL REFERENCES sinks (id),
    status             TEXT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    lease_until_ms     BIGINT,
    last_error         TEXT,
    last_status        BIGINT,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL,
    UNIQUE (event_id, sink_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at_ms);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    -- SHA-256 of the secret; the secret itself is shown once and never stored.
    secret_hash   BYTEA NOT NULL UNIQUE,
    scopes        JSONB NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT,
    revoked_at_ms BIGINT
);

CREATE TABLE audit_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  TEXT,
    at_ms      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject_id TEXT,
    detail     JSONB NOT NULL
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Double-entry journal lines written by the ledger sink (one entry = balanced lines).
CREATE TABLE ledger_entries (
    id            TEXT NOT NULL,
    line          BIGINT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    event_id      TEXT REFERENCES outbox (id),
    payment_id    TEXT REFERENCES payments (id),
    account       TEXT NOT NULL,
    debit_minor   BIGINT NOT NULL DEFAULT 0,
    credit_minor  BIGINT NOT NULL DEFAULT 0,
    currency      TEXT NOT NULL,
    posted_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (id, line)
);

-- Amounts owed, for IVR self-service: a caller keys a reference and pays it.
CREATE TABLE payment_requests (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    reference     TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency      TEXT NOT NULL,
    description   TEXT,
    customer_ref  TEXT,
    status        TEXT NOT NULL,
    payment_id    TEXT REFERENCES payments (id),
    expires_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, reference)
);
