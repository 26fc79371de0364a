/* sbctl: the operator's command line. Reads DATABASE_URL (mailboxes, subscriptions,
 * webhook_events), talks to the providers (RingCentral subscriptions, Gmail users.stop), to
 * the ingress (INGRESS_URL: status, replay) and to each stage's /metrics. Acks nothing.
 * Every variable: sbctl --help; every command: sbctl COMMAND --help. See sbctl.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "sbctl.h"
#include "sb_config.h"
#include "sb_banned.h"

static const char s_commands[] =
    "usage: sbctl COMMAND [ARGS]   (sbctl COMMAND --help for each)\n"
    "\n"
    "  mailbox add EMAIL --refresh-token-file F | list | remove EMAIL\n"
    "                          connected Gmail mailboxes\n"
    "  subscription create --sms-url URL | --call-url URL | list | renew ID | delete ID\n"
    "                          RingCentral webhook subscriptions\n"
    "  status                  stages, rates, spool, next expiries\n"
    "  events [--outcome O] [--since T]\n"
    "                          stored webhook events\n"
    "  replay EVENT_ID... | --outcome O [--since T]\n"
    "                          post stored requests through the pipeline again\n"
    "\n"
    "Exit status: 0 done, 1 failed, 2 usage or configuration error.\n";

static const struct {
    const char *name;
    int (*run)(sb_sbctl_t *ctl, int argc, char **argv);
} s_table[] = {
    {"mailbox", sb_sbctl_mailbox}, {"subscription", sb_sbctl_subscription},
    {"status", sb_sbctl_status},   {"events", sb_sbctl_events},
    {"replay", sb_sbctl_replay},
};

// sb_config_print_help's table is a stage's (one line per variable, long defaults in a
// column): this reads better for a command with a long default list.
static void
s_help(const sb_config_var_t *vars, size_t n)
{
    fputs(s_commands, stdout);
    fputs("\nConfiguration comes from the environment:\n", stdout);
    for (size_t i = 0; i < n; i++) {
        printf("  %-31s %s%s\n", vars[i].name, vars[i].help,
               vars[i].flags & SB_CONFIG_SECRET ? " (secret)" : "");
        if (vars[i].def != NULL)
            printf("  %-31s default: %s\n", "", vars[i].def);
    }
}

int
main(int argc, char **argv)
{
    const sb_config_var_t *vars = sb_sbctl_config_vars;
    size_t n_vars = sb_sbctl_config_vars_n;
    const char *cmd = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "--version") == 0) {
        printf("sbctl %s\n", SB_VERSION);
        return SB_SBCTL_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        s_help(vars, n_vars);
        return SB_SBCTL_OK;
    }
    int (*run)(sb_sbctl_t *, int, char **) = NULL;
    for (size_t i = 0; i < sizeof s_table / sizeof s_table[0]; i++)
        if (strcmp(cmd, s_table[i].name) == 0)
            run = s_table[i].run;
    if (run == NULL) {
        if (*cmd)
            fprintf(stderr, "sbctl: unknown command \"%s\"\n", cmd);
        fputs(s_commands, stderr);
        return SB_SBCTL_USAGE;
    }
    sb_sbctl_config_t conf;
    memset(&conf, 0, sizeof conf);
    if (sb_config_load(vars, n_vars, &conf, stderr) != 0)
        return SB_SBCTL_USAGE;
    signal(SIGPIPE, SIG_IGN); // `sbctl events | head` must end quietly, as must a lost peer
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sb_sbctl_t ctl = {.conf = &conf, .out = stdout, .err = stderr};
    int rc = run(&ctl, argc - 1, argv + 1);
    sb_sbctl_release(&ctl);
    curl_global_cleanup();
    sb_config_release(vars, n_vars, &conf);
    if (fflush(stdout) != 0 && rc == SB_SBCTL_OK)
        rc = SB_SBCTL_FAIL;
    return rc;
}
