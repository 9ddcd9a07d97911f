/* What the Unix backends share (wakefd.c): the wake-up descriptor, an
 * eventfd where the OS has one (rfd == wfd), else a pipe; and the answer for
 * a descriptor no registration names. */
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

/* The answer for mod/del of a descriptor no record names: MIO_EBADF if fd
 * is not open, else MIO_ENOENT. */
int mio__unix_fd_unknown(mio_fd fd);

#endif
