/* core: the pieces every other folder stands on. Errors that carry an HTTP status and a FHIR
 * IssueType from where they are detected to the one place that renders them, a per-request
 * arena, logging, and a JSON layer over jansson that keeps FHIR decimals exactly as written. */
#ifndef CORE_CORE_H
#define CORE_CORE_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------------------------ */

/* FHIR IssueType codes (http://hl7.org/fhir/issue-type) we emit. */
typedef enum core_issue {
    CORE_ISSUE_NONE = 0,
    CORE_ISSUE_INVALID,
    CORE_ISSUE_STRUCTURE,
    CORE_ISSUE_REQUIRED,
    CORE_ISSUE_VALUE,
    CORE_ISSUE_INVARIANT,
    CORE_ISSUE_SECURITY,
    CORE_ISSUE_LOGIN,
    CORE_ISSUE_FORBIDDEN,
    CORE_ISSUE_PROCESSING,
    CORE_ISSUE_NOT_SUPPORTED,
    CORE_ISSUE_DUPLICATE,
    CORE_ISSUE_NOT_FOUND,
    CORE_ISSUE_DELETED,
    CORE_ISSUE_TOO_LONG,
    CORE_ISSUE_CONFLICT,
    CORE_ISSUE_BUSINESS_RULE,
    CORE_ISSUE_TRANSIENT,
    CORE_ISSUE_TIMEOUT,
    CORE_ISSUE_THROTTLED,
    CORE_ISSUE_EXCEPTION,
    CORE_ISSUE_INFORMATIONAL
} core_issue;

/** The IssueType code string for an issue ("not-found"). Static storage. */
const char *core_issue_code(core_issue code);

/* One further validation issue, kept in a malloc'd list owned by the core_err. */
typedef struct core_issue_item {
    core_issue code;
    int warning; /* 1: severity warning, 0: error */
    char *msg;
    char *expr;
    struct core_issue_item *next;
} core_issue_item;

typedef struct core_err {
    int status;            /* HTTP status; 0 = no error set */
    core_issue code;       /* FHIR IssueType */
    char msg[256];         /* diagnostics shown to the client */
    char expr[128];        /* FHIRPath of the offending element, or "" */
    core_issue_item *more; /* further issues (owned; freed by core_err_clear) or NULL */
} core_err;

#define CORE_ERR_INIT                    \
    {                                    \
        0, CORE_ISSUE_NONE, "", "", NULL \
    }

/** Set err (overwriting msg) and return -1, so that failing is one line. */
int core_err_set(core_err *err, int status, core_issue code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** As core_err_set, also naming the element (FHIRPath) the error is about. */
int
core_err_set_at(core_err *err, int status, core_issue code, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/** Append one more issue to err->more (errors beyond the first, or warnings). */
void
core_err_add(core_err *err, core_issue code, int warning, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/** Release err->more and reset err to "no error". */
void core_err_clear(core_err *err);

/* ---- arena ------------------------------------------------------------------------------- */

typedef struct core_arena core_arena;

/** A new arena. Never NULL (aborts on OOM). Free with core_arena_destroy. */
core_arena *core_arena_create(void);
/** Run deferred functions (LIFO) and free every allocation. NULL is a no-op. */
void core_arena_destroy(core_arena *a);
/** n zeroed bytes that live until the arena is destroyed. Never NULL. */
void *core_arena_alloc(core_arena *a, size_t n);
/** A copy of s (or of its first n bytes with strndup semantics) in the arena. */
char *core_arena_strdup(core_arena *a, const char *s);
char *core_arena_sprintf(core_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Call fn(p) when the arena is destroyed (LIFO). */
void core_arena_defer(core_arena *a, void (*fn)(void *), void *p);
/** Defer wrappers of the exact type core_arena_defer wants. */
void core_defer_json(void *p);
void core_defer_free(void *p);

/* ---- logging ----------------------------------------------------------------------------- */

typedef enum core_log_level {
    CORE_LOG_DEBUG,
    CORE_LOG_INFO,
    CORE_LOG_WARN,
    CORE_LOG_ERROR
} core_log_level;
/** Lines go to stderr as "time level message". Thread-safe (one fprintf per line). */
void core_log(core_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void core_log_set_level(core_log_level level);

/* ---- JSON that keeps FHIR decimals -------------------------------------------------------
 * FHIR requires decimal precision to survive a round trip ("8.4800" stays "8.4800"); jansson
 * turns numbers into doubles. core_json_parse therefore keeps every JSON number as a jansson
 * string holding a NUL byte and 'N' followed by the number's exact text; FHIR strings may not
 * contain NUL (it is refused at parse time), so the two never mix. core_json_dump writes those
 * back as bare numbers. Use the helpers below instead of json_is_number/json_is_string. */

#define CORE_JSON_MAX_DEPTH 64

/** Parse buf[0..len) (UTF-8 JSON). Duplicate keys, invalid UTF-8, NUL in strings and nesting
 *  deeper than CORE_JSON_MAX_DEPTH are refused. Returns a new reference, or NULL with err set
 *  (400 structure, message naming line and column). */
json_t *core_json_parse(const char *buf, size_t len, core_err *err);
/** Serialise compactly (object key order preserved) with numbers written as given.
 *  Returns malloc'd NUL-terminated text (caller frees) and its length in *len_out (may be NULL),
 *  or NULL on allocation failure. */
char *core_json_dump(const json_t *j, size_t *len_out);
/** Same, pretty-printed with the given indent (1..8). */
char *core_json_dump_pretty(const json_t *j, int indent, size_t *len_out);

/** 1 if j is a JSON number (in the representation above), else 0. */
int core_json_is_number(const json_t *j);
/** 1 if j is a real JSON string (not a number), else 0. */
int core_json_is_text(const json_t *j);
/** The exact text of a number ("8.4800"), borrowed; NULL if j is not a number. */
const char *core_json_number_text(const json_t *j);
/** Number's value as a double; returns 0, or -1 if j is not a number or does not fit. */
int core_json_number_get(const json_t *j, double *out);
/** A new number node from its text, which must be a valid JSON number (not checked). */
json_t *core_json_number(const char *text);
/** A new number node from an integer / a double (shortest round-trip form). */
json_t *core_json_integer(long long v);
json_t *core_json_real(double v);

/* ---- embedded files (migrations, FHIR model) --------------------------------------------- */
#include "core/embedded.h"
/** The embedded file at path (relative to the repository root), or NULL. */
const core_embedded_file *core_embedded_find(const char *path);

/* ---- small utilities --------------------------------------------------------------------- */

/** Current time as a FHIR instant with milliseconds, UTC ("2026-11-21T16:23:13.123Z"). */
void core_time_instant(char out[32]);
/** Copy at most cap-1 bytes of src into dst, always NUL-terminated. Returns strlen(src). */
size_t core_strlcpy(char *dst, const char *src, size_t cap);
/* A growing byte buffer for text built piece by piece (responses assembled from stored JSON).
 * Zero-initialise; data is NUL-terminated after every call; free(b.data) when done. Aborts when
 * memory runs out, like the arena. */
typedef struct core_buf {
    char *data;
    size_t len, cap;
} core_buf;
void core_buf_add(core_buf *b, const char *s, size_t n);
void core_buf_str(core_buf *b, const char *s);
/** s as a JSON string: quoted, with ", \ and control characters escaped. */
void core_buf_json_str(core_buf *b, const char *s);
void core_buf_printf(core_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The path of the element a walk over a document is at ("Location.position.latitude",
 * "identifier[2].value"), grown on the way down and cut back on the way up; truncated, never
 * overflowing, at CORE_PATH_CAP - 1 bytes. Zero-initialise. The add functions return the length
 * before, for core_path_pop. */
#define CORE_PATH_CAP 512
typedef struct core_path {
    char s[CORE_PATH_CAP];
    size_t len;
} core_path;
size_t core_path_add(core_path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** name, after a '.' unless the path is empty. */
size_t core_path_push(core_path *p, const char *name);
/** "[i]". */
size_t core_path_index(core_path *p, size_t i);
void core_path_pop(core_path *p, size_t old);

/** strdup that aborts when memory is exhausted (like every allocation here). */
char *core_strdup(const char *s);
/** A new printf-formatted string (caller free()s it); aborts when memory is exhausted. */
char *core_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** s[0..n) as a user value for a message, into out: at most 40 bytes, cut on a UTF-8
 *  boundary, control characters, quotes and backslashes replaced by '?', and "..." when cut.
 *  Returns out. */
#define CORE_CLIP_SIZE 48
const char *core_clip(char out[CORE_CLIP_SIZE], const char *s, size_t n);
/** Random bytes from libsodium (initialised by core_init). */
void core_random(void *buf, size_t n);
/** Process-wide initialisation before any thread starts: libsodium, JSON seed. 0 or -1. */
int core_init(void);

#endif
