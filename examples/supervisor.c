/* A process supervisor: starts N workers, restarts a worker that dies,
 * restarts them all on SIGHUP, and on SIGTERM or SIGINT (Ctrl-C or
 * Ctrl-Break on Windows) stops them gracefully and exits.  Everything comes
 * through one poll: a signal source and one registration per worker.
 *
 *   supervisor [-b BACKEND] [-n N] [-- PROGRAM ARGS...]
 *
 * Without a program, each worker is this program run as `supervisor
 * --worker`, which waits for SIGTERM.  Every change is one line on stdout:
 *   started worker I pid P
 *   worker I pid P exited with code C | killed by signal S
 *   restarting all
 *   stopping
 *   stopped
 * A graceful stop sends SIGTERM to every worker (Windows: ends it) and waits
 * up to 5 seconds before SIGKILL. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"
#include "clock.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <unistd.h>
#endif

#define MAX_WORKERS 64
#define SIGNALS_TOKEN ((mio_token)MAX_WORKERS)  /* workers use 0..N-1 */
#define GRACE_NS (5 * MIO_SEC)

#ifdef _WIN32
#define STOP_SIGNALS { SIGINT, SIGBREAK, SIGTERM, MIO_SIGHUP }
#define SIGHUP_OR_NONE 0    /* no SIGHUP to send on Windows */
#else
#define STOP_SIGNALS { SIGINT, SIGTERM, SIGHUP }
#define SIGHUP_OR_NONE SIGHUP
#endif

struct worker {
    mio_process *proc;      /* NULL while not running */
};

static mio_poll *poll_;
static struct worker workers[MAX_WORKERS];
static int nworkers = 2;
static const char *const *worker_argv;

static void die(const char *what, int err)
{
    fprintf(stderr, "supervisor: %s: %s\n", what, mio_strerror(err));
    exit(1);
}

static void start(int i)
{
    mio_process_options o;
    int err;

    memset(&o, 0, sizeof o);
    o.argv = worker_argv;
    o.stdio[0].how = MIO_STDIO_NULL;    /* stdout and stderr: ours */
    if ((err = mio_process_spawn(&o, NULL, &workers[i].proc)) < 0)
        die("spawn", err);
    if ((err = mio_process_register(poll_, workers[i].proc, (mio_token)i)) < 0)
        die("register", err);
    printf("started worker %d pid %lld\n", i, (long long)mio_process_pid(workers[i].proc));
    fflush(stdout);
}

/* Worker i's exit event: reap it, say how it ended, start it again unless
 * the supervisor is stopping. */
static void exited(int i, bool stopping)
{
    struct worker *w = &workers[i];
    mio_exit_status st;
    int err;

    if (w->proc == NULL || (err = mio_process_try_wait(w->proc, &st)) == MIO_EAGAIN)
        return;             /* not yet: readiness is a hint */
    if (err < 0)
        die("wait", err);
    if (st.signal != 0)
        printf("worker %d pid %lld killed by signal %d\n", i,
               (long long)mio_process_pid(w->proc), st.signal);
    else
        printf("worker %d pid %lld exited with code %d\n", i,
               (long long)mio_process_pid(w->proc), st.code);
    fflush(stdout);
    mio_process_free(w->proc);          /* deregisters it */
    w->proc = NULL;
    if (!stopping)
        start(i);
}

static int running(void)
{
    int i, n = 0;
    for (i = 0; i < nworkers; i++)
        n += workers[i].proc != NULL;
    return n;
}

/* What `supervisor --worker` does: wait for SIGTERM, then exit 0.  Ctrl-C
 * (which reaches the whole terminal's process group, or console) is the
 * supervisor's to answer, so the worker only ignores it. */
static int worker_main(const char *backend)
{
    int sigs[] = STOP_SIGNALS, err;
    mio_signal_info info[4];
    mio_signal *s;
    mio_event ev[4];

    if ((err = mio_poll_new_backend(backend, &poll_)) < 0 ||
        (err = mio_signal_new(poll_, 1, sigs, sizeof sigs / sizeof sigs[0], &s)) < 0)
        die("worker", err);
    for (;;) {
        int n = mio_poll_wait(poll_, ev, 4, -1), k, got;
        if (n == MIO_EINTR)
            continue;
        if (n < 0)
            die("worker wait", n);
        got = n > 0 ? mio_signal_read(s, info, 4) : 0;
        for (k = 0; k < got; k++)
            if (info[k].signo == SIGTERM)
                goto out;
    }
out:
    mio_signal_free(s);
    mio_poll_free(poll_);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *self_argv[5];
    const char *backend = NULL;
    int sigs[] = STOP_SIGNALS, i, err;
    bool stopping = false;
    int64_t kill_at = 0;    /* while stopping: when the grace ends (-1: it did) */
    mio_signal *sig;
    mio_event ev[MAX_WORKERS + 1];

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--worker") == 0)
            return worker_main(backend);
        else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            nworkers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--") == 0 && i + 1 < argc) {
            worker_argv = (const char *const *)argv + i + 1;
            break;
        } else {
            fprintf(stderr, "usage: %s [-b BACKEND] [-n N] [-- PROGRAM ARGS...]\n", argv[0]);
            return 2;
        }
    }
    if (nworkers < 1 || nworkers > MAX_WORKERS) {
        fprintf(stderr, "supervisor: N is 1 to %d\n", MAX_WORKERS);
        return 2;
    }
    if (worker_argv == NULL) {
        self_argv[0] = argv[0];
        self_argv[1] = backend != NULL ? "-b" : "--worker";
        self_argv[2] = backend != NULL ? backend : NULL;
        self_argv[3] = backend != NULL ? "--worker" : NULL;
        worker_argv = self_argv;
    }
    if ((err = mio_poll_new_backend(backend, &poll_)) < 0)
        die(backend != NULL ? backend : "poll", err);
    if ((err = mio_signal_new(poll_, SIGNALS_TOKEN, sigs, sizeof sigs / sizeof sigs[0], &sig)) < 0)
        die("signals", err);
    for (i = 0; i < nworkers; i++)
        start(i);

    while (!stopping || running() > 0) {
        int64_t timeout = -1;
        int n, k;

        if (stopping && kill_at >= 0) {
            timeout = kill_at - clock_now_ns();
            if (timeout < 0)
                timeout = 0;
        }
        n = mio_poll_wait(poll_, ev, MAX_WORKERS + 1, timeout);
        if (n == MIO_EINTR)
            continue;               /* a signal came: its source reports it */
        if (n < 0)
            die("wait", n);
        if (n == 0 && stopping && kill_at >= 0 && clock_now_ns() >= kill_at) {
            /* The grace is over. */
            for (i = 0; i < nworkers; i++)
                if (workers[i].proc != NULL)
                    (void)mio_process_kill(workers[i].proc, 9);
            kill_at = -1;
            continue;
        }
        /* Signals first: a worker that died in the same batch as a stop
         * request is not started again. */
        for (k = 0; k < n; k++) {
            mio_signal_info info[8];
            int got, j;
            if (ev[k].token != SIGNALS_TOKEN)
                continue;
            while ((got = mio_signal_read(sig, info, 8)) > 0) {
                for (j = 0; j < got; j++) {
                    if (info[j].signo == SIGHUP_OR_NONE && !stopping) {
                        printf("restarting all\n");
                        fflush(stdout);
                        /* Each is started again as its exit comes in. */
                        for (i = 0; i < nworkers; i++)
                            if (workers[i].proc != NULL)
                                (void)mio_process_kill(workers[i].proc, SIGTERM);
                    } else if (info[j].signo != SIGHUP_OR_NONE && !stopping) {
                        printf("stopping\n");
                        fflush(stdout);
                        stopping = true;
                        kill_at = clock_now_ns() + GRACE_NS;
                        for (i = 0; i < nworkers; i++)
                            if (workers[i].proc != NULL)
                                (void)mio_process_kill(workers[i].proc, SIGTERM);
                    }
                }
                if (got < 8)
                    break;
            }
        }
        for (k = 0; k < n; k++)
            if (ev[k].token < (mio_token)nworkers)
                exited((int)ev[k].token, stopping);
    }
    printf("stopped\n");
    fflush(stdout);
    mio_signal_free(sig);
    mio_poll_free(poll_);
    return 0;
}
