/* A group of event loops, one per core: the loops, the threads that run
 * them, shutdown, messages between loops, connections handed from one loop
 * to another, and listeners whose connections are spread over the loops.
 *
 * Threads.  Each loop runs on a thread of the group's (or, for loop 0 under
 * mio_group_run, the caller's): start, ticks until its stop flag is up,
 * stop.  mio_group_shutdown raises every loop's flag and wakes every poll
 * with the poll's own wake-up (mio__poll_wake), so a loop asleep returns
 * from its wait, finishes the tick and sees the flag; a loop awake sees it
 * after its tick.  Both are an atomic store and a write on a descriptor,
 * hence safe from a signal handler.
 *
 * Messages.  A loop's channel carries the caller's messages and the
 * group's: a connection for `adopt` travels as one slot with its
 * descriptor (channel.h), so a hand-off allocates nothing and arrives in
 * order with everything else sent to that loop.  What is still queued when
 * the group is freed is closed there.
 *
 * Listeners.  A listener's socket is registered level-triggered with one of
 * the tokens the group keeps (MIO_GROUP_TOKEN_FIRST + its number) on the
 * loops that accept from it: every loop (REUSEPORT, each its own socket;
 * EXCLUSIVE, the one socket) or loop 0 (HANDOFF).  An event accepts at most
 * ACCEPT_BATCH connections, so that one busy listener cannot hold a loop's
 * other sources up; level brings the rest in the next tick.  A loop may
 * take its registration out for a while (a `seat` at rest): out of
 * descriptors after a failed shed, or, with EXCLUSIVE, while it holds
 * clearly more than its share.  A rest ends by itself: a timer of the
 * loop's (one per loop, its arg the member's address) makes sure the loop
 * looks again.
 *
 * Balance with EXCLUSIVE.  The kernel wakes the first loop in the socket's
 * wait queue that is blocked in its wait, and the queue is in the order the
 * loops registered: left alone, the first loop takes nearly everything
 * whenever it is idle (nginx saw the same with its worker processes).  So a
 * loop that accepted REORDER_EVERY connections registers again, which
 * moves it to the end of the queue, and a loop holding clearly more than
 * its share of the group's registered descriptors rests until it is back
 * at its share; the last loop accepting never rests, so the listener is
 * never left silent. */
#include "loop.h"
#include "net_hooks.h"
#include "poll_hooks.h"

#include <string.h>

#ifdef _WIN32
#include "sys/win.h"
#else
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#endif

#if defined(__linux__) || defined(_WIN32)
#define HAVE_PIN 1
#endif

#ifdef _MSC_VER
#define THREAD_LOCAL __declspec(thread)
#else
#define THREAD_LOCAL _Thread_local
#endif

#define MAX_LOOPS       1024
#define MAX_LISTENERS   255     /* tokens FIRST .. FIRST + 254; FIRST + 255 is DROPPED */
#define ACCEPT_BATCH    64      /* accepts per event */
#define REORDER_EVERY   16      /* accepts before an EXCLUSIVE loop goes to the back */
#define REST_NS         (100 * MIO_MSEC)    /* out of descriptors and the shed failed */
#define RECHECK_NS      MIO_MSEC            /* a loop over its share looks again, */
#define RECHECK_MAX_NS  (64 * MIO_MSEC)     /* ... less often while nothing changes */
#define NUDGE_EVERY     8       /* accepts over its share before the last loop accepting
                                   wakes the resting ones to look again */

_Static_assert(MIO_GROUP_TOKEN_FIRST + MAX_LISTENERS == MIO__TOKEN_DROPPED,
               "the group's tokens: its listeners', then the dropped events'");

enum { IDLE, STARTED, RUNNING };    /* mio_group_start's threads; mio_group_run */

#ifdef _WIN32
typedef HANDLE thread_t;
#else
typedef pthread_t thread_t;
#endif

/* A listener's place on one loop. */
struct seat {
    mio_fd fd;                  /* the socket this loop accepts from, or MIO_INVALID_FD */
    bool registered;            /* in the loop's poll */
    bool resting;               /* taken out of it for now */
    bool until_time;            /* ... until resume_at (else: until back at its share) */
    unsigned since_reorder;     /* accepts since it last went to the back */
    unsigned since_nudge;       /* accepts over its share, alone accepting */
    int64_t resume_at;
    char pad[64];               /* the next loop's seat on other cache lines */
};

struct listener {
    int mode;
    void *data;
    mio_fd fd;                  /* the one socket (not REUSEPORT) */
    bool exclusive;             /* the backend wakes one loop (epoll) */
    atomic_int accepting;       /* seats registered (EXCLUSIVE's never falls to 0) */
    struct seat *seats;         /* one per loop; only that loop's thread writes it */
};

/* A loop of the group. */
struct member {
    mio_group *group;
    mio_loop *loop;
    void *ctx;
    atomic_int stop;            /* shut down: leave after this tick */
    atomic_long pending;        /* connections sent to it, not yet adopted */
    atomic_long own;            /* the group's registrations on its poll */
    int cpu;                    /* where it runs, or -1 */
    atomic_int resting;         /* its seats at rest (written by its thread) */
    int64_t recheck_ns;         /* the next look's delay */
    bool timer_armed;
    thread_t thread;
    bool has_thread;
    char pad[64];               /* the next loop's member on other cache lines */
};

struct mio_group {
    size_t n;
    struct member *m;
    struct listener *ls;
    size_t nls;
    mio_group_handler h;
    atomic_int state;
    atomic_int error;           /* the first error of a loop, for join */
    size_t next;                /* loop 0's next choice (HANDOFF), its thread only */
    bool pin_identity;          /* loop i runs on CPU i */
};

/* The group's part in its loops' ticks (loop.h). */
static void hook_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness);
static void hook_message(mio_loop *l, void *ctx, int kind, void *msg, mio_fd fd);
static bool hook_timeout(mio_loop *l, void *ctx, void *arg);
static void hook_tick(mio_loop *l, void *ctx);
static bool hook_stopping(const mio_loop *l);
static void hook_shutdown(mio_loop *l);

static const struct mio_loop_hooks group_hooks = {
    hook_ready, hook_message, hook_timeout, hook_tick, hook_stopping, hook_shutdown
};

/* The group whose loop this thread runs (join and free refuse it). */
static THREAD_LOCAL mio_group *this_group;

/* ---- CPUs and threads ---- */

static size_t cpus_online(void)
{
#ifdef _WIN32
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    return n > 0 ? n : 1;
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
#endif
}

/* The CPUs this process may run on (its affinity, where the OS tells). */
static size_t cpus_usable(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (size_t)CPU_COUNT(&set);
#elif defined(_WIN32)
    DWORD_PTR mine, system;
    size_t n = 0;
    if (GetProcessAffinityMask(GetCurrentProcess(), &mine, &system) && mine != 0) {
        for (; mine != 0; mine &= mine - 1)
            n++;
        return n;
    }
#endif
    return cpus_online();
}

#if defined(__linux__)
typedef cpu_set_t affinity_t;
#elif defined(_WIN32)
typedef DWORD_PTR affinity_t;
#else
typedef int affinity_t;
#endif

/* Runs the calling thread on cpu only; *old (may be NULL) gets what it was. */
static int pin_self(int cpu, affinity_t *old)
{
#if defined(__linux__)
    cpu_set_t set;
    int rc;

    if (cpu >= CPU_SETSIZE)
        return MIO_EINVAL;
    if (old != NULL && (rc = pthread_getaffinity_np(pthread_self(), sizeof *old, old)) != 0)
        return -rc;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    return -rc;
#elif defined(_WIN32)
    DWORD_PTR was;

    if (cpu >= (int)(8 * sizeof(DWORD_PTR)))
        return MIO_EINVAL;
    was = SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu);
    if (was == 0)
        return mio__win_error(GetLastError());
    if (old != NULL)
        *old = was;
    return 0;
#else
    (void)cpu;
    (void)old;
    return MIO_ENOSYS;
#endif
}

static void unpin_self(const affinity_t *old)
{
#if defined(__linux__)
    (void)pthread_setaffinity_np(pthread_self(), sizeof *old, old);
#elif defined(_WIN32)
    (void)SetThreadAffinityMask(GetCurrentThread(), *old);
#else
    (void)old;
#endif
}

static int run_member(struct member *m, bool caller);

#ifdef _WIN32
static DWORD WINAPI thread_main(LPVOID arg)
{
    (void)run_member(arg, false);
    return 0;
}

static int thread_start(struct member *m)
{
    m->thread = CreateThread(NULL, 0, thread_main, m, 0, NULL);
    if (m->thread == NULL)
        return mio__win_error(GetLastError());
    m->has_thread = true;
    return 0;
}

static void thread_join(struct member *m)
{
    WaitForSingleObject(m->thread, INFINITE);
    CloseHandle(m->thread);
    m->has_thread = false;
}
#else
static void *thread_main(void *arg)
{
    (void)run_member(arg, false);
    return NULL;
}

/* The thread starts with asynchronous signals blocked (it inherits the
 * mask), so they go to the program's own threads.  Faults stay unblocked:
 * blocked, they would kill the process before a handler (a sanitizer's)
 * could say where. */
static int thread_start(struct member *m)
{
    static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT };
    sigset_t block, old;
    size_t i;
    int rc;

    sigfillset(&block);
    for (i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&block, faults[i]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = pthread_create(&m->thread, NULL, thread_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    m->has_thread = true;
    return 0;
}

static void thread_join(struct member *m)
{
    pthread_join(m->thread, NULL);
    m->has_thread = false;
}
#endif

/* ---- the group ---- */

void mio_group_config_default(mio_group_config *c)
{
    if (c == NULL)
        return;
    memset(c, 0, sizeof *c);
    mio_loop_config_default(&c->loop);
}

static void free_group(mio_group *g);

int mio_group_new(const mio_group_config *config, mio_group **out)
{
    mio_group_config c;
    mio_group *g;
    size_t i, online = cpus_online();
    int err = 0;

    if (out == NULL)
        return MIO_EINVAL;
    *out = NULL;
    if (config != NULL)
        c = *config;
    else
        mio_group_config_default(&c);
    if (c.loops == 0)
        c.loops = cpus_usable();
    if (c.loops > MAX_LOOPS)
        return MIO_EINVAL;
    if (c.pin) {
#ifndef HAVE_PIN
        return MIO_ENOSYS;
#endif
        for (i = 0; c.cpus != NULL && i < c.loops; i++)
            if (c.cpus[i] < 0)
                return MIO_EINVAL;
    }
    g = mio__calloc(1, sizeof *g);
    if (g == NULL)
        return MIO_ENOMEM;
    g->m = mio__calloc(c.loops, sizeof *g->m);
    if (g->m == NULL) {
        mio__free(g);
        return MIO_ENOMEM;
    }
    g->n = c.loops;
    g->pin_identity = c.pin && c.cpus == NULL;
    atomic_init(&g->state, IDLE);
    atomic_init(&g->error, 0);
    for (i = 0; i < g->n && err == 0; i++) {
        struct member *m = &g->m[i];
        m->group = g;
        m->cpu = !c.pin ? -1 : c.cpus != NULL ? c.cpus[i] : (int)(i % online);
        atomic_init(&m->stop, 0);
        atomic_init(&m->pending, 0);
        atomic_init(&m->own, 0);
        atomic_init(&m->resting, 0);
        err = mio_loop_new(&c.loop, &m->loop);
        if (err == 0) {
            m->loop->group = g;
            m->loop->index = i;
            m->loop->hooks = &group_hooks;
            mio__poll_keep_tokens(m->loop->poll, MIO_GROUP_TOKEN_FIRST);
        }
    }
    if (err < 0) {
        free_group(g);
        return err;
    }
    MIO_TRACE(MIO_LOG_DEBUG, "group %p: new, %u loops", (void *)g, (unsigned)g->n);
    *out = g;
    return 0;
}

size_t mio_group_size(const mio_group *g)
{
    return g != NULL ? g->n : 0;
}

mio_loop *mio_group_loop(mio_group *g, size_t i)
{
    return g != NULL && i < g->n ? g->m[i].loop : NULL;
}

int mio_loop_index(const mio_loop *l)
{
    return l != NULL && l->group != NULL ? (int)l->index : MIO_EINVAL;
}

mio_group *mio_loop_group(const mio_loop *l)
{
    return l != NULL ? l->group : NULL;
}

static void hook_shutdown(mio_loop *l)
{
    mio_group_shutdown(l->group);
}

static bool hook_stopping(const mio_loop *l)
{
    return atomic_load_explicit(&l->group->m[l->index].stop, memory_order_relaxed) != 0;
}

void mio_group_shutdown(mio_group *g)
{
    size_t i;

    if (g == NULL)
        return;
    for (i = 0; i < g->n; i++) {
        atomic_store(&g->m[i].stop, 1);
        (void)mio__poll_wake(g->m[i].loop->poll);
    }
}

/* A loop failed: the group stops, and join reports the first such error. */
static void fail(mio_group *g, int err)
{
    int none = 0;
    (void)atomic_compare_exchange_strong(&g->error, &none, err);
    mio_group_shutdown(g);
}

/* One loop's life on its thread (caller: the thread of mio_group_run, whose
 * affinity is put back afterwards). */
static int run_member(struct member *m, bool caller)
{
    mio_group *g = m->group;
    mio_group *outer = this_group;
    mio_loop *l = m->loop;
    affinity_t old;
    bool pinned = false;
    int err = 0;

    this_group = g;
    if (m->cpu >= 0) {
        err = pin_self(m->cpu, caller ? &old : NULL);
        pinned = err == 0;
    }
    if (err == 0 && g->h.start != NULL && (err = g->h.start(l, m->ctx)) > 0)
        err = 0;
    if (err < 0) {
        fail(g, err);
    } else {
        l->running = true;
        while (err == 0 && !atomic_load_explicit(&m->stop, memory_order_acquire))
            err = mio__loop_tick(l, &g->h.loop, m->ctx, -1);
        if (err < 0)
            fail(g, err);
        if (g->h.stop != NULL)
            g->h.stop(l, m->ctx);
    }
    if (caller && pinned)
        unpin_self(&old);
    this_group = outer;
    MIO_TRACE(MIO_LOG_DEBUG, "group %p: loop %u stopped: %s", (void *)g, (unsigned)l->index,
              MIO__RESULT(err));
    return err;
}

/* Everything a run needs, set before any thread starts. */
static int prepare(mio_group *g, const mio_group_handler *h, void *const ctx[], int state)
{
    int idle = IDLE;
    size_t i;

    if (g == NULL || h == NULL)
        return MIO_EINVAL;
    if (this_group == g)
        return MIO_EBUSY;
    if (g->nls > 0 && h->adopt == NULL)
        return MIO_EINVAL;
    if (!atomic_compare_exchange_strong(&g->state, &idle, state))
        return MIO_EBUSY;
    g->h = *h;
    atomic_store(&g->error, 0);
    for (i = 0; i < g->n; i++) {
        g->m[i].ctx = ctx != NULL ? ctx[i] : NULL;
        atomic_store(&g->m[i].stop, 0);
    }
    return 0;
}

static void join_threads(mio_group *g)
{
    size_t i;
    for (i = 0; i < g->n; i++)
        if (g->m[i].has_thread)
            thread_join(&g->m[i]);
}

/* Threads for loops first.. n-1; on failure the ones made are stopped. */
static int start_threads(mio_group *g, size_t first)
{
    size_t i;
    int err = 0;

    for (i = first; i < g->n && err == 0; i++)
        err = thread_start(&g->m[i]);
    if (err < 0) {
        mio_group_shutdown(g);
        join_threads(g);
        atomic_store(&g->state, IDLE);
    }
    return err;
}

int mio_group_start(mio_group *g, const mio_group_handler *h, void *const ctx[])
{
    int err = prepare(g, h, ctx, STARTED);

    if (err == 0)
        err = start_threads(g, 0);
    MIO_TRACE(MIO_LOG_DEBUG, "group %p: start: %s", (void *)g, MIO__RESULT(err));
    return err;
}

int mio_group_run(mio_group *g, const mio_group_handler *h, void *const ctx[])
{
    int err = prepare(g, h, ctx, RUNNING);

    if (err == 0)
        err = start_threads(g, 1);
    if (err < 0)
        return err;
    (void)run_member(&g->m[0], true);
    join_threads(g);
    atomic_store(&g->state, IDLE);
    return atomic_load(&g->error);
}

int mio_group_join(mio_group *g)
{
    if (g == NULL)
        return MIO_EINVAL;
    if (this_group == g)
        return MIO_EDEADLK;     /* a loop would wait for itself */
    switch (atomic_load(&g->state)) {
    case IDLE:
        return 0;
    case RUNNING:
        return MIO_EBUSY;
    default:
        break;
    }
    join_threads(g);
    atomic_store(&g->state, IDLE);
    return atomic_load(&g->error);
}

int mio_group_send(mio_group *g, size_t i, void *msg)
{
    if (g == NULL || i >= g->n)
        return MIO_EINVAL;
    return mio__channel_send(g->m[i].loop->chan, MIO__MSG_USER, msg, MIO_INVALID_FD);
}

/* Closes the connections waiting in the loops' channels and the
 * listeners, frees the loops and the group.  Nothing runs. */
static void free_group(mio_group *g)
{
    size_t i, k;

    for (k = 0; k < g->nls; k++) {
        struct listener *L = &g->ls[k];
        if (L->mode == MIO_GROUP_REUSEPORT || L->mode == MIO_GROUP_REUSEPORT_CPU) {
            for (i = 0; i < g->n; i++)
                if (L->seats[i].fd != MIO_INVALID_FD)
                    (void)mio_close(L->seats[i].fd);
        } else {
            (void)mio_close(L->fd);
        }
        mio__free(L->seats);
    }
    mio__free(g->ls);
    for (i = 0; i < g->n; i++) {
        mio_loop *l = g->m[i].loop;
        void *msg;
        mio_fd fd;
        int kind;

        if (l == NULL)
            continue;
        while ((kind = mio__channel_recv(l->chan, &msg, &fd)) != MIO__MSG_NONE)
            if (kind == MIO__MSG_ADOPT)
                (void)mio_close(fd);
        mio__loop_free(l);
    }
    mio__free(g->m);
    mio__free(g);
}

void mio_group_free(mio_group *g)
{
    if (g == NULL || this_group == g)
        return;
    if (atomic_load(&g->state) == STARTED) {
        mio_group_shutdown(g);
        (void)mio_group_join(g);
    }
    MIO_TRACE(MIO_LOG_DEBUG, "group %p: freed", (void *)g);
    free_group(g);
}

/* ---- listeners ---- */

static bool one_socket_each(int mode)
{
    return mode == MIO_GROUP_REUSEPORT || mode == MIO_GROUP_REUSEPORT_CPU;
}

static mio_token token_of(size_t k)
{
    return MIO_GROUP_TOKEN_FIRST + (mio_token)k;
}

/* Registers (in) or deregisters (out) the seat on its loop's poll. */
static int seat_in(mio_group *g, size_t k, size_t i)
{
    struct listener *L = &g->ls[k];
    struct seat *s = &L->seats[i];
    uint32_t interest = MIO_READABLE | MIO_LEVEL;
    int err;

    if (L->mode == MIO_GROUP_EXCLUSIVE)
        interest |= MIO__EXCLUSIVE;
    err = mio__register_internal(g->m[i].loop->poll, s->fd, token_of(k), interest);
    if (err == 0) {
        s->registered = true;
        atomic_fetch_add(&g->m[i].own, 1);
    }
    return err;
}

static void seat_out(mio_group *g, size_t k, size_t i)
{
    struct seat *s = &g->ls[k].seats[i];

    if (!s->registered)
        return;
    (void)mio_deregister(g->m[i].loop->poll, s->fd);
    s->registered = false;
    atomic_fetch_sub(&g->m[i].own, 1);
}

int mio_group_listen(mio_group *g, const mio_addr *addr, int backlog, int mode, void *data)
{
    struct listener *L, *grown;
    mio_addr at;
    size_t i, k;
    int err = 0;

    if (g == NULL || addr == NULL || mode < MIO_GROUP_REUSEPORT || mode > MIO_GROUP_HANDOFF_LEAST)
        return MIO_EINVAL;
    if (atomic_load(&g->state) != IDLE || this_group == g)
        return MIO_EBUSY;
    if (g->nls >= MAX_LISTENERS)
        return MIO_ENOSPC;
    if (mode == MIO_GROUP_REUSEPORT_CPU && !g->pin_identity) {
#if defined(__linux__)
        return MIO_EINVAL;
#else
        return MIO_ENOSYS;
#endif
    }
    grown = mio__realloc(g->ls, (g->nls + 1) * sizeof *g->ls);
    if (grown == NULL)
        return MIO_ENOMEM;
    g->ls = grown;
    k = g->nls;
    L = &g->ls[k];
    memset(L, 0, sizeof *L);
    L->mode = mode;
    L->data = data;
    L->fd = MIO_INVALID_FD;
    L->exclusive = mode == MIO_GROUP_EXCLUSIVE &&
                   (mio__poll_private_interest(g->m[0].loop->poll) & MIO__EXCLUSIVE) != 0;
    atomic_init(&L->accepting, 0);
    L->seats = mio__calloc(g->n, sizeof *L->seats);
    if (L->seats == NULL)
        return MIO_ENOMEM;
    for (i = 0; i < g->n; i++)
        L->seats[i].fd = MIO_INVALID_FD;

    if (one_socket_each(mode)) {
        /* The first socket picks the port when asked for any; the others
         * join it there. */
        at = *addr;
        for (i = 0; i < g->n && err == 0; i++) {
            err = mio__tcp_listen_shared(&at, backlog, &L->seats[i].fd);
            if (err == 0 && i == 0)
                err = mio_local_addr(L->seats[0].fd, &at);
        }
        if (err == 0 && mode == MIO_GROUP_REUSEPORT_CPU)
            err = mio__tcp_steer_by_cpu(L->seats[0].fd, (unsigned)g->n);
    } else {
        err = mio_tcp_listen(addr, backlog, &L->fd);
        for (i = 0; i < g->n && err == 0; i++)
            if (mode == MIO_GROUP_EXCLUSIVE || i == 0)
                L->seats[i].fd = L->fd;
    }
    g->nls++;   /* seat_in looks the listener up by its number */
    for (i = 0; i < g->n && err == 0; i++) {
        if (L->seats[i].fd != MIO_INVALID_FD) {
            err = seat_in(g, k, i);
            if (err == 0)
                atomic_fetch_add(&L->accepting, 1);
        }
    }
    if (err < 0) {
        for (i = 0; i < g->n; i++) {
            seat_out(g, k, i);
            if (one_socket_each(mode) && L->seats[i].fd != MIO_INVALID_FD)
                (void)mio_close(L->seats[i].fd);
        }
        if (L->fd != MIO_INVALID_FD)
            (void)mio_close(L->fd);
        mio__free(L->seats);
        g->nls--;
        return err;
    }
    MIO_TRACE(MIO_LOG_DEBUG, "group %p: listener %u, mode %d", (void *)g, (unsigned)k, mode);
    return (int)k;
}

int mio_group_local_addr(mio_group *g, int listener, mio_addr *out)
{
    struct listener *L;

    if (g == NULL || out == NULL || listener < 0 || (size_t)listener >= g->nls)
        return MIO_EINVAL;
    L = &g->ls[listener];
    return mio_local_addr(one_socket_each(L->mode) ? L->seats[0].fd : L->fd, out);
}

/* ---- loads and hand-offs ---- */

/* What a loop holds: its poll's registered descriptors but the group's own,
 * and the connections on their way to it. */
static long load_of(mio_group *g, size_t i)
{
    struct member *m = &g->m[i];
    long n = (long)mio__poll_records(m->loop->poll) -
             atomic_load_explicit(&m->own, memory_order_relaxed) +
             atomic_load_explicit(&m->pending, memory_order_relaxed);
    return n > 0 ? n : 0;
}

static size_t least_loaded(mio_group *g)
{
    size_t i, best = g->next++ % g->n, at;
    long least = load_of(g, best);

    /* Starting the scan at a turning point spreads ties. */
    for (i = 1; i < g->n && least > 0; i++) {
        long load;
        at = (best + i) % g->n;
        load = load_of(g, at);
        if (load < least) {
            least = load;
            best = at;
        }
    }
    return best;
}

/* Sends fd to loop `to`'s adopt, or to the next loop whose channel has
 * room; false when the turn came back to `from` first (adopt it there). */
static bool send_adopt(mio_group *g, size_t from, size_t to, mio_fd fd, void *data)
{
    size_t tries;

    for (tries = 0; tries < g->n; tries++, to = (to + 1) % g->n) {
        struct member *m = &g->m[to];
        if (to == from)
            return false;
        atomic_fetch_add(&m->pending, 1);
        if (mio__channel_send(m->loop->chan, MIO__MSG_ADOPT, data, fd) == 0)
            return true;
        atomic_fetch_sub(&m->pending, 1);
    }
    return false;
}

static void hook_message(mio_loop *l, void *ctx, int kind, void *msg, mio_fd fd)
{
    mio_group *g = l->group;

    if (kind != MIO__MSG_ADOPT)
        return;
    if (g->h.adopt != NULL)
        g->h.adopt(l, ctx, fd, msg);
    else
        (void)mio_close(fd);
    /* After adopt: a registration it made is counted before this goes. */
    atomic_fetch_sub(&g->m[l->index].pending, 1);
}

int mio_loop_handoff(mio_loop *l, mio_fd fd, mio_token token, size_t to, void *data)
{
    struct mio_chan_claim claim;
    struct member *m;
    mio_group *g;
    size_t j;
    int err;

    if (l == NULL || (g = l->group) == NULL || to >= g->n || token >= MIO_GROUP_TOKEN_FIRST ||
        g->h.adopt == NULL)
        return MIO_EINVAL;
    m = &g->m[to];
    /* The slot first: once the fd is out of this poll, it must be sent. */
    err = mio__channel_claim(m->loop->chan, &claim);
    if (err < 0)
        return err;
    err = mio_deregister(l->poll, fd);
    if (err < 0 && err != MIO_ENOENT) {
        mio__channel_publish(m->loop->chan, &claim, MIO__MSG_VOID, NULL, MIO_INVALID_FD);
        return err;
    }
    for (j = l->dispatching + 1; j < l->nevents; j++)
        if (l->events[j].token == token)
            l->events[j].token = MIO__TOKEN_DROPPED;
    atomic_fetch_add(&m->pending, 1);
    mio__channel_publish(m->loop->chan, &claim, MIO__MSG_ADOPT, data, fd);
    MIO_TRACE(MIO_LOG_DEBUG, "group %p: fd %lld handed from loop %u to %u", (void *)g,
              (long long)fd, (unsigned)l->index, (unsigned)to);
    return 0;
}

/* ---- accepting ---- */

/* Makes sure loop i looks at its resting seats again soon. */
static bool arm_recheck(mio_group *g, size_t i, int64_t delay_ns)
{
    struct member *m = &g->m[i];

    if (m->timer_armed)
        return true;
    if (mio_loop_timeout(m->loop, m, (uint64_t)delay_ns, NULL) < 0)
        return false;
    m->timer_armed = true;
    return true;
}

/* Takes loop i's seat of listener k out for a while: until `until` (a
 * clock reading), or with until < 0 until the loop is back at its share.
 * False when no timer could be set to end the rest: the seat stays (or,
 * if it is out already, is put back). */
static bool rest(mio_group *g, size_t k, size_t i, int64_t until)
{
    struct seat *s = &g->ls[k].seats[i];

    if (s->resting)
        return true;
    g->m[i].recheck_ns = RECHECK_NS;
    if (!arm_recheck(g, i, until < 0 ? RECHECK_NS : REST_NS)) {
        if (!s->registered)
            (void)seat_in(g, k, i);
        return false;
    }
    seat_out(g, k, i);
    s->resting = true;
    s->until_time = until >= 0;
    s->resume_at = until;
    atomic_fetch_add(&g->m[i].resting, 1);
    MIO_TRACE(MIO_LOG_DEBUG, "group %p: loop %u rests listener %u", (void *)g, (unsigned)i,
              (unsigned)k);
    return true;
}

/* Loop i's load and the group's, and whether the loop holds clearly more
 * than its share (over: more than an eighth, and two, above the mean) or
 * is back at it (not over: at most one above the mean). */
static bool share(mio_group *g, size_t i, bool over)
{
    long mine = load_of(g, i), total = mine, n = (long)g->n;
    size_t j;

    for (j = 0; j < g->n; j++)
        if (j != i)
            total += load_of(g, j);
    if (over)
        return mine * 8 * n > total * 9 + 16 * n;
    return mine * n <= total + n;
}

/* EXCLUSIVE, after loop i accepted a connection of listener k: false when
 * it should accept no more for now. */
static bool balance(mio_group *g, size_t k, size_t i)
{
    struct listener *L = &g->ls[k];
    struct seat *s = &L->seats[i];
    int accepting;

    if (g->n < 2)
        return true;
    s->since_reorder++;
    if (share(g, i, true)) {
        /* Leave only if another loop accepts: claim the decrement first. */
        accepting = atomic_load(&L->accepting);
        while (accepting > 1 &&
               !atomic_compare_exchange_weak(&L->accepting, &accepting, accepting - 1))
            ;
        if (accepting > 1) {
            if (rest(g, k, i, -1))
                return false;
            atomic_fetch_add(&L->accepting, 1);
        } else if (++s->since_nudge >= NUDGE_EVERY) {
            /* Alone and over its share: the resting loops may well be back
             * at theirs, and would otherwise look only at their next timer. */
            size_t j;
            s->since_nudge = 0;
            for (j = 0; j < g->n; j++)
                if (j != i && atomic_load_explicit(&g->m[j].resting, memory_order_relaxed) > 0)
                    (void)mio__poll_wake(g->m[j].loop->poll);
        }
    }
    if (L->exclusive && s->since_reorder >= REORDER_EVERY) {
        /* Out and in again: to the end of the socket's wait queue. */
        s->since_reorder = 0;
        seat_out(g, k, i);
        if (seat_in(g, k, i) < 0 && rest(g, k, i, mio__now_ns() + REST_NS)) {
            atomic_fetch_sub(&L->accepting, 1);
            return false;
        }
    }
    return s->registered;
}

static void hook_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    mio_group *g = l->group;
    size_t k = (size_t)(token - MIO_GROUP_TOKEN_FIRST), i = l->index, n;
    struct listener *L;
    struct seat *s;
    size_t failed = 0;

    (void)readiness;
    if (k >= g->nls)
        return;     /* MIO__TOKEN_DROPPED */
    L = &g->ls[k];
    s = &L->seats[i];
    if (!s->registered)
        return;
    for (n = 0; n < ACCEPT_BATCH; n++) {
        mio_fd fd;
        int err = mio_tcp_accept(s->fd, &fd, NULL);

        if (err == 0) {
            size_t to = i;
            if (L->mode == MIO_GROUP_HANDOFF)
                to = g->next++ % g->n;
            else if (L->mode == MIO_GROUP_HANDOFF_LEAST)
                to = least_loaded(g);
            if (to == i || !send_adopt(g, i, to, fd, L->data))
                g->h.adopt(l, ctx, fd, L->data);
            if (L->mode == MIO_GROUP_EXCLUSIVE && !balance(g, k, i))
                break;
            continue;
        }
        if (err == MIO_EAGAIN)
            break;
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            /* The queue is dropped; if even that fails, rest a while. */
            if (mio_tcp_shed(s->fd) < 0 && rest(g, k, i, mio__now_ns() + REST_NS))
                atomic_fetch_sub(&L->accepting, 1);
            break;
        }
        /* Anything else concerns one client (aborted before accept, refused
         * by a filter): skip it and go on.  A whole batch of nothing but
         * such errors is the listener's own trouble: rest, not spin. */
        if (++failed == ACCEPT_BATCH && rest(g, k, i, mio__now_ns() + REST_NS))
            atomic_fetch_sub(&L->accepting, 1);
    }
}

static bool hook_timeout(mio_loop *l, void *ctx, void *arg)
{
    struct member *m = &l->group->m[l->index];

    (void)ctx;
    if (arg != (void *)m)
        return false;
    m->timer_armed = false;     /* the tick's end looks at the seats */
    return true;
}

static void hook_tick(mio_loop *l, void *ctx)
{
    mio_group *g = l->group;
    size_t i = l->index, k;
    struct member *m = &g->m[i];
    int64_t now;

    (void)ctx;
    if (atomic_load_explicit(&m->resting, memory_order_relaxed) == 0)
        return;
    now = mio__now_ns();
    for (k = 0; k < g->nls; k++) {
        struct listener *L = &g->ls[k];
        struct seat *s = &L->seats[i];

        if (!s->resting)
            continue;
        if (s->until_time ? now < s->resume_at : !share(g, i, false))
            continue;
        if (seat_in(g, k, i) < 0)
            continue;   /* tried again at the next look */
        s->resting = false;
        atomic_fetch_sub(&m->resting, 1);
        atomic_fetch_add(&L->accepting, 1);
    }
    if (atomic_load_explicit(&m->resting, memory_order_relaxed) > 0 && !m->timer_armed) {
        /* Still out: look again later, less often the longer it lasts. */
        if (m->recheck_ns < RECHECK_MAX_NS)
            m->recheck_ns *= 2;
        (void)arm_recheck(g, i, m->recheck_ns);
    }
}
