/* sb-writer - reads verified events (PULL, WRITER_PULL_ENDPOINT), writes them to
 * PostgreSQL in batched transactions (DATABASE_URL), and after each COMMIT acks the event
 * ids to their ingress (PUB, ACK_ENDPOINT), with heartbeats. Also: METRICS_LISTEN, INSTANCE_ID,
 * WRITER_BATCH_ROWS, DEFAULT_COUNTRY_CODE, LOG_LEVEL. See writer.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "writer.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_banned.h"

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

// Our own handlers, without SA_RESTART, so a blocking poll returns with EINTR and the
// loop sees s_stop; CZMQ's handler would only set its own flag.
static void
s_signals(void)
{
    zsys_handler_set(NULL); // before any socket exists
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int
main(int argc, char **argv)
{
    const sb_config_var_t *vars = sb_writer_config_vars;
    size_t n_vars = sb_writer_config_vars_n;
    int args = sb_config_args(argc, argv, vars, n_vars, "sb-writer",
                              "Stores verified webhook events in PostgreSQL, then acks them.");
    if (args != 0)
        return args == 1 ? EXIT_SUCCESS : 2;
    sb_writer_config_t conf;
    memset(&conf, 0, sizeof conf);
    if (sb_config_load(vars, n_vars, &conf, stderr) != 0)
        return 2;
    if (sb_writer_config_check(&conf, stderr) != 0) {
        sb_config_release(vars, n_vars, &conf);
        return 2;
    }
    sb_log_level_t level = SB_LOG_INFO;
    sb_log_level_parse(conf.log_level, &level);
    sb_log_init("writer", level);
    char *described = sb_config_describe(vars, n_vars, &conf);
    sb_log_info(NULL, "starting sb-writer %s: %s", SB_VERSION, described);
    free(described);

    s_signals();
    int rc = EXIT_FAILURE;
    sb_err_t err = {0};
    sb_metrics_t *metrics = sb_metrics_new();
    sb_metrics_server_t *server = NULL;
    sb_writer_t *writer = sb_writer_new(&conf, metrics, &err);
    if (writer == NULL) {
        sb_log_error(NULL, "%s", err.msg);
        goto done;
    }
    server = sb_metrics_serve(metrics, conf.metrics_listen, "writer", &err);
    if (server == NULL) {
        sb_log_error(NULL, "%s", err.msg);
        goto done;
    }
    if (sb_writer_run(writer, &s_stop, &err) != 0) {
        sb_log_error(NULL, "%s", err.msg);
        goto done;
    }
    sb_log_info(NULL, "stopped");
    rc = EXIT_SUCCESS;
done:
    sb_writer_destroy(&writer);
    sb_metrics_server_destroy(&server);
    sb_metrics_destroy(&metrics);
    sb_config_release(vars, n_vars, &conf);
    return rc;
}
