/* The registration layer (registry.c): one record per registered
 * (descriptor, poll) pair, owned by the backend-neutral layer, and one
 * process-wide index from descriptor to its records.
 *
 * mio_register, mio_reregister and mio_deregister find the record, answer
 * MIO_EEXIST / MIO_ENOENT / MIO_EBADF the same way on every backend, and
 * hand the record to the backend, which keeps only what its kernel needs
 * (beside it, in `slot` and `data`).
 *
 * Emulated edges.  A backend without an edge trigger of its own (poll(2),
 * Windows) stops asking the kernel for a direction once it reported it, and
 * asks again once a libmio call drained it (mio.h).  The I/O calls find the
 * records of their descriptor through the index and update each one's state
 * word with one atomic operation; a record whose direction needs re-arming
 * goes into its poll's re-arm queue (queue.h), which the poll's waiter
 * empties before its next wait.  No lock is taken, and nothing of another
 * poll is touched.
 *
 * A drain may race the report it answers: another thread may read to
 * MIO_EAGAIN between the kernel saying "readable" and the waiter disarming.
 * So the state keeps, per direction, "disarmed" and "drained since": a
 * report whose direction was drained meanwhile does not disarm it (the next
 * wait at worst reports it once more, a spurious event), and a drain of a
 * disarmed direction queues the re-arm. */
#ifndef MIO_REGISTRY_H
#define MIO_REGISTRY_H

#include "sys.h"

/* The state word.  Directions use their interest bits (MIO_READABLE 0x1,
 * MIO_PRIORITY 0x2, MIO_WRITABLE 0x4). */
#define MIO_REC_DIRS        (MIO_READABLE | MIO_PRIORITY | MIO_WRITABLE)
#define MIO_REC_DISARMED(d) (d)                 /* reported, not drained since */
#define MIO_REC_DRAINED(d)  ((d) << 3)          /* drained since the last look */
#define MIO_REC_LIVE        0x100u  /* registered: the add succeeded */
#define MIO_REC_EMULATED    0x200u  /* an edge its poll emulates: drains re-arm it */
#define MIO_REC_QUEUED      0x400u  /* in its poll's re-arm queue */
/* The drain check (check.c), on a poll with native edges: DISARMED(d) then
 * means "reported, not drained since" and DRAINED(d) "drained since". */
#define MIO_REC_CHECKED     0x1000u /* an edge whose reports are checked */
#define MIO_REC_WARNED      0x2000u /* told once: not again until reregistered */

struct mio_fdrec {
    struct mio_qlink link;          /* first: the poll's re-arm queue */
    atomic_uint state;
    uint32_t interest;              /* directions and trigger, as registered */
    mio_token token;
    mio_fd fd;
    _Atomic(mio_poll *) poll;       /* the owner; NULL while the record is free */
    _Atomic(struct mio_fdrec *) next;   /* the descriptor's other records (other polls) */
    struct mio_fdrec *poll_prev, *poll_next;    /* the owner's live records */
    /* The backend's own, for what its kernel needs. */
    uint32_t armed;                 /* directions asked of the kernel (emulating backends) */
    size_t slot;                    /* e.g. the poll(2) array index */
    void *data;                     /* e.g. the Windows per-socket state */
#if MIO_CHECKS
    struct mio_fdrec *check_next;   /* the drain check's index by token */
    mio_token check_token;
    bool check_in;
#endif
};

/* Whether a caller may use token on p (registrations of descriptors and
 * user-space ones, wakers): not MIO_TOKEN_RESERVED, and not one a group
 * keeps on its loops' polls (mio__poll_keep_tokens). */
static inline bool mio__token_ok(const mio_poll *p, mio_token token)
{
    return token < p->token_limit;
}

/* What a backend's add or mod calls once the change holds, under the lock
 * its wait takes if it has one: the record is live from then on, reports
 * this token and interest, and starts with every direction armed. */
void mio__rec_set(struct mio_fdrec *r, mio_token token, uint32_t interest);

/* An emulating backend reported directions `dirs` for an edge record: which
 * of them to stop asking for (those not drained since they were last
 * armed).  They count as disarmed from now on. */
uint32_t mio__rec_reported(struct mio_fdrec *r, uint32_t dirs);

/* p's live record for fd, or NULL: for a backend's waiter that knows only
 * the descriptor (kqueue's events name it).  The record stays valid while
 * the caller holds the lock the backend's del takes: a record leaves
 * service before its del is called. */
struct mio_fdrec *mio__rec_lookup(mio_poll *p, mio_fd fd);

/* poll.c, before each backend wait of an emulating poll: applies the queued
 * re-arms through the backend's rearm.  With *timeout_ns != 0 it also tells
 * drains the waiter may sleep, and sets *timeout_ns to 0 if one came in the
 * meantime. */
void mio__registry_prepare(mio_poll *p, int64_t *timeout_ns);
/* ... and after it: drains stop waking the waiter. */
void mio__registry_awake(mio_poll *p);
/* mio_poll_free: drops every record of p (the backend is torn down after). */
void mio__registry_detach(mio_poll *p);

/* poll.c: every backend's release hook (sys.h), before mio_close closes fd. */
void mio__backends_release(mio_fd fd);

/* How many polls need to hear of drains now: those that emulate edges, and
 * those the drain check watches (poll.c counts them). */
extern atomic_int mio__emulating_polls;

#if MIO_CHECKS
/* The drain check (check.c): an edge registration on a poll with native
 * edges whose READABLE is reported again by a wait when no libmio call
 * drained it since the last report is told at warn level.  Such a program
 * hangs where edges are emulated.  MIO_CHECK=none turns it off. */

/* Whether the environment wants the check on the polls made from now on. */
bool mio__check_wanted(void);
/* p's check (index and lock), or NULL if it cannot be had. */
struct mio_check *mio__check_new(void);
void mio__check_free(struct mio_check *c);
/* After the backend's add or mod of r (reg_lock held): indexes r by its
 * token if its registration is checked. */
void mio__check_track(mio_poll *p, struct mio_fdrec *r);
/* Before r leaves its poll (reg_lock held). */
void mio__check_untrack(mio_poll *p, struct mio_fdrec *r);
/* The waiter, with the backend's events ev[0..n). */
void mio__check_reported(mio_poll *p, const mio_event *ev, int n);
#endif

#endif
