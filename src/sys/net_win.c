/* Sockets on Windows, through Winsock: the OS calls under net.c.
 *
 * Every socket is created overlapped (so AFD can poll it), non-inheritable
 * and non-blocking.  Windows has no pipes or socketpairs that a socket poller
 * can watch: a socketpair is two loopback TCP sockets, a pipe MIO_ENOSYS. */
#include "net.h"
#include "win.h"

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

int mio__os_net_init(void)
{
    return mio__wsa_init();
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

int mio__os_socket(int family, int type, mio_fd *out)
{
    return new_socket(family, type, type == SOCK_DGRAM ? IPPROTO_UDP : 0, out);
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* Two loopback TCP sockets.  The listener is private to this call but any
 * local process could connect to it in the meantime: the accepted peer must
 * be our own client. */
int mio__os_socketpair(mio_fd out[2])
{
    struct sockaddr_in addr, client_addr, peer_addr;
    SOCKET listener = INVALID_SOCKET, client = INVALID_SOCKET, server = INVALID_SOCKET;
    u_long off = 0;
    int len, err, tries;

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

int mio__os_pipe(mio_fd out[2])
{
    (void)out;
    return MIO_ENOSYS;
}

/* ---- accepting ---- */

int mio__os_accept(mio_fd listener, struct sockaddr_storage *ss, socklen_t *len, mio_fd *out)
{
    SOCKET s = accept(listener, (struct sockaddr *)ss, len);
    int err;

    if (s == INVALID_SOCKET)
        return mio__wsa_err();
    /* The accepted socket takes the listener's non-blocking mode; the
     * inheritance flag is made sure of. */
    (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    err = set_nonblocking(s);
    if (err < 0) {
        closesocket(s);
        return err;
    }
    *out = s;
    return 0;
}

/* Windows has no per-process descriptor limit to reserve against: shedding
 * is accepting and closing what is queued. */
int mio__os_shed(mio_fd listener)
{
    int dropped = 0;
    for (;;) {
        SOCKET s = accept(listener, NULL, NULL);
        if (s == INVALID_SOCKET) {
            int err = mio__wsa_err();
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

/* ---- binding, listening, connecting ---- */

/* SO_REUSEADDR means "steal the port" on Windows; what POSIX means by it
 * (rebinding over TIME_WAIT) is Windows' default: not set. */
int mio__os_allow_rebind(mio_fd fd)
{
    (void)fd;
    return 0;
}

/* Windows has no SO_REUSEPORT that spreads connections (SO_REUSEADDR lets
 * a second socket take the port over), nor a way to steer them. */
int mio__os_share_port(mio_fd fd)
{
    (void)fd;
    return MIO_ENOSYS;
}

int mio__os_steer_by_cpu(mio_fd fd, unsigned n)
{
    (void)fd;
    (void)n;
    return MIO_ENOSYS;
}

int mio__os_bind(mio_fd fd, const struct sockaddr *sa, socklen_t len)
{
    return bind(fd, sa, len) == SOCKET_ERROR ? mio__wsa_err() : 0;
}

int mio__os_listen(mio_fd fd, int backlog)
{
    return listen(fd, backlog) == SOCKET_ERROR ? mio__wsa_err() : 0;
}

int mio__os_connect(mio_fd fd, const struct sockaddr *sa, socklen_t len)
{
    return connect(fd, sa, len) == SOCKET_ERROR ? mio__wsa_err() : 0;
}

/* Completion shows as WRITABLE or ERROR. */
int mio__os_connect_start(mio_fd fd, const struct sockaddr *sa, socklen_t len)
{
    if (connect(fd, sa, len) != SOCKET_ERROR)
        return 1;
    if (WSAGetLastError() != WSAEWOULDBLOCK)
        return mio__wsa_err();
    return 0;
}

/* Winsock refuses a connect to a listener whose backlog is full as it
 * refuses one to a file nobody listens on: a live server's file could be
 * taken for stale, so it is left alone. */
int mio__os_unix_unstale(const char *path, const struct sockaddr *sa, socklen_t len)
{
    (void)path;
    (void)sa;
    (void)len;
    return MIO_EADDRINUSE;
}

/* ---- options and state ---- */

int mio__os_set_nodelay(mio_fd fd, bool on)
{
    BOOL v = on ? TRUE : FALSE;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&v, sizeof v) == SOCKET_ERROR
               ? mio__wsa_err() : 0;
}

int mio__os_sockname(mio_fd fd, bool peer, struct sockaddr_storage *ss, socklen_t *len)
{
    int r = peer ? getpeername(fd, (struct sockaddr *)ss, len)
                 : getsockname(fd, (struct sockaddr *)ss, len);
    return r == SOCKET_ERROR ? mio__wsa_err() : 0;
}

int mio__os_take_error(mio_fd fd, int *pending)
{
    int err = 0, len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) == SOCKET_ERROR)
        return mio__wsa_err();
    if (err != 0) {
        /* Winsock keeps the error after a read, but lets it be set: clear it,
         * as POSIX does on reading. */
        int zero = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_ERROR, (const char *)&zero, sizeof zero);
    }
    *pending = mio__win_error((unsigned long)err);
    return 0;
}

/* Winsock keeps SO_ERROR after a transfer reported it: nothing to keep. */
void mio__os_keep_error(mio_fd fd, int err)
{
    (void)fd;
    (void)err;
}

int mio__os_kept_error(mio_fd fd, bool take)
{
    (void)fd;
    (void)take;
    return 0;
}

int mio__os_shutdown(mio_fd fd, int how)
{
    static const int hows[] = { SD_RECEIVE, SD_SEND, SD_BOTH };
    return shutdown(fd, hows[how]) == SOCKET_ERROR ? mio__wsa_err() : 0;
}

int mio__os_close(mio_fd fd)
{
    if (closesocket(fd) == SOCKET_ERROR) {
        int err = mio__wsa_err();
        return err == MIO_ENOTSOCK ? MIO_EBADF : err;
    }
    return 0;
}

/* ---- transfers ---- */

/* A receive's failure; our own read side shut is end of stream, as on
 * POSIX. */
static ssize_t recv_err(void)
{
    return WSAGetLastError() == WSAESHUTDOWN ? 0 : mio__wsa_err();
}

ssize_t mio__os_read(mio_fd fd, void *buf, size_t len)
{
    int n = recv(fd, buf, (int)len, 0);
    return n == SOCKET_ERROR ? recv_err() : n;
}

ssize_t mio__os_write(mio_fd fd, const void *buf, size_t len)
{
    int n = send(fd, buf, (int)len, 0);
    return n == SOCKET_ERROR ? mio__wsa_err() : n;
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

ssize_t mio__os_readv(mio_fd fd, const mio_iovec *iov, int iovcnt, size_t *want)
{
    WSABUF bufs[MAX_WSABUFS];
    DWORD count, bytes = 0, flags = 0;

    count = to_wsabufs(bufs, iov, iovcnt, want);
    if (WSARecv(fd, bufs, count, &bytes, &flags, NULL, NULL) == SOCKET_ERROR)
        return recv_err();
    return (ssize_t)bytes;
}

ssize_t mio__os_writev(mio_fd fd, const mio_iovec *iov, int iovcnt, size_t *want)
{
    WSABUF bufs[MAX_WSABUFS];
    DWORD count, bytes = 0;

    count = to_wsabufs(bufs, iov, iovcnt, want);
    if (WSASend(fd, bufs, count, &bytes, 0, NULL, NULL) == SOCKET_ERROR)
        return mio__wsa_err();
    return (ssize_t)bytes;
}

ssize_t mio__os_sendto(mio_fd fd, const void *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen)
{
    int n = sendto(fd, buf, (int)len, 0, to, tolen);
    return n == SOCKET_ERROR ? mio__wsa_err() : n;
}

ssize_t mio__os_recvfrom(mio_fd fd, void *buf, size_t len, struct sockaddr_storage *from,
                         socklen_t *fromlen, bool *truncated)
{
    int n = recvfrom(fd, buf, (int)len, 0, (struct sockaddr *)from, fromlen);
    bool cut = false;

    if (n == SOCKET_ERROR) {
        /* Winsock fills the buffer and fails; POSIX truncates quietly. */
        if (WSAGetLastError() != WSAEMSGSIZE)
            return mio__wsa_err();
        n = (int)len;
        cut = true;
    }
    *truncated = cut;
    return n;
}

/* ---- socket options ---- */

/* Not in every SDK: Windows 10 1709's keep-alive times, and 1703's path
 * MTU modes. */
#ifndef TCP_KEEPALIVE
#define TCP_KEEPALIVE 3
#endif
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 17
#endif
#ifndef IP_MTU_DISCOVER
#define IP_MTU_DISCOVER 71
#endif
#ifndef IPV6_MTU_DISCOVER
#define IPV6_MTU_DISCOVER 71
#endif
#define PMTUDISC_PROBE 3    /* PMTUD_STATE's IP_PMTUDISC_PROBE */
#ifndef MCAST_JOIN_GROUP
#define MCAST_JOIN_GROUP 41
#define MCAST_LEAVE_GROUP 42
#endif

/* GROUP_REQ's layout (ws2ipdef.h), which not every SDK declares. */
struct group_request {
    ULONG gr_interface;
    SOCKADDR_STORAGE gr_group;
};

int mio__os_family(mio_fd fd, int *family)
{
    WSAPROTOCOL_INFOW info;
    int len = sizeof info;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) == SOCKET_ERROR)
        return mio__wsa_err();
    *family = info.iAddressFamily;
    return 0;
}

/* An option the provider, or this kind of socket, does not have. */
static int opt_err(void)
{
    int code = WSAGetLastError();
    return code == WSAENOPROTOOPT || code == WSAEOPNOTSUPP ? MIO_ENOSYS : mio__wsa_err();
}

static int set_dword(mio_fd fd, int level, int name, int v)
{
    DWORD d = (DWORD)v;
    return setsockopt(fd, level, name, (const char *)&d, sizeof d) == SOCKET_ERROR ? opt_err() : 0;
}

static int get_dword(mio_fd fd, int level, int name, int *v)
{
    DWORD d = 0;
    int len = sizeof d;
    if (getsockopt(fd, level, name, (char *)&d, &len) == SOCKET_ERROR)
        return opt_err();
    /* Some options are a BOOL or a byte: only what was written counts. */
    if (len == 1)
        d &= 0xff;
    *v = (int)d;
    return 0;
}

static int ip_family(mio_fd fd, int *family)
{
    int err = mio__os_family(fd, family);
    if (err < 0)
        return err;
    return *family == AF_INET || *family == AF_INET6 ? 0 : MIO_EAFNOSUPPORT;
}

/* Sets the IPv6 option and, for the IPv4-mapped traffic of a dual-stack
 * socket, the IPv4 one where the provider takes it. */
static int set_both(mio_fd fd, int family, int v4name, int v6name, int v)
{
    int err;
    if (family == AF_INET)
        return set_dword(fd, IPPROTO_IP, v4name, v);
    if ((err = set_dword(fd, IPPROTO_IPV6, v6name, v)) == 0)
        (void)set_dword(fd, IPPROTO_IP, v4name, v);
    return err;
}

static int get_one(mio_fd fd, int family, int v4name, int v6name, int *v)
{
    return family == AF_INET ? get_dword(fd, IPPROTO_IP, v4name, v)
                             : get_dword(fd, IPPROTO_IPV6, v6name, v);
}

/* IPv4's multicast interface by index: an address in 0.0.0.0/8 is read as
 * an index (in network order) there. */
static int set_mcast_if(mio_fd fd, int family, int v)
{
    int err;
    if (family != AF_INET)
        return set_dword(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, v);
    /* A provider that takes only addresses there (wine) refuses it. */
    err = set_dword(fd, IPPROTO_IP, IP_MULTICAST_IF, (int)htonl((u_long)v));
    return err == MIO_EINVAL ? MIO_ENOSYS : err;
}

static int get_mcast_if(mio_fd fd, int family, int *v)
{
    int err = get_one(fd, family, IP_MULTICAST_IF, IPV6_MULTICAST_IF, v);
    if (err == 0 && family == AF_INET) {
        u_long index = ntohl((u_long)(DWORD)*v);
        if (index > 0xffffff)
            return MIO_ENOSYS;  /* set by address, not by index */
        *v = (int)index;
    }
    return err;
}

static int set_dontfrag(mio_fd fd, int family, int v)
{
    int err;
    if (v == MIO_DONTFRAG_PROBE) {
        if ((err = set_both(fd, family, IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, PMTUDISC_PROBE)) < 0)
            return err == MIO_EINVAL ? MIO_ENOSYS : err;
        return set_both(fd, family, IP_DONTFRAGMENT, IPV6_DONTFRAG, 1);
    }
    /* Out of probing, if it was on (providers without the option: no). */
    (void)set_both(fd, family, IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, 0);
    return set_both(fd, family, IP_DONTFRAGMENT, IPV6_DONTFRAG, v);
}

static int get_dontfrag(mio_fd fd, int family, int *v)
{
    int mode = 0, err = get_one(fd, family, IP_DONTFRAGMENT, IPV6_DONTFRAG, v);
    if (err < 0)
        return err;
    *v = *v != 0;
    if (*v && get_one(fd, family, IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, &mode) == 0 &&
        mode == PMTUDISC_PROBE)
        *v = MIO_DONTFRAG_PROBE;
    return 0;
}

/* The options that are one DWORD at one level whatever the family: 1 with
 * *level and *name (and *flag: read back as 0 or 1), MIO_ENOSYS where
 * Windows lacks the option, 0 for the others. */
static int plain_option(int opt, int *level, int *name, bool *flag)
{
    *level = SOL_SOCKET;
    *flag = opt == MIO_SO_BROADCAST || opt == MIO_SO_KEEPALIVE;
    switch (opt) {
    case MIO_SO_REUSEPORT: return MIO_ENOSYS;   /* SO_REUSEADDR is not it: it steals ports */
    case MIO_SO_BROADCAST: *name = SO_BROADCAST; return 1;
    case MIO_SO_KEEPALIVE: *name = SO_KEEPALIVE; return 1;
    case MIO_SO_RCVBUF:    *name = SO_RCVBUF; return 1;
    case MIO_SO_SNDBUF:    *name = SO_SNDBUF; return 1;
    }
    *level = IPPROTO_TCP;
    switch (opt) {
    case MIO_SO_KEEPIDLE:  *name = TCP_KEEPALIVE; return 1;
    case MIO_SO_KEEPINTVL: *name = TCP_KEEPINTVL; return 1;
    case MIO_SO_KEEPCNT:   *name = TCP_KEEPCNT; return 1;
    }
    return 0;
}

int mio__os_sockopt_set(mio_fd fd, int opt, int v)
{
    int family = 0, level, name, err;
    bool flag;

    if ((err = plain_option(opt, &level, &name, &flag)) != 0)
        return err < 0 ? err : set_dword(fd, level, name, v);
    if ((err = ip_family(fd, &family)) < 0)
        return err;
    switch (opt) {
    case MIO_SO_TTL:
        return set_both(fd, family, IP_TTL, IPV6_UNICAST_HOPS, v);
    case MIO_SO_MULTICAST_TTL:
        return set_both(fd, family, IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS, v);
    case MIO_SO_MULTICAST_LOOP:
        return set_both(fd, family, IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP, v);
    case MIO_SO_MULTICAST_IF:
        return set_mcast_if(fd, family, v);
    case MIO_SO_V6ONLY:
        return family == AF_INET6 ? set_dword(fd, IPPROTO_IPV6, IPV6_V6ONLY, v) : MIO_EAFNOSUPPORT;
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
        if (err > 0 && (err = get_dword(fd, level, name, v)) == 0 && flag)
            *v = *v != 0;
        return err;
    }
    if ((err = ip_family(fd, &family)) < 0)
        return err;
    switch (opt) {
    case MIO_SO_TTL:
        return get_one(fd, family, IP_TTL, IPV6_UNICAST_HOPS, v);
    case MIO_SO_MULTICAST_TTL:
        return get_one(fd, family, IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS, v);
    case MIO_SO_MULTICAST_LOOP:
        if ((err = get_one(fd, family, IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP, v)) == 0)
            *v = *v != 0;
        return err;
    case MIO_SO_MULTICAST_IF:
        return get_mcast_if(fd, family, v);
    case MIO_SO_V6ONLY:
        if (family != AF_INET6)
            return MIO_EAFNOSUPPORT;
        if ((err = get_dword(fd, IPPROTO_IPV6, IPV6_V6ONLY, v)) == 0)
            *v = *v != 0;
        return err;
    case MIO_SO_DONTFRAG:
        return get_dontfrag(fd, family, v);
    }
    return MIO_EINVAL;
}

/* The older membership options, for providers without MCAST_JOIN_GROUP
 * (wine): an IPv4 interface by index is an address in 0.0.0.0/8. */
static int old_membership(mio_fd fd, bool join, const mio_addr *group, uint32_t ifindex)
{
    if (group->u.sa.sa_family == AF_INET) {
        struct ip_mreq mr;
        mr.imr_multiaddr = group->u.v4.sin_addr;
        mr.imr_interface.s_addr = htonl(ifindex);
        if (setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                       (const char *)&mr, sizeof mr) == SOCKET_ERROR)
            return opt_err();
    } else {
        struct ipv6_mreq mr;
        mr.ipv6mr_multiaddr = group->u.v6.sin6_addr;
        mr.ipv6mr_interface = ifindex;
        if (setsockopt(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                       (const char *)&mr, sizeof mr) == SOCKET_ERROR)
            return opt_err();
    }
    return 0;
}

int mio__os_multicast(mio_fd fd, bool join, const mio_addr *group, uint32_t ifindex)
{
    struct group_request req;
    int level = group->u.sa.sa_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;

    memset(&req, 0, sizeof req);
    req.gr_interface = ifindex;
    memcpy(&req.gr_group, &group->u.ss, (size_t)group->len);
    if (setsockopt(fd, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, (const char *)&req,
                   sizeof req) == SOCKET_ERROR) {
        int err = opt_err();
        return err == MIO_ENOSYS ? old_membership(fd, join, group, ifindex) : err;
    }
    return 0;
}
