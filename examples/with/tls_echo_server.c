/* A TLS echo server with OpenSSL on the event loop: every byte a client
 * sends comes back, encrypted.
 *
 *   tls_echo_server [-b BACKEND] [-n SECONDS] [-C CERT_FILE] [-V 1.2|1.3]
 *                   [-u BYTES] [-w BYTES] [ADDR]
 *
 * ADDR defaults to 127.0.0.1:0.  At start-up it makes a key and a
 * self-signed certificate for localhost, 127.0.0.1 and ::1 with OpenSSL's
 * API (no files, no openssl command); -C writes that certificate (PEM) to
 * CERT_FILE, for clients to trust (tls_echo_client -C).  -V is the highest
 * TLS version it speaks (default 1.3; 1.2 is the lowest).  -u: every BYTES
 * echoed on a connection, it starts a key update asking the client for one
 * too (TLS 1.3) or a renegotiation (TLS 1.2), so that reads and writes must
 * wait for handshake messages mid-stream; it then also accepts the
 * client's renegotiations.  -w: each connection's send buffer, in bytes
 * (small: writes come up short often).
 *
 * The first line of stdout is "listening on ADDR:PORT backend NAME".  It
 * serves until Ctrl-C or SIGTERM or for SECONDS, then prints
 * "connections N clean C failed F updates U writes_wanting_read W
 * reads_wanting_write R" and "stopped", and exits 0; a backend this build
 * lacks exits 77.  Clean: both close_notify alerts went; failed: the
 * handshake or the connection failed (a plain-TCP client, a reset, an end
 * of stream without close_notify), said on stderr.
 *
 * What it shows (tls.h has the mapping of OpenSSL's wants onto libmio):
 * edge-triggered sockets whose interest is whatever the pending OpenSSL
 * calls want; echoing through one buffer, reading paused while it is full
 * and while a write is under way; the client's close_notify answered with
 * ours; a handshake deadline on a loop timer; partial writes
 * (SSL_MODE_ENABLE_PARTIAL_WRITE), each retried with its first length. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stop.h"
#include "tls.h"

#define LISTENER     0          /* tokens: the listener, the signal waker, */
#define STOP         1          /* then connection i is token FIRST_CONN + i */
#define FIRST_CONN   2
#define MAX_CONNS    1024
#define WRITE_MAX    16384      /* one SSL_write: one record at most */
#define HANDSHAKE_NS (10 * MIO_SEC)

enum state { HANDSHAKE, OPEN, CLOSING };

struct conn {
    struct tls_io io;
    size_t index;               /* in conns[]: its token is FIRST_CONN + index */
    enum state state;
    uint32_t interest;          /* as registered */
    mio_timeout timer;          /* the handshake deadline, or a retry (0: none) */
    bool retrying;              /* the timer is a retry after a transient error */
    uint64_t since_update;      /* bytes read since the last key update */
    size_t writing;             /* the length of the SSL_write under way (0: none) */
    size_t head, tail;          /* read, not yet echoed: buf[head..tail) */
    char buf[65536];
};

struct server {
    mio_fd listener;
    bool resting;               /* the listener is not watched for a while */
    SSL_CTX *ctx;
    uint64_t update_every;      /* -u; 0: never */
    int send_buffer;            /* -w; 0: the system's */
    unsigned long connections, clean, failed, updates;
    unsigned long writes_wanting_read, reads_wanting_write;
    struct conn *conns[MAX_CONNS];
};

/* Timer arguments besides connections. */
static char end_of_run, listener_wakes;

static void conn_close(mio_loop *loop, struct server *s, struct conn *c, const char *why)
{
    if (why != NULL) {
        fprintf(stderr, "tls_echo_server: connection %zu: %s\n", c->index, why);
        s->failed++;
    } else {
        s->clean++;
    }
    mio_loop_clear_timeout(loop, c->timer);
    mio_deregister(mio_loop_poll(loop), c->io.fd);
    SSL_free(c->io.ssl);
    mio_close(c->io.fd);
    s->conns[c->index] = NULL;
    free(c);
}

static void conn_fail(mio_loop *loop, struct server *s, struct conn *c)
{
    char why[256];
    conn_close(loop, s, c, tls_error(&c->io, why, sizeof why));
}

/* Every BYTES echoed: fresh keys for both sides (TLS 1.3), or a new
 * handshake (TLS 1.2).  OpenSSL sends it with the next read or write. */
static void maybe_update(struct server *s, struct conn *c)
{
    int ok;
    if (s->update_every == 0 || c->since_update < s->update_every)
        return;
    c->since_update = 0;
    if (SSL_version(c->io.ssl) >= TLS1_3_VERSION)
        ok = SSL_key_update(c->io.ssl, SSL_KEY_UPDATE_REQUESTED);
    else
        ok = SSL_renegotiate(c->io.ssl);
    if (ok == 1)
        s->updates++;                   /* else one is under way already */
}

/* Retries every pending operation until none makes progress, then watches
 * what the last round wanted. */
static void conn_pump(mio_loop *loop, struct server *s, struct conn *c)
{
    for (;;) {
        uint32_t want = 0, w;
        bool progress = false;
        int ret;

        c->io.stalled = false;
        if (c->state == HANDSHAKE) {
            tls_begin();
            switch (tls_end(&c->io, SSL_do_handshake(c->io.ssl), &want)) {
            case TLS_OK:
                c->state = OPEN;
                mio_loop_clear_timeout(loop, c->timer);
                c->timer = 0;
                progress = true;
                break;
            case TLS_WAIT:
                break;
            default:
                conn_fail(loop, s, c);
                return;
            }
        }
        if (c->state != HANDSHAKE && c->head < c->tail) {
            /* A write that waited goes again with the same length, even if
             * more has been read since (OpenSSL may have taken part of it). */
            if (c->writing == 0)
                c->writing = c->tail - c->head < WRITE_MAX ? c->tail - c->head : WRITE_MAX;
            w = 0;
            tls_begin();
            ret = SSL_write(c->io.ssl, c->buf + c->head, (int)c->writing);
            switch (tls_end(&c->io, ret, &w)) {
            case TLS_OK:
                c->writing = 0;
                if ((c->head += (size_t)ret) == c->tail)
                    c->head = c->tail = 0;
                progress = true;
                break;
            case TLS_WAIT:
                s->writes_wanting_read += (w & MIO_READABLE) != 0;
                want |= w;
                break;
            default:
                conn_fail(loop, s, c);
                return;
            }
        }
        /* Read once the write under way is done: a read may have to send
         * handshake messages (the answer to a renegotiation), which OpenSSL
         * cannot put behind a record it sent only part of. */
        if (c->state == OPEN && c->writing == 0 && c->tail < sizeof c->buf) {
            w = 0;
            tls_begin();
            ret = SSL_read(c->io.ssl, c->buf + c->tail, (int)(sizeof c->buf - c->tail));
            switch (tls_end(&c->io, ret, &w)) {
            case TLS_OK:
                c->tail += (size_t)ret;
                c->since_update += (size_t)ret;
                maybe_update(s, c);
                progress = true;
                break;
            case TLS_WAIT:
                s->reads_wanting_write += (w & MIO_WRITABLE) != 0;
                want |= w;
                break;
            case TLS_CLOSED:
                c->state = CLOSING;     /* the client is done: echo the rest, then ours */
                progress = true;
                break;
            default:
                conn_fail(loop, s, c);
                return;
            }
        }
        if (c->state == CLOSING && c->head == c->tail) {
            tls_begin();
            ret = SSL_shutdown(c->io.ssl);
            if (ret >= 0) {             /* ours sent, theirs received */
                conn_close(loop, s, c, NULL);
                return;
            }
            if (tls_end(&c->io, ret, &want) != TLS_WAIT) {
                conn_fail(loop, s, c);
                return;
            }
        }
        if (progress)
            continue;
        if (c->io.stalled && !c->retrying) {
            /* No event will come: retry on a timer (the handshake deadline
             * is given up for it, the rare price of a transient error). */
            mio_loop_clear_timeout(loop, c->timer);
            c->timer = 0;
            c->retrying = mio_loop_timeout(loop, c, RETRY_NS, &c->timer) == 0;
            if (!c->retrying) {
                conn_close(loop, s, c, "no timer for a retry");
                return;
            }
        }
        if (want != c->interest && want != 0) {
            int err = mio_reregister(mio_loop_poll(loop), c->io.fd, FIRST_CONN + c->index, want);
            if (err < 0) {
                conn_close(loop, s, c, mio_strerror(err));
                return;
            }
            c->interest = want;
        }
        return;
    }
}

/* The listener is not watched for BACKOFF_NS, then registered again (which
 * reports the clients already queued at once). */
static void listener_rest(mio_loop *loop, struct server *s)
{
    if (!s->resting)
        mio_deregister(mio_loop_poll(loop), s->listener);
    s->resting = true;
    if (mio_loop_timeout(loop, &listener_wakes, BACKOFF_NS, NULL) < 0 &&
        mio_register(mio_loop_poll(loop), s->listener, LISTENER, MIO_READABLE) == 0)
        s->resting = false;
}

static void conn_adopt(mio_loop *loop, struct server *s, mio_fd fd)
{
    struct conn *c;
    size_t i;

    for (i = 0; i < MAX_CONNS && s->conns[i] != NULL; i++)
        ;
    if (i == MAX_CONNS || (c = calloc(1, sizeof *c)) == NULL) {
        mio_close(fd);
        return;
    }
    if (!tls_attach(&c->io, s->ctx, fd)) {
        free(c);
        mio_close(fd);
        return;
    }
    SSL_set_accept_state(c->io.ssl);
    c->index = i;
    c->interest = MIO_READABLE;         /* the ClientHello */
    s->conns[i] = c;
    s->connections++;
    mio_tcp_set_nodelay(fd, true);      /* echoes go out at once */
    if (s->send_buffer > 0)
        mio_sockopt_set(fd, MIO_SO_SNDBUF, s->send_buffer);
    if (mio_loop_timeout(loop, c, HANDSHAKE_NS, &c->timer) < 0 ||
        mio_register(mio_loop_poll(loop), fd, FIRST_CONN + i, c->interest) < 0)
        conn_close(loop, s, c, "cannot watch the connection");
}

/* Accepts until MIO_EAGAIN, or until the listener rests. */
static void accept_all(mio_loop *loop, struct server *s)
{
    int skipped = 0;
    for (;;) {
        mio_fd fd;
        int err = mio_tcp_accept(s->listener, &fd, NULL);
        if (err == MIO_EAGAIN)
            return;
        if (err == MIO_EMFILE || err == MIO_ENFILE) {
            if (mio_tcp_shed(s->listener) < 0)
                listener_rest(loop, s);
            return;
        }
        if (err < 0 && accept_error_skippable(err) && ++skipped < 64)
            continue;
        if (err < 0) {
            fprintf(stderr, "tls_echo_server: accept: %s\n", mio_strerror(err));
            listener_rest(loop, s);
            return;
        }
        conn_adopt(loop, s, fd);
    }
}

static void on_ready(mio_loop *loop, void *ctx, mio_token token, uint32_t readiness)
{
    struct server *s = ctx;
    (void)readiness;            /* every pending operation is retried */
    if (token == LISTENER)
        accept_all(loop, s);
    else if (token == STOP)
        mio_loop_shutdown(loop);
    else if (s->conns[token - FIRST_CONN] != NULL)
        conn_pump(loop, s, s->conns[token - FIRST_CONN]);
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    struct server *s = ctx;
    struct conn *c = arg;
    if (arg == &end_of_run) {
        mio_loop_shutdown(loop);
    } else if (arg == &listener_wakes) {
        if (mio_register(mio_loop_poll(loop), s->listener, LISTENER, MIO_READABLE) == 0)
            s->resting = false;
        else
            listener_rest(loop, s);
    } else {
        c->timer = 0;
        if (c->retrying) {
            c->retrying = false;
            conn_pump(loop, s, c);
        } else {
            conn_close(loop, s, c, "no handshake in time");
        }
    }
}

/* A key and a certificate signed with it, for the names a local client
 * may connect by.  No file: OpenSSL's API makes both in memory. */
static bool make_identity(EVP_PKEY **key_out, X509 **cert_out)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    X509_EXTENSION *ext = NULL;
    X509_NAME *name;
    X509V3_CTX v3;
    bool ok;

    ok = key != NULL && cert != NULL && serial != NULL &&
         X509_set_version(cert, X509_VERSION_3) &&
         BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
         BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) != NULL &&
         X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
         X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) != NULL &&
         X509_set_pubkey(cert, key) &&
         (name = X509_get_subject_name(cert)) != NULL &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"localhost", -1, -1, 0) &&
         X509_set_issuer_name(cert, name);
    if (ok) {
        X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
        ok = (ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                        "DNS:localhost,IP:127.0.0.1,IP:::1")) != NULL &&
             X509_add_ext(cert, ext, -1) &&
             X509_sign(cert, key, EVP_sha256()) > 0;
    }
    X509_EXTENSION_free(ext);
    BN_free(serial);
    if (!ok) {
        EVP_PKEY_free(key);
        X509_free(cert);
        return false;
    }
    *key_out = key;
    *cert_out = cert;
    return true;
}

static bool write_cert(const char *path, X509 *cert)
{
    FILE *f = fopen(path, "w");
    bool ok = f != NULL && PEM_write_X509(f, cert);
    return (f == NULL || fclose(f) == 0) && ok;
}

/* The context every connection is made from: this identity, TLS 1.2 up to
 * max_version, writes that may complete in part, and with `renegotiate`
 * the client's renegotiations accepted (refused by default: each costs the
 * server a handshake). */
static SSL_CTX *make_context(EVP_PKEY *key, X509 *cert, int max_version, bool renegotiate)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, max_version) ||
        !SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key) ||
        !SSL_CTX_check_private_key(ctx)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (renegotiate)
        SSL_CTX_set_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    return ctx;
}

int main(int argc, char **argv)
{
    static struct server s;
    const mio_handler handler = { .ready = on_ready, .timeout = on_timeout };
    const char *text = "127.0.0.1:0", *cert_file = NULL;
    mio_loop_config config = { 0 };
    char name[MIO_ADDR_STRLEN];
    int max_version = TLS1_3_VERSION;
    double seconds = 0;
    mio_waker *waker = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    mio_loop *loop;
    mio_addr addr;
    int arg, err = 0, status = 1;
    size_t i;

    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            config.backend = value;
        else if (strcmp(argv[arg], "-n") == 0 && (seconds = atof(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-C") == 0)
            cert_file = value;
        else if (strcmp(argv[arg], "-V") == 0 && strcmp(value, "1.2") == 0)
            max_version = TLS1_2_VERSION;
        else if (strcmp(argv[arg], "-V") == 0 && strcmp(value, "1.3") == 0)
            max_version = TLS1_3_VERSION;
        else if (strcmp(argv[arg], "-u") == 0 && atof(value) > 0)
            s.update_every = (uint64_t)atof(value);
        else if (strcmp(argv[arg], "-w") == 0 && atoi(value) > 0)
            s.send_buffer = atoi(value);
        else
            goto usage;
    }
    if (arg < argc)
        text = argv[arg++];
    if (arg != argc || mio_addr_parse(text, &addr) < 0)
        goto usage;

    s.listener = MIO_INVALID_FD;
    if ((err = mio_loop_new(&config, &loop)) == MIO_ENOSYS)
        return 77;
    if (err < 0) {
        fprintf(stderr, "tls_echo_server: %s\n", mio_strerror(err));
        return 1;
    }
    if (!tls_init() || !make_identity(&key, &cert) ||
        (s.ctx = make_context(key, cert, max_version, s.update_every > 0)) == NULL) {
        fprintf(stderr, "tls_echo_server: OpenSSL: %s\n",
                ERR_reason_error_string(ERR_peek_last_error()));
        err = 0;
        goto out;
    }
    if (cert_file != NULL && !write_cert(cert_file, cert)) {
        fprintf(stderr, "tls_echo_server: cannot write %s\n", cert_file);
        goto out;
    }
    if ((err = mio_waker_new(mio_loop_poll(loop), STOP, &waker)) == 0 &&
        (err = mio_tcp_listen(&addr, 1024, &s.listener)) == 0 &&
        (err = mio_register(mio_loop_poll(loop), s.listener, LISTENER, MIO_READABLE)) == 0 &&
        (err = mio_local_addr(s.listener, &addr)) == 0 &&
        (seconds <= 0 || (err = mio_loop_timeout(loop, &end_of_run,
                                                 (uint64_t)(seconds * 1e9), NULL)) == 0)) {
        stop_on_signal(waker);
        mio_addr_format(&addr, name, sizeof name);
        printf("listening on %s backend %s\n", name, mio_poll_backend(mio_loop_poll(loop)));
        fflush(stdout);
        /* A wait that failed for want of memory is tried again. */
        while ((err = mio_loop_run(loop, &handler, &s)) < 0 && error_is_transient(err))
            ;
        stop_on_signal(NULL);
        if (err == 0)
            status = 0;
    }
    if (err < 0)
        fprintf(stderr, "tls_echo_server: %s: %s\n", text, mio_strerror(err));

out:
    for (i = 0; i < MAX_CONNS; i++)
        if (s.conns[i] != NULL)
            conn_close(loop, &s, s.conns[i], "server stopping");
    if (s.listener != MIO_INVALID_FD)
        mio_close(s.listener);
    SSL_CTX_free(s.ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    tls_cleanup();
    mio_waker_free(waker);
    mio_loop_free(loop);
    if (status != 0)
        return 1;
    printf("connections %lu clean %lu failed %lu updates %lu writes_wanting_read %lu "
           "reads_wanting_write %lu\n", s.connections, s.clean, s.failed, s.updates,
           s.writes_wanting_read, s.reads_wanting_write);
    printf("stopped\n");               /* the last line: all freed */
    return 0;

usage:
    fprintf(stderr, "usage: tls_echo_server [-b epoll|poll|...] [-n SECONDS] [-C CERT_FILE] "
                    "[-V 1.2|1.3] [-u BYTES] [-w BYTES] [ADDR]\n");
    return 2;
}
