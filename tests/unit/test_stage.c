/* test_stage - sb_stage_main, the shared main() of the stages: the exit status of each
 * way a start or a run can end, what reaches stderr, and the signals (SIGTERM and SIGINT
 * set *stop and call on_stop, SIGPIPE is ignored). Check forks each test, so the handlers,
 * the environment and the stderr redirection stay in that test. */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sb_check.h"
#include "sb_stage.h"
#include "sb_banned.h"

typedef struct {
    char *log_level;    // LOG_LEVEL
    int64_t answer;     // SBT_ANSWER, an int in [0, 100]
    sb_stage_end_t end; // what s_run returns (set by the test, not from the environment)
} conf_t;

static const sb_config_var_t s_vars[] = {
    {"LOG_LEVEL", SB_CONFIG_STRING, offsetof(conf_t, log_level), "info", 0, 0, 0, "level"},
    {"SBT_ANSWER", SB_CONFIG_INT, offsetof(conf_t, answer), "42", 0, 100, 0, "an answer"},
};

static int s_runs;                            // how often s_run was called
static volatile sig_atomic_t s_on_stop_calls; // how often s_on_stop was called

static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    conf_t *c = conf;
    s_runs++;
    ck_assert_int_eq(c->answer, 42);
    ck_assert_int_eq(*stop, 0);
    if (c->end != SB_STAGE_STOPPED)
        sb_err_set(err, 0, "the test says %s", c->end == SB_STAGE_FAILED ? "fail" : "no");
    return c->end;
}

// Signals itself as an operator would, then reports what the handler did.
static sb_stage_end_t
s_run_signalled(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    (void)conf;
    raise(SIGPIPE); // ignored: a peer that hangs up must not kill the stage
    raise(SIGTERM);
    if (*stop != 1 || s_on_stop_calls != 1) {
        sb_err_set(err, 0, "after SIGTERM: stop %d, on_stop calls %d", (int)*stop,
                   (int)s_on_stop_calls);
        return SB_STAGE_FAILED;
    }
    raise(SIGINT);
    if (s_on_stop_calls != 2) {
        sb_err_set(err, 0, "SIGINT did not call on_stop");
        return SB_STAGE_FAILED;
    }
    return SB_STAGE_STOPPED;
}

static void
s_on_stop(void)
{
    s_on_stop_calls++;
}

static int
s_check_answer(void *conf, FILE *problems)
{
    conf_t *c = conf;
    if (c->answer == 42)
        return 0;
    fprintf(problems, "config: SBT_ANSWER=\"%lld\" is not the answer\n", (long long)c->answer);
    return -1;
}

static sb_stage_spec_t
s_spec(void)
{
    return (sb_stage_spec_t){.name = "test",
                             .description = "Tests sb_stage_main.",
                             .vars = s_vars,
                             .n_vars = sizeof s_vars / sizeof s_vars[0],
                             .run = s_run};
}

// stderr goes to a temporary file until s_stderr_text reads it back (caller frees).
static char s_err_path[] = "/tmp/sb_test_stage_XXXXXX";

static void
s_stderr_capture(void)
{
    int fd = mkstemp(s_err_path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

static char *
s_stderr_text(void)
{
    fflush(stderr);
    FILE *f = fopen(s_err_path, "r");
    ck_assert_ptr_nonnull(f);
    char *text = calloc(1, 65536);
    ck_assert_ptr_nonnull(text);
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
    unlink(s_err_path);
    return text;
}

static int
s_main(const sb_stage_spec_t *spec, conf_t *conf, const char *arg)
{
    char program[] = "sb-test";
    char argument[32] = "";
    snprintf(argument, sizeof argument, "%s", arg ? arg : "");
    char *argv[] = {program, argument, NULL};
    return sb_stage_main(spec, conf, arg ? 2 : 1, argv);
}

static void
s_env(const char *log_level, const char *answer)
{
    if (log_level)
        setenv("LOG_LEVEL", log_level, 1);
    else
        unsetenv("LOG_LEVEL");
    if (answer)
        setenv("SBT_ANSWER", answer, 1);
    else
        unsetenv("SBT_ANSWER");
}

START_TEST(help_and_version_exit_zero_without_running)
{
    s_env(NULL, NULL);
    sb_stage_spec_t spec = s_spec();
    conf_t conf = {0};
    ck_assert_int_eq(s_main(&spec, &conf, "--help"), 0);
    ck_assert_int_eq(s_main(&spec, &conf, "--version"), 0);
    ck_assert_int_eq(s_runs, 0);
}
END_TEST

START_TEST(stray_argument_exits_two)
{
    s_env(NULL, NULL);
    s_stderr_capture();
    sb_stage_spec_t spec = s_spec();
    conf_t conf = {0};
    int rc = s_main(&spec, &conf, "--frob");
    char *text = s_stderr_text();
    ck_assert_int_eq(rc, 2);
    ck_assert_int_eq(s_runs, 0);
    ck_assert_msg(strstr(text, "sb-test: unknown argument \"--frob\"") != NULL, "%s", text);
    free(text);
}
END_TEST

START_TEST(bad_log_level_exits_two_naming_it)
{
    s_env("nope", NULL);
    s_stderr_capture();
    sb_stage_spec_t spec = s_spec();
    conf_t conf = {0};
    int rc = s_main(&spec, &conf, NULL);
    char *text = s_stderr_text();
    ck_assert_int_eq(rc, 2);
    ck_assert_int_eq(s_runs, 0);
    ck_assert_str_eq(text, "config: LOG_LEVEL=\"nope\" is not one of debug, info, warn, error\n");
    ck_assert_ptr_null(conf.log_level); // released
    free(text);
}
END_TEST

START_TEST(bad_variable_exits_two)
{
    s_env(NULL, "many");
    sb_stage_spec_t spec = s_spec();
    conf_t conf = {0};
    ck_assert_int_eq(s_main(&spec, &conf, NULL), 2);
    ck_assert_int_eq(s_runs, 0);
}
END_TEST

START_TEST(failed_check_exits_two)
{
    s_env(NULL, "7");
    s_stderr_capture();
    sb_stage_spec_t spec = s_spec();
    spec.check = s_check_answer;
    conf_t conf = {0};
    int rc = s_main(&spec, &conf, NULL);
    char *text = s_stderr_text();
    ck_assert_int_eq(rc, 2);
    ck_assert_int_eq(s_runs, 0);
    ck_assert_str_eq(text, "config: SBT_ANSWER=\"7\" is not the answer\n");
    free(text);
}
END_TEST

// Each end of a run: its exit status and its last log line.
START_TEST(run_end_gives_status_and_log_line)
{
    static const struct {
        sb_stage_end_t end;
        int status;
        const char *line;
    } cases[] = {
        {SB_STAGE_STOPPED, 0, "\"msg\":\"stopped\""},
        {SB_STAGE_FAILED, 1, "\"msg\":\"stopped on error: the test says fail\""},
        {SB_STAGE_CANNOT_START, 1, "\"msg\":\"cannot start: the test says no\""},
    };
    s_env("info", NULL);
    s_stderr_capture();
    sb_stage_spec_t spec = s_spec();
    spec.check = s_check_answer;
    spec.curl = _i == 0; // and once with libcurl set up and cleaned up
    conf_t conf = {.end = cases[_i].end};
    int rc = s_main(&spec, &conf, NULL);
    char *text = s_stderr_text();
    ck_assert_int_eq(rc, cases[_i].status);
    ck_assert_int_eq(s_runs, 1);
    ck_assert_msg(strstr(text, "\"stage\":\"test\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\"msg\":\"starting sb-test ") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "LOG_LEVEL=info SBT_ANSWER=42") != NULL, "%s", text);
    ck_assert_msg(strstr(text, cases[_i].line) != NULL, "%s", text);
    free(text);
}
END_TEST

START_TEST(signals_set_stop_and_call_on_stop)
{
    s_env(NULL, NULL);
    sb_stage_spec_t spec = s_spec();
    spec.run = s_run_signalled;
    spec.on_stop = s_on_stop;
    conf_t conf = {0};
    ck_assert_int_eq(s_main(&spec, &conf, NULL), 0);
    ck_assert_int_eq(s_on_stop_calls, 2);
}
END_TEST

// The push socket reaches its peer, never queues to an absent one, lingers as asked, and
// is watched; the heartbeat socket keeps a short queue and does not linger.
START_TEST(push_and_heartbeat_sockets_are_set_up)
{
    sb_metrics_t *metrics = sb_metrics_new();
    sb_err_t err = {0};
    zsock_t *pull = zsock_new_pull("@inproc://sbt-push");
    ck_assert_ptr_nonnull(pull);
    sb_zmonitor_t *mon = NULL;
    sb_resolver_t *peers = NULL;
    zsock_t *push = sb_stage_push_socket(">inproc://sbt-push", 1234, metrics, &mon, &peers, &err);
    ck_assert_msg(push != NULL, "push: %s", err.msg);
    ck_assert_ptr_nonnull(mon);
    ck_assert_ptr_nonnull(peers);
    ck_assert_int_eq(zsock_immediate(push), 1);
    ck_assert_int_eq(zsock_linger(push), 1234);
    ck_assert_int_eq(zstr_send(push, "hello"), 0);
    char *got = zstr_recv(pull);
    ck_assert_str_eq(got, "hello");
    zstr_free(&got);

    sb_zmonitor_t *hb_mon = NULL;
    sb_resolver_t *hb_peers = NULL;
    zsock_t *pub =
        sb_stage_heartbeat_socket(">inproc://sbt-beat", metrics, &hb_mon, &hb_peers, &err);
    ck_assert_msg(pub != NULL, "heartbeat: %s", err.msg);
    ck_assert_ptr_nonnull(hb_mon);
    ck_assert_int_eq(zsock_type(pub), ZMQ_PUB);
    ck_assert_int_eq(zsock_sndhwm(pub), SB_STAGE_HEARTBEAT_SNDHWM);
    ck_assert_int_eq(zsock_linger(pub), 0);
    size_t len = 0;
    char *text = sb_metrics_render(metrics, &len);
    ck_assert_msg(strstr(text, "socket=\"push\"") && strstr(text, "socket=\"heartbeat\""), "%s",
                  text);
    free(text);

    sb_resolver_destroy(&hb_peers);
    sb_zmonitor_destroy(&hb_mon);
    zsock_destroy(&pub);
    sb_resolver_destroy(&peers);
    sb_zmonitor_destroy(&mon);
    zsock_destroy(&push);
    zsock_destroy(&pull);
    sb_metrics_destroy(&metrics);
}
END_TEST

START_TEST(bad_endpoint_leaves_nothing_over)
{
    sb_metrics_t *metrics = sb_metrics_new();
    sb_err_t err = {0};
    sb_zmonitor_t *mon = NULL;
    sb_resolver_t *peers = NULL;
    zsock_t *push = sb_stage_push_socket(">nope://x", 0, metrics, &mon, &peers, &err);
    ck_assert_ptr_null(push);
    ck_assert_ptr_null(mon);
    ck_assert_ptr_null(peers);
    ck_assert_msg(strstr(err.msg, "nope://x") != NULL, "%s", err.msg);
    zsock_t *pub = sb_stage_heartbeat_socket("", metrics, &mon, &peers, &err);
    ck_assert_ptr_null(pub);
    ck_assert_ptr_null(mon);
    ck_assert_ptr_null(peers);
    sb_metrics_destroy(&metrics);
}
END_TEST

static Suite *
sb_stage_suite(void)
{
    Suite *s = suite_create("sb_stage");
    TCase *tc = tcase_create("main");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, help_and_version_exit_zero_without_running);
    tcase_add_test(tc, stray_argument_exits_two);
    tcase_add_test(tc, bad_log_level_exits_two_naming_it);
    tcase_add_test(tc, bad_variable_exits_two);
    tcase_add_test(tc, failed_check_exits_two);
    tcase_add_loop_test(tc, run_end_gives_status_and_log_line, 0, 3);
    tcase_add_test(tc, signals_set_stop_and_call_on_stop);
    suite_add_tcase(s, tc);
    TCase *sockets = tcase_create("sockets");
    tcase_set_timeout(sockets, 10);
    tcase_add_test(sockets, push_and_heartbeat_sockets_are_set_up);
    tcase_add_test(sockets, bad_endpoint_leaves_nothing_over);
    suite_add_tcase(s, sockets);
    return s;
}

SB_CHECK_MAIN(sb_stage_suite)
