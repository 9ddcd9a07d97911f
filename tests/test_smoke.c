#include "harness.h"

#include <sys/socket.h>
#include <unistd.h>

TEST(socketpair_readable)
{
    mio_poll *p = test_poll();
    int sv[2];
    mio_event ev[8];
    OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
    OK(mio_register(p, sv[0], 7, MIO_READABLE));
    CHECK_EQ(test_wait(p, ev, 8, 0), 0);
    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK_EQ(test_wait(p, ev, 8, 100 * MIO_MSEC), 1);
    CHECK_EQ(ev[0].token, 7);
    CHECK_EQ(ev[0].flags, MIO_READABLE);
    close(sv[0]); close(sv[1]);
    mio_poll_free(p);
}
