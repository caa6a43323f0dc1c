/* The benchmark's load generator: mutual TLS in C with OpenSSL, epoll, one thread.
 *
 *   loadgen MODE HOST PORT CA CERT KEY CONNS SECONDS [options]
 *
 *   handshake   CONNS slots, each: connect, full mTLS handshake, wait for the server's
 *               session ticket (proof it finished verifying us), close, repeat
 *   resume      the same with TLS 1.3 session resumption (tickets)
 *   rr          CONNS persistent connections; each sends a 64-byte length-prefixed
 *               message and waits for the reply; latency per round trip
 *   bulk        CONNS connections writing 256 KiB blocks as fast as the peer takes them
 *   idle        open CONNS connections, print "ready", hold them for SECONDS
 *
 * Prints one JSON object: counts, rates, p50/p99 latency (us) and its own CPU seconds,
 * so nobody mistakes a client bottleneck for a server one.
 * Build: cc -O2 -o loadgen loadgen.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { HANDSHAKE, RESUME, RR, BULK, IDLE };
enum state { CONNECTING, HANDSHAKING, WAIT_TICKET, SENDING, RECEIVING, STREAMING, HOLDING };

struct slot {
    int fd;
    uint32_t events;      /* what epoll watches now */
    SSL *ssl;
    enum state st;
    SSL_SESSION *session;
    double started;
    size_t got;
    unsigned char buf[64 * 1024];
};

static enum mode mode;
static SSL_CTX *ctx;
static struct sockaddr_in addr;
static int ep;
static long long handshakes, resumed, round_trips, errors;
static double bytes_sent;
static double *lat;
static long long lat_n, lat_cap;
static unsigned char message[68];
static unsigned char *block;
static const char *sni = "localhost";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void watch(struct slot *s, uint32_t events, int op) {
    struct epoll_event e = {.events = events, .data.ptr = s};
    epoll_ctl(ep, op, s->fd, &e);
    s->events = events;
}

/* Wait for what OpenSSL asked for; never for writability it did not ask for (level-
 * triggered EPOLLOUT on a writable socket would spin). Returns 0 (keep the slot). */
static int want(struct slot *s, int err) {
    uint32_t events = (err == SSL_ERROR_WANT_WRITE) ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    if (events != s->events) watch(s, events, EPOLL_CTL_MOD);
    return 0;
}

static void start(struct slot *s) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        errors++;
        close(s->fd);
        s->fd = -1;
        return;
    }
    s->ssl = SSL_new(ctx);
    SSL_set_fd(s->ssl, s->fd);
    SSL_set_connect_state(s->ssl);
    SSL_set_tlsext_host_name(s->ssl, sni);
    if (mode == RESUME && s->session) SSL_set_session(s->ssl, s->session);
    s->st = CONNECTING;
    s->started = now();
    s->got = 0;
    watch(s, EPOLLOUT | EPOLLIN, EPOLL_CTL_ADD);  /* writable = connected */
}

static void finish(struct slot *s, int failed) {
    if (failed) errors++;
    if (s->ssl) {
        if (!failed) SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
    }
}

static void record(double seconds) {
    if (lat_n == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 1 << 16;
        lat = realloc(lat, lat_cap * sizeof *lat);
    }
    lat[lat_n++] = seconds;
}

/* Drive one slot as far as it goes without blocking. Returns 0 to keep, -1 to recycle. */
static char negotiated[160];  /* version, suite and group of the first handshake */

static void note_negotiated(SSL *ssl) {
    if (negotiated[0]) return;
    int group = SSL_get_negotiated_group(ssl);
    snprintf(negotiated, sizeof negotiated, "%s %s %s", SSL_get_version(ssl),
             SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)),
             group ? OBJ_nid2sn(group & ~TLSEXT_nid_unknown) : "?");
}

static int drive(struct slot *s) {
    for (;;) {
        int r, err;
        switch (s->st) {
        case CONNECTING:
        case HANDSHAKING:
            s->st = HANDSHAKING;
            r = SSL_do_handshake(s->ssl);
            if (r == 1) {
                note_negotiated(s->ssl);
                if (mode == HANDSHAKE || mode == RESUME) {
                    handshakes++;
                    if (SSL_session_reused(s->ssl)) resumed++;
                    s->st = WAIT_TICKET;
                } else if (mode == RR) {
                    s->st = SENDING;
                } else if (mode == BULK) {
                    s->st = STREAMING;
                } else {
                    s->st = HOLDING;
                    handshakes++;
                    return want(s, SSL_ERROR_WANT_READ);
                }
                continue;
            }
            err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return want(s, err);
            if (getenv("LOADGEN_DEBUG") && errors < 3) {
                fprintf(stderr, "handshake failed: ssl error %d, errno %d\n", err, errno);
                ERR_print_errors_fp(stderr);
            }
            return -1;
        case WAIT_TICKET:
            r = SSL_read(s->ssl, s->buf, sizeof s->buf);
            if (r > 0) continue;
            err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_WANT_READ) {
                SSL_SESSION *sess = SSL_get1_session(s->ssl);
                if (sess && SSL_SESSION_is_resumable(sess)) {  /* the ticket arrived */
                    if (mode == RESUME) {
                        if (s->session) SSL_SESSION_free(s->session);
                        s->session = sess;
                    } else {
                        SSL_SESSION_free(sess);
                    }
                    finish(s, 0);
                    return -1;
                }
                if (sess) SSL_SESSION_free(sess);
                return want(s, err);
            }
            return -1;
        case SENDING:
            r = SSL_write(s->ssl, message, sizeof message);
            if (r > 0) {
                s->started = now();
                s->st = RECEIVING;
                s->got = 0;
                continue;
            }
            err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return want(s, err);
            return -1;
        case RECEIVING:
            r = SSL_read(s->ssl, s->buf + s->got, sizeof message - s->got);
            if (r > 0) {
                s->got += r;
                if (s->got == sizeof message) {
                    record(now() - s->started);
                    round_trips++;
                    s->st = SENDING;
                }
                continue;
            }
            err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return want(s, err);
            return -1;
        case STREAMING:
            r = SSL_write(s->ssl, block, 256 * 1024);
            if (r > 0) {
                bytes_sent += r;
                continue;
            }
            err = SSL_get_error(s->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return want(s, err);
            return -1;
        case HOLDING:
            r = SSL_read(s->ssl, s->buf, sizeof s->buf);
            if (r > 0) continue;
            err = SSL_get_error(s->ssl, r);
            return (err == SSL_ERROR_WANT_READ) ? 0 : -1;
        }
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: loadgen handshake|resume|rr|bulk|idle HOST PORT CA CERT KEY CONNS SECONDS [TLS12]\n");
        return 2;
    }
    const char *m = argv[1];
    mode = !strcmp(m, "handshake") ? HANDSHAKE : !strcmp(m, "resume") ? RESUME
         : !strcmp(m, "rr") ? RR : !strcmp(m, "bulk") ? BULK : IDLE;
    int conns = atoi(argv[7]);
    double seconds = atof(argv[8]);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl = {200000, 200000};
    setrlimit(RLIMIT_NOFILE, &rl);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[3]));
    inet_pton(AF_INET, argv[2], &addr.sin_addr);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, argc > 9 && !strcmp(argv[9], "tls12") ? TLS1_2_VERSION
                                                                            : TLS1_3_VERSION);
    if (argc > 9 && !strcmp(argv[9], "tls12")) SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set1_groups_list(ctx, "X25519");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    if (!SSL_CTX_load_verify_locations(ctx, argv[4], NULL) ||
        !SSL_CTX_use_certificate_chain_file(ctx, argv[5]) ||
        !SSL_CTX_use_PrivateKey_file(ctx, argv[6], SSL_FILETYPE_PEM)) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    uint32_t len = htonl(64);
    memcpy(message, &len, 4);
    memset(message + 4, 'x', 64);
    block = malloc(256 * 1024);
    memset(block, 'b', 256 * 1024);
    ep = epoll_create1(0);
    struct slot *slots = calloc(conns, sizeof *slots);
    for (int i = 0; i < conns; i++) {
        slots[i].fd = -1;
        if (mode == IDLE) {   /* open idle connections gently: a burst would overflow backlogs */
            start(&slots[i]);
        }
    }
    struct rusage r0, r1;
    double t0 = now(), deadline, measured_from = t0;
    if (mode == IDLE) {
        int ready = 0;
        struct epoll_event evs[512];
        double limit = now() + 120;
        while (now() < limit) {
            int n = epoll_wait(ep, evs, 512, 100);
            for (int i = 0; i < n; i++) {
                struct slot *s = evs[i].data.ptr;
                if (drive(s) < 0) finish(s, 1);
            }
            ready = 0;
            for (int i = 0; i < conns; i++) ready += slots[i].st == HOLDING && slots[i].fd >= 0;
            if (ready + errors >= conns) break;
        }
        printf("{\"ready\": %d, \"errors\": %lld, \"negotiated\": \"%s\"}\n", ready, errors,
               negotiated);
        fflush(stdout);
        deadline = now() + seconds;
        while (now() < deadline) {
            int n = epoll_wait(ep, evs, 512, 200);
            for (int i = 0; i < n; i++) {
                struct slot *s = evs[i].data.ptr;
                if (drive(s) < 0) finish(s, 1);
            }
        }
        return 0;
    }
    for (int i = 0; i < conns; i++) start(&slots[i]);
    getrusage(RUSAGE_SELF, &r0);
    deadline = t0 + seconds;
    double warmup = (mode == RR || mode == BULK) ? 0.5 : 0.3;
    long long base_hs = 0, base_rt = 0, base_res = 0;
    double base_bytes = 0;
    int warmed = 0;
    struct epoll_event evs[512];
    while (now() < deadline) {
        int n = epoll_wait(ep, evs, 512, 50);
        for (int i = 0; i < n; i++) {
            struct slot *s = evs[i].data.ptr;
            if (drive(s) < 0) {
                if (s->fd >= 0) finish(s, 1);  /* still open: it failed */
                if (mode == HANDSHAKE || mode == RESUME || mode == RR || mode == BULK) start(s);
            }
        }
        if (!warmed && now() - t0 >= warmup) {
            warmed = 1;
            measured_from = now();
            base_hs = handshakes;
            base_rt = round_trips;
            base_res = resumed;
            base_bytes = bytes_sent;
            lat_n = 0;
            getrusage(RUSAGE_SELF, &r0);
        }
    }
    getrusage(RUSAGE_SELF, &r1);
    double elapsed = now() - measured_from;
    double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6
               + (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
    double p50 = 0, p99 = 0;
    if (lat_n) {
        qsort(lat, lat_n, sizeof *lat, cmp);
        p50 = lat[(long long)(lat_n * 0.50)] * 1e6;
        p99 = lat[(long long)(lat_n * 0.99)] * 1e6;
    }
    printf("{\"mode\": \"%s\", \"conns\": %d, \"seconds\": %.3f, \"handshakes\": %lld, "
           "\"resumed\": %lld, \"round_trips\": %lld, \"bytes\": %.0f, \"errors\": %lld, "
           "\"rate\": %.1f, \"mib_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"loadgen_cpu_s\": %.3f, \"negotiated\": \"%s\"}\n",
           m, conns, elapsed, handshakes - base_hs, resumed - base_res, round_trips - base_rt,
           bytes_sent - base_bytes, errors,
           mode == RR ? (round_trips - base_rt) / elapsed : (handshakes - base_hs) / elapsed,
           (bytes_sent - base_bytes) / elapsed / 1048576.0, p50, p99, cpu, negotiated);
    return 0;
}
