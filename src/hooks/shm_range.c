// SPDX-License-Identifier: BSD-2-Clause
/*
 * The range shmdt(addr) detaches (see shm_range.h).
 *
 * shmdt() takes only an address. The kernel (ipc/shm.c, do_shmdt) unmaps
 * the first System V shared memory mapping at or above it whose file
 * offset equals its distance from the address, and then every other
 * mapping of the same segment placed the same way (the pieces an
 * mprotect or a partial munmap left), up to the segment's size. The
 * segment's id may already be removed (IPC_RMID right after shmat is the
 * usual idiom), so IPC_STAT cannot tell the size; /proc/self/maps shows
 * every mapping with its file offset, device and inode, which identify
 * the segment. The range recorded ends where its last such mapping ends.
 *
 * Read with raw system calls into a buffer on the stack and parsed one
 * character at a time, so no line length is assumed: the hook may run on
 * any thread, in a signal handler, or while a thread exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "hooks/raw_syscall.h"
#include "hooks/shm_range.h"

#define READ_CHUNK 512

/* The columns of a maps line: "start-end perms offset major:minor inode  path". */
enum { F_START, F_END, F_PERMS, F_OFFSET, F_MAJOR, F_MINOR, F_INODE, F_GAP, F_PATH };

struct maps_line {
	uint64_t num[F_INODE + 1];	/* by column; F_PERMS unused */
	int field;
	int path_len;		/* characters of "/SYSV" matched, or 6: not it */
};

/* What is known of the segment attached at @addr so far. */
struct shm_scan {
	uint64_t addr;
	int found;
	uint64_t major, minor, inode;
	uint64_t end;
};

static const char sysv_path[] = "/SYSV";	/* /SYSV%08x: the key */
#define SYSV_LEN 5

/* A piece of the segment: its offset is its distance from @addr. */
MRC_HOOK_PATH static void line_done(struct shm_scan *s, const struct maps_line *l)
{
	const uint64_t *n = l->num;

	if (l->path_len != SYSV_LEN || n[F_START] < s->addr ||
	    n[F_START] - s->addr != n[F_OFFSET])
		return;
	if (!s->found) {
		s->found = 1;
		s->major = n[F_MAJOR];
		s->minor = n[F_MINOR];
		s->inode = n[F_INODE];
	} else if (n[F_MAJOR] != s->major || n[F_MINOR] != s->minor ||
		   n[F_INODE] != s->inode) {
		return;
	}
	if (n[F_END] > s->end)
		s->end = n[F_END];
}

MRC_HOOK_PATH static void line_reset(struct maps_line *l)
{
	for (int i = 0; i <= F_INODE; i++)
		l->num[i] = 0;
	l->field = F_START;
	l->path_len = 0;
}

/* The value of digit @c in a column (the inode is decimal), or -1. */
MRC_HOOK_PATH static int digit(int field, char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (field != F_INODE && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

MRC_HOOK_PATH static int ends_field(int field, char c)
{
	return c == ' ' || (c == '-' && field == F_START) ||
	       (c == ':' && field == F_MAJOR);
}

MRC_HOOK_PATH static void parse_char(struct shm_scan *s, struct maps_line *l, char c)
{
	int d;

	if (c == '\n') {
		line_done(s, l);
		line_reset(l);
	} else if (l->field <= F_INODE) {
		if (ends_field(l->field, c))
			l->field++;
		else if (l->field != F_PERMS && (d = digit(l->field, c)) >= 0)
			l->num[l->field] = l->num[l->field] *
				(l->field == F_INODE ? 10 : 16) + (uint64_t)d;
	} else if (l->field == F_PATH || c != ' ') {
		l->field = F_PATH;
		if (l->path_len < SYSV_LEN)
			l->path_len = c == sysv_path[l->path_len] ?
				      l->path_len + 1 : SYSV_LEN + 1;
	}
}

/* Feed /proc/self/maps to the parser; 0, or -1 when it cannot be read. */
MRC_HOOK_PATH static int scan_maps(struct shm_scan *s)
{
	char buf[READ_CHUNK];
	struct maps_line l;
	long fd = mrc_raw_syscall3(SYS_open, (long)"/proc/self/maps",
				   O_RDONLY | O_CLOEXEC, 0);
	long n;

	if (fd < 0)
		return -1;
	line_reset(&l);
	do {
		n = mrc_raw_syscall3(SYS_read, fd, (long)buf, sizeof(buf));
		for (long i = 0; i < n; i++)
			parse_char(s, &l, buf[i]);
	} while (n > 0 || n == -EINTR);
	mrc_raw_syscall3(SYS_close, fd, 0, 0);
	return n ? -1 : 0;
}

MRC_HOOK_PATH uint64_t mrc_shm_detach_len(uint64_t addr)
{
	struct shm_scan s = { .addr = addr };

	if (scan_maps(&s) || !s.found)
		return UINT64_MAX - addr;
	return s.end - addr;
}
