// SPDX-License-Identifier: GPL-2.0
/*
 * run_as UID GID PROG ARGS...: runs PROG as an unprivileged user (no
 * supplementary groups). The guest's busybox setpriv cannot change ids.
 */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uid_t uid;
	gid_t gid;

	if (argc < 4) {
		fprintf(stderr, "usage: run_as UID GID PROG ARGS...\n");
		return 2;
	}
	uid = (uid_t)strtoul(argv[1], NULL, 0);
	gid = (gid_t)strtoul(argv[2], NULL, 0);
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid)) {
		perror("run_as: dropping privileges");
		return 2;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid) {
		fprintf(stderr, "run_as: ids did not change\n");
		return 2;
	}
	execvp(argv[3], argv + 3);
	perror(argv[3]);
	return 127;
}
