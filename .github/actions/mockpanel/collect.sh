#!/usr/bin/env bash
# Writes every running server's journal as DEST/<server>.har (HAR 1.2, credentials masked) and the servers' log as
# DEST/mockpanel.log, then stops the mocks, which completes the run's repro bundle, kept as DEST/bundle (mockpanel
# replay DEST/bundle opens it), for actions/upload-artifact. Never fails the step: a job that failed already says why.
set -uo pipefail
dest="${1:?usage: collect.sh DEST}"
state="${MOCKPANEL_STATE_DIR:-${RUNNER_TEMP:-/tmp}/mockpanel}"
mkdir -p "$dest"
cp "$state/mockpanel.log" "$dest/" 2>/dev/null || true
auth=()
if [ -n "${MOCKPANEL_ADMIN_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $MOCKPANEL_ADMIN_TOKEN"); fi
python3 -c 'import json,sys; [print(n, u) for n, u in json.load(open(sys.argv[1])).items()]' "$state/ports.json" 2>/dev/null |
while read -r name url; do
  curl -fsS "${auth[@]}" "$url/__mockpanel/requests?format=har&redact=true" -o "$dest/$name.har" \
    || echo "mockpanel: no journal from $name at $url" >&2
done
${MOCKPANEL:-mockpanel} stop > /dev/null 2>&1 || true   # the bundle's end state is written as serve stops
if [ -f "$state/bundle/bundle.json" ]; then cp -r "$state/bundle" "$dest/bundle"; fi
echo "mockpanel: journals and the repro bundle in $dest: $(ls "$dest" | tr '\n' ' ')"
exit 0
