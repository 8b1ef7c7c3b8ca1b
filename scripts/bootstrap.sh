# Sourced by ./check and ./demo: install what this project needs, idempotently.
# Debian packages (apt-get, as root), then a virtual environment in .venv with the
# pinned versions from constraints.txt. Re-running does nothing when nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Debian packages: pcscd and the vpcd virtual reader for the PC/SC tests, mosquitto for the
# MQTT tests and the demo broker, what pyscard builds with (it has no wheel for Linux),
# chromium for the console's browser tests and a Japanese font for its screenshots, and
# PostgreSQL for the central log of many sites (the tests start private clusters of it).
APT_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig gcc systemd mosquitto chromium
    fonts-ipafont-gothic postgresql-15)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    say "installing Debian packages: ${need_apt[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# The newest Python 3.11+ on PATH.
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        PYTHON="$candidate"; break
    fi
done
if [[ -z "$PYTHON" ]]; then
    say "no Python 3.11+ found: installing Debian's python3"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
    PYTHON=python3
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV with $($PYTHON --version)"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

# Reinstall only when the project's requirements or pins changed.
STAMP="$VENV/.installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
    say "installing Python packages (pinned by constraints.txt)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c "$ROOT/constraints.txt" -e "$ROOT[dev,pcsc,nfc,sim,console,rooms]"
    echo "$WANT" >"$STAMP"
fi
export PATH="$VENV/bin:$PATH"

# Matrix Synapse, the real UC server the presence tests start, in a virtual environment of its
# own (its pins clash with the project's); reinstalled only when its pins change.
SYNAPSE_VENV="$VENV/synapse"
SYNAPSE_STAMP="$SYNAPSE_VENV/.installed"
SYNAPSE_WANT="$(sha256sum "$ROOT/constraints-synapse.txt" | cut -d' ' -f1)"
if [[ ! -f "$SYNAPSE_STAMP" || "$(cat "$SYNAPSE_STAMP")" != "$SYNAPSE_WANT" ]]; then
    say "installing Matrix Synapse into $SYNAPSE_VENV (pinned by constraints-synapse.txt)"
    [[ -x "$SYNAPSE_VENV/bin/python" ]] || "$PYTHON" -m venv "$SYNAPSE_VENV"
    "$SYNAPSE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c "$ROOT/constraints-synapse.txt" "matrix-synapse==1.163.2"
    echo "$SYNAPSE_WANT" >"$SYNAPSE_STAMP"
fi
