/*-------------------------------------------------------------------------
 *
 * message.c
 *	  The event message: the JSON shape of an event announced by NOTIFY and
 *	  returned by es_sync.
 *
 * Copyright (c) 2026, eventsourcing developers
 *
 * IDENTIFICATION
 *	  src/message.c
 *
 *-------------------------------------------------------------------------
 *
 * The shape is the "event" message of the playbook editor's WebSocket
 * protocol, plus the stream, the global position and the event id:
 *
 *	{"type":"event","stream":"playbook-42","sequence_number":43,
 *	 "global_position":1207,"event_id":"...","event_type":"module_add",
 *	 "data":{...},"user_id":"1","username":"alice",
 *	 "timestamp":"2026-01-19T12:00:00.123456Z"}
 *
 * Timestamps are written in UTC whatever the session's TimeZone, so that
 * every listener of one event receives the same bytes.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "eventsourcing.h"

/*
 * es_event_message_from_row
 *		Fill an event message from the deformed columns of an es.events row.
 *
 * Strings are converted to C strings in the current memory context; the
 * data pointer is detoasted.
 */
void
es_event_message_from_row(EsEventMessage *ev, const Datum *values,
						  const bool *isnull)
{
	ev->stream = TextDatumGetCString(values[Anum_es_events_stream - 1]);
	ev->sequence_number =
		DatumGetInt64(values[Anum_es_events_sequence_number - 1]);
	ev->global_position =
		DatumGetInt64(values[Anum_es_events_global_position - 1]);
	ev->event_id = values[Anum_es_events_event_id - 1];
	ev->event_type = TextDatumGetCString(values[Anum_es_events_event_type - 1]);
	ev->data = DatumGetJsonbP(values[Anum_es_events_data - 1]);
	ev->user_id = isnull[Anum_es_events_user_id - 1] ? NULL :
		TextDatumGetCString(values[Anum_es_events_user_id - 1]);
	ev->username = isnull[Anum_es_events_username - 1] ? NULL :
		TextDatumGetCString(values[Anum_es_events_username - 1]);
	ev->created_at =
		DatumGetTimestampTz(values[Anum_es_events_created_at - 1]);
}

/*
 * Append a JSON string, or null.
 */
static void
append_json_string_or_null(StringInfo buf, const char *str)
{
	if (str == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, str);
}

/*
 * es_utc_timestamp
 *		Write a timestamp in UTC, ISO 8601 with a "Z", into str (at least
 *		MAXDATELEN + 2 bytes).
 *
 * This is the text of "timestamp" in event messages and of
 * {"$event": "created_at"} in effects, whatever the session's TimeZone.
 */
void
es_utc_timestamp(TimestampTz ts, char *str)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts))
	{
		EncodeSpecialTimestamp(ts, str);
		return;
	}

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));

	EncodeDateTime(&tm, fsec, false, 0, NULL, USE_XSD_DATES, str);
	strcat(str, "Z");
}

/*
 * es_append_event_message
 *		Append the JSON event message of an event to buf.
 *
 * Without data the message carries "truncated":true instead, telling the
 * subscriber to fetch the event with es_read.
 */
void
es_append_event_message(StringInfo buf, const EsEventMessage *ev,
						bool with_data)
{
	char		timestamp[ES_TIMESTAMP_BUFLEN];

	appendStringInfoString(buf, "{\"type\":\"event\",\"stream\":");
	escape_json(buf, ev->stream);
	appendStringInfo(buf,
					 ",\"sequence_number\":" INT64_FORMAT
					 ",\"global_position\":" INT64_FORMAT
					 ",\"event_id\":\"%s\",\"event_type\":",
					 ev->sequence_number,
					 ev->global_position,
					 DatumGetCString(DirectFunctionCall1(uuid_out,
														 ev->event_id)));
	escape_json(buf, ev->event_type);
	if (with_data)
	{
		appendStringInfoString(buf, ",\"data\":");
		(void) JsonbToCString(buf, &ev->data->root, VARSIZE(ev->data));
	}
	appendStringInfoString(buf, ",\"user_id\":");
	append_json_string_or_null(buf, ev->user_id);
	appendStringInfoString(buf, ",\"username\":");
	append_json_string_or_null(buf, ev->username);
	appendStringInfoString(buf, ",\"timestamp\":");
	es_utc_timestamp(ev->created_at, timestamp);
	escape_json(buf, timestamp);
	if (!with_data)
		appendStringInfoString(buf, ",\"truncated\":true");
	appendStringInfoChar(buf, '}');
}

/*
 * Members of a jsonb object being built with pushJsonbValue, between its
 * WJB_BEGIN_OBJECT and WJB_END_OBJECT: key and a value, a JSON null for a
 * NULL string or Jsonb.
 */
static void
push_key(JsonbParseState **ps, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &k);
}

void
es_jsonb_push_string(JsonbParseState **ps, const char *key, const char *value)
{
	JsonbValue	v;

	push_key(ps, key);
	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
	}
	pushJsonbValue(ps, WJB_VALUE, &v);
}

void
es_jsonb_push_int64(JsonbParseState **ps, const char *key, int64 value)
{
	JsonbValue	v;

	push_key(ps, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	pushJsonbValue(ps, WJB_VALUE, &v);
}

void
es_jsonb_push_jsonb(JsonbParseState **ps, const char *key, Jsonb *value)
{
	JsonbValue	v;

	push_key(ps, key);
	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &value->root;
		v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	}
	pushJsonbValue(ps, WJB_VALUE, &v);
}
