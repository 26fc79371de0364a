/* test_util - helpers that several unit tests share (linked into every test binary; not a
 * test itself). A failed check here fails only the calling test: Check forks each one. */
#ifndef SB_TEST_UTIL_H
#define SB_TEST_UTIL_H
#include <stddef.h>

// The whole file at path, with a NUL after it so that a text fixture is a C string.
// *len gets its size in bytes when len is not NULL. Fails the test when the file cannot be
// read. Caller frees.
char *sb_test_read_file(const char *path, size_t *len);

// The same for a file under shared/fixtures, e.g. sb_test_fixture("gmail/token.json", &n).
char *sb_test_fixture(const char *name, size_t *len);

#endif
