/* test_config - sb_config: every type, defaults, ranges, the exact problem lines, several
 * problems at once, secrets in describe and help, and the common command line.
 * Check forks each test, so setenv/unsetenv here stay in that test. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sb_check.h"
#include "sb_config.h"
#include "sb_banned.h"

typedef struct {
    char *database_url;     // required string
    char *listen;           // string with a default
    char *jwks_file;        // string, no default
    int64_t max_body_bytes; // int with a range
    int64_t offset;         // int with no range (min == max == 0), negative allowed
    int allow_unverified;   // bool, default 0
    int strict;             // bool, default 1
    char *secret;           // secret string
} conf_t;

static const sb_config_var_t s_vars[] = {
    {"DATABASE_URL", SB_CONFIG_STRING, offsetof(conf_t, database_url), NULL, 0, 0,
     SB_CONFIG_REQUIRED, "PostgreSQL connection URI"},
    {"INGRESS_LISTEN", SB_CONFIG_STRING, offsetof(conf_t, listen), "0.0.0.0:8001", 0, 0, 0,
     "HTTP listen address"},
    {"GOOGLE_JWKS_FILE", SB_CONFIG_STRING, offsetof(conf_t, jwks_file), NULL, 0, 0, 0,
     "JWKS file instead of the URL"},
    {"MAX_BODY_BYTES", SB_CONFIG_INT, offsetof(conf_t, max_body_bytes), "1048576", 1024, 67108864,
     0, "largest accepted body"},
    {"SBT_OFFSET", SB_CONFIG_INT, offsetof(conf_t, offset), "-5", 0, 0, 0, "any integer"},
    {"SWITCHBOARD_ALLOW_UNVERIFIED", SB_CONFIG_BOOL, offsetof(conf_t, allow_unverified), "0", 0, 0,
     0, "accept events without a verification scheme"},
    {"SBT_STRICT", SB_CONFIG_BOOL, offsetof(conf_t, strict), "1", 0, 0, 0, "be strict"},
    {"RINGCENTRAL_WEBHOOK_SECRET", SB_CONFIG_STRING, offsetof(conf_t, secret), NULL, 0, 0,
     SB_CONFIG_SECRET, "HMAC secret"},
};
#define N_VARS (sizeof s_vars / sizeof s_vars[0])

// Start each test from a known environment: the machine running the tests may well
// have DATABASE_URL set.
static void
s_clean_env(void)
{
    for (size_t i = 0; i < N_VARS; i++)
        unsetenv(s_vars[i].name);
}

// Run sb_config_load and return what it wrote to `problems` (caller frees).
static char *
s_load(conf_t *conf, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *problems = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(problems);
    memset(conf, 0xA5, sizeof *conf); // garbage in: load must not read or free it
    *rc = sb_config_load(s_vars, N_VARS, conf, problems);
    fclose(problems);
    return text;
}

START_TEST(defaults_apply_when_unset)
{
    s_clean_env();
    setenv("DATABASE_URL", "postgres://localhost/sb", 1);
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_msg(rc == 0, "problems: %s", problems);
    ck_assert_str_eq(problems, "");
    ck_assert_str_eq(conf.database_url, "postgres://localhost/sb");
    ck_assert_str_eq(conf.listen, "0.0.0.0:8001");
    ck_assert_ptr_null(conf.jwks_file);
    ck_assert_int_eq(conf.max_body_bytes, 1048576);
    ck_assert_int_eq(conf.offset, -5);
    ck_assert_int_eq(conf.allow_unverified, 0);
    ck_assert_int_eq(conf.strict, 1);
    ck_assert_ptr_null(conf.secret);
    sb_config_release(s_vars, N_VARS, &conf);
    ck_assert_ptr_null(conf.database_url);
    ck_assert_ptr_null(conf.listen);
    free(problems);
}
END_TEST

START_TEST(set_values_override_defaults)
{
    s_clean_env();
    setenv("DATABASE_URL", "postgres://db/x", 1);
    setenv("INGRESS_LISTEN", "127.0.0.1:9000", 1);
    setenv("GOOGLE_JWKS_FILE", "/etc/jwks.json", 1);
    setenv("MAX_BODY_BYTES", "2048", 1);
    setenv("SBT_OFFSET", "-9223372036854775808", 1);
    setenv("SWITCHBOARD_ALLOW_UNVERIFIED", "yes", 1);
    setenv("SBT_STRICT", "off", 1);
    setenv("RINGCENTRAL_WEBHOOK_SECRET", "s3cret", 1);
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_msg(rc == 0, "problems: %s", problems);
    ck_assert_str_eq(conf.listen, "127.0.0.1:9000");
    ck_assert_str_eq(conf.jwks_file, "/etc/jwks.json");
    ck_assert_int_eq(conf.max_body_bytes, 2048);
    ck_assert(conf.offset == INT64_MIN);
    ck_assert_int_eq(conf.allow_unverified, 1);
    ck_assert_int_eq(conf.strict, 0);
    ck_assert_str_eq(conf.secret, "s3cret");
    sb_config_release(s_vars, N_VARS, &conf);
    free(problems);
}
END_TEST

START_TEST(empty_string_and_int_mean_unset)
{
    s_clean_env();
    setenv("DATABASE_URL", "x", 1);
    setenv("INGRESS_LISTEN", "", 1);
    setenv("GOOGLE_JWKS_FILE", "", 1);
    setenv("MAX_BODY_BYTES", "", 1);
    setenv("SBT_STRICT", "", 1); // a bool set to "" is 0, not the default
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_msg(rc == 0, "problems: %s", problems);
    ck_assert_str_eq(conf.listen, "0.0.0.0:8001");
    ck_assert_ptr_null(conf.jwks_file);
    ck_assert_int_eq(conf.max_body_bytes, 1048576);
    ck_assert_int_eq(conf.strict, 0);
    sb_config_release(s_vars, N_VARS, &conf);
    free(problems);
}
END_TEST

START_TEST(int_range_is_inclusive)
{
    static const struct {
        const char *text;
        int ok;
        int64_t value;
    } cases[] = {
        {"1024", 1, 1024},  {"67108864", 1, 67108864},
        {"+4096", 1, 4096}, {"1023", 0, 0},
        {"67108865", 0, 0}, {"-1", 0, 0},
        {"1MB", 0, 0},      {"12 ", 0, 0},
        {" 2048", 0, 0},    {"0x800", 0, 0},
        {"abc", 0, 0},      {"99999999999999999999", 0, 0},
        {"4096.0", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_clean_env();
        setenv("DATABASE_URL", "x", 1);
        setenv("MAX_BODY_BYTES", cases[i].text, 1);
        conf_t conf;
        int rc;
        char *problems = s_load(&conf, &rc);
        if (cases[i].ok) {
            ck_assert_msg(rc == 0, "\"%s\": %s", cases[i].text, problems);
            ck_assert_int_eq(conf.max_body_bytes, cases[i].value);
            sb_config_release(s_vars, N_VARS, &conf);
        } else {
            ck_assert_msg(rc == -1, "\"%s\" was accepted", cases[i].text);
            char want[160];
            snprintf(want, sizeof want,
                     "config: MAX_BODY_BYTES=\"%s\" is not an integer in [1024, 67108864]\n",
                     cases[i].text);
            ck_assert_str_eq(problems, want);
        }
        free(problems);
    }
}
END_TEST

START_TEST(int_without_range_rejects_junk_only)
{
    s_clean_env();
    setenv("DATABASE_URL", "x", 1);
    setenv("SBT_OFFSET", "9223372036854775808", 1); // one past INT64_MAX
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(problems, "config: SBT_OFFSET=\"9223372036854775808\" is not an integer\n");
    free(problems);

    setenv("SBT_OFFSET", "9223372036854775807", 1);
    problems = s_load(&conf, &rc);
    ck_assert_msg(rc == 0, "problems: %s", problems);
    ck_assert(conf.offset == INT64_MAX);
    sb_config_release(s_vars, N_VARS, &conf);
    free(problems);
}
END_TEST

START_TEST(bool_accepts_the_documented_words)
{
    static const struct {
        const char *text;
        int value;
    } cases[] = {
        {"1", 1},  {"true", 1}, {"TRUE", 1}, {"yes", 1},   {"Yes", 1},
        {"on", 1}, {"ON", 1},   {"0", 0},    {"false", 0}, {"False", 0},
        {"no", 0}, {"NO", 0},   {"off", 0},  {"Off", 0},   {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_clean_env();
        setenv("DATABASE_URL", "x", 1);
        setenv("SWITCHBOARD_ALLOW_UNVERIFIED", cases[i].text, 1);
        setenv("SBT_STRICT", cases[i].text, 1);
        conf_t conf;
        int rc;
        char *problems = s_load(&conf, &rc);
        ck_assert_msg(rc == 0, "\"%s\": %s", cases[i].text, problems);
        ck_assert_msg(conf.allow_unverified == cases[i].value, "\"%s\"", cases[i].text);
        ck_assert_msg(conf.strict == cases[i].value, "\"%s\"", cases[i].text);
        sb_config_release(s_vars, N_VARS, &conf);
        free(problems);
    }
}
END_TEST

START_TEST(bool_rejects_other_words)
{
    static const char *const bad[] = {"maybe", "2", "y", "n", "truee", " 1", "1 ", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_clean_env();
        setenv("DATABASE_URL", "x", 1);
        setenv("SWITCHBOARD_ALLOW_UNVERIFIED", bad[i], 1);
        conf_t conf;
        int rc;
        char *problems = s_load(&conf, &rc);
        ck_assert_msg(rc == -1, "\"%s\" was accepted", bad[i]);
        char want[128];
        snprintf(want, sizeof want,
                 "config: SWITCHBOARD_ALLOW_UNVERIFIED=\"%s\" is not a boolean (use 1 or 0)\n",
                 bad[i]);
        ck_assert_str_eq(problems, want);
        free(problems);
    }
}
END_TEST

START_TEST(required_missing_or_empty_is_an_error)
{
    s_clean_env();
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(problems, "config: DATABASE_URL is required (PostgreSQL connection URI)\n");
    ck_assert_ptr_null(conf.listen); // a failed load has freed what it allocated
    free(problems);

    setenv("DATABASE_URL", "", 1);
    problems = s_load(&conf, &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(problems, "config: DATABASE_URL is required (PostgreSQL connection URI)\n");
    sb_config_release(s_vars, N_VARS, &conf); // harmless after a failed load
    free(problems);
}
END_TEST

START_TEST(every_problem_is_reported_at_once)
{
    s_clean_env();
    setenv("MAX_BODY_BYTES", "1MB", 1);
    setenv("SWITCHBOARD_ALLOW_UNVERIFIED", "maybe", 1);
    setenv("SBT_OFFSET", "x1", 1);
    setenv("INGRESS_LISTEN", "127.0.0.1:1", 1); // a good one among the bad
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(
        problems, "config: DATABASE_URL is required (PostgreSQL connection URI)\n"
                  "config: MAX_BODY_BYTES=\"1MB\" is not an integer in [1024, 67108864]\n"
                  "config: SBT_OFFSET=\"x1\" is not an integer\n"
                  "config: SWITCHBOARD_ALLOW_UNVERIFIED=\"maybe\" is not a boolean (use 1 or 0)\n");
    ck_assert_ptr_null(conf.listen);
    free(problems);
}
END_TEST

START_TEST(describe_masks_secrets_and_shows_unset_as_empty)
{
    s_clean_env();
    setenv("DATABASE_URL", "postgres://db/x", 1);
    setenv("RINGCENTRAL_WEBHOOK_SECRET", "s3cret", 1);
    setenv("SWITCHBOARD_ALLOW_UNVERIFIED", "on", 1);
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_msg(rc == 0, "problems: %s", problems);
    char *line = sb_config_describe(s_vars, N_VARS, &conf);
    ck_assert_str_eq(line, "DATABASE_URL=postgres://db/x INGRESS_LISTEN=0.0.0.0:8001 "
                           "GOOGLE_JWKS_FILE= MAX_BODY_BYTES=1048576 SBT_OFFSET=-5 "
                           "SWITCHBOARD_ALLOW_UNVERIFIED=1 SBT_STRICT=1 "
                           "RINGCENTRAL_WEBHOOK_SECRET=***");
    ck_assert_ptr_null(strstr(line, "s3cret"));
    free(line);
    sb_config_release(s_vars, N_VARS, &conf);

    unsetenv("RINGCENTRAL_WEBHOOK_SECRET"); // an unset secret shows as empty, not ***
    free(problems);
    problems = s_load(&conf, &rc);
    ck_assert_int_eq(rc, 0);
    line = sb_config_describe(s_vars, N_VARS, &conf);
    ck_assert_ptr_nonnull(strstr(line, " RINGCENTRAL_WEBHOOK_SECRET="));
    ck_assert_int_eq(line[strlen(line) - 1], '=');
    free(line);
    sb_config_release(s_vars, N_VARS, &conf);
    free(problems);
}
END_TEST

START_TEST(describe_quotes_values_with_spaces)
{
    s_clean_env();
    setenv("DATABASE_URL", "host=db user=\"sb\" dbname=x\\y", 1);
    conf_t conf;
    int rc;
    char *problems = s_load(&conf, &rc);
    ck_assert_msg(rc == 0, "problems: %s", problems);
    char *line = sb_config_describe(s_vars, 1, &conf);
    ck_assert_str_eq(line, "DATABASE_URL=\"host=db user=\\\"sb\\\" dbname=x\\\\y\"");
    free(line);
    line = sb_config_describe(s_vars, 0, &conf);
    ck_assert_str_eq(line, "");
    free(line);
    sb_config_release(s_vars, N_VARS, &conf);
    free(problems);
}
END_TEST

START_TEST(help_lists_every_variable_with_marks)
{
    static const sb_config_var_t with_secret_default[] = {
        {"SBT_TOKEN", SB_CONFIG_STRING, 0, "hunter2", 0, 0, SB_CONFIG_SECRET, "a token"},
    };
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    sb_config_print_help(s_vars, N_VARS, "sb-test", "Tests the config module.", out);
    sb_config_print_help(with_secret_default, 1, "sb-test", NULL, out);
    fclose(out);
    ck_assert_msg(strncmp(text, "Usage: sb-test ", 15) == 0, "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "\nTests the config module.\n"));
    for (size_t i = 0; i < N_VARS; i++) {
        ck_assert_msg(strstr(text, s_vars[i].name), "%s missing", s_vars[i].name);
        ck_assert_msg(strstr(text, s_vars[i].help), "help of %s missing", s_vars[i].name);
    }
    // One line per variable: find DATABASE_URL's and check its marks.
    const char *db = strstr(text, "  DATABASE_URL ");
    ck_assert_ptr_nonnull(db);
    const char *eol = strchr(db, '\n');
    const char *mark = strstr(db, "(required)");
    ck_assert(mark != NULL && mark < eol);
    const char *secret = strstr(text, "  RINGCENTRAL_WEBHOOK_SECRET ");
    ck_assert_ptr_nonnull(secret);
    eol = strchr(secret, '\n');
    mark = strstr(secret, "(secret)");
    ck_assert(mark != NULL && mark < eol);
    const char *body = strstr(text, "  MAX_BODY_BYTES ");
    ck_assert_ptr_nonnull(body);
    ck_assert_ptr_nonnull(strstr(body, "1048576"));
    ck_assert_ptr_nonnull(strstr(body, "[1024, 67108864]"));
    ck_assert_ptr_nonnull(strstr(text, "0.0.0.0:8001"));
    ck_assert_ptr_null(strstr(text, "hunter2")); // a secret's default is not printed
    free(text);
}
END_TEST

// Redirect fd (1 or 2) into an unlinked temporary file; returns the file's descriptor
// and puts the saved original in *saved.
static int
s_capture_start(int fd, int *saved)
{
    char path[] = "/tmp/sb_test_config_XXXXXX";
    int tmp = mkstemp(path);
    ck_assert_int_ge(tmp, 0);
    unlink(path);
    fflush(fd == 1 ? stdout : stderr);
    *saved = dup(fd);
    dup2(tmp, fd);
    return tmp;
}

static char *
s_capture_stop(int fd, int tmp, int saved)
{
    fflush(fd == 1 ? stdout : stderr);
    dup2(saved, fd);
    close(saved);
    off_t size = lseek(tmp, 0, SEEK_END);
    char *text = calloc(1, (size_t)size + 1);
    ck_assert_int_eq(pread(tmp, text, (size_t)size, 0), size);
    close(tmp);
    return text;
}

// Run sb_config_args; returns what it wrote to stdout and puts its stderr in *err_text.
static char *
s_args(int *rc, int argc, char **argv, char **err_text)
{
    int saved_out, saved_err;
    int out = s_capture_start(1, &saved_out);
    int err = s_capture_start(2, &saved_err);
    *rc = sb_config_args(argc, argv, s_vars, N_VARS, "sb-test", "Tests the config module.");
    *err_text = s_capture_stop(2, err, saved_err);
    return s_capture_stop(1, out, saved_out);
}

START_TEST(args_none_means_run)
{
    char *argv[] = {(char *)"sb-test", NULL};
    int rc;
    char *err;
    char *out = s_args(&rc, 1, argv, &err);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err, "");
    free(out);
    free(err);
}
END_TEST

START_TEST(args_help_prints_help_and_returns_1)
{
    static const char *const flags[] = {"--help", "-h"};
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {(char *)"sb-test", (char *)flags[i], NULL};
        int rc;
        char *err;
        char *out = s_args(&rc, 2, argv, &err);
        ck_assert_int_eq(rc, 1);
        ck_assert_msg(strncmp(out, "Usage: sb-test ", 15) == 0, "%s: %s", flags[i], out);
        ck_assert_ptr_nonnull(strstr(out, "MAX_BODY_BYTES"));
        ck_assert_str_eq(err, "");
        free(out);
        free(err);
    }
}
END_TEST

START_TEST(args_version_prints_version_and_returns_1)
{
    static const char *const flags[] = {"--version", "-V"};
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {(char *)"sb-test", (char *)flags[i], NULL};
        int rc;
        char *err;
        char *out = s_args(&rc, 2, argv, &err);
        ck_assert_int_eq(rc, 1);
        ck_assert_str_eq(out, "sb-test " SB_VERSION "\n");
        ck_assert_str_eq(err, "");
        free(out);
        free(err);
    }
}
END_TEST

START_TEST(args_unknown_is_an_error_2)
{
    char *argv[] = {(char *)"sb-test", (char *)"--port=80", NULL};
    int rc;
    char *err;
    char *out = s_args(&rc, 2, argv, &err);
    ck_assert_int_eq(rc, 2);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, "sb-test: unknown argument \"--port=80\""));
    free(out);
    free(err);

    char *argv2[] = {(char *)"sb-test", (char *)"--help", (char *)"extra",
                     NULL}; // a typo is not hidden by --help
    out = s_args(&rc, 3, argv2, &err);
    ck_assert_int_eq(rc, 2);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, "unknown argument \"extra\""));
    free(err);
    free(out);
}
END_TEST

// The checks a stage's config_check adds: what passes, and the one line that names the
// variable when it does not.
START_TEST(stage_checks_pass_or_name_the_variable)
{
    static const struct {
        int which; // 0 log level, 1 country code, 2 url
        const char *value;
        const char *line; // NULL: passes
    } cases[] = {
        {0, "debug", NULL},
        {0, "WARNING", NULL},
        {0, "loud", "config: LOG_LEVEL=\"loud\" is not one of debug, info, warn, error\n"},
        {0, NULL, "config: LOG_LEVEL=\"\" is not one of debug, info, warn, error\n"},
        {1, "1", NULL},
        {1, "44", NULL},
        {1, "358", NULL},
        {1, "044",
         "config: DEFAULT_COUNTRY_CODE=\"044\" is not a country code (1 to 3 digits, e.g. 1 or "
         "44)\n"},
        {1, "4a",
         "config: DEFAULT_COUNTRY_CODE=\"4a\" is not a country code (1 to 3 digits, e.g. "
         "1 or 44)\n"},
        {1, "1234",
         "config: DEFAULT_COUNTRY_CODE=\"1234\" is not a country code (1 to 3 digits, "
         "e.g. 1 or 44)\n"},
        {1, NULL,
         "config: DEFAULT_COUNTRY_CODE=\"\" is not a country code (1 to 3 digits, e.g. 1 "
         "or 44)\n"},
        {2, "https://gmail.googleapis.com", NULL},
        {2, "http://127.0.0.1:8080/token", NULL},
        {2, "ftp://x", "config: SBT_URL=\"ftp://x\" is not an http:// or https:// URL\n"},
        {2, "httpx://x", "config: SBT_URL=\"httpx://x\" is not an http:// or https:// URL\n"},
        {2, NULL, "config: SBT_URL=\"\" is not an http:// or https:// URL\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        size_t len = 0;
        FILE *problems = open_memstream(&text, &len);
        ck_assert_ptr_nonnull(problems);
        int rc = cases[i].which == 0   ? sb_config_check_log_level(cases[i].value, problems)
                 : cases[i].which == 1 ? sb_config_check_country_code(cases[i].value, problems)
                                       : sb_config_check_url("SBT_URL", cases[i].value, problems);
        fclose(problems);
        ck_assert_msg(rc == (cases[i].line ? -1 : 0), "case %zu: rc %d", i, rc);
        ck_assert_str_eq(text, cases[i].line ? cases[i].line : "");
        free(text);
    }
}
END_TEST

START_TEST(is_set_means_not_null_and_not_empty)
{
    ck_assert(!sb_config_is_set(NULL));
    ck_assert(!sb_config_is_set(""));
    ck_assert(sb_config_is_set("x"));
    ck_assert(sb_config_is_set(" "));
}
END_TEST

static Suite *
sb_config_suite(void)
{
    Suite *s = suite_create("sb_config");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, defaults_apply_when_unset);
    tcase_add_test(tc, set_values_override_defaults);
    tcase_add_test(tc, empty_string_and_int_mean_unset);
    tcase_add_test(tc, int_range_is_inclusive);
    tcase_add_test(tc, int_without_range_rejects_junk_only);
    tcase_add_test(tc, bool_accepts_the_documented_words);
    tcase_add_test(tc, bool_rejects_other_words);
    tcase_add_test(tc, required_missing_or_empty_is_an_error);
    tcase_add_test(tc, every_problem_is_reported_at_once);
    tcase_add_test(tc, describe_masks_secrets_and_shows_unset_as_empty);
    tcase_add_test(tc, describe_quotes_values_with_spaces);
    tcase_add_test(tc, help_lists_every_variable_with_marks);
    tcase_add_test(tc, args_none_means_run);
    tcase_add_test(tc, args_help_prints_help_and_returns_1);
    tcase_add_test(tc, args_version_prints_version_and_returns_1);
    tcase_add_test(tc, args_unknown_is_an_error_2);
    tcase_add_test(tc, stage_checks_pass_or_name_the_variable);
    tcase_add_test(tc, is_set_means_not_null_and_not_empty);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_config_suite)
