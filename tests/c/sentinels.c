/*
 * The C side of the sentinel search (bindings/python/tests/test_sentinels.py): on a store whose
 * customers carry planted sentinel values, runs the C library's operations, failing ones too, and
 * prints every output and every error message on standard output, where the Python test searches
 * them (and the store's files) for the sentinels in every encoding.
 *
 * Usage: sentinels <db> <master key, 64 hex> <options JSON file> <envelopes JSON array file>
 *                  <invalid record JSON file>
 * With no arguments it exits 0 (so that the test command can run it on its own).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer.h"
#include "support.h"

#define S(text) (const uint8_t *)(text), strlen(text)

/* Prints an operation's output, or its status and error message. */
static void show(const char *what, coffer_status st, char *out) {
    if (st == COFFER_STATUS_OK) {
        printf("== %s\n%s\n", what, out ? out : "");
    } else {
        printf("== %s failed: %s: %s\n", what, coffer_status_str(st), coffer_last_error_message());
    }
    coffer_string_free(out);
}

/* Calls first, then shows: the order in which a function's arguments are evaluated is
 * unspecified, so `show(what, call(&out), out)` could read `out` before the call sets it. */
#define RUN(what, call)            \
    do {                           \
        out = NULL;                \
        st = (call);               \
        show((what), st, out);     \
    } while (0)

static const char *ACCESSES[] = {
    "{\"principal\": {\"id\": \"p-1\", \"tenant\": \"acme\", \"roles\": [\"clerk\"]}, \"purpose\": \"bookkeeping\"}",
    "{\"principal\": {\"id\": \"p-2\", \"tenant\": \"acme\", \"roles\": [\"marketing\"]}, \"purpose\": \"marketing\"}",
    "{\"principal\": {\"id\": \"p-3\", \"tenant\": \"other\", \"roles\": [\"accountant\"]}, \"purpose\": \"payments\"}",
    "{\"principal\": {\"id\": \"p-4\", \"tenant\": \"acme\", \"roles\": [\"nobody\"]}, \"purpose\": \"payments\"}",
};

int main(int argc, char **argv) {
    if (argc == 1) return 0;
    if (argc != 6) {
        fprintf(stderr, "usage: sentinels <db> <key hex> <options> <envelopes> <invalid record>\n");
        return 2;
    }
    uint8_t key[32], wrong[32];
    char *options = read_file(argv[3]);
    char *envelopes = read_file(argv[4]);
    char *invalid = read_file(argv[5]);
    if (!hex_key(argv[2], key) || !options || !envelopes || !invalid) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    coffer_t *bad = NULL;
    coffer_generate_master_key(wrong, sizeof wrong);
    show("open with a wrong key", coffer_open(S(argv[1]), wrong, 32, S(options), &bad), NULL);
    coffer_close(bad);

    coffer_t *c = NULL;
    coffer_status st = coffer_open(S(argv[1]), key, 32, S(options), &c);
    if (st != COFFER_STATUS_OK) {
        fprintf(stderr, "open: %s: %s\n", coffer_status_str(st), coffer_last_error_message());
        return 1;
    }
    char *out = NULL;
    size_t len = 0;
    RUN("seal an invalid record", coffer_seal(c, S(invalid), S("c-import"), &out, &len));
    RUN("seal_many with an invalid record", coffer_seal_many(c, S("["), S("c-import"), &out, &len));
    RUN("reveal_many", coffer_reveal_many(c, S(envelopes), S(ACCESSES[0]), &out, &len));
    for (size_t i = 0; i < sizeof ACCESSES / sizeof *ACCESSES; i++) {
        RUN("reveal_many as another principal", coffer_reveal_many(c, S(envelopes), S(ACCESSES[i]), &out, &len));
    }
    /* A tampered envelope array: the first "c-0" becomes "c-9". */
    char *tampered = strdup(envelopes);
    char *at = tampered ? strstr(tampered, "c-0") : NULL;
    if (at) at[2] = '9';
    RUN("reveal a tampered envelope", coffer_reveal_many(c, S(tampered ? tampered : "[]"), S(ACCESSES[0]), &out, &len));
    free(tampered);
    RUN("erase", coffer_erase(c, S("acme"), S("s-1"), S("c-dpo"), &out, &len));
    out = NULL;
    st = coffer_sweep(c, S("c-ops"), &out, &len);
    long long list = -1;
    if (st == COFFER_STATUS_OK && out) {
        const char *p = strstr(out, "\"proposed_list\":");
        if (p) list = strtoll(p + strlen("\"proposed_list\":"), NULL, 10);
    }
    show("sweep", st, out);
    if (list > 0) {
        char id[32];
        snprintf(id, sizeof id, "%lld", list);
        show("approve", coffer_approve(c, S(id), S("wang"), S("archive_head")), NULL);
        show("approve", coffer_approve(c, S(id), S("li"), S("accounting_head")), NULL);
        RUN("execute", coffer_execute(c, S(id), S("c-ops"), &out, &len));
    }
    uint8_t archive_key[32] = {7};
    RUN("archive export", coffer_archive_export(c, S(envelopes), archive_key, 32,
        S("{\"principal\":{\"id\":\"c-auditor\",\"tenant\":\"acme\",\"roles\":[\"auditor\"]},"
          "\"purpose\":\"statutory_audit\",\"context\":{\"ticket\":\"AUD-1\",\"destination_region\":\"CN\"}}"),
        &out, &len));
    RUN("audit export", coffer_audit_export(c, &out, &len));
    RUN("expanded audit export", coffer_audit_export_expanded(c, &out, &len));
    RUN("audit checkpoint", coffer_audit_checkpoint(c, S("c-auditor"), &out, &len));
    RUN("audit verify", coffer_audit_verify(c, S(""), &out, &len));
    coffer_close(c);
    free(options);
    free(envelopes);
    free(invalid);
    return 0;
}
