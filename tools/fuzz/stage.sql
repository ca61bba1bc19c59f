-- The fuzz driver's database (tools/fuzz/fuzz.c), set up by
-- tools/fuzz/in-cluster.sh after CREATE EXTENSION: the rules' options and
-- exceptions turned on, and the step for one payload.
--
-- fuzz_stage(payload) casts the text to jsonb (a
-- refusal is returned as "cast SQLSTATE", for the driver to judge), run
-- lambda_detect.normalize() over it and check its rows against the
-- function's contract, then queue the payload in the inbox.  Returns
-- "ok EVENTS SKIPPED REJECTED", what ingest_now() must then do with it.
-- An error raised by normalize() is not caught: the driver counts it as a
-- failure.
CREATE FUNCTION fuzz_stage(payload text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  doc jsonb;
  events bigint;
  skipped bigint;
  rejected bigint;
  broken bigint;
BEGIN
  BEGIN
    doc := payload::jsonb;
  EXCEPTION WHEN OTHERS THEN
    RETURN 'cast ' || SQLSTATE;
  END;

  SELECT count(*) FILTER (WHERE n.status = 'event'),
         count(*) FILTER (WHERE n.status = 'skipped'),
         count(*) FILTER (WHERE n.status = 'rejected'),
         count(*) FILTER (WHERE NOT coalesce(CASE n.status
           WHEN 'event' THEN n.sqlstate IS NULL AND n.event_id <> '' AND length(n.event_id) <= 512
                AND n.event_time IS NOT NULL AND n.event_source <> '' AND n.event_name <> ''
                AND n.outcome IN ('success', 'failure') AND n.record IS NOT NULL
           WHEN 'skipped' THEN n.sqlstate IS NULL AND n.reason IS NOT NULL
           WHEN 'rejected' THEN n.sqlstate ~ '^[0-9A-Z]{5}$' AND n.reason IS NOT NULL
                AND n.message IS NOT NULL
           END, false))
         + CASE WHEN count(*) = 0 OR max(n.ordinal) <> count(*) THEN 1 ELSE 0 END
    INTO events, skipped, rejected, broken
    FROM lambda_detect.normalize(doc) AS n;
  IF broken > 0 THEN
    RETURN format('contract: %s rows break it', broken);
  END IF;

  INSERT INTO lambda_detect.inbox (source, payload) VALUES ('fuzz', doc);
  RETURN format('ok %s %s %s', events, skipped, rejected);
END $$;

-- Every code path of the rules, not only their defaults: grouping on every
-- field (long and odd values in group keys), scoped grants skipped, and
-- exceptions whose patterns the fuzzed values are matched against.  The
-- seed rule keeps its shipped options (parity).
UPDATE lambda_detect.rules
   SET group_by = '{function_arn,function_name,actor_arn,account_id,aws_region,source_ip,principal,action,statement_id,user_agent}',
       group_window = '1 hour'
 WHERE rule = 'lambda-public-wildcard-action';
UPDATE lambda_detect.rules
   SET group_by = '{principal,function_name}', group_window = '10 minutes',
       skip_scoped_by = '{principalOrgID,sourceArn+sourceAccount}', own_org_ids = '{o-a1b2c3d4e5}'
 WHERE rule = 'lambda-cross-account-invocation';
UPDATE lambda_detect.rules SET skip_scoped_by = '{principalOrgID}', own_org_ids = '{o-a1b2c3d4e5}'
 WHERE rule = 'lambda-function-url-public';
INSERT INTO lambda_detect.exceptions (rule, field, operator, value, reason) VALUES
  (NULL, 'actor_arn', 'glob', '*:user/m?ll*ry\*', 'fuzz: a glob with a literal star'),
  (NULL, 'function_name', 'glob', '*?*?*?*?*x*y*z', 'fuzz: a glob that backtracks'),
  (NULL, 'user_agent', 'prefix', 'aws-cli/2.17.6', 'fuzz: a prefix'),
  (NULL, 'statement_id', 'equals', 'open', 'fuzz: suppresses the attack seed''s statement now and then'),
  (NULL, 'source_ip', 'in_cidr', '2001:db8::/32', 'fuzz: a network'),
  (NULL, 'account_id', 'glob', '9999*', 'fuzz: an account glob'),
  ('lambda-public-invocation', 'aws_region', 'glob', 'é*', 'fuzz: a non-ASCII pattern'),
  ('lambda-function-url-public', 'function_arn', 'prefix', 'arn:aws:lambda:', 'fuzz: function ARNs');
