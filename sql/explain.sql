-- The rule's cost follows the number of candidates, not the size of
-- events: its query is answered from the partial index
-- events_rule_candidates_idx, which holds only Lambda permission and
-- function URL events.
\set VERBOSITY terse
\i sql/include/fresh_state.sql

-- 20,000 ordinary events and a handful of candidates
INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
SELECT 'bulk-' || g, now() - interval '1 day', 'sts.amazonaws.com', 'AssumeRole', 'success', '{}'
  FROM generate_series(1, 20000) g;
INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record)
SELECT 'cand-' || g, now(), 'lambda.amazonaws.com', 'AddPermission20150331v2', 'success', '{}'
  FROM generate_series(1, 5) g;
ANALYZE lambda_detect.events;

-- the index holds the candidates only
SELECT pg_relation_size('lambda_detect.events_rule_candidates_idx') < pg_relation_size('lambda_detect.events_pkey') / 10 AS small;

-- the rule engine's candidate query (src/rule_engine.c), word for word
PREPARE candidates(timestamptz, timestamptz, text) AS
SELECT e.event_id, e.event_source, e.event_name, e.error_code,
       e.error_message, e.request_parameters,
       EXISTS (SELECT 1 FROM lambda_detect.alerts a
                WHERE a.rule = $3 AND a.event_id = e.event_id),
       e.recipient_account_id, e.aws_region, e.actor_arn, e.source_ip,
       e.source_address, e.user_agent
  FROM lambda_detect.events e
 WHERE e.event_source = 'lambda.amazonaws.com' AND (e.event_name LIKE 'AddPermission%' OR e.event_name LIKE 'CreateFunctionUrlConfig%' OR e.event_name LIKE 'UpdateFunctionUrlConfig%')
   AND e.ingested_at >= $1 AND e.ingested_at <= $2
 ORDER BY e.ingested_at;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE candidates(now() - interval '1 hour', now(), 'lambda-public-invocation');

-- and run_rule really goes through that index: its scan count rises
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS before FROM pg_stat_user_indexes
 WHERE indexrelname = 'events_rule_candidates_idx' \gset
SELECT candidates FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT idx_scan > :before AS used_candidate_index FROM pg_stat_user_indexes
 WHERE indexrelname = 'events_rule_candidates_idx';
