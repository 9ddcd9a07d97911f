/* What poll.c offers the rest of the library: waking a wait without an event
 * (the event loop's channel), and the hooks by which the I/O calls of net.c
 * keep emulated edges true. */
#ifndef MIO_POLL_HOOKS_H
#define MIO_POLL_HOOKS_H

#include "common.h"

/* Makes the wait in progress, or the next one, return to its caller even
 * with no event to report: no token is involved, so nothing can collide with
 * the caller's tokens (the event loop wakes itself for its channel this way).
 * Async-signal-safe. */
int mio__poll_wake(mio_poll *p);

/* fd's direction `dir` may be drained: every poll that emulates edges
 * re-arms it.  Cheap when no poll emulates edges. */
void mio__io_eagain(mio_fd fd, uint32_t dir);
/* fd is about to be closed: polls that emulate edges forget it. */
void mio__io_close(mio_fd fd);

#endif
