-- The agent desktop's view of calls: who has the call, when it was answered, and the
-- customer-facing numbers the B2BUA saw (personal data, never logged).
ALTER TABLE calls ADD COLUMN agent TEXT;
ALTER TABLE calls ADD COLUMN answered_at_ms BIGINT;
ALTER TABLE calls ADD COLUMN caller TEXT;
ALTER TABLE calls ADD COLUMN called TEXT;
CREATE INDEX calls_active ON calls (tenant_id, ended_at_ms, agent);
