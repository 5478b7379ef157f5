-- The database as the last guard: what the validator (rampart.events) promises about every row, held by PostgreSQL
-- too, so a row that bypassed it (a bug, another writer with the ingest role) cannot break readers.
--
-- Added NOT VALID: PostgreSQL checks every new row at once, and the ACCESS EXCLUSIVE lock lasts only for this
-- catalogue change instead of a scan of the whole table. 0003 checks the rows already stored, in its own
-- transaction, under a lock that lets inserts and reads go on. lock_timeout: never queue behind a long transaction
-- (and make every reader queue behind us); the migration fails instead and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE rampart.events
    -- occurred_at: not before 2000-01-01 and at most 5 minutes ahead of the clock that validated it. received_at
    -- is the insert's own clock, which runs after validation; one more minute absorbs skew between the two clocks.
    ADD CONSTRAINT events_occurred_at_window CHECK (
        occurred_at >= timestamptz '2000-01-01 00:00:00+00'
        AND occurred_at <= received_at + interval '6 minutes'
    ) NOT VALID,
    -- payload: an object within the size bound. The validator allows 32 KiB of compact JSON; PostgreSQL's text
    -- form writes a space after every ':' and ',', which makes it at most 1.5 times longer: 48 KiB.
    ADD CONSTRAINT events_payload_bounded CHECK (
        jsonb_typeof(payload) = 'object'
        AND octet_length(payload::text) <= 49152
    ) NOT VALID;
-- source and type: their identifier pattern is a CHECK since 0001 (events_source_check, events_type_check), and
-- event_id is of type uuid, which admits nothing else.
