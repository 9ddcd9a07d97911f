/* Tracing end to end: MIO_LOG in a process's environment prints the trace
 * points on its stderr, filtered by level, and says so once when its value
 * is not understood; mio_set_log routes them to a callback, and turning it
 * off silences them.  The lines' formats are asserted here: tokens in hex,
 * flags and results by name, a line per event of a wait, a tick's counts. */
#include "harness.h"

#include "child.h"
#include "common.h"

/* The child's part of the MIO_LOG tests: one register / wait / deregister
 * round on this run's backend, traced to stderr as MIO_LOG says;
 * traced_child runs it as `test_log traced_round BACKEND`. */
CHILD_CASE(traced_round)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_event ev[4];
    OK(mio_register(p, s.r, 5, MIO_READABLE));
    test_put(s.w, "x");
    CHECK_EQ(mio_poll_wait(p, ev, 4, TEST_LONG_WAIT), 1);
    OK(mio_deregister(p, s.r));
    test_close_source(s);
    mio_poll_free(p);
}

/* A refused address before any poll, socket or loop is made: MIO_LOG is
 * read by then all the same. */
CHILD_CASE(refused_address)
{
    mio_addr a;
    CHECK_EQ(mio_addr_ip("10.0.0", 80, &a), MIO_EINVAL);
}

/* Runs the child case `name` in a child of this program whose environment
 * has MIO_LOG=level (NULL: no MIO_LOG at all) and returns its stderr. */
static void run_child(const char *name, const char *level, char *err, size_t size)
{
    const char *self = child_self_path();
    char *argv[] = { (char *)self, (char *)name, (char *)test_backend, NULL };
    char env[64];
    struct child c;
    int status;

    if (self == NULL)
        SKIP("this system does not tell a program its own path");
    if (level != NULL)
        snprintf(env, sizeof env, "MIO_LOG=%s", level);
    child_start(&c, argv, level != NULL ? env : "MIO_LOG", CHILD_STDERR);
    child_read_all(&c, err, size);
    status = child_wait(&c);
    if (status == 77)
        SKIP("no backend %s", test_backend);
    if (status != 0)
        FAIL("the traced child exited %d; its stderr:\n%s", status, err);
}

static void traced_child(const char *level, char *err, size_t size)
{
    run_child("traced_round", level, err, size);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

TEST(env_trace_prints_on_stderr)
{
    char err[8192], expect[64];
    traced_child("trace", err, sizeof err);
    snprintf(expect, sizeof expect, "backend %s\n", test_backend);
    CHECK(strncmp(err, "mio debug: poll ", 16) == 0);   /* every line says who */
    CHECK(strstr(err, expect) != NULL);
    CHECK(strstr(err, " token 0x5 interest READABLE|EDGE: ok\n") != NULL);
    CHECK(strstr(err, "mio trace: poll ") != NULL);
    CHECK(strstr(err, ": wait returned 1 event\n") != NULL);
    CHECK(strstr(err, ": event token 0x5 READABLE\n") != NULL);
    CHECK(strstr(err, ": deregister fd ") != NULL);
}

/* MIO_LOG=debug keeps register/deregister and drops the per-wait lines. */
TEST(env_level_filters)
{
    char err[8192];
    traced_child("debug", err, sizeof err);
    CHECK(strstr(err, ": deregister fd ") != NULL);
    CHECK(strstr(err, "wait returned") == NULL);
    CHECK(strstr(err, "mio trace: ") == NULL);
    traced_child("error", err, sizeof err);
    CHECK_EQ(strlen(err), 0);
}

/* Level names in any case, with blanks around them, and the synonyms. */
TEST(env_level_names_in_any_case)
{
    char err[8192];
    traced_child("DEBUG", err, sizeof err);
    CHECK(strstr(err, "mio debug: poll ") != NULL);
    CHECK(strstr(err, "mio trace: ") == NULL);
    traced_child(" Trace ", err, sizeof err);
    CHECK(strstr(err, "mio trace: poll ") != NULL);
    traced_child("verbose", err, sizeof err);
    CHECK(strstr(err, ": event token 0x5 READABLE\n") != NULL);
    traced_child("4", err, sizeof err);
    CHECK(strstr(err, "mio debug: poll ") != NULL);
    CHECK(strstr(err, "mio trace: ") == NULL);
    traced_child("Warning", err, sizeof err);     /* nothing at warn, and no complaint */
    CHECK_EQ(strlen(err), 0);
}

/* A value not understood is said once, in one line naming the valid
 * values, and nothing else is printed. */
TEST(env_unknown_level_is_said_once)
{
    static const char *const wrong[] = { "9", "verbos", "debug2", "-1", "level=debug" };
    char err[8192], expect[64];
    size_t i;

    for (i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        traced_child(wrong[i], err, sizeof err);
        snprintf(expect, sizeof expect, "mio: MIO_LOG=\"%s\" is not understood", wrong[i]);
        if (strncmp(err, expect, strlen(expect)) != 0)
            FAIL("MIO_LOG=%s printed:\n%s", wrong[i], err);
        CHECK(strstr(err, "off, error, warn, info, debug, trace") != NULL);
        CHECK_EQ(count_lines(err), 1);
    }
}

/* Without MIO_LOG, with it empty or off, nothing is printed. */
TEST(env_unset_prints_nothing)
{
    static const char *const quiet[] = { "", "off", "OFF", "none", "0" };
    char err[8192];
    size_t i;

    traced_child(NULL, err, sizeof err);
    CHECK_EQ(strlen(err), 0);
    for (i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        traced_child(quiet[i], err, sizeof err);
        if (strlen(err) != 0)
            FAIL("MIO_LOG=\"%s\" printed:\n%s", quiet[i], err);
    }
}

/* MIO_LOG is read by the first call that needs it, not only by a poll's
 * creation: an address refused before anything else is traced with why. */
TEST(env_read_before_any_poll)
{
    char err[8192];
    run_child("refused_address", "debug", err, sizeof err);
    CHECK(strncmp(err, "mio debug: mio_addr_ip \"10.0.0\": not a dotted-quad IPv4 address",
                  63) == 0);
}

static char lines[65536];
static int calls;

static void collect(int level, const char *msg, void *ud)
{
    size_t n = strlen(lines);
    CHECK(ud == (void *)lines);
    CHECK(level >= MIO_LOG_ERROR && level <= MIO_LOG_TRACE);
    CHECK(msg != NULL);
    calls++;
    snprintf(lines + n, sizeof lines - n, "%d %s\n", level, msg);
}

/* Starts collecting from scratch. */
static void collect_anew(void)
{
    lines[0] = '\0';
    mio_set_log(collect, lines);
}

/* Fails unless the collected lines hold the one printf makes of fmt. */
#define EXPECT_LINE(...)                                                      \
    do {                                                                      \
        char line_[1024];                                                     \
        snprintf(line_, sizeof line_, __VA_ARGS__);                           \
        if (strstr(lines, line_) == NULL)                                     \
            FAIL("no line \"%s\" among:\n%s", line_, lines);                  \
    } while (0)

/* The loop's ticks, at trace level, and registrations on its poll, at debug
 * level, reach the callback; after mio_set_log(NULL) nothing does, whatever
 * the poll does. */
TEST(callback_sees_ticks_and_registrations)
{
    mio_loop_config config = { 0 };
    struct test_source s;
    mio_loop *l;
    mio_poll *p;
    char expect[128];
    int before;

    config.backend = test_backend;
    collect_anew();
    if (mio_loop_new(&config, &l) == MIO_ENOSYS)
        SKIP("no backend %s", test_backend);
    p = mio_loop_poll(l);
    s = test_socket_source();
    OK(mio_register(p, s.r, 9, MIO_READABLE));
    EXPECT_LINE("%d poll %p: register fd %lld token 0x9 interest READABLE|EDGE: ok\n",
                MIO_LOG_DEBUG, (void *)p, (long long)s.r);

    OK(mio_loop_run_once(l, &(mio_handler){ 0 }, NULL, 0));
    OK(mio_loop_run_once(l, &(mio_handler){ 0 }, NULL, 0));
    snprintf(expect, sizeof expect, "%d loop %p: tick: 0 events, 0 timers, 0 messages\n",
             MIO_LOG_TRACE, (void *)l);
    CHECK(strstr(lines, expect) != NULL);
    CHECK(strstr(strstr(lines, expect) + 1, expect) != NULL);     /* twice */

    OK(mio_deregister(p, s.r));
    EXPECT_LINE("%d poll %p: deregister fd %lld: ok\n", MIO_LOG_DEBUG, (void *)p, (long long)s.r);

    mio_set_log(NULL, NULL);
    before = calls;
    OK(mio_register(p, s.r, 9, MIO_READABLE));
    OK(mio_reregister(p, s.r, 9, MIO_WRITABLE));
    EXPECT_EVENT(p, 9, MIO_WRITABLE, MIO_SEC);
    OK(mio_loop_run_once(l, &(mio_handler){ 0 }, NULL, 0));
    OK(mio_deregister(p, s.r));
    mio_loop_free(l);
    CHECK_EQ(calls, before);
    test_close_source(s);
}

/* The child's part of env_backend_error_on_stderr: MIO_BACKEND (set by the
 * parent) names no backend, so the default poll is refused. */
CHILD_CASE(env_backend_refused)
{
    mio_poll *p;
    CHECK_EQ(mio_poll_new(&p), MIO_ENOSYS);
}

/* With no log chosen (no mio_set_log, no MIO_LOG) a MIO_BACKEND that names
 * no backend is still told, on stderr, with the names that would do. */
TEST(env_backend_error_on_stderr)
{
    const char *self = child_self_path();
    char *argv[] = { (char *)self, "env_backend_refused", (char *)test_backend, NULL };
    char err[4096];
    struct child c;
    int status;

    if (self == NULL)
        SKIP("this system does not tell a program its own path");
    test_setenv("MIO_LOG", NULL);
    child_start(&c, argv, "MIO_BACKEND=nonesuch", CHILD_STDERR);
    child_read_all(&c, err, sizeof err);
    status = child_wait(&c);
    if (status != 0)
        FAIL("the child exited %d; its stderr:\n%s", status, err);
    CHECK(strncmp(err, "mio error: MIO_BACKEND=nonesuch: no backend has this name; "
                       "this build has: ", 59) == 0);
    CHECK(strchr(err, '\n') == err + strlen(err) - 1);  /* one line */
}

/* Interest as flags (trigger always named), tokens in hex whatever their
 * size, failed calls by their error's name. */
TEST(callback_registrations_decoded)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();
    mio_token big = (mio_token)UINTPTR_MAX - 0x1234;

    collect_anew();
    OK(mio_register(p, s.r, big, MIO_READABLE | MIO_WRITABLE | MIO_LEVEL | MIO_ONESHOT));
    EXPECT_LINE("poll %p: register fd %lld token 0x%llx interest READABLE|WRITABLE|LEVEL|ONESHOT: ok\n",
                (void *)p, (long long)s.r, (unsigned long long)big);
    OK(mio_reregister(p, s.r, 0, MIO_WRITABLE));
    EXPECT_LINE("poll %p: reregister fd %lld token 0x0 interest WRITABLE|EDGE: ok\n", (void *)p,
                (long long)s.r);
    CHECK_EQ(mio_register(p, s.r, 1, MIO_READABLE), MIO_EEXIST);
    EXPECT_LINE("poll %p: register fd %lld token 0x1 interest READABLE|EDGE: MIO_EEXIST\n",
                (void *)p, (long long)s.r);
    OK(mio_deregister(p, s.r));
    CHECK_EQ(mio_deregister(p, s.r), MIO_ENOENT);
    EXPECT_LINE("poll %p: deregister fd %lld: MIO_ENOENT\n", (void *)p, (long long)s.r);
    mio_set_log(NULL, NULL);
    test_close_source(s);
    mio_poll_free(p);
}

/* At trace level a wait says what it returned, then a line per event with
 * its token and readiness by name. */
TEST(callback_wait_lists_each_event)
{
    mio_poll *p = test_poll();
    mio_registration *r1, *r2;
    mio_set_readiness *s1, *s2;
    mio_event ev[8];
    mio_token t1 = (mio_token)(uintptr_t)&ev[0], t2 = 0x2a;

    OK(mio_registration_new(&r1, &s1));
    OK(mio_registration_new(&r2, &s2));
    collect_anew();
    OK(mio_registration_register(p, r1, t1, MIO_READABLE | MIO_WRITABLE));
    EXPECT_LINE("poll %p: register registration %p token 0x%llx interest READABLE|WRITABLE|EDGE: ok\n",
                (void *)p, (void *)r1, (unsigned long long)t1);
    OK(mio_registration_register(p, r2, t2, MIO_READABLE | MIO_LEVEL));
    OK(mio_set_readiness_set(s1, MIO_READABLE | MIO_WRITABLE | MIO_READ_CLOSED));
    OK(mio_set_readiness_set(s2, MIO_READABLE | MIO_ERROR));
    CHECK_EQ(mio_poll_wait(p, ev, 8, TEST_LONG_WAIT), 2);
    EXPECT_LINE("%d poll %p: wait returned 2 events\n", MIO_LOG_TRACE, (void *)p);
    EXPECT_LINE("%d poll %p: event token 0x%llx READABLE|WRITABLE|READ_CLOSED\n", MIO_LOG_TRACE,
                (void *)p, (unsigned long long)t1);
    EXPECT_LINE("%d poll %p: event token 0x2a READABLE|ERROR\n", MIO_LOG_TRACE, (void *)p);
    CHECK_EQ(mio_poll_wait(p, ev, 8, 0), 1);    /* level: r2 again */
    EXPECT_LINE("%d poll %p: wait returned 1 event\n", MIO_LOG_TRACE, (void *)p);
    OK(mio_set_readiness_set(s2, 0));
    CHECK_EQ(mio_poll_wait(p, ev, 8, 0), 0);
    EXPECT_LINE("%d poll %p: wait returned 0 events\n", MIO_LOG_TRACE, (void *)p);
    mio_set_log(NULL, NULL);
    mio_registration_free(r1);
    mio_registration_free(r2);
    mio_set_readiness_free(s1);
    mio_set_readiness_free(s2);
    mio_poll_free(p);
}

static void count_message(mio_loop *l, void *ctx, void *msg)
{
    (void)l;
    (void)msg;
    (*(int *)ctx)++;
}

/* A tick counts the timers it fired and the messages it delivered besides
 * its events. */
TEST(callback_tick_counts_timers_and_messages)
{
    mio_loop_config config = { 0 };
    mio_handler h = { .notify = count_message };
    mio_registration *r;
    mio_set_readiness *s;
    mio_sender *tx;
    mio_loop *l;
    int got = 0;

    config.backend = test_backend;
    if (mio_loop_new(&config, &l) == MIO_ENOSYS)
        SKIP("no backend %s", test_backend);
    OK(mio_registration_new(&r, &s));
    OK(mio_registration_register(mio_loop_poll(l), r, 3, MIO_READABLE));
    OK(mio_set_readiness_set(s, MIO_READABLE));
    OK(mio_loop_channel(l, &tx));
    OK(mio_sender_send(tx, NULL));
    OK(mio_sender_send(tx, NULL));
    OK(mio_loop_timeout_in(l, 0, NULL, NULL));
    OK(mio_loop_timeout_in(l, 0, NULL, NULL));
    OK(mio_loop_timeout_in(l, 0, NULL, NULL));
    collect_anew();
    OK(mio_loop_run_once(l, &h, &got, 0));
    CHECK_EQ(got, 2);
    EXPECT_LINE("%d loop %p: tick: 1 event, 3 timers, 2 messages\n", MIO_LOG_TRACE, (void *)l);
    OK(mio_sender_send(tx, NULL));
    OK(mio_loop_timeout_in(l, 0, NULL, NULL));
    OK(mio_set_readiness_set(s, MIO_WRITABLE));    /* not asked for: no event */
    OK(mio_loop_run_once(l, &h, &got, 0));
    EXPECT_LINE("%d loop %p: tick: 0 events, 1 timer, 1 message\n", MIO_LOG_TRACE, (void *)l);
    mio_set_log(NULL, NULL);
    mio_sender_free(tx);
    mio_registration_free(r);
    mio_set_readiness_free(s);
    mio_loop_free(l);
}

/* Listen, connect, accept (with the peer's address) and close, each with
 * its descriptor; an accept that finds none says MIO_EAGAIN. */
TEST(callback_sees_connections)
{
    char peer[MIO_ADDR_STRLEN], local[MIO_ADDR_STRLEN];
    mio_addr bound, client_addr, a;
    mio_fd l, c, s;

    collect_anew();
    l = test_listen("127.0.0.1:0", &bound);
    CHECK(mio_addr_format(&bound, local, sizeof local) > 0);
    EXPECT_LINE("%d listen fd %lld on 127.0.0.1:0: ok\n", MIO_LOG_DEBUG, (long long)l);
    CHECK_EQ(mio_accept(l, &s, NULL), MIO_EAGAIN);
    EXPECT_LINE("%d accept on listener %lld: MIO_EAGAIN\n", MIO_LOG_TRACE, (long long)l);

    OK(mio_tcp_connect(&bound, &c));
    EXPECT_LINE("%d connect fd %lld to %s: ", MIO_LOG_DEBUG, (long long)c, local);
    CHECK(strstr(lines, ": in progress\n") != NULL || strstr(lines, ": connected\n") != NULL);
    s = test_accept(l, &a);
    OK(mio_local_addr(c, &client_addr));
    CHECK(mio_addr_format(&client_addr, peer, sizeof peer) > 0);
    EXPECT_LINE("%d accept fd %lld on listener %lld from %s\n", MIO_LOG_DEBUG, (long long)s,
                (long long)l, peer);
    OK(mio_close(s));
    EXPECT_LINE("%d close fd %lld: ok\n", MIO_LOG_DEBUG, (long long)s);
    mio_set_log(NULL, NULL);
    OK(mio_close(c));
    OK(mio_close(l));
}

/* A Unix connect that fails at once says why, by name. */
TEST(callback_sees_connect_refused_at_once)
{
    char path[512];
    mio_fd c;
    int err;

    snprintf(path, sizeof path, "%s/nobody", test_tmp_dir());
    collect_anew();
    err = mio_unix_connect(path, &c);
    mio_set_log(NULL, NULL);
    if (err == MIO_EAFNOSUPPORT)
        SKIP("no Unix stream sockets here");
    CHECK(err < 0);
    EXPECT_LINE("%d connect fd ", MIO_LOG_DEBUG);
    EXPECT_LINE(" to %s: %s\n", path, mio__log_result(err, (char[MIO__LOG_TEXT]){ 0 }));
    CHECK(strstr(lines, ": MIO_E") != NULL);
}

/* A refused address says why: mio_addr_ip what is wrong with the text,
 * mio_addr_sockaddr which family or length it refused. */
TEST(callback_hears_why_an_address_is_refused)
{
    static const struct { const char *ip, *why; } bad[] = {
        { "", "no address" },
        { "[::1]", "no brackets here" },
        { "10.0.0.1:80", "the port is an argument of its own here" },
        { "localhost", "not a dotted-quad IPv4 address (names are not looked up)" },
        { "::g", "not an IPv6 address" },
        { "fe80::1%eth0", "the scope after '%' must be an interface number, not a name" },
    };
    struct sockaddr_storage ss;
    mio_addr a;
    size_t i;

    collect_anew();
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(mio_addr_ip(bad[i].ip, 80, &a), MIO_EINVAL);
        EXPECT_LINE("%d mio_addr_ip \"%s\": %s", MIO_LOG_DEBUG, bad[i].ip, bad[i].why);
    }
    memset(&ss, 0, sizeof ss);
    ss.ss_family = 250;
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, sizeof ss, &a), MIO_EAFNOSUPPORT);
    EXPECT_LINE("%d mio_addr_sockaddr family 250: not IPv4, IPv6 or Unix\n", MIO_LOG_DEBUG);
    ss.ss_family = AF_INET6;
    CHECK_EQ(mio_addr_sockaddr((const struct sockaddr *)&ss, 8, &a), MIO_EINVAL);
    EXPECT_LINE("%d mio_addr_sockaddr family %d: 8 bytes, short of %d\n", MIO_LOG_DEBUG,
                AF_INET6, (int)sizeof(struct sockaddr_in6));
    mio_set_log(NULL, NULL);
}

/* The text the lines are made of, every name and the bits without one. */
TEST(flags_and_results_by_name)
{
    char buf[MIO__LOG_TEXT];
    CHECK(strcmp(mio__log_interest(0, buf), "EDGE") == 0);
    CHECK(strcmp(mio__log_interest(MIO_READABLE | MIO_PRIORITY | MIO_WRITABLE | MIO_LEVEL |
                                   MIO_ONESHOT | 0x300u, buf),
                 "READABLE|PRIORITY|WRITABLE|LEVEL|ONESHOT|0x300") == 0);
    CHECK(strcmp(mio__log_readiness(0, buf), "0") == 0);
    CHECK(strcmp(mio__log_readiness(0xffffffffu, buf),
                 "READABLE|PRIORITY|WRITABLE|ERROR|READ_CLOSED|WRITE_CLOSED|0xffffffc0") == 0);
    CHECK(strcmp(mio__log_readiness(MIO_WRITE_CLOSED, buf), "WRITE_CLOSED") == 0);
    CHECK(strcmp(mio__log_result(0, buf), "ok") == 0);
    CHECK(strcmp(mio__log_result(MIO_EAGAIN, buf), "MIO_EAGAIN") == 0);
    CHECK(strcmp(mio__log_result(MIO_ECHILD, buf), "MIO_ECHILD") == 0);
    CHECK(strcmp(mio__log_result(7, buf), "7") == 0);
    CHECK(strcmp(mio__log_result(-100000, buf), "-100000") == 0);
}
