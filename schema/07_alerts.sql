-- Alerts: one row per (rule, event), with the triage fields of the
-- investigation guide, a status analysts move through, and NOTIFY on the
-- channel lambda_detect_alerts for integrations.

CREATE TABLE lambda_detect.alerts (
    alert_id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule               text        NOT NULL,
    rule_version       integer     NOT NULL,
    run_id             bigint,
    event_id           text        NOT NULL,
    event_time         timestamptz NOT NULL,
    ingested_at        timestamptz NOT NULL,
    detected_at        timestamptz NOT NULL DEFAULT now(),
    severity           text        NOT NULL,
    risk_score         integer     NOT NULL,
    reason             text        NOT NULL,
    account_id         text,
    aws_region         text,
    event_name         text        NOT NULL,
    function_name      text,
    function_arn       text,
    statement_id       text,
    action             text,
    principal          text,
    scoped_by          jsonb       NOT NULL DEFAULT '{}',
    actor_arn          text,
    actor_type         text,
    access_key_id      text,
    user_name          text,
    source_ip          inet,
    source_address     text,
    user_agent         text,
    request_parameters jsonb,
    response_elements  jsonb,
    status             text        NOT NULL DEFAULT 'open',
    status_changed_at  timestamptz,
    status_changed_by  text,
    status_note        text,
    CONSTRAINT alerts_rule_event_key UNIQUE (rule, event_id),
    CONSTRAINT alerts_status_check CHECK (status IN ('open', 'acknowledged', 'closed')),
    CONSTRAINT alerts_severity_check CHECK (severity IN ('low', 'medium', 'high', 'critical'))
);

COMMENT ON TABLE lambda_detect.alerts IS
    'Detections: one row per (rule, event), with triage fields; inserting or changing status notifies channel lambda_detect_alerts';
COMMENT ON COLUMN lambda_detect.alerts.alert_id IS 'Alert id, increasing in creation order (listeners resume from the last one they saw)';
COMMENT ON SEQUENCE lambda_detect.alerts_alert_id_seq IS 'Ids of alerts';
COMMENT ON COLUMN lambda_detect.alerts.rule IS 'The rule that fired';
COMMENT ON COLUMN lambda_detect.alerts.rule_version IS 'That rule''s version';
COMMENT ON COLUMN lambda_detect.alerts.run_id IS 'The rule_runs row that created the alert';
COMMENT ON COLUMN lambda_detect.alerts.event_id IS 'The CloudTrail eventID that matched';
COMMENT ON COLUMN lambda_detect.alerts.event_time IS 'When the API call happened';
COMMENT ON COLUMN lambda_detect.alerts.ingested_at IS 'When the event was ingested';
COMMENT ON COLUMN lambda_detect.alerts.detected_at IS 'When the alert was created';
COMMENT ON COLUMN lambda_detect.alerts.severity IS 'The rule''s severity';
COMMENT ON COLUMN lambda_detect.alerts.risk_score IS 'The rule''s risk score';
COMMENT ON COLUMN lambda_detect.alerts.reason IS 'What matched, in words';
COMMENT ON COLUMN lambda_detect.alerts.account_id IS 'The account that owns the function (recipientAccountId)';
COMMENT ON COLUMN lambda_detect.alerts.aws_region IS 'Region of the call';
COMMENT ON COLUMN lambda_detect.alerts.event_name IS 'The API call, e.g. AddPermission20150331v2';
COMMENT ON COLUMN lambda_detect.alerts.function_name IS 'requestParameters.functionName as given (a name, an ARN or a partial ARN)';
COMMENT ON COLUMN lambda_detect.alerts.function_arn IS 'The function''s ARN, from functionName and the event''s account and region';
COMMENT ON COLUMN lambda_detect.alerts.statement_id IS 'requestParameters.statementId: the policy statement to remove to revert';
COMMENT ON COLUMN lambda_detect.alerts.action IS 'requestParameters.action: the action granted';
COMMENT ON COLUMN lambda_detect.alerts.principal IS 'requestParameters.principal: who was granted it';
COMMENT ON COLUMN lambda_detect.alerts.scoped_by IS 'Narrowing conditions present on the grant (sourceArn, sourceAccount, principalOrgID, functionUrlAuthType, eventSourceToken, invokedViaFunctionUrl): {} means unrestricted';
COMMENT ON COLUMN lambda_detect.alerts.actor_arn IS 'Who made the call';
COMMENT ON COLUMN lambda_detect.alerts.actor_type IS 'userIdentity.type of the caller';
COMMENT ON COLUMN lambda_detect.alerts.access_key_id IS 'Access key used';
COMMENT ON COLUMN lambda_detect.alerts.user_name IS 'User name of the caller';
COMMENT ON COLUMN lambda_detect.alerts.source_ip IS 'Source address of the call, when an IP';
COMMENT ON COLUMN lambda_detect.alerts.source_address IS 'sourceIPAddress verbatim';
COMMENT ON COLUMN lambda_detect.alerts.user_agent IS 'User agent of the call';
COMMENT ON COLUMN lambda_detect.alerts.request_parameters IS 'requestParameters of the event';
COMMENT ON COLUMN lambda_detect.alerts.response_elements IS 'responseElements of the event (the resulting policy statement)';
COMMENT ON COLUMN lambda_detect.alerts.status IS 'open, acknowledged or closed';
COMMENT ON COLUMN lambda_detect.alerts.status_changed_at IS 'When status last changed';
COMMENT ON COLUMN lambda_detect.alerts.status_changed_by IS 'Who last changed status (the current role)';
COMMENT ON COLUMN lambda_detect.alerts.status_note IS 'Analyst''s note on the last status change';

CREATE INDEX alerts_detected_at_idx ON lambda_detect.alerts (detected_at);
COMMENT ON INDEX lambda_detect.alerts_detected_at_idx IS 'Recent alerts first';

CREATE INDEX alerts_open_idx ON lambda_detect.alerts (alert_id) WHERE status <> 'closed';
COMMENT ON INDEX lambda_detect.alerts_open_idx IS 'The triage queue: alerts not yet closed';

-- Builds the NOTIFY payload of one alert.  Values are cut so that the JSON
-- text stays under NOTIFY's 8000-byte limit whatever the event held: first
-- at 256 characters, then 64, then 16.  At 64 the payload always fits (ten
-- text values of at most 64 characters, each at most 6 bytes once escaped),
-- so the last pass is a margin, not a hope.
CREATE FUNCTION lambda_detect.alert_notify_payload(a lambda_detect.alerts, kind text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cut     integer;
    payload text;
BEGIN
    FOREACH cut IN ARRAY ARRAY[256, 64, 16] LOOP
        payload := pg_catalog.jsonb_build_object(
            'kind', kind,
            'alert_id', a.alert_id,
            'rule', pg_catalog.left(a.rule, cut),
            'rule_version', a.rule_version,
            'event_id', pg_catalog.left(a.event_id, cut),
            'severity', pg_catalog.left(a.severity, cut),
            'risk_score', a.risk_score,
            'status', a.status,
            'event_time', a.event_time,
            'account_id', pg_catalog.left(a.account_id, cut),
            'aws_region', pg_catalog.left(a.aws_region, cut),
            'function_name', pg_catalog.left(a.function_name, cut),
            'statement_id', pg_catalog.left(a.statement_id, cut),
            'principal', pg_catalog.left(a.principal, cut),
            'actor_arn', pg_catalog.left(a.actor_arn, cut),
            'source_ip', pg_catalog.left(a.source_address, cut))::text;
        EXIT WHEN pg_catalog.octet_length(payload) < 7900;
    END LOOP;
    RETURN payload;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_notify_payload(lambda_detect.alerts, text) IS
    'Compact JSON of an alert for NOTIFY, always under the 8000-byte limit (long values are cut to 256, 64 or 16 characters; the alerts table has them whole)';

-- SECURITY DEFINER so that an analyst allowed to UPDATE alerts.status needs
-- no grant on the payload function; everything it calls is qualified.
CREATE FUNCTION lambda_detect.notify_alert()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('lambda_detect_alerts',
        lambda_detect.alert_notify_payload(NEW,
            CASE TG_OP WHEN 'INSERT' THEN 'new' ELSE 'status' END));
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION lambda_detect.notify_alert() IS
    'Trigger function: NOTIFY lambda_detect_alerts with the alert''s compact payload (kind new or status)';

CREATE TRIGGER alerts_notify_insert
    AFTER INSERT ON lambda_detect.alerts
    FOR EACH ROW EXECUTE FUNCTION lambda_detect.notify_alert();

COMMENT ON TRIGGER alerts_notify_insert ON lambda_detect.alerts IS
    'Sends each new alert to LISTEN lambda_detect_alerts';

CREATE TRIGGER alerts_notify_status
    AFTER UPDATE OF status ON lambda_detect.alerts
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION lambda_detect.notify_alert();

COMMENT ON TRIGGER alerts_notify_status ON lambda_detect.alerts IS
    'Sends status changes to LISTEN lambda_detect_alerts';

CREATE FUNCTION lambda_detect.stamp_alert_status()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_changed_at := pg_catalog.now();
        NEW.status_changed_by := pg_catalog.current_user();
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION lambda_detect.stamp_alert_status() IS
    'Trigger function: records who changed an alert''s status and when';

CREATE TRIGGER alerts_stamp_status
    BEFORE UPDATE OF status ON lambda_detect.alerts
    FOR EACH ROW EXECUTE FUNCTION lambda_detect.stamp_alert_status();

COMMENT ON TRIGGER alerts_stamp_status ON lambda_detect.alerts IS
    'Keeps status_changed_at and status_changed_by current';
