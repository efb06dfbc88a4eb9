#!/bin/sh
# WorldLand rental entrypoint: the agent copies it (with the job's login material) into
# /.worldland/ before the container starts. It makes root reachable over SSH whatever the image:
# installs openssh-server with the image's package manager when there is no sshd, sets root's
# password hash and authorized_keys, generates host keys, and execs sshd in the foreground, so the
# container lives exactly as long as sshd does. Secrets are read from files, never echoed.
set -eu
W=/.worldland
log() { echo "worldland: $*" >&2; }

find_sshd() {
  for candidate in /usr/sbin/sshd /usr/local/sbin/sshd /sbin/sshd /usr/bin/sshd; do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

install_sshd() {
  if [ "$(cat "$W/install_sshd" 2>/dev/null || echo 1)" != 1 ]; then
    log "the image has no sshd and installing one is disabled on this host"
    exit 90
  fi
  log "the image has no sshd: installing openssh-server with its package manager (needs network)"
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
  elif command -v apk >/dev/null 2>&1; then
    apk add --no-cache openssh-server >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    dnf install -y -q openssh-server
  elif command -v microdnf >/dev/null 2>&1; then
    microdnf install -y openssh-server
  elif command -v yum >/dev/null 2>&1; then
    yum install -y -q openssh-server
  elif command -v zypper >/dev/null 2>&1; then
    zypper --non-interactive install openssh-server
  else
    log "no sshd and no known package manager (apt-get, apk, dnf, microdnf, yum, zypper)"
    exit 91
  fi
  log "openssh-server installed"
}

set_root_password_hash() { # $1: the hash ("$6$..."), from a file
  if command -v chpasswd >/dev/null 2>&1 && printf 'root:%s\n' "$1" | chpasswd -e 2>/dev/null; then
    return 0
  fi
  # No chpasswd (or it refused -e): rewrite root's field in /etc/shadow in place.
  [ -f /etc/shadow ] || printf 'root:*:19000:0:99999:7:::\n' >/etc/shadow
  awk -F: -v OFS=: -v hash="$1" '$1 == "root" { $2 = hash } { print }' /etc/shadow >/etc/shadow.worldland
  cat /etc/shadow.worldland >/etc/shadow
  rm -f /etc/shadow.worldland
}

SSHD="$(find_sshd || true)"
if [ -z "$SSHD" ]; then
  install_sshd
  SSHD="$(find_sshd)" || {
    log "openssh-server was installed but no sshd binary was found"
    exit 92
  }
fi

mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
ssh-keygen -A >/dev/null

# password_auth stays (yes/no); the hash and keys are removed once applied, so a restarted container
# (engine or host restart) keeps the login it had.
PASSWORD_AUTH="$(cat "$W/password_auth" 2>/dev/null || echo no)"
if [ -s "$W/root_password_hash" ]; then
  set_root_password_hash "$(cat "$W/root_password_hash")"
elif [ "$PASSWORD_AUTH" != yes ] && [ -f /etc/shadow ]; then
  # A locked root ("!…") is refused even with a key when sshd does not use PAM; "*" only forbids passwords.
  awk -F: -v OFS=: '$1 == "root" && $2 ~ /^!/ { $2 = "*" } { print }' /etc/shadow >/etc/shadow.worldland
  cat /etc/shadow.worldland >/etc/shadow
  rm -f /etc/shadow.worldland
fi
if [ -s "$W/authorized_keys" ]; then
  cat "$W/authorized_keys" >/root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
# The login material has been applied; nothing in the container needs the copies any more.
rm -f "$W/root_password_hash" "$W/authorized_keys"

# pam_loginuid needs CAP_AUDIT_CONTROL, which containers lack: "required" would refuse every login.
if [ -f /etc/pam.d/sshd ]; then
  sed -i 's/^\(session[[:space:]]*\)required\([[:space:]]*pam_loginuid\.so\)/\1optional\2/' /etc/pam.d/sshd
fi

ROOT_LOGIN=prohibit-password
[ "$PASSWORD_AUTH" = yes ] && ROOT_LOGIN=yes
log "starting $SSHD (root login: $ROOT_LOGIN)"
# Options on the command line win over the image's sshd_config, whatever it says.
exec "$SSHD" -D -e \
  -o Port=22 \
  -o PermitRootLogin="$ROOT_LOGIN" \
  -o PasswordAuthentication="$PASSWORD_AUTH" \
  -o KbdInteractiveAuthentication=no \
  -o PubkeyAuthentication=yes \
  -o AuthorizedKeysFile=.ssh/authorized_keys
