-- Partitions of events and retention (version 1.1).
--
-- maintain() is the one entry point: it makes the partitions of events
-- ahead of time, drains events_default into partitions, drops partitions
-- past the events retention and deletes expired rows of the other tables,
-- a bounded number of steps per call, each step small, and records every
-- step in maintenance_log.  The worker calls it every
-- lambda_detect.maintenance_interval; an admin may call it too.
--
-- Locks: a partition is made as a table of its own, filled with the rows of
-- its range from events_default, and attached, and a partition is dropped,
-- each under an ACCESS EXCLUSIVE lock on events held for that one step (a
-- lesser lock would let a statement planned before the step run after it
-- and miss the moved rows: see create_event_partition).  maintain() runs
-- with lock_timeout = 500ms: rather than queue ingestion behind it for
-- long, a step that cannot get its lock is skipped (and logged) and retried
-- at the next call.
--
-- The settings live in storage_settings (at most one row; none: defaults),
-- like investigation_settings, so that they are per database, transactional,
-- kept by pg_dump and changed by the admin duty without superuser.

CREATE TABLE lambda_detect.storage_settings (
    singleton                boolean  NOT NULL DEFAULT true PRIMARY KEY,
    partition_interval       text     NOT NULL DEFAULT 'day',
    partitions_ahead         integer  NOT NULL DEFAULT 3,
    events_retention         interval DEFAULT '90 days',
    alerts_retention         interval DEFAULT '365 days',
    rule_runs_retention      interval DEFAULT '90 days',
    ingest_runs_retention    interval DEFAULT '90 days',
    ingest_errors_retention  interval DEFAULT '90 days',
    ingested_files_retention interval,
    step_rows                integer  NOT NULL DEFAULT 10000,
    CONSTRAINT storage_settings_singleton_check CHECK (singleton),
    CONSTRAINT storage_settings_partition_interval_check
        CHECK (partition_interval IN ('day', 'week', 'month')),
    CONSTRAINT storage_settings_partitions_ahead_check CHECK (partitions_ahead BETWEEN 1 AND 60),
    CONSTRAINT storage_settings_retention_check CHECK (
        COALESCE(events_retention, interval '1 day') >= interval '1 day'
        AND COALESCE(alerts_retention, interval '1 day') >= interval '1 day'
        AND COALESCE(rule_runs_retention, interval '1 day') >= interval '1 day'
        AND COALESCE(ingest_runs_retention, interval '1 day') >= interval '1 day'
        AND COALESCE(ingest_errors_retention, interval '1 day') >= interval '1 day'
        AND COALESCE(ingested_files_retention, interval '1 day') >= interval '1 day'),
    -- a file forgotten while its events are kept would be read again for nothing
    CONSTRAINT storage_settings_ingested_files_retention_check CHECK (
        ingested_files_retention IS NULL OR events_retention IS NULL
        OR ingested_files_retention >= events_retention),
    CONSTRAINT storage_settings_step_rows_check CHECK (step_rows BETWEEN 100 AND 1000000)
);

COMMENT ON TABLE lambda_detect.storage_settings IS
    'Partitioning and retention settings used by maintain(): at most one row; with none, the defaults of the columns apply';
COMMENT ON COLUMN lambda_detect.storage_settings.singleton IS 'Always true: the key that keeps the table to one row';
COMMENT ON COLUMN lambda_detect.storage_settings.partition_interval IS 'Span of the partitions of events made from now on: day (default), week (ISO, from Monday) or month, in UTC; existing partitions keep theirs';
COMMENT ON COLUMN lambda_detect.storage_settings.partitions_ahead IS 'How many partitions beyond the current one exist in advance (1-60, default 3); events dated later wait in events_default';
COMMENT ON COLUMN lambda_detect.storage_settings.events_retention IS 'Events older than this (by event time) are removed, a whole partition at a time; NULL: kept forever; default 90 days';
COMMENT ON COLUMN lambda_detect.storage_settings.alerts_retention IS 'Closed alerts closed longer ago than this are removed, with their alert_occurrences; open and acknowledged alerts are kept; NULL: kept forever; default 365 days';
COMMENT ON COLUMN lambda_detect.storage_settings.rule_runs_retention IS 'rule_runs and maintenance_log rows older than this are removed (the newest watermark of each rule is always kept); NULL: kept forever; default 90 days';
COMMENT ON COLUMN lambda_detect.storage_settings.ingest_runs_retention IS 'ingest_runs rows older than this are removed; NULL: kept forever; default 90 days';
COMMENT ON COLUMN lambda_detect.storage_settings.ingest_errors_retention IS 'Dead letters (ingest_errors) older than this are removed; NULL: kept forever; default 90 days';
COMMENT ON COLUMN lambda_detect.storage_settings.ingested_files_retention IS 'File ledger rows older than this are removed; a file still in inbox_dir afterwards is read again (its events are deduplicated); at least events_retention; NULL (default): kept forever';
COMMENT ON COLUMN lambda_detect.storage_settings.step_rows IS 'Most rows one step deletes or moves from events_default (100-1000000, default 10000)';

SELECT pg_catalog.pg_extension_config_dump('lambda_detect.storage_settings', '');

CREATE FUNCTION lambda_detect.effective_storage_settings()
RETURNS lambda_detect.storage_settings
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- the row is built from named columns, not read as a whole-row value:
    -- on Citus, where storage_settings is a reference table, a whole-row
    -- reference takes the shard's row type (docs/scaling.md, item 7)
    SELECT COALESCE(
        (SELECT ROW(s.singleton, s.partition_interval, s.partitions_ahead, s.events_retention,
                    s.alerts_retention, s.rule_runs_retention, s.ingest_runs_retention,
                    s.ingest_errors_retention, s.ingested_files_retention,
                    s.step_rows)::lambda_detect.storage_settings
           FROM lambda_detect.storage_settings s),
        ROW(true, 'day', 3, interval '90 days', interval '365 days', interval '90 days',
            interval '90 days', interval '90 days', NULL::interval, 10000)::lambda_detect.storage_settings)
$$;

COMMENT ON FUNCTION lambda_detect.effective_storage_settings() IS
    'The storage settings in effect: the row of storage_settings, or the defaults when it has none';

CREATE TABLE lambda_detect.maintenance_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    action      text        NOT NULL,
    target      text        NOT NULL,
    rows        bigint      NOT NULL DEFAULT 0,
    range_start timestamptz,
    range_end   timestamptz,
    detail      text,
    pid         integer     NOT NULL DEFAULT pg_backend_pid(),
    CONSTRAINT maintenance_log_action_check CHECK (action IN (
        'create_partition', 'drop_partition', 'delete_expired', 'skipped'))
);

COMMENT ON TABLE lambda_detect.maintenance_log IS
    'What maintain() did: partitions made (with the rows moved into them from events_default) and dropped, expired rows deleted, steps skipped';
COMMENT ON COLUMN lambda_detect.maintenance_log.id IS 'Entry id, increasing';
COMMENT ON SEQUENCE lambda_detect.maintenance_log_id_seq IS 'Ids of maintenance_log';
COMMENT ON COLUMN lambda_detect.maintenance_log.logged_at IS 'When the step finished';
COMMENT ON COLUMN lambda_detect.maintenance_log.action IS 'create_partition, drop_partition, delete_expired or skipped (a lock was not available: retried at the next call)';
COMMENT ON COLUMN lambda_detect.maintenance_log.target IS 'The partition or table acted on';
COMMENT ON COLUMN lambda_detect.maintenance_log.rows IS 'create_partition: rows moved in from events_default; drop_partition: rows it held (the planner''s estimate, as counting would read it all); delete_expired: rows deleted';
COMMENT ON COLUMN lambda_detect.maintenance_log.range_start IS 'Partitions: start of the event-time range (inclusive)';
COMMENT ON COLUMN lambda_detect.maintenance_log.range_end IS 'Partitions: end of the event-time range (exclusive)';
COMMENT ON COLUMN lambda_detect.maintenance_log.detail IS 'More about the step (the retention that applied, the error of a skipped step)';
COMMENT ON COLUMN lambda_detect.maintenance_log.pid IS 'Process id of the session that took the step (the worker''s, or an admin''s)';

CREATE INDEX maintenance_log_logged_at_idx ON lambda_detect.maintenance_log (logged_at);
COMMENT ON INDEX lambda_detect.maintenance_log_logged_at_idx IS 'Recent steps first, and retention';

SELECT pg_catalog.pg_extension_config_dump('lambda_detect.maintenance_log', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('lambda_detect.maintenance_log', 'id')::pg_catalog.regclass, '');

-- What retention reads, by time.
CREATE INDEX rule_runs_started_at_idx ON lambda_detect.rule_runs (started_at);
COMMENT ON INDEX lambda_detect.rule_runs_started_at_idx IS 'Retention of rule runs';
CREATE INDEX ingested_files_ingested_at_idx ON lambda_detect.ingested_files (ingested_at);
COMMENT ON INDEX lambda_detect.ingested_files_ingested_at_idx IS 'Retention of the file ledger';
CREATE INDEX alerts_closed_idx ON lambda_detect.alerts (status_changed_at) WHERE status = 'closed';
COMMENT ON INDEX lambda_detect.alerts_closed_idx IS 'Retention of closed alerts';
CREATE INDEX rule_candidates_event_time_idx ON lambda_detect.rule_candidates (event_time);
COMMENT ON INDEX lambda_detect.rule_candidates_event_time_idx IS 'Retention of the candidate log, with the events';
CREATE INDEX suppressed_matches_suppressed_at_idx ON lambda_detect.suppressed_matches (suppressed_at);
COMMENT ON INDEX lambda_detect.suppressed_matches_suppressed_at_idx IS 'Retention of suppressed matches, with the events they name';

-- ---------------------------------------------------------------------------
-- Partitions

-- The start of the period of the given span that holds t, in UTC.
CREATE FUNCTION lambda_detect.partition_period_start(t timestamptz, span text)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.timezone('UTC', pg_catalog.date_trunc(span, pg_catalog.timezone('UTC', t)))
$$;

COMMENT ON FUNCTION lambda_detect.partition_period_start(timestamptz, text) IS
    'Start (UTC) of the day, ISO week or month holding t: the lower bound of the partition made for t';

-- The next period's start after a period starting at p.
CREATE FUNCTION lambda_detect.partition_period_next(p timestamptz, span text)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.timezone('UTC', pg_catalog.timezone('UTC', p) + ('1 ' || span)::interval)
$$;

COMMENT ON FUNCTION lambda_detect.partition_period_next(timestamptz, text) IS
    'Start (UTC) of the period after the one starting at p: the upper bound of its partition';

-- The range of a partition of events.  Bounds are printed in the session's
-- DateStyle and TimeZone and read back the same way, which a DateStyle such
-- as SQL with a zone abbreviation PostgreSQL reads otherwise (IST) would
-- shift: both are fixed here.
CREATE FUNCTION lambda_detect.partition_range(part oid, OUT range_start timestamptz,
                                              OUT range_end timestamptz)
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
SET TimeZone = 'UTC'
AS $$
DECLARE
    bounds text[];
BEGIN
    SELECT pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
               '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$')
      INTO bounds
      FROM pg_catalog.pg_class c WHERE c.oid = part;
    range_start := bounds[1]::timestamptz;
    range_end := bounds[2]::timestamptz;
END;
$$;

COMMENT ON FUNCTION lambda_detect.partition_range(oid) IS
    'Event-time range of a partition of events (NULLs for the default partition or another kind of bound)';

-- A role reading the view needs EXECUTE on partition_range() as well.
CREATE VIEW lambda_detect.event_partitions WITH (security_invoker = true) AS
SELECT c.oid::pg_catalog.regclass AS partition,
       b.range_start,
       b.range_end,
       c.oid = p.partdefid AS is_default,
       GREATEST(c.reltuples, 0)::bigint AS estimated_rows,
       pg_catalog.pg_total_relation_size(c.oid) AS bytes
  FROM pg_catalog.pg_partitioned_table p
  JOIN pg_catalog.pg_inherits i ON i.inhparent = p.partrelid
  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL lambda_detect.partition_range(c.oid) b
 WHERE p.partrelid = 'lambda_detect.events'::pg_catalog.regclass;

COMMENT ON VIEW lambda_detect.event_partitions IS
    'The partitions of events: event-time range, the planner''s row estimate and size on disk (the default partition has no range)';
COMMENT ON COLUMN lambda_detect.event_partitions.partition IS 'The partition';
COMMENT ON COLUMN lambda_detect.event_partitions.range_start IS 'Start of its event-time range (inclusive); NULL for events_default';
COMMENT ON COLUMN lambda_detect.event_partitions.range_end IS 'End of its event-time range (exclusive); NULL for events_default';
COMMENT ON COLUMN lambda_detect.event_partitions.is_default IS 'Whether it is events_default';
COMMENT ON COLUMN lambda_detect.event_partitions.estimated_rows IS 'Rows, as the planner last estimated them (ANALYZE refreshes it)';
COMMENT ON COLUMN lambda_detect.event_partitions.bytes IS 'Size on disk with indexes and TOAST';

-- create_event_partition makes the partition holding t, if none does:
-- the period of the current partition_interval, narrowed to the gap between
-- its neighbours (after a change of interval), made as a table of its own,
-- filled with the rows of that range from events_default, then attached.
CREATE FUNCTION lambda_detect.create_event_partition(t timestamptz)
RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
SET TimeZone = 'UTC'
SET lock_timeout = '500ms'
SET deadlock_timeout = '100ms'
AS $$
DECLARE
    span    text := (lambda_detect.effective_storage_settings()).partition_interval;
    lo      timestamptz;
    hi      timestamptz;
    name    text;
    made    regclass;
    moved   bigint;
BEGIN
    IF t IS NULL OR NOT pg_catalog.isfinite(t) THEN
        RAISE EXCEPTION 'a partition needs a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Nothing may read or write events while the partition is attached.  A
    -- statement planned before the commit would not know the partition yet
    -- but could run after it: it would miss the rows moved out of
    -- events_default (a reader), or route a row to events_default that now
    -- belongs to the new partition and fail (an insert).  A statement that
    -- waits for this lock plans after the commit.  The lock comes first, so
    -- that two callers cannot both find the same gap.  It is waited for at
    -- most lock_timeout; deadlock_timeout is short so that a blocking
    -- autovacuum is cancelled before then, as PostgreSQL does for it.
    LOCK TABLE lambda_detect.events IN ACCESS EXCLUSIVE MODE;

    SELECT p.partition INTO made FROM lambda_detect.event_partitions p
     WHERE NOT p.is_default AND t >= p.range_start AND t < p.range_end;
    IF FOUND THEN
        RETURN made;
    END IF;

    lo := lambda_detect.partition_period_start(t, span);
    hi := lambda_detect.partition_period_next(lo, span);
    SELECT GREATEST(lo, pg_catalog.max(p.range_end)) INTO lo FROM lambda_detect.event_partitions p
     WHERE NOT p.is_default AND p.range_end <= t;
    lo := COALESCE(lo, lambda_detect.partition_period_start(t, span));
    SELECT LEAST(hi, pg_catalog.min(p.range_start)) INTO hi FROM lambda_detect.event_partitions p
     WHERE NOT p.is_default AND p.range_start > t;
    hi := COALESCE(hi, lambda_detect.partition_period_next(lambda_detect.partition_period_start(t, span), span));
    name := 'events_p' || pg_catalog.to_char(pg_catalog.timezone('UTC', lo), 'YYYYMMDD');
    -- rows stay whole in the partition up to a page (see events_default)
    EXECUTE pg_catalog.format(
        'CREATE TABLE lambda_detect.%I (LIKE lambda_detect.events INCLUDING DEFAULTS'
        ' INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)'
        ' WITH (toast_tuple_target = 8160)', name);
    -- the constraint spares ATTACH a scan of the new table
    EXECUTE pg_catalog.format(
        'ALTER TABLE lambda_detect.%I ADD CONSTRAINT %I CHECK (event_time >= %L AND event_time < %L)',
        name, name || '_range', lo, hi);
    EXECUTE pg_catalog.format(
        'WITH moved AS (DELETE FROM lambda_detect.events_default'
        '                WHERE event_time >= %L AND event_time < %L RETURNING *)'
        ' INSERT INTO lambda_detect.%I SELECT * FROM moved', lo, hi, name);
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXECUTE pg_catalog.format(
        'ALTER TABLE lambda_detect.events ATTACH PARTITION lambda_detect.%I FOR VALUES FROM (%L) TO (%L)',
        name, lo, hi);
    EXECUTE pg_catalog.format('ALTER TABLE lambda_detect.%I DROP CONSTRAINT %I', name, name || '_range');
    EXECUTE pg_catalog.format('REVOKE ALL ON lambda_detect.%I FROM PUBLIC', name);
    EXECUTE pg_catalog.format('COMMENT ON TABLE lambda_detect.%I IS %L', name,
        'Partition of lambda_detect.events made by lambda_detect.maintain()');

    INSERT INTO lambda_detect.maintenance_log (action, target, rows, range_start, range_end)
    VALUES ('create_partition', name, moved, lo, hi);
    RETURN pg_catalog.format('lambda_detect.%I', name)::regclass;
END;
$$;

COMMENT ON FUNCTION lambda_detect.create_event_partition(timestamptz) IS
    'Makes the partition of events holding time t (if none does), moving its rows out of events_default; returns it.  SECURITY DEFINER';

-- ---------------------------------------------------------------------------
-- maintain

-- delete_expired deletes up to step_rows rows of table matching condition
-- (SQL text over the table's columns) and logs how many; returns it.  It
-- names the rows by the table's primary key, not by ctid, which Citus
-- refuses in a distributed table's DELETE (docs/scaling.md, item 7).
CREATE FUNCTION lambda_detect.delete_expired(target regclass, condition text, step_rows integer,
                                             retention interval)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
SET TimeZone = 'UTC'
AS $$
DECLARE
    n   bigint;
    key text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
      INTO key
      FROM pg_catalog.pg_index i
     CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = target AND i.indisprimary;
    IF key IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', target
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    EXECUTE pg_catalog.format(
        'DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s WHERE %s LIMIT %s)',
        target, key, key, target, condition, step_rows);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        INSERT INTO lambda_detect.maintenance_log (action, target, rows, detail)
        VALUES ('delete_expired', target::text, n, 'older than ' || retention::text);
    END IF;
    RETURN n;
EXCEPTION WHEN lock_not_available THEN
    INSERT INTO lambda_detect.maintenance_log (action, target, detail)
    VALUES ('skipped', target::text, SQLERRM);
    RETURN -1;
END;
$$;

COMMENT ON FUNCTION lambda_detect.delete_expired(regclass, text, integer, interval) IS
    'Part of maintain(): deletes at most step_rows rows of a table that a condition marks expired, and logs the count; -1 (and a skipped entry) when a lock was not available';

-- The time before which every candidate ingested has been examined by
-- every enabled rule: the oldest of their watermarks (rule_runs.
-- complete_until, set by the worker's runs only).  -infinity while an
-- enabled rule has none yet; infinity when no rule is enabled.  Retention
-- never removes a candidate ingested after it: an old event delivered late
-- (a backfill of an archived trail) is kept until the rules have seen it.
CREATE FUNCTION lambda_detect.rules_examined_until()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.count(*) = 0 THEN 'infinity'::timestamptz
                WHEN pg_catalog.bool_or(w.until IS NULL) THEN '-infinity'::timestamptz
                ELSE pg_catalog.min(w.until) END
      FROM (SELECT (SELECT pg_catalog.max(x.complete_until) FROM lambda_detect.rule_runs x
                     WHERE x.rule = r.rule AND x.complete_until IS NOT NULL) AS until
              FROM lambda_detect.rules r WHERE r.enabled) w
$$;

COMMENT ON FUNCTION lambda_detect.rules_examined_until() IS
    'Time before which every enabled rule has examined every candidate ingested (the oldest of their watermarks); retention keeps candidates ingested after it';

CREATE FUNCTION lambda_detect.maintain(max_steps integer DEFAULT 20)
RETURNS TABLE (action text, target text, rows bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
SET TimeZone = 'UTC'
SET lock_timeout = '500ms'
SET deadlock_timeout = '100ms'
AS $$
DECLARE
    s        lambda_detect.storage_settings := lambda_detect.effective_storage_settings();
    now_     timestamptz := pg_catalog.now();
    horizon  timestamptz := now_ - s.events_retention;
    examined timestamptz := lambda_detect.rules_examined_until();
    first_id bigint := COALESCE((SELECT pg_catalog.max(l.id) FROM lambda_detect.maintenance_log l), 0);
    steps    integer := 0;
    ahead    timestamptz;
    waiting  timestamptz;
    p        record;
    t        record;
    n        bigint;
    -- LD_CANDIDATE_PREDICATE (src/lambda_detect.h), for a format() string
    candidate CONSTANT text :=
        'event_source = ''lambda.amazonaws.com'' AND (event_name LIKE ''AddPermission%'''
        ' OR event_name LIKE ''CreateFunctionUrlConfig%'' OR event_name LIKE ''UpdateFunctionUrlConfig%'')';
BEGIN
    IF max_steps IS NULL OR max_steps < 1 THEN
        RAISE EXCEPTION 'max_steps must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- 1. the current partition and partitions_ahead more
    ahead := lambda_detect.partition_period_start(now_, s.partition_interval);
    <<make_ahead>>
    FOR i IN 0 .. s.partitions_ahead LOOP
        EXIT WHEN steps >= max_steps;
        IF NOT EXISTS (SELECT 1 FROM lambda_detect.event_partitions e
                        WHERE NOT e.is_default AND ahead >= e.range_start AND ahead < e.range_end) THEN
            steps := steps + 1;
            BEGIN
                PERFORM lambda_detect.create_event_partition(ahead);
            EXCEPTION WHEN lock_not_available THEN
                INSERT INTO lambda_detect.maintenance_log (action, target, range_start, detail)
                VALUES ('skipped', 'create_partition', ahead, SQLERRM);
                EXIT make_ahead;
            END;
        END IF;
        ahead := lambda_detect.partition_period_next(ahead, s.partition_interval);
    END LOOP;

    -- 2. events_default: expired rows go (a candidate only once the rules
    -- have examined it), the others move into partitions; those dated after
    -- the last partition made ahead wait for their day
    IF horizon IS NOT NULL AND steps < max_steps THEN
        n := lambda_detect.delete_expired('lambda_detect.events_default',
                 pg_catalog.format('event_time < %L AND (ingested_at < %L OR NOT (%s))',
                                   horizon, examined, candidate),
                 s.step_rows, s.events_retention);
        steps := steps + (n <> 0)::integer;
    END IF;
    WHILE steps < max_steps LOOP
        SELECT pg_catalog.min(d.event_time) INTO waiting FROM lambda_detect.events_default d
         WHERE (horizon IS NULL OR d.event_time >= horizon) AND d.event_time < ahead;
        EXIT WHEN waiting IS NULL;
        steps := steps + 1;
        BEGIN
            PERFORM lambda_detect.create_event_partition(waiting);
        EXCEPTION WHEN lock_not_available THEN
            INSERT INTO lambda_detect.maintenance_log (action, target, range_start, detail)
            VALUES ('skipped', 'events_default', waiting, SQLERRM);
            EXIT;
        END;
    END LOOP;

    -- 3. partitions wholly past the events retention, unless they hold a
    -- candidate ingested after the rules last looked (tested for each
    -- partition in the loop: Citus refuses it as a correlated subquery)
    <<drop_expired>>
    FOR p IN
        SELECT e.partition, e.partition::text AS name, e.range_start, e.range_end, e.estimated_rows
          FROM lambda_detect.event_partitions e
         WHERE NOT e.is_default AND horizon IS NOT NULL AND e.range_end <= horizon
         ORDER BY e.range_start
    LOOP
        EXIT WHEN steps >= max_steps;
        CONTINUE WHEN EXISTS (SELECT 1 FROM lambda_detect.rule_candidates c
                               WHERE c.event_time >= p.range_start AND c.event_time < p.range_end
                                 AND c.ingested_at >= examined);
        steps := steps + 1;
        BEGIN
            EXECUTE pg_catalog.format('DROP TABLE %s', p.partition);
            INSERT INTO lambda_detect.maintenance_log (action, target, rows, range_start, range_end, detail)
            VALUES ('drop_partition', p.name, p.estimated_rows, p.range_start, p.range_end,
                    'older than ' || s.events_retention::text);
        EXCEPTION WHEN lock_not_available THEN
            INSERT INTO lambda_detect.maintenance_log (action, target, range_start, range_end, detail)
            VALUES ('skipped', p.name, p.range_start, p.range_end, SQLERRM);
            EXIT drop_expired;
        END;
    END LOOP;

    -- 4. the other tables, one bounded delete each, in this order; a table
    -- whose retention is NULL keeps its rows
    FOR t IN
        SELECT v.* FROM (VALUES
            (1, 'lambda_detect.rule_candidates',
             pg_catalog.format('event_time < %L AND ingested_at < %L', horizon, examined), s.events_retention),
            (2, 'lambda_detect.suppressed_matches',
             pg_catalog.format('suppressed_at < %L', horizon), s.events_retention),
            (3, 'lambda_detect.alerts', NULL, s.alerts_retention),
            -- the newest watermark of each rule says where its next run starts
            (4, 'lambda_detect.rule_runs',
             pg_catalog.format('started_at < %L AND status <> %L AND run_id NOT IN ('
                               'SELECT DISTINCT ON (w.rule) w.run_id FROM lambda_detect.rule_runs w'
                               ' WHERE w.complete_until IS NOT NULL'
                               ' ORDER BY w.rule, w.complete_until DESC)',
                               now_ - s.rule_runs_retention, 'running'), s.rule_runs_retention),
            (5, 'lambda_detect.maintenance_log',
             pg_catalog.format('logged_at < %L', now_ - s.rule_runs_retention), s.rule_runs_retention),
            (6, 'lambda_detect.ingest_runs',
             pg_catalog.format('started_at < %L', now_ - s.ingest_runs_retention), s.ingest_runs_retention),
            (7, 'lambda_detect.ingest_errors',
             pg_catalog.format('occurred_at < %L', now_ - s.ingest_errors_retention), s.ingest_errors_retention),
            (8, 'lambda_detect.ingested_files',
             pg_catalog.format('ingested_at < %L', now_ - s.ingested_files_retention), s.ingested_files_retention)
        ) AS v(ord, target, condition, retention)
        ORDER BY v.ord
    LOOP
        EXIT WHEN steps >= max_steps;
        CONTINUE WHEN t.retention IS NULL;
        IF t.condition IS NOT NULL THEN
            steps := steps + (lambda_detect.delete_expired(t.target::pg_catalog.regclass, t.condition,
                                  s.step_rows, t.retention) <> 0)::integer;
            CONTINUE;
        END IF;
        -- a closed alert goes with its occurrences, in one statement
        BEGIN
            WITH gone AS (
                DELETE FROM lambda_detect.alerts a
                 WHERE a.alert_id IN (SELECT x.alert_id FROM lambda_detect.alerts x
                                       WHERE x.status = 'closed'
                                         AND x.status_changed_at < now_ - s.alerts_retention
                                       ORDER BY x.status_changed_at LIMIT s.step_rows)
                RETURNING a.alert_id),
            folded AS (
                DELETE FROM lambda_detect.alert_occurrences o
                 WHERE o.alert_id IN (SELECT g.alert_id FROM gone g)
                RETURNING 1)
            SELECT (SELECT pg_catalog.count(*) FROM gone) INTO n;
            IF n > 0 THEN
                INSERT INTO lambda_detect.maintenance_log (action, target, rows, detail)
                VALUES ('delete_expired', 'lambda_detect.alerts', n,
                        'closed longer ago than ' || s.alerts_retention::text || ', with their occurrences');
                steps := steps + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            INSERT INTO lambda_detect.maintenance_log (action, target, detail)
            VALUES ('skipped', 'lambda_detect.alerts', SQLERRM);
            steps := steps + 1;
        END;
    END LOOP;

    RETURN QUERY
    SELECT l.action, l.target, l.rows FROM lambda_detect.maintenance_log l
     WHERE l.id > first_id AND l.pid = pg_catalog.pg_backend_pid() ORDER BY l.id;
END;
$$;

COMMENT ON FUNCTION lambda_detect.maintain(integer) IS
    'Storage upkeep in at most max_steps small steps: partitions of events made ahead, events_default drained, expired partitions dropped and expired rows deleted per storage_settings; returns the steps taken (also in maintenance_log).  SECURITY DEFINER; the worker calls it every lambda_detect.maintenance_interval';

REVOKE ALL ON lambda_detect.storage_settings, lambda_detect.maintenance_log,
              lambda_detect.event_partitions FROM PUBLIC;
REVOKE ALL ON SEQUENCE lambda_detect.maintenance_log_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION lambda_detect.effective_storage_settings(),
              lambda_detect.partition_period_start(timestamptz, text),
              lambda_detect.partition_period_next(timestamptz, text),
              lambda_detect.create_event_partition(timestamptz),
              lambda_detect.partition_range(oid),
              lambda_detect.rules_examined_until(),
              lambda_detect.delete_expired(regclass, text, integer, interval),
              lambda_detect.maintain(integer) FROM PUBLIC;
