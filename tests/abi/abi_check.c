// SPDX-License-Identifier: GPL-2.0
/*
 * Pins the layout of uapi/linux/metis.h to the numbers the module's Rust
 * copies assert (drivers/metis/uapi.rs, assert_layout!). If the header
 * changes, this fails to compile until both sides are updated together.
 * Built by tests/harness/check.sh for the host and both guest ABIs.
 */
#include <stddef.h>
#include "../../uapi/linux/metis.h"

#define AT(type, field, off) _Static_assert(offsetof(struct type, field) == (off), #type "." #field)
#define SIZE(type, n) _Static_assert(sizeof(struct type) == (n), "sizeof " #type)

SIZE(metis_info, 80);
AT(metis_info, size, 0); AT(metis_info, flags, 4); AT(metis_info, abi_version, 8);
AT(metis_info, vendor_id, 12); AT(metis_info, device_id, 14); AT(metis_info, revision, 16);
AT(metis_info, irq_mode, 17); AT(metis_info, iommu_mode, 18); AT(metis_info, fw_state, 19);
AT(metis_info, fw_version, 20); AT(metis_info, fw_if_version, 24); AT(metis_info, wr_channels, 28);
AT(metis_info, rd_channels, 32); AT(metis_info, irq_vectors, 36); AT(metis_info, reset_count, 40);
AT(metis_info, fw_owner, 44); AT(metis_info, mem_size, 48); AT(metis_info, mem_free, 56);
AT(metis_info, bytes_to_device, 64); AT(metis_info, bytes_from_device, 72);

SIZE(metis_mem_alloc, 32);
AT(metis_mem_alloc, size, 0); AT(metis_mem_alloc, flags, 4); AT(metis_mem_alloc, length, 8);
AT(metis_mem_alloc, handle, 16); AT(metis_mem_alloc, dev_addr, 24);

SIZE(metis_mem_free, 16);
AT(metis_mem_free, size, 0); AT(metis_mem_free, flags, 4); AT(metis_mem_free, handle, 8);

SIZE(metis_dma, 56);
AT(metis_dma, size, 0); AT(metis_dma, flags, 4); AT(metis_dma, user_addr, 8);
AT(metis_dma, length, 16); AT(metis_dma, handle, 24); AT(metis_dma, offset, 32);
AT(metis_dma, timeout_ms, 40); AT(metis_dma, reserved, 44); AT(metis_dma, job_id, 48);

SIZE(metis_wait, 24);
AT(metis_wait, size, 0); AT(metis_wait, flags, 4); AT(metis_wait, job_id, 8);
AT(metis_wait, timeout_ms, 16); AT(metis_wait, status, 20);

SIZE(metis_cmd, 328);
AT(metis_cmd, size, 0); AT(metis_cmd, flags, 4); AT(metis_cmd, opcode, 8); AT(metis_cmd, op, 12);
AT(metis_cmd, handle_in, 16); AT(metis_cmd, offset_in, 24); AT(metis_cmd, length, 32);
AT(metis_cmd, handle_out, 40); AT(metis_cmd, offset_out, 48); AT(metis_cmd, arg, 56);
AT(metis_cmd, result, 60); AT(metis_cmd, echo_len, 64); AT(metis_cmd, timeout_ms, 68);
AT(metis_cmd, echo, 72);

SIZE(metis_reset, 8);
AT(metis_reset, size, 0); AT(metis_reset, flags, 4);

SIZE(metis_fw_changed, 8);
AT(metis_fw_changed, size, 0); AT(metis_fw_changed, flags, 4);

SIZE(metis_buf_export, 24);
AT(metis_buf_export, size, 0); AT(metis_buf_export, flags, 4); AT(metis_buf_export, length, 8);
AT(metis_buf_export, fd, 16); AT(metis_buf_export, reserved, 20);

SIZE(metis_dma_buf, 56);
AT(metis_dma_buf, size, 0); AT(metis_dma_buf, flags, 4); AT(metis_dma_buf, fd, 8);
AT(metis_dma_buf, timeout_ms, 12); AT(metis_dma_buf, buf_offset, 16); AT(metis_dma_buf, length, 24);
AT(metis_dma_buf, handle, 32); AT(metis_dma_buf, offset, 40); AT(metis_dma_buf, job_id, 48);
SIZE(metis_buf_register, 32);
AT(metis_buf_register, size, 0); AT(metis_buf_register, flags, 4);
AT(metis_buf_register, user_addr, 8); AT(metis_buf_register, length, 16);
AT(metis_buf_register, handle, 24);
SIZE(metis_buf_unregister, 16);
AT(metis_buf_unregister, size, 0); AT(metis_buf_unregister, flags, 4);
AT(metis_buf_unregister, handle, 8);
SIZE(metis_dma_batch, 40);
AT(metis_dma_batch, size, 0); AT(metis_dma_batch, flags, 4); AT(metis_dma_batch, entries, 8);
AT(metis_dma_batch, count, 16); AT(metis_dma_batch, entry_size, 20);
AT(metis_dma_batch, timeout_ms, 24); AT(metis_dma_batch, reserved, 28);
AT(metis_dma_batch, job_id, 32);

/* The ioctl numbers the module decodes (type 0xbb, numbers 0..12, directions). */
_Static_assert(METIS_IOCTL_INFO == _IOWR(0xbb, 0, struct metis_info), "INFO");
_Static_assert(METIS_IOCTL_MEM_ALLOC == _IOWR(0xbb, 1, struct metis_mem_alloc), "MEM_ALLOC");
_Static_assert(METIS_IOCTL_MEM_FREE == _IOW(0xbb, 2, struct metis_mem_free), "MEM_FREE");
_Static_assert(METIS_IOCTL_DMA == _IOWR(0xbb, 3, struct metis_dma), "DMA");
_Static_assert(METIS_IOCTL_WAIT == _IOWR(0xbb, 4, struct metis_wait), "WAIT");
_Static_assert(METIS_IOCTL_CMD == _IOWR(0xbb, 5, struct metis_cmd), "CMD");
_Static_assert(METIS_IOCTL_RESET == _IOW(0xbb, 6, struct metis_reset), "RESET");
_Static_assert(METIS_IOCTL_BUF_EXPORT == _IOWR(0xbb, 7, struct metis_buf_export), "BUF_EXPORT");
_Static_assert(METIS_IOCTL_DMA_BUF == _IOWR(0xbb, 8, struct metis_dma_buf), "DMA_BUF");
_Static_assert(METIS_IOCTL_FW_CHANGED == _IOW(0xbb, 9, struct metis_fw_changed), "FW_CHANGED");
_Static_assert(METIS_IOCTL_BUF_REGISTER == _IOWR(0xbb, 10, struct metis_buf_register),
	       "BUF_REGISTER");
_Static_assert(METIS_IOCTL_BUF_UNREGISTER == _IOW(0xbb, 11, struct metis_buf_unregister),
	       "BUF_UNREGISTER");
_Static_assert(METIS_IOCTL_DMA_BATCH == _IOWR(0xbb, 12, struct metis_dma_batch), "DMA_BATCH");
_Static_assert(METIS_BUF_READ == 1 && METIS_BUF_WRITE == 2, "BUF flags");
_Static_assert(METIS_BUF_MAX_LENGTH == 1ULL << 30, "BUF_MAX_LENGTH");

/* Constants the module copies (drivers/metis/uapi.rs). */
_Static_assert(METIS_DMA_TO_DEVICE == 1 && METIS_DMA_FROM_DEVICE == 2 && METIS_DMA_ASYNC == 4 &&
	       METIS_DMA_REGISTERED == 8, "DMA flags");
_Static_assert(METIS_MAX_REGISTERED == 64, "MAX_REGISTERED");
_Static_assert(METIS_MAX_JOBS == 64, "MAX_JOBS");
_Static_assert(METIS_MAX_BATCH == 64, "MAX_BATCH");
_Static_assert(METIS_MAX_CARD_JOBS == 256, "MAX_CARD_JOBS");
_Static_assert(METIS_DMA_MAX_LENGTH == 1ULL << 30 && METIS_MEM_MAX_LENGTH == 1ULL << 34, "lengths");
_Static_assert(METIS_MEM_ALIGN == 4096 && METIS_MEM_MAX_REGIONS == 4096, "MEM_ALIGN, MEM_MAX_REGIONS");
_Static_assert(METIS_RESET_RELOAD_FIRMWARE == 1, "RESET flags");
/* 0 must stay kernel-owned: version-1 drivers wrote 0 to this word (reserved). */
_Static_assert(METIS_FW_KERNEL == 0 && METIS_FW_RUNTIME == 1, "fw_owner values");

int main(void)
{
	return 0;
}
