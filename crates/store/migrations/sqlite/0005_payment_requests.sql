-- Payment requests for IVR self-service (the table of 0001, unused until now, rebuilt):
-- a reference is unique only among the requests that can still be paid (open, or claimed
-- by the call paying it), so a short numeric reference is used again once its request is
-- paid, cancelled or expired; a request records the call that claimed it and the session
-- that paid it.
CREATE TABLE payment_requests_0005 (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    reference     TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency      TEXT NOT NULL,
    description   TEXT,
    customer_ref  TEXT,
    status        TEXT NOT NULL,
    payment_id    TEXT REFERENCES payments (id),
    session_id    TEXT REFERENCES payment_sessions (id),
    call_id       TEXT,
    expires_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
INSERT INTO payment_requests_0005 (id, tenant_id, reference, amount_minor, currency,
    description, customer_ref, status, payment_id, expires_at_ms, created_at_ms, updated_at_ms)
SELECT id, tenant_id, reference, amount_minor, currency, description, customer_ref, status,
    payment_id, expires_at_ms, created_at_ms, updated_at_ms
FROM payment_requests;
DROP TABLE payment_requests;
ALTER TABLE payment_requests_0005 RENAME TO payment_requests;
CREATE UNIQUE INDEX payment_requests_live_reference ON payment_requests (tenant_id, reference)
    WHERE status IN ('open', 'claimed');
