/* Datagram batches on Windows: the OS calls under mio_udp_send_batch and
 * mio_udp_recv_batch, and the receive options they report.
 *
 * Winsock has no call that moves several datagrams: each goes through its
 * own WSASendMsg or WSARecvMsg (both found through WSAIoctl), with
 * its control messages built on the stack: the ECN codepoint (IP_ECN,
 * IPV6_ECN), the source address and interface (IP_PKTINFO, IPV6_PKTINFO)
 * and, with UDP segmentation offload (USO, Windows 10 2004 and later), the
 * segment size (UDP_SEND_MSG_SIZE).  Received ones carry the same, and
 * coalesced segments (URO, UDP_RECV_MAX_COALESCED_SIZE) their stride
 * (UDP_COALESCED_INFO).  Providers that lack these (older Windows, wine)
 * say so through the option calls: the capabilities report it, and a send
 * whose ECN codepoint the provider refuses goes without it from then on. */
#include "net.h"
#include "win.h"

#include <mswsock.h>
#include <string.h>

/* Not in every SDK. */
#ifndef IP_RECVECN
#define IP_RECVECN 50
#endif
#ifndef IPV6_RECVECN
#define IPV6_RECVECN 50
#endif
#ifndef IP_ECN
#define IP_ECN 50
#endif
#ifndef IPV6_ECN
#define IPV6_ECN 50
#endif
#ifndef UDP_SEND_MSG_SIZE
#define UDP_SEND_MSG_SIZE 2
#endif
#ifndef UDP_RECV_MAX_COALESCED_SIZE
#define UDP_RECV_MAX_COALESCED_SIZE 3
#endif
#ifndef UDP_COALESCED_INFO
#define UDP_COALESCED_INFO 3
#endif

/* Control bytes per message: an ECN codepoint, an IPv6 packet info and a
 * segment size, or what a receive brings (both packet infos at most). */
#define CTRL_ROOM 192

typedef union {
    WSACMSGHDR align;
    char b[CTRL_ROOM];
} ctrl_buf;

/* The layout of control messages (ws2def.h): a WSACMSGHDR, then its data,
 * each aligned as the header is.  Spelt out here: the SDKs differ in which
 * of the WSA_CMSG_* macros they have. */
#define CTRL_ALIGN(n)  (((n) + sizeof(SIZE_T) - 1) & ~(sizeof(SIZE_T) - 1))
#define CTRL_HDR       CTRL_ALIGN(sizeof(WSACMSGHDR))
#define CTRL_LEN(n)    (CTRL_HDR + (n))
#define CTRL_SPACE(n)  (CTRL_HDR + CTRL_ALIGN(n))
#define CTRL_DATA(c)   ((unsigned char *)(c) + CTRL_HDR)

/* The next control message of a received msg after c (NULL: the first). */
static WSACMSGHDR *ctrl_next(const WSAMSG *msg, WSACMSGHDR *c)
{
    char *start = msg->Control.buf, *end = start + msg->Control.len, *at;
    at = c == NULL ? start : (char *)c + CTRL_ALIGN(c->cmsg_len);
    if (start == NULL || at + sizeof(WSACMSGHDR) > end)
        return NULL;
    c = (WSACMSGHDR *)(void *)at;
    return c->cmsg_len < CTRL_HDR || at + c->cmsg_len > end ? NULL : c;
}

/* A send's ECN codepoint was refused by the provider once: later sends
 * leave it out (it is a hint to the network, not the datagram). */
static atomic_bool ecn_refused;

/* ---- WSASendMsg and WSARecvMsg, found once ---- */

typedef INT(WINAPI *send_msg_fn)(SOCKET, LPWSAMSG, DWORD, LPDWORD, LPWSAOVERLAPPED,
                                 LPWSAOVERLAPPED_COMPLETION_ROUTINE);
typedef INT(WINAPI *recv_msg_fn)(SOCKET, LPWSAMSG, LPDWORD, LPWSAOVERLAPPED,
                                 LPWSAOVERLAPPED_COMPLETION_ROUTINE);

static INIT_ONCE msg_once = INIT_ONCE_STATIC_INIT;
static send_msg_fn send_msg;
static recv_msg_fn recv_msg;

static void *extension(SOCKET s, GUID guid)
{
    void *fn = NULL;
    DWORD bytes = 0;
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &fn, sizeof fn,
                 &bytes, NULL, NULL) == SOCKET_ERROR)
        return NULL;
    return fn;
}

static BOOL CALLBACK find_msg_calls(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    static const GUID send_guid = { 0xa441e712, 0x754f, 0x43ca,
                                    { 0x84, 0xa7, 0x0d, 0xee, 0x44, 0xcf, 0x60, 0x6d } };
    static const GUID recv_guid = { 0xf689d7c8, 0x6f1f, 0x436b,
                                    { 0x8a, 0x53, 0xe5, 0x4f, 0xe3, 0x51, 0xc3, 0x22 } };
    void *fn;
    SOCKET s;
    (void)once;
    (void)param;
    (void)ctx;
    if (mio__wsa_init() < 0)
        return TRUE;
    s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (s == INVALID_SOCKET)
        return TRUE;
    /* Through void *: the cast between function pointer types warns. */
    fn = extension(s, send_guid);
    memcpy(&send_msg, &fn, sizeof fn);
    fn = extension(s, recv_guid);
    memcpy(&recv_msg, &fn, sizeof fn);
    closesocket(s);
    return TRUE;
}

static bool msg_calls(void)
{
    InitOnceExecuteOnce(&msg_once, find_msg_calls, NULL, NULL);
    return send_msg != NULL && recv_msg != NULL;
}

/* ---- control messages out ---- */

static size_t cmsg_put(char *ctrl, size_t at, int level, int type, const void *data, size_t len)
{
    WSACMSGHDR *c = (WSACMSGHDR *)(void *)(ctrl + at);
    memset(c, 0, CTRL_SPACE(len));
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CTRL_LEN(len);
    memcpy(CTRL_DATA(c), data, len);
    return at + CTRL_SPACE(len);
}

static bool v4_mapped(const IN6_ADDR *a)
{
    static const unsigned char prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(a->s6_addr, prefix, sizeof prefix) == 0;
}

/* 4 or 6 for the IP the datagram takes, as the destination tells, else the
 * socket's own family (a connected socket). */
static int ip_version(mio_fd fd, const mio_addr *peer)
{
    int family = 0;
    if (peer->len != 0) {
        if (peer->u.sa.sa_family == AF_INET)
            return 4;
        return v4_mapped(&peer->u.v6.sin6_addr) ? 4 : 6;
    }
    if (mio__os_family(fd, &family) < 0)
        return 0;
    return family == AF_INET ? 4 : family == AF_INET6 ? 6 : 0;
}

/* The control data of one datagram of entry dg: its length, or MIO_ENOSYS
 * (no way to choose the source here). */
static int build_ctrl(char *ctrl, const mio_datagram *dg, int ip, bool ecn, DWORD seg)
{
    size_t at = 0;

    if (ecn && dg->ecn != 0 && ip != 0) {
        INT v = dg->ecn;
        at = cmsg_put(ctrl, at, ip == 4 ? IPPROTO_IP : IPPROTO_IPV6, ip == 4 ? IP_ECN : IPV6_ECN,
                      &v, sizeof v);
    }
    if (dg->local.len != 0) {
        if (dg->local.u.sa.sa_family == AF_INET) {
            IN_PKTINFO pi;
            memset(&pi, 0, sizeof pi);
            pi.ipi_addr = dg->local.u.v4.sin_addr;
            pi.ipi_ifindex = dg->ifindex;
            at = cmsg_put(ctrl, at, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
        } else {
            IN6_PKTINFO pi;
            memset(&pi, 0, sizeof pi);
            pi.ipi6_addr = dg->local.u.v6.sin6_addr;
            pi.ipi6_ifindex = dg->ifindex != 0 ? dg->ifindex : dg->local.u.v6.sin6_scope_id;
            at = cmsg_put(ctrl, at, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
        }
    }
    if (seg != 0)
        at = cmsg_put(ctrl, at, IPPROTO_UDP, UDP_SEND_MSG_SIZE, &seg, sizeof seg);
    return (int)at;
}

/* ---- sending ---- */

static bool uso_available(mio_fd fd)
{
    DWORD v = 0;
    int len = sizeof v;
    return getsockopt(fd, IPPROTO_UDP, UDP_SEND_MSG_SIZE, (char *)&v, &len) == 0;
}

/* One WSASendMsg of len bytes at buf for entry dg (seg: the segment size
 * for the offload, or 0): 0, or the error. */
static int send_one(mio_fd fd, const mio_datagram *dg, char *buf, size_t len, int ip, DWORD seg)
{
    ctrl_buf ctrl;
    WSABUF data;
    WSAMSG msg;
    DWORD sent = 0;
    bool ecn = !atomic_load_explicit(&ecn_refused, memory_order_relaxed);
    int clen;

    for (;;) {
        clen = build_ctrl(ctrl.b, dg, ip, ecn, seg);
        data.buf = buf;
        data.len = (ULONG)len;
        memset(&msg, 0, sizeof msg);
        msg.name = dg->peer.len != 0 ? (LPSOCKADDR)(uintptr_t)&dg->peer.u.sa : NULL;
        msg.namelen = dg->peer.len;
        msg.lpBuffers = &data;
        msg.dwBufferCount = 1;
        msg.Control.buf = clen > 0 ? ctrl.b : NULL;
        msg.Control.len = (ULONG)clen;
        if (send_msg(fd, &msg, 0, &sent, NULL, NULL) == 0)
            return 0;
        /* A provider that knows no ECN message: without it, for good. */
        if (ecn && dg->ecn != 0 && ip != 0 &&
            (WSAGetLastError() == WSAEINVAL || WSAGetLastError() == WSAEOPNOTSUPP ||
             WSAGetLastError() == WSAENOPROTOOPT)) {
            atomic_store(&ecn_refused, true);
            ecn = false;
            continue;
        }
        return mio__wsa_err();
    }
}

ssize_t mio__os_send_batch(mio_fd fd, mio_datagram *d, size_t n, bool *gso)
{
    size_t done = 0, off = 0, i;
    bool offload = false, retry = false;
    int err = 0;

    if (!msg_calls())
        return MIO_ENOSYS;
    if (*gso) {
        for (i = 0; i < n && !offload; i++)
            offload = d[i].segment_size != 0 && d[i].len > d[i].segment_size;
        offload = offload && uso_available(fd);
    }
    while (done < n && err == 0) {
        mio_datagram *dg = &d[done];
        size_t seg = dg->segment_size, left = dg->len - off, chunk = left;
        bool cut = seg != 0 && left > seg, uso = false;
        int ip = ip_version(fd, &dg->peer);

        if (cut) {
            size_t per = MIO__GSO_MAX_BYTES / seg;
            if (per > MIO__GSO_SEGMENTS)
                per = MIO__GSO_SEGMENTS;
            uso = offload && per >= 2;
            chunk = uso ? per * seg : seg;
        }
        while (left > 0 || (dg->len == 0 && off == 0)) {
            size_t len = chunk < left ? chunk : left;
            char *at = off > 0 ? (char *)dg->buf + off : dg->buf;
            err = send_one(fd, dg, at, len, ip, uso ? (DWORD)seg : 0);
            if (err < 0 && uso && (err == MIO_EINVAL || err == -EIO || err == MIO_ENOSYS)) {
                /* The offload refused: these segments one by one. */
                offload = uso = false;
                *gso = false;
                retry = true;
                chunk = seg;
                err = 0;
                continue;
            }
            /* Refused again without it: not the offload's fault. */
            if (retry && (err == MIO_EINVAL || err == -EIO || err == MIO_ENOSYS))
                *gso = true;
            retry = false;
            if (err < 0)
                break;
            if (dg->len == 0)
                break;
            off += len;
            left -= len;
        }
        if (err < 0)
            break;
        done++;
        off = 0;
    }
    if (off > 0) {
        d[done].buf = (char *)d[done].buf + off;
        d[done].len -= off;
    }
    return done > 0 || err == 0 ? (ssize_t)done : err;
}

/* ---- receiving ---- */

static INT cmsg_int(const WSACMSGHDR *c)
{
    INT v = 0;
    size_t len = c->cmsg_len - CTRL_HDR;
    if (len >= sizeof v)
        memcpy(&v, CTRL_DATA(c), sizeof v);
    else if (len >= 1)
        v = CTRL_DATA(c)[0];
    return v;
}

static void local_v4(mio_datagram *dg, IN_ADDR a)
{
    memset(&dg->local, 0, sizeof dg->local);
    if (dg->peer.u.sa.sa_family == AF_INET6) {
        dg->local.u.v6.sin6_family = AF_INET6;
        dg->local.u.v6.sin6_addr.s6_addr[10] = 0xff;
        dg->local.u.v6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&dg->local.u.v6.sin6_addr.s6_addr[12], &a, 4);
        dg->local.len = sizeof dg->local.u.v6;
    } else {
        dg->local.u.v4.sin_family = AF_INET;
        dg->local.u.v4.sin_addr = a;
        dg->local.len = sizeof dg->local.u.v4;
    }
}

static void read_back(mio_datagram *dg, WSAMSG *msg, size_t len, bool cut)
{
    WSACMSGHDR *c;
    size_t stride = 0;

    dg->len = len;
    dg->flags = cut ? MIO_DGRAM_TRUNCATED : 0;
    dg->peer.len = msg->namelen;
    dg->local.len = 0;
    dg->ifindex = 0;
    dg->ecn = 0;
    for (c = ctrl_next(msg, NULL); c != NULL; c = ctrl_next(msg, c)) {
        if ((c->cmsg_level == IPPROTO_IP && (c->cmsg_type == IP_ECN || c->cmsg_type == IP_TOS)) ||
            (c->cmsg_level == IPPROTO_IPV6 &&
             (c->cmsg_type == IPV6_ECN || c->cmsg_type == IPV6_TCLASS))) {
            dg->ecn = (uint8_t)(cmsg_int(c) & 3);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            IN_PKTINFO pi;
            memcpy(&pi, CTRL_DATA(c), sizeof pi);
            local_v4(dg, pi.ipi_addr);
            dg->ifindex = pi.ipi_ifindex;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            IN6_PKTINFO pi;
            memcpy(&pi, CTRL_DATA(c), sizeof pi);
            memset(&dg->local, 0, sizeof dg->local);
            dg->local.u.v6.sin6_family = AF_INET6;
            dg->local.u.v6.sin6_addr = pi.ipi6_addr;
            if (pi.ipi6_addr.s6_addr[0] == 0xfe && (pi.ipi6_addr.s6_addr[1] & 0xc0) == 0x80)
                dg->local.u.v6.sin6_scope_id = pi.ipi6_ifindex;
            dg->local.len = sizeof dg->local.u.v6;
            dg->ifindex = pi.ipi6_ifindex;
        } else if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_COALESCED_INFO) {
            stride = (size_t)(DWORD)cmsg_int(c);
        }
    }
    dg->segment_size = stride > 0 && stride < len && stride <= UINT16_MAX ? (uint16_t)stride : 0;
}

ssize_t mio__os_recv_batch(mio_fd fd, mio_datagram *d, size_t n)
{
    size_t got;

    if (!msg_calls())
        return MIO_ENOSYS;
    for (got = 0; got < n; got++) {
        mio_datagram *dg = &d[got];
        ctrl_buf ctrl;
        WSABUF data;
        WSAMSG msg;
        DWORD bytes = 0;
        bool cut = false;

        data.buf = dg->buf;
        data.len = (ULONG)mio__os_io_len(dg->size);
        memset(&msg, 0, sizeof msg);
        msg.name = &dg->peer.u.sa;
        msg.namelen = sizeof dg->peer.u.ss;
        msg.lpBuffers = &data;
        msg.dwBufferCount = 1;
        msg.Control.buf = ctrl.b;
        msg.Control.len = sizeof ctrl.b;
        if (recv_msg(fd, &msg, &bytes, NULL, NULL) == SOCKET_ERROR) {
            /* Winsock fills the buffer and fails; POSIX truncates quietly. */
            if (WSAGetLastError() != WSAEMSGSIZE) {
                int err = mio__wsa_err();
                return got > 0 ? (ssize_t)got : err;
            }
            bytes = data.len;
            cut = true;
        }
        read_back(dg, &msg, bytes, cut || (msg.dwFlags & MSG_TRUNC) != 0);
    }
    return (ssize_t)got;
}

/* ---- receive options ---- */

/* The option behind `what` (one bit) on a socket of family, and its value
 * when on; false where there is none.  ECN: IP_RECVECN, or IP_RECVTOS
 * where only that is known (wine). */
static bool recv_opt(mio_fd fd, uint32_t what, int family, int *level, int *name, DWORD *on)
{
    DWORD v;
    int len = sizeof v;

    *on = 1;
    switch (what) {
    case MIO_UDP_RECV_ECN:
        *level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
        *name = family == AF_INET ? IP_RECVECN : IPV6_RECVECN;
        if (getsockopt(fd, *level, *name, (char *)&v, &len) == 0)
            return true;
        *name = family == AF_INET ? IP_RECVTOS : IPV6_RECVTCLASS;
        return true;
    case MIO_UDP_RECV_LOCAL:
        *level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
        *name = family == AF_INET ? IP_PKTINFO : IPV6_PKTINFO;
        return true;
    case MIO_UDP_GRO:
        *level = IPPROTO_UDP;
        *name = UDP_RECV_MAX_COALESCED_SIZE;
        *on = 65535;
        return true;
    }
    return false;
}

static bool opt_read(mio_fd fd, int level, int name, bool *on)
{
    DWORD v = 0;
    int len = sizeof v;
    if (getsockopt(fd, level, name, (char *)&v, &len) != 0)
        return false;
    *on = v != 0;
    return true;
}

static const uint32_t recv_bits[] = { MIO_UDP_RECV_ECN, MIO_UDP_RECV_LOCAL, MIO_UDP_GRO };
#define N_RECV_BITS (sizeof recv_bits / sizeof recv_bits[0])

int mio__os_udp_enable(mio_fd fd, uint32_t what, bool on)
{
    int level[N_RECV_BITS], name[N_RECV_BITS], family, err;
    DWORD value[N_RECV_BITS];
    size_t i;

    if ((err = mio__os_family(fd, &family)) < 0)
        return err;
    if (family != AF_INET && family != AF_INET6)
        return MIO_ENOSYS;
    for (i = 0; i < N_RECV_BITS; i++) {
        bool cur;
        if ((what & recv_bits[i]) &&
            (!recv_opt(fd, recv_bits[i], family, &level[i], &name[i], &value[i]) ||
             !opt_read(fd, level[i], name[i], &cur)))
            return MIO_ENOSYS;
    }
    for (i = 0; i < N_RECV_BITS; i++) {
        DWORD v = on ? value[i] : 0;
        if (!(what & recv_bits[i]))
            continue;
        if (setsockopt(fd, level[i], name[i], (const char *)&v, sizeof v) != 0)
            return mio__wsa_err();
        /* The IPv4 datagrams of a dual-stack socket. */
        if (family == AF_INET6 && recv_bits[i] != MIO_UDP_GRO) {
            int l4, n4;
            DWORD v4;
            if (recv_opt(fd, recv_bits[i], AF_INET, &l4, &n4, &v4))
                (void)setsockopt(fd, l4, n4, (const char *)&v, sizeof v);
        }
    }
    return 0;
}

int mio__os_udp_caps(mio_fd fd, mio_udp_capabilities *out)
{
    int family, err;
    size_t i;

    if ((err = mio__os_family(fd, &family)) < 0)
        return err;
    memset(out, 0, sizeof *out);
    out->gso_segments = 1;
    out->gro_segments = 1;
    out->batch = 1;
    if (family != AF_INET && family != AF_INET6)
        return 0;
    for (i = 0; i < N_RECV_BITS; i++) {
        int level, name;
        DWORD v;
        bool on;
        if (recv_opt(fd, recv_bits[i], family, &level, &name, &v) &&
            opt_read(fd, level, name, &on)) {
            out->available |= recv_bits[i];
            if (on)
                out->enabled |= recv_bits[i];
        }
    }
    if (out->available & MIO_UDP_GRO)
        out->gro_segments = MIO__GSO_SEGMENTS;
    if (uso_available(fd)) {
        out->available |= MIO_UDP_GSO;
        out->enabled |= MIO_UDP_GSO;
        out->gso_segments = MIO__GSO_SEGMENTS;
    }
    /* Sending the codepoint goes with receiving it (IP_RECVECN's Windows
     * versions), until a provider refused it. */
    if ((out->available & MIO_UDP_RECV_ECN) && !atomic_load(&ecn_refused))
        out->available |= MIO_UDP_SEND_ECN;
    if (out->available & MIO_UDP_RECV_LOCAL)
        out->available |= MIO_UDP_SEND_LOCAL;
    return 0;
}

int mio__os_dgram_pair(mio_fd out[2])
{
    (void)out;
    return MIO_EAFNOSUPPORT;
}
