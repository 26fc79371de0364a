/* sb_config - configuration from the environment, parsed in one place (STYLE.md 6).
 * Each stage declares a table of sb_config_var_t pointing into its own config struct;
 * sb_config_load() fills the struct, collecting every problem at once, e.g.
 *   config: MAX_BODY_BYTES="1MB" is not an integer in [1024, 67108864]
 * The same table prints --help and the start-up line (secrets shown as ***).
 * Nothing else in the code calls getenv. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    SB_CONFIG_STRING, // char * (owned by the struct; NULL when unset and no default)
    SB_CONFIG_INT,    // int64_t, checked against [min, max]
    SB_CONFIG_BOOL,   // int: 1 for "1", "true", "yes", "on"; 0 for "0", "false", "no", "off", ""
} sb_config_type_t;

enum {
    SB_CONFIG_REQUIRED = 1 << 0, // missing or empty stops the process
    SB_CONFIG_SECRET = 1 << 1,   // never printed; shown as *** when set
};

typedef struct {
    const char *name;      // environment variable, e.g. "MAX_BODY_BYTES"
    sb_config_type_t type; // how to parse it
    size_t offset;         // offsetof(stage_config_t, field)
    const char *def;       // default as text, or NULL
    int64_t min, max;      // range for SB_CONFIG_INT
    int flags;             // SB_CONFIG_REQUIRED | SB_CONFIG_SECRET
    const char *help;      // one line for --help
} sb_config_var_t;

// Fill conf from the environment. Returns 0, or -1 after writing one line per bad
// variable to `problems` (a stream; stderr in main). n is the number of vars.
int sb_config_load(const sb_config_var_t *vars, size_t n, void *conf, FILE *problems);
// Free the strings that sb_config_load allocated in conf.
void sb_config_release(const sb_config_var_t *vars, size_t n, void *conf);
// --help text: usage line, description, then each variable with default and help.
void sb_config_print_help(const sb_config_var_t *vars, size_t n, const char *program,
                          const char *description, FILE *out);
// One line "NAME=value NAME2=*** ..." of the effective values, for the start-up log.
// Caller frees.
char *sb_config_describe(const sb_config_var_t *vars, size_t n, const void *conf);

// The common command line of every stage: --help prints help and returns 1 (exit 0),
// --version prints the version and returns 1, anything else is an error: returns 2.
// Returns 0 when the stage should run.
int sb_config_args(int argc, char **argv, const sb_config_var_t *vars, size_t n,
                   const char *program, const char *description);

// A STRING variable has a value: not NULL and not empty. (sb_config_load leaves unset
// and empty ones NULL; a struct filled by hand, as in tests, may hold "".)
bool sb_config_is_set(const char *value);

// Checks that a stage's sb_<stage>_config_check runs after sb_config_load, beyond what
// the table can say. Each returns 0, or -1 after one line to problems, e.g.
//   config: LOG_LEVEL="loud" is not one of debug, info, warn, error
int sb_config_check_log_level(const char *value, FILE *problems);
// DEFAULT_COUNTRY_CODE: 1 to 3 digits, not starting with 0.
int sb_config_check_country_code(const char *value, FILE *problems);
// Variable name holds an http:// or https:// URL.
int sb_config_check_url(const char *name, const char *value, FILE *problems);

#endif
