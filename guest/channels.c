// SPDX-License-Identifier: GPL-2.0
/*
 * channels: the guest's `ethtool -l/-L IFACE combined N` (busybox has no
 * ethtool), for the real-client test's guest (guest/init.sh).
 *
 * usage: channels IFACE          prints "combined=N max_combined=M"
 *        channels IFACE N|max    sets the combined channel count, then prints
 *
 * virtio_net enables min(online CPUs, queue pairs) at probe, so a one-CPU
 * guest needs this to use a second queue pair. Built statically by
 * scripts/build-guest-initramfs; uses the ETHTOOL_[GS]CHANNELS ioctl.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int channels(int fd, const char *ifname, struct ethtool_channels *ch, __u32 cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ch->cmd = cmd;
	ifr.ifr_data = (void *)ch;
	return ioctl(fd, SIOCETHTOOL, &ifr);
}

int main(int argc, char **argv)
{
	struct ethtool_channels ch;
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s IFACE [N|max]\n", argv[0]);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	memset(&ch, 0, sizeof(ch));
	if (channels(fd, argv[1], &ch, ETHTOOL_GCHANNELS)) {
		fprintf(stderr, "%s: ETHTOOL_GCHANNELS: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (argc == 3) {
		ch.combined_count = strcmp(argv[2], "max") ? (__u32)strtoul(argv[2], NULL, 0) :
							     ch.max_combined;
		if (channels(fd, argv[1], &ch, ETHTOOL_SCHANNELS)) {
			fprintf(stderr, "%s: ETHTOOL_SCHANNELS combined %u: %s\n", argv[1],
				ch.combined_count, strerror(errno));
			return 1;
		}
		memset(&ch, 0, sizeof(ch));
		if (channels(fd, argv[1], &ch, ETHTOOL_GCHANNELS)) {
			fprintf(stderr, "%s: ETHTOOL_GCHANNELS: %s\n", argv[1], strerror(errno));
			return 1;
		}
	}
	printf("combined=%u max_combined=%u\n", ch.combined_count, ch.max_combined);
	close(fd);
	return 0;
}
