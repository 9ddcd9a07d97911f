/* Windows platform services: Winsock started once for the process, and every
 * Winsock, Win32 and NTSTATUS error the library meets translated into the
 * MIO_E* names that POSIX gives from errno. */
#include "win.h"

#include <string.h>

/* ---- Winsock start-up ---- */

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_result;

static BOOL CALLBACK wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    WSADATA data;
    int rc;
    (void)once;
    (void)param;
    (void)ctx;
    /* Never cleaned up: sockets may live as long as the process. */
    rc = WSAStartup(MAKEWORD(2, 2), &data);
    wsa_result = rc != 0 ? mio__win_error((unsigned long)rc) : 0;
    return TRUE;
}

int mio__wsa_init(void)
{
    InitOnceExecuteOnce(&wsa_once, wsa_start, NULL, NULL);
    return wsa_result;
}

/* ---- errors ---- */

int mio__win_error(unsigned long code)
{
    switch (code) {
    case 0: return 0;
    case WSAEWOULDBLOCK:
    case WSAEINPROGRESS:
    case WSAEALREADY: return MIO_EAGAIN;
    case WSAEINTR:
    case ERROR_OPERATION_ABORTED: return MIO_EINTR;
    case WSAEBADF:
    case ERROR_INVALID_HANDLE: return MIO_EBADF;
    case WSAENOTSOCK: return MIO_EBADF;     /* closed, or never a socket */
    case WSAEMFILE:
    case ERROR_TOO_MANY_OPEN_FILES: return MIO_EMFILE;
    case WSAENOBUFS:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return MIO_ENOMEM;
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED:
    case ERROR_PORT_UNREACHABLE: return MIO_ECONNREFUSED;
    case WSAECONNRESET:
    case WSAENETRESET:
    case ERROR_NETNAME_DELETED: return MIO_ECONNRESET;
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED: return MIO_ECONNABORTED;
    case WSAESHUTDOWN:
    case ERROR_BROKEN_PIPE: return MIO_EPIPE;
    case WSAEADDRINUSE: return MIO_EADDRINUSE;
    case WSAEADDRNOTAVAIL: return MIO_EADDRNOTAVAIL;
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT: return MIO_EAFNOSUPPORT;
    case WSAENAMETOOLONG: return MIO_ENAMETOOLONG;
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT:
    case WAIT_TIMEOUT: return MIO_ETIMEDOUT;
    case WSAENOTCONN: return MIO_ENOTCONN;
    case WSAEISCONN: return MIO_EISCONN;
    case WSAEACCES:
    case ERROR_ACCESS_DENIED: return MIO_EACCES;
    case WSAEMSGSIZE: return MIO_EMSGSIZE;
    case WSAENETUNREACH:
    case ERROR_NETWORK_UNREACHABLE: return MIO_ENETUNREACH;
    case WSAEHOSTUNREACH:
    case ERROR_HOST_UNREACHABLE: return MIO_EHOSTUNREACH;
    case WSAEDESTADDRREQ: return MIO_EDESTADDRREQ;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_NOT_FOUND: return MIO_ENOENT;
    case WSAEOPNOTSUPP:
    case ERROR_NOT_SUPPORTED: return MIO_ENOSYS;
    case WSAEINVAL:
    case WSAEFAULT:
    case WSAENOPROTOOPT:
    case WSANOTINITIALISED:
    case ERROR_INVALID_PARAMETER: return MIO_EINVAL;
    default: return -EIO;
    }
}

int mio__wsa_err(void)
{
    return mio__win_error((unsigned long)WSAGetLastError());
}

/* NTSTATUS goes through ntdll's own mapping onto Win32 codes. */
typedef ULONG(NTAPI *rtl_nt_status_to_dos_error_fn)(LONG);

static INIT_ONCE nt_once = INIT_ONCE_STATIC_INIT;
static rtl_nt_status_to_dos_error_fn rtl_nt_status_to_dos_error;

static BOOL CALLBACK nt_resolve(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    void *p = mio__ntdll_entry("RtlNtStatusToDosError");
    (void)once;
    (void)param;
    (void)ctx;
    memcpy(&rtl_nt_status_to_dos_error, &p, sizeof p);
    return TRUE;
}

int mio__nt_error(LONG status)
{
    InitOnceExecuteOnce(&nt_once, nt_resolve, NULL, NULL);
    if (rtl_nt_status_to_dos_error == NULL)
        return MIO_EINVAL;
    return mio__win_error(rtl_nt_status_to_dos_error(status));
}

/* ---- ntdll ---- */

/* GetProcAddress returns a generic function pointer; going through void *
 * keeps compilers from warning about the cast between function types. */
void *mio__ntdll_entry(const char *name)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    FARPROC fn;
    void *p;

    if (ntdll == NULL)
        return NULL;
    fn = GetProcAddress(ntdll, name);
    memcpy(&p, &fn, sizeof p);
    return p;
}
