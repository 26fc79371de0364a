/* test_verify_google - Pub/Sub OIDC JWT verification (verify_google) and the JWKS parser
 * and cache under it (sb_jwks), against shared/fixtures/google at its fixed clock, plus
 * tokens minted here with the fixtures' test key for the cases the fixtures lack. JWKS
 * loading is exercised from a file, from a file:// URL and from a tiny HTTP server that a
 * forked child runs on 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "sb_b64.h"
#include "sb_check.h"
#include "test_util.h"
#include "sb_jwks.h"
#include "sb_mem.h"
#include "verify_google.h"
#include "sb_banned.h"

#define G_DIR SB_FIXTURES_DIR "/google/"
#define NOW 1795533668 // the fixtures' "now" (2026-11-24T15:21:08Z)
#define AUD "https://hooks.example.com/api/webhooks/gmail/push"
#define EMAIL "gmail-push@example-project.iam.gserviceaccount.com"
#define GOOD_KID "78324f5eab48f96eb9e204f73f28cb635c848f69"
#define DECOY_KID "b815337edda48f2ea896ebbf8084386ad2a9034c"

static char s_tmpdir[64]; // per-test scratch directory, removed by teardown

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
}

// "Bearer <tokens/name.jwt>", the file's final newline trimmed.
static char *
bearer(const char *name)
{
    char *path = sb_xasprintf(G_DIR "tokens/%s.jwt", name);
    char *token = sb_test_read_file(path, NULL);
    free(path);
    token[strcspn(token, "\r\n")] = '\0';
    char *value = sb_xasprintf("Bearer %s", token);
    free(token);
    return value;
}

// The fixture JWKS, optionally without the key that signs the good tokens.
static char *
jwks_text(int with_good_key)
{
    json_t *doc = json_load_file(G_DIR "test-jwks.json", 0, NULL);
    ck_assert_ptr_nonnull(doc);
    json_t *keys = json_object_get(doc, "keys");
    if (!with_good_key) {
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(keys, 1), "kid")),
                         GOOD_KID);
        json_array_remove(keys, 1);
    }
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    return text;
}

static char *
tmp_path(const char *name)
{
    return sb_xasprintf("%s/%s", s_tmpdir, name);
}

static void
write_jwks(const char *path, int with_good_key)
{
    char *text = jwks_text(with_good_key);
    write_file(path, text);
    free(text);
}

static sb_google_verifier_t *
new_verifier(const char *file, const char *url, const char *service_account)
{
    sb_err_t err = {0};
    sb_google_verifier_t *v = sb_google_verifier_new(file, url, AUD, service_account, &err);
    ck_assert_msg(v != NULL, "new: %s", err.msg);
    return v;
}

// Verify value at now and return the reason, "ok" when valid.
static const char *
verdict(sb_google_verifier_t *v, const char *value, int64_t now)
{
    const char *reason = "untouched";
    int rc = sb_google_verify(v, value, now, &reason);
    if (rc == 0) {
        ck_assert_ptr_null(reason);
        return "ok";
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(reason);
    return reason;
}

static void
expect_token(sb_google_verifier_t *v, const char *name, int64_t now, const char *want)
{
    char *value = bearer(name);
    const char *got = verdict(v, value, now);
    ck_assert_msg(strcmp(got, want) == 0, "%s: got %s, want %s", name, got, want);
    free(value);
}

// ---------------------------------------------------------------------------------------
// Minting tokens with the fixtures' private key

static EVP_PKEY *
load_private_key(const char *file)
{
    char *path = sb_xasprintf(G_DIR "%s", file);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    free(path);
    ck_assert_ptr_nonnull(key);
    return key;
}

static char *
b64url(const char *text)
{
    return sb_b64_encode(text, strlen(text), SB_B64_URL | SB_B64_NO_PAD);
}

// "Bearer h.c.s": header and claims JSON texts as given, signed RS256 with key_file.
static char *
mint_raw(const char *header, const char *claims, const char *key_file)
{
    char *h = b64url(header), *c = b64url(claims);
    char *input = sb_xasprintf("%s.%s", h, c);
    EVP_PKEY *key = load_private_key(key_file);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    ck_assert_int_eq(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, strlen(input)), 1);
    char *s = sb_b64_encode(sig, sig_len, SB_B64_URL | SB_B64_NO_PAD);
    char *value = sb_xasprintf("Bearer %s.%s", input, s);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    free(h);
    free(c);
    free(input);
    free(s);
    return value;
}

// Pub/Sub's claims at NOW, with patch (a JSON object) merged over them; a null member in
// patch removes that claim.
static char *
claims_with(const char *patch)
{
    json_t *claims = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:s, s:s}", "aud", AUD, "azp",
                               "109876543210987654321", "email", EMAIL, "email_verified", 1, "exp",
                               (json_int_t)NOW + 3600, "iat", (json_int_t)NOW, "iss",
                               "https://accounts.google.com", "sub", "109876543210987654321");
    json_t *p = json_loads(patch, 0, NULL);
    ck_assert_msg(p != NULL, "bad patch %s", patch);
    for (void *it = json_object_iter(p); it != NULL; it = json_object_iter_next(p, it)) {
        const char *name = json_object_iter_key(it);
        json_t *value = json_object_iter_value(it);
        if (json_is_null(value))
            json_object_del(claims, name);
        else
            json_object_set(claims, name, value);
    }
    char *text = json_dumps(claims, JSON_COMPACT);
    json_decref(p);
    json_decref(claims);
    return text;
}

static const char *
mint_verdict(sb_google_verifier_t *v, const char *header, const char *patch, int64_t now)
{
    char *claims = claims_with(patch);
    char *value = mint_raw(header, claims, "test-rsa-key.pem");
    const char *got = verdict(v, value, now);
    free(value);
    free(claims);
    return got;
}

#define RS256_HEADER "{\"alg\":\"RS256\",\"kid\":\"" GOOD_KID "\",\"typ\":\"JWT\"}"

// ---------------------------------------------------------------------------------------
// A tiny HTTP server in a forked child: answers each connection with the next canned
// response, then closes it; exits after the last one (or after 20 s).

typedef struct {
    pid_t pid;
    int port;
} http_server_t;

static http_server_t
serve(const char *const *responses, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    socklen_t len = sizeof addr;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    http_server_t server = {.pid = fork(), .port = ntohs(addr.sin_port)};
    ck_assert_int_ge(server.pid, 0);
    if (server.pid > 0) {
        close(fd);
        return server;
    }
    alarm(20); // never outlive a test that failed before taking every response
    for (size_t i = 0; i < n; i++) {
        int conn = accept(fd, NULL, NULL);
        if (conn < 0)
            _exit(1);
        char req[8192];
        size_t got = 0;
        while (got < sizeof req - 1) { // read the request head; curl sends no body
            ssize_t r = read(conn, req + got, sizeof req - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        size_t off = 0, total = strlen(responses[i]);
        while (off < total) {
            ssize_t w = write(conn, responses[i] + off, total - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        close(conn);
    }
    _exit(0);
}

static char *
http_response(int status, const char *extra_headers, const char *body)
{
    return sb_xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                        status, strlen(body), extra_headers, body);
}

// ---------------------------------------------------------------------------------------
// Fixture tokens

static void
setup(void)
{
    snprintf(s_tmpdir, sizeof s_tmpdir, "/tmp/sb_google_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_tmpdir));
}

static void
teardown(void)
{
    char *cmd = sb_xasprintf("rm -rf '%s'", s_tmpdir);
    int ignored = system(cmd);
    (void)ignored;
    free(cmd);
}

START_TEST(every_fixture_token_gets_its_verdict)
{
    static const struct {
        const char *name, *want;
    } cases[] = {
        {"valid", "ok"},
        {"valid-iss-no-scheme", "ok"},
        {"expired", "expired"},
        {"wrong-aud", "bad_aud"},
        {"wrong-iss", "bad_iss"},
        {"wrong-email", "bad_email"},
        {"email-unverified", "email_unverified"},
        {"wrong-signature", "bad_signature"},
        {"unknown-kid", "unknown_kid"},
        {"alg-hs256-header", "bad_alg"},
        {"alg-confusion-hs256-pubkey", "bad_alg"},
        {"alg-none", "bad_alg"},
        {"malformed-two-segments", "malformed_jwt"},
        {"malformed-bad-base64", "malformed_jwt"},
    };
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_token(v, cases[i].name, NOW, cases[i].want);
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1); // read once, at start
    sb_google_verifier_destroy(&v);
    ck_assert_ptr_null(v);
    sb_google_verifier_destroy(&v); // twice is harmless
}
END_TEST

START_TEST(email_is_only_checked_when_a_service_account_is_set)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, NULL);
    expect_token(v, "wrong-email", NOW, "ok");
    expect_token(v, "email-unverified", NOW, "ok");
    expect_token(v, "wrong-aud", NOW, "bad_aud"); // the rest still holds
    sb_google_verifier_destroy(&v);
    v = new_verifier(G_DIR "test-jwks.json", NULL, "");
    expect_token(v, "wrong-email", NOW, "ok");
    sb_google_verifier_destroy(&v);
    // Addresses compare without ASCII case: an operator may type the name in capitals.
    v = new_verifier(G_DIR "test-jwks.json", NULL,
                     "Gmail-Push@Example-Project.iam.gserviceaccount.com");
    expect_token(v, "valid", NOW, "ok");
    expect_token(v, "wrong-email", NOW, "bad_email");
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(expiry_allows_sixty_seconds_of_skew)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    expect_token(v, "valid", NOW + 3600, "ok");      // exp = NOW + 3600
    expect_token(v, "valid", NOW + 3600 + 59, "ok"); // within the leeway
    expect_token(v, "valid", NOW + 3600 + 60, "expired");
    expect_token(v, "valid", NOW - 60, "ok"); // iat = NOW, sender's clock 60 s ahead
    expect_token(v, "valid", NOW - 61, "not_yet_valid");
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(reason_out_may_be_null)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    char *good = bearer("valid"), *bad = bearer("expired");
    ck_assert_int_eq(sb_google_verify(v, good, NOW, NULL), 0);
    ck_assert_int_eq(sb_google_verify(v, bad, NOW, NULL), -1);
    free(good);
    free(bad);
    sb_google_verifier_destroy(&v);
}
END_TEST

// ---------------------------------------------------------------------------------------
// The Authorization header

START_TEST(bearer_scheme_is_case_insensitive_and_spaces_are_trimmed)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    char *value = bearer("valid");
    const char *token = value + strlen("Bearer ");
    static const struct {
        const char *before, *after; // around the token
    } forms[] = {{"Bearer ", ""},  {"bearer ", ""},       {"BEARER ", ""},
                 {"bEaReR\t", ""}, {"  Bearer   ", "  "}, {"\tBearer \t", "\t "}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char *h = sb_xasprintf("%s%s%s", forms[i].before, token, forms[i].after);
        ck_assert_msg(strcmp(verdict(v, h, NOW), "ok") == 0, "form \"%s<token>%s\"",
                      forms[i].before, forms[i].after);
        free(h);
    }
    free(value);
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(missing_or_foreign_authorization_is_missing_bearer)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    char *value = bearer("valid");
    const char *token = value + strlen("Bearer ");
    ck_assert_str_eq(verdict(v, NULL, NOW), "missing_bearer");
    ck_assert_str_eq(verdict(v, "", NOW), "missing_bearer");
    ck_assert_str_eq(verdict(v, "   ", NOW), "missing_bearer");
    ck_assert_str_eq(verdict(v, "Bearer", NOW), "missing_bearer");
    ck_assert_str_eq(verdict(v, "Bearer    ", NOW), "missing_bearer");
    ck_assert_str_eq(verdict(v, "Basic dXNlcjpwYXNz", NOW), "missing_bearer");
    char *glued = sb_xasprintf("Bearer%s", token);
    ck_assert_str_eq(verdict(v, glued, NOW), "missing_bearer");
    ck_assert_str_eq(verdict(v, token, NOW), "missing_bearer"); // the token alone
    free(glued);
    free(value);
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(oversized_header_is_malformed)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    char *value = bearer("valid");
    // A good token followed by blanks up to the limit still passes; one byte more and
    // the header is refused before anything else is looked at.
    char *big = sb_xmalloc(SB_GOOGLE_AUTH_MAX + 2);
    memset(big, ' ', SB_GOOGLE_AUTH_MAX + 1);
    memcpy(big, value, strlen(value));
    big[SB_GOOGLE_AUTH_MAX] = '\0';
    ck_assert_str_eq(verdict(v, big, NOW), "ok");
    big[SB_GOOGLE_AUTH_MAX] = ' ';
    big[SB_GOOGLE_AUTH_MAX + 1] = '\0';
    ck_assert_str_eq(verdict(v, big, NOW), "malformed_jwt");
    memset(big + strlen("Bearer "), 'A', SB_GOOGLE_AUTH_MAX + 1 - strlen("Bearer "));
    ck_assert_str_eq(verdict(v, big, NOW), "malformed_jwt");
    free(big);
    free(value);
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(token_shape_is_strict)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    char *value = bearer("valid");
    const char *token = value + strlen("Bearer ");
    const char *dot1 = strchr(token, '.'), *dot2 = strchr(dot1 + 1, '.');
    int hlen = (int)(dot1 - token), clen = (int)(dot2 - dot1 - 1);
    struct {
        char *value;
        const char *want;
    } cases[] = {
        {sb_xasprintf("Bearer %s.", token), "malformed_jwt"}, // four segments
        {sb_xasprintf("Bearer %s.x", token), "malformed_jwt"},
        {sb_xasprintf("Bearer .%s", dot1 + 1), "malformed_jwt"}, // empty header
        {sb_xasprintf("Bearer %.*s..%s", hlen, token, dot2 + 1), "malformed_jwt"},
        {sb_xasprintf("Bearer %.*s=.%s", hlen + clen + 1, token, dot2 + 1), "malformed_jwt"},
        {sb_xasprintf("Bearer %.*s.%s", hlen + clen + 1, token, "!!!!"), "malformed_jwt"},
        {sb_xasprintf("Bearer %.*s.", hlen + clen + 1, token), "bad_signature"}, // RS256, no sig
        {sb_xasprintf("Bearer %.*s.AAAA", hlen + clen + 1, token), "bad_signature"}, // short
        {sb_xasprintf("Bearer %.*s.%.*s", hlen + clen + 1, token, (int)strlen(dot2 + 1) - 4,
                      dot2 + 1),
         "bad_signature"},                                          // truncated
        {sb_xasprintf("Bearer %s.%s", "e30", dot1 + 1), "bad_alg"}, // header {}
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = verdict(v, cases[i].value, NOW);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: got %s, want %s", i, got,
                      cases[i].want);
        free(cases[i].value);
    }
    free(value);
    sb_google_verifier_destroy(&v);
}
END_TEST

// ---------------------------------------------------------------------------------------
// Minted tokens: what the fixtures do not cover

START_TEST(minted_good_token_passes)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    // The control for every minted case below: the minting itself is right.
    ck_assert_str_eq(mint_verdict(v, RS256_HEADER, "{}", NOW), "ok");
    ck_assert_str_eq(mint_verdict(v, "{\"alg\":\"RS256\",\"kid\":\"" GOOD_KID "\"}", "{}", NOW),
                     "ok"); // typ is optional
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(minted_header_cases)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    static const struct {
        const char *header, *want;
    } cases[] = {
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "unknown_kid"}, // strict: kid required
        {"{\"alg\":\"RS256\",\"kid\":\"\"}", "unknown_kid"},
        {"{\"alg\":\"RS256\",\"kid\":42}", "unknown_kid"},
        {"{\"alg\":\"RS256\",\"kid\":\"" DECOY_KID "\"}", "bad_signature"}, // other key
        {"{\"alg\":\"rs256\",\"kid\":\"" GOOD_KID "\"}", "bad_alg"},
        {"{\"alg\":\"RS384\",\"kid\":\"" GOOD_KID "\"}", "bad_alg"},
        {"{\"alg\":\"PS256\",\"kid\":\"" GOOD_KID "\"}", "bad_alg"},
        {"{\"alg\":[\"RS256\"],\"kid\":\"" GOOD_KID "\"}", "bad_alg"},
        {"{\"kid\":\"" GOOD_KID "\"}", "bad_alg"},
        {"{\"alg\":\"RS256\",\"kid\":\"" GOOD_KID "\",\"crit\":[\"exp\"]}", "malformed_jwt"},
        {"{\"alg\":\"RS256\",\"alg\":\"RS256\",\"kid\":\"" GOOD_KID "\"}", "malformed_jwt"},
        {"[\"RS256\"]", "malformed_jwt"},
        {"not json", "malformed_jwt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = mint_verdict(v, cases[i].header, "{}", NOW);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "header %s: got %s, want %s",
                      cases[i].header, got, cases[i].want);
    }
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(minted_claim_cases)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    static const struct {
        const char *patch, *want;
    } cases[] = {
        {"{\"iat\":1795533728}", "ok"},            // NOW + 60: within the leeway
        {"{\"iat\":1795533729}", "not_yet_valid"}, // NOW + 61
        {"{\"iat\":1795533668.5}", "ok"},          // NumericDate may be fractional
        {"{\"iat\":null}", "malformed_jwt"},
        {"{\"iat\":\"1795533668\"}", "malformed_jwt"},
        {"{\"exp\":null}", "malformed_jwt"},
        {"{\"exp\":\"1795537268\"}", "malformed_jwt"},
        {"{\"exp\":1795533609}", "ok"},      // NOW - 59: still within the leeway
        {"{\"exp\":1795533608}", "expired"}, // NOW - 60: the leeway is used up
        {"{\"exp\":1795533607, \"iat\":1795530000}", "expired"},
        {"{\"nbf\":1795533729}", "not_yet_valid"},
        {"{\"nbf\":1795533728}", "ok"},
        {"{\"nbf\":\"soon\"}", "malformed_jwt"},
        {"{\"aud\":[\"https://other.example/\",\"" AUD "\"]}", "ok"},
        {"{\"aud\":[\"https://other.example/\"]}", "bad_aud"},
        {"{\"aud\":null}", "bad_aud"},
        {"{\"aud\":\"" AUD "/\"}", "bad_aud"},
        {"{\"iss\":null}", "bad_iss"},
        {"{\"iss\":\"http://accounts.google.com\"}", "bad_iss"},
        {"{\"iss\":\"https://accounts.google.com.evil.example\"}", "bad_iss"},
        {"{\"email\":null}", "bad_email"},
        {"{\"email_verified\":null}", "email_unverified"},
        {"{\"email_verified\":\"true\"}", "ok"},
        {"{\"email_verified\":\"false\"}", "email_unverified"},
        {"{\"email_verified\":1}", "email_unverified"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = mint_verdict(v, RS256_HEADER, cases[i].patch, NOW);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "claims %s: got %s, want %s", cases[i].patch,
                      got, cases[i].want);
    }
    // Claims that are not one JSON object, or repeat a name, are refused.
    static const char *const bad_claims[] = {"[1,2]", "\"x\"",
                                             "{\"aud\":\"" AUD "\",\"aud\":\"x\"}", "{"};
    for (size_t i = 0; i < sizeof bad_claims / sizeof bad_claims[0]; i++) {
        char *value = mint_raw(RS256_HEADER, bad_claims[i], "test-rsa-key.pem");
        ck_assert_str_eq(verdict(v, value, NOW), "malformed_jwt");
        free(value);
    }
    sb_google_verifier_destroy(&v);
}
END_TEST

START_TEST(claims_are_not_trusted_before_the_signature)
{
    sb_google_verifier_t *v = new_verifier(G_DIR "test-jwks.json", NULL, EMAIL);
    // Signed by the other key with every claim wrong: the signature is what fails.
    char *claims = claims_with("{\"aud\":\"x\",\"iss\":\"y\",\"exp\":1}");
    char *value = mint_raw(RS256_HEADER, claims, "test-rsa-key-other.pem");
    ck_assert_str_eq(verdict(v, value, NOW), "bad_signature");
    free(value);
    free(claims);
    sb_google_verifier_destroy(&v);
}
END_TEST

// ---------------------------------------------------------------------------------------
// Construction and the JWKS

START_TEST(new_refuses_bad_configuration)
{
    sb_err_t err = {0};
    ck_assert_ptr_null(sb_google_verifier_new(G_DIR "test-jwks.json", NULL, NULL, EMAIL, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "GMAIL_PUSH_AUDIENCE"));
    ck_assert_ptr_null(sb_google_verifier_new(G_DIR "test-jwks.json", NULL, "", EMAIL, &err));
    memset(&err, 0, sizeof err);
    ck_assert_ptr_null(sb_google_verifier_new(G_DIR "no-such.json", NULL, AUD, EMAIL, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such.json"));
    ck_assert_int_eq(err.code, ENOENT);
    char *path = tmp_path("empty.json");
    write_file(path, "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"x\",\"crv\":\"P-256\"}]}");
    ck_assert_ptr_null(sb_google_verifier_new(path, NULL, AUD, EMAIL, &err));
    ck_assert_msg(strstr(err.msg, "usable") != NULL, "err: %s", err.msg);
    free(path);
}
END_TEST

START_TEST(jwks_parse_keeps_only_usable_rs256_keys)
{
    size_t len;
    char *text = sb_test_read_file(G_DIR "test-jwks.json", &len);
    sb_err_t err = {0};
    sb_jwks_t *set = sb_jwks_parse(text, len, &err);
    ck_assert_msg(set != NULL, "parse: %s", err.msg);
    ck_assert_uint_eq(sb_jwks_size(set), 2); // "_comment" is ignored
    ck_assert_ptr_nonnull(sb_jwks_key(set, GOOD_KID));
    ck_assert_ptr_nonnull(sb_jwks_key(set, DECOY_KID));
    ck_assert_ptr_null(sb_jwks_key(set, "1fed5085"));
    ck_assert_ptr_null(sb_jwks_key(set, NULL));
    sb_jwks_destroy(&set);
    ck_assert_ptr_null(set);
    free(text);

    // Take the good key's n and e, and put them under kids that must each be skipped.
    json_t *doc = json_load_file(G_DIR "test-jwks.json", 0, NULL);
    json_t *good = json_array_get(json_object_get(doc, "keys"), 1);
    const char *n = json_string_value(json_object_get(good, "n"));
    json_t *decoy = json_array_get(json_object_get(doc, "keys"), 0);
    const char *decoy_n = json_string_value(json_object_get(decoy, "n"));
    json_t *keys =
        json_pack("[{s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s,s:s}, {s:s,s:s,s:s},"
                  " {s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s},"
                  " {s:s,s:s,s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s}, {s:s,s:s,s:s,s:s}, i]",
                  "kty", "EC", "kid", "ec", "n", n, "e", "AQAB",                 // not RSA
                  "kty", "RSA", "kid", "enc", "use", "enc", "n", n, "e", "AQAB", // not for signing
                  "kty", "RSA", "kid", "384", "alg", "RS384", "n", n, "e", "AQAB", // another alg
                  "kty", "RSA", "n", n, "e", "AQAB",                               // no kid
                  "kty", "RSA", "kid", "small", "n", "AQAB", "e", "AQAB",          // 17-bit modulus
                  "kty", "RSA", "kid", "e1", "n", n, "e", "AQ",                    // e = 1
                  "kty", "RSA", "kid", "even", "n", n, "e", "AQAA",                // e even
                  "kty", "RSA", "kid", "b64", "n", "!!", "e", "AQAB",              // not base64url
                  "kty", "RSA", "kid", "ok", "use", "sig", "alg", "RS256", "n", n, "e", "AQAB",
                  "kty", "RSA", "kid", "ok", "n", decoy_n, "e", "AQAB",  // repeated kid: first wins
                  "kty", "RSA", "kid", "plain", "n", n, "e", "AQAB", 7); // not even an object
    ck_assert_ptr_nonnull(keys);
    json_t *set_doc = json_pack("{s:o, s:s}", "keys", keys, "_comment", "extra members are fine");
    char *set_text = json_dumps(set_doc, 0);
    set = sb_jwks_parse(set_text, strlen(set_text), &err);
    ck_assert_msg(set != NULL, "parse: %s", err.msg);
    ck_assert_uint_eq(sb_jwks_size(set), 2);
    ck_assert_ptr_nonnull(sb_jwks_key(set, "ok"));
    ck_assert_ptr_nonnull(sb_jwks_key(set, "plain"));
    ck_assert_ptr_null(sb_jwks_key(set, "e1"));
    ck_assert_ptr_null(sb_jwks_key(set, "small"));
    sb_jwks_destroy(&set);
    free(set_text);
    json_decref(set_doc);
    json_decref(doc);

    static const char *const bad[] = {
        "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[]}", "{\"keys\":[1,2]}", "{\"keys\":["};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        ck_assert_ptr_null(sb_jwks_parse(bad[i], strlen(bad[i]), &err));
        ck_assert_msg(strncmp(err.msg, "invalid JWKS", 12) == 0, "%s: %s", bad[i], err.msg);
    }
}
END_TEST

START_TEST(jwks_file_reload_on_unknown_kid_is_rate_limited)
{
    char *path = tmp_path("jwks.json");
    write_jwks(path, 0); // the signing key is not published yet
    sb_google_verifier_t *v = new_verifier(path, NULL, EMAIL);
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1); // read at start
    expect_token(v, "valid", NOW, "unknown_kid");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1); // the start counts as a load
    write_jwks(path, 1);                                    // Google publishes the new key
    expect_token(v, "valid", NOW + 30, "unknown_kid");
    expect_token(v, "valid", NOW + 59, "unknown_kid");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1);
    expect_token(v, "valid", NOW + 60, "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 2);
    // A flood of made-up kids costs one reload a minute, not one per token.
    for (int i = 0; i < 50; i++)
        expect_token(v, "unknown-kid", NOW + 61 + i, "unknown_kid");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 2);
    expect_token(v, "unknown-kid", NOW + 120, "unknown_kid");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 3);
    expect_token(v, "valid", NOW + 121, "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 3);
    sb_google_verifier_destroy(&v);
    free(path);
}
END_TEST

START_TEST(jwks_is_reloaded_when_stale_and_kept_when_reload_fails)
{
    char *path = tmp_path("jwks.json");
    write_jwks(path, 1);
    sb_google_verifier_t *v = new_verifier(path, NULL, EMAIL);
    expect_token(v, "valid", NOW, "ok");
    expect_token(v, "valid", NOW + SB_JWKS_MAX_AGE_S - 1, "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1);
    // Age reached: reload. The file is gone now, so the old keys keep working.
    ck_assert_int_eq(unlink(path), 0);
    char *claims = claims_with("{\"exp\":1795543668}"); // NOW + 10000
    char *value = mint_raw(RS256_HEADER, claims, "test-rsa-key.pem");
    ck_assert_str_eq(verdict(v, value, NOW + SB_JWKS_MAX_AGE_S), "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 2);
    ck_assert_str_eq(verdict(v, value, NOW + SB_JWKS_MAX_AGE_S + SB_JWKS_RETRY_MIN_S - 1), "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 2);
    ck_assert_str_eq(verdict(v, value, NOW + SB_JWKS_MAX_AGE_S + SB_JWKS_RETRY_MIN_S), "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 3); // failed reloads retry sooner
    // Once the file is back with the key removed, the stale key goes away.
    write_jwks(path, 0);
    ck_assert_str_eq(verdict(v, value, NOW + SB_JWKS_MAX_AGE_S + 2 * SB_JWKS_RETRY_MIN_S),
                     "unknown_kid");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 4);
    free(value);
    free(claims);
    sb_google_verifier_destroy(&v);
    free(path);
}
END_TEST

START_TEST(jwks_from_file_url_is_fetched_lazily_and_rate_limited)
{
    char *path = tmp_path("certs.json");
    write_jwks(path, 0);
    char *url = sb_xasprintf("file://%s", path);
    sb_google_verifier_t *v = new_verifier(NULL, url, EMAIL);
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 0); // nothing fetched at start
    expect_token(v, "valid", NOW, "unknown_kid");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1);
    write_jwks(path, 1);
    expect_token(v, "valid", NOW + 1, "unknown_kid");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1);
    expect_token(v, "valid", NOW + SB_JWKS_REFETCH_MIN_S, "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 2);
    sb_google_verifier_destroy(&v);
    free(url);
    free(path);
}
END_TEST

START_TEST(jwks_url_failure_is_jwks_unavailable_then_recovers)
{
    char *jwks = jwks_text(1);
    char *r500 = http_response(500, "", "{\"error\":\"backend\"}");
    char *r200 =
        http_response(200, "Cache-Control: public, max-age=120, must-revalidate\r\n", jwks);
    char *r200b = http_response(200, "", jwks);
    const char *const responses[] = {r500, r200, r200b};
    http_server_t server = serve(responses, 3);
    char *url = sb_xasprintf("http://127.0.0.1:%d/oauth2/v3/certs", server.port);
    sb_google_verifier_t *v = new_verifier(NULL, url, EMAIL);

    expect_token(v, "valid", NOW, "jwks_unavailable");
    ck_assert_msg(strstr(sb_google_verifier_jwks_error(v), "HTTP status 500") != NULL, "err: %s",
                  sb_google_verifier_jwks_error(v));
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1);
    // Malformed tokens are judged without any fetch.
    expect_token(v, "malformed-two-segments", NOW + 1, "malformed_jwt");
    expect_token(v, "valid", NOW + SB_JWKS_RETRY_MIN_S - 1, "jwks_unavailable");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 1);
    expect_token(v, "valid", NOW + SB_JWKS_RETRY_MIN_S, "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 2);
    // The server said max-age=120: the set is fresh until then, and reloaded after.
    expect_token(v, "valid", NOW + SB_JWKS_RETRY_MIN_S + 119, "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 2);
    expect_token(v, "valid", NOW + SB_JWKS_RETRY_MIN_S + 120, "ok");
    ck_assert_uint_eq(sb_google_verifier_jwks_loads(v), 3);

    sb_google_verifier_destroy(&v);
    int status;
    ck_assert_int_eq(waitpid(server.pid, &status, 0), server.pid); // served all three
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(url);
    free(r500);
    free(r200);
    free(r200b);
    free(jwks);
}
END_TEST

START_TEST(jwks_url_unreachable_or_oversized_is_jwks_unavailable)
{
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    sb_google_verifier_t *v = new_verifier(NULL, "http://127.0.0.1:1/certs", EMAIL);
    expect_token(v, "valid", NOW, "jwks_unavailable");
    ck_assert_str_ne(sb_google_verifier_jwks_error(v), "");
    sb_google_verifier_destroy(&v);

    char *path = tmp_path("huge.json");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < SB_JWKS_MAX_BYTES / 1024 + 1; i++)
        fprintf(f, "%1024s", " ");
    fclose(f);
    char *url = sb_xasprintf("file://%s", path);
    v = new_verifier(NULL, url, EMAIL);
    expect_token(v, "valid", NOW, "jwks_unavailable");
    ck_assert_msg(strstr(sb_google_verifier_jwks_error(v), "larger than") != NULL, "err: %s",
                  sb_google_verifier_jwks_error(v));
    sb_google_verifier_destroy(&v);
    free(url);

    // Schemes other than https, http and file are not fetched.
    v = new_verifier(NULL, "ftp://127.0.0.1/certs", EMAIL);
    expect_token(v, "valid", NOW, "jwks_unavailable");
    sb_google_verifier_destroy(&v);
    free(path);
}
END_TEST

static Suite *
sb_verify_google_suite(void)
{
    Suite *s = suite_create("verify_google");
    TCase *tc = tcase_create("verify_google");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, every_fixture_token_gets_its_verdict);
    tcase_add_test(tc, email_is_only_checked_when_a_service_account_is_set);
    tcase_add_test(tc, expiry_allows_sixty_seconds_of_skew);
    tcase_add_test(tc, reason_out_may_be_null);
    tcase_add_test(tc, bearer_scheme_is_case_insensitive_and_spaces_are_trimmed);
    tcase_add_test(tc, missing_or_foreign_authorization_is_missing_bearer);
    tcase_add_test(tc, oversized_header_is_malformed);
    tcase_add_test(tc, token_shape_is_strict);
    tcase_add_test(tc, minted_good_token_passes);
    tcase_add_test(tc, minted_header_cases);
    tcase_add_test(tc, minted_claim_cases);
    tcase_add_test(tc, claims_are_not_trusted_before_the_signature);
    tcase_add_test(tc, new_refuses_bad_configuration);
    tcase_add_test(tc, jwks_parse_keeps_only_usable_rs256_keys);
    tcase_add_test(tc, jwks_file_reload_on_unknown_kid_is_rate_limited);
    tcase_add_test(tc, jwks_is_reloaded_when_stale_and_kept_when_reload_fails);
    tcase_add_test(tc, jwks_from_file_url_is_fetched_lazily_and_rate_limited);
    tcase_add_test(tc, jwks_url_failure_is_jwks_unavailable_then_recovers);
    tcase_add_test(tc, jwks_url_unreachable_or_oversized_is_jwks_unavailable);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_verify_google_suite)
