#!/usr/bin/env bash
# Installs the system packages orderstream needs when they are missing: a JDK 17+ and Maven (the local Apache Kafka
# broker is fetched from Maven Central and run under java), PostgreSQL (tests start a throwaway cluster with
# initdb/pg_ctl), wrk (the HTTP benchmark's load generator), and Chromium with its chromedriver (tests/browser drive
# the web console in it). Does nothing when all are present. Needs root (or sudo) only when something must be
# installed.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v wrk >/dev/null 2>&1 || missing+=(wrk)  # bench/http.py: the HTTP load generator
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # tests/browser
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a cluster on install; the tests start their own, so stop the packaged one to free port 5432.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
  $sudo service postgresql stop >/dev/null 2>&1 || true
fi
