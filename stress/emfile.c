/* Out of descriptors: a server at its descriptor limit while a client knocks
 * (connects, waits up to 3 s for an answer) every millisecond.  Measures the
 * server's CPU time (getrusage) and the knocks left unanswered, for a level
 * and an edge listener, answering MIO_EMFILE with mio_tcp_shed or (-n, for
 * comparison) not at all, just going back to the wait.
 *
 *   emfile [-b BACKEND] [-d SECONDS] [-n] */
#define _GNU_SOURCE
#include "mio.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void knock(const mio_addr *a, double seconds, int report)
{
    double end = now_s() + seconds;
    int counts[2] = { 0, 0 };
    while (now_s() < end) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct pollfd pfd;
        char c;
        if (s < 0 || connect(s, &a->u.sa, a->len) < 0)
            _exit(3);
        pfd.fd = s;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 3000) == 1 && read(s, &c, 1) <= 0)
            counts[0]++;
        else
            counts[1]++;
        close(s);
        usleep(1000);
    }
    if (write(report, counts, sizeof counts) != (ssize_t)sizeof counts)
        _exit(4);
    _exit(0);
}

static int run(const char *backend, uint32_t trigger, bool shed, double seconds)
{
    static int ballast[65536];
    struct rlimit old, lim;
    mio_poll *p;
    mio_addr a;
    mio_fd l, report[2];
    int nb = 0, fd, counts[2] = { 0, 0 }, status;
    long emfiles = 0, wakes = 0;
    double t0, c0, wall, cpu;
    pid_t pid;
    bool done = false;

    if (mio_poll_new_backend(backend, &p) != 0 || mio_addr_parse("127.0.0.1:0", &a) != 0 ||
        mio_tcp_listen(&a, 128, &l) != 0 || mio_local_addr(l, &a) != 0 ||
        mio_pipe(report) != 0 || mio_register(p, l, 1, MIO_READABLE | trigger) != 0 ||
        mio_register(p, report[0], 2, MIO_READABLE) != 0)
        return 1;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = 256;
    setrlimit(RLIMIT_NOFILE, &lim);
    while ((fd = fcntl(l, F_DUPFD_CLOEXEC, 0)) >= 0 && nb < 65536)
        ballast[nb++] = fd;
    pid = fork();
    if (pid == 0) {
        while (nb > 0)
            close(ballast[--nb]);
        knock(&a, seconds, report[1]);
    }
    t0 = now_s();
    c0 = cpu_s();
    while (!done) {
        mio_event ev[8];
        int n = mio_poll_wait(p, ev, 8, 10 * MIO_SEC), k;
        if (n <= 0)
            break;
        wakes++;
        for (k = 0; k < n; k++) {
            mio_fd c;
            int err;
            if (ev[k].token == 2) {
                done = read(report[0], counts, sizeof counts) == (ssize_t)sizeof counts;
                continue;
            }
            while ((err = mio_tcp_accept(l, &c, NULL)) == 0)
                mio_close(c);
            if (err == MIO_EMFILE) {
                emfiles++;
                if (shed)
                    mio_tcp_shed(l);
            }
        }
    }
    wall = now_s() - t0;
    cpu = cpu_s() - c0;
    while (nb > 0)
        close(ballast[--nb]);
    setrlimit(RLIMIT_NOFILE, &old);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    printf("emfile %-5s %-5s %-8s cpu %.3f s of %.3f s (%4.1f %%), %ld wakes, %ld EMFILE, "
           "knocks %d answered %d unanswered\n",
           backend, trigger == MIO_LEVEL ? "level" : "edge", shed ? "shed" : "no-shed",
           cpu, wall, 100 * cpu / wall, wakes, emfiles, counts[0], counts[1]);
    mio_close(l);
    mio_close(report[0]);
    mio_close(report[1]);
    mio_poll_free(p);
    /* With the shed: no spin (under half a core) and no client left waiting. */
    return shed && (cpu > wall / 2 || counts[1] != 0 || counts[0] == 0) ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *backend = "epoll";
    double seconds = 5;
    bool shed = true;
    int opt, rc;

    while ((opt = getopt(argc, argv, "b:d:n")) != -1) {
        if (opt == 'b')
            backend = optarg;
        else if (opt == 'd')
            seconds = atof(optarg);
        else if (opt == 'n')
            shed = false;
        else
            return 2;
    }
    rc = run(backend, MIO_LEVEL, shed, seconds);
    rc |= run(backend, MIO_EDGE, shed, seconds);
    return rc;
}
