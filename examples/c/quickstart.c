/*
 * Quick start from C: validate a customer record and mask a value.
 * Build: cc -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/c/quickstart.c -Ltarget/debug -lcoffer
 */
#include <stdio.h>
#include <string.h>

#include "coffer.h"

int main(void) {
    const char *record =
        "{\"id\":\"c-1\",\"tenant\":\"acme\",\"kind\":\"individual\",\"name\":\"Zhang San\","
        "\"id_documents\":[{\"type\":\"cn_resident_id\",\"number\":\"110101200001010000\"}],"
        "\"phones\":[\"+86 138 0000 0000\"]}";
    char *report = NULL;
    size_t report_len = 0;
    /* NULL schema: the built-in one. 0: check birth dates against today's date. */
    coffer_status st = coffer_record_validate(NULL, (const uint8_t *)record, strlen(record), 0,
                                              &report, &report_len);
    if (st != COFFER_STATUS_OK) {
        fprintf(stderr, "validate: %s: %s\n", coffer_status_str(st), coffer_last_error_message());
        return 1;
    }
    printf("report: %s\n", report); /* {"valid":false,"issues":[{"path":"id_documents[0].number",...}]} */
    coffer_string_free(report);     /* wipes, then frees */

    char *masked = NULL;
    size_t masked_len = 0;
    const char *rule = "phone", *phone = "13800000000";
    st = coffer_mask((const uint8_t *)rule, strlen(rule), COFFER_PROFILE_STANDARD,
                     (const uint8_t *)phone, strlen(phone), &masked, &masked_len);
    if (st != COFFER_STATUS_OK) {
        fprintf(stderr, "mask: %s\n", coffer_last_error_message());
        return 1;
    }
    printf("masked phone: %s\n", masked); /* 138****0000 */
    coffer_string_free(masked);
    return 0;
}
