/*-------------------------------------------------------------------------
 *
 * json_patch.c
 *	  RFC 6902 JSON Patch with atomic application: the undo log, the
 *	  operations on parsed pointers, es_patch_apply and es_patch_inverse.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/json_patch.c
 *
 *-------------------------------------------------------------------------
 *
 * Atomicity
 * ---------
 * A document is changed only by the es_mut_* functions.  Each one first
 * reserves an entry of the undo log, then makes its change, then records
 * what the change replaced: the container (a reference), the member name or
 * index, and the old value (a reference).  Rolling back plays the log
 * backwards, so each entry finds the document exactly as it left it.  Cost:
 * one entry, one key copy and a few reference counts per change; nothing
 * proportional to the size of the document, except es_mut_contents (a
 * whole container replaced: the root, or an array filtered by
 * remove_where) which keeps a shallow copy of the members it replaces.
 *
 * Member order: a member that is replaced keeps its place, and so does it
 * when the replacement is rolled back.  A removed member that is put back
 * goes to the end of its object (jansson cannot insert at a position, and
 * moving the members that followed it would make a rollback cost as much
 * as the object is large).  Order carries no meaning for the extension:
 * states are stored as jsonb, which orders keys its own way, so a state
 * read back from a snapshot has a different order anyway.
 *
 * Re-inserting members and elements can allocate; if that fails during
 * rollback, es_apply_rollback returns false and the caller reports
 * ES_ENGINE_NOMEM, whose contract is that the document must be discarded.
 *
 * Inverse
 * -------
 * When EsApply.inverse is set, each operation appends the RFC 6902 ops that
 * undo it (with deep copies of old values): add of a new member -> remove,
 * add over a member or replace -> replace with the old value, remove -> add
 * of the old value.  move is a remove then an add, copy an add, so their
 * inverses follow.  The list is in application order; the caller reverses
 * it.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static EsEngineStatus es_root_replace(EsApply *a, json_t *value);
static EsEngineStatus es_depth_check(EsApply *a, const EsPointer *path,
									 int value_depth);
static EsEngineStatus es_log_index(json_t *log, const char *op,
								   const EsPointer *path, size_t index,
								   const json_t *value);

/*
 * es_apply_init: an application to root with an empty undo log and no
 * forward or inverse logs.
 */
void
es_apply_init(EsApply *a, json_t *root, EsEngineError *err)
{
	a->root = root;
	a->undo.entries = NULL;
	a->undo.n = 0;
	a->undo.cap = 0;
	a->forward = NULL;
	a->inverse = NULL;
	a->reads = NULL;
	a->err = err;
}

/*
 * es_undo_reserve: makes room for one more entry; false when out of memory.
 */
static bool
es_undo_reserve(EsUndoLog *log)
{
	if (log->n == log->cap)
	{
		size_t		cap = log->cap ? log->cap * 2 : 16;
		EsUndo	   *entries;

		if (cap > ((size_t) -1) / sizeof(EsUndo))
			return false;
		entries = realloc(log->entries, cap * sizeof(EsUndo));
		if (entries == NULL)
			return false;
		log->entries = entries;
		log->cap = cap;
	}
	return true;
}

/*
 * es_undo_entry_free: drops the references and strings of one entry.
 */
static void
es_undo_entry_free(EsUndo *e)
{
	json_decref(e->container);
	json_decref(e->old);
	free(e->key);
}

/*
 * es_undo_entry_new: fills the next entry of the log (which must have been
 * reserved) without committing it; false when out of memory, in which case
 * nothing is held.
 */
static EsUndo *
es_undo_entry_new(EsApply *a, EsUndoKind kind, json_t *container,
				  const char *key, size_t index, json_t *old)
{
	EsUndo	   *e = &a->undo.entries[a->undo.n];

	e->kind = kind;
	e->container = json_incref(container);
	e->key = NULL;
	e->index = index;
	e->old = json_incref(old);
	if (key != NULL)
	{
		e->key = es_strdup(key);
		if (e->key == NULL)
		{
			es_undo_entry_free(e);
			return NULL;
		}
	}
	return e;
}

/*
 * es_undo_entry_apply: reverts the change of one entry.
 */
static bool
es_undo_entry_apply(EsUndo *e)
{
	json_t	   *c = e->container;

	switch (e->kind)
	{
		case ES_UNDO_OBJ_ADDED:
			return json_object_del(c, e->key) == 0;
		case ES_UNDO_OBJ_REPLACED:
			return json_object_set(c, e->key, e->old) == 0;
		case ES_UNDO_OBJ_REMOVED:
			return json_object_set(c, e->key, e->old) == 0;
		case ES_UNDO_ARR_INSERTED:
			return json_array_remove(c, e->index) == 0;
		case ES_UNDO_ARR_REPLACED:
			return json_array_set(c, e->index, e->old) == 0;
		case ES_UNDO_ARR_REMOVED:
			return json_array_insert(c, e->index, e->old) == 0;
		case ES_UNDO_CONTENTS:
			if (json_is_object(c))
			{
				json_object_clear(c);
				return json_object_update(c, e->old) == 0;
			}
			json_array_clear(c);
			return json_array_extend(c, e->old) == 0;
	}
	return false;
}

/*
 * es_apply_rollback: reverts every change logged, last first, and empties
 * the log.  false if some change could not be reverted (out of memory).
 */
bool
es_apply_rollback(EsApply *a)
{
	bool		ok = true;

	while (a->undo.n > 0)
	{
		EsUndo	   *e = &a->undo.entries[--a->undo.n];

		if (!es_undo_entry_apply(e))
			ok = false;
		es_undo_entry_free(e);
	}
	return ok;
}

/*
 * es_apply_release: forgets the undo log (the changes stay) and drops the
 * forward, inverse and read logs.
 */
void
es_apply_release(EsApply *a)
{
	size_t		i;

	for (i = 0; i < a->undo.n; i++)
		es_undo_entry_free(&a->undo.entries[i]);
	free(a->undo.entries);
	a->undo.entries = NULL;
	a->undo.n = 0;
	a->undo.cap = 0;
	json_decref(a->forward);
	json_decref(a->inverse);
	json_decref(a->reads);
	a->forward = NULL;
	a->inverse = NULL;
	a->reads = NULL;
}

/*
 * es_mut_obj_set: sets member key of obj to value (a reference that is
 * stolen, even on failure), logging the change.
 */
EsEngineStatus
es_mut_obj_set(EsApply *a, json_t *obj, const char *key, json_t *value)
{
	json_t	   *old;
	EsUndo	   *e;

	if (!es_undo_reserve(&a->undo))
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	old = json_object_get(obj, key);
	e = es_undo_entry_new(a, old ? ES_UNDO_OBJ_REPLACED : ES_UNDO_OBJ_ADDED,
						  obj, key, 0, old);
	if (e == NULL)
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	if (json_object_set_new(obj, key, value) != 0)
	{
		es_undo_entry_free(e);
		return es_nomem(a->err);
	}
	a->undo.n++;
	return ES_ENGINE_OK;
}

/*
 * es_mut_obj_del: deletes the member key of obj, if it exists, logging it.
 */
EsEngineStatus
es_mut_obj_del(EsApply *a, json_t *obj, const char *key)
{
	json_t	   *old = json_object_get(obj, key);
	EsUndo	   *e;

	if (old == NULL)
		return ES_ENGINE_OK;
	if (!es_undo_reserve(&a->undo))
		return es_nomem(a->err);
	e = es_undo_entry_new(a, ES_UNDO_OBJ_REMOVED, obj, key, 0, old);
	if (e == NULL)
		return es_nomem(a->err);
	if (json_object_del(obj, e->key) != 0)
	{
		es_undo_entry_free(e);
		return es_nomem(a->err);
	}
	a->undo.n++;
	return ES_ENGINE_OK;
}

/*
 * es_mut_arr_set: replaces the existing element index of arr by value
 * (stolen), logging the old one.
 */
EsEngineStatus
es_mut_arr_set(EsApply *a, json_t *arr, size_t index, json_t *value)
{
	EsUndo	   *e;

	if (!es_undo_reserve(&a->undo))
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	e = es_undo_entry_new(a, ES_UNDO_ARR_REPLACED, arr, NULL, index,
						  json_array_get(arr, index));
	if (e == NULL)
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	if (json_array_set_new(arr, index, value) != 0)
	{
		es_undo_entry_free(e);
		return es_nomem(a->err);
	}
	a->undo.n++;
	return ES_ENGINE_OK;
}

/*
 * es_mut_arr_insert: inserts value (stolen) at index (<= size) of arr.
 */
EsEngineStatus
es_mut_arr_insert(EsApply *a, json_t *arr, size_t index, json_t *value)
{
	EsUndo	   *e;

	if (!es_undo_reserve(&a->undo))
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	e = es_undo_entry_new(a, ES_UNDO_ARR_INSERTED, arr, NULL, index, NULL);
	if (e == NULL)
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	if (json_array_insert_new(arr, index, value) != 0)
	{
		es_undo_entry_free(e);
		return es_nomem(a->err);
	}
	a->undo.n++;
	return ES_ENGINE_OK;
}

/*
 * es_mut_arr_del: removes the existing element index of arr.
 */
EsEngineStatus
es_mut_arr_del(EsApply *a, json_t *arr, size_t index)
{
	EsUndo	   *e;

	if (!es_undo_reserve(&a->undo))
		return es_nomem(a->err);
	e = es_undo_entry_new(a, ES_UNDO_ARR_REMOVED, arr, NULL, index,
						  json_array_get(arr, index));
	if (e == NULL)
		return es_nomem(a->err);
	if (json_array_remove(arr, index) != 0)
	{
		es_undo_entry_free(e);
		return es_nomem(a->err);
	}
	a->undo.n++;
	return ES_ENGINE_OK;
}

/*
 * es_mut_contents: gives container (an object or an array) the members of
 * contents, a container of the same type (stolen), logging a shallow copy
 * of its current members.
 */
EsEngineStatus
es_mut_contents(EsApply *a, json_t *container, json_t *contents)
{
	json_t	   *old;
	EsUndo	   *e;
	int			rc;

	if (!es_undo_reserve(&a->undo))
	{
		json_decref(contents);
		return es_nomem(a->err);
	}
	if (json_is_object(container))
	{
		old = es_new_object();
		if (old == NULL || json_object_update(old, container) != 0)
			goto nomem;
	}
	else
	{
		old = json_array();
		if (old == NULL || json_array_extend(old, container) != 0)
			goto nomem;
	}
	e = es_undo_entry_new(a, ES_UNDO_CONTENTS, container, NULL, 0, old);
	json_decref(old);
	old = NULL;
	if (e == NULL)
		goto nomem;
	/* the entry is committed first: a failure below is rolled back by it */
	a->undo.n++;
	if (json_is_object(container))
	{
		json_object_clear(container);
		rc = json_object_update(container, contents);
	}
	else
	{
		json_array_clear(container);
		rc = json_array_extend(container, contents);
	}
	json_decref(contents);
	if (rc != 0)
		return es_nomem(a->err);
	return ES_ENGINE_OK;

nomem:
	json_decref(old);
	json_decref(contents);
	return es_nomem(a->err);
}

/*
 * es_ptr_fail: the error for a pointer that did not resolve, as res says;
 * the error path is the pointer.
 */
EsEngineStatus
es_ptr_fail(EsApply *a, const EsPointer *ptr, const EsPtrResult *res)
{
	EsBuf		buf;

	es_buf_init(&buf);
	es_ptr_describe(&buf, ptr, res);
	es_error_path(a->err, ptr->text);
	if (buf.oom)
	{
		es_buf_free(&buf);
		return es_nomem(a->err);
	}
	es_error(a->err, ES_ENGINE_REJECTED, "%s", buf.data);
	es_buf_free(&buf);
	return ES_ENGINE_REJECTED;
}

/*
 * es_log_op: appends {"op", "from", "path", "value"} to log, with a deep
 * copy of value; from and value may be NULL.
 */
EsEngineStatus
es_log_op(json_t *log, const char *op, const char *from, const char *path,
		  const json_t *value)
{
	json_t	   *o = es_new_object();

	if (o == NULL)
		return ES_ENGINE_NOMEM;
	if (json_object_set_new(o, "op", json_string(op)) != 0 ||
		(from != NULL &&
		 json_object_set_new(o, "from", json_string(from)) != 0) ||
		json_object_set_new(o, "path", json_string(path)) != 0 ||
		(value != NULL &&
		 json_object_set_new(o, "value", es_copy(value, 0, NULL)) != 0))
	{
		json_decref(o);
		return ES_ENGINE_NOMEM;
	}
	/* json_array_append_new releases o itself when it fails */
	if (json_array_append_new(log, o) != 0)
		return ES_ENGINE_NOMEM;
	return ES_ENGINE_OK;
}

/*
 * es_log_index: es_log_op for the element index of the array that is the
 * parent of path (the path with its last token replaced by index).
 */
static EsEngineStatus
es_log_index(json_t *log, const char *op, const EsPointer *path, size_t index,
			 const json_t *value)
{
	EsBuf		buf;
	EsEngineStatus status;
	int			k = path->ntokens - 1;

	es_buf_init(&buf);
	es_buf_append(&buf, path->text, k > 0 ? path->tok[k - 1].end : 0);
	es_buf_printf(&buf, "/%zu", index);
	if (buf.oom)
	{
		es_buf_free(&buf);
		return ES_ENGINE_NOMEM;
	}
	status = es_log_op(log, op, NULL, buf.data, value);
	es_buf_free(&buf);
	return status;
}

/*
 * es_depth_check: refuses a value that would nest the document deeper than
 * ES_JSON_MAX_DEPTH.
 */
static EsEngineStatus
es_depth_check(EsApply *a, const EsPointer *path, int value_depth)
{
	if (value_depth > ES_JSON_MAX_DEPTH - path->ntokens)
	{
		es_error_path(a->err, path->text);
		return es_error(a->err, ES_ENGINE_REJECTED,
						"value at \"%s\" would nest the document deeper than %d levels",
						path->text, ES_JSON_MAX_DEPTH);
	}
	return ES_ENGINE_OK;
}

/*
 * es_root_replace: replaces the whole document by value (stolen).  The root
 * is changed in place, so value must be a container of its type.
 */
static EsEngineStatus
es_root_replace(EsApply *a, json_t *value)
{
	json_t	   *root = a->root;

	if (!(json_is_object(root) || json_is_array(root)) ||
		json_typeof(root) != json_typeof(value))
	{
		es_error_path(a->err, "");
		es_error(a->err, ES_ENGINE_REJECTED,
				 "the document root is %s and cannot be replaced by %s",
				 es_type_article(root), es_type_article(value));
		json_decref(value);
		return ES_ENGINE_REJECTED;
	}
	if (a->inverse &&
		es_log_op(a->inverse, "replace", NULL, "", root) != ES_ENGINE_OK)
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	return es_mut_contents(a, root, value);
}

/*
 * es_op_add: RFC 6902 add of value (stolen), whose nesting is value_depth.
 */
EsEngineStatus
es_op_add(EsApply *a, const EsPointer *path, json_t *value, int value_depth)
{
	EsPtrResult res;
	json_t	   *parent;
	const char *last;
	EsEngineStatus status;

	if (path->ntokens == 0)
		return es_root_replace(a, value);
	status = es_depth_check(a, path, value_depth);
	if (status != ES_ENGINE_OK)
	{
		json_decref(value);
		return status;
	}
	es_ptr_resolve(a->root, path, path->ntokens - 1, &res);
	if (res.fail != ES_PTR_FOUND)
	{
		json_decref(value);
		return es_ptr_fail(a, path, &res);
	}
	parent = res.value;
	last = path->tok[path->ntokens - 1].s;
	if (json_is_object(parent))
	{
		if (a->inverse)
		{
			json_t	   *old = json_object_get(parent, last);

			status = old ? es_log_op(a->inverse, "replace", NULL, path->text, old)
				: es_log_op(a->inverse, "remove", NULL, path->text, NULL);
			if (status != ES_ENGINE_OK)
			{
				json_decref(value);
				return es_nomem(a->err);
			}
		}
		return es_mut_obj_set(a, parent, last, value);
	}
	if (json_is_array(parent))
	{
		size_t		index;

		if (strcmp(last, "-") == 0)
			index = json_array_size(parent);
		else if (!es_ptr_index(last, &index) ||
				 index > json_array_size(parent))
		{
			res.fail = es_ptr_index(last, &index) ? ES_PTR_OUT_OF_RANGE
				: ES_PTR_BAD_INDEX;
			res.token = path->ntokens - 1;
			res.at = parent;
			json_decref(value);
			return es_ptr_fail(a, path, &res);
		}
		if (a->inverse &&
			es_log_index(a->inverse, "remove", path, index, NULL) != ES_ENGINE_OK)
		{
			json_decref(value);
			return es_nomem(a->err);
		}
		return es_mut_arr_insert(a, parent, index, value);
	}
	res.fail = ES_PTR_NOT_CONTAINER;
	res.token = path->ntokens - 1;
	res.at = parent;
	json_decref(value);
	return es_ptr_fail(a, path, &res);
}

/*
 * es_op_remove: RFC 6902 remove.
 */
EsEngineStatus
es_op_remove(EsApply *a, const EsPointer *path)
{
	EsPtrResult res;
	const char *last;
	size_t		index;

	if (path->ntokens == 0)
	{
		es_error_path(a->err, "");
		return es_error(a->err, ES_ENGINE_REJECTED,
						"cannot remove the document root");
	}
	es_ptr_resolve(a->root, path, path->ntokens, &res);
	if (res.fail != ES_PTR_FOUND)
		return es_ptr_fail(a, path, &res);
	if (a->inverse &&
		es_log_op(a->inverse, "add", NULL, path->text, res.value) != ES_ENGINE_OK)
		return es_nomem(a->err);
	last = path->tok[path->ntokens - 1].s;
	if (json_is_object(res.at))
		return es_mut_obj_del(a, res.at, last);
	(void) es_ptr_index(last, &index);
	return es_mut_arr_del(a, res.at, index);
}

/*
 * es_op_replace: RFC 6902 replace with value (stolen).
 */
EsEngineStatus
es_op_replace(EsApply *a, const EsPointer *path, json_t *value,
			  int value_depth)
{
	EsPtrResult res;
	const char *last;
	size_t		index;
	EsEngineStatus status;

	if (path->ntokens == 0)
		return es_root_replace(a, value);
	status = es_depth_check(a, path, value_depth);
	if (status != ES_ENGINE_OK)
	{
		json_decref(value);
		return status;
	}
	es_ptr_resolve(a->root, path, path->ntokens, &res);
	if (res.fail != ES_PTR_FOUND)
	{
		json_decref(value);
		return es_ptr_fail(a, path, &res);
	}
	if (a->inverse &&
		es_log_op(a->inverse, "replace", NULL, path->text, res.value) != ES_ENGINE_OK)
	{
		json_decref(value);
		return es_nomem(a->err);
	}
	last = path->tok[path->ntokens - 1].s;
	if (json_is_object(res.at))
		return es_mut_obj_set(a, res.at, last, value);
	(void) es_ptr_index(last, &index);
	return es_mut_arr_set(a, res.at, index, value);
}

/*
 * es_ptr_is_prefix: true if the tokens of p are the first tokens of q.
 */
static bool
es_ptr_is_prefix(const EsPointer *p, const EsPointer *q)
{
	int			i;

	if (p->ntokens > q->ntokens)
		return false;
	for (i = 0; i < p->ntokens; i++)
		if (strcmp(p->tok[i].s, q->tok[i].s) != 0)
			return false;
	return true;
}

/*
 * es_op_move: RFC 6902 move: a remove at from, then an add at path of the
 * same value.
 */
EsEngineStatus
es_op_move(EsApply *a, const EsPointer *from, const EsPointer *path)
{
	EsPtrResult res;
	json_t	   *value;
	int			depth = 0;
	EsEngineStatus status;

	es_ptr_resolve(a->root, from, from->ntokens, &res);
	if (res.fail != ES_PTR_FOUND)
		return es_ptr_fail(a, from, &res);
	if (es_ptr_is_prefix(from, path))
	{
		if (from->ntokens == path->ntokens)
			return ES_ENGINE_OK;
		es_error_path(a->err, path->text);
		return es_error(a->err, ES_ENGINE_REJECTED,
						"cannot move \"%s\" into its own child \"%s\"",
						from->text, path->text);
	}
	value = json_incref(res.value);
	if (path->ntokens > from->ntokens)
		depth = es_depth(value, ES_JSON_MAX_DEPTH);
	status = es_op_remove(a, from);
	if (status != ES_ENGINE_OK)
	{
		json_decref(value);
		return status;
	}
	return es_op_add(a, path, value, depth);
}

/*
 * es_op_copy: RFC 6902 copy: an add at path of a deep copy of the value at
 * from.
 */
EsEngineStatus
es_op_copy(EsApply *a, const EsPointer *from, const EsPointer *path)
{
	EsPtrResult res;
	json_t	   *value;
	int			depth;

	es_ptr_resolve(a->root, from, from->ntokens, &res);
	if (res.fail != ES_PTR_FOUND)
		return es_ptr_fail(a, from, &res);
	value = es_copy(res.value, 0, &depth);
	if (value == NULL)
		return es_nomem(a->err);
	return es_op_add(a, path, value, depth);
}

/*
 * es_op_test: RFC 6902 test: the value at path equals value.
 */
EsEngineStatus
es_op_test(EsApply *a, const EsPointer *path, const json_t *value)
{
	EsPtrResult res;

	es_ptr_resolve(a->root, path, path->ntokens, &res);
	if (res.fail != ES_PTR_FOUND)
		return es_ptr_fail(a, path, &res);
	if (!es_equal(res.value, value, 0))
	{
		es_error_path(a->err, path->text);
		return es_error(a->err, ES_ENGINE_REJECTED,
						"test failed at \"%s\": the value is not the one expected",
						path->text);
	}
	return ES_ENGINE_OK;
}

/*
 * es_patch_member: member name of op, which must be a string if present;
 * NULL with an ES_ENGINE_INVALID error otherwise.
 */
static const char *
es_patch_member(json_t *op, const char *name, EsEngineError *err)
{
	json_t	   *v = json_object_get(op, name);

	if (v == NULL)
	{
		es_error(err, ES_ENGINE_INVALID, "missing member \"%s\"", name);
		return NULL;
	}
	if (!json_is_string(v))
	{
		es_error(err, ES_ENGINE_INVALID, "member \"%s\" must be a string, not %s",
				 name, es_type_article(v));
		return NULL;
	}
	return json_string_value(v);
}

/*
 * es_patch_step: applies one op of a plain patch.
 */
static EsEngineStatus
es_patch_step(EsApply *a, json_t *op)
{
	const char *name;
	const char *path_text;
	const char *from_text = NULL;
	EsPointer	path;
	EsPointer	from;
	json_t	   *value = NULL;
	EsEngineStatus status;
	bool		is_add,
				is_replace,
				is_test,
				is_move,
				is_copy;

	if (!json_is_object(op))
		return es_error(a->err, ES_ENGINE_INVALID,
						"a patch operation must be an object, not %s",
						es_type_article(op));
	name = es_patch_member(op, "op", a->err);
	if (name == NULL)
		return ES_ENGINE_INVALID;
	es_error_step(a->err, -1, name);
	is_add = strcmp(name, "add") == 0;
	is_replace = strcmp(name, "replace") == 0;
	is_test = strcmp(name, "test") == 0;
	is_move = strcmp(name, "move") == 0;
	is_copy = strcmp(name, "copy") == 0;
	if (!is_add && !is_replace && !is_test && !is_move && !is_copy &&
		strcmp(name, "remove") != 0)
		return es_error(a->err, ES_ENGINE_INVALID,
						"unrecognized patch operation \"%s\"", name);
	path_text = es_patch_member(op, "path", a->err);
	if (path_text == NULL)
		return ES_ENGINE_INVALID;
	es_error_path(a->err, path_text);
	if (is_move || is_copy)
	{
		from_text = es_patch_member(op, "from", a->err);
		if (from_text == NULL)
			return ES_ENGINE_INVALID;
	}
	if (is_add || is_replace || is_test)
	{
		value = json_object_get(op, "value");
		if (value == NULL)
			return es_error(a->err, ES_ENGINE_INVALID,
							"missing member \"value\"");
	}
	status = es_ptr_parse(path_text, &path, a->err);
	if (status != ES_ENGINE_OK)
		return status;
	if (from_text != NULL)
	{
		status = es_ptr_parse(from_text, &from, a->err);
		if (status != ES_ENGINE_OK)
		{
			es_error_path(a->err, from_text);
			es_ptr_free(&path);
			return status;
		}
	}
	if (is_add || is_replace)
	{
		int			depth;
		json_t	   *copy = es_copy(value, 0, &depth);

		if (copy == NULL)
			status = es_nomem(a->err);
		else if (is_add)
			status = es_op_add(a, &path, copy, depth);
		else
			status = es_op_replace(a, &path, copy, depth);
	}
	else if (is_test)
		status = es_op_test(a, &path, value);
	else if (is_move)
		status = es_op_move(a, &from, &path);
	else if (is_copy)
		status = es_op_copy(a, &from, &path);
	else
		status = es_op_remove(a, &path);
	es_ptr_free(&path);
	if (from_text != NULL)
		es_ptr_free(&from);
	return status;
}

/*
 * es_patch_run: applies every op of patch through a; on failure the error
 * names the op.  An op whose member no_inverse (if not NULL) is true logs
 * no inverse.  Does not roll back.
 */
static EsEngineStatus
es_patch_run(EsApply *a, const json_t *patch, const char *no_inverse)
{
	json_t	   *inverse = a->inverse;
	size_t		i;

	if (!json_is_array(patch))
		return es_error(a->err, ES_ENGINE_INVALID,
						"a patch must be an array, not %s",
						es_type_article(patch));
	for (i = 0; i < json_array_size(patch); i++)
	{
		json_t	   *op = json_array_get(patch, i);
		EsEngineStatus status;

		es_error_clear(a->err);
		if (no_inverse != NULL &&
			json_is_true(json_object_get(op, no_inverse)))
			a->inverse = NULL;
		status = es_patch_step(a, op);
		a->inverse = inverse;
		if (status != ES_ENGINE_OK)
		{
			a->err->step = (i > (size_t) 0x7fffffff) ? -1 : (int) i;
			return status;
		}
	}
	return ES_ENGINE_OK;
}

/*
 * es_patch_apply: see engine.h.
 */
EsEngineStatus
es_patch_apply(EsJson *doc, const EsJson *patch, EsEngineError *err)
{
	EsEngineError work;
	EsApply		a;
	EsEngineStatus status;

	es_error_clear(&work);
	if (doc == NULL || patch == NULL)
	{
		if (err)
			*err = work;
		return es_error(err ? err : &work, ES_ENGINE_INVALID, "no document or no patch");
	}
	es_apply_init(&a, doc, &work);
	status = es_patch_run(&a, patch, NULL);
	if (status != ES_ENGINE_OK && !es_apply_rollback(&a))
		status = es_nomem(&work);
	es_apply_release(&a);
	if (status != ES_ENGINE_OK && err)
		*err = work;
	return status;
}

/*
 * es_patch_inverse: see engine.h.
 */
EsEngineStatus
es_patch_inverse(const EsJson *doc_before, const EsJson *patch,
				 EsJson **inverse, EsEngineError *err)
{
	return es_patch_inverse_except(doc_before, patch, NULL, inverse, err);
}

/*
 * es_patch_inverse_except: es_patch_inverse, leaving out the inverse of
 * every op whose member no_inverse (if not NULL) is true.
 */
EsEngineStatus
es_patch_inverse_except(const EsJson *doc_before, const EsJson *patch,
						const char *no_inverse, EsJson **inverse,
						EsEngineError *err)
{
	EsEngineError work;
	EsApply		a;
	EsEngineStatus status;
	json_t	   *copy;
	json_t	   *result = NULL;

	es_error_clear(&work);
	*inverse = NULL;
	if (doc_before == NULL || patch == NULL)
	{
		if (err)
			*err = work;
		return es_error(err ? err : &work, ES_ENGINE_INVALID, "no document or no patch");
	}
	copy = es_copy(doc_before, 0, NULL);
	if (copy == NULL)
	{
		status = es_nomem(&work);
		goto done;
	}
	es_apply_init(&a, copy, &work);
	a.inverse = json_array();
	if (a.inverse == NULL)
		status = es_nomem(&work);
	else
		status = es_patch_run(&a, patch, no_inverse);
	if (status == ES_ENGINE_OK)
	{
		size_t		n = json_array_size(a.inverse);

		result = json_array();
		if (result == NULL)
			status = es_nomem(&work);
		while (result != NULL && n > 0)
		{
			if (json_array_append(result, json_array_get(a.inverse, --n)) != 0)
			{
				json_decref(result);
				result = NULL;
				status = es_nomem(&work);
			}
		}
	}
	es_apply_release(&a);
	json_decref(copy);
done:
	if (status != ES_ENGINE_OK)
	{
		if (err)
			*err = work;
		return status;
	}
	*inverse = result;
	return ES_ENGINE_OK;
}
