/*-------------------------------------------------------------------------
 *
 * schema.c
 *	  The subset of JSON Schema that checks event data: type, required,
 *	  properties, additionalProperties, enum, items, minLength, maxLength.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/schema.c
 *
 *-------------------------------------------------------------------------
 *
 * The keywords are listed in engine.h.  Any other keyword is refused by
 * es_schema_check, so that a typo ("requried") is caught when the schema is
 * registered instead of silently accepting everything.  Validation reports
 * the first failure found, naming the JSON pointer of the offending value;
 * keywords apply only to values of their type, as in JSON Schema (a
 * "required" says nothing about a string).
 */
#include <string.h>

#include "engine_int.h"

static const char *const es_schema_types[] = {
	"object", "array", "string", "number", "integer", "boolean", "null"
};

#define ES_NUM_SCHEMA_TYPES (sizeof(es_schema_types) / sizeof(es_schema_types[0]))

/*
 * es_schema_fail: a definition error at the schema location loc.
 */
static EsEngineStatus
es_schema_fail(EsEngineError *err, const EsBuf *loc, const char *what,
			   const char *keyword)
{
	const char *at = loc->data ? loc->data : "";

	es_error_path(err, at);
	if (loc->oom)
		return es_nomem(err);
	return es_error(err, ES_ENGINE_INVALID, "schema keyword \"%s\" at \"%s\" %s",
					keyword, at, what);
}

/*
 * es_schema_type_known: true if name is one of the seven type names.
 */
static bool
es_schema_type_known(const json_t *name)
{
	size_t		i;

	if (!json_is_string(name))
		return false;
	for (i = 0; i < ES_NUM_SCHEMA_TYPES; i++)
		if (strcmp(json_string_value(name), es_schema_types[i]) == 0)
			return true;
	return false;
}

/*
 * es_schema_check_rec: checks schema s, found at location loc of the whole
 * schema, nested depth deep.
 */
static EsEngineStatus
es_schema_check_rec(const json_t *s, EsBuf *loc, int depth, EsEngineError *err)
{
	const char *key;
	json_t	   *v;

	if (depth > ES_JSON_MAX_DEPTH)
	{
		es_error_path(err, loc->data ? loc->data : "");
		return es_error(err, ES_ENGINE_INVALID, "schema nested too deeply");
	}
	if (!json_is_object(s))
	{
		es_error_path(err, loc->data ? loc->data : "");
		return es_error(err, ES_ENGINE_INVALID,
						"a schema must be an object, not %s at \"%s\"",
						es_type_article(s), loc->data ? loc->data : "");
	}
	json_object_foreach((json_t *) s, key, v)
	{
		if (strcmp(key, "type") == 0)
		{
			if (json_is_array(v))
			{
				size_t		i;

				if (json_array_size(v) == 0)
					return es_schema_fail(err, loc, "must not be an empty array", key);
				for (i = 0; i < json_array_size(v); i++)
					if (!es_schema_type_known(json_array_get(v, i)))
						return es_schema_fail(err, loc,
											  "must name object, array, string, number, integer, boolean or null",
											  key);
			}
			else if (!es_schema_type_known(v))
				return es_schema_fail(err, loc,
									  "must be object, array, string, number, integer, boolean, null or an array of them",
									  key);
		}
		else if (strcmp(key, "required") == 0)
		{
			size_t		i;

			if (!json_is_array(v))
				return es_schema_fail(err, loc, "must be an array of strings", key);
			for (i = 0; i < json_array_size(v); i++)
				if (!json_is_string(json_array_get(v, i)))
					return es_schema_fail(err, loc, "must be an array of strings", key);
		}
		else if (strcmp(key, "properties") == 0)
		{
			const char *name;
			json_t	   *sub;

			if (!json_is_object(v))
				return es_schema_fail(err, loc, "must be an object of schemas", key);
			json_object_foreach(v, name, sub)
			{
				size_t		len = loc->len;
				EsEngineStatus status;

				es_buf_appends(loc, "/properties/");
				es_ptr_escape(loc, name);
				status = es_schema_check_rec(sub, loc, depth + 1, err);
				if (loc->data)
				{
					loc->len = len;
					loc->data[len] = '\0';
				}
				if (status != ES_ENGINE_OK)
					return status;
			}
		}
		else if (strcmp(key, "additionalProperties") == 0)
		{
			if (!json_is_boolean(v))
				return es_schema_fail(err, loc, "must be a boolean", key);
		}
		else if (strcmp(key, "enum") == 0)
		{
			if (!json_is_array(v) || json_array_size(v) == 0)
				return es_schema_fail(err, loc, "must be a non-empty array", key);
		}
		else if (strcmp(key, "items") == 0)
		{
			size_t		len = loc->len;
			EsEngineStatus status;

			es_buf_appends(loc, "/items");
			status = es_schema_check_rec(v, loc, depth + 1, err);
			if (loc->data)
			{
				loc->len = len;
				loc->data[len] = '\0';
			}
			if (status != ES_ENGINE_OK)
				return status;
		}
		else if (strcmp(key, "minLength") == 0 || strcmp(key, "maxLength") == 0)
		{
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				return es_schema_fail(err, loc, "must be a non-negative integer", key);
		}
		else if (strcmp(key, "title") == 0 || strcmp(key, "description") == 0)
		{
			if (!json_is_string(v))
				return es_schema_fail(err, loc, "must be a string", key);
		}
		else
			return es_schema_fail(err, loc, "is not supported", key);
	}
	if (loc->oom)
		return es_nomem(err);
	return ES_ENGINE_OK;
}

/*
 * es_schema_check: see engine.h.
 */
EsEngineStatus
es_schema_check(const EsJson *schema, EsEngineError *err)
{
	EsEngineError work;
	EsBuf		loc;
	EsEngineStatus status;

	es_error_clear(&work);
	es_buf_init(&loc);
	if (schema == NULL)
		status = es_error(&work, ES_ENGINE_INVALID, "no schema");
	else
		status = es_schema_check_rec(schema, &loc, 0, &work);
	es_buf_free(&loc);
	if (status != ES_ENGINE_OK && err)
		*err = work;
	return status;
}

/*
 * es_schema_type_matches: true if data is of the type named name.
 */
static bool
es_schema_type_matches(const char *name, const json_t *data)
{
	if (strcmp(name, "object") == 0)
		return json_is_object(data);
	if (strcmp(name, "array") == 0)
		return json_is_array(data);
	if (strcmp(name, "string") == 0)
		return json_is_string(data);
	if (strcmp(name, "number") == 0)
		return json_is_number(data);
	if (strcmp(name, "integer") == 0)
	{
		double		r;

		if (json_is_integer(data))
			return true;
		if (!json_is_real(data))
			return false;
		r = json_real_value(data);
		return r >= -9007199254740992.0 && r <= 9007199254740992.0 &&
			(double) (long long) r == r;
	}
	if (strcmp(name, "boolean") == 0)
		return json_is_boolean(data);
	return json_is_null(data);
}

/*
 * es_schema_type_article: a type name with its article.
 */
static const char *
es_schema_type_article(const char *name)
{
	if (strcmp(name, "object") == 0)
		return "an object";
	if (strcmp(name, "array") == 0)
		return "an array";
	if (strcmp(name, "integer") == 0)
		return "an integer";
	if (strcmp(name, "null") == 0)
		return "null";
	if (strcmp(name, "string") == 0)
		return "a string";
	if (strcmp(name, "number") == 0)
		return "a number";
	return "a boolean";
}

/*
 * es_schema_reject: a validation failure of the value at pointer ptr.
 */
static EsEngineStatus
es_schema_reject(EsEngineError *err, const EsBuf *ptr, const char *message)
{
	es_error_path(err, ptr->data ? ptr->data : "");
	if (ptr->oom)
		return es_nomem(err);
	return es_error(err, ES_ENGINE_REJECTED, "%s", message);
}

/*
 * es_schema_type_check: checks the "type" keyword t against data at ptr.
 */
static EsEngineStatus
es_schema_type_check(const json_t *t, const json_t *data, const EsBuf *ptr,
					 EsEngineError *err)
{
	EsBuf		msg;
	EsEngineStatus status;
	size_t		i;
	size_t		n = json_is_array(t) ? json_array_size(t) : 1;

	for (i = 0; i < n; i++)
	{
		const json_t *name = json_is_array(t) ? json_array_get(t, i) : t;

		if (es_schema_type_matches(json_string_value(name), data))
			return ES_ENGINE_OK;
	}
	es_buf_init(&msg);
	es_buf_printf(&msg, "\"%s\" must be ", ptr->data ? ptr->data : "");
	for (i = 0; i < n; i++)
	{
		const json_t *name = json_is_array(t) ? json_array_get(t, i) : t;

		if (i > 0)
			es_buf_appends(&msg, i + 1 == n ? " or " : ", ");
		es_buf_appends(&msg, es_schema_type_article(json_string_value(name)));
	}
	es_buf_appends(&msg, ", not ");
	es_buf_appends(&msg, (json_is_real(data) &&
						  !es_schema_type_matches("integer", data)) ?
				   "a number with a fraction" : es_type_article(data));
	if (msg.oom)
		status = es_nomem(err);
	else
		status = es_schema_reject(err, ptr, msg.data);
	es_buf_free(&msg);
	return status;
}

/*
 * es_utf8_length: the number of characters of a UTF-8 string.
 */
static size_t
es_utf8_length(const char *s, size_t len)
{
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < len; i++)
		if ((((unsigned char) s[i]) & 0xC0) != 0x80)
			n++;
	return n;
}

/*
 * es_schema_validate_rec: validates data, at pointer ptr, against the
 * checked schema s, nested depth deep.
 */
static EsEngineStatus
es_schema_validate_rec(const json_t *s, const json_t *data, EsBuf *ptr,
					   int depth, EsEngineError *err)
{
	json_t	   *v;
	const char *at;
	EsEngineStatus status;

	if (depth > ES_JSON_MAX_DEPTH)
		return es_schema_reject(err, ptr, "data nested too deeply");
	if (ptr->data == NULL)
		es_buf_append(ptr, "", 0);
	if (ptr->oom)
		return es_nomem(err);
	at = ptr->data;
	v = json_object_get(s, "type");
	if (v != NULL)
	{
		status = es_schema_type_check(v, data, ptr, err);
		if (status != ES_ENGINE_OK)
			return status;
	}
	v = json_object_get(s, "enum");
	if (v != NULL)
	{
		size_t		i;
		bool		found = false;

		for (i = 0; i < json_array_size(v) && !found; i++)
			found = es_equal(json_array_get(v, i), data, 0);
		if (!found)
		{
			es_error_path(err, at);
			return es_error(err, ES_ENGINE_REJECTED,
							"\"%s\" must be one of the values of its enum", at);
		}
	}
	if (json_is_string(data))
	{
		size_t		len = es_utf8_length(json_string_value(data),
										 json_string_length(data));
		json_t	   *min = json_object_get(s, "minLength");
		json_t	   *max = json_object_get(s, "maxLength");

		if (min != NULL && (json_int_t) len < json_integer_value(min))
		{
			es_error_path(err, at);
			return es_error(err, ES_ENGINE_REJECTED,
							"\"%s\" must have at least %" JSON_INTEGER_FORMAT " characters",
							at, json_integer_value(min));
		}
		if (max != NULL && (json_int_t) len > json_integer_value(max))
		{
			es_error_path(err, at);
			return es_error(err, ES_ENGINE_REJECTED,
							"\"%s\" must have at most %" JSON_INTEGER_FORMAT " characters",
							at, json_integer_value(max));
		}
	}
	if (json_is_object(data))
	{
		json_t	   *required = json_object_get(s, "required");
		json_t	   *props = json_object_get(s, "properties");
		json_t	   *additional = json_object_get(s, "additionalProperties");
		const char *key;
		json_t	   *member;
		size_t		i;

		for (i = 0; required && i < json_array_size(required); i++)
		{
			const char *name = json_string_value(json_array_get(required, i));

			if (json_object_get(data, name) == NULL)
			{
				es_error_path(err, at);
				return es_error(err, ES_ENGINE_REJECTED,
								"required member \"%s\" is missing at \"%s\"",
								name, at);
			}
		}
		json_object_foreach((json_t *) data, key, member)
		{
			json_t	   *sub = props ? json_object_get(props, key) : NULL;

			if (sub == NULL)
			{
				if (json_is_false(additional))
				{
					es_error_path(err, at);
					return es_error(err, ES_ENGINE_REJECTED,
									"member \"%s\" is not allowed at \"%s\"",
									key, at);
				}
				continue;
			}
			{
				size_t		len = ptr->len;

				es_buf_appendc(ptr, '/');
				es_ptr_escape(ptr, key);
				status = es_schema_validate_rec(sub, member, ptr, depth + 1, err);
				if (!ptr->oom)
				{
					ptr->len = len;
					ptr->data[len] = '\0';
				}
				if (status != ES_ENGINE_OK)
					return status;
				at = ptr->data;
			}
		}
	}
	v = json_object_get(s, "items");
	if (v != NULL && json_is_array(data))
	{
		size_t		i;

		for (i = 0; i < json_array_size(data); i++)
		{
			size_t		len = ptr->len;

			es_buf_printf(ptr, "/%zu", i);
			status = es_schema_validate_rec(v, json_array_get(data, i), ptr,
											depth + 1, err);
			if (!ptr->oom)
			{
				ptr->len = len;
				ptr->data[len] = '\0';
			}
			if (status != ES_ENGINE_OK)
				return status;
		}
	}
	return ES_ENGINE_OK;
}

/*
 * es_schema_validate: see engine.h.
 */
EsEngineStatus
es_schema_validate(const EsJson *schema, const EsJson *data,
				   EsEngineError *err)
{
	EsEngineError work;
	EsBuf		ptr;
	EsEngineStatus status;

	status = es_schema_check(schema, err);
	if (status != ES_ENGINE_OK)
		return status;
	es_error_clear(&work);
	if (data == NULL)
	{
		status = es_error(&work, ES_ENGINE_INVALID, "no data");
		if (err)
			*err = work;
		return status;
	}
	es_buf_init(&ptr);
	status = es_schema_validate_rec(schema, data, &ptr, 0, &work);
	es_buf_free(&ptr);
	if (status != ES_ENGINE_OK && err)
		*err = work;
	return status;
}

/*
 * es_schema_allows_type: true if the "type" keyword t (NULL when absent)
 * lets a value have the type name; "number" lets it be an "integer".
 */
static bool
es_schema_allows_type(const json_t *t, const char *name)
{
	size_t		n = json_is_array(t) ? json_array_size(t) : 1;
	size_t		i;

	if (t == NULL)
		return true;
	for (i = 0; i < n; i++)
	{
		const char *s = json_string_value(json_is_array(t) ? json_array_get(t, i) : t);

		if (s == NULL)
			continue;
		if (strcmp(s, name) == 0 ||
			(strcmp(name, "integer") == 0 && strcmp(s, "number") == 0))
			return true;
	}
	return false;
}

/*
 * es_schema_where: appends the location of the first k tokens of ptr in the
 * data, for messages: "the data" or the quoted pointer.
 */
static void
es_schema_where(EsBuf *buf, const EsPointer *ptr, int k)
{
	size_t		end = (k <= 0) ? 0 : ptr->tok[k - 1].end;

	if (end == 0)
	{
		es_buf_appends(buf, "the data");
		return;
	}
	es_buf_appendc(buf, '"');
	es_buf_append(buf, ptr->text, end);
	es_buf_appendc(buf, '"');
}

/*
 * es_schema_makes: appends "the schema of the data makes <where> <types>",
 * the types that the "type" keyword t allows.
 */
static void
es_schema_makes(EsBuf *buf, const EsPointer *ptr, int k, const json_t *t)
{
	size_t		n = json_is_array(t) ? json_array_size(t) : 1;
	size_t		i;

	es_buf_appends(buf, "the schema of the data makes ");
	es_schema_where(buf, ptr, k);
	es_buf_appendc(buf, ' ');
	for (i = 0; i < n; i++)
	{
		const char *s = json_string_value(json_is_array(t) ? json_array_get(t, i) : t);

		if (i > 0)
			es_buf_appends(buf, i + 1 == n ? " or " : ", ");
		es_buf_appends(buf, es_schema_type_article(s ? s : "null"));
	}
}

/*
 * es_schema_key_value: true if v, a value of an enum, can be what a
 * template uses: a string or an integer (a real without fraction equals
 * an integer that data may hold).
 */
static bool
es_schema_key_value(const json_t *v)
{
	return json_is_string(v) || json_is_integer(v) ||
		(json_is_real(v) && es_schema_type_matches("integer", v));
}

/*
 * es_schema_lookup: see engine_int.h.
 */
EsSchemaFind
es_schema_lookup(const json_t *schema, const EsPointer *ptr, bool key,
				 EsBuf *why)
{
	const json_t *s = schema;
	const json_t *t;
	const json_t *e;
	int			i;

	for (i = 0; i < ptr->ntokens; i++)
	{
		const char *tok = ptr->tok[i].s;
		const json_t *props = json_object_get(s, "properties");
		const json_t *items = json_object_get(s, "items");
		const json_t *next = NULL;
		bool		obj;
		bool		arr;
		bool		open = false;
		int			routes = 0;
		size_t		index;

		t = json_object_get(s, "type");
		obj = es_schema_allows_type(t, "object");
		arr = es_schema_allows_type(t, "array");
		if (!obj && !arr)
		{
			es_schema_makes(why, ptr, i, t);
			return ES_SCHEMA_NOTHING;
		}
		if (obj)
		{
			const json_t *sub = props ? json_object_get(props, tok) : NULL;

			if (sub != NULL)
			{
				next = sub;
				routes++;
			}
			else if (!json_is_false(json_object_get(s, "additionalProperties")))
			{
				open = true;
				routes++;
			}
		}
		if (arr && es_ptr_index(tok, &index))
		{
			if (items != NULL && next == NULL)
				next = items;
			else
				open = true;
			routes++;
		}
		if (routes == 0)
		{
			if (obj)
			{
				es_buf_appends(why, "the schema of the data has no property \"");
				es_buf_appends(why, tok);
				es_buf_appendc(why, '"');
				if (i > 0)
				{
					es_buf_appends(why, " in ");
					es_schema_where(why, ptr, i);
				}
			}
			else
			{
				es_schema_makes(why, ptr, i, t);
				es_buf_appends(why, ", and \"");
				es_buf_appends(why, tok);
				es_buf_appends(why, "\" is not an array index");
			}
			return ES_SCHEMA_NOTHING;
		}
		/* a level that does not tell what is below: anything goes */
		if (open || routes > 1)
			return ES_SCHEMA_FOUND;
		s = next;
	}
	if (!key)
		return ES_SCHEMA_FOUND;
	t = json_object_get(s, "type");
	if (t != NULL && !es_schema_allows_type(t, "string") &&
		!es_schema_allows_type(t, "integer"))
	{
		es_schema_makes(why, ptr, ptr->ntokens, t);
		return ES_SCHEMA_NOT_KEY;
	}
	e = json_object_get(s, "enum");
	if (json_is_array(e))
	{
		size_t		k;

		for (k = 0; k < json_array_size(e); k++)
			if (es_schema_key_value(json_array_get(e, k)))
				return ES_SCHEMA_FOUND;
		es_buf_appends(why, "the enum of ");
		es_schema_where(why, ptr, ptr->ntokens);
		es_buf_appends(why, " in the schema of the data has no string or integer");
		return ES_SCHEMA_NOT_KEY;
	}
	return ES_SCHEMA_FOUND;
}
