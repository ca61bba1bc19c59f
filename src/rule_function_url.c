/*-------------------------------------------------------------------------
 *
 * rule_function_url.c
 *	  Matcher of lambda-function-url-public: a function URL whose
 *	  authentication is switched off.
 *
 * CreateFunctionUrlConfig and UpdateFunctionUrlConfig (with their API
 * version suffixes, e.g. CreateFunctionUrlConfig20211031) with AuthType
 * NONE give the function an HTTPS endpoint on which Lambda performs no IAM
 * authentication: whoever the function's resource-based policy lets in can
 * call it with no AWS credentials.  These are not AddPermission events, so
 * no policy rule sees them.
 *
 * The event grants no policy statement: the alert's action is
 * lambda:InvokeFunctionUrl (what the endpoint serves), its principal and
 * statement id are NULL (this call names neither; the statement that lets
 * "*" in is a separate AddPermission, which the seed rule alerts on).
 *
 * src/rule_function_url.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "lambda_detect.h"

/*
 * MatchLambdaFunctionUrlPublic decides whether a candidate is a successful
 * Create/UpdateFunctionUrlConfig whose requestParameters.authType is NONE
 * (compared case-insensitively; AWS sends "NONE").  An update that does not
 * set authType (only CORS, say) does not match: it opens nothing.
 */
bool
MatchLambdaFunctionUrlPublic(const RuleCandidate *c, StringInfo reason,
							 RuleGrant *grant)
{
	JsonbContainer *params;
	char	   *auth_type;
	char	   *function;
	char	   *qualifier;

	if (strcmp(c->event_source, "lambda.amazonaws.com") != 0 ||
		(strncmp(c->event_name, "CreateFunctionUrlConfig",
				 strlen("CreateFunctionUrlConfig")) != 0 &&
		 strncmp(c->event_name, "UpdateFunctionUrlConfig",
				 strlen("UpdateFunctionUrlConfig")) != 0) ||
		!RuleCandidateSucceeded(c) ||
		c->request_parameters == NULL ||
		!JB_ROOT_IS_OBJECT(c->request_parameters))
		return false;

	params = &c->request_parameters->root;
	auth_type = JsonbObjectGetString(params, "authType", NULL);
	if (auth_type == NULL || pg_strcasecmp(auth_type, "NONE") != 0)
		return false;

	grant->set = true;
	grant->action = "lambda:InvokeFunctionUrl";
	grant->principal = NULL;
	grant->statement_id = NULL;

	function = JsonbObjectGetString(params, "functionName", NULL);
	qualifier = JsonbObjectGetString(params, "qualifier", NULL);
	appendStringInfo(reason,
					 "%s succeeded: the function URL of \"%s\"%s%s%s has authType %s: "
					 "Lambda does no IAM authentication on it",
					 c->event_name, function ? function : "(not given)",
					 qualifier ? " (qualifier \"" : "",
					 qualifier ? qualifier : "",
					 qualifier ? "\")" : "",
					 auth_type);
	return true;
}
