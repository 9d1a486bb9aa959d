// SPDX-License-Identifier: BSD-2-Clause
/*
 * UCX's registration cache on real verbs (Soft-RoCE rxe0 in the VM):
 * two UCP workers in one process, 1 MiB tagged sends (rendezvous: the
 * receiver reads the sender's buffer through its cached registration).
 *
 *   ucx_test shim [MONITOR]   libmrcache-ucx.so preloaded: after each change
 *                             the receiver gets the new bytes
 *   ucx_test native           UCX's own hooks: the change they miss (a raw
 *                             munmap system call) makes the receiver get
 *                             the old bytes: what the shim fixes
 *   ucx_test race wake|report fresh|stale
 *                             the shim (kmod) with its drain thread held
 *                             off: munmap, mmap and a send beat the thread
 *                             (run_race)
 *
 * Each case (mem_changes.h) sends the buffer, changes the memory under it
 * (new bytes at the same address), and sends again. After move_pages every
 * run must deliver the new bytes: pinned pages do not move.
 *
 * Then migration itself (run_migration): the pages of a buffer UCX has
 * registered do not move, but with the module the attempt reaches UCX,
 * which lets go of its pin; a second attempt moves them.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ucp/api/ucp.h>

#include "mem_changes.h"

#define LEN (1024 * 1024)

static ucp_context_h context;
static ucp_worker_h sender, receiver;
static ucp_ep_h ep;

static void die(const char *what, ucs_status_t status)
{
	fprintf(stderr, "ucx_test: %s: %s\n", what, ucs_status_string(status));
	exit(1);
}

static void setup(void)
{
	ucp_params_t params = {
		.field_mask = UCP_PARAM_FIELD_FEATURES,
		.features = UCP_FEATURE_TAG,
	};
	ucp_worker_params_t wp = {
		.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
		.thread_mode = UCS_THREAD_MODE_SINGLE,
	};
	ucp_ep_params_t ep_params = { 0 };
	ucp_address_t *addr;
	size_t addr_len;
	ucs_status_t st;

	st = ucp_init(&params, NULL, &context);
	if (st != UCS_OK)
		die("ucp_init", st);
	if ((st = ucp_worker_create(context, &wp, &sender)) != UCS_OK ||
	    (st = ucp_worker_create(context, &wp, &receiver)) != UCS_OK)
		die("ucp_worker_create", st);
	st = ucp_worker_get_address(receiver, &addr, &addr_len);
	if (st != UCS_OK)
		die("ucp_worker_get_address", st);
	ep_params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
	ep_params.address = addr;
	st = ucp_ep_create(sender, &ep_params, &ep);
	if (st != UCS_OK)
		die("ucp_ep_create", st);
	ucp_worker_release_address(receiver, addr);
}

static void wait_both(void *sreq, void *rreq)
{
	while ((sreq && ucp_request_check_status(sreq) == UCS_INPROGRESS) ||
	       (rreq && ucp_request_check_status(rreq) == UCS_INPROGRESS)) {
		ucp_worker_progress(sender);
		ucp_worker_progress(receiver);
	}
	if (sreq && UCS_PTR_IS_PTR(sreq)) {
		if (ucp_request_check_status(sreq) != UCS_OK)
			die("send", ucp_request_check_status(sreq));
		ucp_request_free(sreq);
	}
	if (rreq && UCS_PTR_IS_PTR(rreq)) {
		if (ucp_request_check_status(rreq) != UCS_OK)
			die("recv", ucp_request_check_status(rreq));
		ucp_request_free(rreq);
	}
}

/* Send @buf, receive into @out; return the byte the receiver saw. */
static char transfer(const char *buf, char *out)
{
	ucp_request_param_t param = { 0 };
	void *sreq, *rreq;

	memset(out, 0, LEN);
	rreq = ucp_tag_recv_nbx(receiver, out, LEN, 7, ~0ull, &param);
	sreq = ucp_tag_send_nbx(ep, buf, LEN, 7, &param);
	if (UCS_PTR_IS_ERR(sreq))
		die("ucp_tag_send_nbx", UCS_PTR_STATUS(sreq));
	if (UCS_PTR_IS_ERR(rreq))
		die("ucp_tag_recv_nbx", UCS_PTR_STATUS(rreq));
	wait_both(UCS_PTR_IS_PTR(sreq) ? sreq : NULL,
		  UCS_PTR_IS_PTR(rreq) ? rreq : NULL);
	for (size_t i = 1; i < LEN; i++)
		if (out[i] != out[0])
			return '?';	/* mixed: reported as neither */
	return out[0];
}

static const char *shim_monitor;

static int run_case(const struct mem_change *c, char *out)
{
	char *p = mem_map(NULL, LEN, 'A');
	char first = transfer(p, out), second;
	int want_new = mem_change_seen(c, shim_monitor) || !c->stale_if_missed;

	if (c->apply(p, LEN, 'B')) {
		printf("     %s: another thread took the address; again\n", c->name);
		return -1;
	}
	second = transfer(p, out);
	printf("%s %-28s first send '%c', after the change '%c' (expected '%c')\n",
	       first == 'A' && second == (want_new ? 'B' : 'A') ? "ok  " : "FAIL",
	       c->name, first, second, want_new ? 'B' : 'A');
	munmap(p, LEN);
	return first == 'A' && second == (want_new ? 'B' : 'A');
}

/*
 * Linux 6.1 will not migrate a page pinned for DMA: move_pages unmaps it
 * (the MMU notifiers run, so the module sees the attempt), finds the pin
 * and puts it back. With the module the shim reports the attempt: UCX
 * drops the region, to be deregistered (unpinned) at its next registration
 * miss, here a send from another buffer. A second attempt then moves every
 * page, and the next send registers the moved pages and carries the bytes
 * now at the address. Without the module nobody tells UCX: the pin and the
 * pages stay, and the old registration still maps what the program sees.
 */
/* One send from @buf for mem_send_until_unpinned(); nonzero when wrong. */
struct send_from {
	char *buf, *out, landed;
};

static int send_other(void *arg)
{
	struct send_from *s = arg;

	s->landed = transfer(s->buf, s->out);
	return s->landed != s->buf[0];
}

static int run_migration(char *out)
{
	char *p = mem_map(NULL, LEN, 'A'), *q = mem_map(NULL, LEN, 'Q');
	int to = !mem_gather(p, LEN), pages = LEN / sysconf(_SC_PAGESIZE);
	int want = shim_monitor && !strcmp(shim_monitor, "kmod") ? pages : 0;
	char first = transfer(p, out), other, after;
	long pinned = mem_pinned_kib();
	int tried = mem_move(p, LEN, to), moved;

	/* A miss: UCX deregisters what it dropped (with the module, as soon
	 * as the report is in). */
	if (want) {
		struct send_from s = { .buf = q, .out = out };

		mem_send_until_unpinned(pinned, LEN, send_other, &s);
		other = s.landed;
	} else {
		other = transfer(q, out);
	}
	printf("     pinned: %ld KiB with the buffer registered, %ld KiB after a send from another\n",
	       pinned, mem_pinned_kib());
	moved = mem_move(p, LEN, to);
	memset(p, 'B', LEN);
	after = transfer(p, out);
	printf("%s %-28s first try moved %d of %d pages, second %d (expected 0, %d), sends '%c' '%c' '%c' (expected 'A' 'Q' 'B')\n",
	       first == 'A' && other == 'Q' && after == 'B' && !tried &&
	       moved == want ? "ok  " : "FAIL", "migration", tried, pages, moved,
	       want, first, other, after);
	munmap(p, LEN);
	munmap(q, LEN);
	return first == 'A' && other == 'Q' && after == 'B' && !tried &&
	       moved == want;
}

/*
 * The race the shim's synchronous delivery in ucs_rcache_get closes:
 * munmap (the system call: UCX's own hooks, which its other events may
 * have installed even in replace mode, must not tell it), mmap at the
 * same address and a send, on one thread, while the
 * drain thread is held off (test only, mrcache-runtimes(7)):
 *   wake    MRCACHE_SHIM_TEST_WAKE_DELAY_MS: it has not looked at the
 *           change yet when the send looks UCX's cache up;
 *   report  MRCACHE_SHIM_TEST_REPORT_DELAY_MS: it has taken the change and
 *           not reported it yet (the send waits 500 ms so that it has).
 * One trial: 1 when the second send carried the old bytes, 0 when the new,
 * -1 when another thread took the address, -2 when the first send failed.
 */
static int race_trial(char *out, int report, unsigned settle_ms)
{
	char *p = mem_map(NULL, LEN, 'A'), first, second;

	first = transfer(p, out);
	syscall(SYS_munmap, p, LEN);
	if (!mem_map(p, LEN, 'B'))
		return -1;
	if (report)
		usleep(500 * 1000);
	second = transfer(p, out);
	munmap(p, LEN);
	/*
	 * The thread reports (a stale send leaves two changes, one after the
	 * other), then waits again: the next trial starts clean.
	 */
	usleep(settle_ms * 1000);
	printf("     trial: first send '%c', after munmap+mmap '%c'\n", first,
	       second);
	if (first != 'A' || (second != 'A' && second != 'B'))
		return -2;
	return second == 'A';
}

/* ucx_test race wake|report fresh|stale: see race_trial(). */
static int run_race(char *out, const char *hold, const char *want)
{
	int report = !strcmp(hold, "report"), stale = 0, trials, ret;
	const char *delay = getenv(report ? "MRCACHE_SHIM_TEST_REPORT_DELAY_MS" :
				   "MRCACHE_SHIM_TEST_WAKE_DELAY_MS");
	const char *n = getenv("MRCACHE_UCX_RACE_TRIALS");

	trials = n ? atoi(n) : 2;
	if (!delay || (!report && strcmp(hold, "wake")) ||
	    (strcmp(want, "fresh") && strcmp(want, "stale"))) {
		fprintf(stderr, "ucx_test race: wake|report fresh|stale, with MRCACHE_SHIM_TEST_WAKE_DELAY_MS or _REPORT_DELAY_MS set\n");
		exit(2);
	}
	for (int t = 0; t < trials; t++) {
		int tries = 0;

		while ((ret = race_trial(out, report, 2 * atoi(delay) + 500)) == -1 &&
		       ++tries < 5)
			;
		if (ret < 0)
			return 0;
		stale += ret;
	}
	ret = !strcmp(want, "stale") ? stale > 0 : stale == 0;
	printf("%s race, drain thread held off at %s: %d of %d sends stale (expected %s)\n",
	       ret ? "ok  " : "FAIL", hold, stale, trials,
	       !strcmp(want, "stale") ? "some" : "none");
	return ret;
}

static void usage(void)
{
	fprintf(stderr, "usage: ucx_test shim [kmod|hooks|uffd] | native | race wake|report fresh|stale\n");
	exit(2);
}

/* The mode asked for runs with the right monitor (race: the shim's kmod). */
static void check_monitor(int argc, char **argv)
{
	const char *(*monitor)(void) = (const char *(*)(void))
		dlsym(RTLD_DEFAULT, "mrc_ucx_monitor");
	int shim = !strcmp(argv[1], "shim"), race = !strcmp(argv[1], "race");
	const char *want = race ? "kmod" : shim && argc > 2 ? argv[2] : NULL;

	if (!shim && !race && strcmp(argv[1], "native"))
		usage();
	if (race && argc < 4)
		usage();
	shim_monitor = monitor ? monitor() : NULL;
	printf("ucx_test: mrcache monitor for UCX: %s\n",
	       shim_monitor ? shim_monitor : "(none)");
	if ((shim || race) != !!shim_monitor ||
	    (want && strcmp(want, shim_monitor))) {
		fprintf(stderr, "ucx_test: %s: the wrong monitor feeds UCX\n", argv[1]);
		exit(1);
	}
}

static int run_changes(char *out)
{
	int ok = 1;

	for (size_t i = 0; i < n_mem_changes; i++) {
		int ret, tries = 0;

		/* -1: the address was taken in between; a few tries. */
		while ((ret = run_case(&mem_changes[i], out)) < 0 && ++tries < 5)
			;
		ok &= ret == 1;
	}
	return ok & run_migration(out);
}

int main(int argc, char **argv)
{
	char *out;
	int ok;

	if (argc < 2)
		usage();
	check_monitor(argc, argv);
	setup();
	out = mem_map(NULL, LEN, 0);
	if (!strcmp(argv[1], "race"))
		ok = run_race(out, argv[2], argv[3]);
	else
		ok = run_changes(out);
	ucp_ep_destroy(ep);
	ucp_worker_destroy(sender);
	ucp_worker_destroy(receiver);
	ucp_cleanup(context);
	return ok ? 0 : 1;
}
