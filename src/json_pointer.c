/*-------------------------------------------------------------------------
 *
 * json_pointer.c
 *	  RFC 6901 JSON Pointers: parsing, escaping and resolving.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/json_pointer.c
 *
 *-------------------------------------------------------------------------
 *
 * A pointer is parsed once into unescaped tokens, each remembering where it
 * ends in the text, so that a message can quote the exact prefix where
 * resolution stopped ("\"/modules/m1\" is a string, not an object or
 * array").  Resolution never recurses.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/*
 * es_ptr_parse: parses text as a JSON pointer into ptr, which refers to
 * text (text must outlive ptr).  Returns ES_ENGINE_INVALID, with the reason
 * in err, if text is not a valid pointer.  On success the caller frees ptr
 * with es_ptr_free.
 */
EsEngineStatus
es_ptr_parse(const char *text, EsPointer *ptr, EsEngineError *err)
{
	size_t		len = strlen(text);
	size_t		n = 0;
	size_t		i;
	char	   *out;
	int			t = -1;

	ptr->text = text;
	ptr->ntokens = 0;
	ptr->tok = NULL;
	ptr->mem = NULL;
	if (len == 0)
		return ES_ENGINE_OK;
	if (text[0] != '/')
		return es_error(err, ES_ENGINE_INVALID,
						"invalid JSON pointer \"%s\": must start with \"/\"",
						text);
	for (i = 0; i < len; i++)
	{
		if (text[i] == '/')
			n++;
		else if (text[i] == '~' && text[i + 1] != '0' && text[i + 1] != '1')
		{
			if (text[i + 1] == '\0')
				return es_error(err, ES_ENGINE_INVALID,
								"invalid escape \"~\" at the end of JSON pointer \"%s\"",
								text);
			if ((((unsigned char) text[i + 1]) & 0x80) != 0)
				return es_error(err, ES_ENGINE_INVALID,
								"invalid escape in JSON pointer \"%s\": \"~\" must be followed by \"0\" or \"1\"",
								text);
			return es_error(err, ES_ENGINE_INVALID,
							"invalid escape \"~%c\" in JSON pointer \"%s\"",
							text[i + 1], text);
		}
	}
	if (n > (size_t) INT_MAX ||
		n > (SIZE_MAX - len - 1) / sizeof(EsPtrToken))
		return es_error(err, ES_ENGINE_INVALID, "JSON pointer is too long");
	ptr->mem = malloc(n * sizeof(EsPtrToken) + len + 1);
	if (ptr->mem == NULL)
		return es_nomem(err);
	ptr->tok = (EsPtrToken *) ptr->mem;
	ptr->ntokens = (int) n;
	out = ptr->mem + n * sizeof(EsPtrToken);
	for (i = 0; i < len; i++)
	{
		char		c = text[i];

		if (c == '/')
		{
			if (t >= 0)
			{
				*out++ = '\0';
				ptr->tok[t].end = i;
			}
			t++;
			ptr->tok[t].s = out;
			continue;
		}
		if (c == '~')
		{
			c = (text[i + 1] == '0') ? '~' : '/';
			i++;
		}
		*out++ = c;
	}
	*out = '\0';
	ptr->tok[t].end = len;
	return ES_ENGINE_OK;
}

/*
 * es_ptr_free: releases a parsed pointer; a zeroed or freed one is fine.
 */
void
es_ptr_free(EsPointer *ptr)
{
	free(ptr->mem);
	ptr->mem = NULL;
	ptr->tok = NULL;
	ptr->ntokens = 0;
}

/*
 * es_ptr_index: true if token is an array index (decimal, no leading zero,
 * no overflow), stored in *index.
 */
bool
es_ptr_index(const char *token, size_t *index)
{
	size_t		v = 0;
	const char *p;

	if (token[0] == '\0' || (token[0] == '0' && token[1] != '\0'))
		return false;
	for (p = token; *p; p++)
	{
		size_t		d;

		if (*p < '0' || *p > '9')
			return false;
		d = (size_t) (*p - '0');
		if (v > (SIZE_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*index = v;
	return true;
}

/*
 * es_ptr_escape: appends token escaped for a JSON pointer ("~" as "~0", "/"
 * as "~1").
 */
void
es_ptr_escape(EsBuf *buf, const char *token)
{
	const char *p;
	const char *start = token;

	for (p = token; *p; p++)
	{
		if (*p == '~' || *p == '/')
		{
			es_buf_append(buf, start, (size_t) (p - start));
			es_buf_appends(buf, *p == '~' ? "~0" : "~1");
			start = p + 1;
		}
	}
	es_buf_append(buf, start, (size_t) (p - start));
}

/*
 * es_ptr_resolve: resolves the first ntokens tokens of ptr in doc.  On
 * success res->fail is ES_PTR_FOUND, res->value the value found and res->at
 * its container (NULL for the root), both borrowed; otherwise res says which
 * token failed, why, and in res->at the value where resolution stopped.
 */
void
es_ptr_resolve(json_t *doc, const EsPointer *ptr, int ntokens,
			   EsPtrResult *res)
{
	json_t	   *cur = doc;
	json_t	   *parent = NULL;
	int			i;

	res->value = NULL;
	res->fail = ES_PTR_FOUND;
	res->token = -1;
	res->at = NULL;
	for (i = 0; i < ntokens; i++)
	{
		const char *tok = ptr->tok[i].s;
		json_t	   *next;

		if (json_is_object(cur))
		{
			next = json_object_get(cur, tok);
			if (next == NULL)
			{
				res->fail = ES_PTR_NO_MEMBER;
				break;
			}
		}
		else if (json_is_array(cur))
		{
			size_t		index;

			if (!es_ptr_index(tok, &index))
			{
				res->fail = ES_PTR_BAD_INDEX;
				break;
			}
			if (index >= json_array_size(cur))
			{
				res->fail = ES_PTR_OUT_OF_RANGE;
				break;
			}
			next = json_array_get(cur, index);
		}
		else
		{
			res->fail = ES_PTR_NOT_CONTAINER;
			break;
		}
		parent = cur;
		cur = next;
	}
	if (res->fail != ES_PTR_FOUND)
	{
		res->token = i;
		res->at = cur;
		return;
	}
	res->value = cur;
	res->at = parent;
}

/*
 * es_ptr_prefix: appends the text of ptr up to token k excluded (the
 * location of the container of token k).
 */
static void
es_ptr_prefix(EsBuf *buf, const EsPointer *ptr, int k)
{
	size_t		end = (k <= 0) ? 0 : ptr->tok[k - 1].end;

	es_buf_append(buf, ptr->text, end);
}

/*
 * es_ptr_describe: appends why ptr did not resolve, as res says: a message
 * that quotes the location where resolution stopped.
 */
void
es_ptr_describe(EsBuf *buf, const EsPointer *ptr, const EsPtrResult *res)
{
	int			k = res->token;

	switch (res->fail)
	{
		case ES_PTR_FOUND:
			es_buf_appends(buf, "path \"");
			es_buf_appends(buf, ptr->text);
			es_buf_appends(buf, "\" exists");
			break;
		case ES_PTR_NO_MEMBER:
			es_buf_appends(buf, "path \"");
			es_ptr_prefix(buf, ptr, k + 1);
			es_buf_appends(buf, "\" does not exist");
			break;
		case ES_PTR_OUT_OF_RANGE:
			{
				size_t		index = 0;

				(void) es_ptr_index(ptr->tok[k].s, &index);
				es_buf_printf(buf,
							  "index %zu is out of range for an array of %zu elements at \"",
							  index, json_array_size(res->at));
				es_ptr_prefix(buf, ptr, k);
				es_buf_appendc(buf, '"');
				break;
			}
		case ES_PTR_BAD_INDEX:
			if (strcmp(ptr->tok[k].s, "-") == 0)
				es_buf_appends(buf,
							   "index \"-\" designates no existing element of the array at \"");
			else
			{
				es_buf_appendc(buf, '"');
				es_buf_appends(buf, ptr->tok[k].s);
				es_buf_appends(buf,
							   "\" is not a valid array index (decimal digits without leading zeros) for the array at \"");
			}
			es_ptr_prefix(buf, ptr, k);
			es_buf_appendc(buf, '"');
			break;
		case ES_PTR_NOT_CONTAINER:
			es_buf_appendc(buf, '"');
			es_ptr_prefix(buf, ptr, k);
			es_buf_appends(buf, "\" is ");
			es_buf_appends(buf, es_type_article(res->at));
			es_buf_appends(buf, ", not an object or array");
			break;
	}
}
