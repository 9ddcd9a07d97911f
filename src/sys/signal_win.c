/* Console control events as signals (Windows): one console handler,
 * installed with the first source and removed with the last, hands each
 * event to mio__signal_deliver under the number mio.h lists.  Windows runs
 * the handler on a thread of its own, so nothing here needs to be
 * async-signal-safe; what it delivers to is the same code as on POSIX. */
#include "../signals.h"
#include "win.h"

#include <signal.h>

static unsigned watched;    /* signals with a source, under signal.c's lock */

int mio__os_signal_check(int sig)
{
    switch (sig) {
    case SIGINT:
    case SIGBREAK:
    case SIGTERM:
    case MIO_SIGHUP:
    case MIO_SIGLOGOFF:
        return 0;
    default:
        return MIO_EINVAL;
    }
}

static int signal_of(unsigned long event)
{
    switch (event) {
    case CTRL_C_EVENT: return SIGINT;
    case CTRL_BREAK_EVENT: return SIGBREAK;
    case CTRL_CLOSE_EVENT: return MIO_SIGHUP;
    case CTRL_LOGOFF_EVENT: return MIO_SIGLOGOFF;
    case CTRL_SHUTDOWN_EVENT: return SIGTERM;
    default: return 0;
    }
}

/* The handler's work (tests call it directly): 1 if a source took the
 * event, 0 if none watches it (the next handler, or Windows' default, gets
 * it then). */
int mio__console_event(unsigned long event);
int mio__console_event(unsigned long event)
{
    int sig = signal_of(event);
    return sig != 0 && mio__signal_deliver(sig);
}

static BOOL WINAPI console_handler(DWORD event)
{
    if (!mio__console_event(event))
        return FALSE;
    /* Windows ends the process as soon as the handler returns from these:
     * wait here, and let the program finish and exit by itself (the
     * system's grace period bounds it).  A logoff reaches services only,
     * which Windows does not end for it. */
    if (event == CTRL_CLOSE_EVENT || event == CTRL_SHUTDOWN_EVENT)
        Sleep(INFINITE);
    return TRUE;
}

int mio__os_signal_watch(int sig)
{
    (void)sig;
    if (watched == 0 && !SetConsoleCtrlHandler(console_handler, TRUE))
        return mio__win_error(GetLastError());
    watched++;
    return 0;
}

void mio__os_signal_unwatch(int sig)
{
    (void)sig;
    if (--watched == 0)
        (void)SetConsoleCtrlHandler(console_handler, FALSE);
}

bool mio__os_child_exited(int64_t pid)
{
    (void)pid;
    return false;
}
