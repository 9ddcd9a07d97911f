/* Child processes on Windows: CreateProcessW with an explicit list of the
 * handles the child inherits (PROC_THREAD_ATTRIBUTE_HANDLE_LIST: its three
 * standard handles, nothing else, whatever else of this process is
 * inheritable), the exit as user-space readiness.
 *
 * Streams.  Windows' pipes cannot be polled by the socket poller, so a
 * "pipe" is a loopback TCP pair: the parent's end an ordinary libmio socket
 * (overlapped, non-blocking, not inheritable), the child's a plain socket
 * made without WSA_FLAG_OVERLAPPED, blocking, which ReadFile and WriteFile
 * (so the C runtime's stdio) use like a pipe.  Every handle the child gets
 * is a duplicate made inheritable for the moment of CreateProcessW and
 * closed after it; the handle list keeps a concurrent CreateProcess of this
 * library's from taking another's.
 *
 * The exit.  RegisterWaitForSingleObject on the process handle calls back,
 * on a thread of the pool, once the process has ended: it sets the
 * readiness of the registration that stands for the process in its poll
 * (registration.c), made at each mio_process_register (a registration stays
 * bound to its first poll; a new one per registration lets a process move
 * between polls).  A lock keeps the callback and the control calls apart.
 *
 * Nothing to reap: an ended process is gone once its last handle closes.
 * mio_process_free still ends a child that runs on, as on POSIX. */
#include "win.h"

#include <signal.h>
#include <string.h>

enum { RUNNING, EXITED };

struct mio_process {
    HANDLE h;
    DWORD pid;
    int state;
    mio_exit_status status;
    int killed_with;            /* the signal of a successful kill, or 0 */
    HANDLE wait;                /* RegisterWaitForSingleObject's */
    SRWLOCK lock;               /* ended, poll, reg, set: the callback races */
    bool ended;                 /* the callback came */
    mio_poll *poll;
    mio_registration *reg;
    mio_set_readiness *set;
};

/* ---- text ---- */

static wchar_t *widen(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w;
    if (n <= 0)
        return NULL;
    w = mio__malloc((size_t)n * sizeof *w);
    if (w != NULL && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) != n) {
        mio__free(w);
        w = NULL;
    }
    return w;
}

/* One argument quoted the way CommandLineToArgvW and the C runtime split a
 * command line: into out (may be NULL to count); returns its length. */
static size_t quote(const wchar_t *a, wchar_t *out)
{
    size_t n = 0, slashes = 0;
    bool plain = *a != L'\0' && wcspbrk(a, L" \t\n\v\"") == NULL;

#define PUT(c) do { if (out != NULL) out[n] = (c); n++; } while (0)
    if (plain) {
        for (; *a != L'\0'; a++)
            PUT(*a);
        return n;
    }
    PUT(L'"');
    for (; *a != L'\0'; a++) {
        if (*a == L'\\') {
            slashes++;
        } else {
            /* Backslashes before a quote double, and the quote is escaped. */
            size_t k, times = *a == L'"' ? 2 * slashes + 1 : slashes;
            for (k = 0; k < times; k++)
                PUT(L'\\');
            slashes = 0;
            PUT(*a);
            continue;
        }
        PUT(L'\\');
    }
    for (; slashes > 0; slashes--)      /* doubled before the closing quote */
        PUT(L'\\');
    PUT(L'"');
#undef PUT
    return n;
}

static wchar_t *command_line(const char *const *argv)
{
    size_t len = 0, at = 0, i;
    wchar_t *line, *w;

    for (i = 0; argv[i] != NULL; i++) {
        if ((w = widen(argv[i])) == NULL)
            return NULL;
        len += quote(w, NULL) + 1;
        mio__free(w);
    }
    line = mio__malloc((len + 1) * sizeof *line);
    if (line == NULL)
        return NULL;
    for (i = 0; argv[i] != NULL; i++) {
        if ((w = widen(argv[i])) == NULL) {
            mio__free(line);
            return NULL;
        }
        if (i > 0)
            line[at++] = L' ';
        at += quote(w, line + at);
        mio__free(w);
    }
    line[at] = L'\0';
    return line;
}

/* "A=1\0B=2\0\0" from a NULL-terminated list. */
static wchar_t *env_block(const char *const *env)
{
    size_t len = 1, at = 0, i;
    wchar_t *block, *w;

    for (i = 0; env[i] != NULL; i++) {
        if ((w = widen(env[i])) == NULL)
            return NULL;
        len += wcslen(w) + 1;
        mio__free(w);
    }
    block = mio__malloc((len + 1) * sizeof *block);
    if (block == NULL)
        return NULL;
    for (i = 0; env[i] != NULL; i++) {
        if ((w = widen(env[i])) == NULL) {
            mio__free(block);
            return NULL;
        }
        wcscpy(block + at, w);
        at += wcslen(w) + 1;
        mio__free(w);
    }
    block[at++] = L'\0';
    if (at == 1)
        block[at] = L'\0';      /* an empty block is two NULs */
    return block;
}

/* ---- standard streams ---- */

static int inheritable_copy(HANDLE h, HANDLE *out)
{
    if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), out, 0, TRUE,
                         DUPLICATE_SAME_ACCESS))
        return mio__win_error(GetLastError());
    return 0;
}

/* A loopback pair: *parent a libmio socket, *child_end a plain blocking
 * one, inheritable. */
static int socket_pipe(mio_fd *parent, HANDLE *child_end)
{
    struct sockaddr_in addr, mine, peer;
    SOCKET listener, child = INVALID_SOCKET, server = INVALID_SOCKET;
    u_long on = 1;
    int len, err, tries;

    if ((err = mio__wsa_init()) < 0)
        return err;
    listener = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (listener == INVALID_SOCKET)
        return mio__wsa_err();
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) == SOCKET_ERROR ||
        getsockname(listener, (struct sockaddr *)&addr, &len) == SOCKET_ERROR ||
        listen(listener, 1) == SOCKET_ERROR)
        goto fail;
    child = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, 0);     /* not overlapped */
    if (child == INVALID_SOCKET ||
        connect(child, (struct sockaddr *)&addr, sizeof addr) == SOCKET_ERROR)
        goto fail;
    len = sizeof mine;
    if (getsockname(child, (struct sockaddr *)&mine, &len) == SOCKET_ERROR)
        goto fail;
    /* Any local process may connect meanwhile: take our own client only. */
    for (tries = 0; tries < 16; tries++) {
        len = sizeof peer;
        server = accept(listener, (struct sockaddr *)&peer, &len);
        if (server == INVALID_SOCKET)
            goto fail;
        if (peer.sin_port == mine.sin_port && peer.sin_addr.s_addr == mine.sin_addr.s_addr)
            break;
        closesocket(server);
        server = INVALID_SOCKET;
    }
    if (server == INVALID_SOCKET) {
        err = MIO_ECONNABORTED;
        goto fail_err;
    }
    (void)SetHandleInformation((HANDLE)server, HANDLE_FLAG_INHERIT, 0);
    if (ioctlsocket(server, FIONBIO, &on) == SOCKET_ERROR ||
        !SetHandleInformation((HANDLE)child, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT))
        goto fail;
    {
        BOOL yes = TRUE;
        (void)setsockopt(server, IPPROTO_TCP, TCP_NODELAY, (const char *)&yes, sizeof yes);
    }
    closesocket(listener);
    *parent = server;
    *child_end = (HANDLE)child;
    return 0;

fail:
    err = mio__wsa_err();
fail_err:
    if (server != INVALID_SOCKET)
        closesocket(server);
    if (child != INVALID_SOCKET)
        closesocket(child);
    closesocket(listener);
    return err;
}

/* ---- the exit ---- */

static VOID CALLBACK ended(PVOID arg, BOOLEAN timed_out)
{
    mio_process *c = arg;
    (void)timed_out;
    AcquireSRWLockExclusive(&c->lock);
    c->ended = true;
    if (c->set != NULL)
        (void)mio_set_readiness_set(c->set, MIO_READABLE);
    ReleaseSRWLockExclusive(&c->lock);
}

/* ---- the calls ---- */

static const DWORD std_ids[3] = { STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE };

int mio_process_spawn(const mio_process_options *o, mio_fd pipes[3], mio_process **out)
{
    HANDLE child[3] = { NULL, NULL, NULL }, list[3];
    mio_fd parent[3] = { MIO_INVALID_FD, MIO_INVALID_FD, MIO_INVALID_FD };
    wchar_t *file = NULL, *app = NULL, *cmd = NULL, *env = NULL, *cwd = NULL;
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
    STARTUPINFOEXW si;
    PROCESS_INFORMATION pi;
    mio_process *c = NULL;
    SIZE_T attr_size = 0;
    DWORD n = 0, len;
    int i, err = 0;

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
        if (how == MIO_STDIO_FD && o->stdio[i].fd == MIO_INVALID_FD)
            return MIO_EBADF;
    }

    /* The program, found the way SearchPath finds it. */
    file = widen(o->file != NULL ? o->file : o->argv[0]);
    app = mio__malloc(32768 * sizeof *app);
    cmd = command_line(o->argv);
    c = mio__calloc(1, sizeof *c);
    if (file == NULL || app == NULL || cmd == NULL || c == NULL ||
        (o->env != NULL && (env = env_block(o->env)) == NULL) ||
        (o->cwd != NULL && (cwd = widen(o->cwd)) == NULL)) {
        err = MIO_ENOMEM;
        goto out;
    }
    len = SearchPathW(NULL, file, L".exe", 32768, app, NULL);
    if (len == 0 || len >= 32768) {
        err = MIO_ENOENT;
        goto out;
    }
    if (cwd != NULL && GetFileAttributesW(cwd) == INVALID_FILE_ATTRIBUTES) {
        err = MIO_ENOENT;
        goto out;
    }

    for (i = 0; i < 3 && err == 0; i++) {
        SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
        HANDLE h;
        switch (o->stdio[i].how) {
        case MIO_STDIO_INHERIT:
            h = GetStdHandle(std_ids[i]);
            if (h != NULL && h != INVALID_HANDLE_VALUE)
                err = inheritable_copy(h, &child[i]);
            break;
        case MIO_STDIO_NULL:
            child[i] = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE,
                                   FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, NULL);
            if (child[i] == INVALID_HANDLE_VALUE) {
                child[i] = NULL;
                err = mio__win_error(GetLastError());
            }
            break;
        case MIO_STDIO_CLOSE:
            break;
        case MIO_STDIO_FD:
            err = inheritable_copy((HANDLE)o->stdio[i].fd, &child[i]);
            break;
        case MIO_STDIO_PIPE:
            err = socket_pipe(&parent[i], &child[i]);
            break;
        }
    }
    if (err < 0)
        goto out;

    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = child[0];
    si.StartupInfo.hStdOutput = child[1];
    si.StartupInfo.hStdError = child[2];
    for (i = 0; i < 3; i++) {
        DWORD k;
        bool seen = false;
        for (k = 0; k < n; k++)
            seen |= list[k] == child[i];
        if (child[i] != NULL && !seen)
            list[n++] = child[i];
    }
    if (n > 0) {
        (void)InitializeProcThreadAttributeList(NULL, 1, 0, &attr_size);
        attrs = mio__malloc(attr_size);
        if (attrs == NULL) {
            err = MIO_ENOMEM;
            goto out;
        }
        if (!InitializeProcThreadAttributeList(attrs, 1, 0, &attr_size)) {
            mio__free(attrs);
            attrs = NULL;
            err = mio__win_error(GetLastError());
            goto out;
        }
        if (!UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, list,
                                       n * sizeof list[0], NULL, NULL)) {
            err = mio__win_error(GetLastError());
            goto out;
        }
        si.lpAttributeList = attrs;
    }
    if (!CreateProcessW(app, cmd, NULL, NULL, n > 0,
                        CREATE_UNICODE_ENVIRONMENT | (n > 0 ? EXTENDED_STARTUPINFO_PRESENT : 0),
                        env, cwd, &si.StartupInfo, &pi)) {
        DWORD e = GetLastError();
        err = e == ERROR_DIRECTORY ? MIO_ENOENT : mio__win_error(e);
        goto out;
    }
    CloseHandle(pi.hThread);
    c->h = pi.hProcess;
    c->pid = pi.dwProcessId;
    c->state = RUNNING;
    InitializeSRWLock(&c->lock);
    if (!RegisterWaitForSingleObject(&c->wait, c->h, ended, c, INFINITE,
                                     WT_EXECUTEONLYONCE)) {
        err = mio__win_error(GetLastError());
        TerminateProcess(c->h, 1);
        WaitForSingleObject(c->h, INFINITE);
        CloseHandle(c->h);
        goto out;
    }
    for (i = 0; i < 3; i++) {
        if (parent[i] != MIO_INVALID_FD) {
            pipes[i] = parent[i];
            parent[i] = MIO_INVALID_FD;
        }
    }
    MIO_TRACE(MIO_LOG_DEBUG, "process %p: spawned, pid %lu", (void *)c, (unsigned long)c->pid);
    *out = c;
    c = NULL;
out:
    if (attrs != NULL) {
        DeleteProcThreadAttributeList(attrs);
        mio__free(attrs);
    }
    for (i = 0; i < 3; i++) {
        if (child[i] != NULL) {
            if (o->stdio[i].how == MIO_STDIO_PIPE)
                closesocket((SOCKET)child[i]);
            else
                CloseHandle(child[i]);
        }
        if (parent[i] != MIO_INVALID_FD)
            closesocket(parent[i]);
    }
    mio__free(file);
    mio__free(app);
    mio__free(cmd);
    mio__free(env);
    mio__free(cwd);
    mio__free(c);
    return err;
}

int64_t mio_process_pid(const mio_process *c)
{
    return c != NULL ? (int64_t)c->pid : -1;
}

int mio_process_try_wait(mio_process *c, mio_exit_status *out)
{
    DWORD code;

    if (c == NULL)
        return MIO_EINVAL;
    if (c->state == RUNNING) {
        if (WaitForSingleObject(c->h, 0) != WAIT_OBJECT_0)
            return MIO_EAGAIN;
        if (!GetExitCodeProcess(c->h, &code))
            return mio__win_error(GetLastError());
        c->state = EXITED;
        if (c->killed_with != 0 && code == 1) {
            c->status.code = 0;
            c->status.signal = c->killed_with;
        } else {
            c->status.code = (int)code;
            c->status.signal = 0;
        }
    }
    if (out != NULL)
        *out = c->status;
    return 0;
}

int mio_process_kill(mio_process *c, int signo)
{
    if (c == NULL || signo < 0)
        return MIO_EINVAL;
    if (c->state != RUNNING)
        return MIO_ESRCH;
    if (signo != 0 && signo != SIGTERM && signo != SIGINT && signo != SIGBREAK && signo != 9)
        return MIO_ENOSYS;
    if (signo == 0 || WaitForSingleObject(c->h, 0) == WAIT_OBJECT_0)
        return 0;
    if (!TerminateProcess(c->h, 1)) {
        DWORD e = GetLastError();
        /* Refused because it is ending on its own: as for a zombie. */
        return WaitForSingleObject(c->h, 0) == WAIT_OBJECT_0 ? 0 : mio__win_error(e);
    }
    c->killed_with = signo;
    return 0;
}

int mio_process_register(mio_poll *p, mio_process *c, mio_token token)
{
    mio_registration *reg;
    mio_set_readiness *set;
    int err;

    if (p == NULL || c == NULL || token == MIO_TOKEN_RESERVED)
        return MIO_EINVAL;
    if (c->poll != NULL)
        return MIO_EEXIST;
    if (c->state != RUNNING)
        return MIO_ESRCH;
    if ((err = mio_registration_new(&reg, &set)) < 0)
        return err;
    AcquireSRWLockExclusive(&c->lock);
    if (c->ended)
        (void)mio_set_readiness_set(set, MIO_READABLE);     /* reported at once */
    err = mio_registration_register(p, reg, token, MIO_READABLE);
    if (err == 0) {
        c->poll = p;
        c->reg = reg;
        c->set = set;
    }
    ReleaseSRWLockExclusive(&c->lock);
    if (err < 0) {
        mio_registration_free(reg);
        mio_set_readiness_free(set);
    }
    return err;
}

int mio_process_deregister(mio_poll *p, mio_process *c)
{
    mio_registration *reg;
    mio_set_readiness *set;

    if (p == NULL || c == NULL)
        return MIO_EINVAL;
    if (c->poll != p)
        return MIO_ENOENT;
    AcquireSRWLockExclusive(&c->lock);
    reg = c->reg;
    set = c->set;
    c->reg = NULL;
    c->set = NULL;
    c->poll = NULL;
    ReleaseSRWLockExclusive(&c->lock);
    mio_registration_free(reg);
    mio_set_readiness_free(set);
    return 0;
}

void mio_process_free(mio_process *c)
{
    if (c == NULL)
        return;
    if (c->poll != NULL)
        (void)mio_process_deregister(c->poll, c);
    if (c->state == RUNNING && WaitForSingleObject(c->h, 0) != WAIT_OBJECT_0) {
        (void)TerminateProcess(c->h, 1);
        (void)WaitForSingleObject(c->h, INFINITE);
    }
    (void)UnregisterWaitEx(c->wait, INVALID_HANDLE_VALUE);     /* the callback is done */
    CloseHandle(c->h);
    mio__free(c);
}
