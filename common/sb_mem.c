#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sb_mem.h"
#include "sb_banned.h"

// Out of memory is not an error a daemon can handle per request: abort like git's
// xmalloc, and let the supervisor restart us (the spool keeps what was acknowledged).
static void *
s_check(void *p)
{
    if (p == NULL) {
        static const char msg[] = "{\"level\":\"error\",\"msg\":\"out of memory\"}\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        abort();
    }
    return p;
}

void *
sb_xmalloc(size_t size)
{
    return s_check(malloc(size ? size : 1));
}

void *
sb_xcalloc(size_t n, size_t size)
{
    return s_check(calloc(n ? n : 1, size ? size : 1));
}

void *
sb_xrealloc(void *ptr, size_t size)
{
    return s_check(realloc(ptr, size ? size : 1));
}

char *
sb_xstrdup(const char *s)
{
    return s_check(strdup(s));
}

char *
sb_xstrndup(const char *s, size_t n)
{
    return s_check(strndup(s, n));
}

void *
sb_xmemdup(const void *p, size_t n)
{
    char *copy = sb_xmalloc(n + 1);
    if (n > 0)
        memcpy(copy, p, n);
    copy[n] = '\0';
    return copy;
}

char *
sb_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort(); // only a bad format string does this: a programmer error
    char *out = sb_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}
