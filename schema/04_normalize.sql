-- normalize(): the one place that turns any accepted CloudTrail shape into
-- event rows.  Implemented in C (src/normalize.c).

CREATE FUNCTION lambda_detect.normalize(
    payload                  jsonb,
    OUT ordinal              integer,
    OUT status               text,
    OUT sqlstate             text,
    OUT reason               text,
    OUT message              text,
    OUT location             text,
    OUT event_id             text,
    OUT event_time           timestamptz,
    OUT event_source         text,
    OUT event_name           text,
    OUT event_type           text,
    OUT aws_region           text,
    OUT recipient_account_id text,
    OUT actor_account_id     text,
    OUT actor_arn            text,
    OUT actor_type           text,
    OUT access_key_id        text,
    OUT user_name            text,
    OUT source_ip            inet,
    OUT source_address       text,
    OUT user_agent           text,
    OUT error_code           text,
    OUT error_message        text,
    OUT outcome              text,
    OUT read_only            boolean,
    OUT request_id           text,
    OUT request_parameters   jsonb,
    OUT response_elements    jsonb,
    OUT record               jsonb)
RETURNS SETOF record
LANGUAGE C STRICT STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ld_normalize';

COMMENT ON FUNCTION lambda_detect.normalize(jsonb) IS
    'Turns a CloudTrail payload (record, {"Records":[...]}, array, or EventBridge event) into one row per record: status event (with the typed fields), skipped (digest, Insight, empty; reason says which) or rejected (sqlstate, reason, message); never raises for bad input';
