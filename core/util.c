/* Small process-wide utilities: initialisation before threads start, time stamps, random
 * bytes, bounded string copy and lookup of files embedded in the binary. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

const char *
core_clip(char out[CORE_CLIP_SIZE], const char *s, size_t n)
{
    size_t i = 0, w = 0;

    while (i < n && w < 40) {
        unsigned char ch = (unsigned char)s[i];
        size_t len = ch < 0x80 ? 1 : ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : 2;
        if (w + len > 40 || i + len > n)
            break;
        if (ch < 0x20 || ch == 0x7F || ch == '"' || ch == '\\') {
            out[w++] = '?';
            i++;
            continue;
        }
        memcpy(out + w, s + i, len);
        w += len;
        i += len;
    }
    if (i < n) {
        memcpy(out + w, "...", 3);
        w += 3;
    }
    out[w] = '\0';
    return out;
}

char *
core_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

char *
core_sprintf(const char *fmt, ...)
{
    va_list ap;
    int len;
    char *s;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || !(s = malloc((size_t)len + 1)))
        abort();
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

void
core_buf_add(core_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(p = realloc(b->data, cap)))
            abort();
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
core_buf_str(core_buf *b, const char *s)
{
    core_buf_add(b, s, strlen(s));
}

void
core_buf_json_str(core_buf *b, const char *s)
{
    const char *run = s;

    core_buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        core_buf_add(b, run, (size_t)(s - run));
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        core_buf_str(b, esc);
        run = s + 1;
    }
    core_buf_add(b, run, (size_t)(s - run));
    core_buf_add(b, "\"", 1);
}

void
core_buf_printf(core_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        core_buf_add(b, small, (size_t)n);
        return;
    }
    {
        char *big = malloc((size_t)n + 1);
        if (!big)
            abort();
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        core_buf_add(b, big, (size_t)n);
        free(big);
    }
}

/* ---- element paths ------------------------------------------------------------------------ */

size_t
core_path_add(core_path *p, const char *fmt, ...)
{
    size_t old = p->len;
    va_list ap;
    int w;

    va_start(ap, fmt);
    w = vsnprintf(p->s + p->len, CORE_PATH_CAP - p->len, fmt, ap);
    va_end(ap);
    if (w > 0)
        p->len += (size_t)w < CORE_PATH_CAP - p->len ? (size_t)w : CORE_PATH_CAP - 1 - p->len;
    return old;
}

size_t
core_path_push(core_path *p, const char *name)
{
    return core_path_add(p, p->len ? ".%s" : "%s", name);
}

size_t
core_path_index(core_path *p, size_t i)
{
    return core_path_add(p, "[%zu]", i);
}

void
core_path_pop(core_path *p, size_t old)
{
    p->len = old;
    p->s[old] = '\0';
}
