#include <stdio.h>
#include <stdlib.h>
#include "sb_check.h"
#include "sb_mem.h"
#include "test_util.h"
#include "sb_banned.h"

char *
sb_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096)
            data = sb_xrealloc(data, cap = cap * 2 + 4096);
        size_t got = fread(data + n, 1, cap - n - 1, f);
        if (got == 0)
            break;
        n += got;
    }
    ck_assert_msg(!ferror(f), "cannot read %s", path);
    fclose(f);
    data[n] = '\0';
    if (len != NULL)
        *len = n;
    return data;
}

char *
sb_test_fixture(const char *name, size_t *len)
{
    char *path = sb_xasprintf("%s/%s", SB_FIXTURES_DIR, name);
    char *data = sb_test_read_file(path, len);
    free(path);
    return data;
}
