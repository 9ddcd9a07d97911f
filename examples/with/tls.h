/* TLS with OpenSSL 3 on non-blocking libmio sockets: what tls_echo_server.c
 * and tls_echo_client.c share.
 *
 * OpenSSL reads and writes through a BIO of ours that calls mio_read and
 * mio_write, not through SSL_set_fd's socket BIO: the libmio call's
 * MIO_EAGAIN is what re-arms an emulated edge (poll(2), Windows), so edge
 * triggers hold on every backend, and no write raises SIGPIPE.  OpenSSL says
 * SSL_ERROR_WANT_READ or WANT_WRITE only after the BIO said "retry", which
 * ours says on MIO_EAGAIN (or a transient error, see `stalled`): a want is
 * always a drained direction, whose edge will come.
 *
 * Any OpenSSL call may want either direction: a write may need to read (a
 * TLS 1.2 renegotiation it started waits for the peer) and a read may need
 * to write (handshake messages, alerts).  So a connection has no reading or
 * writing mode: each operation it has pending (handshake, read, write,
 * shutdown) is retried on every event, exactly as first called (OpenSSL
 * wants the same arguments again), and the wants of the last round, the
 * one where none made progress, are the interest, reregistered when it
 * changes.  Where one operation must wait for another (OpenSSL's rules for
 * handshakes mid-stream), the programs say so.
 *
 * Include after _POSIX_C_SOURCE and mio.h, as the examples do. */
#ifndef EXAMPLES_WITH_TLS_H
#define EXAMPLES_WITH_TLS_H

#include "mio.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

#include "../errors.h"

/* One connection's SSL and socket, as the BIO sees them. */
struct tls_io {
    SSL *ssl;
    mio_fd fd;
    bool stalled;               /* a transient error (errors.h): no event will
                                   say when to retry, a timer must */
    int error;                  /* the socket's error (MIO_E*) once it failed */
};

/* What became of one OpenSSL call. */
enum tls_result {
    TLS_OK,                     /* it did what it was asked */
    TLS_WAIT,                   /* it wants the readiness added to *want */
    TLS_CLOSED,                 /* the peer's close_notify */
    TLS_FAILED                  /* the connection is done for (tls_error) */
};

static BIO_METHOD *tls_method;

static int tls_bio_write(BIO *b, const char *buf, int len)
{
    struct tls_io *io = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    while ((n = mio_write(io->fd, buf, (size_t)len)) == MIO_EINTR)
        ;
    if (n >= 0)
        return (int)n;
    if (n != MIO_EAGAIN && !error_is_transient((int)n)) {
        io->error = (int)n;
        return -1;
    }
    io->stalled |= n != MIO_EAGAIN;
    BIO_set_retry_write(b);
    return -1;
}

static int tls_bio_read(BIO *b, char *buf, int len)
{
    struct tls_io *io = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    while ((n = mio_read(io->fd, buf, (size_t)len)) == MIO_EINTR)
        ;
    if (n >= 0)
        return (int)n;                  /* 0: end of stream */
    if (n != MIO_EAGAIN && !error_is_transient((int)n)) {
        io->error = (int)n;
        return -1;
    }
    io->stalled |= n != MIO_EAGAIN;
    BIO_set_retry_read(b);
    return -1;
}

/* Nothing to configure: a flush is done (every write went to the socket). */
static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* Makes the BIO method, once. */
static bool tls_init(void)
{
    if (tls_method != NULL)
        return true;
    tls_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "libmio socket");
    return tls_method != NULL && BIO_meth_set_write(tls_method, tls_bio_write) &&
           BIO_meth_set_read(tls_method, tls_bio_read) &&
           BIO_meth_set_ctrl(tls_method, tls_bio_ctrl);
}

/* Frees the method and OpenSSL's own memory: no OpenSSL call after this. */
static void tls_cleanup(void)
{
    BIO_meth_free(tls_method);
    tls_method = NULL;
    OPENSSL_cleanup();
}

/* A new SSL of ctx on fd, reading and writing through libmio. */
static bool tls_attach(struct tls_io *io, SSL_CTX *ctx, mio_fd fd)
{
    BIO *bio;

    io->fd = fd;
    io->stalled = false;
    io->error = 0;
    if ((io->ssl = SSL_new(ctx)) == NULL)
        return false;
    if ((bio = BIO_new(tls_method)) == NULL) {
        SSL_free(io->ssl);
        io->ssl = NULL;
        return false;
    }
    BIO_set_data(bio, io);
    BIO_set_init(bio, 1);
    SSL_set_bio(io->ssl, bio, bio);     /* the SSL owns it now */
    return true;
}

/* Before each call: SSL_get_error reads the error queue, which must then
 * hold this call's errors only. */
static void tls_begin(void)
{
    ERR_clear_error();
}

/* After it, with what it returned (> 0 is success for every call used
 * here).  *want gets the direction a TLS_WAIT waits for. */
static enum tls_result tls_end(const struct tls_io *io, int ret, uint32_t *want)
{
    if (ret > 0)
        return TLS_OK;
    switch (SSL_get_error(io->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        *want |= MIO_READABLE;
        return TLS_WAIT;
    case SSL_ERROR_WANT_WRITE:
        *want |= MIO_WRITABLE;
        return TLS_WAIT;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    default:
        return TLS_FAILED;
    }
}

/* Why the connection failed, as text: the socket's error, else OpenSSL's
 * reason (with the certificate check's verdict when that failed). */
static const char *tls_error(const struct tls_io *io, char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    long verify = io->ssl != NULL ? SSL_get_verify_result(io->ssl) : X509_V_OK;

    if (io->error < 0)
        snprintf(buf, size, "%s", mio_strerror(io->error));
    else if (reason != NULL && verify != X509_V_OK)
        snprintf(buf, size, "%s (%s)", reason, X509_verify_cert_error_string(verify));
    else if (reason != NULL)
        snprintf(buf, size, "%s", reason);
    else
        snprintf(buf, size, "end of stream without close_notify");
    return buf;
}

#endif
