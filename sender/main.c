/* sb-sender: sends the staff replies the application queues in `outbox` (DATABASE_URL):
 * SMS through RingCentral (RINGCENTRAL_*), e-mail through Gmail as a connected mailbox
 * (GOOGLE_*, GMAIL_API_BASE_URL), each stored in communications once sent. Woken by
 * NOTIFY outbox, polls every SENDER_POLL_MS. No ZeroMQ: the database is its queue.
 * Every variable: --help. See sender.h and docs/SENDER.md. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "sender.h"
#include "sb_config.h"
#include "sb_log.h"
#include "sb_banned.h"

static volatile sig_atomic_t s_stop = 0; // set by SIGTERM/SIGINT; the loop then ends

static void
s_on_signal(int signo)
{
    (void)signo;
    s_stop = 1;
}

static void
s_signals_install(void)
{
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
    const sb_config_var_t *vars = sb_sender_config_vars;
    size_t n_vars = sb_sender_config_vars_n;
    int rc = sb_config_args(argc, argv, vars, n_vars, "sb-sender",
                            "Sends the staff replies queued in the outbox table through "
                            "RingCentral (SMS) and Gmail (e-mail).");
    if (rc != 0)
        return rc == 1 ? EXIT_SUCCESS : 2;
    sb_sender_config_t conf;
    memset(&conf, 0, sizeof conf);
    if (sb_config_load(vars, n_vars, &conf, stderr) != 0)
        return 2;
    if (sb_sender_config_check(&conf, stderr) != 0) {
        sb_config_release(vars, n_vars, &conf);
        return 2;
    }
    sb_log_level_t level = SB_LOG_INFO;
    sb_log_level_parse(conf.log_level, &level);
    sb_log_init("sender", level);
    char *described = sb_config_describe(vars, n_vars, &conf);
    sb_log_info(NULL, "sb-sender %s starting: %s", SB_VERSION, described);
    free(described);

    s_signals_install();
    curl_global_init(CURL_GLOBAL_DEFAULT); // once, before any thread uses libcurl
    sb_err_t err = {0};
    int status = EXIT_SUCCESS;
    sb_sender_t *sender = sb_sender_new(&conf, &err);
    if (sender == NULL) {
        sb_log_error(NULL, "cannot start: %s", err.msg);
        status = EXIT_FAILURE;
    } else {
        sb_sender_run(sender, &s_stop);
        sb_log_info(NULL, "stopped");
        sb_sender_destroy(&sender);
    }
    curl_global_cleanup();
    sb_config_release(vars, n_vars, &conf);
    return status;
}
