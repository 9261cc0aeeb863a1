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
 * The input is three JSON texts separated by "\n---\n": an effect, a state
 * and an event (missing parts default to {} and a fixed event).  Whatever
 * the input, nothing may crash, leak or hang, and these invariants must
 * hold (abort() otherwise, which libFuzzer reports as a crash):
 *
 *	 - an effect es_effect_check refuses never applies successfully;
 *	 - a failed application leaves the state equal to what it was;
 *	 - after a successful one, the concrete patch applied to the old state
 *	   gives the new state, es_effect_resolve gives the same patch, and the
 *	   inverse of the patch turns the new state back into the old one;
 *	 - es_json_dump and es_json_parse round-trip every document.
 *
 * The effect text is also fed to es_patch_apply (as a plain patch) and to
 * es_schema_check/es_schema_validate (as a schema of the event data), for
 * robustness only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define ES_FUZZ_SEPARATOR "\n---\n"

static const char es_fuzz_default_event[] =
"{\"data\": {\"moduleId\": \"m1\", \"module\": {\"type\": \"task\"}, "
"\"position\": {\"x\": 1, \"y\": 2}, \"i\": 0}, \"metadata\": null, "
"\"sequence_number\": 1, \"created_at\": \"2026-01-19T12:00:00Z\", "
"\"user_id\": \"1\", \"username\": \"alice\", \"event_type\": \"module_add\"}";

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
	es_json_free(doc);
	es_fuzz_round_trip(inverse);
	es_json_free(inverse);
	es_fuzz_round_trip(patch);
	es_fuzz_round_trip(after);
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
	EsJson	   *effect;
	EsJson	   *state;
	EsJson	   *event;
	EsJson	   *before;
	EsJson	   *patch = NULL;
	EsJson	   *eventdata = NULL;
	EsEngineError err;
	EsEngineStatus checked;
	EsEngineStatus applied;

	effect = es_json_parse(text, sep1 ? (size_t) (sep1 - text) : size, &err);
	if (effect == NULL)
		return 0;
	if (sep1)
		state = es_json_parse(sep1 + seplen,
							  (size_t) ((sep2 ? sep2 : end) - (sep1 + seplen)),
							  &err);
	else
		state = es_json_empty_object();
	if (sep2)
		event = es_json_parse(sep2 + seplen, (size_t) (end - (sep2 + seplen)),
							  &err);
	else
		event = es_json_parse(es_fuzz_default_event,
							  strlen(es_fuzz_default_event), &err);
	if (state == NULL || event == NULL)
		goto done;
	es_fuzz_round_trip(effect);
	es_fuzz_round_trip(state);

	before = es_json_copy(state);
	if (before == NULL)
		abort();
	checked = es_effect_check(effect, &err);
	applied = es_effect_apply_resolve(state, effect, event, &patch, &err);
	if (checked != ES_ENGINE_OK && applied == ES_ENGINE_OK)
		abort();
	if (applied == ES_ENGINE_NOMEM)
		abort();
	if (applied != ES_ENGINE_OK)
	{
		if (patch != NULL || !es_json_equal(state, before))
			abort();
		if (strlen(err.message) >= sizeof(err.message) ||
			strlen(err.path) >= sizeof(err.path) ||
			strlen(err.op) >= sizeof(err.op))
			abort();
	}
	else
		es_fuzz_check_success(before, state, effect, event, patch);
	es_json_free(patch);

	/* the same text as a plain patch, and as a schema: robustness only */
	{
		EsJson	   *doc = es_json_copy(before);
		EsEngineStatus st = es_patch_apply(doc, effect, &err);

		if (st != ES_ENGINE_OK && !es_json_equal(doc, before))
			abort();
		es_json_free(doc);
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
	return 0;
}
