/* Helpers shared by every file of the library: allocation, tracing, clocks,
 * atomics, mutexes, descriptors and errno.  Nothing here is public. */
#ifndef MIO_COMMON_H
#define MIO_COMMON_H

#include "mio.h"

#include <stdatomic.h>
#include <stdarg.h>

#ifdef _WIN32
#include <windows.h>
/* Leftovers of 16-bit pointers that would eat identifiers. */
#undef near
#undef far
#else
#include <errno.h>
#include <pthread.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MIO_LIKELY(x)   __builtin_expect(!!(x), 1)
#define MIO_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MIO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define MIO_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define MIO_LIKELY(x)   (x)
#define MIO_UNLIKELY(x) (x)
#define MIO_PRINTF(f, a)
#define MIO_INLINE __forceinline
#else
#define MIO_LIKELY(x)   (x)
#define MIO_UNLIKELY(x) (x)
#define MIO_PRINTF(f, a)
#define MIO_INLINE inline
#endif

/* Debug checks (check.c): built in where NDEBUG is not defined, or with
 * MIO_CHECKS=1 (CMake's MIO_CHECKS option); a build without them has none
 * of their code, not even a branch. */
#ifndef MIO_CHECKS
#ifdef NDEBUG
#define MIO_CHECKS 0
#else
#define MIO_CHECKS 1
#endif
#endif

#define MIO_INTERESTS (MIO_READABLE | MIO_WRITABLE | MIO_PRIORITY)
#define MIO_TRIGGERS  (MIO_LEVEL | MIO_ONESHOT)
/* Internal interest bits, refused from callers (mio__register_internal):
 * EXCLUSIVE asks that of the polls a descriptor is registered on with this
 * bit, a readiness wakes one that waits rather than all (EPOLLEXCLUSIVE). */
#define MIO__EXCLUSIVE 0x10000u
#define MIO__PRIVATE   MIO__EXCLUSIVE

/* ---- allocation (alloc.c): every allocation goes through these ---- */
void *mio__malloc(size_t n);
void *mio__calloc(size_t count, size_t n);
void *mio__realloc(void *p, size_t n);
void  mio__free(void *p);

/* ---- tracing (log.c): off costs one relaxed load and a branch ---- */
/* The level is the library's own (hidden, as every internal name is): said
 * here, the load is a direct one rather than through the GOT of position-
 * independent code, which ELF would assume for a name another module might
 * define. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
__attribute__((visibility("hidden")))
#endif
extern atomic_int mio__log_level;
void mio__log(int level, const char *fmt, ...) MIO_PRINTF(2, 3);
/* Reads MIO_LOG, the first time only (a relaxed load after that). */
void mio__log_init(void);
/* What a program must not miss (a bad environment variable, a failed
 * debug check): to the log like MIO_TRACE when mio_set_log or MIO_LOG chose
 * one, else to stderr. */
void mio__log_alert(int level, const char *fmt, ...) MIO_PRINTF(2, 3);
/* Whether trace points of `level` are on. */
#define MIO_TRACING(level)                                                      \
    MIO_UNLIKELY(atomic_load_explicit(&mio__log_level, memory_order_relaxed) >= (level))
/* A trace point: its arguments are evaluated only when it is on. */
#define MIO_TRACE(level, ...)                                                   \
    do {                                                                        \
        if (MIO_TRACING(level))                                                 \
            mio__log((level), __VA_ARGS__);                                     \
    } while (0)

/* Text for trace lines, written into buf of MIO__LOG_TEXT bytes: interest
 * ("READABLE|WRITABLE|EDGE"), readiness ("READABLE|READ_CLOSED") and a
 * result ("ok", "MIO_EAGAIN", else the number).  The macros give a trace
 * point's arguments a buffer each, which lives as long as its statement. */
#define MIO__LOG_TEXT 96
const char *mio__log_interest(uint32_t interest, char *buf);
const char *mio__log_readiness(uint32_t readiness, char *buf);
const char *mio__log_result(long long result, char *buf);
#define MIO__INTEREST(x) mio__log_interest((x), (char[MIO__LOG_TEXT]){ 0 })
#define MIO__RESULT(x)   mio__log_result((x), (char[MIO__LOG_TEXT]){ 0 })
/* The trace of a wait (its result and a line per event), and of a loop's
 * tick, at MIO_LOG_TRACE: for the call sites' tracing branch. */
void mio__log_wait(const mio_poll *p, const mio_event *events, int n);
void mio__log_tick(const mio_loop *l, size_t events, size_t timers, size_t messages,
                   bool interrupted);

/* ---- errors (error.c) ---- */
/* "MIO_EAGAIN" for MIO_EAGAIN, ...; NULL for a code without a name. */
const char *mio__error_name(int err);

/* ---- monotonic clock in nanoseconds (time.c) ---- */
int64_t mio__now_ns(void);

/* ---- a plain mutex ---- */
#ifdef _WIN32
typedef SRWLOCK mio_mutex;
#define MIO_MUTEX_INIT SRWLOCK_INIT
static inline void mio_mutex_init(mio_mutex *m) { InitializeSRWLock(m); }
static inline void mio_mutex_destroy(mio_mutex *m) { (void)m; }
static inline void mio_mutex_lock(mio_mutex *m) { AcquireSRWLockExclusive(m); }
static inline void mio_mutex_unlock(mio_mutex *m) { ReleaseSRWLockExclusive(m); }
#else
typedef pthread_mutex_t mio_mutex;
#define MIO_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
static inline void mio_mutex_init(mio_mutex *m) { pthread_mutex_init(m, NULL); }
static inline void mio_mutex_destroy(mio_mutex *m) { pthread_mutex_destroy(m); }
static inline void mio_mutex_lock(mio_mutex *m) { pthread_mutex_lock(m); }
static inline void mio_mutex_unlock(mio_mutex *m) { pthread_mutex_unlock(m); }
#endif

/* ---- descriptors and errors ---- */

/* Never a descriptor: MIO_INVALID_FD on Windows (SOCKET is unsigned), any
 * negative number on POSIX. */
static inline bool mio__fd_invalid(mio_fd fd)
{
#ifdef _WIN32
    return fd == MIO_INVALID_FD;
#else
    return fd < 0;
#endif
}

#ifndef _WIN32
/* The failed system call's error as a MIO_E* code (MIO_Exxx is -Exxx). */
static inline int mio__err(void) { return -errno; }
#endif

#endif
