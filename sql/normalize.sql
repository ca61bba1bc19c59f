-- lambda_detect.normalize(): every accepted shape, every rejection reason, and the field
-- derivations the rules rely on (outcome as Elastic derives it).
\set VERBOSITY terse
\i sql/include/fresh_state.sql
SET search_path = lambda_detect, public;
SET timezone = 'UTC';

-- a minimal valid record, reused below
CREATE TEMP TABLE r AS SELECT '{
  "eventVersion": "1.08", "eventID": "n-1", "eventTime": "2024-08-01T13:47:16Z",
  "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2",
  "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.17",
  "recipientAccountId": "111122223333", "eventType": "AwsApiCall", "readOnly": false,
  "requestID": "req-1",
  "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice",
                   "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
  "requestParameters": {"action": "lambda:InvokeFunction", "functionName": "f",
                        "principal": "*", "statementId": "s"},
  "responseElements": {"statement": "{}"}
}'::jsonb AS rec;

-- shape 1: a single record: every typed column
SELECT ordinal, status, location, event_id, event_time, event_source, event_name,
       event_type, aws_region, recipient_account_id, actor_account_id, actor_arn,
       actor_type, access_key_id, user_name, source_ip, source_address, user_agent,
       error_code, error_message, outcome, read_only, request_id,
       request_parameters ->> 'principal' AS principal,
       response_elements IS NOT NULL AS has_response, record = (SELECT rec FROM r) AS record_kept
  FROM r, lambda_detect.normalize(r.rec) \gx

-- shape 2: a CloudTrail log file body
SELECT ordinal, status, location, event_id
  FROM r, lambda_detect.normalize(jsonb_build_object('Records', jsonb_build_array(
          r.rec, r.rec || '{"eventID": "n-2"}')));

-- shape 3: a bare array
SELECT ordinal, status, location, event_id
  FROM r, lambda_detect.normalize(jsonb_build_array(r.rec || '{"eventID": "n-3"}', r.rec || '{"eventID": "n-4"}'));

-- shape 4: an EventBridge event carrying a CloudTrail record
SELECT ordinal, status, location, event_id, event_name
  FROM r, lambda_detect.normalize(jsonb_build_object('version', '0', 'detail-type', 'AWS API Call via CloudTrail',
                                        'source', 'aws.lambda', 'detail', r.rec));
-- ... and one that is not from CloudTrail
SELECT status, reason FROM lambda_detect.normalize('{"detail-type": "EC2 Instance State-change Notification", "detail": {}}');
-- ... and a CloudTrail one without its detail
SELECT status, sqlstate, reason, location FROM lambda_detect.normalize('{"detail-type": "AWS API Call via CloudTrail"}');

-- skipped with a counted reason: digest files, Insight records, empty files
SELECT status, reason, message FROM lambda_detect.normalize('{"awsAccountId": "1", "digestStartTime": "2020-09-11T18:36:49Z", "digestEndTime": "2020-09-11T19:36:49Z", "logFiles": []}');
SELECT status, reason, location FROM lambda_detect.normalize('{"Records": [{"eventVersion": "1.07", "eventTime": "2024-01-01T00:00:00Z", "eventSource": "lambda.amazonaws.com", "eventName": "AddPermission20150331v2", "eventType": "AwsCloudTrailInsight", "eventCategory": "Insight", "eventID": "i-1"}]}');
SELECT status, reason FROM lambda_detect.normalize('{"Records": []}');
SELECT status, reason FROM lambda_detect.normalize('[]');

-- rejected whole: not CloudTrail at all
SELECT status, sqlstate, reason, message, record FROM lambda_detect.normalize('"just a string"');
SELECT status, sqlstate, reason, message, record FROM lambda_detect.normalize('42');
SELECT status, sqlstate, reason, message FROM lambda_detect.normalize('{"hello": "world"}');
SELECT status, sqlstate, reason, message FROM lambda_detect.normalize('{"Records": {"eventID": "x"}}');
SELECT ordinal, status, sqlstate, reason, location, record FROM lambda_detect.normalize('[1, "two", null]');

-- rejected records; the good record beside them is kept
SELECT ordinal, status, sqlstate, reason, message, location, event_id
  FROM r, lambda_detect.normalize(jsonb_build_object('Records', jsonb_build_array(
          r.rec - 'eventID',
          r.rec - 'eventTime',
          r.rec - 'eventSource',
          r.rec - 'eventName',
          r.rec || '{"eventID": null}',
          r.rec || '{"eventID": ""}',
          r.rec || '{"eventID": 17}',
          r.rec || '{"eventName": ["AddPermission"]}',
          r.rec || '{"eventTime": 1722520036}',
          r.rec || '{"eventTime": "yesterday"}',
          r.rec || '{"eventTime": "2024-02-30T00:00:00Z"}',
          r.rec || '{"eventTime": "2023-02-29T12:00:00Z"}',
          r.rec || '{"eventTime": "2024-08-01T24:00:00Z"}',
          r.rec || '{"eventTime": "2024-08-01T13:47:16"}',
          r.rec || '{"awsRegion": 5}',
          r.rec || '{"errorCode": false}',
          r.rec || '{"userIdentity": "root"}',
          r.rec || jsonb_build_object('eventID', repeat('x', 513)),
          r.rec || '{"eventID": "n-good"}')))
 ORDER BY ordinal;

-- every identifier events is indexed on has a bound, so that no record can
-- fail the statement that stores it: an accessKeyId over 128 bytes (AWS's
-- longest) is rejected like an eventID over 512 bytes
SELECT ordinal, status, sqlstate, reason, message, access_key_id
  FROM r, lambda_detect.normalize(jsonb_build_array(
          r.rec || jsonb_build_object('userIdentity', jsonb_build_object('accessKeyId', repeat('K', 129))),
          r.rec || jsonb_build_object('userIdentity', jsonb_build_object('accessKeyId', 'AKIA' || repeat('K', 124)))))
 ORDER BY ordinal;

-- valid times: leap day, fractions, offsets, all normalised to UTC
SELECT t, (SELECT event_time FROM lambda_detect.normalize((SELECT rec FROM r) || jsonb_build_object('eventTime', t))) AS event_time
  FROM unnest(ARRAY['2024-02-29T23:59:59Z', '2024-08-01T13:47:16.123Z',
                    '2024-08-01T15:47:16+02:00', '2024-08-01T13:47:16.5-0130']) AS t;

-- outcome, as Elastic derives event.outcome
SELECT label, (SELECT outcome FROM lambda_detect.normalize((SELECT rec FROM r) || patch)) AS outcome
  FROM (VALUES ('no error fields',          '{}'::jsonb),
               ('errorCode',                '{"errorCode": "AccessDenied"}'),
               ('errorMessage only',        '{"errorMessage": "denied"}'),
               ('empty errorCode',          '{"errorCode": ""}'),
               ('empty both',               '{"errorCode": "", "errorMessage": ""}'),
               ('null errorCode',           '{"errorCode": null}'),
               ('empty code, message set',  '{"errorCode": "", "errorMessage": "x"}')) AS v(label, patch);

-- sourceIPAddress: an IPv4 or IPv6 address is typed, a service name is kept as text
SELECT addr, (SELECT source_ip FROM lambda_detect.normalize((SELECT rec FROM r) || jsonb_build_object('sourceIPAddress', addr))) AS source_ip,
       (SELECT source_address FROM lambda_detect.normalize((SELECT rec FROM r) || jsonb_build_object('sourceIPAddress', addr))) AS source_address
  FROM unnest(ARRAY['198.51.100.1', '2001:db8::7', 'lambda.amazonaws.com', 'AWS Internal']) AS addr;

-- who: an assumed role's user name comes from its session issuer; a service has only invokedBy
SELECT actor_type, actor_arn, user_name, access_key_id
  FROM lambda_detect.normalize('{"eventID": "n-5", "eventTime": "2024-08-01T13:47:16Z", "eventSource": "lambda.amazonaws.com",
                   "eventName": "AddPermission20150331v2",
                   "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/deploy/ci",
                                    "accessKeyId": "ASIAEXAMPLE",
                                    "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "deploy",
                                                                         "arn": "arn:aws:iam::111122223333:role/deploy"}}}}');
SELECT actor_type, actor_arn, user_name
  FROM lambda_detect.normalize('{"eventID": "n-6", "eventTime": "2024-08-01T13:47:16Z", "eventSource": "lambda.amazonaws.com",
                   "eventName": "Invoke", "userIdentity": {"type": "AWSService", "invokedBy": "apigateway.amazonaws.com"}}');

-- null requestParameters and responseElements stay SQL NULL
SELECT request_parameters IS NULL AS rp_null, response_elements IS NULL AS re_null
  FROM r, lambda_detect.normalize(r.rec || '{"requestParameters": null, "responseElements": null}');

-- limits: more records than lambda_detect.max_records rejects the payload whole
SET lambda_detect.max_records = 2;
SELECT status, sqlstate, reason, message, jsonb_array_length(record -> 'Records') AS kept_records
  FROM r, lambda_detect.normalize(jsonb_build_object('Records', jsonb_build_array(r.rec, r.rec, r.rec)));
RESET lambda_detect.max_records;

-- (always schema-qualify it: a bare normalize(...) is SQL's Unicode NORMALIZE)
-- normalize is strict and never raises for bad input
SELECT count(*) FROM lambda_detect.normalize(NULL);

-- the record comes out compressed with lz4 (where the server has it) once it
-- is 256 bytes or more, since events would otherwise store most records raw;
-- it reads back unchanged
WITH big AS (
    SELECT r.rec || jsonb_build_object('userAgent', repeat('aws-cli/2.15.0 ', 20)) AS rec FROM r)
SELECT pg_column_compression(n.record) IS NOT DISTINCT FROM
         (SELECT CASE WHEN 'lz4' = ANY (enumvals) THEN 'lz4' END FROM pg_settings
           WHERE name = 'default_toast_compression') AS compressed_as_expected,
       n.record = big.rec AS reads_back_whole,
       pg_column_size(n.record) < pg_column_size(big.rec) AS smaller
  FROM big, lambda_detect.normalize(big.rec) n;
SELECT pg_column_compression(n.record) IS NULL AS small_record_stays_raw
  FROM lambda_detect.normalize('{"eventID": "n-s", "eventTime": "2024-08-01T13:47:16Z",
                                 "eventSource": "s3.amazonaws.com", "eventName": "GetObject"}') n;
