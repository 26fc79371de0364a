/* sb-streamer: relays the database's notifications (LISTEN communications,
 * customers_backfill, outbox_status on DATABASE_URL) to browsers as Server-Sent Events on
 * STREAM_LISTEN, GET /api/communications/stream with the bearer token STREAM_TOKEN.
 * Every variable: --help. See streamer.h and docs/SENDER.md "Live updates". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "streamer.h"
#include "sb_config.h"
#include "sb_log.h"
#include "sb_banned.h"

static volatile sig_atomic_t s_stop = 0; // set by SIGTERM/SIGINT

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
    sa.sa_handler = SIG_IGN; // a client that hangs up must not kill us
    sigaction(SIGPIPE, &sa, NULL);
}

int
main(int argc, char **argv)
{
    const sb_config_var_t *vars = sb_streamer_config_vars;
    size_t n_vars = sb_streamer_config_vars_n;
    int rc = sb_config_args(argc, argv, vars, n_vars, "sb-streamer",
                            "Relays new communications and back-fills to browsers as "
                            "Server-Sent Events (GET /api/communications/stream).");
    if (rc != 0)
        return rc == 1 ? EXIT_SUCCESS : 2;
    sb_streamer_config_t conf;
    memset(&conf, 0, sizeof conf);
    if (sb_config_load(vars, n_vars, &conf, stderr) != 0)
        return 2;
    if (sb_streamer_config_check(&conf, stderr) != 0) {
        sb_config_release(vars, n_vars, &conf);
        return 2;
    }
    sb_log_level_t level = SB_LOG_INFO;
    sb_log_level_parse(conf.log_level, &level);
    sb_log_init("streamer", level);
    char *described = sb_config_describe(vars, n_vars, &conf);
    sb_log_info(NULL, "sb-streamer %s starting: %s", SB_VERSION, described);
    free(described);

    s_signals_install();
    sb_err_t err = {0};
    int status = EXIT_SUCCESS;
    sb_streamer_t *streamer = sb_streamer_new(&conf, &err);
    if (streamer == NULL) {
        sb_log_error(NULL, "cannot start: %s", err.msg);
        status = EXIT_FAILURE;
    } else {
        sb_log_info(NULL, "serving " SB_STREAMER_PATH " on %s", conf.listen);
        while (!s_stop) { // the threads do the work; this one waits for a signal
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        sb_streamer_destroy(&streamer);
        sb_log_info(NULL, "stopped");
    }
    sb_config_release(vars, n_vars, &conf);
    return status;
}
