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
CREATE INDEX ON bench.naive_events (access_key_id, event_time);

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

-- history: events ingested over the past days, outside the rule's window,
-- with event times spread over the last 95 days (one partition each).  The
-- rows are copies of the events already ingested through normalize() (so
-- they have the same sizes and mix, the rare AddPermission included), under
-- new ids and times: normalizing millions of records again would measure
-- nothing the ingest steps have not measured already.
CREATE FUNCTION bench.grow_events(target bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    missing bigint := target - (SELECT count(*) FROM lambda_detect.events);
    templates bigint;
BEGIN
    CREATE TEMP TABLE template ON COMMIT DROP AS
        SELECT row_number() OVER () AS n, e.* FROM lambda_detect.events e;
    templates := (SELECT count(*) FROM template);
    CREATE INDEX ON template (n);
    INSERT INTO lambda_detect.events (event_id, event_time, ingested_at, event_source, event_name,
        event_type, aws_region, recipient_account_id, actor_account_id, actor_arn, actor_type,
        access_key_id, user_name, source_ip, source_address, user_agent, error_code, error_message,
        outcome, read_only, request_id, request_parameters, response_elements, record)
    SELECT 'h-' || g, now() - interval '2 hours' - (g % 95) * interval '1 day' - (g / 95) * interval '1 ms',
           now() - interval '2 hours' - g * interval '1 ms', t.event_source,
           t.event_name, t.event_type, t.aws_region, t.recipient_account_id, t.actor_account_id,
           t.actor_arn, t.actor_type, t.access_key_id, t.user_name, t.source_ip, t.source_address,
           t.user_agent, t.error_code, t.error_message, t.outcome, t.read_only, t.request_id,
           t.request_parameters, t.response_elements, t.record
      FROM generate_series(1, missing) g
      JOIN template t ON t.n = 1 + g % templates;
    RETURN missing;
END $$;

-- the raw-jsonb baseline grows the same way: copies of its own documents
CREATE FUNCTION bench.grow_raw(target bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    missing bigint := target - (SELECT count(*) FROM bench.raw_json);
    templates bigint;
BEGIN
    CREATE TEMP TABLE raw_template ON COMMIT DROP AS
        SELECT row_number() OVER () AS n, r.doc FROM bench.raw_json r;
    templates := (SELECT count(*) FROM raw_template);
    CREATE INDEX ON raw_template (n);
    INSERT INTO bench.raw_json (doc)
    SELECT t.doc FROM generate_series(1, missing) g JOIN raw_template t ON t.n = 1 + g % templates;
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
