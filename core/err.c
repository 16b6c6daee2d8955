/* Errors: a core_err is filled where a problem is detected (HTTP status, FHIR IssueType, a
 * message for the client and the FHIRPath of the element) and rendered once, by web/. Extra
 * issues from validation go in a malloc'd list the core_err owns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *const issue_codes[] = {
    [CORE_ISSUE_NONE] = "informational",
    [CORE_ISSUE_INVALID] = "invalid",
    [CORE_ISSUE_STRUCTURE] = "structure",
    [CORE_ISSUE_REQUIRED] = "required",
    [CORE_ISSUE_VALUE] = "value",
    [CORE_ISSUE_INVARIANT] = "invariant",
    [CORE_ISSUE_SECURITY] = "security",
    [CORE_ISSUE_LOGIN] = "login",
    [CORE_ISSUE_FORBIDDEN] = "forbidden",
    [CORE_ISSUE_PROCESSING] = "processing",
    [CORE_ISSUE_NOT_SUPPORTED] = "not-supported",
    [CORE_ISSUE_DUPLICATE] = "duplicate",
    [CORE_ISSUE_NOT_FOUND] = "not-found",
    [CORE_ISSUE_DELETED] = "deleted",
    [CORE_ISSUE_TOO_LONG] = "too-long",
    [CORE_ISSUE_CONFLICT] = "conflict",
    [CORE_ISSUE_BUSINESS_RULE] = "business-rule",
    [CORE_ISSUE_TRANSIENT] = "transient",
    [CORE_ISSUE_TIMEOUT] = "timeout",
    [CORE_ISSUE_THROTTLED] = "throttled",
    [CORE_ISSUE_EXCEPTION] = "exception",
    [CORE_ISSUE_INFORMATIONAL] = "informational",
};

const char *
core_issue_code(core_issue code)
{
    if ((size_t)code >= sizeof(issue_codes) / sizeof(issue_codes[0]) || !issue_codes[code])
        return "exception";
    return issue_codes[code];
}

static int
err_vset(core_err *err, int status, core_issue code, const char *expr, const char *fmt, va_list ap)
{
    if (!err)
        return -1;
    err->status = status;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    core_strlcpy(err->expr, expr ? expr : "", sizeof(err->expr));
    return -1;
}

int
core_err_set(core_err *err, int status, core_issue code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, status, code, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int
core_err_set_at(core_err *err, int status, core_issue code, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, status, code, expr, fmt, ap);
    va_end(ap);
    return -1;
}

void
core_err_add(core_err *err, core_issue code, int warning, const char *expr, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    core_issue_item *it, **tail;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    it = calloc(1, sizeof(*it));
    if (!it)
        abort();
    it->code = code;
    it->warning = warning;
    it->msg = strdup(buf);
    it->expr = strdup(expr ? expr : "");
    if (!it->msg || !it->expr)
        abort();
    for (tail = &err->more; *tail; tail = &(*tail)->next)
        ;
    *tail = it;
}

void
core_err_clear(core_err *err)
{
    core_issue_item *it, *next;

    if (!err)
        return;
    for (it = err->more; it; it = next) {
        next = it->next;
        free(it->msg);
        free(it->expr);
        free(it);
    }
    memset(err, 0, sizeof(*err));
}
