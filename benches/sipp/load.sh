#!/usr/bin/env bash
# The SIP load benchmark: ivrpay serve (B2BUA + media relay, one process) against Kamailio +
# rtpengine (a stateful proxy calling rtpengine offer/answer/delete) on the same machine, in the
# same run, with the same SIPp customer and agent.
#
#   benches/sipp/load.sh              the full run (about half an hour; run it as root)
#   DURATION=10 benches/sipp/load.sh  a quick look (10 s steps: not the headline figure)
#   IVRPAY=target/release/ivrpay ...  that binary, without building
#
# For each setup the call rate is stepped up until a step fails; it prints the highest rate that
# ran DURATION seconds (60) with 0 failed calls, and the server CPU per call: utime+stime from
# /proc of the server processes (ivrpay; Kamailio's processes + rtpengine), before and after the
# run, divided by the calls. CPU per call is the fairer figure on a shared box: SIPp runs on the
# same cores. A step passes when SIPp's customer ends with every call successful and 0 failed.
#
# Modes (MODES, default all four):
#   ivrpay, kamailio               calls of HOLD_MS (1000) with no RTP: signalling and media
#                                  anchoring (ports, sessions, SDP rewrite)
#   ivrpay-media, kamailio-media   calls of MEDIA_HOLD_MS (8000) where the customer plays
#                                  sip-tester's g711a.pcap (7 s, PCMA) and the agent echoes it
#                                  (-rtp_echo): media both ways through the relay
# Rates: RATES (signalling) and MEDIA_RATES, in calls per second, ascending.
#
# It installs kamailio and rtpengine-daemon (userspace only) when run as root, builds ivrpay in
# release mode, uses fixed loopback ports 5060/5061/5070, 6000/6100, 22000-64999 (RTP, rested 1 s after a call as rtpengine runs with
# --delete-delay=0), 18080,
# 22222, and stops every process it started by PID. Logs and SIPp statistics: target/sipp-load/.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
here=$repo/benches/sipp
out=$repo/target/sipp-load
DURATION=${DURATION:-60}
HOLD_MS=${HOLD_MS:-1000}
MEDIA_HOLD_MS=${MEDIA_HOLD_MS:-8000}
RATES=${RATES:-"500 1000 1250 1500 1750 2000 2500 3000"}
MEDIA_RATES=${MEDIA_RATES:-"10 20 40 60 80 100 120"}
MODES=${MODES:-"ivrpay kamailio ivrpay-media kamailio-media"}
HZ=$(getconf CLK_TCK)
mkdir -p "$out"

need() { # program package
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" -ne 0 ]; then echo "$1 is missing: install the Debian package $2 (or run as root)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need sipp sip-tester
need kamailio kamailio
need rtpengine rtpengine-daemon
[ "$(id -u)" -eq 0 ] || { echo "run as root: SIPp's pcap play (the media modes) needs it" >&2; exit 1; }
# IVRPAY=path/to/ivrpay runs that binary as it is; otherwise a release build of the tree.
ivrpay=${IVRPAY:-}
if [ -z "$ivrpay" ]; then
  cargo build --release -q -p ivrpay
  ivrpay=$repo/target/release/ivrpay
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
trap cleanup EXIT

# utime+stime, in ms, of a process and (for Kamailio's forks) its children.
cpu_ms() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat")))
  done
  echo $((total * 1000 / HZ))
}
children() { awk -v p="$1" '{sub(/.*\) /, ""); if ($2 == p) print FILENAME}' /proc/[0-9]*/stat 2>/dev/null | cut -d/ -f3; }

# A column of the last row of a SIPp statistics file.
stat() { awk -F';' -v c="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == c) k = i} END {print $k + 0}' "$1"; }

wait_port() { # udp port
  for _ in $(seq 100); do ss -Hlun "sport = :$1" | grep -q . && return; sleep 0.1; done
  echo "nothing listens on udp $1" >&2; exit 1
}

# One step: MODE RATE. Prints a result line; returns 0 if every call passed.
step() {
  local mode=$1 rate=$2 media= hold=$HOLD_MS dir server_pids=() agent_scn=agent customer_scn=customer
  case $mode in *-media) media=1 hold=$MEDIA_HOLD_MS agent_scn=agent_media customer_scn=customer_media ;; esac
  dir=$out/$mode-$rate
  rm -rf "$dir"; mkdir -p "$dir"
  local calls=$((rate * DURATION))
  sipp -sf "$here/$agent_scn.xml" -i 127.0.0.1 -p 5070 -mi 127.0.0.1 -mp 6100 -key agent_rtp_port 6100 \
    ${media:+-rtp_echo} -nostdin -buff_size 4194304 -trace_stat -stf "$dir/uas.csv" -fd 5 \
    >"$dir/uas.out" 2>&1 &
  pids+=($!)
  case $mode in
    ivrpay*)
      # The shipped profile, but waiting 5 s for a first response from the contact centre
      # before giving up (2 s by default), as Kamailio's tm fr_timer does: on an overloaded
      # box the agent SIPp can be that slow, and both sides should be judged alike.
      mkdir -p "$dir/profiles"
      sed 's/^failover_timeout_ms = .*/failover_timeout_ms = 5000/' "$repo/sip-profiles/default.toml" \
        >"$dir/profiles/default.toml"
      IVRPAY_LOG=warn "$ivrpay" serve --data-dir "$dir/data" --profiles "$dir/profiles" --sip-listen 127.0.0.1:5060 \
        --http-listen 127.0.0.1:18080 --route-to sip:agents@127.0.0.1:5070 --rtp-ports 22000-64999 --rtp-quarantine 1 \
        >"$dir/ivrpay.log" 2>&1 &
      pids+=($!); server_pids=($!)
      wait_port 5060
      ;;
    kamailio*)
      rtpengine --config-file=none -t -1 -i 127.0.0.1 -n 127.0.0.1:22222 -m 22000 -M 64999 -f -E -L 4 \
        --delete-delay=0 --pidfile="$dir/rtpe.pid" >"$dir/rtpe.log" 2>&1 &
      pids+=($!); server_pids=($!)
      kamailio -f "$here/kamailio-rtpengine.cfg" -DD -E -m 1024 -M 16 -n 4 -Y "$dir" \
        -P "$dir/kam.pid" -A WITH_RTPENGINE >"$dir/kamailio.log" 2>&1 &
      pids+=($!); local kam=$!
      wait_port 5060
      sleep 0.5
      server_pids+=("$kam" $(children "$kam"))
      ;;
  esac
  wait_port 5070
  local before; before=$(cpu_ms "${server_pids[@]}")
  local t0; t0=$(date +%s.%N)
  local rc=0
  sipp 127.0.0.1:5060 -sf "$here/$customer_scn.xml" -i 127.0.0.1 -p 5061 -mi 127.0.0.1 -mp 6000 -s svc \
    -r "$rate" -rp 1000 -m "$calls" -d "$hold" -l $((rate * (hold / 1000 + 6))) -nostdin \
    -recv_timeout 10000 -timeout $((DURATION + hold / 1000 + 60))s -buff_size 4194304 \
    -trace_stat -stf "$dir/uac.csv" -fd 1 -trace_err -error_file "$dir/uac.errors" >"$dir/uac.out" 2>&1 || rc=$?
  local after; after=$(cpu_ms "${server_pids[@]}")
  local wall; wall=$(echo "$(date +%s.%N) - $t0" | bc)
  local media_line=
  if [ -n "$media" ] && [[ $mode == ivrpay* ]]; then
    media_line=$(curl -fsS http://127.0.0.1:18080/metrics 2>/dev/null |
      awk '/^ivrpay_media_rtp_packets_(in|out)_total\{leg=/ {sub(/^ivrpay_media_/, "", $1); printf "%s=%s ", $1, $2}' || true)
  fi
  cleanup
  local ok failed retrans
  ok=$(stat "$dir/uac.csv" 'SuccessfulCall(C)')
  failed=$(stat "$dir/uac.csv" 'FailedCall(C)')
  retrans=$(stat "$dir/uac.csv" 'Retransmissions(C)')
  local per_call
  per_call=-
  [ "$ok" -gt 0 ] && per_call=$(echo "scale=3; ($after - $before) / $ok" | bc)
  local cores; cores=$(echo "scale=2; ($after - $before) / ($wall * 1000)" | bc)
  printf '%-15s %6s cps  calls %7s ok %7s failed %6s retrans %6s  server CPU %6s ms/call (%s cores)  %s\n' \
    "$mode" "$rate" "$calls" "$ok" "$failed" "$retrans" "$per_call" "$cores" "$media_line" | tee -a "$out/results.txt"
  echo "$mode $rate $ok $failed $retrans $per_call" >>"$out/steps.txt"
  [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$ok" -eq "$calls" ]
}

: >"$out/steps.txt"
echo "== $(date -u +%FT%TZ) load benchmark: DURATION=${DURATION}s HOLD_MS=$HOLD_MS MEDIA_HOLD_MS=$MEDIA_HOLD_MS, $(nproc) cores" | tee -a "$out/results.txt"
declare -A best best_cpu
for mode in $MODES; do
  rates=$RATES; case $mode in *-media) rates=$MEDIA_RATES ;; esac
  best[$mode]=0; best_cpu[$mode]="-"
  for rate in $rates; do
    if step "$mode" "$rate"; then
      best[$mode]=$rate; best_cpu[$mode]=$(awk -v m="$mode" -v r="$rate" '$1 == m && $2 == r {print $6}' "$out/steps.txt" | tail -1)
    else
      break
    fi
  done
done
echo "== highest rate with 0 failed calls over ${DURATION}s, and server CPU per call at that rate" | tee -a "$out/results.txt"
for mode in $MODES; do
  printf '%-15s %6s cps  %8s ms CPU/call\n' "$mode" "${best[$mode]}" "${best_cpu[$mode]}" | tee -a "$out/results.txt"
done
for pair in "ivrpay kamailio" "ivrpay-media kamailio-media"; do
  set -- $pair
  if [ -n "${best[$1]:-}" ] && [ -n "${best[$2]:-}" ] && [ "${best[$2]}" != 0 ]; then
    echo "$1 / $2: calls/s $(echo "scale=2; ${best[$1]} / ${best[$2]}" | bc)x, CPU per call $(echo "scale=2; ${best_cpu[$1]} / ${best_cpu[$2]}" | bc 2>/dev/null || echo '?')x" |
      tee -a "$out/results.txt"
  fi
done
