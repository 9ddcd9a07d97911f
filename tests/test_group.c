/* The group of loops: loops and their threads, start and stop callbacks,
 * shutdown from anywhere, messages between loops in order, connections
 * spread by each listening mode with every byte checked, connections
 * handed from loop to loop with data in flight, and what is left behind
 * (descriptors, threads) once a group under load is stopped and freed. */
#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

/* "Eventually": nothing here should take close to it. */
#define LONG_WAIT (10 * MIO_SEC)

/* ---- helpers ---- */

static mio_group *new_group_with(mio_group_config *c)
{
    mio_group *g = NULL;
    int err;

    c->loop.backend = test_backend;
    err = mio_group_new(c, &g);
    if (err == MIO_ENOSYS)
        SKIP("backend %s not available here", test_backend);
    CHECK_EQ(err, 0);
    CHECK(g != NULL);
    CHECK(strcmp(mio_poll_backend(mio_loop_poll(mio_group_loop(g, 0))), test_backend) == 0);
    test_watchdog(60);
    return g;
}

static mio_group *new_group(size_t loops)
{
    mio_group_config c;
    mio_group_config_default(&c);
    c.loops = loops;
    return new_group_with(&c);
}

static mio_addr any_port(void)
{
    mio_addr a;
    OK(mio_addr_parse("127.0.0.1:0", &a));
    return a;
}

/* Listens in `mode`, or skips the test with the reason when this OS lacks
 * the mode. */
static int listen_or_skip(mio_group *g, int mode, void *data, mio_addr *bound)
{
    mio_addr a = any_port();
    int id = mio_group_listen(g, &a, 0, mode, data);

    if (id == MIO_ENOSYS) {
        mio_group_free(g);
        SKIP("this OS has no %s", mode == MIO_GROUP_REUSEPORT_CPU
                                      ? "SO_ATTACH_REUSEPORT_CBPF" : "load-balancing SO_REUSEPORT");
    }
    CHECK(id >= 0);
    OK(mio_group_local_addr(g, id, bound));
    return id;
}

static void *nothing(void *arg)
{
    return arg;
}

/* Threads a runtime starts at the first pthread_create (TSan's) are
 * started before a count. */
static void first_thread_made(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, nothing, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

#ifdef _WIN32
static int threads_now(void)
{
    return -1;      /* not counted here: join returning is the check */
}
#else
/* The threads of this process (Linux: /proc/self/task), less the kernel's
 * io_uring workers ("iou-..."), which come and go on their own; -1
 * elsewhere. */
static int threads_now(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], name[32] = "";
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        if ((f = fopen(path, "r")) != NULL) {
            if (fgets(name, sizeof name, f) == NULL)
                name[0] = '\0';
            fclose(f);
        }
        if (strncmp(name, "iou-", 4) != 0)
            n++;
    }
    closedir(d);
    return n;
}
#endif

/* ---- an echo server for the group: one `struct server` per loop ---- */

struct conn {
    mio_fd fd;
    bool want_write;
    size_t off, len;
    struct conn *prev, *next;
    char buf[4096];
};

struct server {
    mio_group *group;
    size_t index;
    atomic_long adopted;        /* connections this loop got */
    atomic_long peak;           /* most connections it held at once */
    long live;
    struct conn *conns;
    atomic_int started, stopped, ticks;
    atomic_int wrong_loop;      /* a callback on another loop than its ctx's */
    int start_result;
};

static void conn_close(struct server *s, mio_loop *l, struct conn *c)
{
    (void)mio_deregister(mio_loop_poll(l), c->fd);
    OK(mio_close(c->fd));
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->live--;
    free(c);
}

static void check_loop(struct server *s, mio_loop *l)
{
    if (mio_loop_index(l) != (int)s->index || mio_loop_group(l) != s->group)
        atomic_store(&s->wrong_loop, 1);
}

static int srv_start(mio_loop *l, void *ctx)
{
    struct server *s = ctx;
    check_loop(s, l);
    atomic_fetch_add(&s->started, 1);
    return s->start_result;
}

static void srv_stop(mio_loop *l, void *ctx)
{
    struct server *s = ctx;
    check_loop(s, l);
    while (s->conns != NULL)
        conn_close(s, l, s->conns);
    atomic_fetch_add(&s->stopped, 1);
}

static void srv_adopt(mio_loop *l, void *ctx, mio_fd fd, void *data)
{
    struct server *s = ctx;
    struct conn *c = calloc(1, sizeof *c);

    (void)data;
    check_loop(s, l);
    CHECK(c != NULL);
    c->fd = fd;
    OK(mio_register(mio_loop_poll(l), fd, (mio_token)c, MIO_READABLE));
    c->next = s->conns;
    if (c->next != NULL)
        c->next->prev = c;
    s->conns = c;
    s->live++;
    if (s->live > atomic_load(&s->peak))
        atomic_store(&s->peak, s->live);
    atomic_fetch_add(&s->adopted, 1);
}

/* Echoes until the socket would block; closes at the end of the stream. */
static void srv_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    struct server *s = ctx;
    struct conn *c = (struct conn *)token;

    (void)readiness;
    check_loop(s, l);
    for (;;) {
        if (c->off < c->len) {
            ssize_t w = mio_write(c->fd, c->buf + c->off, c->len - c->off);
            if (w > 0) {
                c->off += (size_t)w;
                continue;
            }
            if (w == MIO_EAGAIN && !c->want_write) {
                c->want_write = true;
                OK(mio_reregister(mio_loop_poll(l), c->fd, token, MIO_READABLE | MIO_WRITABLE));
            } else if (w != MIO_EAGAIN) {
                conn_close(s, l, c);
            }
            return;
        }
        ssize_t r = mio_read(c->fd, c->buf, sizeof c->buf);
        if (r > 0) {
            c->off = 0;
            c->len = (size_t)r;
            continue;
        }
        if (r == MIO_EAGAIN) {
            if (c->want_write) {
                c->want_write = false;
                OK(mio_reregister(mio_loop_poll(l), c->fd, token, MIO_READABLE));
            }
            return;
        }
        conn_close(s, l, c);
        return;
    }
}

static void srv_tick(mio_loop *l, void *ctx)
{
    struct server *s = ctx;
    check_loop(s, l);
    atomic_fetch_add(&s->ticks, 1);
}

static const mio_group_handler echo_handler = {
    { srv_ready, NULL, NULL, NULL, srv_tick }, srv_start, srv_stop, srv_adopt
};

#define MAX_LOOPS 8

struct servers {
    struct server s[MAX_LOOPS];
    void *ctx[MAX_LOOPS];
};

static void servers_init(struct servers *v, mio_group *g)
{
    size_t i;
    memset(v, 0, sizeof *v);
    CHECK(mio_group_size(g) <= MAX_LOOPS);
    for (i = 0; i < mio_group_size(g); i++) {
        v->s[i].group = g;
        v->s[i].index = i;
        v->ctx[i] = &v->s[i];
    }
}

/* ---- clients: connections that each send a pattern and check its echo ---- */

struct client {
    mio_fd fd;
    size_t sent, got;
};

static unsigned char pattern(size_t conn, size_t at)
{
    return (unsigned char)(conn * 131 + at * 7 + (at >> 9));
}

/* Opens `conns` connections to a, `batch` at a time, each sending `bytes`
 * bytes and reading every one back; fails the test on a wrong byte. */
static void run_clients(const mio_addr *a, size_t conns, size_t bytes, size_t batch)
{
    struct client *cl = calloc(batch, sizeof *cl);
    unsigned char out[8192], in[8192];
    mio_event ev[64];
    mio_poll *p;
    size_t first, i;
    int64_t deadline = test_now_ns() + 4 * LONG_WAIT;

    CHECK(cl != NULL);
    OK(mio_poll_new(&p));
    for (first = 0; first < conns; first += batch) {
        size_t n = conns - first < batch ? conns - first : batch, done = 0;

        for (i = 0; i < n; i++) {
            cl[i].sent = cl[i].got = 0;
            OK(mio_tcp_connect(a, &cl[i].fd));
            OK(mio_register(p, cl[i].fd, i, MIO_READABLE | MIO_WRITABLE));
        }
        while (done < n) {
            /* The loops' uring polls were made, and are freed, on this
             * thread: the kernel's work at a ring's end may cut this
             * thread's waits short (mio.h, mio_poll_wait). */
            int k, m = mio_poll_wait(p, ev, 64, 100 * MIO_MSEC);
            if (m == MIO_EINTR && strcmp(test_backend, "uring") == 0)
                m = 0;
            CHECK(m >= 0);
            CHECK(test_now_ns() < deadline);
            for (k = 0; k < m; k++) {
                struct client *c = &cl[ev[k].token];
                size_t id = first + ev[k].token;
                ssize_t r;

                if (c->got == bytes)
                    continue;
                while (c->sent < bytes) {
                    size_t len = bytes - c->sent < sizeof out ? bytes - c->sent : sizeof out, j;
                    for (j = 0; j < len; j++)
                        out[j] = pattern(id, c->sent + j);
                    r = mio_write(c->fd, out, len);
                    if (r == MIO_EAGAIN || r == MIO_ENOTCONN)
                        break;
                    CHECK(r > 0);
                    c->sent += (size_t)r;
                }
                while ((r = mio_read(c->fd, in, sizeof in)) > 0) {
                    ssize_t j;
                    for (j = 0; j < r; j++)
                        if (in[j] != pattern(id, c->got + (size_t)j))
                            FAIL("connection %zu: byte %zu wrong", id, c->got + (size_t)j);
                    c->got += (size_t)r;
                    CHECK(c->got <= c->sent);
                }
                CHECK(r == MIO_EAGAIN || (r == 0 && c->got == bytes) || r == MIO_ENOTCONN);
                if (c->got == bytes) {
                    OK(mio_deregister(p, c->fd));
                    OK(mio_close(c->fd));
                    done++;
                }
            }
        }
    }
    mio_poll_free(p);
    free(cl);
}

struct client_job {
    mio_addr addr;
    size_t conns, bytes, batch;
};

static void *client_thread(void *arg)
{
    struct client_job *j = arg;
    run_clients(&j->addr, j->conns, j->bytes, j->batch);
    return NULL;
}

/* ---- the group itself ---- */

TEST(loops_know_their_group_and_index)
{
    mio_group *g = new_group(3);
    size_t i;

    CHECK_EQ(mio_group_size(g), 3);
    for (i = 0; i < 3; i++) {
        mio_loop *l = mio_group_loop(g, i);
        CHECK(l != NULL);
        CHECK_EQ(mio_loop_index(l), i);
        CHECK(mio_loop_group(l) == g);
        CHECK(strcmp(mio_poll_backend(mio_loop_poll(l)), test_backend) == 0);
    }
    CHECK(mio_group_loop(g, 3) == NULL);
    CHECK(mio_group_loop(NULL, 0) == NULL);
    CHECK_EQ(mio_group_size(NULL), 0);
    mio_group_free(g);
}

TEST(default_is_one_loop_per_cpu)
{
    mio_group_config c;
    mio_group *g;
    long cpus;

    mio_group_config_default(&c);
    CHECK_EQ(c.loops, 0);
    CHECK(!c.pin && c.cpus == NULL);
    CHECK(c.loop.notify_capacity > 0);
    g = new_group_with(&c);
#ifdef _WIN32
    {
        DWORD_PTR mine, system;
        CHECK(GetProcessAffinityMask(GetCurrentProcess(), &mine, &system));
        for (cpus = 0; mine != 0; mine &= mine - 1)
            cpus++;
    }
#elif defined(__linux__)
    {
        cpu_set_t set;
        CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
        cpus = CPU_COUNT(&set);
    }
#else
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    CHECK_EQ(mio_group_size(g), cpus);
    mio_group_free(g);
}

TEST(loops_standing_alone_have_no_group)
{
    mio_loop *l;
    mio_loop_config c = { 0 };

    c.backend = test_backend;
    OK(mio_loop_new(&c, &l));
    CHECK_EQ(mio_loop_index(l), MIO_EINVAL);
    CHECK(mio_loop_group(l) == NULL);
    CHECK_EQ(mio_loop_index(NULL), MIO_EINVAL);
    CHECK(mio_loop_group(NULL) == NULL);
    CHECK_EQ(mio_loop_handoff(l, 0, 1, 0, NULL), MIO_EINVAL);
    mio_loop_free(l);
}

/* Every bad call says so and leaves the group as it was: it then serves. */
TEST(bad_arguments_change_nothing)
{
    mio_group_config c;
    mio_group *g = new_group(2), *none = NULL;
    struct servers v;
    mio_addr a = any_port(), bound;
    mio_fd pair[2];
    mio_waker *w = NULL;
    struct client_job job;

    servers_init(&v, g);
    mio_group_config_default(&c);
    c.loops = 5000;
    CHECK_EQ(mio_group_new(&c, &none), MIO_EINVAL);
    CHECK(none == NULL);
    CHECK_EQ(mio_group_new(NULL, NULL), MIO_EINVAL);
    {
        int cpus[2] = { 0, -1 };
        mio_group_config_default(&c);
        c.loops = 2;
        c.pin = true;
        c.cpus = cpus;
        c.loop.backend = test_backend;
        CHECK_EQ(mio_group_new(&c, &none), MIO_EINVAL);
    }

    CHECK_EQ(mio_group_listen(NULL, &a, 0, MIO_GROUP_HANDOFF, NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_listen(g, NULL, 0, MIO_GROUP_HANDOFF, NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_listen(g, &a, 0, 0, NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_listen(g, &a, 0, 99, NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_local_addr(g, 0, &bound), MIO_EINVAL);
    CHECK_EQ(mio_group_local_addr(g, -1, &bound), MIO_EINVAL);
    CHECK_EQ(mio_group_local_addr(NULL, 0, &bound), MIO_EINVAL);
    CHECK_EQ(mio_group_send(g, 2, NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_send(g, (size_t)-1, NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_send(NULL, 0, NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_start(g, NULL, v.ctx), MIO_EINVAL);
    CHECK_EQ(mio_group_start(NULL, &echo_handler, v.ctx), MIO_EINVAL);
    CHECK_EQ(mio_group_run(g, NULL, v.ctx), MIO_EINVAL);
    CHECK_EQ(mio_group_join(NULL), MIO_EINVAL);
    CHECK_EQ(mio_group_join(g), 0);             /* not started: nothing to wait for */
    mio_group_shutdown(NULL);
    mio_group_free(NULL);

    /* The loops are the group's: run through it, freed with it. */
    CHECK_EQ(mio_loop_run(mio_group_loop(g, 0), &echo_handler.loop, NULL), MIO_EINVAL);
    CHECK_EQ(mio_loop_run_once(mio_group_loop(g, 0), &echo_handler.loop, NULL, 0), MIO_EINVAL);
    mio_loop_free(mio_group_loop(g, 1));
    CHECK_EQ(mio_loop_index(mio_group_loop(g, 1)), 1);

    /* The group's tokens are refused on its loops, by every call. */
    OK(mio_socketpair(pair));
    CHECK_EQ(mio_register(mio_loop_poll(mio_group_loop(g, 0)), pair[0], MIO_GROUP_TOKEN_FIRST,
                          MIO_READABLE), MIO_EINVAL);
    CHECK_EQ(mio_register(mio_loop_poll(mio_group_loop(g, 0)), pair[0], MIO_TOKEN_RESERVED - 1,
                          MIO_READABLE), MIO_EINVAL);
    CHECK_EQ(mio_waker_new(mio_loop_poll(mio_group_loop(g, 0)), MIO_GROUP_TOKEN_FIRST, &w),
             MIO_EINVAL);
    CHECK(w == NULL);
    OK(mio_register(mio_loop_poll(mio_group_loop(g, 0)), pair[0], MIO_GROUP_TOKEN_FIRST - 1,
                    MIO_READABLE));
    OK(mio_deregister(mio_loop_poll(mio_group_loop(g, 0)), pair[0]));
    CHECK_EQ(mio_loop_handoff(mio_group_loop(g, 0), pair[0], 1, 2, NULL), MIO_EINVAL);
    CHECK_EQ(mio_loop_handoff(mio_group_loop(g, 0), pair[0], MIO_GROUP_TOKEN_FIRST, 1, NULL),
             MIO_EINVAL);
    CHECK_EQ(mio_loop_handoff(NULL, pair[0], 1, 1, NULL), MIO_EINVAL);
    OK(mio_close(pair[0]));
    OK(mio_close(pair[1]));

    /* A listener needs an adopt. */
    listen_or_skip(g, MIO_GROUP_HANDOFF, NULL, &bound);
    {
        mio_group_handler no_adopt = echo_handler;
        no_adopt.adopt = NULL;
        CHECK_EQ(mio_group_start(g, &no_adopt, v.ctx), MIO_EINVAL);
    }

    OK(mio_group_start(g, &echo_handler, v.ctx));
    CHECK_EQ(mio_group_start(g, &echo_handler, v.ctx), MIO_EBUSY);
    CHECK_EQ(mio_group_run(g, &echo_handler, v.ctx), MIO_EBUSY);
    CHECK_EQ(mio_group_listen(g, &a, 0, MIO_GROUP_HANDOFF, NULL), MIO_EBUSY);
    CHECK_EQ(mio_group_local_addr(g, 1, &bound), MIO_EINVAL);
    job.addr = bound;
    job.conns = 8;
    job.bytes = 1000;
    job.batch = 8;
    client_thread(&job);
    mio_group_shutdown(g);
    OK(mio_group_join(g));
    CHECK_EQ(atomic_load(&v.s[0].adopted) + atomic_load(&v.s[1].adopted), 8);
    CHECK(!atomic_load(&v.s[0].wrong_loop) && !atomic_load(&v.s[1].wrong_loop));
    mio_group_free(g);
}

static pthread_t main_thread;
static atomic_int on_main;

static int note_thread(mio_loop *l, void *ctx)
{
    if (pthread_equal(pthread_self(), main_thread))
        atomic_fetch_add(&on_main, 1 + mio_loop_index(l) * 10);
    return srv_start(l, ctx);
}

/* A timeout every millisecond keeps the loops ticking; loop 1 stops the
 * group at its third tick. */
static int note_thread_and_tick(mio_loop *l, void *ctx)
{
    OK(mio_loop_timeout(l, NULL, MIO_MSEC, NULL));
    return note_thread(l, ctx);
}

static void tick_again(mio_loop *l, void *ctx, void *arg)
{
    (void)ctx;
    OK(mio_loop_timeout(l, arg, MIO_MSEC, NULL));
}

static void stop_in_tick(mio_loop *l, void *ctx)
{
    struct server *s = ctx;
    srv_tick(l, ctx);
    if (s->index == 1 && atomic_load(&s->ticks) >= 3)
        mio_group_shutdown(mio_loop_group(l));
}

/* start once on each loop's own thread before its ticks, stop once after. */
TEST(start_and_stop_run_on_each_loop)
{
    mio_group *g = new_group(3);
    mio_group_handler h = echo_handler;
    struct servers v;
    size_t i;

    servers_init(&v, g);
    main_thread = pthread_self();
    atomic_store(&on_main, 0);
    h.start = note_thread_and_tick;
    h.loop.timeout = tick_again;
    h.loop.tick = stop_in_tick;
    OK(mio_group_start(g, &h, v.ctx));
    OK(mio_group_join(g));
    CHECK_EQ(atomic_load(&on_main), 0);         /* every loop on a thread of its own */
    for (i = 0; i < 3; i++) {
        CHECK_EQ(atomic_load(&v.s[i].started), 1);
        CHECK_EQ(atomic_load(&v.s[i].stopped), 1);
        CHECK(!atomic_load(&v.s[i].wrong_loop));
    }
    CHECK(atomic_load(&v.s[1].ticks) >= 3);

    /* run: loop 0 on this thread, the others not. */
    atomic_store(&v.s[1].ticks, 0);
    OK(mio_group_run(g, &h, v.ctx));
    CHECK_EQ(atomic_load(&on_main), 1);
    for (i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&v.s[i].stopped), 2);
    mio_group_free(g);
}

/* A start that fails stops the others, and join returns its error; the
 * loop that failed runs no tick and no stop. */
TEST(failed_start_stops_the_group)
{
    mio_group *g = new_group(3);
    struct servers v;

    servers_init(&v, g);
    v.s[1].start_result = MIO_ENOMEM;
    OK(mio_group_start(g, &echo_handler, v.ctx));
    CHECK_EQ(mio_group_join(g), MIO_ENOMEM);
    CHECK_EQ(atomic_load(&v.s[1].ticks), 0);
    CHECK_EQ(atomic_load(&v.s[1].stopped), 0);
    CHECK_EQ(atomic_load(&v.s[0].stopped), atomic_load(&v.s[0].started));
    CHECK_EQ(atomic_load(&v.s[2].stopped), atomic_load(&v.s[2].started));
    /* Started again without the failure, it runs. */
    v.s[1].start_result = 0;
    v.s[1].index = 1;
    OK(mio_group_start(g, &echo_handler, v.ctx));
    mio_group_shutdown(g);
    OK(mio_group_join(g));
    CHECK_EQ(atomic_load(&v.s[1].stopped), 1);
    mio_group_free(g);
}

static void *shutdown_later(void *arg)
{
    test_sleep_ms(50);
    mio_group_shutdown(arg);
    return NULL;
}

TEST(shutdown_from_another_thread)
{
    mio_group *g = new_group(3);
    struct servers v;
    pthread_t t;
    size_t i;

    servers_init(&v, g);
    OK(mio_group_start(g, &echo_handler, v.ctx));
    CHECK(pthread_create(&t, NULL, shutdown_later, g) == 0);
    OK(mio_group_join(g));
    CHECK(pthread_join(t, NULL) == 0);
    for (i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&v.s[i].stopped), 1);
    /* A shutdown while nothing runs is forgotten by the next start. */
    mio_group_shutdown(g);
    OK(mio_group_start(g, &echo_handler, v.ctx));
    test_sleep_ms(20);
    for (i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&v.s[i].stopped), 1);
    CHECK(pthread_create(&t, NULL, shutdown_later, g) == 0);
    OK(mio_group_join(g));
    CHECK(pthread_join(t, NULL) == 0);
    for (i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&v.s[i].stopped), 2);
    mio_group_free(g);
}

static void shutdown_on_timeout(mio_loop *l, void *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    mio_group_shutdown(mio_loop_group(l));
}

static int start_timer_on_2(mio_loop *l, void *ctx)
{
    if (mio_loop_index(l) == 2)
        OK(mio_loop_timeout(l, NULL, 20 * MIO_MSEC, NULL));
    return srv_start(l, ctx);
}

static void loop_shutdown_on_timeout(mio_loop *l, void *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    mio_loop_shutdown(l);
    CHECK(!mio_loop_is_running(l));
}

TEST(shutdown_from_a_callback)
{
    mio_group *g = new_group(3);
    mio_group_handler h = echo_handler;
    struct servers v;
    size_t i;

    servers_init(&v, g);
    h.start = start_timer_on_2;
    h.loop.timeout = shutdown_on_timeout;
    OK(mio_group_start(g, &h, v.ctx));
    OK(mio_group_join(g));
    for (i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&v.s[i].stopped), 1);
    /* mio_loop_shutdown on one loop stops them all. */
    h.loop.timeout = loop_shutdown_on_timeout;
    OK(mio_group_run(g, &h, v.ctx));
    for (i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&v.s[i].stopped), 2);
    mio_group_free(g);
}

static atomic_int join_from_loop, free_from_loop_ok;

static int join_in_start(mio_loop *l, void *ctx)
{
    mio_group *g = mio_loop_group(l);
    mio_addr a = any_port();
    atomic_store(&join_from_loop, mio_group_join(g));
    if (mio_group_listen(g, &a, 0, MIO_GROUP_HANDOFF, NULL) == MIO_EBUSY &&
        mio_group_start(g, &echo_handler, NULL) == MIO_EBUSY)
        atomic_store(&free_from_loop_ok, 1);
    mio_group_free(g);      /* refused: the group goes on */
    mio_group_shutdown(g);
    return srv_start(l, ctx);
}

TEST(join_from_a_loop_is_edeadlk)
{
    mio_group *g = new_group(1);
    mio_group_handler h = echo_handler;
    struct servers v;

    servers_init(&v, g);
    h.start = join_in_start;
    OK(mio_group_run(g, &h, v.ctx));
    CHECK_EQ(atomic_load(&join_from_loop), MIO_EDEADLK);
    CHECK_EQ(atomic_load(&free_from_loop_ok), 1);
    CHECK_EQ(atomic_load(&v.s[0].stopped), 1);
    mio_group_free(g);
}

/* ---- messages ---- */

#define PRODUCERS 2

struct order {
    mio_group *group;
    size_t loops;
    long per_sender;                    /* messages from each sender to each loop */
    long next[MAX_LOOPS][PRODUCERS + MAX_LOOPS];    /* [receiver][sender] */
    long sent[MAX_LOOPS][MAX_LOOPS];    /* [loop][to]: what loops sent so far */
    atomic_long received, total;
    atomic_int bad;
};

static struct order order;

static void *encode(size_t sender, size_t to, long seq)
{
    return (void *)(uintptr_t)(((uintptr_t)sender << 40) | ((uintptr_t)to << 32) | (uintptr_t)seq);
}

static void send_all(size_t sender, size_t to)
{
    long seq;
    for (seq = 0; seq < order.per_sender; seq++) {
        int err;
        while ((err = mio_group_send(order.group, to, encode(sender, to, seq))) == MIO_EAGAIN)
            sched_yield();
        CHECK_EQ(err, 0);
    }
}

static void *producer(void *arg)
{
    size_t sender = (size_t)(uintptr_t)arg, to;
    for (to = 0; to < order.loops; to++)
        send_all(sender, to);
    return NULL;
}

static void order_notify(mio_loop *l, void *ctx, void *msg)
{
    uintptr_t m = (uintptr_t)msg;
    size_t sender = (size_t)(m >> 40), to = (size_t)((m >> 32) & 0xff);
    long seq = (long)(m & 0xffffffffu);
    size_t me = (size_t)mio_loop_index(l);

    (void)ctx;
    if (to != me || sender >= PRODUCERS + order.loops || order.next[me][sender] != seq)
        atomic_store(&order.bad, 1);
    else
        order.next[me][sender] = seq + 1;
    if (atomic_fetch_add(&order.received, 1) + 1 == atomic_load(&order.total))
        mio_group_shutdown(order.group);
}

/* Each loop sends to every loop (itself too), as much as the channels
 * take at a time, from a timeout it sets again until all is sent (waiting
 * in a callback for room that only a loop's ticks make could wait for
 * ever). */
static void order_timeout(mio_loop *l, void *ctx, void *arg)
{
    size_t me = (size_t)mio_loop_index(l), to;
    bool more = false;

    (void)ctx;
    (void)arg;
    for (to = 0; to < order.loops; to++) {
        long *seq = &order.sent[me][to];
        while (*seq < order.per_sender &&
               mio_group_send(order.group, to, encode(PRODUCERS + me, to, *seq)) == 0)
            ++*seq;
        more |= *seq < order.per_sender;
    }
    if (more)
        OK(mio_loop_timeout(l, NULL, MIO_MSEC, NULL));
}

static int order_start(mio_loop *l, void *ctx)
{
    order_timeout(l, ctx, NULL);
    return 0;
}

TEST(sends_arrive_in_order_at_their_loop)
{
    mio_group_config c;
    mio_group_handler h = { { NULL, order_notify, order_timeout, NULL, NULL }, order_start, NULL,
                            NULL };
    pthread_t t[PRODUCERS];
    size_t i;

    mio_group_config_default(&c);
    c.loops = 3;
    c.loop.notify_capacity = 64;        /* full now and then: senders retry */
    memset(&order, 0, sizeof order);
    order.group = new_group_with(&c);
    order.loops = 3;
    order.per_sender = test_scaled(20000);
    atomic_store(&order.total, order.per_sender * (long)(PRODUCERS + 3) * 3);
    OK(mio_group_start(order.group, &h, NULL));
    for (i = 0; i < PRODUCERS; i++)
        CHECK(pthread_create(&t[i], NULL, producer, (void *)(uintptr_t)i) == 0);
    for (i = 0; i < PRODUCERS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    OK(mio_group_join(order.group));
    CHECK_EQ(atomic_load(&order.bad), 0);
    CHECK_EQ(atomic_load(&order.received), atomic_load(&order.total));
    mio_group_free(order.group);
}

static atomic_long notified;

static void count_notify(mio_loop *l, void *ctx, void *msg)
{
    (void)ctx;
    (void)msg;
    if (atomic_fetch_add(&notified, 1) + 1 == 8)
        mio_group_shutdown(mio_loop_group(l));
}

/* Sent while the group does not run: queued, MIO_EAGAIN once full,
 * delivered at the next start. */
TEST(sends_queue_until_start)
{
    mio_group_config c;
    mio_group_handler h = { { NULL, count_notify, NULL, NULL, NULL }, NULL, NULL, NULL };
    mio_group *g;
    int i;

    mio_group_config_default(&c);
    c.loops = 2;
    c.loop.notify_capacity = 4;
    g = new_group_with(&c);
    for (i = 0; i < 4; i++) {
        OK(mio_group_send(g, 0, NULL));
        OK(mio_group_send(g, 1, NULL));
    }
    CHECK_EQ(mio_group_send(g, 0, NULL), MIO_EAGAIN);
    CHECK_EQ(mio_group_send(g, 1, NULL), MIO_EAGAIN);
    atomic_store(&notified, 0);
    OK(mio_group_run(g, &h, NULL));
    CHECK_EQ(atomic_load(&notified), 8);
    mio_group_free(g);
}

/* ---- listening modes: every byte served ---- */

/* `loops` loops serve `conns` connections (`batch` open at once, each
 * echoing `bytes` bytes) through a listener in `mode`; returns how many
 * connections each loop adopted in *adopted. */
static void serve(size_t loops, int mode, size_t conns, size_t bytes, size_t batch,
                  long adopted[MAX_LOOPS], long peak[MAX_LOOPS])
{
    mio_group_config c;
    mio_group *g;
    struct servers v;
    struct client_job job;
    long total = 0;
    size_t i;

    mio_group_config_default(&c);
    c.loops = loops;
    c.pin = mode == MIO_GROUP_REUSEPORT_CPU;
    if (c.pin) {
#if defined(__linux__)
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
        for (i = 0; i < loops; i++)
            if (!CPU_ISSET((int)(i % (size_t)online), &set))
                SKIP("CPU %zu is not this process's to pin a loop to", i % (size_t)online);
#else
        SKIP("SO_ATTACH_REUSEPORT_CBPF is Linux's");
#endif
    }
    g = new_group_with(&c);
    servers_init(&v, g);
    listen_or_skip(g, mode, NULL, &job.addr);
    OK(mio_group_start(g, &echo_handler, v.ctx));
    job.conns = conns;
    job.bytes = bytes;
    job.batch = batch;
    client_thread(&job);
    mio_group_shutdown(g);
    OK(mio_group_join(g));
    for (i = 0; i < loops; i++) {
        CHECK(!atomic_load(&v.s[i].wrong_loop));
        CHECK_EQ(atomic_load(&v.s[i].stopped), 1);
        adopted[i] = atomic_load(&v.s[i].adopted);
        peak[i] = atomic_load(&v.s[i].peak);
        total += adopted[i];
    }
    CHECK_EQ(total, (long)conns);
    mio_group_free(g);
}

static void print_spread(const char *what, size_t loops, const long *n)
{
    size_t i;
    fprintf(stderr, "%s:", what);
    for (i = 0; i < loops; i++)
        fprintf(stderr, " %ld", n[i]);
    fprintf(stderr, "\n");
}

TEST(reuseport_serves_every_byte)
{
    long adopted[MAX_LOOPS], peak[MAX_LOOPS];
    size_t i;

    serve(3, MIO_GROUP_REUSEPORT, (size_t)test_scaled(300), 20000, 50, adopted, peak);
    print_spread("connections per loop", 3, adopted);
    for (i = 0; i < 3; i++)
        CHECK(adopted[i] > 0);      /* by hash: all three get some of 300 */
}

TEST(reuseport_by_cpu_serves_every_byte)
{
    long adopted[MAX_LOOPS], peak[MAX_LOOPS];

    serve(2, MIO_GROUP_REUSEPORT_CPU, (size_t)test_scaled(200), 20000, 50, adopted, peak);
    print_spread("connections per loop", 2, adopted);
}

TEST(exclusive_serves_every_byte)
{
    long adopted[MAX_LOOPS], peak[MAX_LOOPS];
    size_t conns = (size_t)test_scaled(300), i;

    /* All connections open at once: the loops' shares stay near a third. */
    serve(3, MIO_GROUP_EXCLUSIVE, conns, 20000, conns, adopted, peak);
    print_spread("connections per loop", 3, adopted);
    print_spread("most held at once", 3, peak);
    for (i = 0; i < 3; i++)
        CHECK(adopted[i] > 0);
}

TEST(handoff_serves_every_byte_in_turn)
{
    long adopted[MAX_LOOPS], peak[MAX_LOOPS];
    size_t conns = (size_t)test_scaled(300), i;

    serve(3, MIO_GROUP_HANDOFF, conns, 20000, 50, adopted, peak);
    print_spread("connections per loop", 3, adopted);
    for (i = 0; i < 3; i++)
        CHECK(adopted[i] == (long)conns / 3 || adopted[i] == (long)conns / 3 + 1);
}

TEST(handoff_least_loaded_serves_every_byte)
{
    long adopted[MAX_LOOPS], peak[MAX_LOOPS];
    size_t conns = (size_t)test_scaled(300), i;

    serve(3, MIO_GROUP_HANDOFF_LEAST, conns, 20000, conns, adopted, peak);
    print_spread("connections per loop", 3, adopted);
    print_spread("most held at once", 3, peak);
    for (i = 0; i < 3; i++)
        CHECK(adopted[i] > 0);
}

/* Twice the loops of this machine's CPUs (on two cores, four): every mode
 * still serves every byte. */
TEST(oversubscribed_loops_stay_correct)
{
    static const int modes[] = { MIO_GROUP_HANDOFF, MIO_GROUP_HANDOFF_LEAST,
                                 MIO_GROUP_EXCLUSIVE, MIO_GROUP_REUSEPORT };
    long adopted[MAX_LOOPS], peak[MAX_LOOPS];
    size_t loops = 4, m;

    for (m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        mio_group_config c;
        mio_group *g;
        mio_addr a = any_port();
        int id;

        /* REUSEPORT is checked for here: the others run everywhere. */
        mio_group_config_default(&c);
        c.loops = 1;
        c.loop.backend = test_backend;
        OK(mio_group_new(&c, &g));
        id = mio_group_listen(g, &a, 0, modes[m], NULL);
        mio_group_free(g);
        if (id == MIO_ENOSYS)
            continue;
        serve(loops, modes[m], (size_t)test_scaled(200), 4000, 40, adopted, peak);
        print_spread("connections per loop", loops, adopted);
    }
}

/* Several listeners on one group, each with its own data. */
static atomic_long data_seen[2];

static void adopt_counting_data(mio_loop *l, void *ctx, mio_fd fd, void *data)
{
    atomic_fetch_add(&data_seen[(uintptr_t)data], 1);
    srv_adopt(l, ctx, fd, data);
}

TEST(listeners_bring_their_data)
{
    mio_group *g = new_group(2);
    mio_group_handler h = echo_handler;
    struct servers v;
    mio_addr a0, a1;
    struct client_job job;

    servers_init(&v, g);
    h.adopt = adopt_counting_data;
    CHECK_EQ(listen_or_skip(g, MIO_GROUP_HANDOFF, (void *)0, &a0), 0);
    CHECK_EQ(listen_or_skip(g, MIO_GROUP_EXCLUSIVE, (void *)1, &a1), 1);
    OK(mio_group_start(g, &h, v.ctx));
    job.bytes = 100;
    job.batch = 5;
    job.conns = 5;
    job.addr = a0;
    client_thread(&job);
    job.conns = 7;
    job.addr = a1;
    client_thread(&job);
    mio_group_shutdown(g);
    OK(mio_group_join(g));
    CHECK_EQ(atomic_load(&data_seen[0]), 5);
    CHECK_EQ(atomic_load(&data_seen[1]), 7);
    mio_group_free(g);
}

/* ---- shutdown under load: nothing left behind ---- */

struct hammer {
    mio_addr addr;
    atomic_int stop;
    atomic_long served;
};

/* Connects, sends, reads the echo, closes; again until told to stop.
 * Connections the group drops mid-way (it is being shut down) are fine. */
static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    mio_poll *p;
    mio_event ev[4];

    OK(mio_poll_new(&p));
    while (!atomic_load(&h->stop)) {
        char out[512], in[512];
        size_t got = 0;
        mio_fd fd;
        int64_t deadline = test_now_ns() + MIO_SEC;
        bool sent = false;

        memset(out, 'h', sizeof out);
        if (mio_tcp_connect(&h->addr, &fd) < 0) {
            test_sleep_ms(1);
            continue;
        }
        OK(mio_register(p, fd, 1, MIO_READABLE | MIO_WRITABLE));
        while (got < sizeof out && test_now_ns() < deadline && !atomic_load(&h->stop)) {
            ssize_t r;
            (void)mio_poll_wait(p, ev, 4, 10 * MIO_MSEC);
            if (!sent) {
                r = mio_write(fd, out, sizeof out);
                if (r == MIO_EAGAIN || r == MIO_ENOTCONN)
                    continue;
                if (r != (ssize_t)sizeof out)
                    break;
                sent = true;
            }
            r = mio_read(fd, in + got, sizeof in - got);
            if (r == MIO_EAGAIN)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got == sizeof out)
            atomic_fetch_add(&h->served, 1);
        OK(mio_deregister(p, fd));
        OK(mio_close(fd));
    }
    mio_poll_free(p);
    return NULL;
}

#define HAMMERS 3

/* The process's reserve descriptor (see mio_tcp_shed) is open for good
 * once a listener was made: made here before the count.  So are the
 * threads and descriptors a backend keeps for the whole process while any
 * of its polls lives (libkqueue's, behind the kqueue backend on Linux): the
 * tests that count hold a poll of their own meanwhile (test_poll). */
static void open_reserve(void)
{
    mio_addr a = any_port();
    mio_fd l;
    OK(mio_tcp_listen(&a, 0, &l));
    OK(mio_close(l));
}

static void shutdown_under_load(int mode)
{
    mio_group *g;
    struct servers v;
    struct hammer h;
    pthread_t t[HAMMERS];
    int fds_before, threads_before;
    mio_poll *first;
    size_t i;

    open_reserve();
    first_thread_made();
    first = test_poll();
    fds_before = test_open_fds();
    threads_before = threads_now();
    g = new_group(4);
    servers_init(&v, g);
    listen_or_skip(g, mode, NULL, &h.addr);
    atomic_init(&h.stop, 0);
    atomic_init(&h.served, 0);
    OK(mio_group_start(g, &echo_handler, v.ctx));
    if (threads_before >= 0)
        CHECK_EQ(threads_now(), threads_before + 4);
    for (i = 0; i < HAMMERS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer_thread, &h) == 0);
    while (atomic_load(&h.served) < test_scaled(200))
        test_sleep_ms(5);
    /* Mid-load: connections are being accepted, handed over, echoed. */
    mio_group_shutdown(g);
    OK(mio_group_join(g));
    if (threads_before >= 0)
        CHECK_EQ(threads_now(), threads_before + HAMMERS);
    for (i = 0; i < 4; i++) {
        CHECK_EQ(atomic_load(&v.s[i].stopped), 1);
        CHECK_EQ(v.s[i].live, 0);
    }
    mio_group_free(g);
    atomic_store(&h.stop, 1);
    for (i = 0; i < HAMMERS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    if (threads_before >= 0)
        CHECK_EQ(threads_now(), threads_before);
    CHECK_EQ(test_open_fds(), fds_before);
    mio_poll_free(first);
}

TEST(shutdown_under_load_handoff_leaves_nothing)
{
    shutdown_under_load(MIO_GROUP_HANDOFF);
}

TEST(shutdown_under_load_exclusive_leaves_nothing)
{
    shutdown_under_load(MIO_GROUP_EXCLUSIVE);
}

TEST(shutdown_under_load_reuseport_leaves_nothing)
{
    shutdown_under_load(MIO_GROUP_REUSEPORT);
}

/* Connections on their way to a loop that has stopped are closed when the
 * group is freed. */
TEST(free_closes_connections_not_yet_adopted)
{
    mio_group *g;
    mio_poll *first;
    mio_fd pair[2];
    int before;

    open_reserve();
    first = test_poll();
    before = test_open_fds();
    g = new_group(2);
    OK(mio_socketpair(pair));
    /* Handed over by hand: what the acceptor does, without a run. */
    {
        struct servers v;
        servers_init(&v, g);
        OK(mio_group_start(g, &echo_handler, v.ctx));
        mio_group_shutdown(g);
        OK(mio_group_join(g));
    }
    CHECK_EQ(mio_loop_handoff(mio_group_loop(g, 0), pair[0], 1, 1, NULL), 0);
    mio_group_free(g);
    OK(mio_close(pair[1]));
    CHECK_EQ(test_open_fds(), before);
    mio_poll_free(first);
}

/* ---- pinning ---- */

static atomic_int pinned_wrong, pinned_seen;

static int check_cpu(mio_loop *l, void *ctx)
{
    int want = mio_loop_index(l) % (int)(intptr_t)ctx, now;
#if defined(_WIN32)
    now = (int)GetCurrentProcessorNumber();
#elif defined(__linux__)
    now = sched_getcpu();
#else
    now = want;
#endif
    if (now != want)
        atomic_store(&pinned_wrong, 1);
    atomic_fetch_add(&pinned_seen, 1);
    mio_group_shutdown(mio_loop_group(l));
    return 0;
}

TEST(pinned_loops_run_on_their_cpus)
{
    mio_group_config c;
    mio_group_handler h = { { NULL, NULL, NULL, NULL, NULL }, check_cpu, NULL, NULL };
    mio_group *g = NULL;
    void *ctx[4];
    long online;
    int i, err;

#ifdef _WIN32
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    online = (long)si.dwNumberOfProcessors;
#else
    online = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    mio_group_config_default(&c);
    c.loops = 4;
    c.pin = true;
    c.loop.backend = test_backend;
    err = mio_group_new(&c, &g);
    if (err == MIO_ENOSYS)
        SKIP("this OS cannot pin a thread to a CPU");
    OK(err);
    for (i = 0; i < 4; i++)
        ctx[i] = (void *)(intptr_t)online;
    atomic_store(&pinned_seen, 0);
    err = mio_group_run(g, &h, ctx);
    if (err == MIO_EINVAL || err == MIO_EPERM)
        SKIP("pinning refused here (CPUs outside this process's set?): %s", mio_strerror(err));
    OK(err);
    CHECK_EQ(atomic_load(&pinned_seen), 4);
    CHECK_EQ(atomic_load(&pinned_wrong), 0);
    mio_group_free(g);
}

/* ---- hand-off with data in flight ---- */

#define HANDOFF_TOKEN 7

struct stream {
    mio_group *group;
    mio_fd server, writer;
    long total;                 /* bytes the writer sends */
    long got;                   /* bytes read so far (by whichever loop owns it) */
    long handoffs;
    atomic_int owner;           /* the loop that may see the token */
    atomic_int bad;             /* an event on another loop, or a byte wrong */
    atomic_int done;
};

static struct stream stream;

static unsigned char stream_byte(long at)
{
    return (unsigned char)(at % 251);
}

static void *stream_writer(void *arg)
{
    unsigned char buf[3000];
    long sent = 0;
    (void)arg;

    while (sent < stream.total && !atomic_load(&stream.done)) {
        long len = stream.total - sent < (long)sizeof buf ? stream.total - sent : (long)sizeof buf, i;
        ssize_t w;
        for (i = 0; i < len; i++)
            buf[i] = stream_byte(sent + i);
        w = mio_write(stream.writer, buf, (size_t)len);
        if (w > 0)
            sent += w;
        else if (w == MIO_EAGAIN)
            test_sleep_ms(1);
        else
            FAIL("writer: %s", mio_strerror((int)w));
    }
    return NULL;
}

/* Reads a little (not to MIO_EAGAIN: what is left waits in the kernel for
 * the next loop), checks it, and hands the connection to the next loop. */
static void stream_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    unsigned char buf[1500];
    int me = mio_loop_index(l);
    ssize_t r;
    int reads;

    (void)ctx;
    (void)readiness;
    if (token != HANDOFF_TOKEN || atomic_load(&stream.owner) != me) {
        atomic_store(&stream.bad, 1);
        return;
    }
    for (reads = 0; reads < 2; reads++) {
        r = mio_read(stream.server, buf, sizeof buf);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != stream_byte(stream.got + i))
                atomic_store(&stream.bad, 2);
        stream.got += r;
    }
    if (stream.got == stream.total) {
        atomic_store(&stream.done, 1);
        mio_group_shutdown(mio_loop_group(l));
        return;
    }
    {
        int to = (me + 1) % (int)mio_group_size(mio_loop_group(l)), err;
        /* Everything of the stream's is written before the hand-off: the
         * next loop may use it at once. */
        atomic_store(&stream.owner, to);
        stream.handoffs++;
        err = mio_loop_handoff(l, stream.server, HANDOFF_TOKEN, (size_t)to, &stream);
        if (err == MIO_EAGAIN) {
            atomic_store(&stream.owner, me);    /* kept: tried again at the next event */
            stream.handoffs--;
            return;
        }
        CHECK_EQ(err, 0);
    }
}

static void stream_adopt(mio_loop *l, void *ctx, mio_fd fd, void *data)
{
    (void)ctx;
    if (data != &stream || fd != stream.server || atomic_load(&stream.owner) != mio_loop_index(l))
        atomic_store(&stream.bad, 3);
    OK(mio_register(mio_loop_poll(l), fd, HANDOFF_TOKEN, MIO_READABLE));
}

static void stream_stop(mio_loop *l, void *ctx)
{
    (void)ctx;
    if (atomic_load(&stream.owner) == mio_loop_index(l))
        (void)mio_deregister(mio_loop_poll(l), stream.server);
}

static void handoff_in_flight(size_t loops)
{
    mio_group_handler h = { { stream_ready, NULL, NULL, NULL, NULL }, NULL, stream_stop,
                            stream_adopt };
    mio_fd pair[2];
    pthread_t t;

    memset(&stream, 0, sizeof stream);
    stream.group = new_group(loops);
    OK(mio_socketpair(pair));
    stream.server = pair[0];
    stream.writer = pair[1];
    stream.total = test_scaled(4000000);
    OK(mio_register(mio_loop_poll(mio_group_loop(stream.group, 0)), stream.server,
                    HANDOFF_TOKEN, MIO_READABLE));
    OK(mio_group_start(stream.group, &h, NULL));
    CHECK(pthread_create(&t, NULL, stream_writer, NULL) == 0);
    OK(mio_group_join(stream.group));
    atomic_store(&stream.done, 1);
    CHECK(pthread_join(t, NULL) == 0);
    fprintf(stderr, "%ld bytes, %ld hand-offs\n", stream.got, stream.handoffs);
    CHECK_EQ(atomic_load(&stream.bad), 0);
    CHECK_EQ(stream.got, stream.total);
    CHECK(stream.handoffs >= 10);
    mio_group_free(stream.group);
    OK(mio_close(pair[0]));
    OK(mio_close(pair[1]));
}

TEST(handoff_with_data_in_flight_loses_nothing)
{
    handoff_in_flight(2);
}

TEST(handoff_round_three_loops_loses_nothing)
{
    handoff_in_flight(3);
}

/* A batch that holds two events for one token: the hand-off made at the
 * first drops the second (two descriptors share the token here, the way
 * kqueue reports one twice). */
static atomic_int batch_calls, batch_adopted;
static mio_fd batch_fd[2];

static void batch_ready(mio_loop *l, void *ctx, mio_token token, uint32_t readiness)
{
    (void)ctx;
    (void)readiness;
    if (mio_loop_index(l) != 0 || token != 9) {
        atomic_store(&batch_calls, 100);
        return;
    }
    if (atomic_fetch_add(&batch_calls, 1) == 0) {
        /* Whichever fd this was, hand both: the later event is dropped. */
        OK(mio_loop_handoff(l, batch_fd[0], 9, 1, NULL));
        OK(mio_loop_handoff(l, batch_fd[1], 9, 1, NULL));
    }
}

static void batch_adopt(mio_loop *l, void *ctx, mio_fd fd, void *data)
{
    (void)ctx;
    (void)data;
    (void)fd;
    if (atomic_fetch_add(&batch_adopted, 1) + 1 == 2)
        mio_group_shutdown(mio_loop_group(l));
}

TEST(handoff_drops_later_events_of_the_batch)
{
    mio_group_handler h = { { batch_ready, NULL, NULL, NULL, NULL }, NULL, NULL, batch_adopt };
    mio_group *g = new_group(2);
    mio_fd a[2], b[2];
    mio_poll *p = mio_loop_poll(mio_group_loop(g, 0));

    OK(mio_socketpair(a));
    OK(mio_socketpair(b));
    batch_fd[0] = a[0];
    batch_fd[1] = b[0];
    CHECK_EQ(mio_write(a[1], "x", 1), 1);
    CHECK_EQ(mio_write(b[1], "y", 1), 1);
    test_settle();
    OK(mio_register(p, a[0], 9, MIO_READABLE | MIO_LEVEL));
    OK(mio_register(p, b[0], 9, MIO_READABLE | MIO_LEVEL));
    test_settle();
    OK(mio_group_run(g, &h, NULL));
    CHECK_EQ(atomic_load(&batch_calls), 1);
    CHECK_EQ(atomic_load(&batch_adopted), 2);
    mio_group_free(g);
    OK(mio_close(a[0]));
    OK(mio_close(a[1]));
    OK(mio_close(b[0]));
    OK(mio_close(b[1]));
}

/* ---- out of descriptors ---- */

#ifndef _WIN32
/* The queue is shed when accept says EMFILE, and the listener serves again
 * once descriptors are free: it is never left silent. */
POSIX_TEST(out_of_descriptors_sheds_and_serves_again)
{
    mio_group *g = new_group(2);
    struct servers v;
    mio_addr addr;
    mio_fd clients[6];
    int holes[1024], nholes = 0, closed = 0, open_ = 0, i, top;
    struct rlimit old, low;
    struct client_job job;
    int64_t deadline;

    servers_init(&v, g);
    listen_or_skip(g, MIO_GROUP_HANDOFF, NULL, &addr);
    for (i = 0; i < 6; i++)
        OK(mio_tcp_connect(&addr, &clients[i]));
    test_sleep_ms(50);      /* queued on the listener: nobody accepts yet */
    /* No free number below the highest open descriptor, and two above it
     * under the limit: room for two connections. */
    for (top = 0, i = 0; i < 1024; i++)
        if (fcntl(i, F_GETFD) >= 0)
            top = i;
    for (i = 0; i < top; i++)
        if (fcntl(i, F_GETFD) < 0)
            CHECK((holes[nholes++] = dup(0)) >= 0);
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = (rlim_t)top + 1 + 2;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    OK(mio_group_start(g, &echo_handler, v.ctx));
    /* Two adopted, the other four shed: their clients see the end. */
    deadline = test_now_ns() + LONG_WAIT;
    while (closed < 4 && test_now_ns() < deadline) {
        closed = open_ = 0;
        for (i = 0; i < 6; i++) {
            char c;
            ssize_t r = mio_read(clients[i], &c, 1);
            if (r == 0 || r == MIO_ECONNRESET)
                closed++;
            else if (r == MIO_EAGAIN)
                open_++;
        }
        test_sleep_ms(5);
    }
    while (atomic_load(&v.s[0].adopted) + atomic_load(&v.s[1].adopted) < 2 &&
           test_now_ns() < deadline)
        test_sleep_ms(5);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    for (i = 0; i < nholes; i++)
        close(holes[i]);
    CHECK_EQ(closed, 4);
    CHECK_EQ(open_, 2);
    CHECK_EQ(atomic_load(&v.s[0].adopted) + atomic_load(&v.s[1].adopted), 2);
    for (i = 0; i < 6; i++)
        OK(mio_close(clients[i]));
    /* Descriptors are back: new clients are served. */
    job.addr = addr;
    job.conns = 4;
    job.bytes = 1000;
    job.batch = 4;
    client_thread(&job);
    mio_group_shutdown(g);
    OK(mio_group_join(g));
    mio_group_free(g);
}
#endif
