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

# Options of the throwaway cluster: the worker needs the library preloaded.
LAMBDA_DETECT_CLUSTER_OPTS=(
	-o "shared_preload_libraries=lambda_detect"
)

# The worker's lifecycle tests (t/*.pl) use PostgreSQL's own TAP framework.
LAMBDA_DETECT_PACKAGES+=(libipc-run-perl)
