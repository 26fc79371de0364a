/* pg_array - a one-dimensional PostgreSQL array in the binary wire format (array_recv),
 * so that one statement parameter carries a whole column of a batch ($1::text[] ...).
 *
 *   sb_pg_array_t a;
 *   sb_pg_array_init(&a, SB_PG_TEXT);
 *   sb_pg_array_add_text(&a, "say \"hi\"");  // bytes as they are: nothing is quoted
 *   sb_pg_array_add_text(&a, NULL);          // SQL NULL (length -1), not the text "NULL"
 *   int len;
 *   const char *value = sb_pg_array_finish(&a, &len); // paramFormats 1, paramLengths len
 *   ...
 *   sb_pg_array_release(&a);
 *
 * Why binary rather than a text literal ('{"a","b\\"c",NULL}'): no element is ever
 * quoted or escaped, so no quote, backslash, brace, comma, "NULL" text or white space in
 * a message can change what arrives; a bytea element (a raw webhook body) goes byte for
 * byte, NULs included, without hex doubling. The layout: int32 ndim (1), int32 flags
 * (1 if any element is NULL), uint32 element type OID, then per dimension int32 size and
 * int32 lower bound (1), then per element int32 length (-1 for NULL) and its bytes; all
 * integers big-endian. The server checks the element type against the parameter's
 * (text[] wants 25), so the OID given here must be the declared one. */
#ifndef SB_PG_ARRAY_H
#define SB_PG_ARRAY_H
#include <stddef.h>
#include <stdint.h>

// Element type OIDs (pg_type.h; stable across versions) and their array types.
#define SB_PG_BYTEA 17
#define SB_PG_INT8 20
#define SB_PG_TEXT 25
#define SB_PG_BYTEA_ARRAY 1001
#define SB_PG_TEXT_ARRAY 1009
#define SB_PG_INT8_ARRAY 1016

typedef struct {
    unsigned char *data; // the encoded array so far (header first)
    size_t len;          // bytes used
    size_t cap;          // bytes allocated
    size_t n;            // elements added
    int has_null;        // some element is NULL
    uint32_t elem_oid;   // element type
} sb_pg_array_t;

void sb_pg_array_init(sb_pg_array_t *self, uint32_t elem_oid);
// Append len bytes (copied); bytes NULL appends SQL NULL. Aborts past 2^31 bytes, which
// no batch reaches (SB_WRITER_BATCH_BYTES).
void sb_pg_array_add(sb_pg_array_t *self, const void *bytes, size_t len);
void sb_pg_array_add_text(sb_pg_array_t *self, const char *text); // NULL: SQL NULL
void sb_pg_array_add_int8(sb_pg_array_t *self, int64_t value);
// Complete the header and return the parameter value (owned by self, valid until the
// next add or release) and its length.
const char *sb_pg_array_finish(sb_pg_array_t *self, int *len);
void sb_pg_array_release(sb_pg_array_t *self); // frees, and leaves self empty

#endif
