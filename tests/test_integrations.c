/* The examples in examples/with/, each driving another library's event
 * interface through libmio on this run's backend, end to end against
 * servers on the loopback only: curl_multi against examples/http_server and
 * against an HTTP server of this file's (bodies of many sizes),
 * ares_resolve against a DNS responder of this file's, tls_echo_client
 * against tls_echo_server.  An example whose library was not found when
 * configuring is skipped, naming the Debian package that has it.  POSIX
 * only, as the examples are. */
#include "harness.h"

#ifndef _WIN32
#include "child.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <unistd.h>

/* What the configuration built (CMakeLists.txt defines one per example). */
#ifdef MIO_WITH_CURL_MULTI
#define WITH_CURL true
#else
#define WITH_CURL false
#endif
#ifdef MIO_WITH_ARES_RESOLVE
#define WITH_ARES true
#else
#define WITH_ARES false
#endif
#if defined(MIO_WITH_TLS_ECHO_SERVER) && defined(MIO_WITH_TLS_ECHO_CLIENT)
#define WITH_TLS true
#else
#define WITH_TLS false
#endif

/* The path of example `name`; skips when it was not built, saying why. */
static void example_path(char *buf, size_t size, const char *name, bool built,
                         const char *library, const char *package)
{
    const char *dir = getenv("MIO_EXAMPLES_DIR");
#ifdef MIO_EXAMPLES_DIR
    if (dir == NULL)
        dir = MIO_EXAMPLES_DIR;
#endif
    if (dir == NULL)
        SKIP("examples not built (set MIO_EXAMPLES_DIR)");
    if (!built)
        SKIP("%s not built: %s was not found when configuring (Debian: apt-get install %s)",
             name, library, package);
    CHECK(snprintf(buf, size, "%s/%s", dir, name) < (int)size);
    if (access(buf, X_OK) != 0)
        SKIP("%s not built", buf);
}

#define CURL_MULTI(buf) \
    example_path(buf, sizeof buf, "curl_multi", WITH_CURL, "libcurl", "libcurl4-openssl-dev")
#define ARES_RESOLVE(buf) \
    example_path(buf, sizeof buf, "ares_resolve", WITH_ARES, "c-ares", "libc-ares-dev")
#define TLS_EXAMPLE(buf, name) \
    example_path(buf, sizeof buf, name, WITH_TLS, "OpenSSL 3", "libssl-dev")

/* A program's standard output, line by line. */
struct output {
    int lines;
    char line[128][512];
};

/* Runs argv to its end; returns its exit status and its output in *out. */
static int run(char *const argv[], struct output *out)
{
    struct child c;
    char line[512];

    out->lines = 0;
    child_start(&c, argv, NULL, CHILD_STDOUT);
    for (;;) {
        child_read_line(&c, line, sizeof line);
        if (line[0] == '\0')
            break;
        CHECK(out->lines < 128);
        strcpy(out->line[out->lines++], line);
    }
    return child_wait(&c);
}

/* The line that starts with `prefix` and a space; fails if none does. */
static const char *line_of(const struct output *out, const char *prefix)
{
    size_t n = strlen(prefix);
    int i;
    for (i = 0; i < out->lines; i++)
        if (strncmp(out->line[i], prefix, n) == 0 && out->line[i][n] == ' ')
            return out->line[i] + n + 1;
    FAIL("no line for %s", prefix);
}

/* A loopback address nobody listens on: bound, then closed. */
static void closed_port(char *buf, size_t size)
{
    mio_addr addr;
    mio_fd fd;
    OK(mio_addr_parse("127.0.0.1:0", &addr));
    OK(mio_tcp_listen(&addr, 1, &fd));
    OK(mio_local_addr(fd, &addr));
    OK(mio_close(fd));
    CHECK(mio_addr_format(&addr, buf, size) > 0);
}

/* ---- example servers: started on this run's backend, stopped cleanly ---- */

struct server {
    struct child child;
    char addr[MIO_ADDR_STRLEN];
};

/* Starts argv and reads "listening on ADDR backend NAME" from it. */
static void server_start(struct server *s, char *const argv[])
{
    char line[256], backend[32];
    int status;

    child_start(&s->child, argv, NULL, CHILD_STDOUT);
    child_read_line(&s->child, line, sizeof line);
    if (line[0] == '\0') {
        if ((status = child_wait(&s->child)) == 77)
            SKIP("%s has no backend %s", argv[0], test_backend);
        FAIL("%s printed nothing and exited %d", argv[0], status);
    }
    CHECK(sscanf(line, "listening on %79s backend %31s", s->addr, backend) == 2);
    CHECK(strcmp(backend, test_backend) == 0);
}

/* SIGTERM: the server frees everything and says "stopped" last; the line
 * before it goes to `summary` (may be NULL). */
static void server_stop(struct server *s, char *summary, size_t size)
{
    char line[512], last[512] = "";
    child_stop(&s->child);
    for (;;) {
        child_read_line(&s->child, line, sizeof line);
        if (line[0] == '\0' || strcmp(line, "stopped") == 0)
            break;
        strcpy(last, line);
    }
    CHECK_EQ(child_wait(&s->child), 0);
    if (strcmp(line, "stopped") != 0)
        FAIL("the server's last line is \"%s\", not \"stopped\"", line);
    if (summary != NULL)
        snprintf(summary, size, "%s", last);
}

/* ---- curl_multi ---- */

static uint64_t fnv1a(const unsigned char *data, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    size_t i;
    for (i = 0; i < len; i++)
        h = (h ^ data[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* Checks curl_multi's line for url: status, length and hash of the body. */
static void expect_fetched(const struct output *out, const char *url, long status,
                           const unsigned char *body, size_t len)
{
    const char *line = line_of(out, url);
    unsigned long long bytes, hash;
    long got;
    if (sscanf(line, "ok status %ld bytes %llu fnv %llx", &got, &bytes, &hash) != 3)
        FAIL("%s: \"%s\"", url, line);
    CHECK_EQ(got, status);
    CHECK_EQ(bytes, len);
    CHECK(hash == fnv1a(body, len));
}

/* Fifty URLs at once from examples/http_server (kept-alive connections
 * reused as they come free), and one to a closed port that fails with
 * libcurl's error, the others unharmed.  On libkqueue fifteen: it drops
 * edge-triggered events that do not fit the caller's event list
 * (tools/libkqueue_lost_edges.c), and fifty connections ready both ways at
 * the server make a hundred events for the 64 its backend asks for; those
 * whose request was dropped sit until the server's idle timer closes them,
 * and libcurl says "Empty reply from server". */
POSIX_TEST(curl_fetches_fifty_urls_at_once)
{
    static const char hello[] = "Hello, world!\n";
    static char urls[51][128];
    static struct output out;
    char path[4096], server_path[4096], refused[MIO_ADDR_STRLEN], done[64];
    char *server_argv[] = { server_path, "-b", (char *)test_backend, "-n", "60",
                            "127.0.0.1:0", NULL };
    char *argv[60] = { path, "-b", (char *)test_backend };
    struct server s;
    const char *line;
    int i, code, n = test_on_libkqueue() ? 15 : 50;

    CURL_MULTI(path);
    example_path(server_path, sizeof server_path, "http_server", true, "", "");
    test_watchdog(100);
    server_start(&s, server_argv);
    closed_port(refused, sizeof refused);
    for (i = 0; i < n; i++) {
        snprintf(urls[i], sizeof urls[i], "http://%s/page/%d", s.addr, i);
        argv[3 + i] = urls[i];
    }
    snprintf(urls[n], sizeof urls[n], "http://%s/", refused);
    argv[3 + n] = urls[n];
    argv[4 + n] = NULL;

    CHECK_EQ(run(argv, &out), 1);               /* one failed */
    CHECK_EQ(out.lines, n + 2);
    for (i = 0; i < n; i++)
        expect_fetched(&out, urls[i], 200, (const unsigned char *)hello, strlen(hello));
    line = line_of(&out, urls[n]);
    /* libkqueue clears the error of a refused connect while reporting it:
     * libcurl then finds the refusal on its first read instead. */
    if (sscanf(line, "error %d", &code) != 1 ||
        (code != 7 && !(test_on_libkqueue() && code == 56)))
        FAIL("the closed port: \"%s\"", line);
    snprintf(done, sizeof done, "done %d ok %d failed 1", n + 1, n);
    CHECK(strcmp(out.line[n + 1], done) == 0);
    server_stop(&s, NULL, 0);
}

/* An HTTP/1.1 server on a thread of the test: GET /bytes/N answers N bytes
 * (body_byte), GET /missing a 404; one request per connection.  Blocking
 * sockets, one connection at a time: the clients' concurrency is the
 * example's business. */
struct http_server {
    pthread_t thread;
    int fd;
    atomic_bool stop;
    char addr[MIO_ADDR_STRLEN];
};

static unsigned char body_byte(size_t len, size_t i)
{
    return (unsigned char)(i * 131 + len + (i >> 10));
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;                     /* the client gave up: its line says so */
        p += n;
        len -= (size_t)n;
    }
}

static void http_answer(int fd)
{
    static unsigned char body[1 << 21];
    char req[4096], head[256];
    size_t got = 0, len = 0, i;
    int status = 404;

    while (got < sizeof req - 1 && (got < 4 || memcmp(req + got - 4, "\r\n\r\n", 4) != 0)) {
        ssize_t n = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (n <= 0)
            return;
        got += (size_t)n;
    }
    req[got] = '\0';
    if (sscanf(req, "GET /bytes/%zu ", &len) == 1 && len <= sizeof body) {
        status = 200;
        for (i = 0; i < len; i++)
            body[i] = body_byte(len, i);
    } else {
        len = strlen("not here\n");
        memcpy(body, "not here\n", len);
    }
    snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             status, status == 200 ? "OK" : "Not Found", len);
    send_all(fd, head, strlen(head));
    send_all(fd, body, len);
}

static void *http_serve(void *arg)
{
    struct http_server *h = arg;
    while (!atomic_load(&h->stop)) {
        struct pollfd p = { h->fd, POLLIN, 0 };
        int fd;
        if (poll(&p, 1, 50) <= 0 || (fd = accept(h->fd, NULL, NULL)) < 0)
            continue;
        http_answer(fd);
        close(fd);
    }
    return NULL;
}

static void http_server_start(struct http_server *h)
{
    mio_addr addr;
    OK(mio_addr_parse("127.0.0.1:0", &addr));
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(h->fd >= 0);
    CHECK(bind(h->fd, &addr.u.sa, addr.len) == 0);
    CHECK(listen(h->fd, 128) == 0);
    OK(mio_local_addr(h->fd, &addr));
    CHECK(mio_addr_format(&addr, h->addr, sizeof h->addr) > 0);
    atomic_init(&h->stop, false);
    CHECK(pthread_create(&h->thread, NULL, http_serve, h) == 0);
}

static void http_server_stop(struct http_server *h)
{
    atomic_store(&h->stop, true);
    CHECK(pthread_join(h->thread, NULL) == 0);
    close(h->fd);
}

/* Bodies from empty to 2 MiB, read in many pieces, each byte checked through
 * its hash, and a status other than 200 passed on as it came. */
POSIX_TEST(curl_fetches_bodies_of_many_sizes)
{
    static const size_t sizes[] = { 0, 1, 1000, 16384, 65537, 300000, 1 << 20, 1 << 21 };
    static unsigned char body[1 << 21];
    static char urls[16][128];
    static struct output out;
    char path[4096];
    char *argv[24] = { path, "-b", (char *)test_backend, "-p", "4" };
    struct http_server h;
    size_t i, k, n = sizeof sizes / sizeof sizes[0];

    CURL_MULTI(path);
    test_watchdog(100);
    http_server_start(&h);
    for (i = 0; i < n; i++) {
        snprintf(urls[i], sizeof urls[i], "http://%s/bytes/%zu", h.addr, sizes[i]);
        argv[5 + i] = urls[i];
    }
    snprintf(urls[n], sizeof urls[n], "http://%s/missing", h.addr);
    argv[5 + n] = urls[n];
    argv[6 + n] = NULL;

    CHECK_EQ(run(argv, &out), 0);
    for (i = 0; i < n; i++) {
        for (k = 0; k < sizes[i]; k++)
            body[k] = body_byte(sizes[i], k);
        expect_fetched(&out, urls[i], 200, body, sizes[i]);
    }
    expect_fetched(&out, urls[n], 404, (const unsigned char *)"not here\n", 9);
    http_server_stop(&h);
}

/* ---- ares_resolve ---- */

/* A DNS responder on a thread of the test, UDP on 127.0.0.1: answers A and
 * AAAA questions from `records` (and host-N.example.test: 198.51.100.N),
 * NXDOMAIN for any other name. */
struct dns_server {
    pthread_t thread;
    int fd;
    atomic_bool stop;
    char addr[MIO_ADDR_STRLEN];
};

#define DNS_A    1
#define DNS_AAAA 28

static const struct { const char *name; int type; const char *addr; } records[] = {
    { "dual.example.test", DNS_A, "192.0.2.1" },
    { "dual.example.test", DNS_A, "192.0.2.2" },
    { "dual.example.test", DNS_AAAA, "2001:db8::1" },
    { "v4only.example.test", DNS_A, "192.0.2.3" },
    { "v6only.example.test", DNS_AAAA, "2001:db8::2" },
    { "v6only.example.test", DNS_AAAA, "2001:db8::3" },
};

/* Appends one answer (the name: a pointer to the question's) to r. */
static size_t dns_record(unsigned char *r, size_t at, int type, const char *text)
{
    unsigned char addr[16];
    size_t len = type == DNS_A ? 4 : 16;
    CHECK(inet_pton(type == DNS_A ? AF_INET : AF_INET6, text, addr) == 1);
    r[at++] = 0xc0, r[at++] = 12;                   /* the name at offset 12 */
    r[at++] = 0, r[at++] = (unsigned char)type;
    r[at++] = 0, r[at++] = 1;                       /* class IN */
    r[at++] = 0, r[at++] = 0, r[at++] = 0, r[at++] = 60;    /* TTL */
    r[at++] = 0, r[at++] = (unsigned char)len;
    memcpy(r + at, addr, len);
    return at + len;
}

/* The answer to query q in r (room for 512 bytes); 0: no answer. */
static size_t dns_answer(const unsigned char *q, size_t n, unsigned char *r)
{
    char name[256], text[64];
    size_t i = 12, len = 0, k, at;
    unsigned host;
    int type, answers = 0;
    bool known = false;

    if (n < 12 || (q[2] & 0x80) != 0 || q[4] != 0 || q[5] != 1)
        return 0;                               /* a response, or not one question */
    while (i < n && q[i] != 0) {
        size_t label = q[i];
        if (label > 63 || i + 1 + label >= n || len + label + 1 >= sizeof name)
            return 0;
        if (len > 0)
            name[len++] = '.';
        for (k = 0; k < label; k++)
            name[len++] = (char)tolower(q[i + 1 + k]);
        i += 1 + label;
    }
    name[len] = '\0';
    if (i + 5 > n)
        return 0;
    type = q[i + 1] << 8 | q[i + 2];
    at = i + 5;                                 /* header and question, copied */
    memcpy(r, q, at);
    r[2] = (unsigned char)(0x84 | (q[2] & 0x01));   /* response, authoritative, RD */
    r[3] = 0x80;                                /* recursion available, no error */
    r[8] = r[9] = r[10] = r[11] = 0;            /* no authority, no additional */
    for (k = 0; k < sizeof records / sizeof records[0]; k++)
        if (strcmp(records[k].name, name) == 0) {
            known = true;
            if (records[k].type == type) {
                at = dns_record(r, at, type, records[k].addr);
                answers++;
            }
        }
    if (sscanf(name, "host-%u", &host) == 1 && host < 256 &&
        snprintf(text, sizeof text, "host-%u.example.test", host) > 0 && strcmp(text, name) == 0) {
        known = true;
        if (type == DNS_A) {
            snprintf(text, sizeof text, "198.51.100.%u", host);
            at = dns_record(r, at, type, text);
            answers++;
        }
    }
    if (!known)
        r[3] |= 3;                              /* NXDOMAIN */
    r[6] = 0;
    r[7] = (unsigned char)answers;
    return at;
}

static void *dns_serve(void *arg)
{
    struct dns_server *d = arg;
    unsigned char q[512], r[512];
    while (!atomic_load(&d->stop)) {
        struct pollfd p = { d->fd, POLLIN, 0 };
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        ssize_t n;
        size_t out;
        if (poll(&p, 1, 50) <= 0)
            continue;
        n = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *)&from, &len);
        if (n > 0 && (out = dns_answer(q, (size_t)n, r)) > 0)
            sendto(d->fd, r, out, 0, (struct sockaddr *)&from, len);
    }
    return NULL;
}

/* A UDP socket on 127.0.0.1; with `answer`, a thread answers on it, else
 * nothing ever does (nor refuses: no ICMP either). */
static void dns_server_start(struct dns_server *d, bool answer)
{
    mio_addr addr;
    OK(mio_addr_parse("127.0.0.1:0", &addr));
    d->fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(d->fd >= 0);
    CHECK(bind(d->fd, &addr.u.sa, addr.len) == 0);
    OK(mio_local_addr(d->fd, &addr));
    CHECK(mio_addr_format(&addr, d->addr, sizeof d->addr) > 0);
    atomic_init(&d->stop, !answer);
    if (answer)
        CHECK(pthread_create(&d->thread, NULL, dns_serve, d) == 0);
}

static void dns_server_stop(struct dns_server *d, bool answered)
{
    atomic_store(&d->stop, true);
    if (answered)
        CHECK(pthread_join(d->thread, NULL) == 0);
    close(d->fd);
}

/* Runs ares_resolve against d with the names (NULL-terminated); extra
 * options before them (NULL-terminated too). */
static int resolve(const struct dns_server *d, char *const *options, char *const *names,
                   struct output *out)
{
    char path[4096];
    char *argv[64] = { path, "-b", (char *)test_backend, "-s", (char *)d->addr };
    int argc = 5;

    ARES_RESOLVE(path);
    while (*options != NULL)
        argv[argc++] = *options++;
    while (*names != NULL) {
        CHECK(argc < 63);
        argv[argc++] = *names++;
    }
    argv[argc] = NULL;
    return run(argv, out);
}

/* The line for `name`: "ok" with exactly these addresses, in this order. */
static void expect_resolved(const struct output *out, const char *name, const char *a,
                            const char *aaaa)
{
    const char *line = line_of(out, name), *addrs;
    char want[256];
    long ms;
    if (sscanf(line, "ok %ld ms", &ms) != 1 || (addrs = strstr(line, " ms A")) == NULL)
        FAIL("%s: \"%s\"", name, line);
    snprintf(want, sizeof want, " ms A%s%s AAAA%s%s", *a ? " " : "", a, *aaaa ? " " : "", aaaa);
    if (strcmp(addrs, want) != 0)
        FAIL("%s: \"%s\", expected \"...%s\"", name, line, want);
}

/* Names with A records, AAAA records or both, and twenty more, all at
 * once: every address as the responder gave it. */
POSIX_TEST(ares_resolves_a_and_aaaa)
{
    static struct output out;
    static char hosts[20][64];
    char *options[] = { NULL };
    char *names[32] = { "dual.example.test", "v4only.example.test", "v6only.example.test" };
    struct dns_server d;
    char path[4096], want[32];
    int i;

    ARES_RESOLVE(path);                 /* skips before the responder starts */
    test_watchdog(60);
    dns_server_start(&d, true);
    for (i = 0; i < 20; i++) {
        snprintf(hosts[i], sizeof hosts[i], "host-%d.example.test", i);
        names[3 + i] = hosts[i];
    }
    names[23] = NULL;
    CHECK_EQ(resolve(&d, options, names, &out), 0);
    CHECK_EQ(out.lines, 24);
    expect_resolved(&out, "dual.example.test", "192.0.2.1 192.0.2.2", "2001:db8::1");
    expect_resolved(&out, "v4only.example.test", "192.0.2.3", "");
    expect_resolved(&out, "v6only.example.test", "", "2001:db8::2 2001:db8::3");
    for (i = 0; i < 20; i++) {
        snprintf(want, sizeof want, "198.51.100.%d", i);
        expect_resolved(&out, hosts[i], want, "");
    }
    CHECK(strcmp(out.line[23], "done 23 ok 23 failed 0") == 0);
    dns_server_stop(&d, true);
}

/* The error line of `name`: its code must be `code`; *ms and *timeouts are
 * what the example measured. */
static void expect_error(struct output *out, const char *name, const char *code, long *ms,
                         int *timeouts)
{
    const char *line = line_of(out, name);
    char got[32];

    if (sscanf(line, "error %31s %ld ms %d timeouts:", got, ms, timeouts) != 3)
        FAIL("\"%s\"", line);
    CHECK(strcmp(got, code) == 0);
}

/* A name the responder does not know: NXDOMAIN, which c-ares reports as
 * ARES_ENOTFOUND at once (no retry), while a known name beside it resolves. */
POSIX_TEST(ares_reports_nxdomain)
{
    static struct output out;
    char *options[] = { NULL };
    char *names[] = { "missing.example.test", "v4only.example.test", NULL };
    struct dns_server d;
    char path[4096];
    int timeouts;
    long ms;

    ARES_RESOLVE(path);
    test_watchdog(60);
    dns_server_start(&d, true);
    CHECK_EQ(resolve(&d, options, names, &out), 1);
    expect_error(&out, "missing.example.test", "ENOTFOUND", &ms, &timeouts);
    CHECK_EQ(timeouts, 0);
    expect_resolved(&out, "v4only.example.test", "192.0.2.3", "");
    CHECK(strcmp(out.line[2], "done 2 ok 1 failed 1") == 0);
    dns_server_stop(&d, true);
}

/* A server that never answers: c-ares gives up after its tries, each
 * server's first after 200 ms and the second after twice that (c-ares
 * doubles the timeout per round), and says ARES_ETIMEOUT; the loop timer
 * from ares_timeout is what wakes it. */
POSIX_TEST(ares_times_out_on_a_silent_server)
{
    static struct output out;
    char *options[] = { "-t", "200", "-r", "2", NULL };
    char *names[] = { "dual.example.test", NULL };
    struct dns_server d;
    char path[4096];
    int timeouts;
    long ms;

    ARES_RESOLVE(path);
    test_watchdog(60);
    dns_server_start(&d, false);
    CHECK_EQ(resolve(&d, options, names, &out), 1);
    expect_error(&out, "dual.example.test", "ETIMEOUT", &ms, &timeouts);
    CHECK(timeouts >= 2);
    CHECK(ms >= 600);                   /* never before c-ares's time */
    CHECK(ms < 10000);
    dns_server_stop(&d, false);
}

/* ---- tls_echo_server, tls_echo_client ---- */

/* tls_echo_server on this run's backend with its certificate written to
 * `cert`, and `extra` options (NULL-terminated). */
static void tls_server_start(struct server *s, char *cert, size_t size, char *const *extra)
{
    static int servers;
    char path[4096];
    char *argv[24] = { path, "-b", (char *)test_backend, "-n", "60", "-C", cert };
    int argc = 7;

    TLS_EXAMPLE(path, "tls_echo_server");
    snprintf(cert, size, "%s/server-%d.pem", test_tmp_dir(), servers++);
    while (*extra != NULL)
        argv[argc++] = *extra++;
    argv[argc++] = "127.0.0.1:0";
    argv[argc] = NULL;
    server_start(s, argv);
}

struct tls_summary {
    unsigned long connections, ok, verified, close_notify, updates, writes_wanting_read,
        reads_wanting_write;
};

/* tls_echo_client against s with `cert` as the one it trusts; returns its
 * exit status, its last line parsed into *r, its output into *out. */
static int tls_client_run(const struct server *s, const char *cert, const char *conns,
                          const char *bytes, const char *update, struct tls_summary *r,
                          struct output *out)
{
    char path[4096];
    char *argv[] = { path, "-b", (char *)test_backend, "-C", (char *)cert, "-c", (char *)conns,
                     "-s", (char *)bytes, "-d", "60", "-u", (char *)update, (char *)s->addr,
                     NULL };
    int status;

    TLS_EXAMPLE(path, "tls_echo_client");
    if (update == NULL) {
        argv[11] = (char *)s->addr;
        argv[12] = NULL;
    }
    status = run(argv, out);
    CHECK(out->lines > 0);
    if (sscanf(out->line[out->lines - 1],
               "connections %lu ok %lu bytes_verified %lu close_notify %lu updates %lu "
               "writes_wanting_read %lu reads_wanting_write %lu",
               &r->connections, &r->ok, &r->verified, &r->close_notify, &r->updates,
               &r->writes_wanting_read, &r->reads_wanting_write) != 7)
        FAIL("tls_echo_client said \"%s\"", out->line[out->lines - 1]);
    return status;
}

struct tls_server_summary {
    unsigned long connections, clean, failed, updates, writes_wanting_read, reads_wanting_write;
};

static struct tls_server_summary tls_server_stop(struct server *s)
{
    struct tls_server_summary r;
    char line[512];
    server_stop(s, line, sizeof line);
    if (sscanf(line, "connections %lu clean %lu failed %lu updates %lu writes_wanting_read %lu "
                     "reads_wanting_write %lu", &r.connections, &r.clean, &r.failed, &r.updates,
               &r.writes_wanting_read, &r.reads_wanting_write) != 6)
        FAIL("tls_echo_server said \"%s\"", line);
    return r;
}

/* `clients` connections echo `bytes` each through the server (its send
 * buffer small, so that its writes come up short), every byte checked, and
 * close with close_notify both ways; with `version` as the server's -V and
 * `every` (0: none) as both sides' -u. */
static void tls_echo(const char *version, long every, struct tls_summary *c,
                     struct tls_server_summary *sv)
{
    static struct output out;
    char cert[512], bytes[32], updates[32], *extra[8] = { "-w", "8192", NULL };
    char *update = every > 0 ? updates : NULL;
    long size = test_scaled(4000000);
    struct server s;
    int n = 2;

    test_watchdog(100);
    /* Scaled down with the stream, so that as many updates happen. */
    snprintf(updates, sizeof updates, "%ld", test_scaled(every));
    if (version != NULL) {
        extra[n++] = "-V";
        extra[n++] = (char *)version;
    }
    if (update != NULL) {
        extra[n++] = "-u";
        extra[n++] = (char *)update;
    }
    extra[n] = NULL;
    tls_server_start(&s, cert, sizeof cert, extra);
    snprintf(bytes, sizeof bytes, "%ld", size);
    if (tls_client_run(&s, cert, "4", bytes, update, c, &out) != 0)
        FAIL("tls_echo_client: \"%s\"", out.line[0]);
    CHECK_EQ(c->connections, 4);
    CHECK_EQ(c->ok, 4);
    CHECK_EQ(c->verified, 4 * size);
    CHECK_EQ(c->close_notify, 4);
    *sv = tls_server_stop(&s);
    CHECK_EQ(sv->connections, 4);
    CHECK_EQ(sv->clean, 4);             /* the client's close_notify, then ours */
    CHECK_EQ(sv->failed, 0);
}

/* TLS 1.3, megabytes each way on four connections at once. */
POSIX_TEST(tls_echoes_megabytes_on_four_connections)
{
    struct tls_summary c;
    struct tls_server_summary s;
    tls_echo(NULL, 0, &c, &s);
}

/* TLS 1.3 with key updates asked for from both sides every 300 kB. */
POSIX_TEST(tls13_key_updates_mid_stream)
{
    struct tls_summary c;
    struct tls_server_summary s;
    tls_echo(NULL, 300000, &c, &s);
    CHECK(c.updates > 0);
    CHECK(s.updates > 0);
}

/* TLS 1.2 renegotiations started from both sides every 300 kB: the
 * client's first write after starting one must wait for the server's
 * answer, a write that wants to read. */
POSIX_TEST(tls12_renegotiations_mid_stream)
{
    struct tls_summary c;
    struct tls_server_summary s;
    tls_echo("1.2", 300000, &c, &s);
    CHECK(c.updates > 0);
    CHECK(s.updates > 0);
    CHECK(c.writes_wanting_read > 0);
}

/* A blocking socket to addr whose reads give up after 10 s. */
static int socket_to(const char *text)
{
    struct timeval limit = { 10, 0 };
    mio_addr addr;
    int fd;
    OK(mio_addr_parse(text, &addr));
    fd = socket(addr.u.sa.sa_family, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
    CHECK(connect(fd, &addr.u.sa, addr.len) == 0);
    return fd;
}

/* The server closes a connection whose client speaks plain HTTP (after an
 * alert, perhaps), and one whose client leaves without a word, and goes on
 * serving TLS clients. */
POSIX_TEST(tls_server_rejects_plain_tcp)
{
    static struct output out;
    static const char request[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    char cert[512], buf[4096], *extra[] = { NULL };
    struct tls_summary c;
    struct tls_server_summary r;
    struct server s;
    ssize_t n;
    int fd;

    test_watchdog(100);
    tls_server_start(&s, cert, sizeof cert, extra);
    fd = socket_to(s.addr);
    CHECK_EQ(send(fd, request, strlen(request), MSG_NOSIGNAL), (long long)strlen(request));
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        ;                               /* a TLS alert at most, then the end */
    CHECK(n == 0 || errno == ECONNRESET);
    close(fd);
    close(socket_to(s.addr));
    CHECK_EQ(tls_client_run(&s, cert, "1", "100000", NULL, &c, &out), 0);
    CHECK_EQ(c.ok, 1);
    r = tls_server_stop(&s);
    CHECK_EQ(r.connections, 3);
    CHECK_EQ(r.clean, 1);
    CHECK_EQ(r.failed, 2);
}

/* The client verifies the server: another server's certificate (a key of
 * its own, the same names) fails the handshake, and nothing is sent. */
POSIX_TEST(tls_client_refuses_an_untrusted_certificate)
{
    static struct output out;
    char cert_a[512], cert_b[512], *extra[] = { NULL };
    struct tls_summary c;
    struct tls_server_summary r;
    struct server a, b;

    test_watchdog(100);
    tls_server_start(&a, cert_a, sizeof cert_a, extra);
    tls_server_start(&b, cert_b, sizeof cert_b, extra);
    CHECK_EQ(tls_client_run(&a, cert_b, "1", "1000", NULL, &c, &out), 1);
    CHECK_EQ(c.ok, 0);
    CHECK_EQ(c.verified, 0);
    if (strstr(out.line[0], "certificate verify failed") == NULL)
        FAIL("tls_echo_client said \"%s\"", out.line[0]);
    r = tls_server_stop(&a);
    CHECK_EQ(r.clean, 0);
    CHECK_EQ(r.failed, 1);              /* the client's alert */
    CHECK_EQ(tls_client_run(&b, cert_b, "1", "1000", NULL, &c, &out), 0);
    tls_server_stop(&b);
}
#endif
