#!/bin/sh
# deps.sh — install every build and test dependency of kelp from Debian (idempotent).
# Each component lists its packages in scripts/deps.d/<component>.list (words; '#' comments).
# Run as root on Debian 12. Packages already installed are skipped, so a second run is quick
# and needs no network.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

wanted=$(cat "$here"/deps.d/*.list | sed 's/#.*//' | tr -s ' \t\n' '\n' | sort -u)
missing=""
for p in $wanted; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || apt-get update
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
