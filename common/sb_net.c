#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "sb_net.h"
#include "sb_banned.h"

int
sb_net_parse_listen(const char *text, struct sockaddr_in *out, sb_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl(INADDR_ANY);
    if (text == NULL || *text == '\0') {
        sb_err_set(err, 0, "invalid listen address \"\": expected host:port");
        return -1;
    }
    const char *colon = strrchr(text, ':');
    const char *port_text = colon ? colon + 1 : text;
    if (colon && colon != text) {
        char host[64];
        size_t host_len = (size_t)(colon - text);
        if (host_len >= sizeof host) {
            sb_err_set(err, 0, "invalid listen address \"%s\": host too long", text);
            return -1;
        }
        memcpy(host, text, host_len);
        host[host_len] = '\0';
        if (strcmp(host, "*") != 0 && strcmp(host, "localhost") != 0 &&
            inet_pton(AF_INET, host, &out->sin_addr) != 1) {
            sb_err_set(err, 0, "invalid listen address \"%s\": \"%s\" is not an IPv4 address", text,
                       host);
            return -1;
        }
        if (strcmp(host, "localhost") == 0)
            out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (errno != 0 || end == port_text || *end != '\0' || port < 0 || port > 65535) {
        sb_err_set(err, 0, "invalid listen address \"%s\": port must be in [0, 65535]", text);
        return -1;
    }
    out->sin_port = htons((uint16_t)port);
    return 0;
}
