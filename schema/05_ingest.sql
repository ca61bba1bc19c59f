-- SQL twins of the worker's background actions, and its heartbeat.

CREATE FUNCTION lambda_detect.ingest_now(
    OUT inbox_rows integer,
    OUT files      integer,
    OUT records    integer,
    OUT events     integer,
    OUT duplicates integer,
    OUT skipped    integer,
    OUT errors     integer)
RETURNS record
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_ingest_now';

COMMENT ON FUNCTION lambda_detect.ingest_now() IS
    'Drains the inbox and scans lambda_detect.inbox_dir (when set) once, in the calling transaction, exactly as the worker does; returns what it did.  SECURITY DEFINER: EXECUTE is the only grant a caller needs';

CREATE FUNCTION lambda_detect.worker_status(
    OUT pid                 integer,
    OUT database            text,
    OUT started_at          timestamptz,
    OUT state               text,
    OUT last_activity_at    timestamptz,
    OUT last_ingest_at      timestamptz,
    OUT last_scan_at        timestamptz,
    OUT last_rule_run_at    timestamptz,
    OUT batches             bigint,
    OUT events              bigint,
    OUT errors              bigint,
    OUT last_error          text,
    OUT last_error_at       timestamptz)
RETURNS record
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_worker_status';

COMMENT ON FUNCTION lambda_detect.worker_status() IS
    'Heartbeat of the background worker from shared memory: pid (NULL when not running), state, last activity, counters and last error';

CREATE VIEW lambda_detect.worker_health AS
    SELECT * FROM lambda_detect.worker_status();

COMMENT ON VIEW lambda_detect.worker_health IS
    'The background worker''s heartbeat as a one-row view (see worker_status())';
