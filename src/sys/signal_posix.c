/* Signal dispositions on POSIX: libmio's handler goes in with a signal's
 * first source and the disposition it replaced comes back with the last
 * (signal.c keeps the count).  The handler hands the signal to
 * mio__signal_deliver and leaves errno as it found it.  No signal mask is
 * changed: the signal comes to whichever thread the kernel picks.
 *
 * Not signalfd: it reads only signals blocked in every thread (a mask the
 * library would have to force on the whole program, inherited by children),
 * and one read takes a signal from every other reader.  Not kqueue's
 * EVFILT_SIGNAL either, on the kqueue backend: a signal whose default is to
 * end the process needs a handler anyway, and libkqueue builds the filter on
 * signalfd, blocking the signal in the calling thread.  One handler serves
 * every backend alike. */
#include "../signals.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

static struct sigaction saved[MIO__NSIG];   /* under signal.c's lock */

static void handler(int sig)
{
    int e = errno;
    (void)mio__signal_deliver(sig);
    errno = e;
}

int mio__os_signal_check(int sig)
{
    struct sigaction now;

    if (sig <= 0 || sig >= MIO__NSIG || sig >= NSIG)
        return MIO_EINVAL;
    switch (sig) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
        return MIO_EINVAL;
    default:
        break;
    }
    /* Numbers the C library keeps for itself are refused here. */
    return sigaction(sig, NULL, &now) == 0 ? 0 : MIO_EINVAL;
}

int mio__os_signal_watch(int sig)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &saved[sig]) < 0)
        return mio__err();
    return 0;
}

void mio__os_signal_unwatch(int sig)
{
    (void)sigaction(sig, &saved[sig], NULL);
}

bool mio__os_child_exited(int64_t pid)
{
    siginfo_t si;
    int e = errno, rc;
    bool exited;

    si.si_pid = 0;
    rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
    /* ECHILD: reaped behind libmio's back; the process says so when asked. */
    exited = rc == 0 ? si.si_pid == (pid_t)pid : errno == ECHILD;
    errno = e;
    return exited;
}
