-- Benchmark data: realistic CloudTrail records made in SQL.
--
-- bench.record(i, attack_every) returns CloudTrail record number i: a mix of
-- services and event names dominated by read-only calls (AssumeRole,
-- Decrypt, Describe*, Get*, List*), about 3% errors, a thousand actors over
-- twenty accounts and five regions, unique UUID eventIDs, and records of about
-- 1-1.5 kB (identity with session context, TLS details, request
-- parameters).  Every attack_every-th record is a Lambda AddPermission;
-- half of those grant principal "*" (the attack), half a service.
-- Everything derives from hashes of i, so a run is reproducible.

CREATE SCHEMA IF NOT EXISTS bench;

-- a stable pseudo-random number in [0, n) for record i and salt s
CREATE OR REPLACE FUNCTION bench.h(i bigint, s int, n int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (abs(hashint8(i * 7919 + s)::bigint) % n)::int $$;

-- a UUID-shaped text (as CloudTrail's eventID and requestID are) made
-- from the hash of seed: distinct seeds give distinct ids
CREATE OR REPLACE FUNCTION bench.uuid_text(seed text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT substr(m, 1, 8) || '-' || substr(m, 9, 4) || '-4' || substr(m, 14, 3) || '-'
          || substr(m, 17, 4) || '-' || substr(m, 21, 12)
     FROM md5(seed) m $$;

-- the event catalog: source, name, read-only, weight (per mille)
CREATE TABLE IF NOT EXISTS bench.catalog (
    slot   int PRIMARY KEY,
    source text, name text, read_only boolean
);
TRUNCATE bench.catalog;
INSERT INTO bench.catalog (slot, source, name, read_only)
SELECT row_number() OVER () - 1, source, name, read_only
  FROM (VALUES
    ('sts.amazonaws.com', 'AssumeRole', true, 130),
    ('sts.amazonaws.com', 'GetCallerIdentity', true, 40),
    ('kms.amazonaws.com', 'Decrypt', true, 110),
    ('kms.amazonaws.com', 'GenerateDataKey', true, 40),
    ('ec2.amazonaws.com', 'DescribeInstances', true, 90),
    ('ec2.amazonaws.com', 'DescribeSecurityGroups', true, 50),
    ('ec2.amazonaws.com', 'DescribeVolumes', true, 30),
    ('s3.amazonaws.com', 'ListBuckets', true, 20),
    ('s3.amazonaws.com', 'GetBucketPolicy', true, 30),
    ('ssm.amazonaws.com', 'GetParameter', true, 60),
    ('secretsmanager.amazonaws.com', 'GetSecretValue', true, 40),
    ('lambda.amazonaws.com', 'ListFunctions20150331', true, 30),
    ('lambda.amazonaws.com', 'GetFunction20150331v2', true, 30),
    ('lambda.amazonaws.com', 'GetPolicy20150331v2', true, 10),
    ('logs.amazonaws.com', 'CreateLogStream', false, 50),
    ('logs.amazonaws.com', 'DescribeLogGroups', true, 30),
    ('dynamodb.amazonaws.com', 'DescribeTable', true, 40),
    ('iam.amazonaws.com', 'GetRole', true, 30),
    ('iam.amazonaws.com', 'ListRoles', true, 15),
    ('cloudformation.amazonaws.com', 'DescribeStacks', true, 25),
    ('monitoring.amazonaws.com', 'GetMetricData', true, 35),
    ('ecr.amazonaws.com', 'GetAuthorizationToken', true, 20),
    ('ec2.amazonaws.com', 'RunInstances', false, 5),
    ('lambda.amazonaws.com', 'UpdateFunctionConfiguration20150331v2', false, 5),
    ('signin.amazonaws.com', 'ConsoleLogin', false, 5),
    ('iam.amazonaws.com', 'CreateAccessKey', false, 2),
    ('s3.amazonaws.com', 'PutBucketPolicy', false, 3)
  ) AS c(source, name, read_only, weight),
  LATERAL generate_series(1, weight);

CREATE OR REPLACE FUNCTION bench.record(i bigint, attack_every int DEFAULT 100000,
                                        id_prefix text DEFAULT 'bench')
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT jsonb_build_object(
    'eventVersion', '1.08',
    'userIdentity', CASE WHEN role THEN jsonb_build_object(
            'type', 'AssumedRole',
            'principalId', 'AROA' || upper(md5(actor::text)) || ':session-' || actor,
            'arn', format('arn:aws:sts::%s:assumed-role/app-role-%s/session-%s', account, actor % 97, actor),
            'accountId', account,
            'accessKeyId', 'ASIA' || upper(substr(md5(i::text), 1, 16)),
            'sessionContext', jsonb_build_object(
                'sessionIssuer', jsonb_build_object('type', 'Role',
                    'principalId', 'AROA' || upper(md5(actor::text)),
                    'arn', format('arn:aws:iam::%s:role/app-role-%s', account, actor % 97),
                    'accountId', account, 'userName', 'app-role-' || (actor % 97)),
                'webIdFederationData', '{}'::jsonb,
                'attributes', jsonb_build_object('creationDate', event_time, 'mfaAuthenticated', 'false')))
        ELSE jsonb_build_object(
            'type', 'IAMUser',
            'principalId', 'AIDA' || upper(md5(actor::text)),
            'arn', format('arn:aws:iam::%s:user/user-%s', account, actor),
            'accountId', account,
            'accessKeyId', 'AKIA' || upper(substr(md5(actor::text), 1, 16)),
            'userName', 'user-' || actor) END,
    'eventTime', event_time,
    'eventSource', source,
    'eventName', name,
    'awsRegion', region,
    'sourceIPAddress', ip,
    'userAgent', agent,
    'requestParameters', params,
    'responseElements', response,
    'requestID', bench.uuid_text('req-' || i),
    'eventID', bench.uuid_text(id_prefix || '-' || i),
    'readOnly', read_only,
    'eventType', 'AwsApiCall',
    'managementEvent', true,
    'recipientAccountId', account,
    'eventCategory', 'Management',
    'tlsDetails', jsonb_build_object('tlsVersion', 'TLSv1.3', 'cipherSuite', 'TLS_AES_128_GCM_SHA256',
                                     'clientProvidedHostHeader', split_part(source, '.', 1) || '.' || region || '.amazonaws.com'))
    || CASE WHEN failed THEN jsonb_build_object('errorCode', 'AccessDenied',
            'errorMessage', format('User: arn:aws:iam::%s:user/user-%s is not authorized to perform: %s:%s',
                                   account, actor, split_part(source, '.', 1), name))
       ELSE '{}'::jsonb END
FROM (
    SELECT i,
           attack,
           (100000000000 + bench.h(i, 1, 20) * 111111)::text AS account,
           bench.h(i, 2, 1000) AS actor,
           bench.h(i, 3, 10) < 6 AS role,
           (ARRAY['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-2'])[1 + bench.h(i, 4, 5)] AS region,
           format('%s.%s.%s.%s', 10 + bench.h(i, 5, 200), bench.h(i, 6, 256), bench.h(i, 7, 256), 1 + bench.h(i, 8, 254)) AS ip,
           (ARRAY['aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard',
                  'Boto3/1.34.162 md/Botocore#1.34.162 ua/2.0 os/linux#5.10.223 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.162',
                  'aws-sdk-go-v2/1.30.5 os/linux lang/go#1.22.7 md/GOOS#linux md/GOARCH#amd64 api/sts#1.30.7',
                  'APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0',
                  'AWS Internal',
                  'aws-sdk-java/2.25.60 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.12+7-LTS Java/17.0.12 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE'])[1 + bench.h(i, 9, 6)] AS agent,
           to_char((timestamptz '2026-11-01 00:00:00+00' + i * interval '7 milliseconds') AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS event_time,
           CASE WHEN attack THEN 'lambda.amazonaws.com' ELSE c.source END AS source,
           CASE WHEN attack THEN 'AddPermission20150331v2' ELSE c.name END AS name,
           CASE WHEN attack THEN false ELSE c.read_only END AS read_only,
           NOT attack AND bench.h(i, 10, 100) < 3 AS failed,
           CASE WHEN attack THEN jsonb_build_object(
                    'functionName', 'fn-' || bench.h(i, 11, 50),
                    'statementId', 'sid-' || i,
                    'action', 'lambda:InvokeFunction',
                    'principal', principal)
                ELSE jsonb_build_object(
                    'resourceId', md5('res' || bench.h(i, 13, 5000)),
                    'maxResults', 1000,
                    'filterSet', jsonb_build_object('items', jsonb_build_array(
                        jsonb_build_object('name', 'tag:team', 'valueSet', jsonb_build_object('items',
                            jsonb_build_array(jsonb_build_object('value', 'team-' || bench.h(i, 14, 40)))))))) END AS params,
           CASE WHEN attack THEN jsonb_build_object('statement',
                    format('{"Sid":"sid-%s","Effect":"Allow","Principal":%s,"Action":"lambda:InvokeFunction"}',
                           i, CASE WHEN principal = '*' THEN '"*"' ELSE '{"Service":"s3.amazonaws.com"}' END))
                WHEN bench.h(i, 15, 4) = 0 THEN jsonb_build_object('credentials', jsonb_build_object(
                    'accessKeyId', 'ASIA' || upper(substr(md5('k' || i), 1, 16)),
                    'expiration', 'Nov 1, 2026, 1:00:00 PM', 'sessionToken', md5('t' || i) || md5('u' || i)))
                ELSE NULL END AS response
      FROM (SELECT attack_every > 0 AND i % attack_every = attack_every / 2 AS attack,
                   CASE WHEN bench.h(i, 12, 2) = 0 THEN '*' ELSE 's3.amazonaws.com' END AS principal) a,
           bench.catalog c
     WHERE c.slot = bench.h(i, 0, (SELECT count(*)::int FROM bench.catalog))
) r
$$;
