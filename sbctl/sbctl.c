/* sbctl - configuration, the shared resources of the commands and the pure pieces (see
 * sbctl.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "renewer.h"
#include "renewer_db.h"
#include "sbctl.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define SB_OFF(field) offsetof(sb_sbctl_config_t, field)
const sb_config_var_t sb_sbctl_config_vars[] = {
    {"DATABASE_URL", SB_CONFIG_STRING, SB_OFF(database_url), NULL, 0, 0, SB_CONFIG_SECRET,
     "PostgreSQL URL (every command but status needs it)"},
    {"SWITCHBOARD_SECRET_KEY", SB_CONFIG_STRING, SB_OFF(secret_key), NULL, 0, 0, SB_CONFIG_SECRET,
     "seals refresh and verification tokens at rest (the renewer's and enricher's key)"},
    {"GOOGLE_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(google_client_id), NULL, 0, 0, 0,
     "OAuth client of the refresh tokens (mailbox remove stops the watch with it)"},
    {"GOOGLE_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(google_secret), NULL, 0, 0, SB_CONFIG_SECRET,
     "its secret"},
    {"GOOGLE_TOKEN_URL", SB_CONFIG_STRING, SB_OFF(google_token_url),
     "https://oauth2.googleapis.com/token", 0, 0, 0, "OAuth token endpoint"},
    {"GMAIL_API_BASE_URL", SB_CONFIG_STRING, SB_OFF(gmail_base_url), "https://gmail.googleapis.com",
     0, 0, 0, "Gmail API root"},
    {"GMAIL_PUSH_TOKEN", SB_CONFIG_STRING, SB_OFF(gmail_push_token), NULL, 0, 0, SB_CONFIG_SECRET,
     "?token= of replayed Gmail pushes (their stored one is redacted)"},
    {"RINGCENTRAL_SERVER_URL", SB_CONFIG_STRING, SB_OFF(rc_server_url),
     "https://platform.ringcentral.com", 0, 0, 0, "RingCentral API root"},
    {"RINGCENTRAL_CLIENT_ID", SB_CONFIG_STRING, SB_OFF(rc_client_id), NULL, 0, 0, 0,
     "RingCentral app client id (subscription commands)"},
    {"RINGCENTRAL_CLIENT_SECRET", SB_CONFIG_STRING, SB_OFF(rc_client_secret), NULL, 0, 0,
     SB_CONFIG_SECRET, "RingCentral app client secret"},
    {"RINGCENTRAL_JWT", SB_CONFIG_STRING, SB_OFF(rc_jwt), NULL, 0, 0, SB_CONFIG_SECRET,
     "RingCentral JWT credential"},
    {"RINGCENTRAL_VERIFICATION_TOKEN", SB_CONFIG_STRING, SB_OFF(rc_token), NULL, 0, 0,
     SB_CONFIG_SECRET,
     "the verifier's token: given to new subscriptions, added to replayed RingCentral events"},
    {"INGRESS_URL", SB_CONFIG_STRING, SB_OFF(ingress_url), "http://127.0.0.1:8001", 0, 0, 0,
     "the ingress (replay posts there; status reads its health and metrics)"},
    {"SBCTL_METRICS_URLS", SB_CONFIG_STRING, SB_OFF(metrics_urls),
     "verifier=http://127.0.0.1:9102/metrics,enricher=http://127.0.0.1:9103/metrics,"
     "writer=http://127.0.0.1:9104/metrics,renewer=http://127.0.0.1:9105/metrics,"
     "sender=http://127.0.0.1:9106/metrics",
     0, 0, 0, "stage=URL list that status scrapes (the ingress: INGRESS_URL/metrics)"},
};
const size_t sb_sbctl_config_vars_n = sizeof sb_sbctl_config_vars / sizeof sb_sbctl_config_vars[0];

void
sb_sbctl_release(sb_sbctl_t *ctl)
{
    if (ctl->db != NULL)
        PQfinish(ctl->db);
    sb_secretbox_destroy(&ctl->box);
    sb_ringcentral_destroy(&ctl->rc);
    sb_gmail_watch_destroy(&ctl->gw);
    ctl->db = NULL;
}

int
sb_sbctl_fail(sb_sbctl_t *ctl, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sbctl: ", ctl->err);
    vfprintf(ctl->err, fmt, ap);
    fputc('\n', ctl->err);
    va_end(ap);
    return code;
}

int
sb_sbctl_db(sb_sbctl_t *ctl)
{
    if (ctl->db != NULL)
        return SB_SBCTL_OK;
    if (!sb_config_is_set(ctl->conf->database_url))
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "DATABASE_URL is not set");
    sb_err_t err = {0};
    ctl->db = sb_renewer_db_connect(ctl->conf->database_url, "sbctl", 60000, &err);
    if (ctl->db == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_FAIL, "%s", err.msg);
    return SB_SBCTL_OK;
}

int
sb_sbctl_box(sb_sbctl_t *ctl)
{
    if (ctl->box_loaded)
        return SB_SBCTL_OK;
    ctl->box_loaded = 1;
    if (!sb_config_is_set(ctl->conf->secret_key))
        return SB_SBCTL_OK;
    sb_err_t err = {0};
    ctl->box = sb_secretbox_new(ctl->conf->secret_key, &err);
    if (ctl->box == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", err.msg);
    return SB_SBCTL_OK;
}

int
sb_sbctl_rc(sb_sbctl_t *ctl)
{
    if (ctl->rc != NULL)
        return SB_SBCTL_OK;
    const sb_sbctl_config_t *c = ctl->conf;
    if (!sb_config_is_set(c->rc_client_id) || !sb_config_is_set(c->rc_client_secret) ||
        !sb_config_is_set(c->rc_jwt))
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE,
                             "RINGCENTRAL_CLIENT_ID, RINGCENTRAL_CLIENT_SECRET and RINGCENTRAL_JWT "
                             "must be set for subscription commands");
    sb_ringcentral_opts_t opts = {.server_url = c->rc_server_url,
                                  .client_id = c->rc_client_id,
                                  .client_secret = c->rc_client_secret,
                                  .jwt = c->rc_jwt};
    sb_err_t err = {0};
    ctl->rc = sb_ringcentral_new(&opts, &err);
    if (ctl->rc == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", err.msg);
    return SB_SBCTL_OK;
}

int
sb_sbctl_gmail(sb_sbctl_t *ctl)
{
    if (ctl->gw != NULL)
        return SB_SBCTL_OK;
    const sb_sbctl_config_t *c = ctl->conf;
    if (!sb_config_is_set(c->google_client_id))
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "GOOGLE_CLIENT_ID is not set");
    sb_gmail_watch_opts_t opts = {.api_base_url = c->gmail_base_url,
                                  .token_url = c->google_token_url,
                                  .client_id = c->google_client_id,
                                  .client_secret = c->google_secret,
                                  .timeout_ms = SB_SBCTL_HTTP_TIMEOUT_MS};
    sb_err_t err = {0};
    ctl->gw = sb_gmail_watch_new(&opts, &err);
    if (ctl->gw == NULL)
        return sb_sbctl_fail(ctl, SB_SBCTL_USAGE, "%s", err.msg);
    return SB_SBCTL_OK;
}

typedef struct {
    char *data; // NUL-terminated
    size_t len;
} s_buf_t;

static size_t
s_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buf_t *buf = arg;
    size_t n = size * nmemb;
    if (buf->len + n > (16u << 20))
        return 0; // CURLE_WRITE_ERROR
    buf->data = sb_xrealloc(buf->data, buf->len + n + 1);
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

long
sb_sbctl_http(void *handle, const char *method, const char *url, char *const *headers,
              const void *body, size_t len, char **answer, size_t *answer_len, sb_err_t *err)
{
    CURL *curl = handle ? handle : curl_easy_init();
    if (curl == NULL) {
        sb_err_set(err, 0, "could not create a libcurl handle");
        return 0;
    }
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:"); // no 100-continue round trip for big bodies
    s_buf_t buf = {NULL, 0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, SB_SBCTL_HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    else
        sb_err_set(err, 0, "could not reach %s: %s", url, curl_easy_strerror(rc));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    if (handle == NULL)
        curl_easy_cleanup(curl);
    if (answer != NULL) {
        *answer = buf.data ? buf.data : sb_xstrdup("");
        if (answer_len != NULL)
            *answer_len = buf.len;
    } else {
        free(buf.data);
    }
    return status;
}

// --- Pure pieces -----------------------------------------------------------------------------

static const sb_sbctl_opt_t *
s_find(const sb_sbctl_opt_t *opts, size_t n, const char *arg, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, arg, len) == 0)
            return &opts[i];
    return NULL;
}

int
sb_sbctl_parse(int argc, char **argv, const sb_sbctl_opt_t *opts, size_t n_opts, const char **pos,
               size_t max_pos, size_t *n_pos, int *help, sb_err_t *err)
{
    *n_pos = 0;
    *help = 0;
    int options = 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options && strcmp(arg, "--") == 0) {
            options = 0;
            continue;
        }
        if (options && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            *help = 1;
            continue;
        }
        if (!options || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (*n_pos >= max_pos) {
                sb_err_set(err, 0, "unexpected argument \"%s\"", arg);
                return -1;
            }
            pos[(*n_pos)++] = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const sb_sbctl_opt_t *o = s_find(opts, n_opts, arg, len);
        if (o == NULL) {
            sb_err_set(err, 0, "unknown option \"%.*s\"", (int)len, arg);
            return -1;
        }
        if (o->value == NULL) {
            if (eq != NULL) {
                sb_err_set(err, 0, "option \"%s\" takes no value", o->name);
                return -1;
            }
            *o->flag = 1;
        } else if (eq != NULL) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            sb_err_set(err, 0, "option \"%s\" needs a value", o->name);
            return -1;
        }
    }
    return 0;
}

int
sb_sbctl_since(const char *text, char *out, size_t size, int *interval)
{
    if (text == NULL || *text == '\0')
        return -1;
    int64_t ms = 0;
    sb_err_t err = {0};
    if (isdigit((unsigned char)text[0]) &&
        sb_renewer_duration_parse("--since", text, 0, INT64_MAX / 2, &ms, &err) == 0 &&
        strchr(text, '-') == NULL) {
        snprintf(out, size, "%lld.%03lld seconds", (long long)(ms / 1000), (long long)(ms % 1000));
        *interval = 1;
        return 0;
    }
    snprintf(out, size, "%s", text);
    *interval = 0;
    return 0;
}

void
sb_sbctl_human_delta(double seconds, char *out, size_t size)
{
    if (isnan(seconds)) {
        snprintf(out, size, "-");
        return;
    }
    int ago = seconds < 0;
    long long s = (long long)fabs(seconds);
    long long d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
    char body[48];
    if (d > 0)
        snprintf(body, sizeof body, "%lldd %lldh", d, h);
    else if (h > 0)
        snprintf(body, sizeof body, "%lldh %lldm", h, m);
    else if (m > 0)
        snprintf(body, sizeof body, "%lldm %llds", m, s % 60);
    else
        snprintf(body, sizeof body, "%llds", s);
    snprintf(out, size, ago ? "%s ago" : "in %s", body);
}

double
sb_sbctl_metric_sum(const char *text, const char *name)
{
    size_t len = strlen(name);
    double sum = 0;
    int found = 0;
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t line_len = end ? (size_t)(end - line) : strlen(line);
        if (line_len > len && strncmp(line, name, len) == 0 &&
            (line[len] == ' ' || line[len] == '{')) {
            const char *value = memchr(line, ' ', line_len);
            const char *brace = line[len] == '{' ? memchr(line, '}', line_len) : NULL;
            if (brace != NULL) // a label value may hold a space: the value follows '}'
                value = memchr(brace, ' ', line_len - (size_t)(brace - line));
            if (value != NULL) {
                double v = strtod(value + 1, NULL);
                if (!isnan(v)) {
                    sum += v;
                    found = 1;
                }
            }
        }
        line = end ? end + 1 : NULL;
    }
    return found ? sum : NAN;
}

static const struct {
    const char *source;
    const char *path;
} s_routes[] = {
    {"ringcentral_sms", "/api/webhooks/ringcentral/sms"},
    {"ringcentral_call", "/api/webhooks/ringcentral/call"},
    {"gmail_push", "/api/webhooks/gmail/push"},
};

static char *
s_percent(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = sb_xmalloc(strlen(text) * 3 + 1);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return out;
}

// The stored query with token= set again from gmail_token (or left out without one).
static char *
s_replay_query(const char *query, const char *gmail_token)
{
    char *out = sb_xstrdup("");
    char *copy = sb_xstrdup(query ? query : "");
    char *save = NULL;
    for (char *part = strtok_r(copy, "&", &save); part != NULL; part = strtok_r(NULL, "&", &save)) {
        char *piece;
        if (strncmp(part, "token=", 6) == 0 || strcmp(part, "token") == 0) {
            if (gmail_token == NULL || *gmail_token == '\0')
                continue;
            char *enc = s_percent(gmail_token);
            piece = sb_xasprintf("token=%s", enc);
            OPENSSL_cleanse(enc, strlen(enc));
            free(enc);
        } else {
            piece = sb_xstrdup(part);
        }
        char *joined = sb_xasprintf("%s%s%s", out, *out ? "&" : "", piece);
        OPENSSL_cleanse(out, strlen(out));
        OPENSSL_cleanse(piece, strlen(piece));
        free(out);
        free(piece);
        out = joined;
    }
    free(copy);
    return out;
}

static void
s_header_add(sb_sbctl_replay_req_t *req, char *line)
{
    req->headers = sb_xrealloc(req->headers, (req->n_headers + 2) * sizeof *req->headers);
    req->headers[req->n_headers++] = line;
    req->headers[req->n_headers] = NULL;
}

int
sb_sbctl_replay_request(const char *source, const char *headers_json, const char *event_id,
                        const char *rc_token, const char *gmail_token, sb_sbctl_replay_req_t *req,
                        sb_err_t *err)
{
    memset(req, 0, sizeof *req);
    const char *path = NULL;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++)
        if (strcmp(source, s_routes[i].source) == 0)
            path = s_routes[i].path;
    if (path == NULL) {
        sb_err_set(err, 0, "cannot replay an event of source \"%s\"", source);
        return -1;
    }
    json_t *headers = json_loads(headers_json ? headers_json : "{}", 0, NULL);
    if (!json_is_object(headers)) {
        json_decref(headers);
        sb_err_set(err, 0, "the stored headers are not a JSON object");
        return -1;
    }
    int gmail = strcmp(source, "gmail_push") == 0;
    const char *query = json_string_value(json_object_get(headers, ":query"));
    char *q = s_replay_query(query, gmail ? gmail_token : NULL);
    req->path = *q ? sb_xasprintf("%s?%s", path, q) : sb_xstrdup(path);
    OPENSSL_cleanse(q, strlen(q));
    free(q);
    int has_request_id = 0;
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value)
    {
        const char *v = json_string_value(value);
        if (v == NULL || name[0] == ':' || strcmp(v, "[redacted]") == 0 ||
            strcasecmp(name, "host") == 0 || strcasecmp(name, "content-length") == 0 ||
            strcasecmp(name, "transfer-encoding") == 0 || strchr(v, '\n') || strchr(v, '\r'))
            continue;
        has_request_id |= strcasecmp(name, "x-request-id") == 0;
        s_header_add(req, sb_xasprintf("%s: %s", name, v));
    }
    json_decref(headers);
    if (!gmail && rc_token != NULL && *rc_token != '\0')
        s_header_add(req, sb_xasprintf("Verification-Token: %s", rc_token));
    if (!has_request_id)
        s_header_add(req, sb_xasprintf("X-Request-Id: sbctl-replay:%s", event_id));
    return 0;
}

void
sb_sbctl_replay_req_release(sb_sbctl_replay_req_t *req)
{
    if (req->path != NULL) {
        OPENSSL_cleanse(req->path, strlen(req->path));
        free(req->path);
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        OPENSSL_cleanse(req->headers[i], strlen(req->headers[i]));
        free(req->headers[i]);
    }
    free(req->headers);
    memset(req, 0, sizeof *req);
}

char *
sb_sbctl_read_token_file(const char *path, sb_err_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        sb_err_set(err, errno, "could not open \"%s\"", path);
        return NULL;
    }
    char *buf = sb_xmalloc(SB_SBCTL_TOKEN_FILE_MAX + 2);
    size_t len = fread(buf, 1, SB_SBCTL_TOKEN_FILE_MAX + 1, f);
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    buf[len] = '\0';
    char *start = buf;
    while (*start && isspace((unsigned char)*start))
        start++;
    size_t n = strlen(start);
    while (n > 0 && isspace((unsigned char)start[n - 1]))
        n--;
    char *token = NULL;
    if (failed)
        sb_err_set(err, EIO, "could not read \"%s\"", path);
    else if (len > SB_SBCTL_TOKEN_FILE_MAX)
        sb_err_set(err, 0, "\"%s\" is longer than %d bytes: not a token", path,
                   SB_SBCTL_TOKEN_FILE_MAX);
    else if (memchr(buf, '\0', len) != NULL)
        sb_err_set(err, 0, "\"%s\" holds a NUL byte: not a token", path);
    else if (n == 0)
        sb_err_set(err, 0, "\"%s\" is empty", path);
    else if (memchr(start, '\n', n) != NULL)
        sb_err_set(err, 0, "\"%s\" holds more than one line: not a token", path);
    else
        token = sb_xstrndup(start, n);
    OPENSSL_cleanse(buf, SB_SBCTL_TOKEN_FILE_MAX + 2);
    free(buf);
    return token;
}
