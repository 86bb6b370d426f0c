/*
 * ring_floor: the floor under the "queue" workload of go run ./bench.
 *
 *     cc -O2 -o ring_floor ring_floor.c
 *     ./ring_floor SIZE CAP BATCHES MSGS CPU_A CPU_B [WARMUP [MODE]]
 *
 * Two processes made by fork() share an anonymous MAP_SHARED mapping that
 * holds a ring of CAP slots for messages of SIZE bytes. Process A (the
 * parent, pinned to CPU_A with sched_setaffinity) writes the message's
 * number into the first 8 bytes of its one buffer and memcpy's the buffer
 * into the ring; process B (the child, pinned to CPU_B) memcpy's each
 * message out into one reused buffer and checks its number. Both spin
 * (with the CPU's pause hint) and never sleep, whenever the ring is full
 * or empty: on one CPU this would crawl, so give it two. A CPU of -1
 * leaves that process unpinned. MODE (default spsc) picks the ring:
 *
 * spsc: the floor. A single-producer single-consumer ring of CAP slots of
 * SIZE bytes rounded up to 64, with a head (messages put) and a tail
 * (messages got) counter on cache lines of their own. A copies the
 * message into the slot at head once the ring has room and publishes it
 * with a release store of head + 1; B waits for head to pass tail, copies
 * the slot out, checks the number and releases the slot with a release
 * store of tail + 1. A batch ends when tail reaches A's head.
 *
 * mpmc: the same two processes over a ring that follows the slot protocol
 * of mproc's multi-producer multi-consumer ring (internal/ring/ring.go)
 * step by step, with its layout: head and tail on cache lines of their
 * own, then a control line (futex words, waiter counts, closed flag,
 * statistics), the process-record table, then CAP slots of stride
 * round_up(16 + SIZE, 64), each a 16-byte header (a 64-bit state word,
 * lap << 8 | kind, and a 32-bit size) and the message, then the put marks
 * and the get marks (CAP 64-bit words each, (lap + 1) << 8 | record, each
 * array rounded up to whole cache lines).
 * A put: load closed; load tail (position pos, slot i, lap pos / CAP),
 * load the slot's state; if it is Free(lap), load put mark i and claim
 * the slot with a compare-and-swap of the mark to (lap, A's record);
 * compare-and-swap tail pos -> pos + 1; load closed again; store the
 * size, memcpy the message in; publish with an atomic_store (seq_cst) of
 * Written(lap); load the getters' waiter count. A get: load head and the
 * slot's state; if it is Written(lap), load get mark i and claim it with
 * a compare-and-swap of the mark to (lap, B's record); compare-and-swap
 * head; read and bound-check the size; memcpy the message out; free the
 * slot with an atomic_store (seq_cst) of Free(lap + 1); load the putters'
 * waiter count. The other cases of mproc's tryPut and tryGet (helping
 * tail or head on, a full or empty ring, the closed check of an empty
 * one) are there too. Every atomic of the ring is seq_cst, as Go's
 * sync/atomic are: on x86-64 a compare-and-swap is LOCK CMPXCHG and gcc
 * (12, -O2) compiles the seq_cst store to XCHG, as Go does atomic.Store.
 * Where mproc would sleep on a futex (full, empty) this spins instead, so
 * the waiter counts stay 0 (nonzero is an error here) and no futex call
 * is made; the dead-process repairs are not needed and not done. B says a
 * batch is done with a release store of its count of checked messages on
 * a cache line of its own after each batch's last message (mproc's bench
 * sets an mproc.Event).
 *
 * A runs WARMUP uncounted batches (default 1), then BATCHES batches of MSGS
 * messages, each timed with clock_gettime(CLOCK_MONOTONIC) from its first
 * message until B has got its last, and prints one line of JSON:
 * {"samples": [seconds per batch, one per batch]} (per batch, not per
 * message, so that whole nanoseconds keep 64 B rates precise). Errors go
 * to stderr with exit status 1. B dies with A (PR_SET_PDEATHSIG), so that
 * a killed A leaves no child spinning.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct ring {
	_Alignas(64) _Atomic uint64_t head; /* written by A only */
	_Alignas(64) _Atomic uint64_t tail; /* written by B only */
	_Alignas(64) unsigned char slots[];
};

/* The mpmc mode's ring: internal/ring's control header, byte for byte
 * (HeaderSize = 256 + 255*8 + 8 = 2304, a whole number of cache lines),
 * then the slots, then the put marks and the get marks (mmark_at). */
#define NRECORDS 255
struct mring {
	_Alignas(64) _Atomic uint64_t head; /* next position to read [0] */
	_Alignas(64) _Atomic uint64_t tail; /* next position to write [64] */
	_Alignas(64) _Atomic uint32_t not_empty; /* [128]: futex word, unused here */
	_Atomic uint32_t get_waiters;
	_Atomic uint32_t not_full; /* futex word, unused here */
	_Atomic uint32_t put_waiters;
	_Atomic uint32_t closed;
	uint32_t pad0;
	_Atomic uint64_t skipped, abandoned, corrupt;
	_Alignas(64) unsigned char pad1[64];
	_Alignas(64) _Atomic uint64_t records[NRECORDS]; /* [256]: process tokens */
	uint64_t pad2;
	unsigned char slots[]; /* [2304] */
};

struct mslot {
	_Atomic uint64_t state; /* lap << 8 | kind */
	uint32_t size;
	uint32_t pad;
	unsigned char data[]; /* [16] */
};

_Static_assert(sizeof(struct mring) == 256 + NRECORDS * 8 + 8, "mring is internal/ring's HeaderSize");
_Static_assert(sizeof(struct mslot) == 16, "slot header is 16 bytes");

enum { K_FREE, K_WRITTEN, K_SKIPPED };
enum { OK, FULL, EMPTY, CLOSED, CORRUPT };

static inline uint64_t mstate(uint64_t lap, uint64_t kind) { return lap << 8 | kind; }
static inline uint64_t lap_of(uint64_t st) { return st >> 8; }
static inline uint64_t kind_of(uint64_t st) { return st & 0xff; }
/* a claim mark, and whether mark m is from a lap before lap (or none):
 * the only mark a claim in lap may replace */
static inline uint64_t mmark(uint64_t lap, uint64_t rec) { return (lap + 1) << 8 | rec; }
static inline int before(uint64_t m, uint64_t lap) { return m >> 8 <= lap; }

/* the sync line: B's count of messages got and checked, stored once per
 * batch (mpmc mode). */
struct done {
	_Alignas(64) _Atomic uint64_t got;
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

#include "floor.h"

/* no_waiter stands for mproc's wake-up after a publish or a free: there
 * would be a futex wake if a process slept, and none sleeps here. */
static void no_waiter(const char *who) {
	fprintf(stderr, "ring_floor: a %s waiter count is set, but nobody waits in this program\n", who);
	exit(1);
}

static inline struct mslot *mslot_at(struct mring *r, uint64_t pos, uint64_t cap, long stride) {
	return (struct mslot *)(r->slots + (pos % cap) * stride);
}

/* the bytes of one array of claim marks: whole cache lines */
static inline long marks_size(long cap) { return (cap * 8 + 63) / 64 * 64; }

/* slot i's put mark (get = 0) or get mark (get = 1) */
static inline _Atomic uint64_t *mmark_at(struct mring *r, uint64_t i, uint64_t cap, long stride, int get) {
	return (_Atomic uint64_t *)(r->slots + cap * stride + get * marks_size(cap)) + i;
}

/* mpmc_put is internal/ring's tryPut of the n bytes at msg by the process
 * of record rec: OK, FULL, CLOSED or CORRUPT. */
static int mpmc_put(struct mring *r, uint64_t cap, long stride, const unsigned char *msg, uint32_t n, uint64_t rec) {
	if (atomic_load(&r->closed) != 0)
		return CLOSED;
	for (;;) {
		uint64_t pos = atomic_load(&r->tail);
		struct mslot *s = mslot_at(r, pos, cap, stride);
		uint64_t lap = pos / cap;
		uint64_t st = atomic_load(&s->state);
		uint64_t p = pos;
		if (st == mstate(lap, K_FREE)) {
			_Atomic uint64_t *mk = mmark_at(r, pos % cap, cap, stride, 0);
			uint64_t m = atomic_load(mk);
			if (!before(m, lap)) {
				atomic_compare_exchange_strong(&r->tail, &p, pos + 1); /* claimed by another: help */
				continue;
			}
			if (!atomic_compare_exchange_strong(mk, &m, mmark(lap, rec)))
				continue;
			atomic_compare_exchange_strong(&r->tail, &p, pos + 1);
			if (atomic_load(&r->closed) != 0) {
				atomic_store(&s->state, mstate(lap, K_SKIPPED));
				if (atomic_load(&r->get_waiters) != 0)
					no_waiter("getters'");
				return CLOSED;
			}
			s->size = n;
			memcpy(s->data, msg, n);
			atomic_store(&s->state, mstate(lap, K_WRITTEN));
			if (atomic_load(&r->get_waiters) != 0)
				no_waiter("getters'");
			return OK;
		} else if (lap_of(st) == lap) {
			atomic_compare_exchange_strong(&r->tail, &p, pos + 1); /* published: help */
		} else if (lap_of(st) < lap) {
			if (atomic_load(&r->tail) != pos)
				continue;
			return FULL; /* the slot still holds the previous lap */
		} else {
			if (lap_of(st) > lap + 1 && atomic_load(&r->tail) == pos)
				return CORRUPT;
			atomic_compare_exchange_strong(&r->tail, &p, pos + 1); /* stale pos: help on */
		}
	}
}

/* mpmc_get is internal/ring's tryGet by the process of record rec, copying
 * the message out into buf (of max bytes) and its size into *n: OK, EMPTY,
 * CLOSED or CORRUPT. */
static int mpmc_get(struct mring *r, uint64_t cap, long stride, unsigned char *buf, uint32_t max, uint32_t *n, uint64_t rec) {
	for (;;) {
		uint64_t pos = atomic_load(&r->head);
		struct mslot *s = mslot_at(r, pos, cap, stride);
		uint64_t lap = pos / cap;
		uint64_t st = atomic_load(&s->state);
		uint64_t p = pos;
		if (st == mstate(lap, K_WRITTEN) || st == mstate(lap, K_SKIPPED)) {
			uint64_t kind = kind_of(st);
			_Atomic uint64_t *mk = mmark_at(r, pos % cap, cap, stride, 1);
			uint64_t m = atomic_load(mk);
			if (!before(m, lap)) {
				atomic_compare_exchange_strong(&r->head, &p, pos + 1); /* claimed by another: help */
				continue;
			}
			if (!atomic_compare_exchange_strong(mk, &m, mmark(lap, rec)))
				continue;
			atomic_compare_exchange_strong(&r->head, &p, pos + 1);
			uint32_t size = s->size;
			if (kind == K_WRITTEN && size > max) {
				atomic_fetch_add(&r->corrupt, 1);
				atomic_store(&s->state, mstate(lap + 1, K_FREE));
				if (atomic_load(&r->put_waiters) != 0)
					no_waiter("putters'");
				return CORRUPT;
			}
			if (kind == K_WRITTEN)
				memcpy(buf, s->data, size);
			atomic_store(&s->state, mstate(lap + 1, K_FREE));
			if (atomic_load(&r->put_waiters) != 0)
				no_waiter("putters'");
			if (kind == K_WRITTEN) {
				*n = size;
				return OK;
			}
		} else if (st == mstate(lap, K_FREE) || lap_of(st) < lap) {
			if (atomic_load(&r->head) != pos)
				continue;
			if (atomic_load(&r->closed) != 0 && atomic_load(&r->tail) <= pos)
				return CLOSED;
			return EMPTY;
		} else {
			if (lap_of(st) > lap + 1 && atomic_load(&r->head) == pos)
				return CORRUPT;
			atomic_compare_exchange_strong(&r->head, &p, pos + 1); /* stale pos: help on */
		}
	}
}

static const char *outcome(int rc) {
	switch (rc) {
	case CLOSED:
		return "ring closed";
	case CORRUPT:
		return "ring corrupt";
	}
	return "unexpected outcome";
}

/* A's record index and B's in the mpmc ring, as two processes attached to
 * one mproc queue would have. */
enum { REC_A = 0, REC_B = 1 };

static void bad_message(uint64_t t, uint64_t seq) {
	fprintf(stderr, "ring_floor: message %llu arrived as %llu\n", (unsigned long long)t, (unsigned long long)seq);
	_exit(1);
}

/* The spsc mode: B gets total messages, A puts batches of msgs. */
static void spsc_b(struct ring *r, long size, long cap, long stride, uint64_t total, unsigned char *buf) {
	for (uint64_t t = 0; t < total; t++) {
		while (atomic_load_explicit(&r->head, memory_order_acquire) == t)
			relax();
		memcpy(buf, r->slots + (t % cap) * stride, size);
		uint64_t seq;
		memcpy(&seq, buf, sizeof seq);
		if (seq != t)
			bad_message(t, seq);
		atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	}
}

static void spsc_a_batch(struct ring *r, long size, long cap, long stride, long msgs, unsigned char *buf, uint64_t *hp, unsigned long *spins) {
	uint64_t h = *hp, tail = h;
	for (long i = 0; i < msgs; i++, h++) {
		while (h - tail >= (uint64_t)cap) {
			tail = atomic_load_explicit(&r->tail, memory_order_acquire);
			if (h - tail >= (uint64_t)cap)
				wait_once(spins);
		}
		memcpy(buf, &h, sizeof h);
		memcpy(r->slots + (h % cap) * stride, buf, size);
		atomic_store_explicit(&r->head, h + 1, memory_order_release);
	}
	while ((tail = atomic_load_explicit(&r->tail, memory_order_acquire)) != h)
		wait_once(spins);
	*hp = h;
}

/* The mpmc mode: the same over an mring, B saying on done when it has
 * checked the last message of each batch of msgs. */
static void mpmc_b(struct mring *r, struct done *done, long size, long cap, long stride, long msgs, uint64_t total, unsigned char *buf) {
	for (uint64_t t = 0; t < total; t++) {
		uint32_t n = 0;
		int rc;
		while ((rc = mpmc_get(r, cap, stride, buf, size, &n, REC_B)) == EMPTY)
			relax();
		if (rc != OK) {
			fprintf(stderr, "ring_floor: message %llu: %s\n", (unsigned long long)t, outcome(rc));
			_exit(1);
		}
		if (n != (uint32_t)size) {
			fprintf(stderr, "ring_floor: message %llu has %u bytes, want %ld\n", (unsigned long long)t, n, size);
			_exit(1);
		}
		uint64_t seq;
		memcpy(&seq, buf, sizeof seq);
		if (seq != t)
			bad_message(t, seq);
		if ((t + 1) % msgs == 0)
			atomic_store_explicit(&done->got, t + 1, memory_order_release);
	}
}

static void mpmc_a_batch(struct mring *r, struct done *done, long size, long cap, long stride, long msgs, unsigned char *buf, uint64_t *hp, unsigned long *spins) {
	uint64_t h = *hp;
	for (long i = 0; i < msgs; i++, h++) {
		memcpy(buf, &h, sizeof h);
		int rc;
		while ((rc = mpmc_put(r, cap, stride, buf, size, REC_A)) == FULL)
			wait_once(spins);
		if (rc != OK) {
			fprintf(stderr, "ring_floor: message %llu: %s\n", (unsigned long long)h, outcome(rc));
			exit(1);
		}
	}
	while (atomic_load_explicit(&done->got, memory_order_acquire) != h)
		wait_once(spins);
	*hp = h;
}

int main(int argc, char **argv) {
	if (argc < 7 || argc > 9) {
		fprintf(stderr, "usage: %s SIZE CAP BATCHES MSGS CPU_A CPU_B [WARMUP [spsc|mpmc]]\n", argv[0]);
		return 2;
	}
	long size = atol(argv[1]), cap = atol(argv[2]), batches = atol(argv[3]), msgs = atol(argv[4]);
	int cpuA = atoi(argv[5]), cpuB = atoi(argv[6]);
	long warmup = argc >= 8 ? atol(argv[7]) : 1;
	const char *mode = argc == 9 ? argv[8] : "spsc";
	int mpmc = strcmp(mode, "mpmc") == 0;
	if (!mpmc && strcmp(mode, "spsc") != 0) {
		fprintf(stderr, "ring_floor: MODE must be spsc or mpmc, not %s\n", mode);
		return 2;
	}
	if (size < 8 || size > (1l << 30) || cap < 1 || cap > (1l << 30) || batches < 1 || msgs < 1 || warmup < 0) {
		fprintf(stderr, "ring_floor: SIZE must be 8 to 2^30, CAP 1 to 2^30, BATCHES and MSGS at least 1\n");
		return 2;
	}
	long hdr = sizeof(struct ring), stride = (size + 63) / 64 * 64;
	if (mpmc)
		hdr = sizeof(struct mring), stride = ((long)sizeof(struct mslot) + size + 63) / 64 * 64;
	long total = (warmup + batches) * msgs;

	/* zero memory is an empty ring in either mode (mpmc: head = tail = 0,
	 * every slot Free(0), no claim marks); the done line follows the slots
	 * (mpmc: the marks). */
	long body = cap * stride + (mpmc ? 2 * marks_size(cap) : 0);
	unsigned char *mem = mmap(NULL, hdr + body + sizeof(struct done), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	struct done *done = (struct done *)(mem + hdr + body);
	unsigned char *buf = malloc(size);
	double *samples = calloc(batches, sizeof *samples);
	if (!buf || !samples)
		die("malloc");
	memset(buf, 0, size);

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	child = pid;
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		pin(cpuB);
		if (mpmc)
			mpmc_b((struct mring *)mem, done, size, cap, stride, msgs, total, buf);
		else
			spsc_b((struct ring *)mem, size, cap, stride, total, buf);
		_exit(0);
	}
	pin(cpuA);
	uint64_t h = 0;
	unsigned long spins = 0;
	for (long b = 0; b < warmup + batches; b++) {
		double t0 = now();
		if (mpmc)
			mpmc_a_batch((struct mring *)mem, done, size, cap, stride, msgs, buf, &h, &spins);
		else
			spsc_a_batch((struct ring *)mem, size, cap, stride, msgs, buf, &h, &spins);
		if (b >= warmup)
			samples[b - warmup] = now() - t0;
	}
	return finish("ring_floor", pid, samples, batches);
}
