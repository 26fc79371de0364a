/* map_extra - the enricher's extra frame to what one event stores (see the header).
 * Pure: no database, no sockets, no logging (tests/unit/test_map_extra.c). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "map_extra.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define S_HISTORY_ID_MAX 19 // digits of the largest int64
#define S_LABEL_MAX 64      // bytes of an outcome, reason or status

static const char *const s_channels[] = {"sms", "call", "email", NULL};
static const char *const s_directions[] = {"inbound", "outbound", NULL};
static const char *const s_providers[] = {"ringcentral", "gmail", NULL};
static const char *const s_outcomes[] = {"ignored", "rejected", "failed", NULL};

// The text columns a row may carry besides the keys (NULL or a string each).
// message_id and email_references: an e-mail's threading headers (0006_outbox.sql), so
// that a staff reply can carry In-Reply-To and References.
static const char *const s_text_fields[] = {
    "thread_id", "from_address", "to_address",       "subject", "body",
    "status",    "message_id",   "email_references", NULL};

// The member of list equal to text (so the result is a static literal), or NULL.
static const char *
s_one_of(const char *text, const char *const *list)
{
    for (size_t i = 0; text != NULL && list[i] != NULL; i++)
        if (strcmp(text, list[i]) == 0)
            return list[i];
    return NULL;
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

// "2026-11-24T15:10:00.000Z" or with an offset ("+01:00", "-0500"), fraction optional:
// what PostgreSQL's timestamptz takes for certain. Anything else becomes NULL (the event's
// receive time) rather than turning the whole event into a failed statement.
static int
s_timestamp_ok(const char *t)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(t) < 20 || !s_digits(t, 4, 1, 9999) || t[4] != '-' || !s_digits(t + 5, 2, 1, 12) ||
        t[7] != '-' || !s_digits(t + 8, 2, 1, 31) || t[10] != 'T' || !s_digits(t + 11, 2, 0, 23) ||
        t[13] != ':' || !s_digits(t + 14, 2, 0, 59) || t[16] != ':' || !s_digits(t + 17, 2, 0, 59))
        return 0;
    int year = (int)strtol(t, NULL, 10), month = (int)strtol(t + 5, NULL, 10);
    int day = (int)strtol(t + 8, NULL, 10);
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > days[month - 1] || (month == 2 && day == 29 && !leap))
        return 0;
    const char *p = t + 19;
    if (*p == '.') {
        const char *start = ++p;
        while (isdigit((unsigned char)*p))
            p++;
        if (p == start || p - start > 6)
            return 0;
    }
    if (*p == 'Z')
        return p[1] == '\0';
    if (*p != '+' && *p != '-')
        return 0;
    p++;
    if (!s_digits(p, 2, 0, 15))
        return 0;
    p += 2;
    if (*p == ':')
        p++;
    return s_digits(p, 2, 0, 59) && p[2] == '\0';
}

// A short label (outcome, reason, status): printable ASCII, 1..S_LABEL_MAX bytes.
static int
s_label_ok(const char *text)
{
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > S_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] < 0x20 || text[i] > 0x7e)
            return 0;
    return 1;
}

// A history id as decimal text: a string of digits or a non-negative integer, within
// int64 (history_id is a bigint column; a larger value would fail the statement). NULL
// when it is neither.
static char *
s_history_id(const json_t *value)
{
    if (json_is_integer(value) && json_integer_value(value) >= 0)
        return sb_xasprintf("%lld", (long long)json_integer_value(value));
    const char *text = json_string_value(value);
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > S_HISTORY_ID_MAX)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)text[i]))
            return NULL;
    if (len == S_HISTORY_ID_MAX && strcmp(text, "9223372036854775807") > 0)
        return NULL;
    return sb_xstrdup(text);
}

// A string member, or JSON null / absent: 0 and *out set (NULL for absent or null).
// -1 for any other type.
static int
s_opt_string(const json_t *object, const char *key, const char **out)
{
    const json_t *value = json_object_get(object, key);
    *out = NULL;
    if (value == NULL || json_is_null(value))
        return 0;
    if (!json_is_string(value))
        return -1;
    *out = json_string_value(value);
    return 0;
}

// One communication in canonical form, or NULL when it breaks the contract.
static json_t *
s_row(const json_t *in, size_t ord, const char *default_cc)
{
    if (!json_is_object(in))
        return NULL;
    const char *channel = s_one_of(json_string_value(json_object_get(in, "channel")), s_channels);
    const char *direction =
        s_one_of(json_string_value(json_object_get(in, "direction")), s_directions);
    const char *provider =
        s_one_of(json_string_value(json_object_get(in, "provider")), s_providers);
    const json_t *id = json_object_get(in, "external_id");
    if (!channel || !direction || !provider || !json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) > SB_MAP_EXTRA_ID_MAX)
        return NULL;
    json_t *row = json_pack("{s:I,s:s,s:s,s:s,s:O}", "ord", (json_int_t)ord, "channel", channel,
                            "direction", direction, "provider", provider, "external_id", id);
    for (size_t i = 0; s_text_fields[i] != NULL; i++) {
        const char *text;
        if (s_opt_string(in, s_text_fields[i], &text) != 0) {
            json_decref(row);
            return NULL;
        }
        json_object_set_new(row, s_text_fields[i], text ? json_string(text) : json_null());
    }
    const char *occurred, *email, *phone;
    if (s_opt_string(in, "occurred_at", &occurred) != 0 ||
        s_opt_string(in, "match_email", &email) != 0 ||
        s_opt_string(in, "match_phone", &phone) != 0) {
        json_decref(row);
        return NULL;
    }
    json_object_set_new(row, "occurred_at",
                        occurred && s_timestamp_ok(occurred) ? json_string(occurred) : json_null());
    char *norm = email ? sb_email_normalize(email) : NULL;
    json_object_set_new(row, "match_email", norm ? json_string(norm) : json_null());
    free(norm);
    char e164[SB_PHONE_E164_MAX];
    int phone_ok = phone && sb_phone_e164(phone, default_cc, e164, sizeof e164) == 0;
    json_object_set_new(row, "match_phone", phone_ok ? json_string(e164) : json_null());
    return row;
}

// Fill self->rows_json from the "communications" array; -1 when malformed.
static int
s_rows(sb_map_extra_t *self, const json_t *list, const char *default_cc)
{
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list) || json_array_size(list) > SB_MAP_EXTRA_MAX_ROWS)
        return -1;
    json_t *rows = json_array();
    json_t *seen = json_object(); // "provider/channel/external_id" already taken
    int rc = 0;
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        json_t *row = s_row(item, json_array_size(rows), default_cc);
        if (row == NULL) {
            rc = -1;
            break;
        }
        char *key = sb_xasprintf("%s/%s/%s", json_string_value(json_object_get(row, "provider")),
                                 json_string_value(json_object_get(row, "channel")),
                                 json_string_value(json_object_get(row, "external_id")));
        if (json_object_get(seen, key) == NULL) {
            json_object_set_new(seen, key, json_true());
            json_array_append_new(rows, row);
        } else {
            json_decref(row); // the same message twice in one event: one row
        }
        free(key);
    }
    if (rc == 0) {
        char *text = json_dumps(rows, JSON_COMPACT);
        if (text == NULL) {
            rc = -1;
        } else {
            free(self->rows_json);
            self->rows_json = text;
            self->n_rows = json_array_size(rows);
        }
    }
    json_decref(seen);
    json_decref(rows);
    return rc;
}

// Fill the mailbox members; -1 when malformed.
static int
s_mailbox(sb_map_extra_t *self, const json_t *mailbox, int *full_sync)
{
    *full_sync = 0;
    if (mailbox == NULL || json_is_null(mailbox))
        return 0;
    if (!json_is_object(mailbox))
        return -1;
    const char *email, *status;
    if (s_opt_string(mailbox, "email", &email) != 0 || email == NULL || *email == '\0' ||
        s_opt_string(mailbox, "status", &status) != 0 || (status && !s_label_ok(status)))
        return -1;
    const json_t *history = json_object_get(mailbox, "history_id");
    if (history != NULL && !json_is_null(history)) {
        self->history_id = s_history_id(history);
        if (self->history_id == NULL)
            return -1;
    }
    const json_t *full = json_object_get(mailbox, "full_sync");
    if (full != NULL && !json_is_boolean(full) && !json_is_null(full))
        return -1;
    *full_sync = json_is_true(full);
    self->mailbox_email = sb_xstrdup(email);
    self->mailbox_status = status ? sb_xstrdup(status) : NULL;
    return 0;
}

static void
s_reset(sb_map_extra_t *self)
{
    free(self->rows_json);
    free(self->mailbox_email);
    free(self->history_id);
    free(self->mailbox_status);
    free(self->reason);
    memset(self, 0, sizeof *self);
    self->rows_json = sb_xstrdup("[]");
}

static int
s_parse(sb_map_extra_t *self, const json_t *root, const char *default_cc)
{
    if (!json_is_object(root))
        return -1;
    int full_sync = 0;
    const char *outcome, *reason;
    if (s_rows(self, json_object_get(root, "communications"), default_cc) != 0 ||
        s_mailbox(self, json_object_get(root, "mailbox"), &full_sync) != 0 ||
        s_opt_string(root, "outcome", &outcome) != 0 ||
        s_opt_string(root, "reason", &reason) != 0 || (reason && !s_label_ok(reason)))
        return -1;
    self->outcome = "ignored";
    if (outcome != NULL) {
        self->outcome = s_one_of(outcome, s_outcomes);
        if (self->outcome == NULL)
            return -1; // 'stored' and 'duplicate' are the writer's to say
    }
    if (reason != NULL)
        self->reason = sb_xstrdup(reason);
    else if (full_sync)
        self->reason = sb_xstrdup("full_sync");
    else if (self->n_rows == 0)
        self->reason = sb_xstrdup("no_new_messages");
    return 0;
}

sb_map_extra_t *
sb_map_extra_parse(const char *extra, size_t len, const char *default_cc)
{
    sb_map_extra_t *self = sb_xcalloc(1, sizeof *self);
    s_reset(self);
    json_t *root = NULL;
    if (extra != NULL && len <= SB_MAP_EXTRA_MAX_BYTES)
        root = json_loadb(extra, len, 0, NULL);
    if (s_parse(self, root, default_cc ? default_cc : "1") != 0) {
        s_reset(self); // nothing of a broken document is stored, the checkpoint included
        self->outcome = "failed";
        self->reason = sb_xstrdup("malformed_extra");
    }
    json_decref(root);
    return self;
}

void
sb_map_extra_destroy(sb_map_extra_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_map_extra_t *self = *self_p;
    free(self->rows_json);
    free(self->mailbox_email);
    free(self->history_id);
    free(self->mailbox_status);
    free(self->reason);
    free(self);
    *self_p = NULL;
}
