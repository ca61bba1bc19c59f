#!/usr/bin/env bash
# The main job, end to end, on the bundled sample trail (samples/trail): a
# throwaway cluster with the worker, CloudTrail log files landing in a
# directory as "aws s3 sync" would leave them, the attack alerted through
# LISTEN as it arrives, then a summary.  Installs what a fresh Debian 12
# machine lacks first.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib/prepare.sh

ensure_packages
build_and_install

trail=$(mktemp -d -t lambda_detect_demo.XXXXXX)
chmod 755 "$trail"
trap 'rm -rf "$trail"' EXIT

echo "== starting a throwaway cluster; the worker watches $trail"
pg_virtualenv -t "${LAMBDA_DETECT_CLUSTER_OPTS[@]}" \
	-o "lambda_detect.inbox_dir=$trail" \
	-o "lambda_detect.file_settle_time=0" \
	-o "lambda_detect.scan_interval=500ms" \
	tools/lib/demo-in-cluster.sh "$trail"
