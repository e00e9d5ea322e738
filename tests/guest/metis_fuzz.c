// SPDX-License-Identifier: GPL-2.0
/*
 * Seeded random ioctl fuzzer for /dev/metisN (uapi/linux/metis.h).
 *
 *   metis_fuzz DEVICE SEED COUNT [PROCS] [--uid UID --gid GID] [--timeout SECS] [--only I]
 *              [--rebind DONE-FILE]
 *
 * PROCS worker processes (default 4) share COUNT fuzzed ioctls. Each drops to
 * UID/GID if asked (setgroups({GID}), setgid, setuid, checked), opens the
 * device (up to four files, opened, closed and dup'ed at random, a file with
 * async jobs in flight included) and issues calls built from a valid struct of
 * the command most of the time (real handles, job ids, dma-buf fds, lengths
 * inside the region, buffers that exist), then mutated: size field (0, short,
 * larger with a zero or a non-zero tail, past PAGE_SIZE), flags, reserved and
 * unused fields, lengths and offsets that pass the end or overflow, handles of
 * other files and other workers (passed around through a shared mapping),
 * user buffers that are NULL, kernel addresses, PROT_NONE, read-only or run
 * into a guard page, timeouts 0/1/huge, fds that are no dma-buf (pipe, memfd,
 * /dev/null, the device, closed, -1). Ioctl numbers are the real ones, the
 * real ones with a wrong size or direction, every number 0x00..0x20 of the
 * magic, and random numbers (never of the generic VFS ioctl types); argument
 * pointers are valid, unaligned, end exactly at a guard page, straddle it,
 * read-only, NULL, 0xffff800000000000, 0xffffffff81000000, low or PROT_NONE.
 * poll() and mmap() of exported dma-bufs are mixed in; METIS_IOCTL_RESET
 * rarely (a small shared budget of calls that may really reset the card).
 *
 * What it checks (TAP lines fuzz_*, printed by the parent):
 *   - every ioctl returns 0 or an allowed errno, and a positive value never;
 *   - no worker dies of a signal, hangs (makes no call for --timeout s, default
 *     180) or fails;
 *   - a call that breaks a documented rule (a model of uapi/linux/metis.h
 *     decides) never succeeds: size/flags/reserved/tail, bounds, unknown
 *     opcode, dirty unused CMD fields, not-a-dma-buf fd, bad argument pointer,
 *     a read-only argument of a call that must write back, a device write into
 *     read-only memory (which must also stay unchanged);
 *   - a handle the file did not allocate never works (MEM_FREE, DMA, CMD,
 *     DMA_BUF), whether it belongs to another file of the worker or to
 *     another worker;
 *   - write-back stays within `size` (a canary after the struct, a zero tail
 *     after a larger struct), ECHO returns its bytes, INFO is sane, a failed
 *     BUF_EXPORT installs no fd and a good one is O_CLOEXEC with the right
 *     access mode and a page-rounded length;
 *   - async jobs: a WAIT never reaps a job this file did not submit, never
 *     loses one (ENOENT for a job that was submitted and not reaped, e.g.
 *     after a WAIT whose write-back failed), statuses are 0/ETIMEDOUT/EIO/
 *     ESHUTDOWN/ENODEV(/ENOMEM); poll() says POLLIN only when a job can be
 *     reaped;
 *   - at the end each worker reaps its jobs and frees its regions (each
 *     MEM_FREE 0); then the parent (root throughout) checks that the handles
 *     of the dead workers are gone, that no device memory leaked (mem_free as
 *     before the run: the driver keeps part of the card for itself, so the
 *     baseline is taken before the workers start), moves 1 MiB to the card
 *     and back intact, and that the fuzzing reached the deep paths (every
 *     command succeeded at least once when well formed).
 * The summary (@@NOTE fuzz: ... and one @@NOTE fuzz-result: line per
 * (ioctl, errno) pair seen) tells which error paths were hit.
 *
 * Reproducing: each worker's random sequence depends only on SEED and its
 * index (the worker seeds are printed); what it does also depends on the
 * results it gets and on the other workers (their handles), so run again with
 * the same SEED COUNT PROCS, or the failing worker alone with --only I
 * (same PROCS, so that it gets the same seed and share of COUNT). A failing
 * worker prints its last 32 ioctls (iteration, number, size field, pointer
 * kind, result) to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/dma-buf.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../uapi/linux/metis.h"
#include "guest.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_PROCS	64
#define SLOTS		4		/* device files per worker */
#define LIVE		24		/* regions tracked per file */
#define LIVE_SOFT	16		/* above this, allocations turn into frees */
#define BUFS		4		/* exported dma-bufs per worker */
#define MAPS		2		/* mmaps of them */
#define DEAD		64		/* freed handles remembered */
#define LOG		32		/* ioctls remembered for a failure report */
#define RING		256		/* handles shared between the workers */
#define ENC_MAX		16383		/* largest size an ioctl number encodes */
#define RO_ARG		(20 << 10)	/* read-only argument structs */
#define DATA		(1 << 20)	/* DMA buffer; a guard page follows */
#define RO_DATA		(64 << 10)	/* read-only DMA buffer */
#define HOLE		(64 << 10)	/* PROT_NONE */
#define ENT_MAX		(sizeof(struct metis_dma) + 64)	/* largest batch entry built */
#define ENTS_MIN	(METIS_MAX_BATCH * ENT_MAX)	/* batch entries (ents_len: whole pages) */
_Static_assert(DATA >= METIS_MAX_BATCH * 16384, "a batch entry's own 16 KiB of the DMA buffer");
#define CLOSED_FD	1000		/* CLOSED_FD..+19: never open */
#define KADDR1		0xffff800000000000ull
#define KADDR2		0xffffffff81000000ull

enum { I_INFO, I_MEM_ALLOC, I_MEM_FREE, I_DMA, I_WAIT, I_CMD, I_RESET, I_BUF_EXPORT, I_DMA_BUF,
       I_FW_CHANGED, I_BUF_REGISTER, I_BUF_UNREGISTER, I_DMA_BATCH, NCMD };

static const struct {
	const char *name;
	unsigned long req;
	uint32_t base;
	unsigned int weight;	/* per mille of the real calls */
} cmds[NCMD] = {
	[I_INFO] = { "INFO", METIS_IOCTL_INFO, sizeof(struct metis_info), 50 },
	[I_MEM_ALLOC] = { "MEM_ALLOC", METIS_IOCTL_MEM_ALLOC, sizeof(struct metis_mem_alloc), 110 },
	[I_MEM_FREE] = { "MEM_FREE", METIS_IOCTL_MEM_FREE, sizeof(struct metis_mem_free), 70 },
	[I_DMA] = { "DMA", METIS_IOCTL_DMA, sizeof(struct metis_dma), 185 },
	[I_WAIT] = { "WAIT", METIS_IOCTL_WAIT, sizeof(struct metis_wait), 120 },
	[I_CMD] = { "CMD", METIS_IOCTL_CMD, sizeof(struct metis_cmd), 170 },
	[I_RESET] = { "RESET", METIS_IOCTL_RESET, sizeof(struct metis_reset), 5 },
	[I_BUF_EXPORT] = { "BUF_EXPORT", METIS_IOCTL_BUF_EXPORT, sizeof(struct metis_buf_export),
			   60 },
	[I_DMA_BUF] = { "DMA_BUF", METIS_IOCTL_DMA_BUF, sizeof(struct metis_dma_buf), 140 },
	[I_FW_CHANGED] = { "FW_CHANGED", METIS_IOCTL_FW_CHANGED, sizeof(struct metis_fw_changed),
			   15 },
	[I_BUF_REGISTER] = { "BUF_REGISTER", METIS_IOCTL_BUF_REGISTER,
			     sizeof(struct metis_buf_register), 20 },
	[I_BUF_UNREGISTER] = { "BUF_UNREGISTER", METIS_IOCTL_BUF_UNREGISTER,
			       sizeof(struct metis_buf_unregister), 15 },
	[I_DMA_BATCH] = { "DMA_BATCH", METIS_IOCTL_DMA_BATCH, sizeof(struct metis_dma_batch), 40 },
};

/* Result classes: the command, with a wrong encoded size, with wrong direction bits, others. */
#define CL_SIZE		NCMD
#define CL_DIR		(2 * NCMD)
#define CL_MAGIC	(3 * NCMD)
#define CL_RANDOM	(3 * NCMD + 1)
#define CL_OTHERFD	(3 * NCMD + 2)
#define NCLASS		(3 * NCMD + 3)

/* Result slots: errno 0..199, 512..543 (kernel-internal values), anything else. */
#define NERR		233

enum { K_ERRNO, K_INVALID, K_FOREIGN, K_WRITEBACK, K_READONLY, K_JOBS, K_POLL, K_EXPORT, K_ECHO,
       K_INFO, K_CLEANUP, K_OPEN, K_PRIV, NCHECK };

static const char *const check_name[NCHECK] = {
	[K_ERRNO] = "fuzz_errno_allowed",
	[K_INVALID] = "fuzz_invalid_call_rejected",
	[K_FOREIGN] = "fuzz_foreign_handle_rejected",
	[K_WRITEBACK] = "fuzz_writeback_within_size",
	[K_READONLY] = "fuzz_readonly_memory_untouched",
	[K_JOBS] = "fuzz_jobs_consistent",
	[K_POLL] = "fuzz_poll_consistent",
	[K_EXPORT] = "fuzz_export_fd_sane",
	[K_ECHO] = "fuzz_echo_data",
	[K_INFO] = "fuzz_info_sane",
	[K_CLEANUP] = "fuzz_worker_cleanup",
	[K_OPEN] = "fuzz_worker_open",
	[K_PRIV] = "fuzz_privileges_dropped",
};

/* What a worker leaves for the parent (in a MAP_SHARED area). */
struct wstats {
	uint64_t res[NCLASS][NERR];
	uint64_t ioctls, iters;
	uint64_t clean[NCMD], clean_ok[NCMD];
	uint64_t fails[NCHECK];
	char first[NCHECK][256];
	uint64_t polls, pollin, opens, closes, closes_busy, dups, mmaps, mmaps_ok, jobs, resets;
	uint64_t status[NERR];
	int finished;
};

struct shared {
	uint64_t ring[RING];	/* (worker + 1) << 56 | handle */
	uint32_t ring_pos;
	int32_t resets_left;	/* valid RESET calls still allowed */
	struct wstats w[];
};

enum { P_VALID, P_UNALIGNED, P_EXACT, P_RO, P_GUARD, P_NULL, P_KERNEL, P_KERNEL2, P_HOLE, P_LOW,
       NPTR };

static const char *const ptr_name[NPTR] = {
	"valid", "unaligned", "at-guard", "read-only", "straddles-guard", "NULL", "kernel",
	"kernel2", "prot-none", "low",
};

struct region {
	uint64_t handle, len;
};

/* A buffer the file registered (METIS_IOCTL_BUF_REGISTER). */
struct reg {
	uint64_t handle, addr, len;
	uint32_t flags;
};

#define REGS		6		/* registrations tracked per file */

struct slot {
	int fd;			/* -1: unused */
	int nlive, njobs, nregs;
	struct region live[LIVE];
	uint64_t jobs[METIS_MAX_JOBS];
	struct reg regs[REGS];
};

struct xbuf {
	int fd;			/* -1: unused */
	uint32_t flags;
	uint64_t len;
};

struct xmap {
	uint8_t *p;
	size_t len;
};

struct logent {
	uint64_t iter;
	uint32_t req, sizefield;
	int res;
	int ptr;
	int dev;	/* on a device file */
};

struct wk {
	int idx;
	uint64_t seed, rng, iter;
	struct wstats *st;
	struct slot slot[SLOTS];
	struct xbuf buf[BUFS];
	struct xmap map[MAPS];
	uint64_t dead[DEAD];
	unsigned int ndead;
	uint64_t last_reaped;
	int pipe_fd[2], memfd, null_fd;
	uint8_t *arena, *ro_arg, *data, *ro_data, *hole, *ro_copy, *ents;
	struct logent log[LOG];
	unsigned int nlog, dumps;
};

/* One ioctl as built: the struct goes to `pl`, then to wherever `ptr` says. */
struct call {
	int cmd;		/* the payload's command (I_*) */
	int cls;
	int slot;		/* device file slot, or -1: another kind of fd */
	int fd;
	unsigned long req;
	uint32_t encsize;	/* _IOC_SIZE(req) */
	int ptr;
	uint8_t *arg;
	int readable;		/* arg can be read back */
	int canary;		/* 64 bytes of 0xa5 follow the struct */
	int mutated;		/* anything but a well-formed call */
	const char *bad;	/* why the call must fail, or NULL */
};

static struct shared *sh;
static size_t page_size;
static size_t arena_len;	/* argument structs (a page + ENC_MAX + room), then a guard page */
static size_t ents_len;		/* batch entries, whole pages; then a guard page */
static long opt_uid = -1, opt_gid = -1;
/*
 * --rebind PATH: the scenario unbinds and binds the card during the run and
 * creates PATH once it has stopped; the final checks wait for it.
 */
static const char *opt_rebind;
static uint8_t pl[ENC_MAX + 1] __attribute__((aligned(64)));

/* --- random numbers (splitmix64) ------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t worker_seed(uint64_t seed, int idx)
{
	uint64_t s = seed ^ ((uint64_t)(idx + 1) * 0xd1b54a32d192ed03ull);

	return splitmix(&s);
}

static uint64_t rnd(struct wk *w)
{
	return splitmix(&w->rng);
}

static uint64_t below(struct wk *w, uint64_t n)
{
	return n ? rnd(w) % n : 0;
}

static int pm(struct wk *w, unsigned int per_mille)
{
	return below(w, 1000) < per_mille;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* --- errno bookkeeping -------------------------------------------------- */

static const struct {
	int e;
	const char *name;
} enames[] = {
	{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" }, { EINTR, "EINTR" },
	{ EIO, "EIO" }, { ENXIO, "ENXIO" }, { E2BIG, "E2BIG" }, { EBADF, "EBADF" },
	{ EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" }, { EACCES, "EACCES" }, { EFAULT, "EFAULT" },
	{ EBUSY, "EBUSY" }, { EEXIST, "EEXIST" }, { EXDEV, "EXDEV" }, { ENODEV, "ENODEV" },
	{ ENOTDIR, "ENOTDIR" }, { EISDIR, "EISDIR" }, { EINVAL, "EINVAL" }, { ENFILE, "ENFILE" },
	{ EMFILE, "EMFILE" }, { ENOTTY, "ENOTTY" }, { EFBIG, "EFBIG" }, { ENOSPC, "ENOSPC" }, { EDQUOT, "EDQUOT" },
	{ ESPIPE, "ESPIPE" }, { EROFS, "EROFS" }, { EPIPE, "EPIPE" }, { EDOM, "EDOM" },
	{ ERANGE, "ERANGE" }, { EDEADLK, "EDEADLK" }, { ENOSYS, "ENOSYS" }, { ENODATA, "ENODATA" },
	{ ETIME, "ETIME" }, { EPROTO, "EPROTO" }, { EBADMSG, "EBADMSG" },
	{ EOVERFLOW, "EOVERFLOW" }, { EILSEQ, "EILSEQ" }, { EMSGSIZE, "EMSGSIZE" },
	{ EOPNOTSUPP, "EOPNOTSUPP" }, { ETIMEDOUT, "ETIMEDOUT" }, { ESTALE, "ESTALE" },
	{ ECANCELED, "ECANCELED" }, { ESHUTDOWN, "ESHUTDOWN" }, { ENOTCONN, "ENOTCONN" },
	{ EHWPOISON, "EHWPOISON" }, { EBADFD, "EBADFD" }, { EREMOTEIO, "EREMOTEIO" },
	/* Kernel-internal values that must never reach userspace. */
	{ 512, "ERESTARTSYS" }, { 513, "ERESTARTNOINTR" }, { 514, "ERESTARTNOHAND" },
	{ 515, "ENOIOCTLCMD" }, { 516, "ERESTART_RESTARTBLOCK" }, { 517, "EPROBE_DEFER" },
	{ 518, "EOPENSTALE" }, { 524, "ENOTSUPP" },
};

static const char *ename(int e)
{
	static char buf[8][16];
	static unsigned int n;
	char *b;

	if (e == 0)
		return "ok";
	for (unsigned int i = 0; i < ARRAY_SIZE(enames); i++)
		if (enames[i].e == e)
			return enames[i].name;
	b = buf[n++ % ARRAY_SIZE(buf)];
	snprintf(b, sizeof(buf[0]), "E%d", e);
	return b;
}

static int err_slot(int e)
{
	if (e >= 0 && e < 200)
		return e;
	if (e >= 512 && e < 544)
		return 200 + e - 512;
	return NERR - 1;
}

static int slot_err(int i)
{
	return i < 200 ? i : i < NERR - 1 ? 512 + i - 200 : -1;
}

/* The errnos an ioctl may fail with (EINTR/ERESTARTSYS: no worker has a signal handler). */
static int errno_allowed(int e, int cmd)
{
	switch (e) {
	case EINVAL: case EFAULT: case ENOTTY: case ENOENT: case EBUSY: case ENOSPC: case ENOMEM:
	case EPERM: case EAGAIN: case ETIMEDOUT: case EIO: case ESTALE: case EBADF: case ENODEV:
	case EOVERFLOW: case E2BIG: case EMSGSIZE: case ESHUTDOWN: case ECANCELED:
	case EOPNOTSUPP: case ENXIO: case ERANGE:
		return 1;
	case EPROTO:
		/* Documented for FW_CHANGED: the new firmware published a bad field. */
		return cmd == I_FW_CHANGED;
	case EDQUOT:
		/* Documented for MEM_ALLOC (METIS_MEM_MAX_REGIONS regions) and BUF_REGISTER
		 * (METIS_MAX_REGISTERED buffers). */
		return cmd == I_MEM_ALLOC || cmd == I_BUF_REGISTER;
	default:
		return 0;
	}
}

/* Job statuses WAIT may report (uapi: 0, ETIMEDOUT, EIO, ESHUTDOWN, ENODEV; ENOMEM tolerated). */
static int status_allowed(int32_t st)
{
	return st == 0 || st == -ETIMEDOUT || st == -EIO || st == -ESHUTDOWN || st == -ENODEV ||
	       st == -ENOMEM;
}

static const char *class_name(int cls)
{
	static char buf[4][32];
	static unsigned int n;
	char *b = buf[n++ % ARRAY_SIZE(buf)];

	if (cls < CL_SIZE)
		return cmds[cls].name;
	if (cls < CL_DIR)
		snprintf(b, sizeof(buf[0]), "%s/size", cmds[cls - CL_SIZE].name);
	else if (cls < CL_MAGIC)
		snprintf(b, sizeof(buf[0]), "%s/dir", cmds[cls - CL_DIR].name);
	else
		return cls == CL_MAGIC ? "MAGIC/other-nr" :
		       cls == CL_RANDOM ? "RANDOM" : "other-fd";
	return b;
}

static int classify(unsigned long req, int device)
{
	unsigned int nr = _IOC_NR(req);

	if (!device)
		return CL_OTHERFD;
	if (_IOC_TYPE(req) != METIS_IOCTL_MAGIC)
		return CL_RANDOM;
	if (nr >= NCMD)
		return CL_MAGIC;
	if (_IOC_DIR(req) != _IOC_DIR(cmds[nr].req))
		return CL_DIR + nr;
	return _IOC_SIZE(req) == cmds[nr].base ? (int)nr : CL_SIZE + (int)nr;
}

/* --- failures ------------------------------------------------------------- */

static void dump_log(struct wk *w)
{
	unsigned int n = w->nlog < LOG ? w->nlog : LOG;

	fprintf(stderr, "metis_fuzz[%d]: last %u ioctls (worker seed %#" PRIx64 "):\n", w->idx, n,
		w->seed);
	for (unsigned int i = w->nlog - n; i < w->nlog; i++) {
		const struct logent *l = &w->log[i % LOG];

		fprintf(stderr, "  iter %" PRIu64 " req %#010x (%s: nr %#x dir %u size %u)"
			" size field %u arg %s -> %s\n", l->iter, l->req,
			class_name(classify(l->req, l->dev)), _IOC_NR(l->req), _IOC_DIR(l->req),
			_IOC_SIZE(l->req), l->sizefield, ptr_name[l->ptr],
			l->res < 0 ? ename(-l->res) : "ok");
	}
}

static void __attribute__((format(printf, 3, 4))) fail(struct wk *w, int chk, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!w->st->fails[chk]++) {
		snprintf(w->st->first[chk], sizeof(w->st->first[chk]),
			 "worker %d iteration %" PRIu64 ": %s", w->idx, w->iter, msg);
		if (w->dumps < 4 && w->nlog) {
			w->dumps++;
			fprintf(stderr, "metis_fuzz[%d] %s: %s (iteration %" PRIu64 ")\n", w->idx,
				check_name[chk], msg, w->iter);
			dump_log(w);
			return;
		}
	}
	if (w->st->fails[chk] <= 3)
		fprintf(stderr, "metis_fuzz[%d] %s: %s (iteration %" PRIu64 ")\n", w->idx,
			check_name[chk], msg, w->iter);
}

/* --- what a worker holds --------------------------------------------------- */

static struct region *live_find(struct slot *s, uint64_t h)
{
	for (int i = 0; i < s->nlive; i++)
		if (s->live[i].handle == h)
			return &s->live[i];
	return NULL;
}

static int live_slot(struct wk *w, uint64_t h)
{
	for (int i = 0; i < SLOTS; i++)
		if (w->slot[i].fd >= 0 && live_find(&w->slot[i], h))
			return i;
	return -1;
}

static struct region *pick_live(struct wk *w, struct slot *s)
{
	return s->nlive ? &s->live[below(w, s->nlive)] : NULL;
}

static void remember_dead(struct wk *w, uint64_t h)
{
	w->dead[w->ndead++ % DEAD] = h;
}

static void live_remove(struct wk *w, struct slot *s, uint64_t h)
{
	struct region *r = live_find(s, h);

	if (!r)
		return;
	remember_dead(w, h);
	*r = s->live[--s->nlive];
}

static struct reg *reg_find(struct slot *s, uint64_t h)
{
	for (int i = 0; i < s->nregs; i++)
		if (s->regs[i].handle == h)
			return &s->regs[i];
	return NULL;
}

/* A registration of the file that holds [a, a + len) for a job of `dir`. */
static struct reg *reg_holding(struct slot *s, uint64_t a, uint64_t len, uint32_t dir)
{
	uint64_t end;

	if (__builtin_add_overflow(a, len, &end))
		return NULL;
	for (int i = 0; i < s->nregs; i++) {
		struct reg *r = &s->regs[i];

		if ((r->flags & dir) && a >= r->addr && end <= r->addr + r->len)
			return r;
	}
	return NULL;
}

static int job_index(struct slot *s, uint64_t id)
{
	for (int i = 0; i < s->njobs; i++)
		if (s->jobs[i] == id)
			return i;
	return -1;
}

static int jobs_anywhere(struct wk *w)
{
	int n = 0;

	for (int i = 0; i < SLOTS; i++)
		if (w->slot[i].fd >= 0)
			n += w->slot[i].njobs;
	return n;
}

static struct xbuf *buf_by_fd(struct wk *w, int fd)
{
	for (int i = 0; i < BUFS; i++)
		if (w->buf[i].fd >= 0 && w->buf[i].fd == fd)
			return &w->buf[i];
	return NULL;
}

static struct xbuf *pick_buf(struct wk *w)
{
	int n = 0, idx[BUFS];

	for (int i = 0; i < BUFS; i++)
		if (w->buf[i].fd >= 0)
			idx[n++] = i;
	return n ? &w->buf[idx[below(w, n)]] : NULL;
}

static int pick_slot(struct wk *w)
{
	int n = 0, idx[SLOTS];

	for (int i = 0; i < SLOTS; i++)
		if (w->slot[i].fd >= 0)
			idx[n++] = i;
	return n ? idx[below(w, n)] : -1;
}

static void ring_publish(struct wk *w, uint64_t h)
{
	uint32_t pos = __atomic_fetch_add(&sh->ring_pos, 1, __ATOMIC_RELAXED);

	if (h < 1ull << 56)
		__atomic_store_n(&sh->ring[pos % RING], (uint64_t)(w->idx + 1) << 56 | h,
				 __ATOMIC_RELAXED);
}

/* A handle value this file does not own: another worker's, another file's, freed, or made up. */
static uint64_t foreign(struct wk *w, struct slot *s)
{
	uint64_t h = 0;

	for (int tries = 0; tries < 8; tries++) {
		switch (below(w, 6)) {
		case 0:
		case 1: {
			uint64_t e = __atomic_load_n(&sh->ring[below(w, RING)], __ATOMIC_RELAXED);

			h = e & ((1ull << 56) - 1);
			break;
		}
		case 2: {
			struct slot *o = &w->slot[below(w, SLOTS)];

			h = o->fd >= 0 && o->nlive ? o->live[below(w, o->nlive)].handle : 0;
			break;
		}
		case 3:
			h = w->ndead ? w->dead[below(w, min64(w->ndead, DEAD))] : 0;
			break;
		case 4:
			h = s->nlive ? s->live[0].handle + 1 + below(w, 8) : 1 + below(w, 64);
			break;
		default: {
			static const uint64_t odd[] = { 0, 1, UINT64_MAX, 1ull << 63, 0xffffffff };

			h = pm(w, 500) ? odd[below(w, ARRAY_SIZE(odd))] : rnd(w);
			break;
		}
		}
		if (!live_find(s, h))
			return h;
	}
	return UINT64_MAX - below(w, 16) * 7919;	/* not live: handles count up from 1 */
}

/* --- values ---------------------------------------------------------------- */

static uint64_t wild64(struct wk *w)
{
	static const uint64_t v[] = {
		0, 1, 2, 4095, 4096, 4097, 0xffffffffull, 1ull << 32, METIS_DMA_MAX_LENGTH,
		METIS_DMA_MAX_LENGTH + 1, METIS_MEM_MAX_LENGTH, METIS_MEM_MAX_LENGTH + 1,
		1ull << 63, UINT64_MAX - 4095, UINT64_MAX - 1, UINT64_MAX,
	};

	if (pm(w, 250))
		return rnd(w) >> below(w, 64);
	return v[below(w, ARRAY_SIZE(v))];
}

static uint32_t pick_timeout(struct wk *w)
{
	uint64_t k = below(w, 100);

	if (k < 75)
		return 20 + below(w, 181);	/* 20..200 ms */
	if (k < 92)
		return 0;			/* the driver's default */
	return 1 + below(w, 19);
}

static uint32_t wild_timeout(struct wk *w)
{
	static const uint32_t v[] = { 0, 1, 2, 600000, 600001, 0x7fffffff, 0xffffffff };

	return v[below(w, ARRAY_SIZE(v))];
}

/* A DMA length: mostly one page or less, else up to 64 KiB, rarely up to the DMA buffer. */
static uint64_t pick_len(struct wk *w, uint64_t max)
{
	uint64_t cap = pm(w, 450) ? 4096 : pm(w, 930) ? 65536 : DATA;

	cap = min64(cap, max);
	return cap ? 1 + below(w, cap) : 1;
}

static uint64_t pick_region_len(struct wk *w)
{
	uint64_t k = below(w, 100);

	if (k < 60)
		return 1 + below(w, 16384);
	if (k < 92)
		return 1 + below(w, 256 << 10);
	return 1 + below(w, 4 << 20);
}

static uint64_t data_addr(struct wk *w, uint64_t len)
{
	uint64_t off = below(w, DATA - min64(len, DATA) + 1);

	if (pm(w, 600))
		off &= ~63ull;
	return (uintptr_t)(w->data + off);
}

/* A user buffer address that is not plain memory of this worker (or is read-only). */
static uint64_t odd_addr(struct wk *w, uint64_t len)
{
	switch (below(w, 11)) {
	case 0:
		return 0;
	case 1:
		return KADDR1 + below(w, 4096);
	case 2:
		return KADDR2;
	case 3:
		return (uintptr_t)(w->hole + below(w, HOLE));
	case 4:
		return 0x1000 + below(w, 0x1000);
	case 5:	/* runs into the guard page after the DMA buffer */
		return (uintptr_t)(w->data + DATA -
				   (len > 1 ? 1 + below(w, min64(len - 1, DATA)) : 0));
	case 6:
		return (uintptr_t)(w->ro_data + below(w, RO_DATA - min64(len, RO_DATA) + 1));
	case 7:
		return UINT64_MAX - below(w, 4096);
	case 8:	/* random, but never user memory (it could be this worker's own) */
		return rnd(w) | 1ull << 63;
	case 9:
		for (int i = 0; i < MAPS; i++)
			if (w->map[i].p)
				return (uintptr_t)(w->map[i].p + below(w, w->map[i].len));
		return (uintptr_t)w->data;
	default:
		return (uintptr_t)(w->data + DATA);
	}
}

/* An fd that is not a dma-buf. */
static int odd_fd(struct wk *w, struct slot *s)
{
	switch (below(w, 8)) {
	case 0:
		return w->pipe_fd[below(w, 2)];
	case 1:
		return w->memfd;
	case 2:
		return w->null_fd;
	case 3:
		return s->fd;
	case 4:
		return CLOSED_FD + (int)below(w, 20);
	case 5:
		return -1;
	case 6:
		return INT32_MIN;
	default:
		return (int)rnd(w);
	}
}

static uint32_t bad_dma_flags(struct wk *w, uint32_t flags)
{
	switch (below(w, 4)) {
	case 0:
		return flags & METIS_DMA_ASYNC;	/* no direction */
	case 1:
		return flags | METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE;
	case 2:
		return flags | 1u << (3 + below(w, 29));
	default:
		return (uint32_t)rnd(w);
	}
}

/* --- the model: why a call must fail (NULL: it may succeed) ---------------- */

static int overlaps(uint64_t a, uint64_t end, const void *p, size_t len)
{
	uint64_t s = (uintptr_t)p;

	return a < s + len && end > s;
}

static const char *uaddr_model(struct wk *w, uint64_t a, uint64_t len, int card_writes)
{
	uint64_t end;

	if (__builtin_add_overflow(a, len, &end))
		return "user_addr + length overflows";
	if (end > 1ull << 56)
		return "user buffer reaches kernel addresses";
	if (end <= 0x10000)
		return "user buffer in the unmapped low 64 KiB";
	if (overlaps(a, end, w->hole, HOLE))
		return "user buffer in PROT_NONE memory";
	if (overlaps(a, end, w->data + DATA, page_size))
		return "user buffer runs into a guard page";
	if (overlaps(a, end, w->arena + arena_len, page_size))
		return "user buffer runs into a guard page";
	if (card_writes && overlaps(a, end, w->ro_data, RO_DATA))
		return "the card would write read-only memory";
	if (card_writes && overlaps(a, end, w->ro_arg, RO_ARG))
		return "the card would write read-only memory";
	return NULL;
}

static const char *bounds_model(struct region *r, uint64_t off, uint64_t len)
{
	if (!r)
		return "handle not allocated by this file";
	if (off > r->len || len > r->len - off)
		return "range past the region's end";
	return NULL;
}

static const char *dma_flags_model(uint32_t flags)
{
	uint32_t dir = flags & (METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE);

	if (flags & ~(METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE | METIS_DMA_ASYNC))
		return "unknown DMA flag";
	if (dir != METIS_DMA_TO_DEVICE && dir != METIS_DMA_FROM_DEVICE)
		return "not exactly one DMA direction";
	return NULL;
}

static int bytes_set(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 1;
	return 0;
}

static const char *cmd_model(struct slot *s, const struct metis_cmd *m)
{
	const char *why;

	if (m->flags)
		return "unknown CMD flag";
	switch (m->opcode) {
	case METIS_CMD_ECHO:
		if (m->echo_len > METIS_ECHO_MAX)
			return "echo_len above METIS_ECHO_MAX";
		if (m->op || m->length || m->arg || m->handle_in || m->offset_in || m->handle_out ||
		    m->offset_out)
			return "ECHO with a field it does not use set";
		if (bytes_set(m->echo + m->echo_len, METIS_ECHO_MAX - m->echo_len))
			return "echo bytes past echo_len set";
		return NULL;
	case METIS_CMD_CHECKSUM:
	case METIS_CMD_FILL:
		if (m->op || m->echo_len || bytes_set(m->echo, METIS_ECHO_MAX) || m->handle_out ||
		    m->offset_out || (m->opcode == METIS_CMD_CHECKSUM && m->arg))
			return "CHECKSUM/FILL with a field it does not use set";
		return bounds_model(live_find(s, m->handle_in), m->offset_in, m->length);
	case METIS_CMD_RUN:
		if (m->op > METIS_RUN_ADD_INDEX)
			return "unknown RUN op";
		if (m->echo_len || bytes_set(m->echo, METIS_ECHO_MAX))
			return "RUN with echo bytes set";
		why = bounds_model(live_find(s, m->handle_in), m->offset_in, m->length);
		if (why)
			return why;
		return bounds_model(live_find(s, m->handle_out), m->offset_out, m->length);
	default:
		return "unknown opcode";
	}
}

/* Why one entry of a batch must fail the batch (NULL: it may run). */
static const char *entry_model(struct wk *w, struct slot *s, const uint8_t *p, uint32_t esz)
{
	struct metis_dma d;
	uint32_t dir;
	const char *why;

	memcpy(&d, p, sizeof(d));
	dir = d.flags & (METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE);
	if (d.size != esz)
		return "entry size field differs from entry_size";
	if (bytes_set(p + sizeof(d), esz - sizeof(d)))
		return "non-zero bytes past the known entry";
	if (d.flags & ~(METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE | METIS_DMA_REGISTERED))
		return "entry flag other than a direction and REGISTERED";
	if (dir != METIS_DMA_TO_DEVICE && dir != METIS_DMA_FROM_DEVICE)
		return "entry without exactly one direction";
	if (d.reserved || d.timeout_ms || d.job_id)
		return "entry reserved, timeout_ms or job_id set";
	if (!d.length || d.length > METIS_DMA_MAX_LENGTH)
		return "entry length out of range";
	why = bounds_model(live_find(s, d.handle), d.offset, d.length);
	if (why)
		return why;
	if (d.flags & METIS_DMA_REGISTERED)
		return reg_holding(s, d.user_addr, d.length, dir) ? NULL :
		       "no buffer this file registered holds the entry's range for its direction";
	return uaddr_model(w, d.user_addr, d.length, dir == METIS_DMA_FROM_DEVICE);
}

static const char *batch_model(struct wk *w, struct slot *s, const struct metis_dma_batch *b)
{
	uint64_t total;

	if (b->flags & ~METIS_DMA_ASYNC)
		return "unknown batch flag";
	if (b->reserved)
		return "reserved field set";
	if (!b->count || b->count > METIS_MAX_BATCH)
		return "batch count out of range";
	if (b->entry_size < sizeof(struct metis_dma) || b->entry_size > page_size)
		return "entry_size out of range";
	total = (uint64_t)b->count * b->entry_size;
	/* The builder points entries only at its own array, or at memory that can't be read. */
	if (b->entries < (uintptr_t)w->ents || b->entries + total > (uintptr_t)w->ents + ents_len)
		return "entries not readable";
	for (uint32_t i = 0; i < b->count; i++) {
		const char *why = entry_model(w, s, (const uint8_t *)(uintptr_t)b->entries +
					      (size_t)i * b->entry_size, b->entry_size);

		if (why)
			return why;
	}
	return NULL;
}

static int writes_back(int cmd)
{
	const uint32_t flags = ((const uint32_t *)pl)[1];

	switch (cmd) {
	case I_INFO: case I_MEM_ALLOC: case I_WAIT: case I_CMD: case I_BUF_EXPORT:
	case I_BUF_REGISTER:
		return 1;
	case I_DMA: case I_DMA_BUF: case I_DMA_BATCH:
		return !!(flags & METIS_DMA_ASYNC);	/* only an async job publishes its id */
	default:
		return 0;
	}
}

static const char *model(struct wk *w, struct call *c)
{
	unsigned int nr = _IOC_NR(c->req);
	struct slot *s;
	uint32_t base, sizefield = ((const uint32_t *)pl)[0], flags = ((const uint32_t *)pl)[1];

	if (c->slot < 0)
		return "metis ioctl on a file that is no metis device";
	if (_IOC_TYPE(c->req) != METIS_IOCTL_MAGIC)
		return NULL;	/* not ours: whatever the VFS does with it */
	if (nr >= NCMD)
		return "unknown ioctl number";
	if (_IOC_DIR(c->req) != _IOC_DIR(cmds[nr].req))
		return "wrong direction bits";
	base = cmds[nr].base;
	if (c->encsize < base)
		return "encoded size below the version-1 struct";
	if (c->encsize > page_size)
		return "encoded size above PAGE_SIZE";
	if (sizefield != c->encsize)
		return "size field differs from the encoded size";
	if (bytes_set(pl + base, c->encsize - base))
		return "non-zero bytes past the known struct";
	if (c->ptr >= P_GUARD)
		return "argument not readable";
	if (c->ptr == P_RO && writes_back(nr))
		return "read-only argument of a call that writes it back";
	s = &w->slot[c->slot];
	switch (nr) {
	case I_INFO:
	case I_FW_CHANGED:
		return flags ? "unknown flag" : NULL;
	case I_MEM_ALLOC: {
		const struct metis_mem_alloc *a = (const void *)pl;

		if (flags)
			return "unknown flag";
		if (!a->length || a->length > METIS_MEM_MAX_LENGTH)
			return "allocation length out of range";
		return NULL;
	}
	case I_MEM_FREE: {
		const struct metis_mem_free *f = (const void *)pl;

		if (flags)
			return "unknown flag";
		return live_find(s, f->handle) ? NULL : "handle not allocated by this file";
	}
	case I_DMA: {
		const struct metis_dma *d = (const void *)pl;
		const char *why = dma_flags_model(flags & ~METIS_DMA_REGISTERED);

		if (why)
			return why;
		if (d->reserved)
			return "reserved field set";
		if (!d->length || d->length > METIS_DMA_MAX_LENGTH)
			return "DMA length out of range";
		why = bounds_model(live_find(s, d->handle), d->offset, d->length);
		if (why)
			return why;
		/* Registered pages are pinned already: where they are mapped now does not matter. */
		if (flags & METIS_DMA_REGISTERED)
			return reg_holding(s, d->user_addr, d->length,
					   flags & (METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE)) ?
			       NULL : "no buffer this file registered holds the range for the direction";
		return uaddr_model(w, d->user_addr, d->length, !!(flags & METIS_DMA_FROM_DEVICE));
	}
	case I_DMA_BATCH:
		return batch_model(w, s, (const void *)pl);
	case I_BUF_REGISTER: {
		const struct metis_buf_register *a = (const void *)pl;

		if (flags & ~(METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE))
			return "unknown flag";
		if (!flags)
			return "no direction";
		if (!a->length || a->length > METIS_DMA_MAX_LENGTH)
			return "registration length out of range";
		return uaddr_model(w, a->user_addr, a->length, !!(flags & METIS_DMA_FROM_DEVICE));
	}
	case I_BUF_UNREGISTER: {
		const struct metis_buf_unregister *u = (const void *)pl;

		if (flags)
			return "unknown flag";
		return reg_find(s, u->handle) ? NULL : "handle not registered by this file";
	}
	case I_WAIT: {
		const struct metis_wait *q = (const void *)pl;

		if (flags)
			return "unknown flag";
		return job_index(s, q->job_id) < 0 ? "no such job on this file" : NULL;
	}
	case I_CMD:
		return cmd_model(s, (const void *)pl);
	case I_RESET:
		return flags & ~METIS_RESET_RELOAD_FIRMWARE ? "unknown flag" : NULL;
	case I_BUF_EXPORT: {
		const struct metis_buf_export *e = (const void *)pl;

		if (flags & ~(METIS_BUF_READ | METIS_BUF_WRITE))
			return "unknown flag";
		if (!flags)
			return "neither READ nor WRITE";
		if (e->reserved)
			return "reserved field set";
		if (!e->length || e->length > METIS_BUF_MAX_LENGTH)
			return "buffer length out of range";
		return NULL;
	}
	case I_DMA_BUF: {
		const struct metis_dma_buf *d = (const void *)pl;
		const char *why = dma_flags_model(flags);
		struct xbuf *b;

		if (why)
			return why;
		if (!d->length || d->length > METIS_DMA_MAX_LENGTH)
			return "DMA length out of range";
		why = bounds_model(live_find(s, d->handle), d->offset, d->length);
		if (why)
			return why;
		/* Every dma-buf this process holds is one it exported. */
		b = buf_by_fd(w, d->fd);
		if (!b)
			return "fd is not a dma-buf";
		if (d->buf_offset > b->len || d->length > b->len - d->buf_offset)
			return "range past the dma-buf's end";
		return NULL;
	}
	}
	return NULL;
}

/* --- building calls -------------------------------------------------------- */

static void build_info(struct wk *w, struct call *c, int mut)
{
	struct metis_info *i = (struct metis_info *)pl;

	i->size = sizeof(*i);
	if (mut) {
		c->mutated = 1;
		if (pm(w, 500))
			i->flags = 1u << below(w, 32);
		else	/* output fields hold garbage: they are not input */
			for (size_t k = 8; k < sizeof(*i); k++)
				pl[k] = (uint8_t)rnd(w);
	}
}

static void build_alloc(struct wk *w, struct call *c, int mut)
{
	static const uint64_t wild[] = {
		0, METIS_MEM_MAX_LENGTH + 1, METIS_MEM_MAX_LENGTH + 4096, UINT64_MAX,
		UINT64_MAX - 4095, UINT64_MAX - 100, 1ull << 40, 1ull << 63, METIS_MEM_MAX_LENGTH,
		64 << 20,
	};
	struct metis_mem_alloc *a = (struct metis_mem_alloc *)pl;

	a->size = sizeof(*a);
	a->length = pick_region_len(w);
	if (mut) {
		c->mutated = 1;
		switch (below(w, 3)) {
		case 0:
			a->length = wild[below(w, ARRAY_SIZE(wild))];
			break;
		case 1:
			a->flags = 1u << below(w, 32);
			break;
		default:
			a->handle = rnd(w);
			a->dev_addr = rnd(w);
			break;
		}
	}
}

static void build_free(struct wk *w, struct call *c, struct slot *s, int mut)
{
	struct metis_mem_free *f = (struct metis_mem_free *)pl;
	struct region *r = pick_live(w, s);

	f->size = sizeof(*f);
	f->handle = r ? r->handle : foreign(w, s);
	if (!r)
		c->mutated = 1;
	if (mut) {
		c->mutated = 1;
		switch (below(w, 3)) {
		case 0:
			f->handle = foreign(w, s);
			break;
		case 1:
			f->handle = wild64(w);
			break;
		default:
			f->flags = 1u << below(w, 32);
			break;
		}
	}
}

static void build_dma(struct wk *w, struct call *c, struct slot *s, int mut)
{
	struct metis_dma *d = (struct metis_dma *)pl;
	struct region *r = pick_live(w, s);
	uint64_t rl = r ? r->len : 4096;

	d->size = sizeof(*d);
	d->flags = pm(w, 500) ? METIS_DMA_TO_DEVICE : METIS_DMA_FROM_DEVICE;
	if (s->njobs < METIS_MAX_JOBS - 4 && pm(w, 350))
		d->flags |= METIS_DMA_ASYNC;
	d->length = pick_len(w, rl);
	d->offset = below(w, rl - d->length + 1);
	d->handle = r ? r->handle : foreign(w, s);
	d->user_addr = data_addr(w, d->length);
	d->timeout_ms = pick_timeout(w);
	/* Inside one of the file's registered buffers, for a direction it allows. */
	if (s->nregs && pm(w, 250)) {
		struct reg *g = &s->regs[below(w, s->nregs)];

		d->flags = (d->flags & METIS_DMA_ASYNC) | METIS_DMA_REGISTERED |
			   ((g->flags & METIS_DMA_TO_DEVICE) && (!(g->flags & METIS_DMA_FROM_DEVICE) ||
			    pm(w, 500)) ? METIS_DMA_TO_DEVICE : METIS_DMA_FROM_DEVICE);
		d->length = 1 + below(w, min64(g->len, rl));
		d->offset = below(w, rl - d->length + 1);
		d->user_addr = g->addr + below(w, g->len - d->length + 1);
	}
	if (!r)
		c->mutated = 1;
	for (int n = mut ? 1 + (int)below(w, 2) : 0; n > 0; n--) {
		c->mutated = 1;
		switch (below(w, 13)) {
		case 0:
			d->length = wild64(w);
			break;
		case 1:	/* one byte past the end */
			d->length = rl - d->offset + 1;
			break;
		case 2:
			d->offset = pm(w, 500) ? rl - below(w, 2) : wild64(w);
			break;
		case 3:	/* offset + length wraps */
			d->offset = UINT64_MAX - below(w, d->length);
			break;
		case 4:
			d->handle = foreign(w, s);
			break;
		case 5:
		case 6:
			d->user_addr = odd_addr(w, d->length);
			break;
		case 7:
			d->flags = bad_dma_flags(w, d->flags);
			break;
		case 8:
			d->reserved = (uint32_t)rnd(w) | 1;
			break;
		case 9:
			d->timeout_ms = wild_timeout(w);
			break;
		case 10:
			d->job_id = rnd(w);	/* output only */
			break;
		case 11:
			d->flags ^= METIS_DMA_ASYNC;
			break;
		default:
			d->length = 0;
			break;
		}
	}
}

/*
 * A well-formed batch entry at `p` (a region of the file's, a buffer of the worker's):
 * entry `i` in its own 16 KiB of the DMA buffer, so that a batch never maps one
 * cacheline more often than DMA-API debugging allows (7 overlapping mappings).
 */
static void build_entry(struct wk *w, struct slot *s, uint8_t *p, uint32_t esz, uint32_t i)
{
	struct metis_dma d = { .size = esz };
	struct region *r = pick_live(w, s);
	uint64_t rl = r ? r->len : 4096;

	d.flags = pm(w, 500) ? METIS_DMA_TO_DEVICE : METIS_DMA_FROM_DEVICE;
	/* Small: a batch holds up to 64 of them. */
	d.length = pick_len(w, min64(rl, 16384));
	d.offset = below(w, rl - d.length + 1);
	d.handle = r ? r->handle : foreign(w, s);
	d.user_addr = (uintptr_t)(w->data + (size_t)i * 16384 + below(w, 16384 - d.length + 1));
	if (s->nregs && pm(w, 250)) {
		struct reg *g = &s->regs[below(w, s->nregs)];

		d.flags = METIS_DMA_REGISTERED |
			  ((g->flags & METIS_DMA_TO_DEVICE) && (!(g->flags & METIS_DMA_FROM_DEVICE) ||
			   pm(w, 500)) ? METIS_DMA_TO_DEVICE : METIS_DMA_FROM_DEVICE);
		d.length = 1 + below(w, min64(min64(g->len, rl), 16384));
		d.offset = below(w, rl - d.length + 1);
		d.user_addr = g->addr + below(w, g->len - d.length + 1);
	}
	memset(p, 0, esz);
	memcpy(p, &d, sizeof(d));
}

static void mutate_entry(struct wk *w, struct slot *s, uint8_t *p, uint32_t esz)
{
	struct metis_dma d;

	memcpy(&d, p, sizeof(d));
	switch (below(w, 12)) {
	case 0:
		d.size = pm(w, 500) ? esz + 8 : (uint32_t)rnd(w);
		break;
	case 1:
		d.flags = pm(w, 500) ? d.flags | METIS_DMA_ASYNC : bad_dma_flags(w, d.flags);
		break;
	case 2:
		d.timeout_ms = 1 + (uint32_t)below(w, 1000);
		break;
	case 3:
		d.job_id = rnd(w) | 1;
		break;
	case 4:
		d.reserved = (uint32_t)rnd(w) | 1;
		break;
	case 5:
		d.length = pm(w, 500) ? 0 : wild64(w);
		break;
	case 6:
		d.offset = wild64(w);
		break;
	case 7:
		d.handle = foreign(w, s);
		break;
	case 8:
	case 9:
		d.user_addr = odd_addr(w, d.length);
		break;
	case 10:
		d.flags ^= METIS_DMA_REGISTERED;
		break;
	default:
		if (esz > sizeof(d)) {
			p[sizeof(d) + below(w, esz - sizeof(d))] = 1 + below(w, 255);
			return;
		}
		d.length = 0;
		break;
	}
	memcpy(p, &d, sizeof(d));
}

static void build_batch(struct wk *w, struct call *c, struct slot *s, int mut)
{
	struct metis_dma_batch *b = (struct metis_dma_batch *)pl;
	uint32_t n = 1 + (uint32_t)below(w, pm(w, 800) ? 8 : METIS_MAX_BATCH);
	uint32_t esz = sizeof(struct metis_dma) + (pm(w, 100) ? 8 * (1 + below(w, 8)) : 0);

	b->size = sizeof(*b);
	if (s->njobs < METIS_MAX_JOBS - 4 && pm(w, 350))
		b->flags = METIS_DMA_ASYNC;
	b->timeout_ms = pick_timeout(w);
	b->count = n;
	b->entry_size = esz;
	b->entries = (uintptr_t)w->ents;
	for (uint32_t i = 0; i < n; i++)
		build_entry(w, s, w->ents + (size_t)i * esz, esz, i);
	if (!s->nlive)
		c->mutated = 1;
	for (int k = mut ? 1 + (int)below(w, 2) : 0; k > 0; k--) {
		c->mutated = 1;
		switch (below(w, 9)) {
		case 0:
			b->count = pm(w, 500) ? 0 : pm(w, 500) ? METIS_MAX_BATCH + 1 : (uint32_t)rnd(w);
			break;
		case 1:
			b->entry_size = pm(w, 500) ? (uint32_t)below(w, sizeof(struct metis_dma)) :
					pm(w, 500) ? (uint32_t)page_size + 8 : (uint32_t)rnd(w);
			break;
		case 2:
			b->reserved = (uint32_t)rnd(w) | 1;
			break;
		case 3:
			b->flags |= pm(w, 500) ? METIS_DMA_TO_DEVICE : 1u << (3 + below(w, 29));
			break;
		case 4: {	/* entries that can't be read, or run into the guard page */
			static const uint64_t odd[] = { 0, KADDR1, KADDR2, 0x1000 };

			b->entries = pm(w, 400) ? odd[below(w, ARRAY_SIZE(odd))] :
				     pm(w, 500) ? (uintptr_t)(w->hole + below(w, HOLE)) :
				     (uintptr_t)(w->ents + ents_len - below(w, (uint64_t)n * esz) - 1 +
						 (n * esz > 1 ? 0 : 1));
			break;
		}
		case 5:
			b->job_id = rnd(w);	/* output only */
			break;
		case 6:
			b->timeout_ms = wild_timeout(w);
			break;
		default:
			mutate_entry(w, s, w->ents + (size_t)below(w, n) * esz, esz);
			break;
		}
	}
}

static void build_register(struct wk *w, struct call *c, int mut)
{
	struct metis_buf_register *a = (struct metis_buf_register *)pl;

	a->size = sizeof(*a);
	a->flags = pm(w, 400) ? METIS_DMA_TO_DEVICE :
		   pm(w, 500) ? METIS_DMA_FROM_DEVICE : METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE;
	a->length = pick_len(w, DATA);
	a->user_addr = data_addr(w, a->length);
	if (mut) {
		c->mutated = 1;
		switch (below(w, 5)) {
		case 0:
			a->length = pm(w, 500) ? 0 : wild64(w);
			break;
		case 1:
			a->user_addr = odd_addr(w, a->length);
			break;
		case 2:
			a->flags = pm(w, 300) ? 0 : (uint32_t)rnd(w);
			break;
		case 3:
			a->handle = rnd(w);	/* output only */
			break;
		default:	/* the card would write read-only memory */
			a->flags |= METIS_DMA_FROM_DEVICE;
			a->user_addr = (uintptr_t)w->ro_data;
			a->length = 1 + below(w, RO_DATA);
			break;
		}
	}
}

static void build_unregister(struct wk *w, struct call *c, struct slot *s, int mut)
{
	struct metis_buf_unregister *u = (struct metis_buf_unregister *)pl;

	u->size = sizeof(*u);
	if (s->nregs && pm(w, 850)) {
		u->handle = s->regs[below(w, s->nregs)].handle;
	} else {
		c->mutated = 1;
		u->handle = pm(w, 500) ? below(w, 64) : wild64(w);
	}
	if (mut) {
		c->mutated = 1;
		u->flags = 1u << below(w, 32);
	}
}

static void build_wait(struct wk *w, struct call *c, struct slot *s, int mut)
{
	static const uint32_t wild_to[] = { 0, 1, 0xffffffff };
	struct metis_wait *q = (struct metis_wait *)pl;

	q->size = sizeof(*q);
	if (s->njobs && pm(w, 900)) {
		q->job_id = s->jobs[below(w, s->njobs)];
		q->timeout_ms = pm(w, 850) ? 1 + below(w, 20) : pm(w, 850) ? 20 + below(w, 181) : 0;
	} else {
		c->mutated = 1;
		if (pm(w, 300))
			q->job_id = w->last_reaped;
		else if (pm(w, 300))	/* ids not handed out yet */
			q->job_id = w->last_reaped + 1 + below(w, 4);
		else
			q->job_id = wild64(w);
		q->timeout_ms = 1 + below(w, 20);
	}
	if (mut) {
		c->mutated = 1;
		switch (below(w, 4)) {
		case 0:
			q->job_id = wild64(w);
			break;
		case 1:
			q->flags = 1u << below(w, 32);
			break;
		case 2:	/* 0 waits without limit: only for a job that will end */
			q->timeout_ms = wild_to[below(w, ARRAY_SIZE(wild_to))];
			if (job_index(s, q->job_id) < 0 && q->timeout_ms != 1)
				q->job_id = UINT64_MAX;
			break;
		default:
			q->status = (int32_t)rnd(w);	/* output only */
			break;
		}
	}
}

static void build_cmd(struct wk *w, struct call *c, struct slot *s, int mut)
{
	struct metis_cmd *m = (struct metis_cmd *)pl;
	struct region *a = pick_live(w, s), *b = pick_live(w, s);
	uint64_t k = below(w, 100);

	m->size = sizeof(*m);
	m->timeout_ms = pick_timeout(w);
	if (!a || k < 30) {
		m->opcode = METIS_CMD_ECHO;
		m->echo_len = below(w, METIS_ECHO_MAX + 1);
		for (uint32_t i = 0; i < m->echo_len; i++)
			m->echo[i] = (uint8_t)rnd(w);
	} else if (k < 75) {
		m->opcode = k < 55 ? METIS_CMD_CHECKSUM : METIS_CMD_FILL;
		m->length = pick_len(w, min64(a->len, 65536));
		m->handle_in = a->handle;
		m->offset_in = below(w, a->len - m->length + 1);
		if (m->opcode == METIS_CMD_FILL)
			m->arg = (uint32_t)rnd(w);
	} else {
		m->opcode = METIS_CMD_RUN;
		m->op = below(w, 4);
		m->arg = (uint32_t)rnd(w);
		m->length = pick_len(w, min64(min64(a->len, b->len), 65536));
		m->handle_in = a->handle;
		m->offset_in = below(w, a->len - m->length + 1);
		m->handle_out = b->handle;
		m->offset_out = below(w, b->len - m->length + 1);
	}
	for (int n = mut ? 1 + (int)below(w, 2) : 0; n > 0; n--) {
		static const uint32_t ops[] = { 0, 1, 6, 7, 99, 0xffffffff };

		c->mutated = 1;
		switch (below(w, 11)) {
		case 0:
			m->opcode = pm(w, 700) ? ops[below(w, ARRAY_SIZE(ops))] : (uint32_t)rnd(w);
			break;
		case 1:
			m->op = m->opcode == METIS_CMD_RUN ? 4 + below(w, 1000) : 1 + below(w, 4);
			break;
		case 2:	/* a field the opcode does not use */
			switch (m->opcode == METIS_CMD_ECHO ? below(w, 6) : 3 + below(w, 4)) {
			case 0:
				m->handle_in = a ? a->handle : 1;
				break;
			case 1:
				m->length = 1 + below(w, 4096);
				break;
			case 2:
				m->offset_in = 1 + below(w, 4096);
				break;
			case 3:
				if (m->opcode == METIS_CMD_RUN)
					m->echo_len = 1 + below(w, 16);
				else
					m->handle_out = b ? b->handle : 1;
				break;
			case 4:
				if (m->opcode == METIS_CMD_RUN)
					m->echo[below(w, METIS_ECHO_MAX)] = 1 + below(w, 255);
				else
					m->offset_out = 1 + below(w, 4096);
				break;
			default:
				m->arg = 1 + (uint32_t)below(w, 0xfffffffe);
				break;
			}
			break;
		case 3:
			m->echo_len = METIS_ECHO_MAX + 1 + below(w, 1000);
			break;
		case 4:	/* an echo byte past echo_len */
			if (m->opcode == METIS_CMD_ECHO && m->echo_len < METIS_ECHO_MAX)
				m->echo[m->echo_len +
					below(w, METIS_ECHO_MAX - m->echo_len)] = 0x5a;
			else
				m->echo[below(w, METIS_ECHO_MAX)] = 0x5a;
			break;
		case 5:
			m->length = pm(w, 500) ? wild64(w) : (a ? a->len - m->offset_in + 1 : 4097);
			break;
		case 6:
			if (pm(w, 500))
				m->offset_in = wild64(w);
			else
				m->offset_out = wild64(w);
			break;
		case 7:
			if (pm(w, 500))
				m->handle_in = foreign(w, s);
			else
				m->handle_out = foreign(w, s);
			break;
		case 8:
			m->timeout_ms = wild_timeout(w);
			break;
		case 9:
			m->result = (uint32_t)rnd(w);	/* output only */
			break;
		default:
			m->flags = 1u << below(w, 32);
			break;
		}
	}
}

static void build_reset(struct wk *w, struct call *c, int mut)
{
	struct metis_reset *r = (struct metis_reset *)pl;

	r->size = sizeof(*r);
	r->flags = pm(w, 200) ? METIS_RESET_RELOAD_FIRMWARE : 0;
	/* A reset that may happen costs every worker its regions and jobs: a few per run. */
	if (mut || __atomic_sub_fetch(&sh->resets_left, 1, __ATOMIC_RELAXED) < 0) {
		c->mutated = 1;
		r->flags |= 1u << (1 + below(w, 31));
	}
}

static void build_export(struct wk *w, struct call *c, int mut)
{
	static const uint64_t wild[] = {
		0, METIS_BUF_MAX_LENGTH + 1, METIS_BUF_MAX_LENGTH + 4096, UINT64_MAX,
		UINT64_MAX - 4095, 1ull << 40, 1ull << 63,
	};
	struct metis_buf_export *e = (struct metis_buf_export *)pl;
	uint64_t k = below(w, 100);

	e->size = sizeof(*e);
	e->flags = k < 25 ? METIS_BUF_READ : k < 50 ? METIS_BUF_WRITE :
		   METIS_BUF_READ | METIS_BUF_WRITE;
	e->length = pm(w, 800) ? 1 + below(w, 65536) : pm(w, 900) ? 1 + below(w, 1 << 20) :
		    1 + below(w, 4 << 20);
	if (mut) {
		c->mutated = 1;
		switch (below(w, 5)) {
		case 0:
			e->length = wild[below(w, ARRAY_SIZE(wild))];
			break;
		case 1:
			e->flags = pm(w, 300) ? 0 : e->flags | 1u << (2 + below(w, 30));
			break;
		case 2:
			e->reserved = (uint32_t)rnd(w) | 1;
			break;
		default:
			e->fd = (int32_t)rnd(w);	/* output only */
			break;
		}
	}
}

static void build_dma_buf(struct wk *w, struct call *c, struct slot *s, int mut)
{
	struct metis_dma_buf *d = (struct metis_dma_buf *)pl;
	struct region *r = pick_live(w, s);
	struct xbuf *b = pick_buf(w);
	uint64_t rl = r ? r->len : 4096, bl = b ? b->len : 4096;

	d->size = sizeof(*d);
	/* The direction the fd's access mode suggests: the card reads what userspace may write. */
	if (b && b->flags == METIS_BUF_READ)
		d->flags = METIS_DMA_TO_DEVICE;
	else if (b && b->flags == METIS_BUF_WRITE)
		d->flags = METIS_DMA_FROM_DEVICE;
	else
		d->flags = pm(w, 500) ? METIS_DMA_TO_DEVICE : METIS_DMA_FROM_DEVICE;
	if (s->njobs < METIS_MAX_JOBS - 4 && pm(w, 300))
		d->flags |= METIS_DMA_ASYNC;
	d->fd = b ? b->fd : odd_fd(w, s);
	d->length = pick_len(w, min64(rl, bl));
	d->buf_offset = below(w, bl - d->length + 1);
	d->offset = below(w, rl - d->length + 1);
	d->handle = r ? r->handle : foreign(w, s);
	d->timeout_ms = pick_timeout(w);
	if (!r || !b)
		c->mutated = 1;
	for (int n = mut ? 1 + (int)below(w, 2) : 0; n > 0; n--) {
		c->mutated = 1;
		switch (below(w, 11)) {
		case 0:
			d->length = wild64(w);
			break;
		case 1:
			d->buf_offset = pm(w, 500) ? bl - d->length + 1 : wild64(w);
			break;
		case 2:
			d->offset = pm(w, 500) ? rl - d->length + 1 : wild64(w);
			break;
		case 3:
			d->handle = foreign(w, s);
			break;
		case 4:
		case 5:
			d->fd = odd_fd(w, s);
			break;
		case 6:
			d->flags = bad_dma_flags(w, d->flags);
			break;
		case 7:
			d->timeout_ms = wild_timeout(w);
			break;
		case 8:
			d->job_id = rnd(w);	/* output only */
			break;
		case 9:
			d->flags ^= METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE;
			break;
		default:
			d->length = 0;
			break;
		}
	}
}

static void build_fw_changed(struct wk *w, struct call *c, int mut)
{
	struct metis_fw_changed *f = (struct metis_fw_changed *)pl;

	f->size = sizeof(*f);
	if (mut || pm(w, 600)) {
		c->mutated = 1;
		f->flags = 1u << below(w, 32);
	}
}

static void build(struct wk *w, struct call *c, struct slot *s, int mut)
{
	memset(pl, 0, sizeof(pl));
	c->encsize = cmds[c->cmd].base;
	switch (c->cmd) {
	case I_INFO:
		build_info(w, c, mut);
		break;
	case I_MEM_ALLOC:
		build_alloc(w, c, mut);
		break;
	case I_MEM_FREE:
		build_free(w, c, s, mut);
		break;
	case I_DMA:
		build_dma(w, c, s, mut);
		break;
	case I_WAIT:
		build_wait(w, c, s, mut);
		break;
	case I_CMD:
		build_cmd(w, c, s, mut);
		break;
	case I_RESET:
		build_reset(w, c, mut);
		break;
	case I_BUF_EXPORT:
		build_export(w, c, mut);
		break;
	case I_DMA_BUF:
		build_dma_buf(w, c, s, mut);
		break;
	case I_BUF_REGISTER:
		build_register(w, c, mut);
		break;
	case I_BUF_UNREGISTER:
		build_unregister(w, c, s, mut);
		break;
	case I_DMA_BATCH:
		build_batch(w, c, s, mut);
		break;
	default:
		build_fw_changed(w, c, mut);
		break;
	}
}

/* The versioning header: size field and encoded size, tail, flags. */
static void mutate_header(struct wk *w, struct call *c)
{
	uint32_t base = cmds[c->cmd].base, *size = (uint32_t *)pl, *flags = size + 1;
	uint32_t big = page_size < ENC_MAX ? (uint32_t)page_size : ENC_MAX;

	c->mutated = 1;
	switch (below(w, 9)) {
	case 0:
		*size = 0;
		break;
	case 1:
		*size = base - 1 - below(w, base - 1);
		break;
	case 2:
		*size = base + 1 + below(w, 64);
		break;
	case 3:
		*size = (uint32_t)rnd(w);
		break;
	case 4:	/* a newer, larger struct: zero tail */
		c->encsize = *size = base + 8 * (1 + below(w, 8));
		break;
	case 5:	/* the same with a byte of the tail set */
		c->encsize = *size = base + 8 * (1 + below(w, 8));
		pl[base + below(w, c->encsize - base)] = 1 + below(w, 255);
		break;
	case 6:
		c->encsize = *size = big;
		if (pm(w, 300))
			pl[big - 1] = 0x80;
		break;
	case 7:
		c->encsize = *size = page_size + 8 <= ENC_MAX ? page_size + 8 : ENC_MAX;
		break;
	default:
		*flags |= 1u << (16 + below(w, 16));
		break;
	}
}

static unsigned long encode(uint32_t dir, unsigned int nr, uint32_t size)
{
	return _IOC(dir, METIS_IOCTL_MAGIC, nr, size & ENC_MAX);
}

static int pick_cmd(struct wk *w, struct slot *s)
{
	uint64_t k = below(w, 1000);
	int cmd = 0;

	for (; cmd < NCMD - 1; cmd++) {
		if (k < cmds[cmd].weight)
			break;
		k -= cmds[cmd].weight;
	}
	if (cmd == I_MEM_ALLOC && s->nlive >= LIVE_SOFT)
		cmd = I_MEM_FREE;
	else if (cmd == I_MEM_FREE && !s->nlive && pm(w, 700))
		cmd = I_MEM_ALLOC;
	else if ((cmd == I_DMA || cmd == I_CMD || cmd == I_DMA_BUF || cmd == I_DMA_BATCH) &&
		 !s->nlive && pm(w, 600))
		cmd = I_MEM_ALLOC;
	else if (cmd == I_DMA_BUF && !pick_buf(w) && pm(w, 700))
		cmd = I_BUF_EXPORT;
	else if (cmd == I_WAIT && !s->njobs && pm(w, 600))
		cmd = I_DMA;
	return cmd;
}

static int pick_ptr(struct wk *w)
{
	static const unsigned int cum[NPTR] = { 870, 920, 935, 950, 965, 975, 982, 989, 996, 1000 };
	uint64_t k = below(w, 1000);
	int p = 0;

	while (k >= cum[p])
		p++;
	return p;
}

/* A random ioctl number that is not the driver's and not one the VFS handles itself. */
static unsigned long random_req(struct wk *w)
{
	static const unsigned int vfs_types[] = { 0x00, 0x15, 'T', 'X', 'f', 0x94 };

	for (;;) {
		unsigned long req = (uint32_t)rnd(w);
		unsigned int t = _IOC_TYPE(req), i;

		for (i = 0; i < ARRAY_SIZE(vfs_types); i++)
			if (t == vfs_types[i])
				break;
		if (t != METIS_IOCTL_MAGIC && i == ARRAY_SIZE(vfs_types))
			return req;
	}
}

/* --- issuing one call ------------------------------------------------------ */

static void place(struct wk *w, struct call *c)
{
	size_t n = c->encsize, k;

	switch (c->ptr) {
	case P_VALID:
	case P_UNALIGNED:
		if (c->ptr == P_VALID)
			c->arg = w->arena + 8 * below(w, 8);
		else	/* odd, or running over a page boundary inside the arena */
			c->arg = w->arena + (pm(w, 500) ? 1 + below(w, 7) :
					     page_size - 1 - below(w, 7));
		memcpy(c->arg, pl, n);
		memset(c->arg + n, 0xa5, 64);
		c->readable = c->canary = 1;
		break;
	case P_EXACT:	/* ends where the guard page starts */
		c->arg = w->arena + arena_len - n;
		memcpy(c->arg, pl, n);
		c->readable = 1;
		break;
	case P_RO:
		mprotect(w->ro_arg, RO_ARG, PROT_READ | PROT_WRITE);
		memcpy(w->ro_arg, pl, n);
		mprotect(w->ro_arg, RO_ARG, PROT_READ);
		c->arg = w->ro_arg;
		break;
	case P_GUARD:	/* the first k bytes readable, the rest in the guard page */
		k = n > 1 ? 1 + below(w, n - 1) : 0;
		c->arg = w->arena + arena_len - k;
		memcpy(c->arg, pl, k);
		break;
	case P_NULL:
		c->arg = NULL;
		break;
	case P_KERNEL:
		c->arg = (uint8_t *)(uintptr_t)KADDR1;
		break;
	case P_KERNEL2:
		c->arg = (uint8_t *)(uintptr_t)KADDR2;
		break;
	case P_HOLE:
		c->arg = w->hole + below(w, HOLE - 64);
		break;
	default:
		c->arg = (uint8_t *)(uintptr_t)(0x1000 + below(w, 0x1000));
		break;
	}
}

/* The lowest free fd number: where the next fd is installed. */
static int lowest_free_fd(struct wk *w)
{
	int fd = fcntl(w->null_fd, F_DUPFD, 0);

	if (fd >= 0)
		close(fd);
	return fd;
}

static void add_job(struct wk *w, struct slot *s, uint64_t id)
{
	w->st->jobs++;
	if (job_index(s, id) >= 0) {
		fail(w, K_JOBS, "job id %" PRIu64 " handed out twice", id);
		return;
	}
	if (s->njobs >= METIS_MAX_JOBS) {
		fail(w, K_JOBS, "more than METIS_MAX_JOBS (%d) jobs accepted on one file",
		     METIS_MAX_JOBS);
		return;
	}
	s->jobs[s->njobs++] = id;
}

static void check_handle(struct wk *w, struct call *c, struct slot *s, uint64_t h)
{
	int other = live_slot(w, h);

	if (live_find(s, h))
		return;
	if (other >= 0)
		fail(w, K_FOREIGN, "%s worked with handle %#" PRIx64
		     " of another file of this worker", cmds[c->cmd].name, h);
	else
		fail(w, K_FOREIGN, "%s worked with handle %#" PRIx64 ", not allocated by this file",
		     cmds[c->cmd].name, h);
}

static void after_export(struct wk *w, const uint8_t *out, int r, int probe)
{
	const struct metis_buf_export *in = (const void *)pl;
	struct metis_buf_export e;
	int fl, acc, want, i;

	if (r) {
		/*
		 * A failed export installs no fd (the driver checks that the answer can be
		 * written before it creates the buffer): `probe` was the lowest free fd
		 * number before the call, and nothing else opens fds meanwhile.
		 */
		if (probe >= 0 && fcntl(probe, F_GETFD) >= 0) {
			fail(w, K_EXPORT, "BUF_EXPORT failed (%s) but fd %d appeared", ename(-r),
			     probe);
			close(probe);
		}
		return;
	}
	if (!out)
		return;
	memcpy(&e, out, sizeof(e));
	fl = fcntl(e.fd, F_GETFD);
	acc = fcntl(e.fd, F_GETFL);
	want = in->flags == METIS_BUF_READ ? O_RDONLY : in->flags == METIS_BUF_WRITE ? O_WRONLY :
	       O_RDWR;
	if (e.fd < 0 || fl < 0) {
		fail(w, K_EXPORT, "BUF_EXPORT returned fd %d, not an open fd", e.fd);
		return;
	}
	if (!(fl & FD_CLOEXEC))
		fail(w, K_EXPORT, "exported fd %d is not O_CLOEXEC", e.fd);
	if (acc >= 0 && (acc & O_ACCMODE) != want)
		fail(w, K_EXPORT, "exported fd opened %#x, flags asked %#x", acc & O_ACCMODE,
		     in->flags);
	if (e.length < in->length || e.length % page_size || e.length - in->length >= page_size)
		fail(w, K_EXPORT, "length %llu came back as %llu", (unsigned long long)in->length,
		     (unsigned long long)e.length);
	if (e.reserved || e.flags != in->flags)
		fail(w, K_EXPORT, "flags/reserved changed by the write-back");
	for (i = 0; i < BUFS; i++)
		if (w->buf[i].fd < 0)
			break;
	if (i == BUFS) {
		close(e.fd);
		return;
	}
	w->buf[i] = (struct xbuf){ .fd = e.fd, .flags = in->flags, .len = e.length };
}

static void after_wait(struct wk *w, struct slot *s, const uint8_t *out, int r)
{
	const struct metis_wait *in = (const void *)pl;
	int i = job_index(s, in->job_id);
	struct metis_wait q;

	if (r == -ENOENT && i >= 0) {
		fail(w, K_JOBS, "job %llu submitted and not reaped, but WAIT says ENOENT",
		     (unsigned long long)in->job_id);
		s->jobs[i] = s->jobs[--s->njobs];
		return;
	}
	if (r)
		return;
	if (i < 0) {
		fail(w, K_JOBS, "WAIT reaped job %llu, which this file never submitted",
		     (unsigned long long)in->job_id);
		return;
	}
	s->jobs[i] = s->jobs[--s->njobs];
	w->last_reaped = in->job_id;
	if (!out)
		return;
	memcpy(&q, out, sizeof(q));
	w->st->status[err_slot(q.status < 0 ? -q.status : q.status)]++;
	if (!status_allowed(q.status))
		fail(w, K_JOBS, "job %llu ended with status %d (%s)",
		     (unsigned long long)in->job_id, q.status,
		     ename(q.status < 0 ? -q.status : q.status));
}

static void after_cmd(struct wk *w, struct call *c, struct slot *s, const uint8_t *out)
{
	const struct metis_cmd *in = (const void *)pl;
	const struct metis_cmd *o = (const void *)out;

	switch (in->opcode) {
	case METIS_CMD_RUN:
		check_handle(w, c, s, in->handle_out);
		/* fall through */
	case METIS_CMD_CHECKSUM:
	case METIS_CMD_FILL:
		check_handle(w, c, s, in->handle_in);
		break;
	case METIS_CMD_ECHO:
		if (!out || in->echo_len > METIS_ECHO_MAX)
			break;
		if (memcmp(o->echo, in->echo, in->echo_len))
			fail(w, K_ECHO, "ECHO of %u bytes came back different", in->echo_len);
		else if (bytes_set(o->echo + in->echo_len, METIS_ECHO_MAX - in->echo_len))
			fail(w, K_ECHO, "ECHO of %u bytes wrote past echo_len", in->echo_len);
		break;
	}
}

static void after(struct wk *w, struct call *c, int r, int probe)
{
	struct slot *s = &w->slot[c->slot];
	const uint8_t *out = c->readable ? c->arg : NULL;

	switch (c->cmd) {
	case I_INFO:
		if (!r && out) {
			struct metis_info i;

			memcpy(&i, out, sizeof(i));
			if (i.abi_version != METIS_ABI_VERSION || i.mem_free > i.mem_size ||
			    i.size != ((const struct metis_info *)pl)->size || i.flags)
				fail(w, K_INFO, "INFO: abi %u size %u flags %#x mem %llu free %llu",
				     i.abi_version, i.size, i.flags, (unsigned long long)i.mem_size,
				     (unsigned long long)i.mem_free);
		}
		break;
	case I_MEM_ALLOC:
		if (!r && out) {
			const struct metis_mem_alloc *in = (const void *)pl;
			struct metis_mem_alloc a;

			memcpy(&a, out, sizeof(a));
			if (live_slot(w, a.handle) >= 0) {
				fail(w, K_FOREIGN, "MEM_ALLOC returned live handle %#llx again",
				     (unsigned long long)a.handle);
				break;
			}
			if (s->nlive == LIVE) {	/* can't track it: give it back */
				struct metis_mem_free f = { .size = sizeof(f), .handle = a.handle };

				if (xioctl(s->fd, METIS_IOCTL_MEM_FREE, &f))
					fail(w, K_CLEANUP, "freeing a fresh region failed");
				break;
			}
			s->live[s->nlive++] = (struct region){
				.handle = a.handle,
				.len = (in->length + METIS_MEM_ALIGN - 1) &
				       ~(uint64_t)(METIS_MEM_ALIGN - 1),
			};
			ring_publish(w, a.handle);
		}
		break;
	case I_MEM_FREE:
		if (!r) {
			uint64_t h = ((const struct metis_mem_free *)pl)->handle;

			check_handle(w, c, s, h);
			live_remove(w, s, h);
		}
		break;
	case I_DMA:
	case I_DMA_BUF: {
		uint64_t h = c->cmd == I_DMA ? ((const struct metis_dma *)pl)->handle :
			     ((const struct metis_dma_buf *)pl)->handle;
		uint32_t flags = ((const uint32_t *)pl)[1];

		if (r)
			break;
		check_handle(w, c, s, h);
		if ((flags & METIS_DMA_ASYNC) && out)
			add_job(w, s, c->cmd == I_DMA ? ((const struct metis_dma *)out)->job_id :
				((const struct metis_dma_buf *)out)->job_id);
		break;
	}
	case I_DMA_BATCH: {
		const struct metis_dma_batch *b = (const void *)pl;

		/* A batch whose entries the model calls unreadable and that worked failed K_INVALID. */
		if (r || b->count > METIS_MAX_BATCH || b->entries < (uintptr_t)w->ents ||
		    b->entries + (uint64_t)b->count * b->entry_size > (uintptr_t)w->ents + ents_len)
			break;
		for (uint32_t i = 0; i < b->count; i++) {
			struct metis_dma d;

			memcpy(&d, (const uint8_t *)(uintptr_t)b->entries + (size_t)i * b->entry_size,
			       sizeof(d));
			check_handle(w, c, s, d.handle);
		}
		if ((b->flags & METIS_DMA_ASYNC) && out)
			add_job(w, s, ((const struct metis_dma_batch *)out)->job_id);
		break;
	}
	case I_WAIT:
		after_wait(w, s, out, r);
		break;
	case I_CMD:
		if (!r)
			after_cmd(w, c, s, out);
		break;
	case I_RESET:
		w->st->resets += !r;
		break;
	case I_BUF_EXPORT:
		after_export(w, out, r, probe);
		break;
	case I_BUF_REGISTER:
		if (!r && out) {
			const struct metis_buf_register *in = (const void *)pl;
			struct metis_buf_register a;

			memcpy(&a, out, sizeof(a));
			if (!a.handle || reg_find(s, a.handle)) {
				fail(w, K_FOREIGN, "BUF_REGISTER returned handle %#llx (zero or live)",
				     (unsigned long long)a.handle);
				break;
			}
			if (s->nregs == REGS) {	/* can't track it: give it back */
				struct metis_buf_unregister u = { .size = sizeof(u),
								  .handle = a.handle };

				if (xioctl(s->fd, METIS_IOCTL_BUF_UNREGISTER, &u))
					fail(w, K_CLEANUP, "unregistering a fresh buffer failed");
				break;
			}
			s->regs[s->nregs++] = (struct reg){ .handle = a.handle,
							    .addr = in->user_addr,
							    .len = in->length,
							    .flags = in->flags };
		}
		break;
	case I_BUF_UNREGISTER:
		if (!r) {
			struct reg *g = reg_find(s, ((const struct metis_buf_unregister *)pl)->handle);

			if (g)
				*g = s->regs[--s->nregs];
		}
		break;
	}
}

static int issue(struct wk *w, struct call *c)
{
	struct logent *l = &w->log[w->nlog++ % LOG];
	int r, probe = -1, dev = c->slot >= 0, real;
	uint32_t base;

	c->cls = classify(c->req, dev);
	c->encsize = _IOC_SIZE(c->req);
	c->bad = model(w, c);
	place(w, c);
	real = dev && c->cls < CL_DIR;	/* the driver sees this command */
	if (real && c->cmd == I_BUF_EXPORT)
		probe = lowest_free_fd(w);

	r = ioctl(c->fd, c->req, c->arg);
	r = r < 0 ? -errno : r;

	*l = (struct logent){ .iter = w->iter, .req = (uint32_t)c->req,
			      .sizefield = ((const uint32_t *)pl)[0], .res = r, .ptr = c->ptr,
			      .dev = dev };
	w->st->ioctls++;
	w->st->res[c->cls][err_slot(r < 0 ? -r : 0)]++;
	if (r > 0)
		fail(w, K_ERRNO, "%s returned %d", class_name(c->cls), r);
	else if (r < 0 && !errno_allowed(-r, c->cmd))
		fail(w, K_ERRNO, "%s (req %#lx, arg %s) failed with %s (%d), not an allowed errno",
		     class_name(c->cls), c->req, ptr_name[c->ptr], ename(-r), -r);
	if (!r && c->bad)
		fail(w, K_INVALID, "%s (req %#lx, size field %u, arg %s) succeeded, but %s",
		     class_name(c->cls), c->req, ((const uint32_t *)pl)[0], ptr_name[c->ptr],
		     c->bad);
	if (c->canary) {
		const uint8_t *t = c->arg + c->encsize;

		for (int i = 0; i < 64; i++)
			if (t[i] != 0xa5) {
				fail(w, K_WRITEBACK, "%s wrote byte %d past the %u-byte struct",
				     class_name(c->cls), i, c->encsize);
				break;
			}
	}
	base = real ? cmds[c->cmd].base : 0;
	if (!r && real && c->readable && c->encsize > base &&
	    bytes_set(c->arg + base, c->encsize - base))
		fail(w, K_WRITEBACK, "%s wrote into the unknown tail of a %u-byte struct",
		     class_name(c->cls), c->encsize);
	if (real)
		after(w, c, r, probe);
	if (!c->mutated && !c->bad && c->cls == c->cmd && c->ptr <= P_EXACT) {
		w->st->clean[c->cmd]++;
		w->st->clean_ok[c->cmd] += !r;
	}
	return r;
}

/* A well-formed call on slot `si` of a struct already in `pl`. */
static int issue_clean(struct wk *w, int si, int cmd)
{
	struct call c = { .cmd = cmd, .slot = si, .fd = w->slot[si].fd, .ptr = P_VALID,
			  .req = cmds[cmd].req };

	return issue(w, &c);
}

static int helper_wait(struct wk *w, int si, uint64_t id, uint32_t timeout_ms)
{
	struct metis_wait *q = (struct metis_wait *)pl;

	memset(pl, 0, sizeof(*q));
	*q = (struct metis_wait){ .size = sizeof(*q), .job_id = id, .timeout_ms = timeout_ms };
	return issue_clean(w, si, I_WAIT);
}

static int helper_free(struct wk *w, int si, uint64_t h)
{
	struct metis_mem_free *f = (struct metis_mem_free *)pl;

	memset(pl, 0, sizeof(*f));
	*f = (struct metis_mem_free){ .size = sizeof(*f), .handle = h };
	return issue_clean(w, si, I_MEM_FREE);
}

/* --- files, poll, mmap ----------------------------------------------------- */

static int open_slot(struct wk *w)
{
	int i, fd;

	for (i = 0; i < SLOTS; i++)
		if (w->slot[i].fd < 0)
			break;
	if (i == SLOTS)
		return -1;
	fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		/* With --rebind the node is recreated root-only for a moment after each bind. */
		if (e != ENOMEM && e != EBUSY && e != EIO && e != ENODEV && e != EMFILE &&
		    !(opt_rebind && (e == EACCES || e == ENOENT)))
			fail(w, K_OPEN, "open %s as uid %d gid %d: %s%s", dev_path, (int)getuid(),
			     (int)getgid(), strerror(e), e == EACCES ?
			     " (give the group access to the node)" : "");
		return -1;
	}
	w->st->opens++;
	w->slot[i] = (struct slot){ .fd = fd };
	return i;
}

/* Closes a file; with jobs in flight the close waits for them, and its regions go. */
static void close_slot(struct wk *w, int si)
{
	struct slot *s = &w->slot[si];

	w->st->closes++;
	w->st->closes_busy += s->njobs > 0;
	if (close(s->fd))
		fail(w, K_CLEANUP, "close of a device file: %s", strerror(errno));
	for (int i = 0; i < s->nlive; i++)
		remember_dead(w, s->live[i].handle);
	s->fd = -1;
	s->nlive = s->njobs = s->nregs = 0;
}

/* The file stays open through a dup: its jobs and regions must stay too. */
static void dup_slot(struct wk *w, int si)
{
	int fd = fcntl(w->slot[si].fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return;
	close(w->slot[si].fd);
	w->slot[si].fd = fd;
	w->st->dups++;
}

static void poll_slot(struct wk *w, int si)
{
	struct slot *s = &w->slot[si];
	struct pollfd p = { .fd = s->fd, .events = POLLIN | POLLPRI };
	int r = poll(&p, 1, s->njobs ? (int)below(w, 30) : 0);

	w->st->polls++;
	if (r < 0) {
		if (errno != EINTR)
			fail(w, K_POLL, "poll: %s", strerror(errno));
		return;
	}
	if (p.revents & POLLNVAL) {
		fail(w, K_POLL, "poll: POLLNVAL on an open device file");
		return;
	}
	if (!(p.revents & POLLIN))
		return;
	w->st->pollin++;
	if (!s->njobs) {
		fail(w, K_POLL, "POLLIN on a file without jobs");
		return;
	}
	/* A completed job waits: one of ours must be reapable right away. */
	{
		uint64_t ids[METIS_MAX_JOBS];
		int n = s->njobs, reaped = 0;

		memcpy(ids, s->jobs, sizeof(ids[0]) * n);
		for (int i = 0; i < n && !reaped; i++)
			reaped = helper_wait(w, si, ids[i], 1) == 0;
		if (!reaped)
			fail(w, K_POLL, "POLLIN, but none of the %d jobs could be reaped", n);
	}
}

static void close_buf(struct wk *w)
{
	struct xbuf *b = pick_buf(w);

	if (b) {
		close(b->fd);
		b->fd = -1;
	}
}

static void unmap_one(struct wk *w, int i)
{
	if (w->map[i].p) {
		munmap(w->map[i].p, w->map[i].len);
		w->map[i].p = NULL;
	}
}

static void mmap_buf(struct wk *w)
{
	struct xbuf *b = pick_buf(w);
	int i, prot, r;
	size_t len;
	uint8_t *p;

	if (!b)
		return;
	for (i = 0; i < MAPS; i++)
		if (!w->map[i].p)
			break;
	if (i == MAPS) {
		/* A job's buffer may not go away under it (uapi): only unmap when none runs. */
		if (jobs_anywhere(w))
			return;
		i = (int)below(w, MAPS);
		unmap_one(w, i);
	}
	prot = b->flags == METIS_BUF_READ ? PROT_READ : PROT_READ | PROT_WRITE;
	if (pm(w, 150))
		prot ^= PROT_WRITE;	/* sometimes what the fd does not allow */
	len = pm(w, 900) ? b->len : b->len + page_size;
	w->st->mmaps++;
	p = mmap(NULL, len, prot, MAP_SHARED, b->fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;

		if (e != EACCES && e != EINVAL && e != ENOMEM && e != EPERM && e != ENODEV &&
		    e != EAGAIN && e != EOVERFLOW)
			fail(w, K_ERRNO, "mmap of a dma-buf: %s", ename(e));
		return;
	}
	w->st->mmaps_ok++;
	w->map[i] = (struct xmap){ .p = p, .len = len };
	len = b->len;	/* touch only the buffer itself */
	if (prot & PROT_READ) {
		struct dma_buf_sync sy = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ };
		volatile uint8_t sink = 0;

		ioctl(b->fd, DMA_BUF_IOCTL_SYNC, &sy);
		for (size_t o = 0; o < len; o += page_size)
			sink ^= p[o];
		(void)sink;
		sy.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
		ioctl(b->fd, DMA_BUF_IOCTL_SYNC, &sy);
	}
	if ((prot & PROT_WRITE) && (b->flags & METIS_BUF_READ)) {
		struct dma_buf_sync sy = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE };

		r = ioctl(b->fd, DMA_BUF_IOCTL_SYNC, &sy);
		for (size_t o = 0; o < len; o += page_size)
			p[o] = (uint8_t)(o >> 12);
		sy.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE;
		r |= ioctl(b->fd, DMA_BUF_IOCTL_SYNC, &sy);
		(void)r;
	}
}

/* --- one worker ------------------------------------------------------------ */

static int drop_privileges(struct wk *w)
{
	gid_t g = (gid_t)opt_gid, list[4];
	int n;

	if (setgroups(1, &g) || setgid(g) || setuid((uid_t)opt_uid)) {
		fail(w, K_PRIV, "setgroups/setgid/setuid(%ld/%ld): %s", opt_uid, opt_gid,
		     strerror(errno));
		return -1;
	}
	n = getgroups(4, list);
	if (getuid() != (uid_t)opt_uid || geteuid() != (uid_t)opt_uid || getgid() != g ||
	    getegid() != g || n != 1 || list[0] != g || (opt_uid != 0 && setuid(0) == 0)) {
		fail(w, K_PRIV, "still uid %d euid %d gid %d egid %d, %d groups", (int)getuid(),
		     (int)geteuid(), (int)getgid(), (int)getegid(), n);
		return -1;
	}
	return 0;
}

static uint8_t *map_area(size_t len, int prot, int guard)
{
	uint8_t *p = mmap(NULL, len + (guard ? page_size : 0), prot,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (guard && mprotect(p + len, page_size, PROT_NONE))
		return NULL;
	return p;
}

static int setup(struct wk *w)
{
	w->arena = map_area(arena_len, PROT_READ | PROT_WRITE, 1);
	w->data = map_area(DATA, PROT_READ | PROT_WRITE, 1);
	w->ro_arg = map_area(RO_ARG, PROT_READ, 0);
	w->ro_data = map_area(RO_DATA, PROT_READ | PROT_WRITE, 0);
	w->hole = map_area(HOLE, PROT_NONE, 0);
	w->ro_copy = malloc(RO_DATA);
	w->ents = map_area(ents_len, PROT_READ | PROT_WRITE, 1);
	if (!w->arena || !w->data || !w->ro_arg || !w->ro_data || !w->hole || !w->ro_copy ||
	    !w->ents)
		return -1;
	fill(w->ro_data, RO_DATA, (uint32_t)w->seed);
	memcpy(w->ro_copy, w->ro_data, RO_DATA);
	if (mprotect(w->ro_data, RO_DATA, PROT_READ))
		return -1;
	memset(w->data, 0x3c, DATA);
	if (pipe2(w->pipe_fd, O_CLOEXEC))
		return -1;
	w->memfd = memfd_create("metis_fuzz", MFD_CLOEXEC);
	if (w->memfd < 0 || ftruncate(w->memfd, 65536))
		w->memfd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	w->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (w->memfd < 0 || w->null_fd < 0)
		return -1;
	for (int i = 0; i < SLOTS; i++)
		w->slot[i].fd = -1;
	for (int i = 0; i < BUFS; i++)
		w->buf[i].fd = -1;
	return 0;
}

static void maintenance(struct wk *w)
{
	uint64_t k = below(w, 1000);
	int si = pick_slot(w);

	if (si < 0 || k < 8) {
		open_slot(w);
	} else if (k < 14) {
		/* Prefer a file with jobs in flight: a close that must wait for them. */
		for (int i = 0; i < SLOTS && pm(w, 500); i++)
			if (w->slot[i].fd >= 0 && w->slot[i].njobs)
				si = i;
		close_slot(w, si);
		if (pick_slot(w) < 0)
			open_slot(w);
	} else if (k < 16) {
		dup_slot(w, si);
	} else if (k < 40) {
		poll_slot(w, si);
	} else if (k < 44) {
		close_buf(w);
	} else if (k < 49) {
		mmap_buf(w);
	}
}

static void fuzz_one(struct wk *w)
{
	struct call c = { .ptr = P_VALID };
	int si = pick_slot(w), mut, dir, nr;
	struct slot *s;
	uint64_t k = below(w, 1000);

	if (si < 0)
		return;
	s = &w->slot[si];
	c.slot = si;
	c.fd = s->fd;
	mut = pm(w, 450);
	if (k < 20) {
		/* A random number (never the magic, never the VFS's own). */
		c.cmd = (int)below(w, NCMD);
		build(w, &c, s, mut);
		c.req = random_req(w);
		c.mutated = 1;
	} else if (k < 40) {
		/* Every number around the magic, in any direction and size. */
		nr = (int)below(w, 0x21);
		c.cmd = nr < NCMD ? nr : (int)below(w, NCMD);
		build(w, &c, s, mut);
		dir = (int)below(w, 4);
		c.req = encode(dir, nr, pm(w, 600) ? c.encsize : (uint32_t)below(w, ENC_MAX + 1));
		c.mutated = 1;
	} else if (k < 50) {
		/* A real number on something that is not a metis device. */
		static const int which[] = { 0, 1, 2, 4, 5 };
		struct xbuf *b = pick_buf(w);
		int kind = which[below(w, ARRAY_SIZE(which))];

		c.cmd = (int)below(w, NCMD);
		build(w, &c, s, mut);
		c.req = cmds[c.cmd].req;
		c.fd = b && pm(w, 200) ? b->fd : kind == 0 ? w->pipe_fd[0] : kind == 1 ? w->memfd :
		       kind == 2 ? w->null_fd : kind == 4 ? CLOSED_FD + (int)below(w, 20) : -1;
		c.slot = -1;
		c.mutated = 1;
	} else {
		c.cmd = pick_cmd(w, s);
		build(w, &c, s, mut);
		dir = _IOC_DIR(cmds[c.cmd].req);
		k = below(w, 1000);
		if (k < 120) {
			mutate_header(w, &c);
		} else if (k < 150) {
			c.mutated = 1;
			dir = (dir + 1 + (int)below(w, 3)) & 3;
		} else if (k < 180) {
			static const int delta[] = { -8, -4, -1, 1, 4, 8, 64, 4096 };
			int32_t e = (int32_t)c.encsize + delta[below(w, ARRAY_SIZE(delta))];

			c.mutated = 1;
			c.encsize = pm(w, 800) && e >= 0 ? (uint32_t)e :
				    (uint32_t)below(w, ENC_MAX + 1);
		}
		c.req = encode(dir, _IOC_NR(cmds[c.cmd].req), c.encsize);
	}
	c.ptr = pick_ptr(w);
	if (c.ptr != P_VALID)
		c.mutated = c.mutated || c.ptr > P_EXACT;
	issue(w, &c);

	/* The card must not have written the read-only buffer. */
	if ((c.cmd == I_DMA || c.cmd == I_DMA_BATCH) && c.slot >= 0 &&
	    memcmp(w->ro_data, w->ro_copy, RO_DATA))
		fail(w, K_READONLY, "a DMA from the device changed read-only memory");
}

static void cleanup(struct wk *w)
{
	for (int si = 0; si < SLOTS; si++) {
		struct slot *s = &w->slot[si];
		struct pollfd p;

		if (s->fd < 0)
			continue;
		while (s->njobs) {
			uint64_t id = s->jobs[0];
			int r = helper_wait(w, si, id, 60000);

			/* A file whose card was unbound under it has nothing left to reap. */
			if (r && !(opt_rebind && r == -ENODEV))
				fail(w, K_CLEANUP, "reaping job %" PRIu64 ": %s", id, ename(-r));
			if (r) {
				if (job_index(s, id) == 0)
					s->jobs[0] = s->jobs[--s->njobs];
			}
		}
		p = (struct pollfd){ .fd = s->fd, .events = POLLIN };
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
			fail(w, K_POLL, "POLLIN after every job was reaped");
		while (s->nlive) {
			uint64_t h = s->live[0].handle;
			int r = helper_free(w, si, h);

			if (r && !(opt_rebind && r == -ENODEV))
				fail(w, K_CLEANUP, "MEM_FREE of own region %#" PRIx64 ": %s", h,
				     ename(-r));
			if (r)
				live_remove(w, s, h);
		}
		close_slot(w, si);
	}
	for (int i = 0; i < BUFS; i++)
		if (w->buf[i].fd >= 0)
			close(w->buf[i].fd);
	for (int i = 0; i < MAPS; i++)
		unmap_one(w, i);
}

static int worker(int idx, uint64_t seed, uint64_t iters)
{
	static struct wk wk;
	struct wk *w = &wk;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	w->idx = idx;
	w->seed = w->rng = seed;
	w->st = &sh->w[idx];
	if (opt_uid >= 0 && drop_privileges(w))
		return 3;
	if (setup(w)) {
		fprintf(stderr, "metis_fuzz[%d]: setup: %s\n", idx, strerror(errno));
		return 2;
	}
	if (open_slot(w) < 0) {
		if (!w->st->fails[K_OPEN])
			fail(w, K_OPEN, "can't open %s", dev_path);
		return 2;
	}
	for (w->iter = 0; w->iter < iters; w->iter++) {
		/*
		 * Each iteration's draws come from (worker seed, iteration): a result that
		 * differs between two runs (a job done or not yet) changes only the choices
		 * that depend on it, not every draw after it.
		 */
		w->rng = w->seed ^ (w->iter * 0xd6e8feb86659fd93ull);
		maintenance(w);
		fuzz_one(w);
		w->st->iters++;
	}
	cleanup(w);
	w->st->finished = 1;
	return 0;
}

/* --- the parent ------------------------------------------------------------- */

static int info(int fd, struct metis_info *i)
{
	memset(i, 0, sizeof(*i));
	i->size = sizeof(*i);
	return xioctl(fd, METIS_IOCTL_INFO, i);
}

static int dma1(int fd, uint32_t flags, void *p, uint64_t len, uint64_t h)
{
	struct metis_dma d = { .size = sizeof(d), .flags = flags, .user_addr = (uintptr_t)p,
			       .length = len, .handle = h };

	return xioctl(fd, METIS_IOCTL_DMA, &d);
}

/* After the workers: their handles are gone, memory is back, data moves intact. */
static void final_checks(uint64_t baseline_free, int kernel_owned, int nprocs)
{
	enum { LEN = 1 << 20 };
	struct metis_info i;
	struct metis_mem_alloc a = { .size = sizeof(a), .length = LEN };
	uint8_t *src = malloc(LEN), *dst = malloc(LEN);
	int fd, r, bad = 0;

	for (int t = 0; opt_rebind && access(opt_rebind, F_OK) && t < 1200; t++)
		usleep(100 * 1000);
	fd = open(dev_path, O_RDWR | O_CLOEXEC);

	TAP(fd >= 0 && src && dst, "fuzz_final_open", "%s: %s", dev_path, strerror(errno));
	if (fd < 0 || !src || !dst)
		return;

	for (int k = 0; k < RING; k++) {
		uint64_t e = sh->ring[k];
		struct metis_mem_free f = { .size = sizeof(f), .handle = e & ((1ull << 56) - 1) };

		if (e && xioctl(fd, METIS_IOCTL_MEM_FREE, &f) == 0) {
			bad++;
			printf("@@NOTE fuzz: handle %#llx of worker %d freed by a new file\n",
			       (unsigned long long)f.handle, (int)(e >> 56) - 1);
		}
	}
	TAP(!bad, "fuzz_dead_handles_gone", "%d handles of exited workers still worked", bad);

	/* Files are released when the workers exit; give deferred work a moment. */
	for (int t = 0; t < 40; t++) {
		r = info(fd, &i);
		if (r || i.mem_free == baseline_free)
			break;
		usleep(50 * 1000);
	}
	TAP(!r && i.mem_free == baseline_free, "fuzz_no_leaked_device_memory",
	    "INFO %s, mem_free %llu, before the run %llu (mem_size %llu)", r ? ename(-r) : "ok",
	    (unsigned long long)i.mem_free, (unsigned long long)baseline_free,
	    (unsigned long long)i.mem_size);
	printf("@@NOTE fuzz: card reset_count %u after the run, %d procs\n", i.reset_count, nprocs);

	if (!kernel_owned) {
		printf("@@NOTE fuzz: runtime-owned card: no device memory, data check skipped\n");
		close(fd);
		return;
	}
	fill(src, LEN, 0x5eed);
	memset(dst, 0, LEN);
	r = xioctl(fd, METIS_IOCTL_MEM_ALLOC, &a);
	if (!r) {
		r = dma1(fd, METIS_DMA_TO_DEVICE, src, LEN, a.handle);
		/* A reset near the end of the run may have left the region lost once. */
		if (r == -ESTALE)
			r = dma1(fd, METIS_DMA_TO_DEVICE, src, LEN, a.handle);
		if (!r)
			r = dma1(fd, METIS_DMA_FROM_DEVICE, dst, LEN, a.handle);
	}
	TAP(!r && !memcmp(src, dst, LEN), "fuzz_final_data_round_trip", "%s",
	    r ? ename(-r) : "data differs");
	if (a.handle) {
		struct metis_mem_free f = { .size = sizeof(f), .handle = a.handle };

		r = xioctl(fd, METIS_IOCTL_MEM_FREE, &f);
		TAP(!r, "fuzz_final_free", "MEM_FREE of the 1 MiB region: %s", ename(-r));
	}
	r = info(fd, &i);
	TAP(!r && i.mem_free == baseline_free, "fuzz_final_memory_back",
	    "mem_free %llu, before the run %llu", (unsigned long long)i.mem_free,
	    (unsigned long long)baseline_free);
	close(fd);
	free(src);
	free(dst);
}

static void usage(void)
{
	fprintf(stderr, "usage: metis_fuzz DEVICE SEED COUNT [PROCS] [--uid UID --gid GID] "
		"[--timeout SECS] [--only I] [--rebind DONE-FILE]\n");
	exit(2);
}

static int parse_num(const char *s, long long lo, long long hi, long long *v)
{
	char *end;

	errno = 0;
	*v = strtoll(s, &end, 0);
	return errno || end == s || *end || *v < lo || *v > hi ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *pos[4];
	int npos = 0, nprocs = 4, only = -1, alive = 0, kernel_owned;
	long long v, timeout = 180;
	uint64_t seed, count, total = 0, distinct = 0, iters = 0;
	pid_t pids[MAX_PROCS] = { 0 };
	int status[MAX_PROCS] = { 0 }, killed[MAX_PROCS] = { 0 }, phase = 0;
	struct metis_info inf;
	struct timespec t0, t1;
	size_t shlen;
	char *end;
	double secs;
	int fd, r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--uid") || !strcmp(argv[i], "--gid") ||
		    !strcmp(argv[i], "--timeout") || !strcmp(argv[i], "--only")) {
			if (i + 1 >= argc || parse_num(argv[i + 1], 0, 0x7fffffff, &v))
				usage();
			if (argv[i][2] == 'u')
				opt_uid = (long)v;
			else if (argv[i][2] == 'g')
				opt_gid = (long)v;
			else if (argv[i][2] == 't')
				timeout = v;
			else
				only = (int)v;
			i++;
		} else if (!strcmp(argv[i], "--rebind")) {
			if (i + 1 >= argc)
				usage();
			opt_rebind = argv[++i];
		} else if (npos < 4 && argv[i][0] != '-') {
			pos[npos++] = argv[i];
		} else {
			usage();
		}
	}
	if (npos < 3 || (opt_uid < 0) != (opt_gid < 0) || !timeout)
		usage();
	dev_path = pos[0];
	errno = 0;
	seed = strtoull(pos[1], &end, 0);
	if (errno || end == pos[1] || *end)
		usage();
	if (parse_num(pos[2], 0, 1ll << 40, &v))
		usage();
	count = (uint64_t)v;
	if (npos > 3) {
		if (parse_num(pos[3], 1, MAX_PROCS, &v))
			usage();
		nprocs = (int)v;
	}
	if (only >= nprocs)
		usage();
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	arena_len = (page_size + (32 << 10) + page_size - 1) / page_size * page_size;
	ents_len = (ENTS_MIN + page_size - 1) / page_size * page_size;

	printf("@@NOTE fuzz: seed %" PRIu64 " (%#" PRIx64 "), %" PRIu64 " ioctls, %d procs%s\n",
	       seed, seed, count, nprocs, opt_uid >= 0 ? ", unprivileged workers" : "");
	for (int i = 0; i < nprocs; i++)
		if (only < 0 || only == i)
			printf("@@NOTE fuzz: worker %d seed %#" PRIx64 ", %" PRIu64 " ioctls\n", i,
			       worker_seed(seed, i),
			       count / nprocs + ((uint64_t)i < count % nprocs));

	/* The card before the run (as root, closed again before any worker starts). */
	fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		TAP(0, "fuzz_setup", "can't open %s: %s", dev_path, strerror(errno));
		return 1;
	}
	r = info(fd, &inf);
	close(fd);
	if (r) {
		TAP(0, "fuzz_setup", "METIS_IOCTL_INFO on %s failed: %s (%s): not a metis device?",
		    dev_path, ename(-r), strerror(-r));
		return 1;
	}
	TAP(inf.abi_version == METIS_ABI_VERSION, "fuzz_setup", "ABI version %u, expected %u",
	    inf.abi_version, METIS_ABI_VERSION);
	kernel_owned = inf.fw_owner == METIS_FW_KERNEL;
	printf("@@NOTE fuzz: card mem %llu free %llu, firmware %s-owned, reset_count %u\n",
	       (unsigned long long)inf.mem_size, (unsigned long long)inf.mem_free,
	       kernel_owned ? "kernel" : "runtime", inf.reset_count);

	shlen = sizeof(struct shared) + sizeof(struct wstats) * nprocs;
	sh = mmap(NULL, shlen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		TAP(0, "fuzz_setup", "shared mapping: %s", strerror(errno));
		return 1;
	}
	sh->resets_left = opt_uid >= 0 ? 40 : 4;

	fflush(stdout);
	fflush(stderr);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < nprocs; i++) {
		if (only >= 0 && only != i)
			continue;
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(worker(i, worker_seed(seed, i),
				     count / nprocs + ((uint64_t)i < count % nprocs)));
		if (pids[i] < 0) {
			TAP(0, "fuzz_fork", "%s", strerror(errno));
			pids[i] = 0;
			continue;
		}
		alive++;
	}

	/*
	 * A worker whose ioctl count stops moving for `timeout` s is hung: killed (it must
	 * die within 60 s). Progress, not a total: a loaded machine runs slower, not wrong.
	 */
	{
		uint64_t seen[MAX_PROCS] = { 0 };
		int still[MAX_PROCS] = { 0 }, killed_at = -1, hung = 0;

		for (int tick = 0; alive; tick++) {
			pid_t p = waitpid(-1, &r, WNOHANG);

			if (p > 0) {
				for (int i = 0; i < nprocs; i++)
					if (pids[i] == p) {
						status[i] = r;
						pids[i] = -p;
						alive--;
					}
				continue;
			}
			if (p < 0)
				break;
			sleep(1);
			if (killed_at >= 0) {
				if (tick - killed_at > 60) {
					TAP(0, "fuzz_workers_killable",
					    "%d workers survive SIGKILL for 60 s (stuck in the kernel)",
					    alive);
					break;
				}
				continue;
			}
			for (int i = 0; i < nprocs; i++) {
				uint64_t n = __atomic_load_n(&sh->w[i].ioctls, __ATOMIC_RELAXED);

				if (pids[i] <= 0)
					continue;
				still[i] = n == seen[i] ? still[i] + 1 : 0;
				seen[i] = n;
				if (still[i] < timeout)
					continue;
				printf("@@NOTE fuzz: worker %d (pid %d) made no call for %lld s after "
				       "%llu: killed\n", i, (int)pids[i], timeout,
				       (unsigned long long)n);
				hung++;
			}
			if (hung) {
				for (int i = 0; i < nprocs; i++)
					if (pids[i] > 0) {
						kill(pids[i], SIGKILL);
						killed[i] = 1;
					}
				TAP(0, "fuzz_no_hung_worker", "%d workers stopped making calls for "
				    "%lld s", hung, timeout);
				phase = 1;
				killed_at = tick;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (!phase)
		TAP(1, "fuzz_no_hung_worker", "%s", "");

	{
		int sig = 0, bad = 0, who = -1;

		for (int i = 0; i < nprocs; i++) {
			if (pids[i] >= 0 || killed[i])
				continue;
			if (WIFSIGNALED(status[i]) && !sig) {
				sig = WTERMSIG(status[i]);
				who = i;
			} else if (WIFEXITED(status[i]) && WEXITSTATUS(status[i])) {
				bad++;
			}
		}
		TAP(!sig, "fuzz_no_signal_death", "worker %d died of signal %d (%s)", who, sig,
		    strsignal(sig));
		TAP(!bad, "fuzz_workers_exit_clean", "%d workers exited with an error", bad);
	}

	/* What the workers saw. */
	{
		uint64_t res[NCLASS][NERR] = { { 0 } }, clean[NCMD] = { 0 }, ok[NCMD] = { 0 };
		uint64_t st[NERR] = { 0 }, polls = 0, pollin = 0, closes = 0, busy = 0, dups = 0;
		uint64_t mmaps = 0, mmaps_ok = 0, jobs = 0, resets = 0, opens = 0;

		for (int i = 0; i < nprocs; i++) {
			struct wstats *ws = &sh->w[i];

			total += ws->ioctls;
			iters += ws->iters;
			for (int c = 0; c < NCLASS; c++)
				for (int e = 0; e < NERR; e++)
					res[c][e] += ws->res[c][e];
			for (int c = 0; c < NCMD; c++) {
				clean[c] += ws->clean[c];
				ok[c] += ws->clean_ok[c];
			}
			for (int e = 0; e < NERR; e++)
				st[e] += ws->status[e];
			polls += ws->polls;
			pollin += ws->pollin;
			opens += ws->opens;
			closes += ws->closes;
			busy += ws->closes_busy;
			dups += ws->dups;
			mmaps += ws->mmaps;
			mmaps_ok += ws->mmaps_ok;
			jobs += ws->jobs;
			resets += ws->resets;
		}
		for (int k = 0; k < NCHECK; k++) {
			uint64_t n = 0;
			const char *first = "";

			for (int i = 0; i < nprocs; i++) {
				if (sh->w[i].fails[k] && !n)
					first = sh->w[i].first[k];
				n += sh->w[i].fails[k];
			}
			if (k == K_PRIV && opt_uid < 0)
				continue;
			TAP(!n, check_name[k], "%llu failures; first: %s", (unsigned long long)n,
			    first);
		}
		for (int c = 0; c < NCLASS; c++)
			for (int e = 0; e < NERR; e++)
				if (res[c][e]) {
					distinct++;
					printf("@@NOTE fuzz-result: %s %s %llu\n", class_name(c),
					       e == NERR - 1 ? "E_other" : ename(slot_err(e)),
					       (unsigned long long)res[c][e]);
				}
		for (int e = 0; e < NERR; e++)
			if (st[e])
				printf("@@NOTE fuzz-job-status: %s %llu\n",
				       e == NERR - 1 ? "E_other" : ename(slot_err(e)),
				       (unsigned long long)st[e]);
		printf("@@NOTE fuzz: %" PRIu64 " iterations; opens %llu closes %llu (%llu with"
		       " jobs in flight) dups %llu; polls %llu (%llu POLLIN); mmaps %llu (%llu ok);"
		       " async jobs %llu; resets %llu\n", iters, (unsigned long long)opens,
		       (unsigned long long)closes, (unsigned long long)busy,
		       (unsigned long long)dups,
		       (unsigned long long)polls, (unsigned long long)pollin,
		       (unsigned long long)mmaps, (unsigned long long)mmaps_ok,
		       (unsigned long long)jobs, (unsigned long long)resets);
		printf("@@NOTE fuzz: well-formed calls that succeeded:");
		for (int c = 0; c < NCMD; c++)
			printf(" %s %llu/%llu", cmds[c].name, (unsigned long long)ok[c],
			       (unsigned long long)clean[c]);
		printf("\n");
		/* The deep paths were reached: each command worked once at least, well formed. */
		if (iters >= 2000) {
			static const int need_kernel[] = {
				I_MEM_ALLOC, I_MEM_FREE, I_DMA, I_WAIT, I_CMD, I_DMA_BUF, I_DMA_BATCH,
			};
			char missing[160] = "";

			if (!ok[I_INFO])
				strcat(missing, " INFO");
			if (!ok[I_BUF_EXPORT])
				strcat(missing, " BUF_EXPORT");
			for (unsigned int k = 0; kernel_owned && k < ARRAY_SIZE(need_kernel); k++)
				if (!ok[need_kernel[k]]) {
					strcat(missing, " ");
					strcat(missing, cmds[need_kernel[k]].name);
				}
			TAP(!missing[0], "fuzz_coverage", "never succeeded:%s", missing);
		}
	}

	if (alive)
		printf("@@NOTE fuzz: %d workers could not be reaped; final checks skipped\n",
		       alive);
	else
		final_checks(inf.mem_free, kernel_owned, nprocs);

	printf("@@NOTE fuzz: %" PRIu64 " ioctls in %.1f s (%.0f/s), %d procs, seed %" PRIu64
	       ", distinct (ioctl,errno) results: %" PRIu64 "\n", total, secs,
	       secs > 0 ? total / secs : 0.0, only >= 0 ? 1 : nprocs, seed, distinct);
	fflush(stdout);
	return failed;
}
