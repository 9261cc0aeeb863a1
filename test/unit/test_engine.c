/*-------------------------------------------------------------------------
 *
 * test_engine.c
 *	  Unit tests of the state engine (src/engine.h): documents, pointers,
 *	  patches, effects, atomicity, inverses, the schema subset, traces, undo
 *	  patches and conflicts.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  test/unit/test_engine.c
 *
 *-------------------------------------------------------------------------
 *
 * Every successful application made through expect_ok() is also checked
 * against es_effect_resolve (the concrete patch gives the same state) and
 * es_patch_inverse (the inverse gives back the original); every failed one
 * made through expect_fail() is checked to leave the state equal to what it
 * was (and as long when written out).  So each case below tests atomicity and the inverse as well.
 */
#define _POSIX_C_SOURCE 200809L	/* fork and waitpid, for in_child() */

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "engine.h"
#include "harness.h"

#define EVENT_DATA_PLACEHOLDER "@DATA@"

/*
 * J: parses test JSON, which must be valid.
 */
static EsJson *
J(const char *text)
{
	EsEngineError err;
	EsJson	   *doc = es_json_parse(text, strlen(text), &err);

	if (doc == NULL)
	{
		printf("test bug: cannot parse %s: %s\n", text, err.message);
		abort();
	}
	return doc;
}

/*
 * make_event: an event object around data and metadata texts.
 */
static EsJson *
make_event(const char *data, const char *meta)
{
	char	   *text;
	size_t		size = strlen(data) + strlen(meta) + 512;
	EsJson	   *ev;

	text = malloc(size);
	snprintf(text, size,
			 "{\"data\": %s, \"metadata\": %s, \"sequence_number\": 7, "
			 "\"created_at\": \"2026-01-19T12:00:00Z\", \"user_id\": \"1\", "
			 "\"username\": \"alice\", \"event_type\": \"module_add\"}",
			 data, meta);
	ev = J(text);
	free(text);
	return ev;
}

/*
 * dump: the compact text of doc (malloc'd).
 */
static char *
dump(const EsJson *doc)
{
	char	   *s = es_json_dump(doc, NULL);

	if (s == NULL)
		abort();
	return s;
}

/*
 * check_round_trips: for a successful application of effect to before
 * giving after, checks that the resolved patch gives after and that its
 * inverse gives before back.
 */
static bool
check_round_trips(const EsJson *before, const EsJson *after,
				  const EsJson *effect, const EsJson *event)
{
	EsEngineError err;
	EsJson	   *patch = NULL;
	EsJson	   *inverse = NULL;
	EsJson	   *doc;
	bool		ok = true;

	if (es_effect_resolve(effect, event, before, &patch, &err) != ES_ENGINE_OK)
	{
		printf("    resolve failed: %s\n", err.message);
		return false;
	}
	doc = es_json_copy(before);
	if (es_patch_apply(doc, patch, &err) != ES_ENGINE_OK ||
		!es_json_equal(doc, after))
	{
		char	   *p = dump(patch);

		printf("    the resolved patch %s does not give the same state (%s)\n",
			   p, err.message);
		free(p);
		ok = false;
	}
	es_json_free(doc);
	if (ok && es_patch_inverse(before, patch, &inverse, &err) != ES_ENGINE_OK)
	{
		printf("    inverse failed: %s\n", err.message);
		ok = false;
	}
	if (ok)
	{
		doc = es_json_copy(after);
		if (es_patch_apply(doc, inverse, &err) != ES_ENGINE_OK ||
			!es_json_equal(doc, before))
		{
			char	   *p = dump(inverse);

			printf("    the inverse %s does not restore the state (%s)\n",
				   p, err.message);
			free(p);
			ok = false;
		}
		es_json_free(doc);
	}
	es_json_free(patch);
	es_json_free(inverse);
	return ok;
}

/*
 * expect_ok_at: applies effect to state for an event with data, expecting
 * success and the state expected (compact text, member order included).
 */
static bool
expect_ok_at(int line, const char *state, const char *effect, const char *data,
			 const char *expected)
{
	EsJson	   *doc = J(state);
	EsJson	   *before = J(state);
	EsJson	   *eff = J(effect);
	EsJson	   *ev = make_event(data, "{\"source\": \"test\", \"n\": 3}");
	EsEngineError err;
	EsEngineStatus status;
	bool		ok = true;

	if (es_effect_check(eff, &err) != ES_ENGINE_OK)
	{
		printf("    line %d: effect check failed: step %d (%s) path \"%s\": %s\n",
			   line, err.step, err.op, err.path, err.message);
		ok = false;
	}
	status = es_effect_apply(doc, eff, ev, &err);
	if (ok && status != ES_ENGINE_OK)
	{
		printf("    line %d: apply failed (%d): step %d (%s) path \"%s\": %s\n",
			   line, status, err.step, err.op, err.path, err.message);
		ok = false;
	}
	if (ok)
	{
		char	   *got = dump(doc);

		if (strcmp(got, expected) != 0)
		{
			printf("    line %d: state\n      got      %s\n      expected %s\n",
				   line, got, expected);
			ok = false;
		}
		free(got);
	}
	if (ok && !check_round_trips(before, doc, eff, ev))
	{
		printf("    line %d: round trip failed\n", line);
		ok = false;
	}
	es_json_free(doc);
	es_json_free(before);
	es_json_free(eff);
	es_json_free(ev);
	return ok;
}

/*
 * expect_fail_at: applies effect expecting status, the failing step, op and
 * path, a message containing msg, and the state unchanged byte for byte.
 */
static bool
expect_fail_at(int line, const char *state, const char *effect,
			   const char *data, EsEngineStatus want, int step,
			   const char *op, const char *path, const char *msg)
{
	EsJson	   *doc = J(state);
	EsJson	   *eff = J(effect);
	EsJson	   *ev = make_event(data, "null");
	EsJson	   *orig = J(state);
	EsEngineError err;
	EsEngineStatus status;
	char	   *before = dump(doc);
	char	   *after;
	bool		ok = true;

	status = es_effect_apply(doc, eff, ev, &err);
	after = dump(doc);
	if (status != want)
	{
		printf("    line %d: status %d, expected %d (%s)\n", line, status, want,
			   status == ES_ENGINE_OK ? "ok" : err.message);
		ok = false;
	}
	else if (err.step != step || strcmp(err.op, op) != 0 ||
			 (path && strcmp(err.path, path) != 0) ||
			 strstr(err.message, msg) == NULL)
	{
		printf("    line %d: error step %d (%s) path \"%s\": %s\n"
			   "      expected step %d (%s) path \"%s\": ...%s...\n",
			   line, err.step, err.op, err.path, err.message,
			   step, op, path ? path : "(any)", msg);
		ok = false;
	}
	if (!es_json_equal(doc, orig) || strlen(before) != strlen(after))
	{
		printf("    line %d: state changed by a failed effect\n      before %s\n      after  %s\n",
			   line, before, after);
		ok = false;
	}
	free(before);
	free(after);
	es_json_free(orig);
	es_json_free(doc);
	es_json_free(eff);
	es_json_free(ev);
	return ok;
}

/*
 * expect_invalid_at: es_effect_check refuses effect at step with a message
 * containing msg.
 */
static bool
expect_invalid_at(int line, const char *effect, int step, const char *msg)
{
	EsJson	   *eff = J(effect);
	EsEngineError err;
	EsEngineStatus status = es_effect_check(eff, &err);
	bool		ok = true;

	if (status != ES_ENGINE_INVALID || err.step != step ||
		strstr(err.message, msg) == NULL)
	{
		printf("    line %d: check gave %d, step %d: %s\n      expected step %d: ...%s...\n",
			   line, status, status ? err.step : 0,
			   status ? err.message : "(ok)", step, msg);
		ok = false;
	}
	es_json_free(eff);
	return ok;
}

#define expect_ok(s, e, d, x) expect_ok_at(__LINE__, s, e, d, x)
#define expect_fail(s, e, d, w, st, op, p, m) \
	expect_fail_at(__LINE__, s, e, d, w, st, op, p, m)
#define expect_invalid(e, st, m) expect_invalid_at(__LINE__, e, st, m)
#define REJ ES_ENGINE_REJECTED
#define INV ES_ENGINE_INVALID

/* ---- documents ---- */

static void
test_parse_dump(void)
{
	EsJson	   *d = J("{\"b\": 1, \"a\": [true, false, null, 0.1, 1.0, -3, 1e300, \"\\u00e9\\n\\\"\\u0001/\"]}");
	char	   *s = dump(d);

	CHECK(strcmp(s, "{\"b\":1,\"a\":[true,false,null,0.1,1.0,-3,1e+300,\"\xc3\xa9\\n\\\"\\u0001/\"]}") == 0);
	free(s);
	es_json_free(d);
	d = J("\"x\"");
	s = dump(d);
	CHECK(strcmp(s, "\"x\"") == 0);
	free(s);
	es_json_free(d);
	es_json_free(NULL);
	d = es_json_empty_object();
	s = dump(d);
	CHECK(strcmp(s, "{}") == 0);
	free(s);
	es_json_free(d);
}

static void
test_parse_errors(void)
{
	EsEngineError err;
	EsJson	   *d;
	char	   *deep;
	int			i;

	d = es_json_parse("{\"a\": }", 7, &err);
	CHECK(d == NULL);
	CHECK(strstr(err.message, "invalid JSON at line 1") != NULL);
	CHECK(err.step == -1);
	d = es_json_parse("{\"a\": 1} x", 10, &err);
	CHECK(d == NULL);
	d = es_json_parse("\"\\u0000\"", 8, &err);
	CHECK(d == NULL);
	d = es_json_parse("\"\xff\"", 3, &err);
	CHECK(d == NULL);
	/* 10,000 levels: refused without recursion */
	deep = malloc(20001);
	for (i = 0; i < 10000; i++)
	{
		deep[i] = '[';
		deep[20000 - 1 - i] = ']';
	}
	deep[20000] = '\0';
	d = es_json_parse(deep, 20000, &err);
	CHECK(d == NULL);
	CHECK(strstr(err.message, "deeper than 1000") != NULL);
	/* exactly 1000 is fine, 1001 is not */
	d = es_json_parse(deep + 9000, 2000, &err);
	CHECK(d != NULL);
	es_json_free(d);
	d = es_json_parse(deep + 8999, 2002, &err);
	CHECK(d == NULL);
	/* brackets inside strings do not count */
	free(deep);
	d = J("[\"[[[[[[[[[[\\\"[[[[\"]");
	es_json_free(d);
}

static void
test_equal_copy(void)
{
	EsJson	   *a = J("{\"x\": 1, \"y\": [1.0, \"s\", {\"z\": null}]}");
	EsJson	   *b = J("{\"y\": [1, \"s\", {\"z\": null}], \"x\": 1.0}");
	EsJson	   *c = J("{\"y\": [1, \"s\", {\"z\": false}], \"x\": 1.0}");
	EsJson	   *copy = es_json_copy(a);

	CHECK(es_json_equal(a, b));
	CHECK(!es_json_equal(a, c));
	CHECK(es_json_equal(copy, a));
	CHECK(copy != a);
	{
		/* 2^53 + 1 is not the double 2^53, though (double) (2^53 + 1) is */
		EsJson	   *i = J("9007199254740993");
		EsJson	   *r = J("9007199254740992.0");
		bool		eq = es_json_equal(i, r);

		es_json_free(i);
		es_json_free(r);
		CHECK(!eq);
	}
	es_json_free(a);
	es_json_free(b);
	es_json_free(c);
	es_json_free(copy);
}

/* ---- RFC 6902 operations in effects ---- */

static void
test_op_add(void)
{
	/* new member, at the end */
	CHECK(expect_ok("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2}]",
					"{}", "{\"a\":1,\"b\":2}"));
	/* existing member: replaced in place */
	CHECK(expect_ok("{\"a\":1,\"b\":2}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[3]}]",
					"{}", "{\"a\":[3],\"b\":2}"));
	/* arrays: insert at index, at length, with "-" */
	CHECK(expect_ok("{\"l\":[1,2,3]}", "[{\"op\":\"add\",\"path\":\"/l/1\",\"value\":9}]",
					"{}", "{\"l\":[1,9,2,3]}"));
	CHECK(expect_ok("{\"l\":[1,2,3]}", "[{\"op\":\"add\",\"path\":\"/l/3\",\"value\":9}]",
					"{}", "{\"l\":[1,2,3,9]}"));
	CHECK(expect_ok("{\"l\":[]}", "[{\"op\":\"add\",\"path\":\"/l/-\",\"value\":9},{\"op\":\"add\",\"path\":\"/l/-\",\"value\":8}]",
					"{}", "{\"l\":[9,8]}"));
	CHECK(expect_ok("{\"l\":[1]}", "[{\"op\":\"add\",\"path\":\"/l/0\",\"value\":0}]",
					"{}", "{\"l\":[0,1]}"));
	/* the empty key */
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/\",\"value\":1}]",
					"{}", "{\"\":1}"));
	/* the whole document */
	CHECK(expect_ok("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":{\"b\":2}}]",
					"{}", "{\"b\":2}"));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":[1]}]",
					  "{}", REJ, 0, "add", "", "the document root is an object and cannot be replaced by an array"));
	/* failures */
	CHECK(expect_fail("{\"l\":[1,2,3]}", "[{\"op\":\"add\",\"path\":\"/l/5\",\"value\":9}]",
					  "{}", REJ, 0, "add", "/l/5", "index 5 is out of range for an array of 3 elements at \"/l\""));
	CHECK(expect_fail("{\"l\":[1,2,3]}", "[{\"op\":\"add\",\"path\":\"/l/01\",\"value\":9}]",
					  "{}", REJ, 0, "add", "/l/01", "\"01\" is not a valid array index"));
	CHECK(expect_fail("{\"l\":[1]}", "[{\"op\":\"add\",\"path\":\"/l/x\",\"value\":9}]",
					  "{}", REJ, 0, "add", "/l/x", "\"x\" is not a valid array index"));
	CHECK(expect_fail("{\"l\":[1]}", "[{\"op\":\"add\",\"path\":\"/l/99999999999999999999999\",\"value\":9}]",
					  "{}", REJ, 0, "add", NULL, "is not a valid array index"));
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"/modules/m1\",\"value\":1}]",
					  "{}", REJ, 0, "add", "/modules/m1", "path \"/modules\" does not exist"));
	CHECK(expect_fail("{\"a\":\"s\"}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]",
					  "{}", REJ, 0, "add", "/a/b", "\"/a\" is a string, not an object or array"));
	CHECK(expect_fail("{\"a\":{\"b\":5}}", "[{\"op\":\"add\",\"path\":\"/a/b/c/d\",\"value\":1}]",
					  "{}", REJ, 0, "add", "/a/b/c/d", "\"/a/b\" is a number, not an object or array"));
	CHECK(expect_fail("{\"a\":null}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]",
					  "{}", REJ, 0, "add", "/a/b", "\"/a\" is null, not an object or array"));
}

static void
test_op_remove(void)
{
	CHECK(expect_ok("{\"a\":1,\"b\":2,\"c\":3}", "[{\"op\":\"remove\",\"path\":\"/b\"}]",
					"{}", "{\"a\":1,\"c\":3}"));
	CHECK(expect_ok("{\"l\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/l/0\"}]",
					"{}", "{\"l\":[2,3]}"));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b\"}]",
					  "{}", REJ, 0, "remove", "/b", "path \"/b\" does not exist"));
	CHECK(expect_fail("{\"l\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/l/3\"}]",
					  "{}", REJ, 0, "remove", "/l/3", "index 3 is out of range for an array of 3 elements"));
	CHECK(expect_fail("{\"l\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/l/-\"}]",
					  "{}", REJ, 0, "remove", "/l/-", "index \"-\" designates no existing element"));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]",
					  "{}", REJ, 0, "remove", "", "cannot remove the document root"));
}

static void
test_op_replace(void)
{
	CHECK(expect_ok("{\"a\":1,\"b\":2}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":{\"x\":[]}}]",
					"{}", "{\"a\":{\"x\":[]},\"b\":2}"));
	CHECK(expect_ok("{\"l\":[1,2,3]}", "[{\"op\":\"replace\",\"path\":\"/l/2\",\"value\":0}]",
					"{}", "{\"l\":[1,2,0]}"));
	CHECK(expect_ok("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]",
					"{}", "{}"));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":1}]",
					  "{}", REJ, 0, "replace", "/b", "path \"/b\" does not exist"));
	CHECK(expect_fail("{\"l\":[1]}", "[{\"op\":\"replace\",\"path\":\"/l/1\",\"value\":1}]",
					  "{}", REJ, 0, "replace", "/l/1", "index 1 is out of range for an array of 1 elements"));
	CHECK(expect_fail("{\"l\":[1]}", "[{\"op\":\"replace\",\"path\":\"/l/-\",\"value\":1}]",
					  "{}", REJ, 0, "replace", "/l/-", "index \"-\""));
}

static void
test_op_move(void)
{
	CHECK(expect_ok("{\"a\":{\"x\":1},\"b\":{}}", "[{\"op\":\"move\",\"from\":\"/a/x\",\"path\":\"/b/y\"}]",
					"{}", "{\"a\":{},\"b\":{\"y\":1}}"));
	/* over an existing member */
	CHECK(expect_ok("{\"a\":1,\"b\":2,\"c\":3}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/c\"}]",
					"{}", "{\"b\":2,\"c\":1}"));
	/* within an array, both directions, and to the end */
	CHECK(expect_ok("{\"l\":[0,1,2,3]}", "[{\"op\":\"move\",\"from\":\"/l/0\",\"path\":\"/l/2\"}]",
					"{}", "{\"l\":[1,2,0,3]}"));
	CHECK(expect_ok("{\"l\":[0,1,2,3]}", "[{\"op\":\"move\",\"from\":\"/l/3\",\"path\":\"/l/0\"}]",
					"{}", "{\"l\":[3,0,1,2]}"));
	CHECK(expect_ok("{\"l\":[0,1,2,3]}", "[{\"op\":\"move\",\"from\":\"/l/1\",\"path\":\"/l/-\"}]",
					"{}", "{\"l\":[0,2,3,1]}"));
	/* between an object and an array */
	CHECK(expect_ok("{\"o\":{\"k\":[1]},\"l\":[]}", "[{\"op\":\"move\",\"from\":\"/o/k\",\"path\":\"/l/0\"}]",
					"{}", "{\"o\":{},\"l\":[[1]]}"));
	/* same path: nothing */
	CHECK(expect_ok("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]",
					"{}", "{\"a\":1}"));
	/* to the root: a member object becomes the document */
	CHECK(expect_ok("{\"a\":{\"x\":1},\"b\":2}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"\"}]",
					"{}", "{\"x\":1}"));
	/* "/a" is not a prefix of "/ab" */
	CHECK(expect_ok("{\"a\":1,\"ab\":{}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/ab/c\"}]",
					"{}", "{\"ab\":{\"c\":1}}"));
	CHECK(expect_fail("{\"a\":{\"b\":{}}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]",
					  "{}", REJ, 0, "move", "/a/b/c", "cannot move \"/a\" into its own child \"/a/b/c\""));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/y\"}]",
					  "{}", REJ, 0, "move", "/x", "path \"/x\" does not exist"));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/y/z\"}]",
					  "{}", REJ, 0, "move", "/y/z", "path \"/y\" does not exist"));
	CHECK(expect_fail("{\"l\":[0,1]}", "[{\"op\":\"move\",\"from\":\"/l/0\",\"path\":\"/l/2\"}]",
					  "{}", REJ, 0, "move", "/l/2", "index 2 is out of range for an array of 1 elements"));
}

static void
test_op_copy(void)
{
	CHECK(expect_ok("{\"a\":{\"x\":[1]}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},{\"op\":\"add\",\"path\":\"/b/x/-\",\"value\":2}]",
					"{}", "{\"a\":{\"x\":[1]},\"b\":{\"x\":[1,2]}}"));
	CHECK(expect_ok("{\"l\":[1,2]}", "[{\"op\":\"copy\",\"from\":\"/l/1\",\"path\":\"/l/0\"}]",
					"{}", "{\"l\":[2,1,2]}"));
	CHECK(expect_ok("{\"a\":{\"b\":1}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/c\"}]",
					"{}", "{\"a\":{\"b\":1,\"c\":{\"b\":1}}}"));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/b\",\"path\":\"/c\"}]",
					  "{}", REJ, 0, "copy", "/b", "path \"/b\" does not exist"));
}

static void
test_op_test(void)
{
	CHECK(expect_ok("{\"a\":{\"x\":[1,\"s\",null]},\"n\":1}",
					"[{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"x\":[1,\"s\",null]}},{\"op\":\"test\",\"path\":\"/n\",\"value\":1.0}]",
					"{}", "{\"a\":{\"x\":[1,\"s\",null]},\"n\":1}"));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]",
					  "{}", REJ, 0, "test", "/a", "test failed at \"/a\""));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":\"1\"}]",
					  "{}", REJ, 0, "test", "/a", "test failed at \"/a\""));
	CHECK(expect_fail("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/b\",\"value\":1}]",
					  "{}", REJ, 0, "test", "/b", "path \"/b\" does not exist"));
}

static void
test_preconditions(void)
{
	CHECK(expect_ok("{\"modules\":{\"m1\":{}}}", "[{\"op\":\"exists\",\"path\":\"/modules/m1\"},{\"op\":\"absent\",\"path\":\"/modules/m2\"},{\"op\":\"absent\",\"path\":\"/x/y/z\"},{\"op\":\"exists\",\"path\":\"\"}]",
					"{}", "{\"modules\":{\"m1\":{}}}"));
	CHECK(expect_fail("{\"modules\":{}}", "[{\"op\":\"exists\",\"path\":\"/modules/m1\"}]",
					  "{}", REJ, 0, "exists", "/modules/m1", "path \"/modules/m1\" does not exist"));
	CHECK(expect_fail("{\"modules\":{\"m1\":{}}}", "[{\"op\":\"absent\",\"path\":\"/modules/m1\"}]",
					  "{}", REJ, 0, "absent", "/modules/m1", "value at \"/modules/m1\" already exists"));
	/* absent on an array index */
	CHECK(expect_ok("{\"l\":[1]}", "[{\"op\":\"absent\",\"path\":\"/l/1\"},{\"op\":\"exists\",\"path\":\"/l/0\"}]",
					"{}", "{\"l\":[1]}"));
}

/* ---- pointers ---- */

static void
test_pointer_escapes(void)
{
	CHECK(expect_ok("{\"a/b\":1,\"m~n\":2}", "[{\"op\":\"move\",\"from\":\"/a~1b\",\"path\":\"/m~0n\"}]",
					"{}", "{\"m~n\":1}"));
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/~01\",\"value\":1}]",
					"{}", "{\"~1\":1}"));
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/~10\",\"value\":1}]",
					"{}", "{\"/0\":1}"));
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]",
					  "{}", INV, 0, "add", "/a~2", "invalid escape \"~2\" in JSON pointer \"/a~2\""));
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"/a~\",\"value\":1}]",
					  "{}", INV, 0, "add", "/a~", "invalid escape \"~\" at the end of JSON pointer \"/a~\""));
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"a/b\",\"value\":1}]",
					  "{}", INV, 0, "add", "a/b", "invalid JSON pointer \"a/b\": must start with \"/\""));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/x~y\"}]", 0, "invalid escape \"~y\""));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"x\"}]", 0, "must start with \"/\""));
}

/* ---- templates ---- */

static void
test_templates(void)
{
	CHECK(expect_ok("{\"modules\":{}}", "[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":1}]",
					"{\"moduleId\":\"m1\"}", "{\"modules\":{\"m1\":1}}"));
	/* escaping: the value stays within one token */
	CHECK(expect_ok("{\"modules\":{}}", "[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":1}]",
					"{\"moduleId\":\"a/b~c\"}", "{\"modules\":{\"a/b~c\":1}}"));
	/* integers, negative too, and in arrays */
	CHECK(expect_ok("{\"l\":[0,1,2]}", "[{\"op\":\"replace\",\"path\":\"/l/{/i}\",\"value\":9}]",
					"{\"i\":1}", "{\"l\":[0,9,2]}"));
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/{/i}\",\"value\":9}]",
					"{\"i\":-12}", "{\"-12\":9}"));
	/* several templates, part of a token, nested pointers */
	CHECK(expect_ok("{\"p\":{}}", "[{\"op\":\"add\",\"path\":\"/p/{/a/b}-{/c}\",\"value\":true}]",
					"{\"a\":{\"b\":\"x\"},\"c\":2}", "{\"p\":{\"x-2\":true}}"));
	/* an empty string is an empty token */
	CHECK(expect_ok("{\"p\":{}}", "[{\"op\":\"add\",\"path\":\"/p/{/e}\",\"value\":1}]",
					"{\"e\":\"\"}", "{\"p\":{\"\":1}}"));
	/* from is expanded too */
	CHECK(expect_ok("{\"a\":{\"k\":1}}", "[{\"op\":\"move\",\"from\":\"/a/{/from}\",\"path\":\"/a/{/to}\"}]",
					"{\"from\":\"k\",\"to\":\"j\"}", "{\"a\":{\"j\":1}}"));
	CHECK(expect_fail("{\"modules\":{}}", "[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":1}]",
					  "{}", REJ, 0, "add", "/modules/{/moduleId}", "template \"{/moduleId}\" refers to nothing in the event data"));
	CHECK(expect_fail("{\"modules\":{}}", "[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":1}]",
					  "{\"moduleId\":{}}", REJ, 0, "add", "/modules/{/moduleId}", "template \"{/moduleId}\" refers to an object; expected a string or an integer"));
	CHECK(expect_fail("{\"modules\":{}}", "[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":1}]",
					  "{\"moduleId\":1.5}", REJ, 0, "add", NULL, "refers to a number that is not an integer"));
	CHECK(expect_fail("{\"modules\":{}}", "[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":1}]",
					  "{\"moduleId\":null}", REJ, 0, "add", NULL, "refers to null"));
	CHECK(expect_fail("{\"modules\":{}}", "[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":1}]",
					  "{\"moduleId\":[\"m\"]}", REJ, 0, "add", NULL, "refers to an array"));
	/* the path after substitution is reported */
	CHECK(expect_fail("{\"modules\":{}}", "[{\"op\":\"remove\",\"path\":\"/modules/{/moduleId}\"}]",
					  "{\"moduleId\":\"a/b\"}", REJ, 0, "remove", "/modules/a~1b", "path \"/modules/a~1b\" does not exist"));
}

static void
test_template_check(void)
{
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a/{/x\"}]", 0, "unbalanced \"{\""));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a/x}\"}]", 0, "unbalanced \"}\""));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a/{/x{/y}}\"}]", 0, "unbalanced"));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a/{}\"}]", 0, "empty template"));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a/{x}\"}]", 0, "template \"{x}\" is not a valid JSON pointer"));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a/{/x~3}\"}]", 0, "is not a valid JSON pointer"));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"{/id}\"}]", 0, "must start with \"/\", not with a template"));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a~{/id}\"}]", 0, "invalid escape \"~\" before a template"));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a/{/id}~\"}]", 0, "once its templates are replaced"));
	/* applying refuses them too, even when the substitution would fit */
	CHECK(expect_fail("{\"\":1}", "[{\"op\":\"remove\",\"path\":\"{/e}/\"}]", "{\"e\":\"\"}", INV, 0, "remove", NULL, "must start with"));
	CHECK(expect_fail("{\"a~\":1}", "[{\"op\":\"remove\",\"path\":\"/a~{/e}\"}]", "{\"e\":\"0\"}", INV, 0, "remove", NULL, "before a template"));
	CHECK(expect_invalid("[{\"op\":\"move\",\"from\":\"/a/{\",\"path\":\"/b\"}]", 0, "unbalanced"));
	/* a template that will find nothing is only known when applying */
	{
		EsJson	   *e = J("[{\"op\":\"remove\",\"path\":\"/a/{/nowhere}\"}]");
		EsEngineStatus st = es_effect_check(e, NULL);

		es_json_free(e);
		CHECK(st == ES_ENGINE_OK);
	}
}

/* ---- references ---- */

static void
test_references(void)
{
	/* $data, nested anywhere, whole data */
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"name\":{\"$data\":\"/name\"},\"by\":{\"$event\":\"username\"},\"l\":[{\"$data\":\"/n\"},{\"$meta\":\"/source\"}]}}]",
					"{\"name\":\"x\",\"n\":[1]}", "{\"m\":{\"name\":\"x\",\"by\":\"alice\",\"l\":[[1],\"test\"]}}"));
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/d\",\"value\":{\"$data\":\"\"}}]",
					"{\"a\":1}", "{\"d\":{\"a\":1}}"));
	/* every $event field */
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/e\",\"value\":[{\"$event\":\"sequence_number\"},{\"$event\":\"created_at\"},{\"$event\":\"user_id\"},{\"$event\":\"username\"},{\"$event\":\"event_type\"}]}]",
					"{}", "{\"e\":[7,\"2026-01-19T12:00:00Z\",\"1\",\"alice\",\"module_add\"]}"));
	/* $literal is not resolved */
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/x\",\"value\":{\"$literal\":{\"$data\":\"/a\",\"b\":1}}}]",
					"{}", "{\"x\":{\"$data\":\"/a\",\"b\":1}}"));
	/* other $ keys are ordinary members */
	CHECK(expect_ok("{}", "[{\"op\":\"add\",\"path\":\"/x\",\"value\":{\"$ref\":\"a\"}}]",
					"{}", "{\"x\":{\"$ref\":\"a\"}}"));
	/* references in test */
	CHECK(expect_ok("{\"v\":3}", "[{\"op\":\"test\",\"path\":\"/v\",\"value\":{\"$data\":\"/v\"}}]",
					"{\"v\":3}", "{\"v\":3}"));
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$data\":\"/module\"}}]",
					  "{}", REJ, 0, "add", "/m", "reference {\"$data\": \"/module\"} refers to nothing in the event data"));
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$meta\":\"/x\"}}]",
					  "{}", REJ, 0, "add", "/m", "reference {\"$meta\": \"/x\"} refers to nothing in the event metadata"));
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"/m\",\"value\":[1,{\"k\":{\"$data\":\"/a/b\"}}]}]",
					  "{\"a\":{}}", REJ, 0, "add", "/m", "refers to nothing in the event data"));
	/* malformed references found when applying an unchecked effect */
	CHECK(expect_fail("{}", "[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$data\":1}}]",
					  "{}", INV, 0, "add", "/m", "its argument must be a string"));
}

static void
test_reference_check(void)
{
	CHECK(expect_invalid("[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$data\":1}}]", 0, "reference {\"$data\": 1} is invalid"));
	CHECK(expect_invalid("[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$event\":\"nope\"}}]", 0, "reference {\"$event\": \"nope\"} is invalid"));
	CHECK(expect_invalid("[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"a\":[{\"$data\":\"/x\",\"y\":1}]}}]", 0, "cannot have other members"));
	CHECK(expect_invalid("[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$meta\":\"x\"}}]", 0, "must be a JSON pointer"));
	CHECK(expect_invalid("[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$literal\":1,\"x\":2}}]", 0, "cannot have other members"));
	CHECK(expect_invalid("[{\"op\":\"test\",\"path\":\"/m\",\"value\":{\"$data\":\"/~\"}}]", 0, "must be a JSON pointer"));
}

/* ---- remove_where and merge ---- */

static void
test_remove_where(void)
{
	const char *links = "{\"links\":{\"l1\":{\"source\":\"m1\",\"target\":\"m2\"},\"l2\":{\"source\":\"m2\",\"target\":\"m3\"},\"l3\":{\"source\":\"m3\",\"target\":\"m1\"},\"l4\":{\"other\":1}}}";
	const char *rw = "[{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/source\",\"equals\":{\"$data\":\"/moduleId\"}},{\"pointer\":\"/target\",\"equals\":{\"$data\":\"/moduleId\"}}]}]";

	CHECK(expect_ok(links, rw, "{\"moduleId\":\"m1\"}",
					"{\"links\":{\"l2\":{\"source\":\"m2\",\"target\":\"m3\"},\"l4\":{\"other\":1}}}"));
	/* nothing matches: not a failure */
	CHECK(expect_ok(links, rw, "{\"moduleId\":\"m9\"}", links + 0));
	/* arrays, scalar members, several matches */
	CHECK(expect_ok("{\"l\":[1,{\"k\":2},2,3,{\"k\":1},1]}",
					"[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"\",\"equals\":1},{\"pointer\":\"/k\",\"equals\":2}]}]",
					"{}", "{\"l\":[2,3,{\"k\":1}]}"));
	CHECK(expect_ok("{\"l\":[]}",
					"[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"\",\"equals\":1}]}]",
					"{}", "{\"l\":[]}"));
	/* on the root */
	CHECK(expect_ok("{\"a\":1,\"b\":2,\"c\":1}",
					"[{\"op\":\"remove_where\",\"path\":\"\",\"where\":[{\"pointer\":\"\",\"equals\":1.0}]}]",
					"{}", "{\"b\":2}"));
	CHECK(expect_fail("{}", rw, "{\"moduleId\":\"m1\"}", REJ, 0, "remove_where", "/links", "path \"/links\" does not exist"));
	CHECK(expect_fail("{\"links\":3}", rw, "{\"moduleId\":\"m1\"}", REJ, 0, "remove_where", "/links", "\"/links\" is a number, not an object or array"));
	CHECK(expect_fail(links, rw, "{}", REJ, 0, "remove_where", "/links", "refers to nothing in the event data"));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[]}]", 0, "non-empty array"));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":{}}]", 0, "non-empty array"));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"/a\"}]}]", 0, "exactly the members \"pointer\" and \"equals\""));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"/a\",\"equals\":1,\"x\":2}]}]", 0, "exactly the members"));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"a\",\"equals\":1}]}]", 0, "must start with \"/\""));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":3,\"equals\":1}]}]", 0, "must be a string"));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"/a\",\"equals\":{\"$data\":2}}]}]", 0, "is invalid"));
}

static void
test_merge(void)
{
	CHECK(expect_ok("{\"plays\":{\"p1\":{\"name\":\"a\",\"hosts\":\"all\",\"vars\":{\"x\":1,\"y\":2}}}}",
					"[{\"op\":\"merge\",\"path\":\"/plays/{/playId}\",\"value\":{\"$data\":\"/changes\"}}]",
					"{\"playId\":\"p1\",\"changes\":{\"name\":\"b\",\"hosts\":null,\"vars\":{\"y\":null,\"z\":3},\"new\":{\"k\":null,\"j\":1},\"l\":[null]}}",
					"{\"plays\":{\"p1\":{\"name\":\"b\",\"vars\":{\"x\":1,\"z\":3},\"new\":{\"j\":1},\"l\":[null]}}}"));
	/* an object replaces a scalar; removing a missing key is nothing */
	CHECK(expect_ok("{\"a\":1}", "[{\"op\":\"merge\",\"path\":\"\",\"value\":{\"a\":{\"b\":null,\"c\":1},\"z\":null}}]",
					"{}", "{\"a\":{\"c\":1}}"));
	/* the idiom that makes sure containers exist */
	CHECK(expect_ok("{}", "[{\"op\":\"merge\",\"path\":\"\",\"value\":{\"modules\":{},\"links\":{}}}]",
					"{}", "{\"modules\":{},\"links\":{}}"));
	CHECK(expect_ok("{\"modules\":{\"m\":1},\"links\":{}}", "[{\"op\":\"merge\",\"path\":\"\",\"value\":{\"modules\":{},\"links\":{}}}]",
					"{}", "{\"modules\":{\"m\":1},\"links\":{}}"));
	CHECK(expect_fail("{\"a\":[]}", "[{\"op\":\"merge\",\"path\":\"/a\",\"value\":{}}]",
					  "{}", REJ, 0, "merge", "/a", "\"/a\" is an array, not an object"));
	CHECK(expect_fail("{}", "[{\"op\":\"merge\",\"path\":\"/a\",\"value\":{}}]",
					  "{}", REJ, 0, "merge", "/a", "path \"/a\" does not exist"));
	CHECK(expect_fail("{\"a\":{}}", "[{\"op\":\"merge\",\"path\":\"/a\",\"value\":{\"$data\":\"/v\"}}]",
					  "{\"v\":[1]}", REJ, 0, "merge", "/a", "the value of a merge must be an object, not an array"));
	CHECK(expect_invalid("[{\"op\":\"merge\",\"path\":\"/a\",\"value\":[1]}]", 0, "the value of a merge must be an object"));
	CHECK(expect_invalid("[{\"op\":\"merge\",\"path\":\"/a\",\"value\":{\"$literal\":3}}]", 0, "the value of a merge must be an object"));
}

/* ---- effects as a whole ---- */

static void
test_effect_check(void)
{
	EsJson	   *e = J("[]");
	EsEngineError err;

	CHECK(es_effect_check(e, &err) == ES_ENGINE_OK);
	es_json_free(e);
	CHECK(expect_invalid("{}", -1, "an effect must be an array of steps, not an object"));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a\"},3]", 1, "a step must be an object, not a number"));
	CHECK(expect_invalid("[{\"path\":\"/a\"}]", 0, "missing member \"op\""));
	CHECK(expect_invalid("[{\"op\":1,\"path\":\"/a\"}]", 0, "member \"op\" must be a string"));
	CHECK(expect_invalid("[{\"op\":\"upsert\",\"path\":\"/a\"}]", 0, "unrecognized op \"upsert\""));
	CHECK(expect_invalid("[{\"op\":\"remove\",\"path\":\"/a\",\"value\":1}]", 0, "unexpected member \"value\" in a step \"remove\""));
	CHECK(expect_invalid("[{\"op\":\"add\",\"path\":\"/a\",\"from\":\"/b\",\"value\":1}]", 0, "unexpected member \"from\""));
	CHECK(expect_invalid("[{\"op\":\"add\",\"value\":1}]", 0, "missing member \"path\""));
	CHECK(expect_invalid("[{\"op\":\"add\",\"path\":\"/a\"}]", 0, "missing member \"value\""));
	CHECK(expect_invalid("[{\"op\":\"move\",\"path\":\"/a\"}]", 0, "missing member \"from\""));
	CHECK(expect_invalid("[{\"op\":\"copy\",\"path\":\"/a\",\"from\":1}]", 0, "member \"from\" must be a string"));
	CHECK(expect_invalid("[{\"op\":\"remove_where\",\"path\":\"/a\"}]", 0, "missing member \"where\""));
	CHECK(expect_invalid("[{\"op\":\"exists\",\"path\":[\"a\"]}]", 0, "member \"path\" must be a string, not an array"));
	/* op and path are reported */
	{
		EsJson	   *bad = J("[{\"op\":\"exists\",\"path\":\"/ok\"},{\"op\":\"absent\",\"path\":\"/bad~\"}]");

		CHECK(es_effect_check(bad, &err) == ES_ENGINE_INVALID);
		es_json_free(bad);
		CHECK(err.step == 1);
		CHECK(strcmp(err.op, "absent") == 0);
		CHECK(strcmp(err.path, "/bad~") == 0);
	}
	/* the same refusals when applying an unchecked effect */
	CHECK(expect_fail("{}", "[{\"op\":\"upsert\",\"path\":\"/a\"}]", "{}", INV, 0, "", "", "unrecognized op \"upsert\""));
	CHECK(expect_fail("{}", "[{\"op\":\"exists\",\"path\":\"\"},{\"op\":\"remove\",\"path\":\"/a\",\"x\":1}]", "{}", INV, 1, "remove", "/a", "unexpected member \"x\""));
	CHECK(expect_fail("{}", "{}", "{}", INV, -1, "", "", "must be an array"));
}

static void
test_atomicity(void)
{
	/* the third step fails: the first two are undone, order included */
	CHECK(expect_fail("{\"a\":1,\"b\":{\"x\":[1,2,3]},\"c\":3,\"d\":4}",
					  "[{\"op\":\"remove\",\"path\":\"/b\"},{\"op\":\"add\",\"path\":\"/a\",\"value\":9},{\"op\":\"remove\",\"path\":\"/zz\"}]",
					  "{}", REJ, 2, "remove", "/zz", "path \"/zz\" does not exist"));
	CHECK(expect_fail("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}",
					  "[{\"op\":\"remove\",\"path\":\"/b\"},{\"op\":\"remove\",\"path\":\"/d\"},{\"op\":\"remove\",\"path\":\"/a\"},{\"op\":\"add\",\"path\":\"/b\",\"value\":0},{\"op\":\"test\",\"path\":\"/c\",\"value\":0}]",
					  "{}", REJ, 4, "test", "/c", "test failed"));
	/* every kind of change, then a failure */
	CHECK(expect_fail("{\"l\":[1,2,3,4],\"o\":{\"k\":{\"v\":1},\"j\":2},\"links\":{\"a\":{\"s\":1},\"b\":{\"s\":2},\"c\":{\"s\":1}}}",
					  "[{\"op\":\"add\",\"path\":\"/l/1\",\"value\":9},"
					  "{\"op\":\"remove\",\"path\":\"/l/0\"},"
					  "{\"op\":\"replace\",\"path\":\"/l/0\",\"value\":8},"
					  "{\"op\":\"move\",\"from\":\"/o/k\",\"path\":\"/l/-\"},"
					  "{\"op\":\"copy\",\"from\":\"/l\",\"path\":\"/o/copy\"},"
					  "{\"op\":\"merge\",\"path\":\"/o\",\"value\":{\"j\":null,\"n\":{\"a\":1}}},"
					  "{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/s\",\"equals\":1}]},"
					  "{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"\",\"equals\":3}]},"
					  "{\"op\":\"add\",\"path\":\"\",\"value\":{\"new\":true}},"
					  "{\"op\":\"add\",\"path\":\"/new\",\"value\":false},"
					  "{\"op\":\"absent\",\"path\":\"/new\"}]",
					  "{}", REJ, 10, "absent", "/new", "already exists"));
	/* the same without the failing step succeeds, and round-trips */
	CHECK(expect_ok("{\"l\":[1,2,3,4],\"o\":{\"k\":{\"v\":1},\"j\":2},\"links\":{\"a\":{\"s\":1},\"b\":{\"s\":2},\"c\":{\"s\":1}}}",
					"[{\"op\":\"add\",\"path\":\"/l/1\",\"value\":9},"
					"{\"op\":\"remove\",\"path\":\"/l/0\"},"
					"{\"op\":\"replace\",\"path\":\"/l/0\",\"value\":8},"
					"{\"op\":\"move\",\"from\":\"/o/k\",\"path\":\"/l/-\"},"
					"{\"op\":\"copy\",\"from\":\"/l\",\"path\":\"/o/copy\"},"
					"{\"op\":\"merge\",\"path\":\"/o\",\"value\":{\"j\":null,\"n\":{\"a\":1}}},"
					"{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/s\",\"equals\":1}]},"
					"{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"\",\"equals\":3}]}]",
					"{}",
					"{\"l\":[8,2,4,{\"v\":1}],\"o\":{\"copy\":[8,2,3,4,{\"v\":1}],\"n\":{\"a\":1}},\"links\":{\"b\":{\"s\":2}}}"));
}

static void
test_error_truncation(void)
{
	/* a template expanding to a 5000-byte token: path and message are cut */
	char	   *data = malloc(6000);
	EsJson	   *state = J("{\"x\":{}}");
	EsJson	   *eff = J("[{\"op\":\"remove\",\"path\":\"/x/{/k}\"}]");
	EsJson	   *ev;
	EsEngineError err;
	size_t		i;
	size_t		len;

	strcpy(data, "{\"k\":\"");
	len = strlen(data);
	/* "é" is two bytes: a cut at an odd place must not split it */
	for (i = 0; i < 2500; i++)
	{
		data[len++] = '\xc3';
		data[len++] = '\xa9';
	}
	data[len++] = 'z';
	strcpy(data + len, "\"}");
	ev = make_event(data, "null");
	CHECK(es_effect_apply(state, eff, ev, &err) == ES_ENGINE_REJECTED);
	CHECK(strlen(err.path) < sizeof(err.path));
	CHECK(strlen(err.path) > 900);
	CHECK(strcmp(err.path + strlen(err.path) - 3, "...") == 0);
	CHECK((((unsigned char) err.path[strlen(err.path) - 4]) & 0xC0) != 0xC0);
	CHECK(strlen(err.message) < sizeof(err.message));
	CHECK(strcmp(err.message + strlen(err.message) - 3, "...") == 0);
	CHECK((((unsigned char) err.message[strlen(err.message) - 4]) & 0xC0) != 0xC0);
	free(data);
	es_json_free(state);
	es_json_free(eff);
	es_json_free(ev);
}

/*
 * nested_arrays: n nested empty arrays, as text (malloc'd).
 */
static char *
nested_arrays(int n)
{
	char	   *text = malloc(2 * (size_t) n + 1);
	int			i;

	for (i = 0; i < n; i++)
	{
		text[i] = '[';
		text[2 * n - 1 - i] = ']';
	}
	text[2 * n] = '\0';
	return text;
}

static void
test_depth_limits(void)
{
	char	   *d999 = nested_arrays(999);
	char	   *d997 = nested_arrays(997);
	char	   *d998 = nested_arrays(998);
	char	   *buf = malloc(10000);
	EsJson	   *state;
	EsJson	   *e;
	EsJson	   *ev;
	EsEngineError err;
	char	   *s;

	/* a value that would make the state deeper than the limit is refused */
	sprintf(buf, "{\"v\":%s}", d998);
	state = J("{}");
	e = J("[{\"op\":\"add\",\"path\":\"/a\",\"value\":{\"$data\":\"/v\"}},{\"op\":\"add\",\"path\":\"/b\",\"value\":{\"c\":{\"d\":{\"$data\":\"/v\"}}}}]");
	ev = make_event(buf, "null");
	CHECK(es_effect_check(e, &err) == ES_ENGINE_OK);
	CHECK(es_effect_apply(state, e, ev, &err) == ES_ENGINE_REJECTED);
	CHECK(err.step == 1);
	CHECK(strstr(err.message, "deeper than 1000") != NULL);
	s = dump(state);
	CHECK(strcmp(s, "{}") == 0);
	free(s);
	es_json_free(state);
	es_json_free(e);
	es_json_free(ev);
	/* effects themselves are documents: a value 999 deep does not parse */
	sprintf(buf, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":%s}]", d999);
	CHECK(es_json_parse(buf, strlen(buf), &err) == NULL);
	/* copy and move: 3 tokens + 997 levels fit, 3 + 998 do not */
	sprintf(buf, "{\"a\":%s,\"b\":{\"c\":{}}}", d997);
	CHECK(expect_ok(buf, "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b/c/x\"},{\"op\":\"remove\",\"path\":\"/b/c/x\"}]", "{}", buf));
	sprintf(buf, "{\"a\":%s,\"b\":{\"c\":{}}}", d998);
	CHECK(expect_fail(buf, "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b/c/x\"}]", "{}", REJ, 0, "copy", "/b/c/x", "deeper than 1000"));
	CHECK(expect_fail(buf, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b/c/x\"}]", "{}", REJ, 0, "move", "/b/c/x", "deeper than 1000"));
	{
		char	   *data = malloc(strlen(d998) + 20);

		sprintf(data, "{\"v\":%s}", d998);
		CHECK(expect_fail("{\"b\":{\"c\":{}}}", "[{\"op\":\"merge\",\"path\":\"/b/c\",\"value\":{\"x\":{\"$data\":\"/v\"}}}]", data, REJ, 0, "merge", "/b/c", "deeper than 1000"));
		/* a test value deeper than the state can be never matches */
		CHECK(expect_fail("{\"b\":{\"c\":{}}}", "[{\"op\":\"test\",\"path\":\"/b/c\",\"value\":{\"x\":{\"y\":{\"$data\":\"/v\"}}}}]", data, REJ, 0, "test", "/b/c", "test failed at \"/b/c\""));
		free(data);
	}
	free(d999);
	free(d997);
	free(d998);
	free(buf);
}

/* ---- plain patches and their inverses ---- */

/*
 * patch_round_trip: applies patch to doc, expects the result expected, then
 * applies the inverse and expects doc back.
 */
static bool
patch_round_trip(int line, const char *doc, const char *patch,
				 const char *expected)
{
	EsJson	   *before = J(doc);
	EsJson	   *d = J(doc);
	EsJson	   *p = J(patch);
	EsJson	   *inverse = NULL;
	EsEngineError err;
	bool		ok = true;
	char	   *s;

	if (es_patch_apply(d, p, &err) != ES_ENGINE_OK)
	{
		printf("    line %d: patch failed: %s\n", line, err.message);
		ok = false;
	}
	s = dump(d);
	if (ok && strcmp(s, expected) != 0)
	{
		printf("    line %d: got %s, expected %s\n", line, s, expected);
		ok = false;
	}
	free(s);
	if (ok && es_patch_inverse(before, p, &inverse, &err) != ES_ENGINE_OK)
	{
		printf("    line %d: inverse failed: %s\n", line, err.message);
		ok = false;
	}
	if (ok && (es_patch_apply(d, inverse, &err) != ES_ENGINE_OK ||
			   !es_json_equal(d, before)))
	{
		s = dump(inverse);
		printf("    line %d: inverse %s does not restore %s\n", line, s, doc);
		free(s);
		ok = false;
	}
	es_json_free(before);
	es_json_free(d);
	es_json_free(p);
	es_json_free(inverse);
	return ok;
}

#define ROUND_TRIP(d, p, x) patch_round_trip(__LINE__, d, p, x)

static void
test_patch_inverse(void)
{
	EsJson	   *doc;
	EsJson	   *p;
	EsJson	   *inv;
	EsEngineError err;
	char	   *s;

	CHECK(ROUND_TRIP("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2}]", "{\"a\":1,\"b\":2}"));
	CHECK(ROUND_TRIP("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":2}]", "{\"a\":2}"));
	CHECK(ROUND_TRIP("{\"l\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/l/-\",\"value\":3},{\"op\":\"add\",\"path\":\"/l/0\",\"value\":0}]", "{\"l\":[0,1,2,3]}"));
	CHECK(ROUND_TRIP("{\"a\":{\"x\":[1]},\"b\":2}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", "{\"b\":2}"));
	CHECK(ROUND_TRIP("{\"l\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/l/1\"}]", "{\"l\":[1,3]}"));
	CHECK(ROUND_TRIP("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":{\"b\":[]}}]", "{\"a\":{\"b\":[]}}"));
	CHECK(ROUND_TRIP("{\"a\":1,\"b\":2}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]", "{\"b\":1}"));
	CHECK(ROUND_TRIP("{\"l\":[0,1,2,3]}", "[{\"op\":\"move\",\"from\":\"/l/0\",\"path\":\"/l/-\"}]", "{\"l\":[1,2,3,0]}"));
	CHECK(ROUND_TRIP("{\"a\":{\"b\":1},\"c\":2}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"\"}]", "{\"b\":1}"));
	CHECK(ROUND_TRIP("{\"a\":[1]}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"}]", "{\"a\":[1],\"b\":[1]}"));
	CHECK(ROUND_TRIP("{\"a\":[1]}", "[{\"op\":\"test\",\"path\":\"/a/0\",\"value\":1}]", "{\"a\":[1]}"));
	CHECK(ROUND_TRIP("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"z\":0}}]", "{\"z\":0}"));
	CHECK(ROUND_TRIP("[1,2]", "[{\"op\":\"add\",\"path\":\"\",\"value\":[3]}]", "[3]"));
	CHECK(ROUND_TRIP("{\"a\":1}", "[]", "{\"a\":1}"));
	/* sequences where later ops see the effect of earlier ones */
	CHECK(ROUND_TRIP("{\"a\":{\"x\":1}}",
					 "[{\"op\":\"add\",\"path\":\"/a/y\",\"value\":2},{\"op\":\"move\",\"from\":\"/a/x\",\"path\":\"/a/y\"},{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},{\"op\":\"remove\",\"path\":\"/a\"}]",
					 "{\"b\":{\"y\":1}}"));
	/* the inverse of an add of a new member is a remove */
	doc = J("{\"a\":1}");
	p = J("[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},{\"op\":\"replace\",\"path\":\"/a\",\"value\":3}]");
	CHECK(es_patch_inverse(doc, p, &inv, &err) == ES_ENGINE_OK);
	s = dump(inv);
	CHECK(strcmp(s, "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":1},{\"op\":\"remove\",\"path\":\"/b\"}]") == 0);
	free(s);
	es_json_free(inv);
	es_json_free(p);
	/* a patch that does not apply has no inverse, and doc_before is intact */
	p = J("[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},{\"op\":\"remove\",\"path\":\"/zz\"}]");
	CHECK(es_patch_inverse(doc, p, &inv, &err) == ES_ENGINE_REJECTED);
	CHECK(inv == NULL);
	CHECK(err.step == 1);
	s = dump(doc);
	CHECK(strcmp(s, "{\"a\":1}") == 0);
	free(s);
	es_json_free(p);
	/* plain patches have no extensions and no templates */
	p = J("[{\"op\":\"merge\",\"path\":\"\",\"value\":{}}]");
	CHECK(es_patch_apply(doc, p, &err) == ES_ENGINE_INVALID);
	CHECK(strstr(err.message, "unrecognized patch operation \"merge\"") != NULL);
	es_json_free(p);
	p = J("[{\"op\":\"add\",\"path\":\"/{x}\",\"value\":{\"$data\":\"/a\"}}]");
	CHECK(es_patch_apply(doc, p, &err) == ES_ENGINE_OK);
	s = dump(doc);
	CHECK(strcmp(s, "{\"a\":1,\"{x}\":{\"$data\":\"/a\"}}") == 0);
	free(s);
	es_json_free(p);
	p = J("[{\"op\":\"add\",\"path\":\"/c\"}]");
	CHECK(es_patch_apply(doc, p, &err) == ES_ENGINE_INVALID);
	CHECK(strstr(err.message, "missing member \"value\"") != NULL);
	es_json_free(p);
	p = J("{}");
	CHECK(es_patch_apply(doc, p, &err) == ES_ENGINE_INVALID);
	es_json_free(p);
	es_json_free(doc);
}

static void
test_effect_resolve(void)
{
	EsJson	   *state = J("{\"modules\":{\"m1\":{\"x\":1},\"m2\":{}},\"links\":{\"l1\":{\"source\":\"m1\"},\"l2\":{\"source\":\"m2\"}},\"l\":[1,2,1]}");
	EsJson	   *eff = J("[{\"op\":\"exists\",\"path\":\"/modules/{/id}\"},"
						"{\"op\":\"remove\",\"path\":\"/modules/{/id}\"},"
						"{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/source\",\"equals\":{\"$data\":\"/id\"}}]},"
						"{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"\",\"equals\":1}]},"
						"{\"op\":\"merge\",\"path\":\"/modules/m2\",\"value\":{\"by\":{\"$event\":\"username\"}}}]");
	EsJson	   *ev = make_event("{\"id\":\"m1\"}", "null");
	EsJson	   *patch = NULL;
	EsJson	   *copy = es_json_copy(state);
	EsEngineError err;
	char	   *s;

	CHECK(es_effect_resolve(eff, ev, state, &patch, &err) == ES_ENGINE_OK);
	s = dump(patch);
	CHECK(strcmp(s, "[{\"op\":\"remove\",\"path\":\"/modules/m1\"},"
				 "{\"op\":\"remove\",\"path\":\"/links/l1\"},"
				 "{\"op\":\"remove\",\"path\":\"/l/2\"},"
				 "{\"op\":\"remove\",\"path\":\"/l/0\"},"
				 "{\"op\":\"add\",\"path\":\"/modules/m2/by\",\"value\":\"alice\"}]") == 0);
	free(s);
	/* the state given is not changed */
	CHECK(es_json_equal(state, copy));
	es_json_free(patch);
	/* es_effect_apply_resolve: the same patch, applied in place */
	CHECK(es_effect_apply_resolve(copy, eff, ev, &patch, &err) == ES_ENGINE_OK);
	CHECK(patch != NULL);
	s = dump(copy);
	CHECK(strcmp(s, "{\"modules\":{\"m2\":{\"by\":\"alice\"}},\"links\":{\"l2\":{\"source\":\"m2\"}},\"l\":[2]}") == 0);
	free(s);
	es_json_free(patch);
	/* a failure gives no patch */
	CHECK(es_effect_apply_resolve(copy, eff, ev, &patch, &err) == ES_ENGINE_REJECTED);
	CHECK(patch == NULL);
	CHECK(err.step == 0 && strcmp(err.op, "exists") == 0);
	es_json_free(state);
	es_json_free(eff);
	es_json_free(ev);
	es_json_free(copy);
}

/* ---- schema ---- */

static bool
schema_invalid_at(int line, const char *schema, const char *msg)
{
	EsJson	   *s = J(schema);
	EsEngineError err;
	EsEngineStatus st = es_schema_check(s, &err);

	es_json_free(s);
	if (st != ES_ENGINE_INVALID || strstr(err.message, msg) == NULL)
	{
		printf("    line %d: check gave %d: %s\n", line, st, st ? err.message : "");
		return false;
	}
	return true;
}

static bool
schema_validate_at(int line, const char *schema, const char *data,
				   EsEngineStatus want, const char *path, const char *msg)
{
	EsJson	   *s = J(schema);
	EsJson	   *d = J(data);
	EsEngineError err;
	EsEngineStatus st = es_schema_validate(s, d, &err);
	bool		ok = true;

	if (st != want ||
		(st != ES_ENGINE_OK && (strcmp(err.path, path) != 0 ||
								strstr(err.message, msg) == NULL)))
	{
		printf("    line %d: validate gave %d: path \"%s\": %s\n", line, st,
			   st ? err.path : "", st ? err.message : "");
		ok = false;
	}
	es_json_free(s);
	es_json_free(d);
	return ok;
}

#define SCHEMA_INVALID(s, m) schema_invalid_at(__LINE__, s, m)
#define SCHEMA_OK(s, d) schema_validate_at(__LINE__, s, d, ES_ENGINE_OK, "", "")
#define SCHEMA_REJECTS(s, d, p, m) schema_validate_at(__LINE__, s, d, ES_ENGINE_REJECTED, p, m)

static void
test_schema(void)
{
	const char *module_add = "{\"type\":\"object\",\"required\":[\"moduleId\",\"module\"],"
		"\"properties\":{\"moduleId\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":3},"
		"\"module\":{\"type\":\"object\"},"
		"\"position\":{\"type\":\"object\",\"required\":[\"x\",\"y\"],\"properties\":{\"x\":{\"type\":\"number\"},\"y\":{\"type\":\"integer\"}}},"
		"\"kind\":{\"enum\":[\"task\",\"block\",1]},"
		"\"tags\":{\"type\":\"array\",\"items\":{\"type\":[\"string\",\"null\"]}}},"
		"\"additionalProperties\":false,\"title\":\"module_add\",\"description\":\"adds a module\"}";

	CHECK(SCHEMA_OK(module_add, "{\"moduleId\":\"m1\",\"module\":{},\"position\":{\"x\":1.5,\"y\":2},\"kind\":\"task\",\"tags\":[\"a\",null]}"));
	CHECK(SCHEMA_OK(module_add, "{\"moduleId\":\"\xc3\xa9\xc3\xa9\xc3\xa9\",\"module\":{},\"position\":{\"x\":1,\"y\":2.0},\"kind\":1}"));
	CHECK(SCHEMA_REJECTS(module_add, "{\"module\":{}}", "", "required member \"moduleId\" is missing at \"\""));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"m1\",\"module\":{},\"position\":{\"x\":\"1\",\"y\":2}}",
						 "/position/x", "\"/position/x\" must be a number, not a string"));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"m1\",\"module\":{},\"position\":{\"x\":1,\"y\":2.5}}",
						 "/position/y", "\"/position/y\" must be an integer, not a number with a fraction"));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"m1\",\"module\":{},\"position\":{\"x\":1}}",
						 "/position", "required member \"y\" is missing at \"/position\""));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"m1\",\"module\":[]}", "/module", "\"/module\" must be an object, not an array"));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"m1\",\"module\":{},\"extra\":1}", "", "member \"extra\" is not allowed at \"\""));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"m1\",\"module\":{},\"kind\":\"play\"}", "/kind", "must be one of the values of its enum"));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"m1\",\"module\":{},\"tags\":[\"a\",3]}", "/tags/1", "\"/tags/1\" must be a string or null, not a number"));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"\",\"module\":{}}", "/moduleId", "must have at least 1 characters"));
	CHECK(SCHEMA_REJECTS(module_add, "{\"moduleId\":\"abcd\",\"module\":{}}", "/moduleId", "must have at most 3 characters"));
	CHECK(SCHEMA_REJECTS(module_add, "[]", "", "\"\" must be an object, not an array"));
	CHECK(SCHEMA_REJECTS("{\"properties\":{\"a/b\":{\"type\":\"null\"}}}", "{\"a/b\":1}", "/a~1b", "must be null, not a number"));
	CHECK(SCHEMA_REJECTS("{\"type\":[\"object\",\"array\",\"boolean\"]}", "1", "", "must be an object, an array or a boolean, not a number"));
	CHECK(SCHEMA_OK("{}", "{\"anything\":[1]}"));
	CHECK(SCHEMA_INVALID("{\"type\":\"objet\"}", "schema keyword \"type\" at \"\""));
	CHECK(SCHEMA_INVALID("{\"requried\":[\"a\"]}", "schema keyword \"requried\" at \"\" is not supported"));
	CHECK(SCHEMA_INVALID("{\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}", "schema keyword \"pattern\" at \"/properties/a\" is not supported"));
	CHECK(SCHEMA_INVALID("{\"required\":\"a\"}", "must be an array of strings"));
	CHECK(SCHEMA_INVALID("{\"required\":[1]}", "must be an array of strings"));
	CHECK(SCHEMA_INVALID("{\"additionalProperties\":{}}", "must be a boolean"));
	CHECK(SCHEMA_INVALID("{\"enum\":[]}", "must be a non-empty array"));
	CHECK(SCHEMA_INVALID("{\"type\":[]}", "must not be an empty array"));
	CHECK(SCHEMA_INVALID("{\"items\":{\"minLength\":-1}}", "at \"/items\" must be a non-negative integer"));
	CHECK(SCHEMA_INVALID("{\"properties\":[]}", "must be an object of schemas"));
	CHECK(SCHEMA_INVALID("[]", "a schema must be an object"));
	CHECK(SCHEMA_INVALID("{\"properties\":{\"a\":true}}", "a schema must be an object, not a boolean at \"/properties/a\""));
	/* validating with an invalid schema */
	{
		EsJson	   *s = J("{\"typo\":1}");
		EsJson	   *d = J("{}");
		EsEngineStatus st = es_schema_validate(s, d, NULL);

		es_json_free(s);
		es_json_free(d);
		CHECK(st == ES_ENGINE_INVALID);
	}
}

/* ---- the playbook vocabulary ---- */

static const char *const playbook_effects[][2] = {
	{"module_add",
		"[{\"op\":\"merge\",\"path\":\"\",\"value\":{\"modules\":{},\"links\":{}}},"
		"{\"op\":\"absent\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":{\"$data\":\"/module\"}},"
		"{\"op\":\"add\",\"path\":\"/modules/{/moduleId}/position\",\"value\":{\"$data\":\"/position\"}},"
		"{\"op\":\"add\",\"path\":\"/modules/{/moduleId}/createdBy\",\"value\":{\"$event\":\"username\"}}]"},
	{"module_move",
		"[{\"op\":\"replace\",\"path\":\"/modules/{/moduleId}/position\",\"value\":{\"$data\":\"/position\"}}]"},
	{"module_resize",
		"[{\"op\":\"exists\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"add\",\"path\":\"/modules/{/moduleId}/size\",\"value\":{\"width\":{\"$data\":\"/width\"},\"height\":{\"$data\":\"/height\"}}}]"},
	{"module_config",
		"[{\"op\":\"exists\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"merge\",\"path\":\"/modules/{/moduleId}\",\"value\":{\"config\":{}}},"
		"{\"op\":\"merge\",\"path\":\"/modules/{/moduleId}/config\",\"value\":{\"$data\":\"/config\"}}]"},
	{"module_delete",
		"[{\"op\":\"exists\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"remove\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":["
		"{\"pointer\":\"/source\",\"equals\":{\"$data\":\"/moduleId\"}},"
		"{\"pointer\":\"/target\",\"equals\":{\"$data\":\"/moduleId\"}}]}]"},
	{"link_add",
		"[{\"op\":\"exists\",\"path\":\"/modules/{/link/source}\"},"
		"{\"op\":\"exists\",\"path\":\"/modules/{/link/target}\"},"
		"{\"op\":\"absent\",\"path\":\"/links/{/linkId}\"},"
		"{\"op\":\"add\",\"path\":\"/links/{/linkId}\",\"value\":{\"$data\":\"/link\"}}]"},
	{"link_delete",
		"[{\"op\":\"remove\",\"path\":\"/links/{/linkId}\"}]"},
	{"play_add",
		"[{\"op\":\"merge\",\"path\":\"\",\"value\":{\"plays\":{}}},"
		"{\"op\":\"absent\",\"path\":\"/plays/{/playId}\"},"
		"{\"op\":\"add\",\"path\":\"/plays/{/playId}\",\"value\":{\"$data\":\"/play\"}},"
		"{\"op\":\"add\",\"path\":\"/plays/{/playId}/roles\",\"value\":[]}]"},
	{"play_update",
		"[{\"op\":\"merge\",\"path\":\"/plays/{/playId}\",\"value\":{\"$data\":\"/changes\"}}]"},
	{"play_delete",
		"[{\"op\":\"remove\",\"path\":\"/plays/{/playId}\"}]"},
	{"variable_add",
		"[{\"op\":\"exists\",\"path\":\"/plays/{/playId}\"},"
		"{\"op\":\"merge\",\"path\":\"/plays/{/playId}\",\"value\":{\"variables\":{}}},"
		"{\"op\":\"absent\",\"path\":\"/plays/{/playId}/variables/{/name}\"},"
		"{\"op\":\"add\",\"path\":\"/plays/{/playId}/variables/{/name}\",\"value\":{\"$data\":\"/value\"}}]"},
	{"variable_update",
		"[{\"op\":\"replace\",\"path\":\"/plays/{/playId}/variables/{/name}\",\"value\":{\"$data\":\"/value\"}}]"},
	{"variable_delete",
		"[{\"op\":\"remove\",\"path\":\"/plays/{/playId}/variables/{/name}\"}]"},
	{"role_add",
		"[{\"op\":\"add\",\"path\":\"/plays/{/playId}/roles/-\",\"value\":{\"$data\":\"/role\"}}]"},
	{"role_update",
		"[{\"op\":\"replace\",\"path\":\"/plays/{/playId}/roles/{/index}\",\"value\":{\"$data\":\"/role\"}}]"},
	{"role_delete",
		"[{\"op\":\"remove\",\"path\":\"/plays/{/playId}/roles/{/index}\"}]"},
	{"block_collapse",
		"[{\"op\":\"exists\",\"path\":\"/modules/{/blockId}\"},"
		"{\"op\":\"add\",\"path\":\"/modules/{/blockId}/collapsed\",\"value\":{\"$data\":\"/collapsed\"}}]"},
	{"playbook_rename",
		"[{\"op\":\"add\",\"path\":\"/name\",\"value\":{\"$data\":\"/name\"}}]"}
};

/*
 * playbook_effect: the effect text of an event type of the playbook.
 */
static const char *
playbook_effect(const char *type)
{
	size_t		i;

	for (i = 0; i < sizeof(playbook_effects) / sizeof(playbook_effects[0]); i++)
		if (strcmp(playbook_effects[i][0], type) == 0)
			return playbook_effects[i][1];
	abort();
}

/*
 * playbook_step: applies one event of the playbook to state; true if the
 * outcome is want.
 */
static bool
playbook_step(int line, EsJson *state, const char *type, const char *data,
			  EsEngineStatus want)
{
	EsJson	   *eff = J(playbook_effect(type));
	EsJson	   *ev = make_event(data, "null");
	EsEngineError err;
	EsEngineStatus st;
	EsJson	   *before = es_json_copy(state);
	bool		ok;

	st = es_effect_apply(state, eff, ev, &err);
	ok = st == want;
	if (!ok)
		printf("    line %d: %s gave %d: step %d (%s) \"%s\": %s\n", line, type,
			   st, err.step, err.op, err.path, st ? err.message : "");
	if (ok && st == ES_ENGINE_OK)
		ok = check_round_trips(before, state, eff, ev);
	es_json_free(before);
	es_json_free(eff);
	es_json_free(ev);
	return ok;
}

#define PB(state, type, data, want) playbook_step(__LINE__, state, type, data, want)

static void
test_playbook(void)
{
	EsJson	   *state = es_json_empty_object();
	EsEngineError err;
	size_t		i;
	char	   *s;

	for (i = 0; i < sizeof(playbook_effects) / sizeof(playbook_effects[0]); i++)
	{
		EsJson	   *e = J(playbook_effects[i][1]);
		EsEngineStatus st = es_effect_check(e, &err);

		es_json_free(e);
		if (st != ES_ENGINE_OK)
			printf("    %s: %s\n", playbook_effects[i][0], err.message);
		CHECK(st == ES_ENGINE_OK);
	}
	CHECK(PB(state, "playbook_rename", "{\"name\":\"site.yml\"}", ES_ENGINE_OK));
	CHECK(PB(state, "module_add", "{\"moduleId\":\"m1\",\"module\":{\"type\":\"task\",\"name\":\"apt\"},\"position\":{\"x\":100,\"y\":200}}", ES_ENGINE_OK));
	CHECK(PB(state, "module_add", "{\"moduleId\":\"m2\",\"module\":{\"type\":\"task\"},\"position\":{\"x\":0,\"y\":0}}", ES_ENGINE_OK));
	CHECK(PB(state, "module_add", "{\"moduleId\":\"m3\",\"module\":{\"type\":\"block\"},\"position\":{\"x\":5,\"y\":5}}", ES_ENGINE_OK));
	CHECK(PB(state, "module_add", "{\"moduleId\":\"m1\",\"module\":{},\"position\":{}}", ES_ENGINE_REJECTED));
	CHECK(PB(state, "module_move", "{\"moduleId\":\"m2\",\"position\":{\"x\":10,\"y\":20}}", ES_ENGINE_OK));
	CHECK(PB(state, "module_move", "{\"moduleId\":\"nope\",\"position\":{\"x\":10,\"y\":20}}", ES_ENGINE_REJECTED));
	CHECK(PB(state, "module_resize", "{\"moduleId\":\"m3\",\"width\":300,\"height\":200}", ES_ENGINE_OK));
	CHECK(PB(state, "module_config", "{\"moduleId\":\"m1\",\"config\":{\"pkg\":\"nginx\",\"state\":\"present\"}}", ES_ENGINE_OK));
	CHECK(PB(state, "module_config", "{\"moduleId\":\"m1\",\"config\":{\"state\":null,\"update_cache\":true}}", ES_ENGINE_OK));
	CHECK(PB(state, "link_add", "{\"linkId\":\"l1\",\"link\":{\"source\":\"m1\",\"target\":\"m2\"}}", ES_ENGINE_OK));
	CHECK(PB(state, "link_add", "{\"linkId\":\"l2\",\"link\":{\"source\":\"m2\",\"target\":\"m3\"}}", ES_ENGINE_OK));
	CHECK(PB(state, "link_add", "{\"linkId\":\"l3\",\"link\":{\"source\":\"m3\",\"target\":\"m1\"}}", ES_ENGINE_OK));
	CHECK(PB(state, "link_add", "{\"linkId\":\"l4\",\"link\":{\"source\":\"m3\",\"target\":\"ghost\"}}", ES_ENGINE_REJECTED));
	CHECK(PB(state, "link_add", "{\"linkId\":\"l1\",\"link\":{\"source\":\"m3\",\"target\":\"m2\"}}", ES_ENGINE_REJECTED));
	CHECK(PB(state, "block_collapse", "{\"blockId\":\"m3\",\"collapsed\":true}", ES_ENGINE_OK));
	CHECK(PB(state, "play_add", "{\"playId\":\"p1\",\"play\":{\"name\":\"web\",\"hosts\":\"all\",\"become\":false}}", ES_ENGINE_OK));
	CHECK(PB(state, "play_update", "{\"playId\":\"p1\",\"changes\":{\"hosts\":\"web\",\"become\":null}}", ES_ENGINE_OK));
	CHECK(PB(state, "variable_add", "{\"playId\":\"p1\",\"name\":\"port\",\"value\":80}", ES_ENGINE_OK));
	CHECK(PB(state, "variable_add", "{\"playId\":\"p1\",\"name\":\"port\",\"value\":81}", ES_ENGINE_REJECTED));
	CHECK(PB(state, "variable_update", "{\"playId\":\"p1\",\"name\":\"port\",\"value\":8080}", ES_ENGINE_OK));
	CHECK(PB(state, "variable_add", "{\"playId\":\"p1\",\"name\":\"user\",\"value\":\"www\"}", ES_ENGINE_OK));
	CHECK(PB(state, "variable_delete", "{\"playId\":\"p1\",\"name\":\"user\"}", ES_ENGINE_OK));
	CHECK(PB(state, "role_add", "{\"playId\":\"p1\",\"role\":{\"name\":\"nginx\"}}", ES_ENGINE_OK));
	CHECK(PB(state, "role_add", "{\"playId\":\"p1\",\"role\":{\"name\":\"certbot\"}}", ES_ENGINE_OK));
	CHECK(PB(state, "role_update", "{\"playId\":\"p1\",\"index\":1,\"role\":{\"name\":\"acme\"}}", ES_ENGINE_OK));
	CHECK(PB(state, "role_delete", "{\"playId\":\"p1\",\"index\":0}", ES_ENGINE_OK));
	CHECK(PB(state, "role_delete", "{\"playId\":\"p1\",\"index\":5}", ES_ENGINE_REJECTED));
	/* deleting m1 deletes l1 and l3 with it */
	CHECK(PB(state, "module_delete", "{\"moduleId\":\"m1\"}", ES_ENGINE_OK));
	CHECK(PB(state, "module_delete", "{\"moduleId\":\"m1\"}", ES_ENGINE_REJECTED));
	CHECK(PB(state, "link_delete", "{\"linkId\":\"l3\"}", ES_ENGINE_REJECTED));
	CHECK(PB(state, "link_delete", "{\"linkId\":\"l2\"}", ES_ENGINE_OK));
	CHECK(PB(state, "play_add", "{\"playId\":\"p2\",\"play\":{}}", ES_ENGINE_OK));
	CHECK(PB(state, "play_delete", "{\"playId\":\"p2\"}", ES_ENGINE_OK));
	s = dump(state);
	CHECK(strcmp(s, "{\"name\":\"site.yml\",\"modules\":{"
				 "\"m2\":{\"type\":\"task\",\"position\":{\"x\":10,\"y\":20},\"createdBy\":\"alice\"},"
				 "\"m3\":{\"type\":\"block\",\"position\":{\"x\":5,\"y\":5},\"createdBy\":\"alice\",\"size\":{\"width\":300,\"height\":200},\"collapsed\":true}},"
				 "\"links\":{},"
				 "\"plays\":{\"p1\":{\"name\":\"web\",\"hosts\":\"web\",\"roles\":[{\"name\":\"acme\"}],\"variables\":{\"port\":8080}}}}") == 0);
	free(s);
	es_json_free(state);
}

/* ---- effects against the schema of the data ---- */

/*
 * effect_schema_at: es_effect_check_schema of effect against schema (NULL:
 * no schema) gives want; when not OK, the step, op, path (NULL: any) and
 * a message containing msg (the whole message if exact).  On success the
 * error must be untouched.
 */
static bool
effect_schema_at(int line, const char *effect, const char *schema,
				 EsEngineStatus want, int step, const char *op,
				 const char *path, const char *msg, bool exact)
{
	EsJson	   *e = J(effect);
	EsJson	   *s = schema ? J(schema) : NULL;
	EsEngineError err;
	EsEngineStatus st;
	bool		ok = true;

	err.step = 12345;
	strcpy(err.op, "untouched");
	strcpy(err.path, "untouched");
	strcpy(err.message, "untouched");
	st = es_effect_check_schema(e, s, &err);
	if (st != want)
	{
		printf("    line %d: es_effect_check_schema gave %d, expected %d: step %d (%s) path \"%s\": %s\n",
			   line, st, want, err.step, err.op, err.path, err.message);
		ok = false;
	}
	else if (st == ES_ENGINE_OK)
	{
		if (err.step != 12345 || strcmp(err.op, "untouched") != 0 ||
			strcmp(err.path, "untouched") != 0 ||
			strcmp(err.message, "untouched") != 0)
		{
			printf("    line %d: the error was changed on success\n", line);
			ok = false;
		}
	}
	else if (err.step != step || strcmp(err.op, op) != 0 ||
			 (path && strcmp(err.path, path) != 0) ||
			 (exact ? strcmp(err.message, msg) != 0 : strstr(err.message, msg) == NULL))
	{
		printf("    line %d: error step %d (%s) path \"%s\": %s\n"
			   "      expected step %d (%s) path \"%s\": %s%s%s\n",
			   line, err.step, err.op, err.path, err.message,
			   step, op, path ? path : "(any)", exact ? "" : "...", msg,
			   exact ? "" : "...");
		ok = false;
	}
	es_json_free(e);
	es_json_free(s);
	return ok;
}

#define EFFECT_SCHEMA_OK(e, s) \
	effect_schema_at(__LINE__, e, s, ES_ENGINE_OK, 0, "", NULL, "", false)
#define EFFECT_SCHEMA_BAD(e, s, st, op, p, m) \
	effect_schema_at(__LINE__, e, s, ES_ENGINE_INVALID, st, op, p, m, true)
#define EFFECT_SCHEMA_BAD_LIKE(e, s, st, op, p, m) \
	effect_schema_at(__LINE__, e, s, ES_ENGINE_INVALID, st, op, p, m, false)

static void
test_effect_check_schema(void)
{
	/* closed at the root, with every kind of property below */
	const char *closed = "{\"type\":\"object\",\"properties\":{"
		"\"moduleId\":{\"type\":\"string\"},"
		"\"module\":{\"type\":\"object\",\"properties\":{\"kind\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"}},\"additionalProperties\":false},"
		"\"open\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}},"
		"\"free\":{},"
		"\"none\":{\"type\":\"object\",\"additionalProperties\":false},"
		"\"position\":{\"type\":\"object\"},"
		"\"maybe\":{\"type\":[\"object\",\"null\"]},"
		"\"x\":{\"type\":\"number\"},"
		"\"flag\":{\"type\":\"boolean\"},"
		"\"nothing\":{\"type\":\"null\"},"
		"\"mixed\":{\"type\":[\"boolean\",\"integer\"]},"
		"\"list\":{\"type\":\"array\"},"
		"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
		"\"objs\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},\"additionalProperties\":false}},"
		"\"either\":{\"type\":[\"object\",\"array\"],\"properties\":{\"0\":{\"type\":\"object\"}},\"items\":{\"type\":\"string\"}},"
		"\"kinds\":{\"enum\":[\"task\",1]},"
		"\"reals\":{\"enum\":[1.5,true,null]},"
		"\"whole\":{\"enum\":[2.0]},"
		"\"a/b\":{\"type\":\"string\"}"
		"},\"required\":[\"moduleId\"],\"additionalProperties\":false}";
	const char *add = "[{\"op\":\"add\",\"path\":\"/m/%s\",\"value\":1}]";
	char		effect[512];

	/* no schema: nothing to check, the effect is not looked at */
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/{/a}\",\"value\":1}]", NULL));
	CHECK(EFFECT_SCHEMA_OK("{}", NULL));
	/* the errors of es_effect_check and es_schema_check come first */
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"upsert\",\"path\":\"/a\"}]", closed, 0, "", "",
							"unrecognized op \"upsert\""));
	CHECK(EFFECT_SCHEMA_BAD_LIKE("[]", "{\"type\":\"objet\"}", -1, "", "",
								 "schema keyword \"type\""));
	CHECK(EFFECT_SCHEMA_BAD_LIKE("{}", "{}", -1, "", "", "an effect must be an array"));
	/* nothing to check */
	CHECK(EFFECT_SCHEMA_OK("[]", closed));
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"remove\",\"path\":\"/modules/m1\"}]", closed));

	/* declared properties, at the root and below */
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/modules/{/moduleId}\",\"value\":{\"$data\":\"/module\"}}]", closed));
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m/{/module/kind}-{/module/n}\",\"value\":{\"$data\":\"/module/kind\"}}]", closed));
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m/{/a~1b}\",\"value\":1}]", closed));
	/* "required" says nothing here: an optional property is fine */
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m/{/open/a}\",\"value\":1}]", closed));
	/* undeclared under "additionalProperties": false: at the root ... */
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/modules/{/moduleID}\",\"value\":1}]", closed,
							0, "add", "/modules/{/moduleID}",
							"template \"{/moduleID}\" refers to nothing: the schema of the data has no property \"moduleID\""));
	/* ... and below, with the location; escaped tokens are named unescaped */
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/module/kynd}\",\"value\":1}]", closed,
							0, "add", "/m/{/module/kynd}",
							"template \"{/module/kynd}\" refers to nothing: the schema of the data has no property \"kynd\" in \"/module\""));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/a~0b}\",\"value\":1}]", closed,
							0, "add", NULL,
							"template \"{/a~0b}\" refers to nothing: the schema of the data has no property \"a~b\""));
	/* "additionalProperties": false without "properties": no property at all */
	snprintf(effect, sizeof(effect), add, "{/none/k}");
	CHECK(EFFECT_SCHEMA_BAD(effect, closed, 0, "add", "/m/{/none/k}",
							"template \"{/none/k}\" refers to nothing: the schema of the data has no property \"k\" in \"/none\""));
	/* an open level: anything goes below it */
	snprintf(effect, sizeof(effect), add, "{/open/b/c/d}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/free/b/0/d}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/position/x}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m/{/anything/at/all}\",\"value\":{\"$data\":\"/x/y\"}}]",
						   "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}"));
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m/{/anything}\",\"value\":1}]",
						   "{\"properties\":{\"a\":{}},\"additionalProperties\":true}"));
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m/{/anything}\",\"value\":1}]", "{}"));

	/* a type that allows no container stops every token */
	snprintf(effect, sizeof(effect), add, "{/moduleId/x}");
	CHECK(EFFECT_SCHEMA_BAD(effect, closed, 0, "add", NULL,
							"template \"{/moduleId/x}\" refers to nothing: the schema of the data makes \"/moduleId\" a string"));
	snprintf(effect, sizeof(effect), add, "{/mixed/0}");
	CHECK(EFFECT_SCHEMA_BAD(effect, closed, 0, "add", NULL,
							"template \"{/mixed/0}\" refers to nothing: the schema of the data makes \"/mixed\" a boolean or an integer"));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/a}\",\"value\":1}]", "{\"type\":\"string\"}",
							0, "add", NULL,
							"template \"{/a}\" refers to nothing: the schema of the data makes the data a string"));
	/* arrays: an index descends into "items" */
	snprintf(effect, sizeof(effect), add, "{/tags/0}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/objs/12/id}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/objs/0/name}");
	CHECK(EFFECT_SCHEMA_BAD(effect, closed, 0, "add", NULL,
							"template \"{/objs/0/name}\" refers to nothing: the schema of the data has no property \"name\" in \"/objs/0\""));
	snprintf(effect, sizeof(effect), add, "{/tags/first}");
	CHECK(EFFECT_SCHEMA_BAD(effect, closed, 0, "add", NULL,
							"template \"{/tags/first}\" refers to nothing: the schema of the data makes \"/tags\" an array, and \"first\" is not an array index"));
	snprintf(effect, sizeof(effect), add, "{/tags/-}");
	CHECK(EFFECT_SCHEMA_BAD_LIKE(effect, closed, 0, "add", NULL, "\"-\" is not an array index"));
	snprintf(effect, sizeof(effect), add, "{/tags/01}");
	CHECK(EFFECT_SCHEMA_BAD_LIKE(effect, closed, 0, "add", NULL, "\"01\" is not an array index"));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/a}\",\"value\":1}]", "{\"type\":\"array\"}",
							0, "add", NULL,
							"template \"{/a}\" refers to nothing: the schema of the data makes the data an array, and \"a\" is not an array index"));
	/* an array without "items": anything goes below an index */
	snprintf(effect, sizeof(effect), add, "{/list/3/x}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	/* object or array, a schema for each: the walk cannot tell, and stops */
	snprintf(effect, sizeof(effect), add, "{/either/0/z}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/either/0}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	/* an index that is no property: "items", or any undeclared property */
	snprintf(effect, sizeof(effect), add, "{/either/1}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	/* a name: only the object route, open */
	snprintf(effect, sizeof(effect), add, "{/either/y/z}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/y}\",\"value\":1}]",
							"{\"type\":[\"object\",\"array\"],\"properties\":{\"0\":{}},\"additionalProperties\":false}",
							0, "add", NULL,
							"template \"{/y}\" refers to nothing: the schema of the data has no property \"y\""));
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m/{/5}\",\"value\":1}]",
						   "{\"type\":[\"object\",\"array\"],\"properties\":{\"0\":{}},\"additionalProperties\":false}"));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/5}\",\"value\":1}]",
							"{\"type\":[\"object\",\"array\"],\"properties\":{\"0\":{}},\"additionalProperties\":false,\"items\":{\"type\":\"object\"}}",
							0, "add", NULL,
							"template \"{/5}\" refers to a value that cannot be a string or an integer: the schema of the data makes \"/5\" an object"));

	/* a template needs a string or an integer */
	snprintf(effect, sizeof(effect), add, "{/position}");
	CHECK(EFFECT_SCHEMA_BAD(effect, closed, 0, "add", "/m/{/position}",
							"template \"{/position}\" refers to a value that cannot be a string or an integer: the schema of the data makes \"/position\" an object"));
	snprintf(effect, sizeof(effect), add, "{/maybe}");
	CHECK(EFFECT_SCHEMA_BAD_LIKE(effect, closed, 0, "add", NULL, "makes \"/maybe\" an object or null"));
	snprintf(effect, sizeof(effect), add, "{/flag}");
	CHECK(EFFECT_SCHEMA_BAD_LIKE(effect, closed, 0, "add", NULL, "makes \"/flag\" a boolean"));
	snprintf(effect, sizeof(effect), add, "{/nothing}");
	CHECK(EFFECT_SCHEMA_BAD_LIKE(effect, closed, 0, "add", NULL, "makes \"/nothing\" null"));
	snprintf(effect, sizeof(effect), add, "{/tags}");
	CHECK(EFFECT_SCHEMA_BAD_LIKE(effect, closed, 0, "add", NULL, "makes \"/tags\" an array"));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/a}\",\"value\":1}]",
							"{\"properties\":{\"a\":{\"type\":[\"object\",\"array\",\"null\"]}}}", 0, "add", NULL,
							"template \"{/a}\" refers to a value that cannot be a string or an integer: the schema of the data makes \"/a\" an object, an array or null"));
	/* a number may be an integer; string, integer, or one of them, are fine */
	snprintf(effect, sizeof(effect), add, "{/x}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/mixed}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/module/n}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/free}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	/* an enum with a string or an integer (2.0 equals 2) */
	snprintf(effect, sizeof(effect), add, "{/kinds}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/whole}");
	CHECK(EFFECT_SCHEMA_OK(effect, closed));
	snprintf(effect, sizeof(effect), add, "{/reals}");
	CHECK(EFFECT_SCHEMA_BAD(effect, closed, 0, "add", NULL,
							"template \"{/reals}\" refers to a value that cannot be a string or an integer: the enum of \"/reals\" in the schema of the data has no string or integer"));
	/* the empty property */
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/}\",\"value\":1}]",
							"{\"type\":\"object\",\"properties\":{\"\":{\"type\":\"array\"}}}", 0, "add", NULL,
							"template \"{/}\" refers to a value that cannot be a string or an integer: the schema of the data makes \"/\" an array"));

	/* "$data" references: only that something can be there, of any type */
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"p\":{\"$data\":\"/position\"},\"l\":[{\"$data\":\"/tags\"},{\"$data\":\"\"}]}}]", closed));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"add\",\"path\":\"/m/{/moduleId}\",\"value\":{\"p\":[1,{\"q\":{\"$data\":\"/postion\"}}]}}]", closed,
							0, "add", "/m/{/moduleId}",
							"reference {\"$data\": \"/postion\"} refers to nothing: the schema of the data has no property \"postion\""));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"test\",\"path\":\"/m\",\"value\":{\"$data\":\"/moduleId/0\"}}]", closed,
							0, "test", "/m",
							"reference {\"$data\": \"/moduleId/0\"} refers to nothing: the schema of the data makes \"/moduleId\" a string"));
	CHECK(EFFECT_SCHEMA_BAD_LIKE("[{\"op\":\"merge\",\"path\":\"/m\",\"value\":{\"$data\":\"/nope\"}}]", closed,
								 0, "merge", "/m", "has no property \"nope\""));
	CHECK(EFFECT_SCHEMA_BAD_LIKE("[{\"op\":\"replace\",\"path\":\"/m\",\"value\":{\"$data\":\"/nope\"}}]", closed,
								 0, "replace", "/m", "has no property \"nope\""));
	/* $meta, $event and what a $literal holds are not data references */
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"add\",\"path\":\"/m\",\"value\":[{\"$meta\":\"/nope\"},{\"$event\":\"username\"},{\"$literal\":{\"$data\":\"/nope\"}}]}]", closed));
	/* conditions: "equals" is checked, "pointer" is relative to a member */
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/nope\",\"equals\":{\"$data\":\"/moduleId\"}}]}]", closed));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/source\",\"equals\":1},{\"pointer\":\"/target\",\"equals\":{\"$data\":\"/module_id\"}}]}]", closed,
							0, "remove_where", "/links",
							"reference {\"$data\": \"/module_id\"} refers to nothing: the schema of the data has no property \"module_id\""));
	CHECK(EFFECT_SCHEMA_BAD_LIKE("[{\"op\":\"remove_where\",\"path\":\"/l/{/flag}\",\"where\":[{\"pointer\":\"\",\"equals\":1}]}]", closed,
								 0, "remove_where", "/l/{/flag}", "makes \"/flag\" a boolean"));
	/* "from": its templates, with the "from" as the path of the error */
	CHECK(EFFECT_SCHEMA_OK("[{\"op\":\"move\",\"from\":\"/m/{/moduleId}\",\"path\":\"/n/{/module/kind}\"}]", closed));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"move\",\"from\":\"/m/{/id}\",\"path\":\"/n/{/moduleId}\"}]", closed,
							0, "move", "/m/{/id}",
							"template \"{/id}\" refers to nothing: the schema of the data has no property \"id\""));
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"copy\",\"from\":\"/m/{/moduleId}\",\"path\":\"/n/{/id}\"}]", closed,
							0, "copy", "/n/{/id}",
							"template \"{/id}\" refers to nothing: the schema of the data has no property \"id\""));
	/* every template of a path, every op; the failing step is named */
	CHECK(EFFECT_SCHEMA_BAD("[{\"op\":\"exists\",\"path\":\"/m/{/moduleId}\"},{\"op\":\"absent\",\"path\":\"/m/{/moduleId}/{/position/x}\"},{\"op\":\"remove\",\"path\":\"/m/{/moduleId}-{/kind}\"}]", closed,
							2, "remove", "/m/{/moduleId}-{/kind}",
							"template \"{/kind}\" refers to nothing: the schema of the data has no property \"kind\""));
	/* a NULL err is fine */
	{
		EsJson	   *e = J("[{\"op\":\"exists\",\"path\":\"/m/{/nope}\"}]");
		EsJson	   *sc = J(closed);
		EsEngineStatus st = es_effect_check_schema(e, sc, NULL);

		es_json_free(e);
		es_json_free(sc);
		CHECK(st == ES_ENGINE_INVALID);
	}
	/* a definition of the playbook against its schema, and a typo */
	CHECK(EFFECT_SCHEMA_OK(playbook_effect("module_add"),
						   "{\"type\":\"object\",\"required\":[\"moduleId\",\"module\"],\"properties\":{\"moduleId\":{\"type\":\"string\"},\"module\":{\"type\":\"object\"},\"position\":{\"type\":\"object\"}},\"additionalProperties\":false}"));
	CHECK(EFFECT_SCHEMA_BAD(playbook_effect("module_add"),
							"{\"type\":\"object\",\"required\":[\"moduleId\",\"module\"],\"properties\":{\"moduleId\":{\"type\":\"string\"},\"module\":{\"type\":\"object\"},\"pos\":{\"type\":\"object\"}},\"additionalProperties\":false}",
							3, "add", "/modules/{/moduleId}/position",
							"reference {\"$data\": \"/position\"} refers to nothing: the schema of the data has no property \"position\""));
}

/* ---- scale ---- */

/*
 * now_seconds: a monotonic-enough clock for rough timings.
 */
static double
now_seconds(void)
{
	return (double) clock() / CLOCKS_PER_SEC;
}

/*
 * add_modules: applies module_add for modules from..to-1; the seconds taken.
 */
static double
add_modules(EsJson *state, EsJson *eff, int from, int to, bool *ok)
{
	double		start = now_seconds();
	int			i;
	char		data[256];
	EsEngineError err;

	for (i = from; i < to; i++)
	{
		EsJson	   *ev;

		snprintf(data, sizeof(data),
				 "{\"moduleId\":\"m%d\",\"module\":{\"type\":\"task\",\"name\":\"n%d\"},\"position\":{\"x\":%d,\"y\":%d}}",
				 i, i, i, i);
		ev = make_event(data, "null");
		if (es_effect_apply(state, eff, ev, &err) != ES_ENGINE_OK)
		{
			printf("    module %d: %s\n", i, err.message);
			*ok = false;
		}
		es_json_free(ev);
	}
	return now_seconds() - start;
}

static void
test_large_state(void)
{
	EsJson	   *state = es_json_empty_object();
	EsJson	   *add = J(playbook_effect("module_add"));
	EsJson	   *link = J(playbook_effect("link_add"));
	EsJson	   *del = J(playbook_effect("module_delete"));
	EsJson	   *fail = J("[{\"op\":\"remove\",\"path\":\"/modules/m1\"},{\"op\":\"remove\",\"path\":\"/modules/m2\"},{\"op\":\"remove\",\"path\":\"/nope\"}]");
	EsJson	   *ev;
	EsEngineError err;
	bool		ok = true;
	double		early;
	double		late;
	double		start;
	char		data[256];
	int			i;
	char	   *before;
	char	   *after;

	early = add_modules(state, add, 0, 2000, &ok);
	CHECK(ok);
	(void) add_modules(state, add, 2000, 48000, &ok);
	CHECK(ok);
	late = add_modules(state, add, 48000, 50000, &ok);
	CHECK(ok);
	printf("    2000 module_add: %.3f s at 0 modules, %.3f s at 48000\n", early, late);
	/* no quadratic behaviour: the cost of an event does not grow with n */
	CHECK(late < early * 5 + 0.05);
	/* links from every module to m0, then delete m0: one remove_where */
	for (i = 1; i < 5000; i++)
	{
		snprintf(data, sizeof(data),
				 "{\"linkId\":\"l%d\",\"link\":{\"source\":\"m%d\",\"target\":\"m0\"}}",
				 i, i);
		ev = make_event(data, "null");
		CHECK(es_effect_apply(state, link, ev, &err) == ES_ENGINE_OK);
		es_json_free(ev);
	}
	ev = make_event("{\"moduleId\":\"m0\"}", "null");
	start = now_seconds();
	CHECK(es_effect_apply(state, del, ev, &err) == ES_ENGINE_OK);
	printf("    module_delete with 4999 links: %.3f s\n", now_seconds() - start);
	es_json_free(ev);
	/* a failing event on the large state: rolled back, cheaply */
	before = dump(state);
	start = now_seconds();
	ev = make_event("{}", "null");
	for (i = 0; i < 1000; i++)
		if (es_effect_apply(state, fail, ev, &err) != ES_ENGINE_REJECTED)
			ok = false;
	es_json_free(ev);
	CHECK(ok);
	late = now_seconds() - start;
	printf("    1000 rolled-back events: %.3f s\n", late);
	CHECK(late < 2.0);
	after = dump(state);
	CHECK(strlen(before) == strlen(after));
	free(before);
	free(after);
	es_json_free(state);
	es_json_free(add);
	es_json_free(link);
	es_json_free(del);
	es_json_free(fail);
}

/* ---- documents never share nodes ---- */

/*
 * unshared: true if v is a tree whose every node is referenced once: a node
 * that the engine shared between two documents (or two places of one) has
 * a reference count above 1.  true, false and null are jansson's
 * constants, never allocated.
 */
static bool
unshared(const json_t *v)
{
	if (v == NULL)
		return false;
	if (json_is_true(v) || json_is_false(v) || json_is_null(v))
		return true;
	if (v->refcount != 1)
		return false;
	if (json_is_object(v))
	{
		const char *key;
		json_t	   *member;

		json_object_foreach((json_t *) v, key, member)
		{
			if (!unshared(member))
				return false;
		}
	}
	else if (json_is_array(v))
	{
		size_t		i;

		for (i = 0; i < json_array_size(v); i++)
			if (!unshared(json_array_get(v, i)))
				return false;
	}
	return true;
}

static void
test_no_shared_nodes(void)
{
	const char *state_text = "{\"a\":{\"k\":[1,{\"z\":\"s\"}]},\"l\":[{\"id\":1},{\"id\":2},{\"id\":2}],\"o\":{\"p\":1,\"w\":{\"id\":2}}}";
	const char *effect_text =
		"[{\"op\":\"add\",\"path\":\"/lit\",\"value\":{\"$literal\":{\"x\":[1,\"s\",{\"y\":2.5}]}}},"
		"{\"op\":\"add\",\"path\":\"/plain\",\"value\":{\"x\":[1,\"s\",null,true]}},"
		"{\"op\":\"add\",\"path\":\"/d\",\"value\":{\"$data\":\"/obj\"}},"
		"{\"op\":\"add\",\"path\":\"/m\",\"value\":{\"$meta\":\"/m\"}},"
		"{\"op\":\"add\",\"path\":\"/e\",\"value\":[{\"$event\":\"username\"},{\"$event\":\"sequence_number\"}]},"
		"{\"op\":\"replace\",\"path\":\"/o/p\",\"value\":{\"$data\":\"/obj\"}},"
		"{\"op\":\"merge\",\"path\":\"/o\",\"value\":{\"q\":{\"$data\":\"/obj\"},\"r\":{\"s\":[1],\"n\":null},\"t\":\"u\",\"p\":{\"n\":{\"deep\":null}}}},"
		"{\"op\":\"merge\",\"path\":\"\",\"value\":{\"a\":{\"k2\":{\"$data\":\"/obj/n\"}}}},"
		"{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a2\"},"
		"{\"op\":\"move\",\"from\":\"/a2/k\",\"path\":\"/k\"},"
		"{\"op\":\"add\",\"path\":\"/l/-\",\"value\":{\"id\":3}},"
		"{\"op\":\"remove_where\",\"path\":\"/l\",\"where\":[{\"pointer\":\"/id\",\"equals\":{\"$data\":\"/id\"}}]},"
		"{\"op\":\"remove_where\",\"path\":\"/o\",\"where\":[{\"pointer\":\"/id\",\"equals\":{\"$data\":\"/id\"}}]},"
		"{\"op\":\"test\",\"path\":\"/plain\",\"value\":{\"x\":[1,\"s\",null,true]}}]";
	EsJson	   *state = J(state_text);
	EsJson	   *before = J(state_text);
	EsJson	   *effect = J(effect_text);
	EsJson	   *event = make_event("{\"obj\":{\"n\":{\"deep\":[1,2]}},\"id\":2}",
								   "{\"m\":{\"mm\":[true,\"x\"]}}");
	EsJson	   *patch = NULL;
	EsJson	   *resolved = NULL;
	EsJson	   *inverse = NULL;
	EsJson	   *doc;
	EsJson	   *built;
	EsEventFields f;
	EsEngineError err;

	CHECK(es_effect_apply_resolve(state, effect, event, &patch, &err) == ES_ENGINE_OK);
	CHECK(unshared(state));
	CHECK(unshared(patch));
	CHECK(unshared(effect));
	CHECK(unshared(event));
	CHECK(es_effect_resolve(effect, event, before, &resolved, &err) == ES_ENGINE_OK);
	CHECK(unshared(resolved));
	CHECK(unshared(before));
	CHECK(es_patch_inverse(before, patch, &inverse, &err) == ES_ENGINE_OK);
	CHECK(unshared(inverse));
	CHECK(unshared(patch));
	doc = es_json_copy(before);
	CHECK(es_patch_apply(doc, patch, &err) == ES_ENGINE_OK);
	CHECK(unshared(doc));
	CHECK(unshared(patch));
	CHECK(es_json_equal(doc, state));
	CHECK(es_patch_apply(doc, inverse, &err) == ES_ENGINE_OK);
	CHECK(unshared(doc));
	CHECK(es_json_equal(doc, before));
	es_json_free(doc);
	es_json_free(resolved);
	es_json_free(inverse);
	es_json_free(patch);
	es_json_free(effect);

	/* the root replaced by data, then a failure: rolled back, still a tree */
	effect = J("[{\"op\":\"add\",\"path\":\"\",\"value\":{\"$data\":\"/obj\"}},"
			   "{\"op\":\"merge\",\"path\":\"\",\"value\":{\"n\":{\"$data\":\"/obj\"}}},"
			   "{\"op\":\"remove_where\",\"path\":\"/n/n/deep\",\"where\":[{\"pointer\":\"\",\"equals\":1}]},"
			   "{\"op\":\"test\",\"path\":\"/nope\",\"value\":1}]");
	doc = es_json_copy(state);
	CHECK(es_effect_apply(doc, effect, event, &err) == ES_ENGINE_REJECTED);
	CHECK(unshared(doc));
	CHECK(es_json_equal(doc, state));
	es_json_free(doc);
	es_json_free(effect);
	/* the same steps succeeding */
	effect = J("[{\"op\":\"add\",\"path\":\"\",\"value\":{\"$data\":\"/obj\"}},"
			   "{\"op\":\"merge\",\"path\":\"\",\"value\":{\"n\":{\"$data\":\"/obj\"}}},"
			   "{\"op\":\"remove_where\",\"path\":\"/n/n/deep\",\"where\":[{\"pointer\":\"\",\"equals\":1}]}]");
	doc = es_json_copy(state);
	CHECK(es_effect_apply_resolve(doc, effect, event, &patch, &err) == ES_ENGINE_OK);
	CHECK(unshared(doc));
	CHECK(unshared(patch));
	CHECK(unshared(event));
	/* a plain patch that replaces the root and fails */
	{
		EsJson	   *p = J("[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"r\":[1]}},{\"op\":\"copy\",\"from\":\"/r\",\"path\":\"/c\"},{\"op\":\"remove\",\"path\":\"/zz\"}]");
		EsJson	   *copy = es_json_copy(doc);

		CHECK(es_patch_apply(copy, p, &err) == ES_ENGINE_REJECTED);
		CHECK(unshared(copy));
		CHECK(unshared(p));
		CHECK(es_json_equal(copy, doc));
		es_json_free(copy);
		es_json_free(p);
	}
	es_json_free(doc);
	es_json_free(patch);
	es_json_free(effect);

	/* an event built from its fields */
	memset(&f, 0, sizeof(f));
	f.data = "{\"a\":[1,{\"b\":null}]}";
	f.data_len = strlen(f.data);
	f.metadata = "{\"c\":\"d\"}";
	f.metadata_len = strlen(f.metadata);
	f.sequence_number = 3;
	f.created_at = "t";
	f.username = "u";
	f.event_type = "e";
	built = es_event_new(&f, &err);
	CHECK(built != NULL);
	CHECK(unshared(built));
	es_json_free(built);

	es_json_free(state);
	es_json_free(before);
	es_json_free(event);
}

/* ---- allocation failures ---- */

static long alloc_budget = -1;

/*
 * failing_malloc: malloc that fails once alloc_budget allocations were made
 * (never if it is negative).
 */
static void *
failing_malloc(size_t size)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return malloc(size);
}

static void
test_out_of_memory(void)
{
	const char *effect = playbook_effect("module_delete");
	const char *state_text = "{\"modules\":{\"m1\":{\"a\":[1,2]},\"m2\":{}},\"links\":{\"l1\":{\"source\":\"m1\",\"target\":\"m2\"},\"l2\":{\"source\":\"m2\",\"target\":\"m1\"},\"l3\":{\"source\":\"m2\",\"target\":\"m2\"}}}";
	const char *fail_effect = "[{\"op\":\"remove\",\"path\":\"/modules/m1\"},{\"op\":\"merge\",\"path\":\"/modules/m2\",\"value\":{\"x\":{\"y\":[1]}}},{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/source\",\"equals\":\"m2\"}]},{\"op\":\"absent\",\"path\":\"/links/l1\"}]";
	long		budget;
	int			nomem = 0;
	int			rejected_intact = 0;

	json_set_alloc_funcs(failing_malloc, free);
	for (budget = 0; budget < 400; budget++)
	{
		EsJson	   *state;
		EsJson	   *eff;
		EsJson	   *ev;
		EsJson	   *patch = NULL;
		EsEngineError err;
		EsEngineStatus st;

		alloc_budget = -1;
		state = J(state_text);
		eff = J(budget % 2 ? effect : fail_effect);
		ev = make_event("{\"moduleId\":\"m1\"}", "null");
		alloc_budget = budget / 2;
		st = es_effect_apply_resolve(state, eff, ev, &patch, &err);
		alloc_budget = -1;
		CHECK(st == ES_ENGINE_OK || st == ES_ENGINE_NOMEM || st == ES_ENGINE_REJECTED);
		/* whatever happened, the state is a tree that can be freed */
		CHECK(unshared(state));
		if (patch != NULL)
			CHECK(unshared(patch));
		if (st == ES_ENGINE_NOMEM)
		{
			nomem++;
			CHECK(strcmp(err.message, "out of memory") == 0);
		}
		if (st == ES_ENGINE_REJECTED)
		{
			EsJson	   *orig = J(state_text);

			CHECK(es_json_equal(state, orig));
			rejected_intact++;
			es_json_free(orig);
		}
		if (st != ES_ENGINE_OK)
			CHECK(patch == NULL);
		es_json_free(patch);
		/* the other entry points under the same budget */
		alloc_budget = budget / 2;
		{
			EsJson	   *copy = es_json_copy(state);
			char	   *text = es_json_dump(state, NULL);
			EsJson	   *parsed = text ? es_json_parse(text, strlen(text), &err) : NULL;
			EsJson	   *inverse = NULL;
			EsJson	   *p2 = NULL;

			(void) es_effect_resolve(eff, ev, state, &p2, &err);
			if (p2 && copy)
				(void) es_patch_inverse(copy, p2, &inverse, &err);
			if (p2 && copy)
				(void) es_patch_apply(copy, p2, &err);
			alloc_budget = -1;
			es_json_free(copy);
			es_json_free(parsed);
			es_json_free(inverse);
			es_json_free(p2);
			free(text);
		}
		es_json_free(state);
		es_json_free(eff);
		es_json_free(ev);
	}
	json_set_alloc_funcs(malloc, free);
	printf("    %d runs out of memory, %d rejected with the state intact\n",
		   nomem, rejected_intact);
	CHECK(nomem > 50);
}


/*
 * test_out_of_memory_entry_points: every other entry point that allocates
 * documents, with allocation failing after each number of allocations:
 * it reports "out of memory" (never a wrong reason), leaks nothing (the
 * sanitizer checks) and leaves trees that can be freed.
 */
static void
test_out_of_memory_entry_points(void)
{
	const char *text = "{\"a\":[1,2.5,\"s\",{\"b\":null,\"c\":[true,false]}],\"d\":{\"e\":\"f\"}}";
	const char *ok_patch = "[{\"op\":\"add\",\"path\":\"/x\",\"value\":{\"y\":[1,2]}},"
		"{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/d/a\"},"
		"{\"op\":\"replace\",\"path\":\"/d/e\",\"value\":[\"g\"]},"
		"{\"op\":\"copy\",\"from\":\"/d\",\"path\":\"/t\"},"
		"{\"op\":\"remove\",\"path\":\"/t/a/3\"},"
		"{\"op\":\"replace\",\"path\":\"\",\"value\":{\"r\":{\"s\":1},\"d\":{}}},"
		"{\"op\":\"add\",\"path\":\"/d/z\",\"value\":0}]";
	const char *fail_patch = "[{\"op\":\"add\",\"path\":\"/x\",\"value\":{\"y\":[1,2]}},"
		"{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/d/a\"},"
		"{\"op\":\"remove\",\"path\":\"/d/a/0\"},"
		"{\"op\":\"replace\",\"path\":\"\",\"value\":{\"r\":{\"s\":1}}},"
		"{\"op\":\"copy\",\"from\":\"/r\",\"path\":\"/t\"},"
		"{\"op\":\"test\",\"path\":\"/zz\",\"value\":1}]";
	long		budget;
	int			parse_nomem = 0;
	int			event_nomem = 0;
	int			patch_nomem = 0;
	int			inverse_nomem = 0;
	int			copy_nomem = 0;
	int			inverse_ok = 0;

	json_set_alloc_funcs(failing_malloc, free);
	/* past 212 allocations, es_patch_inverse succeeds too */
	for (budget = 0; budget < 240; budget++)
	{
		EsJson	   *doc;
		EsJson	   *orig = J(text);
		EsJson	   *patch = J(fail_patch);
		EsJson	   *good = J(ok_patch);
		EsJson	   *inverse = NULL;
		EsEventFields f;
		EsEngineError err;
		EsEngineStatus st;

		/* parsing: NULL only for want of memory, and said so */
		alloc_budget = budget;
		doc = es_json_parse(text, strlen(text), &err);
		alloc_budget = -1;
		if (doc == NULL)
		{
			parse_nomem++;
			CHECK(strcmp(err.message, "out of memory") == 0);
		}
		else
			CHECK(unshared(doc) && es_json_equal(doc, orig));
		es_json_free(doc);

		/* the event document */
		memset(&f, 0, sizeof(f));
		f.data = text;
		f.data_len = strlen(text);
		f.metadata = "{\"k\":[1]}";
		f.metadata_len = strlen(f.metadata);
		f.sequence_number = 9;
		f.created_at = "2026-01-19T12:00:00Z";
		f.user_id = "1";
		f.event_type = "t";
		alloc_budget = budget;
		doc = es_event_new(&f, &err);
		alloc_budget = -1;
		if (doc == NULL)
		{
			event_nomem++;
			CHECK(strcmp(err.message, "out of memory") == 0);
		}
		else
			CHECK(unshared(doc));
		es_json_free(doc);

		/* a plain patch that fails after changes: the rollback allocates */
		doc = es_json_copy(orig);
		alloc_budget = budget;
		st = es_patch_apply(doc, patch, &err);
		alloc_budget = -1;
		CHECK(st == ES_ENGINE_REJECTED || st == ES_ENGINE_NOMEM);
		CHECK(unshared(doc));
		if (st == ES_ENGINE_REJECTED)
			CHECK(es_json_equal(doc, orig));
		else
		{
			patch_nomem++;
			CHECK(strcmp(err.message, "out of memory") == 0);
		}
		es_json_free(doc);

		/* a patch that applies, and its inverse */
		alloc_budget = budget;
		st = es_patch_inverse(orig, good, &inverse, &err);
		alloc_budget = -1;
		CHECK(st == ES_ENGINE_OK || st == ES_ENGINE_NOMEM);
		if (st == ES_ENGINE_OK)
		{
			inverse_ok++;
			CHECK(unshared(inverse));
			doc = es_json_copy(orig);
			CHECK(es_patch_apply(doc, good, &err) == ES_ENGINE_OK);
			CHECK(es_patch_apply(doc, inverse, &err) == ES_ENGINE_OK);
			CHECK(es_json_equal(doc, orig));
			es_json_free(doc);
		}
		else
		{
			inverse_nomem++;
			CHECK(inverse == NULL);
			CHECK(strcmp(err.message, "out of memory") == 0);
		}
		es_json_free(inverse);

		/* copies */
		alloc_budget = budget;
		doc = es_json_copy(orig);
		alloc_budget = -1;
		if (doc == NULL)
			copy_nomem++;
		else
			CHECK(unshared(doc) && es_json_equal(doc, orig));
		es_json_free(doc);

		es_json_free(orig);
		es_json_free(patch);
		es_json_free(good);
	}
	json_set_alloc_funcs(malloc, free);
	printf("    out of memory: %d parses, %d events, %d patches, %d inverses, %d copies\n",
		   parse_nomem, event_nomem, patch_nomem, inverse_nomem, copy_nomem);
	CHECK(parse_nomem > 5 && event_nomem > 5 && patch_nomem > 5 &&
		  inverse_nomem > 5 && copy_nomem > 5 && inverse_ok > 5);
}

/* ---- traces, undo patches and conflicts ---- */

#ifdef ES_TEST_WRAP_ALLOC
/*
 * With test/unit/run.sh on GNU ld, every call to malloc, calloc and realloc
 * made by the engine or by this file goes through these wrappers
 * (-Wl,--wrap), which fail once scratch_budget allocations were made (never
 * if it is negative).  So the engine's scratch memory (parsed pointers,
 * undo logs, text buffers) can run out too, not only its documents; and
 * with json_set_alloc_funcs(malloc, free), which names the wrapper here,
 * documents count as well: every allocation can fail.
 */
extern void *__real_malloc(size_t size);
extern void *__real_calloc(size_t n, size_t size);
extern void *__real_realloc(void *p, size_t size);
void	   *__wrap_malloc(size_t size);
void	   *__wrap_calloc(size_t n, size_t size);
void	   *__wrap_realloc(void *p, size_t size);

#define HAVE_SCRATCH_OOM 1

static long scratch_budget = -1;

/*
 * scratch_take: may one more allocation be made?
 */
static bool
scratch_take(void)
{
	if (scratch_budget == 0)
		return false;
	if (scratch_budget > 0)
		scratch_budget--;
	return true;
}

void *
__wrap_malloc(size_t size)
{
	return scratch_take() ? __real_malloc(size) : NULL;
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return scratch_take() ? __real_calloc(n, size) : NULL;
}

void *
__wrap_realloc(void *p, size_t size)
{
	return scratch_take() ? __real_realloc(p, size) : NULL;
}
#else
#define HAVE_SCRATCH_OOM 0

static long scratch_budget = -1;	/* without --wrap: no effect */
#endif

/*
 * in_child: runs fn in a child process and tells whether it passed, so that
 * a memory error the sanitizers abort on fails one case, not the whole run.
 * The child leaves with exit(), so that LeakSanitizer checks it too.
 */
static bool
in_child(void (*fn) (void))
{
	pid_t		pid;
	int			status;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
	{
		printf("    cannot fork\n");
		return false;
	}
	if (pid == 0)
	{
		harness_case_failed = false;
		fn();
		fflush(stdout);
		exit(harness_case_failed ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return false;
	if (WIFSIGNALED(status))
		printf("    the child died of signal %d\n", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		printf("    the child exited with status %d\n", WEXITSTATUS(status));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * same_text: doc written out is expected; says what differs otherwise.
 */
static bool
same_text(int line, const char *what, const EsJson *doc, const char *expected)
{
	char	   *got;
	bool		ok;

	if (doc == NULL)
	{
		printf("    line %d: %s is NULL, expected %s\n", line, what, expected);
		return false;
	}
	got = dump(doc);
	ok = strcmp(got, expected) == 0;
	if (!ok)
		printf("    line %d: %s\n      got      %s\n      expected %s\n",
			   line, what, got, expected);
	free(got);
	return ok;
}

/*
 * trace_ok_at: es_effect_apply_trace of effect to state for an event with
 * data succeeds with the state, the patch and the reads expected (compact
 * text); es_effect_apply_resolve gives the same patch and state.
 */
static bool
trace_ok_at(int line, const char *state, const char *effect, const char *data,
			const char *expected_state, const char *expected_patch,
			const char *expected_reads)
{
	EsJson	   *doc = J(state);
	EsJson	   *doc2 = J(state);
	EsJson	   *eff = J(effect);
	EsJson	   *ev = make_event(data, "null");
	EsJson	   *patch = NULL;
	EsJson	   *patch2 = NULL;
	EsJson	   *reads = NULL;
	EsEngineError err;
	EsEngineStatus st;
	bool		ok = true;

	st = es_effect_apply_trace(doc, eff, ev, &patch, &reads, &err);
	if (st != ES_ENGINE_OK)
	{
		printf("    line %d: trace gave %d: step %d (%s) \"%s\": %s\n",
			   line, st, err.step, err.op, err.path, err.message);
		ok = false;
	}
	ok = ok && same_text(line, "state", doc, expected_state);
	ok = ok && same_text(line, "patch", patch, expected_patch);
	ok = ok && same_text(line, "reads", reads, expected_reads);
	ok = ok && unshared(doc) && unshared(patch) && unshared(reads);
	if (ok)
	{
		st = es_effect_apply_resolve(doc2, eff, ev, &patch2, &err);
		if (st != ES_ENGINE_OK || !es_json_equal(patch, patch2) ||
			!es_json_equal(doc, doc2))
		{
			printf("    line %d: es_effect_apply_resolve does not agree\n", line);
			ok = false;
		}
	}
	es_json_free(doc);
	es_json_free(doc2);
	es_json_free(eff);
	es_json_free(ev);
	es_json_free(patch);
	es_json_free(patch2);
	es_json_free(reads);
	return ok;
}

#define TRACE_OK(s, e, d, xs, xp, xr) trace_ok_at(__LINE__, s, e, d, xs, xp, xr)

/* a pointer that is not NULL, to see that a function sets its outputs */
static char not_null_target;
#define NOT_NULL ((EsJson *) (void *) &not_null_target)

/*
 * trace_fail_at: es_effect_apply_trace fails with want at step, both
 * outputs NULL, the state unchanged.
 */
static bool
trace_fail_at(int line, const char *state, const char *effect,
			  const char *data, EsEngineStatus want, int step, const char *msg)
{
	EsJson	   *doc = J(state);
	EsJson	   *orig = J(state);
	EsJson	   *eff = J(effect);
	EsJson	   *ev = make_event(data, "null");
	EsJson	   *patch = NOT_NULL;
	EsJson	   *reads = NOT_NULL;
	EsEngineError err;
	EsEngineStatus st;
	bool		ok = true;

	st = es_effect_apply_trace(doc, eff, ev, &patch, &reads, &err);
	if (st != want || err.step != step || strstr(err.message, msg) == NULL)
	{
		printf("    line %d: trace gave %d, step %d: %s\n      expected %d, step %d: ...%s...\n",
			   line, st, st ? err.step : 0, st ? err.message : "(ok)",
			   want, step, msg);
		ok = false;
	}
	if (patch != NULL || reads != NULL)
	{
		printf("    line %d: a failed trace left patch %s and reads %s\n", line,
			   patch ? "set" : "NULL", reads ? "set" : "NULL");
		ok = false;
		if (patch != NOT_NULL)
			es_json_free(patch);
		if (reads != NOT_NULL)
			es_json_free(reads);
	}
	if (!es_json_equal(doc, orig) || !unshared(doc))
	{
		printf("    line %d: a failed trace changed the state\n", line);
		ok = false;
	}
	es_json_free(doc);
	es_json_free(orig);
	es_json_free(eff);
	es_json_free(ev);
	return ok;
}

#define TRACE_FAIL(s, e, d, w, st, m) trace_fail_at(__LINE__, s, e, d, w, st, m)

static void
test_effect_apply_trace(void)
{
	EsEngineError err;

	/*
	 * merge: a member set to its own value is not logged; an empty
	 * container from a literal value is scaffolding, one from the event
	 * data is content
	 */
	CHECK(TRACE_OK("{\"p\":{\"id\":\"p1\",\"n\":1}}",
				   "[{\"op\":\"merge\",\"path\":\"/p\",\"value\":{\"$data\":\"\"}}]",
				   "{\"id\":\"p1\",\"n\":2,\"vars\":{}}",
				   "{\"p\":{\"id\":\"p1\",\"n\":2,\"vars\":{}}}",
				   "[{\"op\":\"add\",\"path\":\"/p/n\",\"value\":2},"
				   "{\"op\":\"add\",\"path\":\"/p/vars\",\"value\":{}}]", "[]"));
	CHECK(TRACE_OK("{\"a\":[]}",
				   "[{\"op\":\"merge\",\"path\":\"\",\"value\":{\"a\":[],\"b\":[],\"c\":{\"d\":{}}}}]",
				   "{}",
				   "{\"a\":[],\"b\":[],\"c\":{\"d\":{}}}",
				   "[{\"op\":\"add\",\"path\":\"/b\",\"value\":[],\"scaffold\":true},"
				   "{\"op\":\"add\",\"path\":\"/c\",\"value\":{\"d\":{}}}]", "[]"));

	/* the playbook's module_add: its absent step, with the template escaped */
	CHECK(TRACE_OK("{}", playbook_effect("module_add"),
				   "{\"moduleId\":\"a/b~c\",\"module\":{\"t\":1},\"position\":{\"x\":1}}",
				   "{\"modules\":{\"a/b~c\":{\"t\":1,\"position\":{\"x\":1},\"createdBy\":\"alice\"}},\"links\":{}}",
				   "[{\"op\":\"add\",\"path\":\"/modules\",\"value\":{},\"scaffold\":true},"
				   "{\"op\":\"add\",\"path\":\"/links\",\"value\":{},\"scaffold\":true},"
				   "{\"op\":\"add\",\"path\":\"/modules/a~1b~0c\",\"value\":{\"t\":1}},"
				   "{\"op\":\"add\",\"path\":\"/modules/a~1b~0c/position\",\"value\":{\"x\":1}},"
				   "{\"op\":\"add\",\"path\":\"/modules/a~1b~0c/createdBy\",\"value\":\"alice\"}]",
				   "[{\"op\":\"absent\",\"path\":\"/modules/a~1b~0c\"}]"));
	/* exists and absent in step order, mixed with changes; an integer
	 * template; the root; array indexes */
	CHECK(TRACE_OK("{\"modules\":{\"m1\":{}},\"l\":[1]}",
				   "[{\"op\":\"exists\",\"path\":\"/modules/{/id}\"},"
				   "{\"op\":\"add\",\"path\":\"/x\",\"value\":1},"
				   "{\"op\":\"absent\",\"path\":\"/modules/{/other}\"},"
				   "{\"op\":\"exists\",\"path\":\"\"},"
				   "{\"op\":\"exists\",\"path\":\"/x\"},"
				   "{\"op\":\"absent\",\"path\":\"/l/5\"},"
				   "{\"op\":\"exists\",\"path\":\"/l/0\"},"
				   "{\"op\":\"remove\",\"path\":\"/x\"},"
				   "{\"op\":\"absent\",\"path\":\"/x\"},"
				   "{\"op\":\"absent\",\"path\":\"/nope/deeper\"}]",
				   "{\"id\":\"m1\",\"other\":7}",
				   "{\"modules\":{\"m1\":{}},\"l\":[1]}",
				   "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1},{\"op\":\"remove\",\"path\":\"/x\"}]",
				   "[{\"op\":\"exists\",\"path\":\"/modules/m1\"},"
				   "{\"op\":\"absent\",\"path\":\"/modules/7\"},"
				   "{\"op\":\"exists\",\"path\":\"\"},"
				   "{\"op\":\"exists\",\"path\":\"/x\"},"
				   "{\"op\":\"absent\",\"path\":\"/l/5\"},"
				   "{\"op\":\"exists\",\"path\":\"/l/0\"},"
				   "{\"op\":\"absent\",\"path\":\"/x\"},"
				   "{\"op\":\"absent\",\"path\":\"/nope/deeper\"}]"));
	/* no precondition: reads is [], not NULL; test is not a read */
	CHECK(TRACE_OK("{\"a\":1}",
				   "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1},{\"op\":\"replace\",\"path\":\"/a\",\"value\":2}]",
				   "{}", "{\"a\":2}",
				   "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1},{\"op\":\"replace\",\"path\":\"/a\",\"value\":2}]",
				   "[]"));
	CHECK(TRACE_OK("{}", "[]", "{}", "{}", "[]", "[]"));
	/* merge and remove_where as concrete changes, preconditions as reads */
	CHECK(TRACE_OK("{\"modules\":{\"m1\":{},\"m2\":{}},\"links\":{\"l1\":{\"source\":\"m1\"},\"l2\":{\"source\":\"m2\"}}}",
				   playbook_effect("module_delete"), "{\"moduleId\":\"m1\"}",
				   "{\"modules\":{\"m2\":{}},\"links\":{\"l2\":{\"source\":\"m2\"}}}",
				   "[{\"op\":\"remove\",\"path\":\"/modules/m1\"},{\"op\":\"remove\",\"path\":\"/links/l1\"}]",
				   "[{\"op\":\"exists\",\"path\":\"/modules/m1\"}]"));

	/* failures: no patch, no reads, the state as it was */
	CHECK(TRACE_FAIL("{\"modules\":{\"m1\":{}}}",
					 "[{\"op\":\"exists\",\"path\":\"/modules/m1\"},{\"op\":\"add\",\"path\":\"/y\",\"value\":1},"
					 "{\"op\":\"absent\",\"path\":\"/modules/{/id}\"}]",
					 "{\"id\":\"m1\"}", REJ, 2, "value at \"/modules/m1\" already exists"));
	CHECK(TRACE_FAIL("{\"a\":1}",
					 "[{\"op\":\"absent\",\"path\":\"/b\"},{\"op\":\"remove\",\"path\":\"/a\"},{\"op\":\"exists\",\"path\":\"/a\"}]",
					 "{}", REJ, 2, "path \"/a\" does not exist"));
	CHECK(TRACE_FAIL("{}", "[{\"op\":\"absent\",\"path\":\"/m/{/nope}\"}]", "{}", REJ, 0,
					 "refers to nothing in the event data"));
	CHECK(TRACE_FAIL("{}", "[{\"op\":\"exists\",\"path\":\"\"},{\"op\":\"upsert\",\"path\":\"/a\"}]", "{}", INV, 1,
					 "unrecognized op \"upsert\""));
	CHECK(TRACE_FAIL("{}", "{\"op\":\"exists\",\"path\":\"\"}", "{}", INV, -1, "must be an array"));

	/* reads, patch, both or neither may be NULL */
	{
		EsJson	   *state = J("{\"m\":{}}");
		EsJson	   *eff = J("[{\"op\":\"absent\",\"path\":\"/m/k\"},{\"op\":\"add\",\"path\":\"/m/k\",\"value\":1},{\"op\":\"exists\",\"path\":\"/m/k\"}]");
		EsJson	   *rm = J("[{\"op\":\"remove\",\"path\":\"/m/k\"}]");
		EsJson	   *ev = make_event("{}", "null");
		EsJson	   *patch = NOT_NULL;
		EsJson	   *reads = NOT_NULL;

		CHECK(es_effect_apply_trace(state, eff, ev, &patch, NULL, &err) == ES_ENGINE_OK);
		CHECK(same_text(__LINE__, "patch", patch, "[{\"op\":\"add\",\"path\":\"/m/k\",\"value\":1}]"));
		es_json_free(patch);
		CHECK(es_effect_apply_trace(state, eff, ev, NULL, &reads, &err) == ES_ENGINE_REJECTED);
		CHECK(reads == NULL);
		CHECK(err.step == 0);
		CHECK(es_effect_apply(state, rm, ev, &err) == ES_ENGINE_OK);
		CHECK(es_effect_apply_trace(state, eff, ev, NULL, &reads, &err) == ES_ENGINE_OK);
		CHECK(same_text(__LINE__, "reads", reads,
						"[{\"op\":\"absent\",\"path\":\"/m/k\"},{\"op\":\"exists\",\"path\":\"/m/k\"}]"));
		es_json_free(reads);
		CHECK(es_effect_apply(state, rm, ev, &err) == ES_ENGINE_OK);
		CHECK(es_effect_apply_trace(state, eff, ev, NULL, NULL, NULL) == ES_ENGINE_OK);
		CHECK(same_text(__LINE__, "state", state, "{\"m\":{\"k\":1}}"));
		/* a NULL state, effect or event is invalid */
		patch = NOT_NULL;
		reads = NOT_NULL;
		CHECK(es_effect_apply_trace(NULL, eff, ev, &patch, &reads, &err) == ES_ENGINE_INVALID);
		CHECK(patch == NULL && reads == NULL);
		CHECK(es_effect_apply_trace(state, NULL, ev, &patch, &reads, &err) == ES_ENGINE_INVALID);
		CHECK(es_effect_apply_trace(state, eff, NULL, &patch, &reads, &err) == ES_ENGINE_INVALID);
		CHECK(patch == NULL && reads == NULL);
		es_json_free(state);
		es_json_free(eff);
		es_json_free(rm);
		es_json_free(ev);
	}
}

/*
 * oom_arm: allocations fail after budget more: those of documents only
 * (every false: jansson's allocator, as the tests above), or every
 * allocation, scratch memory included (every true: needs the wrapper).
 * oom_disarm: nothing fails any more.
 */
static void
oom_arm(bool every, long budget)
{
	if (every)
	{
		json_set_alloc_funcs(malloc, free);
		scratch_budget = budget;
	}
	else
	{
		json_set_alloc_funcs(failing_malloc, free);
		alloc_budget = budget;
	}
}

static void
oom_disarm(void)
{
	alloc_budget = -1;
	scratch_budget = -1;
	json_set_alloc_funcs(malloc, free);
}

/*
 * trace_oom_run: es_effect_apply_trace of effect_text under every budget
 * until the outcome is stable; an outcome is either the one without
 * failures (want, with its state, patch and reads) or ES_ENGINE_NOMEM with
 * "out of memory", no patch, no reads and a state that is still a tree.
 * The number of runs out of memory goes to *nomem.
 */
static bool
trace_oom_run(const char *state_text, const char *effect_text, bool every,
			  EsEngineStatus want, int *nomem)
{
	EsJson	   *ref_state = J(state_text);
	EsJson	   *eff = J(effect_text);
	EsJson	   *ev = make_event("{\"moduleId\":\"m1\"}", "null");
	EsJson	   *ref_patch = NULL;
	EsJson	   *ref_reads = NULL;
	EsEngineError err;
	long		budget;
	int			stable = 0;
	bool		ok = true;

	if (es_effect_apply_trace(ref_state, eff, ev, &ref_patch, &ref_reads, &err) != want)
	{
		printf("    the effect does not give %d without failures\n", want);
		ok = false;
	}
	if (want != ES_ENGINE_OK)
	{
		es_json_free(ref_state);
		ref_state = J(state_text);
	}
	for (budget = 0; ok && stable < 10 && budget < 5000; budget++)
	{
		EsJson	   *state = J(state_text);
		EsJson	   *patch = NOT_NULL;
		EsJson	   *reads = NOT_NULL;
		EsEngineStatus st;

		oom_arm(every, budget);
		st = es_effect_apply_trace(state, eff, ev, &patch, &reads, &err);
		oom_disarm();
		if (st == ES_ENGINE_NOMEM)
		{
			(*nomem)++;
			stable = 0;
			if (strcmp(err.message, "out of memory") != 0 || patch != NULL ||
				reads != NULL || !unshared(state))
			{
				printf("    budget %ld: out of memory: \"%s\", patch %s, reads %s\n",
					   budget, err.message, patch ? "set" : "NULL",
					   reads ? "set" : "NULL");
				ok = false;
			}
		}
		else if (st != want)
		{
			printf("    budget %ld: status %d (%s), expected %d\n", budget, st,
				   err.message, want);
			ok = false;
		}
		else
		{
			stable++;
			if (!es_json_equal(state, ref_state) || !unshared(state) ||
				(want == ES_ENGINE_OK &&
				 (!es_json_equal(patch, ref_patch) || !es_json_equal(reads, ref_reads) ||
				  !unshared(patch) || !unshared(reads))) ||
				(want != ES_ENGINE_OK && (patch != NULL || reads != NULL)))
			{
				printf("    budget %ld: not the outcome without failures\n", budget);
				ok = false;
			}
		}
		if (patch != NOT_NULL)
			es_json_free(patch);
		if (reads != NOT_NULL)
			es_json_free(reads);
		es_json_free(state);
	}
	if (ok && stable < 10)
	{
		printf("    no stable outcome\n");
		ok = false;
	}
	es_json_free(ref_state);
	es_json_free(ref_patch);
	es_json_free(ref_reads);
	es_json_free(eff);
	es_json_free(ev);
	return ok;
}

static void
test_effect_apply_trace_out_of_memory(void)
{
	const char *state_text = "{\"modules\":{\"m1\":{\"a\":[1,2]},\"m2\":{}},\"links\":{\"l1\":{\"source\":\"m1\",\"target\":\"m2\"},\"l2\":{\"source\":\"m2\",\"target\":\"m1\"},\"l3\":{\"source\":\"m2\",\"target\":\"m2\"}}}";
	const char *ok_effect =
		"[{\"op\":\"exists\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"absent\",\"path\":\"/modules/{/moduleId}/zz\"},"
		"{\"op\":\"remove\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/source\",\"equals\":{\"$data\":\"/moduleId\"}},{\"pointer\":\"/target\",\"equals\":{\"$data\":\"/moduleId\"}}]},"
		"{\"op\":\"merge\",\"path\":\"\",\"value\":{\"plays\":{\"p\":[1]}}},"
		"{\"op\":\"absent\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"exists\",\"path\":\"/plays/p/0\"}]";
	const char *fail_effect =
		"[{\"op\":\"exists\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"remove\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"remove_where\",\"path\":\"/links\",\"where\":[{\"pointer\":\"/source\",\"equals\":\"m2\"}]},"
		"{\"op\":\"merge\",\"path\":\"/modules/m2\",\"value\":{\"x\":{\"y\":[1]}}},"
		"{\"op\":\"absent\",\"path\":\"/modules/{/moduleId}\"},"
		"{\"op\":\"exists\",\"path\":\"/modules/{/moduleId}\"}]";
	int			nomem_docs = 0;
	int			nomem_all = 0;

	CHECK(trace_oom_run(state_text, ok_effect, false, ES_ENGINE_OK, &nomem_docs));
	CHECK(trace_oom_run(state_text, fail_effect, false, ES_ENGINE_REJECTED, &nomem_docs));
	if (HAVE_SCRATCH_OOM)
	{
		CHECK(trace_oom_run(state_text, ok_effect, true, ES_ENGINE_OK, &nomem_all));
		CHECK(trace_oom_run(state_text, fail_effect, true, ES_ENGINE_REJECTED, &nomem_all));
	}
	printf("    out of memory: %d runs (documents), %d runs (every allocation)\n",
		   nomem_docs, nomem_all);
	CHECK(nomem_docs > 20);
	CHECK(!HAVE_SCRATCH_OOM || nomem_all > nomem_docs);
}

/*
 * effect_apply_trace_out_of_memory_long: as above, with more changes and
 * more reads than the first allocation of a log array holds (8), so that
 * appending to the patch or to the reads can fail too.
 */
static void
effect_apply_trace_out_of_memory_long(void)
{
	const char *state_text = "{\"modules\":{\"m1\":{}},\"l\":[]}";
	char		effect[4096];
	size_t		len;
	int			i;
	int			nomem_docs = 0;
	int			nomem_all = 0;

	strcpy(effect, "[");
	for (i = 0; i < 12; i++)
	{
		len = strlen(effect);
		snprintf(effect + len, sizeof(effect) - len,
				 "%s{\"op\":\"exists\",\"path\":\"/modules/{/moduleId}\"},"
				 "{\"op\":\"absent\",\"path\":\"/l/%d\"},"
				 "{\"op\":\"add\",\"path\":\"/l/-\",\"value\":{\"i\":%d}}",
				 i ? "," : "", i, i);
	}
	strcat(effect, "]");
	CHECK(trace_oom_run(state_text, effect, false, ES_ENGINE_OK, &nomem_docs));
	if (HAVE_SCRATCH_OOM)
		CHECK(trace_oom_run(state_text, effect, true, ES_ENGINE_OK, &nomem_all));
	printf("    out of memory: %d runs (documents), %d runs (every allocation)\n",
		   nomem_docs, nomem_all);
	CHECK(nomem_docs > 20);
}

/*
 * test_effect_apply_trace_out_of_memory_long: in a child process, since a
 * memory error aborts it.
 */
static void
test_effect_apply_trace_out_of_memory_long(void)
{
	CHECK(in_child(effect_apply_trace_out_of_memory_long));
}

/*
 * undo_at: es_undo_patch of patch on before gives expected_undo (compact
 * text), leaves before alone, and the undo applied after the patch gives
 * restored (by value).
 */
static bool
undo_at(int line, const char *before, const char *patch,
		const char *expected_undo, const char *restored)
{
	EsJson	   *doc = J(before);
	EsJson	   *orig = J(before);
	EsJson	   *p = J(patch);
	EsJson	   *want = J(restored);
	EsJson	   *undo = NOT_NULL;
	EsJson	   *after = NULL;
	EsEngineError err;
	EsEngineStatus st;
	bool		ok = true;

	st = es_undo_patch(doc, p, &undo, &err);
	if (st != ES_ENGINE_OK)
	{
		printf("    line %d: es_undo_patch gave %d: %s\n", line, st, err.message);
		ok = false;
		undo = NULL;
	}
	if (!es_json_equal(doc, orig))
	{
		printf("    line %d: es_undo_patch changed doc_before\n", line);
		ok = false;
	}
	ok = ok && same_text(line, "undo", undo, expected_undo) && unshared(undo);
	if (ok)
	{
		after = J(before);
		if (es_patch_apply(after, p, &err) != ES_ENGINE_OK)
		{
			printf("    line %d: test bug: the patch does not apply: %s\n", line,
				   err.message);
			ok = false;
		}
		else if (es_patch_apply(after, undo, &err) != ES_ENGINE_OK)
		{
			printf("    line %d: the undo does not apply after the patch: %s\n",
				   line, err.message);
			ok = false;
		}
		else if (!es_json_equal(after, want))
		{
			char	   *s = dump(after);

			printf("    line %d: after the patch and its undo\n      got      %s\n      expected %s\n",
				   line, s, restored);
			free(s);
			ok = false;
		}
	}
	es_json_free(doc);
	es_json_free(orig);
	es_json_free(p);
	es_json_free(want);
	es_json_free(undo);
	es_json_free(after);
	return ok;
}

#define UNDO(b, p, u, r) undo_at(__LINE__, b, p, u, r)

static void
test_undo_patch(void)
{
	EsEngineError err;

	/* add of a new member, replace, add over a member */
	CHECK(UNDO("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2}]",
			   "[{\"op\":\"remove\",\"path\":\"/b\"}]", "{\"a\":1}"));
	CHECK(UNDO("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":{\"x\":[]}}]",
			   "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":1}]", "{\"a\":1}"));
	CHECK(UNDO("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":2}]",
			   "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":1}]", "{\"a\":1}"));
	/* an empty container added over a member is a replace: undone */
	CHECK(UNDO("{\"a\":{\"x\":1}}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{}}]",
			   "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":{\"x\":1}}]", "{\"a\":{\"x\":1}}"));
	CHECK(UNDO("{\"a\":5}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[]}]",
			   "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":5}]", "{\"a\":5}"));
	/* replace by an empty container: undone */
	CHECK(UNDO("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":{}}]",
			   "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":1}]", "{\"a\":1}"));
	/* remove, of an empty container too */
	CHECK(UNDO("{\"a\":{\"x\":[1]},\"b\":2}", "[{\"op\":\"remove\",\"path\":\"/a\"}]",
			   "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{\"x\":[1]}}]", "{\"a\":{\"x\":[1]},\"b\":2}"));
	CHECK(UNDO("{\"a\":{}}", "[{\"op\":\"remove\",\"path\":\"/a\"}]",
			   "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{}}]", "{\"a\":{}}"));
	/* move: to a new member, over a member, within an array, of a container */
	CHECK(UNDO("{\"a\":1,\"b\":2}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/c\"}]",
			   "[{\"op\":\"remove\",\"path\":\"/c\"},{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]",
			   "{\"a\":1,\"b\":2}"));
	CHECK(UNDO("{\"a\":1,\"b\":2}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]",
			   "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":2},{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]",
			   "{\"a\":1,\"b\":2}"));
	CHECK(UNDO("{\"l\":[0,1,2]}", "[{\"op\":\"move\",\"from\":\"/l/0\",\"path\":\"/l/-\"}]",
			   "[{\"op\":\"remove\",\"path\":\"/l/2\"},{\"op\":\"add\",\"path\":\"/l/0\",\"value\":0}]",
			   "{\"l\":[0,1,2]}"));
	CHECK(UNDO("{\"a\":{}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]",
			   "[{\"op\":\"remove\",\"path\":\"/b\"},{\"op\":\"add\",\"path\":\"/a\",\"value\":{}}]",
			   "{\"a\":{}}"));
	/* copy, of an empty container too (a copy is not an add) */
	CHECK(UNDO("{\"a\":[1]}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"}]",
			   "[{\"op\":\"remove\",\"path\":\"/b\"}]", "{\"a\":[1]}"));
	CHECK(UNDO("{\"a\":{}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"}]",
			   "[{\"op\":\"remove\",\"path\":\"/b\"}]", "{\"a\":{}}"));
	/* test: nothing to undo */
	CHECK(UNDO("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]", "[]", "{\"a\":1}"));
	CHECK(UNDO("{\"a\":1}", "[]", "[]", "{\"a\":1}"));
	/* arrays: concrete indexes, last change undone first */
	CHECK(UNDO("{\"l\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/l/-\",\"value\":3},{\"op\":\"remove\",\"path\":\"/l/0\"}]",
			   "[{\"op\":\"add\",\"path\":\"/l/0\",\"value\":1},{\"op\":\"remove\",\"path\":\"/l/2\"}]",
			   "{\"l\":[1,2]}"));
	/* the root */
	CHECK(UNDO("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"z\":0}}]",
			   "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"a\":1}}]", "{\"a\":1}"));
	CHECK(UNDO("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":{}}]",
			   "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"a\":1}}]", "{\"a\":1}"));

	/* empty containers marked as scaffolding stay; what went into them goes */
	CHECK(UNDO("{}", "[{\"op\":\"add\",\"path\":\"/modules\",\"value\":{},\"scaffold\":true},"
			   "{\"op\":\"add\",\"path\":\"/modules/m1\",\"value\":{\"name\":\"x\"}}]",
			   "[{\"op\":\"remove\",\"path\":\"/modules/m1\"}]", "{\"modules\":{}}"));
	CHECK(UNDO("{\"p\":{}}", "[{\"op\":\"add\",\"path\":\"/p/roles\",\"value\":[],\"scaffold\":true},"
			   "{\"op\":\"add\",\"path\":\"/p/roles/-\",\"value\":1}]",
			   "[{\"op\":\"remove\",\"path\":\"/p/roles/0\"}]", "{\"p\":{\"roles\":[]}}"));
	CHECK(UNDO("{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{},\"scaffold\":true},"
			   "{\"op\":\"add\",\"path\":\"/a/b\",\"value\":[],\"scaffold\":true}]",
			   "[]", "{\"a\":{\"b\":[]}}"));
	/* unmarked, an empty value is content like any other: undone */
	CHECK(UNDO("{}", "[{\"op\":\"add\",\"path\":\"/modules\",\"value\":{}},"
			   "{\"op\":\"add\",\"path\":\"/modules/m1\",\"value\":{\"name\":\"x\"}}]",
			   "[{\"op\":\"remove\",\"path\":\"/modules/m1\"},{\"op\":\"remove\",\"path\":\"/modules\"}]",
			   "{}"));
	CHECK(UNDO("{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{}},{\"op\":\"remove\",\"path\":\"/a\"}]",
			   "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{}},{\"op\":\"remove\",\"path\":\"/a\"}]", "{}"));
	CHECK(UNDO("{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{\"x\":{}}}]",
			   "[{\"op\":\"remove\",\"path\":\"/a\"}]", "{}"));
	CHECK(UNDO("{\"m\":{}}", "[{\"op\":\"add\",\"path\":\"/m/a\",\"value\":[[]]}]",
			   "[{\"op\":\"remove\",\"path\":\"/m/a\"}]", "{\"m\":{}}"));

	/* the effect that makes sure containers exist, and a later state in
	 * which another change filled them */
	{
		EsJson	   *state = J("{}");
		EsJson	   *before = J("{}");
		EsJson	   *eff = J(playbook_effect("module_add"));
		EsJson	   *ev = make_event("{\"moduleId\":\"m1\",\"module\":{\"t\":1},\"position\":{\"x\":1}}", "null");
		EsJson	   *ev2 = make_event("{\"moduleId\":\"m2\",\"module\":{\"t\":2},\"position\":{\"x\":2}}", "null");
		EsJson	   *patch = NULL;
		EsJson	   *reads = NULL;
		EsJson	   *undo = NULL;
		EsJson	   *doc;

		CHECK(es_effect_apply_trace(state, eff, ev, &patch, &reads, &err) == ES_ENGINE_OK);
		CHECK(es_undo_patch(before, patch, &undo, &err) == ES_ENGINE_OK);
		CHECK(same_text(__LINE__, "undo", undo,
						"[{\"op\":\"remove\",\"path\":\"/modules/m1/createdBy\"},"
						"{\"op\":\"remove\",\"path\":\"/modules/m1/position\"},"
						"{\"op\":\"remove\",\"path\":\"/modules/m1\"}]"));
		doc = es_json_copy(state);
		CHECK(es_patch_apply(doc, undo, &err) == ES_ENGINE_OK);
		CHECK(same_text(__LINE__, "state", doc, "{\"modules\":{},\"links\":{}}"));
		es_json_free(doc);
		/* module m2 added since: the undo leaves it, and /modules */
		CHECK(es_effect_apply(state, eff, ev2, &err) == ES_ENGINE_OK);
		CHECK(es_patch_apply(state, undo, &err) == ES_ENGINE_OK);
		CHECK(same_text(__LINE__, "state", state,
						"{\"modules\":{\"m2\":{\"t\":2,\"position\":{\"x\":2},\"createdBy\":\"alice\"}},\"links\":{}}"));
		es_json_free(state);
		es_json_free(before);
		es_json_free(eff);
		es_json_free(ev);
		es_json_free(ev2);
		es_json_free(patch);
		es_json_free(reads);
		es_json_free(undo);
	}

	/* a patch that is invalid or does not apply: no undo, doc_before intact */
	{
		EsJson	   *doc = J("{\"a\":1}");
		EsJson	   *p = J("[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},{\"op\":\"remove\",\"path\":\"/zz\"}]");
		EsJson	   *undo = NOT_NULL;
		EsEngineStatus st;

		CHECK(es_undo_patch(doc, p, &undo, &err) == ES_ENGINE_REJECTED);
		CHECK(undo == NULL);
		CHECK(err.step == 1);
		CHECK(strcmp(err.path, "/zz") == 0);
		CHECK(strstr(err.message, "path \"/zz\" does not exist") != NULL);
		CHECK(same_text(__LINE__, "doc_before", doc, "{\"a\":1}"));
		es_json_free(p);
		p = J("[{\"op\":\"merge\",\"path\":\"\",\"value\":{}}]");
		undo = NOT_NULL;
		CHECK(es_undo_patch(doc, p, &undo, &err) == ES_ENGINE_INVALID);
		CHECK(undo == NULL);
		CHECK(strstr(err.message, "unrecognized patch operation \"merge\"") != NULL);
		es_json_free(p);
		p = J("[{\"op\":\"add\",\"path\":\"/b\"}]");
		CHECK(es_undo_patch(doc, p, &undo, &err) == ES_ENGINE_INVALID);
		CHECK(strstr(err.message, "missing member \"value\"") != NULL);
		es_json_free(p);
		p = J("[{\"op\":\"remove\",\"path\":\"b\"}]");
		CHECK(es_undo_patch(doc, p, &undo, &err) == ES_ENGINE_INVALID);
		CHECK(strstr(err.message, "must start with \"/\"") != NULL);
		es_json_free(p);
		p = J("{\"op\":\"add\",\"path\":\"/b\",\"value\":1}");
		undo = NOT_NULL;
		CHECK(es_undo_patch(doc, p, &undo, NULL) == ES_ENGINE_INVALID);
		CHECK(undo == NULL);
		undo = NOT_NULL;
		st = es_undo_patch(NULL, p, &undo, &err);
		CHECK(st == ES_ENGINE_INVALID && undo == NULL);
		CHECK(es_undo_patch(doc, NULL, &undo, &err) == ES_ENGINE_INVALID);
		CHECK(same_text(__LINE__, "doc_before", doc, "{\"a\":1}"));
		es_json_free(p);
		es_json_free(doc);
	}
}

/*
 * undo_restores_at: es_undo_patch of patch on before succeeds, and applying
 * the undo after the patch gives one or other (by value).
 */
static bool
undo_restores_at(int line, const char *before, const char *patch,
				 const char *one, const char *other)
{
	EsJson	   *doc = J(before);
	EsJson	   *p = J(patch);
	EsJson	   *want1 = J(one);
	EsJson	   *want2 = J(other);
	EsJson	   *undo = NULL;
	EsEngineError err;
	bool		ok = true;

	if (es_undo_patch(doc, p, &undo, &err) != ES_ENGINE_OK)
	{
		printf("    line %d: es_undo_patch failed: %s\n", line, err.message);
		ok = false;
	}
	else if (es_patch_apply(doc, p, &err) != ES_ENGINE_OK ||
			 es_patch_apply(doc, undo, &err) != ES_ENGINE_OK)
	{
		printf("    line %d: the patch or its undo does not apply: %s\n", line,
			   err.message);
		ok = false;
	}
	else if (!es_json_equal(doc, want1) && !es_json_equal(doc, want2))
	{
		char	   *u = dump(undo);
		char	   *d = dump(doc);

		printf("    line %d: before %s, patch %s\n      undo %s\n"
			   "      gives %s after the patch, expected %s or %s\n",
			   line, before, patch, u, d, one, other);
		free(u);
		free(d);
		ok = false;
	}
	es_json_free(doc);
	es_json_free(p);
	es_json_free(want1);
	es_json_free(want2);
	es_json_free(undo);
	return ok;
}

/*
 * test_undo_patch_reused_paths: a path that the patch uses twice, once to
 * add an empty container and once for something else, must not keep that
 * something else: the undo applied after the patch gives the state before
 * but for empty containers the patch added.
 */
static void
test_undo_patch_reused_paths(void)
{
	/* an array index: the 5 must go, whatever becomes of the [] */
	bool		arr_ok = undo_restores_at(__LINE__, "{\"l\":[]}",
										  "[{\"op\":\"add\",\"path\":\"/l/0\",\"value\":[]},"
										  "{\"op\":\"add\",\"path\":\"/l/0\",\"value\":5}]",
										  "{\"l\":[[]]}", "{\"l\":[]}");

	/* a member added as 5, removed, and added again empty */
	bool		obj_ok = undo_restores_at(__LINE__, "{}",
										  "[{\"op\":\"add\",\"path\":\"/x\",\"value\":5},"
										  "{\"op\":\"remove\",\"path\":\"/x\"},"
										  "{\"op\":\"add\",\"path\":\"/x\",\"value\":{}}]",
										  "{\"x\":{}}", "{}");

	CHECK(arr_ok);
	CHECK(obj_ok);
}

/*
 * undo_oom_run: es_undo_patch under every budget until the outcome is
 * stable: the undo expected, or ES_ENGINE_NOMEM with no undo.
 */
static bool
undo_oom_run(const char *before, const char *patch, bool every, int *nomem)
{
	EsJson	   *doc = J(before);
	EsJson	   *orig = J(before);
	EsJson	   *p = J(patch);
	EsJson	   *ref = NULL;
	EsEngineError err;
	long		budget;
	int			stable = 0;
	bool		ok = es_undo_patch(doc, p, &ref, &err) == ES_ENGINE_OK;

	for (budget = 0; ok && stable < 10 && budget < 5000; budget++)
	{
		EsJson	   *undo = NOT_NULL;
		EsEngineStatus st;

		oom_arm(every, budget);
		st = es_undo_patch(doc, p, &undo, &err);
		oom_disarm();
		if (st == ES_ENGINE_NOMEM)
		{
			(*nomem)++;
			stable = 0;
			if (undo != NULL || strcmp(err.message, "out of memory") != 0)
			{
				printf("    budget %ld: out of memory: \"%s\", undo %s\n", budget,
					   err.message, undo ? "set" : "NULL");
				ok = false;
			}
		}
		else if (st != ES_ENGINE_OK || !es_json_equal(undo, ref) || !unshared(undo))
		{
			printf("    budget %ld: status %d (%s), not the undo without failures\n",
				   budget, st, st ? err.message : "");
			ok = false;
		}
		else
			stable++;
		if (!es_json_equal(doc, orig))
		{
			printf("    budget %ld: doc_before changed\n", budget);
			ok = false;
		}
		if (undo != NOT_NULL)
			es_json_free(undo);
	}
	es_json_free(doc);
	es_json_free(orig);
	es_json_free(p);
	es_json_free(ref);
	return ok && stable >= 10;
}

static void
test_undo_patch_out_of_memory(void)
{
	const char *before = "{\"a\":[1,2.5,\"s\",{\"b\":null,\"c\":[true,false]}],\"d\":{\"e\":\"f\"}}";
	/* at most 8 changes: the logs never grow (see the long variant) */
	const char *patch = "[{\"op\":\"add\",\"path\":\"/modules\",\"value\":{}},"
		"{\"op\":\"add\",\"path\":\"/modules/m1\",\"value\":{\"y\":[1,2]}},"
		"{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/d/a\"},"
		"{\"op\":\"replace\",\"path\":\"/d/e\",\"value\":[\"g\"]},"
		"{\"op\":\"copy\",\"from\":\"/d\",\"path\":\"/t\"},"
		"{\"op\":\"test\",\"path\":\"/d/e/0\",\"value\":\"g\"},"
		"{\"op\":\"remove\",\"path\":\"/t/a/3\"}]";
	int			nomem_docs = 0;
	int			nomem_all = 0;

	CHECK(undo_oom_run(before, patch, false, &nomem_docs));
	if (HAVE_SCRATCH_OOM)
		CHECK(undo_oom_run(before, patch, true, &nomem_all));
	printf("    out of memory: %d runs (documents), %d runs (every allocation)\n",
		   nomem_docs, nomem_all);
	CHECK(nomem_docs > 20);
	CHECK(!HAVE_SCRATCH_OOM || nomem_all > nomem_docs);
}

/*
 * undo_patch_out_of_memory_long: as above, with more changes than the
 * first allocation of a log array holds (8), so that appending to a log
 * can fail too.
 */
static void
undo_patch_out_of_memory_long(void)
{
	const char *before = "{\"a\":[1,2.5,\"s\",{\"b\":null,\"c\":[true,false]}],\"d\":{\"e\":\"f\"}}";
	const char *patch = "[{\"op\":\"add\",\"path\":\"/modules\",\"value\":{}},"
		"{\"op\":\"add\",\"path\":\"/modules/m1\",\"value\":{\"y\":[1,2]}},"
		"{\"op\":\"add\",\"path\":\"/links\",\"value\":[]},"
		"{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/d/a\"},"
		"{\"op\":\"replace\",\"path\":\"/d/e\",\"value\":[\"g\"]},"
		"{\"op\":\"copy\",\"from\":\"/d\",\"path\":\"/t\"},"
		"{\"op\":\"remove\",\"path\":\"/t/a/3\"},"
		"{\"op\":\"add\",\"path\":\"/d/a/-\",\"value\":{}},"
		"{\"op\":\"test\",\"path\":\"/d/e/0\",\"value\":\"g\"},"
		"{\"op\":\"add\",\"path\":\"/d/z\",\"value\":0},"
		"{\"op\":\"add\",\"path\":\"/d/y\",\"value\":[0]},"
		"{\"op\":\"remove\",\"path\":\"/d/z\"}]";
	int			nomem_docs = 0;
	int			nomem_all = 0;

	CHECK(undo_oom_run(before, patch, false, &nomem_docs));
	if (HAVE_SCRATCH_OOM)
		CHECK(undo_oom_run(before, patch, true, &nomem_all));
	printf("    out of memory: %d runs (documents), %d runs (every allocation)\n",
		   nomem_docs, nomem_all);
	CHECK(nomem_docs > 20);
}

/*
 * test_undo_patch_out_of_memory_long: in a child process, since a memory
 * error aborts it.
 */
static void
test_undo_patch_out_of_memory_long(void)
{
	CHECK(in_child(undo_patch_out_of_memory_long));
}

/*
 * conflict_at: es_patch_conflict(undo, later, reads) gives want; for a
 * rejection, err.path is path and the message contains msg; for
 * ES_ENGINE_INVALID the message contains msg; for ES_ENGINE_OK err is left
 * alone.  A NULL err gives the same status.
 */
static bool
conflict_at(int line, const char *undo, const char *later, const char *reads,
			EsEngineStatus want, const char *path, const char *msg)
{
	EsJson	   *u = J(undo);
	EsJson	   *l = J(later);
	EsJson	   *r = reads ? J(reads) : NULL;
	EsEngineError err;
	EsEngineStatus st;
	EsEngineStatus st2;
	bool		ok = true;

	strcpy(err.path, "untouched");
	strcpy(err.message, "untouched");
	st = es_patch_conflict(u, l, r, &err);
	st2 = es_patch_conflict(u, l, r, NULL);
	if (st != want)
	{
		printf("    line %d: status %d (path \"%s\": %s), expected %d\n", line,
			   st, err.path, err.message, want);
		ok = false;
	}
	else if (st == ES_ENGINE_OK &&
			 (strcmp(err.path, "untouched") != 0 || strcmp(err.message, "untouched") != 0))
	{
		printf("    line %d: no conflict, but err was changed\n", line);
		ok = false;
	}
	else if (st != ES_ENGINE_OK &&
			 ((st == ES_ENGINE_REJECTED && strcmp(err.path, path) != 0) ||
			  strstr(err.message, msg) == NULL))
	{
		printf("    line %d: path \"%s\": %s\n      expected path \"%s\": ...%s...\n",
			   line, err.path, err.message, path, msg);
		ok = false;
	}
	if (st2 != st)
	{
		printf("    line %d: status %d with err, %d without\n", line, st, st2);
		ok = false;
	}
	es_json_free(u);
	es_json_free(l);
	es_json_free(r);
	return ok;
}

#define CONFLICT(u, l, r, p, m) conflict_at(__LINE__, u, l, r, ES_ENGINE_REJECTED, p, m)
#define NO_CONFLICT(u, l, r) conflict_at(__LINE__, u, l, r, ES_ENGINE_OK, "", "")
#define CONFLICT_INVALID(u, l, r, m) conflict_at(__LINE__, u, l, r, ES_ENGINE_INVALID, "", m)

/* one-op patches and reads, to keep the cases short */
#define OP(op, path) "[{\"op\":\"" op "\",\"path\":\"" path "\"}]"
#define OPV(op, path) "[{\"op\":\"" op "\",\"path\":\"" path "\",\"value\":1}]"
#define OPF(op, from, path) "[{\"op\":\"" op "\",\"from\":\"" from "\",\"path\":\"" path "\"}]"

static void
test_patch_conflict(void)
{
	/* the same path, an ancestor, a descendant: with the later path */
	CHECK(CONFLICT(OPV("replace", "/modules/m1/position"), OPV("replace", "/modules/m1/position"), NULL,
				   "/modules/m1/position",
				   "it changed \"/modules/m1/position\", which the undo changes at \"/modules/m1/position\""));
	CHECK(CONFLICT(OP("remove", "/modules/m1/position"), OP("remove", "/modules/m1"), NULL,
				   "/modules/m1",
				   "it changed \"/modules/m1\", which the undo changes at \"/modules/m1/position\""));
	CHECK(CONFLICT(OP("remove", "/modules/m1"), OPV("add", "/modules/m1/size"), NULL,
				   "/modules/m1/size",
				   "it changed \"/modules/m1/size\", which the undo changes at \"/modules/m1\""));
	CHECK(CONFLICT(OPV("add", "/modules/m1"), OPV("add", "/modules/m1"), "[]",
				   "/modules/m1", "it changed \"/modules/m1\""));
	/* the first later change that conflicts, with any change of the undo */
	CHECK(CONFLICT("[{\"op\":\"remove\",\"path\":\"/links/l1\"},{\"op\":\"remove\",\"path\":\"/modules/m1\"}]",
				   "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},"
				   "{\"op\":\"replace\",\"path\":\"/modules/m1/x\",\"value\":2},"
				   "{\"op\":\"remove\",\"path\":\"/links/l1\"}]", NULL,
				   "/modules/m1/x", "which the undo changes at \"/modules/m1\""));
	/* siblings, names that share a prefix, unrelated branches */
	CHECK(NO_CONFLICT(OP("remove", "/modules/m1"),
					  "[{\"op\":\"add\",\"path\":\"/modules/m2\",\"value\":{}},"
					  "{\"op\":\"replace\",\"path\":\"/modules/m10\",\"value\":1},"
					  "{\"op\":\"add\",\"path\":\"/modules/m\",\"value\":1},"
					  "{\"op\":\"remove\",\"path\":\"/links/l1\"},"
					  "{\"op\":\"test\",\"path\":\"/modules/m2\",\"value\":{}}]", NULL));
	CHECK(NO_CONFLICT(OP("remove", "/modules/m1/position"), OPV("replace", "/modules/m1/size"), NULL));
	CHECK(NO_CONFLICT("[]", OPV("replace", "/a"), "[{\"op\":\"exists\",\"path\":\"/a\"}]"));
	CHECK(NO_CONFLICT(OP("remove", "/a"), "[]", "[]"));
	CHECK(NO_CONFLICT("[]", "[]", NULL));

	/* reads: only a write of the undo at or above what was read */
	CHECK(NO_CONFLICT(OPV("replace", "/modules/m1/position"), "[]",
					  "[{\"op\":\"exists\",\"path\":\"/modules/m1\"}]"));
	CHECK(NO_CONFLICT(OP("remove", "/links/l1"), "[]", "[{\"op\":\"exists\",\"path\":\"/links\"}]"));
	CHECK(NO_CONFLICT(OP("remove", "/links/l1"), "[]", "[{\"op\":\"absent\",\"path\":\"/links/l2\"}]"));
	CHECK(CONFLICT(OP("remove", "/modules/m1"), "[]",
				   "[{\"op\":\"exists\",\"path\":\"/modules/m2\"},{\"op\":\"exists\",\"path\":\"/modules/m1/x\"}]",
				   "/modules/m1/x",
				   "it relied on \"/modules/m1/x\", which the undo changes at \"/modules/m1\""));
	CHECK(CONFLICT(OP("remove", "/modules/m1"), "[]", "[{\"op\":\"exists\",\"path\":\"/modules/m1\"}]",
				   "/modules/m1", "it relied on \"/modules/m1\""));
	CHECK(CONFLICT(OPV("add", "/modules/m2"), "[]", "[{\"op\":\"absent\",\"path\":\"/modules/m2\"}]",
				   "/modules/m2", "it relied on \"/modules/m2\", which the undo changes at \"/modules/m2\""));
	/* a change of the later patch is found before a read */
	CHECK(CONFLICT(OP("remove", "/modules/m1"), OPV("add", "/modules/m1/z"),
				   "[{\"op\":\"exists\",\"path\":\"/modules/m1\"}]",
				   "/modules/m1/z", "it changed \"/modules/m1/z\""));
	/* a test of the later patch reads both ways */
	CHECK(CONFLICT(OPV("replace", "/modules/m1/position"), OPV("test", "/modules/m1"), NULL,
				   "/modules/m1",
				   "it relied on \"/modules/m1\", which the undo changes at \"/modules/m1/position\""));
	CHECK(CONFLICT(OP("remove", "/modules/m1"), OPV("test", "/modules/m1/x"), NULL,
				   "/modules/m1/x", "it relied on \"/modules/m1/x\""));
	CHECK(NO_CONFLICT(OP("remove", "/modules/m1"), OPV("test", "/modules/m2"), NULL));
	/* "from" of a later move or copy */
	CHECK(CONFLICT(OPV("replace", "/a/x"), OPF("move", "/a", "/b"), NULL,
				   "/a", "it changed \"/a\", which the undo changes at \"/a/x\""));
	CHECK(CONFLICT(OPV("replace", "/a/x"), OPF("copy", "/a", "/b"), NULL,
				   "/a", "it relied on \"/a\", which the undo changes at \"/a/x\""));
	CHECK(CONFLICT(OPV("replace", "/a/x"), OPF("move", "/z", "/a/x/y"), NULL,
				   "/a/x/y", "it changed \"/a/x/y\""));
	CHECK(NO_CONFLICT(OPV("replace", "/a/x"), OPF("copy", "/a/y", "/b"), NULL));

	/* a path through an array stands for the whole array */
	CHECK(CONFLICT(OP("remove", "/a/0"), OPV("replace", "/a/3"), NULL,
				   "/a/3", "it changed \"/a/3\", which the undo changes at \"/a/0\""));
	CHECK(CONFLICT(OP("remove", "/a/3"), OPV("replace", "/a/0"), NULL, "/a/0", "/a/3"));
	CHECK(CONFLICT(OP("remove", "/a/0/x"), OPV("add", "/a/1/y"), NULL, "/a/1/y", "/a/0/x"));
	CHECK(CONFLICT(OPV("replace", "/a/0"), "[]", "[{\"op\":\"exists\",\"path\":\"/a/2\"}]",
				   "/a/2", "it relied on \"/a/2\""));
	CHECK(CONFLICT(OPV("add", "/p/roles/0"), "[]", "[{\"op\":\"absent\",\"path\":\"/p/roles/4/name\"}]",
				   "/p/roles/4/name", "it relied on"));
	CHECK(NO_CONFLICT(OP("remove", "/a/0"), OPV("add", "/b/0"), NULL));
	CHECK(NO_CONFLICT(OP("remove", "/a/0"), "[]", "[{\"op\":\"exists\",\"path\":\"/b/0\"}]"));
	/* a member named like an index counts as one: cautious */
	CHECK(CONFLICT(OP("remove", "/modules/5/x"), OPV("add", "/modules/5/y"), NULL, "/modules/5/y", "/modules/5/x"));
	CHECK(CONFLICT(OP("remove", "/modules/5"), OPV("add", "/modules/6"), NULL, "/modules/6", "/modules/5"));
	CHECK(NO_CONFLICT(OP("remove", "/modules/m5"), OPV("add", "/modules/m6"), NULL));
	/* "-" */
	CHECK(CONFLICT(OP("remove", "/a/2"), OPV("add", "/a/-"), NULL,
				   "/a/-", "it changed \"/a/-\", which the undo changes at \"/a/2\""));
	CHECK(CONFLICT(OPV("add", "/a/-"), OP("remove", "/a/0/k"), NULL, "/a/0/k", "/a/-"));
	CHECK(NO_CONFLICT(OP("remove", "/a/x"), OPV("add", "/b/-"), NULL));

	/* tokens are compared unescaped, paths reported as written */
	CHECK(NO_CONFLICT(OP("remove", "/a~1b"), OPV("add", "/a/b"), NULL));
	CHECK(NO_CONFLICT(OP("remove", "/a/b"), OPV("add", "/a~1b/c"), NULL));
	CHECK(NO_CONFLICT(OP("remove", "/a"), OPV("add", "/a~1b"), NULL));
	CHECK(NO_CONFLICT(OP("remove", "/m~0n"), OPV("add", "/m~1n"), NULL));
	CHECK(NO_CONFLICT(OP("remove", "/m~01"), OPV("add", "/m~1"), NULL));
	CHECK(CONFLICT(OP("remove", "/a~1b"), OPV("add", "/a~1b/c"), NULL,
				   "/a~1b/c", "it changed \"/a~1b/c\", which the undo changes at \"/a~1b\""));
	CHECK(CONFLICT(OP("remove", "/m~0n/x"), OPV("replace", "/m~0n/x"), NULL, "/m~0n/x", "/m~0n/x"));
	CHECK(CONFLICT(OP("remove", "/a~1b"), "[]", "[{\"op\":\"exists\",\"path\":\"/a~1b/~0\"}]",
				   "/a~1b/~0", "it relied on \"/a~1b/~0\""));

	/* the root "" is above everything */
	CHECK(CONFLICT("[{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]", OPV("add", "/x"), NULL,
				   "/x", "it changed \"/x\", which the undo changes at \"\""));
	CHECK(CONFLICT(OP("remove", "/x/y"), "[{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]", NULL,
				   "", "it changed \"\", which the undo changes at \"/x/y\""));
	CHECK(CONFLICT("[{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]", "[]",
				   "[{\"op\":\"absent\",\"path\":\"/x\"}]", "/x", "it relied on \"/x\""));
	CHECK(CONFLICT("[{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]", "[]",
				   "[{\"op\":\"exists\",\"path\":\"\"}]", "", "it relied on \"\""));
	CHECK(CONFLICT(OP("remove", "/x"), OPV("test", ""), NULL, "", "it relied on \"\""));
	/* but the root always exists: a read of it relies on nothing below */
	CHECK(NO_CONFLICT(OP("remove", "/x"), "[]", "[{\"op\":\"exists\",\"path\":\"\"}]"));
	/* the empty key is not the root */
	CHECK(NO_CONFLICT(OP("remove", "/"), OPV("add", "/x"), NULL));
	CHECK(CONFLICT(OP("remove", "/"), OPV("add", "//x"), NULL, "//x", "which the undo changes at \"/\""));

	/* malformed input */
	CHECK(CONFLICT_INVALID("{}", "[]", NULL, "a patch must be an array"));
	CHECK(CONFLICT_INVALID("[]", "{}", NULL, "a patch must be an array"));
	CHECK(CONFLICT_INVALID("[]", "[]", "{}", "a patch must be an array"));
	CHECK(CONFLICT_INVALID("[]", "[]", "\"x\"", "a patch must be an array"));
	CHECK(CONFLICT_INVALID("[1]", "[]", NULL, "element 0 of the patch is not an operation"));
	CHECK(CONFLICT_INVALID("[]", "[{\"op\":\"remove\",\"path\":\"/a\"},{\"path\":\"/a\"}]", NULL,
						   "element 1 of the patch is not an operation"));
	CHECK(CONFLICT_INVALID("[]", "[{\"op\":\"add\",\"value\":1}]", NULL, "is not an operation"));
	CHECK(CONFLICT_INVALID("[]", "[{\"op\":\"add\",\"path\":5,\"value\":1}]", NULL, "is not an operation"));
	CHECK(CONFLICT_INVALID("[]", "[]", "[{\"op\":\"exists\"}]", "is not an operation"));
	CHECK(CONFLICT_INVALID("[]", "[]", "[[]]", "is not an operation"));
	CHECK(CONFLICT_INVALID(OP("remove", "a"), "[]", NULL, "invalid JSON pointer \"a\": must start with \"/\""));
	CHECK(CONFLICT_INVALID("[]", OPV("add", "/a~2"), NULL, "invalid escape \"~2\""));
	CHECK(CONFLICT_INVALID("[]", OPF("move", "/a~", "/b"), NULL, "invalid escape \"~\" at the end"));
	CHECK(CONFLICT_INVALID(OPF("copy", "x", "/b"), "[]", NULL, "must start with \"/\""));
	CHECK(CONFLICT_INVALID("[]", "[]", "[{\"op\":\"absent\",\"path\":\"/x~\"}]", "invalid escape"));
	/* malformed wins over a conflict found before it */
	CHECK(CONFLICT_INVALID(OP("remove", "/a"), "[{\"op\":\"remove\",\"path\":\"/a\"},{\"op\":\"remove\",\"path\":\"a\"}]",
						   NULL, "must start with \"/\""));
	/* NULL undo or patch */
	{
		EsJson	   *e = J("[]");

		CHECK(es_patch_conflict(NULL, e, NULL, NULL) == ES_ENGINE_INVALID);
		CHECK(es_patch_conflict(e, NULL, NULL, NULL) == ES_ENGINE_INVALID);
		es_json_free(e);
	}
}

/*
 * test_patch_conflict_from_undo: the undo of what an effect did against
 * what later effects did, as an undo in the extension does.
 */
static void
test_patch_conflict_from_undo(void)
{
	EsJson	   *state = J("{}");
	EsJson	   *before;
	EsJson	   *add = J(playbook_effect("module_add"));
	EsJson	   *move = J(playbook_effect("module_move"));
	EsJson	   *resize = J(playbook_effect("module_resize"));
	EsJson	   *link = J(playbook_effect("link_add"));
	EsJson	   *ev;
	EsJson	   *patch = NULL;
	EsJson	   *reads = NULL;
	EsJson	   *undo = NULL;
	EsEngineError err;

	ev = make_event("{\"moduleId\":\"m1\",\"module\":{},\"position\":{\"x\":1}}", "null");
	CHECK(es_effect_apply(state, add, ev, &err) == ES_ENGINE_OK);
	es_json_free(ev);
	ev = make_event("{\"moduleId\":\"m2\",\"module\":{},\"position\":{\"x\":2}}", "null");
	CHECK(es_effect_apply(state, add, ev, &err) == ES_ENGINE_OK);
	es_json_free(ev);

	/* the event to undo: module_move of m1 */
	before = es_json_copy(state);
	ev = make_event("{\"moduleId\":\"m1\",\"position\":{\"x\":9}}", "null");
	CHECK(es_effect_apply_trace(state, move, ev, &patch, &reads, &err) == ES_ENGINE_OK);
	es_json_free(ev);
	CHECK(same_text(__LINE__, "reads", reads, "[]"));
	CHECK(es_undo_patch(before, patch, &undo, &err) == ES_ENGINE_OK);
	CHECK(same_text(__LINE__, "undo", undo,
					"[{\"op\":\"replace\",\"path\":\"/modules/m1/position\",\"value\":{\"x\":1}}]"));
	es_json_free(patch);
	es_json_free(reads);

	/* a resize of m1 relied on m1 and changed /modules/m1/size: fine */
	ev = make_event("{\"moduleId\":\"m1\",\"width\":1,\"height\":2}", "null");
	CHECK(es_effect_apply_trace(state, resize, ev, &patch, &reads, &err) == ES_ENGINE_OK);
	es_json_free(ev);
	CHECK(same_text(__LINE__, "reads", reads, "[{\"op\":\"exists\",\"path\":\"/modules/m1\"}]"));
	CHECK(es_patch_conflict(undo, patch, reads, &err) == ES_ENGINE_OK);
	es_json_free(patch);
	es_json_free(reads);
	/* a link from m1 to m2 relied on both: fine */
	ev = make_event("{\"linkId\":\"l1\",\"link\":{\"source\":\"m1\",\"target\":\"m2\"}}", "null");
	CHECK(es_effect_apply_trace(state, link, ev, &patch, &reads, &err) == ES_ENGINE_OK);
	es_json_free(ev);
	CHECK(es_patch_conflict(undo, patch, reads, &err) == ES_ENGINE_OK);
	es_json_free(patch);
	es_json_free(reads);
	/* another move of m1: a conflict */
	ev = make_event("{\"moduleId\":\"m1\",\"position\":{\"x\":5}}", "null");
	CHECK(es_effect_apply_trace(state, move, ev, &patch, &reads, &err) == ES_ENGINE_OK);
	es_json_free(ev);
	CHECK(es_patch_conflict(undo, patch, reads, &err) == ES_ENGINE_REJECTED);
	CHECK(strcmp(err.path, "/modules/m1/position") == 0);
	CHECK(strcmp(err.message, "it changed \"/modules/m1/position\", which the undo changes at \"/modules/m1/position\"") == 0);
	es_json_free(patch);
	es_json_free(reads);
	es_json_free(undo);
	es_json_free(before);

	/* undoing the add of m2: the link relied on m2 */
	before = J("{\"modules\":{\"m1\":{}},\"links\":{}}");
	es_json_free(state);
	state = es_json_copy(before);
	ev = make_event("{\"moduleId\":\"m2\",\"module\":{\"t\":1},\"position\":{\"x\":2}}", "null");
	CHECK(es_effect_apply_trace(state, add, ev, &patch, &reads, &err) == ES_ENGINE_OK);
	es_json_free(ev);
	CHECK(es_undo_patch(before, patch, &undo, &err) == ES_ENGINE_OK);
	es_json_free(patch);
	es_json_free(reads);
	ev = make_event("{\"linkId\":\"l1\",\"link\":{\"source\":\"m1\",\"target\":\"m2\"}}", "null");
	CHECK(es_effect_apply_trace(state, link, ev, &patch, &reads, &err) == ES_ENGINE_OK);
	es_json_free(ev);
	CHECK(es_patch_conflict(undo, patch, reads, &err) == ES_ENGINE_REJECTED);
	CHECK(strcmp(err.path, "/modules/m2") == 0);
	CHECK(strstr(err.message, "it relied on \"/modules/m2\"") != NULL);
	/* without its reads, the link changed nothing the undo changes */
	CHECK(es_patch_conflict(undo, patch, NULL, &err) == ES_ENGINE_OK);
	es_json_free(patch);
	es_json_free(reads);
	es_json_free(undo);
	es_json_free(before);
	es_json_free(state);
	es_json_free(add);
	es_json_free(move);
	es_json_free(resize);
	es_json_free(link);
}

/*
 * reads_with_from: es_patch_conflict with reads that carry a "from"
 * (malformed, but any document may be given).
 */
static void
reads_with_from(void)
{
	EsJson	   *undo = J(OP("remove", "/q"));
	EsJson	   *later = J("[]");
	EsJson	   *reads = J("[{\"op\":\"exists\",\"path\":\"/a\",\"from\":\"/b\"},"
						  "{\"op\":\"exists\",\"path\":\"/c\",\"from\":\"/d\"},"
						  "{\"op\":\"exists\",\"path\":\"/e\",\"from\":\"/f\"},"
						  "{\"op\":\"exists\",\"path\":\"/g\",\"from\":\"/h\"}]");
	EsEngineError err;
	EsEngineStatus st = es_patch_conflict(undo, later, reads, &err);

	es_json_free(undo);
	es_json_free(later);
	es_json_free(reads);
	/* a read has no "from": invalid, or the member ignored */
	CHECK(st == ES_ENGINE_INVALID || st == ES_ENGINE_OK);
}

/*
 * test_patch_conflict_reads_with_from: in a child process, since a memory
 * error aborts it.
 */
static void
test_patch_conflict_reads_with_from(void)
{
	CHECK(in_child(reads_with_from));
}

/*
 * test_patch_conflict_malformed_ops: a later patch whose op is not one of
 * RFC 6902, or whose move or copy has no string "from", is malformed.
 */
static void
test_patch_conflict_malformed_ops(void)
{
	bool		ok = true;

	ok &= CONFLICT_INVALID(OP("remove", "/a"), "[{\"op\":\"move\",\"from\":5,\"path\":\"/b\"}]", NULL, "");
	ok &= CONFLICT_INVALID(OP("remove", "/a"), "[{\"op\":\"move\",\"path\":\"/b\"}]", NULL, "");
	ok &= CONFLICT_INVALID(OP("remove", "/a"), "[{\"op\":\"copy\",\"from\":[\"/a\"],\"path\":\"/b\"}]", NULL, "");
	ok &= CONFLICT_INVALID(OP("remove", "/a"), "[{\"op\":\"frobnicate\",\"path\":\"/b\"}]", NULL, "");
	CHECK(ok);
}

/*
 * conflict_oom_run: es_patch_conflict under every budget until the outcome
 * is stable: want, or ES_ENGINE_NOMEM with "out of memory".
 */
static bool
conflict_oom_run(const char *undo, const char *later, const char *reads,
				 EsEngineStatus want, bool every, int *nomem)
{
	EsJson	   *u = J(undo);
	EsJson	   *l = J(later);
	EsJson	   *r = reads ? J(reads) : NULL;
	EsEngineError err;
	long		budget;
	int			stable = 0;
	bool		ok = es_patch_conflict(u, l, r, &err) == want;

	for (budget = 0; ok && stable < 10 && budget < 5000; budget++)
	{
		EsEngineStatus st;

		oom_arm(every, budget);
		st = es_patch_conflict(u, l, r, &err);
		oom_disarm();
		if (st == ES_ENGINE_NOMEM)
		{
			(*nomem)++;
			stable = 0;
			if (strcmp(err.message, "out of memory") != 0)
				ok = false;
		}
		else if (st != want)
		{
			printf("    budget %ld: status %d (%s), expected %d\n", budget, st,
				   err.message, want);
			ok = false;
		}
		else
			stable++;
	}
	es_json_free(u);
	es_json_free(l);
	es_json_free(r);
	return ok && stable >= 10;
}

static void
test_patch_conflict_out_of_memory(void)
{
	const char *undo = "[{\"op\":\"remove\",\"path\":\"/modules/m1/position\"},"
		"{\"op\":\"add\",\"path\":\"/links/l~1x\",\"value\":{\"a\":[1]}},"
		"{\"op\":\"move\",\"from\":\"/a/0\",\"path\":\"/b/c\"},"
		"{\"op\":\"replace\",\"path\":\"/modules/m9/size\",\"value\":1}]";
	const char *later = "[{\"op\":\"add\",\"path\":\"/modules/m2\",\"value\":{}},"
		"{\"op\":\"copy\",\"from\":\"/links/l2\",\"path\":\"/links/l3\"},"
		"{\"op\":\"test\",\"path\":\"/modules/m2\",\"value\":{}},"
		"{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/y\"}]";
	const char *reads = "[{\"op\":\"exists\",\"path\":\"/modules/m1\"},"
		"{\"op\":\"absent\",\"path\":\"/links/l3\"},"
		"{\"op\":\"exists\",\"path\":\"/modules/m9/size/w\"}]";
	const char *clean_reads = "[{\"op\":\"exists\",\"path\":\"/modules/m1\"},"
		"{\"op\":\"absent\",\"path\":\"/links/l3\"}]";
	int			nomem_docs = 0;
	int			nomem_all = 0;

	/* no document is made: failures of their allocator change nothing */
	CHECK(conflict_oom_run(undo, later, reads, ES_ENGINE_REJECTED, false, &nomem_docs));
	CHECK(conflict_oom_run(undo, later, clean_reads, ES_ENGINE_OK, false, &nomem_docs));
	CHECK(nomem_docs == 0);
	if (HAVE_SCRATCH_OOM)
	{
		CHECK(conflict_oom_run(undo, later, reads, ES_ENGINE_REJECTED, true, &nomem_all));
		CHECK(conflict_oom_run(undo, later, clean_reads, ES_ENGINE_OK, true, &nomem_all));
		CHECK(conflict_oom_run(undo, "[{\"op\":\"remove\",\"path\":\"/ok\"},{\"op\":\"remove\",\"path\":\"bad\"}]",
							   NULL, ES_ENGINE_INVALID, true, &nomem_all));
		printf("    out of memory: %d runs\n", nomem_all);
		CHECK(nomem_all > 10);
	}
}

static void
test_json_member(void)
{
	EsJson	   *doc = J("{\"a\":{\"b\":[1,{\"c\":null}]},\"\":0,\"x/y\":\"s\",\"n\":null}");
	EsJson	   *arr = J("[{\"a\":1}]");
	EsJson	   *str = J("\"a\"");
	const EsJson *a;
	const EsJson *b;
	EsJson	   *want;

	a = es_json_member(doc, "a");
	CHECK(a != NULL);
	CHECK(same_text(__LINE__, "member a", a, "{\"b\":[1,{\"c\":null}]}"));
	/* borrowed: the very node, every time */
	CHECK(es_json_member(doc, "a") == a);
	b = es_json_member(a, "b");
	CHECK(same_text(__LINE__, "member b", b, "[1,{\"c\":null}]"));
	/* names are names, not pointers */
	CHECK(es_json_member(doc, "x/y") != NULL);
	CHECK(es_json_member(doc, "/a") == NULL);
	CHECK(es_json_member(doc, "a/b") == NULL);
	want = J("0");
	CHECK(es_json_equal(es_json_member(doc, ""), want));
	es_json_free(want);
	/* a null member is there */
	want = J("null");
	CHECK(es_json_member(doc, "n") != NULL && es_json_equal(es_json_member(doc, "n"), want));
	es_json_free(want);
	/* missing, or not an object */
	CHECK(es_json_member(doc, "zz") == NULL);
	CHECK(es_json_member(doc, "A") == NULL);
	CHECK(es_json_member(b, "0") == NULL);
	CHECK(es_json_member(arr, "a") == NULL);
	CHECK(es_json_member(str, "a") == NULL);
	CHECK(es_json_member(NULL, "a") == NULL);
	/* the document is not changed */
	CHECK(same_text(__LINE__, "doc", doc, "{\"a\":{\"b\":[1,{\"c\":null}]},\"\":0,\"x/y\":\"s\",\"n\":null}"));
	CHECK(unshared(doc));
	es_json_free(doc);
	es_json_free(arr);
	es_json_free(str);
}

/*
 * main: runs every case; the last line is "N passed, N failed".
 */
int
main(void)
{
	RUN(test_parse_dump);
	RUN(test_parse_errors);
	RUN(test_equal_copy);
	RUN(test_op_add);
	RUN(test_op_remove);
	RUN(test_op_replace);
	RUN(test_op_move);
	RUN(test_op_copy);
	RUN(test_op_test);
	RUN(test_preconditions);
	RUN(test_pointer_escapes);
	RUN(test_templates);
	RUN(test_template_check);
	RUN(test_references);
	RUN(test_reference_check);
	RUN(test_remove_where);
	RUN(test_merge);
	RUN(test_effect_check);
	RUN(test_atomicity);
	RUN(test_error_truncation);
	RUN(test_depth_limits);
	RUN(test_patch_inverse);
	RUN(test_effect_resolve);
	RUN(test_schema);
	RUN(test_playbook);
	RUN(test_effect_check_schema);
	RUN(test_large_state);
	RUN(test_no_shared_nodes);
	RUN(test_out_of_memory);
	RUN(test_out_of_memory_entry_points);
	RUN(test_effect_apply_trace);
	RUN(test_effect_apply_trace_out_of_memory);
	RUN(test_effect_apply_trace_out_of_memory_long);
	RUN(test_undo_patch);
	RUN(test_undo_patch_reused_paths);
	RUN(test_undo_patch_out_of_memory);
	RUN(test_undo_patch_out_of_memory_long);
	RUN(test_patch_conflict);
	RUN(test_patch_conflict_from_undo);
	RUN(test_patch_conflict_reads_with_from);
	RUN(test_patch_conflict_malformed_ops);
	RUN(test_patch_conflict_out_of_memory);
	RUN(test_json_member);
	return harness_summary();
}
