# shellcheck shell=bash
# Shared settings for rvhost's scripts: pinned versions and the cache layout.
# Sourced, never run.

RVHOST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RVHOST_CACHE=${RVHOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rvhost}

# Pinned tool versions (the 6.12 tree accepts these; see Documentation/rig.md).
BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42
KERNEL_SERIES=6.12

export PATH="$HOME/.cargo/bin:$RVHOST_CACHE/venv/bin:$PATH"

# Debian's python3 itself: a pyenv shim earlier on PATH costs seconds per
# start under TCG, and the scripts in the test VM start Python often.
RVHOST_PY=/usr/bin/python3
[ -x "$RVHOST_PY" ] || RVHOST_PY=$(command -v python3) || RVHOST_PY=python3

die() { echo "error: $*" >&2; exit 1; }
step() { echo "==> $*"; }

# Debian's linux-source tarball for the pinned series.
kernel_tarball() {
	ls /usr/src/linux-source-"$KERNEL_SERIES".tar.xz 2>/dev/null
}

# The upstream version inside the tarball, e.g. 6.12.57 (Debian names it 6.12).
kernel_version() {
	dpkg-query -W -f='${Version}' "linux-source-$KERNEL_SERIES" 2>/dev/null | sed 's/-.*//'
}

# Kernel flavours: "debug" (default: KASAN, lockdep, ... for tests) and
# "nodebug" (the same kernel without the debugging options, for timing).
RVHOST_KERNEL_FLAVOR=${RVHOST_KERNEL_FLAVOR:-debug}
kernel_fragments() {
	case "$RVHOST_KERNEL_FLAVOR" in
	debug) echo "$RVHOST_ROOT/kernel/base.config $RVHOST_ROOT/kernel/debug.config" ;;
	nodebug) echo "$RVHOST_ROOT/kernel/base.config" ;;
	*) die "unknown RVHOST_KERNEL_FLAVOR=$RVHOST_KERNEL_FLAVOR (debug or nodebug)" ;;
	esac
}

# Cache key of a kernel build: kernel version, config fragments, rustc, bindgen.
kernel_build_key() {
	local frag_hash rustc_v
	# shellcheck disable=SC2046
	frag_hash=$(cat $(kernel_fragments) | grep -v -e "^#" -e "^$" | sha256sum | cut -c1-12)
	rustc_v=$(rustc --version | awk '{print $2}')
	echo "$(kernel_version)-$frag_hash-rustc$rustc_v-bindgen$BINDGEN_VERSION"
}

kernel_build_dir() {
	echo "$RVHOST_CACHE/kernel/build-$(kernel_build_key)"
}
