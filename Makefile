# lambda_detect: PGXS build, tests and the demo.
#
#   make                 build the library and the install script
#   make install         install into the PostgreSQL found by pg_config
#   make installcheck    pg_regress tests (sql/ -> expected/) against a running server
#   make prove           pgTAP tests (test/*.sql) against a running server
#   tools/test.sh        everything, from a fresh machine, in a throwaway cluster
#   make fuzz            the fuzz driver (tools/fuzz.sh), FUZZ_COUNT payloads

EXTENSION = lambda_detect
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" lambda_detect.control)

MODULE_big = lambda_detect
OBJS = \
	src/lambda_detect.o \
	src/settings.o \
	src/shmem.o \
	src/guarded.o \
	src/spi_plans.o \
	src/schema_version.o \
	src/json_text.o \
	src/normalize.o \
	src/ingest.o \
	src/dir_cache.o \
	src/ingest_helpers.o \
	src/files.o \
	src/rule_lambda_public.o \
	src/rule_wildcard_action.o \
	src/rule_function_url.o \
	src/rule_cross_account.o \
	src/exceptions.o \
	src/rule_options.o \
	src/rule_engine.o \
	src/worker.o \
	src/worker_privileges.o \
	src/dropdb_guard.o

# The install script is assembled from the numbered parts in schema/.
SCHEMA_PARTS = $(sort $(wildcard schema/[0-9]*.sql))
DATA_built = lambda_detect--$(EXTVERSION).sql
# Released versions' install scripts are frozen in schema/releases (never
# edited).  After a release, schema changes are new numbered parts, which
# both the install script and the upgrade script from the last release run:
# an upgrade script is its header in schema/upgrades/<from>--<to>.sql
# followed by the parts added since <from> (docs/upgrades.md).
UPGRADE_1.0--1.1 = schema/10_rule_options.sql schema/11_event_partitions.sql \
	schema/12_rule_candidates.sql schema/13_alerts_ecs.sql \
	schema/14_storage_maintenance.sql schema/15_notify_payload.sql \
	schema/16_distribution_keys.sql schema/17_citus_functions.sql \
	schema/18_exception_rule_check.sql schema/19_request_scan.sql
DATA_built += lambda_detect--1.0--1.1.sql
DATA = $(wildcard schema/releases/lambda_detect--*.sql) \
	$(wildcard schema/upgrades/lambda_detect--*--*.sql)

REGRESS = normalize ingest_inbox ingest_files rule_seed rule_window rule_companions rule_options exceptions storage notify_payload explain security privileges settings investigation triage citus_compat
REGRESS_OPTS = --inputdir=. --outputdir=.

PG_CPPFLAGS = -I$(srcdir)/src -DLAMBDA_DETECT_VERSION=\"$(EXTVERSION)\"
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers -Wno-cast-function-type
SHLIB_LINK = -lz
EXTRA_CLEAN = results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

lambda_detect--$(EXTVERSION).sql: $(SCHEMA_PARTS) lambda_detect.control
	cat $(SCHEMA_PARTS) > $@

lambda_detect--1.0--1.1.sql: schema/upgrades/1.0--1.1.sql $(UPGRADE_1.0--1.1)
	cat $^ > $@

# The alert listener, a libpq client installed next to the server's programs.
LISTEN_CLIENT = lambda-detect-listen
EXTRA_CLEAN += $(LISTEN_CLIENT)

all: $(LISTEN_CLIENT)

$(LISTEN_CLIENT): tools/listen/lambda_detect_listen.c
	$(CC) $(CFLAGS) $(PG_CFLAGS) -Wno-unused-result -I$(shell $(PG_CONFIG) --includedir) \
		-o $@ $< -L$(shell $(PG_CONFIG) --libdir) -lpq

install: install-listen-client
.PHONY: install-listen-client
install-listen-client: $(LISTEN_CLIENT)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(LISTEN_CLIENT) '$(DESTDIR)$(bindir)/$(LISTEN_CLIENT)'

# The benchmark: tools/bench.sh builds this client and runs bench/run.sh.
bench/latency: bench/latency.c
	$(CC) $(CFLAGS) $(PG_CFLAGS) -I$(shell $(PG_CONFIG) --includedir) \
		-o $@ $< -L$(shell $(PG_CONFIG) --libdir) -lpq
EXTRA_CLEAN += bench/latency

.PHONY: bench
bench:
	BENCH_SCALE=$(or $(BENCH_SCALE),quick) tools/bench.sh

# The fuzz driver: tools/fuzz.sh builds this client and runs it in a
# throwaway cluster; FUZZ_COUNT payloads (100000 by default).
tools/fuzz/fuzz: tools/fuzz/fuzz.c
	$(CC) $(CFLAGS) $(PG_CFLAGS) -I$(shell $(PG_CONFIG) --includedir) \
		-o $@ $< -L$(shell $(PG_CONFIG) --libdir) -lpq
EXTRA_CLEAN += tools/fuzz/fuzz

.PHONY: fuzz
fuzz:
	tools/fuzz.sh --count $(or $(FUZZ_COUNT),100000)

# pgTAP tests; PG* environment variables say where the server is.
.PHONY: prove
prove:
	pg_prove --ext .sql -v test/
