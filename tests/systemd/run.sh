#!/bin/bash
# The Debian package under a real systemd: a Debian 12 root made with
# debootstrap, booted with systemd-nspawn (PID 1 of the test machines is not
# systemd; ../shared/SYSTEMD-NSPAWN.md has the facts), with no network. The
# in-guest scenario is tests/systemd/guest.sh: portsentry 1.2 installed and
# configured as the tutorials do, our .deb installed over it, then scans,
# reload, restart, watchdog, purge of 1.2, removal and purge of ours.
#
#   tests/systemd/run.sh DEB     (scripts/build-deb makes DEB)
#
# Every package the guest installs is downloaded on the host: the root is
# made by debootstrap from the host's configured Debian mirror, the guest's
# packages (systemd, nftables, nmap, rsyslog, our package's dependencies)
# are installed into it by chroot + apt-get before it ever boots, and
# portsentry 1.2's .deb is fetched with `apt-get download` in that chroot. The prepared root
# is cached in tests/systemd/cache/ (keyed by the package list); each run
# boots a throw-away overlay of it, so a warm run only boots and tests.
#
# Environment: SD_TIMEOUT (seconds for the guest scenario, default 420),
# SD_KEEP=1 keep the run's overlay for inspection.
# Exit 0 only when the guest printed "SDTEST RESULT PASS".
set -euo pipefail

SD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$SD_DIR/../.." && pwd)
CACHE=$SD_DIR/cache
SD_TIMEOUT=${SD_TIMEOUT:-420}
T0=$(date +%s.%N)

say() { printf 'systemd-test: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[ $# -eq 1 ] || { echo "usage: tests/systemd/run.sh PORTSENTRY_NFQ_DEB" >&2; exit 2; }
DEB=$(realpath -e "$1" 2>/dev/null) || die "no package at '$1' (build it: scripts/build-deb)"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mounts, systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter dpkg-deb apt-get mount chroot; do
    command -v "$tool" >/dev/null || die "missing $tool (run scripts/install-deps)"
done

# The host's own mirror (never a host name written into the project).
mirror() {
    local m
    m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    [ -n "$m" ] || m=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\(http[^[:space:]]*\)[[:space:]]\+bookworm[[:space:]].*/\2/p' \
        /etc/apt/sources.list 2>/dev/null | head -n1)
    [ -n "$m" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
    echo "$m"
}

# Our package's dependencies by name (versions and alternatives dropped:
# apt in the chroot picks what bookworm has, as `apt install ./DEB` would).
deb_deps() {
    dpkg-deb -f "$DEB" Depends Recommends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/^[A-Za-z-]*://; s/[[:space:]]//g' |
        grep -v '^$' | sort -u | tr '\n' ' '
}

# Guest packages: systemd as PID 1, the tools the scenario uses, syslog for
# the tutorial's `grep attackalert /var/log/syslog`, portsentry 1.2's
# net-tools, man-db (systemd-analyze verify checks Documentation=man:...),
# and the libraries our package links today. Whatever the .deb
# depends on beyond these is added to the cached root when a run first needs
# it (install_missing).
BASE_PKGS="systemd systemd-sysv dbus nftables iproute2 nmap rsyslog procps net-tools man-db \
libfmt9 libyaml-cpp0.7 libmnl0 libnftnl11 libnetfilter-queue1 libnetfilter-log1 libnfnetlink0 libsystemd0"

MOUNTS=()
# shellcheck disable=SC2317  # also invoked by the EXIT trap
cleanup_mounts() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
    MOUNTS=()
}

# chroot_apt ROOT CMD...: run apt in ROOT with the host's network; nothing
# may start meanwhile (policy-rc.d 101).
chroot_apt() {
    local root=$1 rc=0
    shift
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc" && MOUNTS+=("$root/proc")
    mount --bind /dev "$root/dev" && MOUNTS+=("$root/dev")
    DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c "$*" >>"$CACHE/chroot-apt.log" 2>&1 || rc=$?
    cleanup_mounts
    rm -f "$root/usr/sbin/policy-rc.d"
    # The booted guest has no network and no resolver.
    : >"$root/etc/resolv.conf"
    return "$rc"
}

build_root() {
    local dir=$1 tmp mirror_url
    mirror_url=$(mirror)
    say "building the guest root (debootstrap minbase bookworm from $mirror_url; cached afterwards)"
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/.root.XXXXXX")
    debootstrap --variant=minbase bookworm "$tmp" "$mirror_url" >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
    : >"$CACHE/chroot-apt.log"
    # man-db: no index rebuild on every install (its trigger costs minutes on a busy host).
    chroot_apt "$tmp" "echo 'man-db man-db/auto-update boolean false' | debconf-set-selections &&
        apt-get update -q && apt-get install -y -q --no-install-recommends $BASE_PKGS &&
        mkdir -p /root/debs && cd /root/debs && apt-get download -q portsentry && apt-get clean" ||
        { tail -n 30 "$CACHE/chroot-apt.log" >&2; rm -rf "$tmp"; die "installing the guest packages failed"; }
    echo sdtest >"$tmp/etc/hostname"
    # No login prompt on the console; nothing waits for a network.
    chroot "$tmp" systemctl mask console-getty.service getty@.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
    echo "$BASE_PKGS" >"$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

install_missing() {
    local root=$1 missing="" p
    for p in $(deb_deps); do
        # shellcheck disable=SC2016  # dpkg-query's format, not the shell's
        dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' "$p" 2>/dev/null |
            grep -q 'install ok installed' || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    say "adding$missing to the cached guest root"
    chroot_apt "$root" "apt-get update -q && apt-get install -y -q --no-install-recommends $missing && apt-get clean" ||
        { tail -n 30 "$CACHE/chroot-apt.log" >&2; die "installing$missing into the guest root failed"; }
}

# The cache key: the base package list and the suite.
KEY=$(printf 'bookworm minbase %s\n' "$BASE_PKGS" | sha256sum | cut -c1-12)
BASE=$CACHE/root-$KEY
trap cleanup_mounts EXIT
trap 'exit 130' INT TERM
if [ ! -f "$BASE/.complete" ]; then
    for old in "$CACHE"/root-*; do [ -e "$old" ] && [ "$old" != "$BASE" ] && rm -rf "$old"; done
    build_root "$BASE"
fi
install_missing "$BASE"
say "guest root: ${BASE#"$ROOT_DIR"/} ($(elapsed "$T0") s)"

# A throw-away overlay per run: the cached root stays pristine.
RUN=$CACHE/run
NSPAWN_PID=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill "$NSPAWN_PID" 2>/dev/null || true
        sleep 1
        kill -9 "$NSPAWN_PID" 2>/dev/null || true
    fi
    umount -l "$RUN/merged" 2>/dev/null || true
    [ "${SD_KEEP:-0}" = 1 ] || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
umount -l "$RUN/merged" 2>/dev/null || true
rm -rf "$RUN"
mkdir -p "$RUN/upper" "$RUN/work" "$RUN/merged"
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$RUN/merged" ||
    die "cannot mount an overlay of the guest root"
G=$RUN/merged

mkdir -p "$G/root/t"
cp "$DEB" "$G/root/t/"
cp "$SD_DIR/guest.sh" "$G/root/t/guest.sh"
cp "$ROOT_DIR"/tests/data/tutorial/* "$G/root/t/"

say "booting the guest (systemd-nspawn, private network)"
# --register=no --keep-unit: no host systemd/D-Bus to register with.
# --capability=all: CAP_NET_ADMIN etc. for nft inside the guest.
systemd-nspawn --register=no --keep-unit -q --private-network --capability=all \
    -D "$G" -b >"$RUN/console.log" 2>&1 &
NSPAWN_PID=$!

# The guest's PID 1 is a child of the nspawn process.
GPID=""
for _ in $(seq 1 100); do
    GPID=$(ps -o pid= --ppid "$NSPAWN_PID" 2>/dev/null | head -n1 | tr -d ' ' || true)
    # nspawn's short-lived intermediate child comes first: wait for systemd.
    [ -n "$GPID" ] && [ "$(cat "/proc/$GPID/comm" 2>/dev/null)" = systemd ] && break
    GPID=""
    sleep 0.1
done
[ -n "$GPID" ] || { cat "$RUN/console.log" >&2; die "the guest's PID 1 did not appear"; }
state=""
for _ in $(seq 1 150); do
    state=$(nsenter -t "$GPID" -a systemctl is-system-running 2>"$RUN/nsenter.err" || true)
    case "$state" in running | degraded) break ;; esac
    sleep 0.2
done
case "$state" in
    running | degraded) ;;
    *) tail -n 20 "$RUN/console.log" "$RUN/nsenter.err" >&2; die "guest systemd not up (state '$state')" ;;
esac
say "guest systemd is $state ($(elapsed "$T0") s)"

rc=0
timeout "$SD_TIMEOUT" nsenter -t "$GPID" -a /bin/bash /root/t/guest.sh 2>&1 | tee "$RUN/guest.log" || rc=$?
nsenter -t "$GPID" -a systemctl poweroff >/dev/null 2>&1 || true
for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
NSPAWN_PID=""
mkdir -p "$CACHE"
cp "$RUN/guest.log" "$CACHE/last-guest.log"
if grep -q '^SDTEST RESULT PASS' "$RUN/guest.log"; then
    say "PASS ($(elapsed "$T0") s)"
    exit 0
fi
[ "$rc" -eq 124 ] && say "the guest scenario timed out after $SD_TIMEOUT s"
die "guest scenario failed (log: tests/systemd/cache/last-guest.log)"
