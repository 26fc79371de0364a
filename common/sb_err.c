#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "sb_err.h"
#include "sb_banned.h"

void
sb_err_set(sb_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (code != 0 && n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(code));
}
