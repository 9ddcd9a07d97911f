/* The networking calls, the same on every OS: argument checks, what a failed
 * call leaves in *out, Unix socket paths, and keeping emulated edges true.
 * The OS calls themselves are the OS layer's (sys/net.h: net_posix.c,
 * net_win.c).
 *
 * The polls that emulate edge triggers (poll(2), Windows) learn that a
 * direction may be drained only from the library's own I/O calls, as mio.h
 * promises: every call that may leave its direction drained says so through
 * mio__io_eagain, by the two rules of io_fail and io_result below. */
#include "addr.h"
#include "net_hooks.h"
#include "poll_hooks.h"
#include "sys/net.h"

#include <stdio.h>
#include <string.h>

/* ---- emulated edges ---- */

/* A failed call's error.  Any failure re-arms an emulated edge of `dir`:
 * after MIO_EAGAIN the next arrival is a new edge, and after another error
 * (a connection aborted before accept, a transient ENOBUFS) the next call may
 * well succeed, so whatever is still or again ready is reported, as a kernel
 * edge would report the next arrival. */
static int io_fail(int err, mio_fd fd, uint32_t dir)
{
    mio__io_eagain(fd, dir);
    return err;
}

/* A transfer's result.  Less than asked means the fd was drained in that
 * direction (a stream's next arrival is a new edge), but for end of stream,
 * which stays true: re-arming there would report the same end again.  A
 * connection's error that a transfer took from the kernel is kept (sys/net.h)
 * and read at end of stream instead of 0, which would say the peer closed
 * a connection that never was. */
static ssize_t io_result(ssize_t n, size_t want, mio_fd fd, uint32_t dir)
{
    if (n < 0) {
        if (n != MIO_EAGAIN)
            mio__os_keep_error(fd, (int)n);
        return io_fail((int)n, fd, dir);
    }
    if (n > 0 && (size_t)n < want) {
        mio__io_eagain(fd, dir);
    } else if (MIO_UNLIKELY(n == 0) && want > 0 && dir == MIO_READABLE) {
#if MIO_CHECKS
        mio__io_done(fd);
#endif
        return mio__os_kept_error(fd, false);
    }
    return n;
}

/* ---- sockets whose segmentation offload failed ----
 * mio_udp_send_batch stops offering segments to the OS on a socket where
 * the route refused them once: one bit per descriptor, in pages of 64Ki
 * bits allocated when a socket of their range first fails (never on the
 * way of a send that works, and never freed: they are few and small).  A
 * socket beyond the pages, or a page that could not be allocated, is
 * simply not remembered: each batch then tries the offload and falls back
 * again.  mio_close and the UDP constructors clear the bit. */

#define GSO_PAGE_BITS 16
#define GSO_PAGES     256
#define GSO_WORDS     ((1u << GSO_PAGE_BITS) / 32)

static _Atomic(atomic_uint *) gso_pages[GSO_PAGES];

/* fd's index: a descriptor number, or on Windows a SOCKET (a handle, a
 * multiple of 4). */
static bool gso_index(mio_fd fd, size_t *page, size_t *word, uint32_t *bit)
{
    size_t i;
#ifdef _WIN32
    i = (size_t)fd >> 2;
#else
    if (fd < 0)
        return false;
    i = (size_t)fd;
#endif
    if (i >> GSO_PAGE_BITS >= GSO_PAGES)
        return false;
    *page = i >> GSO_PAGE_BITS;
    *word = (i & ((1u << GSO_PAGE_BITS) - 1)) / 32;
    *bit = 1u << (i % 32);
    return true;
}

static bool gso_failed(mio_fd fd)
{
    size_t page, word;
    uint32_t bit;
    atomic_uint *words;

    if (!gso_index(fd, &page, &word, &bit))
        return false;
    words = atomic_load_explicit(&gso_pages[page], memory_order_acquire);
    return words != NULL && (atomic_load_explicit(&words[word], memory_order_relaxed) & bit);
}

static void gso_fail(mio_fd fd)
{
    size_t page, word, i;
    uint32_t bit;
    atomic_uint *words, *fresh;

    if (!gso_index(fd, &page, &word, &bit))
        return;
    words = atomic_load_explicit(&gso_pages[page], memory_order_acquire);
    if (words == NULL) {
        if ((fresh = mio__malloc(GSO_WORDS * sizeof *fresh)) == NULL)
            return;
        for (i = 0; i < GSO_WORDS; i++)
            atomic_init(&fresh[i], 0);
        if (atomic_compare_exchange_strong_explicit(&gso_pages[page], &words, fresh,
                                                    memory_order_acq_rel, memory_order_acquire))
            words = fresh;
        else
            mio__free(fresh);   /* another thread's page is in place */
    }
    atomic_fetch_or_explicit(&words[word], bit, memory_order_relaxed);
}

static void gso_forget(mio_fd fd)
{
    size_t page, word;
    uint32_t bit;
    atomic_uint *words;

    if (!gso_index(fd, &page, &word, &bit))
        return;
    words = atomic_load_explicit(&gso_pages[page], memory_order_acquire);
    if (words != NULL)
        atomic_fetch_and_explicit(&words[word], ~bit, memory_order_relaxed);
}

/* ---- argument checks ---- */

/* A call that makes descriptors needs out, which holds MIO_INVALID_FD until
 * the call succeeds.  Such a call may be a program's first, before any poll:
 * MIO_LOG is read here too, so that its trace points are on. */
static bool out_ready(mio_fd *out, int n)
{
    int i;
    mio__log_init();
    if (out == NULL)
        return false;
    for (i = 0; i < n; i++)
        out[i] = MIO_INVALID_FD;
    return true;
}

/* An address of a family the OS takes, with that family's length: IPv4,
 * IPv6, and Unix where datagram sockets may have one. */
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
        if (!MIO__OS_UNIX_DGRAM)
            return MIO_EAFNOSUPPORT;
        return (size_t)a->len > offsetof(mio__sockaddr_un, sun_path) &&
               (size_t)a->len <= sizeof(mio__sockaddr_un) ? 0 : MIO_EINVAL;
    default:
        return MIO_EAFNOSUPPORT;
    }
}

/* The checks every TCP/UDP constructor makes. */
static int inet_check(const mio_addr *addr, mio_fd *out)
{
    int err;

    if (!out_ready(out, 1))
        return MIO_EINVAL;
    err = check_addr(addr);
    if (err < 0)
        return err;
    return addr->u.sa.sa_family == AF_UNIX ? MIO_EAFNOSUPPORT : 0;
}

/* The checks every Unix socket constructor makes, and the path's address. */
static int unix_check(const char *path, mio_fd *out, mio__sockaddr_un *un, socklen_t *len)
{
    if (!out_ready(out, 1))
        return MIO_EINVAL;
    return mio__unix_addr(path, un, len);
}

/* ---- tracing ---- */

/* Room for any address mio_addr_format writes, a Unix path included. */
#define ADDR_TEXT (MIO_ADDR_STRLEN + sizeof(((mio__sockaddr_un *)0)->sun_path) + 2)

/* sa as text for a trace line, into buf (ADDR_TEXT bytes). */
static const char *addr_text(const struct sockaddr *sa, socklen_t len, char *buf)
{
    mio_addr a;

    memset(&a, 0, sizeof a);
    if ((size_t)len > sizeof a.u.ss)
        len = (socklen_t)sizeof a.u.ss;
    memcpy(&a.u.ss, sa, (size_t)len);
    a.len = len;
    if (mio_addr_format(&a, buf, ADDR_TEXT) < 0)
        snprintf(buf, ADDR_TEXT, "(an address of family %d)", (int)sa->sa_family);
    else if (buf[0] == '\0')
        snprintf(buf, ADDR_TEXT, "(an unnamed socket)");
    return buf;
}
#define ADDR(sa, len) addr_text((sa), (len), (char[ADDR_TEXT]){ 0 })

/* ---- making sockets ---- */

/* A new socket's set-up ended with err: the socket goes to *out, or is
 * closed. */
static int hand_out(mio_fd fd, int err, mio_fd *out)
{
    if (err < 0) {
        mio__os_close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

/* A stream socket listening on sa.  TCP listeners rebind over TIME_WAIT;
 * shared ones let other sockets bind the same address. */
static int listen_on(const struct sockaddr *sa, socklen_t len, int backlog, bool shared,
                     mio_fd *out)
{
    mio_fd fd;
    int err = mio__os_socket(sa->sa_family, SOCK_STREAM, &fd);

    if (err < 0)
        return err;
    if (sa->sa_family != AF_UNIX)
        err = mio__os_allow_rebind(fd);
    if (err == 0 && shared)
        err = mio__os_share_port(fd);
    if (err == 0)
        err = mio__os_bind(fd, sa, len);
    if (err == 0)
        err = mio__os_listen(fd, backlog > 0 ? backlog : SOMAXCONN);
    MIO_TRACE(MIO_LOG_DEBUG, "listen fd %lld on %s: %s", (long long)fd, ADDR(sa, len),
              MIO__RESULT(err));
    return hand_out(fd, err, out);
}

/* A stream socket with a connect to sa started; completion shows as
 * WRITABLE (or ERROR). */
static int connect_to(const struct sockaddr *sa, socklen_t len, mio_fd *out)
{
    mio_fd fd;
    int err = mio__os_socket(sa->sa_family, SOCK_STREAM, &fd);

    if (err < 0)
        return err;
    err = mio__os_connect_start(fd, sa, len);
    MIO_TRACE(MIO_LOG_DEBUG, "connect fd %lld to %s: %s", (long long)fd, ADDR(sa, len),
              err == 0 ? "in progress" : err > 0 ? "connected" : MIO__RESULT(err));
    return hand_out(fd, err, out);
}

/* ---- TCP ---- */

int mio_tcp_listen(const mio_addr *addr, int backlog, mio_fd *out)
{
    int err = inet_check(addr, out);
    return err < 0 ? err : listen_on(&addr->u.sa, addr->len, backlog, false, out);
}

int mio__tcp_listen_shared(const mio_addr *addr, int backlog, mio_fd *out)
{
    int err = inet_check(addr, out);
    return err < 0 ? err : listen_on(&addr->u.sa, addr->len, backlog, true, out);
}

int mio__tcp_steer_by_cpu(mio_fd fd, unsigned n)
{
    return mio__os_steer_by_cpu(fd, n);
}

int mio_accept(mio_fd listener, mio_fd *out, mio_addr *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    mio_fd fd;
    int err;

    if (!out_ready(out, 1))
        return MIO_EINVAL;
    err = mio__os_accept(listener, &ss, &len, &fd);
    if (err < 0) {
        /* Every drain ends in MIO_EAGAIN: only a trace-level event. */
        MIO_TRACE(err == MIO_EAGAIN ? MIO_LOG_TRACE : MIO_LOG_DEBUG,
                  "accept on listener %lld: %s", (long long)listener, MIO__RESULT(err));
        return io_fail(err, listener, MIO_READABLE);
    }
    MIO_TRACE(MIO_LOG_DEBUG, "accept fd %lld on listener %lld from %s", (long long)fd,
              (long long)listener, ADDR((const struct sockaddr *)&ss, len));
    if (peer != NULL)
        mio__fill_addr(peer, &ss, len);
    *out = fd;
    return 0;
}

int mio_tcp_accept(mio_fd listener, mio_fd *out, mio_addr *peer)
{
    return mio_accept(listener, out, peer);
}

int mio_tcp_shed(mio_fd listener)
{
    int n = mio__os_shed(listener);
    /* It stopped at the first failure: the queue's next client, or the one
     * still there, is a new edge. */
    mio__io_eagain(listener, MIO_READABLE);
    return n;
}

int mio_tcp_connect(const mio_addr *addr, mio_fd *out)
{
    int err = inet_check(addr, out);
    return err < 0 ? err : connect_to(&addr->u.sa, addr->len, out);
}

int mio_tcp_set_nodelay(mio_fd fd, bool on)
{
    return mio__os_set_nodelay(fd, on);
}

/* ---- UDP ---- */

int mio_udp_bind(const mio_addr *addr, mio_fd *out)
{
    mio_fd fd;
    int err = inet_check(addr, out);

    if (err < 0 || (err = mio__os_socket(addr->u.sa.sa_family, SOCK_DGRAM, &fd)) < 0)
        return err;
    gso_forget(fd);
    return hand_out(fd, mio__os_bind(fd, &addr->u.sa, addr->len), out);
}

int mio_udp_open(int family, mio_fd *out)
{
    mio_fd fd;
    int err;

    if (!out_ready(out, 1))
        return MIO_EINVAL;
    if (family != AF_INET && family != AF_INET6)
        return MIO_EAFNOSUPPORT;
    if ((err = mio__os_socket(family, SOCK_DGRAM, &fd)) < 0)
        return err;
    gso_forget(fd);
    *out = fd;
    return 0;
}

int mio_bind(mio_fd fd, const mio_addr *addr)
{
    int err = check_addr(addr);
    return err < 0 ? err : mio__os_bind(fd, &addr->u.sa, addr->len);
}

int mio_udp_connect(mio_fd fd, const mio_addr *peer)
{
    int err = check_addr(peer);
    return err < 0 ? err : mio__os_connect(fd, &peer->u.sa, peer->len);
}

ssize_t mio_udp_send_to(mio_fd fd, const void *buf, size_t len, const mio_addr *to)
{
    ssize_t n;

    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    if (to != NULL && check_addr(to) < 0)
        return MIO_EINVAL;
    n = mio__os_sendto(fd, buf, mio__os_io_len(len), to != NULL ? &to->u.sa : NULL,
                       to != NULL ? to->len : 0);
    /* A datagram goes whole or not at all: only a failure drains. */
    return n < 0 ? io_fail((int)n, fd, MIO_WRITABLE) : n;
}

ssize_t mio_udp_recv(mio_fd fd, void *buf, size_t len, mio_addr *from, bool *truncated)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    bool cut = false;
    ssize_t n;

    if (truncated != NULL)
        *truncated = false;
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    n = mio__os_recvfrom(fd, buf, mio__os_io_len(len), &ss, &sslen, &cut);
    if (n < 0)
        return io_fail((int)n, fd, MIO_READABLE);
    if (truncated != NULL)
        *truncated = cut;
    if (from != NULL)
        mio__fill_addr(from, &ss, sslen);
    return n;
}

ssize_t mio_udp_recv_from(mio_fd fd, void *buf, size_t len, mio_addr *from)
{
    return mio_udp_recv(fd, buf, len, from, NULL);
}

/* ---- Unix sockets, pairs and pipes ---- */

/* Where the OS has no AF_UNIX stream sockets (Windows before 10 1803, wine)
 * making the socket fails with MIO_EAFNOSUPPORT. */
int mio_unix_listen(const char *path, int backlog, mio_fd *out)
{
    mio__sockaddr_un un;
    socklen_t len;
    int err = unix_check(path, out, &un, &len);
    return err < 0 ? err : listen_on((const struct sockaddr *)&un, len, backlog, false, out);
}

int mio_unix_listen_flags(const char *path, int backlog, uint32_t flags, mio_fd *out)
{
    mio__sockaddr_un un;
    socklen_t len;
    int err = unix_check(path, out, &un, &len);

    if (err < 0)
        return err;
    if (flags & ~(uint32_t)MIO_UNIX_REMOVE_STALE)
        return MIO_EINVAL;
    err = listen_on((const struct sockaddr *)&un, len, backlog, false, out);
    /* An abstract name (no file) goes with its last socket: never stale. */
    if (err == MIO_EADDRINUSE && (flags & MIO_UNIX_REMOVE_STALE) && un.sun_path[0] != '\0' &&
        mio__os_unix_unstale(un.sun_path, (const struct sockaddr *)&un, len) == 0) {
        MIO_TRACE(MIO_LOG_INFO, "mio_unix_listen %s: removed a stale socket file", un.sun_path);
        err = listen_on((const struct sockaddr *)&un, len, backlog, false, out);
    }
    return err;
}

int mio_unix_connect(const char *path, mio_fd *out)
{
    mio__sockaddr_un un;
    socklen_t len;
    int err = unix_check(path, out, &un, &len);
    return err < 0 ? err : connect_to((const struct sockaddr *)&un, len, out);
}

int mio_socketpair(mio_fd out[2])
{
    return out_ready(out, 2) ? mio__os_socketpair(out) : MIO_EINVAL;
}

int mio_dgram_pair(mio_fd out[2])
{
    if (!out_ready(out, 2))
        return MIO_EINVAL;
    return MIO__OS_UNIX_DGRAM ? mio__os_dgram_pair(out) : MIO_EAFNOSUPPORT;
}

int mio_unix_dgram(const char *path, mio_fd *out)
{
    mio__sockaddr_un un;
    socklen_t len = 0;
    mio_fd fd;
    int err;

    if (!out_ready(out, 1))
        return MIO_EINVAL;
    if (path != NULL && (err = mio__unix_addr(path, &un, &len)) < 0)
        return err;
    if (!MIO__OS_UNIX_DGRAM)
        return MIO_EAFNOSUPPORT;
    if ((err = mio__os_socket(AF_UNIX, SOCK_DGRAM, &fd)) < 0)
        return err;
#ifdef __linux__
    /* "@": the family alone, which Linux answers with a fresh abstract
     * name of its choosing. */
    if (path != NULL && strcmp(path, "@") == 0)
        len = (socklen_t)offsetof(mio__sockaddr_un, sun_path);
#endif
    if (path != NULL)
        err = mio__os_bind(fd, (const struct sockaddr *)&un, len);
    return hand_out(fd, err, out);
}

int mio_pipe(mio_fd out[2])
{
    return out_ready(out, 2) ? mio__os_pipe(out) : MIO_EINVAL;
}

/* ---- reading and writing ---- */

ssize_t mio_read(mio_fd fd, void *buf, size_t len)
{
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    len = mio__os_io_len(len);
    return io_result(mio__os_read(fd, buf, len), len, fd, MIO_READABLE);
}

ssize_t mio_write(mio_fd fd, const void *buf, size_t len)
{
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    len = mio__os_io_len(len);
    return io_result(mio__os_write(fd, buf, len), len, fd, MIO_WRITABLE);
}

/* A vectored transfer: the OS call tells how much it asked for. */
static ssize_t vectored(ssize_t (*os_call)(mio_fd, const mio_iovec *, int, size_t *),
                        mio_fd fd, const mio_iovec *iov, int iovcnt, uint32_t dir)
{
    size_t want;
    ssize_t n;

    if (iov == NULL || iovcnt < 0)
        return MIO_EINVAL;
    n = os_call(fd, iov, iovcnt, &want);
    return io_result(n, want, fd, dir);
}

ssize_t mio_readv(mio_fd fd, const mio_iovec *iov, int iovcnt)
{
    return vectored(mio__os_readv, fd, iov, iovcnt, MIO_READABLE);
}

ssize_t mio_writev(mio_fd fd, const mio_iovec *iov, int iovcnt)
{
    return vectored(mio__os_writev, fd, iov, iovcnt, MIO_WRITABLE);
}

/* ---- datagram batches ---- */

/* An entry's local address: IPv4 or IPv6 of that family's length. */
static bool local_ok(const mio_addr *a)
{
    if (a->len == 0)
        return true;
    if (a->u.sa.sa_family == AF_INET)
        return a->len == sizeof(struct sockaddr_in);
    return a->u.sa.sa_family == AF_INET6 && a->len == sizeof(struct sockaddr_in6);
}

/* Every entry checked before anything is sent. */
static int check_send(const mio_datagram *d, size_t n)
{
    size_t i;
    int err;

    for (i = 0; i < n; i++) {
        if ((d[i].buf == NULL && d[i].len > 0) || d[i].ecn > MIO_ECN_CE || !local_ok(&d[i].local))
            return MIO_EINVAL;
        if (d[i].peer.len != 0 && (err = check_addr(&d[i].peer)) < 0)
            return err;
    }
    return 0;
}

ssize_t mio_udp_send_batch(mio_fd fd, mio_datagram *d, size_t n)
{
    bool gso, tried;
    ssize_t r;
    int err;

    if (d == NULL && n > 0)
        return MIO_EINVAL;
    if (n == 0)
        return 0;
    if ((err = check_send(d, n)) < 0)
        return err;
    gso = tried = !gso_failed(fd);
    r = mio__os_send_batch(fd, d, n, &gso);
    if (tried && !gso)
        gso_fail(fd);
    if (r < 0)
        return io_fail((int)r, fd, MIO_WRITABLE);
    /* Fewer than asked: the next entry met MIO_EAGAIN or an error. */
    if ((size_t)r < n)
        mio__io_eagain(fd, MIO_WRITABLE);
    return r;
}

ssize_t mio_udp_recv_batch(mio_fd fd, mio_datagram *d, size_t n)
{
    ssize_t r;
    size_t i;

    if (d == NULL && n > 0)
        return MIO_EINVAL;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (d[i].buf == NULL && d[i].size > 0)
            return MIO_EINVAL;
    r = mio__os_recv_batch(fd, d, n);
    if (r < 0)
        return io_fail((int)r, fd, MIO_READABLE);
    if ((size_t)r < n)
        mio__io_eagain(fd, MIO_READABLE);
    return r;
}

#define RECV_OPTIONS (MIO_UDP_RECV_ECN | MIO_UDP_RECV_LOCAL | MIO_UDP_GRO)

int mio_udp_enable(mio_fd fd, uint32_t what)
{
    if (what & ~(uint32_t)RECV_OPTIONS)
        return MIO_EINVAL;
    return what == 0 ? 0 : mio__os_udp_enable(fd, what, true);
}

int mio_udp_disable(mio_fd fd, uint32_t what)
{
    if (what & ~(uint32_t)RECV_OPTIONS)
        return MIO_EINVAL;
    return what == 0 ? 0 : mio__os_udp_enable(fd, what, false);
}

int mio_udp_caps(mio_fd fd, mio_udp_capabilities *out)
{
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    if ((err = mio__os_udp_caps(fd, out)) < 0)
        return err;
    if (gso_failed(fd)) {
        out->enabled &= ~MIO_UDP_GSO;
        out->gso_segments = 1;
    }
    return 0;
}

/* ---- the rest ---- */

int mio_shutdown(mio_fd fd, int how)
{
    if (how < MIO_SHUT_RD || how > MIO_SHUT_RDWR)
        return MIO_EINVAL;
    return mio__os_shutdown(fd, how);
}

int mio_socket_error(mio_fd fd)
{
    int pending, err = mio__os_take_error(fd, &pending);

    if (err < 0)
        return err;
    if (pending != 0) {
        /* Read, the error is gone: an emulated edge muted by it comes back
         * for what the socket still has to say (a UDP socket's ICMP error
         * leaves it as usable as before). */
        mio__io_eagain(fd, MIO_READABLE);
        mio__io_eagain(fd, MIO_WRITABLE);
    }
    return pending;
}

int mio_close(mio_fd fd)
{
    int err;

    if (mio__fd_invalid(fd))
        return MIO_EBADF;
    mio__io_close(fd);
    gso_forget(fd);
    err = mio__os_close(fd);
    MIO_TRACE(MIO_LOG_DEBUG, "close fd %lld: %s", (long long)fd, MIO__RESULT(err));
    return err;
}
