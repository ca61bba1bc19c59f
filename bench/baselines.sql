-- Benchmark helpers: the baseline tables a user would otherwise build, the
-- naive SQL pipeline, timing helpers and the data writers.

-- (c) the floor: raw JSON in a one-column table, no index
CREATE TABLE bench.raw_json (doc jsonb);

-- (d) what a user would write: raw JSON, then INSERT ... SELECT of the same
-- columns into a table with the same indexes as lambda_detect.events
CREATE TABLE bench.naive_raw (doc jsonb);
CREATE TABLE bench.naive_events (LIKE lambda_detect.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE bench.naive_events ADD PRIMARY KEY (event_id);
CREATE INDEX ON bench.naive_events (ingested_at)
    WHERE event_source = 'lambda.amazonaws.com'
      AND (event_name LIKE 'AddPermission%' OR event_name LIKE 'CreateFunctionUrlConfig%'
           OR event_name LIKE 'UpdateFunctionUrlConfig%');
CREATE INDEX ON bench.naive_events (actor_arn, event_time);
CREATE INDEX ON bench.naive_events (source_ip, event_time);
CREATE INDEX ON bench.naive_events (event_time);

CREATE FUNCTION bench.naive_insert() RETURNS bigint LANGUAGE sql AS $$
    WITH ins AS (
        INSERT INTO bench.naive_events (event_id, event_time, event_source, event_name, event_type,
            aws_region, recipient_account_id, actor_account_id, actor_arn, actor_type, access_key_id,
            user_name, source_ip, source_address, user_agent, error_code, error_message, outcome,
            read_only, request_id, request_parameters, response_elements, record)
        SELECT d->>'eventID', (d->>'eventTime')::timestamptz, d->>'eventSource', d->>'eventName',
               d->>'eventType', d->>'awsRegion', d->>'recipientAccountId',
               d#>>'{userIdentity,accountId}', d#>>'{userIdentity,arn}', d#>>'{userIdentity,type}',
               d#>>'{userIdentity,accessKeyId}',
               coalesce(d#>>'{userIdentity,userName}', d#>>'{userIdentity,sessionContext,sessionIssuer,userName}'),
               CASE WHEN d->>'sourceIPAddress' ~ '^[0-9.]+$|:' THEN (d->>'sourceIPAddress')::inet END,
               d->>'sourceIPAddress', d->>'userAgent', d->>'errorCode', d->>'errorMessage',
               CASE WHEN coalesce(d->>'errorCode', '') <> '' OR coalesce(d->>'errorMessage', '') <> ''
                    THEN 'failure' ELSE 'success' END,
               (d->>'readOnly')::boolean, d->>'requestID', d->'requestParameters', d->'responseElements', d
          FROM bench.naive_raw AS r(d)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING 1)
    SELECT count(*) FROM ins
$$;

-- the seed rule's predicate over raw jsonb, no index: what a user without
-- the engine would run
CREATE FUNCTION bench.baseline_query() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM bench.raw_json
     WHERE doc->>'eventSource' = 'lambda.amazonaws.com'
       AND doc->>'eventName' LIKE 'AddPermission%'
       AND coalesce(doc->>'errorCode', '') = '' AND coalesce(doc->>'errorMessage', '') = ''
       AND doc#>>'{requestParameters,action}' LIKE '%lambda:InvokeFunction%'
       AND doc#>>'{requestParameters,principal}' LIKE '*%'
$$;

CREATE FUNCTION bench.median_ms(timings double precision[]) RETURNS numeric LANGUAGE sql AS $$
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t)::numeric, 3) FROM unnest(timings) t
$$;

CREATE FUNCTION bench.median_rule_ms(runs int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    timings double precision[] := '{}';
    t0 timestamptz;
BEGIN
    FOR k IN 1 .. runs LOOP
        t0 := clock_timestamp();
        PERFORM lambda_detect.run_rule('lambda-public-invocation');
        timings := timings || extract(epoch FROM clock_timestamp() - t0) * 1000;
    END LOOP;
    RETURN bench.median_ms(timings);
END $$;

CREATE FUNCTION bench.median_baseline_ms(runs int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    timings double precision[] := '{}';
    t0 timestamptz;
BEGIN
    FOR k IN 1 .. runs LOOP
        t0 := clock_timestamp();
        PERFORM bench.baseline_query();
        timings := timings || extract(epoch FROM clock_timestamp() - t0) * 1000;
    END LOOP;
    RETURN bench.median_ms(timings);
END $$;

-- history: events ingested over the past days, outside the rule's window
CREATE FUNCTION bench.grow_events(target bigint, attack_every int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    missing bigint := target - (SELECT count(*) FROM lambda_detect.events);
BEGIN
    INSERT INTO lambda_detect.events (event_id, event_time, ingested_at, event_source, event_name,
        event_type, aws_region, recipient_account_id, actor_account_id, actor_arn, actor_type,
        access_key_id, user_name, source_ip, source_address, user_agent, error_code, error_message,
        outcome, read_only, request_id, request_parameters, response_elements, record)
    SELECT n.event_id, n.event_time, now() - interval '2 hours' - g * interval '100 ms', n.event_source,
           n.event_name, n.event_type, n.aws_region, n.recipient_account_id, n.actor_account_id,
           n.actor_arn, n.actor_type, n.access_key_id, n.user_name, n.source_ip, n.source_address,
           n.user_agent, n.error_code, n.error_message, n.outcome, n.read_only, n.request_id,
           n.request_parameters, n.response_elements, n.record
      FROM generate_series(1, missing) g,
           lambda_detect.normalize(bench.record(g, attack_every, 'b3')) n
     WHERE n.status = 'event';
    RETURN missing;
END $$;

-- writes records [first, last] as one gzipped CloudTrail log file
CREATE FUNCTION bench.write_log_file(first bigint, last bigint, path text, attack_every int, prefix text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'COPY (SELECT jsonb_build_object(''Records'', jsonb_agg(bench.record(i, %s, %L) ORDER BY i))::text
                 FROM generate_series(%s, %s) i)
           TO PROGRAM %L WITH (FORMAT csv, QUOTE E''\x01'', DELIMITER E''\x02'')',
        attack_every, prefix, first, last,
        format('mkdir -p "$(dirname %s)" && gzip -1 > %s', path, path));
END $$;
