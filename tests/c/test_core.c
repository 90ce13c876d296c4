/*
 * Tests of libcoffer's foundation API from C: versions, the status table against
 * tests/vectors/errors.json, validation, normalisation, masking, every error path
 * (NULL pointers, invalid UTF-8, malformed JSON and TOML, absurd lengths, bad arguments),
 * out-parameters untouched on failure, and 8 threads sharing one schema.
 *
 * Usage: test_core <path to tests/vectors>
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer.h"
#include "support.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        checks++;                                                                \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define S(lit) (const uint8_t *)(lit), strlen(lit)

static const char GOOD[] =
    "{\"id\":\"c-1\",\"tenant\":\"acme\",\"kind\":\"individual\",\"name\":\"\xe5\xbc\xa0\xe4\xb8\x89\","
    "\"id_documents\":[{\"type\":\"cn_resident_id\",\"number\":\"110101200001010002\"}],"
    "\"phones\":[\"+86 138-0000-0000\"]}";
static const char BAD_CHECKSUM[] =
    "{\"id\":\"c-1\",\"tenant\":\"acme\",\"kind\":\"individual\",\"name\":\"Zhang\","
    "\"id_documents\":[{\"type\":\"cn_resident_id\",\"number\":\"110101200001010000\"}],"
    "\"phones\":[\"13800000000\"]}";

struct named_status { const char *name; coffer_status status; };
static const struct named_status STATUSES[] = {
    {"internal", COFFER_STATUS_INTERNAL}, {"invalid_argument", COFFER_STATUS_INVALID_ARGUMENT},
    {"malformed", COFFER_STATUS_MALFORMED}, {"limit_exceeded", COFFER_STATUS_LIMIT_EXCEEDED},
    {"validation", COFFER_STATUS_VALIDATION}, {"schema", COFFER_STATUS_SCHEMA},
    {"policy", COFFER_STATUS_POLICY}, {"access_denied", COFFER_STATUS_ACCESS_DENIED},
    {"rate_limited", COFFER_STATUS_RATE_LIMITED}, {"integrity", COFFER_STATUS_INTEGRITY},
    {"unsupported_version", COFFER_STATUS_UNSUPPORTED_VERSION}, {"key_not_found", COFFER_STATUS_KEY_NOT_FOUND},
    {"wrong_master_key", COFFER_STATUS_WRONG_MASTER_KEY}, {"shredded", COFFER_STATUS_SHREDDED},
    {"retention", COFFER_STATUS_RETENTION}, {"legal_hold", COFFER_STATUS_LEGAL_HOLD},
    {"approval", COFFER_STATUS_APPROVAL}, {"not_found", COFFER_STATUS_NOT_FOUND},
    {"store", COFFER_STATUS_STORE}, {"store_busy", COFFER_STATUS_STORE_BUSY},
    {"read_only", COFFER_STATUS_READ_ONLY}, {"audit", COFFER_STATUS_AUDIT},
    {"audit_tampered", COFFER_STATUS_AUDIT_TAMPERED}, {"io", COFFER_STATUS_IO},
    {"closed", COFFER_STATUS_CLOSED}, {"unsupported", COFFER_STATUS_UNSUPPORTED},
    {"store_unavailable", COFFER_STATUS_STORE_UNAVAILABLE},
};
#define N_STATUSES (sizeof STATUSES / sizeof STATUSES[0])

/* Reads the quoted string after `key` at or after `from`; returns a pointer past it. */
static const char *json_string_after(const char *from, const char *key, char *out, size_t cap) {
    const char *p = strstr(from, key);
    if (!p) return NULL;
    p = strchr(p + strlen(key), '"');
    if (!p) return NULL;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < cap) out[i++] = *p++;
    out[i] = '\0';
    return p;
}

static void test_error_table(const char *vectors) {
    char path[4096];
    snprintf(path, sizeof path, "%s/errors.json", vectors);
    char *json = read_file(path);
    CHECK(json != NULL);
    if (!json) return;
    CHECK(strcmp(coffer_status_str(COFFER_STATUS_OK), "ok") == 0);
    size_t seen = 0;
    const char *p = strstr(json, "\"kinds\"");
    while (p && (p = strstr(p, "\"code\": ")) != NULL) {
        unsigned code = (unsigned)strtoul(p + 8, NULL, 10);
        char name[64], status_str[128];
        p = json_string_after(p, "\"name\":", name, sizeof name);
        if (!p) break;
        p = json_string_after(p, "\"status_str\":", status_str, sizeof status_str);
        if (!p) break;
        int found = 0;
        for (size_t i = 0; i < N_STATUSES; i++) {
            if (strcmp(STATUSES[i].name, name) == 0) {
                found = 1;
                CHECK(STATUSES[i].status == code);
            }
        }
        CHECK(found);
        CHECK(strcmp(coffer_status_str(code), status_str) == 0);
        seen++;
    }
    CHECK(seen == N_STATUSES);
    CHECK(strcmp(coffer_status_str(9999), "unknown status") == 0);
    free(json);
}

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", COFFER_VERSION_MAJOR, COFFER_VERSION_MINOR, COFFER_VERSION_PATCH);
    CHECK(strcmp(coffer_version(), expected) == 0);
}

static void test_validate(void) {
    char *report = NULL;
    size_t len = 0;
    CHECK(coffer_record_validate(NULL, S(GOOD), 20261127, &report, &len) == COFFER_STATUS_OK);
    CHECK(report != NULL && strlen(report) == len);
    CHECK(report && strstr(report, "\"valid\":true") != NULL);
    CHECK(coffer_last_error_message() == NULL);
    coffer_string_free(report);

    report = NULL;
    CHECK(coffer_record_validate(NULL, S(BAD_CHECKSUM), 20261127, &report, &len) == COFFER_STATUS_OK);
    CHECK(report && strstr(report, "\"valid\":false") != NULL);
    CHECK(report && strstr(report, "\"code\":\"resident_id.checksum\"") != NULL);
    CHECK(report && strstr(report, "\"path\":\"id_documents[0].number\"") != NULL);
    CHECK(report && strstr(report, "110101200001010000") == NULL);
    coffer_string_free(report);

    /* today = 0 means the current date; an impossible date is an invalid argument. */
    report = NULL;
    CHECK(coffer_record_validate(NULL, S(GOOD), 0, &report, &len) == COFFER_STATUS_OK);
    coffer_string_free(report);
    report = (char *)0x1;
    CHECK(coffer_record_validate(NULL, S(GOOD), 20260230, &report, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(report == (char *)0x1);
}

static void test_error_paths(void) {
    char *out = (char *)0x1; /* out-parameters must stay untouched on failure */
    size_t len = 12345;

    CHECK(coffer_record_validate(NULL, NULL, 10, 20261127, &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_last_error_message() != NULL && strstr(coffer_last_error_message(), "record_json") != NULL);
    CHECK(coffer_record_validate(NULL, S(GOOD), 20261127, NULL, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_record_validate(NULL, S(GOOD), 20261127, &out, NULL) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(out == (char *)0x1 && len == 12345);

    /* Malformed JSON: the message gives line and column. */
    CHECK(coffer_record_validate(NULL, S("{\"id\":\n oops}"), 20261127, &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(strstr(coffer_last_error_message(), "line 2") != NULL);
    /* Unknown keys are named. */
    CHECK(coffer_record_validate(NULL, S("{\"id\":\"1\",\"tenant\":\"t\",\"kind\":\"company\",\"nmae\":\"x\"}"),
                                 20261127, &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(strstr(coffer_last_error_message(), "nmae") != NULL);
    /* Wrong types never echo the value. */
    CHECK(coffer_record_validate(NULL, S("{\"id\":\"1\",\"tenant\":\"t\",\"kind\":\"individual\",\"phones\":\"13912345678\"}"),
                                 20261127, &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(strstr(coffer_last_error_message(), "13912345678") == NULL);
    /* Invalid UTF-8, and a string that is not NUL-terminated (length excludes the rest). */
    static const uint8_t bad_utf8[] = "{\"id\":\"\xff\"}";
    CHECK(coffer_record_validate(NULL, bad_utf8, sizeof bad_utf8 - 1, 20261127, &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(strstr(coffer_last_error_message(), "UTF-8") != NULL);
    CHECK(coffer_record_validate(NULL, (const uint8_t *)GOOD, strlen(GOOD) - 1, 20261127, &out, &len) == COFFER_STATUS_MALFORMED);
    /* Empty input, and an absurd length that must be refused before the pointer is read. */
    CHECK(coffer_record_validate(NULL, (const uint8_t *)"", 0, 20261127, &out, &len) == COFFER_STATUS_MALFORMED);
    CHECK(coffer_record_validate(NULL, (const uint8_t *)GOOD, (size_t)-1, 20261127, &out, &len) == COFFER_STATUS_LIMIT_EXCEEDED);
    CHECK(out == (char *)0x1 && len == 12345);

    CHECK(coffer_record_normalize(NULL, 1, &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_record_normalize(S(GOOD), NULL, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_record_normalize(S(GOOD), &out, NULL) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_mask(NULL, 4, 0, S("x"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_mask(S("name"), 0, NULL, 1, &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_mask(S("name"), 0, S("x"), NULL, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_mask(S("name"), 0, S("x"), &out, NULL) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_mask(S("name"), 7, S("x"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_mask(S("nmae"), 0, S("x"), &out, &len) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_mask(S("keyed_hash"), 0, S("x"), &out, &len) == COFFER_STATUS_UNSUPPORTED);
    CHECK(out == (char *)0x1 && len == 12345);

    coffer_schema *schema = (coffer_schema *)0x1;
    CHECK(coffer_schema_builtin(NULL) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_schema_from_toml(NULL, 3, &schema) == COFFER_STATUS_INVALID_ARGUMENT);
    CHECK(coffer_schema_from_toml(S("version = 1\n[fields\n"), &schema) == COFFER_STATUS_MALFORMED);
    CHECK(strstr(coffer_last_error_message(), "line 2") != NULL);
    CHECK(coffer_schema_from_toml(S("version = 2\nname = \"x\"\n[fields.name]\nclass = \"secret\"\nprotection = \"clear\"\n"
                                    "mask = \"name\"\ncategory = \"identity\"\n"), &schema) == COFFER_STATUS_SCHEMA);
    CHECK(strstr(coffer_last_error_message(), "unsupported schema version") != NULL);
    CHECK(strstr(coffer_last_error_message(), "unknown class `secret`") != NULL);
    CHECK(schema == (coffer_schema *)0x1);

    /* Freeing NULL is allowed. */
    coffer_string_free(NULL);
    coffer_schema_free(NULL);
}

static void test_normalize_and_mask(void) {
    char *out = NULL;
    size_t len = 0;
    CHECK(coffer_record_normalize(S(GOOD), &out, &len) == COFFER_STATUS_OK);
    CHECK(out && strstr(out, "\"phones\":[\"13800000000\"]") != NULL);
    coffer_string_free(out);

    struct { const char *rule; uint32_t profile; const char *value; const char *expected; } cases[] = {
        {"name", COFFER_PROFILE_STANDARD, "\xe5\xbc\xa0\xe4\xb8\x89", "\xe5\xbc\xa0*"},
        {"phone", COFFER_PROFILE_STANDARD, "13800000000", "138****0000"},
        {"id_number", COFFER_PROFILE_STANDARD, "110101200001010002", "1****************2"},
        {"id_number", COFFER_PROFILE_PRIVILEGED, "110101200001010002", "110101********0002"},
        {"card", COFFER_PROFILE_PRIVILEGED, "6200000000000005", "620000******0005"},
        {"email", COFFER_PROFILE_STANDARD, "zhang.san@example.com", "z***@example.com"},
        {"withhold", COFFER_PROFILE_STANDARD, "13800000000", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        out = NULL;
        CHECK(coffer_mask(S(cases[i].rule), cases[i].profile, S(cases[i].value), &out, &len) == COFFER_STATUS_OK);
        CHECK(out && strcmp(out, cases[i].expected) == 0 && len == strlen(cases[i].expected));
        coffer_string_free(out);
    }
}

/* Iterations per thread; COFFER_TEST_ITERATIONS lowers it for slow runs under valgrind. */
static int iterations = 2000;

struct thread_arg { const coffer_schema *schema; int ok; };

static void *validate_many(void *p) {
    struct thread_arg *arg = p;
    arg->ok = 1;
    for (int i = 0; i < iterations; i++) {
        char *report = NULL;
        size_t len = 0;
        const char *rec = (i % 2) ? GOOD : BAD_CHECKSUM;
        if (coffer_record_validate(arg->schema, S(rec), 20261127, &report, &len) != COFFER_STATUS_OK) arg->ok = 0;
        if (!report || !strstr(report, (i % 2) ? "\"valid\":true" : "resident_id.checksum")) arg->ok = 0;
        coffer_string_free(report);
        /* Each thread's error message is its own. */
        if (coffer_record_validate(arg->schema, S("{"), 0, &report, &len) != COFFER_STATUS_MALFORMED) arg->ok = 0;
        if (!coffer_last_error_message()) arg->ok = 0;
    }
    return NULL;
}

static void test_threads(void) {
    coffer_schema *schema = NULL;
    CHECK(coffer_schema_builtin(&schema) == COFFER_STATUS_OK);
    pthread_t threads[8];
    struct thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i].schema = schema;
        CHECK(pthread_create(&threads[i], NULL, validate_many, &args[i]) == 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        CHECK(args[i].ok);
    }
    coffer_schema_free(schema);
}

int main(int argc, char **argv) {
    const char *vectors = argc > 1 ? argv[1] : "tests/vectors";
    const char *it = getenv("COFFER_TEST_ITERATIONS");
    if (it && atoi(it) > 0) iterations = atoi(it);
    test_version();
    test_error_table(vectors);
    test_validate();
    test_error_paths();
    test_normalize_and_mask();
    test_threads();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
