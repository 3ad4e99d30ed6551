#!/usr/bin/env bash
# Generates the IVR prompt set in test-audio/prompts/ with espeak-ng (British English voice)
# and sox: one 8 kHz mono µ-law WAV per prompt, leading and trailing silence trimmed, peaks
# at -6 dBFS. The WAVs are committed: CI and `ivrpay serve` need neither tool. Run it again
# only to change the wording (then commit the new files).
#
#   test-audio/make-prompts.sh [OUTDIR]      (default: test-audio/prompts)
#
# A profile can point its `[ivr] prompts` at a directory of its own with the same file names
# (a recorded voice, another language); a file missing there falls back to this set.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-prompts}
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install espeak-ng sox)" >&2; exit 1; }
done
mkdir -p "$out"
voice=${IVRPAY_PROMPT_VOICE:-en-gb}
say() { # NAME TEXT
  local name=$1 text=$2 raw
  raw=$(mktemp --suffix=.wav)
  espeak-ng -v "$voice" -s 155 -w "$raw" "$text"
  sox -q -D "$raw" -r 8000 -c 1 -e u-law -b 8 "$out/$name.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -6
  rm -f "$raw"
}

# Dialogue.
say welcome "Welcome to the secure payment line."
say handoff "You are now in our secure payment system. Your agent cannot hear the keys you press."
say enter-reference "Please enter your payment reference, followed by the hash key."
say reference-not-found "Sorry, that payment reference was not found, or it has expired."
say no-payment "Sorry, there is no payment to take on this call."
say amount-due "The amount to pay is"
say enter-card-number "Please enter your card number, followed by the hash key."
say enter-expiry "Please enter the expiry date on your card, as four digits: two for the month, then two for the year."
say enter-security-code "Please enter the three digit security code from the back of your card."
say enter-security-code-amex "Please enter the four digit security code printed on the front of your card."
say enter-postal-code "Please enter the numbers of your billing post code, followed by the hash key."
say cleared "Entry cleared."
say invalid-card-number "That card number is not valid."
say invalid-card-type "Sorry, we do not accept that type of card."
say invalid-date "That expiry date is not valid."
say invalid-security-code "That security code is not valid."
say invalid-postal-code "That post code is not valid."
say invalid-entry "That entry is not valid."
say input-timeout "Sorry, we did not receive your entry."
say too-many-attempts "Sorry, we could not take your card details."
say processing "Please wait while we process your payment."
say payment-approved "Thank you. Your payment has been approved."
say card-ending-in "Paid with the card ending in"
say payment-declined "Sorry, your payment was declined by your card issuer."
say payment-failed "Sorry, we could not process your payment at this time."
say not-charged "Your card has not been charged."
say returning-to-agent "Returning you to your agent now."
say goodbye "Thank you for calling. Goodbye."
# What the agent hears, looped, while the customer is in the IVR of a hand-off.
say agent-hold "The customer is entering their payment details. Please hold."

# Numbers and money: digits are n0..n9; amounts are read from n0..n19, tens, hundred,
# thousand, million and "and", then the currency's unit words.
words=(zero one two three four five six seven eight nine ten eleven twelve thirteen
  fourteen fifteen sixteen seventeen eighteen nineteen)
for i in "${!words[@]}"; do say "n$i" "${words[$i]}"; done
tens=([2]=twenty [3]=thirty [4]=forty [5]=fifty [6]=sixty [7]=seventy [8]=eighty [9]=ninety)
for i in "${!tens[@]}"; do say "n${i}0" "${tens[$i]}"; done
say hundred "hundred"
say thousand "thousand"
say million "million"
say and "and"
for unit in pound pounds penny pence dollar dollars cent cents euro euros; do say "$unit" "$unit"; done

printf '%s prompts in %s\n' "$(find "$out" -name '*.wav' | wc -l)" "$out"
