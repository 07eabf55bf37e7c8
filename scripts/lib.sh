# Shared shell functions for Plystra's scripts: installing prerequisites, building the extension, and running
# a private PostgreSQL 15 cluster in a project folder. Sourced, never executed.
#
# Why a private cluster: the project never touches the machine's own PostgreSQL service. Every cluster lives in
# a folder we own (.plystra/ for the demo, target/ for tests), listens on loopback and on a socket in that folder.

# PLYSTRA_PG_BIN points at another PostgreSQL 15 installation (a relocated copy, say, so that two builds of the
# extension can be installed and tested side by side).
PG_BIN=${PLYSTRA_PG_BIN:-/usr/lib/postgresql/15/bin}
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

# The system packages the scripts need, each with a file that only that package ships (checked with dpkg -S on
# Debian 12): a file that some other package also installs would report the package present when it is not
# (pg_config and pgxs.mk ship in postgresql-client-15, not in postgresql-server-dev-15, which holds the
# headers that bindgen needs). PACKAGE|FILE|what it is for.
SYSTEM_PREREQUISITES=(
    "postgresql-15|$PG_BIN/postgres|the PostgreSQL 15 server (also initdb, pgbench)"
    "postgresql-client-15|$PG_BIN/pg_dump|psql, pg_config, pg_dump, pg_basebackup"
    "postgresql-server-dev-15|/usr/include/postgresql/15/server/postgres.h|the server headers pgrx compiles against"
    "libclang-dev|/usr/lib/llvm-14/lib/libclang.so|libclang for bindgen"
    "clang|/usr/bin/clang|clang, for pgrx's C shim"
    "sudo|/usr/bin/sudo|cargo pgrx test --runas"
    "libtap-parser-sourcehandler-pgtap-perl|/usr/bin/pg_prove|pg_prove, the pgTAP runner"
    "postgresql-15-pgtap|/usr/share/postgresql/15/extension/pgtap.control|pgTAP"
    "curl|/usr/bin/curl|the demo's HTTP requests"
    "python3-venv|/usr/share/doc/python3-venv|python3 -m venv, for the contract check's Python tools"
    "chromium|/usr/bin/chromium|headless Chromium, for the Console's browser tests"
    "chromium-driver|/usr/bin/chromedriver|chromedriver (WebDriver for the system Chromium)"
    "npm|/usr/bin/npm|npm, to install the Console tests' pinned packages (npm ci)"
)

# missing_system_packages: prints the packages whose file is absent, one per line, in install order.
missing_system_packages() {
    local entry pkg file
    for entry in "${SYSTEM_PREREQUISITES[@]}"; do
        IFS='|' read -r pkg file _ <<<"$entry"
        [ -e "$file" ] || echo "$pkg"
    done
}

ensure_system_packages() {
    local missing
    mapfile -t missing < <(missing_system_packages)
    if [ ${#missing[@]} -gt 0 ]; then
        command -v apt-get >/dev/null ||
            die "missing packages: ${missing[*]} (not a Debian system: install their equivalents, see the README)"
        [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (install them as root)"
        log "installing system packages: ${missing[*]} (about a minute)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# verify_prerequisites: fails naming every prerequisite that is still absent after ensure_prerequisites (CI runs
# it, so that a machine where something was installed by hand cannot hide a broken install step).
verify_prerequisites() {
    local entry pkg file what bad=0
    for entry in "${SYSTEM_PREREQUISITES[@]}"; do
        IFS='|' read -r pkg file what <<<"$entry"
        if [ ! -e "$file" ]; then
            printf 'missing prerequisite: %s (%s, package %s)\n' "$file" "$what" "$pkg" >&2
            bad=1
        fi
    done
    if ! cargo pgrx --version 2>/dev/null | grep -qF "cargo-pgrx $PGRX_VERSION"; then
        printf 'missing prerequisite: cargo-pgrx %s (found: %s)\n' "$PGRX_VERSION" \
            "$(cargo pgrx --version 2>/dev/null || echo none)" >&2
        bad=1
    fi
    if ! python_tools_present; then
        printf 'missing prerequisite: %s in %s\n' "${PYTHON_TOOLS[*]}" "$PYTHON_TOOLS_VENV" >&2
        bad=1
    fi
    [ "$bad" = 0 ] || die "prerequisites missing after the install step"
    log "prerequisites present: ${#SYSTEM_PREREQUISITES[@]} system packages and cargo-pgrx $PGRX_VERSION"
}

ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -qF "cargo-pgrx $PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (5 to 20 minutes on 2 cores)"
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

# The Python tools of the contract check (tests/contract_check.sh), at pinned versions, from the Python package
# registry, in a virtual environment of their own (Debian's Python refuses pip installs into the system).
PYTHON_TOOLS_VENV=$REPO_ROOT/target/python-tools
PYTHON_TOOLS=("openapi-spec-validator==0.9.0" "schemathesis==4.32.5" "openapi-python-client==0.29.1")

python_tools_present() {
    local frozen tool
    frozen=$("$PYTHON_TOOLS_VENV/bin/pip" freeze 2>/dev/null) || return 1
    for tool in "${PYTHON_TOOLS[@]}"; do
        grep -qixF "$tool" <<<"$frozen" || return 1
    done
}

ensure_python_tools() {
    python_tools_present && return 0
    # Debian's own python3 (the one python3-venv serves), else whatever python3 is on the PATH.
    local py=/usr/bin/python3
    [ -x "$py" ] || py=$(command -v python3) || die "python3 is missing (install it, see the README)"
    log "installing Python tools into target/python-tools: ${PYTHON_TOOLS[*]}"
    "$py" -m venv "$PYTHON_TOOLS_VENV" || die "python3 -m venv failed (package python3-venv)"
    "$PYTHON_TOOLS_VENV/bin/pip" install -q --disable-pip-version-check "${PYTHON_TOOLS[@]}" ||
        die "pip could not install ${PYTHON_TOOLS[*]}"
}

ensure_prerequisites() {
    ensure_system_packages
    ensure_cargo_pgrx
    ensure_python_tools
}

# The OpenID AuthZEN working group's todo interop cases (plystra_http/tests/authzen.rs sends every one of them,
# unmodified, to the REST front). The file is the working group's, published in the openid/authzen repository
# under the MIT licence (Copyright (c) 2024 Aserto). It is not kept in this repository, and the machines that run
# the tests reach no code host, so it is read from a local clone of openid/authzen named by PLYSTRA_AUTHZEN_REPO,
# at a pinned commit, and checked against its SHA-256, so the cases are exactly as published. Exports
# PLYSTRA_AUTHZEN_DECISIONS; returns 1, saying why, when the file cannot be had (the interop tests are then not
# run, and scripts/test says so).
AUTHZEN_COMMIT=e287920eed842b227e38531c1735b712337ca44d
AUTHZEN_DECISIONS_PATH=interop/authzen-todo-backend/test/decisions-authorization-api-1_0-02.json
AUTHZEN_DECISIONS_SHA256=26a066ebece7d6b48b56ae9dc53c14b628120d259b7247b5c94d9c547411aab7

authzen_decisions() {
    local dir=$REPO_ROOT/target/authzen-interop file
    file=$dir/$(basename "$AUTHZEN_DECISIONS_PATH")
    mkdir -p "$dir"
    if ! echo "$AUTHZEN_DECISIONS_SHA256  $file" | sha256sum -c --status 2>/dev/null; then
        if [ -z "${PLYSTRA_AUTHZEN_REPO:-}" ]; then
            log "the AuthZEN interop cases are not on this machine (set PLYSTRA_AUTHZEN_REPO to a clone of openid/authzen)"
            return 1
        fi
        git -C "$PLYSTRA_AUTHZEN_REPO" show "$AUTHZEN_COMMIT:$AUTHZEN_DECISIONS_PATH" >"$file.part" || {
            log "no $AUTHZEN_DECISIONS_PATH at $AUTHZEN_COMMIT in $PLYSTRA_AUTHZEN_REPO"
            return 1
        }
        echo "$AUTHZEN_DECISIONS_SHA256  $file.part" | sha256sum -c --status || {
            log "$AUTHZEN_DECISIONS_PATH does not have the expected SHA-256"
            return 1
        }
        mv "$file.part" "$file"
    fi
    export PLYSTRA_AUTHZEN_DECISIONS=$file
}

# Builds the extension and installs it into PostgreSQL's extension folders. PLYSTRA_PROFILE=release for
# benchmarks. Each file is copied beside its destination and renamed over it: running clusters preload
# plystra.so, and overwriting a mapped library in place crashes them at once. A rename does not make a running
# cluster safe either: a backend that then loads a function finds a different file at the path and loads it
# beside the preloaded one (seen: the audit writer segfaults). Restart every cluster after an install that
# changed something (EXTENSION_UP_TO_DATE=0), as scripts/demo does and the test scripts do by starting theirs
# after it.
# The build is skipped when target/plystra-package.stamp says the package comes from these sources (a hash of
# every file the build reads), and the copy when every installed file already equals the packaged one; then
# EXTENSION_UP_TO_DATE=1 (a running cluster already has this build, so the caller need not restart it).
install_extension() {
    local profile=${PLYSTRA_PROFILE:-debug} profile_flag=() pkg="$REPO_ROOT/target/plystra-package"
    [ "$profile" = release ] || profile_flag=(--debug)
    local stamp
    # The package is laid out for one installation (its paths are PG_CONFIG's): a build for another is not it.
    stamp="$(extension_source_stamp) $PG_CONFIG"
    EXTENSION_UP_TO_DATE=0
    if [ "$(cat "$pkg.stamp" 2>/dev/null)" != "$profile $stamp" ]; then
        log "building the plystra extension ($profile; about 4 minutes from scratch, seconds after)"
        rm -rf "$pkg" "$pkg.stamp"
        (cd "$REPO_ROOT/plystra_pg" && cargo pgrx package --pg-config "$PG_CONFIG" "${profile_flag[@]}" --out-dir "$pkg" >/dev/null) \
            || return 1
        # Released versions' install scripts, so that `CREATE EXTENSION plystra VERSION '<old>'` then
        # `ALTER EXTENSION plystra UPDATE` works (and is tested: tests/catalog_check.sh).
        cp "$REPO_ROOT"/plystra_pg/released/plystra--*.sql "$pkg$("$PG_CONFIG" --sharedir)/extension/" || return 1
        echo "$profile $stamp" >"$pkg.stamp"
    fi
    local f dest changed=0
    while IFS= read -r f; do
        dest=/${f#"$pkg"/}
        cmp -s "$f" "$dest" && continue
        changed=1
        mkdir -p "$(dirname "$dest")"
        cp "$f" "$dest.plystra-new" && mv -f "$dest.plystra-new" "$dest" || return 1
    done < <(find "$pkg" -type f)
    if [ "$changed" = 0 ]; then
        EXTENSION_UP_TO_DATE=1
        log "the plystra extension is up to date (this $profile build is installed)"
    else
        log "installed the plystra extension ($profile)"
    fi
}

# extension_source_stamp: one hash of every file the extension's build reads (its crate, the decision core,
# migrations/, sql/, the workspace manifest and lock file).
extension_source_stamp() {
    (cd "$REPO_ROOT" && find plystra_pg plystra_core migrations sql Cargo.toml Cargo.lock -type f \
        -not -path '*/target/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
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

# cluster_processes DATA_DIR: the pids of every live process of the cluster in DATA_DIR, the postmaster's and its
# children's, and any child that outlived it (each runs in its data directory; a zombie has no directory to read).
cluster_processes() {
    local data p
    data=$(readlink -f "$1")
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/cwd" 2>/dev/null)" = "$data" ] && echo "${p#/proc/}"
    done
}

# detach_installed_library: gives the installed plystra.so a new inode (a copy renamed over it) before a tool that
# writes the file in place: `cargo pgrx test` installs its test build so. A running cluster that preloaded the
# library keeps the pages it mapped, which an in-place write would change under it (seen: the audit writer and the
# postmaster die of SIGBUS, the cluster is gone). Each such cluster is named: it should be restarted once the
# tests are done, as every install asks (see install_extension).
detach_installed_library() {
    local lib p data
    lib="$("$PG_CONFIG" --pkglibdir)/plystra.so"
    [ -f "$lib" ] || return 0
    cp -p "$lib" "$lib.plystra-new" && mv -f "$lib.plystra-new" "$lib" || return 1
    for p in /proc/[0-9]*; do
        grep -qF "$lib" "$p/maps" 2>/dev/null || continue
        [ "$(cat "$p/comm" 2>/dev/null)" = postgres ] || continue
        data=$(readlink "$p/cwd" 2>/dev/null) || continue
        [ -f "$data/postmaster.pid" ] && [ "$(head -1 "$data/postmaster.pid")" = "${p#/proc/}" ] || continue
        log "note: the cluster in $data preloads $lib; restart it after the tests (scripts/demo restarts its own)"
    done
}

# psql against a cluster: cluster_psql DIR PORT DB [psql args...]
cluster_psql() {
    local dir=$1 port=$2 db=$3
    shift 3
    # Warnings and errors only: "does not exist, skipping" and the like are not news to a user.
    PGOPTIONS="-c client_min_messages=warning ${PGOPTIONS:-}" \
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
