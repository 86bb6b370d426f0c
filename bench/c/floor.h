/*
 * floor.h: what every C program of go run ./bench does alike. Include it
 * after the program's own die(what), which reports and exits.
 */
#include <sched.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

/* pin puts this process on cpu; -1 leaves it where it is. */
static void pin(int cpu) {
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		die("sched_setaffinity");
}

/* now is CLOCK_MONOTONIC in seconds. */
static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* finish waits for the child pid and prints the n samples as one line of
 * JSON, {"samples": [seconds, ...]}; it returns the exit status of
 * program prog: 1, with a message, if the child failed. */
static int finish(const char *prog, pid_t pid, const double *samples, long n) {
	int status;
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: child failed (status %d)\n", prog, status);
		return 1;
	}
	printf("{\"samples\": [");
	for (long b = 0; b < n; b++)
		printf("%s%.9e", b ? ", " : "", samples[b]);
	printf("]}\n");
	return 0;
}
