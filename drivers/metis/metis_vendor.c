// SPDX-License-Identifier: GPL-2.0
/*
 * The opt-in node that speaks the vendor driver's ABI (docs/vendor-abi.md):
 * what Rust for Linux 7.3 has no abstraction for yet. It has misc devices
 * only; the vendor runtime finds its card as a char device of class "metis"
 * named after the PCI address, next to a class attribute "version". Here are
 * that class, its char-device region and one node per name; the node's
 * file_operations and everything behind them are Rust (drivers/metis/ffi.rs,
 * vendor.rs). Called from drivers/metis/glue.rs only.
 */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>

#include <metis/shim.h>

/* Missing: string module parameters (7.3's `module!` takes integers and bools only). */
static char *vendor_abi;
module_param(vendor_abi, charp, 0444);
MODULE_PARM_DESC(vendor_abi,
		 "Also offer each card through the vendor driver's ABI, for the vendor runtime: "
		 "1.4.16 or 1.6.2 (naming and commands of that version; default: off; "
		 "docs/vendor-abi.md)");

const char *metis_shim_vendor_abi(void)
{
	return vendor_abi;
}

#define METIS_VNODES 256

static struct class *vclass;
static dev_t vbase;
static DEFINE_IDA(vminors);
static const struct file_operations *vfops;
static char vversion[16];

static ssize_t version_show(const struct class *class, const struct class_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", vversion);
}
static CLASS_ATTR_RO(version);

/* The vendor's nodes are world read-write (0666); these are for the owner and group. */
static char *vnode_devnode(const struct device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0660;
	return NULL;
}

int metis_shim_vclass_create(const char *version, const struct file_operations *fops)
{
	int ret;

	if (strscpy(vversion, version, sizeof(vversion)) < 0)
		return -EINVAL;
	ret = alloc_chrdev_region(&vbase, 0, METIS_VNODES, "metis");
	if (ret)
		return ret;
	vclass = class_create("metis");
	if (IS_ERR(vclass)) {
		ret = PTR_ERR(vclass);
		goto unregister;
	}
	vclass->devnode = vnode_devnode;
	ret = class_create_file(vclass, &class_attr_version);
	if (ret)
		goto destroy;
	vfops = fops;
	return 0;
destroy:
	class_destroy(vclass);
unregister:
	unregister_chrdev_region(vbase, METIS_VNODES);
	vclass = NULL;
	return ret;
}

/* After every node is gone (each holds the module, so no file of one is open). */
void metis_shim_vclass_destroy(void)
{
	if (!vclass)
		return;
	class_remove_file(vclass, &class_attr_version);
	class_destroy(vclass);
	unregister_chrdev_region(vbase, METIS_VNODES);
	ida_destroy(&vminors);
	vclass = NULL;
}

/*
 * One node. The device owns the allocation: an open in progress holds the cdev,
 * whose kobject holds the device (cdev_device_add), so `data` stays valid for it
 * after metis_shim_vnode_destroy, and `put` gives `data` back only at the last
 * reference.
 */
struct metis_vnode {
	struct device dev;
	struct cdev cdev;
	void *data;
	void (*put)(void *data);
};

static void vnode_release(struct device *dev)
{
	struct metis_vnode *n = container_of(dev, struct metis_vnode, dev);

	n->put(n->data);
	ida_free(&vminors, MINOR(n->dev.devt));
	kfree(n);
}

/*
 * Without a parent: a class device under its PCI device would sit in a directory named
 * after the class, "metis", which is where the driver's own attributes are (sysfs-abi.md).
 * The node's name says which card it is.
 */
struct metis_vnode *metis_shim_vnode_create(const char *name, void *data, void (*put)(void *data),
					    int *err)
{
	struct metis_vnode *n;
	int minor, ret;

	if (!vclass) {
		*err = -ENODEV;
		return NULL;
	}
	minor = ida_alloc_max(&vminors, METIS_VNODES - 1, GFP_KERNEL);
	if (minor < 0) {
		*err = minor;
		return NULL;
	}
	n = kzalloc(sizeof(*n), GFP_KERNEL);
	if (!n) {
		ida_free(&vminors, minor);
		*err = -ENOMEM;
		return NULL;
	}
	device_initialize(&n->dev);
	n->dev.class = vclass;
	n->dev.devt = MKDEV(MAJOR(vbase), minor);
	n->dev.release = vnode_release;
	n->data = data;
	n->put = put;
	cdev_init(&n->cdev, vfops);
	n->cdev.owner = vfops->owner;
	ret = dev_set_name(&n->dev, "%s", name);
	if (!ret)
		ret = cdev_device_add(&n->cdev, &n->dev);
	if (ret) {
		/* The release gives `data` back and frees the minor. */
		put_device(&n->dev);
		*err = ret;
		return NULL;
	}
	return n;
}

void metis_shim_vnode_destroy(struct metis_vnode *n)
{
	cdev_device_del(&n->cdev, &n->dev);
	put_device(&n->dev);
}

/* The `data` of the node an inode opens (called from `open`, which holds the cdev). */
void *metis_shim_vnode_data(struct inode *inode)
{
	return container_of(inode->i_cdev, struct metis_vnode, cdev)->data;
}

/*
 * Missing: vm_flags_set/vm_flags_clear and pgprot_noncached (static inlines and macros),
 * and the vm_area_struct fields (unions whose bindgen names differ between configurations).
 * The BAR2 mapping of a vendor node: shared, uncached, never executable, filled a page at
 * a time by `ops->fault` (which can refuse: the card is gone or in reset) and emptied by
 * metis_shim_mapping_zap.
 */
unsigned long metis_shim_vma_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}

int metis_shim_vma_io(struct vm_area_struct *vma, unsigned long max_len,
		      const struct vm_operations_struct *ops, void *data)
{
	if (vma->vm_end - vma->vm_start > max_len)
		return -EINVAL;
	/* A private copy of device memory means nothing. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vm_flags_clear(vma, VM_MAYEXEC);
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	vma->vm_ops = ops;
	vma->vm_private_data = data;
	return 0;
}

void *metis_shim_vma_data(struct vm_area_struct *vma)
{
	return vma->vm_private_data;
}

void *metis_shim_vmf_data(struct vm_fault *vmf)
{
	return vmf->vma->vm_private_data;
}

/* Maps the page `fault` asks for: pfn `base + pgoff`, if below `pages`. */
vm_fault_t metis_shim_vmf_insert(struct vm_fault *vmf, unsigned long base, unsigned long pages)
{
	if (vmf->pgoff >= pages)
		return VM_FAULT_SIGBUS;
	return vmf_insert_pfn(vmf->vma, vmf->address, base + vmf->pgoff);
}

/* The address space a vendor node's mappings are in, held (its inode) until _put. */
struct address_space *metis_shim_mapping_hold(struct file *file)
{
	ihold(file_inode(file));
	return file->f_mapping;
}

void metis_shim_mapping_put(struct address_space *mapping)
{
	iput(mapping->host);
}

/* Empties every mapping of the space: the next access faults. */
void metis_shim_mapping_zap(struct address_space *mapping)
{
	unmap_mapping_range(mapping, 0, 0, 1);
}
