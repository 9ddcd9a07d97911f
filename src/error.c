/* Error descriptions.  The library's own table, so the text is the same on
 * every OS and the call is thread-safe (strerror is not). */
#include "common.h"

static const struct { int code; const char *text; } errors[] = {
    { 0, "success" },
    { MIO_EAGAIN, "resource temporarily unavailable (would block)" },
    { MIO_EINTR, "interrupted by a signal" },
    { MIO_EINVAL, "invalid argument" },
    { MIO_EEXIST, "already registered" },
    { MIO_ENOENT, "not registered, or no such file" },
    { MIO_EBADF, "bad file descriptor" },
    { MIO_ENOMEM, "out of memory" },
    { MIO_EBUSY, "busy: another thread is waiting on this poll or running this loop" },
    { MIO_EDEADLK, "called from within its own callback (it would wait for itself)" },
    { MIO_EPIPE, "broken pipe, or the other side is gone" },
    { MIO_ECONNREFUSED, "connection refused" },
    { MIO_ECONNRESET, "connection reset by peer" },
    { MIO_ECONNABORTED, "connection aborted" },
    { MIO_EADDRINUSE, "address already in use" },
    { MIO_EADDRNOTAVAIL, "address not available" },
    { MIO_EAFNOSUPPORT, "address family not supported" },
    { MIO_ENAMETOOLONG, "name too long" },
    { MIO_EMFILE, "too many open files in this process" },
    { MIO_ENFILE, "too many open files in the system" },
    { MIO_ENOSYS, "not supported by this backend, build or OS (or no backend of that name)" },
    { MIO_ETIMEDOUT, "timed out" },
    { MIO_ENOTCONN, "not connected" },
    { MIO_EISCONN, "already connected" },
    { MIO_ENOSPC, "no space left (buffer or capacity too small)" },
    { MIO_EPERM, "operation not permitted (the backend cannot poll this file)" },
    { MIO_EACCES, "permission denied" },
    { MIO_ENOTSOCK, "not a socket" },
    { MIO_EMSGSIZE, "message too long" },
    { MIO_ENETUNREACH, "network unreachable" },
    { MIO_EHOSTUNREACH, "host unreachable" },
    { MIO_EDESTADDRREQ, "destination address required" },
    { MIO_ENOBUFS, "no buffer space available" },
    { MIO_EPROTO, "protocol error" },
    { MIO_ESRCH, "no such process (the child was already waited for)" },
    { MIO_ECHILD, "no child process to wait for (reaped by someone else)" },
};

const char *mio_strerror(int err)
{
    size_t i;
    for (i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == err)
            return errors[i].text;
    return err > 0 ? "not an error code" : "unknown error";
}
