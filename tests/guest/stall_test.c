// SPDX-License-Identifier: GPL-2.0
/*
 * Page faults that never end (security review M4, L5): userfaultfd holds a
 * fault for as long as this program wants, as a FUSE daemon that never
 * answers would. While a call of one thread is stuck in such a fault, in a
 * pin of its buffer or in the copy of its answer to user memory, the card
 * must stay usable: a reset and an unbind complete, and another job of the
 * same file completes and is reaped. When the fault is let go, the stuck
 * call finishes.
 *
 *   stall_test /dev/metisN
 *
 * Needs CONFIG_USERFAULTFD (write-protect mode for the copies to user).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../uapi/linux/metis.h"
#include "guest.h"

enum { PAGE = 4096, LEN = 256 * PAGE };

/* How long a call that must not wait for the stuck fault may take before it counts as stuck. */
#define STUCK_S 30

static int uffd = -1;

static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static int uffd_register(void *p, size_t len, uint64_t mode)
{
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = len }, .mode = mode,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &r) ? -errno : 0;
}

static int write_protect(void *p, size_t len, int on)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

/* Waits for the next fault report; 0 with its address, or -ETIMEDOUT. */
static int next_fault(uint64_t *addr, int *wp)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	struct uffd_msg m;

	if (poll(&p, 1, STUCK_S * 1000) != 1)
		return -ETIMEDOUT;
	if (read(uffd, &m, sizeof(m)) != sizeof(m) || m.event != UFFD_EVENT_PAGEFAULT)
		return -EIO;
	*addr = m.arg.pagefault.address;
	*wp = !!(m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
	return 0;
}

/* Fills the missing pages of [p, p + len) from `src`, waking whoever waits for them. */
static int fill_missing(void *p, const void *src, size_t len)
{
	struct uffdio_copy c = {
		.dst = (uintptr_t)p, .src = (uintptr_t)src, .len = len,
	};

	return ioctl(uffd, UFFDIO_COPY, &c) && errno != EEXIST ? -errno : 0;
}

/* A call run in a thread of its own, so that the test can tell a stuck one. */
struct call {
	pthread_t t;
	int (*fn)(struct call *c);
	int fd;
	void *arg;
	uint64_t handle, id;
	int result, status;
	double took;
};

static void *call_thread(void *p)
{
	struct call *c = p;
	double t0 = mono_ms();

	c->result = c->fn(c);
	c->took = mono_ms() - t0;
	return NULL;
}

static void start(struct call *c)
{
	pthread_create(&c->t, NULL, call_thread, c);
}

/* Joins within STUCK_S: 0, or -ETIMEDOUT for a call still stuck (joined later by finish()). */
static int join_within(struct call *c)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += STUCK_S;
	return pthread_timedjoin_np(c->t, NULL, &dl) ? -ETIMEDOUT : 0;
}

static int do_dma(struct call *c)
{
	struct metis_dma d = {
		.size = sizeof(d), .flags = METIS_DMA_TO_DEVICE, .user_addr = (uintptr_t)c->arg,
		.length = LEN, .handle = c->handle,
	};

	return xioctl(c->fd, METIS_IOCTL_DMA, &d);
}

static int do_reset(struct call *c)
{
	struct metis_reset r = { .size = sizeof(r) };

	return xioctl(c->fd, METIS_IOCTL_RESET, &r);
}

/* The argument lives in c->arg: a write-protected page. */
static int do_alloc(struct call *c)
{
	struct metis_mem_alloc *a = c->arg;

	return xioctl(c->fd, METIS_IOCTL_MEM_ALLOC, a);
}

static int do_wait(struct call *c)
{
	struct metis_wait *w = c->arg;
	int r = xioctl(c->fd, METIS_IOCTL_WAIT, w);

	c->status = w->status;
	return r;
}

static char bdf[256];

static int do_unbind(struct call *c)
{
	(void)c;
	return write_file("/sys/bus/pci/drivers/metis/unbind", bdf);
}

static int card_bdf(void)
{
	char path[128], link[256], *b;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/misc/%s/device", strrchr(dev_path, '/') + 1);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -1;
	link[n] = 0;
	b = strrchr(link, '/');
	snprintf(bdf, sizeof(bdf), "%s", b ? b + 1 : link);
	return 0;
}

/*
 * A DMA whose buffer's first page is missing and held: the pin waits in the
 * fault. Meanwhile a reset (`other` = do_reset) or an unbind (do_unbind)
 * must complete. Let go, the DMA finishes: 0, or the error of what happened
 * to the card meanwhile.
 */
static void stalled_pin(int fd, const uint8_t *src, int (*other)(struct call *c), const char *name)
{
	uint8_t *buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct call dma = { .fn = do_dma, .fd = fd, .arg = buf }, oth = { .fn = other, .fd = fd };
	char what[64];
	uint64_t addr;
	int wp, r;

	if (buf == MAP_FAILED || mem_alloc(fd, LEN, &dma.handle) ||
	    uffd_register(buf, LEN, UFFDIO_REGISTER_MODE_MISSING)) {
		TAP(0, name, "setup: %s", strerror(errno));
		return;
	}
	start(&dma);
	r = next_fault(&addr, &wp);
	snprintf(what, sizeof(what), "%s_pin_held", name);
	TAP(r == 0 && addr >= (uintptr_t)buf && addr < (uintptr_t)buf + LEN, what,
	    "no fault in the buffer (%d)", r);
	start(&oth);
	r = join_within(&oth);
	snprintf(what, sizeof(what), "%s_during_stalled_pin", name);
	TAP(r == 0 && oth.result == 0, what, "%s", r ? "stuck behind the held fault" :
	    strerror(-oth.result));
	if (r == 0)
		printf("@@NOTE stall: %s took %.0f ms while a pin was held\n", name, oth.took);
	fill_missing(buf, src, LEN);
	if (r)
		pthread_join(oth.t, NULL);
	pthread_join(dma.t, NULL);
	snprintf(what, sizeof(what), "%s_pin_let_go", name);
	/* The region the DMA names was lost to the reset, or the card went with the unbind. */
	TAP(dma.result == 0 || dma.result == -ESTALE || dma.result == -ENODEV, what,
	    "DMA ended with %s", strerror(-dma.result));
	munmap(buf, LEN);
}

/* A page holding `init`, whose reads work and whose first write waits in a held fault. */
static void *wp_page(const void *init, size_t n)
{
	uint8_t *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, PAGE);
	memcpy(p, init, n);
	if (uffd_register(p, PAGE, UFFDIO_REGISTER_MODE_WP) || write_protect(p, PAGE, 1)) {
		munmap(p, PAGE);
		return NULL;
	}
	return p;
}

/* MEM_ALLOC's answer held in its copy to user (M4): a reset completes meanwhile. */
static void stalled_alloc_answer(int fd)
{
	struct metis_mem_alloc init = { .size = sizeof(init), .length = 1 << 20 };
	struct metis_mem_alloc *a = wp_page(&init, sizeof(init));
	struct call alloc = { .fn = do_alloc, .fd = fd, .arg = a };
	struct call reset = { .fn = do_reset, .fd = fd };
	uint64_t addr;
	int wp, r;

	if (!a) {
		TAP(0, "alloc_answer_held", "no write-protected page: %s", strerror(errno));
		return;
	}
	start(&alloc);
	r = next_fault(&addr, &wp);
	TAP(r == 0 && wp && addr >> 12 == (uintptr_t)a >> 12, "alloc_answer_held",
	    "no write fault on the argument (%d)", r);
	start(&reset);
	r = join_within(&reset);
	TAP(r == 0 && reset.result == 0, "reset_during_held_answer", "%s",
	    r ? "stuck behind the held copy" : strerror(-reset.result));
	write_protect(a, PAGE, 0);
	if (r)
		pthread_join(reset.t, NULL);
	pthread_join(alloc.t, NULL);
	TAP(alloc.result == 0 && a->handle != 0, "alloc_answer_let_go", "MEM_ALLOC ended with %s",
	    strerror(-alloc.result));
	munmap(a, PAGE);
}

/*
 * WAIT's answer held in its copy to user (L5): the file's other jobs still
 * complete, poll() sees them, and another WAIT reaps one.
 */
static void stalled_wait_answer(int fd, uint8_t *src)
{
	struct metis_wait init = { .size = sizeof(init), .timeout_ms = STUCK_S * 1000 };
	struct metis_wait *w;
	struct call wait = { .fn = do_wait, .fd = fd };
	struct metis_wait w2 = { .size = sizeof(w2), .timeout_ms = STUCK_S * 1000 };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t id1, id2;
	uint64_t h, addr;
	int wp, r;

	if (mem_alloc(fd, LEN, &h)) {
		TAP(0, "wait_answer_held", "setup: %s", strerror(errno));
		return;
	}
	id1 = dma_async(fd, METIS_DMA_TO_DEVICE, src, PAGE, h, 0);
	init.job_id = (uint64_t)id1;
	w = wp_page(&init, sizeof(init));
	if (!w) {
		TAP(0, "wait_answer_held", "no write-protected page: %s", strerror(errno));
		return;
	}
	wait.arg = w;
	start(&wait);
	r = next_fault(&addr, &wp);
	TAP(id1 > 0 && r == 0 && wp, "wait_answer_held", "job %lld, no write fault (%d)",
	    (long long)id1, r);
	id2 = dma_async(fd, METIS_DMA_TO_DEVICE, src, PAGE, h, 0);
	w2.job_id = (uint64_t)id2;
	r = id2 > 0 ? poll(&p, 1, STUCK_S * 1000) : -1;
	TAP(r == 1 && (p.revents & POLLIN), "poll_during_held_answer",
	    "job %lld: poll %d revents %#x", (long long)id2, r, p.revents);
	r = xioctl(fd, METIS_IOCTL_WAIT, &w2);
	TAP(r == 0 && w2.status == 0, "wait_during_held_answer", "WAIT %s, status %d",
	    strerror(-r), w2.status);
	write_protect(w, PAGE, 0);
	pthread_join(wait.t, NULL);
	TAP(wait.result == 0 && wait.status == 0, "wait_answer_let_go", "WAIT %s, status %d",
	    strerror(-wait.result), wait.status);
	munmap(w, PAGE);
}

int main(int argc, char **argv)
{
	uint8_t *src = malloc(LEN);
	int fd;

	if (argc > 1)
		dev_path = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	uffd = uffd_open();
	if (uffd < 0) {
		TAP(0, "userfaultfd", "%s: the test kernel needs CONFIG_USERFAULTFD", strerror(-uffd));
		return 1;
	}
	fd = open(dev_path, O_RDWR);
	TAP(fd >= 0 && src && card_bdf() == 0, "open_device", "%s", strerror(errno));
	if (fd < 0 || !src)
		return 1;
	fill(src, LEN, 7);
	stalled_pin(fd, src, do_reset, "reset");
	stalled_alloc_answer(fd);
	stalled_wait_answer(fd, src);
	/* Last: the unbind takes the card away from this file. */
	stalled_pin(fd, src, do_unbind, "unbind");
	close(fd);
	TAP(write_file("/sys/bus/pci/drivers/metis/bind", bdf) == 0, "rebind", "%s",
	    strerror(errno));
	return failed;
}
