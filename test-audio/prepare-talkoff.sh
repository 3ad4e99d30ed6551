#!/usr/bin/env bash
# Prepares the talk-off corpus: real 8 kHz human speech and music from Debian packages,
# concatenated into one WAV per set (8 kHz mono 16-bit PCM) under OUTDIR.
#   speech-en.wav  asterisk-core-sounds-en-wav (en_US_f_Allison, ~25 min of prompts)
#   music-moh.wav  asterisk-moh-opsound-wav (five tracks, ~18 min)
# usage: prepare-talkoff.sh OUTDIR   (installs the packages and sox when run as root)
set -euo pipefail
out=${1:?usage: prepare-talkoff.sh OUTDIR}
need=()
for pkg in asterisk-core-sounds-en-wav asterisk-moh-opsound-wav sox; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need[*]} (run as root or install them)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
mkdir -p "$out"
build() { # NAME FILES...
  local name=$1; shift
  [ -s "$out/$name" ] && return 0
  sox -q "$@" -r 8000 -c 1 -b 16 -e signed-integer "$out/$name.tmp.wav"
  mv "$out/$name.tmp.wav" "$out/$name"
}
mapfile -t speech < <(find /usr/share/asterisk/sounds/en_US_f_Allison -name '*.wav' | LC_ALL=C sort)
mapfile -t music < <(find /usr/share/asterisk/moh -name '*.wav' | LC_ALL=C sort)
build speech-en.wav "${speech[@]}"
build music-moh.wav "${music[@]}"
for f in "$out"/*.wav; do printf '%s %s s\n' "$f" "$(soxi -D "$f")"; done
