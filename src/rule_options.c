/*-------------------------------------------------------------------------
 *
 * rule_options.c
 *	  A rule's options beyond Elastic's parity: not alerting on scoped
 *	  grants (rules.skip_scoped_by) and grouping matches into one alert
 *	  (rules.group_by, rules.group_window).
 *
 * skip_scoped_by lets a user stop alerting on "*" grants that AWS narrows
 * to one of the user's own organisations (a principalOrgID listed in
 * rules.own_org_ids) or to one fixed source of the function's own account
 * (a sourceArn without wildcards together with a sourceAccount equal to the
 * event's recipientAccountId).  Whoever makes the grant chooses these
 * values: a grant scoped to the attacker's own organisation or account is
 * as open to the attacker as "*", so only the user's own ones are skipped.
 * Such a match is not lost: the run counts it in scoped_out and records it
 * in suppressed_matches.
 *
 * Grouping is Elastic's alert suppression: a match whose grouped fields
 * equal those of an alert of the same rule that is not closed, and whose
 * event time lies within group_window of that alert's event (before or
 * after: CloudTrail delivers out of order), is folded into it: the alert
 * counts one more occurrence and keeps the earliest and latest event ids,
 * and the match is recorded in alert_occurrences so that no later run
 * alerts or counts it again.  Runs of a rule are serialized by the lock on
 * its rules row (rule_engine.c), so two runs never race to open a group.
 *
 * src/rule_options.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "lambda_detect.h"

/* RuleGroupField -> name, as in rules_group_by_check */
static const char *const group_field_names[RULE_GROUP_MAX_FIELDS] = {
	"function_arn", "function_name", "actor_arn", "account_id", "aws_region",
	"source_ip", "principal", "action", "statement_id", "user_agent"
};

static SPIPlanPtr join_plan = NULL;

/*
 * A grouped value longer than this is kept in the group key as its first
 * GROUP_VALUE_PREFIX bytes and the MD5 of the whole value: alerts are
 * indexed on (rule, group_key, event_time), and a btree entry holds at most
 * 2704 bytes, so ten long values (a user agent, a principal, a function
 * name: all chosen by the caller of the API) would otherwise make the alert
 * impossible to insert and fail every run of the rule while the event stays
 * in its window.
 */
#define GROUP_VALUE_MAX_LEN		160
#define GROUP_VALUE_PREFIX		96

/* Elements of a text[] as C strings; NULL elements are refused. */
static char **
text_array_elements(Datum array, int *count, const char *column)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **result;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, count);
	result = palloc(sizeof(char *) * Max(*count, 1));
	for (int i = 0; i < *count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("rules.%s must not contain NULL", column)));
		result[i] = TextDatumGetCString(elems[i]);
	}
	return result;
}

/*
 * LoadRuleOptions reads a rule's group_by, group_window, skip_scoped_by and
 * own_org_ids columns into state.  The CHECK constraints of rules admit
 * only known names and at most RULE_MAX_OWN_ORGS organisation ids of at
 * most RULE_ORG_ID_MAX_LEN characters; anything else here means the
 * library is older than the schema.
 */
void
LoadRuleOptions(RuleRunState *state, Datum group_by, bool group_by_null,
				Datum group_window, bool group_window_null,
				Datum skip_scoped_by, bool skip_scoped_by_null,
				Datum own_org_ids, bool own_org_ids_null)
{
	state->ngroup_by = 0;
	state->skip_org_scoped = false;
	state->skip_source_scoped = false;
	state->nown_org_ids = 0;

	if (!group_by_null)
	{
		int			n;
		char	  **names = text_array_elements(group_by, &n, "group_by");

		for (int i = 0; i < n; i++)
		{
			int			field = -1;
			bool		seen = false;

			for (int f = 0; f < RULE_GROUP_MAX_FIELDS; f++)
				if (strcmp(names[i], group_field_names[f]) == 0)
					field = f;
			if (field < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("rule \"%s\" groups by unknown field \"%s\"", state->rule, names[i]),
						 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));
			/* a field named twice groups like a field named once */
			for (int j = 0; j < state->ngroup_by; j++)
				seen |= state->group_by[j] == field;
			if (!seen)
				state->group_by[state->ngroup_by++] = field;
		}
	}
	if (state->ngroup_by > 0)
	{
		if (group_window_null)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("rule \"%s\" has group_by but no group_window", state->rule)));
		memcpy(&state->group_window, DatumGetIntervalP(group_window), sizeof(Interval));
	}

	if (!skip_scoped_by_null)
	{
		int			n;
		char	  **names = text_array_elements(skip_scoped_by, &n, "skip_scoped_by");

		for (int i = 0; i < n; i++)
		{
			if (strcmp(names[i], "principalOrgID") == 0)
				state->skip_org_scoped = true;
			else if (strcmp(names[i], "sourceArn+sourceAccount") == 0)
				state->skip_source_scoped = true;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("rule \"%s\" has unknown skip_scoped_by entry \"%s\"",
								state->rule, names[i]),
						 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));
		}
	}

	if (!own_org_ids_null)
	{
		int			n;
		char	  **ids = text_array_elements(own_org_ids, &n, "own_org_ids");

		if (n > RULE_MAX_OWN_ORGS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("rule \"%s\" lists %d organisations in own_org_ids", state->rule, n),
					 errdetail("This library reads at most %d.", RULE_MAX_OWN_ORGS),
					 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));
		for (int i = 0; i < n; i++)
		{
			if (strlen(ids[i]) > RULE_ORG_ID_MAX_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("rule \"%s\" has an organisation id longer than %d characters in own_org_ids",
								state->rule, RULE_ORG_ID_MAX_LEN),
						 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));
			strlcpy(state->own_org_ids[i], ids[i], sizeof(state->own_org_ids[i]));
		}
		state->nown_org_ids = n;
	}
}

/* A string parameter of requestParameters that is present and not empty. */
static const char *
nonempty_param(JsonbContainer *params, const char *key)
{
	char	   *value = JsonbObjectGetString(params, key, NULL);

	return (value != NULL && value[0] != '\0') ? value : NULL;
}

/* Whether org is one of the rule's own_org_ids (compared exactly). */
static bool
own_organisation(const RuleRunState *state, const char *org)
{
	for (int i = 0; i < state->nown_org_ids; i++)
		if (strcmp(state->own_org_ids[i], org) == 0)
			return true;
	return false;
}

/*
 * RuleScopedOut says whether the rule's skip_scoped_by keeps this match
 * from alerting: the entry that applies, or NULL.
 *
 * principalOrgID applies when the grant's principalOrgID is one of the
 * rule's own_org_ids.  Any other organisation is refused a skip: the
 * caller of AddPermission picks the value, and an attacker who names an
 * organisation of their own has a backdoor as open to them as "*".
 *
 * sourceArn+sourceAccount applies when the grant names a source ARN without
 * the wildcards "*" and "?" (an ARN pattern admits sources the user never
 * saw) and a sourceAccount equal to the event's recipientAccountId, the
 * account that owns the function.  The caller picks both values: a bucket
 * or topic of the attacker's, in the attacker's account, is as fixed a
 * source as any and lets its owner invoke the function.  An event without
 * recipientAccountId has no known owner, so nothing is skipped.
 */
const char *
RuleScopedOut(const RuleRunState *state, const RuleCandidate *candidate)
{
	JsonbContainer *params;

	if (!state->skip_org_scoped && !state->skip_source_scoped)
		return NULL;
	if (candidate->request_parameters == NULL ||
		!JB_ROOT_IS_OBJECT(candidate->request_parameters))
		return NULL;
	params = &candidate->request_parameters->root;

	if (state->skip_org_scoped)
	{
		const char *org = nonempty_param(params, "principalOrgID");

		if (org != NULL && own_organisation(state, org))
			return "principalOrgID";
	}
	if (state->skip_source_scoped && candidate->recipient_account_id != NULL)
	{
		const char *arn = nonempty_param(params, "sourceArn");
		const char *account = nonempty_param(params, "sourceAccount");

		if (arn != NULL && strpbrk(arn, "*?") == NULL &&
			account != NULL && strcmp(account, candidate->recipient_account_id) == 0)
			return "sourceArn+sourceAccount";
	}
	return NULL;
}

/*
 * group_value is a value as the group key holds it: itself, or when it is
 * longer than GROUP_VALUE_MAX_LEN its prefix (cut at a character boundary)
 * and its MD5, so that equal values still group together and different ones
 * apart.
 */
static Datum
group_value(const char *value)
{
	size_t		len = strlen(value);
	char		md5[MD5_DIGEST_LENGTH * 2 + 1];
	const char *errstr = NULL;
	int			keep;

	if (len <= GROUP_VALUE_MAX_LEN)
		return CStringGetTextDatum(value);
	if (!pg_md5_hash(value, len, md5, &errstr))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not compute the MD5 of a grouped value: %s", errstr)));
	keep = pg_mbcliplen(value, (int) Min(len, (size_t) PG_INT32_MAX), GROUP_VALUE_PREFIX);
	return CStringGetTextDatum(psprintf("%.*s... (%zu bytes, md5 %s)", keep, value, len, md5));
}

/*
 * BuildGroupKey makes the two text[] of the group key: the names of the
 * rule's group_by fields and this match's values of them (values is
 * indexed by RuleGroupField; NULL stays NULL, and groups with NULL; a long
 * value is shortened by group_value).
 */
void
BuildGroupKey(const RuleRunState *state, const char *const *values,
			  Datum *keys, Datum *vals)
{
	Datum		k[RULE_GROUP_MAX_FIELDS];
	Datum		v[RULE_GROUP_MAX_FIELDS];
	bool		vnull[RULE_GROUP_MAX_FIELDS];
	int			dims[1] = {state->ngroup_by};
	int			lbs[1] = {1};

	for (int i = 0; i < state->ngroup_by; i++)
	{
		const char *value = values[state->group_by[i]];

		k[i] = CStringGetTextDatum(group_field_names[state->group_by[i]]);
		vnull[i] = (value == NULL);
		v[i] = value ? group_value(value) : (Datum) 0;
	}
	*keys = PointerGetDatum(construct_array(k, state->ngroup_by, TEXTOID, -1, false,
											TYPALIGN_INT));
	*vals = PointerGetDatum(construct_md_array(v, vnull, 1, dims, lbs, TEXTOID, -1, false,
											   TYPALIGN_INT));
}

/*
 * JoinAlertGroup folds a match into the open alert of its group, if there
 * is one: it records the occurrence and updates the alert's count and
 * first/last events.  Returns that alert's id, or 0 when no open alert of
 * the group lies within group_window of the event (the caller then creates
 * one).  The candidate query skips events already folded, and runs of a
 * rule never overlap, so the occurrence is new: were it not, the unique
 * key fails the run rather than let the event open a second alert.  The
 * occurrence records its event's account (as stored, '' when unknown),
 * which need not be the alert's when group_by does not hold account_id.
 */
int64
JoinAlertGroup(RuleRunState *state, const char *event_id, const char *account,
			   TimestampTz event_time, Datum keys, Datum vals)
{
	Oid			argtypes[7] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID,
		TIMESTAMPTZOID, INT8OID, TEXTOID};
	Datum		values[7];
	bool		isnull;
	int64		alert_id = 0;
	int			ret;

	PrepareKeptPlan(&join_plan,
					"WITH g AS ("
					"  SELECT a.alert_id FROM lambda_detect.alerts a"
					"   WHERE a.rule = $1 AND a.group_key = jsonb_object($2, $3)"
					"     AND a.group_key IS NOT NULL AND a.status <> 'closed'"
					"     AND $5 > a.event_time - a.group_window"
					"     AND $5 < a.event_time + a.group_window"
					"   ORDER BY a.alert_id DESC LIMIT 1"
					"   FOR UPDATE),"
					" o AS ("
					"  INSERT INTO lambda_detect.alert_occurrences"
					"   (rule, event_id, account_id, alert_id, event_time, run_id, grouped_at)"
					"  SELECT $1, $4, $7, g.alert_id, $5, $6, clock_timestamp() FROM g"
					"  RETURNING alert_id)"
					" UPDATE lambda_detect.alerts a"
					"    SET occurrences = a.occurrences + 1,"
					"        first_event_id = CASE WHEN $5 < a.first_event_time"
					"                              THEN $4 ELSE a.first_event_id END,"
					"        first_event_time = least(a.first_event_time, $5),"
					"        last_event_id = CASE WHEN $5 >= a.last_event_time"
					"                             THEN $4 ELSE a.last_event_id END,"
					"        last_event_time = greatest(a.last_event_time, $5)"
					"   FROM o WHERE a.alert_id = o.alert_id"
					" RETURNING a.alert_id",
					7, argtypes, 0);
	values[0] = CStringGetTextDatum(state->rule);
	values[1] = keys;
	values[2] = vals;
	values[3] = CStringGetTextDatum(event_id);
	values[4] = TimestampTzGetDatum(event_time);
	values[5] = Int64GetDatum(state->run_id);
	values[6] = CStringGetTextDatum(account);
	ret = SPI_execute_plan(join_plan, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not join alert group: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
		alert_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return alert_id;
}
