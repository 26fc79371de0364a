/* sb-writer-batch - drive the writer's batch code (db.h) directly, for tests and
 * measurements; not part of the pipeline.
 *
 *   sb-writer-batch apply [--per-event] DATABASE_URL < batches.json
 *       {"default_cc": "1", "batches": [[event, ...], ...]}, event = {"event_id",
 *       "source", "received_at_ms", "headers" (JSON text), "body" or "body_hex",
 *       "verdict", "reason", "extra"}. Applies the migrations, maps each event as the
 *       writer does (sb_map_event) and stores each batch with sb_db_write, setting a
 *       poison event aside as sb-writer does (alone, then as 'failed'). Prints
 *       {"batches": [{"status", "poison", "events": [{"event_id", "outcome"}]}]}: status and
 *       poison of the first attempt, outcome after the poison handling (null: redelivery).
 *   sb-writer-batch bench [--per-event] DATABASE_URL BATCH_ROWS BATCHES
 *       Stores BATCHES batches of BATCH_ROWS new instant SMS (a third from known
 *       customers, one in ten a duplicate of an earlier message) and prints the time of
 *       each sb_db_write: events/s, median, p90, max.
 *   sb-writer-batch push PUSH_ENDPOINT ACK_ENDPOINT EVENTS
 *       Plays the ingress for a running sb-writer: binds ACK_ENDPOINT (SUB), waits for
 *       the writer's heartbeat, connects PUSH_ENDPOINT, sends EVENTS accepted instant SMS
 *       and waits for every ack; prints the time from the first send to the last ack.
 * --per-event: one statement per event (sb_db_set_setwise 0), the writer's old path. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include <jansson.h>
#include "db.h"
#include "map_ringcentral.h"
#include "migrate.h"
#include "sb_envelope.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define S_HEADERS                                                                                  \
    "{\"content-type\":\"application/json; charset=UTF-8\",\"user-agent\":\"RingCentral"           \
    "-Webhook/1.0\",\"verification-token\":\"[redacted]\",\"x-forwarded-for\":\"10.1.2.3\"}"

static double
s_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
s_usage(void)
{
    fprintf(stderr, "usage: sb-writer-batch apply [--per-event] DATABASE_URL < batches.json\n"
                    "       sb-writer-batch bench [--per-event] DATABASE_URL BATCH_ROWS BATCHES\n"
                    "       sb-writer-batch push PUSH_ENDPOINT ACK_ENDPOINT EVENTS\n");
    return 2;
}

static sb_db_t *
s_open(const char *url, const char *cc, int per_event)
{
    sb_err_t err = {0};
    sb_db_t *db = sb_db_new(url);
    if (sb_db_connect(db, NULL, NULL, &err) != 0 || sb_migrate(sb_db_conn(db), cc, &err) != 0) {
        fprintf(stderr, "sb-writer-batch: %s\n", err.msg);
        sb_db_destroy(&db);
        return NULL;
    }
    sb_db_set_setwise(db, !per_event);
    return db;
}

static const char *
s_status_name(sb_db_status_t st)
{
    static const char *const names[] = {"ok", "data", "transient", "conn"};
    return names[st];
}

// An instant-SMS notification like RingCentral's (and tests/integration/harness.py's).
static char *
s_sms_body(const char *id, const char *from, const char *text)
{
    return sb_xasprintf(
        "{\"uuid\":\"u-%s\",\"event\":\"/restapi/v1.0/account/~/extension/~/message-store/"
        "instant?type=SMS\",\"timestamp\":\"2026-11-24T10:00:00.000Z\",\"subscriptionId\":"
        "\"sub-bench\",\"ownerId\":\"401234569008\",\"body\":{\"id\":\"%s\",\"to\":[{"
        "\"phoneNumber\":\"+16505550100\",\"name\":\"Front Desk\"}],\"from\":{\"phoneNumber\":"
        "\"%s\",\"name\":\"Caller\"},\"type\":\"SMS\",\"creationTime\":\"2026-11-24T10:00:00."
        "000Z\",\"lastModifiedTime\":\"2026-11-24T10:00:00.000Z\",\"readStatus\":\"Unread\","
        "\"priority\":\"Normal\",\"attachments\":[{\"id\":\"%s\",\"type\":\"Text\","
        "\"contentType\":\"text/plain\"}],\"direction\":\"Inbound\",\"availability\":\"Alive\","
        "\"subject\":\"%s\",\"messageStatus\":\"Received\",\"conversation\":{\"id\":"
        "\"7876416245344257449\"},\"eventType\":\"Create\"}}",
        id, id, from, id, text);
}

static sb_envelope_t *
s_sms_envelope(const char *event_id, const char *msg_id, const char *from)
{
    sb_envelope_t *env = sb_envelope_new();
    sb_envelope_set(&env->event_id, event_id);
    sb_envelope_set(&env->source, "ringcentral_sms");
    sb_envelope_set(&env->headers, S_HEADERS);
    sb_envelope_set(&env->verdict, "accepted");
    env->received_at_ms = (int64_t)time(NULL) * 1000;
    free(env->body);
    env->body = s_sms_body(msg_id, from, "Hi, is my order #48213 ready for pickup?");
    env->body_len = strlen(env->body);
    return env;
}

// ---- apply ------------------------------------------------------------------------------

static int
s_hex(const char *hex, char **out, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0)
        return -1;
    *out = sb_xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = (char)v;
    }
    (*out)[n / 2] = '\0';
    *len = n / 2;
    return 0;
}

static sb_envelope_t *
s_envelope_from_json(const json_t *ev)
{
    sb_envelope_t *env = sb_envelope_new();
    sb_envelope_set(&env->event_id, json_string_value(json_object_get(ev, "event_id")));
    sb_envelope_set(&env->source, json_string_value(json_object_get(ev, "source")));
    const char *headers = json_string_value(json_object_get(ev, "headers"));
    if (headers)
        sb_envelope_set(&env->headers, headers);
    sb_envelope_set(&env->verdict, json_string_value(json_object_get(ev, "verdict")));
    sb_envelope_set(&env->reason, json_string_value(json_object_get(ev, "reason")));
    sb_envelope_set(&env->extra, json_string_value(json_object_get(ev, "extra")));
    env->received_at_ms = json_integer_value(json_object_get(ev, "received_at_ms"));
    const char *hex = json_string_value(json_object_get(ev, "body_hex"));
    const char *body = json_string_value(json_object_get(ev, "body"));
    free(env->body); // sb_envelope_new's ""
    env->body = NULL;
    if (hex && s_hex(hex, &env->body, &env->body_len) == 0)
        return env;
    env->body = sb_xstrdup(body ? body : "");
    env->body_len = strlen(env->body);
    return env;
}

// Store one event alone; if its data fails there too, as 'failed' (writer.c s_write_alone).
static void
s_write_alone(sb_db_t *db, sb_db_event_t *one, sb_err_t *err)
{
    if (sb_db_write(db, one, 1, err) == SB_DB_DATA)
        sb_db_write_failed(db, one, err->msg, err);
}

// sb-writer's poison handling after a batch failed on its data (writer.c
// s_write_around_poison), without its sockets: the poison alone, then the rest again.
static sb_db_status_t
s_around_poison(sb_db_t *db, sb_db_event_t *evs, size_t n, size_t poison, sb_err_t *err)
{
    int *done = sb_xcalloc(n, sizeof *done);
    sb_db_event_t *pending = sb_xcalloc(n, sizeof *pending);
    size_t *where = sb_xcalloc(n, sizeof *where);
    sb_db_status_t st = SB_DB_OK;
    for (;;) {
        if (poison == n) { // the COMMIT failed, no culprit named: everything alone
            for (size_t i = 0; i < n; i++)
                if (!done[i])
                    s_write_alone(db, &evs[i], err);
            break;
        }
        s_write_alone(db, &evs[poison], err);
        done[poison] = 1;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!done[i]) {
                pending[k] = evs[i];
                where[k++] = i;
            }
        if (k == 0)
            break;
        st = sb_db_write(db, pending, k, err);
        poison = n;
        for (size_t j = 0; j < k; j++) {
            evs[where[j]].outcome = pending[j].outcome;
            if (st == SB_DB_DATA && pending[j].failed)
                poison = where[j];
        }
        if (st != SB_DB_DATA)
            break;
    }
    free(done);
    free(pending);
    free(where);
    return st;
}

static json_t *
s_apply_batch(sb_db_t *db, const json_t *batch, const char *cc)
{
    size_t n = json_array_size(batch);
    sb_envelope_t **envs = sb_xcalloc(n + 1, sizeof *envs);
    sb_map_t *maps = sb_xcalloc(n + 1, sizeof *maps);
    sb_db_event_t *evs = sb_xcalloc(n + 1, sizeof *evs);
    for (size_t i = 0; i < n; i++) {
        envs[i] = s_envelope_from_json(json_array_get(batch, i));
        sb_envelope_redact(envs[i]);
        sb_map_event(envs[i], cc, &maps[i]);
        evs[i].env = envs[i];
        evs[i].map = &maps[i];
    }
    sb_err_t err = {0};
    sb_db_status_t first = sb_db_write(db, evs, n, &err);
    json_t *out = json_pack("{s:s}", "status", s_status_name(first));
    json_object_set_new(out, "poison", json_null());
    size_t poison = n;
    for (size_t i = 0; i < n && first == SB_DB_DATA; i++)
        if (evs[i].failed) {
            json_object_set_new(out, "poison", json_string(envs[i]->event_id));
            poison = i;
        }
    sb_db_status_t st = first;
    if (first == SB_DB_DATA)
        st = s_around_poison(db, evs, n, poison, &err);
    json_object_set_new(out, "final", json_string(s_status_name(st)));
    json_t *events = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(events, json_pack("{s:s,s:s?}", "event_id", envs[i]->event_id,
                                                "outcome", evs[i].outcome));
    json_object_set_new(out, "events", events);
    for (size_t i = 0; i < n; i++) {
        sb_map_release(&maps[i]);
        sb_envelope_destroy(&envs[i]);
    }
    free(envs);
    free(maps);
    free(evs);
    return out;
}

static int
s_apply(const char *url, int per_event)
{
    json_error_t jerr;
    json_t *in = json_loadf(stdin, 0, &jerr);
    if (in == NULL) {
        fprintf(stderr, "sb-writer-batch: stdin: %s (line %d)\n", jerr.text, jerr.line);
        return 2;
    }
    const char *cc = json_string_value(json_object_get(in, "default_cc"));
    cc = cc ? cc : "1";
    sb_db_t *db = s_open(url, cc, per_event);
    if (db == NULL) {
        json_decref(in);
        return 1;
    }
    json_t *results = json_array();
    size_t i;
    json_t *batch;
    json_array_foreach(json_object_get(in, "batches"), i, batch)
    {
        // A statement that names the batch, for a test that reads the server's log.
        char marker[64];
        snprintf(marker, sizeof marker, "SELECT 'sb-writer-batch batch %zu'", i);
        PQclear(PQexec(sb_db_conn(db), marker));
        json_array_append_new(results, s_apply_batch(db, batch, cc));
    }
    json_t *out = json_pack("{s:o}", "batches", results);
    json_dumpf(out, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(out);
    json_decref(in);
    sb_db_destroy(&db);
    return 0;
}

// ---- bench ------------------------------------------------------------------------------

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int
s_bench(const char *url, int per_event, long rows, long batches)
{
    sb_db_t *db = s_open(url, "1", per_event);
    if (db == NULL)
        return 1;
    PGresult *res = PQexec(sb_db_conn(db), "INSERT INTO customers (name, phone) SELECT 'bench ' "
                                           "|| g, '(415) 555-' || lpad(g::text, 4, '0') FROM "
                                           "generate_series(1, 1000) g "
                                           "WHERE NOT EXISTS (SELECT 1 FROM customers "
                                           "WHERE name = 'bench 1')");
    PQclear(res);
    sb_envelope_t **envs = sb_xcalloc((size_t)rows, sizeof *envs);
    sb_map_t *maps = sb_xcalloc((size_t)rows, sizeof *maps);
    sb_db_event_t *evs = sb_xcalloc((size_t)rows, sizeof *evs);
    double *secs = sb_xcalloc((size_t)batches, sizeof *secs);
    unsigned run = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    double total = 0;
    uint64_t msg = 0;
    for (long b = 0; b < batches; b++) {
        for (long i = 0; i < rows; i++, msg++) {
            char event_id[96], msg_id[48], from[24];
            snprintf(event_id, sizeof event_id, "bench:%08x:%" PRIu64, run, msg);
            // One in ten repeats the message of the event before (a provider retry).
            uint64_t m = msg % 10 == 9 ? msg - 1 : msg;
            snprintf(msg_id, sizeof msg_id, "9%08x%010" PRIu64, run, m);
            // A third from a known customer (the first 1,000 of 415-555), the rest unknown.
            snprintf(from, sizeof from, "+1415555%04" PRIu64,
                     m % 3 == 0 ? m % 1000 + 1 : 5000 + m % 5000);
            envs[i] = s_sms_envelope(event_id, msg_id, from);
            sb_map_event(envs[i], "1", &maps[i]);
            evs[i].env = envs[i];
            evs[i].map = &maps[i];
        }
        sb_err_t err = {0};
        double t0 = s_now_s();
        sb_db_status_t st = sb_db_write(db, evs, (size_t)rows, &err);
        secs[b] = s_now_s() - t0;
        total += secs[b];
        for (long i = 0; i < rows; i++) {
            sb_map_release(&maps[i]);
            sb_envelope_destroy(&envs[i]);
        }
        if (st != SB_DB_OK) {
            fprintf(stderr, "sb-writer-batch: batch %ld: %s\n", b, err.msg);
            break;
        }
    }
    qsort(secs, (size_t)batches, sizeof *secs, s_cmp_double);
    printf("%s: %ld batches of %ld: %.0f events/s, batch median %.2f ms, p90 %.2f ms, max %.2f "
           "ms\n",
           per_event ? "per-event" : "set-wise", batches, rows, (double)(rows * batches) / total,
           secs[batches / 2] * 1000, secs[batches * 9 / 10] * 1000, secs[batches - 1] * 1000);
    free(envs);
    free(maps);
    free(evs);
    free(secs);
    sb_db_destroy(&db);
    return 0;
}

// ---- push -------------------------------------------------------------------------------

static int
s_push(const char *push_ep, const char *ack_ep, long events)
{
    zsys_handler_set(NULL);
    zsock_t *sub = zsock_new(ZMQ_SUB);
    zsock_t *push = zsock_new(ZMQ_PUSH);
    zsock_set_rcvhwm(sub, 0); // acks are never dropped, as at the ingress
    zsock_set_subscribe(sub, SB_ACK_TOPIC_PREFIX);
    zsock_set_subscribe(sub, SB_HEARTBEAT_TOPIC);
    if (zsock_attach(sub, ack_ep, true) != 0 || zsock_attach(push, push_ep, false) != 0) {
        fprintf(stderr, "sb-writer-batch: cannot attach %s / %s\n", ack_ep, push_ep);
        zsock_destroy(&sub);
        zsock_destroy(&push);
        return 1;
    }
    // A PUB drops what it sends before our subscription reached it: wait for the
    // writer's first heartbeat, which proves the ack path works, before any event goes.
    zpoller_t *poller = zpoller_new(sub, NULL);
    int linked = 0;
    for (int tries = 0; tries < 10 && !linked && zpoller_wait(poller, 1000) != NULL; tries++) {
        sb_err_t err = {0};
        sb_backmsg_t *msg = sb_backmsg_recv(sub, &err);
        linked = msg && !msg->is_ack && msg->stage && strcmp(msg->stage, "writer") == 0;
        sb_backmsg_destroy(&msg);
    }
    if (!linked) {
        fprintf(stderr, "sb-writer-batch: no heartbeat from a writer on %s\n", ack_ep);
        zpoller_destroy(&poller);
        zsock_destroy(&sub);
        zsock_destroy(&push);
        return 1;
    }
    unsigned run = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    char epoch[24];
    snprintf(epoch, sizeof epoch, "e%08x", run);
    long acked = 0;
    double t0 = s_now_s(), last = t0;
    for (long i = 0; i < events || acked < events;) {
        if (i < events) {
            char *event_id = sb_event_id_format("bench", epoch, (uint64_t)i + 1);
            char msg_id[48], from[24];
            snprintf(msg_id, sizeof msg_id, "9%08x%010ld", run, i);
            snprintf(from, sizeof from, "+1415555%04ld",
                     i % 3 == 0 ? i % 1000 + 1 : 5000 + i % 5000);
            sb_envelope_t *env = s_sms_envelope(event_id, msg_id, from);
            sb_err_t err = {0};
            int sent = sb_envelope_send(env, push, 1, &err) == 0;
            sb_envelope_destroy(&env);
            free(event_id);
            if (sent) {
                i++;
                continue; // the acks queue at the SUB meanwhile (no high-water mark)
            }
        }
        if (s_now_s() - last > 30) { // heartbeats keep coming: time the acks alone
            fprintf(stderr, "sb-writer-batch: no ack for 30 s (%ld of %ld)\n", acked, events);
            break;
        }
        if (zpoller_wait(poller, 1000) == NULL)
            continue;
        sb_err_t err = {0};
        sb_backmsg_t *msg = sb_backmsg_recv(sub, &err);
        if (msg && msg->is_ack) {
            acked += (long)msg->n_event_ids;
            last = s_now_s();
        }
        sb_backmsg_destroy(&msg);
    }
    double secs = last - t0;
    printf("push: %ld events, %ld acked in %.2f s: %.0f events/s\n", events, acked, secs,
           secs > 0 ? (double)acked / secs : 0.0);
    zpoller_destroy(&poller);
    zsock_destroy(&push);
    zsock_destroy(&sub);
    return acked == events ? 0 : 1;
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        return s_usage();
    const char *cmd = argv[1];
    int per_event = argc > 2 && strcmp(argv[2], "--per-event") == 0;
    char **args = argv + 2 + per_event;
    int nargs = argc - 2 - per_event;
    if (strcmp(cmd, "apply") == 0 && nargs == 1)
        return s_apply(args[0], per_event);
    if (strcmp(cmd, "bench") == 0 && nargs == 3) {
        long rows = strtol(args[1], NULL, 10), batches = strtol(args[2], NULL, 10);
        if (rows < 1 || rows > 10000 || batches < 1)
            return s_usage();
        return s_bench(args[0], per_event, rows, batches);
    }
    if (strcmp(cmd, "push") == 0 && nargs == 3 && !per_event) {
        long events = strtol(args[2], NULL, 10);
        if (events < 1)
            return s_usage();
        return s_push(args[0], args[1], events);
    }
    return s_usage();
}
