#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include "sb_mem.h"
#include "sb_stage.h"
#include "sb_banned.h"

char *
sb_stage_instance(const char *configured)
{
    if (configured != NULL && configured[0] != '\0')
        return sb_xstrdup(configured);
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    return sb_xasprintf("%s:%ld", host, (long)getpid());
}

static zsock_t *
s_socket(int type, const char *endpoints, bool serverish, const char *what, sb_metrics_t *metrics,
         sb_zmonitor_t **monitor, sb_err_t *err)
{
    zsock_t *sock = zsock_new(type);
    if (sock == NULL) {
        sb_err_set(err, errno, "could not create the %s socket", what);
        return NULL;
    }
    if (monitor != NULL && (*monitor = sb_zmonitor_new(sock, what, metrics, err)) == NULL) {
        zsock_destroy(&sock);
        return NULL;
    }
    if (zsock_attach(sock, endpoints, serverish) != 0) {
        sb_err_set(err, errno, "could not attach the %s socket to \"%s\"", what, endpoints);
        if (monitor != NULL)
            sb_zmonitor_destroy(monitor); // before its socket
        zsock_destroy(&sock);
    }
    return sock;
}

zsock_t *
sb_stage_socket(int type, const char *endpoints, bool serverish, const char *what, sb_err_t *err)
{
    return s_socket(type, endpoints, serverish, what, NULL, NULL, err);
}

zsock_t *
sb_stage_socket_monitored(int type, const char *endpoints, bool serverish, const char *what,
                          sb_metrics_t *metrics, sb_zmonitor_t **monitor, sb_err_t *err)
{
    assert(metrics && monitor);
    return s_socket(type, endpoints, serverish, what, metrics, monitor, err);
}
