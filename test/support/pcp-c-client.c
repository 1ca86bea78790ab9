/*
 * A tiny client of PCP's own libpcp_pmda (pmdaRoot* calls), the oracle of
 * croot's interoperability tests. Usage:
 *
 *   pcp-c-client SOCKET OP...
 *
 * where SOCKET is a path or "-" for PCP's default, and each OP is one of
 *   hostname:NAME  processid:NAME  cgroup:NAME
 *   hostname-len:NAMELEN:BUFLEN:NAME   (explicit namelen and buffer size)
 *   start:IPCTYPE:LABEL:ARGS           (pipe IPC: reads the child's stdout to EOF;
 *                                       "infdTarget"/"outfdTarget": what the kernel
 *                                       said the two fds were, e.g. "pipe:[N]")
 *   wait:PID  terminate:PID
 * The ops run in order on one connection; each prints one JSON line with the
 * library's return value ("sts") and what it filled in. The first line is
 * pmdaRootConnect's: its return value and, when that is an fd, what the
 * kernel says the fd is ("fd", from /proc/self/fd: "socket:[INODE]").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MAXPATHLEN
#define MAXPATHLEN 4096
#endif

/*
 * The calls as /usr/include/pcp/pmda.h declares them; declared here because
 * pmda.h needs pmapi.h, which only libpcp3-dev ships (libpcp-pmda3-dev is
 * enough to link). Link with: -lpcp_pmda -l:libpcp.so.3
 */
extern int pmdaRootConnect(const char *);
extern void pmdaRootShutdown(int);
extern int pmdaRootContainerHostName(int, const char *, int, char *, int);
extern int pmdaRootContainerProcessID(int, const char *, int);
extern int pmdaRootContainerCGroupName(int, const char *, int, char *, int);
extern int pmdaRootProcessStart(int, int, const char *, int, const char *, int, int *, int *, int *);
extern int pmdaRootProcessWait(int, int, int *);
extern int pmdaRootProcessTerminate(int, int);

static void json_string(const char *s, int len)
{
    int i;

    putchar('"');
    for (i = 0; i < len && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* What the kernel says `fd` is (its /proc/self/fd link: "socket:[N]", "pipe:[N]"), "" when it is not open. */
static void fd_target(int fd, char *target, size_t size)
{
    char link[64];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = fd >= 0 ? readlink(link, target, size - 1) : -1;
    target[n < 0 ? 0 : n] = '\0';
}

static void print_named(const char *op, const char *name, int sts, const char *buffer, int filled)
{
    printf("{\"op\":\"%s\",\"name\":", op);
    json_string(name, (int)strlen(name));
    printf(",\"sts\":%d", sts);
    if (buffer != NULL && filled) {
        printf(",\"value\":");
        json_string(buffer, (int)strlen(buffer));
    }
    printf("}\n");
}

static int run_op(int fd, char *op)
{
    char buffer[MAXPATHLEN];
    char *arg = strchr(op, ':');
    int sts;

    if (arg == NULL) {
        fprintf(stderr, "bad op %s\n", op);
        return 2;
    }
    *arg++ = '\0';
    memset(buffer, 0, sizeof(buffer));

    if (strcmp(op, "hostname") == 0) {
        sts = pmdaRootContainerHostName(fd, arg, (int)strlen(arg) + 1, buffer, sizeof(buffer));
        print_named(op, arg, sts, buffer, sts >= 0);
    } else if (strcmp(op, "processid") == 0) {
        sts = pmdaRootContainerProcessID(fd, arg, (int)strlen(arg) + 1);
        print_named(op, arg, sts, NULL, 0);
    } else if (strcmp(op, "cgroup") == 0) {
        sts = pmdaRootContainerCGroupName(fd, arg, (int)strlen(arg) + 1, buffer, sizeof(buffer));
        print_named(op, arg, sts, buffer, sts >= 0);
    } else if (strcmp(op, "hostname-len") == 0) {
        int namelen = atoi(arg);
        char *p = strchr(arg, ':');
        int buflen = p ? atoi(p + 1) : 0;
        char *name = p ? strchr(p + 1, ':') : NULL;

        if (name == NULL || buflen < 0 || buflen > (int)sizeof(buffer)) {
            fprintf(stderr, "bad hostname-len op\n");
            return 2;
        }
        name++;
        memset(buffer, 'X', sizeof(buffer));
        sts = pmdaRootContainerHostName(fd, name, namelen, buffer, buflen);
        printf("{\"op\":\"hostname-len\",\"name\":");
        json_string(name, (int)strlen(name));
        printf(",\"namelen\":%d,\"buflen\":%d,\"sts\":%d,\"raw\":", namelen, buflen, sts);
        json_string(buffer, 64);
        printf("}\n");
    } else if (strcmp(op, "start") == 0) {
        int ipctype = atoi(arg);
        char *label = strchr(arg, ':');
        char *args = label ? strchr(label + 1, ':') : NULL;
        int pid = -2, infd = -2, outfd = -2;
        char out[1024], intarget[256] = "", outtarget[256] = "";
        int n = 0, got;

        if (args == NULL) {
            fprintf(stderr, "bad start op\n");
            return 2;
        }
        *args++ = '\0';
        label++;
        sts = pmdaRootProcessStart(fd, ipctype, label, (int)strlen(label),
                                   args, (int)strlen(args), &pid, &infd, &outfd);
        if (sts >= 0) {
            fd_target(infd, intarget, sizeof(intarget));
            fd_target(outfd, outtarget, sizeof(outtarget));
        }
        if (sts >= 0 && infd >= 0)
            close(infd);
        if (sts >= 0 && outfd >= 0) {
            while (n < (int)sizeof(out) - 1 && (got = read(outfd, out + n, sizeof(out) - 1 - n)) > 0)
                n += got;
            close(outfd);
        }
        out[n] = '\0';
        printf("{\"op\":\"start\",\"sts\":%d,\"pid\":%d,\"infd\":%d,\"outfd\":%d,\"output\":",
               sts, pid, infd, outfd);
        json_string(out, n);
        printf(",\"infdTarget\":");
        json_string(intarget, (int)strlen(intarget));
        printf(",\"outfdTarget\":");
        json_string(outtarget, (int)strlen(outtarget));
        printf("}\n");
    } else if (strcmp(op, "wait") == 0) {
        int status = -2;

        sts = pmdaRootProcessWait(fd, atoi(arg), &status);
        printf("{\"op\":\"wait\",\"pid\":%d,\"sts\":%d,\"status\":%d}\n", atoi(arg), sts, status);
    } else if (strcmp(op, "terminate") == 0) {
        sts = pmdaRootProcessTerminate(fd, atoi(arg));
        printf("{\"op\":\"terminate\",\"pid\":%d,\"sts\":%d}\n", atoi(arg), sts);
    } else {
        fprintf(stderr, "unknown op %s\n", op);
        return 2;
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    int fd, i, sts;

    if (argc < 2) {
        fprintf(stderr, "usage: %s SOCKET|- OP...\n", argv[0]);
        return 2;
    }
    fd = pmdaRootConnect(strcmp(argv[1], "-") == 0 ? NULL : argv[1]);
    printf("{\"op\":\"connect\",\"sts\":%d", fd);
    if (fd >= 0) {
        char target[256];

        fd_target(fd, target, sizeof(target));
        printf(",\"fd\":");
        json_string(target, (int)strlen(target));
    }
    printf("}\n");
    fflush(stdout);
    if (fd < 0)
        return 1;
    for (i = 2; i < argc; i++) {
        if ((sts = run_op(fd, argv[i])) != 0)
            return sts;
    }
    pmdaRootShutdown(fd);
    close(fd);
    return 0;
}
