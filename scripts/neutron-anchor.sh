#!/usr/bin/env bash
# The anchor of `bagpipe-bench controller`: neutron-server (Neutron from PyPI, its API under
# gunicorn as Neutron 2025+ runs it, ML2 with the vxlan type driver, networking-bgpvpn with its
# dummy driver, no Keystone) on MariaDB — Neutron's migrations no longer run on SQLite or
# PostgreSQL. All on 127.0.0.1, in DIR:
#   scripts/neutron-anchor.sh start DIR     prints the API URL (http://127.0.0.1:29696)
#   scripts/neutron-anchor.sh stop DIR
set -euo pipefail
action=$1
dir=$2
venv=${BAGPIPE_NEUTRON_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.build/python-neutron}
case $action in
start)
    mkdir -p "$dir/mysql"
    command -v mariadbd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
    if [ ! -x "$venv/bin/gunicorn" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check neutron networking-bgpvpn PyMySQL gunicorn
    fi
    chown mysql "$dir/mysql"
    mariadb-install-db --user=mysql --datadir="$dir/mysql/data" >/dev/null
    mariadbd --user=mysql --datadir="$dir/mysql/data" --socket="$dir/mysql/sock" --port=33306 --bind-address=127.0.0.1 --skip-log-bin >"$dir/mysql.log" 2>&1 &
    for _ in $(seq 1 30); do mariadb --socket="$dir/mysql/sock" -e "select 1" >/dev/null 2>&1 && break; sleep 1; done
    mariadb --socket="$dir/mysql/sock" -e "CREATE DATABASE neutron; CREATE USER 'neutron'@'127.0.0.1' IDENTIFIED BY 'neutron'; GRANT ALL ON neutron.* TO 'neutron'@'127.0.0.1';"
    cp "$venv/etc/neutron/api-paste.ini" "$dir/"
    cat >"$dir/neutron.conf" <<CONF
[DEFAULT]
api_paste_config = $dir/api-paste.ini
core_plugin = ml2
service_plugins = router,networking_bgpvpn.neutron.services.plugin.BGPVPNPlugin
auth_strategy = noauth
transport_url = fake:/
api_workers = 1
rpc_workers = 0
[database]
connection = mysql+pymysql://neutron:neutron@127.0.0.1:33306/neutron
[ml2]
type_drivers = vxlan
tenant_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security
[ml2_type_vxlan]
vni_ranges = 1000:9999
[quotas]
quota_port = -1
quota_network = -1
quota_subnet = -1
quota_router = -1
[service_providers]
service_provider = BGPVPN:Dummy:networking_bgpvpn.neutron.services.service_drivers.driver_api.BGPVPNDriver:default
CONF
    "$venv/bin/neutron-db-manage" --config-file "$dir/neutron.conf" upgrade heads >"$dir/db-manage.log" 2>&1
    # oslo.config reads sys.argv: the WSGI module sees no gunicorn arguments.
    printf 'import sys\nsys.argv = [sys.argv[0]]\nfrom neutron.wsgi.api import application  # noqa\n' >"$dir/neutron_wsgi.py"
    OS_NEUTRON_CONFIG_DIR="$dir" OS_NEUTRON_CONFIG_FILES="$dir/neutron.conf" \
        "$venv/bin/gunicorn" --chdir "$dir" -w 1 -b 127.0.0.1:29696 --pid "$dir/gunicorn.pid" neutron_wsgi:application >"$dir/gunicorn.log" 2>&1 &
    for _ in $(seq 1 90); do curl -s -m 2 http://127.0.0.1:29696/ >/dev/null && break; sleep 1; done
    echo http://127.0.0.1:29696
    ;;
stop)
    [ -f "$dir/gunicorn.pid" ] && kill "$(cat "$dir/gunicorn.pid")" 2>/dev/null || true
    mariadb-admin --socket="$dir/mysql/sock" shutdown 2>/dev/null || true
    rm -rf "$dir"
    ;;
esac
