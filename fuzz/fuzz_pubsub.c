/* fuzz_pubsub - the Gmail push as the enricher reads it: the Pub/Sub envelope
 * (sb_gmail_pubsub_decode: JSON body, message.data as standard base64 or base64url, the
 * decoded {"emailAddress","historyId"} with historyId a string or a number, SPEC
 * "Provider quirks"), the Gmail API pages it then reads (history.list, messages.list,
 * getProfile), and sb_b64 under all of it.
 * Checked besides memory safety: a decoded push names a mailbox and a decimal history
 * id, and an independent reading of the SPEC with jansson agrees that it is a push;
 * page parsers return decimal history ids and unique message ids; sb_b64 round trips
 * (decode(encode(x)) == x for both alphabets; what decodes re-encodes to the same
 * bytes) and its output is NUL-terminated. */
#include <string.h>
#include <jansson.h>
#include "gmail.h"
#include "sb_b64.h"
#include "sb_fuzz.h"
#include "sb_mem.h"
#include "sb_banned.h"

static void
s_check_encode(const uint8_t *data, size_t size, int flags)
{
    char *text = sb_b64_encode(data, size, flags);
    size_t len = 0;
    unsigned char *back = sb_b64_decode(text, strlen(text), flags & ~SB_B64_NO_PAD, &len);
    SB_FUZZ_CHECK(back != NULL && len == size && memcmp(back, data, size) == 0,
                  "decode(encode(x)) == x");
    free(back);
    free(text);
}

// Decode text as the enricher must: either alphabet, padding optional.
static unsigned char *
s_decode_any(const char *text, size_t text_len, size_t *len)
{
    unsigned char *out = sb_b64_decode(text, text_len, SB_B64_ANY, len);
    if (out == NULL)
        return NULL;
    SB_FUZZ_CHECK(out[*len] == '\0', "decoded bytes are NUL-terminated");
    SB_FUZZ_CHECK(*len <= text_len / 4 * 3 + 2, "decoded size is bounded by the input");
    char *again = sb_b64_encode(out, *len, SB_B64_URL | SB_B64_NO_PAD);
    size_t again_len = 0;
    unsigned char *twice = sb_b64_decode(again, strlen(again), SB_B64_URL, &again_len);
    SB_FUZZ_CHECK(twice && again_len == *len && memcmp(twice, out, *len) == 0,
                  "what decodes re-encodes to the same bytes");
    free(twice);
    free(again);
    return out;
}

// The push body: returns whether it named a mailbox and a history id.
static bool
s_push(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const json_t *message = json_object_get(root, "message");
    const char *data = json_string_value(json_object_get(message, "data"));
    bool ok = false;
    if (data) { // messageId is not needed to find the mailbox
        size_t n = 0;
        unsigned char *decoded =
            s_decode_any(data, json_string_length(json_object_get(message, "data")), &n);
        json_t *doc = decoded ? json_loadb((const char *)decoded, n, 0, NULL) : NULL;
        const char *mailbox = json_string_value(json_object_get(doc, "emailAddress"));
        const json_t *history = json_object_get(doc, "historyId");
        ok = mailbox && (json_is_string(history) ||
                         (json_is_integer(history) && json_integer_value(history) >= 0));
        json_decref(doc);
        free(decoded);
    }
    json_decref(root);
    return ok;
}

static bool
s_decimal(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void
s_check_ids(const sb_gmail_ids_t *ids)
{
    json_t *seen = json_object();
    for (size_t i = 0; i < ids->n; i++) {
        SB_FUZZ_CHECK(ids->ids[i] && *ids->ids[i] && sb_fuzz_text_ok(ids->ids[i]), "an id");
        SB_FUZZ_CHECK(json_object_get(seen, ids->ids[i]) == NULL, "ids do not repeat");
        json_object_set_new(seen, ids->ids[i], json_true());
    }
    json_decref(seen);
}

// The enricher's parsers of what Pub/Sub and the Gmail API send.
static void
s_enricher(const char *text, size_t len, bool spec_says_push)
{
    sb_err_t err = {0};
    char *email = NULL, *history = NULL, *next = NULL;
    if (sb_gmail_pubsub_decode(text, len, &email, &history, &err) == 0) {
        SB_FUZZ_CHECK(email && *email && sb_fuzz_text_ok(email), "a push names a mailbox");
        SB_FUZZ_CHECK(s_decimal(history), "a push has a decimal history id");
        SB_FUZZ_CHECK(spec_says_push, "the enricher accepts only what the SPEC calls a push");
    } else {
        SB_FUZZ_CHECK(err.msg[0] != '\0', "a refused push says why");
    }
    free(email);
    free(history);
    history = NULL;
    sb_gmail_ids_t ids;
    sb_gmail_ids_init(&ids);
    if (sb_gmail_history_page(text, len, &ids, &next, &history, &err) == 0)
        SB_FUZZ_CHECK(history == NULL || s_decimal(history), "a page's history id is decimal");
    s_check_ids(&ids);
    free(next);
    free(history);
    history = NULL;
    sb_gmail_message_list(text, len, &ids, &err);
    s_check_ids(&ids);
    sb_gmail_ids_release(&ids);
    if (sb_gmail_profile_history(text, len, &history, &err) == 0)
        SB_FUZZ_CHECK(s_decimal(history), "a profile's history id is decimal");
    free(history);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_enricher((const char *)data, size, s_push((const char *)data, size));
    size_t len = 0;
    unsigned char *raw = s_decode_any((const char *)data, size, &len);
    free(raw);
    s_check_encode(data, size, SB_B64_STD);
    s_check_encode(data, size, SB_B64_URL | SB_B64_NO_PAD);
    return 0;
}
