/* Non-blocking sockets and pipes on POSIX.
 *
 * Every descriptor is created non-blocking and close-on-exec in the same call
 * where the OS allows it (no window for a concurrent fork+exec to inherit it).
 * Every send path uses MSG_NOSIGNAL; pipes, which have no such flag, write with
 * SIGPIPE blocked for the calling thread.  An I/O call that leaves its
 * direction possibly drained (EAGAIN, a short transfer, an error) tells the
 * polls that emulate edge triggers (mio__io_eagain), as mio.h promises.
 *
 * Out of descriptors, accept cannot take a connection off the queue, so a
 * listener would stay readable forever (a level registration spins, an edge
 * one stalls with the client left hanging).  mio_tcp_shed gives up a
 * process-wide reserve descriptor, opened with the first listener, for a
 * moment to accept and close what is queued; a mutex keeps two threads from
 * using it at once. */
#include "sys.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__) || defined(__DragonFly__)
#define HAVE_SOCK_FLAGS 1   /* SOCK_NONBLOCK|SOCK_CLOEXEC, accept4, pipe2 */
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0      /* Apple: SO_NOSIGPIPE is set at creation instead */
#endif

_Static_assert(sizeof(mio_iovec) == sizeof(struct iovec) &&
               offsetof(mio_iovec, base) == offsetof(struct iovec, iov_base) &&
               offsetof(mio_iovec, len) == offsetof(struct iovec, iov_len),
               "mio_iovec has the layout of struct iovec");

/* ---- descriptor set-up ---- */

#ifndef HAVE_SOCK_FLAGS
static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return mio__err();
#ifdef SO_NOSIGPIPE
    {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return 0;
}
#endif

static int new_socket(int family, int type)
{
    int fd;
#ifdef HAVE_SOCK_FLAGS
    fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mio__err();
#else
    int err;
    fd = socket(family, type, 0);
    if (fd < 0)
        return mio__err();
    err = set_flags(fd);
    if (err < 0) {
        close(fd);
        return err;
    }
#endif
    return fd;
}

static int check_addr(const mio_addr *a)
{
    if (a == NULL)
        return MIO_EINVAL;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        return a->len == sizeof(struct sockaddr_in) ? 0 : MIO_EINVAL;
    case AF_INET6:
        return a->len == sizeof(struct sockaddr_in6) ? 0 : MIO_EINVAL;
    case AF_UNIX:
        return a->len > offsetof(struct sockaddr_un, sun_path) &&
               a->len <= sizeof(struct sockaddr_un) ? 0 : MIO_EINVAL;
    default:
        return MIO_EAFNOSUPPORT;
    }
}

/* A failed call's error, EWOULDBLOCK spelt MIO_EAGAIN.  Any failure re-arms
 * an emulated edge of `dir`: after EAGAIN the next arrival is a new edge, and
 * after another error (a connection aborted before accept, a transient
 * ENOBUFS) the next call may well succeed, so whatever is still or again
 * ready is reported, as a kernel edge would report the next arrival. */
static int io_error(mio_fd fd, uint32_t dir)
{
    int err = mio__err();
    mio__io_eagain(fd, dir);
    return err == -EWOULDBLOCK ? MIO_EAGAIN : err;
}

/* ---- the reserve descriptor for accept under EMFILE ---- */

static pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;
static int reserve_fd = -1;
static atomic_bool reserve_lost;    /* taking it back failed: retry later */

static int open_reserve(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Called with each new listener: the reserve is taken while descriptors are
 * still to be had (a failure here only leaves EMFILE unanswered). */
static void reserve_ensure(void)
{
    pthread_mutex_lock(&reserve_lock);
    if (reserve_fd < 0)
        reserve_fd = open_reserve();
    atomic_store(&reserve_lost, reserve_fd < 0);
    pthread_mutex_unlock(&reserve_lock);
}

static int accept_raw(mio_fd listener, struct sockaddr_storage *ss, socklen_t *len)
{
    int fd;
#ifdef HAVE_SOCK_FLAGS
    do
        fd = accept4(listener, (struct sockaddr *)ss, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
#else
    do
        fd = accept(listener, (struct sockaddr *)ss, len);
    while (fd < 0 && errno == EINTR);
    if (fd >= 0) {
        int err = set_flags(fd);
        if (err < 0) {
            close(fd);
            errno = -err;
            return -1;
        }
    }
#endif
    return fd;
}

int mio_tcp_shed(mio_fd listener)
{
    int dropped = 0, err;

    pthread_mutex_lock(&reserve_lock);
    if (reserve_fd >= 0) {
        close(reserve_fd);
        reserve_fd = -1;
    }
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept_raw(listener, &ss, &len);
        if (fd >= 0) {
            close(fd);
            dropped++;
            continue;
        }
        err = mio__err();
        if (err != MIO_ECONNABORTED)
            break;
    }
    /* Another thread may have taken the number we freed: then accept said
     * EMFILE again, the queue stays, and the reserve comes back at the next
     * accept that finds a descriptor free. */
    reserve_fd = open_reserve();
    atomic_store(&reserve_lost, reserve_fd < 0);
    pthread_mutex_unlock(&reserve_lock);
    mio__io_eagain(listener, MIO_READABLE);
    if (err != MIO_EAGAIN && err != -EWOULDBLOCK)
        return err;
    return dropped;
}

/* The checks every TCP/UDP constructor makes. */
static int inet_check(const mio_addr *addr, mio_fd *out)
{
    int err = check_addr(addr);

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    if (err < 0)
        return err;
    return addr->u.sa.sa_family == AF_UNIX ? MIO_EAFNOSUPPORT : 0;
}

/* ---- stream sockets: TCP and Unix ---- */

/* A stream socket listening on sa.  TCP listeners rebind over TIME_WAIT
 * (SO_REUSEADDR). */
static int listen_on(const struct sockaddr *sa, socklen_t len, int backlog, mio_fd *out)
{
    int one = 1, err, fd = new_socket(sa->sa_family, SOCK_STREAM);

    if (fd < 0)
        return fd;
    if ((sa->sa_family != AF_UNIX &&
         setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
        bind(fd, sa, len) < 0 || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        err = mio__err();
        close(fd);
        return err;
    }
    reserve_ensure();
    *out = fd;
    return 0;
}

/* A stream socket with a connect to sa started.  EINTR: the connect goes
 * on in the background, like EINPROGRESS. */
static int connect_to(const struct sockaddr *sa, socklen_t len, mio_fd *out)
{
    int err, fd = new_socket(sa->sa_family, SOCK_STREAM);

    if (fd < 0)
        return fd;
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS && errno != EINTR) {
        err = mio__err();
        close(fd);
        /* A full backlog on a Unix listener: try again later. */
        return err == -EWOULDBLOCK ? MIO_EAGAIN : err;
    }
    *out = fd;
    return 0;
}

/* ---- TCP ---- */

int mio_tcp_listen(const mio_addr *addr, int backlog, mio_fd *out)
{
    int err = inet_check(addr, out);
    return err < 0 ? err : listen_on(&addr->u.sa, addr->len, backlog, out);
}

int mio_tcp_accept(mio_fd listener, mio_fd *out, mio_addr *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd;

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    fd = accept_raw(listener, &ss, &len);
    if (fd < 0)
        return io_error(listener, MIO_READABLE);
    if (atomic_load_explicit(&reserve_lost, memory_order_relaxed))
        reserve_ensure();
    if (peer != NULL)
        mio__fill_addr(peer, &ss, len);
    *out = fd;
    return 0;
}

int mio_tcp_connect(const mio_addr *addr, mio_fd *out)
{
    int err = inet_check(addr, out);
    return err < 0 ? err : connect_to(&addr->u.sa, addr->len, out);
}

int mio_tcp_set_nodelay(mio_fd fd, bool on)
{
    int v = on ? 1 : 0;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0 ? mio__err() : 0;
}

/* ---- UDP ---- */

int mio_udp_bind(const mio_addr *addr, mio_fd *out)
{
    int fd, err = inet_check(addr, out);

    if (err < 0)
        return err;
    fd = new_socket(addr->u.sa.sa_family, SOCK_DGRAM);
    if (fd < 0)
        return fd;
    if (bind(fd, &addr->u.sa, addr->len) < 0) {
        err = mio__err();
        close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

int mio_udp_connect(mio_fd fd, const mio_addr *peer)
{
    int err = check_addr(peer);
    if (err < 0)
        return err;
    return connect(fd, &peer->u.sa, peer->len) < 0 ? mio__err() : 0;
}

ssize_t mio_udp_send_to(mio_fd fd, const void *buf, size_t len, const mio_addr *to)
{
    ssize_t n;

    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    if (to != NULL && check_addr(to) < 0)
        return MIO_EINVAL;
    do
        n = sendto(fd, buf, len, MSG_NOSIGNAL, to != NULL ? &to->u.sa : NULL,
                   to != NULL ? to->len : 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? io_error(fd, MIO_WRITABLE) : n;
}

ssize_t mio_udp_recv(mio_fd fd, void *buf, size_t len, mio_addr *from, bool *truncated)
{
    struct sockaddr_storage ss;
    struct iovec iov;
    struct msghdr msg;
    ssize_t n;

    if (truncated != NULL)
        *truncated = false;
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    iov.iov_base = buf;
    iov.iov_len = len;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &ss;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    do {
        msg.msg_namelen = sizeof ss;
        n = recvmsg(fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return io_error(fd, MIO_READABLE);
    if (truncated != NULL)
        *truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    if (from != NULL)
        mio__fill_addr(from, &ss, msg.msg_namelen);
    return n;
}

ssize_t mio_udp_recv_from(mio_fd fd, void *buf, size_t len, mio_addr *from)
{
    return mio_udp_recv(fd, buf, len, from, NULL);
}

/* ---- Unix sockets, pairs and pipes ---- */

int mio_unix_listen(const char *path, int backlog, mio_fd *out)
{
    mio__sockaddr_un un;
    socklen_t len;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    err = mio__unix_addr(path, &un, &len);
    return err < 0 ? err : listen_on((struct sockaddr *)&un, len, backlog, out);
}

int mio_unix_connect(const char *path, mio_fd *out)
{
    mio__sockaddr_un un;
    socklen_t len;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    err = mio__unix_addr(path, &un, &len);
    return err < 0 ? err : connect_to((struct sockaddr *)&un, len, out);
}

int mio_socketpair(mio_fd out[2])
{
    int fds[2];
    if (out == NULL)
        return MIO_EINVAL;
#ifdef HAVE_SOCK_FLAGS
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        return mio__err();
#else
    int err;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return mio__err();
    if ((err = set_flags(fds[0])) < 0 || (err = set_flags(fds[1])) < 0) {
        close(fds[0]);
        close(fds[1]);
        return err;
    }
#endif
    out[0] = fds[0];
    out[1] = fds[1];
    return 0;
}

int mio_pipe(mio_fd out[2])
{
    int fds[2];
    if (out == NULL)
        return MIO_EINVAL;
#ifdef HAVE_SOCK_FLAGS
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return mio__err();
#else
    int err;
    if (pipe(fds) < 0)
        return mio__err();
    if ((err = set_flags(fds[0])) < 0 || (err = set_flags(fds[1])) < 0) {
        close(fds[0]);
        close(fds[1]);
        return err;
    }
#ifdef F_SETNOSIGPIPE
    (void)fcntl(fds[1], F_SETNOSIGPIPE, 1);
#endif
#endif
    out[0] = fds[0];
    out[1] = fds[1];
    return 0;
}

/* ---- reading and writing ---- */

/* A transfer's result.  Less than asked means the fd was drained in that
 * direction (a stream's next arrival is a new edge), but for end of stream,
 * which stays true: re-arming there would report the same end again. */
static ssize_t io_result(ssize_t n, size_t want, mio_fd fd, uint32_t dir)
{
    if (n < 0)
        return io_error(fd, dir);
    if (n > 0 && (size_t)n < want)
        mio__io_eagain(fd, dir);
    return n;
}

static size_t iov_total(const mio_iovec *iov, int iovcnt)
{
    size_t total = 0;
    int i;
    for (i = 0; i < iovcnt; i++)
        total += iov[i].len;
    return total;
}

ssize_t mio_read(mio_fd fd, void *buf, size_t len)
{
    ssize_t n;
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return io_result(n, len, fd, MIO_READABLE);
}

ssize_t mio_readv(mio_fd fd, const mio_iovec *iov, int iovcnt)
{
    ssize_t n;
    if (iov == NULL || iovcnt < 0)
        return MIO_EINVAL;
    do
        n = readv(fd, (const struct iovec *)(const void *)iov, iovcnt);
    while (n < 0 && errno == EINTR);
    return io_result(n, iov_total(iov, iovcnt), fd, MIO_READABLE);
}

#ifdef __linux__
/* Whether SIGPIPE is pending for this thread itself, not only for the
 * process: sigpending() tells the union, /proc tells the thread's own set.
 * On any doubt, says yes (the caller then leaves SIGPIPE alone). */
static bool thread_has_sigpipe(void)
{
    char buf[4096], *at;
    ssize_t n;
    int fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return true;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    at = strstr(buf, "\nSigPnd:");
    if (at == NULL)
        return true;
    return (strtoull(at + 9, NULL, 16) >> (SIGPIPE - 1)) & 1;
}
#endif

/* A pipe has no MSG_NOSIGNAL: write with SIGPIPE blocked in this thread, and
 * consume the SIGPIPE our own write raised.  The kernel sends it to the
 * writing thread, where it merges with one already pending for that thread:
 * then there is nothing of ours to take.  One pending for the whole process
 * is apart, and the thread's own comes first to sigtimedwait, so ours is
 * taken and the process's stays.  Linux tells the two sets apart; elsewhere a
 * SIGPIPE already pending leaves ours pending too (mio.h says so). */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len, const mio_iovec *iov, int iovcnt)
{
    sigset_t pipe_set, old, pending;
    bool was_pending;
    ssize_t n;
    int saved;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
#ifdef __linux__
    if (was_pending)
        was_pending = thread_has_sigpipe();
#endif
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    do
        n = iov != NULL ? writev(fd, (const struct iovec *)(const void *)iov, iovcnt)
                        : write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    saved = errno;
    if (n < 0 && errno == EPIPE && !was_pending) {
#if defined(__APPLE__)
        int sig;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            sigwait(&pipe_set, &sig);
#else
        struct timespec zero = { 0, 0 };
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
#endif
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

ssize_t mio_write(mio_fd fd, const void *buf, size_t len)
{
    ssize_t n;
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    do
        n = send(fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK)
        n = write_nosigpipe(fd, buf, len, NULL, 0);
    return io_result(n, len, fd, MIO_WRITABLE);
}

ssize_t mio_writev(mio_fd fd, const mio_iovec *iov, int iovcnt)
{
    struct msghdr msg;
    ssize_t n;

    if (iov == NULL || iovcnt < 0)
        return MIO_EINVAL;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = (struct iovec *)(void *)(uintptr_t)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK)
        n = write_nosigpipe(fd, NULL, 0, iov, iovcnt);
    return io_result(n, iov_total(iov, iovcnt), fd, MIO_WRITABLE);
}

/* ---- the rest ---- */

int mio_shutdown(mio_fd fd, int how)
{
    static const int hows[] = { SHUT_RD, SHUT_WR, SHUT_RDWR };
    if (how < MIO_SHUT_RD || how > MIO_SHUT_RDWR)
        return MIO_EINVAL;
    return shutdown(fd, hows[how]) < 0 ? mio__err() : 0;
}

int mio_socket_error(mio_fd fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return mio__err();
    if (err != 0) {
        /* Read, the error is gone: an emulated edge muted by it comes back
         * for what the socket still has to say (a UDP socket's ICMP error
         * leaves it as usable as before). */
        mio__io_eagain(fd, MIO_READABLE);
        mio__io_eagain(fd, MIO_WRITABLE);
    }
    return -err;
}

int mio_close(mio_fd fd)
{
    if (fd < 0)
        return MIO_EBADF;
    mio__io_close(fd);
    /* Linux and the BSDs release the descriptor even when close says EINTR;
     * retrying could close a number another thread just got. */
    if (close(fd) < 0 && errno != EINTR)
        return mio__err();
    return 0;
}
