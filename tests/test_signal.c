/* Signal sources: a signal arriving makes the source's token readable, a read
 * says which signals came and how often; several polls each see every
 * delivery; the previous disposition comes back with the last source; no
 * signal mask changes; a storm of signals loses no report and does not
 * spin.  Windows: console control events through the same sources. */
#include "harness.h"
#include "child.h"

#include <pthread.h>
#include <stdatomic.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

/* The count read for signo (0 if absent). */
static inline uint32_t count_of(const mio_signal_info *info, int n, int signo)
{
    int i;
    for (i = 0; i < n; i++)
        if (info[i].signo == signo)
            return info[i].count;
    return 0;
}

TEST(arguments_are_checked)
{
    mio_poll *p = test_poll();
    mio_signal *s = (mio_signal *)1;
    mio_signal_info info[4];
    int sigs[2] = { SIGINT, 0 };

    CHECK_EQ(mio_signal_new(NULL, 1, sigs, 1, &s), MIO_EINVAL);
    CHECK(s == NULL);
    CHECK_EQ(mio_signal_new(p, 1, sigs, 0, &s), MIO_EINVAL);
    CHECK_EQ(mio_signal_new(p, 1, NULL, 1, &s), MIO_EINVAL);
    CHECK_EQ(mio_signal_new(p, MIO_TOKEN_RESERVED, sigs, 1, &s), MIO_EINVAL);
    CHECK_EQ(mio_signal_new(p, 1, sigs, 2, &s), MIO_EINVAL);     /* 0 is no signal */
    sigs[1] = 1000;
    CHECK_EQ(mio_signal_new(p, 1, sigs, 2, &s), MIO_EINVAL);
    CHECK_EQ(mio_signal_new(p, 1, sigs, 1, NULL), MIO_EINVAL);
    CHECK_EQ(mio_signal_read(NULL, info, 4), MIO_EINVAL);
    mio_signal_free(NULL);
    mio_poll_free(p);
}

/* A program that waits for a stop request through a signal source and
 * says which signal it got. */
CHILD_CASE(report_stop_request)
{
    mio_poll *p = test_poll();
#ifdef _WIN32
    int sigs[] = { SIGINT, SIGBREAK };
#else
    int sigs[] = { SIGINT, SIGTERM };
#endif
    mio_signal_info info[2];
    mio_signal *s;

    OK(mio_signal_new(p, 1, sigs, 2, &s));
    printf("ready\n");
    fflush(stdout);
    CHECK(test_await(p, 1, 60 * MIO_SEC));
    CHECK_EQ(mio_signal_read(s, info, 2), 1);
    printf("%d %u\n", info[0].signo, (unsigned)info[0].count);
    fflush(stdout);
    mio_signal_free(s);
    mio_poll_free(p);
    exit(0);
}

/* Another process asks it to stop the usual way: SIGTERM, or a real Ctrl-C
 * in its console on Windows (child.h). */
TEST(stop_request_from_another_process_is_reported)
{
    char *argv[4], line[64], expect[64];
    struct child c;

#ifdef TEST_UNDER_TSAN
    /* ThreadSanitizer stands between the kernel and every handler, and now
     * and then (a run in a few hundred) takes a signal sent from another
     * process without ever handing it on: the kernel reports it caught,
     * libmio's handler never ran (the source's count and flag stay 0), and
     * the child waits for good.  Plain, ASan and valgrind runs have it;
     * signals raised within the process are tested under TSan elsewhere. */
    SKIP("ThreadSanitizer now and then never hands a signal from another process on");
#endif
    argv[0] = (char *)child_self_path();
    argv[1] = (char *)"report_stop_request";
    argv[2] = (char *)test_backend;
    argv[3] = NULL;
    CHECK(argv[0] != NULL);
    child_start(&c, argv, NULL, CHILD_STDOUT);
    child_read_line(&c, line, sizeof line);
    CHECK(strcmp(line, "ready") == 0);
    child_stop(&c);
    child_read_line(&c, line, sizeof line);
#ifdef _WIN32
    snprintf(expect, sizeof expect, "%d 1", SIGINT);
#else
    snprintf(expect, sizeof expect, "%d 1", SIGTERM);
#endif
    CHECK(strcmp(line, expect) == 0);
    CHECK_EQ(child_wait(&c), 0);
}

#ifndef _WIN32

POSIX_TEST(signals_that_cannot_be_handled_are_refused)
{
    mio_poll *p = test_poll();
    const int bad[] = { SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL };
    mio_signal *s;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(mio_signal_new(p, 1, &bad[i], 1, &s), MIO_EINVAL);
        CHECK(s == NULL);
    }
    mio_poll_free(p);
}

POSIX_TEST(signal_is_reported_with_its_count)
{
    mio_poll *p = test_poll();
    int sigs[] = { SIGUSR2, SIGUSR1, SIGUSR1 };     /* unsorted, repeated */
    mio_signal_info info[4];
    mio_signal *s;
    int i, n;

    OK(mio_signal_new(p, 7, sigs, 3, &s));
    CHECK(!test_await(p, 7, 0));
    for (i = 0; i < 3; i++)
        CHECK_EQ(raise(SIGUSR1), 0);     /* the handler runs before raise returns */
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK(test_await(p, 7, 5 * MIO_SEC));
    n = mio_signal_read(s, info, 4);
    CHECK_EQ(n, 2);
    CHECK_EQ(info[0].signo, SIGUSR1);    /* lowest number first */
    CHECK_EQ(info[0].count, 3);
    CHECK_EQ(info[1].signo, SIGUSR2);
    CHECK_EQ(info[1].count, 1);
    CHECK_EQ(mio_signal_read(s, info, 4), 0);
    mio_signal_free(s);
    mio_poll_free(p);
}

POSIX_TEST(each_arrival_after_a_read_is_a_new_event)
{
    mio_poll *p = test_poll();
    int sig = SIGUSR1, round;
    mio_signal_info info[1];
    mio_signal *s;

    OK(mio_signal_new(p, 3, &sig, 1, &s));
    for (round = 0; round < 5; round++) {
        CHECK_EQ(raise(SIGUSR1), 0);
        CHECK(test_await(p, 3, 5 * MIO_SEC));
        CHECK(!test_await(p, 3, 0));             /* one event per rise */
        CHECK_EQ(mio_signal_read(s, info, 1), 1);
        CHECK_EQ(info[0].count, 1);
        CHECK(!test_await(p, 3, 0));
    }
    mio_signal_free(s);
    mio_poll_free(p);
}

POSIX_TEST(a_full_read_leaves_the_rest_for_the_next)
{
    mio_poll *p = test_poll();
    int sigs[] = { SIGUSR1, SIGUSR2, SIGHUP };
    mio_signal_info info[3];
    mio_signal *s;

    OK(mio_signal_new(p, 3, sigs, 3, &s));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK_EQ(raise(SIGHUP), 0);
    CHECK(test_await(p, 3, 5 * MIO_SEC));
    CHECK_EQ(mio_signal_read(s, info, 2), 2);
    CHECK_EQ(info[0].signo, SIGHUP);
    CHECK_EQ(info[1].signo, SIGUSR1);
    CHECK_EQ(mio_signal_read(s, info, 2), 1);
    CHECK_EQ(info[0].signo, SIGUSR2);
    CHECK_EQ(mio_signal_read(s, info, 2), 0);
    mio_signal_free(s);
    mio_poll_free(p);
}

/* A signal whose default ends the process is only counted while watched. */
POSIX_TEST(terminating_signal_is_only_counted_while_watched)
{
    mio_poll *p = test_poll();
    int sigs[] = { SIGTERM, SIGINT, SIGPIPE };
    mio_signal_info info[3];
    mio_signal *s;

    OK(mio_signal_new(p, 1, sigs, 3, &s));
    CHECK_EQ(raise(SIGTERM), 0);
    CHECK_EQ(raise(SIGINT), 0);
    CHECK_EQ(raise(SIGPIPE), 0);
    CHECK(test_await(p, 1, 5 * MIO_SEC));
    CHECK_EQ(mio_signal_read(s, info, 3), 3);
    mio_signal_free(s);
    mio_poll_free(p);
}

#ifdef MIO_FAULT_SHIM
/* Run with the shim raising SIGUSR1 the moment a handler for it goes in:
 * inside mio_signal_new, before it returns. */
CHILD_CASE(signal_as_the_handler_goes_in_child)
{
    mio_poll *p = test_poll();
    int sig = SIGUSR1;
    mio_signal_info info[1];
    mio_signal *s;

    OK(mio_signal_new(p, 1, &sig, 1, &s));
    CHECK(test_await(p, 1, TEST_LONG_WAIT));
    CHECK_EQ(mio_signal_read(s, info, 1), 1);
    CHECK_EQ(info[0].signo, SIGUSR1);
    CHECK_EQ(info[0].count, 1);
    mio_signal_free(s);
    mio_poll_free(p);
}
#endif

/* A signal that arrives while its first source is being made either meets
 * the disposition it had (here: the end of the process) or is reported by
 * the source; a handler already in with no source yet to tell would swallow
 * it.  The shim sends it at the first moment the handler holds. */
POSIX_TEST(signal_as_the_handler_goes_in_is_reported)
{
#ifdef MIO_FAULT_SHIM
    char path[4096], preload[4200], err[4096], signo[16];
    char *argv[] = { path, "signal_as_the_handler_goes_in_child", (char *)test_backend, NULL };
    const char *self = child_self_path();
    struct child ch;
    int status;

    CHECK(self != NULL);
    snprintf(path, sizeof path, "%s", self);
    snprintf(signo, sizeof signo, "%d", SIGUSR1);
    CHECK(setenv("MIO_FAULT_RAISE", signo, 1) == 0);
    CHECK(setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=1", 1) == 0);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", MIO_FAULT_SHIM);
    child_start(&ch, argv, preload, CHILD_STDERR);
    child_read_all(&ch, err, sizeof err);
    status = child_wait(&ch);
    if (status != 0)
        FAIL("the child failed (%d): %s", status, err);
#else
    SKIP("no system-call injection here (Linux with glibc only)");
#endif
}

/* ---- several polls ---- */

struct watcher {
    mio_poll *p;
    mio_signal *s;
    atomic_int ready;
    atomic_uint seen;
    atomic_int stop;
};

static void *watch_loop(void *arg)
{
    struct watcher *w = arg;
    mio_signal_info info[2];

    atomic_store(&w->ready, 1);
    while (!atomic_load(&w->stop)) {
        if (test_await(w->p, 9, 50 * MIO_MSEC)) {
            int n = mio_signal_read(w->s, info, 2);
            CHECK(n >= 0);
            atomic_fetch_add(&w->seen, count_of(info, n, SIGUSR1));
        }
    }
    return NULL;
}

POSIX_TEST(every_poll_watching_a_signal_sees_each_delivery)
{
    struct watcher w[2];
    pthread_t t[2];
    int sig = SIGUSR1, i, round;

    for (i = 0; i < 2; i++) {
        w[i].p = test_poll();
        OK(mio_signal_new(w[i].p, 9, &sig, 1, &w[i].s));
        atomic_init(&w[i].ready, 0);
        atomic_init(&w[i].seen, 0);
        atomic_init(&w[i].stop, 0);
        CHECK_EQ(pthread_create(&t[i], NULL, watch_loop, &w[i]), 0);
    }
    for (round = 1; round <= 3; round++) {
        int64_t deadline = test_now_ns() + 10 * MIO_SEC;
        CHECK_EQ(kill(getpid(), SIGUSR1), 0);
        /* Each poll sees this delivery before the next is sent, so none
         * coalesces with it and each sees exactly `round`. */
        while ((atomic_load(&w[0].seen) < (unsigned)round ||
                atomic_load(&w[1].seen) < (unsigned)round) && test_now_ns() < deadline)
            test_sleep_ms(1);
        CHECK_EQ(atomic_load(&w[0].seen), round);
        CHECK_EQ(atomic_load(&w[1].seen), round);
    }
    for (i = 0; i < 2; i++) {
        atomic_store(&w[i].stop, 1);
        CHECK_EQ(pthread_join(t[i], NULL), 0);
        mio_signal_free(w[i].s);
        mio_poll_free(w[i].p);
    }
}

/* ---- dispositions and masks ---- */

static atomic_int own_handler_runs;

static void own_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&own_handler_runs, 1);
}

static void (*handler_of(int sig))(int)
{
    struct sigaction sa;
    CHECK_EQ(sigaction(sig, NULL, &sa), 0);
    return sa.sa_handler;
}

POSIX_TEST(last_source_restores_the_previous_disposition)
{
    mio_poll *p = test_poll();
    struct sigaction sa;
    mio_signal *a, *b, *c;
    mio_signal_info info[2];
    int usr1 = SIGUSR1, usr2 = SIGUSR2;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    sa.sa_handler = SIG_IGN;
    CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);

    OK(mio_signal_new(p, 1, &usr1, 1, &a));
    OK(mio_signal_new(p, 2, &usr1, 1, &b));
    OK(mio_signal_new(p, 3, &usr2, 1, &c));
    CHECK(handler_of(SIGUSR1) != own_handler);
    CHECK(handler_of(SIGUSR2) != SIG_IGN);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(atomic_load(&own_handler_runs), 0);     /* ours is not chained */
    CHECK(test_await(p, 1, 5 * MIO_SEC));
    CHECK_EQ(mio_signal_read(a, info, 2), 1);
    CHECK_EQ(mio_signal_read(b, info, 2), 1);

    mio_signal_free(a);                  /* b still watches */
    CHECK(handler_of(SIGUSR1) != own_handler);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(atomic_load(&own_handler_runs), 0);
    CHECK_EQ(mio_signal_read(b, info, 2), 1);
    mio_signal_free(b);
    CHECK(handler_of(SIGUSR1) == own_handler);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(atomic_load(&own_handler_runs), 1);

    mio_signal_free(c);
    CHECK(handler_of(SIGUSR2) == SIG_IGN);
    CHECK_EQ(raise(SIGUSR2), 0);         /* still ignored: we live on */
    mio_poll_free(p);
}

static sigset_t other_mask;
static atomic_int other_phase;

/* A thread with SIGUSR2 blocked, which reports its mask before and after. */
static void *masked_thread(void *arg)
{
    sigset_t set;
    (void)arg;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    atomic_store(&other_phase, 1);
    while (atomic_load(&other_phase) != 2)
        test_sleep_ms(1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &other_mask), 0);
    atomic_store(&other_phase, 3);
    return NULL;
}

static bool same_mask(const sigset_t *a, const sigset_t *b)
{
    int sig;
    for (sig = 1; sig < NSIG; sig++)
        if (sigismember(a, sig) != sigismember(b, sig))
            return false;
    return true;
}

POSIX_TEST(no_signal_mask_changes)
{
    mio_poll *p = test_poll();
    sigset_t before, after, expect;
    mio_signal_info info[2];
    int sigs[] = { SIGUSR1, SIGUSR2 };
    mio_signal *s;
    pthread_t t;

    CHECK_EQ(pthread_create(&t, NULL, masked_thread, NULL), 0);
    while (atomic_load(&other_phase) != 1)
        test_sleep_ms(1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
    OK(mio_signal_new(p, 1, sigs, 2, &s));
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(test_await(p, 1, 5 * MIO_SEC));
    CHECK_EQ(mio_signal_read(s, info, 2), 1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    CHECK(same_mask(&before, &after));
    mio_signal_free(s);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    CHECK(same_mask(&before, &after));
    atomic_store(&other_phase, 2);
    while (atomic_load(&other_phase) != 3)
        test_sleep_ms(1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    sigemptyset(&expect);
    sigaddset(&expect, SIGUSR2);
    CHECK(same_mask(&other_mask, &expect));
    mio_poll_free(p);
}

/* ---- storms ---- */

struct storm {
    long per_thread, bursts;
    atomic_long sent;
    atomic_long burst_done;     /* the last burst whose sender finished */
    atomic_long acked;          /* the last burst the poller saw a report after */
    atomic_int senders_left;
};

static void *storm_sender(void *arg)
{
    struct storm *st = arg;
    long per_burst = st->per_thread / st->bursts, b, i;

    for (b = 1; b <= st->bursts; b++) {
        int64_t deadline;
        for (i = 0; i < per_burst; i++) {
            CHECK_EQ(kill(getpid(), i & 1 ? SIGUSR1 : SIGUSR2), 0);
            atomic_fetch_add(&st->sent, 1);
        }
        /* Every sender waits for every burst: a report must come after the
         * burst's end (the kill after the flag is one it must report). */
        atomic_store(&st->burst_done, b);
        CHECK_EQ(kill(getpid(), SIGUSR1), 0);
        atomic_fetch_add(&st->sent, 1);
        deadline = test_now_ns() + 30 * MIO_SEC;
        while (atomic_load(&st->acked) < b) {
            if (test_now_ns() > deadline)
                FAIL("no report came for burst %ld", b);
            test_sleep_ms(1);
        }
    }
    atomic_fetch_sub(&st->senders_left, 1);
    return NULL;
}

/* 1,000,000 kill()s from four threads at a poll watching two signals:
 * counts never exceed what was sent, each burst brings at least one report,
 * and the poller wakes no more often than there are deliveries (no spin),
 * and not at all once the storm is over. */
POSIX_TEST(storm_of_kills_loses_no_report_and_never_spins)
{
    enum { THREADS = 4 };
    mio_poll *p = test_poll();
    struct storm st;
    pthread_t t[THREADS];
    int sigs[] = { SIGUSR1, SIGUSR2 };
    mio_signal_info info[2];
    mio_signal *s;
    mio_event ev[8];
    long counted = 0, wakes = 0, i;
    struct rusage ru;
    int64_t start = test_now_ns();
    double cpu;

    st.per_thread = test_scaled(1000000) / THREADS;
    st.bursts = 10;
    atomic_init(&st.sent, 0);
    atomic_init(&st.burst_done, 0);
    atomic_init(&st.acked, 0);
    atomic_init(&st.senders_left, THREADS);
    OK(mio_signal_new(p, 5, sigs, 2, &s));
    for (i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, storm_sender, &st), 0);
    while (atomic_load(&st.senders_left) > 0) {
        int n = mio_poll_wait(p, ev, 8, 100 * MIO_MSEC), got;
        wakes++;
        if (n == MIO_EINTR || n == 0)
            continue;
        CHECK(n > 0);
        CHECK(test_flags(ev, n, 5) & MIO_READABLE);
        got = mio_signal_read(s, info, 2);
        CHECK(got >= 0);
        if (got > 0) {
            counted += count_of(info, got, SIGUSR1) + count_of(info, got, SIGUSR2);
            atomic_store(&st.acked, atomic_load(&st.burst_done));
        }
    }
    for (i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    /* What is still on its way, then quiet. */
    while (test_await(p, 5, 200 * MIO_MSEC)) {
        int got = mio_signal_read(s, info, 2);
        counted += count_of(info, got, SIGUSR1) + count_of(info, got, SIGUSR2);
    }
    CHECK(!test_await(p, 5, 100 * MIO_MSEC));
    CHECK_EQ(mio_signal_read(s, info, 2), 0);
    CHECK(counted >= st.bursts);
    CHECK(counted <= atomic_load(&st.sent));
    /* Each wake-up is a delivery's (an event, or a handler cutting the wait
     * short), or a timeout: never more than two per delivery. */
    CHECK(wakes <= 2 * counted + (test_now_ns() - start) / (100 * MIO_MSEC) + 16);
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
          ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    fprintf(stderr, "storm: %ld sent, %ld counted, %ld wake-ups, %.2f s CPU in %.2f s\n",
            atomic_load(&st.sent), counted, wakes, cpu,
            (double)(test_now_ns() - start) / 1e9);
    mio_signal_free(s);
    mio_poll_free(p);
}

struct churn {
    atomic_int stop;
    atomic_long sent;
};

static void *churn_sender(void *arg)
{
    struct churn *c = arg;
    while (!atomic_load(&c->stop)) {
        CHECK_EQ(kill(getpid(), SIGUSR1), 0);
        atomic_fetch_add(&c->sent, 1);
    }
    return NULL;
}

/* Sources come and go while signals keep arriving: a handler walking the
 * list never reaches a freed source (ASan and TSan watch).  Another source
 * keeps the signal handled throughout (its default would end the test).
 * This thread blocks the signal, so the kernel runs the handlers on the
 * sending threads, at the same time as the frees here (a handler on this
 * thread could only run between two steps of a free, never during one). */
POSIX_TEST(sources_come_and_go_during_a_storm)
{
    mio_poll *p = test_poll();
    struct churn c;
    pthread_t t[2];
    mio_signal *keep, *s;
    sigset_t set, old;
    int sig = SIGUSR1, i, rounds = (int)test_scaled(2000);

    atomic_init(&c.stop, 0);
    atomic_init(&c.sent, 0);
    test_watchdog(100);
    OK(mio_signal_new(p, 1, &sig, 1, &keep));   /* keeps SIGUSR1 handled */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    for (i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, churn_sender, &c), 0);
    while (atomic_load(&c.sent) == 0)
        test_sleep_ms(1);
    for (i = 0; i < rounds; i++) {
        OK(mio_signal_new(p, 2, &sig, 1, &s));
        mio_signal_free(s);
    }
    atomic_store(&c.stop, 1);
    for (i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK(atomic_load(&c.sent) > 0);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);  /* one left pending meets keep's handler */
    mio_signal_free(keep);
    mio_poll_free(p);
}

/* The loop's poll takes signal sources like any other; a signal that cuts
 * the wait short is `interrupted`, and the source's token comes next. */
struct loop_ctx {
    mio_signal *s;
    int seen, interrupted;
};

static void loop_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    struct loop_ctx *c = ctx;
    mio_signal_info info[1];
    (void)readiness;
    if (token == 4 && mio_signal_read(c->s, info, 1) == 1) {
        c->seen += (int)info[0].count;
        mio_loop_shutdown(l);
    }
}

static void loop_interrupted(mio_loop *l, void *ctx)
{
    (void)l;
    ((struct loop_ctx *)ctx)->interrupted++;
}

static void *send_later(void *arg)
{
    (void)arg;
    test_sleep_ms(50);
    CHECK_EQ(kill(getpid(), SIGHUP), 0);
    return NULL;
}

POSIX_TEST(event_loop_stops_on_a_signal)
{
    mio_loop_config cfg;
    mio_loop *l;
    struct loop_ctx ctx = { NULL, 0, 0 };
    mio_handler h = { loop_ready, NULL, NULL, loop_interrupted, NULL };
    pthread_t t;
    int sig = SIGHUP;

    mio_loop_config_default(&cfg);
    cfg.backend = test_backend;
    OK(mio_loop_new(&cfg, &l));
    OK(mio_signal_new(mio_loop_poll(l), 4, &sig, 1, &ctx.s));
    test_watchdog(30);
    CHECK_EQ(pthread_create(&t, NULL, send_later, NULL), 0);
    OK(mio_loop_run(l, &h, &ctx));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(ctx.seen, 1);
    mio_signal_free(ctx.s);
    mio_loop_free(l);
}

#else /* _WIN32 */

/* The console handler's work without the console (signal_win.c's hook):
 * each event comes as its signal number. */
int mio__console_event(unsigned long event);

WINDOWS_TEST(console_events_map_to_signal_numbers)
{
    static const struct { unsigned long event; int signo; } map[] = {
        { CTRL_C_EVENT, SIGINT },
        { CTRL_BREAK_EVENT, SIGBREAK },
        { CTRL_CLOSE_EVENT, MIO_SIGHUP },
        { CTRL_LOGOFF_EVENT, MIO_SIGLOGOFF },
        { CTRL_SHUTDOWN_EVENT, SIGTERM },
    };
    mio_poll *p = test_poll();
    int sigs[] = { SIGINT, SIGBREAK, MIO_SIGHUP, MIO_SIGLOGOFF, SIGTERM };
    mio_signal_info info[8];
    mio_signal *s;
    size_t i;

    CHECK_EQ(mio__console_event(CTRL_C_EVENT), 0);     /* nobody watches: not handled */
    OK(mio_signal_new(p, 6, sigs, 5, &s));
    for (i = 0; i < sizeof map / sizeof map[0]; i++) {
        CHECK_EQ(mio__console_event(map[i].event), 1);
        CHECK(test_await(p, 6, 5 * MIO_SEC));
        CHECK_EQ(mio_signal_read(s, info, 8), 1);
        CHECK_EQ(info[0].signo, map[i].signo);
        CHECK_EQ(info[0].count, 1);
    }
    mio_signal_free(s);
    CHECK_EQ(mio__console_event(CTRL_C_EVENT), 0);
    mio_poll_free(p);
}

WINDOWS_TEST(other_numbers_are_refused)
{
    mio_poll *p = test_poll();
    int bad[] = { SIGSEGV, SIGFPE, SIGABRT, 9 };
    mio_signal *s;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(mio_signal_new(p, 1, &bad[i], 1, &s), MIO_EINVAL);
    mio_poll_free(p);
}

/* Events from several threads at once, as Windows delivers them (each on a
 * thread of its own), while sources come and go. */
static DWORD WINAPI ctrl_break_many(LPVOID arg)
{
    int i;
    (void)arg;
    for (i = 0; i < 10000; i++)
        (void)mio__console_event(CTRL_BREAK_EVENT);
    return 0;
}

WINDOWS_TEST(console_events_from_many_threads)
{
    mio_poll *p = test_poll();
    int sig = SIGBREAK, i;
    mio_signal_info info[1];
    mio_signal *keep, *s;
    HANDLE t[2];
    uint32_t counted = 0;

    OK(mio_signal_new(p, 1, &sig, 1, &keep));
    for (i = 0; i < 2; i++)
        CHECK((t[i] = CreateThread(NULL, 0, ctrl_break_many, NULL, 0, NULL)) != NULL);
    for (i = 0; i < 200; i++) {
        OK(mio_signal_new(p, 2, &sig, 1, &s));
        mio_signal_free(s);
        if (test_await(p, 1, 0) && mio_signal_read(keep, info, 1) == 1)
            counted += info[0].count;
    }
    for (i = 0; i < 2; i++) {
        CHECK_EQ(WaitForSingleObject(t[i], INFINITE), WAIT_OBJECT_0);
        CloseHandle(t[i]);
    }
    while (test_await(p, 1, 100 * MIO_MSEC))
        if (mio_signal_read(keep, info, 1) == 1)
            counted += info[0].count;
    CHECK_EQ(counted, 20000);    /* a thread each: nothing coalesces */
    mio_signal_free(keep);
    mio_poll_free(p);
}

#endif
