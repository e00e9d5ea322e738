// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side test of the /dev/metisN ABI (uapi/linux/metis.h): argument
 * validation, device memory ownership, data-checked DMA in both directions
 * (sizes from 1 byte to 64 MiB, unaligned buffers, concurrent jobs), and the
 * firmware commands. Prints "@@TAP ok|not ok NAME" lines for the runner.
 *
 *   metis_test [DEVICE]            the whole suite
 *   metis_test DEVICE stress SECS  DMA round trips until SECS pass or the
 *                                  device goes away (prints the errno seen)
 *   metis_test DEVICE reset        METIS_IOCTL_RESET: lost regions, jobs
 *                                  failed by a reset, the card usable after
 *   metis_test DEVICE reset-perm   who may reset: an unprivileged caller only
 *                                  when it has the card to itself
 *   metis_test DEVICE flood N      N refused dma-buf fds and N/10 DMAs that
 *                                  time out, for the log-flood check
 *   metis_test DEVICE failnth      every ioctl (and open) with its 1st, 2nd,
 *                                  ... injection point failing: clean unwind
 *   metis_test DEVICE sleep N kept|lost CMD
 *                                  N system-sleep cycles (CMD is a shell
 *                                  command that does one), data checked
 *                                  around each; device memory must be kept
 *                                  or lost as said
 *   metis_test DEVICE sleep-inflight CMD [eio]
 *                                  a job hung on the card when CMD suspends
 *                                  (or resets, with eio): it fails with
 *                                  ESHUTDOWN (EIO), a retry works
 *   metis_test DEVICE fw-lost LOSE RELOAD
 *                                  runtime-owned card: LOSE (a shell command)
 *                                  costs it its firmware (uevent, POLLPRI,
 *                                  state BOOTLOADER); RELOAD loads one and
 *                                  METIS_IOCTL_FW_CHANGED adopts it
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../uapi/linux/metis.h"
#include "guest.h"


static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320 & -(c & 1));
	}
	return ~c;
}

static int dma(int fd, uint32_t flags, void *buf, uint64_t len, uint64_t handle, uint64_t off)
{
	struct metis_dma d = {
		.size = sizeof(d), .flags = flags, .user_addr = (uintptr_t)buf,
		.length = len, .handle = handle, .offset = off,
	};

	return xioctl(fd, METIS_IOCTL_DMA, &d);
}

/* Reaps job `id`: the ioctl's -errno, or 0 with the job's status in *status. */
static int wait_job(int fd, uint64_t id, uint32_t timeout_ms, int *status)
{
	struct metis_wait w = { .size = sizeof(w), .job_id = id, .timeout_ms = timeout_ms };
	int r = xioctl(fd, METIS_IOCTL_WAIT, &w);

	*status = w.status;
	return r;
}

static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static int do_reset(int fd, uint32_t flags)
{
	struct metis_reset r = { .size = sizeof(r), .flags = flags };

	return xioctl(fd, METIS_IOCTL_RESET, &r);
}

static uint32_t reset_count(int fd)
{
	struct metis_info i = { .size = sizeof(i) };

	return xioctl(fd, METIS_IOCTL_INFO, &i) ? UINT32_MAX : i.reset_count;
}

/* Round trip of `len` bytes at buffer misalignment `mis`; 0 if the data came back intact. */
static int round_trip(int fd, uint64_t handle, uint64_t off, size_t len, size_t mis, uint32_t seed,
		      char *why, size_t whylen)
{
	uint8_t *a = malloc(len + 64), *b = malloc(len + 64);
	int r = -1;

	if (!a || !b) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	fill(a + mis, len, seed);
	memset(b, 0, len + 64);
	if ((r = dma(fd, METIS_DMA_TO_DEVICE, a + mis, len, handle, off))) {
		snprintf(why, whylen, "to device: %s", strerror(-r));
		goto out;
	}
	if ((r = dma(fd, METIS_DMA_FROM_DEVICE, b + (mis ^ 3), len, handle, off))) {
		snprintf(why, whylen, "from device: %s", strerror(-r));
		goto out;
	}
	r = memcmp(a + mis, b + (mis ^ 3), len) ? -1 : 0;
	if (r) {
		size_t i = 0;

		while (a[mis + i] == b[(mis ^ 3) + i])
			i++;
		snprintf(why, whylen, "data differs at byte %zu of %zu (%02x != %02x)", i, len,
			 a[mis + i], b[(mis ^ 3) + i]);
	}
out:
	free(a);
	free(b);
	return r;
}

static void test_info(int fd)
{
	struct metis_info i = { .size = sizeof(i) };
	int r = xioctl(fd, METIS_IOCTL_INFO, &i);

	TAP(!r, "info", "%s", strerror(-r));
	TAP(i.abi_version == METIS_ABI_VERSION && i.vendor_id == 0x1f9d && i.device_id == 0x1100 &&
	    i.revision == 2, "info_identity", "abi %u id %04x:%04x rev %u", i.abi_version,
	    i.vendor_id, i.device_id, i.revision);
	TAP(i.fw_state == METIS_FW_READY && i.fw_version == (1 | 2 << 8 | 3 << 16) &&
	    i.fw_if_version == 1 << 16, "info_firmware", "state %u version %#x if %#x",
	    i.fw_state, i.fw_version, i.fw_if_version);
	/* The emulated cards of the tests have 1 or 2 GiB; the driver keeps the first 32 MiB. */
	TAP(i.mem_size >= 1ULL << 30 && i.mem_size % 4096 == 0 && i.mem_free > 0 &&
	    i.mem_free <= i.mem_size - (32 << 20) &&
	    i.wr_channels == 4 && i.rd_channels == 4, "info_memory_channels",
	    "mem %llu free %llu wr %u rd %u", (unsigned long long)i.mem_size,
	    (unsigned long long)i.mem_free, i.wr_channels, i.rd_channels);
	printf("@@NOTE info: irq_mode %u iommu_mode %u vectors %u\n", i.irq_mode, i.iommu_mode,
	       i.irq_vectors);
}

static void test_validation(int fd)
{
	struct metis_info i = { .size = sizeof(i) - 4 };
	struct { struct metis_info i; uint8_t tail[16]; } big;
	struct metis_mem_alloc a = { .size = sizeof(a), .flags = 1, .length = 4096 };
	uint64_t h, h2;
	uint8_t buf[64];

	TAP(xioctl(fd, METIS_IOCTL_INFO, &i) == -EINVAL, "reject_wrong_size_field", "accepted");
	TAP(xioctl(fd, METIS_IOCTL_MEM_ALLOC, &a) == -EINVAL, "reject_unknown_flags", "accepted");
	TAP(xioctl(fd, _IOWR(METIS_IOCTL_MAGIC, 0x3f, struct metis_info), &i) == -ENOTTY,
	    "reject_unknown_ioctl", "accepted");
	/* A newer, larger struct is accepted only if the bytes we don't know are zero. */
	memset(&big, 0, sizeof(big));
	big.i.size = sizeof(big);
	TAP(xioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, METIS_IOCTL_MAGIC, 0, sizeof(big)), &big) == 0 &&
	    big.i.abi_version == METIS_ABI_VERSION, "accept_larger_zeroed_struct", "rejected");
	big.tail[7] = 1;
	TAP(xioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, METIS_IOCTL_MAGIC, 0, sizeof(big)), &big) == -EINVAL,
	    "reject_nonzero_unknown_field", "accepted");
	TAP(xioctl(fd, METIS_IOCTL_INFO, NULL) == -EFAULT, "reject_bad_pointer", "accepted");

	TAP(mem_alloc(fd, 0, &h) == -EINVAL, "alloc_zero_rejected", "accepted");
	TAP(mem_alloc(fd, 1ULL << 40, &h) == -EINVAL, "alloc_too_large_rejected", "accepted");
	TAP(mem_alloc(fd, 3ULL << 30, &h) == -ENOSPC, "alloc_beyond_memory_enospc", "accepted");
	TAP(mem_free(fd, 12345678) == -ENOENT, "free_unknown_enoent", "accepted");
	if (mem_alloc(fd, 8192, &h)) {
		TAP(0, "alloc_8k", "failed");
		return;
	}
	TAP(dma(fd, METIS_DMA_TO_DEVICE, buf, 64, h, 8192 - 63) == -EINVAL, "dma_past_region_end", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE, buf, 64, h, UINT64_MAX - 8) == -EINVAL, "dma_offset_overflow", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE, buf, 0, h, 0) == -EINVAL, "dma_zero_length", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE, buf, 64, h, 0) == -EINVAL,
	    "dma_two_directions", "accepted");
	TAP(dma(fd, 0, buf, 64, h, 0) == -EINVAL, "dma_no_direction", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE | 0x80, buf, 64, h, 0) == -EINVAL, "dma_unknown_flag", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE, NULL, 64, h, 0) == -EFAULT, "dma_null_buffer", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE, (void *)(uintptr_t)~0xfffULL, 64, h, 0) != 0,
	    "dma_wrapping_buffer", "accepted");
	{
		struct metis_dma d = { .size = sizeof(d), .flags = METIS_DMA_TO_DEVICE,
			.user_addr = (uintptr_t)buf, .length = 64, .handle = h, .reserved = 1 };
		TAP(xioctl(fd, METIS_IOCTL_DMA, &d) == -EINVAL, "dma_reserved_nonzero", "accepted");
	}
	/* The card writes this buffer: a read-only mapping must be refused, not written. */
	{
		uint8_t *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		TAP(dma(fd, METIS_DMA_FROM_DEVICE, ro, 64, h, 0) == -EFAULT, "dma_into_readonly_buffer",
		    "accepted");
		munmap(ro, 4096);
	}
	/* Another open file can't see this file's region. */
	{
		int fd2 = open(dev_path, O_RDWR);
		TAP(fd2 >= 0 && dma(fd2, METIS_DMA_TO_DEVICE, buf, 64, h, 0) == -ENOENT &&
		    mem_free(fd2, h) == -ENOENT, "region_private_to_file", "other file reached it");
		if (fd2 >= 0 && mem_alloc(fd2, 4096, &h2) == 0) {
			close(fd2);	/* closing frees its regions */
			TAP(mem_free(fd, h2) == -ENOENT, "close_frees_regions", "handle still valid");
		}
	}
	TAP(mem_free(fd, h) == 0 && mem_free(fd, h) == -ENOENT, "free_then_double_free", "wrong");
}

static void test_dma_sizes(int fd)
{
	static const size_t sizes[] = { 1, 3, 4095, 4096, 4097, 65549, (1 << 20) + 7, 16 << 20, 64 << 20 };
	uint64_t h;
	char why[160], name[64];

	if (mem_alloc(fd, 65 << 20, &h)) {
		TAP(0, "alloc_65m", "failed");
		return;
	}
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t mis = i % 8;
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		snprintf(name, sizeof(name), "dma_round_trip_%zuB_misaligned_%zu", sizes[i], mis);
		TAP(round_trip(fd, h, i * 4096 % (1 << 20), sizes[i], mis, i, why, sizeof(why)) == 0,
		    name, "%s", why);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("@@NOTE %s: %.1f ms\n", name,
		       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	}
	mem_free(fd, h);
}

struct worker {
	int fd;
	int id;
	int errors;
	char why[160];
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	uint64_t h;

	if (mem_alloc(w->fd, 1 << 20, &h)) {
		w->errors++;
		snprintf(w->why, sizeof(w->why), "alloc failed");
		return NULL;
	}
	for (int i = 0; i < 6; i++)
		if (round_trip(w->fd, h, 0, 100000 + w->id * 4099 + i, (w->id + i) % 8, w->id * 100 + i,
			       w->why, sizeof(w->why)))
			w->errors++;
	mem_free(w->fd, h);
	return NULL;
}

static void test_concurrent(int fd)
{
	enum { N = 8 };
	struct worker w[N];
	pthread_t t[N];
	int errors = 0;
	const char *why = "";

	for (int i = 0; i < N; i++) {
		w[i] = (struct worker){ .fd = fd, .id = i };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		errors += w[i].errors;
		if (w[i].errors)
			why = w[i].why;
	}
	TAP(errors == 0, "dma_8_concurrent_jobs", "%d errors, e.g. %s", errors, why);
}

static int cmd(int fd, struct metis_cmd *c)
{
	c->size = sizeof(*c);
	return xioctl(fd, METIS_IOCTL_CMD, c);
}

static void test_commands(int fd)
{
	enum { LEN = 300000 };
	struct metis_cmd c;
	uint8_t *a = malloc(LEN), *b = malloc(LEN);
	uint64_t hin, hout;
	int ok;

	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_ECHO;
	c.echo_len = 13;
	memcpy(c.echo, "hello, metis!", 13);
	TAP(cmd(fd, &c) == 0 && !memcmp(c.echo, "hello, metis!", 13), "cmd_echo", "failed");

	if (mem_alloc(fd, LEN, &hin) || mem_alloc(fd, LEN, &hout)) {
		TAP(0, "cmd_alloc", "failed");
		return;
	}
	fill(a, LEN, 77);
	dma(fd, METIS_DMA_TO_DEVICE, a, LEN, hin, 0);
	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_CHECKSUM;
	c.handle_in = hin;
	c.length = LEN;
	TAP(cmd(fd, &c) == 0 && c.result == crc32(a, LEN), "cmd_checksum", "card %#x host %#x",
	    c.result, crc32(a, LEN));

	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_FILL;
	c.handle_in = hout;
	c.offset_in = 4;
	c.length = 4096;
	c.arg = 0xdeadbeef;
	ok = cmd(fd, &c) == 0 && dma(fd, METIS_DMA_FROM_DEVICE, b, 4104, hout, 0) == 0;
	for (int i = 0; ok && i < 4096; i++)
		ok = b[4 + i] == ((0xdeadbeefu >> (8 * (i % 4))) & 0xff);
	TAP(ok, "cmd_fill", "pattern not found in device memory");

	for (uint32_t op = 0; op < 4; op++) {
		char name[32];

		memset(&c, 0, sizeof(c));
		c.opcode = METIS_CMD_RUN;
		c.op = op;
		c.arg = 0x5a;
		c.handle_in = hin;
		c.handle_out = hout;
		c.length = LEN;
		ok = cmd(fd, &c) == 0 && dma(fd, METIS_DMA_FROM_DEVICE, b, LEN, hout, 0) == 0;
		for (int i = 0; ok && i < LEN; i++) {
			uint8_t want = op == 0 ? a[i] : op == 1 ? (uint8_t)~a[i] :
				       op == 2 ? a[i] ^ 0x5a : (uint8_t)(a[i] + 0x5a + i);
			ok = b[i] == want;
		}
		snprintf(name, sizeof(name), "cmd_run_op%u", op);
		TAP(ok && c.result == crc32(b, LEN), name, "output or checksum wrong");
	}
	/* Bounds are checked by the driver before the card sees the command. */
	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_CHECKSUM;
	c.handle_in = hin;
	c.offset_in = 4096;	/* regions are whole pages: 4096 + LEN passes the end */
	c.length = LEN;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_checksum_past_end", "accepted");
	c.opcode = 99;
	c.offset_in = 0;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_unknown_opcode", "accepted");
	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_ECHO;
	c.echo_len = METIS_ECHO_MAX + 1;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_echo_too_long", "accepted");

	/* Input fields an opcode does not use must be zero, so that they can get a meaning later. */
	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_ECHO;
	c.echo_len = 4;
	memcpy(c.echo, "abcd", 4);
	c.handle_in = hin;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_echo_dirty_handle", "accepted");
	c.handle_in = 0;
	c.echo[10] = 1;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_echo_dirty_tail", "accepted");
	c.echo[10] = 0;
	c.arg = 1;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_echo_dirty_arg", "accepted");
	c.arg = 0;
	c.result = 0xffffffff;	/* output only: whatever it holds is ignored */
	TAP(cmd(fd, &c) == 0 && !memcmp(c.echo, "abcd", 4), "cmd_echo_clean", "failed");
	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_CHECKSUM;
	c.handle_in = hin;
	c.length = 4096;
	c.handle_out = hout;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_checksum_dirty_out", "accepted");
	c.handle_out = 0;
	c.arg = 5;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_checksum_dirty_arg", "accepted");
	c.arg = 0;
	c.echo[0] = 1;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_checksum_dirty_echo", "accepted");
	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_RUN;
	c.handle_in = hin;
	c.handle_out = hout;
	c.length = 4096;
	c.echo[METIS_ECHO_MAX - 1] = 1;
	TAP(cmd(fd, &c) == -EINVAL, "cmd_run_dirty_echo", "accepted");
	mem_free(fd, hin);
	mem_free(fd, hout);
	free(a);
	free(b);
}


/* Async jobs: ids, poll(), WAIT with and without limit, the per-file job limit, data. */
static void test_async(int fd)
{
	enum { N = 8, LEN = 256 << 10, BIG = 64 << 20 };
	uint8_t *src = malloc((size_t)N * LEN), *dst = malloc((size_t)N * LEN), *big = malloc(BIG);
	int64_t ids[METIS_MAX_JOBS + 1];
	uint64_t h, hb;
	int st, bad = 0, r;

	if (!src || !dst || !big || mem_alloc(fd, (uint64_t)N * LEN, &h) || mem_alloc(fd, BIG, &hb)) {
		TAP(0, "async_setup", "allocation failed");
		return;
	}
	TAP(!readable(fd, 0), "poll_idle_not_readable", "readable with no job");
	{
		int s2;
		TAP(wait_job(fd, 12345, 0, &s2) == -ENOENT, "wait_unknown_job_enoent", "accepted");
		struct metis_wait w = { .size = sizeof(w), .flags = 1, .job_id = 1 };
		TAP(xioctl(fd, METIS_IOCTL_WAIT, &w) == -EINVAL, "wait_unknown_flag", "accepted");
	}

	/* N jobs to the card at once, then N back; every byte checked. */
	fill(src, (size_t)N * LEN, 77);
	memset(dst, 0, (size_t)N * LEN);
	for (int i = 0; i < N; i++)
		ids[i] = dma_async(fd, METIS_DMA_TO_DEVICE, src + (size_t)i * LEN + (i & 3), LEN - 4,
				   h, (uint64_t)i * LEN);
	for (int i = 0; i < N; i++)
		bad |= ids[i] <= 0 || wait_job(fd, ids[i], 0, &st) || st;
	TAP(!bad, "async_to_device", "a job failed");
	for (int i = 0; i < N; i++)
		ids[i] = dma_async(fd, METIS_DMA_FROM_DEVICE, dst + (size_t)i * LEN + (i & 3), LEN - 4,
				   h, (uint64_t)i * LEN);
	/* Reap in completion order, as an event loop would: poll, then WAIT with a short limit. */
	{
		int left = N, spins = 0;
		while (left && spins++ < 20000) {
			if (!readable(fd, 10000))
				break;
			for (int i = 0; i < N; i++) {
				if (ids[i] <= 0)
					continue;
				r = wait_job(fd, ids[i], 1, &st);
				if (r == -ETIMEDOUT)
					continue;
				bad |= r || st;
				ids[i] = 0;
				left--;
			}
		}
		bad |= left != 0;
	}
	for (int i = 0; i < N && !bad; i++)
		bad |= memcmp(src + (size_t)i * LEN + (i & 3), dst + (size_t)i * LEN + (i & 3), LEN - 4) != 0;
	TAP(!bad, "async_poll_reap_data", "jobs failed or data differs");
	TAP(!readable(fd, 0), "poll_not_readable_after_reap", "still readable");

	/*
	 * A job the card holds (every read channel's next data element waits for a release)
	 * is pending when a 1 ms WAIT ends, and is reaped once let go. Without the hold, a
	 * guest descheduled for longer than the transfer found it done (a loaded host).
	 */
	fill(big, BIG, 5);
	bad = 0;
	for (int ch = 0; ch < 4; ch++)
		bad |= card_ctl("inject data-stall rd %d 60000", ch) != 0;
	TAP(!bad, "arm_data_stall", "host request failed");
	ids[0] = dma_async(fd, METIS_DMA_TO_DEVICE, big, BIG, hb, 0);
	r = ids[0] > 0 ? wait_job(fd, ids[0], 1, &st) : (int)ids[0];
	TAP(r == -ETIMEDOUT, "wait_limit_etimedout", "got %d", r);
	for (int ch = 0; ch < 4; ch++)
		card_ctl("inject link-release rd %d", ch);
	card_ctl("clear");
	r = wait_job(fd, ids[0], 0, &st);
	TAP(r == 0 && st == 0, "wait_after_timeout_reaps", "r %d status %d", r, st);
	TAP(wait_job(fd, ids[0], 0, &st) == -ENOENT, "reaped_job_gone", "still there");

	/* The limit counts completed-but-unreaped jobs too. */
	for (int i = 0; i < METIS_MAX_JOBS; i++)
		ids[i] = dma_async(fd, METIS_DMA_TO_DEVICE, src, 4096, h, 0);
	ids[METIS_MAX_JOBS] = dma_async(fd, METIS_DMA_TO_DEVICE, src, 4096, h, 0);
	bad = 0;
	for (int i = 0; i < METIS_MAX_JOBS; i++)
		bad |= ids[i] <= 0;
	TAP(!bad && ids[METIS_MAX_JOBS] == -EAGAIN, "job_limit_eagain", "last %lld",
	    (long long)ids[METIS_MAX_JOBS]);
	for (int i = 0; i < METIS_MAX_JOBS; i++)
		bad |= ids[i] <= 0 || wait_job(fd, ids[i], 0, &st) || st;
	TAP(!bad, "job_limit_reap_all", "a job failed");
	ids[0] = dma_async(fd, METIS_DMA_TO_DEVICE, src, 4096, h, 0);
	TAP(ids[0] > 0 && wait_job(fd, ids[0], 0, &st) == 0 && st == 0, "submit_after_reap",
	    "%lld", (long long)ids[0]);

	/* Validation happens at submission: a bad job never gets an id. */
	TAP(dma_async(fd, METIS_DMA_TO_DEVICE, src, 64, h, (uint64_t)N * LEN) == -EINVAL,
	    "async_bounds_checked", "accepted");
	TAP(dma_async(fd, METIS_DMA_TO_DEVICE, NULL, 64, h, 0) == -EFAULT,
	    "async_bad_buffer_efault", "accepted");

	/* Closing a file with a job in flight waits for it; nothing leaks or crashes. */
	{
		int fd2 = open(dev_path, O_RDWR);
		uint64_t h2;
		int64_t id;
		if (fd2 >= 0 && mem_alloc(fd2, BIG, &h2) == 0) {
			id = dma_async(fd2, METIS_DMA_TO_DEVICE, big, BIG, h2, 0);
			TAP(id > 0 && close(fd2) == 0, "close_with_job_in_flight", "id %lld", (long long)id);
		} else {
			TAP(0, "close_with_job_in_flight", "setup: %s", strerror(errno));
		}
	}
	TAP(mem_free(fd, h) == 0 && mem_free(fd, hb) == 0, "async_regions_freed", "busy");
	free(src);
	free(dst);
	free(big);
}

/* A socket that receives kernel uevents, or -1. */
static int uevent_socket(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	struct timeval tv = { .tv_sec = 2 };
	int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a))) {
		if (s >= 0)
			close(s);
		return -1;
	}
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return s;
}

/* Whether a uevent carrying `key` arrives on `s` (2 s without any uevent ends the search). */
static int uevent_seen(int s, const char *key)
{
	char buf[4096];
	ssize_t n;

	while ((n = recv(s, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = 0;
		for (char *p = buf; p < buf + n; p += strlen(p) + 1)
			if (!strcmp(p, key))
				return 1;
	}
	return 0;
}

/* Asks the emulator (through the runner, tests/guest/lib.sh) to hold read channel 0's next doorbell. */
#define HANG_RD0 ". /lib/metis/lib.sh && host card 0 inject hang-channel rd 0 | grep -q '\"ok\":true'"

struct reset_arg {
	int fd;
	int result;
};

/* Whether the emulator has consumed the armed hang, i.e. a job now hangs on read channel 0. */
#define HUNG_RD0 ". /lib/metis/lib.sh && host card 0 stats | grep -q '\"hang_channel\":\\[\\]'"

/*
 * The helpers below run shell commands (system()), whose SIGCHLD would make a
 * DMA waiting in another thread restart (ERESTARTSYS, as it should); the
 * suites that use them keep SIGCHLD blocked so each call runs exactly once.
 */
static void block_sigchld(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/* Waits (up to 60 s) until a job hangs on the card, so what follows finds it there. */
static int wait_hung(void)
{
	for (int i = 0; i < 600; i++) {
		if (system(HUNG_RD0) == 0)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

static void *reset_thread(void *p)
{
	struct reset_arg *a = p;

	a->result = wait_hung() ? -ETIMEDOUT : do_reset(a->fd, 0);
	return NULL;
}

/* METIS_IOCTL_RESET: the card comes back, regions are lost once, jobs on the card fail with EIO. */
static int reset_suite(void)
{
	enum { BIG = 64 << 20 };
	int fd = open(dev_path, O_RDWR), st, r;
	uint8_t *big = malloc(BIG);
	uint64_t h, hb;
	uint32_t n0;
	char why[160];
	pthread_t t;
	struct reset_arg ra;

	block_sigchld();

	TAP(fd >= 0, "open_device", "%s", strerror(errno));
	if (fd < 0 || !big || mem_alloc(fd, 1 << 20, &h) || mem_alloc(fd, BIG, &hb))
		return 1;
	TAP(round_trip(fd, h, 0, 4096, 1, 1, why, sizeof(why)) == 0, "before_reset", "%s", why);
	{
		struct metis_reset bad = { .size = sizeof(bad), .flags = 0x80 };
		TAP(xioctl(fd, METIS_IOCTL_RESET, &bad) == -EINVAL, "reset_unknown_flag", "accepted");
	}
	n0 = reset_count(fd);
	{
		int us = uevent_socket();
		char key[64];

		r = do_reset(fd, 0);
		TAP(r == 0 && reset_count(fd) == n0 + 1, "reset", "r %d count %u -> %u", r, n0,
		    reset_count(fd));
		snprintf(key, sizeof(key), "METIS_RESET_COUNT=%u", n0 + 1);
		TAP(us >= 0 && uevent_seen(us, key), "reset_uevent", "no uevent with %s", key);
		if (us >= 0)
			close(us);
	}
	r = dma(fd, METIS_DMA_TO_DEVICE, big, 4096, h, 0);
	TAP(r == -ESTALE, "region_lost_estale", "got %d", r);
	TAP(round_trip(fd, h, 0, 1 << 20, 3, 2, why, sizeof(why)) == 0, "region_usable_after_estale",
	    "%s", why);
	{
		struct metis_cmd c = { .size = sizeof(c), .opcode = METIS_CMD_ECHO, .echo_len = 5 };
		memcpy(c.echo, "after", 5);
		TAP(xioctl(fd, METIS_IOCTL_CMD, &c) == 0 && !memcmp(c.echo, "after", 5),
		    "firmware_answers_after_reset", "echo failed");
	}

	/*
	 * A reset during a job that hangs on the card (the emulator holds the next
	 * doorbell of read channel 0, which the next host-to-card job gets): the job
	 * fails with EIO, nothing else does.
	 */
	TAP(dma(fd, METIS_DMA_TO_DEVICE, big, 64, hb, 0) == -ESTALE, "region_lost_by_first_reset",
	    "not marked lost");
	fill(big, BIG, 9);
	TAP(system(HANG_RD0) == 0, "arm_hang_async", "host request failed");
	{
		int64_t id = dma_async(fd, METIS_DMA_TO_DEVICE, big, BIG, hb, 0);
		ra.fd = fd;
		pthread_create(&t, NULL, reset_thread, &ra);
		r = id > 0 ? wait_job(fd, id, 0, &st) : (int)id;
		pthread_join(t, NULL);
		TAP(r == 0 && st == -EIO && ra.result == 0, "job_failed_by_reset_eio",
		    "wait %d status %d reset %d", r, st, ra.result);
	}
	/* A synchronous job the same way: EIO back in the caller. */
	TAP(dma(fd, METIS_DMA_TO_DEVICE, big, 64, hb, 0) == -ESTALE, "region_lost_by_second_reset",
	    "not marked lost");
	TAP(system(HANG_RD0) == 0, "arm_hang_sync", "host request failed");
	{
		ra.fd = fd;
		pthread_create(&t, NULL, reset_thread, &ra);
		r = dma(fd, METIS_DMA_TO_DEVICE, big, BIG, hb, 0);
		pthread_join(t, NULL);
		TAP(r == -EIO && ra.result == 0, "sync_job_failed_by_reset",
		    "dma %d reset %d", r, ra.result);
	}
	TAP(dma(fd, METIS_DMA_TO_DEVICE, big, 64, hb, 0) == -ESTALE, "region_lost_by_third_reset",
	    "not marked lost");
	TAP(round_trip(fd, hb, 4096, 8 << 20, 2, 3, why, sizeof(why)) == 0, "dma_after_resets",
	    "%s", why);
	TAP(do_reset(fd, METIS_RESET_RELOAD_FIRMWARE) == 0, "reset_reload_firmware", "failed");
	TAP(reset_count(fd) == n0 + 4, "reset_count_counts", "%u after 4 from %u", reset_count(fd), n0);
	close(fd);
	free(big);
	return failed;
}

/* System sleep cycles: DMA before and after each, memory kept or lost as expected. */
static int sleep_suite(int cycles, const char *expect, const char *cmd)
{
	enum { LEN = 1 << 20 };
	int fd = open(dev_path, O_RDWR), kept = 0, lost = 0, bad = 0, r;
	uint8_t *a = malloc(LEN), *b = malloc(LEN);
	char why[160] = "";
	uint64_t h;
	int want_kept = !strcmp(expect, "kept");

	if (fd < 0 || !a || !b || mem_alloc(fd, 2 * LEN, &h)) {
		TAP(0, "sleep_setup", "%s", strerror(errno));
		return 1;
	}
	for (int i = 0; i < cycles && !bad; i++) {
		uint32_t before = reset_count(fd);

		fill(a, LEN, 1000 + i);
		if ((r = dma(fd, METIS_DMA_TO_DEVICE, a, LEN, h, 0))) {
			snprintf(why, sizeof(why), "cycle %d: DMA before sleep: %s", i, strerror(-r));
			bad = 1;
			break;
		}
		if (system(cmd)) {
			snprintf(why, sizeof(why), "cycle %d: sleep command failed", i);
			bad = 1;
			break;
		}
		if (reset_count(fd) == before) {
			kept++;
			memset(b, 0, LEN);
			r = dma(fd, METIS_DMA_FROM_DEVICE, b, LEN, h, 0);
			if (r || memcmp(a, b, LEN)) {
				snprintf(why, sizeof(why), "cycle %d: memory said kept but read %s", i,
					 r ? strerror(-r) : "different data");
				bad = 1;
			}
		} else {
			lost++;
			r = dma(fd, METIS_DMA_FROM_DEVICE, b, LEN, h, 0);
			if (r != -ESTALE) {
				snprintf(why, sizeof(why), "cycle %d: lost memory not reported (%d)", i, r);
				bad = 1;
			}
		}
		if (!bad && round_trip(fd, h, LEN, LEN - 7, i & 7, i, why, sizeof(why)))
			bad = 1;
	}
	printf("@@NOTE sleep: %d cycles, memory kept %d, lost (firmware reloaded) %d\n", kept + lost,
	       kept, lost);
	TAP(!bad, "sleep_cycles_data_checked", "%s", why);
	TAP(!bad && (want_kept ? kept == cycles : lost == cycles), "sleep_memory_as_expected",
	    "expected %s: kept %d lost %d", expect, kept, lost);
	close(fd);
	return failed;
}

/*
 * A job hung on the card when CMD runs fails with `want` (ESHUTDOWN for a
 * system sleep, EIO for a reset); a retry works.
 */
static int sleep_inflight(const char *cmd, int want)
{
	enum { LEN = 1 << 20 };
	int fd = open(dev_path, O_RDWR), st = 0, r;
	uint8_t *a = malloc(LEN);
	char why[160];
	uint64_t h;
	int64_t id;

	block_sigchld();

	if (fd < 0 || !a || mem_alloc(fd, LEN, &h)) {
		TAP(0, "inflight_setup", "%s", strerror(errno));
		return 1;
	}
	fill(a, LEN, 3);
	TAP(system(HANG_RD0) == 0, "arm_hang", "host request failed");
	id = dma_async(fd, METIS_DMA_TO_DEVICE, a, LEN, h, 0);
	TAP(id > 0, "submit_before_sleep", "%lld", (long long)id);
	TAP(wait_hung() == 0, "job_hangs_on_card", "the job never reached the card");
	TAP(system(cmd) == 0, "sleep_with_job_in_flight", "sleep command failed");
	r = id > 0 ? wait_job(fd, id, 0, &st) : -1;
	TAP(r == 0 && st == -want, want == EIO ? "inflight_job_eio" : "inflight_job_eshutdown",
	    "wait %d status %d", r, st);
	if (dma(fd, METIS_DMA_TO_DEVICE, a, 64, h, 0) == -ESTALE)
		printf("@@NOTE inflight: device memory was lost across the sleep\n");
	id = dma_async(fd, METIS_DMA_TO_DEVICE, a, LEN, h, 0);
	TAP(id > 0 && wait_job(fd, id, 0, &st) == 0 && st == 0, "retry_after_resume", "status %d", st);
	TAP(round_trip(fd, h, 0, LEN, 1, 4, why, sizeof(why)) == 0, "dma_after_resume", "%s", why);
	close(fd);
	return failed;
}

/*
 * Security review M5: an async job's work item must not outlive the module.
 * The scenario arms a channel that ignores stop; a job hangs on it, its file
 * is closed (release waits for the job's status) and the module is unloaded
 * at once, while the work item still runs the recovery reset the stuck
 * channel asked for.
 */
static int close_inflight(uint32_t timeout_ms)
{
	enum { LEN = 1 << 20 };
	int fd = open(dev_path, O_RDWR), r;
	uint8_t *a = malloc(LEN);
	uint64_t h;

	block_sigchld();
	if (fd < 0 || !a || mem_alloc(fd, LEN, &h)) {
		TAP(0, "close_inflight_setup", "%s", strerror(errno));
		return 1;
	}
	fill(a, LEN, 5);
	struct metis_dma d = {
		.size = sizeof(d), .flags = METIS_DMA_TO_DEVICE | METIS_DMA_ASYNC,
		.user_addr = (uintptr_t)a, .length = LEN, .handle = h, .timeout_ms = timeout_ms,
	};
	r = xioctl(fd, METIS_IOCTL_DMA, &d);
	TAP(r == 0, "close_inflight_submitted", "%s", strerror(-r));
	close(fd);
	r = system("rmmod metis");
	TAP(r == 0, "close_inflight_rmmod_at_once", "rmmod exit %d", r);
	free(a);
	return failed;
}

/*
 * Security review M7: async jobs of all files together are capped per card
 * (METIS_MAX_CARD_JOBS). The card holds back the interrupts of the first
 * four completions for 3 s, so those jobs keep every read channel and the
 * others queue behind them, while five files submit until refused: exactly
 * the cap is accepted, the next job gets EAGAIN, every accepted job then
 * completes, and there is room again.
 */
#define DELAY_IRQS ". /lib/metis/lib.sh && host card 0 inject delay-irq 4 3000 | grep -q '\"ok\":true'"

static int card_cap(void)
{
	enum { FILES = 5, LEN = 4096 };
	int fds[FILES], accepted = 0, refused_at = -1, bad = 0, st;
	static int64_t ids[FILES][METIS_MAX_JOBS];
	int n[FILES] = { 0 };
	uint8_t *a = aligned_alloc(4096, LEN);
	uint64_t h[FILES];

	block_sigchld();
	for (int f = 0; f < FILES; f++) {
		fds[f] = open(dev_path, O_RDWR);
		if (fds[f] < 0 || mem_alloc(fds[f], LEN, &h[f])) {
			TAP(0, "card_cap_setup", "%s", strerror(errno));
			return 1;
		}
	}
	TAP(system(DELAY_IRQS) == 0, "card_cap_delay_irqs", "host request failed");
	for (int f = 0; f < FILES && refused_at < 0; f++) {
		for (int j = 0; j < METIS_MAX_JOBS; j++) {
			struct metis_dma d = {
				.size = sizeof(d), .flags = METIS_DMA_TO_DEVICE | METIS_DMA_ASYNC,
				.user_addr = (uintptr_t)a, .length = LEN, .handle = h[f],
			};
			int r = xioctl(fds[f], METIS_IOCTL_DMA, &d);

			if (r == -EAGAIN) {
				refused_at = accepted;
				break;
			}
			if (r) {
				bad = 1;
				break;
			}
			ids[f][n[f]++] = (int64_t)d.job_id;
			accepted++;
		}
	}
	TAP(!bad && refused_at == METIS_MAX_CARD_JOBS, "card_cap_refuses_past_cap",
	    "accepted %d, refused at %d", accepted, refused_at);
	for (int f = 0; f < FILES; f++)
		for (int j = 0; j < n[f]; j++) {
			if (wait_job(fds[f], ids[f][j], 0, &st) || st)
				bad++;
		}
	TAP(!bad, "card_cap_all_accepted_complete", "%d failed", bad);
	TAP(dma_async(fds[0], METIS_DMA_TO_DEVICE, a, LEN, h[0], 0) > 0, "card_cap_room_again",
	    "refused after the queue drained");
	for (int f = 0; f < FILES; f++)
		close(fds[f]);
	free(a);
	return failed;
}

/*
 * Security review M6: pinned buffers are locked memory, charged to
 * RLIMIT_MEMLOCK. An unprivileged caller limited to 256 KiB may move 64 KiB
 * but not 1 MiB (ENOMEM, nothing else breaks: the next small job works, and
 * the limit is given back after each job, so ten more fit); root is exempt
 * (CAP_IPC_LOCK).
 */
static int memlock_suite(void)
{
	enum { SMALL = 64 << 10, BIG = 1 << 20 };
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		struct rlimit rl = { .rlim_cur = 256 << 10, .rlim_max = 256 << 10 };
		uint8_t *b = malloc(BIG);
		uint64_t h;
		int fd, bad = 0;

		/* The node is root:root 0660: keep the group, lose the user (and CAP_IPC_LOCK). */
		if (!b || setrlimit(RLIMIT_MEMLOCK, &rl) || become(65534, 0))
			_exit(3);
		fd = open(dev_path, O_RDWR);
		if (fd < 0 || mem_alloc(fd, BIG, &h))
			_exit(4);
		fill(b, BIG, 9);
		TAP(dma(fd, METIS_DMA_TO_DEVICE, b, SMALL, h, 0) == 0, "memlock_small_job_fits",
		    "refused");
		TAP(dma(fd, METIS_DMA_TO_DEVICE, b, BIG, h, 0) == -ENOMEM,
		    "memlock_big_job_enomem", "not refused with ENOMEM");
		for (int i = 0; i < 10; i++)
			bad |= dma(fd, METIS_DMA_FROM_DEVICE, b, SMALL, h, 0) != 0;
		TAP(!bad, "memlock_given_back_after_each_job", "a small job failed");
		close(fd);
		fflush(stdout);
		_exit(failed ? 1 : 0);
	}
	waitpid(pid, &st, 0);
	TAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "memlock_child", "status %#x", st);
	{
		struct rlimit rl = { .rlim_cur = 256 << 10, .rlim_max = RLIM_INFINITY };
		int fd = open(dev_path, O_RDWR);
		uint8_t *b = malloc(BIG);
		uint64_t h;

		setrlimit(RLIMIT_MEMLOCK, &rl);
		TAP(fd >= 0 && b && mem_alloc(fd, BIG, &h) == 0 &&
		    dma(fd, METIS_DMA_TO_DEVICE, b, BIG, h, 0) == 0, "memlock_root_exempt",
		    "refused");
		close(fd);
		free(b);
	}
	return failed;
}

/* METIS_IOCTL_BUF_REGISTER: the handle, or -errno. */
static int64_t buf_register(int fd, uint32_t flags, const void *addr, uint64_t len)
{
	struct metis_buf_register a = {
		.size = sizeof(a), .flags = flags, .user_addr = (uintptr_t)addr, .length = len,
	};
	int r = xioctl(fd, METIS_IOCTL_BUF_REGISTER, &a);

	return r ? r : (int64_t)a.handle;
}

static int buf_unregister(int fd, uint64_t handle)
{
	struct metis_buf_unregister a = { .size = sizeof(a), .handle = handle };

	return xioctl(fd, METIS_IOCTL_BUF_UNREGISTER, &a);
}

/*
 * Registered buffers (METIS_IOCTL_BUF_REGISTER, METIS_DMA_REGISTERED): pinned
 * and mapped once, used by jobs that pin and map nothing. Every argument is
 * checked; a job may use only its own file's buffers, inside them, for the
 * directions they were registered for; a buffer unregistered while a job
 * uses it lasts until the job ends; the pages stay pinned after an munmap;
 * the per-file limit and RLIMIT_MEMLOCK hold; data is checked both ways.
 */
static int registered_suite(void)
{
	enum { PAGES = 5, LEN = PAGES * 4096 - 100 };
	int fd = open(dev_path, O_RDWR), other = open(dev_path, O_RDWR), st;
	uint8_t *src = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *dst = malloc(LEN), *back = malloc(LEN);
	int64_t hs, hd, hb, hx[METIS_MAX_REGISTERED];
	struct metis_buf_register big = { .size = sizeof(big) + 8, .flags = METIS_DMA_TO_DEVICE };
	uint64_t region, other_region;
	int r, i, n;

	TAP(fd >= 0 && other >= 0 && src != MAP_FAILED && dst && back, "reg_setup", "%s",
	    strerror(errno));
	if (fd < 0 || other < 0 || src == MAP_FAILED || !dst || !back ||
	    mem_alloc(fd, 1 << 20, &region) || mem_alloc(other, 1 << 20, &other_region))
		return 1;

	/* Arguments. */
	TAP(buf_register(fd, 0, src, 4096) == -EINVAL, "reg_no_direction", "accepted");
	TAP(buf_register(fd, METIS_DMA_ASYNC | METIS_DMA_TO_DEVICE, src, 4096) == -EINVAL,
	    "reg_unknown_flag", "accepted");
	TAP(buf_register(fd, METIS_DMA_TO_DEVICE, src, 0) == -EINVAL, "reg_zero_length",
	    "accepted");
	TAP(buf_register(fd, METIS_DMA_TO_DEVICE, src, METIS_DMA_MAX_LENGTH + 1) == -EINVAL,
	    "reg_too_long", "accepted");
	TAP(buf_register(fd, METIS_DMA_TO_DEVICE, (void *)(uintptr_t)-4096, 8192) == -EINVAL,
	    "reg_wraps", "accepted");
	TAP(buf_register(fd, METIS_DMA_TO_DEVICE, (void *)4096, 4096) == -EFAULT,
	    "reg_unmapped_efault", "not EFAULT");
	/* The size field must be the size the ioctl number carries. */
	big.user_addr = (uintptr_t)src;
	big.length = 4096;
	TAP(xioctl(fd, METIS_IOCTL_BUF_REGISTER, &big) == -EINVAL, "reg_size_mismatch",
	    "accepted");
	TAP(buf_unregister(fd, 12345678) == -ENOENT, "unreg_unknown_enoent", "not ENOENT");
	{
		struct metis_buf_unregister u = { .size = sizeof(u), .flags = 1 };

		TAP(xioctl(fd, METIS_IOCTL_BUF_UNREGISTER, &u) == -EINVAL, "unreg_flags_einval",
		    "accepted");
	}

	/* To the card from 16 bytes into a registered range, back by an ordinary job. */
	fill(src, PAGES * 4096, 41);
	hs = buf_register(fd, METIS_DMA_TO_DEVICE, src + 100, LEN);
	TAP(hs > 0, "reg_to_device", "%s", strerror((int)-hs));
	r = dma(fd, METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, src + 116, LEN - 16, region, 8);
	TAP(r == 0, "reg_dma_to_device", "%s", strerror(-r));
	memset(back, 0, LEN);
	r = dma(fd, METIS_DMA_FROM_DEVICE, back, LEN - 16, region, 8);
	TAP(r == 0 && !memcmp(back, src + 116, LEN - 16), "reg_to_device_data",
	    "r %d or data differs", r);

	/* Where a registered job may not go. */
	TAP(dma(fd, METIS_DMA_FROM_DEVICE | METIS_DMA_REGISTERED, src + 100, 4096, region, 0) ==
	    -EINVAL, "reg_wrong_direction", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, src + 100, LEN + 1, region, 0) ==
	    -EINVAL, "reg_past_the_end", "accepted");
	TAP(dma(fd, METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, src + 99, 16, region, 0) ==
	    -EINVAL, "reg_before_the_start", "accepted");
	TAP(dma(other, METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, src + 100, 16, other_region,
		0) == -EINVAL, "reg_other_file", "accepted");
	TAP(buf_unregister(other, (uint64_t)hs) == -ENOENT, "unreg_other_file", "not ENOENT");
	{
		struct metis_dma_buf b = {
			.size = sizeof(b), .flags = METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED,
			.fd = 0, .length = 16, .handle = region,
		};

		TAP(xioctl(fd, METIS_IOCTL_DMA_BUF, &b) == -EINVAL, "reg_not_for_dma_buf",
		    "accepted");
	}

	/* From the card into a registered buffer, both directions allowed. */
	hd = buf_register(fd, METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE, dst, LEN);
	TAP(hd > 0, "reg_both", "%s", strerror((int)-hd));
	memset(dst, 0xee, LEN);
	r = dma(fd, METIS_DMA_FROM_DEVICE | METIS_DMA_REGISTERED, dst, LEN - 16, region, 8);
	TAP(r == 0 && !memcmp(dst, src + 116, LEN - 16) && dst[LEN - 1] == 0xee,
	    "reg_from_device_data", "r %d or data differs", r);

	/* Unregistered while an async job uses it: the job finishes with it. */
	memset(dst, 0, LEN);
	n = (int)dma_async(fd, METIS_DMA_FROM_DEVICE | METIS_DMA_REGISTERED, dst, LEN - 16,
			   region, 8);
	TAP(n > 0, "reg_async", "%s", strerror(-n));
	TAP(buf_unregister(fd, (uint64_t)hd) == 0, "unreg_while_in_use", "refused");
	TAP(n > 0 && wait_job(fd, (uint64_t)n, 10000, &st) == 0 && st == 0 &&
	    !memcmp(dst, src + 116, LEN - 16), "reg_async_outlives_unregister",
	    "status %d or data differs", st);
	TAP(buf_unregister(fd, (uint64_t)hd) == -ENOENT, "unreg_twice_enoent", "not ENOENT");
	TAP(dma(fd, METIS_DMA_FROM_DEVICE | METIS_DMA_REGISTERED, dst, 16, region, 0) == -EINVAL,
	    "reg_gone_after_unregister", "accepted");

	/* The registration keeps its pages: after munmap the card still reads them. */
	TAP(munmap(src, PAGES * 4096) == 0, "reg_munmap", "%s", strerror(errno));
	r = dma(fd, METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, src + 100, 4096, region, 0);
	TAP(r == 0, "reg_pages_outlive_munmap", "%s", strerror(-r));
	TAP(buf_unregister(fd, (uint64_t)hs) == 0, "unreg_after_munmap", "refused");

	/* The per-file limit. */
	for (i = 0, n = 0; i < METIS_MAX_REGISTERED; i++) {
		hx[i] = buf_register(fd, METIS_DMA_TO_DEVICE, back + (i % 8) * 64, 64);
		n += hx[i] > 0;
	}
	TAP(n == METIS_MAX_REGISTERED, "reg_limit_reached", "%d registered", n);
	hb = buf_register(fd, METIS_DMA_TO_DEVICE, back, 64);
	TAP(hb == -EDQUOT, "reg_past_limit_edquot", "got %lld", (long long)hb);
	TAP(buf_register(other, METIS_DMA_TO_DEVICE, back, 64) > 0, "reg_limit_per_file",
	    "another file was refused");
	TAP(buf_unregister(fd, (uint64_t)hx[7]) == 0 &&
	    (hb = buf_register(fd, METIS_DMA_TO_DEVICE, back, 64)) > 0, "reg_again_after_unregister",
	    "got %lld", (long long)hb);
	close(other);
	close(fd);

	/* RLIMIT_MEMLOCK: registered pages stay charged until unregistered. */
	if (fork() == 0) {
		struct rlimit rl = { .rlim_cur = 64 << 10, .rlim_max = 64 << 10 };
		uint8_t *b = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int64_t h1, h2;

		if (b == MAP_FAILED || setrlimit(RLIMIT_MEMLOCK, &rl) || become(65534, 0))
			_exit(3);
		fd = open(dev_path, O_RDWR);
		if (fd < 0)
			_exit(4);
		TAP(buf_register(fd, METIS_DMA_TO_DEVICE, b, 1 << 20) == -ENOMEM,
		    "reg_memlock_enomem", "not ENOMEM");
		h1 = buf_register(fd, METIS_DMA_TO_DEVICE, b, 48 << 10);
		TAP(h1 > 0, "reg_memlock_fits", "%s", strerror((int)-h1));
		h2 = buf_register(fd, METIS_DMA_TO_DEVICE, b + (64 << 10), 32 << 10);
		TAP(h2 == -ENOMEM, "reg_memlock_stays_charged", "got %lld", (long long)h2);
		TAP(h1 > 0 && buf_unregister(fd, (uint64_t)h1) == 0 &&
		    buf_register(fd, METIS_DMA_TO_DEVICE, b + (64 << 10), 32 << 10) > 0,
		    "reg_memlock_given_back", "still charged");
		close(fd);
		fflush(stdout);
		_exit(failed ? 1 : 0);
	}
	wait(&st);
	TAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reg_memlock_child", "status %#x", st);
	free(dst);
	free(back);
	return failed;
}

/* One entry of a batch. */
static struct metis_dma bent(uint32_t flags, const void *buf, uint64_t len, uint64_t handle,
			     uint64_t off)
{
	struct metis_dma d = {
		.size = sizeof(d), .flags = flags, .user_addr = (uintptr_t)buf,
		.length = len, .handle = handle, .offset = off,
	};

	return d;
}

/* METIS_IOCTL_DMA_BATCH: 0 or -errno; with METIS_DMA_ASYNC the job id goes to *id. */
static int dma_batch(int fd, uint32_t flags, const void *entries, uint32_t n,
		     uint32_t entry_size, int64_t *id)
{
	struct metis_dma_batch b = {
		.size = sizeof(b), .flags = flags, .entries = (uintptr_t)entries,
		.count = n, .entry_size = entry_size,
	};
	int r = xioctl(fd, METIS_IOCTL_DMA_BATCH, &b);

	if (id)
		*id = r ? r : (int64_t)b.job_id;
	return r;
}

static int batch(int fd, const struct metis_dma *e, uint32_t n)
{
	return dma_batch(fd, 0, e, n, sizeof(*e), NULL);
}

/* Whether `len` bytes of `region` at `off` read back as zero. */
static int region_zero(int fd, uint64_t region, uint64_t off, uint64_t len)
{
	uint8_t *b = malloc(len);
	int zero = b && !dma(fd, METIS_DMA_FROM_DEVICE, b, len, region, off);

	for (uint64_t i = 0; zero && i < len; i++)
		zero = !b[i];
	free(b);
	return zero;
}

/*
 * Batches (METIS_IOCTL_DMA_BATCH): every field of the batch and of each entry
 * is checked; a batch runs all its entries or none (a bad entry anywhere
 * fails it before a byte moved, and what the good ones pinned is given back);
 * each entry's bytes land where it says, in any order on the card and the
 * host; to-device entries run before from-device ones; registered and
 * ordinary entries mix; a batch longer than a channel's ring; async batches
 * are reaped like jobs.
 */
static int batch_suite(void)
{
	enum { N = 8, PIECE = 4096 + 300, BIG = METIS_MAX_BATCH * 65536 };
	int fd = open(dev_path, O_RDWR), r, st, i, ok;
	uint8_t *src = malloc(N * PIECE), *dst = malloc(N * PIECE), *back = malloc(PIECE);
	uint8_t *big = mmap(NULL, 2 * BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t wide[2 * 72];
	struct metis_dma e[METIS_MAX_BATCH + 1];
	uint64_t region, region2;
	int64_t id, h;

	TAP(fd >= 0 && src && dst && back && big != MAP_FAILED, "batch_setup", "%s", strerror(errno));
	if (fd < 0 || !src || !dst || !back || big == MAP_FAILED || mem_alloc(fd, 1 << 20, &region) ||
	    mem_alloc(fd, BIG, &region2))
		return 1;
	fill(src, N * PIECE, 51);

	/* The batch's own fields. */
	e[0] = bent(METIS_DMA_TO_DEVICE, src, 64, region, 0);
	TAP(dma_batch(fd, 0, e, 0, sizeof(e[0]), NULL) == -EINVAL, "batch_empty", "accepted");
	TAP(dma_batch(fd, 0, e, METIS_MAX_BATCH + 1, sizeof(e[0]), NULL) == -EINVAL,
	    "batch_too_many", "accepted");
	TAP(dma_batch(fd, 0, e, 1, sizeof(e[0]) - 8, NULL) == -EINVAL, "batch_entry_size_small",
	    "accepted");
	TAP(dma_batch(fd, 0, e, 1, 8192, NULL) == -EINVAL, "batch_entry_size_large", "accepted");
	TAP(dma_batch(fd, METIS_DMA_TO_DEVICE, e, 1, sizeof(e[0]), NULL) == -EINVAL,
	    "batch_flags_only_async", "accepted");
	TAP(dma_batch(fd, 0, (void *)4096, 1, sizeof(e[0]), NULL) == -EFAULT, "batch_entries_efault",
	    "not EFAULT");
	{
		struct metis_dma_batch b = {
			.size = sizeof(b), .entries = (uintptr_t)e, .count = 1,
			.entry_size = sizeof(e[0]), .reserved = 1,
		};

		TAP(xioctl(fd, METIS_IOCTL_DMA_BATCH, &b) == -EINVAL, "batch_reserved", "accepted");
		b.reserved = 0;
		b.size = sizeof(b) + 8;
		TAP(xioctl(fd, METIS_IOCTL_DMA_BATCH, &b) == -EINVAL, "batch_size_field", "accepted");
	}

	/* Each entry's fields: the batch has one timeout and one job id. */
	{
		static const struct { const char *name; int field; uint64_t v; } bad[] = {
			{ "batch_entry_size_field", 0, sizeof(struct metis_dma) + 8 },
			{ "batch_entry_async", 1, METIS_DMA_TO_DEVICE | METIS_DMA_ASYNC },
			{ "batch_entry_no_direction", 1, 0 },
			{ "batch_entry_two_directions", 1, METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE },
			{ "batch_entry_timeout", 2, 5 },
			{ "batch_entry_job_id", 3, 1 },
			{ "batch_entry_reserved", 4, 1 },
			{ "batch_entry_zero_length", 5, 0 },
			{ "batch_entry_past_region", 6, (1 << 20) - 32 },
		};

		for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
			e[0] = bent(METIS_DMA_TO_DEVICE, src, 64, region, 0);
			e[1] = bent(METIS_DMA_TO_DEVICE, src, 64, region, 4096);
			switch (bad[i].field) {
			case 0: e[1].size = (uint32_t)bad[i].v; break;
			case 1: e[1].flags = (uint32_t)bad[i].v; break;
			case 2: e[1].timeout_ms = (uint32_t)bad[i].v; break;
			case 3: e[1].job_id = bad[i].v; break;
			case 4: e[1].reserved = (uint32_t)bad[i].v; break;
			case 5: e[1].length = bad[i].v; break;
			case 6: e[1].offset = bad[i].v; break;
			}
			TAP(batch(fd, e, 2) == -EINVAL, bad[i].name, "accepted");
		}
		TAP(region_zero(fd, region, 0, 8192), "batch_bad_entries_moved_nothing",
		    "a refused batch wrote to the card");
	}

	/* A newer, longer entry: accepted while its unknown bytes are zero. */
	memset(wide, 0, sizeof(wide));
	for (i = 0; i < 2; i++) {
		e[0] = bent(METIS_DMA_TO_DEVICE, src + i * 64, 64, region, 8192 + i * 64);
		e[0].size = 72;
		memcpy(wide + i * 72, &e[0], sizeof(e[0]));
	}
	r = dma_batch(fd, 0, wide, 2, 72, NULL);
	TAP(r == 0, "batch_longer_entries_zero_tail", "%s", strerror(-r));
	wide[72 + 60] = 1;
	TAP(dma_batch(fd, 0, wide, 2, 72, NULL) == -EINVAL, "batch_longer_entries_nonzero_tail",
	    "accepted");

	/* All or nothing: a bad last entry fails the batch before the good ones move a byte. */
	for (i = 0; i < 3; i++)
		e[i] = bent(METIS_DMA_TO_DEVICE, src + i * PIECE, PIECE, region, 16384 + i * PIECE);
	e[3] = bent(METIS_DMA_TO_DEVICE, src, 64, 0x7777777, 0);
	TAP(batch(fd, e, 4) == -ENOENT, "batch_unknown_region_enoent", "not ENOENT");
	e[3] = bent(METIS_DMA_TO_DEVICE, (void *)4096, 64, region, 0);
	TAP(batch(fd, e, 4) == -EFAULT, "batch_unmapped_entry_efault", "not EFAULT");
	TAP(region_zero(fd, region, 16384, 3 * PIECE), "batch_all_or_nothing",
	    "the good entries of a failed batch moved");

	/* Scattered: odd host offsets and lengths, to the card in reverse order with gaps. */
	for (i = 0; i < N; i++)
		e[i] = bent(METIS_DMA_TO_DEVICE, src + i * PIECE + (i & 3), PIECE - 7 * i - 4, region,
			    65536 + (N - 1 - i) * 2 * PIECE + i * 4);
	r = batch(fd, e, N);
	TAP(r == 0, "batch_to_device", "%s", strerror(-r));
	for (i = 0, ok = 1; i < N && ok; i++) {
		memset(back, 0, PIECE);
		ok = !dma(fd, METIS_DMA_FROM_DEVICE, back, e[i].length, region, e[i].offset) &&
		     !memcmp(back, src + i * PIECE + (i & 3), e[i].length);
	}
	TAP(ok, "batch_to_device_data", "entry %d differs", i - 1);
	/* Back into the host in another order, each entry to its own place. */
	memset(dst, 0xee, N * PIECE);
	for (i = 0; i < N; i++) {
		uint64_t len = e[i].length, off = e[i].offset;

		e[i] = bent(METIS_DMA_FROM_DEVICE, dst + (N - 1 - i) * PIECE + 2, len, region, off);
	}
	r = batch(fd, e, N);
	TAP(r == 0, "batch_from_device", "%s", strerror(-r));
	for (i = 0, ok = 1; i < N && ok; i++) {
		uint8_t *d = dst + (N - 1 - i) * PIECE;

		ok = d[0] == 0xee && d[1] == 0xee && d[2 + e[i].length] == 0xee &&
		     !memcmp(d + 2, src + i * PIECE + (i & 3), e[i].length);
	}
	TAP(ok, "batch_from_device_data", "entry %d differs or wrote past its bytes", i - 1);

	/* Both directions in one batch: the to-device entries run first. */
	fill(src, PIECE, 77);
	memset(dst, 0, PIECE);
	e[0] = bent(METIS_DMA_FROM_DEVICE, dst, PIECE, region, 524288);
	e[1] = bent(METIS_DMA_TO_DEVICE, src, PIECE, region, 524288);
	r = batch(fd, e, 2);
	TAP(r == 0 && !memcmp(dst, src, PIECE), "batch_to_device_first", "r %d or data differs", r);

	/* Registered and ordinary entries in one batch. */
	fill(big, 65536, 91);
	h = buf_register(fd, METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE, big, 65536);
	TAP(h > 0, "batch_register", "%s", strerror((int)-h));
	memset(big + 32768, 0, 8192);
	e[0] = bent(METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, big + 100, 1000, region, 0);
	e[1] = bent(METIS_DMA_TO_DEVICE, src, 1000, region, 4096);
	e[2] = bent(METIS_DMA_FROM_DEVICE | METIS_DMA_REGISTERED, big + 32768, 1000, region, 0);
	e[3] = bent(METIS_DMA_FROM_DEVICE, back, 1000, region, 4096);
	r = batch(fd, e, 4);
	TAP(r == 0 && !memcmp(big + 32768, big + 100, 1000) && !memcmp(back, src, 1000),
	    "batch_registered_and_ordinary", "r %d or data differs", r);
	e[1] = bent(METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, big + 65536 - 8, 16, region, 0);
	TAP(batch(fd, e, 2) == -EINVAL, "batch_registered_outside", "accepted");
	TAP(buf_unregister(fd, (uint64_t)h) == 0, "batch_unregister", "refused");

	/*
	 * As many entries as a batch takes, each 16 pages: longer than a channel's
	 * ring of elements when the pages are scattered (more than one run).
	 */
	fill(big, BIG, 3);
	memset(big + BIG, 0, BIG);
	for (i = 0; i < METIS_MAX_BATCH; i++)
		e[i] = bent(METIS_DMA_TO_DEVICE, big + (size_t)i * 65536, 65536, region2,
			    (uint64_t)(METIS_MAX_BATCH - 1 - i) * 65536);
	r = batch(fd, e, METIS_MAX_BATCH);
	TAP(r == 0, "batch_max_to_device", "%s", strerror(-r));
	for (i = 0; i < METIS_MAX_BATCH; i++)
		e[i] = bent(METIS_DMA_FROM_DEVICE, big + BIG + (size_t)i * 65536, 65536, region2,
			    (uint64_t)(METIS_MAX_BATCH - 1 - i) * 65536);
	r = batch(fd, e, METIS_MAX_BATCH);
	TAP(r == 0 && !memcmp(big, big + BIG, BIG), "batch_max_round_trip", "r %d or data differs",
	    r);

	/* Async: one job id, reaped like any job. */
	fill(src, N * PIECE, 13);
	for (i = 0; i < N; i++)
		e[i] = bent(METIS_DMA_TO_DEVICE, src + i * PIECE, PIECE, region, (uint64_t)i * PIECE);
	r = dma_batch(fd, METIS_DMA_ASYNC, e, N, sizeof(e[0]), &id);
	TAP(r == 0 && id > 0, "batch_async", "%s", strerror(-r));
	TAP(r == 0 && readable(fd, 10000), "batch_async_pollin", "no POLLIN");
	TAP(r == 0 && wait_job(fd, (uint64_t)id, 10000, &st) == 0 && st == 0, "batch_async_reaped",
	    "status %d", st);
	memset(dst, 0, N * PIECE);
	e[0] = bent(METIS_DMA_FROM_DEVICE, dst, N * PIECE, region, 0);
	r = batch(fd, e, 1);
	TAP(r == 0 && !memcmp(dst, src, N * PIECE), "batch_async_data", "r %d or data differs", r);
	close(fd);

	/* RLIMIT_MEMLOCK: a batch's entries are charged together, and a refused batch gives back
	 * what its entries pinned (or the last batch here could not fit). */
	if (fork() == 0) {
		struct rlimit rl = { .rlim_cur = 64 << 10, .rlim_max = 64 << 10 };
		uint8_t *b = mmap(NULL, 256 << 10, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t reg;
		int k;

		if (b == MAP_FAILED || setrlimit(RLIMIT_MEMLOCK, &rl) || become(65534, 0))
			_exit(3);
		fd = open(dev_path, O_RDWR);
		if (fd < 0 || mem_alloc(fd, 1 << 20, &reg))
			_exit(4);
		for (k = 0; k < 3; k++)
			e[k] = bent(METIS_DMA_TO_DEVICE, b + k * (64 << 10), 24 << 10, reg, k * 4096);
		TAP(batch(fd, e, 3) == -ENOMEM, "batch_memlock_enomem", "not ENOMEM");
		for (k = 0, ok = 1; k < 20 && ok; k++) {
			e[2] = bent(METIS_DMA_TO_DEVICE, b, 16, 0x7777777, 0);
			ok = batch(fd, e, 3) == -ENOENT;
		}
		TAP(ok, "batch_memlock_refused_repeatedly", "attempt %d", k - 1);
		TAP(batch(fd, e, 2) == 0, "batch_memlock_given_back", "pins of refused batches kept");
		close(fd);
		fflush(stdout);
		_exit(failed ? 1 : 0);
	}
	wait(&st);
	TAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "batch_memlock_child", "status %#x", st);
	free(src);
	free(dst);
	free(back);
	return failed;
}

/*
 * A file that holds registered buffers (one in use by a job that waits in
 * the card) while the card is unbound under it: unbind unmaps them (DMA-API
 * debugging says so if it does not), the job fails with ENODEV, and what the
 * file does afterwards fails cleanly. Waits for `marker` to appear, which the
 * scenario creates once it has unbound the card.
 */
static int registered_hold(const char *marker)
{
	enum { LEN = 256 << 10 };
	int fd = open(dev_path, O_RDWR), st = 0, i;
	uint8_t *b = malloc(LEN);
	int64_t h1, h2, job;
	uint64_t region;

	TAP(fd >= 0 && b && mem_alloc(fd, LEN, &region) == 0, "hold_setup", "%s",
	    strerror(errno));
	if (fd < 0 || !b)
		return 1;
	h1 = buf_register(fd, METIS_DMA_TO_DEVICE, b, LEN);
	h2 = buf_register(fd, METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE, b, LEN / 2);
	TAP(h1 > 0 && h2 > 0, "hold_registered", "%lld %lld", (long long)h1, (long long)h2);
	/* A job held on the card until the unbind stops it. */
	card_ctl("inject data-stall wr 0 60000");
	job = dma_async(fd, METIS_DMA_FROM_DEVICE | METIS_DMA_REGISTERED, b, LEN / 2, region, 0);
	TAP(job > 0, "hold_job_started", "%s", strerror((int)-job));
	printf("@@NOTE registered-hold: holding, waiting for %s\n", marker);
	fflush(stdout);
	for (i = 0; i < 600 && access(marker, F_OK); i++)
		usleep(100 * 1000);
	TAP(i < 600, "hold_unbound", "the scenario never unbound the card");
	TAP(job > 0 && wait_job(fd, (uint64_t)job, 20000, &st) == 0 && st == -ENODEV,
	    "hold_job_enodev", "status %d", st);
	TAP(buf_unregister(fd, (uint64_t)h1) == -ENODEV, "hold_unregister_enodev", "not ENODEV");
	TAP(buf_register(fd, METIS_DMA_TO_DEVICE, b, 4096) == -ENODEV, "hold_register_enodev",
	    "not ENODEV");
	close(fd);
	free(b);
	return failed;
}

/*
 * Security review H2: a command whose caller gives up (a 1 ms timeout, a
 * signal) must not outlive the call on the card: the next command gets its
 * own answer (the card would drop a command that arrives while another runs,
 * and its caller would take the old one's answer), and the region is free to
 * release at once.
 */
static void on_alarm(int sig)
{
	(void)sig;
}

static int cmd_abandon(void)
{
	enum { LEN = 256 << 20 };
	int fd = open(dev_path, O_RDWR), r;
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART: EINTR */
	struct itimerval it = { .it_value = { .tv_usec = 2000 } };
	uint64_t h;

	if (fd < 0 || mem_alloc(fd, LEN, &h)) {
		TAP(0, "cmd_abandon_setup", "%s", strerror(errno));
		return 1;
	}
	for (int round = 0; round < 2; round++) {
		const char *how = round ? "signal" : "timeout";
		struct metis_cmd f = { .size = sizeof(f), .opcode = METIS_CMD_FILL, .handle_in = h,
			.length = LEN, .arg = 0x5a5a5a5a, .timeout_ms = round ? 0 : 1 };
		struct metis_cmd e = { .size = sizeof(e), .opcode = METIS_CMD_ECHO, .echo_len = 5 };
		char name[64];

		if (round) {
			sigaction(SIGALRM, &sa, NULL);
			setitimer(ITIMER_REAL, &it, NULL);
		}
		r = cmd(fd, &f);
		snprintf(name, sizeof(name), "cmd_abandoned_by_%s", how);
		TAP(r == (round ? -EINTR : -ETIMEDOUT) || r == 0, name, "fill returned %d", r);
		memcpy(e.echo, "hello", 5);
		r = cmd(fd, &e);
		snprintf(name, sizeof(name), "cmd_after_%s_gets_its_own_answer", how);
		TAP(r == 0 && !memcmp(e.echo, "hello", 5), name, "echo returned %d '%.5s'", r,
		    (char *)e.echo);
	}
	TAP(mem_free(fd, h) == 0, "cmd_abandoned_region_freed", "busy");
	close(fd);
	return failed;
}

/*
 * Security review H3: device memory is zeroed before it goes to its next
 * owner. File A fills a region with a pattern and frees it; file B allocates
 * the same size, gets the same range (first fit), and must read zeros. The
 * same for a region left behind by a closed file.
 */
enum { BIG_REGION = 256 << 20 };

struct guess_arg {
	int fd;
	uint64_t handle;
	int done, reads, leaked;
};

/* Reads the end of a guessed region again and again until told to stop. */
static void *guesser(void *p)
{
	struct guess_arg *g = p;
	uint8_t *b = malloc(1 << 20);

	while (b && !__atomic_load_n(&g->done, __ATOMIC_SEQ_CST)) {
		memset(b, 0, 1 << 20);
		if (dma(g->fd, METIS_DMA_FROM_DEVICE, b, 1 << 20, g->handle, BIG_REGION - (1 << 20)))
			continue;
		for (int i = 0; i < 1 << 20; i++) {
			if (b[i]) {
				g->leaked++;
				break;
			}
		}
		__atomic_add_fetch(&g->reads, 1, __ATOMIC_SEQ_CST);
	}
	free(b);
	return NULL;
}

/*
 * A buffer of `pages` pages no two neighbours of which are neighbours in
 * memory: virtual page i maps page 7i mod pages of a memfd. Without a
 * translating IOMMU the card sees one element per page, and a buffer of more
 * pages than a channel's list part has slots (1021) moves in several windows.
 */
static uint8_t *scattered(size_t pages)
{
	size_t len = pages * 4096;
	int mfd = memfd_create("scattered", 0);
	uint8_t *p = MAP_FAILED;

	if (mfd < 0 || pages % 7 == 0 || ftruncate(mfd, (off_t)len))
		goto out;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		goto out;
	memset(p, 0, len);
	for (size_t i = 0; i < pages; i++) {
		if (mmap(p + i * 4096, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd,
			 (off_t)((i * 7) % pages) * 4096) == MAP_FAILED) {
			munmap(p, len);
			p = MAP_FAILED;
			break;
		}
	}
out:
	if (mfd >= 0)
		close(mfd);
	return p == MAP_FAILED ? NULL : p;
}

/* Compares `n` bytes with fill(.., n, seed) without a second buffer: the index of the first difference, or n. */
static size_t check_fill(const uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		if (p[i] != (uint8_t)x)
			return i;
	}
	return n;
}

static int dma_long(int fd, uint32_t flags, void *buf, uint64_t len, uint64_t handle)
{
	struct metis_dma d = {
		.size = sizeof(d), .flags = flags, .user_addr = (uintptr_t)buf,
		.length = len, .handle = handle, .timeout_ms = 600000,
	};

	return xioctl(fd, METIS_IOCTL_DMA, &d);
}

/*
 * Security review M8: a 1 GiB transfer from a buffer the card sees as one
 * element per page has 262 145 elements, 4 MiB of segment list: past what
 * kmalloc gives (a warning and ENOMEM when the list was a KVec). Both ways,
 * data checked.
 */
static int fragmented_suite(void)
{
	enum { PAGES = 262146 };
	/* METIS_DMA_MAX_LENGTH from byte 1 of a page: 262 145 pages. */
	const size_t len = METIS_DMA_MAX_LENGTH;
	int fd = open(dev_path, O_RDWR), r;
	uint8_t *buf = scattered(PAGES);
	uint64_t h;
	size_t at;

	TAP(fd >= 0 && buf, "fragmented_setup", "%s", strerror(errno));
	if (fd < 0 || !buf)
		return 1;
	r = mem_alloc(fd, (uint64_t)PAGES * 4096, &h);
	TAP(r == 0, "fragmented_region", "%s", strerror(-r));
	if (r)
		return 1;
	/* From byte 1: the buffer touches every one of its pages. */
	fill(buf + 1, len, 77);
	r = dma_long(fd, METIS_DMA_TO_DEVICE, buf + 1, len, h);
	TAP(r == 0, "fragmented_to_device", "%s", strerror(-r));
	memset(buf, 0, (size_t)PAGES * 4096);
	r = dma_long(fd, METIS_DMA_FROM_DEVICE, buf + 1, len, h);
	TAP(r == 0, "fragmented_from_device", "%s", strerror(-r));
	at = check_fill(buf + 1, len, 77);
	TAP(at == len, "fragmented_round_trip", "data differs at byte %zu of %zu", at, len);
	mem_free(fd, h);
	munmap(buf, (size_t)PAGES * 4096);
	close(fd);
	return failed;
}

static uint64_t mem_free_bytes(int fd)
{
	struct metis_info i = { .size = sizeof(i) };

	return xioctl(fd, METIS_IOCTL_INFO, &i) ? 0 : i.mem_free;
}

/*
 * Security review M8, regions: a file holds at most METIS_MEM_MAX_REGIONS
 * regions (EDQUOT beyond; a freed one can be had again), and with `files`
 * 17 the card's table takes more than 65 536 regions (17 files of 4 096
 * regions of 4 KiB): a 5.2 MiB kmalloc when the table was a KVec.
 */
static int regions_suite(int files)
{
	enum { FILES = 17, N = METIS_MEM_MAX_REGIONS };
	uint64_t *h = calloc((size_t)FILES * N, sizeof(*h)), extra, before;
	int fds[FILES], f, i = 0, r = 0;

	if (files < 1 || files > FILES) {
		TAP(0, "regions_setup", "1 to %d files, not %d", FILES, files);
		return 1;
	}
	char why[128] = "";
	double t0 = mono_ms();

	for (f = 0; f < files; f++)
		fds[f] = open(dev_path, O_RDWR);
	before = mem_free_bytes(fds[0]);
	for (f = 0; f < files && !r && h; f++) {
		if (fds[f] < 0) {
			r = -errno;
			break;
		}
		for (i = 0; i < N && !r; i++)
			r = mem_alloc(fds[f], METIS_MEM_ALIGN, &h[(size_t)f * N + i]);
	}
	TAP(h && !r, "regions_many", "file %d, region %d (from 1): %s", f, i, strerror(-r));
	if (!h || r)
		return 1;
	printf("@@NOTE regions: %d regions of 4 KiB in %d files, %.1f s\n", files * N, files,
	       (mono_ms() - t0) / 1000);
	r = mem_alloc(fds[0], METIS_MEM_ALIGN, &extra);
	TAP(r == -EDQUOT, "regions_cap_edquot", "region %d of one file: %s", N + 1,
	    r ? strerror(-r) : "accepted");
	r = mem_free(fds[0], h[0]);
	if (!r)
		r = mem_alloc(fds[0], METIS_MEM_ALIGN, &h[0]);
	TAP(!r, "regions_cap_after_free", "%s", strerror(-r));
	/* The table's last entry still works: data checked. */
	r = round_trip(fds[files - 1], h[(size_t)files * N - 1], 0, METIS_MEM_ALIGN, 1, 5, why,
		       sizeof(why));
	TAP(!r, "regions_last_round_trip", "%s", why);
	for (f = 0; f < files; f++)
		close(fds[f]);
	free(h);
	f = open(dev_path, O_RDWR);
	TAP(f >= 0 && mem_free_bytes(f) == before, "regions_released_on_close",
	    "free %llu, was %llu", (unsigned long long)mem_free_bytes(f),
	    (unsigned long long)before);
	close(f);
	return failed;
}

/* Runs a shell command through the runner and reads the number it prints (-1 on failure). */
static long host_number(const char *fmt, ...)
{
	char what[200], cmd[400];
	long n = -1;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), ". /lib/metis/lib.sh && host card %d %s", card_index(), what);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

/* Torn fetches (emulator `torn-fetch`) in which the host's write reached the watched element. */
static long torn_fetches(long since)
{
	return host_number("events since %ld | grep -o '\"host_wrote\":true,\"kind\":\"inject\"' "
			   "| wc -l", since);
}

/*
 * The engine may fetch slot 0 of a channel's list part while the driver
 * rewrites it: behind a window's link (its done interrupt comes first), and
 * behind a finished job's last link while the next job on the channel writes
 * its list. The emulator fetches the element right after the driver's first
 * write into it (inject torn-fetch). The driver must hand each window over
 * with slot 0's control word last, and give a channel to a new job only once
 * the engine has stopped walking the last job's list; otherwise the engine
 * moves stale addresses: a page never moved, or one moved into a buffer the
 * driver had already given back.
 */
static int torn_fetch_suite(void)
{
	enum { PAGES = 2600, TWO_WINDOWS = 1500 };
	int fd = open(dev_path, O_RDWR), r;
	struct metis_info info = { .size = sizeof(info) };
	uint8_t *a = scattered(PAGES), *b = scattered(PAGES), *q = malloc(4096);
	uint64_t h;
	long seq;
	size_t i;

	block_sigchld();
	TAP(fd >= 0 && a && b && q, "torn_setup", "%s", strerror(errno));
	if (fd < 0 || !a || !b || !q || xioctl(fd, METIS_IOCTL_INFO, &info) ||
	    mem_alloc(fd, 16 << 20, &h))
		return 1;
	if (info.iommu_mode == METIS_IOMMU_TRANSLATED) {
		/* One IOVA run per buffer: every job is one window. */
		printf("@@NOTE torn-fetch: not applicable under a translating IOMMU\n");
		return 0;
	}
	seq = host_number("events since 999999999 | grep -o '\"last_seq\":[0-9]*' | cut -d: -f2");
	TAP(seq >= 0, "torn_events", "no event sequence from the card");

	/* Within a job: the first link of each direction. */
	fill(a, (size_t)PAGES * 4096, 21);
	TAP(card_ctl("inject torn-fetch rd 0 1") == 0 && card_ctl("inject torn-fetch wr 0 1") == 0,
	    "torn_arm_windows", "host request failed");
	r = dma(fd, METIS_DMA_TO_DEVICE, a, (size_t)PAGES * 4096, h, 0);
	TAP(r == 0, "torn_to_device", "%s", strerror(-r));
	r = dma(fd, METIS_DMA_FROM_DEVICE, b, (size_t)PAGES * 4096, h, 0);
	TAP(r == 0, "torn_from_device", "%s", strerror(-r));
	for (i = 0; i < (size_t)PAGES * 4096 && a[i] == b[i]; i++)
		;
	TAP(i == (size_t)PAGES * 4096, "torn_window_handover",
	    "data differs from byte %zu (page %zu of %d)", i, i / 4096, PAGES);
	/* Both watches saw the driver write the next window: the jobs had several. */
	TAP(torn_fetches(seq) == 2, "torn_windows_exercised", "%ld torn fetches, not 2",
	    torn_fetches(seq));

	/*
	 * Between jobs: a two-window job, then the next job on its channel while
	 * the engine sits behind the first job's last link. The first job's
	 * buffer must not be touched again.
	 */
	/*
	 * How many links the job crosses depends on where the channel's ring stands, which
	 * the last jobs' page layouts decide: each try moves it on, until one crosses two.
	 */
	for (int tries = 0, armed = 1; tries < 4; tries++) {
		armed &= card_ctl("inject torn-fetch wr 0 2") == 0;
		r = dma(fd, METIS_DMA_FROM_DEVICE, b, (size_t)TWO_WINDOWS * 4096, h, 0);
		if (r || host_number("stats | grep -c '\"torn_fetch\":\\[\\]'") == 1 || tries == 3) {
			TAP(armed, "torn_arm_last_link", "host request failed");
			TAP(r == 0, "torn_first_job", "%s", strerror(-r));
			break;
		}
		printf("@@NOTE torn-fetch: try %d crossed fewer than two links\n", tries + 1);
	}
	memset(b, 0xee, (size_t)TWO_WINDOWS * 4096);
	r = dma(fd, METIS_DMA_FROM_DEVICE, q, 4096, h, 4096);
	TAP(r == 0 && !memcmp(q, a + 4096, 4096), "torn_next_job", "r %d or data differs", r);
	usleep(50 * 1000);
	for (i = 0; i < (size_t)TWO_WINDOWS * 4096 && b[i] == 0xee; i++)
		;
	TAP(i == (size_t)TWO_WINDOWS * 4096, "torn_last_job_left_alone",
	    "its buffer was written again at byte %zu", i);
	TAP(host_number("stats | grep -c '\"torn_fetch\":\\[\\]'") == 1, "torn_last_link_reached",
	    "the first job had fewer than two windows");
	card_ctl("clear");
	mem_free(fd, h);
	close(fd);
	return failed;
}

/*
 * A region being scrubbed is nobody's yet, not even its owner's: another
 * thread of the same file that guesses the next handle (they are sequential)
 * and reads the end of a large region while the card is still clearing it
 * must not see what the last owner left there.
 */
static void scrub_guess(void)
{
	uint8_t *b = malloc(1 << 20);
	int fd = open(dev_path, O_RDWR);
	struct metis_mem_alloc m = { .size = sizeof(m), .length = BIG_REGION };
	struct guess_arg g = { .fd = fd };
	pthread_t t;

	if (!b || fd < 0 || xioctl(fd, METIS_IOCTL_MEM_ALLOC, &m)) {
		TAP(0, "scrub_guess_setup", "%s", strerror(errno));
		return;
	}
	memset(b, 0x5a, 1 << 20);
	TAP(dma(fd, METIS_DMA_TO_DEVICE, b, 1 << 20, m.handle, BIG_REGION - (1 << 20)) == 0 &&
	    mem_free(fd, m.handle) == 0, "scrub_guess_old_data", "failed");
	g.handle = m.handle + 1;
	pthread_create(&t, NULL, guesser, &g);
	usleep(20 * 1000);
	TAP(xioctl(fd, METIS_IOCTL_MEM_ALLOC, &m) == 0 && m.handle == g.handle,
	    "scrub_guess_handle_guessed", "handle %llu, guessed %llu",
	    (unsigned long long)m.handle, (unsigned long long)g.handle);
	/* At least one read once the region is handed out, so the check can't pass empty. */
	for (int i = 0; i < 500 && !__atomic_load_n(&g.reads, __ATOMIC_SEQ_CST); i++)
		usleep(10 * 1000);
	__atomic_store_n(&g.done, 1, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	printf("@@NOTE scrub: %d reads through the guessed handle\n", g.reads);
	TAP(g.reads > 0 && !g.leaked, "scrub_guess_never_sees_old_data",
	    "%d of %d reads saw the last owner's bytes", g.leaked, g.reads);
	mem_free(fd, m.handle);
	close(fd);
	free(b);
}

static int scrub_suite(void)
{
	enum { LEN = 4 << 20 };
	uint8_t *b = malloc(LEN);
	int a = open(dev_path, O_RDWR), c = open(dev_path, O_RDWR), zero = 1;
	struct metis_mem_alloc m1 = { .size = sizeof(m1), .length = LEN };
	struct metis_mem_alloc m2 = { .size = sizeof(m2), .length = LEN };

	if (!b || a < 0 || c < 0 || xioctl(a, METIS_IOCTL_MEM_ALLOC, &m1)) {
		TAP(0, "scrub_setup", "%s", strerror(errno));
		return 1;
	}
	fill(b, LEN, 77);
	TAP(dma(a, METIS_DMA_TO_DEVICE, b, LEN, m1.handle, 0) == 0, "scrub_owner_writes", "failed");
	TAP(mem_free(a, m1.handle) == 0, "scrub_owner_frees", "failed");
	TAP(xioctl(c, METIS_IOCTL_MEM_ALLOC, &m2) == 0 && m2.dev_addr == m1.dev_addr,
	    "scrub_next_owner_same_range", "got %#llx, freed %#llx",
	    (unsigned long long)m2.dev_addr, (unsigned long long)m1.dev_addr);
	memset(b, 0xee, LEN);
	TAP(dma(c, METIS_DMA_FROM_DEVICE, b, LEN, m2.handle, 0) == 0, "scrub_next_owner_reads",
	    "failed");
	for (size_t i = 0; i < LEN && zero; i++)
		zero = b[i] == 0;
	TAP(zero, "scrub_next_owner_reads_zeros", "the previous owner's data is readable");
	/* A region left behind by a file that closed without freeing it. */
	TAP(mem_free(c, m2.handle) == 0 && xioctl(a, METIS_IOCTL_MEM_ALLOC, &m1) == 0 &&
	    dma(a, METIS_DMA_TO_DEVICE, b, 64, m1.handle, 0) == 0, "scrub_refill", "failed");
	fill(b, LEN, 78);
	dma(a, METIS_DMA_TO_DEVICE, b, LEN, m1.handle, 0);
	close(a);
	TAP(xioctl(c, METIS_IOCTL_MEM_ALLOC, &m2) == 0 && m2.dev_addr == m1.dev_addr &&
	    dma(c, METIS_DMA_FROM_DEVICE, b, LEN, m2.handle, 0) == 0, "scrub_after_close_reads",
	    "failed");
	zero = 1;
	for (size_t i = 0; i < LEN && zero; i++)
		zero = b[i] == 0;
	TAP(zero, "scrub_after_close_reads_zeros", "a closed file's data is readable");
	close(c);
	free(b);
	scrub_guess();
	return failed;
}

/*
 * Interrupts that stop after a passed self-test: the region is allocated (and
 * scrubbed) first, then the card drops every message interrupt, and N jobs of
 * TIMEOUT ms each run; prints "dead-irq: <ok count>/<N>".
 */
#define DROP_IRQS ". /lib/metis/lib.sh && host card 0 inject drop-irq 1000 | grep -q '\"ok\":true'"

static int dead_irq(int n, uint32_t timeout_ms)
{
	enum { LEN = 64 << 10 };
	int fd = open(dev_path, O_RDWR), ok = 0;
	uint8_t *b = malloc(LEN);
	uint64_t h;

	if (fd < 0 || !b || mem_alloc(fd, LEN, &h) || system(DROP_IRQS)) {
		printf("dead-irq: setup failed\n");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		struct metis_dma d = {
			.size = sizeof(d), .flags = METIS_DMA_FROM_DEVICE, .user_addr = (uintptr_t)b,
			.length = LEN, .handle = h, .timeout_ms = timeout_ms,
		};
		ok += xioctl(fd, METIS_IOCTL_DMA, &d) == 0;
	}
	printf("dead-irq: %d/%d\n", ok, n);
	close(fd);
	free(b);
	return 0;
}

static int stress(int secs)
{
	time_t end = time(NULL) + secs;
	int fd = open(dev_path, O_RDWR), n = 0, r = 0;
	uint64_t h;
	char why[160];

	if (fd < 0 || mem_alloc(fd, 4 << 20, &h)) {
		printf("stress: setup failed: %s\n", strerror(errno));
		return 2;
	}
	while (time(NULL) < end) {
		r = round_trip(fd, h, 0, 3 << 20, n % 8, n, why, sizeof(why));
		if (r == -1 && strstr(why, "differs")) {
			printf("stress: CORRUPTION after %d round trips: %s\n", n, why);
			return 1;
		}
		if (r)
			break;
		n++;
	}
	printf("stress: %d round trips, last result: %s\n", n, r ? why : "ok");
	close(fd);
	return 0;
}

/*
 * One FROM_DEVICE job of LEN bytes with the given timeout, on a fresh file and
 * region; prints "job: ok" or "job: <errno name>". The scenario arms the card
 * around it (security review H1: a completion that beat a stop must not be
 * credited to the next job on the channel).
 */
static int one_job(uint64_t len, uint32_t timeout_ms)
{
	int fd = open(dev_path, O_RDWR), r;
	uint8_t *b = malloc(len);
	uint64_t h;

	if (fd < 0 || !b || mem_alloc(fd, len, &h)) {
		printf("job: setup failed: %s\n", strerror(errno));
		return 2;
	}
	struct metis_dma d = {
		.size = sizeof(d), .flags = METIS_DMA_FROM_DEVICE, .user_addr = (uintptr_t)b,
		.length = len, .handle = h, .timeout_ms = timeout_ms,
	};
	r = xioctl(fd, METIS_IOCTL_DMA, &d);
	printf("job: %s\n", r == 0 ? "ok" : r == -ETIMEDOUT ? "ETIMEDOUT" : strerror(-r));
	close(fd);
	free(b);
	return 0;
}

/*
 * METIS_IOCTL_RESET from a caller without CAP_SYS_ADMIN (security review L11):
 * refused with EPERM while another file is open on the card (the reset would
 * take that file's memory and jobs), allowed once the caller has the card to
 * itself. An administrator may reset with other files open.
 */
static int reset_perm_suite(void)
{
	int other = open(dev_path, O_RDWR), to_child[2], to_parent[2], r1 = 1, r2 = 1, st;
	pid_t pid;

	TAP(other >= 0, "open_other_file", "%s", strerror(errno));
	if (other < 0 || pipe(to_child) || pipe(to_parent))
		return 1;
	pid = fork();
	if (pid == 0) {
		int fd, r;
		char go;

		/* Not the parent's file: its copy would keep that file open here. */
		close(other);
		/* The node is root:root 0660: keep the group, lose the user (and its capabilities). */
		if (become(65534, 0))
			_exit(3);
		fd = open(dev_path, O_RDWR);
		r = fd < 0 ? -errno : do_reset(fd, 0);
		if (write(to_parent[1], &r, sizeof(r)) != sizeof(r) ||
		    read(to_child[0], &go, 1) != 1)
			_exit(4);
		r = do_reset(fd, 0);
		_exit(write(to_parent[1], &r, sizeof(r)) == sizeof(r) ? 0 : 5);
	}
	TAP(read(to_parent[0], &r1, sizeof(r1)) == sizeof(r1) && r1 == -EPERM,
	    "unprivileged_reset_refused_with_others_open", "got %d", r1);
	TAP(do_reset(other, 0) == 0, "admin_reset_with_others_open", "refused");
	close(other);
	TAP(write(to_child[1], "g", 1) == 1 && read(to_parent[0], &r2, sizeof(r2)) == sizeof(r2) &&
	    r2 == 0, "unprivileged_reset_when_alone", "got %d", r2);
	waitpid(pid, &st, 0);
	TAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "unprivileged_child_exit", "status %#x", st);
	return failed;
}

/*
 * Calls that make the driver log something, repeated as fast as a caller can
 * (security review L2): file descriptors that are not dma-bufs, and DMA with a
 * 1 ms timeout that a 16 MiB transfer can't meet. The scenario counts the
 * kernel log lines they leave.
 */
static int flood(int rounds)
{
	enum { LEN = 16 << 20 };
	int fd = open(dev_path, O_RDWR), null = open("/dev/null", O_RDWR), timeouts = 0;
	uint8_t *b = malloc(LEN);
	uint64_t h;

	if (fd < 0 || null < 0 || !b || mem_alloc(fd, LEN, &h)) {
		TAP(0, "flood_setup", "%s", strerror(errno));
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		struct metis_dma_buf d = { .size = sizeof(d), .flags = METIS_DMA_TO_DEVICE,
			.fd = i % 2 ? null : 0, .length = 4096, .handle = h };

		if (xioctl(fd, METIS_IOCTL_DMA_BUF, &d) == 0) {
			TAP(0, "flood_not_a_dmabuf_refused", "fd %d accepted", d.fd);
			return 1;
		}
	}
	for (int i = 0; i < rounds / 10; i++) {
		struct metis_dma d = { .size = sizeof(d), .flags = METIS_DMA_FROM_DEVICE,
			.user_addr = (uintptr_t)b, .length = LEN, .handle = h, .timeout_ms = 1 };

		timeouts += xioctl(fd, METIS_IOCTL_DMA, &d) == -ETIMEDOUT;
	}
	printf("@@NOTE flood: %d refused dma-buf fds, %d of %d DMAs timed out\n", rounds,
	       timeouts, rounds / 10);
	TAP(timeouts > 0, "flood_timeouts_happened", "no DMA timed out in 1 ms");
	close(fd);
	close(null);
	free(b);
	return failed;
}

/*
 * Fault injection (/proc/thread-self/fail-nth): every operation of the ABI is
 * run again and again with its 1st, 2nd, ... allocation (or other injection
 * point) failing, until a run passes all of its points. Each failed run must
 * unwind: the call fails cleanly, the file and its regions stay usable (a
 * region a failed command resolved can be freed: security review L4). The
 * card must move data correctly afterwards; the boot's kmemleak scan and the
 * runner's splat check cover the rest.
 */
static int nth_fd = -1;

static void arm_nth(unsigned int n)
{
	char b[16];
	int len = snprintf(b, sizeof(b), "%u", n);

	if (pwrite(nth_fd, b, len, 0) != len)
		perror("fail-nth");
}

/* Whether the armed fault was injected; disarms. */
static int nth_injected(void)
{
	char b[16] = { 0 };
	int injected = pread(nth_fd, b, sizeof(b) - 1, 0) > 0 && atoi(b) == 0;

	arm_nth(0);
	return injected;
}

enum fault_op { F_OPEN, F_INFO, F_ALLOC, F_DMA_TO, F_DMA_FROM, F_ASYNC, F_ECHO, F_CHECKSUM,
		F_RUN, F_EXPORT, F_DMA_BUF, F_REGISTER, F_DMA_REG, F_BATCH, F_BATCH_ASYNC, F_NR };
static const char *const fault_op_name[F_NR] = {
	"open", "info", "mem_alloc", "dma_to", "dma_from", "dma_async_wait", "cmd_echo",
	"cmd_checksum", "cmd_run", "buf_export", "dma_buf", "buf_register", "dma_registered",
	"dma_batch", "dma_batch_async",
};

static uint64_t left_region;
static int64_t left_job;
static int64_t left_reg;

/* One run of `op`; returns 0 or -errno. `fd` has regions `h` and `h2` (1 MiB each). */
static int fault_run(enum fault_op op, int fd, uint64_t h, uint64_t h2, uint8_t *buf, int dbuf)
{
	struct metis_cmd c;
	int r, st;

	switch (op) {
	case F_OPEN:
		r = open(dev_path, O_RDWR);
		if (r < 0)
			return -errno;
		close(r);
		return 0;
	case F_INFO: {
		struct metis_info i = { .size = sizeof(i) };
		return xioctl(fd, METIS_IOCTL_INFO, &i);
	}
	case F_ALLOC: {
		uint64_t x;

		/* Freed after the point is disarmed: the free's own copy may be the one that fails. */
		r = mem_alloc(fd, 1 << 16, &x);
		if (!r)
			left_region = x;
		return r;
	}
	case F_DMA_TO:
		return dma(fd, METIS_DMA_TO_DEVICE, buf, 1 << 16, h, 0);
	case F_DMA_FROM:
		return dma(fd, METIS_DMA_FROM_DEVICE, buf, 1 << 16, h, 0);
	case F_ASYNC: {
		int64_t id = dma_async(fd, METIS_DMA_TO_DEVICE, buf, 1 << 16, h, 0);

		if (id < 0)
			return (int)id;
		r = wait_job(fd, id, 0, &st);
		/* Not reaped (the WAIT's own copy failed): reaped once the point is disarmed. */
		if (r)
			left_job = id;
		return r ? r : st;
	}
	case F_ECHO:
		memset(&c, 0, sizeof(c));
		c.opcode = METIS_CMD_ECHO;
		c.echo_len = 8;
		memcpy(c.echo, "failnth!", 8);
		return cmd(fd, &c);
	case F_CHECKSUM:
		memset(&c, 0, sizeof(c));
		c.opcode = METIS_CMD_CHECKSUM;
		c.handle_in = h;
		c.length = 1 << 16;
		return cmd(fd, &c);
	case F_RUN:
		memset(&c, 0, sizeof(c));
		c.opcode = METIS_CMD_RUN;
		c.handle_in = h;
		c.handle_out = h2;
		c.length = 1 << 16;
		return cmd(fd, &c);
	case F_EXPORT: {
		struct metis_buf_export e = { .size = sizeof(e), .flags = METIS_BUF_READ |
					      METIS_BUF_WRITE, .length = 1 << 16 };

		r = xioctl(fd, METIS_IOCTL_BUF_EXPORT, &e);
		if (!r)
			close(e.fd);
		return r;
	}
	case F_REGISTER: {
		int64_t x = buf_register(fd, METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE,
					 buf + (1 << 16), 1 << 16);

		if (x < 0)
			return (int)x;
		r = buf_unregister(fd, (uint64_t)x);
		/* Not unregistered (its own copy failed): unregistered once the point is disarmed. */
		if (r)
			left_reg = x;
		return r;
	}
	case F_DMA_REG:
		/* Inside the buffer the suite registered before the first run. */
		return dma(fd, METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, buf, 1 << 16, h, 0);
	case F_BATCH:
	case F_BATCH_ASYNC: {
		/* Pinned, registered, and from the card: every kind of entry a batch has. */
		struct metis_dma e[3] = {
			bent(METIS_DMA_TO_DEVICE, buf + (1 << 17), 1 << 14, h, 0),
			bent(METIS_DMA_TO_DEVICE | METIS_DMA_REGISTERED, buf, 1 << 14, h2, 0),
			bent(METIS_DMA_FROM_DEVICE, buf + (1 << 18), 1 << 14, h, 1 << 15),
		};
		int64_t id;

		if (op == F_BATCH)
			return batch(fd, e, 3);
		r = dma_batch(fd, METIS_DMA_ASYNC, e, 3, sizeof(e[0]), &id);
		if (r)
			return r;
		r = wait_job(fd, (uint64_t)id, 0, &st);
		if (r)
			left_job = id;
		return r ? r : st;
	}
	case F_DMA_BUF: {
		struct metis_dma_buf d = { .size = sizeof(d), .flags = METIS_DMA_TO_DEVICE,
			.fd = dbuf, .length = 1 << 16, .handle = h };

		return xioctl(fd, METIS_IOCTL_DMA_BUF, &d);
	}
	default:
		return -EINVAL;
	}
}

/*
 * Cleanup a fault run could not do itself without meeting the armed point:
 * a region it allocated, a job it could not reap. Done once the point is
 * disarmed; each must work then.
 */
static int tidy_fault_run(int fd)
{
	int bad = 0, st;

	if (left_region)
		bad |= mem_free(fd, left_region) != 0;
	if (left_job)
		bad |= wait_job(fd, (uint64_t)left_job, 0, &st) != 0;
	if (left_reg)
		bad |= buf_unregister(fd, (uint64_t)left_reg) != 0;
	left_region = 0;
	left_job = 0;
	left_reg = 0;
	return bad;
}

static int fault_suite(void)
{
	int fd = open(dev_path, O_RDWR), points[F_NR] = { 0 }, total = 0;
	uint8_t *buf = malloc(1 << 20);
	struct metis_buf_export e = { .size = sizeof(e), .flags = METIS_BUF_READ | METIS_BUF_WRITE,
				      .length = 1 << 16 };
	uint64_t h, h2;
	char why[160];

	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	TAP(nth_fd >= 0, "fail_nth_available", "%s", strerror(errno));
	if (nth_fd < 0 || fd < 0 || !buf || mem_alloc(fd, 1 << 20, &h) || mem_alloc(fd, 1 << 20, &h2) ||
	    xioctl(fd, METIS_IOCTL_BUF_EXPORT, &e) ||
	    buf_register(fd, METIS_DMA_TO_DEVICE, buf, 1 << 16) <= 0)
		return 1;
	fill(buf, 1 << 16, 5);
	for (int op = 0; op < F_NR; op++) {
		char name[48];
		int ok = 1, n;

		for (n = 1; n < 400; n++) {
			int r, injected;

			arm_nth(n);
			r = fault_run(op, fd, h, h2, buf, e.fd);
			injected = nth_injected();
			if (tidy_fault_run(fd)) {
				printf("@@NOTE %s: fault %d left a region or job that can't be released\n",
				       fault_op_name[op], n);
				ok = 0;
				break;
			}
			if (!injected) {
				/* Past the last injection point: the operation must just work. */
				if (r) {
					printf("@@NOTE %s: fails with %d and no fault injected\n",
					       fault_op_name[op], r);
					ok = 0;
				}
				break;
			}
			/* Injected: a clean error or a success (the point was optional), and
			 * the regions are neither lost nor left busy. */
			if (r == -EBADE || mem_free(fd, h) || mem_alloc(fd, 1 << 20, &h) ||
			    mem_free(fd, h2) || mem_alloc(fd, 1 << 20, &h2)) {
				printf("@@NOTE %s: fault %d left region state wrong (r %d)\n",
				       fault_op_name[op], n, r);
				ok = 0;
				break;
			}
		}
		points[op] = n - 1;
		total += n - 1;
		snprintf(name, sizeof(name), "failnth_%s_unwinds", fault_op_name[op]);
		TAP(ok, name, "see the note above");
	}
	printf("@@NOTE failnth: %d injected faults:", total);
	for (int op = 0; op < F_NR; op++)
		printf(" %s %d", fault_op_name[op], points[op]);
	printf("\n");
	TAP(round_trip(fd, h, 0, 1 << 20, 3, 7, why, sizeof(why)) == 0, "failnth_dma_after", "%s", why);
	close(e.fd);
	close(fd);
	free(buf);
	return failed;
}

/* Whether `fd` reports POLLPRI within `ms` milliseconds. */
static int pollpri(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLPRI);
}

/*
 * A runtime-owned card loses its firmware (`lose`, a shell command: a reset or
 * a suspend that cuts power) and the runtime loads it again (`reload`): the
 * driver tells userspace through a uevent and POLLPRI, reports fw_state
 * BOOTLOADER until METIS_IOCTL_FW_CHANGED, and nothing before.
 */
static int fw_lost_suite(const char *lose, const char *reload)
{
	int us = uevent_socket(), fd = open(dev_path, O_RDWR);
	struct metis_info i = { .size = sizeof(i) };
	struct metis_fw_changed c = { .size = sizeof(c) };

	TAP(fd >= 0 && us >= 0, "fw_lost_setup", "%s", strerror(errno));
	if (fd < 0 || us < 0)
		return 1;
	block_sigchld();
	TAP(!xioctl(fd, METIS_IOCTL_INFO, &i) && i.fw_owner == METIS_FW_RUNTIME &&
	    i.fw_state == METIS_FW_READY, "fw_runtime_owned_and_ready", "owner %u state %u",
	    i.fw_owner, i.fw_state);
	TAP(!pollpri(fd, 0), "fw_present_no_pollpri", "POLLPRI with firmware running");
	TAP(system(lose) == 0, "fw_lose_step", "%s failed", lose);
	TAP(uevent_seen(us, "METIS_EVENT=FIRMWARE_LOST"), "fw_lost_uevent", "no uevent");
	TAP(pollpri(fd, 1000), "fw_lost_pollpri", "no POLLPRI");
	TAP(!xioctl(fd, METIS_IOCTL_INFO, &i) && i.fw_state == METIS_FW_BOOTLOADER,
	    "fw_lost_state_bootloader", "state %u", i.fw_state);
	c.flags = 1;
	TAP(xioctl(fd, METIS_IOCTL_FW_CHANGED, &c) == -EINVAL, "fw_changed_rejects_flags", "accepted");
	c.flags = 0;
	TAP(system(reload) == 0, "fw_reload_step", "%s failed", reload);
	TAP(!xioctl(fd, METIS_IOCTL_FW_CHANGED, &c), "fw_changed", "%s", strerror(errno));
	TAP(!pollpri(fd, 0), "fw_reloaded_no_pollpri", "POLLPRI after FW_CHANGED");
	TAP(!xioctl(fd, METIS_IOCTL_INFO, &i) && i.fw_state == METIS_FW_READY &&
	    i.fw_version == (1 | 2 << 8), "fw_reloaded_ready", "state %u version %#x",
	    i.fw_state, i.fw_version);
	close(fd);
	close(us);
	return failed;
}

/*
 * Signals (issue 13's campaign): a sibling thread sends SIGUSR1 to this
 * thread at random moments (seeded) while it runs DMA both ways (data
 * checked), CMD (CHECKSUM, checked), WAIT with and without a limit, and
 * open/close. Without SA_RESTART every call ends in success or EINTR; with
 * it, calls restart and end in success. A WAIT restarted again and again
 * still ends when its limit does. The card then passes a data check.
 */
static volatile sig_atomic_t sigs_seen;

static void on_usr1(int sig)
{
	(void)sig;
	sigs_seen++;
}

struct pelter_arg {
	pthread_t target;
	int stop;
	unsigned int seed;
	int max_us;
	int for_ms;		/* stops by itself after this long; 0: only when told */
};

static void *pelter(void *p)
{
	struct pelter_arg *a = p;
	double end = mono_ms() + a->for_ms;

	while (!__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST) && (!a->for_ms || mono_ms() < end)) {
		usleep(rand_r(&a->seed) % a->max_us);
		pthread_kill(a->target, SIGUSR1);
	}
	return NULL;
}

static void on_signals(int restart)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0 };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

static int signals_suite(int rounds, unsigned int seed)
{
	enum { LEN = 4 << 20 };
	int fd = open(dev_path, O_RDWR), bad = 0, eintr = 0, ok = 0;
	uint8_t *a = malloc(LEN), *b = malloc(LEN);
	uint64_t h;
	char why[160] = "";

	block_sigchld();
	if (fd < 0 || !a || !b || mem_alloc(fd, LEN, &h)) {
		TAP(0, "signals_setup", "%s", strerror(errno));
		return 1;
	}
	printf("@@NOTE signals: seed %u, %d rounds per phase\n", seed, rounds);
	for (int restart = 0; restart < 2; restart++) {
		/*
		 * With SA_RESTART an interrupted DMA starts over: signals further apart and
		 * smaller transfers there, so that each call gets through in the end.
		 */
		struct pelter_arg p = { .target = pthread_self(), .seed = seed + restart,
					.max_us = restart ? 50000 : 3000 };
		size_t max_len = restart ? 64 << 10 : LEN;
		pthread_t t;

		on_signals(restart);
		pthread_create(&t, NULL, pelter, &p);
		for (int i = 0; i < rounds && !bad; i++) {
			unsigned int r = rand_r(&seed);
			size_t len = 1 + rand_r(&seed) % max_len;
			int res = 0, st = 0, tries;
			int64_t id;
			struct metis_cmd c;

			switch (r % 5) {
			case 0:	/* DMA there and back: every byte checked once both succeed. */
				fill(a, len, i);
				res = dma(fd, METIS_DMA_TO_DEVICE, a, len, h, 0);
				if (res)
					break;
				memset(b, 0, len);
				for (tries = 0; tries < 1000; tries++) {
					res = dma(fd, METIS_DMA_FROM_DEVICE, b, len, h, 0);
					if (res != -EINTR || restart)
						break;
					eintr++;
				}
				if (!res && memcmp(a, b, len)) {
					snprintf(why, sizeof(why), "round %d: %zu bytes came back wrong", i, len);
					bad = 1;
				}
				break;
			case 1:	/* CHECKSUM of what the last DMA left: CRC matches the host's. */
				memset(&c, 0, sizeof(c));
				c.opcode = METIS_CMD_CHECKSUM;
				c.handle_in = h;
				c.length = 4096;
				res = dma(fd, METIS_DMA_TO_DEVICE, a, 4096, h, 0);
				if (res)
					break;
				res = cmd(fd, &c);
				if (!res && c.result != crc32(a, 4096)) {
					snprintf(why, sizeof(why), "round %d: checksum %#x", i, c.result);
					bad = 1;
				}
				break;
			case 2:	/* WAIT without a limit, retried after EINTR until the job is reaped. */
			case 3:	/* ... and with a 5 s limit. */
				id = dma_async(fd, METIS_DMA_TO_DEVICE, a, len, h, 0);
				if (id < 0) {
					res = (int)id;
					break;
				}
				for (tries = 0; tries < 1000; tries++) {
					res = wait_job(fd, id, r % 5 == 3 ? 5000 : 0, &st);
					if (res != -EINTR || restart)
						break;
					eintr++;
				}
				if (!res && st) {
					snprintf(why, sizeof(why), "round %d: job status %d", i, st);
					bad = 1;
				}
				break;
			case 4: {
				int f2 = open(dev_path, O_RDWR);

				res = f2 < 0 ? -errno : close(f2);
				break;
			}
			}
			if (res == -EINTR && !restart) {
				eintr++;
			} else if (res) {
				snprintf(why, sizeof(why), "round %d op %u: %s%s", i, r % 5, strerror(-res),
					 restart ? " (SA_RESTART)" : "");
				bad = 1;
			} else {
				ok++;
			}
		}
		__atomic_store_n(&p.stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(t, NULL);
	}
	printf("@@NOTE signals: %d signals, %d calls ended in EINTR, %d succeeded\n",
	       (int)sigs_seen, eintr, ok);
	TAP(!bad, "signals_calls_end_cleanly", "%s", why);
	TAP(eintr > 0, "signals_interrupted_calls", "no call was interrupted by %d signals",
	    (int)sigs_seen);

	/*
	 * A WAIT restarted by a signal every few ms still ends after its 700 ms. The
	 * signals stop after 2.5 s: a WAIT that started its limit over at each restart
	 * would end only 700 ms after that.
	 */
	{
		enum { HELD = 64 << 20 };
		struct pelter_arg p = { .target = pthread_self(), .seed = seed, .max_us = 20000,
					.for_ms = 2500 };
		int st, r, held = 0, n0 = sigs_seen;
		uint8_t *big = calloc(1, HELD);
		uint64_t hb = 0;
		int64_t id;
		double t0, dt;
		pthread_t t;

		for (int ch = 0; ch < 4; ch++)
			held |= card_ctl("inject data-stall rd %d 60000", ch);
		TAP(!held && big && mem_alloc(fd, HELD, &hb) == 0, "restart_setup",
		    "host request or allocation failed");
		id = dma_async(fd, METIS_DMA_TO_DEVICE, big, HELD, hb, 0);
		on_signals(1);
		pthread_create(&t, NULL, pelter, &p);
		t0 = mono_ms();
		r = id > 0 ? wait_job(fd, id, 700, &st) : (int)id;
		dt = mono_ms() - t0;
		__atomic_store_n(&p.stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(t, NULL);
		printf("@@NOTE signals: restarted WAIT ended after %.0f ms, %d signals\n", dt,
		       (int)sigs_seen - n0);
		TAP(r == -ETIMEDOUT && dt >= 690 && dt < 2500 && sigs_seen - n0 >= 5,
		    "restarted_wait_keeps_its_limit", "r %d after %.0f ms, %d signals", r, dt,
		    (int)sigs_seen - n0);
		for (int ch = 0; ch < 4; ch++)
			card_ctl("inject link-release rd %d", ch);
		card_ctl("clear");
		r = id > 0 ? wait_job(fd, id, 0, &st) : -1;
		TAP(r == 0 && st == 0, "held_job_done_after_release", "r %d status %d", r, st);
		mem_free(fd, hb);
		free(big);
	}
	signal(SIGUSR1, SIG_IGN);
	TAP(round_trip(fd, h, 0, LEN, 3, 99, why, sizeof(why)) == 0, "signals_card_fine_after", "%s",
	    why);
	close(fd);
	free(a);
	free(b);
	return failed;
}

/*
 * Two unprivileged users (uids 65534 and 65533, both in the card's group
 * 1000) on one card at once (issue 13's campaign): each learns the other's
 * region handle and job id, and can neither write, read, free, checksum nor
 * wait on them, nor reset the card under the other; meanwhile both move data
 * through their own regions, every byte checked.
 */
struct mu_shared {
	pthread_barrier_t b;
	uint64_t handle[2];
	int64_t job[2][3];	/* each user's pending jobs */
	int njobs[2];
};

static void mu_tap(int ok, int role, const char *what, const char *fmt, int v)
{
	char name[64];

	snprintf(name, sizeof(name), "user%c_%s", 'A' + role, what);
	TAP(ok, name, fmt, v);
}

static int mu_child(struct mu_shared *sh, int role, int rounds)
{
	enum { LEN = 1 << 20 };
	int other = 1 - role, fd, st, bad = 0;
	uint8_t *buf = malloc(LEN);
	struct metis_cmd c;
	char why[160] = "not run: the own jobs failed";
	uint64_t h;

	if (become(65534 - role, 1000)) {
		mu_tap(0, role, "drop_privileges", "errno %d", errno);
		return 1;
	}
	fd = open(dev_path, O_RDWR);
	mu_tap(fd >= 0 && buf && mem_alloc(fd, LEN, &h) == 0, role, "own_region", "errno %d", errno);
	if (fd < 0)
		return 1;
	fill(buf, LEN, role + 1);
	sh->handle[role] = h;
	/*
	 * Job ids count per file: user A reaps its first two of three jobs, so that each
	 * user has pending ids the other has not (B: 1 and 2, A: 3).
	 */
	for (int i = 0; i < 3 - role; i++)
		sh->job[role][i] = dma_async(fd, METIS_DMA_TO_DEVICE, buf, LEN, h, 0);
	if (role == 0) {
		for (int i = 0; i < 2; i++)
			bad |= wait_job(fd, sh->job[0][i], 0, &st) != 0 || st != 0;
		sh->job[0][0] = sh->job[0][2];
	}
	sh->njobs[role] = role == 0 ? 1 : 2;
	pthread_barrier_wait(&sh->b);

	mu_tap(dma(fd, METIS_DMA_TO_DEVICE, buf, 64, sh->handle[other], 0) == -ENOENT, role,
	       "cannot_write_other_region", "%d", 0);
	mu_tap(dma(fd, METIS_DMA_FROM_DEVICE, buf + LEN / 2, 64, sh->handle[other], 0) == -ENOENT,
	       role, "cannot_read_other_region", "%d", 0);
	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_CHECKSUM;
	c.handle_in = sh->handle[other];
	c.length = 64;
	mu_tap(cmd(fd, &c) != 0, role, "cannot_checksum_other_region", "result %#x", c.result);
	{
		int theirs = 0, tried = 0;

		for (int i = 0; i < sh->njobs[other]; i++) {
			int mine = 0;

			for (int k = 0; k < sh->njobs[role]; k++)
				mine |= sh->job[role][k] == sh->job[other][i];
			if (mine)
				continue;
			tried++;
			theirs += wait_job(fd, sh->job[other][i], 0, &st) != -ENOENT;
		}
		mu_tap(tried > 0 && !theirs, role, "cannot_wait_other_job", "%d reached", theirs);
	}
	mu_tap(do_reset(fd, 0) == -EPERM, role, "cannot_reset_under_other", "%d", 0);
	pthread_barrier_wait(&sh->b);
	/* Only now may the other free its region. */
	mu_tap(mem_free(fd, sh->handle[other]) == -ENOENT, role, "cannot_free_other_region", "%d",
	       0);
	pthread_barrier_wait(&sh->b);

	/*
	 * The other user is done with this user's job ids: reap them before the round trips,
	 * which write the same region (a job still running would overwrite them).
	 */
	for (int i = 0; i < sh->njobs[role]; i++)
		bad |= wait_job(fd, sh->job[role][i], 0, &st) != 0 || st != 0;
	mu_tap(!bad, role, "own_jobs_reaped", "status %d", st);
	for (int i = 0; i < rounds && !bad; i++)
		bad = round_trip(fd, h, (i * 4096) % (LEN / 2), LEN / 2, i % 4, role * 1000 + i, why,
				 sizeof(why));
	{
		char name[64];

		snprintf(name, sizeof(name), "user%c_own_data_intact", 'A' + role);
		TAP(!bad, name, "round trip failed: %s", why);
	}
	mu_tap(mem_free(fd, h) == 0, role, "own_region_freed", "%d", 0);
	close(fd);
	free(buf);
	return failed;
}

static int multi_user(int rounds)
{
	struct mu_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_barrierattr_t ba;
	pid_t pid[2];
	int st, ok = 1;

	if (sh == MAP_FAILED)
		return 1;
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&sh->b, &ba, 2);
	for (int r = 0; r < 2; r++) {
		pid[r] = fork();
		if (pid[r] == 0)
			_exit(mu_child(sh, r, rounds));
	}
	for (int r = 0; r < 2; r++) {
		ok &= pid[r] > 0 && waitpid(pid[r], &st, 0) == pid[r] && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0;
	}
	TAP(ok, "multi_user_children_passed", "a user's checks failed%s", "");
	return failed;
}

/* Whether BDF is bound to metis. */
static int bound(const char *bdf)
{
	char path[128], link[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = 0;
	return strstr(link, "/metis") != NULL;
}

/*
 * Probe with its nth injection point failing (failslab and fail_page_alloc,
 * armed by the scenario), for n = 1, 2, ... up to `dense`, then every
 * `stride`th, until a bind gets past every point. Only the write that binds
 * runs armed: both files are opened before. Every failed probe must leave the
 * device unbound (no splat, no leak: the runner and kmemleak); a probe that
 * survived its fault is unbound again. Afterwards the card binds and works.
 */
static int probe_nth(const char *bdf, int dense, int stride)
{
	int bind = -1, n, binds = 0, refused = 0, survived = 0, done = 0;
	char why[160];

	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	TAP(nth_fd >= 0, "probe_fail_nth_available", "%s", strerror(errno));
	if (nth_fd < 0)
		return 1;
	if (bound(bdf))
		write_file("/sys/bus/pci/drivers/metis/unbind", bdf);
	for (n = 1; n < 100000 && !done; n += n < dense ? 1 : stride) {
		int r, injected;

		bind = open("/sys/bus/pci/drivers/metis/bind", O_WRONLY);
		if (bind < 0)
			break;
		arm_nth(n);
		r = write(bind, bdf, strlen(bdf)) < 0 ? -errno : 0;
		injected = nth_injected();
		close(bind);
		binds++;
		if (!injected) {
			done = 1;
			TAP(r == 0 && bound(bdf), "probe_past_every_point", "bind %d without a fault", r);
		} else if (bound(bdf)) {
			survived++;
		} else {
			refused++;
		}
		if (bound(bdf) && !done)
			write_file("/sys/bus/pci/drivers/metis/unbind", bdf);
	}
	printf("@@NOTE probe fault sweep: %d binds up to point %d (every point to %d, then every "
	       "%d): %d refused and unwound, %d survived their fault\n", binds, n, dense, stride,
	       refused, survived);
	TAP(done, "probe_sweep_reached_the_end", "still injecting at point %d", n);
	TAP(refused > 0, "probe_faults_refused_the_card", "no injected fault failed a probe");
	if (!bound(bdf))
		write_file("/sys/bus/pci/drivers/metis/bind", bdf);
	TAP(bound(bdf), "probe_binds_after_sweep", "not bound");
	{
		int fd = open(dev_path, O_RDWR);
		uint64_t h;

		TAP(fd >= 0 && mem_alloc(fd, 1 << 20, &h) == 0 &&
		    round_trip(fd, h, 0, 1 << 20, 1, 7, why, sizeof(why)) == 0,
		    "probe_card_works_after_sweep", "%s", fd < 0 ? strerror(errno) : why);
		if (fd >= 0)
			close(fd);
	}
	return failed;
}

/*
 * Memory limits (issue 13's campaign): in a memory cgroup limited to 32 MiB
 * and with RLIMIT_MEMLOCK at 256 KiB, as an unprivileged user, a 64 MiB
 * export fails with ENOMEM (its pages are charged to the cgroup) and a 1 MiB
 * pin with ENOMEM (RLIMIT_MEMLOCK), and the process lives on: what fits still
 * works. `procs` is the cgroup's cgroup.procs.
 */
static int limits_suite(const char *procs)
{
	enum { SMALL = 64 << 10, BIG = 1 << 20 };
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		struct rlimit rl = { .rlim_cur = 256 << 10, .rlim_max = 256 << 10 };
		struct metis_buf_export e = { .size = sizeof(e),
					      .flags = METIS_BUF_READ | METIS_BUF_WRITE };
		struct metis_cmd c;
		uint8_t *b = malloc(BIG);
		uint64_t h;
		int fd, r;

		/* Into the cgroup while still root; then keep the group, lose the user. */
		if (!b || write_file(procs, "0") || setrlimit(RLIMIT_MEMLOCK, &rl) ||
		    become(65534, 0))
			_exit(3);
		fd = open(dev_path, O_RDWR);
		if (fd < 0 || mem_alloc(fd, BIG, &h))
			_exit(4);
		e.length = 64 << 20;
		r = xioctl(fd, METIS_IOCTL_BUF_EXPORT, &e);
		TAP(r == -ENOMEM, "memcg_export_over_limit_enomem", "got %d", r);
		e.length = BIG;
		r = xioctl(fd, METIS_IOCTL_BUF_EXPORT, &e);
		TAP(r == 0, "memcg_export_within_limit", "got %d", r);
		if (!r)
			close(e.fd);
		fill(b, BIG, 3);
		r = dma(fd, METIS_DMA_TO_DEVICE, b, BIG, h, 0);
		TAP(r == -ENOMEM, "memlock_pin_over_limit_enomem", "got %d", r);
		r = dma(fd, METIS_DMA_TO_DEVICE, b, SMALL, h, 0);
		memset(&c, 0, sizeof(c));
		c.opcode = METIS_CMD_CHECKSUM;
		c.handle_in = h;
		c.length = SMALL;
		TAP(r == 0 && cmd(fd, &c) == 0 && c.result == crc32(b, SMALL), "limits_rest_works",
		    "dma %d, checksum %#x", r, c.result);
		close(fd);
		fflush(stdout);
		_exit(failed ? 1 : 0);
	}
	waitpid(pid, &st, 0);
	TAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "limits_child_lived", "status %#x", st);
	{
		struct metis_buf_export e = { .size = sizeof(e), .length = 64 << 20,
					      .flags = METIS_BUF_READ | METIS_BUF_WRITE };
		int fd = open(dev_path, O_RDWR);

		TAP(fd >= 0 && xioctl(fd, METIS_IOCTL_BUF_EXPORT, &e) == 0, "export_outside_cgroup",
		    "refused");
		if (fd >= 0) {
			close(e.fd);
			close(fd);
		}
	}
	return failed;
}

struct fill_arg {
	int fd;
	uint64_t h, len;
	int r;
};

static void *fill_thread(void *p)
{
	struct fill_arg *a = p;
	struct metis_cmd c;

	memset(&c, 0, sizeof(c));
	c.opcode = METIS_CMD_FILL;
	c.handle_in = a->h;
	c.length = a->len;
	c.arg = 0x5a5a5a5a;
	a->r = cmd(a->fd, &c);
	return NULL;
}

static void *alloc_thread(void *p)
{
	struct fill_arg *a = p;

	a->r = mem_alloc(a->fd, a->len, &a->h);
	return NULL;
}

/*
 * The card stopped (`stop`, a shell command: a reset, an unbind) while a long
 * FILL runs on it: the command answers before the stop withdraws the
 * virtual-MSI registration, so the firmware never signals into a withdrawn
 * one (the scenario counts the card's faults: a vmsi_unregistered fault is,
 * on a real host, the R1.2 write). The FILL's caller gets its answer, EIO or
 * ENODEV. A MEM_ALLOC waiting meanwhile for the command slot (its scrub is a
 * FILL too) must not post its command while the first one still runs (a
 * mailbox_busy fault: CI saw one when an unbind failed the first caller's
 * wait); it gets its region or the stop's error.
 */
static int fill_stop(const char *stop)
{
	enum { LEN = 768 << 20 };
	struct fill_arg fa = { .len = LEN }, aa = { .len = 1 << 20 };
	pthread_t t, ta;
	int r;

	block_sigchld();
	fa.fd = open(dev_path, O_RDWR);
	if (fa.fd < 0 || mem_alloc(fa.fd, LEN, &fa.h)) {
		TAP(0, "fill_stop_setup", "%s", strerror(errno));
		return 1;
	}
	pthread_create(&t, NULL, fill_thread, &fa);
	usleep(20 * 1000);
	aa.fd = fa.fd;
	pthread_create(&ta, NULL, alloc_thread, &aa);
	usleep(50 * 1000);
	r = system(stop);
	pthread_join(t, NULL);
	pthread_join(ta, NULL);
	TAP(r == 0, "stop_during_fill", "'%s' failed", stop);
	TAP(fa.r == 0 || fa.r == -EIO || fa.r == -ENODEV, "fill_answered_or_failed", "got %d",
	    fa.r);
	TAP(aa.r == 0 || aa.r == -EIO || aa.r == -ENODEV || aa.r == -ESHUTDOWN,
	    "queued_alloc_answered_or_failed", "got %d", aa.r);
	close(fa.fd);
	return failed;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc > 1)
		dev_path = argv[1];
	if (argc > 3 && !strcmp(argv[2], "stress"))
		return stress(atoi(argv[3]));
	if (argc > 4 && !strcmp(argv[2], "job"))
		return one_job(strtoull(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
	if (argc > 4 && !strcmp(argv[2], "fw-lost"))
		return fw_lost_suite(argv[3], argv[4]);
	if (argc > 2 && !strcmp(argv[2], "reset"))
		return reset_suite();
	if (argc > 3 && !strcmp(argv[2], "fill-stop"))
		return fill_stop(argv[3]);
	if (argc > 2 && !strcmp(argv[2], "reset-perm"))
		return reset_perm_suite();
	if (argc > 3 && !strcmp(argv[2], "flood"))
		return flood(atoi(argv[3]));
	if (argc > 3 && !strcmp(argv[2], "close-inflight"))
		return close_inflight(strtoul(argv[3], NULL, 0));
	if (argc > 4 && !strcmp(argv[2], "dead-irq"))
		return dead_irq(atoi(argv[3]), strtoul(argv[4], NULL, 0));
	if (argc > 2 && !strcmp(argv[2], "fragmented"))
		return fragmented_suite();
	if (argc > 3 && !strcmp(argv[2], "regions"))
		return regions_suite(atoi(argv[3]));
	if (argc > 2 && !strcmp(argv[2], "torn-fetch"))
		return torn_fetch_suite();
	if (argc > 2 && !strcmp(argv[2], "scrub"))
		return scrub_suite();
	if (argc > 2 && !strcmp(argv[2], "cmd-abandon"))
		return cmd_abandon();
	if (argc > 2 && !strcmp(argv[2], "memlock"))
		return memlock_suite();
	if (argc > 2 && !strcmp(argv[2], "registered"))
		return registered_suite();
	if (argc > 2 && !strcmp(argv[2], "batch"))
		return batch_suite();
	if (argc > 3 && !strcmp(argv[2], "registered-hold"))
		return registered_hold(argv[3]);
	if (argc > 3 && !strcmp(argv[2], "limits"))
		return limits_suite(argv[3]);
	if (argc > 5 && !strcmp(argv[2], "probe-nth"))
		return probe_nth(argv[3], atoi(argv[4]), atoi(argv[5]));
	if (argc > 3 && !strcmp(argv[2], "multi-user"))
		return multi_user(atoi(argv[3]));
	if (argc > 3 && !strcmp(argv[2], "signals"))
		return signals_suite(atoi(argv[3]), argc > 4 ? strtoul(argv[4], NULL, 0) : 1);
	if (argc > 2 && !strcmp(argv[2], "card-cap"))
		return card_cap();
	if (argc > 2 && !strcmp(argv[2], "failnth"))
		return fault_suite();
	if (argc > 5 && !strcmp(argv[2], "sleep"))
		return sleep_suite(atoi(argv[3]), argv[4], argv[5]);
	if (argc > 3 && !strcmp(argv[2], "sleep-inflight"))
		return sleep_inflight(argv[3], argc > 4 && !strcmp(argv[4], "eio") ? EIO : ESHUTDOWN);
	fd = open(dev_path, O_RDWR);
	TAP(fd >= 0, "open_device", "%s: %s", dev_path, strerror(errno));
	if (fd < 0)
		return 1;
	test_info(fd);
	test_validation(fd);
	test_dma_sizes(fd);
	test_concurrent(fd);
	test_async(fd);
	test_commands(fd);
	close(fd);
	return failed;
}
