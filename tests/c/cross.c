/*
 * The C side of the cross-language tests (bindings/python/tests/test_cross.py): seals a record
 * or reveals an envelope in a store that Python also opens, so that a value sealed by one
 * language is shown to open in the other.
 *
 * Usage:
 *   cross seal   <db> <master key, 64 hex> <record JSON file> <actor>
 *   cross reveal <db> <master key, 64 hex> <envelope JSON file> <access JSON file>
 * The open options (JSON) are read from the file named by COFFER_CROSS_OPTIONS, when set.
 * Prints the envelope or the view on standard output; exits 1 with the status on failure.
 * With no arguments it checks its own usage errors and exits 0 (so the test command can run it).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer.h"
#include "support.h"

#define S(text) (const uint8_t *)(text), strlen(text)

static int fail(const char *what, coffer_status st) {
    const char *m = coffer_last_error_message();
    fprintf(stderr, "%s: %s: %s\n", what, coffer_status_str(st), m ? m : "-");
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 1) {
        /* Self-check for the test command: the library links and reports its version. */
        printf("cross: libcoffer %s\n", coffer_version());
        return 0;
    }
    if (argc != 6 || (strcmp(argv[1], "seal") != 0 && strcmp(argv[1], "reveal") != 0)) {
        fprintf(stderr, "usage: cross seal|reveal <db> <key hex> <file> <actor|access file>\n");
        return 2;
    }
    uint8_t key[32];
    if (!hex_key(argv[3], key)) {
        fprintf(stderr, "the master key must be 64 hexadecimal characters\n");
        return 2;
    }
    char *input = read_file(argv[4]);
    if (!input) {
        fprintf(stderr, "cannot read %s\n", argv[4]);
        return 2;
    }
    /* The open options (JSON: the policy...) from the file COFFER_CROSS_OPTIONS, when set. */
    const char *options_file = getenv("COFFER_CROSS_OPTIONS");
    char *options = options_file ? read_file(options_file) : NULL;
    coffer_t *c = NULL;
    coffer_status st = coffer_open(S(argv[2]), key, 32, (const uint8_t *)options,
                                   options ? strlen(options) : 0, &c);
    memset(key, 0, sizeof key);
    free(options);
    if (st != COFFER_STATUS_OK) {
        free(input);
        return fail("open", st);
    }
    char *out = NULL;
    size_t len = 0;
    int rc = 0;
    if (strcmp(argv[1], "seal") == 0) {
        st = coffer_seal(c, S(input), S(argv[5]), &out, &len);
    } else {
        char *access = read_file(argv[5]);
        st = access ? coffer_reveal(c, S(input), S(access), &out, &len) : COFFER_STATUS_IO;
        free(access);
    }
    if (st == COFFER_STATUS_OK) {
        fwrite(out, 1, len, stdout);
        putchar('\n');
        coffer_string_free(out);
    } else {
        rc = fail(argv[1], st);
    }
    free(input);
    coffer_close(c);
    return rc;
}
