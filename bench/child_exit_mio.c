/* From a child's exit to its event: spawn this program as a child, which
 * writes its monotonic clock to a pipe and exits at once; the parent,
 * waiting on the child's registration, reads the clock when the event comes.
 * One child at a time, n of them; p50 and p99 of exit-to-event, and the
 * spawn's own time.  path=sigchld takes the SIGCHLD path where the process
 * descriptor would serve.
 *
 *   child_exit_mio [backend=epoll|poll|kqueue] [path=native|sigchld] [n=N] */
#include <mio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern int mio__process_force_sigchld;  /* the library's switch for its tests */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MIO_SEC + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, int err)
{
    fprintf(stderr, "child_exit_mio: %s: %s\n", what, mio_strerror(err));
    exit(err == MIO_ENOSYS ? 77 : 1);
}

int main(int argc, char **argv)
{
    const char *backend = NULL, *path = "native";
    long n = 2000, i;
    int64_t *lat, *spawn;
    mio_poll *p;
    int err, k;

    if (argc == 2 && strcmp(argv[1], "child") == 0) {
        int64_t t = now_ns();
        ssize_t w = write(1, &t, sizeof t);
        _exit(w == (ssize_t)sizeof t ? 0 : 1);
    }
    for (k = 1; k < argc; k++) {
        if (strncmp(argv[k], "backend=", 8) == 0)
            backend = argv[k] + 8;
        else if (strncmp(argv[k], "path=", 5) == 0)
            path = argv[k] + 5;
        else if (strncmp(argv[k], "n=", 2) == 0)
            n = atol(argv[k] + 2);
    }
    mio__process_force_sigchld = strcmp(path, "sigchld") == 0;
    lat = calloc((size_t)n, sizeof *lat);
    spawn = calloc((size_t)n, sizeof *spawn);
    if (lat == NULL || spawn == NULL || n < 1)
        return 1;
    if ((err = mio_poll_new_backend(backend, &p)) < 0)
        die("poll", err);
    for (i = 0; i < n; i++) {
        const char *cargv[] = { "/proc/self/exe", "child", NULL };
        mio_process_options o;
        mio_process *c;
        mio_fd pipes[3];
        mio_event ev[4];
        mio_exit_status st;
        int64_t t0, at, t_child = 0;
        ssize_t got = 0;

        memset(&o, 0, sizeof o);
        cargv[0] = argv[0];
        o.argv = cargv;
        o.stdio[1].how = MIO_STDIO_PIPE;
        t0 = now_ns();
        if ((err = mio_process_spawn(&o, pipes, &c)) < 0)
            die("spawn", err);
        spawn[i] = now_ns() - t0;
        if ((err = mio_process_register(p, c, 1)) < 0)
            die("register", err);
        for (;;) {
            int r = mio_poll_wait(p, ev, 4, -1);
            if (r == MIO_EINTR)
                continue;
            if (r < 0)
                die("wait", r);
            at = now_ns();
            if (r > 0 && mio_process_try_wait(c, &st) == 0)
                break;
        }
        while (got < (ssize_t)sizeof t_child) {
            ssize_t m = mio_read(pipes[1], (char *)&t_child + got, sizeof t_child - (size_t)got);
            if (m <= 0)
                die("child's clock", m < 0 ? (int)m : MIO_EPIPE);
            got += m;
        }
        lat[i] = at - t_child;
        mio_close(pipes[1]);
        mio_process_free(c);
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    qsort(spawn, (size_t)n, sizeof *spawn, cmp);
    printf("child_exit_mio backend=%s path=%s n=%ld exit_event_p50_us=%.1f "
           "exit_event_p99_us=%.1f spawn_p50_us=%.1f spawn_p99_us=%.1f\n",
           mio_poll_backend(p), path, n, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3,
           spawn[n / 2] / 1e3, spawn[n * 99 / 100] / 1e3);
    mio_poll_free(p);
    free(lat);
    free(spawn);
    return 0;
}
