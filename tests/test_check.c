/* The drain check (MIO_CHECK): an edge registration reported READABLE
 * again without a libmio call having drained it since is told at warn
 * level, once per registration; a program that drains (to MIO_EAGAIN, a
 * short read, end of stream), or does not use edges, is told nothing.
 * This program is linked with a library that has the checks whatever the
 * build type (CMakeLists.txt).  On the backends that emulate edges the
 * mistake shows as it is: no second event. */
#include "harness.h"

#include "child.h"

static char told[16384];
static int warnings;

static void collect(int level, const char *msg, void *ud)
{
    size_t n = strlen(told);
    (void)ud;
    if (level == MIO_LOG_WARN && strstr(msg, "READABLE reported again") != NULL)
        warnings++;
    if (level <= MIO_LOG_WARN)
        snprintf(told + n, sizeof told - n, "%d %s\n", level, msg);
}

static void listen_to_log(void)
{
    told[0] = '\0';
    warnings = 0;
    mio_set_log(collect, NULL);
}

/* A poll whose log this test reads. */
static mio_poll *checked_poll(void)
{
    listen_to_log();
    return test_poll();
}

/* Reads exactly one byte: never a drain while more is there. */
static void read_one(mio_fd fd)
{
    char c;
    CHECK_EQ(mio_read(fd, &c, 1), 1);
}

/* The mistake: each READABLE answered by one byte while more waits. */
TEST(undrained_edge_is_told)
{
    mio_poll *p = checked_poll();
    struct test_source s = test_socket_source();
    char expect[96];

    OK(mio_register(p, s.r, 7, MIO_READABLE));
    test_put(s.w, "ab");
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    read_one(s.r);
    CHECK_EQ(warnings, 0);
    test_put(s.w, "c");
    if (test_edge_emulated()) {
        /* What the check is about: never reported again here. */
        EXPECT_NO_EVENT(p, 7, 10 * TEST_QUIET_WAIT);
        CHECK_EQ(warnings, 0);
        test_close_source(s);
        mio_poll_free(p);
        return;
    }
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(warnings, 1);
    snprintf(expect, sizeof expect, ": fd %lld token 7: READABLE reported again",
             (long long)s.r);
    if (strstr(told, expect) == NULL)
        FAIL("expected \"%s\" in:\n%s", expect, told);
    CHECK(strncmp(told, "2 poll ", 7) == 0);

    /* Once per registration... */
    read_one(s.r);
    test_put(s.w, "d");
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(warnings, 1);
    /* ... and again after mio_reregister, which starts afresh. */
    OK(mio_reregister(p, s.r, 7, MIO_READABLE));
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    read_one(s.r);
    CHECK_EQ(warnings, 1);
    test_put(s.w, "e");
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(warnings, 2);
    mio_set_log(NULL, NULL);
    test_close_source(s);
    mio_poll_free(p);
}

/* One round of a correct program: data arrives, the event comes, `answer`
 * drains it. */
static void round_trip(mio_poll *p, struct test_source s, mio_token token,
                       void (*answer)(mio_fd))
{
    test_put(s.w, "abc");
    EXPECT_EVENT(p, token, MIO_READABLE, TEST_LONG_WAIT);
    answer(s.r);
}

static void drain(mio_fd fd)
{
    (void)test_drain(fd);
}

static void short_read(mio_fd fd)
{
    char buf[64];
    CHECK_EQ(mio_read(fd, buf, sizeof buf), 3);
}

static void short_readv(mio_fd fd)
{
    char a[2], b[62];
    mio_iovec iov[2] = { { a, sizeof a }, { b, sizeof b } };
    CHECK_EQ(mio_readv(fd, iov, 2), 3);
}

/* Reading to MIO_EAGAIN, a short read, a short readv, mio_socket_error:
 * each is a drain, round after round, and nothing is told. */
TEST(drained_edge_is_quiet)
{
    void (*const answers[])(mio_fd) = { drain, short_read, short_readv };
    mio_poll *p = checked_poll();
    struct test_source s = test_socket_source();
    size_t a;
    int i;

    OK(mio_register(p, s.r, 1, MIO_READABLE));
    for (a = 0; a < sizeof answers / sizeof answers[0]; a++)
        for (i = 0; i < 3; i++)
            round_trip(p, s, 1, answers[a]);
    /* mio_socket_error counts as a drain (it re-arms an emulated edge). */
    for (i = 0; i < 2; i++) {
        test_put(s.w, "x");
        EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
        OK(mio_socket_error(s.r));
        CHECK_EQ(test_drain(s.r), 1);
    }
    CHECK_EQ(warnings, 0);
    mio_set_log(NULL, NULL);
    test_close_source(s);
    mio_poll_free(p);
}

/* End of stream is a drain: a hang-up reported after the last bytes and
 * the end were read is no mistake. */
TEST(end_of_stream_is_a_drain)
{
    mio_poll *p = checked_poll();
    struct test_source s = test_socket_source();
    char buf[64];
    ssize_t last;

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_WRITABLE));
    EXPECT_EVENT(p, 1, MIO_WRITABLE, TEST_LONG_WAIT);
    test_put(s.w, "abcd");
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(mio_read(s.r, buf, sizeof buf), 4);
    OK(mio_shutdown(s.w, MIO_SHUT_WR));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(test_read_until(s.r, NULL, 0, &last), 0);
    CHECK_EQ(last, 0);
    CHECK_EQ(warnings, 0);
    /* The peer goes altogether: reported again, still no mistake. */
    test_hang_up(s.w);
    (void)test_await(p, 1, 10 * TEST_QUIET_WAIT);
    CHECK_EQ(warnings, 0);
    mio_set_log(NULL, NULL);
    OK(mio_close(s.r));
    mio_poll_free(p);
}

/* Level and oneshot registrations, and writes, are not the check's: a
 * level source reported on every wait, a oneshot one re-armed by
 * mio_reregister while data stays, a writable side never written. */
TEST(level_oneshot_and_writable_are_not_checked)
{
    mio_poll *p = checked_poll();
    struct test_source lv = test_socket_source(), os = test_socket_source(),
                       wr = test_socket_source();
    int i;

    OK(mio_register(p, lv.r, 1, MIO_READABLE | MIO_LEVEL));
    OK(mio_register(p, wr.r, 3, MIO_WRITABLE));
    test_put(lv.w, "abc");
    test_put(os.w, "abc");
    for (i = 0; i < 3; i++) {
        EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
        read_one(lv.r);
        test_put(lv.w, "x");
    }
    OK(mio_deregister(p, lv.r));
    OK(mio_register(p, os.r, 2, MIO_READABLE | MIO_ONESHOT));
    for (i = 0; i < 3; i++) {
        EXPECT_EVENT(p, 2, MIO_READABLE, TEST_LONG_WAIT);
        read_one(os.r);
        test_put(os.w, "x");
        test_put(wr.w, "x");    /* something for wr.r too: epoll reports the writable side again */
        OK(mio_reregister(p, os.r, 2, MIO_READABLE | MIO_ONESHOT));
    }
    (void)test_await(p, 3, TEST_QUIET_WAIT);
    CHECK_EQ(warnings, 0);
    mio_set_log(NULL, NULL);
    test_close_source(lv);
    test_close_source(os);
    test_close_source(wr);
    mio_poll_free(p);
}

/* An echo that reads no more than it can write back: a READABLE answered
 * by a write that met MIO_EAGAIN waits for WRITABLE, which comes on every
 * backend, and is no mistake. */
TEST(reading_held_back_by_a_full_write_is_quiet)
{
    mio_poll *p = checked_poll();
    struct test_source s = test_socket_source();
    int i;

    OK(mio_register(p, s.r, 1, MIO_READABLE | MIO_WRITABLE));
    EXPECT_EVENT(p, 1, MIO_WRITABLE, TEST_LONG_WAIT);
    (void)test_fill(s.r);                   /* the echo's way back is full */
    for (i = 0; i < 3; i++) {
        test_put(s.w, "ab");
        EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
        read_one(s.r);                      /* as much as fits the way back... */
        CHECK_EQ(mio_write(s.r, "a", 1), MIO_EAGAIN);  /* ... which is full */
        /* Emulated edges report READABLE again only after a drain: the
         * echo reads on from WRITABLE, which this peer never makes. */
        if (test_edge_emulated())
            break;
    }
    CHECK_EQ(warnings, 0);
    mio_set_log(NULL, NULL);
    test_close_source(s);
    mio_poll_free(p);
}

/* A listener answered by accepting until MIO_EAGAIN is drained; one that
 * takes a single connection per event while more wait is told. */
TEST(listener_accepting_one_per_event_is_told)
{
    mio_poll *p = checked_poll();
    mio_addr at;
    mio_fd l = test_listen("127.0.0.1:0", &at), c[4], a;
    int i;

    OK(mio_register(p, l, 1, MIO_READABLE));
    for (i = 0; i < 2; i++)
        OK(mio_tcp_connect(&at, &c[i]));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    test_sleep_ms(20);      /* both queued */
    while ((i = mio_tcp_accept(l, &a, NULL)) == 0)
        OK(mio_close(a));
    CHECK_EQ(i, MIO_EAGAIN);
    OK(mio_tcp_connect(&at, &c[2]));
    OK(mio_tcp_connect(&at, &c[3]));
    EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
    CHECK_EQ(warnings, 0);
    test_sleep_ms(20);
    OK(mio_tcp_accept(l, &a, NULL));    /* one of two */
    OK(mio_close(a));
    if (!test_edge_emulated()) {
        mio_fd more;
        OK(mio_tcp_connect(&at, &more));
        EXPECT_EVENT(p, 1, MIO_READABLE, TEST_LONG_WAIT);
        CHECK_EQ(warnings, 1);
        OK(mio_close(more));
    }
    mio_set_log(NULL, NULL);
    for (i = 0; i < 4; i++)
        OK(mio_close(c[i]));
    OK(mio_close(l));
    mio_poll_free(p);
}

/* MIO_CHECK=none turns the check off for the polls made after; a value it
 * does not know is said, and the check stays on. */
TEST(env_turns_the_check_off)
{
    mio_poll *p;
    struct test_source s = test_socket_source();

    test_setenv("MIO_CHECK", "none");
    p = checked_poll();
    OK(mio_register(p, s.r, 7, MIO_READABLE));
    test_put(s.w, "ab");
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    read_one(s.r);
    test_put(s.w, "c");
    (void)test_await(p, 7, 10 * TEST_QUIET_WAIT);
    CHECK_EQ(warnings, 0);
    OK(mio_deregister(p, s.r));
    mio_poll_free(p);

    test_setenv("MIO_CHECK", "drian");
    p = checked_poll();
    CHECK(strstr(told, "1 MIO_CHECK=drian: not a check; say drain, all or none") == told);
    test_setenv("MIO_CHECK", NULL);
    mio_set_log(NULL, NULL);
    mio_poll_free(p);
    test_close_source(s);
}

/* The child's part of told_on_stderr: the mistake, with no log chosen. */
CHILD_CASE(undrained_without_log)
{
    mio_poll *p = test_poll();
    struct test_source s = test_socket_source();

    OK(mio_register(p, s.r, 7, MIO_READABLE));
    test_put(s.w, "ab");
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    read_one(s.r);
    test_put(s.w, "c");
    EXPECT_EVENT(p, 7, MIO_READABLE, TEST_LONG_WAIT);
    test_close_source(s);
    mio_poll_free(p);
}

/* Without mio_set_log or MIO_LOG the finding still shows, on stderr. */
TEST(told_on_stderr_without_a_log)
{
    const char *self = child_self_path();
    char *argv[] = { (char *)self, "undrained_without_log", (char *)test_backend, NULL };
    char err[4096];
    struct child c;
    int status;

    if (test_edge_emulated())
        SKIP("edges are emulated here: the mistake is never reported again");
    if (self == NULL)
        SKIP("this system does not tell a program its own path");
    test_setenv("MIO_CHECK", NULL);
    child_start(&c, argv, "MIO_LOG", CHILD_STDERR);
    child_read_all(&c, err, sizeof err);
    status = child_wait(&c);
    if (status != 0)
        FAIL("the child exited %d; its stderr:\n%s", status, err);
    CHECK(strncmp(err, "mio warn: poll ", 15) == 0);
    CHECK(strstr(err, " token 7: READABLE reported again") != NULL);
}
