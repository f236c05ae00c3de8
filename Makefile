# rvhost top-level Makefile. `make` builds rvhost_net.ko against the test
# kernel; `make check` runs every test; `make run` the demo. See README.md.

SHELL := /bin/bash
KDIR ?= $(shell scripts/build-kernel 2>/dev/null | tail -n1)
MODULE := rvhost_net.ko

.PHONY: all module setup kernel kdir check run soak fuzz clean clippy fmt fmt-check

all: module

setup:
	scripts/setup

kernel: setup
	scripts/build-kernel

kdir:
	@scripts/build-kernel | tail -n1

module:
	@test -n "$(KDIR)" || { echo "no test kernel: run 'make kernel' first" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 modules

clippy:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 CLIPPY=1 modules

fmt:
	rustfmt --edition 2021 --config-path $(KDIR)/.rustfmt.toml rust/*.rs rust/*/*.rs

fmt-check:
	rustfmt --check --edition 2021 --config-path $(KDIR)/.rustfmt.toml rust/*.rs rust/*/*.rs

check:
	scripts/check

run:
	scripts/run $(ARGS)

# Long hardening runs (SECONDS of soak per device; default 600).
soak:
	scripts/soak $(SECONDS)

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=1 clean
	rm -f rust/rvhost_bindings_generated.rs
