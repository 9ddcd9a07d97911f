/* Addresses, the same on every OS: strict parsing of text (dotted-quad IPv4
 * or bracketed IPv6 with a port, a numeric scope at most; no DNS, no
 * interface names), the same for an IP and a port apart, an OS sockaddr
 * checked and copied, formatting that round-trips what parsing accepts, and
 * a socket's own and peer's address. */
#include "addr.h"
#include "sys/net.h"

#ifndef _WIN32
#include <arpa/inet.h>
#endif

#include <stdio.h>
#include <string.h>

#define UNIX_PATH_MAX sizeof(((mio__sockaddr_un *)0)->sun_path)

/* A text mio_addr_parse refuses: MIO_EINVAL, and why at debug level (the
 * code alone cannot say which part was wrong). */
static int refuse(const char *text, const char *why)
{
    mio__log_init();
    MIO_TRACE(MIO_LOG_DEBUG, "mio_addr_parse \"%.80s\": %s", text, why);
    return MIO_EINVAL;
}

/* The decimal port after the ':', or why not (NULL: fine). */
static const char *parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    int digits = 0;
    if (*s == '\0')
        return "no port after the ':'";
    for (; *s != '\0'; s++, digits++) {
        if (*s < '0' || *s > '9')
            return "the port is not a decimal number";
        if (digits == 5)
            return "port out of range (0 to 65535)";
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v > 65535)
        return "port out of range (0 to 65535)";
    *out = htons((uint16_t)v);
    return NULL;
}

/* An IPv6 host's "%scope", cut off host into *scope: only a number, since a
 * name would need the interface list.  NULL, or why not. */
static const char *parse_scope(char *host, uint32_t *scope)
{
    char *pct = strchr(host, '%');
    unsigned long v = 0;
    const char *s;

    if (pct == NULL)
        return NULL;
    s = pct + 1;
    if (*s == '\0')
        return "empty scope after '%'";
    if (strlen(s) > 10)
        return "scope out of range";
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return "the scope after '%' must be an interface number, not a name";
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v > UINT32_MAX)
        return "scope out of range";
    *scope = (uint32_t)v;
    *pct = '\0';
    return NULL;
}

int mio_addr_parse(const char *text, mio_addr *out)
{
    char host[INET6_ADDRSTRLEN + 16];
    const char *colon, *end, *why;
    size_t hlen;
    mio_addr a;

    /* inet_pton and inet_ntop need the OS's sockets started (Winsock). */
    if (text == NULL || out == NULL || mio__os_net_init() < 0)
        return MIO_EINVAL;
    memset(&a, 0, sizeof a);
    if (text[0] == '[') {
        uint32_t scope = 0;
        end = strchr(text, ']');
        if (end == NULL)
            return refuse(text, "no ']' closing the IPv6 address");
        if (end[1] != ':')
            return refuse(text, "missing ':port' after the IPv6 address's ']'");
        hlen = (size_t)(end - text - 1);
        if (hlen == 0)
            return refuse(text, "empty IPv6 address between the brackets");
        if (hlen >= sizeof host)
            return refuse(text, "too long for an IPv6 address");
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        if ((why = parse_scope(host, &scope)) != NULL)
            return refuse(text, why);
        a.u.v6.sin6_scope_id = scope;      /* a ULONG on Windows */
        if (inet_pton(AF_INET6, host, &a.u.v6.sin6_addr) != 1)
            return refuse(text, "not an IPv6 address between the brackets");
        if ((why = parse_port(end + 2, &a.u.v6.sin6_port)) != NULL)
            return refuse(text, why);
        a.u.v6.sin6_family = AF_INET6;
        a.len = sizeof a.u.v6;
    } else {
        colon = strchr(text, ':');
        if (colon == NULL)
            return refuse(text, "missing ':port'");
        if (strchr(colon + 1, ':') != NULL)
            return refuse(text, "an IPv6 address needs brackets: \"[::1]:80\"");
        hlen = (size_t)(colon - text);
        if (hlen == 0)
            return refuse(text, "no address before the ':'");
        if (hlen >= INET_ADDRSTRLEN)
            return refuse(text, "not a dotted-quad IPv4 address (names are not looked up)");
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        /* inet_pton takes exactly four dotted decimals: no "1", no "0x7f.1". */
        if (inet_pton(AF_INET, host, &a.u.v4.sin_addr) != 1)
            return refuse(text, "not a dotted-quad IPv4 address (names are not looked up)");
        if ((why = parse_port(colon + 1, &a.u.v4.sin_port)) != NULL)
            return refuse(text, why);
        a.u.v4.sin_family = AF_INET;
        a.len = sizeof a.u.v4;
    }
    *out = a;
    return 0;
}

int mio_addr_format(const mio_addr *a, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    char text[MIO_ADDR_STRLEN + UNIX_PATH_MAX];
    int n;

    if (a == NULL || (buf == NULL && size > 0) || mio__os_net_init() < 0)
        return MIO_EINVAL;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        if (a->len != sizeof a->u.v4 ||
            inet_ntop(AF_INET, (void *)(uintptr_t)&a->u.v4.sin_addr, host, sizeof host) == NULL)
            return MIO_EINVAL;
        n = snprintf(text, sizeof text, "%s:%u", host, (unsigned)ntohs(a->u.v4.sin_port));
        break;
    case AF_INET6:
        if (a->len != sizeof a->u.v6 ||
            inet_ntop(AF_INET6, (void *)(uintptr_t)&a->u.v6.sin6_addr, host, sizeof host) == NULL)
            return MIO_EINVAL;
        if (a->u.v6.sin6_scope_id != 0)
            n = snprintf(text, sizeof text, "[%s%%%u]:%u", host,
                         (unsigned)a->u.v6.sin6_scope_id, (unsigned)ntohs(a->u.v6.sin6_port));
        else
            n = snprintf(text, sizeof text, "[%s]:%u", host, (unsigned)ntohs(a->u.v6.sin6_port));
        break;
    case AF_UNIX: {
        const mio__sockaddr_un *un = (const mio__sockaddr_un *)(const void *)&a->u.ss;
        size_t off = offsetof(mio__sockaddr_un, sun_path), plen;
        if ((size_t)a->len < off || (size_t)a->len > sizeof(mio__sockaddr_un))
            return MIO_EINVAL;
        plen = a->len - off;
        if (plen > 0 && un->sun_path[0] == '\0') {
            /* Linux abstract name: shown with a leading '@'. */
            n = snprintf(text, sizeof text, "@%.*s", (int)(plen - 1), un->sun_path + 1);
        } else {
            n = snprintf(text, sizeof text, "%.*s", (int)strnlen(un->sun_path, plen), un->sun_path);
        }
        break;
    }
    default:
        return MIO_EAFNOSUPPORT;
    }
    if (n < 0)
        return MIO_EINVAL;
    if ((size_t)n >= size)
        return MIO_ENOSPC;
    memcpy(buf, text, (size_t)n + 1);
    return n;
}

int mio__unix_addr(const char *path, mio__sockaddr_un *un, socklen_t *len)
{
    size_t n;
    if (path == NULL)
        return MIO_EINVAL;
    n = strlen(path);
    if (n == 0)
        return MIO_EINVAL;
    if (n >= sizeof un->sun_path)
        return MIO_ENAMETOOLONG;
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
#ifdef __linux__
    if (path[0] == '@') {
        /* An abstract name: a NUL where the path would start, then the
         * name's bytes exactly (no terminating NUL: it would be part of
         * the name). */
        memcpy(un->sun_path + 1, path + 1, n - 1);
        *len = (socklen_t)(offsetof(mio__sockaddr_un, sun_path) + n);
        return 0;
    }
#endif
    memcpy(un->sun_path, path, n);
    *len = (socklen_t)(offsetof(mio__sockaddr_un, sun_path) + n + 1);
    return 0;
}

int mio_addr_unix(const char *path, mio_addr *out)
{
    mio__sockaddr_un un;
    socklen_t len;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    if ((err = mio__unix_addr(path, &un, &len)) < 0)
        return err;
    memset(out, 0, sizeof *out);
    memcpy(&out->u.ss, &un, sizeof un);
    out->len = len;
    return 0;
}

/* ---- an IP and a port apart, an OS address ---- */

/* A refused address: MIO_EINVAL, and why at debug level (the code alone
 * cannot say which part was wrong). */
static int refuse_ip(const char *ip, const char *why)
{
    mio__log_init();
    MIO_TRACE(MIO_LOG_DEBUG, "mio_addr_ip \"%.80s\": %s", ip, why);
    return MIO_EINVAL;
}

/* An IPv4 literal, or (with a ':') an IPv6 one with a numeric "%scope" at
 * most, into *a with port (network order); NULL, or why not. */
static const char *parse_ip(const char *ip, uint16_t port, mio_addr *a)
{
    char host[INET6_ADDRSTRLEN + 16];
    size_t n = strlen(ip);
    uint32_t scope = 0;
    const char *why;

    memset(a, 0, sizeof *a);
    if (strchr(ip, ':') == NULL) {
        /* inet_pton takes exactly four dotted decimals: no "1", no "0x7f.1". */
        if (n >= INET_ADDRSTRLEN || inet_pton(AF_INET, ip, &a->u.v4.sin_addr) != 1)
            return "not a dotted-quad IPv4 address (names are not looked up)";
        a->u.v4.sin_family = AF_INET;
        a->u.v4.sin_port = port;
        a->len = sizeof a->u.v4;
        return NULL;
    }
    if (n >= sizeof host)
        return "too long for an IPv6 address";
    memcpy(host, ip, n + 1);
    if ((why = parse_scope(host, &scope)) != NULL)
        return why;
    a->u.v6.sin6_scope_id = scope;          /* a ULONG on Windows */
    if (inet_pton(AF_INET6, host, &a->u.v6.sin6_addr) != 1)
        return "not an IPv6 address";
    a->u.v6.sin6_family = AF_INET6;
    a->u.v6.sin6_port = port;
    a->len = sizeof a->u.v6;
    return NULL;
}

int mio_addr_ip(const char *ip, uint16_t port, mio_addr *out)
{
    const char *why, *colon;
    mio_addr a;

    /* inet_pton needs the OS's sockets started (Winsock). */
    if (ip == NULL || out == NULL || mio__os_net_init() < 0)
        return MIO_EINVAL;
    if (ip[0] == '\0')
        return refuse_ip(ip, "no address");
    if (ip[0] == '[')
        return refuse_ip(ip, "no brackets here: they are for mio_addr_parse's \"[::1]:80\"");
    colon = strchr(ip, ':');
    if (colon != NULL && strchr(colon + 1, ':') == NULL)    /* IPv6 has two at least */
        return refuse_ip(ip, "the port is an argument of its own here");
    why = parse_ip(ip, htons(port), &a);
    if (why != NULL)
        return refuse_ip(ip, why);
    *out = a;
    return 0;
}

int mio_addr_sockaddr(const struct sockaddr *sa, size_t len, mio_addr *out)
{
    size_t need;

    if (sa == NULL || out == NULL)
        return MIO_EINVAL;
    switch (sa->sa_family) {
    case AF_INET:
        need = sizeof(struct sockaddr_in);
        break;
    case AF_INET6:
        need = sizeof(struct sockaddr_in6);
        break;
    case AF_UNIX:
        /* The family alone is an unnamed socket; a path may stop short of
         * sun_path's end, as the OS reports it. */
        need = offsetof(mio__sockaddr_un, sun_path);
        if (len > sizeof(mio__sockaddr_un))
            return MIO_EINVAL;
        break;
    default:
        mio__log_init();
        MIO_TRACE(MIO_LOG_DEBUG, "mio_addr_sockaddr family %d: not IPv4, IPv6 or Unix",
                  (int)sa->sa_family);
        return MIO_EAFNOSUPPORT;
    }
    if (len < need) {
        mio__log_init();
        MIO_TRACE(MIO_LOG_DEBUG, "mio_addr_sockaddr family %d: %llu bytes, short of %llu",
                  (int)sa->sa_family, (unsigned long long)len, (unsigned long long)need);
        return MIO_EINVAL;
    }
    if (sa->sa_family != AF_UNIX)
        len = need;     /* what the socket calls expect of that family */
    memset(out, 0, sizeof *out);
    memcpy(&out->u.ss, sa, len);
    out->len = (socklen_t)len;
    return 0;
}

void mio__fill_addr(mio_addr *out, const struct sockaddr_storage *ss, socklen_t len)
{
    memset(out, 0, sizeof *out);
    if ((size_t)len > sizeof out->u.ss)
        len = (socklen_t)sizeof out->u.ss;
    memcpy(&out->u.ss, ss, (size_t)len);
    out->len = len;
}

static int socket_name(mio_fd fd, mio_addr *out, bool peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int err;

    if (out == NULL)
        return MIO_EINVAL;
    err = mio__os_sockname(fd, peer, &ss, &len);
    if (err < 0)
        return err;
    mio__fill_addr(out, &ss, len);
    return 0;
}

int mio_local_addr(mio_fd fd, mio_addr *out)
{
    return socket_name(fd, out, false);
}

int mio_peer_addr(mio_fd fd, mio_addr *out)
{
    return socket_name(fd, out, true);
}
