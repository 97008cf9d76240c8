#!/usr/bin/env bash
# The project's test command: installs what the tests need when it is missing, builds, runs every
# test (unit, conformance over ../shared/vectors, tshark cross-check, tools), then a short fuzz smoke run.
# Needs root for apt-get on a fresh machine. The shared data: see scripts/shared-dir.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/shared-dir.sh
if [ ! -d "$shared/vectors" ]; then
    echo "test.sh: the conformance vectors are not at $shared/vectors (set BAGPIPE_SHARED)" >&2
    exit 2
fi
export BAGPIPE_SHARED="$shared"

# Debian packages the tests use: tshark (Wireshark cross-check), the interop peers gobgpd, FRR
# (bgpd, and zebra for the EVPN dataplane interop), ExaBGP and BIRD 2, iproute2 and ping (network
# namespaces, real packets), Graphviz (bagpipe-impex2dot's output), curl, Open vSwitch (the ovs
# drivers' tests start their own ovsdb-server and ovs-vswitchd per namespace), ethtool, and
# PostgreSQL (the controller's tests run on a private server, started below for the whole run).
missing=()
command -v tshark >/dev/null 2>&1 || missing+=(tshark)
command -v gobgpd >/dev/null 2>&1 || missing+=(gobgpd)
[ -x /usr/lib/frr/bgpd ] || missing+=(frr)
command -v exabgp >/dev/null 2>&1 || missing+=(exabgp)
command -v bird >/dev/null 2>&1 || missing+=(bird2)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
command -v bridge >/dev/null 2>&1 || missing+=(iproute2)
[ -x /usr/sbin/ovs-vswitchd ] || missing+=(openvswitch-switch)
command -v ethtool >/dev/null 2>&1 || missing+=(ethtool)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The original's Python clients (PyPI networking-bagpipe) for the compatibility tests, in a virtualenv.
export BAGPIPE_PYTHON_VENV="$PWD/.build/python-bagpipe"
if [ ! -x "$BAGPIPE_PYTHON_VENV/bin/bagpipe-rest-attach" ]; then
    echo "test.sh: installing networking-bagpipe (PyPI) in $BAGPIPE_PYTHON_VENV"
    mkdir -p .build
    if ! python3 -m venv "$BAGPIPE_PYTHON_VENV" 2>/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        /usr/bin/python3 -m venv "$BAGPIPE_PYTHON_VENV"
    fi
    "$BAGPIPE_PYTHON_VENV/bin/pip" install -q --disable-pip-version-check networking-bagpipe
fi

# The OpenStack clients the controller's tests run unchanged (tempest with neutron-tempest-plugin,
# openstacksdk, python-openstackclient), from PyPI, in their own virtualenv.
export BAGPIPE_OPENSTACK_VENV="$PWD/.build/python-openstack"
if [ ! -x "$BAGPIPE_OPENSTACK_VENV/bin/tempest" ] || [ ! -x "$BAGPIPE_OPENSTACK_VENV/bin/openstack" ]; then
    echo "test.sh: installing tempest, neutron-tempest-plugin, openstacksdk, python-openstackclient (PyPI) in $BAGPIPE_OPENSTACK_VENV"
    mkdir -p .build
    python3 -m venv "$BAGPIPE_OPENSTACK_VENV" 2>/dev/null || /usr/bin/python3 -m venv "$BAGPIPE_OPENSTACK_VENV"
    "$BAGPIPE_OPENSTACK_VENV/bin/pip" install -q --disable-pip-version-check tempest neutron-tempest-plugin openstacksdk python-openstackclient
fi

# schemathesis (PyPI), against the controller's OpenAPI description.
export BAGPIPE_SCHEMATHESIS_VENV="$PWD/.build/python-schemathesis"
if [ ! -x "$BAGPIPE_SCHEMATHESIS_VENV/bin/schemathesis" ]; then
    echo "test.sh: installing schemathesis (PyPI) in $BAGPIPE_SCHEMATHESIS_VENV"
    python3 -m venv "$BAGPIPE_SCHEMATHESIS_VENV" 2>/dev/null || /usr/bin/python3 -m venv "$BAGPIPE_SCHEMATHESIS_VENV"
    "$BAGPIPE_SCHEMATHESIS_VENV/bin/pip" install -q --disable-pip-version-check schemathesis
fi

swift build --build-tests

# One PostgreSQL server for the run, on 127.0.0.1, stopped (and its folder removed) however the run ends.
pgdir=$(mktemp -d /tmp/bagpipe-postgres.XXXXXX)
trap 'scripts/postgres.sh stop "$pgdir"' EXIT
BAGPIPE_POSTGRES_URL=$(scripts/postgres.sh start "$pgdir")
export BAGPIPE_POSTGRES_URL

# The speaker's and the agent's tests, then the controller's: the controller's drive Python clients
# (tempest, the openstack CLI, schemathesis) whose load would slow the dataplane tests' timers beside
# them. Then the scenarios end to end (ScenarioTests: up to 10 compute nodes each, the demo), one at
# a time: each fills the machine's two cores with its own daemons.
swift test --skip-build --parallel --skip ControllerTests --skip ScenarioTests
swift test --skip-build --parallel --filter ControllerTests
swift test --skip-build --no-parallel --filter ScenarioTests

# A short deterministic fuzz run keeps the fuzzer building and finding nothing (the long run is in BENCHMARKS.md).
swift run --skip-build bgp-wire-fuzz --shared "$shared" --minutes 0.5 --seed "${BAGPIPE_FUZZ_SEED:-7}" --max-ms 200 --out .build/fuzz-out
