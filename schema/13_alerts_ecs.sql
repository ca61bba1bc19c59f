-- alerts_ecs: alerts under the field names of Elastic Security alerts and
-- of its CloudTrail integration (ECS), for people coming from Elastic.
--
-- Version 1.1 moved it here from 08_investigation.sql: it joins events,
-- which 11_event_partitions.sql rebuilds as a partitioned table, so it is
-- created after that (the update from 1.0 drops the old view first).  It
-- joins on the event's whole key (id, time and account): the time so that
-- only one partition is read, the account so that under Citus the join is
-- between colocated shards (docs/scaling.md); it carries the grouping of
-- alerts as Elastic's suppression fields.

CREATE VIEW lambda_detect.alerts_ecs WITH (security_invoker = true) AS
SELECT a.alert_id                       AS "lambda_detect.alert_id",
       a.detected_at                    AS "@timestamp",
       a.event_time                     AS "kibana.alert.original_time",
       a.ingested_at                    AS "event.ingested",
       'signal'::text                   AS "event.kind",
       'aws.cloudtrail'::text           AS "event.dataset",
       e.event_source                   AS "event.provider",
       a.event_name                     AS "event.action",
       a.event_id                       AS "event.id",
       e.outcome                        AS "event.outcome",
       'aws'::text                      AS "cloud.provider",
       NULLIF(a.account_id, '')         AS "cloud.account.id",
       a.aws_region                     AS "cloud.region",
       a.source_ip                      AS "source.ip",
       a.source_address                 AS "source.address",
       a.user_agent                     AS "user_agent.original",
       a.user_name                      AS "user.name",
       a.actor_arn                      AS "aws.cloudtrail.user_identity.arn",
       a.actor_type                     AS "aws.cloudtrail.user_identity.type",
       a.access_key_id                  AS "aws.cloudtrail.user_identity.access_key_id",
       a.request_parameters::text       AS "aws.cloudtrail.request_parameters",
       a.request_parameters             AS "aws.cloudtrail.flattened.request_parameters",
       a.response_elements::text        AS "aws.cloudtrail.response_elements",
       a.response_elements              AS "aws.cloudtrail.flattened.response_elements",
       e.request_id                     AS "aws.cloudtrail.request_id",
       e.event_type                     AS "aws.cloudtrail.event_type",
       r.rule_id::text                  AS "rule.id",
       r.name                           AS "rule.name",
       a.rule_version::text             AS "rule.version",
       r.rule_id::text                  AS "kibana.alert.rule.rule_id",
       r.name                           AS "kibana.alert.rule.name",
       a.severity                       AS "kibana.alert.severity",
       a.risk_score                     AS "kibana.alert.risk_score",
       a.reason                         AS "kibana.alert.reason",
       a.status                         AS "kibana.alert.workflow_status",
       a.status_changed_at              AS "kibana.alert.workflow_status_updated_at",
       a.status_changed_by              AS "lambda_detect.status_changed_by",
       a.status_note                    AS "lambda_detect.status_note",
       a.resolution                     AS "lambda_detect.resolution",
       a.function_arn                   AS "lambda_detect.function_arn",
       a.statement_id                   AS "lambda_detect.statement_id",
       a.principal                      AS "lambda_detect.principal",
       a.scoped_by                      AS "lambda_detect.scoped_by",
       a.occurrences - 1                AS "kibana.alert.suppression.docs_count",
       a.first_event_time               AS "kibana.alert.suppression.start",
       a.last_event_time                AS "kibana.alert.suppression.end",
       a.group_key                      AS "kibana.alert.suppression.terms"
  FROM lambda_detect.alerts a
  LEFT JOIN lambda_detect.events e ON e.event_id = a.event_id AND e.event_time = a.event_time
                                  AND e.recipient_account_id = a.account_id
  LEFT JOIN lambda_detect.rules r ON r.rule = a.rule;

COMMENT ON VIEW lambda_detect.alerts_ecs IS
    'Alerts under the field names of Elastic Security alerts and its CloudTrail integration (ECS), for people coming from Elastic; quote the names: "event.action"';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.alert_id" IS 'alerts.alert_id';
COMMENT ON COLUMN lambda_detect.alerts_ecs."@timestamp" IS 'alerts.detected_at: when the alert was created (as in Elastic alert documents)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.original_time" IS 'alerts.event_time: CloudTrail eventTime of the matched event';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.ingested" IS 'alerts.ingested_at: when the event was ingested';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.kind" IS 'Always signal, as in Elastic alert documents';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.dataset" IS 'Always aws.cloudtrail';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.provider" IS 'events.event_source: CloudTrail eventSource';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.action" IS 'alerts.event_name: CloudTrail eventName';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.id" IS 'alerts.event_id: CloudTrail eventID';
COMMENT ON COLUMN lambda_detect.alerts_ecs."event.outcome" IS 'events.outcome: success or failure';
COMMENT ON COLUMN lambda_detect.alerts_ecs."cloud.provider" IS 'Always aws';
COMMENT ON COLUMN lambda_detect.alerts_ecs."cloud.account.id" IS 'alerts.account_id: CloudTrail recipientAccountId; NULL when the event named none (alerts.account_id is then empty)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."cloud.region" IS 'alerts.aws_region: CloudTrail awsRegion';
COMMENT ON COLUMN lambda_detect.alerts_ecs."source.ip" IS 'alerts.source_ip: sourceIPAddress when an address';
COMMENT ON COLUMN lambda_detect.alerts_ecs."source.address" IS 'alerts.source_address: sourceIPAddress verbatim';
COMMENT ON COLUMN lambda_detect.alerts_ecs."user_agent.original" IS 'alerts.user_agent: CloudTrail userAgent';
COMMENT ON COLUMN lambda_detect.alerts_ecs."user.name" IS 'alerts.user_name: userIdentity.userName, or the session issuer''s';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.user_identity.arn" IS 'alerts.actor_arn: userIdentity.arn';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.user_identity.type" IS 'alerts.actor_type: userIdentity.type';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.user_identity.access_key_id" IS 'alerts.access_key_id: userIdentity.accessKeyId';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.request_parameters" IS 'alerts.request_parameters as JSON text (Elastic keeps a flattened key=value string here)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.flattened.request_parameters" IS 'alerts.request_parameters as jsonb';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.response_elements" IS 'alerts.response_elements as JSON text';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.flattened.response_elements" IS 'alerts.response_elements as jsonb';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.request_id" IS 'events.request_id: CloudTrail requestID';
COMMENT ON COLUMN lambda_detect.alerts_ecs."aws.cloudtrail.event_type" IS 'events.event_type: CloudTrail eventType';
COMMENT ON COLUMN lambda_detect.alerts_ecs."rule.id" IS 'rules.rule_id of the rule that fired (for the seed rule, Elastic''s rule_id)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."rule.name" IS 'rules.name of the rule that fired';
COMMENT ON COLUMN lambda_detect.alerts_ecs."rule.version" IS 'alerts.rule_version: the rule''s version when it fired';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.rule.rule_id" IS 'rules.rule_id, as Elastic alert documents name it';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.rule.name" IS 'rules.name, as Elastic alert documents name it';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.severity" IS 'alerts.severity';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.risk_score" IS 'alerts.risk_score';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.reason" IS 'alerts.reason';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.workflow_status" IS 'alerts.status: open, acknowledged or closed (the same words as Elastic)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.workflow_status_updated_at" IS 'alerts.status_changed_at';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.status_changed_by" IS 'alerts.status_changed_by';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.status_note" IS 'alerts.status_note';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.resolution" IS 'alerts.resolution';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.function_arn" IS 'alerts.function_arn';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.statement_id" IS 'alerts.statement_id';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.principal" IS 'alerts.principal';
COMMENT ON COLUMN lambda_detect.alerts_ecs."lambda_detect.scoped_by" IS 'alerts.scoped_by';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.suppression.docs_count" IS 'alerts.occurrences - 1: matches grouped into the alert besides its own (Elastic alert suppression)';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.suppression.start" IS 'alerts.first_event_time';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.suppression.end" IS 'alerts.last_event_time';
COMMENT ON COLUMN lambda_detect.alerts_ecs."kibana.alert.suppression.terms" IS 'alerts.group_key: the grouped fields and values (Elastic keeps a list of field/value pairs); NULL when the rule does not group';

REVOKE ALL ON lambda_detect.alerts_ecs FROM PUBLIC;

-- On the update from 1.0: the grants the old view had (11_event_partitions.sql
-- kept them in a transaction-local setting before dropping it), through
-- GRANT, with the initial privileges put back to what the REVOKE above
-- recorded (in an extension script GRANT records them as the extension's
-- own, and pg_dump would leave them out).
DO $grants$
DECLARE
    acl      text := pg_catalog.current_setting('lambda_detect_upgrade.alerts_ecs_acl', true);
    init_acl pg_catalog.aclitem[];
    r        record;
BEGIN
    IF acl IS NULL OR acl = '' THEN
        RETURN;
    END IF;
    SELECT c.relacl INTO init_acl FROM pg_catalog.pg_class c
     WHERE c.oid = 'lambda_detect.alerts_ecs'::pg_catalog.regclass;
    FOR r IN
        SELECT a.privilege_type, a.is_grantable,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END AS grantee
          FROM pg_catalog.aclexplode(acl::pg_catalog.aclitem[]) a, pg_catalog.pg_class c
         WHERE c.oid = 'lambda_detect.alerts_ecs'::pg_catalog.regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE pg_catalog.format('GRANT %s ON lambda_detect.alerts_ecs TO %s%s',
                                  r.privilege_type, r.grantee,
                                  CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    UPDATE pg_catalog.pg_init_privs SET initprivs = init_acl
     WHERE objoid = 'lambda_detect.alerts_ecs'::pg_catalog.regclass
       AND classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND objsubid = 0;
    PERFORM pg_catalog.set_config('lambda_detect_upgrade.alerts_ecs_acl', '', true);
END
$grants$;
