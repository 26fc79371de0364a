/* sb_err - an error as a value: errno plus a message, filled by the callee and
 * logged once by the caller (STYLE.md 5). common/ never logs. */
#ifndef SB_ERR_H
#define SB_ERR_H

#define SB_ERR_MSG_MAX 256

typedef struct {
    int code;                 // errno, or 0 when the error is not a system error
    char msg[SB_ERR_MSG_MAX]; // lower case, no final period: "could not open \"x\": ..."
} sb_err_t;

// Fill err (may be NULL). When code != 0, ": strerror(code)" is appended.
void sb_err_set(sb_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
