/* Logging: one line per event on stderr, "2026-11-21T16:23:13.123Z INFO message". SQL text,
 * SQLSTATEs and host names belong here, never in a client's OperationOutcome. */
#include <stdatomic.h>
#include <stdio.h>

#include "core/core.h"

static atomic_int log_level = CORE_LOG_INFO;

void
core_log_set_level(core_log_level level)
{
    atomic_store(&log_level, (int)level);
}

void
core_log(core_log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
    char line[2048], ts[32];
    va_list ap;
    int n;

    if ((int)level < atomic_load(&log_level))
        return;
    core_time_instant(ts);
    n = snprintf(line, sizeof(line), "%s %s ", ts, names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); /* one call: lines from threads don't interleave */
}
