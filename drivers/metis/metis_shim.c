// SPDX-License-Identifier: GPL-2.0
/*
 * C the metis driver can't do without on Linux 7.3: each function stands in
 * for an abstraction Rust for Linux does not have yet (named above it), and
 * uses static inlines or macros bindgen does not expose. Every function takes
 * and returns scalars or pointers to types `kernel::bindings` already knows,
 * so there is one definition of every struct. Rust calls these from
 * drivers/metis/glue.rs only; C calls Rust only through the tables of
 * drivers/metis/ffi.rs.
 */
#include <linux/dma-mapping.h>
#include <linux/moduleparam.h>
#include <linux/pm_runtime.h>
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/msi.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include <metis/shim.h>

/* Missing: string module parameters (7.3's `module!` takes integers and bools only). */
static char *firmware;
module_param(firmware, charp, 0444);
MODULE_PARM_DESC(firmware, "Firmware file under /lib/firmware (default axelera/metis-fw-if1.bin)");

const char *metis_shim_firmware_name(void)
{
	return firmware;
}

/* Missing: the MSI message of a vector (irq_desc/msi_desc are not abstracted). */
int metis_shim_msi_msg(struct pci_dev *pdev, unsigned int vec, u64 *addr, u32 *data)
{
	struct msi_msg msg;
	int irq = pci_irq_vector(pdev, vec);

	if (irq < 0)
		return irq;
	get_cached_msi_msg(irq, &msg);
	*addr = ((u64)msg.address_hi << 32) | msg.address_lo;
	*data = msg.data;
	return 0;
}

/*
 * Missing: IOMMU domain queries (device_iommu_mapped() is a static inline).
 * 0: no IOMMU, 1: identity (passthrough) domain, 2: translating domain.
 */
int metis_shim_iommu_mode(struct device *dev)
{
	struct iommu_domain *dom;

	if (!device_iommu_mapped(dev))
		return 0;
	dom = iommu_get_domain_for_dev(dev);
	if (!dom || dom->type == IOMMU_DOMAIN_IDENTITY)
		return 1;
	return 2;
}

/*
 * Missing: pinning user pages (pin_user_pages_fast, unpin_user_pages_dirty_lock)
 * and sg tables built from them; 7.3's SGTable only maps kernel pages.
 * A pinned, DMA-mapped user buffer. Pages are pinned FOLL_LONGTERM (the card
 * may hold them for a while) and FOLL_WRITE when the device writes them.
 */
struct metis_umap {
	struct device *dev;
	struct page **pages;
	unsigned long npages;
	/* The pinning process's mm while `locked` pages are charged to its RLIMIT_MEMLOCK. */
	struct mm_struct *mm;
	unsigned long locked;
	struct sg_table sgt;
	enum dma_data_direction dir;
	bool mapped;
	/* Some entry is bounced or the device is not cache-coherent: syncs do work. */
	bool need_sync;
};

void metis_shim_umap_destroy(struct metis_umap *um)
{
	if (!um)
		return;
	if (um->mapped)
		dma_unmap_sgtable(um->dev, &um->sgt, um->dir, 0);
	if (um->sgt.sgl)
		sg_free_table(&um->sgt);
	if (um->npages)
		unpin_user_pages_dirty_lock(um->pages, um->npages, um->dir != DMA_TO_DEVICE);
	if (um->mm) {
		/* An mm whose process is gone has no limit left to give back to. */
		if (um->locked && mmget_not_zero(um->mm)) {
			account_locked_vm(um->mm, um->locked, false);
			mmput(um->mm);
		}
		mmdrop(um->mm);
	}
	kvfree(um->pages);
	if (um->dev)
		put_device(um->dev);
	kfree(um);
}

/*
 * Pins [uaddr, uaddr + len) of the current process for `access`
 * (METIS_UMAP_CARD_READS: DMA_TO_DEVICE, METIS_UMAP_CARD_WRITES:
 * DMA_FROM_DEVICE, both: DMA_BIDIRECTIONAL, for a registered buffer) and
 * builds its table in segments of at most `max_seg` bytes. Not mapped yet:
 * pinning may fault and sleep for as long as the caller's memory takes
 * (userfaultfd, FUSE), so it happens before the card is held (security
 * review M4); metis_shim_umap_map maps it once it is.
 */
struct metis_umap *metis_shim_umap_pin(unsigned long uaddr, size_t len, unsigned int access,
				       unsigned int max_seg, int *err)
{
	bool writes = access & METIS_UMAP_CARD_WRITES;
	unsigned long first = uaddr >> PAGE_SHIFT;
	unsigned long last, npages, done = 0;
	unsigned int gup = FOLL_LONGTERM | (writes ? FOLL_WRITE : 0);
	struct metis_umap *um;
	int ret;

	if (!len || uaddr + len < uaddr || !access ||
	    (access & ~(METIS_UMAP_CARD_READS | METIS_UMAP_CARD_WRITES))) {
		*err = -EINVAL;
		return NULL;
	}
	last = (uaddr + len - 1) >> PAGE_SHIFT;
	npages = last - first + 1;
	if (npages > INT_MAX) {
		*err = -EINVAL;
		return NULL;
	}
	um = kzalloc(sizeof(*um), GFP_KERNEL);
	if (!um) {
		*err = -ENOMEM;
		return NULL;
	}
	um->dir = !writes ? DMA_TO_DEVICE :
		  (access & METIS_UMAP_CARD_READS) ? DMA_BIDIRECTIONAL : DMA_FROM_DEVICE;
	um->pages = kvmalloc_array(npages, sizeof(*um->pages), GFP_KERNEL);
	if (!um->pages) {
		ret = -ENOMEM;
		goto fail;
	}
	/*
	 * Long-term pins are locked memory: charged to RLIMIT_MEMLOCK like VFIO's
	 * and io_uring's (CAP_IPC_LOCK is exempt), before anything is pinned.
	 */
	mmgrab(current->mm);
	um->mm = current->mm;
	ret = account_locked_vm(um->mm, npages, true);
	if (ret)
		goto fail;
	um->locked = npages;
	while (done < npages) {
		ret = pin_user_pages_fast((first + done) << PAGE_SHIFT, npages - done, gup,
					  um->pages + done);
		if (ret <= 0) {
			ret = ret ? ret : -EFAULT;
			goto fail;
		}
		done += ret;
		um->npages = done;
	}
	ret = sg_alloc_table_from_pages_segment(&um->sgt, um->pages, npages, offset_in_page(uaddr),
						len, max_seg, GFP_KERNEL);
	if (ret)
		goto fail;
	return um;
fail:
	metis_shim_umap_destroy(um);
	*err = ret;
	return NULL;
}

/* Maps a pinned buffer for `dev` (bound); on failure `um` stays for destroy. */
int metis_shim_umap_map(struct metis_umap *um, struct device *dev)
{
	struct scatterlist *sg;
	unsigned int i;
	int ret;

	um->dev = get_device(dev);
	ret = dma_map_sgtable(dev, &um->sgt, um->dir, 0);
	if (ret)
		return ret;
	um->mapped = true;
	for_each_sgtable_dma_sg(&um->sgt, sg, i)
		um->need_sync |= dma_need_sync(dev, sg_dma_address(sg));
	return 0;
}

struct sg_table *metis_shim_umap_sgt(struct metis_umap *um)
{
	return &um->sgt;
}

/*
 * Hands a mapped buffer that stays mapped (a registered one) to the card
 * (for_cpu false: before a job) or back to the CPU (after a job the card
 * wrote). The table is synced whole: DMA-API debugging holds a table to the
 * entry count it was mapped with. A cache-coherent device without bounce
 * buffers needs nothing, which the mapping found out once (dma_need_sync).
 */
void metis_shim_umap_sync(struct metis_umap *um, bool for_cpu)
{
	if (!um->mapped || !um->need_sync)
		return;
	if (for_cpu)
		dma_sync_sgtable_for_cpu(um->dev, &um->sgt, um->dir);
	else
		dma_sync_sgtable_for_device(um->dev, &um->sgt, um->dir);
}

/*
 * Missing: runtime PM (pm_runtime_* are static inlines over __pm_runtime_*).
 * The PCI core holds a runtime-PM reference across probe; at the
 * end of probe it is handed back with autosuspend, and the card can suspend
 * only if autosuspend_ms >= 0 (otherwise runtime PM stays forbidden, the PCI
 * default). Files hold the card awake (metis_shim_rpm_get/put).
 */
void metis_shim_rpm_enable(struct device *dev, int autosuspend_ms)
{
	pm_runtime_set_autosuspend_delay(dev, autosuspend_ms < 0 ? 0 : autosuspend_ms);
	pm_runtime_use_autosuspend(dev);
	pm_runtime_mark_last_busy(dev);
	pm_runtime_put_autosuspend(dev);
	if (autosuspend_ms >= 0)
		pm_runtime_allow(dev);
}

/* Unbind: undo metis_shim_rpm_enable; `held` says whether open files still hold a reference. */
void metis_shim_rpm_disable(struct device *dev, int autosuspend_ms, bool held)
{
	if (autosuspend_ms >= 0)
		pm_runtime_forbid(dev);
	pm_runtime_dont_use_autosuspend(dev);
	if (!held)
		pm_runtime_get_noresume(dev);
}

/*
 * A reference that keeps the card awake, its resume only queued: `open`
 * runs under the misc core's global lock and must not wait for a firmware
 * boot there (security review M2). Calls on the file wait for the resume in
 * the card's gate instead. Only a runtime PM error is an error here.
 */
int metis_shim_rpm_get(struct device *dev)
{
	int ret = pm_runtime_get(dev);

	if (ret < 0 && ret != -EINPROGRESS) {
		pm_runtime_put_noidle(dev);
		return ret;
	}
	return 0;
}

/* Never wakes the card: a reference only if it is active now (always, without runtime PM). */
bool metis_shim_rpm_get_if_active(struct device *dev)
{
	if (!IS_ENABLED(CONFIG_PM))
		return true;
	return pm_runtime_get_if_active(dev) > 0;
}

void metis_shim_rpm_put(struct device *dev)
{
	pm_runtime_mark_last_busy(dev);
	pm_runtime_put_autosuspend(dev);
}

/*
 * Missing: alloc_workqueue (a macro over a variadic function). The driver's
 * own queue for async DMA jobs: unbound, since a job sleeps for its whole
 * transfer; at most METIS_JOB_WQ_ACTIVE run at once, the rest wait in the
 * queue without a thread each; not freezable, since system sleep fails the
 * jobs itself (a frozen job would hold its seat in the card's gate).
 */
#define METIS_JOB_WQ_ACTIVE 16

struct workqueue_struct *metis_shim_job_wq_create(void)
{
	return alloc_workqueue("metis_jobs", WQ_UNBOUND, METIS_JOB_WQ_ACTIVE);
}
