/*-------------------------------------------------------------------------
 *
 * lambda_detect.h
 *	  Declarations shared by the parts of lambda_detect: settings, shared
 *	  state, ingestion, the rule engine and the background worker.
 *
 * src/lambda_detect.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LAMBDA_DETECT_H
#define LAMBDA_DETECT_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/elog.h"
#include "utils/palloc.h"
#include "utils/jsonb.h"

/*
 * The rules' candidate filter: Lambda permission and function URL events.
 * The WHEN clauses of the triggers that fill rule_candidates
 * (schema/12_rule_candidates.sql) say the same.
 */
#define LD_CANDIDATE_PREDICATE(alias) \
	alias ".event_source = 'lambda.amazonaws.com'" \
	" AND (" alias ".event_name LIKE 'AddPermission%'" \
	" OR " alias ".event_name LIKE 'CreateFunctionUrlConfig%'" \
	" OR " alias ".event_name LIKE 'UpdateFunctionUrlConfig%')"

/* ingest helpers a worker may run at once (lambda_detect.ingest_helpers) */
#define LD_MAX_INGEST_HELPERS 8

/* settings.c */
extern char *ld_database;
extern char *ld_worker_role;
extern char *ld_inbox_dir;
extern int	ld_batch_size;
extern int	ld_ingest_helpers;
extern int	ld_notify_from;

/* lambda_detect.notify_from */
#define NOTIFY_FROM_TRIGGER 0
#define NOTIFY_FROM_SESSION 1
extern int	ld_naptime_ms;
extern int	ld_scan_interval_ms;
extern int	ld_full_scan_interval_ms;
extern int	ld_maintenance_interval_ms;
extern int	ld_file_settle_ms;
extern int	ld_max_payload_kb;
extern int	ld_max_depth;
extern int	ld_max_records;
extern int	ld_max_error_text;
extern bool ld_run_rules;

extern void DefineSettings(void);

/* shmem.c */
extern void RequestSharedState(void);
extern void AttachSharedState(void);
extern void SharedStateWorkerStarted(void);
extern void SharedStateSetState(const char *state);
extern void SharedStateRecordIngest(int64 events, bool files);
extern void SharedStateRecordRuleRun(void);
extern void SharedStateRecordError(const char *message);
extern int	SharedStateConnectFailures(bool increment, bool reset);
extern void WakeWorker(void);
extern bool SharedStateHelperStarted(int slot);
extern void SharedStateHelperConnected(void);
extern bool SharedStateHelperSlotBusy(int slot);
extern bool SharedStateHelpersFailing(void);
extern bool SharedStateWorkerDatabaseIs(const char *dbname);
extern void SharedStateNoteCandidates(void);
extern bool SharedStateTakeCandidates(void);
extern void SharedStateRequestScan(void);
extern bool SharedStateScanWanted(bool clear);
extern uint64 SharedStateScanRequests(void);
extern void StopWorkerInDatabase(const char *dbname);

/* dropdb_guard.c */
extern void InstallDropDatabaseGuard(void);

/* guarded.c */
typedef void (*GuardedFunction) (void *arg);
extern ErrorData *RunGuarded(GuardedFunction fn, void *arg);
extern bool IsTransientError(ErrorData *edata);
extern bool ErrorIsAboutSystem(ErrorData *edata);
extern char *ErrorLogText(ErrorData *edata);

/* spi_plans.c */
extern SPIPlanPtr PrepareKeptPlan(SPIPlanPtr *cache, const char *sql, int nargs,
								  Oid *argtypes, int cursor_options);

/* schema_version.c */
extern char *InstalledSchemaVersion(void);
extern void CheckSchemaVersion(void);

/* normalize.c */
extern bool ParseCloudTrailTime(const char *str, int len, TimestampTz *result);

/* ingest.c: counts of one ingestion unit, summed by callers */
typedef struct IngestCounts
{
	int64		inbox_rows;
	int64		files;
	int64		records;
	int64		events;
	int64		duplicates;
	int64		candidates;
	int64		skipped;
	int64		errors;
	Datum		skip_reasons;	/* text[] of skip reasons, or 0 */
} IngestCounts;

extern bool IngestInboxBatch(const char *origin, int batch_size, int64 *after_id,
							 int64 max_id, IngestCounts *counts);
extern void IngestDocuments(Datum *documents, Datum *locations, int ndocuments,
							const char *source, IngestCounts *counts);
extern void RecordIngestError(const char *sqlstate, const char *reason,
							  const char *message, const char *source,
							  const char *location, Jsonb *payload,
							  const char *raw_text, int raw_len);
extern void RecordIngestRun(const char *origin, const char *kind,
							TimestampTz started_at, IngestCounts *counts);
extern void AddIngestCounts(IngestCounts *sum, const IngestCounts *part);
extern void AddSkipReasons(IngestCounts *counts, Datum reasons);

/* files.c */
extern bool ScanInboxDirectory(const char *origin, IngestCounts *counts,
								MemoryContext listcxt, void (*boundary) (void),
								void (*backlog) (void), bool use_dir_cache);

/* dir_cache.c: what the worker's scans know of each directory */
typedef struct DirState
{
	uint64		key;			/* hash of the path (the hash table's key) */
	bool		complete;		/* read with nothing new in it: skip while unchanged */
	TimestampTz mtime;			/* its mtime when it was read */
	dev_t		dev;			/* its identity when it was read */
	ino_t		ino;
	int			nsubdirs;		/* the names of its subdirectories then */
	char	  **subdirs;
	uint64		last_scan;		/* the last scan that visited it */
	bool		may_complete;	/* read by this scan, stable, nothing new in it so far */
} DirState;

extern void DirCacheReset(void);
extern void DirCacheBeginScan(const char *root);
extern DirState *DirCacheLookup(const char *path, bool create);
extern void DirCacheSetSubdirs(DirState *d, List *names);
extern void DirCachePrune(uint64 scan);

/*
 * The alert fields a rule can group by (rules.group_by; the names are in
 * rule_options.c and in rules_group_by_check).
 */
typedef enum RuleGroupField
{
	GROUP_FUNCTION_ARN,
	GROUP_FUNCTION_NAME,
	GROUP_ACTOR_ARN,
	GROUP_ACCOUNT_ID,
	GROUP_AWS_REGION,
	GROUP_SOURCE_IP,
	GROUP_PRINCIPAL,
	GROUP_ACTION,
	GROUP_STATEMENT_ID,
	GROUP_USER_AGENT,
	RULE_GROUP_MAX_FIELDS
} RuleGroupField;

/*
 * rules.own_org_ids: at most this many AWS organisation ids, each
 * "o-" and 10 to 32 characters (rules_own_org_ids_check)
 */
#define RULE_MAX_OWN_ORGS		16
#define RULE_ORG_ID_MAX_LEN		34

/* rule_engine.c: one run of one rule */
typedef struct RuleRunState
{
	/* the rule, as loaded */
	char		rule[128];
	int32		version;
	char		matcher[64];
	char		severity[16];
	int32		risk_score;
	Interval	lookback;
	Interval	run_interval;
	int32		max_signals;
	bool		enabled;
	/*
	 * its options (rule_options.c).  RuleRunExecute takes these, with the
	 * matcher, severity, risk score and max_signals, from the rule's locked
	 * row (take_rule_parameters in rule_engine.c).
	 */
	int			ngroup_by;
	int			group_by[RULE_GROUP_MAX_FIELDS];	/* RuleGroupField */
	Interval	group_window;	/* valid when ngroup_by > 0 */
	bool		skip_org_scoped;	/* skip_scoped_by has principalOrgID */
	bool		skip_source_scoped; /* ... and sourceArn+sourceAccount */
	int			nown_org_ids;	/* the organisations principalOrgID may name */
	char		own_org_ids[RULE_MAX_OWN_ORGS][RULE_ORG_ID_MAX_LEN + 1];
	/* the run */
	int64		run_id;
	TimestampTz window_start;
	TimestampTz window_end;
	int64		candidates;
	int64		matched;
	int64		alerts_created;
	int64		duplicates;
	int64		suppressed;		/* matches an exception suppressed */
	int64		scoped_out;		/* matches skip_scoped_by kept out */
	int64		grouped;		/* matches folded into an open alert */
	bool		truncated;
	bool		track_watermark;	/* a worker run: record complete_until */
	TimestampTz complete_until;
} RuleRunState;

extern bool RuleRunStart(const char *rule, const char *trigger, TimestampTz as_of,
						 bool catch_up, RuleRunState *state);
extern ErrorData *RuleRunExecute(RuleRunState *state);
extern void RuleRunMarkFailed(int64 run_id, const char *sqlstate,
							  const char *message);
extern void CloseOutInterruptedRuleRuns(void);

/*
 * The rule matchers.  A matcher sees one candidate event and decides; the
 * rule engine (rule_engine.c) maps rules.matcher to these functions.
 */
typedef struct RuleCandidate
{
	const char *event_source;
	const char *event_name;
	const char *error_code;
	const char *error_message;
	const char *recipient_account_id;	/* the account that owns the function;
										 * NULL when unknown (stored as '') */
	Jsonb	   *request_parameters;
} RuleCandidate;

/*
 * What an alert says was granted.  By default the engine takes action,
 * principal and statement id from requestParameters; a matcher whose event
 * is not a policy statement (a function URL made public) sets "set" and the
 * alert takes these three values instead, NULLs included.
 */
typedef struct RuleGrant
{
	bool		set;
	const char *action;
	const char *principal;
	const char *statement_id;
} RuleGrant;

/* Elastic's event.outcome: failure when errorCode or errorMessage is non-empty */
static inline bool
RuleCandidateSucceeded(const RuleCandidate *c)
{
	return (c->error_code == NULL || c->error_code[0] == '\0') &&
		(c->error_message == NULL || c->error_message[0] == '\0');
}

/* rule_engine.c: helpers shared by the matchers */
extern bool LambdaInvokeAction(const char *action);
extern JsonbContainer *SuccessfulAddPermissionParams(const RuleCandidate *c);

/* rule_lambda_public.c: the seed rule's matcher */
extern bool MatchLambdaPublicInvocation(const RuleCandidate *candidate,
										StringInfo reason);

/* rule_wildcard_action.c, rule_function_url.c, rule_cross_account.c */
extern bool MatchLambdaPublicWildcardAction(const RuleCandidate *candidate,
											StringInfo reason, RuleGrant *grant);
extern bool MatchLambdaFunctionUrlPublic(const RuleCandidate *candidate,
										 StringInfo reason, RuleGrant *grant);
extern bool MatchLambdaCrossAccountInvocation(const RuleCandidate *candidate,
											  StringInfo reason, RuleGrant *grant);

/* exceptions.c: allow-list entries applied to a rule's matches */
typedef enum ExceptionField
{
	EXCEPTION_ACTOR_ARN,
	EXCEPTION_FUNCTION_NAME,
	EXCEPTION_FUNCTION_ARN,
	EXCEPTION_ACCOUNT_ID,
	EXCEPTION_AWS_REGION,
	EXCEPTION_SOURCE_IP,
	EXCEPTION_USER_AGENT,
	EXCEPTION_STATEMENT_ID,
	EXCEPTION_NFIELDS
} ExceptionField;

/*
 * The values an exception is tested against: those the alert would carry.
 * fields[EXCEPTION_SOURCE_IP] is sourceIPAddress verbatim (for equals,
 * prefix and glob); source_ip is the same as inet when it is an address
 * (for in_cidr).  A NULL field never matches.
 */
typedef struct ExceptionSubject
{
	const char *fields[EXCEPTION_NFIELDS];
	Datum		source_ip;
	bool		source_ip_isnull;
} ExceptionSubject;

typedef struct RuleExceptions RuleExceptions;

extern RuleExceptions *LoadRuleExceptions(const char *rule);
extern int	RuleExceptionCount(const RuleExceptions *exceptions);
extern int64 FindRuleException(const RuleExceptions *exceptions,
							   const ExceptionSubject *subject);
extern void RecordSuppressedMatch(int64 run_id, const char *rule,
								  const char *event_id, const char *account,
								  int64 exception_id, const char *scoped_by);
extern bool GlobMatch(const char *pattern, const char *text);

/* rule_options.c: skip_scoped_by and grouping */
extern void LoadRuleOptions(RuleRunState *state, Datum group_by, bool group_by_null,
							Datum group_window, bool group_window_null,
							Datum skip_scoped_by, bool skip_scoped_by_null,
							Datum own_org_ids, bool own_org_ids_null);
extern const char *RuleScopedOut(const RuleRunState *state, const RuleCandidate *candidate);
extern void BuildGroupKey(const RuleRunState *state, const char *const *values,
						  Datum *keys, Datum *vals);
extern int64 JoinAlertGroup(RuleRunState *state, const char *event_id,
							const char *account, TimestampTz event_time,
							Datum keys, Datum vals);

/* worker_privileges.c */
extern void CheckWorkerPrivileges(void);

/* worker.c */
extern void RegisterIngestWorker(void);
extern PGDLLEXPORT void LambdaDetectWorkerMain(Datum main_arg);
extern PGDLLEXPORT void LambdaDetectIngestHelperMain(Datum main_arg);

/* ingest_helpers.c */
extern void StartIngestHelpers(bool for_scan, const char *database);

/* an ingest helper's main_arg: its slot, and whether a scan's backlog started it */
#define INGEST_HELPER_SLOT_MASK	0xff
#define INGEST_HELPER_FOR_SCAN	0x100

/* an ingest helper's bgw_extra: the worker's database and role, as connected */
typedef struct IngestHelperTarget
{
	Oid			database_oid;
	Oid			role_oid;
	char		database[NAMEDATALEN];
} IngestHelperTarget;

/* json_text.c: small jsonb accessors shared by normalize and the matchers */
extern JsonbValue *JsonbObjectGet(JsonbContainer *object, const char *key,
								  JsonbValue *result);
extern char *JsonbObjectGetString(JsonbContainer *object, const char *key,
								  int *len);
extern JsonbContainer *JsonbObjectGetObject(JsonbContainer *object,
											const char *key);

#endif							/* LAMBDA_DETECT_H */
