/* map_call - RingCentral telephony-session events to party states (see the header).
 * Pure: no database, no sockets, no logging, so tests/unit/test_map_call.c can feed it
 * the fixtures directly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "map_call.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define S_CODE_MAX 64   // longest status code kept ("Disconnected", "VoiceMailScreening")
#define S_NUMBER_MAX 64 // a "number" longer than this is not one (sb_phone_e164's limit)

static void
s_outcome(sb_map_t *out, sb_map_kind_t kind, const char *reason)
{
    sb_map_release(out);
    out->kind = kind;
    out->reason = sb_xstrdup(reason);
}

// The exact text of an id sent as a JSON string or integer (RingCentral ids may exceed
// 2^53: never through a double), or NULL.
static char *
s_id_text(const json_t *value)
{
    if (json_is_string(value)) {
        size_t len = json_string_length(value);
        if (len == 0 || len > SB_MAP_CALL_ID_MAX || memchr(json_string_value(value), '\0', len))
            return NULL;
        return sb_xstrdup(json_string_value(value));
    }
    if (json_is_integer(value))
        return sb_xasprintf("%lld", (long long)json_integer_value(value));
    return NULL;
}

// body.sequence: a non-negative integer, or the same as decimal text. 0 or -1.
static int
s_sequence(const json_t *value, json_int_t *out)
{
    if (json_is_integer(value)) {
        *out = json_integer_value(value);
        return *out >= 0 ? 0 : -1;
    }
    const char *text = json_string_value(value);
    if (text == NULL || *text == '\0' || strlen(text) > 18)
        return -1;
    json_int_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (*p - '0');
    }
    *out = n;
    return 0;
}

// The number of one side of a party ({phoneNumber, extensionNumber, name ...}): the phone
// number, or for an internal party without one its extension number; NULL if neither.
static const char *
s_side_number(const json_t *side)
{
    const char *number = json_string_value(json_object_get(side, "phoneNumber"));
    if (number == NULL || *number == '\0')
        number = json_string_value(json_object_get(side, "extensionNumber"));
    if (number == NULL || *number == '\0' || strlen(number) > S_NUMBER_MAX)
        return NULL;
    return number;
}

// E.164 when the number is a phone number, else the raw text (an extension, "anonymous"),
// which is still worth showing and simply matches no customer; JSON null when absent.
static json_t *
s_address(const char *number, const char *default_cc)
{
    if (number == NULL)
        return json_null();
    char e164[SB_PHONE_E164_MAX];
    if (sb_phone_e164(number, default_cc, e164, sizeof e164) == 0)
        return json_string(e164);
    return json_string(number);
}

// One party of the event as a state object, or NULL with *why set to the reason the
// party cannot be used ('unrecognized_party', 'party_without_phone_number').
static json_t *
s_party(const json_t *party, json_int_t sequence, const char *event_time, const char *default_cc,
        const char **why)
{
    *why = "unrecognized_party";
    const char *direction = json_string_value(json_object_get(party, "direction"));
    const char *code = json_string_value(json_object_get(json_object_get(party, "status"), "code"));
    if (direction == NULL ||
        (strcasecmp(direction, "Inbound") != 0 && strcasecmp(direction, "Outbound") != 0))
        return NULL;
    if (code == NULL || *code == '\0' || strlen(code) > S_CODE_MAX)
        return NULL;
    char *id = s_id_text(json_object_get(party, "id"));
    if (id == NULL)
        return NULL;
    const char *from = s_side_number(json_object_get(party, "from"));
    const char *to = s_side_number(json_object_get(party, "to"));
    if (from == NULL && to == NULL) {
        free(id);
        *why = "party_without_phone_number";
        return NULL;
    }
    const json_t *ext = json_object_get(party, "extensionId");
    int ours = (json_is_string(ext) && json_string_length(ext) > 0) || json_is_integer(ext);
    json_t *state = json_object();
    json_object_set_new(state, "party_id", json_string(id));
    json_object_set_new(state, "sequence", json_integer(sequence));
    json_object_set_new(state, "event_time", json_string(event_time));
    json_object_set_new(state, "status_code", json_string(code));
    json_object_set_new(
        state, "direction",
        json_string(strcasecmp(direction, "Inbound") == 0 ? "inbound" : "outbound"));
    json_object_set_new(state, "ours", json_boolean(ours));
    json_object_set_new(state, "from_address", s_address(from, default_cc));
    json_object_set_new(state, "to_address", s_address(to, default_cc));
    json_object_set_new(state, "missed",
                        json_boolean(json_is_true(json_object_get(party, "missedCall"))));
    free(id);
    return state;
}

// body.parties as an array of states; NULL with *why when no party is usable.
static json_t *
s_parties(const json_t *parties, json_int_t sequence, const char *event_time,
          const char *default_cc, const char **why)
{
    json_t *states = json_array();
    const char *first_why = NULL;
    size_t n = json_array_size(parties);
    if (n > SB_MAP_CALL_PARTIES_MAX)
        n = SB_MAP_CALL_PARTIES_MAX;
    for (size_t i = 0; i < n; i++) {
        const char *party_why = NULL;
        json_t *state =
            s_party(json_array_get(parties, i), sequence, event_time, default_cc, &party_why);
        if (state)
            json_array_append_new(states, state);
        else if (first_why == NULL || strcmp(party_why, "party_without_phone_number") == 0)
            first_why = party_why; // a party that only lacks numbers says more
    }
    if (json_array_size(states) == 0) {
        json_decref(states);
        *why = first_why ? first_why : "unrecognized_party";
        return NULL;
    }
    return states;
}

// body.eventTime, or the notification's timestamp when the body has none; NULL if
// neither is a time PostgreSQL takes.
static const char *
s_event_time(const json_t *root, const json_t *body)
{
    const char *t = json_string_value(json_object_get(body, "eventTime"));
    if (t == NULL)
        t = json_string_value(json_object_get(root, "timestamp"));
    return t && sb_map_timestamp_ok(t) ? t : NULL;
}

// Map a parsed notification whose root is an object.
static void
s_map(const json_t *root, const char *default_cc, sb_map_t *out)
{
    const char *event = json_string_value(json_object_get(root, "event"));
    const json_t *body = json_object_get(root, "body");
    if (event && strstr(event, "/subscription/")) {
        s_outcome(out, SB_MAP_IGNORED, "subscription_notification"); // renewal reminders
        return;
    }
    if (!json_is_object(body)) {
        s_outcome(out, SB_MAP_REJECTED, "unrecognized_payload");
        return;
    }
    char *session = s_id_text(json_object_get(body, "telephonySessionId"));
    json_int_t sequence = 0;
    const char *event_time = s_event_time(root, body);
    const json_t *parties = json_object_get(body, "parties");
    const char *why = NULL;
    json_t *states = NULL;
    if (session == NULL) {
        s_outcome(out, SB_MAP_REJECTED, "missing_telephony_session_id");
    } else if (s_sequence(json_object_get(body, "sequence"), &sequence) != 0) {
        s_outcome(out, SB_MAP_REJECTED, "missing_sequence");
    } else if (event_time == NULL) {
        s_outcome(out, SB_MAP_REJECTED, "invalid_event_time");
    } else if (json_array_size(parties) == 0) {
        s_outcome(out, SB_MAP_IGNORED, "no_parties");
    } else if ((states = s_parties(parties, sequence, event_time, default_cc, &why)) == NULL) {
        s_outcome(out,
                  strcmp(why, "party_without_phone_number") == 0 ? SB_MAP_IGNORED : SB_MAP_REJECTED,
                  why);
    } else {
        const char *direction =
            json_string_value(json_object_get(json_array_get(states, 0), "direction"));
        out->comm.direction = strcmp(direction, "inbound") == 0 ? "inbound" : "outbound";
        json_t *call = json_pack("{s:s, s:o}", "session", session, "parties", states);
        out->call = json_dumps(call, JSON_COMPACT);
        json_decref(call);
        if (out->call == NULL)
            abort(); // jansson fails only when out of memory, which aborts everywhere else too
        out->kind = SB_MAP_CALL;
        out->comm.channel = "call";
        out->comm.provider = "ringcentral";
        out->comm.external_id = session;
        session = NULL;
    }
    free(session);
}

void
sb_map_ringcentral_call(const char *body, size_t len, const char *default_cc, sb_map_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (root == NULL)
        s_outcome(out, SB_MAP_REJECTED, "malformed_json");
    else if (!json_is_object(root))
        s_outcome(out, SB_MAP_REJECTED, "unrecognized_payload");
    else
        s_map(root, default_cc, out);
    json_decref(root);
}
