#define _POSIX_C_SOURCE 200809L
/*
 * The restore drill from C (issue 16): back up, seal more, erase, lose the store, restore from
 * the backup with the destruction certificate kept since. The erased customer's contact
 * details stay shredded, what the backup held opens, and the restored trail verifies.
 * Usage: test_restore <repo> <scratch folder>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer.h"
#include "support.h"

static int checks = 0, failures = 0;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                    coffer_last_error_message() ? coffer_last_error_message() : "-");   \
        }                                                                            \
    } while (0)
#define S(lit) (const uint8_t *)(lit), strlen(lit)

static const char RETENTION[] =
    "version = 1\\npacks = [\\\"cn-accounting\\\", \\\"cn-pipl\\\"]\\n"
    "approver_roles = [\\\"archive_head\\\", \\\"accounting_head\\\"]\\nbackups_kept = \\\"35d\\\"\\n"
    "[categories]\\nidentity = [\\\"cn.acc.voucher\\\"]\\nbanking = [\\\"cn.acc.bank.statement\\\"]\\n"
    "contact = [\\\"cn.pipl.default\\\"]\\nprofile = [\\\"cn.pipl.default\\\"]\\n";

static const char MARKETING[] =
    "{\"principal\":{\"id\":\"m-1\",\"tenant\":\"firm-a\",\"roles\":[\"marketing\"]},\"purpose\":\"marketing\"}";

/* A JSON string literal of `text` (escaping quotes, backslashes and newlines). */
static char *json_string(const char *text) {
    size_t n = strlen(text);
    char *out = malloc(n * 2 + 3), *p = out;
    *p++ = '"';
    for (const char *s = text; *s; s++) {
        if (*s == '"' || *s == '\\') { *p++ = '\\'; *p++ = *s; }
        else if (*s == '\n') { *p++ = '\\'; *p++ = 'n'; }
        else *p++ = *s;
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

static char *seal(coffer_t *c, int n, const char *phone) {
    char record[512];
    snprintf(record, sizeof record,
             "{\"id\":\"c-%d\",\"tenant\":\"firm-a\",\"subject\":\"s-%d\",\"kind\":\"individual\","
             "\"name\":\"Zhang San\",\"id_documents\":[{\"type\":\"cn_resident_id\",\"number\":\"11010119800101007X\"}],"
             "\"phones\":[\"%s\"]}",
             n, n, phone);
    char *env = NULL;
    size_t len = 0;
    CHECK(coffer_seal(c, S(record), S("erp"), &env, &len) == COFFER_STATUS_OK);
    return env;
}

/* The state of phones[0] when marketing reveals `env`, into `state` (revealed/shredded/...). */
static void phone_state(coffer_t *c, const char *env, char *state, size_t cap) {
    char *out = NULL;
    size_t len = 0;
    state[0] = '\0';
    if (!env) return;
    CHECK(coffer_reveal(c, S(env), S(MARKETING), &out, &len) == COFFER_STATUS_OK);
    const char *p = out ? strstr(out, "\"phones[0]\":{\"state\":\"") : NULL;
    CHECK(p != NULL);
    if (p) {
        p += strlen("\"phones[0]\":{\"state\":\"");
        size_t i = 0;
        while (p[i] && p[i] != '"' && i + 1 < cap) { state[i] = p[i]; i++; }
        state[i] = '\0';
    }
    coffer_string_free(out);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_restore <repo> <scratch>\n"); return 2; }
    char path[4096], db[4096], backup[4096], manifest[4200], aside[4200];
    snprintf(path, sizeof path, "%s/examples/policies/accounting-firm.toml", argv[1]);
    snprintf(db, sizeof db, "%s/drill.db", argv[2]);
    snprintf(backup, sizeof backup, "%s/drill-backup.db", argv[2]);
    snprintf(manifest, sizeof manifest, "%s.manifest.json", backup);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(aside, sizeof aside, "%s%s", db, suffixes[i]);
        remove(aside);
    }
    remove(backup);
    remove(manifest);
    char *policy = read_file(path);
    CHECK(policy != NULL);
    if (!policy) return 1;
    char *pj = json_string(policy);
    char *options = malloc(strlen(pj) + strlen(RETENTION) + 64);
    sprintf(options, "{\"policy\":%s,\"retention\":\"%s\"}", pj, RETENTION);

    uint8_t key[32];
    CHECK(coffer_generate_master_key(key, sizeof key) == COFFER_STATUS_OK);
    coffer_t *c = NULL;
    CHECK(coffer_open(S(db), key, 32, S(options), &c) == COFFER_STATUS_OK);
    char *erased = seal(c, 1, "13912345678");
    char *kept = seal(c, 2, "13800001111");

    char *out = NULL;
    size_t len = 0;
    CHECK(coffer_backup(c, S(backup), S("ops"), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"format\":\"coffer-backup/1\"") && strstr(out, "\"sha256\":"));
    coffer_string_free(out);
    out = NULL;
    /* Never over an existing file; NULLs are refused by name. */
    CHECK(coffer_backup(c, S(backup), S("ops"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_backup(NULL, S(backup), S("ops"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_backup(c, NULL, 3, S("ops"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(coffer_last_error_message(), "path") != NULL);

    char *after = seal(c, 3, "13700002222");
    CHECK(coffer_erase(c, S("firm-a"), S("s-1"), S("dpo"), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"backup_exposure\":{") && strstr(out, "\"until\":\""));
    /* The certificate is the answer's last member. */
    char *cert = NULL;
    const char *at = out ? strstr(out, "\"certificate\":") : NULL;
    CHECK(at != NULL);
    if (at) {
        at += strlen("\"certificate\":");
        cert = strndup(at, strlen(at) - 1);
    }
    coffer_string_free(out);
    out = NULL;
    /* Retiring the old KEK after a rotation. */
    uint32_t version = 0;
    size_t rewrapped = 0;
    CHECK(coffer_rotate_kek(c, S("ops"), &version) == COFFER_STATUS_OK && version == 2);
    CHECK(coffer_retire_keks(c, S("ops"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    do {
        CHECK(coffer_continue_kek_rotation(c, S("ops"), &rewrapped) == COFFER_STATUS_OK);
    } while (rewrapped > 0 && failures == 0);
    CHECK(coffer_retire_keks(c, S("ops"), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strcmp(out, "[1]") == 0);
    coffer_string_free(out);
    out = NULL;
    coffer_close(c);
    c = NULL;

    /* The store is lost. */
    for (int i = 0; i < 3; i++) {
        snprintf(aside, sizeof aside, "%s%s", db, suffixes[i]);
        remove(aside);
    }
    /* Without a record of later destructions: refused, nothing written. */
    CHECK(coffer_restore(S(backup), S(db), key, 32, S("{\"actor\":\"ops\"}"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(out == NULL && strstr(coffer_last_error_message(), "certificates") != NULL);
    FILE *f = fopen(db, "rb");
    CHECK(f == NULL);
    if (f) fclose(f);
    uint8_t wrong[32];
    CHECK(coffer_generate_master_key(wrong, sizeof wrong) == COFFER_STATUS_OK);
    size_t ro_len = strlen(cert ? cert : "") + 64;
    char *restore_options = malloc(ro_len);
    snprintf(restore_options, ro_len, "{\"actor\":\"ops\",\"certificates\":[%s]}", cert ? cert : "");
    CHECK(coffer_restore(S(backup), S(db), wrong, 32, S(restore_options), &out, &len) == COFFER_STATUS_WRONG_MASTER_KEY);
    CHECK(coffer_restore(S(backup), S(db), key, 32, S("{\"actor\":\"ops\",\"extra\":1}"), &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(coffer_restore(NULL, 0, S(db), key, 32, S(restore_options), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_restore(S(backup), S(db), key, 32, S(restore_options), NULL, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_restore(S(backup), S(db), key, 32, S(restore_options), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"sources\":[\"certificates\"]") && strstr(out, "\"reapplied\":") &&
          !strstr(out, "\"reapplied\":0"));
    coffer_string_free(out);
    out = NULL;

    CHECK(coffer_open(S(db), key, 32, S(options), &c) == COFFER_STATUS_OK);
    char state[32];
    phone_state(c, erased, state, sizeof state);
    CHECK(strcmp(state, "shredded") == 0);
    phone_state(c, kept, state, sizeof state);
    CHECK(strcmp(state, "revealed") == 0);
    phone_state(c, after, state, sizeof state);
    CHECK(strcmp(state, "shredded") == 0); /* sealed after the backup: its key is not in it */
    CHECK(coffer_audit_verify(c, S(""), &out, &len) == COFFER_STATUS_OK && strstr(out, "\"intact\":true"));
    coffer_string_free(out);
    out = NULL;

    /* Redaction: the erased customer's contact fields, masked forms and tokens leave the
       envelope, and the host is told which index column to clear. */
    if (erased && kept) {
        size_t n = strlen(erased) + strlen(kept) + 4;
        char *batch = malloc(n);
        snprintf(batch, n, "[%s,%s]", erased, kept);
        CHECK(coffer_redact(c, S(batch), S("ops"), &out, &len) == COFFER_STATUS_OK);
        CHECK(out && strstr(out, "\"changed\":true,\"shredded_categories\":[\"contact\"],\"clear_index\":[\"phones[0]\"]"));
        CHECK(out && strstr(out, "\"changed\":false"));
        CHECK(out && strstr(out, "\"shredded\":{\"phones[0]\":\"contact\"}"));
        coffer_string_free(out);
        out = NULL;
        CHECK(coffer_redact(c, S("[{\"coffer\":2}]"), S("ops"), &out, &len) == COFFER_STATUS_INTEGRITY);
        CHECK(coffer_redact(c, NULL, 1, S("ops"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
        free(batch);
    }
    coffer_close(c);

    for (int i = 0; i < 3; i++) {
        snprintf(aside, sizeof aside, "%s%s", db, suffixes[i]);
        remove(aside);
    }
    remove(backup);
    remove(manifest);
    free(restore_options);
    free(cert);
    coffer_string_free(erased);
    coffer_string_free(kept);
    coffer_string_free(after);
    free(options);
    free(pj);
    free(policy);
    printf("test_restore: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
