// SPDX-License-Identifier: GPL-2.0
/*
 * dma-buf glue for the metis driver: the exporter of host buffers the card
 * can DMA (any importer may attach), and the importer side that maps a
 * dma-buf from any exporter for the card. Called from drivers/metis/glue.rs
 * (`ExportedBuf`, `DmaBufMap`); the 7.3 Rust abstractions have no dma-buf
 * support.
 */
#include <linux/dma-buf.h>
#include <linux/dma-fence.h>
#include <linux/dma-resv.h>
#include <linux/file.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include <metis/shim.h>

MODULE_IMPORT_NS("DMA_BUF");

/*
 * An exported buffer: whole pages, allocated one by one (the card takes any
 * 64-bit DMA address, so there is no need for contiguous memory). It owns no
 * reference to the card, so it outlives the card's unbind; the dma-buf holds
 * the module.
 */
struct metis_xbuf {
	struct mutex lock;		/* attachments, vmap */
	struct list_head attachments;
	struct page **pages;
	unsigned long npages;
	void *vaddr;
	unsigned int vmap_count;
	unsigned long charged;		/* pages counted in metis_xbuf_pages */
};

/* Pages of every exported buffer alive, against a cap of half the RAM (M3). */
static atomic_long_t metis_xbuf_pages = ATOMIC_LONG_INIT(0);

static unsigned long metis_xbuf_cap(void)
{
	return totalram_pages() / 2;
}

/* One importer device's view: its own table, mapped for its own device. */
struct metis_xattach {
	struct list_head node;
	struct device *dev;
	struct sg_table sgt;
	bool mapped;			/* under the buffer's lock */
	enum dma_data_direction dir;	/* of the mapping, while mapped */
};

static void metis_xbuf_free(struct metis_xbuf *xb)
{
	for (unsigned long i = 0; i < xb->npages; i++)
		__free_page(xb->pages[i]);
	atomic_long_sub(xb->charged, &metis_xbuf_pages);
	kvfree(xb->pages);
	kfree(xb);
}

static int metis_xbuf_attach(struct dma_buf *buf, struct dma_buf_attachment *att)
{
	struct metis_xbuf *xb = buf->priv;
	struct metis_xattach *a = kzalloc(sizeof(*a), GFP_KERNEL);
	int ret;

	if (!a)
		return -ENOMEM;
	/* Segments no longer than the importer can take (DMA-API debug checks it). */
	ret = sg_alloc_table_from_pages_segment(&a->sgt, xb->pages, xb->npages, 0,
						xb->npages << PAGE_SHIFT,
						dma_get_max_seg_size(att->dev), GFP_KERNEL);
	if (ret) {
		kfree(a);
		return ret;
	}
	a->dev = att->dev;
	att->priv = a;
	mutex_lock(&xb->lock);
	list_add(&a->node, &xb->attachments);
	mutex_unlock(&xb->lock);
	return 0;
}

static void metis_xbuf_detach(struct dma_buf *buf, struct dma_buf_attachment *att)
{
	struct metis_xbuf *xb = buf->priv;
	struct metis_xattach *a = att->priv;

	mutex_lock(&xb->lock);
	list_del(&a->node);
	mutex_unlock(&xb->lock);
	sg_free_table(&a->sgt);
	kfree(a);
}

static struct sg_table *metis_xbuf_map(struct dma_buf_attachment *att,
				       enum dma_data_direction dir)
{
	struct metis_xbuf *xb = att->dmabuf->priv;
	struct metis_xattach *a = att->priv;
	int ret = dma_map_sgtable(att->dev, &a->sgt, dir, 0);

	if (ret)
		return ERR_PTR(ret);
	mutex_lock(&xb->lock);
	a->dir = dir;
	a->mapped = true;
	mutex_unlock(&xb->lock);
	return &a->sgt;
}

static void metis_xbuf_unmap(struct dma_buf_attachment *att, struct sg_table *sgt,
			     enum dma_data_direction dir)
{
	struct metis_xbuf *xb = att->dmabuf->priv;
	struct metis_xattach *a = att->priv;

	/* No CPU-access bracket syncs a mapping that is going away. */
	mutex_lock(&xb->lock);
	a->mapped = false;
	mutex_unlock(&xb->lock);
	dma_unmap_sgtable(att->dev, sgt, dir, 0);
}

/*
 * CPU access brackets: hand the pages to the CPU from every device that maps
 * them, and back. Each mapping is synced in its own direction, not the CPU's:
 * with bounce buffers (swiotlb), syncing a device-read mapping for the CPU
 * would copy stale bounce data over what the CPU wrote.
 */
static int metis_xbuf_begin_cpu(struct dma_buf *buf, enum dma_data_direction dir)
{
	struct metis_xbuf *xb = buf->priv;
	struct metis_xattach *a;

	mutex_lock(&xb->lock);
	if (xb->vaddr)
		invalidate_kernel_vmap_range(xb->vaddr, xb->npages << PAGE_SHIFT);
	list_for_each_entry(a, &xb->attachments, node)
		if (a->mapped)
			dma_sync_sgtable_for_cpu(a->dev, &a->sgt, a->dir);
	mutex_unlock(&xb->lock);
	return 0;
}

static int metis_xbuf_end_cpu(struct dma_buf *buf, enum dma_data_direction dir)
{
	struct metis_xbuf *xb = buf->priv;
	struct metis_xattach *a;

	mutex_lock(&xb->lock);
	if (xb->vaddr)
		flush_kernel_vmap_range(xb->vaddr, xb->npages << PAGE_SHIFT);
	list_for_each_entry(a, &xb->attachments, node)
		if (a->mapped)
			dma_sync_sgtable_for_device(a->dev, &a->sgt, a->dir);
	mutex_unlock(&xb->lock);
	return 0;
}

/* Ordinary cacheable pages: userspace brackets CPU access with DMA_BUF_IOCTL_SYNC. */
static int metis_xbuf_mmap(struct dma_buf *buf, struct vm_area_struct *vma)
{
	struct metis_xbuf *xb = buf->priv;

	return vm_map_pages(vma, xb->pages, xb->npages);
}

static int metis_xbuf_vmap(struct dma_buf *buf, struct iosys_map *map)
{
	struct metis_xbuf *xb = buf->priv;
	int ret = 0;

	mutex_lock(&xb->lock);
	if (!xb->vmap_count) {
		xb->vaddr = vmap(xb->pages, xb->npages, VM_MAP, PAGE_KERNEL);
		if (!xb->vaddr)
			ret = -ENOMEM;
	}
	if (!ret) {
		xb->vmap_count++;
		iosys_map_set_vaddr(map, xb->vaddr);
	}
	mutex_unlock(&xb->lock);
	return ret;
}

static void metis_xbuf_vunmap(struct dma_buf *buf, struct iosys_map *map)
{
	struct metis_xbuf *xb = buf->priv;

	mutex_lock(&xb->lock);
	if (!--xb->vmap_count) {
		vunmap(xb->vaddr);
		xb->vaddr = NULL;
	}
	mutex_unlock(&xb->lock);
	iosys_map_clear(map);
}

static void metis_xbuf_release(struct dma_buf *buf)
{
	metis_xbuf_free(buf->priv);
}

static const struct dma_buf_ops metis_xbuf_ops = {
	.attach = metis_xbuf_attach,
	.detach = metis_xbuf_detach,
	.map_dma_buf = metis_xbuf_map,
	.unmap_dma_buf = metis_xbuf_unmap,
	.begin_cpu_access = metis_xbuf_begin_cpu,
	.end_cpu_access = metis_xbuf_end_cpu,
	.mmap = metis_xbuf_mmap,
	.vmap = metis_xbuf_vmap,
	.vunmap = metis_xbuf_vunmap,
	.release = metis_xbuf_release,
};

/*
 * Allocates `len` bytes (a whole number of pages, checked by the caller) and
 * exports them as a dma-buf opened with `fd_flags` (O_RDONLY, O_WRONLY or
 * O_RDWR). `*fd` receives an O_CLOEXEC fd that is reserved but not installed:
 * the caller installs it (metis_shim_dmabuf_install) once the fd's number
 * has reached userspace, or gives both up (metis_shim_dmabuf_abandon); an
 * installed fd could not be taken back (security review L3). Returns NULL
 * with `*err` set on failure.
 */
struct dma_buf *metis_shim_dmabuf_export(size_t len, int fd_flags, int *fd, int *err)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct metis_xbuf *xb;
	struct dma_buf *buf;
	int ret;

	*err = -EINVAL;
	if (!len || !PAGE_ALIGNED(len))
		return NULL;
	*err = -ENOMEM;
	xb = kzalloc(sizeof(*xb), GFP_KERNEL);
	if (!xb)
		return NULL;
	mutex_init(&xb->lock);
	INIT_LIST_HEAD(&xb->attachments);
	xb->pages = kvcalloc(len >> PAGE_SHIFT, sizeof(*xb->pages), GFP_KERNEL_ACCOUNT);
	if (!xb->pages) {
		kfree(xb);
		return NULL;
	}
	/*
	 * Charged to the caller's memory cgroup (as dma-heaps do), within the
	 * driver-wide cap, and given up when the caller is being killed: the
	 * pages are the caller's memory, not the kernel's.
	 */
	if (atomic_long_add_return(len >> PAGE_SHIFT, &metis_xbuf_pages) > metis_xbuf_cap()) {
		atomic_long_sub(len >> PAGE_SHIFT, &metis_xbuf_pages);
		kvfree(xb->pages);
		kfree(xb);
		return NULL;
	}
	xb->charged = len >> PAGE_SHIFT;
	for (; xb->npages < (len >> PAGE_SHIFT); xb->npages++) {
		if (fatal_signal_pending(current)) {
			metis_xbuf_free(xb);
			*err = -EINTR;
			return NULL;
		}
		/*
		 * RETRY_MAYFAIL: over its memory cgroup's limit the caller gets ENOMEM,
		 * not the cgroup's OOM killer.
		 */
		xb->pages[xb->npages] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN |
						   __GFP_RETRY_MAYFAIL);
		if (!xb->pages[xb->npages]) {
			metis_xbuf_free(xb);
			return NULL;
		}
		cond_resched();
	}
	info.ops = &metis_xbuf_ops;
	info.size = len;
	info.flags = fd_flags;
	info.priv = xb;
	buf = dma_buf_export(&info);
	if (IS_ERR(buf)) {
		metis_xbuf_free(xb);
		*err = PTR_ERR(buf);
		return NULL;
	}
	ret = get_unused_fd_flags(O_CLOEXEC);
	if (ret < 0) {
		dma_buf_put(buf);	/* releases xb through .release */
		*err = ret;
		return NULL;
	}
	*fd = ret;
	return buf;
}

/* Gives the buffer its reserved fd: from here on the caller's process owns it. */
void metis_shim_dmabuf_install(struct dma_buf *buf, int fd)
{
	fd_install(fd, buf->file);
}

/* The fd's number could not reach userspace: the fd and the buffer go. */
void metis_shim_dmabuf_abandon(struct dma_buf *buf, int fd)
{
	put_unused_fd(fd);
	dma_buf_put(buf);
}


/*
 * The card's fence on a dma-buf it works on (implicit sync): other users of
 * the buffer (a GPU, a display, DMA_BUF_IOCTL_SYNC) wait for it. One context
 * per fence: jobs finish out of order, and fences of one context must not.
 */
struct metis_fence {
	struct dma_fence base;		/* first: the core frees it with kfree_rcu */
	spinlock_t lock;
};

static const char *metis_fence_driver_name(struct dma_fence *f)
{
	return "metis";
}

static const char *metis_fence_timeline_name(struct dma_fence *f)
{
	return "dma";
}

static const struct dma_fence_ops metis_fence_ops = {
	.get_driver_name = metis_fence_driver_name,
	.get_timeline_name = metis_fence_timeline_name,
};

/*
 * A dma-buf from any exporter a job works on, and the card's fence on it; the
 * card's mapping of it is a struct metis_dattach, kept across jobs.
 */
struct metis_dmap {
	struct dma_buf *buf;
	struct metis_fence *fence;
	enum dma_data_direction dir;
};

/* The job is done with the buffer: its fence signals (with `result` if < 0). */
void metis_shim_dmabuf_unmap(struct metis_dmap *dm, int result)
{
	if (!dm)
		return;
	if (dm->fence) {
		if (result < 0)
			dma_fence_set_error(&dm->fence->base, result);
		dma_fence_signal(&dm->fence->base);
		dma_fence_put(&dm->fence->base);
	}
	dma_buf_put(dm->buf);
	kfree(dm);
}

/*
 * Waits (interruptibly, up to `*left` jiffies, which it lowers) until every
 * fence the card's access must follow has signalled, then publishes the
 * card's own fence, in one hold of the reservation lock so that nothing can
 * slip in between. A card read follows writers; a card write follows
 * everyone.
 */
static int metis_dmap_fence(struct metis_dmap *dm, long *left)
{
	struct dma_resv *resv = dm->buf->resv;
	bool write = dm->dir == DMA_FROM_DEVICE;
	enum dma_resv_usage wait_for = dma_resv_usage_rw(write);
	struct metis_fence *f;
	int ret;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	spin_lock_init(&f->lock);
	for (;;) {
		long t = dma_resv_wait_timeout(resv, wait_for, true, *left);

		if (t < 0) {
			ret = t;
			goto fail;
		}
		if (!t) {
			ret = -ETIMEDOUT;
			goto fail;
		}
		*left = t;
		ret = dma_resv_lock_interruptible(resv, NULL);
		if (ret)
			goto fail;
		if (!dma_resv_test_signaled(resv, wait_for)) {
			/* A fence arrived after the wait: wait for it too. */
			dma_resv_unlock(resv);
			continue;
		}
		ret = dma_resv_reserve_fences(resv, 1);
		if (ret) {
			dma_resv_unlock(resv);
			goto fail;
		}
		dma_fence_init(&f->base, &metis_fence_ops, &f->lock, dma_fence_context_alloc(1), 1);
		dma_resv_add_fence(resv, &f->base,
				   write ? DMA_RESV_USAGE_WRITE : DMA_RESV_USAGE_READ);
		dma_resv_unlock(resv);
		dm->fence = f;
		return 0;
	}
fail:
	kfree(f);
	return ret;
}

/*
 * Takes over the reference `buf` comes with, for `to_device` (the card reads
 * it) or not (the card writes it): the fd it came through must be open for
 * that access. Waits up to `timeout` jiffies for the buffer's other users,
 * then publishes the card's fence (signalled by metis_shim_dmabuf_unmap).
 * Nothing of the card is involved yet. `*size` receives the buffer's size.
 */
static struct metis_dmap *metis_dmap_take(struct dma_buf *buf, bool to_device, long timeout,
					  u64 *size, int *err)
{
	struct metis_dmap *dm = kzalloc(sizeof(*dm), GFP_KERNEL);
	fmode_t need = to_device ? FMODE_READ : FMODE_WRITE;
	int ret;

	if (!dm) {
		dma_buf_put(buf);
		*err = -ENOMEM;
		return NULL;
	}
	dm->buf = buf;
	dm->dir = to_device ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	/* Every fd of a dma-buf is its one file: its mode is the fd's (security review L1). */
	if (!(buf->file->f_mode & need)) {
		ret = -EBADF;
		goto fail;
	}
	ret = metis_dmap_fence(dm, &timeout);
	if (ret)
		goto fail;
	*size = buf->size;
	return dm;
fail:
	metis_shim_dmabuf_unmap(dm, ret);
	*err = ret;
	return NULL;
}

/* The dma-buf behind `fd`, taken as metis_dmap_take says. */
struct metis_dmap *metis_shim_dmabuf_get(int fd, bool to_device, long timeout, u64 *size,
					 int *err)
{
	struct dma_buf *buf = dma_buf_get(fd);

	if (IS_ERR(buf)) {
		*err = PTR_ERR(buf);
		return NULL;
	}
	return metis_dmap_take(buf, to_device, timeout, size, err);
}

/*
 * A dma-buf the caller holds a reference to (metis_shim_dmabuf_hold), taken
 * for one job with a reference of the job's own.
 */
struct metis_dmap *metis_shim_dmabuf_get_held(struct dma_buf *buf, bool to_device, long timeout,
					      u64 *size, int *err)
{
	get_dma_buf(buf);
	return metis_dmap_take(buf, to_device, timeout, size, err);
}

/* A reference to the dma-buf behind `fd`, kept across calls (the vendor ABI's DMA_ATTACH). */
struct dma_buf *metis_shim_dmabuf_hold(int fd, int *err)
{
	struct dma_buf *buf = dma_buf_get(fd);

	if (IS_ERR(buf)) {
		*err = PTR_ERR(buf);
		return NULL;
	}
	return buf;
}

void metis_shim_dmabuf_release(struct dma_buf *buf)
{
	dma_buf_put(buf);
}

/*
 * The identity of the dma-buf behind `dm`: the key of the card's attachment
 * cache. Stable while anything holds the buffer, and a cached attachment
 * holds it, so the address is not reused for another buffer meanwhile.
 */
unsigned long metis_shim_dmabuf_id(struct metis_dmap *dm)
{
	return (unsigned long)dm->buf;
}

/* A dma-buf attached to the card and mapped for one direction, kept across jobs. */
struct metis_dattach {
	struct dma_buf *buf;
	struct dma_buf_attachment *att;
	struct sg_table *sgt;
	enum dma_data_direction dir;
};

void metis_shim_dattach_destroy(struct metis_dattach *a)
{
	if (!a)
		return;
	if (a->sgt)
		dma_buf_unmap_attachment_unlocked(a->att, a->sgt, a->dir);
	if (a->att)
		dma_buf_detach(a->buf, a->att);
	dma_buf_put(a->buf);
	kfree(a);
}

/*
 * Whether the fd the buffer was taken through is open for reading and writing:
 * then the card may be given both directions at once, and its mapping kept.
 */
bool metis_shim_dmabuf_rw(struct metis_dmap *dm)
{
	return (dm->buf->file->f_mode & (FMODE_READ | FMODE_WRITE)) ==
	       (FMODE_READ | FMODE_WRITE);
}

/*
 * Attaches `dev` (bound) to the buffer behind `dm` and maps it for the card,
 * with a reference of its own to the buffer: in the direction `dm` was taken
 * for, or in both (`both`, for a mapping the card's attachment cache keeps
 * across jobs of either direction: exporters such as the system heap sync
 * every mapping in the direction of the CPU's access, which DMA-API debugging
 * allows only on a bidirectional mapping).
 */
struct metis_dattach *metis_shim_dattach_new(struct metis_dmap *dm, struct device *dev, bool both,
					     int *err)
{
	struct metis_dattach *a = kzalloc(sizeof(*a), GFP_KERNEL);
	int ret;

	if (!a) {
		*err = -ENOMEM;
		return NULL;
	}
	get_dma_buf(dm->buf);
	a->buf = dm->buf;
	a->dir = both ? DMA_BIDIRECTIONAL : dm->dir;
	a->att = dma_buf_attach(a->buf, dev);
	if (IS_ERR(a->att)) {
		ret = PTR_ERR(a->att);
		a->att = NULL;
		goto fail;
	}
	a->sgt = dma_buf_map_attachment_unlocked(a->att, a->dir);
	if (IS_ERR(a->sgt)) {
		ret = PTR_ERR(a->sgt);
		a->sgt = NULL;
		goto fail;
	}
	return a;
fail:
	metis_shim_dattach_destroy(a);
	*err = ret;
	return NULL;
}

struct sg_table *metis_shim_dattach_sgt(struct metis_dattach *a)
{
	return a->sgt;
}

/* Module exit: readers of signalled fences' names are done (dma-fence.c's rule for modules). */
void metis_shim_dmabuf_exit(void)
{
	synchronize_rcu();
}
