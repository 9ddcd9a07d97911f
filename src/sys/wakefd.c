/* What the Unix backends share: the wake-up descriptor (epoll, poll, and
 * kqueue where EVFILT_USER is missing: an eventfd on Linux, a pipe
 * elsewhere), and the check of a descriptor no registration names. */
#include "wakefd.h"

#include <fcntl.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

int mio__wakefd_open(struct mio_wakefd *w)
{
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return mio__err();
    w->rfd = w->wfd = fd;
    return 0;
#else
    int fds[2];
#if defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || defined(__DragonFly__)
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return mio__err();
#else
    int i;
    if (pipe(fds) < 0)
        return mio__err();
    for (i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 ||
            fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) < 0) {
            int err = mio__err();
            close(fds[0]);
            close(fds[1]);
            return err;
        }
    }
#endif
    w->rfd = fds[0];
    w->wfd = fds[1];
    return 0;
#endif
}

int mio__wakefd_signal(int wfd)
{
    int saved = errno;  /* callable from signal handlers: leave errno alone */
    int err = 0;
#ifdef __linux__
    uint64_t one = 1;
    while (write(wfd, &one, sizeof one) < 0) {
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            err = mio__err();
            break;
        }
        /* The counter is at its maximum: empty it and count again. */
        uint64_t drop;
        if (read(wfd, &drop, sizeof drop) < 0 && errno != EAGAIN) {
            err = mio__err();
            break;
        }
    }
#else
    char one = 1;
    /* A full pipe already holds a wake-up: nothing more to say. */
    while (write(wfd, &one, 1) < 0 && errno == EINTR)
        ;
#endif
    errno = saved;
    return err;
}

void mio__wakefd_drain(int rfd)
{
    char buf[64];
    for (;;) {
        ssize_t r = read(rfd, buf, sizeof buf);
        if (r > 0 || (r < 0 && errno == EINTR))
            continue;
        break;
    }
}

void mio__wakefd_close(struct mio_wakefd *w)
{
    if (w->wfd >= 0 && w->wfd != w->rfd)
        close(w->wfd);
    if (w->rfd >= 0)
        close(w->rfd);
    w->rfd = w->wfd = -1;
}

int mio__unix_fd_unknown(mio_fd fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF ? MIO_EBADF : MIO_ENOENT;
}
