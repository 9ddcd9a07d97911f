/* A UDP echo server: every datagram goes back to where it came from.
 *
 *   udp_echo [-b BACKEND] [-n SECONDS] [ADDR]        (ADDR: 127.0.0.1:0)
 *
 * The first line of stdout is "listening on ADDR:PORT backend NAME".  It runs
 * until Ctrl-C or SIGTERM (on Windows: Ctrl-C or Ctrl-Break in its console;
 * see stop.h) or for SECONDS, then frees everything, prints "stopped" and
 * exits 0; a backend this build lacks exits 77.  Try `nc -u 127.0.0.1 PORT`.
 *
 * What it shows: a datagram socket drained in batches on each edge (up to 32
 * datagrams per call: one recvmmsg and one sendmmsg on Linux), each reply
 * the received entry sent back as it is: to the datagram's source, from the
 * address the datagram was sent to (MIO_UDP_RECV_LOCAL, where the OS has it:
 * a server bound to 0.0.0.0 on a host with several addresses must answer
 * from the one the client used).  And the usual UDP answer to
 * back-pressure: a reply the socket cannot take right now is dropped, not
 * queued (the sender retries if it cares). */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errors.h"
#include "stop.h"

#define SOCKET_TOKEN 0
#define STOP         1

#define BATCH 32

/* The batch: one entry per datagram, each with room for the largest. */
static mio_datagram batch[BATCH];
static char room[BATCH][65536];

/* Echoes every datagram waiting; counts what was echoed and dropped. */
static void echo_all(mio_fd sock, unsigned long *echoed, unsigned long *dropped)
{
    for (;;) {
        ssize_t n = mio_udp_recv_batch(sock, batch, BATCH), at = 0;
        if (n == MIO_EAGAIN)
            return;
        if (n < 0)
            continue;           /* e.g. an ICMP error of an earlier send */
        /* Each entry now says where its datagram came from and went to:
         * sent back as it is, it answers it. */
        while (at < n) {
            ssize_t sent = mio_udp_send_batch(sock, batch + at, (size_t)(n - at));
            if (sent == MIO_EAGAIN) {
                *dropped += (unsigned long)(n - at);    /* no room: the rest goes */
                break;
            }
            if (sent < 0) {
                ++*dropped;     /* this one reply could not go: the next may */
                at++;
                continue;
            }
            *echoed += (unsigned long)sent;
            at += sent;
        }
        if (n < BATCH)
            return;             /* a short batch drained the socket */
    }
}

int main(int argc, char **argv)
{
    const char *backend = NULL, *text = "127.0.0.1:0";
    mio_fd sock = MIO_INVALID_FD;
    mio_event events[8];
    mio_poll *poll = NULL;
    char name[MIO_ADDR_STRLEN];
    unsigned long echoed = 0, dropped = 0;
    int64_t deadline = 0;
    mio_waker *waker = NULL;
    mio_addr addr;
    bool stop = false;
    int arg, err, i;

    /* Options, each with its value ("-b epoll"), then ADDR. */
    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            backend = value;
        else if (strcmp(argv[arg], "-n") == 0 && atof(value) > 0)
            deadline = clock_now_ns() + (int64_t)(atof(value) * 1e9);
        else
            goto usage;
    }
    if (arg < argc)
        text = argv[arg++];
    if (arg != argc || mio_addr_parse(text, &addr) < 0)
        goto usage;

    for (i = 0; i < BATCH; i++) {
        batch[i].buf = room[i];
        batch[i].size = sizeof room[i];
    }
    if ((err = mio_poll_new_backend(backend, &poll)) == MIO_ENOSYS)
        return 77;
    if (err == 0 && (err = mio_waker_new(poll, STOP, &waker)) == 0 &&
        (err = mio_udp_bind(&addr, &sock)) == 0 &&
        (err = mio_register(poll, sock, SOCKET_TOKEN, MIO_READABLE)) == 0 &&
        (err = mio_local_addr(sock, &addr)) == 0) {
        /* Where the OS cannot tell, replies go from its choice of address. */
        (void)mio_udp_enable(sock, MIO_UDP_RECV_LOCAL);
        /* Before the line that tells others we are up: a stop may follow it
         * at once. */
        stop_on_signal(waker);
        mio_addr_format(&addr, name, sizeof name);
        printf("listening on %s backend %s\n", name, mio_poll_backend(poll));
        fflush(stdout);
    } else {
        fprintf(stderr, "udp_echo: %s: %s\n", text, mio_strerror(err));
        stop = true;
    }

    while (!stop) {
        int64_t timeout = deadline > 0 ? deadline - clock_now_ns() : -1;
        int n;
        if (deadline > 0 && timeout <= 0)
            break;
        n = mio_poll_wait(poll, events, 8, timeout);
        if (n < 0 && !error_is_transient(n)) {
            fprintf(stderr, "udp_echo: wait: %s\n", mio_strerror(n));
            err = n;
            break;
        }
        for (i = 0; i < n; i++) {
            if (events[i].token == STOP)
                stop = true;
            else
                echo_all(sock, &echoed, &dropped);
        }
    }

    stop_on_signal(NULL);               /* no wake after the waker is gone */
    if (sock != MIO_INVALID_FD) {
        mio_deregister(poll, sock);
        mio_close(sock);
    }
    mio_waker_free(waker);
    mio_poll_free(poll);
    fprintf(stderr, "udp_echo: %lu echoed, %lu dropped\n", echoed, dropped);
    if (err < 0)
        return 1;
    printf("stopped\n");               /* the last line: all freed */
    return 0;

usage:
    fprintf(stderr, "usage: udp_echo [-b epoll|poll|...] [-n SECONDS] [ADDR]\n");
    return 2;
}
