#!/usr/bin/env bash
# The relay load test: N concurrent masked calls through ivrpay's relay, then the same load
# through rtpengine (Debian rtpengine-daemon, userspace only, DTMF-security=silence,
# delay-buffer=40, in-band detection on), in the same run. Prints, per relay: CPU per stream
# (% of one core), packet loss, the latency added beyond the lookahead (p50/p99), how many
# DTMF key packets reached the agent unmasked, and the CPU ratio.
#
#   benches/media-load.sh [CALLS...]        # default 2000; e.g. "300 2000"
#
# Environment: MEASURE_SECONDS (10), WARMUP_SECONDS (3), RELAY_FLAGS (extra flags for
# media-relay, e.g. --tick-us 0 to wake per datagram), SKIP_RTPENGINE=1, QUIET_WAIT (seconds to wait, before
# each run, for the rest of the machine to fall below 10 % busy; 0 by default). Each result
# says how busy the rest of the machine was during the run ("others CPU").
# Every call: customer → relay → agent and agent → relay → customer, PCMU at 50 packets/s,
# real speech with a DTMF key every 2.5 s on the customer's side. The generator (rtp-load)
# and the relay run on this machine; only the relay process's CPU time is counted.
# As root it installs what it needs (rtpengine-daemon, the speech corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$repo/target/media-load
mkdir -p "$work"
calls_list=("$@")
((${#calls_list[@]})) || calls_list=(2000)
measure=${MEASURE_SECONDS:-10}
warmup=${WARMUP_SECONDS:-3}
read -r -a relay_flags <<<"${RELAY_FLAGS:-}"
customer_port=15000
agent_port=15002

"$repo/test-audio/prepare-talkoff.sh" "$repo/target/test-support/talkoff" >/dev/null
export IVRPAY_TALKOFF_CORPUS=$repo/target/test-support/talkoff
if [ -z "${SKIP_RTPENGINE:-}" ] && ! command -v rtpengine >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "rtpengine is missing: install the Debian package rtpengine-daemon (or run as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rtpengine-daemon >/dev/null
fi
cargo build --release -q -p ivrpay-benches --bin media-relay --bin rtp-load
bin=$repo/target/release
# Four sockets per call in each relay.
ulimit -n "$(ulimit -Hn)"
for calls in "${calls_list[@]}"; do
  if ((4 * calls + 256 > $(ulimit -n))); then
    echo "$calls calls need $((4 * calls + 256)) file descriptors; the limit is $(ulimit -n)" >&2
    exit 1
  fi
done

# Busy share (%) of the whole machine over one second.
busy_pct() {
  local a b
  read -r -a a < <(head -1 /proc/stat)
  sleep 1
  read -r -a b < <(head -1 /proc/stat)
  local busy=0 total=0 i d
  for i in 1 2 3 4 5 6 7 8; do
    d=$((b[i] - a[i]))
    total=$((total + d))
    [[ $i != 4 ]] && busy=$((busy + d))
  done
  echo $((100 * busy / (total > 0 ? total : 1)))
}

wait_quiet() {
  local waited=0
  while ((waited < ${QUIET_WAIT:-0})); do
    (($(busy_pct) < 10)) && return 0
    waited=$((waited + 1))
  done
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

run_ivrpay() { # CALLS
  local calls=$1 fifo=$work/relay.in
  rm -f "$fifo" && mkfifo "$fifo"
  "$bin/media-relay" --calls "$calls" --customer "127.0.0.1:$customer_port" \
    --agent "127.0.0.1:$agent_port" --ports 16000-31999 --ports-file "$work/ports.txt" \
    "${relay_flags[@]}" <"$fifo" >"$work/relay.out" 2>&1 &
  local relay=$!
  pids+=("$relay")
  exec 7>"$fifo" # the relay runs until this closes
  until grep -q '^ready' "$work/relay.out"; do
    kill -0 "$relay" 2>/dev/null || { cat "$work/relay.out" >&2; return 1; }
    sleep 0.2
  done
  "$bin/rtp-load" --target ivrpay --ports-file "$work/ports.txt" --calls "$calls" --pid "$relay" \
    --seconds "$measure" --warmup "$warmup" --customer-port "$customer_port" \
    --agent-port "$agent_port" --label ivrpay >>"$work/results.jsonl"
  exec 7>&-
  wait "$relay"
  tail -1 "$work/relay.out" >>"$work/relay-totals.jsonl"
}

run_rtpengine() { # CALLS
  local calls=$1 run=$work/rtpengine
  mkdir -p "$run"
  rm -f "$run/rtpe.pid"
  # Userspace only (-t -1), loopback, warnings only, ports enough for 4 per call.
  rtpengine --config-file=none -t -1 -i 127.0.0.1 -n 127.0.0.1:22222 -m 32000 -M 47999 -f -E \
    -L 4 --delete-delay=0 --pidfile="$run/rtpe.pid" >"$run/rtpe.log" 2>&1 &
  local rtpe=$!
  pids+=("$rtpe")
  until ss -lun | grep -q '127.0.0.1:22222 '; do
    kill -0 "$rtpe" 2>/dev/null || { cat "$run/rtpe.log" >&2; return 1; }
    sleep 0.2
  done
  "$bin/rtp-load" --target rtpengine --ng 127.0.0.1:22222 --calls "$calls" --pid "$rtpe" \
    --seconds "$measure" --warmup "$warmup" --customer-port "$customer_port" \
    --agent-port "$agent_port" --label rtpengine >>"$work/results.jsonl"
  kill "$rtpe"
  wait "$rtpe" 2>/dev/null || true
}

: >"$work/results.jsonl"
: >"$work/relay-totals.jsonl"
for calls in "${calls_list[@]}"; do
  wait_quiet
  echo "== $calls calls: ivrpay" >&2
  run_ivrpay "$calls"
  if [ -z "${SKIP_RTPENGINE:-}" ]; then
    wait_quiet
    echo "== $calls calls: rtpengine" >&2
    run_rtpengine "$calls"
  fi
done

python3 - "$work/results.jsonl" "$work/relay-totals.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
totals = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
print(f"{'relay':10} {'calls':>6} {'CPU %':>7} {'CPU/stream %':>13} {'loss up/down':>13} "
      f"{'added p50/p99 us (up)':>22} {'(down)':>14} {'keys unmasked':>14} {'gen lag p99 us':>15} {'others CPU %':>13}")
for r in rows:
    up, down = r["uplink"], r["downlink"]
    print(f"{r['label']:10} {r['calls']:>6} {r['relay_cpu_pct']:>7.1f} {r['cpu_per_stream_pct']:>13.4f} "
          f"{up['lost']:>6}/{down['lost']:<6} {up['added_us']['p50']:>10}/{up['added_us']['p99']:<11} "
          f"{down['added_us']['p50']:>6}/{down['added_us']['p99']:<7} "
          f"{up['keys_unmasked']:>6}/{up['key_packets']:<7} {r['sender_lag_us']['p99']:>15} {r['others_cpu_pct']:>13.1f}")
by = {}
for r in rows:
    by.setdefault(r["calls"], {})[r["label"]] = r
for calls, pair in by.items():
    if "ivrpay" in pair and "rtpengine" in pair:
        i, e = pair["ivrpay"], pair["rtpengine"]
        ratio = e["cpu_per_stream_pct"] / i["cpu_per_stream_pct"] if i["cpu_per_stream_pct"] else float("inf")
        lossy = [n for n, x in pair.items() if x["uplink"]["lost"] or x["downlink"]["lost"]]
        note = f" (lost packets: {', '.join(lossy)}: that relay was saturated)" if lossy else ""
        print(f"{calls} calls: rtpengine uses {ratio:.2f}x the CPU per stream of ivrpay{note}")
for t in totals:
    print(f"ivrpay relay, {t['calls']} calls: {t['masked_frames']} masked frames, {t['digit_events']} digit events, "
          f"driver latency p50/p99/p99.9 {t['driver_latency_us']['p50']}/{t['driver_latency_us']['p99']}/"
          f"{t['driver_latency_us']['p999']} us (bucket bounds), lost {t['lost']}, late {t['late']}")
PY
