/* What the C test programs share: reading a whole file, and a master key from hex. */
#ifndef COFFER_TEST_SUPPORT_H
#define COFFER_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file, NUL-terminated (free it), or NULL. */
static inline char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* 64 hexadecimal characters into 32 bytes; 0 if malformed. */
static inline int hex_key(const char *hex, uint8_t key[32]) {
    if (strlen(hex) != 64) return 0;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return 0;
        key[i] = (uint8_t)v;
    }
    return 1;
}

/* Where a test's store named `name` lives: `scratch/name.db`, or, when COFFER_TEST_POSTGRES is
 * set (scripts/test's PostgreSQL pass), a schema of its own on that server, named after the
 * test, the store and a per-run number (`nonce`: the process id, say). */
static inline void store_location(char *out, size_t size, const char *scratch, const char *name,
                                  long nonce) {
    const char *pg = getenv("COFFER_TEST_POSTGRES");
    if (pg && *pg) {
        snprintf(out, size, "%s%cschema=c_%s_%ld", pg, strchr(pg, '?') ? '&' : '?', name, nonce);
    } else {
        snprintf(out, size, "%s/%s.db", scratch, name);
    }
}

#endif
