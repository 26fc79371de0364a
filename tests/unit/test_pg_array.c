/* test_pg_array - the binary array parameters of the writer's set-wise statement
 * (writer/pg_array.h): the exact bytes array_recv expects, NULL as length -1, and text
 * that a text-format array literal would have to quote or escape passed as it is.
 * tests/integration/test_writer_batch.py sends such arrays to a real server. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sb_check.h"
#include "pg_array.h"
#include "sb_mem.h"
#include "sb_banned.h"

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// Decode value (len bytes) as array_recv would: check the header, then return element i
// (its length in *elen, -1 for NULL; NULL pointer then).
static const unsigned char *
element(const char *value, int len, uint32_t oid, uint32_t n, uint32_t i, int32_t *elen)
{
    const unsigned char *p = (const unsigned char *)value;
    ck_assert_int_ge(len, 20);
    ck_assert_uint_eq(get32(p), 1);       // ndim
    ck_assert_uint_le(get32(p + 4), 1);   // flags: has nulls
    ck_assert_uint_eq(get32(p + 8), oid); // element type
    ck_assert_uint_eq(get32(p + 12), n);  // dimension
    ck_assert_uint_eq(get32(p + 16), 1);  // lower bound
    const unsigned char *q = p + 20, *end = p + len;
    for (uint32_t k = 0;; k++) {
        ck_assert(q + 4 <= end);
        int32_t l = (int32_t)get32(q);
        q += 4;
        ck_assert(l >= -1);
        if (k == i) {
            ck_assert(l < 0 || q + l <= end);
            *elen = l;
            return l < 0 ? NULL : q;
        }
        if (l > 0)
            q += l;
    }
}

START_TEST(text_elements_go_unquoted_and_null_is_not_the_text_null)
{
    static const char *const texts[] = {"plain",       "",      "NULL",     "say \"hi\"",
                                        "back\\slash", "{a,b}", " padded ", "caf\xc3\xa9"};
    const size_t n = sizeof texts / sizeof texts[0];
    sb_pg_array_t a;
    sb_pg_array_init(&a, SB_PG_TEXT);
    for (size_t i = 0; i < n; i++)
        sb_pg_array_add_text(&a, texts[i]);
    sb_pg_array_add_text(&a, NULL);
    int len;
    const char *value = sb_pg_array_finish(&a, &len);
    size_t want = 20;
    for (size_t i = 0; i < n; i++)
        want += 4 + strlen(texts[i]);
    ck_assert_int_eq(len, (int)(want + 4));                        // the NULL is a length only
    ck_assert_uint_eq(get32((const unsigned char *)value + 4), 1); // has a NULL
    for (size_t i = 0; i < n; i++) {
        int32_t elen;
        const unsigned char *e = element(value, len, 25, (uint32_t)n + 1, (uint32_t)i, &elen);
        ck_assert_int_eq(elen, (int)strlen(texts[i]));
        ck_assert_msg(memcmp(e, texts[i], (size_t)elen) == 0, "element %zu", i);
    }
    int32_t elen;
    ck_assert_ptr_null(element(value, len, 25, (uint32_t)n + 1, (uint32_t)n, &elen));
    ck_assert_int_eq(elen, -1);
    sb_pg_array_release(&a);
    ck_assert_ptr_null(a.data);
}
END_TEST

START_TEST(exact_bytes_of_a_small_array)
{
    sb_pg_array_t a;
    sb_pg_array_init(&a, SB_PG_TEXT);
    sb_pg_array_add_text(&a, "a\"");
    int len;
    const char *value = sb_pg_array_finish(&a, &len);
    static const unsigned char want[] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25,  0,
                                         0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 'a', '"'};
    ck_assert_int_eq(len, (int)sizeof want);
    ck_assert(memcmp(value, want, sizeof want) == 0); // flags 0: no NULL
    sb_pg_array_release(&a);
}
END_TEST

START_TEST(int8_elements_are_big_endian)
{
    sb_pg_array_t a;
    sb_pg_array_init(&a, SB_PG_INT8);
    sb_pg_array_add_int8(&a, 1795964400123LL);
    sb_pg_array_add_int8(&a, -2);
    int len;
    const char *value = sb_pg_array_finish(&a, &len);
    ck_assert_int_eq(len, 20 + 2 * 12);
    int32_t elen;
    const unsigned char *e = element(value, len, 20, 2, 0, &elen);
    ck_assert_int_eq(elen, 8);
    static const unsigned char first[] = {0, 0, 0x01, 0xa2, 0x27, 0xd1, 0xf1, 0xfb};
    ck_assert(memcmp(e, first, 8) == 0);
    e = element(value, len, 20, 2, 1, &elen);
    static const unsigned char second[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    ck_assert(memcmp(e, second, 8) == 0);
    sb_pg_array_release(&a);
}
END_TEST

START_TEST(bytea_elements_keep_every_byte)
{
    static const char body[] = {'{', 0, '\xff', '\\', 'x', '"', 0};
    sb_pg_array_t a;
    sb_pg_array_init(&a, SB_PG_BYTEA);
    sb_pg_array_add(&a, body, sizeof body);
    sb_pg_array_add(&a, "", 0); // empty, not NULL
    int len;
    const char *value = sb_pg_array_finish(&a, &len);
    int32_t elen;
    const unsigned char *e = element(value, len, 17, 2, 0, &elen);
    ck_assert_int_eq(elen, (int)sizeof body);
    ck_assert(memcmp(e, body, sizeof body) == 0);
    ck_assert_ptr_nonnull(element(value, len, 17, 2, 1, &elen));
    ck_assert_int_eq(elen, 0);
    ck_assert_uint_eq(get32((const unsigned char *)value + 4), 0); // no NULL
    sb_pg_array_release(&a);
}
END_TEST

START_TEST(large_arrays_grow_and_stay_consistent)
{
    sb_pg_array_t a;
    sb_pg_array_init(&a, SB_PG_TEXT);
    char text[64];
    for (int i = 0; i < 10000; i++) {
        snprintf(text, sizeof text, "element %d", i);
        sb_pg_array_add_text(&a, i % 1000 == 999 ? NULL : text);
    }
    int len;
    const char *value = sb_pg_array_finish(&a, &len);
    ck_assert_uint_eq(a.n, 10000);
    for (uint32_t i = 0; i < 10000; i += 997) {
        int32_t elen;
        const unsigned char *e = element(value, len, 25, 10000, i, &elen);
        snprintf(text, sizeof text, "element %u", (unsigned)i);
        if (i % 1000 == 999) {
            ck_assert_int_eq(elen, -1);
            continue;
        }
        ck_assert_int_eq(elen, (int)strlen(text));
        ck_assert(memcmp(e, text, (size_t)elen) == 0);
    }
    int32_t elen;
    element(value, len, 25, 10000, 9999, &elen); // the last one: walks every length
    ck_assert_int_eq(elen, -1);
    sb_pg_array_release(&a);
}
END_TEST

static Suite *
sb_pg_array_suite(void)
{
    Suite *s = suite_create("pg_array");
    TCase *tc = tcase_create("encode");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, text_elements_go_unquoted_and_null_is_not_the_text_null);
    tcase_add_test(tc, exact_bytes_of_a_small_array);
    tcase_add_test(tc, int8_elements_are_big_endian);
    tcase_add_test(tc, bytea_elements_keep_every_byte);
    tcase_add_test(tc, large_arrays_grow_and_stay_consistent);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_pg_array_suite)
