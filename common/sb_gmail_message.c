/* sb_gmail_message - see sb_gmail_message.h. The parse reads the JSON once with jansson,
 * walks payload depth-first within fixed bounds, remembers the text parts that could be
 * the body, then decodes only the one it keeps: a large attachment costs nothing. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "sb_gmail_message.h"
#include "sb_mem.h"
#include "sb_mime.h"
#include "sb_phone.h"
#include "sb_banned.h"

#define SB_GMAIL_CANDIDATES_MAX 32 // text parts remembered as possible bodies
#define SB_GMAIL_TYPE_MAX 128      // bytes of a MIME type we compare

typedef struct {
    json_t *part; // borrowed from the parsed document
    bool html;    // text/html, else text/plain
    bool inner;   // inside an attached message/rfc822
} s_candidate_t;

typedef struct {
    sb_gmail_message_t *msg;                           // filled as the walk goes
    s_candidate_t candidates[SB_GMAIL_CANDIDATES_MAX]; // in document order
    size_t candidate_count;
    size_t parts_seen; // against SB_GMAIL_PARTS_MAX
} s_walk_t;

static char
s_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
s_ieq(const char *a, const char *b)
{
    while (*a && s_lower(*a) == s_lower(*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

static const char *
s_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key)); // NULL unless a string
}

// An int64 from a JSON integer or a string of decimal digits (Gmail sends int64 values as
// strings); false for anything else or out of range.
static bool
s_int64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)n;
    return true;
}

// Copy of s cut to at most max bytes without splitting a UTF-8 character.
static char *
s_utf8_cut(const char *s, size_t len, size_t max, bool *cut)
{
    if (cut)
        *cut = len > max;
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    return sb_xstrndup(s, len);
}

// The first header called name in part.headers, or NULL.
static const char *
s_header(const json_t *part, const char *name)
{
    const json_t *headers = json_object_get(part, "headers");
    size_t i;
    const json_t *h;
    if (!json_is_array(headers))
        return NULL;
    json_array_foreach(headers, i, h)
    {
        const char *n = s_str(h, "name"), *v = s_str(h, "value");
        if (n != NULL && v != NULL && s_ieq(n, name))
            return v;
    }
    return NULL;
}

// Trim spaces at both ends, in place.
static char *
s_trim(char *s)
{
    size_t len = strlen(s), start = 0;
    while (len > 0 && s[len - 1] == ' ')
        len--;
    while (start < len && s[start] == ' ')
        start++;
    memmove(s, s + start, len - start);
    s[len - start] = '\0';
    return s;
}

// A header value as one trimmed line of UTF-8, RFC 2047 words decoded when decode is set.
// Without decoding, the value is still unfolded and its control characters become spaces.
static char *
s_header_value(const json_t *payload, const char *name, bool decode)
{
    const char *raw = s_header(payload, name);
    if (raw == NULL)
        return NULL;
    char *cut = s_utf8_cut(raw, strlen(raw), SB_GMAIL_HEADER_MAX_BYTES, NULL);
    char *out;
    if (decode) {
        out = sb_mime_decode_words(cut);
    } else {
        out = sb_xmalloc(strlen(cut) + 1);
        size_t n = 0;
        for (const char *p = cut; *p; p++) {
            if ((p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) ||
                (p[0] == '\n' && (p[1] == ' ' || p[1] == '\t')))
                continue; // folding: the line break goes, the space stays
            out[n++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? ' ' : *p;
        }
        out[n] = '\0';
    }
    free(cut);
    return s_trim(out);
}

// An address header with its RFC 5322 comments ("(...)", nested, outside quotes) replaced
// by a space: sb_email_normalize refuses "a@b (Name)", and comments hold no address.
static char *
s_address_header(const json_t *payload, const char *name)
{
    const char *raw = s_header(payload, name);
    if (raw == NULL)
        return NULL;
    char *s = s_utf8_cut(raw, strlen(raw), SB_GMAIL_HEADER_MAX_BYTES, NULL);
    size_t n = 0;
    int depth = 0;
    bool quoted = false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (c == '\\' && (quoted || depth > 0) && s[i + 1]) {
            if (depth == 0) {
                s[n++] = c;
                s[n++] = s[i + 1];
            }
            i++;
        } else if (c == '"' && depth == 0) {
            quoted = !quoted;
            s[n++] = c;
        } else if (c == '(' && !quoted) {
            if (depth++ == 0)
                s[n++] = ' ';
        } else if (c == ')' && depth > 0 && !quoted) {
            depth--;
        } else if (depth == 0) {
            s[n++] = c;
        }
    }
    s[n] = '\0';
    return s;
}

static char **
s_address_list(const json_t *payload, const char *name, size_t *count)
{
    char *value = s_address_header(payload, name);
    char *found[SB_GMAIL_ADDRESSES_MAX];
    *count = value ? sb_email_list(value, found, SB_GMAIL_ADDRESSES_MAX) : 0;
    free(value);
    if (*count == 0)
        return NULL;
    char **list = sb_xmalloc(*count * sizeof *list);
    memcpy(list, found, *count * sizeof *list);
    return list;
}

// The part's MIME type in lower case: mimeType, else the Content-Type header up to ";".
static void
s_part_type(const json_t *part, char *buf, size_t size)
{
    const char *t = s_str(part, "mimeType");
    if (t == NULL || *t == '\0')
        t = s_header(part, "Content-Type");
    size_t n = 0;
    if (t != NULL) {
        while (*t == ' ' || *t == '\t')
            t++;
        for (; t[n] && t[n] != ';' && t[n] != ' ' && t[n] != '\t' && n + 1 < size; n++)
            buf[n] = s_lower(t[n]);
    }
    buf[n] = '\0';
}

static bool
s_is_attachment(const json_t *part)
{
    const char *filename = s_str(part, "filename");
    if ((filename != NULL && *filename != '\0') ||
        s_str(json_object_get(part, "body"), "attachmentId") != NULL)
        return true;
    const char *disp = s_header(part, "Content-Disposition");
    if (disp == NULL)
        return false;
    while (*disp == ' ' || *disp == '\t')
        disp++;
    static const char word[] = "attachment";
    for (size_t i = 0; i < sizeof word - 1; i++)
        if (s_lower(disp[i]) != word[i])
            return false;
    char next = disp[sizeof word - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

// A string field as valid, NUL-free UTF-8 (jansson guarantees both already; the filename
// may also carry RFC 2047 words when a sender skipped RFC 2231), "" when absent.
static char *
s_field(const json_t *obj, const char *key, bool decode)
{
    const char *v = s_str(obj, key);
    if (v == NULL)
        return sb_xstrdup("");
    char *cut = s_utf8_cut(v, strlen(v), SB_GMAIL_HEADER_MAX_BYTES, NULL);
    if (!decode)
        return cut;
    char *out = sb_mime_decode_words(cut);
    free(cut);
    return out;
}

static void
s_add_attachment(s_walk_t *w, const json_t *part)
{
    sb_gmail_message_t *msg = w->msg;
    if (msg->attachment_count >= SB_GMAIL_ATTACHMENTS_MAX)
        return;
    const json_t *body = json_object_get(part, "body");
    sb_gmail_attachment_t *a = &msg->attachments[msg->attachment_count++];
    a->filename = s_field(part, "filename", true);
    a->mime_type = s_field(part, "mimeType", false);
    a->part_id = s_field(part, "partId", false);
    const char *id = s_str(body, "attachmentId");
    a->attachment_id = id ? sb_xstrdup(id) : NULL;
    if (!s_int64(json_object_get(body, "size"), &a->size_bytes) || a->size_bytes < 0)
        a->size_bytes = 0;
}

// Depth-first over the part tree: list attachments, remember body candidates.
static void
s_walk(s_walk_t *w, json_t *part, int depth, bool inner)
{
    if (!json_is_object(part))
        return;
    if (depth > SB_GMAIL_PART_DEPTH_MAX || w->parts_seen >= SB_GMAIL_PARTS_MAX) {
        w->msg->parts_truncated = true;
        return;
    }
    w->parts_seen++;
    char type[SB_GMAIL_TYPE_MAX];
    s_part_type(part, type, sizeof type);
    json_t *children = json_object_get(part, "parts");
    bool has_children = json_is_array(children) && json_array_size(children) > 0;
    if (strncmp(type, "multipart/", 10) != 0 && s_is_attachment(part)) {
        s_add_attachment(w, part);
    } else if (!has_children && w->candidate_count < SB_GMAIL_CANDIDATES_MAX) {
        bool plain = strcmp(type, "text/plain") == 0, html = strcmp(type, "text/html") == 0;
        if (plain || html)
            w->candidates[w->candidate_count++] = (s_candidate_t){part, html, inner};
    }
    if (!has_children)
        return;
    inner = inner || strcmp(type, "message/rfc822") == 0;
    size_t i;
    json_t *child;
    json_array_foreach(children, i, child)
    {
        s_walk(w, child, depth + 1, inner);
    }
}

// Decoded text of one candidate part, or NULL when its data is not base64.
static char *
s_candidate_text(const s_candidate_t *c, bool *truncated)
{
    const json_t *body = json_object_get(c->part, "body");
    const char *data = s_str(body, "data");
    char *charset = sb_mime_param(s_header(c->part, "Content-Type"), "charset");
    char *text = sb_mime_body_decode(data ? data : "", data ? strlen(data) : 0,
                                     s_header(c->part, "Content-Transfer-Encoding"), charset,
                                     SB_GMAIL_PART_MAX_BYTES, truncated);
    free(charset);
    if (text != NULL && c->html) {
        char *plain = sb_mime_html_to_text(text);
        free(text);
        text = plain;
    }
    return text;
}

// CRLF and lone CR become LF, in place.
static size_t
s_newlines(char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\r') {
            s[n++] = '\n';
            if (s[i + 1] == '\n')
                i++;
        } else {
            s[n++] = s[i];
        }
    }
    s[n] = '\0';
    return n;
}

// Pick the body: text/plain before text/html, the message's own parts before those of
// an attached message, document order within each rank.
static void
s_choose_body(s_walk_t *w)
{
    sb_gmail_message_t *msg = w->msg;
    for (int rank = 0; rank < 4 && msg->body_text == NULL; rank++) {
        for (size_t i = 0; i < w->candidate_count && msg->body_text == NULL; i++) {
            const s_candidate_t *c = &w->candidates[i];
            if (c->html != (rank % 2 == 1) || c->inner != (rank >= 2))
                continue;
            bool cut = false;
            char *text = s_candidate_text(c, &cut);
            if (text == NULL) {
                msg->body_invalid = true;
                continue;
            }
            size_t len = s_newlines(text);
            bool capped;
            msg->body_text = s_utf8_cut(text, len, SB_GMAIL_BODY_TEXT_MAX_BYTES, &capped);
            free(text);
            msg->body_truncated = cut || capped;
            msg->body_mime_type = c->html ? "text/html" : "text/plain";
            msg->body_invalid = false;
        }
    }
    if (msg->body_text == NULL)
        msg->body_text = sb_xstrdup("");
    msg->body_text_len = strlen(msg->body_text);
}

static void
s_labels(sb_gmail_message_t *msg, const json_t *root)
{
    const json_t *labels = json_object_get(root, "labelIds");
    size_t n = json_is_array(labels) ? json_array_size(labels) : 0;
    if (n > SB_GMAIL_LABELS_MAX)
        n = SB_GMAIL_LABELS_MAX;
    msg->label_ids = n ? sb_xcalloc(n, sizeof *msg->label_ids) : NULL;
    msg->direction = "inbound";
    for (size_t i = 0; i < n; i++) {
        const char *label = json_string_value(json_array_get(labels, i));
        if (label == NULL)
            continue;
        msg->label_ids[msg->label_count++] = sb_xstrdup(label);
        if (strcmp(label, "SENT") == 0)
            msg->direction = "outbound";
    }
}

static void
s_headers(sb_gmail_message_t *msg, const json_t *payload)
{
    msg->subject = s_header_value(payload, "Subject", true);
    msg->from = s_header_value(payload, "From", true);
    char *from = s_address_header(payload, "From");
    msg->from_address = from ? sb_email_normalize(from) : NULL;
    free(from);
    msg->to_addresses = s_address_list(payload, "To", &msg->to_count);
    msg->cc_addresses = s_address_list(payload, "Cc", &msg->cc_count);
    msg->message_id = s_header_value(payload, "Message-ID", false);
    msg->in_reply_to = s_header_value(payload, "In-Reply-To", false);
    msg->references = s_header_value(payload, "References", false);
    msg->date = s_header_value(payload, "Date", false);
}

sb_gmail_message_t *
sb_gmail_message_parse(const char *json, size_t len, sb_err_t *err)
{
    if (json == NULL) {
        sb_err_set(err, 0, "invalid gmail message: no JSON");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        sb_err_set(err, 0, "invalid gmail message JSON: %s (line %d, column %d)", jerr.text,
                   jerr.line, jerr.column);
        return NULL;
    }
    const char *id = s_str(root, "id");
    if (id == NULL || *id == '\0') {
        sb_err_set(err, 0, "invalid gmail message: no string \"id\"");
        json_decref(root);
        return NULL;
    }
    sb_gmail_message_t *msg = sb_xcalloc(1, sizeof *msg);
    msg->id = sb_xstrdup(id);
    const char *thread = s_str(root, "threadId");
    msg->thread_id = thread ? sb_xstrdup(thread) : NULL;
    s_labels(msg, root);
    if (!s_int64(json_object_get(root, "internalDate"), &msg->internal_date_ms) ||
        msg->internal_date_ms < 0)
        msg->internal_date_ms = 0;

    json_t *payload = json_object_get(root, "payload");
    s_headers(msg, payload);
    s_walk_t *w = sb_xcalloc(1, sizeof *w);
    w->msg = msg;
    msg->attachments = sb_xcalloc(SB_GMAIL_ATTACHMENTS_MAX, sizeof *msg->attachments);
    s_walk(w, payload, 0, false);
    s_choose_body(w);
    free(w);
    if (msg->attachment_count == 0) { // give back the room the walk had ready
        free(msg->attachments);
        msg->attachments = NULL;
    } else {
        msg->attachments =
            sb_xrealloc(msg->attachments, msg->attachment_count * sizeof *msg->attachments);
    }
    json_decref(root); // last: the walk borrowed candidate parts from it
    return msg;
}

static void
s_free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void
sb_gmail_message_destroy(sb_gmail_message_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    sb_gmail_message_t *self = *self_p;
    free(self->id);
    free(self->thread_id);
    s_free_list(self->label_ids, self->label_count);
    free(self->subject);
    free(self->from);
    free(self->from_address);
    s_free_list(self->to_addresses, self->to_count);
    s_free_list(self->cc_addresses, self->cc_count);
    free(self->message_id);
    free(self->in_reply_to);
    free(self->references);
    free(self->date);
    free(self->body_text);
    for (size_t i = 0; i < self->attachment_count; i++) {
        free(self->attachments[i].filename);
        free(self->attachments[i].mime_type);
        free(self->attachments[i].attachment_id);
        free(self->attachments[i].part_id);
    }
    free(self->attachments);
    free(self);
    *self_p = NULL;
}
