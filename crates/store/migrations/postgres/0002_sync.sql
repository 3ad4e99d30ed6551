-- Downstream sync (crates/sync), PostgreSQL dialect. Keep in step with ../sqlite/0002_sync.sql.

-- Per-payment ordering: a delivery waits while an earlier delivery (by the tenant's event
-- seq) of the same order key to the same sink is pending or sending. The key is the payment
-- id for payment, refund and session events, the subject id otherwise (see events.rs).
ALTER TABLE deliveries ADD COLUMN order_key TEXT;
ALTER TABLE deliveries ADD COLUMN event_seq BIGINT;
CREATE INDEX deliveries_in_order ON deliveries (sink_id, order_key, event_seq)
    WHERE order_key IS NOT NULL;
CREATE INDEX deliveries_by_sink ON deliveries (sink_id, status, created_at_ms);
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, status, created_at_ms);

-- Every attempt of every delivery: what was sent where and how it ended. `response_body` is
-- the first kilobytes of the receiver's answer; `error` never holds payload data.
CREATE TABLE delivery_attempts (
    id              BIGSERIAL PRIMARY KEY,
    delivery_id     TEXT NOT NULL REFERENCES deliveries (id),
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    attempt         BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    response_status BIGINT,
    response_body   TEXT,
    error           TEXT,
    started_at_ms   BIGINT NOT NULL,
    ended_at_ms     BIGINT NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);

-- Signing secrets of webhook endpoints (`whsec_…`). During a rotation an endpoint has two
-- live secrets and every request carries both signatures until the old one expires.
CREATE TABLE webhook_secrets (
    sink_id       TEXT NOT NULL REFERENCES sinks (id),
    secret        TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    PRIMARY KEY (sink_id, secret)
);

-- A journal entry is posted once per event, however often the ledger sink is redelivered.
CREATE UNIQUE INDEX ledger_entries_once ON ledger_entries (event_id, line);
CREATE INDEX ledger_entries_by_time ON ledger_entries (tenant_id, posted_at_ms);

-- The settlement report reads payment.succeeded and refund.succeeded events of a day.
CREATE INDEX outbox_by_type ON outbox (tenant_id, event_type, created_at_ms);
