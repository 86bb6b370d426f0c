/*
 * socketpair: plain C beside the "conn" workload's throughput rows of
 * go run ./bench: the same framing and two copies through the kernel,
 * with blocking calls and no runtime.
 *
 *     cc -O2 -o socketpair socketpair.c
 *     ./socketpair SIZE BATCHES MSGS CPU_A CPU_B [WARMUP]
 *
 * Two processes made by fork() share a Unix stream socketpair (default
 * socket buffers, blocking descriptors), the messages framed as Python's
 * multiprocessing.connection frames them and mproc's Conn does: a 4-byte
 * big-endian length, then SIZE bytes. Process A (the parent, pinned to
 * CPU_A with sched_setaffinity) writes the message's number into the
 * first 8 bytes of its one payload buffer and sends the frame with one
 * writev of header and payload, as Conn's SendBytes sends it with one
 * gathering sendmsg. Process B (the child, pinned to CPU_B) reads the
 * 4-byte header, checks the length, reads the payload into one reused
 * buffer (read after read until it is whole) and checks the number; after
 * the last message of each batch it writes one byte back on the socket.
 * No spinning: every call blocks in the kernel until it can go on. A CPU
 * of -1 leaves that process unpinned.
 *
 * A runs WARMUP uncounted batches (default 1), then BATCHES batches of MSGS
 * messages, each timed with clock_gettime(CLOCK_MONOTONIC) from its first
 * writev until A has read B's byte back, and prints one line of JSON:
 * {"samples": [seconds per batch, one per batch]}. Errors go to stderr
 * with exit status 1. B sees the end of the stream and exits if A dies;
 * A ignores SIGPIPE, so that a B that failed makes A's writev fail with
 * EPIPE and A report it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* why is errno's text, or for 0 (read_full's end of stream) that. */
static const char *why(void) {
	return errno ? strerror(errno) : "the other process closed the socket";
}

static void die(const char *what) {
	fprintf(stderr, "socketpair: %s: %s\n", what, why());
	exit(1);
}

/* child_die is die for B, which must not flush A's stdio buffers. */
static void child_die(const char *what) {
	fprintf(stderr, "socketpair: child: %s: %s\n", what, why());
	_exit(1);
}

#include "floor.h"

/* read_full reads n bytes into p: 0, or -1 with errno set (0 at the end
 * of the stream). */
static int read_full(int fd, unsigned char *p, size_t n) {
	while (n > 0) {
		ssize_t got = read(fd, p, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = 0;
			return -1;
		}
		p += got, n -= got;
	}
	return 0;
}

/* send_frame sends the frame of header and payload with one writev,
 * going on with another only if the kernel took part of it (a blocking
 * stream socket takes it all unless a signal interrupts). */
static void send_frame(int fd, unsigned char *hdr, unsigned char *payload, size_t size) {
	struct iovec iov[2] = {{hdr, 4}, {payload, size}};
	struct iovec *v = iov;
	int cnt = 2;
	while (cnt > 0) {
		ssize_t put = writev(fd, v, cnt);
		if (put < 0) {
			if (errno == EINTR)
				continue;
			die("writev");
		}
		while (cnt > 0 && (size_t)put >= v->iov_len)
			put -= v->iov_len, v++, cnt--;
		if (cnt > 0)
			v->iov_base = (unsigned char *)v->iov_base + put, v->iov_len -= put;
	}
}

/* B: receive total messages of size bytes on fd into buf, saying after
 * each batch of msgs with one byte back. */
static void receive(int fd, long size, long msgs, uint64_t total, unsigned char *buf) {
	unsigned char hdr[4], ack = 1;
	for (uint64_t t = 0; t < total; t++) {
		if (read_full(fd, hdr, sizeof hdr) < 0)
			child_die("read header");
		uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
		if (n != (uint32_t)size) {
			fprintf(stderr, "socketpair: message %llu has %u bytes, want %ld\n", (unsigned long long)t, n, size);
			_exit(1);
		}
		if (read_full(fd, buf, n) < 0)
			child_die("read payload");
		uint64_t seq;
		memcpy(&seq, buf, sizeof seq);
		if (seq != t) {
			fprintf(stderr, "socketpair: message %llu arrived as %llu\n", (unsigned long long)t, (unsigned long long)seq);
			_exit(1);
		}
		if ((t + 1) % msgs == 0) {
			ssize_t put;
			while ((put = write(fd, &ack, 1)) < 0 && errno == EINTR)
				;
			if (put != 1)
				child_die("write acknowledgement");
		}
	}
}

int main(int argc, char **argv) {
	if (argc < 6 || argc > 7) {
		fprintf(stderr, "usage: %s SIZE BATCHES MSGS CPU_A CPU_B [WARMUP]\n", argv[0]);
		return 2;
	}
	long size = atol(argv[1]), batches = atol(argv[2]), msgs = atol(argv[3]);
	int cpuA = atoi(argv[4]), cpuB = atoi(argv[5]);
	long warmup = argc == 7 ? atol(argv[6]) : 1;
	if (size < 8 || size > (1l << 30) || batches < 1 || msgs < 1 || warmup < 0) {
		fprintf(stderr, "socketpair: SIZE must be 8 to 2^30, BATCHES and MSGS at least 1\n");
		return 2;
	}
	uint64_t total = (uint64_t)(warmup + batches) * msgs;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		die("socketpair");
	unsigned char *buf = malloc(size);
	double *samples = calloc(batches, sizeof *samples);
	if (!buf || !samples)
		die("malloc");
	memset(buf, 0, size);

	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(sv[0]);
		pin(cpuB);
		receive(sv[1], size, msgs, total, buf);
		_exit(0);
	}
	close(sv[1]);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal");
	pin(cpuA);
	int fd = sv[0];
	unsigned char hdr[4] = {size >> 24, size >> 16, size >> 8, size}, ack;
	uint64_t seq = 0;
	for (long b = 0; b < warmup + batches; b++) {
		double t0 = now();
		for (long i = 0; i < msgs; i++, seq++) {
			memcpy(buf, &seq, sizeof seq);
			send_frame(fd, hdr, buf, size);
		}
		if (read_full(fd, &ack, 1) < 0)
			die("read acknowledgement");
		if (b >= warmup)
			samples[b - warmup] = now() - t0;
	}
	close(fd);
	return finish("socketpair", pid, samples, batches);
}
