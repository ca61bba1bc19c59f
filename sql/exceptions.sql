-- Exceptions: every field and operator, rule-specific and all-rules
-- entries, expiry, suppressed matches counted and kept findable, existing
-- alerts untouched, and bad entries refused with SQLSTATEs.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';

CREATE FUNCTION pg_temp.actor(arn text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('userIdentity', jsonb_build_object('type', 'AssumedRole', 'arn', arn))
$$;

-- the first alert exists before any exception
INSERT INTO lambda_detect.inbox (source, payload) VALUES ('before', pg_temp.attack('a-before'));
SELECT inbox_rows, events FROM lambda_detect.ingest_now();
SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation');
UPDATE lambda_detect.alerts SET status = 'acknowledged', status_note = 'looking' WHERE event_id = 'a-before';

INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason, expires_at) VALUES
  (NULL, 'actor_arn',     'equals',  'arn:aws:iam::111122223333:role/ci-deployer', 'the CI pipeline deploys public webhooks', NULL),
  (NULL, 'actor_arn',     'prefix',  'arn:aws:sts::111122223333:assumed-role/terraform/', 'Terraform runs', NULL),
  (NULL, 'function_name', 'glob',    'public-webhook-*', 'public by design', NULL),
  (NULL, 'function_name', 'glob',    'v?-api\*', 'a literal star, escaped', NULL),
  (NULL, 'function_arn',  'equals',  'arn:aws:lambda:us-east-1:111122223333:function:health', 'the status page', NULL),
  (NULL, 'account_id',    'equals',  '999988887777', 'the sandbox account', NULL),
  (NULL, 'aws_region',    'prefix',  'eu-', 'the EU team', NULL),
  (NULL, 'source_ip',     'in_cidr', '10.0.0.0/8', 'the corporate network', NULL),
  (NULL, 'source_ip',     'in_cidr', '2001:db8::/32', 'the corporate network, IPv6', NULL),
  (NULL, 'source_ip',     'equals',  'cloudformation.amazonaws.com', 'stacks', NULL),
  (NULL, 'user_agent',    'glob',    'Terraform/* terraform-provider-aws/?.*', 'Terraform provider 1-9', NULL),
  (NULL, 'statement_id',  'equals',  'FunctionURLAllowPublicAccess', 'console-made function URLs', NULL),
  -- only for one rule
  ('lambda-public-wildcard-action', 'function_name', 'equals', 'scoped', 'only the wildcard rule', NULL),
  -- expiry
  (NULL, 'function_name', 'equals',  'legacy', 'expired yesterday', now() - interval '1 day'),
  (NULL, 'function_name', 'equals',  'temp-demo', 'until tomorrow', now() + interval '1 day'),
  -- an exception that covers the alert made before it
  (NULL, 'function_name', 'equals',  'payments', 'added after the first alert', NULL),
  -- "?" is one character, also when it takes several bytes
  (NULL, 'function_name', 'glob',    'caf?-api', 'one character', NULL);

SELECT id, rule, field, operator, value, created_by = current_user AS by_me,
       expires_at IS NOT NULL AS expires
  FROM lambda_detect.exceptions ORDER BY id;

INSERT INTO lambda_detect.inbox (source, payload) VALUES
  -- suppressed, one per exception
  ('x', pg_temp.attack('s-actor-eq',     pg_temp.actor('arn:aws:iam::111122223333:role/ci-deployer'), '{"functionName": "f1"}')),
  ('x', pg_temp.attack('s-actor-prefix', pg_temp.actor('arn:aws:sts::111122223333:assumed-role/terraform/run-42'), '{"functionName": "f2"}')),
  ('x', pg_temp.attack('s-fn-glob',      '{}', '{"functionName": "public-webhook-prod"}')),
  ('x', pg_temp.attack('s-fn-escape',    '{}', '{"functionName": "v2-api*"}')),
  ('x', pg_temp.attack('s-fn-arn',       '{}', '{"functionName": "health"}')),
  ('x', pg_temp.attack('s-account',      '{"recipientAccountId": "999988887777"}', '{"functionName": "f3"}')),
  ('x', pg_temp.attack('s-region',       '{"awsRegion": "eu-west-3"}', '{"functionName": "f4"}')),
  ('x', pg_temp.attack('s-cidr4',        '{"sourceIPAddress": "10.20.30.40"}', '{"functionName": "f5"}')),
  ('x', pg_temp.attack('s-cidr6',        '{"sourceIPAddress": "2001:db8:1::7"}', '{"functionName": "f6"}')),
  ('x', pg_temp.attack('s-srcname',      '{"sourceIPAddress": "cloudformation.amazonaws.com"}', '{"functionName": "f7"}')),
  ('x', pg_temp.attack('s-agent',        '{"userAgent": "Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0"}', '{"functionName": "f8"}')),
  ('x', pg_temp.attack('s-sid',          '{}', '{"functionName": "f9", "statementId": "FunctionURLAllowPublicAccess"}')),
  ('x', pg_temp.attack('s-scoped-wild',  '{}', '{"functionName": "scoped", "action": "lambda:*"}')),
  ('x', pg_temp.attack('s-temp',         '{}', '{"functionName": "temp-demo"}')),
  ('x', pg_temp.attack('s-payments',     '{}', '{"statementId": "again"}')),
  ('x', pg_temp.attack('s-multibyte',    '{}', jsonb_build_object('functionName', U&'caf\00E9-api'))),
  -- two exceptions apply: the lowest id is recorded
  ('x', pg_temp.attack('s-two',          '{"awsRegion": "eu-central-1"}', '{"functionName": "public-webhook-eu"}')),
  -- near misses: alerted
  ('n', pg_temp.attack('n-actor-case',   pg_temp.actor('arn:aws:iam::111122223333:role/CI-Deployer'), '{"functionName": "g1"}')),
  ('n', pg_temp.attack('n-actor-pfx',    pg_temp.actor('arn:aws:sts::111122223333:assumed-role/terraform-admin/x'), '{"functionName": "g2"}')),
  ('n', pg_temp.attack('n-fn-glob',      '{}', '{"functionName": "public-webhook"}')),
  ('n', pg_temp.attack('n-fn-escape',    '{}', '{"functionName": "v2-apiX"}')),
  ('n', pg_temp.attack('n-fn-arn',       '{"awsRegion": "us-west-2"}', '{"functionName": "health"}')),
  ('n', pg_temp.attack('n-account',      '{"recipientAccountId": "999988887770"}', '{"functionName": "g3"}')),
  ('n', pg_temp.attack('n-region',       '{"awsRegion": "us-east-2"}', '{"functionName": "g4"}')),
  ('n', pg_temp.attack('n-cidr4',        '{"sourceIPAddress": "11.20.30.40"}', '{"functionName": "g5"}')),
  ('n', pg_temp.attack('n-cidr6',        '{"sourceIPAddress": "2001:db9::7"}', '{"functionName": "g6"}')),
  ('n', pg_temp.attack('n-srcname',      '{"sourceIPAddress": "lambda.amazonaws.com"}', '{"functionName": "g7"}')),
  ('n', pg_temp.attack('n-agent',        '{"userAgent": "Terraform/1.9.5 terraform-provider-aws/15.0.0"}', '{"functionName": "g8"}')),
  ('n', pg_temp.attack('n-sid',          '{}', '{"functionName": "g9", "statementId": "functionurlallowpublicaccess"}')),
  ('n', pg_temp.attack('n-scoped-seed',  '{}', '{"functionName": "scoped"}')),
  ('n', pg_temp.attack('n-legacy',       '{}', '{"functionName": "legacy"}')),
  ('n', pg_temp.attack('n-nofunction',   '{}', '{"functionName": null}')),
  ('n', pg_temp.attack('n-multibyte',    '{}', jsonb_build_object('functionName', U&'caf\00E9\00E9-api')));

SELECT inbox_rows, events FROM lambda_detect.ingest_now();

SELECT r.rule, r.candidates, r.matched, r.alerts_created, r.duplicates, r.suppressed, r.status
  FROM unnest(ARRAY['lambda-public-invocation', 'lambda-public-wildcard-action']) AS k,
       LATERAL lambda_detect.run_rule(k) AS r;

-- alerted: the alert from before and the near misses
SELECT event_id, rule FROM lambda_detect.alerts ORDER BY event_id;
-- the alert made before the exceptions is untouched
SELECT event_id, status, status_note FROM lambda_detect.alerts WHERE event_id = 'a-before';

-- suppressed: findable, with the exception that applied
SELECT s.event_id, s.rule, s.run_id, s.exception_id, x.field, x.operator, x.value,
       s.suppressed_at >= r.started_at AS during_run
  FROM lambda_detect.suppressed_matches s
  JOIN lambda_detect.exceptions x ON x.id = s.exception_id
  JOIN lambda_detect.rule_runs r ON r.run_id = s.run_id
 ORDER BY s.event_id;
-- every event is either alerted or suppressed, never both
SELECT e.event_id AS neither_or_both FROM lambda_detect.events e
 WHERE EXISTS (SELECT 1 FROM lambda_detect.alerts a WHERE a.event_id = e.event_id)
     = EXISTS (SELECT 1 FROM lambda_detect.suppressed_matches s WHERE s.event_id = e.event_id);

-- a re-run suppresses again (counted) but records nothing twice
SELECT matched, alerts_created, duplicates, suppressed
  FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT count(*) AS suppressed_rows FROM lambda_detect.suppressed_matches;
SELECT matched = alerts_created + duplicates + suppressed AS matched_adds_up, count(*)
  FROM lambda_detect.rule_runs GROUP BY 1;

-- an exception that has expired no longer applies, nor does one deleted:
-- the next run alerts, and the record of the suppression stays
UPDATE lambda_detect.exceptions SET expires_at = now() - interval '1 second' WHERE value = 'temp-demo';
DELETE FROM lambda_detect.exceptions WHERE value = 'cloudformation.amazonaws.com';
SELECT matched, alerts_created, duplicates, suppressed
  FROM lambda_detect.run_rule('lambda-public-invocation');
SELECT a.event_id, a.rule, s.exception_id AS once_suppressed_by
  FROM lambda_detect.alerts a JOIN lambda_detect.suppressed_matches s USING (rule, event_id)
 ORDER BY 1;

-- exceptions apply to companion rules and to every field the alert has:
-- a function URL's alert has no statement id, and the IPv4 network does not
-- cover a service's call (no address)
INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason) VALUES
  ('lambda-function-url-public', 'source_ip', 'in_cidr', '0.0.0.0/0', 'any IPv4 caller'),
  ('lambda-function-url-public', 'statement_id', 'glob', '*', 'never applies: no statement id');
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('url', pg_temp.attack('u-v4', '{"eventName": "CreateFunctionUrlConfig20211031",
                                   "requestParameters": {"functionName": "u1", "authType": "NONE"}}')),
  ('url', pg_temp.attack('u-service', '{"eventName": "CreateFunctionUrlConfig20211031",
                                        "sourceIPAddress": "cloudformation.amazonaws.com",
                                        "requestParameters": {"functionName": "u2", "authType": "NONE"}}'));
SELECT inbox_rows FROM lambda_detect.ingest_now();
SELECT matched, alerts_created, suppressed FROM lambda_detect.run_rule('lambda-function-url-public');
SELECT event_id, rule, statement_id FROM lambda_detect.alerts WHERE rule = 'lambda-function-url-public';
SELECT event_id, exception_id FROM lambda_detect.suppressed_matches WHERE rule = 'lambda-function-url-public';

-- a renamed rule keeps its exceptions, a deleted one takes them with it
BEGIN;
UPDATE lambda_detect.rules SET rule = 'url-renamed' WHERE rule = 'lambda-function-url-public';
SELECT rule, value FROM lambda_detect.exceptions WHERE rule IS NOT NULL ORDER BY id;
DELETE FROM lambda_detect.rules WHERE rule = 'url-renamed';
SELECT count(*) FROM lambda_detect.exceptions WHERE value IN ('0.0.0.0/0', '*');
ROLLBACK;

-- 1.1 checks an exception's rule with triggers, not a foreign key (Citus):
-- a rename renames only that rule's exceptions, a change that keeps the name
-- touches none, a delete deletes only that rule's, an exception for every
-- rule (NULL) stays
BEGIN;
INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason) VALUES
  ('lambda-cross-account-invocation', 'function_name', 'equals', 'cascade-a', 'r'),
  ('lambda-cross-account-invocation', 'function_name', 'equals', 'cascade-b', 'r'),
  (NULL, 'function_name', 'equals', 'cascade-all', 'r');
UPDATE lambda_detect.rules SET rule = 'cross-renamed' WHERE rule = 'lambda-cross-account-invocation';
SELECT coalesce(rule, '(every rule)') AS rule, value FROM lambda_detect.exceptions
 WHERE value LIKE 'cascade-%' OR rule IS NOT NULL ORDER BY id;
UPDATE lambda_detect.rules SET max_signals = max_signals + 1 WHERE rule = 'cross-renamed';
SELECT count(*) FROM lambda_detect.exceptions WHERE rule = 'cross-renamed';
DELETE FROM lambda_detect.rules WHERE rule = 'cross-renamed';
SELECT coalesce(rule, '(every rule)') AS rule, value FROM lambda_detect.exceptions
 WHERE value LIKE 'cascade-%' OR rule IS NOT NULL ORDER BY id;
ROLLBACK;
-- moving an exception to a rule that does not exist is refused as adding one
-- is (23503, the rule named, a hint); names are case-sensitive
SELECT pg_temp.error_of(format(
         'UPDATE lambda_detect.exceptions SET rule = %L WHERE value = %L', rule, '0.0.0.0/0')) AS result
  FROM (VALUES ('no-such-rule'), ('Lambda-Function-URL-Public'), ('lambda-public-invocation')) AS t(rule);
SELECT rule, value FROM lambda_detect.exceptions WHERE value = '0.0.0.0/0';
UPDATE lambda_detect.exceptions SET rule = 'lambda-function-url-public' WHERE value = '0.0.0.0/0';

-- bad entries are refused
SELECT pg_temp.error_of(format(
         'INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason) VALUES (%L, %L, %L, %L, %L)',
         rule, field, operator, value, reason)) AS result, what
  FROM (VALUES
    ('unknown field',          NULL, 'principal',  'equals',  '*',             'r'),
    ('unknown operator',       NULL, 'actor_arn',  'regex',   '.*',            'r'),
    ('in_cidr on another field', NULL, 'actor_arn', 'in_cidr', '10.0.0.0/8',   'r'),
    ('not a network',          NULL, 'source_ip',  'in_cidr', '10.0.0.300/8',  'r'),
    ('host bits set',          NULL, 'source_ip',  'in_cidr', '10.0.0.1/8',    'r'),
    ('empty value',            NULL, 'function_name', 'prefix', '',            'r'),
    ('no value',               NULL, 'function_name', 'prefix', NULL,          'r'),
    ('no field',               NULL, NULL,         'equals',  'x',             'r'),
    ('no operator',            NULL, 'function_name', NULL,   'x',             'r'),
    ('no reason',              NULL, 'function_name', 'equals', 'x',           NULL),
    ('blank reason',           NULL, 'function_name', 'equals', 'x',           '  '),
    ('unknown rule',           'no-such-rule', 'function_name', 'equals', 'x', 'r'),
    ('an address is a network', NULL, 'source_ip', 'in_cidr', '203.0.113.9',   'r')
  ) AS t(what, rule, field, operator, value, reason);
SELECT field, operator, value FROM lambda_detect.exceptions WHERE value = '203.0.113.9';
