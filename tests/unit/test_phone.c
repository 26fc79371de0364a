/* test_phone - sb_phone_e164 against tests/data/phone_cases.tsv (the table the SQL twin
 * sb_e164() is checked against too), e-mail normalisation against the Gmail fixtures'
 * headers, and the buffer edges of sb_phone_e164. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sb_check.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define PHONE_CASES SB_TESTS_DIR "/data/phone_cases.tsv"
#define MIN_PHONE_ROWS 25

typedef struct {
    int line;         // line number in the TSV, for failure messages
    char *input;      // bytes as written
    char *default_cc; // digits, or anything the row wants to see refused
    char *expected;   // E.164, or "" when the input must be refused
} phone_case_t;

// Read every row of the TSV. Each line is split on its two tabs and nothing else is
// touched, so inputs keep their spaces and UTF-8.
static phone_case_t *
load_phone_cases(size_t *n_out)
{
    FILE *f = fopen(PHONE_CASES, "r");
    ck_assert_msg(f != NULL, "cannot open %s", PHONE_CASES);
    phone_case_t *cases = NULL;
    size_t n = 0, cap = 0, linecap = 0;
    char *line = NULL;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *tab1 = strchr(line, '\t');
        char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        ck_assert_msg(tab2 != NULL && strchr(tab2 + 1, '\t') == NULL,
                      "%s:%d: want input<TAB>default_cc<TAB>expected", PHONE_CASES, lineno);
        *tab1 = *tab2 = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            cases = sb_xrealloc(cases, cap * sizeof *cases);
        }
        cases[n].line = lineno;
        cases[n].input = sb_xstrdup(line);
        cases[n].default_cc = sb_xstrdup(tab1 + 1);
        cases[n].expected = sb_xstrdup(tab2 + 1);
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return cases;
}

static void
free_phone_cases(phone_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(cases[i].input);
        free(cases[i].default_cc);
        free(cases[i].expected);
    }
    free(cases);
}

START_TEST(every_row_of_the_phone_table_holds)
{
    size_t n;
    phone_case_t *cases = load_phone_cases(&n);
    ck_assert_uint_ge(n, MIN_PHONE_ROWS);
    size_t failed = 0;
    char first[512] = "";
    for (size_t i = 0; i < n; i++) {
        char out[SB_PHONE_E164_MAX];
        memset(out, 'Z', sizeof out);
        int rc = sb_phone_e164(cases[i].input, cases[i].default_cc, out, sizeof out);
        int want_rc = cases[i].expected[0] ? 0 : -1;
        if (rc == want_rc && strcmp(out, cases[i].expected) == 0)
            continue;
        failed++;
        char msg[512];
        snprintf(msg, sizeof msg, "line %d: \"%s\" cc %s -> rc %d \"%s\", want \"%s\"",
                 cases[i].line, cases[i].input, cases[i].default_cc, rc, out, cases[i].expected);
        fprintf(stderr, "%s\n", msg);
        if (first[0] == '\0')
            snprintf(first, sizeof first, "%s", msg);
    }
    free_phone_cases(cases, n);
    ck_assert_msg(failed == 0, "%zu of %zu rows failed, first: %s", failed, n, first);
}
END_TEST

// Every valid row fits exactly in strlen + 1 bytes, and one byte fewer is refused
// without a byte written past the buffer.
START_TEST(every_valid_row_needs_exactly_its_length)
{
    size_t n;
    phone_case_t *cases = load_phone_cases(&n);
    size_t valid = 0;
    for (size_t i = 0; i < n; i++) {
        size_t want = strlen(cases[i].expected);
        if (want == 0)
            continue;
        valid++;
        char buf[SB_PHONE_E164_MAX + 8];
        memset(buf, '!', sizeof buf);
        ck_assert_int_eq(sb_phone_e164(cases[i].input, cases[i].default_cc, buf, want + 1), 0);
        ck_assert_str_eq(buf, cases[i].expected);
        ck_assert_int_eq(buf[want + 1], '!');

        memset(buf, '!', sizeof buf);
        ck_assert_int_eq(sb_phone_e164(cases[i].input, cases[i].default_cc, buf, want), -1);
        ck_assert_str_eq(buf, "");
        ck_assert_int_eq(buf[want], '!');
    }
    free_phone_cases(cases, n);
    ck_assert_uint_ge(valid, 20);
}
END_TEST

START_TEST(phone_buffer_edges_are_refused_safely)
{
    char buf[8];
    memset(buf, '!', sizeof buf);
    ck_assert_int_eq(sb_phone_e164("+14155550123", "1", buf, 0), -1);
    ck_assert_int_eq(buf[0], '!'); // size 0: not even the NUL may be written
    ck_assert_int_eq(sb_phone_e164("+14155550123", "1", buf, 1), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(buf[1], '!');
    ck_assert_int_eq(sb_phone_e164("+14155550123", "1", buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(sb_phone_e164("+14155550123", "1", NULL, 17), -1);

    char out[SB_PHONE_E164_MAX];
    memset(out, 'Z', sizeof out);
    ck_assert_int_eq(sb_phone_e164(NULL, "1", out, sizeof out), -1);
    ck_assert_str_eq(out, "");
    memset(out, 'Z', sizeof out);
    ck_assert_int_eq(sb_phone_e164("4155550123", NULL, out, sizeof out), -1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(sb_phone_e164("4155550123", "", out, sizeof out), -1);
    ck_assert_int_eq(sb_phone_e164("4155550123", "1", out, sizeof out), 0);
    ck_assert_str_eq(out, "+14155550123");
    ck_assert_int_eq(sb_phone_e164("+123456789012345", "1", out, SB_PHONE_E164_MAX), 0);
    ck_assert_str_eq(out, "+123456789012345");
}
END_TEST

START_TEST(huge_phone_inputs_are_refused)
{
    size_t len = 1 << 20;
    char *big = malloc(len + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, '5', len);
    big[len] = '\0';
    char out[SB_PHONE_E164_MAX];
    ck_assert_int_eq(sb_phone_e164(big, "1", out, sizeof out), -1);
    ck_assert_str_eq(out, "");
    // 64 bytes is the limit; 65 is refused whatever the bytes are
    memset(big, ' ', 65);
    memcpy(big + 53, "+14155550123", 12);
    big[65] = '\0';
    ck_assert_int_eq(sb_phone_e164(big + 1, "1", out, sizeof out), 0);
    ck_assert_str_eq(out, "+14155550123");
    ck_assert_int_eq(sb_phone_e164(big, "1", out, sizeof out), -1);
    free(big);
}
END_TEST

typedef struct {
    const char *in;
    const char *want; // NULL: no valid address
} email_case_t;

// The same cases as EMAIL_CASES in tests/integration/test_phone_sql.py (sb_email_norm).
static const email_case_t email_cases[] = {
    {"Name <Addr@Example.COM>", "addr@example.com"},
    {"addr@example.com", "addr@example.com"},
    {"  Addr@Example.com \t", "addr@example.com"},
    {"<Addr@Example.com>", "addr@example.com"},
    {"Name < Addr@Example.com >", "addr@example.com"},
    {"Dana Whitfield <dana.whitfield@example.com>", "dana.whitfield@example.com"},
    {"\"O'Neil, Sam\" <billing@example.net>", "billing@example.net"},
    {"\"a <b@c.com>\" <real@example.com>", "real@example.com"}, // the last <...> wins
    {"Name <a@example.com> (work)", "a@example.com"},
    {"first.last+tag@sub.Example.org", "first.last+tag@sub.example.org"},
    {"\xc3\x9cSER@Example.com", "\xc3\x9cser@example.com"}, // only ASCII is folded
    {"", NULL},
    {"   ", NULL},
    {"no-at-sign", NULL},
    {"a@b@example.com", NULL},
    {"@example.com", NULL},
    {"addr@", NULL},
    {"Name <>", NULL},
    {"Name <addr@example.com", NULL},
    {"first last@example.com", NULL},
    {"Name addr@example.com", NULL},
    {"undisclosed-recipients:;", NULL},
    {"a,b@example.com", NULL},
    {"\"quoted\"@example.com", NULL},
};

START_TEST(email_cases_normalise)
{
    for (size_t i = 0; i < sizeof email_cases / sizeof email_cases[0]; i++) {
        char *got = sb_email_normalize(email_cases[i].in);
        if (email_cases[i].want == NULL)
            ck_assert_msg(got == NULL, "\"%s\" -> \"%s\", want NULL", email_cases[i].in, got);
        else
            ck_assert_msg(got != NULL && strcmp(got, email_cases[i].want) == 0,
                          "\"%s\" -> \"%s\", want \"%s\"", email_cases[i].in, got ? got : "(null)",
                          email_cases[i].want);
        free(got);
    }
    ck_assert_ptr_null(sb_email_normalize(NULL));
}
END_TEST

START_TEST(email_length_is_bounded)
{
    char addr[300];
    memset(addr, 'a', sizeof addr);
    memcpy(addr + 254 - 12, "@example.com", 13); // 254 bytes: the RFC 5321 maximum
    char *got = sb_email_normalize(addr);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(strlen(got), 254);
    free(got);
    memset(addr, 'a', sizeof addr);
    memcpy(addr + 255 - 12, "@example.com", 13);
    ck_assert_ptr_null(sb_email_normalize(addr));
}
END_TEST

// Collect the From/To/Cc header values of a Gmail message fixture.
static void
find_headers(json_t *node, const char *name, const char **values, size_t *n, size_t max)
{
    if (json_is_object(node)) {
        const char *hname = json_string_value(json_object_get(node, "name"));
        const char *hvalue = json_string_value(json_object_get(node, "value"));
        if (hname && hvalue && strcmp(hname, name) == 0 && *n < max)
            values[(*n)++] = hvalue;
        const char *key;
        json_t *child;
        json_object_foreach(node, key, child)
        {
            (void)key;
            find_headers(child, name, values, n, max);
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *child;
        json_array_foreach(node, i, child)
        {
            find_headers(child, name, values, n, max);
        }
    }
}

typedef struct {
    const char *file;    // under SB_FIXTURES_DIR/gmail
    const char *header;  // "From", "To" or "Cc"
    const char *want[3]; // sb_email_list of the header value, NULL-terminated
} fixture_header_t;

static const fixture_header_t fixture_headers[] = {
    {"message-full-multipart.json", "From", {"dana.whitfield@example.com", NULL}},
    {"message-full-multipart.json", "To", {"support@example.com", NULL}},
    {"message-full-multipart.json", "Cc", {"leo.park@example.com", "accounts@example.org", NULL}},
    {"message-full-plain.json", "From", {"maria.lopez@example.com", NULL}},
    {"message-full-plain.json", "To", {"support@example.com", NULL}},
    {"message-with-attachment.json", "From", {"billing@example.net", NULL}},
    {"message-with-attachment.json", "To", {"support@example.com", NULL}},
};

START_TEST(fixture_headers_normalise)
{
    const fixture_header_t *fh = &fixture_headers[_i];
    char path[1024];
    snprintf(path, sizeof path, "%s/gmail/%s", SB_FIXTURES_DIR, fh->file);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "%s: %s", path, jerr.text);
    const char *values[4];
    size_t n = 0;
    find_headers(root, fh->header, values, &n, 4);
    ck_assert_msg(n == 1, "%s: %zu %s headers", fh->file, n, fh->header);

    size_t want_n = 0;
    while (fh->want[want_n] != NULL)
        want_n++;
    if (want_n == 1) { // a single address also goes through sb_email_normalize alone
        char *one = sb_email_normalize(values[0]);
        ck_assert_msg(one != NULL && strcmp(one, fh->want[0]) == 0, "%s %s: \"%s\" -> \"%s\"",
                      fh->file, fh->header, values[0], one ? one : "(null)");
        free(one);
    }
    char *list[4] = {NULL};
    size_t got = sb_email_list(values[0], list, 4);
    ck_assert_msg(got == want_n, "%s %s: \"%s\" gave %zu addresses, want %zu", fh->file, fh->header,
                  values[0], got, want_n);
    for (size_t i = 0; i < got; i++) {
        ck_assert_str_eq(list[i], fh->want[i]);
        free(list[i]);
    }
    json_decref(root);
}
END_TEST

static size_t
list_of(const char *in, char **out, size_t max)
{
    for (size_t i = 0; i < max; i++)
        out[i] = NULL;
    return sb_email_list(in, out, max);
}

static void
free_list(char **out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(out[i]);
}

START_TEST(email_list_splits_on_commas_outside_quotes_and_brackets)
{
    char *out[8];
    size_t n = list_of("a@x.com, \"B, C\" <B@Y.com>", out, 8);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(out[0], "a@x.com");
    ck_assert_str_eq(out[1], "b@y.com");
    free_list(out, n);

    // Split inside the quotes, the middle piece would yield x@y.com.
    n = list_of("\"a, b@c.com <x@y.com>, d\" <real@z.com>", out, 8);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(out[0], "real@z.com");
    free_list(out, n);

    // An escaped quote does not end the quoted name.
    n = list_of("\"a \\\"q, b@c.com <x@y.com>\\\" z\" <real@z.com>", out, 8);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(out[0], "real@z.com");
    free_list(out, n);

    // Pieces without an address are skipped, not counted.
    n = list_of("a@x.com, junk, , Name <>, undisclosed-recipients:;, B@Y.COM", out, 8);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(out[0], "a@x.com");
    ck_assert_str_eq(out[1], "b@y.com");
    free_list(out, n);

    n = list_of("solo@x.com", out, 8);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(out[0], "solo@x.com");
    free_list(out, n);

    ck_assert_uint_eq(list_of("", out, 8), 0);
    ck_assert_uint_eq(list_of(",,,", out, 8), 0);
    ck_assert_uint_eq(sb_email_list(NULL, out, 8), 0);
}
END_TEST

START_TEST(email_list_stops_at_max)
{
    char *out[3] = {NULL, NULL, NULL};
    size_t n = sb_email_list("a@x.com, b@x.com, c@x.com, d@x.com", out, 2);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(out[0], "a@x.com");
    ck_assert_str_eq(out[1], "b@x.com");
    ck_assert_ptr_null(out[2]); // nothing written past max
    free_list(out, n);
    out[0] = NULL;
    ck_assert_uint_eq(sb_email_list("a@x.com", out, 0), 0);
    ck_assert_ptr_null(out[0]);
}
END_TEST

static Suite *
sb_phone_suite(void)
{
    Suite *s = suite_create("sb_phone");
    TCase *tc = tcase_create("phone");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, every_row_of_the_phone_table_holds);
    tcase_add_test(tc, every_valid_row_needs_exactly_its_length);
    tcase_add_test(tc, phone_buffer_edges_are_refused_safely);
    tcase_add_test(tc, huge_phone_inputs_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("email");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, email_cases_normalise);
    tcase_add_test(tc, email_length_is_bounded);
    tcase_add_loop_test(tc, fixture_headers_normalise, 0,
                        (int)(sizeof fixture_headers / sizeof fixture_headers[0]));
    tcase_add_test(tc, email_list_splits_on_commas_outside_quotes_and_brackets);
    tcase_add_test(tc, email_list_stops_at_max);
    suite_add_tcase(s, tc);
    return s;
}

SB_CHECK_MAIN(sb_phone_suite)
