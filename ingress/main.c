/* sb-ingress - reads webhooks over HTTP (RingCentral SMS and calls, Gmail push), writes
 * them to the durable spool under SPOOL_DIR before answering 200, pushes them to
 * INGRESS_PUSH_ENDPOINT and takes writers' acks on INGRESS_ACK_ENDPOINT.
 * Variables: see --help (INGRESS_LISTEN, MAX_BODY_BYTES, SPOOL_DIR, ...). */
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include "ingress.h"
#include "sb_log.h"
#include "sb_banned.h"

static const char *s_description =
    "The HTTP edge of Switchboard: acknowledges webhooks once they are durable in the\n"
    "spool, then pushes them to the verifiers and redelivers until a writer acks.";

static void
s_on_signal(int sig)
{
    (void)sig;
    sb_ingress_stop();
}

int
main(int argc, char **argv)
{
    const sb_config_var_t *vars = sb_ingress_config_vars;
    size_t n = sb_ingress_config_vars_n;
    int args = sb_config_args(argc, argv, vars, n, "sb-ingress", s_description);
    if (args != 0)
        return args == 1 ? EXIT_SUCCESS : 2;
    sb_ingress_config_t conf = {0};
    if (sb_config_load(vars, n, &conf, stderr) != 0)
        return 2;
    sb_log_level_t level;
    if (sb_log_level_parse(conf.log_level, &level) != 0) {
        fprintf(stderr, "config: LOG_LEVEL=\"%s\" is not one of debug, info, warn, error\n",
                conf.log_level);
        return 2;
    }
    sb_log_init("ingress", level);
    zsys_handler_set(NULL); // our own handlers: SIGTERM drains instead of interrupting
    zsys_init();
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *effective = sb_config_describe(vars, n, &conf);
    sb_log_info(NULL, "starting sb-ingress %s: %s", SB_VERSION, effective);
    free(effective);
    sb_err_t err = {0};
    sb_ingress_t *ingress = sb_ingress_new(&conf, &err);
    int status = EXIT_FAILURE;
    if (ingress == NULL) {
        sb_log_error(NULL, "cannot start: %s", err.msg);
    } else if (sb_ingress_run(ingress, &err) != 0) {
        sb_log_error(NULL, "stopped on error: %s", err.msg);
    } else {
        sb_log_info(NULL, "stopped");
        status = EXIT_SUCCESS;
    }
    sb_ingress_destroy(&ingress);
    sb_config_release(vars, n, &conf);
    return status;
}
