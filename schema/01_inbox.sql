-- The SQL landing queue: clients INSERT or COPY raw CloudTrail JSON here.
--
-- The background worker claims rows with FOR UPDATE SKIP LOCKED, turns them
-- into events and deletes them in the same transaction, so a crash loses or
-- duplicates nothing.  A statement trigger wakes the worker when the
-- inserting transaction commits, so ingestion starts at once.

CREATE TABLE lambda_detect.inbox (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text,
    payload     jsonb       NOT NULL
);

COMMENT ON TABLE lambda_detect.inbox IS
    'Landing queue of raw CloudTrail JSON (a record, a log file body, an array, or an EventBridge event); drained by the worker or ingest_now()';
COMMENT ON COLUMN lambda_detect.inbox.id IS 'Arrival order; the worker drains in this order';
COMMENT ON SEQUENCE lambda_detect.inbox_id_seq IS 'Ids of inbox rows';
COMMENT ON COLUMN lambda_detect.inbox.received_at IS 'When the row was inserted';
COMMENT ON COLUMN lambda_detect.inbox.source IS 'Free-form label of where the payload came from (kept on dead letters)';
COMMENT ON COLUMN lambda_detect.inbox.payload IS 'The CloudTrail JSON as received';

CREATE FUNCTION lambda_detect.wake_worker_at_commit()
RETURNS trigger
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_wake_worker_at_commit';

COMMENT ON FUNCTION lambda_detect.wake_worker_at_commit() IS
    'Statement trigger function: sets the ingest worker''s latch when the inserting transaction commits';

CREATE TRIGGER inbox_wake_worker
    AFTER INSERT ON lambda_detect.inbox
    FOR EACH STATEMENT
    EXECUTE FUNCTION lambda_detect.wake_worker_at_commit();

COMMENT ON TRIGGER inbox_wake_worker ON lambda_detect.inbox IS
    'Wakes the background worker when rows are committed to the inbox';
