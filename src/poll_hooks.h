/* What poll.c offers the rest of the library: waking a wait without an event
 * (the event loop's channel), the tokens and registrations a group of loops
 * keeps for itself, and the hooks by which the I/O calls of net.c keep
 * emulated edges true. */
#ifndef MIO_POLL_HOOKS_H
#define MIO_POLL_HOOKS_H

#include "common.h"

/* Makes the wait in progress, or the next one, return to its caller even
 * with no event to report: no token is involved, so nothing can collide with
 * the caller's tokens (the event loop wakes itself for its channel this way).
 * Async-signal-safe. */
int mio__poll_wake(mio_poll *p);

/* mio_poll_wait for the event loop, which passes the clock reading it took
 * before (now >= 0) instead of having the wait read the clock again. */
int mio__poll_wait_at(mio_poll *p, mio_event *events, size_t capacity, int64_t timeout_ns,
                      int64_t now);

/* How many descriptors are registered on p now; any thread. */
size_t mio__poll_records(const mio_poll *p);
/* Keeps the tokens from `first` up for the library on p. */
void mio__poll_keep_tokens(mio_poll *p, mio_token first);
/* The internal interest bits (common.h) p's backend honours. */
uint32_t mio__poll_private_interest(const mio_poll *p);

/* mio_register for the library's own registrations (registry.c): any
 * token, and internal interest bits (common.h; those the backend lacks are
 * dropped). */
int mio__register_internal(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest);

/* The I/O calls' hooks (registry.c).  fd's direction `dir` was drained (see
 * mio.h): a poll that emulates edges asks for it again.  One atomic update,
 * and nothing when no poll emulates edges. */
void mio__io_eagain(mio_fd fd, uint32_t dir);
/* fd is about to be closed: its registrations end. */
void mio__io_close(mio_fd fd);
#if MIO_CHECKS
/* fd has nothing more to give (a read met end of stream, the child behind
 * a process descriptor was reaped): drained, for the drain check only (an
 * emulated edge stays as it is: the same end would be reported again). */
void mio__io_done(mio_fd fd);
#endif

#endif
