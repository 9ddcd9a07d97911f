/* libFuzzer target: mio_addr_parse and mio_addr_format.
 *
 * Invariants: whatever parses formats, within MIO_ADDR_STRLEN, to text that
 * parses back to the same address and formats to the same text again; a
 * buffer one byte short is MIO_ENOSPC and leaves nothing half-written past
 * its end.  Any bytes taken as a mio_addr format safely: an error, or a
 * NUL-terminated string of the length returned. */
#include "mio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_addr: %s (line %d)\n", #cond, __LINE__);    \
            abort();                                                          \
        }                                                                     \
    } while (0)

static bool same_addr(const mio_addr *a, const mio_addr *b)
{
    if (a->len != b->len || a->u.sa.sa_family != b->u.sa.sa_family)
        return false;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.v4.sin_port == b->u.v4.sin_port &&
               a->u.v4.sin_addr.s_addr == b->u.v4.sin_addr.s_addr;
    return a->u.v6.sin6_port == b->u.v6.sin6_port &&
           a->u.v6.sin6_scope_id == b->u.v6.sin6_scope_id &&
           memcmp(&a->u.v6.sin6_addr, &b->u.v6.sin6_addr, sizeof a->u.v6.sin6_addr) == 0;
}

static void round_trip(const char *text)
{
    mio_addr a, b;
    char out[MIO_ADDR_STRLEN], again[MIO_ADDR_STRLEN], small[MIO_ADDR_STRLEN + 1];
    int n, m;

    if (mio_addr_parse(text, &a) != 0)
        return;
    REQUIRE(a.u.sa.sa_family == AF_INET || a.u.sa.sa_family == AF_INET6);
    n = mio_addr_format(&a, out, sizeof out);
    REQUIRE(n > 0 && n < MIO_ADDR_STRLEN);
    REQUIRE(strlen(out) == (size_t)n);
    REQUIRE(mio_addr_parse(out, &b) == 0);
    REQUIRE(same_addr(&a, &b));
    m = mio_addr_format(&b, again, sizeof again);
    REQUIRE(m == n && strcmp(out, again) == 0);
    /* Exactly enough room works; one byte less is MIO_ENOSPC, untouched. */
    memset(small, 'Z', sizeof small);
    REQUIRE(mio_addr_format(&a, small, (size_t)n + 1) == n && strcmp(small, out) == 0);
    memset(small, 'Z', sizeof small);
    REQUIRE(mio_addr_format(&a, small, (size_t)n) == MIO_ENOSPC);
    REQUIRE(small[n] == 'Z');
}

static void format_raw(const uint8_t *data, size_t size)
{
    mio_addr a;
    char out[MIO_ADDR_STRLEN + 128];
    int n;

    memset(&a, 0, sizeof a);
    memcpy(&a, data, size < sizeof a ? size : sizeof a);
    if (a.len > sizeof a.u)
        a.len = (socklen_t)(a.len % (sizeof a.u + 1));
    n = mio_addr_format(&a, out, sizeof out);
    if (n >= 0)
        REQUIRE(strlen(out) == (size_t)n);
    else
        REQUIRE(n == MIO_EINVAL || n == MIO_EAFNOSUPPORT || n == MIO_ENOSPC);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    round_trip(text);
    free(text);
    format_raw(data, size);
    return 0;
}
