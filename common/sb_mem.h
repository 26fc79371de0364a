/* sb_mem - allocation that aborts on out-of-memory (git xmalloc, Redis zmalloc):
 * callers never check for NULL. Sizes from the network are checked before. */
#ifndef SB_MEM_H
#define SB_MEM_H
#include <stddef.h>

void *sb_xmalloc(size_t size);
void *sb_xcalloc(size_t n, size_t size);
void *sb_xrealloc(void *ptr, size_t size);
char *sb_xstrdup(const char *s);
char *sb_xstrndup(const char *s, size_t n);
void *sb_xmemdup(const void *p, size_t n); // n bytes plus a NUL, so text stays printable
char *sb_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
