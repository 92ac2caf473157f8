#!/usr/bin/env bash
# The system packages the pipeline and its tests need, installed where this can be done.
#
#   infra/system-packages.sh          Java 17 and Maven (the Kafka broker and its jars)
#   infra/system-packages.sh --tests  also Chromium (the dashboard's test in a headless browser)
#
# Missing commands are installed with apt on Debian or Ubuntu, as root or through sudo.
# Anywhere else it names what is missing and exits 1.
set -euo pipefail

want=(java:openjdk-17-jre-headless mvn:maven)
[[ "${1:-}" == "--tests" ]] && want+=(chromium:chromium)

missing=()
commands=()
for pair in "${want[@]}"; do
  if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
    commands+=("${pair%%:*}")
    missing+=("${pair#*:}")
  fi
done
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "not found: ${commands[*]}; install them (Debian: ${missing[*]}) with your" \
       "system's package manager and run this again" >&2
  exit 1
fi
run=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "missing: ${missing[*]}; run as root, or: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  run=(sudo)
fi
echo "installing ${missing[*]} with apt-get ..." >&2
"${run[@]}" apt-get update -qq
"${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
