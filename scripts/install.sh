#!/usr/bin/env bash
# Installs a fort on a Debian/Ubuntu host, or removes it (--uninstall [--purge]).
#
#   sudo scripts/install.sh --release fort-agent-1.2.3.tgz --artifact-key signing.pub.pem
#
# Users fort-agent and fort-dm, directories, the first release (for the agent and, as its own
# copy, for the deployment manager), the trust-zone and client-zone PKI, config files and the
# systemd units. What exists is kept: a second run changes nothing, an operator's edited
# config and the installation's CA survive, and `current` stays where the deployment manager
# put it. --root installs into a directory instead of / (no running systemd needed), which is
# how the tests run it.
set -euo pipefail
umask 022

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UNITS_DIR=$SELF_DIR/../systemd

ROOT=/
CONFIG_DIR=/etc/fort
RELEASE=
ACTION=install
PURGE=0
START=1
NODE=/usr/bin/node
PAIRING_CA=
DEVICE_TYPE=fort
API_HOST=0.0.0.0
API_PORT=8443
ADMIN_PORT=8444
ENGINE_PORT=8446
CLIENT_API_CERT=
CLIENT_API_KEY=
ARTIFACT_KEYS=()
CLIENT_API_NAMES=()

usage() {
  cat <<'EOF'
usage: install.sh --release FILE.tgz [options]      install, or bring an installation up to date
       install.sh --uninstall [--purge] [--root DIR] remove the code and units (--purge: config, data, users too)

  --release FILE          agent release tarball (npm run release), installed if its version is not yet
  --config-dir DIR        where config and key material live (default /etc/fort)
  --artifact-key FILE     public key update artifacts must be signed with (repeatable)
  --device-type TYPE      Mender device type of this host (default fort)
  --pairing-ca FILE       CA bundle the pairing endpoint must chain to (default: the system roots)
  --api-host ADDR         address of the client API for browsers on the private network (default 0.0.0.0)
  --api-port N            client API port (default 8443)
  --admin-port N          loopback admin API port (default 8444)
  --client-api-name NAME  extra DNS name or IP of the client API certificate (repeatable; the
                          host name and localhost are always in it)
  --client-api-cert FILE, --client-api-key FILE
                          serve the client API with this certificate instead of one from a
                          generated client-zone CA
  --node PATH             node (>= 20) the units run (default /usr/bin/node)
  --no-start              enable the units but do not start them
  --root DIR              install into DIR instead of / (no systemd needed)
EOF
}

die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || { usage >&2; die "$1 needs a value"; }; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --release) need_arg "$@"; RELEASE=$2; shift 2 ;;
    --config-dir) need_arg "$@"; CONFIG_DIR=${2%/}; shift 2 ;;
    --artifact-key) need_arg "$@"; ARTIFACT_KEYS+=("$2"); shift 2 ;;
    --device-type) need_arg "$@"; DEVICE_TYPE=$2; shift 2 ;;
    --pairing-ca) need_arg "$@"; PAIRING_CA=$2; shift 2 ;;
    --api-host) need_arg "$@"; API_HOST=$2; shift 2 ;;
    --api-port) need_arg "$@"; API_PORT=$2; shift 2 ;;
    --admin-port) need_arg "$@"; ADMIN_PORT=$2; shift 2 ;;
    --client-api-name) need_arg "$@"; CLIENT_API_NAMES+=("$2"); shift 2 ;;
    --client-api-cert) need_arg "$@"; CLIENT_API_CERT=$2; shift 2 ;;
    --client-api-key) need_arg "$@"; CLIENT_API_KEY=$2; shift 2 ;;
    --node) need_arg "$@"; NODE=$2; shift 2 ;;
    --root) need_arg "$@"; ROOT=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die 'run as root (it creates users and sets owners)'
[[ $CONFIG_DIR == /* ]] || die "--config-dir must be an absolute path, got $CONFIG_DIR"
[[ -d $ROOT ]] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd)
# Host path → path under --root.
R() { printf '%s%s' "${ROOT%/}" "$1"; }
# Live systemd only when installing into / on a host booted with it.
LIVE_SYSTEMD=0
[[ $ROOT == / && -d /run/systemd/system ]] && LIVE_SYSTEMD=1
PREFIX=()
[[ $ROOT == / ]] || PREFIX=(--prefix "$ROOT")

AGENT_USER=fort-agent
DM_USER=fort-dm
ENGINE_USER=fort-engine
# App sources (CSV, SQLite files): the agent checks definitions against them, the engine loads them.
SOURCES_GROUP=fort-sources
SHARED_GROUP=fort
OPT=/opt/fort
# The agent's releases and `current`, the deployment manager's to write. Everything else under
# /opt/fort is root's: root runs fortctl from the deployment manager's root-owned copy, and a
# directory fort-dm owns could have that copy renamed away and replaced.
AGENT_OPT=$OPT/agent
STATE=/var/lib/fort
SOURCES=$STATE/sources
# Enabled units; fort-dm-self-update.service and fort-agent-restart.service are started by their path units only,
# fort-certs-renew.service by its timer.
UNITS=(fort-engine.service fort-agent.service fort-deployment-manager.service fort-dm-self-update.path fort-agent-restart.path fort-certs-renew.timer)
UNIT_FILES=("${UNITS[@]}" fort-dm-self-update.service fort-agent-restart.service fort-certs-renew.service)
UNIT_DIR=/etc/systemd/system
FORTCTL=/usr/local/bin/fortctl

# ---- users (names resolve in the root's own /etc/passwd, never the host's) ---------------

entry() { awk -F: -v n="$2" '$1 == n' "$(R "/etc/$1")"; }
uid_of() { entry passwd "$1" | cut -d: -f3; }
gid_of() { entry group "$1" | cut -d: -f3; }

ensure_users() {
  [[ -f $(R /etc/passwd) && -f $(R /etc/group) ]] || die "$(R /etc/passwd) or $(R /etc/group) is missing"
  [[ -n $(entry group "$SHARED_GROUP") ]] || { groupadd "${PREFIX[@]}" --system "$SHARED_GROUP"; say "created group $SHARED_GROUP"; }
  local user comment
  for user in "$AGENT_USER" "$DM_USER" "$ENGINE_USER"; do
    comment='Fort agent'
    [[ $user == "$DM_USER" ]] && comment='Fort deployment manager'
    [[ $user == "$ENGINE_USER" ]] && comment='Fort engine'
    if [[ -z $(entry passwd "$user") ]]; then
      useradd "${PREFIX[@]}" --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment "$comment" "$user"
      say "created user $user"
    fi
    # All read /etc/fort through the shared group; each key file belongs to one of them.
    if ! entry group "$SHARED_GROUP" | cut -d: -f4 | tr , '\n' | grep -qx "$user"; then
      usermod "${PREFIX[@]}" --append --groups "$SHARED_GROUP" "$user"
    fi
  done
  # The sources are read by the agent (definitions checked) and the engine (loads), nobody else.
  [[ -n $(entry group "$SOURCES_GROUP") ]] || groupadd "${PREFIX[@]}" --system "$SOURCES_GROUP"
  for user in "$AGENT_USER" "$ENGINE_USER"; do
    if ! entry group "$SOURCES_GROUP" | cut -d: -f4 | tr , '\n' | grep -qx "$user"; then
      usermod "${PREFIX[@]}" --append --groups "$SOURCES_GROUP" "$user"
    fi
  done
}

remove_users() {
  local user
  for user in "$AGENT_USER" "$DM_USER" "$ENGINE_USER"; do
    [[ -n $(entry passwd "$user") ]] && userdel "${PREFIX[@]}" "$user" && say "removed user $user"
    [[ -n $(entry group "$user") ]] && groupdel "${PREFIX[@]}" "$user"
  done
  [[ -n $(entry group "$SHARED_GROUP") ]] && groupdel "${PREFIX[@]}" "$SHARED_GROUP"
  [[ -n $(entry group "$SOURCES_GROUP") ]] && groupdel "${PREFIX[@]}" "$SOURCES_GROUP"
  return 0
}

# ---- files: written only when absent or different, so a second run touches nothing ----------

# owner_ids USER GROUP → "uid:gid" from the root's own user database.
owner_ids() {
  local u g
  u=$([[ $1 == root ]] && echo 0 || uid_of "$1")
  g=$([[ $2 == root ]] && echo 0 || gid_of "$2")
  [[ -n $u && -n $g ]] || die "unknown user or group $1:$2 in $(R /etc/passwd)"
  printf '%s:%s' "$u" "$g"
}

# set_mode FILE MODE USER GROUP (a path as it is here, under --root): owner and mode only,
# which leaves modification times alone.
set_mode() {
  chown "$(owner_ids "$3" "$4")" "$1"
  chmod "$2" "$1"
}

# dir PATH MODE USER GROUP (host path; missing parents are made root's, 0755)
dir() {
  local p
  p=$(R "$1")
  [[ -d $p ]] || { mkdir -p "$p"; say "created $1"; }
  set_mode "$p" "$2" "$3" "$4"
}

# file_from SRC DST MODE USER GROUP: DST (host path) gets SRC's content unless it already has it.
file_from() {
  local dst
  dst=$(R "$2")
  if cmp -s "$1" "$dst"; then
    set_mode "$dst" "$3" "$4" "$5"
  else
    # Created owner-only, so a key is never readable by others, even for a moment.
    (umask 077 && cp "$1" "$dst.new")
    set_mode "$dst.new" "$3" "$4" "$5"
    mv -f "$dst.new" "$dst"
    say "wrote $2"
  fi
}

# new_file DST MODE USER GROUP < content: written only when absent (an operator's edits are kept).
new_file() {
  local dst tmp
  dst=$(R "$1")
  if [[ -e $dst ]]; then
    cat >/dev/null
    set_mode "$dst" "$2" "$3" "$4"
  else
    tmp=$(mktemp)
    cat >"$tmp"
    file_from "$tmp" "$1" "$2" "$3" "$4"
    rm -f "$tmp"
  fi
}

# link TARGET NAME USER: NAME (host path) → TARGET, replaced in one rename.
link() {
  local p
  p=$(R "$2")
  [[ -L $p && $(readlink "$p") == "$1" ]] && return 0
  ln -sfn "$1" "$p.new"
  chown -h "$(owner_ids "$3" "$3")" "$p.new"
  mv -fT "$p.new" "$p"
  say "linked $2 -> $1"
}

# ---- the release ------------------------------------------------------------------------

release_version() {
  [[ -f $RELEASE ]] || die "--release $RELEASE: no such file"
  local v
  v=$(tar -xzOf "$RELEASE" ./package.json 2>/dev/null | "$NODE" -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{try{const v=JSON.parse(s).version;if(typeof v==="string")process.stdout.write(v)}catch{}})') || true
  [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "--release $RELEASE is not a fort release tarball (no ./package.json with a version; build one with npm run release)"
  tar -tzf "$RELEASE" ./dist/agent/main.js ./dist/deployment-manager/main.js >/dev/null 2>&1 || die "--release $RELEASE has no dist/agent/main.js or dist/deployment-manager/main.js"
  printf '%s' "$v"
}

# unpack DIR USER: the tarball into DIR (host path) unless it is there; a partial unpack
# from an interrupted run is thrown away, the final name appears in one rename.
unpack() {
  local dst staging
  dst=$(R "$1")
  [[ -d $dst ]] && return 0
  staging="$dst.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  tar -xzf "$RELEASE" -C "$staging" --no-same-owner --no-same-permissions
  # Readable by everyone (fort-agent runs what fort-dm owns), writable by the owner only, no
  # set-id bits: what the deployment manager's own unpacker makes of a release.
  chmod -R u+rwX,go+rX,go-w,ug-s "$staging"
  chown -R "$(owner_ids "$2" "$2")" "$staging"
  mv -T "$staging" "$dst"
  say "installed release $(basename "$1") in $(dirname "$1")"
}

# An installation from before /opt/fort/agent: its releases and `current` move there, the
# deployment manager's config follows (an operator's other edits are kept).
migrate_layout() {
  [[ -d $(R "$OPT/releases") && ! -e $(R "$AGENT_OPT") ]] || return 0
  mkdir "$(R "$AGENT_OPT")"
  mv "$(R "$OPT/releases")" "$(R "$AGENT_OPT/releases")"
  if [[ -L $(R "$OPT/current") ]]; then mv "$(R "$OPT/current")" "$(R "$AGENT_OPT/current")"; fi
  local dm=$(R "$CONFIG_DIR/deployment-manager.toml")
  [[ -f $dm ]] && sed -i "s|^install_root = \"$OPT\"\$|install_root = \"$AGENT_OPT\"|" "$dm"
  say "moved the agent's releases to $AGENT_OPT"
}

# ---- PKI and config -----------------------------------------------------------------------

PKI=$CONFIG_DIR/pki

pki() {
  local dm_release=$1 host names
  host=$(hostname)
  # The host's names (not `hostname -f`: it can wait on DNS), localhost, and the operator's.
  mapfile -t names < <(printf '%s\n' "$host" "${host%%.*}" localhost 127.0.0.1 "${CLIENT_API_NAMES[@]}" | awk 'NF && !seen[$0]++')
  dir "$PKI" 0750 root "$SHARED_GROUP"
  if [[ ! -e $(R "$PKI/trust-zone/ca.pem") ]]; then
    "$NODE" "$(R "$dm_release")/dist/scripts/pki.js" --out "$(R "$PKI")" --zone trust-zone --fort-id "$host" --server-name localhost 127.0.0.1 >/dev/null
    say "created the trust-zone CA and certificates in $PKI/trust-zone"
  fi
  if [[ -n $CLIENT_API_CERT || -n $CLIENT_API_KEY ]]; then
    [[ -f $CLIENT_API_CERT && -f $CLIENT_API_KEY ]] || die '--client-api-cert and --client-api-key go together and must be files'
    dir "$PKI/client-zone" 0750 root "$SHARED_GROUP"
    file_from "$CLIENT_API_CERT" "$PKI/client-zone/client-api.pem" 0644 root root
    file_from "$CLIENT_API_KEY" "$PKI/client-zone/client-api.key" 0600 "$AGENT_USER" "$AGENT_USER"
  elif [[ ! -e $(R "$PKI/client-zone/ca.pem") ]]; then
    "$NODE" "$(R "$dm_release")/dist/scripts/pki.js" --out "$(R "$PKI")" --zone client-zone --fort-id "$host" --client-api-name "${names[@]}" >/dev/null
    say "created the client-zone CA and the client API certificate in $PKI/client-zone (names: ${names[*]})"
  fi
  # Each private key belongs to the one process that uses it; CA keys stay root's.
  dir "$PKI/trust-zone" 0750 root "$SHARED_GROUP"
  own "$PKI/trust-zone/ca.key" 0600 root
  own "$PKI/trust-zone/agent.key" 0600 "$AGENT_USER"
  own "$PKI/trust-zone/deployment-manager.key" 0600 "$DM_USER"
  own "$PKI/trust-zone/fortctl.key" 0600 root
  own "$PKI/trust-zone/engine.key" 0600 "$ENGINE_USER"
  local cert
  for cert in ca agent deployment-manager fortctl engine; do own "$PKI/trust-zone/$cert.pem" 0644 root; done
  if [[ -d $(R "$PKI/client-zone") ]]; then
    dir "$PKI/client-zone" 0750 root "$SHARED_GROUP"
    [[ -e $(R "$PKI/client-zone/ca.key") ]] && own "$PKI/client-zone/ca.key" 0600 root
    [[ -e $(R "$PKI/client-zone/ca.pem") ]] && own "$PKI/client-zone/ca.pem" 0644 root
    own "$PKI/client-zone/client-api.pem" 0644 root
    own "$PKI/client-zone/client-api.key" 0600 "$AGENT_USER"
  fi
  return 0
}

# own PATH MODE USER (host path; the user's own group)
own() {
  [[ -e $(R "$1") ]] || die "$1 is missing (an incomplete PKI: restore it, or remove $(dirname "$1") to make a new one)"
  set_mode "$(R "$1")" "$2" "$3" "$3"
}

configs() {
  local key keys=() k
  if [[ ${#ARTIFACT_KEYS[@]} -gt 0 ]]; then
    dir "$CONFIG_DIR/artifact-keys" 0750 root "$SHARED_GROUP"
    for key in "${ARTIFACT_KEYS[@]}"; do
      [[ -f $key ]] || die "--artifact-key $key: no such file"
      file_from "$key" "$CONFIG_DIR/artifact-keys/$(basename "$key")" 0644 root root
      keys+=("\"artifact-keys/$(basename "$key")\"")
    done
  fi
  if [[ -n $PAIRING_CA ]]; then
    [[ -f $PAIRING_CA ]] || die "--pairing-ca $PAIRING_CA: no such file"
    file_from "$PAIRING_CA" "$CONFIG_DIR/pairing-ca.pem" 0644 root root
  fi
  if [[ ${#keys[@]} -eq 0 && ! -e $(R "$CONFIG_DIR/deployment-manager.toml") ]]; then
    say 'warning: no --artifact-key: the deployment manager refuses every update until deployment-manager.toml lists one'
  fi

  # Paths in the files are relative to the file (the loaders resolve them), so the same
  # files work under --root.
  new_file "$CONFIG_DIR/agent.toml" 0640 root "$AGENT_USER" <<EOF
# fort-agent configuration (written by install.sh; README: Configuration). Identity, IoT and
# cloud endpoints come from pairing: sudo fortctl pair --cloud <url> --code <code>
[log]
level = "info"

[store]
path = "$STATE/agent/agent.db"

[admin]
host = "127.0.0.1"
port = $ADMIN_PORT
allowed_clients = [ "fortctl", "deployment-manager" ]

[admin.tls]
ca = "pki/trust-zone/ca.pem"
cert = "pki/trust-zone/agent.pem"
key = "pki/trust-zone/agent.key"

[api]
host = "$API_HOST"
port = $API_PORT

[api.tls]
cert = "pki/client-zone/client-api.pem"
key = "pki/client-zone/client-api.key"

# App sources (CSV, SQLite) that app definitions may name; fort-engine reads them too.
[reloads]
data_dirs = [ "$SOURCES" ]

# fort-engine loads and serves app data; the agent calls it over trust-zone mTLS ([admin] tls).
[engine]
url = "https://127.0.0.1:$ENGINE_PORT"
$(if [[ -n $PAIRING_CA ]]; then printf '\n[pairing]\nca = "pairing-ca.pem"\n'; fi)
EOF
  new_file "$CONFIG_DIR/engine.toml" 0640 root "$ENGINE_USER" <<EOF
# fort-engine configuration (written by install.sh; README: Configuration).
[log]
level = "info"

[server]
host = "127.0.0.1"
port = $ENGINE_PORT
allowed_clients = [ "agent" ]

[server.tls]
ca = "pki/trust-zone/ca.pem"
cert = "pki/trust-zone/engine.pem"
key = "pki/trust-zone/engine.key"

[data]
dir = "$STATE/engine"
source_dirs = [ "$SOURCES" ]
EOF
  k=$(IFS=,; printf '%s' "${keys[*]:-}")
  new_file "$CONFIG_DIR/deployment-manager.toml" 0640 root "$DM_USER" <<EOF
# fort-deployment-manager configuration (written by install.sh; README: Configuration).
[log]
level = "info"

[state]
path = "$STATE/deployment-manager/state.json"

[agent]
admin_url = "https://127.0.0.1:$ADMIN_PORT"

[agent.tls]
ca = "pki/trust-zone/ca.pem"
cert = "pki/trust-zone/deployment-manager.pem"
key = "pki/trust-zone/deployment-manager.key"

[updates]
install_root = "$AGENT_OPT"
staging_dir = "$STATE/deployment-manager/staging"
device_type = "$DEVICE_TYPE"
artifact_keys = [ ${k//,/, } ]
# Root's fort-agent-restart.path restarts the agent at once when a file is written here.
agent_restart_dir = "$STATE/deployment-manager/agent-restart"

# A release updates this deployment manager too: root's fort-dm-self-update installs it beside
# the old one and restores the old one unless the new one proves itself in time.
[updates.self_update]
install_root = "$OPT/deployment-manager"
request_dir = "$STATE/deployment-manager/self-update"
root_state_dir = "$STATE/dm-self-update"

# The update server and this process's device certificate come from pairing.
[updates.paired]
EOF
  new_file "$CONFIG_DIR/fortctl.toml" 0600 root root <<EOF
# fortctl configuration (written by install.sh): the operator's trust-zone identity.
[admin]
url = "https://127.0.0.1:$ADMIN_PORT"

[admin.tls]
ca = "pki/trust-zone/ca.pem"
cert = "pki/trust-zone/fortctl.pem"
key = "pki/trust-zone/fortctl.key"
EOF
}

# ---- systemd --------------------------------------------------------------------------------

units() {
  local unit tmp edits=(-e "s|/usr/bin/node |$NODE |" -e "s|--config /etc/fort/|--config $CONFIG_DIR/|" -e "s|=/etc/fort/pki\$|=$CONFIG_DIR/pki|")
  # ConfigurationDirectory= names a directory under /etc only.
  [[ $CONFIG_DIR == /etc/fort ]] || edits+=(-e '/^ConfigurationDirectory/d')
  mkdir -p "$(R "$UNIT_DIR")"
  for unit in "${UNIT_FILES[@]}"; do
    tmp=$(mktemp)
    sed "${edits[@]}" "$UNITS_DIR/$unit" >"$tmp"
    file_from "$tmp" "$UNIT_DIR/$unit" 0644 root root
    rm -f "$tmp"
  done
  local wrapper
  wrapper=$(mktemp)
  # Root runs it (sudo fortctl): only root-owned code, the deployment manager's copy, never the
  # agent's release, which fort-dm writes.
  printf '#!/bin/sh\n# fortctl from the root-owned deployment manager copy (written by install.sh)\nFORTCTL_CONFIG=${FORTCTL_CONFIG:-%s/fortctl.toml} exec %s %s/deployment-manager/current/dist/fortctl/main.js "$@"\n' "$CONFIG_DIR" "$NODE" "$OPT" >"$wrapper"
  mkdir -p "$(dirname "$(R "$FORTCTL")")"
  file_from "$wrapper" "$FORTCTL" 0755 root root
  rm -f "$wrapper"

  if [[ $LIVE_SYSTEMD -eq 1 ]]; then
    systemctl daemon-reload
    systemctl enable --quiet "${UNITS[@]}"
    if [[ $START -eq 1 ]]; then systemctl start "${UNITS[@]}"; fi
  else
    systemctl --root="$ROOT" enable --quiet "${UNITS[@]}" 2>/dev/null
  fi
}

# ---- actions --------------------------------------------------------------------------------

install_fort() {
  [[ -n $RELEASE ]] || { usage >&2; die '--release is required'; }
  local major version
  major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "--node $NODE does not run"
  [[ $major -ge 20 ]] || die "--node $NODE is node $major; fort needs node >= 20"
  [[ -f $UNITS_DIR/fort-agent.service ]] || die "no unit files in $UNITS_DIR"
  version=$(release_version)

  ensure_users
  dir "$CONFIG_DIR" 0750 root "$SHARED_GROUP"
  dir "$OPT" 0755 root root
  migrate_layout
  # The deployment manager installs releases and switches `current` here; the agent only reads.
  dir "$AGENT_OPT" 0755 "$DM_USER" "$DM_USER"
  dir "$AGENT_OPT/releases" 0755 "$DM_USER" "$DM_USER"
  # Its own copy, root's: the deployment manager cannot change it; root's fort-dm-self-update
  # installs a new one when a release asks (re-verified with root's keys), and fortctl (run by
  # root) runs from it.
  dir "$OPT/deployment-manager" 0755 root root
  dir "$OPT/deployment-manager/releases" 0755 root root
  dir "$STATE" 0755 root root
  # Root's self-update status (the deployment manager reads it) and staging.
  dir "$STATE/dm-self-update" 0755 root root
  dir "$STATE/agent" 0700 "$AGENT_USER" "$AGENT_USER"
  dir "$STATE/deployment-manager" 0700 "$DM_USER" "$DM_USER"
  dir "$STATE/engine" 0700 "$ENGINE_USER" "$ENGINE_USER"
  dir "$SOURCES" 0750 root "$SOURCES_GROUP"
  # Watched by root's fort-agent-restart.path (the deployment manager asks for agent restarts here).
  dir "$STATE/deployment-manager/agent-restart" 0700 "$DM_USER" "$DM_USER"

  unpack "$AGENT_OPT/releases/$version" "$DM_USER"
  unpack "$OPT/deployment-manager/releases/$version" root
  # The agent's `current` is the deployment manager's from now on; set only on a first install.
  [[ -e $(R "$AGENT_OPT/current") || -L $(R "$AGENT_OPT/current") ]] || link "releases/$version" "$AGENT_OPT/current" "$DM_USER"
  link "releases/$version" "$OPT/deployment-manager/current" root
  # The deployment manager that proved itself: root's self-update program runs from it.
  link "releases/$version" "$OPT/deployment-manager/stable" root

  pki "$OPT/deployment-manager/releases/$version"
  configs
  units

  say "fort $version is installed (config $CONFIG_DIR, code $OPT, data $STATE)."
  if [[ $LIVE_SYSTEMD -eq 1 && $START -eq 1 ]]; then say 'fort-agent and fort-deployment-manager are running.'
  else say 'The units are enabled; they start at the next boot (or: systemctl start fort-agent fort-deployment-manager).'; fi
  say 'Next, pair this fort with your cloud tenant using a one-time code from the cloud console:'
  say '  sudo fortctl pair --cloud https://<your cloud> --code <one-time code>'
}

uninstall_fort() {
  local unit
  if [[ $LIVE_SYSTEMD -eq 1 ]]; then
    systemctl disable --quiet --now "${UNITS[@]}" fort-dm-self-update.service fort-agent-restart.service fort-certs-renew.service 2>/dev/null || true
  elif [[ -e $(R "$UNIT_DIR/fort-agent.service") ]]; then
    systemctl --root="$ROOT" disable --quiet "${UNITS[@]}" 2>/dev/null || true
  fi
  for unit in "${UNIT_FILES[@]}"; do rm -f "$(R "$UNIT_DIR/$unit")"; done
  [[ $LIVE_SYSTEMD -eq 1 ]] && systemctl daemon-reload
  rm -f "$(R "$FORTCTL")"
  rm -rf "$(R "$OPT")"
  say "removed the units, fortctl and $OPT"
  if [[ $PURGE -eq 1 ]]; then
    rm -rf "$(R "$CONFIG_DIR")" "$(R "$STATE")"
    remove_users
    say "purged $CONFIG_DIR (keys and CAs included), $STATE and the users"
  else
    say "kept $CONFIG_DIR (config, keys, the installation's CA), $STATE (data) and the users; --purge deletes them"
  fi
}

case $ACTION in
  install) install_fort ;;
  uninstall) uninstall_fort ;;
esac
