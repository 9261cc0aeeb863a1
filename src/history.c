/*-------------------------------------------------------------------------
 *
 * history.c
 *	  Undo and redo: es_undo, es_redo, es_undo_last, es_redo_last.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/history.c
 *
 *-------------------------------------------------------------------------
 *
 * An action is an event of a defined type.  Undoing it appends an event of
 * the built-in type "undo" whose data carries the patch that reverts it,
 * computed here under the stream's lock against the state just before the
 * action; redoing an undo appends a "redo" event with the patch that
 * reverts the undo.  Replay applies the stored patches and never
 * recomputes them.  The data of both:
 *
 *	{"target_sequence": T,		the event undone or redone
 *	 "action_sequence": A,		the action whose effect this toggles
 *	 "target_event_type": ...,	T's event type
 *	 "patch": [...]}			RFC 6902, applied to the state
 *
 * Undo and redo events of one action alternate, so the latest of them
 * says whether the action is undone now; only that latest event (or the
 * action itself if there is none) can be undone or redone.
 *
 * Collaboration: a later event that changed a value the patch would
 * change, or relied on the existence of one, makes the undo (or redo)
 * fail with 23S03 naming it (es_patch_conflict).  Later actions that are
 * undone now, together with their undo and redo events, are left out:
 * their net effect is nothing.
 *
 * The append trigger refuses "undo" and "redo" events unless this backend
 * is appending one through here (es_history_pending_patch), so that the
 * patch it applies is always the one computed under the lock.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/table.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_undo);
PG_FUNCTION_INFO_V1(es_redo);
PG_FUNCTION_INFO_V1(es_undo_last);
PG_FUNCTION_INFO_V1(es_redo_last);

/* the undo or redo event this backend is appending */
static struct
{
	const char *stream;
	const char *event_type;
	const EsJson *patch;
} pending;

static SPIPlanPtr plan_range = NULL;
static SPIPlanPtr plan_backwards = NULL;

/* one event of the range read under the lock */
typedef struct HistoryEvent
{
	int64		seq;
	char	   *event_type;
	Datum		values[Natts_es_events];
	bool		isnull[Natts_es_events];
	int64		action;			/* for undo and redo, else 0 */
	char	   *user_id;		/* NULL if none */
} HistoryEvent;

/* the latest undo or redo event of an action, found walking backwards */
typedef struct ActionEntry
{
	int64		action;			/* hash key */
	int64		seq;
	bool		undo;
	int64		count;			/* its undo and redo events seen */
} ActionEntry;

/*
 * es_history_pending_patch
 *		The patch of the undo or redo event being appended to stream, or
 *		NULL if this backend is not appending one.
 */
const EsJson *
es_history_pending_patch(const char *stream, const char *event_type)
{
	if (pending.patch == NULL || strcmp(pending.stream, stream) != 0 ||
		strcmp(pending.event_type, event_type) != 0)
		return NULL;
	return pending.patch;
}

static bool
is_undo(const char *event_type)
{
	return strcmp(event_type, ES_UNDO_EVENT_TYPE) == 0;
}

/*
 * Read the events of a stream from "from" on (latest snapshot: the caller
 * holds the stream's lock), as HistoryEvents in the caller's memory.
 */
static HistoryEvent *
read_range(const char *stream, int64 from, int64 *nevents)
{
	Oid			argtypes[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	EsSavedUser saved;
	HistoryEvent *events;
	MemoryContext callercxt = CurrentMemoryContext;
	uint64		i;

	args[0] = CStringGetTextDatum(stream);
	args[1] = Int64GetDatum(from);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	es_query_run_latest(es_query_plan(&plan_range,
									  "SELECT sequence_number, event_type, data, metadata,"
									  " user_id, username, created_at,"
									  " CASE WHEN event_type IN ('undo', 'redo')"
									  " THEN (data OPERATOR(pg_catalog.->>) 'action_sequence')::bigint END"
									  " FROM es.events"
									  " WHERE stream OPERATOR(pg_catalog.=) $1"
									  " AND sequence_number OPERATOR(pg_catalog.>=) $2"
									  " ORDER BY sequence_number",
									  2, argtypes),
						args, NULL, 0, SPI_OK_SELECT);
	events = MemoryContextAllocZero(callercxt,
									sizeof(HistoryEvent) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		HistoryEvent *ev = &events[i];
		MemoryContext oldcxt = MemoryContextSwitchTo(callercxt);
		static const int attnums[] = {
			Anum_es_events_sequence_number, Anum_es_events_event_type,
			Anum_es_events_data, Anum_es_events_metadata,
			Anum_es_events_user_id, Anum_es_events_username,
			Anum_es_events_created_at
		};
		bool		isnull;
		Datum		action;
		int			k;

		memset(ev->isnull, true, sizeof(ev->isnull));
		for (k = 0; k < (int) lengthof(attnums); k++)
		{
			Datum		v = SPI_getbinval(tuple, tupdesc, k + 1,
										  &ev->isnull[attnums[k] - 1]);

			if (!ev->isnull[attnums[k] - 1])
				v = datumCopy(v, TupleDescAttr(tupdesc, k)->attbyval,
							  TupleDescAttr(tupdesc, k)->attlen);
			ev->values[attnums[k] - 1] = v;
		}
		ev->seq = DatumGetInt64(ev->values[Anum_es_events_sequence_number - 1]);
		ev->event_type = TextDatumGetCString(ev->values[Anum_es_events_event_type - 1]);
		ev->user_id = ev->isnull[Anum_es_events_user_id - 1] ? NULL :
			TextDatumGetCString(ev->values[Anum_es_events_user_id - 1]);
		action = SPI_getbinval(tuple, tupdesc, 8, &isnull);
		ev->action = isnull ? 0 : DatumGetInt64(action);
		MemoryContextSwitchTo(oldcxt);
	}
	*nevents = (int64) SPI_processed;
	es_spi_finish_as_owner(&saved);
	return events;
}

/*
 * Apply one event of the range to state, returning what it did (its
 * concrete patch) and, for an effect, what it relied on.  An event of a
 * type without a definition does nothing.
 */
static void
apply_traced(EsJson *state, EsCategoryDefinitions *defs, const char *stream,
			 HistoryEvent *ev, EsJson **patch, EsJson **reads)
{
	EsEngineError err;
	EsEngineStatus status;

	*patch = NULL;
	*reads = NULL;
	if (es_is_history_event_type(ev->event_type))
	{
		EsJson	   *data = es_jsonb_to_engine(DatumGetJsonbP(ev->values[Anum_es_events_data - 1]),
											  &err);
		const EsJson *p = es_json_member(data, "patch");

		if (p == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("event %lld of stream \"%s\" has no patch",
							(long long) ev->seq, stream)));
		*patch = es_json_copy(p);
		if (*patch == NULL)
			es_engine_out_of_memory();
		status = es_patch_apply(state, p, &err);
	}
	else
	{
		EsDefinition *def = es_find_definition(defs, ev->event_type);
		EsJson	   *event;

		if (def == NULL)
			return;
		event = es_engine_event(ev->values, ev->isnull, &err);
		if (event == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("event %lld of stream \"%s\" cannot be replayed",
							(long long) ev->seq, stream),
					 errdetail("%s", es_engine_message(&err))));
		status = es_effect_apply_trace(state, def->effect, event, patch,
									   reads, &err);
	}
	if (status == ES_ENGINE_NOMEM)
		es_engine_out_of_memory();
	if (status != ES_ENGINE_OK)
		ereport(ERROR,
				(errcode(ES_ERRCODE_EFFECT_FAILED),
				 errmsg("event %lld of stream \"%s\" cannot be replayed",
						(long long) ev->seq, stream),
				 errdetail("%s", es_engine_detail(&err))));
}

/*
 * The latest undo or redo event of each action among events[0..n), and
 * how many there are, walking backwards.
 */
static HTAB *
latest_toggles(HistoryEvent *events, int64 n)
{
	HASHCTL		ctl;
	HTAB	   *toggles;
	int64		i;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ActionEntry);
	ctl.hcxt = CurrentMemoryContext;
	toggles = hash_create("eventsourcing undo actions", 64, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (i = n - 1; i >= 0; i--)
	{
		ActionEntry *entry;
		bool		found;

		if (events[i].action == 0)
			continue;
		entry = hash_search(toggles, &events[i].action, HASH_ENTER, &found);
		if (!found)
		{
			entry->seq = events[i].seq;
			entry->undo = is_undo(events[i].event_type);
			entry->count = 0;
		}
		entry->count++;
	}
	return toggles;
}

/*
 * The 23S03 error: event ev conflicts with the undo (or redo) of target.
 * The hint names what would clear the way: toggling the latest event of
 * ev's action (entry, or ev itself if the action has no undo or redo).
 */
static void
conflict_error(HistoryEvent *events, HistoryEvent *ev,
			   ActionEntry *entry, int64 target, bool undo,
			   const char *stream, const char *why)
{
	int64		latest = entry != NULL ? entry->seq : ev->seq;

	/* the range is contiguous from the target (checked by toggle) */
	bool		redo_first = is_undo(events[latest - events[0].seq].event_type);
	const char *by = ev->user_id;

	if (!ev->isnull[Anum_es_events_username - 1])
		by = TextDatumGetCString(ev->values[Anum_es_events_username - 1]);
	ereport(ERROR,
			(errcode(ES_ERRCODE_UNDO_CONFLICT),
			 errmsg("cannot %s event %lld of stream \"%s\": event %lld changed or relied on the same data since",
					undo ? "undo" : "redo", (long long) target,
					stream, (long long) ev->seq),
			 errdetail("Event %lld (\"%s\"%s%s): %s.",
					   (long long) ev->seq, ev->event_type,
					   by ? ", by " : "", by ? by : "", why),
			 redo_first ?
			 errhint("Redo event %lld first, or append an event that makes the change.",
					 (long long) latest) :
			 errhint("Undo event %lld first, or append an event that makes the change.",
					 (long long) latest)));
}

/*
 * toggle
 *		Append the undo (or redo) of event target of stream; the caller
 *		holds the stream's lock and has read version and base.
 */
static Datum
toggle(Relation rel, const char *stream, EsCategoryDefinitions *defs,
	   int64 version, int64 base, int64 target, bool undo, Datum user_id,
	   Datum username, Datum event_id)
{
	HistoryEvent *events;
	HistoryEvent *t;
	int64		n;
	int64		i;
	int64		action;
	HTAB	   *toggles;
	ActionEntry *latest;
	EsState    *st;
	EsJson	   *state;
	EsJson	   *before;
	EsJson	   *patch;
	EsJson	   *reads;
	EsJson	   *revert;
	EsEngineError err;
	EsEngineStatus status;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	char	   *patch_text;
	Datum		result;

	if (version == 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_CANNOT_UNDO),
				 errmsg("stream \"%s\" has no events to %s", stream,
						undo ? "undo" : "redo")));
	if (target < 1 || target > version)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event %lld does not exist in stream \"%s\"",
						(long long) target, stream),
				 errdetail("The stream's events are numbered 1 to %lld.",
						   (long long) version)));
	if (target <= base)
		ereport(ERROR,
				(errcode(ES_ERRCODE_HISTORY_COMPACTED),
				 errmsg("cannot %s event %lld of stream \"%s\"",
						undo ? "undo" : "redo", (long long) target, stream),
				 errdetail("Events 1 to %lld were removed by compaction.",
						   (long long) base)));

	events = read_range(stream, target, &n);
	if (n != version - target + 1 || events[0].seq != target)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("events %lld to %lld of stream \"%s\" are not all there",
						(long long) target, (long long) version, stream)));
	t = &events[0];

	/* what the target is, and whether it can be toggled now */
	if (undo && is_undo(t->event_type))
		ereport(ERROR,
				(errcode(ES_ERRCODE_CANNOT_UNDO),
				 errmsg("event %lld of stream \"%s\" is an undo event",
						(long long) target, stream),
				 errhint("Use es_redo() to apply again what it reverted.")));
	if (!undo && !is_undo(t->event_type))
		ereport(ERROR,
				(errcode(ES_ERRCODE_CANNOT_UNDO),
				 errmsg("event %lld of stream \"%s\" is not an undo event",
						(long long) target, stream),
				 errhint("Only undo events can be redone; use es_undo() to undo an action.")));
	if (!es_is_history_event_type(t->event_type) &&
		es_find_definition(defs, t->event_type) == NULL)
		ereport(ERROR,
				(errcode(ES_ERRCODE_CANNOT_UNDO),
				 errmsg("event %lld of stream \"%s\" has no effect to undo",
						(long long) target, stream),
				 errdetail("Event type \"%s\" has no definition in category \"%s\".",
						   t->event_type, defs->category)));
	action = t->action != 0 ? t->action : target;

	toggles = latest_toggles(events + 1, n - 1);
	latest = hash_search(toggles, &action, HASH_FIND, NULL);
	if (latest != NULL)
	{
		if (undo && latest->undo)
			ereport(ERROR,
					(errcode(ES_ERRCODE_CANNOT_UNDO),
					 errmsg("event %lld of stream \"%s\" is already undone",
							(long long) target, stream),
					 errdetail("Event %lld undid it.", (long long) latest->seq)));
		else if (undo)
			ereport(ERROR,
					(errcode(ES_ERRCODE_CANNOT_UNDO),
					 errmsg("event %lld of stream \"%s\" was undone and redone since",
							(long long) target, stream),
					 errdetail("Event %lld redid it last.", (long long) latest->seq),
					 errhint("Undo event %lld.", (long long) latest->seq)));
		else if (!latest->undo)
			ereport(ERROR,
					(errcode(ES_ERRCODE_CANNOT_UNDO),
					 errmsg("undo event %lld of stream \"%s\" is already redone",
							(long long) target, stream),
					 errdetail("Event %lld redid it.", (long long) latest->seq)));
		else
			ereport(ERROR,
					(errcode(ES_ERRCODE_CANNOT_UNDO),
					 errmsg("undo event %lld of stream \"%s\" is not the latest undo of event %lld",
							(long long) target, stream, (long long) action),
					 errhint("Redo event %lld.", (long long) latest->seq)));
	}

	/* the state before the target, and the patch that reverts it */
	st = es_state_at(stream, defs, target - 1, true);
	state = es_json_copy(st->doc);
	es_state_release(st, true);
	before = es_json_copy(state);
	if (state == NULL || before == NULL)
		es_engine_out_of_memory();
	apply_traced(state, defs, stream, t, &patch, &reads);
	status = es_undo_patch(before, patch, &revert, &err);
	if (status == ES_ENGINE_NOMEM)
		es_engine_out_of_memory();
	if (status != ES_ENGINE_OK)
		elog(ERROR, "could not compute the undo patch of event %lld: %s",
			 (long long) target, err.message);
	es_json_free(before);
	es_json_free(patch);
	es_json_free(reads);

	/*
	 * Every later event must leave alone what the revert changes, except
	 * the events of an action that cancel out since the target: an even
	 * number of them (the action and its undo; an undo of an earlier
	 * action and its redo; ...) leaves the action as it was.
	 */
	for (i = 1; i < n; i++)
	{
		HistoryEvent *ev = &events[i];
		int64		root = ev->action != 0 ? ev->action : ev->seq;
		ActionEntry *entry;
		int64		count;

		CHECK_FOR_INTERRUPTS();
		apply_traced(state, defs, stream, ev, &patch, &reads);
		if (patch == NULL)
			continue;
		entry = hash_search(toggles, &root, HASH_FIND, NULL);
		count = (entry != NULL ? entry->count : 0) + (root > target ? 1 : 0);
		if (count % 2 != 0)
		{
			status = es_patch_conflict(revert, patch, reads, &err);
			if (status == ES_ENGINE_NOMEM)
				es_engine_out_of_memory();
			if (status == ES_ENGINE_REJECTED)
				conflict_error(events, ev, entry, target, undo, stream,
							   err.message);
			/* a stored undo or redo patch edited into something malformed */
			if (status != ES_ENGINE_OK)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("event %lld of stream \"%s\" has a malformed patch",
								(long long) ev->seq, stream),
						 errdetail("%s", err.message)));
		}
		es_json_free(patch);
		es_json_free(reads);
	}
	es_json_free(state);

	/* the event */
	patch_text = es_json_dump(revert, NULL);
	if (patch_text == NULL)
		es_engine_out_of_memory();
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	es_jsonb_push_int64(&ps, "target_sequence", target);
	es_jsonb_push_int64(&ps, "action_sequence", action);
	es_jsonb_push_string(&ps, "target_event_type", t->event_type);
	{
		Jsonb	   *pj = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															CStringGetDatum(patch_text)));

		free(patch_text);
		es_jsonb_push_jsonb(&ps, "patch", pj);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);

	pending.stream = stream;
	pending.event_type = undo ? ES_UNDO_EVENT_TYPE : ES_REDO_EVENT_TYPE;
	pending.patch = revert;
	PG_TRY();
	{
		result = es_append_row(rel, CStringGetTextDatum(stream),
							   pending.event_type, JsonbValueToJsonb(res),
							   version + 1, event_id, user_id, username);
	}
	PG_FINALLY();
	{
		pending.patch = NULL;
		pending.stream = NULL;
		pending.event_type = NULL;
	}
	PG_END_TRY();
	es_json_free(revert);
	return result;
}

/*
 * Arguments common to the four functions: the stream (checked), its
 * definitions, the stream locked and its head read under the lock.
 */
typedef struct HistoryCall
{
	char	   *stream;
	EsCategoryDefinitions *defs;
	Relation	rel;
	EsStreamHead head;
	Datum		user_id;
	Datum		username;
} HistoryCall;

static int64 find_last(HistoryCall *call, const char *user_id, bool undo);

static void
history_begin(Datum stream, const char *fn, HistoryCall *call)
{
	const char *category;

	if (stream == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	call->stream = TextDatumGetCString(stream);
	category = es_stream_category(call->stream, strlen(call->stream));

	/* privileges and read-only first, then the lock, then the reads */
	call->rel = es_open_events(fn);
	call->defs = es_category_definitions(category);
	if (call->defs->ndefinitions == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" has no state to undo or redo",
						call->stream),
				 errdetail("Category \"%s\" has no event definitions.", category),
				 errhint("Define its event types with es_define().")));
	es_lock_stream(call->stream, strlen(call->stream));
	/* earlier commands of this statement may have appended (several calls in one query) */
	CommandCounterIncrement();
	es_stream_head(call->stream, true, &call->head);
	if (call->head.deleted)
		es_check_not_compacted(call->stream, &call->head, call->head.version);
}

static Datum
history_end(HistoryCall *call, Datum result)
{
	table_close(call->rel, NoLock);
	return result;
}

static int64
target_argument(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target sequence number must not be null")));
	return PG_GETARG_INT64(1);
}

/*
 * The undo (or redo) of event target of stream, or (last) of the user's
 * last action (or undo), appended with event_id if not (Datum) 0.
 */
static Datum
history_run(Datum stream, const char *fn, bool undo, bool last,
			int64 target, Datum user_id, Datum username, Datum event_id)
{
	HistoryCall call;
	char	   *user = NULL;

	if (last)
	{
		if (user_id == (Datum) 0)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("user id must not be null"),
					 errdetail("%s undoes and redoes the actions of one user.", fn)));
		user = TextDatumGetCString(user_id);
	}
	history_begin(stream, fn, &call);
	call.user_id = user_id;
	call.username = username;
	if (last)
	{
		target = find_last(&call, user, undo);
		if (target == 0)
			ereport(ERROR,
					(errcode(ES_ERRCODE_CANNOT_UNDO),
					 errmsg("user \"%s\" has nothing to %s in stream \"%s\"",
							user, undo ? "undo" : "redo", call.stream),
					 undo ? errdetail("No action of the user is in effect now.") :
					 errdetail("The user has no undo to redo since their last action.")));
	}
	return history_end(&call,
					   toggle(call.rel, call.stream, call.defs,
							  call.head.version, call.head.base, target, undo,
							  call.user_id, call.username, event_id));
}

/*
 * es_history_toggle
 *		es_undo / es_redo of target, or (last) es_undo_last / es_redo_last
 *		of user_id, the new event getting event_id (a uuid; (Datum) 0 for a
 *		generated one).  For es_handle.
 */
Datum
es_history_toggle(Datum stream, bool undo, bool last, int64 target,
				  Datum user_id, Datum username, Datum event_id)
{
	const char *fn;

	if (!last)
		fn = undo ? "es_undo()" : "es_redo()";
	else
		fn = undo ? "es_undo_last()" : "es_redo_last()";
	return history_run(stream, fn, undo, last, target, user_id, username,
					   event_id);
}

/*
 * es_undo and es_redo: (stream, target_sequence, user_id, username).
 */
static Datum
toggle_target(FunctionCallInfo fcinfo, bool undo)
{
	int64		target = target_argument(fcinfo);

	return history_run(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0),
					   undo ? "es_undo()" : "es_redo()", undo, false, target,
					   PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
					   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
					   (Datum) 0);
}

/*
 * es_undo(stream, target_sequence, user_id, username) RETURNS es.events
 */
Datum
es_undo(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(toggle_target(fcinfo, true));
}

/*
 * es_redo(stream, target_sequence, user_id, username) RETURNS es.events
 */
Datum
es_redo(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(toggle_target(fcinfo, false));
}

/*
 * The user's event to undo (undo) or redo (!undo), walking the stream
 * backwards; 0 if there is none.
 *
 * Undo: the user's latest action (an event of a defined type, or a redo)
 * whose effect is in the state now and was applied last by that event.
 * Redo: the user's latest undo that is the latest toggle of its action,
 * provided the user appended no action after it (a new action ends what
 * can be redone, as in any editor).
 */
static int64
find_last(HistoryCall *call, const char *user_id, bool undo)
{
	Oid			argtypes[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	EsSavedUser saved;
	Portal		portal;
	HTAB	   *toggles;
	HASHCTL		ctl;
	int64		found = 0;
	bool		done = false;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ActionEntry);
	ctl.hcxt = CurrentMemoryContext;
	toggles = hash_create("eventsourcing undo actions", 64, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	args[0] = CStringGetTextDatum(call->stream);
	args[1] = Int64GetDatum(call->head.base);
	es_spi_connect_as_owner(es_relation_oid("events"), &saved);
	PushActiveSnapshot(GetLatestSnapshot());
	portal = SPI_cursor_open(NULL,
							 es_query_plan(&plan_backwards,
										   "SELECT sequence_number, event_type, user_id,"
										   " CASE WHEN event_type IN ('undo', 'redo')"
										   " THEN (data OPERATOR(pg_catalog.->>) 'action_sequence')::bigint END"
										   " FROM es.events"
										   " WHERE stream OPERATOR(pg_catalog.=) $1"
										   " AND sequence_number OPERATOR(pg_catalog.>) $2"
										   " ORDER BY sequence_number DESC",
										   2, argtypes),
							 args, NULL, true);
	PopActiveSnapshot();
	while (!done)
	{
		uint64		i;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, 100);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed && !done; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			TupleDesc	tupdesc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		seq = DatumGetInt64(SPI_getbinval(tuple, tupdesc, 1, &isnull));
			char	   *type = TextDatumGetCString(SPI_getbinval(tuple, tupdesc, 2, &isnull));
			Datum		uid = SPI_getbinval(tuple, tupdesc, 3, &isnull);
			bool		mine = !isnull && strcmp(TextDatumGetCString(uid), user_id) == 0;
			Datum		act = SPI_getbinval(tuple, tupdesc, 4, &isnull);
			int64		action = isnull ? 0 : DatumGetInt64(act);
			bool		history = es_is_history_event_type(type);
			ActionEntry *entry = NULL;
			bool		first = false;

			if (history)
			{
				entry = hash_search(toggles, &action, HASH_ENTER, &first);
				first = !first;
				if (first)
				{
					entry->seq = seq;
					entry->undo = is_undo(type);
				}
			}
			if (!mine)
				continue;
			if (undo)
			{
				if (history && !is_undo(type) && first)
				{
					found = seq;	/* a redo, the latest toggle */
					done = true;
				}
				else if (!history &&
						 es_find_definition(call->defs, type) != NULL &&
						 hash_search(toggles, &seq, HASH_FIND, NULL) == NULL)
				{
					found = seq;	/* an action never undone */
					done = true;
				}
			}
			else
			{
				if (!history && es_find_definition(call->defs, type) != NULL)
					done = true;	/* acted since: nothing to redo */
				else if (history && is_undo(type) && first)
				{
					found = seq;
					done = true;
				}
			}
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	es_spi_finish_as_owner(&saved);
	hash_destroy(toggles);
	return found;
}

static Datum
toggle_last(FunctionCallInfo fcinfo, bool undo)
{
	/* the user id is argument 1 here, the user name argument 2 */
	return history_run(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0),
					   undo ? "es_undo_last()" : "es_redo_last()", undo, true,
					   0, PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
					   PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
					   (Datum) 0);
}

/*
 * es_undo_last(stream, user_id, username) RETURNS es.events
 */
Datum
es_undo_last(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(toggle_last(fcinfo, true));
}

/*
 * es_redo_last(stream, user_id, username) RETURNS es.events
 */
Datum
es_redo_last(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(toggle_last(fcinfo, false));
}
