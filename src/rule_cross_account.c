/*-------------------------------------------------------------------------
 *
 * rule_cross_account.c
 *	  Matcher of lambda-cross-account-invocation: a function's invoke
 *	  permission granted to another AWS account.
 *
 * AddPermission's Principal may name an AWS account, as a 12-digit id or as
 * an IAM ARN: arn:<partition>:iam::<account>:root, or a user or role of
 * that account.  When that account is not the function's own
 * (recipientAccountId), the grant lets an outside account run the code: a
 * quieter backdoor than "*", and the usual shape of an integration.
 * Service principals (s3.amazonaws.com, ...) and "*" are other rules'
 * business.
 *
 * src/rule_cross_account.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "lambda_detect.h"

#define ACCOUNT_ID_LEN 12

/* true when s starts with exactly ACCOUNT_ID_LEN ASCII digits */
static bool
starts_with_account_id(const char *s)
{
	for (int i = 0; i < ACCOUNT_ID_LEN; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * principal_account finds the account a principal names and copies its id
 * into account (ACCOUNT_ID_LEN + 1 bytes).  Accepted: a bare 12-digit id;
 * arn:aws[-a-z]*:iam::<12 digits>:root, ...:user/<path and name> or
 * ...:role/<path and name>.  Anything else (a service, "*", an ARN of
 * another service or of a malformed account) names no account.
 */
static bool
principal_account(const char *principal, char *account)
{
	const char *p = principal;

	if (starts_with_account_id(p) && p[ACCOUNT_ID_LEN] == '\0')
	{
		strlcpy(account, p, ACCOUNT_ID_LEN + 1);
		return true;
	}

	if (strncmp(p, "arn:aws", strlen("arn:aws")) != 0)
		return false;
	p += strlen("arn:aws");
	while (*p == '-' || (*p >= 'a' && *p <= 'z'))	/* partition: aws-cn, aws-us-gov, ... */
		p++;
	if (strncmp(p, ":iam::", strlen(":iam::")) != 0)
		return false;
	p += strlen(":iam::");
	if (!starts_with_account_id(p) || p[ACCOUNT_ID_LEN] != ':')
		return false;
	strlcpy(account, p, ACCOUNT_ID_LEN + 1);
	p += ACCOUNT_ID_LEN + 1;

	if (strcmp(p, "root") == 0)
		return true;
	if ((strncmp(p, "user/", strlen("user/")) == 0 ||
		 strncmp(p, "role/", strlen("role/")) == 0) &&
		p[strlen("user/")] != '\0')
		return true;
	return false;
}

/*
 * MatchLambdaCrossAccountInvocation decides whether a candidate is a
 * successful AddPermission granting an invoke action (LambdaInvokeAction)
 * to an account, user or role of an account other than recipientAccountId.
 * Without a recipientAccountId the function's account is unknown and
 * nothing matches.
 */
bool
MatchLambdaCrossAccountInvocation(const RuleCandidate *c, StringInfo reason,
								  RuleGrant *grant)
{
	JsonbContainer *params;
	char	   *action;
	char	   *principal;
	char	   *function;
	char		account[ACCOUNT_ID_LEN + 1];

	params = SuccessfulAddPermissionParams(c);
	if (params == NULL || c->recipient_account_id == NULL)
		return false;
	action = JsonbObjectGetString(params, "action", NULL);
	if (action == NULL || !LambdaInvokeAction(action))
		return false;
	principal = JsonbObjectGetString(params, "principal", NULL);
	if (principal == NULL || !principal_account(principal, account))
		return false;
	if (strcmp(account, c->recipient_account_id) == 0)
		return false;

	function = JsonbObjectGetString(params, "functionName", NULL);
	appendStringInfo(reason,
					 "%s succeeded: account %s (principal \"%s\") was granted %s on function \"%s\" "
					 "of account %s",
					 c->event_name, account, principal, action,
					 function ? function : "(not given)", c->recipient_account_id);
	return true;
}
