/* Sockets and pipes on POSIX: the OS calls under net.c.
 *
 * Every descriptor is created non-blocking and close-on-exec in the same call
 * where the OS allows it (no window for a concurrent fork+exec to inherit it).
 * Every send path uses MSG_NOSIGNAL; pipes, which have no such flag, write with
 * SIGPIPE blocked for the calling thread.
 *
 * Out of descriptors, accept cannot take a connection off the queue, so a
 * listener would stay readable forever (a level registration spins, an edge
 * one stalls with the client left hanging).  mio_tcp_shed gives up a
 * process-wide reserve descriptor, opened with the first listener, for a
 * moment to accept and close what is queued; a mutex keeps two threads from
 * using it at once. */
#include "net.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/filter.h>
#endif

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

/* The failed I/O call's error, EWOULDBLOCK spelt MIO_EAGAIN. */
static int io_err(void)
{
    int err = mio__err();
    return err == -EWOULDBLOCK ? MIO_EAGAIN : err;
}

int mio__os_net_init(void)
{
    return 0;
}

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

/* Both ends of a new pair set up, or both closed. */
static int set_pair_flags(int fds[2])
{
    int err;
    if ((err = set_flags(fds[0])) < 0 || (err = set_flags(fds[1])) < 0) {
        close(fds[0]);
        close(fds[1]);
        return err;
    }
    return 0;
}
#endif

int mio__os_socket(int family, int type, mio_fd *out)
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
    *out = fd;
    return 0;
}

/* A connected pair of Unix sockets of `type`, non-blocking, close-on-exec. */
static int unix_pair(int type, mio_fd out[2])
{
    int fds[2];
#ifdef HAVE_SOCK_FLAGS
    if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        return mio__err();
#else
    int err;
    if (socketpair(AF_UNIX, type, 0, fds) < 0)
        return mio__err();
    if ((err = set_pair_flags(fds)) < 0)
        return err;
#endif
    out[0] = fds[0];
    out[1] = fds[1];
    return 0;
}

int mio__os_socketpair(mio_fd out[2])
{
    return unix_pair(SOCK_STREAM, out);
}

int mio__os_pipe(mio_fd out[2])
{
    int fds[2];
#ifdef HAVE_SOCK_FLAGS
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return mio__err();
#else
    int err;
    if (pipe(fds) < 0)
        return mio__err();
    if ((err = set_pair_flags(fds)) < 0)
        return err;
#ifdef F_SETNOSIGPIPE
    (void)fcntl(fds[1], F_SETNOSIGPIPE, 1);
#endif
#endif
    out[0] = fds[0];
    out[1] = fds[1];
    return 0;
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

int mio__os_accept(mio_fd listener, struct sockaddr_storage *ss, socklen_t *len, mio_fd *out)
{
    int fd = accept_raw(listener, ss, len);

    if (fd < 0)
        return io_err();
    if (atomic_load_explicit(&reserve_lost, memory_order_relaxed))
        reserve_ensure();
    *out = fd;
    return 0;
}

int mio__os_shed(mio_fd listener)
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
    if (err != MIO_EAGAIN && err != -EWOULDBLOCK)
        return err;
    return dropped;
}

/* ---- binding, listening, connecting ---- */

int mio__os_allow_rebind(mio_fd fd)
{
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ? mio__err() : 0;
}

/* SO_REUSEPORT spreads connections over the sockets on Linux (3.9) and
 * DragonFly; FreeBSD (12) does it with SO_REUSEPORT_LB, its SO_REUSEPORT
 * giving every connection to one socket, as macOS, OpenBSD and NetBSD do. */
int mio__os_share_port(mio_fd fd)
{
#if defined(SO_REUSEPORT_LB)
    const int opt = SO_REUSEPORT_LB;
#elif defined(SO_REUSEPORT) && (defined(__linux__) || defined(__DragonFly__))
    const int opt = SO_REUSEPORT;
#else
    const int opt = 0;
#endif
    int one = 1;

    if (opt == 0)
        return MIO_ENOSYS;
    return setsockopt(fd, SOL_SOCKET, opt, &one, sizeof one) < 0 ? mio__err() : 0;
}

/* A classic BPF program for the sockets' group (Linux 4.5): the number of
 * the CPU handling the packet, modulo n, is the index of the socket that
 * gets the connection. */
int mio__os_steer_by_cpu(mio_fd fd, unsigned n)
{
#if defined(__linux__) && defined(SO_ATTACH_REUSEPORT_CBPF)
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_CPU)),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog;

    if (n == 0)
        return MIO_EINVAL;
    memset(&prog, 0, sizeof prog);      /* the padding after len goes to the kernel too */
    prog.len = sizeof code / sizeof code[0];
    prog.filter = code;
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0
               ? mio__err() : 0;
#else
    (void)fd;
    (void)n;
    return MIO_ENOSYS;
#endif
}

int mio__os_bind(mio_fd fd, const struct sockaddr *sa, socklen_t len)
{
    return bind(fd, sa, len) < 0 ? mio__err() : 0;
}

int mio__os_listen(mio_fd fd, int backlog)
{
    if (listen(fd, backlog) < 0)
        return mio__err();
    reserve_ensure();
    return 0;
}

int mio__os_connect(mio_fd fd, const struct sockaddr *sa, socklen_t len)
{
    return connect(fd, sa, len) < 0 ? mio__err() : 0;
}

/* EINTR: the connect goes on in the background, like EINPROGRESS. */
int mio__os_connect_start(mio_fd fd, const struct sockaddr *sa, socklen_t len)
{
    if (connect(fd, sa, len) == 0)
        return 1;
    if (errno != EINPROGRESS && errno != EINTR)
        return io_err();
    return 0;
}

int mio__os_unix_unstale(const char *path, const struct sockaddr *sa, socklen_t len)
{
    struct stat st;
    mio_fd probe = -1;
    int err, r;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : MIO_EADDRINUSE;
    if (!S_ISSOCK(st.st_mode))
        return MIO_EADDRINUSE;
    /* Non-blocking: a listener with a full backlog says EAGAIN, not
     * ECONNREFUSED, so a busy server's file is never taken for stale. */
    if ((err = mio__os_socket(AF_UNIX, SOCK_STREAM, &probe)) < 0)
        return err;
    r = connect(probe, sa, len) < 0 ? errno : 0;
    close(probe);
    if (r != ECONNREFUSED)
        return r == ENOENT ? 0 : MIO_EADDRINUSE;
    return unlink(path) < 0 && errno != ENOENT ? mio__err() : 0;
}

/* ---- options and state ---- */

int mio__os_set_nodelay(mio_fd fd, bool on)
{
    int v = on ? 1 : 0;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0 ? mio__err() : 0;
}

int mio__os_sockname(mio_fd fd, bool peer, struct sockaddr_storage *ss, socklen_t *len)
{
    int r = peer ? getpeername(fd, (struct sockaddr *)ss, len)
                 : getsockname(fd, (struct sockaddr *)ss, len);
    return r < 0 ? mio__err() : 0;
}

/* ---- errors a transfer took from SO_ERROR ----
 * A few sockets at a time at most (a failed connection is closed soon):
 * a small table under a mutex, off every path that succeeds.  Each entry
 * names its socket by descriptor and by inode, so that a number closed
 * without mio_close and reused never inherits an error. */

#define KEPT_MAX 64

static struct kept {
    int fd;
    dev_t dev;
    ino_t ino;
    int err;
} kept[KEPT_MAX];
static size_t kept_next;        /* the slot to reuse when all are taken */
static atomic_int kept_count;
static mio_mutex kept_lock = MIO_MUTEX_INIT;

static bool connection_error(int err)
{
    return err == MIO_ECONNREFUSED || err == MIO_ETIMEDOUT || err == MIO_EHOSTUNREACH ||
           err == MIO_ENETUNREACH;
}

static bool same_socket(const struct kept *k, const struct stat *st)
{
    return k->dev == st->st_dev && k->ino == st->st_ino;
}

/* fd's entry (locked), dropping it if its socket is not fd's any more. */
static struct kept *kept_find(int fd, const struct stat *st)
{
    size_t i;
    for (i = 0; i < KEPT_MAX; i++) {
        if (kept[i].err == 0 || kept[i].fd != fd)
            continue;
        if (st != NULL && same_socket(&kept[i], st))
            return &kept[i];
        kept[i].err = 0;
        atomic_fetch_sub_explicit(&kept_count, 1, memory_order_relaxed);
    }
    return NULL;
}

void mio__os_keep_error(mio_fd fd, int err)
{
    struct kept *k;
    struct stat st;
    int type = 0;
    socklen_t len = sizeof type;
    size_t i;

    if (!connection_error(err) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        type != SOCK_STREAM || fstat(fd, &st) < 0)
        return;
    mio_mutex_lock(&kept_lock);
    k = kept_find(fd, &st);
    for (i = 0; k == NULL && i < KEPT_MAX; i++)
        if (kept[i].err == 0)
            k = &kept[i];
    if (k == NULL) {
        k = &kept[kept_next];   /* full: the oldest goes */
        kept_next = (kept_next + 1) % KEPT_MAX;
        atomic_fetch_sub_explicit(&kept_count, 1, memory_order_relaxed);
    }
    if (k->err == 0)
        atomic_fetch_add_explicit(&kept_count, 1, memory_order_relaxed);
    k->fd = fd;
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    k->err = err;
    mio_mutex_unlock(&kept_lock);
}

int mio__os_kept_error(mio_fd fd, bool take)
{
    struct kept *k;
    struct stat st;
    int err = 0;

    if (atomic_load_explicit(&kept_count, memory_order_relaxed) == 0)
        return 0;
    mio_mutex_lock(&kept_lock);
    k = kept_find(fd, fstat(fd, &st) == 0 ? &st : NULL);
    if (k != NULL) {
        err = k->err;
        if (take) {
            k->err = 0;
            atomic_fetch_sub_explicit(&kept_count, 1, memory_order_relaxed);
        }
    }
    mio_mutex_unlock(&kept_lock);
    return err;
}

int mio__os_take_error(mio_fd fd, int *pending)
{
    int err = 0, k;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return mio__err();
    k = mio__os_kept_error(fd, true);
    *pending = err != 0 ? -err : k;
    return 0;
}

int mio__os_shutdown(mio_fd fd, int how)
{
    static const int hows[] = { SHUT_RD, SHUT_WR, SHUT_RDWR };
    return shutdown(fd, hows[how]) < 0 ? mio__err() : 0;
}

int mio__os_close(mio_fd fd)
{
    (void)mio__os_kept_error(fd, true);
    /* Linux and the BSDs release the descriptor even when close says EINTR;
     * retrying could close a number another thread just got. */
    if (close(fd) < 0 && errno != EINTR)
        return mio__err();
    return 0;
}

/* ---- transfers ---- */

static size_t iov_total(const mio_iovec *iov, int iovcnt)
{
    size_t total = 0;
    int i;
    for (i = 0; i < iovcnt; i++)
        total += iov[i].len;
    return total;
}

ssize_t mio__os_read(mio_fd fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? io_err() : n;
}

ssize_t mio__os_readv(mio_fd fd, const mio_iovec *iov, int iovcnt, size_t *want)
{
    ssize_t n;
    do
        n = readv(fd, (const struct iovec *)(const void *)iov, iovcnt);
    while (n < 0 && errno == EINTR);
    *want = iov_total(iov, iovcnt);
    return n < 0 ? io_err() : n;
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

ssize_t mio__os_write(mio_fd fd, const void *buf, size_t len)
{
    ssize_t n;
    do
        n = send(fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK)
        n = write_nosigpipe(fd, buf, len, NULL, 0);
    return n < 0 ? io_err() : n;
}

ssize_t mio__os_writev(mio_fd fd, const mio_iovec *iov, int iovcnt, size_t *want)
{
    struct msghdr msg;
    ssize_t n;

    memset(&msg, 0, sizeof msg);
    msg.msg_iov = (struct iovec *)(void *)(uintptr_t)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK)
        n = write_nosigpipe(fd, NULL, 0, iov, iovcnt);
    *want = iov_total(iov, iovcnt);
    return n < 0 ? io_err() : n;
}

ssize_t mio__os_sendto(mio_fd fd, const void *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen)
{
    ssize_t n;
    do
        n = sendto(fd, buf, len, MSG_NOSIGNAL, to, tolen);
    while (n < 0 && errno == EINTR);
    return n < 0 ? io_err() : n;
}

ssize_t mio__os_recvfrom(mio_fd fd, void *buf, size_t len, struct sockaddr_storage *from,
                         socklen_t *fromlen, bool *truncated)
{
    struct iovec iov;
    struct msghdr msg;
    ssize_t n;

    iov.iov_base = buf;
    iov.iov_len = len;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    do {
        msg.msg_namelen = *fromlen;
        n = recvmsg(fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return io_err();
    *truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    *fromlen = msg.msg_namelen;
    return n;
}

/* ---- datagram pairs ---- */

int mio__os_dgram_pair(mio_fd out[2])
{
    return unix_pair(SOCK_DGRAM, out);
}

/* ---- socket options ---- */

int mio__os_family(mio_fd fd, int *family)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
#ifdef SO_DOMAIN
    int v = 0;
    socklen_t vlen = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vlen) == 0) {
        *family = v;
        return 0;
    }
#endif
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return mio__err();
    *family = ss.ss_family;
    return 0;
}

/* An option the OS, or this kind of socket, does not have. */
static int opt_err(void)
{
    int err = mio__err();
    return err == -ENOPROTOOPT || err == -EOPNOTSUPP ? MIO_ENOSYS : err;
}

static int set_int(mio_fd fd, int level, int name, int v)
{
    return setsockopt(fd, level, name, &v, sizeof v) < 0 ? opt_err() : 0;
}

static int get_int(mio_fd fd, int level, int name, int *v)
{
    socklen_t len = sizeof *v;
    *v = 0;
    return getsockopt(fd, level, name, v, &len) < 0 ? opt_err() : 0;
}

/* IPv4's multicast TTL and loop: an int on Linux, a byte on the BSDs. */
#ifdef __linux__
typedef int mcast_byte;
#else
typedef unsigned char mcast_byte;
#endif

static int set_byte(mio_fd fd, int level, int name, int v)
{
    mcast_byte b = (mcast_byte)v;
    return setsockopt(fd, level, name, &b, sizeof b) < 0 ? opt_err() : 0;
}

static int get_byte(mio_fd fd, int level, int name, int *v)
{
    mcast_byte b = 0;
    socklen_t len = sizeof b;
    if (getsockopt(fd, level, name, &b, &len) < 0)
        return opt_err();
    *v = (int)b;
    return 0;
}

/* The path MTU modes of MIO_SO_DONTFRAG. */
static int set_dontfrag(mio_fd fd, int family, int v)
{
#if defined(IP_MTU_DISCOVER) && defined(IPV6_MTU_DISCOVER)
    static const int v4_modes[] = { IP_PMTUDISC_WANT, IP_PMTUDISC_DO, IP_PMTUDISC_PROBE };
    static const int v6_modes[] = { IPV6_PMTUDISC_WANT, IPV6_PMTUDISC_WANT, IPV6_PMTUDISC_PROBE };
    int err;
    if (family == AF_INET)
        return set_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, v4_modes[v]);
    if ((err = set_int(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, v6_modes[v])) < 0 ||
        (err = set_int(fd, IPPROTO_IPV6, IPV6_DONTFRAG, v != 0)) < 0)
        return err;
    (void)set_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, v4_modes[v]);   /* IPv4-mapped */
    return 0;
#else
    if (v == MIO_DONTFRAG_PROBE)
        return MIO_ENOSYS;
    if (family == AF_INET6)
        return set_int(fd, IPPROTO_IPV6, IPV6_DONTFRAG, v);
#ifdef IP_DONTFRAG
    return set_int(fd, IPPROTO_IP, IP_DONTFRAG, v);
#else
    return MIO_ENOSYS;
#endif
#endif
}

static int get_dontfrag(mio_fd fd, int family, int *v)
{
#if defined(IP_MTU_DISCOVER) && defined(IPV6_MTU_DISCOVER)
    int mode, err;
    if (family == AF_INET) {
        if ((err = get_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode)) < 0)
            return err;
        *v = mode == IP_PMTUDISC_DO ? 1 : mode == IP_PMTUDISC_PROBE ? MIO_DONTFRAG_PROBE : 0;
        return 0;
    }
    if ((err = get_int(fd, IPPROTO_IPV6, IPV6_DONTFRAG, v)) < 0 ||
        (err = get_int(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &mode)) < 0)
        return err;
    if (*v != 0)
        *v = mode == IPV6_PMTUDISC_PROBE ? MIO_DONTFRAG_PROBE : 1;
    return 0;
#else
    if (family == AF_INET6)
        return get_int(fd, IPPROTO_IPV6, IPV6_DONTFRAG, v);
#ifdef IP_DONTFRAG
    return get_int(fd, IPPROTO_IP, IP_DONTFRAG, v);
#else
    return MIO_ENOSYS;
#endif
#endif
}

/* The interface of IPv4 multicast, by index: Linux and FreeBSD take an
 * ip_mreqn, macOS IP_MULTICAST_IFINDEX. */
static int set_mcast_if4(mio_fd fd, int v)
{
#if defined(__linux__) || defined(__FreeBSD__)
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    mr.imr_ifindex = v;
    return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) < 0 ? opt_err() : 0;
#elif defined(IP_MULTICAST_IFINDEX)
    unsigned idx = (unsigned)v;
    return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IFINDEX, &idx, sizeof idx) < 0 ? opt_err() : 0;
#else
    (void)fd, (void)v;
    return MIO_ENOSYS;
#endif
}

static int get_mcast_if4(mio_fd fd, int *v)
{
#if defined(IP_MULTICAST_IFINDEX) && !defined(__linux__) && !defined(__FreeBSD__)
    unsigned idx = 0;
    socklen_t len = sizeof idx;
    if (getsockopt(fd, IPPROTO_IP, IP_MULTICAST_IFINDEX, &idx, &len) < 0)
        return opt_err();
    *v = (int)idx;
    return 0;
#else
    (void)fd, (void)v;
    return MIO_ENOSYS;      /* only the interface's address is told */
#endif
}

/* The family an IP option needs; the socket's own in *family. */
static int ip_family(mio_fd fd, int *family)
{
    int err = mio__os_family(fd, family);
    if (err < 0)
        return err;
    return *family == AF_INET || *family == AF_INET6 ? 0 : MIO_EAFNOSUPPORT;
}

#ifdef __APPLE__
#define KEEPIDLE_NAME TCP_KEEPALIVE
#elif defined(TCP_KEEPIDLE)
#define KEEPIDLE_NAME TCP_KEEPIDLE
#endif

/* The options that are one int at one level whatever the family: 1 with
 * *level and *name (and *flag: read back as 0 or 1), MIO_ENOSYS where this
 * OS lacks the option, 0 for the others. */
static int plain_option(int opt, int *level, int *name, bool *flag)
{
    *level = SOL_SOCKET;
    *flag = opt == MIO_SO_REUSEPORT || opt == MIO_SO_BROADCAST || opt == MIO_SO_KEEPALIVE;
    switch (opt) {
#ifdef SO_REUSEPORT
    case MIO_SO_REUSEPORT: *name = SO_REUSEPORT; return 1;
#else
    case MIO_SO_REUSEPORT: return MIO_ENOSYS;
#endif
    case MIO_SO_BROADCAST: *name = SO_BROADCAST; return 1;
    case MIO_SO_KEEPALIVE: *name = SO_KEEPALIVE; return 1;
    case MIO_SO_RCVBUF:    *name = SO_RCVBUF; return 1;
    case MIO_SO_SNDBUF:    *name = SO_SNDBUF; return 1;
    }
    *level = IPPROTO_TCP;
    switch (opt) {
#ifdef KEEPIDLE_NAME
    case MIO_SO_KEEPIDLE:  *name = KEEPIDLE_NAME; return 1;
#else
    case MIO_SO_KEEPIDLE: return MIO_ENOSYS;
#endif
#ifdef TCP_KEEPINTVL
    case MIO_SO_KEEPINTVL: *name = TCP_KEEPINTVL; return 1;
#else
    case MIO_SO_KEEPINTVL: return MIO_ENOSYS;
#endif
#ifdef TCP_KEEPCNT
    case MIO_SO_KEEPCNT:   *name = TCP_KEEPCNT; return 1;
#else
    case MIO_SO_KEEPCNT: return MIO_ENOSYS;
#endif
    }
    return 0;
}

int mio__os_sockopt_set(mio_fd fd, int opt, int v)
{
    int family = 0, level, name, err;
    bool flag;

    if ((err = plain_option(opt, &level, &name, &flag)) != 0)
        return err < 0 ? err : set_int(fd, level, name, v);
    if ((err = ip_family(fd, &family)) < 0)
        return err;
    switch (opt) {
    case MIO_SO_TTL:
        if (family == AF_INET)
            return set_int(fd, IPPROTO_IP, IP_TTL, v);
        if ((err = set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, v)) == 0)
            (void)set_int(fd, IPPROTO_IP, IP_TTL, v);
        return err;
    case MIO_SO_MULTICAST_TTL:
        if (family == AF_INET)
            return set_byte(fd, IPPROTO_IP, IP_MULTICAST_TTL, v);
        if ((err = set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, v)) == 0)
            (void)set_byte(fd, IPPROTO_IP, IP_MULTICAST_TTL, v);
        return err;
    case MIO_SO_MULTICAST_LOOP:
        if (family == AF_INET)
            return set_byte(fd, IPPROTO_IP, IP_MULTICAST_LOOP, v);
        if ((err = set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, v)) == 0)
            (void)set_byte(fd, IPPROTO_IP, IP_MULTICAST_LOOP, v);
        return err;
    case MIO_SO_MULTICAST_IF:
        if (family == AF_INET)
            return set_mcast_if4(fd, v);
        return set_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, v);
    case MIO_SO_V6ONLY:
        return family == AF_INET6 ? set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v) : MIO_EAFNOSUPPORT;
    case MIO_SO_DONTFRAG:
        return set_dontfrag(fd, family, v);
    }
    return MIO_EINVAL;
}

int mio__os_sockopt_get(mio_fd fd, int opt, int *v)
{
    int family = 0, level, name, err;
    bool flag;

    if ((err = plain_option(opt, &level, &name, &flag)) != 0) {
        if (err > 0 && (err = get_int(fd, level, name, v)) == 0 && flag)
            *v = *v != 0;
        return err;
    }
    if ((err = ip_family(fd, &family)) < 0)
        return err;
    switch (opt) {
    case MIO_SO_TTL:
        return family == AF_INET ? get_int(fd, IPPROTO_IP, IP_TTL, v)
                                 : get_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, v);
    case MIO_SO_MULTICAST_TTL:
        return family == AF_INET ? get_byte(fd, IPPROTO_IP, IP_MULTICAST_TTL, v)
                                 : get_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, v);
    case MIO_SO_MULTICAST_LOOP:
        err = family == AF_INET ? get_byte(fd, IPPROTO_IP, IP_MULTICAST_LOOP, v)
                                : get_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, v);
        if (err == 0)
            *v = *v != 0;
        return err;
    case MIO_SO_MULTICAST_IF:
        return family == AF_INET ? get_mcast_if4(fd, v)
                                 : get_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, v);
    case MIO_SO_V6ONLY:
        if (family != AF_INET6)
            return MIO_EAFNOSUPPORT;
        if ((err = get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v)) == 0)
            *v = *v != 0;
        return err;
    case MIO_SO_DONTFRAG:
        return get_dontfrag(fd, family, v);
    }
    return MIO_EINVAL;
}

int mio__os_multicast(mio_fd fd, bool join, const mio_addr *group, uint32_t ifindex)
{
#ifdef MCAST_JOIN_GROUP
    struct group_req req;
    int level = group->u.sa.sa_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;

    memset(&req, 0, sizeof req);
    req.gr_interface = ifindex;
    memcpy(&req.gr_group, &group->u.ss, group->len);
    if (setsockopt(fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &req, sizeof req) < 0)
        return opt_err();
    return 0;
#else
    (void)fd, (void)join, (void)group, (void)ifindex;
    return MIO_ENOSYS;
#endif
}
