/*-------------------------------------------------------------------------
 *
 * rule_wildcard_action.c
 *	  Matcher of lambda-public-wildcard-action: a function opened to "*" with
 *	  an action the seed rule does not catch.
 *
 * The seed rule (rule_lambda_public.c) keeps exact parity with Elastic,
 * whose test is a case-sensitive substring "lambda:InvokeFunction".  The
 * AddPermission API also accepts "lambda:*" and "*" (its Action pattern is
 * lambda:[*]|lambda:[a-zA-Z]+|[*]), and IAM action names are
 * case-insensitive, so "lambda:invokefunction" grants the same as
 * "lambda:InvokeFunction".  This matcher alerts on those grants to a
 * principal starting with "*", and never on an event the seed matcher
 * matches: the two rules never alert twice for one grant.
 *
 * src/rule_wildcard_action.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "lambda_detect.h"

/*
 * MatchLambdaPublicWildcardAction decides whether a candidate is a
 * successful AddPermission granting an invoke action (LambdaInvokeAction)
 * to a principal starting with "*" that the seed matcher would not match;
 * if so it says why in reason.  The grant is read from requestParameters.
 */
bool
MatchLambdaPublicWildcardAction(const RuleCandidate *c, StringInfo reason,
								RuleGrant *grant)
{
	JsonbContainer *params;
	char	   *action;
	char	   *principal;
	char	   *function;
	StringInfoData seed_reason;
	bool		seed_matches;

	params = SuccessfulAddPermissionParams(c);
	if (params == NULL)
		return false;
	action = JsonbObjectGetString(params, "action", NULL);
	if (action == NULL || !LambdaInvokeAction(action))
		return false;
	principal = JsonbObjectGetString(params, "principal", NULL);
	if (principal == NULL || principal[0] != '*')
		return false;

	/* the seed rule's events are the seed rule's: never a second alert */
	initStringInfo(&seed_reason);
	seed_matches = MatchLambdaPublicInvocation(c, &seed_reason);
	pfree(seed_reason.data);
	if (seed_matches)
		return false;

	function = JsonbObjectGetString(params, "functionName", NULL);
	appendStringInfo(reason,
					 "%s succeeded: principal \"%s\" was granted %s on function \"%s\", "
					 "an action the seed rule lambda-public-invocation does not match",
					 c->event_name, principal, action,
					 function ? function : "(not given)");
	return true;
}
