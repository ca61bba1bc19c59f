-- The rules' candidates, logged as they are stored (version 1.1).
--
-- A rule run needs the Lambda permission and function URL events ingested
-- in its window.  Before partitioning, a partial index on events answered
-- that.  With events partitioned by event time the same index exists once
-- per partition, and since a late event can land in any partition, a run
-- had to plan and probe every one of them: with 95 daily partitions,
-- planning alone took about 40 ms (measured with make bench), and it grows
-- with every day of history kept.  PostgreSQL has no index across
-- partitions, so this table is one: a trigger on events adds a row here for
-- each candidate stored, and a run reads its window from this small table
-- and then each candidate's event by its key, which prunes to one
-- partition.  A run's cost follows its candidates again, whatever the
-- number of partitions or the size of events.
--
-- The trigger covers every way a row enters events (ingestion, a direct
-- INSERT, COPY); rows moved between partitions by maintain() are already
-- logged (a partition is filled before it is attached, so it fires
-- nothing).  maintain() deletes the log rows of expired events.

--
-- Its key is the key of events, the account included, so that under the
-- Citus plan (docs/scaling.md) the log can be distributed by account and
-- colocated with events; what its triggers need there is said in that
-- document.

CREATE TABLE lambda_detect.rule_candidates (
    event_id             text        NOT NULL,
    event_time           timestamptz NOT NULL,
    recipient_account_id text        NOT NULL,
    ingested_at          timestamptz NOT NULL,
    CONSTRAINT rule_candidates_pkey PRIMARY KEY (event_id, event_time, recipient_account_id)
);

COMMENT ON TABLE lambda_detect.rule_candidates IS
    'The rules'' candidate events (Lambda AddPermission and function URL calls), one row per event, kept by a trigger on events: what a rule run reads, whatever the number of partitions';
COMMENT ON COLUMN lambda_detect.rule_candidates.event_id IS 'The event''s eventID (events.event_id)';
COMMENT ON COLUMN lambda_detect.rule_candidates.event_time IS 'The event''s eventTime (events.event_time): with event_id, the key that finds its partition';
COMMENT ON COLUMN lambda_detect.rule_candidates.recipient_account_id IS 'The event''s account (events.recipient_account_id, '''' when unknown): with event_id and event_time, the key of events';
COMMENT ON COLUMN lambda_detect.rule_candidates.ingested_at IS 'When the event was stored (events.ingested_at): rule windows are on this time';

CREATE INDEX rule_candidates_window_idx
    ON lambda_detect.rule_candidates (ingested_at, event_time, event_id, recipient_account_id);
COMMENT ON INDEX lambda_detect.rule_candidates_window_idx IS
    'A rule run''s window, in the order the run examines it, with the whole key of each event (an index-only scan)';

-- The events already stored (the update from 1.0) are logged once.
INSERT INTO lambda_detect.rule_candidates (event_id, event_time, recipient_account_id, ingested_at)
SELECT e.event_id, e.event_time, e.recipient_account_id, e.ingested_at
  FROM lambda_detect.events e
 WHERE e.event_source = 'lambda.amazonaws.com'
   AND (e.event_name LIKE 'AddPermission%' OR e.event_name LIKE 'CreateFunctionUrlConfig%'
        OR e.event_name LIKE 'UpdateFunctionUrlConfig%');

CREATE FUNCTION lambda_detect.log_rule_candidate()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO lambda_detect.rule_candidates AS c
        (event_id, event_time, recipient_account_id, ingested_at)
    VALUES (NEW.event_id, NEW.event_time, NEW.recipient_account_id, NEW.ingested_at)
    ON CONFLICT (event_id, event_time, recipient_account_id)
        DO UPDATE SET ingested_at = EXCLUDED.ingested_at;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION lambda_detect.log_rule_candidate() IS
    'Trigger function: logs a stored (or re-timed) candidate event in rule_candidates.  SECURITY DEFINER, so that inserting into events needs no grant on the log';

-- The WHEN clauses repeat LD_CANDIDATE_PREDICATE (src/lambda_detect.h): an
-- event that is no candidate costs the comparison, nothing more.
CREATE TRIGGER events_log_rule_candidate
    AFTER INSERT ON lambda_detect.events
    FOR EACH ROW
    WHEN (NEW.event_source = 'lambda.amazonaws.com'
          AND (NEW.event_name LIKE 'AddPermission%' OR NEW.event_name LIKE 'CreateFunctionUrlConfig%'
               OR NEW.event_name LIKE 'UpdateFunctionUrlConfig%'))
    EXECUTE FUNCTION lambda_detect.log_rule_candidate();

COMMENT ON TRIGGER events_log_rule_candidate ON lambda_detect.events IS
    'Logs each candidate event stored in rule_candidates';

CREATE TRIGGER events_relog_rule_candidate
    AFTER UPDATE OF ingested_at ON lambda_detect.events
    FOR EACH ROW
    WHEN (OLD.ingested_at IS DISTINCT FROM NEW.ingested_at
          AND NEW.event_source = 'lambda.amazonaws.com'
          AND (NEW.event_name LIKE 'AddPermission%' OR NEW.event_name LIKE 'CreateFunctionUrlConfig%'
               OR NEW.event_name LIKE 'UpdateFunctionUrlConfig%'))
    EXECUTE FUNCTION lambda_detect.log_rule_candidate();

COMMENT ON TRIGGER events_relog_rule_candidate ON lambda_detect.events IS
    'Keeps rule_candidates.ingested_at right when a candidate''s ingested_at is changed (a backfill)';

-- events_rule_candidates_idx, the partial index on events that 1.0's rule
-- runs read, stays: it is the candidates of each partition by ingest time,
-- which ad-hoc hunting queries over a few recent partitions use, and costs
-- ingestion only the predicate test that the triggers above make anyway.
COMMENT ON INDEX lambda_detect.events_rule_candidates_idx IS
    'Rule candidates only (Lambda AddPermission and function URL events), by ingest time, per partition; rule runs read rule_candidates instead, which spans partitions';

REVOKE ALL ON lambda_detect.rule_candidates FROM PUBLIC;
REVOKE ALL ON FUNCTION lambda_detect.log_rule_candidate() FROM PUBLIC;
-- Its rows are data of the installation, not of the extension, but derived
-- from events: restoring events fills it again through the triggers, so
-- pg_dump is told to dump none of them (dumping them too would restore
-- each row twice).
SELECT pg_catalog.pg_extension_config_dump('lambda_detect.rule_candidates', 'WHERE false');
