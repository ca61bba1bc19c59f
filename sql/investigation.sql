-- The seed rule's investigation guide, answered by SQL: one function per
-- step, on a small trail whose answers are known, with the edge cases of
-- each step (no earlier activity, an AWS service as caller, a malformed
-- policy statement, a qualifier, values that need shell quoting, times
-- across midnight and in other time zones).
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';
DELETE FROM lambda_detect.known_networks;
DELETE FROM lambda_detect.investigation_settings;


-- ---------------------------------------------------------------------------
-- Settings: none stored, so the documented defaults apply, and they are the
-- columns' defaults
SELECT * FROM lambda_detect.effective_investigation_settings();
BEGIN;
INSERT INTO lambda_detect.investigation_settings DEFAULT VALUES;
SELECT s = lambda_detect.effective_investigation_settings() AS defaults_agree
  FROM lambda_detect.investigation_settings s;
ROLLBACK;
-- one row at most, and only values that make sense
SELECT pg_temp.error_of(q) FROM unnest(ARRAY[
  $q$INSERT INTO lambda_detect.investigation_settings (time_zone) VALUES ('Mars/Olympus_Mons')$q$,
  $q$INSERT INTO lambda_detect.investigation_settings (business_days) VALUES ('{1,8}')$q$,
  $q$INSERT INTO lambda_detect.investigation_settings (business_days) VALUES ('{1,NULL}')$q$,
  $q$INSERT INTO lambda_detect.investigation_settings (business_days) VALUES ('{{1,2}}')$q$,
  $q$INSERT INTO lambda_detect.investigation_settings (history) VALUES ('0')$q$,
  $q$INSERT INTO lambda_detect.investigation_settings (correlation_window) VALUES ('-1 hour')$q$,
  $q$INSERT INTO lambda_detect.investigation_settings (singleton) VALUES (false)$q$,
  $q$INSERT INTO lambda_detect.investigation_settings VALUES (DEFAULT), (DEFAULT)$q$]) AS q;

-- ---------------------------------------------------------------------------
-- Helpers

-- shell quoting: plain words stay as they are, anything else is one
-- single-quoted word that a POSIX shell gives back unchanged
SELECT v AS value, lambda_detect.shell_quote(v) AS quoted
  FROM unnest(ARRAY['arn:aws:lambda:us-east-1:111122223333:function:payments',
                    'open-sesame_1.2/x', '', 'two words', 'it''s', '''', '$(reboot)',
                    '`id`', 'a;b', E'line\nbreak', '$LATEST', 'x=y', NULL]) AS v;
SELECT lambda_detect.cli_option('statement-id', 'open') AS plain,
       lambda_detect.cli_option('statement-id', 'it''s') AS quoted,
       lambda_detect.cli_option('statement-id', '-open') AS dash,
       lambda_detect.cli_option('statement-id', '--debug x') AS dash_quoted,
       lambda_detect.cli_option('qualifier', NULL) IS NULL AS null_is_null;
SELECT pg_temp.error_of($q$SELECT lambda_detect.cli_option('--region', 'x')$q$);

-- user agents: IaC tools first (their agents embed an SDK), then the CLI
-- (which embeds botocore), the console, the SDKs
SELECT lambda_detect.classify_user_agent(ua) AS class, ua AS user_agent
  FROM unnest(ARRAY[
    'APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 aws-sdk-go-v2/1.30.5 os/linux lang/go#1.22.7',
    'aws-cdk/2.150.0',
    'cloudformation.amazonaws.com',
    'pulumi-aws/6.0.0 aws-sdk-go/1.50.0',
    'aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.6 md/command#lambda.add-permission',
    'aws-cli/1.29.0 Python/3.11.4 Linux/5.15.0 botocore/1.31.0',
    'AWS Internal',
    'console.amazonaws.com',
    'signin.amazonaws.com',
    'console.ec2.amazonaws.com',
    '[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.372-b08 java/1.8.0_372 vendor/Oracle_Corporation cfg/retry-mode/standard]',
    'Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 lang/python#3.11',
    'botocore/1.34.0',
    'aws-sdk-java/2.20.0 Linux/5.10',
    'aws-sdk-go-v2/1.30.5 os/linux lang/go#1.22.7',
    'aws-sdk-js/3.600.0',
    'AWS-SDK-JS/3.600.0',
    'curl/8.5.0',
    'lambda.amazonaws.com',
    '',
    NULL]) AS ua;

-- the policy statement AddPermission returns is a JSON string: parsed when
-- it is a JSON object, NULL (never an error) otherwise
SELECT s AS statement, lambda_detect.parse_policy_statement(s) AS parsed
  FROM unnest(ARRAY['{"Sid":"open","Effect":"Allow","Principal":"*"}',
                    '{"Sid": "open", "Effect": "Allow"',
                    'not json at all',
                    '["an", "array"]',
                    '42',
                    '',
                    '{"bad": "\u0000"}',
                    NULL]) AS s;
SELECT lambda_detect.parse_policy_statement(repeat('[', 100000) || repeat(']', 100000)) AS too_deep;

-- ---------------------------------------------------------------------------
-- Business hours.  2026-11-01 is a Sunday; by default business hours are
-- 09:00-18:00, Monday to Friday, UTC.
SELECT t AS at_time, o.*
  FROM unnest(ARRAY['2026-11-02 08:59:59+00', '2026-11-02 09:00:00+00', '2026-11-02 17:59:59+00',
                    '2026-11-02 18:00:00+00', '2026-11-01 12:00:00+00', '2026-11-06 23:30:00+00']::timestamptz[]) AS t,
       LATERAL lambda_detect.off_hours(t) o;
-- across midnight in another zone: Friday 23:30 UTC is Saturday 08:30 in
-- Tokyo, Monday 00:30 UTC is 09:30 there, Wednesday 01:30 UTC is 10:30;
-- in New York (UTC-5 after 1 November 2026) Saturday 03:00 UTC is Friday 22:00
SELECT t AS at_time, z AS time_zone, o.local_time, o.local_day, o.off_hours, o.reason
  FROM (VALUES ('2026-11-06 23:30:00+00'::timestamptz, 'Asia/Tokyo'),
               ('2026-11-09 00:30:00+00', 'Asia/Tokyo'),
               ('2026-11-04 01:30:00+00', 'Asia/Tokyo'),
               ('2026-11-08 23:30:00+00', 'Asia/Tokyo'),
               ('2026-11-07 03:00:00+00', 'America/New_York'),
               ('2026-11-06 14:00:00+00', 'America/New_York')) AS v(t, z),
       LATERAL lambda_detect.off_hours(t, z) o;
-- a night shift, 22:00-06:00 starting Monday to Friday: the small hours of
-- Saturday belong to Friday's shift, those of Monday to Sunday (no shift)
SELECT t AS at_time, o.local_day, o.off_hours, o.reason
  FROM unnest(ARRAY['2026-11-03 23:00:00+00', '2026-11-04 03:00:00+00', '2026-11-07 03:00:00+00',
                    '2026-11-09 03:00:00+00', '2026-11-03 12:00:00+00', '2026-11-07 23:00:00+00',
                    '2026-11-04 06:00:00+00']::timestamptz[]) AS t,
       LATERAL lambda_detect.off_hours(t, 'UTC', '22:00', '06:00') o;
-- equal start and end: whole days; the days alone decide
SELECT t AS at_time, o.off_hours, o.reason
  FROM unnest(ARRAY['2026-11-02 03:00:00+00', '2026-11-01 03:00:00+00']::timestamptz[]) AS t,
       LATERAL lambda_detect.off_hours(t, 'UTC', '00:00', '00:00') o;
SELECT o.off_hours, o.reason
  FROM lambda_detect.off_hours('2026-11-01 12:00:00+00', business_days => '{6,7}') o;
SELECT pg_temp.error_of(q) FROM unnest(ARRAY[
  $q$SELECT lambda_detect.off_hours(NULL)$q$,
  $q$SELECT lambda_detect.off_hours('infinity')$q$,
  $q$SELECT lambda_detect.off_hours(now(), 'Nowhere/Town')$q$,
  $q$SELECT lambda_detect.off_hours(now(), business_days => '{0}')$q$]) AS q;

-- ---------------------------------------------------------------------------
-- The trail.  Mallory (IAM user, key AKIAMALLORY, from 198.51.100.23) opens
-- "payments:prod" to the world on Sunday 2026-11-01 at 10:00 UTC, after some
-- earlier activity; a CI role opens another function through CloudFormation
-- with a malformed statement; Terraform, from IPv6, with a statement id that
-- starts with a dash; and a grant that names no region nor statement.
CREATE FUNCTION pg_temp.ct(id text, at text, name text, patch jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'eventVersion', '1.08', 'eventID', id, 'eventTime', at,
    'eventSource', 'lambda.amazonaws.com', 'eventName', name,
    'awsRegion', 'us-east-1', 'recipientAccountId', '111122223333',
    'sourceIPAddress', '198.51.100.23',
    'userAgent', 'aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.6 md/command#lambda.add-permission',
    'userIdentity', jsonb_build_object('type', 'IAMUser', 'arn', 'arn:aws:iam::111122223333:user/mallory',
                                       'accountId', '111122223333', 'accessKeyId', 'AKIAMALLORY',
                                       'userName', 'mallory'),
    'requestParameters', jsonb_build_object('functionName', 'payments'),
    'eventType', 'AwsApiCall', 'readOnly', false) || patch)
$$;
CREATE FUNCTION pg_temp.bob(id text, at text, name text, ip text, patch jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
  SELECT pg_temp.ct(id, at, name, jsonb_build_object(
    'sourceIPAddress', ip, 'userAgent', 'Mozilla/5.0',
    'userIdentity', jsonb_build_object('type', 'IAMUser', 'arn', 'arn:aws:iam::111122223333:user/bob',
                                       'accountId', '111122223333', 'accessKeyId', 'AKIABOB',
                                       'userName', 'bob')) || patch)
$$;

INSERT INTO lambda_detect.inbox (source, payload) VALUES
  -- the attack
  ('trail', pg_temp.ct('inv-attack', '2026-11-01T10:00:00Z', 'AddPermission20150331v2', jsonb_build_object(
      'requestParameters', jsonb_build_object('functionName', 'payments', 'statementId', 'open-sesame',
          'action', 'lambda:InvokeFunction', 'principal', '*', 'qualifier', 'prod'),
      'responseElements', jsonb_build_object('statement',
          '{"Sid":"open-sesame","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:111122223333:function:payments:prod"}')))),
  -- mallory before: beyond 90 days, a grant a month ago, a refused grant, a look around
  ('trail', pg_temp.ct('mal-old', '2026-03-01T12:00:00Z', 'AddPermission20150331v2', jsonb_build_object(
      'requestParameters', jsonb_build_object('functionName', 'payments', 'statementId', 's3',
          'action', 'lambda:InvokeFunction', 'principal', 's3.amazonaws.com')))),
  ('trail', pg_temp.ct('mal-grant', '2026-10-01T09:30:00Z', 'AddPermission20150331v2', jsonb_build_object(
      'sourceIPAddress', '203.0.113.9',
      'requestParameters', jsonb_build_object('functionName', 'payments', 'statementId', 'sns',
          'action', 'lambda:InvokeFunction', 'principal', 'sns.amazonaws.com')))),
  ('trail', pg_temp.ct('mal-denied', '2026-10-20T10:00:00Z', 'AddPermission20150331v2', jsonb_build_object(
      'errorCode', 'AccessDeniedException', 'errorMessage', 'not authorized'))),
  ('trail', pg_temp.ct('mal-list', '2026-11-01T09:20:00Z', 'ListFunctions20150331', '{"requestParameters": null}')),
  ('trail', pg_temp.ct('mal-getpolicy', '2026-11-01T09:59:00Z', 'GetPolicy20150331v2')),
  -- mallory after: within the hour, exactly at its end, just past it
  ('trail', pg_temp.ct('mal-getfn', '2026-11-01T10:30:00Z', 'GetFunction20150331v2')),
  ('trail', pg_temp.ct('mal-edge', '2026-11-01T11:00:00Z', 'UpdateFunctionCode20150331v2')),
  ('trail', pg_temp.ct('mal-late', '2026-11-01T11:00:01Z', 'DeleteFunction20150331')),
  -- the same access key without an ARN; another user from the same address; unrelated
  ('trail', pg_temp.ct('key-only', '2026-11-01T10:10:00Z', 'GetCallerIdentity', jsonb_build_object(
      'eventSource', 'sts.amazonaws.com', 'sourceIPAddress', '192.0.2.44',
      'userIdentity', jsonb_build_object('type', 'IAMUser', 'accessKeyId', 'AKIAMALLORY')))),
  ('trail', pg_temp.bob('bob-same-ip', '2026-11-01T09:45:00Z', 'ConsoleLogin', '198.51.100.23',
      '{"eventSource": "signin.amazonaws.com"}')),
  ('trail', pg_temp.bob('bob-other', '2026-11-01T10:05:00Z', 'ListFunctions20150331', '203.0.113.50')),
  -- a CI role through CloudFormation, in another account, no earlier activity
  ('trail', pg_temp.ct('inv-ci', '2026-11-03T23:30:00Z', 'AddPermission20150331v2', jsonb_build_object(
      'awsRegion', 'eu-west-3', 'recipientAccountId', '444455556666',
      'sourceIPAddress', 'cloudformation.amazonaws.com', 'userAgent', 'cloudformation.amazonaws.com',
      'userIdentity', jsonb_build_object('type', 'AssumedRole',
          'arn', 'arn:aws:sts::444455556666:assumed-role/ci-deployer/run-77',
          'accountId', '444455556666', 'accessKeyId', 'ASIACIDEPLOYER',
          'sessionContext', jsonb_build_object('sessionIssuer', jsonb_build_object(
              'type', 'Role', 'arn', 'arn:aws:iam::444455556666:role/ci-deployer', 'userName', 'ci-deployer'))),
      'requestParameters', jsonb_build_object(
          'functionName', 'arn:aws:lambda:eu-west-3:444455556666:function:report-gen',
          'statementId', 'it''s $(public)', 'action', 'lambda:InvokeFunction', 'principal', '*',
          'principalOrgID', 'o-abc123', 'sourceAccount', ''),
      'responseElements', jsonb_build_object('statement', '{"Sid": "it''s $(public)", "Effect": "Allow"')))),
  -- Terraform from IPv6, a statement id starting with a dash, no response
  ('trail', pg_temp.ct('inv-tf', '2026-11-09T00:30:00Z', 'AddPermission20150331v2', jsonb_build_object(
      'sourceIPAddress', '2001:db8::7',
      'userAgent', 'APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 aws-sdk-go-v2/1.30.5',
      'requestParameters', jsonb_build_object('functionName', 'thumbs', 'statementId', '-AllowAll',
          'action', 'lambda:InvokeFunctionUrl', 'principal', '*', 'functionUrlAuthType', 'NONE')))),
  -- a grant that names no region and no statement id
  ('trail', pg_temp.ct('inv-bare', '2026-11-10T12:00:00Z', 'AddPermission', jsonb_build_object(
      'awsRegion', NULL, 'sourceIPAddress', '203.0.113.200', 'userAgent', NULL,
      'requestParameters', jsonb_build_object('functionName', 'payments',
          'action', 'lambda:InvokeFunction', 'principal', '*'))));
SELECT inbox_rows, events, errors FROM lambda_detect.ingest_now();
SELECT alerts_created FROM lambda_detect.run_rule('lambda-public-invocation');
-- alert ids in event time order, for readable output
SELECT alert_id, event_id, event_time FROM lambda_detect.alerts ORDER BY alert_id;
SELECT alert_id AS attack FROM lambda_detect.alerts WHERE event_id = 'inv-attack' \gset
SELECT alert_id AS ci FROM lambda_detect.alerts WHERE event_id = 'inv-ci' \gset
SELECT alert_id AS tf FROM lambda_detect.alerts WHERE event_id = 'inv-tf' \gset
SELECT alert_id AS bare FROM lambda_detect.alerts WHERE event_id = 'inv-bare' \gset
-- as if delivered four and a half minutes late, and alerted a second later
UPDATE lambda_detect.alerts SET ingested_at = event_time + interval '4 minutes 30 seconds',
                                detected_at = event_time + interval '4 minutes 31 seconds';

INSERT INTO lambda_detect.known_networks (network, name) VALUES
  ('198.51.100.0/24', 'office VPN'),
  ('198.51.100.16/28', 'admin subnet'),
  ('2001:db8::/32', 'IPv6 lab'),
  ('203.0.113.0/24', 'CI runners');

-- ---------------------------------------------------------------------------
-- Identify the actor: mallory's earlier grant a month ago counts within the
-- 90-day history, the March one only with a longer history; the failed call
-- is activity but no grant
SELECT * FROM lambda_detect.alert_actor(:attack) \gx
SELECT history_start, actor_first_seen, actor_prior_events, actor_prior_grants, actor_last_grant
  FROM lambda_detect.alert_actor(:attack, '1 year');
SELECT actor_prior_events, actor_prior_grants, new_actor, access_key_prior_events
  FROM lambda_detect.alert_actor(:attack, '30 minutes');
-- no earlier activity at all; the user name of a role session is its role
SELECT * FROM lambda_detect.alert_actor(:ci) \gx

-- Request details: the qualifier, the narrowing conditions, the statement
SELECT * FROM lambda_detect.alert_request(:attack) \gx
-- a malformed statement: NULL, the raw text kept; a narrowed grant
SELECT * FROM lambda_detect.alert_request(:ci) \gx
-- no response at all
SELECT function_arn, statement_id, action, function_url_auth_type, scoped_by, unrestricted,
       policy_statement, policy_statement_text
  FROM lambda_detect.alert_request(:tf);

-- Source of the request: the most specific known network; seen before for
-- the account (bob, same morning) and for mallory
SELECT * FROM lambda_detect.alert_source(:attack) \gx
SELECT ip_prior_events_for_actor, ip_new_for_actor, ip_prior_events_in_account, ip_new_for_account
  FROM lambda_detect.alert_source(:attack, '30 minutes');
-- an AWS service as caller: no address to judge
SELECT * FROM lambda_detect.alert_source(:ci) \gx
-- IPv6 in a known network, never seen before; no user agent
SELECT source_address, ip_new_for_actor, ip_new_for_account, known_network, known_network_name,
       in_known_network, user_agent_class
  FROM lambda_detect.alert_source(:tf);
SELECT source_address, known_network, in_known_network, user_agent, user_agent_class
  FROM lambda_detect.alert_source(:bare);
DELETE FROM lambda_detect.known_networks WHERE name = 'CI runners';
SELECT known_network, in_known_network FROM lambda_detect.alert_source(:bare);

-- Timestamp context: UTC by default, another zone on request, the
-- organisation's zone once configured
SELECT alert_id, t.*
  FROM lambda_detect.alerts a, LATERAL lambda_detect.alert_timing(a.alert_id) t
 ORDER BY alert_id \gx
SELECT zone, local_time, local_day, off_hours, reason
  FROM lambda_detect.alert_timing(:tf, 'Asia/Tokyo');
INSERT INTO lambda_detect.investigation_settings (time_zone, business_hours_start, business_hours_end, business_days)
VALUES ('Asia/Tokyo', '08:00', '17:00', '{1,2,3,4,5,6}');
SELECT alert_id, t.zone, t.local_time, t.local_day, t.business_hours, t.off_hours, t.reason
  FROM lambda_detect.alerts a, LATERAL lambda_detect.alert_timing(a.alert_id) t
 ORDER BY alert_id;
DELETE FROM lambda_detect.investigation_settings;

-- Correlate: by actor, by access key, by address, within the hour before
-- and after (the end included, a second past it not), in time order
SELECT matched_by, time_offset, event_time, event_id, event_source, event_name, outcome,
       error_code, actor_arn, access_key_id, source_address, is_alert_event
  FROM lambda_detect.alert_related_events(:attack);
SELECT matched_by, time_offset, event_id
  FROM lambda_detect.alert_related_events(:attack, '10 minutes');
UPDATE lambda_detect.investigation_settings SET correlation_window = '1 minute';
INSERT INTO lambda_detect.investigation_settings (correlation_window) VALUES ('1 minute');
SELECT matched_by, time_offset, event_id FROM lambda_detect.alert_related_events(:attack);
DELETE FROM lambda_detect.investigation_settings;
-- nothing else around: only the alerted event itself
SELECT matched_by, time_offset, event_id, is_alert_event FROM lambda_detect.alert_related_events(:ci);

-- Outcome and remediation: the exact commands
SELECT * FROM lambda_detect.alert_remediation(:attack) \gx
SELECT * FROM lambda_detect.alert_remediation(:ci) \gx
SELECT remove_permission_command, get_policy_command FROM lambda_detect.alert_remediation(:tf) \gx
SELECT * FROM lambda_detect.alert_remediation(:bare) \gx
-- a region taken from the function ARN when the event has none
UPDATE lambda_detect.alerts SET aws_region = NULL WHERE alert_id = :ci;
SELECT region, get_policy_command FROM lambda_detect.alert_remediation(:ci);

-- Everything at once
SELECT jsonb_pretty(lambda_detect.investigate(:attack));
SELECT jsonb_pretty(lambda_detect.investigate(:ci) - 'actor' - 'source' - 'timing');

-- an unknown alert, NULL, nonsense parameters: errors with SQLSTATEs
SELECT pg_temp.error_of(q) FROM unnest(ARRAY[
  $q$SELECT * FROM lambda_detect.find_alert(999)$q$,
  $q$SELECT * FROM lambda_detect.find_alert(NULL)$q$,
  $q$SELECT * FROM lambda_detect.alert_actor(999)$q$,
  $q$SELECT * FROM lambda_detect.alert_actor(NULL)$q$,
  $q$SELECT * FROM lambda_detect.alert_request(999)$q$,
  $q$SELECT * FROM lambda_detect.alert_source(999)$q$,
  $q$SELECT * FROM lambda_detect.alert_timing(999)$q$,
  $q$SELECT * FROM lambda_detect.alert_related_events(999)$q$,
  $q$SELECT * FROM lambda_detect.alert_remediation(999)$q$,
  $q$SELECT * FROM lambda_detect.investigate(999)$q$,
  $q$SELECT * FROM lambda_detect.alert_actor(1, '-1 day')$q$,
  $q$SELECT * FROM lambda_detect.alert_source(1, '0')$q$,
  $q$SELECT * FROM lambda_detect.alert_related_events(1, '-1 hour')$q$,
  $q$SELECT * FROM lambda_detect.alert_timing(1, 'Nowhere/Town')$q$]) AS q;

-- ---------------------------------------------------------------------------
-- The questions are answered through the investigation indexes, however
-- busy the hour: 20,000 events of others around the attack, then each
-- index's scan count rises when alert_related_events, alert_actor and
-- alert_source run, and the answers are the same
INSERT INTO lambda_detect.events (event_id, event_time, event_source, event_name, outcome, record,
                                  actor_arn, access_key_id, source_ip, recipient_account_id)
SELECT 'bulk-' || g, timestamptz '2026-11-01 07:00:00+00' + g * interval '1 second',
       'sts.amazonaws.com', 'AssumeRole', 'success', '{}',
       'arn:aws:iam::111122223333:user/u' || (g % 500), 'AKIABULK' || (g % 500),
       ('10.0.' || (g % 200) || '.' || (g % 250))::inet, '111122223333'
  FROM generate_series(1, 20000) g;
ANALYZE lambda_detect.events;
CREATE FUNCTION pg_temp.index_scans() RETURNS TABLE (index_name name, scans bigint)
LANGUAGE sql AS $$
  -- events is partitioned: an index's scans are those of its partitions' indexes
  SELECT c.relname, sum(coalesce(pg_stat_get_xact_numscans(t.relid), 0))::bigint
    FROM pg_class c, pg_partition_tree(c.oid) t
   WHERE c.relname IN ('events_actor_time_idx', 'events_access_key_time_idx', 'events_source_ip_time_idx')
     AND c.relnamespace = 'lambda_detect'::regnamespace
   GROUP BY c.relname
$$;
-- scans counted inside one transaction block (no stats flush happens there)
CREATE TEMP TABLE scans_before (index_name name, scans bigint);
CREATE FUNCTION pg_temp.scans_since() RETURNS TABLE (index_name name, used boolean)
LANGUAGE sql AS $$
  SELECT n.index_name, n.scans > b.scans
    FROM pg_temp.index_scans() n JOIN scans_before b USING (index_name)
   ORDER BY 1
$$;
BEGIN;
INSERT INTO scans_before SELECT * FROM pg_temp.index_scans();
SELECT count(*) AS related, string_agg(event_id, ' ' ORDER BY event_time) AS events
  FROM lambda_detect.alert_related_events(:attack);
SELECT * FROM pg_temp.scans_since();
COMMIT;
BEGIN;
TRUNCATE scans_before;
INSERT INTO scans_before SELECT * FROM pg_temp.index_scans();
SELECT actor_prior_events, access_key_prior_events FROM lambda_detect.alert_actor(:attack);
SELECT * FROM pg_temp.scans_since();
COMMIT;
BEGIN;
TRUNCATE scans_before;
INSERT INTO scans_before SELECT * FROM pg_temp.index_scans();
SELECT ip_prior_events_for_actor, ip_prior_events_in_account FROM lambda_detect.alert_source(:attack);
SELECT * FROM pg_temp.scans_since();
COMMIT;

DELETE FROM lambda_detect.known_networks;

-- ---------------------------------------------------------------------------
-- Hostile objects in public, first on the caller's search_path, are never
-- called: every function pins search_path = pg_catalog, pg_temp
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.lower() called'; END $$;
CREATE FUNCTION public.replace(text, text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.replace() called'; END $$;
CREATE FUNCTION public.timezone(text, timestamptz) RETURNS timestamp LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.timezone() called'; END $$;
CREATE FUNCTION public.hostile_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.= called'; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hostile_eq);
CREATE FUNCTION public.hostile_ineq(inet, inet) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hostile public.= on inet called'; END $$;
CREATE OPERATOR public.= (LEFTARG = inet, RIGHTARG = inet, FUNCTION = public.hostile_ineq);
SET search_path = public, pg_catalog;
SELECT lambda_detect.investigate(:attack) #>> '{remediation,remove_permission_command}' AS revert,
       lambda_detect.investigate(:attack) #>> '{related,events}' AS related,
       lambda_detect.investigate(:attack) #>> '{source,user_agent_class}' AS ua_class;
SELECT lambda_detect.shell_quote('it''s') AS quoted, lambda_detect.classify_user_agent('Boto3/1.34') AS class,
       (lambda_detect.off_hours('2026-11-01 10:00:00+00', 'Asia/Tokyo')).local_day AS tokyo_day;
SELECT count(*) AS related FROM lambda_detect.alert_related_events(:attack);
RESET search_path;
DROP OPERATOR public.= (text, text);
DROP OPERATOR public.= (inet, inet);
DROP FUNCTION public.hostile_eq(text, text), public.hostile_ineq(inet, inet), public.lower(text),
              public.replace(text, text, text), public.timezone(text, timestamptz);
