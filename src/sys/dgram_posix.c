/* Datagram batches on POSIX: the OS calls under mio_udp_send_batch and
 * mio_udp_recv_batch, and the receive options they report.
 *
 * A batch becomes messages (struct msghdr), each with its control messages
 * built in a buffer on the stack: the ECN codepoint (IP_TOS, IPV6_TCLASS),
 * the source address and interface (IP_PKTINFO or IP_SENDSRCADDR,
 * IPV6_PKTINFO) and, with segmentation offload, the segment size
 * (UDP_SEGMENT).  Linux moves up to BATCH of them per sendmmsg or recvmmsg;
 * elsewhere they go one sendmsg or recvmsg each.  An entry with a segment
 * size becomes one message per 64 segments with the offload, one message
 * per segment without it.
 *
 * Received control messages are read back into the entry: the TOS or
 * traffic class byte's ECN bits, the destination address and interface
 * (IP_PKTINFO, IP_RECVDSTADDR, IPV6_PKTINFO) and the stride of coalesced
 * segments (UDP_GRO). */
#include "net.h"

#include <string.h>
#include <netinet/in.h>
#ifdef __linux__
#include <netinet/udp.h>
#endif

#ifdef __linux__
#define HAVE_MMSG 1
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define HAVE_GSO 1
#endif

/* The source address of an IPv4 datagram: IP_PKTINFO (Linux, macOS) names
 * the interface too; the BSDs take IP_SENDSRCADDR. */
#if defined(IP_PKTINFO) && (defined(__linux__) || defined(__APPLE__))
#define HAVE_IP_PKTINFO 1
#elif defined(IP_SENDSRCADDR)
#define HAVE_IP_SENDSRCADDR 1
#endif
#if defined(IPV6_RECVPKTINFO) && defined(IPV6_PKTINFO)
#define HAVE_IPV6_PKTINFO 1
#endif
#if defined(IPV6_RECVTCLASS) && defined(IPV6_TCLASS)
#define HAVE_IPV6_TCLASS 1
#endif

/* Messages per system call, and control bytes per message: room for a
 * TOS, a traffic class, an IPv4 and an IPv6 packet info and a segment size
 * (an IPv4 datagram on an IPv6 socket comes with the IPv4 ones). */
#define BATCH     32
#define SEND_ROOM 128
#define RECV_ROOM 192

#ifdef HAVE_MMSG
typedef struct mmsghdr mmsg;
#else
typedef struct {
    struct msghdr msg_hdr;
    unsigned int msg_len;
} mmsg;
#endif

typedef union {
    max_align_t align;
    unsigned char b[SEND_ROOM];
} send_ctrl;

typedef union {
    max_align_t align;
    unsigned char b[RECV_ROOM];
} recv_ctrl;

_Static_assert(CMSG_SPACE(sizeof(int)) * 2 + CMSG_SPACE(sizeof(struct in6_pktinfo)) +
                   CMSG_SPACE(sizeof(uint16_t)) <= SEND_ROOM,
               "a message's control data fits SEND_ROOM");

/* The failed call's error, EWOULDBLOCK spelt MIO_EAGAIN. */
static int io_err(void)
{
    int err = mio__err();
    return err == -EWOULDBLOCK ? MIO_EAGAIN : err;
}

/* ---- control messages out ---- */

/* Appends one control message at offset `at` of ctrl, its padding zeroed
 * (the kernel ignores it, valgrind would not); returns the next offset. */
static size_t cmsg_put(unsigned char *ctrl, size_t at, int level, int type, const void *data,
                       size_t len)
{
    struct cmsghdr *c = (struct cmsghdr *)(void *)(ctrl + at);
    memset(c, 0, CMSG_SPACE(len));
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), data, len);
    return at + CMSG_SPACE(len);
}

static bool v4_mapped(const struct in6_addr *a)
{
    static const unsigned char prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(a->s6_addr, prefix, sizeof prefix) == 0;
}

/* Which IP the datagram takes: 4, 6, or 0 when the socket is connected and
 * the destination is not given. */
static int ip_version(const mio_addr *peer)
{
    if (peer->len == 0)
        return 0;
    if (peer->u.sa.sa_family == AF_INET)
        return 4;
    if (peer->u.sa.sa_family == AF_INET6)
        return v4_mapped(&peer->u.v6.sin6_addr) ? 4 : 6;
    return -1;      /* a Unix socket: no IP control messages */
}

/* The ECN codepoint.  Linux takes whichever of the two messages belongs to
 * the path the datagram takes and ignores the other, so both go when the
 * destination is not known. */
static size_t put_ecn(unsigned char *ctrl, size_t at, const mio_datagram *dg, int ip)
{
    int tclass = dg->ecn;
    if (tclass == 0 || ip < 0)
        return at;
    if (ip == 4 || ip == 0) {
#if defined(__FreeBSD__)
        unsigned char tos = (unsigned char)tclass;   /* FreeBSD reads a byte */
        at = cmsg_put(ctrl, at, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
#else
        at = cmsg_put(ctrl, at, IPPROTO_IP, IP_TOS, &tclass, sizeof tclass);
#endif
    }
#ifdef HAVE_IPV6_TCLASS
    if (ip == 6 || ip == 0)
        at = cmsg_put(ctrl, at, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof tclass);
#endif
    return at;
}

/* The source address and interface: *at moved on, or MIO_ENOSYS where the
 * OS cannot choose them. */
static int put_local(unsigned char *ctrl, size_t *at, const mio_datagram *dg)
{
    const mio_addr *l = &dg->local;

    if (l->len == 0)
        return 0;
    if (l->u.sa.sa_family == AF_INET) {
#if defined(HAVE_IP_PKTINFO)
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        pi.ipi_ifindex = (int)dg->ifindex;
        pi.ipi_spec_dst = l->u.v4.sin_addr;
        *at = cmsg_put(ctrl, *at, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
        return 0;
#elif defined(HAVE_IP_SENDSRCADDR)
        if (dg->ifindex != 0)
            return MIO_ENOSYS;
        *at = cmsg_put(ctrl, *at, IPPROTO_IP, IP_SENDSRCADDR, &l->u.v4.sin_addr,
                       sizeof l->u.v4.sin_addr);
        return 0;
#else
        return MIO_ENOSYS;
#endif
    }
#ifdef HAVE_IPV6_PKTINFO
    {
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        pi.ipi6_addr = l->u.v6.sin6_addr;
        pi.ipi6_ifindex = dg->ifindex != 0 ? dg->ifindex : l->u.v6.sin6_scope_id;
        *at = cmsg_put(ctrl, *at, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
        return 0;
    }
#else
    return MIO_ENOSYS;
#endif
}

/* ---- sending ---- */

/* Whether fd is a socket the OS segments datagrams for (a UDP socket on a
 * kernel with UDP_SEGMENT). */
static bool gso_available(mio_fd fd)
{
#ifdef HAVE_GSO
    int v = 0;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
#else
    (void)fd;
    return false;
#endif
}

/* The messages of one system call, built from the entries not yet sent. */
struct plan {
    mmsg mm[BATCH];
    struct iovec iov[BATCH];
    send_ctrl ctrl[BATCH];
    size_t bytes[BATCH];        /* each message's length */
    bool last[BATCH];           /* it ends its entry */
    bool gso[BATCH];            /* it carries UDP_SEGMENT */
    int stop;                   /* why building stopped short of the entries
                                   left: an entry it cannot send, or 0 */
};

/* Fills p with messages for d[at..n), the entry d[at] already sent up to
 * byte `off`; returns how many. */
static int plan_batch(struct plan *p, mio_datagram *d, size_t n, size_t at, size_t off,
                      bool gso)
{
    int k = 0;

    p->stop = 0;
    for (; at < n && k < BATCH; at++, off = 0) {
        const mio_datagram *dg = &d[at];
        unsigned char *ctrl = p->ctrl[k].b;
        size_t pos = off, left = dg->len - off, seg = dg->segment_size, chunk = left, clen;
        bool cut = seg != 0 && left > seg, offload = false;
        int ip = ip_version(&dg->peer), err;

        if (cut) {
            size_t per = MIO__GSO_MAX_BYTES / seg;
            if (per > MIO__GSO_SEGMENTS)
                per = MIO__GSO_SEGMENTS;
            offload = gso && per >= 2;
            chunk = offload ? per * seg : seg;
        }
        clen = put_ecn(ctrl, 0, dg, ip);
        if ((err = put_local(ctrl, &clen, dg)) < 0) {
            p->stop = err;
            break;
        }
#ifdef HAVE_GSO
        if (offload) {
            uint16_t size = (uint16_t)seg;
            clen = cmsg_put(ctrl, clen, SOL_UDP, UDP_SEGMENT, &size, sizeof size);
        }
#endif
        /* Every message of the entry shares its first one's control data. */
        do {
            struct msghdr *h = &p->mm[k].msg_hdr;
            size_t len = chunk < left ? chunk : left;
            memset(h, 0, sizeof *h);
            h->msg_name = dg->peer.len != 0 ? (void *)(uintptr_t)&dg->peer.u.sa : NULL;
            h->msg_namelen = dg->peer.len;
            /* (an empty datagram may have no buffer at all) */
            p->iov[k].iov_base = pos > 0 ? (unsigned char *)dg->buf + pos : dg->buf;
            p->iov[k].iov_len = len;
            h->msg_iov = &p->iov[k];
            h->msg_iovlen = 1;
            h->msg_control = clen != 0 ? ctrl : NULL;
            h->msg_controllen = clen;
            p->bytes[k] = len;
            p->last[k] = len == left;
            p->gso[k] = offload;
            pos += len;
            left -= len;
            k++;
        } while (left > 0 && k < BATCH);
        if (left > 0)
            break;              /* the entry goes on in the next call */
    }
    return k;
}

/* Sends p's k messages; how many went, or the error of the first. */
static int send_planned(mio_fd fd, struct plan *p, int k)
{
#ifdef HAVE_MMSG
    int r;
    do
        r = sendmmsg(fd, p->mm, (unsigned)k, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? io_err() : r;
#else
    int i;
    for (i = 0; i < k; i++) {
        ssize_t r;
        do
            r = sendmsg(fd, &p->mm[i].msg_hdr, MSG_NOSIGNAL);
        while (r < 0 && errno == EINTR);
        if (r < 0)
            return i > 0 ? i : io_err();
    }
    return k;
#endif
}

ssize_t mio__os_send_batch(mio_fd fd, mio_datagram *d, size_t n, bool *gso)
{
    struct plan p;
    size_t done = 0, off = 0, i;
    bool offload = false, retry = false;
    int err = 0;

    if (*gso) {
        for (i = 0; i < n && !offload; i++)
            offload = d[i].segment_size != 0 && d[i].len > d[i].segment_size;
        offload = offload && gso_available(fd);
    }
    while (done < n) {
        int k = plan_batch(&p, d, n, done, off, offload), r, m;
        if (k == 0) {
            err = p.stop;
            break;
        }
        r = send_planned(fd, &p, k);
        if (r < 0) {
            /* A route that cannot segment (EIO: no checksum offload on the
             * device; EINVAL: no checksums at all, or a segment beyond the
             * MTU): the same entry goes again, segment by segment. */
            if (p.gso[0] && (r == -EIO || r == MIO_EINVAL)) {
                offload = false;
                *gso = false;
                retry = true;
                continue;
            }
            /* Refused again without the offload: it was not the offload's
             * fault, which stays in use. */
            if (retry && (r == -EIO || r == MIO_EINVAL))
                *gso = true;
            err = r;
            break;
        }
        retry = false;
        for (m = 0; m < r; m++) {
            if (p.last[m]) {
                done++;
                off = 0;
            } else {
                off += p.bytes[m];
            }
        }
        /* Fewer than k: the next call meets what stopped this one. */
    }
    if (off > 0) {
        d[done].buf = (unsigned char *)d[done].buf + off;
        d[done].len -= off;
    }
    return done > 0 || err == 0 ? (ssize_t)done : err;
}

/* ---- receiving ---- */

/* Reads a control message's integer whichever width the OS gave it. */
static int cmsg_int(const struct cmsghdr *c)
{
    const unsigned char *p = CMSG_DATA(c);
    size_t len = c->cmsg_len - (size_t)(p - (const unsigned char *)c);
    int v = 0;
    if (len >= sizeof v)
        memcpy(&v, p, sizeof v);
    else if (len >= 1)
        v = p[0];
    return v;
}

static void local_v4(mio_datagram *dg, struct in_addr a)
{
    memset(&dg->local, 0, sizeof dg->local);
    if (dg->peer.u.sa.sa_family == AF_INET6) {
        /* As peer is on an IPv6 socket: IPv4-mapped. */
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

/* Fills the entry's metadata from a received message of `len` bytes. */
static void read_back(mio_datagram *dg, struct msghdr *h, size_t len)
{
    struct cmsghdr *c;
    size_t stride = 0;

    dg->len = len;
    dg->flags = (h->msg_flags & MSG_TRUNC) ? MIO_DGRAM_TRUNCATED : 0;
    dg->peer.len = h->msg_namelen;
    if (h->msg_namelen == 0)
        dg->peer.u.sa.sa_family = AF_UNSPEC;   /* an unbound Unix sender */
    dg->local.len = 0;
    dg->ifindex = 0;
    dg->ecn = 0;
    for (c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
            dg->ecn = (uint8_t)(cmsg_int(c) & 3);
#if defined(IP_RECVTOS) && !defined(__linux__)
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVTOS) {
            dg->ecn = (uint8_t)(cmsg_int(c) & 3);   /* FreeBSD's name for it */
#endif
#ifdef HAVE_IPV6_TCLASS
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
            dg->ecn = (uint8_t)(cmsg_int(c) & 3);
#endif
#ifdef HAVE_IP_PKTINFO
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            local_v4(dg, pi.ipi_addr);
            dg->ifindex = (uint32_t)pi.ipi_ifindex;
#endif
#if defined(IP_RECVDSTADDR) && !defined(HAVE_IP_PKTINFO)
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVDSTADDR) {
            struct in_addr a;
            memcpy(&a, CMSG_DATA(c), sizeof a);
            local_v4(dg, a);
#endif
#ifdef HAVE_IPV6_PKTINFO
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            memset(&dg->local, 0, sizeof dg->local);
            dg->local.u.v6.sin6_family = AF_INET6;
            dg->local.u.v6.sin6_addr = pi.ipi6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
                dg->local.u.v6.sin6_scope_id = pi.ipi6_ifindex;
            dg->local.len = sizeof dg->local.u.v6;
            dg->ifindex = pi.ipi6_ifindex;
#endif
#ifdef HAVE_GSO
        } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            stride = (size_t)cmsg_int(c);
#endif
        }
    }
    dg->segment_size = stride > 0 && stride < len && stride <= UINT16_MAX ? (uint16_t)stride : 0;
}

/* Sets up message i to receive into entry dg. */
static void plan_recv(mmsg *m, struct iovec *iov, recv_ctrl *ctrl, mio_datagram *dg)
{
    struct msghdr *h = &m->msg_hdr;
    iov->iov_base = dg->buf;
    iov->iov_len = dg->size;
    memset(h, 0, sizeof *h);
    h->msg_name = &dg->peer.u.ss;
    h->msg_namelen = sizeof dg->peer.u.ss;
    h->msg_iov = iov;
    h->msg_iovlen = 1;
    h->msg_control = ctrl->b;
    h->msg_controllen = sizeof ctrl->b;
}

/* Receives into up to k entries; how many, or the error of the first. */
static int recv_some(mio_fd fd, mio_datagram *d, int k)
{
    mmsg mm[BATCH];
    struct iovec iov[BATCH];
    recv_ctrl ctrl[BATCH];
    int i, r;

#ifdef HAVE_MMSG
    for (i = 0; i < k; i++)
        plan_recv(&mm[i], &iov[i], &ctrl[i], &d[i]);
    do
        r = recvmmsg(fd, mm, (unsigned)k, 0, NULL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return io_err();
#else
    for (r = 0; r < k; r++) {
        ssize_t got;
        plan_recv(&mm[r], &iov[r], &ctrl[r], &d[r]);
        do
            got = recvmsg(fd, &mm[r].msg_hdr, 0);
        while (got < 0 && errno == EINTR);
        if (got < 0) {
            if (r == 0)
                return io_err();
            break;
        }
        mm[r].msg_len = (unsigned)got;
    }
#endif
    for (i = 0; i < r; i++)
        read_back(&d[i], &mm[i].msg_hdr, mm[i].msg_len);
    return r;
}

ssize_t mio__os_recv_batch(mio_fd fd, mio_datagram *d, size_t n)
{
    size_t got = 0;

    while (got < n) {
        int want = n - got > BATCH ? BATCH : (int)(n - got);
        int r = recv_some(fd, d + got, want);
        if (r < 0)
            return got > 0 ? (ssize_t)got : r;
        got += (size_t)r;
        if (r < want)
            break;              /* drained */
    }
    return (ssize_t)got;
}

/* ---- receive options ---- */

/* A receive option: the socket option that turns it on for the socket's
 * own family, and the one for the IPv4 datagrams of an IPv6 socket (where
 * `v4` says there is one). */
struct recv_opt {
    int level, name;
    bool v4;
    int v4_level, v4_name;
};

/* The option behind `what` (one bit) on a socket of family; false where
 * the OS has none. */
static bool recv_opt(uint32_t what, int family, struct recv_opt *o)
{
    memset(o, 0, sizeof *o);
    if (family != AF_INET && family != AF_INET6)
        return false;
    switch (what) {
    case MIO_UDP_RECV_ECN:
#ifdef IP_RECVTOS
        o->v4 = true;
        o->v4_level = IPPROTO_IP;
        o->v4_name = IP_RECVTOS;
#endif
        if (family == AF_INET6) {
#ifdef HAVE_IPV6_TCLASS
            o->level = IPPROTO_IPV6;
            o->name = IPV6_RECVTCLASS;
            return true;
#else
            return false;
#endif
        }
        break;
    case MIO_UDP_RECV_LOCAL:
#if defined(HAVE_IP_PKTINFO)
        o->v4 = true;
        o->v4_level = IPPROTO_IP;
        o->v4_name = IP_PKTINFO;
#elif defined(IP_RECVDSTADDR)
        o->v4 = true;
        o->v4_level = IPPROTO_IP;
        o->v4_name = IP_RECVDSTADDR;
#endif
        if (family == AF_INET6) {
#ifdef HAVE_IPV6_PKTINFO
            o->level = IPPROTO_IPV6;
            o->name = IPV6_RECVPKTINFO;
            return true;
#else
            return false;
#endif
        }
        break;
    case MIO_UDP_GRO:
#ifdef HAVE_GSO
        o->level = SOL_UDP;
        o->name = UDP_GRO;
        return true;
#else
        return false;
#endif
    default:
        return false;
    }
    /* An IPv4 socket's own option is the IPv4 one. */
    o->level = o->v4_level;
    o->name = o->v4_name;
    if (!o->v4)
        return false;
    o->v4 = false;
    return true;
}

/* Whether the option is there, and its value in *on. */
static bool opt_read(mio_fd fd, const struct recv_opt *o, bool *on)
{
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(fd, o->level, o->name, &v, &len) < 0)
        return false;
    *on = v != 0;
    return true;
}

static const uint32_t recv_bits[] = { MIO_UDP_RECV_ECN, MIO_UDP_RECV_LOCAL, MIO_UDP_GRO };
#define N_RECV_BITS (sizeof recv_bits / sizeof recv_bits[0])

int mio__os_udp_enable(mio_fd fd, uint32_t what, bool on)
{
    struct recv_opt o[N_RECV_BITS];
    int family, err, v = on ? 1 : 0;
    size_t i;

    if ((err = mio__os_family(fd, &family)) < 0)
        return err;
    /* All there, or nothing changes. */
    for (i = 0; i < N_RECV_BITS; i++) {
        bool cur;
        if ((what & recv_bits[i]) && (!recv_opt(recv_bits[i], family, &o[i]) ||
                                      !opt_read(fd, &o[i], &cur)))
            return MIO_ENOSYS;
    }
    for (i = 0; i < N_RECV_BITS; i++) {
        if (!(what & recv_bits[i]))
            continue;
        if (setsockopt(fd, o[i].level, o[i].name, &v, sizeof v) < 0)
            return mio__err();
        /* The IPv4 datagrams of a dual-stack socket, where the OS lets it. */
        if (o[i].v4)
            (void)setsockopt(fd, o[i].v4_level, o[i].v4_name, &v, sizeof v);
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
#ifdef HAVE_MMSG
    out->batch = BATCH;
#else
    out->batch = 1;
#endif
    for (i = 0; i < N_RECV_BITS; i++) {
        struct recv_opt o;
        bool on;
        if (recv_opt(recv_bits[i], family, &o) && opt_read(fd, &o, &on)) {
            out->available |= recv_bits[i];
            if (on)
                out->enabled |= recv_bits[i];
        }
    }
    if (out->available & MIO_UDP_GRO)
        out->gro_segments = MIO__GSO_SEGMENTS;
    if ((family == AF_INET || family == AF_INET6) && gso_available(fd)) {
        out->available |= MIO_UDP_GSO;
        out->enabled |= MIO_UDP_GSO;
        out->gso_segments = MIO__GSO_SEGMENTS;
    }
    if (family == AF_INET || family == AF_INET6) {
        out->available |= MIO_UDP_SEND_ECN;
#if defined(HAVE_IP_PKTINFO) || defined(HAVE_IP_SENDSRCADDR)
        if (family == AF_INET)
            out->available |= MIO_UDP_SEND_LOCAL;
#endif
#ifdef HAVE_IPV6_PKTINFO
        if (family == AF_INET6)
            out->available |= MIO_UDP_SEND_LOCAL;
#endif
    }
    return 0;
}
