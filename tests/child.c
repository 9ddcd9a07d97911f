/* Child processes for the tests: posix_spawn on POSIX, CreateProcess on
 * Windows (see child.h). */
#include "child.h"

#include "harness.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

extern char **environ;
#endif

/* ---- the children to kill should the test exit early ---------------- */

/* Copies, not pointers: a struct child may be moved after its start. */
enum { MAX_LIVE = 8 };
static struct child live[MAX_LIVE];
static bool live_used[MAX_LIVE];

static void kill_live(void)
{
    size_t i;
    for (i = 0; i < MAX_LIVE; i++)
        if (live_used[i])
            child_kill(&live[i]);
}

static void live_add(const struct child *c)
{
    static bool registered;
    size_t i;
    if (!registered) {
        atexit(kill_live);
        registered = true;
    }
    for (i = 0; i < MAX_LIVE && live_used[i]; i++)
        ;
    if (i == MAX_LIVE) {
        child_kill(c);
        FAIL("more than %d children at once", MAX_LIVE);
    }
    live[i] = *c;
    live_used[i] = true;
}

static void live_remove(const struct child *c)
{
    size_t i;
    for (i = 0; i < MAX_LIVE; i++)
        if (live_used[i] && live[i].pid == c->pid)
            live_used[i] = false;
}

/* ---- the environment of a child: the test's own, changed around the start */

/* A copy of the value of name (free it), NULL if unset. */
static char *env_get(const char *name);
/* Sets name to value, or removes it for NULL. */
static void env_set(const char *name, const char *value);

struct env_saved {
    char name[64];
    char *value;                /* NULL: it was not set */
};

static void env_change(const char *env, struct env_saved *saved)
{
    const char *eq = strchr(env, '=');
    size_t len = eq != NULL ? (size_t)(eq - env) : strlen(env);

    CHECK(len > 0 && len < sizeof saved->name);
    memcpy(saved->name, env, len);
    saved->name[len] = '\0';
    saved->value = env_get(saved->name);
    env_set(saved->name, eq != NULL ? eq + 1 : NULL);
}

static void env_restore(struct env_saved *saved)
{
    env_set(saved->name, saved->value);
    free(saved->value);
}

#ifdef _WIN32

/* ---- Windows -------------------------------------------------------- */

/* CreateProcess passes on the process's environment block, of which the C
 * library's getenv and putenv keep a copy of their own: these go to the
 * block itself. */
static char *env_get(const char *name)
{
    DWORD size = GetEnvironmentVariableA(name, NULL, 0);
    char *value;
    if (size == 0)
        return NULL;            /* unset (an empty value needs 1 byte) */
    CHECK((value = malloc(size)) != NULL);
    CHECK(GetEnvironmentVariableA(name, value, size) == size - 1);
    return value;
}

static void env_set(const char *name, const char *value)
{
    CHECK(SetEnvironmentVariableA(name, value));
}

/* Room for a command line: CreateProcess takes at most 32767 characters. */
enum { CMD_CAP = 32768 };

static void cmd_put(char *cmd, size_t *len, char ch, size_t times)
{
    CHECK(*len + times < CMD_CAP);
    memset(cmd + *len, ch, times);
    *len += times;
}

/* Appends arg so that the C runtime's parsing of the command line gives it
 * back: quoted if it is empty or has a space, tab or quote; inside quotes,
 * backslashes are doubled before a quote (which is itself escaped) and
 * before the closing quote, and taken as they are elsewhere. */
static void cmd_add(char *cmd, size_t *len, const char *arg)
{
    if (*len > 0)
        cmd_put(cmd, len, ' ', 1);
    if (arg[0] != '\0' && strpbrk(arg, " \t\"") == NULL) {
        for (; *arg != '\0'; arg++)
            cmd_put(cmd, len, *arg, 1);
        return;
    }
    cmd_put(cmd, len, '"', 1);
    for (;; arg++) {
        size_t slashes = 0;
        while (*arg == '\\') {
            slashes++;
            arg++;
        }
        if (*arg == '\0') {
            cmd_put(cmd, len, '\\', 2 * slashes);
            break;
        }
        cmd_put(cmd, len, '\\', *arg == '"' ? 2 * slashes + 1 : slashes);
        cmd_put(cmd, len, *arg, 1);
    }
    cmd_put(cmd, len, '"', 1);
}

/* An inheritable copy of one of the test's standard handles (NULL if it
 * has none), for the child to use as its own. */
static HANDLE inheritable_std(DWORD which)
{
    HANDLE h = GetStdHandle(which), copy = NULL;
    if (h == NULL || h == INVALID_HANDLE_VALUE ||
        !DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &copy, 0, TRUE,
                         DUPLICATE_SAME_ACCESS))
        return NULL;
    return copy;
}

void child_start(struct child *c, char *const argv[], const char *env,
                 enum child_stream stream)
{
    static char cmd[CMD_CAP];
    SECURITY_ATTRIBUTES inherit = { sizeof inherit, NULL, TRUE };
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    struct env_saved saved;
    HANDLE ours, theirs, in, other;
    size_t len = 0, i;
    BOOL started;

    for (i = 0; argv[i] != NULL; i++)
        cmd_add(cmd, &len, argv[i]);
    cmd[len] = '\0';
    CHECK(CreatePipe(&ours, &theirs, &inherit, 0));
    CHECK(SetHandleInformation(ours, HANDLE_FLAG_INHERIT, 0));
    in = inheritable_std(STD_INPUT_HANDLE);
    other = inheritable_std(stream == CHILD_STDOUT ? STD_ERROR_HANDLE : STD_OUTPUT_HANDLE);

    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = in;
    si.hStdOutput = stream == CHILD_STDOUT ? theirs : other;
    si.hStdError = stream == CHILD_STDERR ? theirs : other;
    if (env != NULL)
        env_change(env, &saved);
    /* CREATE_NO_WINDOW: a console of its own, for child_stop's Ctrl-C. */
    started = CreateProcessA(argv[0], cmd, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL,
                             &si, &pi);
    if (env != NULL)
        env_restore(&saved);
    CloseHandle(theirs);
    if (in != NULL)
        CloseHandle(in);
    if (other != NULL)
        CloseHandle(other);
    if (!started) {
        CloseHandle(ours);
        FAIL("cannot start %s: error %lu", argv[0], (unsigned long)GetLastError());
    }
    CloseHandle(pi.hThread);
    c->process = pi.hProcess;
    c->pid = pi.dwProcessId;
    c->pipe = ours;
    live_add(c);
}

/* One read from the pipe: the bytes read, 0 at its end. */
static size_t pipe_read(struct child *c, char *buf, size_t size)
{
    DWORD n = 0;
    if (!ReadFile(c->pipe, buf, (DWORD)size, &n, NULL)) {
        CHECK(GetLastError() == ERROR_BROKEN_PIPE);     /* the writer is gone */
        return 0;
    }
    return n;
}

/* Swallows Ctrl-C in the test: child_stop's event reaches every process
 * attached to the child's console, the test for that moment included, and
 * may arrive after it has left.  Set once and kept: a handler function,
 * unlike ignoring Ctrl-C outright, is not inherited by later children. */
static BOOL WINAPI swallow_ctrl_c(DWORD event)
{
    return event == CTRL_C_EVENT;
}

void child_stop(const struct child *c)
{
    static bool swallowing;
    DWORD err = 0;

    if (!swallowing) {
        CHECK(SetConsoleCtrlHandler(swallow_ctrl_c, TRUE));
        swallowing = true;
    }
    FreeConsole();                      /* one console at a time */
    if (!AttachConsole(c->pid) || !GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0))
        err = GetLastError();
    FreeConsole();
    AttachConsole(ATTACH_PARENT_PROCESS);       /* back to a console, if there was one */
    if (err != 0)
        FAIL("cannot send Ctrl-C to child %lu: error %lu", c->pid, (unsigned long)err);
}

void child_kill(const struct child *c)
{
    TerminateProcess(c->process, 128 + 9);      /* as for SIGKILL */
}

int child_wait(struct child *c)
{
    DWORD status;
    CHECK(WaitForSingleObject(c->process, INFINITE) == WAIT_OBJECT_0);
    CHECK(GetExitCodeProcess(c->process, &status));
    live_remove(c);
    CloseHandle(c->process);
    CloseHandle(c->pipe);
    return (int)status;
}

int child_descriptors(const struct child *c)
{
    DWORD n;
    return GetProcessHandleCount(c->process, &n) ? (int)n : -1;
}

const char *child_self_path(void)
{
    static char path[MAX_PATH + 1];
    DWORD n = GetModuleFileNameA(NULL, path, sizeof path);
    return n > 0 && n < sizeof path ? path : NULL;
}

#else

/* ---- POSIX ---------------------------------------------------------- */

static char *env_get(const char *name)
{
    const char *value = getenv(name);
    char *copy;
    if (value == NULL)
        return NULL;
    CHECK((copy = malloc(strlen(value) + 1)) != NULL);
    return strcpy(copy, value);
}

static void env_set(const char *name, const char *value)
{
    CHECK((value != NULL ? setenv(name, value, 1) : unsetenv(name)) == 0);
}

void child_start(struct child *c, char *const argv[], const char *env,
                 enum child_stream stream)
{
    posix_spawn_file_actions_t actions;
    struct env_saved saved;
    int fds[2], err;

    /* Both ends close-on-exec: the child gets its end as stdout or stderr
     * (dup2 clears the flag there), nothing else of the pipe. */
    CHECK(pipe(fds) == 0);
    CHECK(fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0);
    CHECK(fds[1] > STDERR_FILENO);
    CHECK(posix_spawn_file_actions_init(&actions) == 0);
    CHECK(posix_spawn_file_actions_adddup2(
              &actions, fds[1], stream == CHILD_STDOUT ? STDOUT_FILENO : STDERR_FILENO) == 0);
    if (env != NULL)
        env_change(env, &saved);
    err = posix_spawn(&c->pid, argv[0], &actions, NULL, argv, environ);
    if (env != NULL)
        env_restore(&saved);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (err != 0) {
        close(fds[0]);
        FAIL("cannot start %s: %s", argv[0], strerror(err));
    }
    c->pipe = fds[0];
    live_add(c);
}

/* One read from the pipe: the bytes read, 0 at its end. */
static size_t pipe_read(struct child *c, char *buf, size_t size)
{
    ssize_t n;
    while ((n = read(c->pipe, buf, size)) < 0)
        CHECK(errno == EINTR);
    return (size_t)n;
}

void child_stop(const struct child *c)
{
    CHECK(kill(c->pid, SIGTERM) == 0);
}

void child_kill(const struct child *c)
{
    kill(c->pid, SIGKILL);
}

int child_wait(struct child *c)
{
    int status;
    while (waitpid(c->pid, &status, 0) != c->pid)
        CHECK(errno == EINTR);
    live_remove(c);
    close(c->pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int child_descriptors(const struct child *c)
{
    char path[64];
    int n = 0;
    DIR *d;
    struct dirent *e;
    snprintf(path, sizeof path, "/proc/%ld/fd", (long)c->pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The target of /proc link `path` into buf; false if there is none. */
static bool proc_link(const char *path, char *buf, size_t size)
{
    ssize_t n = readlink(path, buf, size - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

bool child_holds(const struct child *c, int fd)
{
    char link[64], self_exe[4096], exe[4096], mine[4096], theirs[4096];
    int64_t deadline = test_now_ns() + 5 * MIO_SEC;

    /* Until exec, the child is a copy of this program. */
    CHECK(proc_link("/proc/self/exe", self_exe, sizeof self_exe));
    snprintf(link, sizeof link, "/proc/%ld/exe", (long)c->pid);
    while (!proc_link(link, exe, sizeof exe) || strcmp(exe, self_exe) == 0) {
        CHECK(test_now_ns() < deadline);
        test_sleep_ms(1);
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (!proc_link(link, mine, sizeof mine))
        return false;
    snprintf(link, sizeof link, "/proc/%ld/fd/%d", (long)c->pid, fd);
    return proc_link(link, theirs, sizeof theirs) && strcmp(mine, theirs) == 0;
}

const char *child_self_path(void)
{
    static char path[4096];
#ifdef __APPLE__
    uint32_t size = sizeof path;
    return _NSGetExecutablePath(path, &size) == 0 ? path : NULL;
#else
    /* Linux, and the BSDs that mount procfs. */
    static const char *const links[] = { "/proc/self/exe", "/proc/curproc/file" };
    size_t i;
    for (i = 0; i < sizeof links / sizeof links[0]; i++) {
        ssize_t n = readlink(links[i], path, sizeof path - 1);
        if (n > 0) {
            path[n] = '\0';
            return path;
        }
    }
    return NULL;
#endif
}

#endif

/* ---- reading, the same everywhere --------------------------------------- */

/* A Windows program's text output ends its lines with \r\n; the tests read
 * them the C way, with \n alone.  Drops the \r of every \r\n in buf[0..n)
 * there and returns the new length. */
static size_t text_lines(char *buf, size_t n)
{
#ifdef _WIN32
    size_t i, kept = 0;
    for (i = 0; i < n; i++)
        if (buf[i] != '\r' || i + 1 == n || buf[i + 1] != '\n')
            buf[kept++] = buf[i];
    return kept;
#else
    (void)buf;
    return n;
#endif
}

void child_read_line(struct child *c, char *buf, size_t size)
{
    size_t n = 0;
    bool newline = false;
    while (!newline && n + 1 < size && pipe_read(c, buf + n, 1) == 1)
        newline = buf[n++] == '\n';
    n = text_lines(buf, n);             /* the newline still counted in n */
    buf[newline ? n - 1 : n] = '\0';
}

size_t child_read_all(struct child *c, char *buf, size_t size)
{
    size_t n = 0, got;
    while (n + 1 < size && (got = pipe_read(c, buf + n, size - 1 - n)) > 0)
        n += got;
    n = text_lines(buf, n);
    buf[n] = '\0';
    return n;
}
