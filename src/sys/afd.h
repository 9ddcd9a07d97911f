/* The AFD driver calls behind the IOCP backend (afd.c).
 *
 * A socket is polled by handing its base handle to IOCTL_AFD_POLL on a helper
 * handle to \Device\Afd; the helper is bound to the completion port, so the
 * poll completes there with the IO_STATUS_BLOCK's address as the
 * OVERLAPPED pointer. */
#ifndef MIO_SYS_AFD_H
#define MIO_SYS_AFD_H

#include "../common.h"

#include <winternl.h>

#define MIO_AFD_POLL_RECEIVE           0x0001u
#define MIO_AFD_POLL_RECEIVE_EXPEDITED 0x0002u
#define MIO_AFD_POLL_SEND              0x0004u
#define MIO_AFD_POLL_DISCONNECT        0x0008u
#define MIO_AFD_POLL_ABORT             0x0010u
#define MIO_AFD_POLL_LOCAL_CLOSE       0x0020u
#define MIO_AFD_POLL_ACCEPT            0x0080u
#define MIO_AFD_POLL_CONNECT_FAIL      0x0100u

#define MIO_NT_STATUS_SUCCESS   ((LONG)0x00000000L)
#define MIO_NT_STATUS_PENDING   ((LONG)0x00000103L)
#define MIO_NT_STATUS_CANCELLED ((LONG)0xC0000120L)
#define MIO_NT_STATUS_NOT_FOUND ((LONG)0xC0000225L)
#define MIO_NT_STATUS_INVALID_HANDLE ((LONG)0xC0000008L)
#define MIO_NT_STATUS_OBJECT_TYPE_MISMATCH ((LONG)0xC0000024L)

struct mio_afd_poll_handle {
    HANDLE handle;
    ULONG events;
    LONG status;
};

/* The driver's input and output: one socket per request here. */
struct mio_afd_poll_info {
    LARGE_INTEGER timeout;
    ULONG count;
    ULONG exclusive;
    struct mio_afd_poll_handle handles[1];
};

/* Resolves the ntdll entry points once; 0 or MIO_ENOSYS. */
int mio__afd_init(void);
/* Opens a helper handle bound to port (completion key `key`). */
int mio__afd_open(HANDLE port, ULONG_PTR key, HANDLE *out);
/* Starts a poll of info on helper afd; completes on the port unless it
 * fails at once (a MIO_E* code then: MIO_EBADF if the socket is gone). */
int mio__afd_poll(HANDLE afd, struct mio_afd_poll_info *info, IO_STATUS_BLOCK *iosb);
/* Cancels the poll of iosb; its completion still arrives (as cancelled, or
 * with its events if it won the race). */
int mio__afd_cancel(HANDLE afd, IO_STATUS_BLOCK *iosb);
/* The handle AFD knows a socket by, past layered service providers. */
int mio__afd_base_socket(SOCKET s, SOCKET *base);

/* The WSAIoctl requests it makes: the base provider's socket, and the socket
 * of the provider below as select(), WSAPoll() and providers ask for it
 * (defined here: Winsock headers differ on whether they have them). */
#define MIO_SIO_BSP_HANDLE        0x4800001BUL
#define MIO_SIO_BSP_HANDLE_SELECT 0x4800001CUL
#define MIO_SIO_BSP_HANDLE_POLL   0x4800001DUL
#define MIO_SIO_BASE_HANDLE       0x48000022UL

/* ---- for tests (tests/test_iocp.c), through the static library ---- */

/* One of those requests on s: 0 and *out, or a MIO_E* code. */
typedef int mio__afd_ioctl_fn(SOCKET s, DWORD code, SOCKET *out);
/* mio__afd_base_socket asking through `ioctl` (a test's stand-in for a
 * layered provider) instead of WSAIoctl. */
int mio__afd_base_socket_via(SOCKET s, mio__afd_ioctl_fn *ioctl, SOCKET *base);
/* Makes the next `polls` AFD polls and `cancels` AFD cancels fail without
 * reaching the driver, as when it is out of resources. */
void mio__afd_fail_next(int polls, int cancels);

#endif
