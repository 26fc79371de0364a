/* sb_gmail_message - a Gmail API message resource (users.messages.get?format=full, JSON)
 * turned into the e-mail record the pipeline stores (SPEC "Matching and mapping", Email).
 * Pure: no I/O, no logging; attachments are listed, never downloaded.
 *
 * What comes from where:
 *   - id, threadId, labelIds, internalDate (a string of epoch ms; a number is accepted)
 *     from the resource; direction is "outbound" when labelIds holds "SENT", else
 *     "inbound".
 *   - Headers from payload.headers, names matched case-insensitively ("Message-Id" and
 *     "Message-ID" are one header), the first occurrence wins. Values are unfolded,
 *     control characters become spaces and surrounding spaces are trimmed. Subject and
 *     From are RFC 2047 decoded to UTF-8; Message-ID, In-Reply-To, References and Date
 *     are kept as written. from_address, to_addresses and cc_addresses are normalised
 *     with sb_email_normalize / sb_email_list (lower case, bare address) after RFC 5322
 *     comments are removed, so "billing@example.net (Sam)" still yields an address.
 *   - body_text: the first text/plain part met depth-first that is not an attachment,
 *     else the first text/html one through sb_mime_html_to_text; parts inside an
 *     attached message/rfc822 are used only when the message itself has no text. A part
 *     whose data is not valid base64 is skipped for the next candidate. Gmail has
 *     already undone the Content-Transfer-Encoding (the fixtures say
 *     "quoted-printable" over decoded data), so data is decoded as QP again only when it
 *     still looks encoded (sb_mime_body_decode). The charset of the part's Content-Type
 *     is converted to UTF-8 with U+FFFD for bad bytes; line ends become "\n".
 *   - attachments: every part with a filename, a body.attachmentId or
 *     "Content-Disposition: attachment", in document order.
 *
 * Bounds (hostile input is expected; this parser is fuzzed): part nesting deeper than
 * SB_GMAIL_PART_DEPTH_MAX or more than SB_GMAIL_PARTS_MAX parts are not visited
 * (parts_truncated); at most SB_GMAIL_PART_MAX_BYTES of a part are decoded and
 * body_text keeps at most SB_GMAIL_BODY_TEXT_MAX_BYTES, cut at a character boundary
 * (body_truncated); a header value is cut at SB_GMAIL_HEADER_MAX_BYTES; lists stop at
 * their _MAX. Only JSON that is not an object, or has no string "id", fails the parse.
 * Every string is valid UTF-8 without NUL bytes. */
#ifndef SB_GMAIL_MESSAGE_H
#define SB_GMAIL_MESSAGE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

#define SB_GMAIL_PART_DEPTH_MAX 32              // levels of parts[] below payload
#define SB_GMAIL_PARTS_MAX 1024                 // parts visited in one message
#define SB_GMAIL_PART_MAX_BYTES (8u << 20)      // decoded bytes of the body part used
#define SB_GMAIL_BODY_TEXT_MAX_BYTES (1u << 20) // bytes of body_text kept
#define SB_GMAIL_HEADER_MAX_BYTES (64u << 10)   // bytes of one header value used
#define SB_GMAIL_LABELS_MAX 256                 // labelIds kept
#define SB_GMAIL_ADDRESSES_MAX 256              // addresses kept per To / Cc header
#define SB_GMAIL_ATTACHMENTS_MAX 256            // attachments listed

typedef struct {
    char *filename;      // part.filename as Gmail gives it (UTF-8), "" when none
    char *mime_type;     // part.mimeType, e.g. "application/pdf"; "" when missing
    char *attachment_id; // body.attachmentId for messages.attachments.get; NULL if absent
    char *part_id;       // part.partId, e.g. "1" or "0.1"; "" when missing
    int64_t size_bytes;  // body.size, 0 when missing or invalid
} sb_gmail_attachment_t;

typedef struct {
    char *id;         // Gmail message id; never NULL
    char *thread_id;  // threadId; NULL when absent
    char **label_ids; // labelIds in order (label_count entries)
    size_t label_count;
    const char *direction;    // "outbound" (SENT label) or "inbound"; static
    int64_t internal_date_ms; // internalDate, epoch ms; 0 when missing or invalid
    char *subject;            // decoded Subject; NULL when the header is absent
    char *from;               // decoded From, display name and all; NULL if absent
    char *from_address;       // normalised From address; NULL when none is valid
    char **to_addresses;      // normalised To addresses (to_count entries)
    size_t to_count;
    char **cc_addresses; // normalised Cc addresses (cc_count entries)
    size_t cc_count;
    char *message_id;                   // Message-ID, e.g. "<x@y>"; NULL when absent
    char *in_reply_to;                  // In-Reply-To; NULL when absent
    char *references;                   // References; NULL when absent
    char *date;                         // Date header as written; NULL when absent
    char *body_text;                    // UTF-8 text, "\n" line ends; "" when none; never NULL
    size_t body_text_len;               // strlen(body_text)
    const char *body_mime_type;         // "text/plain", "text/html" or NULL; static
    bool body_truncated;                // body_text or its part was cut at a bound
    bool body_invalid;                  // text parts existed but none had valid base64
    bool parts_truncated;               // parts beyond the depth or count bound were skipped
    sb_gmail_attachment_t *attachments; // attachment_count entries
    size_t attachment_count;
} sb_gmail_message_t;

// Parse len bytes of JSON. Returns the record, or NULL with err filled when the JSON is
// not an object with a string "id". Content problems (charsets, base64, depth) never fail.
sb_gmail_message_t *sb_gmail_message_parse(const char *json, size_t len, sb_err_t *err);

// Frees the record, then sets *self_p = NULL; safe on NULL and twice.
void sb_gmail_message_destroy(sb_gmail_message_t **self_p);

#endif
