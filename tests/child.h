/* Other programs run by the tests: start one with one of its output streams
 * on a pipe, read that stream, stop the program the way a user would, kill
 * it, and wait for its exit status.  POSIX and Windows alike; every call
 * fails the test (FAIL) when the system refuses it.
 *
 * A clean stop is SIGTERM on POSIX.  On Windows it is a Ctrl-C in the
 * child's console: every child gets a console of its own, without a window,
 * and child_stop attaches to it for the moment of a
 * GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0), which reaches the processes of
 * that console only.  (Ctrl-Break to a process group would need no console
 * of its own, but wine delivers only Ctrl-C, and a new process group
 * ignores Ctrl-C.)  The test itself ignores Ctrl-C from its first stop on.
 *
 * Children still running when the test exits (a failed CHECK) are killed on
 * the way out: they hold the test's stderr, and ctest would wait for them.
 * Start children from one thread only (the environment and, on Windows, the
 * handles they inherit are set up around each start). */
#ifndef MIO_TEST_CHILD_H
#define MIO_TEST_CHILD_H

#include <stdbool.h>
#include <stddef.h>

#ifndef _WIN32
#include <sys/types.h>
#endif

/* The stream of the child that goes to the pipe; the other one, and stdin,
 * are the test's own. */
enum child_stream { CHILD_STDOUT, CHILD_STDERR };

struct child {
#ifdef _WIN32
    void *process;              /* HANDLE */
    void *pipe;                 /* HANDLE: our end */
    unsigned long pid;
#else
    pid_t pid;
    int pipe;                   /* our end */
#endif
};

/* Starts argv[0] (a path) with arguments argv (NULL-terminated), `stream`
 * on the pipe.  env: NULL, or "NAME=value" to set for the child, or "NAME"
 * to remove from its environment. */
void child_start(struct child *c, char *const argv[], const char *env,
                 enum child_stream stream);

/* Reads the next line from the pipe, without its newline; "" at the end. */
void child_read_line(struct child *c, char *buf, size_t size);
/* Reads the pipe to its end (at most size - 1 bytes, NUL-terminated) and
 * returns how many bytes were read. */
size_t child_read_all(struct child *c, char *buf, size_t size);

/* Asks the child to finish: SIGTERM, or Ctrl-C in its console on Windows. */
void child_stop(const struct child *c);
/* Ends the child at once: SIGKILL, or TerminateProcess (exit status 137). */
void child_kill(const struct child *c);
/* Waits for the child to end and returns its exit status (128 + the signal
 * if a signal ended it); closes the pipe.  The child is then gone. */
int child_wait(struct child *c);

/* How many descriptors (handles on Windows) the child has open; -1 where
 * the system does not tell. */
int child_descriptors(const struct child *c);

/* The path of this program, to start it again as a child; NULL where the
 * system does not tell. */
const char *child_self_path(void);

#ifndef _WIN32
/* Whether the child holds this process's descriptor fd: the same open file
 * behind /proc/<child>/fd/<fd> as behind /proc/self/fd/<fd> (false when fd
 * is not open here).  Linux's /proc; waits for the child's exec first, so
 * what it was spawned with has shed its close-on-exec descriptors. */
bool child_holds(const struct child *c, int fd);
#endif

#endif
