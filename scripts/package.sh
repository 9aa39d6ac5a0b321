#!/usr/bin/env bash
# chalice package imports app.py, whose models read table names at import. Packaging uses
# none of these values (the deployed functions get theirs from the stack), so placeholders do.
# The platform's secrets are never needed here: the functions read them from SSM at run time
# (create them first: README, "Deploying to AWS").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/package}
rm -rf "$out"
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-ap-east-1}
for table in ACCOUNTS UNIQUE_CLAIMS SESSIONS LOGIN_ATTEMPTS WECHAT_BINDINGS QR_CODES IDEMPOTENCY PROVIDERS AUDIT_LOG SUB_SERVICE_PROVIDERS SUB_MERCHANTS JOBS JOB_STEPS ORDERS REFUNDS; do
  export "${table}_TABLE=packaging-placeholder"
done
export WECHAT_APP_ID=wx0000000000000000 MAIDAN_BASE_URL=https://maidan.invalid MAIDAN_PARTNER_ID=placeholder
.venv/bin/chalice package --stage "${STAGE:-prod}" --merge-template infra/template.yaml "$out"
echo "packaged into $out (sam.yaml); deploy as described in the README"
