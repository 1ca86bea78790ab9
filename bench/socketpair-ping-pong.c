/*
 * The kernel's floor for a request and its reply: two processes on a unix
 * socketpair (SOCK_STREAM, as the root socket), the client writing a 24-byte
 * message (a PROCESSID request's size) and the other process writing 24
 * bytes back, one write and one read each way. Same interface as
 * pcp-load-client.c, so the benchmark runs it as one more client:
 *
 *   socketpair-ping-pong DURATION_MS MAX_CALLS WARMUP_CALLS
 *
 * prints "ready", waits for a line on stdin, then round-trips until
 * DURATION_MS have passed or MAX_CALLS were made, timing each with
 * clock_gettime(CLOCK_MONOTONIC); prints one line of JSON and the latencies
 * in ns, one a line. A reply that is not the request's bytes counts as wrong.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 24

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reads exactly MSG bytes; 0 on success, -1 on end of stream or error. */
static int read_msg(int fd, unsigned char *buf)
{
    int got = 0;

    while (got < MSG) {
        ssize_t r = read(fd, buf + got, MSG - got);
        if (r > 0)
            got += (int)r;
        else if (r < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long long duration_ns, begin, end, *lat, wrong = 0;
    long max_calls, warmup, n, i;
    unsigned char msg[MSG], reply[MSG];
    char go[64];
    int sv[2];
    pid_t echo;

    if (argc != 4) {
        fprintf(stderr, "usage: %s DURATION_MS MAX_CALLS WARMUP_CALLS\n", argv[0]);
        return 2;
    }
    duration_ns = atoll(argv[1]) * 1000000LL;
    max_calls = atol(argv[2]);
    warmup = atol(argv[3]);
    lat = malloc((max_calls > 0 ? max_calls : 1) * sizeof(*lat));
    if (lat == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("setup");
        return 2;
    }
    if ((echo = fork()) < 0) {
        perror("fork");
        return 2;
    }
    if (echo == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(sv[0]);
        while (read_msg(sv[1], msg) == 0)
            if (write(sv[1], msg, MSG) != MSG)
                break;
        _exit(0);
    }
    close(sv[1]);

    for (i = 0; i < MSG; i++)
        msg[i] = (unsigned char)i;
    for (i = 0; i < warmup; i++) {
        msg[0] = (unsigned char)i;
        if (write(sv[0], msg, MSG) != MSG || read_msg(sv[0], reply) < 0 || memcmp(msg, reply, MSG) != 0)
            wrong++;
    }
    printf("ready\n");
    fflush(stdout);
    if (fgets(go, sizeof(go), stdin) == NULL)
        return 1;

    begin = now_ns();
    for (n = 0; n < max_calls; n++) {
        long long t0 = now_ns();

        if (t0 - begin >= duration_ns)
            break;
        msg[0] = (unsigned char)n;
        if (write(sv[0], msg, MSG) != MSG || read_msg(sv[0], reply) < 0 || memcmp(msg, reply, MSG) != 0)
            wrong++;
        lat[n] = now_ns() - t0;
    }
    end = now_ns();
    close(sv[0]);
    waitpid(echo, NULL, 0);

    printf("{\"calls\":%ld,\"wrong\":%lld,\"begin\":%lld,\"end\":%lld,\"firstWrong\":\"\",\"serverPid\":%d}\n", n, wrong, begin, end, (int)echo);
    for (i = 0; i < n; i++)
        printf("%lld\n", lat[i]);
    return 0;
}
