/*-------------------------------------------------------------------------
 *
 * event_doc.c
 *	  The event document that effects refer to, and the allocator of
 *	  documents.  Part of the state engine: no PostgreSQL header.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/event_doc.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "engine_int.h"

/*
 * es_json_set_allocator: see engine.h.
 */
void
es_json_set_allocator(void *(*alloc) (size_t), void (*release) (void *))
{
	json_set_alloc_funcs(alloc, release);
}

/*
 * set_text: sets member key of obj to the string s, or to null if s is
 * NULL.  Returns false when out of memory.
 */
static bool
set_text(json_t *obj, const char *key, const char *s)
{
	json_t	   *v = s ? json_string(s) : json_null();

	return v != NULL && json_object_set_new(obj, key, v) == 0;
}

/*
 * es_event_new: see engine.h.
 */
EsJson *
es_event_new(const EsEventFields *fields, EsEngineError *err)
{
	EsEngineError work;
	json_t	   *event;
	json_t	   *data;
	json_t	   *metadata;

	es_error_clear(&work);
	event = es_new_object();
	if (event == NULL)
		goto nomem;

	data = es_json_parse(fields->data, fields->data_len, &work);
	if (data == NULL)
		goto fail;
	if (json_object_set_new(event, "data", data) != 0)
		goto nomem;

	if (fields->metadata != NULL)
	{
		metadata = es_json_parse(fields->metadata, fields->metadata_len, &work);
		if (metadata == NULL)
			goto fail;
	}
	else
		metadata = json_null();
	if (metadata == NULL || json_object_set_new(event, "metadata", metadata) != 0)
		goto nomem;

	if (json_object_set_new(event, "sequence_number",
							json_integer((json_int_t) fields->sequence_number)) != 0 ||
		!set_text(event, "created_at", fields->created_at) ||
		!set_text(event, "user_id", fields->user_id) ||
		!set_text(event, "username", fields->username) ||
		!set_text(event, "event_type", fields->event_type))
		goto nomem;
	return event;

nomem:
	es_nomem(&work);
fail:
	json_decref(event);
	if (err)
		*err = work;
	return NULL;
}

/*
 * es_event_stamp: see engine.h.
 */
EsEngineStatus
es_event_stamp(EsJson *event, long long sequence_number, const char *created_at,
			   EsEngineError *err)
{
	json_t	   *seq = json_integer((json_int_t) sequence_number);

	if (seq == NULL || json_object_set_new(event, "sequence_number", seq) != 0 ||
		!set_text(event, "created_at", created_at))
		return es_nomem(err);
	return ES_ENGINE_OK;
}

/*
 * es_event_data: see engine.h.
 */
const EsJson *
es_event_data(const EsJson *event)
{
	return json_object_get(event, "data");
}
