/*
 * The C floor: the least any server on the root socket can do, without
 * Node. The same fixed replies as the Node floor (bench/floor-server.ts) on
 * the same kind of socket, from one thread: epoll, INFO on accept, requests
 * framed by their length field, one fixed reply of the matching type per
 * request in one write, whatever the name. What crootd or the Node floor
 * costs above this is theirs; what this costs is the kernel's and the
 * client's.
 *
 *   c-floor-server SOCKET PID HOSTNAME CGROUP
 *
 * Prints "listening" once the socket accepts; ends when stdin closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HEADER 16
#define CONTAINER 24
#define MAX_PDU 8192
#define MAX_FDS 4096

struct reply {
    int32_t request;
    size_t length;
    unsigned char bytes[CONTAINER + 256];
};

/* Bytes of a request not yet complete, per connection fd. */
struct pending {
    size_t used;
    unsigned char bytes[MAX_PDU];
};

static struct pending *pending[MAX_FDS];

static void put32(unsigned char *at, int32_t value)
{
    memcpy(at, &value, 4);
}

static int32_t get32(const unsigned char *at)
{
    int32_t value;
    memcpy(&value, at, 4);
    return value;
}

static void container_reply(struct reply *r, int32_t request, int32_t pid, const char *value)
{
    size_t n = strlen(value);
    if (n > 255)
        n = 255;
    r->request = request;
    r->length = CONTAINER + n;
    put32(r->bytes, request + 1);
    put32(r->bytes + 4, (int32_t)r->length);
    put32(r->bytes + 8, 0);
    put32(r->bytes + 12, 2);
    put32(r->bytes + 16, pid);
    put32(r->bytes + 20, (int32_t)n);
    memcpy(r->bytes + CONTAINER, value, n);
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(pending[fd]);
    pending[fd] = NULL;
}

static int write_all(int fd, const unsigned char *bytes, size_t length)
{
    while (length > 0) {
        ssize_t n = write(fd, bytes, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        bytes += n;
        length -= (size_t)n;
    }
    return 0;
}

/* Answers every complete request in p; -1 when the connection must close. */
static int answer(int fd, struct pending *p, const struct reply *replies)
{
    size_t at = 0;
    while (p->used - at >= HEADER) {
        int32_t type = get32(p->bytes + at);
        int32_t length = get32(p->bytes + at + 4);
        const struct reply *r = NULL;
        if (length < HEADER || length > MAX_PDU)
            return -1;
        if (p->used - at < (size_t)length)
            break;
        for (int i = 0; i < 3; i++)
            if (replies[i].request == type)
                r = &replies[i];
        if (r == NULL || write_all(fd, r->bytes, r->length) < 0)
            return -1;
        at += (size_t)length;
    }
    memmove(p->bytes, p->bytes + at, p->used - at);
    p->used -= at;
    return 0;
}

int main(int argc, char **argv)
{
    static const unsigned char info[24] = {0x00, 0x90, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0};
    struct reply replies[3];
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct epoll_event ev, events[64];
    int listener, ep;

    if (argc != 5 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "usage: c-floor-server SOCKET PID HOSTNAME CGROUP\n");
        return 2;
    }
    container_reply(&replies[0], 0x9001, atoi(argv[2]), argv[3]);
    container_reply(&replies[1], 0x9003, atoi(argv[2]), "");
    container_reply(&replies[2], 0x9005, atoi(argv[2]), argv[4]);

    strcpy(addr.sun_path, argv[1]);
    unlink(argv[1]);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listener, 128) < 0) {
        perror("c-floor-server: bind");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.fd = listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    ev.data.fd = 0;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    printf("listening\n");
    fflush(stdout);

    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == 0) {
                unsigned char discard[256];
                if (read(0, discard, sizeof(discard)) <= 0)
                    goto done;
                continue;
            }
            if (fd == listener) {
                int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
                if (client < 0)
                    continue;
                if (client >= MAX_FDS || (pending[client] = calloc(1, sizeof(struct pending))) == NULL) {
                    close(client);
                    continue;
                }
                ev.data.fd = client;
                if (write_all(client, info, sizeof(info)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, client, &ev) < 0)
                    drop(ep, client);
                continue;
            }
            struct pending *p = pending[fd];
            ssize_t got = read(fd, p->bytes + p->used, MAX_PDU - p->used);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                drop(ep, fd);
                continue;
            }
            p->used += (size_t)got;
            if (answer(fd, p, replies) < 0)
                drop(ep, fd);
        }
    }
done:
    unlink(argv[1]);
    return 0;
}
