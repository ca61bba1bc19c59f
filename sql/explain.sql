-- The rule's cost follows the number of candidates, not the size of events
-- nor its number of partitions: a run reads its window from the candidate
-- log rule_candidates (kept by a trigger on events, holding only Lambda
-- permission and function URL events), then each candidate's event by its
-- key (event_id, event_time, recipient_account_id), which prunes to one
-- partition.  Shown here with 95 daily partitions, as 90 days of retention
-- and a few ahead make.
\set VERBOSITY terse
\i sql/include/fresh_state.sql

SELECT count(lambda_detect.create_event_partition(now() - d * interval '1 day')) AS partitions
  FROM generate_series(-3, 91) d;
SELECT count(*) AS partitions, count(*) FILTER (WHERE is_default) AS default_partitions
  FROM lambda_detect.event_partitions;

-- 20,000 ordinary events over those days and a handful of candidates
INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
SELECT 'bulk-' || g, now() - (g % 90) * interval '1 day', 'sts.amazonaws.com', 'AssumeRole', 'success',
       jsonb_build_object('eventID', 'bulk-' || g, 'requestParameters', jsonb_build_object('roleSessionName', md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || md5((g + 3)::text)))
  FROM generate_series(1, 20000) g;
INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
SELECT 'cand-' || g, now() - g * interval '1 day', 'lambda.amazonaws.com', 'AddPermission20150331v2', 'success', '{}'
  FROM generate_series(1, 5) g;
-- and 5,000 candidates of the past 90 days, ingested long before the window
INSERT INTO lambda_detect.events (event_id, event_time, ingested_at, event_source, event_name, outcome, record)
SELECT 'old-cand-' || g, now() - (g % 90) * interval '1 day' - interval '2 hours',
       now() - (g % 90) * interval '1 day' - interval '2 hours',
       'lambda.amazonaws.com', 'AddPermission20150331v2', 'success', '{}'
  FROM generate_series(1, 5000) g;
VACUUM ANALYZE lambda_detect.events, lambda_detect.rule_candidates;

-- the log holds the candidates only, 5 of them in the last hour
SELECT (SELECT count(*) FROM lambda_detect.rule_candidates) AS logged_candidates,
       (SELECT count(*) FROM lambda_detect.rule_candidates WHERE ingested_at > now() - interval '1 hour') AS in_window,
       (SELECT count(*) FROM lambda_detect.events) AS events;

-- the rule engine's two statements (src/rule_engine.c), word for word:
-- the window, from the log
PREPARE run_window(timestamptz, timestamptz) AS
SELECT c.event_id, c.event_time, c.recipient_account_id
  FROM lambda_detect.rule_candidates c
 WHERE c.ingested_at >= $1 AND c.ingested_at <= $2
 ORDER BY c.ingested_at, c.event_time, c.event_id;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE run_window(now() - interval '1 hour', now());
RESET plan_cache_mode;
-- and each candidate's event
PREPARE candidate(text, timestamptz, text, text) AS
SELECT e.event_id, e.event_source, e.event_name, e.error_code,
       e.error_message, e.request_parameters,
       EXISTS (SELECT 1 FROM lambda_detect.alerts a
                WHERE a.rule = $3 AND a.event_id = e.event_id
                  AND a.account_id = e.recipient_account_id)
       OR EXISTS (SELECT 1 FROM lambda_detect.alert_occurrences o
                  WHERE o.rule = $3 AND o.event_id = e.event_id
                    AND o.account_id = e.recipient_account_id),
       e.recipient_account_id, e.aws_region, e.actor_arn, e.source_ip,
       e.source_address, e.user_agent, e.event_time
  FROM lambda_detect.events e
 WHERE e.event_id = $1 AND e.event_time = $2 AND e.recipient_account_id = $4
   AND e.event_source = 'lambda.amazonaws.com' AND (e.event_name LIKE 'AddPermission%' OR e.event_name LIKE 'CreateFunctionUrlConfig%' OR e.event_name LIKE 'UpdateFunctionUrlConfig%');
SELECT event_time AS cand_time FROM lambda_detect.events WHERE event_id = 'cand-3' \gset

-- pg_temp.plan_nodes(plan): every node of a JSON plan, flattened
CREATE FUNCTION pg_temp.plan_nodes(plan jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$
  WITH RECURSIVE n(node) AS (
    SELECT plan
    UNION ALL
    SELECT c FROM n, jsonb_array_elements(n.node -> 'Plans') c)
  SELECT node FROM n
$$;
CREATE FUNCTION pg_temp.explain_candidate(t timestamptz) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE format('EXPLAIN (FORMAT JSON, COSTS OFF, ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF) '
                 'EXECUTE candidate(%L, %L, %L, %L)', 'cand-3', t, 'lambda-public-invocation', '') INTO plan;
  RETURN plan -> 0 -> 'Plan';
END $$;

-- planned for its values (the first executions) and as the plan the worker
-- keeps (generic): either way one partition is read, through an index; the
-- 95 others are pruned, at planning or at executor start
SET plan_cache_mode = force_custom_plan;
SELECT count(DISTINCT n ->> 'Relation Name') FILTER (WHERE n ->> 'Relation Name' LIKE 'events%') AS partitions_read,
       bool_and(n ->> 'Node Type' NOT LIKE 'Seq Scan') FILTER (WHERE n ->> 'Relation Name' LIKE 'events%') AS by_index,
       coalesce(sum((n ->> 'Subplans Removed')::int), 0) AS pruned_at_executor_start
  FROM pg_temp.plan_nodes(pg_temp.explain_candidate(:'cand_time')) n;
SET plan_cache_mode = force_generic_plan;
SELECT count(DISTINCT n ->> 'Relation Name') FILTER (WHERE n ->> 'Relation Name' LIKE 'events%') AS partitions_read,
       bool_and(n ->> 'Node Type' NOT LIKE 'Seq Scan') FILTER (WHERE n ->> 'Relation Name' LIKE 'events%') AS by_index,
       coalesce(sum((n ->> 'Subplans Removed')::int), 0) AS pruned_at_executor_start
  FROM pg_temp.plan_nodes(pg_temp.explain_candidate(:'cand_time')) n;
-- what one candidate costs: a few pages, against a table of many
SELECT (p ->> 'Actual Rows')::int AS found,
       (p ->> 'Shared Hit Blocks')::int + (p ->> 'Shared Read Blocks')::int < 20 AS few_pages,
       (SELECT sum(pg_relation_size(relid)) / 8192 FROM pg_partition_tree('lambda_detect.events')) > 500
         AS table_is_larger
  FROM pg_temp.explain_candidate(:'cand_time') p;
RESET plan_cache_mode;

-- and run_rule really goes through the log: its window index is scanned
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS before FROM pg_stat_user_indexes
 WHERE indexrelname = 'rule_candidates_window_idx' \gset
SELECT candidates FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT idx_scan > :before AS used_candidate_log FROM pg_stat_user_indexes
 WHERE indexrelname = 'rule_candidates_window_idx';

-- the partitions made here go, so that later tests see an unpartitioned start
\i sql/include/drop_partitions.sql
