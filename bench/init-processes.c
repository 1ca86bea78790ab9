/*
 * The benchmark's stand-ins for containers' init processes: real processes,
 * each in a UTS namespace of its own with a hostname of its own, cheap
 * enough to start by the ten thousand. Commands on stdin, one a line:
 *
 *   spawn N PREFIX   (PREFIX: at most 40 characters) start N processes with hostnames PREFIX-0 .. PREFIX-(N-1);
 *                    prints "PID STARTTIME HOSTNAME" for each (STARTTIME: field
 *                    22 of /proc/PID/stat) once all are in their namespace,
 *                    then "done"
 *   kill PID         SIGKILL one of them and reap it; prints "killed PID"
 *
 * On end of input, SIGTERM or SIGINT it kills and reaps every process it
 * started and exits. It and its processes die with their parent
 * (PR_SET_PDEATHSIG), so nothing outlives the benchmark.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t *pids;
static size_t npids, cap;

static void remember(pid_t pid)
{
    if (npids == cap) {
        cap = cap ? cap * 2 : 1024;
        pids = realloc(pids, cap * sizeof(*pids));
        if (pids == NULL) {
            perror("realloc");
            exit(2);
        }
    }
    pids[npids++] = pid;
}

static void forget(pid_t pid)
{
    size_t i;

    for (i = 0; i < npids; i++) {
        if (pids[i] == pid) {
            pids[i] = pids[--npids];
            return;
        }
    }
}

static void kill_all(void)
{
    size_t i;

    for (i = 0; i < npids; i++)
        kill(pids[i], SIGKILL);
    for (i = 0; i < npids; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    npids = 0;
}

static void on_signal(int sig)
{
    (void)sig;
    kill_all();
    _exit(0);
}

/* Field 22 of /proc/PID/stat (start time, clock ticks since boot), or -1. */
static long long start_time(pid_t pid)
{
    char path[64], buf[1024];
    ssize_t n;
    int fd, field;
    char *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* comm may hold spaces: count fields after its closing parenthesis (field 2). */
    if ((p = strrchr(buf, ')')) == NULL)
        return -1;
    for (field = 2; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    return p == NULL ? -1 : atoll(p + 1);
}

/* What a new process needs; filled in by the parent before clone(). */
struct child_arg {
    char hostname[64];
    int ready_fd;
    int ready_read_fd;
};

/*
 * The body of each process. It shares the spawner's memory (CLONE_VM: no
 * page tables to copy, so ten thousand start in seconds even on a busy
 * machine) and touches only its own stack and `arg`, making system calls.
 */
static int child_main(void *p)
{
    struct child_arg *arg = p;
    sigset_t none;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(0);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_NAME, "bench-init");
    if (unshare(CLONE_NEWUTS) < 0 || sethostname(arg->hostname, strlen(arg->hostname)) < 0)
        _exit(3);
    if (write(arg->ready_fd, "x", 1) != 1)
        _exit(4);
    /* Its copies of the spawner's descriptors: holding them would keep the benchmark's pipes open. */
    close(arg->ready_fd);
    close(arg->ready_read_fd);
    close(0);
    close(1);
    close(2);
    for (;;)
        pause();
    return 0;
}

#define CHILD_STACK (64 * 1024)

static void spawn(long n, const char *prefix)
{
    int ready[2];
    pid_t *batch = malloc((n > 0 ? n : 1) * sizeof(*batch));
    struct child_arg *args = calloc(n > 0 ? n : 1, sizeof(*args));
    long i, got = 0;
    char c;

    if (batch == NULL || args == NULL || pipe2(ready, O_CLOEXEC) < 0) {
        perror("spawn");
        exit(2);
    }
    for (i = 0; i < n; i++) {
        /* Each process's stack; never freed: it lives as long as the process, and the memory is shared. */
        char *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        pid_t pid;

        if (stack == MAP_FAILED) {
            perror("mmap");
            exit(2);
        }
        snprintf(args[i].hostname, sizeof(args[i].hostname), "%.40s-%ld", prefix, i);
        args[i].ready_fd = ready[1];
        args[i].ready_read_fd = ready[0];
        pid = clone(child_main, stack + CHILD_STACK, CLONE_VM | SIGCHLD, &args[i]);
        if (pid < 0) {
            perror("clone");
            exit(2);
        }
        batch[i] = pid;
        remember(pid);
    }
    while (got < n) {
        ssize_t r = read(ready[0], &c, 1);

        if (r == 1)
            got++;
        else if (r == 0 || errno != EINTR)
            break;
    }
    close(ready[0]);
    close(ready[1]);
    if (got < n) {
        fprintf(stderr, "only %ld of %ld processes entered their UTS namespace\n", got, n);
        exit(2);
    }
    for (i = 0; i < n; i++)
        printf("%d %lld %s\n", (int)batch[i], start_time(batch[i]), args[i].hostname);
    printf("done\n");
    fflush(stdout);
    /* args stay allocated: the processes may still read them (they share this memory). */
    free(batch);
}

int main(void)
{
    char line[512];

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char prefix[41];
        long n;
        int pid;

        if (sscanf(line, "spawn %ld %40s", &n, prefix) == 2) {
            spawn(n, prefix);
        } else if (sscanf(line, "kill %d", &pid) == 1) {
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
            forget(pid);
            printf("killed %d\n", pid);
            fflush(stdout);
        } else {
            fprintf(stderr, "unknown command: %s", line);
        }
    }
    kill_all();
    return 0;
}
