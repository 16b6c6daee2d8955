/* Per-request arena (as h2o's pool or PostgreSQL's memory contexts): many small allocations
 * freed at once when the request ends, plus deferred clean-ups for foreign objects (json_t,
 * PGresult) that joined the request. With -DCORE_ARENA_DEBUG every allocation is its own
 * malloc so AddressSanitizer sees overflows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define CHUNK_SIZE 8192

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes follow */
} chunk;

typedef struct deferred {
    struct deferred *next;
    void (*fn)(void *);
    void *p;
} deferred;

struct core_arena {
    chunk *chunks;
    deferred *defers; /* LIFO */
};

static void *
xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("mahali: out of memory\n", stderr);
        abort();
    }
    return p;
}

core_arena *
core_arena_create(void)
{
    core_arena *a = xmalloc(sizeof(*a));
    a->chunks = NULL;
    a->defers = NULL;
    return a;
}

void
core_arena_destroy(core_arena *a)
{
    chunk *c, *cn;
    deferred *d, *dn;

    if (!a)
        return;
    for (d = a->defers; d; d = dn) {
        dn = d->next;
        d->fn(d->p);
        free(d);
    }
    for (c = a->chunks; c; c = cn) {
        cn = c->next;
        free(c);
    }
    free(a);
}

void *
core_arena_alloc(core_arena *a, size_t n)
{
    chunk *c;
    size_t align = _Alignof(max_align_t);

    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
#ifdef CORE_ARENA_DEBUG
    c = xmalloc(sizeof(chunk) + n);
    c->cap = c->used = n;
    c->next = a->chunks;
    a->chunks = c;
    memset(c->data, 0, n);
    return c->data;
#else
    c = a->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        chunk *nc = xmalloc(sizeof(chunk) + cap);
        nc->cap = cap;
        nc->used = 0;
        /* a big one-off allocation goes behind the current chunk so its free space stays usable */
        if (c && cap > CHUNK_SIZE) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->chunks = nc;
        }
        c = nc;
    }
    {
        char *p = (char *)c->data + c->used;
        c->used += n;
        memset(p, 0, n);
        return p;
    }
#endif
}

char *
core_arena_strdup(core_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *p = core_arena_alloc(a, n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *
core_arena_sprintf(core_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;
    char *p;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    p = core_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void
core_arena_defer(core_arena *a, void (*fn)(void *), void *p)
{
    deferred *d = xmalloc(sizeof(*d));
    d->fn = fn;
    d->p = p;
    d->next = a->defers;
    a->defers = d;
}

void
core_defer_json(void *p)
{
    json_decref((json_t *)p);
}

void
core_defer_free(void *p)
{
    free(p);
}
