/* sb-enricher: reads verified events on ENRICHER_PULL_ENDPOINT (PULL, binds), fetches what
 * a Gmail push only announces (history.list, messages.get with GOOGLE_TOKEN_URL tokens,
 * mailboxes read from DATABASE_URL) and writes every event on to ENRICHER_PUSH_ENDPOINT
 * (PUSH, connects), the fetched records in its extra frame; acks nothing (the writer does)
 * and sends heartbeats on ACK_ENDPOINT. Every variable: --help. See enricher.h. */
#include "enricher.h"
#include "sb_stage.h"
#include "sb_banned.h"

static int
s_check(void *conf, FILE *problems)
{
    return sb_enricher_config_check(conf, problems);
}

// Enriches until SIGTERM or SIGINT, then finishes the events in hand (see enricher.h).
static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    sb_enricher_t *enricher = sb_enricher_new(conf, err);
    if (enricher == NULL)
        return SB_STAGE_CANNOT_START;
    sb_enricher_run(enricher, stop); // a drain that timed out left the rest to redelivery
    sb_enricher_destroy(&enricher);
    return SB_STAGE_STOPPED;
}

int
main(int argc, char **argv)
{
    const sb_stage_spec_t spec = {
        .name = "enricher",
        .description = "Fetches what notifications announce (Gmail e-mails) and passes "
                       "complete records to the writer.",
        .vars = sb_enricher_config_vars,
        .n_vars = sb_enricher_config_vars_n,
        .check = s_check,
        .curl = true,
        .run = s_run,
    };
    sb_enricher_config_t conf = {0};
    return sb_stage_main(&spec, &conf, argc, argv);
}
