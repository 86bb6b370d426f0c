/*
 * futex_pingpong: the floor under the "event" workload of go run ./bench.
 *
 *     cc -O2 -o futex_pingpong futex_pingpong.c
 *     ./futex_pingpong BATCHES ROUNDS CPU_A CPU_B [WARMUP]
 *
 * Two processes made by fork() share one anonymous MAP_SHARED page holding
 * two 32-bit futex words, ping and pong. Process A (the parent, pinned to
 * CPU_A with sched_setaffinity) stores ping = 1 and calls FUTEX_WAKE on it,
 * then sleeps with FUTEX_WAIT until pong is 1 and stores pong = 0. Process B
 * (the child, pinned to CPU_B) sleeps with FUTEX_WAIT until ping is 1,
 * stores ping = 0, stores pong = 1 and calls FUTEX_WAKE on it. No spinning:
 * every round trip is two stores, two wake calls and at least the waits
 * that find their word still 0. A CPU of -1 leaves that process unpinned.
 *
 * A runs WARMUP uncounted round trips (default 1000), then BATCHES batches
 * of ROUNDS round trips, each timed with clock_gettime(CLOCK_MONOTONIC),
 * and prints one line of JSON: {"samples": [seconds per round trip, one
 * per batch]}. Errors go to stderr with exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct words {
	_Alignas(64) _Atomic uint32_t ping;
	_Alignas(64) _Atomic uint32_t pong;
};

static void die(const char *what) {
	fprintf(stderr, "futex_pingpong: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long futex(_Atomic uint32_t *w, int op, uint32_t val) {
	return syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

/* await sleeps until *w is 1, then stores 0. */
static void await(_Atomic uint32_t *w) {
	while (atomic_load(w) == 0) {
		if (futex(w, FUTEX_WAIT, 0) < 0 && errno != EAGAIN && errno != EINTR)
			die("FUTEX_WAIT");
	}
	atomic_store(w, 0);
}

/* post stores 1 in *w and wakes its waiter. */
static void post(_Atomic uint32_t *w) {
	atomic_store(w, 1);
	if (futex(w, FUTEX_WAKE, 1) < 0)
		die("FUTEX_WAKE");
}

#include "floor.h"

int main(int argc, char **argv) {
	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: %s BATCHES ROUNDS CPU_A CPU_B [WARMUP]\n", argv[0]);
		return 2;
	}
	long batches = atol(argv[1]), rounds = atol(argv[2]);
	int cpuA = atoi(argv[3]), cpuB = atoi(argv[4]);
	long warmup = argc == 6 ? atol(argv[5]) : 1000;
	if (batches < 1 || rounds < 1 || warmup < 0) {
		fprintf(stderr, "futex_pingpong: BATCHES and ROUNDS must be at least 1\n");
		return 2;
	}
	long total = warmup + batches * rounds;

	struct words *w = mmap(NULL, sizeof *w, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w == MAP_FAILED)
		die("mmap");
	double *samples = calloc(batches, sizeof *samples);
	if (!samples)
		die("calloc");

	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(cpuB);
		for (long i = 0; i < total; i++) {
			await(&w->ping);
			post(&w->pong);
		}
		_exit(0);
	}
	pin(cpuA);
	for (long i = 0; i < warmup; i++) {
		post(&w->ping);
		await(&w->pong);
	}
	for (long b = 0; b < batches; b++) {
		double t0 = now();
		for (long i = 0; i < rounds; i++) {
			post(&w->ping);
			await(&w->pong);
		}
		samples[b] = (now() - t0) / rounds;
	}
	return finish("futex_pingpong", pid, samples, batches);
}
