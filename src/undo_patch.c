/*-------------------------------------------------------------------------
 *
 * undo_patch.c
 *	  The patch that undoes a change, and whether a later change conflicts
 *	  with it.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/undo_patch.c
 *
 *-------------------------------------------------------------------------
 *
 * A change is known by its concrete RFC 6902 patch (what an effect did,
 * es_effect_apply_trace) and, for an effect, the exists and absent steps
 * that held (what it relied on).  Undoing it later is safe only if no
 * change since wrote where the undo writes, or relied on the existence of
 * something the undo removes or creates.
 *
 * Paths are compared token by token.  A path through an array is cut at
 * its first index (or "-"): inserting or removing an element shifts every
 * later element, so a change anywhere in an array is taken to touch the
 * whole array.  A member whose name is a number counts as an index here
 * too; that only makes the check more cautious.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/*
 * es_undo_patch: see engine.h.
 */
EsEngineStatus
es_undo_patch(const EsJson *doc_before, const EsJson *patch, EsJson **undo,
			  EsEngineError *err)
{
	return es_patch_inverse_except(doc_before, patch, ES_SCAFFOLD_MEMBER,
								   undo, err);
}

/* a path as compared here: its tokens up to its first array index */
typedef struct EsSpan
{
	EsPointer	ptr;
	int			len;
} EsSpan;

static EsEngineStatus
es_span_parse(const char *text, EsSpan *span, EsEngineError *err)
{
	EsEngineStatus status = es_ptr_parse(text, &span->ptr, err);
	size_t		index;

	if (status != ES_ENGINE_OK)
		return status;
	for (span->len = 0; span->len < span->ptr.ntokens; span->len++)
	{
		const char *tok = span->ptr.tok[span->len].s;

		if (strcmp(tok, "-") == 0 || es_ptr_index(tok, &index))
			break;
	}
	return ES_ENGINE_OK;
}

/* is a a prefix of b (or equal)? */
static bool
es_span_prefix(const EsSpan *a, const EsSpan *b)
{
	int			i;

	if (a->len > b->len)
		return false;
	for (i = 0; i < a->len; i++)
		if (strcmp(a->ptr.tok[i].s, b->ptr.tok[i].s) != 0)
			return false;
	return true;
}

/*
 * es_op_kind: for an RFC 6902 op name, whether it has a "from"; false if
 * name is not one.
 */
static bool
es_op_kind(const char *name, bool *has_from)
{
	static const char *const names[] = {"add", "remove", "replace", "test",
	"move", "copy"};
	int			i;

	for (i = 0; i < (int) (sizeof(names) / sizeof(names[0])); i++)
	{
		if (strcmp(name, names[i]) == 0)
		{
			*has_from = (i >= 4);
			return true;
		}
	}
	return false;
}

/*
 * es_paths_of: the "path" (and "from") members of the ops of a patch
 * (reads: the reads of an effect, whose ops are exists and absent), in
 * spans[], starting at spans[*n]; *n is advanced.  spans must have room for
 * twice the number of ops.  is_read[i] (if not NULL) tells a "from" of copy
 * and the path of test, which only read.
 */
static EsEngineStatus
es_paths_of(const json_t *patch, bool reads, EsSpan *spans, bool *is_read,
			size_t *n, EsEngineError *err)
{
	size_t		i;

	for (i = 0; i < json_array_size(patch); i++)
	{
		const json_t *op = json_array_get(patch, i);
		const char *name = json_string_value(json_object_get(op, "op"));
		const char *path = json_string_value(json_object_get(op, "path"));
		const json_t *jfrom = json_object_get(op, "from");
		const char *from = json_string_value(jfrom);
		bool		has_from = false;
		EsEngineStatus status;

		if (!json_is_object(op) || name == NULL || path == NULL ||
			(jfrom != NULL && from == NULL) ||
			(reads ? from != NULL :
			 !es_op_kind(name, &has_from) || has_from != (from != NULL)))
			return es_error(err, ES_ENGINE_INVALID,
							"element %zu of the patch is not an operation", i);
		status = es_span_parse(path, &spans[*n], err);
		if (status != ES_ENGINE_OK)
			return status;
		if (is_read)
			is_read[*n] = (strcmp(name, "test") == 0);
		(*n)++;
		if (from != NULL)
		{
			status = es_span_parse(from, &spans[*n], err);
			if (status != ES_ENGINE_OK)
				return status;
			if (is_read)
				is_read[*n] = (strcmp(name, "copy") == 0);
			(*n)++;
		}
	}
	return ES_ENGINE_OK;
}

static void
es_spans_free(EsSpan *spans, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		es_ptr_free(&spans[i].ptr);
	free(spans);
}

/*
 * es_patch_conflict: see engine.h.
 */
EsEngineStatus
es_patch_conflict(const EsJson *undo, const EsJson *later_patch,
				  const EsJson *later_reads, EsEngineError *err)
{
	EsEngineError work;
	EsEngineStatus status = ES_ENGINE_OK;
	EsSpan	   *mine = NULL;
	EsSpan	   *theirs = NULL;
	bool	   *theirs_read = NULL;
	size_t		nmine = 0;
	size_t		ntheirs = 0;
	size_t		nreads = 0;
	size_t		cap;
	size_t		i;
	size_t		j;

	es_error_clear(&work);
	if (!json_is_array(undo) || !json_is_array(later_patch) ||
		(later_reads != NULL && !json_is_array(later_reads)))
	{
		status = es_error(&work, ES_ENGINE_INVALID, "a patch must be an array");
		goto done;
	}
	mine = malloc(sizeof(EsSpan) * (2 * json_array_size(undo) + 1));
	cap = 2 * json_array_size(later_patch) +
		(later_reads ? json_array_size(later_reads) : 0) + 1;
	theirs = malloc(sizeof(EsSpan) * cap);
	theirs_read = malloc(sizeof(bool) * cap);
	if (mine == NULL || theirs == NULL || theirs_read == NULL)
	{
		status = es_nomem(&work);
		goto done;
	}
	status = es_paths_of(undo, false, mine, NULL, &nmine, &work);
	if (status == ES_ENGINE_OK)
		status = es_paths_of(later_patch, false, theirs, theirs_read,
							 &ntheirs, &work);
	if (status == ES_ENGINE_OK && later_reads != NULL)
	{
		nreads = ntheirs;
		status = es_paths_of(later_reads, true, theirs, NULL, &ntheirs,
							 &work);
		nreads = ntheirs - nreads;
	}
	if (status != ES_ENGINE_OK)
		goto done;

	for (j = 0; j < ntheirs && status == ES_ENGINE_OK; j++)
	{
		/* the reads of the effect come last: they depend on existence */
		bool		existence = (j >= ntheirs - nreads);

		for (i = 0; i < nmine; i++)
		{
			bool		overlap;

			if (existence)
				overlap = es_span_prefix(&mine[i], &theirs[j]);
			else
				overlap = es_span_prefix(&mine[i], &theirs[j]) ||
					es_span_prefix(&theirs[j], &mine[i]);
			if (!overlap)
				continue;
			es_error_path(&work, theirs[j].ptr.text);
			status = es_error(&work, ES_ENGINE_REJECTED,
							  existence || theirs_read[j] ?
							  "it relied on \"%s\", which the undo changes at \"%s\"" :
							  "it changed \"%s\", which the undo changes at \"%s\"",
							  theirs[j].ptr.text, mine[i].ptr.text);
			break;
		}
	}

done:
	if (mine)
		es_spans_free(mine, nmine);
	if (theirs)
		es_spans_free(theirs, ntheirs);
	free(theirs_read);
	if (status != ES_ENGINE_OK && err)
		*err = work;
	return status;
}
