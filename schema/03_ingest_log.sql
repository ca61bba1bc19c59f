-- What ingestion did: dead letters, the file ledger, and one row per batch.

CREATE TABLE lambda_detect.ingest_errors (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at       timestamptz NOT NULL DEFAULT now(),
    sqlstate          text        NOT NULL,
    reason            text        NOT NULL,
    message           text        NOT NULL,
    source            text,
    location          text,
    inbox_id          bigint,
    inbox_received_at timestamptz,
    payload           jsonb,
    raw_text          text
);

COMMENT ON TABLE lambda_detect.ingest_errors IS
    'Dead letters: every payload, record, line or file that could not be ingested, with the reason and the original (or its path)';
COMMENT ON COLUMN lambda_detect.ingest_errors.id IS 'Dead letter id';
COMMENT ON SEQUENCE lambda_detect.ingest_errors_id_seq IS 'Ids of ingest_errors';
COMMENT ON COLUMN lambda_detect.ingest_errors.occurred_at IS 'When ingestion rejected it';
COMMENT ON COLUMN lambda_detect.ingest_errors.sqlstate IS 'SQLSTATE-style class of the fault, e.g. 22P02 invalid JSON, 23502 missing field, 54000 over a limit';
COMMENT ON COLUMN lambda_detect.ingest_errors.reason IS 'Short machine-readable reason, e.g. invalid_json, missing_field, bad_timestamp, too_large';
COMMENT ON COLUMN lambda_detect.ingest_errors.message IS 'Human-readable explanation';
COMMENT ON COLUMN lambda_detect.ingest_errors.source IS 'The inbox row''s source label, or the file path';
COMMENT ON COLUMN lambda_detect.ingest_errors.location IS 'Where in the payload or file: Records[3], line 12, detail';
COMMENT ON COLUMN lambda_detect.ingest_errors.inbox_id IS 'The inbox row it came from, if any (that row is gone: this is its copy)';
COMMENT ON COLUMN lambda_detect.ingest_errors.inbox_received_at IS 'When that inbox row was received';
COMMENT ON COLUMN lambda_detect.ingest_errors.payload IS 'The rejected JSON (record or whole payload) when it was valid JSON';
COMMENT ON COLUMN lambda_detect.ingest_errors.raw_text IS 'The rejected text when it was not valid JSON (cut at lambda_detect.max_error_text; the file path locates the rest)';

CREATE INDEX ingest_errors_occurred_at_idx ON lambda_detect.ingest_errors (occurred_at);
COMMENT ON INDEX lambda_detect.ingest_errors_occurred_at_idx IS 'Recent dead letters first, and retention';

CREATE TABLE lambda_detect.ingested_files (
    path        text        PRIMARY KEY,
    size        bigint      NOT NULL,
    mtime       timestamptz NOT NULL,
    ctime       timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL,
    documents   integer     NOT NULL DEFAULT 0,
    events      integer     NOT NULL DEFAULT 0,
    duplicates  integer     NOT NULL DEFAULT 0,
    skipped     integer     NOT NULL DEFAULT 0,
    errors      integer     NOT NULL DEFAULT 0,
    note        text,
    CONSTRAINT ingested_files_status_check CHECK (status IN ('ingested', 'skipped', 'error'))
);

COMMENT ON TABLE lambda_detect.ingested_files IS
    'Ledger of files read below lambda_detect.inbox_dir: a file is read again only when its size or mtime changes (files are never moved or deleted)';
COMMENT ON COLUMN lambda_detect.ingested_files.path IS 'Absolute path of the file';
COMMENT ON COLUMN lambda_detect.ingested_files.size IS 'Size in bytes when it was read';
COMMENT ON COLUMN lambda_detect.ingested_files.mtime IS 'Modification time when it was read';
COMMENT ON COLUMN lambda_detect.ingested_files.ctime IS 'Status change time when it was read; a file that failed is retried when this changes (e.g. after chmod)';
COMMENT ON COLUMN lambda_detect.ingested_files.ingested_at IS 'When it was read';
COMMENT ON COLUMN lambda_detect.ingested_files.status IS 'ingested (events stored), skipped (nothing to store, e.g. a digest file) or error (see ingest_errors)';
COMMENT ON COLUMN lambda_detect.ingested_files.documents IS 'JSON documents in the file (1, or one per line for JSON lines)';
COMMENT ON COLUMN lambda_detect.ingested_files.events IS 'Events newly stored from the file';
COMMENT ON COLUMN lambda_detect.ingested_files.duplicates IS 'Records whose eventID was already stored';
COMMENT ON COLUMN lambda_detect.ingested_files.skipped IS 'Records or documents skipped with a counted reason (digest, Insight, empty)';
COMMENT ON COLUMN lambda_detect.ingested_files.errors IS 'Dead letters written for the file';
COMMENT ON COLUMN lambda_detect.ingested_files.note IS 'Why the file was skipped or failed (e.g. a symbolic link, a truncated gzip stream)';

CREATE TABLE lambda_detect.ingest_runs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    origin          text        NOT NULL,
    kind            text        NOT NULL,
    inbox_rows      integer     NOT NULL DEFAULT 0,
    files           integer     NOT NULL DEFAULT 0,
    records         integer     NOT NULL DEFAULT 0,
    events          integer     NOT NULL DEFAULT 0,
    duplicates      integer     NOT NULL DEFAULT 0,
    candidates      integer     NOT NULL DEFAULT 0,
    skipped         integer     NOT NULL DEFAULT 0,
    errors          integer     NOT NULL DEFAULT 0,
    skipped_reasons jsonb,
    CONSTRAINT ingest_runs_origin_check CHECK (origin IN ('worker', 'ingest_now')),
    CONSTRAINT ingest_runs_kind_check CHECK (kind IN ('inbox', 'files'))
);

COMMENT ON TABLE lambda_detect.ingest_runs IS
    'One row per ingestion batch that found work: what it read, stored, skipped and rejected';
COMMENT ON COLUMN lambda_detect.ingest_runs.id IS 'Batch id, increasing';
COMMENT ON SEQUENCE lambda_detect.ingest_runs_id_seq IS 'Ids of ingest_runs';
COMMENT ON COLUMN lambda_detect.ingest_runs.started_at IS 'When the batch started';
COMMENT ON COLUMN lambda_detect.ingest_runs.finished_at IS 'When the batch finished (duration = finished_at - started_at)';
COMMENT ON COLUMN lambda_detect.ingest_runs.origin IS 'worker (the background worker) or ingest_now (a SQL call)';
COMMENT ON COLUMN lambda_detect.ingest_runs.kind IS 'inbox (rows of lambda_detect.inbox) or files (files below inbox_dir)';
COMMENT ON COLUMN lambda_detect.ingest_runs.inbox_rows IS 'Inbox rows consumed';
COMMENT ON COLUMN lambda_detect.ingest_runs.files IS 'Files read';
COMMENT ON COLUMN lambda_detect.ingest_runs.records IS 'CloudTrail records found (stored + duplicates)';
COMMENT ON COLUMN lambda_detect.ingest_runs.events IS 'Events newly stored';
COMMENT ON COLUMN lambda_detect.ingest_runs.duplicates IS 'Records whose eventID was already stored';
COMMENT ON COLUMN lambda_detect.ingest_runs.candidates IS 'Newly stored events that are rule candidates (they trigger a rule run)';
COMMENT ON COLUMN lambda_detect.ingest_runs.skipped IS 'Documents or records skipped with a counted reason';
COMMENT ON COLUMN lambda_detect.ingest_runs.errors IS 'Dead letters written';
COMMENT ON COLUMN lambda_detect.ingest_runs.skipped_reasons IS 'Skips by reason, e.g. {"digest_file": 1}';

CREATE INDEX ingest_runs_started_at_idx ON lambda_detect.ingest_runs (started_at);
COMMENT ON INDEX lambda_detect.ingest_runs_started_at_idx IS 'Recent batches first, and retention';
