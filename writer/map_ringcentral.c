/* map_ringcentral - RingCentral SMS payloads to communications rows (see the header).
 * Pure: no database, no sockets, no logging, so tests/unit/test_map_ringcentral.c can
 * feed it the fixtures directly. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "map_ringcentral.h"
#include "map_extra.h"
#include "map_call.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define SB_MAP_ID_MAX 64 // longest id text kept; RingCentral's are about 20 digits

static void
s_outcome(sb_map_t *out, sb_map_kind_t kind, const char *reason)
{
    sb_map_release(out);
    out->kind = kind;
    out->reason = sb_xstrdup(reason);
}

// The exact text of an id sent as a JSON string or integer. Integers go through
// json_int_t (long long), never a double, so 9007199254740993 stays itself. Returns
// NULL for anything else (reals, empty or overlong strings, objects).
static char *
s_id_text(const json_t *value)
{
    if (json_is_string(value)) {
        size_t len = json_string_length(value);
        if (len == 0 || len > SB_MAP_ID_MAX)
            return NULL;
        return sb_xstrdup(json_string_value(value));
    }
    if (json_is_integer(value))
        return sb_xasprintf("%lld", (long long)json_integer_value(value));
    return NULL;
}

// A string member, copied, or NULL when missing or not a string.
static char *
s_string(const json_t *object, const char *key)
{
    const char *text = json_string_value(json_object_get(object, key));
    return text ? sb_xstrdup(text) : NULL;
}

// The number of a party object ({phoneNumber, extensionNumber, name ...}): the phone
// number, or for an internal party without one its extension number.
static const char *
s_party_number(const json_t *party)
{
    const char *number = json_string_value(json_object_get(party, "phoneNumber"));
    if (number == NULL || *number == '\0')
        number = json_string_value(json_object_get(party, "extensionNumber"));
    return number && *number ? number : NULL;
}

// Store the party's number as E.164 when it is a phone number (and then also report it
// in *e164 for customer matching), else as the raw text: a short code or an extension
// is still worth keeping, it just matches nobody.
static char *
s_address(const char *number, const char *default_cc, char **e164)
{
    char out[SB_PHONE_E164_MAX];
    if (sb_phone_e164(number, default_cc, out, sizeof out) == 0) {
        if (e164)
            *e164 = sb_xstrdup(out);
        return sb_xstrdup(out);
    }
    return sb_xstrdup(number);
}

static int
s_digits(const char *p, int n, int lo, int hi)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return 0;
        value = value * 10 + (p[i] - '0');
    }
    return value >= lo && value <= hi;
}

// Is text an ISO-8601 date-time PostgreSQL will take ("2026-11-24T15:00:12.418Z",
// optional fraction, "Z" or an offset)? A creationTime that fails here is replaced by
// the receive time rather than turning the whole SMS into a failed event.
int
sb_map_timestamp_ok(const char *t)
{
    if (strlen(t) < 19 || !s_digits(t, 4, 1, 9999) || t[4] != '-' || !s_digits(t + 5, 2, 1, 12) ||
        t[7] != '-' || !s_digits(t + 8, 2, 1, 31) || (t[10] != 'T' && t[10] != ' ') ||
        !s_digits(t + 11, 2, 0, 23) || t[13] != ':' || !s_digits(t + 14, 2, 0, 59) ||
        t[16] != ':' || !s_digits(t + 17, 2, 0, 60))
        return 0;
    int year = (int)strtol(t, NULL, 10), month = (int)strtol(t + 5, NULL, 10);
    int day = (int)strtol(t + 8, NULL, 10);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > days[month - 1] + (month == 2 && leap))
        return 0; // "2026-02-30" has the right shape and would still fail the whole SMS
    const char *p = t + 19;
    if (*p == '.') {
        const char *start = ++p;
        while (isdigit((unsigned char)*p))
            p++;
        if (p == start || p - start > 9)
            return 0;
    }
    if (*p == 'Z' && p[1] == '\0')
        return 1;
    if (*p == '\0')
        return 1; // no zone: the writer's session runs in UTC
    if (*p != '+' && *p != '-')
        return 0;
    p++;
    if (!s_digits(p, 2, 0, 15))
        return 0;
    p += 2;
    if (*p == ':')
        p++;
    if (*p == '\0')
        return 1;
    return s_digits(p, 2, 0, 59) && p[2] == '\0';
}

// The conversation id: body.conversation.id (2025-style payloads) or body.conversationId.
static char *
s_thread_id(const json_t *msg)
{
    char *id = s_id_text(json_object_get(json_object_get(msg, "conversation"), "id"));
    if (id == NULL)
        id = s_id_text(json_object_get(msg, "conversationId"));
    return id;
}

// Fill out->comm from an instant-SMS message object; 0, or -1 when a required part is
// missing (the caller rejects the event).
static int
s_fill_sms(const json_t *msg, const char *default_cc, sb_map_t *out)
{
    sb_comm_t *c = &out->comm;
    const char *direction = json_string_value(json_object_get(msg, "direction"));
    int inbound;
    if (direction && strcasecmp(direction, "Inbound") == 0)
        inbound = 1;
    else if (direction && strcasecmp(direction, "Outbound") == 0)
        inbound = 0;
    else
        return -1;
    const char *from = s_party_number(json_object_get(msg, "from"));
    c->external_id = s_id_text(json_object_get(msg, "id"));
    if (from == NULL || c->external_id == NULL)
        return -1;
    const char *to = s_party_number(json_array_get(json_object_get(msg, "to"), 0));

    c->channel = "sms";
    c->provider = "ringcentral";
    c->direction = inbound ? "inbound" : "outbound";
    c->thread_id = s_thread_id(msg);
    // Inbound SMS match on the sender, outbound on the recipient (SPEC).
    c->from_address = s_address(from, default_cc, inbound ? &c->match_phone : NULL);
    c->to_address = to ? s_address(to, default_cc, inbound ? NULL : &c->match_phone) : NULL;
    c->body = s_string(msg, "subject"); // RingCentral carries the SMS text in "subject"
    c->status = s_string(msg, "messageStatus");
    const char *created = json_string_value(json_object_get(msg, "creationTime"));
    c->occurred_at = created && sb_map_timestamp_ok(created) ? sb_xstrdup(created) : NULL;
    return 0;
}

void
sb_map_ringcentral_sms(const char *body, size_t len, const char *default_cc, sb_map_t *out)
{
    memset(out, 0, sizeof *out);
    // Invalid UTF-8, "\u0000", trailing garbage and integers beyond 64 bits are errors,
    // which is what 'malformed_json' should mean. JSON_DECODE_ANY: a bare string is valid
    // JSON, just not a payload ('unrecognized_payload').
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (root == NULL) {
        s_outcome(out, SB_MAP_REJECTED, "malformed_json");
        return;
    }
    const char *event = json_string_value(json_object_get(root, "event"));
    const json_t *msg = json_object_get(root, "body");
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!json_is_object(root)) {
        s_outcome(out, SB_MAP_REJECTED, "unrecognized_payload");
    } else if (event && strstr(event, "/subscription/")) {
        s_outcome(out, SB_MAP_IGNORED, "subscription_notification");
    } else if (!json_is_object(msg)) {
        s_outcome(out, SB_MAP_REJECTED, "unrecognized_payload");
    } else if (json_is_array(json_object_get(msg, "changes"))) {
        // The enricher fetches the announced messages (enricher/enrich_ringcentral.h)
        // and the event then arrives with an extra frame; this one did not pass it.
        s_outcome(out, SB_MAP_IGNORED, "message_store_change_needs_fetch");
    } else if (type && strcmp(type, "SMS") != 0) {
        s_outcome(out, SB_MAP_IGNORED, "unsupported_message_type"); // Fax, VoiceMail, Pager
    } else if (s_fill_sms(msg, default_cc, out) != 0) {
        s_outcome(out, SB_MAP_REJECTED, "unrecognized_payload");
    } else {
        out->kind = SB_MAP_COMMUNICATION;
    }
    json_decref(root);
}

void
sb_map_event(const sb_envelope_t *env, const char *default_cc, sb_map_t *out)
{
    memset(out, 0, sizeof *out);
    const char *source = env->source ? env->source : "";
    if (env->verdict && strcmp(env->verdict, "rejected") == 0) {
        s_outcome(out, SB_MAP_REJECTED,
                  env->reason && *env->reason ? env->reason : "verification_failed");
    } else if (env->verdict == NULL || strcmp(env->verdict, "accepted") != 0) {
        s_outcome(out, SB_MAP_REJECTED, "not_verified"); // fail closed
    } else if (env->extra != NULL && env->extra[0] != '\0') {
        out->kind = SB_MAP_EXTRA; // the enricher fetched what the body only announced
        out->extra = sb_map_extra_parse(env->extra, strlen(env->extra), default_cc);
        out->reason = out->extra->reason ? sb_xstrdup(out->extra->reason) : NULL; // for logs
    } else if (strcmp(source, "ringcentral_sms") == 0) {
        sb_map_ringcentral_sms(env->body, env->body_len, default_cc, out);
    } else if (strcmp(source, "ringcentral_call") == 0) {
        sb_map_ringcentral_call(env->body, env->body_len, default_cc, out);
    } else if (strcmp(source, "gmail_push") == 0) {
        s_outcome(out, SB_MAP_IGNORED, "gmail_enricher_not_yet_supported");
    } else {
        s_outcome(out, SB_MAP_REJECTED, "unknown_source");
    }
}

void
sb_map_release(sb_map_t *self)
{
    if (self == NULL)
        return;
    sb_comm_t *c = &self->comm;
    free(self->reason);
    free(c->external_id);
    free(c->thread_id);
    free(c->from_address);
    free(c->to_address);
    free(c->subject);
    free(c->body);
    free(c->status);
    free(c->occurred_at);
    free(c->match_phone);
    free(c->match_email);
    sb_map_extra_destroy(&self->extra);
    free(self->call);
    memset(self, 0, sizeof *self);
}

void
sb_comm_columns(const sb_comm_t *c, const char *out[SB_COMM_COLUMNS])
{
    const char *cols[] = {c->channel,    c->direction,    c->provider,    c->external_id,
                          c->thread_id,  c->from_address, c->to_address,  c->subject,
                          c->body,       c->status,       c->occurred_at, c->match_phone,
                          c->match_email};
    _Static_assert(sizeof cols / sizeof cols[0] == SB_COMM_COLUMNS, "one per column");
    memcpy(out, cols, sizeof cols);
}
