/*
 * NULL for every pointer parameter of every function in coffer.h that returns a status: each
 * call is COFFER_STATUS_INVALID_ARGUMENT, its message names the parameter, and no out-parameter
 * is written. (Parameters documented as nullable are skipped: options, schema, archive_key,
 * userdata.) When a function is added to the header, add its lines here; tests/header.rs fails
 * until every declared function appears in the C tests.
 *
 * Usage: test_nulls <scratch directory>
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer.h"

static int failures = 0, checks = 0;

static char *out = (char *)0x1;
static size_t len = 12345;
static int64_t i64 = -7;
static uint32_t u32 = 7;
static coffer_t *h = (coffer_t *)0x1;
static coffer_schema *schema_out = (coffer_schema *)0x1;

#define NULL_ARG(call, param)                                                                  \
    do {                                                                                       \
        checks++;                                                                              \
        coffer_status st_ = (call);                                                            \
        const char *msg_ = coffer_last_error_message();                                        \
        char want_[96];                                                                        \
        snprintf(want_, sizeof want_, "`%s`", param);                                          \
        if (st_ != COFFER_STATUS_INVALID_ARGUMENT || !msg_ || !strstr(msg_, want_) ||          \
            out != (char *)0x1 || len != 12345 || i64 != -7 || u32 != 7 ||                     \
            h != (coffer_t *)0x1 || schema_out != (coffer_schema *)0x1 || buf[0] != 0xAB) {     \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: NULL %s: status %u (%s)\n", __FILE__, __LINE__, param,      \
                    (unsigned)st_, msg_ ? msg_ : "-");                                         \
        }                                                                                      \
    } while (0)

static void callback(void *userdata, const char *entry, size_t entry_len) {
    (void)userdata;
    (void)entry;
    (void)entry_len;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_nulls <scratch directory>\n");
        return 2;
    }
    /* Hexadecimal text long enough for any key argument, so only the NULL is wrong. */
    static const uint8_t TEXT[] = "00000000000000000000000000000000000000000000000000000000000000000";
    uint8_t buf[64];
    memset(buf, 0xAB, sizeof buf);
    char db[4096];
    snprintf(db, sizeof db, "%s/nulls.db", argv[1]);
    remove(db);
    uint8_t key[32] = {1};
    coffer_t *c = NULL;
    if (coffer_open((const uint8_t *)db, strlen(db), key, 32, NULL, 0, &c) != COFFER_STATUS_OK) {
        fprintf(stderr, "open: %s\n", coffer_last_error_message());
        return 1;
    }
    const coffer_schema *schema = NULL;
    coffer_schema *builtin = NULL;
    if (coffer_schema_builtin(&builtin) != COFFER_STATUS_OK) return 1;
    schema = builtin;

    NULL_ARG(coffer_schema_builtin(NULL), "schema_out");
    NULL_ARG(coffer_schema_from_toml(NULL, 1, &schema_out), "toml");
    NULL_ARG(coffer_schema_from_toml(TEXT, 1, NULL), "schema_out");
    NULL_ARG(coffer_record_validate(schema, NULL, 1, 1, &out, &len), "record_json");
    NULL_ARG(coffer_record_validate(schema, TEXT, 1, 1, NULL, &len), "report_out");
    NULL_ARG(coffer_record_validate(schema, TEXT, 1, 1, &out, NULL), "report_len_out");
    NULL_ARG(coffer_record_normalize(NULL, 1, &out, &len), "record_json");
    NULL_ARG(coffer_record_normalize(TEXT, 1, NULL, &len), "record_out");
    NULL_ARG(coffer_record_normalize(TEXT, 1, &out, NULL), "record_len_out");
    NULL_ARG(coffer_mask(NULL, 1, 1, TEXT, 1, &out, &len), "rule");
    NULL_ARG(coffer_mask(TEXT, 1, 1, NULL, 1, &out, &len), "value");
    NULL_ARG(coffer_mask(TEXT, 1, 1, TEXT, 1, NULL, &len), "masked_out");
    NULL_ARG(coffer_mask(TEXT, 1, 1, TEXT, 1, &out, NULL), "masked_len_out");
    NULL_ARG(coffer_generate_master_key(NULL, 32), "key_out");
    NULL_ARG(coffer_open(NULL, 1, TEXT, 32, TEXT, 1, &h), "path");
    NULL_ARG(coffer_open(TEXT, 1, NULL, 32, TEXT, 1, &h), "master_key");
    NULL_ARG(coffer_open(TEXT, 1, TEXT, 32, TEXT, 1, NULL), "coffer_out");
    NULL_ARG(coffer_open_with_key_file(NULL, 1, TEXT, 1, TEXT, 1, &h), "path");
    NULL_ARG(coffer_open_with_key_file(TEXT, 1, NULL, 1, TEXT, 1, &h), "key_file");
    NULL_ARG(coffer_open_with_key_file(TEXT, 1, TEXT, 1, TEXT, 1, NULL), "coffer_out");
    NULL_ARG(coffer_open_with_key_env(NULL, 1, TEXT, 1, TEXT, 1, &h), "path");
    NULL_ARG(coffer_open_with_key_env(TEXT, 1, NULL, 1, TEXT, 1, &h), "env_var");
    NULL_ARG(coffer_open_with_key_env(TEXT, 1, TEXT, 1, TEXT, 1, NULL), "coffer_out");
    NULL_ARG(coffer_seal(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_seal(c, NULL, 1, TEXT, 1, &out, &len), "record");
    NULL_ARG(coffer_seal(c, TEXT, 1, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_seal(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_seal(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_seal_many(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_seal_many(c, NULL, 1, TEXT, 1, &out, &len), "records");
    NULL_ARG(coffer_seal_many(c, TEXT, 1, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_seal_many(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_seal_many(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_reveal(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_reveal(c, NULL, 1, TEXT, 1, &out, &len), "envelope");
    NULL_ARG(coffer_reveal(c, TEXT, 1, NULL, 1, &out, &len), "access");
    NULL_ARG(coffer_reveal(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_reveal(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_reveal_many(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_reveal_many(c, NULL, 1, TEXT, 1, &out, &len), "envelopes");
    NULL_ARG(coffer_reveal_many(c, TEXT, 1, NULL, 1, &out, &len), "access");
    NULL_ARG(coffer_reveal_many(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_reveal_many(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_search(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_search(c, NULL, 1, TEXT, 1, &out, &len), "access");
    NULL_ARG(coffer_search(c, TEXT, 1, NULL, 1, &out, &len), "request");
    NULL_ARG(coffer_search(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_search(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_reseal(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_reseal(c, NULL, 1, TEXT, 1, &out, &len), "envelope");
    NULL_ARG(coffer_reseal(c, TEXT, 1, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_reseal(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_reseal(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_holds(NULL, &out, &len), "coffer");
    NULL_ARG(coffer_holds(c, NULL, &len), "out");
    NULL_ARG(coffer_holds(c, &out, NULL), "out_len");
    NULL_ARG(coffer_erase(NULL, TEXT, 1, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_erase(c, NULL, 1, TEXT, 1, TEXT, 1, &out, &len), "tenant");
    NULL_ARG(coffer_erase(c, TEXT, 1, NULL, 1, TEXT, 1, &out, &len), "subject");
    NULL_ARG(coffer_erase(c, TEXT, 1, TEXT, 1, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_erase(c, TEXT, 1, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_erase(c, TEXT, 1, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_sweep(NULL, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_sweep(c, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_sweep(c, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_sweep(c, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_execute(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_execute(c, NULL, 1, TEXT, 1, &out, &len), "list");
    NULL_ARG(coffer_execute(c, TEXT, 1, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_execute(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_execute(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_audit_verify(NULL, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_audit_verify(c, NULL, 1, &out, &len), "checkpoint");
    NULL_ARG(coffer_audit_verify(c, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_audit_verify(c, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_audit_checkpoint(NULL, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_audit_checkpoint(c, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_audit_checkpoint(c, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_audit_checkpoint(c, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_audit_export(NULL, &out, &len), "coffer");
    NULL_ARG(coffer_audit_export(c, NULL, &len), "out");
    NULL_ARG(coffer_audit_export(c, &out, NULL), "out_len");
    NULL_ARG(coffer_audit_export_expanded(NULL, &out, &len), "coffer");
    NULL_ARG(coffer_audit_export_expanded(c, NULL, &len), "out");
    NULL_ARG(coffer_audit_export_expanded(c, &out, NULL), "out_len");
    NULL_ARG(coffer_archive_export(NULL, TEXT, 1, TEXT, 64, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_archive_export(c, NULL, 1, TEXT, 64, TEXT, 1, &out, &len), "envelopes");
    NULL_ARG(coffer_archive_export(c, TEXT, 1, NULL, 64, TEXT, 1, &out, &len), "archive_key");
    NULL_ARG(coffer_archive_export(c, TEXT, 1, TEXT, 64, NULL, 1, &out, &len), "access");
    NULL_ARG(coffer_archive_export(c, TEXT, 1, TEXT, 64, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_archive_export(c, TEXT, 1, TEXT, 64, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_archive_restore(NULL, TEXT, 1, TEXT, 64, TEXT, 64, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_archive_restore(c, NULL, 1, TEXT, 64, TEXT, 64, TEXT, 1, &out, &len), "bundle");
    NULL_ARG(coffer_archive_restore(c, TEXT, 1, NULL, 64, TEXT, 64, TEXT, 1, &out, &len), "archive_key");
    NULL_ARG(coffer_archive_restore(c, TEXT, 1, TEXT, 64, NULL, 64, TEXT, 1, &out, &len), "public_key");
    NULL_ARG(coffer_archive_restore(c, TEXT, 1, TEXT, 64, TEXT, 64, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_archive_restore(c, TEXT, 1, TEXT, 64, TEXT, 64, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_archive_restore(c, TEXT, 1, TEXT, 64, TEXT, 64, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_signing_public_key(NULL, &out, &len), "coffer");
    NULL_ARG(coffer_signing_public_key(c, NULL, &len), "out");
    NULL_ARG(coffer_signing_public_key(c, &out, NULL), "out_len");
    NULL_ARG(coffer_record_event(NULL, TEXT, 1, TEXT, 1, TEXT, 1, TEXT, 1, TEXT, 1), "coffer");
    NULL_ARG(coffer_record_event(c, NULL, 1, TEXT, 1, TEXT, 1, TEXT, 1, TEXT, 1), "tenant");
    NULL_ARG(coffer_record_event(c, TEXT, 1, NULL, 1, TEXT, 1, TEXT, 1, TEXT, 1), "subject");
    NULL_ARG(coffer_record_event(c, TEXT, 1, TEXT, 1, NULL, 1, TEXT, 1, TEXT, 1), "event");
    NULL_ARG(coffer_record_event(c, TEXT, 1, TEXT, 1, TEXT, 1, NULL, 1, TEXT, 1), "date");
    NULL_ARG(coffer_record_event(c, TEXT, 1, TEXT, 1, TEXT, 1, TEXT, 1, NULL, 1), "actor");
    NULL_ARG(coffer_approve(NULL, TEXT, 1, TEXT, 1, TEXT, 1), "coffer");
    NULL_ARG(coffer_approve(c, NULL, 1, TEXT, 1, TEXT, 1), "list");
    NULL_ARG(coffer_approve(c, TEXT, 1, NULL, 1, TEXT, 1), "approver");
    NULL_ARG(coffer_approve(c, TEXT, 1, TEXT, 1, NULL, 1), "role");
    NULL_ARG(coffer_hold_release(NULL, TEXT, 1, TEXT, 1), "coffer");
    NULL_ARG(coffer_hold_release(c, NULL, 1, TEXT, 1), "hold");
    NULL_ARG(coffer_hold_release(c, TEXT, 1, NULL, 1), "actor");
    NULL_ARG(coffer_retire_index_epoch(NULL, TEXT, 1, TEXT, 1), "coffer");
    NULL_ARG(coffer_retire_index_epoch(c, NULL, 1, TEXT, 1), "epoch");
    NULL_ARG(coffer_retire_index_epoch(c, TEXT, 1, NULL, 1), "actor");
    NULL_ARG(coffer_hold_place(NULL, TEXT, 1, TEXT, 1, &i64), "coffer");
    NULL_ARG(coffer_hold_place(c, NULL, 1, TEXT, 1, &i64), "hold");
    NULL_ARG(coffer_hold_place(c, TEXT, 1, NULL, 1, &i64), "actor");
    NULL_ARG(coffer_hold_place(c, TEXT, 1, TEXT, 1, NULL), "result_out");
    NULL_ARG(coffer_rotate_kek(NULL, TEXT, 1, &u32), "coffer");
    NULL_ARG(coffer_rotate_kek(c, NULL, 1, &u32), "actor");
    NULL_ARG(coffer_rotate_kek(c, TEXT, 1, NULL), "result_out");
    NULL_ARG(coffer_continue_kek_rotation(NULL, TEXT, 1, &len), "coffer");
    NULL_ARG(coffer_continue_kek_rotation(c, NULL, 1, &len), "actor");
    NULL_ARG(coffer_continue_kek_rotation(c, TEXT, 1, NULL), "result_out");
    NULL_ARG(coffer_retire_keks(NULL, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_retire_keks(c, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_retire_keks(c, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_retire_keks(c, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_backup(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_backup(c, NULL, 1, TEXT, 1, &out, &len), "path");
    NULL_ARG(coffer_backup(c, TEXT, 1, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_backup(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_backup(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_restore(NULL, 1, TEXT, 1, key, 32, TEXT, 1, &out, &len), "backup");
    NULL_ARG(coffer_restore(TEXT, 1, NULL, 1, key, 32, TEXT, 1, &out, &len), "target");
    NULL_ARG(coffer_restore(TEXT, 1, TEXT, 1, NULL, 32, TEXT, 1, &out, &len), "master_key");
    NULL_ARG(coffer_restore(TEXT, 1, TEXT, 1, key, 32, NULL, 1, &out, &len), "options");
    NULL_ARG(coffer_restore(TEXT, 1, TEXT, 1, key, 32, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_restore(TEXT, 1, TEXT, 1, key, 32, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_redact(NULL, TEXT, 1, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_redact(c, NULL, 1, TEXT, 1, &out, &len), "envelopes");
    NULL_ARG(coffer_redact(c, TEXT, 1, NULL, 1, &out, &len), "actor");
    NULL_ARG(coffer_redact(c, TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_redact(c, TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_rotate_index_key(NULL, TEXT, 1, &u32), "coffer");
    NULL_ARG(coffer_rotate_index_key(c, NULL, 1, &u32), "actor");
    NULL_ARG(coffer_rotate_index_key(c, TEXT, 1, NULL), "result_out");
    NULL_ARG(coffer_rotate_data_key(NULL, TEXT, 1, TEXT, 1, TEXT, 1, TEXT, 1, &u32), "coffer");
    NULL_ARG(coffer_rotate_data_key(c, NULL, 1, TEXT, 1, TEXT, 1, TEXT, 1, &u32), "tenant");
    NULL_ARG(coffer_rotate_data_key(c, TEXT, 1, NULL, 1, TEXT, 1, TEXT, 1, &u32), "subject");
    NULL_ARG(coffer_rotate_data_key(c, TEXT, 1, TEXT, 1, NULL, 1, TEXT, 1, &u32), "category");
    NULL_ARG(coffer_rotate_data_key(c, TEXT, 1, TEXT, 1, TEXT, 1, NULL, 1, &u32), "actor");
    NULL_ARG(coffer_rotate_data_key(c, TEXT, 1, TEXT, 1, TEXT, 1, TEXT, 1, NULL), "result_out");
    NULL_ARG(coffer_certificate_verify(NULL, 1, TEXT, 64), "certificate");
    NULL_ARG(coffer_certificate_verify(TEXT, 1, NULL, 64), "public_key");
    NULL_ARG(coffer_envelope_open_with_keys(NULL, 1, TEXT, 1, &out, &len), "envelope");
    NULL_ARG(coffer_envelope_open_with_keys(TEXT, 1, NULL, 1, &out, &len), "keys");
    NULL_ARG(coffer_envelope_open_with_keys(TEXT, 1, TEXT, 1, NULL, &len), "out");
    NULL_ARG(coffer_envelope_open_with_keys(TEXT, 1, TEXT, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_archive_verify(NULL, 1, TEXT, 64, TEXT, 64), "bundle");
    NULL_ARG(coffer_archive_verify(TEXT, 1, NULL, 64, TEXT, 64), "public_key");
    NULL_ARG(coffer_report(NULL, TEXT, 1, &out, &len), "coffer");
    NULL_ARG(coffer_report_render(NULL, 1, TEXT, 4, &out, &len), "report");
    NULL_ARG(coffer_report_render(TEXT, 1, NULL, 4, &out, &len), "format");
    NULL_ARG(coffer_report_render(TEXT, 1, TEXT, 4, NULL, &len), "out");
    NULL_ARG(coffer_index_plan(1, 1, NULL, &len), "out");
    NULL_ARG(coffer_index_plan(1, 1, &out, NULL), "out_len");
    NULL_ARG(coffer_audit_subscribe(NULL, callback, NULL), "coffer");
    NULL_ARG(coffer_audit_subscribe(c, NULL, NULL), "callback");
    NULL_ARG(coffer_rotate_master_key(NULL, TEXT, 32, TEXT, 1), "coffer");
    NULL_ARG(coffer_rotate_master_key(c, NULL, 32, TEXT, 1), "new_master_key");
    NULL_ARG(coffer_rotate_master_key(c, TEXT, 32, NULL, 1), "actor");

    coffer_schema_free(builtin);
    coffer_close(c);
    remove(db);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
