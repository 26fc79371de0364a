/* sb_crc32c - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the
 * checksum of iSCSI, ext4 and LevelDB logs: with the SSE 4.2 instruction where the CPU
 * has it, else in software (slice-by-8).
 *
 * Chainable like zlib's crc32(): start with 0 and feed the previous result back in,
 * so sb_crc32c(sb_crc32c(0, a, n), b, m) equals the CRC of a followed by b.
 * Check value: sb_crc32c(0, "123456789", 9) == 0xE3069283. Thread-safe. */
#ifndef SB_CRC32C_H
#define SB_CRC32C_H
#include <stddef.h>
#include <stdint.h>

uint32_t sb_crc32c(uint32_t crc, const void *data, size_t len);
// The software version alone, and whether sb_crc32c uses the instruction (for tests).
uint32_t sb_crc32c_sw(uint32_t crc, const void *data, size_t len);
int sb_crc32c_hardware(void);

#endif
