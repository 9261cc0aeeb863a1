/*-------------------------------------------------------------------------
 *
 * fuzz_effect.c
 *	  libFuzzer target for the state engine: effects applied to states.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_effect.c
 *
 *-------------------------------------------------------------------------
 *
 * The input is up to four JSON texts separated by "\n---\n": an effect, a
 * state, an event and a schema of the event data (missing parts default to
 * {}, a fixed event and a fixed schema).  Whatever the input, nothing may
 * crash, leak or hang, and these invariants must hold (abort() otherwise,
 * which libFuzzer reports as a crash):
 *
 *	 - an effect es_effect_check refuses never applies successfully;
 *	 - a failed application leaves the state equal to what it was;
 *	 - after a successful one, the concrete patch applied to the old state
 *	   gives the new state, es_effect_resolve gives the same patch, and the
 *	   inverse of the patch turns the new state back into the old one;
 *	 - es_json_dump and es_json_parse round-trip every document, and no
 *	   document shares a node with another (every node is referenced once);
 *	 - an effect that es_effect_check_schema refuses for what the schema
 *	   says (the effect and the schema themselves being valid) never
 *	   applies successfully to an event whose data passes the schema;
 *	 - es_event_new builds from the fields of the event (its data and
 *	   metadata written out as text) an event equal to it when the event
 *	   has exactly those fields, and the effect then applies the same way;
 *	 - the application is traced (es_effect_apply_trace): a failed one has
 *	   no reads; a successful one has one read per exists or absent step,
 *	   each {"op": "exists" | "absent", "path": P};
 *	 - es_undo_patch of the concrete patch on the old state succeeds, and
 *	   the undo applied to the new state (es_patch_apply) gives the old
 *	   state, but for empty containers that may stay (es_fuzz_restored);
 *	 - es_patch_conflict finds that the concrete patch conflicts with its
 *	   own undo exactly when the undo is not empty, and an empty later
 *	   patch without reads conflicts with nothing.
 *
 * The effect text is also fed to es_patch_apply (as a plain patch), to
 * es_undo_patch and es_patch_conflict (as a patch, as reads), and to
 * es_schema_check/es_schema_validate (as a schema of the event data), and
 * the state text to es_event_new as event data, for robustness only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine.h"

#define ES_FUZZ_SEPARATOR "\n---\n"

/* a pointer that is not NULL, to see that a function sets its output */
static char es_fuzz_target;
#define NOT_SET ((EsJson *) (void *) &es_fuzz_target)

static const char es_fuzz_default_event[] =
"{\"data\": {\"moduleId\": \"m1\", \"module\": {\"type\": \"task\"}, "
"\"position\": {\"x\": 1, \"y\": 2}, \"i\": 0}, \"metadata\": null, "
"\"sequence_number\": 1, \"created_at\": \"2026-01-19T12:00:00Z\", "
"\"user_id\": \"1\", \"username\": \"alice\", \"event_type\": \"module_add\"}";

/* a closed schema that the data of the default event passes */
static const char es_fuzz_default_schema[] =
"{\"type\": \"object\", \"properties\": {\"moduleId\": {\"type\": \"string\"}, "
"\"module\": {\"type\": \"object\", \"properties\": {\"type\": {\"enum\": [\"task\", \"block\"]}}}, "
"\"position\": {\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\"}, "
"\"y\": {\"type\": \"number\"}}, \"additionalProperties\": false}, "
"\"i\": {\"type\": [\"integer\", \"null\"]}, \"l\": {\"type\": \"array\", \"items\": {\"type\": \"boolean\"}}}, "
"\"additionalProperties\": false}";

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * es_fuzz_find: the first occurrence of the separator in [p, end), or NULL.
 */
static const char *
es_fuzz_find(const char *p, const char *end)
{
	size_t		n = strlen(ES_FUZZ_SEPARATOR);

	while (p + n <= end)
	{
		if (memcmp(p, ES_FUZZ_SEPARATOR, n) == 0)
			return p;
		p++;
	}
	return NULL;
}

/*
 * es_fuzz_tree: aborts unless every node of v is referenced once: the
 * engine never shares a node between two documents or two places of one
 * (true, false and null are jansson's constants).
 */
static void
es_fuzz_tree(const json_t *v)
{
	if (v == NULL)
		abort();
	if (json_is_true(v) || json_is_false(v) || json_is_null(v))
		return;
	if (v->refcount != 1)
		abort();
	if (json_is_object(v))
	{
		const char *key;
		json_t	   *member;

		json_object_foreach((json_t *) v, key, member)
		{
			es_fuzz_tree(member);
		}
	}
	else if (json_is_array(v))
	{
		size_t		i;

		for (i = 0; i < json_array_size(v); i++)
			es_fuzz_tree(json_array_get(v, i));
	}
}

/*
 * es_fuzz_round_trip: dump then parse doc; must give an equal document.
 */
static void
es_fuzz_round_trip(const EsJson *doc)
{
	size_t		len;
	char	   *text = es_json_dump(doc, &len);
	EsJson	   *back;

	if (text == NULL)
		abort();
	back = es_json_parse(text, len, NULL);
	if (back == NULL || !es_json_equal(doc, back))
		abort();
	es_json_free(back);
	free(text);
}

/*
 * es_fuzz_check_success: the invariants of a successful application of
 * effect to before giving after, with the concrete patch.
 */
static void
es_fuzz_check_success(const EsJson *before, const EsJson *after,
					  const EsJson *effect, const EsJson *event,
					  const EsJson *patch)
{
	EsJson	   *doc = es_json_copy(before);
	EsJson	   *inverse = NULL;
	EsJson	   *resolved = NULL;
	EsEngineError err;

	if (doc == NULL || patch == NULL)
		abort();
	if (es_patch_apply(doc, patch, &err) != ES_ENGINE_OK ||
		!es_json_equal(doc, after))
		abort();
	es_json_free(doc);
	if (es_effect_resolve(effect, event, before, &resolved, &err) != ES_ENGINE_OK ||
		!es_json_equal(resolved, patch))
		abort();
	es_json_free(resolved);
	if (es_patch_inverse(before, patch, &inverse, &err) != ES_ENGINE_OK)
		abort();
	doc = es_json_copy(after);
	if (es_patch_apply(doc, inverse, &err) != ES_ENGINE_OK ||
		!es_json_equal(doc, before))
		abort();
	es_fuzz_tree(doc);
	es_json_free(doc);
	es_fuzz_tree(inverse);
	es_fuzz_round_trip(inverse);
	es_json_free(inverse);
	es_fuzz_tree(patch);
	es_fuzz_tree(after);
	es_fuzz_round_trip(patch);
	es_fuzz_round_trip(after);
}

/*
 * es_fuzz_text: the compact text of v (malloc'd); NULL for NULL.
 */
static char *
es_fuzz_text(const json_t *v)
{
	char	   *text;

	if (v == NULL)
		return NULL;
	text = es_json_dump(v, NULL);
	if (text == NULL)
		abort();
	return text;
}

/*
 * es_fuzz_string: the string v, or NULL if v is not a string.
 */
static const char *
es_fuzz_string(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * es_fuzz_event_new: builds with es_event_new the event of the fields of
 * event (an object): it must succeed, and be equal to event when event has
 * exactly those fields of the right types.  Then effect must apply to a
 * copy of before with the built event exactly as it did with event (status
 * applied, result after).
 */
static void
es_fuzz_event_new(const EsJson *event, const EsJson *effect,
				  const EsJson *before, EsEngineStatus applied,
				  const EsJson *after)
{
	json_t	   *ev = (json_t *) event;
	json_t	   *data = json_object_get(ev, "data");
	json_t	   *meta = json_object_get(ev, "metadata");
	json_t	   *seq = json_object_get(ev, "sequence_number");
	EsEventFields f;
	EsEngineError err;
	EsJson	   *built;
	char	   *data_text;
	char	   *meta_text;

	if (data == NULL)
		return;
	data_text = es_fuzz_text(data);
	meta_text = json_is_null(meta) ? NULL : es_fuzz_text(meta);
	f.data = data_text;
	f.data_len = strlen(data_text);
	f.metadata = meta_text;
	f.metadata_len = meta_text ? strlen(meta_text) : 0;
	f.sequence_number = json_is_integer(seq) ? (long long) json_integer_value(seq) : 0;
	f.created_at = es_fuzz_string(json_object_get(ev, "created_at"));
	f.user_id = es_fuzz_string(json_object_get(ev, "user_id"));
	f.username = es_fuzz_string(json_object_get(ev, "username"));
	f.event_type = es_fuzz_string(json_object_get(ev, "event_type"));
	if (f.event_type == NULL)
		f.event_type = "x";
	built = es_event_new(&f, &err);
	free(data_text);
	free(meta_text);
	if (built == NULL)
		abort();
	es_fuzz_tree(built);
	es_fuzz_round_trip(built);
	if (es_json_equal(built, event))
	{
		EsJson	   *doc = es_json_copy(before);
		EsEngineStatus st;

		if (doc == NULL)
			abort();
		st = es_effect_apply(doc, effect, built, &err);
		if (st != applied || !es_json_equal(doc, after))
			abort();
		es_json_free(doc);
	}
	else if (json_object_size(ev) == 7 && meta != NULL && json_is_integer(seq) &&
			 (json_is_null(json_object_get(ev, "created_at")) ||
			  json_is_string(json_object_get(ev, "created_at"))) &&
			 json_is_string(json_object_get(ev, "event_type")) &&
			 (json_is_null(json_object_get(ev, "user_id")) ||
			  json_is_string(json_object_get(ev, "user_id"))) &&
			 (json_is_null(json_object_get(ev, "username")) ||
			  json_is_string(json_object_get(ev, "username"))))
	{
		/* the event has exactly the fields: es_event_new must give it back */
		abort();
	}
	es_json_free(built);
}

/*
 * es_fuzz_schema: es_effect_check_schema of effect against schema, and its
 * invariant: a refusal for what the schema says means that the effect
 * cannot apply to data valid against the schema (applied is how the effect
 * applied to event).
 */
static void
es_fuzz_schema(const EsJson *effect, const EsJson *schema,
			   const EsJson *event, EsEngineStatus applied)
{
	EsEngineError err;
	EsEngineStatus st = es_effect_check_schema(effect, schema, &err);
	json_t	   *data = json_object_get((json_t *) event, "data");

	if (st == ES_ENGINE_NOMEM)
		abort();
	if (st != ES_ENGINE_OK && strlen(err.message) >= sizeof(err.message))
		abort();
	if (st == ES_ENGINE_OK || data == NULL ||
		es_effect_check(effect, NULL) != ES_ENGINE_OK ||
		es_schema_check(schema, NULL) != ES_ENGINE_OK)
		return;
	/* refused for what the schema says */
	if (applied == ES_ENGINE_OK &&
		es_schema_validate(schema, data, NULL) == ES_ENGINE_OK)
		abort();
}

/*
 * es_fuzz_check_error: the status of a call that makes no document from
 * parsed text: never out of memory, and a message that fits.
 */
static void
es_fuzz_check_error(EsEngineStatus st, const EsEngineError *err)
{
	if (st == ES_ENGINE_NOMEM)
		abort();
	if (st != ES_ENGINE_OK &&
		(strlen(err->message) >= sizeof(err->message) ||
		 strlen(err->path) >= sizeof(err->path) ||
		 strlen(err->op) >= sizeof(err->op)))
		abort();
}

/*
 * es_fuzz_check_reads: the reads of a successful application of effect:
 * one {"op", "path"} per exists or absent step, in order.
 */
static void
es_fuzz_check_reads(const EsJson *effect, const EsJson *reads)
{
	size_t		i;
	size_t		n = 0;

	if (reads == NULL || !json_is_array((json_t *) reads))
		abort();
	es_fuzz_tree(reads);
	for (i = 0; i < json_array_size(effect); i++)
	{
		const char *op = es_fuzz_string(json_object_get(json_array_get(effect, i), "op"));
		json_t	   *read;
		const char *rop;

		if (op == NULL || (strcmp(op, "exists") != 0 && strcmp(op, "absent") != 0))
			continue;
		read = json_array_get(reads, n++);
		rop = es_fuzz_string(json_object_get(read, "op"));
		if (rop == NULL || strcmp(rop, op) != 0 || json_object_size(read) != 2 ||
			!json_is_string(json_object_get(read, "path")))
			abort();
	}
	if (n != json_array_size(reads))
		abort();
	es_fuzz_round_trip(reads);
}

/*
 * es_fuzz_hollow: v is an empty container, or a container of hollow ones:
 * what may stay of the containers a patch added once it is undone.
 */
static bool
es_fuzz_hollow(const json_t *v)
{
	const char *key;
	json_t	   *member;
	size_t		i;

	if (json_is_object(v))
	{
		json_object_foreach((json_t *) v, key, member)
		{
			if (!es_fuzz_hollow(member))
				return false;
		}
		return true;
	}
	if (json_is_array(v))
	{
		for (i = 0; i < json_array_size(v); i++)
			if (!es_fuzz_hollow(json_array_get(v, i)))
				return false;
		return true;
	}
	return false;
}

/*
 * es_fuzz_restored: doc is before, but for hollow values it may have in
 * addition: object members, and array elements (matched in order).
 */
static bool
es_fuzz_restored(const json_t *doc, const json_t *before)
{
	if (json_is_object(doc) && json_is_object(before))
	{
		const char *key;
		json_t	   *member;

		json_object_foreach((json_t *) before, key, member)
		{
			json_t	   *d = json_object_get(doc, key);

			if (d == NULL || !es_fuzz_restored(d, member))
				return false;
		}
		json_object_foreach((json_t *) doc, key, member)
		{
			if (json_object_get(before, key) == NULL && !es_fuzz_hollow(member))
				return false;
		}
		return true;
	}
	if (json_is_array(doc) && json_is_array(before))
	{
		size_t		i;
		size_t		j = 0;

		for (i = 0; i < json_array_size(doc); i++)
		{
			json_t	   *d = json_array_get(doc, i);

			if (j < json_array_size(before) &&
				es_fuzz_restored(d, json_array_get(before, j)))
				j++;
			else if (!es_fuzz_hollow(d))
				return false;
		}
		return j == json_array_size(before);
	}
	return es_json_equal(doc, before);
}

/*
 * es_fuzz_check_undo: the undo of the concrete patch of a successful
 * application (before to after, with its reads): it exists, applied to
 * after it gives before (but for hollow containers), and it conflicts with
 * the patch exactly when it is not empty.
 */
static void
es_fuzz_check_undo(const EsJson *before, const EsJson *after,
				   const EsJson *patch, const EsJson *reads)
{
	EsJson	   *undo = NULL;
	EsJson	   *doc;
	EsJson	   *empty;
	EsEngineError err;
	EsEngineStatus st;

	if (es_undo_patch(before, patch, &undo, &err) != ES_ENGINE_OK || undo == NULL)
		abort();
	es_fuzz_tree(undo);
	es_fuzz_round_trip(undo);
	doc = es_json_copy(after);
	if (doc == NULL)
		abort();
	if (es_patch_apply(doc, undo, &err) != ES_ENGINE_OK ||
		!es_fuzz_restored(doc, before))
		abort();
	es_fuzz_tree(doc);
	es_json_free(doc);
	st = es_patch_conflict(undo, patch, NULL, &err);
	es_fuzz_check_error(st, &err);
	if (st != (json_array_size(undo) > 0 ? ES_ENGINE_REJECTED : ES_ENGINE_OK))
		abort();
	st = es_patch_conflict(undo, patch, reads, &err);
	es_fuzz_check_error(st, &err);
	if (st != (json_array_size(undo) > 0 ? ES_ENGINE_REJECTED : ES_ENGINE_OK))
		abort();
	empty = json_array();
	if (empty == NULL)
		abort();
	st = es_patch_conflict(undo, empty, reads, &err);
	es_fuzz_check_error(st, &err);
	if (st == ES_ENGINE_INVALID)
		abort();
	if (es_patch_conflict(undo, empty, NULL, &err) != ES_ENGINE_OK)
		abort();
	json_decref(empty);
	es_json_free(undo);
}

/*
 * LLVMFuzzerTestOneInput: one input; see the header comment.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	const char *end = text + size;
	size_t		seplen = strlen(ES_FUZZ_SEPARATOR);
	const char *sep1 = es_fuzz_find(text, end);
	const char *sep2 = sep1 ? es_fuzz_find(sep1 + seplen, end) : NULL;
	const char *sep3 = sep2 ? es_fuzz_find(sep2 + seplen, end) : NULL;
	const char *state_end = sep2 ? sep2 : end;
	EsJson	   *effect;
	EsJson	   *state;
	EsJson	   *event;
	EsJson	   *schema;
	EsJson	   *before;
	EsJson	   *patch = NULL;
	EsJson	   *reads = NULL;
	EsJson	   *eventdata = NULL;
	EsEngineError err;
	EsEngineStatus checked;
	EsEngineStatus applied;

	effect = es_json_parse(text, sep1 ? (size_t) (sep1 - text) : size, &err);
	if (effect == NULL)
		return 0;
	if (sep1)
		state = es_json_parse(sep1 + seplen,
							  (size_t) (state_end - (sep1 + seplen)), &err);
	else
		state = es_json_empty_object();
	if (sep2)
		event = es_json_parse(sep2 + seplen,
							  (size_t) ((sep3 ? sep3 : end) - (sep2 + seplen)),
							  &err);
	else
		event = es_json_parse(es_fuzz_default_event,
							  strlen(es_fuzz_default_event), &err);
	if (sep3)
		schema = es_json_parse(sep3 + seplen, (size_t) (end - (sep3 + seplen)),
							   &err);
	else
		schema = es_json_parse(es_fuzz_default_schema,
							   strlen(es_fuzz_default_schema), &err);

	/* the state text as event data: robustness of es_event_new */
	if (sep1)
	{
		EsEventFields f;
		EsJson	   *ev;

		memset(&f, 0, sizeof(f));
		f.data = sep1 + seplen;
		f.data_len = (size_t) (state_end - (sep1 + seplen));
		f.metadata = text;
		f.metadata_len = (size_t) (sep1 - text);
		f.event_type = "x";
		memset(&err, 0, sizeof(err));
		ev = es_event_new(&f, &err);
		if (ev == NULL && (state != NULL || err.message[0] == '\0'))
			abort();
		es_json_free(ev);
	}

	if (state == NULL || event == NULL)
		goto done;
	es_fuzz_round_trip(effect);
	es_fuzz_round_trip(state);

	before = es_json_copy(state);
	if (before == NULL)
		abort();
	checked = es_effect_check(effect, &err);
	applied = es_effect_apply_trace(state, effect, event, &patch, &reads, &err);
	if (checked != ES_ENGINE_OK && applied == ES_ENGINE_OK)
		abort();
	if (applied == ES_ENGINE_NOMEM)
		abort();
	es_fuzz_tree(state);
	es_fuzz_tree(effect);
	es_fuzz_tree(event);
	if (applied != ES_ENGINE_OK)
	{
		if (patch != NULL || reads != NULL || !es_json_equal(state, before))
			abort();
		if (strlen(err.message) >= sizeof(err.message) ||
			strlen(err.path) >= sizeof(err.path) ||
			strlen(err.op) >= sizeof(err.op))
			abort();
	}
	else
	{
		es_fuzz_check_success(before, state, effect, event, patch);
		es_fuzz_check_reads(effect, reads);
		es_fuzz_check_undo(before, state, patch, reads);
		/* the trace of es_effect_apply_resolve is the same patch */
		{
			EsJson	   *doc = es_json_copy(before);
			EsJson	   *p2 = NULL;

			if (doc == NULL ||
				es_effect_apply_resolve(doc, effect, event, &p2, &err) != ES_ENGINE_OK ||
				!es_json_equal(p2, patch) || !es_json_equal(doc, state))
				abort();
			es_json_free(doc);
			es_json_free(p2);
		}
		/* the fuzzed effect as a later patch, the concrete one as an undo */
		{
			EsEngineStatus st = es_patch_conflict(patch, effect, reads, &err);

			es_fuzz_check_error(st, &err);
		}
	}
	es_json_free(patch);
	es_json_free(reads);

	/* the definition against the schema of the data */
	if (schema != NULL)
		es_fuzz_schema(effect, schema, event, applied);
	(void) es_effect_check_schema(effect, NULL, &err);

	/* the same event built from its fields */
	if (json_is_object((json_t *) event))
		es_fuzz_event_new(event, effect, before, applied, state);

	/* the same text as a plain patch, and as a schema: robustness only */
	{
		EsJson	   *doc = es_json_copy(before);
		EsEngineStatus st = es_patch_apply(doc, effect, &err);

		if (st != ES_ENGINE_OK && !es_json_equal(doc, before))
			abort();
		es_json_free(doc);
	}
	/* the same text as a patch to undo, and as patches and reads to
	 * compare: robustness only */
	{
		EsJson	   *undo = NOT_SET;
		EsEngineStatus st = es_undo_patch(before, effect, &undo, &err);

		es_fuzz_check_error(st, &err);
		if (st == ES_ENGINE_OK)
		{
			es_fuzz_tree(undo);
			es_json_free(undo);
		}
		else if (undo != NULL)
			abort();
		st = es_patch_conflict(effect, effect, NULL, &err);
		es_fuzz_check_error(st, &err);
		st = es_patch_conflict(effect, state, event, &err);
		es_fuzz_check_error(st, &err);
		st = es_patch_conflict(effect, effect, effect, &err);
		es_fuzz_check_error(st, &err);
		/* a patch with steps conflicts with itself, if it is well-formed */
		if (json_array_size(effect) > 0 &&
			es_patch_conflict(effect, effect, NULL, NULL) == ES_ENGINE_OK)
			abort();
	}
	eventdata = es_json_copy(event);
	(void) es_schema_check(effect, &err);
	(void) es_schema_validate(effect, eventdata, &err);
	es_json_free(eventdata);
	es_json_free(before);

done:
	es_json_free(effect);
	es_json_free(state);
	es_json_free(event);
	es_json_free(schema);
	return 0;
}
