/* sb-renewer: reads mailboxes and ringcentral_subscriptions from DATABASE_URL, renews Gmail
 * watches (users.watch on GMAIL_TOPIC) and RingCentral subscriptions RENEW_BEFORE they
 * expire and writes the new expiries back; acks nothing; sends heartbeats on ACK_ENDPOINT
 * and serves /metrics and /health on METRICS_LISTEN. Every variable: --help. See renewer.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <curl/curl.h>
#include "renewer.h"
#include "sb_config.h"
#include "sb_log.h"
#include "sb_banned.h"

static volatile sig_atomic_t s_stop = 0; // set by SIGTERM/SIGINT; the loop ends its item

static void
s_on_signal(int signo)
{
    (void)signo;
    s_stop = 1;
}

// Our own handlers, not CZMQ's: no SA_RESTART, so a sleep returns at once.
static void
s_signals_install(void)
{
    zsys_handler_set(NULL); // before the first socket, or CZMQ installs its own handlers
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN; // a provider or metrics client that hangs up must not kill us
    sigaction(SIGPIPE, &sa, NULL);
}

int
main(int argc, char **argv)
{
    const sb_config_var_t *vars = sb_renewer_config_vars;
    size_t n_vars = sb_renewer_config_vars_n;
    int rc = sb_config_args(argc, argv, vars, n_vars, "sb-renewer",
                            "Keeps Gmail watches and RingCentral webhook subscriptions alive.");
    if (rc != 0)
        return rc == 1 ? EXIT_SUCCESS : 2;
    sb_renewer_config_t conf;
    memset(&conf, 0, sizeof conf);
    if (sb_config_load(vars, n_vars, &conf, stderr) != 0)
        return 2;
    if (sb_renewer_config_check(&conf, stderr) != 0) {
        sb_config_release(vars, n_vars, &conf);
        return 2;
    }
    sb_log_level_t level = SB_LOG_INFO;
    sb_log_level_parse(conf.log_level, &level);
    sb_log_init("renewer", level);
    char *described = sb_config_describe(vars, n_vars, &conf);
    sb_log_info(NULL, "sb-renewer %s starting: %s", SB_VERSION, described);
    free(described);

    s_signals_install();
    curl_global_init(CURL_GLOBAL_DEFAULT); // once, before any thread uses libcurl
    sb_err_t err = {0};
    int status = EXIT_SUCCESS;
    sb_renewer_t *renewer = sb_renewer_new(&conf, &s_stop, &err);
    if (renewer == NULL) {
        sb_log_error(NULL, "cannot start: %s", err.msg);
        status = EXIT_FAILURE;
    } else {
        sb_renewer_run(renewer);
        sb_log_info(NULL, "stopped");
        sb_renewer_destroy(&renewer);
    }
    curl_global_cleanup();
    sb_config_release(vars, n_vars, &conf);
    return status;
}
