/* Whether the kqueue at hand says EV_EOF on EVFILT_READ while unread bytes
 * remain, on a socket that also has EVFILT_WRITE.  A BSD kernel sets EV_EOF
 * once the peer has shut down its writing, with `data` the bytes still to
 * read.  libkqueue asks epoll for EPOLLRDHUP when the read filter comes alone
 * (evfilt_read_knote_create), but adding the write filter afterwards
 * re-registers the descriptor with EPOLLIN|EPOLLOUT only (epoll_update in
 * its src/linux/platform.c), so epoll never says RDHUP again; it then infers
 * the end only when nothing is left to read.  A reader that drains the bytes
 * with a short read and waits for the next edge, as edge triggering allows,
 * never learns of the end: it came before the bytes were read, and nothing
 * arrives after it.  Added write filter first, the read filter keeps RDHUP.
 *
 *   cc -I PREFIX/include/kqueue libkqueue_eof_with_data.c -L PREFIX/lib -lkqueue
 *
 * Prints what each order of adding the filters gave and exits 0 when both
 * said EV_EOF, 1 otherwise. */
#include <sys/types.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* 1 if the read event carried EV_EOF, 0 if not, -1 if there was none. */
static int eof_seen(int write_first)
{
    static const struct timespec zero = { 0, 0 };
    struct kevent changes[2], events[4];
    int kq = kqueue(), sv[2], i, n, eof = -1;

    if (kq < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("kqueue, socketpair");
        return -2;
    }
    EV_SET(&changes[write_first], sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL);
    EV_SET(&changes[!write_first], sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL);
    if (kevent(kq, changes, 2, NULL, 0, NULL) < 0) {
        perror("kevent");
        return -2;
    }
    /* One byte, then the end of the stream, before anyone looks. */
    if (write(sv[1], "x", 1) != 1 || shutdown(sv[1], SHUT_WR) < 0) {
        perror("write, shutdown");
        return -2;
    }
    n = kevent(kq, NULL, 0, events, 4, &zero);
    for (i = 0; i < n; i++)
        if (events[i].filter == EVFILT_READ)
            eof = (events[i].flags & EV_EOF) != 0;
    close(sv[0]);
    close(sv[1]);
    close(kq);
    return eof;
}

int main(void)
{
    int read_first = eof_seen(0), write_first = eof_seen(1);

    if (read_first < -1 || write_first < -1)
        return 2;
    printf("EV_EOF with a byte unread: read filter added first %s, write filter first %s\n",
           read_first == 1 ? "yes" : read_first == 0 ? "no" : "no read event",
           write_first == 1 ? "yes" : write_first == 0 ? "no" : "no read event");
    return read_first == 1 && write_first == 1 ? 0 : 1;
}
