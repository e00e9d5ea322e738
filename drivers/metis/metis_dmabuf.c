// SPDX-License-Identifier: GPL-2.0
/*
 * dma-buf glue for the metis driver: the exporter of host buffers the card
 * can DMA (any importer may attach), and the importer side that maps a
 * dma-buf from any exporter for the card. Called from drivers/metis/glue.rs
 * (`dmabuf_export`, `DmaBufMap`); the 7.3 Rust abstractions have no dma-buf
 * support.
 */
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
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
	bool mapped;
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
	ret = sg_alloc_table_from_pages(&a->sgt, xb->pages, xb->npages, 0,
					xb->npages << PAGE_SHIFT, GFP_KERNEL);
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
	struct metis_xattach *a = att->priv;
	int ret = dma_map_sgtable(att->dev, &a->sgt, dir, 0);

	if (ret)
		return ERR_PTR(ret);
	a->mapped = true;
	return &a->sgt;
}

static void metis_xbuf_unmap(struct dma_buf_attachment *att, struct sg_table *sgt,
			     enum dma_data_direction dir)
{
	struct metis_xattach *a = att->priv;

	a->mapped = false;
	dma_unmap_sgtable(att->dev, sgt, dir, 0);
}

/* CPU access brackets: hand the pages to the CPU from every device that maps them, and back. */
static int metis_xbuf_begin_cpu(struct dma_buf *buf, enum dma_data_direction dir)
{
	struct metis_xbuf *xb = buf->priv;
	struct metis_xattach *a;

	mutex_lock(&xb->lock);
	if (xb->vaddr)
		invalidate_kernel_vmap_range(xb->vaddr, xb->npages << PAGE_SHIFT);
	list_for_each_entry(a, &xb->attachments, node)
		if (a->mapped)
			dma_sync_sgtable_for_cpu(a->dev, &a->sgt, dir);
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
			dma_sync_sgtable_for_device(a->dev, &a->sgt, dir);
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
 * returns an O_CLOEXEC dma-buf fd opened with `fd_flags` (O_RDONLY, O_WRONLY
 * or O_RDWR), or a negative errno.
 */
int metis_shim_dmabuf_export(size_t len, int fd_flags)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct metis_xbuf *xb;
	struct dma_buf *buf;
	int fd;

	if (!len || !PAGE_ALIGNED(len))
		return -EINVAL;
	xb = kzalloc(sizeof(*xb), GFP_KERNEL);
	if (!xb)
		return -ENOMEM;
	mutex_init(&xb->lock);
	INIT_LIST_HEAD(&xb->attachments);
	xb->pages = kvcalloc(len >> PAGE_SHIFT, sizeof(*xb->pages), GFP_KERNEL_ACCOUNT);
	if (!xb->pages) {
		kfree(xb);
		return -ENOMEM;
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
		return -ENOMEM;
	}
	xb->charged = len >> PAGE_SHIFT;
	for (; xb->npages < (len >> PAGE_SHIFT); xb->npages++) {
		if (fatal_signal_pending(current)) {
			metis_xbuf_free(xb);
			return -EINTR;
		}
		xb->pages[xb->npages] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN);
		if (!xb->pages[xb->npages]) {
			metis_xbuf_free(xb);
			return -ENOMEM;
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
		return PTR_ERR(buf);
	}
	fd = dma_buf_fd(buf, fd_flags | O_CLOEXEC);
	if (fd < 0)
		dma_buf_put(buf);	/* releases xb through .release */
	return fd;
}

/* A dma-buf from any exporter, attached to and mapped for the card. */
struct metis_dmap {
	struct dma_buf *buf;
	struct dma_buf_attachment *att;
	struct sg_table *sgt;
	enum dma_data_direction dir;
};

void metis_shim_dmabuf_unmap(struct metis_dmap *dm)
{
	if (!dm)
		return;
	if (dm->sgt)
		dma_buf_unmap_attachment_unlocked(dm->att, dm->sgt, dm->dir);
	if (dm->att)
		dma_buf_detach(dm->buf, dm->att);
	dma_buf_put(dm->buf);
	kfree(dm);
}

/*
 * Takes a reference to the dma-buf behind `fd`, attaches `dev` and maps it
 * for `to_device` (the card reads it) or not (the card writes it). `*size`
 * receives the buffer's size.
 */
struct metis_dmap *metis_shim_dmabuf_map(struct device *dev, int fd, bool to_device,
					 u64 *size, int *err)
{
	struct metis_dmap *dm = kzalloc(sizeof(*dm), GFP_KERNEL);
	struct dma_buf *buf;
	int ret;

	if (!dm) {
		*err = -ENOMEM;
		return NULL;
	}
	buf = dma_buf_get(fd);
	if (IS_ERR(buf)) {
		kfree(dm);
		*err = PTR_ERR(buf);
		return NULL;
	}
	dm->buf = buf;
	dm->dir = to_device ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	dm->att = dma_buf_attach(buf, dev);
	if (IS_ERR(dm->att)) {
		ret = PTR_ERR(dm->att);
		dm->att = NULL;
		goto fail;
	}
	dm->sgt = dma_buf_map_attachment_unlocked(dm->att, dm->dir);
	if (IS_ERR(dm->sgt)) {
		ret = PTR_ERR(dm->sgt);
		dm->sgt = NULL;
		goto fail;
	}
	*size = buf->size;
	return dm;
fail:
	metis_shim_dmabuf_unmap(dm);
	*err = ret;
	return NULL;
}

struct sg_table *metis_shim_dmabuf_sgt(struct metis_dmap *dm)
{
	return dm->sgt;
}
