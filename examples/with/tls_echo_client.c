/* A TLS echo client with OpenSSL on the event loop: several connections at
 * once, each sending BYTES and checking every byte that comes back, then
 * closing with close_notify both ways.
 *
 *   tls_echo_client [-b BACKEND] -C CERT_FILE [-c CONNECTIONS] [-s BYTES]
 *                   [-u BYTES] [-d SECONDS] ADDR
 *
 * The server's certificate must be the one in CERT_FILE (PEM, e.g. the one
 * tls_echo_server -C wrote) and name ADDR's IP address: it is verified, and
 * a handshake with any other fails.  CONNECTIONS defaults to 1, BYTES to 1
 * MiB, SECONDS (the deadline for all of it) to 60.  A connection sends while
 * it reads, as an echo needs: one that only wrote until done would fill
 * both ways' buffers and wait for ever.  -u: every BYTES sent, once they all
 * came back, a renegotiation (TLS 1.2; the server must accept it:
 * tls_echo_server -u) or a key update (TLS 1.3) of its own.
 *
 * Prints "connection I error: WHY" for each failure, then "connections N ok
 * K bytes_verified B close_notify C updates U writes_wanting_read W
 * reads_wanting_write R" (close_notify: the server's, received after ours);
 * exits 0 when every connection got all its bytes back and closed cleanly,
 * 1 if not, 77 for a backend this build lacks.
 *
 * What it shows (tls.h has the mapping of OpenSSL's wants onto libmio): a
 * non-blocking connect, then the handshake, then reads and writes each
 * retried with the same arguments until OpenSSL is done with them, whatever
 * direction they wait for; a write that must wait to read while its own
 * renegotiation runs; reads alone while a handshake runs; the
 * unidirectional SSL_shutdown and the read that finds the peer's
 * close_notify; certificate verification against one trusted certificate
 * and an IP address. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

#define MAX_CONNS 1024
#define CHUNK     16384
#define END_OF_RUN ((void *)&deadline)  /* the deadline timer's argument */

enum state { CONNECTING, HANDSHAKE, OPEN, SHUTDOWN, DONE };

struct conn {
    struct tls_io io;
    size_t index;               /* its token */
    enum state state;
    uint32_t interest;          /* as registered */
    mio_timeout retry;          /* after a transient error (0: none) */
    bool close_sent;            /* our close_notify is out */
    uint64_t sent, verified;
    uint64_t mark;              /* sent up to here before the next update */
    size_t chunk_len;           /* chunk holds bytes sent..sent+chunk_len */
    unsigned char chunk[CHUNK];
    unsigned char in[CHUNK];
};

struct client {
    SSL_CTX *ctx;
    char ip[64];                /* the address the certificate must name */
    uint64_t bytes;             /* -s */
    uint64_t update_every;      /* -u; 0: never */
    size_t live;
    unsigned long ok, failed, close_notify, verified, updates;
    unsigned long writes_wanting_read, reads_wanting_write;
    struct conn *conns[MAX_CONNS];
};

static char deadline;

/* Byte `off` of connection i's stream: varied, so that a byte lost,
 * repeated or swapped shows. */
static unsigned char pattern(size_t i, uint64_t off)
{
    uint64_t x = (off / 8 + 1) * UINT64_C(0x9e3779b97f4a7c15) + i * UINT64_C(0xbf58476d1ce4e5b9);
    return (unsigned char)((x >> (8 * (off % 8))) ^ (x >> 59));
}

static void conn_finish(mio_loop *loop, struct client *cl, struct conn *c, const char *why)
{
    if (why != NULL) {
        printf("connection %zu error: %s\n", c->index, why);
        fflush(stdout);
        cl->failed++;
    } else {
        cl->ok++;
    }
    cl->verified += c->verified;
    mio_loop_clear_timeout(loop, c->retry);
    mio_deregister(mio_loop_poll(loop), c->io.fd);
    SSL_free(c->io.ssl);
    mio_close(c->io.fd);
    cl->conns[c->index] = NULL;
    free(c);
    if (--cl->live == 0)
        mio_loop_shutdown(loop);
}

static void conn_fail(mio_loop *loop, struct client *cl, struct conn *c)
{
    char why[256];
    conn_finish(loop, cl, c, tls_error(&c->io, why, sizeof why));
}

/* Checks what came back against what was sent: NULL, or what differs. */
static const char *verify(struct conn *c, size_t n, char *why, size_t size)
{
    size_t k;
    if (c->verified + n > c->sent)
        return "more came back than was sent";
    for (k = 0; k < n; k++)
        if (c->in[k] != pattern(c->index, c->verified + k)) {
            snprintf(why, size, "byte %llu differs", (unsigned long long)(c->verified + k));
            return why;
        }
    c->verified += n;
    return NULL;
}

/* Retries every pending operation until none makes progress, then watches
 * what the last round wanted.  Reads come first: what a write then waits
 * for stays true once the round is over (a read after it could finish the
 * handshake that write is waiting on, and no event would say so).  false
 * once the connection is finished. */
static bool conn_pump(mio_loop *loop, struct client *cl, struct conn *c)
{
    for (;;) {
        uint32_t want = 0, w;
        bool progress = false;
        const char *bad;
        char why[96];
        int ret;

        c->io.stalled = false;
        if (c->state == HANDSHAKE) {
            tls_begin();
            switch (tls_end(&c->io, SSL_do_handshake(c->io.ssl), &want)) {
            case TLS_OK:
                c->state = OPEN;
                progress = true;
                break;
            case TLS_WAIT:
                break;
            default:
                conn_fail(loop, cl, c);
                return false;
            }
        }
        if (c->state == OPEN || (c->state == SHUTDOWN && c->close_sent)) {
            w = 0;
            tls_begin();
            ret = SSL_read(c->io.ssl, c->in, sizeof c->in);
            switch (tls_end(&c->io, ret, &w)) {
            case TLS_OK:
                if (c->state == SHUTDOWN) {
                    conn_finish(loop, cl, c, "data after the echo");
                    return false;
                }
                if ((bad = verify(c, (size_t)ret, why, sizeof why)) != NULL) {
                    conn_finish(loop, cl, c, bad);
                    return false;
                }
                progress = true;
                break;
            case TLS_WAIT:
                cl->reads_wanting_write += (w & MIO_WRITABLE) != 0;
                want |= w;
                break;
            case TLS_CLOSED:
                if (c->state == OPEN) {
                    conn_finish(loop, cl, c, "closed before everything came back");
                    return false;
                }
                cl->close_notify++;             /* the server's answer to ours */
                c->state = DONE;
                break;
            default:
                conn_fail(loop, cl, c);
                return false;
            }
        }
        /* A handshake under way (a renegotiation): only reads, which finish
         * it.  OpenSSL takes the server's application data mixed into it
         * only inside SSL_read; a write driving it would fail on that data
         * with "unexpected record".  SSL_shutdown refuses to run in one. */
        if (c->state == OPEN && !SSL_in_init(c->io.ssl)) {
            if (c->sent == cl->bytes && c->verified == cl->bytes) {
                c->state = SHUTDOWN;            /* all back: close */
            } else if (c->sent == c->mark && c->verified == c->sent) {
                /* -u: at each mark, once all sent came back (no application
                 * data from the server in flight), a renegotiation or key
                 * update of our own.  The next write starts it; under TLS
                 * 1.2 that write then waits for the server's answer. */
                if (c->mark > 0 && (SSL_version(c->io.ssl) >= TLS1_3_VERSION
                                        ? SSL_key_update(c->io.ssl, SSL_KEY_UPDATE_REQUESTED)
                                        : SSL_renegotiate(c->io.ssl)) == 1)
                    cl->updates++;
                c->mark = cl->update_every > 0 && cl->bytes - c->sent > cl->update_every
                              ? c->sent + cl->update_every : cl->bytes;
            }
        }
        if (c->state == OPEN && c->sent < c->mark && !SSL_in_init(c->io.ssl)) {
            /* A write that waited is called again with the same bytes. */
            if (c->chunk_len == 0) {
                uint64_t left = c->mark - c->sent;
                size_t k;
                c->chunk_len = left < CHUNK ? (size_t)left : CHUNK;
                for (k = 0; k < c->chunk_len; k++)
                    c->chunk[k] = pattern(c->index, c->sent + k);
            }
            w = 0;
            tls_begin();
            ret = SSL_write(c->io.ssl, c->chunk, (int)c->chunk_len);
            switch (tls_end(&c->io, ret, &w)) {
            case TLS_OK:
                c->sent += (size_t)ret;         /* maybe part of it */
                c->chunk_len = 0;
                progress = true;
                break;
            case TLS_WAIT:
                cl->writes_wanting_read += (w & MIO_READABLE) != 0;
                want |= w;
                break;
            default:
                conn_fail(loop, cl, c);
                return false;
            }
        }
        if (c->state == SHUTDOWN && !c->close_sent) {
            tls_begin();
            ret = SSL_shutdown(c->io.ssl);
            if (ret == 0) {                     /* ours is out; theirs to read */
                c->close_sent = true;
                progress = true;
            } else if (ret == 1) {              /* both already */
                cl->close_notify++;
                c->state = DONE;
            } else if (tls_end(&c->io, ret, &want) != TLS_WAIT) {
                conn_fail(loop, cl, c);
                return false;
            }
        }
        if (c->state == DONE) {
            conn_finish(loop, cl, c, NULL);
            return false;
        }
        if (progress)
            continue;
        if (c->io.stalled && c->retry == 0 && mio_loop_timeout(loop, c, RETRY_NS, &c->retry) < 0) {
            conn_finish(loop, cl, c, "no timer for a retry");
            return false;
        }
        if (want != c->interest && want != 0) {
            int err = mio_reregister(mio_loop_poll(loop), c->io.fd, c->index, want);
            if (err < 0) {
                conn_finish(loop, cl, c, mio_strerror(err));
                return false;
            }
            c->interest = want;
        }
        return true;
    }
}

static void on_ready(mio_loop *loop, void *ctx, mio_token token, uint32_t readiness)
{
    struct client *cl = ctx;
    struct conn *c = token < MAX_CONNS ? cl->conns[token] : NULL;
    mio_addr peer;
    int err;

    (void)readiness;
    if (c == NULL)
        return;
    if (c->state == CONNECTING) {
        if ((err = mio_socket_error(c->io.fd)) != 0) {
            conn_finish(loop, cl, c, mio_strerror(err));
            return;
        }
        if (mio_peer_addr(c->io.fd, &peer) == MIO_ENOTCONN)
            return;                             /* not yet: WRITABLE will come */
        mio_tcp_set_nodelay(c->io.fd, true);
        c->state = HANDSHAKE;
    }
    conn_pump(loop, cl, c);
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    struct client *cl = ctx;
    struct conn *c = arg;
    size_t i;

    if (arg == END_OF_RUN) {
        for (i = 0; i < MAX_CONNS; i++)
            if (cl->conns[i] != NULL)
                conn_finish(loop, cl, cl->conns[i], "out of time");
        mio_loop_shutdown(loop);
        return;
    }
    c->retry = 0;
    conn_pump(loop, cl, c);
}

/* Connection i: a connect under way, its SSL made to check the server. */
static int conn_start(mio_loop *loop, struct client *cl, size_t i, const mio_addr *addr)
{
    struct conn *c = calloc(1, sizeof *c);
    mio_fd fd;
    int err;

    if (c == NULL)
        return MIO_ENOMEM;
    if ((err = mio_tcp_connect(addr, &fd)) < 0) {
        free(c);
        return err;
    }
    if (!tls_attach(&c->io, cl->ctx, fd) ||
        !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->io.ssl), cl->ip)) {
        SSL_free(c->io.ssl);
        mio_close(fd);
        free(c);
        return MIO_ENOMEM;
    }
    SSL_set_connect_state(c->io.ssl);
    c->index = i;
    c->interest = MIO_WRITABLE;                 /* the connect's end */
    if ((err = mio_register(mio_loop_poll(loop), fd, i, c->interest)) < 0) {
        SSL_free(c->io.ssl);
        mio_close(fd);
        free(c);
        return err;
    }
    cl->conns[i] = c;
    cl->live++;
    return 0;
}

/* The context: TLS 1.2 or later, the server verified against one
 * certificate, writes that may complete in part. */
static SSL_CTX *make_context(const char *cert_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_load_verify_locations(ctx, cert_file, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    return ctx;
}

int main(int argc, char **argv)
{
    static struct client cl;
    const mio_handler handler = { .ready = on_ready, .timeout = on_timeout };
    const char *cert_file = NULL;
    mio_loop_config config = { 0 };
    long conns = 1;
    double seconds = 60, bytes = 1 << 20;
    mio_loop *loop;
    mio_addr addr;
    char *colon;
    int arg, err = 0;
    size_t i;

    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            config.backend = value;
        else if (strcmp(argv[arg], "-C") == 0)
            cert_file = value;
        else if (strcmp(argv[arg], "-c") == 0 && (conns = atol(value)) > 0 && conns <= MAX_CONNS)
            ;
        else if (strcmp(argv[arg], "-s") == 0 && (bytes = atof(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-d") == 0 && (seconds = atof(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-u") == 0 && atof(value) > 0)
            cl.update_every = (uint64_t)atof(value);
        else
            goto usage;
    }
    if (cert_file == NULL || arg + 1 != argc || mio_addr_parse(argv[arg], &addr) < 0)
        goto usage;
    /* The IP address alone, without brackets and port, as the certificate
     * names it. */
    mio_addr_format(&addr, cl.ip, sizeof cl.ip);
    if ((colon = strrchr(cl.ip, ':')) != NULL)
        *colon = '\0';
    if (cl.ip[0] == '[') {
        memmove(cl.ip, cl.ip + 1, strlen(cl.ip));
        cl.ip[strlen(cl.ip) - 1] = '\0';
    }
    cl.bytes = (uint64_t)bytes;

    if ((err = mio_loop_new(&config, &loop)) == MIO_ENOSYS)
        return 77;
    if (err < 0) {
        fprintf(stderr, "tls_echo_client: %s\n", mio_strerror(err));
        return 1;
    }
    if (!tls_init() || (cl.ctx = make_context(cert_file)) == NULL) {
        fprintf(stderr, "tls_echo_client: %s: %s\n", cert_file,
                ERR_reason_error_string(ERR_peek_last_error()));
        goto out;
    }
    if ((err = mio_loop_timeout(loop, END_OF_RUN, (uint64_t)(seconds * 1e9), NULL)) < 0)
        goto out;
    for (i = 0; i < (size_t)conns; i++)
        if ((err = conn_start(loop, &cl, i, &addr)) < 0) {
            printf("connection %zu error: %s\n", i, mio_strerror(err));
            cl.failed++;
        }
    /* A wait that failed for want of memory is tried again. */
    while (cl.live > 0 && (err = mio_loop_run(loop, &handler, &cl)) < 0 &&
           error_is_transient(err))
        ;

out:
    if (err < 0)
        fprintf(stderr, "tls_echo_client: %s\n", mio_strerror(err));
    for (i = 0; i < MAX_CONNS; i++)
        if (cl.conns[i] != NULL)
            conn_finish(loop, &cl, cl.conns[i], "stopped");
    SSL_CTX_free(cl.ctx);
    tls_cleanup();
    mio_loop_free(loop);
    printf("connections %ld ok %lu bytes_verified %lu close_notify %lu updates %lu "
           "writes_wanting_read %lu reads_wanting_write %lu\n", conns, cl.ok, cl.verified,
           cl.close_notify, cl.updates, cl.writes_wanting_read, cl.reads_wanting_write);
    return cl.ok == (unsigned long)conns ? 0 : 1;

usage:
    fprintf(stderr, "usage: tls_echo_client [-b epoll|poll|...] -C CERT_FILE [-c CONNECTIONS] "
                    "[-s BYTES] [-u BYTES] [-d SECONDS] ADDR\n");
    return 2;
}
