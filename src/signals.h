/* Signal sources (signal.c) and what the OS layer beneath them provides
 * (sys/signal_posix.c, sys/signal_win.c); child processes (process.c) use
 * them for their SIGCHLD path. */
#ifndef MIO_SIGNALS_H
#define MIO_SIGNALS_H

#include "common.h"

/* Signal numbers are below this on every OS libmio runs on. */
#define MIO__NSIG 129

/* ---- signal.c, for the OS layer ---- */

/* A delivery of sig: counts it for every source watching it and wakes
 * those.  Async-signal-safe: atomics and a write(), no lock, no
 * allocation.  Returns whether a source watches sig. */
bool mio__signal_deliver(int sig);

/* ---- signal.c, for process.c ---- */

/* A source of SIGCHLD for one child, registered with p under token, that
 * wakes only once that child has exited (checked without reaping it, also
 * once as soon as the source is watching). */
int mio__signal_child(mio_poll *p, mio_token token, int64_t pid, mio_signal **out);

/* ---- the OS layer (sys/signal_posix.c, sys/signal_win.c) ---- */

/* 0 if sig can be watched, else MIO_EINVAL. */
int  mio__os_signal_check(int sig);
/* The first source of sig: the process's disposition becomes libmio's (the
 * previous one is kept).  Under the caller's lock, one call at a time. */
int  mio__os_signal_watch(int sig);
/* The last source of sig is gone: the kept disposition comes back. */
void mio__os_signal_unwatch(int sig);
/* Whether child pid has exited, without reaping it; async-signal-safe.
 * POSIX only. */
bool mio__os_child_exited(int64_t pid);

#endif
