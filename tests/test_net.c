/* Networking: addresses, TCP, UDP, Unix sockets, pairs and pipes, as the
 * contract describes them (non-blocking, close-on-exec, SIGPIPE-free,
 * negative MIO_E* codes).  Everything runs on loopback or in a temp dir.
 * Pipes and signals are POSIX_TESTs (mio_pipe is MIO_ENOSYS on Windows,
 * which has no POSIX signals); Unix socket tests skip where the OS has none. */
#include "harness.h"

#include "child.h"

#include <time.h>
#ifdef _WIN32
#include <afunix.h>     /* sockaddr_un */
#else
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>
#endif

/* ---- helpers ---- */

static mio_addr addr(const char *text)
{
    mio_addr a;
    memset(&a, 0, sizeof a);
    OK(mio_addr_parse(text, &a));
    return a;
}

/* Same family, length and text (address and port). */
static void check_same_addr(const mio_addr *a, const mio_addr *b)
{
    char ta[MIO_ADDR_STRLEN + 128], tb[MIO_ADDR_STRLEN + 128];
    CHECK_EQ(a->u.sa.sa_family, b->u.sa.sa_family);
    CHECK_EQ(a->len, b->len);
    CHECK(mio_addr_format(a, ta, sizeof ta) >= 0);
    CHECK(mio_addr_format(b, tb, sizeof tb) >= 0);
    if (strcmp(ta, tb) != 0)
        FAIL("addresses differ: %s vs %s", ta, tb);
}

#ifdef _WIN32
/* Not inheritable, and non-blocking: Windows cannot be asked, so with nothing
 * to read (on a listener, nothing to accept) the socket must say MIO_EAGAIN
 * rather than wait. */
static void check_nonblock_cloexec(mio_fd fd)
{
    mio_fd none;
    char c;
    if (test_inheritable(fd))
        FAIL("socket %llu is inheritable", (unsigned long long)fd);
    if (mio_read(fd, &c, 1) != MIO_EAGAIN && mio_tcp_accept(fd, &none, NULL) != MIO_EAGAIN)
        FAIL("socket %llu is blocking", (unsigned long long)fd);
}
#else
static void check_nonblock_cloexec(mio_fd fd)
{
    int fl = fcntl(fd, F_GETFL);
    CHECK(fl >= 0);
    if (!(fl & O_NONBLOCK))
        FAIL("fd %d is blocking", (int)fd);
    if (test_inheritable(fd))
        FAIL("fd %d is not close-on-exec", (int)fd);
}
#endif

/* A TCP port that refuses connections: bound, never listening, so no other
 * process can take it while the test runs. */
static mio_fd refusing_port(mio_addr *out)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    mio_fd s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s != MIO_INVALID_FD);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    OK(bind(s, (struct sockaddr *)&sin, sizeof sin));
    OK(getsockname(s, (struct sockaddr *)&sin, &len));
    memset(out, 0, sizeof *out);
    out->u.v4 = sin;
    out->len = sizeof sin;
    return s;
}

/* SIGPIPE as a fresh process has it: default action (death), unblocked.
 * Windows has no SIGPIPE: a write to a closed peer is an error, no more. */
static void sigpipe_kills(void)
{
#ifndef _WIN32
    sigset_t s;
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    OK(pthread_sigmask(SIG_UNBLOCK, &s, NULL));
#endif
}

/* Writes (write or writev) to fd until the library reports an error, giving
 * the peer's reset time to arrive between tries; returns that error. */
static ssize_t write_until_error(mio_fd fd, bool vectored)
{
    int64_t deadline = test_now_ns() + TEST_LONG_WAIT;
    char byte = 'x';
    mio_iovec iov[2] = { { &byte, 1 }, { &byte, 1 } };
    ssize_t n;
    for (;;) {
        n = vectored ? mio_writev(fd, iov, 2) : mio_write(fd, &byte, 1);
        if (n < 0 && n != MIO_EAGAIN)
            return n;
        CHECK(test_now_ns() < deadline);
        test_sleep_ms(1);
    }
}


/* Whether the OS has Unix sockets.  Windows before 10 1803 and wine do not:
 * creating one fails there for its address family. */
static bool have_unix_sockets(void)
{
#ifdef _WIN32
    mio_fd fd;
    int err = mio_unix_connect("mio-nowhere.sock", &fd);
    if (err == 0)
        OK(mio_close(fd));
    return err != MIO_EAFNOSUPPORT;
#else
    return true;
#endif
}

static void need_unix_sockets(void)
{
    if (!have_unix_sockets())
        SKIP("no Unix sockets on this Windows");
}

/* ---- mio_addr_parse ---- */

TEST(addr_parse_ipv4)
{
    static const struct { const char *text; uint32_t ip; unsigned port; } ok[] = {
        { "1.2.3.4:80", 0x01020304u, 80 },
        { "0.0.0.0:0", 0, 0 },
        { "255.255.255.255:65535", 0xffffffffu, 65535 },
        { "127.0.0.1:8080", 0x7f000001u, 8080 },
    };
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mio_addr a;
        memset(&a, 0xa5, sizeof a);
        if (mio_addr_parse(ok[i].text, &a) != 0)
            FAIL("rejected %s", ok[i].text);
        CHECK_EQ(a.u.sa.sa_family, AF_INET);
        CHECK_EQ(a.len, sizeof(struct sockaddr_in));
        CHECK_EQ(ntohl(a.u.v4.sin_addr.s_addr), ok[i].ip);
        CHECK_EQ(ntohs(a.u.v4.sin_port), ok[i].port);
    }
}

TEST(addr_parse_ipv6)
{
    static const unsigned char mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4 };
    static const unsigned char link1[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    mio_addr a;

    OK(mio_addr_parse("[::1]:80", &a));
    CHECK_EQ(a.u.sa.sa_family, AF_INET6);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in6));
    CHECK(memcmp(&a.u.v6.sin6_addr, &in6addr_loopback, 16) == 0);
    CHECK_EQ(ntohs(a.u.v6.sin6_port), 80);
    CHECK_EQ(a.u.v6.sin6_scope_id, 0);

    OK(mio_addr_parse("[::]:0", &a));
    CHECK_EQ(a.u.sa.sa_family, AF_INET6);
    CHECK(memcmp(&a.u.v6.sin6_addr, &in6addr_any, 16) == 0);
    CHECK_EQ(ntohs(a.u.v6.sin6_port), 0);

    OK(mio_addr_parse("[fe80::1%2]:8080", &a));
    CHECK_EQ(a.u.sa.sa_family, AF_INET6);
    CHECK(memcmp(&a.u.v6.sin6_addr, link1, 16) == 0);
    CHECK_EQ(a.u.v6.sin6_scope_id, 2);
    CHECK_EQ(ntohs(a.u.v6.sin6_port), 8080);

    OK(mio_addr_parse("[::ffff:1.2.3.4]:1", &a));
    CHECK_EQ(a.u.sa.sa_family, AF_INET6);
    CHECK(memcmp(&a.u.v6.sin6_addr, mapped, 16) == 0);
    CHECK_EQ(ntohs(a.u.v6.sin6_port), 1);
}

/* Every one of the n texts is refused, MIO_EINVAL. */
static void check_rejected(const char *const *bad, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        mio_addr a;
        if (mio_addr_parse(bad[i], &a) != MIO_EINVAL)
            FAIL("accepted \"%s\"", bad[i]);
    }
}

TEST(addr_parse_rejects_malformed_ipv4)
{
    static const char *const bad[] = {
        "", "1.2.3.4", "1.2.3.4:", ":80", "1.2.3:80", "1.2.3.4.5:80",
        "256.1.1.1:80", "01.2.3.4:80", "1.2.3.4:65536", "1.2.3.4:99999",
        "1.2.3.4:-1", "1.2.3.4:+80", "1.2.3.4: 80", " 1.2.3.4:80",
        "1.2.3.4:80 ", "0x7f.0.0.1:80", "1.2.3.4:0x50", "1.2.3.4:80:80",
        "1..3.4:80", "1.2.3.4::80", "127.1:80",
    };
    check_rejected(bad, sizeof bad / sizeof bad[0]);
}

TEST(addr_parse_rejects_malformed_ipv6)
{
    static const char *const bad[] = {
        "[::1]", "[::1]80", "::1:80", "[::1]:", "[1.2.3.4]:80", "[fe80::1%]:80",
        "[::1]:80x", "[::1]:65536", "[]:80", "[::1:80", "::1]:80", "[[::1]]:80",
        "[::1]]:80", "[:::1]:80", "[::1] :80", "[fe80::1%-2]:80", "[fe80::1%2x]:80",
        "[fe80::1%99999999999]:80",
    };
    check_rejected(bad, sizeof bad / sizeof bad[0]);
}

/* No DNS, no interface-name lookup: only numbers. */
TEST(addr_parse_rejects_names)
{
    mio_addr a;
    CHECK_EQ(mio_addr_parse("localhost:80", &a), MIO_EINVAL);
    CHECK_EQ(mio_addr_parse("[localhost]:80", &a), MIO_EINVAL);
    CHECK_EQ(mio_addr_parse("[fe80::1%eth0]:80", &a), MIO_EINVAL);
    CHECK_EQ(mio_addr_parse("[fe80::1%lo]:80", &a), MIO_EINVAL);
}

static char why_log[1024];

static void why_collect(int level, const char *msg, void *ud)
{
    (void)ud;
    if (level == MIO_LOG_DEBUG)
        snprintf(why_log, sizeof why_log, "%s", msg);
}

/* Every refusal is MIO_EINVAL; the debug trace says what was wrong. */
TEST(addr_parse_says_why_at_debug_level)
{
    static const struct { const char *text, *why; } bad[] = {
        { "127.0.0.1", "missing ':port'" },
        { "127.0.0.1:", "no port after the ':'" },
        { "127.0.0.1:65536", "port out of range (0 to 65535)" },
        { "127.0.0.1:123456", "port out of range (0 to 65535)" },
        { "127.0.0.1:8o", "the port is not a decimal number" },
        { "::1:80", "an IPv6 address needs brackets" },
        { "fe80::1", "an IPv6 address needs brackets" },
        { ":80", "no address before the ':'" },
        { "example.com:80", "not a dotted-quad IPv4 address" },
        { "1.2.3:80", "not a dotted-quad IPv4 address" },
        { "[::1:80", "no ']' closing the IPv6 address" },
        { "[::1]", "missing ':port' after the IPv6 address's ']'" },
        { "[::1]80", "missing ':port' after the IPv6 address's ']'" },
        { "[]:80", "empty IPv6 address between the brackets" },
        { "[::g]:80", "not an IPv6 address between the brackets" },
        { "[fe80::1%]:80", "empty scope after '%'" },
        { "[fe80::1%eth0]:80", "the scope after '%' must be an interface number, not a name" },
        { "[fe80::1%99999999999]:80", "scope out of range" },
        { "[::1]:99999", "port out of range (0 to 65535)" },
    };
    mio_addr a;
    char expect[160];
    size_t i;

    mio_set_log(why_collect, NULL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why_log[0] = '\0';
        CHECK_EQ(mio_addr_parse(bad[i].text, &a), MIO_EINVAL);
        snprintf(expect, sizeof expect, "mio_addr_parse \"%s\": %s", bad[i].text, bad[i].why);
        if (strncmp(why_log, expect, strlen(expect)) != 0)
            FAIL("%s: traced \"%s\"", bad[i].text, why_log);
    }
    mio_set_log(NULL, NULL);
}

TEST(addr_parse_null_is_einval)
{
    mio_addr a;
    CHECK_EQ(mio_addr_parse(NULL, &a), MIO_EINVAL);
    CHECK_EQ(mio_addr_parse("1.2.3.4:80", NULL), MIO_EINVAL);
}

/* ---- mio_addr_ip ---- */

/* The same address as mio_addr_parse makes of the text with the port. */
TEST(addr_ip_matches_parse)
{
    static const struct { const char *ip, *text; uint16_t port; } same[] = {
        { "1.2.3.4", "1.2.3.4:80", 80 },
        { "0.0.0.0", "0.0.0.0:0", 0 },
        { "255.255.255.255", "255.255.255.255:65535", 65535 },
        { "::1", "[::1]:443", 443 },
        { "::", "[::]:0", 0 },
        { "fe80::1%2", "[fe80::1%2]:8080", 8080 },
        { "::ffff:1.2.3.4", "[::ffff:1.2.3.4]:1", 1 },
        { "2001:db8::ff00:42:8329", "[2001:db8::ff00:42:8329]:65535", 65535 },
    };
    size_t i;
    for (i = 0; i < sizeof same / sizeof same[0]; i++) {
        mio_addr a, b;
        char buf[MIO_ADDR_STRLEN];
        memset(&a, 0xa5, sizeof a);
        if (mio_addr_ip(same[i].ip, same[i].port, &a) != 0)
            FAIL("refused %s", same[i].ip);
        OK(mio_addr_parse(same[i].text, &b));
        CHECK_EQ(a.len, b.len);
        CHECK(memcmp(&a, &b, sizeof a) == 0);   /* the padding too: zeroed */
        CHECK(mio_addr_format(&a, buf, sizeof buf) > 0);
        CHECK(strcmp(buf, same[i].text) == 0);
    }
}

/* The port is taken in host order and stored in network order. */
TEST(addr_ip_port_in_host_order)
{
    mio_addr a;
    OK(mio_addr_ip("127.0.0.1", 0x1234, &a));
    CHECK_EQ(a.u.sa.sa_family, AF_INET);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in));
    CHECK_EQ(ntohs(a.u.v4.sin_port), 0x1234);
    CHECK_EQ(ntohl(a.u.v4.sin_addr.s_addr), 0x7f000001u);
    OK(mio_addr_ip("::1", 0x1234, &a));
    CHECK_EQ(a.u.sa.sa_family, AF_INET6);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in6));
    CHECK_EQ(ntohs(a.u.v6.sin6_port), 0x1234);
}

/* Anything but a literal is MIO_EINVAL, and *out keeps what it held. */
TEST(addr_ip_rejects_all_but_literals)
{
    static const char *const bad[] = {
        "", " ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "0x7f.0.0.1", "127.1",
        " 1.2.3.4", "1.2.3.4 ", "1.2.3.4:80", "[::1]", "[::1]:80", ":::1", "::1%",
        "fe80::1%eth0", "fe80::1%-2", "fe80::1%99999999999", "localhost", "::1:80:",
        "1.2.3.4/24", "[1.2.3.4]",
    };
    mio_addr a, before;
    size_t i;

    memset(&before, 0x5a, sizeof before);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = before;
        if (mio_addr_ip(bad[i], 80, &a) != MIO_EINVAL)
            FAIL("accepted \"%s\"", bad[i]);
        CHECK(memcmp(&a, &before, sizeof a) == 0);
    }
    CHECK_EQ(mio_addr_ip(NULL, 80, &a), MIO_EINVAL);
    CHECK(memcmp(&a, &before, sizeof a) == 0);
    CHECK_EQ(mio_addr_ip("1.2.3.4", 80, NULL), MIO_EINVAL);
}

/* What mio_addr_ip makes, a socket takes: a listener and a connection on
 * it, IPv4 and (where the host has it) IPv6. */
TEST(addr_ip_listens_and_connects)
{
    static const char *const ips[] = { "127.0.0.1", "::1" };
    size_t i;
    for (i = 0; i < 2; i++) {
        mio_addr a, bound;
        mio_fd l, c, s;
        int err;
        OK(mio_addr_ip(ips[i], 0, &a));
        err = mio_tcp_listen(&a, 0, &l);
        if (i == 1 && (err == MIO_EADDRNOTAVAIL || err == MIO_EAFNOSUPPORT))
            continue;   /* no IPv6 loopback on this host */
        OK(err);
        OK(mio_local_addr(l, &bound));
        CHECK_EQ(bound.u.sa.sa_family, a.u.sa.sa_family);
        OK(mio_tcp_connect(&bound, &c));
        s = test_accept(l, NULL);
        OK(mio_close(s));
        OK(mio_close(c));
        OK(mio_close(l));
    }
}

/* ---- mio_addr_sockaddr ---- */

TEST(addr_sockaddr_copies_inet)
{
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    struct sockaddr_storage ss;
    mio_addr a, b;

    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons(8080);
    v4.sin_addr.s_addr = htonl(0x0a000001u);
    memset(&a, 0xa5, sizeof a);
    OK(mio_addr_sockaddr((const struct sockaddr *)&v4, sizeof v4, &a));
    OK(mio_addr_parse("10.0.0.1:8080", &b));
    CHECK(memcmp(&a, &b, sizeof a) == 0);

    memset(&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(443);
    v6.sin6_addr = in6addr_loopback;
    v6.sin6_scope_id = 3;
    OK(mio_addr_sockaddr((const struct sockaddr *)&v6, sizeof v6, &a));
    OK(mio_addr_parse("[::1%3]:443", &b));
    CHECK(memcmp(&a, &b, sizeof a) == 0);

    /* A larger buffer (sockaddr_storage, as recvfrom fills it): the
     * family's own length is kept, the rest ignored. */
    memset(&ss, 0x77, sizeof ss);
    memcpy(&ss, &v4, sizeof v4);
    OK(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof ss, &a));
    CHECK_EQ(a.len, sizeof v4);
    OK(mio_addr_parse("10.0.0.1:8080", &b));
    CHECK(memcmp(&a, &b, sizeof a) == 0);
}

/* A Unix address keeps its length (the path's end), and round-trips what
 * the calls that take one are given. */
TEST(addr_sockaddr_copies_unix)
{
    char path[256], buf[512];
    mio_addr u, a;

    snprintf(path, sizeof path, "%s/x.sock", test_tmp_dir());
    OK(mio_addr_unix(path, &u));
    OK(mio_addr_sockaddr(&u.u.sa, u.len, &a));
    CHECK_EQ(a.len, u.len);
    CHECK(memcmp(&a, &u, sizeof a) == 0);
    CHECK(mio_addr_format(&a, buf, sizeof buf) > 0);
    CHECK(strcmp(buf, path) == 0);
    /* The family alone: an unnamed socket. */
    OK(mio_addr_sockaddr(&u.u.sa, offsetof(struct sockaddr_un, sun_path), &a));
    CHECK_EQ(mio_addr_format(&a, buf, sizeof buf), 0);
}

/* A family other than IPv4, IPv6 and Unix, a length short of the family's,
 * or NULL: refused, and *out keeps what it held. */
TEST(addr_sockaddr_refuses_bad_input)
{
    struct sockaddr_storage ss;
    mio_addr a, before;

    memset(&before, 0x5a, sizeof before);
    a = before;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_INET;
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof(struct sockaddr_in) - 1, &a),
             MIO_EINVAL);
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, 0, &a), MIO_EINVAL);
    ss.ss_family = AF_INET6;
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof(struct sockaddr_in), &a),
             MIO_EINVAL);
    ss.ss_family = AF_UNIX;
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof ss, &a), MIO_EINVAL);
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, 1, &a), MIO_EINVAL);
    ss.ss_family = AF_UNSPEC;
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof ss, &a), MIO_EAFNOSUPPORT);
    ss.ss_family = 250;
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof ss, &a), MIO_EAFNOSUPPORT);
    CHECK(memcmp(&a, &before, sizeof a) == 0);
    CHECK_EQ(mio_addr_sockaddr(NULL, sizeof ss, &a), MIO_EINVAL);
    CHECK(memcmp(&a, &before, sizeof a) == 0);
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof ss, NULL), MIO_EINVAL);
}

/* ---- mio_addr_format ---- */

static const char *const canonical[] = {
    "1.2.3.4:80", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:80", "[::]:0",
    "[fe80::1%2]:8080", "[::ffff:1.2.3.4]:1", "[2001:db8::ff00:42:8329]:443",
};

TEST(addr_format_round_trips)
{
    size_t i;
    for (i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        char buf[MIO_ADDR_STRLEN];
        mio_addr a = addr(canonical[i]);
        int n;
        memset(buf, 'z', sizeof buf);
        n = mio_addr_format(&a, buf, sizeof buf);
        CHECK_EQ(n, strlen(canonical[i]));
        CHECK_EQ(buf[n], '\0');
        if (strcmp(buf, canonical[i]) != 0)
            FAIL("%s formatted as %s", canonical[i], buf);
    }
}

/* The exact size fits; one byte short (no room for the NUL) does not. */
TEST(addr_format_needs_room_for_nul)
{
    size_t i;
    for (i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        char buf[MIO_ADDR_STRLEN];
        mio_addr a = addr(canonical[i]);
        size_t len = strlen(canonical[i]);
        CHECK_EQ(mio_addr_format(&a, buf, len), MIO_ENOSPC);
        CHECK_EQ(mio_addr_format(&a, buf, 1), MIO_ENOSPC);
        CHECK_EQ(mio_addr_format(&a, buf, 0), MIO_ENOSPC);
        CHECK_EQ(mio_addr_format(&a, buf, len + 1), len);
        CHECK(strcmp(buf, canonical[i]) == 0);
    }
}

TEST(addr_format_null_is_einval)
{
    char buf[MIO_ADDR_STRLEN];
    mio_addr a = addr("1.2.3.4:80");
    CHECK_EQ(mio_addr_format(NULL, buf, sizeof buf), MIO_EINVAL);
    CHECK_EQ(mio_addr_format(&a, NULL, sizeof buf), MIO_EINVAL);
}

TEST(addr_format_rejects_garbage)
{
    char buf[MIO_ADDR_STRLEN];
    mio_addr a;
    int err;

    memset(&a, 0, sizeof a);
    a.u.sa.sa_family = 0x7777;
    a.len = sizeof(struct sockaddr_in);
    err = mio_addr_format(&a, buf, sizeof buf);
    CHECK(err == MIO_EAFNOSUPPORT || err == MIO_EINVAL);

    a = addr("1.2.3.4:80");
    a.len = 3;
    CHECK_EQ(mio_addr_format(&a, buf, sizeof buf), MIO_EINVAL);
    a.len = 1000;
    CHECK_EQ(mio_addr_format(&a, buf, sizeof buf), MIO_EINVAL);

    a = addr("[::1]:80");
    a.len = sizeof(struct sockaddr_in);
    CHECK_EQ(mio_addr_format(&a, buf, sizeof buf), MIO_EINVAL);
}

TEST(addr_format_unix_is_path)
{
    const char *dir = test_tmp_dir();
    char path[128], buf[256];
    mio_addr a;
    mio_fd l;

    need_unix_sockets();
    snprintf(path, sizeof path, "%s/sock", dir);
    OK(mio_unix_listen(path, 0, &l));
    OK(mio_local_addr(l, &a));
    CHECK_EQ(a.u.sa.sa_family, AF_UNIX);
    CHECK_EQ(mio_addr_format(&a, buf, sizeof buf), strlen(path));
    CHECK(strcmp(buf, path) == 0);
    CHECK_EQ(mio_addr_format(&a, buf, strlen(path)), MIO_ENOSPC);
    OK(mio_close(l));
}

/* A socket that was never bound has an empty path (a socketpair's: TCP on
 * Windows). */
#ifndef _WIN32
POSIX_TEST(addr_format_unnamed_unix_is_empty)
{
    char buf[16];
    mio_addr a;
    mio_fd sv[2];
    OK(mio_socketpair(sv));
    OK(mio_local_addr(sv[0], &a));
    CHECK_EQ(a.u.sa.sa_family, AF_UNIX);
    memset(buf, 'z', sizeof buf);
    CHECK_EQ(mio_addr_format(&a, buf, sizeof buf), 0);
    CHECK_EQ(buf[0], '\0');
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
}
#endif

/* Waits for `flags` on token and reads what fd has: `want`, then the end
 * of the reading (MIO_EAGAIN, or 0 for the end of the stream). */
static void expect_bytes(mio_poll *p, mio_token token, uint32_t flags, mio_fd fd,
                         const char *want, ssize_t end)
{
    char buf[64];
    ssize_t last;

    EXPECT_EVENT(p, token, flags, TEST_LONG_WAIT);
    CHECK_EQ(test_read_until(fd, buf, sizeof buf, &last), strlen(want));
    CHECK(memcmp(buf, want, strlen(want)) == 0);
    CHECK_EQ(last, end);
}

/* ---- TCP ---- */

static void connect_and_accept(const char *text)
{
    mio_poll *p = test_poll();
    mio_addr bound, local, peer, seen;
    mio_fd l = test_listen(text, &bound), c, s;

    CHECK(ntohs(bound.u.sa.sa_family == AF_INET ? bound.u.v4.sin_port
                                                 : bound.u.v6.sin6_port) != 0);
    OK(mio_tcp_connect(&bound, &c));
    CHECK(c != MIO_INVALID_FD);
    OK(mio_register(p, c, 1, MIO_WRITABLE));
    EXPECT_EVENT(p, 1, MIO_WRITABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_socket_error(c), 0);

    s = test_accept(l, &peer);
    OK(mio_local_addr(c, &local));
    check_same_addr(&peer, &local);
    OK(mio_peer_addr(c, &seen));
    check_same_addr(&seen, &bound);
    OK(mio_peer_addr(s, &seen));
    check_same_addr(&seen, &local);

    OK(mio_deregister(p, c));
    OK(mio_close(c));
    OK(mio_close(s));
    OK(mio_close(l));
    mio_poll_free(p);
}

TEST(tcp_connect_ipv4)
{
    connect_and_accept("127.0.0.1:0");
}

TEST(tcp_connect_ipv6)
{
    mio_addr a = addr("[::1]:0");
    mio_fd l;
    int err = mio_tcp_listen(&a, 0, &l);
    if (err == MIO_EADDRNOTAVAIL || err == MIO_EAFNOSUPPORT)
        SKIP("no IPv6 loopback here");
    OK(err);
    OK(mio_close(l));
    connect_and_accept("[::1]:0");
}

TEST(tcp_bytes_flow_both_ways)
{
    mio_poll *p = test_poll();
    struct test_tcp t = test_tcp_pair(p, MIO_READABLE);

    test_put(t.client, "ping");
    expect_bytes(p, TEST_SERVER, MIO_READABLE, t.server, "ping", MIO_EAGAIN);
    test_put(t.server, "pong!");
    expect_bytes(p, TEST_CLIENT, MIO_READABLE, t.client, "pong!", MIO_EAGAIN);
    test_close_tcp(t);
    mio_poll_free(p);
}

TEST(tcp_connect_refused)
{
    TEST_NOT_ON_WINE("a connect's SO_ERROR cannot be cleared");
    mio_poll *p = test_poll();
    mio_addr target;
    mio_fd holder = refusing_port(&target);
    mio_fd c = MIO_INVALID_FD;
    int err = mio_tcp_connect(&target, &c);

    if (err == MIO_ECONNREFUSED) {
        /* Refused at once: allowed, and then no descriptor was handed out. */
        OK(mio_close(holder));
        mio_poll_free(p);
        return;
    }
    OK(err);
    OK(mio_register(p, c, 1, MIO_WRITABLE));
    EXPECT_ANY(p, 1, MIO_WRITABLE | MIO_ERROR, TEST_LONG_WAIT);
    err = mio_socket_error(c);
    /* libkqueue reads the error to report it, which clears it. */
    if (!test_on_libkqueue() || err != 0)
        CHECK_EQ(err, MIO_ECONNREFUSED);
    /* Reading the error clears it. */
    CHECK_EQ(mio_socket_error(c), 0);
    OK(mio_deregister(p, c));
    OK(mio_close(c));
    OK(mio_close(holder));
    mio_poll_free(p);
}

#ifndef _WIN32

/* A transfer on a socket whose connect was refused takes the error from
 * the kernel (POSIX clears SO_ERROR then; Winsock keeps it): mio_socket_error still tells it
 * afterwards, once, and a read says it rather than end of stream.  first:
 * whether a write or a read comes before mio_socket_error. */
static void refused_then(int first)
{
    mio_poll *p = test_poll();
    mio_addr target;
    mio_fd holder = refusing_port(&target);
    mio_fd c = MIO_INVALID_FD;
    char buf[8];
    int err = mio_tcp_connect(&target, &c);

    if (err == MIO_ECONNREFUSED) {
        OK(mio_close(holder));
        mio_poll_free(p);
        SKIP("the connect was refused at once");
    }
    OK(err);
    OK(mio_register(p, c, 1, MIO_READABLE | MIO_WRITABLE));
    EXPECT_ANY(p, 1, MIO_WRITABLE | MIO_ERROR, TEST_LONG_WAIT);
    if (first == 'w')
        err = (int)mio_write(c, "x", 1);
    else
        err = (int)mio_read(c, buf, sizeof buf);
    if ((err == 0 || err == MIO_EPIPE) && test_on_libkqueue())
        SKIP("libkqueue reads the error to report it, which clears it");
    CHECK_EQ(err, MIO_ECONNREFUSED);
    /* Read to what would be end of stream: the refusal again. */
    CHECK_EQ(mio_read(c, buf, sizeof buf), MIO_ECONNREFUSED);
    CHECK_EQ(mio_socket_error(c), MIO_ECONNREFUSED);
    /* Taken, as SO_ERROR is by reading it. */
    CHECK_EQ(mio_socket_error(c), 0);
    CHECK_EQ(mio_read(c, buf, sizeof buf), 0);
    CHECK(mio_write(c, "x", 1) < 0);
    OK(mio_deregister(p, c));
    OK(mio_close(c));
    OK(mio_close(holder));
    mio_poll_free(p);
}

POSIX_TEST(tcp_refused_error_survives_a_write)
{
    refused_then('w');
}

POSIX_TEST(tcp_refused_error_survives_a_read)
{
    refused_then('r');
}

/* What is kept belongs to its socket: closed with mio_close or with
 * close(2) behind the library's back, the number's next socket has no
 * error; an ordinary connection's end of stream stays 0. */
POSIX_TEST(tcp_kept_error_stays_with_its_socket)
{
    mio_poll *p = test_poll();
    mio_addr target;
    mio_fd holder = refusing_port(&target);
    struct test_tcp t;
    mio_fd c = MIO_INVALID_FD;
    char buf[8];
    int err = mio_tcp_connect(&target, &c), round;

    for (round = 0; round < 2; round++) {
        if (err == MIO_ECONNREFUSED)
            SKIP("the connect was refused at once");
        OK(err);
        OK(mio_register(p, c, 1, MIO_WRITABLE));
        EXPECT_ANY(p, 1, MIO_WRITABLE | MIO_ERROR, TEST_LONG_WAIT);
        OK(mio_deregister(p, c));
        err = (int)mio_write(c, "x", 1);
        if ((err == 0 || err == MIO_EPIPE) && test_on_libkqueue())
            SKIP("libkqueue reads the error to report it, which clears it");
        CHECK_EQ(err, MIO_ECONNREFUSED);
        if (round == 0)
            OK(mio_close(c));
        else
            CHECK(close(c) == 0);
        /* The next socket, likely on the same number. */
        t = test_tcp_pair(NULL, 0);
        CHECK_EQ(mio_socket_error(t.client), 0);
        CHECK_EQ(mio_socket_error(t.server), 0);
        OK(mio_close(t.server));
        CHECK_EQ(mio_read(t.client, buf, sizeof buf), 0);
        OK(mio_close(t.client));
        err = mio_tcp_connect(&target, &c);
    }
    if (err == 0)
        OK(mio_close(c));
    OK(mio_close(holder));
    mio_poll_free(p);
}

#endif

TEST(tcp_peer_shutdown_is_end_of_stream)
{
    mio_poll *p = test_poll();
    struct test_tcp t = test_tcp_pair(NULL, 0);
    char buf[16];

    OK(mio_register(p, t.server, 1, MIO_READABLE));
    test_put(t.client, "bye");
    OK(mio_shutdown(t.client, MIO_SHUT_WR));
#ifdef _WIN32
    /* AFD reports the shutdown once the data before it has been read. */
    expect_bytes(p, 1, MIO_READABLE, t.server, "bye", 0);
#else
    expect_bytes(p, 1, MIO_READABLE | MIO_READ_CLOSED, t.server, "bye", 0);
#endif
    /* End of stream stays end of stream; the other direction still works. */
    CHECK_EQ(mio_read(t.server, buf, sizeof buf), 0);
    test_put(t.server, "ok");
    test_close_tcp(t);
    mio_poll_free(p);
}

/* A read after the peer reset the connection: MIO_ECONNRESET.  libkqueue
 * reads the socket's pending error to report it, which clears it: the read
 * then finds only the end of the stream. */
static void check_reset(ssize_t r)
{
    if (!test_on_libkqueue() || r != 0)
        CHECK_EQ(r, MIO_ECONNRESET);
}

TEST(tcp_peer_abort_is_reset)
{
    TEST_NOT_ON_WINE("recv after a reset says end of stream");
    struct linger lg = { 1, 0 };
    mio_poll *p = test_poll();
    struct test_tcp t = test_tcp_pair(NULL, 0);
    char buf[16];

    OK(mio_register(p, t.server, 1, MIO_READABLE));
    OK(setsockopt(t.client, SOL_SOCKET, SO_LINGER, (void *)&lg, sizeof lg));
    OK(mio_close(t.client));
    EXPECT_ANY(p, 1, MIO_ERROR | MIO_READ_CLOSED, TEST_LONG_WAIT);
    check_reset(mio_read(t.server, buf, sizeof buf));
    OK(mio_close(t.server));
    mio_poll_free(p);
}

/* Closing with unread data discards it and resets the connection. */
TEST(tcp_close_with_unread_data_is_reset)
{
    TEST_NOT_ON_WINE("recv after a reset says end of stream");
    mio_poll *p = test_poll();
    struct test_tcp t = test_tcp_pair(p, MIO_READABLE);
    char buf[16];

    test_put(t.client, "unread");
    EXPECT_EVENT(p, TEST_SERVER, MIO_READABLE, TEST_LONG_WAIT);
    OK(mio_deregister(p, t.server));
    OK(mio_close(t.server));
    EXPECT_ANY(p, TEST_CLIENT, MIO_ERROR | MIO_READ_CLOSED, TEST_LONG_WAIT);
    check_reset(mio_read(t.client, buf, sizeof buf));
    OK(mio_close(t.client));
    mio_poll_free(p);
}

TEST(tcp_accept_none_pending_is_eagain)
{
    mio_addr bound, peer;
    mio_fd l = test_listen("127.0.0.1:0", &bound), s = 0;
    CHECK_EQ(mio_tcp_accept(l, &s, &peer), MIO_EAGAIN);
    CHECK_EQ(mio_tcp_accept(l, &s, NULL), MIO_EAGAIN);
    OK(mio_close(l));
}

/* mio_accept and mio_tcp_accept are one call: the same results, on TCP
 * and on Unix listeners. */
TEST(accept_takes_tcp_and_unix_alike)
{
    mio_poll *p = test_poll();
    char path[256];
    mio_addr bound, peer, local;
    mio_fd l, c, c2, s = 0;

    l = test_listen("127.0.0.1:0", &bound);
    OK(mio_register(p, l, 1, MIO_READABLE));
    CHECK_EQ(mio_accept(l, &s, &peer), MIO_EAGAIN);
    CHECK(s == MIO_INVALID_FD);
    CHECK_EQ(mio_accept(l, NULL, &peer), MIO_EINVAL);
    OK(mio_tcp_connect(&bound, &c));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    OK(mio_accept(l, &s, &peer));
    OK(mio_local_addr(c, &local));
    CHECK_EQ(peer.len, local.len);
    CHECK(memcmp(&peer.u.v4, &local.u.v4, sizeof local.u.v4) == 0);
    OK(mio_deregister(p, l));
    OK(mio_close(s));
    OK(mio_close(c));
    OK(mio_close(l));

    if (have_unix_sockets()) {
        snprintf(path, sizeof path, "%s/accept.sock", test_tmp_dir());
        OK(mio_unix_listen(path, 0, &l));
        OK(mio_register(p, l, 2, MIO_READABLE));
        CHECK_EQ(mio_accept(l, &s, NULL), MIO_EAGAIN);
        CHECK_EQ(mio_tcp_accept(l, &s, NULL), MIO_EAGAIN);
        OK(mio_unix_connect(path, &c));
        EXPECT_EVENT(p, 2, MIO_READABLE, TEST_LONG_WAIT);
        OK(mio_accept(l, &c2, &peer));
        CHECK_EQ(peer.u.sa.sa_family, AF_UNIX);
        CHECK_EQ(mio_accept(l, &s, NULL), MIO_EAGAIN);
        OK(mio_deregister(p, l));
        OK(mio_close(c2));
        OK(mio_close(c));
        OK(mio_close(l));
    }
    mio_poll_free(p);
}

TEST(tcp_accept_peer_may_be_null)
{
    mio_addr bound;
    mio_fd l = test_listen("127.0.0.1:0", &bound), c, s;
    char buf[4];
    ssize_t last;
    OK(mio_tcp_connect(&bound, &c));
    s = test_accept(l, NULL);
    CHECK_EQ(test_read_until(s, buf, sizeof buf, &last), 0);
    CHECK_EQ(last, MIO_EAGAIN);
    OK(mio_close(c));
    OK(mio_close(s));
    OK(mio_close(l));
}

TEST(tcp_listen_port_in_use)
{
    mio_addr bound;
    mio_fd l = test_listen("127.0.0.1:0", &bound), l2 = MIO_INVALID_FD;
    int before = test_open_fds();
    CHECK_EQ(mio_tcp_listen(&bound, 0, &l2), MIO_EADDRINUSE);
    CHECK_EQ(test_open_fds(), before);
    OK(mio_close(l));
}

/* POSIX's SO_REUSEADDR (rebinding over TIME_WAIT, as in the next test) is
 * Windows' default, where the option would let another socket take the
 * port: the library leaves it unset there (tcp_listen_port_in_use). */
#ifndef _WIN32
POSIX_TEST(tcp_listen_sets_reuseaddr)
{
    mio_addr bound;
    mio_fd l = test_listen("127.0.0.1:0", &bound);
    int v = 0;
    socklen_t len = sizeof v;
    OK(getsockopt(l, SOL_SOCKET, SO_REUSEADDR, (void *)&v, &len));
    CHECK(v != 0);
    OK(mio_close(l));
}
#endif

/* A listener closed with a connection in TIME_WAIT can be replaced at once. */
TEST(tcp_listen_again_after_close)
{
    mio_addr bound;
    mio_fd l = test_listen("127.0.0.1:0", &bound), c, s;
    char buf[4];
    ssize_t last;

    OK(mio_tcp_connect(&bound, &c));
    s = test_accept(l, NULL);
    /* The server side closes first, so its end lingers in TIME_WAIT. */
    OK(mio_close(s));
    OK(mio_close(l));
    test_read_until(c, buf, sizeof buf, &last);
    OK(mio_close(c));
    OK(mio_tcp_listen(&bound, 16, &l));
    OK(mio_close(l));
}

TEST(tcp_nodelay_toggles)
{
    struct test_tcp t = test_tcp_pair(NULL, 0);
    int v = -1;
    socklen_t len = sizeof v;

    OK(mio_tcp_set_nodelay(t.client, true));
    OK(getsockopt(t.client, IPPROTO_TCP, TCP_NODELAY, (void *)&v, &len));
    CHECK(v != 0);
    OK(mio_tcp_set_nodelay(t.client, false));
    len = sizeof v;
#ifdef _WIN32
    v = 0;  /* Winsock writes a one-byte BOOLEAN */
#endif
    OK(getsockopt(t.client, IPPROTO_TCP, TCP_NODELAY, (void *)&v, &len));
    CHECK_EQ(v, 0);
    test_close_tcp(t);
}

TEST(tcp_connect_unix_family_rejected)
{
    struct sockaddr_un un;
    mio_addr a;
    mio_fd fd;
    int err;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, "x");
    memset(&a, 0, sizeof a);
    memcpy(&a.u.ss, &un, sizeof un);
    a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 2);
    err = mio_tcp_connect(&a, &fd);
    CHECK(err == MIO_EAFNOSUPPORT || err == MIO_EINVAL);
    err = mio_tcp_listen(&a, 0, &fd);
    CHECK(err == MIO_EAFNOSUPPORT || err == MIO_EINVAL);
}

/* ---- SIGPIPE ---- */

/* Writes (write or writev) to a connection whose peer closed end with an
 * error, and the process lives. */
static void write_to_closed_peer(bool vectored)
{
    struct test_tcp t;
    ssize_t err;

    sigpipe_kills();
    t = test_tcp_pair(NULL, 0);
    OK(mio_close(t.server));
    err = write_until_error(t.client, vectored);
    CHECK(err == MIO_EPIPE || err == MIO_ECONNRESET);
    OK(mio_close(t.client));
}

TEST(tcp_write_to_closed_peer_no_sigpipe)
{
    write_to_closed_peer(false);
}

TEST(tcp_writev_to_closed_peer_no_sigpipe)
{
    write_to_closed_peer(true);
}

TEST(tcp_write_after_own_shutdown_no_sigpipe)
{
    struct test_tcp t;
    sigpipe_kills();
    t = test_tcp_pair(NULL, 0);
    OK(mio_shutdown(t.client, MIO_SHUT_WR));
    CHECK_EQ(mio_write(t.client, "x", 1), MIO_EPIPE);
    test_close_tcp(t);
}

/* Unix socketpairs and pipes, and the caller's own SIGPIPE: POSIX only. */

#ifndef _WIN32
static bool sigpipe_pending(void)
{
    sigset_t s;
    OK(sigpending(&s));
    return sigismember(&s, SIGPIPE) == 1;
}

/* Consumes one pending SIGPIPE (it must be blocked); true if there was one. */
static bool take_sigpipe(void)
{
    struct timespec zero = { 0, 0 };
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    return sigtimedwait(&s, NULL, &zero) == SIGPIPE;
}

/* SIGPIPE with its default action, blocked by the caller. */
static void block_sigpipe(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    signal(SIGPIPE, SIG_DFL);
    OK(pthread_sigmask(SIG_BLOCK, &s, NULL));
}

/* The write end of a pipe whose reader is gone. */
static mio_fd readerless_pipe(void)
{
    struct test_source s = test_pipe_source();
    OK(mio_close(s.r));
    return s.w;
}

POSIX_TEST(socketpair_write_to_closed_peer_no_sigpipe)
{
    struct test_source s;
    mio_iovec iov = { "x", 1 };
    sigpipe_kills();
    s = test_socket_source();
    OK(mio_close(s.w));
    CHECK_EQ(mio_write(s.r, "x", 1), MIO_EPIPE);
    CHECK_EQ(mio_writev(s.r, &iov, 1), MIO_EPIPE);
    OK(mio_close(s.r));
}

POSIX_TEST(pipe_write_to_closed_reader_no_sigpipe)
{
    mio_fd w;
    sigpipe_kills();
    w = readerless_pipe();
    CHECK_EQ(mio_write(w, "x", 1), MIO_EPIPE);
    CHECK_EQ(mio_write(w, "x", 1), MIO_EPIPE);
    OK(mio_close(w));
}

POSIX_TEST(pipe_writev_to_closed_reader_no_sigpipe)
{
    mio_iovec iov[2] = { { "ab", 2 }, { "c", 1 } };
    mio_fd w;
    sigpipe_kills();
    w = readerless_pipe();
    CHECK_EQ(mio_writev(w, iov, 2), MIO_EPIPE);
    OK(mio_close(w));
}

/* With SIGPIPE blocked by the caller, the call leaves none pending either. */
POSIX_TEST(pipe_write_leaves_no_sigpipe_pending)
{
    mio_fd w;
    block_sigpipe();
    w = readerless_pipe();
    CHECK(!sigpipe_pending());
    CHECK_EQ(mio_write(w, "x", 1), MIO_EPIPE);
    CHECK(!sigpipe_pending());
    OK(mio_close(w));
}

/* A SIGPIPE the caller already had pending (blocked) is still pending after
 * the call: the library consumes only what its own write raised. */
POSIX_TEST(pipe_write_keeps_callers_pending_sigpipe)
{
    mio_iovec iov = { "x", 1 };
    mio_fd w;
    block_sigpipe();
    OK(pthread_kill(pthread_self(), SIGPIPE));
    CHECK(sigpipe_pending());
    w = readerless_pipe();
    CHECK_EQ(mio_write(w, "x", 1), MIO_EPIPE);
    CHECK(sigpipe_pending());
    CHECK_EQ(mio_writev(w, &iov, 1), MIO_EPIPE);
    CHECK(sigpipe_pending());
    CHECK(take_sigpipe());
    CHECK(!sigpipe_pending());
    OK(mio_close(w));
}

/* A SIGPIPE pending for the whole process (kill) is not ours: the call
 * takes the one its own write raised and leaves that one alone. */
POSIX_TEST(pipe_write_keeps_process_pending_sigpipe_only)
{
    mio_fd w;
    block_sigpipe();
    OK(kill(getpid(), SIGPIPE));
    CHECK(sigpipe_pending());
    w = readerless_pipe();
    CHECK_EQ(mio_write(w, "x", 1), MIO_EPIPE);
#ifdef __linux__
    CHECK(take_sigpipe());
    CHECK(!sigpipe_pending());
#endif
    OK(mio_close(w));
}
#endif

/* ---- UDP ---- */

static mio_fd udp_on(const char *text, mio_addr *bound)
{
    mio_addr a = addr(text);
    mio_fd fd = MIO_INVALID_FD;
    OK(mio_udp_bind(&a, &fd));
    CHECK(fd != MIO_INVALID_FD);
    OK(mio_local_addr(fd, bound));
    CHECK(ntohs(bound->u.v4.sin_port) != 0);
    return fd;
}

/* Two UDP sockets on loopback, each with its address, and a poll. */
struct udp_pair {
    mio_poll *p;
    mio_fd a, b;
    mio_addr aa, ba;
};

static struct udp_pair udp_pair(void)
{
    struct udp_pair u;
    u.p = test_poll();
    u.a = udp_on("127.0.0.1:0", &u.aa);
    u.b = udp_on("127.0.0.1:0", &u.ba);
    return u;
}

static void udp_pair_close(struct udp_pair u)
{
    OK(mio_close(u.a));
    OK(mio_close(u.b));
    mio_poll_free(u.p);
}

TEST(udp_send_to_recv_from)
{
    mio_addr from;
    struct udp_pair u = udp_pair();
    char buf[64];

    OK(mio_register(u.p, u.b, 1, MIO_READABLE));
    OK(mio_register(u.p, u.a, 2, MIO_READABLE));
    CHECK_EQ(mio_udp_send_to(u.a, "hello", 5, &u.ba), 5);
    EXPECT_EVENT(u.p, 1, MIO_READABLE, TEST_LONG_WAIT);
    memset(&from, 0, sizeof from);
    CHECK_EQ(mio_udp_recv_from(u.b, buf, sizeof buf, &from), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    check_same_addr(&from, &u.aa);
    CHECK_EQ(mio_udp_recv_from(u.b, buf, sizeof buf, &from), MIO_EAGAIN);

    CHECK_EQ(mio_udp_send_to(u.b, "back", 4, &from), 4);
    EXPECT_EVENT(u.p, 2, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_recv_from(u.a, buf, sizeof buf, NULL), 4);
    CHECK(memcmp(buf, "back", 4) == 0);
    udp_pair_close(u);
}

TEST(udp_empty_datagram)
{
    mio_addr from;
    struct udp_pair u = udp_pair();
    char buf[8];

    OK(mio_register(u.p, u.b, 1, MIO_READABLE));
    CHECK_EQ(mio_udp_send_to(u.a, NULL, 0, &u.ba), 0);
    EXPECT_EVENT(u.p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_recv_from(u.b, buf, sizeof buf, &from), 0);
    check_same_addr(&from, &u.aa);
    CHECK_EQ(mio_udp_recv_from(u.b, buf, sizeof buf, &from), MIO_EAGAIN);

    CHECK_EQ(mio_udp_send_to(u.a, buf, 0, &u.ba), 0);
    EXPECT_EVENT(u.p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_recv_from(u.b, NULL, 0, NULL), 0);
    CHECK_EQ(mio_udp_recv_from(u.b, buf, sizeof buf, NULL), MIO_EAGAIN);
    udp_pair_close(u);
}

TEST(udp_connected_read_write)
{
    mio_addr from, peer;
    struct udp_pair u = udp_pair();
    char buf[16];

    OK(mio_udp_connect(u.a, &u.ba));
    OK(mio_udp_connect(u.b, &u.aa));
    OK(mio_peer_addr(u.a, &peer));
    check_same_addr(&peer, &u.ba);
    OK(mio_register(u.p, u.a, 1, MIO_READABLE));
    OK(mio_register(u.p, u.b, 2, MIO_READABLE));

    CHECK_EQ(mio_write(u.a, "one", 3), 3);
    EXPECT_EVENT(u.p, 2, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_recv_from(u.b, buf, sizeof buf, &from), 3);
    CHECK(memcmp(buf, "one", 3) == 0);
    check_same_addr(&from, &u.aa);

    CHECK_EQ(mio_udp_send_to(u.b, "two", 3, NULL), 3);
    EXPECT_EVENT(u.p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(u.a, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "two", 3) == 0);
    CHECK_EQ(mio_read(u.a, buf, sizeof buf), MIO_EAGAIN);
    udp_pair_close(u);
}

/* A datagram longer than the buffer: the bytes that fit, truncation said
 * (by mio_udp_recv; mio_udp_recv_from says nothing), and the rest gone: the
 * next read is the next datagram.  One that fits exactly is whole. */
TEST(udp_long_datagram_truncated)
{
    mio_addr from;
    struct udp_pair u = udp_pair();
    char big[1500], buf[100];
    bool trunc = false;
    size_t i;

    for (i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    OK(mio_register(u.p, u.b, 1, MIO_READABLE));
    CHECK_EQ(mio_udp_send_to(u.a, big, sizeof big, &u.ba), sizeof big);
    CHECK_EQ(mio_udp_send_to(u.a, big, sizeof big, &u.ba), sizeof big);
    CHECK_EQ(mio_udp_send_to(u.a, big, sizeof buf, &u.ba), sizeof buf);
    CHECK_EQ(mio_udp_send_to(u.a, "next", 4, &u.ba), 4);
    EXPECT_EVENT(u.p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_recv_from(u.b, buf, 10, NULL), 10);
    CHECK(memcmp(buf, big, 10) == 0);
    CHECK_EQ(mio_udp_recv(u.b, buf, sizeof buf, NULL, &trunc), sizeof buf);
    CHECK(trunc);
    CHECK(memcmp(buf, big, sizeof buf) == 0);
    CHECK_EQ(mio_udp_recv(u.b, buf, sizeof buf, &from, &trunc), sizeof buf);
    CHECK(!trunc);
    check_same_addr(&from, &u.aa);
    CHECK_EQ(mio_udp_recv(u.b, buf, sizeof buf, NULL, &trunc), 4);
    CHECK(!trunc);
    CHECK(memcmp(buf, "next", 4) == 0);
    CHECK_EQ(mio_udp_recv(u.b, buf, sizeof buf, NULL, &trunc), MIO_EAGAIN);
    CHECK(!trunc);
    udp_pair_close(u);
}

/* A connected UDP socket's ICMP port-unreachable is a pending error, not a
 * closed write side; once read, the socket works as before, and datagrams
 * arriving afterwards are reported (the error must not mute an edge). */
static void udp_icmp_error(uint32_t interest)
{
    mio_poll *p = test_poll();
    mio_addr aa, ba, from;
    mio_fd a = udp_on("127.0.0.1:0", &aa), b = udp_on("127.0.0.1:0", &ba), c = MIO_INVALID_FD;
    char buf[16];
    uint32_t flags;
    int err;

#ifdef _WIN32
    SKIP("sockets made by the library ignore ICMP port-unreachable (SIO_UDP_CONNRESET)");
#endif
    TEST_NOT_ON_LIBKQUEUE("a UDP socket's ICMP error is end-of-file there");
    OK(mio_close(b));   /* nobody at ba now */
    OK(mio_udp_connect(a, &ba));
    OK(mio_register(p, a, 1, interest));
    if (interest & MIO_WRITABLE)
        EXPECT_EVENT(p, 1, MIO_WRITABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_send_to(a, "x", 1, NULL), 1);
    flags = EXPECT_ANY(p, 1, MIO_ERROR | MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(flags & (MIO_WRITE_CLOSED | MIO_READ_CLOSED), 0);
    err = mio_socket_error(a);
    CHECK_EQ(err, MIO_ECONNREFUSED);
    CHECK_EQ(mio_udp_recv_from(a, buf, sizeof buf, NULL), MIO_EAGAIN);
    if (mio_udp_bind(&ba, &c) < 0)
        SKIP("port %u was taken meanwhile", ntohs(ba.u.v4.sin_port));
    CHECK_EQ(mio_udp_send_to(c, "hello", 5, &aa), 5);
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_recv_from(a, buf, sizeof buf, &from), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    OK(mio_deregister(p, a));
    OK(mio_close(a));
    OK(mio_close(c));
    mio_poll_free(p);
}

TEST(udp_icmp_error_is_no_close_and_mutes_nothing)
{
    udp_icmp_error(MIO_READABLE);
}

TEST(udp_icmp_error_both_directions)
{
    udp_icmp_error(MIO_READABLE | MIO_WRITABLE);
}

TEST(udp_recv_nothing_is_eagain)
{
    mio_addr ba;
    mio_fd b = udp_on("127.0.0.1:0", &ba);
    char buf[8];
    CHECK_EQ(mio_udp_recv_from(b, buf, sizeof buf, NULL), MIO_EAGAIN);
    CHECK_EQ(mio_read(b, buf, sizeof buf), MIO_EAGAIN);
    OK(mio_close(b));
}

TEST(udp_ipv6)
{
    mio_poll *p = test_poll();
    mio_addr any6 = addr("[::1]:0"), aa, ba, from;
    mio_fd a, b;
    char buf[8];
    int err = mio_udp_bind(&any6, &a);

    if (err == MIO_EADDRNOTAVAIL || err == MIO_EAFNOSUPPORT)
        SKIP("no IPv6 loopback here");
    OK(err);
    OK(mio_local_addr(a, &aa));
    OK(mio_udp_bind(&any6, &b));
    OK(mio_local_addr(b, &ba));
    OK(mio_register(p, b, 1, MIO_READABLE));
    CHECK_EQ(mio_udp_send_to(a, "six", 3, &ba), 3);
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_udp_recv_from(b, buf, sizeof buf, &from), 3);
    CHECK_EQ(from.u.sa.sa_family, AF_INET6);
    check_same_addr(&from, &aa);
    OK(mio_close(a));
    OK(mio_close(b));
    mio_poll_free(p);
}

/* ---- Unix sockets ---- */

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

TEST(unix_listen_connect_accept_echo)
{
    const char *dir = test_tmp_dir();
    mio_poll *p = test_poll();
    char path[128];
    mio_addr peer;
    mio_fd l, c, s;

    need_unix_sockets();
    snprintf(path, sizeof path, "%s/echo.sock", dir);
    OK(mio_unix_listen(path, 0, &l));
    OK(mio_unix_connect(path, &c));
    s = test_accept(l, &peer);
    CHECK_EQ(peer.u.sa.sa_family, AF_UNIX);
    OK(mio_register(p, s, 1, MIO_READABLE));
    OK(mio_register(p, c, 2, MIO_READABLE | MIO_WRITABLE));
    /* A Unix connect may finish later on some systems, like TCP's. */
    EXPECT_EVENT(p, 2, MIO_WRITABLE, TEST_LONG_WAIT);
    test_put(c, "echo");
    expect_bytes(p, 1, MIO_READABLE, s, "echo", MIO_EAGAIN);
    test_put(s, "echo");
    expect_bytes(p, 2, MIO_READABLE, c, "echo", MIO_EAGAIN);
    OK(mio_close(c));
    OK(mio_close(s));
    OK(mio_close(l));
    mio_poll_free(p);
}

TEST(unix_path_too_long)
{
    const char *dir = test_tmp_dir();
    char path[SUN_PATH_SIZE + 16];
    size_t dlen = strlen(dir), len;
    mio_fd fd = 0;

    /* Exactly sizeof(sun_path) characters (no room for the NUL), then more. */
    for (len = SUN_PATH_SIZE; len <= SUN_PATH_SIZE + 8; len += 8) {
        memcpy(path, dir, dlen);
        path[dlen] = '/';
        memset(path + dlen + 1, 'a', len - dlen - 1);
        path[len] = '\0';
        CHECK_EQ(strlen(path), len);
        CHECK_EQ(mio_unix_listen(path, 0, &fd), MIO_ENAMETOOLONG);
        CHECK_EQ(mio_unix_connect(path, &fd), MIO_ENAMETOOLONG);
    }
    CHECK_EQ(test_dir_entries(dir), 0);
}

/* One character shorter than sun_path still fits. */
TEST(unix_path_longest_fits)
{
    const char *dir = test_tmp_dir();
    char path[SUN_PATH_SIZE];
    size_t dlen = strlen(dir);
    mio_fd l, c, s;

    need_unix_sockets();
    memcpy(path, dir, dlen);
    path[dlen] = '/';
    memset(path + dlen + 1, 'b', SUN_PATH_SIZE - 1 - dlen - 1);
    path[SUN_PATH_SIZE - 1] = '\0';
    OK(mio_unix_listen(path, 0, &l));
    OK(mio_unix_connect(path, &c));
    s = test_accept(l, NULL);
    OK(mio_close(c));
    OK(mio_close(s));
    OK(mio_close(l));
}

TEST(unix_path_empty_or_null)
{
    mio_fd fd = 0;
    CHECK_EQ(mio_unix_listen("", 0, &fd), MIO_EINVAL);
    CHECK_EQ(mio_unix_connect("", &fd), MIO_EINVAL);
    CHECK_EQ(mio_unix_listen(NULL, 0, &fd), MIO_EINVAL);
    CHECK_EQ(mio_unix_connect(NULL, &fd), MIO_EINVAL);
}

TEST(unix_connect_missing_path)
{
    const char *dir = test_tmp_dir();
    char path[128];
    mio_fd fd = 0;
    int before;

    need_unix_sockets();
    before = test_open_fds();
    snprintf(path, sizeof path, "%s/nobody", dir);
    CHECK_EQ(mio_unix_connect(path, &fd), MIO_ENOENT);
    CHECK_EQ(test_open_fds(), before);
}

TEST(unix_listen_existing_path)
{
    const char *dir = test_tmp_dir();
    char path[128];
    mio_fd l, l2 = 0;
    int before;

    need_unix_sockets();
    snprintf(path, sizeof path, "%s/taken", dir);
    OK(mio_unix_listen(path, 0, &l));
    before = test_open_fds();
    CHECK_EQ(mio_unix_listen(path, 0, &l2), MIO_EADDRINUSE);
    CHECK_EQ(test_open_fds(), before);
    OK(mio_close(l));
    /* A stale socket file (its listener closed) is still in the way. */
    CHECK_EQ(mio_unix_listen(path, 0, &l2), MIO_EADDRINUSE);
}

#ifndef _WIN32

/* MIO_UNIX_REMOVE_STALE: a socket file nobody listens on is replaced, and
 * the probe leaves no descriptor behind. */
POSIX_TEST(unix_listen_removes_stale_file)
{
    const char *dir = test_tmp_dir();
    char path[128];
    mio_fd l, c, s;
    int before;

    snprintf(path, sizeof path, "%s/stale", dir);
    OK(mio_unix_listen(path, 0, &l));
    OK(mio_close(l));
    before = test_open_fds();
    OK(mio_unix_listen_flags(path, 0, MIO_UNIX_REMOVE_STALE, &l));
    CHECK_EQ(test_open_fds(), before + 1);
    OK(mio_unix_connect(path, &c));
    s = test_accept(l, NULL);
    OK(mio_close(c));
    OK(mio_close(s));
    OK(mio_close(l));
    /* No file: the flag changes nothing. */
    CHECK(unlink(path) == 0);
    OK(mio_unix_listen_flags(path, 0, MIO_UNIX_REMOVE_STALE, &l));
    OK(mio_close(l));
}

/* A listener that answers keeps its file, also with its backlog full (a
 * connect then says EAGAIN, not refused). */
POSIX_TEST(unix_listen_keeps_live_file)
{
    const char *dir = test_tmp_dir();
    char path[128];
    mio_fd l, l2 = 0, c[64], s;
    int n = 0, err = 0;

    snprintf(path, sizeof path, "%s/live", dir);
    OK(mio_unix_listen(path, 1, &l));
    CHECK_EQ(mio_unix_listen_flags(path, 0, MIO_UNIX_REMOVE_STALE, &l2), MIO_EADDRINUSE);
    while (n < 64 && (err = mio_unix_connect(path, &c[n])) == 0)
        n++;
    CHECK_EQ(err, MIO_EAGAIN);
    CHECK_EQ(mio_unix_listen_flags(path, 0, MIO_UNIX_REMOVE_STALE, &l2), MIO_EADDRINUSE);
    /* Still the same listener's file: it accepts what is queued. */
    s = test_accept(l, NULL);
    OK(mio_close(s));
    while (n > 0)
        OK(mio_close(c[--n]));
    OK(mio_close(l));
}

/* Anything but a socket file stays; unknown flags are refused. */
POSIX_TEST(unix_listen_keeps_other_files)
{
    const char *dir = test_tmp_dir();
    char path[128];
    mio_fd l = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/plain", dir);
    CHECK((f = fopen(path, "w")) != NULL);
    fclose(f);
    CHECK_EQ(mio_unix_listen_flags(path, 0, MIO_UNIX_REMOVE_STALE, &l), MIO_EADDRINUSE);
    CHECK(access(path, F_OK) == 0);
    CHECK_EQ(mio_unix_listen_flags(path, 0, 0x80, &l), MIO_EINVAL);
    snprintf(path, sizeof path, "%s/fresh", dir);
    CHECK_EQ(mio_unix_listen_flags(path, 0, 0x80, &l), MIO_EINVAL);
    CHECK(access(path, F_OK) != 0);
}

#endif

/* ---- pipes, which Windows lacks ---- */

#ifndef _WIN32

POSIX_TEST(pipe_bytes_flow)
{
    mio_poll *p = test_poll();
    struct test_source s = test_pipe_source();
    char c;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    CHECK_EQ(mio_read(s.r, &c, 1), MIO_EAGAIN);
    test_put(s.w, "flow");
    expect_bytes(p, 1, MIO_READABLE, s.r, "flow", MIO_EAGAIN);
    /* Data only flows one way. */
    CHECK(mio_write(s.r, "x", 1) < 0);
    test_close_source(s);
    mio_poll_free(p);
}

POSIX_TEST(pipe_writer_closed_is_end_of_stream)
{
    mio_poll *p = test_poll();
    struct test_source s = test_pipe_source();

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    test_put(s.w, "end");
    OK(mio_close(s.w));
    expect_bytes(p, 1, MIO_READ_CLOSED, s.r, "end", 0);
    OK(mio_close(s.r));
    mio_poll_free(p);
}

#endif

/* ---- socketpair and vectored I/O ---- */

TEST(socketpair_readv_writev)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];
    char a[3], b[1], c[8];
    mio_iovec out[4] = { { "abc", 3 }, { "", 0 }, { "d", 1 }, { "efgh", 4 } };
    mio_iovec in[3] = { { a, sizeof a }, { b, sizeof b }, { c, sizeof c } };

    OK(mio_socketpair(sv));
    OK(mio_register(p, sv[1], 1, MIO_READABLE));
    CHECK_EQ(mio_writev(sv[0], out, 4), 8);
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_readv(sv[1], in, 3), 8);
    CHECK(memcmp(a, "abc", 3) == 0);
    CHECK(memcmp(b, "d", 1) == 0);
    CHECK(memcmp(c, "efgh", 4) == 0);
    CHECK_EQ(mio_readv(sv[1], in, 3), MIO_EAGAIN);
    /* Both ends work both ways. */
    CHECK_EQ(mio_writev(sv[1], out, 1), 3);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

TEST(vectored_io_bad_arguments)
{
    mio_fd sv[2];
    char buf[4];
    mio_iovec iov = { buf, sizeof buf };
    OK(mio_socketpair(sv));
    CHECK_EQ(mio_readv(sv[0], NULL, 1), MIO_EINVAL);
    CHECK_EQ(mio_writev(sv[0], NULL, 1), MIO_EINVAL);
    CHECK_EQ(mio_readv(sv[0], &iov, -1), MIO_EINVAL);
    CHECK_EQ(mio_writev(sv[0], &iov, -1), MIO_EINVAL);
    /* Nothing was sent by the refused calls. */
    CHECK_EQ(mio_read(sv[1], buf, sizeof buf), MIO_EAGAIN);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
}

TEST(null_buffer_with_length_is_einval)
{
    mio_addr ua, ub;
    mio_fd sv[2], u = udp_on("127.0.0.1:0", &ua), v = udp_on("127.0.0.1:0", &ub);
    char buf[4];
    OK(mio_socketpair(sv));
    CHECK_EQ(mio_read(sv[0], NULL, 4), MIO_EINVAL);
    CHECK_EQ(mio_write(sv[0], NULL, 4), MIO_EINVAL);
    CHECK_EQ(mio_udp_send_to(u, NULL, 4, &ub), MIO_EINVAL);
    CHECK_EQ(mio_udp_recv_from(v, NULL, 4, NULL), MIO_EINVAL);
    CHECK_EQ(mio_read(sv[1], buf, sizeof buf), MIO_EAGAIN);
    CHECK_EQ(mio_udp_recv_from(v, buf, sizeof buf, NULL), MIO_EAGAIN);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    OK(mio_close(u));
    OK(mio_close(v));
}

/* ---- descriptors: non-blocking, close-on-exec (not inheritable) ---- */

/* One descriptor from each call that creates one (connected TCP and Unix
 * pairs, a Unix listener in a temp dir; Unix sockets and pipes where the OS
 * has them); returns how many were written to fds. */
static int make_every_kind(mio_fd *fds)
{
    mio_addr bound, ua;
    mio_fd l;
    int n = 0;

    l = test_listen("127.0.0.1:0", &bound);
    fds[n++] = l;                                   /* mio_tcp_listen */
    OK(mio_tcp_connect(&bound, &fds[n++]));         /* mio_tcp_connect */
    fds[n++] = test_accept(l, NULL);                 /* mio_tcp_accept */
    fds[n++] = udp_on("127.0.0.1:0", &ua);          /* mio_udp_bind */
    OK(mio_socketpair(&fds[n]));                    /* mio_socketpair */
    n += 2;
    if (have_unix_sockets()) {
        char path[128];
        snprintf(path, sizeof path, "%s/kinds.sock", test_tmp_dir());
        OK(mio_unix_listen(path, 0, &l));
        fds[n++] = l;                               /* mio_unix_listen */
        OK(mio_unix_connect(path, &fds[n++]));      /* mio_unix_connect */
        fds[n++] = test_accept(l, NULL);             /* mio_tcp_accept, Unix */
    }
#ifndef _WIN32
    OK(mio_pipe(&fds[n]));                          /* mio_pipe */
    n += 2;
#endif
    return n;
}

TEST(every_fd_nonblocking_cloexec)
{
    mio_fd fds[16];
    int i, n = make_every_kind(fds);
    test_watchdog(30);      /* a blocking socket would wait in the check */
    /* All checked before any is closed: a pair's end must not see its peer
     * gone (end of stream, no MIO_EAGAIN). */
    for (i = 0; i < n; i++)
        check_nonblock_cloexec(fds[i]);
    for (i = 0; i < n; i++)
        OK(mio_close(fds[i]));
}

/* An exec'd child holds none of them (checked from outside, through
 * /proc/<child>/fd).  On Windows the inheritance flag, checked above, is
 * what decides. */
#ifndef _WIN32
POSIX_TEST(exec_child_inherits_no_fd)
{
    char *argv[] = { "/bin/sleep", "60", NULL };
    mio_fd fds[16];
    int i, n = make_every_kind(fds);
    struct child c;

    child_start(&c, argv, NULL, CHILD_STDOUT);
    for (i = 0; i < n; i++)
        if (child_holds(&c, fds[i]))
            FAIL("the child inherited fd %d", (int)fds[i]);
    child_kill(&c);
    child_wait(&c);
    for (i = 0; i < n; i++)
        OK(mio_close(fds[i]));
}
#endif

/* ---- bad input ---- */

TEST(null_out_pointers_einval)
{
    const char *dir = test_tmp_dir();
    mio_addr any = addr("127.0.0.1:0"), bound, ua;
    mio_fd l = test_listen("127.0.0.1:0", &bound), u = udp_on("127.0.0.1:0", &ua);
    char path[128];
    int before = test_open_fds();

    snprintf(path, sizeof path, "%s/null.sock", dir);
    CHECK_EQ(mio_tcp_listen(&any, 0, NULL), MIO_EINVAL);
    CHECK_EQ(mio_tcp_connect(&bound, NULL), MIO_EINVAL);
    CHECK_EQ(mio_tcp_accept(l, NULL, NULL), MIO_EINVAL);
    CHECK_EQ(mio_udp_bind(&any, NULL), MIO_EINVAL);
    CHECK_EQ(mio_unix_listen(path, 0, NULL), MIO_EINVAL);
    CHECK_EQ(mio_unix_connect(path, NULL), MIO_EINVAL);
    CHECK_EQ(mio_socketpair(NULL), MIO_EINVAL);
    CHECK_EQ(mio_pipe(NULL), MIO_EINVAL);
    CHECK_EQ(mio_local_addr(l, NULL), MIO_EINVAL);
    CHECK_EQ(mio_peer_addr(u, NULL), MIO_EINVAL);
    CHECK_EQ(test_open_fds(), before);
    CHECK_EQ(test_dir_entries(dir), 0);
    OK(mio_close(l));
    OK(mio_close(u));
}

TEST(null_addr_einval)
{
    mio_addr ua;
    mio_fd u = udp_on("127.0.0.1:0", &ua), fd = 0;
    int before = test_open_fds();
    CHECK_EQ(mio_tcp_listen(NULL, 0, &fd), MIO_EINVAL);
    CHECK_EQ(mio_tcp_connect(NULL, &fd), MIO_EINVAL);
    CHECK_EQ(mio_udp_bind(NULL, &fd), MIO_EINVAL);
    CHECK_EQ(mio_udp_connect(u, NULL), MIO_EINVAL);
    CHECK_EQ(test_open_fds(), before);
    OK(mio_close(u));
}

static void check_rejects_addr(const mio_addr *bad, mio_fd udp)
{
    mio_fd fd = 0;
    int err;
    err = mio_tcp_listen(bad, 0, &fd);
    CHECK(err == MIO_EINVAL || err == MIO_EAFNOSUPPORT);
    err = mio_tcp_connect(bad, &fd);
    CHECK(err == MIO_EINVAL || err == MIO_EAFNOSUPPORT);
    err = mio_udp_bind(bad, &fd);
    CHECK(err == MIO_EINVAL || err == MIO_EAFNOSUPPORT);
    err = mio_udp_connect(udp, bad);
    CHECK(err == MIO_EINVAL || err == MIO_EAFNOSUPPORT);
    err = (int)mio_udp_send_to(udp, "x", 1, bad);
    CHECK(err == MIO_EINVAL || err == MIO_EAFNOSUPPORT);
}

TEST(garbage_addr_rejected)
{
    mio_addr ua, bad;
    mio_fd u = udp_on("127.0.0.1:0", &ua);
    int before = test_open_fds();

    memset(&bad, 0, sizeof bad);
    bad.u.sa.sa_family = 0x7777;
    bad.len = sizeof(struct sockaddr_in);
    check_rejects_addr(&bad, u);

    bad = addr("127.0.0.1:9");
    bad.len = 3;
    check_rejects_addr(&bad, u);
    bad.len = 0;
    check_rejects_addr(&bad, u);
    bad.len = 1000;
    check_rejects_addr(&bad, u);

    bad = addr("[::1]:9");
    bad.len = sizeof(struct sockaddr_in);
    check_rejects_addr(&bad, u);

    CHECK_EQ(test_open_fds(), before);
    OK(mio_close(u));
}

TEST(closed_fd_is_ebadf)
{
    mio_addr a = addr("127.0.0.1:9"), out;
    mio_iovec iov = { &a, 1 };
    mio_fd sv[2], fd = 0;
    char buf[4];

    OK(mio_socketpair(sv));
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    CHECK_EQ(mio_read(sv[0], buf, sizeof buf), MIO_EBADF);
    CHECK_EQ(mio_write(sv[0], "x", 1), MIO_EBADF);
    CHECK_EQ(mio_readv(sv[0], &iov, 1), MIO_EBADF);
    CHECK_EQ(mio_writev(sv[0], &iov, 1), MIO_EBADF);
    CHECK_EQ(mio_shutdown(sv[0], MIO_SHUT_RDWR), MIO_EBADF);
    CHECK_EQ(mio_socket_error(sv[0]), MIO_EBADF);
    CHECK_EQ(mio_local_addr(sv[0], &out), MIO_EBADF);
    CHECK_EQ(mio_peer_addr(sv[0], &out), MIO_EBADF);
    CHECK_EQ(mio_tcp_accept(sv[0], &fd, NULL), MIO_EBADF);
    CHECK_EQ(mio_tcp_set_nodelay(sv[0], true), MIO_EBADF);
    CHECK_EQ(mio_udp_connect(sv[0], &a), MIO_EBADF);
    CHECK_EQ(mio_udp_send_to(sv[0], "x", 1, &a), MIO_EBADF);
    CHECK_EQ(mio_udp_recv_from(sv[0], buf, sizeof buf, NULL), MIO_EBADF);
    CHECK_EQ(mio_close(sv[0]), MIO_EBADF);
}

TEST(invalid_fd_is_ebadf)
{
    char buf[4];
    mio_addr out;
    CHECK_EQ(mio_read(MIO_INVALID_FD, buf, sizeof buf), MIO_EBADF);
    CHECK_EQ(mio_write(MIO_INVALID_FD, "x", 1), MIO_EBADF);
    CHECK_EQ(mio_shutdown(MIO_INVALID_FD, MIO_SHUT_WR), MIO_EBADF);
    CHECK_EQ(mio_socket_error(MIO_INVALID_FD), MIO_EBADF);
    CHECK_EQ(mio_local_addr(MIO_INVALID_FD, &out), MIO_EBADF);
    CHECK_EQ(mio_close(MIO_INVALID_FD), MIO_EBADF);
}

/* A pipe's ends closed twice (a socket's: closed_fd_is_ebadf). */
#ifndef _WIN32
POSIX_TEST(double_close_is_ebadf)
{
    mio_fd pfd[2];
    OK(mio_pipe(pfd));
    OK(mio_close(pfd[0]));
    CHECK_EQ(mio_close(pfd[0]), MIO_EBADF);
    OK(mio_close(pfd[1]));
    CHECK_EQ(mio_close(pfd[1]), MIO_EBADF);
}
#endif

TEST(shutdown_bad_how_is_einval)
{
    mio_fd sv[2];
    char buf[4];
    OK(mio_socketpair(sv));
    CHECK_EQ(mio_shutdown(sv[0], 3), MIO_EINVAL);
    CHECK_EQ(mio_shutdown(sv[0], -1), MIO_EINVAL);
    /* Nothing was shut: both directions still work. */
    CHECK_EQ(mio_write(sv[0], "x", 1), 1);
    CHECK_EQ(mio_read(sv[1], buf, sizeof buf), 1);
    CHECK_EQ(mio_write(sv[1], "y", 1), 1);
    CHECK_EQ(mio_read(sv[0], buf, sizeof buf), 1);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
}

TEST(shutdown_read_side)
{
    mio_fd sv[2];
    char buf[4];
    OK(mio_socketpair(sv));
    OK(mio_shutdown(sv[1], MIO_SHUT_RD));
    CHECK_EQ(mio_read(sv[1], buf, sizeof buf), 0);
    OK(mio_shutdown(sv[1], MIO_SHUT_RDWR));
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
}
