/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Functions of drivers/metis/metis_shim.c and metis_dmabuf.c called from Rust
 * (declared by hand in drivers/metis/glue.rs; keep the two in sync).
 */
#ifndef METIS_SHIM_H
#define METIS_SHIM_H

#include <linux/types.h>

struct device;
struct pci_dev;
struct sg_table;
struct metis_umap;

const char *metis_shim_firmware_name(void);
int metis_shim_irq_mode_param(void);
int metis_shim_fw_owner_param(void);
int metis_shim_msi_msg(struct pci_dev *pdev, unsigned int vec, u64 *addr, u32 *data);
int metis_shim_iommu_mode(struct device *dev);
struct metis_umap *metis_shim_umap_create(struct device *dev, unsigned long uaddr, size_t len,
					  bool to_device, int *err);
struct sg_table *metis_shim_umap_sgt(struct metis_umap *um);
void metis_shim_umap_destroy(struct metis_umap *um);

int metis_shim_dmabuf_export(size_t len, int fd_flags);
struct metis_dmap;
struct metis_dmap *metis_shim_dmabuf_map(struct device *dev, int fd, bool to_device,
					 u64 *size, int *err);
struct sg_table *metis_shim_dmabuf_sgt(struct metis_dmap *dm);
void metis_shim_dmabuf_unmap(struct metis_dmap *dm);

struct metis_cdev;
struct metis_cdev *metis_shim_cdev_register(struct device *parent, const void *card, int *err);
void metis_shim_cdev_unregister(struct metis_cdev *cd);
int metis_shim_cdev_index(struct metis_cdev *cd);
void metis_shim_notify_reset(struct device *dev, unsigned int count);
void metis_shim_notify_firmware_lost(struct device *dev);
struct pci_driver;
void metis_shim_install_driver_callbacks(struct pci_driver *drv);
void metis_shim_rpm_enable(struct device *dev);
void metis_shim_rpm_disable(struct device *dev, bool held);
int metis_shim_rpm_get(struct device *dev);
void metis_shim_rpm_put(struct device *dev);

/* Implemented in Rust (drivers/metis/file.rs). */
void *metis_rust_open(const void *card, int *err);
void metis_rust_release(void *priv);
long metis_rust_ioctl(void *priv, unsigned int cmd, unsigned long arg);
struct file;
struct poll_table_struct;
unsigned int metis_rust_poll(void *priv, struct file *file, struct poll_table_struct *pt);
int metis_rust_suspend(void *data);
int metis_rust_runtime_suspend(void *data);
int metis_rust_runtime_resume(void *data);
int metis_rust_resume(void *data, bool restore);
void metis_rust_shutdown(void *data);
void metis_rust_reset_prepare(void *data);
void metis_rust_reset_done(void *data);
bool metis_rust_error_detected(void *data, bool permanent);
void metis_rust_error_resume(void *data);

#endif
