# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of metis.ko.
#
#   make                      build against the cached x86_64 test kernel
#   make KDIR=/lib/modules/$(uname -r)/build
#                             build against any Rust-enabled kernel build tree
#   make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- KDIR=...
#   make KUNIT=1              include the KUnit suites
#   make CLIPPY=1             lint with clippy
#   make fmt / fmtcheck       rustfmt the driver
#
# The kernel tree must be a full build output (it needs rust/*.rmeta), built
# with the same rustc; if it was built with LLVM, pass the same LLVM=.

ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

KDIR ?= $(shell tests/harness/kernel.sh x86_64 debug 2>/dev/null)
# Reuse the make arguments (ARCH, CROSS_COMPILE, LLVM) the harness built the kernel with.
KMAKE_ARGS ?= $(shell cat $(KDIR)/.metis-make-args 2>/dev/null)

all: modules

# The README's two commands.
demo:
	python3 tests/harness/run.py demo

check:
	bash tests/harness/check.sh

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE_ARGS) $(if $(KUNIT),METIS_KUNIT=1) modules

clippy:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE_ARGS) METIS_KUNIT=1 CLIPPY=1 modules

modules_install:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE_ARGS) modules_install

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE_ARGS) clean

RUSTFMT ?= rustfmt
fmt:
	$(RUSTFMT) --edition 2021 drivers/metis/*.rs

fmtcheck:
	$(RUSTFMT) --edition 2021 --check drivers/metis/*.rs

.PHONY: all demo check modules clippy modules_install clean fmt fmtcheck
endif
