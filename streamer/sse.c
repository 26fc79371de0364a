/* sse - event framing, token check, resume and filter (see the header). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "sse.h"
#include "sb_mem.h"
#include "sb_banned.h"

char *
sb_sse_event(const char *epoch, uint64_t seq, const char *event, const char *data, size_t *len)
{
    size_t lines = 1;
    for (const char *p = data; *p; p++)
        lines += *p == '\n' || *p == '\r';
    size_t cap = strlen(epoch) + strlen(event) + strlen(data) + lines * 7 + 64;
    char *out = sb_xmalloc(cap);
    int n = snprintf(out, cap, "id: %s-%" PRIu64 "\nevent: %s\n", epoch, seq, event);
    size_t off = (size_t)n;
    const char *p = data;
    for (;;) { // "data: " before every line; a CR is a line end too, so it goes
        size_t k = strcspn(p, "\r\n");
        memcpy(out + off, "data: ", 6);
        memcpy(out + off + 6, p, k);
        off += 6 + k;
        out[off++] = '\n';
        p += k;
        if (*p == '\0')
            break;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    out[off++] = '\n';
    out[off] = '\0';
    *len = off;
    return out;
}

static int
s_equal(const char *given, const char *token)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)given, strlen(given), a);
    SHA256((const unsigned char *)token, strlen(token), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

int
sb_sse_auth_ok(const char *authorization, const char *query_token, const char *token)
{
    if (token == NULL || token[0] == '\0')
        return 0;
    int ok = 0;
    if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0) {
        const char *v = authorization + 7;
        while (*v == ' ')
            v++;
        ok |= s_equal(v, token);
    }
    if (query_token)
        ok |= s_equal(query_token, token);
    return ok;
}

int
sb_sse_resume(const char *last_event_id, const char *epoch, uint64_t *seq)
{
    if (last_event_id == NULL)
        return 0;
    size_t n = strlen(epoch);
    if (strncmp(last_event_id, epoch, n) != 0 || last_event_id[n] != '-')
        return 0;
    const char *digits = last_event_id + n + 1;
    if (*digits == '\0' || strlen(digits) > 19)
        return 0;
    for (const char *p = digits; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    *seq = strtoull(digits, NULL, 10);
    return 1;
}

int
sb_sse_matches(const char *data, int64_t customer_id)
{
    if (customer_id == 0)
        return 1;
    json_t *doc = json_loads(data, 0, NULL);
    const json_t *c = json_object_get(doc, "customer_id");
    int match = json_is_integer(c) && json_integer_value(c) == customer_id;
    json_decref(doc);
    return match;
}
