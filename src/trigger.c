/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  The triggers on es.events: the append path and the append-only rule.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/trigger.c
 *
 *-------------------------------------------------------------------------
 *
 * es_events_append_trigger is the single append path (see eventsourcing.h
 * for the order of its steps and the locking rules).  It changes es.streams
 * directly (relation.c) and runs its lookups in es.events as the owner of
 * es.events, as the referential integrity triggers do, so that appending
 * needs only INSERT on es.events.
 *
 * A row that arrives with a transaction_id is an event being restored from
 * a dump: pg_dump's COPY of es.events carries every column.  Only the owner
 * of es.events may insert such rows.  They are checked for shape and stored
 * without touching es.streams (whose rows pg_dump restores separately) and
 * without a notification.  Their transaction_id becomes the restoring
 * transaction's: ids from another cluster mean nothing here and might even
 * lie in this cluster's future, where es_read_all would hide the events.
 * As they all share one id, es_read_all orders them by global position,
 * which within a stream is sequence order.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"
#include "utils/xid8.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_events_append_trigger);
PG_FUNCTION_INFO_V1(es_events_append_only_trigger);

/* saved plans of the queries run under the stream lock */
static SPIPlanPtr plan_event_by_id = NULL;
static SPIPlanPtr plan_event_xid = NULL;

/*
 * Refuse a value for a column that the append trigger assigns.
 */
static void
refuse_supplied_column(const bool *isnull, int attnum, const char *attname)
{
	if (!isnull[attnum - 1])
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("cannot insert a non-DEFAULT value into column \"%s\"",
						attname),
				 errdetail("Column \"%s\" of es.events is assigned when an event is appended.",
						   attname)));
}

/*
 * Length in bytes of a text column, 0 if it is NULL.
 */
static int
text_length(const Datum *values, const bool *isnull, int attnum)
{
	if (isnull[attnum - 1])
		return 0;
	return VARSIZE_ANY_EXHDR(DatumGetTextPP(values[attnum - 1]));
}

/*
 * Check the lengths of event_type, user_id and username.
 */
static void
check_name_lengths(const Datum *values, const bool *isnull)
{
	int			len;

	len = text_length(values, isnull, Anum_es_events_event_type);
	if (len < 1 || len > ES_NAME_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event type"),
				 errdetail("An event type must be between 1 and %d bytes long, not %d.",
						   ES_NAME_MAX_LEN, len)));

	len = text_length(values, isnull, Anum_es_events_user_id);
	if (!isnull[Anum_es_events_user_id - 1] &&
		(len < 1 || len > ES_NAME_MAX_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid user id"),
				 errdetail("A user id must be between 1 and %d bytes long, not %d.",
						   ES_NAME_MAX_LEN, len)));

	len = text_length(values, isnull, Anum_es_events_username);
	if (!isnull[Anum_es_events_username - 1] &&
		(len < 1 || len > ES_NAME_MAX_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid user name"),
				 errdetail("A user name must be between 1 and %d bytes long, not %d.",
						   ES_NAME_MAX_LEN, len)));
}

/*
 * check_event_row
 *		Validate the columns an appender supplies; return the category.
 *
 * Called for new events and for restored ones alike (which are not held to
 * eventsourcing.max_event_size), before any lock is taken, so that bad
 * input costs nothing but the error.
 */
static const char *
check_event_row(const Datum *values, const bool *isnull, bool limit_size)
{
	text	   *stream;
	const char *category;
	const char *event_type;
	Jsonb	   *data;
	Jsonb	   *metadata = NULL;
	Size		size;

	if (isnull[Anum_es_events_stream - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	if (isnull[Anum_es_events_event_type - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event type must not be null")));
	if (isnull[Anum_es_events_data - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event data must not be null"),
				 errhint("Use an empty JSON object for an event without data.")));

	stream = DatumGetTextPP(values[Anum_es_events_stream - 1]);
	category = es_stream_category(text_to_cstring(stream),
								  VARSIZE_ANY_EXHDR(stream));

	check_name_lengths(values, isnull);
	event_type = TextDatumGetCString(values[Anum_es_events_event_type - 1]);

	data = DatumGetJsonbP(values[Anum_es_events_data - 1]);
	if (!JB_ROOT_IS_OBJECT(data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data of event \"%s\" must be a JSON object",
						event_type)));
	size = VARSIZE(data);

	if (!isnull[Anum_es_events_metadata - 1])
	{
		metadata = DatumGetJsonbP(values[Anum_es_events_metadata - 1]);
		if (!JB_ROOT_IS_OBJECT(metadata))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("metadata of event \"%s\" must be a JSON object",
							event_type)));
		size += VARSIZE(metadata);
	}

	if (limit_size && size > (Size) es_max_event_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("event \"%s\" is too large", event_type),
				 errdetail("Its data and metadata take %zu bytes; the limit is %d bytes.",
						   size, es_max_event_size),
				 errhint("Raise \"eventsourcing.max_event_size\" or store large content outside the event.")));

	return category;
}

/*
 * Generate a version 4 (random) UUID, as gen_random_uuid() does.
 */
static Datum
random_event_id(void)
{
	pg_uuid_t  *uuid = palloc(UUID_LEN);

	if (!pg_strong_random(uuid->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;	/* version 4 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return UUIDPGetDatum(uuid);
}

/*
 * Equality of two optional text or jsonb columns.
 *
 * jsonb values compare with jsonb's own equality, so that a retry that
 * writes 1.0 for 1 or reorders keys is still the same event; text values
 * compare as bytes.
 */
static bool
column_equal(Datum a, bool anull, Datum b, bool bnull, bool is_jsonb)
{
	struct varlena *va;
	struct varlena *vb;

	if (anull || bnull)
		return anull && bnull;
	if (is_jsonb)
		return DatumGetBool(DirectFunctionCall2(jsonb_eq, a, b));
	va = PG_DETOAST_DATUM_PACKED(a);
	vb = PG_DETOAST_DATUM_PACKED(b);
	return VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
		memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
}

/*
 * event_id_already_stored
 *		Idempotency check, run under the event id and stream locks.
 *
 * Returns true if an event with this id exists with the same content (the
 * caller then stores nothing); raises an error if it exists with other
 * content; returns false if it does not exist.
 *
 * The lookup uses a fresh snapshot, so that it sees an event committed
 * while we waited for the locks even under REPEATABLE READ; there, an event
 * our own snapshot cannot see is a serialization failure.  The details of
 * the stored event are shown only to a caller who may read es.events.
 */
static bool
event_id_already_stored(Relation rel, Oid caller, const Datum *values,
						const bool *isnull)
{
	static const int compared[] = {
		Anum_es_events_stream, Anum_es_events_event_type,
		Anum_es_events_data, Anum_es_events_metadata,
		Anum_es_events_user_id, Anum_es_events_username
	};
	Oid			argtypes[1] = {UUIDOID};
	Datum		args[1];
	SPIPlanPtr	plan;
	HeapTuple	stored;
	TupleDesc	tupdesc;
	char	   *id;
	int			i;

	args[0] = values[Anum_es_events_event_id - 1];
	plan = es_query_plan(&plan_event_by_id,
						 "SELECT * FROM es.events"
						 " WHERE event_id OPERATOR(pg_catalog.=) $1",
						 1, argtypes);
	/* earlier rows of this statement (a batch, a multi-row INSERT) too */
	CommandCounterIncrement();
	es_query_run_latest(plan, args, NULL, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;

	id = DatumGetCString(DirectFunctionCall1(uuid_out, args[0]));
	if (IsolationUsesXactSnapshot())
	{
		es_query_run(plan, args, NULL, true, 1, SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize append of event %s", id),
					 errdetail("An event with this id was committed after this transaction's snapshot was taken."),
					 errhint("The transaction might succeed if retried.")));
	}

	stored = SPI_tuptable->vals[0];
	tupdesc = SPI_tuptable->tupdesc;
	for (i = 0; i < (int) lengthof(compared); i++)
	{
		bool		snull;
		bool		dummy;
		Datum		sval = heap_getattr(stored, compared[i], tupdesc, &snull);

		if (column_equal(values[compared[i] - 1], isnull[compared[i] - 1],
						 sval, snull,
						 compared[i] == Anum_es_events_data ||
						 compared[i] == Anum_es_events_metadata))
			continue;

		if (pg_class_aclcheck(RelationGetRelid(rel), caller,
							  ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ES_ERRCODE_EVENT_ID_CONFLICT),
					 errmsg("event id %s is already used by a different event",
							id),
					 errhint("Use a new event id for a new event; reuse an id only to retry the same append.")));
		ereport(ERROR,
				(errcode(ES_ERRCODE_EVENT_ID_CONFLICT),
				 errmsg("event id %s is already used by a different event",
						id),
				 errdetail("Event %s is event %lld of stream \"%s\"; its %s differs.",
						   id,
						   (long long) DatumGetInt64(heap_getattr(stored, Anum_es_events_sequence_number,
																  tupdesc, &dummy)),
						   TextDatumGetCString(heap_getattr(stored, Anum_es_events_stream,
															tupdesc, &dummy)),
						   NameStr(TupleDescAttr(tupdesc, compared[i] - 1)->attname)),
				 errhint("Use a new event id for a new event; reuse an id only to retry the same append.")));
	}
	return true;
}

/*
 * check_transaction_order
 *		Refuse to append after a younger transaction appended to the stream.
 *
 * es_read_all orders events by transaction id.  A transaction that got its
 * id before taking the stream lock may be older than the previous appender
 * of the stream; its event would then sort before an event with a lower
 * sequence number.  That needs a transaction that wrote something before
 * appending and raced another appender; it is refused as a serialization
 * failure, which the client retries.
 */
static void
check_transaction_order(Datum stream, int64 version, const char *name)
{
	Oid			argtypes[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	bool		isnull;
	FullTransactionId previous;

	args[0] = stream;
	args[1] = Int64GetDatum(version);
	es_query_run(es_query_plan(&plan_event_xid,
						  "SELECT transaction_id FROM es.events"
						  " WHERE stream OPERATOR(pg_catalog.=) $1"
						  " AND sequence_number OPERATOR(pg_catalog.=) $2",
						  2, argtypes),
			   args, NULL, false, 0, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return;
	previous = DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc,
													   1, &isnull));
	if (FullTransactionIdFollows(previous, GetTopFullTransactionId()))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize append to stream \"%s\"", name),
				 errdetail("Event %lld of the stream was appended by a transaction that started writing after this one.",
						   (long long) version),
				 errhint("The transaction might succeed if retried.")));
}

/*
 * restore_event
 *		Accept an event row that carries its transaction id (pg_restore);
 *		return it with the restoring transaction's id.
 */
static HeapTuple
restore_event(Relation rel, HeapTuple tuple, const Datum *values,
			  const bool *isnull)
{
	int			replcol = Anum_es_events_transaction_id;
	Datum		replvalue;
	bool		replnull = false;
	const char *category;

	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("cannot insert a non-DEFAULT value into column \"%s\"",
						"transaction_id"),
				 errdetail("Column \"%s\" of es.events is assigned when an event is appended.",
						   "transaction_id"),
				 errhint("Only the owner of es.events can load events with their transaction ids, as pg_restore does.")));

	/* what was stored once is restored, whatever the size limit is now */
	category = check_event_row(values, isnull, false);
	if (isnull[Anum_es_events_category - 1] ||
		strcmp(TextDatumGetCString(values[Anum_es_events_category - 1]),
			   category) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("category of restored event does not match its stream \"%s\"",
						TextDatumGetCString(values[Anum_es_events_stream - 1]))));

	replvalue = FullTransactionIdGetDatum(GetTopFullTransactionId());
	return heap_modify_tuple_by_cols(tuple, RelationGetDescr(rel), 1,
									 &replcol, &replvalue, &replnull);
}

/*
 * check_last_before_trigger
 *		Refuse to run unless we are the last enabled BEFORE INSERT row
 *		trigger of es.events.
 *
 * Row triggers fire in name order.  One firing after us could change the
 * stream or the numbers we assigned, or skip a row after its stream was
 * advanced and its notification queued.
 */
static void
check_last_before_trigger(Relation rel, Trigger *self)
{
	TriggerDesc *trigdesc = rel->trigdesc;
	bool		after_self = false;
	int			i;

	for (i = 0; i < trigdesc->numtriggers; i++)
	{
		Trigger    *t = &trigdesc->triggers[i];

		if (t->tgoid == self->tgoid)
		{
			after_self = true;
			continue;
		}
		if (after_self && t->tgenabled != TRIGGER_DISABLED &&
			TRIGGER_FOR_ROW(t->tgtype) && TRIGGER_FOR_BEFORE(t->tgtype) &&
			TRIGGER_FOR_INSERT(t->tgtype))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("trigger \"%s\" on table \"%s\" fires after the append trigger",
							t->tgname, RelationGetRelationName(rel)),
					 errdetail("A BEFORE INSERT row trigger on es.events must fire before trigger \"%s\", which assigns the event's numbers.",
							   self->tgname),
					 errhint("Rename the trigger so that its name sorts before \"%s\".",
							 self->tgname)));
	}
}

/*
 * es_events_append_trigger
 *		BEFORE INSERT FOR EACH ROW trigger on es.events.
 *
 * Returns the completed row, or NULL when the row repeats an event already
 * stored under the same event_id (an idempotent retry).
 */
Datum
es_events_append_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	Datum		values[Natts_es_events];
	bool		isnull[Natts_es_events];
	int			replcols[7];
	Datum		replvalues[7];
	bool		replnulls[7] = {false, false, false, false, false, false, false};
	int			nrepl;
	const char *category;
	const char *name;
	Datum		stream;
	Oid			seqoid;
	bool		had_xid;
	bool		repeated = false;
	int64		version = 0;
	int64		sequence_number;
	int64		global_position;
	TimestampTz created_at = 0;
	FullTransactionId fxid;
	EsSavedUser saved;
	EsCategoryDefinitions *defs;
	EsDefinition *def = NULL;
	EsJson	   *event = NULL;
	const EsJson *history_patch = NULL;
	bool		has_db_role;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager",
						"es_events_append_trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired BEFORE INSERT FOR EACH ROW",
						"es_events_append_trigger")));

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	tuple = trigdata->tg_trigtuple;
	es_check_events_tupdesc(tupdesc);
	check_last_before_trigger(rel, trigdata->tg_trigger);
	heap_deform_tuple(tuple, tupdesc, values, isnull);

	if (!isnull[Anum_es_events_transaction_id - 1])
		return PointerGetDatum(restore_event(rel, tuple, values, isnull));

	refuse_supplied_column(isnull, Anum_es_events_global_position,
						   "global_position");
	refuse_supplied_column(isnull, Anum_es_events_category, "category");
	refuse_supplied_column(isnull, Anum_es_events_created_at, "created_at");
	has_db_role = tupdesc->natts >= Anum_es_events_db_role;
	if (has_db_role)
		refuse_supplied_column(isnull, Anum_es_events_db_role, "db_role");
	category = check_event_row(values, isnull, true);
	if (!isnull[Anum_es_events_sequence_number - 1] &&
		DatumGetInt64(values[Anum_es_events_sequence_number - 1]) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid sequence number %lld",
						(long long) DatumGetInt64(values[Anum_es_events_sequence_number - 1])),
				 errdetail("Sequence numbers start at 1.")));

	stream = values[Anum_es_events_stream - 1];
	name = TextDatumGetCString(stream);

	/*
	 * Undo and redo events carry the patch their function computed under
	 * the stream's lock; no one else may append them (history.c).
	 */
	defs = es_category_definitions(category);
	if (es_is_history_event_type(TextDatumGetCString(values[Anum_es_events_event_type - 1])))
	{
		const char *event_type = TextDatumGetCString(values[Anum_es_events_event_type - 1]);

		history_patch = es_history_pending_patch(name, event_type);
		if (history_patch == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_RESERVED_NAME),
					 errmsg("event type \"%s\" is reserved", event_type),
					 errdetail("Undo and redo events are appended by es_undo(), es_redo(), es_undo_last() and es_redo_last() only."),
					 errhint("Call es_%s() to %s an event.", event_type, event_type)));
	}
	/* a validated category: what needs no state is checked before locking */
	else if (defs->ndefinitions > 0)
		event = es_prepare_event(name, defs, &def, values, isnull);
	if (isnull[Anum_es_events_event_id - 1])
	{
		values[Anum_es_events_event_id - 1] = random_event_id();
		isnull[Anum_es_events_event_id - 1] = false;
	}
	else
		repeated = true;		/* until checked under the lock */

	seqoid = get_relname_relid("events_global_position_seq",
							   RelationGetNamespace(rel));
	if (!OidIsValid(seqoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("sequence \"%s\" does not exist",
						"es.events_global_position_seq")));

	/* see eventsourcing.h: the lock comes before any transaction id */
	had_xid = TransactionIdIsValid(GetTopTransactionIdIfAny());
	if (repeated)
		es_lock_event_id(DatumGetUUIDP(values[Anum_es_events_event_id - 1]));
	es_lock_stream(name, strlen(name));

	if (repeated)
	{
		es_spi_connect_as_owner(RelationGetRelid(rel), &saved);
		repeated = event_id_already_stored(rel, saved.userid, values, isnull);
		es_spi_finish_as_owner(&saved);
	}

	if (!repeated)
	{
		created_at = GetCurrentTimestamp();
		version = es_advance_stream(rel, stream, category, created_at, name);
		if (had_xid && version > 0)
		{
			es_spi_connect_as_owner(RelationGetRelid(rel), &saved);
			check_transaction_order(stream, version, name);
			es_spi_finish_as_owner(&saved);
		}

		if (!isnull[Anum_es_events_sequence_number - 1] &&
			DatumGetInt64(values[Anum_es_events_sequence_number - 1]) !=
			version + 1)
			ereport(ERROR,
					(errcode(ES_ERRCODE_WRONG_EXPECTED_VERSION),
					 errmsg("wrong expected version for stream \"%s\"", name),
					 errdetail("Expected version %lld, actual version %lld.",
							   (long long) DatumGetInt64(values[Anum_es_events_sequence_number - 1]) - 1,
							   (long long) version),
					 errhint("Read the stream again and retry with its current version.")));

		if (event != NULL)
			es_apply_event(name, defs, def, event, version, created_at);
		else if (history_patch != NULL)
			es_apply_patch_event(name, defs, history_patch, version);
	}

	if (repeated)
		return PointerGetDatum(NULL);

	sequence_number = version + 1;
	global_position = nextval_internal(seqoid, false);
	fxid = GetTopFullTransactionId();

	replcols[0] = Anum_es_events_global_position;
	replvalues[0] = Int64GetDatum(global_position);
	replcols[1] = Anum_es_events_category;
	replvalues[1] = CStringGetTextDatum(category);
	replcols[2] = Anum_es_events_sequence_number;
	replvalues[2] = Int64GetDatum(sequence_number);
	replcols[3] = Anum_es_events_event_id;
	replvalues[3] = values[Anum_es_events_event_id - 1];
	replcols[4] = Anum_es_events_created_at;
	replvalues[4] = TimestampTzGetDatum(created_at);
	replcols[5] = Anum_es_events_transaction_id;
	replvalues[5] = FullTransactionIdGetDatum(fxid);
	nrepl = 6;
	if (has_db_role)
	{
		replcols[nrepl] = Anum_es_events_db_role;
		replvalues[nrepl] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
		nrepl++;
	}
	tuple = heap_modify_tuple_by_cols(tuple, tupdesc, nrepl,
									  replcols, replvalues, replnulls);

	/* announce the row exactly as it will be stored */
	es_notify_event(category, tuple, tupdesc);

	return PointerGetDatum(tuple);
}

/*
 * es_events_append_only_trigger
 *		BEFORE UPDATE OR DELETE and BEFORE TRUNCATE statement trigger.
 *
 * Events are never changed or removed.  A statement trigger refuses the
 * statement even when it would touch no row.
 */
Datum
es_events_append_only_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *relname;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager",
						"es_events_append_only_trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired BEFORE FOR EACH STATEMENT",
						"es_events_append_only_trigger")));

	/*
	 * The two doors through the rule: removal of events by es_compact,
	 * es_retain and es_delete_stream (compact.c), and a superuser's
	 * maintenance session.
	 */
	if (es_removing_events && TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(NULL);
	if (es_maintenance)
	{
		if (!superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to change the event log"),
					 errdetail("Only a superuser may change events with \"eventsourcing.maintenance\" on.")));
		return PointerGetDatum(NULL);
	}

	relname = RelationGetRelationName(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot update table \"%s\"", relname),
				 errdetail("The event log is append-only."),
				 errhint("Append an event that corrects the earlier one.")));
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot delete from table \"%s\"", relname),
				 errdetail("The event log is append-only.")));
	else
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot truncate table \"%s\"", relname),
				 errdetail("The event log is append-only.")));

	PG_RETURN_NULL();
}
