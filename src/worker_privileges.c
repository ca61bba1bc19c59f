/*-------------------------------------------------------------------------
 *
 * worker_privileges.c
 *	  What the background worker's role must be granted, checked before the
 *	  worker starts working.
 *
 * With lambda_detect.worker_role set, the worker connects as that role and
 * every statement it runs is checked against the role's privileges.  A
 * missing grant would otherwise surface as "permission denied" in the
 * middle of some unit of work, perhaps only when the first attack arrives
 * and its alert cannot be inserted.  CheckWorkerPrivileges checks the whole
 * list at once, when the worker finds the extension and again after a unit
 * failed for lack of a privilege, and names every missing grant together
 * with the GRANT statements that mend it.
 *
 * The list below is the worker duty of README.md ("Privileges"): the two
 * must agree.  t/006_worker_role.pl runs the README's statements and proves
 * that the worker does its whole job with them.  Objects the installed
 * schema does not have are skipped: the schema version check comes first,
 * and a statement on a missing object fails on its own terms.
 *
 * src/worker_privileges.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "lambda_detect.h"

typedef enum GrantTarget
{
	ON_SCHEMA,					/* the schema lambda_detect */
	ON_TABLE,					/* the table as a whole */
	ON_ANY_COLUMN,				/* the table, or any one column (for row locks) */
	ON_COLUMNS,					/* the table, or each of the columns named */
	ON_FUNCTION					/* the function of "object" (see worker_function_oid) */
} GrantTarget;

typedef struct WorkerGrant
{
	GrantTarget target;
	const char *object;			/* a table of lambda_detect, or NULL */
	AclMode		mode;
	const char *privilege;		/* as GRANT spells it */
	const char *columns;		/* ON_ANY_COLUMN, ON_COLUMNS: what README grants */
} WorkerGrant;

/*
 * Every privilege a statement of the worker needs.  SELECT ... FOR UPDATE
 * (claiming inbox rows, locking a rule for its run) needs UPDATE on at
 * least one column; the README grants it on a column whose update changes
 * nothing of use (an identity column, a timestamp a trigger overwrites).
 */
static const WorkerGrant worker_grants[] =
{
	{ON_SCHEMA, NULL, ACL_USAGE, "USAGE", NULL},
	/* the inbox (ingest.c) */
	{ON_TABLE, "inbox", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "inbox", ACL_DELETE, "DELETE", NULL},
	{ON_ANY_COLUMN, "inbox", ACL_UPDATE, "UPDATE", "id"},
	{ON_FUNCTION, "normalize(jsonb)", ACL_EXECUTE, "EXECUTE", NULL},
	{ON_TABLE, "events", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "events", ACL_INSERT, "INSERT", NULL},
	{ON_TABLE, "ingest_errors", ACL_INSERT, "INSERT", NULL},
	{ON_TABLE, "ingest_runs", ACL_INSERT, "INSERT", NULL},
	/* files (files.c) */
	{ON_TABLE, "ingested_files", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "ingested_files", ACL_INSERT, "INSERT", NULL},
	{ON_TABLE, "ingested_files", ACL_UPDATE, "UPDATE", NULL},
	/* rule runs (rule_engine.c, exceptions.c, rule_options.c) */
	{ON_TABLE, "rules", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "rule_candidates", ACL_SELECT, "SELECT", NULL},
	{ON_ANY_COLUMN, "rules", ACL_UPDATE, "UPDATE", "updated_at"},
	{ON_TABLE, "rule_runs", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "rule_runs", ACL_INSERT, "INSERT", NULL},
	{ON_TABLE, "rule_runs", ACL_UPDATE, "UPDATE", NULL},
	{ON_TABLE, "exceptions", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "suppressed_matches", ACL_INSERT, "INSERT", NULL},
	{ON_TABLE, "alerts", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "alerts", ACL_INSERT, "INSERT", NULL},
	{ON_COLUMNS, "alerts", ACL_UPDATE, "UPDATE",
	"occurrences, first_event_id, first_event_time, last_event_id, last_event_time"},
	{ON_TABLE, "alert_occurrences", ACL_SELECT, "SELECT", NULL},
	{ON_TABLE, "alert_occurrences", ACL_INSERT, "INSERT", NULL},
	/* NOTIFY from the rule engine when notify_from = session: SECURITY DEFINER */
	{ON_FUNCTION, "notify_alert_changed(bigint, text)", ACL_EXECUTE, "EXECUTE", NULL},
	/* storage upkeep (worker.c): SECURITY DEFINER, EXECUTE is all it needs */
	{ON_FUNCTION, "maintain(integer)", ACL_EXECUTE, "EXECUTE", NULL},
};

/*
 * The functions the worker's statements call by name ("normalize(jsonb)",
 * "maintain(integer)", "notify_alert_changed(bigint, text)" of schema
 * lambda_detect); InvalidOid when the installed schema lacks it.
 */
static Oid
worker_function_oid(const char *signature)
{
	Oid			argtypes[2];
	int			nargs = 1;
	const char *name;

	if (strcmp(signature, "normalize(jsonb)") == 0)
	{
		argtypes[0] = JSONBOID;
		name = "normalize";
	}
	else if (strcmp(signature, "maintain(integer)") == 0)
	{
		argtypes[0] = INT4OID;
		name = "maintain";
	}
	else if (strcmp(signature, "notify_alert_changed(bigint, text)") == 0)
	{
		argtypes[0] = INT8OID;
		argtypes[1] = TEXTOID;
		nargs = 2;
		name = "notify_alert_changed";
	}
	else
		elog(ERROR, "unknown worker function \"%s\"", signature);
	return LookupFuncName(list_make2(makeString("lambda_detect"), makeString(unconstify(char *, name))),
						  nargs, argtypes, true);
}

/*
 * has_columns_privilege tells whether role has mode on the table as a whole
 * or on every column of a comma-separated list (columns the table does not
 * have are skipped, as missing tables are).
 */
static bool
has_columns_privilege(Oid relid, Oid role, AclMode mode, const char *columns)
{
	char	   *list = pstrdup(columns);
	char	   *save = NULL;

	if (pg_class_aclcheck(relid, role, mode) == ACLCHECK_OK)
		return true;
	for (char *col = strtok_r(list, ", ", &save); col != NULL;
		 col = strtok_r(NULL, ", ", &save))
	{
		AttrNumber	attnum = get_attnum(relid, col);

		if (attnum != InvalidAttrNumber &&
			pg_attribute_aclcheck(relid, attnum, role, mode) != ACLCHECK_OK)
			return false;
	}
	return true;
}

/*
 * CheckWorkerPrivileges raises 42501 unless the current role holds every
 * privilege of worker_grants.  The error lists all that is missing, and its
 * hint the GRANT statements to run.  A superuser passes at once.  Needs a
 * transaction.
 */
void
CheckWorkerPrivileges(void)
{
	Oid			role = GetUserId();
	const char *rolename;
	const char *grantee;
	Oid			nspid;
	StringInfoData missing;
	StringInfoData grants;
	int			nmissing = 0;

	if (superuser())
		return;
	rolename = GetUserNameFromId(role, false);
	grantee = quote_identifier(rolename);
	nspid = get_namespace_oid("lambda_detect", true);
	if (!OidIsValid(nspid))
		return;

	initStringInfo(&missing);
	initStringInfo(&grants);
	for (int i = 0; i < lengthof(worker_grants); i++)
	{
		const WorkerGrant *g = &worker_grants[i];
		Oid			oid = InvalidOid;
		bool		ok = true;

		switch (g->target)
		{
			case ON_SCHEMA:
				ok = pg_namespace_aclcheck(nspid, role, g->mode) == ACLCHECK_OK;
				break;
			case ON_FUNCTION:
				oid = worker_function_oid(g->object);
				ok = !OidIsValid(oid) || pg_proc_aclcheck(oid, role, g->mode) == ACLCHECK_OK;
				break;
			case ON_TABLE:
			case ON_ANY_COLUMN:
			case ON_COLUMNS:
				oid = get_relname_relid(g->object, nspid);
				if (!OidIsValid(oid))
					break;
				if (g->target == ON_TABLE)
					ok = pg_class_aclcheck(oid, role, g->mode) == ACLCHECK_OK;
				else if (g->target == ON_ANY_COLUMN)
					ok = pg_class_aclcheck(oid, role, g->mode) == ACLCHECK_OK ||
						pg_attribute_aclcheck_all(oid, role, g->mode, ACLMASK_ANY) == ACLCHECK_OK;
				else
					ok = has_columns_privilege(oid, role, g->mode, g->columns);
				break;
		}
		if (ok)
			continue;

		nmissing++;
		if (missing.len > 0)
			appendStringInfoString(&missing, ", ");
		switch (g->target)
		{
			case ON_SCHEMA:
				appendStringInfo(&missing, "%s on schema lambda_detect", g->privilege);
				appendStringInfo(&grants, "GRANT %s ON SCHEMA lambda_detect TO %s; ",
								 g->privilege, grantee);
				break;
			case ON_FUNCTION:
				appendStringInfo(&missing, "%s on function lambda_detect.%s",
								 g->privilege, g->object);
				appendStringInfo(&grants, "GRANT %s ON FUNCTION lambda_detect.%s TO %s; ",
								 g->privilege, g->object, grantee);
				break;
			case ON_TABLE:
				appendStringInfo(&missing, "%s on table lambda_detect.%s",
								 g->privilege, g->object);
				appendStringInfo(&grants, "GRANT %s ON lambda_detect.%s TO %s; ",
								 g->privilege, g->object, grantee);
				break;
			case ON_ANY_COLUMN:
			case ON_COLUMNS:
				appendStringInfo(&missing, "%s (%s) on table lambda_detect.%s",
								 g->privilege, g->columns, g->object);
				appendStringInfo(&grants, "GRANT %s (%s) ON lambda_detect.%s TO %s; ",
								 g->privilege, g->columns, g->object, grantee);
				break;
		}
	}
	if (nmissing == 0)
		return;

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg_plural("lambda_detect worker: role \"%s\" lacks %d privilege the worker needs",
						   "lambda_detect worker: role \"%s\" lacks %d privileges the worker needs",
						   nmissing, rolename, nmissing),
			 errdetail("Missing: %s.", missing.data),
			 errhint("As a superuser, run: %sREADME.md (\"Privileges\") lists every grant of the worker duty.",
					 grants.data)));
}
