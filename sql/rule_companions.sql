-- The companion rules: lambda-public-wildcard-action,
-- lambda-function-url-public and lambda-cross-account-invocation.  Their
-- catalog entries, every branch of their matchers, no double alert with the
-- seed rule, and the engine's contract (dedup, cap) for them.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';

SELECT rule, rule_id, name, version, matcher, severity, risk_score, run_interval,
       lookback, max_signals, mitre_tactics, mitre_techniques, enabled
  FROM lambda_detect.rules WHERE rule <> 'lambda-public-invocation' ORDER BY rule \gx
-- the seed's schedule, window and cap for all four
SELECT count(*) AS rules, count(DISTINCT (run_interval, lookback, max_signals)) AS schedules
  FROM lambda_detect.rules;

-- an AddPermission by mallory; params replace requestParameters' keys, patch the record's
CREATE FUNCTION pg_temp.grant(id text, params jsonb DEFAULT '{}', patch jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$ SELECT pg_temp.attack(id, patch, params) $$;
-- a function URL call, as CloudTrail records CreateFunctionUrlConfig20211031
CREATE FUNCTION pg_temp.url(id text, params jsonb DEFAULT '{}', patch jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
  SELECT pg_temp.grant(id, '{}', jsonb_build_object(
    'eventName', 'CreateFunctionUrlConfig20211031',
    'requestParameters', jsonb_build_object('functionName', 'webhook', 'authType', 'NONE',
                                            'cors', jsonb_build_object('allowOrigins', jsonb_build_array('*'))) || params,
    'responseElements', jsonb_build_object('functionUrl', 'https://abc.lambda-url.us-east-1.on.aws/',
                                           'authType', 'NONE')) || patch)
$$;

INSERT INTO lambda_detect.inbox (source, payload) VALUES
  -- the seed rule's own: only the seed alerts
  ('seed',  pg_temp.grant('s-exact')),
  ('seed',  pg_temp.grant('s-url',        '{"action": "lambda:InvokeFunctionUrl"}')),
  ('seed',  pg_temp.grant('s-pfx',        '{"action": "lambda:InvokeFunction", "principal": "*.example"}')),
  -- wildcard and case-variant actions to *
  ('wild',  pg_temp.grant('w-lambdastar', '{"action": "lambda:*"}')),
  ('wild',  pg_temp.grant('w-Lambdastar', '{"action": "Lambda:*"}')),
  ('wild',  pg_temp.grant('w-star',       '{"action": "*"}')),
  ('wild',  pg_temp.grant('w-upper',      '{"action": "LAMBDA:INVOKEFUNCTION"}')),
  ('wild',  pg_temp.grant('w-lower',      '{"action": "lambda:invokefunction"}')),
  ('wild',  pg_temp.grant('w-urlcase',    '{"action": "lambda:invokeFunctionUrl"}')),
  ('wild',  pg_temp.grant('w-plain',      '{"action": "lambda:*"}', '{"eventName": "AddPermission"}')),
  -- not the wildcard rule's
  ('wild',  pg_temp.grant('n-w-failed',   '{"action": "lambda:*"}', '{"errorCode": "AccessDeniedException"}')),
  ('wild',  pg_temp.grant('n-w-errmsg',   '{"action": "*"}', '{"errorMessage": "denied"}')),
  ('wild',  pg_temp.grant('n-w-service',  '{"action": "lambda:*", "principal": "s3.amazonaws.com"}')),
  ('wild',  pg_temp.grant('n-w-get',      '{"action": "lambda:GetFunction"}')),
  ('wild',  pg_temp.grant('n-w-invoke',   '{"action": "lambda:Invoke"}')),
  ('wild',  pg_temp.grant('n-w-starx',    '{"action": "lambda:*x"}')),
  ('wild',  pg_temp.grant('n-w-layer',    '{"action": "lambda:*"}', '{"eventName": "AddLayerVersionPermission20181031"}')),
  ('wild',  pg_temp.grant('n-w-remove',   '{"action": "lambda:*"}', '{"eventName": "RemovePermission20150331v2"}')),
  ('wild',  pg_temp.grant('n-w-nostring', '{"action": ["lambda:*"]}')),
  -- function URLs
  ('url',   pg_temp.url('u-create')),
  ('url',   pg_temp.url('u-update',       '{}', '{"eventName": "UpdateFunctionUrlConfig20211031"}')),
  ('url',   pg_temp.url('u-lower',        '{"authType": "none", "qualifier": "prod"}', '{"eventName": "CreateFunctionUrlConfig"}')),
  ('url',   pg_temp.url('n-u-iam',        '{"authType": "AWS_IAM"}')),
  ('url',   pg_temp.url('n-u-iamupdate',  '{"authType": "AWS_IAM"}', '{"eventName": "UpdateFunctionUrlConfig20211031"}')),
  ('url',   pg_temp.url('n-u-failed',     '{}', '{"errorCode": "ResourceConflictException", "errorMessage": "Function URL already exists"}')),
  ('url',   pg_temp.url('n-u-corsonly',   '{"authType": null}', '{"eventName": "UpdateFunctionUrlConfig20211031"}')),
  ('url',   pg_temp.url('n-u-get',        '{}', '{"eventName": "GetFunctionUrlConfig20211031"}')),
  ('url',   pg_temp.url('n-u-source',     '{}', '{"eventSource": "apigateway.amazonaws.com"}')),
  ('url',   pg_temp.url('n-u-addperm',    '{}', '{"eventName": "AddPermission20150331v2"}')),
  -- other accounts (the function's is 111122223333)
  ('cross', pg_temp.grant('x-account',    '{"principal": "444455556666"}')),
  ('cross', pg_temp.grant('x-root',       '{"principal": "arn:aws:iam::444455556666:root"}')),
  ('cross', pg_temp.grant('x-role',       '{"principal": "arn:aws:iam::444455556666:role/ops/deployer"}')),
  ('cross', pg_temp.grant('x-user',       '{"principal": "arn:aws:iam::444455556666:user/eve"}')),
  ('cross', pg_temp.grant('x-cn',         '{"principal": "arn:aws-cn:iam::444455556666:root"}',
                                          '{"awsRegion": "cn-north-1"}')),
  ('cross', pg_temp.grant('x-lambdastar', '{"principal": "444455556666", "action": "lambda:*"}')),
  ('cross', pg_temp.grant('x-star',       '{"principal": "444455556666", "action": "*"}')),
  ('cross', pg_temp.grant('x-lower',      '{"principal": "444455556666", "action": "lambda:invokefunction"}')),
  ('cross', pg_temp.grant('x-url',        '{"principal": "444455556666", "action": "lambda:InvokeFunctionUrl"}')),
  -- not the cross-account rule's
  ('cross', pg_temp.grant('n-x-same',     '{"principal": "111122223333"}')),
  ('cross', pg_temp.grant('n-x-sameroot', '{"principal": "arn:aws:iam::111122223333:root"}')),
  ('cross', pg_temp.grant('n-x-service',  '{"principal": "events.amazonaws.com"}')),
  ('cross', pg_temp.grant('n-x-get',      '{"principal": "444455556666", "action": "lambda:GetFunction"}')),
  ('cross', pg_temp.grant('n-x-11',       '{"principal": "44445555666"}')),
  ('cross', pg_temp.grant('n-x-13',       '{"principal": "4444555566667"}')),
  ('cross', pg_temp.grant('n-x-sts',      '{"principal": "arn:aws:sts::444455556666:assumed-role/r/s"}')),
  ('cross', pg_temp.grant('n-x-group',    '{"principal": "arn:aws:iam::444455556666:group/devs"}')),
  ('cross', pg_temp.grant('n-x-nouser',   '{"principal": "arn:aws:iam::444455556666:user/"}')),
  ('cross', pg_temp.grant('n-x-rootx',    '{"principal": "arn:aws:iam::444455556666:rootx"}')),
  ('cross', pg_temp.grant('n-x-badpart',  '{"principal": "arn:azure:iam::444455556666:root"}')),
  ('cross', pg_temp.grant('n-x-failed',   '{"principal": "444455556666"}', '{"errorCode": "AccessDeniedException"}')),
  ('cross', pg_temp.grant('n-x-norecip',  '{"principal": "444455556666"}', '{"recipientAccountId": null}'));

SELECT inbox_rows, events, errors FROM lambda_detect.ingest_now();

-- the engine's cap and catch-up hold for a companion rule too
UPDATE lambda_detect.rules SET max_signals = 3 WHERE rule = 'lambda-public-wildcard-action';
SELECT rule, candidates, matched, alerts_created, duplicates, suppressed, truncated, status
  FROM lambda_detect.run_rule('lambda-public-wildcard-action');
UPDATE lambda_detect.rules SET max_signals = 100 WHERE rule = 'lambda-public-wildcard-action';

SELECT r.rule, r.candidates, r.matched, r.alerts_created, r.duplicates, r.suppressed,
       r.truncated, r.status, r.error
  FROM unnest(ARRAY['lambda-public-invocation', 'lambda-public-wildcard-action',
                    'lambda-function-url-public', 'lambda-cross-account-invocation']) AS k,
       LATERAL lambda_detect.run_rule(k) AS r;

-- which rule alerted on which event: each event at most once, and every
-- event the seed rule alerted on has no companion alert
SELECT event_id, string_agg(rule, ', ' ORDER BY rule) AS rules
  FROM lambda_detect.alerts GROUP BY event_id ORDER BY event_id;
SELECT count(*) AS events_with_two_alerts
  FROM (SELECT event_id FROM lambda_detect.alerts GROUP BY event_id HAVING count(*) > 1) d;
-- and no alert at all for the near misses
SELECT e.event_id AS no_alert FROM lambda_detect.events e
 WHERE NOT EXISTS (SELECT 1 FROM lambda_detect.alerts a WHERE a.event_id = e.event_id)
 ORDER BY 1;

-- what an analyst sees on each companion's alerts
SELECT alert_id, rule, rule_version, event_id, severity, risk_score, reason, account_id,
       event_name, function_name, function_arn, statement_id, action, principal, scoped_by,
       actor_arn, source_ip, status
  FROM lambda_detect.alerts WHERE event_id IN ('w-lambdastar', 'u-create', 'x-root')
 ORDER BY event_id \gx
SELECT event_id, reason, function_name, function_arn, action, principal, statement_id
  FROM lambda_detect.alerts WHERE event_id IN ('u-update', 'u-lower', 'x-cn', 'w-upper', 'x-role')
 ORDER BY event_id;
-- the function URL's alert names the URL endpoint, not a policy statement
SELECT event_id, rule, action, principal, statement_id, request_parameters ->> 'authType' AS auth_type
  FROM lambda_detect.alerts WHERE rule = 'lambda-function-url-public' ORDER BY event_id;

-- re-runs create nothing new
SELECT r.rule, r.matched, r.alerts_created, r.duplicates
  FROM unnest(ARRAY['lambda-public-wildcard-action', 'lambda-function-url-public',
                    'lambda-cross-account-invocation']) AS k,
       LATERAL lambda_detect.run_rule(k) AS r;
SELECT count(*) FROM lambda_detect.alerts;

-- the catalog allows only implemented matchers
INSERT INTO lambda_detect.rules (rule, rule_id, name, description, matcher, severity, risk_score,
                                 run_interval, lookback, max_signals)
VALUES ('lambda-other', gen_random_uuid(), 'x', 'x', 'lambda_other', 'low', 1, '1 hour', '1 hour', 1);

-- the remediation of a public function URL is not remove-permission
SELECT remove_permission_command, get_policy_command, note
  FROM lambda_detect.alerts a, lambda_detect.alert_remediation(a.alert_id)
 WHERE a.rule = 'lambda-function-url-public'
 ORDER BY a.alert_id LIMIT 1 \gx
