#!/usr/bin/env bash
# Starts the mock servers in the background (mockpanel start) and tells the later steps where they are:
# MOCKPANEL_STATE_DIR and MOCKPANEL_<SERVER>_URL in $GITHUB_ENV, the {server: url} JSON as output `urls`.
# Outside GitHub Actions, set GITHUB_ENV and GITHUB_OUTPUT to files (tests/test_ci_recipe.py does).
set -euo pipefail
export MOCKPANEL_STATE_DIR="${MOCKPANEL_STATE_DIR:-${RUNNER_TEMP:-/tmp}/mockpanel}"
mockpanel="${MOCKPANEL:-mockpanel}"
# A repro bundle of the run (collect.sh completes and keeps it when the job fails; mockpanel replay opens it).
# shellcheck disable=SC2086  # ARGS is a list of flags
$mockpanel start --bundle-out "$MOCKPANEL_STATE_DIR/bundle" ${ARGS:-}
ports="$MOCKPANEL_STATE_DIR/ports.json"
echo "MOCKPANEL_STATE_DIR=$MOCKPANEL_STATE_DIR" >> "$GITHUB_ENV"
python3 - "$ports" >> "$GITHUB_ENV" <<'PY'
import json, sys
for name, url in json.load(open(sys.argv[1])).items():
    print(f"MOCKPANEL_{name.upper()}_URL={url}")
PY
echo "urls=$(tr -d '\n' < "$ports")" >> "$GITHUB_OUTPUT"
