/*
 * libmio: readiness-based non-blocking I/O for C11.
 *
 * One small API over each OS's event notification: epoll (Linux, Android),
 * kqueue (macOS, iOS, the BSDs), IOCP with AFD polling (Windows), and poll(2)
 * as the portable fallback; on Linux also io_uring's poll requests, by
 * name.  On top of it: user-space readiness, a hashed timer wheel, a bounded
 * cross-thread channel, a single-threaded event loop, and a group of such
 * loops, one per core, with listeners spread over them.
 *
 * Portability contract
 * --------------------
 * - Readiness is a hint.  An event says "an operation may now succeed", never
 *   that it will.  Spurious events happen on every backend; callers read, write
 *   or accept until the call returns MIO_EAGAIN, and treat MIO_EAGAIN as "wait
 *   for the next event".
 * - Edge (the default) reports one event per rise of readiness: a source that
 *   stays ready and is not drained may never be reported again.  Drained
 *   means a call returned MIO_EAGAIN or, on a stream socket or a pipe, moved
 *   fewer bytes than asked (a short mio_read, mio_readv, mio_write or
 *   mio_writev: the next arrival, or room, is a new event on every backend, so
 *   the read that would only say MIO_EAGAIN can be skipped; but an end of
 *   stream that came with the last bytes brings no event of its own: when the
 *   event said MIO_READ_CLOSED, read on until mio_read returns 0).  Datagram
 *   sockets are drained only by MIO_EAGAIN, or by a batch call
 *   (mio_udp_recv_batch, mio_udp_send_batch) that moved fewer datagrams
 *   than asked: it met MIO_EAGAIN, or an error, on the way.  Level reports
 *   on every wait while the source is ready.  Oneshot disarms the registration after one event
 *   until mio_reregister().
 * - Where the OS has no edge trigger (the poll(2) and Windows backends), edge is
 *   emulated: a reported direction re-arms when a libmio call on that fd
 *   (mio_read, mio_write, mio_readv, mio_writev, mio_accept or mio_tcp_accept,
 *   mio_tcp_shed, mio_udp_recv, mio_udp_recv_from, mio_udp_send_to,
 *   mio_udp_recv_batch, mio_udp_send_batch) drains it as above or
 *   fails with any other error (a connection aborted before accept, a
 *   transient MIO_ENOMEM): what is still ready is then reported again, and
 *   the next arrival is reported as a kernel edge would.  Reading a pending
 *   error with mio_socket_error re-arms both directions; MIO_PRIORITY re-arms with the reads.  Do I/O through
 *   libmio to get exact edge semantics on every backend.
 * - The drain check: a library built with debug checks (without NDEBUG, or
 *   with -DMIO_CHECKS=ON) tells, once per registration and at warn level
 *   (the log, else stderr), of an edge registration on a backend with
 *   native edges whose READABLE is reported again although no libmio call
 *   drained it since its last report (as above, or a read that met end of
 *   stream; or a write that met MIO_EAGAIN since, the program then waiting
 *   for WRITABLE): a program that hangs where edges are emulated.  Level,
 *   oneshot, the writable side and tokens that several descriptors share
 *   are not checked; mio_reregister starts afresh.  The environment
 *   variable MIO_CHECK=none turns it off for the polls made after, drain
 *   (the default) on.  A build without the checks has none of their code.
 * - One token may appear in more than one event of a batch (kqueue reports read
 *   and write apart).  MIO_ERROR, MIO_READ_CLOSED and MIO_WRITE_CLOSED are
 *   always reported, never asked for.
 * - Guaranteed everywhere: no wait that starts after mio_deregister() returns
 *   reports that registration (a batch another thread already holds may still
 *   carry its token: free what a token names only from the waiting thread, or
 *   once that thread is past its current batch; docs/threads.md); no event
 *   lost when more are ready than the caller's capacity (the rest come with
 *   later waits, none starved); a wait never returns early because of timer
 *   rounding.
 * - Threads: mio_register, mio_reregister, mio_deregister, wakers and
 *   user-space readiness may be used from any thread while another thread
 *   waits; the waiting thread sees the change without a timeout.  Only one
 *   thread waits on a poll at a time (a second gets MIO_EBUSY).
 * - Errors: functions return >= 0 on success and a negative MIO_E* code on
 *   failure; nothing else reports errors.  Every descriptor the library creates
 *   is non-blocking and close-on-exec, and no call ever raises SIGPIPE (one
 *   exception: a write to a pipe whose reader is gone, on a system other than
 *   Linux, while a SIGPIPE is already pending for the process, leaves its
 *   own SIGPIPE pending beside it; Linux tells the two apart).
 * - Allocation: after setup, mio_poll_wait, event dispatch and the I/O calls
 *   allocate nothing.
 * - Hints, not guarantees: whether an event is spurious; whether a source
 *   ready both ways comes as one event or two; whether a peer's shutdown is
 *   flagged MIO_READ_CLOSED or only READABLE (the poll(2) backend without
 *   POLLRDHUP): end of stream is what mio_read returning 0 says.
 * - What varies by backend, within the above: edge and oneshot are native on
 *   epoll, kqueue and io_uring, emulated on poll(2) and Windows (the re-arm
 *   rule above);
 *   timeout resolution (1 ns, or 1 ms rounded up); MIO_PRIORITY is
 *   MIO_ENOSYS on kqueue without EVFILT_EXCEPT; Windows polls only sockets.
 *
 * docs/ expands on this contract (concepts, threads, the event loop, one
 * loop per core, per platform notes, migrating from libuv/libev/libevent,
 * tracing); every
 * public name is documented where it is declared below.
 */
#ifndef MIO_H
#define MIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <errno.h>
#include <basetsd.h>
#ifdef _MSC_VER
typedef SSIZE_T ssize_t;
#endif
#else
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#endif

/* MIO_API marks the functions the library exports; everything else in the
 * shared library is hidden.  On Windows, programs linking libmio.dll define
 * MIO_DLL (find_package(mio)'s mio::mio does) so calls go straight through
 * the import table; programs linking the static library define nothing. */
#if defined(_WIN32) && defined(MIO_BUILDING_DLL)
#define MIO_API __declspec(dllexport)
#elif defined(_WIN32) && defined(MIO_DLL)
#define MIO_API __declspec(dllimport)
#elif defined(_WIN32)
#define MIO_API
#elif defined(__GNUC__) || defined(__clang__)
#define MIO_API __attribute__((visibility("default")))
#else
#define MIO_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ------------------------------------------------------------ */

/* The version of this header; the major number is the shared library's
 * soname (libmio.so.MAJOR).  Before 1.0 a minor version may change the API. */
#define MIO_VERSION_MAJOR 0
#define MIO_VERSION_MINOR 1
#define MIO_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually linked. */
MIO_API const char *mio_version_string(void);

/* ---- Errors --------------------------------------------------------------
 * On POSIX MIO_Exxx == -Exxx; on Windows the library maps Winsock, Win32 and
 * NTSTATUS errors onto the same names.  Codes without a name here pass through
 * as -errno. */

#define MIO_EAGAIN        (-EAGAIN)
#define MIO_EINTR         (-EINTR)
#define MIO_EINVAL        (-EINVAL)
#define MIO_EEXIST        (-EEXIST)
#define MIO_ENOENT        (-ENOENT)
#define MIO_EBADF         (-EBADF)
#define MIO_ENOMEM        (-ENOMEM)
#define MIO_EBUSY         (-EBUSY)
#define MIO_EPIPE         (-EPIPE)
#define MIO_ECONNREFUSED  (-ECONNREFUSED)
#define MIO_ECONNRESET    (-ECONNRESET)
#define MIO_ECONNABORTED  (-ECONNABORTED)
#define MIO_EADDRINUSE    (-EADDRINUSE)
#define MIO_EADDRNOTAVAIL (-EADDRNOTAVAIL)
#define MIO_EAFNOSUPPORT  (-EAFNOSUPPORT)
#define MIO_ENAMETOOLONG  (-ENAMETOOLONG)
#define MIO_EMFILE        (-EMFILE)
#define MIO_ENFILE        (-ENFILE)
#define MIO_ENOSYS        (-ENOSYS)
#define MIO_ETIMEDOUT     (-ETIMEDOUT)
#define MIO_ENOTCONN      (-ENOTCONN)
#define MIO_EISCONN       (-EISCONN)
#define MIO_ENOSPC        (-ENOSPC)
#define MIO_EPERM         (-EPERM)
#define MIO_EACCES        (-EACCES)
#define MIO_ENOTSOCK      (-ENOTSOCK)
#define MIO_EMSGSIZE      (-EMSGSIZE)
#define MIO_ENETUNREACH   (-ENETUNREACH)
#define MIO_EHOSTUNREACH  (-EHOSTUNREACH)
#define MIO_EDESTADDRREQ  (-EDESTADDRREQ)
#define MIO_ENOBUFS       (-ENOBUFS)    /* POSIX; Windows reports MIO_ENOMEM */
#define MIO_EPROTO        (-EPROTO)
#define MIO_ESRCH         (-ESRCH)      /* the child process was already waited for */
#define MIO_ECHILD        (-ECHILD)     /* the child process was waited for by someone else */
#define MIO_EDEADLK       (-EDEADLK)    /* called from within its own callback: a loop
                                           run, or a group joined, from its own loop */

/* A short description of a MIO_E* code (or of any -errno); never NULL. */
MIO_API const char *mio_strerror(int err);

/* ---- Allocation and tracing --------------------------------------------- */

/* Replaces the allocator used for every allocation of the library.  Call it
 * before any other call.  All four functions, or all NULL to restore the C
 * library's; anything else is MIO_EINVAL. */
MIO_API int mio_set_allocator(void *(*malloc_fn)(size_t),
                              void *(*realloc_fn)(void *, size_t),
                              void *(*calloc_fn)(size_t, size_t),
                              void (*free_fn)(void *));

/* Trace levels, from the most to the least important: the `level` given to
 * the mio_set_log callback, and what MIO_LOG names.  Poll and loop creation,
 * every register, reregister and deregister, and every listen, connect,
 * accept and mio_close are DEBUG; every wait (with a line per event it
 * returns), loop tick (with the events, timers and messages it handled) and
 * accept that finds none pending is TRACE. */
#define MIO_LOG_ERROR 1
#define MIO_LOG_WARN  2
#define MIO_LOG_INFO  3
#define MIO_LOG_DEBUG 4
#define MIO_LOG_TRACE 5

/* Routes the library's trace points (tick, events per wait, register,
 * deregister, accept, ...) to fn; NULL turns tracing off, the default.  The
 * environment variable MIO_LOG=error|warn|info|debug|trace (any case; also
 * 1-5, "warning", "verbose" or "all" for trace; off, none or 0) sends
 * them to stderr when no callback is set ("mio LEVEL: MSG" lines, that level
 * and the ones above it).  MIO_LOG is read once, by the first call that
 * makes a poll, a loop or a socket, accepts, or refuses an address; a value
 * it does not understand is said on stderr then, in one line naming the
 * valid ones, and tracing stays off.  Lines name their object ("poll 0x...:",
 * "loop 0x...:"), tokens in hex ("token 0x2a"), interest and readiness by
 * flag ("READABLE|WRITABLE|EDGE") and results by name ("ok", "MIO_EAGAIN").
 * fn gets every level, on whichever thread hits a trace point, so it must be
 * thread-safe; msg has no newline and at most 255 characters.  Set it before
 * other threads use the library.  Off costs one predictable branch.  Two
 * kinds of line are not left unseen when no log was chosen (neither this
 * call nor MIO_LOG): an environment variable of libmio's with a value it
 * cannot honour (MIO_BACKEND, MIO_CHECK) and a debug check's finding
 * (MIO_CHECK, at "Poll" below) go to stderr then; mio_set_log(NULL, NULL)
 * silences them too. */
MIO_API void mio_set_log(void (*fn)(int level, const char *msg, void *ud), void *ud);

/* ---- Types --------------------------------------------------------------- */

/* A descriptor: an int on POSIX, a SOCKET on Windows.  MIO_INVALID_FD is
 * never a valid one. */
#ifdef _WIN32
typedef SOCKET mio_fd;
#define MIO_INVALID_FD INVALID_SOCKET
#else
typedef int mio_fd;
#define MIO_INVALID_FD (-1)
#endif

/* The caller's name for a source; comes back in every event for it. */
typedef uintptr_t mio_token;
/* Refused by every call that takes a token (the library uses it internally). */
#define MIO_TOKEN_RESERVED UINTPTR_MAX

/* One readiness event: plain, caller-owned storage. */
typedef struct mio_event {
    mio_token token;
    uint32_t flags;     /* readiness: MIO_READABLE, MIO_WRITABLE, ... */
} mio_event;

/* Same layout as struct iovec on POSIX (WSABUF differs; converted on Windows). */
typedef struct mio_iovec {
    void *base;
    size_t len;
} mio_iovec;

/* ---- Flags ----------------------------------------------------------------
 * Interest (what to wait for) and readiness (what happened) share one space. */

#define MIO_READABLE     0x01u  /* interest and readiness */
#define MIO_PRIORITY     0x02u  /* interest and readiness: out-of-band/urgent data
                                   (MIO_ENOSYS on a kqueue without EVFILT_EXCEPT) */
#define MIO_WRITABLE     0x04u  /* interest and readiness */
#define MIO_ERROR        0x08u  /* readiness only: a pending error (see mio_socket_error) */
#define MIO_READ_CLOSED  0x10u  /* readiness only: the read side is shut, reads reach EOF */
#define MIO_WRITE_CLOSED 0x20u  /* readiness only: the write side is shut or the peer is gone
                                   (not for a socket that only has a pending error, such as a
                                   UDP socket's ICMP port-unreachable; a pipe whose reader is
                                   gone is MIO_ERROR, with this where the backend can tell it
                                   from such an error: not on epoll) */
#define MIO_EDGE         0x00u  /* trigger: one event per rise of readiness (default) */
#define MIO_LEVEL        0x40u  /* trigger: an event on every wait while ready */
#define MIO_ONESHOT      0x80u  /* with edge or level: disarm after one event */

/* Nanosecond multipliers for timeouts. */
#define MIO_USEC INT64_C(1000)
#define MIO_MSEC INT64_C(1000000)
#define MIO_SEC  INT64_C(1000000000)

/* ---- Poll ----------------------------------------------------------------
 * fork: a child gets copies of the parent's descriptors but, with epoll, the
 * same kernel poll behind them, so anything it does to an inherited poll
 * (register, deregister, even mio_poll_free or mio_waker_free, which remove
 * wakers from it) would change the parent's.  A forked child therefore calls
 * nothing on polls, wakers, registrations or loops it inherited, and makes
 * its own with mio_poll_new (it may register inherited sockets there).  Their
 * memory is simply left behind; their descriptors are close-on-exec and go
 * away at exec or exit.  The parent's objects are untouched by the fork. */

typedef struct mio_poll mio_poll;

/* A poll on the best backend of this OS, or on the one the environment
 * variable MIO_BACKEND names (case-insensitively; empty is unset), read at
 * each call: to run a program on another backend without changing it.
 * Everything that takes the default obeys it: mio_poll_new_backend(NULL),
 * an event loop whose config names no backend, a group's loops.  A name
 * there that gives no backend is never ignored: the call fails as
 * mio_poll_new_backend with that name would (MIO_ENOSYS, or the uring
 * backend's refusal), and an error-level line says why and which backends
 * this build has, through the log (mio_set_log, MIO_LOG), or on stderr when
 * no log was chosen. */
MIO_API int mio_poll_new(mio_poll **out);
/* A poll on the named backend: "epoll", "kqueue", "iocp", "poll", "uring"
 * (exactly, MIO_BACKEND aside); NULL is the default, as for mio_poll_new.
 * A backend this build or OS lacks is MIO_ENOSYS, and so is a name no
 * backend has (a later version's backend may be asked for, and fallen back
 * from, the same way); a warn-level trace line says which, and lists the
 * backends this build has.
 * "uring" (Linux 5.13 or later, built with liburing; never the best) may
 * also be refused at run time: MIO_EPERM where io_uring is forbidden (a
 * seccomp filter, as in many containers, or kernel.io_uring_disabled),
 * MIO_ENOSYS where the kernel lacks it or is older; nothing is left open
 * then, and the other backends are unaffected. */
MIO_API int mio_poll_new_backend(const char *name, mio_poll **out);
/* The backend's name, as accepted by mio_poll_new_backend; NULL for NULL. */
MIO_API const char *mio_poll_backend(const mio_poll *p);
/* Frees the poll.  Wakers and registrations still attached are detached: their
 * calls become no-ops.  Must not race a wait on the same poll. */
MIO_API void mio_poll_free(mio_poll *p);

/* Waits for readiness and fills at most `capacity` events; returns how many.
 * timeout_ns < 0 blocks until an event, 0 returns at once, otherwise waits at
 * least that long (rounded up to the backend's resolution).  Returns MIO_EINTR
 * when a signal handler interrupted the wait (on Linux, also when the thread
 * made, waited on or freed a poll of the uring backend and the kernel's
 * io_uring work for it cut the wait short), MIO_EBUSY when another thread is
 * already waiting on this poll.  Sources beyond `capacity` are reported by
 * later calls; none is lost or starved. */
MIO_API int mio_poll_wait(mio_poll *p, mio_event *events, size_t capacity, int64_t timeout_ns);

/* Adds fd with a token and an interest (READABLE/WRITABLE/PRIORITY, OR-ed with
 * a trigger mode).  A source already ready is reported at once.  Errors:
 * MIO_EEXIST (already registered), MIO_EBADF (closed or invalid fd), MIO_EINVAL
 * (reserved token, empty or unknown interest bits), MIO_EPERM (a file the
 * backend cannot poll). */
MIO_API int mio_register(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest);
/* Replaces token and interest, re-arms a oneshot; readiness still present is
 * reported at once.  MIO_ENOENT if fd is not registered. */
MIO_API int mio_reregister(mio_poll *p, mio_fd fd, mio_token token, uint32_t interest);
/* Removes fd; no wait that starts after this returns reports it.  Deregister
 * before closing: epoll and kqueue drop a closed fd by themselves, the poll(2)
 * and Windows backends only once they notice (or when it is closed with
 * mio_close).  On io_uring the kernel holds the file until the deregistration
 * reaches it, with the next wait or at once when fd is closed with
 * mio_close: close(2) alone may leave a socket open (its peer not hung up)
 * until that wait. */
MIO_API int mio_deregister(mio_poll *p, mio_fd fd);

/* ---- Waker ----------------------------------------------------------------
 * Makes a poll report `token` READABLE from any thread.  Several per poll are
 * allowed.  Wakes coalesce: any number of wakes before the poller looks give
 * one event. */

typedef struct mio_waker mio_waker;
/* A waker for p that reports `token` (not MIO_TOKEN_RESERVED: MIO_EINVAL). */
MIO_API int  mio_waker_new(mio_poll *p, mio_token token, mio_waker **out);
/* Any thread.  Async-signal-safe where the OS allows (everywhere but
 * Windows).  A no-op once the poll is freed.  A wake while an earlier one is
 * still unanswered (the poll has not returned since) costs no system call. */
MIO_API int  mio_waker_wake(mio_waker *w);
/* Removes the waker from its poll (a wake still pending may or may not be
 * reported) and frees it; must not race mio_waker_wake on it.  May race
 * mio_poll_free of its poll (either order is safe). */
MIO_API void mio_waker_free(mio_waker *w);

/* ---- User-space readiness ------------------------------------------------
 * A source that is not a descriptor (a queue, a computation) made pollable.
 * The registration belongs to the polling side; set_readiness handles are for
 * producers on any thread.  Events carry the registration's token and
 * `readiness & interest`, where MIO_ERROR, MIO_READ_CLOSED and
 * MIO_WRITE_CLOSED count as always asked for (as for descriptors), with the
 * same edge/level/oneshot rules as descriptors: edge reports once per rise of
 * those bits, level on every wait while any is set, oneshot once until
 * reregistered.  The last readiness set is never lost: if it is a rise (or,
 * for level, not empty) an event reports it.  No allocation happens after
 * mio_registration_new, mio_set_readiness_clone and the first registration on
 * a poll.
 *
 * A registration is bound to the first poll it is registered with until that
 * poll is freed: it may be deregistered and registered there again, but
 * another poll refuses it with MIO_EEXIST.  mio_poll_free detaches the
 * registrations still bound to it: their sets reach no poll, reregister and
 * deregister say MIO_ENOENT, and they may be registered on another poll.
 * mio_poll_free may race mio_set_readiness_* calls, not the other calls on its
 * registrations. */

/* The polling side of a user-space source (one owner). */
typedef struct mio_registration mio_registration;
/* A producer's handle on a registration's readiness (one per producer). */
typedef struct mio_set_readiness mio_set_readiness;

/* A registration and its first set_readiness handle; readiness starts at 0. */
MIO_API int  mio_registration_new(mio_registration **reg, mio_set_readiness **set);
/* Like mio_register: readiness already present is reported at once.
 * MIO_EEXIST if registered (or bound to another poll); MIO_EINVAL for the
 * reserved token or an interest mio_register refuses. */
MIO_API int  mio_registration_register(mio_poll *p, mio_registration *r, mio_token token, uint32_t interest);
/* Replaces token and interest in one step (a concurrent set sees the old pair
 * or the new one), re-arms a oneshot, and reports readiness still present at
 * once.  MIO_ENOENT if not registered on p. */
MIO_API int  mio_registration_reregister(mio_poll *p, mio_registration *r, mio_token token, uint32_t interest);
/* No event for r is delivered after this returns.  MIO_ENOENT if not
 * registered on p. */
MIO_API int  mio_registration_deregister(mio_poll *p, mio_registration *r);
/* Deregisters and frees; set_readiness handles stay valid, their sets reach no
 * poll any more. */
MIO_API void mio_registration_free(mio_registration *r);
/* Replaces the readiness (does not OR into it) with any of READABLE,
 * WRITABLE, PRIORITY, ERROR, READ_CLOSED, WRITE_CLOSED (other bits:
 * MIO_EINVAL); the same value again is no new rise for edge.  Any thread;
 * lock-free, never blocks, never allocates; makes a system call only when the
 * poller may be asleep. */
MIO_API int  mio_set_readiness_set(mio_set_readiness *s, uint32_t readiness);
/* The readiness last set (0 for NULL). */
MIO_API uint32_t mio_set_readiness_get(const mio_set_readiness *s);
/* Another handle on the same registration; each handle is freed on its own,
 * and the registration's memory goes with the last of them and it. */
MIO_API int  mio_set_readiness_clone(mio_set_readiness *s, mio_set_readiness **out);
/* Frees this handle; the others and the registration are unaffected. */
MIO_API void mio_set_readiness_free(mio_set_readiness *s);

/* ---- Networking ------------------------------------------------------------
 * Every socket is non-blocking and close-on-exec from creation; no call raises
 * SIGPIPE. */

/* A socket address (IPv4, IPv6 or Unix) as the OS's sockaddr, and its length:
 * pass `&a.u.sa, a.len` to the socket API.  Filled by mio_addr_parse,
 * mio_addr_ip, mio_addr_sockaddr, mio_addr_unix, mio_accept,
 * mio_udp_recv_from, mio_udp_recv_batch, mio_local_addr and mio_peer_addr. */
typedef struct mio_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
        struct sockaddr_storage ss;
    } u;
    socklen_t len;
} mio_addr;

/* What mio_shutdown shuts: reading, writing (the peer reads end of stream),
 * or both. */
#define MIO_SHUT_RD   0
#define MIO_SHUT_WR   1
#define MIO_SHUT_RDWR 2

/* Longest text mio_addr_format writes, NUL included ("[v6%scope]:port"). */
#define MIO_ADDR_STRLEN 80

/* Parses "1.2.3.4:80" or "[::1]:80" (a numeric "%scope" allowed for IPv6).
 * No DNS; anything else is MIO_EINVAL, and a debug-level trace line says
 * what was wrong ("missing ':port'", "port out of range", "an IPv6 address
 * needs brackets", ...). */
MIO_API int mio_addr_parse(const char *text, mio_addr *out);
/* The address of an IP literal and a port.  ip is "1.2.3.4", or "::1" and
 * "fe80::1%2" (IPv6 without brackets, a numeric "%scope" at most), as
 * mio_addr_parse reads them; port is in host byte order.  No DNS: MIO_EINVAL
 * for NULL, a name, brackets, a port inside ip or anything else, with *out
 * unchanged and a debug-level trace line saying what was wrong. */
MIO_API int mio_addr_ip(const char *ip, uint16_t port, mio_addr *out);
/* A copy of an OS socket address of len bytes.  For what getaddrinfo
 * (ai_addr, ai_addrlen), recvfrom or another library hands over.  IPv4 and
 * IPv6 addresses take their family's length (len may be larger: the rest
 * is ignored), a Unix one keeps len.  MIO_EAFNOSUPPORT for another family,
 * MIO_EINVAL for NULL or a len too short for the family (or, for Unix,
 * longer than sockaddr_un); *out is unchanged then, and a debug-level trace
 * line says why. */
MIO_API int mio_addr_sockaddr(const struct sockaddr *sa, size_t len, mio_addr *out);
/* Writes the address as text, NUL-terminated, and returns its strlen;
 * MIO_ENOSPC if it does not fit.  Unix addresses format as their path (a
 * Linux abstract name with a leading '@', an unnamed socket as ""). */
MIO_API int mio_addr_format(const mio_addr *a, char *buf, size_t size);
/* The address of the Unix socket at path, for the datagram calls
 * (mio_udp_connect, mio_udp_send_to, mio_udp_send_batch).  On Linux a
 * leading '@' names an abstract socket: the rest of path (which may then
 * hold no NUL) is the name, no file is made, and it goes away with the last
 * socket bound to it; elsewhere '@' is an ordinary first character.
 * MIO_EINVAL for NULL or "", MIO_ENAMETOOLONG when path (with its '@') and
 * a NUL do not fit sockaddr_un's sun_path (108 bytes on Linux and Windows,
 * 104 on macOS and the BSDs).  Every call that takes a Unix path (mio_unix_listen, mio_unix_connect,
 * mio_unix_dgram) reads it the same way. */
MIO_API int mio_addr_unix(const char *path, mio_addr *out);

/* Listening TCP socket with SO_REUSEADDR; backlog <= 0 takes the default.
 * The first listener (TCP or Unix) also opens the process's reserve
 * descriptor (see mio_tcp_shed); it stays open, close-on-exec, for the life
 * of the process. */
MIO_API int mio_tcp_listen(const mio_addr *addr, int backlog, mio_fd *out);
/* Accepts one connection from a TCP or a Unix listener; peer may be NULL.
 * MIO_EAGAIN when none is pending.  MIO_EMFILE (MIO_ENFILE system-wide) when
 * out of descriptors (on Linux also when nothing is queued): the connection
 * stays queued and the listener stays ready, so a level registration would
 * report it on every wait and an edge one not again.  Answer it either by
 * waiting for a descriptor of yours to close with the listener deregistered
 * (clients wait in the queue meanwhile), or with mio_tcp_shed. */
MIO_API int mio_accept(mio_fd listener, mio_fd *out, mio_addr *peer);
/* mio_accept under its first name, for TCP and Unix listeners alike. */
MIO_API int mio_tcp_accept(mio_fd listener, mio_fd *out, mio_addr *peer);
/* The answer to MIO_EMFILE/MIO_ENFILE that needs no free descriptor: closes
 * the process's reserve descriptor for a moment, accepts and closes every
 * connection queued on listener (their clients see the connection closed
 * instead of hanging), and takes the reserve back.  Returns how many were
 * dropped (>= 0); the queue is then empty, so an edge registration is re-armed
 * and a level one is quiet until a new client comes: no spin, no stall.  Calls
 * from several threads take turns on the reserve.  If another thread grabs the
 * freed descriptor number in that moment, returns MIO_EMFILE with the queue
 * left as it was (the reserve is taken back once a descriptor is free): back
 * off, e.g. deregister the listener for a while. */
MIO_API int mio_tcp_shed(mio_fd listener);
/* Starts a connect; the poll reports WRITABLE (or MIO_ERROR) when it is
 * done, then mio_socket_error tells whether it succeeded (0: connected).
 * Do nothing else with the socket until then: register it for WRITABLE,
 * wait, and ask mio_socket_error first.  A read or write before that may
 * say MIO_EAGAIN (still connecting) or take the connect's error itself;
 * POSIX kernels then forget it (SO_ERROR is cleared and later reads would
 * say end of stream), so libmio keeps a refused, timed-out or unreachable
 * connection's error that one of its reads or writes took: mio_socket_error
 * returns it once, and reads at end of stream return it instead of 0. */
MIO_API int mio_tcp_connect(const mio_addr *addr, mio_fd *out);
/* Turns Nagle's algorithm off (on = true) so small writes go out at once. */
MIO_API int mio_tcp_set_nodelay(mio_fd fd, bool on);
/* A UDP socket bound to addr (port 0: any free port, see mio_local_addr). */
MIO_API int mio_udp_bind(const mio_addr *addr, mio_fd *out);
/* A UDP socket of family AF_INET or AF_INET6 (anything else is
 * MIO_EAFNOSUPPORT), not bound yet: for the options that only count before
 * the bind (MIO_SO_REUSEPORT, MIO_SO_V6ONLY, buffer sizes), then mio_bind.
 * Sending from it binds it to a free port, as with any unbound socket. */
MIO_API int mio_udp_open(int family, mio_fd *out);
/* Binds a socket made by mio_udp_open to addr (an address of its family),
 * or a datagram socket made by mio_unix_dgram(NULL, ...) to a Unix address
 * (mio_addr_unix).  MIO_EADDRINUSE, MIO_EADDRNOTAVAIL, MIO_EINVAL (already
 * bound), as the OS says. */
MIO_API int mio_bind(mio_fd fd, const mio_addr *addr);
/* Sets the default peer: mio_read, mio_write and a NULL `to` use it, and
 * datagrams from elsewhere are dropped.  The UDP calls (this one,
 * mio_udp_send_to, mio_udp_recv*, the batches) serve Unix datagram sockets
 * too, with Unix addresses (mio_addr_unix). */
MIO_API int mio_udp_connect(mio_fd fd, const mio_addr *peer);
/* to may be NULL on a connected socket. */
MIO_API ssize_t mio_udp_send_to(mio_fd fd, const void *buf, size_t len, const mio_addr *to);
/* from may be NULL.  A datagram longer than len is truncated to len bytes
 * (the rest is discarded); returns the bytes copied. */
MIO_API ssize_t mio_udp_recv_from(mio_fd fd, void *buf, size_t len, mio_addr *from);
/* mio_udp_recv_from that also tells, through *truncated (may be NULL), whether
 * the datagram was longer than len: the return value is still the bytes
 * copied, never more than len. */
MIO_API ssize_t mio_udp_recv(mio_fd fd, void *buf, size_t len, mio_addr *from, bool *truncated);
/* A listening Unix stream socket at path (accept with mio_accept); a path
 * too long for sockaddr_un is MIO_ENAMETOOLONG, a leading '@' is an abstract
 * name on Linux (mio_addr_unix).  Windows has them from Windows 10 1803 on;
 * before, the call is MIO_EAFNOSUPPORT.  The socket file stays when the
 * socket is closed (also when the process dies) and is the caller's to
 * remove: a file already at path, even one nobody listens on any more, is
 * MIO_EADDRINUSE.  Unlink it at shutdown, or listen with
 * mio_unix_listen_flags(path, backlog, MIO_UNIX_REMOVE_STALE, out). */
MIO_API int mio_unix_listen(const char *path, int backlog, mio_fd *out);
/* mio_unix_listen_flags: remove a stale socket file at path first.  Only a
 * socket file whose connect is refused (nothing listens on it) is removed;
 * a live listener (also one whose backlog is full), any other kind of file
 * or a file that cannot be probed stays, and the call is MIO_EADDRINUSE as
 * without the flag.  Not atomic: two servers starting on one path at the
 * same moment may both find it stale and one remove the other's fresh
 * file, so serialize them (a lock file) where that can happen.  Windows
 * cannot tell a stale file from a listener with a full backlog: it never
 * removes, and leaves MIO_EADDRINUSE. */
#define MIO_UNIX_REMOVE_STALE 0x01u
/* mio_unix_listen with flags (0 or MIO_UNIX_REMOVE_STALE; other bits are
 * MIO_EINVAL). */
MIO_API int mio_unix_listen_flags(const char *path, int backlog, uint32_t flags, mio_fd *out);
/* Starts a connect to the Unix socket at path, completed as mio_tcp_connect;
 * MIO_EAGAIN when the listener's backlog is full (try again later). */
MIO_API int mio_unix_connect(const char *path, mio_fd *out);
/* A Unix datagram socket bound to path (see mio_addr_unix; the file is the
 * caller's to remove), or unbound for NULL.  On Linux the path "@" binds
 * to an abstract name the kernel picks (mio_local_addr tells it), so that
 * a client can be answered without a file.  Windows has no Unix datagram
 * sockets: MIO_EAFNOSUPPORT. */
MIO_API int mio_unix_dgram(const char *path, mio_fd *out);
/* A connected stream pair. */
MIO_API int mio_socketpair(mio_fd out[2]);
/* A connected pair of Unix datagram sockets: what one end sends, the other
 * receives as whole datagrams.  MIO_EAFNOSUPPORT on Windows. */
MIO_API int mio_dgram_pair(mio_fd out[2]);
/* out[0] is the read end, out[1] the write end.  MIO_ENOSYS on Windows,
 * whose pipes cannot be polled for readiness (use mio_socketpair). */
MIO_API int mio_pipe(mio_fd out[2]);
/* Returns bytes read, 0 at end of stream, MIO_EAGAIN when nothing is there. */
MIO_API ssize_t mio_read(mio_fd fd, void *buf, size_t len);
/* Returns bytes written, possibly fewer than len (keep the rest for the next
 * WRITABLE), MIO_EAGAIN when none fit; MIO_EPIPE or MIO_ECONNRESET once the
 * peer is gone (never SIGPIPE).  MIO_ENOBUFS and MIO_ENOMEM say the kernel
 * was short of memory for a moment: nothing was written and the connection
 * is fine, but no event may come for it, so keep the data and try again on a
 * timer (docs/concepts.md, "Errors while reading and writing"). */
MIO_API ssize_t mio_write(mio_fd fd, const void *buf, size_t len);
/* mio_read into iovcnt buffers, filled in order. */
MIO_API ssize_t mio_readv(mio_fd fd, const mio_iovec *iov, int iovcnt);
/* mio_write from iovcnt buffers, sent in order (a short count may end
 * inside any of them). */
MIO_API ssize_t mio_writev(mio_fd fd, const mio_iovec *iov, int iovcnt);
/* Shuts one or both directions of a connected socket (MIO_SHUT_*). */
MIO_API int mio_shutdown(mio_fd fd, int how);
/* The pending socket error (SO_ERROR) as a MIO_E* code, 0 if none; reading
 * clears it.  On a stream socket whose connection failed (refused, timed
 * out, unreachable), also after a mio_read, mio_readv, mio_write or
 * mio_writev returned that error (see mio_tcp_connect); not after a call
 * outside libmio took it.  0 from a socket still connecting. */
MIO_API int mio_socket_error(mio_fd fd);
/* The address the socket is bound to (e.g. the port picked for port 0). */
MIO_API int mio_local_addr(mio_fd fd, mio_addr *out);
/* The connected peer's address; MIO_ENOTCONN while a connect is in progress. */
MIO_API int mio_peer_addr(mio_fd fd, mio_addr *out);
/* Closes a descriptor (deregister it first, see mio_deregister). */
MIO_API int mio_close(mio_fd fd);

/* ---- Datagrams: batches, segmentation offload, ECN, local addresses --------
 * What QUIC, DNS, game and media servers need from UDP beyond send and
 * receive: many datagrams per call, each with its peer; one buffer sent as
 * equal segments and coalesced segments received at once (Linux UDP_SEGMENT
 * and UDP_GRO, Windows USO and URO); the ECN bits of each datagram; the
 * local address and interface a datagram arrived on, and sending from a
 * chosen one.  docs/datagrams.md shows each at work.
 *
 * Everything the calls need lives in the caller's array: a receive writes
 * each datagram's bytes, addresses and metadata into its entry, a send reads
 * them from there, and neither allocates (control messages are built on the
 * stack).  An array filled by mio_udp_recv_batch can be sent back as it is:
 * peer is then the destination, local the source, segment_size the stride,
 * ecn the codepoint. */

/* ECN codepoints (RFC 3168): the low two bits of the IPv4 TOS or IPv6
 * traffic class byte. */
#define MIO_ECN_NOT_ECT 0   /* not ECN-capable transport */
#define MIO_ECN_ECT1    1   /* ECN-capable, ECT(1) */
#define MIO_ECN_ECT0    2   /* ECN-capable, ECT(0) */
#define MIO_ECN_CE      3   /* congestion experienced */

/* mio_datagram.flags, as a receive sets them. */
#define MIO_DGRAM_TRUNCATED 0x01u  /* the datagram (or the coalesced segments)
                                      did not fit `size`: the rest is lost */

/* One datagram of a batch: caller-owned storage, one entry per datagram.
 *
 *   buf, len     send: the bytes; receive: where they go, and len is set to
 *                how many arrived (at most size).
 *   size         receive: room in buf (send ignores it).
 *   peer         send: the destination (peer.len 0 on a connected socket:
 *                its peer); receive: the source.
 *   local        send: the source address (its port is ignored) and with
 *                ifindex the interface to send from; local.len 0 lets the OS
 *                choose both, the unspecified address ("0.0.0.0", "::") the
 *                address only.  Where the OS cannot choose
 *                (caps.available without MIO_UDP_SEND_LOCAL) such a
 *                datagram fails with MIO_ENOSYS.  Receive, with
 *                MIO_UDP_RECV_LOCAL enabled: the datagram's destination
 *                address (port 0; an IPv4 one as IPv4-mapped IPv6 on an IPv6
 *                socket, as peer is), else local.len 0.  For a multicast or
 *                broadcast datagram it is that group or broadcast address,
 *                which cannot be a source: clear local before replying.
 *   ifindex      send: with local, see above; receive: the interface the
 *                datagram arrived on, with MIO_UDP_RECV_LOCAL, where the OS
 *                tells (0 otherwise).
 *   segment_size send: 0 sends buf as one datagram; otherwise buf is cut
 *                into datagrams of segment_size bytes (the last may be
 *                shorter), all with this entry's peer, local and ecn: by the
 *                OS when it offers segmentation offload (MIO_UDP_GSO), one
 *                system call for up to 64 segments, else by the library,
 *                segment by segment.  Receive: 0 for one datagram; with
 *                MIO_UDP_GRO, nonzero when buf holds several datagrams of
 *                one peer coalesced by the OS, each segment_size bytes but
 *                the last (which may be shorter): len > segment_size.
 *   ecn          send: the ECN codepoint (MIO_ECN_*; anything above 3 is
 *                MIO_EINVAL) for the IP header, where the OS can set it
 *                (MIO_UDP_SEND_ECN; else the datagram goes without it).  A
 *                nonzero codepoint replaces the socket's whole TOS / traffic
 *                class byte for that datagram.  Receive: the codepoint the
 *                datagram carried, with MIO_UDP_RECV_ECN (else 0).
 *   flags        receive: MIO_DGRAM_*; send ignores it. */
typedef struct mio_datagram {
    void *buf;
    size_t len;
    size_t size;
    mio_addr peer;
    mio_addr local;
    uint32_t ifindex;
    uint32_t flags;
    uint16_t segment_size;
    uint8_t ecn;
} mio_datagram;

/* Datagram features, for mio_udp_enable, mio_udp_disable and mio_udp_caps.
 * The first three are receive options a socket turns on; the others are
 * what its sends can do, reported by mio_udp_caps only. */
#define MIO_UDP_RECV_ECN   0x01u  /* receive each datagram's ECN codepoint
                                     (IP_RECVTOS, IPV6_RECVTCLASS; Windows
                                     IP_RECVECN) */
#define MIO_UDP_RECV_LOCAL 0x02u  /* receive each datagram's destination
                                     address and interface (IP_PKTINFO,
                                     IPV6_RECVPKTINFO; IP_RECVDSTADDR on the
                                     BSDs, without the interface) */
#define MIO_UDP_GRO        0x04u  /* let the OS coalesce datagrams of one peer
                                     into one receive (Linux UDP_GRO, Windows
                                     URO) */
#define MIO_UDP_GSO        0x08u  /* caps: segment_size is cut by the OS */
#define MIO_UDP_SEND_ECN   0x10u  /* caps: ecn reaches the IP header */
#define MIO_UDP_SEND_LOCAL 0x20u  /* caps: local (and ifindex) are honoured */

/* What a datagram socket can do here, and what is on: mio_udp_caps fills
 * it. */
typedef struct mio_udp_capabilities {
    uint32_t available;     /* MIO_UDP_* this socket can use on this OS */
    uint32_t enabled;       /* the receive options now on, and MIO_UDP_GSO
                               while sends use the offload */
    uint32_t gso_segments;  /* segments one system call sends at most: 64
                               with MIO_UDP_GSO enabled, else 1 (the library
                               then sends each segment by itself) */
    uint32_t gro_segments;  /* segments one coalesced receive may hold: 64
                               with MIO_UDP_GRO available, else 1.  Receive
                               buffers of 65535 bytes hold the largest */
    uint32_t batch;         /* datagrams one system call moves at most (the
                               library loops beyond): 32 on Linux
                               (sendmmsg, recvmmsg), 1 elsewhere */
} mio_udp_capabilities;

/* Sends d[0..n): returns how many entries went out whole, in order (a
 * segmented entry counts once, for all its segments), or MIO_EAGAIN when
 * none did (the socket buffer is full: wait for WRITABLE).  Fewer than n
 * means the next entry met MIO_EAGAIN or an error: sending again from it
 * reports that error (skip the entry to go on; the batch moved fewer than
 * asked, which re-arms an emulated edge).  A segmented entry that went out
 * only in part (without offload, when the buffer filled between its
 * segments) is not counted: its buf and len are moved past the segments
 * that did go out, so that sending from it again sends the rest.
 *
 * Segmentation offload that the OS advertises but the route refuses (some
 * virtual NICs fail such a send with EIO or EINVAL; so does a segment too
 * large for the interface's MTU) is not an error: that entry's segments go
 * out one by one, and from then on every send on this socket cuts its
 * segments itself (mio_udp_caps then says gso_segments 1; where the
 * small table that remembers it cannot be allocated, the next batch tries
 * the offload again, and falls back again).  mio_close forgets this; a socket closed otherwise may leave it to the next socket
 * with the same number (which then merely sends without offload).
 *
 * MIO_EINVAL, before anything is sent, for a NULL d (n > 0), a NULL buf
 * with len > 0, ecn above 3, a local that is not IPv4 or IPv6, or an entry
 * whose peer is malformed (mio_udp_send_to's checks; a family the OS lacks
 * is MIO_EAFNOSUPPORT). */
MIO_API ssize_t mio_udp_send_batch(mio_fd fd, mio_datagram *d, size_t n);
/* Receives up to n datagrams into d[0..n) (buf, size in; len, peer, local,
 * ifindex, segment_size, ecn, flags out) and returns how many, or
 * MIO_EAGAIN when none is waiting.  Fewer than n means the socket is
 * drained (or met an error after the first datagram: the next call reports
 * it): the next arrival is a new edge on every backend.  A datagram longer
 * than size is cut to size and flagged MIO_DGRAM_TRUNCATED, as
 * mio_udp_recv does.  MIO_EINVAL for a NULL d (n > 0) or a NULL buf with
 * size > 0, before anything is received. */
MIO_API ssize_t mio_udp_recv_batch(mio_fd fd, mio_datagram *d, size_t n);
/* Turns receive options on: MIO_UDP_RECV_ECN, MIO_UDP_RECV_LOCAL,
 * MIO_UDP_GRO, OR-ed.  All or nothing: MIO_ENOSYS, with nothing changed,
 * when one of them is not available on this socket (mio_udp_caps says which
 * are), MIO_EINVAL for other bits.  On an IPv6 socket they cover the IPv4
 * datagrams it receives too where the OS lets them.  With MIO_UDP_GRO on,
 * a receive may hold many datagrams: give it room (see mio_udp_caps). */
MIO_API int mio_udp_enable(mio_fd fd, uint32_t what);
/* Turns receive options off (the same bits as mio_udp_enable). */
MIO_API int mio_udp_disable(mio_fd fd, uint32_t what);
/* What datagram socket fd can do, and what is on. */
MIO_API int mio_udp_caps(mio_fd fd, mio_udp_capabilities *out);

/* Joins (or leaves) the multicast group `group` (an IPv4 or IPv6 multicast
 * address; its port is ignored) on the interface with index ifindex (0: the
 * OS picks one by its routes): datagrams sent to the group, on the port the
 * socket is bound to, then arrive.  An IPv6 socket joins IPv4 groups for
 * its IPv4-mapped traffic where the OS allows (Linux).  MIO_EINVAL for an
 * address that is not multicast, MIO_EADDRINUSE for a group already joined
 * there, MIO_EADDRNOTAVAIL for leaving one not joined or an interface that
 * cannot. */
MIO_API int mio_udp_join(mio_fd fd, const mio_addr *group, uint32_t ifindex);
/* Leaves a group joined with mio_udp_join (same group and ifindex). */
MIO_API int mio_udp_leave(mio_fd fd, const mio_addr *group, uint32_t ifindex);

/* ---- Socket options --------------------------------------------------------
 * mio_sockopt_set and mio_sockopt_get take one of the MIO_SO_* names below
 * and an int.  An option the OS (or this kind of socket) lacks is
 * MIO_ENOSYS; an IP option on a socket of another family (MIO_SO_V6ONLY on
 * IPv4, any IP option on a Unix socket) is MIO_EAFNOSUPPORT; a value out of
 * the option's range is MIO_EINVAL, with nothing changed.  Booleans are 0 or
 * 1.  The IP-level ones set on an IPv6 socket apply to its IPv6 traffic and,
 * where the OS allows, to its IPv4-mapped traffic too; get reports the IPv6
 * setting. */

/* Bool: other sockets may bind the same address and port (SO_REUSEPORT;
 * on Linux the kernel spreads datagrams and connections over them).  Set it
 * before the bind (mio_udp_open, mio_bind).  MIO_ENOSYS on Windows. */
#define MIO_SO_REUSEPORT      1
/* Bool: datagrams may go to broadcast addresses (SO_BROADCAST). */
#define MIO_SO_BROADCAST      2
/* Bytes: the receive buffer (SO_RCVBUF), > 0.  What get returns is what the
 * OS made of it: Linux doubles the value set (the rest is its bookkeeping)
 * and caps it at net.core.rmem_max. */
#define MIO_SO_RCVBUF         3
/* Bytes: the send buffer (SO_SNDBUF), as MIO_SO_RCVBUF (Linux caps it at
 * net.core.wmem_max). */
#define MIO_SO_SNDBUF         4
/* 1..255: the TTL (IPv4) or hop limit (IPv6) of unicast datagrams. */
#define MIO_SO_TTL            5
/* 0..255: the TTL or hop limit of multicast datagrams (1 by default: the
 * local network; 0: this host only). */
#define MIO_SO_MULTICAST_TTL  6
/* Bool: multicast datagrams this host sends are also delivered to its own
 * sockets that joined the group (on by default). */
#define MIO_SO_MULTICAST_LOOP 7
/* Interface index (0: the OS's choice by route) that multicast datagrams
 * go out of.  Get: IPv6 everywhere; IPv4 where the OS tells the index
 * (Windows), MIO_ENOSYS elsewhere (Linux reports only an address). */
#define MIO_SO_MULTICAST_IF   8
/* Bool, IPv6 sockets: IPv6 only, or IPv4-mapped traffic too (IPV6_V6ONLY;
 * the default is off on Linux and the BSDs, on on Windows).  Set it before
 * the bind. */
#define MIO_SO_V6ONLY         9
/* Path MTU: 0 lets the OS fragment datagrams larger than the path MTU; 1
 * sets don't-fragment, and a datagram larger than the path MTU fails with
 * MIO_EMSGSIZE (IP_MTU_DISCOVER IP_PMTUDISC_DO / IPV6_DONTFRAG,
 * IP_DONTFRAG, Windows IP_DONTFRAGMENT); 2 (MIO_DONTFRAG_PROBE) sets
 * don't-fragment but ignores the OS's path MTU estimate, failing only above
 * the interface MTU, as QUIC's path MTU discovery wants (Linux
 * IP_PMTUDISC_PROBE, Windows 10 1703 IP_MTU_DISCOVER; MIO_ENOSYS
 * elsewhere). */
#define MIO_SO_DONTFRAG       10
/* MIO_SO_DONTFRAG's value 2. */
#define MIO_DONTFRAG_PROBE    2
/* Bool, TCP: keep-alive probes on an idle connection (SO_KEEPALIVE). */
#define MIO_SO_KEEPALIVE      11
/* Seconds, TCP, >= 1: idle time before the first keep-alive probe
 * (TCP_KEEPIDLE; TCP_KEEPALIVE on macOS and Windows). */
#define MIO_SO_KEEPIDLE       12
/* Seconds, TCP, >= 1: time between keep-alive probes (TCP_KEEPINTVL). */
#define MIO_SO_KEEPINTVL      13
/* Count, TCP, >= 1: unanswered probes before the connection is dropped
 * (TCP_KEEPCNT).  The three keep-alive times need Windows 10 1709; the OS
 * caps each (Linux: idle and interval 32767 s, count 127). */
#define MIO_SO_KEEPCNT        14

/* Sets option opt (MIO_SO_*) of socket fd to value. */
MIO_API int mio_sockopt_set(mio_fd fd, int opt, int value);
/* Reads option opt of socket fd into *value. */
MIO_API int mio_sockopt_get(mio_fd fd, int opt, int *value);

/* ---- Signals ----------------------------------------------------------------
 * A set of signals made pollable: the poll reports the source's token
 * READABLE when one of them arrives, and mio_signal_read says which arrived
 * since the last read and how many times.  Several sources, on one poll or
 * on several (one per event loop, say), may watch the same signal: each sees
 * every delivery.
 *
 * POSIX: while at least one source watches a signal, libmio's own handler
 * (sigaction, SA_RESTART) is its disposition; the first source saves the
 * disposition it replaces and freeing the last restores it, whatever it was
 * (default, ignored, another handler, which is not called meanwhile).  No
 * thread's signal mask is touched: the signal may arrive on any thread that
 * does not block it, and a wait on that thread returns MIO_EINTR (the next
 * wait reports the source).  The handler only counts and wakes: it takes no
 * lock and allocates nothing, so signals may arrive at any moment, as often
 * as they like (standard signals coalesce in the kernel: counts are
 * deliveries of the handler, never more than were sent, and at least one
 * per burst).  Do not change a watched signal's disposition behind
 * libmio's back.  SIGKILL, SIGSTOP and the signals of faults (SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL), whose handler could only return to the fault, are
 * MIO_EINVAL, as is any number the OS refuses to catch.
 *
 * Windows has no signals; its console control events come through the same
 * sources, as these numbers (the handler Windows runs on a thread of its
 * own is installed with the first source and removed with the last):
 *   CTRL_C_EVENT        SIGINT (2)        Ctrl-C
 *   CTRL_BREAK_EVENT    SIGBREAK (21)     Ctrl-Break
 *   CTRL_CLOSE_EVENT    MIO_SIGHUP (1)    the console is closing
 *   CTRL_LOGOFF_EVENT   MIO_SIGLOGOFF (23)  the user logs off (services only)
 *   CTRL_SHUTDOWN_EVENT SIGTERM (15)      the system shuts down (services only)
 * An event that a source watches is handled: Ctrl-C and Ctrl-Break no
 * longer end the process.  For the last three Windows ends the process once
 * its handler returns, so libmio's waits there, leaving the program the
 * system's grace period (a few seconds) to finish and exit by itself.  Other
 * numbers are MIO_EINVAL there.
 *
 * fork: a forked child keeps the handler and the sources' descriptors; it
 * must not use the parent's sources (see "Poll").  Programs started with
 * mio_process_spawn start with every signal at its default and none
 * blocked. */

#ifdef _WIN32
#define MIO_SIGHUP    1     /* CTRL_CLOSE_EVENT */
#define MIO_SIGLOGOFF 23    /* CTRL_LOGOFF_EVENT */
#endif

/* A set of signals watched through a poll. */
typedef struct mio_signal mio_signal;

/* One entry of mio_signal_read: a signal and how often it was delivered
 * since the last read (>= 1). */
typedef struct mio_signal_info {
    int signo;
    uint32_t count;
} mio_signal_info;

/* Starts watching the n signals (1 <= n <= 64; repeats are ignored) and
 * registers the source with p under token: an edge, READABLE once per rise,
 * as for a descriptor (a signal arriving after the read that answered the
 * last event makes a new one).  Deliveries before this returns are not
 * counted.  MIO_EINVAL for the reserved token, n out of range or a signal
 * that cannot be watched; MIO_EMFILE and the like for its wake-up
 * descriptor (one per source on POSIX, an eventfd or a pipe). */
MIO_API int mio_signal_new(mio_poll *p, mio_token token, const int *signals, size_t n,
                           mio_signal **out);
/* Fills out with the watched signals delivered since the last read, each
 * once with its count, lowest number first, and resets their counts;
 * returns how many entries it filled (0: nothing arrived, a spurious
 * event).  If it fills all cap, call it again: more may be waiting.  From
 * the thread that polls (one thread at a time). */
MIO_API int mio_signal_read(mio_signal *s, mio_signal_info *out, size_t cap);
/* Deregisters and frees the source; the last source of a signal restores
 * its disposition.  Deliveries in progress on other threads are waited out,
 * so this must not be called from a signal handler.  NULL is a no-op.
 * Before its poll is freed. */
MIO_API void mio_signal_free(mio_signal *s);

/* ---- Child processes --------------------------------------------------------
 * Programs started without races against other threads: every descriptor
 * libmio makes is close-on-exec, the pipes made for a child reach it only
 * as its standard streams, and no other descriptor of this process reaches
 * it (POSIX: all above 2 are closed at its exec; Windows: it inherits
 * exactly its three standard handles, PROC_THREAD_ATTRIBUTE_HANDLE_LIST).
 * Every signal starts at its default disposition and unblocked in the child
 * (ignored signals and blocked masks are not inherited).  An exec that
 * fails is the spawn's error in the parent (MIO_ENOENT for a missing
 * program, MIO_EACCES, ...), never a child that exits 127.
 *
 * The exit is an event: mio_process_register makes a poll report the
 * token READABLE once the child has exited; mio_process_try_wait then
 * returns its status and reaps it.  How: a process descriptor on Linux
 * (pidfd_open, 5.3+) polled like any descriptor; EVFILT_PROC NOTE_EXIT on
 * kqueue; the process handle on Windows; elsewhere (and where pidfds are
 * missing), SIGCHLD through a signal source (see Signals: while such a
 * registration exists, SIGCHLD's disposition is libmio's).  libmio only ever
 * waits for a child it started, by its process id (never waitpid(-1)), and
 * leaves no zombie behind: mio_process_free ends and reaps a child still
 * running.  A child reaped behind libmio's back (a SIGCHLD handler calling
 * waitpid(-1), SIGCHLD ignored) reports MIO_ECHILD.
 *
 * A process handle is used from one thread at a time. */

/* A child process started by mio_process_spawn. */
typedef struct mio_process mio_process;

/* What a child's standard stream is (mio_stdio.how). */
#define MIO_STDIO_INHERIT 0     /* this process's own (the default: zero) */
#define MIO_STDIO_NULL    1     /* the null device (/dev/null, NUL) */
#define MIO_STDIO_CLOSE   2     /* closed in the child */
#define MIO_STDIO_FD      3     /* mio_stdio.fd: a descriptor (a SOCKET or HANDLE
                                   on Windows) of the caller, which keeps it */
#define MIO_STDIO_PIPE    4     /* a new pipe (Windows: a socket pair): the
                                   parent's end, non-blocking, close-on-exec,
                                   ready to register, comes back in pipes[i] */

/* One standard stream of a child. */
typedef struct mio_stdio {
    int how;                    /* MIO_STDIO_* */
    mio_fd fd;                  /* for MIO_STDIO_FD */
} mio_stdio;

/* What to start.  A zeroed struct with argv set starts argv[0] with this
 * process's environment, directory and standard streams. */
typedef struct mio_process_options {
    const char *file;           /* the program; NULL: argv[0].  Without a '/'
                                   (POSIX) it is looked up in PATH: the PATH of
                                   env if given, else this process's.  Windows:
                                   SearchPath's rules, ".exe" added if missing */
    const char *const *argv;    /* NULL-terminated, at least argv[0] */
    const char *const *env;     /* NULL-terminated "NAME=value" strings; NULL:
                                   this process's environment */
    const char *cwd;            /* the child's directory; NULL: this process's */
    mio_stdio stdio[3];         /* stdin, stdout, stderr */
} mio_process_options;

/* How a child ended. */
typedef struct mio_exit_status {
    int code;                   /* its exit status when signal is 0 (Windows: the
                                   exit code as an int) */
    int signal;                 /* the signal that ended it, else 0 (Windows:
                                   the signal given to mio_process_kill when
                                   that ended it) */
} mio_exit_status;

/* Starts a program.  pipes (may be NULL if no stream is MIO_STDIO_PIPE)
 * gets, for each MIO_STDIO_PIPE stream, the parent's end: the write end for
 * stdin, the read end for stdout and stderr; MIO_INVALID_FD for the others.
 * The caller owns those ends (mio_close them).  Errors: MIO_EINVAL (no argv,
 * an unknown `how`), MIO_EBADF (a MIO_STDIO_FD that is no descriptor),
 * MIO_ENOENT (no such program or directory), MIO_EACCES, any other -errno
 * of the failed exec (-ENOEXEC for a file that is no program: no shell is
 * tried), MIO_EMFILE, ...; nothing is left behind then: no child, no
 * descriptor.  Any thread (docs/signals-and-processes.md has the fork and
 * exec notes). */
MIO_API int mio_process_spawn(const mio_process_options *o, mio_fd pipes[3], mio_process **out);
/* The child's process id (-1 for NULL). */
MIO_API int64_t mio_process_pid(const mio_process *c);
/* Makes p report token READABLE once the child has exited (at once if it
 * already has): one event, which a spurious one may precede (then
 * mio_process_try_wait says MIO_EAGAIN).  One poll at a time: MIO_EEXIST if
 * registered; MIO_EINVAL for the reserved token; MIO_ESRCH once reaped. */
MIO_API int mio_process_register(mio_poll *p, mio_process *c, mio_token token);
/* No wait that starts after this returns reports the child.  MIO_ENOENT if
 * not registered on p. */
MIO_API int mio_process_deregister(mio_poll *p, mio_process *c);
/* Never blocks: 0 and *out (may be NULL) once the child has exited, and it
 * is reaped (later calls give the same status); MIO_EAGAIN while it runs;
 * MIO_ECHILD if it was reaped behind libmio's back. */
MIO_API int mio_process_try_wait(mio_process *c, mio_exit_status *out);
/* Sends signo (POSIX; 0 only checks that the child exists).  Windows:
 * SIGTERM, SIGINT, SIGBREAK and 9 (SIGKILL) end it with TerminateProcess
 * (exit code 1, reported as that signal), 0 checks, others are MIO_ENOSYS.
 * A child that exited but was not reaped yet takes it as a no-op;
 * MIO_ESRCH once it was reaped. */
MIO_API int mio_process_kill(mio_process *c, int signo);
/* Deregisters (before its poll is freed) and frees the handle.  A child
 * still running is killed (SIGKILL, TerminateProcess) and reaped first, so
 * this may block for as long as the system takes to end it: to let it run
 * on, do not free the handle (or start it detached, e.g. through a shell's
 * `&`).  NULL is a no-op. */
MIO_API void mio_process_free(mio_process *c);

/* ---- Timer wheel ------------------------------------------------------------ */

/*
 * A hashed timer wheel on the monotonic clock, usable without a poll.  Time is
 * cut into ticks; each timeout is due at the first tick boundary at or after
 * its delay has passed, so it never fires early and, when polled promptly,
 * fires within one tick after.  Delays longer than a turn of the wheel
 * (tick_ns * wheel_size) are exact too; they only cost a little bookkeeping
 * per turn they wait.  Not thread-safe: use a timer from one thread at a time.
 *
 * A set reads no clock (a reading costs several times what the rest of a set
 * does): the delay counts from the timer's next reading, which it takes in
 * mio_timer_next and mio_timer_poll and after every 256 sets.  That reading
 * comes after the set, so the timeout is never early; it is later than
 * "delay after the set" by the time that passes before the timer is asked
 * again, which in a loop that sets, then waits on mio_timer_next, is none to
 * speak of.  A caller that sets, then works a long while before asking,
 * gets its timeouts that much later (at most the delay later than it would
 * have seen them due otherwise).
 *
 * Periodic work: re-arm from the planned deadline, not from now.  A timeout
 * fires up to a tick after its deadline, and later when the thread was busy;
 * re-arming with a delay counts the period from that late moment, so the
 * lateness adds up period after period (a job re-armed every 10 ms on a 1 ms
 * tick runs fewer than 100 times a second, fewer still on a busy thread).
 * Keep the deadline and arm the next one at deadline + period with
 * mio_timer_set_at (mio_loop_timeout_at): each firing may be late, but the
 * lateness never carries over.
 *
 *     next = mio_clock_ns() + period;              // the first one
 *     mio_timer_set_at(t, next, job, &h);
 *     ...                                          // when it fires:
 *     next += period;                              // the plan, not the clock
 *     mio_timer_set_at(t, next, job, &h);
 *
 * A deadline already passed is due at once: after a stall longer than a
 * period, the missed periods fire one per poll (one per loop tick) until the
 * plan is caught up; skip them instead with
 * `while (next <= mio_clock_ns()) next += period;`.
 */
typedef uint64_t mio_timeout;   /* 0 is never a valid handle */
typedef struct mio_timer mio_timer;

/* The monotonic clock of timer and loop deadlines, in nanoseconds.  Its
 * start is arbitrary; it never goes back and is not the time of day: the
 * `now` of mio_timer_set_at and mio_loop_timeout_at deadlines. */
MIO_API int64_t mio_clock_ns(void);

/* tick_ns: the resolution, 0 = 1 ms.  wheel_size: slots, rounded up to a
 * power of two, 0 = 1024, at most 2^24.  capacity: how many timeouts may be
 * pending at once, exactly (no rounding), 0 = 65536, at most 2^31.  All memory
 * is allocated here; set, cancel and poll never allocate. */
MIO_API int  mio_timer_new(uint64_t tick_ns, size_t wheel_size, size_t capacity, mio_timer **out);
/* Frees the timer; pending timeouts are dropped without firing. */
MIO_API void mio_timer_free(mio_timer *t);
/* Arms a timeout that mio_timer_poll() returns `arg` for once delay_ns has
 * passed (counted from the timer's next clock reading, see above); *out is
 * its handle.  A delay of 0 is due at the next poll; delays too large to
 * represent are clamped (to about 292 years from boot).  O(1).
 * MIO_ENOSPC when capacity timeouts are pending, MIO_EINVAL for a NULL t or
 * out. */
MIO_API int  mio_timer_set(mio_timer *t, uint64_t delay_ns, void *arg, mio_timeout *out);
/* mio_timer_set with an absolute deadline on mio_clock_ns.  Due at the first
 * tick boundary at or after deadline_ns, never before; a deadline already
 * reached (or negative) is due at the next poll, as a delay of 0 is.  For
 * periodic timeouts without drift (see above).  Errors as mio_timer_set,
 * with nothing armed. */
MIO_API int  mio_timer_set_at(mio_timer *t, int64_t deadline_ns, void *arg, mio_timeout *out);
/* Disarms a pending timeout.  true if it was pending (it now never fires);
 * false for a timeout already fired or cancelled, 0, or any other value (a
 * handle stays recognisably stale while its slot is reused, up to 2^31
 * times).  O(1). */
MIO_API bool mio_timer_cancel(mio_timer *t, mio_timeout timeout);
/* Re-arms a pending timeout to be due once delay_ns has passed, as a set
 * would, keeping its handle and arg: what cancelling and setting it again
 * do, in one step and cheaper (an idle timeout's re-arm on activity).
 * true if it was pending; false, and nothing is armed, for any other
 * handle (as for cancel).  O(1). */
MIO_API bool mio_timer_reset(mio_timer *t, mio_timeout timeout, uint64_t delay_ns);
/* Nanoseconds until the earliest deadline, 0 once one is due, -1 if none is
 * pending (or t is NULL): the bound for a wait.  O(1) while the earliest
 * deadline stays (and for the sets since the last call, O(1) each); once it
 * is popped, cancelled or reset, the next call finds the new one: a bitmap
 * search, or for a deadline beyond the current turn a pass over the slots
 * (plus the later-turn timeouts of slots whose earliest went). */
MIO_API int64_t mio_timer_next(const mio_timer *t);
/* Pops one due timeout into *arg (arg may be NULL): the earliest deadline
 * first, timeouts due at the same tick in the order they were set.  false
 * when none is due (or t is NULL).  Call until false to drain. */
MIO_API bool mio_timer_poll(mio_timer *t, void **arg);

/* ---- Event loop ------------------------------------------------------------
 * mio 0.6's EventLoop: a poll, a timer wheel and a channel driven by one
 * thread (the caller's; there is no background thread).  Each tick:
 *   1. waits on the poll, no longer than the next timer deadline or the
 *      caller's timeout, and not at all while channel messages are queued
 *      (after the earliest timer was cleared, the wait may end at its old
 *      deadline, a tick with nothing due: the loop finds the next deadline
 *      only when it needs it);
 *   2. calls `ready` for every event, in the order the poll returned them;
 *   3. calls `notify` for up to messages_per_tick messages, oldest first (the
 *      rest wait for later ticks, which then do not block);
 *   4. calls `timeout` for every expired timer, earliest first;
 *   5. calls `interrupted` if a signal handler cut the wait short;
 *   6. calls `tick`.
 * A tick allocates nothing.  The loop's own wake-ups never reach `ready`: it
 * takes none of the caller's tokens.  The loop and its timers belong to the
 * thread that runs it; only senders may be used from other threads. */

/* An event loop (one thread runs it). */
typedef struct mio_loop mio_loop;
/* A handle on a loop's channel, for any thread (see mio_loop_channel). */
typedef struct mio_sender mio_sender;

/* The loop's callbacks, each with the ctx given to run: `ready` per event
 * (the caller's token and readiness flags), `notify` per channel message,
 * `timeout` per expired timer (its arg), `interrupted` when a signal cut the
 * wait short, `tick` at the end of every tick. */
typedef struct mio_handler {           /* any member may be NULL */
    void (*ready)(mio_loop *l, void *ctx, mio_token token, uint32_t readiness);
    void (*notify)(mio_loop *l, void *ctx, void *msg);
    void (*timeout)(mio_loop *l, void *ctx, void *arg);
    void (*interrupted)(mio_loop *l, void *ctx);
    void (*tick)(mio_loop *l, void *ctx);
} mio_handler;

/* A zero field takes its default, so `mio_loop_config c = {0}` and then the
 * fields one cares about is a complete config. */
typedef struct mio_loop_config {
    size_t notify_capacity;     /* channel slots, exact (default 4096) */
    size_t messages_per_tick;   /* notify calls per tick at most (256) */
    size_t timer_wheel_size;    /* timer wheel slots (1024) */
    size_t timer_capacity;      /* pending timeouts at most, exact (65536) */
    size_t events_capacity;     /* events per wait (1024) */
    uint64_t timer_tick_ns;     /* timer resolution (1 ms) */
    const char *backend;        /* as for mio_poll_new_backend; NULL = the
                                   default (MIO_BACKEND, else the best) */
} mio_loop_config;

/* Fills c with the defaults above (every size > 0). */
MIO_API void mio_loop_config_default(mio_loop_config *c);
/* A loop with config c (NULL: the defaults).  Everything a tick needs is
 * allocated here.  An unknown backend is MIO_ENOSYS, a refused one what
 * mio_poll_new_backend says. */
MIO_API int  mio_loop_new(const mio_loop_config *c, mio_loop **out);
/* Frees the loop, its poll and its timers; not from one of its callbacks.
 * Senders stay valid and their sends fail with MIO_EPIPE from now on.
 * Messages still queued are dropped without a callback (and a send racing
 * this call may succeed and be dropped too): if messages own memory, stop
 * the senders first.  A group's loop is not freed here but with its group
 * (mio_group_free). */
MIO_API void mio_loop_free(mio_loop *l);
/* The loop's poll: register sources here, with any token but
 * MIO_TOKEN_RESERVED (and, on a group's loop, below MIO_GROUP_TOKEN_FIRST).
 * Do not wait on it yourself. */
MIO_API mio_poll *mio_loop_poll(mio_loop *l);
/* Runs ticks until a callback calls mio_loop_shutdown (that tick completes,
 * `tick` included); returns 0 then, or the first error of a wait.  May be
 * called again afterwards.  A group's loop runs only through its group:
 * MIO_EINVAL here and from mio_loop_run_once. */
MIO_API int  mio_loop_run(mio_loop *l, const mio_handler *h, void *ctx);
/* Runs one tick whose wait lasts at most timeout_ns (< 0: until there is
 * something to do).  A signal is not an error: it calls `interrupted` and
 * returns 0.  From one of the loop's own callbacks (on its thread), run and
 * run_once return MIO_EDEADLK; while another thread runs the loop (which
 * belongs to one thread: a bug of the caller's), MIO_EBUSY.  A callback may
 * run another loop. */
MIO_API int  mio_loop_run_once(mio_loop *l, const mio_handler *h, void *ctx, int64_t timeout_ns);
/* Makes mio_loop_run return after the current tick.  To stop a loop from
 * another thread, send it a message whose `notify` calls this.  On a
 * group's loop it shuts the whole group down (mio_group_shutdown). */
MIO_API void mio_loop_shutdown(mio_loop *l);
/* True from mio_loop_new, and again from each mio_loop_run, until
 * mio_loop_shutdown: `while (mio_loop_is_running(l)) mio_loop_run_once(...)`
 * stops the way mio_loop_run does.  For a group's loop, also false once
 * the group is shut down. */
MIO_API bool mio_loop_is_running(const mio_loop *l);
/* Calls `timeout` with arg once delay_ns has passed (never earlier; rounded up
 * to the timer's tick).  From a `ready` or `notify` callback, the delay counts
 * from the clock reading the loop takes after those callbacks, for all the
 * timeouts they set (one reading instead of one per set; they come that
 * much later, the rest of those callbacks' time); elsewhere, from a reading
 * taken in the call.  out may be NULL; it holds 0 after a failure.
 * MIO_ENOSPC when timer_capacity timeouts are pending, MIO_EINVAL for a NULL
 * l.  A timeout set from a callback fires in a later tick, even when due at
 * once.  The time comes before arg, as in mio_timer_set: every call that
 * arms a timeout reads (where, when, what, handle). */
MIO_API int  mio_loop_timeout_in(mio_loop *l, uint64_t delay_ns, void *arg, mio_timeout *out);
/* mio_loop_timeout_in with an absolute deadline on mio_clock_ns.  As for
 * mio_timer_set_at: never before deadline_ns, at the next tick for a
 * deadline already reached.  Re-armed from the `timeout` callback at the
 * previous deadline plus the period, it runs a periodic job without drift:
 *
 *     struct job { int64_t next, period; };
 *     static void on_timeout(mio_loop *l, void *ctx, void *arg)
 *     {
 *         struct job *j = arg;
 *         run(j);
 *         j->next += j->period;        // from the plan, not from now
 *         mio_loop_timeout_at(l, j->next, j, NULL);
 *     }
 *     // started with j->next = mio_clock_ns() + j->period, then the same call
 *
 * (mio_loop_timeout_in(l, j->period, ...) there would count each period from
 * the moment the callback ran, adding that tick's lateness every time.) */
MIO_API int  mio_loop_timeout_at(mio_loop *l, int64_t deadline_ns, void *arg, mio_timeout *out);
/* mio_loop_timeout_in under its first form, arg before the delay, kept for
 * the programs written against it.  Every other call that arms a timeout
 * (mio_loop_timeout_in, mio_loop_timeout_at, mio_timer_set,
 * mio_timer_set_at) takes the time first, then arg. */
MIO_API int  mio_loop_timeout(mio_loop *l, void *arg, uint64_t delay_ns, mio_timeout *out);
/* true if the timeout was pending (and now never fires). */
MIO_API bool mio_loop_clear_timeout(mio_loop *l, mio_timeout timeout);
/* Re-arms a pending timeout as mio_loop_timeout would set it, keeping its
 * handle and arg (mio_timer_reset): an idle timeout's re-arm on activity, in
 * one step.  true if it was pending; false if it fired or was cleared (set a
 * new one then). */
MIO_API bool mio_loop_reset_timeout(mio_loop *l, mio_timeout timeout, uint64_t delay_ns);

/* The channel: a bounded lock-free queue of `void *` messages (NULL is a
 * message like any other) from any thread to the loop's `notify`, in the
 * order they were sent.  A send never blocks and costs no system call while
 * the loop is busy; it wakes the loop only when the loop may be asleep. */
/* A new sender on l's channel (free it with mio_sender_free). */
MIO_API int  mio_loop_channel(mio_loop *l, mio_sender **out);
/* Another handle on the same channel; each handle is freed on its own. */
MIO_API int  mio_sender_clone(mio_sender *s, mio_sender **out);
/* Any thread.  MIO_EAGAIN when notify_capacity messages are queued, MIO_EPIPE
 * once the loop is freed. */
MIO_API int  mio_sender_send(mio_sender *s, void *msg);
/* Senders may outlive the loop; the channel goes with the last of them. */
MIO_API void mio_sender_free(mio_sender *s);


/* ---- Group of loops: one loop per core --------------------------------------
 * Several event loops, each on a thread of its own, running the same handler
 * with a context of their own, and listeners whose connections the group
 * spreads over them.  Each loop is an ordinary mio_loop (its poll, timers and
 * channel belong to its thread, as always) that also knows its index in the
 * group.  docs/multicore.md says when to use which way of spreading
 * connections and how to move a connection from one loop to another.
 *
 * Threads: mio_group_send, mio_group_shutdown and the read-only calls
 * (mio_group_size, mio_group_loop, mio_loop_index, mio_loop_group) may be
 * used from any thread, loops included; mio_group_listen, start, run, join
 * and free from one controlling thread that is not a loop of the group.
 * The threads the group starts block asynchronous signals, so that a
 * signal goes to the program's other threads (e.g. the one in
 * mio_group_join or running loop 0 in mio_group_run).
 *
 * Tokens: on a group's loops the group keeps the tokens from
 * MIO_GROUP_TOKEN_FIRST up to MIO_TOKEN_RESERVED for its listeners; the
 * calls that take a token refuse them there with MIO_EINVAL (pointers and
 * small indices never come near them). */

/* The first token a group's loop keeps for itself (see above). */
#define MIO_GROUP_TOKEN_FIRST (MIO_TOKEN_RESERVED - (mio_token)256)

/* A group of loops. */
typedef struct mio_group mio_group;

/* The loops' callbacks.  `loop` is a loop's handler, called as for
 * mio_loop_run on every loop with that loop's context; any member of it and
 * any of the others may be NULL (adopt may not once the group listens).
 *   start  on the loop's thread before its first tick: set up per-loop
 *          state and timers here.  A negative MIO_E* code stops the group
 *          (every loop finishes its current tick) and is what mio_group_join
 *          (or mio_group_run) returns; that loop then runs no tick and no
 *          `stop`.
 *   stop   on the loop's thread after its last tick: close what it holds.
 *   adopt  on the loop's thread, with a connection the group accepted for
 *          this loop or one handed to it (mio_loop_handoff): fd is
 *          non-blocking, close-on-exec and now the callback's to register
 *          on mio_loop_poll(l) or close; data is the listener's (see
 *          mio_group_listen) or the hand-off's. */
typedef struct mio_group_handler {
    mio_handler loop;
    int  (*start)(mio_loop *l, void *ctx);
    void (*stop)(mio_loop *l, void *ctx);
    void (*adopt)(mio_loop *l, void *ctx, mio_fd fd, void *data);
} mio_group_handler;

/* A zero field takes its default, as for mio_loop_config. */
typedef struct mio_group_config {
    size_t loops;               /* how many, at most 1024; 0: one per CPU this
                                   process may run on */
    bool pin;                   /* run loop i on CPU cpus[i], or on CPU i (modulo
                                   the CPUs online) when cpus is NULL: Linux
                                   and Windows (up to 64 CPUs); elsewhere
                                   mio_group_new says MIO_ENOSYS */
    const int *cpus;            /* `loops` CPU numbers, or NULL */
    mio_loop_config loop;       /* every loop's configuration */
} mio_group_config;

/* Fills c with the defaults: a loop per CPU, not pinned, default loops. */
MIO_API void mio_group_config_default(mio_group_config *c);
/* A group with config c (NULL: the defaults).  Every loop is made here
 * (mio_loop_new with c->loop); nothing runs yet.  MIO_EINVAL for more than
 * 1024 loops or a negative CPU number, MIO_ENOSYS for pinning where the OS
 * cannot, and mio_loop_new's errors. */
MIO_API int  mio_group_new(const mio_group_config *c, mio_group **out);
/* Stops the group if it runs (mio_group_shutdown, then mio_group_join;
 * never from one of its loops), closes its listeners and every connection
 * still waiting in a loop's channel for `adopt`, drops the other queued
 * messages, and frees the loops.  Connections the loops adopted are the
 * program's: close them in `stop`. */
MIO_API void mio_group_free(mio_group *g);
/* How many loops; 0 for NULL. */
MIO_API size_t mio_group_size(const mio_group *g);
/* Loop i (NULL when i is out of range): register sources on its poll, send
 * to it, but run it only through the group (mio_loop_run and
 * mio_loop_run_once refuse a group's loop with MIO_EINVAL, and
 * mio_loop_free ignores it: it goes with the group). */
MIO_API mio_loop *mio_group_loop(mio_group *g, size_t i);
/* The loop's index in its group, or MIO_EINVAL for NULL or a loop in no
 * group. */
MIO_API int  mio_loop_index(const mio_loop *l);
/* The loop's group, or NULL. */
MIO_API mio_group *mio_loop_group(const mio_loop *l);

/* Ways to spread a listener's connections over the loops (mio_group_listen):
 *
 * MIO_GROUP_REUSEPORT: one listening socket per loop on the same address
 *   (SO_REUSEPORT on Linux and DragonFly, SO_REUSEPORT_LB on FreeBSD); the
 *   kernel picks a socket by a hash of the connection's addresses, and each
 *   loop accepts from its own.  No shared state at all, the fastest accept
 *   path; the spread is statistical (even over many clients, lumpy over a
 *   few), and connections queued on a loop wait for that loop even when it
 *   is busy.  MIO_ENOSYS where the OS has no load-balancing SO_REUSEPORT
 *   (macOS, OpenBSD, NetBSD, Windows).
 * MIO_GROUP_REUSEPORT_CPU: as above, but a classic BPF program
 *   (SO_ATTACH_REUSEPORT_CBPF) sends each connection to the socket of the
 *   loop whose index is the number of the CPU that received it, modulo the
 *   group's size: with the NIC's receive queues spread over the CPUs, a
 *   connection is served where its packets arrive.  Needs the loops pinned
 *   to CPUs 0, 1, ... (pin with cpus NULL; else MIO_EINVAL).  Linux only,
 *   MIO_ENOSYS elsewhere.  Over loopback the receiving CPU is the
 *   client's: a single client thread lands every connection on one loop.
 * MIO_GROUP_EXCLUSIVE: one listening socket registered in every loop; on
 *   epoll with EPOLLEXCLUSIVE (Linux 4.5), so that a connection wakes one
 *   idle loop, not all.  The kernel wakes the first idle loop in the order
 *   they were registered, which would give that loop most connections: the
 *   group takes a loop out of that order and puts it back at its end every
 *   16 connections it accepts, and a loop that holds clearly more than its
 *   share of the group's registered descriptors stops accepting until it is
 *   back near its share (one loop always accepts).  Other backends have no
 *   exclusive wake-up: every loop is woken and all but one get MIO_EAGAIN.
 *   Use it where one socket must stay (its queue is shared: no connection
 *   waits for a busy loop) and REUSEPORT is missing.
 * MIO_GROUP_HANDOFF: one listening socket, accepted by loop 0, which hands
 *   the connections to the loops in turn (itself included) through their
 *   channels: an exact round robin, on every OS and backend.  Costs loop 0
 *   the accepts and a channel message per connection.
 * MIO_GROUP_HANDOFF_LEAST: as MIO_GROUP_HANDOFF, to the loop with the fewest
 *   registered descriptors (connections in flight to it counted): for
 *   connections of very different lengths. */
#define MIO_GROUP_REUSEPORT     1
#define MIO_GROUP_REUSEPORT_CPU 2
#define MIO_GROUP_EXCLUSIVE     3
#define MIO_GROUP_HANDOFF       4
#define MIO_GROUP_HANDOFF_LEAST 5

/* A TCP listener on addr (port 0: a free port, the same for every socket
 * of the listener; mio_group_local_addr tells which) whose connections go
 * to the loops' `adopt` with `data`, spread the way `mode` says.  Before the
 * group starts (or after it was joined): MIO_EBUSY while it runs.  Returns
 * the listener's number (>= 0), or MIO_EINVAL (NULL, unknown mode),
 * MIO_ENOSPC (255 listeners already), MIO_ENOSYS (a mode this OS lacks), or
 * what listening on addr returns.  Accepting never stops for one client's
 * error: it is skipped (64 errors in a row, and no client, rest the
 * listener on that loop for 100 ms instead of spinning); out of
 * descriptors, the queue is shed (mio_tcp_shed), and if that fails the
 * listener rests for 100 ms on that loop. */
MIO_API int  mio_group_listen(mio_group *g, const mio_addr *addr, int backlog, int mode,
                              void *data);
/* The address listener number `listener` is bound to. */
MIO_API int  mio_group_local_addr(mio_group *g, int listener, mio_addr *out);

/* Starts a thread per loop, each running its loop until the group is shut
 * down: start, ticks, stop (see mio_group_handler).  ctx: one context per
 * loop (ctx[i] for loop i), or NULL for all NULL.  MIO_EBUSY if it runs
 * already, MIO_EINVAL for a NULL handler, or for no `adopt` with listeners;
 * a thread that cannot be made stops the others and returns its error. */
MIO_API int  mio_group_start(mio_group *g, const mio_group_handler *h, void *const ctx[]);
/* mio_group_start with loop 0 on the calling thread (pinned, when the
 * config says so, for the time of the call); returns when every loop has
 * stopped, with mio_group_join's result. */
MIO_API int  mio_group_run(mio_group *g, const mio_group_handler *h, void *const ctx[]);
/* Waits until every loop mio_group_start started has stopped and returns
 * the first error among them (a start callback's, a failed wait's), else
 * 0; 0 at once when nothing runs.  The group may be started again: its
 * listeners, registrations, timers and queued messages stay.  MIO_EDEADLK
 * from one of the group's loops (it would wait for itself), MIO_EBUSY
 * while mio_group_run runs it. */
MIO_API int  mio_group_join(mio_group *g);
/* Any thread, also a loop's callback and, on POSIX, a signal handler: every
 * loop finishes its current tick (its `tick` still runs), then `stop`, and
 * its thread ends.  mio_loop_shutdown on a group's loop does this too.  A
 * shutdown before start is forgotten by start. */
MIO_API void mio_group_shutdown(mio_group *g);
/* Any thread: msg goes to loop i's `notify` through its channel, after
 * what was sent to it before (mio_group_send and its senders alike).
 * MIO_EAGAIN when its notify_capacity messages are queued, MIO_EINVAL for
 * i out of range.  Queued while the group does not run. */
MIO_API int  mio_group_send(mio_group *g, size_t i, void *msg);

/* Moves a connection from loop l to loop `to` of its group, from one of l's
 * callbacks (or while the group does not run): deregisters fd from l's poll
 * (an fd not registered there is handed over as it is), makes sure l calls
 * `ready` no more for `token` (the batch l is dispatching may already hold
 * events for it: they are dropped), and sends fd and data to loop `to`'s
 * `adopt`.  Bytes that arrive meanwhile wait in the kernel, and registering
 * fd there reports them at once.  Clear l's timers for the connection
 * first: they stay l's.  MIO_EAGAIN when loop `to`'s channel is full
 * (nothing changed: try again later), MIO_EINVAL for NULL, a loop in no
 * group, a group whose handler has no `adopt`, `to` out of range or a group
 * token; mio_deregister's errors (the fd is then not sent). */
MIO_API int  mio_loop_handoff(mio_loop *l, mio_fd fd, mio_token token, size_t to, void *data);

#ifdef __cplusplus
}
#endif

#endif /* MIO_H */
