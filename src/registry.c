/* Descriptor registrations: the records, the index from a descriptor to its
 * records, mio_register / mio_reregister / mio_deregister, and the re-arm of
 * emulated edges by the I/O calls.  registry.h has the design.
 *
 * Locks.  A poll's reg_lock makes its registration changes one at a time
 * (the waiter never takes it).  A slot's lock guards which records the slot
 * holds and who owns them; it is held for a few instructions and never
 * across a call into a backend.  Order: reg_lock, then a backend's own lock,
 * then a slot's lock.
 *
 * Lifetime.  Records are owned by bits of their state word: CLAIMED (a
 * registration, from register to deregister) and MIO_REC_QUEUED (the poll's
 * re-arm queue).  Whoever clears the last one frees the record, under its
 * slot's lock. */
#include "registry.h"
#include "poll_hooks.h"

#include <string.h>

#define CLAIMED 0x800u      /* owned by a registration (being added, or live) */

atomic_int mio__emulating_polls;

/* ---- the index ----
 * Two levels over the descriptor's number (a SOCKET handle's divided by
 * four: handles are multiples of four).  The first leaf is static; the
 * others are made on first use and kept for the life of the process, so the
 * I/O calls look a slot up with no lock.  A slot holds its descriptor's first record itself, never freed; a
 * descriptor registered on several polls at once has further records chained
 * after it, freed under the slot's lock, which whoever walks them holds. */

#define LEAF_BITS 10
#define LEAF_SIZE ((size_t)1 << LEAF_BITS)
#define LEAVES    ((size_t)1 << 18)

struct slot {
    struct mio_fdrec rec;
    atomic_int lock;
};

static struct slot first_leaf[LEAF_SIZE];
static _Atomic(struct slot *) leaves[LEAVES] = { first_leaf };

static size_t index_of(mio_fd fd)
{
#ifdef _WIN32
    return (size_t)((uintptr_t)fd >> 2);
#else
    return (size_t)(unsigned)fd;
#endif
}

/* fd's slot; with `make`, creates its leaf (NULL if out of memory, or past
 * what the index covers: 2^28 descriptors). */
static struct slot *slot_of(mio_fd fd, bool make)
{
    size_t i = index_of(fd);
    struct slot *leaf;

    if (i >= LEAVES * LEAF_SIZE)
        return NULL;
    leaf = atomic_load_explicit(&leaves[i >> LEAF_BITS], memory_order_acquire);
    if (MIO_UNLIKELY(leaf == NULL)) {
        struct slot *fresh;
        size_t k;

        if (!make || (fresh = mio__calloc(LEAF_SIZE, sizeof *fresh)) == NULL)
            return NULL;
        for (k = 0; k < LEAF_SIZE; k++) {
            atomic_init(&fresh[k].rec.state, 0);
            atomic_init(&fresh[k].rec.poll, NULL);
            atomic_init(&fresh[k].rec.next, NULL);
            atomic_init(&fresh[k].lock, 0);
        }
        if (atomic_compare_exchange_strong_explicit(&leaves[i >> LEAF_BITS], &leaf, fresh,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire))
            leaf = fresh;
        else
            mio__free(fresh);   /* another thread made it first */
    }
    return &leaf[i & (LEAF_SIZE - 1)];
}

static void slot_lock(struct slot *s)
{
    while (atomic_exchange_explicit(&s->lock, 1, memory_order_acquire) != 0)
        while (atomic_load_explicit(&s->lock, memory_order_relaxed) != 0)
            mio__yield();
}

static void slot_unlock(struct slot *s)
{
    atomic_store_explicit(&s->lock, 0, memory_order_release);
}

static mio_poll *owner(const struct mio_fdrec *r)
{
    return atomic_load_explicit(&r->poll, memory_order_relaxed);
}

/* p's record for fd in s, claimed or only still queued; under s's lock. */
static struct mio_fdrec *find(struct slot *s, mio_fd fd, mio_poll *p)
{
    struct mio_fdrec *r;
    for (r = &s->rec; r != NULL; r = atomic_load_explicit(&r->next, memory_order_relaxed))
        if (owner(r) == p && r->fd == fd)
            return r;
    return NULL;
}

/* A free record of s for fd and p, claimed; under s's lock. */
static struct mio_fdrec *take(struct slot *s, mio_fd fd, mio_poll *p)
{
    struct mio_fdrec *r = &s->rec;

    if (owner(r) != NULL) {
        r = mio__calloc(1, sizeof *r);
        if (r == NULL)
            return NULL;
        atomic_init(&r->state, 0);
        atomic_init(&r->next, atomic_load_explicit(&s->rec.next, memory_order_relaxed));
        atomic_init(&r->poll, NULL);
        atomic_store_explicit(&s->rec.next, r, memory_order_release);
    }
    r->fd = fd;
    r->slot = 0;
    r->data = NULL;
#if MIO_CHECKS
    r->check_in = false;    /* a poll freed with it indexed leaves it set */
#endif
    atomic_store_explicit(&r->state, CLAIMED, memory_order_relaxed);
    atomic_store_explicit(&r->poll, p, memory_order_release);
    return r;
}

/* Gives r back to s: the slot's own record is marked free, a chained one
 * freed.  Under s's lock, with no owner bit left. */
static void vacate(struct slot *s, struct mio_fdrec *r)
{
    struct mio_fdrec *prev;

    if (r == &s->rec) {
        atomic_store_explicit(&r->poll, NULL, memory_order_release);
        return;
    }
    for (prev = &s->rec; atomic_load_explicit(&prev->next, memory_order_relaxed) != r;)
        prev = atomic_load_explicit(&prev->next, memory_order_relaxed);
    atomic_store_explicit(&prev->next, atomic_load_explicit(&r->next, memory_order_relaxed),
                          memory_order_release);
    mio__free(r);
}

/* Clears state bits; gives the record back if that took its last owner. */
static void release(struct slot *s, struct mio_fdrec *r, uint32_t bits)
{
    uint32_t old;

    slot_lock(s);
    old = atomic_fetch_and_explicit(&r->state, ~bits, memory_order_acq_rel);
    if ((old & ~bits & (CLAIMED | MIO_REC_QUEUED)) == 0)
        vacate(s, r);
    slot_unlock(s);
}

/* ---- the records' state, for backends ---- */

void mio__rec_set(struct mio_fdrec *r, mio_token token, uint32_t interest)
{
    mio_poll *p = owner(r);
    bool emulated = p->emulated && !(interest & (MIO_LEVEL | MIO_ONESHOT));
    uint32_t old = atomic_load_explicit(&r->state, memory_order_relaxed), s;

#if MIO_CHECKS
    bool checked = p->check != NULL && !p->emulated && (interest & MIO_READABLE) &&
                   !(interest & (MIO_LEVEL | MIO_ONESHOT | MIO__PRIVATE)) &&
                   token < p->token_limit;
#endif

    r->token = token;
    r->interest = interest;
    /* Live from here: a backend calls this under the lock its wait takes,
     * so its waiter never sees the change hold without the record. */
    do {
        s = (old & ~(MIO_REC_EMULATED | MIO_REC_DISARMED(MIO_REC_DIRS) |
                     MIO_REC_DRAINED(MIO_REC_DIRS))) | MIO_REC_LIVE;
        if (emulated)
            s |= MIO_REC_EMULATED;
#if MIO_CHECKS
        s &= ~(MIO_REC_CHECKED | MIO_REC_WARNED);
        if (checked)
            s |= MIO_REC_CHECKED;
#endif
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s, memory_order_acq_rel,
                                                    memory_order_relaxed));
}

uint32_t mio__rec_reported(struct mio_fdrec *r, uint32_t dirs)
{
    uint32_t old = atomic_load_explicit(&r->state, memory_order_relaxed), s, drained, off;

    dirs &= MIO_REC_DIRS;
    do {
        drained = (old >> 3) & dirs;
        off = dirs & ~drained;
        s = (old | MIO_REC_DISARMED(off)) & ~MIO_REC_DRAINED(drained);
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s, memory_order_acq_rel,
                                                    memory_order_relaxed));
    return off;
}

/* ---- the I/O calls' side ---- */

#if MIO_CHECKS
/* A drain of dirs on r, which the drain check watches: remembered until
 * the next report. */
static void check_drained(struct mio_fdrec *r, uint32_t old, uint32_t dirs)
{
    while ((old & (MIO_REC_LIVE | MIO_REC_CHECKED)) == (MIO_REC_LIVE | MIO_REC_CHECKED) &&
           (old & MIO_REC_DRAINED(dirs)) != MIO_REC_DRAINED(dirs) &&
           !atomic_compare_exchange_weak_explicit(&r->state, &old, old | MIO_REC_DRAINED(dirs),
                                                  memory_order_acq_rel, memory_order_relaxed))
        ;
}
#endif

/* A drain of dirs on r: remembered, and queued for the waiter if it must
 * ask the kernel again.  One CAS; nothing when there is nothing new. */
static void drained(struct mio_fdrec *r, uint32_t dirs)
{
    uint32_t old = atomic_load_explicit(&r->state, memory_order_relaxed), s;
    bool push;

    do {
        if ((old & (MIO_REC_LIVE | MIO_REC_EMULATED)) != (MIO_REC_LIVE | MIO_REC_EMULATED)) {
#if MIO_CHECKS
            check_drained(r, old, dirs);
#endif
            return;
        }
        s = old | MIO_REC_DRAINED(dirs);
        push = (old & dirs) != 0 && !(old & MIO_REC_QUEUED);
        if (push)
            s |= MIO_REC_QUEUED;
        if (s == old)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (push) {
        /* QUEUED keeps the record, and so its owner, until the pop. */
        mio_poll *p = atomic_load_explicit(&r->poll, memory_order_acquire);
        mio__queue_push(&p->rearmq, &r->link, p, p->ops->notify);
    }
}

void mio__io_eagain(mio_fd fd, uint32_t dir)
{
    struct slot *s;
    uint32_t dirs = dir & MIO_REC_DIRS;

    if (atomic_load_explicit(&mio__emulating_polls, memory_order_relaxed) == 0)
        return;
    if ((s = slot_of(fd, false)) == NULL)
        return;
    if (dirs & MIO_READABLE)
        dirs |= MIO_PRIORITY;   /* urgent data has no call of its own */
    drained(&s->rec, dirs);
    if (MIO_UNLIKELY(atomic_load_explicit(&s->rec.next, memory_order_acquire) != NULL)) {
        struct mio_fdrec *r;
        slot_lock(s);
        for (r = atomic_load_explicit(&s->rec.next, memory_order_relaxed); r != NULL;
             r = atomic_load_explicit(&r->next, memory_order_relaxed))
            if (r->fd == fd)
                drained(r, dirs);
        slot_unlock(s);
    }
}

#if MIO_CHECKS
void mio__io_done(mio_fd fd)
{
    struct slot *s;
    struct mio_fdrec *r;

    if (atomic_load_explicit(&mio__emulating_polls, memory_order_relaxed) == 0 ||
        (s = slot_of(fd, false)) == NULL)
        return;
    slot_lock(s);
    for (r = &s->rec; r != NULL; r = atomic_load_explicit(&r->next, memory_order_relaxed))
        if (r->fd == fd && owner(r) != NULL)
            check_drained(r, atomic_load_explicit(&r->state, memory_order_relaxed),
                          MIO_READABLE | MIO_PRIORITY);
    slot_unlock(s);
}
#endif

/* ---- the waiter's side ---- */

/* Applies the drains queued for r, which stays queued meanwhile (so its
 * registration cannot go from under the backend). */
static void apply(mio_poll *p, struct mio_fdrec *r)
{
    uint32_t old = atomic_load_explicit(&r->state, memory_order_acquire), s, again;

    do {
        again = old & (old >> 3) & MIO_REC_DIRS;    /* disarmed and drained */
        s = old & ~(MIO_REC_DISARMED(again) | MIO_REC_DRAINED(again));
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s, memory_order_acq_rel,
                                                    memory_order_acquire));
    if (again != 0 && (s & MIO_REC_LIVE))
        p->ops->rearm(p, r, again);
    /* Out of the queue; back in if a drain came meanwhile. */
    old = s;
    do {
        again = old & (old >> 3) & MIO_REC_DIRS;
        s = again != 0 && (old & MIO_REC_LIVE) ? old : old & ~MIO_REC_QUEUED;
    } while (!atomic_compare_exchange_weak_explicit(&r->state, &old, s, memory_order_acq_rel,
                                                    memory_order_acquire));
    if (s & MIO_REC_QUEUED)
        mio__queue_push(&p->rearmq, &r->link, NULL, NULL);
    else if (!(s & CLAIMED))
        release(slot_of(r->fd, false), r, 0);  /* deregistered while queued */
}

static void apply_queued(mio_poll *p)
{
    struct mio_qlink *l;
    size_t budget = 4096;   /* a record re-pushed by a racing drain waits a wait */

    while (budget-- > 0 && (l = mio__queue_pop(&p->rearmq)) != NULL)
        apply(p, (struct mio_fdrec *)(void *)l);
}

void mio__registry_prepare(mio_poll *p, int64_t *timeout_ns)
{
    apply_queued(p);
    if (*timeout_ns != 0 && mio__queue_sleep(&p->rearmq)) {
        *timeout_ns = 0;    /* a drain raced the announcement: look again */
        mio__queue_awake(&p->rearmq);
    }
}

void mio__registry_awake(mio_poll *p)
{
    mio__queue_awake(&p->rearmq);
}

/* ---- registration changes ---- */

static int check_interest(uint32_t interest)
{
    if ((interest & MIO_INTERESTS) == 0 ||
        (interest & ~(uint32_t)(MIO_INTERESTS | MIO_TRIGGERS)) != 0)
        return MIO_EINVAL;
    return 0;
}

static bool bad_fd(mio_fd fd)
{
#ifdef _WIN32
    return fd == MIO_INVALID_FD;
#else
    return fd < 0;
#endif
}

/* The poll's list of live records and their count (a group of loops reads
 * it from other threads to find the least loaded loop). */
static void list_add(mio_poll *p, struct mio_fdrec *r)
{
    r->poll_prev = NULL;
    r->poll_next = p->records;
    if (r->poll_next != NULL)
        r->poll_next->poll_prev = r;
    p->records = r;
    atomic_store_explicit(&p->nrecords, atomic_load_explicit(&p->nrecords, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void list_del(mio_poll *p, struct mio_fdrec *r)
{
    if (r->poll_prev != NULL)
        r->poll_prev->poll_next = r->poll_next;
    else
        p->records = r->poll_next;
    if (r->poll_next != NULL)
        r->poll_next->poll_prev = r->poll_prev;
    atomic_store_explicit(&p->nrecords, atomic_load_explicit(&p->nrecords, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

/* Takes r out of service before its backend is told (reg_lock held): from
 * here no drain queues it and mio__rec_lookup does not find it, so a backend
 * that looks records up under the lock its del takes never sees one go. */
static void retire(struct slot *s, struct mio_fdrec *r)
{
    slot_lock(s);
    atomic_fetch_and_explicit(&r->state, ~(MIO_REC_LIVE | MIO_REC_EMULATED),
                              memory_order_acq_rel);
    slot_unlock(s);
}

/* Ends registration r of p (reg_lock held, r retired): it goes now, or once
 * out of the re-arm queue. */
static void drop(mio_poll *p, struct slot *s, struct mio_fdrec *r)
{
#if MIO_CHECKS
    mio__check_untrack(p, r);
#endif
    list_del(p, r);
    release(s, r, CLAIMED | MIO_REC_LIVE | MIO_REC_EMULATED);
}

struct mio_fdrec *mio__rec_lookup(mio_poll *p, mio_fd fd)
{
    struct slot *s = slot_of(fd, false);
    struct mio_fdrec *r = NULL;

    if (s != NULL) {
        slot_lock(s);
        r = find(s, fd, p);
        if (r != NULL && !(atomic_load_explicit(&r->state, memory_order_relaxed) & MIO_REC_LIVE))
            r = NULL;
        slot_unlock(s);
    }
    return r;
}

/* p's live record for fd, or NULL; *s is fd's slot then. */
static struct mio_fdrec *live_record(mio_poll *p, mio_fd fd, struct slot **s)
{
    *s = slot_of(fd, false);
    return *s != NULL ? mio__rec_lookup(p, fd) : NULL;
}

static int do_register(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest)
{
    struct slot *s = slot_of(fd, true);
    struct mio_fdrec *r;
    bool again = false;
    int err;

    if (s == NULL)
        return index_of(fd) >= LEAVES * LEAF_SIZE ? MIO_EBADF : MIO_ENOMEM;
    slot_lock(s);
    r = find(s, fd, p);
    if (r != NULL) {
        uint32_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
        if (st & CLAIMED) {
            again = true;   /* the backend tells whether it still stands */
        } else {
            /* Deregistered but still queued: claimed again as it is. */
            atomic_fetch_or_explicit(&r->state, CLAIMED, memory_order_relaxed);
        }
    } else {
        r = take(s, fd, p);
    }
    slot_unlock(s);
    if (r == NULL)
        return MIO_ENOMEM;
    err = p->ops->add(p, r, token, interest, again);
    if (again) {
        /* 0: the old registration was stale and is replaced; else it stands
         * (MIO_EEXIST) or the descriptor is gone. */
        if (err == MIO_EBADF) {
            retire(s, r);
            drop(p, s, r);
        }
#if MIO_CHECKS
        if (err == 0)
            mio__check_track(p, r);
#endif
        return err;
    }
    if (err < 0) {
        release(s, r, CLAIMED);
        return err;
    }
    list_add(p, r);     /* mio__rec_set made it live */
#if MIO_CHECKS
    mio__check_track(p, r);
#endif
    return 0;
}

int mio_register(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest)
{
    if (p == NULL || !mio__token_ok(p, token) || check_interest(interest) < 0)
        return MIO_EINVAL;
    return mio__register_internal(p, fd, token, interest);
}

int mio__register_internal(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest)
{
    int err;

    if (bad_fd(fd))
        return MIO_EBADF;
    interest &= ~(MIO__PRIVATE & ~p->ops->private_interest);
    mio_mutex_lock(&p->reg_lock);
    err = do_register(p, fd, token, interest);
    mio_mutex_unlock(&p->reg_lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: register fd %lld token 0x%llx interest %s: %s", (void *)p,
              (long long)fd, (unsigned long long)token, MIO__INTEREST(interest), MIO__RESULT(err));
    return err;
}

int mio_reregister(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest)
{
    struct mio_fdrec *r;
    struct slot *s;
    int err;

    if (p == NULL || !mio__token_ok(p, token) || check_interest(interest) < 0)
        return MIO_EINVAL;
    if (bad_fd(fd))
        return MIO_EBADF;
    mio_mutex_lock(&p->reg_lock);
    r = live_record(p, fd, &s);
    if (r == NULL) {
        err = p->ops->unknown(fd);
    } else {
        err = p->ops->mod(p, r, token, interest);
        if (err == MIO_EBADF || err == MIO_ENOENT) {
            retire(s, r);   /* closed behind our back */
            (void)p->ops->del(p, r);
            drop(p, s, r);
        }
#if MIO_CHECKS
        if (err == 0)
            mio__check_track(p, r);
#endif
    }
    mio_mutex_unlock(&p->reg_lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: reregister fd %lld token 0x%llx interest %s: %s",
              (void *)p, (long long)fd, (unsigned long long)token, MIO__INTEREST(interest),
              MIO__RESULT(err));
    return err;
}

int mio_deregister(mio_poll *p, mio_fd fd)
{
    struct mio_fdrec *r;
    struct slot *s;
    int err;

    if (p == NULL)
        return MIO_EINVAL;
    if (bad_fd(fd))
        return MIO_EBADF;
    mio_mutex_lock(&p->reg_lock);
    r = live_record(p, fd, &s);
    if (r == NULL) {
        err = p->ops->unknown(fd);
    } else {
        retire(s, r);
        err = p->ops->del(p, r);
        drop(p, s, r);      /* gone, also when the kernel had forgotten it */
    }
    mio_mutex_unlock(&p->reg_lock);
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: deregister fd %lld: %s", (void *)p, (long long)fd,
              MIO__RESULT(err));
    return err;
}

/* mio_close is about to close fd: its registrations end here, so that a new
 * descriptor with the same number is not taken for it.  The backends that
 * would not notice (forget) drop it now. */
void mio__io_close(mio_fd fd)
{
    struct slot *s = slot_of(fd, false);

    mio__backends_release(fd);
    if (s == NULL)
        return;
    for (;;) {
        struct mio_fdrec *r;
        mio_poll *p = NULL;

        /* One poll at a time: its reg_lock comes before the slot's lock. */
        slot_lock(s);
        for (r = &s->rec; r != NULL; r = atomic_load_explicit(&r->next, memory_order_relaxed)) {
            if (r->fd == fd && owner(r) != NULL &&
                (atomic_load_explicit(&r->state, memory_order_relaxed) & MIO_REC_LIVE)) {
                p = owner(r);
                break;
            }
        }
        slot_unlock(s);
        if (p == NULL)
            return;
        mio_mutex_lock(&p->reg_lock);
        r = live_record(p, fd, &s);
        if (r != NULL) {
            retire(s, r);
            if (p->ops->forget != NULL)
                p->ops->forget(p, r);
            drop(p, s, r);
        }
        mio_mutex_unlock(&p->reg_lock);
    }
}

void mio__registry_detach(mio_poll *p)
{
    struct mio_fdrec *r, *next;
    bool busy;

    mio_mutex_lock(&p->reg_lock);
    /* No drain queues a record of p from here on. */
    for (r = p->records; r != NULL; r = r->poll_next)
        atomic_fetch_and_explicit(&r->state, ~(MIO_REC_LIVE | MIO_REC_EMULATED),
                                  memory_order_acq_rel);
    if (p->emulated) {
        /* Every push already committed (QUEUED set) links before long. */
        do {
            struct mio_qlink *l;
            while ((l = mio__queue_pop(&p->rearmq)) != NULL)
                apply(p, (struct mio_fdrec *)(void *)l);
            busy = !mio__queue_empty(&p->rearmq);
            for (r = p->records; r != NULL && !busy; r = r->poll_next)
                busy = (atomic_load_explicit(&r->state, memory_order_acquire) &
                        MIO_REC_QUEUED) != 0;
            if (busy)
                mio__yield();
        } while (busy);
        mio__queue_quiesce(&p->rearmq);
    }
    for (r = p->records; r != NULL; r = next) {
        next = r->poll_next;
        release(slot_of(r->fd, false), r, CLAIMED);
    }
    p->records = NULL;
    atomic_store_explicit(&p->nrecords, 0, memory_order_relaxed);
    mio_mutex_unlock(&p->reg_lock);
}
