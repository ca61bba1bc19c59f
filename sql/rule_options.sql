-- Rule options beyond parity: skip_scoped_by (grants scoped to an
-- organisation or to one fixed source are not alerted, but counted and
-- kept) and grouping (matches of one group within a window become one
-- alert that counts them).  Both are off on the shipped rules.
\set VERBOSITY terse
\i sql/include/fresh_state.sql
\i sql/include/fixtures.sql
SET timezone = 'UTC';

-- pg_temp.at(id, time, params): the attack at another event time
CREATE FUNCTION pg_temp.at(id text, t text, params jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql AS $$ SELECT pg_temp.attack(id, jsonb_build_object('eventTime', t), params) $$;
-- pg_temp.run(): ingest the inbox, run the seed rule, show the run's counts
CREATE FUNCTION pg_temp.run() RETURNS TABLE (candidates int, matched int, alerts_created int,
    duplicates int, suppressed int, scoped_out int, grouped int)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM lambda_detect.ingest_now();
  RETURN QUERY
  SELECT r.candidates, r.matched, r.alerts_created, r.duplicates, r.suppressed, r.scoped_out, r.grouped
    FROM lambda_detect.run_rule('lambda-public-invocation', now()) r;
END $$;

-- pg_temp.reset(): forget events and what runs made of them, between cases
CREATE FUNCTION pg_temp.reset() RETURNS void LANGUAGE sql AS $$
  TRUNCATE lambda_detect.events, lambda_detect.alerts, lambda_detect.alert_occurrences,
           lambda_detect.suppressed_matches
$$;

-- the shipped rules: both options off (parity)
SELECT rule, group_by, group_window, skip_scoped_by, own_org_ids FROM lambda_detect.rules ORDER BY rule;

-- 1. skip_scoped_by.  Off: a grant scoped to an organisation alerts (parity)
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('scope', pg_temp.attack('org-parity', '{}', '{"functionName": "f0", "principalOrgID": "o-a1b2c3d4e5"}'));
SELECT * FROM pg_temp.run();
SELECT event_id, scoped_by FROM lambda_detect.alerts ORDER BY alert_id;

-- On, with the user's organisation o-a1b2c3d4e5 (the function's account,
-- recipientAccountId, is 111122223333).  The caller of AddPermission picks
-- principalOrgID, sourceArn and sourceAccount: a grant to the attacker's
-- own organisation, or to a fixed source in the attacker's own account, is
-- a backdoor as open to the attacker as "*", and alerts.
UPDATE lambda_detect.rules SET skip_scoped_by = '{principalOrgID,sourceArn+sourceAccount}',
       own_org_ids = '{o-a1b2c3d4e5,o-zz9yy8xx7w}'
 WHERE rule = 'lambda-public-invocation';
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  -- kept out: an own organisation (either of the two), a fixed source of the own account
  ('scope', pg_temp.attack('org',        '{}', '{"functionName": "f1", "principalOrgID": "o-a1b2c3d4e5"}')),
  ('scope', pg_temp.attack('org-second', '{}', '{"functionName": "f1b", "principalOrgID": "o-zz9yy8xx7w"}')),
  ('scope', pg_temp.attack('src-fixed',  '{}', '{"functionName": "f2", "sourceArn": "arn:aws:s3:::invoices", "sourceAccount": "111122223333"}')),
  -- alerted: a foreign organisation (or ours in another case), a fixed
  -- source in a foreign account, or in an account when the event names no
  -- owner
  ('scope', pg_temp.attack('org-foreign','{}', '{"functionName": "f10", "principalOrgID": "o-attacker00001"}')),
  ('scope', pg_temp.attack('org-case',   '{}', '{"functionName": "f11", "principalOrgID": "O-A1B2C3D4E5"}')),
  ('scope', pg_temp.attack('src-foreign','{}', '{"functionName": "f12", "sourceArn": "arn:aws:s3:::invoices", "sourceAccount": "444455556666"}')),
  ('scope', pg_temp.attack('src-no-owner','{}', '{"functionName": "f13", "sourceArn": "arn:aws:s3:::invoices", "sourceAccount": "111122223333"}')
            - 'recipientAccountId'),
  -- alerted: the source is a pattern, or the account is missing, or the org is empty
  ('scope', pg_temp.attack('src-star',   '{}', '{"functionName": "f3", "sourceArn": "arn:aws:s3:::invoices-*", "sourceAccount": "111122223333"}')),
  ('scope', pg_temp.attack('src-qmark',  '{}', '{"functionName": "f4", "sourceArn": "arn:aws:s3:::invoice?", "sourceAccount": "111122223333"}')),
  ('scope', pg_temp.attack('src-no-acct','{}', '{"functionName": "f5", "sourceArn": "arn:aws:s3:::invoices"}')),
  ('scope', pg_temp.attack('acct-only',  '{}', '{"functionName": "f6", "sourceAccount": "111122223333"}')),
  ('scope', pg_temp.attack('org-empty',  '{}', '{"functionName": "f7", "principalOrgID": ""}')),
  ('scope', pg_temp.attack('unscoped',   '{}', '{"functionName": "f8"}'));
SELECT * FROM pg_temp.run();
SELECT event_id, account_id, scoped_by FROM lambda_detect.alerts ORDER BY alert_id;
-- kept findable, with the entry that applied
SELECT rule, event_id, exception_id, scoped_by FROM lambda_detect.suppressed_matches ORDER BY event_id;
-- only the entry listed applies (own_org_ids alone skips nothing)
UPDATE lambda_detect.rules SET skip_scoped_by = '{sourceArn+sourceAccount}'
 WHERE rule = 'lambda-public-invocation';
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('scope', pg_temp.attack('org-2', '{}', '{"functionName": "f9", "principalOrgID": "o-a1b2c3d4e5"}'));
SELECT * FROM pg_temp.run();
-- a re-run finds nothing new
SELECT * FROM pg_temp.run();
UPDATE lambda_detect.rules SET skip_scoped_by = '{}', own_org_ids = '{}'
 WHERE rule = 'lambda-public-invocation';

-- 2. grouping: function + actor within 5 minutes.  The two "*" grants a
-- public function URL needs (InvokeFunctionUrl, then InvokeFunction with
-- invokedViaFunctionUrl) become one alert.
SELECT pg_temp.reset();
UPDATE lambda_detect.rules SET group_by = '{function_arn,actor_arn}', group_window = '5 minutes'
 WHERE rule = 'lambda-public-invocation';
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('url', pg_temp.at('url-1', '2026-11-01T12:00:00Z',
      '{"functionName": "webhook", "action": "lambda:InvokeFunctionUrl", "functionUrlAuthType": "NONE", "statementId": "FunctionURLAllowPublicAccess"}')),
  ('url', pg_temp.at('url-2', '2026-11-01T12:00:02Z',
      '{"functionName": "webhook", "action": "lambda:InvokeFunction", "invokedViaFunctionUrl": true, "statementId": "FunctionURLInvokeAllowPublicAccess"}'));
SELECT * FROM pg_temp.run();
SELECT event_id, occurrences, first_event_id, last_event_id, group_key, group_window
  FROM lambda_detect.alerts ORDER BY alert_id;
SELECT rule, event_id, alert_id, event_time FROM lambda_detect.alert_occurrences ORDER BY event_id;

-- a late delivery of an earlier call joins and becomes the first; the
-- function given as an ARN is the same function
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('url', pg_temp.at('url-0', '2026-11-01T11:57:00Z',
      '{"functionName": "arn:aws:lambda:us-east-1:111122223333:function:webhook"}'));
SELECT * FROM pg_temp.run();
SELECT event_id, occurrences, first_event_id, first_event_time, last_event_id, last_event_time
  FROM lambda_detect.alerts ORDER BY alert_id;

-- the window closes: 5 minutes or more from the alert's event opens a new
-- alert; another actor, another function: other groups
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('url', pg_temp.at('url-late', '2026-11-01T12:05:00Z', '{"functionName": "webhook"}')),
  ('url', pg_temp.attack('url-other-actor',
      '{"eventTime": "2026-11-01T12:00:30Z", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/trent"}}',
      '{"functionName": "webhook"}')),
  ('url', pg_temp.at('url-other-fn', '2026-11-01T12:00:40Z', '{"functionName": "billing"}'));
SELECT * FROM pg_temp.run();
SELECT event_id, occurrences, first_event_id, last_event_id, group_key ->> 'actor_arn' AS actor,
       group_key ->> 'function_arn' AS function_arn
  FROM lambda_detect.alerts ORDER BY alert_id;

-- the late event's alert is the newest of its group: a match near it joins it
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('url', pg_temp.at('url-late-2', '2026-11-01T12:06:00Z', '{"functionName": "webhook"}'));
SELECT * FROM pg_temp.run();
SELECT event_id, occurrences, last_event_id FROM lambda_detect.alerts
 WHERE event_id LIKE 'url-late%' ORDER BY alert_id;

-- a closed alert takes no more occurrences: a new one pages again (11:58
-- is within the closed alert's window, and in no other)
SELECT status FROM lambda_detect.close_alert(
  (SELECT alert_id FROM lambda_detect.alerts WHERE event_id = 'url-1'), 'true_positive', 'reverted');
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('url', pg_temp.at('url-3', '2026-11-01T11:58:00Z', '{"functionName": "webhook"}'));
SELECT * FROM pg_temp.run();
SELECT event_id, occurrences, status FROM lambda_detect.alerts
 WHERE group_key ->> 'function_arn' LIKE '%:webhook' AND event_time < '2026-11-01 12:05:00+00'
 ORDER BY alert_id;

-- exceptions apply before grouping: an excepted match joins nothing
INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason)
VALUES ('lambda-public-invocation', 'statement_id', 'equals', 'ci-tested', 'the CI test statement');
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('url', pg_temp.at('url-excepted', '2026-11-01T12:01:30Z', '{"functionName": "webhook", "statementId": "ci-tested"}'));
SELECT * FROM pg_temp.run();
SELECT sum(occurrences) AS occurrences, count(*) AS alerts FROM lambda_detect.alerts;

-- grouped matches are not alerts: they do not count towards max_signals
SELECT pg_temp.reset();
UPDATE lambda_detect.rules SET max_signals = 2 WHERE rule = 'lambda-public-invocation';
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'burst', pg_temp.at('burst-' || i, '2026-11-01T13:00:' || lpad(i::text, 2, '0') || 'Z',
                           jsonb_build_object('functionName', 'fn-' || (i % 2)))
  FROM generate_series(10, 29) AS i;
SELECT events FROM lambda_detect.ingest_now();
SELECT alerts_created, grouped, truncated FROM lambda_detect.run_rule('lambda-public-invocation', now());
SELECT group_key ->> 'function_arn' AS function_arn, occurrences, first_event_id, last_event_id
  FROM lambda_detect.alerts ORDER BY alert_id;
UPDATE lambda_detect.rules SET max_signals = 100 WHERE rule = 'lambda-public-invocation';

-- the window is anchored on the alert's own event, not sliding: a match
-- joins when it lies within 5 minutes of the alert's event, so the order in
-- which a burst arrives decides which event is the alert and, for a burst
-- longer than the window, how many alerts it makes.  Calls at 12:00, 12:04
-- and 12:08: in time order (one at a time, or together: a run takes the
-- calls of one batch in event time order) 12:08 is 8 minutes from the
-- 12:00 alert and opens another; with 12:04 first, both others join it.
SELECT pg_temp.reset();
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('anchor', pg_temp.at('in-order-1200', '2026-11-01T12:00:00Z', '{"functionName": "in-order"}')),
  ('anchor', pg_temp.at('middle-first-1204', '2026-11-01T12:04:00Z', '{"functionName": "middle-first"}'));
SELECT * FROM pg_temp.run();
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('anchor', pg_temp.at('in-order-1204', '2026-11-01T12:04:00Z', '{"functionName": "in-order"}')),
  ('anchor', pg_temp.at('middle-first-1200', '2026-11-01T12:00:00Z', '{"functionName": "middle-first"}'));
SELECT * FROM pg_temp.run();
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('anchor', pg_temp.at('in-order-1208', '2026-11-01T12:08:00Z', '{"functionName": "in-order"}')),
  ('anchor', pg_temp.at('middle-first-1208', '2026-11-01T12:08:00Z', '{"functionName": "middle-first"}')),
  ('anchor', pg_temp.at('together-1208', '2026-11-01T12:08:00Z', '{"functionName": "together"}')),
  ('anchor', pg_temp.at('together-1200', '2026-11-01T12:00:00Z', '{"functionName": "together"}')),
  ('anchor', pg_temp.at('together-1204', '2026-11-01T12:04:00Z', '{"functionName": "together"}'));
SELECT * FROM pg_temp.run();
SELECT split_part(group_key ->> 'function_arn', ':', 7) AS function, event_id, occurrences,
       first_event_id, last_event_id
  FROM lambda_detect.alerts ORDER BY 1, event_time;

-- grouping by a field the event lacks groups the events that lack it
SELECT pg_temp.reset();
UPDATE lambda_detect.rules SET group_by = '{user_agent}', group_window = '1 hour'
 WHERE rule = 'lambda-public-invocation';
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('ua', pg_temp.at('ua-1', '2026-11-01T14:00:00Z') - 'userAgent'),
  ('ua', pg_temp.at('ua-2', '2026-11-01T14:10:00Z') - 'userAgent'),
  ('ua', pg_temp.at('ua-3', '2026-11-01T14:20:00Z'));
SELECT * FROM pg_temp.run();
SELECT event_id, occurrences, group_key FROM lambda_detect.alerts ORDER BY alert_id;
UPDATE lambda_detect.rules SET group_by = '{}', group_window = NULL
 WHERE rule = 'lambda-public-invocation';

-- a value too long for the alerts' group index (the caller of the API picks
-- its user agent) is kept as its prefix and MD5: the run succeeds, and equal
-- long values still group together, different ones apart
SELECT pg_temp.reset();
UPDATE lambda_detect.rules SET group_by = '{user_agent}', group_window = '1 hour'
 WHERE rule = 'lambda-public-invocation';
CREATE FUNCTION pg_temp.long_agent(first int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('userAgent', string_agg(md5(g::text), '' ORDER BY g))
    FROM generate_series(first, first + 199) g
$$;
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('long ua', pg_temp.at('lua-1', '2026-11-01T14:00:00Z') || pg_temp.long_agent(1)),
  ('long ua', pg_temp.at('lua-2', '2026-11-01T14:10:00Z') || pg_temp.long_agent(1)),
  ('long ua', pg_temp.at('lua-3', '2026-11-01T14:20:00Z') || pg_temp.long_agent(2));
SELECT * FROM pg_temp.run();
SELECT status FROM lambda_detect.rule_runs ORDER BY run_id DESC LIMIT 1;
SELECT event_id, occurrences, group_key ->> 'user_agent' AS user_agent
  FROM lambda_detect.alerts ORDER BY alert_id;
UPDATE lambda_detect.rules SET group_by = '{}', group_window = NULL
 WHERE rule = 'lambda-public-invocation';

-- 3. bad options are refused, with their SQLSTATEs
SELECT pg_temp.error_of(format(
  'UPDATE lambda_detect.rules SET %s WHERE rule = %L', s, 'lambda-public-invocation')) AS refused
  FROM unnest(ARRAY[
    $$skip_scoped_by = '{sourceArn}'$$,
    $$skip_scoped_by = ARRAY[NULL]::text[]$$,
    $$skip_scoped_by = NULL$$,
    $$group_by = '{function_arn}'$$,
    $$group_window = '5 minutes'$$,
    $$group_by = '{event_name}', group_window = '5 minutes'$$,
    $$group_by = '{function_arn}', group_window = '0 seconds'$$,
    $$group_by = '{function_arn}', group_window = '8 days'$$,
    $$group_by = ARRAY['actor_arn', NULL], group_window = '1 minute'$$,
    -- principalOrgID needs the user's own organisations, which must look
    -- like AWS organisation ids
    $$skip_scoped_by = '{principalOrgID}'$$,
    $$skip_scoped_by = '{principalOrgID}', own_org_ids = '{}'$$,
    $$own_org_ids = NULL$$,
    $$own_org_ids = ARRAY[NULL]::text[]$$,
    $$own_org_ids = '{""}'$$,
    $$own_org_ids = '{o-short}'$$,
    $$own_org_ids = '{O-A1B2C3D4E5}'$$,
    $$own_org_ids = '{123456789012}'$$,
    $$own_org_ids = ARRAY['o-a1b2c3d4e5', ' o-a1b2c3d4e5']$$,
    $$own_org_ids = ARRAY['o-a1b2c3d4e5,o-b1b2c3d4e5']$$,
    $$own_org_ids = '{{o-a1b2c3d4e5}}'$$,
    $$own_org_ids = '[0:0]={o-a1b2c3d4e5}'$$,
    $$own_org_ids = ARRAY(SELECT 'o-' || lpad(g::text, 10, '0') FROM generate_series(1, 17) g)$$]) AS s;
-- and is accepted with them; emptying them then is refused
UPDATE lambda_detect.rules SET skip_scoped_by = '{principalOrgID}',
       own_org_ids = ARRAY(SELECT 'o-' || lpad(g::text, 10, '0') FROM generate_series(1, 16) g)
 WHERE rule = 'lambda-public-invocation';
SELECT pg_temp.error_of($$UPDATE lambda_detect.rules SET own_org_ids = '{}'
                          WHERE rule = 'lambda-public-invocation'$$) AS refused;
UPDATE lambda_detect.rules SET skip_scoped_by = '{}', own_org_ids = '{}'
 WHERE rule = 'lambda-public-invocation';
-- a field named twice groups as once
UPDATE lambda_detect.rules SET group_by = '{actor_arn,actor_arn}', group_window = '1 minute'
 WHERE rule = 'lambda-public-invocation';
SELECT pg_temp.reset();
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('twice', pg_temp.at('twice-1', '2026-11-01T15:00:00Z')),
  ('twice', pg_temp.at('twice-2', '2026-11-01T15:00:30Z'));
SELECT * FROM pg_temp.run();
SELECT event_id, occurrences, group_key FROM lambda_detect.alerts;
UPDATE lambda_detect.rules SET group_by = '{}', group_window = NULL
 WHERE rule = 'lambda-public-invocation';

-- 4. the options on the companion rules.  The wildcard rule skips a grant
-- scoped to an organisation; the function URL rule groups a URL created
-- and then updated (its grant, set by the matcher, is what it groups by).
SELECT pg_temp.reset();
UPDATE lambda_detect.rules SET skip_scoped_by = '{principalOrgID}', own_org_ids = '{o-a1b2c3d4e5}'
 WHERE rule = 'lambda-public-wildcard-action';
UPDATE lambda_detect.rules SET group_by = '{function_arn,principal}', group_window = '10 minutes'
 WHERE rule = 'lambda-function-url-public';
CREATE FUNCTION pg_temp.url(id text, name text, t text) RETURNS jsonb LANGUAGE sql AS $$
  SELECT pg_temp.attack(id, jsonb_build_object('eventName', name, 'eventTime', t,
           'requestParameters', jsonb_build_object('functionName', 'webhook', 'authType', 'NONE')))
$$;
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('wild', pg_temp.attack('wild-org', '{}', '{"functionName": "w1", "action": "lambda:*", "principalOrgID": "o-a1b2c3d4e5"}')),
  ('wild', pg_temp.attack('wild-open', '{}', '{"functionName": "w2", "action": "lambda:*"}')),
  ('url',  pg_temp.url('fu-create', 'CreateFunctionUrlConfig20211031', '2026-11-01T16:00:00Z')),
  ('url',  pg_temp.url('fu-update', 'UpdateFunctionUrlConfig20211031', '2026-11-01T16:04:00Z'));
SELECT events FROM lambda_detect.ingest_now();
SELECT rule, alerts_created, scoped_out, grouped
  FROM unnest(ARRAY['lambda-public-wildcard-action', 'lambda-function-url-public']) AS r(name),
       LATERAL lambda_detect.run_rule(r.name, now())
 ORDER BY rule;
SELECT rule, event_id, occurrences, last_event_id, group_key FROM lambda_detect.alerts ORDER BY alert_id;
SELECT rule, event_id, scoped_by FROM lambda_detect.suppressed_matches;
UPDATE lambda_detect.rules SET skip_scoped_by = '{}', own_org_ids = '{}'
 WHERE rule = 'lambda-public-wildcard-action';
UPDATE lambda_detect.rules SET group_by = '{}', group_window = NULL
 WHERE rule = 'lambda-function-url-public';

-- 5. A run's memory does not grow with the matches it keeps out or folds
-- (they are not capped by max_signals): what each one needs is freed with
-- it.  A trigger on the tables that record them notes, at each record, the
-- memory of the SPI procedure contexts, which hold the run's own (and the
-- trigger function's, the same at every call).  From the 100th record of
-- 2,000 to the last, it stays within 64 kB; were each match's statement
-- parameters left there, it would grow by about 100 bytes a match.
SELECT pg_temp.reset();
CREATE TABLE pg_temp.spi_memory (n bigint GENERATED ALWAYS AS IDENTITY, recorded text, bytes bigint);
CREATE FUNCTION pg_temp.note_spi_memory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pg_temp.spi_memory (recorded, bytes)
  SELECT TG_TABLE_NAME, sum(total_bytes) FROM pg_catalog.pg_backend_memory_contexts
   WHERE name = 'SPI Proc';
  RETURN NULL;
END $$;
CREATE TRIGGER note_spi_memory AFTER INSERT ON lambda_detect.suppressed_matches
  FOR EACH ROW EXECUTE FUNCTION pg_temp.note_spi_memory();
CREATE TRIGGER note_spi_memory AFTER INSERT ON lambda_detect.alert_occurrences
  FOR EACH ROW EXECUTE FUNCTION pg_temp.note_spi_memory();
UPDATE lambda_detect.rules SET skip_scoped_by = '{principalOrgID}', own_org_ids = '{o-a1b2c3d4e5}',
       group_by = '{function_arn}', group_window = '1 hour'
 WHERE rule = 'lambda-public-invocation';
-- 2,000 grants scoped to our organisation, and 2,001 calls of one group
INSERT INTO lambda_detect.inbox (source, payload)
SELECT 'memory', pg_temp.at('mem-org-' || g, '2026-11-01T17:00:00Z',
                            '{"functionName": "scoped", "principalOrgID": "o-a1b2c3d4e5"}')
  FROM generate_series(1, 2000) g
UNION ALL
SELECT 'memory', pg_temp.at('mem-group-' || g, '2026-11-01T17:00:00Z', '{"functionName": "burst"}')
  FROM generate_series(0, 2000) g;
SELECT events FROM lambda_detect.ingest_now();
SELECT alerts_created, scoped_out, grouped FROM lambda_detect.run_rule('lambda-public-invocation', now());
SELECT recorded, count(*) AS records,
       (array_agg(bytes ORDER BY n DESC))[1] - (array_agg(bytes ORDER BY n))[100] < 65536 AS flat
  FROM pg_temp.spi_memory GROUP BY recorded ORDER BY recorded;
DROP TRIGGER note_spi_memory ON lambda_detect.suppressed_matches;
DROP TRIGGER note_spi_memory ON lambda_detect.alert_occurrences;
UPDATE lambda_detect.rules SET skip_scoped_by = '{}', own_org_ids = '{}', group_by = '{}', group_window = NULL
 WHERE rule = 'lambda-public-invocation';

-- 6. A run applies the rule as its locked row holds it, not as the run's
-- start read it: the worker starts a run in one transaction and executes
-- it in the next, and run_rule() may wait for the rule's lock while
-- someone changes the rule.  A trigger on rule_runs changes the rule right
-- after the run's start recorded its row; the run then applies the new
-- severity, risk score, max_signals and options, and the new matcher.
SELECT pg_temp.reset();
CREATE FUNCTION pg_temp.change_rule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE lambda_detect.rules
     SET severity = 'high', risk_score = 73, max_signals = 1,
         skip_scoped_by = '{sourceArn+sourceAccount}', group_by = '{function_arn}', group_window = '1 hour'
   WHERE rule = NEW.rule;
  RETURN NULL;
END $$;
CREATE TRIGGER change_rule AFTER INSERT ON lambda_detect.rule_runs
  FOR EACH ROW EXECUTE FUNCTION pg_temp.change_rule();
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('changed', pg_temp.at('changed-src', '2026-11-01T18:00:00Z',
      '{"functionName": "fixed", "sourceArn": "arn:aws:s3:::invoices", "sourceAccount": "111122223333"}')),
  ('changed', pg_temp.at('changed-a1', '2026-11-01T18:01:00Z', '{"functionName": "a"}')),
  ('changed', pg_temp.at('changed-a2', '2026-11-01T18:02:00Z', '{"functionName": "a"}')),
  ('changed', pg_temp.at('changed-b', '2026-11-01T18:03:00Z', '{"functionName": "b"}'));
SELECT events FROM lambda_detect.ingest_now();
SELECT rule_version, matched, alerts_created, scoped_out, grouped, truncated
  FROM lambda_detect.run_rule('lambda-public-invocation', now());
SELECT event_id, severity, risk_score, occurrences FROM lambda_detect.alerts ORDER BY alert_id;
-- the matcher: the wildcard rule's matcher alerts on a "lambda:*" grant,
-- which the seed rule's never matches
SELECT pg_temp.reset();
CREATE OR REPLACE FUNCTION pg_temp.change_rule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE lambda_detect.rules SET matcher = 'lambda_public_wildcard_action' WHERE rule = NEW.rule;
  RETURN NULL;
END $$;
UPDATE lambda_detect.rules SET severity = 'medium', risk_score = 47, max_signals = 100,
       skip_scoped_by = '{}', group_by = '{}', group_window = NULL
 WHERE rule = 'lambda-public-invocation';
INSERT INTO lambda_detect.inbox (source, payload) VALUES
  ('changed', pg_temp.at('changed-wild', '2026-11-01T18:10:00Z', '{"functionName": "w", "action": "lambda:*"}'));
SELECT events FROM lambda_detect.ingest_now();
SELECT matched, alerts_created FROM lambda_detect.run_rule('lambda-public-invocation', now());
SELECT rule, event_id, action FROM lambda_detect.alerts ORDER BY alert_id;
DROP TRIGGER change_rule ON lambda_detect.rule_runs;
UPDATE lambda_detect.rules SET matcher = 'lambda_public_invocation' WHERE rule = 'lambda-public-invocation';
SELECT rule, matcher, severity, risk_score, max_signals, group_by, group_window, skip_scoped_by, own_org_ids
  FROM lambda_detect.rules ORDER BY rule;
