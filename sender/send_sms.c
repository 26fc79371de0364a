/* send_sms - an outbox SMS through RingCentral (see the header). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "send_sms.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define S_ERROR_TEXT_MAX 300 // bytes of a provider message kept

void
sb_sms_record_release(sb_sms_record_t *rec)
{
    if (rec == NULL)
        return;
    free(rec->id);
    free(rec->conversation_id);
    free(rec->status);
    free(rec->creation_time);
    free(rec->from);
    free(rec->to);
    free(rec->text);
    free(rec->direction);
    memset(rec, 0, sizeof *rec);
}

char *
sb_send_sms_body(const char *from, const char *to, const char *text)
{
    json_t *doc = json_pack("{s:{s:s},s:[{s:s}],s:s}", "from", "phoneNumber", from, "to",
                            "phoneNumber", to, "text", text);
    char *out = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return out ? out : sb_xstrdup("{}"); // only NULL strings (a bug) or OOM get here
}

// An id as decimal text: a JSON integer (exact, 64 bits) or a string of 1-20 digits.
static char *
s_id_text(const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return sb_xasprintf("%lld", (long long)json_integer_value(v));
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 20)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return NULL;
    return sb_xstrdup(s);
}

static char *
s_string(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? sb_xstrdup(s) : NULL;
}

// A phone number as the writer stores it: E.164 when it is one, else as written.
static char *
s_phone(const json_t *party, const char *cc)
{
    const char *s = json_string_value(json_object_get(party, "phoneNumber"));
    if (s == NULL)
        return NULL;
    char e164[SB_PHONE_E164_MAX];
    return sb_xstrdup(sb_phone_e164(s, cc, e164, sizeof e164) == 0 ? e164 : s);
}

// "2026-11-24T15:04:51.000Z" (fraction optional, "Z" or "+hh:mm") to ms; -1 if not one.
static int
s_iso_ms(const char *t, int64_t *ms)
{
    int y, mo, d, h, mi, s, n = 0;
    if (t == NULL || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
        n != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    const char *p = t + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    int offset_min = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || strlen(p) != 6)
            return -1;
        offset_min = (*p == '-' ? -1 : 1) * (oh * 60 + om);
    } else if (strcmp(p, "Z") != 0) {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    *ms = ((int64_t)timegm(&tm) - offset_min * 60) * 1000 + frac;
    return 0;
}

int
sb_send_sms_record(const json_t *rec, const char *default_cc, sb_sms_record_t *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(rec))
        return -1;
    out->id = s_id_text(json_object_get(rec, "id"));
    if (out->id == NULL)
        return -1;
    const json_t *conv = json_object_get(json_object_get(rec, "conversation"), "id");
    out->conversation_id = s_id_text(conv ? conv : json_object_get(rec, "conversationId"));
    out->status = s_string(rec, "messageStatus");
    out->direction = s_string(rec, "direction");
    char *created = s_string(rec, "creationTime");
    int64_t ms;
    if (created && s_iso_ms(created, &ms) == 0)
        out->creation_time = created;
    else
        free(created);
    out->from = s_phone(json_object_get(rec, "from"), default_cc);
    out->to = s_phone(json_array_get(json_object_get(rec, "to"), 0), default_cc);
    out->text = s_string(rec, "subject");
    return 0;
}

static int
s_matches(const sb_sms_record_t *r, const sb_outbox_job_t *job, int64_t since_ms)
{
    int64_t created;
    return r->direction && strcmp(r->direction, "Outbound") == 0 && r->from && r->to && r->text &&
           strcmp(r->from, job->from_address) == 0 && strcmp(r->to, job->to_address) == 0 &&
           strcmp(r->text, job->body) == 0 && r->creation_time &&
           s_iso_ms(r->creation_time, &created) == 0 && created >= since_ms;
}

static int
s_by_creation(const void *a, const void *b)
{
    const sb_sms_record_t *x = a, *y = b;
    int64_t tx = 0, ty = 0;
    s_iso_ms(x->creation_time, &tx);
    s_iso_ms(y->creation_time, &ty);
    if (tx != ty)
        return tx < ty ? -1 : 1;
    size_t lx = strlen(x->id), ly = strlen(y->id); // ids grow: the older one first
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->id, y->id);
}

size_t
sb_send_sms_matches(const char *body, size_t len, const sb_outbox_job_t *job,
                    const char *default_cc, int64_t since_ms, sb_sms_record_t *out, size_t max,
                    int *more)
{
    *more = 0;
    json_t *doc = json_loadb(body, len, 0, NULL);
    const json_t *records = json_object_get(doc, "records");
    size_t n = 0, i;
    const json_t *rec;
    json_array_foreach(records, i, rec)
    {
        sb_sms_record_t r;
        if (sb_send_sms_record(rec, default_cc, &r) != 0)
            continue;
        if (n < max && s_matches(&r, job, since_ms))
            out[n++] = r;
        else
            sb_sms_record_release(&r);
    }
    const json_t *next = json_object_get(json_object_get(doc, "navigation"), "nextPage");
    const json_t *paging = json_object_get(doc, "paging");
    json_int_t page = json_integer_value(json_object_get(paging, "page"));
    json_int_t pages = json_integer_value(json_object_get(paging, "totalPages"));
    *more = next != NULL || (page > 0 && pages > page);
    json_decref(doc);
    qsort(out, n, sizeof *out, s_by_creation);
    return n;
}

char *
sb_send_rc_error(long status, const char *body, size_t len)
{
    json_t *doc = json_loadb(body ? body : "", len, 0, NULL);
    const json_t *first = json_array_get(json_object_get(doc, "errors"), 0);
    const char *code = json_string_value(json_object_get(doc, "errorCode"));
    const char *msg = json_string_value(json_object_get(doc, "message"));
    if (msg == NULL && first) {
        code = json_string_value(json_object_get(first, "errorCode"));
        msg = json_string_value(json_object_get(first, "message"));
    }
    if (msg == NULL) {
        code = json_string_value(json_object_get(doc, "error"));
        msg = json_string_value(json_object_get(doc, "error_description"));
    }
    char *out;
    if (msg || code)
        out = sb_xasprintf("HTTP %ld%s%.40s: %.*s", status, code ? " " : "", code ? code : "",
                           S_ERROR_TEXT_MAX, msg ? msg : "");
    else
        out = sb_xasprintf("HTTP %ld", status);
    json_decref(doc);
    return out;
}

sb_send_status_t
sb_send_sms(sb_ringcentral_t *rc, const sb_outbox_job_t *job, const char *default_cc,
            sb_sms_record_t *out, char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    char *body = sb_send_sms_body(job->from_address, job->to_address, job->body);
    sb_rc_response_t res;
    sb_err_t err = {0};
    int rc_call = sb_ringcentral_post(rc, SB_SEND_SMS_PATH, body, &res, &err);
    free(body);
    sb_send_status_t st;
    if (rc_call != 0) {
        // No usable answer: a 429 after the client's own retries, a refused token, or a
        // transport error that may have come after RingCentral took the request.
        *why = sb_xstrdup(err.msg);
        st = SB_SEND_UNCERTAIN;
    } else if (res.status >= 200 && res.status <= 299) {
        json_t *doc = json_loadb(res.body, res.len, 0, NULL);
        if (sb_send_sms_record(doc, default_cc, out) == 0) {
            st = SB_SEND_OK;
        } else { // sent, most likely, but we cannot tell its id: the search will
            *why = sb_xasprintf("HTTP %ld without a message id", res.status);
            st = SB_SEND_UNCERTAIN;
        }
        json_decref(doc);
    } else {
        *why = sb_send_rc_error(res.status, res.body, res.len);
        st = res.status >= 500 ? SB_SEND_UNCERTAIN : SB_SEND_PERMANENT;
    }
    sb_rc_response_release(&res);
    return st;
}

sb_send_status_t
sb_send_sms_find(sb_ringcentral_t *rc, const sb_outbox_job_t *job, const char *default_cc,
                 sb_sms_record_t *out, size_t max, size_t *n, char **why)
{
    *n = 0;
    *why = NULL;
    int64_t since = job->first_sending_ms - SB_SEND_SMS_SKEW_MS;
    time_t t = (time_t)(since / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char from[40];
    strftime(from, sizeof from, "%Y-%m-%dT%H%%3A%M%%3A%S.000Z", &tm);
    for (int page = 1; page <= SB_SEND_SMS_PAGES_MAX && *n < max; page++) {
        char *path = sb_xasprintf("%s?messageType=SMS&direction=Outbound&dateFrom=%s"
                                  "&perPage=%d&page=%d",
                                  SB_SEND_SMS_STORE_PATH, from, SB_SEND_SMS_PAGE, page);
        sb_rc_response_t res;
        sb_err_t err = {0};
        int rc_call = sb_ringcentral_get(rc, path, &res, &err);
        free(path);
        if (rc_call != 0 || res.status < 200 || res.status > 299) {
            *why = rc_call != 0 ? sb_xstrdup(err.msg)
                                : sb_send_rc_error(res.status, res.body, res.len);
            sb_rc_response_release(&res);
            for (size_t i = 0; i < *n; i++)
                sb_sms_record_release(&out[i]);
            *n = 0;
            return SB_SEND_RETRY;
        }
        int more = 0;
        *n += sb_send_sms_matches(res.body, res.len, job, default_cc, since, out + *n, max - *n,
                                  &more);
        sb_rc_response_release(&res);
        if (!more)
            break;
    }
    qsort(out, *n, sizeof *out, s_by_creation); // oldest first across pages too
    return *n ? SB_SEND_OK : SB_SEND_NOT_FOUND;
}
