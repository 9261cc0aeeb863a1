/*-------------------------------------------------------------------------
 *
 * engine_jsonb.c
 *	  The state engine seen from PostgreSQL: its allocator, conversions
 *	  between jsonb and the engine's documents, and its errors.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/engine_jsonb.c
 *
 *-------------------------------------------------------------------------
 *
 * Memory.  Every node of every engine document is palloc'd in
 * CurrentMemoryContext (es_engine_init installs the allocator), so a
 * document belongs to the memory context that was current when each of its
 * nodes was made, and an error that unwinds past a call into the engine
 * leaks nothing: the context goes away.  The allocator never throws (it
 * returns NULL, which the engine reports as ES_ENGINE_NOMEM), so the engine
 * itself is never left half-way by a longjmp.  A document that lives longer
 * than a call (a cached state, a definition) has a context of its own, and
 * whoever changes it switches to that context first.
 *
 * Conversions go through JSON text: jansson cannot be included in a file
 * that includes PostgreSQL's fmgr headers, and the text is what both sides
 * parse fastest.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "eventsourcing.h"

/*
 * The engine's allocator: CurrentMemoryContext, NULL instead of an error.
 */
static void *
engine_alloc(size_t size)
{
	return MemoryContextAllocExtended(CurrentMemoryContext, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void
engine_free(void *pointer)
{
	if (pointer != NULL)
		pfree(pointer);
}

/*
 * es_engine_init
 *		Install the allocator; called by _PG_init, before any document.
 */
void
es_engine_init(void)
{
	es_json_set_allocator(engine_alloc, engine_free);
}

/*
 * es_engine_out_of_memory
 *		Report ES_ENGINE_NOMEM.
 */
void
es_engine_out_of_memory(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("The state engine could not allocate memory.")));
}

/*
 * Report the failure of a call that returns a document rather than a
 * status, if it was for want of memory (engine.h: es_nomem's message).
 */
static void
check_out_of_memory(const EsEngineError *err)
{
	if (strcmp(err->message, "out of memory") == 0)
		es_engine_out_of_memory();
}

/*
 * es_engine_detail
 *		The errdetail text of an engine failure: which step, which path,
 *		why.
 */
char *
es_engine_detail(const EsEngineError *err)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (err->step >= 0 && err->op[0] != '\0')
		appendStringInfo(&buf, "Step %d (%s) of the effect failed", err->step,
						 err->op);
	else if (err->step >= 0)
		appendStringInfo(&buf, "Step %d of the effect failed", err->step);
	else
		appendStringInfoString(&buf, "Failed");
	if (err->path[0] != '\0')
		appendStringInfo(&buf, " at path \"%s\"", err->path);
	appendStringInfo(&buf, ": %s.", err->message);
	return buf.data;
}

/*
 * es_engine_message
 *		An engine message as a sentence, for an errdetail: capitalized, with
 *		a final period.
 */
char *
es_engine_message(const EsEngineError *err)
{
	char	   *text = psprintf("%s.", err->message);

	if (text[0] >= 'a' && text[0] <= 'z')
		text[0] += 'A' - 'a';
	return text;
}

/*
 * es_jsonb_to_engine
 *		The engine document of a jsonb value, in CurrentMemoryContext.
 *
 * NULL, with the reason in err, if the value is beyond the engine's limits
 * (nested deeper than ES_JSON_MAX_DEPTH, a number that does not fit in a
 * 64-bit integer or a double).  Out of memory is reported here.
 */
EsJson *
es_jsonb_to_engine(Jsonb *jb, EsEngineError *err)
{
	StringInfoData text;
	EsJson	   *doc;

	initStringInfo(&text);
	(void) JsonbToCString(&text, &jb->root, VARSIZE(jb));
	doc = es_json_parse(text.data, text.len, err);
	pfree(text.data);
	if (doc == NULL)
		check_out_of_memory(err);
	return doc;
}

/*
 * es_engine_to_jsonb
 *		The jsonb value of an engine document, palloc'd.
 */
Jsonb *
es_engine_to_jsonb(const EsJson *doc)
{
	char	   *text;
	char	   *copy;
	size_t		len;

	text = es_json_dump(doc, &len);
	if (text == NULL)
		es_engine_out_of_memory();
	/* jsonb_in may throw: keep no malloc'd memory across it */
	copy = palloc_extended(len + 1, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (copy != NULL)
		memcpy(copy, text, len + 1);
	free(text);
	if (copy == NULL)
		es_engine_out_of_memory();
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(copy)));
}

/*
 * es_engine_event
 *		The event document that effects refer to, from the columns of an
 *		es.events row, in CurrentMemoryContext.  A null sequence number or
 *		created_at (an event not yet numbered) becomes 0 or null, until
 *		es_event_stamp.
 *
 * NULL, with the reason in err, if data or metadata is beyond the engine's
 * limits.
 */
EsJson *
es_engine_event(const Datum *values, const bool *isnull, EsEngineError *err)
{
	StringInfoData data;
	StringInfoData metadata;
	char		created_at[ES_TIMESTAMP_BUFLEN];
	EsEventFields fields;
	EsJson	   *event;
	Jsonb	   *jb;

	initStringInfo(&data);
	jb = DatumGetJsonbP(values[Anum_es_events_data - 1]);
	(void) JsonbToCString(&data, &jb->root, VARSIZE(jb));
	fields.data = data.data;
	fields.data_len = data.len;

	fields.metadata = NULL;
	fields.metadata_len = 0;
	if (!isnull[Anum_es_events_metadata - 1])
	{
		initStringInfo(&metadata);
		jb = DatumGetJsonbP(values[Anum_es_events_metadata - 1]);
		(void) JsonbToCString(&metadata, &jb->root, VARSIZE(jb));
		fields.metadata = metadata.data;
		fields.metadata_len = metadata.len;
	}

	/* an event being appended gets these once its stream is locked */
	fields.sequence_number = isnull[Anum_es_events_sequence_number - 1] ? 0 :
		DatumGetInt64(values[Anum_es_events_sequence_number - 1]);
	fields.created_at = NULL;
	if (!isnull[Anum_es_events_created_at - 1])
	{
		es_utc_timestamp(DatumGetTimestampTz(values[Anum_es_events_created_at - 1]),
						 created_at);
		fields.created_at = created_at;
	}
	fields.user_id = isnull[Anum_es_events_user_id - 1] ? NULL :
		TextDatumGetCString(values[Anum_es_events_user_id - 1]);
	fields.username = isnull[Anum_es_events_username - 1] ? NULL :
		TextDatumGetCString(values[Anum_es_events_username - 1]);
	fields.event_type = TextDatumGetCString(values[Anum_es_events_event_type - 1]);

	event = es_event_new(&fields, err);
	if (event == NULL)
		check_out_of_memory(err);
	return event;
}
