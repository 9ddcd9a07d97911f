/* The allocator every allocation of the library goes through, and the
 * version string. */
#include "common.h"

#include <stdlib.h>

/* Set once before any other call (the contract), so plain pointers do. */
static void *(*malloc_fn)(size_t) = malloc;
static void *(*realloc_fn)(void *, size_t) = realloc;
static void *(*calloc_fn)(size_t, size_t) = calloc;
static void (*free_fn)(void *) = free;

int mio_set_allocator(void *(*m)(size_t), void *(*r)(void *, size_t),
                      void *(*c)(size_t, size_t), void (*f)(void *))
{
    if (m == NULL && r == NULL && c == NULL && f == NULL) {
        m = malloc;
        r = realloc;
        c = calloc;
        f = free;
    } else if (m == NULL || r == NULL || c == NULL || f == NULL) {
        return MIO_EINVAL;
    }
    malloc_fn = m;
    realloc_fn = r;
    calloc_fn = c;
    free_fn = f;
    return 0;
}

void *mio__malloc(size_t n) { return malloc_fn(n); }
void *mio__calloc(size_t count, size_t n) { return calloc_fn(count, n); }
void *mio__realloc(void *p, size_t n) { return realloc_fn(p, n); }
void mio__free(void *p)
{
    if (p != NULL)
        free_fn(p);
}

#define STR2(x) #x
#define STR(x) STR2(x)

const char *mio_version_string(void)
{
    return STR(MIO_VERSION_MAJOR) "." STR(MIO_VERSION_MINOR) "." STR(MIO_VERSION_PATCH);
}
