/*
 * ring_floor: the floor under the "queue" workload of go run ./bench.
 *
 *     cc -O2 -o ring_floor ring_floor.c
 *     ./ring_floor SIZE CAP BATCHES MSGS CPU_A CPU_B [WARMUP]
 *
 * Two processes made by fork() share an anonymous MAP_SHARED mapping: a
 * single-producer single-consumer ring of CAP slots of SIZE bytes, with a
 * head (messages put) and a tail (messages got) counter on cache lines of
 * their own. Process A (the parent, pinned to CPU_A with sched_setaffinity)
 * writes the message's number into the first 8 bytes of its buffer,
 * memcpy's the buffer into the slot at head once the ring has room and
 * publishes it with a release store of head + 1. Process B (the child,
 * pinned to CPU_B) waits for head to pass tail, memcpy's the slot out into
 * one reused buffer, checks the number and releases the slot with a store
 * of tail + 1. Both spin (with the CPU's pause hint) and never sleep: on
 * one CPU this would crawl, so give it two. A CPU of -1 leaves that
 * process unpinned.
 *
 * A runs WARMUP uncounted batches (default 1), then BATCHES batches of MSGS
 * messages, each timed with clock_gettime(CLOCK_MONOTONIC) from its first
 * message until B has got its last, and prints one line of JSON:
 * {"samples": [seconds per batch, one per batch]} (per batch, not per
 * message, so that whole nanoseconds keep 64 B rates precise). Errors go
 * to stderr with exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct ring {
	_Alignas(64) _Atomic uint64_t head; /* written by A only */
	_Alignas(64) _Atomic uint64_t tail; /* written by B only */
	_Alignas(64) unsigned char slots[];
};

static void die(const char *what) {
	fprintf(stderr, "ring_floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* wait spins once; every 2^20 spins it checks that the child still runs,
 * so that the parent does not spin forever after the child failed. */
static pid_t child;
static void wait_once(unsigned long *spins) {
	relax();
	if ((++*spins & ((1ul << 20) - 1)) == 0) {
		int status;
		if (waitpid(child, &status, WNOHANG) == child) {
			fprintf(stderr, "ring_floor: child ended early (status %d)\n", status);
			exit(1);
		}
	}
}

static void pin(int cpu) {
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		die("sched_setaffinity");
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
	if (argc < 7 || argc > 8) {
		fprintf(stderr, "usage: %s SIZE CAP BATCHES MSGS CPU_A CPU_B [WARMUP]\n", argv[0]);
		return 2;
	}
	long size = atol(argv[1]), cap = atol(argv[2]), batches = atol(argv[3]), msgs = atol(argv[4]);
	int cpuA = atoi(argv[5]), cpuB = atoi(argv[6]);
	long warmup = argc == 8 ? atol(argv[7]) : 1;
	if (size < 8 || cap < 1 || batches < 1 || msgs < 1 || warmup < 0) {
		fprintf(stderr, "ring_floor: SIZE must be at least 8, CAP, BATCHES and MSGS at least 1\n");
		return 2;
	}
	long stride = (size + 63) / 64 * 64;
	long total = (warmup + batches) * msgs;

	struct ring *r = mmap(NULL, sizeof *r + cap * stride, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		die("mmap");
	unsigned char *buf = malloc(size);
	double *samples = calloc(batches, sizeof *samples);
	if (!buf || !samples)
		die("malloc");
	memset(buf, 0, size);

	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	child = pid;
	if (pid == 0) {
		pin(cpuB);
		for (uint64_t t = 0; t < (uint64_t)total; t++) {
			while (atomic_load_explicit(&r->head, memory_order_acquire) == t)
				relax();
			memcpy(buf, r->slots + (t % cap) * stride, size);
			uint64_t seq;
			memcpy(&seq, buf, sizeof seq);
			if (seq != t) {
				fprintf(stderr, "ring_floor: message %llu arrived as %llu\n", (unsigned long long)t, (unsigned long long)seq);
				_exit(1);
			}
			atomic_store_explicit(&r->tail, t + 1, memory_order_release);
		}
		_exit(0);
	}
	pin(cpuA);
	uint64_t h = 0, tail = 0;
	unsigned long spins = 0;
	for (long b = 0; b < warmup + batches; b++) {
		double t0 = now();
		for (long i = 0; i < msgs; i++, h++) {
			while (h - tail >= (uint64_t)cap) {
				tail = atomic_load_explicit(&r->tail, memory_order_acquire);
				if (h - tail >= (uint64_t)cap)
					wait_once(&spins);
			}
			memcpy(buf, &h, sizeof h);
			memcpy(r->slots + (h % cap) * stride, buf, size);
			atomic_store_explicit(&r->head, h + 1, memory_order_release);
		}
		while ((tail = atomic_load_explicit(&r->tail, memory_order_acquire)) != h)
			wait_once(&spins);
		if (b >= warmup)
			samples[b - warmup] = now() - t0;
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ring_floor: child failed (status %d)\n", status);
		return 1;
	}
	printf("{\"samples\": [");
	for (long b = 0; b < batches; b++)
		printf("%s%.9e", b ? ", " : "", samples[b]);
	printf("]}\n");
	return 0;
}
