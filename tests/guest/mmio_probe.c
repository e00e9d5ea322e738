// SPDX-License-Identifier: GPL-2.0
/*
 * Performs one deliberately chosen MMIO access on a PCI BAR through its
 * sysfs resource file, so tests can check that the emulated card treats it
 * the way real hardware would (e.g. a 64-bit read of a 64-bit eDMA register
 * pair, field report R1.3).
 *
 *   mmio_probe BDF BAR OFFSET WIDTH   (WIDTH in bytes: 1, 2, 4 or 8)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[256];
	unsigned long off;
	int width, fd;
	volatile uint8_t *base;
	unsigned long long v = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: %s BDF BAR OFFSET WIDTH\n", argv[0]);
		return 2;
	}
	off = strtoul(argv[3], NULL, 0);
	width = atoi(argv[4]);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%s", argv[1], argv[2]);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	base = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off & ~4095UL);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	base += off & 4095;
	switch (width) {
	case 1: v = *(volatile uint8_t *)base; break;
	case 2: v = *(volatile uint16_t *)base; break;
	case 4: v = *(volatile uint32_t *)base; break;
	case 8: v = *(volatile uint64_t *)base; break;
	default: fprintf(stderr, "bad width\n"); return 2;
	}
	printf("%#llx\n", v);
	return 0;
}
