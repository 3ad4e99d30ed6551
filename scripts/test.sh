#!/usr/bin/env bash
# The whole test suite: what CI runs, and what a developer runs before pushing.
#
#   scripts/test.sh            formatting, clippy, every test in the workspace
#
# It installs the Debian packages its tests need when they are missing (it must run as root
# for that, as it does in CI), builds the reference DTMF decoders (spandsp, multimon-ng)
# from ../shared/tools/ref-dtmf, and prepares the talk-off corpus (real speech and music).
# Service URLs (PostgreSQL, NATS) come from the environment when set; see .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
shared=${IVRPAY_SHARED:-$repo/../shared}
work=$repo/target/test-support
mkdir -p "$work"

step() { printf '\n== %s\n' "$*"; }

# The store and vault suites run on PostgreSQL too (CI's .ci/run sets the same URL).
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}

step "Debian packages"
# postgresql-client: pg_dump, for the vault suite's scan of a database dump for clear PANs.
# sip-tester: SIPp and its RFC 2833 pcaps, the customer and agent of the ivrpay serve suites.
# chromium: the headless browser the agent-desktop test drives over the DevTools protocol.
# kamailio, kamailio-extra-modules (rtpengine.so): `kamailio -c` checks the load benchmark's
# Kamailio configuration.
packages=(sox multimon-ng libspandsp-dev asterisk-core-sounds-en-wav asterisk-moh-opsound-wav
  postgresql-client sip-tester chromium kamailio kamailio-extra-modules)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "ok: ${packages[*]}"

step "Python packages"
# localstripe: the fake Stripe the payments suite contract-tests the Stripe connector against.
# standardwebhooks: the independent signature verifier of the sync suite's webhook receiver.
# aiosmtpd: the SMTP server the sync suite sends receipts to.
# openapi-spec-validator: the independent check of the API's OpenAPI document.
python=${IVRPAY_PYTHON:-python3}
for pkg in localstripe:localstripe standardwebhooks:standardwebhooks aiosmtpd:aiosmtpd \
  openapi_spec_validator:openapi-spec-validator; do
  module=${pkg%%:*} name=${pkg#*:}
  if ! "$python" -c "import $module" >/dev/null 2>&1; then
    "$python" -m pip install -q "$name" 2>/dev/null ||
      "$python" -m pip install -q --break-system-packages "$name"
  fi
  "$python" -c "import $module" || { echo "cannot install $name for $python" >&2; exit 1; }
done
export IVRPAY_PYTHON=$python
echo "ok: localstripe standardwebhooks aiosmtpd openapi-spec-validator"

step "Reference DTMF decoders"
if [ ! -x "$shared/tools/ref-dtmf/build.sh" ]; then
  echo "cannot find $shared/tools/ref-dtmf/build.sh (set IVRPAY_SHARED to the shared directory)" >&2
  exit 1
fi
bash "$shared/tools/ref-dtmf/build.sh" "$work/oracles"
export IVRPAY_SPANDSP_DECODE=$work/oracles/spandsp_dtmf_decode

step "Talk-off corpus"
"$repo/test-audio/prepare-talkoff.sh" "$work/talkoff"
export IVRPAY_TALKOFF_CORPUS=$work/talkoff

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
if ! cargo test --workspace --locked --no-fail-fast -- --nocapture >"$work/test.log" 2>&1; then
  grep -E 'panicked|FAILED|^error' -A12 "$work/test.log" | head -150 >&2
  echo "tests failed; the full log is in $work/test.log" >&2
  exit 1
fi
# The figures the suites print (accuracy, talk-off, leak), then the summary lines.
grep -E '^(digit |offset |dial tone|S/N |shortest|start/end|talk-off|leak sweep|relay leak|desktop|ivr )' "$work/test.log" || true
grep -E '^test result' "$work/test.log" | awk '{p+=$4; f+=$6} END {print "tests: " p " passed, " f " failed"}'
