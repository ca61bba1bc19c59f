-- Shared fixtures of the regression tests.
--
-- pg_temp.attack(id, patch, params): a successful AddPermission by mallory
-- in account 111122223333 granting lambda:InvokeFunction to "*" (a seed-rule
-- match); params replace requestParameters' keys, patch the record's.
CREATE FUNCTION pg_temp.attack(id text, patch jsonb DEFAULT '{}', params jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('eventID', id, 'eventTime', '2026-11-01T10:00:00Z',
    'eventSource', 'lambda.amazonaws.com', 'eventName', 'AddPermission20150331v2',
    'awsRegion', 'us-east-1', 'recipientAccountId', '111122223333',
    'sourceIPAddress', '198.51.100.23', 'userAgent', 'aws-cli/2.17.60',
    'userIdentity', jsonb_build_object('type', 'IAMUser', 'arn', 'arn:aws:iam::111122223333:user/mallory',
                                       'accessKeyId', 'AKIAMALLORY', 'userName', 'mallory'),
    'requestParameters', jsonb_build_object('action', 'lambda:InvokeFunction', 'functionName', 'payments',
                                            'principal', '*', 'statementId', 'open') || params,
    'responseElements', jsonb_build_object('statement', '{"Sid":"open"}')) || patch
$$;
-- pg_temp.error_of(sql): runs sql and returns its error as SQLSTATE: message
-- DETAIL: ... HINT: ... ('no error' when it succeeds)
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  detail text;
  hint text;
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  -- a CHECK's "Failing row contains (...)" holds times of the run: left out
  RETURN SQLSTATE || ': ' || SQLERRM
         || coalesce(' DETAIL: ' || nullif(regexp_replace(detail, '^Failing row contains .*', ''), ''), '')
         || coalesce(' HINT: ' || nullif(hint, ''), '');
END $$;
