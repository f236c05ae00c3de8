#!/bin/sh
# /init of the L2 guest of the real-client test (runs INSIDE the guest that
# scripts/qemu-guest-test boots with QEMU; packed by scripts/build-guest-initramfs
# with busybox-static and guest/channels.c). Not meant to run anywhere else.
#
# Mounts proc, sys and devtmpfs, enables every queue pair of each virtio-net
# interface (/bin/channels: virtio_net enables min(CPUs, pairs) at probe, and
# this guest has one CPU), gives each interface its own /24 (the NIC whose MAC
# ends in N gets 10.0.N.2; the host side of its tap is 10.0.N.1), then tests
# the NICs one after the other against scripts/qemu-guest-server on the host:
#   ping_<size>  3 echo requests of 56 (default), 1, 1472 (a 1514-byte frame),
#                1473 and 4000 data bytes (fragmented);
#   tcp_tx       one TCP stream guest->host, MD5 compared with the host's,
#   tcp_rx       one TCP stream host->guest, MD5 compared with the host's
#                (both streams at once);
#   mq_tcp, mq_queues_used (a NIC with several queue pairs) several streams
#                each way at once, repeated until every queue's MSI-X vector
#                has fired (each socket hashes to one queue pair).
# Then it reboots, which ends QEMU (-no-reboot; this kernel has no ACPI, so no
# power-off). Timing is the host's business: this kernel's clock (jiffies under
# nested TCG) runs slower than the wall clock.
#
# With rvt.mode=migrate (scripts/qemu-migrate-test) it tests NIC 0 only, across
# a live migration: one TCP stream each way, during which it prints
# GUEST-MIGRATE-WINDOW (the host migrates it to a new QEMU then), so that the
# streams' results come from the new QEMU; then a ping (ping_after_migration).
#
# Kernel command line: rvt.nics=NAME0,NAME1,... (configuration of NIC N),
# rvt.kib=K (KiB per TCP stream), rvt.streams=S (parallel streams per
# direction on a multi-queue NIC), rvt.timeout=SECS (per transfer),
# rvt.mode=migrate.
#
# Output, one line per check (read by scripts/qemu-guest-test):
#   GUEST-RESULT <iface> <config> <check> pass|fail [key=value ...]
# plus GUEST-BOOT, GUEST-INFO, GUEST-NIC-START/-DONE, GUEST-SYNC (the host
# samples its worker threads there) and GUEST-DONE lines.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /tmp

read -r up _ </proc/uptime
echo "GUEST-BOOT uptime=$up"

NICS= KIB=512 STREAMS=4 TMO=300 MODE=test
read -r cmdline </proc/cmdline
for w in $cmdline; do
	case "$w" in
	rvt.nics=*) NICS=$(echo "${w#rvt.nics=}" | tr ',' ' ') ;;
	rvt.kib=*) KIB=${w#rvt.kib=} ;;
	rvt.streams=*) STREAMS=${w#rvt.streams=} ;;
	rvt.timeout=*) TMO=${w#rvt.timeout=} ;;
	rvt.mode=*) MODE=${w#rvt.mode=} ;;
	esac
done

# nth N WORDS...: the Nth word (0-based)
nth() {
	local n=$1 i=0 x
	shift
	for x; do
		[ $i = "$n" ] && { echo "$x"; return; }
		i=$((i + 1))
	done
}

# res CHECK pass|fail [key=value ...]: one result line of the NIC under test
# (empty and "-" fields dropped).
res() {
	local line="GUEST-RESULT $ifc $cfg" a
	for a; do
		[ -z "$a" ] || [ "$a" = - ] || line="$line $a"
	done
	echo "$line"
}

# The host samples its worker threads' CPU time when it sees this line.
sync_point() {
	echo "GUEST-SYNC $1"
	sleep 0.5
}

# One ping check: prints "pass|fail detail".
ping_check() { # HOST SIZE
	local out rtt
	out=$(ping -A -c 3 -W 5 -w 60 -s "$2" "$1" 2>&1)
	case "$out" in
	*"3 packets transmitted, 3 packets received"*)
		case "$out" in
		*"round-trip min/avg/max = "*) rtt=${out##*= } rtt="rtt_min_avg_max_ms=${rtt%% ms*}" ;;
		*) rtt=- ;;
		esac
		echo "pass $rtt"
		;;
	*) echo "fail $(echo "$out" | tail -n 2 | tr '\n' ' ' | tr -s ' ' '_')" ;;
	esac
}

# One TCP stream guest -> host: send FILE, the server replies "md5 bytes".
# Prints "ok|bad bytes detail".
tcp_tx() { # HOST FILE SUM BYTES
	local reply
	reply=$(timeout "$TMO" nc "$1" 5001 <"$2" 2>&1)
	if [ "$reply" = "$3 $4" ]; then
		echo "ok $4 -"
	else
		echo "bad $4 sent=$3/$4,host=$(echo "$reply" | tr ' ' '/')"
	fi
}

# One TCP stream host -> guest of BYTES: the server sends "md5 bytes\n" then
# the data. Prints "ok|bad bytes detail".
tcp_rx() { # HOST BYTES
	local got
	got=$(echo "$2" | timeout "$TMO" nc "$1" 5002 2>/dev/null |
		{ read -r sum n; echo "$sum $n $(md5sum)"; })
	set -- $got
	if [ $# -ge 3 ] && [ "$1" = "$3" ]; then
		echo "ok $2 -"
	else
		echo "bad ${2:-0} host=${1:-none},guest=${3:-none}"
	fi
}

# irq_snapshot VIRTIO: "input.0=N output.0=N ..." for the device's MSI-X
# vectors (one CPU column: this kernel is uniprocessor).
irq_snapshot() {
	awk -v p="$1-" 'index($NF, p) == 1 { printf "%s=%s ", substr($NF, length(p) + 1), $2 }' /proc/interrupts
}

# Carrier: virtio-net reports link up once QEMU has the tap attached.
wait_carrier() { # IFACE
	local i=0 s
	while read -r s <"/sys/class/net/$1/operstate" && [ "$s" != up ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# Both streams with their results (res tcp_tx, res tcp_rx).
tcp_both() { # HOST
	local s v
	tcp_tx "$1" /tmp/blob "$BLOB_SUM" $((KIB * 1024)) >/tmp/tx &
	tcp_rx "$1" $((KIB * 1024)) >/tmp/rx &
	wait
	for s in tx rx; do
		set -- $(cat /tmp/$s)
		[ "$1" = ok ] && v=pass || v=fail
		res tcp_$s $v "bytes=$2" "$3"
	done
}

# Live migration of this guest while its streams run (rvt.mode=migrate).
migrate_test() { # IFACE N
	ifc=$1 cfg=migrate host=10.0.$2.1
	wait_carrier "$ifc"
	echo "GUEST-NIC-START $ifc $cfg"
	set -- $(ping_check "$host" 56)
	res ping_before_migration "${1:-fail}" "$2"
	# The host migrates once it sees this line, while the streams run.
	(sleep 1; echo "GUEST-MIGRATE-WINDOW") &
	tcp_both "$host"
	set -- $(ping_check "$host" 56)
	res ping_after_migration "${1:-fail}" "$2"
	echo "GUEST-NIC-DONE $ifc $cfg"
}

test_nic() { # IFACE N CONFIG
	ifc=$1 n=$2 cfg=$3 host=10.0.$2.1
	local vdev nq feats i size v s
	vdev=$(readlink "/sys/class/net/$ifc/device") vdev=${vdev##*/}
	# Queue pairs in use (tx-N: rx-N exist only with RPS or a per-queue group).
	nq=0
	for q in /sys/class/net/"$ifc"/queues/tx-*; do nq=$((nq + 1)); done
	read -r feats <"/sys/class/net/$ifc/device/features"
	echo "GUEST-INFO $ifc $cfg virtio=$vdev queues=$nq features=$feats"
	wait_carrier "$ifc"
	echo "GUEST-NIC-START $ifc $cfg"

	# One size after the other: busybox pings running at once lose replies
	# now and then even over QEMU's own (non-vhost) virtio-net.
	for size in 56 1 1472 1473 4000; do
		set -- $(ping_check "$host" "$size")
		res "ping_$size" "${1:-fail}" "$2"
	done

	tcp_both "$host"

	if [ "$nq" -gt 1 ]; then
		mq_test
	fi
	echo "GUEST-NIC-DONE $ifc $cfg"
}

# Several TCP streams at once in each direction; each socket hashes to a
# queue pair, so a few rounds make every queue carry traffic. Checks every
# stream's data, and that every queue's interrupt vector fired.
mq_test() {
	local before after per part_sum bad rounds streams bytes s f deltas idle kv q b a
	per=$((KIB * 1024 / STREAMS))
	head -c "$per" /tmp/blob >/tmp/blob_part
	part_sum=$(md5sum </tmp/blob_part)
	part_sum=${part_sum%% *}
	sync_point mq-start
	before=$(irq_snapshot "$vdev")
	bad=0 rounds=0 streams=0 bytes=0
	while :; do
		rounds=$((rounds + 1))
		s=0
		while [ $s -lt "$STREAMS" ]; do
			tcp_tx "$host" /tmp/blob_part "$part_sum" "$per" >/tmp/mq.tx.$s &
			tcp_rx "$host" "$per" >/tmp/mq.rx.$s &
			s=$((s + 1))
		done
		wait
		for f in /tmp/mq.tx.* /tmp/mq.rx.*; do
			set -- $(cat "$f")
			streams=$((streams + 1)) bytes=$((bytes + ${2:-0}))
			[ "$1" = ok ] || { bad=$((bad + 1)); echo "GUEST-INFO $ifc $cfg stream ${f#/tmp/mq.}: $*"; }
		done
		rm -f /tmp/mq.tx.* /tmp/mq.rx.*
		# Which queue vectors have fired since the start?
		after=$(irq_snapshot "$vdev")
		deltas="" idle=0
		for kv in $after; do
			q=${kv%%=*} a=${kv#*=} b=0
			case "$q" in input.* | output.*) ;; *) continue ;; esac
			for s in $before; do [ "${s%%=*}" = "$q" ] && b=${s#*=}; done
			deltas="$deltas,$q=$((a - b))"
			[ $((a - b)) -gt 0 ] || idle=$((idle + 1))
		done
		[ -n "$deltas" ] || idle=1
		[ $idle = 0 ] || [ $rounds -ge 4 ] && break
	done
	sync_point mq-end
	echo "GUEST-INFO $ifc $cfg mq_irq_deltas=${deltas#,} rounds=$rounds"
	[ $bad = 0 ] && v=pass || v=fail
	res mq_tcp $v "streams=$streams" "bytes=$bytes" "rounds=$rounds"
	[ $idle = 0 ] && v=pass || v=fail
	res mq_queues_used $v "irq_deltas=${deltas#,}"
}

# Bring every virtio-net interface up with its address first, then test.
ip link set lo up
list=""
for d in /sys/class/net/eth*; do
	[ -e "$d" ] || continue
	ifc=${d##*/}
	read -r mac <"$d/address"
	n=$((0x${mac##*:}))
	# A one-CPU guest starts with one queue pair: enable all of them.
	ch=$(channels "$ifc")
	case "$ch" in
	*max_combined=1) ;;
	*max_combined=*) ch=$(channels "$ifc" max 2>&1) ;;
	esac
	echo "GUEST-INFO $ifc - channels $ch"
	ip addr add "10.0.$n.2/24" dev "$ifc"
	ip link set "$ifc" up
	list="$list $n:$ifc"
done
[ -n "$list" ] || echo "GUEST-RESULT - - nics fail no virtio-net interface"

dd if=/dev/urandom of=/tmp/blob bs=1024 count="$KIB" 2>/dev/null
BLOB_SUM=$(md5sum </tmp/blob)
BLOB_SUM=${BLOB_SUM%% *}

for e in $(echo "$list" | tr ' ' '\n' | sort -n); do
	n=${e%%:*} ifc=${e#*:}
	if [ "$MODE" = migrate ]; then
		migrate_test "$ifc" "$n"
		break
	fi
	cfg=$(nth "$n" $NICS)
	test_nic "$ifc" "$n" "${cfg:-nic$n}"
done
echo "GUEST-DONE"
reboot -f
sleep 10
