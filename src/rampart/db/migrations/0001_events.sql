-- Events: one row per published event; event_id is the idempotency key.
CREATE TABLE rampart.events (
    event_id    uuid        PRIMARY KEY,
    source      text        NOT NULL CHECK (source ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    type        text        NOT NULL CHECK (type ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    occurred_at timestamptz NOT NULL,
    payload     jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Keyset pagination over (occurred_at, event_id), unfiltered and time-windowed; INCLUDE (type) lets the
-- stats query (count per type per bucket over a window) run as an index-only scan.
CREATE INDEX events_occurred_at_event_id_idx ON rampart.events (occurred_at, event_id) INCLUDE (type);
-- Filtered listings: equality on source or type, then the same keyset order.
CREATE INDEX events_source_occurred_at_event_id_idx ON rampart.events (source, occurred_at, event_id);
CREATE INDEX events_type_occurred_at_event_id_idx ON rampart.events (type, occurred_at, event_id);
-- Ingest lag and freshness (rampart status, monitoring).
CREATE INDEX events_received_at_idx ON rampart.events (received_at);

GRANT USAGE ON SCHEMA rampart TO rampart_ingest, rampart_api;
-- Ingest: insert the client-supplied columns only (received_at is always the database's clock), and read
-- event_id, which ON CONFLICT (event_id) needs to find the conflicting row. Nothing else: no payload, no
-- RETURNING (the handler counts new rows from the statement's row count).
GRANT INSERT (event_id, source, type, occurred_at, payload) ON rampart.events TO rampart_ingest;
GRANT SELECT (event_id) ON rampart.events TO rampart_ingest;
-- API: read only.
GRANT SELECT ON rampart.events TO rampart_api;
