/* A plain TCP backend for the benchmark, fast enough never to be the bottleneck.
 *
 *   backend sink  PORT   read and discard everything
 *   backend upper PORT   4-byte big-endian length-prefixed frames, each answered with
 *                        the same frame, ASCII letters upper-cased (trustwire's protocol)
 *
 * One thread, epoll, non-blocking sockets, one buffer per connection.
 * Build: cc -O2 -o backend backend.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)

struct conn {
    int fd;
    size_t have;          /* bytes buffered, not yet a whole frame */
    size_t out_len, out_off;
    unsigned char in[BUF];
    unsigned char out[BUF];
};

static int upper_mode;

static void close_conn(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static int flush_out(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) return (errno == EAGAIN) ? 0 : -1;
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    return 1;
}

static int on_readable(struct conn *c) {
    for (;;) {
        if (upper_mode && c->out_len) {          /* backpressure: answer before reading more */
            int r = flush_out(c);
            if (r <= 0) return r;
        }
        size_t room = upper_mode ? BUF - c->have : BUF;
        ssize_t n = read(c->fd, c->in + (upper_mode ? c->have : 0), room);
        if (n == 0) return -1;
        if (n < 0) return (errno == EAGAIN) ? 0 : -1;
        if (!upper_mode) continue;
        c->have += (size_t)n;
        size_t pos = 0;
        while (c->have - pos >= 4) {
            uint32_t len = ntohl(*(uint32_t *)(c->in + pos));
            if (len > BUF - 4) return -1;
            if (c->have - pos < 4 + len) break;
            if (c->out_len + 4 + len > BUF) break;  /* flush first */
            unsigned char *dst = c->out + c->out_len;
            memcpy(dst, c->in + pos, 4 + len);
            for (uint32_t i = 4; i < 4 + len; i++)
                if (dst[i] >= 'a' && dst[i] <= 'z') dst[i] -= 32;
            c->out_len += 4 + len;
            pos += 4 + len;
        }
        memmove(c->in, c->in + pos, c->have - pos);
        c->have -= pos;
        int r = flush_out(c);
        if (r < 0) return -1;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: backend sink|upper PORT\n");
        return 2;
    }
    upper_mode = strcmp(argv[1], "upper") == 0;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("ready\n");
    fflush(stdout);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            if (on_readable(c) < 0) close_conn(ep, c);
        }
    }
}
