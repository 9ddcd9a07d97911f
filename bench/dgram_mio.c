/* Datagrams over loopback with libmio: how many 1200-byte datagrams a
 * second one thread moves, and its CPU time per datagram, one call per
 * datagram against batches, with segmentation offload and coalesced
 * receives.
 *
 *   dgram_mio side=send|recv how=single|batch|gso|gro [seconds=1] [runs=5]
 *             [size=1200] [batch=32] [segs=32] [backend=epoll]
 *
 * The measured thread runs on CPU 0, its partner on CPU 1 (where there is
 * one).  side=send: the measured thread sends to a socket that the partner
 * drains with batches: one mio_udp_send_to per datagram (single), `batch`
 * datagrams per mio_udp_send_batch (batch), or `batch` entries of `segs`
 * segments each (gso; without offload the library cuts them, and says so).
 * side=recv: the partner keeps the measured thread's socket full with
 * segmented batches, and the measured thread drains it on each readable
 * edge: one mio_udp_recv_from per datagram (single), `batch` per
 * mio_udp_recv_batch (batch), or batches with MIO_UDP_GRO on (gro: on
 * loopback the sender's segments reach it unsplit).  Prints the medians of
 * `runs` runs:
 *
 *   dgram lib=mio side= how= size= dgrams_per_s= cpu_ns= per_call= gso= */
#include "driver.h"
#include "mio.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ENTRIES 256

static struct {
    const char *side, *how, *backend;
    double seconds;
    int runs;
    size_t size, batch, segs;
} opt = { "send", "single", "epoll", 1.0, 5, 1200, 32, 32 };

static atomic_bool stop_partner;
static mio_addr send_to, recv_at;
static mio_fd sender, receiver;
static unsigned char *payload;

static void die(const char *what, int err)
{
    fprintf(stderr, "dgram_mio: %s: %s\n", what, err < 0 ? mio_strerror(err) : "failed");
    exit(1);
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    if (cpu >= sysconf(_SC_NPROCESSORS_ONLN))
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void parse(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '='), *v = eq != NULL ? eq + 1 : "";
        size_t k = eq != NULL ? (size_t)(eq - argv[i]) : 0;
#define KEY(s) (k == sizeof s - 1 && strncmp(argv[i], s, k) == 0)
        if (KEY("side"))
            opt.side = v;
        else if (KEY("how"))
            opt.how = v;
        else if (KEY("backend"))
            opt.backend = v;
        else if (KEY("seconds"))
            opt.seconds = atof(v);
        else if (KEY("runs"))
            opt.runs = atoi(v);
        else if (KEY("size"))
            opt.size = (size_t)atol(v);
        else if (KEY("batch"))
            opt.batch = (size_t)atol(v);
        else if (KEY("segs"))
            opt.segs = (size_t)atol(v);
        else {
            fprintf(stderr, "usage: dgram_mio side=send|recv how=single|batch|gso|gro "
                            "[seconds=] [runs=] [size=] [batch=] [segs=] [backend=]\n");
            exit(2);
        }
#undef KEY
    }
    if (opt.runs < 1 || opt.seconds <= 0 || opt.size < 1 || opt.size > 65000 ||
        opt.batch < 1 || opt.batch > MAX_ENTRIES || opt.segs < 1 || opt.segs > 64)
        die("bad options", 0);
}

/* `n` entries of `segs` segments of opt.size bytes each, to `to`. */
static mio_datagram *entries(size_t n, size_t segs, const mio_addr *to)
{
    mio_datagram *d = calloc(n, sizeof *d);
    size_t i;
    if (d == NULL)
        die("out of memory", 0);
    for (i = 0; i < n; i++) {
        d[i].buf = payload;
        d[i].len = opt.size * segs;
        d[i].segment_size = segs > 1 ? (uint16_t)opt.size : 0;
        if (to != NULL)
            d[i].peer = *to;
    }
    return d;
}

/* Receive entries with room for the largest coalesced receive. */
static mio_datagram *room(size_t n)
{
    mio_datagram *d = calloc(n, sizeof *d);
    size_t i;
    if (d == NULL)
        die("out of memory", 0);
    for (i = 0; i < n; i++) {
        if ((d[i].buf = malloc(65536)) == NULL)
            die("out of memory", 0);
        d[i].size = 65536;
    }
    return d;
}

/* ---- partners ---- */

/* Drains the receiver with batches until told to stop. */
static void *drain(void *arg)
{
    mio_datagram *d = room(64);
    mio_poll *p;
    mio_event ev[4];
    int err;
    (void)arg;
    pin(1);
    if ((err = mio_poll_new_backend(opt.backend, &p)) < 0 ||
        (err = mio_register(p, receiver, 1, MIO_READABLE)) < 0)
        die("drain", err);
    while (!atomic_load_explicit(&stop_partner, memory_order_relaxed)) {
        if (mio_udp_recv_batch(receiver, d, 64) == MIO_EAGAIN)
            mio_poll_wait(p, ev, 4, 10 * MIO_MSEC);
    }
    mio_deregister(p, receiver);
    mio_poll_free(p);
    return NULL;
}

/* Keeps the receiver's socket full with segmented batches. */
static void *flood(void *arg)
{
    mio_datagram *d = entries(8, 32, &recv_at);
    (void)arg;
    pin(1);
    while (!atomic_load_explicit(&stop_partner, memory_order_relaxed)) {
        size_t i;
        if (mio_udp_send_batch(sender, d, 8) < 0)
            sched_yield();
        for (i = 0; i < 8; i++) {     /* (a batch cut short moves its entry on) */
            d[i].buf = payload;
            d[i].len = opt.size * 32;
        }
    }
    free(d);
    return NULL;
}

/* ---- the measured side ---- */

struct result {
    double per_s, cpu_ns, per_call;
};

static struct result run_send(void)
{
    bool single = strcmp(opt.how, "single") == 0, gso = strcmp(opt.how, "gso") == 0;
    size_t segs = gso ? opt.segs : 1, n = opt.batch, k;
    mio_datagram *d = entries(n, segs, &send_to);
    int64_t start = bench_now_ns(), end = start + (int64_t)(opt.seconds * 1e9);
    int64_t cpu = thread_cpu_ns(), calls = 0;
    uint64_t count = 0;
    struct result r;

    do {
        for (k = 0; k < 16; k++) {
            if (single) {
                if (mio_udp_send_to(sender, payload, opt.size, &send_to) == (ssize_t)opt.size)
                    count++;
            } else {
                ssize_t m = mio_udp_send_batch(sender, d, n);
                size_t i;
                if (m > 0)
                    count += (uint64_t)m * segs;
                for (i = 0; i < n; i++) {
                    d[i].buf = payload;
                    d[i].len = opt.size * segs;
                }
            }
            calls++;
        }
    } while (bench_now_ns() < end);
    r.cpu_ns = (double)(thread_cpu_ns() - cpu) / (double)count;
    r.per_s = (double)count / ((double)(bench_now_ns() - start) / 1e9);
    r.per_call = (double)count / (double)calls;
    free(d);
    return r;
}

static struct result run_recv(mio_poll *p)
{
    bool single = strcmp(opt.how, "single") == 0, gro = strcmp(opt.how, "gro") == 0;
    mio_datagram *d = room(opt.batch);
    static unsigned char buf[65536];
    int64_t start, end, cpu, calls = 0;
    uint64_t count = 0;
    mio_event ev[4];
    struct result r;

    /* Full before the clock starts. */
    mio_poll_wait(p, ev, 4, 100 * MIO_MSEC);
    start = bench_now_ns();
    end = start + (int64_t)(opt.seconds * 1e9);
    cpu = thread_cpu_ns();
    while (bench_now_ns() < end) {
        if (single) {
            ssize_t n;
            while ((n = mio_udp_recv_from(receiver, buf, sizeof buf, NULL)) >= 0) {
                count++;
                calls++;
            }
            calls++;
        } else {
            ssize_t n;
            do {
                ssize_t i;
                n = mio_udp_recv_batch(receiver, d, opt.batch);
                calls++;
                for (i = 0; i < n; i++)
                    count += gro && d[i].segment_size != 0
                                 ? (d[i].len + d[i].segment_size - 1) / d[i].segment_size
                                 : 1;
            } while (n == (ssize_t)opt.batch);
        }
        mio_poll_wait(p, ev, 4, 10 * MIO_MSEC);
    }
    r.cpu_ns = (double)(thread_cpu_ns() - cpu) / (double)count;
    r.per_s = (double)count / ((double)(bench_now_ns() - start) / 1e9);
    r.per_call = (double)count / (double)calls;
    (void)gro;
    return r;
}

int main(int argc, char **argv)
{
    bool send_side, gso_used = false;
    double rates[64], cpus[64], per_call[64];
    mio_addr lo;
    mio_udp_capabilities caps;
    int i, err;

    parse(argc, argv);
    send_side = strcmp(opt.side, "send") == 0;
    if ((payload = malloc(65536)) == NULL)
        die("out of memory", 0);
    memset(payload, 'd', 65536);
    if (opt.runs > 64)
        opt.runs = 64;
    pin(0);
    for (i = 0; i < opt.runs; i++) {
        pthread_t partner;
        mio_poll *p = NULL;
        struct result r;

        if ((err = mio_addr_parse("127.0.0.1:0", &lo)) < 0 ||
            (err = mio_udp_bind(&lo, &sender)) < 0 || (err = mio_udp_bind(&lo, &receiver)) < 0 ||
            (err = mio_local_addr(receiver, &recv_at)) < 0)
            die("sockets", err);
        send_to = recv_at;
        (void)mio_sockopt_set(receiver, MIO_SO_RCVBUF, 4 << 20);
        (void)mio_sockopt_set(sender, MIO_SO_SNDBUF, 4 << 20);
        if (strcmp(opt.how, "gro") == 0 && (err = mio_udp_enable(receiver, MIO_UDP_GRO)) < 0)
            die("MIO_UDP_GRO", err);
        if ((err = mio_udp_caps(sender, &caps)) < 0)
            die("mio_udp_caps", err);
        gso_used = (caps.enabled & MIO_UDP_GSO) != 0;
        atomic_store(&stop_partner, false);
        if (pthread_create(&partner, NULL, send_side ? drain : flood, NULL) != 0)
            die("pthread_create", 0);
        if (send_side) {
            r = run_send();
        } else {
            if ((err = mio_poll_new_backend(opt.backend, &p)) < 0 ||
                (err = mio_register(p, receiver, 1, MIO_READABLE)) < 0)
                die("poll", err);
            r = run_recv(p);
            mio_deregister(p, receiver);
            mio_poll_free(p);
        }
        atomic_store(&stop_partner, true);
        pthread_join(partner, NULL);
        rates[i] = r.per_s;
        cpus[i] = r.cpu_ns;
        per_call[i] = r.per_call;
        mio_close(sender);
        mio_close(receiver);
    }
    printf("dgram lib=mio side=%s how=%s size=%zu dgrams_per_s=%.0f cpu_ns=%.1f per_call=%.1f "
           "gso=%d\n", opt.side, opt.how, opt.size, bench_median(rates, opt.runs),
           bench_median(cpus, opt.runs), bench_median(per_call, opt.runs), gso_used);
    return 0;
}
