/* sb_net - small network helpers shared by the HTTP servers. */
#ifndef SB_NET_H
#define SB_NET_H
#include <netinet/in.h>
#include "sb_err.h"

// "0.0.0.0:8001", "127.0.0.1:9102", ":8001" or "8001" -> IPv4 socket address.
int sb_net_parse_listen(const char *text, struct sockaddr_in *out, sb_err_t *err);

#endif
