/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the guest test programs share: TAP output for the runner, ioctl with
 * -errno results, and the data pattern every DMA check uses.
 */
#ifndef METIS_GUEST_H
#define METIS_GUEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>

static int failed;
static const char *dev_path = "/dev/metis0";

/* "@@TAP ok NAME", or "@@TAP not ok NAME # why" (and the program fails). */
#define TAP(cond, name, ...) do {						\
	if (cond) {								\
		printf("@@TAP ok %s\n", name);					\
	} else {								\
		failed = 1;							\
		printf("@@TAP not ok %s # ", name);				\
		printf(__VA_ARGS__);						\
		printf("\n");							\
	}									\
	fflush(stdout);								\
} while (0)

/* ioctl returning -errno on failure. */
static inline int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

/* A reproducible pseudo-random pattern (xorshift) for data checks. */
static inline void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

#endif
