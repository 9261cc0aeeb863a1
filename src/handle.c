/*-------------------------------------------------------------------------
 *
 * handle.c
 *	  es_handle: the editor's WebSocket protocol, answered by the database.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/handle.c
 *
 *-------------------------------------------------------------------------
 *
 * A relay passes every client message to es_handle and sends the reply, if
 * any, back to the sender; events reach every client (the sender included)
 * through NOTIFY.  The messages:
 *
 *	{"type":"action","event_type":T,"data":{...},"event_id":U?,
 *	 "expected_version":N?}
 *		append (T "undo" / "redo": es_undo / es_redo of data.target_sequence,
 *		or es_undo_last / es_redo_last of the user without one); no reply,
 *		except for a retry of an event already stored (same event_id): its
 *		event message, since no notification will come for it
 *	{"type":"sync","last_sequence":N}
 *		es_sync's sync_batch
 *	{"type":"time_travel","target_sequence":N | "target_time":T}
 *		{"type":"snapshot","sequence_number":N,"state":{...}}, the state
 *		after event N (now if neither is given)
 *
 * The work runs in a subtransaction.  An error the client caused (a bad
 * message, a refused event, a conflict) rolls it back and becomes the
 * reply {"type":"error","code":SQLSTATE,"message":...,"detail":...?,
 * "original_action":message}, leaving the caller's transaction usable;
 * any other error (privileges, resources, the server itself) is raised.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_handle);

/* the SQL functions es_handle answers with */
extern PGDLLEXPORT Datum es_append(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum es_sync(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum es_replay(PG_FUNCTION_ARGS);

#define HANDLE_MAX_ARGS 8

/*
 * Call a SQL function of this library with nargs arguments, NULL where
 * nulls[i]; *isnull gets whether it returned NULL.
 */
static Datum
call(PGFunction fn, int nargs, const Datum *args, const bool *nulls,
	 bool *isnull)
{
	/* cppcheck-suppress unusedStructMember ; LOCAL_FCINFO's storage */
	LOCAL_FCINFO(fcinfo, HANDLE_MAX_ARGS);
	Datum		result;
	int			i;

	Assert(nargs <= HANDLE_MAX_ARGS);
	InitFunctionCallInfoData(*fcinfo, NULL, nargs, InvalidOid, NULL, NULL);
	for (i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = nulls[i];
	}
	result = fn(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/* the member key of the message object, or NULL */
static JsonbValue *
member(Jsonb *message, const char *key)
{
	return getKeyJsonValueFromContainer(&message->root, key, strlen(key), NULL);
}

static void
wrong_member(const char *key, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("member \"%s\" of the message must be %s", key, what)));
}

/* a string member as text, or (Datum) 0 if absent or null */
static Datum
string_member(Jsonb *message, const char *key)
{
	JsonbValue *v = member(message, key);

	if (v == NULL || v->type == jbvNull)
		return (Datum) 0;
	if (v->type != jbvString)
		wrong_member(key, "a string");
	return PointerGetDatum(cstring_to_text_with_len(v->val.string.val,
													v->val.string.len));
}

/* an integer member (at least 0); false if absent or null */
static bool
integer_member(JsonbValue *v, const char *key, int64 *value)
{
	char	   *digits;
	char	   *p;

	if (v == NULL || v->type == jbvNull)
		return false;
	if (v->type != jbvNumeric)
		wrong_member(key, "a number");
	digits = DatumGetCString(DirectFunctionCall1(numeric_out,
												 NumericGetDatum(v->val.numeric)));
	for (p = digits; *p; p++)
		if (!isdigit((unsigned char) *p))
			wrong_member(key, "an integer of at least 0");
	*value = DatumGetInt64(DirectFunctionCall1(numeric_int8,
											   NumericGetDatum(v->val.numeric)));
	return true;
}

/*
 * Refuse a member of the message that its type does not have: a misspelt
 * "expected_version" must not append without a version check.
 */
static void
check_members(Jsonb *message, const char *const *names, int nnames,
			  const char *what)
{
	JsonbIterator *it = JsonbIteratorInit(&message->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int			i;

		if (tok != WJB_KEY)
			continue;
		for (i = 0; i < nnames; i++)
			if (strlen(names[i]) == (size_t) v.val.string.len &&
				memcmp(names[i], v.val.string.val, v.val.string.len) == 0)
				break;
		if (i == nnames)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown member \"%.*s\" in %s message",
							v.val.string.len, v.val.string.val, what)));
	}
}

/* the columns of an es.events row (a composite datum) */
static void
deform_event(Datum row, Datum *values, bool *isnull)
{
	HeapTupleHeader th = DatumGetHeapTupleHeader(row);
	TupleDesc	tupdesc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th),
												HeapTupleHeaderGetTypMod(th));
	HeapTupleData tuple;

	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	memset(isnull, true, sizeof(bool) * Natts_es_events);
	/* never more columns than the arrays hold */
	es_check_events_tupdesc(tupdesc);
	heap_deform_tuple(&tuple, tupdesc, values, isnull);
	ReleaseTupleDesc(tupdesc);
}

/* the event message of an es.events row */
static Jsonb *
event_reply(const Datum *values, const bool *isnull)
{
	EsEventMessage ev;
	StringInfoData buf;

	es_event_message_from_row(&ev, values, isnull);
	initStringInfo(&buf);
	es_append_event_message(&buf, &ev, true);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * The reply to an appended action: none if this transaction appended the
 * event (it is announced), the stored event's message if it was there
 * already (a retry: no notification will come for it).
 */
static Jsonb *
appended_reply(Datum row)
{
	Datum		values[Natts_es_events];
	bool		isnull[Natts_es_events];
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();

	deform_event(row, values, isnull);
	/* without a transaction id of its own, this one cannot have stored it */
	if (FullTransactionIdIsValid(fxid) &&
		U64FromFullTransactionId(fxid) ==
		DatumGetUInt64(values[Anum_es_events_transaction_id - 1]))
		return NULL;
	return event_reply(values, isnull);
}

/*
 * The reply to an undo or redo whose event_id is stored already: that
 * event's message if it is an event of this kind in this stream (a retry),
 * else 23S01.
 */
static Jsonb *
retried_toggle_reply(Datum row, Datum stream, const char *event_type,
					 Datum event_id)
{
	Datum		values[Natts_es_events];
	bool		isnull[Natts_es_events];
	char	   *stored_stream;
	char	   *stored_type;

	deform_event(row, values, isnull);
	stored_stream = TextDatumGetCString(values[Anum_es_events_stream - 1]);
	stored_type = TextDatumGetCString(values[Anum_es_events_event_type - 1]);
	if (strcmp(stored_stream, TextDatumGetCString(stream)) != 0 ||
		strcmp(stored_type, event_type) != 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_EVENT_ID_CONFLICT),
				 errmsg("event_id %s is already used by another event",
						DatumGetCString(DirectFunctionCall1(uuid_out, event_id))),
				 errdetail("It is event %lld of stream \"%s\", of type \"%s\".",
						   (long long) DatumGetInt64(values[Anum_es_events_sequence_number - 1]),
						   stored_stream, stored_type)));
	return event_reply(values, isnull);
}

/* an action: append, or undo / redo */
static Jsonb *
handle_action(Datum stream, Jsonb *message, Datum user_id, Datum username)
{
	static const char *const names[] = {"type", "event_type", "data",
	"event_id", "expected_version"};
	Datum		event_type = string_member(message, "event_type");
	Datum		event_id = string_member(message, "event_id");
	JsonbValue *data = member(message, "data");
	JsonbValue *expected = member(message, "expected_version");
	Datum		uuid = (Datum) 0;
	char	   *type;
	Datum		args[HANDLE_MAX_ARGS];
	bool		nulls[HANDLE_MAX_ARGS];
	bool		isnull;
	int64		n;
	Datum		row;

	check_members(message, names, lengthof(names), "an action");
	if (event_type == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an action must have a member \"event_type\"")));
	if (event_id != (Datum) 0)
		uuid = DirectFunctionCall1(uuid_in,
								   CStringGetDatum(TextDatumGetCString(event_id)));
	type = TextDatumGetCString(event_type);

	if (strcmp(type, ES_UNDO_EVENT_TYPE) == 0 || strcmp(type, ES_REDO_EVENT_TYPE) == 0)
	{
		JsonbValue *target = NULL;
		bool		last;

		/* the Undo and Redo buttons send no data */
		if (data != NULL && data->type != jbvNull &&
			(data->type != jbvBinary || !JsonContainerIsObject(data->val.binary.data)))
			wrong_member("data", "an object");
		if (expected != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an undo or redo action has no member \"expected_version\""),
					 errdetail("It applies to the stream as it is; a conflicting change since its target refuses it.")));
		if (data != NULL && data->type == jbvBinary)
			target = getKeyJsonValueFromContainer(data->val.binary.data,
												  "target_sequence",
												  strlen("target_sequence"),
												  NULL);
		/* a retry must not undo a second action */
		if (uuid != (Datum) 0 && (row = es_event_by_id(uuid)) != (Datum) 0)
			return retried_toggle_reply(row, stream, type, uuid);
		last = !integer_member(target, "data.target_sequence", &n);
		(void) es_history_toggle(stream, strcmp(type, ES_UNDO_EVENT_TYPE) == 0,
								 last, last ? 0 : n, user_id, username, uuid);
		return NULL;
	}

	/* es_append(stream, event_type, data, metadata, expected_version, event_id, user_id, username) */
	if (data == NULL || data->type == jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an action must have a member \"data\"")));
	memset(args, 0, sizeof(args));
	memset(nulls, true, sizeof(nulls));
	args[0] = stream;
	nulls[0] = false;
	args[1] = event_type;
	nulls[1] = false;
	args[2] = JsonbPGetDatum(JsonbValueToJsonb(data));
	nulls[2] = false;
	if (integer_member(expected, "expected_version", &n))
	{
		args[4] = Int64GetDatum(n);
		nulls[4] = false;
	}
	args[5] = uuid;
	nulls[5] = uuid == (Datum) 0;
	args[6] = user_id;
	nulls[6] = user_id == (Datum) 0;
	args[7] = username;
	nulls[7] = username == (Datum) 0;
	row = call(es_append, 8, args, nulls, &isnull);
	return isnull ? NULL : appended_reply(row);
}

/* sync: es_sync from last_sequence (0 if absent) */
static Jsonb *
handle_sync(Datum stream, Jsonb *message)
{
	Datum		args[2];
	bool		nulls[2] = {false, false};
	bool		isnull;
	int64		last = 0;
	Datum		result;
	static const char *const names[] = {"type", "last_sequence"};

	check_members(message, names, lengthof(names), "a sync");
	(void) integer_member(member(message, "last_sequence"), "last_sequence", &last);
	args[0] = stream;
	args[1] = Int64GetDatum(last);
	result = call(es_sync, 2, args, nulls, &isnull);
	return isnull ? NULL : DatumGetJsonbP(result);
}

/* time_travel: the state after target_sequence, at target_time, or now */
static Jsonb *
handle_time_travel(Datum stream, Jsonb *message)
{
	Datum		args[2];
	bool		nulls[2] = {false, false};
	bool		isnull;
	int64		seq;
	Datum		time_text = string_member(message, "target_time");
	Jsonb	   *state;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	static const char *const names[] = {"type", "target_sequence",
	"target_time"};

	check_members(message, names, lengthof(names), "a time_travel");
	/* before the lookups below, which run as the owner */
	{
		AclResult	acl = pg_class_aclcheck(es_relation_oid("events"),
											GetUserId(), ACL_SELECT);

		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_TABLE, "events");
	}
	args[0] = stream;
	if (integer_member(member(message, "target_sequence"), "target_sequence", &seq))
	{
		if (time_text != (Datum) 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a time_travel message has \"target_sequence\" or \"target_time\", not both")));
	}
	else if (time_text != (Datum) 0)
		seq = es_sequence_at_time(TextDatumGetCString(stream),
								  DirectFunctionCall3(timestamptz_in,
													  CStringGetDatum(TextDatumGetCString(time_text)),
													  ObjectIdGetDatum(InvalidOid),
													  Int32GetDatum(-1)));
	else
		seq = es_stream_version(TextDatumGetCString(stream));
	args[1] = Int64GetDatum(seq);
	state = DatumGetJsonbP(call(es_replay, 2, args, nulls, &isnull));

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	es_jsonb_push_string(&ps, "type", "snapshot");
	es_jsonb_push_int64(&ps, "sequence_number", seq);
	es_jsonb_push_jsonb(&ps, "state", state);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* the reply to message, inside the subtransaction */
static Jsonb *
handle(Datum stream, Jsonb *message, Datum user_id, Datum username)
{
	Datum		type;
	char	   *name;

	if (stream == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	if (message == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message must not be null")));
	if (!JB_ROOT_IS_OBJECT(message) || JB_ROOT_IS_SCALAR(message))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a message must be a JSON object")));
	type = string_member(message, "type");
	if (type == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a message must have a member \"type\"")));
	name = TextDatumGetCString(type);
	if (strcmp(name, "action") == 0)
		return handle_action(stream, message, user_id, username);
	if (strcmp(name, "sync") == 0)
		return handle_sync(stream, message);
	if (strcmp(name, "time_travel") == 0)
		return handle_time_travel(stream, message);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown message type \"%s\"", name),
			 errhint("The types are \"action\", \"sync\" and \"time_travel\".")));
	return NULL;				/* keep compiler quiet */
}

/*
 * Did the client cause this error (its message, its event, its view of the
 * stream)?  Everything else is raised.
 */
static bool
client_caused(int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_NULL_VALUE_NOT_ALLOWED:	/* 22004: a member missing */
		case ERRCODE_INVALID_PARAMETER_VALUE:	/* 22023: a bad member */
		case ERRCODE_INVALID_TEXT_REPRESENTATION:	/* 22P02: event_id */
		case ERRCODE_INVALID_DATETIME_FORMAT:	/* 22007: target_time */
		case ERRCODE_DATETIME_VALUE_OUT_OF_RANGE:	/* 22008 */
		case ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE:	/* 22003 */
		case ES_ERRCODE_SCHEMA_MISMATCH:	/* 22S01 */
		case ES_ERRCODE_EVENT_ID_CONFLICT:	/* 23S01 */
		case ES_ERRCODE_EFFECT_FAILED:	/* 23S02 */
		case ES_ERRCODE_UNDO_CONFLICT:	/* 23S03 */
		case ES_ERRCODE_WRONG_EXPECTED_VERSION: /* 40S01 */
		case ES_ERRCODE_UNDEFINED_EVENT_TYPE:	/* 42S01 */
		case ERRCODE_RESERVED_NAME:	/* 42939: undo or redo as a type */
		case ERRCODE_PROGRAM_LIMIT_EXCEEDED:	/* 54000: event too large */
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:	/* 55000: undo
														 * without
														 * definitions */
		case ES_ERRCODE_HISTORY_COMPACTED:	/* 55S01 */
		case ES_ERRCODE_CANNOT_UNDO:	/* 55S02 */
		case ES_ERRCODE_STREAM_DELETED: /* 55S03 */
			return true;
		default:
			return false;
	}
}

/* {"type":"error","code":...,"message":...,"detail":...?,"original_action":...} */
static Jsonb *
error_reply(const ErrorData *edata, Jsonb *message)
{
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	es_jsonb_push_string(&ps, "type", "error");
	es_jsonb_push_string(&ps, "code", unpack_sql_state(edata->sqlerrcode));
	es_jsonb_push_string(&ps, "message", edata->message ? edata->message : "");
	if (edata->detail != NULL)
		es_jsonb_push_string(&ps, "detail", edata->detail);
	es_jsonb_push_jsonb(&ps, "original_action", message);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * es_handle(stream text, message jsonb, user_id text, username text)
 *		RETURNS jsonb: the reply to the sender, or NULL.
 */
Datum
es_handle(PG_FUNCTION_ARGS)
{
	Datum		stream = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	Jsonb	   *message = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	Datum		user_id = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	Datum		username = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Jsonb	   *reply = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Jsonb	   *r = handle(stream, message, user_id, username);

		/* the reply outlives the subtransaction */
		MemoryContextSwitchTo(cxt);
		reply = r;
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (!client_caused(edata->sqlerrcode))
			ReThrowError(edata);
		reply = error_reply(edata, message);
		FreeErrorData(edata);
	}
	PG_END_TRY();

	if (reply == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(reply);
}
