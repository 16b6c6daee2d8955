/* A streaming CSV reader for the lists ministries export from spreadsheets (RFC 4180 and what
 * spreadsheets really write): a UTF-8 byte-order mark skipped, the delimiter detected from the
 * header line (comma, semicolon, tab or pipe) unless given, quoted fields with doubled quotes
 * and line breaks inside, CRLF or LF, ragged rows kept as they are (the caller reports them),
 * Latin-1 / Windows-1252 converted to UTF-8 on request, and invalid UTF-8 reported with its
 * line and column instead of being passed on. Memory stays bounded: one record at a time. */
#ifndef IMPORTERS_CSV_H
#define IMPORTERS_CSV_H

#include <stdio.h>

#include "core/core.h"

#define IMP_CSV_MAX_FIELD  ((size_t)1 << 20) /* bytes in one field */
#define IMP_CSV_MAX_FIELDS 1000              /* fields in one record */

typedef enum imp_csv_encoding {
    IMP_CSV_UTF8,   /* the default; invalid sequences are an error */
    IMP_CSV_LATIN1, /* ISO-8859-1: every byte is the code point of the same value */
    IMP_CSV_CP1252  /* Windows-1252: Latin-1 with typographic characters in 0x80-0x9F */
} imp_csv_encoding;

typedef struct imp_csv_opts {
    char delimiter; /* 0: detect from the first line */
    imp_csv_encoding encoding;
} imp_csv_opts;

/** The encoding named by --encoding: utf-8/utf8, latin-1/latin1/iso-8859-1,
 *  windows-1252/cp1252 (any case). Returns 0, or -1 with err (400 naming "encoding"). */
int imp_csv_encoding_parse(const char *name, imp_csv_encoding *out, core_err *err);

typedef struct imp_csv imp_csv;

/** One record: fields (NUL-terminated UTF-8, owned by the reader, valid until the next call),
 *  their number, and the line of the file where the record starts (1-based; a quoted field
 *  with line breaks makes a record span several lines). */
typedef struct imp_csv_row {
    char **fields;
    int nfields;
    long line;
} imp_csv_row;

/** A reader over f (borrowed; read from its current position). opts NULL: detect the
 *  delimiter, UTF-8. Never NULL. */
imp_csv *imp_csv_open(FILE *f, const imp_csv_opts *opts);
/** The delimiter in use (after the first record when detected). */
char imp_csv_delimiter(const imp_csv *c);
/** The next record into row. Returns 1, 0 at the end of the file, or -1 with err, which names
 *  the line and column (err->expr "line N, column M"): 422 invalid UTF-8, a quote not closed
 *  before the end of the file, a character after a closing quote; 413 a field over
 *  IMP_CSV_MAX_FIELD bytes or a record over IMP_CSV_MAX_FIELDS fields; 500 a read error.
 *  After an error the reader continues with the next line (a damaged record is skipped, the
 *  rest of the file is still read). */
int imp_csv_next(imp_csv *c, imp_csv_row *row, core_err *err);
/** Free c (NULL is a no-op); f stays open. */
void imp_csv_close(imp_csv *c);

#endif
