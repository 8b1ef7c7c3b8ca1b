#!/usr/bin/env bash
# Install the edge agent on a Raspberry Pi (Raspberry Pi OS / Debian 12, aarch64), as root,
# from this checkout (the device bundle carries the configuration and keys). Safe to run
# again: it upgrades in place.
#
#   sudo firmware_config/deploy/install.sh            # install, enable and start
#   sudo firmware_config/deploy/install.sh --no-start # install and enable only
#
# Options for trying it elsewhere: --prefix DIR (default /opt/edge), --no-apt, --no-systemd,
# --no-user.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX=/opt/edge
APT=1 SYSTEMD=1 USER_SETUP=1 START=1
while (($#)); do
    case "$1" in
        --prefix) PREFIX="$2"; shift ;;
        --no-apt) APT=0 ;;
        --no-systemd) SYSTEMD=0 ;;
        --no-user) USER_SETUP=0 ;;
        --no-start) START=0 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
say() { printf '==> %s\n' "$*"; }

if ((APT)); then
    say "Debian packages: Python venv, pcscd, what pyscard builds with"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3-venv python3-dev gcc swig libpcsclite-dev pcscd
fi
if ((USER_SETUP)); then
    getent group gpio >/dev/null || groupadd --system gpio
    id edge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/edge --shell /usr/sbin/nologin \
        --groups gpio,plugdev,dialout edge
    install -d -m 0750 -o root -g edge /etc/edge
    install -d -m 0750 -o edge -g edge /var/lib/edge
fi

say "virtual environment in $PREFIX/venv"
python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --upgrade pip
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check \
    -c "$SRC/constraints.txt" "$SRC[pi,pcsc,nfc]"
install -m 0644 "$SRC/README.md" "$PREFIX/README.md"
install -d -m 0755 "$PREFIX/docs"
install -m 0644 "$SRC"/docs/*.md "$PREFIX/docs/"
"$PREFIX/venv/bin/edge-agent" --version

if ((SYSTEMD)); then
    install -m 0644 "$SRC/firmware_config/deploy/edge-agent.service" /etc/systemd/system/edge-agent.service
    systemctl daemon-reload
    systemctl enable edge-agent.service
    if [[ ! -f /etc/edge/agent.toml ]]; then
        say "no /etc/edge/agent.toml yet: copy one from $SRC/firmware_config/examples/, edit it,"
        say "check it with: $PREFIX/venv/bin/edge-agent check --config /etc/edge/agent.toml"
        say "then: systemctl start edge-agent"
    elif ((START)); then
        "$PREFIX/venv/bin/edge-agent" check --config /etc/edge/agent.toml
        systemctl restart edge-agent.service
        say "running: journalctl -u edge-agent -f"
    fi
fi
say "done"
