#!/usr/bin/env bash
# Build a Debian sid root holding Asterisk 22 and SIPp, once, outside the repository.
# Usage: build-root.sh ROOT
# Debian 12 has no asterisk package and sid's needs a newer libc, so it lives in its own root
# (see shared LAB-NOTES). The host's apt mirror is reused. Safe to rerun: an existing, complete
# root (marker file .callcontrol-ready) is left alone.
set -euo pipefail
root=${1:?usage: build-root.sh ROOT}
fixups() {
  # Run on every call, so an older root gets them too.
  local r=$1
  # The sounds package installs its voice under a name of its own; Asterisk looks under "en".
  if [ ! -e "$r/usr/share/asterisk/sounds/en" ] && [ ! -L "$r/usr/share/asterisk/sounds/en" ] && [ -d "$r/usr/share/asterisk/sounds/en_US_f_Allison" ]; then
    ln -s en_US_f_Allison "$r/usr/share/asterisk/sounds/en"
  fi
  # DNS in the root makes Asterisk crawl: the host's hosts file, and no unreachable nameserver.
  cp /etc/hosts "$r/etc/hosts"
  : > "$r/etc/resolv.conf"
}
# One builder at a time (parallel test runs and labs share the root): a second waits here, then
# finds the root ready; without the lock it would delete the first one's build in progress.
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
if [ -f "$root/.callcontrol-ready" ]; then
  fixups "$root"
  echo "asterisk root ready at $root"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap" >&2
  apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null
fi
mirror=$(grep -rhE '^[^#]*https?://' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
tmp="$root.partial"
rm -rf "$tmp"
mkdir -p "$(dirname "$root")"
echo "debootstrap sid into $tmp from $mirror" >&2
debootstrap --variant=minbase sid "$tmp" "$mirror" >&2
cat > "$tmp/etc/apt/apt.conf.d/99callcontrol" <<'CONF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
CONF
# DNS in the root makes Asterisk crawl: the host's hosts file, and no unreachable nameserver.
cp /etc/hosts "$tmp/etc/hosts"
chroot "$tmp" apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y -q --no-install-recommends \
  asterisk asterisk-core-sounds-en-gsm sip-tester >&2
fixups "$tmp"
chroot "$tmp" asterisk -V >&2
touch "$tmp/.callcontrol-ready"
mv "$tmp" "$root"
echo "asterisk root ready at $root"
