#!/usr/bin/env bash
# The main job, end to end: a controller node (bagpipe-controller: the Neutron and BGPVPN API), a
# route reflector and three compute nodes (bagpipe-agent and bagpipe-bgp on each, Linux dataplane),
# every one a network namespace on one underlay. Networks, subnets, ports and a BGPVPN are created
# with the `openstack` CLI (in a virtualenv under .build/ when missing; curl if it cannot be
# installed), "VMs" (namespaces) are plugged on their ports, and the demo shows:
#   1. a Neutron network realized as an E-VPN: VMs on three hosts ping each other;
#   2. reachability travels over BGP only where needed: a host holds the routes of the networks it
#      has ports on, and none of the others (RT-Constraint at the reflector);
#   3. a BGPVPN associated to two networks: their VMs ping each other through an IP VPN;
#   4. the controller's view of one host: configuration only, no MAC or IP of another host.
#
#   ./scripts/demo.sh          bring everything up, show it (then leave it running)
#   ./scripts/demo.sh down     stop every process and delete every namespace it made
#
# Every step is a plain command an operator can run by hand. Needs root (namespaces). Only addresses
# inside these namespaces are used (192.0.2.0/24 underlay, 10.x overlays).
set -euo pipefail
cd "$(dirname "$0")/.."

P=bgpdemo                      # prefix of every namespace
RUN=/tmp/bagpipe-demo          # configuration files, databases and logs
BIN=$PWD/.build/debug
HOSTS="compute-1 compute-2 compute-3"
declare -A ADDR=([compute-1]=192.0.2.1 [compute-2]=192.0.2.2 [compute-3]=192.0.2.3 [rr]=192.0.2.254 [controller]=192.0.2.250)
VENV=$PWD/.build/python-openstack

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
in_ns() { ip netns exec "$@"; }

down() {
    step "Tearing down"
    # Every process was started with its configuration in $RUN: that finds them all.
    pkill -f -- "--config-file $RUN/" 2>/dev/null || true
    for _ in $(seq 50); do pgrep -f -- "--config-file $RUN/" >/dev/null || break; sleep 0.1; done
    pkill -9 -f -- "--config-file $RUN/" 2>/dev/null || true
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
mkdir -p "$RUN"

# BAGPIPE_DEMO_SKIP_BUILD=1: the binaries are built already (the test that runs this demo).
if [ -z "${BAGPIPE_DEMO_SKIP_BUILD:-}" ]; then
    step "Building bagpipe-controller, bagpipe-agent, bagpipe-bgp and the tools (swift build)"
    swift build >"$RUN/build.log" 2>&1 || { tail -30 "$RUN/build.log"; exit 1; }
    tail -1 "$RUN/build.log"
fi

# The openstack CLI, as an operator would use it; curl when it cannot be installed.
if [ ! -x "$VENV/bin/openstack" ]; then
    step "Installing python-openstackclient in $VENV (once)"
    (python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check python-openstackclient) >"$RUN/pip.log" 2>&1 \
        || echo "could not install the openstack CLI (see $RUN/pip.log): using curl"
fi
CLI=$([ -x "$VENV/bin/openstack" ] && echo openstack || echo curl)

step "Underlay: a bridge in namespace $P-net; the controller, the reflector and each host plug into it (192.0.2.0/24)"
ip netns add $P-net
ip -n $P-net link add br0 type bridge
ip -n $P-net link set br0 up mtu 1600
for h in controller rr $HOSTS; do
    ns=$P-$h
    ip netns add $ns
    ip -n $ns link set lo up
    ip link add eth0 netns $ns type veth peer name p-$h netns $P-net
    ip -n $P-net link set dev p-$h master br0 up
    ip -n $ns link set eth0 mtu 1600 up
    ip -n $ns addr add ${ADDR[$h]}/24 dev eth0
    echo "namespace $ns: eth0 ${ADDR[$h]}"
done

step "Controller node: bagpipe-controller (Neutron and networking-bgpvpn API, Keystone v3 tokens, SQLite)"
cat > "$RUN/controller.conf" <<EOF
[DEFAULT]
bind_host = ${ADDR[controller]}
bind_port = 9696
[database]
connection = sqlite:///$RUN/controller.db
[ml2_type_vxlan]
vni_ranges = 1000:1999
[identity]
admin = secret, admin, admin
compute-1 = secret, service, agent
compute-2 = secret, service, agent
compute-3 = secret, service, agent
EOF
cat "$RUN/controller.conf"
ip netns exec $P-controller "$BIN/bagpipe-controller" --config-file "$RUN/controller.conf" >"$RUN/controller.log" 2>&1 &
for _ in $(seq 100); do in_ns $P-controller curl -sf http://${ADDR[controller]}:9696/ >/dev/null 2>&1 && break; sleep 0.2; done

step "Route reflector: bagpipe-bgp with route_reflector = True (RT-Constraint: each host gets only what it imports)"
cat > "$RUN/rr.conf" <<EOF
[BGP]
local_address = ${ADDR[rr]}
my_as = 64512
peers = ${ADDR[compute-1]}, ${ADDR[compute-2]}, ${ADDR[compute-3]}
route_reflector = True
EOF
cat "$RUN/rr.conf"
ip netns exec $P-rr "$BIN/bagpipe-bgp" --config-file "$RUN/rr.conf" >"$RUN/rr.log" 2>&1 &

step "Each compute node: bagpipe-bgp (Linux drivers) and bagpipe-agent (watching its view on the controller)"
for h in $HOSTS; do
    cat > "$RUN/bgp-$h.conf" <<EOF
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
    cat > "$RUN/agent-$h.conf" <<EOF
[DEFAULT]
host = $h
[controller]
url = http://${ADDR[controller]}:9696
username = $h
password = secret
[agent]
dataplane = linux
extensions = bagpipe, bagpipe_bgpvpn
[BAGPIPE]
bagpipe_bgp_port = 8082
[ml2_bagpipe_extension]
as_number = 64512
EOF
    ip netns exec $P-$h "$BIN/bagpipe-bgp" --config-file "$RUN/bgp-$h.conf" >"$RUN/bgp-$h.log" 2>&1 &
    ip netns exec $P-$h "$BIN/bagpipe-agent" --config-file "$RUN/agent-$h.conf" >"$RUN/agent-$h.log" 2>&1 &
done
cat "$RUN/agent-compute-1.conf"
for h in $HOSTS; do
    for _ in $(seq 150); do
        in_ns $P-$h curl -sf 127.0.0.1:8082/looking-glass/summary 2>/dev/null | grep -q '"BGP_established_peers":1' && break
        sleep 0.2
    done
    echo "$h: $(in_ns $P-$h curl -s 127.0.0.1:8082/looking-glass/summary)"
done

# --- The API, through the openstack CLI (or curl) inside the controller's namespace --------------
export OS_AUTH_URL=http://${ADDR[controller]}:9696/v3 OS_USERNAME=admin OS_PASSWORD=secret OS_PROJECT_NAME=admin \
    OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3
os() { printf '$ openstack %s\n' "$*" >&2; in_ns $P-controller "$VENV/bin/openstack" "$@"; }
TOKEN=
api() { # method path [body]: one call with curl, the answer's JSON on stdout
    [ -n "$TOKEN" ] || TOKEN=$(in_ns $P-controller curl -si -X POST http://${ADDR[controller]}:9696/v3/auth/tokens -H 'Content-Type: application/json' \
        -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"secret"}}}}}' \
        | awk 'tolower($1)=="x-subject-token:" {print $2}' | tr -d '\r')
    printf '$ curl -X %s %s %s\n' "$1" "$2" "${3:-}" >&2
    in_ns $P-controller curl -s -X "$1" "http://${ADDR[controller]}:9696$2" -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

network() { # name cidr → network id
    if [ $CLI = openstack ]; then
        local id; id=$(os network create "$1" -f value -c id)
        os subnet create "$1-subnet" --network "$id" --subnet-range "$2" -f value -c id >/dev/null
        echo "$id"
    else
        local id; id=$(api POST /v2.0/networks "{\"network\":{\"name\":\"$1\"}}" | field 'd["network"]["id"]')
        api POST /v2.0/subnets "{\"subnet\":{\"network_id\":\"$id\",\"cidr\":\"$2\",\"ip_version\":4}}" >/dev/null
        echo "$id"
    fi
}

declare -A VM_IP
boot() { # vm-name network-id host: a port bound to the host, and a VM namespace plugged on it
    local vm=$1 net=$2 h=$3 port
    if [ $CLI = openstack ]; then
        port=$(os port create "$vm" --network "$net" --host "$h" --device-owner compute:nova -f json)
    else
        port=$(api POST /v2.0/ports "{\"port\":{\"name\":\"$vm\",\"network_id\":\"$net\",\"binding:host_id\":\"$h\",\"device_owner\":\"compute:nova\"}}" | field 'd["port"]')
        port=$(echo "$port" | sed "s/'/\"/g")
    fi
    local id mac ip gw
    id=$(echo "$port" | field 'd["id"]')
    mac=$(echo "$port" | field 'd["mac_address"]')
    ip=$(echo "$port" | field 'd["fixed_ips"][0]["ip_address"]')
    gw=$(echo "$ip" | sed 's/\.[0-9]*$/.1/')
    VM_IP[$vm]=$ip
    # As Nova's Linux plugging leaves it: tap<first 11 of the port id> on the host, eth0 in the VM.
    ip netns add $P-$vm
    ip -n $P-$h link add "tap${id:0:11}" type veth peer name eth0 netns $P-$vm
    ip -n $P-$vm link set eth0 address "$mac" up
    ip -n $P-$vm addr add "$ip/24" dev eth0
    ip -n $P-$vm route add default via "$gw"
    echo "VM $vm on $h: port ${id:0:8}… $mac $ip (tap${id:0:11})"
}

ping_until() { # vm address
    for _ in $(seq 100); do in_ns $P-$1 ping -c1 -W1 "$2" >/dev/null 2>&1 && break; sleep 0.2; done
    show in_ns $P-$1 ping -c3 -i0.2 -W2 "$2"
}

step "1. A Neutron network is an E-VPN: net1 (10.1.0.0/24) with a VM on each host (through $CLI)"
NET1=$(network net1 10.1.0.0/24)
boot vm1 "$NET1" compute-1
boot vm2 "$NET1" compute-2
boot vm3 "$NET1" compute-3
ping_until vm1 "${VM_IP[vm2]}"
ping_until vm1 "${VM_IP[vm3]}"
echo "The agents derived route target 64512:<VNI> from the network's VXLAN id and attached each port:"
show in_ns $P-compute-1 "$BIN/bagpipe-looking-glass" --port 8082 vpns instances

step "2. Reachability travels over BGP, only where needed: net2 (10.2.0.0/24) has a VM on compute-3 only"
NET2=$(network net2 10.2.0.0/24)
boot vm4 "$NET2" compute-3
for _ in $(seq 50); do in_ns $P-compute-3 curl -s 127.0.0.1:8082/looking-glass/vpns/instances | grep -q "$NET2" && break; sleep 0.2; done
routes() { # host: the E-VPN routes its bagpipe-bgp holds, by route target
    in_ns $P-$1 curl -s 127.0.0.1:8082/looking-glass/bgp/routes | python3 -c '
import json, sys, collections
count = collections.Counter()
for family, routes in json.load(sys.stdin).items():
    if family.startswith("l2vpn/evpn"):
        for r in routes:
            for v in r.values(): count[" ".join(v.get("route_targets", []))] += 1
print("  ", dict(count) or "none")'
}
VNI1=$(api GET /v2.0/networks/$NET1 2>/dev/null | field 'd["network"]["provider:segmentation_id"]')
VNI2=$(api GET /v2.0/networks/$NET2 2>/dev/null | field 'd["network"]["provider:segmentation_id"]')
echo "net1 is VNI $VNI1 (route target 64512:$VNI1), net2 is VNI $VNI2 (64512:$VNI2). E-VPN routes each host holds:"
for h in $HOSTS; do echo "$h:"; routes $h; done
for _ in $(seq 50); do routes compute-1 | grep -q "64512:$VNI1" && routes compute-3 | grep -q "64512:$VNI1" && break; sleep 0.2; done
if routes compute-1 | grep -q "64512:$VNI2" || routes compute-2 | grep -q "64512:$VNI2"; then
    echo "demo.sh: compute-1 or compute-2 holds a route of net2, where it has no port" >&2; exit 1
fi
echo "compute-1 and compute-2 hold no route of net2: the reflector sends each host only the route targets it asked for (RT-Constraint)."

step "3. A BGPVPN joins net1 and net2 in an IP VPN (route target 64512:100)"
if [ $CLI = openstack ]; then
    VPN=$(os bgpvpn create --name vpn1 --route-target 64512:100 -f value -c id)
    os bgpvpn network association create "$VPN" "$NET1" -f value -c id >/dev/null
    os bgpvpn network association create "$VPN" "$NET2" -f value -c id >/dev/null
else
    VPN=$(api POST /v2.0/bgpvpn/bgpvpns '{"bgpvpn":{"name":"vpn1","route_targets":["64512:100"]}}' | field 'd["bgpvpn"]["id"]')
    api POST /v2.0/bgpvpn/bgpvpns/$VPN/network_associations "{\"network_association\":{\"network_id\":\"$NET1\"}}" >/dev/null
    api POST /v2.0/bgpvpn/bgpvpns/$VPN/network_associations "{\"network_association\":{\"network_id\":\"$NET2\"}}" >/dev/null
fi
ping_until vm1 "${VM_IP[vm4]}"
echo "compute-1's VRF for net1 (routes of both networks, encap to the host that has each VM):"
table=$(ip -n $P-compute-1 rule show | awk '/lookup/ && !/local|main|default/ {for (i = 1; i < NF; i++) if ($i == "lookup") print $(i + 1); exit}')
[ -n "$table" ] && show ip -n $P-compute-1 route show table "$table"

step "4. What the controller sends compute-1: its view (ports, networks, subnets, associations; no other host's MAC or IP)"
api GET /v2.0/agent/hosts/compute-1/view | python3 -c '
import json, sys
v = json.load(sys.stdin)
for o in v["objects"]:
    x = o["object"]
    what = {"port": lambda: x["mac_address"] + " " + " ".join(i["ip_address"] for i in x["fixed_ips"]),
            "network": lambda: "%s VNI %s" % (x["name"], x["provider:segmentation_id"]),
            "subnet": lambda: x["cidr"],
            "network_association": lambda: "network %s… to BGPVPN %s %s" % (x["network_id"][:8], x["bgpvpn"]["name"], x["bgpvpn"]["route_targets"])}
    print("   %-20s %s…  %s" % (o["kind"], o["id"][:8], what.get(o["kind"], lambda: "")()))
print("   resource_version", v["resource_version"], "(agents resume their watch from it)")'
[ $CLI = openstack ] && os port list --host compute-1 -c ID -c "MAC Address" -c "Fixed IP Addresses" -c Status

step "Done. Logs and configuration: $RUN. Tear down with: ./scripts/demo.sh down"
