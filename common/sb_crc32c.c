/* sb_crc32c - CRC-32C: the SSE 4.2 crc32 instruction where the CPU has it (as
 * PostgreSQL's pg_crc32c_sse42.c), else software slice-by-8 (Intel's "slicing-by-8"; the
 * same tables as PostgreSQL's pg_crc32c_sb8.c). The choice and the 8 KiB of tables are
 * made once, on first use. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "sb_crc32c.h"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define SB_CRC32C_X86 1
#endif
#include "sb_banned.h"

#define SB_CRC32C_POLY 0x82F63B78u // 0x1EDC6F41 bit-reversed, for the LSB-first form

static uint32_t s_table[8][256]; // s_table[k][b]: CRC of byte b followed by k zero bytes
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

typedef uint32_t (*s_crc_fn)(uint32_t crc, const void *data, size_t len);
static s_crc_fn s_impl = sb_crc32c_sw;

#ifdef SB_CRC32C_X86
// 8 bytes per instruction; x86 is little-endian, so the load order matches the
// reflected CRC's byte order. The spool checksums every record: this was 1-2 % of the
// ingress's CPU in software.
__attribute__((target("sse4.2"))) static uint32_t
s_crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

static void
s_build_tables(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t crc = b;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ SB_CRC32C_POLY : crc >> 1;
        s_table[0][b] = crc;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            s_table[k][b] = (s_table[k - 1][b] >> 8) ^ s_table[0][s_table[k - 1][b] & 0xFF];
#ifdef SB_CRC32C_X86
    if (__builtin_cpu_supports("sse4.2"))
        s_impl = s_crc32c_sse42;
#endif
}

uint32_t
sb_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&s_once, s_build_tables);
    return s_impl(crc, data, len);
}

int
sb_crc32c_hardware(void)
{
    pthread_once(&s_once, s_build_tables);
    return s_impl != sb_crc32c_sw;
}

uint32_t
sb_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&s_once, s_build_tables);
    const unsigned char *p = data;
    crc = ~crc;
    // Bytes are combined explicitly (not loaded as a uint64_t), so the result does not
    // depend on alignment or byte order; compilers still turn this into wide loads.
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = s_table[7][lo & 0xFF] ^ s_table[6][(lo >> 8) & 0xFF] ^ s_table[5][(lo >> 16) & 0xFF] ^
              s_table[4][lo >> 24] ^ s_table[3][p[4]] ^ s_table[2][p[5]] ^ s_table[1][p[6]] ^
              s_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ s_table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}
