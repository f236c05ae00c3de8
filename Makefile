# rvhost top-level Makefile. `make` builds rvhost_net.ko against the test
# kernel (or `make KDIR=/lib/modules/$(uname -r)/build`: any Rust-enabled
# 6.12+ build tree, see scripts/check-kdir); `make check` runs every test;
# `make run` the demo; `make install` installs. See README.md.

SHELL := /bin/bash
KDIR ?= $(shell scripts/build-kernel 2>/dev/null | tail -n1)
MODULE := rvhost_net.ko
# `make install`: modules under $(INSTALL_MOD_PATH)/lib/modules, the udev
# rule and the modules-load.d example under $(DESTDIR) (both default to /).
INSTALL_MOD_PATH ?=
DESTDIR ?=

.PHONY: all module module-kunit setup kernel kdir check check-long run soak fuzz clean clippy fmt fmt-check install check-install qemu-guest

all: module

setup:
	scripts/setup

kernel: setup
	scripts/build-kernel

kdir:
	@scripts/build-kernel | tail -n1

module:
	@test -n "$(KDIR)" || { echo "no test kernel: run 'make kernel' first" >&2; exit 1; }
	@scripts/check-kdir $(KDIR) > /dev/null
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 modules

# The module and, beside it, its KUnit suites (rvhost_net_kunit.ko).
module-kunit:
	@test -n "$(KDIR)" || { echo "no test kernel: run 'make kernel' first" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 RVHOST_KUNIT=1 modules

install: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 INSTALL_MOD_PATH=$(abspath $(or $(INSTALL_MOD_PATH),/)) modules_install
	depmod -b $(abspath $(or $(INSTALL_MOD_PATH),/)) $$(cat $(KDIR)/include/config/kernel.release)
	install -D -m 0644 packaging/udev/60-rvhost-net.rules $(DESTDIR)/etc/udev/rules.d/60-rvhost-net.rules
	install -D -m 0644 packaging/modules-load.d/rvhost_net.conf \
		$(DESTDIR)/usr/share/doc/rvhost/modules-load.d/rvhost_net.conf

clippy:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 RVHOST_KUNIT=1 CLIPPY=1 modules

fmt:
	rustfmt --edition 2021 --config-path $(KDIR)/.rustfmt.toml rust/*.rs rust/*/*.rs

fmt-check:
	rustfmt --check --edition 2021 --config-path $(KDIR)/.rustfmt.toml rust/*.rs rust/*/*.rs

check:
	scripts/check

# make check with the in-kernel tests' long tier (upstream anchors, every
# rvmm back end and e1000 mode, every real-client configuration, migration).
check-long:
	scripts/check --long

run:
	scripts/run $(ARGS)

# Long hardening runs (SECONDS of soak per device; default 600).
soak:
	scripts/soak $(SECONDS)

# Build against another kernel tree (the nodebug flavour) and install into a
# staging tree (Documentation/operations.md).
check-install:
	scripts/check-install

# The real-client test: QEMU with a Linux guest over both devices, every
# configuration (make check runs a subset; Documentation/usage.md).
qemu-guest:
	scripts/qemu-guest-tests $(ARGS)

# The differential fuzzer for FUZZ_SECONDS (default 600; make check runs 30).
fuzz:
	scripts/fuzz $(or $(FUZZ_SECONDS),600) $(ARGS)

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 clean
	rm -f rust/rvhost_bindings_generated.rs
