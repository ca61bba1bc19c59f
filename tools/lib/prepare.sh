# shellcheck shell=bash
# Shared by tools/test.sh and tools/demo.sh: install what a fresh Debian 12
# machine lacks, then build and install the extension.  Works as root and as
# a user with sudo (only apt-get and "make install" need root).

LAMBDA_DETECT_PACKAGES=(
	make gcc gzip
	postgresql-15 postgresql-server-dev-15 postgresql-common
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	libpq-dev zlib1g-dev
)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# ensure_packages installs the packages of LAMBDA_DETECT_PACKAGES that are missing.
ensure_packages() {
	local missing=() p
	for p in "${LAMBDA_DETECT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "== installing: ${missing[*]}"
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# build_and_install compiles the extension and installs it into PostgreSQL 15.
build_and_install() {
	echo "== building lambda_detect"
	make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
	as_root make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install >/dev/null
}

# free_port prints a TCP port no server listens on and no Unix socket uses.
# Installing postgresql-15 starts a cluster on 5432 on a fresh machine, and
# pg_virtualenv -t does not see it, so the throwaway cluster must be told.
free_port() {
	local p
	for p in $(seq 5433 5599); do
		[ -e "/var/run/postgresql/.s.PGSQL.$p" ] && continue
		[ -e "/tmp/.s.PGSQL.$p" ] && continue
		(echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		echo "$p"
		return
	done
	echo "no free port between 5433 and 5599" >&2
	return 1
}

# Options of the throwaway cluster: a free port; the worker needs the library preloaded.
LAMBDA_DETECT_CLUSTER_OPTS=(
	-c "-p $(free_port)"
	-o "shared_preload_libraries=lambda_detect"
)

# The worker's lifecycle tests (t/*.pl) use PostgreSQL's own TAP framework.
LAMBDA_DETECT_PACKAGES+=(libipc-run-perl)
