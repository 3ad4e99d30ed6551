-- Which ivrpay node carried the call: after a crash or a restart, a node ends the calls it
-- left open (their media died with it) without touching other nodes' calls.
ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX calls_open_by_node ON calls (tenant_id, node) WHERE ended_at_ms IS NULL;
