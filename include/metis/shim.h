/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Functions of drivers/metis/metis_shim.c and metis_dmabuf.c called from Rust
 * (declared by hand in drivers/metis/glue.rs; keep the two in sync).
 * C calls Rust only through the tables built in drivers/metis/ffi.rs.
 */
#ifndef METIS_SHIM_H
#define METIS_SHIM_H

#include <linux/types.h>

struct device;
struct pci_dev;
struct sg_table;
struct metis_umap;

const char *metis_shim_firmware_name(void);
int metis_shim_msi_msg(struct pci_dev *pdev, unsigned int vec, u64 *addr, u32 *data);
int metis_shim_iommu_mode(struct device *dev);
/* What the card does with a pinned user buffer (metis_shim_umap_pin). */
#define METIS_UMAP_CARD_READS	(1U << 0)
#define METIS_UMAP_CARD_WRITES	(1U << 1)

struct metis_umap *metis_shim_umap_pin(unsigned long uaddr, size_t len, unsigned int access,
				       unsigned int max_seg, int *err);
int metis_shim_umap_map(struct metis_umap *um, struct device *dev);
struct sg_table *metis_shim_umap_sgt(struct metis_umap *um);
void metis_shim_umap_destroy(struct metis_umap *um);
void metis_shim_umap_sync(struct metis_umap *um, bool for_cpu);

struct dma_buf;
struct dma_buf *metis_shim_dmabuf_export(size_t len, int fd_flags, int *fd, int *err);
void metis_shim_dmabuf_install(struct dma_buf *buf, int fd);
void metis_shim_dmabuf_abandon(struct dma_buf *buf, int fd);
struct metis_dmap;
struct metis_dmap *metis_shim_dmabuf_get(int fd, bool to_device, long timeout, u64 *size,
					 int *err);
struct metis_dmap *metis_shim_dmabuf_get_held(struct dma_buf *buf, bool to_device, long timeout,
					      u64 *size, int *err);
struct dma_buf *metis_shim_dmabuf_hold(int fd, int *err);
void metis_shim_dmabuf_release(struct dma_buf *buf);
unsigned long metis_shim_dmabuf_id(struct metis_dmap *dm);
struct metis_dattach;
bool metis_shim_dmabuf_rw(struct metis_dmap *dm);
struct metis_dattach *metis_shim_dattach_new(struct metis_dmap *dm, struct device *dev, bool both,
					     int *err);
struct sg_table *metis_shim_dattach_sgt(struct metis_dattach *a);
void metis_shim_dattach_destroy(struct metis_dattach *a);
void metis_shim_dmabuf_unmap(struct metis_dmap *dm, int result);
void metis_shim_dmabuf_exit(void);

void metis_shim_rpm_enable(struct device *dev, int autosuspend_ms);
void metis_shim_rpm_disable(struct device *dev, int autosuspend_ms, bool held);
int metis_shim_rpm_get(struct device *dev);
bool metis_shim_rpm_get_if_active(struct device *dev);
void metis_shim_rpm_put(struct device *dev);
struct workqueue_struct *metis_shim_job_wq_create(void);

/* metis_vendor.c: the opt-in node with the vendor driver's ABI. */
struct file_operations;
struct inode;
struct metis_vnode;
const char *metis_shim_vendor_abi(void);
int metis_shim_vclass_create(const char *version, const struct file_operations *fops);
void metis_shim_vclass_destroy(void);
struct metis_vnode *metis_shim_vnode_create(const char *name, void *data, void (*put)(void *data),
					    int *err);
void metis_shim_vnode_destroy(struct metis_vnode *n);
void *metis_shim_vnode_data(struct inode *inode);
struct vm_area_struct;
struct vm_fault;
struct vm_operations_struct;
struct address_space;
unsigned long metis_shim_vma_pgoff(struct vm_area_struct *vma);
int metis_shim_vma_io(struct vm_area_struct *vma, unsigned long max_len,
		      const struct vm_operations_struct *ops, void *data);
void *metis_shim_vma_data(struct vm_area_struct *vma);
void *metis_shim_vmf_data(struct vm_fault *vmf);
unsigned int metis_shim_vmf_insert(struct vm_fault *vmf, unsigned long base, unsigned long pages);
struct address_space *metis_shim_mapping_hold(struct file *file);
void metis_shim_mapping_put(struct address_space *mapping);
void metis_shim_mapping_zap(struct address_space *mapping);

#endif
