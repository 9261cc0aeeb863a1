/*-------------------------------------------------------------------------
 *
 * engine_int.h
 *	  Declarations shared by the files of the state engine; includes
 *	  jansson, so no PostgreSQL file may include it.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/engine_int.h
 *
 *-------------------------------------------------------------------------
 *
 * The engine is layered:
 *	 json_doc.c		documents, errors, a growable text buffer, deep copy and
 *					equality with a depth bound;
 *	 json_pointer.c	RFC 6901: parsing, escaping, resolving;
 *	 json_patch.c	the undo log, the RFC 6902 operations on parsed pointers
 *					(shared by patches and effects), es_patch_*;
 *	 effect.c		the effect language: templates, references,
 *					preconditions, remove_where, merge;
 *	 schema.c		the schema subset;
 *	 event_doc.c	the event document, the allocator.
 *
 * Every change to a document goes through the es_mut_* functions of
 * json_patch.c, which log what they replace in an EsUndoLog; that is what
 * makes es_effect_apply and es_patch_apply atomic.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_ENGINE_INT_H
#define ES_ENGINE_INT_H

#include <stdarg.h>
#include <jansson.h>

#include "engine.h"

/*
 * Never call jansson's json_object() by name.  In a backend, the postgres
 * executable exports a function of the same name (the SQL function
 * json_object), and the dynamic linker binds the engine's calls to it rather
 * than to jansson's; jansson's own internal calls are bound inside
 * libjansson and are safe.  json_pack("{}") makes an empty object through
 * them.  The macro below turns a call by name into a compile error.
 */
#define es_new_object()		json_pack("{}")
#define json_object()		ES_DO_NOT_CALL_json_object_SEE_engine_int_h

#if defined(__GNUC__) || defined(__clang__)
#define ES_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ES_PRINTF(f, a)
#endif

/*
 * The bound of the recursive helpers (copy, equality, writing).  Documents
 * are at most ES_JSON_MAX_DEPTH deep, but a value being built can be deeper
 * for a moment: an effect value (up to ES_JSON_MAX_DEPTH) around a
 * reference to event data (as deep again) is refused only once resolved.
 */
#define ES_RECURSION_LIMIT	(2 * ES_JSON_MAX_DEPTH + 8)

/* ---- json_doc.c ---- */

/* a growable NUL-terminated text buffer; oom is sticky */
typedef struct EsBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		oom;
} EsBuf;

extern char *es_strdup(const char *s);
extern void es_buf_init(EsBuf *buf);
extern void es_buf_free(EsBuf *buf);
extern void es_buf_append(EsBuf *buf, const char *s, size_t n);
extern void es_buf_appends(EsBuf *buf, const char *s);
extern void es_buf_appendc(EsBuf *buf, char c);
extern void es_buf_printf(EsBuf *buf, const char *fmt,...) ES_PRINTF(2, 3);

extern EsEngineStatus es_error(EsEngineError *err, EsEngineStatus status,
							   const char *fmt,...) ES_PRINTF(3, 4);
extern void es_error_path(EsEngineError *err, const char *path);
extern void es_error_step(EsEngineError *err, int step, const char *op);
extern EsEngineStatus es_nomem(EsEngineError *err);
extern void es_error_clear(EsEngineError *err);

extern const char *es_type_name(const json_t *v);
extern const char *es_type_article(const json_t *v);
extern json_t *es_copy(const json_t *v, int depth, int *out_depth);
extern int	es_depth(const json_t *v, int limit);
extern bool es_equal(const json_t *a, const json_t *b, int depth);
extern void es_dump_value(EsBuf *buf, const json_t *v);

/* ---- json_pointer.c ---- */

/* one token of a parsed JSON pointer */
typedef struct EsPtrToken
{
	char	   *s;				/* unescaped, NUL-terminated */
	size_t		end;			/* text[0 .. end) is the prefix that ends
								 * with this token */
} EsPtrToken;

/* a parsed JSON pointer */
typedef struct EsPointer
{
	const char *text;			/* the pointer as written (not owned) */
	int			ntokens;
	EsPtrToken *tok;
	char	   *mem;			/* one allocation for tok and the strings */
} EsPointer;

/* why a pointer does not resolve */
typedef enum EsPtrFail
{
	ES_PTR_FOUND = 0,
	ES_PTR_NO_MEMBER,			/* an object has no such member */
	ES_PTR_OUT_OF_RANGE,		/* index >= length */
	ES_PTR_BAD_INDEX,			/* not an index, or "-" */
	ES_PTR_NOT_CONTAINER		/* a scalar before the last token */
} EsPtrFail;

typedef struct EsPtrResult
{
	json_t	   *value;			/* the value found, borrowed */
	EsPtrFail	fail;
	int			token;			/* failing token */
	json_t	   *at;				/* found: the container of value; not found:
								 * the value where resolution stopped */
} EsPtrResult;

extern EsEngineStatus es_ptr_parse(const char *text, EsPointer *ptr,
								   EsEngineError *err);
extern void es_ptr_free(EsPointer *ptr);
extern bool es_ptr_index(const char *token, size_t *index);
extern void es_ptr_escape(EsBuf *buf, const char *token);
extern void es_ptr_resolve(json_t *doc, const EsPointer *ptr, int ntokens,
						   EsPtrResult *res);
extern void es_ptr_describe(EsBuf *buf, const EsPointer *ptr,
							const EsPtrResult *res);

/* ---- json_patch.c ---- */

typedef enum EsUndoKind
{
	ES_UNDO_OBJ_ADDED,			/* key was absent: delete it */
	ES_UNDO_OBJ_REPLACED,		/* put old back under key */
	ES_UNDO_OBJ_REMOVED,		/* put old back under key */
	ES_UNDO_ARR_INSERTED,		/* remove element index */
	ES_UNDO_ARR_REPLACED,		/* put old back at index */
	ES_UNDO_ARR_REMOVED,		/* insert old at index */
	ES_UNDO_CONTENTS			/* container gets the members of old again */
} EsUndoKind;

typedef struct EsUndo
{
	EsUndoKind	kind;
	json_t	   *container;		/* a reference */
	char	   *key;
	size_t		index;
	json_t	   *old;			/* a reference, or NULL */
} EsUndo;

typedef struct EsUndoLog
{
	EsUndo	   *entries;
	size_t		n;
	size_t		cap;
} EsUndoLog;

/* the state of one application of a patch or an effect */
typedef struct EsApply
{
	json_t	   *root;
	EsUndoLog	undo;
	json_t	   *forward;		/* if not NULL, the concrete ops are appended */
	json_t	   *inverse;		/* if not NULL, the inverse ops, last first */
	json_t	   *reads;			/* if not NULL, the exists and absent steps
								 * that held, as {"op", "path"} */
	EsEngineError *err;
} EsApply;

extern void es_apply_init(EsApply *a, json_t *root, EsEngineError *err);

/*
 * The member that marks an op of a concrete patch (es_effect_apply_trace)
 * adding an empty object or array that a merge step of literal value
 * created: a container the effect makes sure exists.  es_undo_patch keeps
 * such containers.
 */
#define ES_SCAFFOLD_MEMBER "scaffold"

extern EsEngineStatus es_patch_inverse_except(const EsJson *doc_before,
											  const EsJson *patch,
											  const char *no_inverse,
											  EsJson **inverse,
											  EsEngineError *err);
extern bool es_apply_rollback(EsApply *a);
extern void es_apply_release(EsApply *a);

extern EsEngineStatus es_mut_obj_set(EsApply *a, json_t *obj, const char *key,
									 json_t *value);
extern EsEngineStatus es_mut_obj_del(EsApply *a, json_t *obj, const char *key);
extern EsEngineStatus es_mut_arr_set(EsApply *a, json_t *arr, size_t index,
									 json_t *value);
extern EsEngineStatus es_mut_arr_insert(EsApply *a, json_t *arr, size_t index,
										json_t *value);
extern EsEngineStatus es_mut_arr_del(EsApply *a, json_t *arr, size_t index);
extern EsEngineStatus es_mut_contents(EsApply *a, json_t *container,
									  json_t *contents);

extern EsEngineStatus es_op_add(EsApply *a, const EsPointer *path, json_t *value,
								int value_depth);
extern EsEngineStatus es_op_remove(EsApply *a, const EsPointer *path);
extern EsEngineStatus es_op_replace(EsApply *a, const EsPointer *path,
									json_t *value, int value_depth);
extern EsEngineStatus es_op_move(EsApply *a, const EsPointer *from,
								 const EsPointer *path);
extern EsEngineStatus es_op_copy(EsApply *a, const EsPointer *from,
								 const EsPointer *path);
extern EsEngineStatus es_op_test(EsApply *a, const EsPointer *path,
								 const json_t *value);
extern EsEngineStatus es_ptr_fail(EsApply *a, const EsPointer *ptr,
								  const EsPtrResult *res);
extern EsEngineStatus es_log_op(json_t *log, const char *op, const char *from,
								const char *path, const json_t *value);

/* ---- schema.c ---- */

/* what a checked schema says of the value at a pointer in valid data */
typedef enum EsSchemaFind
{
	ES_SCHEMA_FOUND = 0,		/* valid data may have a usable value there */
	ES_SCHEMA_NOTHING,			/* no valid data has a value there */
	ES_SCHEMA_NOT_KEY			/* there is one, but never a string or an
								 * integer (what a template needs) */
} EsSchemaFind;

/*
 * es_schema_lookup: walks the checked schema along the tokens of ptr, as a
 * value at ptr would be found in data valid against it: a declared property
 * descends into its schema, an undeclared one is refused only under
 * "additionalProperties": false, an array index descends into "items", and
 * a "type" without object and array refuses any token.  A level that does
 * not tell what is below (neither "properties" nor "items" for the token,
 * or both possible) ends the walk with ES_SCHEMA_FOUND.  With key, the
 * value found must be able to be a string or an integer ("type" and
 * "enum").  The reason of a refusal is appended to why (which may run out
 * of memory: the caller checks why->oom).
 */
extern EsSchemaFind es_schema_lookup(const json_t *schema, const EsPointer *ptr,
									 bool key, EsBuf *why);

#endif							/* ES_ENGINE_INT_H */
