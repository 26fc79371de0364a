/* rfc5322 - the e-mail that sb-sender hands to Gmail's users.messages.send: a plain-text
 * RFC 5322 message with MIME (RFC 2045) headers, CRLF line ends, ready to be base64url
 * encoded into the "raw" member. Pure: no I/O, no logging (tests/unit/test_rfc5322.c).
 *
 *   sb_rfc5322_msg_t m = {.from = "support@example.com", .to = "maria@example.com",
 *                         .subject = "Re: Bestellung Nr. 4 – Grüße", .body = text,
 *                         .message_id = mid, .in_reply_to = parent_mid,
 *                         .references = parent_refs, .outbox_id = 42, .date_ms = now};
 *   char *raw = sb_rfc5322_build(&m, &len, &err);
 *
 * What it writes, in this order:
 *   From, To             bare addresses (sb_email_normalize); anything else is refused
 *   Subject              as is when it is short printable ASCII; otherwise RFC 2047
 *                        "=?UTF-8?B?...?=" encoded words, each at most 75 characters, split
 *                        only between whole UTF-8 characters, folded so that no line is
 *                        longer than 76 characters. Omitted when empty.
 *   Date                 RFC 5322 date of date_ms, "+0000"
 *   Message-ID           message_id ("<...@...>"), so that a crash can be reconciled by
 *                        searching for it (docs/SENDER.md)
 *   In-Reply-To          the parent's Message-ID, when given
 *   References           the parent's References, then the parent's Message-ID (RFC 5322
 *                        3.6.4), duplicates dropped, at most SB_RFC5322_REFS_MAX ids (the
 *                        first one and the most recent ones), one per folded line
 *   X-Switchboard-Outbox-Id   the outbox row, for people and for the reconciling search
 *   MIME-Version, Content-Type text/plain; charset="UTF-8", Content-Transfer-Encoding:
 *                        7bit when the body is ASCII with lines of at most 998 bytes, else
 *                        quoted-printable (soft breaks at 76 characters)
 * Header values never carry CR, LF or other control characters: they become spaces, so a
 * subject cannot inject a header. Invalid UTF-8 in subject or body becomes U+FFFD. */
#ifndef SB_RFC5322_H
#define SB_RFC5322_H
#include <stddef.h>
#include <stdint.h>
#include "sb_err.h"

#define SB_RFC5322_REFS_MAX 20          // message ids kept in References
#define SB_RFC5322_MSGID_MAX 250        // longest Message-ID accepted from a parent
#define SB_RFC5322_BODY_MAX (10u << 20) // longest body accepted, in bytes

typedef struct {
    const char *from;        // sender address (a connected mailbox)
    const char *to;          // recipient address
    const char *subject;     // UTF-8; NULL or "" for none
    const char *body;        // UTF-8 text; any line ends
    const char *message_id;  // "<id@domain>" of this message
    const char *in_reply_to; // the parent's Message-ID, or NULL
    const char *references;  // the parent's References (or In-Reply-To), or NULL
    int64_t outbox_id;       // X-Switchboard-Outbox-Id; 0 for none
    int64_t date_ms;         // Date, ms since the epoch
} sb_rfc5322_msg_t;

// The message as text with CRLF line ends (*len bytes, NUL-terminated). NULL and err when
// from or to is not an e-mail address, message_id is not "<...@...>", or the body is too
// long. Caller frees.
char *sb_rfc5322_build(const sb_rfc5322_msg_t *m, size_t *len, sb_err_t *err);

// A Subject (or other unstructured) header value for a line that already holds
// `used` characters ("Subject: " is 9): the text itself, or encoded words folded with
// CRLF SP. Caller frees.
char *sb_rfc5322_encode_header(const char *text, size_t used);

// The body as 7bit or quoted-printable text with CRLF line ends; *cte gets the
// Content-Transfer-Encoding ("7bit" or "quoted-printable", static). Caller frees.
char *sb_rfc5322_encode_body(const char *body, const char **cte);

// "<sb.<outbox_id>.<16 hex of random>@<domain of from>>" (domain "switchboard.invalid"
// when from has none). -1 when no randomness was available. Caller frees *out.
int sb_rfc5322_message_id(int64_t outbox_id, const char *from, char **out, sb_err_t *err);

// A Message-ID as written in a header ("<a@b>", " <a@b> ", "a@b") in its "<a@b>" form, or
// NULL when it does not look like one. Caller frees.
char *sb_rfc5322_msgid_clean(const char *text);

// References of a reply: the ids of parent_refs then parent_msgid, "<a> <b> ...",
// de-duplicated and bounded (see above); NULL when there is none. Caller frees.
char *sb_rfc5322_references(const char *parent_refs, const char *parent_msgid);

// "Re: <subject>" unless it starts with "Re:" already (any case); "Re:" alone for none.
// Caller frees.
char *sb_rfc5322_reply_subject(const char *parent_subject);

#endif
