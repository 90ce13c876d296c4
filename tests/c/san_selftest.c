/* Deliberate mistakes, to prove that the sanitizer run catches mistakes: with `leak`, the masked
 * string is never freed (LeakSanitizer must report it); otherwise it is read one byte past its
 * end (AddressSanitizer must report a heap-buffer-overflow). `make sanitize` expects both runs to
 * fail. */
#include <stdio.h>
#include <string.h>

#include "coffer.h"

int main(int argc, char **argv) {
    const char *rule = "phone";
    const char *value = "13800000000";
    char *masked = NULL;
    size_t len = 0;
    coffer_status st = coffer_mask((const uint8_t *)rule, strlen(rule), COFFER_PROFILE_STANDARD,
                                   (const uint8_t *)value, strlen(value), &masked, &len);
    if (st != COFFER_STATUS_OK) {
        return 2;
    }
    if (argc > 1 && strcmp(argv[1], "leak") == 0) {
        return 0; /* masked leaks */
    }
    volatile char past = masked[len + 1];
    printf("%d\n", past);
    coffer_string_free(masked);
    return 0;
}
