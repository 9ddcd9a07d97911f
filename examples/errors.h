/* Which errors end a connection and which only mean "not now": the rule the
 * examples follow (docs/concepts.md, "Errors while reading and writing").
 *
 * MIO_EAGAIN is not an error: wait for the next event.  A transient error
 * leaves the connection as it was: nothing was read or written, the kernel
 * was short of memory (MIO_ENOMEM, MIO_ENOBUFS) or a signal came in
 * (MIO_EINTR).  Keep the data and try again shortly, on a timer: no event
 * may come to say when, since the socket's readiness did not change.  Every
 * other error (MIO_EPIPE, MIO_ECONNRESET, MIO_ETIMEDOUT, ...) is the end of
 * that connection: close it.
 *
 * mio_tcp_accept adds errors that concern one queued client, not the
 * listener: it left before it was taken (MIO_ECONNABORTED, MIO_EPROTO), a
 * firewall refused it (MIO_EPERM), or the kernel was short of memory.  Skip
 * it and accept the next.  Out of descriptors (MIO_EMFILE, MIO_ENFILE) is
 * answered apart: shed the queue or stop accepting for a while.  Anything
 * else: stop accepting for a while and try again then, rather than spin on
 * the listener or leave it unwatched for good. */
#ifndef EXAMPLES_ERRORS_H
#define EXAMPLES_ERRORS_H

#include "mio.h"

/* How long a transient failure waits before the next try. */
#define RETRY_NS   (10 * MIO_MSEC)
/* How long a listener rests after accept failed for want of descriptors
 * (or for a reason not listed here). */
#define BACKOFF_NS (100 * MIO_MSEC)

/* Reads, writes and waits: true if the same call may succeed later. */
static inline bool error_is_transient(int err)
{
    return err == MIO_EINTR || err == MIO_ENOMEM || err == MIO_ENOBUFS;
}

/* mio_tcp_accept: true if the error concerned one client (skip it). */
static inline bool accept_error_skippable(int err)
{
    return err == MIO_ECONNABORTED || err == MIO_EPROTO || err == MIO_EPERM ||
           error_is_transient(err);
}

#endif
