/* sb_envelope - the event as it travels ingress -> verifier -> (enricher) -> writer
 * (DESIGN.md "The event envelope"), and the two small messages that flow back to the
 * ingress: acks and stage heartbeats. The frame layout lives only in sb_envelope.c.
 *
 * Event: one ZeroMQ multipart message, frames
 *   [0] "SB1"            version
 *   [1] event_id         "<ingress_id>:<spool_epoch>:<seq>", assigned once by the ingress;
 *                        the idempotency key of webhook_events
 *   [2] source           "ringcentral_sms" | "ringcentral_call" | "gmail_push"
 *   [3] received_at_ms   decimal, ms since the epoch (wall clock at the ingress)
 *   [4] headers          JSON object of the selected request headers, lower-case names;
 *                        ":query" holds the raw query string. Secrets are removed by the
 *                        verifier (sb_envelope_redact) before the event goes further.
 *   [5] body             the raw request body, byte for byte
 *   [6] verdict          "" until the verifier sets "accepted" or "rejected"
 *   [7] reason           "" or why (e.g. "bad_verification_token")
 *   [8] extra            "" or a JSON document added by a later stage (fetched email ...)
 * The same frames, each as [u32 length, little endian][bytes], are the spool record.
 *
 * Ack (writer -> ingress, PUB -> SUB): frames ["ack|<spool_epoch>|"][event_id]...
 * The ingress subscribes to the topic of its spool's epoch (which survives restarts and
 * renames, unlike a host name); an ack only says "committed, stop resending".
 * Heartbeat (any stage -> ingress, PUB -> SUB): frames ["hb|"][stage][instance][JSON]
 * where JSON is the stage's status, e.g. {"db_ok":true} from a writer. */
#ifndef SB_ENVELOPE_H
#define SB_ENVELOPE_H
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

#define SB_ENVELOPE_VERSION "SB1"
#define SB_ACK_TOPIC_PREFIX "ack|"
#define SB_HEARTBEAT_TOPIC "hb|"
#define SB_INGRESS_ID_MAX 64

typedef struct {
    char *event_id;         // owned; see above
    char *source;           // owned
    int64_t received_at_ms; // wall clock at the ingress
    char *headers;          // owned JSON text, "{}" when none
    char *body;             // owned, body_len bytes plus a NUL (may contain NULs)
    size_t body_len;
    char *verdict; // owned or NULL: "accepted" | "rejected"
    char *reason;  // owned or NULL
    char *extra;   // owned or NULL, JSON text
} sb_envelope_t;

sb_envelope_t *sb_envelope_new(void); // all fields NULL/0, headers "{}"
void sb_envelope_destroy(sb_envelope_t **self_p);
// Replace a string field (frees the old value, copies the new one; NULL clears it).
void sb_envelope_set(char **field, const char *value);

// Spool form: a new buffer the caller frees, *len set.
void *sb_envelope_encode(const sb_envelope_t *self, size_t *len);
sb_envelope_t *sb_envelope_decode(const void *data, size_t len, sb_err_t *err);

// Multipart form over a zsock_t * (CZMQ). send: 0, or -1 with err (EAGAIN when
// dontwait and the socket would block); the envelope is not consumed.
int sb_envelope_send(const sb_envelope_t *self, void *sock, int dontwait, sb_err_t *err);
// Receive one event; NULL with err on a malformed message (it is consumed) or when
// interrupted (err->code EINTR).
sb_envelope_t *sb_envelope_recv(void *sock, sb_err_t *err);

// Remove secrets from the headers JSON: "authorization", "verification-token",
// "validation-token", "x-ringcentral-signature" get "[redacted]", and a token=
// parameter in ":query" gets its value replaced by "[redacted]".
void sb_envelope_redact(sb_envelope_t *self);

// Event ids.
char *sb_event_id_format(const char *ingress_id, const char *epoch, uint64_t seq);
// Split an id into its parts (buffers of SB_INGRESS_ID_MAX); 0 or -1 when malformed.
int sb_event_id_parse(const char *event_id, char *ingress_id, char *epoch, uint64_t *seq);
// Ingress ids are 1..63 characters of [A-Za-z0-9_.-].
int sb_ingress_id_valid(const char *id);

// Acks: send the event ids to the ingress that owns them (one message per epoch;
// malformed ids are skipped).
int sb_ack_send(void *pub, const char *const *event_ids, size_t n, sb_err_t *err);
// The subscription topic of one spool: "ack|<epoch>|" (caller frees).
char *sb_ack_topic(const char *epoch);

// Heartbeats (sent about once a second by every stage).
int sb_heartbeat_send(void *pub, const char *stage, const char *instance, const char *status_json,
                      sb_err_t *err);

// What the ingress receives on its SUB socket: one of the two above.
typedef struct {
    int is_ack;       // 1: ack, event_ids set; 0: heartbeat, the rest set
    char **event_ids; // owned array of owned strings
    size_t n_event_ids;
    char *stage;       // owned
    char *instance;    // owned
    char *status_json; // owned
} sb_backmsg_t;
// NULL with err when malformed (consumed) or interrupted.
sb_backmsg_t *sb_backmsg_recv(void *sub, sb_err_t *err);
void sb_backmsg_destroy(sb_backmsg_t **self_p);

#endif
