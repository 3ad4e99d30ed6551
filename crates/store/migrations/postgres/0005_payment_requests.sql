-- Payment requests for IVR self-service: a reference is unique only among the requests that
-- can still be paid (open, or claimed by the call paying it), so a short numeric reference
-- is used again once its request is paid, cancelled or expired; a request records the call
-- that claimed it and the session that paid it.
ALTER TABLE payment_requests DROP CONSTRAINT payment_requests_tenant_id_reference_key;
ALTER TABLE payment_requests ADD COLUMN session_id TEXT REFERENCES payment_sessions (id);
ALTER TABLE payment_requests ADD COLUMN call_id TEXT;
CREATE UNIQUE INDEX payment_requests_live_reference ON payment_requests (tenant_id, reference)
    WHERE status IN ('open', 'claimed');
