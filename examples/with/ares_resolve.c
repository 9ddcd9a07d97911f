/* Host names resolved with c-ares on the event loop: c-ares says through its
 * socket-state callback which sockets to watch and for what, and through
 * ares_timeout when it next needs a call with no I/O (a retry, or giving
 * up); the loop waits and hands each readiness to ares_process_fd.
 *
 *   ares_resolve [-b BACKEND] [-s SERVERS] [-t TIMEOUT_MS] [-r TRIES] NAME...
 *
 * SERVERS is a list for ares_set_servers_ports_csv ("127.0.0.1:5300,[::1]:53");
 * without it, the system's (/etc/resolv.conf).  TIMEOUT_MS is the first
 * try's timeout per server (c-ares doubles it for later rounds) and TRIES
 * how often each server is tried; c-ares's defaults otherwise.  The names
 * are resolved at once, IPv4 and IPv6 (ares_getaddrinfo, AF_UNSPEC), by DNS
 * only (no hosts file, no search domains).  One line per name, in the order
 * they finish:
 *
 *   NAME ok 3 ms A 192.0.2.1 192.0.2.2 AAAA 2001:db8::1
 *   NAME error ENOTFOUND 2 ms 0 timeouts: Domain name not found
 *
 * then "done N ok K failed M".  Exit 0 when every name resolved, 1 if one did
 * not, 77 for a backend this build lacks.
 *
 * What it shows:
 * - ARES_OPT_SOCK_STATE_CB: a socket is registered with the interest c-ares
 *   asks for, reregistered when that changes, and deregistered when it asks
 *   for nothing, which it does just before closing it.  Level-triggered:
 *   c-ares reads and writes the socket itself, so libmio never sees the
 *   MIO_EAGAIN that re-arms an emulated edge (poll(2), Windows).
 * - ares_timeout as one loop timer, set again after every call into c-ares
 *   (any of them may start, answer or retry a query); when it fires,
 *   ares_process_fd with no socket.
 * - ARES_AI_NOSORT: no connect to the answers to sort them (c-ares would
 *   otherwise try each address it got). */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

/* ares.h uses fd_set and struct timeval without declaring them everywhere */
#include <sys/select.h>
#include <sys/time.h>

#include <ares.h>
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../clock.h"
#include "../errors.h"
#include "../stop.h"

/* Sockets are registered under their descriptor; the signal waker under a
 * token no descriptor has. */
#define STOP ((mio_token)INT_MAX + 1)

struct resolver {
    ares_channel channel;
    mio_loop *loop;
    mio_timeout timer;          /* c-ares's next deadline (0: none) */
    size_t left, ok, failed;
    int err;                    /* the first registration libmio refused */
};

struct lookup {
    struct resolver *r;
    const char *name;
    int64_t start;
};

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct resolver *r = data;
    mio_poll *p = mio_loop_poll(r->loop);
    uint32_t interest = (readable ? MIO_READABLE : 0) | (writable ? MIO_WRITABLE : 0);
    int err;

    if (interest == 0) {
        err = mio_deregister(p, fd);
        if (err == MIO_ENOENT)
            err = 0;                    /* never watched: nothing to undo */
    } else if ((err = mio_reregister(p, fd, (mio_token)fd, interest | MIO_LEVEL)) == MIO_ENOENT) {
        err = mio_register(p, fd, (mio_token)fd, interest | MIO_LEVEL);
    }
    if (err < 0) {
        /* c-ares cannot be told: stop rather than wait for a socket no one
         * watches (its queries then end with ARES_EDESTRUCTION). */
        fprintf(stderr, "ares_resolve: socket %d: %s\n", (int)fd, mio_strerror(err));
        if (r->err == 0)
            r->err = err;
        mio_loop_shutdown(r->loop);
    }
}

/* One timer for c-ares's earliest deadline, set after every call into it. */
static void timer_rearm(struct resolver *r)
{
    struct timeval tv, *next;
    uint64_t delay;

    mio_loop_clear_timeout(r->loop, r->timer);
    r->timer = 0;
    if ((next = ares_timeout(r->channel, NULL, &tv)) == NULL)
        return;                         /* no query pending */
    delay = (uint64_t)next->tv_sec * MIO_SEC + (uint64_t)next->tv_usec * MIO_USEC;
    if (mio_loop_timeout(r->loop, r, delay, &r->timer) < 0) {
        fprintf(stderr, "ares_resolve: no timer left\n");
        if (r->err == 0)
            r->err = MIO_ENOSPC;
        mio_loop_shutdown(r->loop);
    }
}

static const char *status_name(int status)
{
    switch (status) {
    case ARES_ENODATA: return "ENODATA";
    case ARES_EFORMERR: return "EFORMERR";
    case ARES_ESERVFAIL: return "ESERVFAIL";
    case ARES_ENOTFOUND: return "ENOTFOUND";
    case ARES_ENOTIMP: return "ENOTIMP";
    case ARES_EREFUSED: return "EREFUSED";
    case ARES_EBADNAME: return "EBADNAME";
    case ARES_EBADRESP: return "EBADRESP";
    case ARES_ECONNREFUSED: return "ECONNREFUSED";
    case ARES_ETIMEOUT: return "ETIMEOUT";
    case ARES_ENOMEM: return "ENOMEM";
    case ARES_EDESTRUCTION: return "EDESTRUCTION";
    case ARES_ECANCELLED: return "ECANCELLED";
    default: return "EOTHER";
    }
}

/* Appends the addresses of one family to line. */
static void append_addresses(char *line, size_t size, const struct ares_addrinfo *res, int family)
{
    const struct ares_addrinfo_node *node;
    char text[INET6_ADDRSTRLEN];

    for (node = res != NULL ? res->nodes : NULL; node != NULL; node = node->ai_next) {
        const void *addr;
        size_t used = strlen(line);
        if (node->ai_family != family)
            continue;
        addr = family == AF_INET ? (const void *)&((const struct sockaddr_in *)node->ai_addr)->sin_addr
                                 : (const void *)&((const struct sockaddr_in6 *)node->ai_addr)->sin6_addr;
        if (inet_ntop(family, addr, text, sizeof text) != NULL)
            snprintf(line + used, size - used, " %s", text);
    }
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct lookup *q = arg;
    struct resolver *r = q->r;
    long long ms = (long long)((clock_now_ns() - q->start) / MIO_MSEC);
    char line[4096];

    if (status == ARES_SUCCESS) {
        snprintf(line, sizeof line, "%s ok %lld ms A", q->name, ms);
        append_addresses(line, sizeof line, res, AF_INET);
        snprintf(line + strlen(line), sizeof line - strlen(line), " AAAA");
        append_addresses(line, sizeof line, res, AF_INET6);
        printf("%s\n", line);
        r->ok++;
    } else {
        printf("%s error %s %lld ms %d timeouts: %s\n", q->name, status_name(status), ms,
               timeouts, ares_strerror(status));
        r->failed++;
    }
    fflush(stdout);
    ares_freeaddrinfo(res);
    if (--r->left == 0)
        mio_loop_shutdown(r->loop);
}

static void on_ready(mio_loop *loop, void *ctx, mio_token token, uint32_t readiness)
{
    struct resolver *r = ctx;
    ares_socket_t fd = (ares_socket_t)token;

    if (token == STOP) {
        mio_loop_shutdown(loop);        /* ares_destroy ends what is pending */
        return;
    }
    /* A pending error (an ICMP port unreachable) is read as one. */
    ares_process_fd(r->channel,
                    readiness & (MIO_READABLE | MIO_READ_CLOSED | MIO_ERROR) ? fd : ARES_SOCKET_BAD,
                    readiness & (MIO_WRITABLE | MIO_WRITE_CLOSED) ? fd : ARES_SOCKET_BAD);
    timer_rearm(r);
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    struct resolver *r = ctx;
    (void)loop, (void)arg;
    r->timer = 0;                       /* fired: nothing to clear */
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    timer_rearm(r);
}

int main(int argc, char **argv)
{
    mio_loop_config config = { 0 };
    const mio_handler handler = { .ready = on_ready, .timeout = on_timeout };
    struct ares_addrinfo_hints hints;
    struct ares_options options;
    struct resolver r = { 0 };
    struct lookup *lookups = NULL;
    const char *servers = NULL;
    mio_waker *waker = NULL;
    long timeout_ms = 0, tries = 0;
    int arg, err, mask, status = 1;
    bool channel = false;
    size_t i, n;

    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            config.backend = value;
        else if (strcmp(argv[arg], "-s") == 0)
            servers = value;
        else if (strcmp(argv[arg], "-t") == 0 && (timeout_ms = atol(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-r") == 0 && (tries = atol(value)) > 0)
            ;
        else
            goto usage;
    }
    if (arg == argc || argv[arg][0] == '-' || timeout_ms > INT_MAX || tries > INT_MAX)
        goto usage;
    n = (size_t)(argc - arg);

    if ((err = mio_loop_new(&config, &r.loop)) == MIO_ENOSYS)
        return 77;
    if (err < 0) {
        fprintf(stderr, "ares_resolve: %s\n", mio_strerror(err));
        return 1;
    }
    if ((err = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
        fprintf(stderr, "ares_resolve: %s\n", ares_strerror(err));
        mio_loop_free(r.loop);
        return 1;
    }

    memset(&options, 0, sizeof options);
    options.flags = ARES_FLAG_NOSEARCH;
    options.lookups = "b";      /* DNS only: no hosts file */
    options.sock_state_cb = on_sock_state;
    options.sock_state_cb_data = &r;
    mask = ARES_OPT_FLAGS | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
    if (timeout_ms > 0) {
        options.timeout = (int)timeout_ms;
        mask |= ARES_OPT_TIMEOUTMS;
    }
    if (tries > 0) {
        options.tries = (int)tries;
        mask |= ARES_OPT_TRIES;
    }
    if ((err = ares_init_options(&r.channel, &options, mask)) != ARES_SUCCESS) {
        fprintf(stderr, "ares_resolve: %s\n", ares_strerror(err));
        goto out;
    }
    channel = true;
    if (servers != NULL && (err = ares_set_servers_ports_csv(r.channel, servers)) != ARES_SUCCESS) {
        fprintf(stderr, "ares_resolve: %s: %s\n", servers, ares_strerror(err));
        goto out;
    }
    if ((lookups = calloc(n, sizeof *lookups)) == NULL) {
        fprintf(stderr, "ares_resolve: out of memory\n");
        goto out;
    }
    if ((err = mio_waker_new(mio_loop_poll(r.loop), STOP, &waker)) < 0) {
        fprintf(stderr, "ares_resolve: %s\n", mio_strerror(err));
        goto out;
    }

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    r.left = n;
    for (i = 0; i < n; i++) {
        lookups[i].r = &r;
        lookups[i].name = argv[arg + (int)i];
        lookups[i].start = clock_now_ns();
        /* May answer at once (a numeric name), from inside this call. */
        ares_getaddrinfo(r.channel, lookups[i].name, NULL, &hints, on_addrinfo, &lookups[i]);
    }
    timer_rearm(&r);
    stop_on_signal(waker);
    /* A wait that failed for want of memory is tried again. */
    while (r.left > 0 && r.err == 0 &&
           (err = mio_loop_run(r.loop, &handler, &r)) < 0 && error_is_transient(err))
        ;
    if (err < 0)
        fprintf(stderr, "ares_resolve: %s\n", mio_strerror(err));
    stop_on_signal(NULL);

out:
    /* Queries still pending end here (ARES_EDESTRUCTION), and c-ares
     * deregisters its sockets: the loop goes after it. */
    if (channel)
        ares_destroy(r.channel);
    if (waker != NULL) {                /* the lookups were started */
        printf("done %zu ok %zu failed %zu\n", n, r.ok, r.failed);
        status = r.ok == n ? 0 : 1;
    }
    ares_library_cleanup();
    mio_waker_free(waker);
    mio_loop_free(r.loop);
    free(lookups);
    return status;

usage:
    fprintf(stderr, "usage: ares_resolve [-b epoll|poll|...] [-s SERVERS] [-t TIMEOUT_MS] "
                    "[-r TRIES] NAME...\n");
    return 2;
}
