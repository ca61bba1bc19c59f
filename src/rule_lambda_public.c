/*-------------------------------------------------------------------------
 *
 * rule_lambda_public.c
 *	  The seed rule's matcher: a Lambda function policy opened to public
 *	  invocation.
 *
 * Exact parity with Elastic's prebuilt rule 151d8f72-0747-11ef-a0c2-
 * f661ea17fbcc, version 1, whose KQL is
 *
 *	  event.provider: lambda.amazonaws.com and event.outcome: success
 *	  and event.action: AddPermission*
 *	  and aws.cloudtrail.request_parameters:
 *		  (*lambda\:InvokeFunction* and *principal=\**)
 *
 * Elastic flattens requestParameters with Java's Map.toString() (null and
 * empty values dropped) and tests the two wildcards case-sensitively on that
 * string.  On AddPermission records that is the same as: the "action"
 * string contains lambda:InvokeFunction (so lambda:InvokeFunctionUrl matches
 * too) and the "principal" string starts with "*".  We test the structured
 * JSON, which needs no flattening.
 *
 * src/rule_lambda_public.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "lambda_detect.h"

/*
 * MatchLambdaPublicInvocation decides whether a candidate event matches the
 * seed rule, and if so says why in reason.
 */
bool
MatchLambdaPublicInvocation(const RuleCandidate *c, StringInfo reason)
{
	JsonbContainer *params;
	char	   *action;
	char	   *principal;
	char	   *function;

	params = SuccessfulAddPermissionParams(c);
	if (params == NULL)
		return false;
	action = JsonbObjectGetString(params, "action", NULL);
	if (action == NULL || strstr(action, "lambda:InvokeFunction") == NULL)
		return false;
	principal = JsonbObjectGetString(params, "principal", NULL);
	if (principal == NULL || principal[0] != '*')
		return false;

	function = JsonbObjectGetString(params, "functionName", NULL);
	appendStringInfo(reason,
					 "%s succeeded: principal \"%s\" was granted %s on function \"%s\"",
					 c->event_name, principal, action,
					 function ? function : "(not given)");
	return true;
}
