/* What the io_uring backend adds to the contract's machinery, checked on
 * every backend where it is a behaviour any backend must have: changes from
 * another thread reach a wait blocked for good, a descriptor number
 * registered again never hears its old registration, a poll keeps working
 * when the thread that waited on it exits.  Then the uring backend's own:
 * registration changes reach the kernel with the next wait, in one
 * io_uring_enter however many there were (counted by a seccomp filter that
 * hands each io_uring_enter to a supervising thread, the program itself
 * unchanged), and io_uring refused (seccomp, kernel.io_uring_disabled) is a
 * clean MIO_EPERM or MIO_ENOSYS with every other backend still working. */
#include "harness.h"

#include "child.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#ifndef _WIN32
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#ifndef _WIN32
/* Makes the free number `fd` one end of a new socket pair and returns the
 * other end. */
static mio_fd pair_at(mio_fd fd)
{
    mio_fd sv[2];
    OK(mio_socketpair(sv));
    if (sv[0] == fd || sv[1] == fd)
        return sv[0] == fd ? sv[1] : sv[0];
    CHECK(dup2(sv[0], fd) == fd);
    CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0);
    OK(mio_close(sv[0]));
    return sv[1];
}
#endif

/* ---- changes from another thread reach a wait blocked for good ---- */

struct changer {
    mio_poll *p;
    mio_fd a, b;            /* readable sockets */
    atomic_int step;        /* what the waiter has seen */
};

static void wait_step(struct changer *c, int step)
{
    while (atomic_load(&c->step) < step)
        test_sleep_ms(1);
    test_sleep_ms(30);      /* let the waiter block again */
}

static void *change_later(void *arg)
{
    struct changer *c = arg;
    wait_step(c, 0);
    OK(mio_register(c->p, c->a, 1, MIO_READABLE | MIO_ONESHOT));
    wait_step(c, 1);
    OK(mio_reregister(c->p, c->a, 2, MIO_READABLE | MIO_ONESHOT));
    wait_step(c, 2);
    OK(mio_deregister(c->p, c->a));
    OK(mio_register(c->p, c->b, 3, MIO_READABLE));
    return NULL;
}

/* Each change (a register, a oneshot re-armed, a deregister and another
 * register) is seen by a wait that has no timeout at all. */
TEST(changes_from_thread_reach_wait_without_timeout)
{
    struct changer c;
    mio_fd sa[2], sb[2];
    mio_event ev[8];
    pthread_t t;
    int step, n;

    test_watchdog(20);
    c.p = test_poll();
    OK(mio_socketpair(sa));
    OK(mio_socketpair(sb));
    CHECK_EQ(mio_write(sa[1], "a", 1), 1);
    CHECK_EQ(mio_write(sb[1], "b", 1), 1);
    c.a = sa[0];
    c.b = sb[0];
    atomic_init(&c.step, 0);
    OK(pthread_create(&t, NULL, change_later, &c));
    for (step = 1; step <= 3; step++) {
        do
            n = test_wait(c.p, ev, 8, -1);
        while (n == 0);
        CHECK_EQ(n, 1);
        CHECK_EQ(ev[0].token, (mio_token)step);
        CHECK(ev[0].flags & MIO_READABLE);
        atomic_store(&c.step, step);
    }
    OK(pthread_join(t, NULL));
    CHECK_EQ(test_wait(c.p, ev, 8, 30 * MIO_MSEC), 0);
    test_watchdog(0);
    OK(mio_close(sa[0]));
    OK(mio_close(sa[1]));
    OK(mio_deregister(c.p, sb[0]));
    OK(mio_close(sb[0]));
    OK(mio_close(sb[1]));
    mio_poll_free(c.p);
}

/* ---- a number registered again never hears its old registration ---- */

#ifndef _WIN32
/* Deregistered and closed (plainly, after the deregister, as the contract
 * allows), then the same number for another socket, registered before any
 * wait: the old socket's activity never comes with the new token, nor its
 * old token, and the new one is reported once per edge. */
POSIX_TEST(old_registration_of_a_number_never_reported)
{
    mio_poll *p = test_poll();
    int round;

    for (round = 0; round < 20; round++) {
        mio_fd sv[2], fd, peer;
        mio_event ev[8];
        char junk[512];
        int i, n;

        memset(junk, 'j', sizeof junk);
        OK(mio_socketpair(sv));
        fd = sv[0];
        OK(mio_register(p, fd, 1, MIO_READABLE | MIO_WRITABLE));
        CHECK_EQ(mio_write(sv[1], "x", 1), 1);
        CHECK(test_wait_token(p, 1, MIO_SEC) & MIO_READABLE);
        OK(mio_deregister(p, fd));
        CHECK_EQ(close(fd), 0);
        peer = pair_at(fd);
        OK(mio_register(p, fd, 2, MIO_READABLE));
        /* The old peer keeps writing into what may still be open behind
         * the old registration, and the new peer writes once. */
        for (i = 0; i < 8; i++)
            (void)send(sv[1], junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
        CHECK_EQ(mio_write(peer, "y", 1), 1);
        n = test_wait(p, ev, 8, MIO_SEC);
        CHECK_EQ(n, 1);
        CHECK_EQ(ev[0].token, 2);
        CHECK_EQ(ev[0].flags & (MIO_READABLE | MIO_WRITABLE), MIO_READABLE);
        n = test_wait(p, ev, 8, 10 * MIO_MSEC);
        for (i = 0; i < n; i++)
            CHECK_EQ(ev[i].token, 2);   /* at most a spurious one, never the old */
        CHECK_EQ(test_drain(fd), 1);
        OK(mio_deregister(p, fd));
        OK(mio_close(fd));
        OK(mio_close(peer));
        OK(mio_close(sv[1]));
    }
    mio_poll_free(p);
}

/* Closed behind the library's back (no deregister), the number reused and
 * registered again: the entry the old registration had now stands for the
 * new file, and what the old file's request still reports is stale. */
POSIX_TEST(number_reused_behind_back_hears_only_new_file)
{
    TEST_NOT_ON_LIBKQUEUE("close() leaves the filters behind, for the number's next owner");
    mio_poll *p = test_poll();
    int round;

    for (round = 0; round < 20; round++) {
        mio_fd sv[2], fd, peer;
        mio_event ev[8];
        char junk[256];
        int i, n;

        memset(junk, 'j', sizeof junk);
        OK(mio_socketpair(sv));
        fd = sv[0];
        OK(mio_register(p, fd, 1, MIO_READABLE | (round % 2 ? MIO_LEVEL : MIO_EDGE)));
        CHECK_EQ(test_wait(p, ev, 8, 0), 0);       /* its request in the kernel */
        CHECK_EQ(close(fd), 0);
        peer = pair_at(fd);
        OK(mio_register(p, fd, 2, MIO_READABLE));
        /* Only the old file gets data. */
        for (i = 0; i < 4; i++)
            (void)send(sv[1], junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
        n = test_wait(p, ev, 8, 20 * MIO_MSEC);
        CHECK_EQ(test_flags(ev, n, 1), 0);
        CHECK_EQ(test_flags(ev, n, 2), 0);
        CHECK_EQ(mio_write(peer, "n", 1), 1);
        CHECK_EQ(test_wait_token(p, 2, MIO_SEC) & MIO_READABLE, MIO_READABLE);
        OK(mio_deregister(p, fd));
        OK(mio_close(fd));
        OK(mio_close(peer));
        OK(mio_close(sv[1]));
    }
    mio_poll_free(p);
}
#endif

/* Deregistered and registered again with another token before any wait:
 * one event, with the new token, not one per registration. */
TEST(registered_again_before_wait_reports_once)
{
    mio_poll *p = test_poll();
    mio_fd sv[2];
    mio_event ev[8];
    int n, round;

    OK(mio_socketpair(sv));
    for (round = 0; round < 50; round++) {
        OK(mio_register(p, sv[0], 1, MIO_READABLE));
        if (round % 2)
            CHECK_EQ(test_wait(p, ev, 8, 0), 0);    /* the first request in the kernel */
        OK(mio_deregister(p, sv[0]));
        OK(mio_register(p, sv[0], 2, MIO_READABLE));
        CHECK_EQ(mio_write(sv[1], "z", 1), 1);
        n = test_wait(p, ev, 8, MIO_SEC);
        CHECK_EQ(n, 1);
        CHECK_EQ(ev[0].token, 2);
        CHECK_EQ(test_wait(p, ev, 8, 0), 0);
        CHECK_EQ(test_drain(sv[0]), 1);
        OK(mio_deregister(p, sv[0]));
    }
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(p);
}

/* ---- the waiting thread changes ---- */

struct first_waiter {
    mio_poll *p;
    mio_fd fd;
    mio_waker *w;
};

static void *wait_once_and_exit(void *arg)
{
    struct first_waiter *f = arg;
    OK(mio_register(f->p, f->fd, 1, MIO_READABLE));
    OK(mio_waker_wake(f->w));
    CHECK_EQ(test_wait_token(f->p, 2, MIO_SEC), MIO_READABLE);
    return NULL;
}

/* The thread that made the poll's requests is gone (io_uring completes a
 * request on the thread that submitted it): the next waiter hears of new
 * data at once, of the waker's new wakes, and of nothing twice. */
TEST(poll_works_after_waiting_thread_exits)
{
    struct first_waiter f;
    mio_fd sv[2];
    mio_event ev[8];
    pthread_t t;
    int64_t start;
    int n, round;

    f.p = test_poll();
    OK(mio_socketpair(sv));
    f.fd = sv[0];
    OK(mio_waker_new(f.p, 2, &f.w));
    OK(pthread_create(&t, NULL, wait_once_and_exit, &f));
    OK(pthread_join(t, NULL));
    test_sleep_ms(20);
    CHECK_EQ(test_wait(f.p, ev, 8, 20 * MIO_MSEC), 0);    /* the waker's wake was answered */
    for (round = 0; round < 3; round++) {
        CHECK_EQ(mio_write(sv[1], "d", 1), 1);
        start = test_now_ns();
        n = test_wait(f.p, ev, 8, 2 * MIO_SEC);
        CHECK_EQ(n, 1);
        CHECK_EQ(ev[0].token, 1);
        CHECK(test_now_ns() - start < MIO_SEC);
        CHECK_EQ(test_drain(sv[0]), 1);
        OK(mio_waker_wake(f.w));
        CHECK_EQ(test_wait_token(f.p, 2, MIO_SEC), MIO_READABLE);
        CHECK_EQ(test_wait(f.p, ev, 8, 20 * MIO_MSEC), 0);
    }
    mio_waker_free(f.w);
    OK(mio_close(sv[0]));
    OK(mio_close(sv[1]));
    mio_poll_free(f.p);
}

/* ---- the uring backend: changes go with the wait ---- */

#ifdef __linux__
/* Counts this process's io_uring_enter calls: a seccomp filter hands each
 * one to a supervising thread, which counts it and lets it go on unchanged
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE, Linux 5.5).  No hook in the library. */
static atomic_long enters;

static void *count_enters(void *arg)
{
    int listener = (int)(intptr_t)arg;
    struct seccomp_notif_sizes sizes;
    void *req, *resp;

    CHECK(syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) == 0);
    req = calloc(1, sizes.seccomp_notif);
    resp = calloc(1, sizes.seccomp_notif_resp);
    CHECK(req != NULL && resp != NULL);
    for (;;) {
        struct seccomp_notif *rq = req;
        struct seccomp_notif_resp *rs = resp;
        memset(req, 0, sizes.seccomp_notif);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
            if (errno == EINTR || errno == ENOENT)
                continue;
            break;
        }
        atomic_fetch_add(&enters, 1);
        memset(resp, 0, sizes.seccomp_notif_resp);
        rs->id = rq->id;
        rs->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        (void)ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    free(req);
    free(resp);
    return NULL;
}

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

/* Starts counting; skips where the filter cannot be had. */
static void start_counting_enters(void)
{
#if defined(ARCH) && defined(SECCOMP_USER_NOTIF_FLAG_CONTINUE) && \
    defined(SECCOMP_FILTER_FLAG_NEW_LISTENER)
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { (unsigned short)(sizeof code / sizeof code[0]), code };
    pthread_t t;
    long listener;

    if (test_on_valgrind())
        SKIP("valgrind does not pass seccomp user notifications through");
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    listener = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                       &prog);
    if (listener < 0)
        SKIP("no seccomp user notification here (%s)", strerror(errno));
    OK(pthread_create(&t, NULL, count_enters, (void *)(intptr_t)listener));
    OK(pthread_detach(t));
#else
    SKIP("no seccomp user notification in this build");
#endif
}
#endif

#define MANY 300

/* register, reregister and deregister make no system call of their own
 * (but register's fstat): each wait is one io_uring_enter, however many
 * changes it carries. */
TEST(changes_go_with_one_enter_per_wait)
{
#ifdef __linux__
    mio_poll *p;
    mio_fd sv[MANY][2];
    mio_event ev[MANY + 8];
    long before;
    int i, n, round;

    if (strcmp(test_backend, "uring") != 0)
        SKIP("the uring backend's batching");
    p = test_poll();
    for (i = 0; i < MANY; i++) {
        OK(mio_socketpair(sv[i]));
        CHECK_EQ(mio_write(sv[i][1], "r", 1), 1);
    }
    start_counting_enters();
    CHECK_EQ(test_wait(p, ev, MANY + 8, 0), 0);     /* the poll's own first request */

    before = atomic_load(&enters);
    for (i = 0; i < MANY; i++)
        OK(mio_register(p, sv[i][0], (mio_token)i, MIO_READABLE | MIO_ONESHOT));
    CHECK_EQ(atomic_load(&enters), before);
    n = test_wait(p, ev, MANY + 8, MIO_SEC);
    CHECK_EQ(n, MANY);
    CHECK_EQ(atomic_load(&enters) - before, 1);

    /* Oneshot re-arms: one enter per wait, each wait reporting them all. */
    for (round = 0; round < 5; round++) {
        before = atomic_load(&enters);
        for (i = 0; i < MANY; i++)
            OK(mio_reregister(p, sv[i][0], (mio_token)(1000 + i), MIO_READABLE | MIO_ONESHOT));
        CHECK_EQ(atomic_load(&enters), before);
        n = test_wait(p, ev, MANY + 8, MIO_SEC);
        CHECK_EQ(n, MANY);
        for (i = 0; i < n; i++)
            CHECK(ev[i].token >= 1000 && ev[i].token < 1000 + MANY);
        CHECK_EQ(atomic_load(&enters) - before, 1);
    }

    /* Edge registrations (a multishot request each), then deregistering
     * them all: the cancels too go with one wait. */
    for (i = 0; i < MANY; i++)
        OK(mio_reregister(p, sv[i][0], (mio_token)i, MIO_READABLE));
    CHECK_EQ(test_wait(p, ev, MANY + 8, MIO_SEC), MANY);
    before = atomic_load(&enters);
    for (i = 0; i < MANY; i++)
        OK(mio_deregister(p, sv[i][0]));
    CHECK_EQ(atomic_load(&enters), before);
    CHECK_EQ(test_wait(p, ev, MANY + 8, 0), 0);
    CHECK_EQ(atomic_load(&enters) - before, 1);
    /* Nothing to submit, nothing completing: a zero wait asks no kernel. */
    before = atomic_load(&enters);
    CHECK_EQ(test_wait(p, ev, MANY + 8, 0), 0);
    CHECK(atomic_load(&enters) - before <= 1);

    /* Events waiting beyond the caller's room come without the kernel. */
    for (i = 0; i < 10; i++)
        OK(mio_register(p, sv[i][0], (mio_token)i, MIO_READABLE));
    CHECK_EQ(test_wait(p, ev, 5, MIO_SEC), 5);
    before = atomic_load(&enters);
    CHECK_EQ(test_wait(p, ev, 5, MIO_SEC), 5);
    CHECK_EQ(atomic_load(&enters), before);

    for (i = 0; i < MANY; i++) {
        OK(mio_close(sv[i][0]));
        OK(mio_close(sv[i][1]));
    }
    mio_poll_free(p);
#else
    SKIP("Linux only");
#endif
}

/* ---- io_uring refused ---- */

#if defined(__linux__) && defined(MIO_NORING_EXE)
/* Run under mio_noring: io_uring_setup fails as MIO_TEST_REFUSAL says. */
CHILD_CASE(uring_refused_child)
{
    const char *how = getenv("MIO_TEST_REFUSAL");
    int expect = how != NULL && strcmp(how, "ENOSYS") == 0 ? MIO_ENOSYS : MIO_EPERM;
    mio_poll *p = (mio_poll *)&p;
    mio_loop_config c;
    mio_loop *l = (mio_loop *)&l;
    mio_fd sv[2];
    int fds, k;

    CHECK(test_uring_refused() != 0);
    fds = test_open_fds();
    for (k = 0; k < 3; k++) {
        CHECK_EQ(mio_poll_new_backend("uring", &p), expect);
        CHECK(p == NULL);
        mio_loop_config_default(&c);
        c.backend = "uring";
        CHECK_EQ(mio_loop_new(&c, &l), expect);
        CHECK(l == NULL);
        CHECK_EQ(test_open_fds(), fds);
    }
    /* The default, and this run's backend if it is another, work as ever. */
    for (k = 0; k < 2; k++) {
        const char *name = k == 0 ? NULL : test_backend;
        if (name != NULL && strcmp(name, "uring") == 0)
            break;
        OK(mio_poll_new_backend(name, &p));
        CHECK(strcmp(mio_poll_backend(p), "uring") != 0);
        OK(mio_socketpair(sv));
        OK(mio_register(p, sv[0], 7, MIO_READABLE));
        CHECK_EQ(mio_write(sv[1], "k", 1), 1);
        CHECK(test_wait_token(p, 7, MIO_SEC) & MIO_READABLE);
        OK(mio_deregister(p, sv[0]));
        OK(mio_close(sv[0]));
        OK(mio_close(sv[1]));
        mio_poll_free(p);
    }
    /* libkqueue keeps descriptors of its own once a kqueue was used. */
    if (!test_on_libkqueue())
        CHECK_EQ(test_open_fds(), fds);
}

static int run_refused(const char *how, char *const argv[], char *out, size_t size)
{
    char env[64];
    struct child c;

    snprintf(env, sizeof env, "MIO_TEST_REFUSAL=%s", how);
    child_start(&c, argv, env, CHILD_STDERR);
    child_read_all(&c, out, size);
    return child_wait(&c);
}
#endif

/* Under a seccomp filter refusing io_uring_setup (EPERM, as containers do;
 * ENOSYS, as a kernel without io_uring): asking for "uring" is that error,
 * with nothing left open or allocated; everything else works; and the
 * suite's tests on uring skip with the reason while the same tests on
 * epoll pass. */
TEST(uring_refusal_is_clean)
{
#if defined(__linux__) && defined(MIO_NORING_EXE) && defined(MIO_TEST_TRIGGER_EXE)
    static const char *const hows[] = { "EPERM", "ENOSYS" };
    char out[4096];
    size_t k;

    for (k = 0; k < 2; k++) {
        char *self[] = { MIO_NORING_EXE, "-e", (char *)hows[k], (char *)child_self_path(),
                         "uring_refused_child", (char *)test_backend, NULL };
        char *on_uring[] = { MIO_NORING_EXE, "-e", (char *)hows[k], MIO_TEST_TRIGGER_EXE,
                             "register_ready_socket_reports_at_once", "uring", NULL };
        char *on_epoll[] = { MIO_NORING_EXE, "-e", (char *)hows[k], MIO_TEST_TRIGGER_EXE,
                             "register_ready_socket_reports_at_once", "epoll", NULL };
        int status;

        CHECK(self[3] != NULL);
        status = run_refused(hows[k], self, out, sizeof out);
        if (status != 0)
            FAIL("%s: the refused child exited %d: %s", hows[k], status, out);
        status = run_refused(hows[k], on_uring, out, sizeof out);
        if (status != 77 || strstr(out, "io_uring refused") == NULL)
            FAIL("%s: a uring test exited %d, not skipped: %s", hows[k], status, out);
        status = run_refused(hows[k], on_epoll, out, sizeof out);
        if (status != 0)
            FAIL("%s: an epoll test exited %d: %s", hows[k], status, out);
    }
#else
    SKIP("no uring backend in this build");
#endif
}
