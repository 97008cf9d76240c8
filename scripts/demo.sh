#!/usr/bin/env bash
# The main job. Until the daemon and the namespace demo land (issues 3 to 6), it decodes sample
# messages: the two benchmark UPDATEs, and every BGP message of a real capture.
set -eu
cd "$(dirname "$0")/.."
. scripts/shared-dir.sh
swift build --product bagpipe-bgp-decode >/dev/null
decode=.build/debug/bagpipe-bgp-decode
echo "== A VPNv4 UPDATE of 251 routes (first route shown)"
$decode "$shared/bench/vpnv4-update.hex" | head -c 700; echo " ..."
echo "== An EVPN MAC/IP UPDATE (first route shown)"
$decode "$shared/bench/evpn-update.hex" | head -c 700; echo " ..."
echo "== A capture of three BGP sessions (NetGauze), message types and families"
$decode "$shared/vectors/netgauze/bgp/multiple-sessions/traffic.pcap" | head -5
