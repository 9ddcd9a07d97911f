/* A program built against an installed libmio (tools/check_install.sh):
 * one round trip through a socket pair on the default backend.  Prints
 * "mio VERSION BACKEND ok" and exits 0 when the event and the bytes came. */
#include <mio.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    mio_poll *poll;
    mio_fd pair[2];
    mio_event events[8];
    char buf[16];
    ssize_t got = 0;
    int n, err;

    if ((err = mio_poll_new(&poll)) < 0 || (err = mio_socketpair(pair)) < 0 ||
        (err = mio_register(poll, pair[0], 7, MIO_READABLE)) < 0) {
        fprintf(stderr, "consumer: %s\n", mio_strerror(err));
        return 1;
    }
    mio_write(pair[1], "ping", 4);
    n = mio_poll_wait(poll, events, 8, 5 * MIO_SEC);
    if (n == 1 && events[0].token == 7 && (events[0].flags & MIO_READABLE))
        got = mio_read(pair[0], buf, sizeof buf);
    mio_deregister(poll, pair[0]);
    mio_close(pair[0]);
    mio_close(pair[1]);
    if (got != 4 || memcmp(buf, "ping", 4) != 0) {
        fprintf(stderr, "consumer: no round trip (%d events, read %zd)\n", n, got);
        mio_poll_free(poll);
        return 1;
    }
    printf("mio %s %s ok\n", mio_version_string(), mio_poll_backend(poll));
    mio_poll_free(poll);
    return 0;
}
