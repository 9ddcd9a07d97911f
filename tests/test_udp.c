/* Datagrams: batches (mio_udp_send_batch, mio_udp_recv_batch) with their
 * peers, sizes, truncation, segmentation offload and its fallback, coalesced
 * receives, ECN and local addresses; multicast; socket options; Unix
 * datagram sockets and pairs.  Everything runs on loopback, in a temp dir,
 * or in a network namespace of the test's own (Linux, as root) whose
 * interfaces reach nothing but each other. */
#include "harness.h"

#include "child.h"

#include <stdarg.h>

#ifndef _WIN32
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#endif

/* "Eventually" means within this; nothing here should take close to it. */
#define LONG_WAIT (5 * MIO_SEC)

/* ---- helpers ---- */

static mio_addr addr(const char *text)
{
    mio_addr a;
    memset(&a, 0, sizeof a);
    OK(mio_addr_parse(text, &a));
    return a;
}

static uint16_t port_of(const mio_addr *a)
{
    return ntohs(a->u.sa.sa_family == AF_INET ? a->u.v4.sin_port : a->u.v6.sin6_port);
}

static mio_addr with_port(const char *host_text, uint16_t port)
{
    char text[128];
    snprintf(text, sizeof text, "%s:%u", host_text, (unsigned)port);
    return addr(text);
}

/* Same family, length and text. */
static void check_same_addr(const mio_addr *a, const mio_addr *b)
{
    char ta[MIO_ADDR_STRLEN + 128], tb[MIO_ADDR_STRLEN + 128];
    CHECK(mio_addr_format(a, ta, sizeof ta) >= 0);
    CHECK(mio_addr_format(b, tb, sizeof tb) >= 0);
    if (a->u.sa.sa_family != b->u.sa.sa_family || a->len != b->len || strcmp(ta, tb) != 0)
        FAIL("addresses differ: %s (len %d) vs %s (len %d)", ta, (int)a->len, tb, (int)b->len);
}

static void check_addr_text(const mio_addr *a, const char *text)
{
    char t[MIO_ADDR_STRLEN + 128];
    CHECK(mio_addr_format(a, t, sizeof t) >= 0);
    if (strcmp(t, text) != 0)
        FAIL("address %s, expected %s", t, text);
}

/* A UDP socket bound to `text`, and the address it got. */
static mio_fd udp_on(const char *text, mio_addr *bound)
{
    mio_addr a = addr(text);
    mio_fd fd = MIO_INVALID_FD;
    OK(mio_udp_bind(&a, &fd));
    CHECK(fd != MIO_INVALID_FD);
    OK(mio_local_addr(fd, bound));
    CHECK(port_of(bound) != 0);
    return fd;
}

/* An IPv6 loopback socket, or a skip where the host has no IPv6. */
static mio_fd udp6_on(const char *text, mio_addr *bound)
{
    mio_addr a = addr(text);
    mio_fd fd = MIO_INVALID_FD;
    int err = mio_udp_bind(&a, &fd);
    if (err == MIO_EADDRNOTAVAIL || err == MIO_EAFNOSUPPORT)
        SKIP("no IPv6 loopback here: %s", mio_strerror(err));
    OK(err);
    OK(mio_local_addr(fd, bound));
    return fd;
}

/* Bytes of datagram `seed`, byte i. */
static unsigned char pattern(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

static void fill(void *buf, size_t len, unsigned seed)
{
    size_t i;
    for (i = 0; i < len; i++)
        ((unsigned char *)buf)[i] = pattern(seed, i);
}

static void check_bytes(const void *buf, size_t len, unsigned seed, size_t from)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (((const unsigned char *)buf)[i] != pattern(seed, from + i))
            FAIL("datagram %u: byte %zu differs", seed, from + i);
}

/* n receive entries with `size` bytes of room each. */
static mio_datagram *recv_entries(size_t n, size_t size)
{
    mio_datagram *d = calloc(n, sizeof *d);
    size_t i;
    CHECK(d != NULL);
    for (i = 0; i < n; i++) {
        CHECK((d[i].buf = malloc(size > 0 ? size : 1)) != NULL);
        d[i].size = size;
    }
    return d;
}

static void free_entries(mio_datagram *d, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        free(d[i].buf);
    free(d);
}

/* Receives exactly `want` datagrams into d, waiting on a poll of this
 * run's backend between batches (every batch re-arms as the contract
 * says, or the wait times out). */
static void recv_exactly(mio_fd fd, mio_datagram *d, size_t want)
{
    int64_t deadline = test_now_ns() + LONG_WAIT;
    mio_poll *p = test_poll();
    mio_event ev[4];
    size_t got = 0;

    OK(mio_register(p, fd, 7, MIO_READABLE));
    while (got < want) {
        ssize_t r = mio_udp_recv_batch(fd, d + got, want - got);
        if (r == MIO_EAGAIN) {
            if (test_now_ns() > deadline)
                FAIL("received %zu of %zu datagrams", got, want);
            test_wait(p, ev, 4, 100 * MIO_MSEC);
            continue;
        }
        CHECK(r > 0);
        got += (size_t)r;
    }
    OK(mio_deregister(p, fd));
    mio_poll_free(p);
}

/* Nothing more arrives on fd within a little while. */
static void check_quiet(mio_fd fd)
{
    char buf[16];
    test_sleep_ms(50);
    CHECK_EQ(mio_udp_recv_from(fd, buf, sizeof buf, NULL), MIO_EAGAIN);
}

/* Sends every entry, waiting for room between batches. */
static void send_all(mio_fd fd, mio_datagram *d, size_t n)
{
    int64_t deadline = test_now_ns() + LONG_WAIT;
    size_t done = 0;
    while (done < n) {
        ssize_t r = mio_udp_send_batch(fd, d + done, n - done);
        if (r == MIO_EAGAIN) {
            CHECK(test_now_ns() < deadline);
            test_sleep_ms(1);
            continue;
        }
        CHECK(r > 0);
        done += (size_t)r;
    }
}

/* Waits until the flags reported for token contain `all`; fails after
 * LONG_WAIT. */
static void wait_for(mio_poll *p, mio_token token, uint32_t all)
{
    int64_t deadline = test_now_ns() + LONG_WAIT;
    uint32_t seen = 0;
    mio_event ev[8];
    while ((seen & all) != all) {
        int64_t left = deadline - test_now_ns();
        if (left <= 0)
            FAIL("token %u: waited for %#x, saw %#x", (unsigned)token, all, seen);
        seen |= test_flags(ev, test_wait(p, ev, 8, left), token);
    }
}

static void need_caps(mio_fd fd, uint32_t bits, const char *what)
{
    mio_udp_capabilities caps;
    OK(mio_udp_caps(fd, &caps));
    if ((caps.available & bits) != bits)
        SKIP("no %s on this OS or socket", what);
}

/* The loopback interface's index. */
static uint32_t loopback_index(void)
{
#ifdef _WIN32
    return 1;       /* "Loopback Pseudo-Interface 1" */
#else
    unsigned i = if_nametoindex("lo");
    if (i == 0)
        i = if_nametoindex("lo0");
    CHECK(i != 0);
    return i;
#endif
}

/* ---- batches: sizes, peers, order ---- */

/* Twenty datagrams of mixed sizes to two receivers, alternately, in one
 * batch: each receiver gets its ten in order, byte for byte, from the
 * sender's address. */
static void mixed_round_trip(const char *host, bool v6)
{
    static const size_t sizes[] = { 0, 1, 7, 100, 512, 1200, 1472, 4000, 9000, 30000 };
    enum { N = 20 };
    char any[64];
    mio_addr sa, ra[2];
    mio_fd s, r[2];
    mio_datagram out[N], *in[2];
    unsigned char *payload[N];
    size_t i, k;

    snprintf(any, sizeof any, v6 ? "[%s]:0" : "%s:0", host);
    s = v6 ? udp6_on(any, &sa) : udp_on(any, &sa);
    for (k = 0; k < 2; k++) {
        r[k] = v6 ? udp6_on(any, &ra[k]) : udp_on(any, &ra[k]);
        OK(mio_sockopt_set(r[k], MIO_SO_RCVBUF, 1 << 20));
        in[k] = recv_entries(N / 2, 65536);
    }
    memset(out, 0, sizeof out);
    for (i = 0; i < N; i++) {
        size_t len = sizes[(i / 2 + i % 2 * 3) % 10];
        payload[i] = malloc(len + 1);
        CHECK(payload[i] != NULL);
        fill(payload[i], len, (unsigned)i);
        out[i].buf = payload[i];
        out[i].len = len;
        out[i].peer = ra[i % 2];
    }
    CHECK_EQ(mio_udp_send_batch(s, out, N), N);
    /* A batch sent whole leaves its entries as they were. */
    for (i = 0; i < N; i++)
        CHECK(out[i].buf == payload[i]);
    for (k = 0; k < 2; k++) {
        recv_exactly(r[k], in[k], N / 2);
        for (i = 0; i < N / 2; i++) {
            const mio_datagram *got = &in[k][i], *sent = &out[2 * i + k];
            CHECK_EQ(got->len, sent->len);
            check_bytes(got->buf, got->len, (unsigned)(2 * i + k), 0);
            check_same_addr(&got->peer, &sa);
            CHECK_EQ(got->flags, 0);
            CHECK_EQ(got->segment_size, 0);
            CHECK_EQ(got->ecn, 0);
            CHECK_EQ(got->local.len, 0);
        }
        check_quiet(r[k]);
        free_entries(in[k], N / 2);
        OK(mio_close(r[k]));
    }
    for (i = 0; i < N; i++)
        free(payload[i]);
    OK(mio_close(s));
}

TEST(batch_round_trip_mixed_sizes_and_peers_ipv4)
{
    mixed_round_trip("127.0.0.1", false);
}

TEST(batch_round_trip_mixed_sizes_and_peers_ipv6)
{
    mixed_round_trip("::1", true);
}

/* Datagrams longer than their entry's room are cut and flagged, each on its
 * own; the others in the same batch are whole. */
TEST(batch_truncation_is_per_datagram)
{
    static const size_t sizes[] = { 100, 10, 50, 51, 3000 };
    enum { N = sizeof sizes / sizeof sizes[0] };
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram *in = recv_entries(N, 50);
    char buf[3000];
    size_t i;

    for (i = 0; i < N; i++) {
        fill(buf, sizes[i], (unsigned)i);
        CHECK_EQ(mio_udp_send_to(s, buf, sizes[i], &ra), sizes[i]);
    }
    recv_exactly(r, in, N);
    for (i = 0; i < N; i++) {
        bool cut = sizes[i] > 50;
        CHECK_EQ(in[i].len, cut ? 50 : sizes[i]);
        CHECK_EQ(in[i].flags, cut ? MIO_DGRAM_TRUNCATED : 0);
        check_bytes(in[i].buf, in[i].len, (unsigned)i, 0);
    }
    free_entries(in, N);
    OK(mio_close(s));
    OK(mio_close(r));
}

/* A batch larger than what the receiver may hold is taken in turns: each
 * call reports what it moved, and a short count drained the socket. */
TEST(batch_recv_in_parts)
{
    enum { N = 100 };
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram *in = recv_entries(N, 64);
    char buf[64];
    size_t i, got = 0;

    OK(mio_sockopt_set(r, MIO_SO_RCVBUF, 1 << 20));
    for (i = 0; i < N; i++) {
        fill(buf, 8 + i % 50, (unsigned)i);
        CHECK_EQ(mio_udp_send_to(s, buf, 8 + i % 50, &ra), 8 + i % 50);
    }
    test_settle();
    while (got < N) {
        int64_t deadline = test_now_ns() + LONG_WAIT;
        ssize_t n = mio_udp_recv_batch(r, in + got, got < 40 ? 7 : N - got);
        if (n == MIO_EAGAIN) {
            CHECK(test_now_ns() < deadline);
            test_sleep_ms(1);
            continue;
        }
        CHECK(n > 0);
        got += (size_t)n;
    }
    for (i = 0; i < N; i++) {
        CHECK_EQ(in[i].len, 8 + i % 50);
        check_bytes(in[i].buf, in[i].len, (unsigned)i, 0);
    }
    CHECK_EQ(mio_udp_recv_batch(r, in, N), MIO_EAGAIN);
    free_entries(in, N);
    OK(mio_close(s));
    OK(mio_close(r));
}

/* ---- segmentation ---- */

/* One entry cut into segments arrives as that many datagrams of the
 * segment size (the last shorter), in order: by the OS with offload, by
 * the library without.  Entries of more segments than one offloaded send
 * carries (64), and plain entries around them, too. */
TEST(segments_arrive_as_datagrams)
{
    static unsigned char big[50000], small[6100], plain[300];
    enum { N = 6 + 100 + 1 };
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram out[3], *in = recv_entries(N, 2048);
    size_t i, at;

    OK(mio_sockopt_set(r, MIO_SO_RCVBUF, 4 << 20));
    memset(out, 0, sizeof out);
    /* 6100 bytes by 1200: five of 1200, one of 100. */
    for (i = 0; i < sizeof small; i++)
        small[i] = pattern((unsigned)(i / 1200), i % 1200);
    out[0].buf = small;
    out[0].len = sizeof small;
    out[0].segment_size = 1200;
    /* 50000 bytes by 500: a hundred segments, more than one send takes. */
    for (i = 0; i < sizeof big; i++)
        big[i] = pattern((unsigned)(100 + i / 500), i % 500);
    out[1].buf = big;
    out[1].len = sizeof big;
    out[1].segment_size = 500;
    /* Shorter than its segment size: one datagram. */
    fill(plain, sizeof plain, 999);
    out[2].buf = plain;
    out[2].len = sizeof plain;
    out[2].segment_size = 1000;
    for (i = 0; i < 3; i++)
        out[i].peer = ra;
    send_all(s, out, 3);
    CHECK(out[0].buf == small && out[0].len == sizeof small);

    recv_exactly(r, in, N);
    for (i = 0, at = 0; i < 6; i++, at++) {
        CHECK_EQ(in[at].len, i < 5 ? 1200 : 100);
        check_bytes(in[at].buf, in[at].len, (unsigned)i, 0);
        CHECK_EQ(in[at].segment_size, 0);
        check_same_addr(&in[at].peer, &sa);
    }
    for (i = 0; i < 100; i++, at++) {
        CHECK_EQ(in[at].len, 500);
        check_bytes(in[at].buf, 500, (unsigned)(100 + i), 0);
    }
    CHECK_EQ(in[at].len, sizeof plain);
    check_bytes(in[at].buf, sizeof plain, 999, 0);
    check_quiet(r);
    free_entries(in, N);
    OK(mio_close(s));
    OK(mio_close(r));
}

/* With GRO on, segments sent with offload over loopback arrive as one
 * receive holding them all, with their stride; sent back as it is, that
 * entry goes out as the same segments. */
TEST(gro_receives_segments_coalesced)
{
    static unsigned char data[12000];
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram out, *in = recv_entries(1, 65535), *back = recv_entries(10, 2048);
    mio_udp_capabilities caps;
    size_t i;

    need_caps(s, MIO_UDP_GSO, "segmentation offload");
    need_caps(r, MIO_UDP_GRO, "receive coalescing");
    OK(mio_udp_enable(r, MIO_UDP_GRO));
    OK(mio_udp_caps(r, &caps));
    CHECK(caps.enabled & MIO_UDP_GRO);
    CHECK_EQ(caps.gro_segments, 64);
    for (i = 0; i < sizeof data; i++)
        data[i] = pattern((unsigned)(i / 1200), i % 1200);
    memset(&out, 0, sizeof out);
    out.buf = data;
    out.len = sizeof data;
    out.segment_size = 1200;
    out.peer = ra;
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);

    recv_exactly(r, in, 1);
    CHECK_EQ(in[0].len, sizeof data);
    CHECK_EQ(in[0].segment_size, 1200);
    CHECK_EQ(in[0].flags, 0);
    CHECK(memcmp(in[0].buf, data, sizeof data) == 0);
    check_same_addr(&in[0].peer, &sa);
    check_quiet(r);

    CHECK_EQ(mio_udp_send_batch(r, in, 1), 1);
    recv_exactly(s, back, 10);
    for (i = 0; i < 10; i++) {
        CHECK_EQ(back[i].len, 1200);
        check_bytes(back[i].buf, 1200, (unsigned)i, 0);
        check_same_addr(&back[i].peer, &ra);
    }
    free_entries(in, 1);
    free_entries(back, 10);
    OK(mio_close(s));
    OK(mio_close(r));
}

/* A coalesced receive that does not fit its entry is cut and flagged. */
TEST(gro_receive_too_small_is_truncated)
{
    static unsigned char data[4800];
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram out, *in = recv_entries(1, 2000);

    need_caps(s, MIO_UDP_GSO, "segmentation offload");
    need_caps(r, MIO_UDP_GRO, "receive coalescing");
    OK(mio_udp_enable(r, MIO_UDP_GRO));
    fill(data, sizeof data, 5);
    memset(&out, 0, sizeof out);
    out.buf = data;
    out.len = sizeof data;
    out.segment_size = 1200;
    out.peer = ra;
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    recv_exactly(r, in, 1);
    CHECK_EQ(in[0].len, 2000);
    CHECK_EQ(in[0].flags, MIO_DGRAM_TRUNCATED);
    check_bytes(in[0].buf, 2000, 5, 0);
    free_entries(in, 1);
    OK(mio_close(s));
    OK(mio_close(r));
}

/* A route that refuses segmentation offload (here the kernel's own refusal
 * of it on a socket without UDP checksums, EINVAL) costs no datagram: they
 * go out one by one, and the socket stops trying the offload. */
#ifdef __linux__
POSIX_TEST(gso_refused_falls_back_to_segments)
{
    static unsigned char data[4000];
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra), again;
    mio_datagram out[2], *in = recv_entries(9, 2048);
    mio_udp_capabilities caps;
    int one = 1;
    size_t i;

    need_caps(s, MIO_UDP_GSO, "segmentation offload");
    OK(mio_udp_caps(s, &caps));
    CHECK_EQ(caps.gso_segments, 64);
    CHECK(caps.enabled & MIO_UDP_GSO);
    CHECK(setsockopt(s, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one) == 0);
    for (i = 0; i < sizeof data; i++)
        data[i] = pattern((unsigned)(i / 1000), i % 1000);
    memset(out, 0, sizeof out);
    out[0].buf = data;
    out[0].len = sizeof data;
    out[0].segment_size = 1000;
    out[0].peer = ra;
    out[1].buf = data;
    out[1].len = 1000;
    out[1].peer = ra;
    CHECK_EQ(mio_udp_send_batch(s, out, 2), 2);
    CHECK(out[0].buf == data && out[0].len == sizeof data);
    recv_exactly(r, in, 5);
    for (i = 0; i < 5; i++) {
        CHECK_EQ(in[i].len, 1000);
        check_bytes(in[i].buf, 1000, (unsigned)(i % 4), 0);
    }
    OK(mio_udp_caps(s, &caps));
    CHECK_EQ(caps.gso_segments, 1);
    CHECK(!(caps.enabled & MIO_UDP_GSO));
    CHECK(caps.available & MIO_UDP_GSO);

    /* Later sends cut their segments themselves. */
    CHECK_EQ(mio_udp_send_batch(s, out, 1), 1);
    recv_exactly(r, in, 4);
    check_quiet(r);

    /* A new socket with the same number starts afresh. */
    OK(mio_close(s));
    again = udp_on("127.0.0.1:0", &sa);
    CHECK_EQ(again, s);
    OK(mio_udp_caps(again, &caps));
    CHECK_EQ(caps.gso_segments, 64);
    free_entries(in, 9);
    OK(mio_close(again));
    OK(mio_close(r));
}

/* A segmented entry refused for a reason of its own (port 0, which Linux
 * refuses with EINVAL as it refuses a failed offload) is refused without
 * the offload too: the error is the entry's, and the socket keeps the
 * offload. */
POSIX_TEST(gso_kept_when_the_entry_is_at_fault)
{
    static unsigned char data[4000];
    mio_addr sa;
    mio_fd s = udp_on("127.0.0.1:0", &sa);
    mio_datagram out;
    mio_udp_capabilities caps;

    need_caps(s, MIO_UDP_GSO, "segmentation offload");
    memset(&out, 0, sizeof out);
    out.buf = data;
    out.len = sizeof data;
    out.segment_size = 1000;
    out.peer = addr("127.0.0.1:0");
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), MIO_EINVAL);
    OK(mio_udp_caps(s, &caps));
    CHECK_EQ(caps.gso_segments, 64);
    OK(mio_close(s));
}
#endif

/* ---- the same fallback, injected: the fault shim fails every sendmmsg
 * that carries a segment size with EIO, as a virtual NIC without checksum
 * offload does.  The child sends two batches with segments; both arrive
 * whole, and the shim saw exactly one refused send: the second batch did
 * not try the offload again. ---- */

#ifndef _WIN32
CHILD_CASE(gso_fallback_child)
{
    static unsigned char data[6000];
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram out, *in = recv_entries(5, 2048);
    mio_udp_capabilities caps;
    int round;
    size_t i;

    OK(mio_udp_caps(s, &caps));
    if (caps.gso_segments != 64)
        SKIP("no segmentation offload");
    for (i = 0; i < sizeof data; i++)
        data[i] = pattern((unsigned)(i / 1200), i % 1200);
    for (round = 0; round < 2; round++) {
        memset(&out, 0, sizeof out);
        out.buf = data;
        out.len = sizeof data;
        out.segment_size = 1200;
        out.peer = ra;
        CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
        recv_exactly(r, in, 5);
        for (i = 0; i < 5; i++) {
            CHECK_EQ(in[i].len, 1200);
            check_bytes(in[i].buf, 1200, (unsigned)i, 0);
        }
        OK(mio_udp_caps(s, &caps));
        CHECK_EQ(caps.gso_segments, 1);
    }
    check_quiet(r);
    free_entries(in, 5);
    OK(mio_close(s));
    OK(mio_close(r));
}

POSIX_TEST(gso_fallback_under_injected_eio)
{
#ifdef MIO_FAULT_SHIM
    char path[4096], report[512], line[256], preload[4200];
    char *argv[] = { path, "gso_fallback_child", (char *)test_backend, NULL };
    unsigned long count = 0, faults = 0, c, f;
    const char *self = child_self_path();
    struct child ch;
    FILE *file;

    TEST_NOT_ON_LIBKQUEUE("faults injected into its own system calls");
    CHECK(self != NULL);
    snprintf(path, sizeof path, "%s", self);
    snprintf(report, sizeof report, "%s/report", test_tmp_dir());
    CHECK(setenv("MIO_FAULT_CALLS", "sendmmsg:EIO", 1) == 0);
    CHECK(setenv("MIO_FAULT_RATE", "1", 1) == 0);
    CHECK(setenv("MIO_FAULT_GSO", "1", 1) == 0);
    CHECK(setenv("MIO_FAULT_REPORT", report, 1) == 0);
    CHECK(setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=1", 1) == 0);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", MIO_FAULT_SHIM);
    child_start(&ch, argv, preload, CHILD_STDERR);
    {
        char err[4096];
        int status;
        child_read_all(&ch, err, sizeof err);
        status = child_wait(&ch);
        if (status == 77)
            SKIP("no segmentation offload");
        if (status != 0)
            FAIL("the child failed (%d): %s", status, err);
    }
    CHECK((file = fopen(report, "r")) != NULL);
    while (fgets(line, sizeof line, file) != NULL)
        if (sscanf(line, "call sendmmsg %lu faults %lu", &c, &f) == 2) {
            count = c;
            faults = f;
        }
    fclose(file);
    CHECK(count >= 1);
    CHECK_EQ(faults, 1);
#else
    SKIP("no system-call failure injection here (Linux with glibc only)");
#endif
}
#endif

/* ---- ECN and local addresses ---- */

/* Each codepoint sent comes back as sent. */
static void ecn_round_trip(bool v6)
{
    mio_addr sa, ra;
    mio_fd s = v6 ? udp6_on("[::1]:0", &sa) : udp_on("127.0.0.1:0", &sa);
    mio_fd r = v6 ? udp6_on("[::1]:0", &ra) : udp_on("127.0.0.1:0", &ra);
    mio_datagram out[8], *in = recv_entries(8, 64);
    mio_udp_capabilities caps;
    char buf[8] = "ecn";
    int i;

    if (v6)
        TEST_NOT_ON_WINE("it sets no IPv6 traffic class, by socket or by message");
    need_caps(s, MIO_UDP_SEND_ECN, "ECN on send");
    need_caps(r, MIO_UDP_RECV_ECN, "ECN on receive");
    OK(mio_udp_enable(r, MIO_UDP_RECV_ECN));
    OK(mio_udp_caps(r, &caps));
    CHECK(caps.enabled & MIO_UDP_RECV_ECN);
    memset(out, 0, sizeof out);
    for (i = 0; i < 8; i++) {
        out[i].buf = buf;
        out[i].len = 3;
        out[i].peer = ra;
        out[i].ecn = (uint8_t)(i % 4);
    }
    if (test_on_wine()) {
        /* wine sends no control messages: the receiving side is tested
         * with the codepoints set on the socket. */
        for (i = 0; i < 8; i++) {
            int tos = i % 4;
            CHECK(setsockopt(s, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS,
                             (const char *)&tos, sizeof tos) == 0);
            out[i].ecn = 0;
            CHECK_EQ(mio_udp_send_batch(s, out + i, 1), 1);
        }
    } else {
        CHECK_EQ(mio_udp_send_batch(s, out, 8), 8);
    }
    recv_exactly(r, in, 8);
    for (i = 0; i < 8; i++)
        CHECK_EQ(in[i].ecn, i % 4);

    /* Off again: no codepoint reported. */
    OK(mio_udp_disable(r, MIO_UDP_RECV_ECN));
    OK(mio_udp_caps(r, &caps));
    CHECK(!(caps.enabled & MIO_UDP_RECV_ECN));
    out[0].ecn = MIO_ECN_CE;
    CHECK_EQ(mio_udp_send_batch(s, out, 1), 1);
    recv_exactly(r, in, 1);
    CHECK_EQ(in[0].ecn, 0);
    /* On again. */
    OK(mio_udp_enable(r, MIO_UDP_RECV_ECN));
    CHECK_EQ(mio_udp_send_batch(s, out, 1), 1);
    recv_exactly(r, in, 1);
    CHECK_EQ(in[0].ecn, test_on_wine() ? 3 : MIO_ECN_CE);
    free_entries(in, 8);
    OK(mio_close(s));
    OK(mio_close(r));
}

TEST(ecn_round_trip_ipv4)
{
    ecn_round_trip(false);
}

TEST(ecn_round_trip_ipv6)
{
    ecn_round_trip(true);
}

/* A socket bound to the unspecified address learns which address each
 * datagram was sent to and on which interface; sent back as received,
 * each reply comes from that address. */
TEST(local_address_round_trip_ipv4)
{
#if defined(__linux__) || defined(_WIN32)
    static const char *const hosts[] = { "127.0.0.1", "127.0.0.2" };    /* all of 127/8 */
    enum { N = 2 };
#else
    static const char *const hosts[] = { "127.0.0.1" };
    enum { N = 1 };
#endif
    mio_addr sa, ra, to[N];
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("0.0.0.0:0", &ra);
    mio_datagram out[N], *in = recv_entries(N, 64), *back = recv_entries(N, 64);
    char text[64];
    int i;

    need_caps(r, MIO_UDP_RECV_LOCAL | MIO_UDP_SEND_LOCAL, "local addresses");
    OK(mio_udp_enable(r, MIO_UDP_RECV_LOCAL));
    memset(out, 0, sizeof out);
    for (i = 0; i < N; i++) {
        to[i] = with_port(hosts[i], port_of(&ra));
        out[i].buf = (void *)hosts[i];
        out[i].len = strlen(hosts[i]);
        out[i].peer = to[i];
    }
    CHECK_EQ(mio_udp_send_batch(s, out, N), N);
    recv_exactly(r, in, N);
    for (i = 0; i < N; i++) {
        snprintf(text, sizeof text, "%s:0", hosts[i]);
        check_addr_text(&in[i].local, text);
        CHECK(in[i].ifindex == loopback_index());
        check_same_addr(&in[i].peer, &sa);
    }
    CHECK_EQ(mio_udp_send_batch(r, in, N), N);
    recv_exactly(s, back, N);
    for (i = 0; i < N; i++) {
        CHECK_EQ(back[i].len, strlen(hosts[i]));
        /* wine sends no control messages: the OS picks the source. */
        if (!test_on_wine())
            check_same_addr(&back[i].peer, &to[i]);
    }
    free_entries(in, N);
    free_entries(back, N);
    OK(mio_close(s));
    OK(mio_close(r));
}

TEST(local_address_round_trip_ipv6)
{
    mio_addr sa, ra, to;
    mio_fd s = udp6_on("[::1]:0", &sa), r = udp6_on("[::]:0", &ra);
    mio_datagram out, *in = recv_entries(1, 64), *back = recv_entries(1, 64);

    need_caps(r, MIO_UDP_RECV_LOCAL | MIO_UDP_SEND_LOCAL, "local addresses");
    OK(mio_udp_enable(r, MIO_UDP_RECV_LOCAL));
    to = with_port("[::1]", port_of(&ra));
    memset(&out, 0, sizeof out);
    out.buf = "six";
    out.len = 3;
    out.peer = to;
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    recv_exactly(r, in, 1);
    check_addr_text(&in[0].local, "[::1]:0");
    CHECK(in[0].ifindex == loopback_index());
    CHECK_EQ(mio_udp_send_batch(r, in, 1), 1);
    recv_exactly(s, back, 1);
    check_same_addr(&back[0].peer, &to);
    free_entries(in, 1);
    free_entries(back, 1);
    OK(mio_close(s));
    OK(mio_close(r));
}

/* An IPv6 socket that takes IPv4 too (MIO_SO_V6ONLY off before the bind)
 * reports an IPv4 datagram's addresses IPv4-mapped, and replies from them. */
TEST(local_address_dual_stack)
{
    mio_addr sa, ra, any6 = addr("[::]:0"), to;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r;
    mio_datagram out, *in = recv_entries(1, 64), *back = recv_entries(1, 64);
    int err;

    OK(mio_udp_open(AF_INET6, &r));
    if ((err = mio_sockopt_set(r, MIO_SO_V6ONLY, 0)) == MIO_ENOSYS)
        SKIP("no dual-stack sockets");
    OK(err);
    if ((err = mio_bind(r, &any6)) == MIO_EADDRNOTAVAIL || err == MIO_EAFNOSUPPORT)
        SKIP("no IPv6 here");
    OK(err);
    OK(mio_local_addr(r, &ra));
    need_caps(r, MIO_UDP_RECV_LOCAL | MIO_UDP_SEND_LOCAL, "local addresses");
    OK(mio_udp_enable(r, MIO_UDP_RECV_LOCAL));
    to = with_port("127.0.0.1", port_of(&ra));
    memset(&out, 0, sizeof out);
    out.buf = "four";
    out.len = 4;
    out.peer = to;
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    recv_exactly(r, in, 1);
    CHECK_EQ(in[0].peer.u.sa.sa_family, AF_INET6);
    check_addr_text(&in[0].local, "[::ffff:127.0.0.1]:0");
    CHECK_EQ(mio_udp_send_batch(r, in, 1), 1);
    recv_exactly(s, back, 1);
    check_same_addr(&back[0].peer, &to);
    free_entries(in, 1);
    free_entries(back, 1);
    OK(mio_close(s));
    OK(mio_close(r));
}

/* ---- emulated edges: batches re-arm as the single calls do ---- */

/* A batch that receives fewer than it had room for drained the socket: no
 * further call is needed for the next arrival to be reported. */
TEST(recv_batch_short_count_rearms_edge)
{
    mio_poll *p = test_poll();
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram *in = recv_entries(8, 64);
    int round;

    OK(mio_register(p, r, 1, MIO_READABLE));
    for (round = 0; round < 3; round++) {
        CHECK_EQ(mio_udp_send_to(s, "a", 1, &ra), 1);
        CHECK_EQ(mio_udp_send_to(s, "b", 1, &ra), 1);
        wait_for(p, 1, MIO_READABLE);
        test_settle();
        CHECK_EQ(mio_udp_recv_batch(r, in, 8), 2);
    }
    free_entries(in, 8);
    OK(mio_close(s));
    OK(mio_close(r));
    mio_poll_free(p);
}

/* A full batch did not drain it; the MIO_EAGAIN that follows does. */
TEST(recv_batch_eagain_rearms_edge)
{
    mio_poll *p = test_poll();
    mio_addr sa, ra;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra);
    mio_datagram *in = recv_entries(2, 64);
    int round;

    OK(mio_register(p, r, 1, MIO_READABLE));
    for (round = 0; round < 3; round++) {
        CHECK_EQ(mio_udp_send_to(s, "a", 1, &ra), 1);
        CHECK_EQ(mio_udp_send_to(s, "b", 1, &ra), 1);
        wait_for(p, 1, MIO_READABLE);
        test_settle();
        CHECK_EQ(mio_udp_recv_batch(r, in, 2), 2);
        CHECK_EQ(mio_udp_recv_batch(r, in, 2), MIO_EAGAIN);
    }
    free_entries(in, 2);
    OK(mio_close(s));
    OK(mio_close(r));
    mio_poll_free(p);
}

/* ---- multicast ---- */

/* A group joined on the loopback interface gets what this host sends to
 * it there; left, it gets nothing. */
TEST(multicast_ipv4_on_loopback)
{
    mio_addr ra, sa, group = addr("239.255.77.41:0"), to;
    mio_fd r = udp_on("0.0.0.0:0", &ra), s = udp_on("127.0.0.1:0", &sa);
    uint32_t lo = loopback_index();
    mio_datagram out, *in = recv_entries(1, 64);
    int v, err;

    if ((err = mio_udp_join(r, &group, lo)) != 0)
        SKIP("cannot join a group on the loopback interface: %s", mio_strerror(err));
    CHECK_EQ(mio_udp_join(r, &group, lo), MIO_EADDRINUSE);
    if ((err = mio_sockopt_set(s, MIO_SO_MULTICAST_IF, (int)lo)) != 0)
        SKIP("cannot send multicast on the loopback interface: %s", mio_strerror(err));
    OK(mio_sockopt_set(s, MIO_SO_MULTICAST_LOOP, 1));
    OK(mio_sockopt_set(s, MIO_SO_MULTICAST_TTL, 1));
    OK(mio_sockopt_get(s, MIO_SO_MULTICAST_LOOP, &v));
    CHECK_EQ(v, 1);
    to = with_port("239.255.77.41", port_of(&ra));
    memset(&out, 0, sizeof out);
    out.buf = "group";
    out.len = 5;
    out.peer = to;
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    recv_exactly(r, in, 1);
    CHECK_EQ(in[0].len, 5);
    CHECK(memcmp(in[0].buf, "group", 5) == 0);

    OK(mio_udp_leave(r, &group, lo));
    CHECK_EQ(mio_udp_leave(r, &group, lo), MIO_EADDRNOTAVAIL);
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    check_quiet(r);
    free_entries(in, 1);
    OK(mio_close(r));
    OK(mio_close(s));
}

/* ---- Linux network namespaces: a veth pair of the test's own ---- */

#ifdef __linux__
/* Runs a shell command; whether it succeeded. */
static bool run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool run(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    int status;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    status = system(cmd);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Moves this process into a network namespace of its own with loopback up,
 * or skips; nothing done there reaches the host's interfaces. */
static void own_network(void)
{
    if (access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 &&
        access("/usr/bin/ip", X_OK) != 0)
        SKIP("no ip(8) to set up interfaces");
    if (unshare(CLONE_NEWNET) < 0)
        SKIP("no network namespace of our own: %s", strerror(errno));
    if (!run("ip link set lo up 2>/dev/null"))
        SKIP("cannot bring loopback up in a network namespace");
}

/* ethtool's feature switch on a device by its string name ("rx-gro",
 * "tx-udp-segmentation", ...); false where the kernel lacks it. */
static bool device_feature(const char *dev, const char *name, bool on)
{
    struct ifreq ifr;
    /* ethtool_sset_info and the one count it returns for one set. */
    union {
        struct ethtool_sset_info info;
        unsigned char room[sizeof(struct ethtool_sset_info) + sizeof(uint32_t)];
    } sset;
    struct ethtool_gstrings *names = NULL;
    struct ethtool_sfeatures *set = NULL;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), index = -1;
    uint32_t i, n, words;
    bool ok = false;

    CHECK(s >= 0);
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev);
    memset(&sset, 0, sizeof sset);
    sset.info.cmd = ETHTOOL_GSSET_INFO;
    sset.info.sset_mask = 1ull << ETH_SS_FEATURES;
    ifr.ifr_data = (void *)&sset;
    if (ioctl(s, SIOCETHTOOL, &ifr) < 0 || sset.info.sset_mask == 0)
        goto out;
    memcpy(&n, sset.room + offsetof(struct ethtool_sset_info, data), sizeof n);
    CHECK((names = calloc(1, sizeof *names + (size_t)n * ETH_GSTRING_LEN)) != NULL);
    names->cmd = ETHTOOL_GSTRINGS;
    names->string_set = ETH_SS_FEATURES;
    names->len = n;
    ifr.ifr_data = (void *)names;
    if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
        goto out;
    for (i = 0; i < n; i++)
        if (strncmp((const char *)names->data + (size_t)i * ETH_GSTRING_LEN, name,
                    ETH_GSTRING_LEN) == 0)
            index = (int)i;
    if (index < 0)
        goto out;
    words = (n + 31) / 32;
    CHECK((set = calloc(1, sizeof *set + words * sizeof set->features[0])) != NULL);
    set->cmd = ETHTOOL_SFEATURES;
    set->size = words;
    set->features[index / 32].valid = 1u << (index % 32);
    set->features[index / 32].requested = on ? 1u << (index % 32) : 0;
    ifr.ifr_data = (void *)set;
    ok = ioctl(s, SIOCETHTOOL, &ifr) >= 0;
out:
    free(names);
    free(set);
    close(s);
    return ok;
}

/* Sends `rounds` entries of `segs` segments of 1200 bytes from a second
 * namespace's end of the pair, each round once the parent says go. */
static void veth_sender(int ready, int go, const mio_addr *to, int rounds, int segs)
{
    static unsigned char data[64 * 1200];
    mio_addr a;
    mio_fd s;
    char c;
    int i;

    if (unshare(CLONE_NEWNET) < 0)
        _exit(3);
    if (write(ready, "n", 1) != 1 || read(go, &c, 1) != 1)
        _exit(3);
    if (!run("ip link set lo up && ip addr add 10.199.77.2/24 dev mio1 && ip link set mio1 up"))
        _exit(4);
    /* Segments cut by the device's software fallback, not handed over
     * whole: the other end sees separate packets to coalesce. */
    if (!device_feature("mio1", "tx-udp-segmentation", false))
        _exit(5);
    a = addr("10.199.77.2:0");
    if (mio_udp_bind(&a, &s) < 0)
        _exit(6);
    for (i = 0; i < segs * 1200; i++)
        data[i] = pattern((unsigned)(i / 1200), (size_t)(i % 1200));
    /* One plain datagram first: the neighbour is resolved before the
     * segments go. */
    if (mio_udp_send_to(s, "hello", 5, to) != 5 || write(ready, "h", 1) != 1)
        _exit(7);
    for (i = 0; i < rounds; i++) {
        mio_datagram out;
        if (read(go, &c, 1) != 1)
            _exit(8);
        memset(&out, 0, sizeof out);
        out.buf = data;
        out.len = (size_t)segs * 1200;
        out.segment_size = 1200;
        out.peer = *to;
        if (mio_udp_send_batch(s, &out, 1) != 1)
            _exit(9);
    }
    mio_close(s);
    _exit(0);
}

/* Real receive coalescing: a veth pair between two namespaces, the sending
 * end cutting segments in software, the receiving end's NAPI running GRO
 * over them; the socket gets the separate packets as coalesced receives
 * with their stride, and, with MIO_UDP_RECV_LOCAL, the veth's index. */
POSIX_TEST(gro_over_veth_between_namespaces)
{
    enum { ROUNDS = 4, SEGS = 8 };
    int ready[2], go[2], status, round, coalesced = 0;
    mio_addr ra, bound;
    mio_datagram *in = recv_entries(ROUNDS * SEGS, 65535);
    size_t got_bytes = 0, i;
    mio_fd r;
    pid_t pid;
    char c;

    own_network();
    if (!run("ip link add mio0 type veth peer name mio1 2>/dev/null"))
        SKIP("cannot make a veth pair");
    ra = addr("10.199.77.1:0");
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    if (!run("ip addr add 10.199.77.1/24 dev mio0 && ip link set mio0 up"))
        FAIL("cannot set up mio0");
    OK(mio_udp_bind(&ra, &r));
    OK(mio_local_addr(r, &bound));
    need_caps(r, MIO_UDP_GRO, "receive coalescing");
    OK(mio_udp_enable(r, MIO_UDP_GRO | MIO_UDP_RECV_LOCAL));
    OK(mio_sockopt_set(r, MIO_SO_RCVBUF, 4 << 20));
    /* GRO on the receiving veth: NAPI, and UDP coalescing for datagrams
     * of local sockets. */
    if (!device_feature("mio0", "rx-gro", false) || !device_feature("mio0", "rx-gro", true) ||
        !device_feature("mio0", "rx-udp-gro-forwarding", true))
        SKIP("this kernel's veth cannot coalesce UDP");
    CHECK((pid = fork()) >= 0);
    if (pid == 0)
        veth_sender(ready[1], go[0], &bound, ROUNDS, SEGS);
    CHECK(read(ready[0], &c, 1) == 1);
    if (!run("ip link set mio1 netns %d", (int)pid))
        FAIL("cannot move mio1 to the sender's namespace");
    CHECK(write(go[1], "g", 1) == 1);
    if (read(ready[0], &c, 1) != 1) {
        CHECK(waitpid(pid, &status, 0) == pid);
        SKIP("the sender could not set up its end (exit %d)", WEXITSTATUS(status));
    }
    recv_exactly(r, in, 1);
    CHECK_EQ(in[0].len, 5);
    for (round = 0; round < ROUNDS; round++) {
        size_t before = got_bytes;
        CHECK(write(go[1], "g", 1) == 1);
        while (got_bytes < before + SEGS * 1200) {
            mio_datagram *d = &in[0];
            size_t segs, seg;
            recv_exactly(r, d, 1);
            seg = d->segment_size != 0 ? d->segment_size : d->len;
            CHECK_EQ(seg, 1200);
            CHECK_EQ(d->len % 1200, 0);
            segs = d->len / 1200;
            for (i = 0; i < segs; i++)
                check_bytes((unsigned char *)d->buf + i * 1200, 1200,
                            (unsigned)((got_bytes - before) / 1200 + i), 0);
            if (d->segment_size != 0)
                coalesced++;
            check_addr_text(&d->local, "10.199.77.1:0");
            CHECK_EQ(d->ifindex, if_nametoindex("mio0"));
            got_bytes += d->len;
        }
        CHECK_EQ(got_bytes, before + SEGS * 1200);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (coalesced == 0)
        FAIL("no receive was coalesced");
    free_entries(in, ROUNDS * SEGS);
    OK(mio_close(r));
}

/* IPv6 multicast needs an interface that does it: a veth in a namespace of
 * our own (this host's own sockets get what it sends, MIO_SO_MULTICAST_LOOP
 * on; the other end is never read). */
POSIX_TEST(multicast_ipv6_in_namespace)
{
    mio_addr ra, sa, group = addr("[ff15::7741]:0"), to;
    mio_fd r, s;
    uint32_t ifindex;
    mio_datagram out, *in = recv_entries(1, 64);
    int v;

    own_network();
    if (!run("ip link add mio0 type veth peer name mio1 2>/dev/null && ip link set mio0 up && "
             "ip link set mio1 up && ip -6 addr add fd00:77::1/64 dev mio0 nodad"))
        SKIP("cannot make a veth pair with IPv6");
    ifindex = if_nametoindex("mio0");
    CHECK(ifindex != 0);
    r = udp6_on("[::]:0", &ra);
    s = udp6_on("[fd00:77::1]:0", &sa);
    OK(mio_udp_join(r, &group, ifindex));
    OK(mio_sockopt_set(s, MIO_SO_MULTICAST_IF, (int)ifindex));
    OK(mio_sockopt_get(s, MIO_SO_MULTICAST_IF, &v));
    CHECK_EQ(v, ifindex);
    OK(mio_sockopt_set(s, MIO_SO_MULTICAST_LOOP, 1));
    to = with_port("[ff15::7741]", port_of(&ra));
    memset(&out, 0, sizeof out);
    out.buf = "six";
    out.len = 3;
    out.peer = to;
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    recv_exactly(r, in, 1);
    CHECK(memcmp(in[0].buf, "six", 3) == 0);
    check_same_addr(&in[0].peer, &sa);
    OK(mio_udp_leave(r, &group, ifindex));
    CHECK_EQ(mio_udp_send_batch(s, &out, 1), 1);
    check_quiet(r);
    free_entries(in, 1);
    OK(mio_close(r));
    OK(mio_close(s));
}
#endif

/* ---- socket options ---- */

enum kind { UDP4, UDP6, TCP4 };

static mio_fd socket_of(enum kind k)
{
    mio_addr bound, any = addr("127.0.0.1:0");
    mio_fd fd = MIO_INVALID_FD;
    int err;
    switch (k) {
    case UDP4:
        OK(mio_udp_open(AF_INET, &fd));
        break;
    case UDP6:
        if ((err = mio_udp_open(AF_INET6, &fd)) == MIO_EAFNOSUPPORT)
            SKIP("no IPv6 sockets here");
        OK(err);
        break;
    case TCP4:
        OK(mio_tcp_listen(&any, 0, &fd));
        OK(mio_local_addr(fd, &bound));
        break;
    }
    return fd;
}

/* Every option set reads back as set (buffers: at least as large), or is
 * MIO_ENOSYS where the OS lacks it. */
TEST(socket_options_round_trip)
{
    static const struct {
        const char *name;
        int opt;
        enum kind kind;
        int values[3];
    } cases[] = {
        { "REUSEPORT", MIO_SO_REUSEPORT, UDP4, { 1, 0, 1 } },
        { "BROADCAST", MIO_SO_BROADCAST, UDP4, { 1, 0, 1 } },
        { "RCVBUF", MIO_SO_RCVBUF, UDP4, { 65536, 16384, 100000 } },
        { "SNDBUF", MIO_SO_SNDBUF, UDP4, { 65536, 16384, 100000 } },
        { "TTL v4", MIO_SO_TTL, UDP4, { 7, 255, 64 } },
        { "TTL v6", MIO_SO_TTL, UDP6, { 7, 255, 64 } },
        { "MULTICAST_TTL v4", MIO_SO_MULTICAST_TTL, UDP4, { 0, 9, 1 } },
        { "MULTICAST_TTL v6", MIO_SO_MULTICAST_TTL, UDP6, { 0, 9, 1 } },
        { "MULTICAST_LOOP v4", MIO_SO_MULTICAST_LOOP, UDP4, { 0, 1, 0 } },
        { "MULTICAST_LOOP v6", MIO_SO_MULTICAST_LOOP, UDP6, { 0, 1, 0 } },
        { "MULTICAST_IF v4", MIO_SO_MULTICAST_IF, UDP4, { -1, 0, -1 } },
        { "MULTICAST_IF v6", MIO_SO_MULTICAST_IF, UDP6, { -1, 0, -1 } },
        { "V6ONLY", MIO_SO_V6ONLY, UDP6, { 1, 0, 1 } },
        { "DONTFRAG v4", MIO_SO_DONTFRAG, UDP4, { 1, 0, MIO_DONTFRAG_PROBE } },
        { "DONTFRAG v6", MIO_SO_DONTFRAG, UDP6, { 1, 0, MIO_DONTFRAG_PROBE } },
        { "KEEPALIVE", MIO_SO_KEEPALIVE, TCP4, { 1, 0, 1 } },
        { "KEEPIDLE", MIO_SO_KEEPIDLE, TCP4, { 30, 7200, 1 } },
        { "KEEPINTVL", MIO_SO_KEEPINTVL, TCP4, { 5, 75, 1 } },
        { "KEEPCNT", MIO_SO_KEEPCNT, TCP4, { 3, 9, 1 } },
    };
    size_t i, j;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mio_fd fd = socket_of(cases[i].kind);
        for (j = 0; j < 3; j++) {
            int v = cases[i].values[j], got = -12345, err;
            if (v < 0)
                v = (int)loopback_index();
            err = mio_sockopt_set(fd, cases[i].opt, v);
            if (err == MIO_ENOSYS) {
                fprintf(stderr, "%s = %d: not on this OS\n", cases[i].name, v);
                continue;
            }
            if (err != 0)
                FAIL("%s = %d: %s", cases[i].name, v, mio_strerror(err));
            err = mio_sockopt_get(fd, cases[i].opt, &got);
            if (err == MIO_ENOSYS) {
                fprintf(stderr, "%s: set only on this OS\n", cases[i].name);
                continue;
            }
            if (err != 0)
                FAIL("%s: get: %s", cases[i].name, mio_strerror(err));
            if (cases[i].opt == MIO_SO_RCVBUF || cases[i].opt == MIO_SO_SNDBUF ? got < v : got != v)
                FAIL("%s: set %d, got %d", cases[i].name, v, got);
        }
        OK(mio_close(fd));
    }
}

/* Values out of range are MIO_EINVAL and change nothing; options of another
 * family are MIO_EAFNOSUPPORT. */
TEST(socket_options_bad_values_change_nothing)
{
    static const struct { int opt; int bad; } bad[] = {
        { MIO_SO_BROADCAST, 2 }, { MIO_SO_BROADCAST, -1 }, { MIO_SO_TTL, 0 },
        { MIO_SO_TTL, 256 }, { MIO_SO_MULTICAST_TTL, -1 }, { MIO_SO_MULTICAST_TTL, 256 },
        { MIO_SO_RCVBUF, 0 }, { MIO_SO_SNDBUF, -5 }, { MIO_SO_DONTFRAG, 3 },
        { MIO_SO_MULTICAST_LOOP, 7 }, { MIO_SO_MULTICAST_IF, -1 },
    };
    mio_fd fd = socket_of(UDP4);
    int before[sizeof bad / sizeof bad[0]], v;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err = mio_sockopt_get(fd, bad[i].opt, &before[i]);
        CHECK(err == 0 || err == MIO_ENOSYS);
        CHECK_EQ(mio_sockopt_set(fd, bad[i].opt, bad[i].bad), MIO_EINVAL);
        if (err == 0) {
            OK(mio_sockopt_get(fd, bad[i].opt, &v));
            CHECK_EQ(v, before[i]);
        }
    }
    CHECK_EQ(mio_sockopt_set(fd, 0, 1), MIO_EINVAL);
    CHECK_EQ(mio_sockopt_set(fd, 99, 1), MIO_EINVAL);
    CHECK_EQ(mio_sockopt_get(fd, 0, &v), MIO_EINVAL);
    CHECK_EQ(mio_sockopt_get(fd, 99, &v), MIO_EINVAL);
    CHECK_EQ(mio_sockopt_get(fd, MIO_SO_TTL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_sockopt_set(fd, MIO_SO_V6ONLY, 1), MIO_EAFNOSUPPORT);
    CHECK_EQ(mio_sockopt_get(fd, MIO_SO_V6ONLY, &v), MIO_EAFNOSUPPORT);
    OK(mio_close(fd));
}

/* Two sockets with MIO_SO_REUSEPORT share a port; a third without it may
 * not bind there. */
TEST(reuseport_shares_a_port)
{
    mio_addr any = addr("127.0.0.1:0"), bound;
    mio_fd a, b, c;
    int err;

    OK(mio_udp_open(AF_INET, &a));
    if ((err = mio_sockopt_set(a, MIO_SO_REUSEPORT, 1)) == MIO_ENOSYS)
        SKIP("no SO_REUSEPORT here");
    OK(err);
    OK(mio_bind(a, &any));
    OK(mio_local_addr(a, &bound));
    OK(mio_udp_open(AF_INET, &b));
    OK(mio_sockopt_set(b, MIO_SO_REUSEPORT, 1));
    OK(mio_bind(b, &bound));
    OK(mio_udp_open(AF_INET, &c));
    CHECK_EQ(mio_bind(c, &bound), MIO_EADDRINUSE);
    OK(mio_close(a));
    OK(mio_close(b));
    OK(mio_close(c));
}

/* MIO_SO_V6ONLY before the bind decides whether the IPv6 socket holds the
 * IPv4 port too. */
TEST(v6only_decides_the_ipv4_port)
{
    mio_addr any6 = addr("[::]:0"), bound, v4;
    mio_fd a, b, c;
    int err;

    OK(mio_udp_open(AF_INET6, &a));
    OK(mio_sockopt_set(a, MIO_SO_V6ONLY, 1));
    if ((err = mio_bind(a, &any6)) == MIO_EADDRNOTAVAIL || err == MIO_EAFNOSUPPORT)
        SKIP("no IPv6 here");
    OK(err);
    OK(mio_local_addr(a, &bound));
    v4 = with_port("0.0.0.0", port_of(&bound));
    OK(mio_udp_bind(&v4, &b));          /* the IPv4 port is free */
    OK(mio_close(b));
    OK(mio_close(a));

    OK(mio_udp_open(AF_INET6, &a));
    OK(mio_sockopt_set(a, MIO_SO_V6ONLY, 0));
    if ((err = mio_bind(a, &any6)) != 0)
        SKIP("no dual-stack binding here: %s", mio_strerror(err));
    OK(mio_local_addr(a, &bound));
    v4 = with_port("0.0.0.0", port_of(&bound));
    c = MIO_INVALID_FD;
    CHECK_EQ(mio_udp_bind(&v4, &c), MIO_EADDRINUSE);
    CHECK(c == MIO_INVALID_FD);
    OK(mio_close(a));
}

/* ---- capabilities and receive options ---- */

TEST(caps_are_consistent)
{
    mio_addr ra;
    mio_fd r = udp_on("127.0.0.1:0", &ra);
    mio_udp_capabilities caps;

    OK(mio_udp_caps(r, &caps));
    CHECK_EQ(caps.enabled & ~caps.available, 0);
    CHECK(caps.batch >= 1);
    CHECK_EQ(caps.gso_segments, (caps.enabled & MIO_UDP_GSO) ? 64 : 1);
    CHECK_EQ(caps.gro_segments, (caps.available & MIO_UDP_GRO) ? 64 : 1);
    CHECK_EQ(caps.enabled & (MIO_UDP_RECV_ECN | MIO_UDP_RECV_LOCAL | MIO_UDP_GRO), 0);
    fprintf(stderr, "available %#x gso %u gro %u batch %u\n", caps.available,
            caps.gso_segments, caps.gro_segments, caps.batch);
#ifdef __linux__
    CHECK_EQ(caps.available, 0x3f);
    CHECK_EQ(caps.batch, 32);
#endif
    OK(mio_close(r));
}

/* mio_udp_enable turns on all it is asked for or nothing. */
TEST(enable_is_all_or_nothing)
{
    const uint32_t all = MIO_UDP_RECV_ECN | MIO_UDP_RECV_LOCAL | MIO_UDP_GRO;
    mio_addr ra;
    mio_fd r = udp_on("127.0.0.1:0", &ra);
    mio_udp_capabilities caps;
    uint32_t have;
    int err;

    OK(mio_udp_caps(r, &caps));
    have = caps.available & all;
    err = mio_udp_enable(r, all);
    OK(mio_udp_caps(r, &caps));
    if (have == all) {
        OK(err);
        CHECK_EQ(caps.enabled & all, all);
        OK(mio_udp_disable(r, MIO_UDP_GRO));
        OK(mio_udp_caps(r, &caps));
        CHECK_EQ(caps.enabled & all, all & ~MIO_UDP_GRO);
    } else {
        CHECK_EQ(err, MIO_ENOSYS);
        CHECK_EQ(caps.enabled & all, 0);
        if (have != 0) {
            OK(mio_udp_enable(r, have));
            OK(mio_udp_caps(r, &caps));
            CHECK_EQ(caps.enabled & all, have);
        }
    }
    OK(mio_close(r));
}

/* ---- bad input ---- */

TEST(batch_bad_arguments_change_nothing)
{
    mio_addr sa, ra, bad;
    mio_fd s = udp_on("127.0.0.1:0", &sa), r = udp_on("127.0.0.1:0", &ra), fd = 0;
    mio_datagram out[3], *in = recv_entries(2, 64);
    char buf[16];
    int before = test_open_fds(), i;

    memset(out, 0, sizeof out);
    for (i = 0; i < 3; i++) {
        out[i].buf = "x";
        out[i].len = 1;
        out[i].peer = ra;
    }
    CHECK_EQ(mio_udp_send_batch(s, NULL, 1), MIO_EINVAL);
    CHECK_EQ(mio_udp_send_batch(s, NULL, 0), 0);
    CHECK_EQ(mio_udp_send_batch(s, out, 0), 0);
    out[2].ecn = 4;
    CHECK_EQ(mio_udp_send_batch(s, out, 3), MIO_EINVAL);
    out[2].ecn = 0;
    out[2].buf = NULL;
    CHECK_EQ(mio_udp_send_batch(s, out, 3), MIO_EINVAL);
    out[2].buf = "x";
    out[2].local = ra;
    out[2].local.len = 3;
    CHECK_EQ(mio_udp_send_batch(s, out, 3), MIO_EINVAL);
    memset(&out[2].local, 0, sizeof out[2].local);
    out[2].local.u.sa.sa_family = 0x7777;
    out[2].local.len = sizeof(struct sockaddr_in);
    CHECK_EQ(mio_udp_send_batch(s, out, 3), MIO_EINVAL);
    memset(&out[2].local, 0, sizeof out[2].local);
    bad = ra;
    bad.len = 1000;
    out[2].peer = bad;
    CHECK_EQ(mio_udp_send_batch(s, out, 3), MIO_EINVAL);
    bad.u.sa.sa_family = 0x7777;
    bad.len = sizeof(struct sockaddr_in);
    out[2].peer = bad;
    {
        ssize_t err = mio_udp_send_batch(s, out, 3);
        CHECK(err == MIO_EINVAL || err == MIO_EAFNOSUPPORT);
    }
    check_quiet(r);                     /* not even the good entries went */

    CHECK_EQ(mio_udp_recv_batch(r, NULL, 1), MIO_EINVAL);
    CHECK_EQ(mio_udp_recv_batch(r, in, 0), 0);
    CHECK_EQ(mio_udp_send_to(s, "y", 1, &ra), 1);
    test_settle();
    test_sleep_ms(20);
    free(in[1].buf);
    in[1].buf = NULL;
    CHECK_EQ(mio_udp_recv_batch(r, in, 2), MIO_EINVAL);
    CHECK_EQ(mio_udp_recv_from(r, buf, sizeof buf, NULL), 1);     /* still there */

    CHECK_EQ(mio_udp_enable(r, 0x100), MIO_EINVAL);
    CHECK_EQ(mio_udp_disable(r, MIO_UDP_GSO), MIO_EINVAL);
    OK(mio_udp_enable(r, 0));
    CHECK_EQ(mio_udp_caps(r, NULL), MIO_EINVAL);
    CHECK_EQ(mio_udp_open(AF_INET, NULL), MIO_EINVAL);
    CHECK_EQ(mio_udp_open(AF_UNIX, &fd), MIO_EAFNOSUPPORT);
    CHECK(fd == MIO_INVALID_FD);
    CHECK_EQ(mio_udp_open(12345, &fd), MIO_EAFNOSUPPORT);
    CHECK_EQ(mio_bind(s, NULL), MIO_EINVAL);
    CHECK_EQ(mio_udp_join(r, NULL, 0), MIO_EINVAL);
    CHECK_EQ(mio_udp_join(r, &sa, 0), MIO_EINVAL);              /* not multicast */
    CHECK_EQ(mio_udp_leave(r, &sa, 0), MIO_EINVAL);
    CHECK_EQ(mio_unix_dgram("x", NULL), MIO_EINVAL);
    CHECK_EQ(mio_dgram_pair(NULL), MIO_EINVAL);
    CHECK_EQ(mio_addr_unix(NULL, &bad), MIO_EINVAL);
    CHECK_EQ(mio_addr_unix("", &bad), MIO_EINVAL);
    CHECK_EQ(mio_addr_unix("x", NULL), MIO_EINVAL);
    CHECK_EQ(test_open_fds(), before);
    in[1].buf = malloc(1);
    free_entries(in, 2);
    OK(mio_close(s));
    OK(mio_close(r));
}

TEST(closed_socket_is_ebadf)
{
    mio_addr ra;
    mio_fd r = udp_on("127.0.0.1:0", &ra);
    mio_datagram d;
    mio_udp_capabilities caps;
    char buf[8] = "x";
    int v;

    OK(mio_close(r));
    memset(&d, 0, sizeof d);
    d.buf = buf;
    d.size = sizeof buf;
    d.len = 1;
    d.peer = ra;
    CHECK_EQ(mio_udp_send_batch(r, &d, 1), MIO_EBADF);
    CHECK_EQ(mio_udp_recv_batch(r, &d, 1), MIO_EBADF);
    CHECK_EQ(mio_udp_enable(r, MIO_UDP_RECV_ECN), MIO_EBADF);
    CHECK_EQ(mio_udp_caps(r, &caps), MIO_EBADF);
    CHECK_EQ(mio_sockopt_set(r, MIO_SO_TTL, 9), MIO_EBADF);
    CHECK_EQ(mio_sockopt_get(r, MIO_SO_RCVBUF, &v), MIO_EBADF);
    CHECK_EQ(mio_bind(r, &ra), MIO_EBADF);
}

/* ---- Unix datagram sockets ---- */

TEST(addr_unix_paths)
{
    char path[256];
    mio_addr a;

    OK(mio_addr_unix("/tmp/some.sock", &a));
    CHECK_EQ(a.u.sa.sa_family, AF_UNIX);
    check_addr_text(&a, "/tmp/some.sock");
    memset(path, 'p', sizeof path);
    path[sizeof path - 1] = '\0';
    CHECK_EQ(mio_addr_unix(path, &a), MIO_ENAMETOOLONG);
#ifdef __linux__
    OK(mio_addr_unix("@abstract name", &a));
    check_addr_text(&a, "@abstract name");
    CHECK_EQ(a.len, offsetof(struct sockaddr_un, sun_path) + 14);
    path[107] = '\0';
    path[0] = '@';
    OK(mio_addr_unix(path, &a));             /* '@' and 106 bytes fill sun_path */
    path[108] = '\0';
    path[107] = 'p';
    CHECK_EQ(mio_addr_unix(path, &a), MIO_ENAMETOOLONG);
#endif
}

#ifdef _WIN32
WINDOWS_TEST(unix_datagrams_unsupported)
{
    mio_fd fd = 0, pair[2];
    mio_addr a;
    OK(mio_addr_unix("x.sock", &a));
    CHECK_EQ(mio_unix_dgram("x.sock", &fd), MIO_EAFNOSUPPORT);
    CHECK_EQ(mio_unix_dgram(NULL, &fd), MIO_EAFNOSUPPORT);
    CHECK(fd == MIO_INVALID_FD);
    CHECK_EQ(mio_dgram_pair(pair), MIO_EAFNOSUPPORT);
    CHECK(pair[0] == MIO_INVALID_FD && pair[1] == MIO_INVALID_FD);
}
#else
/* Bound sockets at paths, one connected: datagrams both ways, each with
 * the sender's path. */
POSIX_TEST(unix_dgram_paths)
{
    char sp[256], cp[256], buf[64];
    mio_addr sa, ca, from;
    mio_fd srv, cli, other;
    mio_datagram d[2], *in = recv_entries(2, 64);

    snprintf(sp, sizeof sp, "%s/server.sock", test_tmp_dir());
    snprintf(cp, sizeof cp, "%s/client.sock", test_tmp_dir());
    OK(mio_unix_dgram(sp, &srv));
    OK(mio_unix_dgram(cp, &cli));
    OK(mio_addr_unix(sp, &sa));
    OK(mio_addr_unix(cp, &ca));
    OK(mio_local_addr(srv, &from));
    check_same_addr(&from, &sa);
    CHECK_EQ(mio_udp_send_to(cli, "one", 3, &sa), 3);
    CHECK_EQ(mio_udp_recv_from(srv, buf, sizeof buf, &from), 3);
    check_same_addr(&from, &ca);
    CHECK_EQ(mio_udp_send_to(srv, "back", 4, &from), 4);
    CHECK_EQ(mio_udp_recv_from(cli, buf, sizeof buf, &from), 4);
    check_same_addr(&from, &sa);

    /* Batches, addressed and connected. */
    memset(d, 0, sizeof d);
    d[0].buf = "two";
    d[0].len = 3;
    d[0].peer = sa;
    d[1].buf = "three";
    d[1].len = 5;
    CHECK_EQ(mio_udp_send_batch(cli, d, 1), 1);
    OK(mio_udp_connect(cli, &sa));
    CHECK_EQ(mio_udp_send_batch(cli, d + 1, 1), 1);
    recv_exactly(srv, in, 2);
    CHECK_EQ(in[0].len, 3);
    CHECK_EQ(in[1].len, 5);
    check_same_addr(&in[0].peer, &ca);
    check_same_addr(&in[1].peer, &ca);
    /* The received entries sent back as they are. */
    CHECK_EQ(mio_udp_send_batch(srv, in, 2), 2);
    recv_exactly(cli, in, 2);
    CHECK(memcmp(in[1].buf, "three", 5) == 0);

    /* A path already bound. */
    CHECK_EQ(mio_unix_dgram(sp, &other), MIO_EADDRINUSE);
    CHECK(other == MIO_INVALID_FD);
    /* No IP options on it. */
    CHECK_EQ(mio_udp_enable(srv, MIO_UDP_RECV_ECN), MIO_ENOSYS);
    CHECK_EQ(mio_sockopt_set(srv, MIO_SO_TTL, 9), MIO_EAFNOSUPPORT);
    free_entries(in, 2);
    OK(mio_close(srv));
    OK(mio_close(cli));
}

/* An unbound sender's datagrams come from no address. */
POSIX_TEST(unix_dgram_unbound_sender)
{
    char sp[256], buf[16];
    mio_addr sa, from;
    mio_fd srv, cli, late;
    mio_datagram *in = recv_entries(1, 64);

    snprintf(sp, sizeof sp, "%s/server.sock", test_tmp_dir());
    OK(mio_unix_dgram(sp, &srv));
    OK(mio_unix_dgram(NULL, &cli));
    OK(mio_addr_unix(sp, &sa));
    CHECK_EQ(mio_udp_send_to(cli, "anon", 4, &sa), 4);
    recv_exactly(srv, in, 1);
    CHECK_EQ(in[0].len, 4);
#ifdef __linux__
    CHECK_EQ(in[0].peer.len, 0);
#endif
    (void)from;
    (void)buf;
    /* Bound later with mio_bind. */
    OK(mio_unix_dgram(NULL, &late));
    snprintf(sp, sizeof sp, "%s/late.sock", test_tmp_dir());
    OK(mio_addr_unix(sp, &sa));
    OK(mio_bind(late, &sa));
    OK(mio_local_addr(late, &from));
    check_same_addr(&from, &sa);
    free_entries(in, 1);
    OK(mio_close(srv));
    OK(mio_close(cli));
    OK(mio_close(late));
}

/* A datagram pair: whole datagrams each way, in order. */
POSIX_TEST(dgram_pair_round_trip)
{
    mio_fd pair[2];
    mio_datagram out[5], *in = recv_entries(5, 4096);
    static unsigned char data[5][3000];
    char buf[8];
    int i;

    OK(mio_dgram_pair(pair));
    memset(out, 0, sizeof out);
    for (i = 0; i < 5; i++) {
        fill(data[i], (size_t)(i * 700), (unsigned)i);
        out[i].buf = data[i];
        out[i].len = (size_t)(i * 700);
    }
    CHECK_EQ(mio_udp_send_batch(pair[0], out, 5), 5);
    recv_exactly(pair[1], in, 5);
    for (i = 0; i < 5; i++) {
        CHECK_EQ(in[i].len, i * 700);
        check_bytes(in[i].buf, in[i].len, (unsigned)i, 0);
    }
    CHECK_EQ(mio_write(pair[1], "back", 4), 4);
    CHECK_EQ(mio_read(pair[0], buf, sizeof buf), 4);
    free_entries(in, 5);
    OK(mio_close(pair[0]));
    OK(mio_close(pair[1]));
}

/* A batch larger than the socket buffer stops at would-block with the count
 * sent; the edge re-arms; the rest follows once the reader made room, and
 * every datagram arrives once, in order.  A segmented entry that did not
 * fit whole goes on from where it stopped. */
POSIX_TEST(send_batch_stops_at_would_block)
{
    enum { N = 400, LEN = 1000 };
    static unsigned char data[N][LEN], segs[10 * LEN];
    mio_poll *p = test_poll();
    mio_fd pair[2];
    mio_datagram out[N + 1], *in = recv_entries(64, 2 * LEN);
    size_t sent = 0, got = 0, i;
    ssize_t r;
    int stops = 0;

    OK(mio_dgram_pair(pair));
    OK(mio_sockopt_set(pair[0], MIO_SO_SNDBUF, 8192));
    memset(out, 0, sizeof out);
    for (i = 0; i < N; i++) {
        fill(data[i], LEN, (unsigned)i);
        out[i].buf = data[i];
        out[i].len = LEN;
    }
    for (i = 0; i < sizeof segs; i++)
        segs[i] = pattern((unsigned)(N + i / LEN), i % LEN);
    out[N].buf = segs;
    out[N].len = sizeof segs;
    out[N].segment_size = LEN;
    OK(mio_register(p, pair[0], 1, MIO_WRITABLE));
    wait_for(p, 1, MIO_WRITABLE);
    while (got < N + 10) {
        r = mio_udp_send_batch(pair[0], out + sent, N + 1 - sent);
        if (r > 0) {
            sent += (size_t)r;
            CHECK(sent <= N + 1);
            if (sent < N + 1)
                CHECK_EQ(mio_udp_send_batch(pair[0], out + sent, N + 1 - sent), MIO_EAGAIN);
        } else if (sent < N + 1) {
            CHECK_EQ(r, MIO_EAGAIN);
        }
        if (sent < N + 1)
            stops++;
        /* The reader drains what there is; room makes the writer's edge. */
        for (;;) {
            ssize_t n = mio_udp_recv_batch(pair[1], in, 64);
            if (n == MIO_EAGAIN)
                break;
            CHECK(n > 0);
            for (i = 0; i < (size_t)n; i++, got++) {
                CHECK_EQ(in[i].len, LEN);
                check_bytes(in[i].buf, LEN, (unsigned)got, 0);
            }
        }
        if (sent < N + 1)
            wait_for(p, 1, MIO_WRITABLE);
        else if (got < N + 10)
            test_sleep_ms(1);
    }
    CHECK(stops > 0);
    CHECK_EQ(got, N + 10);
    CHECK_EQ(mio_udp_recv_batch(pair[1], in, 64), MIO_EAGAIN);
    free_entries(in, 64);
    OK(mio_deregister(p, pair[0]));
    OK(mio_close(pair[0]));
    OK(mio_close(pair[1]));
    mio_poll_free(p);
}
#endif

#ifdef __linux__
/* Abstract names: no file, shown with '@'; and "@" alone binds to a name
 * the kernel picks, which can be answered. */
POSIX_TEST(unix_dgram_abstract_names)
{
    char name[64], buf[16];
    mio_addr sa, ca, from;
    mio_fd srv, cli;
    struct stat st;

    snprintf(name, sizeof name, "@mio-test-%d", (int)getpid());
    OK(mio_unix_dgram(name, &srv));
    OK(mio_addr_unix(name, &sa));
    OK(mio_local_addr(srv, &from));
    check_same_addr(&from, &sa);
    check_addr_text(&from, name);
    CHECK(stat(name, &st) < 0);          /* no file of that name */
    OK(mio_unix_dgram("@", &cli));
    OK(mio_local_addr(cli, &ca));
    CHECK_EQ(ca.u.sa.sa_family, AF_UNIX);
    CHECK(ca.len > offsetof(struct sockaddr_un, sun_path) + 1);
    CHECK_EQ(mio_udp_send_to(cli, "hi", 2, &sa), 2);
    CHECK_EQ(mio_udp_recv_from(srv, buf, sizeof buf, &from), 2);
    check_same_addr(&from, &ca);
    CHECK_EQ(mio_udp_send_to(srv, "ok", 2, &from), 2);
    CHECK_EQ(mio_udp_recv_from(cli, buf, sizeof buf, NULL), 2);
    OK(mio_close(srv));
    OK(mio_close(cli));
    /* The name is free again with its socket gone. */
    OK(mio_unix_dgram(name, &srv));
    OK(mio_close(srv));
}
#endif
