/*-------------------------------------------------------------------------
 *
 * dropdb_guard.c
 *	  Lets DROP DATABASE and ALTER DATABASE ... RENAME of the worker's
 *	  database proceed.
 *
 * Both refuse to run while other sessions are connected, and in PG15 a
 * background worker is not asked to leave as autovacuum is: without this,
 * the worker would make its own database impossible to drop.  A utility
 * hook stops the worker first (SIGTERM, then a short wait for it to be
 * gone), but only for a caller who owns the database, so that nobody else
 * can restart the worker at will.  The postmaster restarts the worker a few
 * seconds later; if the database is gone, it backs off and says why.
 *
 * src/dropdb_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"

#include "lambda_detect.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * The database a statement would need to have no other sessions in, or
 * NULL.  Only statements that can succeed count: DROP DATABASE cannot run
 * inside a transaction block, RENAME needs CREATEDB, neither works on the
 * database the caller is connected to.  Otherwise a doomed statement would
 * restart the worker for nothing.
 */
static const char *
exclusive_database(Node *stmt, ProcessUtilityContext context)
{
	if (IsA(stmt, DropdbStmt))
	{
		if (context != PROCESS_UTILITY_TOPLEVEL || IsTransactionBlock())
			return NULL;
		return ((DropdbStmt *) stmt)->dbname;
	}
	if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
	{
		if (!have_createdb_privilege())
			return NULL;
		return ((RenameStmt *) stmt)->subname;
	}
	return NULL;
}

static void
ld_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				  ProcessUtilityContext context, ParamListInfo params,
				  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	const char *dbname = exclusive_database(pstmt->utilityStmt, context);

	if (dbname != NULL)
	{
		Oid			dboid = get_database_oid(dbname, true);

		if (OidIsValid(dboid) && dboid != MyDatabaseId &&
			pg_database_ownercheck(dboid, GetUserId()))
			StopWorkerInDatabase(dbname);
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/* InstallDropDatabaseGuard chains the utility hook; called from _PG_init. */
void
InstallDropDatabaseGuard(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = ld_ProcessUtility;
}
