/* sb-sender: sends the staff replies the application queues in `outbox` (DATABASE_URL):
 * SMS through RingCentral (RINGCENTRAL_*), e-mail through Gmail as a connected mailbox
 * (GOOGLE_*, GMAIL_API_BASE_URL), each stored in communications once sent. Woken by
 * NOTIFY outbox, polls every SENDER_POLL_MS. No ZeroMQ: the database is its queue.
 * Every variable: --help. See sender.h and docs/SENDER.md. */
#include "sender.h"
#include "sb_stage.h"
#include "sb_banned.h"

static int
s_check(void *conf, FILE *problems)
{
    return sb_sender_config_check(conf, problems);
}

// Sends queued replies until SIGTERM or SIGINT.
static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    sb_sender_t *sender = sb_sender_new(conf, err);
    if (sender == NULL)
        return SB_STAGE_CANNOT_START;
    sb_sender_run(sender, stop);
    sb_sender_destroy(&sender);
    return SB_STAGE_STOPPED;
}

int
main(int argc, char **argv)
{
    const sb_stage_spec_t spec = {
        .name = "sender",
        .description = "Sends the staff replies queued in the outbox table through "
                       "RingCentral (SMS) and Gmail (e-mail).",
        .vars = sb_sender_config_vars,
        .n_vars = sb_sender_config_vars_n,
        .check = s_check,
        .curl = true,
        .run = s_run,
    };
    sb_sender_config_t conf = {0};
    return sb_stage_main(&spec, &conf, argc, argv);
}
