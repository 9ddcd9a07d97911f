/* The wake-up descriptor of the Unix backends (wakefd.c): an eventfd where
 * the OS has one (rfd == wfd), else a pipe. */
#ifndef MIO_SYS_WAKEFD_H
#define MIO_SYS_WAKEFD_H

#include "../common.h"

struct mio_wakefd { int rfd, wfd; };

int  mio__wakefd_open(struct mio_wakefd *w);
/* Async-signal-safe. */
int  mio__wakefd_signal(int wfd);
/* Empties it, so that level-style pollers stop reporting it. */
void mio__wakefd_drain(int rfd);
void mio__wakefd_close(struct mio_wakefd *w);

#endif
