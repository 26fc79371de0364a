/* sb-ingress - reads webhooks over HTTP (RingCentral SMS and calls, Gmail push), writes
 * them to the durable spool under SPOOL_DIR before answering 200, pushes them to
 * INGRESS_PUSH_ENDPOINT and takes writers' acks on INGRESS_ACK_ENDPOINT.
 * Variables: see --help (INGRESS_LISTEN, MAX_BODY_BYTES, SPOOL_DIR, ...). */
#include <czmq.h>
#include "ingress.h"
#include "sb_stage.h"
#include "sb_banned.h"

// Serves until SIGTERM or SIGINT call sb_ingress_stop (the loop watches its own flag),
// then answers the requests in flight; what is not acked stays in the spool.
static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    (void)stop;
    zsys_init(); // in the main thread, before any actor or thread of the ingress starts
    sb_ingress_t *ingress = sb_ingress_new(conf, err);
    if (ingress == NULL)
        return SB_STAGE_CANNOT_START;
    sb_stage_end_t end = sb_ingress_run(ingress, err) == 0 ? SB_STAGE_STOPPED : SB_STAGE_FAILED;
    sb_ingress_destroy(&ingress);
    return end;
}

int
main(int argc, char **argv)
{
    const sb_stage_spec_t spec = {
        .name = "ingress",
        .description =
            "The HTTP edge of Switchboard: acknowledges webhooks once they are durable in the\n"
            "spool, then pushes them to the verifiers and redelivers until a writer acks.",
        .vars = sb_ingress_config_vars,
        .n_vars = sb_ingress_config_vars_n,
        .on_stop = sb_ingress_stop,
        .run = s_run,
    };
    sb_ingress_config_t conf = {0};
    return sb_stage_main(&spec, &conf, argc, argv);
}
