/* The wakers' hooks in the poll's wait (waker.c), called by poll.c only
 * when the poll has had a waker (p->hub is set). */
#ifndef MIO_WAKER_H
#define MIO_WAKER_H

#include "sys.h"

/* Before a wait that may block: from now on a wake notifies.  Returns true
 * when a wake is pending already (then the wait must not block). */
bool   mio__wakers_sleep(mio_poll *p);
/* After the wait: wakes stop notifying, and the pending ones become events
 * (one per waker), at most cap; how many. */
size_t mio__wakers_take(mio_poll *p, mio_event *events, size_t cap);
/* The poll is being freed: its wakers become no-ops, and no wake is left
 * inside its notify. */
void   mio__wakers_detach(mio_poll *p);

#endif
