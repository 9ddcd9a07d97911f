/* Child processes on POSIX: fork and exec by hand, the exit as an event,
 * reaping by process id only.
 *
 * Spawn.  Everything the child needs is made in the parent first: the pipes
 * (close-on-exec, the parent's end non-blocking, the child's blocking), the
 * null device, the list of paths to try (the PATH search, done here because
 * execvp is not async-signal-safe), a close-on-exec error pipe.  The parent
 * blocks every signal in its own thread for the moment of the fork, so that
 * no handler (libmio's, which writes to descriptors the child shares, or the
 * program's) runs in the child before the child has set every disposition
 * back to its default; the thread's mask is put back right after.  The
 * child then only makes async-signal-safe calls: it moves its standard
 * streams into place (any of them may be another's source, so sources below
 * 3 are first moved above 2), changes directory, marks every descriptor
 * above 2 close-on-exec (close_range, or one by one), unblocks every signal
 * and execs.  If every exec fails it writes its errno to the error pipe and
 * exits; the parent reads the pipe until end of file (the exec closed it),
 * so a failed exec is the spawn's error in the parent, and that child is
 * reaped at once.
 *
 * Other threads.  Every descriptor made here is close-on-exec from its
 * creation, so a concurrent fork-and-exec elsewhere in the program cannot
 * keep one.  Spawns through libmio take turns from pipe creation until the
 * parent has closed the child's ends, so that no child of ours holds
 * another spawn's error pipe open (which would delay that spawn's answer
 * until our child's exec).  A program that forks without exec while a spawn
 * is under way gives its forked child a copy of the error pipe's write end:
 * the spawn then waits for that child to exit or exec.
 *
 * The exit as an event, by registration: on Linux the child's process
 * descriptor (pidfd_open: the child is not reaped until libmio reaps it, so
 * its pid cannot name another process meanwhile), registered like any
 * descriptor; on a kqueue poll EVFILT_PROC with NOTE_EXIT (the backend's
 * `proc`); else a signal source of SIGCHLD that wakes only for this child
 * (signal.c), which also serves a kqueue that refuses a zombie.
 *
 * Reaping: waitpid(pid) only, never -1: a child that is not ours is never
 * touched. */
#include "../registry.h"
#include "../poll_hooks.h"
#include "../signals.h"
#include "net.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

extern char **environ;

/* Tests set it to take the SIGCHLD path where pidfds and kqueue would do. */
int mio__process_force_sigchld;

enum { RUNNING, EXITED, LOST };
enum { NONE, BY_PIDFD, BY_KQUEUE, BY_SIGCHLD };

struct mio_process {
    pid_t pid;
    int state;                  /* RUNNING, EXITED (reaped), LOST (reaped by others) */
    mio_exit_status status;     /* once EXITED */
    mio_poll *poll;             /* registered with, or NULL */
    int by;                     /* how the exit reaches that poll */
    int pidfd;                  /* Linux, made at the first registration; or -1 */
    mio_signal *chld;           /* BY_SIGCHLD */
};

static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the child ---- */

struct plan {
    int src[3];                 /* what each stream becomes; -1: closed */
    bool inherit[3];            /* left as it is */
    const char *cwd;
    char *const *argv;
    char *const *envp;
    char **paths;               /* NULL-terminated, tried in order */
    int errfd;                  /* the error pipe's write end */
    int maxfd;                  /* for marking descriptors without close_range */
};

#if defined(__linux__) && defined(SYS_close_range)
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#endif

static void cloexec_above_2(const struct plan *pl)
{
    int fd;
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    for (fd = 3; fd < pl->maxfd; fd++) {
        int f = fcntl(fd, F_GETFD);
        if (f >= 0 && !(f & FD_CLOEXEC))
            (void)fcntl(fd, F_SETFD, f | FD_CLOEXEC);
    }
}

static void fail(const struct plan *pl, int err)
{
    ssize_t w;
    do
        w = write(pl->errfd, &err, sizeof err);
    while (w < 0 && errno == EINTR);
    _exit(127);
}

/* After fork, in the child: async-signal-safe calls only.  Every signal is
 * blocked (the parent's doing) until just before the exec. */
static void child(struct plan *pl)
{
    struct sigaction dfl;
    sigset_t none;
    int i, sig, err = ENOENT;
    bool eacces = false;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL);   /* SIGKILL, SIGSTOP refuse: fine */

    for (i = 0; i < 3; i++)
        if (!pl->inherit[i] && pl->src[i] >= 0 && pl->src[i] < 3 && pl->src[i] != i &&
            (pl->src[i] = fcntl(pl->src[i], F_DUPFD_CLOEXEC, 3)) < 0)
            fail(pl, errno);
    for (i = 0; i < 3; i++) {
        if (pl->inherit[i] || pl->src[i] < 0)
            continue;
        if (pl->src[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(pl->src[i], i) < 0)
            fail(pl, errno);
    }
    for (i = 0; i < 3; i++)
        if (!pl->inherit[i] && pl->src[i] < 0)
            (void)close(i);
    if (pl->cwd != NULL && chdir(pl->cwd) < 0)
        fail(pl, errno);
    cloexec_above_2(pl);
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);

    for (i = 0; pl->paths[i] != NULL; i++) {
        execve(pl->paths[i], pl->argv, pl->envp);
        err = errno;
        if (err == EACCES)
            eacces = true;
        else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
                 err != ETIMEDOUT)
            break;                  /* found, but it would not run */
    }
    fail(pl, eacces && (err == ENOENT || err == ENOTDIR) ? EACCES : err);
}

/* ---- the parent ---- */

/* Linux: vfork, which copies no page tables (a fork of a large process
 * costs milliseconds): this thread waits until the child's exec or exit,
 * the other threads run on.  The child above makes only system calls on
 * its own stack and writes nothing of the parent's but `pl` and errno, and
 * all its signals are blocked until they are set to their defaults (its
 * handler table is its own).  The child never returns from the function
 * that called vfork, whose frame the parent goes on with.  Elsewhere
 * fork. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static pid_t launch(struct plan *pl)
{
#ifdef __linux__
    pid_t pid = vfork();
#else
    pid_t pid = fork();
#endif
    if (pid == 0)
        child(pl);                  /* never returns */
    return pid;
}

/* The paths to try, execvp's way: file itself if it has a '/', else each
 * directory of path (an empty one is the current directory). */
static char **search(const char *file, const char *path)
{
    size_t flen = strlen(file), n = 1, size = 0, i = 0;
    const char *p;
    char **list, *at;

    if (strchr(file, '/') != NULL || path == NULL) {
        list = mio__malloc(2 * sizeof *list + flen + 1);
        if (list == NULL)
            return NULL;
        list[0] = memcpy((char *)(list + 2), file, flen + 1);
        list[1] = NULL;
        return list;
    }
    for (p = path; *p != '\0'; p++)
        n += *p == ':';
    size = (n + 1) * sizeof *list + strlen(path) + n * (flen + 3);
    list = mio__malloc(size);
    if (list == NULL)
        return NULL;
    at = (char *)(list + n + 1);
    for (p = path;; ) {
        const char *end = strchr(p, ':');
        size_t dlen = end != NULL ? (size_t)(end - p) : strlen(p);
        list[i++] = at;
        if (dlen == 0) {
            *at++ = '.';
        } else {
            memcpy(at, p, dlen);
            at += dlen;
        }
        *at++ = '/';
        memcpy(at, file, flen + 1);
        at += flen + 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    list[i] = NULL;
    return list;
}

static const char *path_of(const char *const *env)
{
    const char *const *e;
    const char *path;

    if (env != NULL) {
        for (e = env; *e != NULL; e++)
            if (strncmp(*e, "PATH=", 5) == 0)
                return *e + 5;
    }
    path = getenv("PATH");
    return path != NULL ? path : "/usr/bin:/bin";
}

/* A pipe whose both ends are close-on-exec and blocking. */
static int error_pipe(int fds[2])
{
    int err = mio__os_pipe(fds), i;
    if (err < 0)
        return err;
    for (i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) & ~O_NONBLOCK) < 0) {
            err = mio__err();
            close(fds[0]);
            close(fds[1]);
            return err;
        }
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        (void)close(*fd);
    *fd = -1;
}

int mio_process_spawn(const mio_process_options *o, mio_fd pipes[3], mio_process **out)
{
    struct plan pl;
    mio_process *c = NULL;
    int parent_end[3] = { -1, -1, -1 }, made[3] = { -1, -1, -1 }, errp[2] = { -1, -1 };
    sigset_t all, old;
    struct rlimit rl;
    int i, err = 0, child_err = 0;
    ssize_t got;
    pid_t pid;

    if (out != NULL)
        *out = NULL;
    if (pipes != NULL)
        for (i = 0; i < 3; i++)
            pipes[i] = MIO_INVALID_FD;
    if (o == NULL || out == NULL || o->argv == NULL || o->argv[0] == NULL)
        return MIO_EINVAL;
    for (i = 0; i < 3; i++) {
        int how = o->stdio[i].how;
        if (how < MIO_STDIO_INHERIT || how > MIO_STDIO_PIPE ||
            (how == MIO_STDIO_PIPE && pipes == NULL))
            return MIO_EINVAL;
        if (how == MIO_STDIO_FD && (o->stdio[i].fd < 0 || fcntl(o->stdio[i].fd, F_GETFD) < 0))
            return MIO_EBADF;
    }

    memset(&pl, 0, sizeof pl);
    pl.cwd = o->cwd;
    pl.argv = (char *const *)o->argv;
    pl.envp = o->env != NULL ? (char *const *)o->env : environ;
    pl.maxfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
               rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    pl.paths = search(o->file != NULL ? o->file : o->argv[0], path_of(o->env));
    c = mio__calloc(1, sizeof *c);
    if (pl.paths == NULL || c == NULL) {
        err = MIO_ENOMEM;
        goto out;
    }

    pthread_mutex_lock(&spawn_lock);
    for (i = 0; i < 3 && err == 0; i++) {
        int fds[2];
        switch (o->stdio[i].how) {
        case MIO_STDIO_INHERIT:
            pl.inherit[i] = true;
            pl.src[i] = i;
            break;
        case MIO_STDIO_CLOSE:
            pl.src[i] = -1;
            break;
        case MIO_STDIO_FD:
            pl.src[i] = o->stdio[i].fd;
            break;
        case MIO_STDIO_NULL:
            made[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (made[i] < 0)
                err = mio__err();
            pl.src[i] = made[i];
            break;
        case MIO_STDIO_PIPE:
            if ((err = mio__os_pipe(fds)) < 0)
                break;
            /* stdin: the child reads fds[0]; stdout, stderr: it writes fds[1]. */
            made[i] = i == 0 ? fds[0] : fds[1];
            parent_end[i] = i == 0 ? fds[1] : fds[0];
            if (fcntl(made[i], F_SETFL, fcntl(made[i], F_GETFL) & ~O_NONBLOCK) < 0)
                err = mio__err();
            pl.src[i] = made[i];
            break;
        }
    }
    if (err == 0)
        err = error_pipe(errp);
    if (err < 0) {
        pthread_mutex_unlock(&spawn_lock);
        goto out;
    }
    pl.errfd = errp[1];

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = launch(&pl);
    if (pid < 0)
        err = mio__err();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close_fd(&errp[1]);
    for (i = 0; i < 3; i++)
        close_fd(&made[i]);
    pthread_mutex_unlock(&spawn_lock);
    if (err < 0)
        goto out;

    /* End of file: the exec closed the pipe.  Anything else: its errno. */
    do
        got = read(errp[0], &child_err, sizeof child_err);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof child_err) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        err = child_err > 0 ? -child_err : MIO_EINVAL;
        goto out;
    }

    c->pid = pid;
    c->state = RUNNING;
    c->pidfd = -1;
    for (i = 0; i < 3; i++) {
        if (parent_end[i] >= 0) {
            pipes[i] = parent_end[i];
            parent_end[i] = -1;
        }
    }
    MIO_TRACE(MIO_LOG_DEBUG, "process %p: spawned %s, pid %ld", (void *)c, pl.paths[0], (long)pid);
    *out = c;
    c = NULL;
out:
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    for (i = 0; i < 3; i++) {
        close_fd(&made[i]);
        close_fd(&parent_end[i]);
    }
    mio__free(pl.paths);
    mio__free(c);
    return err;
}

int64_t mio_process_pid(const mio_process *c)
{
    return c != NULL ? (int64_t)c->pid : -1;
}

int mio_process_try_wait(mio_process *c, mio_exit_status *out)
{
    int st;
    pid_t r;

    if (c == NULL)
        return MIO_EINVAL;
    if (c->state == RUNNING) {
        do
            r = waitpid(c->pid, &st, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0)
            return MIO_EAGAIN;
        if (r < 0) {
            if (errno != ECHILD)
                return mio__err();
            c->state = LOST;
        } else {
            c->state = EXITED;
            c->status.code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
            c->status.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            MIO_TRACE(MIO_LOG_DEBUG, "process %p: pid %ld reaped, code %d signal %d", (void *)c,
                      (long)c->pid, c->status.code, c->status.signal);
        }
    }
#if MIO_CHECKS
    if (c->pidfd >= 0)
        mio__io_done(c->pidfd);     /* reaping wakes the descriptor again */
#endif
    if (c->state == LOST)
        return MIO_ECHILD;
    if (out != NULL)
        *out = c->status;
    return 0;
}

int mio_process_kill(mio_process *c, int signo)
{
    if (c == NULL || signo < 0)
        return MIO_EINVAL;
    if (c->state != RUNNING)
        return MIO_ESRCH;       /* its pid may name another process by now */
    return kill(c->pid, signo) == 0 ? 0 : mio__err();
}

int mio_process_register(mio_poll *p, mio_process *c, mio_token token)
{
    int err = MIO_ENOSYS;

    if (p == NULL || c == NULL || token == MIO_TOKEN_RESERVED)
        return MIO_EINVAL;
    if (c->poll != NULL)
        return MIO_EEXIST;
    if (c->state != RUNNING)
        return c->state == LOST ? MIO_ECHILD : MIO_ESRCH;
    if (!mio__process_force_sigchld && p->ops->proc != NULL) {
        err = p->ops->proc(p, c->pid, token, true);
        if (err == 0)
            c->by = BY_KQUEUE;
        else if (err != MIO_ESRCH)  /* ESRCH: a zombie, which SIGCHLD's path sees */
            return err;
    }
#if defined(__linux__) && defined(SYS_pidfd_open)
    if (c->by == NONE && !mio__process_force_sigchld) {
        if (c->pidfd < 0)
            c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);     /* close-on-exec */
        if (c->pidfd >= 0) {
            err = mio_register(p, c->pidfd, token, MIO_READABLE);
            if (err < 0)
                return err;
            c->by = BY_PIDFD;
        }
    }
#endif
    if (c->by == NONE) {
        err = mio__signal_child(p, token, c->pid, &c->chld);
        if (err < 0)
            return err;
        c->by = BY_SIGCHLD;
    }
    c->poll = p;
    MIO_TRACE(MIO_LOG_DEBUG, "poll %p: register process %p token 0x%llx (%s)", (void *)p, (void *)c,
              (unsigned long long)token,
              c->by == BY_PIDFD ? "pidfd" : c->by == BY_KQUEUE ? "EVFILT_PROC" : "SIGCHLD");
    return 0;
}

int mio_process_deregister(mio_poll *p, mio_process *c)
{
    int err = 0;

    if (p == NULL || c == NULL)
        return MIO_EINVAL;
    if (c->poll != p)
        return MIO_ENOENT;
    switch (c->by) {
    case BY_PIDFD:
        err = mio_deregister(p, c->pidfd);
        break;
    case BY_KQUEUE:
        err = p->ops->proc(p, c->pid, 0, false);
        break;
    case BY_SIGCHLD:
        mio_signal_free(c->chld);
        c->chld = NULL;
        break;
    }
    c->poll = NULL;
    c->by = NONE;
    return err;
}

void mio_process_free(mio_process *c)
{
    if (c == NULL)
        return;
    if (c->poll != NULL)
        (void)mio_process_deregister(c->poll, c);
    if (c->state == RUNNING && mio_process_try_wait(c, NULL) == MIO_EAGAIN) {
        int st;
        (void)kill(c->pid, SIGKILL);
        while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
            ;
        MIO_TRACE(MIO_LOG_DEBUG, "process %p: pid %ld killed and reaped on free", (void *)c,
                  (long)c->pid);
    }
    if (c->pidfd >= 0)
        (void)close(c->pidfd);
    mio__free(c);
}
