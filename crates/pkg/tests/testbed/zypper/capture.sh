#!/bin/sh
# Captures real `zypper --xmlout` outputs (testbeds.md C) into $1 (an
# absolute folder, created if missing):
#   list-patches.xml      zypper --xmlout list-patches --all
#   search.xml            zypper --xmlout search -s (every solvable: the
#                         tb-* packages, installed and not, and the patches)
#   info-patch.txt        zypper info -t patch TBSA-2023:0001 (plain text,
#                         for reference: where the packages of a patch are
#                         named, as Conflicts; list-patches does not name them)
#   install-dry-run.xml   zypper --xmlout install --dry-run --no-recommends
#                         tb-hello.noarch=1.1-1 tb-kernel.noarch=1.1-1 (exit 0)
#   install-missing.xml   the same with tb-hello.noarch=9.9-9, a version no
#                         repository has (exit 104, an error message)
#   install-locked.xml    the dry run while run/zypp.pid names a live process
#                         (a sleep started here; exit 7)
#   exit-codes.txt        the exit status of each install capture
# The temporary folder's path and the sleep's PID are replaced by /TESTBED
# and 4242 in the outputs, so they are reproducible.
# The repository is built by ../make-rpm-repo.sh and the root by
# make-zypper-root.sh in a temporary folder (removed on exit); zypper only
# ever runs with --root inside it, so this machine's /run/zypp.pid,
# /etc/zypp/repos.d and rpm database are untouched; ZYPP_LOGFILE keeps
# zypper's log out of the host's /var/log/zypper.log (which --root does not
# move).
# Needs zypper (Debian: zypper) and make-rpm-repo.sh's tools.
set -eu
OUT=${1:?usage: capture.sh OUT_DIR}
case "$OUT" in /*) ;; *) echo "capture.sh: absolute path required" >&2; exit 2 ;; esac
command -v zypper >/dev/null 2>&1 || { echo "capture.sh: zypper not found (Debian: apt-get install zypper)" >&2; exit 3; }
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/zypper-capture.XXXXXX")
SLEEPER=
trap '[ -z "$SLEEPER" ] || kill "$SLEEPER" 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
"$HERE/../make-rpm-repo.sh" "$T/tb"
"$HERE/make-zypper-root.sh" "$T/tb/repo" "$T/z"
mkdir -p "$OUT"
ROOT="$T/z/root"
export HOME="$T/z/home" TZ=UTC LC_ALL=C.UTF-8 LANG=C.UTF-8 ZYPP_LOGFILE="$ROOT/var/log/zypper.log"
zy() { zypper --root "$ROOT" --non-interactive --no-color "$@"; }
# list-patches exits 0 here; patch-check style codes (100/101) are not used.
zy --xmlout list-patches --all >"$OUT/list-patches.xml" 2>"$T/log" || { cat "$T/log" >&2; exit 5; }
zy --xmlout search -s >"$OUT/search.xml" 2>"$T/log" || { cat "$T/log" >&2; exit 5; }
zy info -t patch TBSA-2023:0001 >"$OUT/info-patch.txt" 2>"$T/log" || { cat "$T/log" >&2; exit 5; }
dry() { # output-file target…
    f=$1; shift
    rc=0
    zy --xmlout install --dry-run --no-recommends "$@" >"$OUT/$f" 2>"$T/log" || rc=$?
    echo "$f $rc" >>"$OUT/exit-codes.txt"
}
: >"$OUT/exit-codes.txt"
dry install-dry-run.xml tb-hello.noarch=1.1-1 tb-kernel.noarch=1.1-1
dry install-missing.xml tb-hello.noarch=9.9-9 tb-kernel.noarch=1.1-1
sleep 60 &
SLEEPER=$!
echo "$SLEEPER" >"$ROOT/run/zypp.pid"
dry install-locked.xml tb-hello.noarch=1.1-1
kill "$SLEEPER"
wait "$SLEEPER" 2>/dev/null || true
for f in list-patches.xml search.xml info-patch.txt install-dry-run.xml install-missing.xml install-locked.xml; do
    sed -i "s|$T|/TESTBED|g; s|pid $SLEEPER |pid 4242 |g" "$OUT/$f"
done
SLEEPER=
