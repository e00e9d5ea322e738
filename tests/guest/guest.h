/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the guest test programs share: TAP output for the runner, ioctl with
 * -errno results, the data pattern every DMA check uses, and the few calls
 * every program makes (include uapi/linux/metis.h first).
 */
#ifndef METIS_GUEST_H
#define METIS_GUEST_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

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

/* CLOCK_MONOTONIC in milliseconds. */
static inline double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Writes `s` to a sysfs or procfs file: 0 or -errno. */
static inline int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), r;

	if (fd < 0)
		return -errno;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -errno;
	close(fd);
	return r;
}

/*
 * Becomes `uid` in group `gid` with no supplementary groups (the device
 * node is root:root 0660: gid 0 keeps access, a uid other than 0 loses the
 * capabilities): 0 or -errno.
 */
static inline int become(uid_t uid, gid_t gid)
{
	return setgroups(0, NULL) || setgid(gid) || setuid(uid) ? -errno : 0;
}

static inline int mem_alloc(int fd, uint64_t len, uint64_t *handle)
{
	struct metis_mem_alloc a = { .size = sizeof(a), .length = len };
	int r = xioctl(fd, METIS_IOCTL_MEM_ALLOC, &a);

	*handle = a.handle;
	return r;
}

static inline int mem_free(int fd, uint64_t handle)
{
	struct metis_mem_free f = { .size = sizeof(f), .handle = handle };

	return xioctl(fd, METIS_IOCTL_MEM_FREE, &f);
}

/* Starts an async job; returns its id (> 0) or -errno. */
static inline int64_t dma_async(int fd, uint32_t flags, void *buf, uint64_t len, uint64_t handle,
				uint64_t off)
{
	struct metis_dma d = {
		.size = sizeof(d), .flags = flags | METIS_DMA_ASYNC, .user_addr = (uintptr_t)buf,
		.length = len, .handle = handle, .offset = off,
	};
	int r = xioctl(fd, METIS_IOCTL_DMA, &d);

	return r ? r : (int64_t)d.job_id;
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
