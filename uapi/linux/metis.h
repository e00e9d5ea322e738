/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Userspace ABI of the metis driver (/dev/metisN).
 *
 * This header is the single source of truth: the module's #[repr(C)] copies
 * are checked against it (size and offset asserts), and the Rust userspace
 * crate is generated from it with bindgen.
 *
 * Versioning: every argument struct starts with `size`, which the caller sets
 * to sizeof() of the struct it was compiled with. The ioctl number is matched
 * on type, number and direction only, so a struct may grow at its end in a
 * later ABI version: the driver accepts any size from the version-1 size up
 * to PAGE_SIZE, requires every byte it does not know to be zero, and writes
 * back at most `size` bytes. `flags` fields must only hold defined flags;
 * reserved fields must be zero. Anything else fails with EINVAL.
 *
 * Device memory is reached through handles returned by METIS_IOCTL_MEM_ALLOC:
 * a file can only name regions it allocated itself, and every offset/length
 * pair is checked against the region's bounds without overflow.
 *
 * Power loss: device memory does not survive a card reset (METIS_IOCTL_RESET,
 * job-timeout recovery, suspend to RAM, hibernation). Regions allocated before
 * a reset are kept but marked lost: the next DMA or command that uses one
 * fails with ESTALE, after which the region is usable again (its contents are
 * undefined). metis_info.reset_count tells how many resets happened, and
 * each reset also sends a "change" uevent with METIS_EVENT=RESET on the PCI
 * device.
 */
#ifndef _UAPI_LINUX_METIS_H
#define _UAPI_LINUX_METIS_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define METIS_ABI_VERSION 1
#define METIS_IOCTL_MAGIC 0xBB

/* Largest single DMA transfer (bytes). */
#define METIS_DMA_MAX_LENGTH (1ULL << 30)
/* Largest device-memory region (bytes). */
#define METIS_MEM_MAX_LENGTH (1ULL << 34)
/* Granule of device-memory allocations (bytes). */
#define METIS_MEM_ALIGN 4096
/* Regions one open file may hold at once (MEM_ALLOC fails with EDQUOT beyond). */
#define METIS_MEM_MAX_REGIONS 4096
/* Bytes of payload an ECHO command carries. */
#define METIS_ECHO_MAX 256

enum metis_irq_mode {
	METIS_IRQ_POLL = 0,	/* no interrupt: completion is polled */
	METIS_IRQ_INTX = 1,
	METIS_IRQ_MSI = 2,
	METIS_IRQ_MSIX = 3,
};

enum metis_iommu_mode {
	METIS_IOMMU_NONE = 0,		/* no IOMMU in front of the card */
	METIS_IOMMU_PASSTHROUGH = 1,	/* identity domain */
	METIS_IOMMU_TRANSLATED = 2,	/* DMA addresses are IOVAs */
};

enum metis_fw_state {
	METIS_FW_OFF = 0,
	METIS_FW_BOOTLOADER = 1,
	METIS_FW_BOOTING = 2,
	METIS_FW_READY = 3,
	METIS_FW_FAILED = 4,
};

/*
 * Who loads the card's firmware. Kernel-owned: the driver validates the
 * firmware file, boots it, and boots it again after every reset and resume
 * (only on cards whose bootloader advertises the boot protocol the driver
 * implements). Runtime-owned: userspace (the vendor runtime) uploads and
 * boots the firmware and then calls METIS_IOCTL_FW_CHANGED; the driver never
 * sends the card a firmware command (METIS_IOCTL_CMD fails with EOPNOTSUPP)
 * and hands out no device memory. After a reset or a resume that lost the
 * firmware, the driver restores the DMA engine and the card's interrupt
 * signalling, reports fw_state BOOTLOADER, sends a "change" uevent with
 * METIS_EVENT=FIRMWARE_LOST on the PCI device, and poll() reports POLLPRI on
 * every open file until METIS_IOCTL_FW_CHANGED is called.
 */
enum metis_fw_owner {
	METIS_FW_KERNEL = 0,
	METIS_FW_RUNTIME = 1,
};

/* METIS_IOCTL_INFO: what the card and the driver are. */
struct metis_info {
	__u32 size;
	__u32 flags;		/* in: 0 */
	__u32 abi_version;	/* METIS_ABI_VERSION */
	__u16 vendor_id;
	__u16 device_id;
	__u8 revision;
	__u8 irq_mode;		/* enum metis_irq_mode */
	__u8 iommu_mode;	/* enum metis_iommu_mode */
	__u8 fw_state;		/* enum metis_fw_state */
	__u32 fw_version;	/* major | minor << 8 | patch << 16 */
	__u32 fw_if_version;	/* interface major << 16 | minor */
	__u32 wr_channels;	/* device-to-host DMA channels */
	__u32 rd_channels;	/* host-to-device DMA channels */
	__u32 irq_vectors;	/* vectors in use (0 when polling) */
	__u32 reset_count;	/* card resets since probe */
	__u32 fw_owner;		/* enum metis_fw_owner */
	__u64 mem_size;		/* device memory, bytes */
	__u64 mem_free;		/* bytes not allocated to any file */
	__u64 bytes_to_device;	/* DMA totals since probe */
	__u64 bytes_from_device;
};

/*
 * METIS_IOCTL_MEM_ALLOC: allocate a device-memory region for this file. The
 * region reads as zeros: nothing of its previous owner is left in it. Fails
 * with ENOSPC when no free range is long enough, and with EDQUOT when the
 * file already holds METIS_MEM_MAX_REGIONS regions.
 */
struct metis_mem_alloc {
	__u32 size;
	__u32 flags;		/* in: 0 */
	__u64 length;		/* in: bytes, 1..METIS_MEM_MAX_LENGTH, rounded up to METIS_MEM_ALIGN */
	__u64 handle;		/* out: names the region in later calls */
	__u64 dev_addr;		/* out: device address of the region (informational) */
};

/* METIS_IOCTL_MEM_FREE: free a region of this file. Fails with EBUSY while a job uses it. */
struct metis_mem_free {
	__u32 size;
	__u32 flags;		/* in: 0 */
	__u64 handle;
};

/* Direction flags of struct metis_dma; exactly one must be set. */
#define METIS_DMA_TO_DEVICE	(1U << 0)	/* host buffer -> device memory */
#define METIS_DMA_FROM_DEVICE	(1U << 1)	/* device memory -> host buffer */
/*
 * Return at once with a job id; complete with METIS_IOCTL_WAIT or poll().
 * The buffer stays pinned until the job completes; the caller must not free
 * or unmap it before reaping the job. A file may hold at most
 * METIS_MAX_JOBS jobs that are pending or completed but not reaped, and a
 * card runs or queues at most METIS_MAX_CARD_JOBS jobs of all its files;
 * beyond either, METIS_IOCTL_DMA fails with EAGAIN. Closing the file waits
 * for its jobs.
 */
#define METIS_DMA_ASYNC		(1U << 2)
/*
 * user_addr..user_addr + length lies in a buffer this file registered with
 * METIS_IOCTL_BUF_REGISTER for the job's direction: nothing is pinned or
 * mapped for the job (EINVAL if no registered buffer covers the range or
 * allows the direction).
 */
#define METIS_DMA_REGISTERED	(1U << 3)
#define METIS_MAX_JOBS		64
#define METIS_MAX_CARD_JOBS	256

/*
 * METIS_IOCTL_DMA: move bytes between a user buffer (any alignment) and a
 * region. The buffer is pinned and mapped for exactly the direction given;
 * pinned pages count against RLIMIT_MEMLOCK (ENOMEM beyond it, unless the
 * caller has CAP_IPC_LOCK). timeout_ms covers the whole job: waiting for a
 * free channel and the transfer.
 */
struct metis_dma {
	__u32 size;
	__u32 flags;		/* METIS_DMA_* */
	__u64 user_addr;	/* host buffer */
	__u64 length;		/* bytes, 1..METIS_DMA_MAX_LENGTH */
	__u64 handle;		/* region */
	__u64 offset;		/* into the region; offset + length <= region length */
	__u32 timeout_ms;	/* 0: driver default */
	__u32 reserved;		/* 0 */
	__u64 job_id;		/* out, with METIS_DMA_ASYNC */
};

/*
 * METIS_IOCTL_WAIT: wait for an async job of this file and reap it.
 * poll() on the file reports POLLIN while a completed job waits to be
 * reaped, and POLLHUP once the card is gone.
 * status is 0 or a negative errno: ETIMEDOUT (the job timed out and the
 * channel was reset), EIO (the card failed the job or was reset under it),
 * ESHUTDOWN (the job was failed by suspend; retry it), ENODEV (card gone).
 * The ioctl itself fails with ETIMEDOUT if timeout_ms passes first (the job
 * stays pending), and with ENOENT for an unknown job id. A signal ends the
 * wait with EINTR (or restarts it, SA_RESTART); with a limit, timeout_ms is
 * then updated to the time left (at least 1), so that the restarted call
 * ends when the first would have.
 */
struct metis_wait {
	__u32 size;
	__u32 flags;		/* in: 0 */
	__u64 job_id;
	__u32 timeout_ms;	/* 0: wait without limit */
	__s32 status;		/* out */
};

enum metis_cmd_opcode {
	METIS_CMD_ECHO = 2,	/* echo[0..echo_len) comes back unchanged */
	METIS_CMD_CHECKSUM = 3,	/* result = CRC-32 of (handle_in, offset_in, length) */
	METIS_CMD_FILL = 4,	/* fill (handle_in, offset_in, length) with the u32 `arg` */
	METIS_CMD_RUN = 5,	/* transform input range into output range, result = CRC-32 of output */
};

enum metis_run_op {
	METIS_RUN_COPY = 0,
	METIS_RUN_NOT = 1,	/* bitwise NOT */
	METIS_RUN_XOR = 2,	/* XOR with the low byte of arg */
	METIS_RUN_ADD_INDEX = 3,	/* out[i] = in[i] + (arg + i) mod 256 */
};

/*
 * METIS_IOCTL_CMD: run one firmware command and wait for its completion.
 * Input fields the opcode does not use must be 0 (EINVAL otherwise), as must
 * the bytes of echo[] past echo_len; result is output only. A command whose
 * timeout passes or whose wait a signal ends is still waited for (up to 10 s,
 * then the card is reset) before the call returns, so it never writes the
 * regions after the call and its answer is never another command's.
 */
struct metis_cmd {
	__u32 size;
	__u32 flags;		/* in: 0 */
	__u32 opcode;		/* enum metis_cmd_opcode */
	__u32 op;		/* RUN: enum metis_run_op; otherwise 0 */
	__u64 handle_in;
	__u64 offset_in;
	__u64 length;
	__u64 handle_out;	/* RUN only */
	__u64 offset_out;	/* RUN only */
	__u32 arg;		/* FILL pattern, RUN key */
	__u32 result;		/* out: CRC-32 for CHECKSUM and RUN */
	__u32 echo_len;		/* ECHO: bytes in echo, 0..METIS_ECHO_MAX */
	__u32 timeout_ms;	/* 0: driver default */
	__u8 echo[METIS_ECHO_MAX];
};

/*
 * Read the firmware file from /lib/firmware again (e.g. after an update)
 * instead of rebooting the image loaded before. The file is validated first:
 * a refused file fails the ioctl with EINVAL and the card is not touched.
 */
#define METIS_RESET_RELOAD_FIRMWARE	(1U << 0)

/*
 * METIS_IOCTL_RESET: reset the card (PCI function reset) and boot its
 * firmware; every region of every file becomes lost. Jobs running on the
 * card fail with EIO; calls made during the reset wait for it to finish.
 * Fails with EIO if the firmware does not come back (fw_state FAILED;
 * another reset may be tried) and EBUSY if the PCI core is busy with the
 * device for seconds. Fails with EPERM unless the caller has CAP_SYS_ADMIN or
 * the calling file is the only one open on the card: a reset takes every
 * other user's device memory and jobs with it.
 */
struct metis_reset {
	__u32 size;
	__u32 flags;		/* in: METIS_RESET_* */
};

/*
 * METIS_IOCTL_FW_CHANGED (runtime-owned cards only, else EINVAL): the
 * firmware on the card changed (userspace booted one). The driver reads the
 * areas the new firmware publishes again, checks them (EPROTO, with a log
 * line naming the bad field, if one is out of range) and registers its
 * interrupt table with the firmware; fw_state becomes READY.
 */
struct metis_fw_changed {
	__u32 size;
	__u32 flags;		/* in: 0 */
};

/* How the fd of an exported buffer is opened (at least one). */
#define METIS_BUF_READ		(1U << 0)
#define METIS_BUF_WRITE		(1U << 1)
/* Largest exported buffer (bytes). */
#define METIS_BUF_MAX_LENGTH	(1ULL << 30)

/*
 * METIS_IOCTL_BUF_EXPORT: allocate a host buffer that the card (and any
 * other device) can DMA, and return it as a dma-buf: an O_CLOEXEC fd, opened
 * read-only, write-only or read-write as the flags ask. Importers (a V4L2
 * device, a GPU, this card) each get the buffer mapped for their own device
 * and direction; mmap() gives cacheable pages, so CPU access must be
 * bracketed with DMA_BUF_IOCTL_SYNC. The buffer does not depend on the card:
 * it stays valid after the card is unbound, and keeps the module loaded
 * until its last reference goes.
 */
struct metis_buf_export {
	__u32 size;
	__u32 flags;		/* METIS_BUF_READ and/or METIS_BUF_WRITE */
	__u64 length;		/* in: 1..METIS_BUF_MAX_LENGTH; out: rounded up to whole pages */
	__s32 fd;		/* out: the dma-buf */
	__u32 reserved;		/* 0 */
};

/*
 * METIS_IOCTL_DMA_BUF: move bytes between a dma-buf and a region without a
 * copy through userspace. The dma-buf may come from METIS_IOCTL_BUF_EXPORT
 * or from any other exporter (e.g. /dev/dma_heap/system). For the time of
 * the transfer the card is attached to it and has it mapped for exactly the
 * direction given; it is detached when the transfer ends, fails, or the card
 * goes away. Flags, timeout and async jobs work as for METIS_IOCTL_DMA. A
 * buffer the card cannot be given (the exporter refuses the attachment or
 * the mapping) fails with that error and a log line.
 *
 * The card reads (TO_DEVICE) only through an fd open for reading and writes
 * (FROM_DEVICE) only through one open for writing: EBADF otherwise.
 * Implicit sync: before the call returns (async jobs included), the card
 * waits for the fences of the buffer's other users (a card read for their
 * writes, a card write for all of them), interruptibly and for timeout_ms
 * at most (ETIMEDOUT); it then adds its own fence, read or write, which
 * signals when the transfer ends (with its error if it failed), so that
 * other users and DMA_BUF_IOCTL_SYNC wait for the card.
 */
struct metis_dma_buf {
	__u32 size;
	__u32 flags;		/* METIS_DMA_* */
	__s32 fd;		/* the dma-buf */
	__u32 timeout_ms;	/* 0: driver default */
	__u64 buf_offset;	/* into the dma-buf; buf_offset + length <= its size */
	__u64 length;		/* bytes, 1..METIS_DMA_MAX_LENGTH */
	__u64 handle;		/* region */
	__u64 offset;		/* into the region; offset + length <= region length */
	__u64 job_id;		/* out, with METIS_DMA_ASYNC */
};

/* Buffers a file may have registered at once. */
#define METIS_MAX_REGISTERED	64

/*
 * METIS_IOCTL_BUF_REGISTER: pin a user buffer and map it for the card once,
 * for any number of DMA jobs (METIS_DMA_REGISTERED) until it is unregistered
 * or the file is closed: a job then pins and maps nothing. flags say which
 * directions jobs may use it for (METIS_DMA_TO_DEVICE, METIS_DMA_FROM_DEVICE,
 * or both). The pages count against RLIMIT_MEMLOCK as a job's do (ENOMEM
 * beyond it, unless the caller has CAP_IPC_LOCK) for as long as they are
 * registered. A file registers at most METIS_MAX_REGISTERED buffers (EDQUOT
 * beyond); buffers may overlap. The registration keeps the pages it pinned:
 * a later munmap or mmap at the same address does not change what the card
 * reads or writes. length is 1..METIS_DMA_MAX_LENGTH bytes at any alignment.
 */
struct metis_buf_register {
	__u32 size;
	__u32 flags;		/* METIS_DMA_TO_DEVICE and/or METIS_DMA_FROM_DEVICE */
	__u64 user_addr;
	__u64 length;
	__u64 handle;		/* out */
};

/*
 * METIS_IOCTL_BUF_UNREGISTER: end a registration (ENOENT for a handle this
 * file does not hold). Jobs already using the buffer finish with it; its
 * pages are released when the last of them has.
 */
struct metis_buf_unregister {
	__u32 size;
	__u32 flags;		/* in: 0 */
	__u64 handle;
};

/*
 * METIS_IOCTL_DMA_BATCH: runs count DMA requests (struct metis_dma, one
 * after the other at `entries`, entry_size bytes each) as one submission.
 * Each entry is checked as METIS_IOCTL_DMA checks its argument (its size
 * field equals entry_size; its flags are one direction, optionally with
 * METIS_DMA_REGISTERED; its timeout_ms, reserved and job_id are 0), and
 * the batch runs only if every entry passes: otherwise the call fails
 * (EINVAL, ENOENT, EFAULT, ENOMEM...) and nothing was moved, pinned or kept.
 * The entries of each direction go to the card as one list on one channel,
 * with one doorbell and one interrupt for all of them (a batch longer than
 * the channel's list area takes one more of each per area); to-device
 * entries run first, then from-device ones. timeout_ms covers the whole
 * batch. With METIS_DMA_ASYNC the batch is one async job: its job_id is
 * waited for and reaped like any other and counts once against
 * METIS_MAX_JOBS. If the batch fails, which of its entries moved their
 * bytes is undefined; a failed entry never moves bytes outside its own
 * range.
 */
#define METIS_MAX_BATCH		64
struct metis_dma_batch {
	__u32 size;
	__u32 flags;		/* METIS_DMA_ASYNC or 0 */
	__u64 entries;		/* user address of count struct metis_dma */
	__u32 count;		/* 1..METIS_MAX_BATCH */
	__u32 entry_size;	/* sizeof(struct metis_dma) as the caller knows it */
	__u32 timeout_ms;	/* 0: driver default */
	__u32 reserved;		/* 0 */
	__u64 job_id;		/* out, with METIS_DMA_ASYNC */
};

#define METIS_IOCTL_INFO	_IOWR(METIS_IOCTL_MAGIC, 0x00, struct metis_info)
#define METIS_IOCTL_MEM_ALLOC	_IOWR(METIS_IOCTL_MAGIC, 0x01, struct metis_mem_alloc)
#define METIS_IOCTL_MEM_FREE	_IOW(METIS_IOCTL_MAGIC, 0x02, struct metis_mem_free)
#define METIS_IOCTL_DMA		_IOWR(METIS_IOCTL_MAGIC, 0x03, struct metis_dma)
#define METIS_IOCTL_WAIT	_IOWR(METIS_IOCTL_MAGIC, 0x04, struct metis_wait)
#define METIS_IOCTL_CMD		_IOWR(METIS_IOCTL_MAGIC, 0x05, struct metis_cmd)
#define METIS_IOCTL_RESET	_IOW(METIS_IOCTL_MAGIC, 0x06, struct metis_reset)
#define METIS_IOCTL_BUF_EXPORT	_IOWR(METIS_IOCTL_MAGIC, 0x07, struct metis_buf_export)
#define METIS_IOCTL_DMA_BUF	_IOWR(METIS_IOCTL_MAGIC, 0x08, struct metis_dma_buf)
#define METIS_IOCTL_FW_CHANGED	_IOW(METIS_IOCTL_MAGIC, 0x09, struct metis_fw_changed)
#define METIS_IOCTL_BUF_REGISTER	_IOWR(METIS_IOCTL_MAGIC, 0x0a, struct metis_buf_register)
#define METIS_IOCTL_BUF_UNREGISTER	_IOW(METIS_IOCTL_MAGIC, 0x0b, struct metis_buf_unregister)
#define METIS_IOCTL_DMA_BATCH	_IOWR(METIS_IOCTL_MAGIC, 0x0c, struct metis_dma_batch)

#endif /* _UAPI_LINUX_METIS_H */
