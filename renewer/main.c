/* sb-renewer: reads mailboxes and ringcentral_subscriptions from DATABASE_URL, renews Gmail
 * watches (users.watch on GMAIL_TOPIC) and RingCentral subscriptions RENEW_BEFORE they
 * expire and writes the new expiries back; acks nothing; sends heartbeats on ACK_ENDPOINT
 * and serves /metrics and /health on METRICS_LISTEN. Every variable: --help. See renewer.h. */
#include "renewer.h"
#include "sb_stage.h"
#include "sb_banned.h"

static int
s_check(void *conf, FILE *problems)
{
    return sb_renewer_config_check(conf, problems); // also parses the durations into conf
}

// Renews until SIGTERM or SIGINT; the item in hand is finished first.
static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    sb_renewer_t *renewer = sb_renewer_new(conf, stop, err);
    if (renewer == NULL)
        return SB_STAGE_CANNOT_START;
    sb_renewer_run(renewer);
    sb_renewer_destroy(&renewer);
    return SB_STAGE_STOPPED;
}

int
main(int argc, char **argv)
{
    const sb_stage_spec_t spec = {
        .name = "renewer",
        .description = "Keeps Gmail watches and RingCentral webhook subscriptions alive.",
        .vars = sb_renewer_config_vars,
        .n_vars = sb_renewer_config_vars_n,
        .check = s_check,
        .curl = true,
        .run = s_run,
    };
    sb_renewer_config_t conf = {0};
    return sb_stage_main(&spec, &conf, argc, argv);
}
