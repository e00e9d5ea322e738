// SPDX-License-Identifier: GPL-2.0
/*
 * The vendor-ABI node (metis.ko vendor_abi=1.4.16|1.6.2), from the vendor
 * driver's ABI as ../shared/docs/vendor-driver-facts.md §2 describes it.
 *
 *   vendor_test NODE LEVEL BDF      the commands offered, the BAR2 mapping, and the
 *                                   vendor bugs each turned into a clean error
 *   vendor_test NODE unbind BDF LEVEL  the card unbound under an open node, and bound again
 *   vendor_test NODE fuzz SEED COUNT LEVEL  COUNT seeded random calls from 3 processes:
 *                                   every one answers with a result the ABI allows, no
 *                                   process dies or hangs, and the node works after
 *
 * Metis has four AI cores; the commands here touch no hardware, so each run
 * starts from a card nobody else holds contexts or the message lock on.
 */
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
#define V_DMA_XFER		0xC0085507u
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
static void usr_dma(int fd)
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
	munmap(ro, LEN);
	free(src);
	free(back);
	close(own);
}

static void on_alarm(int sig)
{
	(void)sig;
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
		r = vcall(fd, V_GET_USER_PA, (unsigned long)pa);
		VTAP(v162 ? r == -EPERM && !pa[1] : r == -ENOTTY, "vendor_user_pa_refused",
		    "got %ld (1.4.16: not a command; 1.6.2: EPERM)", r);
	}
	usr_dma(fd);
	msi(fd, fd2);
	bar_map(fd, bdf);

	/* Not offered yet: a clear error, not silence. */
	VTAP(vcall(fd, V_DMA_XFER, 0) == -EOPNOTSUPP && vcall(fd, 0xC0045505u, 0) == -EOPNOTSUPP &&
	    vcall(fd, V_DYNMEM_LOAD, 0) == -EOPNOTSUPP, "vendor_unoffered_eopnotsupp", "not EOPNOTSUPP");
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
static unsigned long fuzz_arg(uint8_t *buf, size_t len, uint8_t *dma, size_t dmalen,
			      unsigned long cmd)
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
			x->phy = rnd() % 2 ? x->phy % (2ull << 30) : (rnd() % (1 << 30)) & ~63ull;
			x->flags = (int32_t)(rnd() % 4);
		}
		if (cmd == V_CTX_ALLOC || cmd == V_GET_DEV_PROPERTY)
			*(uint64_t *)buf = rnd() % 6;
		return (unsigned long)buf;
	}
}

static int fuzz_allowed(long r)
{
	switch (-r) {
	case EINVAL: case EFAULT: case ENOTTY: case EOPNOTSUPP: case EPERM: case EDEADLK:
	case EBUSY: case ENOMEM: case ETIMEDOUT: case EIO: case EINTR:
		return 1;
	default:
		return r >= 0 && r < 4;
	}
}

static int fuzz(const char *node, uint64_t seed, long count)
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
		uint8_t *dma = malloc(dmalen);
		int fds[2];

		if (area == MAP_FAILED || !dma || munmap(area + pg, pg))
			_exit(3);
		sigaction(SIGALRM, &sa, NULL);
		rng = seed * 0x9e3779b97f4a7c15ull + (uint64_t)p + 1;
		fds[0] = vopen(node);
		fds[1] = vopen(node);
		for (long i = 0; i < count / nproc; i++) {
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
			r = vcall(fds[f], cmd, fuzz_arg(area + pg - len, len, dma, dmalen, cmd));
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
	/* All files closed: every context and the message lock went back. */
	fd = vopen(node);
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
		return fuzz(argv[1], strtoull(argv[3], NULL, 0), atol(argv[4]));
	}
	if (argc > 3 && !strcmp(argv[2], "unbind"))
		return unbind(argv[1], argv[3]);
	if (argc > 3)
		return suite(argv[1], argv[2], argv[3]);
	fprintf(stderr, "usage: vendor_test NODE LEVEL BDF | NODE unbind BDF LEVEL | "
		"NODE fuzz SEED COUNT LEVEL\n");
	return 2;
}
