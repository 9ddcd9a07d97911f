/* Error descriptions, and the names trace lines give errors.  The library's
 * own table, so the text is the same on every OS and the call is
 * thread-safe (strerror is not). */
#include "common.h"

static const struct { int code; const char *name, *text; } errors[] = {
    { 0, NULL, "success" },
    { MIO_EAGAIN, "MIO_EAGAIN", "resource temporarily unavailable (would block)" },
    { MIO_EINTR, "MIO_EINTR", "interrupted by a signal" },
    { MIO_EINVAL, "MIO_EINVAL", "invalid argument" },
    { MIO_EEXIST, "MIO_EEXIST", "already registered" },
    { MIO_ENOENT, "MIO_ENOENT", "not registered, or no such file" },
    { MIO_EBADF, "MIO_EBADF", "bad file descriptor" },
    { MIO_ENOMEM, "MIO_ENOMEM", "out of memory" },
    { MIO_EBUSY, "MIO_EBUSY", "busy: another thread is waiting on this poll or running this loop" },
    { MIO_EDEADLK, "MIO_EDEADLK", "called from within its own callback (it would wait for itself)" },
    { MIO_EPIPE, "MIO_EPIPE", "broken pipe, or the other side is gone" },
    { MIO_ECONNREFUSED, "MIO_ECONNREFUSED", "connection refused" },
    { MIO_ECONNRESET, "MIO_ECONNRESET", "connection reset by peer" },
    { MIO_ECONNABORTED, "MIO_ECONNABORTED", "connection aborted" },
    { MIO_EADDRINUSE, "MIO_EADDRINUSE", "address already in use" },
    { MIO_EADDRNOTAVAIL, "MIO_EADDRNOTAVAIL", "address not available" },
    { MIO_EAFNOSUPPORT, "MIO_EAFNOSUPPORT", "address family not supported" },
    { MIO_ENAMETOOLONG, "MIO_ENAMETOOLONG", "name too long" },
    { MIO_EMFILE, "MIO_EMFILE", "too many open files in this process" },
    { MIO_ENFILE, "MIO_ENFILE", "too many open files in the system" },
    { MIO_ENOSYS, "MIO_ENOSYS", "not supported by this backend, build or OS (or no backend of that name)" },
    { MIO_ETIMEDOUT, "MIO_ETIMEDOUT", "timed out" },
    { MIO_ENOTCONN, "MIO_ENOTCONN", "not connected" },
    { MIO_EISCONN, "MIO_EISCONN", "already connected" },
    { MIO_ENOSPC, "MIO_ENOSPC", "no space left (buffer or capacity too small)" },
    { MIO_EPERM, "MIO_EPERM", "operation not permitted (the backend cannot poll this file)" },
    { MIO_EACCES, "MIO_EACCES", "permission denied" },
    { MIO_ENOTSOCK, "MIO_ENOTSOCK", "not a socket" },
    { MIO_EMSGSIZE, "MIO_EMSGSIZE", "message too long" },
    { MIO_ENETUNREACH, "MIO_ENETUNREACH", "network unreachable" },
    { MIO_EHOSTUNREACH, "MIO_EHOSTUNREACH", "host unreachable" },
    { MIO_EDESTADDRREQ, "MIO_EDESTADDRREQ", "destination address required" },
    { MIO_ENOBUFS, "MIO_ENOBUFS", "no buffer space available" },
    { MIO_EPROTO, "MIO_EPROTO", "protocol error" },
    { MIO_ESRCH, "MIO_ESRCH", "no such process (the child was already waited for)" },
    { MIO_ECHILD, "MIO_ECHILD", "no child process to wait for (reaped by someone else)" },
};

const char *mio_strerror(int err)
{
    size_t i;
    for (i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == err)
            return errors[i].text;
    return err > 0 ? "not an error code" : "unknown error";
}

const char *mio__error_name(int err)
{
    size_t i;
    for (i = 1; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].code == err)
            return errors[i].name;
    return NULL;
}
