#!/usr/bin/env bash
# Makes the Lambda base image that `sam local invoke` / `sam local start-api` run functions on
# (public.ecr.aws/lambda/python:3.12-<arch>, the tag SAM CLI builds on, also tagged :3.12) available
# to the local Docker engine.
#
#   - already there (pulled, or built by this script from the same recipe): nothing to do;
#   - `docker pull` answers within LAMBDA_BASE_PULL_TIMEOUT seconds (default 30): done;
#   - otherwise (no route to public.ecr.aws) build a stand-in laid out as AWS's image is:
#     a Debian bookworm rootfs (debootstrap, minbase, plus the shared libraries CPython needs),
#     a CPython 3.12 copied from this machine to /var/lang, awslambdaric + boto3 in /var/runtime,
#     /var/runtime/bootstrap and /lambda-entrypoint.sh, and the AWS image's environment.
#     SAM CLI adds its Runtime Interface Emulator on top, as it does for the real image.
#
# The debootstrap rootfs is cached under .local/cache/lambda-base/ (git-ignored), so a rebuild
# takes seconds. Environment: LAMBDA_PYTHON (a CPython 3.12 interpreter to copy; default: the
# project venv's base interpreter, else pyenv's newest 3.12), DEBIAN_MIRROR, FORCE=1 (rebuild).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON_MINOR=3.12
case "$(uname -m)" in
  x86_64 | amd64) ARCH=x86_64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) ARCH="$(uname -m)" ;;
esac
IMAGE="public.ecr.aws/lambda/python:${PYTHON_MINOR}-${ARCH}"
ALIAS="public.ecr.aws/lambda/python:${PYTHON_MINOR}"
PULL_TIMEOUT="${LAMBDA_BASE_PULL_TIMEOUT:-30}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
# What CPython's extension modules link against (ldd of lib-dynload), plus certificates and zones.
PACKAGES="ca-certificates tzdata libssl3 libffi8 libsqlite3-0 zlib1g libbz2-1.0 liblzma5 libreadline8 \
libncursesw6 libtinfo6 libuuid1 libexpat1 libgdbm6 libnsl2 libtirpc3 libcrypt1 libgssapi-krb5-2"
CACHE="${ROOT}/.local/cache/lambda-base"
LABEL=io.worldland.local-lambda-base
# The recipe's fingerprint: a local image built from another recipe is rebuilt.
RECIPE="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

log() { echo "lambda-base-image: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

command -v docker >/dev/null || die "docker is not installed (run .ci/ensure-docker.sh or make docker-engine)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (run .ci/ensure-docker.sh or make docker-engine)"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  built="$(docker image inspect -f "{{ index .Config.Labels \"${LABEL}\" }}" "$IMAGE" 2>/dev/null || true)"
  if [[ -z "$built" || "$built" == "<no value>" ]]; then
    log "$IMAGE is present (AWS's image); nothing to do"
    docker tag "$IMAGE" "$ALIAS"
    exit 0
  fi
  if [[ "$built" == "$RECIPE" ]]; then
    log "$IMAGE is present (built here, recipe $RECIPE); nothing to do"
    docker tag "$IMAGE" "$ALIAS"
    exit 0
  fi
  log "$IMAGE was built here from another recipe ($built); rebuilding"
fi

if [[ "${FORCE:-0}" != 1 ]]; then
  log "trying docker pull $IMAGE (up to ${PULL_TIMEOUT}s)"
  if timeout "$PULL_TIMEOUT" docker pull -q "$IMAGE" >/dev/null 2>&1; then
    log "pulled $IMAGE"
    docker tag "$IMAGE" "$ALIAS"
    exit 0
  fi
  log "cannot pull $IMAGE here; building a stand-in"
fi

# ------------------------------------------------------------------ the CPython to copy
python_prefix() { # prints the self-contained prefix of a CPython 3.12 interpreter, or nothing
  "$1" - <<'EOF' 2>/dev/null || true
import sys
prefix = sys.base_prefix
if sys.version_info[:2] == (3, 12) and sys.implementation.name == "cpython" and prefix not in ("/usr", "/usr/local"):
    print(prefix)
EOF
}
PREFIX=""
candidates=("${LAMBDA_PYTHON:-}" "${ROOT}/.venv/bin/python")
if command -v pyenv >/dev/null; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E "^${PYTHON_MINOR//./\\.}\.[0-9]+$" | sort -t. -k3 -n -r); do
    candidates+=("$(pyenv root)/versions/$v/bin/python${PYTHON_MINOR}")
  done
fi
candidates+=("$(command -v "python${PYTHON_MINOR}" || true)")
for candidate in "${candidates[@]}"; do
  [[ -n "$candidate" && -x "$candidate" ]] || continue
  PREFIX="$(python_prefix "$candidate")"
  [[ -n "$PREFIX" && -x "$PREFIX/bin/python${PYTHON_MINOR}" ]] && break
  PREFIX=""
done
[[ -n "$PREFIX" ]] || die "no self-contained CPython ${PYTHON_MINOR} found to copy (pyenv install ${PYTHON_MINOR}, or set LAMBDA_PYTHON)"
PYTHON="$PREFIX/bin/python${PYTHON_MINOR}"
log "using CPython $("$PYTHON" -c 'import platform; print(platform.python_version())') from $PREFIX"

# ------------------------------------------------------------------ the Debian rootfs (cached)
mkdir -p "$CACHE"
ROOTFS_TAR="$CACHE/rootfs-${SUITE}-$(echo "$MIRROR $PACKAGES" | sha256sum | cut -c1-12).tar"
if [[ ! -s "$ROOTFS_TAR" ]]; then
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap, or make docker-engine)"
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
  log "debootstrap $SUITE (minbase) from $MIRROR; cached as $ROOTFS_TAR"
  staging="$(mktemp -d "$CACHE/debootstrap.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  debootstrap --variant=minbase --include="${PACKAGES// /,}" "$SUITE" "$staging/rootfs" "$MIRROR" \
    >"$CACHE/debootstrap.log" 2>&1 || die "debootstrap failed; see $CACHE/debootstrap.log"
  rm -rf "$staging/rootfs/var/cache/apt/archives/"*.deb "$staging/rootfs/var/lib/apt/lists/"*
  tar -C "$staging/rootfs" --numeric-owner -cf "$ROOTFS_TAR.partial" .
  mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  rm -rf "$staging"
  trap - EXIT
else
  log "reusing the cached rootfs $ROOTFS_TAR"
fi

# ------------------------------------------------------------------ assemble
work="$(mktemp -d "$CACHE/image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"
tar -C "$rootfs" --numeric-owner -xf "$ROOTFS_TAR"

# CPython at /var/lang, as in AWS's images (without tests, Tk and IDLE).
mkdir -p "$rootfs/var/lang"
cp -a "$PREFIX/." "$rootfs/var/lang/"
stdlib="$rootfs/var/lang/lib/python${PYTHON_MINOR}"
rm -rf "$stdlib/test" "$stdlib/idlelib" "$stdlib/tkinter" "$stdlib/turtledemo" \
  "$stdlib"/lib-dynload/_tkinter.* "$stdlib"/lib-dynload/_test*.so "$stdlib"/config-*/libpython*.a
# Only pip stays in the copied site-packages (a pyenv prefix may have more installed).
find "$stdlib/site-packages" -mindepth 1 -maxdepth 1 ! -name 'pip' ! -name 'pip-*' ! -name 'README.txt' \
  -exec rm -rf {} +
find "$rootfs/var/lang" -name __pycache__ -type d -prune -exec rm -rf {} +

# The runtime interface client and the SDK in /var/runtime, as in AWS's images.
PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
  --target "$rootfs/var/runtime" awslambdaric boto3 ||
  die "pip could not install awslambdaric and boto3 (is PyPI reachable?)"

cat >"$rootfs/var/runtime/bootstrap" <<EOF
#!/bin/bash
# Starts the Python runtime interface client on the handler, as AWS's python${PYTHON_MINOR} bootstrap does.
export AWS_EXECUTION_ENV=AWS_Lambda_python${PYTHON_MINOR}
# Lambda's module search order: the function, its layers, the runtime (boto3) last.
export PYTHONPATH="/var/task:/opt/python/lib/python${PYTHON_MINOR}/site-packages:/opt/python:/var/runtime\${PYTHONPATH:+:\$PYTHONPATH}"
if [ -n "\${AWS_LAMBDA_EXEC_WRAPPER:-}" ]; then
  exec "\$AWS_LAMBDA_EXEC_WRAPPER" /var/lang/bin/python${PYTHON_MINOR} -m awslambdaric "\$_HANDLER"
fi
exec /var/lang/bin/python${PYTHON_MINOR} -m awslambdaric "\$_HANDLER"
EOF
cat >"$rootfs/lambda-entrypoint.sh" <<'EOF'
#!/bin/sh
# As in AWS's base images: the handler is the one argument; outside Lambda, run under the emulator.
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie $RUNTIME_ENTRYPOINT
else
  exec $RUNTIME_ENTRYPOINT
fi
EOF
chmod 755 "$rootfs/var/runtime/bootstrap" "$rootfs/lambda-entrypoint.sh"
mkdir -p "$rootfs/var/task" "$rootfs/opt" "$rootfs/lib64" "$rootfs/usr/lib64"

log "importing as $IMAGE"
previous="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV LANG=en_US.UTF-8' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin' \
  --change 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'WORKDIR /var/task' \
  --change "LABEL ${LABEL}=${RECIPE}" \
  --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
  - "$IMAGE" >/dev/null
docker tag "$IMAGE" "$ALIAS"
# A stand-in built from an older recipe goes (unless SAM's images still build on it).
if [[ -n "$previous" && "$previous" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi

docker run --rm -e PYTHONPATH=/var/runtime --entrypoint /var/lang/bin/python${PYTHON_MINOR} "$IMAGE" \
  -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, decimal, awslambdaric, boto3' ||
  die "the imported image cannot import the standard modules"
log "built $IMAGE and $ALIAS ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
