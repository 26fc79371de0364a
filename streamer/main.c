/* sb-streamer: relays the database's notifications (LISTEN communications,
 * customers_backfill, outbox_status on DATABASE_URL) to browsers as Server-Sent Events on
 * STREAM_LISTEN, GET /api/communications/stream with the bearer token STREAM_TOKEN.
 * Every variable: --help. See streamer.h and docs/SENDER.md "Live updates". */
#include <time.h>
#include "sb_log.h"
#include "sb_stage.h"
#include "streamer.h"
#include "sb_banned.h"

static int
s_check(void *conf, FILE *problems)
{
    return sb_streamer_config_check(conf, problems);
}

// The streamer's threads do the work; this one waits for SIGTERM or SIGINT.
static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    sb_streamer_t *streamer = sb_streamer_new(conf, err);
    if (streamer == NULL)
        return SB_STAGE_CANNOT_START;
    const sb_streamer_config_t *config = conf;
    sb_log_info(NULL, "serving " SB_STREAMER_PATH " on %s", config->listen);
    while (!*stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    sb_streamer_destroy(&streamer);
    return SB_STAGE_STOPPED;
}

int
main(int argc, char **argv)
{
    const sb_stage_spec_t spec = {
        .name = "streamer",
        .description = "Relays new communications and back-fills to browsers as "
                       "Server-Sent Events (GET /api/communications/stream).",
        .vars = sb_streamer_config_vars,
        .n_vars = sb_streamer_config_vars_n,
        .check = s_check,
        .run = s_run,
    };
    sb_streamer_config_t conf = {0};
    return sb_stage_main(&spec, &conf, argc, argv);
}
