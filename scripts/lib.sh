# Shared shell functions for Plystra's scripts: installing prerequisites, building the extension, and running
# a private PostgreSQL 15 cluster in a project folder. Sourced, never executed.
#
# Why a private cluster: the project never touches the machine's own PostgreSQL service. Every cluster lives in
# a folder we own (.plystra/ for the demo, target/ for tests), listens on loopback and on a socket in that folder.

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# pgrx's version comes from Cargo.toml so that cargo-pgrx always matches it exactly.
PGRX_VERSION=$(sed -n 's/^pgrx = { version = "=\([0-9.]*\)".*/\1/p' "$REPO_ROOT/Cargo.toml" | head -n1)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A postmaster that inherits RUST_BACKTRACE appends a Rust backtrace to the DETAIL of every error raised from
# Rust; clients must never see that, so every server we start runs without it.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- env -u RUST_BACKTRACE "$@"
    else
        env -u RUST_BACKTRACE "$@"
    fi
}

ensure_system_packages() {
    local missing=()
    [ -x "$PG_BIN/initdb" ] || missing+=(postgresql-15)
    [ -x "$PG_CONFIG" ] || missing+=(postgresql-server-dev-15)
    [ -f /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk ] || missing+=(postgresql-server-dev-15)
    ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || missing+=(libclang-dev clang)
    command -v sudo >/dev/null || missing+=(sudo)
    command -v pg_prove >/dev/null || missing+=(libtap-parser-sourcehandler-pgtap-perl)
    [ -f /usr/share/postgresql/15/extension/pgtap.control ] || missing+=(postgresql-15-pgtap)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (install them as root)"
        log "installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (takes about 5 minutes on 2 cores)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    # `cargo pgrx init` only writes ~/.pgrx/config.toml here (it skips initdb as root); redo it if missing.
    if ! grep -q "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
        log "cargo pgrx init --pg15"
        cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
    fi
}

ensure_cargo_fuzz() {
    cargo fuzz --version >/dev/null 2>&1 || { log "installing cargo-fuzz"; cargo install cargo-fuzz --locked; }
}

ensure_prerequisites() {
    ensure_system_packages
    ensure_cargo_pgrx
}

# Builds the extension and installs it into PostgreSQL's extension folders. PLYSTRA_PROFILE=release for
# benchmarks. Each file is copied beside its destination and renamed over it: running clusters preload
# plystra.so, and overwriting a mapped library in place crashes them (a rename leaves them the old file).
install_extension() {
    local profile_flag=() pkg="$REPO_ROOT/target/plystra-package"
    [ "${PLYSTRA_PROFILE:-debug}" = release ] || profile_flag=(--debug)
    log "building and installing the plystra extension (${PLYSTRA_PROFILE:-debug})"
    rm -rf "$pkg"
    (cd "$REPO_ROOT/plystra_pg" && cargo pgrx package --pg-config "$PG_CONFIG" "${profile_flag[@]}" --out-dir "$pkg" >/dev/null) \
        || return 1
    # Released versions' install scripts, so that `CREATE EXTENSION plystra VERSION '<old>'` then
    # `ALTER EXTENSION plystra UPDATE` works (and is tested: tests/catalog_check.sh).
    cp "$REPO_ROOT"/plystra_pg/released/plystra--*.sql "$pkg$("$PG_CONFIG" --sharedir)/extension/" || return 1
    local f dest
    while IFS= read -r f; do
        dest=/${f#"$pkg"/}
        mkdir -p "$(dirname "$dest")"
        cp "$f" "$dest.plystra-new" && mv -f "$dest.plystra-new" "$dest" || return 1
    done < <(find "$pkg" -type f)
}

# cluster_start DIR PORT: creates the cluster on first use, then starts it (no-op if already running).
# The plystra library is preloaded so that its audit writer (a background worker) runs; it serves the database
# named by PLYSTRA_AUDIT_DB (default: plystra). The extension must be installed before the cluster starts.
# PLYSTRA_PG_OPTIONS (optional) adds server options after the defaults, e.g. "-c shared_buffers=1GB"; a later
# -c wins, so it can also override a default.
cluster_start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_postgres "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c fsync=${PLYSTRA_PG_FSYNC:-on} -c shared_preload_libraries=plystra -c plystra.audit_writer_database=${PLYSTRA_AUDIT_DB:-plystra}${PLYSTRA_PG_OPTIONS:+ $PLYSTRA_PG_OPTIONS}" \
            start >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start (log: $dir/server.log)"; }
    fi
}

cluster_stop() {
    local dir=$1
    [ -f "$dir/data/PG_VERSION" ] || return 0
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# psql against a cluster: cluster_psql DIR PORT DB [psql args...]
cluster_psql() {
    local dir=$1 port=$2 db=$3
    shift 3
    psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db" "$@"
}

# free_port START: the first TCP port from START up that nothing listens on and no socket uses as its local
# port (tests must not collide with a cluster someone already runs; and ports in this range are also handed out
# as clients' ephemeral ports, which make a later bind fail with "Address already in use").
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || port_in_use "$port"; do
        port=$((port + 1))
    done
    echo "$port"
}

# port_in_use PORT: some TCP socket (listening or connected) has PORT as its local port (/proc/net/tcp, tcp6).
port_in_use() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'NR > 1 && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
