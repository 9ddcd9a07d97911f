/* Many HTTP transfers at once with libcurl's multi-socket interface on the
 * event loop: libcurl says which sockets to watch and for what, and when it
 * next needs a call with no I/O; the loop waits, and hands each readiness
 * back with curl_multi_socket_action.
 *
 *   curl_multi [-b BACKEND] [-p MAX_CONNECTIONS] [-t SECONDS] URL...
 *
 * Every URL is fetched at once (over at most MAX_CONNECTIONS connections
 * when given; kept-alive connections are reused), each within SECONDS
 * (default 30).  One line per transfer, in the order they finish:
 *
 *   URL ok status 200 bytes 14 fnv 23f615e78f1ab09a
 *   URL error 7 Couldn't connect to server: Failed to connect to ...
 *
 * (fnv: the FNV-1a hash of the body, 64 bits, so a caller can check every
 * byte), then "done N ok K failed M".  Exit 0 when every transfer completed,
 * whatever its HTTP status; 1 if one failed; 77 for a backend this build
 * lacks.  Proxies are never used, whatever the environment says.
 *
 * What it shows:
 * - CURLMOPT_SOCKETFUNCTION: a socket is registered with the interest libcurl
 *   asks for (CURL_POLL_IN, OUT, INOUT), reregistered when that changes and
 *   deregistered on CURL_POLL_REMOVE, which comes before libcurl closes it.
 *   Level-triggered: libcurl reads and writes the socket itself, so libmio
 *   never sees the MIO_EAGAIN that re-arms an emulated edge (poll(2),
 *   Windows), and libcurl may leave data unread for a while.
 * - CURLMOPT_TIMERFUNCTION: one loop timer, replaced whenever libcurl names
 *   a new deadline and cleared for -1; when it fires, CURL_SOCKET_TIMEOUT.
 *   A deadline of 0 is a timer due at the next tick: libcurl must not be
 *   called from inside its own callbacks.
 * - readiness mapped to CURL_CSELECT_IN, OUT and ERR; finished transfers
 *   collected with curl_multi_info_read after every call into libcurl;
 *   the multi handle cleaned up before the loop it registers on. */
#define _POSIX_C_SOURCE 200809L
#include "mio.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../errors.h"
#include "../stop.h"

/* Sockets are registered under their descriptor; the signal waker under a
 * token no descriptor has. */
#define STOP ((mio_token)INT_MAX + 1)

struct transfer {
    const char *url;
    CURL *easy;                 /* NULL once finished */
    unsigned long long bytes;
    uint64_t fnv;
    char error[CURL_ERROR_SIZE];
};

struct fetcher {
    CURLM *multi;
    mio_loop *loop;
    mio_timeout timer;          /* libcurl's deadline (0: none) */
    int running;
    size_t left, ok, failed;
    int err;                    /* the first registration libmio refused */
};

/* What curl_multi_assign keeps for a socket libmio watches. */
static char watched;

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct fetcher *f = userp;
    mio_poll *p = mio_loop_poll(f->loop);
    uint32_t interest = 0;
    int err = 0;

    (void)easy;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        interest |= MIO_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        interest |= MIO_WRITABLE;
    if (interest == 0) {                /* CURL_POLL_REMOVE or CURL_POLL_NONE */
        if (socketp != NULL) {
            err = mio_deregister(p, s);
            curl_multi_assign(f->multi, s, NULL);
        }
    } else if (socketp == NULL) {
        if ((err = mio_register(p, s, (mio_token)s, interest | MIO_LEVEL)) == 0)
            curl_multi_assign(f->multi, s, &watched);
    } else {
        err = mio_reregister(p, s, (mio_token)s, interest | MIO_LEVEL);
    }
    if (err < 0) {
        fprintf(stderr, "curl_multi: socket %d: %s\n", (int)s, mio_strerror(err));
        if (f->err == 0)
            f->err = err;
        return -1;                      /* libcurl fails the transfers on it */
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct fetcher *f = userp;
    (void)multi;
    mio_loop_clear_timeout(f->loop, f->timer);
    f->timer = 0;
    if (timeout_ms < 0)
        return 0;
    return mio_loop_timeout(f->loop, f, (uint64_t)timeout_ms * MIO_MSEC, &f->timer) == 0 ? 0 : -1;
}

static size_t on_body(char *data, size_t size, size_t count, void *userp)
{
    struct transfer *t = userp;
    size_t i, len = size * count;
    for (i = 0; i < len; i++)
        t->fnv = (t->fnv ^ (unsigned char)data[i]) * UINT64_C(0x100000001b3);
    t->bytes += len;
    return len;
}

/* Reports and frees the transfers libcurl has finished; stops the loop
 * after the last. */
static void collect(struct fetcher *f)
{
    CURLMsg *m;
    int queued;

    while ((m = curl_multi_info_read(f->multi, &queued)) != NULL) {
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;   /* m goes with the handle */
        struct transfer *t;
        char *priv;
        long status = 0;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        t = (struct transfer *)priv;
        if (result == CURLE_OK) {
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
            printf("%s ok status %ld bytes %llu fnv %016llx\n", t->url, status, t->bytes,
                   (unsigned long long)t->fnv);
            f->ok++;
        } else {
            printf("%s error %d %s: %s\n", t->url, (int)result, curl_easy_strerror(result),
                   t->error[0] != '\0' ? t->error : "-");
            f->failed++;
        }
        fflush(stdout);
        curl_multi_remove_handle(f->multi, easy);
        curl_easy_cleanup(easy);
        t->easy = NULL;
        f->left--;
    }
    if (f->left == 0 || f->err < 0)
        mio_loop_shutdown(f->loop);
}

static void on_ready(mio_loop *loop, void *ctx, mio_token token, uint32_t readiness)
{
    struct fetcher *f = ctx;
    int mask = 0;

    if (token == STOP) {
        mio_loop_shutdown(loop);        /* transfers still running are dropped */
        return;
    }
    if (readiness & (MIO_READABLE | MIO_READ_CLOSED))
        mask |= CURL_CSELECT_IN;
    if (readiness & (MIO_WRITABLE | MIO_WRITE_CLOSED))
        mask |= CURL_CSELECT_OUT;
    /* With ERR alone libcurl reports only "select/poll returned error": let
     * its own read or write find the socket's error. */
    if (readiness & MIO_ERROR)
        mask |= CURL_CSELECT_ERR | CURL_CSELECT_IN | CURL_CSELECT_OUT;
    /* A token may be a socket libcurl closed earlier in this batch: it
     * ignores sockets it does not know, and a reused number is only a
     * spurious event to it. */
    curl_multi_socket_action(f->multi, (curl_socket_t)token, mask, &f->running);
    collect(f);
}

static void on_timeout(mio_loop *loop, void *ctx, void *arg)
{
    struct fetcher *f = ctx;
    (void)loop, (void)arg;
    f->timer = 0;                       /* fired: nothing to clear */
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &f->running);
    collect(f);
}

static CURL *transfer_start(struct fetcher *f, struct transfer *t, long timeout_ms)
{
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        return NULL;
    t->fnv = UINT64_C(0xcbf29ce484222325);
    if (curl_easy_setopt(easy, CURLOPT_URL, t->url) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)t) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, t) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
        /* no signals: this program has its own handlers, and threads may too */
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PROXY, "") != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
#endif
        curl_multi_add_handle(f->multi, easy) != CURLM_OK) {
        curl_easy_cleanup(easy);
        return NULL;
    }
    return easy;
}

int main(int argc, char **argv)
{
    mio_loop_config config = { 0 };
    const mio_handler handler = { .ready = on_ready, .timeout = on_timeout };
    struct fetcher f = { 0 };
    struct transfer *transfers = NULL;
    mio_waker *waker = NULL;
    long parallel = 0, timeout_ms = 30000;
    int arg, err, status = 1;
    size_t i, n;

    for (arg = 1; arg + 1 < argc && argv[arg][0] == '-'; arg += 2) {
        const char *value = argv[arg + 1];
        if (strcmp(argv[arg], "-b") == 0)
            config.backend = value;
        else if (strcmp(argv[arg], "-p") == 0 && (parallel = atol(value)) > 0)
            ;
        else if (strcmp(argv[arg], "-t") == 0 && atof(value) > 0)
            timeout_ms = (long)(atof(value) * 1000);
        else
            goto usage;
    }
    if (arg == argc || argv[arg][0] == '-')
        goto usage;
    n = (size_t)(argc - arg);

    if ((err = mio_loop_new(&config, &f.loop)) == MIO_ENOSYS)
        return 77;
    if (err < 0) {
        fprintf(stderr, "curl_multi: %s\n", mio_strerror(err));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "curl_multi: curl_global_init failed\n");
        mio_loop_free(f.loop);
        return 1;
    }
    if ((transfers = calloc(n, sizeof *transfers)) == NULL ||
        (f.multi = curl_multi_init()) == NULL ||
        curl_multi_setopt(f.multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(f.multi, CURLMOPT_SOCKETDATA, &f) != CURLM_OK ||
        curl_multi_setopt(f.multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(f.multi, CURLMOPT_TIMERDATA, &f) != CURLM_OK ||
        (parallel > 0 &&
         curl_multi_setopt(f.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, parallel) != CURLM_OK)) {
        fprintf(stderr, "curl_multi: out of memory\n");
        goto out;
    }
    if ((err = mio_waker_new(mio_loop_poll(f.loop), STOP, &waker)) < 0) {
        fprintf(stderr, "curl_multi: %s\n", mio_strerror(err));
        goto out;
    }
    for (i = 0; i < n; i++) {
        transfers[i].url = argv[arg + (int)i];
        if ((transfers[i].easy = transfer_start(&f, &transfers[i], timeout_ms)) == NULL) {
            fprintf(stderr, "curl_multi: %s: cannot start\n", transfers[i].url);
            goto out;
        }
        f.left++;
    }
    stop_on_signal(waker);
    /* The handles' first deadline (0 ms) starts them from the loop. */
    /* A wait that failed for want of memory is tried again. */
    while ((err = mio_loop_run(f.loop, &handler, &f)) < 0 && error_is_transient(err))
        ;
    if (err < 0)
        fprintf(stderr, "curl_multi: %s\n", mio_strerror(err));
    stop_on_signal(NULL);
    printf("done %zu ok %zu failed %zu\n", n, f.ok, f.failed);
    status = f.ok == n ? 0 : 1;

out:
    /* libcurl deregisters what it still holds (kept-alive connections) on
     * the way: the loop goes after it. */
    for (i = 0; transfers != NULL && i < n; i++)
        if (transfers[i].easy != NULL) {
            curl_multi_remove_handle(f.multi, transfers[i].easy);
            curl_easy_cleanup(transfers[i].easy);
        }
    curl_multi_cleanup(f.multi);
    curl_global_cleanup();
    mio_waker_free(waker);
    mio_loop_free(f.loop);
    free(transfers);
    return status;

usage:
    fprintf(stderr, "usage: curl_multi [-b epoll|poll|...] [-p MAX_CONNECTIONS] [-t SECONDS] "
                    "URL...\n");
    return 2;
}
