-- Keys for distribution by account (version 1.1).
--
-- docs/scaling.md plans lambda_detect on Citus: events, rule_candidates,
-- alerts, alert_occurrences and suppressed_matches distributed by account,
-- rules and exceptions reference tables.  Citus needs the distribution
-- column in every primary key and unique constraint of a distributed table
-- and refuses NULL in it.  11_event_partitions.sql (events),
-- 12_rule_candidates.sql and 10_rule_options.sql (alert_occurrences) build
-- their 1.1 tables so; this part changes the two tables 1.0 created, which
-- are not edited (07_alerts.sql, 09_exceptions.sql), and the functions of
-- 08_investigation.sql that read the account.  The citus_compat regression
-- test checks every key of these tables.
--
-- The account is '' (empty) when the event names none, never NULL, as in
-- events.recipient_account_id: everything that reads it as a fact (the
-- rules, the function ARN, exceptions, grouping, the guide's comparisons)
-- takes '' for unknown, as it took NULL; the JSON documents for
-- integrations (NOTIFY payload, alerts_ecs, investigate()) still say null.
--
-- Alert ids stay what clients use: increasing, from the identity sequence,
-- one per alert; the primary key (alert_id, account_id) is led by alert_id,
-- so a lookup or a listener's catch-up by alert_id reads its index.

-- Alerts of 1.0 whose event named no account held NULL.
UPDATE lambda_detect.alerts SET account_id = '' WHERE account_id IS NULL;

ALTER TABLE lambda_detect.alerts
    ALTER COLUMN account_id SET DEFAULT '',
    ALTER COLUMN account_id SET NOT NULL,
    DROP CONSTRAINT alerts_pkey,
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (alert_id, account_id),
    DROP CONSTRAINT alerts_rule_event_key,
    ADD CONSTRAINT alerts_rule_event_key UNIQUE (rule, event_id, account_id);

COMMENT ON COLUMN lambda_detect.alerts.account_id IS
    'The account that owns the function (recipientAccountId); '''' (empty) when the event named none';
COMMENT ON CONSTRAINT alerts_pkey ON lambda_detect.alerts IS
    'alert_id, with the account (the distribution column of the Citus plan); alert_id alone is unique too, as the identity sequence gives it';
COMMENT ON CONSTRAINT alerts_rule_event_key ON lambda_detect.alerts IS
    'One alert per (rule, event): an eventID is unique within its account, so the account completes the event''s identity';

-- Suppressed matches name their event's account too.  Those of 1.0 take it
-- from their event; one whose event is gone keeps '' (its event cannot be
-- a candidate again unless delivered again).
ALTER TABLE lambda_detect.suppressed_matches
    ADD COLUMN account_id text NOT NULL DEFAULT '';

UPDATE lambda_detect.suppressed_matches s
   SET account_id = e.recipient_account_id
  FROM lambda_detect.events e
 WHERE e.event_id = s.event_id AND e.recipient_account_id <> '' AND s.account_id = '';

ALTER TABLE lambda_detect.suppressed_matches
    DROP CONSTRAINT suppressed_matches_pkey,
    ADD CONSTRAINT suppressed_matches_pkey PRIMARY KEY (rule, event_id, account_id);

COMMENT ON COLUMN lambda_detect.suppressed_matches.account_id IS
    'The event''s account (events.recipient_account_id; '''' when the event names none)';
COMMENT ON CONSTRAINT suppressed_matches_pkey ON lambda_detect.suppressed_matches IS
    'One row per (rule, event): the event is its eventID within its account';

COMMENT ON COLUMN lambda_detect.open_alerts.account_id IS
    'Account that owns the functions ('''' when the event named none)';

-- alert_source compares the account of other events only when the alert
-- has one ('' is none).
CREATE OR REPLACE FUNCTION lambda_detect.alert_source(alert_id bigint, history interval DEFAULT NULL)
RETURNS TABLE (
    source_address text,
    source_ip inet,
    ip_first_seen_for_actor timestamptz,
    ip_prior_events_for_actor bigint,
    ip_new_for_actor boolean,
    ip_first_seen_in_account timestamptz,
    ip_prior_events_in_account bigint,
    ip_new_for_account boolean,
    known_network cidr,
    known_network_name text,
    in_known_network boolean,
    user_agent text,
    user_agent_class text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a      lambda_detect.alerts := lambda_detect.find_alert(alert_source.alert_id);
    span   interval := COALESCE(alert_source.history,
                                           (lambda_detect.effective_investigation_settings()).history);
BEGIN
    IF NOT span > interval '0' THEN
        RAISE EXCEPTION 'history must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    source_address := a.source_address;
    source_ip := a.source_ip;
    user_agent := a.user_agent;
    user_agent_class := lambda_detect.classify_user_agent(a.user_agent);
    IF a.source_ip IS NOT NULL THEN
        IF a.actor_arn IS NOT NULL THEN
            SELECT pg_catalog.min(e.event_time), pg_catalog.count(*)
              INTO ip_first_seen_for_actor, ip_prior_events_for_actor
              FROM lambda_detect.events e
             WHERE e.source_ip = a.source_ip AND e.actor_arn = a.actor_arn
               AND e.event_time >= a.event_time - span AND e.event_time <= a.event_time
               AND e.event_id <> a.event_id;
            ip_new_for_actor := ip_prior_events_for_actor = 0;
        END IF;
        IF a.account_id <> '' THEN
            SELECT pg_catalog.min(e.event_time), pg_catalog.count(*)
              INTO ip_first_seen_in_account, ip_prior_events_in_account
              FROM lambda_detect.events e
             WHERE e.source_ip = a.source_ip AND e.recipient_account_id = a.account_id
               AND e.event_time >= a.event_time - span AND e.event_time <= a.event_time
               AND e.event_id <> a.event_id;
            ip_new_for_account := ip_prior_events_in_account = 0;
        END IF;
        SELECT n.network, n.name INTO known_network, known_network_name
          FROM lambda_detect.known_networks n
         WHERE a.source_ip <<= n.network
         ORDER BY pg_catalog.masklen(n.network) DESC
         LIMIT 1;
        in_known_network := known_network IS NOT NULL;
    END IF;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION lambda_detect.alert_source(bigint, interval) IS
    'Guide step "source of the request": address, whether the actor and the account saw it over the history before the alert, the most specific known_networks entry holding it, and the user agent with its class (classify_user_agent); address fields are NULL when the caller was an AWS service';


-- investigate() shows an unknown account as null, as before.
CREATE OR REPLACE FUNCTION lambda_detect.investigate(alert_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a        lambda_detect.alerts := lambda_detect.find_alert(investigate.alert_id);
    related  jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object(
               'window', (lambda_detect.effective_investigation_settings()).correlation_window,
               'events', pg_catalog.count(*),
               'by_actor', pg_catalog.count(*) FILTER (WHERE 'actor' = ANY (r.matched_by)),
               'by_access_key', pg_catalog.count(*) FILTER (WHERE 'access_key' = ANY (r.matched_by)),
               'by_source_ip', pg_catalog.count(*) FILTER (WHERE 'source_ip' = ANY (r.matched_by)),
               'failed', pg_catalog.count(*) FILTER (WHERE r.outcome = 'failure'),
               'before', pg_catalog.count(*) FILTER (WHERE r.time_offset < interval '0'),
               'after', pg_catalog.count(*) FILTER (WHERE r.time_offset > interval '0'))
      INTO related
      FROM lambda_detect.alert_related_events(a.alert_id) r
     WHERE NOT r.is_alert_event;
    RETURN pg_catalog.jsonb_build_object(
        'alert', pg_catalog.jsonb_build_object(
            'alert_id', a.alert_id, 'rule', a.rule, 'severity', a.severity,
            'risk_score', a.risk_score, 'status', a.status, 'resolution', a.resolution,
            'event_id', a.event_id, 'account_id', NULLIF(a.account_id, ''), 'aws_region', a.aws_region,
            'reason', a.reason),
        'actor', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_actor(a.alert_id) x),
        'request', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_request(a.alert_id) x),
        'source', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_source(a.alert_id) x),
        'timing', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_timing(a.alert_id) x),
        'related', related,
        'remediation', (SELECT pg_catalog.to_jsonb(x) FROM lambda_detect.alert_remediation(a.alert_id) x));
END;
$$;

COMMENT ON FUNCTION lambda_detect.investigate(bigint) IS
    'The whole investigation guide for one alert as one JSON document: alert, actor, request, source, timing, a count of related events, remediation';
