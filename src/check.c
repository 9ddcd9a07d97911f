/* The drain check (registry.h): a debug build's warning, where epoll,
 * kqueue and io_uring forgive it, about the mistake that hangs a program
 * on the backends that emulate edges: an edge registration whose READABLE
 * is answered without reading until MIO_EAGAIN (or a short read, or end of
 * stream), so that only a new arrival reports it again.
 *
 * The registry already learns of every drain by a libmio call (for
 * emulated edges); on a poll the check watches, it notes them in the
 * record's state (DRAINED), and the waiter, finding a record by the token
 * of each READABLE event, notes the report (DISARMED).  A report that finds
 * the previous one not drained is the mistake.  Events name only tokens:
 * each watched poll keeps its checked records in a hash table by token, and
 * a token that several records share is not checked.  None of this exists
 * in a build without MIO_CHECKS. */
#include "registry.h"

#if MIO_CHECKS

#include <stdlib.h>
#include <string.h>

struct mio_check {
    mio_mutex lock;             /* the table; taken by the waiter after its wait */
    struct mio_fdrec **buckets;
    size_t mask;                /* buckets - 1 */
    size_t count;
};

#define FIRST_BUCKETS 64

bool mio__check_wanted(void)
{
    const char *v = getenv("MIO_CHECK");

    if (v == NULL || *v == '\0' || strcmp(v, "drain") == 0 || strcmp(v, "all") == 0 ||
        strcmp(v, "1") == 0)
        return true;
    if (strcmp(v, "none") == 0 || strcmp(v, "0") == 0)
        return false;
    mio__log_alert(MIO_LOG_ERROR, "MIO_CHECK=%.40s: not a check; say drain, all or none "
                                  "(the checks stay on)", v);
    return true;
}

struct mio_check *mio__check_new(void)
{
    struct mio_check *c = mio__calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->buckets = mio__calloc(FIRST_BUCKETS, sizeof *c->buckets);
    if (c->buckets == NULL) {
        mio__free(c);
        return NULL;
    }
    c->mask = FIRST_BUCKETS - 1;
    mio_mutex_init(&c->lock);
    return c;
}

void mio__check_free(struct mio_check *c)
{
    if (c == NULL)
        return;
    mio_mutex_destroy(&c->lock);
    mio__free(c->buckets);
    mio__free(c);
}

static size_t bucket(mio_token token, size_t mask)
{
    uint64_t h = (uint64_t)token * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & mask;
}

/* Twice the buckets once there are twice as many records; out of memory,
 * the chains just grow longer. */
static void grow(struct mio_check *c)
{
    size_t n = (c->mask + 1) * 2, i;
    struct mio_fdrec **b = mio__calloc(n, sizeof *b);

    if (b == NULL)
        return;
    for (i = 0; i <= c->mask; i++) {
        struct mio_fdrec *r = c->buckets[i], *next;
        for (; r != NULL; r = next) {
            size_t k = bucket(r->check_token, n - 1);
            next = r->check_next;
            r->check_next = b[k];
            b[k] = r;
        }
    }
    mio__free(c->buckets);
    c->buckets = b;
    c->mask = n - 1;
}

static void unlink_locked(struct mio_check *c, struct mio_fdrec *r)
{
    struct mio_fdrec **at = &c->buckets[bucket(r->check_token, c->mask)];

    while (*at != NULL && *at != r)
        at = &(*at)->check_next;
    if (*at == r) {
        *at = r->check_next;
        c->count--;
    }
    r->check_in = false;
}

void mio__check_untrack(mio_poll *p, struct mio_fdrec *r)
{
    struct mio_check *c = p->check;

    if (c == NULL || !r->check_in)
        return;
    mio_mutex_lock(&c->lock);
    unlink_locked(c, r);
    mio_mutex_unlock(&c->lock);
}

void mio__check_track(mio_poll *p, struct mio_fdrec *r)
{
    struct mio_check *c = p->check;
    size_t k;

    if (c == NULL)
        return;
    mio_mutex_lock(&c->lock);
    if (r->check_in)
        unlink_locked(c, r);    /* its token may have changed */
    if (atomic_load_explicit(&r->state, memory_order_relaxed) & MIO_REC_CHECKED) {
        if (c->count >= 2 * (c->mask + 1))
            grow(c);
        r->check_token = r->token;
        k = bucket(r->token, c->mask);
        r->check_next = c->buckets[k];
        c->buckets[k] = r;
        r->check_in = true;
        c->count++;
    }
    mio_mutex_unlock(&c->lock);
}

/* The one checked record reporting token, or NULL (none, or shared). */
static struct mio_fdrec *lookup(struct mio_check *c, mio_token token)
{
    struct mio_fdrec *r, *found = NULL;

    for (r = c->buckets[bucket(token, c->mask)]; r != NULL; r = r->check_next) {
        if (r->check_token != token)
            continue;
        if (found != NULL)
            return NULL;
        found = r;
    }
    return found;
}

void mio__check_reported(mio_poll *p, const mio_event *ev, int n)
{
    struct mio_check *c = p->check;
    int i;

    for (i = 0; i < n; i++) {
        struct mio_fdrec *r;
        uint32_t old, s;
        bool warn = false;
        long long fd = 0;

        if (!(ev[i].flags & MIO_READABLE))
            continue;
        mio_mutex_lock(&c->lock);
        r = lookup(c, ev[i].token);
        if (r != NULL) {
            old = atomic_load_explicit(&r->state, memory_order_relaxed);
            /* A write that met MIO_EAGAIN (or failed) since the last
             * READABLE is no mistake: the program waits for WRITABLE, which
             * comes on every backend, and may read on from there (an echo
             * that reads no more than it can write back). */
            do {
                warn = (old & (MIO_REC_DISARMED(MIO_READABLE) | MIO_REC_DRAINED(MIO_READABLE) |
                               MIO_REC_DRAINED(MIO_WRITABLE) | MIO_REC_WARNED)) ==
                       MIO_REC_DISARMED(MIO_READABLE);
                s = (old | MIO_REC_DISARMED(MIO_READABLE) | (warn ? MIO_REC_WARNED : 0)) &
                    ~MIO_REC_DRAINED(MIO_READABLE | MIO_PRIORITY | MIO_WRITABLE);
            } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s,
                                                            memory_order_acq_rel,
                                                            memory_order_relaxed));
            fd = (long long)r->fd;
        }
        mio_mutex_unlock(&c->lock);
        if (warn)
            mio__log_alert(MIO_LOG_WARN,
                           "poll %p: fd %lld token %llu: READABLE reported again, not drained "
                           "since its last report (read until MIO_EAGAIN, a short read or end "
                           "of stream): where edges are emulated it would not be reported "
                           "again", (void *)p, fd, (unsigned long long)ev[i].token);
    }
}

#else

/* ISO C wants something in a translation unit. */
typedef int mio__no_checks;

#endif
