// SPDX-License-Identifier: GPL-2.0
/*
 * C glue for the metis driver: the kernel APIs that the 7.3 Rust
 * abstractions do not reach (static inlines, macros, or types bindgen left
 * opaque). Every function takes and returns scalars or pointers to types the
 * Rust `kernel::bindings` already knows, so there is one definition of every
 * struct. The Rust side is drivers/metis/glue.rs.
 */
#include <linux/dma-mapping.h>
#include <linux/moduleparam.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kobject.h>
#include <linux/pm.h>
#include <linux/pm_runtime.h>
#include <linux/poll.h>
#include <linux/iommu.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/msi.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include <metis/shim.h>

/*
 * Module parameters that can't be declared in Rust (strings) or whose
 * description reads better next to each other.
 */
static char *firmware;
module_param(firmware, charp, 0444);
MODULE_PARM_DESC(firmware, "Firmware file under /lib/firmware (default axelera/metis-fw-if1.bin)");

static int irq_mode;
module_param(irq_mode, int, 0444);
MODULE_PARM_DESC(irq_mode, "Interrupt mode: 0 auto (MSI-X, MSI, INTx, polling), 1 MSI-X, 2 MSI, 3 INTx, 4 polling");

static int fw_owner;
module_param(fw_owner, int, 0444);
MODULE_PARM_DESC(fw_owner, "Who loads the card's firmware: 0 auto (the driver, when the card's bootloader advertises the boot protocol it implements; else userspace), 1 the driver, 2 userspace (the vendor runtime)");

static int autosuspend_ms = -1;
module_param(autosuspend_ms, int, 0444);
MODULE_PARM_DESC(autosuspend_ms, "Runtime PM: put a card nobody has open into D3hot after this many ms idle; -1 (default) keeps it powered (a wake costs a firmware boot on cards that lose it in D3hot)");

const char *metis_shim_firmware_name(void)
{
	return firmware;
}

int metis_shim_irq_mode_param(void)
{
	return irq_mode;
}

int metis_shim_fw_owner_param(void)
{
	return fw_owner;
}

/* The MSI message the kernel composed for vector `vec` (the IMWR target). */
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

/* 0: no IOMMU, 1: identity (passthrough) domain, 2: translating domain. */
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
 * A pinned, DMA-mapped user buffer. Pages are pinned FOLL_LONGTERM (the card
 * may hold them for a while) and FOLL_WRITE when the device writes them.
 */
struct metis_umap {
	struct device *dev;
	struct page **pages;
	unsigned long npages;
	struct sg_table sgt;
	enum dma_data_direction dir;
	bool mapped;
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
		unpin_user_pages_dirty_lock(um->pages, um->npages, um->dir == DMA_FROM_DEVICE);
	kvfree(um->pages);
	put_device(um->dev);
	kfree(um);
}

/*
 * Pins [uaddr, uaddr + len) and maps it for `to_device` (true: the card reads
 * it, DMA_TO_DEVICE) or not (the card writes it, DMA_FROM_DEVICE).
 */
struct metis_umap *metis_shim_umap_create(struct device *dev, unsigned long uaddr, size_t len,
					  bool to_device, int *err)
{
	unsigned long first = uaddr >> PAGE_SHIFT;
	unsigned long last, npages, done = 0;
	unsigned int gup = FOLL_LONGTERM | (to_device ? 0 : FOLL_WRITE);
	struct metis_umap *um;
	int ret;

	if (!len || uaddr + len < uaddr) {
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
	um->dev = get_device(dev);
	um->dir = to_device ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	um->pages = kvmalloc_array(npages, sizeof(*um->pages), GFP_KERNEL);
	if (!um->pages) {
		ret = -ENOMEM;
		goto fail;
	}
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
						len, dma_get_max_seg_size(dev), GFP_KERNEL);
	if (ret)
		goto fail;
	ret = dma_map_sgtable(dev, &um->sgt, um->dir, 0);
	if (ret)
		goto fail;
	um->mapped = true;
	return um;
fail:
	metis_shim_umap_destroy(um);
	*err = ret;
	return NULL;
}

struct sg_table *metis_shim_umap_sgt(struct metis_umap *um)
{
	return &um->sgt;
}

/*
 * The character device /dev/metisN. The file operations are thin: each
 * forwards to the Rust implementation in drivers/metis/file.rs, which owns
 * the per-open state (file->private_data after open).
 */
struct metis_cdev {
	struct miscdevice misc;
	char name[16];
	int index;
	const void *card;	/* an Arc<Card> reference owned by the Rust side */
};

static DEFINE_IDA(metis_ida);

static int metis_fop_open(struct inode *inode, struct file *file)
{
	/* misc_open() set private_data to our miscdevice and holds misc_mtx. */
	struct metis_cdev *cd = container_of(file->private_data, struct metis_cdev, misc);
	int err = 0;
	void *priv = metis_rust_open(cd->card, &err);

	if (!priv)
		return err;
	file->private_data = priv;
	return 0;
}

static int metis_fop_release(struct inode *inode, struct file *file)
{
	metis_rust_release(file->private_data);
	return 0;
}

static long metis_fop_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return metis_rust_ioctl(file->private_data, cmd, arg);
}

static __poll_t metis_fop_poll(struct file *file, poll_table *pt)
{
	return (__force __poll_t)metis_rust_poll(file->private_data, file, pt);
}

static const struct file_operations metis_fops = {
	.owner = THIS_MODULE,
	.open = metis_fop_open,
	.release = metis_fop_release,
	.poll = metis_fop_poll,
	.unlocked_ioctl = metis_fop_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

struct metis_cdev *metis_shim_cdev_register(struct device *parent, const void *card, int *err)
{
	struct metis_cdev *cd = kzalloc(sizeof(*cd), GFP_KERNEL);
	int ret;

	if (!cd) {
		*err = -ENOMEM;
		return NULL;
	}
	ret = ida_alloc_max(&metis_ida, 255, GFP_KERNEL);
	if (ret < 0)
		goto free;
	cd->index = ret;
	snprintf(cd->name, sizeof(cd->name), "metis%d", cd->index);
	cd->card = card;
	cd->misc.minor = MISC_DYNAMIC_MINOR;
	cd->misc.name = cd->name;
	cd->misc.fops = &metis_fops;
	cd->misc.parent = parent;
	cd->misc.mode = 0660;
	ret = misc_register(&cd->misc);
	if (ret)
		goto ida;
	return cd;
ida:
	ida_free(&metis_ida, cd->index);
free:
	kfree(cd);
	*err = ret;
	return NULL;
}

/* After this returns no open() is running and none can start. */
void metis_shim_cdev_unregister(struct metis_cdev *cd)
{
	misc_deregister(&cd->misc);
	ida_free(&metis_ida, cd->index);
	kfree(cd);
}

int metis_shim_cdev_index(struct metis_cdev *cd)
{
	return cd->index;
}

/* A "change" uevent that names the reset, so udev rules and daemons can react. */
void metis_shim_notify_firmware_lost(struct device *dev)
{
	char event[] = "METIS_EVENT=FIRMWARE_LOST";
	char *envp[] = { event, NULL };

	kobject_uevent_env(&dev->kobj, KOBJ_CHANGE, envp);
}

void metis_shim_notify_reset(struct device *dev, unsigned int count)
{
	char event[] = "METIS_EVENT=RESET";
	char nr[32];
	char *envp[] = { event, nr, NULL };

	snprintf(nr, sizeof(nr), "METIS_RESET_COUNT=%u", count);
	kobject_uevent_env(&dev->kobj, KOBJ_CHANGE, envp);
}

/*
 * Driver-model callbacks the Rust PCI abstraction does not provide: system
 * sleep, shutdown, resets done by the PCI core for others, and AER. Each
 * forwards the bound device's driver data (the Rust driver's pinned state)
 * to drivers/metis/pm.rs. The data is NULL while probe runs (a reset at probe
 * calls reset_prepare/reset_done): there is nothing to do then.
 */
static int metis_pm_suspend(struct device *dev)
{
	void *data = dev_get_drvdata(dev);

	return data ? metis_rust_suspend(data) : 0;
}

static int metis_pm_resume(struct device *dev)
{
	void *data = dev_get_drvdata(dev);

	return data ? metis_rust_resume(data, false) : 0;
}

static int metis_pm_restore(struct device *dev)
{
	void *data = dev_get_drvdata(dev);

	return data ? metis_rust_resume(data, true) : 0;
}

static int metis_pm_runtime_suspend(struct device *dev)
{
	void *data = dev_get_drvdata(dev);

	return data ? metis_rust_runtime_suspend(data) : 0;
}

static int metis_pm_runtime_resume(struct device *dev)
{
	void *data = dev_get_drvdata(dev);

	return data ? metis_rust_runtime_resume(data) : 0;
}

static const struct dev_pm_ops metis_pm_ops = {
	.runtime_suspend = metis_pm_runtime_suspend,
	.runtime_resume = metis_pm_runtime_resume,
	.suspend = metis_pm_suspend,
	.resume = metis_pm_resume,
	.freeze = metis_pm_suspend,
	.thaw = metis_pm_resume,
	.poweroff = metis_pm_suspend,
	.restore = metis_pm_restore,
};

static void metis_shutdown(struct pci_dev *pdev)
{
	void *data = pci_get_drvdata(pdev);

	if (data)
		metis_rust_shutdown(data);
}

static void metis_reset_prepare(struct pci_dev *pdev)
{
	void *data = pci_get_drvdata(pdev);

	if (data)
		metis_rust_reset_prepare(data);
}

static void metis_reset_done(struct pci_dev *pdev)
{
	void *data = pci_get_drvdata(pdev);

	if (data)
		metis_rust_reset_done(data);
}

static pci_ers_result_t metis_error_detected(struct pci_dev *pdev, pci_channel_state_t state)
{
	void *data = pci_get_drvdata(pdev);

	if (!data)
		return PCI_ERS_RESULT_NONE;
	if (!metis_rust_error_detected(data, state == pci_channel_io_perm_failure))
		return PCI_ERS_RESULT_DISCONNECT;
	return PCI_ERS_RESULT_NEED_RESET;
}

static pci_ers_result_t metis_slot_reset(struct pci_dev *pdev)
{
	/* The link was reset: config space is the card's defaults again. */
	pci_restore_state(pdev);
	pci_save_state(pdev);
	return PCI_ERS_RESULT_RECOVERED;
}

static void metis_err_resume(struct pci_dev *pdev)
{
	void *data = pci_get_drvdata(pdev);

	if (data)
		metis_rust_error_resume(data);
}

static const struct pci_error_handlers metis_err_handlers = {
	.error_detected = metis_error_detected,
	.slot_reset = metis_slot_reset,
	.resume = metis_err_resume,
	.reset_prepare = metis_reset_prepare,
	.reset_done = metis_reset_done,
};

void metis_shim_install_driver_callbacks(struct pci_driver *drv)
{
	drv->driver.pm = pm_ptr(&metis_pm_ops);
	drv->shutdown = metis_shutdown;
	drv->err_handler = &metis_err_handlers;
}

/*
 * Runtime PM. The PCI core holds a runtime-PM reference across probe; at the
 * end of probe it is handed back with autosuspend, and the card can suspend
 * only if autosuspend_ms >= 0 (otherwise runtime PM stays forbidden, the PCI
 * default). Files hold the card awake (metis_shim_rpm_get/put).
 */
void metis_shim_rpm_enable(struct device *dev)
{
	pm_runtime_set_autosuspend_delay(dev, autosuspend_ms < 0 ? 0 : autosuspend_ms);
	pm_runtime_use_autosuspend(dev);
	pm_runtime_mark_last_busy(dev);
	pm_runtime_put_autosuspend(dev);
	if (autosuspend_ms >= 0)
		pm_runtime_allow(dev);
}

/* Unbind: undo metis_shim_rpm_enable; `held` says whether open files still hold a reference. */
void metis_shim_rpm_disable(struct device *dev, bool held)
{
	if (autosuspend_ms >= 0)
		pm_runtime_forbid(dev);
	pm_runtime_dont_use_autosuspend(dev);
	if (!held)
		pm_runtime_get_noresume(dev);
}

int metis_shim_rpm_get(struct device *dev)
{
	return pm_runtime_resume_and_get(dev);
}

void metis_shim_rpm_put(struct device *dev)
{
	pm_runtime_mark_last_busy(dev);
	pm_runtime_put_autosuspend(dev);
}
