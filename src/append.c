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
 * Both functions insert into es.events through its row triggers
 * (relation.c) and let the append trigger do the work (trigger.c), so that
 * they and a plain INSERT produce the same rows and the same
 * notifications.  expected_version n is passed to the trigger as the
 * sequence number n + 1, which it checks under the stream lock.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/jsonb.h"
#include "utils/rls.h"
#include "utils/uuid.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_append);
PG_FUNCTION_INFO_V1(es_append_batch);

/* number of columns an appender supplies */
#define ES_INSERT_NARGS 8

/*
 * One event to append, in the order of es_append's parameters: stream,
 * event_type, data, metadata, sequence_number (expected_version + 1),
 * event_id, user_id, username.
 */
typedef struct EsNewEvent
{
	Datum		values[ES_INSERT_NARGS];
	char		nulls[ES_INSERT_NARGS];
} EsNewEvent;

static SPIPlanPtr plan_event_by_id = NULL;

/* the column of es.events each parameter of EsNewEvent fills */
static const AttrNumber es_new_event_attnums[ES_INSERT_NARGS] = {
	Anum_es_events_stream, Anum_es_events_event_type, Anum_es_events_data,
	Anum_es_events_metadata, Anum_es_events_sequence_number,
	Anum_es_events_event_id, Anum_es_events_user_id, Anum_es_events_username
};

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
				 errdetail("The expected version was %lld.",
						   (long long) expected_version),
				 errhint("Use 0 for a stream that must not exist yet, NULL to append at any version.")));
	if (expected_version == PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("expected version is out of range")));
	return expected_version + 1;
}

/*
 * es_open_events
 *		Open es.events for appending as the calling user; caller names the
 *		function for the read-only error.
 *
 * The insert below bypasses the SQL layer, so the privileges an INSERT ...
 * RETURNING would need are checked here: INSERT and SELECT on es.events.
 * Row-level security, which that layer would apply, is refused rather than
 * silently ignored.
 */
Relation
es_open_events(const char *caller)
{
	Oid			nspid;
	Oid			relid;
	AclResult	aclresult;

	PreventCommandIfReadOnly(caller);

	nspid = get_namespace_oid("es", false);
	aclresult = pg_namespace_aclcheck(nspid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_SCHEMA, "es");

	relid = get_relname_relid("events", nspid);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" does not exist", "es.events")));

	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult == ACLCHECK_OK)
		aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, "events");
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot append with row-level security enabled on table \"%s\"",
						"events"),
				 errhint("Append with INSERT INTO es.events, which applies the policies.")));

	return table_open(relid, RowExclusiveLock);
}

/*
 * es_event_by_id
 *		The stored row with this event_id, as a composite datum; (Datum) 0
 *		if there is none.
 */
Datum
es_event_by_id(Datum event_id)
{
	Datum		result = (Datum) 0;
	bool		isnull;

	es_spi_connect();
	{
		Oid			argtypes[1] = {UUIDOID};

		es_query_run(es_query_plan(&plan_event_by_id,
								   "SELECT e FROM es.events e"
								   " WHERE event_id OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
					 &event_id, NULL, false, 1, SPI_OK_SELECT);
	}
	if (SPI_processed == 1)
		result = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1,
												 &isnull),
								   false, -1);
	es_spi_finish();
	return result;
}

/*
 * stored_event
 *		The stored row with this event_id, which the append trigger found.
 */
static Datum
stored_event(Datum event_id)
{
	Datum		result = es_event_by_id(event_id);

	if (result == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s was not stored",
						DatumGetCString(DirectFunctionCall1(uuid_out, event_id))),
				 errdetail("A trigger on es.events skipped the row.")));
	return result;
}

/*
 * append_event
 *		Insert one event into es.events through the append trigger; return
 *		the stored row as a composite datum.
 *
 * When the trigger skips the row because its event_id is already stored
 * with the same content, the stored row is returned instead.
 */
static Datum
append_event(Relation rel, EsNewEvent *ev)
{
	Datum		values[Natts_es_events];
	bool		isnull[Natts_es_events];
	Datum		result;
	int			i;

	memset(isnull, true, sizeof(isnull));
	for (i = 0; i < ES_INSERT_NARGS; i++)
	{
		values[es_new_event_attnums[i] - 1] = ev->values[i];
		isnull[es_new_event_attnums[i] - 1] = (ev->nulls[i] == 'n');
	}

	result = es_insert_event(rel, heap_form_tuple(RelationGetDescr(rel),
												  values, isnull));
	if (result == (Datum) 0)
	{
		/*
		 * The append trigger skips a repeated event id; any other skip is
		 * the doing of a trigger someone added (stored_event reports it).
		 */
		if (ev->nulls[5] == 'n')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("event was not stored"),
					 errdetail("A trigger on es.events skipped the row.")));
		result = stored_event(ev->values[5]);
	}
	return result;
}

/*
 * es_append
 *		Append one event to a stream; return the stored row.
 */
Datum
es_append(PG_FUNCTION_ARGS)
{
	EsNewEvent	ev;
	Relation	rel;
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

	rel = es_open_events("es_append()");
	result = append_event(rel, &ev);
	table_close(rel, NoLock);

	PG_RETURN_DATUM(result);
}

/*
 * es_append_row
 *		Append one event to es.events, opened with es_open_events; return
 *		the stored row.  event_id (uuid), user_id and username are
 *		(Datum) 0 for null; sequence_number 0 appends at any version.
 */
Datum
es_append_row(Relation rel, Datum stream, const char *event_type, Jsonb *data,
			  int64 sequence_number, Datum event_id, Datum user_id,
			  Datum username)
{
	EsNewEvent	ev;

	memset(ev.nulls, 'n', sizeof(ev.nulls));
	ev.values[0] = stream;
	ev.nulls[0] = ' ';
	ev.values[1] = CStringGetTextDatum(event_type);
	ev.nulls[1] = ' ';
	ev.values[2] = JsonbPGetDatum(data);
	ev.nulls[2] = ' ';
	if (sequence_number > 0)
	{
		ev.values[4] = Int64GetDatum(sequence_number);
		ev.nulls[4] = ' ';
	}
	ev.values[5] = event_id;
	ev.nulls[5] = event_id == (Datum) 0 ? 'n' : ' ';
	ev.values[6] = user_id;
	ev.nulls[6] = user_id == (Datum) 0 ? 'n' : ' ';
	ev.values[7] = username;
	ev.nulls[7] = username == (Datum) 0 ? 'n' : ' ';
	return append_event(rel, &ev);
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
 * With expected_version n, each event must follow the one before it: the
 * first becomes event n + 1, and each next one the successor of the event
 * its predecessor stored or, for an element that repeats a stored event_id
 * (which appends nothing), of the event it repeats.  The trigger checks
 * each like a single append.  The batch runs in the caller's transaction,
 * so an error in any element stores none of them.
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
	Relation	rel;
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

	rel = es_open_events("es_append()");

	errcallback.callback = batch_error_callback;
	errcallback.arg = &i;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (i = 0; i < count; i++)
	{
		EsNewEvent	ev;
		HeapTupleHeader row;
		HeapTupleData tuple;

		batch_element(events, i, PG_GETARG_DATUM(0), &ev);
		if (have_expected)
		{
			ev.values[4] = Int64GetDatum(next_sequence);
			ev.nulls[4] = ' ';
		}
		row = DatumGetHeapTupleHeader(append_event(rel, &ev));
		if (have_expected)
		{
			bool		isnull;

			/* the next event follows this one, stored now or repeated */
			next_sequence = DatumGetInt64(GetAttributeByNum(row,
															Anum_es_events_sequence_number,
															&isnull)) + 1;
		}
		tuple.t_len = HeapTupleHeaderGetDatumLength(row);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = row;
		tuplestore_puttuple(rsinfo->setResult, &tuple);
	}
	table_close(rel, NoLock);

	error_context_stack = errcallback.previous;
	return (Datum) 0;
}
