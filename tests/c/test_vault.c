/*
 * The vault from C: open, seal, search, reveal, retention, archives, rotations, audit, the
 * panic boundary, the audit callback, and 8 threads sharing one handle.
 *
 * Usage: test_vault <path to the repository root> <scratch directory>
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer.h"

/* A test hook the library exports but the header leaves out (it is not part of the API). */
coffer_status coffer_test_panic(void);
#include "support.h"

static int failures = 0, checks = 0;
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

static const char RETENTION[] =
    "version = 1\npacks = [\"cn-accounting\", \"cn-pipl\"]\n"
    "approver_roles = [\"archive_head\", \"accounting_head\"]\n"
    "[categories]\nidentity = [\"cn.acc.voucher\"]\nbanking = [\"cn.acc.bank.statement\"]\n"
    "contact = [\"cn.pipl.default\"]\nprofile = [\"cn.pipl.default\"]\n";

static const char RECORD[] =
    "{\"id\":\"c-1\",\"tenant\":\"firm-a\",\"subject\":\"s-1\",\"kind\":\"individual\",\"name\":\"Zhang San\","
    "\"id_documents\":[{\"type\":\"cn_resident_id\",\"number\":\"110101200001010002\"}],"
    "\"phones\":[\"+86 139 1234 5678\"],"
    "\"bank_accounts\":[{\"account_type\":\"card\",\"account_number\":\"6200000000000005\"}]}";

static const char ACCOUNTANT[] =
    "{\"principal\":{\"id\":\"u-1\",\"tenant\":\"firm-a\",\"roles\":[\"accountant\"]},\"purpose\":\"payments\"}";
static const char CLERK[] =
    "{\"principal\":{\"id\":\"u-2\",\"tenant\":\"firm-a\",\"roles\":[\"clerk\"]},\"purpose\":\"bookkeeping\"}";

static int audit_entries = 0;
static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;
static void on_audit(void *userdata, const char *entry, size_t len) {
    (void)userdata;
    if (entry && len > 0 && strstr(entry, "\"kind\"")) {
        pthread_mutex_lock(&audit_lock);
        audit_entries++;
        pthread_mutex_unlock(&audit_lock);
    }
}

/* One past the closing quote of the JSON string starting at the quote `p`, or NULL. */
static const char *json_end_string(const char *p) {
    for (p++; *p; p++) {
        if (*p == '\\' && p[1]) p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* The end of the JSON object or array starting at `p` (one past its closing bracket), or NULL. */
static const char *json_end(const char *p) {
    int depth = 0, in_string = 0;
    for (; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '"') in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0) return p + 1;
        }
    }
    return NULL;
}

/* The JSON string starting at the quote `p`, unescaped (only \" \\ \/ occur in the vectors). */
static char *json_unescape(const char *p) {
    if (*p != '"') return NULL;
    char *out = malloc(strlen(p) + 1), *o = out;
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\' && *p != '/') { free(out); return NULL; }
        }
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* tests/vectors/envelopes.json: every case opens to its plaintexts with the case's keys, and a
 * changed ciphertext character is an integrity error. */
static void test_envelope_vectors(const char *root) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/vectors/envelopes.json", root);
    char *file = read_file(path);
    CHECK(file != NULL);
    if (!file) return;
    const char *p = strstr(file, "\"cases\"");
    p = p ? strchr(p, '[') : NULL;
    int cases = 0;
    while (p && (p = strchr(p + 1, '{')) != NULL) {
        const char *end = json_end(p);
        if (!end) break;
        char *c = strndup(p, (size_t)(end - p));
        const char *e = strstr(c, "\"envelope\":");
        char *envelope = e ? json_unescape(strchr(e + 11, '"')) : NULL;
        CHECK(envelope != NULL);
        char *out = NULL;
        size_t len = 0;
        CHECK(envelope && coffer_envelope_open_with_keys(S(envelope), S(c), &out, &len) == COFFER_STATUS_OK);
        /* Every "path": "plaintext" pair of the case appears in the answer. */
        const char *pt = strstr(c, "\"plaintexts\":");
        pt = pt ? strchr(pt, '{') : NULL;
        const char *pt_end = pt ? json_end(pt) : NULL;
        int pairs = 0;
        for (const char *q = pt ? strchr(pt, '"') : NULL; q && q < pt_end; q = strchr(q, '"')) {
            const char *k_end = json_end_string(q), *v = k_end ? strchr(k_end, '"') : NULL;
            const char *v_end = v ? json_end_string(v) : NULL;
            if (!v_end) break;
            char pair[1024];
            snprintf(pair, sizeof pair, "%.*s:%.*s", (int)(k_end - q), q, (int)(v_end - v), v);
            CHECK(out && strstr(out, pair) != NULL);
            pairs++;
            q = v_end;
        }
        CHECK(pairs >= 5);
        coffer_string_free(out);
        /* One changed character of the name's ciphertext: an integrity error, nothing written. */
        char *ct = envelope ? strstr(envelope, "\"name\":{") : NULL;
        ct = ct ? strstr(ct, "\"ct\":\"") : NULL;
        if (ct) {
            ct[6] = ct[6] == 'A' ? 'B' : 'A';
            out = (char *)0x1;
            CHECK(coffer_envelope_open_with_keys(S(envelope), S(c), &out, &len) == COFFER_STATUS_INTEGRITY);
            CHECK(out == (char *)0x1);
        }
        CHECK(ct != NULL);
        CHECK(coffer_envelope_open_with_keys(S(envelope), S("{"), &out, &len) == COFFER_STATUS_MALFORMED);
        CHECK(coffer_envelope_open_with_keys(S(envelope), NULL, 0, &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
        CHECK(coffer_envelope_open_with_keys(S(envelope), S(c), NULL, &len) == COFFER_STATUS_INVALID_ARGUMENT);
        free(envelope);
        free(c);
        cases++;
        p = end;
        while (*p == ',' || *p == ' ' || *p == '\n') p++;
        if (*p == ']') break;
        p--;
    }
    CHECK(cases >= 2);
    free(file);
}

struct thread_arg { coffer_t *c; int n; int ok; };
static int iterations = 20;

static void *work(void *p) {
    struct thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < iterations; i++) {
        char record[512];
        snprintf(record, sizeof record,
                 "{\"id\":\"t-%d-%d\",\"tenant\":\"firm-a\",\"subject\":\"s-t%d\",\"kind\":\"individual\",\"name\":\"Li Si\","
                 "\"id_documents\":[{\"type\":\"cn_resident_id\",\"number\":\"110101200001010002\"}],\"phones\":[\"13800000000\"]}",
                 a->n, i, a->n);
        char *env = NULL, *view = NULL;
        size_t len = 0;
        if (coffer_seal(a->c, S(record), S("thread"), &env, &len) != COFFER_STATUS_OK) { a->ok = 0; continue; }
        char access[256];
        snprintf(access, sizeof access, "{\"principal\":{\"id\":\"u-t%d\",\"tenant\":\"firm-a\",\"roles\":[\"accountant\"]},\"purpose\":\"payments\"}", a->n);
        if (coffer_reveal(a->c, (const uint8_t *)env, len, S(access), &view, &len) != COFFER_STATUS_OK) a->ok = 0;
        if (!view || !strstr(view, "\"value\":\"Li Si\"")) a->ok = 0;
        coffer_string_free(view);
        coffer_string_free(env);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_vault <repo> <scratch>\n"); return 2; }
    const char *it = getenv("COFFER_TEST_ITERATIONS");
    if (it && atoi(it) > 0) iterations = atoi(it) < 20 ? atoi(it) : 20;
    char path[4096], db[4096], db2[4096];
    snprintf(path, sizeof path, "%s/examples/policies/accounting-firm.toml", argv[1]);
    store_location(db, sizeof db, argv[2], "vault", (long)getpid());
    store_location(db2, sizeof db2, argv[2], "restored", (long)getpid());
    remove(db); remove(db2);
    char *policy = read_file(path);
    CHECK(policy != NULL);
    char *pj = json_string(policy), *rj = json_string(RETENTION);
    char *options = malloc(strlen(pj) + strlen(rj) + 64);
    sprintf(options, "{\"policy\":%s,\"retention\":%s}", pj, rj);

    /* Keys: a too-small buffer is refused and left untouched. */
    uint8_t key[32], small[16] = {0}, key2[32];
    CHECK(coffer_generate_master_key(small, sizeof small) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(small[0] == 0 && small[15] == 0);
    CHECK(coffer_generate_master_key(key, sizeof key) == COFFER_STATUS_OK);
    CHECK(coffer_generate_master_key(key2, sizeof key2) == COFFER_STATUS_OK);
    CHECK(memcmp(key, key2, 32) != 0);

    coffer_t *c = NULL;
    CHECK(coffer_open(S(db), key, 31, (const uint8_t *)options, strlen(options), &c) == COFFER_STATUS_INVALID_ARGUMENT);
    /* An empty path would open a temporary database that vanishes on close: refused. */
    CHECK(coffer_open(S(""), key, 32, (const uint8_t *)options, strlen(options), &c) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(c == NULL && strstr(coffer_last_error_message(), "path") != NULL);
    CHECK(coffer_open(S(db), key, 32, S("{\"policy\": 3}"), &c) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_open(S(db), key, 32, S("{not json"), &c) == COFFER_STATUS_MALFORMED);
    CHECK(c == NULL);
    CHECK(coffer_open(S(db), key, 32, (const uint8_t *)options, strlen(options), &c) == COFFER_STATUS_OK);
    CHECK(c != NULL);
    CHECK(coffer_audit_subscribe(c, on_audit, NULL) == COFFER_STATUS_OK);
    CHECK(coffer_audit_subscribe(c, NULL, NULL) == COFFER_STATUS_INVALID_ARGUMENT);

    /* A wrong master key is refused (the store stays open in the first handle). */
    coffer_t *wrong = NULL;
    CHECK(coffer_open(S(db), key2, 32, NULL, 0, &wrong) == COFFER_STATUS_WRONG_MASTER_KEY);
    CHECK(wrong == NULL);

    /* Seal, search, reveal. */
    char *env = NULL, *out = NULL;
    size_t env_len = 0, len = 0;
    CHECK(coffer_seal(NULL, S(RECORD), S("erp"), &env, &env_len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_seal(c, S("{\"id\":\"x\",\"tenant\":\"firm-a\",\"kind\":\"individual\"}"), S("erp"), &env, &env_len) == COFFER_STATUS_VALIDATION);
    CHECK(strstr(coffer_last_error_message(), "required.missing") != NULL);
    CHECK(coffer_seal(c, S(RECORD), S("erp"), &env, &env_len) == COFFER_STATUS_OK);
    CHECK(env && strstr(env, "\"coffer\":3") && !strstr(env, "139****5678") && !strstr(env, "6200000000000005") && !strstr(env, "Zhang San"));
    /* Search is an access: the accountant may search ID numbers (tokens, audited), marketing
     * may not (denied, and audited too); the answer never holds the value. */
    CHECK(coffer_search(c, S(ACCOUNTANT), S("{\"field\":\"id_documents[].number\",\"value\":\"110101 20000101 0002\"}"), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"epoch\":1") && strstr(out, "\"audit_seq\":") && !strstr(out, "110101"));
    coffer_string_free(out);
    out = NULL;
    CHECK(coffer_search(c, S("{\"principal\":{\"id\":\"m-1\",\"tenant\":\"firm-a\",\"roles\":[\"marketing\"]},\"purpose\":\"marketing\"}"),
                        S("{\"field\":\"id_documents[].number\",\"value\":\"110101200001010002\"}"), &out, &len) == COFFER_STATUS_ACCESS_DENIED);
    CHECK(out == NULL && !strstr(coffer_last_error_message(), "110101"));
    CHECK(coffer_search(c, S(ACCOUNTANT), S("{\"field\":\"id_documents[].number\"}"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);

    CHECK(coffer_reveal(c, (const uint8_t *)env, env_len, S(ACCOUNTANT), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"value\":\"6200000000000005\""));
    coffer_string_free(out);
    out = NULL;
    CHECK(coffer_reveal(c, (const uint8_t *)env, env_len, S(CLERK), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"value\":\"139****5678\"") && strstr(out, "\"state\":\"denied\""));
    CHECK(out && !strstr(out, "6200000000000005"));
    coffer_string_free(out);
    out = NULL;
    CHECK(coffer_reveal(c, (const uint8_t *)env, env_len, S("{\"principal\":{}}"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);

    /* Invalid UTF-8 and malformed JSON are refused with where they are; nothing is written. */
    static const uint8_t NOT_UTF8[] = {'{', '"', 'i', 'd', '"', ':', '"', 0xC3, 0x28, '"', '}'};
    out = (char *)0x1;
    CHECK(coffer_seal(c, NOT_UTF8, sizeof NOT_UTF8, S("erp"), &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(strstr(coffer_last_error_message(), "record") != NULL);
    CHECK(coffer_reveal(c, (const uint8_t *)env, env_len, NOT_UTF8, sizeof NOT_UTF8, &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(coffer_seal(c, S("{\"id\": "), S("erp"), &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(strstr(coffer_last_error_message(), "line 1") != NULL);
    /* An envelope that is not well-formed is an integrity error (docs/FORMAT.md). */
    CHECK(coffer_reveal(c, S("{\"coffer\":1"), S(ACCOUNTANT), &out, &len) == COFFER_STATUS_INTEGRITY);
    CHECK(out == (char *)0x1);
    out = NULL;

    /* Denied: a principal of another tenant gets nothing of this tenant's record, and a
     * principal without a role gets every field denied; neither answer holds a value. */
    static const char OTHER_TENANT[] =
        "{\"principal\":{\"id\":\"u-9\",\"tenant\":\"firm-b\",\"roles\":[\"accountant\"]},\"purpose\":\"payments\"}";
    static const char NO_ROLE[] =
        "{\"principal\":{\"id\":\"u-8\",\"tenant\":\"firm-a\",\"roles\":[]},\"purpose\":\"payments\"}";
    coffer_status denied = coffer_reveal(c, (const uint8_t *)env, env_len, S(OTHER_TENANT), &out, &len);
    CHECK(denied == COFFER_STATUS_ACCESS_DENIED || (denied == COFFER_STATUS_OK && out && !strstr(out, "\"value\"")));
    if (denied == COFFER_STATUS_OK) coffer_string_free(out);
    out = NULL;
    CHECK(coffer_reveal(c, (const uint8_t *)env, env_len, S(NO_ROLE), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && !strstr(out, "\"value\"") && strstr(out, "\"state\":\"denied\"") && strstr(out, "no role"));
    coffer_string_free(out);
    out = NULL;

    /* Reports: an incident scoped from the trail (the accountant saw s-1's ID number), a
     * subject report with the envelope (values as the officer's policy shows them), both
     * rendered; a clerk may not run them; bad requests say what is wrong. */
    static const char OFFICER[] =
        "{\"principal\":{\"id\":\"dpo-1\",\"tenant\":\"firm-a\",\"roles\":[\"privacy_officer\"]},"
        "\"purpose\":\"data_protection\",\"context\":{\"ticket\":\"DSAR-7\"}}";
    char request[4096];
    snprintf(request, sizeof request,
             "{\"report\":\"incident\",\"access\":%s,\"query\":{\"principal\":\"u-1\",\"fields\":[\"id_documents[].number\"]}}",
             OFFICER);
    CHECK(coffer_report(c, S(request), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"report\": \"incident\"") && strstr(out, "\"subject\": \"s-1\""));
    char *html = NULL;
    size_t html_len = 0;
    CHECK(out && coffer_report_render((const uint8_t *)out, len, S("html"), &html, &html_len) == COFFER_STATUS_OK);
    CHECK(html && strstr(html, "<!DOCTYPE html>") && strstr(html, "id=\"reveals-chart\"") && html_len == strlen(html));
    coffer_string_free(html);
    html = (char *)0x1;
    CHECK(out && coffer_report_render((const uint8_t *)out, len, S("pdf"), &html, &html_len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(html == (char *)0x1);
    coffer_string_free(out);
    out = NULL;
    size_t req_len = (size_t)snprintf(request, sizeof request,
                                      "{\"report\":\"subject\",\"access\":%s,\"tenant\":\"firm-a\",\"subject\":\"s-1\",\"envelopes\":[%s]}",
                                      OFFICER, env);
    CHECK(req_len < sizeof request);
    CHECK(coffer_report(c, (const uint8_t *)request, req_len, &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"value\": \"6200000000000005\"") && strstr(out, "\"actor\": \"u-1\""));
    CHECK(out && coffer_report_render((const uint8_t *)out, len, S("markdown"), &html, &html_len) == COFFER_STATUS_OK);
    CHECK(html && strstr(html, "# Personal data held about subject s-1 (firm-a)"));
    coffer_string_free(html);
    coffer_string_free(out);
    out = (char *)0x1;
    snprintf(request, sizeof request, "{\"report\":\"check\",\"access\":%s}", CLERK);
    CHECK(coffer_report(c, S(request), &out, &len) == COFFER_STATUS_ACCESS_DENIED);
    CHECK(strstr(coffer_last_error_message(), "admin") != NULL);
    CHECK(coffer_report(c, S("{\"report\":\"gossip\"}"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_report(c, S("{\"report\":"), &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(coffer_report(c, NOT_UTF8, sizeof NOT_UTF8, &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(out == (char *)0x1);
    out = NULL;

    /* A tampered envelope is an integrity error, and nothing comes out. */
    char *tampered = strdup(env);
    char *ct = strstr(tampered, "\"ct\":\"");
    if (ct) ct[6] = ct[6] == 'A' ? 'B' : 'A';
    out = (char *)0x1;
    CHECK(coffer_reveal(c, (const uint8_t *)tampered, strlen(tampered), S(ACCOUNTANT), &out, &len) == COFFER_STATUS_INTEGRITY);
    CHECK(out == (char *)0x1);
    free(tampered);

    /* Batches. */
    char batch[2048];
    snprintf(batch, sizeof batch, "[%s, {\"id\":\"bad\"}]", RECORD);
    CHECK(coffer_seal_many(c, S(batch), S("erp"), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "{\"ok\":") && strstr(out, "{\"error\":"));
    coffer_string_free(out);
    out = NULL;
    char *envs = malloc(env_len * 2 + 8);
    sprintf(envs, "[%s,%s]", env, env);
    CHECK(coffer_reveal_many(c, S(envs), S(ACCOUNTANT), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && out[0] == '[' && strstr(out, "\"audit_seq\""));
    coffer_string_free(out);
    out = NULL;

    /* Retention: a hold blocks erasure; released, erasure destroys contacts and restricts the rest. */
    int64_t hold = 0;
    CHECK(coffer_hold_place(c, S("{\"tenant\":\"firm-a\",\"subject\":\"s-1\",\"reason\":\"claim 17\"}"), S("counsel"), &hold) == COFFER_STATUS_OK);
    CHECK(hold > 0);
    CHECK(coffer_holds(c, &out, &len) == COFFER_STATUS_OK && strstr(out, "claim 17"));
    coffer_string_free(out);
    out = NULL;
    CHECK(coffer_erase(c, S("firm-a"), S("s-1"), S("dpo"), &out, &len) == COFFER_STATUS_LEGAL_HOLD);
    char hold_text[32];
    snprintf(hold_text, sizeof hold_text, "%lld", (long long)hold);
    CHECK(coffer_hold_release(c, S(hold_text), S("counsel")) == COFFER_STATUS_OK);
    CHECK(coffer_record_event(c, S("firm-a"), S("s-1"), S("relationship_ended"), S("2999-01-01"), S("erp")) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_record_event(c, S("firm-a"), S("s-1"), S("birthday"), S("2020-01-01"), S("erp")) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_record_event(c, S("firm-a"), S("s-1"), S("relationship_ended"), S("2020-01-01"), S("erp")) == COFFER_STATUS_OK);
    CHECK(coffer_erase(c, S("firm-a"), S("s-1"), S("dpo"), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"outcome\":\"destroyed\"") && strstr(out, "\"outcome\":\"restricted\""));
    /* The certificate verifies with the store's public key. */
    char *pk = NULL;
    size_t pk_len = 0;
    CHECK(coffer_signing_public_key(c, &pk, &pk_len) == COFFER_STATUS_OK && pk_len == 64);
    char *cert = out ? strstr(out, "\"certificate\":") : NULL;
    if (cert) {
        cert += strlen("\"certificate\":");
        size_t n = strlen(cert);
        char *copy = strndup(cert, n - 1); /* drop the closing brace of the answer */
        CHECK(coffer_certificate_verify(S(copy), (const uint8_t *)pk, pk_len) == COFFER_STATUS_OK);
        copy[strlen(copy) / 2] ^= 1;
        CHECK(coffer_certificate_verify(S(copy), (const uint8_t *)pk, pk_len) != COFFER_STATUS_OK);
        free(copy);
    }
    coffer_string_free(out);
    out = NULL;
    CHECK(coffer_reveal(c, (const uint8_t *)env, env_len, S(ACCOUNTANT), &out, &len) == COFFER_STATUS_OK);
    /* Nothing opens any more: the contacts' key is gone, the rest is restricted to legal purposes. */
    CHECK(out && !strstr(out, "\"revealed\"") && !strstr(out, "\"masked\"") && strstr(out, "restricted after an erasure request"));
    coffer_string_free(out);
    out = NULL;
    CHECK(coffer_sweep(c, S("ops"), &out, &len) == COFFER_STATUS_OK && strstr(out, "\"held\":0"));
    coffer_string_free(out);
    out = NULL;
    CHECK(coffer_approve(c, S("999"), S("wang"), S("archive_head")) == COFFER_STATUS_NOT_FOUND);
    CHECK(coffer_execute(c, S("x"), S("ops"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);

    /* Index planning needs no handle. */
    CHECK(coffer_index_plan(1000000, 1000000, &out, &len) == COFFER_STATUS_OK && strstr(out, "\"recommended_bits\":16"));
    coffer_string_free(out);
    out = NULL;

    /* Archives: export, verify offline, restore into a fresh store. */
    static const char ARCHIVE_KEY[] = "0707070707070707070707070707070707070707070707070707070707070707";
    char *bundle = NULL;
    size_t bundle_len = 0;
    static const char EXPORTER[] =
        "{\"principal\":{\"id\":\"aud-1\",\"tenant\":\"firm-a\",\"roles\":[\"auditor\"]},"
        "\"purpose\":\"statutory_audit\",\"context\":{\"ticket\":\"AUD-1\",\"destination_region\":\"CN\"}}";
    /* An export hands over every field: a clerk may not, the auditor (with a ticket) may. */
    CHECK(coffer_archive_export(c, S(envs), S(ARCHIVE_KEY), S(CLERK), &bundle, &bundle_len) == COFFER_STATUS_ACCESS_DENIED);
    CHECK(bundle == NULL);
    CHECK(coffer_archive_export(c, S(envs), S(ARCHIVE_KEY), S(EXPORTER), &bundle, &bundle_len) == COFFER_STATUS_OK);
    CHECK(bundle && !strstr(bundle, "envelope_mac_key"));
    CHECK(coffer_archive_verify((const uint8_t *)bundle, bundle_len, (const uint8_t *)pk, pk_len, NULL, 0) == COFFER_STATUS_OK);
    CHECK(coffer_archive_verify((const uint8_t *)bundle, bundle_len, (const uint8_t *)pk, pk_len, S(ARCHIVE_KEY)) == COFFER_STATUS_OK);
    coffer_t *c2 = NULL;
    CHECK(coffer_open(S(db2), key2, 32, (const uint8_t *)options, strlen(options), &c2) == COFFER_STATUS_OK);
    CHECK(coffer_archive_restore(c2, (const uint8_t *)bundle, bundle_len, S(ARCHIVE_KEY), (const uint8_t *)pk, pk_len, S("ops"), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && out[0] == '[');
    coffer_string_free(out);
    out = NULL;
    coffer_close(c2);
    coffer_string_free(bundle);

    /* Rotations. */
    uint32_t version = 0;
    size_t rewrapped = 1;
    CHECK(coffer_rotate_kek(c, S("ops"), &version) == COFFER_STATUS_OK && version == 2);
    CHECK(coffer_continue_kek_rotation(c, S("ops"), &rewrapped) == COFFER_STATUS_OK);
    CHECK(coffer_continue_kek_rotation(c, S("ops"), &rewrapped) == COFFER_STATUS_OK && rewrapped == 0);
    CHECK(coffer_rotate_index_key(c, S("ops"), &version) == COFFER_STATUS_OK && version == 2);
    CHECK(coffer_retire_index_epoch(c, S("1"), S("ops")) == COFFER_STATUS_OK);
    CHECK(coffer_rotate_data_key(c, S("firm-a"), S("s-1"), S("identity"), S("ops"), &version) == COFFER_STATUS_OK && version == 2);
    CHECK(coffer_reseal(c, (const uint8_t *)env, env_len, S("ops"), &out, &len) != COFFER_STATUS_INTERNAL);
    coffer_string_free(out);
    out = NULL;
    out = NULL;
    CHECK(coffer_rotate_master_key(c, key2, 32, S("ops")) == COFFER_STATUS_OK);

    /* Audit: verify, checkpoint, export; the callback saw the entries. */
    CHECK(coffer_audit_verify(c, S(""), &out, &len) == COFFER_STATUS_OK && strstr(out, "\"intact\":true"));
    coffer_string_free(out);
    out = NULL;
    char *cp = NULL;
    CHECK(coffer_audit_checkpoint(c, S("ops"), &cp, &len) == COFFER_STATUS_OK);
    CHECK(coffer_audit_verify(c, S(cp), &out, &len) == COFFER_STATUS_OK && strstr(out, "\"checkpoint_checked\":true"));
    coffer_string_free(out);
    out = NULL;
    coffer_string_free(cp);
    CHECK(coffer_audit_export(c, &out, &len) == COFFER_STATUS_OK && strstr(out, "\"kind\":\"reveal\""));
    CHECK(out && !strstr(out, "6200000000000005") && !strstr(out, "Zhang San"));
    CHECK(out && strstr(out, "\"kind\":\"reveal.batch\"") && strstr(out, "\"mac\""));
    coffer_string_free(out);
    out = NULL;
    /* Expanded: a batch's records each on a line of their own, no batch entries, no MACs. */
    CHECK(coffer_audit_export_expanded(c, &out, &len) == COFFER_STATUS_OK && out && strlen(out) == len);
    CHECK(out && !strstr(out, ".batch\"") && !strstr(out, "\"mac\"") && strstr(out, "\"item\":1,"));
    CHECK(out && !strstr(out, "6200000000000005") && !strstr(out, "Zhang San"));
    coffer_string_free(out);
    out = NULL;
    pthread_mutex_lock(&audit_lock);
    CHECK(audit_entries > 10);
    pthread_mutex_unlock(&audit_lock);

    /* The panic boundary: a status, not an abort. */
    CHECK(coffer_test_panic() == COFFER_STATUS_INTERNAL);
    CHECK(strstr(coffer_last_error_message(), "panic") != NULL);

    /* 8 threads share the handle. */
    pthread_t threads[8];
    struct thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i].c = c;
        args[i].n = i;
        CHECK(pthread_create(&threads[i], NULL, work, &args[i]) == 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        CHECK(args[i].ok);
    }
    CHECK(coffer_audit_verify(c, S(""), &out, &len) == COFFER_STATUS_OK && strstr(out, "\"intact\":true"));
    coffer_string_free(out);
    out = NULL;

    coffer_close(c);
    /* The new master key opens the store; the old one no longer does. */
    CHECK(coffer_open(S(db), key, 32, NULL, 0, &c) == COFFER_STATUS_WRONG_MASTER_KEY);
    CHECK(coffer_open(S(db), key2, 32, NULL, 0, &c) == COFFER_STATUS_OK);
    coffer_close(c);
    c = NULL;

    /* The master key from a file (hexadecimal text here) and from the environment. */
    static const char HEX[] = "0123456789abcdef";
    char key_hex[65], key_path[4096];
    for (int i = 0; i < 32; i++) {
        key_hex[2 * i] = HEX[key2[i] >> 4];
        key_hex[2 * i + 1] = HEX[key2[i] & 15];
    }
    key_hex[64] = '\0';
    snprintf(key_path, sizeof key_path, "%s/master.key", argv[2]);
    FILE *kf = fopen(key_path, "wb");
    CHECK(kf != NULL);
    if (kf) { fputs(key_hex, kf); fclose(kf); }
    /* A key file other users can read is refused, naming the file and the fix. */
    CHECK(chmod(key_path, 0644) == 0);
    CHECK(coffer_open_with_key_file(S(db), S(key_path), NULL, 0, &c) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(c == NULL && strstr(coffer_last_error_message(), "chmod 600") != NULL);
    CHECK(chmod(key_path, 0600) == 0);
    CHECK(coffer_open_with_key_file(S(db), S(key_path), NULL, 0, &c) == COFFER_STATUS_OK);
    coffer_close(c);
    c = NULL;
    CHECK(coffer_open_with_key_file(S(db), S("/nonexistent/master.key"), NULL, 0, &c) == COFFER_STATUS_IO);
    CHECK(c == NULL);
    remove(key_path);
    CHECK(setenv("COFFER_TEST_MASTER_KEY", key_hex, 1) == 0);
    CHECK(coffer_open_with_key_env(S(db), S("COFFER_TEST_MASTER_KEY"), NULL, 0, &c) == COFFER_STATUS_OK);
    coffer_close(c);
    c = NULL;
    CHECK(coffer_open_with_key_env(S(db), S("COFFER_TEST_UNSET_VARIABLE"), NULL, 0, &c) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_open_with_key_env(S(db), NULL, 0, NULL, 0, &c) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(c == NULL);
    coffer_close(NULL);
    test_envelope_vectors(argv[1]);

    coffer_string_free(pk);
    coffer_string_free(env);
    free(envs);
    free(options);
    free(pj);
    free(rj);
    free(policy);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
