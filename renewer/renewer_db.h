/* renewer_db - the few libpq helpers that the renewer and sbctl share: a connection with
 * our session settings, a parameterised query that turns every failure into sb_err_t, the
 * advisory locks that claim one mailbox or subscription across renewer replicas, and a
 * random number for jitter. No logging: callers log (the renewer) or print (sbctl). */
#ifndef SB_RENEWER_DB_H
#define SB_RENEWER_DB_H
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include "sb_err.h"

#define SB_RENEWER_DB_CONNECT_TIMEOUT_S "5"

// Connect (blocking, connect_timeout 5 s) with application_name and a statement_timeout
// of timeout_ms. NULL and err ("could not connect to the database: ...").
PGconn *sb_renewer_db_connect(const char *url, const char *application_name, int timeout_ms,
                              sb_err_t *err);

// Run sql with text parameters. Returns the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK)
// for the caller to PQclear, or NULL with err ("what: the server's message").
PGresult *sb_renewer_db_query(PGconn *db, const char *what, const char *sql, int n_params,
                              const char *const *params, sb_err_t *err);
// The same for a statement whose rows do not matter: 0 or -1.
int sb_renewer_db_exec(PGconn *db, const char *what, const char *sql, int n_params,
                       const char *const *params, sb_err_t *err);

// Session advisory lock (lock_class, hashtext(key)), without waiting: 1 taken, 0 held by
// another session, -1 with err. Release with sb_renewer_db_unlock on the same connection.
int sb_renewer_db_trylock(PGconn *db, int lock_class, const char *key, sb_err_t *err);
void sb_renewer_db_unlock(PGconn *db, int lock_class, const char *key);

// A NULL-terminated array of strings, as the *_due functions return them.
void sb_renewer_strv_free(char ***strv_p);

// A uniform random value in [0, 1) from OpenSSL's generator (replicas never share a seed).
double sb_renewer_random_unit(void);

// Fill out with n random characters of [A-Za-z0-9] and a final NUL (size > n).
void sb_renewer_random_text(char *out, size_t n);

#endif
