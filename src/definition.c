/*-------------------------------------------------------------------------
 *
 * definition.c
 *	  Event definitions: the triggers of es.event_types and each backend's
 *	  cache of the definitions of a category.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/definition.c
 *
 *-------------------------------------------------------------------------
 *
 * A category's definitions are read once per backend, parsed into engine
 * documents, and kept until es.event_types changes.  Its AFTER statement
 * trigger sends a relcache invalidation for the table; every backend (this
 * one at its next command, the others when they next accept invalidation
 * messages, which they do before using any relation) then drops all
 * definitions and all cached states, which were folded with them.
 *
 * A dropped cache may still be in use: a fold or a validation that was
 * running when the invalidation arrived (they arrive whenever a lock is
 * taken) keeps its pointers.  So a dropped cache's memory is handed to the
 * current transaction, which frees it when it ends; and a fold that started
 * under older definitions does not put its result into the state cache
 * (es_definitions_generation tells).
 *
 * Each category's definitions have a hash of every event type and effect
 * (schemas do not change states).  Snapshots record it, so that a snapshot
 * folded with other definitions is never used.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "eventsourcing.h"

PG_FUNCTION_INFO_V1(es_event_types_check_trigger);
PG_FUNCTION_INFO_V1(es_event_types_changed_trigger);

/* bumped whenever the cached definitions are dropped */
uint64		es_definitions_generation = 1;

/* all cached definitions live here; NULL when nothing is cached */
static MemoryContext definitions_cxt = NULL;
static HTAB *categories = NULL;

/* es.event_types, whose invalidations drop the caches */
static Oid	event_types_relid = InvalidOid;

static SPIPlanPtr plan_definitions = NULL;

/*
 * Drop every cached definition and every cached state.
 */
static void
drop_definitions(void)
{
	es_definitions_generation++;
	if (definitions_cxt != NULL)
	{
		/* see the header comment: callers may still hold pointers */
		if (IsTransactionState())
			MemoryContextSetParent(definitions_cxt, TopTransactionContext);
		else
			MemoryContextDelete(definitions_cxt);
		definitions_cxt = NULL;
		categories = NULL;
	}
	es_state_cache_reset();
}

/*
 * Relcache invalidation callback.  InvalidOid means "everything".
 */
static void
definitions_relcache_callback(Datum arg, Oid relid)
{
	/* before es.event_types was found, any relation might be it */
	if (relid == InvalidOid || relid == event_types_relid ||
		event_types_relid == InvalidOid)
	{
		event_types_relid = InvalidOid;
		drop_definitions();
	}
}

/*
 * es_definitions_init
 *		Register the invalidation callback; called by _PG_init.
 */
void
es_definitions_init(void)
{
	CacheRegisterRelcacheCallback(definitions_relcache_callback, (Datum) 0);
}

/*
 * The OID of a relation of schema es, or an error if it does not exist.
 */
Oid
es_relation_oid(const char *relname)
{
	Oid			nspid = get_namespace_oid("es", false);
	Oid			relid = get_relname_relid(relname, nspid);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"es.%s\" does not exist", relname),
				 errhint("Update the extension: ALTER EXTENSION eventsourcing UPDATE.")));
	return relid;
}

/*
 * Parse a jsonb definition column into a document in CurrentMemoryContext.
 */
static EsJson *
parse_definition_column(Jsonb *jb, const char *column, const char *category,
						const char *event_type)
{
	EsEngineError err;
	EsJson	   *doc = es_jsonb_to_engine(jb, &err);

	if (doc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("invalid %s for event type \"%s\" of category \"%s\"",
						column, event_type, category),
				 errdetail("%s", es_engine_detail(&err))));
	return doc;
}

/*
 * Read the definitions of one category into defs, in definitions_cxt.
 *
 * The query runs as the owner of es.event_types: validation is the
 * database's rule, not a privilege of the appender.  Like the system
 * catalogs, it reads the latest committed definitions whatever the
 * transaction's snapshot: what this backend caches must be what the next
 * invalidation will be about.
 */
static void
load_category(EsCategoryDefinitions *defs)
{
	/* an invalidation while we read may retire it: it stays valid */
	MemoryContext cxt = definitions_cxt;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	EsSavedUser saved;
	Oid			relid;
	StringInfoData hashed;
	HASHCTL		ctl;
	uint64		i;

	/* the schema of version 1.0, not yet updated, has no definitions */
	relid = get_relname_relid("event_types", get_namespace_oid("es", false));
	defs->ndefinitions = 0;
	defs->hash = 0;
	defs->types = NULL;
	if (!OidIsValid(relid))
		return;

	args[0] = CStringGetTextDatum(defs->category);
	es_spi_connect_as_owner(relid, &saved);
	es_query_run_latest(es_query_plan(&plan_definitions,
									  "SELECT event_type, effect, schema"
									  " FROM es.event_types"
									  " WHERE category OPERATOR(pg_catalog.=) $1"
									  " ORDER BY event_type COLLATE pg_catalog.\"C\"",
									  1, argtypes),
						args, NULL, 0, SPI_OK_SELECT);

	defs->ndefinitions = (int) SPI_processed;
	defs->hash = 0;
	defs->types = NULL;
	if (SPI_processed > 0)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

		ctl.keysize = ES_NAME_MAX_LEN + 1;
		ctl.entrysize = sizeof(EsDefinition);
		ctl.hcxt = cxt;
		defs->types = hash_create("eventsourcing event types",
								  Max(SPI_processed, 8), &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		MemoryContextSwitchTo(oldcxt);
	}

	initStringInfo(&hashed);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	tupdesc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *event_type = TextDatumGetCString(SPI_getbinval(tuple, tupdesc, 1, &isnull));
		Jsonb	   *effect = DatumGetJsonbP(SPI_getbinval(tuple, tupdesc, 2, &isnull));
		Datum		schema = SPI_getbinval(tuple, tupdesc, 3, &isnull);
		EsDefinition *def;
		MemoryContext oldcxt;
		bool		found;

		if (strlen(event_type) > ES_NAME_MAX_LEN)
			elog(ERROR, "event type of es.event_types is too long");

		def = hash_search(defs->types, event_type, HASH_ENTER, &found);
		oldcxt = MemoryContextSwitchTo(cxt);
		def->effect = parse_definition_column(effect, "effect", defs->category,
											  event_type);
		def->schema = isnull ? NULL :
			parse_definition_column(DatumGetJsonbP(schema), "schema",
									defs->category, event_type);
		MemoryContextSwitchTo(oldcxt);

		appendStringInfoString(&hashed, event_type);
		appendStringInfoChar(&hashed, '\0');
		(void) JsonbToCString(&hashed, &effect->root, VARSIZE(effect));
		appendStringInfoChar(&hashed, '\0');
	}
	if (SPI_processed > 0)
		defs->hash = (int64) hash_bytes_extended((const unsigned char *) hashed.data,
												 hashed.len, 0);

	es_spi_finish_as_owner(&saved);
	event_types_relid = relid;
}

/*
 * es_category_definitions
 *		The definitions of a category, read from es.event_types if this
 *		backend has not cached them.  ndefinitions is 0 for a category
 *		without definitions.  Valid until the end of the transaction.
 */
EsCategoryDefinitions *
es_category_definitions(const char *category)
{
	EsCategoryDefinitions *defs;
	bool		found;

	if (categories == NULL)
	{
		HASHCTL		ctl;

		definitions_cxt = AllocSetContextCreate(CacheMemoryContext,
												"eventsourcing definitions",
												ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = ES_CATEGORY_MAX_LEN + 1;
		ctl.entrysize = sizeof(EsCategoryDefinitions);
		ctl.hcxt = definitions_cxt;
		categories = hash_create("eventsourcing categories", 16, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}

	if (strlen(category) > ES_CATEGORY_MAX_LEN)
		elog(ERROR, "category name is too long");
	defs = hash_search(categories, category, HASH_ENTER, &found);
	if (!found)
	{
		uint64		generation = es_definitions_generation;

		PG_TRY();
		{
			load_category(defs);
		}
		PG_CATCH();
		{
			/* leave no half-loaded entry behind */
			if (generation == es_definitions_generation && categories != NULL)
				hash_search(categories, category, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return defs;
}

/*
 * es_find_definition
 *		The definition of an event type in a category, NULL if none.
 */
EsDefinition *
es_find_definition(EsCategoryDefinitions *defs, const char *event_type)
{
	if (defs->types == NULL || strlen(event_type) > ES_NAME_MAX_LEN)
		return NULL;
	return hash_search(defs->types, event_type, HASH_FIND, NULL);
}

/*
 * Check one definition; raise 42P17 if it is malformed.
 */
static void
check_definition(const char *category, const char *event_type, Jsonb *effect,
				 Jsonb *schema)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	EsJson	   *effect_doc;
	EsJson	   *schema_doc = NULL;
	EsEngineError err;
	const char *what = "effect";
	EsEngineStatus status;

	if (es_is_history_event_type(event_type))
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("event type \"%s\" is reserved", event_type),
				 errdetail("Undo and redo events are built in: their data carries the patch they apply.")));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventsourcing definition check",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	effect_doc = parse_definition_column(effect, "effect", category, event_type);
	status = es_effect_check(effect_doc, &err);
	if (status == ES_ENGINE_OK && schema != NULL)
	{
		what = "schema";
		schema_doc = parse_definition_column(schema, "schema", category, event_type);
		status = es_schema_check(schema_doc, &err);
		if (status == ES_ENGINE_OK)
		{
			what = "effect";
			status = es_effect_check_schema(effect_doc, schema_doc, &err);
		}
	}
	if (status == ES_ENGINE_NOMEM)
		es_engine_out_of_memory();
	if (status != ES_ENGINE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("invalid %s for event type \"%s\" of category \"%s\"",
						what, event_type, category),
				 errdetail("%s", es_engine_detail(&err)),
				 errhint("See \"Event definitions\" in the README of eventsourcing.")));
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * es_event_types_check_trigger
 *		BEFORE INSERT OR UPDATE FOR EACH ROW trigger on es.event_types:
 *		refuse a malformed definition when it is stored.
 */
Datum
es_event_types_check_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	tuple;
	bool		isnull;
	Datum		value;
	char	   *category;
	char	   *event_type;
	Jsonb	   *schema = NULL;
	int			len;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired BEFORE INSERT OR UPDATE FOR EACH ROW",
						"es_event_types_check_trigger")));

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	if (tupdesc->natts < Natts_es_event_types)
		elog(ERROR, "es.event_types has an unexpected layout");

	/* NOT NULL constraints, checked after this trigger, report nulls */
	value = heap_getattr(tuple, Anum_es_event_types_category, tupdesc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);
	category = TextDatumGetCString(value);
	es_check_category(category, strlen(category));

	value = heap_getattr(tuple, Anum_es_event_types_event_type, tupdesc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);
	event_type = TextDatumGetCString(value);
	len = strlen(event_type);
	if (len < 1 || len > ES_NAME_MAX_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("invalid event type"),
				 errdetail("An event type must be between 1 and %d bytes long, not %d.",
						   ES_NAME_MAX_LEN, len)));

	value = heap_getattr(tuple, Anum_es_event_types_schema, tupdesc, &isnull);
	if (!isnull)
		schema = DatumGetJsonbP(value);
	value = heap_getattr(tuple, Anum_es_event_types_effect, tupdesc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);
	check_definition(category, event_type, DatumGetJsonbP(value), schema);

	return PointerGetDatum(tuple);
}

/*
 * es_event_types_changed_trigger
 *		AFTER INSERT OR UPDATE OR DELETE / AFTER TRUNCATE statement trigger
 *		on es.event_types: make every backend drop its cached definitions
 *		and states.
 */
Datum
es_event_types_changed_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired AFTER FOR EACH STATEMENT",
						"es_event_types_changed_trigger")));

	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
