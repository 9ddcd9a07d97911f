/* echo on libuv's TCP streams, its idiom: reads into an ECHO_BUF buffer from
 * alloc_cb, each written back with uv_try_write and, only for what that
 * leaves, a queued uv_write (reading pauses until it completes).  http=1
 * answers requests the same way. */
#include "driver.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct conn {
    uv_tcp_t tcp;
    uv_write_t req;
    unsigned matched;           /* http=1: see http_requests */
    char buf[ECHO_BUF];
};

static uv_loop_t *loop;

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct conn *k = (struct conn *)h;
    (void)size;
    *buf = uv_buf_init(k->buf, sizeof k->buf);
}

static void close_cb(uv_handle_t *h)
{
    free(h);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void write_cb(uv_write_t *req, int status)
{
    struct conn *k = req->data;
    if (status < 0)
        uv_close((uv_handle_t *)&k->tcp, close_cb);
    else
        uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *k = (struct conn *)s;
    uv_buf_t out;
    int w;

    if (nread < 0) {
        uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    if (nread == 0)
        return;
    out = uv_buf_init(buf->base, (unsigned)nread);
    if (echo_http) {
        size_t nreq = http_requests(&k->matched, buf->base, (size_t)nread), len = 0;
        const char *resp = http_responses(nreq, &len);
        if (nreq == 0)
            return;
        if (resp == NULL) {
            uv_close((uv_handle_t *)s, close_cb);
            return;
        }
        out = uv_buf_init((char *)resp, (unsigned)len);    /* the driver's, never freed */
        nread = (ssize_t)len;
    }
    w = uv_try_write(s, &out, 1);
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        uv_close((uv_handle_t *)s, close_cb);
    } else if (w < nread) {
        /* The rest waits in the buffer, which the next read would reuse. */
        uv_buf_t rest = uv_buf_init(out.base + w, (unsigned)(nread - w));
        uv_read_stop(s);
        k->req.data = k;
        uv_write(&k->req, s, &rest, 1, write_cb);
    }
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct conn *k;
    if (status < 0)
        return;
    k = calloc(1, sizeof *k);
    if (k == NULL)
        bench_die("out of memory", 0);
    uv_tcp_init(loop, &k->tcp);
    if (uv_accept(server, (uv_stream_t *)&k->tcp) < 0) {
        uv_close((uv_handle_t *)&k->tcp, close_cb);
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb);
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    uv_tcp_t server;

    loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", echo_start(argc, argv), &addr);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) < 0 ||
        uv_listen((uv_stream_t *)&server, 1024, accept_cb) < 0)
        bench_die("uv_listen", 0);
    return uv_run(loop, UV_RUN_DEFAULT);
}
