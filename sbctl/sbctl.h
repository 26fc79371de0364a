/* sbctl - the operator's command line (issue 6): connect mailboxes and RingCentral
 * subscriptions, see the pipeline's state, list stored events and replay them.
 *
 *   sbctl mailbox add EMAIL --refresh-token-file F | list | remove EMAIL
 *   sbctl subscription create --sms-url URL | --call-url URL | list | renew ID | delete ID
 *   sbctl status
 *   sbctl events [--outcome O] [--since T]
 *   sbctl replay EVENT_ID... | --outcome O --since T
 *
 * Configuration comes from the environment like every stage's (sb_config: DATABASE_URL,
 * SWITCHBOARD_SECRET_KEY, the provider credentials, INGRESS_URL, SBCTL_METRICS_URLS);
 * `sbctl --help` lists it, `sbctl COMMAND --help` explains a command. Exit status: 0 done,
 * 1 failed (the database, a provider or the pipeline said no, or status found a problem),
 * 2 usage (bad arguments or missing configuration). Output for people goes to stdout,
 * problems to stderr as "sbctl: ..." lines; secrets are never printed, except the
 * verification token that `subscription create` generates, once.
 *
 * The mailbox and subscription work is the renewer's own code (renewer/gmail_watch.h,
 * renewer/rc_subscriptions.h), so sbctl and sb-renewer can never disagree about a row;
 * both take the same advisory locks. The command files hold the I/O; the pure pieces
 * below are what the unit tests call. */
#ifndef SB_SBCTL_H
#define SB_SBCTL_H
#include <stddef.h>
#include <stdio.h>
#include <libpq-fe.h>
#include "gmail_watch.h"
#include "rc_subscriptions.h"
#include "sb_config.h"
#include "sb_err.h"
#include "sb_secretbox.h"

enum { SB_SBCTL_OK = 0, SB_SBCTL_FAIL = 1, SB_SBCTL_USAGE = 2 };

#define SB_SBCTL_HTTP_TIMEOUT_MS 10000L // one request to the ingress or a /metrics
#define SB_SBCTL_REPLAY_PAGE 200        // events read from the database at a time
#define SB_SBCTL_TOKEN_FILE_MAX 8192    // a refresh or verification token file

typedef struct {
    char *database_url;     // DATABASE_URL
    char *secret_key;       // SWITCHBOARD_SECRET_KEY
    char *google_client_id; // GOOGLE_CLIENT_ID
    char *google_secret;    // GOOGLE_CLIENT_SECRET
    char *google_token_url; // GOOGLE_TOKEN_URL
    char *gmail_base_url;   // GMAIL_API_BASE_URL
    char *gmail_push_token; // GMAIL_PUSH_TOKEN (replayed Gmail pushes)
    char *rc_server_url;    // RINGCENTRAL_SERVER_URL
    char *rc_client_id;     // RINGCENTRAL_CLIENT_ID
    char *rc_client_secret; // RINGCENTRAL_CLIENT_SECRET
    char *rc_jwt;           // RINGCENTRAL_JWT
    char *rc_token;         // RINGCENTRAL_VERIFICATION_TOKEN
    char *ingress_url;      // INGRESS_URL
    char *metrics_urls;     // SBCTL_METRICS_URLS
} sb_sbctl_config_t;

extern const sb_config_var_t sb_sbctl_config_vars[];
extern const size_t sb_sbctl_config_vars_n;

// What a command works with; everything but conf is made on first use.
typedef struct {
    const sb_sbctl_config_t *conf; // borrowed
    FILE *out;                     // stdout
    FILE *err;                     // stderr
    PGconn *db;                    // sb_sbctl_db
    sb_secretbox_t *box;           // sb_sbctl_box (NULL without a key)
    int box_loaded;                // box was looked at
    sb_ringcentral_t *rc;          // sb_sbctl_rc
    sb_gmail_watch_t *gw;          // sb_sbctl_gmail
} sb_sbctl_t;

void sb_sbctl_release(sb_sbctl_t *ctl);

// "sbctl: " + message on ctl->err. Returns code, so `return sb_sbctl_fail(ctl, 1, ...)`.
int sb_sbctl_fail(sb_sbctl_t *ctl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// The database (DATABASE_URL), the secret box, the RingCentral client, the Gmail client.
// Each returns SB_SBCTL_OK, or prints why and returns FAIL or USAGE (not configured).
int sb_sbctl_db(sb_sbctl_t *ctl);
int sb_sbctl_box(sb_sbctl_t *ctl);
int sb_sbctl_rc(sb_sbctl_t *ctl);
int sb_sbctl_gmail(sb_sbctl_t *ctl);

// One HTTP request (libcurl, SB_SBCTL_HTTP_TIMEOUT_MS): method "GET" or "POST" with body,
// headers "Name: value" (NULL-terminated, may be NULL). curl: a handle to reuse (keep-
// alive) or NULL. Returns the status, or 0 with err when no answer came; *answer (may be
// NULL) gets the body for the caller to free, at most 16 MiB.
long sb_sbctl_http(void *curl, const char *method, const char *url, char *const *headers,
                   const void *body, size_t len, char **answer, size_t *answer_len, sb_err_t *err);

// The commands: argv[0] is the command's name ("mailbox" ...). Return an exit status.
int sb_sbctl_mailbox(sb_sbctl_t *ctl, int argc, char **argv);
int sb_sbctl_subscription(sb_sbctl_t *ctl, int argc, char **argv);
int sb_sbctl_status(sb_sbctl_t *ctl, int argc, char **argv);
int sb_sbctl_events(sb_sbctl_t *ctl, int argc, char **argv);
int sb_sbctl_replay(sb_sbctl_t *ctl, int argc, char **argv);

// --- Pure pieces (unit tests) ------------------------------------------------------------

// Options of a command: "--name VALUE", "--name=VALUE", or a flag "--name".
typedef struct {
    const char *name;   // "--since"
    const char **value; // where the value goes (NULL: a flag)
    int *flag;          // set to 1 when a flag is given
} sb_sbctl_opt_t;
// Parse argv[1..argc) (argv[0] is the command). Non-options go to pos (up to max_pos, in
// order); "--" ends the options; "--help" sets *help. 0, or -1 with err (unknown option,
// missing value, too many arguments).
int sb_sbctl_parse(int argc, char **argv, const sb_sbctl_opt_t *opts, size_t n_opts,
                   const char **pos, size_t max_pos, size_t *n_pos, int *help, sb_err_t *err);

// --since: a duration back from now ("90s", "15m", "2h", "7d") -> "<seconds> seconds"
// with *interval = 1, or anything else -> the text itself, *interval = 0, for
// PostgreSQL's timestamptz (which says whether it is one). 0, or -1 when empty.
int sb_sbctl_since(const char *text, char *out, size_t size, int *interval);

// "in 6d 23h", "in 2h 5m", "in 45s", "3h 12m ago" from a number of seconds.
void sb_sbctl_human_delta(double seconds, char *out, size_t size);

// The sum of every sample of a metric family in a Prometheus text exposition, or NAN
// when there is none. Samples with labels count too (name{...} value).
double sb_sbctl_metric_sum(const char *text, const char *name);

// What to POST to replay a stored event: the path with its query, and the headers.
typedef struct {
    char *path;     // "/api/webhooks/gmail/push?token=..." (owned)
    char **headers; // "Name: value" lines, NULL-terminated (owned)
    size_t n_headers;
} sb_sbctl_replay_req_t;

// From the event's source and stored (redacted) headers JSON: redacted headers are
// dropped and the secrets added again from the configuration (Verification-Token for
// RingCentral; ?token= for Gmail pushes), Host/Content-Length left to the client, and
// X-Request-Id "sbctl-replay:<event id>" added unless the request had one. 0, or -1 with
// err (unknown source, headers not a JSON object).
int sb_sbctl_replay_request(const char *source, const char *headers_json, const char *event_id,
                            const char *rc_token, const char *gmail_token,
                            sb_sbctl_replay_req_t *req, sb_err_t *err);
void sb_sbctl_replay_req_release(sb_sbctl_replay_req_t *req);

// Read a token file ("-": stdin): surrounding whitespace trimmed, non-empty, at most
// SB_SBCTL_TOKEN_FILE_MAX bytes, one line. The caller wipes and frees it. NULL and err.
char *sb_sbctl_read_token_file(const char *path, sb_err_t *err);

#endif
