/* Tracing end to end: MIO_LOG in a process's environment prints the trace
 * points on its stderr, filtered by level; mio_set_log routes them to a
 * callback, and turning it off silences them. */
#include "harness.h"

#include "child.h"

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

/* Runs traced_round in a child of this program whose environment has
 * MIO_LOG=level (NULL: no MIO_LOG at all) and returns the child's stderr. */
static void traced_child(const char *level, char *err, size_t size)
{
    const char *self = child_self_path();
    char *argv[] = { (char *)self, "traced_round", (char *)test_backend, NULL };
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

TEST(env_trace_prints_on_stderr)
{
    char err[8192], expect[64];
    traced_child("trace", err, sizeof err);
    snprintf(expect, sizeof expect, "backend %s\n", test_backend);
    CHECK(strncmp(err, "mio debug: poll ", 16) == 0);   /* every line says who */
    CHECK(strstr(err, expect) != NULL);
    CHECK(strstr(err, "mio debug: poll ") != NULL && strstr(err, " token 5 interest 0x1: 0\n") != NULL);
    CHECK(strstr(err, ": wait returned 1\n") != NULL);
    CHECK(strstr(err, "mio trace: ") != NULL);
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

/* Without MIO_LOG, or with it empty, nothing is printed. */
TEST(env_unset_prints_nothing)
{
    char err[8192];
    traced_child(NULL, err, sizeof err);
    CHECK_EQ(strlen(err), 0);
    traced_child("", err, sizeof err);
    CHECK_EQ(strlen(err), 0);
}

static char lines[16384];
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

/* The loop's ticks, at trace level, and registrations on its poll, at debug
 * level, reach the callback; after mio_set_log(NULL) nothing does, whatever
 * the poll does. */
TEST(callback_sees_ticks_and_registrations)
{
    mio_loop_config config = { 0 };
    struct test_source s;
    mio_loop *l;
    mio_poll *p;
    char expect[96];
    int before;

    config.backend = test_backend;
    mio_set_log(collect, lines);
    if (mio_loop_new(&config, &l) == MIO_ENOSYS)
        SKIP("no backend %s", test_backend);
    p = mio_loop_poll(l);
    s = test_socket_source();
    OK(mio_register(p, s.r, 9, MIO_READABLE));
    snprintf(expect, sizeof expect, "%d poll %p: register fd %lld token 9 interest 0x1: 0\n",
             MIO_LOG_DEBUG, (void *)p, (long long)s.r);
    CHECK(strstr(lines, expect) != NULL);

    OK(mio_loop_run_once(l, &(mio_handler){ 0 }, NULL, 0));
    OK(mio_loop_run_once(l, &(mio_handler){ 0 }, NULL, 0));
    snprintf(expect, sizeof expect, "%d loop %p: tick, 0 events\n", MIO_LOG_TRACE, (void *)l);
    CHECK(strstr(lines, expect) != NULL);
    CHECK(strstr(strstr(lines, expect) + 1, expect) != NULL);     /* twice */

    OK(mio_deregister(p, s.r));
    snprintf(expect, sizeof expect, "%d poll %p: deregister fd %lld: 0\n",
             MIO_LOG_DEBUG, (void *)p, (long long)s.r);
    CHECK(strstr(lines, expect) != NULL);

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
