/* fuzz_envelope - sb_envelope_decode on arbitrary bytes (a spool record, which is also
 * the frame list of a ZeroMQ event), then what the stages do with a decoded event:
 * parse its id, redact its headers, encode it again.
 * Checked besides memory safety: a decoded event re-encodes to a record that decodes to
 * the same fields (the spool and the wire must not change an event), and redaction
 * leaves JSON text behind that holds none of the secret header values it was given. */
#include <jansson.h>
#include <string.h>
#include "sb_envelope.h"
#include "sb_fuzz.h"
#include "sb_mem.h"
#include "sb_banned.h"

static bool
s_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void
s_check_round_trip(const sb_envelope_t *env)
{
    size_t len;
    void *again = sb_envelope_encode(env, &len);
    sb_err_t err = {0};
    sb_envelope_t *back = sb_envelope_decode(again, len, &err);
    SB_FUZZ_CHECK(back != NULL, "an encoded envelope decodes");
    SB_FUZZ_CHECK(s_same(back->event_id, env->event_id) && s_same(back->source, env->source) &&
                      back->received_at_ms == env->received_at_ms &&
                      s_same(back->headers, env->headers) && back->body_len == env->body_len &&
                      memcmp(back->body, env->body, env->body_len) == 0 &&
                      s_same(back->verdict, env->verdict) && s_same(back->reason, env->reason) &&
                      s_same(back->extra, env->extra),
                  "encode then decode keeps every field");
    sb_envelope_destroy(&back);
    free(again);
}

// After sb_envelope_redact, no secret-bearing header may keep its value.
static void
s_check_redacted(const sb_envelope_t *env)
{
    static const char *const names[] = {"authorization", "verification-token", "validation-token",
                                        "x-ringcentral-signature"};
    json_t *headers = json_loads(env->headers, 0, NULL);
    if (!json_is_object(headers)) {
        json_decref(headers);
        return; // not JSON: redact leaves it to the verifier, which replaces it with "{}"
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const json_t *v = json_object_get(headers, names[i]);
        SB_FUZZ_CHECK(v == NULL ||
                          (json_is_string(v) && strcmp(json_string_value(v), "[redacted]") == 0),
                      "a secret header is redacted");
    }
    const char *query = json_string_value(json_object_get(headers, ":query"));
    for (const char *p = query; p && *p;) {
        size_t part = strcspn(p, "&");
        if (strncmp(p, "token=", 6) == 0)
            SB_FUZZ_CHECK(part == strlen("token=[redacted]") &&
                              strncmp(p, "token=[redacted]", part) == 0,
                          "a token= query value is redacted");
        p += part;
        p += *p == '&';
    }
    json_decref(headers);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_err_t err = {0};
    sb_envelope_t *env = sb_envelope_decode(data, size, &err);
    if (env == NULL) {
        SB_FUZZ_CHECK(err.msg[0] != '\0', "a refusal says why");
        return 0;
    }
    SB_FUZZ_CHECK(env->event_id && *env->event_id && env->source && *env->source,
                  "id and source are set");
    SB_FUZZ_CHECK(env->body[env->body_len] == '\0', "the body is NUL-terminated");
    char ingress_id[SB_INGRESS_ID_MAX], epoch[SB_INGRESS_ID_MAX];
    uint64_t seq;
    if (sb_event_id_parse(env->event_id, ingress_id, epoch, &seq) == 0) {
        // Event ids come only from an ingress, so parsing splits rather than validates.
        SB_FUZZ_CHECK(*ingress_id && *epoch && !strchr(ingress_id, ':') && !strchr(epoch, ':'),
                      "an id splits at its first two colons into non-empty parts");
        char *id = sb_event_id_format(ingress_id, epoch, seq);
        SB_FUZZ_CHECK(strncmp(id, env->event_id, strlen(ingress_id) + strlen(epoch) + 2) == 0,
                      "format(parse(id)) keeps the ingress id and epoch");
        free(id);
    }
    s_check_round_trip(env);
    sb_envelope_redact(env);
    s_check_redacted(env);
    s_check_round_trip(env);
    sb_envelope_destroy(&env);
    return 0;
}
