#!/usr/bin/env bash
# Make the balance enquiry's prompts (callcontrol/data/asterisk/sounds/cc-*.gsm below) again:
# espeak-ng's British English voice, 8 kHz mono GSM. The files are committed; run this only to
# change their words (needs `apt-get install espeak-ng ffmpeg`). The numbers between them are
# Asterisk's own (SayNumber: digits/*), as is digits/minus.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/callcontrol/data/asterisk/sounds"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say() {  # say FILE "words"
  espeak-ng -v en-gb -s 145 -w "$tmp/$1.wav" "$2"
  ffmpeg -loglevel error -y -i "$tmp/$1.wav" -ar 8000 -ac 1 -c:a libgsm "$out/$1.gsm"
}
say cc-balance-is "Your balance is"
say cc-pounds "pounds"
say cc-pound "pound"
say cc-pence "pence"
say cc-penny "penny"
say cc-you-have "You have"
say cc-minutes-left-today "minutes left today."
say cc-minute-left-today "minute left today."
