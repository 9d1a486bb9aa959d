// SPDX-License-Identifier: BSD-2-Clause
/*
 * x86-64 entry-point patcher (see patch.h).
 *
 * Like UCX's bistro and libfabric's memhooks, we overwrite the first bytes
 * of a function; unlike a plain overwrite we keep a way to call the
 * original: the overwritten instructions are relocated into a trampoline
 * near the function. Only the instruction forms found at the entries we
 * patch (glibc 2.36 on Debian 12: mov imm, mov reg/reg, sub rsp, push,
 * syscall, cmp, test, fs-relative loads, and RIP-relative operands) and the
 * jumps other patchers write (jmp rel32; movabs r11 + jmp *r11) are
 * decoded; anything else fails the patch cleanly with -ENOTSUP.
 *
 * The jump is 5 bytes so that it replaces as few instructions as possible;
 * when the entry is 8-byte aligned (glibc aligns functions to 16) it is
 * written with one 8-byte store, so a thread calling the function at that
 * moment sees either the old entry or the new one. A thread stopped inside
 * those 5 bytes (between two short instructions) is the one case no
 * entry patcher can make safe; UCX and libfabric accept it too.
 *
 * Nothing here is on a hook's path: it runs when a monitor starts, after a
 * dlopen, and when a registration sees a patch overwritten.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "atomics.h"
#include "error.h"
#include "hooks/patch.h"
#include "hooks/raw_syscall.h"

#define JMP_REL32_LEN	5
#define JMP_ABS_LEN	14	/* jmp *0(%rip); .quad target */
#define CODE_PAGE	4096u
#define NEAR_LIMIT	(1ull << 30)	/* pads within 1 GiB of the entry */

/* The page pads and trampolines are carved from, near the last entry. */
static uint8_t *code_page;
static uint32_t code_used;

static uint64_t page_floor(uint64_t a)
{
	return a & ~(uint64_t)(CODE_PAGE - 1);
}

static int protect(void *addr, size_t len, int prot)
{
	uint64_t start = page_floor((uintptr_t)addr);
	uint64_t end = page_floor((uintptr_t)addr + len - 1) + CODE_PAGE;
	long ret = mrc_raw_syscall3(SYS_mprotect, (long)start,
				    (long)(end - start), prot);

	return ret ? mrc_error((int)-ret, "mprotect(%#lx, RWX) for a code patch failed (W^X policy?)",
				(unsigned long)start) : 0;
}

static int near_enough(const uint8_t *a, const uint8_t *b)
{
	uint64_t d = a > b ? (uint64_t)(a - b) : (uint64_t)(b - a);

	return d < NEAR_LIMIT;
}

/*
 * A page within reach of rel32 from @near: try free addresses below it,
 * then above it, 64 KiB apart, without replacing anything mapped.
 */
static uint8_t *map_near(const uint8_t *near)
{
	uint64_t base = page_floor((uintptr_t)near) & ~0xffffull;

	for (uint64_t step = 1; step < (NEAR_LIMIT >> 16) / 2; step++) {
		for (int dir = 0; dir < 2; dir++) {
			uint64_t hint = dir ? base + (step << 16) : base - (step << 16);
			long ret = mrc_raw_syscall6(SYS_mmap, (long)hint, CODE_PAGE,
						    PROT_READ | PROT_EXEC,
						    MAP_PRIVATE | MAP_ANONYMOUS |
						    MAP_FIXED_NOREPLACE, -1, 0);

			if (ret >= 0 && (uint64_t)ret == hint)
				return (uint8_t *)ret;
			if (ret >= 0)	/* an old kernel ignoring NOREPLACE */
				mrc_raw_syscall3(SYS_munmap, ret, CODE_PAGE, 0);
		}
	}
	return NULL;
}

/* @len bytes of code memory within rel32 reach of @near, or NULL. */
static uint8_t *code_alloc(const uint8_t *near, uint32_t len)
{
	if (!code_page || code_used + len > CODE_PAGE ||
	    !near_enough(code_page, near)) {
		uint8_t *page = map_near(near);

		if (!page)
			return NULL;
		code_page = page;
		code_used = 0;
	}
	code_used += len;
	return code_page + code_used - len;
}

/*
 * Code is written behind the sanitizers' back: TSan's shadow of libc's
 * text is not writable, and an instrumented store there faults.
 */
static void code_copy(void *dst, const void *src, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* One aligned 8-byte store: atomic on x86-64. */
static void code_store8(uint8_t *dst, uint64_t v)
{
	__asm__ volatile("movq %1, %0" : "=m"(*(uint64_t *)(void *)dst) : "r"(v) : "memory");
}

static int code_write(uint8_t *dst, const uint8_t *src, size_t len)
{
	int ret = protect(dst, len, PROT_READ | PROT_WRITE | PROT_EXEC);

	if (ret)
		return ret;
	code_copy(dst, src, len);
	return protect(dst, len, PROT_READ | PROT_EXEC);
}

static void put_jmp_abs(uint8_t *at, const void *target)
{
	uint64_t t = (uintptr_t)target;

	at[0] = 0xff;
	at[1] = 0x25;
	memset(at + 2, 0, 4);
	memcpy(at + 6, &t, 8);
}

/* Bytes of a ModRM operand (ModRM, SIB, displacement); *rip for RIP+disp32. */
static int modrm_len(const uint8_t *m, int *rip)
{
	int mod = m[0] >> 6, rm = m[0] & 7, len = 1;

	if (mod == 3)
		return 1;
	if (rm == 4) {
		len++;
		if (mod == 0 && (m[1] & 7) == 5)
			len += 4;
	} else if (mod == 0 && rm == 5) {
		*rip = 1;
		return 5;
	}
	return len + (mod == 1 ? 1 : mod == 2 ? 4 : 0);
}

/* Opcodes followed by a ModRM operand and nothing else. */
static int plain_modrm(uint8_t op)
{
	static const uint8_t ops[] = { 0x01, 0x03, 0x29, 0x2b, 0x31, 0x33,
				       0x39, 0x3b, 0x85, 0x89, 0x8b, 0x8d };

	return memchr(ops, op, sizeof(ops)) != NULL;
}

/*
 * One instruction's decoding: its length, where its RIP-relative
 * displacement is (0: none), and whether it ends the flow (a jump).
 */
struct insn {
	int len;
	int disp_at;
	int terminal;
	uint64_t jump_to;	/* for jmp rel: the absolute target */
};

static int decode_body(const uint8_t *p, int pre, int rex_w, struct insn *in)
{
	uint8_t op = p[pre];
	const uint8_t *m = p + pre + 1;
	int rip = 0, n;

	if (op >= 0x50 && op <= 0x5f)
		n = 1;
	else if (op >= 0xb8 && op <= 0xbf)
		n = rex_w ? 9 : 5;
	else if (op == 0x3d)
		n = 5;
	else if (op == 0x0f && m[0] == 0x05)
		n = 2;
	else if (plain_modrm(op))
		n = 1 + modrm_len(m, &rip);
	else if (op == 0x83)
		n = 2 + modrm_len(m, &rip);
	else if (op == 0x81 || op == 0xc7 || (op == 0xf7 && !(m[0] & 0x38)))
		n = 5 + modrm_len(m, &rip);
	else if (op == 0xff && (m[0] & 0xf8) == 0xe0) {	/* jmp *%reg */
		n = 2;
		in->terminal = 1;
	} else
		return -1;
	in->len = pre + n;
	/* The displacement follows ModRM (and SIB: never with RIP). */
	in->disp_at = rip ? pre + 2 : 0;
	return rip && (op == 0x83 || op == 0x81 || op == 0xc7 || op == 0xf7) ? -1 : 0;
}

static int decode(const uint8_t *p, struct insn *in)
{
	int pre = 0, rex_w = 0;
	int32_t rel;

	memset(in, 0, sizeof(*in));
	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) {
		in->len = 4;	/* endbr64 */
		return 0;
	}
	if (p[0] == 0xe9) {
		memcpy(&rel, p + 1, 4);
		*in = (struct insn){ .len = 5, .terminal = 1,
				     .jump_to = (uintptr_t)p + 5 + rel };
		return 0;
	}
	if (p[0] == 0x64 || p[0] == 0x65)
		pre++;
	if ((p[pre] & 0xf0) == 0x40) {
		rex_w = p[pre] & 8;
		pre++;
	}
	return decode_body(p, pre, rex_w, in);
}

/*
 * Copy one instruction into @buf, which will run at @run: a jump becomes
 * an absolute jump, a RIP-relative displacement is re-aimed from @run.
 */
static int relocate_one(uint8_t *buf, const uint8_t *run, const uint8_t *src,
			const struct insn *in)
{
	int64_t disp;
	int32_t d32;

	if (in->jump_to) {
		put_jmp_abs(buf, (void *)(uintptr_t)in->jump_to);
		return JMP_ABS_LEN;
	}
	memcpy(buf, src, (size_t)in->len);
	if (!in->disp_at)
		return in->len;
	memcpy(&d32, src + in->disp_at, 4);
	disp = (int64_t)d32 + (int64_t)((uintptr_t)src - (uintptr_t)run);
	if (disp != (int32_t)disp)
		return -1;
	d32 = (int32_t)disp;
	memcpy(buf + in->disp_at, &d32, 4);
	return in->len;
}

/*
 * Build in @buf (to run at @run) the code that executes the entry's first
 * instructions and continues after them. Return its length (*covered: the
 * entry bytes it stands for), or -1 for an instruction we do not know.
 */
static int build_trampoline(const uint8_t *entry, const uint8_t *run,
			    uint8_t *buf, int *covered)
{
	int src = 0, out = 0;
	struct insn in;

	while (src < JMP_REL32_LEN) {
		int n;

		if (decode(entry + src, &in))
			return -1;
		n = relocate_one(buf + out, run + out, entry + src, &in);
		if (n < 0)
			return -1;
		out += n;
		src += in.len;
		if (in.terminal) {
			*covered = src;
			return out;
		}
	}
	put_jmp_abs(buf + out, entry + src);
	*covered = src;
	return out + JMP_ABS_LEN;
}

#define TRAMPOLINE_MAX	64
#define PATCH_CODE_LEN	(JMP_ABS_LEN + TRAMPOLINE_MAX)

/* Write the 5-byte jump over the entry, as one store when aligned. */
static int write_entry(uint8_t *entry, const uint8_t jump[JMP_REL32_LEN])
{
	int ret = protect(entry, JMP_REL32_LEN,
			  PROT_READ | PROT_WRITE | PROT_EXEC);
	uint64_t word;

	if (ret)
		return ret;
	if (!((uintptr_t)entry & 7)) {
		memcpy(&word, entry, 8);
		memcpy(&word, jump, JMP_REL32_LEN);
		code_store8(entry, word);
	} else {
		code_copy(entry, jump, JMP_REL32_LEN);
	}
	return protect(entry, JMP_REL32_LEN, PROT_READ | PROT_EXEC);
}

/*
 * The pad (jump to the hook) and the trampoline (the entry as it is now),
 * then the jump at the entry; the order makes every state in between one
 * that works.
 */
static int patch_entry(struct mrc_patch *p)
{
	uint8_t code[PATCH_CODE_LEN], *at;
	int covered, len;
	int32_t rel;
	int ret;

	at = code_alloc(p->entry, PATCH_CODE_LEN);
	if (!at)
		return mrc_error(ENOMEM, "no free page within 1 GiB of %s for its hook trampoline",
				 p->symbol);
	put_jmp_abs(code, p->hook);
	len = build_trampoline(p->entry, at + JMP_ABS_LEN, code + JMP_ABS_LEN,
			       &covered);
	if (len < 0)
		return mrc_error(ENOTSUP, "cannot relocate the first instructions of %s (bytes %02x %02x %02x %02x %02x); hooks are not available with this libc",
				 p->symbol, p->entry[0], p->entry[1], p->entry[2],
				 p->entry[3], p->entry[4]);
	ret = code_write(at, code, (size_t)(JMP_ABS_LEN + len));
	if (ret)
		return ret;
	mrc_store_release(&p->orig, (void *)(at + JMP_ABS_LEN));
	rel = (int32_t)(at - (p->entry + JMP_REL32_LEN));
	p->jump[0] = 0xe9;
	memcpy(p->jump + 1, &rel, 4);
	return write_entry(p->entry, p->jump);
}

/*
 * libc's own definition, not the first in the global scope: under a
 * sanitizer that is its interceptor, which glibc's internal calls bypass.
 */
static uint8_t *libc_symbol(const char *name)
{
	/* Kept: install runs dlopen only before dlopen itself is patched. */
	static void *libc;

	if (!libc)
		libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	return libc ? dlsym(libc, name) : NULL;
}

int mrc_patch_install(struct mrc_patch *p)
{
	int ret;

	if (p->installed)
		return 0;
	p->entry = libc_symbol(p->symbol);
	if (!p->entry)
		return mrc_error(ENOENT, "symbol %s not found for its hook", p->symbol);
	ret = patch_entry(p);
	if (!ret)
		p->installed = 1;
	return ret;
}

int mrc_patch_intact(const struct mrc_patch *p)
{
	uint64_t word;

	if (!p->installed)
		return 1;
	if ((uintptr_t)p->entry & 7)
		return !memcmp(p->entry, p->jump, JMP_REL32_LEN);
	/* The same 8-byte word write_entry() stores at once. */
	__asm__ volatile("movq %1, %0" : "=r"(word)
			 : "m"(*(const uint64_t *)(const void *)p->entry));
	return !memcmp(&word, p->jump, JMP_REL32_LEN);
}

int mrc_patch_repair(struct mrc_patch *p)
{
	if (mrc_patch_intact(p))
		return 0;
	return patch_entry(p);
}
