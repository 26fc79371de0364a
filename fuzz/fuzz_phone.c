/* fuzz_phone - sb_phone_e164, sb_email_normalize and sb_email_list on arbitrary text
 * (a phone or address field of any webhook or e-mail header).
 * Checked besides memory safety: an E.164 result is "+" and 8-15 digits, or "" with -1;
 * normalising a result again gives the same result (the SQL side and the C side compare
 * normalised values, so a second pass must not drift); an address has exactly one "@"
 * with text on both sides, no upper-case ASCII, and is valid UTF-8 when the input was. */
#include <ctype.h>
#include <string.h>
#include "sb_fuzz.h"
#include "sb_mem.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define S_LIST_MAX 16 // addresses asked of sb_email_list; fewer than it may find

static void
s_check_e164(const char *in, const char *cc)
{
    char out[SB_PHONE_E164_MAX];
    memset(out, 'x', sizeof out);
    int rc = sb_phone_e164(in, cc, out, sizeof out);
    if (rc != 0) {
        SB_FUZZ_CHECK(rc == -1 && out[0] == '\0', "a refused number leaves \"\"");
        return;
    }
    size_t n = strlen(out);
    SB_FUZZ_CHECK(out[0] == '+' && n >= 9 && n <= 16, "E.164 is + and 8-15 digits");
    for (size_t i = 1; i < n; i++)
        SB_FUZZ_CHECK(isdigit((unsigned char)out[i]), "E.164 is digits after +");
    char again[SB_PHONE_E164_MAX];
    SB_FUZZ_CHECK(sb_phone_e164(out, cc, again, sizeof again) == 0, "E.164 is a number");
    SB_FUZZ_CHECK(strcmp(out, again) == 0, "E.164 is a fixed point");
}

// utf8_in: the input was valid UTF-8, so the address must be too (it is cut only at
// ASCII delimiters).
static void
s_check_address(const char *addr, bool utf8_in)
{
    const char *at = strchr(addr, '@');
    SB_FUZZ_CHECK(at != NULL && at != addr && at[1] != '\0', "text on both sides of @");
    SB_FUZZ_CHECK(strchr(at + 1, '@') == NULL, "one @");
    for (const char *p = addr; *p; p++)
        SB_FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'), "lower case");
    SB_FUZZ_CHECK(!utf8_in || sb_fuzz_text_ok(addr), "valid UTF-8 in, valid UTF-8 out");
    char *again = sb_email_normalize(addr);
    SB_FUZZ_CHECK(again != NULL && strcmp(again, addr) == 0, "an address is a fixed point");
    free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = sb_xmemdup(data, size); // a C string: embedded NULs end it, as in JSON text
    s_check_e164(in, "1");
    s_check_e164(in, "44");
    s_check_e164(in, "353");
    bool utf8_in = sb_fuzz_text_ok(in);
    char *addr = sb_email_normalize(in);
    if (addr)
        s_check_address(addr, utf8_in);
    free(addr);
    char *list[S_LIST_MAX];
    size_t n = sb_email_list(in, list, S_LIST_MAX);
    SB_FUZZ_CHECK(n <= S_LIST_MAX, "at most max addresses");
    for (size_t i = 0; i < n; i++) {
        s_check_address(list[i], utf8_in);
        free(list[i]);
    }
    free(in);
    return 0;
}
