/* sb_log - the only log writer of a process: one JSON object per line on stderr,
 * {"ts":"2026-11-24T15:00:12.418Z","level":"info","stage":"ingress","event_id":"..","msg":".."}.
 * The level is checked before formatting (Redis serverLog). Thread-safe: each line is
 * one write(2). Never pass tokens, JWTs or raw bodies. event_id may be NULL. */
#ifndef SB_LOG_H
#define SB_LOG_H

typedef enum { SB_LOG_DEBUG = 0, SB_LOG_INFO, SB_LOG_WARN, SB_LOG_ERROR } sb_log_level_t;

void sb_log_init(const char *stage, sb_log_level_t min_level);   // call once, from main
int sb_log_level_parse(const char *text, sb_log_level_t *level); // "debug".."error"; 0/-1
void sb_log_write(sb_log_level_t level, const char *event_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sb_log_debug(id, ...) sb_log_write(SB_LOG_DEBUG, (id), __VA_ARGS__)
#define sb_log_info(id, ...) sb_log_write(SB_LOG_INFO, (id), __VA_ARGS__)
#define sb_log_warn(id, ...) sb_log_write(SB_LOG_WARN, (id), __VA_ARGS__)
#define sb_log_error(id, ...) sb_log_write(SB_LOG_ERROR, (id), __VA_ARGS__)

#endif
