/* fuzz_map_ringcentral - the writer's mapping of a verified RingCentral body to a row:
 * sb_map_ringcentral_sms on the raw bytes, then sb_map_event for an accepted event of
 * every source (so call and Gmail mapping are covered as they land in sb_map_event).
 * Checked besides memory safety: every event gets a verdict; a rejection or ignore has
 * a reason; a communication has an external id, the static channel/direction/provider
 * words, a match_phone in E.164 when there is one, and only text PostgreSQL accepts
 * (valid UTF-8, no NUL): a row that fails to insert would turn a good event into a
 * failed one. */
#include <string.h>
#include "map_ringcentral.h"
#include "sb_envelope.h"
#include "sb_fuzz.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

static bool
s_one_of(const char *s, const char *const *words, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, words[i]) == 0)
            return true;
    return false;
}

static void
s_check_map(const sb_map_t *map)
{
    static const char *const channels[] = {"sms", "call", "email"};
    static const char *const directions[] = {"inbound", "outbound"};
    static const char *const providers[] = {"ringcentral", "gmail"};
    if (map->kind != SB_MAP_COMMUNICATION) {
        SB_FUZZ_CHECK(map->kind == SB_MAP_IGNORED || map->kind == SB_MAP_REJECTED, "a kind");
        SB_FUZZ_CHECK(map->reason && *map->reason && sb_fuzz_text_ok(map->reason), "a reason");
        return;
    }
    const sb_comm_t *c = &map->comm;
    SB_FUZZ_CHECK(c->external_id && *c->external_id, "an external id");
    SB_FUZZ_CHECK(s_one_of(c->channel, channels, 3), "a channel");
    SB_FUZZ_CHECK(s_one_of(c->direction, directions, 2), "a direction");
    SB_FUZZ_CHECK(s_one_of(c->provider, providers, 2), "a provider");
    const char *text[] = {c->external_id, c->thread_id,  c->from_address, c->to_address,
                          c->subject,     c->body,       c->status,       c->occurred_at,
                          c->match_phone, c->match_email};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        SB_FUZZ_CHECK(sb_fuzz_text_ok(text[i]), "row text is valid UTF-8 without NUL");
    if (c->match_phone) {
        char again[SB_PHONE_E164_MAX];
        SB_FUZZ_CHECK(sb_phone_e164(c->match_phone, "1", again, sizeof again) == 0 &&
                          strcmp(again, c->match_phone) == 0,
                      "match_phone is E.164");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_map_t map;
    sb_map_ringcentral_sms((const char *)data, size, "1", &map);
    s_check_map(&map);
    sb_map_release(&map);
    sb_map_release(&map); // release is safe twice

    static const char *const sources[] = {"ringcentral_sms", "ringcentral_call", "gmail_push",
                                          "other"};
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        sb_envelope_t *env = sb_envelope_new();
        sb_envelope_set(&env->event_id, "fuzz:0123456789abcdef:1");
        sb_envelope_set(&env->source, sources[i]);
        sb_envelope_set(&env->verdict, "accepted");
        env->received_at_ms = INT64_C(1795533668000);
        free(env->body);
        env->body = sb_xmemdup(data, size);
        env->body_len = size;
        sb_map_event(env, "1", &map);
        s_check_map(&map);
        sb_map_release(&map);
        sb_envelope_destroy(&env);
    }
    return 0;
}
