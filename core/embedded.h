/* Files compiled into the binary by tools/embed.cmake (migrations in sql/, the FHIR model). */
#ifndef CORE_EMBEDDED_H
#define CORE_EMBEDDED_H
#include <stddef.h>

typedef struct core_embedded_file {
    const char *path;          /* relative to the repository root, e.g. "sql/0001_init.sql" */
    const unsigned char *data; /* NUL-terminated */
    size_t len;                /* without the terminating NUL */
} core_embedded_file;

/* Terminated by an entry whose path is NULL. Sorted as the build listed them (sql/ by number). */
extern const core_embedded_file core_embedded[];
#endif
