/* Stopping an example cleanly: Ctrl-C or SIGTERM (POSIX), or Ctrl-C or
 * Ctrl-Break in its console (Windows), wakes a waker.  The program sees the
 * waker's token come out of its wait (or its loop's `ready`), leaves its loop
 * and frees everything on the way out.
 *
 *   stop_on_signal(waker);      ...serve...      stop_on_signal(NULL);
 *
 * NULL restores the default handling; once it returns, no wake is under way
 * (on POSIX: in a program whose signals come to this thread, as in the
 * examples), so the waker may be freed.
 *
 * Another program stops an example with `kill -TERM PID` on POSIX.  On
 * Windows it attaches to the example's console (FreeConsole, then
 * AttachConsole(PID)) and calls GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0),
 * which reaches every process attached to that console, the sender included
 * (it handles Ctrl-C itself for that); starting the example with a console
 * of its own (CREATE_NO_WINDOW) keeps others out.  A Ctrl-Break sent to its
 * process group would do too, except under wine 8, which sends only Ctrl-C.
 *
 * POSIX needs _POSIX_C_SOURCE 200809L (for sigaction) defined before the
 * first #include, as the examples do. */
#ifndef EXAMPLES_STOP_H
#define EXAMPLES_STOP_H

#include "mio.h"

#ifdef _WIN32
#include <windows.h>

static SRWLOCK stop_lock = SRWLOCK_INIT;
static mio_waker *stop_target;

/* Windows calls this on a thread of its own while the program's thread
 * waits: the waker (callable from any thread) carries the request over.  The
 * lock keeps stop_on_signal(NULL) from returning while a wake is under way. */
static BOOL WINAPI stop_handler(DWORD event)
{
    BOOL handled = FALSE;
    if (event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT)
        return FALSE;           /* closing, logoff, shutdown: the default */
    AcquireSRWLockShared(&stop_lock);
    if (stop_target != NULL)
        handled = mio_waker_wake(stop_target) == 0;
    ReleaseSRWLockShared(&stop_lock);
    return handled;
}

static void stop_on_signal(mio_waker *waker)
{
    AcquireSRWLockExclusive(&stop_lock);
    stop_target = waker;
    ReleaseSRWLockExclusive(&stop_lock);
    SetConsoleCtrlHandler(stop_handler, waker != NULL);
}

#else
#include <signal.h>
#include <string.h>

static mio_waker *stop_target;

/* mio_waker_wake is async-signal-safe here; the interrupted wait returns
 * MIO_EINTR and the next one reports the waker. */
static void stop_handler(int sig)
{
    (void)sig;
    mio_waker_wake(stop_target);
}

static void stop_on_signal(mio_waker *waker)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = waker != NULL ? stop_handler : SIG_DFL;
    if (waker != NULL)
        stop_target = waker;     /* before the handler can run */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    stop_target = waker;         /* NULL only once the handler is gone */
}
#endif

#endif
