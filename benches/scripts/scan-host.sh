#!/usr/bin/env bash
# Scan of this machine (read-only) by the agent against apt's own views of
# "what is upgradable", in one run: median wall time of N runs (default 7)
# after one warm-up, and peak RSS. Also the agent's release binary size,
# stripped. Prints Markdown rows for docs/benchmarks.md.
#
#   benches/scripts/scan-host.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-7}
cargo build -q --release -p patchfleet-agent
agent=target/release/patchfleet-agent

rss_file=$(mktemp)
trap 'rm -f "$rss_file"' EXIT

# measure CMD...: "median-wall-ms max-rss-KiB" of $n runs.
measure() {
    local times=() t0 t1 r rss=0
    "$@" >/dev/null 2>&1 || true
    for ((i = 0; i < n; i++)); do
        t0=$(date +%s%N)
        /usr/bin/time -f %M -o "$rss_file" "$@" >/dev/null 2>&1 || true
        r=$(tail -1 "$rss_file")
        t1=$(date +%s%N)
        times+=($(((t1 - t0) / 1000000)))
        ((r > rss)) && rss=$r
    done
    echo "$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') $rss"
}

read -r agent_facts agent_facts_rss < <(measure "$agent" facts)
read -r agent_scan agent_scan_rss < <(measure "$agent" scan --predefined AWS-DebianDefaultPatchBaseline)
read -r _ agent_min_rss < <(measure "$agent" --version)
read -r apt_list apt_list_rss < <(measure apt list --upgradable)
read -r apt_sim apt_sim_rss < <(measure apt-get -s -o Debug::NoLocking=1 dist-upgrade)

upgradable=$(apt list --upgradable 2>/dev/null | grep -c upgradable || true)
installed=$(dpkg-query -W | wc -l)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "machine: $(nproc) cores, $installed packages installed, $upgradable upgradable; median of $n runs"
echo
echo "| command | median | peak RSS | vs apt list --upgradable |"
echo "|---|---|---|---|"
echo "| \`patchfleet-agent facts\` | ${agent_facts} ms | $((agent_facts_rss / 1024)) MB | $(ratio "$agent_facts" "$apt_list")× |"
echo "| \`patchfleet-agent scan --predefined AWS-DebianDefaultPatchBaseline\` | ${agent_scan} ms | $((agent_scan_rss / 1024)) MB | $(ratio "$agent_scan" "$apt_list")× |"
echo "| \`apt list --upgradable\` | ${apt_list} ms | $((apt_list_rss / 1024)) MB | 1.00× |"
echo "| \`apt-get -s dist-upgrade\` | ${apt_sim} ms | $((apt_sim_rss / 1024)) MB | $(ratio "$apt_sim" "$apt_list")× |"
echo
echo "agent resident memory at rest (\`--version\`, peak): $((agent_min_rss / 1024)) MB"
stripped=$(mktemp)
strip -o "$stripped" "$agent"
echo "release binary: $(stat -c %s "$agent") bytes, stripped $(stat -c %s "$stripped") bytes ($(awk -v s="$(stat -c %s "$stripped")" 'BEGIN { printf "%.1f", s / 1048576 }') MiB)"
rm -f "$stripped"
