#!/bin/bash
# Boot Debian 12's stock kernel (the one linux-image-amd64 names) under qemu
# and run the in-guest scenario (tests/vm/guest-test.sh) against the `queue`
# steering backend, which the development machines' kernel lacks.
#
#   tests/vm/run.sh BINARY        full scenario with the daemon (build/portsentry-nfq)
#   tests/vm/run.sh --no-daemon   kernel checks only (ruleset features, bypass)
#
# The kernel package is fetched with `apt-get download` and unpacked with
# `dpkg-deb` into tests/vm/cache/ (kernel image + the module trees the guest
# needs); it is never installed, and reused while linux-image-amd64 still
# names the same package version. Each run builds a fresh initramfs (busybox,
# dash as /bin/sh, the daemon, nft, ip, nmap, the netfilter modules), boots it
# under `timeout` and reads the serial console. Exit 0 only when the guest
# printed `VMTEST RESULT PASS`; a hang, a panic, a qemu error or a missing
# result line fails loudly with the console tail.
#
# Environment: VM_TIMEOUT (seconds, default 300), VM_MEM (MiB, default 512),
# VM_ACCEL (tcg|kvm, default: kvm only on a real kvm_intel/kvm_amd host),
# VM_KEEP=1 keep the initramfs build dir, VM_APPEND extra kernel arguments
# (e.g. rdinit=/bin/false to see a guest panic reported). The full console of the last run is
# kept in tests/vm/cache/last-console.log.
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$VM_DIR/cache
VM_TIMEOUT=${VM_TIMEOUT:-300}
VM_MEM=${VM_MEM:-512}
T0=$(date +%s.%N)

say() { printf 'vm: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

usage() { echo "usage: tests/vm/run.sh BINARY | --no-daemon" >&2; exit 2; }
[ $# -eq 1 ] || usage
BINARY=""
if [ "$1" != --no-daemon ]; then
    BINARY=$(realpath -e "$1" 2>/dev/null) || die "no daemon binary at '$1' (build it first: meson compile -C build)"
    [ -x "$BINARY" ] || die "$BINARY is not executable"
fi

for tool in qemu-system-x86_64 busybox dash cpio gzip dpkg-deb apt-get apt-cache ldd nft ip nmap timeout; do
    command -v "$tool" >/dev/null || die "missing $tool (run scripts/install-deps)"
done
# Debian's busybox (dynamic) lacks depmod; busybox-static provides the applets
# the guest and the depmod step need.
BUSYBOX=$(command -v busybox)
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static "$BUSYBOX" || die "$BUSYBOX is not the static busybox (apt-get install busybox-static)"

# ------------------------------------------------------------ kernel ------
# Resolve linux-image-amd64 → "linux-image-6.1.0-NN-amd64 VERSION" in one
# apt-cache call (each costs seconds); package + version is the cache key.
resolve_kernel_pkg() {
    apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends:.*\(linux-image-[0-9][^ ]*\) (= \([^)]*\)).*/\1 \2/p' | head -n1
}

fetch_kernel() {
    local pkg="" ver="" dir tmp deb
    read -r pkg ver < <(resolve_kernel_pkg || true) || true
    if [ -z "$pkg" ]; then
        say "apt does not know linux-image-amd64 yet: apt-get update"
        apt-get update -q >/dev/null 2>&1 || true
        read -r pkg ver < <(resolve_kernel_pkg || true) || true
    fi
    if [ -n "$pkg" ]; then
        dir=$CACHE/${pkg}_${ver}
        if [ -f "$dir/.complete" ]; then KDIR=$dir; return 0; fi
        say "fetching $pkg $ver (apt-get download, not installed)"
        mkdir -p "$CACHE"
        tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
        local sandbox=()
        [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
        if (cd "$tmp" && apt-get "${sandbox[@]}" -q download "$pkg=$ver" >&2); then
            deb=$(ls "$tmp"/*.deb)
            mkdir -p "$tmp/x"
            # Only what the guest needs: the image, the module index files and
            # the module trees holding netfilter, veth and their dependencies
            # (≈ 50 MB instead of ≈ 400 MB).
            dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards \
                './boot/vmlinuz-*' './boot/config-*' './lib/modules/*/modules.*' \
                './lib/modules/*/kernel/net/*' './lib/modules/*/kernel/lib/*' \
                './lib/modules/*/kernel/crypto/*' './lib/modules/*/kernel/arch/x86/crypto/*' \
                './lib/modules/*/kernel/drivers/net/veth.ko'
            local kver
            kver=$(ls "$tmp/x/lib/modules")
            # The .deb ships no modules.dep (the postinst runs depmod).
            "$BUSYBOX" depmod -b "$tmp/x" "$kver" || die "busybox depmod failed for $kver"
            [ -s "$tmp/x/lib/modules/$kver/modules.dep" ] || die "depmod wrote no modules.dep"
            printf '%s %s %s\n' "$pkg" "$ver" "$kver" >"$tmp/x/.complete"
            rm -rf "$dir"
            mv "$tmp/x" "$dir"
            rm -rf "$tmp"
            # Keep one kernel: drop the ones linux-image-amd64 no longer names.
            local old
            for old in "$CACHE"/linux-image-*; do
                [ "$old" = "$dir" ] || rm -rf "$old"
            done
            KDIR=$dir
            return 0
        fi
        rm -rf "$tmp"
        say "download of $pkg $ver failed"
    fi
    # No apt (offline mirror down): a cached kernel is still the stock one.
    local cached
    cached=$(find "$CACHE" -mindepth 2 -maxdepth 2 -path "$CACHE/linux-image-*/.complete" 2>/dev/null | sort | tail -n1)
    [ -n "$cached" ] || die "cannot fetch the stock kernel (linux-image-amd64) and nothing is cached in $CACHE"
    KDIR=$(dirname "$cached")
    say "WARNING: using the cached $(basename "$KDIR")"
}

KDIR=""
fetch_kernel
read -r KPKG KPKGVER KVER <"$KDIR/.complete"
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "cache $KDIR has no vmlinuz-$KVER"
say "kernel: $KPKG $KPKGVER ($KVER), cached in ${KDIR#"$VM_DIR"/}"
T_KERNEL=$(elapsed "$T0")

# --------------------------------------------------------- initramfs ------
WORK=$(mktemp -d /tmp/ps-vm.XXXXXX)
QEMU_PID=""
cleanup() {
    if [ -n "$QEMU_PID" ]; then kill -KILL "$QEMU_PID" 2>/dev/null || true; fi
    if [ "${VM_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,usr/lib,lib/x86_64-linux-gnu,lib64,etc,proc,sys,dev,tmp,run,root,var,usr/share/nmap}
ln -s ../../lib/x86_64-linux-gnu "$ROOT/usr/lib/x86_64-linux-gnu"
ln -s ../run "$ROOT/var/run"

# Copy a dynamically linked program flat into DEST (the real file, not a
# merged-/usr symlink) with every library ldd lists, at the path ldd shows.
# Process starts are expensive on these machines: one cp for all libraries.
copy_prog() {
    local src=$1 dest=$2 libs
    cp -L "$src" "$ROOT$dest" || die "cannot copy $src"
    libs=$(ldd "$src" | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }')
    # shellcheck disable=SC2086  # one path per word
    [ -z "$libs" ] || cp -L -n --parents $libs "$ROOT/" || die "cannot copy the libraries of $src"
}

cp "$BUSYBOX" "$ROOT/bin/busybox"
# Applet links are made by /init (`busybox --install -s`, which keeps existing
# files): dash is /bin/sh because Debian's busybox ash runs its own applets
# (an `ip` without netns) before PATH, and iproute2's ip is first in PATH.
ln -s ../bin/busybox "$ROOT/sbin/modprobe"   # the kernel's request_module helper
copy_prog "$(command -v dash)" /bin/sh
copy_prog "$(command -v nft)" /usr/sbin/nft
copy_prog "$(command -v ip)" /usr/sbin/ip
copy_prog "$(command -v nmap)" /usr/bin/nmap
[ -z "$BINARY" ] || copy_prog "$BINARY" /usr/sbin/portsentry-nfq
[ -e "$ROOT/lib64/ld-linux-x86-64.so.2" ] || die "the dynamic loader was not copied (ldd output changed?)"
cp /usr/share/nmap/{nmap-services,nmap-protocols,nmap-payloads,nmap-rpc,nmap-mac-prefixes} "$ROOT/usr/share/nmap/"
# Files nft, nmap and glibc read (protocol/service names, NSS: files only).
cp /etc/protocols /etc/services "$ROOT/etc/"
printf 'hosts: files\nnetworks: files\nprotocols: files\nservices: files\npasswd: files\ngroup: files\n' >"$ROOT/etc/nsswitch.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"

# Modules: netfilter (v4, v6, common), veth, and their modules.dep closure.
MODSRC=$KDIR/lib/modules/$KVER
MODDST=$ROOT/lib/modules/$KVER
mkdir -p "$MODDST"
cp "$MODSRC"/modules.* "$MODDST/"
want=$(cd "$MODSRC" && find kernel/net/netfilter kernel/net/ipv4/netfilter kernel/net/ipv6/netfilter \
    kernel/drivers/net/veth.ko kernel/crypto/crc32c_generic.ko -name '*.ko')
closure=$(awk -v want="$want" '
    BEGIN { n = split(want, w, "\n"); for (i = 1; i <= n; i++) need[w[i]] = 1 }
    { sub(":", "", $1); deps[$1] = ""; for (i = 2; i <= NF; i++) deps[$1] = deps[$1] " " $i }
    END {
        changed = 1
        while (changed) {
            changed = 0
            for (m in need) { k = split(deps[m], d, " "); for (i = 1; i <= k; i++) if (!(d[i] in need)) { need[d[i]] = 1; changed = 1 } }
        }
        for (m in need) print m
    }' "$MODSRC/modules.dep")
for m in $closure; do
    [ -f "$MODSRC/$m" ] || die "module $m (a dependency) is not in the cache; extend the extraction list"
done
# shellcheck disable=SC2086
(cd "$MODSRC" && cp --parents $closure "$MODDST/") || die "cannot copy the modules"

cp "$VM_DIR/guest-test.sh" "$ROOT/guest-test.sh"
chmod 755 "$ROOT/guest-test.sh"
{
    echo "VMTEST_DAEMON=$([ -n "$BINARY" ] && echo 1 || echo 0)"
    echo "VMTEST_KPKG='$KPKG $KPKGVER'"
} >"$ROOT/etc/vmtest.conf"

cat >"$ROOT/init" <<'EOF'
#!/bin/sh
# PID 1 of the test guest: mount the basics, run the scenario, power off.
# The result is only what the scenario prints; if it never prints a RESULT
# line (hang, crash) the host fails the run.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
rm -f /bin/ip
ip link set lo up
/bin/sh /guest-test.sh
echo "VMTEST EXIT $?"
poweroff -f
EOF
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$WORK/initrd.gz"
say "initramfs: $(du -h "$WORK/initrd.gz" | cut -f1) ($(find "$MODDST" -name '*.ko' | wc -l) modules)"
T_INITRD=$(elapsed "$T0")

# -------------------------------------------------------------- boot ------
# Nested KVM here is kvm_pvm (no vmx/svm): the stock kernel hangs or qemu
# aborts on it. Use KVM only with a real kvm_intel/kvm_amd and no kvm_pvm.
accel=${VM_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ ! -d /sys/module/kvm_pvm ]; then
        accel=kvm
    fi
fi
case $accel in
    kvm) accel_args=(-accel kvm -cpu host) ;;
    tcg) accel_args=(-accel "tcg,thread=multi" -cpu max) ;;
    *) die "VM_ACCEL must be tcg or kvm" ;;
esac

CONSOLE=$WORK/console.log
say "booting $KVER under qemu ($accel, ${VM_MEM} MiB, timeout ${VM_TIMEOUT}s)"
mkfifo "$WORK/serial"
# panic=-1 + -no-reboot: a panic ends qemu at once instead of hanging until
# the timeout; oops=panic makes any kernel oops fatal too.
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 "${accel_args[@]}" -m "$VM_MEM" -smp 2 \
    -kernel "$VMLINUZ" -initrd "$WORK/initrd.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 oops=panic quiet loglevel=4 ${VM_APPEND:-}" \
    -nographic -no-reboot -nic none -nodefaults -serial stdio -monitor none \
    </dev/null >"$WORK/serial" 2>"$WORK/qemu.err" &
QEMU_PID=$!
# Stream the console: result lines to the terminal as they come, everything
# to the log; stop at once when /init cannot run (the kernel would fall back
# to an interactive shell and sit there until the timeout).
fatal=""
while IFS= read -r line; do
    line=${line%$'\r'}
    # The first line can carry the BIOS's terminal escapes before it.
    case $line in ?*VMTEST\ *) line="VMTEST ${line#*VMTEST }" ;; esac
    printf '%s\n' "$line" >&3
    case $line in
        VMTEST*) printf '%s\n' "$line" ;;
        *"Failed to execute /init"* | *"No working init found"*)
            fatal=$line
            kill -TERM "$QEMU_PID" 2>/dev/null || true ;;
    esac
done <"$WORK/serial" 3>"$CONSOLE"
set +e
wait "$QEMU_PID"
rc=$?
set -e
QEMU_PID=""
cp "$CONSOLE" "$CACHE/last-console.log" 2>/dev/null || true
T_END=$(elapsed "$T0")

why=""
if [ -n "$fatal" ]; then
    why="guest could not start /init: $fatal"
elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    why="guest hung: no poweroff within ${VM_TIMEOUT}s"
elif grep -q 'Kernel panic' "$CONSOLE"; then
    why="guest kernel panicked"
elif [ "$rc" -ne 0 ]; then
    why="qemu exited with status $rc: $(tr '\n' ' ' <"$WORK/qemu.err")"
elif ! grep -q '^VMTEST' "$CONSOLE"; then
    why="guest printed nothing: the kernel did not boot or /init never ran (VM_MEM=${VM_MEM} MiB enough?)"
elif ! grep -q '^VMTEST RESULT ' "$CONSOLE"; then
    why="guest printed no VMTEST RESULT line"
elif ! grep -q '^VMTEST RESULT PASS$' "$CONSOLE"; then
    why="in-guest scenario failed"
fi

echo
echo "kernel tested: $KVER ($KPKG $KPKGVER, $(grep -m1 '^VMTEST INFO uname' "$CONSOLE" | cut -d' ' -f4- || true))"
echo "accel: $accel; wall time ${T_END}s (kernel ready ${T_KERNEL}s, initramfs built ${T_INITRD}s, guest $(awk -v a="$T_INITRD" -v b="$T_END" 'BEGIN { printf "%.1f", b - a }')s)"
if [ -n "$why" ]; then
    if grep -q '^VMTEST FAIL' "$CONSOLE"; then
        echo "failed checks:"
        grep '^VMTEST FAIL' "$CONSOLE"
    fi
    echo "---- console tail (full log: ${CACHE#"$PWD"/}/last-console.log) ----"
    grep -v '^VMTEST' "$CONSOLE" | tail -n 40
    say "FAIL: $why"
    exit 1
fi
echo "vm: PASS ($(grep -c '^VMTEST PASS' "$CONSOLE") checks)"
