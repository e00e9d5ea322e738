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
 *   dmabuf_test DEVICE cache         the card's attachment cache
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/sync_file.h>
#include <pthread.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

struct toggle_arg {
	void *page;
	int stop;
};

/* Flips the page between read-only and writable, as a racing mprotect() would. */
static void *toggler(void *p)
{
	struct toggle_arg *a = p;

	while (!__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST)) {
		mprotect(a->page, 4096, PROT_READ);
		usleep(50);
		mprotect(a->page, 4096, PROT_READ | PROT_WRITE);
		usleep(50);
	}
	return NULL;
}

/*
 * BUF_EXPORT whose answer can't be written (the argument's page turns
 * read-only while the buffer is made): EFAULT, and no fd is left behind in
 * the caller's table, where nobody would know its number (security review
 * L3). The argument is written through a second, always writable mapping of
 * the same memory.
 */
static void test_export_fault(int fd)
{
	int mfd = syscall(SYS_memfd_create, "arg", 0), before, after, efaults = 0, oks = 0;
	struct metis_buf_export *w = MAP_FAILED, *e = MAP_FAILED;
	struct toggle_arg a;
	pthread_t t;

	if (mfd >= 0 && ftruncate(mfd, 4096) == 0) {
		w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		e = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	}
	TAP(w != MAP_FAILED && e != MAP_FAILED, "export_fault_setup", "%s", strerror(errno));
	if (w == MAP_FAILED || e == MAP_FAILED)
		return;
	before = count_fds();
	a.page = e;
	a.stop = 0;
	pthread_create(&t, NULL, toggler, &a);
	for (int i = 0; i < 100; i++) {
		int r;

		*w = (struct metis_buf_export){ .size = sizeof(*w), .length = 4 << 20,
			.flags = METIS_BUF_READ | METIS_BUF_WRITE };
		r = xioctl(fd, METIS_IOCTL_BUF_EXPORT, e);
		if (r == 0) {
			oks++;
			close(w->fd);
		} else {
			efaults += r == -EFAULT;
		}
	}
	__atomic_store_n(&a.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	after = count_fds();
	printf("@@NOTE export with a racing mprotect: %d ok, %d EFAULT of 100\n", oks, efaults);
	TAP(efaults > 0, "export_answer_faulted", "no call met a read-only page");
	TAP(after == before, "export_fault_leaves_no_fd", "%d fds before, %d after", before, after);
	munmap(w, 4096);
	munmap(e, 4096);
	close(mfd);
}

/* sw_sync (drivers/dma-buf/sw_sync.c, in debugfs): fences userspace signals, as a GPU would. */
struct sw_sync_create_fence_data {
	uint32_t value;
	char name[32];
	int32_t fence;
};
#define SW_SYNC_IOC_CREATE_FENCE _IOWR('W', 0, struct sw_sync_create_fence_data)
#define SW_SYNC_IOC_INC _IOW('W', 1, uint32_t)

static int dma_buf_timeout(int fd, uint32_t flags, int buf, uint64_t len, uint64_t h,
			   uint32_t timeout_ms)
{
	struct metis_dma_buf d = {
		.size = sizeof(d), .flags = flags, .fd = buf, .length = len, .handle = h,
		.timeout_ms = timeout_ms,
	};

	return xioctl(fd, METIS_IOCTL_DMA_BUF, &d);
}

/* The card only reads through an fd open for reading and writes through one open for writing. */
static void test_access_mode(int fd, uint64_t h)
{
	uint64_t len = 4096;
	int ro = export_buf(fd, METIS_BUF_READ, &len), wo = export_buf(fd, METIS_BUF_WRITE, &len);

	TAP(ro >= 0 && dma_buf(fd, METIS_DMA_FROM_DEVICE, ro, 0, 4096, h, 0, NULL) == -EBADF,
	    "readonly_fd_not_written", "fd %d accepted", ro);
	TAP(ro >= 0 && dma_buf(fd, METIS_DMA_TO_DEVICE, ro, 0, 4096, h, 0, NULL) == 0,
	    "readonly_fd_read", "fd %d refused", ro);
	TAP(wo >= 0 && dma_buf(fd, METIS_DMA_TO_DEVICE, wo, 0, 4096, h, 0, NULL) == -EBADF,
	    "writeonly_fd_not_read", "fd %d accepted", wo);
	TAP(wo >= 0 && dma_buf(fd, METIS_DMA_FROM_DEVICE, wo, 0, 4096, h, 0, NULL) == 0,
	    "writeonly_fd_written", "fd %d refused", wo);
	close(ro);
	close(wo);
}

struct inc_arg {
	int timeline;
	int delay_ms;
};

static void *inc_later(void *p)
{
	struct inc_arg *a = p;
	uint32_t one = 1;

	usleep(a->delay_ms * 1000);
	ioctl(a->timeline, SW_SYNC_IOC_INC, &one);
	return NULL;
}

struct sync_arg {
	int buf;
	int r;
	int done;
};

static void *sync_start(void *p)
{
	struct sync_arg *a = p;

	/* RW: the exporter must sync the card's mapping in the mapping's own direction (L7). */
	a->r = cpu_sync(a->buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
	__atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * Implicit sync (security review L1): the card waits for the fences of a
 * buffer's other users as its access requires, and publishes its own, which
 * they (and DMA_BUF_IOCTL_SYNC) wait for.
 */
static void test_implicit_sync(int fd)
{
	enum { LEN = 32 << 20 };
	uint64_t len = LEN, job = 0, h;
	int tl = open("/sys/kernel/debug/sync/sw_sync", O_RDWR), buf, r, bad = 0;
	struct sw_sync_create_fence_data f = { .value = 1, .name = "other-user" };
	struct dma_buf_import_sync_file imp = { .flags = DMA_BUF_SYNC_WRITE };
	struct dma_buf_export_sync_file ex = { .flags = DMA_BUF_SYNC_READ };
	struct inc_arg a;
	pthread_t t;
	double t0;

	TAP(tl >= 0, "sw_sync_timeline", "%s", strerror(errno));
	buf = export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len);
	if (tl < 0 || buf < 0 || mem_alloc(fd, LEN, &h))
		return;
	r = xioctl(tl, SW_SYNC_IOC_CREATE_FENCE, &f);
	imp.fd = f.fence;
	TAP(r == 0 && xioctl(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &imp) == 0,
	    "other_user_write_fence", "r %d: %s", r, strerror(errno));
	r = dma_buf_timeout(fd, METIS_DMA_TO_DEVICE, buf, len, h, 300);
	TAP(r == -ETIMEDOUT, "card_read_waits_for_writer", "got %d", r);
	r = dma_buf_timeout(fd, METIS_DMA_FROM_DEVICE, buf, len, h, 300);
	TAP(r == -ETIMEDOUT, "card_write_waits_for_writer", "got %d", r);
	/* The other user finishes 300 ms later: the card's read proceeds only then. */
	a.timeline = tl;
	a.delay_ms = 300;
	t0 = mono_ms();
	pthread_create(&t, NULL, inc_later, &a);
	r = dma_buf_timeout(fd, METIS_DMA_TO_DEVICE, buf, len, h, 10000);
	pthread_join(t, NULL);
	TAP(r == 0 && mono_ms() - t0 >= 250, "card_read_after_writer_done", "r %d after %.0f ms", r,
	    mono_ms() - t0);
	close(f.fence);

	/* The card's write, held on the card, is a fence readers of the buffer wait for. */
	for (int ch = 0; ch < 4; ch++)
		bad |= card_ctl("inject data-stall wr %d 60000", ch) != 0;
	TAP(!bad, "arm_data_stall", "host request failed");
	r = dma_buf(fd, METIS_DMA_FROM_DEVICE | METIS_DMA_ASYNC, buf, 0, len, h, 0, &job);
	ex.fd = -1;
	if (!r)
		r = xioctl(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &ex);
	{
		struct pollfd p = { .fd = ex.fd, .events = POLLIN };

		struct sync_arg sa = { .buf = buf };
		pthread_t ts;

		TAP(r == 0 && poll(&p, 1, 0) == 0, "card_write_fence_pending", "r %d", r);
		/* A CPU reader's DMA_BUF_IOCTL_SYNC waits for the card's write too. */
		pthread_create(&ts, NULL, sync_start, &sa);
		usleep(300 * 1000);
		TAP(!__atomic_load_n(&sa.done, __ATOMIC_SEQ_CST), "cpu_sync_waits_for_card_write",
		    "returned %d while the card still wrote", sa.r);
		for (int ch = 0; ch < 4; ch++)
			card_ctl("inject link-release wr %d", ch);
		card_ctl("clear");
		{
			struct metis_wait w = { .size = sizeof(w), .job_id = job };

			r = job ? xioctl(fd, METIS_IOCTL_WAIT, &w) : -1;
			TAP(r == 0 && w.status == 0, "card_write_done", "r %d status %d", r, w.status);
		}
		TAP(ex.fd >= 0 && poll(&p, 1, 5000) == 1, "card_write_fence_signalled", "not signalled");
		pthread_join(ts, NULL);
		TAP(sa.r == 0 && cpu_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW) == 0,
		    "cpu_sync_after_card_write", "start %d", sa.r);
	}
	if (ex.fd >= 0)
		close(ex.fd);
	close(buf);
	close(tl);
	{
		struct metis_mem_free mf = { .size = sizeof(mf), .handle = h };

		TAP(xioctl(fd, METIS_IOCTL_MEM_FREE, &mf) == 0, "sync_region_freed", "busy");
	}
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

/*
 * The card keeps the dma-bufs a file's jobs used attached and mapped (16 per
 * file, the least recently used evicted): 20 buffers round-tripped in turn,
 * every byte checked, then the first ones again, evicted by then and attached
 * anew, and one whose fd was closed after its jobs (the cache holds the buffer,
 * not the fd: a new fd of another buffer must not reach it).
 */
static int cache_suite(void)
{
	enum { N = 20 };
	int fd = open(dev_path, O_RDWR), bufs[N], i;
	uint8_t *maps[N];
	uint64_t h, len = 8192;
	char kind[32];

	TAP(fd >= 0 && mem_alloc(fd, 1 << 20, &h) == 0, "cache_setup", "%s", strerror(errno));
	if (fd < 0)
		return 1;
	for (i = 0; i < N; i++) {
		bufs[i] = export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len);
		maps[i] = bufs[i] >= 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
					      bufs[i], 0) : MAP_FAILED;
		if (maps[i] == MAP_FAILED) {
			TAP(0, "cache_export", "buffer %d: %s", i, strerror(errno));
			return 1;
		}
	}
	for (i = 0; i < N; i++) {
		snprintf(kind, sizeof(kind), "cache%d", i);
		round_trip(fd, kind, bufs[i], maps[i], len, h, 100 + i);
	}
	for (i = 0; i < 2; i++) {
		snprintf(kind, sizeof(kind), "cache%d_again", i);
		round_trip(fd, kind, bufs[i], maps[i], len, h, 200 + i);
	}
	/* The last buffer's fd goes; a new buffer may get its number but not its mapping. */
	munmap(maps[N - 1], len);
	close(bufs[N - 1]);
	bufs[N - 1] = export_buf(fd, METIS_BUF_READ | METIS_BUF_WRITE, &len);
	maps[N - 1] = bufs[N - 1] >= 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
					      bufs[N - 1], 0) : MAP_FAILED;
	TAP(maps[N - 1] != MAP_FAILED, "cache_new_buffer", "%s", strerror(errno));
	if (maps[N - 1] != MAP_FAILED)
		round_trip(fd, "cache_new_buffer_same_fd", bufs[N - 1], maps[N - 1], len, h, 300);
	for (i = 0; i < N; i++) {
		if (maps[i] != MAP_FAILED)
			munmap(maps[i], len);
		close(bufs[i]);
	}
	close(fd);
	return failed;
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
	TAP(a >= 0 && b >= 0 && mem_alloc(fd, len, &h) == 0, "sleep_setup", "export failed");
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
	TAP(buf >= 0 && mem_alloc(fd, len, &h) == 0, "vivid_export", "%d", buf);
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
	if (argc > 2 && !strcmp(argv[2], "cache"))
		return cache_suite();
	if (argc > 3 && !strcmp(argv[2], "hold"))
		return hold(argv[3]);
	if (argc > 3 && !strcmp(argv[2], "vivid"))
		return vivid(argv[3]);
	if (argc > 3 && !strcmp(argv[2], "sleep"))
		return across_sleep(argv[3]);
	fd = open(dev_path, O_RDWR);
	TAP(fd >= 0, "open_device", "%s", strerror(errno));
	if (fd < 0 || mem_alloc(fd, 4 << 20, &h))
		return 1;
	test_export(fd, h);
	test_access_mode(fd, h);
	test_export_fault(fd);
	test_implicit_sync(fd);
	test_heap(fd, h);
	close(fd);
	return failed;
}
