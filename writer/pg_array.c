/* pg_array - binary PostgreSQL arrays for batch parameters (see pg_array.h). */
#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "pg_array.h"
#include "sb_mem.h"
#include "sb_banned.h"

#define S_HEADER 20 // ndim, flags, element OID, one dimension's size and lower bound

static void
s_reserve(sb_pg_array_t *self, size_t more)
{
    if (more > (size_t)INT_MAX - self->len)
        abort(); // a parameter's length is an int in libpq: nothing this big is sent
    if (self->len + more <= self->cap)
        return;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < self->len + more)
        cap *= 2;
    self->data = sb_xrealloc(self->data, cap);
    self->cap = cap;
}

static void
s_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void
sb_pg_array_init(sb_pg_array_t *self, uint32_t elem_oid)
{
    memset(self, 0, sizeof *self);
    self->elem_oid = elem_oid;
    s_reserve(self, S_HEADER);
    self->len = S_HEADER; // filled in by sb_pg_array_finish, once n is known
}

void
sb_pg_array_add(sb_pg_array_t *self, const void *bytes, size_t len)
{
    assert(self->data != NULL);
    if (bytes == NULL) {
        s_reserve(self, 4);
        s_put32(self->data + self->len, UINT32_MAX); // -1: NULL, and no bytes follow
        self->len += 4;
        self->has_null = 1;
    } else {
        s_reserve(self, 4 + len);
        s_put32(self->data + self->len, (uint32_t)len);
        if (len > 0)
            memcpy(self->data + self->len + 4, bytes, len);
        self->len += 4 + len;
    }
    self->n++;
}

void
sb_pg_array_add_text(sb_pg_array_t *self, const char *text)
{
    sb_pg_array_add(self, text, text ? strlen(text) : 0);
}

void
sb_pg_array_add_int8(sb_pg_array_t *self, int64_t value)
{
    unsigned char be[8];
    uint64_t v = (uint64_t)value;
    for (int i = 7; i >= 0; i--, v >>= 8)
        be[i] = (unsigned char)v;
    sb_pg_array_add(self, be, sizeof be);
}

const char *
sb_pg_array_finish(sb_pg_array_t *self, int *len)
{
    assert(self->data != NULL && self->n <= (size_t)INT_MAX);
    unsigned char *h = self->data;
    s_put32(h, 1); // one dimension
    s_put32(h + 4, (uint32_t)self->has_null);
    s_put32(h + 8, self->elem_oid);
    s_put32(h + 12, (uint32_t)self->n); // its size
    s_put32(h + 16, 1);                 // and lower bound, as SQL's arrays start at 1
    *len = (int)self->len;
    return (const char *)self->data;
}

void
sb_pg_array_release(sb_pg_array_t *self)
{
    free(self->data);
    memset(self, 0, sizeof *self);
}
