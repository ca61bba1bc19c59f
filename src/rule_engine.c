/*-------------------------------------------------------------------------
 *
 * rule_engine.c
 *	  Running a rule over its ingest-time window: candidates from the
 *	  candidate log, the C matcher, deduplicated alerts, and a rule_runs row.
 *
 * Candidates are read from rule_candidates (schema/12_rule_candidates.sql),
 * the log a trigger on events keeps of Lambda permission and function URL
 * events, and each candidate's event by its key, which prunes to one
 * partition: a run costs what the number of candidates in its window
 * costs, whatever the size of events or its number of partitions.
 * Precise predicates are evaluated in C, by the rule's matcher, and so are
 * the rule's options (rule_options.c) and exceptions (exceptions.c): a
 * match they keep out is counted and recorded in suppressed_matches, a
 * match of a grouping rule may join an open alert, any other is alerted.  Alerts are unique per
 * (rule, event): overlapping windows and re-runs never duplicate.  An event
 * is its key (event_id, event_time, recipient_account_id), and every
 * statement here names all of it, so that under the Citus plan
 * (docs/scaling.md) each goes to one shard; an account stored as '' (the
 * event named none) reaches the matchers, exceptions and grouping as NULL,
 * unknown, as before the account was part of the key.  A run
 * creates at most max_signals new alerts; one that hits the cap says so
 * (truncated) and the worker follows it with a catch-up run at once.
 *
 * A run is two steps so that the worker can commit the "running" row before
 * the work: RuleRunStart (load the rule, fix the window, insert the row) and
 * RuleRunExecute (lock the rule, match, alert, finish the row).  A run cut
 * short by a crash is then visible, and CloseOutInterruptedRuleRuns marks it
 * failed when the worker starts again.  run_rule() does both steps in the
 * caller's transaction.
 *
 * src/rule_engine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "lambda_detect.h"

PG_FUNCTION_INFO_V1(ld_run_rule);

/* candidates fetched from the cursor at a time */
#define CANDIDATE_FETCH 256

/*
 * A matcher decides one candidate: true when it matches, with what matched
 * in reason and, when the alert's grant fields must not come from
 * requestParameters, the grant.
 */
typedef bool (*RuleMatcher) (const RuleCandidate *candidate, StringInfo reason,
							 RuleGrant *grant);

/*
 * The seed rule's matcher keeps its own signature: its alerts take the
 * grant from requestParameters.
 */
static bool
match_public_invocation(const RuleCandidate *candidate, StringInfo reason,
						RuleGrant *grant)
{
	return MatchLambdaPublicInvocation(candidate, reason);
}

/* rules.matcher -> C; rules_matcher_check (schema/06_rules.sql) lists the same */
static const struct
{
	const char *name;
	RuleMatcher match;
}			matchers[] =
{
	{"lambda_public_invocation", match_public_invocation},
	{"lambda_public_wildcard_action", MatchLambdaPublicWildcardAction},
	{"lambda_function_url_public", MatchLambdaFunctionUrlPublic},
	{"lambda_cross_account_invocation", MatchLambdaCrossAccountInvocation},
};

#define RULE_COLUMNS \
	"rule, version, matcher, severity, risk_score, lookback, max_signals, enabled, run_interval," \
	" group_by, group_window, skip_scoped_by, own_org_ids"

static SPIPlanPtr load_rule_plan = NULL;
static SPIPlanPtr lock_rule_plan = NULL;
static SPIPlanPtr watermark_plan = NULL;
static SPIPlanPtr start_plan = NULL;
static SPIPlanPtr finish_plan = NULL;
static SPIPlanPtr candidates_plan = NULL;
static SPIPlanPtr candidate_event_plan = NULL;
static SPIPlanPtr alert_plan = NULL;
static SPIPlanPtr horizon_plan = NULL;
static SPIPlanPtr mark_failed_plan = NULL;

/*
 * Statements are prepared once per backend and their plans kept.  The
 * window query on the candidate log is planned afresh at each run instead
 * (custom plan), so that a plan made while the log was small never
 * outlives that.
 */
static SPIPlanPtr
prepare_kept(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	return PrepareKeptPlan(cache, sql, nargs, argtypes, 0);
}

static TimestampTz oldest_open_transaction_start(TimestampTz limit);
static void notify_from_session(Datum alert_id);

/*
 * LambdaInvokeAction tells whether an AddPermission action lets the
 * principal invoke the function: any case variant of lambda:InvokeFunction
 * and what begins with it (lambda:InvokeFunctionUrl), or the wildcards
 * lambda:* (any case) and *.  IAM action names are case-insensitive.
 */
bool
LambdaInvokeAction(const char *action)
{
	return pg_strncasecmp(action, "lambda:invokefunction",
						  strlen("lambda:invokefunction")) == 0 ||
		pg_strcasecmp(action, "lambda:*") == 0 ||
		strcmp(action, "*") == 0;
}

/*
 * SuccessfulAddPermissionParams is the gate the AddPermission rules share: a
 * successful AddPermission* call to lambda.amazonaws.com (eventName prefix
 * case-sensitive, as Elastic's) whose requestParameters is an object.
 * Returns that object, or NULL when the candidate is not one.
 */
JsonbContainer *
SuccessfulAddPermissionParams(const RuleCandidate *c)
{
	if (strcmp(c->event_source, "lambda.amazonaws.com") != 0 ||
		strncmp(c->event_name, "AddPermission", strlen("AddPermission")) != 0 ||
		!RuleCandidateSucceeded(c) ||
		c->request_parameters == NULL ||
		!JB_ROOT_IS_OBJECT(c->request_parameters))
		return NULL;
	return &c->request_parameters->root;
}

/*
 * resolve_function_arn gives the ARN of the function an event names, as the
 * alert records it: functionName as given when it is an ARN; a partial ARN
 * (account:function:name) or a bare name completed with the partition of
 * the region, the region and the account.  NULL when a part is missing.
 * It is the one place this is computed: exceptions on function_arn test the
 * value the alert gets.  (A functionName that is not a JSON string gives no
 * ARN; CloudTrail always sends a string.)
 */
static char *
resolve_function_arn(const char *function, const char *region, const char *account)
{
	const char *partition;
	bool		partial = true;

	if (function == NULL)
		return NULL;
	if (strncmp(function, "arn:", strlen("arn:")) == 0)
		return pstrdup(function);
	if (region == NULL)
		return NULL;
	if (strncmp(region, "cn-", strlen("cn-")) == 0)
		partition = "aws-cn";
	else if (strncmp(region, "us-gov-", strlen("us-gov-")) == 0)
		partition = "aws-us-gov";
	else if (strncmp(region, "us-isob-", strlen("us-isob-")) == 0)
		partition = "aws-iso-b";
	else if (strncmp(region, "us-isof-", strlen("us-isof-")) == 0)
		partition = "aws-iso-f";
	else if (strncmp(region, "eu-isoe-", strlen("eu-isoe-")) == 0)
		partition = "aws-iso-e";
	else if (strncmp(region, "us-iso-", strlen("us-iso-")) == 0)
		partition = "aws-iso";
	else
		partition = "aws";

	for (int i = 0; i < 12; i++)
		if (function[i] < '0' || function[i] > '9')
		{
			partial = false;
			break;
		}
	if (partial && strncmp(function + 12, ":function:", strlen(":function:")) == 0)
		return psprintf("arn:%s:lambda:%s:%s", partition, region, function);
	if (account == NULL)
		return NULL;
	return psprintf("arn:%s:lambda:%s:%s:function:%s", partition, region, account, function);
}

static RuleMatcher
find_matcher(const char *name)
{
	for (int i = 0; i < lengthof(matchers); i++)
		if (strcmp(matchers[i].name, name) == 0)
			return matchers[i].match;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_FUNCTION),
			 errmsg("rule matcher \"%s\" is not implemented by this library", name),
			 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * load_rule reads a rule's parameters into state (strings copied into the
 * current memory context).  With lock, the rule's row is locked until the
 * end of the transaction: runs of one rule never overlap.  Returns false
 * when there is no such rule.
 */
static bool
load_rule(const char *rule, bool lock, RuleRunState *state)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		value;
	SPIPlanPtr	plan;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int			ret;

	if (lock)
		plan = prepare_kept(&lock_rule_plan,
							"SELECT " RULE_COLUMNS " FROM lambda_detect.rules"
							" WHERE rule = $1 FOR NO KEY UPDATE",
							1, argtypes);
	else
		plan = prepare_kept(&load_rule_plan,
							"SELECT " RULE_COLUMNS " FROM lambda_detect.rules WHERE rule = $1",
							1, argtypes);
	value = CStringGetTextDatum(rule);
	ret = SPI_execute_plan(plan, &value, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read rule: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	strlcpy(state->rule, TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull)),
			sizeof(state->rule));
	state->version = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	strlcpy(state->matcher, TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull)),
			sizeof(state->matcher));
	strlcpy(state->severity, TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull)),
			sizeof(state->severity));
	state->risk_score = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	memcpy(&state->lookback, DatumGetIntervalP(SPI_getbinval(tup, desc, 6, &isnull)),
		   sizeof(Interval));
	state->max_signals = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	state->enabled = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
	memcpy(&state->run_interval, DatumGetIntervalP(SPI_getbinval(tup, desc, 9, &isnull)),
		   sizeof(Interval));
	{
		bool		group_by_null,
					group_window_null,
					skip_null,
					orgs_null;
		Datum		group_by = SPI_getbinval(tup, desc, 10, &group_by_null);
		Datum		group_window = SPI_getbinval(tup, desc, 11, &group_window_null);
		Datum		skip = SPI_getbinval(tup, desc, 12, &skip_null);
		Datum		orgs = SPI_getbinval(tup, desc, 13, &orgs_null);

		LoadRuleOptions(state, group_by, group_by_null, group_window, group_window_null,
						skip, skip_null, orgs, orgs_null);
	}
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * last_watermark returns the latest complete_until of the rule's worker
 * runs: every event ingested before it has been examined.  0 when there is
 * none yet.  Manual runs never set complete_until: they may look at any
 * window, so they say nothing about what came before it.
 */
static TimestampTz
last_watermark(const char *rule)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		value = CStringGetTextDatum(rule);
	bool		isnull;
	Datum		d;
	int			ret;

	prepare_kept(&watermark_plan,
				 "SELECT max(complete_until) FROM lambda_detect.rule_runs"
				 " WHERE rule = $1 AND complete_until IS NOT NULL",
				 1, argtypes);
	ret = SPI_execute_plan(watermark_plan, &value, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read rule runs: %s", SPI_result_code_string(ret));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_freetuptable(SPI_tuptable);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * RuleRunStart loads the rule, fixes the run's window and inserts its
 * rule_runs row with status running.  The window is [as_of - lookback,
 * as_of]; with catch_up (the worker), it starts earlier if needed to reach
 * back to where the last complete worker run left off, so that events
 * ingested while no run happened (the worker was down, runs failed) are
 * never skipped, and such a run records how far it is complete.  Returns
 * false when the rule does not exist.
 */
bool
RuleRunStart(const char *rule, const char *trigger, TimestampTz as_of,
			 bool catch_up, RuleRunState *state)
{
	Oid			argtypes[5] = {TEXTOID, INT4OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[5];
	bool		isnull;
	int			ret;

	memset(state, 0, sizeof(*state));
	if (!load_rule(rule, false, state))
		return false;
	state->track_watermark = catch_up;

	state->window_end = as_of;
	state->window_start = DatumGetTimestampTz(
		DirectFunctionCall2(timestamptz_mi_interval,
							TimestampTzGetDatum(as_of),
							IntervalPGetDatum(&state->lookback)));
	if (catch_up)
	{
		TimestampTz watermark = last_watermark(rule);

		if (watermark != 0 && watermark < state->window_start)
			state->window_start = watermark;
	}

	prepare_kept(&start_plan,
				 "INSERT INTO lambda_detect.rule_runs"
				 " (rule, rule_version, trigger, window_start, window_end, started_at, status)"
				 " VALUES ($1, $2, $3, $4, $5, clock_timestamp(), 'running') RETURNING run_id",
				 5, argtypes);
	values[0] = CStringGetTextDatum(state->rule);
	values[1] = Int32GetDatum(state->version);
	values[2] = CStringGetTextDatum(trigger);
	values[3] = TimestampTzGetDatum(state->window_start);
	values[4] = TimestampTzGetDatum(state->window_end);
	ret = SPI_execute_plan(start_plan, values, NULL, false, 1);
	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not record rule run: %s", SPI_result_code_string(ret));
	state->run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * create_alert inserts the alert of one matching event, taking the triage
 * fields from the event row; function_arn comes resolved, and the grant
 * (action, principal, statement id) from requestParameters unless the
 * matcher set it.  For a grouping rule, group_keys and group_values are
 * the group key (BuildGroupKey); otherwise (Datum) 0.  Returns false when
 * the (rule, event) alert already existed (a concurrent run made it first).
 * account is the event's, as stored ('' when it named none).
 */
static bool
create_alert(RuleRunState *state, const char *event_id, TimestampTz event_time,
			 const char *account, const char *reason, const char *function_arn,
			 const RuleGrant *grant, Datum group_keys, Datum group_values)
{
	Oid			argtypes[17] = {TEXTOID, INT4OID, INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID,
		TEXTOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, INTERVALOID,
	TIMESTAMPTZOID, TEXTOID};
	Datum		values[17];
	char		nulls[17];
	int			ret;
	bool		created;

	prepare_kept(&alert_plan,
				 "INSERT INTO lambda_detect.alerts AS a"
				 " (rule, rule_version, run_id, event_id, event_time, ingested_at, severity,"
				 "  risk_score, reason, account_id, aws_region, event_name, function_name,"
				 "  function_arn, statement_id, action, principal, scoped_by, actor_arn,"
				 "  actor_type, access_key_id, user_name, source_ip, source_address, user_agent,"
				 "  request_parameters, response_elements, group_key, group_window)"
				 " SELECT $1, $2, $3, e.event_id, e.event_time, e.ingested_at, $4, $5, $6,"
				 "   e.recipient_account_id, e.aws_region, e.event_name, p.rp ->> 'functionName', $8,"
				 "   CASE WHEN $9 THEN $12 ELSE p.rp ->> 'statementId' END,"
				 "   CASE WHEN $9 THEN $10 ELSE p.rp ->> 'action' END,"
				 "   CASE WHEN $9 THEN $11 ELSE p.rp ->> 'principal' END,"
				 "   COALESCE((SELECT jsonb_object_agg(k, v) FROM jsonb_each(p.rp) AS c(k, v)"
				 "              WHERE k IN ('sourceArn', 'sourceAccount', 'principalOrgID',"
				 "                          'functionUrlAuthType', 'eventSourceToken',"
				 "                          'invokedViaFunctionUrl')"
				 "                AND v <> 'null'::jsonb AND v <> '\"\"'::jsonb), '{}'),"
				 "   e.actor_arn, e.actor_type, e.access_key_id, e.user_name, e.source_ip,"
				 "   e.source_address, e.user_agent, e.request_parameters, e.response_elements,"
				 "   CASE WHEN $15 IS NOT NULL THEN jsonb_object($13, $14) END, $15"
				 "  FROM lambda_detect.events e,"
				 "   LATERAL (SELECT CASE WHEN jsonb_typeof(e.request_parameters) = 'object'"
				 "                        THEN e.request_parameters"
				 "                        ELSE '{}'::jsonb END AS rp) p"
				 " WHERE e.event_id = $7 AND e.event_time = $16 AND e.recipient_account_id = $17"
				 " ON CONFLICT (rule, event_id, account_id) DO NOTHING"
				 " RETURNING a.alert_id",
				 17, argtypes);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(state->rule);
	values[1] = Int32GetDatum(state->version);
	values[2] = Int64GetDatum(state->run_id);
	values[3] = CStringGetTextDatum(state->severity);
	values[4] = Int32GetDatum(state->risk_score);
	values[5] = CStringGetTextDatum(reason);
	values[6] = CStringGetTextDatum(event_id);
	if (function_arn)
		values[7] = CStringGetTextDatum(function_arn);
	else
		nulls[7] = 'n';
	values[8] = BoolGetDatum(grant->set);
	if (grant->set && grant->action)
		values[9] = CStringGetTextDatum(grant->action);
	else
		nulls[9] = 'n';
	if (grant->set && grant->principal)
		values[10] = CStringGetTextDatum(grant->principal);
	else
		nulls[10] = 'n';
	if (grant->set && grant->statement_id)
		values[11] = CStringGetTextDatum(grant->statement_id);
	else
		nulls[11] = 'n';
	if (group_keys != (Datum) 0)
	{
		values[12] = group_keys;
		values[13] = group_values;
		values[14] = IntervalPGetDatum(&state->group_window);
	}
	else
		nulls[12] = nulls[13] = nulls[14] = 'n';
	values[15] = TimestampTzGetDatum(event_time);
	values[16] = CStringGetTextDatum(account);
	ret = SPI_execute_plan(alert_plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not create alert: %s", SPI_result_code_string(ret));
	created = (SPI_processed == 1);
	if (created && ld_notify_from == NOTIFY_FROM_SESSION)
	{
		bool		isnull;
		Datum		alert_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											 1, &isnull);

		SPI_freetuptable(SPI_tuptable);
		notify_from_session(alert_id);
	}
	else
		SPI_freetuptable(SPI_tuptable);
	return created;
}

/*
 * notify_from_session sends the NOTIFY of a new alert from this session,
 * when lambda_detect.notify_from = session (the triggers on alerts then do
 * nothing; under Citus they would fire on the node holding the shard).
 */
static void
notify_from_session(Datum alert_id)
{
	static SPIPlanPtr notify_plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	int			ret;

	prepare_kept(&notify_plan,
				 "SELECT lambda_detect.notify_alert_changed($1, 'new')",
				 1, argtypes);
	ret = SPI_execute_plan(notify_plan, &alert_id, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not notify the alert: %s", SPI_result_code_string(ret));
	SPI_freetuptable(SPI_tuptable);
}

static char *
nullable_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * fill_exception_subject gathers what exceptions are tested against: the
 * values the alert of this match would carry (columns 8-13 of the candidate
 * query, the function and statement from requestParameters or the grant).
 */
static void
fill_exception_subject(ExceptionSubject *s, HeapTuple tup, TupleDesc desc,
					   const RuleCandidate *c, const char *function_name,
					   const char *function_arn, const RuleGrant *grant)
{
	memset(s, 0, sizeof(*s));
	s->fields[EXCEPTION_ACTOR_ARN] = nullable_text(tup, desc, 10);
	s->fields[EXCEPTION_FUNCTION_NAME] = function_name;
	s->fields[EXCEPTION_FUNCTION_ARN] = function_arn;
	s->fields[EXCEPTION_ACCOUNT_ID] = c->recipient_account_id;
	s->fields[EXCEPTION_AWS_REGION] = nullable_text(tup, desc, 9);
	s->fields[EXCEPTION_SOURCE_IP] = nullable_text(tup, desc, 12);
	s->fields[EXCEPTION_USER_AGENT] = nullable_text(tup, desc, 13);
	if (grant->set)
		s->fields[EXCEPTION_STATEMENT_ID] = grant->statement_id;
	else if (c->request_parameters != NULL && JB_ROOT_IS_OBJECT(c->request_parameters))
		s->fields[EXCEPTION_STATEMENT_ID] =
			JsonbObjectGetString(&c->request_parameters->root, "statementId", NULL);
	s->source_ip = SPI_getbinval(tup, desc, 11, &s->source_ip_isnull);
}

/*
 * fetch_candidate reads the event of one logged candidate (columns
 * event_id, event_time, recipient_account_id of row) with what the run
 * needs of it, or returns NULL when the event is gone.  Its key names one
 * partition: the lookup reads that partition's primary key, however many
 * partitions there are.  The duplicate checks name the account too, so
 * that they read one shard under the Citus plan.  The caller frees the
 * result.
 */
static SPITupleTable *
fetch_candidate(HeapTuple row, TupleDesc rowdesc, Datum rule_name)
{
	Oid			argtypes[4] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[4];
	bool		isnull;
	int			ret;

	PrepareKeptPlan(&candidate_event_plan,
					"SELECT e.event_id, e.event_source, e.event_name, e.error_code,"
					"       e.error_message, e.request_parameters,"
					"       EXISTS (SELECT 1 FROM lambda_detect.alerts a"
					"                WHERE a.rule = $3 AND a.event_id = e.event_id"
					"                  AND a.account_id = e.recipient_account_id)"
					"       OR EXISTS (SELECT 1 FROM lambda_detect.alert_occurrences o"
					"                  WHERE o.rule = $3 AND o.event_id = e.event_id"
					"                    AND o.account_id = e.recipient_account_id),"
					"       e.recipient_account_id, e.aws_region, e.actor_arn, e.source_ip,"
					"       e.source_address, e.user_agent, e.event_time"
					"  FROM lambda_detect.events e"
					" WHERE e.event_id = $1 AND e.event_time = $2 AND e.recipient_account_id = $4"
					"   AND " LD_CANDIDATE_PREDICATE("e"),
					4, argtypes, 0);
	values[0] = SPI_getbinval(row, rowdesc, 1, &isnull);
	values[1] = SPI_getbinval(row, rowdesc, 2, &isnull);
	values[2] = rule_name;
	values[3] = SPI_getbinval(row, rowdesc, 3, &isnull);
	ret = SPI_execute_plan(candidate_event_plan, values, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read candidate event: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return NULL;
	}
	return SPI_tuptable;
}

/*
 * group_match makes the group key of a match of a grouping rule, from the
 * values its alert would carry (those exceptions see, plus the grant's
 * principal and action).
 */
static void
group_match(const RuleRunState *state, const ExceptionSubject *subject,
			const RuleCandidate *c, const RuleGrant *grant,
			Datum *keys, Datum *vals)
{
	const char *values[RULE_GROUP_MAX_FIELDS];

	values[GROUP_FUNCTION_ARN] = subject->fields[EXCEPTION_FUNCTION_ARN];
	values[GROUP_FUNCTION_NAME] = subject->fields[EXCEPTION_FUNCTION_NAME];
	values[GROUP_ACTOR_ARN] = subject->fields[EXCEPTION_ACTOR_ARN];
	values[GROUP_ACCOUNT_ID] = subject->fields[EXCEPTION_ACCOUNT_ID];
	values[GROUP_AWS_REGION] = subject->fields[EXCEPTION_AWS_REGION];
	values[GROUP_SOURCE_IP] = subject->fields[EXCEPTION_SOURCE_IP];
	values[GROUP_STATEMENT_ID] = subject->fields[EXCEPTION_STATEMENT_ID];
	values[GROUP_USER_AGENT] = subject->fields[EXCEPTION_USER_AGENT];
	if (grant->set)
	{
		values[GROUP_PRINCIPAL] = grant->principal;
		values[GROUP_ACTION] = grant->action;
	}
	else if (c->request_parameters != NULL && JB_ROOT_IS_OBJECT(c->request_parameters))
	{
		values[GROUP_PRINCIPAL] = JsonbObjectGetString(&c->request_parameters->root,
													   "principal", NULL);
		values[GROUP_ACTION] = JsonbObjectGetString(&c->request_parameters->root,
													"action", NULL);
	}
	else
		values[GROUP_PRINCIPAL] = values[GROUP_ACTION] = NULL;
	BuildGroupKey(state, values, keys, vals);
}

/*
 * execute_rule is the body of a run: it walks the window's candidates in
 * ingest order and alerts on the matches, until the window is exhausted or
 * max_signals new alerts exist.  A match already alerted is a duplicate; a
 * new match that one of the rule's exceptions covers is suppressed (counted
 * and recorded, never alerted; suppressed matches do not count towards
 * max_signals).
 */
static void
execute_rule(void *arg)
{
	RuleRunState *state = (RuleRunState *) arg;
	RuleMatcher match = find_matcher(state->matcher);
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2];
	Datum		rule_name;
	Portal		portal;
	StringInfoData reason;
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext runcxt;
	MemoryContext rowcxt;
	RuleExceptions *exceptions;

	PrepareKeptPlan(&candidates_plan,
					"SELECT c.event_id, c.event_time, c.recipient_account_id"
					"  FROM lambda_detect.rule_candidates c"
					" WHERE c.ingested_at >= $1 AND c.ingested_at <= $2"
					" ORDER BY c.ingested_at, c.event_time, c.event_id",
					2, argtypes, CURSOR_OPT_CUSTOM_PLAN);
	values[0] = TimestampTzGetDatum(state->window_start);
	values[1] = TimestampTzGetDatum(state->window_end);
	rule_name = CStringGetTextDatum(state->rule);

	/* the rule's exceptions, read once for the whole run */
	runcxt = AllocSetContextCreate(callercxt, "lambda_detect rule run",
								   ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(runcxt);
	exceptions = LoadRuleExceptions(state->rule);
	MemoryContextSwitchTo(callercxt);

	/*
	 * An event is stamped with its transaction's start time but becomes
	 * visible only at commit.  Events of transactions still in progress now
	 * are not seen by this run, yet may be stamped inside its window: the
	 * run is complete only up to the oldest such start.
	 */
	if (state->track_watermark)
		state->complete_until = oldest_open_transaction_start(state->window_end);

	initStringInfo(&reason);

	/*
	 * Everything made for one candidate, the parameters of the statements
	 * that record it (suppressed_matches, alert_occurrences, alerts)
	 * included, is made in rowcxt and freed with the next candidate: a run
	 * may examine, suppress and group any number of matches, and only
	 * max_signals of them are alerts.  SPI returns from every call in its
	 * own procedure context, which lives as long as the run, so rowcxt is
	 * made current again after each call that goes on to allocate.  Nothing
	 * in rowcxt outlives its candidate: the run's counts are in state, and
	 * reason's buffer was made above, before rowcxt existed.
	 */
	rowcxt = AllocSetContextCreate(runcxt, "lambda_detect candidate",
								   ALLOCSET_SMALL_SIZES);
	portal = SPI_cursor_open(NULL, candidates_plan, values, NULL, false);
	while (!state->truncated)
	{
		SPITupleTable *batch;
		SPITupleTable *event = NULL;

		SPI_cursor_fetch(portal, true, CANDIDATE_FETCH);
		if (SPI_processed == 0)
			break;
		batch = SPI_tuptable;

		for (uint64 i = 0; i < batch->numvals; i++)
		{
			HeapTuple	tup;
			TupleDesc	desc;
			RuleCandidate c;
			RuleGrant	grant;
			bool		isnull;
			bool		matched;
			Datum		params;
			char	   *event_id;
			char	   *account;
			char	   *function_name = NULL;
			char	   *function_arn;
			int64		exception_id = 0;
			const char *scope;
			TimestampTz event_time;
			Datum		group_keys = (Datum) 0;
			Datum		group_values = (Datum) 0;

			CHECK_FOR_INTERRUPTS();
			/* what a candidate needs is freed with it, however long the window */
			if (event != NULL)
				SPI_freetuptable(event);
			MemoryContextReset(rowcxt);
			event = fetch_candidate(batch->vals[i], batch->tupdesc, rule_name);
			if (event == NULL)
				continue;		/* gone since it was logged (retention) */
			state->candidates++;
			tup = event->vals[0];
			desc = event->tupdesc;
			MemoryContextSwitchTo(rowcxt);
			event_id = nullable_text(tup, desc, 1);
			c.event_source = nullable_text(tup, desc, 2);
			c.event_name = nullable_text(tup, desc, 3);
			c.error_code = nullable_text(tup, desc, 4);
			c.error_message = nullable_text(tup, desc, 5);
			params = SPI_getbinval(tup, desc, 6, &isnull);
			c.request_parameters = isnull ? NULL : DatumGetJsonbP(params);
			/* '' is stored for an event that named no account: unknown */
			account = nullable_text(tup, desc, 8);
			c.recipient_account_id = (account[0] != '\0') ? account : NULL;

			resetStringInfo(&reason);
			memset(&grant, 0, sizeof(grant));
			matched = match(&c, &reason, &grant);
			if (!matched)
				continue;
			state->matched++;

			if (DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull)))
			{
				/* alerted before: exceptions never touch existing alerts */
				state->duplicates++;
				continue;
			}

			/* first the rule's own options, then its exceptions, then grouping */
			scope = RuleScopedOut(state, &c);
			if (c.request_parameters != NULL && JB_ROOT_IS_OBJECT(c.request_parameters))
				function_name = JsonbObjectGetString(&c.request_parameters->root,
													 "functionName", NULL);
			function_arn = resolve_function_arn(function_name,
												nullable_text(tup, desc, 9),
												c.recipient_account_id);
			if (scope == NULL &&
				(RuleExceptionCount(exceptions) > 0 || state->ngroup_by > 0))
			{
				ExceptionSubject subject;

				fill_exception_subject(&subject, tup, desc, &c, function_name,
									   function_arn, &grant);
				if (RuleExceptionCount(exceptions) > 0)
					exception_id = FindRuleException(exceptions, &subject);
				if (exception_id == 0 && state->ngroup_by > 0)
					group_match(state, &subject, &c, &grant, &group_keys, &group_values);
			}

			/* rowcxt is current: the statements' parameters are the row's */
			if (scope != NULL)
			{
				state->scoped_out++;
				RecordSuppressedMatch(state->run_id, state->rule, event_id, account, 0,
									  scope);
				continue;
			}
			if (exception_id != 0)
			{
				state->suppressed++;
				RecordSuppressedMatch(state->run_id, state->rule, event_id, account,
									  exception_id, NULL);
				continue;
			}
			event_time = DatumGetTimestampTz(SPI_getbinval(tup, desc, 14, &isnull));
			if (group_keys != (Datum) 0 &&
				JoinAlertGroup(state, event_id, account, event_time, group_keys,
							   group_values) != 0)
			{
				state->grouped++;
				continue;
			}
			if (state->alerts_created >= state->max_signals)
			{
				/* this match is left for the catch-up run */
				state->matched--;
				state->truncated = true;
				break;
			}
			/* JoinAlertGroup's SPI call left SPI's context current */
			MemoryContextSwitchTo(rowcxt);
			if (create_alert(state, event_id, event_time, account, reason.data, function_arn,
							 &grant, group_keys, group_values))
				state->alerts_created++;
			else
				state->duplicates++;
		}
		if (event != NULL)
			SPI_freetuptable(event);
		event = NULL;
		SPI_freetuptable(batch);
	}
	MemoryContextSwitchTo(callercxt);
	SPI_cursor_close(portal);
	MemoryContextDelete(runcxt);
}

/*
 * oldest_open_transaction_start returns the start of the oldest other
 * transaction in progress in this database, or limit when that is later
 * (or there is none), or 0 when it cannot be known.
 *
 * It reads the backends' status in shared memory directly, as
 * pg_stat_activity does, but without its privilege check: a worker running
 * as a role without pg_read_all_stats would see NULL as xact_start of
 * every other role's session there, and move the watermark past events
 * those sessions have yet to commit.  A session with track_activities off
 * reports no transaction start; if it is in a transaction (it has an xid
 * or an xmin), its own start is the bound.  A prepared transaction has no
 * session and records no start: while one is pending in this database,
 * the run claims no completeness (0), so the watermark stays where it was.
 */
static TimestampTz
oldest_open_transaction_start(TimestampTz limit)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		value = ObjectIdGetDatum(MyDatabaseId);
	TimestampTz result = limit;
	bool		isnull;
	int			nbackends;
	int			ret;

	/* this transaction's earlier copy of the status array would be stale */
	pgstat_clear_backend_activity_snapshot();
	nbackends = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= nbackends; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;
		TimestampTz start;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid == MyProcPid || be->st_databaseid != MyDatabaseId)
			continue;
		start = be->st_xact_start_timestamp;
		if (start == 0 &&
			(be->st_state == STATE_DISABLED || be->st_state == STATE_UNDEFINED) &&
			(TransactionIdIsValid(local->backend_xid) ||
			 TransactionIdIsValid(local->backend_xmin)))
			start = be->st_proc_start_timestamp;
		if (start != 0 && start < result)
			result = start;
	}

	prepare_kept(&horizon_plan,
				 "SELECT count(*) FROM pg_catalog.pg_prepared_xact() p WHERE p.dbid = $1",
				 1, argtypes);
	ret = SPI_execute_plan(horizon_plan, &value, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read prepared transactions: %s", SPI_result_code_string(ret));
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									&isnull)) > 0)
		result = 0;
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/* Writes the run's outcome into its rule_runs row. */
static void
finish_run(RuleRunState *state, ErrorData *edata)
{
	Oid			argtypes[13] = {INT8OID, INT4OID, INT4OID, INT4OID, INT4OID, BOOLOID,
		TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID};
	Datum		values[13];
	char		nulls[13];
	int			ret;

	prepare_kept(&finish_plan,
				 "UPDATE lambda_detect.rule_runs SET finished_at = clock_timestamp(),"
				 "  candidates = $2, matched = $3, alerts_created = $4, duplicates = $5,"
				 "  truncated = $6, status = $7, error_sqlstate = $8, error = $9,"
				 "  complete_until = $10, suppressed = $11, scoped_out = $12, grouped = $13"
				 " WHERE run_id = $1",
				 13, argtypes);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(state->run_id);
	values[1] = Int32GetDatum((int32) state->candidates);
	values[2] = Int32GetDatum((int32) state->matched);
	values[3] = Int32GetDatum((int32) state->alerts_created);
	values[4] = Int32GetDatum((int32) state->duplicates);
	values[5] = BoolGetDatum(state->truncated);
	values[6] = CStringGetTextDatum(edata ? "failed" : "succeeded");
	if (edata)
	{
		values[7] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
		values[8] = CStringGetTextDatum(edata->message ? edata->message : "unknown error");
	}
	else
	{
		nulls[7] = 'n';
		nulls[8] = 'n';
	}
	/* only a whole window examined moves the watermark */
	values[9] = TimestampTzGetDatum(state->complete_until);
	if (edata || state->truncated || !state->track_watermark || state->complete_until == 0)
		nulls[9] = 'n';
	values[10] = Int32GetDatum((int32) state->suppressed);
	values[11] = Int32GetDatum((int32) state->scoped_out);
	values[12] = Int32GetDatum((int32) state->grouped);
	ret = SPI_execute_plan(finish_plan, values, nulls, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "could not finish rule run: %s", SPI_result_code_string(ret));
}

/*
 * take_rule_parameters copies into a started run what it applies of the
 * rule, as read under the rule's lock: the matcher, severity, risk score,
 * max_signals and the options.  The worker starts a run in one transaction
 * and executes it in the next, and run_rule() may wait for the lock while
 * someone changes the rule: what RuleRunStart read may be stale by then.
 * The run itself stays as started: its window, its rule_runs row and the
 * rule version that row records (and its alerts carry).  A parameter added
 * to RuleRunState must be copied here too.
 */
static void
take_rule_parameters(RuleRunState *run, const RuleRunState *locked)
{
	memcpy(run->matcher, locked->matcher, sizeof(run->matcher));
	memcpy(run->severity, locked->severity, sizeof(run->severity));
	run->risk_score = locked->risk_score;
	run->max_signals = locked->max_signals;
	run->ngroup_by = locked->ngroup_by;
	memcpy(run->group_by, locked->group_by, sizeof(run->group_by));
	run->group_window = locked->group_window;
	run->skip_org_scoped = locked->skip_org_scoped;
	run->skip_source_scoped = locked->skip_source_scoped;
	run->nown_org_ids = locked->nown_org_ids;
	memcpy(run->own_org_ids, locked->own_org_ids, sizeof(run->own_org_ids));
}

/*
 * RuleRunExecute does the work of a started run and records how it ended.
 * It locks the rule and runs with the parameters the locked row holds.
 * The work runs in a subtransaction: if it fails, its alerts are rolled
 * back and the run is recorded as failed with the error.  A cancel or
 * shutdown is not recorded here but re-raised.  Returns the error (NULL on
 * success) for the caller to report.
 */
ErrorData *
RuleRunExecute(RuleRunState *state)
{
	ErrorData  *edata;
	RuleRunState locked;

	/*
	 * Serialize runs of the rule; a concurrent run's alerts become visible,
	 * and so does the latest committed change to the rule (in READ
	 * COMMITTED the lock returns the newest version of the row).
	 */
	if (!load_rule(state->rule, true, &locked))
	{
		ErrorData  *gone = palloc0(sizeof(ErrorData));

		gone->sqlerrcode = ERRCODE_UNDEFINED_OBJECT;
		gone->message = psprintf("rule \"%s\" was deleted before its run", state->rule);
		finish_run(state, gone);
		return gone;
	}
	take_rule_parameters(state, &locked);

	edata = RunGuarded(execute_rule, state);
	if (edata != NULL)
	{
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION)
			ReThrowError(edata);
		state->candidates = state->matched = state->alerts_created = state->duplicates = 0;
		state->suppressed = state->scoped_out = state->grouped = 0;
		state->truncated = false;
	}
	finish_run(state, edata);
	return edata;
}

/*
 * RuleRunMarkFailed records, in a new transaction, a run whose work failed
 * outside the part RuleRunExecute guards (a lock timeout or cancel while
 * locking the rule, an error while recording the outcome).
 */
void
RuleRunMarkFailed(int64 run_id, const char *sqlstate, const char *message)
{
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	int			ret;

	prepare_kept(&mark_failed_plan,
				 "UPDATE lambda_detect.rule_runs SET status = 'failed',"
				 "  finished_at = clock_timestamp(), error_sqlstate = $2, error = $3"
				 " WHERE run_id = $1 AND status = 'running'",
				 3, argtypes);
	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(sqlstate);
	values[2] = CStringGetTextDatum(message);
	ret = SPI_execute_plan(mark_failed_plan, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "could not record failed rule run: %s", SPI_result_code_string(ret));
}

/*
 * CloseOutInterruptedRuleRuns marks failed the runs left "running" by a
 * crash or a killed worker.  Only the worker commits a running row before
 * its work, and only one worker exists, so any such row is an orphan.
 */
void
CloseOutInterruptedRuleRuns(void)
{
	int			ret;

	ret = SPI_execute("UPDATE lambda_detect.rule_runs"
					  "   SET status = 'failed', finished_at = clock_timestamp(),"
					  "       error_sqlstate = '57P02',"
					  "       error = 'interrupted: the worker or the server stopped during the run'"
					  " WHERE status = 'running'",
					  false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "could not close out interrupted rule runs: %s",
			 SPI_result_code_string(ret));
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("lambda_detect: marked %llu interrupted rule runs as failed",
						(unsigned long long) SPI_processed)));
}

/*
 * ld_run_rule is run_rule(rule, as_of): one run of one rule, in the
 * caller's transaction, returning its rule_runs row.
 */
Datum
ld_run_rule(PG_FUNCTION_ARGS)
{
	char	   *rule;
	TimestampTz as_of;
	RuleRunState state;
	ErrorData  *edata;
	Oid			argtypes[1] = {INT8OID};
	Datum		value;
	HeapTupleHeader result;
	int			ret;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rule must not be null"),
				 errhint("Name a rule of lambda_detect.rules, e.g. 'lambda-public-invocation'.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null"),
				 errhint("Omit it to run the rule as of now().")));
	rule = text_to_cstring(PG_GETARG_TEXT_PP(0));
	as_of = PG_GETARG_TIMESTAMPTZ(1);
	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("as_of must be a finite time")));

	CheckSchemaVersion();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (!RuleRunStart(rule, "manual", as_of, false, &state))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rule \"%s\" does not exist", rule),
				 errhint("The rules are listed in lambda_detect.rules.")));

	/*
	 * The caller sees the whole error, which may quote the alert it failed
	 * on; the server log, whose readers need not be allowed to read alerts,
	 * the run and what ErrorLogText allows.
	 */
	edata = RuleRunExecute(&state);
	if (edata != NULL)
	{
		ereport(WARNING_CLIENT_ONLY,
				(errcode(edata->sqlerrcode),
				 errmsg("rule \"%s\" failed: %s", rule, edata->message),
				 errdetail("The run is recorded in lambda_detect.rule_runs as run %lld.",
						   (long long) state.run_id)));
		ereport(LOG_SERVER_ONLY,
				(errcode(edata->sqlerrcode),
				 errmsg("lambda_detect: run %lld of rule \"%s\" failed",
						(long long) state.run_id, rule),
				 errdetail("%s.", ErrorLogText(edata))));
	}

	value = Int64GetDatum(state.run_id);
	ret = SPI_execute_with_args("SELECT r FROM lambda_detect.rule_runs r WHERE r.run_id = $1",
								1, argtypes, &value, NULL, false, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read rule run: %s", SPI_result_code_string(ret));
	{
		bool		isnull;
		Datum		row = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		result = (HeapTupleHeader) DatumGetPointer(SPI_datumTransfer(row, false, -1));
	}
	SPI_finish();
	PG_RETURN_HEAPTUPLEHEADER(result);
}
