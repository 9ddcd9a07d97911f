/* libFuzzer target: datagram batches over loopback against what was sent.
 *
 * Two UDP sockets on the loopback address (the first byte picks IPv4 or
 * IPv6, and whether the sender is connected); then each four bytes are one
 * operation:
 *   - send a batch of 1..8 entries, each of a size from the input, some cut
 *     into segments (segment_size), each with an ECN codepoint and some with
 *     a chosen source address;
 *   - receive a batch of 1..8 entries, each with room from the input (none,
 *     a little, some, all a coalesced receive can hold);
 *   - turn receive options on or off (ECN, local address, GRO).
 * Every datagram carries a pattern of its own number, so each byte that
 * comes back is checked against the datagram it belongs to, and:
 *   - a send moves every entry (loopback, far below the buffers' sizes);
 *   - receives return the datagrams in order, none lost or made up, each
 *     cut to its entry's room and flagged MIO_DGRAM_TRUNCATED exactly when
 *     it did not fit; a coalesced receive (GRO) holds consecutive segments
 *     of one sent entry, each segment_size long but the last;
 *   - the peer is the sender's address; ECN is what was sent while the
 *     receiver asks for it (and sends can set it), else 0; the local
 *     address and interface are there exactly while asked for;
 *   - MIO_EAGAIN exactly when nothing is waiting, and a short batch only
 *     when the socket is drained;
 *   - mio_udp_enable is all or nothing, and mio_udp_caps says what is on.
 * The sockets serve every input (making them would cost more than the
 * rest); each input starts with nothing queued and no receive option on.
 * The sender's offload is never refused over loopback, so nothing else
 * carries over. */
#include "mio.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 8
#define MAX_QUEUED 40           /* datagrams waiting: far below the buffer */
#define MAX_QUEUED_BYTES 60000
#define BIG 65535
#define RECV_OPTIONS (MIO_UDP_RECV_ECN | MIO_UDP_RECV_LOCAL | MIO_UDP_GRO)

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_udp: %s (line %d, op %zu)\n", #cond,        \
                    __LINE__, op_index);                                      \
            abort();                                                          \
        }                                                                     \
    } while (0)

struct expected {
    uint32_t id;                /* the datagram's number: its pattern */
    size_t len;
    uint8_t ecn;
    uint32_t opts;              /* the receiver's options when it arrived */
    uint16_t segs;              /* > 1: the first of that many segments sent
                                   with offload to a receiver with GRO on,
                                   which it receives at once; else 1 */
    uint16_t stride;
};

static size_t op_index;
#define QSIZE 64
static struct expected queue[QSIZE];
static size_t qhead, qtail, queued_bytes;
static unsigned char sendbuf[MAX_ENTRIES][MAX_QUEUED_BYTES];
static unsigned char recvbuf[MAX_ENTRIES][BIG];

static unsigned char pattern(uint32_t id, size_t at)
{
    return (unsigned char)(id * 131u + at * 7u + (at >> 8) + 1u);
}

/* The byte loops carry no coverage tracing: a comparison per byte there
 * finds nothing new and took most of each execution's time. */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((noinline, no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

NO_COVERAGE static void fill(unsigned char *buf, uint32_t id, size_t len)
{
    for (size_t j = 0; j < len; j++)
        buf[j] = pattern(id, j);
}

/* How many leading bytes of buf hold datagram id's pattern, up to len. */
NO_COVERAGE static size_t matching(const unsigned char *buf, uint32_t id, size_t len)
{
    size_t j = 0;
    while (j < len && buf[j] == pattern(id, j))
        j++;
    return j;
}

static bool same_host(const mio_addr *a, const mio_addr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return false;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.v4.sin_addr.s_addr == b->u.v4.sin_addr.s_addr;
    return memcmp(&a->u.v6.sin6_addr, &b->u.v6.sin6_addr, 16) == 0;
}

static bool same_addr(const mio_addr *a, const mio_addr *b)
{
    if (!same_host(a, b))
        return false;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.v4.sin_port == b->u.v4.sin_port;
    return a->u.v6.sin6_port == b->u.v6.sin6_port;
}

struct pair {
    mio_fd s, r;
    mio_addr sa, ra;
    bool connected;
    uint32_t enabled;           /* the receiver's options */
    mio_udp_capabilities scaps, rcaps;
    uint32_t next_id;
    bool open;
};

static void send_batch(struct pair *p, const uint8_t *a)
{
    mio_datagram d[MAX_ENTRIES];
    size_t n = 1 + ((a[0] >> 3) & 7), i, k;
    ssize_t sent;

    memset(d, 0, sizeof d);
    REQUIRE(mio_udp_caps(p->s, &p->scaps) == 0);    /* GSO may have gone */
    for (i = 0; i < n; i++) {
        uint8_t b = a[1 + i % 3] ^ (uint8_t)(i * 37);
        size_t len, seg = 0, segs = 1, at;
        /* Sizes: small, around common MTUs, and segmented runs. */
        switch (b & 3) {
        case 0: len = b >> 2; break;
        case 1: len = 1000 + (size_t)(b >> 2) * 8; break;
        case 2: len = 1472 + (b >> 2) - 32; break;
        default: { /* a run of segments, the last one shorter or not */
            size_t cut = a[0] >> 4;
            seg = 1 + (size_t)(b >> 2) * 23;
            len = seg * (1 + (a[(i + 2) % 4] & 15));
            len = cut < len ? len - cut : len;
            break;
        }
        }
        if (seg != 0)
            segs = (len + seg - 1) / seg;
        if (qtail - qhead + segs > MAX_QUEUED || queued_bytes + len > MAX_QUEUED_BYTES)
            break;
        for (k = 0, at = 0; k < segs; k++) {
            size_t this_len = seg != 0 ? (len - at < seg ? len - at : seg) : len;
            struct expected *e = &queue[qtail++ % QSIZE];
            fill(&sendbuf[i][at], p->next_id, this_len);
            e->id = p->next_id++;
            e->len = this_len;
            e->ecn = (uint8_t)((a[3] >> (i % 4 * 2)) & 3);
            e->opts = p->enabled;
            e->segs = k == 0 && segs > 1 && (p->scaps.enabled & MIO_UDP_GSO) &&
                              (p->enabled & MIO_UDP_GRO) ? (uint16_t)segs : 1;
            e->stride = (uint16_t)seg;
            at += this_len;
        }
        queued_bytes += len;
        d[i].buf = sendbuf[i];
        d[i].len = len;
        d[i].segment_size = (uint16_t)seg;
        d[i].ecn = (uint8_t)((a[3] >> (i % 4 * 2)) & 3);
        if (!p->connected)
            d[i].peer = p->ra;
        if (((b ^ a[0]) & 0x40) && (p->scaps.available & MIO_UDP_SEND_LOCAL)) {
            /* from the address it is bound to anyway */
            d[i].local = p->sa;
            d[i].local.u.v4.sin_port = 0;
            if (d[i].local.u.sa.sa_family == AF_INET6)
                d[i].local.u.v6.sin6_port = 0;
        }
    }
    if (i == 0)
        return;
    if (getenv("FUZZ_TRACE") != NULL)
        for (k = 0; k < i; k++)
            fprintf(stderr, "send len %zu seg %u\n", d[k].len, d[k].segment_size);
    sent = mio_udp_send_batch(p->s, d, i);
    REQUIRE(sent == (ssize_t)i);
}

static void recv_batch(struct pair *p, const uint8_t *a, bool big)
{
    mio_datagram d[MAX_ENTRIES];
    size_t n = big ? MAX_ENTRIES : 1 + ((a[0] >> 3) & 7), i;
    ssize_t got;
    bool ecn_on = (p->enabled & MIO_UDP_RECV_ECN) && (p->scaps.available & MIO_UDP_SEND_ECN);

    memset(d, 0, sizeof d);
    for (i = 0; i < n; i++) {
        uint8_t b = a[1 + i % 3] ^ (uint8_t)(i * 53);
        static const size_t rooms[] = { 0, 1, 64, 1000, 1400, 1472, 4096, BIG };
        d[i].buf = recvbuf[i];
        d[i].size = big ? BIG : (b & 0x80) ? rooms[b & 7] : (size_t)b * 11;
        memset(&d[i].local, 0xa5, sizeof d[i].local);
        d[i].ifindex = 12345;
        d[i].ecn = 0xff;
        d[i].flags = 0xff;
    }
    got = mio_udp_recv_batch(p->r, d, n);
    if (qhead == qtail) {
        REQUIRE(got == MIO_EAGAIN);
        return;
    }
    REQUIRE(got >= 1 && got <= (ssize_t)n);
    if (getenv("FUZZ_TRACE") != NULL)
        fprintf(stderr, "recv %zd of %zu (enabled %#x)\n", got, n, p->enabled);
    for (i = 0; i < (size_t)got; i++) {
        mio_datagram *x = &d[i];
        const unsigned char *bytes = x->buf;
        struct expected *e;
        size_t at = 0, total = 0, k, j, segs;
        bool truncated = (x->flags & MIO_DGRAM_TRUNCATED) != 0;

        REQUIRE(qhead != qtail);        /* nothing made up */
        e = &queue[qhead % QSIZE];
        if (getenv("FUZZ_TRACE") != NULL)
            fprintf(stderr, "got len %zu size %zu seg %u flags %#x ifindex %u; "
                    "next id %u len %zu segs %u\n", x->len, x->size, x->segment_size,
                    x->flags, x->ifindex, e->id, e->len, e->segs);
        REQUIRE((x->flags & ~MIO_DGRAM_TRUNCATED) == 0);
        REQUIRE(same_addr(&x->peer, &p->sa));
        REQUIRE(x->ecn == (ecn_on ? e->ecn : 0));
        if (p->enabled & MIO_UDP_RECV_LOCAL) {
            REQUIRE(x->local.len > 0 && same_host(&x->local, &p->ra));
            /* The interface is noted on arrival, if asked for then. */
            if (e->opts & MIO_UDP_RECV_LOCAL)
                REQUIRE(x->ifindex != 0);
        } else {
            REQUIRE(x->local.len == 0);
            REQUIRE(x->ifindex == 0);
        }
        /* One datagram, or every segment of a coalesced send. */
        segs = e->segs;
        for (k = 0; k < segs; k++) {
            REQUIRE(qhead + k != qtail);
            total += queue[(qhead + k) % QSIZE].len;
        }
        REQUIRE(truncated == (total > x->size));
        REQUIRE(x->len == (truncated ? x->size : total));
        /* The stride is told while GRO is on (on arrival decides whether
         * segments come at once), when the bytes hold more than one. */
        REQUIRE(x->segment_size == (segs > 1 && (p->enabled & MIO_UDP_GRO) &&
                                    e->stride < x->len ? e->stride : 0));
        for (k = 0; k < segs; k++) {
            e = &queue[qhead % QSIZE];
            if (k + 1 < segs)
                REQUIRE(e->len == e->stride);
            j = at >= x->len ? 0 : e->len < x->len - at ? e->len : x->len - at;
            REQUIRE(matching(&bytes[at], e->id, j) == j);
            at += e->len;
            queued_bytes -= e->len;
            qhead++;
        }
    }
    if (got < (ssize_t)n)
        REQUIRE(qhead == qtail);        /* a short batch: drained */
}

static void options(struct pair *p, uint8_t a, uint8_t b)
{
    uint32_t what = a & RECV_OPTIONS;
    int err;

    if (b & 1) {
        err = mio_udp_enable(p->r, what);
        if ((what & ~p->rcaps.available) != 0) {
            REQUIRE(err == MIO_ENOSYS);
        } else {
            REQUIRE(err == 0);
            p->enabled |= what;
        }
    } else {
        REQUIRE(mio_udp_disable(p->r, what) == 0);
        p->enabled &= ~what;
    }
    if (b & 2)      /* bits that are no option */
        REQUIRE(mio_udp_enable(p->r, what | 0x100u) == MIO_EINVAL);
    REQUIRE(mio_udp_caps(p->r, &p->rcaps) == 0);
    REQUIRE((p->rcaps.enabled & RECV_OPTIONS) == p->enabled);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t drain[4] = { 0 };
    static struct pair pairs[4];    /* by family and connected sender */
    struct pair *p;
    size_t at;

    if (size < 1)
        return 0;
    p = &pairs[data[0] & 3];
    if (!p->open) {
        mio_addr any;
        REQUIRE(mio_addr_parse(data[0] & 1 ? "[::1]:0" : "127.0.0.1:0", &any) == 0);
        if (mio_udp_bind(&any, &p->s) != 0)
            return 0;                   /* no IPv6 here */
        REQUIRE(mio_udp_bind(&any, &p->r) == 0);
        REQUIRE(mio_local_addr(p->s, &p->sa) == 0);
        REQUIRE(mio_local_addr(p->r, &p->ra) == 0);
        (void)mio_sockopt_set(p->r, MIO_SO_RCVBUF, 1 << 20);
        p->connected = (data[0] & 2) != 0;
        if (p->connected)
            REQUIRE(mio_udp_connect(p->s, &p->ra) == 0);
        REQUIRE(mio_udp_caps(p->r, &p->rcaps) == 0);
        p->open = true;
    }
    /* Every input starts from the same state: nothing queued (the last one
     * drained it), no receive option on. */
    REQUIRE(mio_udp_disable(p->r, p->rcaps.available & RECV_OPTIONS) == 0);
    p->enabled = 0;
    p->next_id = 0;
    qhead = qtail = queued_bytes = 0;
    REQUIRE(mio_udp_caps(p->s, &p->scaps) == 0);
    REQUIRE(mio_udp_caps(p->r, &p->rcaps) == 0);
    op_index = 0;
    for (at = 1; at + 4 <= size; at += 4, op_index++) {
        switch (data[at] % 5) {
        case 0:
        case 1:
            send_batch(p, data + at);
            break;
        case 2:
        case 3:
            recv_batch(p, data + at, false);
            break;
        case 4:
            options(p, data[at + 1], data[at + 2]);
            break;
        }
    }
    /* Whatever is left comes out whole. */
    while (qhead != qtail)
        recv_batch(p, drain, true);
    recv_batch(p, drain, true);         /* MIO_EAGAIN */
    return 0;
}
