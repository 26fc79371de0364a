/* sb_config - the environment, read once through a table (sb_config.h). This is the
 * only file in Switchboard that calls getenv: everything else gets a filled struct.
 *
 * Choices the header leaves open, made here:
 *  - An empty STRING or INT is the same as an unset one (the default applies, or NULL),
 *    because compose files write `VAR=` to mean "not set". An empty BOOL is 0, as the
 *    header says. REQUIRED rejects both unset and empty.
 *  - An INT whose min and max are both 0 has no range (any int64_t).
 *  - sb_config_load overwrites conf's fields without freeing them; on -1 it frees the
 *    strings it allocated and leaves them NULL, so sb_config_release is safe either way.
 *  - sb_config_describe lists every variable: unset ones as `NAME=` (so a missing setting
 *    shows in the start-up line), set secrets as `NAME=***`. Values with spaces, quotes,
 *    backslashes or control characters are double-quoted with \" and \\ (logfmt). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "sb_config.h"
#include "sb_log.h"
#include "sb_mem.h"
#include "sb_banned.h"

#ifndef SB_VERSION
#define SB_VERSION "unknown"
#endif

static bool
s_has_range(const sb_config_var_t *var)
{
    return !(var->min == 0 && var->max == 0);
}

static void
s_bad_int(const sb_config_var_t *var, const char *text, FILE *problems)
{
    if (s_has_range(var))
        fprintf(problems, "config: %s=\"%s\" is not an integer in [%" PRId64 ", %" PRId64 "]\n",
                var->name, text, var->min, var->max);
    else
        fprintf(problems, "config: %s=\"%s\" is not an integer\n", var->name, text);
}

// strtoll with every check atoi skips: overflow (errno), trailing junk (end pointer),
// leading blanks and the range. text is non-empty.
static int
s_parse_int(const sb_config_var_t *var, const char *text, int64_t *out, FILE *problems)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    bool ok = errno == 0 && end != text && *end == '\0' && !isspace((unsigned char)text[0]);
    if (ok && s_has_range(var))
        ok = v >= var->min && v <= var->max;
    if (!ok) {
        s_bad_int(var, text, problems);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int
s_parse_bool(const sb_config_var_t *var, const char *text, int *out, FILE *problems)
{
    static const char *const truthy[] = {"1", "true", "yes", "on"};
    static const char *const falsy[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++) {
        if (strcasecmp(text, truthy[i]) == 0) {
            *out = 1;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++) {
        if (strcasecmp(text, falsy[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    fprintf(problems, "config: %s=\"%s\" is not a boolean (use 1 or 0)\n", var->name, text);
    return -1;
}

// Parse one variable into its field. text is the environment value, or NULL when unset.
static int
s_load_one(const sb_config_var_t *var, const char *text, char *base, FILE *problems)
{
    void *field = base + var->offset;
    bool empty = text == NULL || text[0] == '\0';
    if (empty && (var->flags & SB_CONFIG_REQUIRED)) {
        fprintf(problems, "config: %s is required (%s)\n", var->name,
                var->help ? var->help : "no help");
        return -1;
    }
    // A bool set to "" means 0 (header); for the other types empty means "use the default".
    const char *use = text;
    if (var->type != SB_CONFIG_BOOL || text == NULL)
        use = empty ? var->def : text;

    switch (var->type) {
    case SB_CONFIG_STRING:
        *(char **)field = use ? sb_xstrdup(use) : NULL;
        return 0;
    case SB_CONFIG_INT:
        *(int64_t *)field = 0;
        if (use == NULL || use[0] == '\0')
            return 0;
        return s_parse_int(var, use, (int64_t *)field, problems);
    case SB_CONFIG_BOOL:
        *(int *)field = 0;
        return use ? s_parse_bool(var, use, (int *)field, problems) : 0;
    }
    abort(); // a type outside sb_config_type_t: a broken table, a programmer error
}

int
sb_config_load(const sb_config_var_t *vars, size_t n, void *conf, FILE *problems)
{
    assert(vars || n == 0);
    assert(conf && problems);
    int failed = 0;
    // Every variable is parsed even after a failure, so one run shows every problem.
    for (size_t i = 0; i < n; i++) {
        if (vars[i].type == SB_CONFIG_STRING)
            *(char **)((char *)conf + vars[i].offset) = NULL; // release-safe from the start
    }
    for (size_t i = 0; i < n; i++) {
        if (s_load_one(&vars[i], getenv(vars[i].name), conf, problems) != 0)
            failed++;
    }
    fflush(problems);
    if (failed) {
        sb_config_release(vars, n, conf);
        return -1;
    }
    return 0;
}

void
sb_config_release(const sb_config_var_t *vars, size_t n, void *conf)
{
    if (conf == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (vars[i].type != SB_CONFIG_STRING)
            continue;
        char **field = (char **)((char *)conf + vars[i].offset);
        free(*field);
        *field = NULL;
    }
}

// ---------------------------------------------------------------------------------------
// A growable string, for describe(): the line length depends on the values.

typedef struct {
    char *buf;  // NUL-terminated
    size_t len; // bytes before the NUL
    size_t cap; // bytes allocated
} s_buf_t;

static void
s_buf_add(s_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->buf = sb_xrealloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void
s_buf_puts(s_buf_t *b, const char *s)
{
    s_buf_add(b, s, strlen(s));
}

static bool
s_needs_quotes(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == 0x7f)
            return true;
    }
    return false;
}

static void
s_buf_value(s_buf_t *b, const char *v)
{
    if (!s_needs_quotes(v)) {
        s_buf_puts(b, v);
        return;
    }
    s_buf_add(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            s_buf_add(b, "\\", 1);
        s_buf_add(b, p, 1);
    }
    s_buf_add(b, "\"", 1);
}

char *
sb_config_describe(const sb_config_var_t *vars, size_t n, const void *conf)
{
    s_buf_t b = {0};
    s_buf_add(&b, "", 0); // so that n == 0 still returns ""
    for (size_t i = 0; i < n; i++) {
        const sb_config_var_t *var = &vars[i];
        const char *field = (const char *)conf + var->offset;
        if (i > 0)
            s_buf_add(&b, " ", 1);
        s_buf_puts(&b, var->name);
        s_buf_add(&b, "=", 1);
        char num[32];
        const char *value = NULL;
        switch (var->type) {
        case SB_CONFIG_STRING:
            value = *(char *const *)field;
            break;
        case SB_CONFIG_INT:
            snprintf(num, sizeof num, "%" PRId64, *(const int64_t *)field);
            value = num;
            break;
        case SB_CONFIG_BOOL:
            value = *(const int *)field ? "1" : "0";
            break;
        }
        if (value == NULL || value[0] == '\0')
            continue; // unset: "NAME=" says so without inventing a value
        if (var->flags & SB_CONFIG_SECRET)
            s_buf_puts(&b, "***");
        else
            s_buf_value(&b, value);
    }
    return b.buf;
}

// ---------------------------------------------------------------------------------------
// --help

static const char *
s_type_name(sb_config_type_t type)
{
    switch (type) {
    case SB_CONFIG_STRING:
        return "string";
    case SB_CONFIG_INT:
        return "integer";
    case SB_CONFIG_BOOL:
        return "0|1";
    }
    return "?";
}

// The default column: secrets hide theirs too, since --help output ends up in tickets.
static const char *
s_default_text(const sb_config_var_t *var)
{
    if (var->def == NULL || var->def[0] == '\0')
        return "-";
    return (var->flags & SB_CONFIG_SECRET) ? "***" : var->def;
}

void
sb_config_print_help(const sb_config_var_t *vars, size_t n, const char *program,
                     const char *description, FILE *out)
{
    int name_w = 8, def_w = 7; // at least the width of the column titles
    for (size_t i = 0; i < n; i++) {
        int w = (int)strlen(vars[i].name);
        name_w = w > name_w ? w : name_w;
        w = (int)strlen(s_default_text(&vars[i]));
        def_w = w > def_w ? w : def_w;
    }
    fprintf(out, "Usage: %s [--help | --version]\n\n", program);
    if (description && description[0])
        fprintf(out, "%s\n\n", description);
    fprintf(out, "Configuration comes only from the environment:\n\n");
    fprintf(out, "  %-*s  %-*s  %s\n", name_w, "VARIABLE", def_w, "DEFAULT", "MEANING");
    for (size_t i = 0; i < n; i++) {
        const sb_config_var_t *var = &vars[i];
        fprintf(out, "  %-*s  %-*s  %s", name_w, var->name, def_w, s_default_text(var),
                var->help ? var->help : "");
        if (var->type == SB_CONFIG_INT && s_has_range(var))
            fprintf(out, " [%" PRId64 ", %" PRId64 "]", var->min, var->max);
        else if (var->type != SB_CONFIG_STRING)
            fprintf(out, " (%s)", s_type_name(var->type));
        if (var->flags & SB_CONFIG_REQUIRED)
            fputs(" (required)", out);
        if (var->flags & SB_CONFIG_SECRET)
            fputs(" (secret)", out);
        fputc('\n', out);
    }
    fflush(out);
}

int
sb_config_args(int argc, char **argv, const sb_config_var_t *vars, size_t n, const char *program,
               const char *description)
{
    int action = 0; // 0 run, 'h' help, 'v' version: the first one asked for wins
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            action = action ? action : 'h';
        } else if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
            action = action ? action : 'v';
        } else {
            // Stages take no arguments: a stray one is more likely a mistake than intent.
            fprintf(stderr,
                    "%s: unknown argument \"%s\"; configuration comes from the "
                    "environment (try --help)\n",
                    program, arg);
            fflush(stderr);
            return 2;
        }
    }
    if (action == 'h') {
        sb_config_print_help(vars, n, program, description, stdout);
        return 1;
    }
    if (action == 'v') {
        fprintf(stdout, "%s %s\n", program, SB_VERSION);
        fflush(stdout);
        return 1;
    }
    return 0;
}

int
sb_config_check_log_level(const char *value, FILE *problems)
{
    sb_log_level_t level;
    if (sb_log_level_parse(value, &level) == 0)
        return 0;
    fprintf(problems, "config: LOG_LEVEL=\"%s\" is not one of debug, info, warn, error\n",
            value ? value : "");
    return -1;
}

int
sb_config_check_country_code(const char *value, FILE *problems)
{
    const char *cc = value ? value : "";
    size_t len = strlen(cc);
    if (len >= 1 && len <= 3 && cc[0] != '0' && strspn(cc, "0123456789") == len)
        return 0;
    fprintf(problems,
            "config: DEFAULT_COUNTRY_CODE=\"%s\" is not a country code "
            "(1 to 3 digits, e.g. 1 or 44)\n",
            cc);
    return -1;
}

int
sb_config_check_url(const char *name, const char *value, FILE *problems)
{
    const char *url = value ? value : "";
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        return 0;
    fprintf(problems, "config: %s=\"%s\" is not an http:// or https:// URL\n", name, url);
    return -1;
}

bool
sb_config_is_set(const char *value)
{
    return value != NULL && value[0] != '\0';
}
