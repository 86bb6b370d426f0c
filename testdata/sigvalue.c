/* A C peer for mproc's SignalWithValue test: it blocks SIGRTMIN+1, says
 * "ready", and prints the value, code and sender of each of N signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		siginfo_t si;
		if (sigwaitinfo(&set, &si) < 0) {
			perror("sigwaitinfo");
			return 1;
		}
		printf("%d %d %d\n", si.si_value.sival_int, si.si_code, (int)si.si_pid);
		fflush(stdout);
	}
	return 0;
}
