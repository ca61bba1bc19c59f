/*-------------------------------------------------------------------------
 *
 * json_text.c
 *	  Small accessors for fields of jsonb objects, shared by normalize and
 *	  the rule matchers.
 *
 * src/json_text.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/jsonb.h"

#include "lambda_detect.h"

/*
 * JsonbObjectGet looks up key in an object container; NULL when the
 * container is not an object or has no such key.
 */
JsonbValue *
JsonbObjectGet(JsonbContainer *object, const char *key, JsonbValue *result)
{
	if (object == NULL || !JsonContainerIsObject(object))
		return NULL;
	return getKeyJsonValueFromContainer(object, key, strlen(key), result);
}

/*
 * JsonbObjectGetString returns a palloc'd, NUL-terminated copy of a string
 * member (and its length), or NULL when the key is absent or not a string.
 */
char *
JsonbObjectGetString(JsonbContainer *object, const char *key, int *len)
{
	JsonbValue	v;

	if (JsonbObjectGet(object, key, &v) == NULL || v.type != jbvString)
		return NULL;
	if (len)
		*len = v.val.string.len;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/* JsonbObjectGetObject returns an object member's container, or NULL. */
JsonbContainer *
JsonbObjectGetObject(JsonbContainer *object, const char *key)
{
	JsonbValue	v;

	if (JsonbObjectGet(object, key, &v) == NULL ||
		v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		return NULL;
	return v.val.binary.data;
}
