/* The AFD driver calls behind the IOCP backend.
 *
 * Winsock has no readiness API that completes on a port, but the driver under
 * it (\Device\Afd) does: IOCTL_AFD_POLL on any handle opened to the device
 * polls sockets given by their base handle and completes like any other
 * overlapped I/O.  The entry points come from ntdll at run time (they are not
 * in the import libraries every toolchain ships). */
#include "afd.h"
#include "win.h"

#include <string.h>

#define IOCTL_AFD_POLL 0x00012024UL

#define NT_FILE_OPEN 1UL

/* STATUS_INSUFFICIENT_RESOURCES: what a failure made by mio__afd_fail_next
 * says. */
#define NT_STATUS_NO_RESOURCES ((LONG)0xC000009AL)

typedef LONG(NTAPI *nt_create_file_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES,
                                       PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG,
                                       ULONG, ULONG, PVOID, ULONG);
typedef LONG(NTAPI *nt_device_io_control_file_fn)(HANDLE, HANDLE, PVOID, PVOID,
                                                  PIO_STATUS_BLOCK, ULONG, PVOID,
                                                  ULONG, PVOID, ULONG);
typedef LONG(NTAPI *nt_cancel_io_file_ex_fn)(HANDLE, PIO_STATUS_BLOCK, PIO_STATUS_BLOCK);

static INIT_ONCE resolved = INIT_ONCE_STATIC_INIT;
static nt_create_file_fn nt_create_file;
static nt_device_io_control_file_fn nt_device_io_control_file;
static nt_cancel_io_file_ex_fn nt_cancel_io_file_ex;

static BOOL CALLBACK resolve(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    void *p;

    (void)once;
    (void)param;
    (void)ctx;
    p = mio__ntdll_entry("NtCreateFile");
    memcpy(&nt_create_file, &p, sizeof p);
    p = mio__ntdll_entry("NtDeviceIoControlFile");
    memcpy(&nt_device_io_control_file, &p, sizeof p);
    p = mio__ntdll_entry("NtCancelIoFileEx");
    memcpy(&nt_cancel_io_file_ex, &p, sizeof p);
    return TRUE;
}

int mio__afd_init(void)
{
    InitOnceExecuteOnce(&resolved, resolve, NULL, NULL);
    if (nt_create_file == NULL || nt_device_io_control_file == NULL ||
        nt_cancel_io_file_ex == NULL)
        return MIO_ENOSYS;
    return 0;
}

int mio__afd_open(HANDLE port, ULONG_PTR key, HANDLE *out)
{
    /* Any name under \Device\Afd opens the driver; the suffix names us in
     * handle listings. */
    static WCHAR path[] = L"\\Device\\Afd\\Mio";
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES attr;
    IO_STATUS_BLOCK iosb;
    HANDLE afd = NULL;
    LONG status;

    name.Length = (USHORT)(sizeof path - sizeof path[0]);
    name.MaximumLength = (USHORT)sizeof path;
    name.Buffer = path;
    memset(&attr, 0, sizeof attr);
    attr.Length = sizeof attr;
    attr.ObjectName = &name;
    status = nt_create_file(&afd, SYNCHRONIZE, &attr, &iosb, NULL, 0,
                            FILE_SHARE_READ | FILE_SHARE_WRITE, NT_FILE_OPEN, 0, NULL, 0);
    if (status != MIO_NT_STATUS_SUCCESS)
        return mio__nt_error(status);
    if (CreateIoCompletionPort(afd, port, key, 0) == NULL) {
        int err = mio__win_error(GetLastError());
        CloseHandle(afd);
        return err;
    }
    /* Nobody waits on the handle itself: spare the kernel signalling it. */
    (void)SetFileCompletionNotificationModes(afd, FILE_SKIP_SET_EVENT_ON_HANDLE);
    *out = afd;
    return 0;
}

/* Failures tests ask for (mio__afd_fail_next): calls still to fail. */
static atomic_int fail_polls, fail_cancels;

void mio__afd_fail_next(int polls, int cancels)
{
    atomic_store(&fail_polls, polls);
    atomic_store(&fail_cancels, cancels);
}

/* Takes one failure from *left if any is left. */
static bool fail_one(atomic_int *left)
{
    int n = atomic_load_explicit(left, memory_order_relaxed);
    while (n > 0)
        if (atomic_compare_exchange_weak(left, &n, n - 1))
            return true;
    return false;
}

int mio__afd_poll(HANDLE afd, struct mio_afd_poll_info *info, IO_STATUS_BLOCK *iosb)
{
    LONG status;

    if (fail_one(&fail_polls))
        return mio__nt_error(NT_STATUS_NO_RESOURCES);

    iosb->Status = MIO_NT_STATUS_PENDING;
    /* The IO_STATUS_BLOCK doubles as the APC context: it is what the port
     * hands back as the completion's OVERLAPPED pointer. */
    status = nt_device_io_control_file(afd, NULL, NULL, iosb, iosb, IOCTL_AFD_POLL,
                                       info, sizeof *info, info, sizeof *info);
    if (status == MIO_NT_STATUS_SUCCESS || status == MIO_NT_STATUS_PENDING)
        return 0;
    /* The handle no longer names a socket: closed, or its value taken by
     * another kind of object since. */
    if (status == MIO_NT_STATUS_INVALID_HANDLE || status == MIO_NT_STATUS_OBJECT_TYPE_MISMATCH)
        return MIO_EBADF;
    return mio__nt_error(status);
}

int mio__afd_cancel(HANDLE afd, IO_STATUS_BLOCK *iosb)
{
    IO_STATUS_BLOCK cancel;
    LONG status;

    if (iosb->Status != MIO_NT_STATUS_PENDING)
        return 0;   /* completed already; the completion is on its way */
    if (fail_one(&fail_cancels))
        return mio__nt_error(NT_STATUS_NO_RESOURCES);
    status = nt_cancel_io_file_ex(afd, iosb, &cancel);
    if (status == MIO_NT_STATUS_SUCCESS || status == MIO_NT_STATUS_NOT_FOUND)
        return 0;
    return mio__nt_error(status);
}

static int ioctl_handle(SOCKET s, DWORD code, SOCKET *out)
{
    DWORD bytes;
    *out = INVALID_SOCKET;
    if (WSAIoctl(s, code, NULL, 0, out, sizeof *out, &bytes, NULL, NULL) == SOCKET_ERROR ||
        *out == INVALID_SOCKET)
        return mio__wsa_err();
    return 0;
}

/* Layered providers looked through at most: one that names another layer
 * forever, or a circle of them, ends in an error rather than a hang. */
#define MAX_LAYERS 8

int mio__afd_base_socket_via(SOCKET s, mio__afd_ioctl_fn *ioctl, SOCKET *base)
{
    /* The requests that select(), WSAPoll() and the providers themselves
     * use to find the socket of the layer below. */
    static const DWORD below[] = {
        MIO_SIO_BSP_HANDLE_SELECT, MIO_SIO_BSP_HANDLE_POLL, MIO_SIO_BSP_HANDLE
    };
    SOCKET next;
    size_t i;
    int err = 0, e, layers;

    /* SIO_BASE_HANDLE goes past every layer at once, and providers are not
     * to intercept it; some do anyway (Komodia-based ones, to keep programs
     * from going around them), but still answer one of `below`, which peels
     * off one layer: SIO_BASE_HANDLE is then asked of the socket under it,
     * as more layers may follow.  An answer naming the socket itself (what
     * such a provider says to the select() request) is no answer.  When
     * nothing gets further, the error is SIO_BASE_HANDLE's first. */
    for (layers = 0; layers < MAX_LAYERS; layers++) {
        e = ioctl(s, MIO_SIO_BASE_HANDLE, base);
        if (e == 0)
            return 0;
        if (err == 0)
            err = e;
        if (e == MIO_EBADF)
            return err;     /* no socket at all: no provider to look past */
        for (i = 0; i < sizeof below / sizeof below[0]; i++)
            if (ioctl(s, below[i], &next) == 0 && next != s)
                break;
        if (i == sizeof below / sizeof below[0])
            return err;
        s = next;
    }
    return err;
}

int mio__afd_base_socket(SOCKET s, SOCKET *base)
{
    return mio__afd_base_socket_via(s, ioctl_handle, base);
}
