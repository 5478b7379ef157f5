#!/usr/bin/env bash
# Regenerate the hash-pinned locks under requirements/. Needs network access to the package index.
set -euo pipefail
cd "$(dirname "$0")/../requirements"
UV=${UV:-uv}
# Lambda runtime: python3.12 on arm64 (Graviton), manylinux wheels only.
"$UV" pip compile lambda.in --python-version 3.12 --python-platform aarch64-manylinux_2_28 \
  --generate-hashes --no-header --only-binary :all: -o lambda.txt
"$UV" pip compile dev.in --universal --python-version 3.11 --generate-hashes --no-header -o dev.txt
"$UV" pip compile checkov.in --universal --python-version 3.11 --generate-hashes --no-header -o checkov.txt
