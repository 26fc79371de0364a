/* fuzz_pubsub - the Pub/Sub push envelope of a Gmail notification: the JSON body,
 * message.data as standard base64 or base64url (sb_b64_decode), and the decoded
 * {"emailAddress","historyId"} document, with historyId a string or a number (SPEC
 * "Provider quirks"). NEEDSWORK(#9): call the enricher's own push decoder once it has
 * a public one; until then this reads the envelope the way the SPEC says to.
 * Checked besides memory safety: sb_b64 round trips (decode(encode(x)) == x for every
 * input and both alphabets; a string that decodes re-encodes to a string that decodes
 * to the same bytes), and the decoded output is NUL-terminated. */
#include <string.h>
#include <jansson.h>
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
    const char *id = json_string_value(json_object_get(message, "messageId"));
    bool ok = false;
    if (data && id) {
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_push((const char *)data, size);
    size_t len = 0;
    unsigned char *raw = s_decode_any((const char *)data, size, &len);
    free(raw);
    s_check_encode(data, size, SB_B64_STD);
    s_check_encode(data, size, SB_B64_URL | SB_B64_NO_PAD);
    return 0;
}
