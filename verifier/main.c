/* sb-verifier: reads envelopes on VERIFIER_PULL_ENDPOINT (PULL, binds), writes each one
 * with a verdict and redacted headers to VERIFIER_PUSH_ENDPOINT (PUSH, connects), acks
 * nothing (the writer acks after commit) and sends heartbeats on ACK_ENDPOINT (PUB).
 * Variables: LOG_LEVEL, METRICS_LISTEN, INSTANCE_ID, RINGCENTRAL_VERIFICATION_TOKEN,
 * RINGCENTRAL_WEBHOOK_SECRET, GMAIL_PUSH_TOKEN, SWITCHBOARD_ALLOW_UNVERIFIED (--help). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "sb_config.h"
#include "sb_log.h"
#include "verifier.h"
#include "sb_banned.h"

static volatile sig_atomic_t s_stop = 0; // set by SIGTERM/SIGINT; the loop finishes its event

static void
s_on_signal(int signo)
{
    (void)signo;
    s_stop = 1;
}

// Our own handlers, not CZMQ's: no SA_RESTART, so a blocking ZeroMQ call returns
// EINTR and the loop looks at s_stop at once.
static void
s_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN; // a metrics client that hangs up must not kill the stage
    sigaction(SIGPIPE, &sa, NULL);
}

static int
s_set(const char *value)
{
    return value != NULL && value[0] != '\0';
}

// Say loudly, once, what the configuration lets through (SPEC "Verification").
static void
s_warn_weak_config(const sb_verifier_config_t *conf)
{
    const char *fate = conf->allow_unverified ? "ACCEPTED UNVERIFIED" : "rejected";
    if (conf->allow_unverified)
        sb_log_warn(NULL, "SWITCHBOARD_ALLOW_UNVERIFIED is on: events of a source with no "
                          "verification configured are accepted unverified (development only)");
    if (!s_set(conf->rc_verification_token) && !s_set(conf->rc_webhook_secret))
        sb_log_warn(NULL, "no RingCentral verification configured: RingCentral events will be %s",
                    fate);
    else if (!s_set(conf->rc_verification_token))
        sb_log_warn(NULL,
                    "RINGCENTRAL_WEBHOOK_SECRET is set but RINGCENTRAL_VERIFICATION_TOKEN is "
                    "not: RingCentral itself sends no signature, its events will be rejected");
    if (!s_set(conf->gmail_push_token))
        sb_log_warn(NULL, "no Gmail push verification configured: Gmail pushes will be %s", fate);
}

int
main(int argc, char **argv)
{
    const sb_config_var_t *vars = sb_verifier_config_vars;
    size_t n_vars = sb_verifier_config_vars_n;
    int rc = sb_config_args(argc, argv, vars, n_vars, "sb-verifier",
                            "Verifies webhook events and passes them on with a verdict.");
    if (rc != 0)
        return rc == 1 ? EXIT_SUCCESS : 2;
    sb_verifier_config_t conf;
    memset(&conf, 0, sizeof conf);
    if (sb_config_load(vars, n_vars, &conf, stderr) != 0)
        return 2;
    sb_log_level_t level;
    if (sb_log_level_parse(conf.log_level, &level) != 0) {
        fprintf(stderr, "config: LOG_LEVEL=\"%s\" is not one of debug, info, warn, error\n",
                conf.log_level ? conf.log_level : "");
        sb_config_release(vars, n_vars, &conf);
        return 2;
    }
    sb_log_init("verifier", level);
    char *described = sb_config_describe(vars, n_vars, &conf);
    sb_log_info(NULL, "sb-verifier %s starting: %s", SB_VERSION, described);
    free(described);
    s_warn_weak_config(&conf);

    zsys_handler_set(NULL); // before the first socket, or CZMQ installs its own handlers
    s_signals_install();
    sb_err_t err = {0};
    int status = EXIT_SUCCESS;
    sb_verifier_t *verifier = sb_verifier_new(&conf, &err);
    if (verifier == NULL) {
        sb_log_error(NULL, "cannot start: %s", err.msg);
        status = EXIT_FAILURE;
    } else {
        sb_verifier_run(verifier, &s_stop);
        sb_log_info(NULL, "stopping: queued events are flushed for up to 2 s");
        sb_verifier_destroy(&verifier);
    }
    sb_config_release(vars, n_vars, &conf);
    return status;
}
