/*-------------------------------------------------------------------------
 *
 * eventsourcing.h
 *	  Declarations shared by the C files of the eventsourcing extension.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/eventsourcing.h
 *
 *-------------------------------------------------------------------------
 *
 * Append path and its locking rules
 * ---------------------------------
 * There is one append path: the BEFORE INSERT trigger on es.events
 * (trigger.c).  es_append and es_append_batch (append.c) are thin callers
 * that INSERT into es.events; a plain INSERT takes the same path.
 *
 * For each new event the trigger, in this order:
 *	 1. validates the row (stream name, event type, data, sizes);
 *	 2. takes the lock of the event id if the appender supplied one (so that
 *		retries of one id on different streams serialise too), then the
 *		stream's append lock, a transaction-scoped heavyweight
 *		lock on a hash of the stream name (stream.c).  It needs no
 *		transaction id, so a transaction that had none before gets its id
 *		after the previous appender of the stream has committed;
 *	 3. with the lock held: checks event_id idempotency, advances
 *		es.streams.version by one (creating the row for a new stream),
 *		checks a supplied sequence number against the new version (this is
 *		how expected_version is enforced; a mismatch aborts the statement,
 *		undoing the advance), draws the global position from
 *		es.events_global_position_seq and stamps created_at and
 *		transaction_id;
 *	 4. queues the notification (notify.c).
 *
 * The lock is held until commit, so the events of one stream are numbered
 * 1, 2, 3 ... in commit order with no gaps, and their global positions
 * increase with their sequence numbers.  Appends to different streams take
 * different locks and never wait for each other.
 *
 * es_read_all (read.c) orders events by (transaction_id, global_position)
 * and returns only transactions older than the snapshot's xmin, which have
 * all ended; see the comment there for why this never skips an event.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCING_H
#define EVENTSOURCING_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "engine.h"

/* limits of the public contract (README "Streams") */
#define ES_STREAM_MAX_LEN		200
#define ES_CATEGORY_MAX_LEN		50
#define ES_NAME_MAX_LEN			200 /* event_type, user_id, username */

/*
 * NOTIFY refuses a payload of this many bytes or more.  PostgreSQL defines
 * the same expression privately in async.c.
 */
#define ES_NOTIFY_PAYLOAD_LIMIT	(BLCKSZ - NAMEDATALEN - 128)

/*
 * SQLSTATEs of our own.  Subclasses starting with 'S' are in the range the
 * SQL standard leaves to implementations.
 */
/* 40S01: expected version (or supplied sequence number) does not match */
#define ES_ERRCODE_WRONG_EXPECTED_VERSION	MAKE_SQLSTATE('4','0','S','0','1')
/* 23S01: an event_id is reused with different content */
#define ES_ERRCODE_EVENT_ID_CONFLICT		MAKE_SQLSTATE('2','3','S','0','1')
/* 42S01: an event type without a definition in a category that has some */
#define ES_ERRCODE_UNDEFINED_EVENT_TYPE		MAKE_SQLSTATE('4','2','S','0','1')
/* 22S01: event data that does not match its event type's schema */
#define ES_ERRCODE_SCHEMA_MISMATCH			MAKE_SQLSTATE('2','2','S','0','1')
/* 23S02: an event whose effect cannot be applied to its stream's state */
#define ES_ERRCODE_EFFECT_FAILED			MAKE_SQLSTATE('2','3','S','0','2')
/* 23S03: a later event changed what an undo or redo would change */
#define ES_ERRCODE_UNDO_CONFLICT			MAKE_SQLSTATE('2','3','S','0','3')
/* 55S01: the history asked for was removed by compaction or retention */
#define ES_ERRCODE_HISTORY_COMPACTED		MAKE_SQLSTATE('5','5','S','0','1')
/* 55S02: an event that cannot be undone or redone (already, wrong kind) */
#define ES_ERRCODE_CANNOT_UNDO				MAKE_SQLSTATE('5','5','S','0','2')
/* 55S03: the stream was deleted */
#define ES_ERRCODE_STREAM_DELETED			MAKE_SQLSTATE('5','5','S','0','3')

/* the built-in event types of es_undo and es_redo */
#define ES_UNDO_EVENT_TYPE		"undo"
#define ES_REDO_EVENT_TYPE		"redo"

/*
 * Attribute numbers of es.events, in the order of the install script.  The
 * trigger checks them against the relation (es_check_events_tupdesc).
 */
#define Anum_es_events_global_position	1
#define Anum_es_events_stream			2
#define Anum_es_events_category			3
#define Anum_es_events_sequence_number	4
#define Anum_es_events_event_id			5
#define Anum_es_events_event_type		6
#define Anum_es_events_data				7
#define Anum_es_events_metadata			8
#define Anum_es_events_user_id			9
#define Anum_es_events_username			10
#define Anum_es_events_created_at		11
#define Anum_es_events_transaction_id	12
#define Anum_es_events_db_role			13	/* since 1.2 */
#define Natts_es_events					13
#define Natts_es_events_1_0				12

/* attribute numbers of es.streams */
#define Anum_es_streams_stream			1
#define Anum_es_streams_category		2
#define Anum_es_streams_version			3
#define Anum_es_streams_created_at		4
#define Anum_es_streams_updated_at		5
#define Anum_es_streams_deleted_at		6	/* since 1.2 */
#define Natts_es_streams				6
#define Natts_es_streams_1_0			5

/* attribute numbers of es.event_types */
#define Anum_es_event_types_category	1
#define Anum_es_event_types_event_type	2
#define Anum_es_event_types_effect		3
#define Anum_es_event_types_schema		4
#define Natts_es_event_types			5

/* values of eventsourcing.notify */
typedef enum EsNotifyMode
{
	ES_NOTIFY_OFF,
	ES_NOTIFY_COMMIT,
	ES_NOTIFY_WORKER
} EsNotifyMode;

/* guc.c */
extern int	es_notify_mode;
extern int	es_max_event_size;
extern int	es_snapshot_every;
extern int	es_state_cache_size;	/* state_cache.c */
extern bool es_maintenance;

/* definition.c: a category's definitions, cached per backend */
typedef struct EsDefinition
{
	char		event_type[ES_NAME_MAX_LEN + 1];	/* hash key */
	EsJson	   *effect;
	EsJson	   *schema;			/* NULL if none */
} EsDefinition;

typedef struct EsCategoryDefinitions
{
	char		category[ES_CATEGORY_MAX_LEN + 1];	/* hash key */
	int			ndefinitions;	/* 0: the category is not validated */
	int64		hash;			/* of the event types and effects */
	struct HTAB *types;			/* event type -> EsDefinition */
} EsCategoryDefinitions;

extern uint64 es_definitions_generation;
extern void es_definitions_init(void);
extern Oid	es_relation_oid(const char *relname);
extern EsCategoryDefinitions *es_category_definitions(const char *category);
extern EsDefinition *es_find_definition(EsCategoryDefinitions *defs,
										const char *event_type);

/* state_cache.c: a stream's state after one of its events */
typedef struct EsState
{
	char		stream[ES_STREAM_MAX_LEN + 1];
	int64		version;		/* the state is after this event */
	EsJson	   *doc;
	uint64		generation;		/* es_definitions_generation folded under */
	MemoryContext cxt;			/* holds the entry and its document */
	Size		size;			/* of cxt, while cached */
	int			pins;
	bool		cached;
	bool		dirty;			/* includes events of this transaction */
	dlist_node	lru_node;
	dlist_node	dirty_node;
} EsState;

extern void es_state_cache_init(void);
extern void es_state_cache_reset(void);
extern EsState *es_state_get(const char *stream);
extern EsState *es_state_new(const char *stream);
extern void es_state_mark_dirty(EsState *st);
extern void es_state_release(EsState *st, bool keep);

/* state.c */
extern EsState *es_state_at(const char *stream, EsCategoryDefinitions *defs,
							int64 version, bool latest);
extern EsState *es_state_base(const char *stream, int64 *base);
extern void es_state_fold(EsState *st, EsCategoryDefinitions *defs,
						  int64 version, bool latest);
extern void es_apply_patch_event(const char *stream, EsCategoryDefinitions *defs,
								 const EsJson *patch, int64 version);
extern bool es_is_history_event_type(const char *event_type);
extern bool es_has_removals(void);

/* what a stream's head looks like to the caller (state.c) */
typedef struct EsStreamHead
{
	int64		version;		/* 0 if the stream has no row */
	int64		base;			/* last event removed by compaction, 0 if
								 * none */
	bool		deleted;
} EsStreamHead;

extern void es_stream_head(const char *stream, bool latest, EsStreamHead *head);
extern void es_check_not_compacted(const char *stream, const EsStreamHead *head,
								   int64 version);
extern EsJson *es_prepare_event(const char *stream, EsCategoryDefinitions *defs,
								EsDefinition **def, const Datum *values,
								const bool *isnull);
extern void es_apply_event(const char *stream, EsCategoryDefinitions *defs,
						   EsDefinition *def, EsJson *event, int64 version,
						   TimestampTz created_at);
extern void es_write_snapshot(EsState *st, EsCategoryDefinitions *defs);

/* history.c: the undo or redo event being appended by this backend */
extern Datum es_history_toggle(Datum stream, bool undo, bool last,
							   int64 target, Datum user_id, Datum username,
							   Datum event_id);
extern const EsJson *es_history_pending_patch(const char *stream,
											  const char *event_type);

/* append.c */
extern Relation es_open_events(const char *caller);
extern Datum es_append_row(Relation rel, Datum stream, const char *event_type,
						   Jsonb *data, int64 sequence_number, Datum event_id,
						   Datum user_id, Datum username);
extern Datum es_event_by_id(Datum event_id);

/* compact.c */
extern bool es_removing_events;

/* engine_jsonb.c */
extern void es_engine_init(void);
extern void es_engine_out_of_memory(void) pg_attribute_noreturn();
extern char *es_engine_detail(const EsEngineError *err);
extern char *es_engine_message(const EsEngineError *err);
extern EsJson *es_jsonb_to_engine(Jsonb *jb, EsEngineError *err);
extern Jsonb *es_engine_to_jsonb(const EsJson *doc);
extern EsJson *es_engine_event(const Datum *values, const bool *isnull,
							   EsEngineError *err);

/*
 * An event as it is announced: the fields of the event message of the
 * WebSocket protocol, plus stream and global position.
 */
typedef struct EsEventMessage
{
	const char *stream;
	int64		sequence_number;
	int64		global_position;
	Datum		event_id;		/* pg_uuid_t * */
	const char *event_type;
	Jsonb	   *data;
	const char *user_id;		/* NULL if absent */
	const char *username;		/* NULL if absent */
	TimestampTz created_at;
} EsEventMessage;

/* stream.c */
extern void es_check_category(const char *category, int len);
extern const char *es_stream_category(const char *stream, int len);
extern void es_lock_stream(const char *stream, int len);
extern void es_lock_event_id(const pg_uuid_t *event_id);

/* message.c */
extern void es_event_message_from_row(EsEventMessage *ev, const Datum *values,
									  const bool *isnull);
extern void es_append_event_message(StringInfo buf, const EsEventMessage *ev,
									bool with_data);
extern void es_jsonb_push_string(JsonbParseState **ps, const char *key,
								 const char *value);
extern void es_jsonb_push_int64(JsonbParseState **ps, const char *key,
								int64 value);
extern void es_jsonb_push_jsonb(JsonbParseState **ps, const char *key,
								Jsonb *value);
/* room for es_utc_timestamp's text */
#define ES_TIMESTAMP_BUFLEN		(MAXDATELEN + 2)
extern void es_utc_timestamp(TimestampTz ts, char *str);

/* query.c */
struct _SPI_plan;
typedef struct EsSavedUser
{
	Oid			userid;
	int			sec_context;
} EsSavedUser;

extern void es_spi_connect(void);
extern void es_spi_finish(void);
extern void es_spi_connect_as_owner(Oid relid, EsSavedUser *saved);
extern void es_spi_finish_as_owner(const EsSavedUser *saved);
extern struct _SPI_plan *es_query_plan(struct _SPI_plan **plan,
									   const char *query, int nargs,
									   Oid *argtypes);
extern void es_query_run(struct _SPI_plan *plan, Datum *values,
						 const char *nulls, bool read_only, long tcount,
						 int expected);
extern void es_query_run_latest(struct _SPI_plan *plan, Datum *values,
								const char *nulls, long tcount,
								int expected);
extern void es_query_write_latest(struct _SPI_plan *plan, Datum *values,
								  const char *nulls, long tcount,
								  int expected);

/* relation.c */
extern void es_check_events_tupdesc(TupleDesc tupdesc);
extern void es_check_streams_tupdesc(TupleDesc tupdesc);
extern Datum es_insert_event(Relation rel, HeapTuple tuple);
extern int64 es_advance_stream(Relation events, Datum stream,
							   const char *category, TimestampTz now,
							   const char *name);

/* replay.c */
extern int64 es_sequence_at_time(const char *stream, Datum at);
extern int64 es_stream_version(const char *stream);

/* notify.c */
extern void es_notify_event(const char *category, HeapTuple tuple,
							TupleDesc tupdesc);
extern void es_notify_send(const char *category, const Datum *values,
						   const bool *isnull);

/* notify_queue.c */
extern bool es_notify_queue_event(int64 global_position);
extern void es_notify_queue_init(void);

/* notifier.c */
extern void es_notifier_preload(void);
extern bool es_notifier_available(void);
extern bool es_notifier_ensure(Oid dbid, bool report);
extern void es_notifier_wake(Oid dbid);
PGDLLEXPORT extern void es_notifier_main(Datum main_arg);
PGDLLEXPORT extern void es_notifier_launcher_main(Datum main_arg);

#endif							/* EVENTSOURCING_H */
