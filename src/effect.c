/*-------------------------------------------------------------------------
 *
 * effect.c
 *	  Effects: how an event changes the state of its stream.  Checking,
 *	  applying and resolving them into concrete RFC 6902 patches.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/effect.c
 *
 *-------------------------------------------------------------------------
 *
 * The language is documented in engine.h.  A step is applied in four
 * stages: its shape is checked (op, members and their types), the templates
 * of its paths are expanded against the event data and the result parsed as
 * a JSON pointer, its values are resolved (references replaced by deep
 * copies of what they designate), and the operation runs through the
 * es_op_* and es_mut_* functions of json_patch.c, which log every change.
 * If a step fails, the log is rolled back and the state is as before.
 *
 * es_effect_check runs the first three stages without an event, so a
 * definition is refused when it is registered; applying repeats them, so
 * that an effect that was never checked gives ES_ENGINE_INVALID, not a
 * crash.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

typedef enum EsOpKind
{
	ES_OP_ADD,
	ES_OP_REMOVE,
	ES_OP_REPLACE,
	ES_OP_MOVE,
	ES_OP_COPY,
	ES_OP_TEST,
	ES_OP_EXISTS,
	ES_OP_ABSENT,
	ES_OP_REMOVE_WHERE,
	ES_OP_MERGE
} EsOpKind;

/* the members each op has, besides "op" and "path" */
typedef struct EsOpSpec
{
	const char *name;
	EsOpKind	kind;
	bool		from;
	bool		value;
	bool		where;
} EsOpSpec;

static const EsOpSpec es_op_specs[] = {
	{"add", ES_OP_ADD, false, true, false},
	{"remove", ES_OP_REMOVE, false, false, false},
	{"replace", ES_OP_REPLACE, false, true, false},
	{"move", ES_OP_MOVE, true, false, false},
	{"copy", ES_OP_COPY, true, false, false},
	{"test", ES_OP_TEST, false, true, false},
	{"exists", ES_OP_EXISTS, false, false, false},
	{"absent", ES_OP_ABSENT, false, false, false},
	{"remove_where", ES_OP_REMOVE_WHERE, false, false, true},
	{"merge", ES_OP_MERGE, false, true, false}
};

#define ES_NUM_OPS (sizeof(es_op_specs) / sizeof(es_op_specs[0]))

/* what references and templates read */
typedef struct EsEvent
{
	json_t	   *event;			/* the event object */
	json_t	   *data;			/* its "data", or NULL */
	json_t	   *meta;			/* its "metadata", or NULL */
} EsEvent;

static EsEngineStatus es_value_resolve(const json_t *v, const EsEvent *ev,
									   int depth, json_t **out,
									   EsEngineError *err);

/*
 * es_step_shape: checks that step is an object with a recognized "op" and
 * exactly the members of that op, of the right types; sets *spec.
 */
static EsEngineStatus
es_step_shape(const json_t *step, const EsOpSpec **spec, EsEngineError *err)
{
	json_t	   *op;
	const char *key;
	json_t	   *member;
	size_t		i;
	const EsOpSpec *s = NULL;

	if (!json_is_object(step))
		return es_error(err, ES_ENGINE_INVALID,
						"a step must be an object, not %s",
						es_type_article(step));
	op = json_object_get(step, "op");
	if (op == NULL)
		return es_error(err, ES_ENGINE_INVALID, "missing member \"op\"");
	if (!json_is_string(op))
		return es_error(err, ES_ENGINE_INVALID,
						"member \"op\" must be a string, not %s",
						es_type_article(op));
	for (i = 0; i < ES_NUM_OPS; i++)
		if (strcmp(json_string_value(op), es_op_specs[i].name) == 0)
			s = &es_op_specs[i];
	if (s == NULL)
		return es_error(err, ES_ENGINE_INVALID, "unrecognized op \"%s\"",
						json_string_value(op));
	es_error_step(err, err->step, s->name);
	member = json_object_get(step, "path");
	if (member == NULL)
		return es_error(err, ES_ENGINE_INVALID, "missing member \"path\"");
	if (!json_is_string(member))
		return es_error(err, ES_ENGINE_INVALID,
						"member \"path\" must be a string, not %s",
						es_type_article(member));
	es_error_path(err, json_string_value(member));
	json_object_foreach((json_t *) step, key, member)
	{
		bool		ok = strcmp(key, "op") == 0 || strcmp(key, "path") == 0 ||
			(s->from && strcmp(key, "from") == 0) ||
			(s->value && strcmp(key, "value") == 0) ||
			(s->where && strcmp(key, "where") == 0);

		if (!ok)
			return es_error(err, ES_ENGINE_INVALID,
							"unexpected member \"%s\" in a step \"%s\"",
							key, s->name);
	}
	if (s->from)
	{
		member = json_object_get(step, "from");
		if (member == NULL)
			return es_error(err, ES_ENGINE_INVALID, "missing member \"from\"");
		if (!json_is_string(member))
			return es_error(err, ES_ENGINE_INVALID,
							"member \"from\" must be a string, not %s",
							es_type_article(member));
	}
	if (s->value && json_object_get(step, "value") == NULL)
		return es_error(err, ES_ENGINE_INVALID, "missing member \"value\"");
	if (s->where)
	{
		member = json_object_get(step, "where");
		if (member == NULL)
			return es_error(err, ES_ENGINE_INVALID, "missing member \"where\"");
		if (!json_is_array(member) || json_array_size(member) == 0)
			return es_error(err, ES_ENGINE_INVALID,
							"member \"where\" must be a non-empty array of conditions");
	}
	*spec = s;
	return ES_ENGINE_OK;
}

/*
 * es_template_expand: expands the templates of a path of an effect.  With
 * ev NULL (checking) each template becomes "x"; otherwise it becomes the
 * escaped string or integer found in the event data.  The result is
 * appended to out, which the caller then parses as a JSON pointer.
 */
static EsEngineStatus
es_template_expand(const char *text, const EsEvent *ev, EsBuf *out,
				   EsEngineError *err)
{
	const char *p = text;

	while (*p)
	{
		const char *close;
		size_t		len;
		char	   *inner;
		EsPointer	ptr;
		EsPtrResult res;
		EsEngineStatus status;

		if (*p == '}')
			return es_error(err, ES_ENGINE_INVALID,
							"unbalanced \"}\" in path \"%s\"", text);
		if (*p != '{')
		{
			es_buf_appendc(out, *p++);
			continue;
		}
		/*
		 * The two places where the "x" of checking would be invalid but a
		 * substitution could be valid: refuse them when applying too, so
		 * that an effect es_effect_check refuses never applies.
		 */
		if (p == text)
			return es_error(err, ES_ENGINE_INVALID,
							"path \"%s\" must start with \"/\", not with a template",
							text);
		if (p[-1] == '~')
			return es_error(err, ES_ENGINE_INVALID,
							"invalid escape \"~\" before a template in path \"%s\"",
							text);
		close = p + 1;
		while (*close && *close != '}' && *close != '{')
			close++;
		if (*close != '}')
			return es_error(err, ES_ENGINE_INVALID,
							"unbalanced \"{\" in path \"%s\"", text);
		len = (size_t) (close - p) - 1;
		if (len == 0)
			return es_error(err, ES_ENGINE_INVALID,
							"empty template \"{}\" in path \"%s\"", text);
		inner = malloc(len + 1);
		if (inner == NULL)
			return es_nomem(err);
		memcpy(inner, p + 1, len);
		inner[len] = '\0';
		status = es_ptr_parse(inner, &ptr, err);
		if (status != ES_ENGINE_OK)
		{
			free(inner);
			if (status == ES_ENGINE_INVALID)
				es_error(err, ES_ENGINE_INVALID,
						 "template \"{%.*s}\" is not a valid JSON pointer: it must start with \"/\" and use \"~\" only in \"~0\" and \"~1\"",
						 (int) (len > 200 ? 200 : len), p + 1);
			return status;
		}
		if (ev == NULL)
			es_buf_appendc(out, 'x');
		else
		{
			res.fail = ES_PTR_NO_MEMBER;
			if (ev->data != NULL)
				es_ptr_resolve(ev->data, &ptr, ptr.ntokens, &res);
			if (res.fail != ES_PTR_FOUND)
				status = es_error(err, ES_ENGINE_REJECTED,
								  "template \"{%s}\" refers to nothing in the event data",
								  inner);
			else if (json_is_string(res.value))
			{
				if (strlen(json_string_value(res.value)) !=
					json_string_length(res.value))
					status = es_error(err, ES_ENGINE_REJECTED,
									  "template \"{%s}\" refers to a string containing a NUL character",
									  inner);
				else
					es_ptr_escape(out, json_string_value(res.value));
			}
			else if (json_is_integer(res.value))
				es_buf_printf(out, "%" JSON_INTEGER_FORMAT,
							  json_integer_value(res.value));
			else
				status = es_error(err, ES_ENGINE_REJECTED,
								  "template \"{%s}\" refers to %s; expected a string or an integer",
								  inner, json_is_real(res.value) ?
								  "a number that is not an integer" :
								  es_type_article(res.value));
		}
		es_ptr_free(&ptr);
		free(inner);
		if (status != ES_ENGINE_OK)
			return status;
		p = close + 1;
	}
	if (out->oom)
		return es_nomem(err);
	return ES_ENGINE_OK;
}

/*
 * es_step_pointer: expands the templates of the member name ("path" or
 * "from") of step and parses the result into ptr, whose text is buf's.  The
 * error path is the path as written if expansion fails, the expanded path
 * otherwise.
 */
static EsEngineStatus
es_step_pointer(const json_t *step, const char *name, const EsEvent *ev,
				EsBuf *buf, EsPointer *ptr, EsEngineError *err)
{
	const char *text = json_string_value(json_object_get(step, name));
	EsEngineStatus status;

	es_buf_init(buf);
	ptr->mem = NULL;
	ptr->tok = NULL;
	ptr->ntokens = 0;
	ptr->text = "";
	es_error_path(err, text);
	status = es_template_expand(text, ev, buf, err);
	if (status != ES_ENGINE_OK)
		return status;
	if (buf->data == NULL)
		es_buf_append(buf, "", 0);
	if (buf->oom)
		return es_nomem(err);
	if (ev == NULL)
	{
		/* checking: the skeleton must be a pointer; quote the original */
		status = es_ptr_parse(buf->data, ptr, err);
		if (status == ES_ENGINE_INVALID && strcmp(buf->data, text) != 0)
			es_error(err, ES_ENGINE_INVALID,
					 "path \"%s\" is not a valid JSON pointer once its templates are replaced: %s",
					 text, err->message);
		return status;
	}
	es_error_path(err, buf->data);
	return es_ptr_parse(buf->data, ptr, err);
}

/*
 * es_ref_describe: the text of a reference for messages, e.g.
 * {"$data": "/module"}.
 */
static void
es_ref_describe(EsBuf *buf, const char *key, const json_t *arg)
{
	es_buf_appends(buf, "{\"");
	es_buf_appends(buf, key);
	es_buf_appends(buf, "\": ");
	es_dump_value(buf, arg);
	es_buf_appendc(buf, '}');
}

/*
 * es_ref_error: an error about a reference: "reference <ref> <what>".
 */
static EsEngineStatus
es_ref_error(EsEngineError *err, EsEngineStatus status, const char *key,
			 const json_t *arg, const char *what)
{
	EsBuf		buf;

	es_buf_init(&buf);
	es_ref_describe(&buf, key, arg);
	if (buf.oom)
	{
		es_buf_free(&buf);
		return es_nomem(err);
	}
	es_error(err, status, "reference %s %s", buf.data, what);
	es_buf_free(&buf);
	return status;
}

static const char *const es_event_fields[] = {
	"sequence_number", "created_at", "user_id", "username", "event_type"
};

/*
 * es_ref_key: if v is a reference (an object whose only member is $data,
 * $meta, $event or $literal), its key; NULL if v is an ordinary value.
 * *bad is set if v has one of those members and others too.
 */
static const char *
es_ref_key(const json_t *v, bool *bad)
{
	static const char *const keys[] = {"$data", "$meta", "$event", "$literal"};
	size_t		i;

	*bad = false;
	if (!json_is_object(v) || json_object_size(v) == 0)
		return NULL;
	for (i = 0; i < 4; i++)
	{
		if (json_object_get(v, keys[i]) != NULL)
		{
			if (json_object_size(v) != 1)
				*bad = true;
			return keys[i];
		}
	}
	return NULL;
}

/*
 * es_ref_check: checks the argument of a reference: a valid pointer for
 * $data and $meta, a known field for $event.
 */
static EsEngineStatus
es_ref_check(const char *key, const json_t *arg, EsEngineError *err)
{
	if (strcmp(key, "$literal") == 0)
		return ES_ENGINE_OK;
	if (!json_is_string(arg))
		return es_ref_error(err, ES_ENGINE_INVALID, key, arg,
							"is invalid: its argument must be a string");
	if (strcmp(key, "$event") == 0)
	{
		size_t		i;

		for (i = 0; i < sizeof(es_event_fields) / sizeof(es_event_fields[0]); i++)
			if (strcmp(json_string_value(arg), es_event_fields[i]) == 0)
				return ES_ENGINE_OK;
		return es_ref_error(err, ES_ENGINE_INVALID, key, arg,
							"is invalid: the event fields are \"sequence_number\", \"created_at\", \"user_id\", \"username\" and \"event_type\"");
	}
	else
	{
		EsPointer	ptr;
		EsEngineStatus status = es_ptr_parse(json_string_value(arg), &ptr, err);

		if (status == ES_ENGINE_OK)
			es_ptr_free(&ptr);
		else if (status == ES_ENGINE_INVALID)
			return es_ref_error(err, ES_ENGINE_INVALID, key, arg,
								"is invalid: its argument must be a JSON pointer");
		return status;
	}
}

/*
 * es_value_check: checks every reference inside v, at nesting depth.
 */
static EsEngineStatus
es_value_check(const json_t *v, int depth, EsEngineError *err)
{
	const char *ref;
	bool		bad;

	if (depth > ES_JSON_MAX_DEPTH)
		return es_error(err, ES_ENGINE_INVALID,
						"value nested deeper than %d levels", ES_JSON_MAX_DEPTH);
	ref = es_ref_key(v, &bad);
	if (bad)
		return es_error(err, ES_ENGINE_INVALID,
						"an object with member \"%s\" is a reference and cannot have other members; write {\"$literal\": ...} for such an object",
						ref);
	if (ref != NULL)
		return es_ref_check(ref, json_object_get(v, ref), err);
	if (json_is_object(v))
	{
		const char *key;
		json_t	   *member;

		json_object_foreach((json_t *) v, key, member)
		{
			EsEngineStatus status = es_value_check(member, depth + 1, err);

			if (status != ES_ENGINE_OK)
				return status;
		}
	}
	else if (json_is_array(v))
	{
		size_t		i;

		for (i = 0; i < json_array_size(v); i++)
		{
			EsEngineStatus status = es_value_check(json_array_get(v, i),
												   depth + 1, err);

			if (status != ES_ENGINE_OK)
				return status;
		}
	}
	return ES_ENGINE_OK;
}

/*
 * es_ref_resolve: the value a reference designates, deep-copied into *out.
 */
static EsEngineStatus
es_ref_resolve(const char *key, const json_t *arg, const EsEvent *ev,
			   json_t **out, EsEngineError *err)
{
	json_t	   *found = NULL;
	EsEngineStatus status = es_ref_check(key, arg, err);

	if (status != ES_ENGINE_OK)
		return status;
	if (strcmp(key, "$literal") == 0)
		found = (json_t *) arg;
	else if (strcmp(key, "$event") == 0)
	{
		found = json_object_get(ev->event, json_string_value(arg));
		if (found == NULL)
			return es_ref_error(err, ES_ENGINE_REJECTED, key, arg,
								"refers to nothing in the event");
	}
	else
	{
		bool		data = strcmp(key, "$data") == 0;
		json_t	   *doc = data ? ev->data : ev->meta;
		EsPointer	ptr;
		EsPtrResult res;

		status = es_ptr_parse(json_string_value(arg), &ptr, err);
		if (status != ES_ENGINE_OK)
			return status;
		res.fail = ES_PTR_NO_MEMBER;
		if (doc != NULL && !json_is_null(doc))
			es_ptr_resolve(doc, &ptr, ptr.ntokens, &res);
		es_ptr_free(&ptr);
		if (res.fail != ES_PTR_FOUND)
			return es_ref_error(err, ES_ENGINE_REJECTED, key, arg,
								data ? "refers to nothing in the event data" :
								"refers to nothing in the event metadata");
		found = res.value;
	}
	*out = es_copy(found, 0, NULL);
	if (*out == NULL)
		return es_nomem(err);
	return ES_ENGINE_OK;
}

/*
 * es_value_resolve: a deep copy of v, at nesting depth, with every
 * reference replaced by what it designates.
 */
static EsEngineStatus
es_value_resolve(const json_t *v, const EsEvent *ev, int depth, json_t **out,
				 EsEngineError *err)
{
	const char *ref;
	bool		bad;
	EsEngineStatus status;

	*out = NULL;
	if (depth > ES_JSON_MAX_DEPTH)
		return es_error(err, ES_ENGINE_INVALID,
						"value nested deeper than %d levels", ES_JSON_MAX_DEPTH);
	ref = es_ref_key(v, &bad);
	if (bad)
		return es_value_check(v, depth, err);
	if (ref != NULL)
		return es_ref_resolve(ref, json_object_get(v, ref), ev, out, err);
	if (json_is_object(v))
	{
		const char *key;
		json_t	   *member;
		json_t	   *copy = es_new_object();

		if (copy == NULL)
			return es_nomem(err);
		json_object_foreach((json_t *) v, key, member)
		{
			json_t	   *c;

			status = es_value_resolve(member, ev, depth + 1, &c, err);
			if (status == ES_ENGINE_OK && json_object_set_new(copy, key, c) != 0)
				status = es_nomem(err);
			if (status != ES_ENGINE_OK)
			{
				json_decref(copy);
				return status;
			}
		}
		*out = copy;
		return ES_ENGINE_OK;
	}
	if (json_is_array(v))
	{
		size_t		i;
		json_t	   *copy = json_array();

		if (copy == NULL)
			return es_nomem(err);
		for (i = 0; i < json_array_size(v); i++)
		{
			json_t	   *c;

			status = es_value_resolve(json_array_get(v, i), ev, depth + 1, &c, err);
			if (status == ES_ENGINE_OK && json_array_append_new(copy, c) != 0)
				status = es_nomem(err);
			if (status != ES_ENGINE_OK)
			{
				json_decref(copy);
				return status;
			}
		}
		*out = copy;
		return ES_ENGINE_OK;
	}
	*out = es_copy(v, 0, NULL);
	if (*out == NULL)
		return es_nomem(err);
	return ES_ENGINE_OK;
}

/*
 * es_where_parse: checks the conditions of a remove_where step and, with ev
 * not NULL, parses their pointers into ptrs and resolves their values into
 * values (arrays of n entries, allocated here; the caller frees them with
 * es_where_free).
 */
static EsEngineStatus
es_where_parse(const json_t *where, const EsEvent *ev, EsPointer **ptrs,
			   json_t ***values, EsEngineError *err)
{
	size_t		n = json_array_size(where);
	size_t		i;
	EsEngineStatus status = ES_ENGINE_OK;

	*ptrs = NULL;
	*values = NULL;
	if (ev != NULL)
	{
		*ptrs = calloc(n, sizeof(EsPointer));
		*values = calloc(n, sizeof(json_t *));
		if (*ptrs == NULL || *values == NULL)
			return es_nomem(err);
	}
	for (i = 0; i < n && status == ES_ENGINE_OK; i++)
	{
		json_t	   *c = json_array_get(where, i);
		json_t	   *pointer;
		json_t	   *equals;
		EsPointer	ptr;

		if (!json_is_object(c) || json_object_size(c) != 2 ||
			(pointer = json_object_get(c, "pointer")) == NULL ||
			(equals = json_object_get(c, "equals")) == NULL)
			return es_error(err, ES_ENGINE_INVALID,
							"condition %zu of \"where\" must be an object with exactly the members \"pointer\" and \"equals\"",
							i);
		if (!json_is_string(pointer))
			return es_error(err, ES_ENGINE_INVALID,
							"member \"pointer\" of condition %zu must be a string, not %s",
							i, es_type_article(pointer));
		status = es_ptr_parse(json_string_value(pointer), &ptr, err);
		if (status != ES_ENGINE_OK)
			return status;
		if (ev == NULL)
		{
			es_ptr_free(&ptr);
			status = es_value_check(equals, 0, err);
		}
		else
		{
			(*ptrs)[i] = ptr;
			status = es_value_resolve(equals, ev, 0, &(*values)[i], err);
		}
	}
	return status;
}

/*
 * es_where_free: releases what es_where_parse allocated.
 */
static void
es_where_free(size_t n, EsPointer *ptrs, json_t **values)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		if (ptrs)
			es_ptr_free(&ptrs[i]);
		if (values)
			json_decref(values[i]);
	}
	free(ptrs);
	free(values);
}

/*
 * es_where_match: true if some condition holds for member.
 */
static bool
es_where_match(json_t *member, size_t n, const EsPointer *ptrs,
			   json_t *const *values)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		EsPtrResult res;

		es_ptr_resolve(member, &ptrs[i], ptrs[i].ntokens, &res);
		if (res.fail == ES_PTR_FOUND && es_equal(res.value, values[i], 0))
			return true;
	}
	return false;
}

/*
 * es_child_path: path followed by the token key or the index, escaped.
 */
static void
es_child_path(EsBuf *buf, const char *path, const char *key, size_t index)
{
	es_buf_init(buf);
	es_buf_appends(buf, path);
	es_buf_appendc(buf, '/');
	if (key != NULL)
		es_ptr_escape(buf, key);
	else
		es_buf_printf(buf, "%zu", index);
}

/*
 * es_log_child: logs op on the child key (or index) of path to the forward
 * log, if there is one.
 */
static EsEngineStatus
es_log_child(EsApply *a, const char *op, const char *path, const char *key,
			 size_t index, const json_t *value)
{
	EsBuf		buf;
	EsEngineStatus status;

	if (a->forward == NULL)
		return ES_ENGINE_OK;
	es_child_path(&buf, path, key, index);
	if (buf.oom)
		status = ES_ENGINE_NOMEM;
	else
		status = es_log_op(a->forward, op, NULL, buf.data, value);
	es_buf_free(&buf);
	if (status != ES_ENGINE_OK)
		return es_nomem(a->err);
	return ES_ENGINE_OK;
}

/*
 * es_not_container: the error for a value at path that is not of the kind
 * wanted ("an object" or "an object or array").
 */
static EsEngineStatus
es_not_container(EsApply *a, const EsPointer *path, const json_t *v,
				 const char *wanted)
{
	es_error_path(a->err, path->text);
	return es_error(a->err, ES_ENGINE_REJECTED, "\"%s\" is %s, not %s",
					path->text, es_type_article(v), wanted);
}

/*
 * es_remove_where: the remove_where step on the container at path.
 */
static EsEngineStatus
es_remove_where(EsApply *a, const EsPointer *path, const json_t *where,
				const EsEvent *ev)
{
	EsPtrResult res;
	EsPointer  *ptrs;
	json_t	  **values;
	size_t		n = json_array_size(where);
	json_t	   *c;
	EsEngineStatus status;

	es_ptr_resolve(a->root, path, path->ntokens, &res);
	if (res.fail != ES_PTR_FOUND)
		return es_ptr_fail(a, path, &res);
	c = res.value;
	if (!json_is_object(c) && !json_is_array(c))
		return es_not_container(a, path, c, "an object or array");
	status = es_where_parse(where, ev, &ptrs, &values, a->err);
	if (status == ES_ENGINE_OK && json_is_object(c))
	{
		const char **keys = NULL;
		size_t		nkeys = 0;
		size_t		i;
		const char *key;
		json_t	   *member;

		json_object_foreach(c, key, member)
		{
			if (!es_where_match(member, n, ptrs, values))
				continue;
			if (keys == NULL)
			{
				keys = malloc(json_object_size(c) * sizeof(char *));
				if (keys == NULL)
				{
					status = es_nomem(a->err);
					break;
				}
			}
			keys[nkeys++] = key;
		}
		/* deleting a member frees its key only: the others stay valid */
		for (i = 0; i < nkeys && status == ES_ENGINE_OK; i++)
		{
			status = es_log_child(a, "remove", path->text, keys[i], 0, NULL);
			if (status == ES_ENGINE_OK)
				status = es_mut_obj_del(a, c, keys[i]);
		}
		free(keys);
	}
	else if (status == ES_ENGINE_OK)
	{
		size_t		size = json_array_size(c);
		size_t		i;
		bool	   *match = calloc(size ? size : 1, sizeof(bool));
		size_t		nmatch = 0;
		json_t	   *kept = json_array();

		if (match == NULL || kept == NULL)
			status = es_nomem(a->err);
		for (i = 0; i < size && status == ES_ENGINE_OK; i++)
		{
			json_t	   *e = json_array_get(c, i);

			match[i] = es_where_match(e, n, ptrs, values);
			if (match[i])
				nmatch++;
			else if (json_array_append(kept, e) != 0)
				status = es_nomem(a->err);
		}
		/* the concrete patch removes from the last, so indexes hold */
		for (i = size; i > 0 && status == ES_ENGINE_OK && nmatch > 0; i--)
			if (match[i - 1])
				status = es_log_child(a, "remove", path->text, NULL, i - 1, NULL);
		if (status == ES_ENGINE_OK && nmatch > 0)
		{
			status = es_mut_contents(a, c, kept);
			kept = NULL;
		}
		json_decref(kept);
		free(match);
	}
	es_where_free(n, ptrs, values);
	return status;
}

/*
 * es_value_has_ref: does the value of a step contain a reference anywhere?
 */
static bool
es_value_has_ref(const json_t *v, int depth)
{
	const char *key;
	json_t	   *member;
	bool		bad;
	size_t		i;

	if (depth > ES_RECURSION_LIMIT || es_ref_key(v, &bad) != NULL)
		return true;
	json_object_foreach((json_t *) v, key, member)
		if (es_value_has_ref(member, depth + 1))
			return true;
	for (i = 0; i < json_array_size(v); i++)
		if (es_value_has_ref(json_array_get(v, i), depth + 1))
			return true;
	return false;
}

/*
 * es_is_empty_container: {} or [].
 */
static bool
es_is_empty_container(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) == 0) ||
		(json_is_array(v) && json_array_size(v) == 0);
}

/*
 * es_log_scaffold: marks the op just logged to the forward log as
 * scaffolding (ES_SCAFFOLD_MEMBER): an empty container that the effect
 * makes sure exists, which undo leaves in place.
 */
static EsEngineStatus
es_log_scaffold(EsApply *a)
{
	json_t	   *op;

	if (a->forward == NULL)
		return ES_ENGINE_OK;
	op = json_array_get(a->forward, json_array_size(a->forward) - 1);
	if (json_object_set_new(op, ES_SCAFFOLD_MEMBER, json_true()) != 0)
		return es_nomem(a->err);
	return ES_ENGINE_OK;
}

/*
 * es_merge_value: what RFC 7396 puts in place of a member patched with pv:
 * pv without its null members if it is an object (MergePatch({}, pv)),
 * otherwise pv itself.  Returns a new reference, NULL when out of memory.
 */
static json_t *
es_merge_value(json_t *pv, int depth)
{
	const char *key;
	json_t	   *member;
	json_t	   *copy;

	if (!json_is_object(pv) || depth > ES_RECURSION_LIMIT)
		return json_incref(pv);
	copy = es_new_object();
	if (copy == NULL)
		return NULL;
	json_object_foreach(pv, key, member)
	{
		json_t	   *c;

		if (json_is_null(member))
			continue;
		c = es_merge_value(member, depth + 1);
		if (c == NULL || json_object_set_new(copy, key, c) != 0)
		{
			json_decref(copy);
			return NULL;
		}
	}
	return copy;
}

/*
 * es_merge: RFC 7396 merge of the object patch into the object target,
 * which is at path (text).
 */
static EsEngineStatus
es_merge(EsApply *a, json_t *target, json_t *patch, const char *path,
		 bool literal, int depth)
{
	const char *key;
	json_t	   *pv;

	if (depth > ES_RECURSION_LIMIT)
		return es_error(a->err, ES_ENGINE_REJECTED,
						"merge value nested deeper than %d levels",
						ES_JSON_MAX_DEPTH);
	json_object_foreach(patch, key, pv)
	{
		json_t	   *tv = json_object_get(target, key);
		EsEngineStatus status;

		if (json_is_null(pv))
		{
			if (tv == NULL)
				continue;
			status = es_log_child(a, "remove", path, key, 0, NULL);
			if (status == ES_ENGINE_OK)
				status = es_mut_obj_del(a, target, key);
		}
		else if (json_is_object(pv) && json_is_object(tv))
		{
			EsBuf		child;

			es_child_path(&child, path, key, 0);
			if (child.oom)
				status = es_nomem(a->err);
			else
				status = es_merge(a, tv, pv, child.data, literal, depth + 1);
			es_buf_free(&child);
		}
		else
		{
			json_t	   *nv = es_merge_value(pv, depth + 1);

			if (nv == NULL)
				return es_nomem(a->err);
			/* a member set to what it is already is not a change */
			if (tv != NULL && json_equal(tv, nv))
			{
				json_decref(nv);
				continue;
			}
			status = es_log_child(a, "add", path, key, 0, nv);
			if (status == ES_ENGINE_OK && literal && tv == NULL &&
				es_is_empty_container(nv))
				status = es_log_scaffold(a);
			if (status == ES_ENGINE_OK)
				status = es_mut_obj_set(a, target, key, nv);
			else
				json_decref(nv);
		}
		if (status != ES_ENGINE_OK)
			return status;
	}
	return ES_ENGINE_OK;
}

/*
 * es_merge_step: the merge step: value (resolved, stolen) into the object
 * at path; literal if the step's value has no reference.
 */
static EsEngineStatus
es_merge_step(EsApply *a, const EsPointer *path, json_t *value, bool literal)
{
	EsPtrResult res;
	EsEngineStatus status;

	es_ptr_resolve(a->root, path, path->ntokens, &res);
	if (res.fail != ES_PTR_FOUND)
		status = es_ptr_fail(a, path, &res);
	else if (!json_is_object(res.value))
		status = es_not_container(a, path, res.value, "an object");
	else if (!json_is_object(value))
		status = es_error(a->err, ES_ENGINE_REJECTED,
						  "the value of a merge must be an object, not %s",
						  es_type_article(value));
	else if (es_depth(value, ES_JSON_MAX_DEPTH) >
			 ES_JSON_MAX_DEPTH - path->ntokens)
		status = es_error(a->err, ES_ENGINE_REJECTED,
						  "value at \"%s\" would nest the document deeper than %d levels",
						  path->text, ES_JSON_MAX_DEPTH);
	else
		status = es_merge(a, res.value, value, path->text, literal, 0);
	json_decref(value);
	return status;
}

/*
 * es_effect_step: applies one step of an effect through a.
 */
static EsEngineStatus
es_effect_step(EsApply *a, const json_t *step, const EsEvent *ev)
{
	const EsOpSpec *spec;
	EsBuf		pbuf;
	EsBuf		fbuf;
	EsPointer	path;
	EsPointer	from;
	json_t	   *value = NULL;
	int			depth = 0;
	EsEngineStatus status;
	EsPtrResult res;

	status = es_step_shape(step, &spec, a->err);
	if (status != ES_ENGINE_OK)
		return status;
	es_buf_init(&fbuf);
	from.mem = NULL;
	if (spec->from)
	{
		status = es_step_pointer(step, "from", ev, &fbuf, &from, a->err);
		if (status != ES_ENGINE_OK)
		{
			es_buf_free(&fbuf);
			return status;
		}
	}
	status = es_step_pointer(step, "path", ev, &pbuf, &path, a->err);
	if (status == ES_ENGINE_OK && spec->value)
	{
		status = es_value_resolve(json_object_get(step, "value"), ev, 0,
								  &value, a->err);
		if (status == ES_ENGINE_OK)
			depth = es_depth(value, ES_JSON_MAX_DEPTH);
		/* refused before it is logged: patches hold no deeper value */
		if (status == ES_ENGINE_OK &&
			depth > ES_JSON_MAX_DEPTH - path.ntokens)
		{
			if (spec->kind == ES_OP_TEST)
				status = es_error(a->err, ES_ENGINE_REJECTED,
								  "test failed at \"%s\": the value is nested deeper than the document can be",
								  path.text);
			else
				status = es_error(a->err, ES_ENGINE_REJECTED,
								  "value at \"%s\" would nest the document deeper than %d levels",
								  path.text, ES_JSON_MAX_DEPTH);
		}
	}
	if (status == ES_ENGINE_OK && a->forward != NULL &&
		spec->kind <= ES_OP_TEST &&
		es_log_op(a->forward, spec->name, spec->from ? fbuf.data : NULL,
				  pbuf.data, value) != ES_ENGINE_OK)
		status = es_nomem(a->err);
	if (status == ES_ENGINE_OK)
	{
		switch (spec->kind)
		{
			case ES_OP_ADD:
				status = es_op_add(a, &path, value, depth);
				value = NULL;
				break;
			case ES_OP_REPLACE:
				status = es_op_replace(a, &path, value, depth);
				value = NULL;
				break;
			case ES_OP_REMOVE:
				status = es_op_remove(a, &path);
				break;
			case ES_OP_MOVE:
				status = es_op_move(a, &from, &path);
				break;
			case ES_OP_COPY:
				status = es_op_copy(a, &from, &path);
				break;
			case ES_OP_TEST:
				status = es_op_test(a, &path, value);
				break;
			case ES_OP_EXISTS:
				es_ptr_resolve(a->root, &path, path.ntokens, &res);
				if (res.fail != ES_PTR_FOUND)
					status = es_ptr_fail(a, &path, &res);
				else if (a->reads != NULL &&
						 es_log_op(a->reads, spec->name, NULL, pbuf.data, NULL) != ES_ENGINE_OK)
					status = es_nomem(a->err);
				break;
			case ES_OP_ABSENT:
				es_ptr_resolve(a->root, &path, path.ntokens, &res);
				if (res.fail == ES_PTR_FOUND)
					status = es_error(a->err, ES_ENGINE_REJECTED,
									  "value at \"%s\" already exists",
									  path.text);
				else if (a->reads != NULL &&
						 es_log_op(a->reads, spec->name, NULL, pbuf.data, NULL) != ES_ENGINE_OK)
					status = es_nomem(a->err);
				break;
			case ES_OP_REMOVE_WHERE:
				status = es_remove_where(a, &path,
										 json_object_get(step, "where"), ev);
				break;
			case ES_OP_MERGE:
				status = es_merge_step(a, &path, value,
									   !es_value_has_ref(json_object_get(step, "value"), 0));
				value = NULL;
				break;
		}
	}
	json_decref(value);
	es_ptr_free(&path);
	es_ptr_free(&from);
	es_buf_free(&pbuf);
	es_buf_free(&fbuf);
	return status;
}

/*
 * es_effect_check: see engine.h.
 */
EsEngineStatus
es_effect_check(const EsJson *effect, EsEngineError *err)
{
	EsEngineError work;
	size_t		i;
	EsEngineStatus status = ES_ENGINE_OK;

	es_error_clear(&work);
	if (effect == NULL || !json_is_array(effect))
		status = es_error(&work, ES_ENGINE_INVALID,
						  "an effect must be an array of steps, not %s",
						  effect ? es_type_article(effect) : "nothing");
	for (i = 0; status == ES_ENGINE_OK && i < json_array_size(effect); i++)
	{
		const json_t *step = json_array_get(effect, i);
		const EsOpSpec *spec;
		EsBuf		buf;
		EsPointer	ptr;

		es_error_clear(&work);
		work.step = (i > (size_t) 0x7fffffff) ? -1 : (int) i;
		status = es_step_shape(step, &spec, &work);
		if (status == ES_ENGINE_OK && spec->from)
		{
			status = es_step_pointer(step, "from", NULL, &buf, &ptr, &work);
			es_ptr_free(&ptr);
			es_buf_free(&buf);
		}
		if (status == ES_ENGINE_OK)
		{
			status = es_step_pointer(step, "path", NULL, &buf, &ptr, &work);
			es_ptr_free(&ptr);
			es_buf_free(&buf);
		}
		if (status == ES_ENGINE_OK && spec->value)
		{
			json_t	   *value = json_object_get(step, "value");
			bool		bad;

			status = es_value_check(value, 0, &work);
			if (status == ES_ENGINE_OK && spec->kind == ES_OP_MERGE &&
				!json_is_object(value))
				status = es_error(&work, ES_ENGINE_INVALID,
								  "the value of a merge must be an object, not %s",
								  es_type_article(value));
			if (status == ES_ENGINE_OK && spec->kind == ES_OP_MERGE &&
				es_ref_key(value, &bad) != NULL &&
				strcmp(es_ref_key(value, &bad), "$literal") == 0 &&
				!json_is_object(json_object_get(value, "$literal")))
				status = es_error(&work, ES_ENGINE_INVALID,
								  "the value of a merge must be an object");
		}
		if (status == ES_ENGINE_OK && spec->where)
		{
			EsPointer  *ptrs;
			json_t	  **values;

			status = es_where_parse(json_object_get(step, "where"), NULL,
									&ptrs, &values, &work);
		}
	}
	if (status != ES_ENGINE_OK && err)
		*err = work;
	return status;
}

/*
 * es_schema_ref_check: checks the pointer text of a template (key) or of a
 * "$data" reference against the schema of the data; what describes it in
 * messages ("template \"{/x}\"", "reference {\"$data\": \"/x\"}").
 */
static EsEngineStatus
es_schema_ref_check(const json_t *schema, const char *text, bool key,
					const char *what, EsEngineError *err)
{
	EsPointer	ptr;
	EsBuf		why;
	EsSchemaFind found;
	EsEngineStatus status = es_ptr_parse(text, &ptr, err);

	if (status != ES_ENGINE_OK)
		return status;
	es_buf_init(&why);
	found = es_schema_lookup(schema, &ptr, key, &why);
	es_ptr_free(&ptr);
	if (found != ES_SCHEMA_FOUND && (why.oom || why.data == NULL))
		status = es_nomem(err);
	else if (found == ES_SCHEMA_NOTHING)
		status = es_error(err, ES_ENGINE_INVALID, "%s refers to nothing: %s",
						  what, why.data);
	else if (found == ES_SCHEMA_NOT_KEY)
		status = es_error(err, ES_ENGINE_INVALID,
						  "%s refers to a value that cannot be a string or an integer: %s",
						  what, why.data);
	es_buf_free(&why);
	return status;
}

/*
 * es_template_schema_check: checks every template of a path (checked by
 * es_effect_check) against the schema.
 */
static EsEngineStatus
es_template_schema_check(const json_t *schema, const char *text,
						 EsEngineError *err)
{
	const char *p = text;

	while ((p = strchr(p, '{')) != NULL)
	{
		const char *close = strchr(p, '}');
		EsBuf		inner;
		EsBuf		what;
		EsEngineStatus status;

		if (close == NULL)
			break;
		es_buf_init(&inner);
		es_buf_init(&what);
		es_buf_append(&inner, p + 1, (size_t) (close - p) - 1);
		es_buf_appends(&what, "template \"");
		es_buf_append(&what, p, (size_t) (close - p) + 1);
		es_buf_appendc(&what, '"');
		if (inner.oom || what.oom)
			status = es_nomem(err);
		else
			status = es_schema_ref_check(schema, inner.data, true, what.data,
										 err);
		es_buf_free(&inner);
		es_buf_free(&what);
		if (status != ES_ENGINE_OK)
			return status;
		p = close + 1;
	}
	return ES_ENGINE_OK;
}

/*
 * es_value_schema_check: checks every "$data" reference inside the value
 * v (checked by es_effect_check) against the schema.
 */
static EsEngineStatus
es_value_schema_check(const json_t *schema, const json_t *v, int depth,
					  EsEngineError *err)
{
	bool		bad;
	const char *ref = es_ref_key(v, &bad);
	EsEngineStatus status = ES_ENGINE_OK;

	if (depth > ES_RECURSION_LIMIT)
		return ES_ENGINE_OK;
	if (ref != NULL)
	{
		const json_t *arg = json_object_get(v, ref);

		/* $meta and $event are not data; nothing in a $literal is resolved */
		if (strcmp(ref, "$data") == 0 && json_is_string(arg))
		{
			EsBuf		what;

			es_buf_init(&what);
			es_buf_appends(&what, "reference ");
			es_ref_describe(&what, ref, arg);
			if (what.oom)
				status = es_nomem(err);
			else
				status = es_schema_ref_check(schema, json_string_value(arg),
											 false, what.data, err);
			es_buf_free(&what);
		}
		return status;
	}
	if (json_is_object(v))
	{
		const char *key;
		json_t	   *member;

		json_object_foreach((json_t *) v, key, member)
		{
			status = es_value_schema_check(schema, member, depth + 1, err);
			if (status != ES_ENGINE_OK)
				return status;
		}
	}
	else if (json_is_array(v))
	{
		size_t		i;

		for (i = 0; i < json_array_size(v) && status == ES_ENGINE_OK; i++)
			status = es_value_schema_check(schema, json_array_get(v, i),
										   depth + 1, err);
	}
	return status;
}

/*
 * es_effect_check_schema: see engine.h.
 */
EsEngineStatus
es_effect_check_schema(const EsJson *effect, const EsJson *schema,
					   EsEngineError *err)
{
	EsEngineError work;
	size_t		i;
	EsEngineStatus status;

	if (schema == NULL)
		return ES_ENGINE_OK;
	status = es_effect_check(effect, err);
	if (status == ES_ENGINE_OK)
		status = es_schema_check(schema, err);
	if (status != ES_ENGINE_OK)
		return status;
	for (i = 0; status == ES_ENGINE_OK && i < json_array_size(effect); i++)
	{
		const json_t *step = json_array_get(effect, i);
		const EsOpSpec *spec;

		es_error_clear(&work);
		work.step = (i > (size_t) 0x7fffffff) ? -1 : (int) i;
		status = es_step_shape(step, &spec, &work);
		if (status == ES_ENGINE_OK && spec->from)
		{
			const char *from = json_string_value(json_object_get(step, "from"));

			es_error_path(&work, from);
			status = es_template_schema_check(schema, from, &work);
		}
		if (status == ES_ENGINE_OK)
		{
			const char *path = json_string_value(json_object_get(step, "path"));

			es_error_path(&work, path);
			status = es_template_schema_check(schema, path, &work);
		}
		if (status == ES_ENGINE_OK && spec->value)
			status = es_value_schema_check(schema, json_object_get(step, "value"),
										   0, &work);
		if (status == ES_ENGINE_OK && spec->where)
		{
			const json_t *where = json_object_get(step, "where");
			size_t		k;

			for (k = 0; k < json_array_size(where) && status == ES_ENGINE_OK; k++)
				status = es_value_schema_check(schema,
											   json_object_get(json_array_get(where, k), "equals"),
											   0, &work);
		}
	}
	if (status != ES_ENGINE_OK && err)
		*err = work;
	return status;
}

/*
 * es_effect_apply_trace: see engine.h.
 */
EsEngineStatus
es_effect_apply_trace(EsJson *state, const EsJson *effect,
					  const EsJson *event, EsJson **patch, EsJson **reads,
					  EsEngineError *err)
{
	EsEngineError work;
	EsApply		a;
	EsEvent		ev;
	size_t		i;
	EsEngineStatus status = ES_ENGINE_OK;

	es_error_clear(&work);
	if (patch)
		*patch = NULL;
	if (reads)
		*reads = NULL;
	if (state == NULL)
		status = es_error(&work, ES_ENGINE_INVALID, "no state");
	else if (effect == NULL || !json_is_array(effect))
		status = es_error(&work, ES_ENGINE_INVALID,
						  "an effect must be an array of steps, not %s",
						  effect ? es_type_article(effect) : "nothing");
	else if (event == NULL || !json_is_object(event))
		status = es_error(&work, ES_ENGINE_INVALID,
						  "the event must be an object");
	if (status != ES_ENGINE_OK)
	{
		if (err)
			*err = work;
		return status;
	}
	ev.event = (json_t *) event;
	ev.data = json_object_get(event, "data");
	ev.meta = json_object_get(event, "metadata");
	es_apply_init(&a, state, &work);
	if (patch)
	{
		a.forward = json_array();
		if (a.forward == NULL)
			status = es_nomem(&work);
	}
	if (reads && status == ES_ENGINE_OK)
	{
		a.reads = json_array();
		if (a.reads == NULL)
			status = es_nomem(&work);
	}
	for (i = 0; status == ES_ENGINE_OK && i < json_array_size(effect); i++)
	{
		es_error_clear(&work);
		work.step = (i > (size_t) 0x7fffffff) ? -1 : (int) i;
		status = es_effect_step(&a, json_array_get(effect, i), &ev);
	}
	if (status != ES_ENGINE_OK)
	{
		if (!es_apply_rollback(&a))
			status = es_nomem(&work);
		es_apply_release(&a);
		if (err)
			*err = work;
		return status;
	}
	if (patch)
	{
		*patch = a.forward;
		a.forward = NULL;
	}
	if (reads)
	{
		*reads = a.reads;
		a.reads = NULL;
	}
	es_apply_release(&a);
	return ES_ENGINE_OK;
}

/*
 * es_effect_apply_resolve: see engine.h.
 */
EsEngineStatus
es_effect_apply_resolve(EsJson *state, const EsJson *effect,
						const EsJson *event, EsJson **patch, EsEngineError *err)
{
	return es_effect_apply_trace(state, effect, event, patch, NULL, err);
}

/*
 * es_effect_apply: see engine.h.
 */
EsEngineStatus
es_effect_apply(EsJson *state, const EsJson *effect, const EsJson *event,
				EsEngineError *err)
{
	return es_effect_apply_trace(state, effect, event, NULL, NULL, err);
}

/*
 * es_effect_resolve: see engine.h.
 */
EsEngineStatus
es_effect_resolve(const EsJson *effect, const EsJson *event,
				  const EsJson *state, EsJson **patch, EsEngineError *err)
{
	json_t	   *copy;
	EsEngineStatus status;

	*patch = NULL;
	if (state == NULL)
	{
		EsEngineError work;

		es_error_clear(&work);
		status = es_error(&work, ES_ENGINE_INVALID, "no state");
		if (err)
			*err = work;
		return status;
	}
	copy = es_copy(state, 0, NULL);
	if (copy == NULL)
	{
		EsEngineError work;

		es_error_clear(&work);
		status = es_nomem(&work);
		if (err)
			*err = work;
		return status;
	}
	status = es_effect_apply_resolve(copy, effect, event, patch, err);
	json_decref(copy);
	return status;
}
