/* The internal backend interface.
 *
 * A backend is one file under src/sys/ exporting one `struct mio_backend`.
 * poll.c owns everything backend-neutral about a poll (argument checks, the
 * busy flag, the deadline loop, wakers' bookkeeping, the user-space
 * readiness queue) and registry.c every descriptor's registration record; a
 * backend only talks to its OS.  Its poll object is a struct whose first
 * member is `struct mio_poll`, allocated zeroed by poll.c (`size` bytes).
 *
 * Contract for every backend:
 * - add/mod/del get a record (registry.h) for a valid descriptor, a token
 *   that is not reserved and an interest with at least one direction and
 *   only known bits, one call at a time per poll (but from any thread, while
 *   another thread may be inside wait).  On success add and mod call
 *   mio__rec_set; on failure nothing changes.  add's `again` says the
 *   registry already holds a record for this descriptor and poll: the
 *   backend answers MIO_EEXIST if that registration still stands, or
 *   replaces it if the descriptor was closed and its number reused.  mod and
 *   del answer MIO_EBADF or MIO_ENOENT when the descriptor was closed behind
 *   the library's back; the registry then drops the record.
 * - unknown answers mod/del for a descriptor the poll has no record of:
 *   MIO_EBADF if it is no open descriptor, else MIO_ENOENT.
 * - wait fills at most cap events (cap >= 1) and returns how many, or MIO_EINTR
 *   or another error.  It may return 0 before the timeout (poll.c resumes the
 *   wait); it must never allocate.  Events for the internal wake-up (notify)
 *   are not reported.
 * - notify makes a wait in progress, or the next one, return soon; it is
 *   async-signal-safe.
 *   (Wakers are the poll's own, waker.c: they use notify.)
 * - private_interest names the internal interest bits (common.h) that add
 *   honours; add never sees the others.  mod is never asked for them.
 * - rearm (NULL where the OS has an edge trigger) asks the kernel again for
 *   directions `dirs` of an edge record, drained since they were reported;
 *   called by the waiting thread between waits.  forget (may be NULL) drops
 *   a record before mio_close closes its descriptor.
 * - release (may be NULL) is told of every mio_close before it closes fd,
 *   whatever poll it was registered with: a backend whose kernel still holds
 *   the file of a registration already ended (io_uring's poll requests hold
 *   a reference until cancelled) lets go of it, so that closing the
 *   descriptor closes the file.  Any thread; cheap when there is nothing to
 *   let go.
 * - proc (may be NULL: the process layer then polls a process descriptor or
 *   SIGCHLD) watches child pid's exit, reported as token READABLE (add), or
 *   stops watching it (!add; a watch the kernel already dropped after the
 *   exit counts as stopped).  MIO_ESRCH from add: the child is a zombie the
 *   kernel will not watch.
 *
 * Nothing else lives here: what poll.c offers the rest of the library is in
 * poll_hooks.h, the user-space readiness queue's hooks in readyq.h, the
 * registration records in registry.h, and what backends share among
 * themselves under sys/ (wakefd.h, win.h, afd.h).
 */
#ifndef MIO_SYS_H
#define MIO_SYS_H

#include "queue.h"

struct mio_backend;

struct mio_readyq;                  /* user-space readiness (registration.c) */
struct mio_wakehub;                 /* wakers (waker.c) */
struct mio_fdrec;                   /* a descriptor's registration (registry.h) */

struct mio_poll {
    const struct mio_backend *ops;
    atomic_int waiting;             /* a thread is inside mio_poll_wait */
    atomic_int woken;               /* mio__poll_wake() was called */
    mio_mutex lock;                 /* guards the hub's creation and the readyq's lists */
    _Atomic(struct mio_wakehub *) hub;  /* NULL until a waker is made (waker.c) */
    _Atomic(struct mio_readyq *) readyq;  /* NULL until a registration is registered */
    bool emulated;                  /* the backend emulates edges (has rearm) */
    mio_mutex reg_lock;             /* one register/reregister/deregister at a time */
    struct mio_fdrec *records;      /* live descriptor records, under reg_lock */
    atomic_size_t nrecords;         /* how many: written under reg_lock, read anywhere */
    mio_token token_limit;          /* callers' tokens stay below (a group keeps the rest) */
    struct mio_queue rearmq;        /* records whose drained edge awaits re-arming */
#if MIO_CHECKS
    struct mio_check *check;        /* the drain check's, NULL when it is off (check.c) */
#endif
};

struct mio_backend {
    const char *name;
    size_t size;
    int  (*init)(mio_poll *p);
    void (*fini)(mio_poll *p);
    int  (*add)(mio_poll *p, struct mio_fdrec *r, mio_token token, uint32_t interest,
                bool again);
    int  (*mod)(mio_poll *p, struct mio_fdrec *r, mio_token token, uint32_t interest);
    int  (*del)(mio_poll *p, struct mio_fdrec *r);
    int  (*unknown)(mio_fd fd);
    int  (*wait)(mio_poll *p, mio_event *events, size_t cap, int64_t timeout_ns);
    int  (*notify)(mio_poll *p);
    void (*rearm)(mio_poll *p, struct mio_fdrec *r, uint32_t dirs);
    void (*forget)(mio_poll *p, struct mio_fdrec *r);
    void (*release)(mio_fd fd);
    int  (*proc)(mio_poll *p, int64_t pid, mio_token token, bool add);
    uint32_t private_interest;      /* MIO__PRIVATE bits add understands; the
                                       registry strips the others */
};

extern const struct mio_backend mio__backend_epoll;
extern const struct mio_backend mio__backend_poll;
extern const struct mio_backend mio__backend_kqueue;
extern const struct mio_backend mio__backend_iocp;
extern const struct mio_backend mio__backend_uring;

#endif
