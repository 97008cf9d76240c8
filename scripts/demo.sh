#!/usr/bin/env bash
# The main job: three compute-node "hosts" and a route reflector, each a network namespace on one
# underlay; a bagpipe-bgp per host (Linux dataplane: bridges, VXLAN, FDB, routes, rules over
# netlink) and our route reflector; "VMs" as namespaces attached through the REST API into one E-VPN
# and one IP VPN. It shows pings across hosts, the FDB bagpipe-bgp programmed and the looking glass.
#
#   ./scripts/demo.sh          bring everything up, show it (then leave it running)
#   ./scripts/demo.sh down     stop the daemons and delete every namespace it made
#
# Every step is a plain command an operator can run by hand. Needs root (namespaces). Only addresses
# inside these namespaces are used (192.0.2.0/24 underlay, 10.x overlays).
set -euo pipefail
cd "$(dirname "$0")/.."

P=bgpdemo                      # prefix of every namespace and file
RUN=/tmp/bagpipe-demo          # configuration files and logs
BIN=.build/debug
UNDERLAY=$P-net
HOSTS="a b c"
declare -A ADDR=([a]=192.0.2.1 [b]=192.0.2.2 [c]=192.0.2.3 [rr]=192.0.2.254)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
in_ns() { ip netns exec "$@"; }

down() {
    step "Tearing down"
    # The daemons were started with their configuration in $RUN: that finds them all.
    pkill -f "bagpipe-bgp --config-file $RUN/" 2>/dev/null || true
    for _ in $(seq 50); do pgrep -f "bagpipe-bgp --config-file $RUN/" >/dev/null || break; sleep 0.1; done
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns delete "$ns" && echo "deleted namespace $ns"; done
    rm -rf "$RUN"
}

if [ "${1:-up}" = "down" ]; then down; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (network namespaces)" >&2; exit 1; }
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
command -v ping >/dev/null || missing+=(iputils-ping)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ip netns list | grep -q "^$P-" && down

step "Building bagpipe-bgp and its tools (swift build)"
swift build >"$RUN.build.log" 2>&1 || { tail -30 "$RUN.build.log"; exit 1; }
tail -1 "$RUN.build.log"
mkdir -p "$RUN"

step "Underlay: a bridge in namespace $UNDERLAY; each host and the reflector plug into it (192.0.2.0/24)"
ip netns add $UNDERLAY
ip -n $UNDERLAY link add br0 type bridge
ip -n $UNDERLAY link set br0 up
for h in $HOSTS rr; do
    ns=$P-$h
    ip netns add $ns
    ip -n $ns link set lo up
    ip link add eth0 netns $ns type veth peer name port-$h netns $UNDERLAY
    ip -n $UNDERLAY link set dev port-$h master br0 up
    ip -n $ns link set eth0 mtu 1600 up
    ip -n $ns addr add ${ADDR[$h]}/24 dev eth0
    echo "namespace $ns: eth0 ${ADDR[$h]}"
done
ip -n $UNDERLAY link set br0 mtu 1600

step "Route reflector: bagpipe-bgp with route_reflector = True in namespace $P-rr"
cat > "$RUN/rr.conf" <<EOF
[BGP]
local_address = ${ADDR[rr]}
my_as = 64512
peers = ${ADDR[a]}, ${ADDR[b]}, ${ADDR[c]}
route_reflector = True
EOF
cat "$RUN/rr.conf"
in_ns $P-rr $BIN/bagpipe-bgp --config-file "$RUN/rr.conf" >"$RUN/rr.log" 2>&1 &

step "A bagpipe-bgp per host, Linux dataplane drivers for E-VPN and IP VPN"
for h in $HOSTS; do
    cat > "$RUN/$h.conf" <<EOF
[BGP]
local_address = ${ADDR[$h]}
peers = ${ADDR[rr]}
my_as = 64512
[API]
port = 8082
[DATAPLANE_DRIVER_EVPN]
dataplane_driver = linux
[DATAPLANE_DRIVER_IPVPN]
dataplane_driver = linux
EOF
    in_ns $P-$h $BIN/bagpipe-bgp --config-file "$RUN/$h.conf" >"$RUN/$h.log" 2>&1 &
done
cat "$RUN/a.conf"
for h in $HOSTS; do
    for _ in $(seq 100); do
        in_ns $P-$h curl -sf 127.0.0.1:8082/looking-glass/summary 2>/dev/null | grep -q '"BGP_established_peers":1' && break
        sleep 0.2
    done
    echo "host $h: $(in_ns $P-$h curl -s 127.0.0.1:8082/looking-glass/summary)"
done

attach() { # host vm-name ip type instance rt [extra…]
    local h=$1 vm=$2 ip=$3 type=$4 instance=$5 rt=$6; shift 6
    # The VM's namespace is made here: one made under `ip netns exec` would not be seen outside it.
    ip netns add $P-$vm
    show in_ns $P-$h $BIN/bagpipe-rest-attach --attach --network-type $type --port netns --netns $P-$vm --ip $ip \
        --vpn-instance-id $instance --rt $rt --api-port 8082 "$@" | grep -E '^(response|Local port)'
}

step "VMs in one E-VPN (VNI from the instance, VXLAN between the hosts): vm-a1, vm-b1, vm-c1 in 10.10.0.0/24"
attach a vm-a1 10.10.0.1/24 evpn demo-evpn 64512:10
attach b vm-b1 10.10.0.2/24 evpn demo-evpn 64512:10
attach c vm-c1 10.10.0.3/24 evpn demo-evpn 64512:10

step "VMs in one IP VPN (routed by each host, VXLAN between the hosts): vm-a2 in 10.20.1.0/24, vm-b2 in 10.20.2.0/24"
attach a vm-a2 10.20.1.1/24 ipvpn demo-ipvpn 64512:20
attach b vm-b2 10.20.2.1/24 ipvpn demo-ipvpn 64512:20

ping_until() { # from-namespace address
    for _ in $(seq 50); do in_ns "$1" ping -c1 -W1 "$2" >/dev/null 2>&1 && break; sleep 0.2; done
    show in_ns "$1" ping -c3 -i0.2 -W2 "$2"
}

step "E-VPN: vm-a1 pings vm-b1 and vm-c1 (ARP floods through the flood list, then unicast)"
ping_until $P-vm-a1 10.10.0.2
ping_until $P-vm-a1 10.10.0.3

step "IP VPN: vm-a2 pings vm-b2 in another subnet, through the gateway on each host"
ping_until $P-vm-a2 10.20.2.1

step "What bagpipe-bgp programmed on host A: the E-VPN bridge's FDB (remote MACs and the flood list)"
vx=$(ip -n $P-a -o link show type vxlan | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^bgpv-' | head -1)
show ip -n $P-a -d link show "$vx"
show bridge -n $P-a fdb show dev "$vx"

step "Host A's IP VPN: the VRF's policy rules and routing table (encap ip id <VNI> dst <remote host>)"
show ip -n $P-a rule show
table=$(ip -n $P-a rule show | awk '/iif ns-/ {for (i = 1; i < NF; i++) if ($i == "lookup") print $(i + 1); exit}')
show ip -n $P-a route show table "$table"

step "Host A's looking glass"
show in_ns $P-a $BIN/bagpipe-looking-glass --port 8082 summary
show in_ns $P-a $BIN/bagpipe-looking-glass --port 8082 vpns instances
show in_ns $P-a $BIN/bagpipe-looking-glass --port 8082 bgp peers

step "Done. Logs and configuration: $RUN. Tear down with: ./scripts/demo.sh down"
