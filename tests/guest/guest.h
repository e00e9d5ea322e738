/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the guest test programs share: TAP output for the runner, ioctl with
 * -errno results, and the data pattern every DMA check uses.
 */
#ifndef METIS_GUEST_H
#define METIS_GUEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The runner's card behind dev_path: /dev/metisN is card N. */
static inline int card_index(void)
{
	const char *p = dev_path + strlen(dev_path);

	while (p > dev_path && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return atoi(p);
}

/*
 * Sends one control command (emu/src/control.rs) to this file's card through
 * the runner (tests/guest/lib.sh); 0 when the card took it.
 */
static inline int card_ctl(const char *fmt, ...)
{
	char what[128], cmd[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd),
		 ". /lib/metis/lib.sh && host card %d %s | grep -q '\"ok\":true'", card_index(), what);
	return system(cmd);
}

#endif
