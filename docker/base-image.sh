#!/usr/bin/env bash
# A base image made from Debian's packages, for machines that reach no image registry: debootstrap a minimal
# bookworm with Python and venv (from the mirror apt already uses), trim it, `docker import` it.
#   docker/base-image.sh [TAG]        (default mockpanel-base:bookworm; needs root, debootstrap and a running dockerd)
set -euo pipefail
tag="${1:-mockpanel-base:bookworm}"
if docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)"
[ -n "$mirror" ] || mirror="$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
[ -n "$mirror" ] || { echo "base-image: no Debian mirror found in apt's sources" >&2; exit 1; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root/fs" "$mirror" >"$root/log" 2>&1 \
  || { tail -n 20 "$root/log" >&2; exit 1; }
rm -rf "$root/fs/var/cache/apt/archives/"*.deb "$root/fs/var/lib/apt/lists/"* "$root/fs/usr/share/doc" "$root/fs/usr/share/man" \
       "$root/fs/usr/share/locale" "$root/fs/usr/share/info"
tar -C "$root/fs" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "base-image: made $tag"
