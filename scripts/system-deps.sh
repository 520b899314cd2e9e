#!/usr/bin/env bash
# Install what callcontrol needs from Debian, once: debootstrap (to build the Asterisk root),
# PostgreSQL's server binaries (the tests start their own PostgreSQL), python3-venv, ffmpeg
# (recordings are compressed with it, through pydub), baresip-core (a real softphone: the TLS and
# SRTP call of tests/e2e/test_deploy_doc.py, and the cell handset of tests/e2e/test_softphones.py),
# linphone-cli (a second softphone there: DTMF as SIP INFO), chromium and chromium-driver (the
# staff console's browser tests drive the system's headless Chromium), systemd's systemd-analyze (the
# tests check the shipped units with it), and as root iproute2 (`make test` runs the end-to-end
# tests in parallel, each shard in a network namespace made with `ip netns`).
set -euo pipefail
need=()
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v systemd-analyze >/dev/null || [ -x /usr/bin/systemd-analyze ] || need+=(systemd)
command -v baresip >/dev/null || need+=(baresip-core)
command -v linphonec >/dev/null || need+=(linphone-cli)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
[ "$(id -u)" != 0 ] || command -v ip >/dev/null || need+=(iproute2)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "callcontrol needs these Debian packages: ${need[*]}" >&2
  echo "install them as root: apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
