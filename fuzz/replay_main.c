/* replay_main - runs a fuzz target over files without libFuzzer, so that every build (gcc,
 * the sanitizer one) replays the seed corpus and the crash regressions as a ctest.
 * Usage: <target>_replay PATH...  where a PATH is a file or a directory of files (not
 * recursive; a missing directory counts as empty, so a target without regressions yet
 * needs no placeholder). Exits 0 when every input ran, 1 when there were no inputs at
 * all; a finding aborts. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "sb_fuzz.h"
#include "sb_mem.h"
#include "sb_banned.h"

// Targets without an initializer leave this weak symbol NULL.
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int
s_run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    unsigned char *buf = sb_xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = sb_xrealloc(buf, cap *= 2);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        return -1;
    }
    // An exact-size copy, so that ASan sees a read one byte past the input.
    unsigned char *input = sb_xmalloc(len ? len : 1);
    memcpy(input, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(input, len);
    free(input);
    return 0;
}

static int
s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Run every regular file of dir in name order; *count grows by the files run.
static int
s_run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap)
            names = sb_xrealloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
        names[n++] = sb_xasprintf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, s_cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (s_run_file(names[i]) != 0)
                rc = -1;
            else
                (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    size_t count = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (s_run_file(argv[i]) != 0)
                rc = -1;
            else
                count++;
        } else if (s_run_dir(argv[i], &count) != 0) {
            fprintf(stderr, "replay: cannot read directory %s\n", argv[i]);
            rc = -1;
        }
    }
    printf("replayed %zu inputs\n", count);
    return rc == 0 && count > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
