// SPDX-License-Identifier: GPL-2.0
/*
 * The vendor-ABI node (metis.ko vendor_abi=1.4.16|1.6.2), from the vendor
 * driver's ABI as ../shared/docs/vendor-driver-facts.md §2 describes it.
 *
 *   vendor_test NODE LEVEL BDF      the commands offered, the BAR2 mapping, and the
 *                                   vendor bugs each turned into a clean error
 *   vendor_test NODE unbind BDF LEVEL  the card unbound under an open node, and bound again
 *   vendor_test NODE fuzz SEED COUNT LEVEL [--churn DONE]  COUNT seeded random calls from 3
 *                                   processes (with --churn, on until the file DONE exists,
 *                                   while resets and rebinds go on: ENODEV allowed): every one
 *                                   answers with a result the ABI allows, no process dies or
 *                                   hangs, and the node works after
 *   vendor_test NODE runtime LEVEL [LOSE...]  the vendor runtime's sequence on a
 *                                   runtime-owned card: firmware uploaded and booted through
 *                                   the node, DYNMEM_LOAD, contexts, DMA with user memory and
 *                                   dma-heap buffers; after each LOSE (a shell command that
 *                                   makes the card lose its firmware) told by poll, all of it
 *                                   again
 *
 * Metis has four AI cores; the commands here touch no hardware, so each run
 * starts from a card nobody else holds contexts or the message lock on.
 */
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../../uapi/linux/metis.h"
#include "guest.h"

/* The vendor's command numbers (type 'U', LP64), as its runtime issues them. */
#define V_MSG_LOCK		0xC0045500u	/* argument by value: non-zero lock, 0 unlock */
#define V_CTX_ALLOC		0xC0045501u	/* int *: core count; returns the first core */
#define V_CTX_FREE		0xC0045502u
#define V_GET_DEV_PROPERTY	0xC0085503u	/* u64 *: id in, value out */
#define V_DMA_ATTACH		0xC0045505u	/* int *: a dma-buf fd */
#define V_DMA_DETACH		0xC0045506u
#define V_DMA_XFER		0xC0085507u	/* struct dmabuf_xfer * */
#define V_ASYNC_STATUS		0xC0085508u	/* returns the async state */
#define V_SYNC_STATUS		0xC0085509u	/* struct dmabuf_xfer *: flags must hold SYNC */
#define V_USR_DMA_XFER		0xC008550Au	/* struct dma_xfer * */
#define V_MSI			0xC008550Bu	/* struct msi_info *: wait for a source */
#define V_CLEAN_MSI		0xC008550Cu
#define V_MSI_ATTACH		0xC004550Du	/* int *: poll() counts the source */
#define V_CLEAR_POLL_EVENT	0xC004550Fu
#define V_GET_CTX_AICORE_MASK	0xC008550Eu	/* u64 * out */
#define V_GET_RESOURCE_INFO	0x80405510u	/* struct res_info * out */
#define V_GET_PCIE_WINDOWS	0x80805511u	/* struct mem_window * out */
#define V_DMA_P2P_XFER		0xC0205512u
#define V_DYNMEM_LOAD		0x00005513u
#define V_FWTRACE_GET_STATS	0x80185516u	/* 1.5.6 and later */
#define V_GET_DMA_STATS		0x82005520u	/* struct dma_stats * out */
#define V_GET_USER_PA		0xC0105532u	/* 1.6.2 only */

struct dma_xfer {
	uint64_t phy, virt, size;
	uint32_t offset;
	int32_t flags;		/* READ 1: device to host; WRITE 2: host to device */
};

struct dmabuf_xfer {
	uint64_t phy, size;
	uint32_t offset;
	int32_t handle;
	int32_t flags;		/* READ 1, WRITE 2, SYNC 4, ASYNC 8 */
	int32_t channel;	/* -1: any */
};
enum { X_READ = 1, X_WRITE = 2, X_SYNC = 4, X_ASYNC = 8 };
enum { A_DONE = 1, A_FAIL = 2, A_TIMEOUT = 3, A_PENDING = 4 };

struct msi_info {
	int32_t num;
	int32_t timeout;	/* seconds; 0: no limit */
};

struct res_info {
	uint64_t sysmem_base, sysmem_size, l2_base, l2_size, ddr_base[2], ddr_size[2];
};

struct mem_window {
	uint64_t np_base, np_size, p_base, p_size, base_res[6], size_res[6];
};

struct chan_stats {
	int32_t count, num_xfer, num_err;
	uint64_t bytes_xfer;
	int32_t max_sgt;
	uint64_t max_duration_us, duration_us;
	uint64_t size;
	uint32_t speed_mbps;
};

struct dma_stats {
	struct chan_stats rd[4], wr[4];
};

_Static_assert(sizeof(struct dma_xfer) == 32, "dma_xfer");
_Static_assert(sizeof(struct dmabuf_xfer) == 32, "dmabuf_xfer");
_Static_assert(sizeof(struct res_info) == 64, "dev_res_info");
_Static_assert(sizeof(struct mem_window) == 128, "dev_mem_window");
_Static_assert(sizeof(struct chan_stats) == 64, "dma_channel_stats");
_Static_assert(sizeof(struct dma_stats) == 512, "dma_stats");

/* Each level's run names its checks apart: NAME_v1.4.16. */
static char level_tag[16] = "v";

static const char *tn(const char *name)
{
	static char b[8][96];
	static int i;

	i = (i + 1) % 8;
	snprintf(b[i], sizeof(b[i]), "%s_%s", name, level_tag);
	return b[i];
}

#define VTAP(cond, name, ...) TAP(cond, tn(name), __VA_ARGS__)

static int vopen(const char *node)
{
	return open(node, O_RDWR | O_CLOEXEC);
}

/* An ioctl with its argument by value: the result, or -errno. */
static long vcall(int fd, unsigned long req, unsigned long arg)
{
	long r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

static long ctx_alloc(int fd, int n)
{
	return vcall(fd, V_CTX_ALLOC, (unsigned long)&n);
}

static uint64_t core_mask(int fd)
{
	uint64_t m = ~0ull;

	return vcall(fd, V_GET_CTX_AICORE_MASK, (unsigned long)&m) ? ~0ull : m;
}

static long property(int fd, uint64_t id, uint64_t *v)
{
	*v = id;
	return vcall(fd, V_GET_DEV_PROPERTY, (unsigned long)v);
}

static int readable_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static long usr_xfer(int fd, int flags, uint64_t phy, void *buf, uint64_t size)
{
	struct dma_xfer x = { .phy = phy, .virt = (uintptr_t)buf, .size = size, .flags = flags };

	return vcall(fd, V_USR_DMA_XFER, (unsigned long)&x);
}

/*
 * USR_DMA_XFER: to and from device addresses the caller names, inside the card memory
 * this driver hands out and off every /dev/metis0 region.
 */
static void dmabuf_dma(int fd, uint64_t dev, int v162);

static void usr_dma(int fd, int v162)
{
	enum { LEN = 65536 + 13 };
	int own = open(dev_path, O_RDWR);
	uint8_t *src = malloc(LEN), *back = malloc(LEN);
	uint8_t *ro = mmap(NULL, LEN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct metis_mem_alloc a = { .size = sizeof(a), .length = 1 << 20 };
	uint64_t h, dev;
	long r;

	VTAP(own >= 0 && src && back && ro != MAP_FAILED && !xioctl(own, METIS_IOCTL_MEM_ALLOC, &a),
	     "vendor_usr_setup", "%s", strerror(errno));
	if (own < 0 || !src || !back || ro == MAP_FAILED)
		return;
	/* Where a region goes: first fit, so the next one of this size goes there too. */
	h = a.handle;
	dev = a.dev_addr;
	fill(src, LEN, 61);
	/* A /dev/metis0 region is no vendor transfer's. */
	VTAP(usr_xfer(fd, 2, dev + 100, src, LEN) == -EBUSY, "vendor_usr_region_held", "not EBUSY");
	mem_free(own, h);
	r = usr_xfer(fd, 2, dev + 100, src, LEN);
	VTAP(r == 0, "vendor_usr_to_device", "%s", strerror((int)-r));
	memset(back, 0, LEN);
	r = usr_xfer(fd, 1, dev + 100, back, LEN);
	VTAP(r == 0 && !memcmp(src, back, LEN), "vendor_usr_from_device", "r %ld or data differs", r);
	/* Each transfer that ran is an event for the file's poll(), as the vendor's counts them;
	 * the one refused on the region above never ran. */
	VTAP(readable_in(fd, 0) && vcall(fd, V_CLEAR_POLL_EVENT, 0) == 1 &&
	     vcall(fd, V_CLEAR_POLL_EVENT, 0) == 1 && vcall(fd, V_CLEAR_POLL_EVENT, 0) == 0 &&
	     !readable_in(fd, 0), "vendor_usr_transfers_are_poll_events", "not two events");
	/* The range went back with the transfer: a region goes there again. */
	a.dev_addr = 0;
	VTAP(!xioctl(own, METIS_IOCTL_MEM_ALLOC, &a) && a.dev_addr == dev,
	     "vendor_usr_range_given_back", "region at %#llx, not %#llx",
	     (unsigned long long)a.dev_addr, (unsigned long long)dev);
	mem_free(own, a.handle);
	/* Pinned for the real direction: to the card from read-only memory works (the
	 * vendor's pins for writing and fails, B7); from the card into it does not. */
	VTAP(usr_xfer(fd, 2, dev, ro, 4096) == 0, "vendor_usr_from_read_only_memory", "refused");
	VTAP(usr_xfer(fd, 1, dev, ro, 4096) == -EFAULT, "vendor_usr_into_read_only_memory",
	     "not EFAULT");
	/* Arguments (B5: neither direction). */
	VTAP(usr_xfer(fd, 0, dev, src, 64) == -EINVAL && usr_xfer(fd, 3, dev, src, 64) == -EINVAL &&
	     usr_xfer(fd, 4, dev, src, 64) == -EINVAL, "vendor_usr_direction_checked", "accepted");
	VTAP(usr_xfer(fd, 2, dev, src, 0) == -EINVAL, "vendor_usr_zero_size", "accepted");
	VTAP(usr_xfer(fd, 2, 0, src, 64) == -EINVAL && usr_xfer(fd, 2, ~0ull - 8, src, 64) == -EINVAL,
	     "vendor_usr_outside_card_memory", "accepted");
	VTAP(usr_xfer(fd, 2, dev, (void *)4096, 64) == -EFAULT, "vendor_usr_unmapped_buffer",
	     "not EFAULT");
	VTAP(vcall(fd, V_USR_DMA_XFER, 16) == -EFAULT, "vendor_usr_bad_pointer", "not EFAULT");
	/* The same device memory through a dma-buf; a region holds it meanwhile for nobody. */
	a.length = 2 << 20;
	if (!xioctl(own, METIS_IOCTL_MEM_ALLOC, &a)) {
		uint64_t at = a.dev_addr;

		mem_free(own, a.handle);
		dmabuf_dma(fd, at, v162);
	}
	munmap(ro, LEN);
	free(src);
	free(back);
	close(own);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A system-heap dma-buf of `len` bytes, mapped: its fd, or -1. */
static int heap_buf(size_t len, uint8_t **map)
{
	struct dma_heap_allocation_data a = { .len = len, .fd_flags = O_RDWR | O_CLOEXEC };
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);

	if (heap < 0)
		return -1;
	if (xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &a)) {
		close(heap);
		return -1;
	}
	close(heap);
	*map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, (int)a.fd, 0);
	if (*map == MAP_FAILED) {
		close((int)a.fd);
		return -1;
	}
	return (int)a.fd;
}

/* The CPU's access to a dma-buf begins or ends. */
static void cpu_access(int buf, int end)
{
	struct dma_buf_sync s = {
		.flags = (end ? DMA_BUF_SYNC_END : DMA_BUF_SYNC_START) | DMA_BUF_SYNC_RW,
	};

	xioctl(buf, DMA_BUF_IOCTL_SYNC, &s);
}

static long dxfer(int fd, int flags, uint64_t phy, uint32_t offset, uint64_t size, int channel)
{
	struct dmabuf_xfer x = {
		.phy = phy, .size = size, .offset = offset, .flags = flags, .channel = channel,
	};

	return vcall(fd, V_DMA_XFER, (unsigned long)&x);
}

static long sync_status(int fd, int flags)
{
	struct dmabuf_xfer x = { .flags = flags };

	return vcall(fd, V_SYNC_STATUS, (unsigned long)&x);
}

static long attach(int fd, int buf)
{
	return vcall(fd, V_DMA_ATTACH, (unsigned long)&buf);
}

/*
 * How many devices the dma-buf `buf` is attached to, from the dma-buf core's debugfs
 * listing (a line per buffer with its inode, then "Total N devices attached"); -1 if
 * the buffer is not listed.
 */
static int attached_devices(int buf)
{
	FILE *f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "r");
	struct stat sb;
	char line[256], ino[32];
	int found = 0, n = -1;

	if (!f || fstat(buf, &sb)) {
		if (f)
			fclose(f);
		return -1;
	}
	snprintf(ino, sizeof(ino), "%08lu", (unsigned long)sb.st_ino);
	while (fgets(line, sizeof(line), f)) {
		if (!found) {
			char *tok[8];
			int k = 0;

			for (char *t = strtok(line, " \t\n"); t && k < 8; t = strtok(NULL, " \t\n"))
				tok[k++] = t;
			/* size flags mode count exp_name ino name */
			found = k >= 6 && !strcmp(tok[5], ino);
		} else if (sscanf(line, "Total %d devices attached", &n) == 1) {
			break;
		}
	}
	fclose(f);
	return n;
}

/* Takes every event poll() counts; how many there were. */
static int drain_events(int fd)
{
	int n = 0;

	while (vcall(fd, V_CLEAR_POLL_EVENT, 0) == 1)
		n++;
	return n;
}

/* Holds (or lets go) the next data element of every read channel (host to card). */
static int hold_reads(int on)
{
	int bad = 0;

	for (int ch = 0; ch < 4; ch++)
		bad |= on ? card_ctl("inject data-stall rd %d 60000", ch) :
			    card_ctl("inject link-release rd %d", ch);
	if (!on)
		card_ctl("clear");
	return bad;
}

/*
 * DMA_ATTACH, DMA_XFER and the status commands with a system-heap dma-buf, to and from
 * `dev` (2 MiB of card memory nobody holds): data checked, every argument checked, one
 * async transfer per file.
 */
static void dmabuf_dma(int fd, uint64_t dev, int v162)
{
	enum { LEN = 2 << 20, N = 65536 + 13 };
	uint8_t *m = NULL, *m2 = NULL;
	int buf = heap_buf(LEN, &m), buf2 = heap_buf(LEN, &m2), bad;
	long r;

	VTAP(buf >= 0 && buf2 >= 0, "vendor_dmabuf_heap", "no system heap: %s", strerror(errno));
	if (buf < 0 || buf2 < 0)
		return;
	drain_events(fd);
	VTAP(dxfer(fd, X_WRITE | X_SYNC, dev, 0, 64, -1) == -EINVAL, "vendor_xfer_unattached",
	     "not EINVAL");
	VTAP(vcall(fd, V_ASYNC_STATUS, 0) == 0 && sync_status(fd, X_SYNC) == -EINVAL,
	     "vendor_xfer_no_state_yet", "a state before any transfer");
	VTAP(attach(fd, -1) == -EBADF && attach(fd, fd) == -EINVAL &&
	     vcall(fd, V_DMA_ATTACH, 16) == -EFAULT, "vendor_attach_checked", "accepted");
	/* Nothing attached: detaching is fine (the vendor's puts NULL pointers). */
	VTAP(vcall(fd, V_DMA_DETACH, 0) == 0, "vendor_detach_nothing", "refused");
	/* Attaching twice replaces the first, which the card lets go of (the vendor's leaks
	 * the buffer and its mapping, B9). */
	r = attach(fd, buf2);
	VTAP(r == 0 && dxfer(fd, X_WRITE | X_SYNC, dev, 0, 4096, -1) == 0 &&
	     attached_devices(buf2) == 1, "vendor_attach_maps", "r %ld, %d attached", r,
	     attached_devices(buf2));
	r = attach(fd, buf);
	VTAP(r == 0 && attached_devices(buf2) == 0, "vendor_attach_twice",
	     "r %ld, the first still attached to %d", r, attached_devices(buf2));
	drain_events(fd);
	cpu_access(buf, 0);
	fill(m, LEN, 71);
	memset(m + LEN / 2, 0, LEN / 2);
	cpu_access(buf, 1);
	r = dxfer(fd, X_WRITE | X_SYNC, dev, 4096, N, -1);
	VTAP(r == 0, "vendor_xfer_sync_to_device", "%s", strerror((int)-r));
	r = dxfer(fd, X_READ | X_SYNC, dev, LEN / 2 + 1, N, 3);
	cpu_access(buf, 0);
	VTAP(r == 0 && !memcmp(m + 4096, m + LEN / 2 + 1, N), "vendor_xfer_sync_from_device",
	     "r %ld or data differs", r);
	cpu_access(buf, 1);
	/* A synchronous success sets no async state; each transfer is an event for poll(). */
	VTAP(vcall(fd, V_ASYNC_STATUS, 0) == 0 && sync_status(fd, X_SYNC) == -EINVAL,
	     "vendor_xfer_sync_sets_no_state", "a state");
	VTAP(drain_events(fd) == 2, "vendor_xfer_poll_events", "not two events");
	/* Arguments. */
	bad = 0;
	for (int f = 0; f < 16; f++) {
		int ok = (f & 3) && (f & 3) != 3 && (f & 12) && (f & 12) != 12;

		if (!ok)
			bad |= dxfer(fd, f, dev, 0, 64, -1) != -EINVAL;
	}
	VTAP(!bad, "vendor_xfer_one_direction_one_mode", "accepted");
	VTAP(dxfer(fd, X_WRITE | X_SYNC | (int)0x80000000u, dev, 0, 64, -1) == -EINVAL &&
	     dxfer(fd, X_WRITE | X_SYNC | 0x10, dev, 0, 64, -1) == -EINVAL,
	     "vendor_xfer_other_flags", "accepted (the vendor's runs a peer-to-peer transfer)");
	VTAP(dxfer(fd, X_WRITE | X_SYNC, dev, 0, 0, -1) == -EINVAL &&
	     dxfer(fd, X_WRITE | X_SYNC, dev, 0, 64, 4) == -EINVAL &&
	     dxfer(fd, X_WRITE | X_SYNC, dev, 0, 64, -7) == 0, "vendor_xfer_size_channel",
	     "wrong");
	/* Inside the buffer only (the vendor's sum can wrap, B14). */
	VTAP(dxfer(fd, X_WRITE | X_SYNC, dev, LEN - 64, 65, -1) == -EINVAL &&
	     dxfer(fd, X_WRITE | X_SYNC, dev, 0xffffffffu, ~0ull - 0xfffffffeull, -1) == -EINVAL &&
	     dxfer(fd, X_WRITE | X_SYNC, dev, LEN - 64, 64, -1) == 0, "vendor_xfer_in_buffer",
	     "wrong");
	VTAP(dxfer(fd, X_WRITE | X_SYNC, 0, 0, 64, -1) == -EINVAL, "vendor_xfer_device_range",
	     "accepted outside card memory");
	VTAP(vcall(fd, V_DMA_XFER, 16) == -EFAULT, "vendor_xfer_bad_pointer", "not EFAULT");
	drain_events(fd);

	/* One async transfer per file: the card holds it until let go. */
	cpu_access(buf, 0);
	fill(m, N, 73);
	cpu_access(buf, 1);
	VTAP(!hold_reads(1), "vendor_xfer_hold", "host request failed");
	r = dxfer(fd, X_WRITE | X_ASYNC, dev, 0, N, -1);
	VTAP(r == 0 && vcall(fd, V_ASYNC_STATUS, 0) == A_PENDING, "vendor_xfer_async_pending",
	     "r %ld", r);
	VTAP(dxfer(fd, X_WRITE | X_SYNC, dev, 0, 64, -1) == -EBUSY &&
	     dxfer(fd, X_WRITE | X_ASYNC, dev, 0, 64, -1) == -EBUSY &&
	     vcall(fd, V_DMA_DETACH, 0) == -EBUSY, "vendor_xfer_one_async", "not EBUSY");
	VTAP(!readable_in(fd, 0), "vendor_xfer_async_not_readable", "readable while it runs");
	hold_reads(0);
	/* Waited for (2 s at a time, as the vendor's): 0. */
	for (int i = 0; i < 15 && (r = sync_status(fd, X_SYNC)) == -ETIMEDOUT; i++)
		;
	VTAP(r == 0, "vendor_xfer_sync_status_waits", "%ld", r);
	VTAP(sync_status(fd, X_WRITE) == -EINVAL, "vendor_xfer_sync_status_needs_sync",
	     "accepted");
	VTAP(readable_in(fd, 10000) && vcall(fd, V_CLEAR_POLL_EVENT, 0) == 1 && !readable_in(fd, 0),
	     "vendor_xfer_async_poll", "no single event");
	r = vcall(fd, V_ASYNC_STATUS, 0);
	VTAP(r == A_DONE, "vendor_xfer_async_done", "state %ld", r);
	/* 1.4.16 reports DONE once, 1.6.2 until the next async transfer. */
	r = vcall(fd, V_ASYNC_STATUS, 0);
	VTAP(r == (v162 ? A_DONE : 0), "vendor_xfer_async_done_again", "state %ld", r);
	/* And with the state gone at 1.4.16, there is no transfer to report on. */
	r = sync_status(fd, X_SYNC);
	VTAP(r == (v162 ? 0 : -EINVAL), "vendor_xfer_sync_status_by_level", "%ld", r);
	cpu_access(buf, 0);
	memset(m + LEN / 2, 0, N);
	cpu_access(buf, 1);
	r = dxfer(fd, X_READ | X_SYNC, dev, LEN / 2, N, -1);
	cpu_access(buf, 0);
	VTAP(r == 0 && !memcmp(m, m + LEN / 2, N), "vendor_xfer_async_data", "r %ld or differs", r);
	cpu_access(buf, 1);
	/* The buffer outlives its fds while attached. */
	munmap(m, LEN);
	close(buf);
	r = dxfer(fd, X_WRITE | X_SYNC, dev, 0, 4096, -1);
	VTAP(r == 0, "vendor_xfer_after_fd_closed", "%s", strerror((int)-r));
	VTAP(vcall(fd, V_DMA_DETACH, 0) == 0 &&
	     dxfer(fd, X_WRITE | X_SYNC, dev, 0, 64, -1) == -EINVAL, "vendor_detach", "still there");
	drain_events(fd);
	munmap(m2, LEN);
	close(buf2);
}

#define BAR2_LEN (32u << 20)
#define WORDS 256

/* Word i of a BAR2 mapping (aligned 32-bit reads: what the card answers). */
static uint32_t word(const void *map, int i)
{
	return ((const volatile uint32_t *)map)[i];
}

/* Whether the first WORDS words of two mappings of BAR2 agree. */
static int same_words(const void *a, const void *b)
{
	for (int i = 0; i < WORDS; i++)
		if (word(a, i) != word(b, i))
			return 0;
	return 1;
}

/* BAR2 through sysfs (root), to compare the node's mapping with. */
static void *sysfs_bar2(const char *bdf)
{
	char path[96];
	int fd;
	void *p;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource2", bdf);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return MAP_FAILED;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return p;
}

/*
 * mmap: page offset 0 is BAR2, whole or in part, shared and uncached; the vendor's BAR0
 * (page offset 1) never; a card reset empties the mapping, which maps again afterwards.
 */
static void bar_map(int fd, const char *bdf)
{
	void *ref = sysfs_bar2(bdf), *m, *p;
	int own = open(dev_path, O_RDWR);
	struct metis_reset rs = { .size = sizeof(rs) };

	m = mmap(NULL, BAR2_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	VTAP(m != MAP_FAILED && ref != MAP_FAILED && same_words(m, ref), "vendor_bar2_mapped",
	     "%s", m == MAP_FAILED ? strerror(errno) : "differs from sysfs resource2");
	p = mmap(NULL, BAR2_LEN + 4096, PROT_READ, MAP_SHARED, fd, 0);
	VTAP(p == MAP_FAILED && errno == EINVAL, "vendor_bar2_length_checked",
	     "mapped past BAR2 (the vendor's maps whatever follows it, B12)");
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
	VTAP(p == MAP_FAILED && errno == EPERM, "vendor_bar0_never_mapped", "%s",
	     p == MAP_FAILED ? strerror(errno) : "the eDMA registers were mapped");
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 8192);
	VTAP(p == MAP_FAILED && errno == EINVAL, "vendor_other_offsets_einval", "mapped");
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	VTAP(p == MAP_FAILED && errno == EINVAL, "vendor_private_mapping_refused", "mapped");
	p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	VTAP(p == MAP_FAILED && errno == EPERM, "vendor_exec_mapping_refused", "mapped");
	VTAP(m != MAP_FAILED && mprotect(m, 4096, PROT_READ | PROT_EXEC) != 0,
	     "vendor_mapping_never_executable", "mprotect allowed PROT_EXEC");
	/* A part of it, from the start. */
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	VTAP(p != MAP_FAILED && ref != MAP_FAILED && same_words(p, ref), "vendor_bar2_part",
	     "%s", strerror(errno));
	if (p != MAP_FAILED)
		munmap(p, 8192);
	/* Across a card reset: the mapping is emptied, and maps the card again afterwards. */
	VTAP(own >= 0 && xioctl(own, METIS_IOCTL_RESET, &rs) == 0, "vendor_reset_under_mapping",
	     "%s", strerror(errno));
	VTAP(m != MAP_FAILED && ref != MAP_FAILED && same_words(m, ref), "vendor_bar2_after_reset",
	     "differs after the reset");
	if (m != MAP_FAILED)
		munmap(m, BAR2_LEN);
	if (ref != MAP_FAILED)
		munmap(ref, 4096);
	if (own >= 0)
		close(own);
}

static long msi_wait(int fd, int num, int timeout)
{
	struct msi_info m = { .num = num, .timeout = timeout };

	return vcall(fd, V_MSI, (unsigned long)&m);
}

static long msi_clean(int fd, int num)
{
	struct msi_info m = { .num = num };

	return vcall(fd, V_CLEAN_MSI, (unsigned long)&m);
}

static long msi_attach(int fd, int num)
{
	return vcall(fd, V_MSI_ATTACH, (unsigned long)&num);
}

/*
 * The firmware's interrupt sources by the vendor's numbers: source 24 (a device
 * message) is what the emulated card raises on request (inject device-msg).
 */
static void msi(int fd, int fd2)
{
	double t;
	long r;
	int st;
	pid_t pid;

	VTAP(msi_wait(fd, 32, 1) == -EINVAL && msi_wait(fd, -1, 1) == -EINVAL &&
	     msi_clean(fd, 32) == -EINVAL && msi_attach(fd, 32) == -EINVAL,
	     "vendor_msi_source_checked", "the vendor's accepts 32 and then crashes (B2)");
	VTAP(msi_wait(fd, 24, -1) == -EINVAL, "vendor_msi_negative_timeout", "accepted");
	VTAP(vcall(fd, V_MSI, 16) == -EFAULT && vcall(fd, V_MSI_ATTACH, 16) == -EFAULT,
	     "vendor_msi_bad_pointer", "not EFAULT");
	VTAP(msi_clean(fd, 24) == 0, "vendor_clean_msi", "refused");
	t = mono_ms();
	r = msi_wait(fd, 24, 1);
	t = mono_ms() - t;
	VTAP(r == -ETIMEDOUT && t >= 900, "vendor_msi_times_out", "%ld after %.0f ms", r, t);
	VTAP(msi_attach(fd2, 24) == 0 && msi_attach(fd2, 24) == 0 && msi_attach(fd2, 0) == 0,
	     "vendor_msi_attach_again", "the vendor's corrupts its lists here (B3)");
	VTAP(!readable_in(fd2, 0) && vcall(fd2, V_CLEAR_POLL_EVENT, 0) == 0,
	     "vendor_poll_nothing_yet", "readable before any event");
	VTAP(card_ctl("inject device-msg") == 0, "vendor_inject_device_msg", "host request failed");
	VTAP(msi_wait(fd, 24, 5) == 0, "vendor_msi_source_fired", "no mark of source 24");
	VTAP(readable_in(fd2, 5000), "vendor_poll_attached_source", "not readable");
	VTAP(vcall(fd2, V_CLEAR_POLL_EVENT, 0) == 1 && vcall(fd2, V_CLEAR_POLL_EVENT, 0) == 0 &&
	     !readable_in(fd2, 0), "vendor_clear_poll_event", "events left or none taken");
	/* Each wait takes one mark; marks come in before the wait count too. */
	VTAP(card_ctl("inject device-msg") == 0 && card_ctl("inject device-msg") == 0,
	     "vendor_inject_two", "host request failed");
	usleep(200 * 1000);
	VTAP(msi_wait(fd, 24, 5) == 0 && msi_wait(fd, 24, 5) == 0 && msi_wait(fd, 24, 1) == -ETIMEDOUT,
	     "vendor_msi_one_mark_per_wait", "marks not counted one by one");
	VTAP(card_ctl("inject device-msg") == 0, "vendor_inject_again", "host request failed");
	usleep(200 * 1000);
	VTAP(msi_clean(fd, 24) == 0 && msi_wait(fd, 24, 1) == -ETIMEDOUT, "vendor_clean_msi_drops_marks",
	     "a mark outlived CLEAN_MSI");
	/* Three marks since fd2 last took one (two, then one). */
	VTAP(vcall(fd2, V_CLEAR_POLL_EVENT, 0) == 1 && vcall(fd2, V_CLEAR_POLL_EVENT, 0) == 1 &&
	     vcall(fd2, V_CLEAR_POLL_EVENT, 0) == 1 && vcall(fd2, V_CLEAR_POLL_EVENT, 0) == 0,
	     "vendor_poll_counts_each_mark", "not three");
	/* Without a limit, until a signal: EINTR, as the vendor's. */
	pid = fork();
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_alarm };

		sigaction(SIGALRM, &sa, NULL);
		alarm(1);
		_exit(msi_wait(fd, 24, 0) == -EINTR ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	VTAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vendor_msi_forever_interruptible", "status %#x",
	     st);
}

static int suite(const char *node, const char *level, const char *bdf)
{
	int fd = vopen(node), fd2 = vopen(node), fd3 = vopen(node), st;
	int v162 = !strcmp(level, "1.6.2");
	uint64_t v;
	struct res_info ri;
	struct mem_window mw;
	struct dma_stats ds;
	pid_t pid;
	long r;

	VTAP(fd >= 0 && fd2 >= 0 && fd3 >= 0, "vendor_open", "%s: %s", node, strerror(errno));
	if (fd < 0 || fd2 < 0 || fd3 < 0)
		return 1;

	/* Device properties: a Metis, four AI cores, no PVE, not behind a switch group. */
	VTAP(property(fd, 0, &v) == 0 && v == 0, "vendor_prop_hw_gen", "got %llu",
	    (unsigned long long)v);
	VTAP(property(fd, 1, &v) == 0 && v == 4, "vendor_prop_aicore_count", "got %llu",
	    (unsigned long long)v);
	VTAP(property(fd, 2, &v) == 0 && v == 0, "vendor_prop_pve_count", "got %llu",
	    (unsigned long long)v);
	VTAP(property(fd, 3, &v) == 0 && v == UINT64_MAX, "vendor_prop_pes_group", "got %#llx",
	    (unsigned long long)v);
	VTAP(property(fd, 7, &v) == -EINVAL, "vendor_prop_unknown_einval", "accepted");
	VTAP(vcall(fd, V_GET_DEV_PROPERTY, 16) == -EFAULT, "vendor_prop_bad_pointer", "not EFAULT");

	/* AI-core contexts: first-fit runs of consecutive cores, one context per file. */
	VTAP(core_mask(fd) == 0, "vendor_no_context_mask", "mask %#llx",
	    (unsigned long long)core_mask(fd));
	VTAP(vcall(fd, V_CTX_FREE, 0) == -EINVAL, "vendor_ctx_free_without_context",
	    "the vendor's loops forever here (B1)");
	VTAP(ctx_alloc(fd, 0) == -EINVAL && ctx_alloc(fd, 5) == -EINVAL && ctx_alloc(fd, -1) == -EINVAL,
	    "vendor_ctx_count_checked", "accepted");
	VTAP(vcall(fd, V_CTX_ALLOC, 16) == -EFAULT, "vendor_ctx_bad_pointer", "not EFAULT");
	r = ctx_alloc(fd, 2);
	VTAP(r == 0 && core_mask(fd) == 0x3, "vendor_ctx_first_fit", "first %ld mask %#llx", r,
	    (unsigned long long)core_mask(fd));
	VTAP(ctx_alloc(fd, 1) == -EINVAL, "vendor_ctx_one_per_file", "a second context");
	r = ctx_alloc(fd2, 2);
	VTAP(r == 2 && core_mask(fd2) == 0xc, "vendor_ctx_next_run", "first %ld mask %#llx", r,
	    (unsigned long long)core_mask(fd2));
	VTAP(ctx_alloc(fd3, 1) == -EINVAL, "vendor_ctx_none_free", "allocated from a full card");
	VTAP(vcall(fd, V_CTX_FREE, 0) == 0 && core_mask(fd) == 0, "vendor_ctx_free", "still held");
	r = ctx_alloc(fd3, 1);
	VTAP(r == 0 && core_mask(fd3) == 0x1, "vendor_ctx_freed_cores_reused", "first %ld", r);
	/* A closed file's context goes back. */
	close(fd2);
	fd2 = vopen(node);
	/* Core 0 is fd3's: four do not fit, three do, on the cores the closed file held. */
	r = ctx_alloc(fd2, 4);
	VTAP(r == -EINVAL, "vendor_ctx_four_do_not_fit", "first %ld", r);
	r = ctx_alloc(fd2, 3);
	VTAP(r == 1 && core_mask(fd2) == 0xe, "vendor_ctx_released_at_close", "first %ld", r);
	vcall(fd2, V_CTX_FREE, 0);
	vcall(fd3, V_CTX_FREE, 0);

	/* The message lock: a file's, never a kernel mutex held across system calls. */
	VTAP(vcall(fd2, V_MSG_LOCK, 0) == -EPERM, "vendor_msg_unlock_not_held",
	    "the vendor's unlocks anyway (B4)");
	VTAP(vcall(fd, V_MSG_LOCK, 1) == 0, "vendor_msg_lock", "refused");
	VTAP(vcall(fd, V_MSG_LOCK, 1) == -EDEADLK, "vendor_msg_lock_twice",
	    "the vendor's deadlocks here");
	VTAP(vcall(fd2, V_MSG_LOCK, 0) == -EPERM, "vendor_msg_unlock_by_other", "another file unlocked");
	/* Another file waits for it, interruptibly. */
	pid = fork();
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_alarm };

		sigaction(SIGALRM, &sa, NULL);
		alarm(1);
		_exit(vcall(fd2, V_MSG_LOCK, 1) == -EINTR ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	VTAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vendor_msg_wait_interruptible",
	    "status %#x", st);
	pid = fork();
	if (pid == 0)
		_exit(vcall(fd2, V_MSG_LOCK, 1) == 0 ? 0 : 1);
	usleep(200 * 1000);
	VTAP(waitpid(pid, &st, WNOHANG) == 0, "vendor_msg_waits_for_holder", "did not wait");
	VTAP(vcall(fd, V_MSG_LOCK, 0) == 0, "vendor_msg_unlock", "refused");
	waitpid(pid, &st, 0);
	VTAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vendor_msg_handed_over", "status %#x", st);
	/* fd2 holds it now (its child took it through the shared file); its close gives it back. */
	close(fd2);
	VTAP(vcall(fd, V_MSG_LOCK, 1) == 0 && vcall(fd, V_MSG_LOCK, 0) == 0,
	    "vendor_msg_released_at_close", "still held");
	fd2 = vopen(node);

	/* Sizes for anyone; physical addresses for CAP_SYS_ADMIN only. */
	memset(&ri, 0xa5, sizeof(ri));
	VTAP(vcall(fd, V_GET_RESOURCE_INFO, (unsigned long)&ri) == 0 && ri.l2_size == 32 << 20 &&
	    ri.l2_base != 0 && !ri.sysmem_size && !ri.ddr_size[0], "vendor_resource_info_root",
	    "l2 %#llx+%#llx", (unsigned long long)ri.l2_base, (unsigned long long)ri.l2_size);
	memset(&mw, 0xa5, sizeof(mw));
	VTAP(vcall(fd, V_GET_PCIE_WINDOWS, (unsigned long)&mw) == 0 && mw.size_res[0] == 4096 &&
	    mw.size_res[2] == 32 << 20 && mw.base_res[0] && mw.base_res[2] && !mw.size_res[1] &&
	    mw.np_size >= mw.size_res[2] && !mw.p_size, "vendor_pcie_windows_root",
	    "bar0 %#llx bar2 %#llx", (unsigned long long)mw.size_res[0],
	    (unsigned long long)mw.size_res[2]);
	pid = fork();
	if (pid == 0) {
		/* The open file keeps working for a process that drops its privileges. */
		if (become(65534, 65534))
			_exit(3);
		memset(&ri, 0xa5, sizeof(ri));
		memset(&mw, 0xa5, sizeof(mw));
		_exit(vcall(fd, V_GET_RESOURCE_INFO, (unsigned long)&ri) == 0 && !ri.l2_base &&
		      ri.l2_size == 32 << 20 &&
		      vcall(fd, V_GET_PCIE_WINDOWS, (unsigned long)&mw) == 0 && !mw.base_res[0] &&
		      !mw.base_res[2] && !mw.np_base && mw.size_res[2] == 32 << 20 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	VTAP(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vendor_no_physical_addresses_unprivileged",
	    "status %#x", st);

	/* DMA statistics: the card's own, counted by the engine's channels. */
	memset(&ds, 0xa5, sizeof(ds));
	VTAP(vcall(fd, V_GET_DMA_STATS, (unsigned long)&ds) == 0, "vendor_dma_stats", "refused");
	{
		uint64_t to = 0, from = 0;

		for (int i = 0; i < 4; i++) {
			to += ds.rd[i].bytes_xfer;
			from += ds.wr[i].bytes_xfer;
		}
		/* The scenario moved 1 MiB each way through /dev/metis0 first. */
		VTAP(to >= 1 << 20 && from >= 1 << 20,
		    "vendor_dma_stats_count_the_card", "to %llu from %llu",
		    (unsigned long long)to, (unsigned long long)from);
	}

	/* Refused for good, with a reason in the log. */
	{
		uint8_t p2p[32] = { 0 };
		uint64_t pa[2] = { (uintptr_t)&v, 0 };

		VTAP(vcall(fd, V_DMA_P2P_XFER, (unsigned long)p2p) == -EPERM, "vendor_p2p_refused",
		    "not EPERM");
		/* With its P2P flag (flags at byte 28) or without (the vendor's then runs an
		 * uninitialised table, B6): refused all the same. */
		p2p[31] = 0x80;
		VTAP(vcall(fd, V_DMA_P2P_XFER, (unsigned long)p2p) == -EPERM,
		     "vendor_p2p_flagged_refused", "not EPERM");
		r = vcall(fd, V_GET_USER_PA, (unsigned long)pa);
		VTAP(v162 ? r == -EPERM && !pa[1] : r == -ENOTTY, "vendor_user_pa_refused",
		    "got %ld (1.4.16: not a command; 1.6.2: EPERM)", r);
	}
	usr_dma(fd, v162);
	msi(fd, fd2);
	bar_map(fd, bdf);

	/* The runtime's firmware is not wanted on a card whose firmware this driver loads. */
	VTAP(vcall(fd, V_DYNMEM_LOAD, 0) == -EINVAL, "vendor_dynmem_load_kernel_owned",
	     "not EINVAL");
	r = vcall(fd, V_FWTRACE_GET_STATS, 0);
	VTAP(v162 ? r == -EOPNOTSUPP : r == -ENOTTY, "vendor_fwtrace_by_level", "got %ld", r);
	/* Not the vendor's commands at all. */
	VTAP(vcall(fd, _IO('U', 40), 0) == -ENOTTY && vcall(fd, METIS_IOCTL_INFO, 0) == -ENOTTY,
	    "vendor_unknown_enotty", "not ENOTTY");
	close(fd);
	close(fd2);
	close(fd3);
	return failed;
}

/* The vendor runtime's sequence, on a runtime-owned card (vendor-driver-facts.md §3.2). */
#define FW_IMAGE	"/lib/firmware/axelera/metis-fw-if1.bin"
#define L2_BASE		0x08000000ull
#define IF_MEMORY_MAP	0x208
#define IF_FW_LOAD_ADDR	0x238
#define IF_AREA_REFS	0x240
#define SLOT_OPCODE	0xb0
#define SLOT_SIZE	0xb4
#define SLOT_MSG	0xb8
#define OP_BOOT		1
#define OP_ECHO		2
#define ANSWERED	0x80000000u

/* Which round of the sequence a check belongs to: before or after the card lost its firmware. */
static const char *round_tag = "";

static const char *rn(const char *name)
{
	static char b[4][96];
	static int i;

	i = (i + 1) % 4;
	snprintf(b[i], sizeof(b[i]), "%s%s", name, round_tag);
	return b[i];
}

#define RTAP(cond, name, ...) VTAP(cond, rn(name), __VA_ARGS__)

static uint64_t bar_u64(const void *map, uint32_t off)
{
	return word(map, off / 4) | (uint64_t)word(map, off / 4 + 1) << 32;
}

/* A command through the mapped slot, as the runtime posts one: message, size, opcode last. */
static void slot_post(void *map, uint32_t opcode, const void *msg, uint32_t size)
{
	volatile uint32_t *w = map;
	uint32_t b[64] = { 0 };

	memcpy(b, msg, size);
	for (uint32_t i = 0; i < (size + 3) / 4; i++)
		w[SLOT_MSG / 4 + i] = b[i];
	w[SLOT_SIZE / 4] = size;
	__sync_synchronize();
	w[SLOT_OPCODE / 4] = opcode;
}

/* The device address of the published area with `magic`, or 0. */
static uint64_t area_at(const void *map, uint16_t magic)
{
	for (int i = 0; i < 8; i++) {
		uint32_t at = IF_AREA_REFS + 24 * i;

		if ((word(map, at / 4) & 0xffff) == magic)
			return L2_BASE + bar_u64(map, at + 8);
	}
	return 0;
}

static int pri_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLPRI);
}

/* Upload, boot, wait for vector 12, DYNMEM_LOAD; then the mailbox signals through the node. */
static int runtime_boot(int fd, void *map, const uint8_t *fw, uint32_t fwlen)
{
	uint64_t load;
	long r;

	uint8_t probe[64];
	uint32_t echo[2];

	/* A transfer waits while the card comes back from losing its firmware; the mapping
	 * is the card's again once it is back. */
	r = usr_xfer(fd, X_READ, L2_BASE + (16 << 20), probe, sizeof(probe));
	RTAP(r == 0, "runtime_card_back", "%s", strerror((int)-r));
	/* Until the runtime loads it, the card has no firmware: poll says so. */
	RTAP(pri_in(fd, 0), "runtime_waits_for_firmware", "no POLLPRI");
	msi_clean(fd, 12);
	load = bar_u64(map, IF_FW_LOAD_ADDR);
	r = usr_xfer(fd, X_WRITE, load, (void *)fw, fwlen);
	RTAP(r == 0, "runtime_upload", "to %#llx: %s", (unsigned long long)load, strerror((int)-r));
	slot_post(map, OP_BOOT, &fwlen, 4);
	r = msi_wait(fd, 12, 10);
	RTAP(r == 0 && word(map, SLOT_OPCODE / 4) == ANSWERED, "runtime_boot_vector_12",
	     "wait %ld, slot %#x", r, word(map, SLOT_OPCODE / 4));
	/* Say the new firmware reinitialised the card's DMA block: DYNMEM_LOAD brings the
	 * engine back (the transfers below need it), with the areas and the registration. */
	RTAP(card_ctl("inject engine-off") == 0, "runtime_firmware_resets_engine",
	     "host request failed");
	r = vcall(fd, V_DYNMEM_LOAD, 0);
	RTAP(r == 0 && !pri_in(fd, 0), "runtime_dynmem_load", "%ld", r);
	/* The new firmware's areas are registered with: a command completes through vector 12. */
	slot_post(map, OP_ECHO, "runtime", 7);
	r = msi_wait(fd, 12, 10);
	/* Read back a word at a time: device memory takes no unaligned loads (arm64). */
	echo[0] = word(map, SLOT_MSG / 4);
	echo[1] = word(map, SLOT_MSG / 4 + 1);
	RTAP(r == 0 && word(map, SLOT_OPCODE / 4) == ANSWERED && !memcmp(echo, "runtime", 7),
	     "runtime_mailbox", "wait %ld, slot %#x", r, word(map, SLOT_OPCODE / 4));
	return r == 0;
}

/* Contexts and DMA, with user memory and a dma-heap buffer, data checked. */
static void runtime_work(int fd, void *map)
{
	enum { N = (1 << 20) + 13, HB = 2 << 20 };
	uint64_t ddr = bar_u64(map, IF_MEMORY_MAP), at = ddr + (64 << 20);
	uint8_t *src = malloc(N), *back = malloc(N), *m = NULL;
	int buf = heap_buf(HB, &m);
	long r;

	RTAP(src && back && buf >= 0 && ddr, "runtime_setup", "ddr %#llx", (unsigned long long)ddr);
	if (!src || !back || buf < 0 || !ddr)
		return;
	r = ctx_alloc(fd, 4);
	RTAP(r == 0 && vcall(fd, V_CTX_FREE, 0) == 0, "runtime_contexts", "%ld", r);
	fill(src, N, 81);
	r = usr_xfer(fd, X_WRITE, at + 3, src, N);
	memset(back, 0, N);
	RTAP(r == 0 && usr_xfer(fd, X_READ, at + 3, back, N) == 0 && !memcmp(src, back, N),
	     "runtime_user_memory", "r %ld or data differs", r);
	/* The L2 this driver reads its setup from or writes is no transfer's: the host-driver
	 * area, the descriptor area and the list buffer it names. */
	{
		uint64_t hdrv = area_at(map, 0xBAC1), dref = area_at(map, 0xD4D4);
		uint64_t lists = dref ? bar_u64(map, (uint32_t)(dref - L2_BASE)) : 0;

		RTAP(hdrv && dref && lists && usr_xfer(fd, X_WRITE, hdrv, src, 8) == -EPERM &&
		     usr_xfer(fd, X_WRITE, dref + 8, src, 8) == -EPERM &&
		     usr_xfer(fd, X_WRITE, lists + 4096, src, 64) == -EPERM &&
		     usr_xfer(fd, X_WRITE, lists - 64, src, 128) == -EPERM,
		     "runtime_driver_areas_refused", "host-driver %#llx descriptors %#llx lists %#llx",
		     (unsigned long long)hdrv, (unsigned long long)dref, (unsigned long long)lists);
	}
	RTAP(usr_xfer(fd, X_WRITE, ddr + (16ull << 30), src, 64) == -EINVAL &&
	     usr_xfer(fd, X_WRITE, 4096, src, 64) == -EINVAL, "runtime_outside_card_memory",
	     "accepted");
	/* A dma-buf from the system heap, as the SDK allocates its frames. */
	drain_events(fd);
	cpu_access(buf, 0);
	fill(m, HB / 2, 83);
	memset(m + HB / 2, 0, HB / 2);
	cpu_access(buf, 1);
	r = attach(fd, buf);
	RTAP(r == 0 && dxfer(fd, X_WRITE | X_SYNC, at + (8 << 20), 0, HB / 2, -1) == 0 &&
	     drain_events(fd) == 1, "runtime_dmabuf_to_device", "%ld", r);
	r = dxfer(fd, X_READ | X_ASYNC, at + (8 << 20), HB / 2, HB / 2, -1);
	RTAP(r == 0 && readable_in(fd, 30000) && drain_events(fd) == 1, "runtime_dmabuf_async_poll",
	     "r %ld or not one event", r);
	/* The sync status first: at 1.4.16 reading DONE clears the state, and with it
	 * what GET_XFER_SYNC_STATUS needs. */
	r = sync_status(fd, X_SYNC);
	cpu_access(buf, 0);
	RTAP(r == 0 && vcall(fd, V_ASYNC_STATUS, 0) == A_DONE && !memcmp(m, m + HB / 2, HB / 2),
	     "runtime_dmabuf_from_device", "sync status %ld, or not done, or data differs", r);
	cpu_access(buf, 1);
	/* Past this card's memory, inside the largest card's: the engine fails it (a fault of
	 * the emulated card's), the file learns how. */
	r = dxfer(fd, X_WRITE | X_ASYNC, ddr + (15ull << 30), 0, 4096, -1);
	RTAP(r == 0 && readable_in(fd, 30000) && drain_events(fd) == 1 &&
	     vcall(fd, V_ASYNC_STATUS, 0) == A_FAIL &&
	     sync_status(fd, X_SYNC) == -EIO, "runtime_dmabuf_failed", "r %ld state %ld", r,
	     vcall(fd, V_ASYNC_STATUS, 0));
	/* And the card still works. */
	memset(back, 0, N);
	RTAP(usr_xfer(fd, X_READ, at + 3, back, N) == 0 && !memcmp(src, back, N),
	     "runtime_works_after_failure", "data differs");
	/* The transfers' interrupts completed no message source (the vendor's single-vector
	 * handler completes 12 and 24 on every interrupt, B13). */
	RTAP(msi_wait(fd, 12, 1) == -ETIMEDOUT && msi_wait(fd, 24, 1) == -ETIMEDOUT,
	     "runtime_no_spurious_messages", "a message source marked");
	vcall(fd, V_DMA_DETACH, 0);
	munmap(m, HB);
	close(buf);
	free(src);
	free(back);
}

static int runtime(const char *node, char **lose, int losses)
{
	int fd = vopen(node), img = open(FW_IMAGE, O_RDONLY);
	uint8_t *fw = malloc(8 << 20);
	ssize_t n = img >= 0 && fw ? read(img, fw, 8 << 20) : -1;
	void *map = fd >= 0 ? mmap(NULL, BAR2_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) :
		    MAP_FAILED;

	VTAP(fd >= 0 && n > 0 && map != MAP_FAILED, "runtime_open", "node %s, image %zd: %s", node,
	     n, strerror(errno));
	if (fd < 0 || n <= 0 || map == MAP_FAILED)
		return 1;
	/*
	 * A firmware that publishes its host-driver area outside BAR2: DYNMEM_LOAD refuses it
	 * (the vendor's writes where it points, B11), and a reset brings the bootloader back.
	 */
	round_tag = "_bad_area";
	VTAP(card_ctl("inject bad-area hdrv") == 0, "runtime_inject_bad_area", "host request failed");
	{
		uint8_t probe[64];
		uint32_t len = (uint32_t)n;
		long r = usr_xfer(fd, X_WRITE, bar_u64(map, IF_FW_LOAD_ADDR), fw, len);

		msi_clean(fd, 12);
		slot_post(map, OP_BOOT, &len, 4);
		RTAP(r == 0 && msi_wait(fd, 12, 10) == 0, "runtime_boot", "upload %ld", r);
		r = vcall(fd, V_DYNMEM_LOAD, 0);
		RTAP(r == -EPROTO && pri_in(fd, 0), "runtime_dynmem_load_refused",
		     "%ld (or no POLLPRI)", r);
		RTAP(system("metisctl reset >/dev/null") == 0 &&
		     usr_xfer(fd, X_READ, L2_BASE + (16 << 20), probe, sizeof(probe)) == 0,
		     "runtime_reset_after", "the card did not come back");
	}
	round_tag = "";
	if (runtime_boot(fd, map, fw, (uint32_t)n))
		runtime_work(fd, map);
	for (int i = 0; i < losses; i++) {
		static char tag[4][24];

		/* The card loses its firmware under the open node and its mapping: poll tells. */
		snprintf(tag[i % 4], sizeof(tag[0]), "_after_loss%d", i + 1);
		round_tag = tag[i % 4];
		RTAP(system(lose[i]) == 0, "runtime_lose", "%s failed", lose[i]);
		RTAP(pri_in(fd, 30000), "runtime_told_by_poll", "no POLLPRI");
		if (runtime_boot(fd, map, fw, (uint32_t)n))
			runtime_work(fd, map);
	}
	munmap(map, BAR2_LEN);
	close(fd);
	close(img);
	free(fw);
	return failed;
}

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const unsigned long vcmds[] = {
	V_MSG_LOCK, V_CTX_ALLOC, V_CTX_FREE, V_GET_DEV_PROPERTY, 0xC0045505u, 0xC0045506u,
	V_DMA_XFER, 0xC0085508u, 0xC0085509u, V_USR_DMA_XFER, V_MSI, 0xC008550Cu, 0xC004550Du,
	V_GET_CTX_AICORE_MASK, 0xC004550Fu, V_GET_RESOURCE_INFO, V_GET_PCIE_WINDOWS,
	V_DMA_P2P_XFER, V_DYNMEM_LOAD, 0x40045514u, 0x00005515u, V_FWTRACE_GET_STATS,
	0x40045517u, 0x40045518u, 0x40045519u, V_GET_DMA_STATS, V_GET_USER_PA,
};

/* An argument: a small value, a pointer to random bytes, or a pointer that is not one. */
/* Where device memory is on the emulated card (DDR from 4 GiB); most of it a transfer may use. */
#define DDR_AT 0x100000000ull

static unsigned long fuzz_arg(uint8_t *buf, size_t len, uint8_t *dma, size_t dmalen,
			      int heap, unsigned long cmd)
{
	static const unsigned long bad[] = { 0, 16, 4096, 0xffff800000000000ul, ~0ul - 7 };

	switch (rnd() % 8) {
	case 0:
		return rnd() % 6;
	case 1:
		return bad[rnd() % 5];
	case 2:		/* runs into an unmapped page */
		return (unsigned long)(buf + len - 1 - rnd() % 8);
	default:
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
		if (cmd == V_USR_DMA_XFER && len >= sizeof(struct dma_xfer) && rnd() % 2) {
			/* A transfer that could run: only ever this process's scratch buffer. */
			struct dma_xfer *x = (void *)buf;

			x->virt = (uintptr_t)dma + rnd() % 4096;
			x->size = rnd() % (dmalen - 4096) + (rnd() % 4 == 0);
			x->phy = rnd() % 2 ? x->phy % (8ull << 30) :
					     DDR_AT + ((rnd() % (1 << 30)) & ~63ull);
			x->flags = (int32_t)(rnd() % 4);
		}
		if (cmd == V_DMA_XFER && len >= sizeof(struct dmabuf_xfer) && rnd() % 2) {
			/* Through the process's own heap buffer, when attached. */
			struct dmabuf_xfer *x = (void *)buf;

			x->size = rnd() % (dmalen + 4096) + (rnd() % 4 == 0);
			x->offset = (uint32_t)(rnd() % 8192);
			x->phy = DDR_AT + ((rnd() % (1 << 30)) & ~63ull);
			x->flags = (int32_t)(rnd() % 16);
			x->channel = (int32_t)(rnd() % 6) - 1;
		}
		if (cmd == V_DMA_ATTACH && rnd() % 2)
			*(int32_t *)buf = heap;
		if (cmd == V_CTX_ALLOC || cmd == V_GET_DEV_PROPERTY)
			*(uint64_t *)buf = rnd() % 6;
		return (unsigned long)buf;
	}
}

/* Resets and rebinds under the workers: a file of an unbound card answers ENODEV. */
static int churn;

static int fuzz_allowed(long r)
{
	if (churn && r == -ENODEV)
		return 1;
	switch (-r) {
	case EINVAL: case EFAULT: case ENOTTY: case EOPNOTSUPP: case EPERM: case EDEADLK:
	case EBUSY: case ENOMEM: case ETIMEDOUT: case EIO: case EINTR: case EBADF:
		return 1;
	default:
		/* A first core, a poll event taken, an async state. */
		return r >= 0 && r <= A_PENDING;
	}
}

static int fuzz(const char *node, uint64_t seed, long count, const char *done)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	int nproc = 3, st, bad = 0, fd;
	uint64_t v;
	pid_t pids[3];

	for (int p = 0; p < nproc; p++) {
		pids[p] = fork();
		if (pids[p])
			continue;
		long ok = 0, calls = 0;
		size_t pg = (size_t)sysconf(_SC_PAGESIZE), dmalen = 256 << 10;
		/* Random bytes end at an unmapped page. */
		uint8_t *area = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint8_t *dma = malloc(dmalen), *hm;
		int fds[2], heap = heap_buf(dmalen, &hm);

		/* An unprivileged worker may have no heap: attaching then fails (EBADF). */
		if (area == MAP_FAILED || !dma || munmap(area + pg, pg))
			_exit(3);
		sigaction(SIGALRM, &sa, NULL);
		rng = seed * 0x9e3779b97f4a7c15ull + (uint64_t)p + 1;
		fds[0] = vopen(node);
		fds[1] = vopen(node);
		for (long i = 0; i < count / nproc || (done && access(done, F_OK)); i++) {
			int f = (int)(rnd() % 2);
			unsigned long cmd = vcmds[rnd() % (sizeof(vcmds) / sizeof(vcmds[0]))];
			size_t len = 8 + rnd() % 520;
			long r;

			if (rnd() % 16 == 0)	/* a wrong size or direction, or another number */
				cmd = rnd() % 2 ? cmd ^ (1ul << (16 + rnd() % 14)) :
				      _IOC(rnd() % 4, 'U', rnd() % 64, rnd() % 64);
			if (rnd() % 64 == 0) {
				close(fds[f]);
				fds[f] = vopen(node);
			}
			/* Another process may hold the message lock: a wait ends in 100 ms. */
			ualarm(100 * 1000, 0);
			r = vcall(fds[f], cmd, fuzz_arg(area + pg - len, len, dma, dmalen, heap, cmd));
			ualarm(0, 0);
			calls++;
			if (fuzz_allowed(r)) {
				ok++;
			} else {
				printf("@@NOTE vendor fuzz: %#lx gave %ld\n", cmd, r);
				fflush(stdout);
			}
		}
		_exit(ok == calls ? 0 : 1);
	}
	for (int p = 0; p < nproc; p++) {
		waitpid(pids[p], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			printf("@@NOTE vendor fuzz: worker %d status %#x\n", p, st);
	}
	VTAP(!bad, "vendor_fuzz_results_allowed", "a worker got a result the ABI does not allow, "
	     "died or failed");
	/* All files closed: every context and the message lock went back (after a rebind,
	 * once the node is back). */
	for (int i = 0; i < 100 && (fd = vopen(node)) < 0; i++)
		usleep(100 * 1000);
	VTAP(fd >= 0 && property(fd, 1, &v) == 0 && v == 4 && ctx_alloc(fd, 4) == 0 &&
	     vcall(fd, V_MSG_LOCK, 1) == 0, "vendor_fuzz_node_works_after", "%s", strerror(errno));
	close(fd);
	return failed;
}

/* The card is unbound under an open node: calls fail with ENODEV, close is clean, the
 * node goes; bound again, it comes back. */
static int unbind(const char *node, const char *bdf)
{
	int fd = vopen(node), st;
	uint64_t v;
	struct stat sb;
	void *m = MAP_FAILED;
	pid_t pid;

	VTAP(fd >= 0 && ctx_alloc(fd, 1) == 0 && vcall(fd, V_MSG_LOCK, 1) == 0, "vendor_hold",
	    "%s", strerror(errno));
	if (fd >= 0)
		m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	VTAP(m != MAP_FAILED && word(m, 0) != 0xffffffffu, "vendor_hold_mapping", "%s",
	     strerror(errno));
	VTAP(write_file("/sys/bus/pci/drivers/metis/unbind", bdf) == 0, "vendor_unbind",
	    "unbind failed");
	VTAP(property(fd, 1, &v) == -ENODEV && vcall(fd, V_MSG_LOCK, 0) == -ENODEV,
	    "vendor_enodev_after_unbind", "still answers");
	VTAP(stat(node, &sb) != 0, "vendor_node_gone", "%s still there", node);
	/* The mapping outlives the card only as SIGBUS. */
	pid = fork();
	if (pid == 0)
		_exit(m != MAP_FAILED && word(m, 0) != 0 ? 2 : 3);
	waitpid(pid, &st, 0);
	VTAP(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "vendor_mapping_sigbus_after_unbind",
	     "status %#x", st);
	VTAP(m != MAP_FAILED && munmap(m, 4096) == 0, "vendor_unmap_after_unbind", "%s",
	     strerror(errno));
	close(fd);
	VTAP(write_file("/sys/bus/pci/drivers/metis/bind", bdf) == 0, "vendor_bind", "bind failed");
	fd = vopen(node);
	VTAP(fd >= 0 && property(fd, 1, &v) == 0 && v == 4 && ctx_alloc(fd, 4) == 0,
	    "vendor_back_after_bind", "%s", strerror(errno));
	close(fd);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc > 4)
		snprintf(level_tag, sizeof(level_tag), "v%s", argv[4]);
	else if (argc > 2)
		snprintf(level_tag, sizeof(level_tag), "v%s", argv[2]);
	if (argc > 5 && !strcmp(argv[2], "fuzz")) {
		snprintf(level_tag, sizeof(level_tag), "v%s", argv[5]);
		/* FILE: resets and rebinds go on until FILE exists; run at least COUNT calls. */
		churn = argc > 7 && !strcmp(argv[6], "--churn");
		return fuzz(argv[1], strtoull(argv[3], NULL, 0), atol(argv[4]),
			    churn ? argv[7] : NULL);
	}
	if (argc > 3 && !strcmp(argv[2], "unbind"))
		return unbind(argv[1], argv[3]);
	if (argc > 3 && !strcmp(argv[2], "runtime")) {
		snprintf(level_tag, sizeof(level_tag), "v%s", argv[3]);
		return runtime(argv[1], argv + 4, argc - 4);
	}
	if (argc > 3)
		return suite(argv[1], argv[2], argv[3]);
	fprintf(stderr, "usage: vendor_test NODE LEVEL BDF | NODE unbind BDF LEVEL | "
		"NODE fuzz SEED COUNT LEVEL [--churn DONE_FILE] | NODE runtime LEVEL [LOSE...]\n");
	return 2;
}
