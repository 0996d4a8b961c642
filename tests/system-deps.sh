#!/usr/bin/env bash
# Installs the Debian packages the project drives for real: venv support for Python, Java for
# TLC, OpenSSH server and iptables for the harness's local hosts, Chromium for browser tests.
# Runs as root (CI, a fresh machine); without root it lists what is missing and returns 0,
# and the tests that need the missing parts skip with a reason.
set -euo pipefail
need=()
python3 -c "import ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${#need[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${need[*]} (install them as root; dependent tests will skip)"
    exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
