/*
 * An ERP-like program over libcoffer.
 *
 * It opens a Coffer store, imports customers from a CSV file (each record is validated and
 * sealed; the host's "customer table" keeps only the envelope and a blind-index token), looks a
 * customer up by resident ID through the blind index, reveals that customer as an accountant and
 * as a clerk, erases another customer on request, and verifies the audit trail.
 *
 * Usage: erp <examples directory> <scratch directory>
 *   The master key comes from the environment variable COFFER_MASTER_KEY (64 hexadecimal
 *   characters) when it is set; otherwise a new one is generated for this run.
 *
 * Build: cc -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/c/erp.c \
 *          -Ltarget/debug -lcoffer -o erp
 *
 * The JSON handling here is deliberately minimal (string searches over Coffer's compact output);
 * a real ERP system would use its own JSON library.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer.h"

#define S(text) (const uint8_t *)(text), strlen(text)
#define TENANT "demo-firm"

static int report(const char *what, coffer_status st) {
    const char *detail = coffer_last_error_message();
    fprintf(stderr, "%s: %s%s%s\n", what, coffer_status_str(st), detail ? ": " : "", detail ? detail : "");
    return 1;
}

static char *read_file(const char *path) {
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

/* Appends `text` to `out` as a JSON string (quotes, backslashes and control characters escaped). */
static void json_append(char *out, size_t cap, const char *text) {
    size_t n = strlen(out);
    if (n + 1 < cap) out[n++] = '"';
    for (const unsigned char *s = (const unsigned char *)text; *s && n + 8 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*s;
        } else if (*s < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *s);
        } else {
            out[n++] = (char)*s;
        }
    }
    if (n + 1 < cap) out[n++] = '"';
    out[n] = '\0';
}

/* Copies the JSON string value that follows `key` (e.g. "\"token\":") in `json` into `out`. */
static const char *text_after(const char *json, const char *key, char *out, size_t cap) {
    const char *p = json ? strstr(json, key) : NULL;
    if (!p || (p = strchr(p + strlen(key), '"')) == NULL) return NULL;
    size_t i = 0;
    for (p++; *p && *p != '"' && i + 1 < cap; p++) {
        if (*p == '\\' && p[1]) p++;
        out[i++] = *p;
    }
    out[i] = '\0';
    return p;
}

/* Prints a reveal answer, one field per line: revealed, masked, denied or shredded. */
static void print_view(const char *view) {
    const char *p = strstr(view, "\"fields\":{");
    if (!p) return;
    p += strlen("\"fields\":{");
    char path[128], state[16], value[256];
    while ((p = text_after(p, "", path, sizeof path)) != NULL) {
        if (!(p = text_after(p, "\"state\":", state, sizeof state))) break;
        const char *end = strchr(p, '}');
        const char *v = strstr(p, "\"value\":"), *r = strstr(p, "\"reason\":");
        if (v && v < end) text_after(v, "\"value\":", value, sizeof value);
        else if (r && r < end) text_after(r, "\"reason\":", value, sizeof value);
        else value[0] = '\0';
        printf("    %-34s %-9s %s\n", path, state, value);
        if (!end) break;
        p = end + 1;
        if (*p != ',') break;
    }
}

/* The host's customer table: Coffer gives it envelopes and blind-index tokens, never plaintext. */
struct row {
    char id[32], subject[32];
    char id_token[64]; /* the blind index of the ID number: an indexed column in a real table */
    char *envelope;
};

#define MAX_ROWS 64

/* Splits a CSV line in place on commas (the example's file has no quoted fields). */
static int split(char *line, char **cols, int max) {
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < max; n++) {
        cols[n] = p;
        char *comma = strchr(p, ',');
        if (!comma) return n + 1;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/* Seals one CSV row; 0 when sealed, 1 when rejected (reported), -1 on another error. */
static int import_row(coffer_t *c, char **col, struct row *row) {
    char record[2048] = "{\"tenant\":\"" TENANT "\",\"id\":";
    json_append(record, sizeof record, col[0]);
    strcat(record, ",\"subject\":");
    json_append(record, sizeof record, col[1]);
    strcat(record, ",\"kind\":");
    json_append(record, sizeof record, col[2]);
    strcat(record, ",\"name\":");
    json_append(record, sizeof record, col[3]);
    strcat(record, ",\"id_documents\":[{\"type\":");
    json_append(record, sizeof record, col[4]);
    strcat(record, ",\"number\":");
    json_append(record, sizeof record, col[5]);
    strcat(record, "}],\"phones\":[");
    json_append(record, sizeof record, col[6]);
    strcat(record, "]");
    if (col[7][0]) {
        strcat(record, ",\"bank_accounts\":[{\"account_type\":");
        json_append(record, sizeof record, col[7]);
        strcat(record, ",\"account_number\":");
        json_append(record, sizeof record, col[8]);
        strcat(record, "}]");
    }
    strcat(record, "}");

    char *envelope = NULL;
    size_t len = 0;
    coffer_status st = coffer_seal(c, S(record), S("erp-import"), &envelope, &len);
    /* The record's plaintext is no longer needed: wipe the local copy. */
    memset(record, 0, sizeof record);
    if (st == COFFER_STATUS_VALIDATION) {
        /* The message names paths and issue codes, never the values. */
        printf("  %s rejected: %s\n", col[0], coffer_last_error_message());
        return 1;
    }
    if (st != COFFER_STATUS_OK) return report("seal", st), -1;
    snprintf(row->id, sizeof row->id, "%s", col[0]);
    snprintf(row->subject, sizeof row->subject, "%s", col[1]);
    /* The envelope carries the token under "index": {"id_documents[0].number": {epoch: token}}. */
    const char *ix = strstr(envelope, "\"index\":{");
    ix = ix ? strstr(ix, "\"id_documents[0].number\":{") : NULL;
    if (!ix || !text_after(strchr(ix, '{') + 1, ":", row->id_token, sizeof row->id_token)) {
        fprintf(stderr, "%s: no blind index in the envelope\n", col[0]);
        coffer_string_free(envelope);
        return -1;
    }
    row->envelope = envelope;
    return 0;
}

static int reveal_as(coffer_t *c, const struct row *row, const char *role, const char *purpose) {
    char access[256];
    snprintf(access, sizeof access,
             "{\"principal\":{\"id\":\"user-%s\",\"tenant\":\"" TENANT "\",\"roles\":[\"%s\"]},\"purpose\":\"%s\"}",
             role, role, purpose);
    char *view = NULL;
    size_t len = 0;
    coffer_status st = coffer_reveal(c, S(row->envelope), S(access), &view, &len);
    if (st != COFFER_STATUS_OK) return report("reveal", st);
    printf("  %s as %s (%s):\n", row->id, role, purpose);
    print_view(view);
    coffer_string_free(view); /* wipes the plaintext before freeing */
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: erp <examples directory> <scratch directory>\n");
        return 2;
    }
    char path[4096], db[4096];
    snprintf(path, sizeof path, "%s/policies/accounting-firm.toml", argv[1]);
    char *policy = read_file(path);
    snprintf(path, sizeof path, "%s/policies/retention.toml", argv[1]);
    char *retention = read_file(path);
    if (!policy || !retention) {
        fprintf(stderr, "cannot read the policy files under %s/policies\n", argv[1]);
        return 1;
    }
    size_t cap = 2 * (strlen(policy) + strlen(retention)) + 64;
    char *options = malloc(cap);
    if (!options) return 1;
    strcpy(options, "{\"policy\":");
    json_append(options, cap, policy);
    strcat(options, ",\"retention\":");
    json_append(options, cap, retention);
    strcat(options, "}");
    free(policy);
    free(retention);

    /* 1. Open the store. The master key never goes into it: keep it in a KMS or a key file. */
    snprintf(db, sizeof db, "%s/erp.db", argv[2]);
    remove(db);
    coffer_t *c = NULL;
    coffer_status st;
    if (getenv("COFFER_MASTER_KEY")) {
        st = coffer_open_with_key_env(S(db), S("COFFER_MASTER_KEY"), S(options), &c);
    } else {
        uint8_t key[32];
        st = coffer_generate_master_key(key, sizeof key);
        if (st == COFFER_STATUS_OK) st = coffer_open(S(db), key, sizeof key, S(options), &c);
        volatile uint8_t *k = key;
        for (size_t i = 0; i < sizeof key; i++) k[i] = 0;
    }
    free(options);
    if (st != COFFER_STATUS_OK) return report("open", st);

    /* 2. Import customers from the CSV file. */
    snprintf(path, sizeof path, "%s/c/customers.csv", argv[1]);
    FILE *csv = fopen(path, "r");
    if (!csv) {
        fprintf(stderr, "cannot read %s\n", path);
        coffer_close(c);
        return 1;
    }
    struct row rows[MAX_ROWS];
    int n_rows = 0, rejected = 0, failed = 0;
    char line[1024];
    printf("importing %s\n", path);
    for (int line_no = 1; fgets(line, sizeof line, csv); line_no++) {
        char *col[9];
        if (line_no == 1 || line[0] == '\n') continue; /* the header */
        if (split(line, col, 9) != 9 || n_rows == MAX_ROWS) {
            fprintf(stderr, "line %d: expected 9 columns\n", line_no);
            failed = 1;
            continue;
        }
        int r = import_row(c, col, &rows[n_rows]);
        if (r == 0) n_rows++;
        else if (r == 1) rejected++;
        else failed = 1;
        memset(line, 0, sizeof line);
    }
    fclose(csv);
    printf("  %d sealed, %d rejected\n", n_rows, rejected);

    /* 3. Look a customer up by resident ID, typed as a clerk would (spaces are normalised away).
     *    A search is an access: the policy decides it, rate limits count it, the trail records it. */
    const char *search =
        "{\"field\":\"id_documents[].number\",\"value\":\"310104 19751231 0025\"}";
    const char *clerk =
        "{\"principal\":{\"id\":\"user-clerk\",\"tenant\":\"" TENANT "\",\"roles\":[\"clerk\"]},"
        "\"purpose\":\"bookkeeping\"}";
    char *tokens = NULL, token[64] = "";
    size_t len = 0;
    st = coffer_search(c, S(clerk), S(search), &tokens, &len);
    if (st != COFFER_STATUS_OK) return report("search", st);
    text_after(tokens, "\"token\":", token, sizeof token);
    coffer_string_free(tokens);
    const struct row *found = NULL;
    int candidates = 0;
    for (int i = 0; i < n_rows; i++) {
        /* SELECT ... WHERE id_token = ?: a short token may match others too; confirm by reveal. */
        if (strcmp(rows[i].id_token, token) == 0) {
            candidates++;
            found = &rows[i];
        }
    }
    printf("lookup by resident ID: %d candidate(s)%s%s\n", candidates, found ? ", " : "", found ? found->id : "");

    /* 4. Reveal it as two roles: the accountant sees what payments need, the clerk far less. */
    if (found && (reveal_as(c, found, "accountant", "payments") || reveal_as(c, found, "clerk", "bookkeeping")))
        failed = 1;

    /* 5. Customer s-003 left in 2021 and asks to be erased: contact details are destroyed (their
     *    keys shredded); what accounting law still needs is restricted until its period ends. */
    const struct row *leaving = NULL;
    for (int i = 0; i < n_rows; i++)
        if (strcmp(rows[i].subject, "s-003") == 0) leaving = &rows[i];
    char *answer = NULL;
    if (leaving) {
        st = coffer_record_event(c, S(TENANT), S("s-003"), S("relationship_ended"), S("2021-06-30"), S("erp"));
        if (st != COFFER_STATUS_OK) return report("record event", st);
        st = coffer_erase(c, S(TENANT), S("s-003"), S("dpo"), &answer, &len);
        if (st != COFFER_STATUS_OK) return report("erase", st);
        printf("erasure of s-003:\n");
        char category[32], outcome[32];
        for (const char *p = answer; (p = text_after(p, "\"category\":", category, sizeof category)) != NULL;) {
            if (!(p = text_after(p, "\"outcome\":", outcome, sizeof outcome))) break;
            printf("    %-10s %s\n", category, outcome);
        }
        /* Keep the signed certificate (in `answer`) with the customer file as proof. */
        coffer_string_free(answer);
        if (reveal_as(c, leaving, "accountant", "payments")) failed = 1;
    }

    /* 6. Verify the audit trail: every seal, reveal and erasure above is in it. */
    char *audit = NULL;
    st = coffer_audit_verify(c, S(""), &audit, &len);
    if (st != COFFER_STATUS_OK) return report("audit verify", st);
    int intact = strstr(audit, "\"intact\":true") != NULL;
    printf("audit trail: %s\n", audit);
    coffer_string_free(audit);

    for (int i = 0; i < n_rows; i++) coffer_string_free(rows[i].envelope);
    coffer_close(c);
    /* The example checks its own story, so that the test command notices if it ever changes. */
    if (failed || n_rows != 5 || rejected != 1 || candidates != 1 || strcmp(found->id, "c-002") != 0 || !leaving || !intact) {
        fprintf(stderr, "erp: unexpected outcome\n");
        return 1;
    }
    return 0;
}
