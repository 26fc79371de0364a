/* sb-verifier: reads envelopes on VERIFIER_PULL_ENDPOINT (PULL, binds), writes each one
 * with a verdict and redacted headers to VERIFIER_PUSH_ENDPOINT (PUSH, connects), acks
 * nothing (the writer acks after commit) and sends heartbeats on ACK_ENDPOINT (PUB).
 * Variables: LOG_LEVEL, METRICS_LISTEN, INSTANCE_ID, RINGCENTRAL_VERIFICATION_TOKEN,
 * RINGCENTRAL_WEBHOOK_SECRET, GMAIL_PUSH_TOKEN, SWITCHBOARD_ALLOW_UNVERIFIED (--help). */
#include "sb_log.h"
#include "sb_stage.h"
#include "verifier.h"
#include "sb_banned.h"

// Say loudly, once, what the configuration lets through (SPEC "Verification").
static void
s_warn_weak_config(const sb_verifier_config_t *conf)
{
    const char *fate = conf->allow_unverified ? "ACCEPTED UNVERIFIED" : "rejected";
    if (conf->allow_unverified)
        sb_log_warn(NULL, "SWITCHBOARD_ALLOW_UNVERIFIED is on: events of a source with no "
                          "verification configured are accepted unverified (development only)");
    if (!sb_config_is_set(conf->rc_verification_token) &&
        !sb_config_is_set(conf->rc_webhook_secret))
        sb_log_warn(NULL, "no RingCentral verification configured: RingCentral events will be %s",
                    fate);
    else if (!sb_config_is_set(conf->rc_verification_token))
        sb_log_warn(NULL,
                    "RINGCENTRAL_WEBHOOK_SECRET is set but RINGCENTRAL_VERIFICATION_TOKEN is "
                    "not: RingCentral itself sends no signature, its events will be rejected");
    if (!sb_config_is_set(conf->gmail_push_token))
        sb_log_warn(NULL, "no Gmail push verification configured: Gmail pushes will be %s", fate);
}

// Verifies until SIGTERM or SIGINT, then flushes what is queued (up to 2 s).
static sb_stage_end_t
s_run(void *conf, volatile sig_atomic_t *stop, sb_err_t *err)
{
    s_warn_weak_config(conf);
    sb_verifier_t *verifier = sb_verifier_new(conf, err);
    if (verifier == NULL)
        return SB_STAGE_CANNOT_START;
    sb_verifier_run(verifier, stop);
    sb_log_info(NULL, "stopping: queued events are flushed for up to 2 s");
    sb_verifier_destroy(&verifier);
    return SB_STAGE_STOPPED;
}

int
main(int argc, char **argv)
{
    const sb_stage_spec_t spec = {
        .name = "verifier",
        .description = "Verifies webhook events and passes them on with a verdict.",
        .vars = sb_verifier_config_vars,
        .n_vars = sb_verifier_config_vars_n,
        .run = s_run,
    };
    sb_verifier_config_t conf = {0};
    return sb_stage_main(&spec, &conf, argc, argv);
}
