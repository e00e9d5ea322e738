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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../uapi/linux/metis.h"

static int failed;
static const char *dev_path = "/dev/metis0";

#define TAP(cond, name, ...) do {						\
	if (cond) {								\
		printf("@@TAP ok %s\n", name);					\
	} else {								\
		failed = 1;							\
		printf("@@TAP not ok %s # ", name);				\
		printf(__VA_ARGS__);						\
		printf("\n");							\
	}									\
	fflush(stdout);								\
} while (0)

/* ioctl returning -errno on failure. */
static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

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

static int mem_alloc(int fd, uint64_t len, uint64_t *handle)
{
	struct metis_mem_alloc a = { .size = sizeof(a), .length = len };
	int r = xioctl(fd, METIS_IOCTL_MEM_ALLOC, &a);

	*handle = a.handle;
	return r;
}

static int mem_free(int fd, uint64_t handle)
{
	struct metis_mem_free f = { .size = sizeof(f), .handle = handle };

	return xioctl(fd, METIS_IOCTL_MEM_FREE, &f);
}

static int dma(int fd, uint32_t flags, void *buf, uint64_t len, uint64_t handle, uint64_t off)
{
	struct metis_dma d = {
		.size = sizeof(d), .flags = flags, .user_addr = (uintptr_t)buf,
		.length = len, .handle = handle, .offset = off,
	};

	return xioctl(fd, METIS_IOCTL_DMA, &d);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
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
	mem_free(fd, hin);
	mem_free(fd, hout);
	free(a);
	free(b);
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

int main(int argc, char **argv)
{
	int fd;

	if (argc > 1)
		dev_path = argv[1];
	if (argc > 3 && !strcmp(argv[2], "stress"))
		return stress(atoi(argv[3]));
	fd = open(dev_path, O_RDWR);
	TAP(fd >= 0, "open_device", "%s: %s", dev_path, strerror(errno));
	if (fd < 0)
		return 1;
	test_info(fd);
	test_validation(fd);
	test_dma_sizes(fd);
	test_concurrent(fd);
	test_commands(fd);
	close(fd);
	return failed;
}
