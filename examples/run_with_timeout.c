/* Runs a command, streams its output (stdout to stdout, stderr to stderr)
 * as it comes, and ends it if it is still running after a deadline: SIGTERM
 * first, SIGKILL two seconds later (Windows: ends it at once).  Exits with
 * the command's status: its exit code, or 128 + the signal that ended it
 * (124 if the deadline ended it, as timeout(1) does).  SIGINT and SIGTERM
 * (Ctrl-C, Ctrl-Break) are passed on to the command.
 *
 *   run_with_timeout [-b BACKEND] SECONDS PROGRAM ARGS...
 *
 * One poll carries the command's two output pipes, its exit and the signal
 * source; the deadline is the wait's timeout. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"
#include "clock.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#endif

enum { TOKEN_OUT, TOKEN_ERR, TOKEN_EXIT, TOKEN_SIGNALS };   /* tokens */

#define KILL_GRACE_NS (2 * MIO_SEC)

#ifdef _WIN32
#define FORWARDED { SIGINT, SIGBREAK }
#else
#define FORWARDED { SIGINT, SIGTERM }
#endif

static void die(const char *what, int err)
{
    fprintf(stderr, "run_with_timeout: %s: %s\n", what, mio_strerror(err));
    exit(125);
}

/* Copies what the pipe has to f; false once the pipe is at its end.  It
 * reads until MIO_EAGAIN, not just to a short read: the command's exit may
 * close the pipe right behind its last bytes, in the same event, and no
 * event would come for an end of stream left unread. */
static bool drain(mio_fd fd, FILE *f)
{
    char buf[16384];
    for (;;) {
        ssize_t n = mio_read(fd, buf, sizeof buf);
        if (n > 0) {
            fwrite(buf, 1, (size_t)n, f);
            fflush(f);
            continue;
        }
        if (n == MIO_EAGAIN || n == MIO_EINTR)
            return true;
        return false;                   /* end of stream, or the pipe broke */
    }
}

int main(int argc, char **argv)
{
    const char *backend = NULL;
    int sigs[] = FORWARDED, arg = 1, err, open_pipes = 2, stage = 0;
    mio_process_options o;
    mio_process *child;
    mio_signal *sig;
    mio_poll *p;
    mio_fd pipes[3];
    mio_exit_status st;
    int64_t deadline;
    bool exited = false;

    if (argc > 2 && strcmp(argv[1], "-b") == 0) {
        backend = argv[2];
        arg = 3;
    }
    if (argc - arg < 2) {
        fprintf(stderr, "usage: %s [-b BACKEND] SECONDS PROGRAM ARGS...\n", argv[0]);
        return 125;
    }
    deadline = clock_now_ns() + (int64_t)(atof(argv[arg]) * 1e9);
#ifdef _WIN32
    /* The command's bytes go out as they came: no second "\r" per line. */
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
#endif

    if ((err = mio_poll_new_backend(backend, &p)) < 0)
        die(backend != NULL ? backend : "poll", err);
    if ((err = mio_signal_new(p, TOKEN_SIGNALS, sigs, sizeof sigs / sizeof sigs[0], &sig)) < 0)
        die("signals", err);
    memset(&o, 0, sizeof o);
    o.argv = (const char *const *)argv + arg + 1;
    o.stdio[1].how = MIO_STDIO_PIPE;
    o.stdio[2].how = MIO_STDIO_PIPE;
    if ((err = mio_process_spawn(&o, pipes, &child)) < 0)
        die(argv[arg + 1], err);    /* a missing program is said here, not by a child */
    if ((err = mio_register(p, pipes[1], TOKEN_OUT, MIO_READABLE)) < 0 ||
        (err = mio_register(p, pipes[2], TOKEN_ERR, MIO_READABLE)) < 0 ||
        (err = mio_process_register(p, child, TOKEN_EXIT)) < 0)
        die("register", err);

    /* Until the command has exited and both pipes are at their end (a
     * grandchild may hold them open past the exit: the deadline still
     * applies). */
    while (!exited || open_pipes > 0) {
        mio_event ev[8];
        int64_t left = deadline - clock_now_ns();
        int n, k;

        n = mio_poll_wait(p, ev, 8, left > 0 ? left : 0);
        if (n == MIO_EINTR)
            continue;
        if (n < 0)
            die("wait", n);
        if (n == 0 && clock_now_ns() >= deadline) {
            if (exited)
                break;                  /* the pipes outlive it: leave them */
            /* Stage 1: ask.  Stage 2: insist. */
            stage++;
            (void)mio_process_kill(child, stage == 1 ? SIGTERM : 9);
            deadline = clock_now_ns() + KILL_GRACE_NS;
            continue;
        }
        for (k = 0; k < n; k++) {
            switch (ev[k].token) {
            case TOKEN_OUT:
            case TOKEN_ERR: {
                int which = ev[k].token == TOKEN_OUT ? 1 : 2;
                if (pipes[which] != MIO_INVALID_FD &&
                    !drain(pipes[which], which == 1 ? stdout : stderr)) {
                    mio_deregister(p, pipes[which]);
                    mio_close(pipes[which]);
                    pipes[which] = MIO_INVALID_FD;
                    open_pipes--;
                }
                break;
            }
            case TOKEN_EXIT:
                if (!exited && (err = mio_process_try_wait(child, &st)) != MIO_EAGAIN) {
                    if (err < 0)
                        die("wait for the command", err);
                    exited = true;
                }
                break;
            case TOKEN_SIGNALS: {
                mio_signal_info info[2];
                int got = mio_signal_read(sig, info, 2), j;
                for (j = 0; j < got && !exited; j++)
                    (void)mio_process_kill(child, info[j].signo);
                break;
            }
            }
        }
    }
    if (!exited) {  /* only when the pipes ended and the deadline came */
        while (mio_process_try_wait(child, &st) == MIO_EAGAIN) {
            (void)mio_process_kill(child, 9);
            (void)mio_poll_wait(p, (mio_event[1]){ { 0, 0 } }, 1, 100 * MIO_MSEC);
        }
    }
    mio_process_free(child);
    mio_signal_free(sig);
    for (arg = 1; arg < 3; arg++) {
        if (pipes[arg] != MIO_INVALID_FD) {
            mio_deregister(p, pipes[arg]);
            mio_close(pipes[arg]);
        }
    }
    mio_poll_free(p);
    if (stage > 0)
        return 124;
    return st.signal != 0 ? 128 + st.signal : st.code;
}
