/*
 * floor.h: what every C program of go run ./bench does alike. Include it
 * after the program's own die(what), which reports and exits.
 */
#include <sched.h>
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
