/* Optional tracing: a user callback (mio_set_log) or stderr (MIO_LOG=level).
 * The trace points test mio__log_level first, so tracing off costs a load
 * and a predictable branch; everything else here runs only when it is on.
 *
 * Every line names its object ("poll 0x...", "loop 0x...") and prints
 * tokens in hex (they are often pointers), flags by name and results by
 * their MIO_E* name, so that a line reads without the header at hand. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof (a) / sizeof (a)[0])

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

/* ---- MIO_LOG ---- */

/* What MIO_LOG may say, in any case.  The synonyms are the words other
 * libraries' switches use, so that a guess from habit works. */
static const struct { const char *word; int level; } level_words[] = {
    { "off", 0 },   { "none", 0 },    { "0", 0 },
    { "error", 1 }, { "err", 1 },     { "1", 1 },
    { "warn", 2 },  { "warning", 2 }, { "2", 2 },
    { "info", 3 },  { "3", 3 },
    { "debug", 4 }, { "4", 4 },
    { "trace", 5 }, { "verbose", 5 }, { "all", 5 }, { "5", 5 },
};

/* Whether v[0..n) is word, ASCII letters compared without case (no
 * strcasecmp: Windows spells it otherwise, and the locale must not matter). */
static bool same_word(const char *v, size_t n, const char *word)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)v[i];
        if (c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        if (word[i] == '\0' || c != word[i])
            return false;
    }
    return word[n] == '\0';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* MIO_LOG's level, 0 for off; -1 when v says nothing we know. */
static int parse_level(const char *v)
{
    size_t n, i;

    while (is_space(*v))
        v++;
    n = strlen(v);
    while (n > 0 && is_space(v[n - 1]))
        n--;
    for (i = 0; i < COUNT(level_words); i++)
        if (same_word(v, n, level_words[i].word))
            return level_words[i].level;
    return -1;
}

/* Reads MIO_LOG once, from the first call that makes a poll, a loop or a
 * socket, accepts, or refuses an address.  A value not understood is said on stderr
 * once, with the values that are: a misspelt switch should not look like a
 * quiet library. */
void mio__log_init(void)
{
    const char *v;
    int level;

    if (atomic_load_explicit(&env_read, memory_order_relaxed) != 0 ||
        atomic_exchange(&env_read, 1) != 0)
        return;
    v = getenv("MIO_LOG");
    if (v == NULL || *v == '\0')
        return;
    level = parse_level(v);
    if (level < 0) {
        fprintf(stderr, "mio: MIO_LOG=\"%.40s\" is not understood, tracing stays off; valid values "
                        "(any case): off, error, warn, info, debug, trace, or 0 to 5\n", v);
        return;
    }
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

/* ---- text for trace lines ---- */

struct flag_name {
    uint32_t bit;
    const char *name;
};

/* Appends the names of the bits of `flags` found in names[0..n), '|'
 * between them; *flags loses the bits named.  at: how much of buf
 * (MIO__LOG_TEXT bytes, room for every name at once) is used. */
static size_t put_flags(char *buf, size_t at, uint32_t *flags, const struct flag_name *names,
                        size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if ((*flags & names[i].bit) == 0)
            continue;
        *flags &= ~names[i].bit;
        at += (size_t)snprintf(buf + at, MIO__LOG_TEXT - at, "%s%s", at > 0 ? "|" : "",
                               names[i].name);
        if (at >= MIO__LOG_TEXT)
            at = MIO__LOG_TEXT - 1;
    }
    return at;
}

/* The bits no name was found for, in hex; "0" for no bit at all. */
static void put_rest(char *buf, size_t at, uint32_t rest)
{
    if (rest != 0)
        snprintf(buf + at, MIO__LOG_TEXT - at, "%s0x%x", at > 0 ? "|" : "", (unsigned)rest);
    else if (at == 0)
        snprintf(buf, MIO__LOG_TEXT, "0");
}

static const struct flag_name interest_names[] = {
    { MIO_READABLE, "READABLE" },
    { MIO_PRIORITY, "PRIORITY" },
    { MIO_WRITABLE, "WRITABLE" },
};

static const struct flag_name readiness_names[] = {
    { MIO_READABLE, "READABLE" },
    { MIO_PRIORITY, "PRIORITY" },
    { MIO_WRITABLE, "WRITABLE" },
    { MIO_ERROR, "ERROR" },
    { MIO_READ_CLOSED, "READ_CLOSED" },
    { MIO_WRITE_CLOSED, "WRITE_CLOSED" },
};

/* What may follow the trigger, which is always named: EDGE, whose bit is
 * 0, is the absence of LEVEL. */
static const struct flag_name trigger_names[] = {
    { MIO_ONESHOT, "ONESHOT" },
    { MIO__EXCLUSIVE, "EXCLUSIVE" },
};

const char *mio__log_interest(uint32_t interest, char *buf)
{
    size_t at = put_flags(buf, 0, &interest, interest_names, COUNT(interest_names));
    at += (size_t)snprintf(buf + at, MIO__LOG_TEXT - at, "%s%s", at > 0 ? "|" : "",
                           (interest & MIO_LEVEL) ? "LEVEL" : "EDGE");
    if (at >= MIO__LOG_TEXT)
        at = MIO__LOG_TEXT - 1;
    interest &= ~MIO_LEVEL;
    at = put_flags(buf, at, &interest, trigger_names, COUNT(trigger_names));
    put_rest(buf, at, interest);
    return buf;
}

const char *mio__log_readiness(uint32_t readiness, char *buf)
{
    size_t at = put_flags(buf, 0, &readiness, readiness_names, COUNT(readiness_names));
    put_rest(buf, at, readiness);
    return buf;
}

const char *mio__log_result(long long result, char *buf)
{
    const char *name;
    if (result == 0)
        return "ok";
    if (result < 0 && result > INT32_MIN && (name = mio__error_name((int)result)) != NULL)
        return name;
    snprintf(buf, MIO__LOG_TEXT, "%lld", result);
    return buf;
}

void mio__log_wait(const mio_poll *p, const mio_event *events, int n)
{
    char text[MIO__LOG_TEXT];
    int i;

    if (n < 0) {
        mio__log(MIO_LOG_TRACE, "poll %p: wait returned %s", (const void *)p,
                 mio__log_result(n, text));
        return;
    }
    mio__log(MIO_LOG_TRACE, "poll %p: wait returned %d event%s", (const void *)p, n,
             n == 1 ? "" : "s");
    for (i = 0; i < n; i++)
        mio__log(MIO_LOG_TRACE, "poll %p: event token 0x%llx %s", (const void *)p,
                 (unsigned long long)events[i].token, mio__log_readiness(events[i].flags, text));
}

void mio__log_tick(const mio_loop *l, size_t events, size_t timers, size_t messages,
                   bool interrupted)
{
    mio__log(MIO_LOG_TRACE, "loop %p: tick: %llu event%s, %llu timer%s, %llu message%s%s",
             (const void *)l, (unsigned long long)events, events == 1 ? "" : "s",
             (unsigned long long)timers,
             timers == 1 ? "" : "s", (unsigned long long)messages, messages == 1 ? "" : "s",
             interrupted ? ", interrupted" : "");
}
