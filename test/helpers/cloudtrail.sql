-- Shared helper of the pgTAP tests: CloudTrail records written by the tests.
--
--   \ir helpers/cloudtrail.sql
--   SELECT lambda_detect_test.ct_record('tap-x-1', '{"eventName": "DeleteFunction20150331"}');
--   SELECT lambda_detect_test.ct_attack('tap-x-2');
--
-- ct_record returns a plausible Lambda management event with the given
-- eventID; "changes" replaces top-level keys, and a key set to JSON null is
-- removed.  ct_attack returns the record the seed rule must alert on: a
-- successful AddPermission20150331v2 granting lambda:InvokeFunction to "*".

CREATE SCHEMA IF NOT EXISTS lambda_detect_test;

CREATE OR REPLACE FUNCTION lambda_detect_test.ct_record(
    event_id text,
    changes  jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT jsonb_object_agg(key, value)
      FROM jsonb_each(
             jsonb_build_object(
               'eventVersion', '1.08',
               'userIdentity', jsonb_build_object(
                   'type', 'IAMUser',
                   'principalId', 'AIDAEXAMPLETAP',
                   'arn', 'arn:aws:iam::111122223333:user/tap-tester',
                   'accountId', '111122223333',
                   'accessKeyId', 'AKIAEXAMPLETAP',
                   'userName', 'tap-tester'),
               'eventTime', '2026-11-28T10:00:00Z',
               'eventSource', 'lambda.amazonaws.com',
               'eventName', 'GetFunction20150331v2',
               'awsRegion', 'us-east-1',
               'sourceIPAddress', '198.51.100.7',
               'userAgent', 'aws-cli/2.15.0',
               'requestParameters', jsonb_build_object('functionName', 'tap-function'),
               'responseElements', NULL,
               'requestID', 'req-' || event_id,
               'eventID', event_id,
               'readOnly', true,
               'eventType', 'AwsApiCall',
               'managementEvent', true,
               'recipientAccountId', '111122223333',
               'eventCategory', 'Management')
             || changes)
     WHERE value <> 'null'::jsonb
$$;

CREATE OR REPLACE FUNCTION lambda_detect_test.ct_attack(
    event_id text,
    changes  jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT lambda_detect_test.ct_record(event_id,
             jsonb_build_object(
               'eventName', 'AddPermission20150331v2',
               'readOnly', false,
               'requestParameters', jsonb_build_object(
                   'action', 'lambda:InvokeFunction',
                   'functionName', 'f',
                   'principal', '*',
                   'statementId', 's'),
               'responseElements', jsonb_build_object(
                   'statement', '{"Sid":"s","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction"}'))
             || changes)
$$;
