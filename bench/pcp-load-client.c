/*
 * A load client built on PCP's own client library (libpcp_pmda's
 * pmdaRootConnect and pmdaRootContainer* calls), as pmcd and pmdalinux use
 * it. One process is one client: one connection, one request at a time.
 *
 *   pcp-load-client SOCKET OP REFS DURATION_MS MAX_CALLS WARMUP_CALLS MIN_CALLS CAP_MS
 *
 * OP is processid, hostname or cgroup. REFS is a file of lines
 *   NAME <tab> PID <tab> MODE <tab> VALUE[|VALUE...]
 * with the right answer for each reference: the init PID, and for
 * hostname/cgroup the value (MODE "eq": equal to one of the VALUEs, "has":
 * contains one of them, "any": not checked). Calls go through the references
 * in turn.
 *
 * It connects, makes WARMUP_CALLS untimed calls, prints "ready", waits for a
 * line on stdin, then calls until DURATION_MS have passed and MIN_CALLS were
 * made, or MAX_CALLS were made, or CAP_MS have passed (a slow server), timing
 * each call with clock_gettime(CLOCK_MONOTONIC). It prints one
 * line of JSON (calls, wrong answers, begin/end in ns, the first wrong
 * answer) and then each call's latency in ns, one a line. Every answer is
 * checked, the untimed ones too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* As /usr/include/pcp/pmda.h declares them (pmda.h needs pmapi.h from libpcp3-dev). */
extern int pmdaRootConnect(const char *);
extern void pmdaRootShutdown(int);
extern int pmdaRootContainerHostName(int, const char *, int, char *, int);
extern int pmdaRootContainerProcessID(int, const char *, int);
extern int pmdaRootContainerCGroupName(int, const char *, int, char *, int);

#define BUFLEN 4096

enum op { OP_PROCESSID, OP_HOSTNAME, OP_CGROUP };
enum mode { MODE_ANY, MODE_EQ, MODE_HAS };

struct ref {
    char *name;
    int namelen;
    int pid;
    enum mode mode;
    char **values;
    int nvalues;
};

static struct ref *refs;
static int nrefs;
static long long wrong;
static char first_wrong[512];

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        perror("strdup");
        exit(2);
    }
    return p;
}

static void load_refs(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int cap = 0;

    if (f == NULL) {
        perror(path);
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *fields[4];
        char *p = line;
        int i;
        struct ref *r;

        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0')
            continue;
        for (i = 0; i < 4; i++) {
            fields[i] = p;
            p = p ? strchr(p, '\t') : NULL;
            if (p != NULL)
                *p++ = '\0';
        }
        if (fields[3] == NULL) {
            fprintf(stderr, "%s: a line needs 4 tab-separated fields\n", path);
            exit(2);
        }
        if (nrefs == cap) {
            cap = cap ? cap * 2 : 16;
            refs = realloc(refs, cap * sizeof(*refs));
            if (refs == NULL) {
                perror("realloc");
                exit(2);
            }
        }
        r = &refs[nrefs++];
        memset(r, 0, sizeof(*r));
        r->name = xstrdup(fields[0]);
        r->namelen = (int)strlen(r->name) + 1; /* the NUL on the wire, as pmcd sends it */
        r->pid = atoi(fields[1]);
        r->mode = strcmp(fields[2], "eq") == 0 ? MODE_EQ : strcmp(fields[2], "has") == 0 ? MODE_HAS : MODE_ANY;
        if (r->mode != MODE_ANY) {
            char *v = xstrdup(fields[3]);
            char *save = NULL;
            char *tok;

            r->values = calloc(64, sizeof(char *));
            for (tok = strtok_r(v, "|", &save); tok != NULL && r->nvalues < 64; tok = strtok_r(NULL, "|", &save))
                r->values[r->nvalues++] = tok;
        }
    }
    fclose(f);
    if (nrefs == 0) {
        fprintf(stderr, "%s: no references\n", path);
        exit(2);
    }
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static int value_right(const struct ref *r, const char *value)
{
    int i;

    if (r->mode == MODE_ANY)
        return 1;
    for (i = 0; i < r->nvalues; i++) {
        if (r->mode == MODE_EQ && strcmp(value, r->values[i]) == 0)
            return 1;
        if (r->mode == MODE_HAS && strstr(value, r->values[i]) != NULL)
            return 1;
    }
    return 0;
}

/* One call; checks the answer, counting (and keeping the first) wrong one. */
static void call(int fd, enum op op, const struct ref *r)
{
    char buffer[BUFLEN];
    int sts, right;

    buffer[0] = '\0';
    switch (op) {
    case OP_PROCESSID:
        sts = pmdaRootContainerProcessID(fd, r->name, r->namelen);
        right = sts == r->pid;
        break;
    case OP_HOSTNAME:
        sts = pmdaRootContainerHostName(fd, r->name, r->namelen, buffer, sizeof(buffer));
        right = sts >= 0 && value_right(r, buffer);
        break;
    default:
        sts = pmdaRootContainerCGroupName(fd, r->name, r->namelen, buffer, sizeof(buffer));
        right = sts >= 0 && value_right(r, buffer);
        break;
    }
    if (!right) {
        if (wrong++ == 0)
            snprintf(first_wrong, sizeof(first_wrong), "%s: sts %d, value \"%.300s\" (want pid %d)", r->name, sts, buffer, r->pid);
    }
}

int main(int argc, char **argv)
{
    enum op op;
    long long duration_ns, cap_ns, begin, end, *lat;
    long max_calls, warmup, min_calls, n = 0, i;
    char go[64];
    int fd;

    if (argc != 9) {
        fprintf(stderr, "usage: %s SOCKET processid|hostname|cgroup REFS DURATION_MS MAX_CALLS WARMUP_CALLS MIN_CALLS CAP_MS\n", argv[0]);
        return 2;
    }
    op = strcmp(argv[2], "processid") == 0 ? OP_PROCESSID : strcmp(argv[2], "hostname") == 0 ? OP_HOSTNAME : OP_CGROUP;
    load_refs(argv[3]);
    duration_ns = atoll(argv[4]) * 1000000LL;
    max_calls = atol(argv[5]);
    warmup = atol(argv[6]);
    min_calls = atol(argv[7]);
    cap_ns = atoll(argv[8]) * 1000000LL;
    lat = malloc((max_calls > 0 ? max_calls : 1) * sizeof(*lat));
    if (lat == NULL) {
        perror("malloc");
        return 2;
    }

    fd = pmdaRootConnect(argv[1]);
    if (fd < 0) {
        printf("{\"error\":\"pmdaRootConnect(%s): %d\"}\n", argv[1], fd);
        return 1;
    }
    for (i = 0; i < warmup; i++)
        call(fd, op, &refs[i % nrefs]);
    printf("ready\n");
    fflush(stdout);
    if (fgets(go, sizeof(go), stdin) == NULL)
        return 1;

    begin = now_ns();
    for (n = 0; n < max_calls; n++) {
        long long t0 = now_ns();

        if ((t0 - begin >= duration_ns && n >= min_calls) || t0 - begin >= cap_ns)
            break;
        call(fd, op, &refs[n % nrefs]);
        lat[n] = now_ns() - t0;
    }
    end = now_ns();
    pmdaRootShutdown(fd);

    printf("{\"calls\":%ld,\"wrong\":%lld,\"begin\":%lld,\"end\":%lld,\"firstWrong\":", n, wrong, begin, end);
    json_string(stdout, first_wrong);
    printf("}\n");
    for (i = 0; i < n; i++)
        printf("%lld\n", lat[i]);
    return 0;
}
