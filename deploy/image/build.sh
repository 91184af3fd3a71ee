#!/usr/bin/env bash
# Builds the validator image offline (`make image`): no registry, no base image to pull.
# The root filesystem is this machine's own Node.js binary plus the shared libraries ldd names for
# it and for every native addon, busybox-static for a shell, the built dist/src and bin/, and the
# production node_modules (the packages package-lock.json does not mark "dev"). deploy/image/Dockerfile
# then turns it into an image FROM scratch, so nothing is pulled.
#   IMAGE=parabft:local (default)   the tag to build
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-parabft:local}
log() { echo "image: $*" >&2; }

[ -f dist/src/cli/main.js ] || { log "dist/ is missing: run make build first"; exit 1; }
BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] || ! file -L "$BUSYBOX" 2>/dev/null | grep -q static; then
  [ -x /bin/busybox ] && BUSYBOX=/bin/busybox
fi
if [ -z "$BUSYBOX" ]; then
  log "busybox is missing; installing busybox-static with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2
  BUSYBOX=/bin/busybox
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then log "$BUSYBOX is not static (install busybox-static)"; exit 1; fi

ctx=$(mktemp -d /tmp/parabft-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root"/{bin,etc,tmp,app,home/parabft,usr/local/bin,lib64}
chmod 1777 "$root/tmp"

# Node.js and every shared library it and the native addons link against (same paths as here).
NODE=$(readlink -f "$(command -v node)")
cp "$NODE" "$root/usr/local/bin/node"
copy_libs() {
  ldd "$1" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
copy_libs "$NODE"

# busybox: one static binary, every applet a symlink.
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# The application: the compiled sources, the launcher, and the production dependency closure.
cp package.json "$root/app/"
mkdir -p "$root/app/dist"
cp -r dist/src "$root/app/dist/src"
find "$root/app/dist" -name '*.map' -delete
cp -r bin "$root/app/bin"
mkdir -p "$root/app/proto" && cp -r proto/parabft "$root/app/proto/parabft"  # server reflection reads the .proto files
node -e '
  const lock = require("./package-lock.json");
  for (const [p, e] of Object.entries(lock.packages)) if (p.startsWith("node_modules/") && !e.dev) console.log(p);
' | while read -r p; do
  mkdir -p "$root/app/$(dirname "$p")"
  cp -r "$p" "$root/app/$p"
done
# Native addons: only the Linux glibc prebuilds are needed, and their libraries must be present.
rm -rf "$root/app/node_modules/rocksdb/deps" "$root/app/node_modules/rocksdb/prebuilds/"{darwin,win32}*
find "$root/app/node_modules" -name '*.node' | while read -r addon; do copy_libs "$addon"; done
cp deploy/image/entrypoint.sh "$root/usr/local/bin/parabft-entrypoint"
cp deploy/image/healthcheck.mjs "$root/app/healthcheck.mjs"
chmod 755 "$root/usr/local/bin/parabft-entrypoint"

# A non-root user owns the home (data, keys, signing state).
printf 'root:x:0:0:root:/root:/bin/sh\nparabft:x:10001:10001:parabft:/home/parabft:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nparabft:x:10001:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chown -R 10001:10001 "$root/home/parabft"

cp deploy/image/Dockerfile "$ctx/Dockerfile"
log "rootfs $(du -sh "$root" | cut -f1); building $IMAGE"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" --label "org.parabft.git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$ctx" >/dev/null
docker image ls "$IMAGE" --format 'image: {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' >&2
