/*
 * PCP's own process-service client calls (libpcp_pmda's pmdaRootProcess*)
 * against a root socket, as pmcd makes them. Usage:
 *
 *   pcp-process-client SOCKET FOREIGN_PID
 *
 * Starts /bin/cat with pipe IPC, echoes a line through the two fds the
 * server passed, asks it to terminate FOREIGN_PID (a process it did not
 * start), terminates cat, waits for it, waits once more, and starts a
 * program that does not exist. Prints one JSON line per call.
 * Build: gcc -Wall -O2 -o pcp-process-client pcp-process-client.c -lpcp_pmda -l:libpcp.so.3
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* As /usr/include/pcp/pmda.h declares them (pmda.h needs pmapi.h from libpcp3-dev). */
extern int pmdaRootConnect(const char *);
extern void pmdaRootShutdown(int);
extern int pmdaRootProcessStart(int, int, const char *, int, const char *, int, int *, int *, int *);
extern int pmdaRootProcessWait(int, int, int *);
extern int pmdaRootProcessTerminate(int, int);

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static const char *fd_kind(int fd)
{
    struct stat st;
    int flags;

    if (fd < 0 || fstat(fd, &st) < 0)
        return "closed";
    if (!S_ISFIFO(st.st_mode))
        return "other";
    flags = fcntl(fd, F_GETFL);
    return (flags & O_ACCMODE) == O_WRONLY ? "pipe-write" : (flags & O_ACCMODE) == O_RDONLY ? "pipe-read" : "pipe";
}

int main(int argc, char **argv)
{
    const char *message = "hello through libpcp_pmda\n";
    const char *cat = "/bin/cat";
    const char *missing = "/nonexistent/croot-agent -d 1";
    char echoed[256];
    int fd, sts, pid = -1, infd = -1, outfd = -1, foreign, i, status = 0, got = 0;
    ssize_t n;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET FOREIGN_PID\n", argv[0]);
        return 2;
    }
    foreign = atoi(argv[2]);

    fd = pmdaRootConnect(argv[1]);
    printf("{\"op\":\"connect\",\"sts\":%d}\n", fd);
    if (fd < 0)
        return 1;

    sts = pmdaRootProcessStart(fd, 2, "cat", 3, cat, (int)strlen(cat), &pid, &infd, &outfd);
    printf("{\"op\":\"start\",\"sts\":%d,\"pid\":%d,\"infd\":\"%s\",\"outfd\":\"%s\"}\n",
           sts, pid, fd_kind(infd), fd_kind(outfd));
    if (sts < 0)
        return 1;

    if (write(infd, message, strlen(message)) != (ssize_t)strlen(message))
        perror("write");
    while (got < (int)sizeof(echoed) - 1) {
        n = read(outfd, echoed + got, sizeof(echoed) - 1 - got);
        if (n <= 0)
            break;
        got += (int)n;
        if (echoed[got - 1] == '\n')
            break;
    }
    echoed[got] = '\0';
    if (got > 0 && echoed[got - 1] == '\n')
        echoed[--got] = '\0';
    printf("{\"op\":\"echo\",\"sts\":%d,\"output\":\"%s\"}\n", got, echoed);

    sts = pmdaRootProcessTerminate(fd, foreign);
    printf("{\"op\":\"terminate-foreign\",\"sts\":%d,\"pid\":%d}\n", sts, foreign);

    sts = pmdaRootProcessTerminate(fd, pid);
    printf("{\"op\":\"terminate\",\"sts\":%d,\"pid\":%d}\n", sts, pid);

    for (i = 0; i < 200; i++) {
        status = 0;
        sts = pmdaRootProcessWait(fd, -1, &status);
        if (sts != 0)
            break;
        sleep_ms(10);
    }
    printf("{\"op\":\"wait\",\"sts\":%d,\"status\":%d,\"signaled\":%d,\"signal\":%d}\n",
           sts, status, WIFSIGNALED(status) ? 1 : 0, WIFSIGNALED(status) ? WTERMSIG(status) : 0);

    status = 0;
    sts = pmdaRootProcessWait(fd, -1, &status);
    printf("{\"op\":\"wait-again\",\"sts\":%d,\"status\":%d}\n", sts, status);

    close(infd);
    close(outfd);
    pid = 0;
    infd = outfd = -1;
    sts = pmdaRootProcessStart(fd, 2, "missing", 7, missing, (int)strlen(missing), &pid, &infd, &outfd);
    printf("{\"op\":\"start-missing\",\"sts\":%d,\"pid\":%d,\"infd\":\"%s\",\"outfd\":\"%s\"}\n",
           sts, pid, fd_kind(infd), fd_kind(outfd));

    pmdaRootShutdown(fd);
    return 0;
}
