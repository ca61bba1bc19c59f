-- The seed rule, lambda-public-invocation: its catalog entry and every
-- branch of its predicate (exact parity with Elastic's KQL), run by hand
-- with run_rule().
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';

SELECT rule, rule_id, name, version, matcher, severity, risk_score, run_interval,
       lookback, max_signals, mitre_tactics, mitre_techniques, enabled
  FROM lambda_detect.rules \gx


INSERT INTO lambda_detect.inbox (source, payload) VALUES
  -- matches
  ('match',   pg_temp.attack('m-v2')),
  ('match',   pg_temp.attack('m-plain',    '{"eventName": "AddPermission"}')),
  ('match',   pg_temp.attack('m-v1',       '{"eventName": "AddPermission20150331"}')),
  ('match',   pg_temp.attack('m-url',      '{}', '{"action": "lambda:InvokeFunctionUrl", "functionUrlAuthType": "NONE"}')),
  ('match',   pg_temp.attack('m-star-pfx', '{}', '{"principal": "*.example"}')),
  ('match',   pg_temp.attack('m-empty-ec', '{"errorCode": ""}')),
  ('match',   pg_temp.attack('m-empty-em', '{"errorCode": "", "errorMessage": ""}')),
  ('match',   pg_temp.attack('m-org',      '{}', '{"principalOrgID": "o-abc123", "sourceAccount": ""}')),
  ('match',   pg_temp.attack('m-arn',      '{}', '{"functionName": "arn:aws:lambda:us-east-1:111122223333:function:payments"}')),
  ('match',   pg_temp.attack('m-partial',  '{"awsRegion": "cn-north-1"}', '{"functionName": "111122223333:function:payments"}')),
  -- no match: failed calls
  ('failed',  pg_temp.attack('n-errcode',  '{"errorCode": "AccessDenied"}')),
  ('failed',  pg_temp.attack('n-errmsg',   '{"errorMessage": "User is not authorized"}')),
  ('failed',  pg_temp.attack('n-conflict', '{"errorCode": "ResourceConflictException", "errorMessage": "The statement id (open) provided already exists"}')),
  -- no match: other API calls
  ('other',   pg_temp.attack('n-layer',    '{"eventName": "AddLayerVersionPermission20181031"}')),
  ('other',   pg_temp.attack('n-remove',   '{"eventName": "RemovePermission20150331v2"}')),
  ('other',   pg_temp.attack('n-lower',    '{"eventName": "addPermission20150331v2"}')),
  ('other',   pg_temp.attack('n-source',   '{"eventSource": "sns.amazonaws.com"}')),
  -- no match: actions the seed rule does not catch (companion rules do)
  ('action',  pg_temp.attack('n-lambdastar', '{}', '{"action": "lambda:*"}')),
  ('action',  pg_temp.attack('n-star',       '{}', '{"action": "*"}')),
  ('action',  pg_temp.attack('n-case',       '{}', '{"action": "lambda:invokefunction"}')),
  ('action',  pg_temp.attack('n-getpolicy',  '{}', '{"action": "lambda:GetPolicy"}')),
  ('action',  pg_temp.attack('n-noaction',   '{}', '{"action": null}')),
  -- no match: principals that are not *
  ('princ',   pg_temp.attack('n-service',  '{}', '{"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::bucket"}')),
  ('princ',   pg_temp.attack('n-account',  '{}', '{"principal": "444455556666"}')),
  ('princ',   pg_temp.attack('n-arnstar',  '{}', '{"principal": "arn:aws:iam::*:root"}')),
  ('princ',   pg_temp.attack('n-space',    '{}', '{"principal": " *"}')),
  ('princ',   pg_temp.attack('n-empty',    '{}', '{"principal": ""}')),
  ('princ',   pg_temp.attack('n-object',   '{}', '{"principal": {"AWS": "*"}}')),
  -- no match: no usable requestParameters
  ('params',  pg_temp.attack('n-nullrp',   '{"requestParameters": null}')),
  ('params',  pg_temp.attack('n-arrayrp',  '{"requestParameters": ["lambda:InvokeFunction", "*"]}'));

SELECT inbox_rows, events, errors FROM lambda_detect.ingest_now();

SELECT rule, rule_version, trigger, candidates, matched, alerts_created, duplicates,
       truncated, status, error, window_end - window_start AS window
  FROM lambda_detect.run_rule('lambda-public-invocation');

-- exactly the m-* events alerted
SELECT event_id FROM lambda_detect.alerts ORDER BY event_id;

-- what an analyst sees on an alert
SELECT alert_id, rule, rule_version, event_id, event_time, severity, risk_score, reason,
       account_id, aws_region, event_name, function_name, function_arn, statement_id,
       action, principal, scoped_by, actor_arn, actor_type, access_key_id, user_name,
       source_ip, source_address, user_agent, request_parameters ->> 'statementId' AS rp_sid,
       response_elements, status, status_changed_at, detected_at >= ingested_at AS detected_after_ingest
  FROM lambda_detect.alerts WHERE event_id = 'm-v2' \gx

-- narrowing conditions are kept on the alert; ARNs are resolved per partition
SELECT event_id, scoped_by, function_arn FROM lambda_detect.alerts
 WHERE event_id IN ('m-org', 'm-url', 'm-arn', 'm-partial') ORDER BY event_id;

-- a re-run creates nothing new: the same matches are duplicates
SELECT candidates, matched, alerts_created, duplicates, status
  FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT count(*) FROM lambda_detect.alerts;

-- errors with SQLSTATEs and hints
SELECT pg_temp.error_of(q) FROM unnest(ARRAY[
  $q$SELECT lambda_detect.run_rule('no-such-rule')$q$,
  $q$SELECT lambda_detect.run_rule(NULL)$q$,
  $q$SELECT lambda_detect.run_rule('lambda-public-invocation', NULL)$q$,
  $q$SELECT lambda_detect.run_rule('lambda-public-invocation', 'infinity')$q$]) AS q;
\set VERBOSITY default
SELECT * FROM lambda_detect.run_rule('no-such-rule');
\set VERBOSITY terse

-- the catalog refuses parameters that make no sense
UPDATE lambda_detect.rules SET severity = 'urgent';
UPDATE lambda_detect.rules SET risk_score = 101;
UPDATE lambda_detect.rules SET max_signals = 0;
UPDATE lambda_detect.rules SET matcher = 'select 1';

-- function ARNs are completed in the region's partition, isolated regions too
INSERT INTO lambda_detect.inbox (payload) VALUES
  (pg_temp.attack('m-isob', '{"awsRegion": "us-isob-east-1"}')),
  (pg_temp.attack('m-gov', '{"awsRegion": "us-gov-west-1"}'));
SELECT events FROM lambda_detect.ingest_now();
SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT event_id, function_arn FROM lambda_detect.alerts WHERE event_id IN ('m-isob', 'm-gov') ORDER BY 1;
