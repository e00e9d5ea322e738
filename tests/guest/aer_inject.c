// SPDX-License-Identifier: GPL-2.0
/*
 * Reports a PCIe error for a device through the kernel's AER software
 * injector (/dev/aer_inject, CONFIG_PCIEAER_INJECT): the root port above the
 * device raises its AER interrupt and the kernel's AER recovery runs the
 * device driver's error handlers as it would for a real link error.
 *
 *   aer_inject DDDD:BB:DD.F corrected|nonfatal|fatal
 *
 * The kinds pick one error whose severity the card reports as asked (AER
 * Uncorrectable Severity register at its power-on value):
 *   corrected  Receiver Error (correctable: logged, no driver callback)
 *   nonfatal   Completer Abort (non-fatal: error_detected(normal), then a link reset
 *              because the driver asks for one)
 *   fatal      Malformed TLP (fatal: error_detected(frozen), secondary bus reset)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The layout drivers/pci/pcie/aer_inject.c reads from its misc device. */
struct aer_error_inj {
	uint8_t bus;
	uint8_t dev;
	uint8_t fn;
	uint32_t uncor_status;
	uint32_t cor_status;
	uint32_t header_log0;
	uint32_t header_log1;
	uint32_t header_log2;
	uint32_t header_log3;
	uint32_t domain;
};

#define PCI_ERR_COR_RCVR	0x00000001
#define PCI_ERR_UNC_COMP_ABORT	0x00008000
#define PCI_ERR_UNC_MALF_TLP	0x00040000

int main(int argc, char **argv)
{
	struct aer_error_inj e = { 0 };
	unsigned int dom, bus, dev, fn;
	int fd;

	if (argc != 3 || sscanf(argv[1], "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) {
		fprintf(stderr, "usage: aer_inject DDDD:BB:DD.F corrected|nonfatal|fatal\n");
		return 2;
	}
	e.domain = dom;
	e.bus = bus;
	e.dev = dev;
	e.fn = fn;
	if (!strcmp(argv[2], "corrected")) {
		e.cor_status = PCI_ERR_COR_RCVR;
	} else if (!strcmp(argv[2], "nonfatal")) {
		e.uncor_status = PCI_ERR_UNC_COMP_ABORT;
	} else if (!strcmp(argv[2], "fatal")) {
		e.uncor_status = PCI_ERR_UNC_MALF_TLP;
		/* A plausible header of the offending TLP (a 32-bit memory write). */
		e.header_log0 = 0x40000001;
	} else {
		fprintf(stderr, "aer_inject: unknown kind %s\n", argv[2]);
		return 2;
	}
	fd = open("/dev/aer_inject", O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "aer_inject: /dev/aer_inject: %s\n", strerror(errno));
		return 1;
	}
	if (write(fd, &e, sizeof(e)) != (ssize_t)sizeof(e)) {
		fprintf(stderr, "aer_inject: inject %s at %s: %s\n", argv[2], argv[1], strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}
