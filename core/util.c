/* Small process-wide utilities: initialisation before threads start, time stamps, random
 * bytes, bounded string copy and lookup of files embedded in the binary. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/core.h"

int
core_init(void)
{
    if (sodium_init() < 0)
        return -1;
    json_object_seed(0);
    return 0;
}

void
core_time_instant(char out[32])
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)(tv.tv_usec / 1000) % 1000u);
}

size_t
core_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

void
core_random(void *buf, size_t n)
{
    randombytes_buf(buf, n);
}

const core_embedded_file *
core_embedded_find(const char *path)
{
    const core_embedded_file *f;
    for (f = core_embedded; f->path; f++)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}
