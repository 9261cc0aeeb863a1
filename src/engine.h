/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  The state engine: JSON documents, JSON Pointer and JSON Patch, effects
 *	  and the schema subset for event data.  Independent of PostgreSQL.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/engine.h
 *
 *-------------------------------------------------------------------------
 *
 * This header includes no PostgreSQL header and not <jansson.h> either
 * (jansson clashes with PostgreSQL's fmgrprotos.h); a document is an opaque
 * EsJson.  Only json_doc.c, json_pointer.c, json_patch.c, effect.c,
 * schema.c and event_doc.c include jansson, through engine_int.h.
 *
 * Documents
 * ---------
 * Documents are trees: the engine never makes two places of a document
 * share one node, and a document given to it must not either (documents
 * built by es_json_parse and es_json_copy never do).  Every document the
 * engine returns belongs to the caller, who frees it with es_json_free;
 * text from es_json_dump is freed with free().  No document is nested deeper
 * than ES_JSON_MAX_DEPTH containers: es_json_parse refuses deeper text and
 * the engine refuses any step that would build a deeper state.  Numbers are
 * those of jansson: integers must fit in 64 bits and other numbers in a
 * double; es_json_dump writes a double with the fewest digits that read back
 * to the same double.  Two numbers are equal when their values are equal
 * (1 equals 1.0), as RFC 6902 "test" requires; es_json_equal and every
 * comparison of the engine follow that rule.
 *
 * Errors
 * ------
 * Functions return an EsEngineStatus and fill the EsEngineError given (err
 * may be NULL).  Its message is lower-case with no final period, fit for a
 * PostgreSQL errdetail; message and path are truncated, if need be, on a
 * UTF-8 character boundary.  On ES_ENGINE_OK the error is not touched.
 * On ES_ENGINE_REJECTED or ES_ENGINE_INVALID a document being changed is
 * left exactly as it was, value for value (es_json_equal); the one thing
 * that may differ is member order: an object member that a failed effect
 * removed is put back at the end of its object.  Order means nothing to
 * the extension (states are stored as jsonb, which orders keys its own
 * way).  On ES_ENGINE_NOMEM the document is still a valid tree that can be
 * freed, but its content is unspecified: the caller must discard it.
 *
 * Atomicity
 * ---------
 * es_effect_apply and es_patch_apply change the document in place and log,
 * for every change, what it replaced (an undo log: container, member name or
 * index, old value).  On failure the log is played backwards; on success it
 * is dropped.  The cost is proportional to the size of the changes, never to
 * the size of the document; no copy of the state is made.  (Two changes
 * cost as much as the container they change: replacing the whole document,
 * and remove_where on an array, which rebuilds the array.)  Put
 * preconditions first in an effect: a step that fails before anything
 * changed costs no rollback at all.
 *
 * The effect language
 * -------------------
 * An effect is a JSON array of steps, applied in order; [] changes nothing.
 * Each step is an object with "op" and exactly the members of that op
 * (a missing or an extra member makes the effect invalid):
 *
 *	{"op": "add", "path": P, "value": V}
 *	{"op": "remove", "path": P}
 *	{"op": "replace", "path": P, "value": V}
 *	{"op": "move", "from": P, "path": P}
 *	{"op": "copy", "from": P, "path": P}
 *	{"op": "test", "path": P, "value": V}
 *		RFC 6902, with its exact semantics.  add into an array inserts at the
 *		index (index == length and "-" append); add to an existing object
 *		member replaces it; replace and remove need an existing member or
 *		index; "from" of move must not be a proper prefix of "path".  The
 *		root "" may be the path of add, replace, move and copy only if the
 *		new value has the type of the current root (a state stays an
 *		object); remove of "" fails.
 *	{"op": "exists", "path": P}
 *		fails unless P resolves.
 *	{"op": "absent", "path": P}
 *		fails if P resolves.
 *	{"op": "remove_where", "path": P, "where": [C, ...]}
 *		P must designate an object or an array.  Removes every member
 *		(object member or array element) for which at least one condition C
 *		holds.  A condition is {"pointer": Q, "equals": V}: Q is a plain JSON
 *		pointer (no template) evaluated relative to the member, and it holds
 *		if Q resolves to a value equal to V.  A member where Q does not
 *		resolve does not match.  "where" is a non-empty array.  Removing
 *		nothing is not a failure.
 *	{"op": "merge", "path": P, "value": V}
 *		RFC 7396 JSON merge patch of V, which must be an object, into the
 *		object at P, which must exist: a null member of V deletes the key,
 *		an object member merges recursively into an object, anything else
 *		replaces.
 *
 * Paths (P) are RFC 6901 JSON Pointers: "" is the whole document, "/a/b"
 * descends, "~0" stands for "~" and "~1" for "/" (any other "~" is invalid),
 * an array index is decimal without leading zeros ("0", "12"; "01" is
 * invalid) and "-" (past the end) is valid only as the last token of the
 * path of add, move and copy.  In "path" and "from" of an effect a template
 * {/ptr} is replaced by the value at JSON pointer /ptr in the event's data,
 * which must be a string or an integer; it is escaped ("~" becomes "~0",
 * "/" becomes "~1") before substitution, so it always stays within one
 * token.  "{" and "}" are only template delimiters: a path of an effect
 * cannot name a member containing a brace, templates do not nest, and "{}"
 * is invalid.  With every template replaced by "x" the path must be a valid
 * JSON pointer; in particular a template can neither begin the path
 * ("{/id}" alone is invalid: it does not start with "/") nor follow a "~".
 *
 * Values ("value", "equals") are JSON in which an object with exactly one
 * member named "$data", "$meta", "$event" or "$literal" is a reference,
 * resolved wherever it appears inside the value:
 *	{"$data": "/module"}	the value at that pointer in the event data ("" is
 *							the whole data)
 *	{"$meta": "/x"}			the value at that pointer in the event metadata
 *	{"$event": F}			the event field F: "sequence_number",
 *							"created_at", "user_id", "username" or
 *							"event_type" (null if the event has null)
 *	{"$literal": X}			X itself, not resolved
 * A reference to something missing fails the step.  An object with one of
 * these four members and any other member is invalid, as is a "$data" or
 * "$meta" that is not a valid pointer or an unrecognized "$event" field.
 *
 * A failure names the step (0-based index and op), the path after template
 * substitution and the reason, e.g. step 0 (absent), path "/modules/m1",
 * message "value at \"/modules/m1\" already exists".
 *
 * Idioms.  A state starts as {}; a step {"op": "merge", "path": "",
 * "value": {"modules": {}, "links": {}}} makes sure that those containers
 * exist (merging {} into an existing object changes nothing), so that
 * "add /modules/{/moduleId}" can follow.  This works for objects only: a
 * merge replaces arrays.  Deleting a module and every link that refers to
 * it is a remove followed by a remove_where on /links with two conditions
 * (source equals the id, target equals the id).
 *
 * Depth.  No step may make the state deeper than ES_JSON_MAX_DEPTH; a
 * patch (a document one array and one object deeper than the values it
 * carries) of a value that deep is two levels over what es_json_parse
 * reads back.
 *
 * Schema subset
 * -------------
 * A schema for event data is a JSON object using only these keywords:
 * "type" (one of object, array, string, number, integer, boolean, null, or a
 * non-empty array of them; an integer is a number without fraction),
 * "required" (array of member names), "properties" (object of schemas),
 * "additionalProperties" (boolean), "enum" (non-empty array of values),
 * "items" (a schema for every element), "minLength" and "maxLength"
 * (non-negative integers, counted in characters), and the annotations
 * "title" and "description" (strings, ignored).  Any other keyword is
 * invalid, so that typos are caught at definition time.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_ENGINE_H
#define ES_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

/* deepest nesting of containers in any document of the engine */
#define ES_JSON_MAX_DEPTH	1000

struct json_t;
typedef struct json_t EsJson;

typedef enum EsEngineStatus
{
	ES_ENGINE_OK = 0,
	ES_ENGINE_REJECTED,			/* the event does not apply to this state /
								 * data fails the schema */
	ES_ENGINE_INVALID,			/* the effect, patch or schema itself is
								 * malformed */
	ES_ENGINE_NOMEM				/* allocation failed */
} EsEngineStatus;

typedef struct EsEngineError
{
	int			step;			/* 0-based index of the failing step, -1 if
								 * not a step */
	char		op[32];			/* op of the failing step ("" if none) */
	char		path[1024];		/* path after template substitution (as
								 * written if substitution failed), "" if
								 * none */
	char		message[512];	/* lower-case, no final period */
} EsEngineError;

/*
 * Documents (json_doc.c)
 *
 * es_json_parse: parses UTF-8 JSON text of any type; NULL on failure, with
 * err->message "out of memory" when allocation failed.  Refuses nesting
 * deeper than ES_JSON_MAX_DEPTH.  Of duplicate keys the last wins.
 * es_json_dump: malloc'd compact text, NUL-terminated, keys in insertion
 * order; *len (if len is not NULL) gets its length; NULL when out of memory.
 * es_json_copy: a deep copy, NULL when out of memory.
 * es_json_free: releases a document; NULL is fine.
 * es_json_empty_object: a new {}, NULL when out of memory.
 * es_json_equal: equality by value (numbers compared by value).
 */
extern EsJson *es_json_parse(const char *text, size_t len, EsEngineError *err);
extern char *es_json_dump(const EsJson *doc, size_t *len);
extern EsJson *es_json_copy(const EsJson *doc);
extern void es_json_free(EsJson *doc);
extern EsJson *es_json_empty_object(void);
extern bool es_json_equal(const EsJson *a, const EsJson *b);

/* es_json_member: member key of an object (borrowed), NULL if none */
extern const EsJson *es_json_member(const EsJson *obj, const char *key);

/*
 * Allocation and the event document (event_doc.c)
 *
 * es_json_set_allocator: every node of every document is allocated with
 * alloc and released with release from now on (jansson's
 * json_set_alloc_funcs; call it before any document exists).  alloc returns
 * NULL when out of memory and must not jump out.  The engine's own scratch
 * memory (undo logs, parsed pointers, text buffers, the text of
 * es_json_dump) uses malloc; the engine never jumps out of a call, so all of
 * it but the text returned is freed before the call returns.
 *
 * es_event_new: the event document an effect refers to ("event" of
 * es_effect_apply) from the event's fields; data and metadata are JSON text
 * (metadata NULL for a null), the strings are NUL-terminated UTF-8 or NULL
 * for null (event_type must not be NULL).  NULL, with the reason in err, if
 * data or metadata is not valid JSON or is nested too deeply, or when out of
 * memory.
 */
typedef struct EsEventFields
{
	const char *data;
	size_t		data_len;
	const char *metadata;		/* NULL: null */
	size_t		metadata_len;
	long long	sequence_number;
	const char *created_at;
	const char *user_id;
	const char *username;
	const char *event_type;
} EsEventFields;

extern void es_json_set_allocator(void *(*alloc) (size_t), void (*release) (void *));
extern EsJson *es_event_new(const EsEventFields *fields, EsEngineError *err);

/*
 * es_event_stamp: sets the sequence number and created_at (NULL for null)
 * of an event document, which an appended event gets only once its stream
 * is locked.  ES_ENGINE_NOMEM when out of memory.
 * es_event_data: the data of an event document (borrowed, not a copy).
 */
extern EsEngineStatus es_event_stamp(EsJson *event, long long sequence_number,
									 const char *created_at, EsEngineError *err);
extern const EsJson *es_event_data(const EsJson *event);

/*
 * Definitions (effect.c, schema.c), checked when registered: both return
 * ES_ENGINE_INVALID, with the step, op, path and reason, for a malformed
 * definition.  What depends on the event (a template or a reference that
 * finds nothing) is only known when applying.
 */
extern EsEngineStatus es_effect_check(const EsJson *effect, EsEngineError *err);
extern EsEngineStatus es_schema_check(const EsJson *schema, EsEngineError *err);

/*
 * es_effect_check_schema: what the schema of the data tells of the effect,
 * known when the definition is registered.  ES_ENGINE_OK if schema is NULL
 * (the effect is not looked at then).  Otherwise the effect and the schema
 * are checked first (es_effect_check, es_schema_check: their errors are
 * returned as is), then every template {/ptr} of a "path" or "from" and
 * every {"$data": ptr} reference of a "value" or an "equals" is followed
 * through the schema along the tokens of ptr: a property listed in
 * "properties" descends into its schema, an array index into "items".
 * ES_ENGINE_INVALID, naming the step, op, path (as written: the "from" for
 * a template of "from") and reason, if no data valid against the schema
 * can have a value there:
 *	- a property that is not listed where "additionalProperties" is false,
 *	  e.g. template "{/moduleId}" refers to nothing: the schema of the data
 *	  has no property "moduleId";
 *	- a token below a value whose "type" allows neither object nor array,
 *	  or a token that is not an array index below one that can only be an
 *	  array;
 * and, for a template only (which needs a string or an integer), if the
 * schema makes the value something else: a "type" that allows none of
 * string, integer and number, or an "enum" with no string and no integer.
 * A level that does not say what is below it (no "properties" entry and no
 * "additionalProperties": false for the token, no "items" for an index, or
 * a type that allows both an object and an array with a schema for each)
 * ends the walk: anything goes below.  "required" is not considered (a
 * property that may be missing is only known missing when applying), nor
 * are "$meta" and "$event" references, nor the "pointer" of a condition
 * (relative to a member of the state).
 */
extern EsEngineStatus es_effect_check_schema(const EsJson *effect,
											 const EsJson *schema,
											 EsEngineError *err);

/*
 * es_schema_validate: ES_ENGINE_REJECTED, naming the JSON pointer of the
 * offending value in err->path and err->message, if data fails the schema;
 * ES_ENGINE_INVALID if the schema does not pass es_schema_check.
 */
extern EsEngineStatus es_schema_validate(const EsJson *schema, const EsJson *data,
										 EsEngineError *err);

/*
 * es_effect_apply: applies every step of effect to state, in place and
 * atomically.  event is {"data": {...}, "metadata": {...} | null,
 * "sequence_number": N, "created_at": "...", "user_id": ... | null,
 * "username": ... | null, "event_type": "..."}.  The effect is checked as it
 * is applied, so an unchecked effect gives ES_ENGINE_INVALID, never a crash.
 *
 * es_effect_apply_resolve: the same, and on success *patch (if patch is not
 * NULL) gets the concrete RFC 6902 patch of what was done, as
 * es_effect_resolve describes; on failure *patch is NULL.  This is the call
 * for an append that stores the concrete patch: it costs no copy of the
 * state.
 *
 * es_effect_resolve: the concrete RFC 6902 patch that effect does to state
 * for event, without changing state (it works on a copy of state, so it
 * costs one copy).  Templates are substituted and references resolved;
 * exists and absent are dropped (they held); remove_where becomes one
 * remove per removed member (array elements from the last); merge becomes
 * add and remove of single members.  Applying it to state with
 * es_patch_apply gives the state es_effect_apply gives.
 */
extern EsEngineStatus es_effect_apply(EsJson *state, const EsJson *effect,
									  const EsJson *event, EsEngineError *err);
extern EsEngineStatus es_effect_apply_resolve(EsJson *state, const EsJson *effect,
											  const EsJson *event, EsJson **patch,
											  EsEngineError *err);

/*
 * es_effect_apply_trace: es_effect_apply_resolve, and on success *reads (if
 * reads is not NULL) gets what the effect relied on: its exists and absent
 * steps, in order, as [{"op": "exists" | "absent", "path": P}, ...] with
 * templates substituted.  An add in *patch that creates a missing member
 * as an empty object or array, from a merge step whose value has no
 * reference, carries "scaffold": true.  On failure *patch and *reads are
 * NULL.
 */
extern EsEngineStatus es_effect_apply_trace(EsJson *state, const EsJson *effect,
											const EsJson *event, EsJson **patch,
											EsJson **reads, EsEngineError *err);
extern EsEngineStatus es_effect_resolve(const EsJson *effect, const EsJson *event,
										const EsJson *state, EsJson **patch,
										EsEngineError *err);

/*
 * Plain RFC 6902 patches (json_patch.c): only add, remove, replace, move,
 * copy and test, no templates, no references.
 *
 * es_patch_apply: applies patch to doc in place, atomically.
 * es_patch_inverse: *inverse gets the patch that undoes patch applied to
 * doc_before (doc_before is not changed; the function works on a copy).
 * add of a new member or element becomes remove; add over a member and
 * replace become replace with the old value; remove becomes add of the old
 * value; move becomes the move back (plus add of the member it overwrote);
 * copy becomes remove; test becomes nothing.  Fails as es_patch_apply would
 * if patch does not apply to doc_before; *inverse is NULL then.
 */
extern EsEngineStatus es_patch_apply(EsJson *doc, const EsJson *patch,
									 EsEngineError *err);
extern EsEngineStatus es_patch_inverse(const EsJson *doc_before, const EsJson *patch,
									   EsJson **inverse, EsEngineError *err);

/*
 * Undo (undo_patch.c)
 *
 * es_undo_patch: *undo gets the patch that undoes patch applied to
 * doc_before: es_patch_inverse, less the inverse of the ops marked
 * "scaffold": true (es_effect_apply_trace), the empty containers an effect
 * makes sure exist: other changes may have filled them since.  Fails as
 * es_patch_inverse does.
 *
 * es_patch_conflict: ES_ENGINE_REJECTED if a later change conflicts with
 * applying undo now: its concrete patch later_patch changed (or tested) a
 * value at, above or below a path where undo writes, or one of its reads
 * (es_effect_apply_trace; NULL if none) relied on the existence of a value
 * at or below a path where undo writes.  A path through an array stands
 * for the whole array (elements shift).  err->path gets the later change's
 * path and err->message says what happened.  ES_ENGINE_OK if there is no
 * conflict; ES_ENGINE_INVALID if a patch is malformed.
 */
extern EsEngineStatus es_undo_patch(const EsJson *doc_before, const EsJson *patch,
									EsJson **undo, EsEngineError *err);
extern EsEngineStatus es_patch_conflict(const EsJson *undo, const EsJson *later_patch,
										const EsJson *later_reads,
										EsEngineError *err);

#endif							/* ES_ENGINE_H */
