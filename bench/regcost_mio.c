/* What one registration costs, per call, over n socket pairs' read ends: the
 * system calls a register or deregister makes on each backend, alone, and
 * libmio's calls themselves.
 *   getppid          a system call that does nothing: entry and exit alone
 *   fstat            what uring's register and deregister make, each once
 *   fcntl            F_GETFD: the cheapest call that still says EBADF
 *   epoll_add/del    EPOLL_CTL_ADD / EPOLL_CTL_DEL, what epoll's make
 *   mio_epoll_*, mio_uring_*   mio_register / mio_deregister on that backend
 *                    (uring's changes then wait for the next wait, which
 *                    the figures leave out)
 * Each figure is wall-clock ns per call, the median of `runs` passes over
 * the n descriptors; cpu_* are the same in the process's CPU time. */
#include "driver.h"
#include "mio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

enum { GETPPID, FSTAT, FCNTL, EP_ADD, EP_DEL, M_EP_REG, M_EP_DEREG, M_UR_REG, M_UR_DEREG, KINDS };

static const char *const names[KINDS] = { "getppid", "fstat", "fcntl", "epoll_add", "epoll_del",
                                          "mio_epoll_register", "mio_epoll_deregister",
                                          "mio_uring_register", "mio_uring_deregister" };

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    double *wall[KINDS], *cpu[KINDS];
    mio_poll *ep = NULL, *ur = NULL;
    int *fds, epfd, k, r;
    long i, n;

    bench_parse(argc, argv, &o);
    n = o.n;
    bench_need_fds(2 * n + 64);
    fds = malloc(sizeof *fds * 2 * (size_t)n);
    if (fds == NULL)
        bench_die("out of memory", 0);
    for (k = 0; k < KINDS; k++) {
        wall[k] = malloc(sizeof(double) * (size_t)o.runs);
        cpu[k] = malloc(sizeof(double) * (size_t)o.runs);
        if (wall[k] == NULL || cpu[k] == NULL)
            bench_die("out of memory", 0);
    }
    for (i = 0; i < n; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds + 2 * i) < 0)
            bench_die("socketpair", -errno);
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        bench_die("epoll_create1", -errno);
    if ((r = mio_poll_new_backend("epoll", &ep)) < 0)
        bench_die("mio_poll_new_backend(epoll)", r);
    if (mio_poll_new_backend("uring", &ur) < 0)
        ur = NULL;  /* refused here: its figures are left out */

    for (r = 0; r < o.runs; r++) {
        for (k = 0; k < KINDS; k++) {
            int64_t t0, c0;
            mio_event ev[8];

            if ((k == M_UR_REG || k == M_UR_DEREG) && ur == NULL)
                continue;
            t0 = bench_now_ns();
            c0 = cpu_ns();
            for (i = 0; i < n; i++) {
                int fd = fds[2 * i], err = 0;
                struct epoll_event e;
                struct stat st;

                switch (k) {
                case GETPPID: (void)getppid(); break;
                case FSTAT: err = fstat(fd, &st); break;
                case FCNTL: err = fcntl(fd, F_GETFD) < 0 ? -1 : 0; break;
                case EP_ADD:
                    e.events = EPOLLIN | EPOLLET;
                    e.data.u64 = (uint64_t)i;
                    err = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
                    break;
                case EP_DEL: err = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); break;
                case M_EP_REG: err = mio_register(ep, fd, (mio_token)i, MIO_READABLE); break;
                case M_EP_DEREG: err = mio_deregister(ep, fd); break;
                case M_UR_REG: err = mio_register(ur, fd, (mio_token)i, MIO_READABLE); break;
                case M_UR_DEREG: err = mio_deregister(ur, fd); break;
                }
                if (err < 0)
                    bench_die(names[k], err == -1 ? -errno : err);
            }
            cpu[k][r] = (double)(cpu_ns() - c0) / (double)n;
            wall[k][r] = (double)(bench_now_ns() - t0) / (double)n;
            /* uring: the changes go to the kernel, outside the figures. */
            if (k == M_UR_REG || k == M_UR_DEREG)
                (void)mio_poll_wait(ur, ev, 8, 0);
        }
    }

    printf("regcost lib=mio n=%ld runs=%d", n, o.runs);
    for (k = 0; k < KINDS; k++)
        if (!((k == M_UR_REG || k == M_UR_DEREG) && ur == NULL))
            printf(" %s_ns=%.0f cpu_%s_ns=%.0f", names[k], bench_median(wall[k], o.runs), names[k],
                   bench_median(cpu[k], o.runs));
    printf("\n");
    mio_poll_free(ep);
    mio_poll_free(ur);
    close(epfd);
    for (i = 0; i < 2 * n; i++)
        close(fds[i]);
    for (k = 0; k < KINDS; k++) {
        free(wall[k]);
        free(cpu[k]);
    }
    free(fds);
    return 0;
}
