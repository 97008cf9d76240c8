"""Drives every resource of bagpipe-controller through openstacksdk and the openstack CLI.

Run by ControllerTests/ClientTests.swift: `python openstack_clients.py <auth_url>`. Each step
checks the answer and prints `ok <step>`; the first failure raises (non-zero exit, traceback).
"""
import json
import os
import subprocess
import sys

import openstack

AUTH_URL = sys.argv[1]
CLOUD = dict(auth_url=AUTH_URL, username="admin", password="secret", project_name="admin",
             user_domain_name="Default", project_domain_name="Default", region_name="RegionOne",
             identity_api_version="3")


def ok(step):
    print("ok", step, flush=True)


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def sdk():
    conn = openstack.connect(**CLOUD)
    net = conn.network
    demo = conn.identity.find_project("demo")
    expect(demo is not None, "project demo is found through Keystone")

    n = net.create_network(name="sdk-net", project_id=demo.id)
    expect(n.provider_network_type == "vxlan" and n.provider_segmentation_id >= 1000, n)
    expect(net.get_network(n.id).name == "sdk-net", "show network")
    expect(net.find_network("sdk-net").id == n.id, "find network by name")
    expect(any(x.id == n.id for x in net.networks(name="sdk-net")), "list networks by name")
    n = net.update_network(n, name="sdk-net2", mtu=1400)
    expect(n.name == "sdk-net2" and n.mtu == 1400, n)
    ok("sdk network")

    s = net.create_subnet(network_id=n.id, cidr="10.10.0.0/24", ip_version=4, name="sdk-sub",
                          project_id=demo.id)
    expect(s.gateway_ip == "10.10.0.1", s)
    expect(s.allocation_pools == [{"start": "10.10.0.2", "end": "10.10.0.254"}], s)
    s6 = net.create_subnet(network_id=n.id, cidr="2001:db8:10::/64", ip_version=6,
                           project_id=demo.id)
    s = net.update_subnet(s, name="sdk-sub2", dns_nameservers=["192.0.2.53"])
    expect(s.dns_nameservers == ["192.0.2.53"], s)
    expect(sorted(net.get_network(n.id).subnet_ids) == sorted([s.id, s6.id]), "network lists its subnets")
    ok("sdk subnet")

    p = net.create_port(network_id=n.id, name="sdk-port", binding_host_id="compute-1",
                        project_id=demo.id)
    expect(p.mac_address.startswith("fa:16:3e:"), p)
    expect(p.status == "DOWN" and p.binding_host_id == "compute-1", p)
    expect({ip["subnet_id"] for ip in p.fixed_ips} == {s.id, s6.id}, p.fixed_ips)
    p2 = net.create_port(network_id=n.id, fixed_ips=[{"subnet_id": s.id, "ip_address": "10.10.0.50"}],
                         project_id=demo.id)
    expect(p2.fixed_ips == [{"subnet_id": s.id, "ip_address": "10.10.0.50"}], p2.fixed_ips)
    p = net.update_port(p, name="sdk-port2", admin_state_up=False)
    expect(p.name == "sdk-port2" and p.is_admin_state_up is False, p)
    expect(len(list(net.ports(network_id=n.id))) == 2, "list ports by network")
    ok("sdk port")

    r = net.create_router(name="sdk-router", project_id=demo.id)
    itf = net.add_interface_to_router(r, subnet_id=s.id)
    expect(itf["subnet_id"] == s.id and itf["port_id"], itf)
    rp = net.get_port(itf["port_id"])
    expect(rp.device_owner == "network:router_interface" and rp.fixed_ips[0]["ip_address"] == "10.10.0.1", rp)
    r = net.update_router(r, name="sdk-router2")
    expect(r.name == "sdk-router2", r)
    ok("sdk router")

    b = net.create_bgpvpn(name="sdk-vpn", route_targets=["64512:100"], import_targets=["64512:101"],
                          export_targets=["64512:102"], local_pref=100, vni=5000, project_id=demo.id)
    expect(b.route_targets == ["64512:100"] and b.vni == 5000 and b.local_pref == 100, b)
    b = net.update_bgpvpn(b, name="sdk-vpn2", route_targets=["64512:100", "64512:103"])
    expect(b.route_targets == ["64512:100", "64512:103"], b)
    expect(net.get_bgpvpn(b.id).name == "sdk-vpn2", "show bgpvpn")
    expect(any(x.id == b.id for x in net.bgpvpns()), "list bgpvpns")
    ok("sdk bgpvpn")

    # A second network for the network association (net1's subnet is behind the router).
    n3 = net.create_network(name="sdk-net3", project_id=demo.id)
    na = net.create_bgpvpn_network_association(b, network_id=n3.id, project_id=demo.id)
    expect(na.network_id == n3.id, na)
    expect(net.get_bgpvpn_network_association(b, na).id == na.id, "show network association")
    expect([x.id for x in net.bgpvpn_network_associations(b)] == [na.id], "list network associations")
    b2 = net.create_bgpvpn(name="sdk-vpn-router", route_targets=["64512:200"], project_id=demo.id)
    ra = net.create_bgpvpn_router_association(b2, router_id=r.id, project_id=demo.id)
    expect(ra.router_id == r.id, ra)
    ra = net.update_bgpvpn_router_association(b2, ra, advertise_extra_routes=False)
    expect(ra.advertise_extra_routes is False, ra)
    expect([x.id for x in net.bgpvpn_router_associations(b2)] == [ra.id], "list router associations")
    pa = net.create_bgpvpn_port_association(
        b, port_id=p2.id, project_id=demo.id,
        routes=[{"type": "prefix", "prefix": "20.0.0.0/24", "local_pref": 300}])
    expect(pa.routes == [{"type": "prefix", "prefix": "20.0.0.0/24", "local_pref": 300}], pa.routes)
    pa = net.update_bgpvpn_port_association(
        b, pa, routes=[{"type": "bgpvpn", "bgpvpn_id": b2.id}], advertise_fixed_ips=False)
    expect(pa.routes == [{"type": "bgpvpn", "bgpvpn_id": b2.id, "local_pref": None}] and pa.advertise_fixed_ips is False, pa)
    expect([x.id for x in net.bgpvpn_port_associations(b)] == [pa.id], "list port associations")
    bgpvpn = net.get_bgpvpn(b.id)
    expect(bgpvpn.networks == [n3.id] and bgpvpn.ports == [p2.id], bgpvpn)
    ok("sdk associations")

    net.delete_bgpvpn_port_association(b, pa)
    net.delete_bgpvpn_router_association(b2, ra)
    net.delete_bgpvpn_network_association(b, na)
    expect(list(net.bgpvpn_network_associations(b)) == [], "network association deleted")
    net.delete_bgpvpn(b)
    net.delete_bgpvpn(b2)
    expect(net.find_bgpvpn(b.id) is None, "bgpvpn deleted")
    net.remove_interface_from_router(r, subnet_id=s.id)
    expect(net.find_port(itf["port_id"]) is None, "router interface port deleted")
    net.delete_router(r)
    net.delete_port(p)
    net.delete_port(p2)
    net.delete_subnet(s)
    net.delete_subnet(s6)
    net.delete_network(n)
    net.delete_network(n3)
    expect(net.find_network(n.id) is None, "network deleted")
    ok("sdk delete")


def cli(*args):
    env = dict(os.environ, OS_AUTH_URL=AUTH_URL, OS_USERNAME="admin", OS_PASSWORD="secret",
               OS_PROJECT_NAME="admin", OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
               OS_IDENTITY_API_VERSION="3", OS_REGION_NAME="RegionOne")
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "openstack"), *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError("openstack %s: %s" % (" ".join(args), out.stderr))
    if "-f" in args and "json" in args:
        return json.loads(out.stdout)
    return out.stdout


def openstack_cli():
    n = cli("network", "create", "cli-net", "--project", "demo", "-f", "json")
    expect(n["provider:network_type"] == "vxlan", n)
    s = cli("subnet", "create", "--network", "cli-net", "--subnet-range", "10.20.0.0/24", "--project", "demo",
            "cli-sub", "-f", "json")
    expect(s["gateway_ip"] == "10.20.0.1", s)
    p = cli("port", "create", "--network", "cli-net", "--host", "compute-1", "--project", "demo", "cli-port", "-f", "json")
    expect(p["binding_host_id"] == "compute-1", p)
    cli("port", "set", "--name", "cli-port2", "cli-port")
    expect(cli("port", "show", "cli-port2", "-f", "json")["id"] == p["id"], "port renamed")
    r = cli("router", "create", "--project", "demo", "cli-router", "-f", "json")
    cli("router", "add", "subnet", "cli-router", "cli-sub")
    ports = cli("port", "list", "--router", "cli-router", "-f", "json")
    expect(len(ports) == 1, ports)
    cli("network", "set", "--name", "cli-net2", "cli-net")
    cli("subnet", "set", "--name", "cli-sub2", "cli-sub")
    cli("router", "set", "--name", "cli-router2", "cli-router")
    ok("cli network subnet port router")

    b = cli("bgpvpn", "create", "--name", "cli-vpn", "--route-target", "64512:300", "--project", "demo", "-f", "json")
    expect(b["route_targets"] == ["64512:300"], b)
    cli("bgpvpn", "set", "--route-target", "64512:301", "cli-vpn")
    b = cli("bgpvpn", "show", "cli-vpn", "-f", "json")
    expect(sorted(b["route_targets"]) == ["64512:300", "64512:301"], b)
    expect(any(x["ID"] == b["id"] for x in cli("bgpvpn", "list", "-f", "json")), "bgpvpn list")
    n2 = cli("network", "create", "cli-net3", "--project", "demo", "-f", "json")
    na = cli("bgpvpn", "network", "association", "create", "cli-vpn", "cli-net3", "--project", "demo", "-f", "json")
    expect(na["network_id"] == n2["id"], na)
    expect(cli("bgpvpn", "network", "association", "show", na["id"], "cli-vpn", "-f", "json")["id"] == na["id"], "net assoc show")
    expect(len(cli("bgpvpn", "network", "association", "list", "cli-vpn", "-f", "json")) == 1, "net assoc list")
    vr = cli("bgpvpn", "create", "--name", "cli-vpn-r", "--route-target", "64512:400", "--project", "demo", "-f", "json")
    ra = cli("bgpvpn", "router", "association", "create", "cli-vpn-r", "cli-router2", "--project", "demo", "-f", "json")
    expect(ra["router_id"] == r["id"], ra)
    expect(len(cli("bgpvpn", "router", "association", "list", "cli-vpn-r", "-f", "json")) == 1, "router assoc list")
    pa = cli("bgpvpn", "port", "association", "create", "cli-vpn", "cli-port2", "--project", "demo",
             "--prefix-route", "prefix=30.0.0.0/24,local_pref=200", "-f", "json")
    expect(pa["port_id"] == p["id"], pa)
    cli("bgpvpn", "port", "association", "set", pa["id"], "cli-vpn", "--no-advertise-fixed-ips")
    shown = cli("bgpvpn", "port", "association", "show", pa["id"], "cli-vpn", "-f", "json")
    expect(shown["advertise_fixed_ips"] is False, shown)
    expect(len(cli("bgpvpn", "port", "association", "list", "cli-vpn", "-f", "json")) == 1, "port assoc list")
    ok("cli bgpvpn and associations")

    cli("bgpvpn", "port", "association", "delete", pa["id"], "cli-vpn")
    cli("bgpvpn", "router", "association", "delete", ra["id"], "cli-vpn-r")
    cli("bgpvpn", "network", "association", "delete", na["id"], "cli-vpn")
    cli("bgpvpn", "delete", "cli-vpn", "cli-vpn-r")
    cli("router", "remove", "subnet", "cli-router2", "cli-sub2")
    cli("router", "delete", "cli-router2")
    cli("port", "delete", "cli-port2")
    cli("subnet", "delete", "cli-sub2")
    cli("network", "delete", "cli-net2", "cli-net3")
    expect(cli("network", "list", "-f", "json") == [], "everything deleted")
    ok("cli delete")


sdk()
openstack_cli()
