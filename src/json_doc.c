/*-------------------------------------------------------------------------
 *
 * json_doc.c
 *	  JSON documents of the state engine: parsing, writing, copying and
 *	  comparing with a depth bound, and the error and text buffer helpers.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/json_doc.c
 *
 *-------------------------------------------------------------------------
 *
 * Documents are jansson values.  The engine writes them itself instead of
 * calling json_dumps, for two reasons: jansson writes a double with 17
 * significant digits (0.1 becomes 0.10000000000000001), and its writer has
 * no depth bound.  Every recursive function here stops past
 * ES_RECURSION_LIMIT; values of the engine never get there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static void es_copy_truncated(char *dst, size_t size, const char *src);

/*
 * es_strdup: a malloc'd copy of s (strdup is not C99); NULL when out of
 * memory.
 */
char *
es_strdup(const char *s)
{
	size_t		len = strlen(s);
	char	   *copy = malloc(len + 1);

	if (copy != NULL)
		memcpy(copy, s, len + 1);
	return copy;
}

/*
 * es_buf_init: an empty buffer, allocated on first append.
 */
void
es_buf_init(EsBuf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->oom = false;
}

/*
 * es_buf_free: releases the text of a buffer.
 */
void
es_buf_free(EsBuf *buf)
{
	free(buf->data);
	es_buf_init(buf);
}

/*
 * es_buf_append: appends n bytes of s, keeping the text NUL-terminated.  On
 * allocation failure the buffer is marked oom and ignores further appends.
 */
void
es_buf_append(EsBuf *buf, const char *s, size_t n)
{
	if (buf->oom)
		return;
	if (n >= ((size_t) -1) / 2 - buf->len)
	{
		buf->oom = true;
		return;
	}
	if (buf->len + n + 1 > buf->cap)
	{
		size_t		cap = buf->cap ? buf->cap : 64;
		char	   *data;

		while (cap < buf->len + n + 1)
			cap *= 2;
		data = realloc(buf->data, cap);
		if (data == NULL)
		{
			buf->oom = true;
			return;
		}
		buf->data = data;
		buf->cap = cap;
	}
	if (n > 0)
		memcpy(buf->data + buf->len, s, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
}

/*
 * es_buf_appends: appends a NUL-terminated string.
 */
void
es_buf_appends(EsBuf *buf, const char *s)
{
	es_buf_append(buf, s, strlen(s));
}

/*
 * es_buf_appendc: appends one byte.
 */
void
es_buf_appendc(EsBuf *buf, char c)
{
	es_buf_append(buf, &c, 1);
}

/*
 * es_buf_printf: appends printf-formatted text.
 */
void
es_buf_printf(EsBuf *buf, const char *fmt,...)
{
	va_list		ap;
	char		small[256];
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
	{
		buf->oom = true;
		return;
	}
	if ((size_t) n < sizeof(small))
	{
		es_buf_append(buf, small, (size_t) n);
		return;
	}
	else
	{
		char	   *big = malloc((size_t) n + 1);

		if (big == NULL)
		{
			buf->oom = true;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t) n + 1, fmt, ap);
		va_end(ap);
		es_buf_append(buf, big, (size_t) n);
		free(big);
	}
}

/*
 * es_copy_truncated: copies src into dst of the given size.  Text that does
 * not fit is cut on a UTF-8 character boundary and ends with "...", so that
 * PostgreSQL never sees half a character.
 */
static void
es_copy_truncated(char *dst, size_t size, const char *src)
{
	size_t		len = strlen(src);
	size_t		cut;

	if (len < size)
	{
		memcpy(dst, src, len + 1);
		return;
	}
	cut = size - 4;
	while (cut > 0 && (((unsigned char) src[cut]) & 0xC0) == 0x80)
		cut--;
	memcpy(dst, src, cut);
	memcpy(dst + cut, "...", 4);
}

/*
 * es_error_clear: an error that names no step, no op and no path.
 */
void
es_error_clear(EsEngineError *err)
{
	err->step = -1;
	err->op[0] = '\0';
	err->path[0] = '\0';
	err->message[0] = '\0';
}

/*
 * es_error: sets the message of err from a format and returns status, so
 * that callers can write "return es_error(err, ES_ENGINE_REJECTED, ...)".
 */
EsEngineStatus
es_error(EsEngineError *err, EsEngineStatus status, const char *fmt,...)
{
	va_list		ap;
	char		text[1024];

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	es_copy_truncated(err->message, sizeof(err->message), text);
	return status;
}

/*
 * es_error_path: sets the path of err (truncated safely).
 */
void
es_error_path(EsEngineError *err, const char *path)
{
	es_copy_truncated(err->path, sizeof(err->path), path ? path : "");
}

/*
 * es_error_step: sets the step index and op of err.
 */
void
es_error_step(EsEngineError *err, int step, const char *op)
{
	err->step = step;
	es_copy_truncated(err->op, sizeof(err->op), op ? op : "");
}

/*
 * es_nomem: the error of a failed allocation.
 */
EsEngineStatus
es_nomem(EsEngineError *err)
{
	return es_error(err, ES_ENGINE_NOMEM, "out of memory");
}

/*
 * es_type_name: the JSON type of a value, for messages ("number" for both
 * integers and reals).
 */
const char *
es_type_name(const json_t *v)
{
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			return "object";
		case JSON_ARRAY:
			return "array";
		case JSON_STRING:
			return "string";
		case JSON_INTEGER:
		case JSON_REAL:
			return "number";
		case JSON_TRUE:
		case JSON_FALSE:
			return "boolean";
		case JSON_NULL:
			return "null";
	}
	return "value";
}

/*
 * es_type_article: the type with its article ("an object", "a string",
 * "null"), as messages use it.
 */
const char *
es_type_article(const json_t *v)
{
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			return "an object";
		case JSON_ARRAY:
			return "an array";
		case JSON_STRING:
			return "a string";
		case JSON_INTEGER:
		case JSON_REAL:
			return "a number";
		case JSON_TRUE:
		case JSON_FALSE:
			return "a boolean";
		case JSON_NULL:
			return "null";
	}
	return "a value";
}

/*
 * es_copy: a deep copy of v, which sits under depth containers.  Stores in
 * *out_depth (if not NULL) the nesting of containers of the copy.  Returns
 * NULL when out of memory, or past ES_RECURSION_LIMIT (never for values of
 * the engine).
 */
json_t *
es_copy(const json_t *v, int depth, int *out_depth)
{
	json_t	   *copy = NULL;
	int			deepest = 0;

	if (depth > ES_RECURSION_LIMIT)
		return NULL;
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			{
				const char *key;
				json_t	   *member;

				copy = es_new_object();
				if (copy == NULL)
					return NULL;
				/* json_object_foreach needs a non-const object */
				json_object_foreach((json_t *) v, key, member)
				{
					int			d;
					json_t	   *c = es_copy(member, depth + 1, &d);

					if (c == NULL || json_object_set_new(copy, key, c) != 0)
					{
						json_decref(copy);
						return NULL;
					}
					if (d > deepest)
						deepest = d;
				}
				deepest++;
				break;
			}
		case JSON_ARRAY:
			{
				size_t		i;

				copy = json_array();
				if (copy == NULL)
					return NULL;
				for (i = 0; i < json_array_size(v); i++)
				{
					int			d;
					json_t	   *c = es_copy(json_array_get(v, i), depth + 1, &d);

					if (c == NULL || json_array_append_new(copy, c) != 0)
					{
						json_decref(copy);
						return NULL;
					}
					if (d > deepest)
						deepest = d;
				}
				deepest++;
				break;
			}
		case JSON_STRING:
			copy = json_stringn_nocheck(json_string_value(v), json_string_length(v));
			break;
		case JSON_INTEGER:
			copy = json_integer(json_integer_value(v));
			break;
		case JSON_REAL:
			copy = json_real(json_real_value(v));
			break;
		case JSON_TRUE:
			copy = json_true();
			break;
		case JSON_FALSE:
			copy = json_false();
			break;
		case JSON_NULL:
			copy = json_null();
			break;
	}
	if (out_depth)
		*out_depth = deepest;
	return copy;
}

/*
 * es_depth: the nesting of containers of v (0 for a scalar), or limit + 1
 * as soon as it exceeds limit.
 */
int
es_depth(const json_t *v, int limit)
{
	int			deepest = 0;

	if (limit < 0)
		return 0;
	if (json_is_object(v))
	{
		const char *key;
		json_t	   *member;

		if (limit == 0)
			return 1;
		json_object_foreach((json_t *) v, key, member)
		{
			int			d = es_depth(member, limit - 1);

			if (d > deepest)
				deepest = d;
			if (deepest >= limit)
				break;
		}
		return deepest + 1;
	}
	if (json_is_array(v))
	{
		size_t		i;

		if (limit == 0)
			return 1;
		for (i = 0; i < json_array_size(v); i++)
		{
			int			d = es_depth(json_array_get(v, i), limit - 1);

			if (d > deepest)
				deepest = d;
			if (deepest >= limit)
				break;
		}
		return deepest + 1;
	}
	return 0;
}

/*
 * es_number_equal: an integer and a real are equal when the real is that
 * integer exactly.
 */
static bool
es_number_equal(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b))
		return json_integer_value(a) == json_integer_value(b);
	if (json_is_real(a) && json_is_real(b))
		return json_real_value(a) == json_real_value(b);
	if (json_is_real(a))
	{
		const json_t *t = a;

		a = b;
		b = t;
	}
	/* a is the integer, b the real */
	{
		double		r = json_real_value(b);

		if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0))
			return false;
		if ((double) (json_int_t) r != r)
			return false;
		return (json_int_t) r == json_integer_value(a);
	}
}

/*
 * es_equal: equality by value; numbers by value, objects regardless of the
 * order of their members.  depth is the nesting of a and b.
 */
bool
es_equal(const json_t *a, const json_t *b, int depth)
{
	if (a == b)
		return true;
	if (a == NULL || b == NULL || depth > ES_RECURSION_LIMIT)
		return false;
	if (json_is_number(a) && json_is_number(b))
		return es_number_equal(a, b);
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a))
	{
		case JSON_OBJECT:
			{
				const char *key;
				json_t	   *member;

				if (json_object_size(a) != json_object_size(b))
					return false;
				json_object_foreach((json_t *) a, key, member)
				{
					if (!es_equal(member, json_object_get(b, key), depth + 1))
						return false;
				}
				return true;
			}
		case JSON_ARRAY:
			{
				size_t		i;

				if (json_array_size(a) != json_array_size(b))
					return false;
				for (i = 0; i < json_array_size(a); i++)
					if (!es_equal(json_array_get(a, i), json_array_get(b, i),
								  depth + 1))
						return false;
				return true;
			}
		case JSON_STRING:
			return json_string_length(a) == json_string_length(b) &&
				memcmp(json_string_value(a), json_string_value(b),
					   json_string_length(a)) == 0;
		default:
			/* true, false, null */
			return true;
	}
}

/*
 * es_dump_string: a JSON string literal; UTF-8 is written as is.
 */
static void
es_dump_string(EsBuf *buf, const char *s, size_t len)
{
	size_t		i;
	size_t		start = 0;

	es_buf_appendc(buf, '"');
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		const char *esc = NULL;
		char		u[8];

		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c == '\b')
			esc = "\\b";
		else if (c == '\f')
			esc = "\\f";
		else if (c < 0x20)
		{
			snprintf(u, sizeof(u), "\\u%04x", (unsigned int) c);
			esc = u;
		}
		if (esc)
		{
			es_buf_append(buf, s + start, i - start);
			es_buf_appends(buf, esc);
			start = i + 1;
		}
	}
	es_buf_append(buf, s + start, len - start);
	es_buf_appendc(buf, '"');
}

/*
 * es_dump_real: the shortest of 15, 16 or 17 significant digits that reads
 * back as the same double, with ".0" added to an integral value so that it
 * stays a real.
 */
static void
es_dump_real(EsBuf *buf, double r)
{
	char		text[64];
	int			precision;
	char	   *p;

	for (precision = 15; precision <= 17; precision++)
	{
		snprintf(text, sizeof(text), "%.*g", precision, r);
		if (strtod(text, NULL) == r)
			break;
	}
	/* a locale with a decimal comma */
	for (p = text; *p; p++)
		if (*p == ',')
			*p = '.';
	if (strpbrk(text, ".eE") == NULL)
		strcat(text, ".0");
	es_buf_appends(buf, text);
}

/*
 * es_dump_rec: writes v, nested under depth containers.
 */
static void
es_dump_rec(EsBuf *buf, const json_t *v, int depth)
{
	if (buf->oom)
		return;
	if (depth > ES_RECURSION_LIMIT)
	{
		buf->oom = true;
		return;
	}
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			{
				const char *key;
				json_t	   *member;
				bool		first = true;

				es_buf_appendc(buf, '{');
				json_object_foreach((json_t *) v, key, member)
				{
					if (!first)
						es_buf_appendc(buf, ',');
					first = false;
					es_dump_string(buf, key, strlen(key));
					es_buf_appendc(buf, ':');
					es_dump_rec(buf, member, depth + 1);
				}
				es_buf_appendc(buf, '}');
				break;
			}
		case JSON_ARRAY:
			{
				size_t		i;

				es_buf_appendc(buf, '[');
				for (i = 0; i < json_array_size(v); i++)
				{
					if (i > 0)
						es_buf_appendc(buf, ',');
					es_dump_rec(buf, json_array_get(v, i), depth + 1);
				}
				es_buf_appendc(buf, ']');
				break;
			}
		case JSON_STRING:
			es_dump_string(buf, json_string_value(v), json_string_length(v));
			break;
		case JSON_INTEGER:
			es_buf_printf(buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			break;
		case JSON_REAL:
			es_dump_real(buf, json_real_value(v));
			break;
		case JSON_TRUE:
			es_buf_appends(buf, "true");
			break;
		case JSON_FALSE:
			es_buf_appends(buf, "false");
			break;
		case JSON_NULL:
			es_buf_appends(buf, "null");
			break;
	}
}

/*
 * es_dump_value: appends the compact text of v to buf (used for messages
 * too).
 */
void
es_dump_value(EsBuf *buf, const json_t *v)
{
	es_dump_rec(buf, v, 0);
}

/*
 * es_json_max_depth_exceeded: scans JSON text for the nesting of brackets
 * outside strings, so that too deep a text is refused before jansson
 * recurses into it.
 */
static bool
es_json_max_depth_exceeded(const char *text, size_t len)
{
	size_t		i;
	int			depth = 0;
	bool		in_string = false;

	for (i = 0; i < len; i++)
	{
		char		c = text[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > ES_JSON_MAX_DEPTH)
				return true;
		}
		else if (c == ']' || c == '}')
			depth--;
	}
	return false;
}

/*
 * jansson's parser does not always say that it ran out of memory: a failed
 * allocation in its lexer comes out as "invalid token" or as an error at
 * line -1, which would blame valid text.  So es_json_parse wraps the
 * allocator of documents for the time of json_loadb and tells a failure by
 * what the wrapper saw.  The engine runs in one thread (a PostgreSQL
 * backend); the allocator in force is put back before es_json_parse
 * returns.
 */
static json_malloc_t es_parse_malloc;
static bool es_parse_oom;

/*
 * es_parse_alloc: the allocator in force, noting a failure.
 */
static void *
es_parse_alloc(size_t size)
{
	void	   *p = es_parse_malloc(size);

	if (p == NULL)
		es_parse_oom = true;
	return p;
}

/*
 * es_json_parse: see engine.h.
 */
EsJson *
es_json_parse(const char *text, size_t len, EsEngineError *err)
{
	EsEngineError work;
	json_error_t jerr;
	json_t	   *doc;
	json_malloc_t alloc;
	json_free_t release;

	es_error_clear(&work);
	if (text == NULL)
	{
		es_error(&work, ES_ENGINE_INVALID, "invalid JSON: no text");
		goto fail;
	}
	if (es_json_max_depth_exceeded(text, len))
	{
		es_error(&work, ES_ENGINE_INVALID,
				 "invalid JSON: nesting deeper than %d levels",
				 ES_JSON_MAX_DEPTH);
		goto fail;
	}
	json_get_alloc_funcs(&alloc, &release);
	es_parse_malloc = alloc;
	es_parse_oom = false;
	json_set_alloc_funcs(es_parse_alloc, release);
	doc = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	json_set_alloc_funcs(alloc, release);
	if (doc != NULL)
		return doc;
	if (es_parse_oom || json_error_code(&jerr) == json_error_out_of_memory)
		es_nomem(&work);
	else
		es_error(&work, ES_ENGINE_INVALID,
				 "invalid JSON at line %d, column %d: %s",
				 jerr.line, jerr.column, jerr.text);
fail:
	if (err)
		*err = work;
	return NULL;
}

/*
 * es_json_dump: see engine.h.
 */
char *
es_json_dump(const EsJson *doc, size_t *len)
{
	EsBuf		buf;

	es_buf_init(&buf);
	if (doc == NULL)
		return NULL;
	es_dump_value(&buf, doc);
	if (buf.oom || buf.data == NULL)
	{
		es_buf_free(&buf);
		return NULL;
	}
	if (len)
		*len = buf.len;
	return buf.data;
}

/*
 * es_json_copy: see engine.h.
 */
EsJson *
es_json_copy(const EsJson *doc)
{
	if (doc == NULL)
		return NULL;
	return es_copy(doc, 0, NULL);
}

/*
 * es_json_free: see engine.h.
 */
void
es_json_free(EsJson *doc)
{
	json_decref(doc);
}

/*
 * es_json_empty_object: see engine.h.
 */
EsJson *
es_json_empty_object(void)
{
	return es_new_object();
}

/*
 * es_json_equal: see engine.h.
 */
bool
es_json_equal(const EsJson *a, const EsJson *b)
{
	return es_equal(a, b, 0);
}

/*
 * es_json_member: see engine.h.
 */
const EsJson *
es_json_member(const EsJson *obj, const char *key)
{
	if (obj == NULL || !json_is_object(obj))
		return NULL;
	return json_object_get(obj, key);
}
