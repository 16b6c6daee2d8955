/* Bearer tokens: 32 random bytes shown once as "mh_" + base64url; only a BLAKE2b hash is
 * stored, so a database dump reveals no usable token. Tokens carry high entropy, so a fast
 * hash is right here (argon2id is for human passwords). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

static const core_stmt ST_INSERT = {
    "reg_token_insert",
    "INSERT INTO api_token (name, role, hash) VALUES ($1, $2, decode($3, 'hex'))", 3
};
static const core_stmt ST_CHECK = {
    "reg_token_check",
    "SELECT role, name, id FROM api_token WHERE hash = decode($1, 'hex') AND revoked_at IS NULL", 1
};
static const core_stmt ST_AUDIT = { "reg_token_audit",
                                    "INSERT INTO audit_event (actor, action, rtype, id) VALUES "
                                    "($1, 'token-create', 'api_token', $2)",
                                    2 };

reg_role
reg_role_parse(const char *s)
{
    if (!s)
        return REG_ROLE_NONE;
    if (strcmp(s, "reader") == 0)
        return REG_ROLE_READER;
    if (strcmp(s, "hr") == 0)
        return REG_ROLE_HR;
    if (strcmp(s, "editor") == 0)
        return REG_ROLE_EDITOR;
    if (strcmp(s, "admin") == 0)
        return REG_ROLE_ADMIN;
    return REG_ROLE_NONE;
}

const char *
reg_role_name(reg_role r)
{
    switch (r) {
    case REG_ROLE_READER:
        return "reader";
    case REG_ROLE_HR:
        return "hr";
    case REG_ROLE_EDITOR:
        return "editor";
    case REG_ROLE_ADMIN:
        return "admin";
    default:
        return "none";
    }
}

static void
hash_hex(const char *token, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

int
reg_token_create(char token_out[96], core_db *db, reg_role role, const char *name, core_err *err)
{
    unsigned char raw[32];
    char b64[64], hex[65];
    const char *params[3];
    PGresult *r;

    if (role == REG_ROLE_NONE)
        return core_err_set(err, 400, CORE_ISSUE_VALUE, "role must be reader, hr, editor or admin");
    core_random(raw, sizeof(raw));
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(token_out, 96, "mh_%s", b64);
    hash_hex(token_out, hex);
    params[0] = name && *name ? name : reg_role_name(role);
    params[1] = reg_role_name(role);
    params[2] = hex;
    if (!(r = core_db_exec(db, &ST_INSERT, params, err)))
        return -1;
    PQclear(r);
    params[0] = "cli";
    params[1] = name && *name ? name : reg_role_name(role);
    if ((r = core_db_exec(db, &ST_AUDIT, params, err)))
        PQclear(r);
    return 0;
}

int
reg_token_check(reg_principal *out, core_db *db, const char *token, core_err *err)
{
    char hex[65];
    const char *params[1] = { hex };
    PGresult *r;

    memset(out, 0, sizeof(*out));
    if (strncmp(token, "mh_", 3) != 0 || strlen(token) > 90)
        return core_err_set(err, 401, CORE_ISSUE_LOGIN, "the bearer token is not valid");
    hash_hex(token, hex);
    if (!(r = core_db_exec(db, &ST_CHECK, params, err)))
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return core_err_set(err, 401, CORE_ISSUE_LOGIN, "the bearer token is not valid");
    }
    out->role = reg_role_parse(PQgetvalue(r, 0, 0));
    core_strlcpy(out->name, PQgetvalue(r, 0, 1), sizeof(out->name));
    out->token_id = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    return 0;
}
