/*-------------------------------------------------------------------------
 *
 * guarded.c
 *	  Running a unit of work in a subtransaction and keeping its error;
 *	  telling what an error may say in the server log.
 *
 * Ingestion must never let one bad payload or file sink a batch, and a
 * failed rule run must be recorded rather than lost: both run the risky part
 * here, get the error back as data, and decide what to do with it.
 *
 * The server log is read by the server's administrators, who need not be
 * allowed to read events; an error's text can quote the data it failed on.
 * ErrorLogText says what of an error the log may carry.
 *
 * src/guarded.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "lambda_detect.h"

/*
 * RunGuarded calls fn(arg) inside an internal subtransaction.  On success
 * the subtransaction is released and NULL returned; on error it is rolled
 * back and a copy of the error, allocated in the caller's memory context,
 * is returned.  The pattern is PL/pgSQL's exception block
 * (exec_stmt_block): the memory context and resource owner current at entry
 * are restored on both paths.
 */
ErrorData *
RunGuarded(GuardedFunction fn, void *arg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	/* run the work in the caller's memory context, not the subxact's */
	MemoryContextSwitchTo(oldcontext);

	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();

	return edata;
}

/*
 * IsTransientError tells errors that say nothing about the input (a cancel,
 * a shutdown, a full disk, a deadlock, out of memory or connections, a
 * missing privilege or a table dropped under us) from
 * errors the input caused.  Input errors are dead-lettered; transient ones
 * are re-raised so that the work is retried and no good data is set aside.
 */
bool
IsTransientError(ErrorData *edata)
{
	switch (ERRCODE_TO_CATEGORY(edata->sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:	/* 08 */
		case ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION:	/* 42: privileges, a dropped table */
		case ERRCODE_TRANSACTION_ROLLBACK:	/* 40 */
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53 */
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:	/* 55 */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57 */
		case ERRCODE_SYSTEM_ERROR:	/* 58 */
			return true;
		default:
			return false;
	}
}

/*
 * ErrorIsAboutSystem tells errors whose text describes the server, its
 * objects and resources (the classes IsTransientError re-raises, program
 * limits, internal errors) from errors whose text may quote the data being
 * processed: a data exception quotes the value it could not take ("invalid
 * input syntax for type inet: ..."), an integrity violation the key or the
 * whole row ("Failing row contains (...)"), a trigger's RAISE whatever it
 * was given.
 */
bool
ErrorIsAboutSystem(ErrorData *edata)
{
	if (IsTransientError(edata))
		return true;
	switch (ERRCODE_TO_CATEGORY(edata->sqlerrcode))
	{
		case ERRCODE_PROGRAM_LIMIT_EXCEEDED:	/* 54 */
		case ERRCODE_INTERNAL_ERROR:	/* XX */
			return true;
		default:
			return false;
	}
}

/*
 * ErrorLogText describes an error for the server log, without a period:
 * its SQLSTATE and, for an error about the system, its message; for any
 * other error, only the names of the objects it reports (a constraint, a
 * column, a type, a table), which PostgreSQL sets apart from the text, e.g.
 * 'SQLSTATE 23514, constraint "c" of table "s.t"'.  The whole error goes to
 * where its data is: a dead letter, a rule run, the caller of a SQL
 * function.
 */
char *
ErrorLogText(ErrorData *edata)
{
	StringInfoData buf;
	bool		named = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SQLSTATE %s", unpack_sql_state(edata->sqlerrcode));
	if (ErrorIsAboutSystem(edata))
	{
		if (edata->message)
			appendStringInfo(&buf, ": %s", edata->message);
		return buf.data;
	}
	if (edata->constraint_name)
		appendStringInfo(&buf, ", constraint \"%s\"", edata->constraint_name);
	else if (edata->column_name)
		appendStringInfo(&buf, ", column \"%s\"", edata->column_name);
	else if (edata->datatype_name)
		appendStringInfo(&buf, ", type \"%s\"", edata->datatype_name);
	else
		named = false;
	if (edata->table_name)
		appendStringInfo(&buf, "%s table \"%s%s%s\"", named ? " of" : ",",
						 edata->schema_name ? edata->schema_name : "",
						 edata->schema_name ? "." : "",
						 edata->table_name);
	return buf.data;
}
