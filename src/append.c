/*-------------------------------------------------------------------------
 *
 * append.c
 *	  es_append and es_append_batch.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/append.c
 *
 *-------------------------------------------------------------------------
 *
 * Both functions INSERT into es.events as the calling user and let the
 * append trigger do the work (trigger.c), so that they and a plain INSERT
 * produce the same rows and the same notifications.  expected_version n is
 * passed to the trigger as the sequence number n + 1, which it checks under
 * the stream lock.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_append);
PG_FUNCTION_INFO_V1(es_append_batch);

/* number of parameters of the INSERT below */
#define ES_INSERT_NARGS 8

/*
 * One event to append, as parameters of the INSERT: stream, event_type,
 * data, metadata, sequence_number, event_id, user_id, username.
 */
typedef struct EsNewEvent
{
	Datum		values[ES_INSERT_NARGS];
	char		nulls[ES_INSERT_NARGS];
} EsNewEvent;

static SPIPlanPtr plan_insert_event = NULL;
static SPIPlanPtr plan_event_by_id = NULL;

/*
 * check_expected_version
 *		Validate expected_version; return the sequence number it implies.
 */
static int64
check_expected_version(int64 expected_version)
{
	if (expected_version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected version must not be negative"),
				 errdetail("The expected version was " INT64_FORMAT ".",
						   expected_version),
				 errhint("Use 0 for a stream that must not exist yet, NULL to append at any version.")));
	if (expected_version == PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("expected version is out of range")));
	return expected_version + 1;
}

/*
 * insert_event
 *		INSERT one event through the append trigger; return the stored row.
 *
 * Must be called inside SPI; the returned tuple lives in the SPI context.
 * When the trigger skips the row because its event_id is already stored
 * with the same content, the stored row is returned instead.
 */
static HeapTuple
insert_event(EsNewEvent *ev, TupleDesc *tupdesc)
{
	int			rc;

	if (plan_insert_event == NULL)
	{
		Oid			argtypes[ES_INSERT_NARGS] = {
			TEXTOID, TEXTOID, JSONBOID, JSONBOID, INT8OID, UUIDOID,
			TEXTOID, TEXTOID
		};
		SPIPlanPtr	plan;

		plan = SPI_prepare("INSERT INTO es.events"
						   " (stream, event_type, data, metadata,"
						   "  sequence_number, event_id, user_id, username)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
						   " RETURNING *",
						   ES_INSERT_NARGS, argtypes);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the insert of an event: %s",
				 SPI_result_code_string(SPI_result));
		plan_insert_event = plan;
	}

	rc = SPI_execute_plan(plan_insert_event, ev->values, ev->nulls, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));

	if (SPI_processed == 0)
	{
		/* the trigger found this event_id stored with the same content */
		if (plan_event_by_id == NULL)
		{
			Oid			argtypes[1] = {UUIDOID};
			SPIPlanPtr	plan;

			plan = SPI_prepare("SELECT * FROM es.events"
							   " WHERE event_id OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
			if (plan == NULL || SPI_keepplan(plan) != 0)
				elog(ERROR, "could not prepare the lookup of an event: %s",
					 SPI_result_code_string(SPI_result));
			plan_event_by_id = plan;
		}
		rc = SPI_execute_plan(plan_event_by_id, &ev->values[5], &ev->nulls[5],
							  false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "repeated event %s not found",
				 DatumGetCString(DirectFunctionCall1(uuid_out,
													 ev->values[5])));
	}

	*tupdesc = SPI_tuptable->tupdesc;
	return SPI_tuptable->vals[0];
}

/*
 * es_append
 *		Append one event to a stream; return the stored row.
 */
Datum
es_append(PG_FUNCTION_ARGS)
{
	EsNewEvent	ev;
	HeapTuple	tuple;
	TupleDesc	tupdesc;
	Datum		result;
	int			i;

	/* stream, event_type, data, metadata */
	for (i = 0; i < 4; i++)
	{
		ev.values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		ev.nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	/* expected_version becomes the sequence number */
	ev.nulls[4] = PG_ARGISNULL(4) ? 'n' : ' ';
	ev.values[4] = PG_ARGISNULL(4) ? (Datum) 0 :
		Int64GetDatum(check_expected_version(PG_GETARG_INT64(4)));
	/* event_id, user_id, username */
	for (i = 5; i < 8; i++)
	{
		ev.values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		ev.nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	tuple = insert_event(&ev, &tupdesc);
	result = PointerGetDatum(SPI_returntuple(tuple, tupdesc));
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	PG_RETURN_DATUM(result);
}

/*
 * Error context for es_append_batch: which element failed.
 */
static void
batch_error_callback(void *arg)
{
	int			i = *(int *) arg;

	errcontext("event %d of the batch", i + 1);
}

/*
 * Text value of an optional string member of a batch element.
 */
static void
batch_string_member(JsonbValue *v, const char *key, int index,
					Datum *value, char *null)
{
	if (v->type == jbvNull)
		return;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" of event %d of the batch must be a string",
						key, index + 1)));
	*value = PointerGetDatum(cstring_to_text_with_len(v->val.string.val,
													  v->val.string.len));
	*null = ' ';
}

/*
 * batch_element
 *		Turn element i of the batch array into an EsNewEvent.
 *
 * An element is an object with "event_type" and "data" and, optionally,
 * "metadata", "event_id", "user_id" and "username".  Any other key is
 * refused, so that a misspelt key is not silently dropped.
 */
static void
batch_element(Jsonb *events, int i, Datum stream, EsNewEvent *ev)
{
	JsonbValue *elem;
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		have_type = false;
	bool		have_data = false;

	elem = getIthJsonbValueFromContainer(&events->root, i);
	if (elem == NULL || elem->type != jbvBinary ||
		!JsonContainerIsObject(elem->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event %d of the batch must be a JSON object", i + 1)));

	memset(ev->nulls, 'n', sizeof(ev->nulls));
	ev->values[0] = stream;
	ev->nulls[0] = ' ';

	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);

		if (strcmp(key, "event_type") == 0)
		{
			batch_string_member(&v, key, i, &ev->values[1], &ev->nulls[1]);
			have_type = true;
		}
		else if (strcmp(key, "data") == 0 || strcmp(key, "metadata") == 0)
		{
			int			arg = (key[0] == 'd') ? 2 : 3;

			if (v.type != jbvNull)
			{
				ev->values[arg] = JsonbPGetDatum(JsonbValueToJsonb(&v));
				ev->nulls[arg] = ' ';
			}
			if (arg == 2)
				have_data = true;
		}
		else if (strcmp(key, "event_id") == 0)
		{
			Datum		id = (Datum) 0;
			char		isnull = 'n';

			batch_string_member(&v, key, i, &id, &isnull);
			if (isnull == ' ')
			{
				ev->values[5] = DirectFunctionCall1(uuid_in,
													CStringGetDatum(TextDatumGetCString(id)));
				ev->nulls[5] = ' ';
			}
		}
		else if (strcmp(key, "user_id") == 0)
			batch_string_member(&v, key, i, &ev->values[6], &ev->nulls[6]);
		else if (strcmp(key, "username") == 0)
			batch_string_member(&v, key, i, &ev->values[7], &ev->nulls[7]);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized key \"%s\" in event %d of the batch",
							key, i + 1),
					 errhint("The keys of an event are event_type, data, metadata, event_id, user_id and username.")));
	}

	if (!have_type)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event %d of the batch has no \"event_type\"", i + 1)));
	if (!have_data)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event %d of the batch has no \"data\"", i + 1)));
}

/*
 * es_append_batch
 *		Append a JSON array of events to one stream, all or nothing.
 *
 * With expected_version n, the first event is appended as event n + 1,
 * checked by the trigger like a single append; from then on this
 * transaction holds the stream lock, so the others follow it without a
 * gap.  (An element that repeats a stored event_id appends nothing, which
 * is why only the first one carries the check.)  The batch runs in the
 * caller's transaction, so an error in any element stores none of them.
 */
Datum
es_append_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *events;
	int			count;
	int			i = 0;
	bool		have_expected = !PG_ARGISNULL(2);
	int64		next_sequence = 0;
	ErrorContextCallback errcallback;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("events must not be null")));
	events = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array"),
				 errhint("Pass an array like [{\"event_type\": \"module_add\", \"data\": {}}].")));
	count = JB_ROOT_COUNT(events);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must contain at least one event")));
	if (have_expected)
		next_sequence = check_expected_version(PG_GETARG_INT64(2));

	InitMaterializedSRF(fcinfo, 0);

	errcallback.callback = batch_error_callback;
	errcallback.arg = &i;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (i = 0; i < count; i++)
	{
		EsNewEvent	ev;
		TupleDesc	tupdesc;
		HeapTuple	tuple;

		batch_element(events, i, PG_GETARG_DATUM(0), &ev);
		if (have_expected && i == 0)
		{
			ev.values[4] = Int64GetDatum(next_sequence);
			ev.nulls[4] = ' ';
		}
		tuple = insert_event(&ev, &tupdesc);
		tuplestore_puttuple(rsinfo->setResult, tuple);
		SPI_freetuptable(SPI_tuptable);
	}
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	error_context_stack = errcallback.previous;
	return (Datum) 0;
}
