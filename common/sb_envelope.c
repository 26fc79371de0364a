/* sb_envelope - the only place that knows the frame layout (see sb_envelope.h). */
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "sb_envelope.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define SB_ENVELOPE_FRAMES 9 // version .. extra; see the header
#define SB_REDACTED "[redacted]"

sb_envelope_t *
sb_envelope_new(void)
{
    sb_envelope_t *self = sb_xcalloc(1, sizeof *self);
    self->headers = sb_xstrdup("{}");
    self->body = sb_xstrdup("");
    return self;
}

void
sb_envelope_destroy(sb_envelope_t **self_p)
{
    assert(self_p);
    sb_envelope_t *self = *self_p;
    if (self == NULL)
        return;
    free(self->event_id);
    free(self->source);
    free(self->headers);
    free(self->body);
    free(self->verdict);
    free(self->reason);
    free(self->extra);
    free(self);
    *self_p = NULL;
}

void
sb_envelope_set(char **field, const char *value)
{
    char *copy = value ? sb_xstrdup(value) : NULL;
    free(*field);
    *field = copy;
}

// The frames of an event as (pointer, length) pairs, in wire order. Empty strings
// stand for unset optional fields.
typedef struct {
    const void *data[SB_ENVELOPE_FRAMES];
    size_t len[SB_ENVELOPE_FRAMES];
    char received[24]; // decimal received_at_ms lives here
} s_frames_t;

static void
s_frames_of(const sb_envelope_t *self, s_frames_t *f)
{
    snprintf(f->received, sizeof f->received, "%" PRId64, self->received_at_ms);
    const char *text[SB_ENVELOPE_FRAMES] = {SB_ENVELOPE_VERSION, self->event_id, self->source,
                                            f->received,         self->headers,  NULL,
                                            self->verdict,       self->reason,   self->extra};
    for (int i = 0; i < SB_ENVELOPE_FRAMES; i++) {
        f->data[i] = text[i] ? text[i] : "";
        f->len[i] = text[i] ? strlen(text[i]) : 0;
    }
    f->data[5] = self->body ? self->body : "";
    f->len[5] = self->body ? self->body_len : 0;
}

// Build an envelope from frames; validates everything the receiver relies on.
static sb_envelope_t *
s_from_frames(const void *const *data, const size_t *len, sb_err_t *err)
{
    if (len[0] != strlen(SB_ENVELOPE_VERSION) ||
        memcmp(data[0], SB_ENVELOPE_VERSION, len[0]) != 0) {
        sb_err_set(err, 0, "invalid envelope: unknown version");
        return NULL;
    }
    if (len[1] == 0 || len[2] == 0) {
        sb_err_set(err, 0, "invalid envelope: empty event id or source");
        return NULL;
    }
    for (int i = 0; i < SB_ENVELOPE_FRAMES; i++) {
        if (i != 5 && memchr(data[i], '\0', len[i]) != NULL) {
            sb_err_set(err, 0, "invalid envelope: NUL byte in frame %d", i);
            return NULL;
        }
    }
    char received[24];
    if (len[3] == 0 || len[3] >= sizeof received) {
        sb_err_set(err, 0, "invalid envelope: bad received_at");
        return NULL;
    }
    memcpy(received, data[3], len[3]);
    received[len[3]] = '\0';
    char *end = NULL;
    errno = 0;
    long long received_ms = strtoll(received, &end, 10);
    if (errno != 0 || *end != '\0') {
        sb_err_set(err, 0, "invalid envelope: bad received_at");
        return NULL;
    }
    sb_envelope_t *self = sb_xcalloc(1, sizeof *self);
    self->event_id = sb_xmemdup(data[1], len[1]);
    self->source = sb_xmemdup(data[2], len[2]);
    self->received_at_ms = received_ms;
    self->headers = len[4] ? sb_xmemdup(data[4], len[4]) : sb_xstrdup("{}");
    self->body = sb_xmemdup(data[5], len[5]);
    self->body_len = len[5];
    self->verdict = len[6] ? sb_xmemdup(data[6], len[6]) : NULL;
    self->reason = len[7] ? sb_xmemdup(data[7], len[7]) : NULL;
    self->extra = len[8] ? sb_xmemdup(data[8], len[8]) : NULL;
    return self;
}

static void
s_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t
s_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void *
sb_envelope_encode(const sb_envelope_t *self, size_t *len)
{
    s_frames_t f;
    s_frames_of(self, &f);
    size_t total = 0;
    for (int i = 0; i < SB_ENVELOPE_FRAMES; i++)
        total += 4 + f.len[i];
    unsigned char *out = sb_xmalloc(total);
    unsigned char *p = out;
    for (int i = 0; i < SB_ENVELOPE_FRAMES; i++) {
        s_put_u32(p, (uint32_t)f.len[i]);
        if (f.len[i])
            memcpy(p + 4, f.data[i], f.len[i]);
        p += 4 + f.len[i];
    }
    *len = total;
    return out;
}

sb_envelope_t *
sb_envelope_decode(const void *data, size_t len, sb_err_t *err)
{
    const unsigned char *p = data;
    const void *frames[SB_ENVELOPE_FRAMES];
    size_t lens[SB_ENVELOPE_FRAMES];
    size_t off = 0;
    for (int i = 0; i < SB_ENVELOPE_FRAMES; i++) {
        if (len - off < 4) {
            sb_err_set(err, 0, "invalid envelope record: truncated at frame %d", i);
            return NULL;
        }
        uint32_t n = s_get_u32(p + off);
        off += 4;
        if (n > len - off) {
            sb_err_set(err, 0, "invalid envelope record: frame %d overruns the record", i);
            return NULL;
        }
        frames[i] = p + off;
        lens[i] = n;
        off += n;
    }
    if (off != len) {
        sb_err_set(err, 0, "invalid envelope record: %zu trailing bytes", len - off);
        return NULL;
    }
    return s_from_frames(frames, lens, err);
}

int
sb_envelope_send(const sb_envelope_t *self, void *sock, int dontwait, sb_err_t *err)
{
    s_frames_t f;
    s_frames_of(self, &f);
    void *handle = zsock_resolve(sock);
    for (int i = 0; i < SB_ENVELOPE_FRAMES; i++) {
        int flags = (i < SB_ENVELOPE_FRAMES - 1 ? ZMQ_SNDMORE : 0) | (dontwait ? ZMQ_DONTWAIT : 0);
        // The first frame decides: libzmq queues a multipart message atomically, so once
        // frame 0 is accepted the rest cannot block or fail with EAGAIN.
        if (zmq_send(handle, f.data[i], f.len[i], flags) < 0) {
            sb_err_set(err, errno, "could not send event %s", self->event_id);
            return -1;
        }
    }
    return 0;
}

sb_envelope_t *
sb_envelope_recv(void *sock, sb_err_t *err)
{
    zmsg_t *msg = zmsg_recv(sock);
    if (msg == NULL) {
        sb_err_set(err, EINTR, "receive interrupted");
        return NULL;
    }
    sb_envelope_t *self = NULL;
    if (zmsg_size(msg) != SB_ENVELOPE_FRAMES) {
        sb_err_set(err, 0, "invalid envelope: %zu frames, expected %d", zmsg_size(msg),
                   SB_ENVELOPE_FRAMES);
    } else {
        const void *data[SB_ENVELOPE_FRAMES];
        size_t len[SB_ENVELOPE_FRAMES];
        zframe_t *frame = zmsg_first(msg);
        for (int i = 0; i < SB_ENVELOPE_FRAMES; i++, frame = zmsg_next(msg)) {
            data[i] = zframe_data(frame);
            len[i] = zframe_size(frame);
        }
        self = s_from_frames(data, len, err);
    }
    zmsg_destroy(&msg);
    return self;
}

// Replace the value of token= in a query string, keeping the other parameters.
static char *
s_redact_query(const char *query)
{
    // A part "token=..." (6 bytes or more) becomes "token=[redacted]" (16), so the output
    // is at most 3 times the input: sized once, as a query of many empty token= parts
    // would outgrow any fixed slack (found by fuzz/fuzz_envelope.c).
    size_t cap = 3 * strlen(query) + 1;
    char *out = sb_xmalloc(cap);
    size_t n = 0;
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t part = amp ? (size_t)(amp - p) : strlen(p);
        int is_token = part >= 6 && strncmp(p, "token=", 6) == 0;
        if (is_token) {
            n += (size_t)snprintf(out + n, cap - n, "token=" SB_REDACTED);
        } else {
            memcpy(out + n, p, part);
            n += part;
        }
        p += part;
        if (*p == '&') {
            out[n++] = '&';
            p++;
        }
    }
    out[n] = '\0';
    return out;
}

void
sb_envelope_redact(sb_envelope_t *self)
{
    static const char *const secret[] = {"authorization", "verification-token", "validation-token",
                                         "x-ringcentral-signature"};
    json_t *headers = json_loads(self->headers, 0, NULL);
    if (!json_is_object(headers)) {
        // Headers are built by the ingress; if they are unreadable keep nothing rather
        // than risk forwarding a secret.
        json_decref(headers);
        sb_envelope_set(&self->headers, "{}");
        return;
    }
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        if (json_object_get(headers, secret[i]))
            json_object_set_new(headers, secret[i], json_string(SB_REDACTED));
    const char *query = json_string_value(json_object_get(headers, ":query"));
    if (query) {
        char *clean = s_redact_query(query);
        json_object_set_new(headers, ":query", json_string(clean));
        free(clean);
    }
    char *text = json_dumps(headers, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(headers);
    if (text == NULL) { // a value that is not valid UTF-8: drop all rather than leak
        sb_envelope_set(&self->headers, "{}");
        return;
    }
    free(self->headers);
    self->headers = text;
}

int
sb_ingress_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= SB_INGRESS_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

char *
sb_event_id_format(const char *ingress_id, const char *epoch, uint64_t seq)
{
    return sb_xasprintf("%s:%s:%" PRIu64, ingress_id, epoch, seq);
}

int
sb_event_id_parse(const char *event_id, char *ingress_id, char *epoch, uint64_t *seq)
{
    const char *c1 = strchr(event_id, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c1 == NULL || c2 == NULL)
        return -1;
    size_t id_len = (size_t)(c1 - event_id), epoch_len = (size_t)(c2 - c1 - 1);
    if (id_len == 0 || id_len >= SB_INGRESS_ID_MAX || epoch_len == 0 ||
        epoch_len >= SB_INGRESS_ID_MAX)
        return -1;
    const char *digits = c2 + 1;
    if (*digits < '0' || *digits > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(digits, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    memcpy(ingress_id, event_id, id_len);
    ingress_id[id_len] = '\0';
    memcpy(epoch, c1 + 1, epoch_len);
    epoch[epoch_len] = '\0';
    *seq = value;
    return 0;
}

char *
sb_ack_topic(const char *epoch)
{
    return sb_xasprintf(SB_ACK_TOPIC_PREFIX "%s|", epoch);
}

int
sb_ack_send(void *pub, const char *const *event_ids, size_t n, sb_err_t *err)
{
    // Group by epoch in one pass per distinct epoch; batches come from few ingresses.
    char *done = sb_xcalloc(n ? n : 1, 1);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char ingress[SB_INGRESS_ID_MAX], epoch[SB_INGRESS_ID_MAX], other[SB_INGRESS_ID_MAX];
        uint64_t seq;
        if (done[i] || sb_event_id_parse(event_ids[i], ingress, epoch, &seq) != 0)
            continue;
        zmsg_t *msg = zmsg_new();
        char *topic = sb_ack_topic(epoch);
        zmsg_addstr(msg, topic);
        free(topic);
        for (size_t j = i; j < n; j++) {
            if (done[j] || sb_event_id_parse(event_ids[j], ingress, other, &seq) != 0 ||
                strcmp(other, epoch) != 0)
                continue;
            zmsg_addstr(msg, event_ids[j]);
            done[j] = 1;
        }
        if (zmsg_send(&msg, pub) != 0) {
            sb_err_set(err, errno, "could not send acks");
            zmsg_destroy(&msg);
            rc = -1;
        }
    }
    free(done);
    return rc;
}

int
sb_heartbeat_send(void *pub, const char *stage, const char *instance, const char *status_json,
                  sb_err_t *err)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, SB_HEARTBEAT_TOPIC);
    zmsg_addstr(msg, stage);
    zmsg_addstr(msg, instance);
    zmsg_addstr(msg, status_json ? status_json : "{}");
    if (zmsg_send(&msg, pub) != 0) {
        sb_err_set(err, errno, "could not send heartbeat");
        zmsg_destroy(&msg);
        return -1;
    }
    return 0;
}

sb_backmsg_t *
sb_backmsg_recv(void *sub, sb_err_t *err)
{
    zmsg_t *msg = zmsg_recv(sub);
    if (msg == NULL) {
        sb_err_set(err, EINTR, "receive interrupted");
        return NULL;
    }
    sb_backmsg_t *self = NULL;
    char *topic = zmsg_popstr(msg);
    if (topic && strncmp(topic, SB_ACK_TOPIC_PREFIX, strlen(SB_ACK_TOPIC_PREFIX)) == 0) {
        self = sb_xcalloc(1, sizeof *self);
        self->is_ack = 1;
        self->n_event_ids = zmsg_size(msg);
        self->event_ids = sb_xcalloc(self->n_event_ids, sizeof(char *));
        for (size_t i = 0; i < self->n_event_ids; i++) {
            zframe_t *frame = zmsg_pop(msg);
            self->event_ids[i] = sb_xmemdup(zframe_data(frame), zframe_size(frame));
            zframe_destroy(&frame);
        }
    } else if (topic && strcmp(topic, SB_HEARTBEAT_TOPIC) == 0 && zmsg_size(msg) == 3) {
        self = sb_xcalloc(1, sizeof *self);
        self->stage = zmsg_popstr(msg);
        self->instance = zmsg_popstr(msg);
        self->status_json = zmsg_popstr(msg);
    } else {
        sb_err_set(err, 0, "invalid message on the ack socket");
    }
    free(topic); // zmsg_popstr allocates with malloc
    zmsg_destroy(&msg);
    return self;
}

void
sb_backmsg_destroy(sb_backmsg_t **self_p)
{
    assert(self_p);
    sb_backmsg_t *self = *self_p;
    if (self == NULL)
        return;
    for (size_t i = 0; i < self->n_event_ids; i++)
        free(self->event_ids[i]);
    free(self->event_ids);
    free(self->stage);
    free(self->instance);
    free(self->status_json);
    free(self);
    *self_p = NULL;
}
