// The kernel's rtnetlink definitions (linux-libc-dev), so that message types, attribute numbers and
// struct layouts come from the headers instead of being copied by hand.
#pragma once
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/fib_rules.h>
#include <linux/lwtunnel.h>
#include <linux/veth.h>

// setns(2) needs _GNU_SOURCE, which Swift's Glibc module is not built with.
int cnetlink_enter_network_namespace(int fd);
