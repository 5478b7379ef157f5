-- Check the rows stored before 0002 against its constraints (VALIDATE CONSTRAINT takes SHARE UPDATE EXCLUSIVE:
-- inserts and reads go on while it scans).
--
-- A row that breaks them (one stored in year 176400 from "1764000229" before occurred_at was RFC 3339 only) would
-- make the validation fail and every API page that includes it answer 500. It is moved, not deleted, to
-- rampart.events_quarantine with the reason, for an operator to look at; no application role can read it.
CREATE TABLE rampart.events_quarantine (
    event_id       uuid        NOT NULL,
    source         text        NOT NULL,
    type           text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    payload        jsonb       NOT NULL,
    received_at    timestamptz NOT NULL,
    reason         text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

WITH moved AS (
    DELETE FROM rampart.events
    WHERE NOT (occurred_at >= timestamptz '2000-01-01 00:00:00+00' AND occurred_at <= received_at + interval '6 minutes')
       OR NOT (jsonb_typeof(payload) = 'object' AND octet_length(payload::text) <= 49152)
    RETURNING *
)
INSERT INTO rampart.events_quarantine (event_id, source, type, occurred_at, payload, received_at, reason)
SELECT event_id, source, type, occurred_at, payload, received_at,
       CASE WHEN occurred_at >= timestamptz '2000-01-01 00:00:00+00'
                 AND occurred_at <= received_at + interval '6 minutes'
            THEN 'events_payload_bounded' ELSE 'events_occurred_at_window' END
FROM moved;

ALTER TABLE rampart.events VALIDATE CONSTRAINT events_occurred_at_window;
ALTER TABLE rampart.events VALIDATE CONSTRAINT events_payload_bounded;
