/* mio_fault: system-call failure injection for tests, as an LD_PRELOAD
 * library (Linux, glibc).  It stands between a program and the C library's
 * system-call wrappers and makes some calls fail the way the kernel really
 * fails them, at a seeded rate or on a schedule, so that a test can see what
 * a program (or libmio itself) does when accept runs out of descriptors, a
 * write finds no buffer memory or a read comes up short.  It is a test tool:
 * never linked into libmio.
 *
 *   LD_PRELOAD=build/libmio_fault.so MIO_FAULT_RATE=0.05 ./prog
 *
 * Calls it stands in for, and the errors each fails with unless told
 * otherwise ("short": a partial transfer, the real call made with less):
 *
 *   accept accept4      ECONNABORTED EPROTO EPERM EINTR ENOBUFS ENOMEM EMFILE ENFILE
 *   read readv recv recvfrom recvmsg recvmmsg  EINTR ENOMEM short
 *   write writev send sendto sendmsg sendmmsg  EINTR ENOBUFS ENOMEM short
 *   socket              EMFILE ENFILE ENOBUFS ENOMEM
 *   socketpair pipe pipe2                      EMFILE ENFILE
 *   connect             EADDRNOTAVAIL ENOBUFS ENOMEM   (EINTR if named: after
 *                                              starting, as for a blocking one)
 *   epoll_create epoll_create1                 EMFILE ENFILE ENOMEM
 *   epoll_ctl           ENOMEM ENOSPC          (adds and changes only)
 *   epoll_wait epoll_pwait epoll_pwait2        EINTR
 *   poll ppoll          EINTR ENOMEM
 *   eventfd             EMFILE ENFILE ENOMEM ENODEV
 *   close               EINTR                  (after closing: no leak)
 *
 * A failed call has no other effect: accept leaves the connection queued,
 * epoll_ctl changes nothing.  A failed sendmmsg of several messages may
 * send some first and return their count, as the kernel does when it meets
 * an error after the first (the error itself is then not reported).
 * epoll_pwait2 is failed both as the C library's function and through
 * syscall(2), as libmio calls it.  The I/O calls (the read and write
 * families, close) fail on sockets only, unless MIO_FAULT_FDS=all, which
 * adds pipes and FIFOs;
 * other descriptors (eventfds, files, terminals) are never failed, so a
 * program's own output and wake-ups are left alone.  Short transfers happen
 * on stream sockets and pipes only (a datagram is never cut), and each is
 * followed by the readiness event the kernel would owe what is left, so a
 * program may take a short transfer for "drained" as with the kernel
 * (below, "the edge a cut transfer is owed").  EAGAIN may be
 * named, but a program waiting for an edge after a made-up EAGAIN on a
 * source that is in fact ready waits for ever: the kernel would not do that.
 * Any of these may be named for any call (EBADF, say, for an epoll_ctl on a
 * descriptor closed behind the program's back), the defaults being the ones
 * the kernel gives a correct program: EINTR EAGAIN ENOMEM ENOBUFS EMFILE
 * ENFILE ECONNABORTED EPROTO EPERM ENOSPC EADDRNOTAVAIL ECONNRESET EPIPE
 * ETIMEDOUT ENODEV ECONNREFUSED ENETUNREACH EHOSTUNREACH EACCES EADDRINUSE
 * EIO EINVAL EMSGSIZE EBADF, and short.
 *
 * Environment (read once, at load):
 *
 *   MIO_FAULT_CALLS     the calls to fail, comma-separated, each optionally
 *                       with its own errors: "accept4:EMFILE/ECONNABORTED,
 *                       write:ENOBUFS/short,epoll_wait".  Default: all.
 *   MIO_FAULT_RATE      the chance that a call of those fails, 0 to 1
 *                       (default 0: only the schedule).
 *   MIO_FAULT_SEED      seed of the choice (default 1).  Whether call k (the
 *                       k-th call of a listed function, counted over all of
 *                       them) fails, and how, depends on the seed and k only:
 *                       the same program doing the same calls fails the same
 *                       way every run.
 *   MIO_FAULT_SCHEDULE  calls that fail whatever the rate, comma-separated
 *                       NAME@N[=ERR]: the N-th call of NAME (from 1) fails
 *                       with ERR (default: NAME's first error).  NAME "*"
 *                       counts every listed call: "*@7" fails the 7th,
 *                       which, run for N = 1, 2, ..., sweeps a program's
 *                       start-up step by step.
 *   MIO_FAULT_FDS       "sockets" (default) or "all", as above.
 *   MIO_FAULT_CONTROL   a file whose first byte switches injection: '1' on,
 *                       anything else (or an empty file) off, read again at
 *                       every call that could fail (one pread), so a test
 *                       flips it to fail calls only between two points of
 *                       its run.  Calls are counted only while it is on.
 *                       Unset: always on.  The library keeps it open (its
 *                       descriptor is left out of the report).
 *   MIO_FAULT_REPORT    a file written at exit: "call NAME N faults M" for
 *                       each function called; "setsockopt OPTION=VALUE N"
 *                       for each integer socket option set, and how often
 *                       (OPTION: TCP_NODELAY, SO_REUSEADDR, ... or
 *                       LEVEL:NUMBER); then "fd N TARGET" for each
 *                       descriptor open at exit that was not open at load
 *                       (what the program leaked, besides what it keeps on
 *                       purpose).  "close EBADF N" if N closes found their
 *                       descriptor not open: a descriptor closed twice (or
 *                       never opened).  A process that made none of the
 *                       calls leaves a report already there alone: a
 *                       wrapper (timeout, env) that runs the program and
 *                       exits after it, preloaded too.
 *   MIO_FAULT_TALLY     a file the library keeps the number of faults
 *                       injected so far in (decimal, rewritten at each),
 *                       so a test can tell during the run whether its load
 *                       met any yet (a seed may spare a light one).  Kept
 *                       open, and left out of the report, as the control.
 *   MIO_FAULT_RAISE     a signal number: the first sigaction that gives it a
 *                       handler raises it in the calling thread as soon as
 *                       the call returns, as a signal sent while the call
 *                       ran arrives then (a window the scheduler widens at
 *                       will).  Injects no failure.
 *   MIO_FAULT_LOG       1: one line on stderr per injected fault.
 *   MIO_FAULT_GSO       1: sendmsg and sendmmsg fail only messages that
 *                       carry a UDP segment size (UDP_SEGMENT), as a
 *                       device without segmentation offload does (name
 *                       EIO or EINVAL): other sends pass and are not
 *                       counted.  A sendmmsg whose first such message is
 *                       not its first sends those before it and returns
 *                       their count, as the kernel does.
 *
 * A malformed setting is reported on stderr and the program exits 125. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <netinet/udp.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define SHORT   (-1)            /* a partial transfer, in the error lists */
#define MAX_ERR 12
#define MAX_SCHEDULE 64
#define MAX_FDS 4096            /* descriptors above this are not tracked */

enum kind { OTHER, IO_IN, IO_OUT, CLOSE };

enum id {
    ACCEPT, ACCEPT4, READ, READV, RECV, RECVFROM, RECVMSG, WRITE, WRITEV, SEND, SENDTO,
    SENDMSG, SENDMMSG, RECVMMSG, SOCKET, SOCKETPAIR, PIPE, PIPE2, CONNECT, EPOLL_CREATE, EPOLL_CREATE1, EPOLL_CTL,
    EPOLL_WAIT, EPOLL_PWAIT, EPOLL_PWAIT2, POLL, PPOLL, EVENTFD, CLOSE_ID, N_CALLS
};

#define ACCEPT_ERRORS { ECONNABORTED, EPROTO, EPERM, EINTR, ENOBUFS, ENOMEM, EMFILE, ENFILE }
#define IN_ERRORS     { EINTR, ENOMEM, SHORT }
#define OUT_ERRORS    { EINTR, ENOBUFS, ENOMEM, SHORT }
#define WAIT_ERRORS   { EINTR }

struct call {
    const char *name;
    enum kind kind;
    int defaults[MAX_ERR];      /* 0-terminated */
    int errors[MAX_ERR];        /* the ones in use */
    int nerrors;
    bool listed;
    atomic_ulong count, faults;
};

static atomic_ulong closes_refused;    /* close said EBADF */

#define CALL(n, k, ...) { .name = (n), .kind = (k), .defaults = __VA_ARGS__ }

static struct call calls[N_CALLS] = {
    [ACCEPT] = CALL("accept", OTHER, ACCEPT_ERRORS),
    [ACCEPT4] = CALL("accept4", OTHER, ACCEPT_ERRORS),
    [READ] = CALL("read", IO_IN, IN_ERRORS),
    [READV] = CALL("readv", IO_IN, IN_ERRORS),
    [RECV] = CALL("recv", IO_IN, IN_ERRORS),
    [RECVFROM] = CALL("recvfrom", IO_IN, IN_ERRORS),
    [RECVMSG] = CALL("recvmsg", IO_IN, IN_ERRORS),
    [WRITE] = CALL("write", IO_OUT, OUT_ERRORS),
    [WRITEV] = CALL("writev", IO_OUT, OUT_ERRORS),
    [SEND] = CALL("send", IO_OUT, OUT_ERRORS),
    [SENDTO] = CALL("sendto", IO_OUT, OUT_ERRORS),
    [SENDMSG] = CALL("sendmsg", IO_OUT, OUT_ERRORS),
    [SENDMMSG] = CALL("sendmmsg", IO_OUT, OUT_ERRORS),
    [RECVMMSG] = CALL("recvmmsg", IO_IN, IN_ERRORS),
    [SOCKET] = CALL("socket", OTHER, { EMFILE, ENFILE, ENOBUFS, ENOMEM }),
    [SOCKETPAIR] = CALL("socketpair", OTHER, { EMFILE, ENFILE }),
    [PIPE] = CALL("pipe", OTHER, { EMFILE, ENFILE }),
    [PIPE2] = CALL("pipe2", OTHER, { EMFILE, ENFILE }),
    [CONNECT] = CALL("connect", OTHER, { EADDRNOTAVAIL, ENOBUFS, ENOMEM }),
    [EPOLL_CREATE] = CALL("epoll_create", OTHER, { EMFILE, ENFILE, ENOMEM }),
    [EPOLL_CREATE1] = CALL("epoll_create1", OTHER, { EMFILE, ENFILE, ENOMEM }),
    [EPOLL_CTL] = CALL("epoll_ctl", OTHER, { ENOMEM, ENOSPC }),
    [EPOLL_WAIT] = CALL("epoll_wait", OTHER, WAIT_ERRORS),
    [EPOLL_PWAIT] = CALL("epoll_pwait", OTHER, WAIT_ERRORS),
    [EPOLL_PWAIT2] = CALL("epoll_pwait2", OTHER, WAIT_ERRORS),
    [POLL] = CALL("poll", OTHER, { EINTR, ENOMEM }),
    [PPOLL] = CALL("ppoll", OTHER, { EINTR, ENOMEM }),
    [EVENTFD] = CALL("eventfd", OTHER, { EMFILE, ENFILE, ENOMEM, ENODEV }),
    [CLOSE_ID] = CALL("close", CLOSE, { EINTR }),
};

static const struct { const char *name; int value; } errnames[] = {
    { "EINTR", EINTR }, { "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "ENOBUFS", ENOBUFS },
    { "EMFILE", EMFILE }, { "ENFILE", ENFILE }, { "ECONNABORTED", ECONNABORTED },
    { "EPROTO", EPROTO }, { "EPERM", EPERM }, { "ENOSPC", ENOSPC },
    { "EADDRNOTAVAIL", EADDRNOTAVAIL }, { "ECONNRESET", ECONNRESET }, { "EPIPE", EPIPE },
    { "ETIMEDOUT", ETIMEDOUT }, { "ENODEV", ENODEV }, { "ECONNREFUSED", ECONNREFUSED },
    { "ENETUNREACH", ENETUNREACH }, { "EHOSTUNREACH", EHOSTUNREACH }, { "EACCES", EACCES },
    { "EADDRINUSE", EADDRINUSE }, { "EIO", EIO }, { "EINVAL", EINVAL },
    { "EMSGSIZE", EMSGSIZE }, { "EBADF", EBADF }, { "short", SHORT },
};

struct planned {
    int call;                   /* -1: any listed call */
    unsigned long nth;
    int err;                    /* 0: the call's first error */
};

static struct {
    bool active;                /* something may fail at all */
    double rate;
    uint64_t seed;
    bool all_fds;
    bool log;
    bool gso_only;              /* MIO_FAULT_GSO */
    int control;                /* the MIO_FAULT_CONTROL file, or -1 */
    int tally;                  /* the MIO_FAULT_TALLY file, or -1 */
    atomic_ulong faults;        /* injected so far, all calls together */
    atomic_int raise_signo;     /* MIO_FAULT_RAISE, until raised */
    const char *report;
    struct planned schedule[MAX_SCHEDULE];
    int nschedule;
    atomic_ulong listed_count;  /* calls of listed functions so far */
    unsigned char open_at_load[MAX_FDS / 8];
} cfg = { .seed = 1, .control = -1, .tally = -1 };

/* ---- the real functions ---------------------------------------------- */

static void *real(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        fprintf(stderr, "mio_fault: no %s in the C library\n", name);
        _exit(125);
    }
    return p;
}

/* Resolved at first use: a call may come before this library's constructor. */
#define REAL(type, name, params)                                              \
    static type(*real_##name) params;                                         \
    if (real_##name == NULL)                                                  \
        *(void **)(&real_##name) = real(#name)

/* ---- configuration ---------------------------------------------------- */

static void bad(const char *what, const char *text)
{
    fprintf(stderr, "mio_fault: bad %s: \"%s\"\n", what, text);
    _exit(125);
}

static int call_by_name(const char *name, size_t len)
{
    int i;
    for (i = 0; i < N_CALLS; i++)
        if (strlen(calls[i].name) == len && memcmp(calls[i].name, name, len) == 0)
            return i;
    return -1;
}

static int error_by_name(const char *name, size_t len)
{
    size_t i;
    for (i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
        if (strlen(errnames[i].name) == len && memcmp(errnames[i].name, name, len) == 0)
            return errnames[i].value;
    return 0;
}

static void use_defaults(struct call *c)
{
    c->nerrors = 0;
    while (c->nerrors < MAX_ERR && c->defaults[c->nerrors] != 0) {
        c->errors[c->nerrors] = c->defaults[c->nerrors];
        c->nerrors++;
    }
}

/* "name[:ERR/ERR...],..." */
static void parse_calls(const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, ",:");
        int id = call_by_name(p, len);
        struct call *c;
        if (id < 0)
            bad("MIO_FAULT_CALLS call", text);
        c = &calls[id];
        c->listed = true;
        use_defaults(c);
        p += len;
        if (*p == ':') {
            c->nerrors = 0;
            do {
                int err;
                p++;
                len = strcspn(p, ",/");
                if ((err = error_by_name(p, len)) == 0 || c->nerrors == MAX_ERR)
                    bad("MIO_FAULT_CALLS error", text);
                c->errors[c->nerrors++] = err;
                p += len;
            } while (*p == '/');
        }
        if (*p == ',')
            p++;
    }
}

/* "NAME@N[=ERR],..." */
static void parse_schedule(const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        struct planned *s;
        size_t len = strcspn(p, "@");
        char *end;
        if (cfg.nschedule == MAX_SCHEDULE || p[len] != '@')
            bad("MIO_FAULT_SCHEDULE", text);
        s = &cfg.schedule[cfg.nschedule++];
        if (len == 1 && *p == '*') {
            s->call = -1;
        } else if ((s->call = call_by_name(p, len)) < 0) {
            bad("MIO_FAULT_SCHEDULE call", text);
        } else if (!calls[s->call].listed) {
            calls[s->call].listed = true;   /* scheduled: listed with its defaults */
            use_defaults(&calls[s->call]);
        }
        p += len + 1;
        s->nth = strtoul(p, &end, 10);
        if (end == p || s->nth == 0)
            bad("MIO_FAULT_SCHEDULE count", text);
        p = end;
        s->err = 0;
        if (*p == '=') {
            p++;
            len = strcspn(p, ",");
            if ((s->err = error_by_name(p, len)) == 0)
                bad("MIO_FAULT_SCHEDULE error", text);
            p += len;
        }
        if (*p == ',')
            p++;
        else if (*p != '\0')
            bad("MIO_FAULT_SCHEDULE", text);
    }
}

static void note_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        long fd = strtol(e->d_name, NULL, 10);
        if (e->d_name[0] != '.' && fd >= 0 && fd < MAX_FDS && fd != dirfd(d))
            cfg.open_at_load[fd / 8] |= (unsigned char)(1u << (fd % 8));
    }
    closedir(d);
}

static void watches_hold(void);
static void watches_release(void);

__attribute__((constructor)) static void fault_init(void)
{
    const char *v;
    char *end;
    int i;
    bool any_listed = false;

    note_open_fds();
    if ((v = getenv("MIO_FAULT_CALLS")) != NULL && *v != '\0')
        parse_calls(v);
    else
        for (i = 0; i < N_CALLS; i++) {
            calls[i].listed = true;
            use_defaults(&calls[i]);
        }
    if ((v = getenv("MIO_FAULT_SCHEDULE")) != NULL && *v != '\0')
        parse_schedule(v);
    for (i = 0; i < N_CALLS; i++)
        any_listed |= calls[i].listed;
    if ((v = getenv("MIO_FAULT_RATE")) != NULL && *v != '\0') {
        cfg.rate = strtod(v, &end);
        if (*end != '\0' || !(cfg.rate >= 0 && cfg.rate <= 1))
            bad("MIO_FAULT_RATE", v);
    }
    if ((v = getenv("MIO_FAULT_SEED")) != NULL && *v != '\0') {
        cfg.seed = strtoull(v, &end, 0);
        if (*end != '\0')
            bad("MIO_FAULT_SEED", v);
    }
    if ((v = getenv("MIO_FAULT_FDS")) != NULL && *v != '\0') {
        if (strcmp(v, "all") == 0)
            cfg.all_fds = true;
        else if (strcmp(v, "sockets") != 0)
            bad("MIO_FAULT_FDS", v);
    }
    if ((v = getenv("MIO_FAULT_RAISE")) != NULL && *v != '\0') {
        long sig = strtol(v, &end, 10);
        if (*end != '\0' || sig <= 0 || sig >= NSIG)
            bad("MIO_FAULT_RAISE", v);
        atomic_store(&cfg.raise_signo, (int)sig);
    }
    cfg.log = (v = getenv("MIO_FAULT_LOG")) != NULL && strcmp(v, "1") == 0;
    cfg.gso_only = (v = getenv("MIO_FAULT_GSO")) != NULL && strcmp(v, "1") == 0;
    if ((v = getenv("MIO_FAULT_REPORT")) != NULL && *v != '\0')
        cfg.report = v;
    if ((v = getenv("MIO_FAULT_CONTROL")) != NULL && *v != '\0' &&
        (cfg.control = open(v, O_RDONLY | O_CLOEXEC)) < 0)
        bad("MIO_FAULT_CONTROL (cannot open it)", v);
    if ((v = getenv("MIO_FAULT_TALLY")) != NULL && *v != '\0' &&
        (cfg.tally = open(v, O_WRONLY | O_CLOEXEC)) < 0)
        bad("MIO_FAULT_TALLY (cannot open it)", v);
    cfg.active = any_listed && (cfg.rate > 0 || cfg.nschedule > 0);
    /* A child forked while another thread held the watches' lock would
     * wait for it for ever at its first close. */
    if (cfg.active)
        pthread_atfork(watches_hold, watches_release, watches_release);
}

/* ---- socket options set, for the report ------------------------------ */

#define MAX_OPTIONS 32

static struct option_seen {
    int level, name, value;
    unsigned long count;
} options[MAX_OPTIONS];
static int noptions;
static pthread_mutex_t options_lock = PTHREAD_MUTEX_INITIALIZER;

static void option_note(int level, int name, const void *value, socklen_t len)
{
    int v, i;
    if (value == NULL || len != sizeof v)
        return;                 /* not an integer option: not recorded */
    memcpy(&v, value, sizeof v);
    pthread_mutex_lock(&options_lock);
    for (i = 0; i < noptions; i++)
        if (options[i].level == level && options[i].name == name && options[i].value == v)
            break;
    if (i == noptions && noptions < MAX_OPTIONS)
        options[noptions++] = (struct option_seen){ level, name, v, 0 };
    if (i < noptions)
        options[i].count++;
    pthread_mutex_unlock(&options_lock);
}

static const char *option_name(int level, int name, char *buf, size_t size)
{
    static const struct { int level, name; const char *text; } known[] = {
        { IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY" }, { SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR" },
        { SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT" }, { SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE" },
        { SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF" }, { SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF" },
        { IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY" },
    };
    size_t i;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].level == level && known[i].name == name)
            return known[i].text;
    snprintf(buf, size, "%d:%d", level, name);
    return buf;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    REAL(int, setsockopt, (int, int, int, const void *, socklen_t));
    int r = real_setsockopt(fd, level, name, value, len);
    if (r == 0 && cfg.report != NULL)
        option_note(level, name, value, len);
    return r;
}

/* ---- the report at exit ------------------------------------------------- */

__attribute__((destructor)) static void fault_report(void)
{
    REAL(ssize_t, write, (int, const void *, size_t));
    REAL(int, close, (int));
    char line[512], path[64], target[400];
    DIR *d;
    struct dirent *e;
    int fd, i, n;

    if (cfg.report == NULL)
        return;
    /* A process that made none of the calls is most likely a wrapper that
     * ran the program (timeout, env), exiting after it: its report would
     * replace the program's. */
    for (i = 0; i < N_CALLS && atomic_load(&calls[i].count) == 0; i++)
        ;
    if (i == N_CALLS && noptions == 0) {
        struct stat st;
        if (stat(cfg.report, &st) == 0 && st.st_size > 0)
            return;
    }
    if ((fd = open(cfg.report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return;
    for (i = 0; i < N_CALLS; i++) {
        unsigned long count = atomic_load(&calls[i].count);
        if (count == 0)
            continue;
        n = snprintf(line, sizeof line, "call %s %lu faults %lu\n", calls[i].name, count,
                     atomic_load(&calls[i].faults));
        real_write(fd, line, (size_t)n);
    }
    if (atomic_load(&closes_refused) > 0) {
        n = snprintf(line, sizeof line, "close EBADF %lu\n", atomic_load(&closes_refused));
        real_write(fd, line, (size_t)n);
    }
    pthread_mutex_lock(&options_lock);
    for (i = 0; i < noptions; i++) {
        n = snprintf(line, sizeof line, "setsockopt %s=%d %lu\n",
                     option_name(options[i].level, options[i].name, path, sizeof path),
                     options[i].value, options[i].count);
        real_write(fd, line, (size_t)n);
    }
    pthread_mutex_unlock(&options_lock);
    if ((d = opendir("/proc/self/fd")) != NULL) {
        while ((e = readdir(d)) != NULL) {
            long k = strtol(e->d_name, NULL, 10);
            ssize_t len;
            if (e->d_name[0] == '.' || k == fd || k == dirfd(d) || k == cfg.control ||
                k == cfg.tally)
                continue;
            if (k >= 0 && k < MAX_FDS && (cfg.open_at_load[k / 8] & (1u << (k % 8))))
                continue;
            snprintf(path, sizeof path, "/proc/self/fd/%ld", k);
            len = readlink(path, target, sizeof target - 1);
            target[len > 0 ? len : 0] = '\0';
            n = snprintf(line, sizeof line, "fd %ld %s\n", k, target);
            real_write(fd, line, (size_t)n);
        }
        closedir(d);
    }
    real_close(fd);
}

/* ---- the decision ------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* What fd is to an I/O call: 0 never failed, 1 failed but never cut short
 * (a datagram socket), 2 failed or cut short. */
static int fd_class(int fd)
{
    struct stat st;
    int type = 0;
    socklen_t len = sizeof type;
    if (fstat(fd, &st) < 0)
        return 0;
    if (S_ISSOCK(st.st_mode))
        return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM
                   ? 2 : 1;
    return S_ISFIFO(st.st_mode) && cfg.all_fds ? 2 : 0;
}

/* Whether the control file (if any) says on. */
static bool switched_on(void)
{
    char c;
    int saved = errno;
    bool on = cfg.control < 0 || (pread(cfg.control, &c, 1, 0) == 1 && c == '1');
    errno = saved;
    return on;
}

/* The fault for this call (fd: the descriptor of an I/O call, else -1):
 * 0 for none, an errno value, or SHORT. */
static int decide(enum id id, int fd)
{
    struct call *c = &calls[id];
    unsigned long nth, k;
    int cls = 2, err = 0, saved = errno, i;
    uint64_t h;

    if (!cfg.active || !c->listed || !switched_on())
        return 0;
    if (c->kind != OTHER && (cls = fd_class(fd)) == 0) {
        errno = saved;
        return 0;
    }
    errno = saved;
    nth = atomic_fetch_add(&c->count, 1) + 1;
    k = atomic_fetch_add(&cfg.listed_count, 1) + 1;
    for (i = 0; i < cfg.nschedule && err == 0; i++) {
        const struct planned *s = &cfg.schedule[i];
        if ((s->call == (int)id && s->nth == nth) || (s->call < 0 && s->nth == k))
            err = s->err != 0 ? s->err : c->errors[0];
    }
    h = mix(cfg.seed ^ mix(k));
    if (err == 0 && cfg.rate > 0 && c->nerrors > 0 &&
        (double)(h >> 11) / 9007199254740992.0 < cfg.rate)
        err = c->errors[mix(h) % (uint64_t)c->nerrors];
    if (err == SHORT && cls != 2)
        err = 0;
    if (err != 0) {
        unsigned long total = atomic_fetch_add(&cfg.faults, 1) + 1;
        atomic_fetch_add(&c->faults, 1);
        if (cfg.tally >= 0) {
            char text[24];
            int len = snprintf(text, sizeof text, "%lu\n", total);
            (void)!pwrite(cfg.tally, text, (size_t)len, 0);
            errno = saved;
        }
        if (cfg.log && fd >= 0)
            fprintf(stderr, "mio_fault: %s #%lu fd %d: %s\n", c->name, nth, fd,
                    err == SHORT ? "short" : strerrorname_np(err));
        else if (cfg.log)
            fprintf(stderr, "mio_fault: %s #%lu: %s\n", c->name, nth,
                    err == SHORT ? "short" : strerrorname_np(err));
    }
    return err;
}

/* A length cut short: 1 to len - 1 bytes (len itself when it cannot be cut). */
static size_t shorter(size_t len, int fd)
{
    return len < 2 ? len : 1 + (size_t)(mix(cfg.seed + (uint64_t)fd + len) % (len - 1));
}

/* A copy of iov (at most 64 entries) holding `want` bytes of it; the count
 * of entries used. */
static int iov_cut(const struct iovec *iov, int n, struct iovec *out, size_t want)
{
    int i;
    for (i = 0; i < n && i < 64 && want > 0; i++) {
        out[i] = iov[i];
        if (out[i].iov_len > want)
            out[i].iov_len = want;
        want -= out[i].iov_len;
    }
    return i;
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    int i;
    for (i = 0; i < n && i < 64; i++)
        t += iov[i].iov_len;
    return t;
}

#define FAIL_WITH(err, ret)                                                   \
    do {                                                                      \
        errno = (err);                                                        \
        return (ret);                                                         \
    } while (0)

/* ---- the edge a cut transfer is owed ----------------------------------- */

/* The kernel cuts a stream transfer short only when the data (or the room)
 * ran out, and whatever comes after is a new edge: a program may take a
 * short read for "drained" (mio.h's rule) and wait.  So a transfer cut here
 * is made one the kernel could give, as if the rest arrived (or room
 * opened) the moment after:
 *   - TCP: the kernel is asked to say so itself.  Setting SO_RCVLOWAT
 *     (reads) or TCP_NOTSENT_LOWAT (writes) to the value it has runs the
 *     socket's data-ready or write-space wake-up, which every waiter sees
 *     (epoll, io_uring's polls, poll(2)) if the socket is still ready.
 *   - Unix sockets and pipes have no such call: their edge-triggered epoll
 *     registrations are re-armed with what the program last gave them,
 *     which reports them again if still ready.  One-shot and level ones need
 *     nothing (re-arming one-shot is the program's; level reports anyway).
 *     Under io_uring nothing reports them: a program relying on the rule
 *     there waits, as it would for a made-up EAGAIN.
 * The lock holds across the program's epoll_ctl and close too, so a re-arm
 * never uses a registration being changed or a number being reused. */
#define WATCHED_FDS 32768
#define WATCHES 2               /* epoll sets one descriptor is in, at most */

struct watch {
    int epfd_plus_1;            /* 0: free */
    struct epoll_event ev;
};

static struct watch watches[WATCHED_FDS][WATCHES];
static bool is_epoll[WATCHED_FDS];
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;

static void watches_hold(void)
{
    pthread_mutex_lock(&watch_lock);
}

static void watches_release(void)
{
    pthread_mutex_unlock(&watch_lock);
}

static struct watch *watch_find(int fd, int epfd)
{
    int i;
    for (i = 0; i < WATCHES; i++)
        if (watches[fd][i].epfd_plus_1 == epfd + 1)
            return &watches[fd][i];
    return NULL;
}

/* After the program's epoll_ctl succeeded: what fd is registered with. */
static void watch_note(int epfd, int op, int fd, const struct epoll_event *ev)
{
    struct watch *w;
    if (fd < 0 || fd >= WATCHED_FDS || epfd < 0 || epfd >= WATCHED_FDS)
        return;
    is_epoll[epfd] = true;
    w = watch_find(fd, epfd);
    if (op == EPOLL_CTL_DEL) {
        if (w != NULL)
            w->epfd_plus_1 = 0;
        return;
    }
    if (w == NULL && op == EPOLL_CTL_ADD)
        w = watch_find(fd, -1);             /* a free one */
    if (w != NULL && ev != NULL) {
        w->epfd_plus_1 = epfd + 1;
        w->ev = *ev;
    }
}

/* fd is closed: its registrations go, and if it was an epoll set, every
 * registration in it. */
static void watch_forget(int fd)
{
    int i, j;
    if (fd < 0 || fd >= WATCHED_FDS)
        return;
    memset(watches[fd], 0, sizeof watches[fd]);
    if (!is_epoll[fd])
        return;
    is_epoll[fd] = false;
    for (i = 0; i < WATCHED_FDS; i++)
        for (j = 0; j < WATCHES; j++)
            if (watches[i][j].epfd_plus_1 == fd + 1)
                watches[i][j].epfd_plus_1 = 0;
}

/* TCP's own wake-up for fd, `in` (data) or out (room); false if fd is not
 * TCP. */
static bool tcp_wake(int fd, bool in)
{
    REAL(int, setsockopt, (int, int, int, const void *, socklen_t));
    int level = in ? SOL_SOCKET : IPPROTO_TCP, name = in ? SO_RCVLOWAT : TCP_NOTSENT_LOWAT;
    int proto = 0, v = 0;
    socklen_t len = sizeof proto;

    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 || proto != IPPROTO_TCP)
        return false;
    len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) == 0)
        (void)real_setsockopt(fd, level, name, &v, sizeof v);
    return true;
}

/* A transfer on fd, `in` or out, was cut short and moved r bytes: the edge
 * it is owed. */
static ssize_t owed_edge(int fd, bool in, ssize_t r)
{
    REAL(int, epoll_ctl, (int, int, int, struct epoll_event *));
    int i, saved = errno;
    if (r <= 0 || fd < 0 || fd >= WATCHED_FDS)
        return r;
    if (!tcp_wake(fd, in)) {
        pthread_mutex_lock(&watch_lock);
        for (i = 0; i < WATCHES; i++) {
            struct watch *w = &watches[fd][i];
            if (w->epfd_plus_1 != 0 && (w->ev.events & EPOLLET) &&
                !(w->ev.events & EPOLLONESHOT))
                (void)real_epoll_ctl(w->epfd_plus_1 - 1, EPOLL_CTL_MOD, fd, &w->ev);
        }
        pthread_mutex_unlock(&watch_lock);
    }
    errno = saved;
    return r;
}

/* ---- the calls --------------------------------------------------------- */

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    REAL(int, accept, (int, struct sockaddr *, socklen_t *));
    int err = decide(ACCEPT, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_accept(fd, addr, len);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    REAL(int, accept4, (int, struct sockaddr *, socklen_t *, int));
    int err = decide(ACCEPT4, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_accept4(fd, addr, len, flags);
}

ssize_t read(int fd, void *buf, size_t len)
{
    REAL(ssize_t, read, (int, void *, size_t));
    int err = decide(READ, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT)
        return owed_edge(fd, true, real_read(fd, buf, shorter(len, fd)));
    return real_read(fd, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    REAL(ssize_t, recv, (int, void *, size_t, int));
    int err = decide(RECV, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT)
        return owed_edge(fd, true, real_recv(fd, buf, shorter(len, fd), flags));
    return real_recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                 socklen_t *alen)
{
    REAL(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *));
    int err = decide(RECVFROM, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT)
        return owed_edge(fd, true, real_recvfrom(fd, buf, shorter(len, fd), flags, addr, alen));
    return real_recvfrom(fd, buf, len, flags, addr, alen);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    REAL(ssize_t, write, (int, const void *, size_t));
    int err = decide(WRITE, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT)
        return owed_edge(fd, false, real_write(fd, buf, shorter(len, fd)));
    return real_write(fd, buf, len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    REAL(ssize_t, send, (int, const void *, size_t, int));
    int err = decide(SEND, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT)
        return owed_edge(fd, false, real_send(fd, buf, shorter(len, fd), flags));
    return real_send(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
               socklen_t alen)
{
    REAL(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t));
    int err = decide(SENDTO, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT)
        return owed_edge(fd, false, real_sendto(fd, buf, shorter(len, fd), flags, addr, alen));
    return real_sendto(fd, buf, len, flags, addr, alen);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    REAL(ssize_t, readv, (int, const struct iovec *, int));
    struct iovec cut[64];
    int err = decide(READV, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT && n > 0 && n <= 64)
        return owed_edge(fd, true, real_readv(fd, cut, iov_cut(iov, n, cut,
                                                         shorter(iov_total(iov, n), fd))));
    return real_readv(fd, iov, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    REAL(ssize_t, writev, (int, const struct iovec *, int));
    struct iovec cut[64];
    int err = decide(WRITEV, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err == SHORT && n > 0 && n <= 64)
        return owed_edge(fd, false, real_writev(fd, cut, iov_cut(iov, n, cut,
                                                          shorter(iov_total(iov, n), fd))));
    return real_writev(fd, iov, n);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    REAL(ssize_t, recvmsg, (int, struct msghdr *, int));
    struct iovec cut[64], *saved_iov;
    size_t saved_len;
    ssize_t r;
    int err = decide(RECVMSG, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err != SHORT || msg->msg_iovlen == 0 || msg->msg_iovlen > 64)
        return real_recvmsg(fd, msg, flags);
    saved_iov = msg->msg_iov;
    saved_len = msg->msg_iovlen;
    msg->msg_iovlen = (size_t)iov_cut(saved_iov, (int)saved_len, cut,
                                      shorter(iov_total(saved_iov, (int)saved_len), fd));
    msg->msg_iov = cut;
    r = real_recvmsg(fd, msg, flags);
    msg->msg_iov = saved_iov;
    msg->msg_iovlen = saved_len;
    return owed_edge(fd, true, r);
}

/* Whether a message asks for UDP segmentation offload. */
static bool carries_gso(const struct msghdr *msg)
{
    struct cmsghdr *c;
    for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR((struct msghdr *)msg, c))
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT)
            return true;
    return false;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    REAL(ssize_t, sendmsg, (int, const struct msghdr *, int));
    struct iovec cut[64];
    struct msghdr m;
    int err;
    if (cfg.gso_only && !carries_gso(msg))
        return real_sendmsg(fd, msg, flags);
    err = decide(SENDMSG, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    if (err != SHORT || msg->msg_iovlen == 0 || msg->msg_iovlen > 64)
        return real_sendmsg(fd, msg, flags);
    m = *msg;
    m.msg_iovlen = (size_t)iov_cut(msg->msg_iov, (int)msg->msg_iovlen, cut,
                                   shorter(iov_total(msg->msg_iov, (int)msg->msg_iovlen), fd));
    m.msg_iov = cut;
    return owed_edge(fd, false, real_sendmsg(fd, &m, flags));
}

/* A fault hits one message: those before it go, as the kernel sends them
 * before it meets the failing one. */
int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
    REAL(int, sendmmsg, (int, struct mmsghdr *, unsigned int, int));
    unsigned int at = 0;
    int err;
    if (cfg.gso_only) {
        while (at < n && !carries_gso(&v[at].msg_hdr))
            at++;
        if (at == n)
            return real_sendmmsg(fd, v, n, flags);
    }
    err = decide(SENDMMSG, fd);
    if (err <= 0)
        return real_sendmmsg(fd, v, n, flags);
    /* Not cut by the offload: the fault meets one of the messages. */
    if (!cfg.gso_only && n > 1)
        at = (unsigned int)(mix(cfg.seed ^ mix(atomic_load(&calls[SENDMMSG].count))) % n);
    if (at > 0)
        return real_sendmmsg(fd, v, at, flags);
    FAIL_WITH(err, -1);
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *timeout)
{
    REAL(int, recvmmsg, (int, struct mmsghdr *, unsigned int, int, struct timespec *));
    int err = decide(RECVMMSG, fd);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_recvmmsg(fd, v, n, flags, timeout);
}

int socket(int domain, int type, int protocol)
{
    REAL(int, socket, (int, int, int));
    int err = decide(SOCKET, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_socket(domain, type, protocol);
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
    REAL(int, socketpair, (int, int, int, int *));
    int err = decide(SOCKETPAIR, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_socketpair(domain, type, protocol, sv);
}

int pipe(int fds[2])
{
    REAL(int, pipe, (int *));
    int err = decide(PIPE, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_pipe(fds);
}

int pipe2(int fds[2], int flags)
{
    REAL(int, pipe2, (int *, int));
    int err = decide(PIPE2, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_pipe2(fds, flags);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    REAL(int, connect, (int, const struct sockaddr *, socklen_t));
    int err = decide(CONNECT, -1), r;
    if (err > 0 && err != EINTR)
        FAIL_WITH(err, -1);
    r = real_connect(fd, addr, len);
    /* A signal cuts the wait of a blocking connect, never the connect:
     * the connection goes on in the background. */
    if (err == EINTR && (r == 0 || errno == EINPROGRESS))
        FAIL_WITH(EINTR, -1);
    return r;
}

int epoll_create(int size)
{
    REAL(int, epoll_create, (int));
    int err = decide(EPOLL_CREATE, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_epoll_create(size);
}

int epoll_create1(int flags)
{
    REAL(int, epoll_create1, (int));
    int err = decide(EPOLL_CREATE1, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_epoll_create1(flags);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    REAL(int, epoll_ctl, (int, int, int, struct epoll_event *));
    int err = op == EPOLL_CTL_DEL ? 0 : decide(EPOLL_CTL, -1), r;
    if (err == ENOSPC && op != EPOLL_CTL_ADD)
        err = ENOMEM;           /* the watch limit is hit by adding only */
    if (err > 0)
        FAIL_WITH(err, -1);
    if (!cfg.active)
        return real_epoll_ctl(epfd, op, fd, ev);
    pthread_mutex_lock(&watch_lock);
    if ((r = real_epoll_ctl(epfd, op, fd, ev)) == 0)
        watch_note(epfd, op, fd, ev);
    pthread_mutex_unlock(&watch_lock);
    return r;
}

int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
    REAL(int, epoll_wait, (int, struct epoll_event *, int, int));
    int err = decide(EPOLL_WAIT, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_epoll_wait(epfd, ev, max, timeout);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
    REAL(int, epoll_pwait, (int, struct epoll_event *, int, int, const sigset_t *));
    int err = decide(EPOLL_PWAIT, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_epoll_pwait(epfd, ev, max, timeout, mask);
}

#if __GLIBC_PREREQ(2, 35) && !defined(__USE_TIME_BITS64)
int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *timeout,
                 const sigset_t *mask)
{
    REAL(int, epoll_pwait2, (int, struct epoll_event *, int, const struct timespec *,
                             const sigset_t *));
    int err = decide(EPOLL_PWAIT2, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_epoll_pwait2(epfd, ev, max, timeout, mask);
}
#endif

/* epoll_pwait2 has no wrapper in older C libraries: libmio calls it through
 * syscall(2), so that is where it is failed.  Every other number passes. */
long syscall(long number, ...)
{
    REAL(long, syscall, (long, ...));
    long a[6];
    va_list ap;
    int i;
    va_start(ap, number);
    for (i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
#ifdef SYS_epoll_pwait2
    if (number == SYS_epoll_pwait2) {
        int err = decide(EPOLL_PWAIT2, -1);
        if (err > 0)
            FAIL_WITH(err, -1);
    }
#endif
    return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    REAL(int, poll, (struct pollfd *, nfds_t, int));
    int err = decide(POLL, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_poll(fds, n, timeout);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    REAL(int, ppoll, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *));
    int err = decide(PPOLL, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_ppoll(fds, n, ts, mask);
}

int eventfd(unsigned int initval, int flags)
{
    REAL(int, eventfd, (unsigned int, int));
    int err = decide(EVENTFD, -1);
    if (err > 0)
        FAIL_WITH(err, -1);
    return real_eventfd(initval, flags);
}

/* MIO_FAULT_RAISE: the signal comes the moment its new handler holds. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    REAL(int, sigaction, (int, const struct sigaction *, struct sigaction *));
    int r = real_sigaction(sig, act, old), want = sig;

    if (r == 0 && act != NULL && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN &&
        atomic_compare_exchange_strong(&cfg.raise_signo, &want, 0))
        raise(sig);
    return r;
}

/* Linux releases the descriptor even when close says EINTR: so does this. */
int close(int fd)
{
    REAL(int, close, (int));
    int err = decide(CLOSE_ID, fd), r;
    if (cfg.active) {
        pthread_mutex_lock(&watch_lock);
        r = real_close(fd);
        watch_forget(fd);       /* closed whatever close says (but EBADF) */
        pthread_mutex_unlock(&watch_lock);
    } else {
        r = real_close(fd);
    }
    if (r < 0 && errno == EBADF)
        atomic_fetch_add(&closes_refused, 1);
    if (r == 0 && err > 0)
        FAIL_WITH(err, -1);
    return r;
}
