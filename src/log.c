/* Optional tracing: a user callback (mio_set_log) or stderr (MIO_LOG=level).
 * The trace points test mio__log_level first, so tracing off costs a load
 * and a predictable branch. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

atomic_int mio__log_level;
static void (*log_fn)(int level, const char *msg, void *ud);
static void *log_ud;
static atomic_int env_read;
static atomic_int chosen;   /* mio_set_log was called, or MIO_LOG names a level */

static const char *const level_names[] = { "", "error", "warn", "info", "debug", "trace" };

static void to_stderr(int level, const char *msg, void *ud)
{
    (void)ud;
    fprintf(stderr, "mio %s: %s\n", level_names[level], msg);
}

void mio_set_log(void (*fn)(int level, const char *msg, void *ud), void *ud)
{
    atomic_store(&env_read, 1);     /* an explicit choice wins over MIO_LOG */
    atomic_store(&chosen, 1);
    atomic_store(&mio__log_level, 0);
    log_fn = fn;
    log_ud = ud;
    if (fn != NULL)
        atomic_store(&mio__log_level, MIO_LOG_TRACE);
}

/* Reads MIO_LOG once, when the first poll or loop is made. */
void mio__log_init(void)
{
    const char *v;
    int level = 0, i;

    if (atomic_exchange(&env_read, 1) != 0)
        return;
    v = getenv("MIO_LOG");
    if (v == NULL || *v == '\0')
        return;
    if (v[0] >= '1' && v[0] <= '5' && v[1] == '\0')
        level = v[0] - '0';
    for (i = 1; i <= MIO_LOG_TRACE; i++)
        if (strcmp(v, level_names[i]) == 0)
            level = i;
    if (level > 0) {
        log_fn = to_stderr;
        log_ud = NULL;
        atomic_store(&chosen, 1);
        atomic_store(&mio__log_level, level);
    }
}

void mio__log(int level, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    void (*fn)(int, const char *, void *) = log_fn;

    if (fn == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(level, msg, log_ud);
}

void mio__log_alert(int level, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    void (*fn)(int, const char *, void *) = log_fn;

    mio__log_init();
    if (atomic_load(&chosen)) {
        if (fn == NULL || atomic_load_explicit(&mio__log_level, memory_order_relaxed) < level)
            return;
    } else {
        fn = to_stderr;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(level, msg, fn == to_stderr ? NULL : log_ud);
}
