/*-------------------------------------------------------------------------
 *
 * schema_version.c
 *	  Whether the installed SQL objects are the version this library was
 *	  built for.
 *
 * After a package upgrade the new library is loaded at once (it is in
 * shared_preload_libraries), but the schema stays at the old version until
 * someone runs ALTER EXTENSION lambda_detect UPDATE.  The C code reads and
 * writes the schema's tables, so it refuses to work on another version:
 * run_rule() and ingest_now() fail with a hint, and the worker waits (one
 * log line, then quiet) until the update, instead of failing on a missing
 * column at every turn.
 *
 * src/schema_version.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "lambda_detect.h"

/*
 * InstalledSchemaVersion returns the extversion of lambda_detect in the
 * current database (palloc'd), or NULL when the extension is not installed.
 * Needs a transaction.
 */
char *
InstalledSchemaVersion(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("lambda_detect"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * CheckSchemaVersion raises an error unless the installed schema is the
 * library's version.  For the SQL-callable entry points.
 */
void
CheckSchemaVersion(void)
{
	char	   *installed = InstalledSchemaVersion();

	if (installed == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"lambda_detect\" is not installed in this database")));
	if (strcmp(installed, LAMBDA_DETECT_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("lambda_detect schema version %s does not match library version %s",
						installed, LAMBDA_DETECT_VERSION),
				 errhint("Run ALTER EXTENSION lambda_detect UPDATE.")));
}
