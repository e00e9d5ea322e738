// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side test of the dma-buf ioctls (uapi/linux/metis.h): buffers the
 * driver exports (validation, fd flags, mmap with CPU-access syncs, the
 * card's DMA in both directions, async) and buffers from another exporter
 * (/dev/dma_heap/system) DMA'd to and from the card, every byte checked.
 * Prints "@@TAP ok|not ok NAME" lines for the runner.
 *
 *   dmabuf_test [DEVICE]             the suite
 *   dmabuf_test DEVICE cycles N      N export/close cycles
 *   dmabuf_test DEVICE hold CMD      export and map a buffer, run CMD (which
 *                                    unbinds or unloads the driver), then
 *                                    check the buffer still works for the CPU
 *   dmabuf_test DEVICE sleep CMD     a buffer is filled, CMD suspends and
 *                                    resumes the system, and the card then
 *                                    reads the buffer and writes into another
 *   dmabuf_test DEVICE vivid VIDEO   a V4L2 capture device (vivid) fills an
 *                                    exported buffer imported with
 *                                    V4L2_MEMORY_DMABUF; the card reads the
 *                                    frame and it matches the CPU's view
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../uapi/linux/metis.h"
#include "guest.h"


/* Exports a buffer; returns its fd or -errno, and the rounded length in *len. */
static int export_buf(int fd, uint32_t flags, uint64_t *len)
{
	struct metis_buf_export e = { .size = sizeof(e), .flags = flags, .length = *len };
	int r = xioctl(fd, METIS_IOCTL_BUF_EXPORT, &e);

	if (r)
		return r;
	*len = e.length;
	return e.fd;
}

static int dma_buf(int fd, uint32_t flags, int buf, uint64_t buf_off, uint64_t len, uint64_t h,
		   uint64_t off, uint64_t *job)
{
	struct metis_dma_buf d = {
		.size = sizeof(d), .flags = flags, .fd = buf, .buf_offset = buf_off,
		.length = len, .handle = h, .offset = off,
	};
	int r = xioctl(fd, METIS_IOCTL_DMA_BUF, &d);

	if (job)
		*job = d.job_id;
	return r;
}

static int dma_user(int fd, uint32_t flags, void *p, uint64_t len, uint64_t h, uint64_t off)
{
	struct metis_dma d = {
		.size = sizeof(d), .flags = flags, .user_addr = (uintptr_t)p,
		.length = len, .handle = h, .offset = off,
	};

	return xioctl(fd, METIS_IOCTL_DMA, &d);
}

static int cpu_sync(int buf, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return xioctl(buf, DMA_BUF_IOCTL_SYNC, &s);
}

/*
 * The round trip every buffer kind must pass: the CPU writes a pattern into
 * the mapped buffer, the card reads it (dma-buf -> region), the region comes
 * back through the ordinary path and matches; then the card writes the
 * region into the buffer (region -> dma-buf) and the CPU reads it back.
 */
static void round_trip(int fd, const char *kind, int buf, uint8_t *map, size_t len, uint64_t h,
		       uint32_t seed)
{
	uint8_t *want = malloc(len), *got = malloc(len);
	size_t off = 4096 + 13, n = len - off - 7;
	char name[96];
	int r;

	fill(want, len, seed);
	cpu_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	memcpy(map, want, len);
	cpu_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	r = dma_buf(fd, METIS_DMA_TO_DEVICE, buf, off, n, h, 64, NULL);
	memset(got, 0, len);
	if (!r)
		r = dma_user(fd, METIS_DMA_FROM_DEVICE, got, n, h, 64);
	snprintf(name, sizeof(name), "%s_card_reads_buffer", kind);
	TAP(r == 0 && !memcmp(got, want + off, n), name, "r %d or data differs", r);

	fill(want, len, seed + 1);
	r = dma_user(fd, METIS_DMA_TO_DEVICE, want, n, h, 64);
	if (!r)
		r = dma_buf(fd, METIS_DMA_FROM_DEVICE, buf, off, n, h, 64, NULL);
	cpu_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	snprintf(name, sizeof(name), "%s_card_writes_buffer", kind);
	TAP(r == 0 && !memcmp(map + off, want, n), name, "r %d or data differs", r);
	cpu_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	free(want);
	free(got);
}

static int region(int fd, uint64_t len, uint64_t *h)
{
	struct metis_mem_alloc a = { .size = sizeof(a), .length = len };
	int r = xioctl(fd, METIS_IOCTL_MEM_ALLOC, &a);

	*h = a.handle;
	return r;
}

static void test_export(int fd, uint64_t h)
{
	enum { LEN = (1 << 20) + 3 };
	uint64_t len = LEN;
	struct metis_buf_export e = { .size = sizeof(e), .flags = METIS_BUF_READ, .length = 4096 };
	int buf, r, st = 0;
	uint8_t *map;

	len = 4096;
	TAP(export_buf(fd, 0, &len) == -EINVAL, "export_no_access_flags", "accepted");
	len = 0;
	TAP(export_buf(fd, METIS_BUF_READ, &len) == -EINVAL, "export_zero_length", "accepted");
	len = METIS_BUF_MAX_LENGTH + 1;
	TAP(export_buf(fd, METIS_BUF_READ, &len) == -EINVAL, "export_too_long", "accepted");
	len = 4096;
	TAP(export_buf(fd, 4, &len) == -EINVAL, "export_unknown_flag", "accepted");
	e.reserved = 1;
	TAP(xioctl(fd, METIS_IOCTL_BUF_EXPORT, &e) == -EINVAL, "export_reserved_nonzero", "accepted");
	TAP(xioctl(fd, METIS_IOCTL_BUF_EXPORT, (void *)16) == -EFAULT, "export_bad_pointer",
	    "accepted");

	len = 4096;
	buf = export_buf(fd, METIS_BUF_READ, &len);
	TAP(buf >= 0 && (fcntl(buf, F_GETFL) & O_ACCMODE) == O_RDONLY &&
	    (fcntl(buf, F_GETFD) & FD_CLOEXEC), "export_readonly_cloexec", "fd %d", buf);
	if (buf >= 0)
		close(buf);

	len = LEN;
	buf = export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len);
	TAP(buf >= 0 && len == ((LEN + 4095) & ~4095ULL) &&
	    (fcntl(buf, F_GETFL) & O_ACCMODE) == O_RDWR, "export_rw_rounded", "fd %d len %llu",
	    buf, (unsigned long long)len);
	if (buf < 0)
		return;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	TAP(map != MAP_FAILED, "export_mmap", "%s", strerror(errno));
	if (map == MAP_FAILED)
		return;
	TAP(map[0] == 0 && map[len - 1] == 0, "export_zeroed", "stale data in a new buffer");
	round_trip(fd, "exported", buf, map, len, h, 11);

	/* Async through the same buffer. */
	{
		uint64_t job;
		struct metis_wait w = { .size = sizeof(w) };

		r = dma_buf(fd, METIS_DMA_TO_DEVICE | METIS_DMA_ASYNC, buf, 0, len, h, 0, &job);
		w.job_id = job;
		if (!r)
			r = xioctl(fd, METIS_IOCTL_WAIT, &w);
		st = w.status;
		TAP(r == 0 && st == 0, "exported_async", "r %d status %d", r, st);
	}
	/* Bounds and bad descriptors. */
	TAP(dma_buf(fd, METIS_DMA_TO_DEVICE, buf, len - 8, 16, h, 0, NULL) == -EINVAL,
	    "dma_buf_past_end", "accepted");
	TAP(dma_buf(fd, METIS_DMA_TO_DEVICE, buf, UINT64_MAX - 4, 16, h, 0, NULL) == -EINVAL,
	    "dma_buf_offset_overflow", "accepted");
	TAP(dma_buf(fd, METIS_DMA_TO_DEVICE, -1, 0, 16, h, 0, NULL) == -EBADF,
	    "dma_buf_bad_fd", "accepted");
	{
		int null = open("/dev/null", O_RDWR);
		TAP(dma_buf(fd, METIS_DMA_TO_DEVICE, null, 0, 16, h, 0, NULL) == -EINVAL,
		    "dma_buf_not_a_dmabuf", "accepted");
		close(null);
	}
	TAP(dma_buf(fd, METIS_DMA_TO_DEVICE | METIS_DMA_FROM_DEVICE, buf, 0, 16, h, 0, NULL) ==
	    -EINVAL, "dma_buf_two_directions", "accepted");
	munmap(map, len);
	close(buf);
}

static void test_heap(int fd, uint64_t h)
{
	struct dma_heap_allocation_data a = { .len = 2 << 20, .fd_flags = O_RDWR | O_CLOEXEC };
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
	uint8_t *map;

	TAP(heap >= 0, "dma_heap_present", "%s", strerror(errno));
	if (heap < 0)
		return;
	TAP(xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a) == 0, "dma_heap_alloc", "%s", strerror(errno));
	close(heap);
	map = mmap(NULL, a.len, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0);
	TAP(map != MAP_FAILED, "dma_heap_mmap", "%s", strerror(errno));
	if (map == MAP_FAILED)
		return;
	round_trip(fd, "dma_heap", a.fd, map, a.len, h, 21);
	munmap(map, a.len);
	close(a.fd);
}

static int cycles(int n)
{
	int fd = open(dev_path, O_RDWR), bad = 0;

	for (int i = 0; i < n && !bad; i++) {
		uint64_t len = 4096 * (1 + i % 4);
		int buf = export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len);

		bad = buf < 0 || close(buf);
	}
	TAP(fd >= 0 && !bad, "export_close_cycles", "failed");
	close(fd);
	return failed;
}

static int hold(const char *cmd)
{
	int fd = open(dev_path, O_RDWR), buf;
	uint64_t len = 1 << 20;
	uint8_t *map, *want = malloc(len);

	buf = fd >= 0 ? export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len) : -1;
	map = buf >= 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0) : MAP_FAILED;
	TAP(map != MAP_FAILED, "hold_export", "%s", strerror(errno));
	if (map == MAP_FAILED)
		return 1;
	close(fd);	/* only the dma-buf keeps anything now */
	fill(want, len, 5);
	memcpy(map, want, len);
	printf("@@NOTE hold: running '%s' with the buffer held\n", cmd);
	fflush(stdout);
	TAP(system(cmd) == 0, "hold_command", "'%s' failed", cmd);
	TAP(cpu_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW) == 0 && !memcmp(map, want, len),
	    "buffer_intact_after", "sync failed or data changed");
	memset(map, 0x5a, len);
	TAP(cpu_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW) == 0 && map[len - 1] == 0x5a,
	    "buffer_writable_after", "failed");
	munmap(map, len);
	close(buf);
	return failed;
}

/* Buffers held across a system sleep keep their contents and still work for the card. */
static int across_sleep(const char *cmd)
{
	int fd = open(dev_path, O_RDWR), a, b, r;
	uint64_t len = 1 << 20, lb = 1 << 20, h;
	uint8_t *ma, *mb, *want = malloc(len);

	a = fd >= 0 ? export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len) : -1;
	b = fd >= 0 ? export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &lb) : -1;
	TAP(a >= 0 && b >= 0 && region(fd, len, &h) == 0, "sleep_setup", "export failed");
	if (a < 0 || b < 0)
		return 1;
	ma = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	mb = mmap(NULL, lb, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	fill(want, len, 77);
	cpu_sync(a, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	memcpy(ma, want, len);
	cpu_sync(a, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	TAP(system(cmd) == 0, "sleep_with_buffers_held", "'%s' failed", cmd);
	/* Device memory may be lost across the sleep: the first use says so once. */
	r = dma_buf(fd, METIS_DMA_TO_DEVICE, a, 0, len, h, 0, NULL);
	if (r == -ESTALE)
		r = dma_buf(fd, METIS_DMA_TO_DEVICE, a, 0, len, h, 0, NULL);
	if (!r)
		r = dma_buf(fd, METIS_DMA_FROM_DEVICE, b, 0, len, h, 0, NULL);
	cpu_sync(b, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	TAP(r == 0 && !memcmp(mb, want, len), "card_uses_buffers_after_sleep",
	    "r %d or data differs", r);
	cpu_sync(b, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap(ma, len);
	munmap(mb, lb);
	close(a);
	close(b);
	close(fd);
	return failed;
}

/* One frame from a V4L2 capture device into an exported buffer, then read by the card. */
static int vivid(const char *video)
{
	int fd = open(dev_path, O_RDWR), v = open(video, O_RDWR), buf = -1, r, nonzero = 0;
	struct v4l2_format f = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	struct v4l2_requestbuffers rb = { .count = 1, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
					  .memory = V4L2_MEMORY_DMABUF };
	struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF };
	enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	struct pollfd p = { .events = POLLIN };
	uint64_t len, h;
	uint8_t *map, *cpu, *card;

	TAP(fd >= 0 && v >= 0, "vivid_open", "%s", strerror(errno));
	if (fd < 0 || v < 0)
		return 1;
	r = xioctl(v, VIDIOC_G_FMT, &f);
	TAP(r == 0 && f.fmt.pix.sizeimage > 0, "vivid_format", "r %d", r);
	if (r)
		return 1;
	len = f.fmt.pix.sizeimage;
	buf = export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len);
	TAP(buf >= 0 && region(fd, len, &h) == 0, "vivid_export", "%d", buf);
	if (buf < 0)
		return 1;
	r = xioctl(v, VIDIOC_REQBUFS, &rb);
	TAP(r == 0 && rb.count >= 1, "vivid_reqbufs_dmabuf", "r %d count %u", r, rb.count);
	b.index = 0;
	b.m.fd = buf;
	b.length = len;
	r = xioctl(v, VIDIOC_QBUF, &b);
	TAP(r == 0, "vivid_imports_exported_buffer", "QBUF: %s", strerror(-r));
	if (r)
		return 1;
	r = xioctl(v, VIDIOC_STREAMON, &type);
	p.fd = v;
	if (!r && poll(&p, 1, 10000) != 1)
		r = -ETIMEDOUT;
	memset(&b, 0, sizeof(b));
	b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	b.memory = V4L2_MEMORY_DMABUF;
	if (!r)
		r = xioctl(v, VIDIOC_DQBUF, &b);
	xioctl(v, VIDIOC_STREAMOFF, &type);
	TAP(r == 0 && b.bytesused > 0, "vivid_captured_frame", "r %d bytesused %u", r, b.bytesused);
	if (r)
		return 1;
	/* What the CPU sees in the buffer ... */
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, buf, 0);
	cpu = malloc(len);
	card = calloc(1, len);
	cpu_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	memcpy(cpu, map, len);
	cpu_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	for (size_t i = 0; i < b.bytesused; i++)
		nonzero += cpu[i] != 0;
	TAP(nonzero > (int)(b.bytesused / 4), "vivid_wrote_pixels", "only %d non-zero bytes", nonzero);
	/* ... is what the card reads from it. */
	r = dma_buf(fd, METIS_DMA_TO_DEVICE, buf, 0, b.bytesused, h, 0, NULL);
	if (!r)
		r = dma_user(fd, METIS_DMA_FROM_DEVICE, card, b.bytesused, h, 0);
	TAP(r == 0 && !memcmp(cpu, card, b.bytesused), "card_reads_vivid_frame",
	    "r %d or the card saw other pixels", r);
	printf("@@NOTE vivid: %ux%u fourcc %.4s, %u bytes captured into a metis dma-buf\n",
	       f.fmt.pix.width, f.fmt.pix.height, (char *)&f.fmt.pix.pixelformat, b.bytesused);
	rb.count = 0;
	xioctl(v, VIDIOC_REQBUFS, &rb);
	munmap(map, len);
	close(buf);
	close(v);
	close(fd);
	return failed;
}

int main(int argc, char **argv)
{
	uint64_t h;
	int fd;

	if (argc > 1)
		dev_path = argv[1];
	if (argc > 3 && !strcmp(argv[2], "cycles"))
		return cycles(atoi(argv[3]));
	if (argc > 3 && !strcmp(argv[2], "hold"))
		return hold(argv[3]);
	if (argc > 3 && !strcmp(argv[2], "vivid"))
		return vivid(argv[3]);
	if (argc > 3 && !strcmp(argv[2], "sleep"))
		return across_sleep(argv[3]);
	fd = open(dev_path, O_RDWR);
	TAP(fd >= 0, "open_device", "%s", strerror(errno));
	if (fd < 0 || region(fd, 4 << 20, &h))
		return 1;
	test_export(fd, h);
	test_heap(fd, h);
	close(fd);
	return failed;
}
