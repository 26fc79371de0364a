/* sb-writer - reads verified events (PULL, WRITER_PULL_ENDPOINT), writes them to
 * PostgreSQL in batched transactions (DATABASE_URL), and after each COMMIT acks the event
 * ids to their ingress (PUB, ACK_ENDPOINT), with heartbeats. Also: METRICS_LISTEN, INSTANCE_ID,
 * WRITER_BATCH_ROWS, DEFAULT_COUNTRY_CODE, LOG_LEVEL. See writer.h. */
#include "writer.h"
#include "sb_metrics.h"
#include "sb_stage.h"
#include "sb_banned.h"

static int
s_check(void *conf, FILE *problems)
{
    return sb_writer_config_check(conf, problems);
}

// Writes until SIGTERM or SIGINT; the batch in hand is committed and acked first.
static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    const sb_writer_config_t *config = conf;
    sb_stage_end_t end = SB_STAGE_CANNOT_START;
    sb_metrics_t *metrics = sb_metrics_new();
    sb_metrics_server_t *server = NULL;
    sb_writer_t *writer = sb_writer_new(config, metrics, err);
    if (writer != NULL)
        server = sb_metrics_serve(metrics, config->metrics_listen, "writer", err);
    if (server != NULL)
        end = sb_writer_run(writer, stop, err) == 0 ? SB_STAGE_STOPPED : SB_STAGE_FAILED;
    sb_writer_destroy(&writer);
    sb_metrics_server_destroy(&server);
    sb_metrics_destroy(&metrics);
    return end;
}

int
main(int argc, char **argv)
{
    const sb_stage_spec_t spec = {
        .name = "writer",
        .description = "Stores verified webhook events in PostgreSQL, then acks them.",
        .vars = sb_writer_config_vars,
        .n_vars = sb_writer_config_vars_n,
        .check = s_check,
        .run = s_run,
    };
    sb_writer_config_t conf = {0};
    return sb_stage_main(&spec, &conf, argc, argv);
}
