/* Whether the kqueue at hand loses edge-triggered events that do not fit the
 * caller's event list.  K socket pairs each have EVFILT_READ and EVFILT_WRITE
 * with EV_CLEAR on one end and are ready both ways: 2K events are owed.
 * kevent() is asked for K at a time until it has nothing more to give.  A BSD
 * kernel hands all 2K over two calls; libkqueue takes K descriptors from epoll
 * for K slots, fills them with the first K/2 descriptors' two events each,
 * and drops the rest, which edge triggering never reports again.
 *
 *   cc -I PREFIX/include/kqueue libkqueue_lost_edges.c -L PREFIX/lib -lkqueue
 *
 * Prints "N of 2K events" and exits 0 when none was lost, 1 otherwise. */
#include <sys/types.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

enum { K = 8 };

int main(void)
{
    static const struct timespec zero = { 0, 0 };
    struct kevent changes[2 * K], events[K];
    int kq = kqueue(), sv[K][2], i, n, total = 0;

    if (kq < 0) {
        perror("kqueue");
        return 2;
    }
    for (i = 0; i < K; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) < 0 || write(sv[i][1], "x", 1) != 1) {
            perror("socketpair");
            return 2;
        }
        EV_SET(&changes[2 * i], sv[i][0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL);
        EV_SET(&changes[2 * i + 1], sv[i][0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL);
    }
    if (kevent(kq, changes, 2 * K, NULL, 0, NULL) < 0) {
        perror("kevent");
        return 2;
    }
    while ((n = kevent(kq, NULL, 0, events, K, &zero)) > 0)
        total += n;
    printf("%d of %d events\n", total, 2 * K);
    return total == 2 * K ? 0 : 1;
}
