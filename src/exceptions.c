/*-------------------------------------------------------------------------
 *
 * exceptions.c
 *	  Exceptions (Elastic's exception lists): allow-list entries that stop
 *	  a rule's matches from becoming alerts.
 *
 * An exception of lambda_detect.exceptions names a rule (or all rules with
 * NULL), a field, an operator and a value.  A run loads the rule's active
 * exceptions once (LoadRuleExceptions); each match that would become a new
 * alert is tested against them in C (FindRuleException), on the values the
 * alert would carry.  A suppressed match is counted in rule_runs.suppressed
 * and recorded once per (rule, event) in suppressed_matches
 * (RecordSuppressedMatch).  Existing alerts are never touched.
 *
 * Operators: equals and prefix compare bytes (case-sensitive); glob is a
 * whole-string match where "*" stands for any run of characters, "?" for
 * one character and a backslash makes the next character literal;
 * in_cidr (source_ip only) tests that the address lies in the network.
 *
 * src/exceptions.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datum.h"

#include "lambda_detect.h"

typedef enum ExceptionOperator
{
	EXCEPTION_EQUALS,
	EXCEPTION_PREFIX,
	EXCEPTION_GLOB,
	EXCEPTION_IN_CIDR
} ExceptionOperator;

typedef struct RuleException
{
	int64		id;
	ExceptionField field;
	ExceptionOperator op;
	char	   *value;
	Size		value_len;
	Datum		network;		/* in_cidr: the value as cidr */
} RuleException;

struct RuleExceptions
{
	int			count;
	RuleException *items;
};

/* names as in the CHECK constraints of lambda_detect.exceptions */
static const char *const field_names[EXCEPTION_NFIELDS] = {
	[EXCEPTION_ACTOR_ARN] = "actor_arn",
	[EXCEPTION_FUNCTION_NAME] = "function_name",
	[EXCEPTION_FUNCTION_ARN] = "function_arn",
	[EXCEPTION_ACCOUNT_ID] = "account_id",
	[EXCEPTION_AWS_REGION] = "aws_region",
	[EXCEPTION_SOURCE_IP] = "source_ip",
	[EXCEPTION_USER_AGENT] = "user_agent",
	[EXCEPTION_STATEMENT_ID] = "statement_id",
};

static SPIPlanPtr load_plan = NULL;
static SPIPlanPtr record_plan = NULL;

static ExceptionField
parse_field(const char *name)
{
	for (int i = 0; i < EXCEPTION_NFIELDS; i++)
		if (strcmp(field_names[i], name) == 0)
			return (ExceptionField) i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("exception field \"%s\" is not implemented by this library", name),
			 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));
	return EXCEPTION_NFIELDS;	/* keep compiler quiet */
}

static ExceptionOperator
parse_operator(const char *name)
{
	if (strcmp(name, "equals") == 0)
		return EXCEPTION_EQUALS;
	if (strcmp(name, "prefix") == 0)
		return EXCEPTION_PREFIX;
	if (strcmp(name, "glob") == 0)
		return EXCEPTION_GLOB;
	if (strcmp(name, "in_cidr") == 0)
		return EXCEPTION_IN_CIDR;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("exception operator \"%s\" is not implemented by this library", name),
			 errhint("The installed SQL and library versions differ: run ALTER EXTENSION lambda_detect UPDATE.")));
	return EXCEPTION_EQUALS;	/* keep compiler quiet */
}

/*
 * LoadRuleExceptions reads the exceptions that apply to a rule now: those
 * of the rule and those of all rules (rule IS NULL), not expired, in id
 * order (the first that applies is the one recorded).  The list is
 * allocated in the current memory context.
 */
RuleExceptions *
LoadRuleExceptions(const char *rule)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		value = CStringGetTextDatum(rule);
	RuleExceptions *result = palloc0(sizeof(RuleExceptions));
	int			ret;

	PrepareKeptPlan(&load_plan,
					"SELECT x.id, x.field, x.operator, x.value,"
					"       CASE WHEN x.operator = 'in_cidr' THEN x.value::cidr END"
					"  FROM lambda_detect.exceptions x"
					" WHERE (x.rule = $1 OR x.rule IS NULL)"
					"   AND (x.expires_at IS NULL OR x.expires_at > now())"
					" ORDER BY x.id",
					1, argtypes, 0);
	ret = SPI_execute_plan(load_plan, &value, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read exceptions: %s", SPI_result_code_string(ret));

	result->count = (int) SPI_processed;
	if (result->count > 0)
		result->items = palloc0(sizeof(RuleException) * result->count);
	for (int i = 0; i < result->count; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RuleException *x = &result->items[i];
		bool		isnull;
		Datum		network;

		x->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		x->field = parse_field(TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull)));
		x->op = parse_operator(TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull)));
		x->value = TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull));
		x->value_len = strlen(x->value);
		network = SPI_getbinval(tup, desc, 5, &isnull);
		if (x->op == EXCEPTION_IN_CIDR)
		{
			/* the table's CHECKs guarantee both; a stale library would not */
			if (isnull || x->field != EXCEPTION_SOURCE_IP)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("exception %lld: in_cidr applies to source_ip only",
								(long long) x->id)));
			x->network = datumCopy(network, false, -1);
		}
	}
	SPI_freetuptable(SPI_tuptable);
	return result;
}

int
RuleExceptionCount(const RuleExceptions *exceptions)
{
	return exceptions ? exceptions->count : 0;
}

/*
 * GlobMatch tells whether text matches pattern as a whole.  "*" matches any
 * sequence of characters (the empty one too), "?" exactly one character
 * (multibyte characters count as one), "\" makes the next character
 * literal (a final "\" stands for itself); everything else matches itself,
 * case-sensitively.
 *
 * The classic greedy algorithm with one backtracking point: on a mismatch
 * after a "*", the star absorbs one more character and matching resumes.
 * It needs no recursion and at worst pattern length x text length steps.
 */
bool
GlobMatch(const char *pattern, const char *text)
{
	const char *p = pattern;
	const char *t = text;
	const char *star_p = NULL;	/* pattern just after the last "*" */
	const char *star_t = NULL;	/* text position that "*" has reached */

	while (*t != '\0')
	{
		if (*p == '*')
		{
			while (*p == '*')
				p++;
			if (*p == '\0')
				return true;	/* a trailing star takes the rest */
			star_p = p;
			star_t = t;
			continue;
		}
		if (*p == '?')
		{
			p++;
			t += pg_mblen(t);
			continue;
		}
		if (*p != '\0')
		{
			const char *lit = (*p == '\\' && p[1] != '\0') ? p + 1 : p;
			int			len = pg_mblen(lit);

			if (strncmp(lit, t, len) == 0)
			{
				p = lit + len;
				t += len;
				continue;
			}
		}
		/* mismatch: let the last star take one more character, if any */
		if (star_p == NULL)
			return false;
		star_t += pg_mblen(star_t);
		p = star_p;
		t = star_t;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

/* Does one exception apply to the subject? */
static bool
exception_applies(const RuleException *x, const ExceptionSubject *s)
{
	const char *v = s->fields[x->field];

	switch (x->op)
	{
		case EXCEPTION_EQUALS:
			return v != NULL && strcmp(v, x->value) == 0;
		case EXCEPTION_PREFIX:
			return v != NULL && strncmp(v, x->value, x->value_len) == 0;
		case EXCEPTION_GLOB:
			return v != NULL && GlobMatch(x->value, v);
		case EXCEPTION_IN_CIDR:
			/* an address of the other family is simply not contained */
			return !s->source_ip_isnull &&
				DatumGetBool(DirectFunctionCall2(network_subeq, s->source_ip,
												 x->network));
	}
	return false;
}

/*
 * FindRuleException returns the id of the first exception that applies to
 * the subject, or 0 when none does.
 */
int64
FindRuleException(const RuleExceptions *exceptions, const ExceptionSubject *subject)
{
	for (int i = 0; i < RuleExceptionCount(exceptions); i++)
		if (exception_applies(&exceptions->items[i], subject))
			return exceptions->items[i].id;
	return 0;
}

/*
 * RecordSuppressedMatch keeps a suppressed match findable.  One row per
 * (rule, event): a re-run that suppresses the same match again keeps the
 * first row, as alerts keep the first alert.  The cause is an exception
 * (exception_id) or, with exception_id 0, the rule's skip_scoped_by entry
 * scoped_by (rule_options.c).  account is the event's, as stored ('' when
 * it named none): the event is its eventID within its account.
 */
void
RecordSuppressedMatch(int64 run_id, const char *rule, const char *event_id,
					  const char *account, int64 exception_id, const char *scoped_by)
{
	Oid			argtypes[6] = {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			ret;

	PrepareKeptPlan(&record_plan,
					"INSERT INTO lambda_detect.suppressed_matches"
					" (run_id, rule, event_id, exception_id, scoped_by, account_id,"
					"  suppressed_at)"
					" VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())"
					" ON CONFLICT (rule, event_id, account_id) DO NOTHING",
					6, argtypes, 0);
	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(rule);
	values[2] = CStringGetTextDatum(event_id);
	values[3] = Int64GetDatum(exception_id);
	if (exception_id == 0)
		nulls[3] = 'n';
	if (scoped_by != NULL)
		values[4] = CStringGetTextDatum(scoped_by);
	else
		nulls[4] = 'n';
	values[5] = CStringGetTextDatum(account);
	ret = SPI_execute_plan(record_plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record suppressed match: %s", SPI_result_code_string(ret));
}
