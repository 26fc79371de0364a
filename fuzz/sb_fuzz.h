/* sb_fuzz - what every fuzz target shares: the libFuzzer entry points (declared here so
 * -Wmissing-prototypes is satisfied), a check that aborts with a message (libFuzzer and
 * the replay driver both treat an abort as a finding) and a UTF-8 validator for the
 * "every returned string is valid UTF-8 without NUL" promises of the parsers.
 *
 * A target is built two ways (fuzz/CMakeLists.txt): with -DSB_FUZZ=ON and clang as a
 * libFuzzer binary (scripts/fuzz TARGET SECONDS), otherwise with replay_main.c as a
 * plain program that runs the seeds and tests/data/fuzz-regressions/<target>/ once, as a
 * ctest, in every build including the sanitizer one. */
#ifndef SB_FUZZ_H
#define SB_FUZZ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

// A broken promise of the code under test: say which, then abort (a crash to libFuzzer).
#define SB_FUZZ_CHECK(cond, what)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s (%s)\n", __FILE__, __LINE__, what,       \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

// Whether s[0, len) is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at
// most U+10FFFF) without NUL bytes: what a PostgreSQL text column accepts.
static inline bool
sb_fuzz_utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

// The same for a C string; NULL counts as fine (an absent value).
static inline bool
sb_fuzz_text_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return true;
    while (s[n])
        n++;
    return sb_fuzz_utf8_ok(s, n);
}

#endif
