/* Non-blocking sockets on Windows, through Winsock.
 *
 * Every socket is created overlapped (so AFD can poll it), non-inheritable
 * and non-blocking.  Windows has no pipes or socketpairs that a socket poller
 * can watch: mio_socketpair is two loopback TCP sockets, mio_pipe and Unix
 * sockets are MIO_ENOSYS.  An I/O call that leaves its direction possibly
 * drained (would-block, a short transfer, an error) tells the polls that
 * emulate edge triggers (mio__io_eagain), as on POSIX. */
#include "sys/win.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* SIO_UDP_CONNRESET: stop a UDP socket from failing its next receive because
 * an earlier send drew an ICMP port-unreachable (POSIX never reports it). */
#define SIO_UDP_CONNRESET_ 0x9800000CUL

#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif

/* Scatter/gather arrays are converted on the stack; longer ones are cut
 * (a short transfer, which callers of readv/writev handle anyway). */
#define MAX_WSABUFS 64

/* ---- errors ---- */

int mio__win_error(unsigned long code)
{
    switch (code) {
    case 0: return 0;
    case WSAEWOULDBLOCK:
    case WSAEINPROGRESS:
    case WSAEALREADY: return MIO_EAGAIN;
    case WSAEINTR:
    case ERROR_OPERATION_ABORTED: return MIO_EINTR;
    case WSAEBADF:
    case ERROR_INVALID_HANDLE: return MIO_EBADF;
    case WSAENOTSOCK: return MIO_EBADF;     /* closed, or never a socket */
    case WSAEMFILE:
    case ERROR_TOO_MANY_OPEN_FILES: return MIO_EMFILE;
    case WSAENOBUFS:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return MIO_ENOMEM;
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED:
    case ERROR_PORT_UNREACHABLE: return MIO_ECONNREFUSED;
    case WSAECONNRESET:
    case WSAENETRESET:
    case ERROR_NETNAME_DELETED: return MIO_ECONNRESET;
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED: return MIO_ECONNABORTED;
    case WSAESHUTDOWN:
    case ERROR_BROKEN_PIPE: return MIO_EPIPE;
    case WSAEADDRINUSE: return MIO_EADDRINUSE;
    case WSAEADDRNOTAVAIL: return MIO_EADDRNOTAVAIL;
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT: return MIO_EAFNOSUPPORT;
    case WSAENAMETOOLONG: return MIO_ENAMETOOLONG;
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT:
    case WAIT_TIMEOUT: return MIO_ETIMEDOUT;
    case WSAENOTCONN: return MIO_ENOTCONN;
    case WSAEISCONN: return MIO_EISCONN;
    case WSAEACCES:
    case ERROR_ACCESS_DENIED: return MIO_EACCES;
    case WSAEMSGSIZE: return MIO_EMSGSIZE;
    case WSAENETUNREACH:
    case ERROR_NETWORK_UNREACHABLE: return MIO_ENETUNREACH;
    case WSAEHOSTUNREACH:
    case ERROR_HOST_UNREACHABLE: return MIO_EHOSTUNREACH;
    case WSAEDESTADDRREQ: return MIO_EDESTADDRREQ;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_NOT_FOUND: return MIO_ENOENT;
    case WSAEOPNOTSUPP:
    case ERROR_NOT_SUPPORTED: return MIO_ENOSYS;
    case WSAEINVAL:
    case WSAEFAULT:
    case WSAENOPROTOOPT:
    case WSANOTINITIALISED:
    case ERROR_INVALID_PARAMETER: return MIO_EINVAL;
    default: return -EIO;
    }
}

int mio__wsa_err(void)
{
    return mio__win_error((unsigned long)WSAGetLastError());
}

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_result;

static BOOL CALLBACK wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    WSADATA data;
    int rc;
    (void)once;
    (void)param;
    (void)ctx;
    /* Never cleaned up: sockets may live as long as the process. */
    rc = WSAStartup(MAKEWORD(2, 2), &data);
    wsa_result = rc != 0 ? mio__win_error((unsigned long)rc) : 0;
    return TRUE;
}

int mio__wsa_init(void)
{
    InitOnceExecuteOnce(&wsa_once, wsa_start, NULL, NULL);
    return wsa_result;
}

/* A failed call's error; any failure re-arms an emulated edge of `dir` (see
 * net.c's io_error for why). */
static int io_error(mio_fd fd, uint32_t dir)
{
    int err = mio__wsa_err();
    mio__io_eagain(fd, dir);
    return err;
}

/* ---- socket set-up ---- */

static int set_nonblocking(SOCKET s)
{
    u_long on = 1;
    return ioctlsocket(s, FIONBIO, &on) == SOCKET_ERROR ? mio__wsa_err() : 0;
}

static int new_socket(int family, int type, int protocol, SOCKET *out)
{
    SOCKET s;
    int err = mio__wsa_init();

    if (err < 0)
        return err;
    s = WSASocketW(family, type, protocol, NULL, 0,
                   WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
        /* Before Windows 7 SP1 the flag is unknown: clear it afterwards. */
        s = WSASocketW(family, type, protocol, NULL, 0, WSA_FLAG_OVERLAPPED);
        if (s != INVALID_SOCKET)
            (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    }
    if (s == INVALID_SOCKET)
        return mio__wsa_err();
    err = set_nonblocking(s);
    if (err < 0) {
        closesocket(s);
        return err;
    }
    if (type == SOCK_DGRAM) {
        BOOL off = FALSE;
        DWORD bytes;
        (void)WSAIoctl(s, SIO_UDP_CONNRESET_, &off, sizeof off, NULL, 0, &bytes, NULL, NULL);
    }
    *out = s;
    return 0;
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
    default:
        return MIO_EAFNOSUPPORT;
    }
}

/* A listening stream socket (TCP, or AF_UNIX where Windows has it). */
static int listen_on(const struct sockaddr *sa, int len, int backlog, mio_fd *out)
{
    SOCKET s;
    int err = new_socket(sa->sa_family, SOCK_STREAM, 0, &s);

    if (err < 0)
        return err;
    /* SO_REUSEADDR means "steal the port" on Windows; what POSIX means by it
     * (rebinding over TIME_WAIT) is Windows' default: not set. */
    if (bind(s, sa, len) == SOCKET_ERROR ||
        listen(s, backlog > 0 ? backlog : SOMAXCONN) == SOCKET_ERROR) {
        err = mio__wsa_err();
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

/* Starts a non-blocking connect; completion shows as WRITABLE or ERROR. */
static int connect_to(const struct sockaddr *sa, int len, mio_fd *out)
{
    SOCKET s;
    int err = new_socket(sa->sa_family, SOCK_STREAM, 0, &s);

    if (err < 0)
        return err;
    if (connect(s, sa, len) == SOCKET_ERROR && WSAGetLastError() != WSAEWOULDBLOCK) {
        err = mio__wsa_err();
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

int mio_tcp_listen(const mio_addr *addr, int backlog, mio_fd *out)
{
    int err = check_addr(addr);

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    return err < 0 ? err : listen_on(&addr->u.sa, addr->len, backlog, out);
}

int mio_tcp_accept(mio_fd listener, mio_fd *out, mio_addr *peer)
{
    struct sockaddr_storage ss;
    int len = sizeof ss, err;
    SOCKET s;

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    s = accept(listener, (struct sockaddr *)&ss, &len);
    if (s == INVALID_SOCKET)
        return io_error(listener, MIO_READABLE);
    /* The accepted socket takes the listener's non-blocking mode; the
     * inheritance flag is made sure of. */
    (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    err = set_nonblocking(s);
    if (err < 0) {
        closesocket(s);
        return err;
    }
    if (peer != NULL)
        mio__fill_addr(peer, &ss, len);
    *out = s;
    return 0;
}

/* Windows has no per-process descriptor limit to reserve against: shedding
 * is accepting and closing what is queued. */
int mio_tcp_shed(mio_fd listener)
{
    int dropped = 0;
    for (;;) {
        SOCKET s = accept(listener, NULL, NULL);
        if (s == INVALID_SOCKET) {
            int err = io_error(listener, MIO_READABLE);
            if (err == MIO_EAGAIN)
                return dropped;
            if (err == MIO_ECONNRESET || err == MIO_ECONNABORTED)
                continue;
            return err;
        }
        closesocket(s);
        dropped++;
    }
}

int mio_tcp_connect(const mio_addr *addr, mio_fd *out)
{
    int err = check_addr(addr);

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    return err < 0 ? err : connect_to(&addr->u.sa, addr->len, out);
}

int mio_tcp_set_nodelay(mio_fd fd, bool on)
{
    BOOL v = on ? TRUE : FALSE;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&v, sizeof v) == SOCKET_ERROR
               ? mio__wsa_err() : 0;
}

/* ---- UDP ---- */

int mio_udp_bind(const mio_addr *addr, mio_fd *out)
{
    SOCKET s;
    int err = check_addr(addr);

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    if (err < 0)
        return err;
    err = new_socket(addr->u.sa.sa_family, SOCK_DGRAM, IPPROTO_UDP, &s);
    if (err < 0)
        return err;
    if (bind(s, &addr->u.sa, addr->len) == SOCKET_ERROR) {
        err = mio__wsa_err();
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

int mio_udp_connect(mio_fd fd, const mio_addr *peer)
{
    int err = check_addr(peer);
    if (err < 0)
        return err;
    return connect(fd, &peer->u.sa, peer->len) == SOCKET_ERROR ? mio__wsa_err() : 0;
}

static int clamp_len(size_t len)
{
    return len > INT_MAX ? INT_MAX : (int)len;
}

ssize_t mio_udp_send_to(mio_fd fd, const void *buf, size_t len, const mio_addr *to)
{
    int n;

    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    if (to != NULL && check_addr(to) < 0)
        return MIO_EINVAL;
    n = sendto(fd, buf, clamp_len(len), 0, to != NULL ? &to->u.sa : NULL,
               to != NULL ? to->len : 0);
    return n == SOCKET_ERROR ? io_error(fd, MIO_WRITABLE) : n;
}

ssize_t mio_udp_recv(mio_fd fd, void *buf, size_t len, mio_addr *from, bool *truncated)
{
    struct sockaddr_storage ss;
    int slen = sizeof ss, n;

    if (truncated != NULL)
        *truncated = false;
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    n = recvfrom(fd, buf, clamp_len(len), 0, (struct sockaddr *)&ss, &slen);
    if (n == SOCKET_ERROR) {
        /* Winsock fills the buffer and fails; POSIX truncates quietly. */
        if (WSAGetLastError() != WSAEMSGSIZE)
            return io_error(fd, MIO_READABLE);
        n = clamp_len(len);
        if (truncated != NULL)
            *truncated = true;
    }
    if (from != NULL)
        mio__fill_addr(from, &ss, slen);
    return n;
}

ssize_t mio_udp_recv_from(mio_fd fd, void *buf, size_t len, mio_addr *from)
{
    return mio_udp_recv(fd, buf, len, from, NULL);
}

/* ---- Unix sockets, pairs and pipes ---- */

/* AF_UNIX stream sockets exist from Windows 10 1803 on; where they do not
 * (older Windows, wine) the socket call fails with MIO_EAFNOSUPPORT. */
int mio_unix_listen(const char *path, int backlog, mio_fd *out)
{
    mio__sockaddr_un un;
    socklen_t len;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    *out = MIO_INVALID_FD;
    err = mio__unix_addr(path, &un, &len);
    return err < 0 ? err : listen_on((const struct sockaddr *)&un, len, backlog, out);
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
    return err < 0 ? err : connect_to((const struct sockaddr *)&un, len, out);
}

int mio_pipe(mio_fd out[2])
{
    if (out == NULL)
        return MIO_EINVAL;
    out[0] = out[1] = MIO_INVALID_FD;
    return MIO_ENOSYS;
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* Two loopback TCP sockets.  The listener is private to this call but any
 * local process could connect to it in the meantime: the accepted peer must
 * be our own client. */
int mio_socketpair(mio_fd out[2])
{
    struct sockaddr_in addr, client_addr, peer_addr;
    SOCKET listener = INVALID_SOCKET, client = INVALID_SOCKET, server = INVALID_SOCKET;
    u_long off = 0;
    int len, err, tries;

    if (out == NULL)
        return MIO_EINVAL;
    out[0] = out[1] = MIO_INVALID_FD;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((err = new_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP, &listener)) < 0)
        return err;
    len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) == SOCKET_ERROR ||
        getsockname(listener, (struct sockaddr *)&addr, &len) == SOCKET_ERROR ||
        listen(listener, 1) == SOCKET_ERROR ||
        ioctlsocket(listener, FIONBIO, &off) == SOCKET_ERROR)
        goto fail;
    if ((err = new_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP, &client)) < 0)
        goto fail_err;
    /* Blocking for the handshake only: loopback completes it at once. */
    if (ioctlsocket(client, FIONBIO, &off) == SOCKET_ERROR ||
        connect(client, (struct sockaddr *)&addr, sizeof addr) == SOCKET_ERROR)
        goto fail;
    len = sizeof client_addr;
    if (getsockname(client, (struct sockaddr *)&client_addr, &len) == SOCKET_ERROR)
        goto fail;
    for (tries = 0; tries < 16; tries++) {
        len = sizeof peer_addr;
        server = accept(listener, (struct sockaddr *)&peer_addr, &len);
        if (server == INVALID_SOCKET)
            goto fail;
        if (len == (int)sizeof peer_addr && same_addr(&peer_addr, &client_addr))
            break;
        closesocket(server);
        server = INVALID_SOCKET;
    }
    if (server == INVALID_SOCKET) {
        err = MIO_ECONNABORTED;
        goto fail_err;
    }
    (void)SetHandleInformation((HANDLE)server, HANDLE_FLAG_INHERIT, 0);
    if ((err = set_nonblocking(client)) < 0 || (err = set_nonblocking(server)) < 0)
        goto fail_err;
    {
        BOOL on = TRUE;   /* small writes go out at once, as on a socketpair */
        (void)setsockopt(client, IPPROTO_TCP, TCP_NODELAY, (const char *)&on, sizeof on);
        (void)setsockopt(server, IPPROTO_TCP, TCP_NODELAY, (const char *)&on, sizeof on);
    }
    closesocket(listener);
    out[0] = client;
    out[1] = server;
    return 0;

fail:
    err = mio__wsa_err();
fail_err:
    if (server != INVALID_SOCKET)
        closesocket(server);
    if (client != INVALID_SOCKET)
        closesocket(client);
    closesocket(listener);
    return err;
}

/* ---- reading and writing ---- */

/* A transfer's result: as on POSIX, less than asked (but for end of stream)
 * re-arms an emulated edge. */
static ssize_t io_result(int n, size_t want, mio_fd fd, uint32_t dir)
{
    if (n == SOCKET_ERROR) {
        if (dir == MIO_READABLE && WSAGetLastError() == WSAESHUTDOWN)
            return 0;   /* our own read side is shut: end of stream, as on POSIX */
        return io_error(fd, dir);
    }
    if (n > 0 && (size_t)n < want)
        mio__io_eagain(fd, dir);
    return n;
}

ssize_t mio_read(mio_fd fd, void *buf, size_t len)
{
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    return io_result(recv(fd, buf, clamp_len(len), 0), (size_t)clamp_len(len), fd, MIO_READABLE);
}

ssize_t mio_write(mio_fd fd, const void *buf, size_t len)
{
    if (buf == NULL && len > 0)
        return MIO_EINVAL;
    return io_result(send(fd, buf, clamp_len(len), 0), (size_t)clamp_len(len), fd, MIO_WRITABLE);
}

/* Fills bufs from iov; returns how many, cutting the total below INT_MAX,
 * and that total in *want. */
static DWORD to_wsabufs(WSABUF *bufs, const mio_iovec *iov, int iovcnt, size_t *want)
{
    size_t total = 0;
    DWORD n = 0;
    int i;
    for (i = 0; i < iovcnt && n < MAX_WSABUFS; i++) {
        size_t len = iov[i].len;
        if (len > (size_t)INT_MAX - total)
            len = (size_t)INT_MAX - total;
        bufs[n].buf = iov[i].base;
        bufs[n].len = (ULONG)len;
        n++;
        total += len;
        if (total == (size_t)INT_MAX)
            break;
    }
    *want = total;
    return n;
}

ssize_t mio_readv(mio_fd fd, const mio_iovec *iov, int iovcnt)
{
    WSABUF bufs[MAX_WSABUFS];
    DWORD count, bytes = 0, flags = 0;
    size_t want;

    if (iov == NULL || iovcnt < 0)
        return MIO_EINVAL;
    count = to_wsabufs(bufs, iov, iovcnt, &want);
    if (WSARecv(fd, bufs, count, &bytes, &flags, NULL, NULL) == SOCKET_ERROR)
        return io_result(SOCKET_ERROR, want, fd, MIO_READABLE);
    return io_result((int)bytes, want, fd, MIO_READABLE);
}

ssize_t mio_writev(mio_fd fd, const mio_iovec *iov, int iovcnt)
{
    WSABUF bufs[MAX_WSABUFS];
    DWORD count, bytes = 0;
    size_t want;

    if (iov == NULL || iovcnt < 0)
        return MIO_EINVAL;
    count = to_wsabufs(bufs, iov, iovcnt, &want);
    if (WSASend(fd, bufs, count, &bytes, 0, NULL, NULL) == SOCKET_ERROR)
        return io_result(SOCKET_ERROR, want, fd, MIO_WRITABLE);
    return io_result((int)bytes, want, fd, MIO_WRITABLE);
}

/* ---- the rest ---- */

int mio_shutdown(mio_fd fd, int how)
{
    static const int hows[] = { SD_RECEIVE, SD_SEND, SD_BOTH };
    if (how < MIO_SHUT_RD || how > MIO_SHUT_RDWR)
        return MIO_EINVAL;
    return shutdown(fd, hows[how]) == SOCKET_ERROR ? mio__wsa_err() : 0;
}

int mio_socket_error(mio_fd fd)
{
    int err = 0, len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) == SOCKET_ERROR)
        return mio__wsa_err();
    if (err != 0) {
        /* Winsock keeps the error after a read, but lets it be set: clear it,
         * as POSIX does on reading, and re-arm what it muted (as on POSIX). */
        int zero = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_ERROR, (const char *)&zero, sizeof zero);
        mio__io_eagain(fd, MIO_READABLE);
        mio__io_eagain(fd, MIO_WRITABLE);
    }
    return mio__win_error((unsigned long)err);
}

int mio_close(mio_fd fd)
{
    if (fd == MIO_INVALID_FD)
        return MIO_EBADF;
    mio__io_close(fd);
    if (closesocket(fd) == SOCKET_ERROR) {
        int err = mio__wsa_err();
        return err == MIO_ENOTSOCK ? MIO_EBADF : err;
    }
    return 0;
}
