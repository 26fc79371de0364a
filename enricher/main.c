/* sb-enricher: reads verified events on ENRICHER_PULL_ENDPOINT (PULL, binds), fetches what
 * a Gmail push only announces (history.list, messages.get with GOOGLE_TOKEN_URL tokens,
 * mailboxes read from DATABASE_URL) and writes every event on to ENRICHER_PUSH_ENDPOINT
 * (PUSH, connects), the fetched records in its extra frame; acks nothing (the writer does)
 * and sends heartbeats on ACK_ENDPOINT. Every variable: --help. See enricher.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <curl/curl.h>
#include "enricher.h"
#include "sb_config.h"
#include "sb_log.h"
#include "sb_banned.h"

static volatile sig_atomic_t s_stop = 0; // set by SIGTERM/SIGINT; the loop then drains

static void
s_on_signal(int signo)
{
    (void)signo;
    s_stop = 1;
}

// Our own handlers, not CZMQ's: no SA_RESTART, so zmq_poll returns EINTR at once.
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
    const sb_config_var_t *vars = sb_enricher_config_vars;
    size_t n_vars = sb_enricher_config_vars_n;
    int rc = sb_config_args(argc, argv, vars, n_vars, "sb-enricher",
                            "Fetches what notifications announce (Gmail e-mails) and passes "
                            "complete records to the writer.");
    if (rc != 0)
        return rc == 1 ? EXIT_SUCCESS : 2;
    sb_enricher_config_t conf;
    memset(&conf, 0, sizeof conf);
    if (sb_config_load(vars, n_vars, &conf, stderr) != 0)
        return 2;
    if (sb_enricher_config_check(&conf, stderr) != 0) {
        sb_config_release(vars, n_vars, &conf);
        return 2;
    }
    sb_log_level_t level = SB_LOG_INFO;
    sb_log_level_parse(conf.log_level, &level);
    sb_log_init("enricher", level);
    char *described = sb_config_describe(vars, n_vars, &conf);
    sb_log_info(NULL, "sb-enricher %s starting: %s", SB_VERSION, described);
    free(described);

    s_signals_install();
    curl_global_init(CURL_GLOBAL_DEFAULT); // once, before any thread uses libcurl
    sb_err_t err = {0};
    int status = EXIT_SUCCESS;
    sb_enricher_t *enricher = sb_enricher_new(&conf, &err);
    if (enricher == NULL) {
        sb_log_error(NULL, "cannot start: %s", err.msg);
        status = EXIT_FAILURE;
    } else {
        sb_enricher_run(enricher, &s_stop);
        sb_log_info(NULL, "stopped");
        sb_enricher_destroy(&enricher);
    }
    curl_global_cleanup();
    sb_config_release(vars, n_vars, &conf);
    return status;
}
