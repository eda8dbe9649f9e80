#!/usr/bin/env bash
# Builds mockpanel's image offline: a wheelhouse made on this machine (build/wheels: mockpanel and every dependency,
# from PyPI as pip reaches it here) and a base image made from Debian's packages, since no image registry is reachable.
#   docker/build-image.sh [IMAGE] [BASE] [PYTHON]   (defaults: mockpanel:latest, mockpanel-base:bookworm, python3)
# Elsewhere `docker build -t mockpanel .` needs neither: its base is python:3.12-slim and pip fetches from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${1:-mockpanel:latest}"
base="${2:-mockpanel-base:bookworm}"
python="${3:-python3}"
bash docker/base-image.sh "$base"
previous="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
rm -rf build/wheels build/lib build/bdist.*   # build/lib would carry modules deleted since into the wheel
# The same source makes the same wheel (zip times fixed), so Docker's cache reuses the install when nothing changed.
SOURCE_DATE_EPOCH=315532800 "$python" -m pip wheel -q --disable-pip-version-check . -w build/wheels
DOCKER_BUILDKIT=0 docker build -q --build-arg BASE="$base" -t "$image" . >/dev/null 2>build/docker-build.log \
  || { cat build/docker-build.log >&2; exit 1; }
docker image prune -f --filter label=mockpanel.stage=build >/dev/null   # the build stage: only its venv was kept
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$image")" ]; then
  docker rmi "$previous" >/dev/null 2>&1 || true   # the image this tag named before (kept while a container uses it)
fi
echo "built $image on $base"
